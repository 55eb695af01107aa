"""What idle connections cost a running chopin: memory per connection, and
the CPU time and wake-ups of a server that has nothing to do.

For each flavour in --servers and each transport in --transports (plain,
tls): start chopin pinned to --server-cpus (one worker by default) with TLS
on a second port (tests/certs), open --connections keep-alive connections
from this process (each completes its TLS handshake and one GET /plaintext,
so every connection has been read from and written to once), wait until the
server has settled, then over --duration seconds of silence record, from
/proc: the server's RSS (VmRSS) against the same server before any
connection, its CPU time (utime + stime of every thread) and the context
switches of its worker threads (voluntary + involuntary, from each
/proc/PID/task/TID/status): each one is a wake-up.

Reports per run: RSS per connection (KiB), CPU over the window (% of one
CPU), wake-ups per worker per second. The TLS row's RSS per connection minus
the plain row's is what TLS keeps per idle connection.

Needs taskset and a built chopin (cargo build --release). Example:
  scripts/idle-cost --connections 16384 --duration 30
"""

import argparse
import os
import resource
import socket
import subprocess
import time

from .common import CLK_TCK, HOST, ROOT, die, set_prog
from .client import tls_context
from .measure import cpu_ticks
from .servers import parse_cpu_list, pick_port, read_proc_status

CERT = os.path.join(ROOT, "tests", "certs", "rsa.crt")
KEY = os.path.join(ROOT, "tests", "certs", "rsa-pkcs8.key")
REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="scripts/idle-cost", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "chopin"),
                   help="chopin binary (default target/release/chopin)")
    p.add_argument("--servers", default="per-core,multithread",
                   help="chopin flavours, comma separated (default per-core,multithread)")
    p.add_argument("--transports", default="plain,tls",
                   help="plain, tls or both (default plain,tls)")
    p.add_argument("--connections", type=int, default=16384,
                   help="idle connections held (default 16384)")
    p.add_argument("--duration", type=float, default=30.0,
                   help="seconds of silence measured (default 30)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds waited after the last connection before measuring (default 2)")
    p.add_argument("--server-cpus", default="1", help="taskset CPU list of the server (default 1)")
    p.add_argument("--client-cpus", default="0",
                   help="taskset CPU list of this script's process (default 0)")
    p.add_argument("--workers", type=int, default=1, help="chopin --workers (default 1)")
    a = p.parse_args(argv)
    a.servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    a.transports = [t.strip() for t in a.transports.split(",") if t.strip()]
    if any(t not in ("plain", "tls") for t in a.transports):
        p.error("--transports: plain, tls")
    if a.connections < 1 or a.duration <= 0:
        p.error("--connections and --duration must be positive")
    try:
        parse_cpu_list(a.server_cpus)
        a.client_cpu_set = set(parse_cpu_list(a.client_cpus))
    except ValueError as e:
        p.error(f"--server-cpus/--client-cpus: {e}")
    return a


def ctx_switches(pid):
    """Context switches of every thread but the main one (which only waits
    for the signal that stops the server), summed."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) == pid:
            continue
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def open_connections(n, port, tls):
    ctx = tls_context() if tls else None
    conns = []
    for _ in range(n):
        s = socket.create_connection((HOST, port), timeout=30)
        if ctx:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        s.sendall(REQUEST)
        got = b""
        while b"Hello, World!" not in got:
            data = s.recv(4096)
            if not data:
                die("the server closed a connection before answering")
            got += data
        conns.append(s)
    return conns


def measure(args, flavour, transport):
    port = pick_port(18080)
    tls_port = pick_port(port + 1)
    argv = ["taskset", "-c", args.server_cpus, args.binary, "--port", str(port), "--bind", HOST,
            "--runtime", flavour, "--workers", str(args.workers), "--tls-port", str(tls_port),
            "--tls-cert", CERT, "--tls-key", KEY]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # The last start-up line ends with the address: the server is ready.
        for line in proc.stderr:
            if b"listening on" in line:
                break
        else:
            die(f"{flavour} did not start: exit {proc.wait()}")
        time.sleep(args.settle)
        rss0 = read_proc_status(proc.pid).get("VmRSS") or 0
        conns = open_connections(args.connections, tls_port if transport == "tls" else port,
                                 transport == "tls")
        time.sleep(args.settle)
        rss1 = read_proc_status(proc.pid).get("VmRSS") or 0
        ticks0 = cpu_ticks(proc.pid)
        w0 = ctx_switches(proc.pid)
        t0 = time.monotonic()
        time.sleep(args.duration)
        wall = time.monotonic() - t0
        ticks1 = cpu_ticks(proc.pid)
        w1 = ctx_switches(proc.pid)
        rss2 = read_proc_status(proc.pid).get("VmRSS") or 0
        for c in conns:
            c.close()
        return {
            "server": flavour, "transport": transport, "connections": args.connections,
            "rss_kib_per_conn": (max(rss1, rss2) - rss0) / args.connections,
            "rss0_mib": rss0 / 1024, "rss_mib": max(rss1, rss2) / 1024,
            "cpu_pct": 100.0 * (ticks1 - ticks0) / CLK_TCK / wall,
            "wakeups_per_worker_s": (w1 - w0) / wall / args.workers,
        }
    finally:
        proc.terminate()
        proc.wait()


def main(argv):
    set_prog("idle-cost")
    args = parse_args(argv)
    if not os.access(args.binary, os.X_OK):
        die(f"{args.binary} is not an executable file (cargo build --release)")
    os.sched_setaffinity(0, args.client_cpu_set)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 256
    if soft < need:
        if hard < need:
            die(f"the fd limit is {hard}; {args.connections} connections need {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    rows = [measure(args, f, t) for f in args.servers for t in args.transports]
    print(f"{args.connections} idle connections, {args.duration:.0f} s of silence, "
          f"{args.workers} worker(s) on CPUs {args.server_cpus}\n")
    print("| server | transport | RSS KiB/conn | RSS before → with (MiB) | CPU % of one CPU "
          "| wake-ups/worker/s |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['server']} | {r['transport']} | {r['rss_kib_per_conn']:.2f} | "
              f"{r['rss0_mib']:.1f} → {r['rss_mib']:.1f} | {r['cpu_pct']:.3f} | "
              f"{r['wakeups_per_worker_s']:.2f} |")
    return 0

