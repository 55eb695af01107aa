//! Pipelined requests over real sockets: answered in order, whatever the
//! write boundaries, with request bodies skipped exactly.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::*;

/// Long enough for the server to read the first part of a split write on its
/// own: there is no signal for "the server has read", so this is a pause,
/// not synchronisation. A too-short pause only makes a test weaker.
const SPLIT_PAUSE: Duration = Duration::from_millis(2);

/// One request of a mixed batch and the answer it must get.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Plaintext,
    Json,
    HeadPlaintext,
    HeadJson,
    NotFound,
    /// POST with a body on a known route.
    PostWithBody,
    /// DELETE without a body.
    Delete,
    /// POST with a body on an unknown route.
    PostNotFound,
}

const KINDS: [Kind; 8] = [
    Kind::Plaintext,
    Kind::Json,
    Kind::HeadPlaintext,
    Kind::HeadJson,
    Kind::NotFound,
    Kind::PostWithBody,
    Kind::Delete,
    Kind::PostNotFound,
];

impl Kind {
    fn request(self) -> String {
        match self {
            Kind::Plaintext => tfb_request("/plaintext", TFB_ACCEPT_PLAINTEXT),
            Kind::Json => get("/json"),
            Kind::HeadPlaintext => request("HEAD", "/plaintext"),
            Kind::HeadJson => request("HEAD", "/json?q=1"),
            Kind::NotFound => get("/nope"),
            // The body looks like a request: it must be skipped, not answered.
            Kind::PostWithBody => "POST /json HTTP/1.1\r\nHost: localhost\r\nContent-Length: 34\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n".to_owned(),
            Kind::Delete => request("DELETE", "/plaintext"),
            Kind::PostNotFound => "POST /submit HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world".to_owned(),
        }
    }

    fn is_head(self) -> bool {
        matches!(self, Kind::HeadPlaintext | Kind::HeadJson)
    }

    fn read(self, conn: &mut Conn) -> Response {
        if self.is_head() {
            conn.head_response()
        } else {
            conn.response()
        }
    }

    fn check(self, resp: &Response) {
        let allow = [
            ("Server", "chopin"),
            ("Allow", "GET, HEAD"),
            ("Content-Length", "0"),
        ];
        let empty = [("Server", "chopin"), ("Content-Length", "0")];
        match self {
            Kind::Plaintext => resp.assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY),
            Kind::Json => resp.assert_exact(200, &json_fields(), JSON_BODY),
            Kind::HeadPlaintext => resp.assert_exact(200, &plaintext_fields(), b""),
            Kind::HeadJson => resp.assert_exact(200, &json_fields(), b""),
            Kind::NotFound | Kind::PostNotFound => resp.assert_exact(404, &empty, b""),
            Kind::PostWithBody | Kind::Delete => resp.assert_exact(405, &allow, b""),
        }
    }
}

fn batch(kinds: &[Kind]) -> Vec<u8> {
    kinds
        .iter()
        .flat_map(|k| k.request().into_bytes())
        .collect()
}

/// Reads one answer per kind, checks each, returns their bytes with the
/// Date values masked.
fn read_all(conn: &mut Conn, kinds: &[Kind], context: &str) -> Vec<u8> {
    let mut raw = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        eprintln!("{context}: response {i} ({kind:?})");
        let resp = kind.read(conn);
        kind.check(&resp);
        raw.extend_from_slice(&resp.raw);
    }
    mask_dates(&raw)
}

/// wrk's pipeline.lua in TFB sends 16 requests per write.
#[test]
fn sixteen_deep_five_hundred_times() {
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        let batch = tfb_request("/plaintext", TFB_ACCEPT_PLAINTEXT).repeat(16);
        conn.send(&batch);
        let first = conn.response();
        first.assert_exact(200, &plaintext_fields(), PLAINTEXT_BODY);
        let expected = mask_dates(&first.raw);
        for _ in 1..16 {
            assert_eq!(mask_dates(&conn.response().raw), expected);
        }
        for round in 1..500 {
            conn.send(&batch);
            for i in 0..16 {
                let resp = conn.response();
                assert_eq!(
                    mask_dates(&resp.raw),
                    expected,
                    "round {round}, response {i}: {resp}"
                );
                if i == 0 {
                    assert_date_is_now(resp.single("Date"));
                }
            }
        }
        conn.expect_silence(Duration::from_millis(20));
    });
}

/// A client that writes far ahead of what it reads: the server must stop
/// reading while its output is unsent, and lose or reorder nothing.
#[test]
fn deep_pipeline_written_ahead_of_reads() {
    // About 1.6 MB of requests asking for 6 MB of answers: more than the
    // socket buffers hold, so the server must hold output back.
    const REQUESTS: usize = 40_000;
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        let mut writer = conn.stream.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let chunk = [get("/plaintext"), get("/json")].concat().repeat(50);
            for _ in 0..REQUESTS / 100 {
                writer.write_all(chunk.as_bytes()).unwrap();
            }
        });
        // Let the writer get ahead (a pause, not synchronisation: shorter
        // only makes the test weaker).
        thread::sleep(Duration::from_millis(200));
        for i in 0..REQUESTS {
            let resp = conn.response();
            if i % 2 == 0 {
                assert_eq!(resp.body, PLAINTEXT_BODY, "response {i}: {resp}");
            } else {
                assert_eq!(resp.body, JSON_BODY, "response {i}: {resp}");
            }
            assert_eq!(resp.status, 200, "response {i}: {resp}");
        }
        sender.join().unwrap();
        conn.expect_silence(Duration::from_millis(20));
    });
}

/// The mixed batch, split into two writes at every byte offset, gets the
/// same bytes back (Date aside) as when sent in one write.
#[test]
fn mixed_batch_split_at_every_offset() {
    let kinds = [
        Kind::Plaintext,
        Kind::Json,
        Kind::HeadPlaintext,
        Kind::NotFound,
        Kind::Delete,
        Kind::PostWithBody,
        Kind::HeadJson,
        Kind::PostNotFound,
        Kind::Json,
    ];
    let whole = batch(&kinds);
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        conn.send(&whole);
        let reference = read_all(&mut conn, &kinds, "unsplit");
        for split in 1..whole.len() {
            conn.send(&whole[..split]);
            thread::sleep(SPLIT_PAUSE);
            conn.send(&whole[split..]);
            let got = read_all(&mut conn, &kinds, &format!("split at {split}"));
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&reference),
                "split at byte {split}"
            );
        }
        conn.expect_silence(Duration::from_millis(20));
    });
}

#[test]
fn one_byte_at_a_time() {
    let kinds = [Kind::Plaintext, Kind::PostWithBody, Kind::Json];
    let whole = batch(&kinds);
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        // Nothing is answered before the first request's last byte.
        let first = Kind::Plaintext.request().into_bytes();
        for byte in &first[..first.len() - 1] {
            conn.send([*byte]);
            thread::sleep(Duration::from_micros(500));
        }
        conn.expect_silence(Duration::from_millis(50));
        conn.send(&first[first.len() - 1..]);
        Kind::Plaintext.check(&conn.response());

        for byte in &whole {
            conn.send([*byte]);
            thread::sleep(Duration::from_micros(500));
        }
        read_all(&mut conn, &kinds, "byte by byte");
        conn.expect_silence(Duration::from_millis(20));
    });
}

/// 1500 requests of every kind in a fixed random order, in one write of
/// more than the server's 64 KiB read size, so reads end inside heads and
/// bodies.
#[test]
fn mixed_routes_keep_order() {
    let mut rng = Rng::new(7);
    let kinds: Vec<Kind> = (0..1500)
        .map(|_| KINDS[(rng.next_u64() % KINDS.len() as u64) as usize])
        .collect();
    let whole = batch(&kinds);
    assert!(whole.len() > 100 * 1024, "{} bytes", whole.len());
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        conn.send(&whole);
        read_all(&mut conn, &kinds, "mixed");
        // And again in random-sized writes.
        let mut rng = Rng::new(11);
        let mut at = 0;
        while at < whole.len() {
            let end = (at + 1 + (rng.next_u64() % 700) as usize).min(whole.len());
            conn.send(&whole[at..end]);
            at = end;
        }
        read_all(&mut conn, &kinds, "mixed, random writes");
        conn.expect_silence(Duration::from_millis(20));
    });
}

/// A 3000-byte body that looks like requests, sent in 100-byte writes, is
/// skipped exactly: the request after it is answered, nothing inside it is.
#[test]
fn body_split_across_many_writes_is_skipped() {
    let fake = get("/json"); // 37 bytes, repeated: must never be answered
    let mut body = fake.repeat(3000 / fake.len() + 1).into_bytes();
    body.truncate(3000);
    let head = "POST /plaintext HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3000\r\n\r\n";
    each_flavour(|_, addr| {
        let mut conn = Conn::open(addr);
        // The next request arrives in the same write as the body's end ...
        conn.send(head);
        for chunk in body[..2900].chunks(100) {
            thread::sleep(Duration::from_millis(1));
            conn.send(chunk);
        }
        let mut last = body[2900..].to_vec();
        last.extend_from_slice(get("/plaintext").as_bytes());
        conn.send(&last);
        Kind::Delete.check(&conn.response()); // 405, same fields as DELETE
        Kind::Plaintext.check(&conn.response());
        conn.expect_silence(Duration::from_millis(50));

        // ... or in a write of its own after the body ended on a boundary,
        // and the head itself split from the body.
        let with_head_split = [head.as_bytes(), &body].concat();
        for chunk in with_head_split.chunks(100) {
            conn.send(chunk);
            thread::sleep(Duration::from_millis(1));
        }
        conn.send(get("/json"));
        Kind::Delete.check(&conn.response());
        Kind::Json.check(&conn.response());
        conn.expect_silence(Duration::from_millis(50));

        // A body larger than a read (64 KiB), with the next request in the
        // same write.
        let big = 200_000;
        let mut input =
            format!("POST /json HTTP/1.1\r\nHost: localhost\r\nContent-Length: {big}\r\n\r\n")
                .into_bytes();
        input.extend(fake.as_bytes().iter().cycle().take(big));
        input.extend_from_slice(get("/plaintext").as_bytes());
        conn.send(&input);
        Kind::Delete.check(&conn.response());
        Kind::Plaintext.check(&conn.response());
        conn.expect_silence(Duration::from_millis(50));
    });
}
