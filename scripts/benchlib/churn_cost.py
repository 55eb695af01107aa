"""What an accepted connection costs a server: HttpArena's limited-conn shape.

For each round and each server (chopin's flavours, and the raw-epoll floor,
examples/floor.rs, whose accept loop is accept4 until EAGAIN and nothing
more), start it pinned to --server-cpus with one worker, run examples/churn.rs
pinned to --client-cpus (each connection: --requests exchanges one at a time,
then a reset, SO_LINGER 0), and record the server's CPU time (utime + stime
from /proc/PID/stat) over the run. Reports, as medians over the rounds:
connections per second, server CPU microseconds per connection, connections
per second of server CPU, and the ratio of that to the floor's.

With --server-cpu-quota PCT each server runs in a cgroup capped at PCT% of
one CPU, as scripts/bench --server-cpu-quota does.

With --strace, one more pass per server under `strace -c -f` counts the
syscalls per connection by name (strace slows the server; its rates are not
reported).

All traffic goes to 127.0.0.1. Needs taskset; strace for --strace.
Example:
  cargo build --release --examples && scripts/churn-cost --rounds 3 --strace
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

from .common import CLK_TCK, HOST, ROOT, die, set_prog
from .isolation import quota_text
from .measure import (add_flags, alias, check_flags, cpu_ticks, free_port, start_server,
                      stop_server)

RELEASE = os.path.join(ROOT, "target", "release")


def server_argv(name, port):
    if name == "floor":
        return [os.path.join(RELEASE, "examples", "floor"), "--port", str(port)]
    return [os.path.join(RELEASE, "chopin"), "--port", str(port), "--bind", HOST,
            "--runtime", name, "--workers", "1"]


def churn(args, port):
    argv = ["taskset", "-c", args.client_cpus, os.path.join(RELEASE, "examples", "churn"),
            "--port", str(port), "--concurrency", str(args.concurrency),
            "--requests", str(args.requests), "--seconds", str(args.duration),
            "--path", args.path]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60)
    m = re.search(r"connections (\d+) requests (\d+) errors (\d+) seconds ([\d.]+)", out.stdout)
    if not m:
        die(f"churn printed no result: {out.stdout}{out.stderr}")
    return {"connections": int(m.group(1)), "requests": int(m.group(2)),
            "errors": int(m.group(3)), "seconds": float(m.group(4))}


def start(args, name):
    port = free_port()
    proc, cgroup = start_server(args, name, server_argv(name, port), port)
    return proc, port, cgroup


def measure(args, name):
    proc, port, cgroup = start(args, name)
    try:
        before = cpu_ticks(proc.pid)
        result = churn(args, port)
        after = cpu_ticks(proc.pid)
    finally:
        stop_server(proc, cgroup)
    cpu_s = (after - before) / CLK_TCK
    result["cpu_s"] = cpu_s
    return result


def strace_pass(args, name):
    """Syscalls per connection, counted by strace -c -f over one run."""
    proc, port, cgroup = start(args, name)
    summary = f"/tmp/churn-cost-strace-{os.getpid()}-{name}.txt"
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", summary, "-p", str(proc.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        result = churn(args, port)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
        stop_server(proc, cgroup)
    counts = {}
    for line in open(summary):
        parts = line.split()
        if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    os.remove(summary)
    conns = max(result["connections"] + result["errors"], 1)
    return {k: v / conns for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def main(argv):
    set_prog("churn-cost")
    p = argparse.ArgumentParser(prog="scripts/churn-cost", description=__doc__.split("\n")[0])
    add_flags(p, "per-core,multithread,floor",
              "per-core, multithread, floor; comma separated (default per-core,multithread,floor)",
              5.0, "seconds of churn per run (default 5)", rounds=3)
    alias(p, "--seconds", "--duration")
    p.add_argument("--concurrency", type=int, default=64,
                   help="client connections open at once, on one thread (default 64)")
    p.add_argument("--requests", type=int, default=10, help="exchanges per connection (10)")
    p.add_argument("--path", default="/plaintext",
                   help="request path (default /plaintext, which the floor answers too)")
    p.add_argument("--strace", action="store_true",
                   help="one more pass per server under strace -c -f: syscalls per connection")
    args = p.parse_args(argv)
    check_flags(p, args)
    servers = args.server_list
    for s in servers:
        binary = server_argv(s, 0)[0]
        if not os.access(binary, os.X_OK):
            die(f"{binary} is missing: run `cargo build --release --examples` first")
    for tool in ["taskset"] + (["strace"] if args.strace else []):
        if not shutil.which(tool):
            die(f"{tool} is not installed")
    if not os.access(os.path.join(RELEASE, "examples", "churn"), os.X_OK):
        die("target/release/examples/churn is missing: run `cargo build --release --examples`")

    results = {s: [] for s in servers}
    for r in range(args.rounds):
        for s in servers:
            res = measure(args, s)
            results[s].append(res)
            rate = res["connections"] / res["seconds"]
            print(f"round {r + 1} {s}: {res['connections']} connections "
                  f"({rate:,.0f}/s), {res['errors']} errors, server CPU {res['cpu_s']:.2f} s",
                  file=sys.stderr)

    def med(s, f):
        return statistics.median(f(x) for x in results[s])

    per_cpu = {s: med(s, lambda x: x["connections"] / max(x["cpu_s"], 1e-9)) for s in servers}
    print(f"\n{args.rounds} rounds of {args.duration:g} s, {args.concurrency} client connections "
          f"on one thread, {args.requests} requests per connection on {args.path}, server on CPU "
          f"{args.server_cpus}"
          + (f" capped at {quota_text(args.server_cpu_quota)}" if args.server_cpu_quota else "")
          + f", client on {args.client_cpus}; medians\n")
    print("| server | connections/s | errors | server CPU µs/connection | "
          "connections per server-CPU second | × floor |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in servers:
        ratio = f"{per_cpu[s] / per_cpu['floor']:.2f}" if "floor" in per_cpu else "-"
        print(f"| {s} | {med(s, lambda x: x['connections'] / x['seconds']):,.0f} | "
              f"{med(s, lambda x: x['errors']):.0f} | "
              f"{med(s, lambda x: 1e6 * x['cpu_s'] / max(x['connections'], 1)):.1f} | "
              f"{per_cpu[s]:,.0f} | {ratio} |")
    if args.strace:
        print("\nSyscalls per connection (strace -c -f, one run each):\n")
        for s in servers:
            counts = strace_pass(args, s)
            shown = ", ".join(f"{k} {v:.2f}" for k, v in list(counts.items())[:8])
            print(f"- {s}: {shown}")
    return 0

