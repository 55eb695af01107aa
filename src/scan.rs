//! Finding the end of a run of plain bytes, sixteen bytes a step.
//!
//! The request fast path ([`crate::request::parse_common`]) spends most of
//! its time looking for the end of a request-target or a field line: the
//! first byte outside visible ASCII (plus the space, in a field line), or,
//! in a target, the first byte its path and query may not hold as it is.
//! Byte by byte that costs several instructions a byte; one `u64` at a
//! time (SWAR) a fraction of that; one SSE2 compare per 16 bytes less
//! again. The measurements, on the whole server and on
//! `examples/pipeline_cost` against SWAR alone, are in docs/design.md
//! ("Scanning 16 bytes a step"): they are the reason for this module's
//! `unsafe` blocks, an unaligned 16-byte load and the SSE2 intrinsics
//! (unsafe to call before Rust 1.87; the MSRV is 1.85). SSE2 is part of
//! x86-64 itself, so the visible-ASCII scan needs no feature detection;
//! the target scan uses SSSE3's byte shuffle where the CPU has it
//! (detected at run time, std caches the answer) and SSE2 compares where
//! it does not. Elsewhere the SWAR loop runs (the byte loop, for a
//! target). Each gives the same answer as the byte loop (tested below on
//! every byte value).

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
        run_end_sse2::<Visible<LOW>>(bytes, from)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        from + visible_run_swar::<LOW>(&bytes[from..])
    }
}

/// The index of the first byte at or after `from` that may not stand
/// as it is in a request-target's path and query (`bytes.len()` if there
/// is none): one outside visible ASCII (the space after the target, in a
/// request line), one of the thirteen ``"#<>[\]^`{|}`` that RFC 3986
/// allows nowhere in them, or a `%`, which starts an escape for the grammar
/// to judge.
///
/// It finds a request-target's end and judges its bytes in one pass, for
/// the usual target (no escape): the table lookup per byte that it saves
/// was the biggest part of the request fast path's target check
/// (`scripts/bench --profile`, callgrind by source line).
/// [`crate::request`]'s tests check it against the grammar's own table.
#[inline]
pub fn plain_target_end(bytes: &[u8], from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("ssse3") {
            // SAFETY: this CPU has SSSE3, detected just above.
            return unsafe { plain_target_end_ssse3(bytes, from) };
        }
        run_end_sse2::<PlainTarget>(bytes, from)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        tail_run::<PlainTarget>(bytes, from)
    }
}

/// A kind of run: the bytes that end it, one at a time and (on x86-64)
/// sixteen at a time.
trait Run {
    /// Whether `b` ends the run.
    fn stops(b: u8) -> bool;

    /// One bit per byte of `bytes[at..at + 16]`, set where the byte ends
    /// the run.
    #[cfg(target_arch = "x86_64")]
    fn stops_mask(bytes: &[u8], at: usize) -> u32;
}

/// Runs of `LOW..=b'~'`.
struct Visible<const LOW: u8>;

/// Runs of the bytes a request-target's path and query may hold as they
/// are ([`plain_target_end`]).
struct PlainTarget;

impl<const LOW: u8> Run for Visible<LOW> {
    #[inline]
    fn stops(b: u8) -> bool {
        b.wrapping_sub(LOW) > b'~' - LOW
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn stops_mask(bytes: &[u8], at: usize) -> u32 {
        use std::arch::x86_64::_mm_movemask_epi8;
        let chunk = load_sse2(bytes, at);
        // SAFETY: SSE2 is in every x86-64 CPU (the target's baseline).
        unsafe { _mm_movemask_epi8(outside_sse2::<LOW>(chunk)) as u32 }
    }
}

/// Whether `b` ends a run of plain target bytes ([`plain_target_end`]).
const fn plain_target_stops(b: u8) -> bool {
    b.wrapping_sub(b'!') > b'~' - b'!'
        || matches!(
            b,
            b'"' | b'#'
                | b'%'
                | b'<'
                | b'>'
                | b'['
                | b'\\'
                | b']'
                | b'^'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
        )
}

impl Run for PlainTarget {
    #[inline]
    fn stops(b: u8) -> bool {
        plain_target_stops(b)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn stops_mask(bytes: &[u8], at: usize) -> u32 {
        use std::arch::x86_64::{
            _mm_and_si128, _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8, _mm_sub_epi8,
        };
        let chunk = load_sse2(bytes, at);
        // SAFETY: SSE2 is in every x86-64 CPU (the target's baseline).
        let mask = unsafe {
            let is = |value: u8| _mm_cmpeq_epi8(chunk, _mm_set1_epi8(value as i8));
            // Pairs that differ in one bit, compared with that bit set:
            // `"` and `#`, `<` and `>`.
            let either = |bit: u8, value: u8| {
                _mm_cmpeq_epi8(
                    _mm_or_si128(chunk, _mm_set1_epi8(bit as i8)),
                    _mm_set1_epi8(value as i8),
                )
            };
            // `[\]` and `{|}` differ in bit 5: with it cleared, both are
            // 0x5B..=0x5D; unsigned `x <= 2` is `min(x, 2) == x`.
            let folded = _mm_sub_epi8(
                _mm_and_si128(chunk, _mm_set1_epi8(!0x20u8 as i8)),
                _mm_set1_epi8(b'[' as i8),
            );
            let brackets = _mm_cmpeq_epi8(_mm_min_epu8(folded, _mm_set1_epi8(2)), folded);
            let stops = _mm_or_si128(
                _mm_or_si128(outside_sse2::<b'!'>(chunk), brackets),
                _mm_or_si128(
                    _mm_or_si128(either(0x01, b'#'), either(0x02, b'>')),
                    _mm_or_si128(is(b'%'), _mm_or_si128(is(b'^'), is(b'`'))),
                ),
            );
            _mm_movemask_epi8(stops)
        };
        mask as u32
    }
}

/// The plain target bytes as two 16-entry tables for SSSE3's byte shuffle,
/// one looked up by a byte's low four bits and one by its high four: a byte
/// is plain when the two entries share a bit. The high table gives each of
/// the high nibbles 0..=7 its own bit and 8..=15 none (no byte from 0x80 is
/// plain); the low table sets, for each low nibble, the bits of the high
/// nibbles that make a plain byte with it.
#[cfg(target_arch = "x86_64")]
const PLAIN_TARGET_NIBBLES: ([u8; 16], [u8; 16]) = {
    let mut low = [0u8; 16];
    let mut high = [0u8; 16];
    let mut b = 0;
    while b < 0x80 {
        if !plain_target_stops(b as u8) {
            low[b & 0x0f] |= 1 << (b >> 4);
        }
        b += 1;
    }
    let mut h = 0;
    while h < 8 {
        high[h] = 1 << h;
        h += 1;
    }
    (low, high)
};

/// [`plain_target_end`] with SSSE3: two table lookups per 16 bytes
/// ([`PLAIN_TARGET_NIBBLES`]) in place of the SSE2 pass's seven compares: the
/// scan's function 29 instructions a request against 53, the request 9 to
/// 13 fewer once the feature test is paid (docs/design.md, "Scanning 16
/// bytes a step").
///
/// # Safety
/// The CPU must have SSSE3.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn plain_target_end_ssse3(bytes: &[u8], from: usize) -> usize {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_set1_epi8};
    let (low, high) = PLAIN_TARGET_NIBBLES;
    // SAFETY: SSE2 is in every x86-64 CPU, and the loads read the 16 bytes
    // of `low` and of `high`.
    let (low, high, nibble) = unsafe {
        (
            _mm_loadu_si128(low.as_ptr().cast::<__m128i>()),
            _mm_loadu_si128(high.as_ptr().cast::<__m128i>()),
            _mm_set1_epi8(0x0f),
        )
    };
    // SAFETY: the caller guarantees SSSE3.
    let stops_mask =
        |at: usize| unsafe { plain_target_mask_ssse3(load_sse2(bytes, at), low, high, nibble) };
    run_end_by::<PlainTarget>(bytes, from, stops_mask)
}

/// One bit per byte of `chunk`, set where it is not a plain target byte:
/// where its two [`PLAIN_TARGET_NIBBLES`] entries share no bit.
///
/// # Safety
/// The CPU must have SSSE3.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
#[inline]
unsafe fn plain_target_mask_ssse3(
    chunk: std::arch::x86_64::__m128i,
    low: std::arch::x86_64::__m128i,
    high: std::arch::x86_64::__m128i,
    nibble: std::arch::x86_64::__m128i,
) -> u32 {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_setzero_si128, _mm_shuffle_epi8,
        _mm_srli_epi16,
    };
    let lows = _mm_shuffle_epi8(low, _mm_and_si128(chunk, nibble));
    let highs = _mm_shuffle_epi8(high, _mm_and_si128(_mm_srli_epi16(chunk, 4), nibble));
    let plain = _mm_and_si128(lows, highs);
    _mm_movemask_epi8(_mm_cmpeq_epi8(plain, _mm_setzero_si128())) as u32
}

/// The bytes from `at` on, byte by byte.
#[inline]
fn tail_run<R: Run>(bytes: &[u8], at: usize) -> usize {
    at + bytes[at..]
        .iter()
        .position(|&b| R::stops(b))
        .unwrap_or(bytes.len() - at)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn run_end_sse2<R: Run>(bytes: &[u8], from: usize) -> usize {
    run_end_by::<R>(bytes, from, |at| R::stops_mask(bytes, at))
}

/// The end of an `R` run, sixteen bytes a step: `stops_mask(at)` is
/// [`Run::stops_mask`] for `bytes[at..at + 16]`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn run_end_by<R: Run>(bytes: &[u8], from: usize, stops_mask: impl Fn(usize) -> u32) -> usize {
    let mut at = from;
    while at + 16 <= bytes.len() {
        let stops = stops_mask(at);
        if stops != 0 {
            return at + stops.trailing_zeros() as usize;
        }
        at += 16;
    }
    if at < bytes.len() && bytes.len() >= 16 {
        // The last 16 bytes; the `at - start` of them before `at` were
        // checked already and are shifted out of the mask.
        let start = bytes.len() - 16;
        let stops = stops_mask(start) >> (at - start);
        return if stops != 0 {
            at + stops.trailing_zeros() as usize
        } else {
            bytes.len()
        };
    }
    tail_run::<R>(bytes, at)
}

/// `bytes[at..at + 16]`, unaligned.
#[cfg(target_arch = "x86_64")]
#[inline]
fn load_sse2(bytes: &[u8], at: usize) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128};
    assert!(at + 16 <= bytes.len());
    // SAFETY: SSE2 is in every x86-64 CPU (the target's baseline, so these
    // intrinsics are always available), and the unaligned load reads
    // bytes[at..at + 16], which the assertion above keeps in bounds (every
    // caller has already checked it, so the compiler drops the assertion).
    unsafe { _mm_loadu_si128(bytes.as_ptr().add(at).cast::<__m128i>()) }
}

/// 0xFF in each byte of `chunk` outside `LOW..=b'~'`, 0 in the others.
#[cfg(target_arch = "x86_64")]
#[inline]
fn outside_sse2<const LOW: u8>(chunk: std::arch::x86_64::__m128i) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_max_epu8, _mm_set1_epi8, _mm_sub_epi8};
    // SAFETY: SSE2 is in every x86-64 CPU (the target's baseline).
    unsafe {
        // b - LOW (wrapping) is above b'~' - LOW exactly when b is outside
        // LOW..=b'~'; unsigned `x >= n` is `max(x, n) == x`.
        let shifted = _mm_sub_epi8(chunk, _mm_set1_epi8(LOW as i8));
        let limit = _mm_set1_epi8((b'~' - LOW + 1) as i8);
        _mm_cmpeq_epi8(_mm_max_epu8(shifted, limit), shifted)
    }
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
    tail_run::<Visible<LOW>>(bytes, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference<const LOW: u8>(bytes: &[u8]) -> usize {
        tail_run::<Visible<LOW>>(bytes, 0)
    }

    /// Both implementations against the byte loop, from `from`, for both
    /// ranges.
    fn check_from(bytes: &[u8], from: usize) {
        check_range::<b'!'>(bytes, from);
        check_range::<b' '>(bytes, from);
        let expected = tail_run::<PlainTarget>(bytes, from);
        let found = plain_target_end(bytes, from);
        assert_eq!(found, expected, "{bytes:?} from {from}, target bytes");
        #[cfg(target_arch = "x86_64")]
        {
            let sse2 = run_end_sse2::<PlainTarget>(bytes, from);
            assert_eq!(sse2, expected, "{bytes:?} from {from}, target bytes (SSE2)");
            if std::is_x86_feature_detected!("ssse3") {
                // SAFETY: this CPU has SSSE3, detected just above.
                let ssse3 = unsafe { plain_target_end_ssse3(bytes, from) };
                assert_eq!(
                    ssse3, expected,
                    "{bytes:?} from {from}, target bytes (SSSE3)"
                );
            }
        }
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

    /// The bytes that end a plain target, one by one: every byte outside
    /// visible ASCII, and the thirteen visible ones (the request parser's
    /// tests check them against the URI grammar's table).
    #[test]
    fn plain_target_bytes() {
        let stops: Vec<u8> = (0..=255u8).filter(|&b| PlainTarget::stops(b)).collect();
        let visible_stops: Vec<u8> = stops
            .iter()
            .copied()
            .filter(|b| (b'!'..=b'~').contains(b))
            .collect();
        assert_eq!(visible_stops, b"\"#%<>[\\]^`{|}");
        assert_eq!(stops.len(), 256 - 94 + 13);
        assert_eq!(plain_target_end(b"GET /json?m=3 HTTP/1.1\r\n", 4), 13);
        assert_eq!(plain_target_end(b"GET /a%20b HTTP/1.1\r\n", 4), 6);
        assert_eq!(plain_target_end(b"GET /a{b} HTTP/1.1\r\n", 4), 6);
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
