"""HTTP on a socket: one-shot validation of TFB's responses and the bounded
load generator of --profile."""

import json
import selectors
import socket
import ssl
import time

from .common import HOST
from .shapes import (ACCEPT, BASELINE_SHAPES, DELAY_MS, ECHO_BODY, EXPECTED_BODY,
                     LATENCY_PATH, PIPELINE_BODY, PIPELINE_REQUEST, URLS)


def build_requests(test):
    """The requests a load client sends on each connection, in turn:
    HttpArena's baseline cycles its three templates (GET, POST with
    Content-Length, POST chunked); every other test repeats one request."""
    if test == "baseline":
        return [request for _name, request, _body in BASELINE_SHAPES]
    return [build_request(test)]


def build_request(test):
    if test == "pipelined":
        return PIPELINE_REQUEST
    return (
        f"GET {URLS[test]} HTTP/1.1\r\n"
        f"Host: localhost\r\n"
        f"Accept: {ACCEPT[test]}\r\n"
        f"Connection: keep-alive\r\n\r\n"
    ).encode()


def parse_responses(buf, start=0):
    """Parses complete responses in buf[start:]; returns (consumed_end, [(status, headers, body)])."""
    out = []
    pos = start
    n = len(buf)
    while pos < n:
        hend = buf.find(b"\r\n\r\n", pos)
        if hend < 0:
            break
        head = bytes(buf[pos:hend])
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ValueError(f"bad status line {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        bstart = hend + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _dechunk(buf, bstart)
            if body is None:
                break
            out.append((status, headers, body[0]))
            pos = body[1]
            continue
        clen = int(headers.get("content-length", 0))
        if bstart + clen > n:
            break
        out.append((status, headers, bytes(buf[bstart:bstart + clen])))
        pos = bstart + clen
    return pos, out


def _dechunk(buf, pos):
    """A chunked body at buf[pos:]: (body, end), or None while incomplete."""
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)  # trailers end with an empty line
            return None if end < 0 else (bytes(body), end + 4)
        if pos + size + 2 > len(buf):
            return None
        body += buf[pos:pos + size]
        pos += size + 2


def validate(port, test, pipelined=2, timeout_s=10.0):
    """One pipelined exchange; returns a list of problems (empty if fine)."""
    problems = []
    req = build_request(test) * pipelined
    s = socket.create_connection((HOST, port), timeout=timeout_s)
    try:
        resps, closed = _exchange(s, req, pipelined, timeout_s)
    finally:
        s.close()
    if closed:
        problems.append(f"{test}: connection closed after {len(resps)} responses")
    body, ctype = EXPECTED_BODY[test]
    for status, headers, rbody in resps:
        if status != 200:
            problems.append(f"{test}: status {status}")
        if rbody != body:
            problems.append(f"{test}: body {rbody[:60]!r}")
        if not headers.get("content-type", "").startswith(ctype):
            problems.append(f"{test}: content-type {headers.get('content-type')!r}")
        for h in ("server", "date", "content-length"):
            if h not in headers:
                problems.append(f"{test}: missing {h} header")
    if len(resps) < pipelined:
        problems.append(f"{test}: got {len(resps)} of {pipelined} pipelined responses")
    return sorted(set(problems))


def _exchange(sock, req, want, timeout_s):
    """Sends req, reads until `want` responses; returns (responses, closed)."""
    sock.sendall(req)
    buf = bytearray()
    deadline = time.monotonic() + timeout_s
    resps = []
    while len(resps) < want and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            return resps, True
        buf += data
        _, resps = parse_responses(buf)
    return resps, False


def _closes(sock, timeout_s):
    """Whether the peer closes the connection within timeout_s."""
    sock.settimeout(timeout_s)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except OSError:
        return False


def tls_context():
    """TLS 1.3 as wrk speaks it: no certificate check, no ALPN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def _tls_connection(port, timeout_s):
    """A TLS 1.3 connection as wrk opens one (tls_context())."""
    raw = socket.create_connection((HOST, port), timeout=timeout_s)
    return tls_context().wrap_socket(raw, server_hostname="localhost")


def _expected_json(dataset, count, m):
    with open(dataset) as f:
        items = json.load(f)[:count]
    return {"items": [dict(i, total=i["price"] * i["quantity"] * m) for i in items],
            "count": len(items)}


def validate_httparena(port, test, timeout_s=10.0, tls_port=None, dataset=None):
    """HttpArena's shapes: 200 and the expected body for each baseline shape
    (limited-conn also: `Connection: close` gets its answer, then the server
    closes), `ok` for each of two pipelined GET /pipeline; json-tls and echo
    over TLS on `tls_port` (each of the seven pairs against `dataset`, a
    10,240-byte echo), the delay's decimal after at least its wait, the
    latency profile's sum. Returns problems."""
    problems = []
    try:
        if test == "tls-handshake":
            with _tls_connection(tls_port, timeout_s) as s:
                resps, _ = _exchange(s, BASELINE_SHAPES[0][1], 1, timeout_s)
            if not resps or resps[0][2] != BASELINE_SHAPES[0][2]:
                problems.append("tls-handshake: GET /baseline11 over TLS: not 55")
            return problems
        if test in ("json-tls", "echo"):
            with _tls_connection(tls_port, timeout_s) as s:
                if test == "echo":
                    req = (b"POST /echo HTTP/1.1\r\nHost: localhost:8081\r\n"
                           b"Content-Type: application/octet-stream\r\nContent-Length: "
                           + str(len(ECHO_BODY)).encode() + b"\r\n\r\n" + ECHO_BODY)
                    resps, _ = _exchange(s, req, 1, timeout_s)
                    if not resps or resps[0][0] != 200 or resps[0][2] != ECHO_BODY:
                        problems.append("echo: the 10,240-byte body did not come back whole")
                    return problems
                for count, m in ((1, 3), (5, 7), (10, 2), (15, 5), (25, 4), (40, 8), (50, 6)):
                    req = f"GET /json/{count}?m={m} HTTP/1.1\r\nHost: localhost:8081\r\n\r\n"
                    resps, _ = _exchange(s, req.encode(), 1, timeout_s)
                    want = _expected_json(dataset, count, m)
                    if not resps or resps[0][0] != 200:
                        problems.append(f"json-tls: /json/{count}?m={m}: no 200")
                    elif json.loads(resps[0][2]) != want:
                        problems.append(f"json-tls: /json/{count}?m={m}: not the dataset's items")
                    elif "application/json" not in resps[0][1].get("content-type", ""):
                        problems.append(f"json-tls: /json/{count}?m={m}: content-type")
            return problems
        if test in ("async", "latency"):
            path, body = ((f"/delay/{DELAY_MS}", str(DELAY_MS).encode()) if test == "async"
                          else (LATENCY_PATH, b"3"))
            with socket.create_connection((HOST, port), timeout=timeout_s) as s:
                t0 = time.monotonic()
                resps, _ = _exchange(s, f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                     .encode(), 1, timeout_s)
                waited = time.monotonic() - t0
            if not resps or resps[0][0] != 200 or resps[0][2] != body:
                problems.append(f"{test}: GET {path}: expected 200 and {body!r}")
            elif test == "async" and waited < DELAY_MS / 1000:
                problems.append(f"async: answered after {waited * 1000:.1f} ms, before its wait")
            return problems
    except (OSError, ValueError) as e:
        return [f"{test}: {e}"]

    def check(label, resps, want_body, want):
        for status, _headers, body in resps:
            if status != 200:
                problems.append(f"{test}: {label}: status {status}")
            if body != want_body:
                problems.append(f"{test}: {label}: body {body[:60]!r}, expected {want_body!r}")
        if len(resps) < want:
            problems.append(f"{test}: {label}: got {len(resps)} of {want} responses")

    try:
        if test == "pipelined":
            with socket.create_connection((HOST, port), timeout=timeout_s) as s:
                resps, _ = _exchange(s, PIPELINE_REQUEST * 2, 2, timeout_s)
                check("GET /pipeline x2 pipelined", resps, PIPELINE_BODY, 2)
        else:
            with socket.create_connection((HOST, port), timeout=timeout_s) as s:
                for label, req, body in BASELINE_SHAPES:
                    resps, closed = _exchange(s, req, 1, timeout_s)
                    check(label, resps, body, 1)
                    if closed:
                        problems.append(f"{test}: {label}: connection closed")
                        break
            if test == "limited-conn":
                label, req, body = BASELINE_SHAPES[0]
                req = req.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
                with socket.create_connection((HOST, port), timeout=timeout_s) as s:
                    resps, closed = _exchange(s, req, 1, timeout_s)
                    check(f"{label} with Connection: close", resps, body, 1)
                    if resps and not closed and not _closes(s, 3.0):
                        problems.append(f"{test}: the server kept the connection open after "
                                        f"answering `Connection: close`")
    except (OSError, ValueError) as e:  # ValueError: an answer this client cannot parse
        problems.append(f"{test}: {e}")
    return sorted(set(problems))


class _Conn:
    __slots__ = ("sock", "rbuf", "wbuf", "outstanding", "sent")

    def __init__(self, sock):
        self.sock = sock
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.outstanding = 0
        self.sent = 0


class LoadClient:
    """A bounded load generator: `conns` keep-alive connections, each sending
    batches of `depth` pipelined requests (the next batch once every answer of
    the last one arrived), for an exact number of requests per run(). The
    connections stay open between runs, so a measured run excludes connection
    set-up and tear-down. Every run is bounded by `timeout_s` overall and
    `idle_s` without progress."""

    def __init__(self, port, test, conns, depth, connect_timeout_s=60.0):
        self.reqs = build_requests(test)
        self.depth = depth
        self.sel = selectors.DefaultSelector()
        self.cs = []
        try:
            for _ in range(conns):
                s = socket.create_connection((HOST, port), timeout=connect_timeout_s)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.setblocking(False)
                c = _Conn(s)
                self.cs.append(c)
                self.sel.register(s, selectors.EVENT_READ, c)
        except BaseException:
            self.close()
            raise

    def close(self):
        for c in self.cs:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
        self.cs = []
        self.sel.close()

    def run(self, total, timeout_s, idle_s=60.0):
        sel, reqs, depth = self.sel, self.reqs, self.depth
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        issued = done = non200 = 0

        def issue(c):
            nonlocal issued
            n = min(depth, total - issued)
            for _ in range(max(n, 0)):
                # Each connection's requests in turn; over a run, the
                # templates in equal shares (to within one per connection).
                c.wbuf += reqs[c.sent % len(reqs)]
                c.sent += 1
            if n > 0:
                c.outstanding += n
                issued += n

        def interest(c):
            ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.wbuf else 0)
            sel.modify(c.sock, ev, c)

        for c in self.cs:
            issue(c)
            interest(c)
        last_progress = time.monotonic()
        while done < total:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"load: {done}/{total} responses after {timeout_s}s")
            if now - last_progress > idle_s:
                raise TimeoutError(f"load: no progress for {idle_s}s at {done}/{total}")
            for key, mask in sel.select(timeout=min(1.0, deadline - now)):
                c = key.data
                if mask & selectors.EVENT_WRITE and c.wbuf:
                    try:
                        sent = c.sock.send(c.wbuf)
                        del c.wbuf[:sent]
                    except BlockingIOError:
                        pass
                if mask & selectors.EVENT_READ:
                    try:
                        data = c.sock.recv(262144)
                    except BlockingIOError:
                        data = None
                    if data is not None:
                        if not data:
                            raise ConnectionError(
                                f"load: server closed a connection at {done}/{total}")
                        c.rbuf += data
                        end, resps = parse_responses(c.rbuf)
                        if resps:
                            del c.rbuf[:end]
                            last_progress = time.monotonic()
                            for status, _h, _b in resps:
                                done += 1
                                c.outstanding -= 1
                                if not 200 <= status < 300:
                                    non200 += 1
                            if c.outstanding <= 0:
                                issue(c)
                interest(c)
        return {"requests": done, "non200": non200, "seconds": time.monotonic() - t0}
