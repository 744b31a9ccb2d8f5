//! The built-in download worker (`watchdog -- fetch URL`). Placeholder until the worker lands.

use std::ffi::OsString;
use std::process::ExitCode;

/// The hidden first argument that puts the binary into worker mode.
pub const WORKER_ARG: &str = "__fetch-worker";

/// Entry point of the worker process: `args` are what followed `fetch` on the command line.
pub fn worker_main(_args: &[OsString]) -> ExitCode {
    crate::report_error("fetch: not implemented yet");
    crate::exit::Exit::Failure.into()
}
