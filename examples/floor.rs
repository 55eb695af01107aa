//! The floor: the cost of loopback TCP and the syscalls alone.
//!
//! A single-threaded raw epoll loop that parses nothing. It counts `\r\n\r\n`
//! terminators in what it reads and answers each one with a canned response:
//! `{"message":"Hello, World!"}` (application/json) when the request starts
//! with `GET /json`, otherwise the canned `Hello, World!` plaintext response.
//!
//! It is not a valid HTTP server. It exists so that `scripts/bench --floor` can
//! report chopin's server CPU per request as a ratio to this lower bound.
//!
//! Two ways to find the terminators (`--scan`):
//! - `bytes` (the default): look at every byte for the next `\n`. This is
//!   the byte floor: the lower bound a parser that reads every byte cannot
//!   beat; `scripts/bench` calls this one `floor`, and its "× floor" ratios
//!   are the headline ones.
//! - `memchr`: the same search, jumping from `\n` to `\n` with libc's
//!   vectorised `memchr`, a stronger floor (about a third of the user-space
//!   instructions); `scripts/bench` runs it as `floor-memchr` and reports
//!   ratios to it too.
//!
//! Usage: `cargo run --release --example floor -- [--port N] [--addr A.B.C.D]
//! [--backlog N] [--scan bytes|memchr]`
//!
//! Design: edge-triggered epoll for connections (level-triggered listener with
//! a non-blocking `accept4` loop until `EAGAIN`), reads until `EAGAIN` or a
//! short read, one `write` of all answers per readiness. A carry-over of up to
//! 3 bytes makes a terminator split across reads count. SIGTERM/SIGINT arrive
//! through a `signalfd` and end the loop with exit status 0.

use std::io;
use std::net::Ipv4Addr;
use std::process::ExitCode;

const PLAINTEXT: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: floor\r\n\
Date: Sun, 23 Nov 2025 04:00:00 GMT\r\n\
Content-Type: text/plain\r\n\
Content-Length: 13\r\n\
\r\n\
Hello, World!";

const JSON: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: floor\r\n\
Date: Sun, 23 Nov 2025 04:00:00 GMT\r\n\
Content-Type: application/json\r\n\
Content-Length: 27\r\n\
\r\n\
{\"message\":\"Hello, World!\"}";

/// The request prefix that selects the json answer.
const JSON_PREFIX: &[u8; 9] = b"GET /json";
/// Bytes kept from the previous read so that a split terminator counts.
const CARRY: usize = 3;
/// Read buffer size (after the carry area).
const READ_CAP: usize = 64 * 1024;
const MAX_EVENTS: usize = 1024;
const LISTENER_TOKEN: u64 = u64::MAX;
const SIGNAL_TOKEN: u64 = u64::MAX - 1;

/// Per-connection state.
#[derive(Default)]
struct Conn {
    /// The first bytes of the current (incomplete) request, up to 9.
    head: [u8; 9],
    head_len: u8,
    /// Trailing bytes of the stream after the last terminator, up to 3.
    tail: [u8; CARRY],
    tail_len: u8,
    /// Answers not yet written (only after a short write; usually empty).
    pending: Vec<u8>,
    /// Whether EPOLLOUT is currently requested.
    want_out: bool,
}

impl Conn {
    fn fill_head(&mut self, bytes: &[u8]) {
        let have = self.head_len as usize;
        if have < self.head.len() {
            let take = (self.head.len() - have).min(bytes.len());
            self.head[have..have + take].copy_from_slice(&bytes[..take]);
            self.head_len = (have + take) as u8;
        }
    }

    fn is_json(&self) -> bool {
        self.head_len as usize == JSON_PREFIX.len() && &self.head == JSON_PREFIX
    }
}

/// How the floor looks for `\r\n\r\n` (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    Bytes,
    Memchr,
}

struct Args {
    port: u16,
    addr: Ipv4Addr,
    backlog: i32,
    scan: Scan,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 8080,
        addr: Ipv4Addr::LOCALHOST,
        backlog: 4096,
        scan: Scan::Bytes,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                args.port = v.parse().map_err(|e| format!("--port {v}: {e}"))?;
            }
            "--addr" => {
                let v = value("--addr")?;
                args.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--backlog" => {
                let v = value("--backlog")?;
                args.backlog = v.parse().map_err(|e| format!("--backlog {v}: {e}"))?;
            }
            "--scan" => {
                args.scan = match value("--scan")?.as_str() {
                    "bytes" => Scan::Bytes,
                    "memchr" => Scan::Memchr,
                    other => return Err(format!("--scan {other:?}: expected bytes or memchr")),
                };
            }
            "-h" | "--help" => {
                return Err("usage: floor [--port N (8080)] [--addr IPV4 (127.0.0.1)] \
                            [--backlog N (4096)] [--scan bytes|memchr (bytes)]"
                    .to_string())
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

/// Turns a libc return value into an `io::Result`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn set_int_opt(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: `value` lives for the duration of the call and the length passed
    // is exactly its size; an invalid fd only yields an error return.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn listen_socket(args: &Args) -> io::Result<libc::c_int> {
    // SAFETY: plain syscall with constant arguments; the result is checked.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    // SAFETY: sockaddr_in is plain old data, all-zero is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = args.port.to_be();
    sa.sin_addr.s_addr = u32::from(args.addr).to_be();
    // SAFETY: `sa` is a valid sockaddr_in and the length passed is its size.
    cvt(unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })?;
    // SAFETY: plain syscall on the socket we own; the result is checked.
    cvt(unsafe { libc::listen(fd, args.backlog) })?;
    Ok(fd)
}

/// Blocks SIGTERM and SIGINT and returns a non-blocking signalfd for them.
fn signal_fd() -> io::Result<libc::c_int> {
    // SAFETY: sigset_t is plain old data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t; the signal
    // numbers are valid; a null old-set pointer is allowed by sigprocmask.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        cvt(libc::sigprocmask(
            libc::SIG_BLOCK,
            &set,
            std::ptr::null_mut(),
        ))?;
    }
    // SAFETY: `set` is initialised; -1 asks for a new signalfd.
    cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })
}

fn epoll_add(ep: libc::c_int, fd: libc::c_int, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

fn epoll_mod(ep: libc::c_int, fd: libc::c_int, events: u32, token: u64) {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, &mut ev) };
}

const CONN_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32;

fn close_fd(fd: libc::c_int) {
    // SAFETY: the fd is owned by the caller and not used after this call.
    unsafe { libc::close(fd) };
}

struct Server {
    ep: libc::c_int,
    scan: Scan,
    conns: Vec<Option<Conn>>,
    /// `CARRY` bytes of room for the carry-over, then the read area.
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Server {
    fn accept_all(&mut self, lfd: libc::c_int) {
        // Bounded: at most one pass over the accept queue per readiness.
        for _ in 0..65_536 {
            // SAFETY: null address pointers are allowed by accept4.
            let fd = unsafe {
                libc::accept4(
                    lfd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR) | Some(libc::ECONNABORTED) => continue,
                    _ => {
                        eprintln!("floor: accept4: {err}");
                        return;
                    }
                }
            }
            set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
            let idx = fd as usize;
            if self.conns.len() <= idx {
                self.conns.resize_with(idx + 1, || None);
            }
            self.conns[idx] = Some(Conn::default());
            if let Err(e) = epoll_add(self.ep, fd, CONN_EVENTS, fd as u64) {
                eprintln!("floor: epoll_ctl add: {e}");
                self.conns[idx] = None;
                close_fd(fd);
            }
        }
    }

    fn close(&mut self, fd: libc::c_int) {
        self.conns[fd as usize] = None;
        close_fd(fd);
    }

    /// Writes `data`; returns the number of bytes written or `None` on a fatal error.
    fn write_some(fd: libc::c_int, data: &[u8]) -> Option<usize> {
        // SAFETY: `data` is a valid readable slice of the given length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            return Some(n as usize);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Some(0),
            _ => None,
        }
    }

    /// Flushes pending output after EPOLLOUT. Returns false if the connection died.
    fn flush_pending(&mut self, fd: libc::c_int) -> bool {
        let Some(conn) = self.conns[fd as usize].as_mut() else {
            return false;
        };
        if conn.pending.is_empty() {
            return true;
        }
        let Some(n) = Self::write_some(fd, &conn.pending) else {
            return false;
        };
        conn.pending.drain(..n);
        if conn.pending.is_empty() && conn.want_out {
            conn.want_out = false;
            epoll_mod(self.ep, fd, CONN_EVENTS, fd as u64);
        }
        true
    }

    /// Handles read readiness: read until EAGAIN or a short read, count
    /// terminators, then one write of all answers.
    fn on_readable(&mut self, fd: libc::c_int) {
        let Server {
            ep,
            scan: how,
            conns,
            buf,
            out,
        } = self;
        let Some(conn) = conns[fd as usize].as_mut() else {
            return;
        };
        out.clear();
        let mut alive = true;
        // Bounded: at most 64 full buffers (4 MiB) per readiness; if input is
        // still left, re-arm with EPOLL_CTL_MOD so edge-triggered epoll
        // reports it again.
        let mut drained = false;
        for _ in 0..64 {
            let tl = conn.tail_len as usize;
            buf[CARRY - tl..CARRY].copy_from_slice(&conn.tail[..tl]);
            // SAFETY: the destination is the `READ_CAP` bytes after the carry
            // area of `buf`, which is `CARRY + READ_CAP` bytes long.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().add(CARRY).cast(), READ_CAP) };
            if n <= 0 {
                if n < 0 {
                    match io::Error::last_os_error().raw_os_error() {
                        Some(libc::EAGAIN) => {}
                        Some(libc::EINTR) => continue,
                        _ => alive = false,
                    }
                } else {
                    alive = false;
                }
                drained = true;
                break;
            }
            let n = n as usize;
            scan(*how, conn, &buf[CARRY - tl..CARRY + n], tl, out);
            if n < READ_CAP {
                drained = true;
                break;
            }
        }
        if alive && !out.is_empty() {
            if conn.pending.is_empty() {
                match Self::write_some(fd, out) {
                    Some(w) if w == out.len() => {}
                    Some(w) => conn.pending.extend_from_slice(&out[w..]),
                    None => alive = false,
                }
            } else {
                conn.pending.extend_from_slice(out);
            }
        }
        if !alive {
            self.close(fd);
            return;
        }
        let want_out = !conn.pending.is_empty();
        if want_out != conn.want_out || !drained {
            conn.want_out = want_out;
            let mut ev = CONN_EVENTS;
            if want_out {
                ev |= libc::EPOLLOUT as u32;
            }
            // Re-arming with MOD also re-reports input left unread.
            epoll_mod(*ep, fd, ev, fd as u64);
        }
    }
}

/// Counts terminators in `data` (whose first `carried` bytes are the carry-over
/// from the previous read) and appends one canned answer per terminator.
fn scan(how: Scan, conn: &mut Conn, data: &[u8], carried: usize, out: &mut Vec<u8>) {
    // One copy of the loop per search, each with its search inlined.
    match how {
        Scan::Bytes => scan_with(find_terminator_bytewise, conn, data, carried, out),
        Scan::Memchr => scan_with(find_terminator, conn, data, carried, out),
    }
}

#[inline(always)]
fn scan_with(
    find: impl Fn(&[u8], usize) -> Option<usize>,
    conn: &mut Conn,
    data: &[u8],
    carried: usize,
    out: &mut Vec<u8>,
) {
    // Start of the current request's bytes not yet fed to `conn.head`.
    let mut req_start = carried;
    // Where the terminator search resumes.
    let mut from = 0;
    while let Some(end) = find(data, from) {
        // `end > carried` always: the carry-over never holds a whole terminator.
        conn.fill_head(&data[req_start.min(end)..end]);
        out.extend_from_slice(if conn.is_json() { JSON } else { PLAINTEXT });
        conn.head_len = 0;
        req_start = end;
        from = end;
    }
    conn.fill_head(&data[req_start..]);
    // Keep the last (up to) 3 bytes after the last terminator.
    let keep = (data.len() - from).min(CARRY);
    conn.tail[..keep].copy_from_slice(&data[data.len() - keep..]);
    conn.tail_len = keep as u8;
}

/// Returns the end index of the first `\r\n\r\n` in `data[from..]`,
/// looking at every byte for a `\n`: the byte floor.
fn find_terminator_bytewise(data: &[u8], from: usize) -> Option<usize> {
    find_terminator_with(data, from, |bytes| bytes.iter().position(|&b| b == b'\n'))
}

/// Returns the end index of the first `\r\n\r\n` in `data[from..]`,
/// jumping between `\n` bytes with libc's vectorised `memchr`.
fn find_terminator(data: &[u8], from: usize) -> Option<usize> {
    find_terminator_with(data, from, |bytes| {
        // SAFETY: `bytes` is a valid slice; memchr reads at most `bytes.len()` bytes.
        let p = unsafe { libc::memchr(bytes.as_ptr().cast(), b'\n' as libc::c_int, bytes.len()) };
        // SAFETY: a non-null result points into `bytes`, so both pointers are
        // derived from the same allocation and the offset is non-negative.
        (!p.is_null()).then(|| unsafe { p.cast::<u8>().offset_from(bytes.as_ptr()) } as usize)
    })
}

/// The terminator search, given how to find the next `\n` in a slice.
#[inline(always)]
fn find_terminator_with(
    data: &[u8],
    from: usize,
    next_newline: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    let mut i = from;
    while i + 4 <= data.len() {
        // Find the next '\n' that could be the second byte of a terminator.
        let nl = i + 1 + next_newline(&data[i + 1..data.len() - 2])?;
        if data[nl - 1] == b'\r' && data[nl + 1] == b'\r' && data[nl + 2] == b'\n' {
            return Some(nl + 3);
        }
        i = nl;
    }
    None
}

fn run(args: &Args) -> io::Result<()> {
    let sfd = signal_fd()?;
    let lfd = listen_socket(args)?;
    // SAFETY: plain syscall; the result is checked.
    let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    epoll_add(ep, lfd, libc::EPOLLIN as u32, LISTENER_TOKEN)?;
    epoll_add(ep, sfd, libc::EPOLLIN as u32, SIGNAL_TOKEN)?;
    eprintln!(
        "floor: listening on {}:{} (single thread, raw epoll, backlog {}, scan {:?}, pid {})",
        args.addr,
        args.port,
        args.backlog,
        args.scan,
        std::process::id()
    );
    let mut server = Server {
        ep,
        scan: args.scan,
        conns: Vec::new(),
        buf: vec![0u8; CARRY + READ_CAP],
        out: Vec::with_capacity(64 * 1024),
    };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    loop {
        // SAFETY: `events` has room for MAX_EVENTS entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), MAX_EVENTS as i32, -1) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        for ev in &events[..n as usize] {
            let (token, flags) = (ev.u64, ev.events);
            match token {
                LISTENER_TOKEN => server.accept_all(lfd),
                SIGNAL_TOKEN => {
                    eprintln!("floor: signal received, exiting");
                    return Ok(());
                }
                fd => {
                    let fd = fd as libc::c_int;
                    if flags & libc::EPOLLOUT as u32 != 0 && !server.flush_pending(fd) {
                        server.close(fd);
                        continue;
                    }
                    if flags
                        & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR)
                            as u32
                        != 0
                    {
                        server.on_readable(fd);
                    }
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("floor: {msg}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(how: Scan, conn: &mut Conn, chunk: &[u8], out: &mut Vec<u8>) {
        let tl = conn.tail_len as usize;
        let mut data = conn.tail[..tl].to_vec();
        data.extend_from_slice(chunk);
        scan(how, conn, &data, tl, out);
    }

    #[test]
    fn counts_split_terminators_and_picks_json() {
        let stream: Vec<u8> = [
            &b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /plaintext HTTP/1.1\r\n\r\n",
        ]
        .concat();
        let expected = [PLAINTEXT, JSON, PLAINTEXT].concat();
        for how in [Scan::Bytes, Scan::Memchr] {
            for split in 1..stream.len() {
                for split2 in split..stream.len() {
                    let mut conn = Conn::default();
                    let mut out = Vec::new();
                    feed(how, &mut conn, &stream[..split], &mut out);
                    feed(how, &mut conn, &stream[split..split2], &mut out);
                    feed(how, &mut conn, &stream[split2..], &mut out);
                    assert_eq!(out, expected, "{how:?}: splits at {split}, {split2}");
                }
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let stream = b"GET /json HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n\r\n";
        for how in [Scan::Bytes, Scan::Memchr] {
            let mut conn = Conn::default();
            let mut out = Vec::new();
            for b in stream.iter() {
                feed(how, &mut conn, std::slice::from_ref(b), &mut out);
            }
            assert_eq!(out, [JSON, PLAINTEXT].concat(), "{how:?}");
        }
    }

    /// Both scans against a naive search, from every start offset of `data`.
    fn check_scans(data: &[u8]) {
        for from in 0..=data.len() {
            let expected = (from..data.len().saturating_sub(3))
                .find(|&i| &data[i..i + 4] == b"\r\n\r\n")
                .map(|i| i + 4);
            assert_eq!(
                find_terminator_bytewise(data, from),
                expected,
                "{data:?} {from}"
            );
            assert_eq!(find_terminator(data, from), expected, "{data:?} {from}");
        }
    }

    /// Every string of `\r`, `\n` and `x` up to 9 bytes.
    #[test]
    fn scans_agree_with_a_naive_search_exhaustively() {
        let alphabet = [b'\r', b'\n', b'x'];
        let mut data = Vec::new();
        for len in 0..=9u32 {
            for mut code in 0..3usize.pow(len) {
                data.clear();
                for _ in 0..len {
                    data.push(alphabet[code % 3]);
                    code /= 3;
                }
                check_scans(&data);
            }
        }
    }

    /// Longer inputs, where libc's memchr takes its vector path.
    #[test]
    fn scans_agree_on_requests() {
        let samples: [&[u8]; 2] = [
            b"x\r\r\n\r\n\n\r\n\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ];
        for data in samples {
            check_scans(data);
        }
        // A terminator straddling every offset of a 100-byte line.
        for at in 0..97 {
            let mut data = vec![b'a'; 100];
            data[at..at + 4].copy_from_slice(b"\r\n\r\n");
            check_scans(&data);
        }
    }
}
