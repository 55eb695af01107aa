//! Reading the pipeline's output back as responses, and the invariants
//! every output must meet. Shared by tests/properties.rs and
//! tests/malformed_input.rs, which include this file with `#[path]`.

use crate::feed::{Fed, DATE};

pub const PLAIN_BODY: &[u8] = b"Hello, World!";
pub const JSON_BODY: &[u8] = br#"{"message":"Hello, World!"}"#;

// ---------------------------------------------------------------------------
// Reading the output back
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The `Connection` field, if any.
    pub connection: Option<String>,
    pub content_length: usize,
    pub body: Vec<u8>,
    pub allow: Option<String>,
    /// The `Content-Type` field, if any.
    pub content_type: Option<String>,
}

/// Parses `out` into whole responses. A 200 whose body is absent (the next
/// response or the end follows the head) is an answer to HEAD; a body that
/// is present must be whole. Panics on anything else: a truncated or
/// malformed response.
pub fn parse_responses(out: &[u8]) -> Vec<Response> {
    let mut responses = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        // The interim answer to `Expect: 100-continue` (exactly these
        // bytes) is not a response of its own: the final one follows, once
        // the body has come.
        if let Some(after) = rest.strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n") {
            rest = after;
            continue;
        }
        let head_end = find(rest, b"\r\n\r\n")
            .unwrap_or_else(|| panic!("unterminated head: {:?}", String::from_utf8_lossy(rest)))
            + 4;
        check_with_httparse(&rest[..head_end]);
        let head = std::str::from_utf8(&rest[..head_end]).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            other => panic!("unexpected status {other}"),
        };
        assert_eq!(status_line, format!("HTTP/1.1 {status} {reason}"));
        let mut connection = None;
        let mut content_length = None;
        let mut allow = None;
        let mut content_type = None;
        let mut server = 0;
        let mut date = 0;
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(": ").expect("name: value");
            match name {
                "Server" => {
                    assert_eq!(value, "chopin");
                    server += 1;
                }
                "Date" => {
                    assert_eq!(format!("Date: {value}\r\n").as_bytes(), DATE);
                    date += 1;
                }
                "Connection" => {
                    assert!(connection.replace(value.to_owned()).is_none());
                }
                "Content-Length" => {
                    assert!(content_length.replace(value.parse().unwrap()).is_none());
                }
                "Content-Type" => {
                    assert_eq!(status, 200);
                    assert!(content_type.replace(value.to_owned()).is_none());
                }
                "Allow" => {
                    assert!(allow.replace(value.to_owned()).is_none());
                }
                other => panic!("unexpected field {other:?}"),
            }
        }
        assert_eq!((server, date), (1, 1), "one Server and one Date field");
        let content_length: usize = content_length.expect("Content-Length");
        rest = &rest[head_end..];
        // An echo (POST only) is never an answer to HEAD, and its body may
        // itself start like a response.
        let echo = content_type.as_deref() == Some("application/octet-stream");
        let body = if status == 200 && !echo && (rest.is_empty() || rest.starts_with(b"HTTP/1.1 "))
        {
            Vec::new() // an answer to HEAD
        } else {
            assert!(
                rest.len() >= content_length,
                "truncated body: {content_length} announced, {} left",
                rest.len()
            );
            let body = rest[..content_length].to_vec();
            rest = &rest[content_length..];
            body
        };
        responses.push(Response {
            status,
            connection,
            content_length,
            body,
            allow,
            content_type,
        });
    }
    responses
}

/// An independent reading of one response head, by httparse's response
/// parser: it parses whole, `Server` and `Date` appear exactly once, and
/// `Content-Length` once, as a number.
pub fn check_with_httparse(head: &[u8]) {
    let mut fields = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut fields);
    let parsed = response.parse(head);
    assert_eq!(
        parsed,
        Ok(httparse::Status::Complete(head.len())),
        "httparse: {:?}",
        String::from_utf8_lossy(head)
    );
    assert_eq!(response.version, Some(1));
    let count = |name: &str| {
        response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    };
    assert_eq!(
        (count("Server"), count("Date"), count("Content-Length")),
        (1, 1, 1),
        "{:?}",
        String::from_utf8_lossy(head)
    );
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
        .map(|h| std::str::from_utf8(h.value).unwrap().parse::<usize>());
    assert!(matches!(length, Some(Ok(_))), "{length:?}");
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The invariants that hold for any input: whole responses; `close` exactly
/// when the last response says `Connection: close`, and no other does.
pub fn check_well_formed(fed: &Fed) -> Vec<Response> {
    let responses = parse_responses(&fed.out);
    let closing: Vec<usize> = responses
        .iter()
        .enumerate()
        .filter(|(_, r)| r.connection.as_deref() == Some("close"))
        .map(|(i, _)| i)
        .collect();
    if fed.close {
        assert_eq!(closing, [responses.len() - 1], "only the last one closes");
        assert!(fed.unread.is_empty());
    } else {
        assert!(closing.is_empty(), "Connection: close without close");
    }
    for r in &responses {
        match r.status {
            // `OPTIONS *`: its `Allow`, no content.
            200 if r.allow.is_some() => {
                assert_eq!(r.allow.as_deref(), Some("GET, HEAD, POST"));
                assert_eq!((r.content_length, r.body.len()), (0, 0));
            }
            // The body sent, or (HEAD) only its length, by content type:
            // text/plain is /plaintext's, /pipeline's `ok` or a decimal (a
            // /baseline11 sum, a /delay's ms); application/json is /json's
            // or a /json/{count} list; application/octet-stream is an
            // /echo, any bytes within the feed's bounds.
            200 => {
                assert!(r.body.is_empty() || r.body.len() == r.content_length);
                match r.content_type.as_deref() {
                    Some("text/plain") => {
                        let decimal =
                            std::str::from_utf8(&r.body).is_ok_and(|s| s.parse::<i64>().is_ok());
                        assert!(
                            r.body.is_empty() || r.body == PLAIN_BODY || r.body == b"ok" || decimal,
                            "{r:?}"
                        );
                        assert!(r.content_length <= 20, "{r:?}");
                    }
                    Some("application/json") => assert!(
                        r.body.is_empty()
                            || r.body == JSON_BODY
                            || (r.body.starts_with(br#"{"items":["#) && r.body.ends_with(b"}")),
                        "{r:?}"
                    ),
                    Some("application/octet-stream") => {
                        assert!(r.content_length <= 4096, "{r:?}")
                    }
                    other => panic!("200 with content type {other:?}: {r:?}"),
                }
            }
            405 => assert!(
                matches!(
                    r.allow.as_deref(),
                    Some("GET, HEAD" | "GET, HEAD, POST" | "POST")
                ),
                "{r:?}"
            ),
            _ => assert_eq!(r.content_length, 0),
        }
        // 404, 405 and an unknown method's 501 keep the connection (a
        // 501 for an unknown transfer coding or an over-long method closes
        // it); the rest close.
        if matches!(r.status, 400 | 413 | 414 | 431 | 505) {
            assert_eq!(r.connection.as_deref(), Some("close"), "errors close");
        }
    }
    responses
}
