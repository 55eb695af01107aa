"""The per-worker table chopin prints on stderr with --stats (on SIGUSR1 and
at exit), one line per worker, each starting with `stats:`:

    stats: worker core accepted requests reads wakeups user_ms system_ms closed
    stats: 0 1 128 1000000 62500 6000 1234 5678 128
    stats: total - 128 1000000 62500 6000 1234 5678 128

`core` is `-` for an unpinned worker. Columns are taken by the header's
names, so added or reordered ones parse too; lines that do not parse are
skipped, and output with no table (an older binary) gives none."""

import re

_LINE = re.compile(r"^\s*stats:\s+(.*?)\s*$", re.M)
DEFAULT_COLUMNS = ("worker", "core", "accepted", "requests", "reads", "wakeups",
                   "user_ms", "system_ms")


def _value(text):
    if text == "-":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def parse_tables(text):
    """Every complete table in text, oldest first: a list of
    {'workers': {id: {column: value}}, 'total': {column: value} or None}."""
    tables, cur, cols = [], None, list(DEFAULT_COLUMNS)
    text = text[:text.rfind("\n") + 1]  # a line still being written is not read
    for m in _LINE.finditer(text):
        words = m.group(1).split()
        if not words:
            continue
        if words[0] == "worker":
            cols = words
            cur = {"workers": {}, "total": None}
            continue
        if cur is None:
            cur = {"workers": {}, "total": None}
        row = {c: _value(w) for c, w in zip(cols, words)}
        if words[0] == "total":
            cur["total"] = row
            tables.append(cur)
            cur = None
        elif isinstance(row.get("worker"), int):
            cur["workers"][row["worker"]] = row
    return tables


def _num(v):
    return v if isinstance(v, (int, float)) else 0


def diff(before, after):
    """Per-level figures from two tables: per worker and total counts, the
    spread of requests across workers (max/min) and per-request ratios."""
    if not before or not after:
        return None
    workers = []
    for wid, a in sorted(after["workers"].items()):
        b = before["workers"].get(wid, {})
        d = {"worker": wid, "core": a.get("core")}
        for col, v in a.items():
            if col not in ("worker", "core") and isinstance(v, (int, float)):
                d[col] = v - _num(b.get(col))
        workers.append(d)
    if not workers:
        return None
    total = {}
    for w in workers:
        for col, v in w.items():
            if col not in ("worker", "core"):
                total[col] = total.get(col, 0) + v
    reqs = [w.get("requests", 0) for w in workers]
    req = total.get("requests") or 0
    return {
        "workers": workers,
        "requests": req,
        "spread": (max(reqs) / min(reqs)) if reqs and min(reqs) > 0 else None,
        "min_requests": min(reqs) if reqs else None,
        "max_requests": max(reqs) if reqs else None,
        "reads_per_req": (total.get("reads", 0) / req) if req else None,
        "wakeups_per_req": (total.get("wakeups", 0) / req) if req else None,
    }


def row_fields(d):
    """The flat fields of a level's row (CSV columns) from diff()'s result."""
    if not d:
        return {}
    return {
        "stats_requests": d["requests"],
        "stats_spread": round(d["spread"], 3) if d["spread"] is not None else None,
        "stats_min_requests": d["min_requests"],
        "stats_max_requests": d["max_requests"],
        "stats_reads_per_req": round(d["reads_per_req"], 4)
        if d["reads_per_req"] is not None else None,
        "stats_wakeups_per_req": round(d["wakeups_per_req"], 4)
        if d["wakeups_per_req"] is not None else None,
        "stats_workers": d["workers"],
    }
