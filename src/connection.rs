//! The connection loop, shared by both runtime flavours.
//!
//! Read what is there, answer every complete request in it
//! ([`Pipeline::answer`]), write all answers in one write. Memory at 16,384
//! connections is what decides throughput there (per-connection buffers blow
//! the caches), so a connection owns no buffer while it is idle: bytes are
//! read into a per-thread scratch buffer and answered from there, and only
//! what must outlive the batch is copied out — an unfinished request head
//! (`unread`) or output the socket did not take (`unsent`). Both are empty,
//! and unallocated, in the steady state.
//!
//! The scratch buffer is thread-local and borrowed only between two awaits,
//! so the same code is correct on a `current_thread` runtime and on a
//! work-stealing one where the task may resume on another thread.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustix::net::{RecvFlags, SendFlags};
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::date::DateCache;
use crate::pipeline::{Buffers, Context as Answering, Pipeline};
use crate::resources::Data;
use crate::response::{Encoder, ServerField};
use crate::shutdown::Shutdown;
use crate::stats::WorkerStats;
use crate::timer::Timer;
use crate::tls::{Received, Tls, MAX_RECORD};

/// Bytes read per `read` call. 16 pipelined TFB requests are ~2.7 KB; a
/// bigger batch only raises the output a single read can produce.
const READ_BYTES: usize = 64 * 1024;
/// The connection's input buffer: one read's bytes after an unfinished head
/// kept from the read before, so one read answers at most this much input.
pub const INPUT_BYTES: usize = READ_BYTES + crate::request::MAX_HEAD_BYTES;
/// Past this much unwritten output the connection stops reading until the
/// client drains it, so a client that never reads cannot grow our memory.
pub const MAX_UNSENT_BYTES: usize = 256 * 1024;
/// Buffers that grew past this are freed once empty rather than kept.
const KEEP_CAPACITY: usize = 4 * 1024;
/// After answering with `Connection: close`, how long to keep reading (and
/// discarding) so the client's unread bytes do not turn our FIN into a reset
/// that destroys the response in flight (RFC 9112 9.6, "lingering close").
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// What every connection of one server shares.
pub struct Shared {
    /// The `Server` field line, rendered once.
    pub server: ServerField,
    pub header_timeout: Duration,
    /// How long a request body may go without a read that takes some of it.
    pub body_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    /// Largest request body read for a handler (`--max-body`).
    pub max_body: usize,
    /// What the handlers serve from (the dataset).
    pub data: Data,
    /// The TLS configuration, with `--tls-port`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub shutdown: Shutdown,
}

/// What carries a connection's bytes: the same loop serves both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

#[cfg(test)]
impl Shared {
    /// A server's shared state with one-second timeouts, for unit tests.
    pub(crate) fn for_unit_tests() -> Arc<Shared> {
        Arc::new(Shared {
            server: ServerField::new("test"),
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            idle_timeout: None,
            max_body: 1024 * 1024,
            data: Data::default(),
            tls: None,
            shutdown: Shutdown::new(),
        })
    }
}

/// Per-thread buffers: every connection served by this thread uses them in
/// turn, so their size is paid once per thread, not once per connection.
struct Scratch {
    input: Box<[u8]>,
    buffers: Buffers,
    /// TLS connections' ciphertext: what a read brought, after the kept
    /// start of an unfinished record; allocated by the first TLS read.
    cipher: Vec<u8>,
    /// TLS connections' output records, handshake and answers.
    records: Vec<u8>,
    date: DateCache,
    /// This thread's counters, with `--stats`.
    stats: Option<Arc<WorkerStats>>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        input: vec![0; INPUT_BYTES].into_boxed_slice(),
        buffers: Buffers {
            out: Vec::with_capacity(READ_BYTES),
            ..Buffers::default()
        },
        cipher: Vec::new(),
        records: Vec::new(),
        date: DateCache::new(),
        stats: None,
    });
}

/// Makes `stats` the calling worker thread's counters (`--stats`): its
/// reads and the requests they answered are counted from now on.
pub fn count_on_this_thread(stats: Arc<WorkerStats>) {
    SCRATCH.with_borrow_mut(|scratch| scratch.stats = Some(stats));
}

/// Runs `count` on this thread's counters, if it has any.
pub fn with_stats(count: impl FnOnce(&WorkerStats)) {
    SCRATCH.with_borrow(|scratch| {
        if let Some(stats) = &scratch.stats {
            count(stats);
        }
    });
}

/// One accepted TCP connection and the little state it keeps between reads.
pub struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    /// This runtime's deadlines: the header, body and idle timeouts, the linger.
    timer: Arc<Timer>,
    pipeline: Pipeline,
    /// The start of a request head that has not fully arrived.
    unread: Vec<u8>,
    /// Answers the socket has not taken yet, in order, from `unsent_at`
    /// on: the bytes before it are written (see [`Connection::flush_unsent`]).
    /// Empty, with `unsent_at` 0, once everything is written.
    unsent: Vec<u8>,
    unsent_at: usize,
    /// When the unfinished head in `unread` must be complete or, in a
    /// request body, when its next bytes must have arrived; `None` between
    /// requests. One field for both: a connection is in one or the other.
    read_deadline: Option<Instant>,
    /// Registered with [`Shutdown`] as holding unwritten output, or as
    /// lingering over its last answers.
    writer: bool,
    /// In [`Connection::close_gracefully`]: registered until the end.
    lingering: bool,
    /// `unread` holds requests the pipeline left for the next step, having
    /// written its budget of output ([`crate::pipeline::OUTPUT_BUDGET`]):
    /// they are answered without waiting for the socket.
    more: bool,
    /// The TLS session, on `--tls-port`: boxed, so that a plain
    /// connection's future pays one pointer for it.
    tls: Option<Box<Tls>>,
}

/// What a TLS read brought.
enum TlsRead {
    /// This many bytes of plaintext (0 in a handshake).
    Plaintext(usize),
    /// The last plaintext: the peer sent `close_notify`.
    PeerClosed(usize),
    /// The socket had nothing.
    Nothing,
    /// The peer closed the socket.
    Eof,
}

/// What one read-and-answer step left the connection to do.
enum Step {
    /// Answered what there was; wait for the socket again.
    Open,
    /// Answered with `Connection: close`, or the peer closed: flush and close.
    Close,
}

/// Serves one connection until it closes; never returns an error because
/// nobody above could act on it: the socket is simply dropped.
pub async fn serve(
    stream: TcpStream,
    transport: Transport,
    shared: Arc<Shared>,
    timer: Arc<Timer>,
) {
    let tls = match (transport, &shared.tls) {
        (Transport::Plain, _) => None,
        (Transport::Tls, Some(config)) => match Tls::new(config) {
            Ok(tls) => Some(tls),
            Err(_) => return,
        },
        (Transport::Tls, None) => return,
    };
    // The handshake must end within the header timeout.
    let read_deadline = tls.as_ref().map(|_| Instant::now() + shared.header_timeout);
    let mut conn = Connection {
        stream,
        shared,
        timer,
        pipeline: Pipeline::new(),
        unread: Vec::new(),
        unsent: Vec::new(),
        unsent_at: 0,
        read_deadline,
        writer: false,
        lingering: false,
        more: false,
        tls,
    };
    if let Ok(Step::Close) = conn.run().await {
        conn.close_gracefully().await;
    }
}

impl Connection {
    async fn run(&mut self) -> io::Result<Step> {
        let mut was_reading = true;
        loop {
            let stopping = self.shared.shutdown.has_begun();
            // The written part of `unsent` counts: it is memory held too;
            // so are the answers the pipeline holds back. Once the stop has
            // begun, nothing new is read: held answers are still written
            // as they fall due, within the drain's bound.
            let held = self.pipeline.held_bytes();
            let reading = !stopping && self.unsent.len() + held < MAX_UNSENT_BYTES;
            // While we are not reading, an unfinished head or body cannot
            // progress: its clock restarts when reading resumes.
            if reading && !was_reading && self.read_deadline.is_some() {
                let timeout = if self.pipeline.in_body() {
                    self.shared.body_timeout
                } else {
                    self.shared.header_timeout
                };
                self.read_deadline = Some(Instant::now() + timeout);
            }
            was_reading = reading;
            // Whether to answer, and whether to read first. One call of
            // `answer` below rather than one per case: with one caller the
            // compiler inlines it.
            let answer = if self.more && reading {
                // Requests are waiting in `unread`: answered without a wait
                // for the socket, after a look at tokio's cooperative budget
                // so that a client with a deep backlog yields like any other.
                tokio::task::consume_budget().await;
                Some(false)
            } else {
                // Without a deadline, no timer, and no future between this
                // loop and the socket's readiness.
                let (readable, writable, due) = match self.deadline(reading) {
                    None => {
                        let (readable, writable) = self.wait(reading).await?;
                        (readable, writable, false)
                    }
                    Some(deadline) => self.wait_until(deadline, reading).await?,
                };
                if writable {
                    self.flush_unsent()?;
                }
                (readable || due).then_some(readable)
            };
            let step = match answer {
                Some(read) => self.answer(read)?,
                None => Step::Open,
            };
            if matches!(step, Step::Close)
                || (stopping && self.unsent.is_empty() && !self.pipeline.holds())
            {
                return Ok(Step::Close);
            }
            // Fairness needs nothing here: `poll_read_ready` spends tokio's
            // cooperative budget each time it finds the socket ready, so a
            // client that keeps the buffer full is made to yield like any
            // other task (a short read cleared readiness: the next wait parks).
        }
    }

    /// When something must happen, if anything must: the connection's own
    /// deadline ([`Connection::close_at`]) or the first held answer's.
    fn deadline(&self, reading: bool) -> Option<Instant> {
        match (self.close_at(reading), self.pipeline.next_due()) {
            (None, None) => None,
            (Some(at), None) | (None, Some(at)) => Some(at),
            (Some(close_at), Some(due)) => Some(close_at.min(due)),
        }
    }

    /// Waits until the socket may be readable (when `reading`) or writable
    /// (when output is waiting), or `deadline` passes; returns which.
    /// Fails with `TimedOut` when the deadline that passed is the
    /// connection's: an unfinished head or body, or an idle connection, has
    /// run out of time. One that is a held answer's is reported as due.
    async fn wait_until(&self, deadline: Instant, reading: bool) -> io::Result<(bool, bool, bool)> {
        let ready = self
            .timer
            .timeout_at(deadline, poll_fn(|cx| self.poll_ready(cx, reading)))
            .await;
        match ready {
            Some(ready) => ready.map(|(readable, writable)| (readable, writable, false)),
            // The deadline that passed: a held answer's (answered), or the
            // connection's (closed).
            None if self.pipeline.next_due() == Some(deadline) => Ok((false, false, true)),
            None => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Waits, with no deadline, until the socket may be readable (when
    /// `reading`) or writable (when output is waiting).
    ///
    /// Once [`Connection::poll_ready`] has parked the task, the wake that
    /// follows is taken as the answer: the flags it returns then mean "try",
    /// and the read and write that follow ask tokio's readiness themselves
    /// (`try_io`: one atomic load, no syscall when not ready). Asking
    /// `poll_ready` again would be a second readiness poll per wakeup, with
    /// its cooperative-budget bookkeeping, on every `/json` request on one
    /// connection (docs/design.md, "Waiting for the socket"). Fairness is
    /// unchanged: a socket that stays ready never
    /// parks, so every round still goes through `poll_ready` and its
    /// budget. Only the path without a deadline takes this shortcut: with
    /// one, a wake can be the timer's, and [`Timer::timeout_at`] must then
    /// see the socket still pending.
    async fn wait(&self, reading: bool) -> io::Result<(bool, bool)> {
        let mut parked = false;
        poll_fn(|cx| {
            if parked {
                return Poll::Ready(Ok((reading, !self.unsent.is_empty())));
            }
            let ready = self.poll_ready(cx, reading);
            parked = ready.is_pending();
            ready
        })
        .await
    }

    /// Whether the socket is readable (or closed: a read returns 0) when
    /// `reading`, and writable when output is waiting; pending until one is.
    ///
    /// `poll_read_ready` / `poll_write_ready` park the task's waker in the
    /// socket's one reader and one writer slot. `TcpStream::ready()` would
    /// queue a waiter node on a list under a lock and unlink it again on
    /// every wake, measured far dearer per `/json` request (docs/design.md,
    /// "Waiting for the socket").
    fn poll_ready(&self, cx: &mut Context<'_>, reading: bool) -> Poll<io::Result<(bool, bool)>> {
        let mut readable = false;
        let mut writable = false;
        if reading {
            match self.stream.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => readable = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if !self.unsent.is_empty() {
            match self.stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => writable = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if readable || writable {
            Poll::Ready(Ok((readable, writable)))
        } else {
            Poll::Pending
        }
    }

    /// The one step of the hot path: read into the scratch buffer (when
    /// `read`), answer every complete request, write all answers in one
    /// write. Without `read` it answers what is kept: requests left over
    /// from the last step, or held answers that have fallen due.
    fn answer(&mut self, read: bool) -> io::Result<Step> {
        SCRATCH.with_borrow_mut(|scratch| {
            let Scratch {
                input,
                buffers,
                cipher,
                records,
                date,
                stats,
            } = scratch;
            // Each copy below is guarded: most are of nothing, and a copy of
            // an unknown length is a `memcpy` call even then.
            let kept = self.unread.len();
            if kept > 0 {
                input[..kept].copy_from_slice(&self.unread);
            }
            let mut peer_closed = false;
            records.clear();
            let read = if !read {
                0
            } else if self.tls.is_none() {
                match self.read(&mut input[kept..]) {
                    Ok(0) => return Ok(Step::Close),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Open),
                    Err(e) => return Err(e),
                }
            } else {
                match self.read_tls(&mut input[kept..], cipher, records)? {
                    TlsRead::Plaintext(n) => n,
                    TlsRead::PeerClosed(n) => {
                        peer_closed = true;
                        n
                    }
                    TlsRead::Nothing => return Ok(Step::Open),
                    TlsRead::Eof => return Ok(Step::Close),
                }
            };
            let input = &input[..kept + read];

            buffers.out.clear();
            let encoder = Encoder::new(&self.shared.server, date.refresh());
            let context = Answering::new(&encoder, &self.shared.data, self.shared.max_body);
            let answered = self.pipeline.answer(input, buffers, &context);
            if let Some(stats) = stats {
                stats.read(encoder.written());
            }
            self.more = answered.more;
            self.keep_unread(&input[answered.consumed..], answered.consumed > 0);
            let close = answered.close || peer_closed;

            let output: &[u8] = match &mut self.tls {
                None => &buffers.out,
                Some(tls) => {
                    tls.send(&buffers.out, close && !tls.handshaking(), records)?;
                    records
                }
            };
            if self.unsent.is_empty() {
                let written = self.write(output)?;
                if written < output.len() {
                    self.unsent.extend_from_slice(&output[written..]);
                }
            } else {
                self.unsent.extend_from_slice(output);
                self.flush_unsent()?;
            }
            buffers.shrink();
            if records.capacity() > Buffers::KEEP {
                *records = Vec::new();
            }
            self.track_writer();
            Ok(if close { Step::Close } else { Step::Open })
        })
    }

    /// One TLS read: ciphertext from the socket into `cipher` after the
    /// kept start of an unfinished record, its plaintext into `plain`,
    /// handshake records and alerts into `records`. Reads no more than
    /// `plain` can hold once decrypted (plaintext is never longer than its
    /// records).
    #[inline(never)]
    fn read_tls(
        &mut self,
        plain: &mut [u8],
        cipher: &mut Vec<u8>,
        records: &mut Vec<u8>,
    ) -> io::Result<TlsRead> {
        if cipher.is_empty() {
            *cipher = vec![0; READ_BYTES + MAX_RECORD];
        }
        let tls = self.tls.as_ref().expect("a TLS connection");
        let kept = tls.kept().len();
        cipher[..kept].copy_from_slice(tls.kept());
        let room = plain.len().min(cipher.len()).saturating_sub(kept);
        let n = match self.read(&mut cipher[kept..kept + room]) {
            Ok(0) => return Ok(TlsRead::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(TlsRead::Nothing),
            Err(e) => return Err(e),
        };
        let tls = self.tls.as_mut().expect("a TLS connection");
        let (got, received) = tls.receive(&mut cipher[..kept + n], plain, records);
        match received {
            Received::Open => Ok(TlsRead::Plaintext(got)),
            Received::PeerClosed => Ok(TlsRead::PeerClosed(got)),
            Received::Failed => {
                // The alert says why; then the connection goes.
                let _ = self.write(records);
                Err(io::ErrorKind::InvalidData.into())
            }
        }
    }

    /// Reads once, with rustix's `recv`: the same `recvfrom` syscall as
    /// std's, without glibc's wrapper. That wrapper makes every socket call a
    /// thread-cancellation point (two atomic read-modify-writes of the
    /// thread's cancel state around the syscall, in any process with more
    /// than one thread), which this server never uses (the measurement is in
    /// docs/design.md, "Dependencies").
    ///
    /// A read that fills less than `buf` drained the socket, so
    /// it also clears tokio's readiness (by reporting `WouldBlock` to
    /// `try_io`) and saves the read that would only return EAGAIN. This is
    /// race-free: readiness carries a tick, and data that arrives after the
    /// read raises a new edge with a new tick that the clear does not touch.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let capacity = buf.len();
        let mut got = 0;
        let result = self.stream.try_io(Interest::READABLE, || {
            got = rustix::net::recv(&self.stream, &mut *buf, RecvFlags::empty())?.0;
            if got > 0 && got < capacity {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(got)
            }
        });
        // Bytes arrived: a short read's `WouldBlock` only told `try_io` to
        // clear readiness. Otherwise the result stands (0 is end of stream).
        if got > 0 {
            Ok(got)
        } else {
            result
        }
    }

    /// Writes as much of `buf` as the socket takes now (rustix's `send`, as
    /// for reads; `MSG_NOSIGNAL` as std's own, so a closed peer is an error
    /// and not a SIGPIPE).
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < buf.len() {
            let rest = &buf[written..];
            let sent = self.stream.try_io(Interest::WRITABLE, || {
                Ok(rustix::net::send(&self.stream, rest, SendFlags::NOSIGNAL)?)
            });
            match sent {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Writes what the socket takes of `unsent`. A partial write only moves
    /// `unsent_at`: removing the written bytes each time would move all the
    /// rest (up to [`MAX_UNSENT_BYTES`]) per write to a slow reader. The
    /// rest moves to the front once at least as much as it was written,
    /// so each byte written pays for at most one byte moved, and the
    /// buffer (written part included) is what `MAX_UNSENT_BYTES` bounds.
    fn flush_unsent(&mut self) -> io::Result<()> {
        let written = self.write(&self.unsent[self.unsent_at..])?;
        self.unsent_at += written;
        let left = self.unsent.len() - self.unsent_at;
        if left == 0 {
            self.unsent_at = 0;
            if self.unsent.capacity() > KEEP_CAPACITY {
                self.unsent = Vec::new();
            } else {
                self.unsent.clear();
            }
        } else if self.unsent_at >= left {
            self.unsent.copy_within(self.unsent_at.., 0);
            self.unsent.truncate(left);
            self.unsent_at = 0;
        }
        self.track_writer();
        Ok(())
    }

    /// Keeps the unfinished request head (or chunk line) for the next read,
    /// and sets the deadline for what is unfinished. A head's starts when
    /// the head begins: when there was none, or when this read completed
    /// the previous one (`progressed`), so the rest is a new head. A
    /// body's moves on with every read that takes some of it, so a body of
    /// any size may take as long as it keeps coming (nginx's
    /// `client_body_timeout`); bytes of a chunk line that is still
    /// unfinished take nothing, so trickling one does not move it.
    fn keep_unread(&mut self, rest: &[u8], progressed: bool) {
        if self.unread.capacity() > KEEP_CAPACITY && rest.len() <= KEEP_CAPACITY {
            self.unread = Vec::new();
        }
        self.unread.clear();
        if !rest.is_empty() {
            self.unread.extend_from_slice(rest);
        }
        // One test of the pipeline's state per read; a request without a
        // body costs nothing more.
        if self.pipeline.in_body() {
            self.body_progress(progressed);
        } else if rest.is_empty() && !self.tls_unfinished() {
            self.read_deadline = None;
        } else if progressed || self.read_deadline.is_none() {
            self.read_deadline = Some(Instant::now() + self.shared.header_timeout);
        }
    }

    /// Whether TLS bytes are unfinished though no plaintext is: the
    /// handshake (whose deadline, set at accept, never moves) or the start
    /// of a record (timed like the start of a head).
    fn tls_unfinished(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|tls| tls.handshaking() || !tls.kept().is_empty())
    }

    /// Out of line: TFB's requests have no body.
    #[cold]
    #[inline(never)]
    fn body_progress(&mut self, progressed: bool) {
        if progressed || self.read_deadline.is_none() {
            self.read_deadline = Some(Instant::now() + self.shared.body_timeout);
        }
    }

    /// The time by which the connection closes unless something happens,
    /// if any: the unfinished head's or body's deadline while reading,
    /// else the idle timeout when one is configured and nothing is held.
    fn close_at(&self, reading: bool) -> Option<Instant> {
        let unfinished = if reading { self.read_deadline } else { None };
        unfinished.or_else(|| {
            let idle = self.shared.idle_timeout?;
            (!self.pipeline.holds()).then(|| Instant::now() + idle)
        })
    }

    fn track_writer(&mut self) {
        if self.lingering {
            return;
        }
        // Held answers are started responses too: a stop waits for them.
        let writing = !self.unsent.is_empty() || self.pipeline.holds();
        if writing != self.writer {
            self.writer = writing;
            if writing {
                self.shared.shutdown.writer_started();
            } else {
                self.shared.shutdown.writer_finished();
            }
        }
    }

    /// Flushes what is left, sends FIN, then reads and discards until the
    /// peer closes too (bounded in time and bytes), so a client that still
    /// had requests in flight receives our last answer instead of a reset.
    async fn close_gracefully(&mut self) {
        // Until the linger ends our last answers may still be in flight: a
        // stop must wait for this connection like for one with unsent output.
        self.lingering = true;
        if !self.writer {
            self.writer = true;
            self.shared.shutdown.writer_started();
        }
        let deadline = Instant::now() + LINGER;
        while !self.unsent.is_empty() {
            let writable = self
                .timer
                .timeout_at(deadline, pin!(self.stream.writable()))
                .await;
            if !matches!(writable, Some(Ok(()))) || self.flush_unsent().is_err() {
                return;
            }
        }
        if SockRef::from(&self.stream)
            .shutdown(std::net::Shutdown::Write)
            .is_err()
        {
            return;
        }
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match self
                .timer
                .timeout_at(deadline, pin!(self.stream.readable()))
                .await
            {
                Some(Ok(())) => {}
                _ => return,
            }
            // Into the thread's scratch buffer: a buffer of its own would sit
            // in every connection's future, used or not.
            match SCRATCH.with_borrow_mut(|scratch| self.read(&mut scratch.input)) {
                Ok(0) => return,
                Ok(n) => discarded += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.writer {
            self.shared.shutdown.writer_finished();
        }
        // A runtime dropped as its thread ends may drop connections after
        // the thread's locals are gone: then nothing is counted.
        let _ = SCRATCH.try_with(|scratch| {
            if let Ok(scratch) = scratch.try_borrow() {
                if let Some(stats) = &scratch.stats {
                    stats.closed();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection's task holds this future: it must stay small, since
    /// 16,384 of them must fit in the caches.
    #[test]
    fn connection_future_is_small() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let stream = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let future = serve(
                stream,
                Transport::Plain,
                Shared::for_unit_tests(),
                Timer::new().unwrap(),
            );
            let size = std::mem::size_of_val(&future);
            assert!(size <= 512, "connection future is {size} bytes");
        });
    }
}
