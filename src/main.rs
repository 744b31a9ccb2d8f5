//! Parse the command line, dispatch to the supervisor, the fetch worker or batch mode, and map the
//! outcome to an exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use watchdog::cli::{Cli, Mode};
use watchdog::exit::Exit;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == watchdog::fetch::WORKER_ARG)
    {
        return watchdog::fetch::worker_main(&args[2..]);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => return exit_for_usage(err),
    };
    match cli.mode {
        Some(Mode::Batch(batch)) => watchdog::batch::run(batch),
        None => watchdog::supervisor::run(&cli.supervise, &cli.command),
    }
}

/// Prints clap's message; help and version exit 0, anything else is a usage error (125, as GNU timeout).
fn exit_for_usage(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = err.print();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => Exit::Failure.into(),
    }
}
