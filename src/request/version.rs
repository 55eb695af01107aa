//! Request lines whose version httparse refuses: a later HTTP/1 minor
//! (served as HTTP/1.1), another major (505), or no version at all (400);
//! and which limit an over-long head broke.

use super::{parse, Parsed, Reject, MAX_HEAD_BYTES};

/// The answer to a head whose version httparse refused. httparse refuses
/// a version as soon as it sees its digits; the line is judged only once it
/// is whole, so a split cannot change the answer (`HTTP/2` then `3`: 400,
/// not 505), and its length first, as for any other request line.
pub(super) fn refused_version_line(buf: &[u8]) -> Parsed {
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
    match refused_version(start, line) {
        RefusedVersion::LaterMinor(at) => parse_as_http11(buf, at),
        RefusedVersion::OtherMajor => Parsed::Invalid(Reject::VersionNotSupported),
        RefusedVersion::Malformed => Parsed::Invalid(Reject::BadRequest),
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
pub(super) fn too_large(buf: &[u8]) -> Reject {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{complete, rejected};
    use super::*;
    use crate::request::Framing;

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

    #[test]
    fn later_http1_minor_is_served_as_http11() {
        let raw = "GET /json HTTP/1.2\r\nHost: a\r\nContent-Length: 2\r\n\r\nxx";
        let req = complete(raw);
        assert_eq!(
            req.target.path_and_query(raw.as_bytes()),
            Some(&b"/json"[..])
        );
        assert_eq!(req.head_len, raw.len() - 2);
        assert_eq!(req.framing, Framing::Length(2));
        assert!(!req.http10 && req.keep_alive);
        // Host is still required, as in HTTP/1.1.
        assert_eq!(rejected("GET /json HTTP/1.9\r\n\r\n"), Reject::BadRequest);
        assert_eq!(parse(b"GET /json HTTP/1.2\r\nHost: a\r\n"), Parsed::Partial);
    }
}
