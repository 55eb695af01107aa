//! `--stats`: the per-worker counts add up to what was sent, in both
//! flavours; the table is one header, a line per worker and a total.

mod common;

use common::*;

#[test]
fn counts_add_up_to_the_requests_sent() {
    for flavour in FLAVOURS {
        let mut config = chopin::Config::local(flavour, 2);
        config.stats = true;
        let server = start_with(config);
        let addr = server.local_addr();
        let connections = 6;
        let mut sent = 0;
        for i in 0..connections {
            let mut conn = Conn::open(addr);
            // One request alone, then a pipelined batch of i + 1.
            conn.roundtrip(get("/plaintext"));
            conn.send(get("/json").repeat(i + 1));
            for _ in 0..=i {
                assert_eq!(conn.response().status, 200);
            }
            sent += 1 + (i + 1);
        }
        let rows = server.stats().rows();
        assert_eq!(rows.len(), 2, "{flavour}: one row per worker");
        let total = |f: fn(&chopin::stats::Row) -> u64| rows.iter().map(f).sum::<u64>();
        assert_eq!(total(|r| r.requests), sent as u64, "{flavour}: {rows:?}");
        assert_eq!(
            total(|r| r.accepted),
            connections as u64,
            "{flavour}: {rows:?}"
        );
        // Each connection's two sends are at least one read each, and a
        // read carries at most the requests sent.
        assert!(
            total(|r| r.reads) >= 2 * connections as u64,
            "{flavour}: {rows:?}"
        );
        assert!(total(|r| r.reads) <= sent as u64, "{flavour}: {rows:?}");
        assert!(total(|r| r.wakeups) > 0, "{flavour}: {rows:?}");
        assert!(
            rows.iter().all(|r| r.cpu_ms.is_some()),
            "{flavour}: {rows:?}"
        );
        server.shutdown();
    }
}

#[test]
fn without_the_flag_nothing_is_counted() {
    let server = start(chopin::Flavour::PerCore);
    let mut conn = Conn::open(server.local_addr());
    conn.roundtrip(get("/plaintext"));
    assert!(server.stats().is_empty());
    assert_eq!(
        server.stats().render().lines().count(),
        2,
        "header and total"
    );
    server.shutdown();
}
