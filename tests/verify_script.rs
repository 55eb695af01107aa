//! `scripts/verify` (the TFB-verifier-equivalent check) passes against an
//! in-process server of each flavour. Skipped when python3 is missing.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/verify");

fn python3() -> bool {
    let found = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip("scripts/verify's tests", "python3 is not installed");
    }
    found
}

/// Runs scripts/verify with `args`, killing it if it runs past 60 s.
fn verify(args: &[&str]) -> Output {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3 scripts/verify");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn verify_script_passes() {
    if !python3() {
        return;
    }
    each_flavour(|flavour, addr| {
        let url = format!("http://{addr}");
        // One second between the two requests is enough for the Date to change.
        let out = verify(&["--url", &url, "--wait-date", "1"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flavour}: scripts/verify failed\n{stdout}{stderr}"
        );
        let last = stdout.lines().last().unwrap_or_default();
        let (passed, failed) = last
            .split_once(" passed, ")
            .unwrap_or_else(|| panic!("last line {last:?}"));
        assert!(passed.parse::<u32>().unwrap() > 0, "{last:?}");
        assert_eq!(failed, "0 failed", "{stdout}");
        assert!(!stdout.contains("FAIL"), "{stdout}");
    });
}

/// The harness can fail: nothing listening is exit status 2.
#[test]
fn verify_script_fails_without_a_server() {
    if !python3() {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = verify(&[
        "--url",
        &format!("http://127.0.0.1:{port}"),
        "--wait-date",
        "0",
        "--timeout",
        "2",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
