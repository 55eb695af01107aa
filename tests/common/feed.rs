//! Feeding bytes through `Pipeline::answer` the way a connection does, split
//! at chosen points. Shared by tests/properties.rs and the fuzz target
//! (fuzz/fuzz_targets/pipeline.rs), which include this file with `#[path]`.

use std::time::{Duration, Instant};

use chopin::dataset::{Dataset, Item};
use chopin::pipeline::{Answered, Buffers, Context, Pipeline};
use chopin::request::MAX_HEAD_BYTES;
use chopin::resources::Data;
use chopin::response::{Encoder, ServerField};

/// The fixed `Date` line, so outputs compare byte for byte.
pub const DATE: &[u8; chopin::date::DATE_LINE_LEN] = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

/// The largest body read for a handler in these tests: small, so that
/// inputs reach the 413 bound.
pub const MAX_BODY: usize = 256;

/// Three items in HttpArena's shape, for `/json/{count}`.
pub fn data() -> Data {
    let items: Vec<Item> = serde_json::from_str(
        r#"[{"id":1,"name":"a","category":"x","price":3,"quantity":4,"active":true,"tags":["t"],"rating":{"score":4.5,"count":2}},
            {"id":2,"name":"b","category":"y","price":-7,"quantity":2,"active":false,"tags":[],"rating":{"score":1,"count":0}},
            {"id":3,"name":"c","category":"z","price":9223372036854775807,"quantity":1,"active":true,"tags":["u","v"],"rating":{"score":0,"count":9}}]"#,
    )
    .expect("the test dataset parses");
    Data {
        dataset: Some(Dataset::from_items(items)),
    }
}

/// What feeding one input through a pipeline produced.
#[derive(PartialEq, Eq)]
pub struct Fed {
    pub out: Vec<u8>,
    pub close: bool,
    /// Bytes kept for the next read (an unfinished head or chunk line);
    /// empty after close.
    pub unread: Vec<u8>,
    pub in_body: bool,
}

impl std::fmt::Debug for Fed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fed")
            .field("out", &String::from_utf8_lossy(&self.out))
            .field("close", &self.close)
            .field("unread", &String::from_utf8_lossy(&self.unread))
            .field("in_body", &self.in_body)
            .finish()
    }
}

/// Splits `input` at `cuts` (taken modulo `input.len() + 1`, sorted; empty
/// pieces included) and feeds the pieces like a connection: the unconsumed
/// rest of each call is prepended to the next piece, a call that stops at
/// the output budget (`more`) is repeated on the rest before the next
/// piece; after `close` the remaining pieces are dropped unread. Every
/// piece arrives at the same instant; after the last, the clock moves to a
/// millisecond before the first held answer's deadline (nothing may be
/// written), to the deadline (it must be), then past the longest wait, so
/// every held answer is written.
pub fn feed(input: &[u8], cuts: &[usize]) -> Fed {
    let server = ServerField::new("chopin");
    let encoder = Encoder::new(&server, DATE);
    let data = data();
    let read_at = Instant::now();
    let cx = Context::new(&encoder, &data, MAX_BODY).at(read_at);
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());

    let mut pipeline = Pipeline::new();
    let mut bufs = Buffers::default();
    let mut out = Vec::new();
    let mut unread: Vec<u8> = Vec::new();
    let mut start = 0;
    for end in points {
        let mut buf = std::mem::take(&mut unread);
        buf.extend_from_slice(&input[start..end]);
        start = end;
        let before = out.len();
        let mut consumed = 0;
        loop {
            let answered = pipeline.answer(&buf[consumed..], &mut bufs, &cx);
            out.append(&mut bufs.out);
            assert!(
                answered.consumed <= buf.len() - consumed,
                "consumed {} of {}",
                answered.consumed,
                buf.len() - consumed
            );
            consumed += answered.consumed;
            if answered.close {
                assert_eq!(consumed, buf.len(), "a closing call consumes everything");
                assert!(out.len() > before, "close without a response");
                return Fed {
                    out,
                    close: true,
                    unread: Vec::new(),
                    in_body: pipeline.in_body(),
                };
            }
            if !answered.more {
                break;
            }
        }
        unread = buf[consumed..].to_vec();
        if !unread.is_empty() {
            // What is left is an unfinished head, or chunk-size or trailer
            // line, or a request waiting for the body its handler reads
            // (its head, then framing of less than a head's length): within
            // limits, and a second look at it answers nothing and consumes
            // nothing.
            assert!(
                unread.len() < 2 * MAX_HEAD_BYTES,
                "kept {} bytes",
                unread.len()
            );
            let answered = pipeline.answer(&unread, &mut bufs, &cx);
            assert_eq!(
                answered,
                Answered {
                    consumed: 0,
                    close: false,
                    more: false,
                },
                "re-answering the kept rest {:?}",
                String::from_utf8_lossy(&unread)
            );
            assert!(bufs.out.is_empty());
        }
    }
    let mut close = false;
    if pipeline.holds() {
        let due = pipeline.next_due().expect("a held answer has a deadline");
        assert!(
            due <= read_at + Duration::from_millis(60_000),
            "waits at most 60 s"
        );
        // A millisecond before the first deadline nothing may be written;
        // at it, the first held answer (a `/delay/0` is never held) is.
        let early = Context::new(&encoder, &data, MAX_BODY).at(due - Duration::from_millis(1));
        let answered = pipeline.answer(&[], &mut bufs, &early);
        assert!(bufs.out.is_empty(), "an answer written before its deadline");
        assert!(!answered.close && pipeline.holds());
        let on_time = Context::new(&encoder, &data, MAX_BODY).at(due);
        let answered = pipeline.answer(&[], &mut bufs, &on_time);
        assert!(!bufs.out.is_empty(), "no answer written at its deadline");
        out.append(&mut bufs.out);
        if answered.close {
            return Fed {
                out,
                close: true,
                unread: Vec::new(),
                in_body: pipeline.in_body(),
            };
        }
        let later = Context::new(&encoder, &data, MAX_BODY).at(read_at + Duration::from_secs(61));
        let answered = pipeline.answer(&[], &mut bufs, &later);
        out.append(&mut bufs.out);
        assert!(
            !pipeline.holds(),
            "every answer is due after the longest wait"
        );
        close = answered.close;
    }
    Fed {
        out,
        close,
        unread: if close { Vec::new() } else { unread },
        in_body: pipeline.in_body(),
    }
}
