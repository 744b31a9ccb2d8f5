//! The status pipe from the init to watchdog: the one definition of its lines, both the init's
//! encoder (no allocation, so the init may use it) and watchdog's decoder.
//!
//! One line each: `started` (the command runs), `error ERRNO` (it could not be run),
//! `unavailable STEP ERRNO` (the namespace could not be set up; nothing ran), then `exit CODE`,
//! `signal N` or `core N` when the command ended, and `remaining` when other processes outlived it.
// The init (the encoder's only user) runs on Linux only.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

/// A step of setting up a user namespace that can fail where user namespaces are restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Writing `deny` to /proc/self/setgroups.
    SetGroups,
    /// Writing the uid map.
    UidMap,
    /// Writing the gid map.
    GidMap,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::SetGroups => "setgroups",
            Step::UidMap => "uid_map",
            Step::GidMap => "gid_map",
        }
    }

    fn parse(word: &str) -> Option<Step> {
        [Step::SetGroups, Step::UidMap, Step::GidMap]
            .into_iter()
            .find(|s| s.as_str() == word)
    }
}

/// One line of the status pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Started,
    Error(i32),
    Unavailable(Step, i32),
    Exit(i32),
    Signal(i32),
    /// Killed by this signal, with a core dump.
    Core(i32),
    Remaining,
}

/// Room for the longest line.
pub const MAX_LINE: usize = 40;

impl Line {
    /// Writes the line, newline included, into `buf`; returns its length. Async-signal-safe: stores
    /// into `buf` only.
    pub fn encode(self, buf: &mut [u8; MAX_LINE]) -> usize {
        let mut out = Out { buf, len: 0 };
        match self {
            Line::Started => out.text("started"),
            Line::Error(errno) => {
                out.text("error ");
                out.number(errno);
            }
            Line::Unavailable(step, errno) => {
                out.text("unavailable ");
                out.text(step.as_str());
                out.text(" ");
                out.number(errno);
            }
            Line::Exit(code) => {
                out.text("exit ");
                out.number(code);
            }
            Line::Signal(signal) => {
                out.text("signal ");
                out.number(signal);
            }
            Line::Core(signal) => {
                out.text("core ");
                out.number(signal);
            }
            Line::Remaining => out.text("remaining"),
        }
        out.text("\n");
        out.len
    }

    /// Reads one line (with or without its newline).
    pub fn decode(line: &[u8]) -> Option<Line> {
        let text = std::str::from_utf8(line).ok()?.trim_end();
        let mut words = text.split(' ');
        let word = words.next()?;
        let mut number = || words.next()?.parse::<i32>().ok();
        let line = match word {
            "started" => Line::Started,
            "remaining" => Line::Remaining,
            "error" => Line::Error(number()?),
            "exit" => Line::Exit(number()?),
            "signal" => Line::Signal(number()?),
            "core" => Line::Core(number()?),
            "unavailable" => {
                let step = Step::parse(words.next()?)?;
                Line::Unavailable(step, words.next()?.parse().ok()?)
            }
            _ => return None,
        };
        words.next().is_none().then_some(line)
    }
}

struct Out<'a> {
    buf: &'a mut [u8; MAX_LINE],
    len: usize,
}

impl Out<'_> {
    fn text(&mut self, text: &str) {
        for &b in text.as_bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn number(&mut self, n: i32) {
        let mut digits = [0u8; 12];
        let mut at = digits.len();
        let mut rest = i64::from(n).unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 || at == 1 {
                break;
            }
        }
        if n < 0 {
            at -= 1;
            digits[at] = b'-';
        }
        for &b in &digits[at..] {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(line: Line) -> (String, Option<Line>) {
        let mut buf = [0u8; MAX_LINE];
        let len = line.encode(&mut buf);
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        (text, Line::decode(&buf[..len]))
    }

    #[test]
    fn every_line_reads_back_as_written() {
        for (line, text) in [
            (Line::Started, "started\n"),
            (Line::Error(2), "error 2\n"),
            (
                Line::Unavailable(Step::UidMap, 1),
                "unavailable uid_map 1\n",
            ),
            (Line::Exit(0), "exit 0\n"),
            (Line::Exit(255), "exit 255\n"),
            (Line::Exit(-1), "exit -1\n"),
            (Line::Signal(40), "signal 40\n"),
            (Line::Core(11), "core 11\n"),
            (Line::Remaining, "remaining\n"),
            (Line::Exit(i32::MIN), "exit -2147483648\n"),
        ] {
            assert_eq!(round_trip(line), (text.to_string(), Some(line)));
        }
    }

    #[test]
    fn anything_else_is_not_a_line() {
        for bad in [
            &b"exit x\n"[..],
            b"exit\n",
            b"exit 1 2\n",
            b"unavailable mount 1\n",
            b"started now\n",
            b"\xff\n",
            b"",
        ] {
            assert_eq!(
                Line::decode(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
