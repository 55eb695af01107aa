//! The one response reader of the tests and the fuzz target: sans-I/O, it
//! parses the response at the front of a byte slice and says how many bytes
//! it took, or that it has not fully arrived. Blocking clients
//! ([`super::client`]), the hostile clients' pipelined checks and the
//! pipeline's own output ([`super::pipeline_output`]) all read through it.
//!
//! Strict where chopin is: lines end in CRLF, the version is `HTTP/1.x`, a
//! field line is `name:value` with a token name, and a response with a body
//! says its length in exactly one `Content-Length`.

use std::fmt;

/// The most bytes a response head may take before the reader gives up on it
/// (chopin's heads are a few hundred bytes).
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// One parsed response, with the exact bytes it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// In arrival order, names as sent, values without surrounding
    /// whitespace.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Every byte of this response as it arrived, head and body.
    pub raw: Vec<u8>,
}

/// Parses the head (status line and fields) at the front of `buf`: the
/// response without its body and the head's length, `Ok(None)` if the head
/// has not fully arrived, or what is wrong with it.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Response, usize)>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(format!("no end of head in {} bytes", buf.len()));
        }
        return Ok(None);
    };
    let head_len = end + 4;
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| format!("a non-UTF-8 response head: {:?}", lossy(&buf[..end])))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default();
    let status = match status.parse::<u16>() {
        Ok(code) if version.starts_with("HTTP/1.") && status.len() == 3 => code,
        _ => return Err(format!("bad status line {status_line:?}")),
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a field line without a colon: {line:?}"))?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("a bad field name in {line:?}"));
        }
        if line.contains(['\r', '\n']) {
            return Err(format!("a bare CR or LF in {line:?}"));
        }
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    let response = Response {
        version: version.to_owned(),
        status,
        reason: reason.to_owned(),
        headers,
        body: Vec::new(),
        raw: buf[..head_len].to_vec(),
    };
    Ok(Some((response, head_len)))
}

/// Parses the whole response at the front of `buf`: the response and the
/// bytes it took, `Ok(None)` if it has not fully arrived, or what is wrong
/// with it. `head` says it answers a HEAD request: no body, whatever the
/// length says.
pub fn parse(buf: &[u8], head: bool) -> Result<Option<(Response, usize)>, String> {
    let Some((mut response, head_len)) = parse_head(buf)? else {
        return Ok(None);
    };
    let len = if head || !response.has_body() {
        0
    } else {
        response.body_length()?
    };
    let Some(body) = buf[head_len..].get(..len) else {
        return Ok(None);
    };
    response.body = body.to_vec();
    response.raw.extend_from_slice(body);
    Ok(Some((response, head_len + len)))
}

impl Response {
    /// Whether a body follows the head (RFC 9112 6.3): not after 1xx, 204
    /// or 304.
    pub fn has_body(&self) -> bool {
        !(self.status < 200 || self.status == 204 || self.status == 304)
    }

    /// Its one `Content-Length` as a number, or what is wrong with it.
    pub fn body_length(&self) -> Result<usize, String> {
        match self.all("Content-Length")[..] {
            [value] => value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?} in {self}")),
            [] => Err(format!("no Content-Length in {self}")),
            _ => Err(format!("Content-Length repeated in {self}")),
        }
    }

    /// Every value of the field `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of `name`, if present; panics if it appears more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} appears {} times: {self}", all.len());
        all.first().copied()
    }

    /// The value of `name`, which must appear exactly once.
    pub fn single(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header: {self}"))
    }

    pub fn content_length(&self) -> usize {
        self.body_length().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Whether it says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn text(&self) -> String {
        lossy(&self.raw)
    }

    /// Asserts the exact set of fields: `expected` (name, value) pairs plus
    /// `Date`, which must be a current IMF-fixdate; no field missing, none
    /// extra, none repeated. Order is not checked (TFB does not care).
    pub fn assert_fields(&self, expected: &[(&str, &str)]) {
        let mut got: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "fields of {self}");
        super::date::assert_date_is_now(self.single("Date"));
    }

    /// Asserts status, exact fields (plus a current Date) and body.
    pub fn assert_exact(&self, status: u16, fields: &[(&str, &str)], body: &[u8]) {
        assert_eq!(self.version, "HTTP/1.1", "{self}");
        assert_eq!(self.status, status, "{self}");
        self.assert_fields(fields);
        assert_eq!(self.body, body, "{self}");
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text())
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Self-check of [`parse`]; called from one test file only.
pub fn check_response_reader() {
    let wire = b"HTTP/1.1 200 OK\r\nServer: a\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
    let mut at = 0;
    let mut next = |head: bool| {
        let (response, used) = parse(&wire[at..], head).unwrap().unwrap();
        at += used;
        response
    };
    let first = next(false);
    assert_eq!((first.status, &first.body[..]), (200, &b"abc"[..]));
    let head = next(true);
    assert_eq!(head.content_length(), 5);
    assert!(head.body.is_empty());
    let interim = next(false);
    assert_eq!((interim.status, interim.has_body()), (100, false));
    let last = next(false);
    assert_eq!(last.status, 404);
    assert_eq!(last.reason, "Not Found");
    assert_eq!(last.single("Content-Length"), "0");
    assert_eq!(at, wire.len());
    assert_eq!(
        [first.raw, head.raw, interim.raw, last.raw].concat(),
        wire.to_vec(),
        "raw bytes add up to the wire"
    );
    // Not yet whole: a cut head, a cut body.
    assert_eq!(parse(&wire[..20], false), Ok(None));
    assert_eq!(parse(&wire[..50], false), Ok(None));
    // Malformed.
    for bad in [
        &b"HTTP/2 200 OK\r\n\r\n"[..],
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: \nb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
    ] {
        assert!(parse(bad, false).is_err(), "{:?}", lossy(bad));
    }
    assert!(parse(&[b'a'; MAX_RESPONSE_HEAD + 1], false).is_err());
}
