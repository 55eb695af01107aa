//! The `chopin` binary run as a child process, so that its memory, CPU
//! time, file descriptor limit and exit status are its own (the startup line
//! on stderr is the readiness signal), and the in-process server started
//! with a bound.
//!
//! Every test that measures time, memory or CPU takes [`serial`]: on a
//! 2-core machine they must not overlap.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use chopin::{Config, Flavour, Server};

pub const BIN: &str = env!("CARGO_BIN_EXE_chopin");

pub static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time (a failed test poisons nothing for the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// The binary as a child process
// ---------------------------------------------------------------------------

/// A running `chopin` binary; killed on drop if a test fails half-way.
pub struct Bin {
    pub child: Child,
    pub addr: SocketAddr,
    /// stderr lines after the startup line.
    pub stderr: Receiver<String>,
}

impl Bin {
    /// Starts the binary on 127.0.0.1, an ephemeral port, and waits for the
    /// startup line. `nofile` sets RLIMIT_NOFILE (soft and hard) in the child.
    pub fn start(flavour: Flavour, args: &[&str], nofile: Option<u64>) -> Bin {
        let mut cmd = Command::new(BIN);
        cmd.args(["--port", "0", "--bind", "127.0.0.1", "--runtime"])
            .arg(flavour.name())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(limit) = nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
            unsafe {
                cmd.pre_exec(move || {
                    let rlim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn the chopin binary");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut bin = Bin {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr: rx,
        };
        let startup = bin
            .wait_stderr(Duration::from_secs(10), |l| l.contains("listening on "))
            .unwrap_or_else(|| {
                panic!(
                    "{flavour}: no startup line on stderr within 10 s (args {args:?}); \
                     the server never reported that it listens"
                )
            });
        bin.addr = startup
            .rsplit("listening on ")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in the startup line {startup:?}"));
        bin
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next stderr line matching `pred`, within `timeout`.
    pub fn wait_stderr(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    pub fn status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    /// utime + stime, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn terminate(&self) {
        // SAFETY: plain kill(2) on our own child.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
    }

    /// Waits for the exit, polling; `None` if still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then exit 0 within `bound`; returns how long it took.
    pub fn stop(mut self, bound: Duration) -> Duration {
        let start = Instant::now();
        self.terminate();
        let status = self.wait_exit(bound);
        let took = start.elapsed();
        match status {
            Some(status) => assert!(status.success(), "exit status {status} after SIGTERM"),
            None => panic!("still running {bound:?} after SIGTERM"),
        }
        took
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `Server::start` in-process, bounded: it must return once the workers
/// accept; a start that hangs fails the test instead of hanging it.
pub fn start_in_process(cfg: Config) -> Server {
    let (tx, rx) = mpsc::channel();
    let flavour = cfg.runtime;
    thread::spawn(move || {
        let _ = tx.send(Server::start(&cfg));
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(server) => server.expect("Server::start"),
        Err(_) => panic!("{flavour}: Server::start did not return within 10 s"),
    }
}

pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as u64
}
