//! The URI and `Host` grammar (RFC 3986, RFC 9112 3.2): request targets,
//! authorities, hosts, and where a target's path and query are.

use super::syntax::alphanumeric_and;
use super::Target;

/// Whether `value` is a valid `Host` (RFC 9112 3.2: `uri-host [":" port]`;
/// RFC 9110 7.2 allows it empty, which only some targets accept: see
/// [`parse_with_httparse`](super::parse_with_httparse)). The usual values,
/// a plain name such as `localhost` with or without a `:port`, are checked
/// with [`all_in`]: the port's digits from the end, the name before them
/// against [`REG_NAME_BYTES`]. Anything else (an IP literal, a `%`
/// escape, a bad byte) goes to the grammar.
#[inline]
pub(super) fn is_host(value: &[u8]) -> bool {
    let digits = value
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let name = match value.len().checked_sub(digits + 1) {
        Some(colon) if value[colon] == b':' => &value[..colon],
        _ => value,
    };
    all_in(name, &REG_NAME_BYTES) || split_authority(value).is_some()
}

/// Whether every byte of `bytes` is in `table`: eight lookups at a time,
/// combined without a branch each (half the instructions of stopping at
/// the first bad byte, for the short values every request carries).
#[inline(always)]
fn all_in(bytes: &[u8], table: &[bool; 256]) -> bool {
    let ok = |b: &u8| table[usize::from(*b)];
    let mut words = bytes.chunks_exact(8);
    let words_ok = words.by_ref().fold(true, |all, word| {
        all & word.iter().fold(true, |all, b| all & ok(b))
    });
    words_ok && words.remainder().iter().all(ok)
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

/// Whether `target` has the form RFC 9112 3.2 allows for `method`:
/// origin-form (`/path?query`), absolute-form (`scheme:...`), `*` only for
/// `OPTIONS` (3.2.4), and for `CONNECT` only its authority-form `host:port`
/// (3.2.3). An `http` or `https` URI must have `://` and a valid, non-empty
/// host and no userinfo (RFC 9110 4.2.1, 4.2.4). The path and query of
/// origin-form and of an `http(s)` URI must be RFC 3986's bytes
/// ([`is_path_and_query`]). Anything else (`json`, `GET *`, `http:///json`,
/// `/json#f`) is an invalid request line: 400 (3.2).
pub(super) fn is_request_target(method: &str, target: &[u8]) -> bool {
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
/// makes the request-line invalid: 400 (RFC 9112 3).
///
/// Every request's target goes through this, so the usual one, with no
/// `%`, is checked as the `Host` is: eight table lookups at a time,
/// combined without a branch each. Only a target with a `%` (or a bad
/// byte) takes the byte-by-byte grammar.
#[inline]
pub(super) fn is_path_and_query(bytes: &[u8]) -> bool {
    all_in(bytes, &PATH_QUERY_BYTES) || is_escaped_path_and_query(bytes)
}

#[cold]
fn is_escaped_path_and_query(bytes: &[u8]) -> bool {
    is_allowed_or_escaped(bytes, &PATH_QUERY_BYTES)
}

/// Where the path and query of a valid `target` are, `at` bytes into its
/// head: all of an origin-form target, what follows the authority of an
/// `http(s)` URI (RFC 9112 3.2.2: servers must accept the absolute-form),
/// [`Target::Server`] for `*`, and [`Target::Elsewhere`] for anything else.
pub(super) fn target_in_head(target: &[u8], at: usize) -> Target {
    // The head is at most MAX_HEAD_BYTES long, so offsets fit in u16.
    let path_and_query = |rest: &[u8]| Target::PathAndQuery {
        at: (at + target.len() - rest.len()) as u16,
        len: rest.len() as u16,
    };
    match target.first() {
        Some(b'/') => path_and_query(target),
        Some(b'*') => Target::Server,
        _ => match http_authority(target) {
            Some(Some((_, rest))) => path_and_query(rest),
            _ => Target::Elsewhere,
        },
    }
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

/// The bytes of a `reg-name` but `%`: RFC 3986's unreserved and sub-delims.
/// A table: the `Host` check runs for every request.
pub(super) static REG_NAME_BYTES: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=");

/// RFC 3986 `pchar` but `%`, with `/` and `?`: the bytes of a path and
/// query (3.3, 3.4).
static PATH_QUERY_BYTES: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=:@/?");

#[cfg(test)]
mod tests {
    use super::super::test_support::{complete, rejected};
    use super::*;
    use crate::request::Reject;

    #[test]
    fn targets_name_their_path_and_query() {
        for (target, expected) in [
            ("/json", Some("/json")),
            ("/json?x=1", Some("/json?x=1")),
            ("http://example.com/plaintext", Some("/plaintext")),
            ("HTTP://example.com:80/json?q", Some("/json?q")),
            ("http://example.com", Some("")),
            ("http://example.com?q", Some("?q")),
            ("ftp://example.com/json", None),
            ("urn:json", None),
        ] {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            let req = complete(&raw);
            let found = req.target.path_and_query(raw.as_bytes());
            assert_eq!(found, expected.map(str::as_bytes), "{target}");
            assert_ne!(req.target, Target::Server, "{target}");
        }
        let raw = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(complete(raw).target, Target::Server);
    }

    /// The fast path's one-pass target scan ([`crate::scan::plain_target_end`])
    /// stops at exactly the bytes this grammar does not allow as they are,
    /// and at `%`, which it leaves to the grammar.
    #[test]
    fn the_target_scan_stops_where_the_grammar_does() {
        for b in 0..=255u8 {
            let stops = crate::scan::plain_target_end(&[b], 0) == 0;
            let plain = PATH_QUERY_BYTES[usize::from(b)];
            assert_eq!(stops, !plain || b == b'%', "byte {b:#04x}");
        }
    }

    #[test]
    fn path_and_query_bytes() {
        for valid in [
            "/",
            "/json",
            "/a%2Fb%c3%A9?x=%20&y=/?:@!$'()*+,;=~-._",
            "/0123456789abcdef",
        ] {
            assert!(is_path_and_query(valid.as_bytes()), "{valid}");
        }
        for invalid in [
            "/json#f",
            "/%zz",
            "/%2",
            "/a{b}",
            "/0123456789abcde|",
            "/01234567\"",
            "/[x]",
        ] {
            assert!(!is_path_and_query(invalid.as_bytes()), "{invalid}");
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
}
