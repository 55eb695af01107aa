//! Clients that pipeline faster than they read, on both runtime flavours,
//! over real sockets:
//!
//! * clients that pipeline without ever reading cannot grow the server's
//!   memory past a computed bound, and lose nothing;
//! * a client that reads slowly gets every byte, in order;
//! * a client that keeps its worker busy does not starve another.
//!
//! The server runs as a child process where its memory, CPU or exit status
//! is measured; the tests take `serial()` and never overlap.

#[macro_use]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use chopin::connection::{INPUT_BYTES, MAX_UNSENT_BYTES};
use chopin::request::MAX_HEAD_BYTES;
use chopin::{Config, Flavour};

use common::*;

fn backpressure(flavour: Flavour) {
    let _serial = serial();
    // A long header timeout: these clients stall with a request head cut
    // by the server's reads, and the 10 s default may fire on a slow
    // machine while they do (see `header_timeout_under_backpressure`).
    let bin = Bin::start(
        flavour,
        &["--workers", "2", "--header-timeout", "3600"],
        None,
    );

    // Warm up both workers (their scratch buffers, the runtime) so that the
    // baseline includes what every server has anyway; and measure the
    // largest answer/request size ratio of the mix.
    for _ in 0..8 {
        let mut c = connect(bin.addr);
        exchange(&mut c, &MIX.repeat(16));
    }
    let ratio = MIX
        .iter()
        .map(|&k| {
            let mut c = connect(bin.addr);
            c.write_all(k.request()).unwrap();
            let answer = read_answers(&mut c, &[k], Duration::from_secs(5));
            answer.len() as f64 / k.request().len() as f64
        })
        .fold(0.0, f64::max);
    let rss_before = bin.rss_kib();

    let stream = Stream::new(&MIX);
    let clients: Vec<TcpStream> = (0..STALLED_CLIENTS)
        .map(|_| {
            let c = connect(bin.addr);
            small_send_buffer(&c);
            c.set_nonblocking(true).unwrap();
            c
        })
        .collect();
    let started = Instant::now();
    let sent = fill_until_stalled(
        &clients,
        &stream,
        Duration::from_millis(300),
        cpu_idle(&bin),
    );
    let stalled_after = started.elapsed();
    let rss_after = bin.rss_kib();
    let growth = rss_after.saturating_sub(rss_before);

    // The bound. A connection reads while its unwritten output is under
    // MAX_UNSENT_BYTES, and one read answers at most INPUT_BYTES bytes
    // of requests, so it holds at most MAX_UNSENT_BYTES + one batch's
    // output, plus an unfinished head (< MAX_HEAD_BYTES). One batch's
    // output is its input times the largest answer/request size ratio of
    // the mix (about 3.8, for the 404). The output buffer is a Vec grown by
    // doubling and the allocator keeps freed chunks, so allow a factor of 2
    // per connection, plus 16 MiB for everything else (100 tasks, allocator
    // arenas). 100 x 2 x (256 + 270 + 8) KiB + 16 MiB is about 120 MiB.
    // Without the limit the server would read everything each client sends
    // and buffer ratio times as much: a client that never reads could make
    // it grow without end.
    let per_connection = MAX_UNSENT_BYTES + (INPUT_BYTES as f64 * ratio) as usize + MAX_HEAD_BYTES;
    let bound_kib = (STALLED_CLIENTS * per_connection * 2 / 1024 + 16 * 1024) as u64;
    let (min_sent, max_sent) = (
        sent.iter().min().copied().unwrap_or(0),
        sent.iter().max().copied().unwrap_or(0),
    );
    eprintln!(
        "{flavour}: {STALLED_CLIENTS} clients stalled after {stalled_after:.2?}, each having \
         written {}..{} KiB; server RSS {rss_before} KiB -> {rss_after} KiB (+{growth} KiB, \
         {} KiB per client; bound {bound_kib} KiB, answer/request ratio {ratio:.2})",
        min_sent / 1024,
        max_sent / 1024,
        growth / STALLED_CLIENTS as u64,
    );
    assert!(
        growth < bound_kib,
        "RSS grew by {growth} KiB with {STALLED_CLIENTS} stalled clients; bound {bound_kib} KiB"
    );

    // Meanwhile a normal client is answered, correctly and in order.
    let mut normal = connect(bin.addr);
    exchange(&mut normal, &MIX.repeat(8));

    let answers = drain_stalled_client(&clients[0], &stream, sent[0], Tail::AfterAnswers);
    eprintln!("{flavour}: the first stalled client read {answers} answers, whole and in order");

    drop(clients);
    drop(normal);
    bin.stop(Duration::from_secs(4));
}

both_flavours! {
    backpressure_bounds_memory => super::backpressure;
}

/// A client with a small receive buffer, reading a kilobyte at a
/// time, makes nearly every server write partial, over output held past
/// `MAX_UNSENT_BYTES`: it must still get every answer whole and in order,
/// then the close its last request asks for.
fn slow_reader_gets_every_byte_in_order(flavour: Flavour) {
    let _serial = serial();
    let server = start_in_process(Config::local(flavour, 2));
    let mut reader = connect(server.local_addr());
    socket2::SockRef::from(&reader)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    let mut kinds = MIX.repeat(1000);
    kinds.push(Kind::JsonClose);
    let requests = concat(&kinds);
    let mut writer = reader.try_clone().unwrap();
    // Its own thread: the server stops reading while its output waits, so
    // the write can block until the reader below makes room.
    let sender = thread::spawn(move || writer.write_all(&requests));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1000];
    loop {
        assert!(Instant::now() < deadline, "{} bytes in 30 s", buf.len());
        reader
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read after {} bytes: {e}", buf.len()),
        }
    }
    sender.join().unwrap().expect("write the requests");
    assert!(buf.len() > MAX_UNSENT_BYTES, "{} bytes", buf.len());
    check_exact(&buf, &kinds);
    server.shutdown();
}

both_flavours! {
    slow_reader_gets_every_byte_in_order => super::slow_reader_gets_every_byte_in_order;
}

// ---------------------------------------------------------------------------
// A client that keeps its worker busy
// ---------------------------------------------------------------------------

/// One worker; a client writes pipelined requests as fast as the socket
/// takes them and reads the answers as fast as they come, so its socket is
/// readable again after every (full) read. A second client on the same worker must
/// still get each answer promptly: the connection loop waits with
/// `poll_read_ready`, which spends tokio's cooperative budget, so the busy
/// task yields. (A loop that never yielded would starve the second client
/// for as long as the first keeps sending: the bound below would fail.)
fn busy_client_does_not_starve_another(flavour: Flavour) {
    let _serial = serial();
    let server = start_in_process(Config::local(flavour, 1));
    let addr = server.local_addr();
    let busy = connect(addr);
    let mut busy_writer = busy.try_clone().unwrap();
    let mut busy_reader = busy.try_clone().unwrap();
    // Large heads, small answers: the server's reads stay full (it cannot
    // outrun the writer) and its output stays far below the unsent limit,
    // so neither a short read nor backpressure parks the busy task.
    let request = format!(
        "GET /plaintext HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(4000)
    );
    let batch = request.repeat(16).into_bytes();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut batches = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if busy_writer.write_all(&batch).is_err() {
                    break;
                }
                batches += 1;
            }
            batches
        })
    };
    let reader = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut bytes = 0u64;
            busy_reader
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match busy_reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => bytes += n as u64,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
            bytes
        })
    };
    // Let the busy client get going before the other one arrives.
    thread::sleep(Duration::from_millis(300));
    let mut other = connect(addr);
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        exchange(&mut other, &MIX);
        slowest = slowest.max(started.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = busy.shutdown(std::net::Shutdown::Both);
    let batches = writer.join().unwrap();
    let answered = reader.join().unwrap();
    eprintln!(
        "{flavour}: busy client sent {batches} batches of 16 requests, read {answered} bytes; \
         the other client's slowest of 20 exchanges took {slowest:.2?}"
    );
    assert!(
        answered > 64 << 10,
        "the busy client was barely served ({answered} bytes), so it tested nothing"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "the other client waited {slowest:.2?} for an answer behind a busy one"
    );
    server.shutdown();
}

both_flavours! {
    busy_client_does_not_starve_another => super::busy_client_does_not_starve_another;
}
