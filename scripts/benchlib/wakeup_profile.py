"""How each runtime flavour turns I/O readiness into work, at few and many
connections: counts, not timings.

For each flavour (--servers) and connection count: start chopin with one
worker pinned to --server-cpus (and capped at --server-cpu-quota) and
`--stats`, run wrk (TFB's plaintext request, depth 16) pinned to
--client-cpus, and over a steady window in the middle of the run
record, from the server's own per-worker counters (SIGUSR1 before and after)
and perf's syscall tracepoints on the server process:
  - requests, reads (socket reads that returned data) and wakeups (times
    the worker thread slept in epoll_wait and woke) in the window;
  - epoll_wait calls and the events each returned (its return value);
  - recvfrom / sendto calls;
  - the worker thread's CPU time.
and prints per request: syscalls, epoll_wait calls, server CPU ns; per
epoll_wait: events returned; per wakeup: reads (connections served per
driver turn); per read: requests (the batch).

Needs root (perf on another process) and perf, wrk, taskset; scripts/tune-host
for 16,384 connections. Example:
  scripts/wakeup-profile --levels 256,16384 --duration 15
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

from .common import HOST, ROOT, SCRIPTS, die, set_prog
from .isolation import quota_text
from .measure import (add_flags, alias, check_flags, free_port, int_list, split_server_args,
                      start_server, stop_server)
from .servers import stats_flag
from .stats import parse_tables

CHOPIN = os.path.join(ROOT, "target", "release", "chopin")
PIPELINE_LUA = os.path.join(SCRIPTS, "pipeline.lua")
# The counters of a stats table's total row that a window's figures come from.
COUNTERS = ("accepted", "requests", "reads", "wakeups", "user_ms", "system_ms")


class Server:
    """chopin with one worker and --stats; the tables it prints on stderr
    (on SIGUSR1) are read back on a thread."""

    def __init__(self, args, flavour):
        self.port = free_port()
        stats = stats_flag(CHOPIN) or die(f"{CHOPIN} has no --stats: rebuild it")
        argv = [CHOPIN, "--port", str(self.port), "--bind", HOST, "--runtime", flavour,
                "--workers", "1", *stats, *args.server_args_list]
        self.proc, self.cgroup = start_server(args, flavour, argv, self.port,
                                              stderr=subprocess.PIPE)
        self.tables = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        text = ""
        for line in self.proc.stderr:
            text += line.decode(errors="replace")
            if line.startswith(b"stats: total"):
                self.tables += parse_tables(text)
                text = ""

    def snapshot(self):
        """The server's counters now, summed over its workers (one here):
        accepted, requests, reads, wakeups, user ms, system ms."""
        before = len(self.tables)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while len(self.tables) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        if len(self.tables) == before:
            die("no stats table after SIGUSR1")
        total = self.tables[-1]["total"]
        return [total.get(c) or 0 for c in COUNTERS]

    def stop(self):
        stop_server(self.proc, self.cgroup, timeout_s=30)


def perf_window(server, seconds):
    """The server's counters over a window of `seconds`, and the epoll_wait
    return values and recvfrom/sendto calls perf saw inside the same window:
    the window's ends are the two stats tables the server writes to stderr
    on SIGUSR1, which perf records too."""
    data = f"/tmp/wakeup-profile-{os.getpid()}.data"
    perf = subprocess.Popen(["perf", "record", "-q", "-o", data, "-p", str(server.proc.pid),
                             "-e", "syscalls:sys_exit_epoll_wait",
                             "-e", "syscalls:sys_enter_recvfrom",
                             "-e", "syscalls:sys_enter_sendto",
                             "-e", "syscalls:sys_enter_write"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # perf attaches
    before = server.snapshot()
    time.sleep(seconds)
    after = server.snapshot()
    time.sleep(0.2)
    perf.send_signal(signal.SIGINT)
    perf.wait(timeout=60)
    out = subprocess.run(["perf", "script", "-i", data, "-F", "time,event,trace"],
                         capture_output=True, text=True, check=True).stdout
    os.remove(data)
    records = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+):\s+(\S+):\s*(.*)", line)
        if m:
            records.append((float(m.group(1)), m.group(2), m.group(3)))
    # The stats tables: writes to fd 2.
    marks = [t for t, ev, tr in records if ev.endswith("sys_enter_write") and "fd: 0x00000002" in tr]
    if len(marks) < 2:
        die("perf saw no stats tables written; is perf allowed to trace syscalls?")
    start, end = marks[0], marks[-1]
    events, recv, send = [], 0, 0
    for t, ev, tr in records:
        if not start < t < end:
            continue
        if ev.endswith("sys_exit_epoll_wait"):
            m = re.search(r"0x([0-9a-f]+)", tr)
            ret = int(m.group(1), 16) if m else 0
            # A negative return (EINTR: SIGUSR1 may interrupt any thread's
            # wait) is a wait that returned no events.
            events.append(ret if ret < 1 << 31 else 0)
        elif ev.endswith("sys_enter_recvfrom"):
            recv += 1
        elif ev.endswith("sys_enter_sendto"):
            send += 1
    return before, after, events, recv, send


def one(args, flavour, conns):
    duration = args.duration if conns < 4096 else max(args.duration, 15)
    server = Server(args, flavour)
    wrk = subprocess.Popen(
        ["taskset", "-c", args.client_cpus, "wrk", f"-t{args.wrk_threads}", f"-c{conns}",
         f"-d{duration}s", "--timeout", "8", "-s", PIPELINE_LUA,
         f"http://{HOST}:{server.port}/plaintext", "--", "16"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # A window in the middle: after the connect storm, before the end.
    time.sleep(duration * 0.3)
    before, after, events, recv, send = perf_window(server, duration * 0.3)
    wrk_out = wrk.communicate(timeout=duration + 60)[0]
    server.stop()
    accepted, requests, reads, wakeups, user_ms, sys_ms = (a - b for a, b in zip(after, before))
    if requests <= 0:
        die(f"{flavour} at {conns}: no requests in the window; wrk said:\n{wrk_out}")
    waits = max(len(events), 1)
    return {
        "flavour": flavour, "conns": conns, "requests": requests,
        "syscalls/req": (len(events) + recv + send) / requests,
        "epoll_wait/req": len(events) / requests,
        "events/epoll_wait": sum(events) / waits,
        "p90 events": sorted(events)[int(0.9 * (len(events) - 1))] if events else 0,
        "reads/wakeup": reads / max(wakeups, 1),
        "requests/read": requests / max(reads, 1),
        "cpu ns/req": 1e6 * (user_ms + sys_ms) / requests,
        "user ns/req": 1e6 * user_ms / requests,
    }


def main(argv):
    set_prog("wakeup-profile")
    p = argparse.ArgumentParser(prog="scripts/wakeup-profile",
                                description=__doc__.split("\n\n")[0])
    add_flags(p, "per-core,multithread", "chopin runtimes, comma separated (default "
              "per-core,multithread)", 8, "seconds of wrk per run (default 8; at 4,096 "
              "connections and more at least 15)", duration_type=int)
    alias(p, "--flavours", "--servers")
    p.add_argument("--levels", default="256,16384",
                   help="connection counts, comma separated (default 256,16384)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (default 1)")
    p.add_argument("--server-args", default="",
                   help="more chopin flags, e.g. '--event-interval 7' (split as a shell would)")
    args = p.parse_args(argv)
    check_flags(p, args)
    levels = int_list(p, "--levels", args.levels)
    args.server_args_list = split_server_args(p, args.server_args)
    if os.geteuid() != 0:
        die("perf on another process needs root")
    for tool in ("perf", "wrk", "taskset"):
        if not shutil.which(tool):
            die(f"{tool} is not installed")
    if not os.access(CHOPIN, os.X_OK):
        die(f"{CHOPIN} is missing: cargo build --release")
    rows = []
    for r in range(args.rounds):
        for conns in levels:
            for flavour in args.server_list:
                row = one(args, flavour, conns)
                print(f"round {r + 1}: {row}", file=sys.stderr)
                rows.append(row)
    keys = ["syscalls/req", "epoll_wait/req", "events/epoll_wait", "p90 events",
            "reads/wakeup", "requests/read", "cpu ns/req", "user ns/req"]
    print(f"\nchopin, 1 worker on CPU {args.server_cpus}"
          + (f" capped at {quota_text(args.server_cpu_quota)}" if args.server_cpu_quota else "")
          + f", wrk -t{args.wrk_threads} on {args.client_cpus}, plaintext depth 16; "
            f"medians of {args.rounds} round(s)"
          + (f"; server args: {args.server_args}" if args.server_args else "") + "\n")
    print("| flavour | conns | " + " | ".join(keys) + " |")
    print("|---|---:|" + "---:|" * len(keys))
    seen = []
    for row in rows:
        key = (row["flavour"], row["conns"])
        if key in seen:
            continue
        seen.append(key)
        same = [x for x in rows if (x["flavour"], x["conns"]) == key]
        cells = []
        for k in keys:
            v = statistics.median(x[k] for x in same)
            cells.append(f"{v:.3f}" if v < 10 else f"{v:,.0f}")
        print(f"| {key[0]} | {key[1]:,} | " + " | ".join(cells) + " |")
    return 0

