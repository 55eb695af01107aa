"""The server's CPU quota (--server-cpu-quota) and the MTU namespace (--mtu).

CPU quota: each server runs in a child cgroup of its own, capped at PCT% of
one CPU by the CFS bandwidth controller: cgroup v2 `cpu.max` ("QUOTA PERIOD")
or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, whichever the host has. The
server is started through a tiny `sh` that writes its own pid to the cgroup's
`cgroup.procs` and then execs the server, so no instant of it runs uncapped
and its pid (the one whose CPU time is read) is the server's. The cgroup is
removed when the server has exited (and on exit or signal).

MTU: a network namespace whose loopback has the given MTU; scripts/bench
enters it itself (setns), so the servers, wrk and its own validation
connections all run there, and the host's loopback is left as it is. The
namespace gets the host's values of the per-namespace TCP settings that
config/sysctl.conf tunes (a fresh namespace starts from kernel defaults), and
is deleted on exit or signal.
"""

import ctypes
import errno
import os
import shutil
import signal
import subprocess
import time

from .common import forget_exit, log, on_exit

CGROUP_ROOT = "/sys/fs/cgroup"
QUOTA_PERIOD_US = 10000  # 10 ms: the cap is enforced in slices this long
CLONE_NEWNET = 0x40000000


class QuotaError(Exception):
    pass


def cgroup_kind():
    """('v2', dir) or ('v1', dir) of the hierarchy with the CPU controller, or None."""
    ctl = os.path.join(CGROUP_ROOT, "cgroup.controllers")
    if os.path.exists(ctl):
        return "v2", CGROUP_ROOT
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        d = os.path.join(CGROUP_ROOT, name)
        if os.path.exists(os.path.join(d, "cpu.cfs_quota_us")):
            return "v1", os.path.realpath(d)
    return None


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _read(path):
    with open(path) as f:
        return f.read()


def quota_preflight():
    """Checks that a capped child cgroup can be made; returns a description
    of the mechanism, or raises QuotaError saying what is missing and what to do."""
    kind = cgroup_kind()
    if kind is None:
        raise QuotaError(
            f"--server-cpu-quota needs the cgroup CPU controller: neither "
            f"{CGROUP_ROOT}/cgroup.controllers (v2) nor {CGROUP_ROOT}/cpu/cpu.cfs_quota_us "
            f"(v1) exists; mount cgroups (v2: `mount -t cgroup2 none {CGROUP_ROOT}`) or run "
            f"without --server-cpu-quota")
    version, base = kind
    if not os.access(base, os.W_OK):
        raise QuotaError(
            f"--server-cpu-quota needs write access to {base} (cgroup {version}) to create "
            f"the server's cgroup; run as root, or without --server-cpu-quota")
    if version == "v2":
        have = _read(os.path.join(base, "cgroup.controllers")).split()
        if "cpu" not in have:
            raise QuotaError(
                f"--server-cpu-quota: the cpu controller is not available in {base} "
                f"(cgroup.controllers: {' '.join(have) or 'empty'}); it may be bound to a v1 "
                f"hierarchy or withheld by the container; run without --server-cpu-quota")
        sub = os.path.join(base, "cgroup.subtree_control")
        if "cpu" not in _read(sub).split():
            try:
                _write(sub, "+cpu")
            except OSError as e:
                if e.errno == errno.EBUSY:
                    raise QuotaError(
                        f"--server-cpu-quota: cannot enable the cpu controller for {base}'s "
                        f"children (writing +cpu to {sub}: device or resource busy): cgroup "
                        f"v2 lets a non-root cgroup with processes of its own give no "
                        f"controllers to children. Move its processes into a child first, "
                        f"e.g. `mkdir {base}/init; for p in $(cat {base}/cgroup.procs); do "
                        f"echo $p > {base}/init/cgroup.procs; done`, then rerun") from None
                raise QuotaError(f"--server-cpu-quota: writing +cpu to {sub}: {e}") from None
        return "cgroup v2 cpu.max"
    return "cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us"


def quota_text(pct):
    """How the cap reads in results: `40% of one CPU (4000/10000 µs)`."""
    return (f"{pct:g}% of one CPU ({round(pct * QUOTA_PERIOD_US / 100)} µs per "
            f"{QUOTA_PERIOD_US} µs period)")


class CpuQuota:
    """A child cgroup capped at pct% of one CPU; removed by remove() or on exit."""

    _n = 0

    def __init__(self, pct, label=""):
        kind = cgroup_kind()
        if kind is None:
            raise QuotaError("no cgroup CPU controller (see --server-cpu-quota)")
        self.version, base = kind
        CpuQuota._n += 1
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
        self.path = os.path.join(base, f"chopin-bench-{os.getpid()}-{CpuQuota._n}"
                                 + (f"-{safe}" if safe else ""))
        self.quota_us = max(1000, round(pct * QUOTA_PERIOD_US / 100))
        try:
            os.mkdir(self.path)
        except OSError as e:
            raise QuotaError(f"cannot create cgroup {self.path}: {e}; run as root") from None
        on_exit(self.remove)
        try:
            if self.version == "v2":
                _write(os.path.join(self.path, "cpu.max"),
                       f"{self.quota_us} {QUOTA_PERIOD_US}")
            else:
                _write(os.path.join(self.path, "cpu.cfs_period_us"), str(QUOTA_PERIOD_US))
                _write(os.path.join(self.path, "cpu.cfs_quota_us"), str(self.quota_us))
        except OSError as e:
            self.remove()
            raise QuotaError(f"cannot set the CPU quota of {self.path}: {e}") from None
        self.procs = os.path.join(self.path, "cgroup.procs")

    def wrap(self):
        """argv prefix: a shell that joins the cgroup, then execs the rest."""
        return ["sh", "-c",
                'echo $$ > "$0" || { echo "cannot join cgroup $0" >&2; exit 125; }; '
                'exec "$@"', self.procs]

    def throttling(self):
        """{'periods', 'throttled', 'throttled_ns'} from the cgroup's cpu.stat."""
        out = {}
        try:
            for line in _read(os.path.join(self.path, "cpu.stat")).splitlines():
                k, _, v = line.partition(" ")
                out[k] = int(v)
        except (OSError, ValueError):
            return None
        ns = out.get("throttled_time")
        if ns is None and "throttled_usec" in out:
            ns = out["throttled_usec"] * 1000
        return {"periods": out.get("nr_periods", 0), "throttled": out.get("nr_throttled", 0),
                "throttled_ns": ns or 0}

    def remove(self):
        if not os.path.isdir(self.path):
            forget_exit(self.remove)
            return
        for attempt in range(50):
            try:
                os.rmdir(self.path)
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    log(f"bench: could not remove cgroup {self.path}: {e}")
                    break
                # Processes left in it are ones this script started: end them.
                try:
                    for pid in _read(self.procs).split():
                        os.kill(int(pid), signal.SIGKILL if attempt > 5 else signal.SIGTERM)
                except (OSError, ValueError):
                    pass
                time.sleep(0.1)
        else:
            log(f"bench: cgroup {self.path} still busy; remove it with `rmdir {self.path}`")
        forget_exit(self.remove)


def throttle_delta(a, b):
    """Share of quota periods in which the server was throttled, in %."""
    if not a or not b:
        return None
    periods = b["periods"] - a["periods"]
    return round(100.0 * (b["throttled"] - a["throttled"]) / periods, 1) if periods > 0 else None


# --------------------------------------------------------------------------
# network namespace with a loopback MTU

# Per-namespace settings that config/sysctl.conf tunes (or that differ from a
# fresh namespace's defaults); copied from the host into the namespace.
NETNS_SYSCTLS = (
    "net/core/somaxconn", "net/ipv4/tcp_max_syn_backlog", "net/ipv4/ip_local_port_range",
    "net/ipv4/tcp_tw_reuse", "net/ipv4/tcp_fin_timeout", "net/ipv4/tcp_max_tw_buckets",
    "net/ipv4/tcp_rmem", "net/ipv4/tcp_wmem", "net/ipv4/tcp_syncookies",
    "net/ipv4/tcp_congestion_control", "net/ipv4/tcp_slow_start_after_idle",
    "net/ipv4/tcp_autocorking", "net/ipv4/tcp_timestamps", "net/ipv4/tcp_sack",
)


class NetnsError(Exception):
    pass


def _setns(fd):
    if hasattr(os, "setns"):
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def mtu_preflight():
    """Raises NetnsError if --mtu cannot work here (no root, no `ip`)."""
    if os.geteuid() != 0:
        raise NetnsError("--mtu needs root (it creates a network namespace with "
                         "`ip netns add`); run as root, or without --mtu")
    if not shutil.which("ip"):
        raise NetnsError("--mtu needs the `ip` command (apt-get install -y iproute2)")


class MtuNamespace:
    """Creates a network namespace with loopback at `mtu`, moves this process
    (and so every child started after) into it; delete() removes it."""

    def __init__(self, mtu):
        mtu_preflight()
        self.name = f"chopin-bench-{os.getpid()}"
        self.mtu = mtu
        host = {}
        for key in NETNS_SYSCTLS:
            try:
                host[key] = _read(f"/proc/sys/{key}").strip()
            except OSError:
                pass
        p = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if p.returncode != 0:
            raise NetnsError(f"`ip netns add {self.name}` failed: {p.stderr.strip()}; "
                             f"network namespaces need root and CONFIG_NET_NS")
        on_exit(self.delete)
        p = subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "mtu", str(mtu), "up"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.delete()
            raise NetnsError(f"setting loopback MTU {mtu} in namespace {self.name} failed: "
                             f"{p.stderr.strip()} (loopback takes 68..65536)")
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(fd)
        except OSError as e:
            self.delete()
            raise NetnsError(f"cannot enter namespace {self.name}: {e}") from None
        finally:
            os.close(fd)
        self.copied, self.not_copied = [], []
        for key, val in host.items():
            try:
                if _read(f"/proc/sys/{key}").strip() != val:
                    _write(f"/proc/sys/{key}", val)
                self.copied.append(key.replace("/", "."))
            except OSError:
                self.not_copied.append(key.replace("/", "."))
        link = subprocess.run(["ip", "link", "show", "lo"], capture_output=True,
                              text=True).stdout
        self.link = " ".join(link.split()[:5])
        log(f"bench: in network namespace {self.name}: {self.link}; host values copied for "
            f"{len(self.copied)} per-namespace TCP settings"
            + (f" (not settable here: {', '.join(self.not_copied)})" if self.not_copied
               else ""))

    def delete(self):
        forget_exit(self.delete)
        p = subprocess.run(["ip", "netns", "del", self.name], capture_output=True, text=True)
        if p.returncode != 0 and "No such file" not in p.stderr:
            log(f"bench: `ip netns del {self.name}` failed: {p.stderr.strip()}; "
                f"remove it by hand")
