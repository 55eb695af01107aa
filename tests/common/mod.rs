//! Shared helpers for the integration tests: a server per flavour, a blocking
//! client connection with timeouts, and a small exact HTTP/1.1 response
//! reader for responses that arrive back to back on one stream.
//!
//! Every test file uses a different subset of this module.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// How long any single read may block before the test fails instead of hanging.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the server gets to close a connection it should close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request as TFB's wrk sends it for /plaintext.
pub const TFB_ACCEPT_PLAINTEXT: &str =
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";
/// The Accept header TFB's verifier sends for /json.
pub const TFB_ACCEPT_JSON: &str =
    "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";

pub const PLAINTEXT_BODY: &[u8] = b"Hello, World!";
pub const JSON_BODY: &[u8] = br#"{"message":"Hello, World!"}"#;

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

/// One parsed response, with the exact bytes it came in.
#[derive(Clone, Debug)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// In arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Every byte of this response on the wire, head and body.
    pub raw: Vec<u8>,
}

impl Response {
    /// Every value of the field `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of `name`, if present; panics if it appears more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} appears {} times: {self}", all.len());
        all.first().copied()
    }

    /// The value of `name`, which must appear exactly once.
    pub fn single(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header: {self}"))
    }

    pub fn content_length(&self) -> usize {
        let value = self.single("Content-Length");
        value
            .parse()
            .unwrap_or_else(|_| panic!("bad Content-Length {value:?}"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// Asserts the exact set of fields: `expected` (name, value) pairs plus
    /// `Date`, which must be a current IMF-fixdate; no field missing, none
    /// extra, none repeated. Order is not checked (TFB does not care).
    pub fn assert_fields(&self, expected: &[(&str, &str)]) {
        let mut got: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "fields of {self}");
        assert_date_is_now(self.single("Date"));
    }

    /// Asserts status, exact fields (plus a current Date) and body.
    pub fn assert_exact(&self, status: u16, fields: &[(&str, &str)], body: &[u8]) {
        assert_eq!(self.version, "HTTP/1.1", "{self}");
        assert_eq!(self.status, status, "{self}");
        self.assert_fields(fields);
        assert_eq!(self.body, body, "{self}");
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.text())
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

/// The fields of an error answer (always closes).
pub fn error_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Server", "chopin"),
        ("Connection", "close"),
        ("Content-Length", "0"),
    ]
}

/// A blocking client connection with read and write timeouts.
pub struct Conn {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        // Every write goes out at once, so split writes reach the server split.
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .unwrap_or_else(|e| panic!("write failed: {e}"));
    }

    /// Reads one response to a request that is not HEAD.
    pub fn response(&mut self) -> Response {
        read_response(&mut self.reader, false)
    }

    /// Reads one response to a HEAD request: no body, whatever the length says.
    pub fn head_response(&mut self) -> Response {
        read_response(&mut self.reader, true)
    }

    /// Sends `raw` and reads one (non-HEAD) response.
    pub fn roundtrip(&mut self, raw: impl AsRef<[u8]>) -> Response {
        self.send(raw);
        self.response()
    }

    /// Asserts the connection works: a GET /plaintext is answered with 200.
    pub fn assert_alive(&mut self) {
        let resp = self.roundtrip(get("/plaintext"));
        assert_eq!(resp.status, 200, "{resp}");
        assert_eq!(resp.body, PLAINTEXT_BODY, "{resp}");
    }

    /// Reads until the server closes the connection; returns every byte that
    /// arrived before the close. A reset counts as a close (it can only come
    /// after what we already read). Panics if the server keeps it open for
    /// longer than [`CLOSE_TIMEOUT`].
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut extra = self.reader.buffer().to_vec();
        let buffered = extra.len();
        self.reader.consume(buffered);
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the server did not close the connection within {CLOSE_TIMEOUT:?}; \
                 got {:?} meanwhile",
                String::from_utf8_lossy(&extra)
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return extra,
                Ok(n) => extra.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return extra,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read failed while waiting for the close: {e}"),
            }
        }
    }

    /// Asserts the server closes the connection without sending anything more.
    pub fn expect_close(&mut self) {
        let extra = self.read_to_close();
        assert!(
            extra.is_empty(),
            "expected a close and nothing else, got {:?}",
            String::from_utf8_lossy(&extra)
        );
    }

    /// Asserts nothing arrives within `wait` and the connection is not closed.
    pub fn expect_silence(&mut self, wait: Duration) {
        assert!(
            self.reader.buffer().is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(self.reader.buffer())
        );
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 1024];
        let result = self.stream.read(&mut buf);
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        match result {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Closes our sending side (the server then sees end of input).
    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }
}

/// Reads exactly one response from `reader`: status line, fields, and a
/// body framed by Content-Length (none when `head` is true). Lines must end
/// in CRLF. Panics, showing what arrived, on a timeout, an early close or a
/// malformed response.
pub fn read_response(reader: &mut impl BufRead, head: bool) -> Response {
    let mut raw = Vec::new();
    let status_line = read_line(reader, &mut raw);
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let status = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default().to_owned();
    assert!(
        version.starts_with("HTTP/1.") && status.len() == 3,
        "bad status line {status_line:?}"
    );
    let status: u16 = status
        .parse()
        .unwrap_or_else(|_| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut raw);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("field line without a colon: {line:?}"));
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()),
            "bad field name in {line:?}"
        );
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    let mut response = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
        raw,
    };
    if !head {
        let len = response.content_length();
        let mut body = vec![0u8; len];
        if let Err(e) = reader.read_exact(&mut body) {
            panic!("reading a {len}-byte body after {response}: {e}");
        }
        response.raw.extend_from_slice(&body);
        response.body = body;
    }
    response
}

/// Reads one CRLF-terminated line, appending its bytes to `raw`; returns it
/// without the CRLF.
fn read_line(reader: &mut impl BufRead, raw: &mut Vec<u8>) -> String {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line) {
        Ok(_) => {}
        Err(e) => panic!(
            "reading a response ({e}); got so far: {:?}",
            String::from_utf8_lossy(&[&raw[..], &line[..]].concat())
        ),
    }
    raw.extend_from_slice(&line);
    assert!(
        line.ends_with(b"\r\n"),
        "the connection closed or a line lacks CRLF; got so far: {:?}",
        String::from_utf8_lossy(raw)
    );
    line.truncate(line.len() - 2);
    String::from_utf8(line).expect("a response head is ASCII")
}

/// Replaces the value of every `Date:` field in `raw` with `<date>` after
/// checking it has the IMF-fixdate length, so responses can be compared byte
/// for byte across seconds.
pub fn mask_dates(raw: &[u8]) -> Vec<u8> {
    const FIELD: &[u8] = b"\r\nDate: ";
    const LEN: usize = "Sun, 06 Nov 1994 08:49:37 GMT".len();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(FIELD) {
            let value = &raw[i + FIELD.len()..];
            assert!(
                value.len() >= LEN + 2 && value[LEN..].starts_with(b"\r\n"),
                "Date value of the wrong length in {:?}",
                String::from_utf8_lossy(raw)
            );
            out.extend_from_slice(FIELD);
            out.extend_from_slice(b"<date>");
            i += FIELD.len() + LEN;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

/// Seconds since the Unix epoch for an IMF-fixdate such as
/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 5.6.7); `None` if `s` is not one,
/// including a weekday that does not match the date.
pub fn parse_imf_fixdate(s: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = &s[range];
        if digits.bytes().all(|c| c.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    let weekday = DAYS.iter().position(|d| *d == &s[0..3])? as u64;
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| *m == &s[8..11])? as u64 + 1;
    let year = num(12..16)?;
    let (hour, minute, second) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    if days % 7 != weekday {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Asserts `value` is an IMF-fixdate within 2 s of the system clock.
pub fn assert_date_is_now(value: &str) {
    let secs =
        parse_imf_fixdate(value).unwrap_or_else(|| panic!("Date {value:?} is not an IMF-fixdate"));
    let now = unix_now();
    assert!(
        (secs as f64 - now).abs() <= 2.0,
        "Date {value:?} is {} s away from the clock",
        secs as f64 - now
    );
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

/// Self-check of [`parse_imf_fixdate`]; called from one test file only.
pub fn check_imf_fixdate_parser() {
    assert_eq!(
        parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_imf_fixdate("Tue, 29 Feb 2000 00:00:00 GMT"),
        Some(951_782_400)
    );
    // Wrong weekday, RFC 850 and asctime forms, a missing zero.
    assert_eq!(parse_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT"), None);
    assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    assert_eq!(parse_imf_fixdate("Sun Nov  6 08:49:37 1994"), None);
    assert_eq!(parse_imf_fixdate("Sun, 6 Nov 1994 08:49:37 GMT "), None);
}

/// Self-check of [`read_response`] and [`mask_dates`]; called from one test
/// file only.
pub fn check_response_reader() {
    let wire = b"HTTP/1.1 200 OK\r\nServer: a\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
    let mut reader = &wire[..];
    let first = read_response(&mut reader, false);
    assert_eq!((first.status, &first.body[..]), (200, &b"abc"[..]));
    let head = read_response(&mut reader, true);
    assert_eq!(head.content_length(), 5);
    assert!(head.body.is_empty());
    let last = read_response(&mut reader, false);
    assert_eq!(last.status, 404);
    assert_eq!(last.reason, "Not Found");
    assert_eq!(last.single("Content-Length"), "0");
    assert!(reader.is_empty());
    assert_eq!(
        [first.raw, head.raw, last.raw].concat(),
        wire.to_vec(),
        "raw bytes add up to the wire"
    );
    assert_eq!(
        mask_dates(b"X\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"),
        b"X\r\nDate: <date>\r\n\r\n".to_vec()
    );
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
