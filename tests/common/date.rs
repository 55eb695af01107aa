//! The `Date` field as the tests check it: an IMF-fixdate (RFC 9110 5.6.7)
//! parsed independently of the server's encoder, compared with the clock,
//! and masked so answers compare byte for byte across seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Replaces the value of every `Date:` field in `raw` with `<date>` after
/// checking it has the IMF-fixdate length, so responses can be compared byte
/// for byte across seconds.
pub fn mask_dates(raw: &[u8]) -> Vec<u8> {
    const FIELD: &[u8] = b"\r\nDate: ";
    const LEN: usize = "Sun, 06 Nov 1994 08:49:37 GMT".len();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(FIELD) {
            let value = &raw[i + FIELD.len()..];
            assert!(
                value.len() >= LEN + 2 && value[LEN..].starts_with(b"\r\n"),
                "Date value of the wrong length in {:?}",
                String::from_utf8_lossy(raw)
            );
            out.extend_from_slice(FIELD);
            out.extend_from_slice(b"<date>");
            i += FIELD.len() + LEN;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

/// Seconds since the Unix epoch for an IMF-fixdate such as
/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 5.6.7); `None` if `s` is not one,
/// including a weekday that does not match the date.
pub fn parse_imf_fixdate(s: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = &s[range];
        if digits.bytes().all(|c| c.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    let weekday = DAYS.iter().position(|d| *d == &s[0..3])? as u64;
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| *m == &s[8..11])? as u64 + 1;
    let year = num(12..16)?;
    let (hour, minute, second) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    if days % 7 != weekday {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Asserts `value` is an IMF-fixdate within 2 s of the system clock.
pub fn assert_date_is_now(value: &str) {
    let secs =
        parse_imf_fixdate(value).unwrap_or_else(|| panic!("Date {value:?} is not an IMF-fixdate"));
    let now = unix_now();
    assert!(
        (secs as f64 - now).abs() <= 2.0,
        "Date {value:?} is {} s away from the clock",
        secs as f64 - now
    );
}

/// Self-check of [`parse_imf_fixdate`] and [`mask_dates`]; called from one
/// test file only.
pub fn check_imf_fixdate_parser() {
    assert_eq!(
        parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_imf_fixdate("Tue, 29 Feb 2000 00:00:00 GMT"),
        Some(951_782_400)
    );
    // Wrong weekday, RFC 850 and asctime forms, a missing zero.
    assert_eq!(parse_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT"), None);
    assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    assert_eq!(parse_imf_fixdate("Sun Nov  6 08:49:37 1994"), None);
    assert_eq!(parse_imf_fixdate("Sun, 6 Nov 1994 08:49:37 GMT "), None);
    assert_eq!(
        mask_dates(b"X\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"),
        b"X\r\nDate: <date>\r\n\r\n".to_vec()
    );
}
