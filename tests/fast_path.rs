//! The request fast path against httparse.
//!
//! `request::parse` tries `parse_common` (a one-pass scanner for the common
//! request shape) and falls back to `parse_with_httparse` for everything it
//! declines. The contract: whatever the fast path accepts, httparse parses
//! to the same `Request`. Checked here on generated near-valid heads and
//! their mutations (every byte value, truncations, insertions), on a table
//! of edge cases, and in the fuzzer (fuzz/fuzz_targets/pipeline.rs). The
//! tests also fail if the fast path stops taking the requests it is for.

mod common;

use chopin::request::{parse, parse_common, parse_with_httparse, Method, Parsed};
use chopin::router::{route, Resource};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

const ACCEPT: &str =
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";

/// The contract, for one buffer; returns whether the fast path accepted.
fn agrees(buf: &[u8]) -> bool {
    let Some(fast) = parse_common(buf) else {
        return false;
    };
    assert_eq!(
        parse_with_httparse(buf),
        Parsed::Complete(fast),
        "fast path disagrees with httparse on {:?}",
        String::from_utf8_lossy(buf)
    );
    assert_eq!(parse(buf), Parsed::Complete(fast));
    true
}

#[test]
fn takes_the_requests_it_is_for() {
    let tfb = format!(
        "GET /plaintext HTTP/1.1\r\nHost: tfb-server\r\nAccept: {ACCEPT}\r\nConnection: keep-alive\r\n\r\n"
    );
    for head in [
        tfb.as_str(),
        "GET /json HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", // wrk's default
        "GET /json HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
        "HEAD /plaintext?x=1 HTTP/1.1\r\nhost: [::1]:8080\r\nCONNECTION: close\r\n\r\n",
    ] {
        assert!(agrees(head.as_bytes()), "declined {head:?}");
    }
    let req = parse_common(tfb.as_bytes()).unwrap();
    assert_eq!(
        (
            req.method,
            route(req.target, tfb.as_bytes()).resource,
            req.head_len,
            req.keep_alive
        ),
        (Method::Get, Resource::Plaintext, tfb.len(), true)
    );
    // Pipelined: the head ends at its blank line, whatever follows.
    let two = tfb.repeat(2);
    assert_eq!(parse_common(two.as_bytes()).unwrap().head_len, tfb.len());
}

/// Each of these must be declined (httparse then decides), or accepted with
/// the same answer; the comment says which and why.
#[test]
fn edge_cases_decline_or_agree() {
    let declined = [
        "GET /json HTTP/1.1\r\nHost: a\r\n",                // unfinished
        "GET /json HTTP/1.1\r\nHost: a\r\n\r",              // unfinished
        "GET /json HTTP/1.1\nHost: a\r\n\r\n",              // bare LF
        "GET /json HTTP/1.1\r\nHost: a\n\r\n",              // bare LF
        "GET /json HTTP/1.1\r\nHost: a\r\n\n",              // bare LF
        "GET /json HTTP/1.0\r\n\r\n",                       // HTTP/1.0
        "GET /json HTTP/1.2\r\nHost: a\r\n\r\n",            // later minor
        "GET /json HTTP/2.0\r\nHost: a\r\n\r\n",            // 505
        "POST /json HTTP/1.1\r\nHost: a\r\n\r\n",           // other method
        "get /json HTTP/1.1\r\nHost: a\r\n\r\n",            // methods are case-sensitive
        "GET  /json HTTP/1.1\r\nHost: a\r\n\r\n",           // two spaces
        "GET /json  HTTP/1.1\r\nHost: a\r\n\r\n",           // two spaces
        "GET http://a/json HTTP/1.1\r\nHost: a\r\n\r\n",    // absolute-form
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",                // asterisk-form
        "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n",       // non-ASCII target
        "GET /json\x7f HTTP/1.1\r\nHost: a\r\n\r\n",        // DEL in target
        "GET /json HTTP/1.1\r\n\r\n",                       // no Host
        "GET /json HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", // two Hosts
        "GET /json HTTP/1.1\r\nHost: a b\r\n\r\n",          // invalid Host
        "GET /json HTTP/1.1\r\nHost: a/b\r\n\r\n",          // invalid Host
        "GET /json HTTP/1.1\r\nHost:\ta\r\n\r\n",           // tab (httparse decides)
        "GET /json HTTP/1.1\r\nHost: a\t\r\n\r\n",          // tab
        "GET /json HTTP/1.1\r\nHost : a\r\n\r\n",           // space before colon
        "GET /json HTTP/1.1\r\n Host: a\r\n\r\n",           // obs-fold / leading space
        "GET /json HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", // obs-fold
        "GET /json HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",     // empty name
        "GET /json HTTP/1.1\r\nHo(st: a\r\n\r\n",           // non-token name
        "GET /json HTTP/1.1\r\nHost a\r\n\r\n",             // no colon
        "GET /json HTTP/1.1\r\nHost: a\r\nX: caf\u{e9}\r\n\r\n", // obs-text value
        "GET /json HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", // control in value
        "GET /json HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", // lone CR
        "GET /json HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\n\r\nhello",
        "GET /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",
        "\r\nGET /json HTTP/1.1\r\nHost: a\r\n\r\n", // leading empty line
        "GET /json?a=\"<>\\^`{|}\" HTTP/1.1\r\nHost: a\r\n\r\n", // bytes RFC 3986 refuses
        "GET /json#f HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost:\r\n\r\n", // empty Host: a 400
        "GET /json HTTP/1.1\r\nHost:   \r\n\r\n",
    ];
    for head in declined {
        assert!(
            parse_common(head.as_bytes()).is_none(),
            "fast path took {head:?}, which it is meant to leave to httparse"
        );
    }
    let accepted = [
        "GET /json HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost:a\r\n\r\n", // no space
        "GET /json HTTP/1.1\r\nHost:   a   \r\n\r\n", // spaces trimmed
        "GET /json HTTP/1.1\r\nhOsT: a\r\nX-Y: \r\n\r\n", // any case; empty value
        "GET /json HTTP/1.1\r\nHost: a\r\nConnection:close \r\n\r\n",
        "GET /json?a=%22%7b!$&'()*+,;=:@/?~ HTTP/1.1\r\nHost: a\r\n\r\n", // RFC 3986 query bytes
        "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n",                          // 404 still parses
        "GET /json HTTP/1.1\r\nHost: a\r\nContent-Lengthy: 5\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: x\r\n\r\n",
    ];
    for head in accepted {
        assert!(agrees(head.as_bytes()), "fast path declined {head:?}");
    }
}

#[test]
fn field_count_limit_is_left_to_httparse() {
    let fields = |n: usize| {
        let mut head = String::from("GET /json HTTP/1.1\r\nHost: a\r\n");
        for i in 1..n {
            head.push_str(&format!("X-{i}: v\r\n"));
        }
        head + "\r\n"
    };
    assert!(agrees(fields(chopin::request::MAX_HEADERS).as_bytes()));
    assert!(parse_common(fields(chopin::request::MAX_HEADERS + 1).as_bytes()).is_none());
}

#[test]
fn size_limit_is_left_to_httparse() {
    let head = |pad: usize| {
        format!(
            "GET /json HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(pad)
        )
    };
    let fixed = head(0).len();
    let limit = chopin::request::MAX_HEAD_BYTES;
    assert!(agrees(head(limit - fixed).as_bytes()));
    assert!(parse_common(head(limit - fixed + 1).as_bytes()).is_none());
}

// ---------------------------------------------------------------------------
// Generated heads: mostly valid, with every kind of near miss.

fn casing(word: &'static str) -> impl Strategy<Value = String> {
    any::<u32>().prop_map(move |mask| common::casing::casing(word, mask))
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        casing("host"),
        casing("connection"),
        casing("content-length"),
        casing("transfer-encoding"),
        casing("expect"),
        select(vec![
            "Accept",
            "User-Agent",
            "X-Forwarded-For",
            "Hos",
            "Hostt",
            "Connectio"
        ])
        .prop_map(String::from),
        "[!-~]{0,12}", // any visible bytes: tokens and delimiters
    ]
}

fn field_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(vec![
            "localhost",
            "localhost:8080",
            "[::1]:80",
            "",
            "keep-alive",
            "close",
            "Keep-Alive",
            "upgrade",
            "0",
            "5",
            "chunked",
            "100-continue",
            ACCEPT,
        ])
        .prop_map(|v| v.as_bytes().to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..8),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    select(vec![":", ": ", ":  ", ":\t", " :", ""])
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just("\r\n"), 1 => Just("\n"), 1 => Just("\r"), 1 => Just("\r\r\n")]
}

fn head() -> impl Strategy<Value = Vec<u8>> {
    (
        select(vec!["GET", "HEAD", "POST", "get", "GET ", ""]),
        prop_oneof![
            select(vec![
                "/plaintext",
                "/json",
                "/json?x=1",
                "/",
                "*",
                "http://a/json"
            ])
            .prop_map(String::from),
            "/[!-~]{0,20}",
        ],
        select(vec![
            "HTTP/1.1",
            "HTTP/1.0",
            "HTTP/1.2",
            "HTTP/2.0",
            "HTTP/1",
            "http/1.1",
            "HTTP/1.1 ",
        ]),
        line_end(),
        vec((field_name(), separator(), field_value(), line_end()), 0..6),
        line_end(),
        vec(any::<u8>(), 0..8),
    )
        .prop_map(|(method, target, version, eol, fields, last, after)| {
            let mut head = format!("{method} {target} {version}{eol}").into_bytes();
            for (name, sep, value, eol) in fields {
                head.extend_from_slice(name.as_bytes());
                head.extend_from_slice(sep.as_bytes());
                head.extend_from_slice(&value);
                head.extend_from_slice(eol.as_bytes());
            }
            head.extend_from_slice(last.as_bytes());
            head.extend_from_slice(&after);
            head
        })
}

/// A valid head with one edit: a byte replaced by any value, a byte
/// inserted, a byte removed, or the head cut short.
fn mutated_valid_head() -> impl Strategy<Value = Vec<u8>> {
    let base = select(vec![
        format!("GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: {ACCEPT}\r\nConnection: keep-alive\r\n\r\n"),
        "GET /json HTTP/1.1\r\nHost: a\r\n\r\n".to_string(),
        "HEAD /json HTTP/1.1\r\nhost: a:1\r\nConnection: close\r\n\r\n".to_string(),
    ]);
    (base, any::<prop::sample::Index>(), any::<u8>(), 0..4u8).prop_map(|(base, at, byte, edit)| {
        let mut head = base.into_bytes();
        let i = at.index(head.len());
        match edit {
            0 => head[i] = byte,
            1 => head.insert(i, byte),
            2 => {
                head.remove(i);
            }
            _ => head.truncate(i),
        }
        head
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn generated_heads(head in head()) {
        agrees(&head);
    }

    #[test]
    fn mutated_heads(head in mutated_valid_head()) {
        agrees(&head);
    }

    #[test]
    fn arbitrary_bytes_after_a_method(rest in vec(any::<u8>(), 0..200)) {
        let mut head = b"GET /".to_vec();
        head.extend_from_slice(&rest);
        agrees(&head);
    }
}
