//! RFC 9110's field syntax, as both parsers and the chunked decoder
//! ([`crate::chunked`]) read it: tokens, field names, optional whitespace.

/// A field line's name (a non-empty token) and what follows its colon;
/// `None` when the line does not start `token:`.
#[inline]
pub(crate) fn split_field_name(line: &[u8]) -> Option<(&[u8], &[u8])> {
    match line.split_at(token_len(line)) {
        (name, [b':', value @ ..]) if !name.is_empty() => Some((name, value)),
        _ => None,
    }
}

/// How many bytes at the start of `bytes` are `tchar`s (RFC 9110 5.6.2).
#[inline]
pub(crate) fn token_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|&&b| TOKEN_BYTES[usize::from(b)])
        .count()
}

/// Whether the field `name` is `lower` (lowercase letters and `-`) in any
/// case; both parsers' name checks. Setting bit 5 lowercases a letter and
/// leaves `-` alone; the only other bytes it maps onto `lower`'s are the
/// other case of each letter and CR onto `-`, and names never hold a CR
/// (the fast path's lines have none, httparse's names are tchar), so the
/// comparison is exact. Names of 4 to 16 bytes are compared as two
/// overlapping words (first and last 4 or 8 bytes).
#[inline]
pub(super) fn name_is(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let n = name.len();
    let word4 = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("four bytes"));
    let word8 = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("eight bytes"));
    match n {
        4..=7 => {
            const CASE: u32 = u32::from_ne_bytes([0x20; 4]);
            word4(&name[..4]) | CASE == word4(&lower[..4])
                && word4(&name[n - 4..]) | CASE == word4(&lower[n - 4..])
        }
        8..=16 => {
            const CASE: u64 = u64::from_ne_bytes([0x20; 8]);
            word8(&name[..8]) | CASE == word8(&lower[..8])
                && word8(&name[n - 8..]) | CASE == word8(&lower[n - 8..])
        }
        _ => name.iter().zip(lower).all(|(&n, &l)| n | 0x20 == l),
    }
}

/// RFC 9110 5.6.2 `tchar`: the bytes of a field name (httparse's set).
static TOKEN_BYTES: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// A byte table: ASCII letters and digits, and `extra`.
pub(super) const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// Strips optional whitespace (`OWS`, RFC 9110 5.6.3: SP and HTAB) from
/// both ends: around a field value, and around each element of a list.
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let mut bytes = trim_ows_start(bytes);
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Strips optional whitespace (SP and HTAB) from the start only: for
/// grammars such as chunk extensions' `BWS ";" BWS name`, where whitespace
/// may come before an element but not after the last one.
#[inline]
pub(crate) fn trim_ows_start(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::super::uri::REG_NAME_BYTES;
    use super::*;

    #[test]
    fn byte_tables() {
        let set = |table: &[bool; 256]| -> Vec<u8> {
            (0..=255u8).filter(|&b| table[usize::from(b)]).collect()
        };
        let mut tchar: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        let mut host = tchar.clone();
        tchar.extend_from_slice(b"!#$%&'*+-.^_`|~");
        host.extend_from_slice(b"-._~!$&'()*+,;=");
        tchar.sort_unstable();
        host.sort_unstable();
        assert_eq!(set(&TOKEN_BYTES), tchar);
        assert_eq!(set(&REG_NAME_BYTES), host);
    }

    #[test]
    fn name_is_compares_any_case_exactly() {
        for lower in [
            "host",
            "expect",
            "connection",
            "content-length",
            "transfer-encoding",
        ] {
            let upper = lower.to_ascii_uppercase();
            assert!(name_is(lower.as_bytes(), lower.as_bytes()));
            assert!(name_is(upper.as_bytes(), lower.as_bytes()));
            for at in 0..lower.len() {
                // Any other token byte at any position is another name.
                for b in (0..=255u8).filter(|b| TOKEN_BYTES[usize::from(*b)]) {
                    let mut name = lower.as_bytes().to_vec();
                    if b.to_ascii_lowercase() == name[at] {
                        continue;
                    }
                    name[at] = b;
                    assert!(!name_is(&name, lower.as_bytes()), "{name:?} is not {lower}");
                }
            }
            assert!(!name_is(&lower.as_bytes()[1..], lower.as_bytes()));
        }
    }

    #[test]
    fn trim_ows_strips_spaces_and_tabs_at_both_ends() {
        for (raw, trimmed) in [
            ("", ""),
            (" ", ""),
            ("\t \t", ""),
            ("a", "a"),
            (" a", "a"),
            ("a ", "a"),
            ("  a b\t", "a b"),
            ("\ta\t", "a"),
            (" \t a \t ", "a"),
        ] {
            assert_eq!(trim_ows(raw.as_bytes()), trimmed.as_bytes(), "{raw:?}");
        }
        assert_eq!(trim_ows_start(b" \t a \t"), b"a \t");
    }
}
