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
pub mod names;
pub mod progress;
pub mod protocol;
pub mod reconcile;
pub mod redact;
pub mod signals;
pub mod supervisor;

/// Prints a one-line error as `watchdog: <message>` on stderr.
pub fn report_error(message: impl std::fmt::Display) {
    eprintln!("watchdog: {message}");
}
