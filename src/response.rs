//! Writing responses into the worker's output buffer.
//!
//! TFB's rules allow static header *fragments* but not stored whole
//! responses: every response here is composed field by field, with its
//! `Content-Length` formatted per response (itoa) and the JSON body
//! serialized per request by serde_json from a fresh [`Message`].

use std::io;

use serde::Serialize;

use crate::date::DATE_LINE_LEN;

/// The JSON test's object, built fresh for every request.
#[derive(Serialize)]
pub struct Message {
    pub message: &'static str,
}

pub const PLAINTEXT_BODY: &[u8] = b"Hello, World!";

/// Statuses this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    HeadTooLarge,
    UriTooLong,
    NotImplemented,
    VersionNotSupported,
}

impl Status {
    fn line(self) -> &'static [u8] {
        match self {
            Status::Ok => b"HTTP/1.1 200 OK\r\n",
            Status::BadRequest => b"HTTP/1.1 400 Bad Request\r\n",
            Status::NotFound => b"HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\n",
            Status::HeadTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::UriTooLong => b"HTTP/1.1 414 URI Too Long\r\n",
            Status::NotImplemented => b"HTTP/1.1 501 Not Implemented\r\n",
            Status::VersionNotSupported => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
        }
    }
}

/// What the response says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 keep-alive is the default: no field needed.
    Default,
    /// An HTTP/1.0 client that asked to keep the connection is told it is kept.
    KeepAlive,
    /// The server closes the connection after this response.
    Close,
}

impl Persistence {
    fn field(self) -> &'static [u8] {
        match self {
            Persistence::Default => b"",
            Persistence::KeepAlive => b"Connection: keep-alive\r\n",
            Persistence::Close => b"Connection: close\r\n",
        }
    }
}

/// The static header fragments, rendered once per server from
/// `--server-name`. TFB allows precomputed fragments (status line, `Server`,
/// `Content-Type`) but no stored response: what varies — `Connection`,
/// `Content-Length`, `Date` and the JSON body — is written per response.
pub struct Fragments {
    /// `Server: <name>\r\n`
    server: Box<[u8]>,
    /// Status line, `Server` and `Content-Type` of a kept-alive 200, up to
    /// the `Content-Length` value: one copy instead of four.
    plaintext_ok: Box<[u8]>,
    json_ok: Box<[u8]>,
}

const PLAINTEXT_TYPE: &[u8] = b"Content-Type: text/plain\r\nContent-Length: ";
const JSON_TYPE: &[u8] = b"Content-Type: application/json\r\nContent-Length: ";

impl Fragments {
    pub fn new(server_name: &str) -> Fragments {
        let server = format!("Server: {server_name}\r\n").into_bytes();
        let ok = |content_type: &[u8]| [Status::Ok.line(), &server, content_type].concat();
        Fragments {
            plaintext_ok: ok(PLAINTEXT_TYPE).into_boxed_slice(),
            json_ok: ok(JSON_TYPE).into_boxed_slice(),
            server: server.into_boxed_slice(),
        }
    }
}

/// What every response of one batch shares: the server's fragments and the
/// worker's current `Date` line.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    pub fragments: &'a Fragments,
    /// `Date: <IMF-fixdate>\r\n`
    pub date: &'a [u8; DATE_LINE_LEN],
}

impl Fields<'_> {
    /// `/plaintext`: static body bytes, everything else composed here.
    /// Always inlined, as is the pipeline's `Answer::write` that calls it:
    /// with two callers (the hot loop and the answer deferred to a chunked
    /// body's end) the compiler made either one a call, at 15 instructions
    /// per pipelined `/plaintext` request (843 against 827, `scripts/bench
    /// --profile`).
    #[inline(always)]
    pub fn plaintext(&self, out: &mut Vec<u8>, with_body: bool, persistence: Persistence) {
        self.ok_head(
            out,
            &self.fragments.plaintext_ok,
            PLAINTEXT_TYPE,
            persistence,
            PLAINTEXT_BODY.len(),
        );
        if with_body {
            out.extend_from_slice(PLAINTEXT_BODY);
        }
    }

    /// `/json`: a fresh `Message`, serialized by serde_json for this request.
    pub fn json(&self, out: &mut Vec<u8>, with_body: bool, persistence: Persistence) {
        // Serialized first, on the stack: the length precedes the body.
        let mut body = StackBuffer::new();
        let message = Message {
            message: "Hello, World!",
        };
        serde_json::to_writer(&mut body, &message).expect("the message fits in 64 bytes");
        self.ok_head(
            out,
            &self.fragments.json_ok,
            JSON_TYPE,
            persistence,
            body.len,
        );
        if with_body {
            out.extend_from_slice(body.as_bytes());
        }
    }

    /// A body-less answer: 404, 405 (with `Allow`) and the error statuses.
    pub fn empty(&self, out: &mut Vec<u8>, status: Status, persistence: Persistence) {
        let allow: &[u8] = if status == Status::MethodNotAllowed {
            b"Allow: GET, HEAD\r\nContent-Length: "
        } else {
            b"Content-Length: "
        };
        self.head(out, status, persistence, allow, 0);
    }

    /// A 200's head: the fused fragment when no `Connection` field is
    /// needed (every kept-alive HTTP/1.1 exchange), else field by field.
    fn ok_head(
        &self,
        out: &mut Vec<u8>,
        fused: &[u8],
        content_type: &[u8],
        persistence: Persistence,
        content_length: usize,
    ) {
        if persistence == Persistence::Default {
            out.extend_from_slice(fused);
            self.length_and_date(out, content_length);
        } else {
            self.head(out, Status::Ok, persistence, content_type, content_length);
        }
    }

    /// Status line, `Server`, `Connection` when needed, `extra` (which ends
    /// with `Content-Length: `), the length, `Date` and the blank line.
    fn head(
        &self,
        out: &mut Vec<u8>,
        status: Status,
        persistence: Persistence,
        extra: &[u8],
        content_length: usize,
    ) {
        out.extend_from_slice(status.line());
        out.extend_from_slice(&self.fragments.server);
        if persistence != Persistence::Default {
            out.extend_from_slice(persistence.field());
        }
        out.extend_from_slice(extra);
        self.length_and_date(out, content_length);
    }

    /// The `Content-Length` value (itoa, per response), `Date`, blank line.
    fn length_and_date(&self, out: &mut Vec<u8>, content_length: usize) {
        let mut digits = itoa::Buffer::new();
        // A few bytes: pushed one by one rather than by a `memcpy` call.
        for &digit in digits.format(content_length).as_bytes() {
            out.push(digit);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.date);
        out.extend_from_slice(b"\r\n");
    }
}

/// A fixed stack buffer for the JSON body. serde_json writes a value in
/// many small pieces (`{`, `"`, a string, ...): into `&mut [u8]` each piece
/// became a `memcpy`/`memset` call of a variable length; here a piece is a
/// bounds check and a copy the compiler sees whole (five `memset` calls
/// fewer per `/json` response; with the fused head and the cheaper `Date`
/// check, 156 instructions fewer, `scripts/bench --profile`).
struct StackBuffer {
    bytes: [u8; 64],
    len: usize,
}

impl StackBuffer {
    fn new() -> StackBuffer {
        StackBuffer {
            bytes: [0; 64],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl io::Write for StackBuffer {
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

    fn fields(fragments: &Fragments) -> Fields<'_> {
        Fields {
            fragments,
            date: DATE,
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn plaintext_exact_bytes() {
        let server = Fragments::new("chopin");
        let mut out = Vec::new();
        fields(&server).plaintext(&mut out, true, Persistence::Default);
        assert_eq!(
            text(out),
            "HTTP/1.1 200 OK\r\nServer: chopin\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nHello, World!"
        );
    }

    #[test]
    fn json_exact_bytes_and_head() {
        let server = Fragments::new("x");
        let mut out = Vec::new();
        fields(&server).json(&mut out, true, Persistence::Close);
        assert_eq!(
            text(out),
            "HTTP/1.1 200 OK\r\nServer: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 27\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n{\"message\":\"Hello, World!\"}"
        );
        let mut out = Vec::new();
        fields(&server).json(&mut out, true, Persistence::Default);
        assert_eq!(
            text(out),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Type: application/json\r\nContent-Length: 27\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n{\"message\":\"Hello, World!\"}"
        );
        let mut head = Vec::new();
        fields(&server).json(&mut head, false, Persistence::KeepAlive);
        assert!(text(head)
            .ends_with("Content-Length: 27\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    }

    #[test]
    fn method_not_allowed_has_allow() {
        let server = Fragments::new("chopin");
        let mut out = Vec::new();
        fields(&server).empty(&mut out, Status::MethodNotAllowed, Persistence::Default);
        assert_eq!(
            text(out),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: chopin\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
        );
    }
}
