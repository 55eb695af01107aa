//! Property tests for the sans-I/O core, [`chopin::pipeline::Pipeline`],
//! on valid requests (tests/malformed_input.rs has the invalid ones).
//!
//! The pipeline is driven exactly as `connection.rs` drives it: every call
//! gets the bytes left unconsumed by the previous call followed by the newly
//! "read" piece, and once a call says `close` nothing more is fed. The
//! properties: any sequence of valid requests, split at any points, is
//! answered with output byte-identical to the unsplit case, and that output
//! is exactly the expected responses, in order; arbitrary bytes after them
//! do not change those answers; after `close = true` nothing more is
//! answered.

mod common;

use common::casing::casing;
use common::feed::feed;
use common::inputs::{cuts, every_byte, token_soup};
use common::pipeline_output::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------
// Generating valid requests
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    Http11,
    /// HTTP/1.0 with `Connection: keep-alive`.
    Http10KeepAlive,
    /// HTTP/1.0 without it: the server closes after answering.
    Http10,
}

#[derive(Clone, Debug)]
struct Req {
    method: Method,
    /// `/plaintext`, `/json`, `/echo`, `/delay/{ms}` or `/x`, as origin or
    /// absolute form.
    path: &'static str,
    absolute: bool,
    query: Option<String>,
    version: Version,
    host_case: u32,
    length_case: u32,
    /// Optional whitespace around field values.
    ows: bool,
    extra: Vec<(String, String)>,
    close: bool,
    body: Vec<u8>,
    /// The body is sent chunked (HTTP/1.1 only), in chunks of up to 7
    /// bytes, with an extension on the first and a trailer when its length
    /// is odd.
    chunked: bool,
}

impl Req {
    fn render(&self) -> Vec<u8> {
        let method = match self.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        };
        let mut target = String::new();
        if self.absolute {
            target.push_str("http://tfb-server:8080");
        }
        target.push_str(self.path);
        if let Some(q) = &self.query {
            target.push('?');
            target.push_str(q);
        }
        let version = match self.version {
            Version::Http11 => "HTTP/1.1",
            _ => "HTTP/1.0",
        };
        let sep = if self.ows { ":  " } else { ":" };
        let end = if self.ows { " \t\r\n" } else { "\r\n" };
        let mut head = format!("{method} {target} {version}\r\n");
        head.push_str(&format!(
            "{}{sep}tfb-server:8080{end}",
            casing("host", self.host_case)
        ));
        for (name, value) in &self.extra {
            head.push_str(&format!("{name}{sep}{value}{end}"));
        }
        match (self.version, self.close) {
            (Version::Http10KeepAlive, _) => head.push_str("Connection: keep-alive\r\n"),
            (Version::Http11, true) => head.push_str("Connection: close\r\n"),
            _ => {}
        }
        if self.chunked {
            head.push_str(&format!(
                "{}{sep}chunked{end}",
                casing("transfer-encoding", self.length_case)
            ));
        } else if !self.body.is_empty() || self.method == Method::Post {
            head.push_str(&format!(
                "{}{sep}{}{end}",
                casing("content-length", self.length_case),
                self.body.len()
            ));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if self.chunked {
            for (i, chunk) in self.body.chunks(7).enumerate() {
                let ext = if i == 0 { ";ext=\"a;b\"" } else { "" };
                bytes.extend_from_slice(format!("{:x}{ext}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n");
            if self.body.len() % 2 == 1 {
                bytes.extend_from_slice(b"X-Trailer: t\r\n");
            }
            bytes.extend_from_slice(b"\r\n");
        } else {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }

    /// HTTP/1.0 keeps the connection when asked to, by the generated
    /// field or by an extra `Connection: keep-alive`.
    fn http10_keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => false,
            Version::Http10KeepAlive => true,
            Version::Http10 => self
                .extra
                .iter()
                .any(|(n, v)| n == "Connection" && v == "keep-alive"),
        }
    }

    fn closes(&self) -> bool {
        match self.version {
            Version::Http11 => self.close,
            _ => !self.http10_keep_alive(),
        }
    }

    /// The response this request must get.
    fn expected(&self) -> Answer {
        let connection = if self.closes() {
            Some("close".to_owned())
        } else if self.http10_keep_alive() {
            Some("keep-alive".to_owned())
        } else {
            None
        };
        let known = self.path != "/x";
        let delay = self.path.strip_prefix("/delay/");
        let (status, body, content_length, allow) = match self.method {
            _ if !known => (404, &b""[..], 0, None),
            // The body back, byte for byte, whatever its framing.
            Method::Post if self.path == "/echo" => (200, &self.body[..], self.body.len(), None),
            _ if self.path == "/echo" => (405, &b""[..], 0, Some("POST".to_owned())),
            Method::Post | Method::Delete => (405, &b""[..], 0, Some("GET, HEAD".to_owned())),
            Method::Get | Method::Head => {
                let body = match (self.path, delay) {
                    ("/json", _) => JSON_BODY,
                    // Answered after its wait (the feed's clock moves past
                    // every deadline), in request order.
                    (_, Some(ms)) => ms.as_bytes(),
                    _ => PLAINTEXT_BODY,
                };
                let sent = if self.method == Method::Get {
                    body
                } else {
                    b""
                };
                (200, sent, body.len(), None)
            }
        };
        let content_type = (status == 200).then(|| {
            match self.path {
                "/echo" => "application/octet-stream",
                "/json" => "application/json",
                _ => "text/plain",
            }
            .to_owned()
        });
        Answer {
            status,
            connection,
            content_length,
            body: body.to_vec(),
            allow,
            content_type,
        }
    }
}

fn extra_header() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        Just((
            "Accept".to_owned(),
            "text/plain,text/html;q=0.9,*/*;q=0.7".to_owned()
        )),
        Just(("Connection".to_owned(), "keep-alive".to_owned())),
        Just(("User-Agent".to_owned(), "proptest/1".to_owned())),
        Just(("accept-encoding".to_owned(), "gzip, deflate".to_owned())),
        ("X-[A-Za-z0-9-]{1,12}", "[ -~]{0,40}")
            .prop_map(|(n, v)| (n, v.trim_matches([' ', '\t']).to_owned())),
    ]
}

fn request() -> impl Strategy<Value = Req> {
    (
        (
            select(vec![
                Method::Get,
                Method::Head,
                Method::Post,
                Method::Delete,
            ]),
            select(vec![
                "/plaintext",
                "/json",
                "/x",
                "/echo",
                "/delay/0",
                "/delay/7",
                "/delay/30",
            ]),
            prop::bool::weighted(0.1),
            prop::option::weighted(0.3, "([A-Za-z0-9=&._~/?:@-]|%[0-9A-Fa-f]{2}){0,16}"),
            prop_oneof![
                8 => Just(Version::Http11),
                1 => Just(Version::Http10KeepAlive),
                1 => Just(Version::Http10),
            ],
        ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            vec(extra_header(), 0..4),
            prop::bool::weighted(0.05),
            // Bodies may look like requests: they must be skipped, not parsed.
            prop_oneof![
                vec(any::<u8>(), 0..64),
                Just(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
                Just(b"\r\n\r\n".to_vec()),
            ],
            prop::bool::weighted(0.3),
        ),
    )
        .prop_map(
            |(
                (method, path, absolute, query, version),
                (host_case, length_case, ows, extra, close, body, chunked),
            )| {
                let body = match method {
                    Method::Post | Method::Delete => body,
                    Method::Get | Method::Head => Vec::new(),
                };
                Req {
                    method,
                    path,
                    absolute,
                    query,
                    version,
                    host_case,
                    length_case,
                    ows,
                    extra,
                    close,
                    body,
                    chunked: chunked && version == Version::Http11,
                }
            },
        )
}

fn render_all(reqs: &[Req]) -> Vec<u8> {
    reqs.iter().flat_map(Req::render).collect()
}

/// The responses a connection must send for `reqs`: one per request, up to
/// and including the first that closes.
fn expected_all(reqs: &[Req]) -> (Vec<Answer>, bool) {
    let mut expected = Vec::new();
    for req in reqs {
        expected.push(req.expected());
        if req.closes() {
            return (expected, true);
        }
    }
    (expected, false)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Valid requests, split anywhere, are answered exactly as unsplit, and
    /// the answers are the expected ones, in order.
    #[test]
    fn valid_requests_split_anywhere(reqs in vec(request(), 1..12), cuts in cuts()) {
        let input = render_all(&reqs);
        let whole = feed(&input, &[]);
        let split = feed(&input, &cuts);
        prop_assert_eq!(&split, &whole);

        let (expected, closes) = expected_all(&reqs);
        prop_assert_eq!(check_well_formed(&whole), expected);
        prop_assert_eq!(whole.close, closes);
        prop_assert!(whole.unread.is_empty());
        // A closing request's body is never read; otherwise all was used.
        prop_assert!(whole.close || !whole.in_body);
    }

    /// Every single-byte split of a valid sequence: the hardest case for
    /// the head parser, one byte at a time.
    #[test]
    fn valid_requests_byte_by_byte(reqs in vec(request(), 1..4)) {
        let input = render_all(&reqs);
        prop_assert_eq!(feed(&input, &every_byte(&input)), feed(&input, &[]));
    }

    /// A request cut short at any point is answered up to the last whole
    /// request, and the rest is kept: an unfinished head or chunk line is
    /// left unconsumed (body bytes are consumed as they come).
    #[test]
    fn truncated_sequence_keeps_the_rest(reqs in vec(request(), 1..6), cut in any::<usize>(), cuts in cuts()) {
        let input = render_all(&reqs);
        let cut = cut % (input.len() + 1);
        let fed = feed(&input[..cut], &cuts);
        prop_assert_eq!(&fed, &feed(&input[..cut], &[]));
        let responses = check_well_formed(&fed);
        let (expected, _) = expected_all(&reqs);
        prop_assert!(responses.len() <= expected.len());
        prop_assert_eq!(&responses[..], &expected[..responses.len()]);
        if !fed.close {
            // Kept bytes are the tail of the input.
            prop_assert!(input[..cut].ends_with(&fed.unread));
        }
    }

    /// Arbitrary bytes after valid requests: the valid ones are answered
    /// first, exactly as alone; the rest is well formed and split-invariant.
    #[test]
    fn garbage_after_valid_requests(
        reqs in vec(request(), 1..6),
        garbage in prop_oneof![vec(any::<u8>(), 1..512), token_soup()],
        cuts in cuts(),
    ) {
        let valid = render_all(&reqs);
        let mut input = valid.clone();
        input.extend_from_slice(&garbage);
        let whole = feed(&input, &[]);
        let alone = feed(&valid, &[]);
        prop_assert!(whole.out.starts_with(&alone.out));
        if alone.close {
            // After close nothing more is answered.
            prop_assert_eq!(&whole.out, &alone.out);
            prop_assert!(whole.close);
        }
        check_well_formed(&whole);
        prop_assert_eq!(feed(&input, &cuts), whole);
    }
}
