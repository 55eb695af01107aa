//! Finding the end of a run of plain bytes, sixteen bytes a step.
//!
//! The request fast path ([`crate::request::parse_common`]) spends most of
//! its time looking for the end of a request-target or a field line: the
//! first byte outside visible ASCII (plus the space, in a field line).
//! Byte by byte that costs several instructions a byte; one `u64` at a
//! time (SWAR) a fraction of that; one SSE2 compare per 16 bytes less
//! again. The measurements, on the whole server and on
//! `examples/pipeline_cost` against SWAR alone, are in docs/design.md
//! ("Scanning 16 bytes a step"): they are the reason for this module's one
//! `unsafe` block, an unaligned 16-byte load. SSE2 is part of x86-64 itself, so there is no feature
//! detection; elsewhere the SWAR loop runs. Both give the same answer
//! (tested below on every byte value).

/// The index of the first byte at or after `from` outside `LOW..=b'~'`
/// (`bytes.len()` if there is none): `LOW = b'!'` for a request-target,
/// `b' '` for a field line. It takes the whole buffer and a start rather
/// than the slice from `from` so that the last, partial step can load the
/// buffer's last 16 bytes, overlapping bytes already checked, instead of
/// going byte by byte: a head's last lines (`Connection: keep-alive`, the
/// blank line) end there, so every request on its own in a read paid the
/// byte loop.
#[inline]
pub fn visible_end<const LOW: u8>(bytes: &[u8], from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        visible_end_sse2::<LOW>(bytes, from)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        from + visible_run_swar::<LOW>(&bytes[from..])
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
fn visible_end_sse2<const LOW: u8>(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while at + 16 <= bytes.len() {
        let outside = outside_mask_sse2::<LOW>(bytes, at);
        if outside != 0 {
            return at + outside.trailing_zeros() as usize;
        }
        at += 16;
    }
    if at < bytes.len() && bytes.len() >= 16 {
        // The last 16 bytes; the `at - start` of them before `at` were
        // checked already and are shifted out of the mask.
        let start = bytes.len() - 16;
        let outside = outside_mask_sse2::<LOW>(bytes, start) >> (at - start);
        return if outside != 0 {
            at + outside.trailing_zeros() as usize
        } else {
            bytes.len()
        };
    }
    tail_run::<LOW>(bytes, at)
}

/// One bit per byte of `bytes[at..at + 16]`, set where the byte is outside
/// `LOW..=b'~'`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn outside_mask_sse2<const LOW: u8>(bytes: &[u8], at: usize) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_set1_epi8,
        _mm_sub_epi8,
    };
    assert!(at + 16 <= bytes.len());
    // SAFETY: SSE2 is in every x86-64 CPU (the target's baseline, so these
    // intrinsics are always available), and the unaligned load reads
    // bytes[at..at + 16], which the assertion above keeps in bounds (every
    // caller has already checked it, so the compiler drops the assertion).
    let mask = unsafe {
        let chunk = _mm_loadu_si128(bytes.as_ptr().add(at).cast::<__m128i>());
        // b - LOW (wrapping) is above b'~' - LOW exactly when b is outside
        // LOW..=b'~'; unsigned `x >= n` is `max(x, n) == x`.
        let shifted = _mm_sub_epi8(chunk, _mm_set1_epi8(LOW as i8));
        let limit = _mm_set1_epi8((b'~' - LOW + 1) as i8);
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(shifted, limit), shifted))
    };
    mask as u32
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

    /// Both implementations against the byte loop, from `from`, for both
    /// ranges.
    fn check_from(bytes: &[u8], from: usize) {
        check_range::<b'!'>(bytes, from);
        check_range::<b' '>(bytes, from);
    }

    fn check_range<const LOW: u8>(bytes: &[u8], from: usize) {
        let expected = from + reference::<LOW>(&bytes[from..]);
        let sse2_or_swar = visible_end::<LOW>(bytes, from);
        assert_eq!(sse2_or_swar, expected, "{bytes:?} from {from}, LOW {LOW}");
        let swar = from + visible_run_swar::<LOW>(&bytes[from..]);
        assert_eq!(swar, expected, "{bytes:?} from {from}, LOW {LOW} (SWAR)");
    }

    fn check(bytes: &[u8]) {
        check_from(bytes, 0);
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

    /// Every start and a few telling byte values at every position: the
    /// start decides where the last partial step begins, so this reaches
    /// every overlap of the final 16-byte load with the bytes before it.
    #[test]
    fn every_start_with_telling_bytes() {
        let telling = [
            0x00, b'\t', b'\n', b'\r', b' ', b'!', b'a', b'~', 0x7f, 0x80, 0xff,
        ];
        for len in 0..40 {
            let plain = vec![b'a'; len];
            for from in 0..=len {
                check_from(&plain, from);
                for at in 0..len {
                    for &b in &telling {
                        let mut bytes = plain.clone();
                        bytes[at] = b;
                        check_from(&bytes, from);
                    }
                }
            }
        }
    }

    #[test]
    fn boundaries_of_the_two_ranges() {
        assert_eq!(visible_end::<b'!'>(b"GET /plaintext HTTP/1.1", 4), 14);
        assert_eq!(visible_end::<b' '>(b"Host: localhost\r\n", 0), 15);
        assert_eq!(visible_end::<b' '>(b"a\tb", 0), 1);
        assert_eq!(visible_end::<b' '>(b"~\x7f", 0), 1);
        assert_eq!(visible_end::<b' '>("é".as_bytes(), 0), 0);
        assert_eq!(visible_end::<b'!'>(b"", 0), 0);
        assert_eq!(
            visible_end::<b' '>(b"Connection: keep-alive\r\n\r\n", 24),
            24
        );
    }
}
