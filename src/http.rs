//! The words the parser and the router share: a request's method, how its
//! body is framed, and where its target's path and query are.
//!
//! Both layers import these and neither imports the other: the parser
//! ([`crate::request`]) finds them in a head and knows no routes; the
//! router ([`crate::router`]) decides from them alone.

/// A request method, as far as this server tells methods apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// `POST`: served where a resource takes it (`/baseline11`, `/echo`),
    /// else like [`Method::NotAllowed`].
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

/// How a request's body is delimited (RFC 9112 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`, or no body at all: `Length(0)`.
    Length(u64),
    /// `Transfer-Encoding: chunked`: the body ends where its last chunk and
    /// trailers say ([`crate::chunked`]).
    Chunked,
}

/// What a request-target names, as the router needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A path and query, `at` bytes into the head and `len` long: the whole
    /// origin-form target (`/json/5?m=2`), or what follows the authority of
    /// an absolute-form `http(s)` URI (RFC 9112 3.2.2), which may be empty
    /// (`http://a` names `/`) or start with its `?`.
    PathAndQuery { at: u16, len: u16 },
    /// `*`: the server as a whole (`OPTIONS *`, RFC 9112 3.2.4).
    Server,
    /// Anything else: another scheme's URI, an authority (`CONNECT`). No
    /// resource here has such a name.
    Elsewhere,
}

impl Target {
    /// The path and query in `head`, the head this target was parsed from;
    /// `None` for a target that has none.
    #[inline(always)]
    pub fn path_and_query(self, head: &[u8]) -> Option<&[u8]> {
        match self {
            Target::PathAndQuery { at, len } => {
                let at = usize::from(at);
                head.get(at..at + usize::from(len))
            }
            Target::Server | Target::Elsewhere => None,
        }
    }
}

/// The query of a path and query, without its `?`; empty when there is none.
pub fn query(path_and_query: &[u8]) -> &[u8] {
    match path_and_query.iter().position(|&b| b == b'?') {
        Some(at) => &path_and_query[at + 1..],
        None => b"",
    }
}

/// The value of the query parameter `name` (`name=value` pairs split by
/// `&`, taken as they are: no percent-decoding): `Ok(None)` when it is
/// absent, `Err(())` when it appears more than once (which of two values
/// would be meant is anyone's guess). A pair without `=` has an empty value.
#[allow(clippy::result_unit_err)] // the only error is "repeated"
pub fn query_param<'a>(query: &'a [u8], name: &[u8]) -> Result<Option<&'a [u8]>, ()> {
    let mut found = None;
    for pair in query.split(|&b| b == b'&') {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        if key == name && found.replace(value).is_some() {
            return Err(());
        }
    }
    Ok(found)
}

/// `-?[0-9]+` as an `i64`; `None` for anything else (a `+`, a space, an
/// empty string) or a number outside `i64`.
pub fn decimal_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    let magnitude = decimal_u64(digits)?;
    if negative {
        // Down to i64::MIN, whose magnitude is one over i64::MAX.
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `[0-9]+` as a `u64`; `None` for anything else or a number over `u64`.
pub fn decimal_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        assert_eq!(query(b"/json/5?m=2"), b"m=2");
        assert_eq!(query(b"/json/5"), b"");
        assert_eq!(query(b"?"), b"");
        assert_eq!(query_param(b"m=2&x=1", b"m"), Ok(Some(&b"2"[..])));
        assert_eq!(query_param(b"x=1&m", b"m"), Ok(Some(&b""[..])));
        assert_eq!(query_param(b"mm=1&am=2", b"m"), Ok(None));
        assert_eq!(query_param(b"", b"m"), Ok(None));
        assert_eq!(query_param(b"m=1&m=1", b"m"), Err(()));
    }

    #[test]
    fn decimals() {
        for (text, expected) in [
            ("0", Some(0)),
            ("007", Some(7)),
            ("-0", Some(0)),
            ("-12", Some(-12)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("", None),
            ("-", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("1.5", None),
            ("0x10", None),
            ("%31", None),
        ] {
            assert_eq!(decimal_i64(text.as_bytes()), expected, "{text:?}");
        }
        assert_eq!(decimal_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal_u64(b"18446744073709551616"), None);
        assert_eq!(decimal_u64(b"-1"), None);
        assert_eq!(decimal_u64(b""), None);
    }
}
