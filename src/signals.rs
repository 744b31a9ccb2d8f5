//! Signal names and numbers as `kill -l` spells them.

use nix::sys::signal::Signal;
use std::str::FromStr;

/// Parses a signal given as a name (`TERM`, `SIGTERM`, `term`) or a number (`15`). As in GNU
/// `timeout`, `0` is accepted: the null signal, which delivers nothing, so only the SIGKILL that
/// follows stops the command.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let invalid = || "expected a name such as TERM, INT, KILL or a number from 0 to 64".to_string();
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        // Real-time signals have no Signal variant, so check the range rather than the enum.
        return if (0..=64).contains(&number) {
            Ok(number)
        } else {
            Err(invalid())
        };
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name)
        .map(|s| s as i32)
        .map_err(|_| invalid())
}

/// The short name of a signal number (`TERM` for 15), or the number itself when it has no name.
pub fn signal_name(number: i32) -> String {
    match Signal::try_from(number) {
        Ok(signal) => signal.as_str().trim_start_matches("SIG").to_string(),
        Err(_) => number.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("sigint"), Ok(2));
        assert_eq!(parse_signal("9"), Ok(9));
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_signal("0"), Ok(0));
        assert!(parse_signal("-1").is_err());
        assert!(parse_signal("65").is_err());
        assert_eq!(signal_name(9), "KILL");
    }
}
