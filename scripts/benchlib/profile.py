"""--profile: deterministic per-request figures for every flavour and the
floors: user-space instructions per request (valgrind callgrind, counters
zeroed after a warm-up, dumped after exactly --profile-requests requests) and
syscalls per request (strace -c -f attached for a separate measured run), the
load from the bounded generator in client.py."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import time

from .client import LoadClient
from .common import FLOORS, PIPELINE_DEPTH, die, log
from .servers import Server, pick_port, server_argv
from .shapes import TESTS


def _parse_callgrind_total(path):
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    return total


def _parse_callgrind_calls(path, function):
    """Calls to `function` (any symbol version, `epoll_wait@@GLIBC_2.3.2` too)
    recorded in a callgrind dump: the `calls=` lines after its `cfn=`."""
    names, callee, n = {}, None, 0
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("fn=", "cfn=")):
                m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("cfn=") and m:
                    callee = names.get(m.group(1))
            elif (line.startswith("calls=") and callee is not None
                  and callee.split("@")[0] == function):
                n += int(line.split()[0][len("calls="):])
    return n


def _run(cmd, timeout):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def profile_callgrind(args, flavour, cases, profdir):
    port = pick_port(args.port)
    base = os.path.join(profdir, f"callgrind.{flavour}.out")
    for old in [p for p in os.listdir(profdir) if p.startswith(os.path.basename(base))]:
        os.remove(os.path.join(profdir, old))
    under = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={base}"]
    server = Server(flavour, server_argv(args, flavour, port, under), port, profdir,
                    f"callgrind-{flavour}", start_timeout=300)
    res = {}
    try:
        for test, conns, depth in cases:
            label = f"{test}-{conns}x{depth}"
            client = LoadClient(port, test, conns, depth)
            try:
                client.run(args.profile_warmup, timeout_s=900)
                z = _run(["callgrind_control", "-z", str(server.pid)], 120)
                if z.returncode != 0:
                    die(f"callgrind_control -z failed: {z.stdout}{z.stderr}")
                before = set(os.listdir(profdir))
                r = client.run(args.profile_requests, timeout_s=1800)
                d = _run(["callgrind_control", "-d", f"{flavour}-{label}", str(server.pid)],
                         300)
                if d.returncode != 0:
                    die(f"callgrind_control -d failed: {d.stdout}{d.stderr}")
            finally:
                client.close()
            new = []
            deadline = time.monotonic() + 60
            while not new and time.monotonic() < deadline:
                new = sorted(p for p in set(os.listdir(profdir)) - before
                             if p.startswith(os.path.basename(base)))
                if not new:
                    time.sleep(0.2)
            if not new:
                die(f"no callgrind dump appeared for {flavour} {label} in {profdir}")
            dump = os.path.join(profdir, new[-1])
            ir = None
            for _ in range(50):  # the dump may still be written; bounded retries
                ir = _parse_callgrind_total(dump)
                if ir:
                    break
                time.sleep(0.2)
            # Each epoll_wait is one wakeup of the server thread; its fixed
            # cost is spread over the requests that wakeup finds, which
            # depends on how the client's pace and the server's interleave.
            waits = _parse_callgrind_calls(dump, "epoll_wait")
            res[(test, conns)] = {"ir": ir, "requests": r["requests"], "non200": r["non200"],
                                  "dump": dump, "seconds": r["seconds"], "epoll_waits": waits}
            log(f"bench:   callgrind {flavour} {label}: {ir} Ir / {r['requests']} req "
                f"= {ir / r['requests']:.0f} instr/req, {waits} epoll_wait "
                f"({r['seconds']:.1f}s)")
    finally:
        rc, problem = server.stop(timeout_s=60)
        if problem:
            log(f"bench: PROBLEM under callgrind: {problem}")
    return res


def _parse_strace_summary(path):
    calls = {}
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or not re.match(r"^[0-9.]+$", parts[0]):
                continue
            try:
                ncalls = int(parts[3])
            except ValueError:
                continue
            name = parts[-1]
            if name == "total":
                total = ncalls
            else:
                calls[name] = ncalls
    return total, calls


def profile_strace(args, flavour, cases, profdir):
    port = pick_port(args.port)
    server = Server(flavour, server_argv(args, flavour, port), port, profdir,
                    f"strace-{flavour}")
    res = {}
    try:
        for test, conns, depth in cases:
            client = LoadClient(port, test, conns, depth)
            try:
                res[(test, conns)] = _strace_pass(args, server, flavour,
                                                  f"{test}-{conns}x{depth}", client, profdir)
            finally:
                client.close()
    finally:
        rc, problem = server.stop()
        if problem:
            log(f"bench: PROBLEM after strace: {problem}")
    return res


def _strace_pass(args, server, flavour, label, client, profdir):
    client.run(args.profile_warmup, timeout_s=300)
    out = os.path.join(profdir, f"strace.{flavour}.{label}.txt")
    errf = open(os.path.join(profdir, f"strace.{flavour}.{label}.stderr"), "w+")
    nthreads = len(os.listdir(f"/proc/{server.pid}/task"))
    st = subprocess.Popen(["strace", "-c", "-f", "-p", str(server.pid), "-o", out],
                          stdout=subprocess.DEVNULL, stderr=errf)
    # Wait until strace says it attached to every thread (bounded).
    deadline = time.monotonic() + 20
    attached = 0
    while time.monotonic() < deadline and st.poll() is None:
        errf.seek(0)
        text = errf.read()
        # "Process N attached with K threads" (all at once) or one
        # "Process N attached" line per thread.
        attached = sum(int(k) for k in re.findall(r"attached with (\d+) threads", text))
        attached += len(re.findall(r"attached$", text, re.M))
        if attached >= nthreads:
            break
        time.sleep(0.05)
    if attached < nthreads:
        st.kill()
        st.wait()
        errf.seek(0)
        die(f"strace attached to {attached}/{nthreads} threads of {flavour}: "
            f"{errf.read()[-1000:]}")
    try:
        r = client.run(args.profile_requests, timeout_s=600)
    finally:
        st.send_signal(signal.SIGINT)
        try:
            st.wait(timeout=60)
        except subprocess.TimeoutExpired:
            st.kill()
            st.wait()
        errf.close()
    total, calls = _parse_strace_summary(out)
    log(f"bench:   strace {flavour} {label}: {total} syscalls / {r['requests']} req "
        f"= {(total or 0) / r['requests']:.3f} per req")
    return {"syscalls": total, "requests": r["requests"], "calls": calls,
            "non200": r["non200"], "summary": out}


def profile_cases(args):
    """(test, connections, depth) per measured case: plaintext (and
    HttpArena's /pipeline, with --tests pipelined) pipelined on
    --profile-connections, json (and HttpArena's baseline, its three
    /baseline11 templates in turn, with --tests baseline) with one request in
    flight per connection on each of --profile-json-connections (1 by
    default: every request then costs one wakeup of the server, so the count
    is exact and repeats). The floors answer no baseline request."""
    cases = []
    for test in args.tests:
        if test in ("plaintext", "pipelined"):
            cases.append((test, args.profile_connections, PIPELINE_DEPTH))
        else:
            cases += [(test, c, 1) for c in args.profile_json_connections]
    return cases


def profile_mode(args, flavours):
    for tool in ("valgrind", "callgrind_control", "strace"):
        if not shutil.which(tool):
            die(f"{tool} not found (apt-get install -y valgrind strace)")
    profdir = os.path.join(args.out, "profile")
    os.makedirs(profdir, exist_ok=True)
    rows = []
    for flavour in flavours:
        log(f"bench: profile {flavour}")
        cases = [case for case in profile_cases(args)
                 if flavour not in FLOORS or TESTS[case[0]].floors]
        cg = profile_callgrind(args, flavour, cases, profdir)
        stc = profile_strace(args, flavour, cases, profdir)
        for test, conns, depth in cases:
            c, s = cg.get((test, conns), {}), stc.get((test, conns), {})
            top = sorted(s.get("calls", {}).items(), key=lambda kv: -kv[1])[:4]
            rows.append({
                "flavour": flavour, "test": test,
                "connections": conns,
                "depth": depth,
                "requests": c.get("requests"),
                "instructions": c.get("ir"),
                "instr_per_req": (c["ir"] / c["requests"]) if c.get("ir") else None,
                "waits_per_req": (c["epoll_waits"] / c["requests"])
                if c.get("epoll_waits") is not None and c.get("requests") else None,
                "syscalls": s.get("syscalls"),
                "syscalls_per_req": (s["syscalls"] / s["requests"])
                if s.get("syscalls") is not None else None,
                "top_syscalls_per_req": {k: v / s["requests"] for k, v in top}
                if s.get("requests") else {},
                "non200": (c.get("non200") or 0) + (s.get("non200") or 0),
            })
    floors = [f for f in FLOORS if any(r["flavour"] == f for r in rows)]
    fl = {(r["flavour"], r["test"], r["connections"]): r
          for r in rows if r["flavour"] in FLOORS}
    head = ["flavour", "test", "conns×depth", "instr/req", "wakeups/req", "syscalls/req"]
    for floor in floors:
        head += [f"instr × {floor}", f"syscalls × {floor}"]
    head += ["top syscalls/req", "non-2xx"]
    lines = [f"Profile: {args.profile_requests} measured requests after "
             f"{args.profile_warmup} warm-up; instructions = callgrind Ir (user space, "
             f"all threads); wakeups = epoll_wait calls in the callgrind pass (each one's "
             f"fixed cost is shared by the requests it finds, so instr/req moves with "
             f"them); syscalls = strace -c -f, separate pass.", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i < 3 or i >= len(head) - 2 else "---:"
                            for i in range(len(head))) + "|"]
    for r in rows:
        cells = [r["flavour"], r["test"], f"{r['connections']}×{r['depth']}",
                 f"{r['instr_per_req']:,.0f}" if r["instr_per_req"] else "-",
                 f"{r['waits_per_req']:.3f}" if r.get("waits_per_req") is not None else "-",
                 f"{r['syscalls_per_req']:.3f}" if r["syscalls_per_req"] is not None else "-"]
        for floor in floors:
            f = fl.get((floor, r["test"], r["connections"]))
            ri = (r["instr_per_req"] / f["instr_per_req"]
                  if f and f["instr_per_req"] and r["instr_per_req"] else None)
            rs = (r["syscalls_per_req"] / f["syscalls_per_req"]
                  if f and f["syscalls_per_req"] and r["syscalls_per_req"] is not None
                  else None)
            cells += [f"{ri:.2f}" if ri else "-", f"{rs:.2f}" if rs else "-"]
        cells.append(", ".join(f"{k} {v:.3f}" for k, v in r["top_syscalls_per_req"].items()))
        cells.append(str(r["non200"]))
        lines.append("| " + " | ".join(cells) + " |")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "profile.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "profile.json"), "w") as f:
        json.dump(rows, f, indent=2)
    with open(os.path.join(args.out, "profile.csv"), "w", newline="") as f:
        w = csv.writer(f)
        keys = ("flavour", "test", "connections", "depth", "requests", "instructions",
                "instr_per_req", "waits_per_req", "syscalls", "syscalls_per_req", "non200")
        w.writerow(keys)
        for r in rows:
            w.writerow([r.get(k) for k in keys])
    print(md)
    log(f"bench: profile written to {args.out}/profile.{{md,csv,json}} "
        f"(dumps and strace summaries in {profdir})")
