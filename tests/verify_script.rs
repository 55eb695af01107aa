//! `scripts/verify` (the TFB-verifier-equivalent check) passes against an
//! in-process server of each flavour. Skipped when python3 is missing.

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/verify");

fn python3() -> bool {
    python3_or_skip("scripts/verify's tests")
}

/// Runs scripts/verify with `args`, killing it if it runs past 60 s.
fn verify(args: &[&str]) -> Output {
    run_python(SCRIPT, args, Duration::from_secs(60))
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
        assert_all_passed(&stdout);
    });
}

/// The harness can fail: nothing listening is exit status 2.
#[test]
fn verify_script_fails_without_a_server() {
    if !python3() {
        return;
    }
    let port = unused_port();
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
