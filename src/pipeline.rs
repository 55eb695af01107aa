//! The sans-I/O core: bytes in, responses out.
//!
//! [`Pipeline::answer`] takes every byte a connection has received and not
//! yet consumed, appends the responses for every complete request in it to
//! the output buffer, and says how much input it used, whether the
//! connection must close, and when an answer it holds back falls due. It
//! never touches a socket or a clock of its own (the time comes in with the
//! [`Context`]), so unit tests, property tests and the fuzzer drive it
//! directly; `connection.rs` only moves bytes between the socket and
//! buffers around it.
//!
//! Three things outlive one call, each only while it lasts, so that a
//! connection between requests holds nothing:
//! * a body being skipped (the request is answered; its body is not kept),
//! * a body being read for its handler over several reads, with a copy of
//!   its head (dropped, buffers and all, once answered),
//! * answers held back: a `/delay` answer until its deadline, and every
//!   answer after it, since answers leave in request order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Instant;

use crate::chunked::{Chunked, Progress};
use crate::http::{Framing, Method};
use crate::request::{self, Parsed, Reject, Request, MAX_HEAD_BYTES};
use crate::resources::{self, Data, Exchange, Wait};
use crate::response::{Encoder, Persistence, Response, SmallBody, Status};
use crate::router::{self, WriteResponse};

/// Output one call writes before it stops answering and leaves the rest of
/// its input for the next call (after the connection has written what it
/// has): without it, 64 KiB of small requests for large answers (`GET
/// /json/50`, 8.4 KB each) would buffer some 18 MB for one connection.
pub const OUTPUT_BUDGET: usize = 256 * 1024;

/// The protocol state one connection carries between reads; see the
/// module's doc. Two words while nothing lasts.
#[derive(Debug, Default)]
pub struct Pipeline {
    body: InBody,
    held: Option<Box<Held>>,
}

#[derive(Debug, Default)]
enum InBody {
    #[default]
    Nothing,
    /// A `Content-Length` body no handler reads, this many bytes still to
    /// come. Its request is answered already: the length cannot be wrong.
    Skipping(u64),
    /// A chunked body no handler reads. Its answer, made when the head
    /// came, is written when the body ends, so that a body that turns out
    /// not to be chunked gets a 400 instead.
    SkippingChunked(Box<(Chunked, Deferred)>),
    /// A body its handler reads, arriving over several reads.
    Reading(Box<ReadingBody>),
}

/// An answer made before its request's body ended.
#[derive(Debug)]
enum Deferred {
    /// An answer that keeps the connection open (one that closes is
    /// written at once, the body never read): encoded again, from a copy
    /// of its head, when the body ends, so that its `Date` is the time it
    /// is written.
    Later {
        head: Vec<u8>,
        request: Request,
        persistence: Persistence,
    },
    /// A held answer ([`Wait`]) and when its wait started.
    Held(HeldAnswer),
}

/// A body being read for its handler.
#[derive(Debug)]
struct ReadingBody {
    /// A copy of the request's head, which the handler reads too.
    head: Vec<u8>,
    request: Request,
    /// Bytes still to come of a `Content-Length` body, or the chunked
    /// decoder's state.
    framing: Reading,
    /// The body so far, decoded.
    body: Vec<u8>,
    /// Framing bytes (chunk-size lines, CRLFs, trailers) used so far.
    framing_bytes: usize,
}

#[derive(Debug)]
enum Reading {
    Length(u64),
    Chunked(Chunked),
}

/// Answers held back, in request order: the first waits for its deadline,
/// and everything after it waits for it.
#[derive(Debug, Default)]
struct Held {
    waits: VecDeque<HeldAnswer>,
    /// Encoded answers that follow the first wait, in order; each wait's
    /// answer goes in at its `at`.
    bytes: Vec<u8>,
    /// The last held answer closes the connection: input after it is
    /// ignored, as after any closing answer.
    closes: bool,
}

thread_local! {
    /// Emptied [`Held`]s, kept for the next wait on this thread: a
    /// `/delay` request would otherwise allocate a `Held` and its queue and
    /// free both when it is answered, and at tens of thousands of waits a
    /// second glibc's malloc and free showed in the profile (perf, 4,096
    /// connections of `/delay/10`).
    // Boxed: the `Held` moves in and out of `Pipeline::held` as it is.
    #[allow(clippy::vec_box)]
    static SPARE_HELD: RefCell<Vec<Box<Held>>> = const { RefCell::new(Vec::new()) };
}

/// At most this many spare [`Held`]s per thread, each with at most
/// [`SPARE_HELD_BYTES`] of answers' room: what an idle worker keeps.
const SPARE_HELD_KEPT: usize = 256;
const SPARE_HELD_BYTES: usize = 4096;

impl Held {
    /// An empty `Held`, a spare one if this thread has one.
    fn take() -> Box<Held> {
        SPARE_HELD
            .try_with(|spare| spare.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Keeps `held`, emptied, for [`Held::take`], unless it grew large or
    /// enough are kept.
    fn give_back(mut held: Box<Held>) {
        if held.bytes.capacity() > SPARE_HELD_BYTES || held.waits.capacity() > 16 {
            return;
        }
        held.waits.clear();
        held.bytes.clear();
        held.closes = false;
        let _ = SPARE_HELD.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_HELD_KEPT {
                spare.push(held);
            }
        });
    }
}

#[derive(Clone, Copy, Debug)]
struct HeldAnswer {
    due: Instant,
    wait: Wait,
    persistence: Persistence,
    with_body: bool,
    /// Where in [`Held::bytes`] this answer goes.
    at: usize,
}

/// What [`Pipeline::answer`] did with its input.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered {
    /// Input bytes used: complete requests and body bytes. The rest is the
    /// start of a request head, or of a chunk-size or trailer line, that is
    /// not complete yet, or (with `more`) requests not answered yet.
    pub consumed: usize,
    /// The last response written says `Connection: close`; write the output
    /// and close. Bytes after the last answered request are ignored.
    pub close: bool,
    /// The call stopped at [`OUTPUT_BUDGET`]: the rest of the input may
    /// hold complete requests; call again, without reading, once the
    /// output is written.
    pub more: bool,
}

impl Answered {
    /// All of `input` is used up: nothing after this answer is read.
    fn closing(input: &[u8]) -> Answered {
        Answered {
            consumed: input.len(),
            close: true,
            more: false,
        }
    }
}

/// What one call needs besides its bytes.
pub struct Context<'a> {
    pub encoder: &'a Encoder<'a>,
    /// What the handlers serve from.
    pub data: &'a Data,
    /// Largest body read for a handler (`--max-body`).
    pub max_body: usize,
    /// The time of this call's read, taken once and only if a request
    /// needs it (a `/delay`'s wait starts when it has been read).
    now: std::cell::Cell<Option<Instant>>,
}

impl<'a> Context<'a> {
    pub fn new(encoder: &'a Encoder<'a>, data: &'a Data, max_body: usize) -> Context<'a> {
        Context {
            encoder,
            data,
            max_body,
            now: std::cell::Cell::new(None),
        }
    }

    /// The same context at a given time, for tests and the fuzzer.
    pub fn at(self, now: Instant) -> Context<'a> {
        self.now.set(Some(now));
        self
    }

    fn now(&self) -> Instant {
        match self.now.get() {
            Some(now) => now,
            None => {
                let now = Instant::now();
                self.now.set(Some(now));
                now
            }
        }
    }
}

/// The buffers one call writes: the output, and what handlers render into
/// or read bodies from. One set per worker thread, reused by every
/// connection it serves.
#[derive(Debug, Default)]
pub struct Buffers {
    pub out: Vec<u8>,
    /// Bodies of any length rendered per request ([`router::respond`]).
    pub large: Vec<u8>,
    /// A chunked body decoded within one call.
    pub decoded: Vec<u8>,
}

impl Buffers {
    /// Capacity each buffer keeps between calls; more, grown for a large
    /// body, is given back.
    pub const KEEP: usize = 64 * 1024;

    /// Gives back what a large body grew.
    pub fn shrink(&mut self) {
        for buffer in [&mut self.out, &mut self.large, &mut self.decoded] {
            if buffer.capacity() > Self::KEEP {
                buffer.clear();
                buffer.shrink_to(Self::KEEP);
            }
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
        !matches!(self.body, InBody::Nothing)
    }

    /// When the first held answer falls due, if one is held.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.as_ref()?.waits.front().map(|wait| wait.due)
    }

    /// Memory the held answers take: counted with the output the socket
    /// has not taken, against the same bound.
    pub fn held_bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |held| {
            held.bytes.len() + held.waits.len() * std::mem::size_of::<HeldAnswer>()
        })
    }

    /// Whether answers are held (the connection must not be counted idle).
    pub fn holds(&self) -> bool {
        self.held.is_some()
    }

    /// Answers every complete request at the start of `input`, in order,
    /// into `bufs.out`, after the held answers that are due by now.
    #[inline(always)]
    pub fn answer(&mut self, input: &[u8], bufs: &mut Buffers, cx: &Context<'_>) -> Answered {
        let start = bufs.out.len();
        if self.held.is_some() && self.release(bufs, cx) {
            return Answered::closing(input);
        }
        // Where, in `out`, answers start that must wait behind a held one.
        let mut hold_from = self.held.as_ref().map(|_| bufs.out.len());
        let answered = self.answer_requests(input, bufs, cx, start, &mut hold_from);
        let Some(from) = hold_from else {
            return answered;
        };
        let held = self.held.get_or_insert_with(Held::take);
        held.bytes.extend_from_slice(&bufs.out[from..]);
        bufs.out.truncate(from);
        if answered.close {
            held.closes = true;
        }
        Answered {
            close: false,
            consumed: if held.closes {
                input.len()
            } else {
                answered.consumed
            },
            ..answered
        }
    }

    /// Always inlined into its one caller: a call of its own cost every
    /// read a prologue, an epilogue and an [`Answered`] through memory.
    #[inline(always)]
    fn answer_requests(
        &mut self,
        input: &[u8],
        bufs: &mut Buffers,
        cx: &Context<'_>,
        start: usize,
        hold_from: &mut Option<usize>,
    ) -> Answered {
        if self.held.as_ref().is_some_and(|held| held.closes) {
            return Answered::closing(input);
        }
        let mut pos = 0;
        loop {
            if self.in_body() {
                match self.continue_body(&input[pos..], bufs, cx, hold_from) {
                    Progress::Done(used) => pos += used,
                    Progress::More(used) => {
                        pos += used;
                        break;
                    }
                    // Refused (the answer is written) or answered with close.
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
            if bufs.out.len() - start >= OUTPUT_BUDGET {
                return Answered {
                    consumed: pos,
                    close: false,
                    more: true,
                };
            }
            // Borrowed where the parser left it: moved out, the request
            // was copied field by field to a second place on the stack.
            let parsed = request::parse(&input[pos..]);
            let req = match &parsed {
                Parsed::Complete(req) => req,
                Parsed::Partial => break,
                &Parsed::Invalid(reject) => {
                    refuse(&mut bufs.out, cx.encoder, reject_status(reject));
                    return Answered::closing(input);
                }
            };
            let head = &input[pos..pos + req.head_len];
            let route = router::route(req.target, head);
            if route.resource.reads_body(req.method) {
                // Rare next to the benchmarks' GETs: out of line.
                match self.answer_with_body(req, route, &input[pos..], bufs, cx, hold_from) {
                    WithBody::Taken(used) => pos += used,
                    WithBody::Closed => return Answered::closing(input),
                }
                continue;
            }
            pos += req.head_len;
            let persistence = persistence(req, false);
            // Made in each branch that uses it: made once before them, its
            // fields were stored to the stack on every request.
            let answer = || Answer {
                req,
                head,
                route,
                body: b"",
                persistence,
            };
            match req.framing {
                // A closing answer goes now: the body is never read.
                Framing::Chunked if persistence != Persistence::Close => {
                    match self.defer(answer(), bufs, cx) {
                        Some(deferred) => {
                            self.body =
                                InBody::SkippingChunked(Box::new((Chunked::default(), deferred)));
                            continue;
                        }
                        None => return Answered::closing(input),
                    }
                }
                Framing::Chunked | Framing::Length(0) => {}
                Framing::Length(len) => self.body = InBody::Skipping(len),
            }
            if self.write(answer(), bufs, cx, hold_from) == Persistence::Close {
                return Answered::closing(input);
            }
        }
        Answered {
            consumed: pos,
            close: false,
            more: false,
        }
    }

    /// Writes `answer` into `bufs.out`, or holds it ([`Pipeline::hold`]);
    /// returns what it said of the connection.
    #[inline(always)]
    fn write(
        &mut self,
        answer: Answer<'_>,
        bufs: &mut Buffers,
        cx: &Context<'_>,
        hold_from: &mut Option<usize>,
    ) -> Persistence {
        match answer.encode(&mut bufs.out, &mut bufs.large, cx) {
            Encoded::Written(persistence) => persistence,
            Encoded::Held(wait, persistence, with_body) => {
                let due = cx.now() + wait.duration();
                let held = HeldAnswer {
                    due,
                    wait,
                    persistence,
                    with_body,
                    at: 0,
                };
                self.hold(held, &mut bufs.out, cx, hold_from);
                persistence
            }
        }
    }

    /// Holds `answer` until its deadline, and everything after it; one
    /// already due with nothing held before it is written at once
    /// (`/delay/0`).
    #[cold]
    fn hold(
        &mut self,
        mut answer: HeldAnswer,
        out: &mut Vec<u8>,
        cx: &Context<'_>,
        hold_from: &mut Option<usize>,
    ) {
        if hold_from.is_none() && answer.due <= cx.now() {
            write_held(&answer, out, cx.encoder);
            return;
        }
        let from = *hold_from.get_or_insert(out.len());
        let held = self.held.get_or_insert_with(Held::take);
        answer.at = held.bytes.len() + (out.len() - from);
        held.waits.push_back(answer);
    }

    /// Writes the held answers that are due, and what follows each up to
    /// the next one still waiting; returns whether the last one written
    /// closes the connection.
    #[cold]
    fn release(&mut self, bufs: &mut Buffers, cx: &Context<'_>) -> bool {
        let Some(held) = self.held.as_mut() else {
            return false;
        };
        let now = cx.now();
        let mut taken = 0;
        while let Some(&first) = held.waits.front() {
            if first.due > now {
                break;
            }
            held.waits.pop_front();
            write_held(&first, &mut bufs.out, cx.encoder);
            let next = held.waits.front().map_or(held.bytes.len(), |next| next.at);
            bufs.out.extend_from_slice(&held.bytes[first.at..next]);
            taken = next;
            if first.persistence == Persistence::Close {
                if let Some(held) = self.held.take() {
                    Held::give_back(held);
                }
                return true;
            }
        }
        if held.waits.is_empty() {
            let closes = held.closes;
            if let Some(held) = self.held.take() {
                Held::give_back(held);
            }
            return closes;
        }
        held.bytes.drain(..taken);
        for wait in &mut held.waits {
            wait.at -= taken;
        }
        false
    }

    /// The answer to a request whose body has not ended, made now and
    /// written when the body ends; `None` when it closes the connection (a
    /// handler's 400): it is then written now, and the body never read.
    #[cold]
    fn defer(
        &mut self,
        answer: Answer<'_>,
        bufs: &mut Buffers,
        cx: &Context<'_>,
    ) -> Option<Deferred> {
        let mut encoded = Vec::new();
        Some(match answer.encode(&mut encoded, &mut bufs.large, cx) {
            Encoded::Written(Persistence::Close) => {
                bufs.out.extend_from_slice(&encoded);
                return None;
            }
            Encoded::Written(_) => Deferred::Later {
                head: answer.head.to_vec(),
                request: *answer.req,
                persistence: answer.persistence,
            },
            Encoded::Held(wait, persistence, with_body) => Deferred::Held(HeldAnswer {
                due: cx.now() + wait.duration(),
                wait,
                persistence,
                with_body,
                at: 0,
            }),
        })
    }

    /// Answers a request whose handler reads its body (the request starts
    /// `input`): at once if the whole body is here, else once the rest has
    /// come ([`InBody::Reading`]). A `Content-Length` over `--max-body` is
    /// refused before any of the body is read.
    #[inline(never)]
    fn answer_with_body(
        &mut self,
        req: &Request,
        route: router::Route<'_>,
        input: &[u8],
        bufs: &mut Buffers,
        cx: &Context<'_>,
        hold_from: &mut Option<usize>,
    ) -> WithBody {
        let (head, after) = input.split_at(req.head_len);
        if matches!(req.framing, Framing::Length(len) if len > cx.max_body as u64) {
            refuse(&mut bufs.out, cx.encoder, Status::ContentTooLarge);
            return WithBody::Closed;
        }
        // A client that waits to hear from us before it sends the body
        // (`Expect: 100-continue`) is told to send it: always, whether or
        // not some or all of it came with the head, so the bytes answered
        // depend on the bytes sent and not on how they were split into reads.
        if req.expects_continue && req.framing != Framing::Length(0) {
            cx.encoder.encode_continue(&mut bufs.out);
        }
        let (body, used): (&[u8], usize) = match req.framing {
            Framing::Length(len) if len <= after.len() as u64 => {
                (&after[..len as usize], len as usize)
            }
            Framing::Length(len) => {
                let left = Reading::Length(len - after.len() as u64);
                self.start_reading(req, head, left, after, 0, cx.max_body);
                return WithBody::Taken(input.len());
            }
            Framing::Chunked => {
                let mut decoded = std::mem::take(&mut bufs.decoded);
                decoded.clear();
                let mut chunked = Chunked::default();
                let max_body = cx.max_body;
                let mut framing_bytes = 0;
                let progress = decode_for_handler(
                    &mut chunked,
                    after,
                    &mut decoded,
                    &mut framing_bytes,
                    max_body,
                );
                match progress {
                    Progress::Done(used) => {
                        let answered =
                            self.answer_read(req, head, route, &decoded, bufs, cx, hold_from);
                        bufs.decoded = decoded;
                        return match answered {
                            Persistence::Close => WithBody::Closed,
                            _ => WithBody::Taken(req.head_len + used),
                        };
                    }
                    Progress::More(used) => {
                        let chunked = Reading::Chunked(chunked);
                        self.start_reading(
                            req,
                            head,
                            chunked,
                            &decoded,
                            framing_bytes,
                            cx.max_body,
                        );
                        bufs.decoded = decoded;
                        // What is left after `used` is an unfinished line,
                        // kept by the connection for the next read.
                        return WithBody::Taken(req.head_len + used);
                    }
                    Progress::Stopped => {
                        bufs.decoded = decoded;
                        refuse(&mut bufs.out, cx.encoder, Status::ContentTooLarge);
                        return WithBody::Closed;
                    }
                    Progress::Invalid => {
                        bufs.decoded = decoded;
                        refuse(&mut bufs.out, cx.encoder, Status::BadRequest);
                        return WithBody::Closed;
                    }
                }
            }
        };
        match self.answer_read(req, head, route, body, bufs, cx, hold_from) {
            Persistence::Close => WithBody::Closed,
            _ => WithBody::Taken(req.head_len + used),
        }
    }

    /// Enters [`InBody::Reading`] with what has come of the body.
    fn start_reading(
        &mut self,
        req: &Request,
        head: &[u8],
        framing: Reading,
        body: &[u8],
        framing_bytes: usize,
        max_body: usize,
    ) {
        // Room for what a read brings, not for what the head announces:
        // a client that announces a megabyte and sends nothing more holds
        // little.
        let mut kept = Vec::with_capacity(body.len() + Buffers::KEEP.min(max_body));
        kept.extend_from_slice(body);
        self.body = InBody::Reading(Box::new(ReadingBody {
            head: head.to_vec(),
            request: *req,
            framing,
            body: kept,
            framing_bytes,
        }));
    }

    /// Answers a request with its body read whole.
    #[allow(clippy::too_many_arguments)]
    fn answer_read(
        &mut self,
        req: &Request,
        head: &[u8],
        route: router::Route<'_>,
        body: &[u8],
        bufs: &mut Buffers,
        cx: &Context<'_>,
        hold_from: &mut Option<usize>,
    ) -> Persistence {
        let answer = Answer {
            req,
            head,
            route,
            body,
            persistence: persistence(req, true),
        };
        self.write(answer, bufs, cx, hold_from)
    }

    /// Takes what `input` holds of the body in progress. When it ends,
    /// writes the answer deferred to its end, or the answer of the handler
    /// that reads it; a body that is not chunked after all gets a 400, one
    /// over `--max-body` a 413 (both close, reported as `Invalid`), as
    /// does an answer that closes (reported as `Stopped`). Out of line:
    /// TFB's requests have no body, and the hot loop stays one call
    /// smaller.
    #[inline(never)]
    fn continue_body(
        &mut self,
        input: &[u8],
        bufs: &mut Buffers,
        cx: &Context<'_>,
        hold_from: &mut Option<usize>,
    ) -> Progress {
        match std::mem::take(&mut self.body) {
            InBody::Nothing => Progress::Done(0),
            InBody::Skipping(left) => {
                let skip = left.min(input.len() as u64);
                match left - skip {
                    0 => Progress::Done(skip as usize),
                    left => {
                        self.body = InBody::Skipping(left);
                        Progress::More(skip as usize)
                    }
                }
            }
            InBody::SkippingChunked(mut skipping) => {
                let progress = skipping.0.skip(input);
                match progress {
                    Progress::Done(_) => match skipping.1 {
                        Deferred::Later {
                            head,
                            request,
                            persistence,
                        } => {
                            let answer = Answer {
                                req: &request,
                                head: &head,
                                route: router::route(request.target, &head),
                                body: b"",
                                persistence,
                            };
                            // The same handler on the same head: written
                            // again, as it was at the head.
                            let _ = answer.encode(&mut bufs.out, &mut bufs.large, cx);
                        }
                        Deferred::Held(held) => self.hold(held, &mut bufs.out, cx, hold_from),
                    },
                    Progress::More(_) => self.body = InBody::SkippingChunked(skipping),
                    Progress::Invalid | Progress::Stopped => {
                        refuse(&mut bufs.out, cx.encoder, Status::BadRequest)
                    }
                }
                progress
            }
            InBody::Reading(mut reading) => {
                let progress = reading.take(input, cx.max_body);
                match progress {
                    Progress::Done(used) => {
                        let ReadingBody {
                            head,
                            request,
                            body,
                            ..
                        } = *reading;
                        let route = router::route(request.target, &head);
                        match self.answer_read(&request, &head, route, &body, bufs, cx, hold_from) {
                            Persistence::Close => Progress::Stopped,
                            _ => Progress::Done(used),
                        }
                    }
                    Progress::More(_) => {
                        self.body = InBody::Reading(reading);
                        progress
                    }
                    Progress::Stopped => {
                        refuse(&mut bufs.out, cx.encoder, Status::ContentTooLarge);
                        Progress::Invalid
                    }
                    Progress::Invalid => {
                        refuse(&mut bufs.out, cx.encoder, Status::BadRequest);
                        Progress::Invalid
                    }
                }
            }
        }
    }
}

impl ReadingBody {
    /// Adds what `input` holds of the body: `Stopped` when the body would
    /// grow past `max_body` or its framing past [`framing_allowance`].
    fn take(&mut self, input: &[u8], max_body: usize) -> Progress {
        match &mut self.framing {
            Reading::Length(left) => {
                let take = (*left).min(input.len() as u64);
                self.body.extend_from_slice(&input[..take as usize]);
                *left -= take;
                match *left {
                    0 => Progress::Done(take as usize),
                    _ => Progress::More(take as usize),
                }
            }
            Reading::Chunked(chunked) => decode_for_handler(
                chunked,
                input,
                &mut self.body,
                &mut self.framing_bytes,
                max_body,
            ),
        }
    }
}

/// Framing bytes (chunk-size lines with their extensions, CRLFs,
/// trailers) allowed for a chunked body of `data` bytes read for a
/// handler: a head's worth, and eight per byte of data (one-byte chunks
/// take five). Without it a client could send a body of 1-byte chunks each
/// behind an 8 KiB extension: a megabyte of body, gigabytes of framing.
fn framing_allowance(data: usize) -> usize {
    MAX_HEAD_BYTES + 8 * data
}

/// Decodes what `input` holds of a chunked body read for its handler,
/// appending its data to `body` and counting its framing into
/// `framing_bytes`: `Stopped` once the body would grow past `max_body` or
/// its framing past [`framing_allowance`]. The allowance is tested at every
/// framing unit the decoder consumes, so the 413 falls at the same byte
/// however the body was split into reads. One body read in one call and
/// one read over several go through here alike.
fn decode_for_handler(
    chunked: &mut Chunked,
    input: &[u8],
    body: &mut Vec<u8>,
    framing_bytes: &mut usize,
    max_body: usize,
) -> Progress {
    // The body's length, for the framing test: the body itself is
    // borrowed by the data closure.
    let data_len = std::cell::Cell::new(body.len());
    chunked.decode_framed(
        input,
        &mut |data| {
            body.len() + data.len() <= max_body && {
                body.extend_from_slice(data);
                data_len.set(body.len());
                true
            }
        },
        &mut |unit| {
            *framing_bytes += unit;
            *framing_bytes <= framing_allowance(data_len.get())
        },
    )
}

/// A request, and what its answer needs.
#[derive(Clone, Copy)]
struct Answer<'a> {
    req: &'a Request,
    head: &'a [u8],
    route: router::Route<'a>,
    /// The body, where the handler reads one.
    body: &'a [u8],
    persistence: Persistence,
}

/// What encoding an answer did.
enum Encoded {
    Written(Persistence),
    /// The handler's answer waits ([`Wait`]); to be written, with this
    /// persistence and body or not, once its wait has passed.
    Held(Wait, Persistence, bool),
}

impl Answer<'_> {
    /// Writes the answer: the resource's response (src/resources.rs),
    /// encoded. Always inlined, as is everything it calls: with two callers
    /// (the hot loop and the answer deferred to a chunked body's end) the
    /// compiler made it a call, dearer per pipelined `/plaintext` request
    /// (docs/design.md, "Write batching and response composition").
    ///
    /// Returns what the response said of the connection: a handler's 400
    /// closes it, as a parser's does ([`Status::closes`]).
    #[inline(always)]
    fn encode(self, out: &mut Vec<u8>, large: &mut Vec<u8>, cx: &Context<'_>) -> Encoded {
        // Made only by the handlers that read it: made before `respond`,
        // its fields were stored to the stack for every answer.
        let exchange = || Exchange {
            method: self.req.method,
            target: self.route.target,
            param: self.route.param,
            body: self.body,
            data: cx.data,
        };
        let mut persistence = self.persistence;
        let mut held = None;
        let with_body = self.req.method != Method::Head;
        let write = Encode {
            out,
            encoder: cx.encoder,
            persistence: &mut persistence,
            with_body,
            held: &mut held,
        };
        router::respond(self.req.method, self.route.resource, exchange, large, write);
        match held {
            None => Encoded::Written(persistence),
            Some(wait) => Encoded::Held(wait, persistence, with_body),
        }
    }
}

/// What the answer to `req` says of the connection; `body_read` says a
/// handler read its body whole.
#[inline(always)]
fn persistence(req: &Request, body_read: bool) -> Persistence {
    // A client that sent `Expect: 100-continue` may withhold the body it
    // announced until it hears from us (RFC 9110 10.1.1), so its next
    // bytes could be a request or the body: a body no handler reads gets
    // its answer now and the connection closes, rather than a guess. The
    // head alone decides, never how much of the body has come with it, so
    // the answer does not depend on how the bytes were split into reads.
    let withheld = req.expects_continue && req.framing != Framing::Length(0);
    let keep_alive = req.keep_alive && (body_read || !withheld);
    match (keep_alive, req.http10) {
        (false, _) => Persistence::Close,
        (true, true) => Persistence::KeepAlive,
        (true, false) => Persistence::Default,
    }
}

/// What [`Pipeline::answer_with_body`] did.
enum WithBody {
    /// This many bytes were taken: the request and its body, answered; or,
    /// when the body is not all here, the head and the body so far, kept
    /// until the rest comes ([`InBody::Reading`]).
    Taken(usize),
    /// Answered (or refused) with `Connection: close`.
    Closed,
}

/// Encodes the resource's response into the output buffer, or notes that
/// it is held.
struct Encode<'o, 'e> {
    out: &'o mut Vec<u8>,
    encoder: &'o Encoder<'e>,
    /// The connection's state; set to `Close` by a status that closes.
    persistence: &'o mut Persistence,
    with_body: bool,
    held: &'o mut Option<Wait>,
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

    fn hold(self, wait: Wait) {
        *self.held = Some(wait);
    }
}

/// Writes a held answer, now that its wait has passed.
fn write_held(held: &HeldAnswer, out: &mut Vec<u8>, encoder: &Encoder<'_>) {
    let mut body = SmallBody::new();
    let response = resources::delayed(held.wait, &mut body);
    encoder.encode(out, &response, held.persistence, held.with_body);
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
    use std::time::Duration;

    use super::*;
    use crate::dataset::Dataset;
    use crate::response::ServerField;

    const DATE: &[u8; crate::date::DATE_LINE_LEN] = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
    const PLAIN: &str = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    const JSON: &str = "GET /json HTTP/1.1\r\nHost: a\r\n\r\n";
    const MAX_BODY: usize = 1024 * 1024;

    fn data() -> Data {
        let item = serde_json::json!({
            "id": 1, "name": "n", "category": "c", "price": 3, "quantity": 5,
            "active": true, "tags": ["t"], "rating": {"score": 1, "count": 2},
        });
        let items = (0..50)
            .map(|_| serde_json::from_value(item.clone()).unwrap())
            .collect();
        Data {
            dataset: Some(Dataset::from_items(items)),
        }
    }

    /// Answers `input` at `now` with `max_body`, as one call.
    fn run_with(
        pipeline: &mut Pipeline,
        input: &[u8],
        now: Instant,
        max_body: usize,
    ) -> (String, Answered) {
        let server = ServerField::new("chopin");
        let encoder = Encoder::new(&server, DATE);
        let data = data();
        let cx = Context::new(&encoder, &data, max_body).at(now);
        let mut bufs = Buffers::default();
        let answered = pipeline.answer(input, &mut bufs, &cx);
        (String::from_utf8(bufs.out).unwrap(), answered)
    }

    fn run(pipeline: &mut Pipeline, input: &[u8]) -> (String, Answered) {
        run_with(pipeline, input, Instant::now(), MAX_BODY)
    }

    fn run_at(pipeline: &mut Pipeline, input: &[u8], now: Instant) -> (String, Answered) {
        run_with(pipeline, input, now, MAX_BODY)
    }

    /// Feeds `input` in pieces cut at `cuts`, keeping the unconsumed rest as
    /// a connection does; the output of every call, joined.
    fn run_split(input: &[u8], cuts: &[usize], max_body: usize) -> (String, Answered) {
        let mut pipeline = Pipeline::new();
        let mut kept = Vec::new();
        let mut out = String::new();
        let mut at = 0;
        let mut answered = None;
        for &cut in cuts.iter().chain([input.len()].iter()) {
            kept.extend_from_slice(&input[at..cut.max(at)]);
            at = cut.max(at);
            let (piece, got) = run_with(&mut pipeline, &kept, Instant::now(), max_body);
            out += &piece;
            kept.drain(..got.consumed);
            let close = got.close;
            answered = Some(got);
            if close {
                break;
            }
        }
        (out, answered.unwrap())
    }

    fn statuses(out: &str) -> Vec<&str> {
        out.match_indices("HTTP/1.1 ")
            .map(|(i, _)| &out[i + 9..i + 12])
            .collect()
    }

    fn bodies_of(out: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        let mut rest = out;
        while let Some(at) = rest.find("\r\n\r\n") {
            let head = &rest[..at];
            let len: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("Content-Length: "))
                .map_or(0, |n| n.parse().unwrap());
            bodies.push(rest[at + 4..at + 4 + len].to_owned());
            rest = &rest[at + 4 + len..];
        }
        bodies
    }

    fn open(consumed: usize) -> Answered {
        Answered {
            consumed,
            close: false,
            more: false,
        }
    }

    #[test]
    fn sixteen_pipelined_requests() {
        let input = PLAIN.repeat(16);
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(out.matches("Hello, World!").count(), 16);
        assert_eq!(answered, open(input.len()));
    }

    #[test]
    fn partial_request_is_left_unconsumed() {
        let input = format!("{PLAIN}{}", &JSON[..10]);
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200"]);
        assert_eq!(answered, open(PLAIN.len()));
    }

    /// A body no handler reads, announced with `Expect: 100-continue`:
    /// answered at once with close, whether or not the body came with the
    /// head (the head alone decides, however the bytes were split).
    #[test]
    fn expect_continue_closes_where_no_handler_reads_the_body() {
        let head =
            "POST /json HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        for input in [
            head.to_string(),
            format!("{head}a"),
            format!("{head}abc{JSON}"),
        ] {
            let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
            assert_eq!(statuses(&out), ["405"], "{input:?}");
            assert!(out.contains("Connection: close\r\n"));
            assert_eq!(answered, Answered::closing(input.as_bytes()));
        }
        // An unknown method likewise (a fuzz finding: this input split at
        // [60, 64, 75] closed, unsplit it kept the connection open).
        let input = "POSTD /json HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabcGET /json HTTP/1.1\r\nHost: a\r\n\r\n";
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["501"]);
        assert!(answered.close);
        // No body announced: nothing is withheld, the connection stays.
        let none = head.replace("Length: 3", "Length: 0");
        let (out, answered) = run(&mut Pipeline::new(), format!("{none}{JSON}").as_bytes());
        assert_eq!(statuses(&out), ["405", "200"]);
        assert!(!answered.close);
    }

    /// A handler that reads the body: `100 Continue` first, whether or not
    /// the body came with the head, then the answer once the body is whole.
    #[test]
    fn expect_continue_where_a_handler_reads_the_body() {
        let head =
            "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        let mut pipeline = Pipeline::new();
        let (out, answered) = run(&mut pipeline, head.as_bytes());
        assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(answered, open(head.len()));
        let (out, answered) = run(&mut pipeline, format!("abc{JSON}").as_bytes());
        assert_eq!(statuses(&out), ["200", "200"]);
        assert_eq!(bodies_of(&out)[0], "abc");
        assert!(!answered.close);
        let (out, _) = run(&mut Pipeline::new(), format!("{head}abc").as_bytes());
        assert!(out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
        assert_eq!(statuses(&out), ["100", "200"]);
        // Too large: refused, no `100`, the body never asked for.
        let big = head.replace("Length: 3", &format!("Length: {}", MAX_BODY + 1));
        let (out, answered) = run(&mut Pipeline::new(), big.as_bytes());
        assert_eq!(statuses(&out), ["413"]);
        assert!(answered.close);
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
        assert_eq!(answered, open(PLAIN.len()));
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
        let input = "HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\nDELETE /json HTTP/1.1\r\nHost: a\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n";
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["200", "404", "405", "405"]);
        assert!(!out.contains("Hello"));
        assert!(out.contains("Content-Length: 13\r\n"));
        assert!(out.contains("Allow: GET, HEAD\r\n"));
        assert!(out.contains("Allow: POST\r\n"));
        assert!(!answered.close);
    }

    /// The body a handler reads: answered once whole, whatever the split.
    #[test]
    fn a_read_body_is_answered_once_whole() {
        for post in [
            "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n20",
            "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n2\r\n1;x\r\n0\r\n0\r\nT: 1\r\n\r\n",
        ] {
            let input = format!("{post}{JSON}");
            for cut in 0..input.len() {
                let (out, answered) = run_split(input.as_bytes(), &[cut], MAX_BODY);
                assert_eq!(statuses(&out), ["200", "200"], "cut {cut}");
                assert!(out.contains("\r\n\r\n75HTTP/1.1 200"), "cut {cut}: {out}");
                assert!(!answered.close);
            }
        }
    }

    fn echo_cl(body: &[u8]) -> Vec<u8> {
        let mut request = format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        request
    }

    fn echo_chunked(body: &[u8], chunk: usize) -> Vec<u8> {
        let mut request =
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in body.chunks(chunk.max(1)) {
            request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            request.extend_from_slice(piece);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        request
    }

    /// Echo of every size, both framings, whole or in pieces, with a request
    /// pipelined after it; the answer is the body byte for byte.
    #[test]
    fn echo_bodies_of_any_size() {
        for size in [0, 1, 64, 65, 8 * 1024, 100 * 1024, MAX_BODY] {
            let body: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            for request in [
                echo_cl(&body),
                echo_chunked(&body, 16 * 1024),
                echo_chunked(&body, 7),
            ] {
                let mut input = request.clone();
                input.extend_from_slice(PLAIN.as_bytes());
                let third = input.len() / 3;
                for cuts in [
                    vec![],
                    vec![third, 2 * third],
                    (1..9).map(|i| i * input.len() / 9).collect(),
                ] {
                    let mut pipeline = Pipeline::new();
                    let mut kept = Vec::new();
                    let mut out = Vec::new();
                    let mut at = 0;
                    for cut in cuts.iter().copied().chain([input.len()]) {
                        kept.extend_from_slice(&input[at..cut]);
                        at = cut;
                        let server = ServerField::new("chopin");
                        let encoder = Encoder::new(&server, DATE);
                        let data = Data::default();
                        let cx = Context::new(&encoder, &data, MAX_BODY);
                        // Called again while it stops at its output budget.
                        loop {
                            let mut bufs = Buffers::default();
                            let answered = pipeline.answer(&kept, &mut bufs, &cx);
                            assert!(!answered.close, "size {size}");
                            kept.drain(..answered.consumed);
                            out.extend_from_slice(&bufs.out);
                            if !answered.more {
                                break;
                            }
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nServer: chopin\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n{}\r\n",
                        std::str::from_utf8(DATE).unwrap()
                    );
                    assert!(out.starts_with(head.as_bytes()), "size {size}");
                    assert_eq!(
                        &out[head.len()..head.len() + size],
                        &body[..],
                        "size {size}"
                    );
                    let rest = String::from_utf8(out[head.len() + size..].to_vec()).unwrap();
                    assert_eq!(statuses(&rest), ["200"], "size {size}");
                    assert!(rest.ends_with("Hello, World!"), "size {size}");
                    assert!(kept.is_empty());
                    assert!(!pipeline.in_body());
                }
            }
        }
    }

    #[test]
    fn a_body_over_the_bound_gets_413_and_close() {
        for max_body in [0, 64, 1000] {
            let long = vec![b'1'; max_body + 1];
            let chunked = echo_chunked(&long, 10);
            // Framing without end (trailer lines): as many bytes as a head.
            let trailers = format!(
                "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n{}",
                "T: v\r\n".repeat(MAX_HEAD_BYTES / 4)
            )
            .into_bytes();
            // A Content-Length over the bound is refused before any body.
            let announced = format!(
                "POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                max_body + 1
            )
            .into_bytes();
            for input in [echo_cl(&long), chunked, trailers, announced] {
                for cuts in [vec![], vec![input.len() / 2]] {
                    let (out, answered) = run_split(&input, &cuts, max_body);
                    assert_eq!(statuses(&out), ["413"], "max {max_body}");
                    assert!(out.contains("Connection: close\r\n"));
                    assert!(answered.close);
                }
            }
            // At the bound, it is read.
            let at_bound = vec![b'0'; max_body];
            for input in [echo_cl(&at_bound), echo_chunked(&at_bound, 10)] {
                let (out, answered) = run_split(&input, &[input.len() / 2], max_body);
                assert_eq!(statuses(&out), ["200"], "max {max_body}");
                assert_eq!(
                    bodies_of(&out),
                    [String::from_utf8(at_bound.clone()).unwrap()]
                );
                assert!(!answered.close);
            }
        }
    }

    /// One-byte chunks each behind a long extension: the framing outgrows
    /// what its data allows long before the body reaches --max-body.
    #[test]
    fn chunk_framing_is_bounded_by_its_data() {
        let ext = "x".repeat(4000);
        let mut input =
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..10 {
            input.extend_from_slice(format!("1;{ext}\r\nz\r\n").as_bytes());
        }
        let (out, answered) = run_split(&input, &[input.len() / 3, 2 * input.len() / 3], MAX_BODY);
        assert_eq!(statuses(&out), ["413"]);
        assert!(answered.close);
    }

    /// The framing allowance falls at the same byte at every split: 9,200
    /// bytes of trailers answer the same in one read as split after them,
    /// followed by the end of the body (413) or by an invalid line (413:
    /// the allowance ran out before it).
    #[test]
    fn the_framing_allowance_is_the_same_at_every_split() {
        let mut body = b"0\r\n".to_vec();
        for _ in 0..100 {
            body.extend_from_slice(b"X-Trailer: ");
            body.extend_from_slice(&[b'7'; 79]);
            body.extend_from_slice(b"\r\n");
        }
        let head = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        for end in [&b"\r\n"[..], b"bad line\r\n\r\n"] {
            let input = [&head[..], &body, end].concat();
            let cut = head.len() + body.len();
            for cuts in [&[][..], &[cut], &[head.len()], &[head.len() + 3, cut + 1]] {
                let (out, answered) = run_split(&input, cuts, 1 << 20);
                assert_eq!(statuses(&out), ["413"], "{cuts:?}");
                assert!(answered.close);
            }
        }
    }

    #[test]
    fn bad_numbers_get_400_and_close() {
        for input in [
            "GET /baseline11?a=1 HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
            "POST /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n2\r\nx",
            "GET /json/0 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /json/1?m=x HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /delay/60001 HTTP/1.1\r\nHost: a\r\n\r\n",
            // A handler's 400 with a chunked body goes at once.
            "GET /delay/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let (out, answered) = run(&mut Pipeline::new(), format!("{input}{JSON}").as_bytes());
            assert_eq!(statuses(&out), ["400"], "{input:?}");
            assert!(out.contains("Connection: close\r\n"));
            assert!(answered.close);
        }
    }

    /// Bodies no handler reads are skipped; a chunked one is answered once
    /// it has ended, with the answer made from its head.
    #[test]
    fn other_bodies_are_skipped() {
        let input = format!(
            "GET /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n999\
             HEAD /baseline11?a=1&b=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
             GET /json/2?m=2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
             DELETE /baseline11 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{JSON}"
        );
        for cut in [0, input.len() / 2, input.len() - 30] {
            let (out, answered) = run_split(input.as_bytes(), &[cut], MAX_BODY);
            assert_eq!(statuses(&out), ["200", "200", "200", "405", "200"]);
            assert!(out
                .contains("Content-Length: 1\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n3HTTP"));
            assert!(out.contains(r#""total":30}"#), "{out}");
            assert!(out.contains("Allow: GET, HEAD, POST\r\n"));
            assert!(!answered.close);
        }
    }

    #[test]
    fn unknown_methods_get_501_on_any_route() {
        let input = "BREW /json HTTP/1.1\r\nHost: a\r\n\r\nget /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}HEAD /json HTTP/1.1\r\nHost: a\r\n\r\n";
        let (out, answered) = run(&mut Pipeline::new(), input.as_bytes());
        assert_eq!(statuses(&out), ["501", "501", "200"]);
        assert!(!out.contains("Allow:"));
        assert_eq!(answered, open(input.len()));
    }

    fn delay(ms: u32) -> String {
        format!("GET /delay/{ms} HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    /// A delayed answer leaves no earlier than its deadline, and the
    /// answers behind it wait for it, in request order.
    #[test]
    fn delayed_answers_leave_in_order_at_their_deadlines() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut pipeline = Pipeline::new();
        let input = format!("{}{PLAIN}{}{JSON}", delay(50), delay(10));
        let (out, answered) = run_at(&mut pipeline, input.as_bytes(), t0);
        assert_eq!(out, "");
        assert_eq!(answered, open(input.len()));
        assert_eq!(pipeline.next_due(), Some(ms(50)));
        assert!(pipeline.holds());
        let (out, _) = run_at(&mut pipeline, b"", ms(49));
        assert_eq!(out, "");
        // A request read meanwhile waits too.
        let (out, _) = run_at(&mut pipeline, delay(0).as_bytes(), ms(30));
        assert_eq!(out, "");
        let (out, answered) = run_at(&mut pipeline, b"", ms(50));
        assert_eq!(
            bodies_of(&out),
            [
                "50",
                "Hello, World!",
                "10",
                r#"{"message":"Hello, World!"}"#,
                "0"
            ]
        );
        assert_eq!(answered, open(0));
        assert!(!pipeline.holds());
        assert_eq!(pipeline.next_due(), None);
        // The second is held for its own wait, not the sum.
        let input = format!("{}{}", delay(20), delay(20));
        let (out, _) = run_at(&mut pipeline, input.as_bytes(), ms(100));
        assert_eq!(out, "");
        let (out, _) = run_at(&mut pipeline, b"", ms(120));
        assert_eq!(bodies_of(&out), ["20", "20"]);
        // A later one still waiting keeps what follows it.
        let input = format!("{}{}{PLAIN}", delay(10), delay(30));
        run_at(&mut pipeline, input.as_bytes(), ms(200));
        let (out, _) = run_at(&mut pipeline, b"", ms(215));
        assert_eq!(bodies_of(&out), ["10"]);
        assert_eq!(pipeline.next_due(), Some(ms(230)));
        let (out, _) = run_at(&mut pipeline, b"", ms(230));
        assert_eq!(bodies_of(&out), ["30", "Hello, World!"]);
    }

    /// An answered wait leaves its emptied `Held` to the thread, and the
    /// next wait takes that one rather than allocating; one that grew
    /// large is not kept.
    #[test]
    fn an_answered_wait_leaves_its_held_for_the_next() {
        let spare = || SPARE_HELD.with_borrow(|spare| spare.len());
        SPARE_HELD.with_borrow_mut(|spare| spare.clear());
        let t0 = Instant::now();
        let mut pipeline = Pipeline::new();
        run_at(
            &mut pipeline,
            format!("{}{PLAIN}", delay(10)).as_bytes(),
            t0,
        );
        let first: *const Held = &**pipeline.held.as_ref().unwrap();
        run_at(&mut pipeline, b"", t0 + Duration::from_millis(10));
        assert!(!pipeline.holds());
        assert_eq!(spare(), 1);
        let spare_at = SPARE_HELD.with_borrow(|spare| &*spare[0] as *const Held);
        assert_eq!(spare_at, first);
        run_at(&mut pipeline, delay(10).as_bytes(), t0);
        assert_eq!(spare(), 0);
        assert_eq!(&**pipeline.held.as_ref().unwrap() as *const Held, first);
        assert_eq!(pipeline.held.as_ref().unwrap().waits.len(), 1);
        run_at(&mut pipeline, b"", t0 + Duration::from_millis(10));
        assert_eq!(spare(), 1);

        let large = format!(
            "{}{}",
            delay(10),
            PLAIN.repeat(SPARE_HELD_BYTES / PLAIN.len() + 1)
        );
        SPARE_HELD.with_borrow_mut(|spare| spare.clear());
        run_at(&mut pipeline, large.as_bytes(), t0);
        run_at(&mut pipeline, b"", t0 + Duration::from_millis(10));
        assert!(!pipeline.holds());
        assert_eq!(spare(), 0, "a Held that grew large is freed");
    }

    #[test]
    fn a_zero_delay_answers_at_once_and_head_has_no_body() {
        let (out, answered) = run(&mut Pipeline::new(), delay(0).as_bytes());
        assert_eq!(bodies_of(&out), ["0"]);
        assert!(out.contains("Content-Type: text/plain\r\n"));
        assert!(!answered.close);
        let t0 = Instant::now();
        let mut pipeline = Pipeline::new();
        let head = "HEAD /delay/5 HTTP/1.1\r\nHost: a\r\n\r\n";
        run_at(&mut pipeline, head.as_bytes(), t0);
        let (out, _) = run_at(&mut pipeline, b"", t0 + Duration::from_millis(5));
        assert!(out.ends_with("Content-Length: 1\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    }

    /// A held answer that closes: what comes after it is ignored, and the
    /// connection closes once it is written; so does one held behind it.
    #[test]
    fn a_closing_answer_behind_a_wait_closes_after_it() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(10);
        let closing = "GET /delay/10 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        for input in [
            format!("{closing}{PLAIN}"),
            format!("{}GET /nope HTTP/1.1\r\n\r\n{PLAIN}", delay(10)),
        ] {
            let mut pipeline = Pipeline::new();
            let (out, answered) = run_at(&mut pipeline, input.as_bytes(), t0);
            assert_eq!(out, "");
            assert_eq!(answered, open(input.len()));
            let (out, answered) = run_at(&mut pipeline, PLAIN.as_bytes(), t0);
            assert_eq!((out.as_str(), answered.consumed), ("", PLAIN.len()));
            let (out, answered) = run_at(&mut pipeline, b"", later);
            assert!(answered.close, "{input:?}");
            assert!(out.contains("Connection: close\r\n"));
            assert_eq!(
                out.matches("HTTP/1.1 ").count(),
                if input.starts_with(closing) { 1 } else { 2 }
            );
        }
    }

    /// Many small requests for large answers: one call stops at its output
    /// budget, leaving the rest, and the next call goes on from there.
    #[test]
    fn output_is_bounded_per_call() {
        let request = "GET /json/50 HTTP/1.1\r\nHost: a\r\n\r\n";
        let input = request.repeat(200);
        let mut pipeline = Pipeline::new();
        let mut rest = input.as_bytes();
        let mut answers = 0;
        let mut calls = 0;
        loop {
            let (out, answered) = run(&mut pipeline, rest);
            calls += 1;
            answers += statuses(&out).len();
            let last = out.rfind("HTTP/1.1 200").unwrap();
            assert!(last < OUTPUT_BUDGET, "{} bytes", out.len());
            assert_eq!(answered.consumed % request.len(), 0);
            rest = &rest[answered.consumed..];
            if !answered.more {
                break;
            }
        }
        assert_eq!(answers, 200);
        assert!(rest.is_empty());
        assert!(calls > 1);
    }
}
