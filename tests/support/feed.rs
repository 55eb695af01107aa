//! Feeding bytes through `Pipeline::answer` the way a connection does, split
//! at chosen points. Shared by tests/properties.rs and the fuzz target
//! (fuzz/fuzz_targets/pipeline.rs), which include this file with `#[path]`.

use chopin::pipeline::{Answered, Pipeline};
use chopin::request::MAX_HEAD_BYTES;
use chopin::response::{Encoder, ServerField};

/// The fixed `Date` line, so outputs compare byte for byte.
pub const DATE: &[u8; chopin::date::DATE_LINE_LEN] = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

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
/// rest of each call is prepended to the next piece; after `close` the
/// remaining pieces are dropped unread.
pub fn feed(input: &[u8], cuts: &[usize]) -> Fed {
    let server = ServerField::new("chopin");
    let encoder = Encoder::new(&server, DATE);
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    points.push(input.len());

    let mut pipeline = Pipeline::new();
    let mut out = Vec::new();
    let mut unread: Vec<u8> = Vec::new();
    let mut start = 0;
    for end in points {
        let mut buf = std::mem::take(&mut unread);
        buf.extend_from_slice(&input[start..end]);
        start = end;
        let before = out.len();
        let Answered { consumed, close } = pipeline.answer(&buf, &mut out, &encoder);
        assert!(
            consumed <= buf.len(),
            "consumed {consumed} of {}",
            buf.len()
        );
        if close {
            assert_eq!(consumed, buf.len(), "a closing call consumes everything");
            assert!(out.len() > before, "close without a response");
            return Fed {
                out,
                close: true,
                unread: Vec::new(),
                in_body: pipeline.in_body(),
            };
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
            let mut again = Vec::new();
            let answered = pipeline.answer(&unread, &mut again, &encoder);
            assert_eq!(
                answered,
                Answered {
                    consumed: 0,
                    close: false
                },
                "re-answering the kept rest {:?}",
                String::from_utf8_lossy(&unread)
            );
            assert!(again.is_empty());
        }
    }
    Fed {
        out,
        close: false,
        unread,
        in_body: pipeline.in_body(),
    }
}
