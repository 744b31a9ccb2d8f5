//! Signal names and numbers as GNU timeout reads and writes them (gnulib's `str2sig` and `sig2str`):
//! the classic names with or without `SIG`, in any case; numbers, also as a shell's 128+N or 256+N;
//! and the real-time signals as `RTMIN`, `RTMIN+N`, `RTMAX-N`. The numbers glibc keeps for itself
//! (32 and 33, below SIGRTMIN) have no name and are refused, as GNU refuses them.

/// The names, in the order gnulib looks a number up: the first name of a number is the one printed
/// (6 is ABRT, not IOT; 29 is POLL, not IO). `EXIT` is the null signal's name.
const NAMES: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("FPE", libc::SIGFPE),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("SEGV", libc::SIGSEGV),
    ("TERM", libc::SIGTERM),
    ("HUP", libc::SIGHUP),
    ("QUIT", libc::SIGQUIT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("CHLD", libc::SIGCHLD),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("CONT", libc::SIGCONT),
    ("BUS", libc::SIGBUS),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("SYS", libc::SIGSYS),
    ("TRAP", libc::SIGTRAP),
    ("URG", libc::SIGURG),
    ("VTALRM", libc::SIGVTALRM),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("IOT", libc::SIGIOT),
    ("CLD", libc::SIGCHLD),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("PWR", libc::SIGPWR),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("STKFLT", libc::SIGSTKFLT),
    ("IO", libc::SIGIO),
    ("WINCH", libc::SIGWINCH),
    #[cfg(any(
        target_os = "freebsd",
        target_os = "macos",
        target_os = "netbsd",
        target_os = "openbsd"
    ))]
    ("INFO", libc::SIGINFO),
    ("EXIT", 0),
];

/// The largest signal number accepted.
const MAX_SIGNAL: i32 = 64;

/// The real-time range, `(SIGRTMIN, SIGRTMAX)` as the C library reserves it, where there is one.
pub fn realtime_range() -> Option<(i32, i32)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        Some((libc::SIGRTMIN(), libc::SIGRTMAX()))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}

/// `strtol` on a whole string: leading white space, an optional sign, at least one digit, nothing
/// after.
fn strtol(text: &str) -> Option<i64> {
    let text = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.bytes().try_fold(0i64, |n, d| {
        n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A name without `SIG`, upper case: a classic one or a real-time one.
fn number_of_name(name: &str) -> Option<i32> {
    if let Some((_, number)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Some(*number);
    }
    let (min, max) = realtime_range()?;
    if let Some(offset) = name.strip_prefix("RTMIN") {
        let n = if offset.is_empty() {
            0
        } else {
            strtol(offset)?
        };
        return (0..=i64::from(max - min))
            .contains(&n)
            .then(|| min + n as i32);
    }
    if let Some(offset) = name.strip_prefix("RTMAX") {
        let n = if offset.is_empty() {
            0
        } else {
            strtol(offset)?
        };
        return (i64::from(min - max)..=0)
            .contains(&n)
            .then(|| max + n as i32);
    }
    None
}

/// Whether `number` is a signal with a name (0 included): 32 and 33 on glibc are not.
fn is_named(number: i32) -> bool {
    NAMES.iter().any(|(_, n)| *n == number)
        || realtime_range().is_some_and(|(min, max)| (min..=max).contains(&number))
}

/// Parses a signal as GNU timeout's `-s` does: a name (`TERM`, `SIGTERM`, `term`, `RTMIN+1`,
/// `SIGRTMAX-2`) or a number (`15`, or a shell's exit status for it, `143`). `0` (or `EXIT`) is the
/// null signal, which delivers nothing, so only the SIGKILL that follows stops the command. The error
/// is GNU's message.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let invalid = || format!("'{text}': invalid signal");
    let number = if text.starts_with(|c: char| c.is_ascii_digit()) {
        let n = strtol(text).and_then(|n| i32::try_from(n).ok());
        // As a shell reports it: 128+N and 256+N are signal N.
        n.map(|n| match n {
            256.. => n - 256,
            128.. => n - 128,
            _ => n,
        })
    } else {
        let upper = text.to_ascii_uppercase();
        number_of_name(&upper).or_else(|| number_of_name(upper.strip_prefix("SIG")?))
    };
    match number {
        Some(n) if (0..=MAX_SIGNAL).contains(&n) && is_named(n) => Ok(n),
        _ => Err(invalid()),
    }
}

/// The name of a signal number as GNU timeout prints it (`TERM` for 15, `RTMIN+1` for 35,
/// `RTMAX-2` for 62), or the number itself when it has none.
pub fn signal_name(number: i32) -> String {
    if let Some((name, _)) = NAMES.iter().find(|(_, n)| *n == number) {
        return (*name).to_string();
    }
    match realtime_range() {
        Some((min, max)) if (min..=max).contains(&number) => {
            let (base, name) = if number <= min + (max - min) / 2 {
                (min, "RTMIN")
            } else {
                (max, "RTMAX")
            };
            match number - base {
                0 => name.to_string(),
                offset => format!("{name}{offset:+}"),
            }
        }
        _ => number.to_string(),
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
        assert_eq!(parse_signal("0"), Ok(0));
        assert_eq!(parse_signal("EXIT"), Ok(0));
        assert_eq!(parse_signal("CLD"), Ok(17));
        assert_eq!(parse_signal("IOT"), Ok(6));
        assert_eq!(signal_name(9), "KILL");
        assert_eq!(signal_name(6), "ABRT");
        assert_eq!(signal_name(17), "CHLD");
        assert_eq!(signal_name(29), "POLL");
        for bad in ["NOPE", "-1", "65", "+9", "9x", " 9", "1e1", "", "SIG"] {
            assert_eq!(
                parse_signal(bad),
                Err(format!("'{bad}': invalid signal")),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_shells_exit_status_names_its_signal() {
        assert_eq!(parse_signal("137"), Ok(9));
        assert_eq!(parse_signal("143"), Ok(15));
        assert_eq!(parse_signal("265"), Ok(9));
        assert_eq!(parse_signal("128"), Ok(0));
        assert_eq!(parse_signal("256"), Ok(0));
        assert!(parse_signal("384").is_err());
        assert_eq!(signal_name(0), "EXIT");
        assert!(parse_signal("127").is_err());
        assert!(parse_signal("96").is_err());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn real_time_signals_as_gnu_names_them() {
        let (min, max) = realtime_range().unwrap();
        assert_eq!((min, max), (34, 64), "glibc's range");
        for (name, number) in [
            ("RTMIN", 34),
            ("rtmin", 34),
            ("SIGRTMIN", 34),
            ("RTMIN+1", 35),
            ("RTMIN1", 35),
            ("RTMIN+00", 34),
            ("RTMIN+30", 64),
            ("RTMAX", 64),
            ("SIGRTMAX", 64),
            ("RTMAX-2", 62),
            ("rtmax-01", 63),
            ("RTMAX+0", 64),
            ("34", 34),
            ("00034", 34),
            ("64", 64),
            ("162", 34),
        ] {
            assert_eq!(parse_signal(name), Ok(number), "{name}");
        }
        for bad in [
            "32", "33", "160", "RTMIN+31", "RTMIN-1", "RTMIN+-0", "RTMIN+ 1", "RTMAX1", "RTMAX-31",
            " RTMIN",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
        for (number, name) in [
            (34, "RTMIN"),
            (35, "RTMIN+1"),
            (49, "RTMIN+15"),
            (50, "RTMAX-14"),
            (62, "RTMAX-2"),
            (64, "RTMAX"),
            (32, "32"),
        ] {
            assert_eq!(signal_name(number), name);
        }
    }
}
