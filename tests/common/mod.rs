//! What the integration tests share, one module per job:
//!
//! - this file: servers of both flavours started in-process, the skip rule,
//!   the requests and field sets the tests send and expect;
//! - [`response`]: the one response reader (sans-I/O), also used by the
//!   fuzz target;
//! - [`client`]: the one blocking client over any transport;
//! - [`date`]: the `Date` field checked against the clock;
//! - [`child`]: the binary as a child process, and `serial()`;
//! - [`kinds`] and [`stalled`]: the pipelined request vocabulary of the
//!   hostile clients, and clients that stop reading;
//! - [`feed`], [`pipeline_output`], [`inputs`], [`casing`]: the sans-I/O
//!   pipeline fed as a connection feeds it, its output's invariants, and the
//!   property tests' inputs (feed and pipeline_output also build into the
//!   fuzz target through `#[path]`).
//!
//! Every test file uses a different subset.
#![allow(dead_code)]

/// Generates `mod $name { per_core, multithread }` calling `$body(flavour)`
/// (for test files whose tests each start their own server).
#[allow(unused_macros)]
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

pub mod casing;
pub mod child;
pub mod client;
pub mod date;
pub mod feed;
pub mod inputs;
pub mod kinds;
pub mod pipeline_output;
pub mod response;
pub mod stalled;

// Each test file takes what it needs with `use common::*`.
#[allow(unused_imports)]
pub use {child::*, client::*, date::*, kinds::*, response::*, stalled::*};

use std::net::SocketAddr;
use std::time::Duration;

use chopin::{Config, Flavour, Server};

/// The variable under which a test that cannot run here fails instead of
/// skipping: `.ci/run` sets it, so CI cannot pass a check it never made,
/// while a newcomer's `cargo test` without wrk or taskset still passes.
pub const NO_SKIP: &str = "CHOPIN_TEST_NO_SKIP";

/// Says that `what` does not run here because of `why` (one `SKIPPED`
/// line); the caller then returns. Panics instead when [`NO_SKIP`] is set
/// to anything but empty or `0`.
#[track_caller]
pub fn skip(what: &str, why: &str) {
    skip_under(std::env::var_os(NO_SKIP), what, why);
}

/// [`skip`] with the variable's value given, so it can be tested without
/// changing the test process's environment.
#[track_caller]
pub fn skip_under(no_skip: Option<std::ffi::OsString>, what: &str, why: &str) {
    if no_skip.is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{what} cannot run here: {why} ({NO_SKIP} is set, so a skip is a failure)");
    }
    eprintln!("SKIPPED {what}: {why}");
}

/// Both flavours; every behaviour is checked on each.
pub const FLAVOURS: [Flavour; 2] = [Flavour::PerCore, Flavour::Multithread];

/// A request as TFB's wrk sends it for /plaintext.
pub const TFB_ACCEPT_PLAINTEXT: &str =
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";
/// The Accept header TFB's verifier sends for /json.
pub const TFB_ACCEPT_JSON: &str =
    "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";

pub use pipeline_output::{JSON_BODY, PLAINTEXT_BODY};

/// A minimal valid GET for `path`.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

/// A request with `method` on `path`, no body.
pub fn request(method: &str, path: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

/// `POST /echo` with `fields` (each line ending in CRLF) and `body`,
/// framed by Content-Length.
pub fn echo_request(fields: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST /echo HTTP/1.1\r\n{fields}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// `POST /echo` with `fields` and `body` in chunks of at most `chunk` bytes.
pub fn chunked_echo_request(fields: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut raw =
        format!("POST /echo HTTP/1.1\r\n{fields}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
    for piece in body.chunks(chunk) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

/// A TFB wrk-style keep-alive request.
pub fn tfb_request(path: &str, accept: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: tfb-server:8080\r\nAccept: {accept}\r\nConnection: keep-alive\r\n\r\n"
    )
}

/// Starts an in-process server of `flavour` with two workers.
pub fn start(flavour: Flavour) -> Server {
    start_with(Config::local(flavour, 2))
}

pub fn start_with(config: Config) -> Server {
    Server::start(&config)
        .unwrap_or_else(|e| panic!("{} server failed to start: {e}", config.runtime))
}

/// Runs `test` against a fresh server of each flavour in turn, then shuts the
/// server down. A failure names the flavour.
pub fn each_flavour(test: impl Fn(Flavour, SocketAddr)) {
    each_flavour_with(|_| {}, test);
}

/// Like [`each_flavour`], with `tweak` applied to the configuration first.
pub fn each_flavour_with(tweak: impl Fn(&mut Config), test: impl Fn(Flavour, SocketAddr)) {
    for flavour in FLAVOURS {
        let mut config = Config::local(flavour, 2);
        tweak(&mut config);
        let server = start_with(config);
        let addr = server.local_addr();
        // Printed only when the test fails (the harness captures it).
        eprintln!("--- flavour {flavour}, server at {addr}");
        test(flavour, addr);
        server.shutdown();
    }
}

/// The fields of a 200 /plaintext answer from a server named `chopin`.
pub fn plaintext_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Server", "chopin"),
        ("Content-Type", "text/plain"),
        ("Content-Length", "13"),
    ]
}

/// The fields of a 200 /json answer from a server named `chopin`.
pub fn json_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Server", "chopin"),
        ("Content-Type", "application/json"),
        ("Content-Length", "27"),
    ]
}

/// The fields of a 405 on a GET/HEAD route (the connection stays open).
pub fn allow_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Server", "chopin"),
        ("Allow", "GET, HEAD"),
        ("Content-Length", "0"),
    ]
}

/// The fields of an error answer (always closes).
pub fn error_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Server", "chopin"),
        ("Connection", "close"),
        ("Content-Length", "0"),
    ]
}

/// A deterministic byte generator (xorshift64*), for reproducible garbage.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

// ---------------------------------------------------------------------------
// The repository's Python scripts
// ---------------------------------------------------------------------------

/// Whether python3 runs here; when it does not, the test `what` is skipped
/// ([`skip`]: a failure under `CHOPIN_TEST_NO_SKIP`).
pub fn python3_or_skip(what: &str) -> bool {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip(what, "python3 is not installed");
    }
    found
}

/// Runs `python3 script args` and returns its output; killed if it runs
/// past `limit` (its output then ends where it was stopped).
pub fn run_python(script: &str, args: &[&str], limit: Duration) -> std::process::Output {
    let child = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn python3 {script}: {e}"));
    let pid = child.id() as i32;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done_tx.send(());
        output
    });
    if done_rx.recv_timeout(limit).is_err() {
        // SAFETY: `kill` with a pid this test spawned and has not reaped
        // (the waiter thread reaps it only after it exits).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    waiter.join().unwrap().unwrap()
}

/// A checking script's report: its last line is `N passed, 0 failed` with
/// N > 0, and no line says FAIL.
pub fn assert_all_passed(stdout: &str) {
    let last = stdout.lines().last().unwrap_or_default();
    let (passed, failed) = last
        .split_once(" passed, ")
        .unwrap_or_else(|| panic!("last line {last:?}"));
    assert!(passed.parse::<u32>().unwrap() > 0, "{last:?}");
    assert_eq!(failed, "0 failed", "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

/// A port on 127.0.0.1 that nothing listens on: bound, then released.
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
