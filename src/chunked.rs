//! Decoding a chunked request body (RFC 9112 7.1).
//!
//! Every HTTP/1.1 recipient must be able to decode the chunked coding. Most
//! of this server's routes take no body, so the decoder mostly finds where
//! the body ends, and rejects what is not a chunked body, without keeping a
//! byte of it ([`Chunked::skip`]): it consumes what it can and leaves an
//! unfinished chunk-size or trailer line for the next read, the way
//! [`crate::pipeline`] leaves an unfinished head. Its state is one word, so
//! a connection in a body costs no more memory than one between requests.
//! For the one route that reads its body, [`Chunked::decode`] hands the
//! chunk data to its caller as well.
//!
//! Lines must end in CRLF and hold no control byte but HTAB: a bare LF or
//! CR is where chunked parsers disagree, and disagreement is how requests
//! are smuggled, so it is refused rather than guessed at.

use crate::request::{split_field_name, token_len, trim_ows_start, MAX_HEAD_BYTES};

/// Where in a chunked body the next byte belongs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chunked {
    /// A chunk-size line: hex digits, optional extensions, CRLF.
    #[default]
    Size,
    /// Chunk data: this many bytes still to skip.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The trailer section: field lines up to an empty line.
    Trailer,
}

/// What [`Chunked::skip`] made of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The body ended; this many bytes of the input were its last.
    Done(usize),
    /// This many bytes were used; the body goes on past the rest, which
    /// starts with an unfinished line (or is empty) and must be given again
    /// with more bytes after it.
    More(usize),
    /// Not a chunked body (or a line of [`MAX_HEAD_BYTES`] or more): 400.
    Invalid,
    /// [`Chunked::decode`]'s caller refused the data handed to it.
    Stopped,
}

impl Chunked {
    /// Skips body bytes from the start of `input`.
    pub fn skip(&mut self, input: &[u8]) -> Progress {
        self.decode(input, &mut |_| true)
    }

    /// Decodes body bytes from the start of `input`, handing each piece of
    /// chunk data to `data` in order; when `data` returns false, stops with
    /// [`Progress::Stopped`].
    pub fn decode(&mut self, input: &[u8], data: &mut impl FnMut(&[u8]) -> bool) -> Progress {
        self.decode_framed(input, data, &mut |_| true)
    }

    /// [`Chunked::decode`], also handing `framing` the length of each
    /// framing unit as it is consumed (a chunk-size line or a trailer line
    /// with its CRLF, the CRLF after a chunk's data); when `framing`
    /// returns false, stops with [`Progress::Stopped`]. Units are consumed
    /// whole, never part of one, so a limit on framing tested here falls
    /// at the same byte however the body is split into reads.
    pub fn decode_framed(
        &mut self,
        input: &[u8],
        data: &mut impl FnMut(&[u8]) -> bool,
        framing: &mut impl FnMut(usize) -> bool,
    ) -> Progress {
        let mut pos = 0;
        loop {
            match *self {
                Chunked::Data(left) => {
                    let take = left.min((input.len() - pos) as u64);
                    if take > 0 && !data(&input[pos..pos + take as usize]) {
                        return Progress::Stopped;
                    }
                    pos += take as usize;
                    if take < left {
                        *self = Chunked::Data(left - take);
                        return Progress::More(pos);
                    }
                    *self = Chunked::DataEnd;
                }
                Chunked::DataEnd => match &input[pos..] {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        *self = Chunked::Size;
                        if !framing(2) {
                            return Progress::Stopped;
                        }
                    }
                    [] | [b'\r'] => return Progress::More(pos),
                    _ => return Progress::Invalid,
                },
                Chunked::Size => {
                    let line = match line(&input[pos..]) {
                        Line::Whole(line) => line,
                        Line::Unfinished => return Progress::More(pos),
                        Line::Invalid => return Progress::Invalid,
                    };
                    let Some(size) = chunk_size(line) else {
                        return Progress::Invalid;
                    };
                    pos += line.len() + 2;
                    *self = if size == 0 {
                        Chunked::Trailer
                    } else {
                        Chunked::Data(size)
                    };
                    if !framing(line.len() + 2) {
                        return Progress::Stopped;
                    }
                }
                Chunked::Trailer => {
                    let line = match line(&input[pos..]) {
                        Line::Whole(line) => line,
                        Line::Unfinished => return Progress::More(pos),
                        Line::Invalid => return Progress::Invalid,
                    };
                    pos += line.len() + 2;
                    if !framing(line.len() + 2) {
                        return Progress::Stopped;
                    }
                    if line.is_empty() {
                        *self = Chunked::Size;
                        return Progress::Done(pos);
                    }
                    if !is_field_line(line) {
                        return Progress::Invalid;
                    }
                }
            }
        }
    }
}

enum Line<'a> {
    /// The line without its CRLF.
    Whole(&'a [u8]),
    /// No LF yet, and under the length limit.
    Unfinished,
    /// A control byte other than HTAB (a bare CR or LF among them), or a
    /// line of [`MAX_HEAD_BYTES`] or more.
    Invalid,
}

/// The CRLF-terminated line at the start of `bytes`.
fn line(bytes: &[u8]) -> Line<'_> {
    for (at, &b) in bytes.iter().enumerate().take(MAX_HEAD_BYTES) {
        if b == b'\r' {
            return match bytes.get(at + 1) {
                Some(b'\n') => Line::Whole(&bytes[..at]),
                Some(_) => Line::Invalid,
                None => Line::Unfinished,
            };
        }
        if (b < b' ' && b != b'\t') || b == 0x7f {
            return Line::Invalid;
        }
    }
    if bytes.len() >= MAX_HEAD_BYTES {
        Line::Invalid
    } else {
        Line::Unfinished
    }
}

/// `chunk-size [ chunk-ext ]`: the size in hex (no sign, no `0x`, at most
/// what fits in 64 bits, leading zeros allowed), then nothing or valid
/// extensions, which are ignored.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || !is_chunk_ext(&line[digits..]) {
        return None;
    }
    let mut size = 0u64;
    for &b in &line[..digits] {
        let digit = (b as char).to_digit(16)?;
        size = size.checked_mul(16)?.checked_add(u64::from(digit))?;
    }
    Some(size)
}

/// Whether `ext` is `*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
/// chunk-ext-val ] )` (RFC 9112 7.1.1): names are tokens, values tokens or
/// quoted strings. Extensions are ignored, but one that does not parse
/// (`5;`, `5;=x`, `5;a b`, an unclosed quote) makes the body invalid: a
/// parser in front of this server may have read that line another way.
///
/// BWS comes before each element, never after the last one, so only the
/// start is trimmed: `5;a ` is invalid.
fn is_chunk_ext(mut ext: &[u8]) -> bool {
    while !ext.is_empty() {
        let Some(after_semicolon) = trim_ows_start(ext).strip_prefix(b";") else {
            return false;
        };
        let name = trim_ows_start(after_semicolon);
        let name_len = token_len(name);
        if name_len == 0 {
            return false;
        }
        ext = &name[name_len..];
        if let Some(after_equals) = trim_ows_start(ext).strip_prefix(b"=") {
            let value = trim_ows_start(after_equals);
            let value_len = match value.first() {
                Some(b'"') => quoted_string_len(value),
                _ => token_len(value),
            };
            if value_len == 0 {
                return false;
            }
            ext = &value[value_len..];
        }
    }
    true
}

/// The length of the `quoted-string` (RFC 9110 5.6.4) at the start of
/// `bytes`, quotes included; 0 if it is not closed. Control bytes were
/// refused by [`line`], so any other byte may be quoted or escaped.
fn quoted_string_len(bytes: &[u8]) -> usize {
    let mut at = 1;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'"' => return at + 1,
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    0
}

/// A trailer field line: a token name, a colon, a value of anything but
/// control bytes (already checked). Trailers are discarded, never merged
/// into the head (RFC 9110 6.5.1).
fn is_field_line(line: &[u8]) -> bool {
    split_field_name(line).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skips `input` as one piece.
    fn whole(input: &[u8]) -> Progress {
        Chunked::default().skip(input)
    }

    /// Skips `input` fed `step` bytes at a time, keeping what is left
    /// unconsumed as a connection does; the bytes used when the body ended.
    fn in_steps(input: &[u8], step: usize) -> Progress {
        let mut state = Chunked::default();
        let mut kept = Vec::new();
        let mut used = 0;
        for piece in input.chunks(step) {
            kept.extend_from_slice(piece);
            match state.skip(&kept) {
                Progress::Done(n) => return Progress::Done(used + n),
                Progress::More(n) => {
                    used += n;
                    kept.drain(..n);
                }
                other => return other,
            }
        }
        Progress::More(used)
    }

    /// `decode` hands over exactly the chunk data, in order, at any split.
    #[test]
    fn decode_hands_over_the_data() {
        let body = "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\n";
        for step in 1..=body.len() {
            let mut state = Chunked::default();
            let mut kept = Vec::new();
            let mut data = Vec::new();
            let mut done = false;
            for piece in body.as_bytes().chunks(step) {
                kept.extend_from_slice(piece);
                match state.decode(&kept, &mut |d| {
                    data.extend_from_slice(d);
                    true
                }) {
                    Progress::Done(n) => {
                        assert_eq!(n, kept.len());
                        done = true;
                    }
                    Progress::More(n) => {
                        kept.drain(..n);
                    }
                    other => panic!("{other:?} at step {step}"),
                }
            }
            assert!(done, "step {step}");
            assert_eq!(data, b"hello world", "step {step}");
        }
        // A caller that refuses the data stops the decoding.
        let progress = Chunked::default().decode(body.as_bytes(), &mut |_| false);
        assert_eq!(progress, Progress::Stopped);
    }

    const VALID: &[&str] = &[
        "0\r\n\r\n",
        "5\r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "A\r\n0123456789\r\n0\r\n\r\n",
        "a\r\n0123456789\r\n0000\r\n\r\n",
        "005\r\nhe\r\nl\r\n0\r\n\r\n",
        "5;name=value\r\nhello\r\n0;last\r\n\r\n",
        "5 ; name=\"a ; b\"\r\nhello\r\n0\t;x\r\n\r\n",
        "5;a;b=c ;\td = \"e\\\"f\\\\\" ;g=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n",
        "1;q=\"\"\r\nx\r\n0;last=\"\t;=\\\\\"\r\n\r\n",
        "0\r\nExpires: never\r\nX-Sum:  abc \r\n\r\n",
        "3\r\n\r\n\r\r\n0\r\n\r\n",
    ];

    #[test]
    fn valid_bodies_end_exactly_at_every_split() {
        for body in VALID {
            let bytes = body.as_bytes();
            assert_eq!(whole(bytes), Progress::Done(bytes.len()), "{body:?}");
            for step in 1..bytes.len() {
                assert_eq!(
                    in_steps(bytes, step),
                    Progress::Done(bytes.len()),
                    "{body:?} in steps of {step}"
                );
            }
            // What follows the body is not the decoder's: a next request.
            let next = [bytes, b"GET / HTTP/1.1\r\n"].concat();
            assert_eq!(whole(&next), Progress::Done(bytes.len()), "{body:?}");
        }
    }

    #[test]
    fn unfinished_bodies_ask_for_more() {
        for body in VALID {
            let bytes = body.as_bytes();
            for end in 0..bytes.len() {
                let progress = whole(&bytes[..end]);
                assert!(
                    matches!(progress, Progress::More(n) if n <= end),
                    "{:?}: {progress:?}",
                    &body[..end]
                );
            }
        }
    }

    #[test]
    fn invalid_bodies_are_refused() {
        for bad in [
            "\r\n",
            "x\r\n",
            "-5\r\n",
            "+5\r\n",
            "0x5\r\n",
            " 5\r\n",
            "5 \r\n",
            "5 x\r\n",
            "5\n",
            "5\rx",
            "5\r\nhelloX\r\n",
            "5\r\nhelloX",
            "5\r\nhello\rX",
            "5\r\nhello\n0\r\n\r\n",
            "5\r\nhello\r\r\n",
            "5\x00\r\n",
            "5;a\x01\r\n",
            "5;\r\n",
            "5;;a\r\n",
            "5;=x\r\n",
            "5;a b\r\n",
            "5;a \r\n",
            "5;a=\r\n",
            "5;a=b c\r\n",
            "5;a=b;\r\n",
            "5;a=\"x\r\n",
            "5;a=\"x\\\"\r\n",
            "5;a=\"x\"y\r\n",
            "5;a=b=c\r\n",
            "5;a@b\r\n",
            "5 ;\r\n",
            "10000000000000000\r\n",
            "fffffffffffffffff\r\n",
            "0\r\nno colon\r\n\r\n",
            "0\r\n: empty name\r\n\r\n",
            "0\r\n folded: line\r\n\r\n",
            "0\r\nbad name: x\r\n\r\n",
            "0\r\nX: a\x7f\r\n\r\n",
            "0\r\n\n",
        ] {
            assert_eq!(whole(bad.as_bytes()), Progress::Invalid, "{bad:?}");
            for step in 1..bad.len() {
                assert_eq!(
                    in_steps(bad.as_bytes(), step),
                    Progress::Invalid,
                    "{bad:?} in steps of {step}"
                );
            }
        }
    }

    #[test]
    fn the_largest_size_is_skipped_without_overflow() {
        let mut state = Chunked::default();
        assert_eq!(state.skip(b"ffffffffffffffff\r\nabc"), Progress::More(21));
        assert_eq!(state, Chunked::Data(u64::MAX - 3));
    }

    #[test]
    fn lines_are_bounded() {
        let long_ext = format!("5;{}", "x".repeat(MAX_HEAD_BYTES));
        assert_eq!(whole(long_ext.as_bytes()), Progress::Invalid);
        let under = format!("5;{}", "x".repeat(MAX_HEAD_BYTES - 3));
        assert_eq!(whole(under.as_bytes()), Progress::More(0));
        let long_trailer = format!("0\r\nX: {}", "y".repeat(MAX_HEAD_BYTES));
        assert_eq!(whole(long_trailer.as_bytes()), Progress::Invalid);
    }
}
