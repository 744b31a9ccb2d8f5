//! Batch mode. Placeholder.

use std::process::ExitCode;

use crate::cli::BatchArgs;

pub fn run(_args: BatchArgs) -> ExitCode {
    crate::report_error("batch: not implemented yet");
    crate::exit::Exit::Failure.into()
}
