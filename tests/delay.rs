//! `GET /delay/{ms}` over real sockets, in both flavours: each answer
//! leaves no earlier than its wait (a clock read on the client), in request
//! order, the second of two pipelined waits not held for their sum; bad
//! waits get 400 and a close; a client that resets during a wait takes its
//! connection with it (counted by `--stats`); a stop answers what is due
//! within its drain bound and closes the rest.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

fn delay_fields(body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Server", "chopin".to_owned()),
        ("Content-Type", "text/plain".to_owned()),
        ("Content-Length", body.len().to_string()),
    ]
}

fn assert_delayed(resp: &Response, ms: u64) {
    let body = ms.to_string();
    let fields = delay_fields(&body);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    resp.assert_exact(200, &fields, body.as_bytes());
}

/// Sends `GET /delay/{ms}` and returns the answer and how long it took.
fn timed(conn: &mut Conn, ms: u64) -> (Response, Duration) {
    let sent = Instant::now();
    let resp = conn.roundtrip(get(&format!("/delay/{ms}")));
    (resp, sent.elapsed())
}

#[test]
fn each_answer_leaves_no_earlier_than_its_wait() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for ms in [0, 1, 10, 500] {
            let (resp, took) = timed(&mut conn, ms);
            assert_delayed(&resp, ms);
            assert!(
                took >= Duration::from_millis(ms),
                "/delay/{ms} answered after {took:?}"
            );
        }
        conn.assert_alive();
    });
}

#[test]
fn the_longest_wait_is_a_minute_and_one_millisecond_more_is_400() {
    each_flavour(|_, addr| {
        // A minute: held, and the connection stays open meanwhile.
        let mut conn = Conn::open(addr);
        conn.send(get("/delay/60000"));
        conn.expect_silence(Duration::from_millis(200));

        let mut conn = Conn::open(addr);
        conn.roundtrip(get("/delay/60001"))
            .assert_exact(400, &error_fields(), b"");
        conn.expect_close();
    });
}

#[test]
fn a_wait_that_is_not_a_decimal_is_400_and_a_close() {
    each_flavour(|_, addr| {
        for target in [
            "/delay/abc",
            "/delay/-1",
            "/delay/+1",
            "/delay/1.5",
            "/delay/10ms",
            "/delay/%31",
            "/delay/99999999999999999999",
        ] {
            let mut conn = Conn::open(addr);
            conn.roundtrip(get(target))
                .assert_exact(400, &error_fields(), b"");
            conn.expect_close();
        }
    });
}

#[test]
fn overlapping_waits_on_separate_connections_each_echo_their_own() {
    each_flavour(|_, addr| {
        let mut rng = Rng::new(0xde1a);
        // HttpArena's check: 32 at once, random waits of 10 to 90 ms.
        let waits: Vec<u64> = (0..32).map(|_| 10 + rng.next_u64() % 81).collect();
        let mut conns: Vec<(Conn, u64, Instant)> = waits
            .iter()
            .map(|&ms| {
                let mut conn = Conn::open(addr);
                let sent = Instant::now();
                conn.send(get(&format!("/delay/{ms}")));
                (conn, ms, sent)
            })
            .collect();
        for (conn, ms, sent) in &mut conns {
            let resp = conn.response();
            let took = sent.elapsed();
            assert_delayed(&resp, *ms);
            assert!(
                took >= Duration::from_millis(*ms),
                "/delay/{ms} answered after {took:?}"
            );
        }
    });
}

#[test]
fn pipelined_waits_come_back_in_order_and_not_after_their_sum() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        let sent = Instant::now();
        let mut raw = get("/delay/600");
        raw.push_str(&get("/delay/500"));
        raw.push_str(&get("/plaintext"));
        raw.push_str(&get("/delay/0"));
        conn.send(raw);
        let first = conn.response();
        let first_at = sent.elapsed();
        let second = conn.response();
        let second_at = sent.elapsed();
        let third = conn.response();
        let fourth = conn.response();
        assert_delayed(&first, 600);
        assert_delayed(&second, 500);
        third.assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        assert_delayed(&fourth, 0);
        assert!(first_at >= Duration::from_millis(600), "{first_at:?}");
        // The second's wait started when it was read, with the first's: it
        // is due before the first and leaves right after it, not 500 ms
        // later (the sum, 1,100 ms).
        assert!(
            second_at < Duration::from_millis(1_000),
            "the second wait was held for the sum: {second_at:?}"
        );
        conn.assert_alive();
    });
}

#[test]
fn a_request_read_during_a_wait_waits_behind_it() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        let sent = Instant::now();
        conn.send(get("/delay/300"));
        conn.expect_silence(Duration::from_millis(50));
        conn.send(get("/json"));
        assert_delayed(&conn.response(), 300);
        conn.response().assert_exact(200, &json_fields(), JSON_BODY);
        assert!(sent.elapsed() >= Duration::from_millis(300));
    });
}

/// The stats' totals: (accepted, closed, reads).
fn totals(server: &chopin::Server) -> (u64, u64, u64) {
    let rows = server.stats().rows();
    (
        rows.iter().map(|r| r.accepted).sum(),
        rows.iter().map(|r| r.closed).sum(),
        rows.iter().map(|r| r.reads).sum(),
    )
}

/// Waits, for at most 5 s, until `done` holds of the stats' totals; the
/// counters are the only signal of what the server did with a socket whose
/// peer is gone.
fn until(server: &chopin::Server, what: &str, done: impl Fn((u64, u64, u64)) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(totals(server)) {
        assert!(Instant::now() < deadline, "{what}: {:?}", totals(server));
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn server_with_stats(flavour: chopin::Flavour) -> chopin::Server {
    let mut config = chopin::Config::local(flavour, 2);
    config.stats = true;
    start_with(config)
}

/// Sends `/delay/{ms}` on a new connection and returns once the server has
/// read it (its read count went up).
fn held(server: &chopin::Server, addr: SocketAddr, ms: u64) -> Conn {
    let (_, _, reads) = totals(server);
    let mut conn = Conn::open(addr);
    conn.send(get(&format!("/delay/{ms}")));
    until(server, "the request was read", |(_, _, r)| r > reads);
    conn
}

#[test]
fn a_client_that_resets_during_a_wait_leaves_nothing_behind() {
    for flavour in FLAVOURS {
        let server = server_with_stats(flavour);
        let addr = server.local_addr();
        let conns: Vec<Conn> = (0..8).map(|_| held(&server, addr, 60_000)).collect();
        let (accepted, closed, _) = totals(&server);
        assert_eq!((accepted, closed), (8, 0), "{flavour}");
        for conn in conns {
            // SO_LINGER 0: the close is a reset.
            socket2::SockRef::from(&conn.stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        // Every connection, its held answer and its deadline dropped
        // (a deadline's drop takes it out of the timer), long before any
        // of the waits would have ended.
        until(&server, "every reset connection closed", |(a, c, _)| {
            a == 8 && c == 8
        });
        let mut conn = Conn::open(addr);
        conn.assert_alive();
        server.shutdown();
    }
}

#[test]
fn a_stop_answers_the_waits_due_within_its_bound_and_closes_the_rest() {
    for flavour in FLAVOURS {
        let server = server_with_stats(flavour);
        let addr = server.local_addr();
        let mut due = held(&server, addr, 300);
        let mut too_long = held(&server, addr, 60_000);
        let stop = Instant::now();
        let stopping = std::thread::spawn(move || server.shutdown());
        let resp = due.response();
        assert_eq!(resp.status, 200, "{flavour}: {resp}");
        assert_eq!(resp.body, b"300", "{flavour}: {resp}");
        let rest = too_long.read_to_close();
        assert!(
            rest.is_empty(),
            "{flavour}: {:?}",
            String::from_utf8_lossy(&rest)
        );
        stopping.join().unwrap();
        // The drain bound is 2 s; what is still waiting then is closed.
        assert!(
            stop.elapsed() < Duration::from_secs(4),
            "{flavour}: {:?}",
            stop.elapsed()
        );
    }
}
