//! Parse the command line, dispatch to the supervisor, the fetch worker or batch mode, and map the
//! outcome to an exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use watchdog::cli::Mode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == watchdog::fetch::WORKER_ARG)
    {
        return watchdog::cli::fetch_worker_main(&args[2..]);
    }
    if args
        .get(1)
        .is_some_and(|a| a == watchdog::batch::worker::WORKER_ARG)
    {
        return watchdog::batch::worker::worker_main(&args[2..]);
    }
    let (cli, args) = match watchdog::cli::parse(args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    // clap takes an unknown option where COMMAND may start as the command itself; a command that looks
    // like an option must come after `--`.
    let command_at = args.len() - cli.command.len();
    if let Some(first) = cli.command.first().and_then(|c| c.to_str()) {
        if first.starts_with('-')
            && args
                .get(command_at.wrapping_sub(1))
                .is_none_or(|a| a != "--")
        {
            watchdog::report_error(format!(
                "unknown option '{first}' (see --help; put `--` before a command)"
            ));
            return watchdog::exit::Exit::Failure.into();
        }
    }
    match cli.mode {
        Some(Mode::Batch(batch)) => watchdog::batch::run(batch.into()),
        Some(Mode::Report(report)) => watchdog::reconcile::run(report.into()),
        None => match watchdog::cli::supervised(&cli.command) {
            Ok(command) => watchdog::supervisor::run(&cli.supervise.into(), command),
            Err(code) => code,
        },
    }
}
