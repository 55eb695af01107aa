"""The request shapes: TFB's json and plaintext tests and HttpArena's three
profiles (--httparena), with the wrk script and arguments each level uses."""

import os

from .common import (HTTPARENA_LEVELS, JSON_LEVELS, PIPELINE_DEPTH, PLAINTEXT_LEVELS,
                     SCRIPTS)

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


class Test:
    """One test: its path, its levels, and how wrk loads it."""

    def __init__(self, name, path, levels, accept=None, level_lua=None, level_lua_args=(),
                 warm_lua=None, warm_lua_args=(), depth=0, floors=True, httparena=False):
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
}
TFB_TESTS = ("json", "plaintext")
HTTPARENA_TESTS = ("baseline", "pipelined", "limited-conn")
