"""Results: medians over rounds, the markdown table, CSV/JSON files and the
gnuplot plot of plaintext req/s and CPU per request."""

import csv
import json
import math
import os
import shutil
import statistics
import subprocess

from .common import FLOOR, FLOOR_MEMCHR, FLOORS, LATENCY_CONNECTIONS, PIPELINE_DEPTH, die, log
from .isolation import quota_text
from .load import _fmt_lat
from .shapes import TESTS

CSV_FIELDS = ["round", "flavour", "phase", "test", "connections", "depth", "duration_s",
              "requests", "rps", "lat_avg_us", "lat_p50_us", "lat_p99_us", "lat_max_us",
              "err_connect", "err_read", "err_write", "err_timeout", "non2xx",
              "server_cpu_s", "cpu_util_pct", "ns_per_req", "user_ns_per_req",
              "sys_ns_per_req", "threads", "vmhwm_kb",
              "vmrss_kb", "wrk_cpu_s", "wrk_ns_per_req", "wrk_rc", "server_alive"]
# Columns present only when their feature is on (--server-cpu-quota, --stats).
CSV_EXTRA = ["throttled_pct", "stats_requests", "stats_spread", "stats_min_requests",
             "stats_max_requests", "stats_reads_per_req", "stats_wakeups_per_req"]
EXTRA_MEDIANS = ("throttled_pct", "stats_spread", "stats_min_requests", "stats_max_requests",
                 "stats_reads_per_req", "stats_wakeups_per_req")


def _spread_cell(s):
    if s.get("stats_spread") is not None:
        return f"{s['stats_spread']:.2f}"
    if s.get("stats_min_requests") == 0:
        return f"min 0 (max {s['stats_max_requests']:,.0f})"
    return "-"


def context_notes(meta):
    """The lines that say under what conditions the table was measured."""
    notes = []
    if meta.get("server_cpu_quota"):
        notes.append(f"Server-bound: each server capped at {quota_text(meta['server_cpu_quota'])}"
                     f" by {meta.get('quota_mechanism', 'a cgroup CPU quota')}, so the server,"
                     f" not wrk, is the bottleneck and req/s ranks servers.")
    if meta.get("mtu"):
        notes.append(f"Loopback MTU {meta['mtu']}: server and wrk in network namespace "
                     f"{meta.get('netns', '')} (the host's loopback untouched).")
    if meta.get("peers"):
        notes.append("Peers: " + "; ".join(f"{k} = `{v}`" for k, v in meta["peers"].items())
                     + ".")
    tests = meta.get("tests") or []
    if any(TESTS.get(t) and TESTS[t].httparena for t in tests):
        notes.append("HttpArena profiles: baseline cycles GET /baseline11?a=13&b=42, POST "
                     "Content-Length 2 and POST chunked; pipelined is GET /pipeline at depth "
                     f"{PIPELINE_DEPTH} (the floors answer it with their plaintext response, "
                     "the plaintext shape); limited-conn is baseline with `Connection: close` "
                     "on 1 request in 10 per wrk thread (HttpArena's client closes each "
                     "connection itself after 10); async is GET /delay/10; json-tls rotates "
                     "HttpArena's seven /json/{count}?m= pairs over TLS 1.3; echo POSTs "
                     "10,240 bytes to /echo over TLS 1.3 closed-loop (HttpArena's 8gbit holds "
                     "50,000 req/s); tls-handshake sends each GET /baseline11 on a new TLS "
                     "connection (req/s = handshakes a second); latency is GET /baseline11?a=1&b=2 held at q req/s by oha "
                     f"over {LATENCY_CONNECTIONS} connections (latencies corrected for "
                     "coordinated omission), and latScore is HttpArena's "
                     "100 × min(1, rps / 0.95q) × (0.50·cpu + 0.25·p99 + 0.25·mean) against the "
                     "best of this run's servers at that rate.")
    return notes


def _med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarise(rows, flavours):
    """Medians over rounds per flavour/test/level, with the per-round ratios to each floor."""
    levels = [r for r in rows if r["phase"] == "level"]
    floor_ns = {(r["flavour"], r["round"], r["test"], r["connections"]): r["ns_per_req"]
                for r in levels if r["flavour"] in FLOORS}
    keys = []
    for r in levels:
        k = (r["flavour"], r["test"], r["connections"])
        if k not in keys:
            keys.append(k)
    order = {f: i for i, f in enumerate(flavours)}
    torder = {t: i for i, t in enumerate(TESTS)}
    keys.sort(key=lambda k: (order.get(k[0], 99), torder.get(k[1], 99), k[2]))
    out = []
    for fl, test, conns in keys:
        rs = [r for r in levels if (r["flavour"], r["test"], r["connections"]) == (fl, test, conns)]
        s = {"flavour": fl, "test": test, "connections": conns, "rounds": len(rs)}
        for floor in FLOORS:
            ratios = []
            if fl != floor:
                for r in rs:
                    f = floor_ns.get((floor, r["round"], test, conns))
                    if f and r["ns_per_req"]:
                        ratios.append(r["ns_per_req"] / f)
            s[ratio_key(floor)] = _med(ratios) if ratios else None
        for key in ("rps", "lat_avg_us", "lat_p99_us", "ns_per_req", "cpu_util_pct",
                    "threads", "vmhwm_kb", "vmrss_kb", "wrk_ns_per_req",
                    "user_ns_per_req", "sys_ns_per_req"):
            s[key] = _med([r.get(key) for r in rs])
        for key in EXTRA_MEDIANS:  # only where the feature produced them
            if any(key in r for r in rs):
                s[key] = _med([r.get(key) for r in rs])
        for key in ("err_connect", "err_read", "err_write", "err_timeout", "non2xx"):
            s[key] = sum(r[key] for r in rs)
        out.append(s)
    add_lat_scores(out)
    return out


def add_lat_scores(summary):
    """HttpArena's latScore (scripts/latency_score.py): each fixed-rate row
    against the best CPU per request, p99 and mean of the rows at its rate."""
    def clamp01(x):
        return max(0.0, min(1.0, x))
    for s in summary:
        if not TESTS[s["test"]].fixed_rate:
            continue
        peers = [r for r in summary if r["test"] == s["test"]
                 and r["connections"] == s["connections"]]
        best = {k: min((r[k] for r in peers if r.get(k)), default=None)
                for k in ("ns_per_req", "lat_p99_us", "lat_avg_us")}
        if not s.get("rps") or None in best.values():
            s["lat_score"] = None
            continue
        rate_factor = clamp01(s["rps"] / (0.95 * s["connections"]))
        cpu = clamp01(best["ns_per_req"] / s["ns_per_req"]) if s.get("ns_per_req") else 0.0
        p99 = clamp01(1 - math.log10(s["lat_p99_us"] / best["lat_p99_us"]) / 3) \
            if s.get("lat_p99_us") else 0.0
        mean = clamp01(1 - math.log10(s["lat_avg_us"] / best["lat_avg_us"])) \
            if s.get("lat_avg_us") else 0.0
        s["lat_score"] = 100 * rate_factor * (0.50 * cpu + 0.25 * p99 + 0.25 * mean)


def ratio_key(floor):
    return floor.replace("-", "_") + "_ratio"


def markdown(summary, floors, rounds, notes=()):
    throttled = any(s.get("throttled_pct") is not None for s in summary)
    spread = any(s.get("stats_spread") is not None or s.get("stats_min_requests") is not None
                 for s in summary)
    head = ["flavour", "test", "conns", "req/s", "lat avg", "lat p99",
            "sock errs c/r/w/t", "non-2xx", "CPU %", "threads", "ns/req",
            "user/sys ns", "wrk ns/req"]
    head += [f"× {floor}" for floor in floors]
    head += ["VmHWM MiB", "VmRSS MiB"]
    head += ["throttled %"] if throttled else []
    head += ["req/worker max/min"] if spread else []
    scored = any("lat_score" in s for s in summary)
    head += ["latScore"] if scored else []
    lines = [f"{n}" for n in notes] + ([""] if notes else [])
    lines += [f"Medians over {rounds} round(s); socket errors and non-2xx are sums."
             + (" \"× floor\": the median of each round's ratio of server CPU ns/request "
                "to that floor's in the same round." if floors else "")
             + (" throttled %: quota periods in which the server used up its quota."
                if throttled else "")
             + (" req/worker max/min: the spread of requests over the server's workers "
                "(--stats), per level." if spread else ""), "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if i > 1 else "---" for i in range(len(head))) + "|"]
    empty = [s for s in summary if not s["rps"]]
    for s in summary:
        level = (f"q={s['connections']}" if TESTS[s["test"]].fixed_rate
                 else str(s["connections"]))
        cells = [s["flavour"], s["test"], level,
                 f"{s['rps']:,.0f}" if s["rps"] is not None else "-",
                 _fmt_lat(s["lat_avg_us"]), _fmt_lat(s["lat_p99_us"]),
                 f"{s['err_connect']}/{s['err_read']}/{s['err_write']}/{s['err_timeout']}",
                 str(s["non2xx"]),
                 f"{s['cpu_util_pct']:.0f}" if s["cpu_util_pct"] is not None else "-",
                 f"{s['threads']:.0f}" if s["threads"] is not None else "-",
                 f"{s['ns_per_req']:,.0f}" if s["ns_per_req"] is not None else "-",
                 f"{s['user_ns_per_req']:,.0f}/{s['sys_ns_per_req']:,.0f}"
                 if s.get("user_ns_per_req") is not None else "-",
                 f"{s['wrk_ns_per_req']:,.0f}" if s.get("wrk_ns_per_req") is not None else "-"]
        for floor in floors:
            ratio = s.get(ratio_key(floor))
            cells.append(f"{ratio:.2f}" if ratio is not None else "-")
        cells += [f"{s['vmhwm_kb'] / 1024:.1f}" if s["vmhwm_kb"] is not None else "-",
                  f"{s['vmrss_kb'] / 1024:.1f}" if s["vmrss_kb"] is not None else "-"]
        if throttled:
            cells.append(f"{s['throttled_pct']:.0f}" if s.get("throttled_pct") is not None
                         else "-")
        if spread:
            cells.append(_spread_cell(s))
        if scored:
            cells.append(f"{s['lat_score']:.1f}" if s.get("lat_score") is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    if any(TESTS[s["test"]].depth > 1 and s["rps"] is not None and s["lat_p99_us"] is None
           for s in summary):
        lines.append("\nlat p99 `-` for pipelined runs: wrk 4.x's coordinated-omission "
                     "correction adds samples below its recorded minimum, so its high "
                     "percentiles read 0; the raw output is in raw/.")
    if empty:
        lines.append("\n" + ", ".join(f"{s['flavour']} {s['test']} c={s['connections']}"
                                      for s in empty)
                     + ": no request completed. wrk opens all its connections before the "
                     "first request, one connect() at a time per thread; at high counts on a "
                     "slow or busy host (0.37 ms per loopback connect() measured on the 2-vCPU "
                     "dev VM under load) that outlasts a short --duration. Use a longer "
                     "--duration or more wrk CPUs.")
    return "\n".join(lines) + "\n"


def ensure_gnuplot():
    if shutil.which("gnuplot"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("bench: gnuplot missing; trying `apt-get install -y gnuplot-nox`")
        try:
            subprocess.run(["apt-get", "install", "-y", "gnuplot-nox"], timeout=180,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return shutil.which("gnuplot") is not None


def plot(summary, flavours, outdir):
    pts = {}
    for s in summary:
        if s["test"] == "plaintext" and s["rps"] is not None:
            pts.setdefault(s["flavour"], []).append(
                (s["connections"], s["rps"], s["ns_per_req"] or 0))
    if not pts:
        log("bench: no plaintext results; no plot")
        return None
    if not ensure_gnuplot():
        log("bench: gnuplot not found and `apt-get install -y gnuplot-nox` failed; "
            "skipping the plot (data is in results.csv)")
        return None
    names = [f for f in flavours if f in pts]
    for f in names:
        with open(os.path.join(outdir, f"plaintext-{f}.dat"), "w") as fh:
            fh.write("# connections req/s ns/req\n")
            for c, rps, ns in sorted(pts[f]):
                fh.write(f"{c} {rps} {ns}\n")
    png = os.path.join(outdir, "plaintext.png")
    terms = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True,
                           text=True).stdout + subprocess.run(
        ["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stderr
    term = "pngcairo size 1400,560" if "pngcairo" in terms else "png size 1400,560"

    def plotcmd(col):
        return ", ".join(
            f"'{os.path.join(outdir, f'plaintext-{f}.dat')}' using 1:{col} "
            f"with linespoints lw 2 title '{f}'" for f in names)

    script = f"""set terminal {term}
set output '{png}'
set multiplot layout 1,2 title 'plaintext (pipeline depth {PIPELINE_DEPTH})'
set logscale x 2
set xlabel 'connections'
set grid
set yrange [0:*]
set key right top
set format y '%.1s%c'
set ylabel 'requests/s'
set title 'throughput'
plot {plotcmd(2)}
set ylabel 'server CPU ns/request'
set title 'server CPU per request'
set format y '%g'
set key right bottom
plot {plotcmd(3)}
unset multiplot
"""
    with open(os.path.join(outdir, "plot.gp"), "w") as f:
        f.write(script)
    p = subprocess.run(["gnuplot", os.path.join(outdir, "plot.gp")], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        log(f"bench: gnuplot failed: {p.stderr.strip()[:500]}")
        return None
    return png


def write_load_results(args, meta, rows, summary, problems, notes, server_stats, flavours):
    md = markdown(summary, [f for f in FLOORS if f in flavours], args.rounds,
                  context_notes(meta))
    if problems:
        md += "\nProblems:\n\n" + "\n".join(f"- {p}" for p in problems) + "\n"
    if notes:
        md += "\nNotes:\n\n" + "\n".join(f"- {p}" for p in notes) + "\n"
    fields = CSV_FIELDS + [k for k in CSV_EXTRA if any(k in r for r in rows)]
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    meta["mode"] = "load"
    data = {"meta": meta, "runs": rows, "summary": summary, "problems": problems}
    if notes:
        data["notes"] = notes
    if server_stats:
        data["server_stats"] = server_stats
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(data, f, indent=2)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    png = None if args.no_plot else plot(summary, flavours, args.out)
    print(md)
    log(f"bench: wrote {args.out}/results.{{csv,json,md}}" + (f" and {png}" if png else ""))


def plot_only(args):
    path = os.path.join(args.plot_only, "results.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        die(f"cannot read {path}: {e}")
    meta, summary = data["meta"], data["summary"]
    flavours = meta["flavours"]
    if FLOOR in flavours and not any(ratio_key(FLOOR_MEMCHR) in s for s in summary):
        log(f"bench: {path} predates the two floors: its 'floor' is the memchr floor "
            f"(what is now 'floor-memchr'), and its ratios are to that one")
    md = markdown(summary, [f for f in FLOORS if f in flavours], meta.get("rounds", 1),
                  context_notes(meta))
    if data.get("problems"):
        md += "\nProblems:\n\n" + "\n".join(f"- {p}" for p in data["problems"]) + "\n"
    if data.get("notes"):
        md += "\nNotes:\n\n" + "\n".join(f"- {p}" for p in data["notes"]) + "\n"
    with open(os.path.join(args.plot_only, "results.md"), "w") as f:
        f.write(md)
    png = None if args.no_plot else plot(summary, flavours, args.plot_only)
    print(md)
    if png:
        log(f"bench: wrote {png}")
    return 0
