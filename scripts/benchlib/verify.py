"""Check a running server the way the TechEmpower (TFB) verifier checks the
/plaintext and /json tests.

Rules follow TFB's toolset/test_types/{plaintext/plaintext.py,json/json.py,
verifications.py}: status 200; Server, Date, Content-Type present; a size header
present; Content-Type matching TFB's patterns; the Hello, World! body; Date not
cached (a second request N seconds later must carry a different Date).

Where TFB is lenient or only warns, this script is strict and fails, because a
benchmark entry should pass cleanly:
  - Content-Length is required (TFB also accepts Transfer-Encoding) and must
    equal the body size;
  - /plaintext must be exactly "Hello, World!" (TFB: contains it, any case;
    extra bytes are a warning);
  - /json must be an object with exactly one key "message" whose value is
    exactly "Hello, World!" (TFB lowercases keys and values and only warns on
    extra keys);
  - Date must be an HTTP-date, "Sun, 06 Nov 1994 08:49:37 GMT" (TFB warns).

Each check prints a PASS or FAIL line; the last line is "N passed, M failed".
Exit status: 0 all passed, 1 some check failed, 2 usage error or server
unreachable.
"""

import argparse
import datetime
import email.utils
import http.client
import json
import re
import socket
import sys
import time
import urllib.parse

from .checks import Report
# The Accept headers TFB's verifier sends (abstract_test_type.py).
from .shapes import ACCEPT

PLAINTEXT_BODY = b"Hello, World!"
JSON_MESSAGE = "Hello, World!"

# Verbatim from TFB's verifications.py (verify_headers).
CONTENT_TYPES = {
    "plaintext": r"^text/plain(; ?charset=(UTF|utf)-8)?$",
    "json": r"^application/json(; ?charset=(UTF|utf)-8)?$",
}

# IMF-fixdate, RFC 9110 section 5.6.7.
HTTP_DATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT$"
)


class Unreachable(Exception):
    pass


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: case-insensitive get()
        self.body = body

    def header(self, name):
        return self.headers.get(name)


def fetch(base, path, accept, timeout):
    """One GET on a fresh connection, like TFB's requests.get()."""
    if base.scheme == "https":
        conn = http.client.HTTPSConnection(base.hostname, base.port or 443, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=timeout)
    host = base.hostname if base.port is None else "%s:%d" % (base.hostname, base.port)
    if ":" in base.hostname:  # IPv6 literal
        host = "[%s]" % base.hostname + ("" if base.port is None else ":%d" % base.port)
    target = base.path.rstrip("/") + path
    try:
        try:
            conn.connect()
        except (OSError, socket.timeout) as e:
            raise Unreachable("cannot connect to %s:%s: %s" % (base.hostname, base.port or 80, e))
        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        conn.putheader("Accept", accept)
        conn.putheader("User-Agent", "chopin-verify")
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return Response(resp.status, resp.reason, resp.msg, body)
    finally:
        conn.close()


def check_common(rep, name, r, kind):
    """Status and the headers verify_headers() looks at. Returns the Date."""
    rep.check(r.status == 200, "%s: status 200" % name, "got %d %s" % (r.status, r.reason))
    for h in ("Server", "Date", "Content-Type", "Content-Length"):
        v = r.header(h)
        rep.check(v is not None, "%s: header %s present%s" % (name, h, "" if v is None else " (%s)" % v),
                  "missing" + (" (has Transfer-Encoding: %s)" % r.header("Transfer-Encoding")
                               if h == "Content-Length" and r.header("Transfer-Encoding") else ""))

    cl = r.header("Content-Length")
    if cl is not None:
        rep.check(cl.strip().isdigit() and int(cl) == len(r.body),
                  "%s: Content-Length equals body size (%d)" % (name, len(r.body)),
                  "header says %r" % cl)

    ct = r.header("Content-Type")
    if ct is not None:
        pattern = CONTENT_TYPES[kind]
        rep.check(re.match(pattern, ct) is not None,
                  "%s: Content-Type matches %s" % (name, pattern), "found %r" % ct)

    date = r.header("Date")
    if date is not None:
        ok = HTTP_DATE.match(date) is not None
        if ok:
            try:
                email.utils.parsedate_to_datetime(date)
                # TFB's own parse: datetime.strptime(date, '%a, %d %b %Y %H:%M:%S %Z')
                datetime.datetime.strptime(date, "%a, %d %b %Y %H:%M:%S %Z")
            except (TypeError, ValueError):
                ok = False
        rep.check(ok, "%s: Date is an HTTP-date (%s)" % (name, date),
                  "not like 'Sun, 06 Nov 1994 08:49:37 GMT'")
    return date


def check_plaintext(rep, name, r):
    rep.check(r.body == PLAINTEXT_BODY, "%s: body is exactly %r" % (name, PLAINTEXT_BODY.decode()),
              "got %r" % r.body[:200])


def check_json(rep, name, r):
    # TFB: basic_body_verification (json.loads) then verify_helloworld_object.
    if not rep.check(len(r.body) > 0, "%s: body not empty" % name, "empty response"):
        return
    dupes = []

    def pairs(items):
        seen = {}
        for k, v in items:
            if k in seen:
                dupes.append(k)
            seen[k] = v
        return seen

    try:
        obj = json.loads(r.body.decode("utf-8"), object_pairs_hook=pairs)
    except (UnicodeDecodeError, ValueError) as e:
        rep.check(False, "%s: body is valid JSON" % name, "%s; body %r" % (e, r.body[:200]))
        return
    rep.check(True, "%s: body is valid JSON" % name)
    if not rep.check(isinstance(obj, dict), "%s: body is a JSON object" % name,
                     "got %s" % type(obj).__name__):
        return
    rep.check(list(obj.keys()) == ["message"] and not dupes,
              "%s: object has exactly one key, \"message\"" % name,
              "keys %s%s" % (list(obj.keys()), "; duplicated %s" % dupes if dupes else ""))
    msg = obj.get("message")
    rep.check(msg == JSON_MESSAGE, "%s: message is exactly %r" % (name, JSON_MESSAGE),
              "got %r" % (msg,))


def main(argv):
    ap = argparse.ArgumentParser(
        prog="scripts/verify",
        description="Check a running server's /plaintext and /json the way the "
        "TechEmpower verifier does (stricter where TFB only warns).",
        epilog="Output: one PASS/FAIL line per check, then 'N passed, M failed'. "
        "Exit status: 0 all passed, 1 a check failed, 2 usage error or server unreachable.",
    )
    ap.add_argument("--url", default="http://127.0.0.1:8080",
                    help="server base URL; /plaintext and /json are appended (default: %(default)s)")
    ap.add_argument("--wait-date", type=float, default=3, metavar="SECONDS",
                    help="seconds between the two requests whose Date headers must differ, "
                    "as TFB's 'Invalid Cached Date' check (default: %(default)s; 0 skips it)")
    ap.add_argument("--timeout", type=float, default=15, metavar="SECONDS",
                    help="per-request timeout (default: %(default)s, as TFB)")
    args = ap.parse_args(argv)

    base = urllib.parse.urlsplit(args.url)
    try:
        base.port  # raises ValueError on a bad port
    except ValueError as e:
        ap.error("bad --url %r: %s" % (args.url, e))
    if base.scheme not in ("http", "https") or not base.hostname or base.query or base.fragment:
        ap.error("bad --url %r: expected http://HOST[:PORT][/PREFIX]" % args.url)
    if args.wait_date < 0 or args.timeout <= 0:
        ap.error("--wait-date must be >= 0 and --timeout > 0")

    tests = [("/plaintext", "plaintext", check_plaintext), ("/json", "json", check_json)]
    rep = Report()
    first_dates = {}
    try:
        for path, kind, check_body in tests:
            try:
                r = fetch(base, path, ACCEPT[kind], args.timeout)
            except Unreachable as e:
                if rep.passed + rep.failed == 0:
                    raise  # nothing answered at all: a setup problem, exit 2
                rep.check(False, "GET %s: got a response" % path, str(e))
                continue
            except (OSError, http.client.HTTPException) as e:
                rep.check(False, "GET %s: got a response" % path, "%s: %s" % (type(e).__name__, e))
                continue
            first_dates[path] = check_common(rep, "GET " + path, r, kind)
            check_body(rep, "GET " + path, r)

        # TFB: sleep(3), request again, fail if the Date header is unchanged.
        # Done once for both URLs here, to wait only once.
        if args.wait_date == 0:
            rep.skip("Date changes between requests", "--wait-date 0")
        else:
            time.sleep(args.wait_date)
            for path, kind, _ in tests:
                what = "GET %s: Date changes after %gs" % (path, args.wait_date)
                d1 = first_dates.get(path)
                if d1 is None:
                    rep.check(False, what, "no Date on the first request")
                    continue
                try:
                    d2 = fetch(base, path, ACCEPT[kind], args.timeout).header("Date")
                except (Unreachable, OSError, http.client.HTTPException) as e:
                    rep.check(False, what, "second request failed: %s" % e)
                    continue
                rep.check(d2 is not None and d2 != d1, what,
                          "cached Date: %r then %r" % (d1, d2))
    except Unreachable as e:
        print("verify: server unreachable at %s: %s" % (args.url, e), file=sys.stderr)
        print("%d passed, %d failed" % (rep.passed, rep.failed))
        return 2
    except KeyboardInterrupt:
        print("verify: interrupted", file=sys.stderr)
        return 2

    print("%d passed, %d failed" % (rep.passed, rep.failed))
    return 1 if rep.failed else 0

