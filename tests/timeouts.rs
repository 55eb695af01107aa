//! The header timeout (and the optional idle timeout), on both runtime
//! flavours, over real sockets: slow and trickled heads are closed, idle
//! and steadily pipelining clients are kept, and a client the server
//! stopped reading is not cut off.
//!
//! The server runs as a child process where its memory, CPU or exit status
//! is measured; the tests take `serial()` and never overlap.

#[macro_use]
mod hostile_clients;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use chopin::{Config, Flavour};

use hostile_clients::*;

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
    let (buf, how, closed) = read_to_close(stream, Duration::from_secs(5));
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
    let answers = drain_stalled_client(&client, &stream, sent[0]);
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
