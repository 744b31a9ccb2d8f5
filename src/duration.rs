//! DURATION and SIZE values as people type them on the command line.
//!
//! Durations follow GNU `timeout(1)`: a non-negative decimal number with an optional unit (`ms`, `s`, `m`,
//! `h`, `d`; seconds when absent). `0` means "no limit", which callers express as `None`.

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
    "a non-negative number with optional unit ms, s, m, h or d (e.g. 5, 0.5, 300ms, 1.5m)";
const SIZE_EXPECTED: &str =
    "a non-negative whole number of bytes with optional suffix K, M or G (e.g. 500K, 20M)";

/// The longest duration accepted: about 31 years, far past any real deadline, and small enough that adding
/// it to `Instant::now()` can never overflow.
const MAX_SECONDS: f64 = 1e9;

/// Parses a DURATION. Returns `Duration::ZERO` for `0` (callers treat zero as "disabled").
pub fn parse_duration(text: &str) -> Result<Duration, InvalidValue> {
    let invalid = || InvalidValue {
        value: text.to_string(),
        expected: DURATION_EXPECTED,
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    // Reject what f64::from_str would take but a person did not mean: "inf", "nan", "1e3", "+5", "".
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(invalid()),
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds > MAX_SECONDS {
        return Err(InvalidValue {
            value: text.to_string(),
            expected: "a duration of at most 1000000000 seconds",
        });
    }
    Ok(Duration::from_secs_f64(seconds))
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
        assert_eq!(parse_optional_duration("0").unwrap(), None);
        assert_eq!(parse_optional_duration("0s").unwrap(), None);
    }

    #[test]
    fn rejects_what_a_person_did_not_mean() {
        for bad in [
            "",
            "-1",
            "5x",
            "abc",
            "inf",
            "nan",
            "1e3",
            "+5",
            "1..2",
            ".",
            "5 s s",
            "1e999",
            "9999999999999",
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
