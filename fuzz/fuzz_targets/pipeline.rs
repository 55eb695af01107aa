//! Fuzzes `chopin::pipeline::Pipeline` the way a connection drives it.
//!
//! Input layout: the first byte's low 3 bits say how many split points
//! follow (0 to 7), each as two little-endian bytes taken modulo the
//! payload's length + 1; the rest is the payload, the bytes "received" on one
//! connection. The payload is fed unsplit and split at those points (the
//! unconsumed rest of each call prepended to the next piece, nothing fed
//! after `close`), and the target checks the invariants of
//! `tests/properties.rs`, with its helpers from `tests/common/`:
//!
//! * no panic; `consumed <= input`; a closing call consumes everything;
//! * a kept rest is an unfinished head or chunk line, or a request waiting
//!   for the body its handler reads: under twice `MAX_HEAD_BYTES`, and
//!   answering it again answers nothing;
//! * the output is whole responses; `Connection: close` on the last one
//!   exactly when `close` is set;
//! * no held answer (`/delay/{ms}`) is written before its deadline, and the
//!   first is written at it (checked by the feed);
//! * split output, close flag, kept rest and body state are identical to the
//!   unsplit case;
//! * the request fast path agrees with httparse: wherever
//!   `request::parse_common` accepts a head (at any offset of the payload),
//!   `request::parse_with_httparse` parses it to the same request.
#![no_main]

// The tests' own helpers, so the fuzzer checks what the property tests
// check: the feed, the one response reader (with the date check it uses),
// and the output's invariants.
#[allow(dead_code)]
#[path = "../../tests/common/date.rs"]
mod date;
#[path = "../../tests/common/feed.rs"]
mod feed;
#[path = "../../tests/common/pipeline_output.rs"]
mod pipeline_output;
#[allow(dead_code)]
#[path = "../../tests/common/response.rs"]
mod response;

use chopin::request::{self, Parsed};
use feed::feed;
use libfuzzer_sys::fuzz_target;
use pipeline_output::check_well_formed;

/// The fast path either declines or agrees with httparse, at every offset
/// (a pipelined head starts anywhere).
fn check_fast_path(payload: &[u8]) {
    for start in 0..payload.len() {
        let buf = &payload[start..];
        if let Some(fast) = request::parse_common(buf) {
            assert_eq!(
                request::parse_with_httparse(buf),
                Parsed::Complete(fast),
                "fast path disagrees on {:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(first & 7).min(rest.len() / 2);
    let (cuts, payload) = rest.split_at(count * 2);
    let mut points: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (payload.len() + 1))
        .collect();
    points.sort_unstable();

    check_fast_path(payload);
    let whole = feed(payload, &[]);
    check_well_formed(&whole);
    let split = feed(payload, &points);
    assert_eq!(
        split,
        whole,
        "split at {points:?} differs from unsplit for {:?}",
        String::from_utf8_lossy(payload)
    );
});
