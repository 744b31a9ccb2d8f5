//! The `--events FILE` writer: watchdog's own events as JSON Lines, flushed line by line so that a reader
//! (or a post-mortem after SIGKILL) sees everything up to the last event.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::value::RawValue;

/// One line of the events file. Every line also carries `time_ms`, milliseconds since watchdog started.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event<'a> {
    /// The command started (under `pidns`, `userns` and `sentinel`, `pid` is its init, which passes
    /// signals on).
    Start {
        pid: i32,
        argv: &'a [String],
        /// How its tree is contained: `pidns`, `userns`, `sentinel` or `group`.
        contain: &'a str,
    },
    /// A line the command wrote on the progress channel, as it wrote it.
    Progress { data: &'a RawValue },
    /// watchdog sent a signal to the command's tree.
    Signal {
        signal: &'a str,
        /// `deadline`, `stall`, `forwarded`, or `cleanup` (processes left behind after the command exited).
        reason: &'a str,
        /// How many processes it reached.
        pids: usize,
    },
    /// The command's tree is gone and watchdog exits.
    Exit {
        /// `exited`, `deadline`, `stall` or `forwarded`.
        reason: &'a str,
        exit_code: u8,
        status: EndedAs,
        elapsed_ms: u64,
    },
}

/// How the command ended, as `{"code": N}` or `{"signal": N}`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndedAs {
    Code(i32),
    Signal(i32),
}

#[derive(Serialize)]
struct Stamped<'a> {
    time_ms: u64,
    #[serde(flatten)]
    event: &'a Event<'a>,
}

/// Appends events to a file; a disabled log costs nothing.
pub struct EventLog {
    out: Option<BufWriter<File>>,
    started: Instant,
}

impl EventLog {
    /// Opens (creates or truncates) `path`, or returns a disabled log when `path` is `None`.
    pub fn open(path: Option<&Path>, started: Instant) -> io::Result<EventLog> {
        let out = match path {
            Some(path) => Some(BufWriter::new(File::create(path)?)),
            None => None,
        };
        Ok(EventLog { out, started })
    }

    pub fn is_enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Writes one event line. A write error disables the log rather than disturbing the command.
    pub fn emit(&mut self, event: &Event<'_>) {
        let Some(out) = self.out.as_mut() else { return };
        let line = Stamped {
            time_ms: self.started.elapsed().as_millis() as u64,
            event,
        };
        let ok = serde_json::to_writer(&mut *out, &line).is_ok()
            && out.write_all(b"\n").is_ok()
            && out.flush().is_ok();
        if !ok {
            crate::report_error(
                "--events: cannot write the events file; no more events will be written",
            );
            self.out = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_lines_with_a_time() {
        let raw = serde_json::from_str::<&RawValue>(r#"{"event":"progress","bytes":1}"#).unwrap();
        let line = serde_json::to_string(&Stamped {
            time_ms: 7,
            event: &Event::Progress { data: raw },
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"time_ms":7,"event":"progress","data":{"event":"progress","bytes":1}}"#
        );
        let line = serde_json::to_string(&Stamped {
            time_ms: 1,
            event: &Event::Exit {
                reason: "deadline",
                exit_code: 124,
                status: EndedAs::Signal(15),
                elapsed_ms: 300,
            },
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"time_ms":1,"event":"exit","reason":"deadline","exit_code":124,"status":{"signal":15},"elapsed_ms":300}"#
        );
    }
}
