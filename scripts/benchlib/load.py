"""The load sequence: per round, per flavour, a fresh server; per test a
primer, a warm-up and every level with wrk; wrk's figures, the server's CPU
time, threads, memory, and (chopin --stats) its per-worker counts."""

import json
import os
import re
import resource
import shlex
import signal
import subprocess
import time

from .common import (STATE, FD_MARGIN, FLOORS, CLK_TCK, HOST, LATENCY_CONNECTIONS,
                     LONG_LEVEL_CONNECTIONS, PRIMER_CONNECTIONS, SCRIPTS, WARMUP_CONNECTIONS,
                     WRK_TIMEOUT_S, die, log)
from . import client, stats as statsmod
from .isolation import CpuQuota, QuotaError, throttle_delta
from .servers import (Server, fd_advice, is_chopin, pick_port, raise_fd_limit,
                      read_proc_stat, read_proc_status, server_argv, stats_flag)
from .shapes import TESTS

_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        return None
    return float(m.group(1)) * _UNITS_US[m.group(2)]


def parse_wrk(text):
    r = {
        "requests": None, "rps": None, "lat_avg_us": None, "lat_p50_us": None,
        "lat_p99_us": None, "lat_max_us": None, "err_connect": 0, "err_read": 0,
        "err_write": 0, "err_timeout": 0, "non2xx": 0,
    }
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if m:
        r["lat_avg_us"] = _to_us(m.group(1))
        r["lat_max_us"] = _to_us(m.group(3))
    for pct, key in (("50", "lat_p50_us"), ("99", "lat_p99_us")):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", text, re.M)
        if m:
            r[key] = _to_us(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["err_connect"], r["err_read"], r["err_write"], r["err_timeout"] = map(
            int, m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    return r


def url_of(server, test):
    t = TESTS[test]
    if t.tls:
        return f"https://{HOST}:{server.tls_port}{t.path}"
    return f"http://{HOST}:{server.port}{t.path}"


def wrk_command(args, server, test, conns, duration, lua, lua_args, threads):
    t = TESTS[test]
    threads = max(1, min(threads, conns))
    cmd = ["taskset", "-c", args.client_cpus_str, "wrk", "-H", "Host: localhost"]
    if t.accept:
        cmd += ["-H", f"Accept: {t.accept}", "-H", "Connection: keep-alive"]
    cmd += ["--latency", "-d", f"{duration}s", "-c", str(conns), "--timeout",
            f"{WRK_TIMEOUT_S}s", "-t", str(threads), url_of(server, test)]
    if lua:
        cmd += ["-s", lua, "--"] + list(lua_args)
    return cmd


def oha_command(args, server, test, rate, duration):
    """oha holding `rate` requests a second over LATENCY_CONNECTIONS, its
    latencies corrected for coordinated omission (HttpArena's latency
    profiles hold the rate the same way)."""
    return ["taskset", "-c", args.client_cpus_str, "oha", "--no-tui", "--output-format", "json",
            "-z", f"{duration}s", "-c", str(LATENCY_CONNECTIONS), "-q", str(rate),
            "--latency-correction", "-H",
            "Host: localhost", url_of(server, test)]


def parse_oha(text):
    """oha's JSON: requests (2xx), rps, and latencies in microseconds."""
    r = {
        "requests": None, "rps": None, "lat_avg_us": None, "lat_p50_us": None,
        "lat_p99_us": None, "lat_max_us": None, "err_connect": 0, "err_read": 0,
        "err_write": 0, "err_timeout": 0, "non2xx": 0,
    }
    start = text.find("{")
    try:
        doc = json.loads(text[start:]) if start >= 0 else {}
    except ValueError:
        return r
    codes = doc.get("statusCodeDistribution") or {}
    ok = sum(n for c, n in codes.items() if str(c).startswith("2"))
    r["requests"] = ok
    r["non2xx"] = sum(codes.values()) - ok
    # oha cancels what is in flight when -z ends ("aborted due to deadline"):
    # the end of the run, not an error of the server's.
    r["err_read"] = sum(n for e, n in (doc.get("errorDistribution") or {}).items()
                        if e != "aborted due to deadline")
    total_s = (doc.get("summary") or {}).get("total")
    r["rps"] = ok / total_s if total_s else None
    summary = doc.get("summary") or {}
    pct = doc.get("latencyPercentiles") or {}

    def us(v):
        return None if v is None else v * 1e6
    r["lat_avg_us"] = us(summary.get("average"))
    r["lat_max_us"] = us(summary.get("slowest"))
    r["lat_p50_us"] = us(pct.get("p50"))
    r["lat_p99_us"] = us(pct.get("p99"))
    return r


def run_wrk(cmd, duration):
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
        out = p.stdout + ("\n[stderr]\n" + p.stderr if p.stderr.strip() else "")
        rc = p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += "\n[bench: wrk timed out]"
        rc = 124
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return rc, out, wall, wrk_cpu


def levels_for(args, test):
    t = TESTS[test]
    if t.httparena:
        # HttpArena's one count, or what --levels lists instead.
        return list(args.levels) if args.levels else list(t.levels)
    explicit = args.json_levels if test == "json" else args.plaintext_levels
    if explicit:
        return explicit
    if args.levels:
        return [c for c in t.levels if c in args.levels]
    return list(t.levels)


def _fmt_lat(us):
    if us is None:
        return "-"
    if us >= 1e6:
        return f"{us / 1e6:.2f}s"
    if us >= 1e3:
        return f"{us / 1e3:.2f}ms"
    return f"{us:.0f}us"


def measure_level(args, server, test, phase, conns, duration, lua, lua_args, depth, tag,
                  rawdir):
    pid = server.pid
    stats0 = server.stats_snapshot() if server.stats else None
    thr0 = server.cgroup.throttling() if server.cgroup else None
    user0, sys0 = read_proc_stat(pid)
    fixed_rate = TESTS[test].fixed_rate and phase == "level"
    if fixed_rate:
        cmd = oha_command(args, server, test, conns, duration)
    else:
        cmd = wrk_command(args, server, test, conns, duration, lua, lua_args, args.wrk_threads)
    rc, out, wall, wrk_cpu = run_wrk(cmd, duration)
    alive = server.alive()
    user1, sys1 = read_proc_stat(pid) if alive else (user0, sys0)
    st = read_proc_status(pid) if alive else {}
    thr1 = server.cgroup.throttling() if server.cgroup and alive else None
    stats1 = server.stats_snapshot() if stats0 and alive else None
    with open(os.path.join(rawdir, f"{tag}.txt"), "w") as f:
        f.write(shlex.join(cmd) + "\n\n" + out)
    r = parse_oha(out) if fixed_rate else parse_wrk(out)
    if not r["requests"]:
        # Nothing completed (e.g. a short run ending inside the connect storm):
        # wrk prints zeros, which are not latencies.
        for k in ("lat_avg_us", "lat_p50_us", "lat_p99_us", "lat_max_us"):
            r[k] = None
    elif not r["lat_p99_us"]:
        # wrk 4.x: with pipelining its coordinated-omission correction adds samples
        # below the recorded minimum, so high percentiles come out as 0.
        r["lat_p99_us"] = None
    user_s = (user1 - user0) / CLK_TCK
    sys_s = (sys1 - sys0) / CLK_TCK
    cpu_s = user_s + sys_s
    req = r["requests"] or 0
    row = {
        "phase": phase, "test": test,
        # A fixed-rate level is its rate (oha holds LATENCY_CONNECTIONS).
        "connections": conns, "depth": depth or 1,
        "duration_s": duration, "wrk_rc": rc, **r,
        "server_cpu_s": round(cpu_s, 4),
        "cpu_util_pct": round(100.0 * cpu_s / wall, 1) if wall > 0 else None,
        "ns_per_req": round(cpu_s * 1e9 / req, 1) if req else None,
        # Where the server's time goes: its own code (user) vs the kernel (sys).
        "user_ns_per_req": round(user_s * 1e9 / req, 1) if req else None,
        "sys_ns_per_req": round(sys_s * 1e9 / req, 1) if req else None,
        "wrk_cpu_s": round(wrk_cpu, 3),
        "wrk_ns_per_req": round(wrk_cpu * 1e9 / req, 1) if req else None,
        "threads": st.get("Threads"),
        "vmhwm_kb": st.get("VmHWM"), "vmrss_kb": st.get("VmRSS"),
        "server_alive": alive,
    }
    if server.cgroup:
        row["throttled_pct"] = throttle_delta(thr0, thr1)
    d = statsmod.diff(stats0, stats1)
    row.update(statsmod.row_fields(d))
    errs = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
    log(f"bench:   {phase:9s} {test:9s} {'q' if fixed_rate else 'c'}={conns:<6d} rps={r['rps'] or 0:>12,.0f} "
        f"p99={_fmt_lat(r['lat_p99_us']):>9s} ns/req={row['ns_per_req'] or 0:>8,.0f} "
        f"cpu={row['cpu_util_pct'] or 0:>5.1f}% errs={errs} non2xx={r['non2xx']}"
        + (f" throttled={row['throttled_pct']}%" if row.get("throttled_pct") is not None
           else "")
        + (f" workers max/min={d['spread']:.2f}" if d and d["spread"] is not None else "")
        + ("" if rc == 0 else f" wrk-rc={rc}") + ("" if alive else " SERVER DIED"))
    return row


def _lua_path(args, name):
    if name != "pipeline":
        return name
    path = os.path.join(SCRIPTS, "pipeline.lua")
    if not os.path.exists(path):
        die(f"{path} is missing: it is TFB's pipeline script, part of this repository")
    return path


def start_server(args, flavour, port, logdir, tag, tls_port=None):
    cgroup = None
    if args.server_cpu_quota:
        try:
            cgroup = CpuQuota(args.server_cpu_quota, tag)
        except QuotaError as e:
            from .common import die
            die(str(e))
    stats = (is_chopin(args, flavour) and not args.no_stats and bool(stats_flag(args.binary)))
    server = Server(flavour, server_argv(args, flavour, port, cgroup=cgroup, stats=stats,
                                         tls_port=tls_port), port,
                    logdir, tag, cgroup=cgroup, stats=stats,
                    exit_signals=(signal.SIGTERM,) if flavour in args.peers else ())
    server.tls_port = tls_port
    return server


def _finish(args, server, flavour, rnd, problems, server_stats):
    rc, problem = server.stop()
    if problem:
        problems.append(f"round {rnd}: {problem}; log {server.log_path}")
        log(f"bench: PROBLEM {problem}")
    else:
        log(f"bench: {flavour} exited {'0' if rc == 0 else f'by signal {-rc}'} after SIGTERM")
    if server.stats or is_chopin(args, flavour):
        final = server.final_stats()
        if final:
            server_stats.append({"round": rnd, "flavour": flavour, "at_exit": final})


def load_mode(args, flavours):
    """Returns (rows, problems, notes, server_stats)."""
    tests = args.tests
    max_conns = max([WARMUP_CONNECTIONS] + [
        LATENCY_CONNECTIONS if TESTS[t].fixed_rate else c
        for t in tests for c in levels_for(args, t)])
    needed = max_conns + FD_MARGIN
    soft, hard = raise_fd_limit(needed)
    skip_above = None
    if soft < needed:
        log("bench: " + fd_advice(needed, soft, hard))
        skip_above = soft - FD_MARGIN
        log(f"bench: levels above {skip_above} connections are skipped")
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            somax = int(f.read())
        if somax < max_conns:
            log(f"bench: note: net.core.somaxconn={somax} < {max_conns} connections: if the "
                f"connect storm at the top levels overflows the accept queue, SYNs are retried "
                f"after 1 s, 3 s, ... (slow ramp-up); scripts/tune-host / config/sysctl.conf "
                f"raise it")
    except OSError:
        pass

    rawdir = os.path.join(args.out, "raw")
    os.makedirs(rawdir, exist_ok=True)
    rows, problems, notes, server_stats = [], [], [], []
    primer_s = args.primer_duration or max(1, round(5 * args.duration / 15))
    warmup_s = args.warmup_duration or args.duration
    for rnd in range(1, args.rounds + 1):
        # Rotate the order each round so no flavour always runs first.
        k = (rnd - 1) % len(flavours)
        order = flavours[k:] + flavours[:k]
        for flavour in order:
            my_tests = [t for t in tests if flavour not in FLOORS or TESTS[t].floors]
            if not my_tests:
                continue
            port = pick_port(args.port)
            # The TLS port and the dataset whenever a test needs either.
            tls_port = (pick_port(port + 1) if any(TESTS[t].tls or t == "json-tls"
                                                   for t in my_tests) else None)
            server = start_server(args, flavour, port, args.out, f"r{rnd}-{flavour}", tls_port)
            try:
                startup = server.log_text().strip().splitlines()
                log(f"bench: round {rnd} {flavour} pid {server.pid}: "
                    f"{startup[0] if startup else '(no startup line yet)'}")
                for test in my_tests:
                    t = TESTS[test]
                    lenient = t.httparena and args.httparena_lenient
                    if flavour not in FLOORS:
                        found = (client.validate_httparena(port, test, tls_port=tls_port,
                                                           dataset=args.dataset)
                                 if t.httparena
                                 else client.validate(port, test))
                        for p in found:
                            msg = f"round {rnd} {flavour}: {p}"
                            if lenient:
                                notes.append(msg)
                                log(f"bench: note (--httparena-lenient) {msg}")
                            else:
                                problems.append(msg)
                                log(f"bench: PROBLEM {msg}")
                    warm_lua = _lua_path(args, t.warm_lua) if t.warm_lua else None
                    level_lua = _lua_path(args, t.level_lua) if t.level_lua else None
                    seq = [("primer", PRIMER_CONNECTIONS, primer_s, warm_lua, t.warm_lua_args, 0),
                           ("warmup", WARMUP_CONNECTIONS, warmup_s, warm_lua, t.warm_lua_args, 0)]
                    for c in levels_for(args, test):
                        dur = args.duration
                        if c >= LONG_LEVEL_CONNECTIONS and args.long_level_duration:
                            dur = args.long_level_duration
                        seq.append(("level", c, dur, level_lua, t.level_lua_args, t.depth))
                    for phase, conns, dur, lua, lua_args, d in seq:
                        if (test == "async" and phase == "level" and skip_above is not None
                                and conns > skip_above):
                            log(f"bench:   async at {skip_above} connections, not {conns}: "
                                f"the fd limit allows no more")
                            notes.append(f"async ran at {skip_above} connections (fd limit)")
                            conns = skip_above
                        held = LATENCY_CONNECTIONS if t.fixed_rate and phase == "level" \
                            else conns
                        if skip_above is not None and held > skip_above:
                            log(f"bench:   skip {test} c={conns} (fd limit)")
                            continue
                        if not server.alive():
                            break
                        tag = f"r{rnd}-{flavour}-{test}-{phase}-c{conns}"
                        row = measure_level(args, server, test, phase, conns, dur, lua,
                                            lua_args, d, tag, rawdir)
                        row.update({"round": rnd, "flavour": flavour})
                        rows.append(row)
                        if phase == "level":
                            errs = sum(row[k] for k in ("err_connect", "err_read",
                                                         "err_write", "err_timeout"))
                            if flavour not in FLOORS and (errs or row["non2xx"]
                                                          or row["wrk_rc"]):
                                msg = (f"round {rnd} {flavour} {test} c={conns}: socket errors "
                                       f"c/r/w/t={row['err_connect']}/{row['err_read']}/"
                                       f"{row['err_write']}/{row['err_timeout']}, "
                                       f"non-2xx {row['non2xx']}, wrk exit {row['wrk_rc']}")
                                (notes if lenient and not errs and not row["wrk_rc"]
                                 else problems).append(msg)
                        if not row["server_alive"]:
                            problems.append(f"round {rnd} {flavour}: server died during "
                                            f"{test} {phase} c={conns}; see {server.log_path}")
                        time.sleep(args.pause)
            finally:
                # After a signal the servers are already killed; the exit
                # under way must not be swallowed here.
                if STATE["stopping"]:
                    server.kill()
                else:
                    _finish(args, server, flavour, rnd, problems, server_stats)
    return rows, problems, notes, server_stats
