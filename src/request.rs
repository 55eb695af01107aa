//! Parsing and validating one request head.
//!
//! httparse does the tokenising, zero-copy and without allocation; this module
//! adds what RFC 9112 asks of a server on top of it (exactly one `Host` in
//! HTTP/1.1, body framing from `Content-Length` / `Transfer-Encoding`,
//! connection persistence) and reduces the request to the little the router
//! needs: the method and where the target is. Nothing here touches a socket,
//! and nothing here knows which paths this server serves.
//!
//! [`parse`] tries two paths that give one answer: [`fast`] takes the shape
//! nearly every client sends, [`httparse_path`] everything else, with
//! [`version`] for the request lines httparse refuses by their version.
//! Both judge targets and `Host` with the URI grammar in [`uri`] and field
//! lines with the field syntax in [`syntax`], which the chunked decoder
//! shares.

mod fast;
mod httparse_path;
mod syntax;
mod uri;
mod version;

pub use fast::parse_common;
pub use httparse_path::parse_with_httparse;
pub(crate) use syntax::{split_field_name, token_len, trim_ows_start};

/// Largest request head accepted, request line and headers together.
pub const MAX_HEAD_BYTES: usize = 8 * 1024; // nginx's default large_client_header_buffers
/// Most header fields accepted in one request (hyper's default, too).
pub const MAX_HEADERS: usize = 100;
/// Longest method token answered as a request: the longest registered
/// method (`UPDATEREDIRECTREF`, 17 bytes) with room to spare. A longer one
/// is no method this server implements or ever could, so it is answered
/// with 501 and close as soon as that many bytes of it are in (RFC 9112 3:
/// a method longer than any implemented SHOULD get 501), rather than
/// buffered up to [`MAX_HEAD_BYTES`] and answered as a long target's 414.
pub const MAX_METHOD_BYTES: usize = 32;

pub use crate::http::{Framing, Method, Target};

/// What a valid request head asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Where the target's path and query are in the head; the router
    /// ([`crate::router`]) decides what they name.
    pub target: Target,
    /// Bytes of the head, up to and including the blank line.
    pub head_len: usize,
    /// How the body that follows the head is framed.
    pub framing: Framing,
    /// Whether the connection stays open after this exchange.
    pub keep_alive: bool,
    /// HTTP/1.0 clients are told explicitly when a connection stays open.
    pub http10: bool,
    /// `Expect: 100-continue`: the client may hold its body back until it
    /// hears from us.
    pub expects_continue: bool,
}

/// Why a request was refused; the connection is closed after the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// 400: malformed syntax, missing or repeated `Host`, invalid framing.
    BadRequest,
    /// 431: head over [`MAX_HEAD_BYTES`] or more than [`MAX_HEADERS`] fields.
    HeadTooLarge,
    /// 414: the request line alone is over [`MAX_HEAD_BYTES`] (RFC 9112 3).
    UriTooLong,
    /// 501: a transfer coding other than `chunked` (`gzip, chunked`), or a
    /// method token over [`MAX_METHOD_BYTES`].
    NotImplemented,
    /// 505: a version other than HTTP/1.0 and HTTP/1.1.
    VersionNotSupported,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Complete(Request),
    /// More bytes are needed; the head so far is within limits.
    Partial,
    Invalid(Reject),
}

/// Parses the request head at the start of `buf`.
///
/// Two paths, one answer: [`parse_common`] takes the shape nearly every
/// client sends in one pass over the bytes, and declines anything else;
/// [`parse_with_httparse`] decides everything it declines, every error
/// included. Whatever the first accepts, the second parses to the same
/// [`Request`] (checked by `tests/fast_path.rs` and by the fuzzer).
pub fn parse(buf: &[u8]) -> Parsed {
    match parse_common(buf) {
        Some(req) => Parsed::Complete(req),
        None => parse_with_httparse(buf),
    }
}

/// Helpers for the unit tests of every part of the parser: they all go
/// through [`parse`], as a connection does.
#[cfg(test)]
mod test_support {
    use super::{parse, Parsed, Reject, Request};

    pub(super) fn complete(raw: &str) -> Request {
        match parse(raw.as_bytes()) {
            Parsed::Complete(req) => req,
            other => panic!("{raw:?} parsed as {other:?}"),
        }
    }

    pub(super) fn rejected(raw: &str) -> Reject {
        match parse(raw.as_bytes()) {
            Parsed::Invalid(reject) => reject,
            other => panic!("{raw:?} parsed as {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::complete;
    use super::*;

    #[test]
    fn tfb_plaintext_request() {
        let raw = "GET /plaintext HTTP/1.1\r\nHost: tfb-server:8080\r\nAccept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n";
        let req = complete(raw);
        assert_eq!(req.method, Method::Get);
        assert_eq!(
            req.target.path_and_query(raw.as_bytes()),
            Some(&b"/plaintext"[..])
        );
        assert_eq!(req.head_len, raw.len());
        assert_eq!(req.framing, Framing::Length(0));
        assert!(req.keep_alive);
        assert!(!req.http10);
    }

    #[test]
    fn leading_blank_lines_are_skipped() {
        let raw = "\r\n\r\nGET /json HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(complete(raw).head_len, raw.len());
    }

    #[test]
    fn partial_at_every_prefix() {
        let raw = b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n";
        for end in 0..raw.len() {
            assert_eq!(parse(&raw[..end]), Parsed::Partial, "prefix {end}");
        }
    }
}
