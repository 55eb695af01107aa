//! The header, idle and body timeouts, on both runtime flavours, over real
//! sockets: slow and trickled heads are closed, idle and steadily
//! pipelining clients are kept, a client the server stopped reading is not
//! cut off, `--idle-timeout` closes idle connections, and a request body
//! that stops coming is closed while one that keeps coming is not.
//!
//! The tests measure time; they take `serial()` and never overlap.

#[macro_use]
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use chopin::{Config, Flavour};

use common::*;

const HALF_A_SECOND: Duration = Duration::from_millis(500);

fn config(flavour: Flavour, header: Duration, idle: Option<Duration>) -> Config {
    let mut cfg = Config::local(flavour, 2);
    cfg.header_timeout = header;
    cfg.idle_timeout = idle;
    cfg
}

/// Reads `stream` until the server closes it: nothing more may arrive, and
/// the close must come at least [`HALF_A_SECOND`] (the tests' timeout)
/// after `since` and before `within`. Returns how long after `since`.
fn closed_without_answer(
    stream: &mut TcpStream,
    since: Instant,
    within: Duration,
    what: &str,
) -> Duration {
    let (buf, how, closed) = read_until_close(stream, Duration::from_secs(5));
    let after = closed - since;
    assert_closed(&how, what);
    assert!(
        buf.is_empty(),
        "{what}: answered {:?}",
        String::from_utf8_lossy(&buf)
    );
    assert!(
        after >= HALF_A_SECOND,
        "{what}: closed after {after:?}, before the timeout"
    );
    assert!(after < within, "{what}: closed only after {after:?}");
    after
}

/// Half a request head, then nothing: closed after the header timeout,
/// without an answer.
fn half_head_is_closed(flavour: Flavour) {
    let _serial = serial();
    let server = start_in_process(config(flavour, HALF_A_SECOND, None));
    let mut c = connect(server.local_addr());
    let sent = Instant::now();
    c.write_all(b"GET /plaintext HTTP/1.1\r\nHo").unwrap();
    let after = closed_without_answer(&mut c, sent, Duration::from_secs(3), "half a head");
    eprintln!("{flavour}: half a head closed after {after:.2?}");
    server.shutdown();
}

/// A head trickled a byte at a time is still closed at the timeout: the
/// deadline is not pushed back by each byte (slowloris).
fn trickled_head_is_closed(flavour: Flavour) {
    let _serial = serial();
    let server = start_in_process(config(flavour, HALF_A_SECOND, None));
    let mut c = connect(server.local_addr());
    let mut trickle = c.try_clone().unwrap();
    let first = Instant::now();
    let writer = thread::spawn(move || {
        for &b in b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX-Slow: "
            .iter()
            .cycle()
            .take(40)
        {
            if trickle.write_all(&[b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    closed_without_answer(&mut c, first, Duration::from_millis(1500), "trickled head");
    writer.join().unwrap();
    server.shutdown();
}

/// No unfinished head, no idle timeout: a connection idle between requests
/// for three header timeouts is kept and still answered.
fn idle_between_requests_is_kept(flavour: Flavour) {
    let _serial = serial();
    let server = start_in_process(config(flavour, HALF_A_SECOND, None));
    let mut c = connect(server.local_addr());
    exchange(&mut c, &MIX);
    thread::sleep(Duration::from_millis(1500));
    exchange(&mut c, &MIX.repeat(4));
    // And a connection that never sent a byte is not closed either.
    let mut silent = connect(server.local_addr());
    thread::sleep(Duration::from_millis(1000));
    exchange(&mut silent, &[Kind::Plain]);
    server.shutdown();
}

/// With an idle timeout, idle connections (after answers, or never used)
/// are closed after it.
fn idle_timeout_closes(flavour: Flavour) {
    let _serial = serial();
    let server = start_in_process(config(
        flavour,
        Duration::from_secs(10),
        Some(HALF_A_SECOND),
    ));
    let mut used = connect(server.local_addr());
    exchange(&mut used, &MIX);
    let answered = Instant::now();
    let mut unused = connect(server.local_addr());
    let opened = Instant::now();

    let within = Duration::from_secs(3);
    closed_without_answer(&mut used, answered, within, "idle after answers");
    closed_without_answer(&mut unused, opened, within, "never used");
    server.shutdown();
}

both_flavours! {
    header_timeout_closes_half_a_head => super::half_head_is_closed;
    header_timeout_closes_a_trickled_head => super::trickled_head_is_closed;
    header_timeout_spares_idle_connections => super::idle_between_requests_is_kept;
    idle_timeout_closes_idle_connections => super::idle_timeout_closes;
}

/// Each head here arrives within 250 ms, under a 500 ms header timeout, but
/// every read ends inside the next head. The deadline belongs to the
/// unfinished head (`read_deadline` in connection.rs); a new head must get
/// a new one, so this client is never closed.
fn steady_pipeliner_is_kept(flavour: Flavour) {
    let _serial = serial();
    let server = start_in_process(config(flavour, HALF_A_SECOND, None));
    let mut c = connect(server.local_addr());
    let request = Kind::Plain.request();
    let half = request.len() / 2;
    let rounds = 6;
    let mut kinds = Vec::new();
    c.write_all(&request[..half]).unwrap();
    for _ in 0..rounds {
        thread::sleep(Duration::from_millis(250));
        // The rest of this head, then the first half of the next one.
        let mut bytes = request[half..].to_vec();
        bytes.extend_from_slice(&request[..half]);
        c.write_all(&bytes)
            .expect("closed while every head arrives within 250 ms");
        kinds.push(Kind::Plain);
    }
    let buf = read_answers(&mut c, &kinds, Duration::from_secs(5));
    check_exact(&buf, &kinds);
    server.shutdown();
}

/// The header timeout concerns clients slow to send a head; a client whose
/// head is unfinished only because the server stopped reading (its output
/// is over MAX_UNSENT_BYTES) must not be cut off, losing its answers.
fn header_timeout_under_backpressure(flavour: Flavour) {
    let _serial = serial();
    let server = start_in_process(config(flavour, HALF_A_SECOND, None));
    let stream = Stream::new(&MIX);
    let client = connect(server.local_addr());
    small_send_buffer(&client);
    client.set_nonblocking(true).unwrap();
    let sent = fill_until_stalled(
        std::slice::from_ref(&client),
        &stream,
        Duration::from_millis(1000),
        || true,
    );
    // The client reads only after three header timeouts.
    thread::sleep(Duration::from_millis(1500));
    let answers = drain_stalled_client(&client, &stream, sent[0], Tail::WhileReading);
    eprintln!("{flavour}: {answers} answers read after a 1.5 s stall");
    server.shutdown();
}

both_flavours! {
    header_timeout_restarts_for_each_head => super::steady_pipeliner_is_kept;
}

mod header_timeout_bugs {
    #[test]
    fn under_backpressure_per_core() {
        super::header_timeout_under_backpressure(chopin::Flavour::PerCore);
    }
    #[test]
    fn under_backpressure_multithread() {
        super::header_timeout_under_backpressure(chopin::Flavour::Multithread);
    }
}

// ---------------------------------------------------------------------------
// In-process servers of both flavours in turn
// ---------------------------------------------------------------------------

/// `--header-timeout`: an unfinished head is dropped after it, an idle
/// keep-alive connection is not (without `--idle-timeout`).
#[test]
fn header_timeout_closes_unfinished_heads_only() {
    let _serial = serial();
    let timeout = Duration::from_millis(300);
    each_flavour_with(
        |config| config.header_timeout = timeout,
        |_, addr| {
            let mut idle = Conn::open(addr);
            idle.assert_alive();
            let mut slow = Conn::open(addr);
            let started = Instant::now();
            slow.send("GET /json HTTP/1.1\r\nHost: a\r\n");
            slow.expect_close();
            let took = started.elapsed();
            assert!(
                took >= timeout - Duration::from_millis(20),
                "closed after {took:?}, before the {timeout:?} header timeout"
            );
            // Idle for longer than the header timeout: still served.
            assert!(started.elapsed() > timeout);
            idle.assert_alive();
        },
    );
}

/// `--idle-timeout`: an idle keep-alive connection is closed after it.
#[test]
fn idle_timeout_closes_idle_connections() {
    let _serial = serial();
    let timeout = Duration::from_millis(300);
    each_flavour_with(
        |config| config.idle_timeout = Some(timeout),
        |_, addr| {
            let mut conn = Conn::open(addr);
            conn.assert_alive();
            let started = Instant::now();
            conn.expect_close();
            let took = started.elapsed();
            assert!(
                took >= timeout - Duration::from_millis(20),
                "closed after {took:?}, before the {timeout:?} idle timeout"
            );
        },
    );
}

/// The header timeout bounds how long one head takes to arrive. A busy
/// client whose writes keep ending inside a request (every head complete
/// within milliseconds, but some head always unfinished at the end of a
/// read) must not be cut off after `--header-timeout`.
#[test]
fn header_timeout_applies_per_head_on_a_busy_connection() {
    let _serial = serial();
    let timeout = Duration::from_millis(300);
    each_flavour_with(
        |config| config.header_timeout = timeout,
        |_, addr| {
            let mut conn = Conn::open(addr);
            let one = get("/json");
            // Writes of one request plus a byte, 20 ms apart: a write ends
            // on a request boundary only every len-th (39th) time, so for
            // these 30 writes (600 ms, twice the timeout) every read ends
            // inside a head, and every head completes within 20 ms.
            let chunk = one.len() + 1;
            let writes = 30;
            assert!(writes < one.len());
            let stream = one.repeat(writes * chunk / one.len() + 1).into_bytes();
            let stream = &stream[..writes * chunk];
            let mut writer = conn.stream.try_clone().unwrap();
            let sent = stream.to_vec();
            let sender = std::thread::spawn(move || {
                use std::io::Write;
                for piece in sent.chunks(chunk) {
                    if writer.write_all(piece).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            let complete = stream.len() / one.len();
            let started = std::time::Instant::now();
            for i in 0..complete {
                eprintln!("waiting for response {i} at {:?}", started.elapsed());
                let resp = conn.response();
                assert_eq!(resp.status, 200, "response {i}: {resp}");
                assert_eq!(resp.body, JSON_BODY, "response {i}: {resp}");
            }
            sender.join().unwrap();
        },
    );
}

/// `--body-timeout`: a request body that stops coming closes the
/// connection once that long has passed without a read taking some of it:
/// a `Content-Length` body (its 405 is already answered), a chunked body
/// stopped inside a chunk-size line, and one whose chunk-size line grows a
/// byte at a time without ending (bytes of an unfinished line are no
/// progress, or it could be held open for 8 KiB of timeouts).
#[test]
fn body_timeout_closes_a_stalled_body() {
    let _serial = serial();
    let timeout = Duration::from_millis(300);
    let at_least = timeout - Duration::from_millis(20);
    each_flavour_with(
        |config| config.body_timeout = timeout,
        |_, addr| {
            let mut conn = Conn::open(addr);
            let started = Instant::now();
            let resp =
                conn.roundtrip("POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
            resp.assert_exact(405, &allow_fields(), b"");
            conn.expect_close();
            let took = started.elapsed();
            assert!(
                took >= at_least,
                "Content-Length body closed after {took:?}"
            );

            let chunked = "POST /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
            let mut conn = Conn::open(addr);
            let started = Instant::now();
            conn.send(format!("{chunked}5\r\nhello\r\n1"));
            conn.expect_close();
            let took = started.elapsed();
            assert!(took >= at_least, "chunk-size line closed after {took:?}");

            let mut conn = Conn::open(addr);
            let started = Instant::now();
            conn.send(format!("{chunked}5\r\nhello\r\n1;a="));
            let mut writer = conn.stream.try_clone().unwrap();
            let trickle = std::thread::spawn(move || {
                use std::io::Write;
                for _ in 0..40 {
                    if writer.write_all(b"b").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            conn.expect_close();
            let took = started.elapsed();
            assert!(
                took >= at_least && took < 4 * timeout,
                "trickled chunk-size line closed after {took:?}"
            );
            trickle.join().unwrap();
        },
    );
}

/// A body that keeps coming is not cut, however long it takes in all:
/// here every piece arrives within half the body timeout, for four times
/// the timeout, then the connection goes on.
#[test]
fn body_timeout_spares_a_body_that_keeps_coming() {
    let _serial = serial();
    let timeout = Duration::from_millis(300);
    let pace = Duration::from_millis(150);
    each_flavour_with(
        |config| config.body_timeout = timeout,
        |_, addr| {
            let mut conn = Conn::open(addr);
            let resp =
                conn.roundtrip("POST /json HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n");
            resp.assert_exact(405, &allow_fields(), b"");
            for byte in b"01234567" {
                std::thread::sleep(pace);
                conn.send([*byte]);
            }
            conn.assert_alive();

            conn.send("POST /json HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
            for _ in 0..8 {
                std::thread::sleep(pace);
                conn.send("1\r\nx\r\n");
            }
            let resp = conn.roundtrip("0\r\n\r\n");
            resp.assert_exact(405, &allow_fields(), b"");
            conn.assert_alive();
        },
    );
}
