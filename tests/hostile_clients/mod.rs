//! What the tests of hostile and heavy clients share: the `chopin` binary
//! run as a child process (so that its memory, CPU time, file descriptor
//! limit and exit status are its own; the startup line on stderr is the
//! readiness signal), a strict reader for pipelined answers, and clients
//! that pipeline without reading until the server stops reading them.
//!
//! Every test takes [`serial`]: they measure time, memory and CPU on a
//! 2-core machine and must not overlap.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use chopin::request::MAX_HEAD_BYTES;
use chopin::{Config, Flavour, Server};

pub const BIN: &str = env!("CARGO_BIN_EXE_chopin");

/// Generates `mod $name { per_core, multithread }` calling `$body(flavour)`.
macro_rules! both_flavours {
    ($($name:ident => $body:path;)*) => {$(
        mod $name {
            #[test]
            fn per_core() {
                $body(chopin::Flavour::PerCore);
            }
            #[test]
            fn multithread() {
                $body(chopin::Flavour::Multithread);
            }
        }
    )*};
}

pub static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time (a failed test poisons nothing for the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// The binary as a child process
// ---------------------------------------------------------------------------

/// A running `chopin` binary; killed on drop if a test fails half-way.
pub struct Bin {
    pub child: Child,
    pub addr: SocketAddr,
    /// stderr lines after the startup line.
    pub stderr: Receiver<String>,
}

impl Bin {
    /// Starts the binary on 127.0.0.1, an ephemeral port, and waits for the
    /// startup line. `nofile` sets RLIMIT_NOFILE (soft and hard) in the child.
    pub fn start(flavour: Flavour, args: &[&str], nofile: Option<u64>) -> Bin {
        let mut cmd = Command::new(BIN);
        cmd.args(["--port", "0", "--bind", "127.0.0.1", "--runtime"])
            .arg(flavour.name())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(limit) = nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
            unsafe {
                cmd.pre_exec(move || {
                    let rlim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn the chopin binary");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut bin = Bin {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr: rx,
        };
        let startup = bin
            .wait_stderr(Duration::from_secs(10), |l| l.contains("listening on "))
            .unwrap_or_else(|| {
                panic!(
                    "{flavour}: no startup line on stderr within 10 s (args {args:?}); \
                     the server never reported that it listens"
                )
            });
        bin.addr = startup
            .rsplit("listening on ")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in the startup line {startup:?}"));
        bin
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next stderr line matching `pred`, within `timeout`.
    pub fn wait_stderr(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    pub fn status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    /// utime + stime, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn terminate(&self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
    }

    /// Waits for the exit, polling; `None` if still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then exit 0 within `bound`; returns how long it took.
    pub fn stop(mut self, bound: Duration) -> Duration {
        let start = Instant::now();
        self.terminate();
        let status = self.wait_exit(bound);
        let took = start.elapsed();
        match status {
            Some(status) => assert!(status.success(), "exit status {status} after SIGTERM"),
            None => panic!("still running {bound:?} after SIGTERM"),
        }
        took
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `Server::start` in-process, bounded: it must return once the workers
/// accept; a start that hangs fails the test instead of hanging it.
pub fn start_in_process(cfg: Config) -> Server {
    let (tx, rx) = mpsc::channel();
    let flavour = cfg.runtime;
    thread::spawn(move || {
        let _ = tx.send(Server::start(&cfg));
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(server) => server.expect("Server::start"),
        Err(_) => panic!("{flavour}: Server::start did not return within 10 s"),
    }
}

// ---------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------

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
            Kind::Plain => (200, b"Hello, World!"),
            Kind::Json | Kind::JsonClose => (200, br#"{"message":"Hello, World!"}"#),
            Kind::NotFound => (404, b""),
            Kind::HeadPlain => (200, b""),
        }
    }
}

/// A pipelined mix whose four answers all differ, so order is checkable.
pub const MIX: [Kind; 4] = [Kind::Plain, Kind::Json, Kind::NotFound, Kind::HeadPlain];

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
    pub close: bool,
}

/// Parses one whole response at the front of `buf`; `Ok(None)` if it has
/// not fully arrived. `head` means it answers a HEAD request (no body).
pub fn parse_one(buf: &[u8], head: bool) -> Result<Option<(Resp, usize)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 4096 {
            return Err(format!("no head end in {} bytes", buf.len()));
        }
        return Ok(None);
    };
    let head_text =
        std::str::from_utf8(&buf[..end]).map_err(|_| "non-ASCII response head".to_owned())?;
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut close = false;
    for line in lines {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("bad field line {line:?}"))?;
        match name {
            "Content-Length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {value:?}"))?,
                )
            }
            "Connection" => close = value == "close",
            _ => {}
        }
    }
    let length = length.ok_or("no Content-Length")?;
    let body_len = if head { 0 } else { length };
    let total = end + 4 + body_len;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((
        Resp {
            status,
            body: buf[end + 4..total].to_vec(),
            close,
        },
        total,
    )))
}

/// Checks that `buf` is exactly the answers to `kinds`, in order, whole,
/// with nothing before, between or after them.
pub fn check_exact(buf: &[u8], kinds: &[Kind]) {
    let mut pos = 0;
    for (i, &kind) in kinds.iter().enumerate() {
        let (resp, used) = parse_one(&buf[pos..], kind == Kind::HeadPlain)
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
        assert_eq!(resp.close, kind == Kind::JsonClose, "response {i}");
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

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
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
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut parsed = 0;
    let mut pos = 0;
    while parsed < kinds.len() {
        while parsed < kinds.len() {
            match parse_one(&buf[pos..], kinds[parsed] == Kind::HeadPlain) {
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
    buf
}

/// Reads until the server closes (EOF or reset) or `timeout`; returns the
/// bytes, how it ended and when.
pub fn read_to_close(
    stream: &mut TcpStream,
    timeout: Duration,
) -> (Vec<u8>, io::Result<()>, Instant) {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (buf, Err(ErrorKind::TimedOut.into()), Instant::now());
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return (buf, Ok(()), Instant::now()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return (buf, Err(e), Instant::now()),
        }
    }
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

pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> usize {
    // SAFETY: `fds` is a valid, exclusively borrowed pollfd array.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    assert!(n >= 0, "poll: {}", io::Error::last_os_error());
    n as usize
}

pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as u64
}

// ---------------------------------------------------------------------------
// Clients that never read
// ---------------------------------------------------------------------------

pub const STALLED_CLIENTS: usize = 100;
/// The connection's scratch input buffer (connection.rs, private): one read
/// takes at most this much input, kept head included.
pub const MAX_BATCH_INPUT: usize = 64 * 1024 + MAX_HEAD_BYTES;
/// A client that got this far without blocking proves the server kept
/// reading: with backpressure a client blocks after a few MiB of kernel
/// buffers.
pub const STALL_CAP: usize = 64 << 20;

/// The whole bytes of `kinds` repeated, as one client writes them.
pub struct Stream {
    unit: Vec<u8>,
    /// Request boundaries within `unit`: (end offset, kind).
    ends: Vec<(usize, Kind)>,
    chunk: Vec<u8>,
}

impl Stream {
    pub fn new(kinds: &[Kind]) -> Stream {
        let unit = concat(kinds);
        let mut ends = Vec::new();
        let mut end = 0;
        for &k in kinds {
            end += k.request().len();
            ends.push((end, k));
        }
        let chunk = unit.repeat((32 * 1024) / unit.len() + 1);
        Stream { unit, ends, chunk }
    }

    /// The next bytes to write after `sent` bytes.
    pub fn next(&self, sent: usize) -> &[u8] {
        &self.chunk[sent % self.unit.len()..]
    }

    /// The kinds of the requests wholly inside the first `sent` bytes, and
    /// the length of the partial request after them.
    pub fn complete(&self, sent: usize) -> (Vec<Kind>, usize) {
        let units = sent / self.unit.len();
        let rest = sent % self.unit.len();
        let mut kinds = Vec::with_capacity(units * self.ends.len() + self.ends.len());
        for _ in 0..units {
            kinds.extend(self.ends.iter().map(|&(_, k)| k));
        }
        let mut done = 0;
        for &(end, k) in &self.ends {
            if end <= rest {
                kinds.push(k);
                done = end;
            }
        }
        (kinds, rest - done)
    }
}

/// Shrinks a client's kernel send buffer: what a stalled client has queued
/// in its own kernel is of no interest here, and the server must work
/// through it later. The server's buffers keep their defaults.
pub fn small_send_buffer(c: &TcpStream) {
    let size: libc::c_int = 64 * 1024;
    // SAFETY: setsockopt on a socket we own with a valid c_int.
    let r = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_SNDBUF: {}", io::Error::last_os_error());
}

/// Writes to every client, non-blocking, until the server has stopped
/// reading from all of them: no client socket has become writable for
/// `quiet`, and `idle` confirms (the server process used no CPU meanwhile;
/// a slow server still working through its input is not stalled).
/// Returns the bytes each client wrote.
pub fn fill_until_stalled(
    clients: &[TcpStream],
    stream: &Stream,
    quiet: Duration,
    mut idle: impl FnMut() -> bool,
) -> Vec<usize> {
    let mut sent = vec![0usize; clients.len()];
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut fds: Vec<libc::pollfd> = clients
        .iter()
        .map(|c| libc::pollfd {
            fd: c.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        })
        .collect();
    loop {
        assert!(
            Instant::now() < deadline,
            "clients still writable (or the server still busy) after 90 s: the server never \
             stopped reading (sent {} MiB in all)",
            sent.iter().sum::<usize>() >> 20
        );
        if poll(&mut fds, quiet.as_millis() as i32) == 0 {
            if idle() {
                return sent;
            }
            continue;
        }
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                panic!(
                    "client {i} was closed or reset by the server while it wrote \
                     (poll revents {:#x})",
                    fd.revents
                );
            }
            if fd.revents & libc::POLLOUT == 0 {
                continue;
            }
            loop {
                match (&clients[i]).write(stream.next(sent[i])) {
                    Ok(n) => sent[i] += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("client {i}: write: {e}"),
                }
                assert!(
                    sent[i] < STALL_CAP,
                    "client {i} wrote {} MiB without blocking: the server keeps reading",
                    STALL_CAP >> 20
                );
            }
        }
    }
}

/// An `idle` check for [`fill_until_stalled`]: true when the process used
/// no CPU time since the previous call.
pub fn cpu_idle(bin: &Bin) -> impl FnMut() -> bool + '_ {
    let mut last = bin.cpu_ticks();
    move || {
        let now = bin.cpu_ticks();
        let idle = now == last;
        last = now;
        idle
    }
}

/// A stalled client starts reading, and sends nothing new: it must get the
/// answer to every whole request it sent (the server resumes reading what
/// it had left in its receive buffer as output drains). Then it completes
/// its cut request and sends a closing one: the whole stream it read must
/// be exactly those answers, in order, and then EOF.
pub fn drain_stalled_client(client: &TcpStream, stream: &Stream, sent: usize) -> usize {
    let (mut kinds, partial) = stream.complete(sent);
    let mut reader = client.try_clone().unwrap();
    reader.set_nonblocking(false).unwrap();
    let mut buf = read_answers(&mut reader, &kinds, Duration::from_secs(60));

    // The server has answered everything whole and now waits for the rest
    // of the cut head, with its header timeout running: send it before
    // checking the (large) stream read so far, which in a debug build on a
    // busy machine can take longer than the test's 0.5 s timeout.
    let mut writer = client.try_clone().unwrap();
    writer.set_nonblocking(false).unwrap();
    let mut tail = Vec::new();
    if partial > 0 {
        let at = sent % stream.unit.len();
        let (end, kind) = *stream.ends.iter().find(|&&(end, _)| end > at).unwrap();
        writer.write_all(&stream.unit[at..end]).unwrap();
        tail.push(kind);
    }
    writer.write_all(Kind::JsonClose.request()).unwrap();
    tail.push(Kind::JsonClose);
    check_exact(&buf, &kinds);
    let (rest, how, _) = read_to_close(&mut reader, Duration::from_secs(10));
    how.expect("the stream ends with EOF after Connection: close");
    check_exact(&rest, &tail);
    buf.extend_from_slice(&rest);
    kinds.extend(tail);
    check_exact(&buf, &kinds);
    kinds.len()
}
