"""Check a running server the way HttpArena checks its baseline, pipelined,
limited-conn, async, json-tls and 8gbit entries, byte-exact over raw sockets
(and TLS), plus the framing the load generator (gcannon) depends on and
chopin's own answers to bad input.

Groups of checks (docs/httparena.md describes each in full):
  baseline      HttpArena's scripts/validate.sh baseline section: GET and POST
                /baseline11 (Content-Length and chunked bodies) as curl sends
                them, randomized values, its four TCP-fragmentation requests,
                and the load generator's templates (requests/get.raw,
                post_cl.raw, post_chunked.raw, valid-*.raw) byte for byte.
  pipelined     GET /pipeline; 16 requests in one write, as gcannon -p 16
                sends them, answered in order; a mixed pipelined batch.
  limited-conn  connections that send 10 requests and then reset, as
                gcannon -r 10 does, rotating through the templates.
  wire          each request shape split in two at every byte offset; no
                answer before the request is complete; Connection: close;
                lower-case field names; concurrent connections.
  errors        chopin's contract for input HttpArena never sends: 400 for a
                missing, repeated or non-decimal a, b or body and for a sum
                outside i64; 413 for a body over --max-body bytes; 404 for
                other paths.
  async         validate.sh's async section: GET /delay/N for a random N in
                10..90, /delay/0, /delay/10 against /delay/500, and 32
                overlapping requests, each answered with its own delay after
                at least 0.9 of it.
  frag          HttpArena's scripts/validate-frag.py: its nine request shapes
                split in two at every byte offset, each split on a connection
                of its own, in batches of 384 with one 200 ms pause between
                the two writes, each read to EOF.
  json-tls      over TLS on --tls-port: validate.sh's tls_posture_probe (the
                certificate is --cert's, TLS 1.3, an AEAD suite, ALPN none or
                http/1.1, through `openssl s_client`), tls_quality_probe (SSL 3,
                TLS 1.0 and 1.1, and TLS 1.2 with the NULL, aNULL, EXPORT, RC4,
                DES and 3DES families must not complete), HTTP/1.1 when curl's
                ALPN offer is made, and GET /json/{count}?m= for random pairs
                and the load's seven (checked against --dataset if given).
  8gbit         over TLS on --tls-port: the posture probe, and POST /echo of
                1, 1,024, 10,240 and 102,400 random bytes, chunked 10,240 and
                102,400, empty, and zrk's 10,240-byte request, byte for byte.
json-tls and 8gbit run only with --tls-port (and --cert); without it they are
left out of the default selection, with a SKIP line.
Every answer read in any group is also held to gcannon's response parser:
status line HTTP/1.1, head (status line to the empty line) at most 1,023
bytes, at most 16 fields, a Content-Length equal to the body's size.

Each check prints a PASS or FAIL line; the last line is "N passed, M failed".
Exit status: 0 all passed, 1 some check failed, 2 usage error or server
unreachable.
"""

import argparse
import random
import select
import socket
import struct
import sys
import time
import urllib.parse

import concurrent.futures
import hashlib
import json
import re
import shutil
import ssl
import subprocess
import threading

from .checks import Report

try:
    import fcntl
except ImportError:
    fcntl = None
# Linux's ioctl for the bytes of a socket's send queue not yet sent
# (linux/sockios.h). Unlike TIOCOUTQ it does not count bytes sent but not
# yet acknowledged, so waiting on it is not held up by delayed ACKs.
SIOCOUTQNSD = 0x894B if sys.platform.startswith("linux") and fcntl is not None else None

GROUPS = ("baseline", "pipelined", "limited-conn", "wire", "errors", "async", "frag", "json-tls", "8gbit")
# The groups that need --tls-port, and the method of each group whose name
# is no Python identifier.
TLS_GROUPS = ("json-tls", "8gbit")
METHODS = {"async": "async_", "json-tls": "json_tls", "8gbit": "eightgbit"}

# gcannon's response parser (src/http.c, include/http.h): the head is
# gathered in a 1,024-byte buffer with one byte kept for a NUL, and
# picohttpparser is given room for 16 fields. A longer head or more fields
# never completes, and the connection stalls for the rest of the run.
GCANNON_MAX_HEAD = 1023
GCANNON_MAX_FIELDS = 16

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)

# HttpArena's requests/*.raw, byte for byte (gcannon sends them verbatim).
RAW_GET = b"GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
RAW_POST_CL = (b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
               b"Content-Length: 2\r\n\r\n20")
RAW_POST_CHUNKED = (b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n2\r\n20\r\n0\r\n\r\n")
# gcannon's URL mode (src/http.c, http_build_pipeline) for
# http://localhost:8080/pipeline; requests/pipeline.raw holds the same bytes.
RAW_PIPELINE = b"GET /pipeline HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
# The three templates of the baseline and limited-conn profiles
# (scripts/lib/tools/gcannon.sh), in gcannon's rotation order.
TEMPLATES = [("get.raw", RAW_GET, b"55"), ("post_cl.raw", RAW_POST_CL, b"75"),
             ("post_chunked.raw", RAW_POST_CHUNKED, b"75")]


def raw_get(a, b, host=b"localhost:8080"):
    return b"GET /baseline11?a=%s&b=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a, b, host)


def raw_post(a, b, body):
    return (b"POST /baseline11?a=%s&b=%s HTTP/1.1\r\nHost: localhost:8080\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (a, b, len(body), body))


# requests/valid-get{1..5}.raw and valid-post{1..5}.raw (in the repository,
# not used by a current profile): the same shapes with other values.
VALID_RAWS = [
    ("valid-get1.raw", raw_get(b"13", b"42"), b"55"),
    ("valid-get2.raw", raw_get(b"99", b"1"), b"100"),
    ("valid-get3.raw", raw_get(b"7", b"88"), b"95"),
    ("valid-get4.raw", raw_get(b"55", b"45"), b"100"),
    ("valid-get5.raw", raw_get(b"200", b"300"), b"500"),
    ("valid-post1.raw", raw_post(b"7", b"19", b"5"), b"31"),
    ("valid-post2.raw", raw_post(b"33", b"22", b"11"), b"66"),
    ("valid-post3.raw", raw_post(b"50", b"50", b"25"), b"125"),
    ("valid-post4.raw", raw_post(b"1", b"2", b"100"), b"103"),
    ("valid-post5.raw", raw_post(b"10", b"20", b"3"), b"33"),
]

# What curl 8 sends for validate.sh's `curl -s ... URL` and
# `curl -X POST -H "Content-Type: text/plain" [-H "Transfer-Encoding: chunked"] -d BODY URL`.
CURL = b"Host: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n"


def curl_get(target):
    return b"GET %s HTTP/1.1\r\n%s\r\n" % (target, CURL)


def curl_post(target, body, chunked=False):
    head = b"POST %s HTTP/1.1\r\n%sContent-Type: text/plain\r\n" % (target, CURL)
    if chunked:
        return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


# The three TLS 1.3 AEAD suites validate.sh's posture probe accepts, as
# openssl names them.
TLS13_AEAD = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

# requests/json-tls-rotate.lua's (count, m) pairs, in its order.
JSON_TLS_ROTATION = [(1, 3), (5, 7), (10, 2), (15, 5), (25, 4), (40, 8), (50, 6)]


def echo_post(body, chunk=None):
    """curl's `-X POST --data-binary @file -H "Content-Type: application/octet-stream"
    https://localhost:8081/echo`, or with `-H "Transfer-Encoding: chunked"`."""
    head = (b"POST /echo HTTP/1.1\r\nHost: localhost:8081\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n"
            b"Content-Type: application/octet-stream\r\n")
    if chunk is None:
        return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    out = head + b"Transfer-Encoding: chunked\r\n\r\n"
    for at in range(0, len(body), chunk):
        piece = body[at:at + chunk]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


def cert_fingerprint(pem):
    """The SHA-256 fingerprint of a PEM certificate, as `openssl x509
    -fingerprint -sha256` writes it (AB:CD:...)."""
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def frag_parse(raw):
    """validate-frag.py's parse: (status, stripped body) of a raw answer,
    (-1, b"") when it is not one."""
    try:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            return -1, b""
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        fields = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            fields[k.strip().lower()] = v.strip()
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            out = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                n = int(size_line.split(b";")[0] or b"0", 16)
                if n == 0:
                    break
                out, rest = out + rest[:n], rest[n + 2:]
            body = out
        elif b"content-length" in fields:
            body = rest[:int(fields[b"content-length"])]
        else:
            body = rest
        return status, body.strip()
    except (ValueError, IndexError):
        return -1, b""


class ProtocolError(Exception):
    pass


class Unreachable(Exception):
    pass


class Response:
    def __init__(self, version, status, reason, fields, head, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.fields = fields  # [(name, value)] as sent, in order
        self.head = head  # the exact bytes, status line to the empty line
        self.body = body

    def header(self, name):
        name = name.lower()
        values = [v for k, v in self.fields if k.lower() == name]
        return values[0] if len(values) == 1 else (None if not values else ", ".join(values))

    def closes(self):
        v = self.header("Connection")
        return v is not None and "close" in [t.strip().lower() for t in v.split(",")]

    def short(self):
        return "%d %s, body %r" % (self.status, self.reason, self.body[:80])


class Wire:
    """Every answer seen, held to gcannon's parser limits at the end."""

    def __init__(self):
        self.answers = 0
        self.largest_head = (0, b"")
        self.most_fields = (0, b"")
        self.bad_version = []
        self.bad_length = []

    def record(self, r):
        self.answers += 1
        if len(r.head) > self.largest_head[0]:
            self.largest_head = (len(r.head), r.head)
        if len(r.fields) > self.most_fields[0]:
            self.most_fields = (len(r.fields), r.head)
        if r.version != "HTTP/1.1":
            self.bad_version.append(r.head.split(b"\r\n", 1)[0])
        cl = r.header("Content-Length")
        if cl is None or not cl.isdigit() or int(cl) != len(r.body) or r.header("Transfer-Encoding"):
            self.bad_length.append(r.head)


WIRE = Wire()


def connect(addr, timeout):
    """A TCP connection to addr whose every send leaves at once (TCP_NODELAY),
    so a split request reaches the server split; Unreachable if none."""
    try:
        sock = socket.create_connection(addr, timeout=timeout)
    except OSError as e:
        raise Unreachable("cannot connect to %s:%d: %s" % (addr[0], addr[1], e))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Conn:
    # What a read to EOF counts as the server's close, besides an empty read.
    CLOSES = (ConnectionResetError,)

    def __init__(self, addr, timeout):
        self.timeout = timeout
        self.sock = connect(addr, timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Close with an RST, as gcannon does when -r is set (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def delivered(self, grace):
        """Waits until every byte sent has left this socket (none is queued
        unsent), then up to `grace` seconds, time for the server to read
        them and for an answer that must not come yet. Returns the bytes
        that arrived early."""
        if SIOCOUTQNSD is not None:
            deadline = time.monotonic() + self.timeout
            buf = bytearray(4)
            while time.monotonic() < deadline:
                try:
                    fcntl.ioctl(self.sock.fileno(), SIOCOUTQNSD, buf)
                except OSError:
                    break
                if struct.unpack("i", buf)[0] == 0:
                    break
                time.sleep(0.0002)
        ready, _, _ = select.select([self.sock], [], [], grace)
        if ready:
            data = self.sock.recv(65536)
            self.buf += data
            return data or b"(connection closed)"
        return b""

    def send_split(self, data, at, grace):
        """Sends data[:at], waits for its delivery, then the rest. Returns
        whatever the server sent before the second part (it should be nothing)."""
        self.send(data[:at])
        early = self.delivered(grace)
        self.send(data[at:])
        return early

    def _fill(self):
        self.sock.settimeout(self.timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise ProtocolError("no answer within %gs (got %r so far)" % (self.timeout, self.buf[:200]))
        except ConnectionResetError:
            data = b""
        if not data:
            raise ProtocolError("connection closed%s" % (
                " mid-answer after %r" % self.buf[:200] if self.buf else " before any answer"))
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise ProtocolError("answer head over 64 KiB without an empty line")
            self._fill()
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            raise ProtocolError("bad status line %r" % lines[0])
        fields = []
        for line in lines[1:]:
            if b":" not in line:
                raise ProtocolError("bad field line %r" % line)
            k, v = line.split(b":", 1)
            fields.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        r = Response(parts[0].decode("latin-1"), int(parts[1]),
                     parts[2].decode("latin-1") if len(parts) > 2 else "", fields, head, b"")
        if r.status < 200 or r.status in (204, 304):  # no body
            WIRE.record(r)
            return r
        te = r.header("Transfer-Encoding")
        cl = r.header("Content-Length")
        if te is not None and "chunked" in te.lower():
            body = b""
            while True:
                size_line = self._line()
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    while self._line() != b"":
                        pass
                    break
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
            r.body = body
        elif cl is not None:
            if not cl.isdigit():
                raise ProtocolError("bad Content-Length %r" % cl)
            n = int(cl)
            while len(self.buf) < n:
                self._fill()
            r.body, self.buf = self.buf[:n], self.buf[n:]
        else:  # close-delimited
            r.body = self.buf + self.read_to_eof()
            self.buf = b""
        WIRE.record(r)
        return r

    def read_to_eof(self):
        """Every byte until the server closes; ProtocolError if it does not
        close within the timeout. A reset counts as a close (and over TLS,
        a close without close_notify)."""
        out = self.buf
        self.buf = b""
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError("the server did not close the connection within %gs "
                                    "(got %r meanwhile)" % (self.timeout, out[:200]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except self.CLOSES:
                return out
            if not data:
                return out
            out += data

    def quiet(self, wait):
        """True if nothing arrives (and the connection stays open) for `wait` s."""
        if self.buf:
            return False
        ready, _, _ = select.select([self.sock], [], [], wait)
        return not ready


class TlsConn(Conn):
    """A Conn over TLS: Python's ssl module (OpenSSL) as the client, with
    no certificate verification, as curl -k does (the posture probe checks
    the certificate by its fingerprint instead)."""

    CLOSES = (ConnectionResetError, ssl.SSLEOFError)

    def __init__(self, addr, timeout, server_name, alpn=("http/1.1",)):
        self.timeout = timeout
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        raw = connect(addr, timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=server_name)
        except (ssl.SSLError, OSError) as e:
            raw.close()
            raise ProtocolError("TLS handshake with %s:%d failed: %s" % (addr[0], addr[1], e))
        self.buf = b""

    def _fill(self):
        try:
            super()._fill()
        except ssl.SSLEOFError:
            raise ProtocolError("connection closed without close_notify%s" % (
                " mid-answer after %r" % self.buf[:200] if self.buf else " before any answer"))


def text_plain(ct):
    # validate.sh check_header: exactly the value, or the value then ';'.
    return ct is not None and (ct == "text/plain" or ct.startswith("text/plain;"))


class Validator:
    def __init__(self, addr, args):
        self.addr = addr
        self.args = args
        self.rep = Report()
        self.rng = random.Random(args.seed)
        # The TLS groups' settings (main fills them in when --tls-port is given).
        self.tls_addr = None
        self.cert_fp = None
        self.dataset = None
        self.openssl = shutil.which(args.openssl)

    def conn(self):
        return Conn(self.addr, self.args.timeout)

    def run(self, what, fn):
        """One check: fn() returns None (pass) or a failure detail."""
        try:
            detail = fn()
        except Unreachable as e:
            detail = str(e)
        except ProtocolError as e:
            detail = str(e)
        except OSError as e:
            detail = "%s: %s" % (type(e).__name__, e)
        self.rep.check(detail is None, what, detail or "")

    # --- helpers returning a failure detail or None ------------------------

    @staticmethod
    def expect(r, status=200, body=None, plain=False):
        if r.status != status:
            return "expected %d, got %s" % (status, r.short())
        if body is not None and r.body != body:
            return "expected body %r, got %r" % (body, r.body[:200])
        if plain and not text_plain(r.header("Content-Type")):
            return "expected Content-Type text/plain, got %r" % r.header("Content-Type")
        return None

    def one(self, raw, status=200, body=None, plain=False):
        c = self.conn()
        try:
            c.send(raw)
            return self.expect(c.response(), status, body, plain)
        finally:
            c.close()

    def after_error(self, c, r):
        """An answer that says Connection: close must be followed by the close;
        otherwise the connection must go on serving requests."""
        if r.closes():
            c.read_to_eof()
            return None
        c.send(RAW_PIPELINE)
        nxt = c.response()
        if nxt.status != 200 or nxt.body != b"ok":
            return ("the answer kept the connection open, but the next request on it "
                    "got %s" % nxt.short())
        return None

    def refused(self, raw, status):
        c = self.conn()
        try:
            c.send(raw)
            r = c.response()
            if r.status != status:
                return "expected %d, got %s" % (status, r.short())
            return self.after_error(c, r)
        finally:
            c.close()

    # --- groups -------------------------------------------------------------

    def probe(self):
        """HttpArena's readiness probe; an unreachable server ends the run."""
        c = self.conn()  # raises Unreachable
        c.close()
        self.run("GET /baseline11?a=1&b=1 (HttpArena's readiness probe): 200, body 2",
                 lambda: self.one(curl_get(b"/baseline11?a=1&b=1"), 200, b"2"))

    def baseline(self):
        self.run("GET /baseline11?a=13&b=42: 200, body 55, Content-Type text/plain",
                 lambda: self.one(curl_get(b"/baseline11?a=13&b=42"), 200, b"55", plain=True))
        self.run("POST /baseline11?a=13&b=42 body=20 (Content-Length): 200, body 75, "
                 "Content-Type text/plain",
                 lambda: self.one(curl_post(b"/baseline11?a=13&b=42", b"20"), 200, b"75", plain=True))
        self.run("POST /baseline11?a=13&b=42 chunked body=20: 200, body 75, Content-Type text/plain",
                 lambda: self.one(curl_post(b"/baseline11?a=13&b=42", b"20", chunked=True),
                                  200, b"75", plain=True))
        a, b = self.rng.randint(100, 999), self.rng.randint(100, 999)
        self.run("GET /baseline11?a=%d&b=%d (random): body %d" % (a, b, a + b),
                 lambda: self.one(curl_get(b"/baseline11?a=%d&b=%d" % (a, b)), 200, b"%d" % (a + b)))
        b1 = self.rng.randint(100, 999)
        b2 = self.rng.choice([x for x in range(100, 1000) if x != b1])
        for n, body in ((1, b1), (2, b2)):
            self.run("POST /baseline11?a=13&b=42 body=%d (cache check %d): body %d" % (body, n, 55 + body),
                     lambda body=body: self.one(curl_post(b"/baseline11?a=13&b=42", b"%d" % body),
                                                200, b"%d" % (55 + body)))

        # validate.sh check_fragmented: Connection: close, fragments sent
        # with TCP_NODELAY and a pause between them, read until EOF.
        frag_post = (b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost\r\n"
                     b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        fragments = [
            ("split request line", [b"GET /baseli",
                                    b"ne11?a=13&b=42 HTTP/1.1\r\n",
                                    b"Host: localhost\r\nConnection: close\r\n\r\n"], b"55"),
            ("split before headers", [b"GET /baseline11?a=13&b=42 HTTP/1.1\r\n",
                                      b"Host: localhost\r\n",
                                      b"User-Agent: arena-frag/1.0\r\n",
                                      b"Connection: close\r\n\r\n"], b"55"),
            ("POST split headers/body", [frag_post, b"20"], b"75"),
            ("POST split body bytes", [frag_post, b"2", b"0"], b"75"),
        ]
        for name, frags, want in fragments:
            self.run("fragmented GET/POST /baseline11 (%s, Connection: close): body %s, then close"
                     % (name, want.decode()), lambda frags=frags, want=want: self.fragmented(frags, want))

        # The load's templates, three times each on one connection.
        for name, raw, want in TEMPLATES:
            self.run("requests/%s byte-exact, 3 on one connection: 200, body %s, text/plain"
                     % (name, want.decode()), lambda raw=raw, want=want: self.repeat(raw, want, 3))
        self.run("requests/valid-get1..5.raw and valid-post1..5.raw on one connection: their sums",
                 self.valid_raws)

    def fragmented(self, frags, want):
        c = self.conn()
        try:
            for i, f in enumerate(frags):
                c.send(f)
                if i < len(frags) - 1:
                    early = c.delivered(self.args.grace)
                    if early:
                        return "answered before the request was complete: %r" % early[:200]
            r = c.response()
            err = self.expect(r, 200, want, plain=True)
            if err:
                return err
            rest = c.read_to_eof()
            if rest:
                return "bytes after the answer: %r" % rest[:200]
            return None
        finally:
            c.close()

    def repeat(self, raw, want, n):
        c = self.conn()
        try:
            for i in range(n):
                c.send(raw)
                err = self.expect(c.response(), 200, want, plain=True)
                if err:
                    return "request %d: %s" % (i + 1, err)
            return None
        finally:
            c.close()

    def valid_raws(self):
        c = self.conn()
        try:
            for name, raw, want in VALID_RAWS:
                c.send(raw)
                err = self.expect(c.response(), 200, want, plain=True)
                if err:
                    return "%s: %s" % (name, err)
            return None
        finally:
            c.close()

    def pipelined(self):
        self.run("GET /pipeline: 200, body ok, Content-Type text/plain",
                 lambda: self.one(curl_get(b"/pipeline"), 200, b"ok", plain=True))
        self.run("16 pipelined GET /pipeline in one write (gcannon -p 16): 16 answers ok, nothing more",
                 lambda: self.batch([(RAW_PIPELINE, b"ok")] * 16))
        self.run("16 pipelined GET /pipeline, twice more on the same connection",
                 lambda: self.batch([(RAW_PIPELINE, b"ok")] * 16, batches=3))
        mixed = []
        for i in range(16):
            kind = i % 4
            if kind == 0:
                mixed.append((RAW_PIPELINE, b"ok"))
            elif kind == 1:
                mixed.append((raw_get(b"%d" % i, b"1000"), b"%d" % (i + 1000)))
            elif kind == 2:
                mixed.append((raw_post(b"%d" % i, b"2000", b"5"), b"%d" % (i + 2005)))
            else:
                body = b"%d" % (30 + i)
                mixed.append((b"POST /baseline11?a=%d&b=3000 HTTP/1.1\r\nHost: localhost:8080\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                              % (i, len(body), body), b"%d" % (i + 3030 + i)))
        self.run("16 pipelined requests mixing /pipeline and GET/POST/chunked /baseline11: "
                 "answered in order", lambda: self.batch(mixed))
        burst = RAW_PIPELINE * 16
        at = len(burst) // 2 + 7
        self.run("16 pipelined GET /pipeline split mid-request at byte %d: 16 answers ok" % at,
                 lambda: self.batch([(RAW_PIPELINE, b"ok")] * 16, split=at))

    def batch(self, reqs, batches=1, split=None):
        c = self.conn()
        try:
            data = b"".join(r for r, _ in reqs)
            for n in range(batches):
                if split is None:
                    c.send(data)
                else:
                    c.send_split(data, split, self.args.grace)
                for i, (_, want) in enumerate(reqs):
                    r = c.response()
                    err = self.expect(r, 200, want, plain=True)
                    if err:
                        return "batch %d, answer %d of %d: %s" % (n + 1, i + 1, len(reqs), err)
                if not c.quiet(0.05):
                    return "more bytes after the %d answers: %r" % (len(reqs), c.buf[:200])
            return None
        finally:
            c.close()

    def limited_conn(self):
        n = self.args.limited_conns
        self.run("limited-conn: %d connections x 10 requests, template rotated per connection, "
                 "each reset by the client after its 10th answer" % n,
                 lambda: self.short_lived(n, reset=True))
        self.run("limited-conn: 9 connections x 10 requests, each closed (FIN) after its 10th answer",
                 lambda: self.short_lived(9, reset=False))
        self.run("a new connection is served after the resets",
                 lambda: self.one(RAW_GET, 200, b"55", plain=True))

    def short_lived(self, conns, reset):
        for k in range(conns):
            name, raw, want = TEMPLATES[k % len(TEMPLATES)]
            c = self.conn()
            try:
                for i in range(10):
                    c.send(raw)
                    err = self.expect(c.response(), 200, want, plain=True)
                    if err:
                        return "connection %d (%s), request %d: %s" % (k + 1, name, i + 1, err)
            finally:
                c.reset() if reset else c.close()
        return None

    def wire(self):
        lower_chunked = (b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nhost: localhost:8080\r\n"
                         b"transfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n"
                         b"2\r\n20\r\n0\r\n\r\n")
        shapes = [("requests/get.raw", RAW_GET, b"55"),
                  ("requests/post_cl.raw", RAW_POST_CL, b"75"),
                  ("requests/post_chunked.raw", RAW_POST_CHUNKED, b"75"),
                  ("gcannon's GET /pipeline", RAW_PIPELINE, b"ok"),
                  ("curl's chunked POST", curl_post(b"/baseline11?a=13&b=42", b"20", chunked=True), b"75"),
                  ("lower-case chunked POST", lower_chunked, b"75")]
        for name, raw, want in shapes:
            self.run("%s split in two at every byte offset (1..%d), one connection: no early answer, "
                     "then body %s" % (name, len(raw) - 1, want.decode()),
                     lambda raw=raw, want=want: self.every_split(raw, want))

        self.run("GET with Connection: close: answer, then the server closes",
                 lambda: self.closing(b"GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
                                      b"Connection: close\r\n\r\n", b"55"))
        self.run("chunked POST with Connection: close: answer, then the server closes",
                 lambda: self.closing(b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
                                      b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                      b"2\r\n20\r\n0\r\n\r\n", b"75"))
        self.run("the answer to Connection: close says Connection: close", self.says_close)
        self.run("a request pipelined after one with Connection: close is not answered",
                 lambda: self.closing(b"GET /pipeline HTTP/1.1\r\nHost: localhost:8080\r\n"
                                      b"Connection: close\r\n\r\n" + RAW_GET, b"ok"))
        self.run("lower-case field names (host, content-length, connection): body 75",
                 lambda: self.one(b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nhost: localhost:8080\r\n"
                                  b"content-type: text/plain\r\ncontent-length: 2\r\n"
                                  b"connection: keep-alive\r\n\r\n20", 200, b"75", plain=True))
        self.run("lower-case connection: close is honoured",
                 lambda: self.closing(b"GET /pipeline HTTP/1.1\r\nhost: localhost:8080\r\n"
                                      b"connection: close\r\n\r\n", b"ok"))
        self.run("upper-case names and value (TRANSFER-ENCODING: CHUNKED): body 75",
                 lambda: self.one(b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHOST: localhost:8080\r\n"
                                  b"TRANSFER-ENCODING: CHUNKED\r\n\r\n2\r\n20\r\n0\r\n\r\n",
                                  200, b"75", plain=True))
        n = self.args.connections
        self.run("%d concurrent connections, one request each, all open at once" % n,
                 lambda: self.concurrent(n))

    def every_split(self, raw, want):
        c = self.conn()
        try:
            for at in range(1, len(raw)):
                early = c.send_split(raw, at, self.args.grace)
                if early:
                    return "split at byte %d (%r | %r): answered before the request was complete: %r" % (
                        at, raw[:at][-20:], raw[at:][:20], early[:200])
                r = c.response()
                err = self.expect(r, 200, want, plain=True)
                if err:
                    return "split at byte %d (%r | %r): %s" % (at, raw[:at][-20:], raw[at:][:20], err)
            return None
        finally:
            c.close()

    def closing(self, raw, want):
        c = self.conn()
        try:
            c.send(raw)
            err = self.expect(c.response(), 200, want, plain=True)
            if err:
                return err
            rest = c.read_to_eof()
            if rest:
                return "bytes after the answer: %r" % rest[:200]
            return None
        finally:
            c.close()

    def says_close(self):
        c = self.conn()
        try:
            c.send(b"GET /pipeline HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n")
            r = c.response()
            if not r.closes():
                return "Connection field: %r" % r.header("Connection")
            return None
        finally:
            c.close()

    def concurrent(self, n):
        conns = []
        try:
            for _ in range(n):
                conns.append(self.conn())
            for i, c in enumerate(conns):
                c.send(raw_get(b"%d" % i, b"1"))
            for i, c in enumerate(conns):
                err = self.expect(c.response(), 200, b"%d" % (i + 1))
                if err:
                    return "connection %d: %s" % (i + 1, err)
            return None
        finally:
            for c in conns:
                c.close()

    def errors(self):
        ok = [
            ("a=9223372036854775807&b=0 (i64 max)", b"a=9223372036854775807&b=0", b"9223372036854775807"),
            ("a=-9223372036854775808&b=0 (i64 min)", b"a=-9223372036854775808&b=0", b"-9223372036854775808"),
            ("a=-5&b=3 (negative)", b"a=-5&b=3", b"-2"),
            ("a=007&b=-0 (leading zeros, minus zero)", b"a=007&b=-0", b"7"),
            ("b=2&a=1 (either order)", b"b=2&a=1", b"3"),
            ("a=1&b=2&c=x&flag (other parameters ignored)", b"a=1&b=2&c=x&flag", b"3"),
        ]
        for name, query, want in ok:
            self.run("GET /baseline11?%s: 200, body %s" % (name, want.decode()),
                     lambda query=query, want=want: self.one(
                         b"GET /baseline11?%s HTTP/1.1\r\nHost: localhost:8080\r\n\r\n" % query, 200, want))
        bad = [
            ("no query", b"/baseline11"),
            ("empty query", b"/baseline11?"),
            ("a missing", b"/baseline11?b=2"),
            ("b missing", b"/baseline11?a=1"),
            ("a empty", b"/baseline11?a=&b=2"),
            ("a without '='", b"/baseline11?a&b=2"),
            ("a not a number", b"/baseline11?a=x&b=2"),
            ("a not an integer", b"/baseline11?a=1.5&b=2"),
            ("a with '+'", b"/baseline11?a=+1&b=2"),
            ("a just '-'", b"/baseline11?a=-&b=2"),
            ("a percent-encoded", b"/baseline11?a=%31&b=2"),
            ("a given twice", b"/baseline11?a=1&a=2&b=3"),
            ("a over i64", b"/baseline11?a=9223372036854775808&b=0"),
            ("a under i64", b"/baseline11?a=-9223372036854775809&b=0"),
            ("a 30 digits", b"/baseline11?a=999999999999999999999999999999&b=0"),
            ("sum over i64", b"/baseline11?a=9223372036854775807&b=1"),
            ("sum under i64", b"/baseline11?a=-9223372036854775808&b=-1"),
        ]
        for name, target in bad:
            self.run("GET %s (%s): 400" % (target.decode(), name),
                     lambda target=target: self.refused(
                         b"GET %s HTTP/1.1\r\nHost: localhost:8080\r\n\r\n" % target, 400))

        q = b"/baseline11?a=13&b=42"
        self.run("POST body=-20: 200, body 35",
                 lambda: self.one(curl_post(q, b"-20"), 200, b"35"))
        self.run("POST chunked in three chunks with an extension and a trailer: 200, body 75",
                 lambda: self.one(b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n1;ext=1\r\n2\r\n1\r\n0\r\n0\r\n"
                                  b"X-Trailer: t\r\n\r\n", 200, b"75"))
        self.run("POST body=9223372036854775807 with a=0&b=0: body 9223372036854775807",
                 lambda: self.one(curl_post(b"/baseline11?a=0&b=0", b"9223372036854775807"),
                                  200, b"9223372036854775807"))
        bad_bodies = [
            ("not a number", curl_post(q, b"abc")),
            ("trailing newline", curl_post(q, b"20\n")),
            ("surrounding space", curl_post(q, b" 20")),
            ("exponent", curl_post(q, b"1e3")),
            ("empty, Content-Length: 0", curl_post(q, b"")),
            ("empty chunked", b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("none (no Content-Length, no Transfer-Encoding)",
             b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"),
            ("sum over i64", curl_post(b"/baseline11?a=9223372036854775807&b=0", b"1")),
            ("body over i64", curl_post(b"/baseline11?a=0&b=0", b"9223372036854775808")),
            ("chunked, not a number", curl_post(q, b"2x", chunked=True)),
            ("a missing", curl_post(b"/baseline11?b=42", b"20")),
        ]
        for name, raw in bad_bodies:
            self.run("POST /baseline11 body %s: 400" % name,
                     lambda raw=raw: self.refused(raw, 400))

        m = self.args.max_body
        exact = b"0" * (m - 1) + b"7"
        self.run("POST body of exactly --max-body=%d bytes (leading zeros): 200, body 62" % m,
                 lambda: self.one(curl_post(q, exact), 200, b"62"))
        self.run("POST chunked body of exactly %d bytes in two chunks: 200, body 62" % m,
                 lambda: self.one(b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                                  % (m // 2, exact[:m // 2], m - m // 2, exact[m // 2:]), 200, b"62"))
        over = b"0" * m + b"7"
        self.run("POST body of %d bytes (Content-Length over the bound): 413" % (m + 1),
                 lambda: self.refused(curl_post(q, over), 413))
        self.run("POST chunked body of %d bytes in two chunks: 413" % (m + 1),
                 lambda: self.refused(b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                                      % (m, over[:m], 1, over[m:]), 413))
        self.run("POST with Content-Length: 10000000000 and no body: 413 without waiting for it",
                 lambda: self.refused(b"POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n"
                                      b"Content-Length: 10000000000\r\n\r\n", 413))
        self.run("GET /baseline12: 404",
                 lambda: self.refused(b"GET /baseline12?a=1&b=2 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", 404))
        self.run("GET /pipeline/x: 404",
                 lambda: self.refused(b"GET /pipeline/x HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", 404))

    # --- async: GET /delay/{ms} ----------------------------------------------

    def timed(self, ms):
        """GET /delay/ms on a new connection: (seconds from the send to the
        whole answer, the answer)."""
        c = self.conn()
        try:
            start = time.monotonic()
            c.send(curl_get(b"/delay/%d" % ms))
            r = c.response()
            return time.monotonic() - start, r
        finally:
            c.close()

    def delay(self, ms, plain=False):
        took, r = self.timed(ms)
        err = self.expect(r, 200, b"%d" % ms, plain=plain)
        if err:
            return err
        if took < 0.9 * ms / 1000:
            return "answered after %.1f ms, before 0.9 x %d ms" % (took * 1000, ms)
        return None

    def async_(self):
        n = self.rng.randint(10, 90)
        self.run("GET /delay/%d (random): 200, body %d, Content-Type text/plain, after at least "
                 "0.9 x %d ms" % (n, n, n), lambda: self.delay(n, plain=True))
        self.run("GET /delay/0: 200, body 0",
                 lambda: self.one(curl_get(b"/delay/0"), 200, b"0", plain=True))
        self.run("GET /delay/10 then /delay/500: each after 0.9 x its delay, 500 at least 300 ms "
                 "later than 10, 10 within 2 s", self.delay_pair)
        self.run("32 overlapping GET /delay/{100 + 13i mod 400} on their own connections: each "
                 "echoes its own delay after at least 0.9 x it, all within 2 x the longest",
                 lambda: self.overlapping([100 + (i * 13) % 400 for i in range(1, 33)]))
        self.run("GET /delay/N for N in 0..60000 bounds: /delay/60001 and /delay/x get 400",
                 lambda: self.refused(curl_get(b"/delay/60001"), 400)
                 or self.refused(curl_get(b"/delay/x"), 400))

    def delay_pair(self):
        t10, r10 = self.timed(10)
        err = self.expect(r10, 200, b"10")
        if err:
            return "/delay/10: " + err
        t500, r500 = self.timed(500)
        err = self.expect(r500, 200, b"500")
        if err:
            return "/delay/500: " + err
        if t10 < 0.008 or t500 < 0.45 or t500 - t10 < 0.3 or t10 > 2.0:
            return "took %.1f ms for /delay/10 and %.1f ms for /delay/500" % (t10 * 1000, t500 * 1000)
        return None

    def overlapping(self, delays):
        if len(set(delays)) != len(delays):
            return "the delays are not distinct: %r" % delays
        conns = []
        try:
            for _ in delays:
                conns.append(self.conn())
            results = [None] * len(delays)

            def one(i):
                c, ms = conns[i], delays[i]
                start = time.monotonic()
                c.send(curl_get(b"/delay/%d" % ms))
                try:
                    r = c.response()
                except (ProtocolError, OSError) as e:
                    results[i] = "/delay/%d: %s" % (ms, e)
                    return
                took = time.monotonic() - start
                err = self.expect(r, 200, b"%d" % ms)
                if err is None and took < 0.9 * ms / 1000:
                    err = "after %.1f ms" % (took * 1000)
                results[i] = "/delay/%d: %s" % (ms, err) if err else None

            start = time.monotonic()
            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(delays))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - start
            bad = [r for r in results if r]
            if bad:
                return "; ".join(bad[:3])
            if wall > 2 * max(delays) / 1000:
                return "all took %.0f ms, over 2 x the longest delay (%d ms): they did not overlap" % (
                    wall * 1000, max(delays))
            print("     (32 overlapping /delay: %.0f ms wall, longest %d ms, sum %d ms)"
                  % (wall * 1000, max(delays), sum(delays)), flush=True)
            return None
        finally:
            for c in conns:
                c.close()

    # --- frag: HttpArena's scripts/validate-frag.py ----------------------------

    def frag_shapes(self):
        """validate-frag.py's nine shapes (Host is localhost there too)."""
        ra, rb = self.rng.randint(100, 999), self.rng.randint(100, 999)
        rbody = self.rng.randint(10, 99)
        q = b"/baseline11?a=13&b=42"
        post = b"Host: localhost\r\nContent-Type: text/plain\r\n"
        chunked = post + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        return [
            ("GET, minimal",
             b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % q, b"55"),
            ("GET, several headers",
             b"GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: arena-frag/1.0\r\n"
             b"Accept: text/plain\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n" % q, b"55"),
            ("GET, lower-cased field names",
             b"GET %s HTTP/1.1\r\nhost: localhost\r\nuser-agent: arena-frag/1.0\r\n"
             b"connection: close\r\n\r\n" % q, b"55"),
            ("GET, randomized query",
             b"GET /baseline11?a=%d&b=%d HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
             % (ra, rb), b"%d" % (ra + rb)),
            ("POST, Content-Length",
             b"POST %s HTTP/1.1\r\n%sContent-Length: 2\r\nConnection: close\r\n\r\n20" % (q, post), b"75"),
            ("POST, lower-cased content-length",
             b"POST %s HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain\r\n"
             b"content-length: 2\r\nconnection: close\r\n\r\n20" % q, b"75"),
            ("POST, randomized body",
             b"POST /baseline11?a=%d&b=%d HTTP/1.1\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%d"
             % (ra, rb, post, len(b"%d" % rbody), rbody), b"%d" % (ra + rb + rbody)),
            ("POST, chunked",
             b"POST %s HTTP/1.1\r\n%s2\r\n20\r\n0\r\n\r\n" % (q, chunked), b"75"),
            ("POST, chunked in two chunks",
             b"POST %s HTTP/1.1\r\n%s1\r\n2\r\n1\r\n0\r\n0\r\n\r\n" % (q, chunked), b"75"),
        ]

    def frag(self):
        shapes = self.frag_shapes()
        stride = self.args.frag_stride
        total = sum(len(range(1, len(raw), stride)) for _, raw, _ in shapes)
        print("     (frag: %d shapes, %d split offsets%s, a %d ms pause per batch of %d connections)"
              % (len(shapes), total, "" if stride == 1 else " (every %dth)" % stride,
                 self.args.frag_pause, self.args.frag_batch), flush=True)
        for name, raw, want in shapes:
            self.run("frag: %s split in two at every %s offset (1..%d), each on its own connection, "
                     "read to EOF: 200, body %s" % (name, "byte" if stride == 1 else "%dth" % stride,
                                                    len(raw) - 1, want.decode()),
                     lambda raw=raw, want=want: self.frag_shape(raw, want))

    def frag_shape(self, raw, want):
        offsets = list(range(1, len(raw), self.args.frag_stride))
        bad = []
        for at in range(0, len(offsets), self.args.frag_batch):
            bad += self.frag_batch(raw, want, offsets[at:at + self.args.frag_batch])
        if bad:
            shown = "; ".join("offset %d (%r | %r): %s" % (o, raw[:o][-16:], raw[o:][:16], e)
                              for o, e in bad[:3])
            return "%d of %d offsets wrong: %s" % (len(bad), len(offsets), shown)
        return None

    def frag_batch(self, raw, want, offsets):
        """validate-frag.py's run_batch: every connection gets its first part,
        then one pause for the batch, then each sends the rest and reads to EOF."""
        opened = []
        for o in offsets:
            try:
                s = socket.create_connection(self.addr, timeout=10)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(raw[:o])
                opened.append((o, s, None))
            except OSError as e:
                opened.append((o, None, "%s: %s" % (type(e).__name__, e)))
        time.sleep(self.args.frag_pause / 1000)

        def finish(item):
            o, s, err = item
            if err:
                return o, err
            try:
                s.sendall(raw[o:])
                got = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except socket.timeout:
                return o, "no answer or no close within 10 s (got %r)" % got[:80]
            except ConnectionResetError:
                pass
            except OSError as e:
                return o, "%s: %s" % (type(e).__name__, e)
            finally:
                s.close()
            status, body = frag_parse(got)
            if status != 200 or body != want:
                return o, "status %s, body %r (got %r)" % (status, body, got[:80])
            return o, None

        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as ex:
            return [(o, e) for o, e in ex.map(finish, opened) if e]

    # --- json-tls and 8gbit: over TLS on --tls-port ----------------------------

    def tls_conn(self, alpn=("http/1.1",)):
        return TlsConn(self.tls_addr, self.args.timeout, self.args.servername, alpn)

    def tls_one(self, raw, status=200, body=None, alpn=("http/1.1",)):
        c = self.tls_conn(alpn)
        try:
            c.send(raw)
            r = c.response()
            return self.expect(r, status, body), r
        finally:
            c.close()

    def s_client(self, *flags, alpn=None):
        """openssl s_client to --tls-port with stdin closed: (completed, output).
        Completed is validate.sh's test: a `New, TLSv1.x|SSLv3` line."""
        cmd = [self.openssl, "s_client", "-connect", "%s:%d" % self.tls_addr,
               "-servername", self.args.servername] + list(flags)
        if alpn:
            cmd += ["-alpn", alpn]
        try:
            out = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=10).stdout.decode("latin-1")
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("latin-1")
        return re.search(r"^New, (TLSv1|SSLv3)", out, re.M) is not None, out

    def posture(self, label):
        """validate.sh's tls_posture_probe: `openssl s_client -alpn http/1.1`;
        four checks."""
        if not self.openssl:
            self.rep.check(False, "%s TLS posture" % label, "needs openssl, which is not on PATH")
            return
        _, out = self.s_client(alpn="http/1.1")
        pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
        served = cert_fingerprint(pem.group(0)) if pem else None
        self.rep.check(served is not None and served == self.cert_fp,
                       "%s serves the certificate given by --cert (SHA-256 %s)" % (label, self.cert_fp),
                       "served %s" % (served or "none (no handshake completed)"))
        new = re.search(r"^New, ([^,]+), Cipher is (\S+)", out, re.M)
        version, cipher = (new.group(1), new.group(2)) if new else (None, None)
        self.rep.check(version == "TLSv1.3", "%s negotiates TLS 1.3 (cipher %s)" % (label, cipher),
                       "settled on %s" % version)
        self.rep.check(cipher in TLS13_AEAD, "%s uses a TLS 1.3 AEAD suite (%s)" % (label, cipher),
                       "negotiated %r, not one of %s" % (cipher, ", ".join(TLS13_AEAD)))
        alpn = re.search(r"^ALPN protocol: *(\S+)", out, re.M)
        got = alpn.group(1) if alpn else None
        self.rep.check(got in (None, "http/1.1"),
                       "%s ALPN, offered http/1.1 alone: %s" % (label, got or "none negotiated"),
                       "the server selected %r" % got)

    def quality(self, label):
        """validate.sh's tls_quality_probe: no obsolete protocol and no weak
        TLS 1.2 cipher family completes a handshake."""
        if not self.openssl:
            self.rep.check(False, "%s TLS quality" % label, "needs openssl, which is not on PATH")
            return
        help_text = subprocess.run([self.openssl, "s_client", "-help"], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode("latin-1")
        probes = [(p, "ALL:@SECLEVEL=0") for p in ("ssl3", "tls1", "tls1_1")]
        probes += [("tls1_2", "%s:@SECLEVEL=0" % fam) for fam in ("NULL", "aNULL", "EXPORT", "RC4", "DES", "3DES")]
        for proto, cipher in probes:
            what = "%s TLS quality: openssl s_client -%s -cipher '%s' does not complete" % (label, proto, cipher)
            if ("-%s " % proto) not in help_text:
                # validate.sh's _tls_accepts: a flag this openssl lacks is "unsupported", not a pass
                # on its own; counted as not completing, and said.
                self.rep.check(True, what + " (this openssl has no -%s, so it was not offered)" % proto)
                continue
            done, out = self.s_client("-%s" % proto, "-cipher", cipher)
            new = re.search(r"^New, .*", out, re.M)
            self.rep.check(not done, what, "it completed: %s" % (new.group(0) if new else "?"))

    def json_tls(self):
        self.posture("json-tls")
        self.quality("json-tls")
        self.run("json-tls: HttpArena's readiness probe GET /json/1?m=1 over TLS, ALPN h2 and "
                 "http/1.1 offered (as curl does): ALPN http/1.1, HTTP/1.1 200", self.tls_negotiation)
        pairs = [(self.rng.randint(1, 50), self.rng.randint(2, 89)) for _ in range(4)]
        self.run("json-tls: GET /json/{count}?m={m} for 4 random pairs %s: count, items, schema, "
                 "totals%s" % (" ".join("%d:%d" % p for p in pairs),
                               ", fields equal to --dataset's" if self.dataset else ""),
                 lambda: self.json_pairs(pairs))
        self.run("json-tls: the load's 7 pairs (requests/json-tls-rotate.lua) on one connection, "
                 "as wrk sends them", lambda: self.json_pairs(JSON_TLS_ROTATION, keep_alive=True))
        self.run("json-tls: GET /json/1?m=1 Content-Type is application/json", self.json_content_type)

    def tls_negotiation(self):
        c = self.tls_conn(alpn=("h2", "http/1.1"))
        try:
            got = c.sock.selected_alpn_protocol()
            if got not in (None, "http/1.1"):
                return "ALPN selected %r" % got
            c.send(b"GET /json/1?m=1 HTTP/1.1\r\nHost: localhost:%d\r\nUser-Agent: curl/8.5.0\r\n"
                   b"Accept: */*\r\n\r\n" % self.tls_addr[1])
            r = c.response()
            if r.version != "HTTP/1.1" or r.status != 200:
                return "got %s %s" % (r.version, r.short())
            return None
        finally:
            c.close()

    def json_pairs(self, pairs, keep_alive=False):
        c = self.tls_conn() if keep_alive else None
        try:
            for count, m in pairs:
                raw = b"GET /json/%d?m=%d HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % (count, m, self.tls_addr[1])
                if keep_alive:
                    c.send(raw)
                    r = c.response()
                else:
                    err, r = self.tls_one(raw)
                    if err:
                        return "/json/%d?m=%d: %s" % (count, m, err)
                err = self.json_body(r, count, m)
                if err:
                    return "/json/%d?m=%d: %s" % (count, m, err)
            return None
        finally:
            if c:
                c.close()

    def json_body(self, r, count, m):
        """validate.sh's json-tls body check, and with --dataset its
        comparison with the dataset's first count items."""
        if r.status != 200:
            return "expected 200, got %s" % r.short()
        try:
            d = json.loads(r.body)
        except ValueError as e:
            return "not JSON (%s): %r" % (e, r.body[:200])
        items = d.get("items") if isinstance(d, dict) else None
        if str(d.get("count")) != str(count) or not isinstance(items, list) or len(items) != count:
            return "count %r and %s items, expected %d" % (
                d.get("count"), len(items) if isinstance(items, list) else "no", count)
        for i, it in enumerate(items):
            rating = it.get("rating") if isinstance(it, dict) else None
            if not (isinstance(it, dict) and all(k in it for k in ("id", "name", "category", "price", "quantity", "total"))
                    and isinstance(it.get("tags"), list) and isinstance(it.get("active"), bool)
                    and isinstance(rating, dict) and "score" in rating and "count" in rating):
                return "item %d lacks a field of the schema: %r" % (i, it)
            if it["total"] != it["price"] * it["quantity"] * m:
                return "item %d: total %r, expected %r x %r x %d" % (i, it["total"], it["price"], it["quantity"], m)
        if self.dataset:
            for i, (it, src) in enumerate(zip(items, self.dataset)):
                for k in ("id", "name", "category", "price", "quantity", "active", "tags"):
                    if it.get(k) != src.get(k):
                        return "item %d: %s is %r, the dataset's is %r" % (i, k, it.get(k), src.get(k))
        return None

    def json_content_type(self):
        err, r = self.tls_one(b"GET /json/1?m=1 HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % self.tls_addr[1])
        if err:
            return err
        ct = r.header("Content-Type") or ""
        return None if "application/json" in ct.lower() else "Content-Type %r" % ct

    def eightgbit(self):
        self.posture("8gbit")
        self.run("8gbit: HttpArena's readiness probe POST /echo body 'probe' over TLS: 200, echoed",
                 lambda: self.tls_one(echo_post(b"probe"), 200, b"probe")[0])
        for size in (1, 1024, 10240, 102400):
            body = self.rng.randbytes(size)
            self.run("8gbit: POST /echo %d random bytes (Content-Length): echoed byte for byte" % size,
                     lambda body=body: self.tls_one(echo_post(body), 200, body)[0])
        for size in (10240, 102400):
            body = self.rng.randbytes(size)
            self.run("8gbit: POST /echo %d random bytes, chunked: echoed byte for byte" % size,
                     lambda body=body: self.tls_one(echo_post(body, chunk=16384), 200, body)[0])
        self.run("8gbit: POST /echo with an empty body: 200, empty",
                 lambda: self.tls_one(echo_post(b""), 200, b"")[0])
        self.run("8gbit: zrk's request (10,240 bytes of 'echo-body:', keep-alive) 5 times on one "
                 "connection: echoed each time", self.zrk_echo)

    def zrk_echo(self):
        body = b"echo-body:" * 1024
        raw = (b"POST /echo HTTP/1.1\r\nHost: localhost:%d\r\nContent-Type: application/octet-stream\r\n"
               b"User-Agent: zrk\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n%s"
               % (self.tls_addr[1], len(body), body))
        c = self.tls_conn(alpn=None)
        try:
            for i in range(5):
                c.send(raw)
                err = self.expect(c.response(), 200, body)
                if err:
                    return "request %d: %s" % (i + 1, err)
            return None
        finally:
            c.close()

    def wire_limits(self):
        w = WIRE
        if w.answers == 0:
            return
        size, head = w.largest_head
        self.rep.check(size <= GCANNON_MAX_HEAD,
                       "every answer's head is at most %d bytes, as gcannon parses (largest: %d of %d answers)"
                       % (GCANNON_MAX_HEAD, size, w.answers), "head %r" % head[:1200])
        count, head = w.most_fields
        self.rep.check(count <= GCANNON_MAX_FIELDS,
                       "every answer has at most %d fields, as gcannon parses (most: %d)"
                       % (GCANNON_MAX_FIELDS, count), "head %r" % head[:1200])
        self.rep.check(not w.bad_version, "every answer's status line is HTTP/1.1",
                       "%d not: %r" % (len(w.bad_version), w.bad_version[:3]))
        self.rep.check(not w.bad_length,
                       "every answer has one Content-Length, equal to its body's size, "
                       "and no Transfer-Encoding (gcannon reads a missing length as 0)",
                       "%d not, first head %r" % (len(w.bad_length), w.bad_length[:1]))


def main(argv):
    ap = argparse.ArgumentParser(
        prog="scripts/httparena-validate",
        description="Check a running server against HttpArena's baseline, pipelined, "
        "limited-conn, async, fragmentation, json-tls and 8gbit validation, byte-exact "
        "over raw sockets and TLS, plus chopin's answers to bad input (docs/httparena.md).",
        epilog="Output: one PASS/FAIL line per check, then 'N passed, M failed'. "
        "Exit status: 0 all passed, 1 a check failed, 2 usage error or server unreachable.",
    )
    ap.add_argument("--url", default="http://127.0.0.1:8080",
                    help="server base URL, http://HOST:PORT (default: %(default)s)")
    ap.add_argument("--only", default=None, metavar="GROUP[,GROUP...]",
                    help="groups of checks to run, of %s (default: all; json-tls and 8gbit "
                    "only with --tls-port)" % ", ".join(GROUPS))
    ap.add_argument("--tls-port", type=int, default=None, metavar="PORT",
                    help="the server's TLS port on --url's host (HttpArena's 8081), for the "
                    "json-tls and 8gbit groups (default: none, those groups are skipped)")
    ap.add_argument("--cert", default=None, metavar="PATH",
                    help="the PEM certificate the server was given for --tls-port (HttpArena's "
                    "certs/server.crt): the posture probe checks the served one has its "
                    "SHA-256 fingerprint; required with --tls-port")
    ap.add_argument("--servername", default="localhost", metavar="NAME",
                    help="the TLS server name (SNI) to send, as validate.sh's openssl "
                    "-servername (default: %(default)s)")
    ap.add_argument("--dataset", default=None, metavar="PATH",
                    help="the dataset.json the server serves GET /json/{count} from: the json-tls "
                    "items are compared with its first count items (default: only the schema "
                    "and the totals are checked, as validate.sh does)")
    ap.add_argument("--openssl", default="openssl", metavar="PROGRAM",
                    help="the openssl program for the TLS posture and quality probes "
                    "(default: %(default)s)")
    ap.add_argument("--frag-pause", type=int, default=200, metavar="MS",
                    help="frag group: the pause between a batch's two writes, as "
                    "validate-frag.py's delay_ms (default: %(default)s)")
    ap.add_argument("--frag-batch", type=int, default=384, metavar="N",
                    help="frag group: connections open at once, each holding a first part "
                    "(default: %(default)s, validate-frag.py's BATCH)")
    ap.add_argument("--frag-stride", type=int, default=1, metavar="N",
                    help="frag group: split at every Nth offset only, a quicker and partial "
                    "sweep (default: %(default)s, every offset, as HttpArena)")
    ap.add_argument("--max-body", type=int, default=1024 * 1024, metavar="BYTES",
                    help="the server's bound on a request body (chopin's --max-body): a "
                    "/baseline11 body of this many bytes is served, one byte more gets 413 "
                    "(default: %(default)s, chopin's default)")
    ap.add_argument("--connections", type=int, default=512, metavar="N",
                    help="concurrent connections in the wire group; needs about N free "
                    "file descriptors here and in the server (default: %(default)s, "
                    "the baseline profile's smaller count)")
    ap.add_argument("--limited-conns", type=int, default=30, metavar="N",
                    help="short-lived connections in the limited-conn group (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=5, metavar="SECONDS",
                    help="how long to wait for an answer or a close (default: %(default)s)")
    ap.add_argument("--grace", type=float, default=0.003, metavar="SECONDS",
                    help="after the first part of a split request has been acknowledged, how long "
                    "to wait (for the server to read it, and for an answer that must not come) "
                    "before sending the rest (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed for the randomized values (default: a new one each run)")
    args = ap.parse_args(argv)

    base = urllib.parse.urlsplit(args.url)
    try:
        port = base.port
    except ValueError as e:
        ap.error("bad --url %r: %s" % (args.url, e))
    if base.scheme != "http" or not base.hostname or base.path not in ("", "/") \
            or base.query or base.fragment:
        ap.error("bad --url %r: expected http://HOST[:PORT] (HttpArena's profiles are plain "
                 "HTTP/1.1 at the root)" % args.url)
    if args.only is None:
        groups = [g for g in GROUPS if args.tls_port is not None or g not in TLS_GROUPS]
    else:
        groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        ap.error("--only %r: unknown group %s; the groups are %s"
                 % (args.only, ", ".join(unknown) or "(none given)", ", ".join(GROUPS)))
    tls_groups = [g for g in groups if g in TLS_GROUPS]
    if tls_groups and args.tls_port is None:
        ap.error("--only %s: the group%s need%s --tls-port (and --cert)"
                 % (",".join(tls_groups), "s" if len(tls_groups) > 1 else "",
                    "" if len(tls_groups) > 1 else "s"))
    if args.tls_port is not None:
        if not 0 < args.tls_port < 65536:
            ap.error("--tls-port %d: expected a port, 1..65535" % args.tls_port)
        if not args.cert:
            ap.error("--tls-port needs --cert PATH, the certificate the server was given "
                     "(the posture probe compares fingerprints)")
    if args.frag_pause < 0 or args.frag_batch < 1 or args.frag_stride < 1:
        ap.error("--frag-pause must be >= 0, --frag-batch and --frag-stride >= 1")
    if args.max_body < 2:
        ap.error("--max-body must be at least 2 (HttpArena's bodies are up to 3 bytes)")
    if args.connections < 1 or args.limited_conns < 1 or args.timeout <= 0 or args.grace < 0:
        ap.error("--connections and --limited-conns must be >= 1, --timeout > 0, --grace >= 0")

    v = Validator((base.hostname, port or 80), args)
    if args.tls_port is not None:
        v.tls_addr = (base.hostname, args.tls_port)
        try:
            v.cert_fp = cert_fingerprint(open(args.cert).read())
        except (OSError, ValueError) as e:
            ap.error("--cert %r: cannot read a PEM certificate from it: %s" % (args.cert, e))
    if args.dataset:
        try:
            data = json.load(open(args.dataset))
        except (OSError, ValueError) as e:
            ap.error("--dataset %r: %s" % (args.dataset, e))
        v.dataset = data.get("items") if isinstance(data, dict) else data
        if not isinstance(v.dataset, list):
            ap.error("--dataset %r: expected a JSON array of items" % args.dataset)
    if args.only is None and args.tls_port is None:
        print("SKIP json-tls, 8gbit: no --tls-port given", flush=True)
    try:
        try:
            v.probe()
        except Unreachable as e:
            print("httparena-validate: server unreachable at %s: %s; start it first "
                  "(e.g. `cargo run --release` serves port 8080)" % (args.url, e), file=sys.stderr)
            print("%d passed, %d failed" % (v.rep.passed, v.rep.failed))
            return 2
        for g in GROUPS:
            if g in groups:
                getattr(v, METHODS.get(g, g.replace("-", "_")))()
        v.wire_limits()
    except KeyboardInterrupt:
        print("httparena-validate: interrupted", file=sys.stderr)
        return 2

    print("%d passed, %d failed" % (v.rep.passed, v.rep.failed))
    return 1 if v.rep.failed else 0

