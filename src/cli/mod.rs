//! The command-line interface: the single source for `--help`, the man pages and the parsers.
//!
//! Three entry points share one binary: the supervisor (`watchdog [OPTIONS] -- COMMAND`), the built-in
//! download worker (`watchdog [OPTIONS] -- fetch URL`, whose options are [`FetchArgs`]) and batch mode
//! (`watchdog batch LIST`). watchdog's helper processes run the worker binary, `watchdog-fetch`, in a
//! hidden mode ([`run_worker`]).
//!
//! - [`args`]: the clap definitions, and their conversion into the options the modules own;
//! - [`fast_form`]: the supervisor's everyday command lines, read without building clap's parser;
//! - [`gnu_form`]: GNU timeout's `DURATION COMMAND` form, rewritten before clap sees it;
//! - [`help`]: the long help texts;
//! - [`hidden`]: the helper processes' modes;
//! - [`slip`]: "did you mean" for the likely slips of a first command line;
//! - here: usage errors and the dispatcher.

mod args;
mod fast_form;
mod gnu_form;
mod help;
mod hidden;
mod slip;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, FetchArgs, Mode};
pub use help::{BATCH_HELP, PROTOCOL_HELP, SUPERVISE_EXAMPLES};

use crate::exit::Exit;
use crate::supervisor::{DownloadView, Supervised};
use hidden::HiddenMode;

/// Reports a command-line error the way every other watchdog error looks, on one line, in GNU
/// timeout's words where it has them (`watchdog: invalid time interval '5x'`, `watchdog: 'X': invalid
/// signal`, `watchdog: unrecognized option '--bogus'`), else clap's. Help and version go to stdout and
/// exit 0; anything else is a usage error, 125 as in GNU timeout.
pub fn exit_for_usage(err: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                crate::exit::Exit::Failure.into()
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        _ => {
            let message = gnu_wording(&err).unwrap_or_else(|| {
                let rendered = err.render().to_string();
                let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
                let mut message = lines
                    .next()
                    .unwrap_or("invalid command line")
                    .trim_start_matches("error: ")
                    .to_string();
                // "the following required arguments were not provided:" names them on the next line.
                if message.ends_with(':') {
                    if let Some(next) = lines.next() {
                        message = format!("{message} {next}");
                    }
                }
                format!("{message} (see --help)")
            });
            crate::report_error(message);
            crate::exit::Exit::Failure.into()
        }
    }
}

/// GNU timeout's message for a usage error it also has (getopt's and its own), if this is one.
fn gnu_wording(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        Some(ContextValue::Strings(texts)) => texts.first().cloned(),
        _ => None,
    };
    // "--signal <SIGNAL>" or "-s <SIGNAL>": the option's name, and the name of its value.
    let arg = context(ContextKind::InvalidArg);
    let (option, value_name) = match arg.as_deref().map(|a| a.split_once(' ').unwrap_or((a, ""))) {
        Some((option, value)) => (option.to_string(), value.to_string()),
        None => (String::new(), String::new()),
    };
    match err.kind() {
        ErrorKind::ValueValidation => {
            let value = context(ContextKind::InvalidValue)?;
            match value_name.as_str() {
                "<DURATION>" => Some(format!("invalid time interval '{value}'")),
                "<SIGNAL>" => Some(format!("'{value}': invalid signal")),
                _ => None,
            }
        }
        ErrorKind::InvalidValue
            if context(ContextKind::InvalidValue).is_none_or(|v| v.is_empty()) =>
        {
            Some(format!("option '{option}' requires an argument"))
        }
        ErrorKind::TooManyValues | ErrorKind::NoEquals if !option.is_empty() => {
            Some(format!("option '{option}' doesn't allow an argument"))
        }
        ErrorKind::UnknownArgument => unknown_option(&context(ContextKind::InvalidArg)?),
        _ => None,
    }
}

/// getopt's words for an option it does not know: `unrecognized option '--bogus'`, `invalid option --
/// 'z'`.
fn unknown_option(word: &str) -> Option<String> {
    if word.starts_with("--") {
        let name = word.split_once('=').map_or(word, |(name, _)| name);
        Some(format!("unrecognized option '{name}'"))
    } else {
        let letter = word.strip_prefix('-')?.chars().next()?;
        Some(format!("invalid option -- '{letter}'"))
    }
}

/// Parses watchdog's own command line (not the fetch worker's). GNU timeout's form,
/// `watchdog [OPTION]... DURATION COMMAND [ARG]...`, is rewritten to `--timeout DURATION -- COMMAND...`
/// first; see [`gnu_form::gnu_form`]. Returns the parsed line and the arguments clap saw; `Err` carries the exit
/// code after the message is printed.
pub fn parse(args: Vec<OsString>) -> Result<(Cli, Vec<OsString>), ExitCode> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    let args = gnu_form::gnu_form(&command, args)?;
    let parsed = command
        .try_get_matches_from_mut(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => Ok((cli, args)),
        Err(err) => Err(exit_for_usage(err.with_cmd(&command))),
    }
}

/// The worker binary's command line, with `engine` carrying its downloads: a hidden mode as watchdog
/// starts it (`watchdog-fetch __fetch-worker@VERSION ARGS`, `watchdog-fetch __batch-worker@VERSION
/// JSON`), else a plain download without a supervisor (`watchdog-fetch URL -o PATH`, the options of
/// `fetch`). A hidden mode of another version is refused (125) with one line.
pub fn run_worker(args: Vec<OsString>, engine: crate::fetch::transport::Connect) -> ExitCode {
    crate::fetch::transport::install(engine);
    if let Some(theirs) = HiddenMode::other_version(&args) {
        let path = std::env::current_exe()
            .unwrap_or_else(|_| std::path::PathBuf::from(crate::fetch::WORKER_BINARY));
        crate::report_error(crate::fetch::other_version(
            &path,
            crate::fetch::VERSION,
            theirs,
        ));
        return Exit::Failure.into();
    }
    match HiddenMode::of(&args) {
        Some(mode) => mode.run(&args[2..]),
        None => hidden::direct_main(&args),
    }
}

/// Parses the command line and dispatches to the supervisor, batch mode or `report`; returns the exit
/// code.
pub fn run(args: Vec<OsString>) -> ExitCode {
    if let Some((options, command)) = fast_form::read(&args) {
        return supervise(options, command);
    }
    let (cli, args) = match parse(args) {
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
            // getopt's words; the command itself is put after `--`.
            crate::report_error(unknown_option(first).unwrap_or_default());
            return crate::exit::Exit::Failure.into();
        }
    }
    match cli.mode {
        Some(Mode::Batch(batch)) => crate::batch::run(batch.into()),
        Some(Mode::Report(report)) => crate::batch::reconcile::run(report.into()),
        None => supervise(cli.supervise, &cli.command),
    }
}

/// Runs `command` under the supervisor.
fn supervise(options: args::SuperviseArgs, command: &[OsString]) -> ExitCode {
    match supervised(command) {
        Ok(command) => crate::supervisor::run(&options.into(), command),
        Err(code) => code,
    }
}

/// The command to supervise, as the user gave it; `fetch` becomes watchdog's own download worker,
/// whose options are checked here so that a usage error is reported before anything starts. `Err`
/// carries the exit code (after the message is printed), or 0 for `fetch --help`.
pub fn supervised(command: &[OsString]) -> Result<Supervised, ExitCode> {
    let Some(program) = command.first() else {
        crate::report_error("missing COMMAND: give it after `--`");
        return Err(Exit::Failure.into());
    };
    if program != "fetch" {
        return Supervised::program(command).ok_or_else(|| Exit::Failure.into());
    }
    let parsed = FetchArgs::try_parse_from(command).map_err(exit_for_usage)?;
    let view = DownloadView {
        keep_partial: parsed.resume,
    };
    Supervised::fetch_worker(command, view).map_err(|e| {
        crate::report_error(format!("fetch: {e}"));
        ExitCode::from(Exit::Failure)
    })
}
