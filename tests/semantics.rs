//! HTTP semantics over real sockets: HEAD, 404, 405, 501, persistence
//! (`Connection`, HTTP/1.0) and the absolute-form target (the timeouts are
//! in tests/timeouts.rs, shutdown in tests/shutdown_under_load.rs).

mod common;

use std::time::Duration;

use common::*;

/// The fields of a keep-alive answer without a body (404, 501).
const NO_BODY: &[(&str, &str)] = &[("Server", "chopin"), ("Content-Length", "0")];

fn with(
    mut fields: Vec<(&'static str, &'static str)>,
    extra: (&'static str, &'static str),
) -> Vec<(&'static str, &'static str)> {
    fields.push(extra);
    fields
}

#[test]
fn head_has_the_get_fields_and_no_body() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for (path, fields) in [
            ("/plaintext", plaintext_fields()),
            ("/json", json_fields()),
            ("/json?x=1", json_fields()),
        ] {
            let get_resp = conn.roundtrip(get(path));
            // HEAD, then a GET behind it in the same write: the GET's answer
            // must follow the HEAD's head immediately.
            conn.send(request("HEAD", path) + &get(path));
            let head_resp = conn.head_response();
            let next = conn.response();

            head_resp.assert_exact(200, &fields, b"");
            assert_eq!(head_resp.reason, "OK");
            let strip = |r: &Response| mask_dates(&r.raw[..r.raw.len() - r.body.len()]);
            assert_eq!(
                String::from_utf8_lossy(&strip(&head_resp)),
                String::from_utf8_lossy(&strip(&get_resp)),
                "HEAD {path} and GET {path} heads differ"
            );
            assert_eq!(head_resp.content_length(), get_resp.body.len());
            assert_eq!(next.status, 200, "{next}");
            assert_eq!(next.body, get_resp.body);
        }
        // HEAD of an unknown path is a 404 like GET.
        conn.send(request("HEAD", "/nope"));
        conn.head_response().assert_exact(404, NO_BODY, b"");
        conn.expect_silence(Duration::from_millis(20));
        conn.assert_alive();
    });
}

#[test]
fn other_methods_get_405_and_the_connection_stays_open() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for path in ["/plaintext", "/json", "/json?a=b"] {
            for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"] {
                let resp = conn.roundtrip(request(method, path));
                resp.assert_exact(405, &allow_fields(), b"");
                assert_eq!(resp.reason, "Method Not Allowed", "{method} {path}");
            }
            // With an empty and a non-empty body.
            let resp = conn.roundtrip(format!(
                "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
            ));
            resp.assert_exact(405, &allow_fields(), b"");
            let resp = conn.roundtrip(format!(
                "PUT {path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
            ));
            resp.assert_exact(405, &allow_fields(), b"");
        }
        conn.expect_silence(Duration::from_millis(20));
        conn.assert_alive();
    });
}

/// A method token the server does not recognise gets 501 (RFC 9110 9.1),
/// on any route; methods are case-sensitive, so `get` is such a token.
/// The request is well framed, so the connection goes on.
#[test]
fn unknown_methods_get_501_and_the_connection_stays_open() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for path in ["/plaintext", "/json", "/nope"] {
            for method in ["get", "Head", "BREW", "PROPFIND", "M-SEARCH", "GET!"] {
                let resp = conn.roundtrip(request(method, path));
                resp.assert_exact(501, NO_BODY, b"");
                assert_eq!(resp.reason, "Not Implemented", "{method} {path}");
            }
            let resp = conn.roundtrip(format!(
                "BREW {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nHELLO"
            ));
            resp.assert_exact(501, NO_BODY, b"");
        }
        let resp = conn.roundtrip(get("/plaintext"));
        resp.assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        conn.expect_silence(Duration::from_millis(20));
        conn.assert_alive();
    });
}

/// Chunked request bodies are decoded and skipped (RFC 9112 7.1: every
/// recipient must decode chunked), extensions and trailers included; the
/// answer comes once the body has ended, and the connection goes on.
#[test]
fn chunked_request_bodies_are_skipped() {
    let chunked = |request_line: &str, body: &str| {
        format!("{request_line} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
    };
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for body in [
            "0\r\n\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
            "5;name=\"a;b\"\r\nhe\r\nl\r\n00\r\nX-Sum: 5\r\n\r\n",
            "1D\r\nGET /json HTTP/1.1\r\nHost: a\r\n\r\n0\r\n\r\n",
        ] {
            let resp = conn.roundtrip(chunked("POST /json", body));
            resp.assert_exact(405, &allow_fields(), b"");
            let resp = conn.roundtrip(chunked("GET /plaintext", body));
            resp.assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        }
        // Pipelined behind a chunked request, in the same write.
        conn.send(chunked("GET /json", "3\r\nabc\r\n0\r\n\r\n") + &get("/plaintext"));
        conn.response().assert_exact(200, &json_fields(), JSON_BODY);
        conn.response()
            .assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);

        // A body in pieces, split inside the size line, the data, the CRLF
        // after it and the trailers: no answer until the last piece.
        let whole = chunked(
            "GET /json",
            "10;x=y\r\n0123456789abcdef\r\n0\r\nA: b\r\n\r\n",
        );
        let head_end = whole.find("\r\n\r\n").unwrap() + 4;
        let mut at = 0;
        for end in [
            head_end + 1,
            head_end + 5,
            head_end + 12,
            head_end + 25,
            head_end + 26,
            head_end + 31,
        ] {
            conn.send(&whole[at..end]);
            conn.expect_silence(Duration::from_millis(20));
            at = end;
        }
        conn.send(&whole[at..]);
        conn.response().assert_exact(200, &json_fields(), JSON_BODY);
        conn.assert_alive();
    });
}

/// With `Expect: 100-continue` the client may hold a chunked body back until
/// it hears from us: the answer comes at once, and the connection closes.
#[test]
fn chunked_body_with_expect_continue_is_answered_at_once() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        conn.send(
            "POST /json HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let resp = conn.response();
        resp.assert_exact(405, &with(allow_fields(), ("Connection", "close")), b"");
        conn.expect_close();
    });
}

/// RFC 9110 10.1.1: a server MUST ignore a 100-continue expectation in an
/// HTTP/1.0 request; the body that follows is read and skipped as usual.
#[test]
fn expect_continue_in_http_1_0_is_ignored() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        conn.send("GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        let keep_alive = with(plaintext_fields(), ("Connection", "keep-alive"));
        conn.response()
            .assert_exact(200, &keep_alive, PLAINTEXT_BODY);
        conn.expect_silence(Duration::from_millis(20));
        let resp = conn.roundtrip(format!("hello{}", get("/json")));
        resp.assert_exact(200, &json_fields(), JSON_BODY);
        conn.assert_alive();
    });
}

#[test]
fn unknown_paths_get_404_and_the_connection_stays_open() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for target in [
            "/",
            "/nope",
            "/JSON",
            "/Plaintext",
            "/json/",
            "/plaintextx",
            "/jsonp",
            "/no%20pe",
            "urn:json",
            "/plaintext/../json",
        ] {
            for method in ["GET", "POST"] {
                let resp = conn.roundtrip(request(method, target));
                resp.assert_exact(404, NO_BODY, b"");
                assert_eq!(resp.reason, "Not Found", "{method} {target}");
            }
        }
        conn.expect_silence(Duration::from_millis(20));
        conn.assert_alive();
    });
}

#[test]
fn connection_close_is_answered_then_closed() {
    each_flavour(|_, addr| {
        for (value, request_line, status, fields, body) in [
            ("close", "GET /json", 200, json_fields(), JSON_BODY),
            (
                "Close",
                "GET /plaintext",
                200,
                plaintext_fields(),
                PLAINTEXT_BODY,
            ),
            (
                "keep-alive, close",
                "GET /json",
                200,
                json_fields(),
                JSON_BODY,
            ),
            ("Upgrade, CLOSE", "GET /json", 200, json_fields(), JSON_BODY),
            ("close", "GET /nope", 404, NO_BODY.to_vec(), &b""[..]),
            ("close", "BREW /json", 501, NO_BODY.to_vec(), &b""[..]),
            ("close", "DELETE /json", 405, allow_fields(), &b""[..]),
        ] {
            let mut conn = Conn::open(addr);
            // A request pipelined behind it must not be answered.
            conn.send(format!(
                "{request_line} HTTP/1.1\r\nHost: a\r\nConnection: {value}\r\n\r\n{}",
                get("/plaintext")
            ));
            let resp = conn.response();
            resp.assert_exact(status, &with(fields, ("Connection", "close")), body);
            conn.expect_close();
        }
        // On a connection that served keep-alive requests first, and with the
        // field name in another case.
        let mut conn = Conn::open(addr);
        conn.assert_alive();
        conn.send("GET /plaintext HTTP/1.1\r\nhost: a\r\nCONNECTION: close\r\n\r\n");
        conn.response().assert_exact(
            200,
            &with(plaintext_fields(), ("Connection", "close")),
            PLAINTEXT_BODY,
        );
        conn.expect_close();
        // HEAD with close: head only, then the close.
        let mut conn = Conn::open(addr);
        conn.send("HEAD /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        conn.head_response()
            .assert_exact(200, &with(json_fields(), ("Connection", "close")), b"");
        conn.expect_close();
    });
}

#[test]
fn http10_without_keep_alive_is_answered_then_closed() {
    each_flavour(|_, addr| {
        for raw in [
            "GET /plaintext HTTP/1.0\r\n\r\n",
            "GET /plaintext HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET /plaintext HTTP/1.0\r\nConnection: close\r\n\r\n",
        ] {
            let mut conn = Conn::open(addr);
            conn.send(format!("{raw}{}", get("/json")));
            let resp = conn.response();
            resp.assert_exact(
                200,
                &with(plaintext_fields(), ("Connection", "close")),
                PLAINTEXT_BODY,
            );
            conn.expect_close();
        }
    });
}

#[test]
fn http10_with_keep_alive_stays_open() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for value in ["keep-alive", "Keep-Alive"] {
            let resp = conn.roundtrip(format!("GET /json HTTP/1.0\r\nConnection: {value}\r\n\r\n"));
            resp.assert_exact(
                200,
                &with(json_fields(), ("Connection", "keep-alive")),
                JSON_BODY,
            );
        }
        conn.send("HEAD /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        conn.head_response().assert_exact(
            200,
            &with(plaintext_fields(), ("Connection", "keep-alive")),
            b"",
        );
        conn.expect_silence(Duration::from_millis(20));
        // An HTTP/1.1 request on the same connection: keep-alive by default.
        conn.roundtrip(get("/json"))
            .assert_exact(200, &json_fields(), JSON_BODY);
        // An HTTP/1.0 request without the token ends it.
        conn.send("GET /plaintext HTTP/1.0\r\n\r\n");
        conn.response().assert_exact(
            200,
            &with(plaintext_fields(), ("Connection", "close")),
            PLAINTEXT_BODY,
        );
        conn.expect_close();
    });
}

#[test]
fn http11_keep_alive_is_the_default() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for _ in 0..3 {
            // No Connection field in the answer: keep-alive is implied.
            conn.roundtrip(get("/json"))
                .assert_exact(200, &json_fields(), JSON_BODY);
            conn.roundtrip("GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
                .assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        }
        conn.expect_silence(Duration::from_millis(20));
    });
}

#[test]
fn absolute_form_targets() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for (target, status) in [
            ("http://localhost/json", 200),
            ("http://localhost:8080/json?x=1", 200),
            ("HTTP://LOCALHOST/plaintext", 200),
            ("https://example.com/plaintext", 200),
            ("http://localhost", 404),
            ("http://localhost/", 404),
            ("http://localhost/nope", 404),
            ("ftp://localhost/json", 404),
        ] {
            let resp = conn.roundtrip(format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n"));
            assert_eq!(resp.status, status, "{target}: {resp}");
            if status == 200 {
                let json = target.contains("/json");
                let body = if json { JSON_BODY } else { PLAINTEXT_BODY };
                let fields = if json {
                    json_fields()
                } else {
                    plaintext_fields()
                };
                resp.assert_exact(200, &fields, body);
            }
        }
        conn.assert_alive();
    });
}

/// RFC 9112 2.2: a server should ignore at least one empty line before a
/// request line.
#[test]
fn leading_empty_lines_are_ignored() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        conn.roundtrip(format!("\r\n{}", get("/json")))
            .assert_exact(200, &json_fields(), JSON_BODY);
        conn.roundtrip(format!("\r\n\r\n{}", get("/plaintext")))
            .assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
    });
}

/// The client half-closes after its request: the answer still arrives, then
/// the server closes.
#[test]
fn client_half_close_still_gets_its_answers() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        conn.send(get("/plaintext") + &get("/json"));
        conn.shutdown_write();
        conn.response()
            .assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        conn.response().assert_exact(200, &json_fields(), JSON_BODY);
        conn.expect_close();
    });
}
