//! Many connections at once, on both flavours.

mod common;

use std::net::SocketAddr;
use std::thread;

use common::*;

const CONNECTIONS: usize = 1000;
const THREADS: usize = 4;

/// Client and server share this process: two descriptors per connection,
/// plus margin.
fn raise_fd_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < needed {
            limit.rlim_cur = needed.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= needed,
        "RLIMIT_NOFILE is {} (hard {}); this test needs {needed}",
        limit.rlim_cur,
        limit.rlim_max
    );
}

/// 1000 connections are all open before any sends a request; then each
/// sends two pipelined requests and, once answered, a third.
#[test]
fn thousand_concurrent_connections() {
    raise_fd_limit(2 * CONNECTIONS as u64 + 256);
    each_flavour(|_, addr| {
        // Connect from several threads; every connection is open before
        // any request is sent.
        let openers: Vec<_> = (0..THREADS)
            .map(|_| thread::spawn(move || open_many(addr, CONNECTIONS / THREADS)))
            .collect();
        let groups: Vec<Vec<Conn>> = openers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), CONNECTIONS);
        let clients: Vec<_> = groups
            .into_iter()
            .enumerate()
            .map(|(t, conns)| thread::spawn(move || exchange(t, conns)))
            .collect();
        let answered: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(answered, 3 * CONNECTIONS);
    });
}

fn open_many(addr: SocketAddr, n: usize) -> Vec<Conn> {
    (0..n).map(|_| Conn::open(addr)).collect()
}

fn exchange(t: usize, mut conns: Vec<Conn>) -> usize {
    let pair = get("/plaintext") + &get("/json");
    for conn in &mut conns {
        conn.send(&pair);
    }
    let mut answered = 0;
    for (i, conn) in conns.iter_mut().enumerate() {
        let plain = conn.response();
        assert_eq!(plain.status, 200, "thread {t}, connection {i}: {plain}");
        plain.assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        conn.response().assert_exact(200, &json_fields(), JSON_BODY);
        answered += 2;
    }
    for conn in &mut conns {
        conn.send(request("HEAD", "/json"));
    }
    for conn in &mut conns {
        conn.head_response().assert_exact(200, &json_fields(), b"");
        answered += 1;
    }
    answered
}

/// Connections opened and closed in a hurry from several threads: every
/// one is answered and closed by the server after `Connection: close`.
#[test]
fn connection_churn() {
    each_flavour(|_, addr| {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                thread::spawn(move || {
                    for _ in 0..100 {
                        let mut conn = Conn::open(addr);
                        conn.send("GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
                        let resp = conn.response();
                        resp.assert_exact(
                            200,
                            &[
                                ("Server", "chopin"),
                                ("Connection", "close"),
                                ("Content-Type", "application/json"),
                                ("Content-Length", "27"),
                            ],
                            JSON_BODY,
                        );
                        conn.expect_close();
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
}
