//! The hidden modes: the worker binary, `watchdog-fetch`, run as one of watchdog's helper processes
//! (the fetch worker, the batch worker). Each is recognised by its first argument, before any
//! option parsing, and takes the rest of the command line as its own.

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

    /// Runs the mode with what follows its selecting argument.
    pub fn run(self, rest: &[OsString]) -> ExitCode {
        match self {
            HiddenMode::FetchWorker => fetch_worker_main(rest),
            HiddenMode::BatchWorker => crate::batch::worker::worker_main(rest),
        }
    }
}

/// Entry point of the fetch worker process (`watchdog-fetch __fetch-worker ARGS`): `args` are what
/// followed `fetch` on the command line.
fn fetch_worker_main(args: &[OsString]) -> ExitCode {
    let argv = std::iter::once(OsString::from("fetch")).chain(args.iter().cloned());
    match FetchArgs::try_parse_from(argv) {
        Ok(args) => crate::fetch::worker_main(&args.into()),
        Err(err) => exit_for_usage(err),
    }
}
