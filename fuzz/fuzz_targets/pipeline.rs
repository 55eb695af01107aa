//! Fuzzes `chopin::pipeline::Pipeline` the way a connection drives it.
//!
//! Input layout: the first byte's low 3 bits say how many split points
//! follow (0 to 7), each as two little-endian bytes taken modulo the
//! payload's length + 1; the rest is the payload, the bytes "received" on one
//! connection. The payload is fed unsplit and split at those points (the
//! unconsumed rest of each call prepended to the next piece, nothing fed
//! after `close`), and the target checks the invariants of
//! `tests/properties.rs`:
//!
//! * no panic; `consumed <= input`; a closing call consumes everything;
//! * a kept rest is an unfinished head or chunk line, or a request waiting
//!   for the body its handler reads: under twice `MAX_HEAD_BYTES`, and
//!   answering it again answers nothing;
//! * the output is whole responses; `Connection: close` on the last one
//!   exactly when `close` is set;
//! * no held answer (`/delay/{ms}`) is written before its deadline, and the
//!   first is written at it (checked by the feed);
//! * split output, close flag, kept rest and body state are identical to the
//!   unsplit case;
//! * the request fast path agrees with httparse: wherever
//!   `request::parse_common` accepts a head (at any offset of the payload),
//!   `request::parse_with_httparse` parses it to the same request.
#![no_main]

#[path = "../../tests/support/feed.rs"]
mod feed;

use chopin::request::{self, Parsed};
use feed::{feed, Fed};
use libfuzzer_sys::fuzz_target;

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `/baseline11`'s body: an `i64` in decimal.
fn is_decimal(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok_and(|s| s.parse::<i64>().is_ok())
}

/// Whole responses only; `Connection: close` on the last one iff `close`.
fn check_well_formed(fed: &Fed) {
    let mut rest = &fed.out[..];
    let mut closing = Vec::new();
    let mut count = 0;
    while !rest.is_empty() {
        // The interim answer to `Expect: 100-continue` on a body a handler
        // reads: exactly these bytes, then the final answer once the body
        // has come (here, or not yet).
        if let Some(after) = rest.strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n") {
            rest = after;
            continue;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("unterminated response head") + 4;
        let head = std::str::from_utf8(&rest[..head_end]).expect("ASCII head");
        let status_line = head.split("\r\n").next().unwrap();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        assert!(
            matches!(status, 200 | 400 | 404 | 405 | 413 | 414 | 431 | 501 | 505),
            "status {status}"
        );
        assert!(head.contains("\r\nServer: chopin\r\n"));
        assert!(head.ends_with("\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
        let length: usize = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .parse()
            .expect("a number");
        if head.contains("\r\nConnection: close\r\n") {
            closing.push(count);
        }
        // 404, 405 and an unknown method's 501 keep the connection (a 501
        // for an unknown transfer coding or an over-long method closes it);
        // the other errors close.
        if matches!(status, 400 | 413 | 414 | 431 | 505) {
            assert!(head.contains("\r\nConnection: close\r\n"), "errors close");
        }
        // Every field once at most, and `Server` and `Date` exactly once.
        let mut names: Vec<&str> = head
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|l| l.split_once(": ").expect("name: value").0)
            .collect();
        names.sort_unstable();
        let fields = names.len();
        names.dedup();
        assert_eq!(names.len(), fields, "a field repeated");
        assert!(names.contains(&"Server") && names.contains(&"Date"));
        // An echo's body is the request's, any bytes; `OPTIONS *` is the
        // other 200 without content, and it lists `Allow`.
        let echo = head.contains("\r\nContent-Type: application/octet-stream\r\n");
        if status == 200 && length == 0 && !echo {
            assert!(
                head.contains("\r\nAllow: GET, HEAD, POST\r\n"),
                "a 200 without content"
            );
        }
        rest = &rest[head_end..];
        // An answer to HEAD has no body: the next response or the end follows.
        // Not so an echo (POST only), whose body may itself start like a
        // response.
        let head_only =
            status == 200 && !echo && (rest.is_empty() || rest.starts_with(b"HTTP/1.1 "));
        if !head_only {
            assert!(rest.len() >= length, "truncated body");
            let body = &rest[..length];
            // /json/{count}'s items are JSON with "items" and "count".
            let items = head.contains("\r\nContent-Type: application/json\r\n")
                && serde_json::from_slice::<serde_json::Value>(body)
                    .is_ok_and(|v| v["items"].is_array() && v["count"].is_u64());
            assert!(
                echo || items
                    || body.is_empty()
                    || body == b"Hello, World!"
                    || body == br#"{"message":"Hello, World!"}"#
                    || body == b"ok"
                    || is_decimal(body),
                "unexpected body"
            );
            rest = &rest[length..];
        }
        count += 1;
    }
    if fed.close {
        assert_eq!(closing, [count - 1], "only the last response closes");
    } else {
        assert!(closing.is_empty(), "Connection: close without close");
    }
}

/// The fast path either declines or agrees with httparse, at every offset
/// (a pipelined head starts anywhere).
fn check_fast_path(payload: &[u8]) {
    for start in 0..payload.len() {
        let buf = &payload[start..];
        if let Some(fast) = request::parse_common(buf) {
            assert_eq!(
                request::parse_with_httparse(buf),
                Parsed::Complete(fast),
                "fast path disagrees on {:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(first & 7).min(rest.len() / 2);
    let (cuts, payload) = rest.split_at(count * 2);
    let mut points: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (payload.len() + 1))
        .collect();
    points.sort_unstable();

    check_fast_path(payload);
    let whole = feed(payload, &[]);
    check_well_formed(&whole);
    let split = feed(payload, &points);
    assert_eq!(
        split,
        whole,
        "split at {points:?} differs from unsplit for {:?}",
        String::from_utf8_lossy(payload)
    );
});
