//! Finding the end of a run of plain bytes, sixteen bytes a step.
//!
//! The request fast path ([`crate::request::parse_common`]) spends most of
//! its time looking for the end of a request-target or a field line: the
//! first byte outside visible ASCII (plus the space, in a field line).
//! Byte by byte that cost ≈7 instructions a byte; as one `u64` at a time
//! (SWAR) ≈1.6; with one SSE2 compare per 16 bytes ≈0.6. Measured on the
//! whole server (`scripts/bench --profile`, TFB `/plaintext`): 1,836
//! instructions per request with the byte loop, 1,424 with SWAR, 1,151
//! with SSE2 (README, "Performance notes"). On the final code, SSE2 against
//! SWAR alone, `examples/pipeline_cost` over 32,000 requests: 26,090,658
//! against 30,128,658 instructions for `/plaintext` (126 a request),
//! 35,754,634 against 39,440,634 for `/json` (115 a request). That is the
//! measured reason for this module's one `unsafe` block, an unaligned
//! 16-byte load. SSE2 is part of x86-64 itself, so there is no feature
//! detection; elsewhere the SWAR loop runs. Both give the same answer
//! (tested below on every byte value).

/// The length of the run at the start of `bytes` of bytes within
/// `LOW..=b'~'`: `LOW = b'!'` for a request-target, `b' '` for a field line.
#[inline]
pub fn visible_run<const LOW: u8>(bytes: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        visible_run_sse2::<LOW>(bytes)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        visible_run_swar::<LOW>(bytes)
    }
}

#[inline]
fn is_outside<const LOW: u8>(b: u8) -> bool {
    b.wrapping_sub(LOW) > b'~' - LOW
}

/// The bytes after the last whole step, byte by byte.
#[inline]
fn tail_run<const LOW: u8>(bytes: &[u8], at: usize) -> usize {
    at + bytes[at..]
        .iter()
        .position(|&b| is_outside::<LOW>(b))
        .unwrap_or(bytes.len() - at)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn visible_run_sse2<const LOW: u8>(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_set1_epi8,
        _mm_sub_epi8,
    };
    let mut at = 0;
    while at + 16 <= bytes.len() {
        // SAFETY: SSE2 is in every x86-64 CPU (the target's baseline, so
        // these intrinsics are always available), and the unaligned load
        // reads bytes[at..at + 16], which the loop condition keeps in bounds.
        let outside = unsafe {
            let chunk = _mm_loadu_si128(bytes.as_ptr().add(at).cast::<__m128i>());
            // b - LOW (wrapping) is above b'~' - LOW exactly when b is
            // outside LOW..=b'~'; unsigned `x >= n` is `max(x, n) == x`.
            let shifted = _mm_sub_epi8(chunk, _mm_set1_epi8(LOW as i8));
            let limit = _mm_set1_epi8((b'~' - LOW + 1) as i8);
            _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(shifted, limit), shifted))
        };
        if outside != 0 {
            return at + outside.trailing_zeros() as usize;
        }
        at += 16;
    }
    tail_run::<LOW>(bytes, at)
}

/// Eight bytes a step as one `u64`: a byte is flagged when it is above
/// 0x7E (adding 1 sets its top bit, or it was set) or below `LOW`
/// (subtracting `LOW` borrows). A carry or borrow only comes out of a lower
/// flagged byte, so the lowest flag is exact.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn visible_run_swar<const LOW: u8>(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const TOPS: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = ONES * LOW as u64;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let flags = (x.wrapping_add(ONES) | x | x.wrapping_sub(below)) & TOPS;
        if flags != 0 {
            return at + (flags.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    tail_run::<LOW>(bytes, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference<const LOW: u8>(bytes: &[u8]) -> usize {
        tail_run::<LOW>(bytes, 0)
    }

    fn check(bytes: &[u8]) {
        let expected = reference::<b'!'>(bytes);
        assert_eq!(visible_run::<b'!'>(bytes), expected, "{bytes:?}");
        assert_eq!(visible_run_swar::<b'!'>(bytes), expected, "{bytes:?}");
        let expected = reference::<b' '>(bytes);
        assert_eq!(visible_run::<b' '>(bytes), expected, "{bytes:?}");
        assert_eq!(visible_run_swar::<b' '>(bytes), expected, "{bytes:?}");
    }

    /// Every byte value at every position of runs up to 40 bytes long, over
    /// plain runs of every length: the step boundaries, the tail, the exact
    /// first flag when carries and borrows could spill into later bytes.
    #[test]
    fn every_byte_at_every_position() {
        for len in 0..40 {
            let plain = vec![b'a'; len];
            check(&plain);
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = plain.clone();
                    bytes[at] = b;
                    check(&bytes);
                    // A second odd byte after it must not change the answer.
                    if at + 1 < len {
                        bytes[at + 1] = 0xff;
                        check(&bytes);
                        bytes[at + 1] = 0x00;
                        check(&bytes);
                    }
                }
            }
        }
    }

    #[test]
    fn boundaries_of_the_two_ranges() {
        assert_eq!(visible_run::<b'!'>(b"/plaintext HTTP/1.1"), 10);
        assert_eq!(visible_run::<b' '>(b"Host: localhost\r\n"), 15);
        assert_eq!(visible_run::<b' '>(b"a\tb"), 1);
        assert_eq!(visible_run::<b' '>(b"~\x7f"), 1);
        assert_eq!(visible_run::<b' '>("é".as_bytes()), 0);
        assert_eq!(visible_run::<b'!'>(b""), 0);
    }
}
