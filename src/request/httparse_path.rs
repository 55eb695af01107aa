//! The path for every head the fast path declines: httparse tokenises it,
//! and RFC 9112's rules are applied on top.

use std::mem::MaybeUninit;

use super::syntax::{name_is, token_len, trim_ows};
use super::uri::{is_host, is_request_target, target_in_head};
use super::version::{refused_version_line, too_large};
use super::{
    Framing, Method, Parsed, Reject, Request, MAX_HEADERS, MAX_HEAD_BYTES, MAX_METHOD_BYTES,
};

/// Parses any request head with httparse and applies RFC 9112's rules on
/// top: the path for everything [`parse_common`](super::parse_common)
/// declines. The steps, in the order their answers take precedence: the
/// method's length, httparse's tokenising, the fields that frame the body
/// and decide persistence, the body's framing, the target; then the
/// [`Request`] is built.
pub fn parse_with_httparse(buf: &[u8]) -> Parsed {
    // Whatever else the head holds, and however much of it is in: a
    // method too long to be one answers the same at every split.
    if method_too_long(buf) {
        return Parsed::Invalid(Reject::NotImplemented);
    }
    // Only the first MAX_HEAD_BYTES are judged, as by the fast path: an
    // error past them would otherwise be found (400) or not (431) depending
    // on where the reads split the head.
    let buf = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut []);
    let head_len = match head.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return unfinished(buf),
        Err(error) => return refused(buf, error),
    };
    // httparse only reports Complete with every field filled in.
    let (Some(method), Some(target), Some(minor)) = (head.method, head.path, head.version) else {
        return Parsed::Invalid(Reject::BadRequest);
    };
    // httparse's target is a slice of `buf`: its offset is where it starts.
    let target_at = target.as_ptr() as usize - buf.as_ptr() as usize;
    match judge_head(method, target.as_bytes(), minor == 0, head.headers) {
        Ok(judged) => {
            Parsed::Complete(judged.request(method, target.as_bytes(), target_at, head_len))
        }
        Err(reject) => Parsed::Invalid(reject),
    }
}

/// Whether the request line (after any leading empty lines, which httparse
/// skips too) starts with more than [`MAX_METHOD_BYTES`] token bytes.
/// Decided from those bytes alone, whatever follows them, so the answer
/// does not depend on how the head is split across reads.
fn method_too_long(mut buf: &[u8]) -> bool {
    while let [b'\n', rest @ ..] | [b'\r', b'\n', rest @ ..] = buf {
        buf = rest;
    }
    token_len(&buf[..buf.len().min(MAX_METHOD_BYTES + 1)]) > MAX_METHOD_BYTES
}

/// A head httparse has not seen the end of: more bytes are needed, unless
/// it is already over [`MAX_HEAD_BYTES`].
fn unfinished(buf: &[u8]) -> Parsed {
    if buf.len() < MAX_HEAD_BYTES {
        Parsed::Partial
    } else {
        Parsed::Invalid(too_large(buf))
    }
}

/// The answer to a head httparse refused.
fn refused(buf: &[u8], error: httparse::Error) -> Parsed {
    match error {
        httparse::Error::TooManyHeaders => Parsed::Invalid(Reject::HeadTooLarge),
        httparse::Error::Version => refused_version_line(buf),
        _ => Parsed::Invalid(Reject::BadRequest),
    }
}

/// What a complete head's fields and target decided, all checks passed.
struct Judged {
    framing: Framing,
    http10: bool,
    fields: Fields,
}

/// Applies RFC 9112's rules to a head httparse tokenised: its fields
/// (`Host`, framing), the body's framing, and the target.
fn judge_head(
    method: &str,
    target: &[u8],
    http10: bool,
    headers: &[httparse::Header<'_>],
) -> Result<Judged, Reject> {
    let fields = Fields::collect(headers)?;
    // RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
    if fields.hosts > 1 || (fields.hosts == 0 && !http10) {
        return Err(Reject::BadRequest);
    }
    let framing = fields.framing(http10)?;
    if !is_request_target(method, target) {
        return Err(Reject::BadRequest);
    }
    // RFC 9112 3.3: an origin-form or `*` target takes its authority from
    // Host, and "http" allows no empty authority (RFC 9110 4.2.1); with no
    // default name configured, such a request names no resource here. An
    // absolute-form or authority-form target carries its own authority
    // and Host is then ignored (3.2.2), empty or not. HTTP/1.0 requires no
    // Host at all, and an empty one is served like a missing one.
    if fields.empty_host && !http10 && matches!(target, [b'/', ..] | b"*") {
        return Err(Reject::BadRequest);
    }
    Ok(Judged {
        framing,
        http10,
        fields,
    })
}

impl Judged {
    fn request(&self, method: &str, target: &[u8], target_at: usize, head_len: usize) -> Request {
        let http10 = self.http10;
        let keep_alive = if http10 {
            self.fields.keep_alive_token && !self.fields.close
        } else {
            !self.fields.close
        };
        Request {
            method: method_of(method),
            target: target_in_head(target, target_at),
            head_len,
            framing: self.framing,
            keep_alive,
            http10,
            // RFC 9110 10.1.1: a server MUST ignore 100-continue in HTTP/1.0.
            expects_continue: self.fields.expects_continue && !http10,
        }
    }
}

/// The method a token names (case-sensitive, RFC 9110 9.1).
fn method_of(token: &str) -> Method {
    match token {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "OPTIONS" => Method::Options,
        "PUT" | "DELETE" | "TRACE" | "PATCH" => Method::NotAllowed,
        _ => Method::NotImplemented,
    }
}

/// The fields that frame the body, decide persistence or name the host,
/// gathered over the whole head; every other field is ignored.
#[derive(Default)]
struct Fields {
    hosts: u32,
    empty_host: bool,
    content_length: Option<u64>,
    codings: Codings,
    close: bool,
    keep_alive_token: bool,
    expects_continue: bool,
}

impl Fields {
    /// Reads every field line, refusing an invalid `Host` or
    /// `Content-Length` (400) as soon as it is seen.
    fn collect(headers: &[httparse::Header<'_>]) -> Result<Fields, Reject> {
        let mut fields = Fields::default();
        for header in headers {
            let name = header.name.as_bytes();
            // httparse strips the value's leading and trailing whitespace.
            let value = header.value;
            // Dispatch on length first, so most fields (Accept, User-Agent, ...)
            // cost one comparison.
            match name.len() {
                4 if name_is(name, b"host") => {
                    fields.hosts += 1;
                    fields.empty_host = value.is_empty();
                    if !is_host(value) {
                        return Err(Reject::BadRequest);
                    }
                }
                6 if name_is(name, b"expect") => {
                    fields.expects_continue |= value.eq_ignore_ascii_case(b"100-continue");
                }
                10 if name_is(name, b"connection") => fields.connection(value),
                14 if name_is(name, b"content-length") => {
                    let Some(len) = parse_content_length(value) else {
                        return Err(Reject::BadRequest);
                    };
                    if fields.content_length.is_some_and(|seen| seen != len) {
                        return Err(Reject::BadRequest);
                    }
                    fields.content_length = Some(len);
                }
                // Several field lines form one list, in order.
                17 if name_is(name, b"transfer-encoding") => fields.codings.add(value),
                _ => {}
            }
        }
        Ok(fields)
    }

    /// A `Connection` line's `close` and `keep-alive` options.
    fn connection(&mut self, value: &[u8]) {
        match value {
            b"keep-alive" => self.keep_alive_token = true,
            b"close" => self.close = true,
            _ => {
                for token in value.split(|&b| b == b',').map(trim_ows) {
                    self.close |= token.eq_ignore_ascii_case(b"close");
                    self.keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
    }

    /// How the body is framed (RFC 9112 6.3).
    fn framing(&self, http10: bool) -> Result<Framing, Reject> {
        match (self.codings.framing(), self.content_length) {
            (None, len) => Ok(Framing::Length(len.unwrap_or(0))),
            // RFC 9112 6.1: both present is a smuggling attempt; so is any
            // coding sent by an HTTP/1.0 client.
            (Some(_), Some(_)) => Err(Reject::BadRequest),
            (Some(_), None) if http10 => Err(Reject::BadRequest),
            (Some(framing), None) => framing,
        }
    }
}

/// The list of transfer codings, over every `Transfer-Encoding` line.
#[derive(Default)]
struct Codings {
    /// Any `Transfer-Encoding` line at all, even an empty one.
    present: bool,
    chunked: u32,
    /// The last non-empty coding is `chunked`.
    chunked_last: bool,
    /// A coding other than `chunked`.
    other: bool,
}

impl Codings {
    fn add(&mut self, line: &[u8]) {
        self.present = true;
        // Empty list elements are allowed (RFC 9110 5.6.1): `chunked,`.
        for coding in line.split(|&b| b == b',').map(trim_ows) {
            if coding.is_empty() {
                continue;
            }
            self.chunked_last = coding.eq_ignore_ascii_case(b"chunked");
            if self.chunked_last {
                self.chunked += 1;
            } else {
                self.other = true;
            }
        }
    }

    /// `None` without a `Transfer-Encoding`. RFC 9112 6.3: chunked must be
    /// the final coding, applied once (6.1), else the length is unknowable
    /// and the answer is 400; a final chunked after a coding this server
    /// does not know is 501 (6.1).
    fn framing(&self) -> Option<Result<Framing, Reject>> {
        if !self.present {
            return None;
        }
        Some(if !self.chunked_last || self.chunked != 1 {
            Err(Reject::BadRequest)
        } else if self.other {
            Err(Reject::NotImplemented)
        } else {
            Ok(Framing::Chunked)
        })
    }
}

/// `Content-Length = 1*DIGIT`, or a list of identical values (RFC 9112 6.3,
/// which lets a recipient accept `42, 42` as 42).
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut result = None;
    for item in value.split(|&b| b == b',').map(trim_ows) {
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut n: u64 = 0;
        for &digit in item {
            n = n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
        }
        if result.is_some_and(|seen| seen != n) {
            return None;
        }
        result = Some(n);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{complete, rejected};
    use super::super::{parse, parse_common};
    use super::*;
    use crate::http::Target;

    #[test]
    fn methods() {
        assert_eq!(
            complete("HEAD /json HTTP/1.1\r\nHost: a\r\n\r\n").method,
            Method::Head
        );
        assert_eq!(
            complete("POST /json HTTP/1.1\r\nHost: a\r\n\r\n").method,
            Method::Post
        );
        assert_eq!(
            complete("DELETE /json HTTP/1.1\r\nHost: a\r\n\r\n").method,
            Method::NotAllowed
        );
        // Methods are case-sensitive (RFC 9110 9.1).
        for unknown in ["get", "Head", "BREW", "PROPFIND", "GETS", "POST_"] {
            assert_eq!(
                complete(&format!("{unknown} /json HTTP/1.1\r\nHost: a\r\n\r\n")).method,
                Method::NotImplemented,
                "{unknown}"
            );
        }
        // No proxy here: CONNECT is implemented on no resource.
        assert_eq!(
            complete("CONNECT example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n").method,
            Method::NotImplemented
        );
        let options = complete("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            (options.method, options.target),
            (Method::Options, Target::Server)
        );
    }

    /// An empty Host leaves an origin-form or `*` target without the
    /// authority "http" requires (RFC 9112 3.3, RFC 9110 4.2.1); a target
    /// with its own authority, and HTTP/1.0, need none from Host.
    #[test]
    fn empty_host_needs_a_target_with_an_authority() {
        for target in ["/json", "/", "/nope?q"] {
            for version in ["HTTP/1.1", "HTTP/1.2"] {
                for host in ["Host:", "Host: ", "Host:  \t", "host:\t"] {
                    let raw = format!("GET {target} {version}\r\n{host}\r\n\r\n");
                    assert_eq!(parse_common(raw.as_bytes()), None, "{raw:?}");
                    assert_eq!(rejected(&raw), Reject::BadRequest, "{raw:?}");
                }
            }
        }
        assert_eq!(
            rejected("OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n"),
            Reject::BadRequest
        );
        for served in [
            "GET http://a/json HTTP/1.1\r\nHost:\r\n\r\n",
            "GET http://a/json HTTP/1.1\r\nHost: \t\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost:\r\n\r\n",
            "GET urn:json HTTP/1.1\r\nHost:\r\n\r\n",
            "GET /json HTTP/1.0\r\nHost:\r\n\r\n",
            "OPTIONS * HTTP/1.0\r\nHost: \r\n\r\n",
        ] {
            complete(served);
        }
        let absolute = "GET http://a/json HTTP/1.1\r\nHost:\r\n\r\n";
        assert_eq!(
            complete(absolute)
                .target
                .path_and_query(absolute.as_bytes()),
            Some(&b"/json"[..])
        );
    }

    #[test]
    fn expect_continue_is_ignored_in_http_1_0() {
        let head = |version| {
            format!(
                "POST / {version}\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
            )
        };
        assert!(complete(&head("HTTP/1.1")).expects_continue);
        assert!(!complete(&head("HTTP/1.0")).expects_continue);
    }

    #[test]
    fn content_length_rules() {
        assert_eq!(
            complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").framing,
            Framing::Length(5)
        );
        assert_eq!(
            complete(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"
            )
            .framing,
            Framing::Length(5)
        );
        for bad in [
            "-1",
            "+5",
            "5 5",
            "0x10",
            "",
            "5,6",
            "99999999999999999999",
            "1e3",
        ] {
            assert_eq!(
                rejected(&format!(
                    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {bad}\r\n\r\n"
                )),
                Reject::BadRequest,
                "{bad:?}"
            );
        }
        assert_eq!(
            rejected(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
            ),
            Reject::BadRequest
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        let te = |fields: &str| format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
        for chunked in [
            "Transfer-Encoding: chunked\r\n",
            "transfer-encoding:  CHUNKED \r\n",
            "Transfer-Encoding: chunked, \r\n",
            "Transfer-Encoding: ,chunked\r\n",
            "Transfer-Encoding: \r\nTransfer-Encoding: chunked\r\n",
        ] {
            assert_eq!(
                complete(&te(chunked)).framing,
                Framing::Chunked,
                "{chunked:?}"
            );
        }
        for (fields, reject) in [
            // A coding this server does not know, under a final chunked.
            (
                "Transfer-Encoding: gzip, chunked\r\n",
                Reject::NotImplemented,
            ),
            (
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                Reject::NotImplemented,
            ),
            // No final chunked: the length is unknowable.
            ("Transfer-Encoding: chunked, gzip\r\n", Reject::BadRequest),
            ("Transfer-Encoding: gzip\r\n", Reject::BadRequest),
            ("Transfer-Encoding: \r\n", Reject::BadRequest),
            ("Transfer-Encoding: chunked;x=1\r\n", Reject::BadRequest),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                Reject::BadRequest,
            ),
            // Chunked twice (RFC 9112 6.1), on one line or two.
            (
                "Transfer-Encoding: chunked, chunked\r\n",
                Reject::BadRequest,
            ),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                Reject::BadRequest,
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                Reject::BadRequest,
            ),
        ] {
            assert_eq!(rejected(&te(fields)), reject, "{fields:?}");
        }
        assert_eq!(
            rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Reject::BadRequest
        );
    }

    #[test]
    fn persistence() {
        assert!(!complete("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(
            !complete("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n").keep_alive
        );
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(complete("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "GET /json HTTP/1.1\r\nHost : a\r\n\r\n", // space before colon
            "GET /json HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", // obs-fold
            "GET  /json HTTP/1.1\r\nHost: a\r\n\r\n", // double space
            "GET /js on HTTP/1.1\r\nHost: a\r\n\r\n",
            "\x00GET /json HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /json HTTP/1.1\r\nHo\x01st: a\r\n\r\n",
            "GET /json HTTP/1.1\r\n: a\r\n\r\n",
        ] {
            assert_eq!(rejected(bad), Reject::BadRequest, "{bad:?}");
        }
        assert_eq!(
            rejected("GET /json HTTP/2.0\r\n\r\n"),
            Reject::VersionNotSupported
        );
        assert_eq!(
            rejected("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Reject::VersionNotSupported
        );
        assert_eq!(
            rejected("GET /json HTTP/3.0\r\n\r\n"),
            Reject::VersionNotSupported
        );
        assert_eq!(
            rejected("GET /json HTTP/2\r\n\r\n"),
            Reject::VersionNotSupported
        );
        assert_eq!(
            rejected("GET /json HTTP/0.9\r\n\r\n"),
            Reject::VersionNotSupported
        );
        assert_eq!(rejected("GET /json HTTP/1.x\r\n\r\n"), Reject::BadRequest);
        assert_eq!(rejected("GET /json FTP/1.1\r\n\r\n"), Reject::BadRequest);
        assert_eq!(
            rejected("GET /json HTTP/1\r\nHost: a\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(
            rejected("GET /json HTTP/1.10\r\nHost: a\r\n\r\n"),
            Reject::BadRequest
        );
    }

    #[test]
    fn limits() {
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(rejected(&big), Reject::HeadTooLarge);
        assert_eq!(rejected(&big[..MAX_HEAD_BYTES + 10]), Reject::HeadTooLarge);
        assert_eq!(
            parse(&big.as_bytes()[..MAX_HEAD_BYTES - 1]),
            Parsed::Partial
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            rejected(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
            Reject::HeadTooLarge
        );
        let enough: String = (0..MAX_HEADERS - 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        complete(&format!("GET / HTTP/1.1\r\nHost: a\r\n{enough}\r\n"));
    }

    /// A method token over `MAX_METHOD_BYTES` is 501, from its first
    /// bytes on and whatever follows (a long target after a short method
    /// stays 414); one at the limit is an unknown method like any other.
    #[test]
    fn over_long_method_is_501_at_every_split() {
        let long = "M".repeat(100 * 1024);
        let raw = format!("{long} /json HTTP/1.1\r\nHost: a\r\n\r\n");
        for end in [MAX_METHOD_BYTES + 1, 1000, MAX_HEAD_BYTES, raw.len()] {
            assert_eq!(rejected(&raw[..end]), Reject::NotImplemented, "{end} bytes");
        }
        assert_eq!(
            rejected(&format!("\r\n{}", &raw[..MAX_METHOD_BYTES + 1])),
            Reject::NotImplemented
        );
        let short = format!("{} /json HTTP/1.1\r\nHost: a\r\n\r\n", &long[..40]);
        assert_eq!(rejected(&short), Reject::NotImplemented);
        for end in 0..=MAX_METHOD_BYTES {
            assert_eq!(
                parse(&raw.as_bytes()[..end]),
                Parsed::Partial,
                "{end} bytes"
            );
        }
        let at_limit = format!("{} /json HTTP/1.1\r\nHost: a\r\n\r\n", &long[..32]);
        assert_eq!(complete(&at_limit).method, Method::NotImplemented);
        let target = format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(rejected(&target), Reject::UriTooLong);
    }
}
