//! The sans-I/O core: bytes in, responses out.
//!
//! [`Pipeline::answer`] takes every byte a connection has received and not
//! yet consumed, appends the responses for every complete request in it to
//! the output buffer, and says how much input it used and whether the
//! connection must close. It never touches a socket, so unit tests, property
//! tests and the fuzzer drive it directly; `connection.rs` only moves bytes
//! between the socket and buffers around it.

use crate::chunked::{Chunked, Progress};
use crate::request::MAX_HEAD_BYTES;
use crate::request::{self, Body, Method, Parsed, Reject, Request, Route};
use crate::resources::{self, Exchange, WriteResponse, MAX_BODY_BYTES};
use crate::response::{BodyBuffer, Encoder, Persistence, Response, Status};

/// The protocol state one connection carries between reads: only the
/// request body being skipped, if any. Everything else about a request is
/// parsed and answered within one call.
#[derive(Debug, Default)]
pub struct Pipeline {
    skipping: Skipping,
}

#[derive(Debug, Default)]
enum Skipping {
    #[default]
    Nothing,
    /// A `Content-Length` body, this many bytes still to come. Its request
    /// is answered already: the length cannot be wrong.
    Length(u64),
    /// A chunked body. Its request is answered when the body ends, so that
    /// a body that turns out not to be chunked gets a 400 instead.
    Chunked(Chunked, Answer),
}

/// What [`Pipeline::answer`] did with its input.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered {
    /// Input bytes used: complete requests and skipped body bytes. The rest
    /// is the start of a request head, or of a chunk-size or trailer line,
    /// that is not complete yet.
    pub consumed: usize,
    /// The last response written says `Connection: close`; write the output
    /// and close. Bytes after the last answered request are ignored.
    pub close: bool,
}

impl Answered {
    /// All of `input` is used up: nothing after this answer is read.
    fn closing(input: &[u8]) -> Answered {
        Answered {
            consumed: input.len(),
            close: true,
        }
    }
}

impl Pipeline {
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Whether the connection is in a request body: an unconsumed remainder
    /// is then an unfinished chunk line, not a request head.
    pub fn in_body(&self) -> bool {
        !matches!(self.skipping, Skipping::Nothing)
    }

    /// Answers every complete request at the start of `input`, in order.
    pub fn answer(&mut self, input: &[u8], out: &mut Vec<u8>, encoder: &Encoder<'_>) -> Answered {
        let mut pos = 0;
        loop {
            if self.in_body() {
                match self.skip_body(&input[pos..], out, encoder) {
                    Progress::Done(used) => pos += used,
                    Progress::More(used) => {
                        pos += used;
                        break;
                    }
                    // `skip` never stops: only `decode`'s caller can.
                    Progress::Invalid | Progress::Stopped => return Answered::closing(input),
                }
            }
            // Empty lines (CRLF, or a bare LF) before a request line are
            // ignored (RFC 9112 2.2); consuming them here keeps a stray CRLF
            // after a request from looking like an unfinished head (and
            // timing the connection out). A CR without its LF is not an
            // empty line: it is left to the parser, which refuses it (400),
            // or, at the end of the input, waits for the byte after it.
            loop {
                match &input[pos..] {
                    [b'\n', ..] => pos += 1,
                    [b'\r', b'\n', ..] => pos += 2,
                    _ => break,
                }
            }
            if pos == input.len() {
                break;
            }
            let req = match request::parse(&input[pos..]) {
                Parsed::Complete(req) => req,
                Parsed::Partial => break,
                Parsed::Invalid(reject) => {
                    refuse(out, encoder, reject_status(reject));
                    return Answered::closing(input);
                }
            };
            if resources::reads_body(req.route, req.method, req.body) {
                // Rare (HttpArena's POST /baseline11): out of line.
                match self.answer_with_body(&req, &input[pos..], out, encoder) {
                    WithBody::Answered(used) => pos += used,
                    WithBody::Unfinished => break,
                    WithBody::Closed => return Answered::closing(input),
                }
                continue;
            }
            let head = &input[pos..pos + req.head_len];
            pos += req.head_len;
            let answer = Answer::to(&req, body_here(&req, &input[pos..]));
            match req.body {
                // A closing answer goes now: the body is never read.
                Body::Chunked if answer.persistence != Persistence::Close => {
                    self.skipping = Skipping::Chunked(Chunked::default(), answer);
                    continue;
                }
                Body::Chunked | Body::Length(0) => {}
                Body::Length(len) => self.skipping = Skipping::Length(len),
            }
            if answer.write(out, encoder, head, b"") == Persistence::Close {
                return Answered::closing(input);
            }
        }
        Answered {
            consumed: pos,
            close: false,
        }
    }

    /// Answers a request whose handler reads its body (the request starts
    /// `input`): once the whole body is here, and not before. Until then
    /// nothing of the request is consumed, so the connection keeps it as
    /// an unfinished request, under the header timeout like a head; a body
    /// is small ([`MAX_BODY_BYTES`]), and so is what is kept.
    #[inline(never)]
    fn answer_with_body(
        &mut self,
        req: &Request,
        input: &[u8],
        out: &mut Vec<u8>,
        encoder: &Encoder<'_>,
    ) -> WithBody {
        let (head, after) = input.split_at(req.head_len);
        let mut decoded = BodyBuffer::new();
        let (body, used) = match whole_body(req.body, after, &mut decoded) {
            Ok(Some(read)) => read,
            Ok(None) => return WithBody::Unfinished,
            Err(status) => {
                refuse(out, encoder, status);
                return WithBody::Closed;
            }
        };
        let answer = Answer::to(req, true);
        match answer.write(out, encoder, head, body) {
            Persistence::Close => WithBody::Closed,
            _ => WithBody::Answered(req.head_len + used),
        }
    }

    /// Skips what `input` holds of the body in progress, and writes the
    /// answer deferred to a chunked body's end (or, for one that is not
    /// chunked after all, a 400). Out of line: TFB's requests have no body,
    /// and the hot loop above stays one call smaller.
    #[inline(never)]
    fn skip_body(&mut self, input: &[u8], out: &mut Vec<u8>, encoder: &Encoder<'_>) -> Progress {
        let progress = match &mut self.skipping {
            Skipping::Nothing => Progress::Done(0),
            Skipping::Length(left) => {
                let skip = (*left).min(input.len() as u64);
                *left -= skip;
                match *left {
                    0 => Progress::Done(skip as usize),
                    _ => Progress::More(skip as usize),
                }
            }
            Skipping::Chunked(chunked, answer) => {
                let progress = chunked.skip(input);
                match progress {
                    // Only routes whose handlers read nothing of the head
                    // are answered after a skipped body (`reads_body`).
                    Progress::Done(_) => {
                        let kept = answer.write(out, encoder, b"", b"");
                        debug_assert_ne!(kept, Persistence::Close);
                    }
                    Progress::More(_) => {}
                    Progress::Invalid | Progress::Stopped => {
                        refuse(out, encoder, Status::BadRequest)
                    }
                }
                progress
            }
        };
        if let Progress::Done(_) = progress {
            self.skipping = Skipping::Nothing;
        }
        progress
    }
}

/// The response a valid request gets, decided from its head alone.
#[derive(Clone, Copy, Debug)]
struct Answer {
    route: Route,
    method: Method,
    persistence: Persistence,
}

/// Whether the whole body of `req` is in `after`, the bytes after its head:
/// a `Content-Length` body that has arrived; a chunked one is not known to
/// be whole until it has been decoded.
fn body_here(req: &Request, after: &[u8]) -> bool {
    match req.body {
        Body::Length(len) => len <= after.len() as u64,
        Body::Chunked => false,
    }
}

/// The body framed by `body` at the start of `after`, and the bytes its
/// framing took: `Ok(None)` while it is not all here; the status to refuse
/// it with when it is over [`MAX_BODY_BYTES`] (413) or not a chunked body
/// (400). A chunked body is decoded into `decoded`.
fn whole_body<'a>(
    body: Body,
    after: &'a [u8],
    decoded: &'a mut BodyBuffer,
) -> Result<Option<(&'a [u8], usize)>, Status> {
    match body {
        Body::Length(len) if len > MAX_BODY_BYTES as u64 => Err(Status::ContentTooLarge),
        Body::Length(len) => Ok(after.get(..len as usize).map(|body| (body, body.len()))),
        Body::Chunked => {
            let progress = Chunked::default().decode(after, &mut |data| {
                std::io::Write::write_all(&mut *decoded, data).is_ok()
            });
            match progress {
                Progress::Done(used) => Ok(Some((decoded.as_bytes(), used))),
                // The data would not fit in `decoded`.
                Progress::Stopped => Err(Status::ContentTooLarge),
                // A chunked body of many empty extensions or trailer lines
                // could grow without bound: its framing may take as many
                // bytes as a head.
                Progress::More(_) if after.len() >= MAX_HEAD_BYTES => Err(Status::ContentTooLarge),
                Progress::More(_) => Ok(None),
                Progress::Invalid => Err(Status::BadRequest),
            }
        }
    }
}

/// What [`Pipeline::answer_with_body`] did.
enum WithBody {
    /// Answered; the request and its body took this many bytes.
    Answered(usize),
    /// The body is not all here: nothing consumed.
    Unfinished,
    /// Answered (or refused) with `Connection: close`.
    Closed,
}

impl Answer {
    /// The answer to `req`; `body_here` says its body has arrived whole.
    fn to(req: &Request, body_here: bool) -> Answer {
        // A client that sent `Expect: 100-continue` may withhold the body it
        // announced until it hears from us (RFC 9110 10.1.1), so its next
        // bytes could be a request or the body: answer now and close rather
        // than guess, unless the body is already here.
        let keep_alive = req.keep_alive && (body_here || !req.expects_continue);
        let persistence = match (keep_alive, req.http10) {
            (false, _) => Persistence::Close,
            (true, true) => Persistence::KeepAlive,
            (true, false) => Persistence::Default,
        };
        Answer {
            route: req.route,
            method: req.method,
            persistence,
        }
    }

    /// Writes the answer: the resource's response (src/resources.rs),
    /// encoded. Always inlined, as is everything it calls: with two callers
    /// (the hot loop and the answer deferred to a chunked body's end) the
    /// compiler made it a call, dearer per pipelined `/plaintext` request
    /// (docs/design.md, "Write batching and response composition").
    ///
    /// `head` and `body` are the request's, as its handler sees them
    /// ([`Exchange`]). Returns what the response said of the connection:
    /// a handler's 400 closes it, as a parser's does ([`Status::closes`]).
    #[inline(always)]
    fn write(
        self,
        out: &mut Vec<u8>,
        encoder: &Encoder<'_>,
        head: &[u8],
        body: &[u8],
    ) -> Persistence {
        let exchange = Exchange {
            method: self.method,
            head,
            body,
        };
        let mut persistence = self.persistence;
        let write = Encode {
            out,
            encoder,
            persistence: &mut persistence,
            with_body: self.method != Method::Head,
        };
        resources::respond(&exchange, self.route, write);
        persistence
    }
}

/// Encodes the resource's response into the output buffer.
struct Encode<'o, 'e> {
    out: &'o mut Vec<u8>,
    encoder: &'o Encoder<'e>,
    /// The connection's state; set to `Close` by a status that closes.
    persistence: &'o mut Persistence,
    with_body: bool,
}

impl WriteResponse for Encode<'_, '_> {
    #[inline(always)]
    fn write(self, response: &Response<'_>) {
        if response.status().closes() {
            *self.persistence = Persistence::Close;
        }
        self.encoder
            .encode(self.out, response, *self.persistence, self.with_body);
    }
}

/// The answer to a request refused before it was understood: an empty
/// body, and the connection closes.
#[cold]
fn refuse(out: &mut Vec<u8>, encoder: &Encoder<'_>, status: Status) {
    encoder.encode(out, &Response::new(status), Persistence::Close, true);
}

fn reject_status(reject: Reject) -> Status {
    match reject {
        Reject::BadRequest => Status::BadRequest,
        Reject::HeadTooLarge => Status::HeadTooLarge,
        Reject::UriTooLong => Status::UriTooLong,
        Reject::NotImplemented => Status::NotImplemented,
        Reject::VersionNotSupported => Status::VersionNotSupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::ServerField;

    const DATE: &[u8; crate::date::DATE_LINE_LEN] = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
    const PLAIN: &str = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    const JSON: &str = "GET /json HTTP/1.1\r\nHost: a\r\n\r\n";

    fn run(pipeline: &mut Pipeline, input: &[u8]) -> (String, Answered) {
        let server = ServerField::new("chopin");
        let encoder = Encoder::new(&server, DATE);
        let mut out = Vec::new();
        let answered = pipeline.answer(input, &mut out, &encoder);
        (String::from_utf8(out).unwrap(), answered)
    }

    fn statuses(out: &str) -> Vec<&str> {
        out.match_indices("HTTP/1.1 ")
            .map(|(i, _)| &out[i + 9..i + 12])
            .collect()
    }

    #[test]
    fn sixteen_pipelined_requests() {
        let input = PLAIN.repeat(16);
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(out.matches("Hello, World!").count(), 16);
        assert_eq!(
            answered,
            Answered {
                consumed: input.len(),
                close: false
            }
        );
    }

    #[test]
    fn partial_request_is_left_unconsumed() {
        let input = format!("{PLAIN}{}", &JSON[..10]);
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200"]);
        assert_eq!(answered.consumed, PLAIN.len());
    }

    #[test]
    fn expect_continue_without_its_body_closes() {
        let head =
            "POST /json HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        let (out, answered) = run(&mut Pipeline::new(), head.as_bytes());
        assert_eq!(statuses(&out), ["405"]);
        assert!(out.contains("Connection: close\r\n"));
        assert!(answered.close);
        // With the body already here, the connection stays usable.
        let input = format!("{head}abc{JSON}");
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["405", "200"]);
        assert!(!answered.close);
    }

    #[test]
    fn stray_empty_lines_are_consumed() {
        let input = format!("\r\n{PLAIN}\r\n\r\n\n{JSON}\r\n");
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200", "200"]);
        assert_eq!(answered.consumed, input.len());
        // A lone CR may be the start of a CRLF: kept for the next read.
        let (out, answered) = run(&mut Pipeline::new(), format!("{PLAIN}\r").as_bytes());
        assert_eq!(statuses(&out), ["200"]);
        assert_eq!(answered.consumed, PLAIN.len());
        assert!(!answered.close);
    }

    #[test]
    fn a_bare_cr_before_a_request_is_refused() {
        for input in [
            format!("\r{PLAIN}"),
            format!("\r\r\n{PLAIN}"),
            format!("\n\r{PLAIN}"),
            format!("{PLAIN}\r{JSON}"),
        ] {
            let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
            let expected: &[&str] = if input.starts_with(PLAIN) {
                &["200", "400"]
            } else {
                &["400"]
            };
            assert_eq!(statuses(&out), expected, "{input:?}");
            assert!(answered.close, "{input:?}");
        }
    }

    #[test]
    fn body_is_skipped_across_calls() {
        let mut pipeline = Pipeline::new();
        let post = "POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234";
        let (out, answered) = run(&mut pipeline, post.as_bytes());
        assert_eq!(statuses(&out), ["405"]);
        assert_eq!(answered.consumed, post.len());
        assert!(pipeline.in_body());
        let rest = format!("56789{JSON}");
        let (out, answered) = run(&mut pipeline, rest.as_bytes());
        assert_eq!(statuses(&out), ["200"]);
        assert_eq!(answered.consumed, rest.len());
        assert!(!pipeline.in_body());
    }

    #[test]
    fn nothing_after_an_error_or_close_is_answered() {
        let input = format!("{PLAIN}GET /json HTTP/1.1\r\n\r\n{PLAIN}");
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200", "400"]);
        assert!(out.ends_with(
            "Connection: close\r\nContent-Length: 0\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
        ));
        assert!(answered.close);

        let input = format!("GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n{PLAIN}");
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200"]);
        assert!(out.contains("Connection: close\r\n"));
        assert!(answered.close);
    }

    #[test]
    fn http10_keep_alive_is_echoed() {
        let (out, answered) = run(
            &mut Pipeline::new(),
            b"GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        );
        assert!(out.contains("Connection: keep-alive\r\n"));
        assert!(!answered.close);
        let (out, answered) = run(&mut Pipeline::new(), b"GET /json HTTP/1.0\r\n\r\n");
        assert!(out.contains("Connection: close\r\n"));
        assert!(answered.close);
    }

    #[test]
    fn head_404_405() {
        let input = "HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\nDELETE /json HTTP/1.1\r\nHost: a\r\n\r\n";
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200", "404", "405"]);
        assert!(!out.contains("Hello"));
        assert!(out.contains("Content-Length: 13\r\n"));
        assert!(out.contains("Allow: GET, HEAD\r\n"));
        assert!(!answered.close);
    }

    /// The body a handler reads: answered once whole, whatever the split,
    /// and nothing consumed before.
    #[test]
    fn a_read_body_is_answered_once_whole() {
        for post in [
            "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n20",
            "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n2\r\n1;x\r\n0\r\n0\r\nT: 1\r\n\r\n",
        ] {
            let input = format!("{post}{JSON}");
            for cut in 0..input.len() {
                let mut pipeline = Pipeline::new();
                let (first, answered) = run(&mut pipeline, &input.as_bytes()[..cut]);
                assert!(!answered.close);
                let rest = &input[answered.consumed..];
                let (second, answered) = run(&mut pipeline, rest.as_bytes());
                let out = first + &second;
                assert_eq!(statuses(&out), ["200", "200"], "cut {cut}");
                assert!(out.contains("\r\n\r\n75HTTP/1.1 200"), "cut {cut}: {out}");
                assert_eq!(answered.consumed, rest.len());
            }
        }
    }

    #[test]
    fn a_body_over_the_bound_gets_413_and_close() {
        let long = "1".repeat(MAX_BODY_BYTES + 1);
        let chunked = format!(
            "POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{long}",
            long.len()
        );
        for input in [
            format!("POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", long.len()),
            chunked,
            // Framing without end (trailer lines): as many bytes as a head.
            format!(
                "POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n{}",
                "T: v\r\n".repeat(MAX_HEAD_BYTES / 4)
            ),
        ] {
            let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
            assert_eq!(statuses(&out), ["413"]);
            assert!(out.contains("Connection: close\r\n"));
            assert!(answered.close);
        }
        // At the bound, it is read.
        let input = format!(
            "POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nContent-Length: {0}\r\n\r\n{1}",
            MAX_BODY_BYTES,
            "0".repeat(MAX_BODY_BYTES)
        );
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200"]);
        assert!(out.ends_with("\r\n\r\n3"));
        assert!(!answered.close);
    }

    #[test]
    fn bad_numbers_get_400_and_close() {
        for input in [
            "GET /baseline11?a=1 HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
            "POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n2\r\nx",
        ] {
            let (out, answered) = run(&mut Pipeline::new(), format!("{input}{JSON}").as_bytes());
            assert_eq!(statuses(&out), ["400"], "{input:?}");
            assert!(out.contains("Connection: close\r\n"));
            assert!(answered.close);
        }
    }

    /// A GET's body there is skipped, as everywhere; a chunked one is read
    /// first, since the answer needs the head.
    #[test]
    fn other_bodies_on_the_baseline_route() {
        let input = format!(
            "GET /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n999\
             HEAD /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
             DELETE /baseline11 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{JSON}"
        );
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200", "200", "405", "200"]);
        assert!(
            out.contains("Content-Length: 1\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n3HTTP")
        );
        assert!(out.contains("Allow: GET, HEAD, POST\r\n"));
        assert_eq!(answered.consumed, input.len());
    }

    #[test]
    fn unknown_methods_get_501_on_any_route() {
        let input = "BREW /json HTTP/1.1\r\nHost: a\r\n\r\nget /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}HEAD /json HTTP/1.1\r\nHost: a\r\n\r\n";
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["501", "501", "200"]);
        assert!(!out.contains("Allow:"));
        assert!(!answered.close);
        assert_eq!(answered.consumed, input.len());
    }
}
