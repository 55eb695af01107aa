//! The tests' one client: a blocking connection that sends bytes as given
//! and reads answers through [`super::response`], over any transport (a
//! `TcpStream` here, rustls' client stream in tests/tls.rs), and the one
//! reader that waits for the server to close.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::response::{self, Response};
use super::{get, PLAINTEXT_BODY};

/// How long any single read may block before the test fails instead of hanging.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the server gets to close a connection it should close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads whole responses from `io`, keeping what arrived past the last
/// one for the next. The read timeout is the transport's own.
pub struct Reader<R> {
    io: R,
    pending: Vec<u8>,
}

impl<R: Read> Reader<R> {
    pub fn new(io: R) -> Reader<R> {
        Reader {
            io,
            pending: Vec::new(),
        }
    }

    pub fn get_ref(&self) -> &R {
        &self.io
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.io
    }

    /// Bytes that arrived and are not yet part of a response read.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Takes [`Reader::pending`], leaving it empty.
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// Reads one response; `head` says it answers HEAD (no body). Panics,
    /// showing what arrived, on a timeout, an early close or a malformed
    /// response.
    pub fn response(&mut self, head: bool) -> Response {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match response::parse(&self.pending, head) {
                Ok(Some((response, used))) => {
                    self.pending.drain(..used);
                    return response;
                }
                Ok(None) => {}
                Err(e) => panic!("{e}; got {:?}", String::from_utf8_lossy(&self.pending)),
            }
            match self.io.read(&mut chunk) {
                Ok(0) => panic!(
                    "the connection closed before a whole response; got {:?}",
                    String::from_utf8_lossy(&self.pending)
                ),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!(
                    "reading a response ({e}); got so far: {:?}",
                    String::from_utf8_lossy(&self.pending)
                ),
            }
        }
    }
}

/// A blocking client connection with read and write timeouts.
pub struct Conn {
    pub stream: TcpStream,
    reader: Reader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = connect(addr);
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let reader = Reader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .unwrap_or_else(|e| panic!("write failed: {e}"));
    }

    /// Reads one response to a request that is not HEAD.
    pub fn response(&mut self) -> Response {
        self.reader.response(false)
    }

    /// Reads one response to a HEAD request: no body, whatever the length says.
    pub fn head_response(&mut self) -> Response {
        self.reader.response(true)
    }

    /// Sends `raw` and reads one (non-HEAD) response.
    pub fn roundtrip(&mut self, raw: impl AsRef<[u8]>) -> Response {
        self.send(raw);
        self.response()
    }

    /// Asserts the connection works: a GET /plaintext is answered with 200.
    pub fn assert_alive(&mut self) {
        let resp = self.roundtrip(get("/plaintext"));
        assert_eq!(resp.status, 200, "{resp}");
        assert_eq!(resp.body, PLAINTEXT_BODY, "{resp}");
    }

    /// Reads until the server closes the connection; returns every byte that
    /// arrived before the close. A reset counts as a close (it can only come
    /// after what we already read). Panics if the server keeps it open for
    /// longer than [`CLOSE_TIMEOUT`].
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut bytes = self.reader.take_pending();
        let (rest, how, _) = read_until_close(&mut self.stream, CLOSE_TIMEOUT);
        bytes.extend_from_slice(&rest);
        match how {
            Ok(()) => bytes,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => bytes,
            Err(e) if e.kind() == ErrorKind::TimedOut => panic!(
                "the server did not close the connection within {CLOSE_TIMEOUT:?}; \
                 got {:?} meanwhile",
                String::from_utf8_lossy(&bytes)
            ),
            Err(e) => panic!("read failed while waiting for the close: {e}"),
        }
    }

    /// Asserts the server closes the connection without sending anything more.
    pub fn expect_close(&mut self) {
        let extra = self.read_to_close();
        assert!(
            extra.is_empty(),
            "expected a close and nothing else, got {:?}",
            String::from_utf8_lossy(&extra)
        );
    }

    /// Asserts nothing arrives within `wait` and the connection is not closed.
    pub fn expect_silence(&mut self, wait: Duration) {
        assert!(
            self.reader.pending().is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(self.reader.pending())
        );
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 1024];
        let result = self.stream.read(&mut buf);
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        match result {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Closes our sending side (the server then sees end of input).
    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }
}

/// A blocking TCP connection to `addr` with Nagle off, so that split writes
/// reach the server split.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads until the server closes (EOF or an error such as a reset) or
/// `timeout` passes (`ErrorKind::TimedOut`); returns the bytes, how it ended
/// and when.
pub fn read_until_close(
    stream: &mut TcpStream,
    timeout: Duration,
) -> (Vec<u8>, io::Result<()>, Instant) {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => break Err(e),
        }
    };
    (buf, ended, Instant::now())
}

/// Closed by the server: EOF or a reset, not a timeout.
pub fn assert_closed(how: &io::Result<()>, what: &str) {
    match how {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ) => {}
        Err(e) => panic!("{what}: not closed by the server ({e})"),
    }
}
