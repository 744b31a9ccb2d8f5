//! DURATION and SIZE values as people type them on the command line.
//!
//! Durations follow GNU `timeout(1)`: a non-negative floating-point number as `strtod` reads it
//! (`5`, `0.5`, `.25`, `1e3`, `0x1p-3`, `inf`) with an optional unit (`s`, `m`, `h`, `d`, and `ms`;
//! seconds when absent). `0` means "no limit", which callers express as `None`. A value too large for
//! a timer means "effectively forever" (it is clamped, as GNU does); a positive value too small to
//! represent rounds up to the smallest step, one nanosecond, so that only zero ever disables a timer.

use std::fmt;
use std::time::Duration;

/// A value on the command line that is not a valid duration or size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid value '{}': expected {}",
            self.value, self.expected
        )
    }
}

impl std::error::Error for InvalidValue {}

const DURATION_EXPECTED: &str =
    "a non-negative number with optional unit s, m, h, d or ms (e.g. 5, 0.5, 1e-3, 300ms, 1.5m)";
const SIZE_EXPECTED: &str =
    "a non-negative whole number of bytes with optional suffix K, M or G (e.g. 500K, 20M)";

/// The longest duration a timer is given: about 31 years, far past any real deadline, and small enough
/// that adding it to `Instant::now()` can never overflow. Anything longer is clamped to it.
const MAX_SECONDS: f64 = 1e9;

/// A number as C's `strtod` reads it, without the sign: decimal with an optional exponent, hex with an
/// optional binary exponent, `inf`/`infinity`. Returns the value and whether any digit of it was
/// non-zero (so that `1e-10000`, which underflows to 0, is still known to be positive), and the rest.
fn parse_number(text: &str) -> Option<(f64, bool, &str)> {
    let lower = text.to_ascii_lowercase();
    for word in ["infinity", "inf"] {
        if lower.starts_with(word) {
            return Some((f64::INFINITY, true, &text[word.len()..]));
        }
    }
    let bytes = text.as_bytes();
    if lower.starts_with("0x") {
        if let Some(parsed) = parse_hex(&text[2..]) {
            return Some(parsed);
        }
        // "0x" with no hex digit after it: strtod reads the "0" alone.
    }
    let mut end = 0;
    let mut digits = 0;
    let mut nonzero = false;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        nonzero |= bytes[end] != b'0';
        digits += 1;
        end += 1;
    }
    if end < bytes.len() && bytes[end] == b'.' {
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            nonzero |= bytes[end] != b'0';
            digits += 1;
            end += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if let Some((_, exp_end)) = exponent(bytes, end, b'e') {
        end = exp_end;
    }
    let value: f64 = text[..end].parse().ok()?;
    Some((value, nonzero, &text[end..]))
}

/// An exponent at `at`: `marker` (either case), an optional sign and at least one digit, as strtod
/// reads one. Returns where its signed number starts and where it ends; `None` when there is none (a
/// lone `e` is not part of the number).
fn exponent(bytes: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
    if bytes.get(at).map(u8::to_ascii_lowercase) != Some(marker) {
        return None;
    }
    let sign_at = at + 1;
    let digits_at = sign_at + usize::from(matches!(bytes.get(sign_at), Some(b'+' | b'-')));
    let digits = bytes[digits_at.min(bytes.len())..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    (digits > 0).then_some((sign_at, digits_at + digits))
}

/// The part of a hex float after `0x`: hex digits with an optional point, then an optional `p` and a
/// decimal power of two.
fn parse_hex(text: &str) -> Option<(f64, bool, &str)> {
    let bytes = text.as_bytes();
    let mut end = 0;
    let mut mantissa = 0f64;
    let mut scale = 0i64;
    let mut digits = 0;
    let mut point = false;
    while end < bytes.len() {
        let b = bytes[end];
        if b == b'.' && !point {
            point = true;
        } else if let Some(d) = (b as char).to_digit(16) {
            mantissa = mantissa * 16.0 + f64::from(d);
            digits += 1;
            if point {
                scale -= 4;
            }
        } else {
            break;
        }
        end += 1;
    }
    if digits == 0 {
        return None;
    }
    if let Some((sign_at, exp_end)) = exponent(bytes, end, b'p') {
        // A power of two too large for i64 is as good as infinite: the clamp below decides.
        let exp: i64 = text[sign_at..exp_end].parse().unwrap_or_else(|_| {
            if bytes[sign_at] == b'-' {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            }
        });
        scale = scale.saturating_add(exp);
        end = exp_end;
    }
    let nonzero = mantissa != 0.0;
    let value = mantissa * 2f64.powi(scale.clamp(-2000, 2000) as i32);
    Some((value, nonzero, &text[end..]))
}

/// A duration for a person, as messages show them: `3 s`, `1.5 s`, `250 ms`.
pub fn for_people(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Parses a DURATION. Returns `Duration::ZERO` for zero (callers treat zero as "disabled").
pub fn parse_duration(text: &str) -> Result<Duration, InvalidValue> {
    let invalid = || InvalidValue {
        value: text.to_string(),
        expected: DURATION_EXPECTED,
    };
    // strtod skips leading white space and takes a `+`; a `-` is a negative duration, refused.
    let trimmed = text.trim_start();
    let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let (value, nonzero, unit) = parse_number(unsigned).ok_or_else(invalid)?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(invalid()),
    };
    let seconds = value * scale;
    if seconds.is_nan() {
        return Err(invalid());
    }
    if seconds >= MAX_SECONDS {
        return Ok(Duration::from_secs_f64(MAX_SECONDS));
    }
    let duration = Duration::from_secs_f64(seconds);
    if duration.is_zero() && nonzero {
        // Positive but below a nanosecond (or underflowed): the smallest step, not "no limit".
        return Ok(Duration::from_nanos(1));
    }
    Ok(duration)
}

/// Parses a DURATION where zero means "no limit".
pub fn parse_optional_duration(text: &str) -> Result<Option<Duration>, InvalidValue> {
    parse_duration(text).map(|d| if d.is_zero() { None } else { Some(d) })
}

/// Parses a SIZE in bytes: a whole number with an optional binary suffix `K`, `M`, `G` (also `KB`, `KiB`).
pub fn parse_size(text: &str) -> Result<u64, InvalidValue> {
    let invalid = || InvalidValue {
        value: text.to_string(),
        expected: SIZE_EXPECTED,
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if number.is_empty() {
        return Err(invalid());
    }
    let value: u64 = number.parse().map_err(|_| invalid())?;
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(invalid()),
    };
    value.checked_mul(scale).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_gnu_forms() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration(".25s").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1e3").unwrap(), Duration::from_secs(1000));
        assert_eq!(
            parse_duration("2.5E-1").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("0x1p-3").unwrap(),
            Duration::from_millis(125)
        );
        assert_eq!(parse_duration("0x10").unwrap(), Duration::from_secs(16));
        assert_eq!(parse_duration("0x.8s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("+5").unwrap(), Duration::from_secs(5));
        assert_eq!(
            parse_duration(" 10.34").unwrap(),
            Duration::from_millis(10340)
        );
        assert_eq!(parse_optional_duration("0").unwrap(), None);
        assert_eq!(parse_optional_duration("0s").unwrap(), None);
        assert_eq!(parse_optional_duration("0x0").unwrap(), None);
        assert_eq!(parse_optional_duration("0e5").unwrap(), None);
    }

    #[test]
    fn huge_is_forever_and_tiny_is_the_smallest_step() {
        let forever = Duration::from_secs_f64(MAX_SECONDS);
        for huge in [
            "inf",
            "infinity",
            "1e999",
            "9223372036854775808",
            "9223372036854775808d",
            "2.34e+5d",
            "1.18973149535723176502e+4932",
        ] {
            assert_eq!(parse_duration(huge).unwrap(), forever, "{huge}");
        }
        for tiny in ["1e-10000", "0.0000000001", "1e-10ms", "0x1p-100"] {
            assert_eq!(
                parse_optional_duration(tiny).unwrap(),
                Some(Duration::from_nanos(1)),
                "{tiny}"
            );
        }
    }

    #[test]
    fn rejects_what_a_person_did_not_mean() {
        for bad in [
            "",
            "-1",
            " -0.1",
            " -1e-10000",
            "-1.18973149535723176502e+4932",
            "5x",
            "42D",
            "abc",
            "invalid",
            "nan",
            "1..2",
            ".",
            "5 s s",
            "1e",
            "0x",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err.value, bad, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("1K").unwrap(), 1024);
        assert_eq!(parse_size("20M").unwrap(), 20 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert!(parse_size("1T").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
