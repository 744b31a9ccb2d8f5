//! watchdog: run a command, or a download, under a hard deadline and a stall watch, and kill its whole
//! process tree when it overruns.
//!
//! The binary is [`run`]. The modules are private: what is public here is what the binary, the man page
//! generator and the integration tests use, and nothing else, so the compiler reports what nothing
//! calls.

mod batch;
mod cli;
mod duration;
pub mod entry;
mod events;
mod exit;
mod failure;
mod fetch;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod hex;
mod image;
mod names;
mod process;
mod progress;
mod protocol;
mod redact;
mod signals;
mod supervisor;
mod url_parts;

pub use cli::{run, run_worker, Cli, FetchArgs, BATCH_HELP, PROTOCOL_HELP, SUPERVISE_EXAMPLES};
pub use exit::{Exit, BATCH_EXIT_STATUS_HELP, EXIT_STATUS_HELP};
pub use failure::FailureKind;
pub use fetch::{
    temp_path_for, transport, DownloadOptions, Expect, FetchRequest, Fetcher, Output, ProxyAuth,
    WORKER_ARG as FETCH_WORKER_ARG, WORKER_BINARY,
};
pub use protocol::ProgressWriter;

/// Prints a one-line error as `watchdog: <message>` on stderr.
pub(crate) fn report_error(message: impl std::fmt::Display) {
    say(format_args!("watchdog: {message}"));
}

/// Writes one line on stderr. A closed or broken stderr is ignored: a message watchdog cannot deliver
/// must not panic it or change the exit status the command's fate decides.
pub(crate) fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
