//! Parsing and validating one request head.
//!
//! httparse does the tokenising, zero-copy and without allocation; this module
//! adds what RFC 9112 asks of a server on top of it (exactly one `Host` in
//! HTTP/1.1, body framing from `Content-Length` / `Transfer-Encoding`,
//! connection persistence) and reduces the request to the little the router
//! needs. Nothing here touches a socket.

use std::mem::MaybeUninit;

use crate::scan::visible_end;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// `POST`: served where a resource takes it (`/baseline11`), else like
    /// [`Method::NotAllowed`].
    Post,
    /// `OPTIONS`: answered for the server as a whole (`OPTIONS *`); on a
    /// resource, like [`Method::NotAllowed`].
    Options,
    /// A method RFC 9110 (or PATCH's RFC 5789) defines that this server
    /// does not serve: 405 with `Allow` on known routes (RFC 9110 15.5.6).
    NotAllowed,
    /// A method this server implements on no resource: a token it does not
    /// recognise (methods are case-sensitive, so `get` is one), or
    /// `CONNECT`, since this server is no proxy. 501 on any route (RFC 9110
    /// 9.1, 15.6.2).
    NotImplemented,
}

pub use crate::resources::Route;

/// What a valid request head asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub route: Route,
    /// Bytes of the head, up to and including the blank line.
    pub head_len: usize,
    /// How the body that follows the head is framed; it is skipped.
    pub body: Body,
    /// Whether the connection stays open after this exchange.
    pub keep_alive: bool,
    /// HTTP/1.0 clients are told explicitly when a connection stays open.
    pub http10: bool,
    /// `Expect: 100-continue`: the client may hold its body back until it
    /// hears from us.
    pub expects_continue: bool,
}

/// How a request's body is delimited (RFC 9112 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `Content-Length`, or no body at all: `Length(0)`.
    Length(u64),
    /// `Transfer-Encoding: chunked`: the body ends where its last chunk and
    /// trailers say ([`crate::chunked`]).
    Chunked,
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

/// The fast path, for the common shape only: `GET` or `HEAD`, an
/// origin-form target of RFC 3986's path and query bytes, `HTTP/1.1`, CRLF
/// line ends, field values of visible ASCII and spaces, exactly one valid
/// `Host`, at most a plain `Connection: keep-alive` or `close`, and no
/// body. Anything else — a tab, a byte above 0x7E, a bare LF,
/// `Content-Length`, `Expect`, an unfinished head, any error — returns
/// `None` for httparse to decide.
///
/// Why it exists: on TFB's requests httparse spent ≈890 instructions per
/// request (its header names byte by byte, a runtime SIMD dispatch per
/// value, UTF-8 validation of the target), over half of the server's user
/// time for `/plaintext`; this path scans 16 bytes per step and spends
/// ≈550 on the same head, routing included (README, "Performance notes").
pub fn parse_common(buf: &[u8]) -> Option<Request> {
    let buf = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let (method, target_at) = if buf.starts_with(b"GET /") {
        (Method::Get, 4)
    } else if buf.starts_with(b"HEAD /") {
        (Method::Head, 5)
    } else {
        return None;
    };
    let target_end = visible_end::<b'!'>(buf, target_at);
    if buf.get(target_end..target_end + 11)? != b" HTTP/1.1\r\n" {
        return None;
    }
    let target = &buf[target_at..target_end];
    // A target that is exactly its route's path is known to be valid: only
    // a query or another path needs its bytes checked. `route` matched its
    // path as a prefix, so equal lengths mean equal bytes; `NotFound`'s
    // path is empty and a target here never is.
    let route = route(target);
    if target.len() != route.path().len() && !is_path_and_query(target) {
        return None;
    }

    let mut pos = target_end + 11;
    let mut fields = 0;
    let mut hosts = 0u32;
    let mut close = false;
    loop {
        // A field line is visible ASCII and spaces up to its CRLF; the
        // empty line ends the head.
        let end = visible_end::<b' '>(buf, pos);
        if buf.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        let line = &buf[pos..end];
        pos = end + 2;
        if line.is_empty() {
            break;
        }
        fields += 1;
        if fields > MAX_HEADERS {
            return None;
        }
        // The two fields this path acts on are recognised by their first
        // bytes, which needs no check of the name's bytes; any other name is
        // checked byte by byte and, if it is one that httparse's path must
        // judge, declined.
        if let Some(value) = field_value(line, b"host") {
            hosts += 1;
            // An empty Host is httparse's path's to refuse (the target here
            // is origin-form, so the request has no authority at all).
            let host = trim_spaces(value);
            if host.is_empty() || !is_host(host) {
                return None;
            }
        } else if let Some(value) = field_value(line, b"connection") {
            match trim_spaces(value) {
                b"keep-alive" => {}
                b"close" => close = true,
                _ => return None,
            }
        } else {
            let (name, _) = split_field_name(line)?;
            let judged_by_httparse = match name.len() {
                6 => name_is(name, b"expect"),
                14 => name_is(name, b"content-length"),
                17 => name_is(name, b"transfer-encoding"),
                _ => false,
            };
            if judged_by_httparse {
                return None;
            }
        }
    }
    if hosts != 1 {
        return None;
    }
    Some(Request {
        method,
        route,
        head_len: pos,
        body: Body::Length(0),
        keep_alive: !close,
        http10: false,
        expects_continue: false,
    })
}

/// A field line's name (a non-empty token) and what follows its colon;
/// `None` when the line does not start `token:`.
#[inline]
pub(crate) fn split_field_name(line: &[u8]) -> Option<(&[u8], &[u8])> {
    match line.split_at(token_len(line)) {
        (name, [b':', value @ ..]) if !name.is_empty() => Some((name, value)),
        _ => None,
    }
}

/// How many bytes at the start of `bytes` are `tchar`s (RFC 9110 5.6.2).
#[inline]
pub(crate) fn token_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|&&b| TOKEN_BYTES[usize::from(b)])
        .count()
}

/// The value of a field line (visible ASCII and spaces, no CRLF) whose
/// name is `lower`, in any case; `None` for any other line.
#[inline]
fn field_value<'a>(line: &'a [u8], lower: &[u8]) -> Option<&'a [u8]> {
    let (name, rest) = line.split_at_checked(lower.len())?;
    match rest {
        [b':', value @ ..] if name_is(name, lower) => Some(value),
        _ => None,
    }
}

/// Whether the field `name` is `lower` (lowercase letters and `-`) in any
/// case; both parsers' name checks. Setting bit 5 lowercases a letter and
/// leaves `-` alone; the only other bytes it maps onto `lower`'s are the
/// other case of each letter and CR onto `-`, and names never hold a CR
/// (the fast path's lines have none, httparse's names are tchar), so the
/// comparison is exact. Names of 4 to 16 bytes are compared as two
/// overlapping words (first and last 4 or 8 bytes).
#[inline]
fn name_is(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let n = name.len();
    let word4 = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("four bytes"));
    let word8 = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("eight bytes"));
    match n {
        4..=7 => {
            const CASE: u32 = u32::from_ne_bytes([0x20; 4]);
            word4(&name[..4]) | CASE == word4(&lower[..4])
                && word4(&name[n - 4..]) | CASE == word4(&lower[n - 4..])
        }
        8..=16 => {
            const CASE: u64 = u64::from_ne_bytes([0x20; 8]);
            word8(&name[..8]) | CASE == word8(&lower[..8])
                && word8(&name[n - 8..]) | CASE == word8(&lower[n - 8..])
        }
        _ => name.iter().zip(lower).all(|(&n, &l)| n | 0x20 == l),
    }
}

/// Whether `value` is a valid `Host` (RFC 9112 3.2: `uri-host [":" port]`;
/// RFC 9110 7.2 allows it empty, which only some targets accept: see
/// [`parse_with_httparse`]). The usual value, a plain name such as
/// `localhost`, is all [`REG_NAME_BYTES`]: eight lookups at a time,
/// combined without a branch each (half the instructions of stopping at
/// the first bad byte). Anything else (a port, an IP literal, a `%`
/// escape, a bad byte) goes to the grammar.
#[inline]
fn is_host(value: &[u8]) -> bool {
    let ok = |b: &u8| REG_NAME_BYTES[usize::from(*b)];
    let mut words = value.chunks_exact(8);
    let words_ok = words.by_ref().fold(true, |all, word| {
        all & word.iter().fold(true, |all, b| all & ok(b))
    });
    (words_ok && words.remainder().iter().all(ok)) || split_authority(value).is_some()
}

/// `uri-host [":" port]` split into its host and port (RFC 3986 3.2.2,
/// 3.2.3), or `None` when `authority` is not one: a bad byte, a `%` not
/// followed by two hex digits, a port that is not digits, an unclosed or
/// invalid `[...]` literal. No userinfo: a `@` is refused (RFC 9110 4.2.4
/// says to treat it as an error). The host may be empty.
#[cold]
fn split_authority(authority: &[u8]) -> Option<(&[u8], &[u8])> {
    let (host, port) = match authority {
        [b'[', ..] => {
            let close = authority.iter().position(|&b| b == b']')?;
            let (literal, rest) = authority.split_at(close + 1);
            if !is_ip_literal(&literal[1..close]) {
                return None;
            }
            match rest {
                [] => (literal, &b""[..]),
                [b':', port @ ..] => (literal, port),
                _ => return None,
            }
        }
        _ => match authority.iter().rposition(|&b| b == b':') {
            Some(colon) => (&authority[..colon], &authority[colon + 1..]),
            None => (authority, &b""[..]),
        },
    };
    let reg_name = host.starts_with(b"[") || is_reg_name(host);
    (reg_name && port.iter().all(u8::is_ascii_digit)).then_some((host, port))
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`, which covers
/// IPv4 addresses too.
fn is_reg_name(host: &[u8]) -> bool {
    is_allowed_or_escaped(host, &REG_NAME_BYTES)
}

/// Whether each byte of `bytes` is in `allowed` or part of a `%` escape of
/// two hex digits (RFC 3986 2.1); `allowed` must not hold `%`.
fn is_allowed_or_escaped(bytes: &[u8], allowed: &[bool; 256]) -> bool {
    let mut rest = bytes;
    while let [b, tail @ ..] = rest {
        rest = match (b, tail) {
            (b'%', [hi, lo, tail @ ..]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => tail,
            _ if allowed[usize::from(*b)] => tail,
            _ => return false,
        };
    }
    true
}

/// The inside of `[...]`: an IPv6 address, or `IPvFuture = "v" 1*HEXDIG
/// "." 1*( unreserved / sub-delims / ":" )` (RFC 3986 3.2.2).
fn is_ip_literal(inside: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inside {
        let hex = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        return match &rest[hex..] {
            [b'.', tail @ ..] => {
                hex > 0
                    && !tail.is_empty()
                    && tail
                        .iter()
                        .all(|&b| b == b':' || REG_NAME_BYTES[usize::from(b)])
            }
            _ => false,
        };
    }
    std::str::from_utf8(inside).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Strips spaces from both ends (the fast path has no tabs). The usual
/// `name: value` has one space before the value and none after: that case
/// costs two comparisons.
#[inline]
fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    if let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    if let [b' ', ..] | [.., b' '] = bytes {
        while let [b' ', rest @ ..] = bytes {
            bytes = rest;
        }
        while let [rest @ .., b' '] = bytes {
            bytes = rest;
        }
    }
    bytes
}

/// Parses any request head with httparse and applies RFC 9112's rules on
/// top: the path for everything [`parse_common`] declines.
pub fn parse_with_httparse(buf: &[u8]) -> Parsed {
    // Whatever else the head holds, and however much of it is in: a
    // method too long to be one answers the same at every split.
    if method_too_long(buf) {
        return Parsed::Invalid(Reject::NotImplemented);
    }
    parse_head_with_httparse(buf)
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

fn parse_head_with_httparse(buf: &[u8]) -> Parsed {
    // Only the first MAX_HEAD_BYTES are judged, as by the fast path: an
    // error past them would otherwise be found (400) or not (431) depending
    // on where the reads split the head.
    let buf = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => return Parsed::Partial,
        Ok(httparse::Status::Partial) => return Parsed::Invalid(too_large(buf)),
        Err(httparse::Error::TooManyHeaders) => return Parsed::Invalid(Reject::HeadTooLarge),
        Err(httparse::Error::Version) => {
            // httparse refuses a version as soon as it sees its digits; judge
            // the line only once it is whole, so a split cannot change the
            // answer (`HTTP/2` then `3`: 400, not 505), and judge its length
            // first, as for any other request line.
            let Some((start, line)) = request_line(buf) else {
                return if buf.len() < MAX_HEAD_BYTES {
                    Parsed::Partial
                } else {
                    Parsed::Invalid(Reject::UriTooLong)
                };
            };
            if line.len() >= MAX_HEAD_BYTES {
                return Parsed::Invalid(Reject::UriTooLong);
            }
            return match refused_version(start, line) {
                RefusedVersion::LaterMinor(at) => parse_as_http11(buf, at),
                RefusedVersion::OtherMajor => Parsed::Invalid(Reject::VersionNotSupported),
                RefusedVersion::Malformed => Parsed::Invalid(Reject::BadRequest),
            };
        }
        Err(_) => return Parsed::Invalid(Reject::BadRequest),
    };
    // httparse only reports Complete with every field filled in.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Parsed::Invalid(Reject::BadRequest);
    };
    let http10 = minor == 0;

    let mut hosts = 0u32;
    let mut empty_host = false;
    let mut content_length: Option<u64> = None;
    let mut codings = Codings::default();
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expects_continue = false;
    for header in req.headers.iter() {
        let name = header.name.as_bytes();
        // httparse strips the value's leading and trailing whitespace.
        let value = header.value;
        // Dispatch on length first, so most fields (Accept, User-Agent, ...)
        // cost one comparison.
        match name.len() {
            4 if name_is(name, b"host") => {
                hosts += 1;
                empty_host = value.is_empty();
                if !is_host(value) {
                    return Parsed::Invalid(Reject::BadRequest);
                }
            }
            6 if name_is(name, b"expect") => {
                expects_continue |= value.eq_ignore_ascii_case(b"100-continue");
            }
            10 if name_is(name, b"connection") => match value {
                b"keep-alive" => keep_alive_token = true,
                b"close" => close = true,
                _ => {
                    for token in value.split(|&b| b == b',').map(trim) {
                        close |= token.eq_ignore_ascii_case(b"close");
                        keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
            },
            14 if name_is(name, b"content-length") => {
                let Some(len) = parse_content_length(value) else {
                    return Parsed::Invalid(Reject::BadRequest);
                };
                if content_length.is_some_and(|seen| seen != len) {
                    return Parsed::Invalid(Reject::BadRequest);
                }
                content_length = Some(len);
            }
            // Several field lines form one list, in order.
            17 if name_is(name, b"transfer-encoding") => codings.add(value),
            _ => {}
        }
    }

    // RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
    if hosts > 1 || (hosts == 0 && !http10) {
        return Parsed::Invalid(Reject::BadRequest);
    }
    let body = match (codings.body(), content_length) {
        (None, len) => Body::Length(len.unwrap_or(0)),
        // RFC 9112 6.1: both present is a smuggling attempt; so is any
        // coding sent by an HTTP/1.0 client.
        (Some(_), Some(_)) => return Parsed::Invalid(Reject::BadRequest),
        (Some(_), None) if http10 => return Parsed::Invalid(Reject::BadRequest),
        (Some(Ok(body)), None) => body,
        (Some(Err(reject)), None) => return Parsed::Invalid(reject),
    };

    if !is_request_target(method, target.as_bytes()) {
        return Parsed::Invalid(Reject::BadRequest);
    }
    // RFC 9112 3.3: an origin-form or `*` target takes its authority from
    // Host, and "http" allows no empty authority (RFC 9110 4.2.1); with no
    // default name configured, such a request names no resource here. An
    // absolute-form or authority-form target carries its own authority
    // and Host is then ignored (3.2.2), empty or not. HTTP/1.0 requires no
    // Host at all, and an empty one is served like a missing one.
    if empty_host && !http10 && matches!(target.as_bytes(), [b'/', ..] | b"*") {
        return Parsed::Invalid(Reject::BadRequest);
    }

    let keep_alive = if http10 {
        keep_alive_token && !close
    } else {
        !close
    };
    Parsed::Complete(Request {
        method: match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "OPTIONS" => Method::Options,
            "PUT" | "DELETE" | "TRACE" | "PATCH" => Method::NotAllowed,
            _ => Method::NotImplemented,
        },
        route: route(target.as_bytes()),
        head_len,
        body,
        keep_alive,
        http10,
        // RFC 9110 10.1.1: a server MUST ignore 100-continue in HTTP/1.0.
        expects_continue: expects_continue && !http10,
    })
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
        for coding in line.split(|&b| b == b',').map(trim) {
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
    fn body(&self) -> Option<Result<Body, Reject>> {
        if !self.present {
            return None;
        }
        Some(if !self.chunked_last || self.chunked != 1 {
            Err(Reject::BadRequest)
        } else if self.other {
            Err(Reject::NotImplemented)
        } else {
            Ok(Body::Chunked)
        })
    }
}

/// Why httparse refused a request line's version.
enum RefusedVersion {
    /// `HTTP/1.d` with d > 1; the minor digit is at this offset.
    LaterMinor(usize),
    /// A well-formed version of another major (`HTTP/2.0`, `HTTP/3`): 505.
    OtherMajor,
    /// Not `METHOD SP target SP HTTP/d[.d]` at all (`GET /a b HTTP/1.1`): 400.
    Malformed,
}

/// Sorts out the version of a whole request `line` (without its `\n`)
/// that starts at offset `start` of the buffer.
fn refused_version(start: usize, line: &[u8]) -> RefusedVersion {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return RefusedVersion::Malformed;
    };
    if method.is_empty() || target.is_empty() {
        return RefusedVersion::Malformed;
    }
    match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
            RefusedVersion::LaterMinor(start + line.len() - 1)
        }
        // Not the grammar's DIGIT "." DIGIT, but plainly another major.
        [b'H', b'T', b'T', b'P', b'/', major] if major.is_ascii_digit() && *major != b'1' => {
            RefusedVersion::OtherMajor
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            RefusedVersion::OtherMajor
        }
        _ => RefusedVersion::Malformed,
    }
}

/// RFC 9110 2.5: a message of a later minor version of HTTP/1 is processed
/// as the highest minor version we implement. httparse refuses it, so parse
/// a copy that says `1.1` (a rare path; the copy is at most one head long).
fn parse_as_http11(buf: &[u8], minor_at: usize) -> Parsed {
    if minor_at >= MAX_HEAD_BYTES {
        return Parsed::Invalid(too_large(buf));
    }
    let mut copy = [0u8; MAX_HEAD_BYTES];
    let len = buf.len().min(MAX_HEAD_BYTES);
    copy[..len].copy_from_slice(&buf[..len]);
    copy[minor_at] = b'1';
    parse(&copy[..len])
}

/// Which limit a head over [`MAX_HEAD_BYTES`] broke: 414 when the request
/// line alone is that long (the target is longer than we parse), else 431.
fn too_large(buf: &[u8]) -> Reject {
    match request_line(buf) {
        Some((_, line)) if line.len() < MAX_HEAD_BYTES => Reject::HeadTooLarge,
        _ => Reject::UriTooLong,
    }
}

/// The request line after any leading empty lines: its offset in `buf` and
/// its bytes up to (not including) the `\n`, or `None` while it has not ended.
fn request_line(buf: &[u8]) -> Option<(usize, &[u8])> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let len = buf[start..].iter().position(|&b| b == b'\n')?;
    Some((start, &buf[start..start + len]))
}

/// Whether `target` has the form RFC 9112 3.2 allows for `method`:
/// origin-form (`/path?query`), absolute-form (`scheme:...`), `*` only for
/// `OPTIONS` (3.2.4), and for `CONNECT` only its authority-form `host:port`
/// (3.2.3). An `http` or `https` URI must have `://` and a valid, non-empty
/// host and no userinfo (RFC 9110 4.2.1, 4.2.4). The path and query of
/// origin-form and of an `http(s)` URI must be RFC 3986's bytes
/// ([`is_path_and_query`]). Anything else (`json`, `GET *`, `http:///json`,
/// `/json#f`) is an invalid request line: 400 (3.2).
fn is_request_target(method: &str, target: &[u8]) -> bool {
    if method == "CONNECT" {
        return split_authority(target)
            .is_some_and(|(host, port)| !host.is_empty() && !port.is_empty());
    }
    match target {
        [b'/', ..] => is_path_and_query(target),
        b"*" => method == "OPTIONS",
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 3.1)
        [first, rest @ ..] if first.is_ascii_alphabetic() => {
            let scheme_len = 1 + rest
                .iter()
                .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                .count();
            if target.get(scheme_len) != Some(&b':') {
                return false;
            }
            match http_authority(target) {
                // Another scheme: not ours to judge further (routed to 404).
                None => true,
                Some(parts) => parts.is_some_and(|(authority, rest)| {
                    split_authority(authority).is_some_and(|(host, _)| !host.is_empty())
                        && is_path_and_query(rest)
                }),
            }
        }
        _ => false,
    }
}

/// Whether `bytes` holds only what RFC 3986 allows in `path [ "?" query ]`:
/// `pchar`s, `/`, `?`, and `%` escapes of two hex digits. Anything else
/// (a `#`, which starts a fragment that a client must not send; an
/// unescaped `"`, `<`, `\`, `{` or `|`; a `%` without two hex digits)
/// makes the request-line invalid: 400 (RFC 9112 3). The fast path runs
/// this only for targets other than `/plaintext` and `/json`.
fn is_path_and_query(bytes: &[u8]) -> bool {
    is_allowed_or_escaped(bytes, &PATH_QUERY_BYTES)
}

/// Maps a request-target to a route; the query string is ignored.
/// `*` (only ever with `OPTIONS`) is the server as a whole.
fn route(target: &[u8]) -> Route {
    let path = match target.first() {
        Some(b'/') => target,
        Some(b'*') => return Route::Server,
        // RFC 9112 3.2.2: servers must accept the absolute-form.
        _ => match http_authority(target) {
            Some(Some((_, rest))) if rest.starts_with(b"/") => rest,
            Some(Some(_)) => b"/",
            _ => b"",
        },
    };
    Route::for_path(path)
}

/// For an `http:` or `https:` target (any case), its authority and what
/// follows it (path, query, fragment), or `Some(None)` when `//` does not
/// follow the scheme (RFC 9110 4.2.1); `None` for any other target.
fn http_authority(target: &[u8]) -> Option<Option<(&[u8], &[u8])>> {
    let colon = target.iter().position(|&b| b == b':')?;
    let (scheme, rest) = target.split_at(colon);
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return None;
    }
    Some(rest.strip_prefix(b"://").map(|rest| {
        let authority_len = rest
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        rest.split_at(authority_len)
    }))
}

/// `Content-Length = 1*DIGIT`, or a list of identical values (RFC 9112 6.3,
/// which lets a recipient accept `42, 42` as 42).
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut result = None;
    for item in value.split(|&b| b == b',').map(trim) {
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

/// The bytes of a `reg-name` but `%`: RFC 3986's unreserved and sub-delims.
/// A table: the `Host` check runs for every request.
static REG_NAME_BYTES: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=");

/// RFC 3986 `pchar` but `%`, with `/` and `?`: the bytes of a path and
/// query (3.3, 3.4).
static PATH_QUERY_BYTES: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=:@/?");

/// RFC 9110 5.6.2 `tchar`: the bytes of a field name (httparse's set).
static TOKEN_BYTES: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// A byte table: ASCII letters and digits, and `extra`.
const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// Strips optional whitespace (SP / HTAB) from both ends.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(raw: &str) -> Request {
        match parse(raw.as_bytes()) {
            Parsed::Complete(req) => req,
            other => panic!("{raw:?} parsed as {other:?}"),
        }
    }

    fn rejected(raw: &str) -> Reject {
        match parse(raw.as_bytes()) {
            Parsed::Invalid(reject) => reject,
            other => panic!("{raw:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn byte_tables() {
        let set = |table: &[bool; 256]| -> Vec<u8> {
            (0..=255u8).filter(|&b| table[usize::from(b)]).collect()
        };
        let mut tchar: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        let mut host = tchar.clone();
        tchar.extend_from_slice(b"!#$%&'*+-.^_`|~");
        host.extend_from_slice(b"-._~!$&'()*+,;=");
        tchar.sort_unstable();
        host.sort_unstable();
        assert_eq!(set(&TOKEN_BYTES), tchar);
        assert_eq!(set(&REG_NAME_BYTES), host);
    }

    #[test]
    fn name_is_compares_any_case_exactly() {
        for lower in [
            "host",
            "expect",
            "connection",
            "content-length",
            "transfer-encoding",
        ] {
            let upper = lower.to_ascii_uppercase();
            assert!(name_is(lower.as_bytes(), lower.as_bytes()));
            assert!(name_is(upper.as_bytes(), lower.as_bytes()));
            for at in 0..lower.len() {
                // Any other token byte at any position is another name.
                for b in (0..=255u8).filter(|b| TOKEN_BYTES[usize::from(*b)]) {
                    let mut name = lower.as_bytes().to_vec();
                    if b.to_ascii_lowercase() == name[at] {
                        continue;
                    }
                    name[at] = b;
                    assert!(!name_is(&name, lower.as_bytes()), "{name:?} is not {lower}");
                }
            }
            assert!(!name_is(&lower.as_bytes()[1..], lower.as_bytes()));
        }
    }

    #[test]
    fn tfb_plaintext_request() {
        let raw = "GET /plaintext HTTP/1.1\r\nHost: tfb-server:8080\r\nAccept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n";
        let req = complete(raw);
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.route, Route::Plaintext);
        assert_eq!(req.head_len, raw.len());
        assert_eq!(req.body, Body::Length(0));
        assert!(req.keep_alive);
        assert!(!req.http10);
    }

    #[test]
    fn routes_ignore_query_and_accept_absolute_form() {
        let cases = [
            ("/json", Route::Json),
            ("/json?x=1", Route::Json),
            ("/plaintext?", Route::Plaintext),
            ("http://example.com/plaintext", Route::Plaintext),
            ("HTTP://example.com:80/json?q", Route::Json),
            ("http://example.com", Route::NotFound),
            ("/JSON", Route::NotFound),
            ("/json/", Route::NotFound),
            ("/plaintextx", Route::NotFound),
            ("ftp://example.com/json", Route::NotFound),
            ("urn:json", Route::NotFound),
        ];
        for (target, expected) in cases {
            let req = complete(&format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n"));
            assert_eq!(req.route, expected, "{target}");
        }
    }

    #[test]
    fn request_target_forms() {
        for valid in [
            "GET /json",
            "GET http://a/json",
            "GET HTTPS://a:443?q",
            "GET http://[::1]:8080/json?q",
            "GET /a%2Fb%c3%A9?x=%20&y=/?:@!$'()*+,;=~-._",
            "GET /plaintext?",
            "GET a+b.c-d:x",
            "GET urn:json",
            "OPTIONS *",
            "CONNECT example.com:443",
            "CONNECT [::1]:443",
        ] {
            complete(&format!("{valid} HTTP/1.1\r\nHost: a\r\n\r\n"));
        }
        for invalid in [
            "GET *",
            "HEAD *",
            "OPTIONS **",
            "GET json",
            "GET :80/json",
            "GET 1http://a/json",
            "GET ?q",
            "GET #f",
            "GET -a:b",
            "GET http:///json",
            "GET http://:80/json",
            "GET http:/json",
            "GET http:json",
            "GET http://u:p@a/json",
            "GET /json#f",
            "GET /json?a#f",
            "GET /#",
            "GET /%zz",
            "GET /%2",
            "GET /json?%",
            "GET /js\"on",
            "GET /a{b}",
            "GET /json?x|y",
            "GET /json?<",
            "GET /[x]",
            "GET /a\\b",
            "GET /a^b",
            "GET /a`b",
            "GET http://a/json#f",
            "GET http://a#f/json",
            "GET http://a?%zz",
            "GET http://a:xx/json",
            "GET https://[::1/json",
            "CONNECT /json",
            "CONNECT example.com",
            "CONNECT example.com:",
            "CONNECT :443",
            "CONNECT http://a/",
        ] {
            let raw = format!("{invalid} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(rejected(&raw), Reject::BadRequest, "{invalid}");
        }
    }

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
            (options.method, options.route),
            (Method::Options, Route::Server)
        );
    }

    #[test]
    fn host_rules() {
        assert_eq!(rejected("GET / HTTP/1.1\r\n\r\n"), Reject::BadRequest);
        assert_eq!(
            rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(
            rejected("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            Reject::BadRequest
        );
        assert_eq!(
            rejected("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
            Reject::BadRequest
        );
        complete("GET / HTTP/1.0\r\n\r\n");
        // uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2), on both paths
        // (the fast one, and httparse's when a tab sends the head there).
        for valid in [
            "a",
            "localhost:8080",
            "a:",
            "127.0.0.1:80",
            "xn--bcher-kva.example",
            "a%2Db",
            "!$&'()*+,;=-._~",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]:1",
            "[::ffff:127.0.0.1]",
            "[v7.a:b]",
        ] {
            for tab in ["", "\t"] {
                let raw = format!("GET / HTTP/1.1\r\nhOsT: {valid}{tab}\r\n\r\n");
                complete(&raw);
            }
        }
        for invalid in [
            "a b", "a/b", "a?b", "a#b", "u@a", "a:xx", "a:-1", "a:1:2", "a%zz", "a%2", "[::1",
            "::1", "[zz]", "[::1]x", "[::1]:x", "[v.a]", "[v7.]", "a[b]", "\"a\"", "a\\b",
        ] {
            for tab in ["", "\t"] {
                let raw = format!("GET / HTTP/1.1\r\nHost: {invalid}{tab}\r\n\r\n");
                assert_eq!(rejected(&raw), Reject::BadRequest, "{invalid}");
            }
        }
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
        assert_eq!(
            complete("GET http://a/json HTTP/1.1\r\nHost:\r\n\r\n").route,
            Route::Json
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
            complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").body,
            Body::Length(5)
        );
        assert_eq!(
            complete(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"
            )
            .body,
            Body::Length(5)
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
            assert_eq!(complete(&te(chunked)).body, Body::Chunked, "{chunked:?}");
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

    #[test]
    fn over_long_request_line_is_414_never_a_panic() {
        let target = "a".repeat(MAX_HEAD_BYTES + 800);
        for version in ["HTTP/1.1", "HTTP/1.2", "HTTP/2.0"] {
            let raw = format!("GET /{target} {version}\r\nHost: a\r\n\r\n");
            assert_eq!(rejected(&raw), Reject::UriTooLong, "{version}");
            // Cut short, without its line end, too.
            let cut = &raw[..MAX_HEAD_BYTES + 100];
            assert_eq!(rejected(cut), Reject::UriTooLong, "{version} cut");
        }
        let long_field = format!("GET / HTTP/1.2\r\nHost: a\r\nX: {target}\r\n\r\n");
        assert_eq!(rejected(&long_field), Reject::HeadTooLarge);
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

    #[test]
    fn later_http1_minor_is_served_as_http11() {
        let raw = "GET /json HTTP/1.2\r\nHost: a\r\nContent-Length: 2\r\n\r\nxx";
        let req = complete(raw);
        assert_eq!(req.route, Route::Json);
        assert_eq!(req.head_len, raw.len() - 2);
        assert_eq!(req.body, Body::Length(2));
        assert!(!req.http10 && req.keep_alive);
        // Host is still required, as in HTTP/1.1.
        assert_eq!(rejected("GET /json HTTP/1.9\r\n\r\n"), Reject::BadRequest);
        assert_eq!(parse(b"GET /json HTTP/1.2\r\nHost: a\r\n"), Parsed::Partial);
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
