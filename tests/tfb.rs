//! What the TechEmpower verifier checks on /plaintext and /json, over real
//! sockets, on both flavours, with the request headers TFB's tools send.

mod common;

use std::thread;
use std::time::Duration;

use common::*;

#[test]
fn helpers_parse_exactly() {
    check_imf_fixdate_parser();
    check_response_reader();
}

/// A skip is a line on stderr for `cargo test`, and a failure under
/// `CHOPIN_TEST_NO_SKIP=1`, as `.ci/run` runs the tests.
#[test]
fn a_skip_fails_when_skips_are_not_allowed() {
    skip_under(None, "a check", "a tool is missing");
    skip_under(Some("0".into()), "a check", "a tool is missing");
    skip_under(Some("".into()), "a check", "a tool is missing");
    let panic = std::panic::catch_unwind(|| {
        skip_under(Some("1".into()), "a check", "a tool is missing");
    })
    .expect_err("a skip under CHOPIN_TEST_NO_SKIP=1 must panic");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert_eq!(
        message,
        "a check cannot run here: a tool is missing (CHOPIN_TEST_NO_SKIP is set, so a skip is a failure)"
    );
}

#[test]
fn plaintext() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        let resp = conn.roundtrip(tfb_request("/plaintext", TFB_ACCEPT_PLAINTEXT));
        assert!(
            resp.raw.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "status line of {resp}"
        );
        resp.assert_exact(200, &plaintext_fields(), b"Hello, World!");
        assert_eq!(resp.content_length(), resp.body.len());
        // Keep-alive: the same connection answers again.
        let again = conn.roundtrip(tfb_request("/plaintext", TFB_ACCEPT_PLAINTEXT));
        again.assert_exact(200, &plaintext_fields(), b"Hello, World!");
    });
}

#[test]
fn json() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        let resp = conn.roundtrip(tfb_request("/json", TFB_ACCEPT_JSON));
        assert!(
            resp.raw.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "status line of {resp}"
        );
        resp.assert_exact(200, &json_fields(), br#"{"message":"Hello, World!"}"#);
        assert_eq!(resp.content_length(), resp.body.len());
        let value: serde_json::Value = serde_json::from_slice(&resp.body).expect("valid JSON");
        let object = value.as_object().expect("a JSON object");
        assert_eq!(object.len(), 1, "exactly one key: {value}");
        assert_eq!(object["message"], "Hello, World!");
        let again = conn.roundtrip(tfb_request("/json", TFB_ACCEPT_JSON));
        again.assert_exact(200, &json_fields(), JSON_BODY);
    });
}

/// The verifier's own requests: curl-like, one per connection, no
/// `Connection` field.
#[test]
fn verifier_style_requests_on_fresh_connections() {
    each_flavour(|_, addr| {
        for (path, accept, fields, body) in [
            (
                "/plaintext",
                TFB_ACCEPT_PLAINTEXT,
                plaintext_fields(),
                PLAINTEXT_BODY,
            ),
            ("/json", TFB_ACCEPT_JSON, json_fields(), JSON_BODY),
        ] {
            let mut conn = Conn::open(addr);
            let resp = conn.roundtrip(format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: curl/8.5.0\r\nAccept: {accept}\r\n\r\n",
                addr.port()
            ));
            resp.assert_exact(200, &fields, body);
        }
    });
}

#[test]
fn query_strings_are_ignored() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        for target in ["/json?foo=bar", "/json?", "/json?a=1&b=/plaintext"] {
            let resp = conn.roundtrip(get(target));
            resp.assert_exact(200, &json_fields(), JSON_BODY);
        }
        for target in ["/plaintext?foo=bar", "/plaintext?x"] {
            let resp = conn.roundtrip(get(target));
            resp.assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        }
    });
}

/// TFB's "Invalid Cached Date" check: a later request carries a later Date,
/// on the same keep-alive connection and on a new one.
#[test]
fn date_changes_after_a_second() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        let first = conn.roundtrip(get("/plaintext"));
        let first_date = first.single("Date").to_owned();
        let first_secs = parse_imf_fixdate(&first_date).expect("IMF-fixdate");
        assert_date_is_now(&first_date);

        // Wait until the clock's second has moved past the first Date's.
        loop {
            let now = unix_now();
            if now.floor() as u64 > first_secs {
                break;
            }
            let to_next = (now.floor() + 1.0 - now).max(0.0);
            thread::sleep(Duration::from_secs_f64(to_next) + Duration::from_millis(5));
        }

        for mut conn in [conn, Conn::open(addr)] {
            for path in ["/plaintext", "/json"] {
                let resp = conn.roundtrip(get(path));
                let date = resp.single("Date");
                let secs = parse_imf_fixdate(date).expect("IMF-fixdate");
                assert!(
                    secs > first_secs,
                    "Date did not change: {first_date:?} then {date:?}"
                );
                assert_date_is_now(date);
            }
        }
    });
}
