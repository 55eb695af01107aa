"""CPU placement, fd limits, ports, and the servers: chopin's flavours, the
floors and --peer servers, each started pinned (and capped, with
--server-cpu-quota), checked to accept, and stopped with SIGTERM."""

import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import time

from .common import FD_MARGIN, FLOOR_SCAN, FLOORS, HOST, ROOT, die, log, track_child
from . import stats as statsmod


def parse_cpu_list(text):
    cpus = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.extend(range(int(a), int(b) + 1))
        else:
            cpus.append(int(part))
    if not cpus:
        raise ValueError(f"empty cpu list {text!r}")
    return sorted(set(cpus))


def cpu_list_str(cpus):
    return ",".join(str(c) for c in cpus)


def default_cpus():
    avail = sorted(os.sched_getaffinity(0))
    n = len(avail)
    if n == 1:
        return avail, avail
    if n == 2:
        return [avail[1]], [avail[0]]
    half = n // 2
    return avail[:half], avail[half:]


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as e:
            log(f"bench: could not raise RLIMIT_NOFILE to {target}: {e}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def fd_advice(needed, soft, hard):
    return (
        f"open-file limit too low: soft {soft}, hard {hard}, needed {needed} "
        f"(connections + {FD_MARGIN}). As root run `ulimit -Hn {max(needed, 65536)}; "
        f"ulimit -n {max(needed, 65536)}` in the shell that starts scripts/bench, or raise "
        f"`nofile` in /etc/security/limits.conf (or LimitNOFILE= for a systemd unit / "
        f"`--ulimit nofile=...` for docker); the kernel ceiling is fs.nr_open "
        f"(see config/sysctl.conf)."
    )


def read_proc_stat(pid):
    """(utime, stime) ticks of the whole process, all threads included."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]), int(fields[12])


def read_proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("Threads", "VmHWM", "VmRSS"):
                out[key] = int(val.split()[0])
    return out


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_port(base):
    for port in range(base, base + 50):
        if port_free(port):
            return port
    die(f"no free port in {base}..{base + 49} on {HOST}")
    return None


def wait_accepting(proc, port, timeout_s):
    """Polls TCP connect until the server accepts; no blind sleep."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect((HOST, port))
            return True
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    return False


class Server:
    """A server process (chopin flavour, floor or peer) we started.

    stdout and stderr go to one log file; with `stats` (chopin --stats), the
    `stats:` tables it prints there on SIGUSR1 and at exit are read back by
    stats_snapshot() and final_stats()."""

    def __init__(self, name, argv, port, logdir, tag, start_timeout=30.0, cgroup=None,
                 stats=False, exit_signals=()):
        self.name = name
        self.port = port
        self.tls_port = None  # set by the load sequence where a test is over TLS
        self.argv = argv
        self.cgroup = cgroup
        self.stats = stats
        self.exit_signals = exit_signals  # deaths by these signals count as a clean stop
        self.log_path = os.path.join(logdir, f"server-{tag}.log")
        self.log_file = open(self.log_path, "wb")
        log(f"bench: start {name}: {shlex.join(argv)}")
        self.proc = subprocess.Popen(
            argv, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        track_child(self.proc)
        self.pid = self.proc.pid
        if not wait_accepting(self.proc, port, start_timeout):
            rc = self.proc.poll()
            self.kill()
            die(
                f"{name} did not accept connections on {HOST}:{port} within "
                f"{start_timeout}s (exit status {rc}); log: {self.log_path}\n"
                + self.log_text()[-2000:]
            )

    def log_text(self):
        try:
            if not self.log_file.closed:
                self.log_file.flush()
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stats_snapshot(self, timeout_s=3.0):
        """SIGUSR1, then the table the server prints for it; None if none came
        (stats are then switched off for this server)."""
        if not self.stats or not self.alive():
            return None
        start = os.path.getsize(self.log_path)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                text = f.read().decode("utf-8", "replace")
            tables = statsmod.parse_tables(text)
            if tables:
                return tables[-1]
            if not self.alive():
                break
            time.sleep(0.01)
        log(f"bench: {self.name} printed no stats table within {timeout_s}s of SIGUSR1; "
            f"per-level stats off for this server")
        self.stats = False
        return None

    def final_stats(self):
        """The last table printed (the one at exit), or None."""
        tables = statsmod.parse_tables(self.log_text())
        return tables[-1] if tables else None

    def stop(self, timeout_s=15.0):
        """SIGTERM, wait, return (exit status, problem or None)."""
        problem = None
        if self.proc.poll() is not None:
            problem = f"{self.name} had already exited with status {self.proc.returncode}"
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                problem = f"{self.name} did not exit within {timeout_s}s of SIGTERM; killed"
                self.kill()
        rc = self.proc.returncode
        if problem is None and rc != 0 and -rc not in self.exit_signals:
            problem = f"{self.name} exited with status {rc} after SIGTERM"
        self.log_file.close()
        if self.cgroup:
            self.cgroup.remove()
        return rc, problem

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if not self.log_file.closed:
            self.log_file.close()
        if self.cgroup:
            self.cgroup.remove()


def build(args, need_chopin, need_floor):
    if args.no_build:
        return
    targets = []
    if need_chopin:
        targets += ["--bin", "chopin"]
    if need_floor:
        targets += ["--example", "floor"]
    if not targets:
        return
    cmd = ["cargo", "build", "--release"] + targets
    log(f"bench: {shlex.join(cmd)}")
    p = subprocess.run(cmd, cwd=ROOT, timeout=3600)
    if p.returncode != 0:
        die(f"`{shlex.join(cmd)}` failed (exit {p.returncode}); fix the build or pass "
            f"--no-build with --binary/--floor-binary pointing at built binaries")


def parse_peer(text):
    """NAME=COMMAND -> (name, command); raises ValueError."""
    name, sep, command = text.partition("=")
    name = name.strip()
    if not sep or not name or not command.strip():
        raise ValueError(f"--peer {text!r}: expected NAME=COMMAND, e.g. "
                         f"may-minihttp=\"/path/to/server --port {{port}}\"")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"--peer {text!r}: NAME may hold letters, digits and - _ . only")
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise ValueError(f"--peer {name}: cannot split the command ({e})") from None
    if not any("{port}" in w for w in words):
        raise ValueError(f"--peer {name}: the command must contain {{port}} (where the "
                         f"server is told which port to listen on)")
    return name, command


def peer_words(args, name, port, tls_port=None):
    values = {"{port}": str(port), "{workers}": str(args.workers), "{host}": HOST,
              "{tls_port}": str(tls_port or 0), "{cert}": args.tls_cert, "{key}": args.tls_key,
              "{dataset}": args.dataset}
    words = []
    for w in shlex.split(args.peers[name]):
        for k, v in values.items():
            w = w.replace(k, v)
        words.append(w)
    return words


def check_peer(args, name):
    exe = peer_words(args, name, 0)[0]
    if not (shutil.which(exe) or (os.path.sep in exe and os.access(exe, os.X_OK))):
        die(f"--peer {name}: {exe} is not an executable file or a command on PATH "
            f"(build it first, e.g. scripts/peer-may-minihttp DIR)")


_stats_support = {}


def stats_flag(binary):
    """The arguments that switch on this chopin binary's --stats: ['--stats'],
    or ['--stats', 'true'] where its help shows the flag taking a value (as
    its other on/off flags do); None where it has none (older binaries: their
    help does not list it, and SIGUSR1 would end them)."""
    if binary not in _stats_support:
        flag = None
        try:
            p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
            m = re.search(r"--stats(?![\w-])( ?[<\[=]\S*)?", p.stdout + p.stderr)
            if m:
                flag = ["--stats", "true"] if m.group(1) and "<" in m.group(1) else ["--stats"]
        except (OSError, subprocess.TimeoutExpired):
            pass
        _stats_support[binary] = flag
    return _stats_support[binary]


def is_chopin(args, flavour):
    return flavour not in FLOORS and flavour not in args.peers


def server_argv(args, flavour, port, under=None, cgroup=None, stats=False, tls_port=None):
    """The command that starts `flavour` on `port` (and with `tls_port`, TLS
    there with --tls-cert/--tls-key, and --dataset)."""
    prefix = (cgroup.wrap() if cgroup else []) + ["taskset", "-c", args.server_cpus_str] \
        + (under or [])
    if flavour in FLOORS:
        return prefix + [args.floor_binary, "--port", str(port), "--scan", FLOOR_SCAN[flavour]]
    if flavour in args.peers:
        return prefix + peer_words(args, flavour, port, tls_port)
    tls = ["--tls-port", str(tls_port), "--tls-cert", args.tls_cert, "--tls-key", args.tls_key,
           "--dataset", args.dataset] if tls_port else []
    return prefix + [args.binary, "--port", str(port), "--bind", HOST, "--runtime", flavour,
                     "--workers", str(args.workers)] + (stats_flag(args.binary) if stats
                                                         else []) \
        + tls + shlex.split(args.server_args)
