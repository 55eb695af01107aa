//! HttpArena's parameter routes and request bodies over real sockets, in
//! both flavours: `/json/{count}?m=` checked field by field against the
//! dataset it reads, `POST /echo` byte for byte at every size that is an
//! edge (empty, one byte, the old 64-byte cap and one over, 8 KiB,
//! 100 KiB, `--max-body` and one over), framed by Content-Length and by
//! chunks, split at every byte, and pipelined behind a large body.

mod common;

use common::*;
use serde_json::Value;

/// HttpArena's `data/dataset.json` (50 items), which the tests serve.
const DATASET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dataset.json");

/// The fields of a 404 or other answer without a body that keeps the
/// connection open.
/// The fields of every `/echo` request here, before its framing.
const FIELDS: &str = "Host: localhost\r\n";

const NO_BODY: &[(&str, &str)] = &[("Server", "chopin"), ("Content-Length", "0")];

fn with_dataset(test: impl Fn(chopin::Flavour, std::net::SocketAddr)) {
    each_flavour_with(|c| c.dataset = DATASET.into(), test);
}

fn dataset() -> Vec<Value> {
    let text = std::fs::read_to_string(DATASET).expect("the test dataset");
    serde_json::from_str(&text).expect("the test dataset is JSON")
}

/// What `/json/{count}?m=` must answer: the first `count` items of the
/// dataset, each with every field it has and `total = price * quantity
/// * m`, and the number of items.
fn expected_items(count: usize, m: i64) -> Value {
    let items: Vec<Value> = dataset()
        .into_iter()
        .take(count)
        .map(|mut item| {
            let total = item["price"].as_i64().unwrap() * item["quantity"].as_i64().unwrap() * m;
            item.as_object_mut()
                .unwrap()
                .insert("total".into(), total.into());
            item
        })
        .collect();
    let n = items.len();
    serde_json::json!({ "items": items, "count": n })
}

fn content_length(body: &[u8]) -> String {
    body.len().to_string()
}

#[test]
fn json_items_match_the_dataset_field_by_field() {
    let size = dataset().len();
    assert_eq!(size, 50, "HttpArena's dataset has 50 items");
    with_dataset(|_, addr| {
        let mut conn = Conn::open(addr);
        for (target, count, m) in [
            ("/json/1", 1, 1),
            ("/json/1?m=3", 1, 3),
            ("/json/12?m=3", 12, 3),
            ("/json/50?m=2", 50, 2),
            ("/json/51?m=2", 50, 2),
            ("/json/4000000000?m=1", 50, 1),
            ("/json/7?m=-5", 7, -5),
            ("/json/7?m=0", 7, 0),
            ("/json/7?x=1&m=9&y=2", 7, 9),
            ("/json/007", 7, 1),
        ] {
            let resp = conn.roundtrip(get(target));
            let length = content_length(&resp.body);
            resp.assert_exact(
                200,
                &[
                    ("Server", "chopin"),
                    ("Content-Type", "application/json"),
                    ("Content-Length", &length),
                ],
                &resp.body,
            );
            let got: Value = serde_json::from_slice(&resp.body)
                .unwrap_or_else(|e| panic!("{target}: not JSON ({e}): {resp}"));
            assert_eq!(got, expected_items(count, m), "{target}");
            // Every item keeps its fields in the dataset's order, total last.
            let first = &got["items"][0];
            let keys: Vec<&str> = first
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys.last(), Some(&"total"), "{target}");
        }
        conn.assert_alive();
    });
}

#[test]
fn json_items_reject_bad_parameters_with_400_and_a_close() {
    with_dataset(|_, addr| {
        for target in [
            "/json/0",
            "/json/00",
            "/json/-1",
            "/json/abc",
            "/json/1x",
            "/json/1.5",
            "/json/%31",
            "/json/99999999999999999999",
            "/json/5?m=",
            "/json/5?m=abc",
            "/json/5?m=1.5",
            "/json/5?m=--1",
            "/json/5?m=+4",
            "/json/+5",
            "/json/5?m=99999999999999999999",
            "/json/5?m=-99999999999999999999",
            // Fits in an i64, but price * quantity * m does not.
            "/json/5?m=9223372036854775807",
        ] {
            let mut conn = Conn::open(addr);
            let resp = conn.roundtrip(get(target));
            resp.assert_exact(400, &error_fields(), b"");
            conn.expect_close();
        }
    });
}

#[test]
fn parameter_routes_need_one_segment() {
    with_dataset(|_, addr| {
        let mut conn = Conn::open(addr);
        for target in [
            "/json/",
            "/json/5/",
            "/json/5/6",
            "/json//5",
            "/delay",
            "/delay/",
            "/delay/5/",
            "/delayed/5",
            "/echo/",
            "/echox",
        ] {
            let resp = conn.roundtrip(get(target));
            resp.assert_exact(404, NO_BODY, b"");
        }
        conn.assert_alive();
    });
}

#[test]
fn parameter_routes_answer_405_with_allow() {
    with_dataset(|_, addr| {
        for (method, target, allow) in [
            ("POST", "/json/5", "GET, HEAD"),
            ("DELETE", "/delay/5", "GET, HEAD"),
            ("GET", "/echo", "POST"),
            ("PUT", "/echo", "POST"),
        ] {
            let mut conn = Conn::open(addr);
            let resp = conn.roundtrip(request(method, target));
            assert_eq!(resp.status, 405, "{method} {target}: {resp}");
            assert_eq!(resp.single("Allow"), allow, "{method} {target}");
        }
    });
}

#[test]
fn without_a_dataset_json_items_is_404_and_json_is_unchanged() {
    each_flavour_with(
        |c| c.dataset = "/nonexistent/dataset.json".into(),
        |_, addr| {
            let mut conn = Conn::open(addr);
            conn.roundtrip(get("/json/5"))
                .assert_exact(404, NO_BODY, b"");
            conn.roundtrip(get("/json"))
                .assert_exact(200, &json_fields(), JSON_BODY);
        },
    );
}

fn assert_echoed(resp: &Response, body: &[u8]) {
    let length = content_length(body);
    resp.assert_exact(
        200,
        &[
            ("Server", "chopin"),
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", &length),
        ],
        body,
    );
}

/// The sizes at the edges: empty, one byte, the 64 bytes that were once
/// the most a body could be and one over, 8 KiB, HttpArena's 10 KB and
/// 100 KB.
const SIZES: [usize; 8] = [0, 1, 64, 65, 8 * 1024, 10_000, 100 * 1024, 100_000];

#[test]
fn echo_returns_every_body_byte_for_byte() {
    each_flavour(|_, addr| {
        let mut rng = Rng::new(0xec40);
        let mut conn = Conn::open(addr);
        for size in SIZES {
            let body = rng.bytes(size);
            assert_echoed(&conn.roundtrip(echo_request(FIELDS, &body)), &body);
            for chunk in [1, 7, 4096, 1 << 20] {
                if size > 8 * 1024 && chunk < 4096 {
                    continue;
                }
                let resp = conn.roundtrip(chunked_echo_request(FIELDS, &body, chunk));
                assert_echoed(&resp, &body);
            }
        }
        conn.assert_alive();
    });
}

#[test]
fn echo_bodies_up_to_max_body_and_413_one_byte_over() {
    const MAX: usize = 200 * 1024;
    each_flavour_with(
        |c| c.max_body = MAX,
        |_, addr| {
            let body = Rng::new(7).bytes(MAX + 1);
            let mut conn = Conn::open(addr);
            assert_echoed(
                &conn.roundtrip(echo_request(FIELDS, &body[..MAX])),
                &body[..MAX],
            );
            let resp = conn.roundtrip(chunked_echo_request(FIELDS, &body[..MAX], 65_536));
            assert_echoed(&resp, &body[..MAX]);
            conn.assert_alive();

            // Content-Length says it before any body byte is sent.
            let mut conn = Conn::open(addr);
            let head = format!(
                "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                MAX + 1
            );
            conn.roundtrip(head).assert_exact(413, &error_fields(), b"");
            conn.expect_close();

            // Chunks say it once the sum passes the limit.
            let mut conn = Conn::open(addr);
            conn.send(chunked_echo_request(FIELDS, &body, 65_536));
            let resp = conn.response();
            resp.assert_exact(413, &error_fields(), b"");
            let _ = conn.read_to_close();
        },
    );
}

#[test]
fn the_default_max_body_is_one_mebibyte() {
    const MIB: usize = 1 << 20;
    each_flavour(|_, addr| {
        let body = Rng::new(11).bytes(MIB);
        let mut conn = Conn::open(addr);
        assert_echoed(&conn.roundtrip(echo_request(FIELDS, &body)), &body);
        let mut conn = Conn::open(addr);
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            MIB + 1
        );
        conn.roundtrip(head).assert_exact(413, &error_fields(), b"");
        conn.expect_close();
    });
}

#[test]
fn echo_split_at_every_byte() {
    each_flavour(|_, addr| {
        for body in [&b"hello"[..], b""] {
            for raw in [
                echo_request(FIELDS, body),
                chunked_echo_request(FIELDS, body, 2),
            ] {
                for split in 1..raw.len() {
                    let mut conn = Conn::open(addr);
                    conn.send(&raw[..split]);
                    conn.send(&raw[split..]);
                    assert_echoed(&conn.response(), body);
                }
            }
        }
    });
}

#[test]
fn requests_pipelined_behind_a_large_body_are_answered_in_order() {
    each_flavour(|_, addr| {
        let body = Rng::new(3).bytes(100 * 1024);
        let mut raw = echo_request(FIELDS, &body);
        raw.extend_from_slice(get("/plaintext").as_bytes());
        raw.extend_from_slice(&chunked_echo_request(FIELDS, &body, 10_000));
        raw.extend_from_slice(get("/json/2").as_bytes());
        raw.extend_from_slice(&echo_request(FIELDS, b"x"));
        let mut conn = Conn::open(addr);
        conn.send(&raw);
        assert_echoed(&conn.response(), &body);
        conn.response()
            .assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        assert_echoed(&conn.response(), &body);
        // No dataset in this configuration.
        conn.response().assert_exact(404, NO_BODY, b"");
        assert_echoed(&conn.response(), b"x");
        conn.assert_alive();
    });
}

#[test]
fn a_body_no_handler_reads_is_skipped() {
    each_flavour(|_, addr| {
        let body = Rng::new(5).bytes(300 * 1024);
        let mut raw = format!(
            "POST /plaintext HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        let mut conn = Conn::open(addr);
        conn.send(&raw);
        let resp = conn.response();
        assert_eq!(resp.status, 405, "{resp}");
        conn.assert_alive();
    });
}
