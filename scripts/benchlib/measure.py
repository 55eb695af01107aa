"""What the measuring scripts beside scripts/bench (churn-cost,
kernel-profile, wakeup-profile) share: one vocabulary of flags, with the old
spellings kept as aliases that say so on stderr; a free port; a process's
CPU ticks; the server's CPU quota, set up as scripts/bench sets it up."""

import argparse
import atexit
import socket
import sys

from .common import HOST, kill_children
from .isolation import CpuQuota, QuotaError, quota_preflight
from .servers import parse_cpu_list, read_proc_stat


class Deprecated(argparse.Action):
    """An old spelling of a flag: stores into the new flag's value and prints
    one line on stderr naming the new spelling."""

    def __init__(self, option_strings, dest, new=None, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def alias(p, old, new, type=None, metavar=None):
    """Adds `old` as a deprecated spelling of the already added flag `new`."""
    dest = new.lstrip("-").replace("-", "_")
    p.add_argument(old, dest=dest, type=type, action=Deprecated, new=new, metavar=metavar,
                   help=f"old spelling of {new} (deprecated)")


def add_flags(p, servers, servers_help, duration, duration_help, duration_type=float, rounds=1):
    """--servers, --duration, --rounds, --server-cpus, --client-cpus (old:
    --wrk-cpus) and --server-cpu-quota, with these defaults."""
    p.add_argument("--servers", default=servers, help=servers_help)
    p.add_argument("--duration", type=duration_type, default=duration, metavar="S",
                   help=duration_help)
    p.add_argument("--rounds", type=int, default=rounds,
                   help=f"rounds, servers interleaved; figures are medians over them "
                        f"(default {rounds})")
    p.add_argument("--server-cpus", default="1",
                   help="taskset CPU list for the server (default 1)")
    p.add_argument("--client-cpus", default="0",
                   help="taskset CPU list for the client (default 0)")
    alias(p, "--wrk-cpus", "--client-cpus", metavar="CPUS")
    p.add_argument("--server-cpu-quota", type=float, default=0, metavar="PCT",
                   help="run each server in a cgroup capped at PCT%% of one CPU (cgroup v2 "
                        "cpu.max or v1 cpu.cfs_quota_us, as scripts/bench --server-cpu-quota), "
                        "so the server, not the client, is the bottleneck; needs root")


def check_flags(p, args):
    """Checks what add_flags added (exits 2 with one line on a bad value),
    sets args.server_list, and readies the CPU quota: the cgroups it makes
    are removed at exit."""
    args.server_list = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.server_list:
        p.error("--servers: no server named")
    if args.rounds < 1 or args.duration <= 0:
        p.error("--rounds must be >= 1 and --duration > 0")
    try:
        server_cpus = parse_cpu_list(args.server_cpus)
        parse_cpu_list(args.client_cpus)
    except ValueError as e:
        p.error(f"--server-cpus/--client-cpus: {e}")
    pct = args.server_cpu_quota
    if pct:
        if not 10 <= pct <= 100 * len(server_cpus):
            p.error(f"--server-cpu-quota {pct:g}: expected 10..{100 * len(server_cpus)} "
                    f"(percent of one CPU; the server has {len(server_cpus)})")
        atexit.register(kill_children)  # removes the cgroups left on an error
        try:
            quota_preflight()
        except QuotaError as e:
            p.exit(2, f"{p.prog}: error: {e}\n")


def quota_cgroup(args, label):
    """A cgroup capped at --server-cpu-quota for one server, or None without
    the flag; raises QuotaError. Start the server under cgroup.wrap()."""
    return CpuQuota(args.server_cpu_quota, label) if args.server_cpu_quota else None


def free_port():
    """A port nothing listens on now, picked by the kernel."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    """utime + stime of the whole process, in clock ticks (common.CLK_TCK a second)."""
    return sum(read_proc_stat(pid))
