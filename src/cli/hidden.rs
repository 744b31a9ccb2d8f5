//! The hidden modes: the worker binary, `watchdog-fetch`, run as one of watchdog's helper processes
//! (the fetch worker, the batch worker). Each is recognised by its first argument, before any
//! option parsing, and takes the rest of the command line as its own. That argument carries the
//! version of the watchdog that started the worker (`__fetch-worker@0.1.0`): a worker started by a
//! watchdog of another version, which may speak another progress protocol, says so and exits 125.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use super::args::FetchArgs;
use super::exit_for_usage;

/// A helper process watchdog starts from the worker binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenMode {
    /// The built-in download worker under the supervisor (`watchdog -- fetch URL`).
    FetchWorker,
    /// A batch worker, taking items on stdin.
    BatchWorker,
}

impl HiddenMode {
    /// Every hidden mode, with the first argument that selects it.
    const ALL: [(HiddenMode, &'static str); 2] = [
        (HiddenMode::FetchWorker, crate::fetch::WORKER_ARG),
        (HiddenMode::BatchWorker, crate::batch::worker::WORKER_ARG),
    ];

    /// The mode `args[1]` selects, if any.
    pub fn of(args: &[OsString]) -> Option<HiddenMode> {
        let first = args.get(1)?;
        HiddenMode::ALL
            .iter()
            .find(|(_, arg)| first == arg)
            .map(|(mode, _)| *mode)
    }

    /// The version of watchdog that gave `args[1]`, when it names a hidden mode for another version
    /// (`""` for one that gave none, as watchdogs before the check did).
    pub fn other_version(args: &[OsString]) -> Option<&str> {
        let first = args.get(1)?.to_str()?;
        HiddenMode::ALL.iter().find_map(|(_, arg)| {
            let (mode, _) = arg.split_once('@')?;
            let version = first.strip_prefix(mode)?;
            (first != *arg && (version.is_empty() || version.starts_with('@')))
                .then(|| version.trim_start_matches('@'))
        })
    }

    /// Runs the mode with what follows its selecting argument.
    pub fn run(self, rest: &[OsString]) -> ExitCode {
        match self {
            HiddenMode::FetchWorker => fetch_worker_main(rest),
            HiddenMode::BatchWorker => crate::batch::worker::worker_main(rest),
        }
    }
}

/// Entry point of the fetch worker process (`watchdog-fetch __fetch-worker@VERSION ARGS`): `args`
/// are what followed `fetch` on the command line.
fn fetch_worker_main(args: &[OsString]) -> ExitCode {
    let argv = std::iter::once(OsString::from("fetch")).chain(args.iter().cloned());
    match FetchArgs::try_parse_from(argv) {
        Ok(args) => crate::fetch::worker_main(&args.into()),
        Err(err) => exit_for_usage(err),
    }
}

/// The worker binary run directly (`watchdog-fetch URL -o PATH`): the fetch worker, whose usage
/// and help name this binary rather than `watchdog -- fetch`.
pub fn direct_main(args: &[OsString]) -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let argv = std::iter::once(OsString::from(crate::fetch::WORKER_BINARY))
        .chain(args.iter().skip(1).cloned());
    let mut command = FetchArgs::command().bin_name(crate::fetch::WORKER_BINARY);
    let parsed = command
        .try_get_matches_from_mut(argv)
        .and_then(|matches| FetchArgs::from_arg_matches(&matches));
    match parsed {
        Ok(args) => crate::fetch::worker_main(&args.into()),
        Err(err) => exit_for_usage(err.with_cmd(&command)),
    }
}
