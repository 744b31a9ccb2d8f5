//! The time a report line was written: UTC, RFC 3339 with milliseconds (`2026-12-02T02:33:12.123Z`).
//!
//! A report line carries the moment its item finished, so that `watchdog report` can order the
//! outcomes of reruns and shards by time instead of by the order of files. One fixed form is written
//! and read: a calendar date from days since the epoch is a few lines (Howard Hinnant's
//! `civil_from_days`), not worth a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ`; a time before 1970 is written as the epoch.
pub fn format_utc_millis(time: SystemTime) -> String {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let secs = millis / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        millis % 1000
    )
}

/// Milliseconds since the epoch of a time written by [`format_utc_millis`]; `None` for any other
/// text (such a line is ordered as one without a time).
pub fn parse_utc_millis(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 24 || [4, 7, 10, 13, 16, 19, 23].map(|i| b[i]) != *b"--T::.Z" {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u64> {
        let digits = text.get(from..to)?;
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())
            .flatten()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(secs * 1000 + milli)
}

/// The (year, month, day) of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day counted from 1970-01-01 of a (year, month, day).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_written_as_rfc3339_utc_with_milliseconds_and_read_back() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(format_utc_millis(at(0)), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1764642792 +%FT%T` gives 2025-12-02T02:33:12.
        assert_eq!(
            format_utc_millis(at(1_764_642_792_123)),
            "2025-12-02T02:33:12.123Z"
        );
        assert_eq!(
            format_utc_millis(at(951_782_400_000)),
            "2000-02-29T00:00:00.000Z"
        );
        // Every day of 400 years (one leap-year cycle and then some), both ways.
        for day in (0..146_097 + 800).step_by(7) {
            let ms = day * 86_400_000 + 45_296_789;
            let text = format_utc_millis(at(ms));
            assert_eq!(parse_utc_millis(&text), Some(ms), "{text}");
        }
        for bad in [
            "",
            "2025-12-02 02:33:12.123Z",
            "2025-12-02T02:33:12Z",
            "2025-13-02T02:33:12.123Z",
            "2025-12-02T02:33:12.12xZ",
            "+025-12-02T02:33:12.123Z",
        ] {
            assert_eq!(parse_utc_millis(bad), None, "{bad}");
        }
    }
}
