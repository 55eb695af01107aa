//! Shutting down, on both runtime flavours: SIGTERM under pipelined load
//! exits 0 within the drain bound and every response a client received is
//! whole; `Server::shutdown` closes idle connections and heads in progress
//! and stops accepting.
//!
//! The server runs as a child process where its exit status is checked;
//! the tests take `serial()` and never overlap.

#[macro_use]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chopin::Flavour;

use common::*;

const RAW_CLIENTS: usize = 8;
const DEPTH: usize = 16;
const WRK_CONNECTIONS: usize = 64;

/// What a raw pipelining client received until the server went away.
struct Recorded {
    bytes: Vec<u8>,
    batches: usize,
    end: String,
}

/// Pipelines DEPTH requests per write and reads their answers, until the
/// connection ends; records every byte received.
fn raw_client(addr: SocketAddr, ready: mpsc::Sender<()>) -> Recorded {
    let mut c = connect(addr);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let kinds: Vec<Kind> = MIX.iter().copied().cycle().take(DEPTH).collect();
    let batch = concat(&kinds);
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut batches = 0;
    let mut pos = 0;
    let end = 'outer: loop {
        if let Err(e) = c.write_all(&batch) {
            break format!("write: {e}");
        }
        let mut answered = 0;
        while answered < DEPTH {
            match parse(&bytes[pos..], kinds[answered] == Kind::HeadPlain) {
                Ok(Some((_, used))) => {
                    pos += used;
                    answered += 1;
                    continue;
                }
                Ok(None) => {}
                Err(e) => break 'outer format!("garbage: {e}"),
            }
            match c.read(&mut chunk) {
                Ok(0) => break 'outer "EOF".to_owned(),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) => break 'outer format!("read: {e}"),
            }
        }
        batches += 1;
        if batches == 1 {
            let _ = ready.send(());
        }
    };
    Recorded {
        bytes,
        batches,
        end,
    }
}

/// Whole answers to the cycling MIX, nothing truncated; returns how many.
fn whole_answers(bytes: &[u8]) -> usize {
    let mut pos = 0;
    let mut i = 0;
    while pos < bytes.len() {
        let kind = MIX[i % MIX.len()];
        match parse(&bytes[pos..], kind == Kind::HeadPlain) {
            Ok(Some((resp, used))) => {
                assert_eq!((resp.status, &resp.body[..]), kind.expected(), "answer {i}");
                pos += used;
                i += 1;
            }
            Ok(None) => panic!(
                "answer {i} truncated: {} bytes {:?}",
                bytes.len() - pos,
                String::from_utf8_lossy(&bytes[pos..])
            ),
            Err(e) => panic!("answer {i}: {e}"),
        }
    }
    i
}

fn sigterm_under_load(flavour: Flavour) {
    let _serial = serial();
    let bin = Bin::start(flavour, &["--workers", "2"], None);
    let base_fds = bin.fd_count();

    let wrk = Command::new("wrk")
        .args(["-t1", &format!("-c{WRK_CONNECTIONS}"), "-d5s", "-s"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pipeline.lua"))
        .arg(format!("http://{}/plaintext", bin.addr))
        .args(["--", &DEPTH.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let wrk = match wrk {
        Ok(child) => Some(child),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            common::skip(
                &format!("the wrk part of sigterm_under_load ({flavour})"),
                "wrk is not installed (apt-get install wrk); the raw pipelining clients still run",
            );
            None
        }
        Err(e) => panic!("cannot run wrk: {e}"),
    };

    let (ready_tx, ready_rx) = mpsc::channel();
    let addr = bin.addr;
    let clients: Vec<_> = (0..RAW_CLIENTS)
        .map(|_| {
            let ready = ready_tx.clone();
            thread::spawn(move || raw_client(addr, ready))
        })
        .collect();
    // Ready: every raw client has a first batch answered, and wrk's
    // connections are open (the server holds their descriptors).
    for _ in 0..RAW_CLIENTS {
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a raw client never got its first answers");
    }
    let want_fds = base_fds + RAW_CLIENTS + if wrk.is_some() { WRK_CONNECTIONS } else { 0 };
    let until = Instant::now() + Duration::from_secs(10);
    while bin.fd_count() < want_fds {
        assert!(
            Instant::now() < until,
            "wrk's connections never opened ({} fds, want {want_fds})",
            bin.fd_count()
        );
        thread::sleep(Duration::from_millis(10));
    }

    // Mid-run: a second of load (wrk runs for five).
    thread::sleep(Duration::from_secs(1));
    let took = bin.stop(Duration::from_millis(3500));
    eprintln!("{flavour}: exited 0 {took:.2?} after SIGTERM under load");

    for (i, client) in clients.into_iter().enumerate() {
        let rec = client.join().unwrap();
        let answers = whole_answers(&rec.bytes);
        assert!(rec.batches >= 1);
        assert!(
            answers >= rec.batches * DEPTH,
            "client {i}: {answers} answers for {} batches",
            rec.batches
        );
        assert!(
            rec.end == "EOF" || rec.end.contains("reset") || rec.end.contains("Broken pipe"),
            "client {i} ended with {:?}, not a close",
            rec.end
        );
        eprintln!(
            "{flavour}: raw client {i}: {answers} whole answers, then {}",
            rec.end
        );
    }

    if let Some(wrk) = wrk {
        let out = wrk.wait_with_output().expect("wait for wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        let summary = text
            .lines()
            .find(|l| l.contains("requests in"))
            .unwrap_or("(no summary)");
        eprintln!("{flavour}: wrk: {}", summary.trim());
        assert!(out.status.success(), "wrk failed: {text}");
    }
}

both_flavours! {
    sigterm_under_load_exits_cleanly => super::sigterm_under_load;
}

/// `Server::shutdown`: idle keep-alive connections are closed, a head in
/// progress is dropped, new connections are refused, and it returns within
/// the drain bound.
#[test]
fn shutdown_closes_connections_and_stops_accepting() {
    let _serial = serial();
    for flavour in FLAVOURS {
        let server = start(flavour);
        let addr = server.local_addr();
        let mut idle = Conn::open(addr);
        idle.assert_alive();
        let mut partial = Conn::open(addr);
        partial.send("GET /json HTTP/1.1\r\nHost: a\r\n");
        let started = Instant::now();
        server.shutdown();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{flavour}: shutdown took {took:?}"
        );
        assert!(idle.read_to_close().is_empty(), "{flavour}");
        assert!(partial.read_to_close().is_empty(), "{flavour}");
        let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        assert!(refused.is_err(), "{flavour}: connected after shutdown");
    }
}
