//! The `Date` header, rendered at most once a second per worker thread.
//!
//! Formatting an IMF-fixdate costs far more than the rest of a plaintext
//! response, so each worker keeps the rendered line and only re-renders it
//! when the wall-clock second changes. The clock is read once per batch of
//! pipelined requests (a vDSO call, no syscall), not once per request, and
//! never from a timer task: a worker that sleeps for a minute wakes up with a
//! date that is at most as old as the batch it is answering.

use rustix::time::{clock_gettime, ClockId};

/// `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n`
pub const DATE_LINE_LEN: usize = 37;

/// The clock the header shows: the real-time clock, read through rustix's
/// direct vDSO call and compared as whole seconds: cheaper than
/// `SystemTime::now()` against two `SystemTime` bounds, and it runs once per
/// batch, so once per `/json` request (docs/design.md, "`Date` once a
/// second"). Not the coarse
/// clock: it is the time of the last tick, up to 10 ms behind, so a request
/// just after a second boundary would carry the previous second.
const CLOCK: ClockId = ClockId::Realtime;

/// Seconds since the Unix epoch by [`CLOCK`] (negative before 1970).
fn wall_second() -> i64 {
    clock_gettime(CLOCK).tv_sec
}

/// A worker's cached `Date: ...\r\n` header line.
pub struct DateCache {
    /// The second the line shows.
    second: i64,
    line: [u8; DATE_LINE_LEN],
}

impl DateCache {
    pub fn new() -> DateCache {
        let mut cache = DateCache {
            // No clock reads this second, so the first refresh renders.
            second: i64::MIN,
            line: [0; DATE_LINE_LEN],
        };
        cache.refresh();
        cache
    }

    /// The header line for the current second, re-rendered if the second
    /// has changed since the last call (either way: a clock stepped back
    /// re-renders too).
    pub fn refresh(&mut self) -> &[u8; DATE_LINE_LEN] {
        let now = wall_second();
        if now != self.second {
            self.second = now;
            self.line = render(clamp_to_epoch(now));
        }
        &self.line
    }
}

/// A clock before 1970 shows the epoch.
fn clamp_to_epoch(second: i64) -> u64 {
    u64::try_from(second).unwrap_or(0)
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Renders `Date: <IMF-fixdate>\r\n` (RFC 9110, section 5.6.7) for a Unix time.
pub fn render(unix_seconds: u64) -> [u8; DATE_LINE_LEN] {
    let days = unix_seconds / 86_400;
    let secs_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[(days % 7) as usize];

    let mut line = *b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
    line[6..9].copy_from_slice(weekday);
    two_digits(&mut line[11..13], day);
    line[14..17].copy_from_slice(MONTHS[month as usize - 1]);
    let y = year % 10_000;
    two_digits(&mut line[18..20], y / 100);
    two_digits(&mut line[20..22], y % 100);
    two_digits(&mut line[23..25], secs_of_day / 3600);
    two_digits(&mut line[26..28], secs_of_day / 60 % 60);
    two_digits(&mut line[29..31], secs_of_day % 60);
    line
}

fn two_digits(dst: &mut [u8], value: u64) {
    dst[0] = b'0' + (value / 10 % 10) as u8;
    dst[1] = b'0' + (value % 10) as u8;
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), after Howard
/// Hinnant's `civil_from_days`, restricted to dates after the epoch.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(secs: u64) -> String {
        String::from_utf8(render(secs).to_vec()).unwrap()
    }

    #[test]
    fn renders_known_dates() {
        assert_eq!(text(0), "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
        // RFC 9110's example.
        assert_eq!(text(784_111_777), "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
        // Leap day and end of a leap year.
        assert_eq!(text(951_782_400), "Date: Tue, 29 Feb 2000 00:00:00 GMT\r\n");
        assert_eq!(
            text(1_735_689_599),
            "Date: Tue, 31 Dec 2024 23:59:59 GMT\r\n"
        );
        assert_eq!(
            text(1_795_392_000),
            "Date: Mon, 23 Nov 2026 00:00:00 GMT\r\n"
        );
    }

    #[test]
    fn every_day_for_a_century_round_trips() {
        // Walk day by day and check the calendar advances by exactly one day.
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..36_525u64 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                28 + u64::from(leap),
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[m as usize - 1] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn cache_matches_the_clock() {
        let mut cache = DateCache::new();
        let before = wall_second();
        let line = *cache.refresh();
        let after = wall_second();
        assert!(line == render(before as u64) || line == render(after as u64));
    }

    #[test]
    fn wall_second_is_the_system_clock() {
        use std::time::{SystemTime, UNIX_EPOCH};
        let system = |at: SystemTime| at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let before = system(SystemTime::now());
        let ours = wall_second();
        let after = system(SystemTime::now());
        assert!(
            (before..=after).contains(&ours),
            "rustix {ours}, system {before}..={after}"
        );
    }
}
