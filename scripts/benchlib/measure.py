"""What the measuring scripts beside scripts/bench (churn-cost,
kernel-profile, wakeup-profile) share, and scripts/bench's flags use too:
one vocabulary of flags, with the old spellings kept as aliases that say so
on stderr; a free port; a process's CPU ticks; the server's CPU quota, set
up as scripts/bench sets it up; a server started pinned (and capped) and
waited for until it accepts, and stopped."""

import argparse
import atexit
import os
import shlex
import signal
import socket
import subprocess
import sys

from .common import HOST, die, kill_children
from .isolation import CpuQuota, QuotaError, quota_preflight
from .servers import parse_cpu_list, read_proc_stat, wait_accepting


class Deprecated(argparse.Action):
    """An old spelling of a flag: stores into the new flag's value and says
    on stderr what the flag is called now."""

    def __init__(self, option_strings, dest, new=None, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{os.path.basename(parser.prog)}: {option_string} is now {self.new}; "
              f"the old name goes in a later release", file=sys.stderr)
        setattr(namespace, self.dest, values)


def alias(p, old, new):
    """Adds `old` as the old spelling of the already added flag `new`: the
    same value (type, metavar), and a note on stderr when it is used."""
    action = p._option_string_actions[new]
    p.add_argument(old, dest=action.dest, type=action.type, metavar=action.metavar,
                   default=argparse.SUPPRESS, action=Deprecated, new=new,
                   help=f"the old spelling of {new}, kept for a release")


def add_flags(p, servers, servers_help, duration, duration_help, duration_type=float, rounds=1):
    """--servers, --duration, --rounds, --server-cpus, --client-cpus (old:
    --wrk-cpus) and --server-cpu-quota, with these defaults."""
    p.add_argument("--servers", default=servers, metavar="SERVERS", help=servers_help)
    p.add_argument("--duration", type=duration_type, default=duration, metavar="S",
                   help=duration_help)
    p.add_argument("--rounds", type=int, default=rounds,
                   help=f"rounds, servers interleaved; figures are medians over them "
                        f"(default {rounds})")
    p.add_argument("--server-cpus", default="1", metavar="CPUS",
                   help="taskset CPU list for the server (default 1)")
    p.add_argument("--client-cpus", default="0", metavar="CPUS",
                   help="taskset CPU list for the client (default 0)")
    alias(p, "--wrk-cpus", "--client-cpus")
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
        check_quota(p, pct, len(server_cpus))
        atexit.register(kill_children)  # removes the cgroups left on an error
        try:
            quota_preflight()
        except QuotaError as e:
            p.exit(2, f"{p.prog}: error: {e}\n")


def check_quota(p, pct, ncpus):
    """Exits through p.error unless --server-cpu-quota PCT suits ncpus server CPUs."""
    if not 10 <= pct <= 100 * ncpus:
        p.error(f"--server-cpu-quota {pct:g}: expected 10..{100 * ncpus} "
                f"(percent of one CPU; the server has {ncpus})")


def int_list(p, flag, text):
    """A comma-separated list of whole numbers; anything else exits through p.error."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values:
        p.error(f"{flag}: expected comma-separated whole numbers, got {text!r}")
    return values


def split_server_args(p, text):
    """--server-args split as a shell would; a bad quote exits through p.error."""
    try:
        return shlex.split(text)
    except ValueError as e:
        p.error(f"--server-args {text!r}: {e}")


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


def start_server(args, label, argv, port, stderr=subprocess.DEVNULL):
    """Starts argv pinned to --server-cpus (in a cgroup capped at
    --server-cpu-quota, with the flag) and waits until it accepts on port;
    if it does not within 10 s, stops it and dies with what it printed on
    stderr (where stderr is a pipe). Returns (process, cgroup or None)."""
    try:
        cgroup = quota_cgroup(args, label)
    except QuotaError as e:
        die(str(e))
    proc = subprocess.Popen([*(cgroup.wrap() if cgroup else []), "taskset", "-c",
                             args.server_cpus, *argv],
                            stdout=subprocess.DEVNULL, stderr=stderr)
    if not wait_accepting(proc, port, 10.0):
        rc = proc.poll()
        stop_server(proc, cgroup)
        said = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        die((f"{label}: the server exited with {rc} before accepting" if rc is not None
             else f"{label}: nothing accepted on {HOST}:{port} within 10 s")
            + (f"; it said:\n{said}" if said.strip() else ""))
    return proc, cgroup


def stop_server(proc, cgroup=None, timeout_s=20):
    """SIGTERM, a wait (then SIGKILL), and the cgroup removed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if cgroup:
        cgroup.remove()
