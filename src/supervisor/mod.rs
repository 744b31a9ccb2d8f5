//! The supervisor. Placeholder.
use std::ffi::OsString;
use std::process::ExitCode;

use crate::cli::SuperviseArgs;

pub fn run(_args: &SuperviseArgs, _command: &[OsString]) -> ExitCode {
    crate::exit::Exit::Failure.into()
}
