//! Reading the pipeline's output back as answers, and the invariants every
//! output must meet. Used by tests/properties.rs and tests/malformed_input.rs
//! and by the fuzz target (fuzz/fuzz_targets/pipeline.rs, through
//! `#[path]`, beside feed.rs, response.rs and date.rs).

use super::feed::{Fed, DATE};
use super::response::{parse_head, Response};

/// The bodies of `/plaintext` and `/json`, defined here rather than in
/// `common/mod.rs` because the fuzz target includes this file without it.
pub const PLAINTEXT_BODY: &[u8] = b"Hello, World!";
pub const JSON_BODY: &[u8] = br#"{"message":"Hello, World!"}"#;

/// What the property tests compare of one answer: its status, the fields
/// that vary between answers, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The `Connection` field, if any.
    pub connection: Option<String>,
    pub content_length: usize,
    pub body: Vec<u8>,
    pub allow: Option<String>,
    /// The `Content-Type` field, if any.
    pub content_type: Option<String>,
}

impl Answer {
    fn of(r: &Response) -> Answer {
        let field = |name: &str| r.header(name).map(str::to_owned);
        Answer {
            status: r.status,
            connection: field("Connection"),
            content_length: r.content_length(),
            body: r.body.clone(),
            allow: field("Allow"),
            content_type: field("Content-Type"),
        }
    }
}

/// Parses `out` into whole answers (with the shared reader, head by head).
/// A 200 whose body is absent (the next response or the end follows the
/// head) is an answer to HEAD; a body that is present must be whole.
/// Panics on anything else: a truncated or malformed response, a status,
/// reason or field chopin does not send.
pub fn parse_responses(out: &[u8]) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        // The interim answer to `Expect: 100-continue` (exactly these
        // bytes) is not an answer of its own: the final one follows, once
        // the body has come.
        if let Some(after) = rest.strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n") {
            rest = after;
            continue;
        }
        let (mut response, head_len) = match parse_head(rest) {
            Ok(Some(head)) => head,
            Ok(None) => panic!("unterminated head: {:?}", String::from_utf8_lossy(rest)),
            Err(e) => panic!("{e}"),
        };
        check_with_httparse(&rest[..head_len]);
        check_head(&response);
        rest = &rest[head_len..];
        let length = response.content_length();
        // An echo (POST only) is never an answer to HEAD, and its body may
        // itself start like a response.
        let echo = response.header("Content-Type") == Some("application/octet-stream");
        let head_only =
            response.status == 200 && !echo && (rest.is_empty() || rest.starts_with(b"HTTP/1.1 "));
        if !head_only {
            assert!(
                rest.len() >= length,
                "truncated body: {length} announced, {} left",
                rest.len()
            );
            response.body = rest[..length].to_vec();
            rest = &rest[length..];
        }
        answers.push(Answer::of(&response));
    }
    answers
}

/// The status line and fields chopin sends, each at most once, `Server`
/// and `Date` (the feed's) exactly once (`Content-Length`, always present,
/// is read by the caller).
fn check_head(r: &Response) {
    let reason = match r.status {
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
    assert_eq!(
        (r.version.as_str(), r.reason.as_str()),
        ("HTTP/1.1", reason)
    );
    for (name, _) in &r.headers {
        assert!(
            matches!(
                name.as_str(),
                "Server" | "Date" | "Connection" | "Content-Length" | "Content-Type" | "Allow"
            ),
            "unexpected field {name:?}"
        );
        assert_eq!(r.all(name).len(), 1, "{name} repeated");
    }
    assert_eq!(r.header("Server"), Some("chopin"));
    let date = r.header("Date").expect("a Date field");
    assert_eq!(format!("Date: {date}\r\n").as_bytes(), DATE);
    if r.header("Content-Type").is_some() {
        assert_eq!(r.status, 200, "Content-Type on an error");
    }
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

/// The invariants that hold for any input: whole responses; `close` exactly
/// when the last response says `Connection: close`, and no other does.
pub fn check_well_formed(fed: &Fed) -> Vec<Answer> {
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
                let echo = r.content_type.as_deref() == Some("application/octet-stream");
                assert!(echo || r.content_length > 0, "a 200 without content: {r:?}");
                match r.content_type.as_deref() {
                    Some("text/plain") => {
                        let decimal =
                            std::str::from_utf8(&r.body).is_ok_and(|s| s.parse::<i64>().is_ok());
                        assert!(
                            r.body.is_empty()
                                || r.body == PLAINTEXT_BODY
                                || r.body == b"ok"
                                || decimal,
                            "{r:?}"
                        );
                        assert!(r.content_length <= 20, "{r:?}");
                    }
                    Some("application/json") => assert!(
                        r.body.is_empty()
                            || r.body == JSON_BODY
                            || serde_json::from_slice::<serde_json::Value>(&r.body)
                                .is_ok_and(|v| v["items"].is_array() && v["count"].is_u64()),
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
