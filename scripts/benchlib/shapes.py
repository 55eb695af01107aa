"""The request shapes: TFB's json and plaintext tests and HttpArena's
profiles (--httparena), with the client, script and arguments each level
uses."""

import os

from .common import (ASYNC_LEVELS, ECHO_LEVELS, HTTPARENA_LEVELS, JSON_LEVELS,
                     LATENCY_RATES, PIPELINE_DEPTH, PLAINTEXT_LEVELS, SCRIPTS)

ACCEPT = {
    # TFB's Accept headers per test type.
    "plaintext": "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,"
    "application/xml;q=0.8,*/*;q=0.7",
    "json": "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,"
    "application/xml;q=0.8,*/*;q=0.7",
}
URLS = {"plaintext": "/plaintext", "json": "/json"}
EXPECTED_BODY = {
    "plaintext": (b"Hello, World!", "text/plain"),
    "json": (b'{"message":"Hello, World!"}', "application/json"),
}

HTTPARENA_LUA = os.path.join(SCRIPTS, "httparena.lua")
# Connections of HttpArena's limited-conn profile live this many requests.
LIMITED_CONN_REQUESTS = 10

# HttpArena's baseline request shapes, byte for byte (scripts/httparena.lua
# sends the same), and the body each answer must carry.
BASELINE_PATH = "/baseline11?a=13&b=42"
BASELINE_SHAPES = (
    ("GET", b"GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", b"55"),
    ("POST Content-Length",
     b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
     b"Content-Length: 2\r\n\r\n20", b"75"),
    ("POST chunked",
     b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n2\r\n20\r\n0\r\n\r\n", b"75"),
)
PIPELINE_REQUEST = b"GET /pipeline HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
PIPELINE_BODY = b"ok"
# latency-1m and latency-10k's request (HttpArena's requests/baseline11.raw
# shape, GET with a=1&b=2) and the 8gbit body: "echo-body:" repeated.
LATENCY_PATH = "/baseline11?a=1&b=2"
ECHO_BODY = (b"echo-body:" * 1024)[:10240]
DELAY_MS = 10


class Test:
    """One test: its path, its levels, and how wrk loads it."""

    def __init__(self, name, path, levels, accept=None, level_lua=None, level_lua_args=(),
                 warm_lua=None, warm_lua_args=(), depth=0, floors=True, httparena=False,
                 tls=False, fixed_rate=False):
        self.name = name
        self.path = path
        self.levels = levels
        self.accept = accept
        self.level_lua = level_lua  # "pipeline" (scripts/pipeline.lua) or a path
        self.level_lua_args = list(level_lua_args)
        self.warm_lua = warm_lua  # the script for the primer and the warm-up, if any
        self.warm_lua_args = list(warm_lua_args)
        self.depth = depth  # requests in flight per connection at the levels
        self.floors = floors  # whether the floors answer this shape
        self.httparena = httparena
        self.tls = tls  # over the TLS port (https://)
        # Levels are request rates held by oha over LATENCY_CONNECTIONS, not
        # connection counts for wrk.
        self.fixed_rate = fixed_rate


TESTS = {
    "json": Test("json", "/json", JSON_LEVELS, accept=ACCEPT["json"]),
    "plaintext": Test("plaintext", "/plaintext", PLAINTEXT_LEVELS, accept=ACCEPT["plaintext"],
                      level_lua="pipeline", level_lua_args=[str(PIPELINE_DEPTH)],
                      depth=PIPELINE_DEPTH),
    # HttpArena's profiles, at its 4,096 connections.
    "baseline": Test("baseline", BASELINE_PATH, HTTPARENA_LEVELS,
                     level_lua=HTTPARENA_LUA, level_lua_args=["baseline"],
                     warm_lua=HTTPARENA_LUA, warm_lua_args=["baseline"],
                     floors=False, httparena=True),
    # The floors answer /pipeline with their plaintext response: the
    # plaintext shape (13-byte body where the servers send 2).
    "pipelined": Test("pipelined", "/pipeline", HTTPARENA_LEVELS,
                      level_lua="pipeline", level_lua_args=[str(PIPELINE_DEPTH)],
                      depth=PIPELINE_DEPTH, httparena=True),
    "limited-conn": Test("limited-conn", BASELINE_PATH, HTTPARENA_LEVELS,
                         level_lua=HTTPARENA_LUA,
                         level_lua_args=["limited", str(LIMITED_CONN_REQUESTS)],
                         warm_lua=HTTPARENA_LUA,
                         warm_lua_args=["limited", str(LIMITED_CONN_REQUESTS)],
                         floors=False, httparena=True),
    "json-tls": Test("json-tls", "/json/1?m=3", HTTPARENA_LEVELS,
                     level_lua=HTTPARENA_LUA, level_lua_args=["json-tls"],
                     warm_lua=HTTPARENA_LUA, warm_lua_args=["json-tls"],
                     floors=False, httparena=True, tls=True),
    # 8gbit: HttpArena holds 50,000 req/s with zrk; wrk here runs closed-loop,
    # which gives the CPU per echo, not the fixed-rate latency.
    "echo": Test("echo", "/echo", ECHO_LEVELS,
                 level_lua=HTTPARENA_LUA, level_lua_args=["echo", str(len(ECHO_BODY))],
                 warm_lua=HTTPARENA_LUA, warm_lua_args=["echo", str(len(ECHO_BODY))],
                 floors=False, httparena=True, tls=True),
    # Every request on a new TLS connection (`Connection: close` on each, so
    # wrk reconnects): req/s is handshakes a second, ns/req their CPU.
    "tls-handshake": Test("tls-handshake", BASELINE_PATH, HTTPARENA_LEVELS,
                          level_lua=HTTPARENA_LUA, level_lua_args=["limited", "1"],
                          warm_lua=HTTPARENA_LUA, warm_lua_args=["limited", "1"],
                          floors=False, httparena=True, tls=True),
    "async": Test("async", f"/delay/{DELAY_MS}", ASYNC_LEVELS, floors=False, httparena=True),
    "latency": Test("latency", LATENCY_PATH, LATENCY_RATES, floors=False, httparena=True,
                    fixed_rate=True),
}
TFB_TESTS = ("json", "plaintext")
HTTPARENA_TESTS = ("baseline", "limited-conn", "async", "latency", "json-tls", "echo")
ALL_HTTPARENA_TESTS = ("baseline", "pipelined", "limited-conn", "async", "latency", "json-tls",
                       "echo", "tls-handshake")
