//! The fast path: the request head nearly every client sends, judged in one
//! pass over its bytes.

use super::syntax::{name_is, split_field_name};
use super::uri::{is_host, is_path_and_query};
use super::{Framing, Method, Request, Target, MAX_HEADERS, MAX_HEAD_BYTES};
use crate::scan::{plain_target_end, visible_end};

/// The fast path, for the common shape only: `GET` or `HEAD`, an
/// origin-form target of RFC 3986's path and query bytes, `HTTP/1.1`, CRLF
/// line ends, field values of visible ASCII and spaces, exactly one valid
/// `Host`, at most a plain `Connection: keep-alive` or `close`, and no
/// body. Anything else — a tab, a byte above 0x7E, a bare LF,
/// `Content-Length`, `Expect`, an unfinished head, any error — returns
/// `None` for httparse to decide.
///
/// Why it exists: on TFB's requests httparse walks header names byte by
/// byte, dispatches SIMD at run time per value and validates the target as
/// UTF-8; this path scans 16 bytes per step. `scripts/bench --profile`
/// (instructions per request, callgrind) shows what either costs on
/// today's build.
pub fn parse_common(buf: &[u8]) -> Option<Request> {
    let buf = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let (method, target_at) = if buf.starts_with(b"GET /") {
        (Method::Get, 4)
    } else if buf.starts_with(b"HEAD /") {
        (Method::Head, 5)
    } else {
        return None;
    };
    // The usual target, plain path and query bytes up to the space before
    // the version, is found and judged in one scan; one with a `%` escape,
    // or a byte it may not hold, is judged by the grammar.
    let mut target_end = plain_target_end(buf, target_at);
    if buf.get(target_end) != Some(&b' ') {
        target_end = visible_end::<b'!'>(buf, target_end);
        if !is_path_and_query(&buf[target_at..target_end]) {
            return None;
        }
    }
    if buf.get(target_end..target_end + 11)? != b" HTTP/1.1\r\n" {
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
        // The head is at most MAX_HEAD_BYTES long: offsets fit in u16.
        target: Target::PathAndQuery {
            at: target_at as u16,
            len: (target_end - target_at) as u16,
        },
        head_len: pos,
        framing: Framing::Length(0),
        keep_alive: !close,
        http10: false,
        expects_continue: false,
    })
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

/// Strips spaces from both ends (the fast path has no tabs). The usual
/// `name: value` has one space before the value and none after: that case
/// costs two comparisons.
///
/// The fast path's own, rather than [`trim_ows`](super::syntax::trim_ows):
/// on the two values it trims per request (`Host`, `Connection`), every
/// shape of a shared SP-and-HTAB trim tried, quick case included, cost
/// more instructions per request on TFB's plaintext and json requests
/// (callgrind, `scripts/bench --profile`); this one costs none.
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
