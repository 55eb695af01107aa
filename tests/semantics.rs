//! HTTP semantics over real sockets: HEAD, 404, 405, 501, persistence
//! (`Connection`, HTTP/1.0), the absolute-form target and timeouts.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn allow_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Server", "chopin"),
        ("Allow", "GET, HEAD"),
        ("Content-Length", "0"),
    ]
}

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

/// `--header-timeout`: an unfinished head is dropped after it, an idle
/// keep-alive connection is not (without `--idle-timeout`).
#[test]
fn header_timeout_closes_unfinished_heads_only() {
    let timeout = Duration::from_millis(300);
    each_flavour_with(
        |config| config.header_timeout = timeout,
        |_, addr| {
            let mut idle = Conn::open(addr);
            idle.assert_alive();
            let mut slow = Conn::open(addr);
            let started = Instant::now();
            slow.send("GET /json HTTP/1.1\r\nHost: a\r\n");
            slow.expect_close();
            let took = started.elapsed();
            assert!(
                took >= timeout - Duration::from_millis(20),
                "closed after {took:?}, before the {timeout:?} header timeout"
            );
            // Idle for longer than the header timeout: still served.
            assert!(started.elapsed() > timeout);
            idle.assert_alive();
        },
    );
}

/// `--idle-timeout`: an idle keep-alive connection is closed after it.
#[test]
fn idle_timeout_closes_idle_connections() {
    let timeout = Duration::from_millis(300);
    each_flavour_with(
        |config| config.idle_timeout = Some(timeout),
        |_, addr| {
            let mut conn = Conn::open(addr);
            conn.assert_alive();
            let started = Instant::now();
            conn.expect_close();
            let took = started.elapsed();
            assert!(
                took >= timeout - Duration::from_millis(20),
                "closed after {took:?}, before the {timeout:?} idle timeout"
            );
        },
    );
}

/// The header timeout bounds how long one head takes to arrive. A busy
/// client whose writes keep ending inside a request (every head complete
/// within milliseconds, but some head always unfinished at the end of a
/// read) must not be cut off after `--header-timeout`.
#[test]
fn header_timeout_applies_per_head_on_a_busy_connection() {
    let timeout = Duration::from_millis(300);
    each_flavour_with(
        |config| config.header_timeout = timeout,
        |_, addr| {
            let mut conn = Conn::open(addr);
            let one = get("/json");
            // Writes of one request plus a byte, 20 ms apart: a write ends
            // on a request boundary only every len-th (39th) time, so for
            // these 30 writes (600 ms, twice the timeout) every read ends
            // inside a head, and every head completes within 20 ms.
            let chunk = one.len() + 1;
            let writes = 30;
            assert!(writes < one.len());
            let stream = one.repeat(writes * chunk / one.len() + 1).into_bytes();
            let stream = &stream[..writes * chunk];
            let mut writer = conn.stream.try_clone().unwrap();
            let sent = stream.to_vec();
            let sender = std::thread::spawn(move || {
                use std::io::Write;
                for piece in sent.chunks(chunk) {
                    if writer.write_all(piece).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            let complete = stream.len() / one.len();
            let started = std::time::Instant::now();
            for i in 0..complete {
                eprintln!("waiting for response {i} at {:?}", started.elapsed());
                let resp = conn.response();
                assert_eq!(resp.status, 200, "response {i}: {resp}");
                assert_eq!(resp.body, JSON_BODY, "response {i}: {resp}");
            }
            sender.join().unwrap();
        },
    );
}

/// `--body-timeout`: a request body that stops coming closes the
/// connection once that long has passed without a read taking some of it:
/// a `Content-Length` body (its 405 is already answered), a chunked body
/// stopped inside a chunk-size line, and one whose chunk-size line grows a
/// byte at a time without ending (bytes of an unfinished line are no
/// progress, or it could be held open for 8 KiB of timeouts).
#[test]
fn body_timeout_closes_a_stalled_body() {
    let timeout = Duration::from_millis(300);
    let at_least = timeout - Duration::from_millis(20);
    each_flavour_with(
        |config| config.body_timeout = timeout,
        |_, addr| {
            let mut conn = Conn::open(addr);
            let started = Instant::now();
            let resp =
                conn.roundtrip("POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
            resp.assert_exact(405, &allow_fields(), b"");
            conn.expect_close();
            let took = started.elapsed();
            assert!(
                took >= at_least,
                "Content-Length body closed after {took:?}"
            );

            let chunked = "POST /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
            let mut conn = Conn::open(addr);
            let started = Instant::now();
            conn.send(format!("{chunked}5\r\nhello\r\n1"));
            conn.expect_close();
            let took = started.elapsed();
            assert!(took >= at_least, "chunk-size line closed after {took:?}");

            let mut conn = Conn::open(addr);
            let started = Instant::now();
            conn.send(format!("{chunked}5\r\nhello\r\n1;a="));
            let mut writer = conn.stream.try_clone().unwrap();
            let trickle = std::thread::spawn(move || {
                use std::io::Write;
                for _ in 0..40 {
                    if writer.write_all(b"b").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            conn.expect_close();
            let took = started.elapsed();
            assert!(
                took >= at_least && took < 4 * timeout,
                "trickled chunk-size line closed after {took:?}"
            );
            trickle.join().unwrap();
        },
    );
}

/// A body that keeps coming is not cut, however long it takes in all:
/// here every piece arrives within half the body timeout, for four times
/// the timeout, then the connection goes on.
#[test]
fn body_timeout_spares_a_body_that_keeps_coming() {
    let timeout = Duration::from_millis(300);
    let pace = Duration::from_millis(150);
    each_flavour_with(
        |config| config.body_timeout = timeout,
        |_, addr| {
            let mut conn = Conn::open(addr);
            let resp =
                conn.roundtrip("POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n");
            resp.assert_exact(405, &allow_fields(), b"");
            for byte in b"01234567" {
                std::thread::sleep(pace);
                conn.send([*byte]);
            }
            conn.assert_alive();

            conn.send("POST /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
            for _ in 0..8 {
                std::thread::sleep(pace);
                conn.send("1\r\nx\r\n");
            }
            let resp = conn.roundtrip("0\r\n\r\n");
            resp.assert_exact(405, &allow_fields(), b"");
            conn.assert_alive();
        },
    );
}

/// `Server::shutdown`: idle keep-alive connections are closed, a head in
/// progress is dropped, new connections are refused, and it returns within
/// the drain bound.
#[test]
fn shutdown_closes_connections_and_stops_accepting() {
    for flavour in FLAVOURS {
        let server = start(flavour);
        let addr = server.local_addr();
        let mut idle = Conn::open(addr);
        idle.assert_alive();
        let mut partial = Conn::open(addr);
        partial.send("GET /json HTTP/1.1\r\nHost: a\r\n");
        let started = Instant::now();
        server.shutdown();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{flavour}: shutdown took {took:?}"
        );
        assert!(idle.read_to_close().is_empty(), "{flavour}");
        assert!(partial.read_to_close().is_empty(), "{flavour}");
        let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        assert!(refused.is_err(), "{flavour}: connected after shutdown");
    }
}
