//! A small request vocabulary whose answers all differ, for pipelined
//! streams whose every answer and its order can be checked: what the
//! hostile and heavy clients send.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::response::parse;
use super::{JSON_BODY, PLAINTEXT_BODY};

/// The requests these tests send; each has exactly one expected response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Json,
    NotFound,
    HeadPlain,
    /// `/json` with `Connection: close`: the last request of a stream.
    JsonClose,
}

impl Kind {
    pub fn request(self) -> &'static [u8] {
        match self {
            Kind::Plain => b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
            Kind::Json => b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n",
            Kind::NotFound => b"GET /x?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
            Kind::HeadPlain => b"HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
            Kind::JsonClose => b"GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        }
    }

    /// (status, body) this request must get.
    pub fn expected(self) -> (u16, &'static [u8]) {
        match self {
            Kind::Plain => (200, PLAINTEXT_BODY),
            Kind::Json | Kind::JsonClose => (200, JSON_BODY),
            Kind::NotFound => (404, b""),
            Kind::HeadPlain => (200, b""),
        }
    }
}

/// A pipelined mix whose four answers all differ, so order is checkable.
pub const MIX: [Kind; 4] = [Kind::Plain, Kind::Json, Kind::NotFound, Kind::HeadPlain];

/// Checks that `buf` is exactly the answers to `kinds`, in order, whole,
/// with nothing before, between or after them.
pub fn check_exact(buf: &[u8], kinds: &[Kind]) {
    let mut pos = 0;
    for (i, &kind) in kinds.iter().enumerate() {
        let (resp, used) = parse(&buf[pos..], kind == Kind::HeadPlain)
            .unwrap_or_else(|e| panic!("response {i} of {}: {e}", kinds.len()))
            .unwrap_or_else(|| {
                panic!(
                    "response {i} of {} ({kind:?}) missing or truncated: {} bytes left",
                    kinds.len(),
                    buf.len() - pos
                )
            });
        let (status, body) = kind.expected();
        assert_eq!(
            (resp.status, &resp.body[..]),
            (status, body),
            "response {i} of {} answers {kind:?}",
            kinds.len()
        );
        assert_eq!(resp.closes(), kind == Kind::JsonClose, "response {i}");
        pos += used;
    }
    assert_eq!(
        pos,
        buf.len(),
        "{} bytes after the last response",
        buf.len() - pos
    );
}

pub fn concat(kinds: &[Kind]) -> Vec<u8> {
    kinds
        .iter()
        .flat_map(|k| k.request().iter().copied())
        .collect()
}

/// Sends `kinds` pipelined in one write and reads exactly their answers.
pub fn exchange(stream: &mut TcpStream, kinds: &[Kind]) {
    stream.write_all(&concat(kinds)).expect("write requests");
    let buf = read_answers(stream, kinds, Duration::from_secs(10));
    check_exact(&buf, kinds);
}

/// Reads until the answers to `kinds` are complete (`check_exact` then
/// verifies them); panics at `timeout`.
pub fn read_answers(stream: &mut TcpStream, kinds: &[Kind], timeout: Duration) -> Vec<u8> {
    read_answers_and_end(stream, kinds, timeout).0
}

/// [`read_answers`], and where the answers end in what it read: a client
/// that sent more meanwhile may have read the start of later answers too.
pub fn read_answers_and_end(
    stream: &mut TcpStream,
    kinds: &[Kind],
    timeout: Duration,
) -> (Vec<u8>, usize) {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut parsed = 0;
    let mut pos = 0;
    while parsed < kinds.len() {
        while parsed < kinds.len() {
            match parse(&buf[pos..], kinds[parsed] == Kind::HeadPlain) {
                Ok(Some((_, used))) => {
                    pos += used;
                    parsed += 1;
                }
                Ok(None) => break,
                Err(e) => panic!("response {parsed}: {e}"),
            }
        }
        if parsed == kinds.len() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out with {parsed} of {} answers",
            kinds.len()
        );
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => panic!("closed after {parsed} of {} answers", kinds.len()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read after {parsed} of {} answers: {e}", kinds.len()),
        }
    }
    (buf, pos)
}
