"""Where a server's CPU goes, kernel included, from few to many connections.

For each server and connection count: run wrk (TFB's plaintext request,
depth 16) against the server, pinned as scripts/bench pins them, and over a
steady-state window in the middle of the run record
  - the server process's CPU with perf's `cpu-clock` sampling (a software
    event: it needs no hardware counters, which these guests do not expose),
  - its CPU time (utime + stime from /proc/PID/stat),
  - the host's TCP segment counters (nstat; on loopback both ends are this
    host, so each segment counts once as sent and once as received),
  - from perf's call chains, where the server's time goes by entry point
    (recv/read, send/write, epoll_wait, other syscalls, user space) and how much of
    it is spent sending pure ACKs (inside `__tcp_send_ack`);
then, after the window and before wrk ends, capture --ack-capture seconds of
loopback headers with tcpdump (if installed) and count which end sends the
pure ACKs: nstat counts segments, not directions, and a pure ACK costs the
CPU that runs the code sending it, which on loopback is often the other end's
(a server socket's ACK of arriving requests is sent from the client's send).
Then print, per server, the kernel and user-space symbols whose cost per
request grew most between the first and the last level.

Requests in the window are estimated from wrk's average rate over its whole
run (wrk reports no rate for a sub-interval), so ns/request here is a scale
for the symbol shares; scripts/bench remains the measure of ns/request.

With --server-cpu-quota PCT each server runs in a cgroup capped at PCT% of
one CPU, as scripts/bench --server-cpu-quota does (the server, not wrk, is
then the bottleneck).

Needs root (perf on another process, nstat, tcpdump) and perf, nstat, wrk, taskset;
tcpdump is optional.
Example (docs/results/2026-11-23-2core-kernel-profile-256-16384.md is this
with --servers per-core,multithread,floor):
  scripts/tune-host; scripts/kernel-profile --servers per-core,floor --levels 256,16384
"""

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

from .common import CLK_TCK, HOST, ROOT, SCRIPTS, die, set_prog
from .isolation import quota_text
from .measure import (add_flags, check_flags, cpu_ticks, int_list, split_server_args,
                      start_server, stop_server)
from .shapes import ACCEPT

TICK_NS = 1e9 / CLK_TCK
COUNTERS = ("TcpOutSegs", "TcpExtTCPOrigDataSent", "TcpExtTCPPureAcks",
            "TcpExtTCPHPAcks", "TcpExtDelayedACKs", "TcpRetransSegs",
            "TcpExtTCPLossProbes")


def server_command(args, name):
    if name in ("per-core", "multithread"):
        return [args.binary, "--workers", "1", "--bind", HOST,
                "--port", str(args.port), "--runtime", name, *args.server_args_list]
    if name == "floor":
        return [args.floor_binary, "--port", str(args.port)]
    die(f"unknown server {name!r} (per-core, multithread, floor)")


def nstat_delta():
    out = subprocess.run(["nstat", "-z", *COUNTERS], capture_output=True,
                         text=True, check=True).stdout
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)", out, re.M)}


def symbols(perf_data):
    out = subprocess.run(["perf", "report", "-i", perf_data, "--no-children",
                          "--sort", "sym", "--stdio"], capture_output=True, text=True).stdout
    shares = {}
    for m in re.finditer(r"^\s*([\d.]+)%\s+\[(.)\]\s+(.+?)\s*$", out, re.M):
        kind = "kernel" if m.group(2) == "k" else "user"
        shares[(kind, m.group(3))] = float(m.group(1)) / 100
    return shares


# Entry points a sample's call chain is sorted under, first match wins.
PATHS = (("recv/read", ("__sys_recvfrom", "ksys_read")),
         ("send/write", ("__sys_sendto", "ksys_write")),
         ("epoll_wait", ("do_epoll_wait",)), ("other syscall", ("do_syscall_64",)))
NO_SYSCALL = "user / other"


def call_paths(perf_data):
    """Share of samples per entry point, and the share inside `__tcp_send_ack`."""
    out = subprocess.run(["perf", "script", "-i", perf_data, "-F", "ip,sym"],
                         capture_output=True, text=True).stdout
    counts, total = {}, 0
    for sample in out.split("\n\n"):
        if not sample.strip():
            continue
        total += 1
        path = next((p for p, syms in PATHS if any(s in sample for s in syms)),
                    NO_SYSCALL)
        counts[path] = counts.get(path, 0) + 1
        if "__tcp_send_ack" in sample:
            counts["pure ACKs sent"] = counts.get("pure ACKs sent", 0) + 1
    return {k: v / total for k, v in counts.items()} if total else {}


def ack_directions(args, outdir, tag):
    """Pure ACKs and data segments by direction over --ack-capture seconds."""
    pcap = os.path.join(outdir, f"{tag}.pcap")
    subprocess.run(["taskset", "-c", args.client_cpus, "timeout", str(args.ack_capture),
                    "tcpdump", "-i", "lo", "-nn", "-s", "96", "-c", "400000", "-w", pcap,
                    f"tcp port {args.port}"], capture_output=True)
    out = subprocess.run(["tcpdump", "-r", pcap, "-nn"], capture_output=True,
                         text=True).stdout
    os.remove(pcap)
    counts = {}
    for line in out.splitlines():
        m = re.search(r" IP \S+\.(\d+) > \S+: Flags \[([^\]]*)\].* length (\d+)", line)
        if not m:
            continue
        flags, empty = m.group(2), m.group(3) == "0"
        if empty and flags != ".":
            continue  # SYN, FIN, RST
        key = ("server" if int(m.group(1)) == args.port else "client",
               "ack" if empty else "data")
        counts[key] = counts.get(key, 0) + 1
    return counts


def run_one(args, name, conns, outdir, tag):
    server, cgroup = start_server(args, tag, server_command(args, name), args.port)
    try:
        wrk = subprocess.Popen(
            ["taskset", "-c", args.client_cpus, "wrk", "-H", "Host: localhost",
             "-H", f"Accept: {ACCEPT['plaintext']}", "-H", "Connection: keep-alive",
             "-d", f"{args.duration}s", "-c", str(conns), "--timeout", "8s",
             "-t", "1", f"http://{HOST}:{args.port}/plaintext",
             "-s", os.path.join(SCRIPTS, "pipeline.lua"), "--", "16"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(args.warmup)
        nstat_delta()  # resets nstat's history: the next call is the window's
        ticks0, t0 = cpu_ticks(server.pid), time.monotonic()
        perf_data = os.path.join(outdir, f"{tag}.perf.data")
        subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "2999",
                        "-p", str(server.pid), "-o", perf_data, "--", "sleep",
                        str(args.window)], capture_output=True, check=True)
        ticks1, t1 = cpu_ticks(server.pid), time.monotonic()
        counters = nstat_delta()
        acks = ack_directions(args, outdir, tag) if args.ack_capture else None
        wrk_out = wrk.communicate(timeout=args.duration + 60)[0]
    finally:
        stop_server(server, cgroup)
    with open(os.path.join(outdir, f"{tag}.wrk.txt"), "w") as f:
        f.write(wrk_out)
    m = re.search(r"Requests/sec:\s+([\d.]+)", wrk_out)
    if not m:
        die(f"{tag}: wrk reported no rate:\n{wrk_out}")
    errors = re.search(r"Socket errors:.*", wrk_out)
    if errors:
        print(f"kernel-profile: warning: {tag}: wrk {errors.group(0)}", file=sys.stderr)
    rps = float(m.group(1))
    requests = rps * (t1 - t0)
    ns_per_req = (ticks1 - ticks0) * TICK_NS / requests
    per_sym = {k: share * ns_per_req for k, share in symbols(perf_data).items()}
    paths = {k: share * ns_per_req for k, share in call_paths(perf_data).items()}
    return {"rps": rps, "ns": ns_per_req, "requests": requests,
            "counters": counters, "symbols": per_sym, "paths": paths, "acks": acks}


def median_dict(dicts):
    """Per key, the median over the rounds (a key a round lacks counts 0)."""
    keys = set().union(*dicts)
    return {k: statistics.median(d.get(k, 0) for d in dicts) for k in keys}


def median_result(runs):
    """One result from a level's rounds: each figure the median over them."""
    if len(runs) == 1:
        return runs[0]
    acks = [r["acks"] for r in runs if r["acks"] is not None]
    out = {k: statistics.median(r[k] for r in runs) for k in ("rps", "ns", "requests")}
    out.update({k: median_dict([r[k] for r in runs]) for k in ("counters", "symbols", "paths")})
    out["acks"] = median_dict(acks) if acks else None
    return out


def report(args, results):
    lines = [f"Command: `scripts/kernel-profile {shlex.join(sys.argv[1:])}`; server "
             f"`taskset -c {args.server_cpus}`, wrk `taskset -c {args.client_cpus}` "
             f"(-t1, depth 16), window {args.window} s after {args.warmup} s"
             + (f"; medians of {args.rounds} rounds." if args.rounds > 1 else ".")
             + (f" Server capped at {quota_text(args.server_cpu_quota)} by a cgroup CPU quota."
                if args.server_cpu_quota else ""), "",
             "| server | conns | req/s | ns/req | user | kernel | segments/batch "
             "| data segments/batch | pure ACKs/batch | delayed ACKs/batch "
             "| retransmits/batch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (name, conns), r in results.items():
        batches = r["requests"] / 16
        c = r["counters"]
        user = sum(v for (k, _), v in r["symbols"].items() if k == "user")
        pure = c.get("TcpExtTCPPureAcks", 0) + c.get("TcpExtTCPHPAcks", 0)
        lines.append(
            f"| {name} | {conns:,} | {r['rps']:,.0f} | {r['ns']:,.0f} | {user:,.0f} "
            f"| {r['ns'] - user:,.0f} | {c.get('TcpOutSegs', 0) / batches:.2f} "
            f"| {c.get('TcpExtTCPOrigDataSent', 0) / batches:.2f} "
            f"| {pure / batches:.2f} | {c.get('TcpExtDelayedACKs', 0) / batches:.3f} "
            f"| {c.get('TcpRetransSegs', 0) / batches:.3f} |")
    lines += ["", "A batch is 16 pipelined requests and their 16 responses. ns/req "
              "by symbol below: the symbol's share of the samples times ns/req."]
    lines += ["", "Server ns/request by entry point (perf call chains; `__tcp_send_ack`: "
              "inside any of them)", "",
              "| server | conns | " + " | ".join(p for p, _ in PATHS)
              + f" | {NO_SYSCALL} | `__tcp_send_ack` |",
              "|---|---:|" + "---:|" * (len(PATHS) + 2)]
    for (name, conns), r in results.items():
        cells = [f"{r['paths'].get(p, 0):.0f}" for p, _ in PATHS]
        cells += [f"{r['paths'].get(NO_SYSCALL, 0):.0f}",
                  f"{r['paths'].get('pure ACKs sent', 0):.1f}"]
        lines.append(f"| {name} | {conns:,} | " + " | ".join(cells) + " |")
    captured = {k: r["acks"] for k, r in results.items() if r["acks"] is not None}
    if captured:
        lines += ["", f"Who sends the pure ACKs: {args.ack_capture:g} s of loopback headers "
                  "(tcpdump) after the window, per batch of responses the server sent", "",
                  "| server | conns | server data segments | pure ACKs from the server "
                  "| pure ACKs from wrk |", "|---|---:|---:|---:|---:|"]
        for (name, conns), c in captured.items():
            data = c.get(("server", "data"), 0)
            per = (lambda n: f"{n / data:.2f}") if data else (lambda n: "-")
            lines.append(f"| {name} | {conns:,} | {data:,} | {per(c.get(('server', 'ack'), 0))} "
                         f"| {per(c.get(('client', 'ack'), 0))} |")
    first, last = args.levels[0], args.levels[-1]
    for name in args.server_list:
        a, b = results[(name, first)]["symbols"], results[(name, last)]["symbols"]
        if first == last:  # one level: its costliest symbols
            lines += ["", f"{name}: the {args.top} costliest symbols at {first:,} "
                      "connections", "", "| symbol | | ns/req |", "|---|---|---:|"]
            for k in sorted(b, key=lambda k: -b[k])[:args.top]:
                lines.append(f"| `{k[1][:70]}` | {k[0]} | {b[k]:.1f} |")
            continue
        growth = sorted(set(a) | set(b), key=lambda k: a.get(k, 0) - b.get(k, 0))
        lines += ["", f"{name}: the {args.top} symbols that grew most, ns/request "
                  f"at {first:,} → {last:,} connections", "",
                  f"| symbol | | {first:,} | {last:,} | growth |", "|---|---|---:|---:|---:|"]
        for k in growth[:args.top]:
            lines.append(f"| `{k[1][:70]}` | {k[0]} | {a.get(k, 0):.1f} "
                         f"| {b.get(k, 0):.1f} | {b.get(k, 0) - a.get(k, 0):+.1f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    set_prog("kernel-profile")
    p = argparse.ArgumentParser(prog="scripts/kernel-profile",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/chopin"),
                   help="chopin binary (default target/release/chopin)")
    p.add_argument("--floor-binary",
                   default=os.path.join(ROOT, "target/release/examples/floor"),
                   help="floor binary (default target/release/examples/floor)")
    add_flags(p, "per-core,floor", "per-core, multithread, floor; comma separated "
              "(default per-core,floor)", 14, "seconds of wrk (default 14)", duration_type=int)
    p.add_argument("--levels", default="256,16384",
                   help="connection counts, comma separated (default 256,16384)")
    p.add_argument("--warmup", type=float, default=5, metavar="S",
                   help="seconds of wrk before the window (default 5)")
    p.add_argument("--window", type=float, default=6, metavar="S",
                   help="seconds recorded (default 6)")
    p.add_argument("--port", type=int, default=8080, help="the server's port (default 8080)")
    p.add_argument("--top", type=int, default=12,
                   help="symbols listed per server (default 12)")
    p.add_argument("--server-args", default="",
                   help="extra chopin arguments, e.g. '--event-interval 256'")
    p.add_argument("--ack-capture", type=float, default=2, metavar="S",
                   help="seconds of tcpdump after the window to count pure ACKs by "
                        "direction (default 2; 0: none; skipped if tcpdump is not installed)")
    p.add_argument("--out", default=os.path.join(
        ROOT, "bench-results", time.strftime("%Y%m%d-%H%M%S") + "-kernel"),
                   help="output directory (default bench-results/<timestamp>-kernel)")
    args = p.parse_args(argv)
    check_flags(p, args)
    args.levels = int_list(p, "--levels", args.levels)
    args.server_args_list = split_server_args(p, args.server_args)
    if args.ack_capture and not shutil.which("tcpdump"):
        print("kernel-profile: tcpdump not installed: no pure-ACK directions "
              "(Debian: tcpdump)", file=sys.stderr)
        args.ack_capture = 0
    if args.warmup + args.window + args.ack_capture >= args.duration:
        die("--warmup + --window + --ack-capture must end before --duration")
    missing = [t for t in ("perf", "nstat", "wrk", "taskset") if not shutil.which(t)]
    if missing:
        die(f"not installed: {', '.join(missing)} (Debian: linux-perf, iproute2, wrk, util-linux)")
    for name in args.server_list:
        path = server_command(args, name)[0]
        if not os.access(path, os.X_OK):
            die(f"{path} is not an executable file (cargo build --release --bin chopin "
                "--example floor, or pass --binary/--floor-binary)")
    if os.geteuid() != 0:
        die("needs root: perf must see kernel symbols of another process, nstat the host's counters")
    os.makedirs(args.out, exist_ok=True)
    rounds = {}
    for r in range(args.rounds):
        for conns in args.levels:
            for name in args.server_list:
                print(f"kernel-profile: {name} at {conns} connections"
                      + (f", round {r + 1}" if args.rounds > 1 else ""), file=sys.stderr)
                tag = f"{name}-{conns}" + (f"-r{r + 1}" if args.rounds > 1 else "")
                rounds.setdefault((name, conns), []).append(run_one(args, name, conns, args.out,
                                                                    tag))
    results = {k: median_result(v) for k, v in rounds.items()}
    text = report(args, results)
    with open(os.path.join(args.out, "kernel-profile.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"kernel-profile: wrote {args.out}/kernel-profile.md", file=sys.stderr)
    return 0
