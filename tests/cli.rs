//! The `chopin` binary: flags, environment fallbacks, the startup line,
//! signals and binding errors.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_chopin");
/// How long the binary gets to start, or to exit after a signal.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// The binary with an empty environment (no `PORT` or `CHOPIN_*` leaking
/// in from the caller's) and stdin closed.
fn chopin(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Flags for a local test server: ephemeral port, loopback, two workers.
const LOCAL: [&str; 6] = ["--port", "0", "--bind", "127.0.0.1", "--workers", "2"];

fn local(extra: &[&str]) -> Command {
    chopin(&[&LOCAL[..], extra].concat())
}

/// Polls until the child exits; `None` if it is still running after `timeout`.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a command that must exit by itself; returns (status, stdout, stderr).
fn run_to_exit(mut cmd: Command) -> (ExitStatus, String, String) {
    let mut child = cmd.spawn().expect("spawn chopin");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let Some(status) = wait_timeout(&mut child, PROCESS_TIMEOUT) else {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!(
            "{cmd:?} did not exit within {PROCESS_TIMEOUT:?}; stderr: {:?}",
            err.join().unwrap()
        );
    };
    (status, out.join().unwrap(), err.join().unwrap())
}

/// A running `chopin` process, killed if the test fails before it stops it.
struct Running {
    child: Child,
    startup: String,
    /// The warning lines before the startup line (the others say what was
    /// loaded: the dataset, the TLS listener).
    early: Vec<String>,
    addr: SocketAddr,
    stderr: Receiver<String>,
}

impl Running {
    /// Asserts that the startup line contains `part`.
    fn assert_startup_says(&self, part: &str) {
        assert!(self.startup.contains(part), "{}", self.startup);
    }

    /// Starts `cmd` and waits for its startup line (the readiness signal).
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().expect("spawn chopin");
        let (tx, stderr) = mpsc::channel();
        let pipe = BufReader::new(child.stderr.take().unwrap());
        thread::spawn(move || {
            for line in pipe.lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut before = Vec::new();
        let mut notes = Vec::new();
        let startup = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match stderr.recv_timeout(left) {
                Ok(line) if line.contains(" runtime, ") && line.contains("listening on ") => {
                    break line
                }
                Ok(line) if line.starts_with("chopin: warning: ") => before.push(line),
                Ok(line) => notes.push(line),
                Err(_) => {
                    let status = child.try_wait().unwrap();
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{cmd:?}: no startup line (exit: {status:?}); stderr: {before:?} {notes:?}"
                    );
                }
            }
        };
        let addr = startup
            .rsplit("listening on ")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in the startup line {startup:?}"));
        Running {
            child,
            startup,
            early: before,
            addr,
            stderr,
        }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child this test spawned and has
        // not reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Sends `signal` and waits for the exit; returns its status and the
    /// stderr lines printed after the startup line.
    fn stop_with(mut self, signal: libc::c_int) -> (ExitStatus, Vec<String>) {
        self.signal(signal);
        let status = wait_timeout(&mut self.child, PROCESS_TIMEOUT)
            .unwrap_or_else(|| panic!("no exit within {PROCESS_TIMEOUT:?} after signal {signal}"));
        let rest = self.stderr.try_iter().collect();
        (status, rest)
    }

    /// SIGTERM, which must end the process with status 0.
    fn stop(self) {
        let (status, rest) = self.stop_with(libc::SIGTERM);
        assert_eq!(
            status.code(),
            Some(0),
            "exit after SIGTERM; stderr: {rest:?}"
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Bad values exit with 2 and exactly one stderr line.
fn assert_usage_error(cmd: Command, must_name: &[&str]) {
    let desc = format!("{cmd:?}");
    let (status, stdout, stderr) = run_to_exit(cmd);
    assert_eq!(status.code(), Some(2), "{desc}: stderr {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{desc}: expected one stderr line, got {stderr:?}"
    );
    for word in must_name {
        assert!(
            lines[0].contains(word),
            "{desc}: {:?} does not name {word:?}",
            lines[0]
        );
    }
    assert!(stdout.is_empty(), "{desc}: stdout {stdout:?}");
}

const ACCEPTED: [&str; 7] = [
    "per-core",
    "current_thread",
    "current-thread",
    "multithread",
    "multi_thread",
    "multi-thread",
    "work-stealing",
];

#[test]
fn bad_runtime_flag_exits_2_with_one_line() {
    let mut names = vec!["'fast'"];
    names.extend(ACCEPTED);
    assert_usage_error(chopin(&["--runtime", "fast"]), &names);
    assert_usage_error(chopin(&["--runtime=fast"]), &names);
}

#[test]
fn bad_runtime_env_exits_2_with_one_line() {
    let mut names = vec!["'fast'"];
    names.extend(ACCEPTED);
    let mut cmd = chopin(&[]);
    cmd.env("CHOPIN_RUNTIME", "fast");
    assert_usage_error(cmd, &names);
}

#[test]
fn other_bad_values_exit_2_with_one_line() {
    for (args, names) in [
        (&["--port", "http"][..], &["'http'", "--port"][..]),
        (&["--port", "70000"], &["70000"]),
        (&["--workers", "0"], &["0", "--workers"]),
        (&["--bind", "localhost:80"], &["localhost:80"]),
        (&["--header-timeout", "0"], &["'0'"]),
        (&["--idle-timeout", "soon"], &["'soon'"]),
        (
            &["--body-timeout", "-1"],
            &["--body-timeout", "'-1'", "at least 0.001"],
        ),
        (&["--header-timeout", "-1"], &["'-1'", "at least 0.001"]),
        (
            &["--listeners", "many"],
            &["'many'", "per-worker", "shared"],
        ),
        (
            &["--server-name", "a\tb"],
            &["--server-name", "visible ASCII"],
        ),
        (&["--pin", "maybe"], &["maybe"]),
        (&["--pin"], &["--pin", "[possible values: true, false]"]),
        (&["--no-such-flag"], &["--no-such-flag"]),
        (
            &["--work", "2"],
            &["'--work'", "similar argument exists: '--workers'"],
        ),
        // Negative numbers reach the range check instead of reading as flags.
        (&["--port", "-1"], &["--port", "'-1'", "0..=65535"]),
        (&["--workers", "-2"], &["--workers", "'-2'", "1..=4096"]),
        (&["--backlog", "-5"], &["--backlog", "'-5'"]),
        // Under a millisecond a timeout would round to nothing.
        (
            &["--header-timeout", "1e-10"],
            &["'1e-10'", "at least 0.001"],
        ),
        (
            &["--idle-timeout", "0.0001"],
            &["'0.0001'", "at least 0.001"],
        ),
    ] {
        assert_usage_error(chopin(args), names);
    }
    // A bad value from the environment names its variable, not only the flag.
    for (name, value, flag) in [
        ("PORT", "eighty", "--port"),
        ("CHOPIN_WORKERS", "abc", "--workers"),
        ("CHOPIN_IDLE_TIMEOUT", "soon", "--idle-timeout"),
    ] {
        let mut cmd = chopin(&[]);
        cmd.env(name, value);
        assert_usage_error(
            cmd,
            &[
                &format!("'{value}'"),
                flag,
                &format!("environment variable {name}"),
            ],
        );
    }
    // The same bad variable behind a good flag is not read, and not named.
    let mut cmd = chopin(&["--workers", "0"]);
    cmd.env("CHOPIN_WORKERS", "abc");
    let (_, _, stderr) = run_to_exit(cmd);
    assert!(!stderr.contains("environment"), "{stderr:?}");
}

/// Settings that parse but would be silently ignored are named, one
/// warning line each, before the startup line; a plain start has none.
#[test]
fn ignored_settings_are_warned_about() {
    let server = Running::start(local(&[]));
    assert_eq!(server.early, Vec::<String>::new());
    server.stop();

    let mut cmd = local(&["--listeners", "shared"]);
    // A value that is not UTF-8 must not stop the scan (`env::vars` panics).
    cmd.env("CHOPIN_WORKER", std::ffi::OsStr::from_bytes(b"\xff"))
        .env("CHOPIN_PORT", "9")
        .env("CHOPIN_PRESET", "chopin");
    let server = Running::start(cmd);
    assert_eq!(
        server.early,
        [
            "chopin: warning: --listeners shared applies to the multithread runtime only; \
             per-core keeps one listener per worker",
            "chopin: warning: CHOPIN_PORT is not a chopin setting and is ignored \
             (the port's variable is PORT)",
            "chopin: warning: CHOPIN_WORKER is not a chopin setting and is ignored \
             (the variables read are PORT, CHOPIN_BIND, CHOPIN_RUNTIME, CHOPIN_WORKERS, \
             CHOPIN_PIN, CHOPIN_BACKLOG, CHOPIN_SERVER_NAME, CHOPIN_LISTENERS, \
             CHOPIN_HEADER_TIMEOUT, CHOPIN_BODY_TIMEOUT, CHOPIN_EVENT_INTERVAL, CHOPIN_STATS, CHOPIN_IDLE_TIMEOUT, \
             CHOPIN_MAX_BODY, CHOPIN_DATASET, CHOPIN_TLS_PORT, CHOPIN_TLS_CERT, CHOPIN_TLS_KEY)",
        ]
    );
    server.assert_startup_says(": per-core runtime, 2 workers, ");
    server.stop();
}

/// A bad value that itself contains a line break still gives one line that
/// names the flag and the reason, not a message cut inside the value.
#[test]
fn bad_value_with_a_line_break_is_reported_on_one_line() {
    assert_usage_error(
        chopin(&["--server-name", "bad\r\nX-Injected: 1"]),
        &["--server-name", "visible ASCII"],
    );
}

#[test]
fn help_and_version_exit_0() {
    let (status, stdout, _) = run_to_exit(chopin(&["--help"]));
    assert_eq!(status.code(), Some(0));
    for flag in [
        "--port",
        "--runtime",
        "--workers",
        "--server-name",
        "PORT",
        "CHOPIN_RUNTIME",
    ] {
        assert!(
            stdout.contains(flag),
            "--help does not mention {flag}: {stdout}"
        );
    }
    let (status, stdout, _) = run_to_exit(chopin(&["--version"]));
    assert_eq!(status.code(), Some(0));
    assert_eq!(stdout, format!("chopin {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn every_runtime_spelling_starts() {
    let upper_and_mixed = [
        "PER-CORE",
        "Current_Thread",
        "MULTITHREAD",
        "Multi-Thread",
        "WORK-STEALING",
    ];
    for spelling in ACCEPTED.iter().chain(&upper_and_mixed) {
        let flavour = if spelling.to_ascii_lowercase().contains("multi")
            || spelling.eq_ignore_ascii_case("work-stealing")
        {
            "multithread"
        } else {
            "per-core"
        };
        let server = Running::start(local(&["--runtime", spelling]));
        assert!(
            server
                .startup
                .contains(&format!(": {flavour} runtime, 2 workers, ")),
            "--runtime {spelling}: {:?}",
            server.startup
        );
        Conn::open(server.addr).assert_alive();
        server.stop();
    }
    // The environment fallback, and the default.
    let mut cmd = local(&[]);
    cmd.env("CHOPIN_RUNTIME", "Multi_Thread");
    let server = Running::start(cmd);
    server.assert_startup_says(": multithread runtime, ");
    server.stop();
    let server = Running::start(local(&[]));
    server.assert_startup_says(": per-core runtime, ");
    server.stop();
}

#[test]
fn startup_line_names_the_chosen_port() {
    for runtime in ["per-core", "multithread"] {
        let server = Running::start(local(&["--runtime", runtime]));
        let expected = format!(
            "chopin {}: {runtime} runtime, 2 workers, ",
            env!("CARGO_PKG_VERSION")
        );
        assert!(
            server.startup.starts_with(&expected),
            "{:?}",
            server.startup
        );
        assert!(
            server
                .startup
                .ends_with(&format!("listening on 127.0.0.1:{}", server.addr.port())),
            "{:?}",
            server.startup
        );
        assert_ne!(server.addr.port(), 0);
        let mut conn = Conn::open(server.addr);
        conn.roundtrip(get("/json"))
            .assert_exact(200, &json_fields(), JSON_BODY);
        server.stop();
    }
}

/// A port nobody listens on right now (the listener is closed again, so
/// another process could take it in between: unlikely on a test machine).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn port_env_fallback() {
    let port = free_port();
    let mut cmd = chopin(&["--bind", "127.0.0.1", "--workers", "1"]);
    cmd.env("PORT", port.to_string());
    let server = Running::start(cmd);
    assert_eq!(server.addr.port(), port, "{}", server.startup);
    Conn::open(server.addr).assert_alive();
    server.stop();

    // The flag wins over the environment.
    let mut cmd = local(&[]);
    cmd.env("PORT", port.to_string());
    let server = Running::start(cmd);
    assert_ne!(server.addr.port(), port, "{}", server.startup);
    server.stop();
}

#[test]
fn server_name_shows_in_the_server_field() {
    let server = Running::start(local(&["--server-name", "x"]));
    let resp = Conn::open(server.addr).roundtrip(get("/plaintext"));
    assert_eq!(resp.single("Server"), "x", "{resp}");
    server.stop();

    let mut cmd = local(&["--runtime", "multithread"]);
    cmd.env("CHOPIN_SERVER_NAME", "chopin/0.1 (test)");
    let server = Running::start(cmd);
    let mut conn = Conn::open(server.addr);
    let resp = conn.roundtrip(get("/json"));
    assert_eq!(resp.single("Server"), "chopin/0.1 (test)", "{resp}");
    // Error answers carry it too.
    let resp = conn.roundtrip("GET /json HTTP/1.1\r\n\r\n");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.single("Server"), "chopin/0.1 (test)", "{resp}");
    server.stop();
}

#[test]
fn sigterm_and_sigint_exit_0() {
    for runtime in ["per-core", "multithread"] {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            let server = Running::start(local(&["--runtime", runtime]));
            // With an idle keep-alive connection open, and one mid-head.
            let mut idle = Conn::open(server.addr);
            idle.assert_alive();
            let mut partial = Conn::open(server.addr);
            partial.send("GET /json HTTP/1.1\r\n");
            let started = Instant::now();
            let (status, rest) = server.stop_with(signal);
            assert_eq!(
                status.code(),
                Some(0),
                "{runtime}, signal {signal}: {status:?}, stderr {rest:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{runtime}: exit took {:?}",
                started.elapsed()
            );
            // The process is gone, so are its connections.
            idle.read_to_close();
            partial.read_to_close();
        }
    }
}

#[test]
fn second_server_on_the_same_port_fails() {
    for (first, second) in [
        ("per-core", "per-core"),
        ("multithread", "per-core"),
        ("per-core", "multithread"),
        ("multithread", "multithread"),
    ] {
        let server = Running::start(local(&["--runtime", first]));
        let port = server.addr.port().to_string();
        let (status, _, stderr) = run_to_exit(chopin(&[
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--workers",
            "2",
            "--runtime",
            second,
        ]));
        assert!(
            !status.success(),
            "{first} then {second}: second server started"
        );
        assert_eq!(status.code(), Some(1), "{stderr:?}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr:?}");
        let line = lines[0].to_ascii_lowercase();
        assert!(
            line.contains("address already in use") && line.contains(&port),
            "{first} then {second}: {stderr:?}"
        );
        // The first server still gets every connection: the second did not
        // join its SO_REUSEPORT group before failing.
        for _ in 0..20 {
            Conn::open(server.addr).assert_alive();
        }
        server.stop();
    }
}

/// The multithread flavour's single shared listener.
#[test]
fn shared_listener_layout() {
    let server = Running::start(local(&[
        "--runtime",
        "multithread",
        "--listeners",
        "shared",
    ]));
    server.assert_startup_says(", 1 listener, ");
    for _ in 0..4 {
        Conn::open(server.addr).assert_alive();
    }
    server.stop();
    let server = Running::start(local(&["--runtime", "multithread"]));
    server.assert_startup_says(", 2 listeners, ");
    server.stop();
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the zeroed set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

#[test]
fn pinning_follows_the_affinity_mask() {
    let cpu = *allowed_cpus().last().expect("at least one allowed CPU");
    let taskset_works = Command::new("taskset")
        .args(["-c", &cpu.to_string(), "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !taskset_works {
        skip(
            "pinning_follows_the_affinity_mask",
            "taskset (util-linux) is missing or cannot set affinity",
        );
        return;
    }
    for runtime in ["per-core", "multithread"] {
        for (workers, said, pinned) in [
            ("1", "1 worker", format!("[{cpu}]")),
            ("2", "2 workers", format!("[{cpu}, {cpu}]")),
        ] {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &cpu.to_string(), BIN])
                .args(["--port", "0", "--bind", "127.0.0.1"])
                .args(["--workers", workers, "--runtime", runtime])
                .env_clear()
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let server = Running::start(cmd);
            assert!(
                server.startup.contains(&format!(
                    ": {runtime} runtime, {said}, pinned to cores {pinned}, "
                )),
                "taskset -c {cpu}: {:?}",
                server.startup
            );
            Conn::open(server.addr).assert_alive();
            server.stop();
        }
    }
    // --pin false says so.
    let server = Running::start(local(&["--pin", "false"]));
    server.assert_startup_says(", not pinned, ");
    server.stop();
}
