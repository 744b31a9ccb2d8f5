//! watchdog: run a command, or a download, under a hard deadline and a stall watch, and kill its whole
//! process tree when it overruns.
//!
//! The binary is a thin wrapper over these modules so that tests and other programs can use them.

pub mod batch;
pub mod cli;
pub mod duration;
pub mod events;
pub mod exit;
pub mod fetch;
pub mod hex;
pub mod names;
pub mod process;
pub mod progress;
pub mod protocol;
pub mod reconcile;
pub mod redact;
pub mod signals;
pub mod supervisor;
pub mod url_parts;

/// Prints a one-line error as `watchdog: <message>` on stderr.
pub fn report_error(message: impl std::fmt::Display) {
    say(format_args!("watchdog: {message}"));
}

/// Writes one line on stderr. A closed or broken stderr is ignored: a message watchdog cannot deliver
/// must not panic it or change the exit status the command's fate decides.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
