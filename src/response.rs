//! Writing responses into the worker's output buffer.
//!
//! TFB's rules allow static header *fragments* but not stored whole
//! responses: every response here is composed field by field, with its
//! `Content-Length` formatted per response (itoa) and the JSON body
//! serialized per request by serde_json from a fresh [`Message`].

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

/// The per-worker pieces every response shares: the `Server` line, built
/// once from `--server-name`, and the current `Date` line.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    /// `Server: <name>\r\n`
    pub server: &'a [u8],
    /// `Date: <IMF-fixdate>\r\n`
    pub date: &'a [u8; DATE_LINE_LEN],
}

/// Renders the `Server: <name>\r\n` fragment once per server.
pub fn server_line(name: &str) -> Box<[u8]> {
    format!("Server: {name}\r\n")
        .into_bytes()
        .into_boxed_slice()
}

impl Fields<'_> {
    /// `/plaintext`: static body bytes, everything else composed here.
    pub fn plaintext(&self, out: &mut Vec<u8>, with_body: bool, persistence: Persistence) {
        self.head(
            out,
            Status::Ok,
            persistence,
            b"Content-Type: text/plain\r\nContent-Length: ",
            PLAINTEXT_BODY.len(),
        );
        if with_body {
            out.extend_from_slice(PLAINTEXT_BODY);
        }
    }

    /// `/json`: a fresh `Message`, serialized by serde_json for this request.
    pub fn json(&self, out: &mut Vec<u8>, with_body: bool, persistence: Persistence) {
        // Serialize onto the stack first: the length must precede the body.
        let mut body = [0u8; 64];
        let mut cursor = &mut body[..];
        let message = Message {
            message: "Hello, World!",
        };
        serde_json::to_writer(&mut cursor, &message).expect("the message fits in 64 bytes");
        let len = 64 - cursor.len();
        self.head(
            out,
            Status::Ok,
            persistence,
            b"Content-Type: application/json\r\nContent-Length: ",
            len,
        );
        if with_body {
            out.extend_from_slice(&body[..len]);
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
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(status.line());
        out.extend_from_slice(self.server);
        if persistence != Persistence::Default {
            out.extend_from_slice(persistence.field());
        }
        out.extend_from_slice(extra);
        out.extend_from_slice(digits.format(content_length).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.date);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LINE_LEN] = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    fn fields(server: &[u8]) -> Fields<'_> {
        Fields { server, date: DATE }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn plaintext_exact_bytes() {
        let server = server_line("chopin");
        let mut out = Vec::new();
        fields(&server).plaintext(&mut out, true, Persistence::Default);
        assert_eq!(
            text(out),
            "HTTP/1.1 200 OK\r\nServer: chopin\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\nHello, World!"
        );
    }

    #[test]
    fn json_exact_bytes_and_head() {
        let server = server_line("x");
        let mut out = Vec::new();
        fields(&server).json(&mut out, true, Persistence::Close);
        assert_eq!(
            text(out),
            "HTTP/1.1 200 OK\r\nServer: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 27\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n{\"message\":\"Hello, World!\"}"
        );
        let mut head = Vec::new();
        fields(&server).json(&mut head, false, Persistence::KeepAlive);
        assert!(text(head)
            .ends_with("Content-Length: 27\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    }

    #[test]
    fn method_not_allowed_has_allow() {
        let server = server_line("chopin");
        let mut out = Vec::new();
        fields(&server).empty(&mut out, Status::MethodNotAllowed, Persistence::Default);
        assert_eq!(
            text(out),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: chopin\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
        );
    }
}
