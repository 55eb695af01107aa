//! Every kind of response the encoder writes, byte for byte over real
//! sockets in both flavours (only the `Date` value masked): the status line,
//! `Server`, `Connection` when the connection's state needs it, the
//! handler's fields in order, `Content-Length`, `Date`, the body.

mod common;

use std::net::SocketAddr;

use common::*;

/// The head of a response as the encoder writes it, `Date` masked.
fn head(status: &str, server: &str, fields: &[&str], length: usize) -> String {
    let mut head = format!("HTTP/1.1 {status}\r\nServer: {server}\r\n");
    for field in fields {
        head.push_str(field);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {length}\r\nDate: <date>\r\n\r\n"));
    head
}

/// One exchange on a fresh connection: `raw` sent, one response read
/// (without a body for `HEAD`), compared byte for byte with `expected`.
/// With `closes`, the connection must close after it.
fn exact(addr: SocketAddr, raw: &str, expected: &str, closes: bool) {
    let mut conn = Conn::open(addr);
    conn.send(raw);
    let response = answer_to(&mut conn, raw);
    assert_eq!(
        String::from_utf8(mask_dates(&response.raw)).unwrap(),
        expected,
        "{raw:?}"
    );
    assert_date_is_now(response.single("Date"));
    if closes {
        conn.expect_close();
    } else {
        conn.assert_alive();
    }
}

/// Reads the response to `raw`, which has no body if `raw` is a HEAD.
fn answer_to(conn: &mut Conn, raw: &str) -> Response {
    if raw.starts_with("HEAD ") {
        conn.head_response()
    } else {
        conn.response()
    }
}

/// Every response kind, with `server` as the `Server` value.
fn every_kind(addr: SocketAddr, server: &str) {
    let plain = |fields: &[&str]| {
        let mut all = fields.to_vec();
        all.push("Content-Type: text/plain");
        head("200 OK", server, &all, PLAINTEXT_BODY.len())
    };
    let json = |fields: &[&str]| {
        let mut all = fields.to_vec();
        all.push("Content-Type: application/json");
        head("200 OK", server, &all, JSON_BODY.len())
    };
    let text = |body: &[u8]| String::from_utf8(body.to_vec()).unwrap();
    let ok_cases = [
        (get("/plaintext"), plain(&[]) + &text(PLAINTEXT_BODY)),
        (get("/json"), json(&[]) + &text(JSON_BODY)),
        (request("HEAD", "/plaintext"), plain(&[])),
        (request("HEAD", "/json"), json(&[])),
        (
            "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_owned(),
            json(&["Connection: keep-alive"]) + &text(JSON_BODY),
        ),
        (get("/nope"), head("404 Not Found", server, &[], 0)),
        (
            "POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}".to_owned(),
            head("405 Method Not Allowed", server, &["Allow: GET, HEAD"], 0),
        ),
        (
            request("OPTIONS", "*"),
            head("200 OK", server, &["Allow: GET, HEAD, POST"], 0),
        ),
        (
            request("BREW", "/json"),
            head("501 Not Implemented", server, &[], 0),
        ),
        (
            request("CONNECT", "example.com:443"),
            head("501 Not Implemented", server, &[], 0),
        ),
    ];
    for (raw, expected) in &ok_cases {
        exact(addr, raw, expected, false);
    }

    let close = "Connection: close";
    let closing_cases = [
        (
            "GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_owned(),
            plain(&[close]) + &text(PLAINTEXT_BODY),
        ),
        (
            "GET /json HTTP/1.0\r\n\r\n".to_owned(),
            json(&[close]) + &text(JSON_BODY),
        ),
        ("HEAD /json HTTP/1.0\r\n\r\n".to_owned(), json(&[close])),
        (
            "GET /json HTTP/1.1\r\n\r\n".to_owned(),
            head("400 Bad Request", server, &[close], 0),
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000)),
            head("414 URI Too Long", server, &[close], 0),
        ),
        (
            format!(
                "GET /json HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
                "a".repeat(9000)
            ),
            head("431 Request Header Fields Too Large", server, &[close], 0),
        ),
        (
            "GET /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_owned(),
            head("501 Not Implemented", server, &[close], 0),
        ),
        (
            "GET /json HTTP/2.0\r\nHost: a\r\n\r\n".to_owned(),
            head("505 HTTP Version Not Supported", server, &[close], 0),
        ),
    ];
    for (raw, expected) in &closing_cases {
        exact(addr, raw, expected, true);
    }
}

#[test]
fn every_response_kind_byte_for_byte() {
    each_flavour(|_, addr| every_kind(addr, "chopin"));
}

#[test]
fn server_name_is_on_every_response_kind() {
    each_flavour_with(
        |config| config.server_name = "x/1.0 (test)".to_owned(),
        |_, addr| every_kind(addr, "x/1.0 (test)"),
    );
}

/// The answers of one pipelined batch are the same bytes as each alone:
/// nothing of one response leaks into the next.
#[test]
fn pipelined_answers_are_each_exact() {
    each_flavour(|_, addr| {
        let requests = [
            get("/plaintext"),
            request("HEAD", "/json"),
            get("/nope"),
            request("OPTIONS", "*"),
            get("/json"),
        ];
        let mut conn = Conn::open(addr);
        conn.send(requests.concat());
        let mut batch = Vec::new();
        for raw in &requests {
            batch.push(mask_dates(&answer_to(&mut conn, raw).raw));
        }
        for (raw, answered) in requests.iter().zip(&batch) {
            let mut alone = Conn::open(addr);
            alone.send(raw);
            let response = answer_to(&mut alone, raw);
            assert_eq!(
                String::from_utf8_lossy(answered),
                String::from_utf8_lossy(&mask_dates(&response.raw)),
                "{raw:?}"
            );
        }
    });
}
