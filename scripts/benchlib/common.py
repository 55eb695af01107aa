"""Constants, logging, errors and the clean-up of everything scripts/bench
(and the scripts beside it) start."""

import os
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "scripts")
HOST = "127.0.0.1"

JSON_LEVELS = [16, 32, 64, 128, 256, 512]
PLAINTEXT_LEVELS = [256, 1024, 4096, 16384]
HTTPARENA_LEVELS = [4096]
# HttpArena's other engine profiles: 8gbit's 512 connections, async's 32,000
# (fewer where the fd limit is lower: the run says what it used), and the
# fixed rates of latency-1m and latency-10k with 100,000 between, over 1,024.
ECHO_LEVELS = [512]
ASYNC_LEVELS = [32000]
LATENCY_RATES = [1000, 10000, 100000]
LATENCY_CONNECTIONS = 1024
WARMUP_CONNECTIONS = 512
PRIMER_CONNECTIONS = 8
PIPELINE_DEPTH = 16
WRK_TIMEOUT_S = 8
FD_MARGIN = 256
# Levels from this many connections up get --long-level-duration.
LONG_LEVEL_CONNECTIONS = 16384

FLOOR = "floor"
FLOOR_MEMCHR = "floor-memchr"
FLOORS = (FLOOR, FLOOR_MEMCHR)
FLOOR_SCAN = {FLOOR: "bytes", FLOOR_MEMCHR: "memchr"}
CLK_TCK = os.sysconf("SC_CLK_TCK")

_children = []  # every server process started, killed on exit
STATE = {"stopping": False}  # set once a signal has ended the run
_cleanups = []  # callables undoing host changes (cgroups, namespaces), run on exit
_prog = "bench"  # the script's name in die()'s lines


def set_prog(name):
    """Names the running script in die()'s lines (default bench)."""
    global _prog
    _prog = name


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg, code=2):
    log(f"{_prog}: error: {msg}")
    sys.exit(code)


def track_child(proc):
    _children.append(proc)


def on_exit(fn):
    """Registers fn to run at exit (after the servers are killed), latest first."""
    _cleanups.append(fn)
    return fn


def forget_exit(fn):
    if fn in _cleanups:
        _cleanups.remove(fn)


def kill_children():
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=10)
            except Exception:  # noqa: BLE001 - best effort on exit
                pass
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - best effort on exit
            log(f"bench: clean-up failed: {e}")


def _on_signal(signum, _frame):
    STATE["stopping"] = True
    log(f"bench: {signal.Signals(signum).name}: stopping the servers and cleaning up")
    kill_children()
    sys.exit(128 + signum)


def install_handlers():
    import atexit
    atexit.register(kill_children)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
