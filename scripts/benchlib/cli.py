"""Run the TechEmpower /json and /plaintext sequence against chopin.

Load mode (default): for every round, for every flavour (chopin runtimes, plus
the two floors with --floor), start a fresh server pinned to the server CPUs, run
the TFB sequence with wrk pinned to the other CPUs (per test: primer, warm-up,
then every concurrency level), record wrk's figures and the server's CPU time,
threads and memory, stop the server with SIGTERM and check that it exits 0.
Writes results.csv, results.json, results.md and plaintext.png to --out and
prints the markdown table (medians over rounds).

Profile mode (--profile): deterministic per-request figures for every flavour
and the floors: user-space instructions per request (valgrind callgrind, counters
zeroed after a warm-up, dumped after exactly --profile-requests requests) and
syscalls per request (strace -c -f attached for a separate measured run). The
load comes from a bounded load generator inside this script.

The floors (examples/floor.rs, a raw epoll loop that parses nothing): `floor`
compares at every byte offset to find request ends (the byte floor: the lower
bound for a parser that reads every byte), and the "x floor" ratios are to it; `floor-memchr` jumps between
newlines with libc's vectorised memchr, a stronger floor, and the
"x floor-memchr" ratios are to that one.

Other servers join the same rounds with --peer NAME=COMMAND; --server-cpu-quota
caps every server at a share of one CPU (the server, not wrk, is then the
bottleneck); --mtu runs everything in a network namespace whose loopback has
that MTU; --httparena runs HttpArena's engine profiles instead of TFB's tests:
baseline, limited-conn, async (/delay/10 at 32,000 connections or what the fd
limit allows), latency (oha at fixed rates over 1,024 connections, with
HttpArena's latScore), json-tls and echo (over TLS with --tls-cert/--tls-key
and --dataset); pipelined (reference-only) and tls-handshake (each request
on a new TLS connection: the handshake's cost) when named.

All traffic goes to 127.0.0.1. Every server started is killed on exit.
Python 3 standard library only.
"""

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys

from .common import FLOORS, ROOT, die, install_handlers, log
from .isolation import (MtuNamespace, NetnsError, QuotaError, mtu_preflight,
                        quota_preflight)
from .load import load_mode
from .measure import alias, check_quota
from .profile import profile_mode
from .report import plot_only, summarise, write_load_results
from .servers import build, check_peer, cpu_list_str, default_cpus, parse_cpu_list, parse_peer
from .shapes import ALL_HTTPARENA_TESTS, HTTPARENA_LUA, HTTPARENA_TESTS, TESTS, TFB_TESTS


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  scripts/bench --duration 3                      quick pass, both flavours
  scripts/bench --floor --rounds 3                with the floors, medians of 3 rounds
  scripts/bench --tests plaintext --levels 256,16384 --duration 5
  scripts/bench --servers none --floor            the floors alone
  scripts/bench --profile                         instructions and syscalls per request
  scripts/bench --floor --server-cpu-quota 40 --rounds 3 --tests plaintext --levels 256,16384
  scripts/bench --floor --peer may-minihttp="/path/to/peer --port {port}"
  scripts/bench --mtu 1500 --floor                TFB's and HttpArena's MTU on loopback
  scripts/bench --httparena                       HttpArena's engine profiles
  scripts/bench --httparena --tests json-tls,echo --peer nginx="..." --peer hyper="..."


CPU placement (--server-cpus, --client-cpus): on 2 CPUs the server gets CPU 1 and
the client (wrk, oha) CPU 0; on N CPUs the server gets the first half and the client
the second half. The server's --workers defaults to the number of server CPUs, wrk's
-t to the number of client CPUs (never above connections).

Old spellings, kept for a release (each says so on stderr): --flavours is
--servers, --wrk-cpus is --client-cpus.

--peer COMMAND is split like a shell line (shlex; no shell runs it) and started
as it is, pinned (and capped) as chopin is; in it {port} becomes the port to
listen on, {workers} the --workers count and {host} 127.0.0.1; for the TLS
profiles {tls_port} is the TLS port, {cert} and {key} the --tls-cert and
--tls-key paths, {dataset} the --dataset path. Its answers are validated as
chopin's are, and its CPU time is read from its pid (threads included, child
processes not). scripts/peer-may-minihttp, scripts/peer-nginx and
scripts/peer-hyper build peers.
""")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "chopin"),
                   help="chopin binary (default target/release/chopin)")
    p.add_argument("--floor-binary",
                   default=os.path.join(ROOT, "target", "release", "examples", "floor"),
                   help="floor binary (default target/release/examples/floor)")
    p.add_argument("--no-build", action="store_true",
                   help="do not run cargo build --release (--bin chopin / --example floor)")
    p.add_argument("--servers", dest="flavours", default="per-core,multithread",
                   metavar="SERVERS",
                   help="chopin runtimes, comma separated, or 'none' (default "
                        "per-core,multithread); other servers join with --peer")
    alias(p, "--flavours", "--servers")
    p.add_argument("--floor", action="store_true",
                   help="add the floors (examples/floor.rs: 'floor' scans every byte, the lower "
                        "bound for a parser that reads every byte; 'floor-memchr' uses memchr) as flavours "
                        "and report ratios to each")
    p.add_argument("--tests", default=None,
                   help="json,plaintext (default both); with --httparena: "
                        + ",".join(ALL_HTTPARENA_TESTS) + " (default all but pipelined)")
    p.add_argument("--levels", default="",
                   help="restrict to these connection counts (each test keeps those of its "
                        "TFB levels that are listed)")
    p.add_argument("--json-levels", default="", help="replace the json levels")
    p.add_argument("--plaintext-levels", default="", help="replace the plaintext levels")
    p.add_argument("--duration", type=int, default=15, help="seconds per level (default 15)")
    p.add_argument("--primer-duration", type=int, default=0,
                   help="primer seconds (default 5 scaled by duration/15, at least 1)")
    p.add_argument("--warmup-duration", type=int, default=0,
                   help="warm-up seconds (default: --duration)")
    p.add_argument("--pause", type=float, default=None,
                   help="seconds between wrk runs (default 2 if duration >= 10 else 0.5)")
    p.add_argument("--rounds", type=int, default=1,
                   help="rounds, servers interleaved; figures are medians over them (default 1)")
    p.add_argument("--server-cpus", default="", metavar="CPUS",
                   help="taskset CPU list for the server (default: see CPU placement below)")
    p.add_argument("--client-cpus", default="", metavar="CPUS",
                   help="taskset CPU list for the client, wrk or oha (default: see CPU "
                        "placement below)")
    alias(p, "--wrk-cpus", "--client-cpus")
    p.add_argument("--workers", type=int, default=0,
                   help="chopin --workers (default: number of server cpus)")
    p.add_argument("--wrk-threads", type=int, default=0,
                   help="wrk -t (default: number of client CPUs)")
    p.add_argument("--server-args", default="",
                   help="extra chopin arguments, e.g. '--pin' or '--backlog 8192'")
    p.add_argument("--port", type=int, default=8080, help="first port to try (default 8080)")
    p.add_argument("--out", default="",
                   help="output directory (default bench-results/<timestamp>)")
    p.add_argument("--no-plot", action="store_true", help="do not draw plaintext.png")
    p.add_argument("--plot-only", metavar="DIR", default="",
                   help="redraw DIR/plaintext.png (and DIR/results.md) from DIR/results.json")
    p.add_argument("--profile", action="store_true",
                   help="instead of the load sequence: instructions/request (callgrind) and "
                        "syscalls/request (strace) for every flavour and both floors")
    p.add_argument("--profile-requests", type=int, default=20000,
                   help="measured requests per test in --profile (default 20000)")
    p.add_argument("--profile-warmup", type=int, default=2000,
                   help="warm-up requests per test in --profile (default 2000)")
    p.add_argument("--profile-connections", type=int, default=64,
                   help="plaintext connections in --profile, depth 16 (default 64)")
    p.add_argument("--profile-json-connections", default="1,64",
                   help="json connections in --profile, one request in flight on each; a "
                        "comma-separated list, one case each (default 1,64)")
    p.add_argument("--server-cpu-quota", type=float, default=0, metavar="PCT",
                   help="run every server in a cgroup capped at PCT%% of one CPU (cgroup v2 "
                        "cpu.max or v1 cpu.cfs_quota_us), so the server, not wrk, is the "
                        "bottleneck; needs root")
    p.add_argument("--long-level-duration", type=int, default=None, metavar="S",
                   help="seconds for levels of 16,384 connections and more (default 15 with "
                        "--server-cpu-quota, else --duration): shorter windows measure "
                        "wrk's connect storm")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=COMMAND",
                   help="another server to run in the same rounds (repeatable); COMMAND "
                        "gets {port} (and {workers}, {host}, {tls_port}, {cert}, {key}, "
                        "{dataset}) substituted, see below")
    p.add_argument("--mtu", type=int, default=0,
                   help="run servers and wrk in a network namespace whose loopback has this "
                        "MTU (e.g. 1500, TFB's and HttpArena's; the host's loopback has "
                        "65,536); needs root and ip")
    p.add_argument("--no-stats", action="store_true",
                   help="do not pass --stats to chopin (by default, when the binary has it, "
                        "its per-worker counts are read per level via SIGUSR1)")
    p.add_argument("--httparena", action="store_true",
                   help="HttpArena's profiles at 4,096 connections instead of TFB's tests: "
                        "baseline (scripts/httparena.lua), pipelined (GET /pipeline, depth "
                        "16), limited-conn (baseline, connections closed after 10 requests), "
                        "async, latency, json-tls, echo (see above); --levels replaces each "
                        "profile's connections (latency: its rates); floors run in pipelined "
                        "only")
    p.add_argument("--tls-cert", default=os.path.join(ROOT, "tests", "certs", "rsa.crt"),
                   help="PEM certificate for the TLS profiles (default tests/certs/rsa.crt)")
    p.add_argument("--tls-key", default=os.path.join(ROOT, "tests", "certs", "rsa-pkcs8.key"),
                   help="PEM key for the TLS profiles (default tests/certs/rsa-pkcs8.key)")
    p.add_argument("--dataset", default=os.path.join(ROOT, "tests", "data", "dataset.json"),
                   help="HttpArena's dataset.json for GET /json/{count} (default "
                        "tests/data/dataset.json)")
    p.add_argument("--httparena-lenient", action="store_true",
                   help="with --httparena: wrong answers (validation, non-2xx) are notes, "
                        "not problems, for servers that do not serve the profiles' paths yet")
    a = p.parse_args(argv)
    a.flavours_text_names = [f.strip() for f in a.flavours.split(",")]

    def ints(text, name):
        try:
            return [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            p.error(f"{name}: expected comma-separated integers, got {text!r}")
            return []

    a.levels = ints(a.levels, "--levels")
    a.json_levels = ints(a.json_levels, "--json-levels")
    a.plaintext_levels = ints(a.plaintext_levels, "--plaintext-levels")
    a.profile_json_connections = ints(a.profile_json_connections, "--profile-json-connections")
    if any(c < 1 for c in a.profile_json_connections) or a.profile_connections < 1:
        p.error("--profile-connections and --profile-json-connections must be >= 1")
    if a.tests is None:
        a.tests = ",".join(HTTPARENA_TESTS if a.httparena else TFB_TESTS)
    a.tests = [t.strip() for t in a.tests.split(",") if t.strip()]
    for t in a.tests:
        if t not in TESTS:
            p.error(f"--tests: unknown test {t!r} (json, plaintext; with --httparena: "
                    f"{', '.join(ALL_HTTPARENA_TESTS)})")
        if TESTS[t].httparena and not a.httparena:
            p.error(f"--tests {t}: an HttpArena profile; add --httparena")
    if a.profile and any(TESTS[t].httparena and t not in ("pipelined", "baseline")
                         for t in a.tests):
        p.error("--profile measures json, plaintext, pipelined (/pipeline) and baseline "
                "(/baseline11) only")
    a.peers = {}
    for text in a.peer:
        try:
            name, command = parse_peer(text)
        except ValueError as e:
            p.error(str(e))
        if name in a.peers or name in FLOORS or name in a.flavours_text_names:
            p.error(f"--peer {name}: the name is already taken by a flavour, floor or peer")
        a.peers[name] = command
    if a.server_cpu_quota and a.profile:
        p.error("--server-cpu-quota applies to the load sequence, not --profile")
    if a.mtu and not 68 <= a.mtu <= 65536:
        p.error(f"--mtu {a.mtu}: loopback takes 68..65536")
    a.flavours = [] if a.flavours.strip() in ("", "none") else [
        f.strip() for f in a.flavours.split(",") if f.strip()]
    if any(f in FLOORS for f in a.flavours):
        a.flavours = [f for f in a.flavours if f not in FLOORS]
        a.floor = True
    if a.duration < 1 or a.rounds < 1:
        p.error("--duration and --rounds must be >= 1")
    dserver, dclient = default_cpus()
    try:
        a.server_cpus = parse_cpu_list(a.server_cpus) if a.server_cpus else dserver
        a.client_cpus = parse_cpu_list(a.client_cpus) if a.client_cpus else dclient
    except ValueError as e:
        p.error(str(e))
    if set(a.server_cpus) & set(a.client_cpus):
        if len(os.sched_getaffinity(0)) > 1:
            p.error(f"--server-cpus {a.server_cpus} and --client-cpus {a.client_cpus} overlap")
        log("bench: warning: only one CPU; server and client share it")
    a.server_cpus_str = cpu_list_str(a.server_cpus)
    a.client_cpus_str = cpu_list_str(a.client_cpus)
    a.workers = a.workers or len(a.server_cpus)
    a.wrk_threads = a.wrk_threads or len(a.client_cpus)
    if a.server_cpu_quota:
        check_quota(p, a.server_cpu_quota, len(a.server_cpus))
    if a.long_level_duration is None:
        a.long_level_duration = 15 if a.server_cpu_quota else 0
    if a.pause is None:
        a.pause = 2.0 if a.duration >= 10 else 0.5
    if not a.out:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        a.out = os.path.join(ROOT, "bench-results", stamp + ("-profile" if a.profile else ""))
    return a



def main(argv):
    args = parse_args(argv)
    if args.plot_only:
        return plot_only(args)
    flavours = list(args.flavours) + list(args.peers)
    if args.floor or args.profile:
        flavours += FLOORS
    if not flavours:
        die("nothing to run: no flavours, no --peer and no --floor")
    if args.peers and args.profile:
        die("--peer joins the load sequence only, not --profile")
    for tool in ("taskset",) + (() if args.profile else ("wrk",)):
        if not shutil.which(tool):
            die(f"{tool} not found (apt-get install -y {'wrk' if tool == 'wrk' else 'util-linux'})")
    if any(TESTS[t].fixed_rate for t in args.tests) and not shutil.which("oha"):
        die("oha not found: the latency profile holds fixed rates with it "
            "(cargo install oha --version 1.16.0 --locked)")
    for path in ((args.tls_cert, args.tls_key) if any(TESTS[t].tls for t in args.tests)
                 else ()) + ((args.dataset,) if "json-tls" in args.tests else ()):
        if not os.access(path, os.R_OK):
            die(f"cannot read {path} (--tls-cert, --tls-key, --dataset)")
    if any(TESTS[t].level_lua == HTTPARENA_LUA for t in args.tests) \
            and not os.path.exists(HTTPARENA_LUA):
        die(f"{HTTPARENA_LUA} is missing (the wrk script of the baseline and limited-conn "
            f"profiles); restore it from the repository")
    install_handlers()
    quota_mechanism = None
    if args.server_cpu_quota:
        try:
            quota_mechanism = quota_preflight()
        except QuotaError as e:
            die(str(e))
    if args.mtu:
        try:
            mtu_preflight()
        except NetnsError as e:
            die(str(e))

    build(args, need_chopin=bool(args.flavours), need_floor=any(f in FLOORS for f in flavours))
    for f in flavours:
        if f in args.peers:
            check_peer(args, f)
            continue
        b = args.floor_binary if f in FLOORS else args.binary
        if not os.access(b, os.X_OK):
            die(f"{b} is not an executable file (build it or pass --binary/--floor-binary)")
    os.makedirs(args.out, exist_ok=True)
    netns = None
    if args.mtu:
        try:
            netns = MtuNamespace(args.mtu)
        except NetnsError as e:
            die(str(e))
    meta = {
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv, "flavours": flavours, "server_cpus": args.server_cpus,
        "wrk_cpus": args.client_cpus, "workers": args.workers, "wrk_threads": args.wrk_threads,
        "duration_s": args.duration, "rounds": args.rounds, "uname": os.uname().release,
        "cpus": len(os.sched_getaffinity(0)),
    }
    if any(TESTS[t].httparena for t in args.tests):
        meta["tests"] = args.tests
    if args.server_cpu_quota:
        meta["server_cpu_quota"] = args.server_cpu_quota
        meta["quota_mechanism"] = quota_mechanism
        meta["long_level_duration_s"] = args.long_level_duration
    if netns:
        meta.update({"mtu": args.mtu, "netns": netns.name, "netns_lo": netns.link})
    if args.peers:
        meta["peers"] = args.peers
    try:
        meta["git"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                     capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    log(f"bench: out {args.out}; server cpus {args.server_cpus_str} (workers {args.workers}), "
        f"client cpus {args.client_cpus_str} (wrk threads {args.wrk_threads})")

    if args.profile:
        meta["mode"] = "profile"
        with open(os.path.join(args.out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2)
        profile_mode(args, flavours)
        return 0

    rows, problems, notes, server_stats = load_mode(args, flavours)
    summary = summarise(rows, flavours)
    write_load_results(args, meta, rows, summary, problems, notes, server_stats, flavours)
    return 1 if problems else 0
