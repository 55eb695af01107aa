//! The response API, and the one encoder that writes every response.
//!
//! A handler says *what* to answer: a [`Status`], its own header fields as
//! (name, value) pairs in order, and a body ([`Response`]). The server adds
//! the rest and [`Encoder::encode`] writes it: the status line from the
//! status, `Server`, `Connection` from the connection's state, the
//! handler's fields, `Content-Length` from the body it is given, `Date`.
//!
//! TFB marks an entry *Stripped* when its status line and headers are one
//! stored byte string, even with `Content-Length` or `Date` filled in per
//! response. So nothing stored here holds more than one header field line:
//! the pieces kept ahead of time are status lines, field names, one-line
//! fields whose name and value never change (`Connection: close`), the
//! `Server` line rendered once from `--server-name`, and the `Date` line
//! rendered once a second (src/date.rs).

use std::cell::Cell;
use std::io;

use crate::date::DATE_LINE_LEN;

/// Statuses this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    ContentTooLarge,
    HeadTooLarge,
    UriTooLong,
    NotImplemented,
    VersionNotSupported,
}

impl Status {
    /// The status line, CRLF included: a static piece per status.
    fn line(self) -> &'static [u8] {
        match self {
            Status::Ok => b"HTTP/1.1 200 OK\r\n",
            Status::BadRequest => b"HTTP/1.1 400 Bad Request\r\n",
            Status::NotFound => b"HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\n",
            Status::ContentTooLarge => b"HTTP/1.1 413 Content Too Large\r\n",
            Status::HeadTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::UriTooLong => b"HTTP/1.1 414 URI Too Long\r\n",
            Status::NotImplemented => b"HTTP/1.1 501 Not Implemented\r\n",
            Status::VersionNotSupported => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
        }
    }
}

impl Status {
    /// Whether the connection closes after a response of this status: an
    /// answer to a request this server could not read or would not take
    /// (400, 413, 414, 431, 505). 404, 405 and 501 answer a request that
    /// was read whole, so the connection can carry the next one.
    pub fn closes(self) -> bool {
        matches!(
            self,
            Status::BadRequest
                | Status::ContentTooLarge
                | Status::UriTooLong
                | Status::HeadTooLarge
                | Status::VersionNotSupported
        )
    }
}

/// What the response says about the connection; decided by the
/// connection's state, never by a handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 keep-alive is the default: no field needed.
    Default,
    /// An HTTP/1.0 client that asked to keep the connection is told it is kept.
    KeepAlive,
    /// The server closes the connection after this response.
    Close,
}

/// A header field name, stored with the `": "` that follows it so the
/// encoder copies one piece per name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderName(&'static [u8]);

impl HeaderName {
    /// `with_separator` is the name followed by `": "`, such as
    /// `b"Content-Type: "`; checked when the constant is evaluated.
    pub const fn new(with_separator: &'static [u8]) -> HeaderName {
        let n = with_separator.len();
        assert!(n > 2, "a header name is not empty");
        assert!(
            with_separator[n - 2] == b':' && with_separator[n - 1] == b' ',
            "a header name is given with its \": \""
        );
        let mut i = 0;
        while i < n - 2 {
            let b = with_separator[i];
            assert!(
                b.is_ascii_alphanumeric() || b == b'-',
                "a header name is letters, digits and '-'"
            );
            i += 1;
        }
        HeaderName(with_separator)
    }

    /// The name alone, without `": "`.
    pub fn as_bytes(self) -> &'static [u8] {
        &self.0[..self.0.len() - 2]
    }
}

pub const CONTENT_TYPE: HeaderName = HeaderName::new(b"Content-Type: ");
pub const ALLOW: HeaderName = HeaderName::new(b"Allow: ");
const CONTENT_LENGTH: HeaderName = HeaderName::new(b"Content-Length: ");
/// The `Connection` fields: one line each, name and value fixed.
const KEEP_ALIVE: &[u8] = b"Connection: keep-alive\r\n";
const CLOSE: &[u8] = b"Connection: close\r\n";

/// Most fields a handler may set. The encoder's own fields (`Server`,
/// `Connection`, `Content-Length`, `Date`) do not count.
pub const MAX_HANDLER_FIELDS: usize = 4;

/// One response, as a handler describes it. Built on the stack and encoded
/// at once; the body is borrowed (a static body, or bytes the handler
/// rendered into a [`BodyBuffer`]).
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    status: Status,
    fields: [(HeaderName, &'a [u8]); MAX_HANDLER_FIELDS],
    field_count: usize,
    body: &'a [u8],
}

impl<'a> Response<'a> {
    /// A response with this status, no fields of the handler's and an
    /// empty body.
    #[inline(always)]
    pub fn new(status: Status) -> Response<'a> {
        Response {
            status,
            fields: [(CONTENT_TYPE, b""); MAX_HANDLER_FIELDS],
            field_count: 0,
            body: b"",
        }
    }

    /// Adds a header field after those already set. `value` must be a
    /// valid field value (visible ASCII, spaces and tabs inside); the
    /// handlers pass static values.
    ///
    /// # Panics
    /// With more than [`MAX_HANDLER_FIELDS`] fields: a programming error in
    /// a handler, found by its first test.
    #[inline(always)]
    pub fn header(mut self, name: HeaderName, value: &'a [u8]) -> Response<'a> {
        debug_assert!(
            value
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)),
            "invalid value for {:?}",
            String::from_utf8_lossy(name.as_bytes())
        );
        assert!(
            self.field_count < MAX_HANDLER_FIELDS,
            "a handler sets at most {MAX_HANDLER_FIELDS} fields"
        );
        self.fields[self.field_count] = (name, value);
        self.field_count += 1;
        self
    }

    /// Sets the body; `Content-Length` will be its length.
    #[inline(always)]
    pub fn body(mut self, body: &'a [u8]) -> Response<'a> {
        self.body = body;
        self
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The handler's fields, in order.
    pub fn fields(&self) -> &[(HeaderName, &'a [u8])] {
        &self.fields[..self.field_count]
    }

    pub fn body_bytes(&self) -> &'a [u8] {
        self.body
    }
}

/// The `Server` field line, rendered once per server from `--server-name`:
/// one field line, the same on every response.
pub struct ServerField(Box<[u8]>);

impl ServerField {
    pub fn new(server_name: &str) -> ServerField {
        ServerField(
            format!("Server: {server_name}\r\n")
                .into_bytes()
                .into_boxed_slice(),
        )
    }
}

/// Writes responses: what the server adds to every response (its `Server`
/// line and the worker's current `Date` line) and the one function that
/// writes the bytes. One per batch of pipelined requests.
pub struct Encoder<'a> {
    server: &'a ServerField,
    /// `Date: <IMF-fixdate>\r\n`
    date: &'a [u8; DATE_LINE_LEN],
    /// Responses written, for `--stats`.
    written: Cell<u64>,
}

impl<'a> Encoder<'a> {
    pub fn new(server: &'a ServerField, date: &'a [u8; DATE_LINE_LEN]) -> Encoder<'a> {
        Encoder {
            server,
            date,
            written: Cell::new(0),
        }
    }

    /// How many responses this encoder has written.
    pub fn written(&self) -> u64 {
        self.written.get()
    }
}

impl Encoder<'_> {
    /// Appends `response` to `out`: status line, `Server`, `Connection`
    /// (unless HTTP/1.1's default), the handler's fields in order,
    /// `Content-Length` of the body, `Date`, the blank line, and the body
    /// unless `with_body` is false (a `HEAD` answer: the same length, no
    /// bytes).
    ///
    /// Always inlined into its callers: a handler's status, names and
    /// static values are then constants here, each copy one of a known
    /// length, and the loop over the fields unrolls.
    #[inline(always)]
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        response: &Response<'_>,
        persistence: Persistence,
        with_body: bool,
    ) {
        let connection = match persistence {
            Persistence::Default => 0,
            Persistence::KeepAlive => KEEP_ALIVE.len(),
            Persistence::Close => CLOSE.len(),
        };
        let body: &[u8] = if with_body { response.body } else { b"" };
        let mut digits = [0; 20];
        let length = decimal(response.body.len(), &mut digits);

        let status = response.status.line();
        // What `Pieces::reserve` makes room for: each piece below, once.
        // The status line, the constants and the digits add up to a few
        // hundred bytes; the pieces whose lengths come at run time are
        // added with overflow checks, so a wrapped sum cannot reserve less
        // than the copies write.
        let mut total = status.len()
            + connection
            + CONTENT_LENGTH.0.len()
            + length.len()
            + 2
            + DATE_LINE_LEN
            + 2;
        // The fields summed apart: a handler's are constants, and so then
        // is their sum, with no overflow test left.
        let mut fields_len = 0;
        for (name, value) in response.fields() {
            fields_len = add_length(fields_len, name.0.len() + 2);
            fields_len = add_length(fields_len, value.len());
        }
        total = add_length(total, fields_len);
        total = add_length(total, self.server.0.len());
        total = add_length(total, body.len());
        let mut pieces = Pieces::reserve(out, total);
        // SAFETY (every `put` and `put_short` below): `total` is the sum of
        // exactly these pieces' lengths, so together they fit the room
        // `reserve` made. Release builds check no piece on its own (what
        // that cost: docs/design.md, "Write batching and response
        // composition"); debug builds check each (`Pieces::put`).
        unsafe {
            pieces.put(status);
            pieces.put(&self.server.0);
            // One constant copy per arm, not one copy of a length chosen at
            // run time (a `memcpy` call).
            match persistence {
                Persistence::Default => {}
                Persistence::KeepAlive => pieces.put(KEEP_ALIVE),
                Persistence::Close => pieces.put(CLOSE),
            }
            for &(name, value) in response.fields() {
                pieces.put(name.0);
                pieces.put(value);
                pieces.put(b"\r\n");
            }
            pieces.put(CONTENT_LENGTH.0);
            pieces.put_short(length);
            pieces.put(b"\r\n");
            pieces.put(self.date);
            pieces.put(b"\r\n");
            // In a branch: one constant copy, not a copy of 13 or 0 bytes.
            if with_body {
                pieces.put(response.body);
            }
        }
        pieces.finish();
        self.written.set(self.written.get() + 1);
    }
}

impl Encoder<'_> {
    /// Appends the interim `100 Continue` (RFC 9110 15.2.1) to `out`: a
    /// status line and the blank line, nothing else (a 1xx response has no
    /// content and needs no `Date`, 6.6.1). It tells a client that sent
    /// `Expect: 100-continue` to send the body its handler will read.
    pub fn encode_continue(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
}

/// `n` in decimal, written at the end of `buf`. Inlined, not itoa's call:
/// for a body whose length is known at compile time (`/plaintext`'s) the
/// digits are then a constant (docs/design.md, "Write batching and
/// response composition").
#[inline(always)]
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// `total + length`, for the sum of a response's pieces.
///
/// # Panics
/// Where the sum would overflow: pieces that cannot all be in memory.
#[inline(always)]
fn add_length(total: usize, length: usize) -> usize {
    match total.checked_add(length) {
        Some(sum) => sum,
        None => panic!("a response's pieces add up to more than memory holds"),
    }
}

/// Appends a response's pieces to the output buffer after one capacity
/// check for all of them. `Vec::extend_from_slice` checks the capacity and
/// stores the length once per piece, a dozen times per response; this
/// `unsafe` writer's measured saving is in docs/design.md ("Write batching
/// and response composition").
struct Pieces<'v> {
    out: &'v mut Vec<u8>,
    /// Where `out`'s spare capacity starts, taken once: read back from the
    /// vector per piece, its pointer and length were two loads each time,
    /// since a byte store may alias them as far as the compiler knows.
    spare: *mut u8,
    /// Bytes written past `out.len()`.
    written: usize,
    /// Bytes reserved past `out.len()`: what all pieces add up to.
    reserved: usize,
}

impl<'v> Pieces<'v> {
    #[inline(always)]
    fn reserve(out: &'v mut Vec<u8>, total: usize) -> Pieces<'v> {
        out.reserve(total);
        // From `as_mut_ptr`, as `put_short` writes and not through a
        // reference to the spare capacity: pointers taken from it stay
        // valid when used together (its documented aliasing guarantee).
        // SAFETY: `len()` is within the allocation (at most its capacity).
        let spare = unsafe { out.as_mut_ptr().add(out.len()) };
        Pieces {
            out,
            spare,
            written: 0,
            reserved: total,
        }
    }

    /// # Safety
    /// The pieces put so far and this one add up to at most the `total`
    /// given to `reserve`.
    #[inline(always)]
    unsafe fn put(&mut self, piece: &[u8]) {
        debug_assert!(self.written + piece.len() <= self.reserved);
        // SAFETY: `reserve` made room for `reserved` bytes past `len()`,
        // where `spare` points (the vector is borrowed by `self`, so it has
        // not moved since), and the caller keeps this copy inside that room;
        // `piece` is a borrowed slice, so it cannot overlap the spare capacity.
        unsafe {
            let at = self.spare.add(self.written);
            std::ptr::copy_nonoverlapping(piece.as_ptr(), at, piece.len());
        }
        self.written += piece.len();
    }

    /// A piece of a few bytes whose length is known only at run time (the
    /// digits of a rendered body's length): copied byte by byte, where
    /// `put` would call `memcpy`. Through the vector, not `spare`: a byte
    /// loop over a pointer the compiler holds in a register is turned back
    /// into a `memcpy` call.
    ///
    /// # Safety
    /// As for [`put`](Pieces::put).
    #[inline(always)]
    unsafe fn put_short(&mut self, piece: &[u8]) {
        debug_assert!(self.written + piece.len() <= self.reserved);
        for &b in piece {
            // SAFETY: as in `put`: within the room the caller promised.
            unsafe { *self.out.as_mut_ptr().add(self.out.len() + self.written) = b };
            self.written += 1;
        }
    }

    #[inline(always)]
    fn finish(self) {
        // SAFETY: the first `written` bytes past `len()` were initialised by
        // `put`, within the capacity `reserve` made.
        unsafe { self.out.set_len(self.out.len() + self.written) };
    }
}

/// A fixed stack buffer for a short body a handler renders per request
/// (the `/json` message, a sum, a delay). serde_json writes a value in many
/// small pieces (`{`, `"`, a string, ...): into `&mut [u8]` each piece
/// became a `memcpy`/`memset` call of a variable length; here a piece is a
/// bounds check and a copy the compiler sees whole. Bodies of any length
/// are rendered into the worker's growable buffer instead
/// ([`Buffers::large`](crate::pipeline::Buffers)).
pub struct SmallBody {
    bytes: [u8; SmallBody::CAPACITY],
    len: usize,
}

impl SmallBody {
    pub const CAPACITY: usize = 64;

    #[inline(always)]
    pub fn new() -> SmallBody {
        SmallBody {
            bytes: [0; SmallBody::CAPACITY],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends `data`, which the caller knows fits (a number's digits).
    ///
    /// # Panics
    /// When it does not: a handler that renders more belongs in the large
    /// buffer.
    #[inline]
    pub fn put(&mut self, data: &[u8]) {
        if io::Write::write_all(self, data).is_err() {
            panic!("{} bytes do not fit in a SmallBody", self.len + data.len());
        }
    }
}

impl Default for SmallBody {
    fn default() -> SmallBody {
        SmallBody::new()
    }
}

impl io::Write for SmallBody {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data).map(|()| data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let end = self.len + data.len();
        let Some(free) = self.bytes.get_mut(self.len..end) else {
            return Err(io::ErrorKind::WriteZero.into());
        };
        free.copy_from_slice(data);
        self.len = end;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LINE_LEN] = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    fn encode(response: &Response<'_>, persistence: Persistence, with_body: bool) -> String {
        let server = ServerField::new("chopin");
        let encoder = Encoder::new(&server, DATE);
        let mut out = Vec::new();
        encoder.encode(&mut out, response, persistence, with_body);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_in_order_then_length_and_date() {
        let response = Response::new(Status::Ok)
            .header(CONTENT_TYPE, b"text/plain")
            .header(HeaderName::new(b"X-A: "), b"1")
            .body(b"Hello, World!");
        assert_eq!(
            encode(&response, Persistence::Default, true),
            "HTTP/1.1 200 OK\r\nServer: chopin\r\nContent-Type: text/plain\r\nX-A: 1\r\nContent-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nHello, World!"
        );
    }

    #[test]
    fn connection_field_follows_server() {
        let response = Response::new(Status::Ok).body(b"ok");
        assert_eq!(
            encode(&response, Persistence::Close, true),
            "HTTP/1.1 200 OK\r\nServer: chopin\r\nConnection: close\r\nContent-Length: 2\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nok"
        );
        assert_eq!(
            encode(&response, Persistence::KeepAlive, true),
            "HTTP/1.1 200 OK\r\nServer: chopin\r\nConnection: keep-alive\r\nContent-Length: 2\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nok"
        );
    }

    #[test]
    fn head_keeps_the_length_and_drops_the_body() {
        let response = Response::new(Status::Ok).body(b"Hello, World!");
        assert_eq!(
            encode(&response, Persistence::Default, false),
            "HTTP/1.1 200 OK\r\nServer: chopin\r\nContent-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
        );
    }

    #[test]
    fn every_status_line() {
        for (status, line) in [
            (Status::Ok, "200 OK"),
            (Status::BadRequest, "400 Bad Request"),
            (Status::NotFound, "404 Not Found"),
            (Status::MethodNotAllowed, "405 Method Not Allowed"),
            (Status::ContentTooLarge, "413 Content Too Large"),
            (Status::UriTooLong, "414 URI Too Long"),
            (Status::HeadTooLarge, "431 Request Header Fields Too Large"),
            (Status::NotImplemented, "501 Not Implemented"),
            (
                Status::VersionNotSupported,
                "505 HTTP Version Not Supported",
            ),
        ] {
            assert_eq!(
                encode(&Response::new(status), Persistence::Close, true),
                format!("HTTP/1.1 {line}\r\nServer: chopin\r\nConnection: close\r\nContent-Length: 0\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n")
            );
        }
    }

    /// Every shape of response appended after bytes already in the
    /// buffer, against the same bytes written by `format!`: the encoder
    /// copies without a bound check per piece, so its total must count
    /// each piece exactly (debug builds also check every piece).
    #[test]
    fn every_shape_appends_exactly_its_bytes() {
        let server = ServerField::new("a-longer-server-name/1.0");
        let encoder = Encoder::new(&server, DATE);
        let values: [&[u8]; MAX_HANDLER_FIELDS] = [b"text/plain", b"", b"1", b"GET, HEAD"];
        for count in 0..=MAX_HANDLER_FIELDS {
            for body_len in [0, 1, 9, 10, 99, 100, 12_345] {
                let body = vec![b'b'; body_len];
                for (persistence, connection) in [
                    (Persistence::Default, ""),
                    (Persistence::KeepAlive, "Connection: keep-alive\r\n"),
                    (Persistence::Close, "Connection: close\r\n"),
                ] {
                    for with_body in [true, false] {
                        let mut response = Response::new(Status::NotFound).body(&body);
                        let mut fields = String::new();
                        for value in &values[..count] {
                            response = response.header(HeaderName::new(b"X-Field: "), value);
                            fields +=
                                &format!("X-Field: {}\r\n", std::str::from_utf8(value).unwrap());
                        }
                        let mut out = b"earlier".to_vec();
                        out.shrink_to_fit();
                        encoder.encode(&mut out, &response, persistence, with_body);
                        let shown = if with_body {
                            String::from_utf8(body.clone()).unwrap()
                        } else {
                            String::new()
                        };
                        assert_eq!(
                            String::from_utf8(out).unwrap(),
                            format!("earlierHTTP/1.1 404 Not Found\r\nServer: a-longer-server-name/1.0\r\n{connection}{fields}Content-Length: {body_len}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n{shown}"),
                            "{count} fields, body {body_len}, {persistence:?}, with_body {with_body}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "more than memory holds")]
    fn a_sum_of_pieces_that_would_overflow_panics() {
        add_length(usize::MAX - 1, 2);
    }

    #[test]
    #[should_panic(expected = "at most 4 fields")]
    fn too_many_fields_is_a_handler_bug() {
        let mut response = Response::new(Status::Ok);
        for _ in 0..=MAX_HANDLER_FIELDS {
            response = response.header(ALLOW, b"GET");
        }
    }

    #[test]
    fn lengths_in_decimal() {
        for n in [0, 7, 10, 13, 99, 100, 65_535, usize::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn header_name_without_its_separator() {
        assert_eq!(CONTENT_TYPE.as_bytes(), b"Content-Type");
    }

    #[test]
    fn small_body_refuses_overflow() {
        use std::io::Write;
        let mut buffer = SmallBody::new();
        buffer.write_all(&[b'x'; SmallBody::CAPACITY]).unwrap();
        assert!(buffer.write_all(b"y").is_err());
        assert_eq!(buffer.as_bytes().len(), SmallBody::CAPACITY);
    }
}
