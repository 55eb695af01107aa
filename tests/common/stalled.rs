//! Clients that pipeline without reading until the server stops reading
//! them, then drain: backpressure seen from outside.

use std::io::{self, ErrorKind, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::child::Bin;
use super::client::read_until_close;
use super::kinds::{check_exact, concat, read_answers, read_answers_and_end, Kind};

/// poll(2) over `fds` for up to `timeout_ms`; the number of ready ones.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> usize {
    // SAFETY: `fds` is a valid, exclusively borrowed pollfd array.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    assert!(n >= 0, "poll: {}", io::Error::last_os_error());
    n as usize
}

pub const STALLED_CLIENTS: usize = 100;
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

/// When a drained client sends the rest of its stream: the end of the cut
/// head and a closing request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Once every answer to its whole requests has come: the server must
    /// answer them all without anything new to read.
    AfterAnswers,
    /// From a second thread while it reads, as a full-duplex client does:
    /// the bytes reach the server as soon as it reads again. A test of the
    /// header timeout needs this: the server's timeout for the cut head
    /// starts once it has answered everything whole, while its answers may
    /// still sit in its socket buffer for the client (a debug build, on a
    /// busy machine, parsing megabytes of them) to read.
    WhileReading,
}

/// A stalled client starts reading: it must get the answer to every whole
/// request it sent (the server resumes reading what it had left in its
/// receive buffer as output drains). It completes its cut request and
/// sends a closing one (when, `tail` says): the whole stream it read must
/// be exactly those answers, in order, and then EOF.
pub fn drain_stalled_client(client: &TcpStream, stream: &Stream, sent: usize, tail: Tail) -> usize {
    let (mut kinds, partial) = stream.complete(sent);
    let mut reader = client.try_clone().unwrap();
    reader.set_nonblocking(false).unwrap();
    let mut writer = client.try_clone().unwrap();
    writer.set_nonblocking(false).unwrap();
    let mut tail_kinds = Vec::new();
    let mut rest_of_stream = Vec::new();
    if partial > 0 {
        let at = sent % stream.unit.len();
        let (end, kind) = *stream.ends.iter().find(|&&(end, _)| end > at).unwrap();
        rest_of_stream.extend_from_slice(&stream.unit[at..end]);
        tail_kinds.push(kind);
    }
    rest_of_stream.extend_from_slice(Kind::JsonClose.request());
    tail_kinds.push(Kind::JsonClose);
    let mut send = move || {
        if let Err(e) = writer.write_all(&rest_of_stream) {
            panic!("sending the rest of the stream failed: {e} (the server closed early?)");
        }
    };
    let (mut buf, early) = match tail {
        Tail::AfterAnswers => {
            let buf = read_answers(&mut reader, &kinds, Duration::from_secs(60));
            // Sent before the (large) stream read so far is checked, which
            // in a debug build on a busy machine takes a while.
            send();
            (buf, Vec::new())
        }
        Tail::WhileReading => std::thread::scope(|scope| {
            let sending = scope.spawn(send);
            let (mut buf, end) = read_answers_and_end(&mut reader, &kinds, Duration::from_secs(60));
            sending.join().expect("the sending thread");
            // The last read may have brought the start of the tail's answers.
            let early = buf.split_off(end);
            (buf, early)
        }),
    };
    check_exact(&buf, &kinds);
    let (rest, how, _) = read_until_close(&mut reader, Duration::from_secs(10));
    how.expect("the stream ends with EOF after Connection: close");
    let rest = [early, rest].concat();
    check_exact(&rest, &tail_kinds);
    buf.extend_from_slice(&rest);
    kinds.extend(tail_kinds);
    check_exact(&buf, &kinds);
    kinds.len()
}
