//! Batch mode: download a list of URLs, each in a supervised worker process, and report on every item.
//!
//! The building blocks here are pure (no processes, no network) so they can be tested on their own:
//! [`list`] reads the list as a stream, [`allocate`] gives every item a unique output name and spots
//! duplicates, [`shard`] splits a list between machines, [`status`] names how an item ended,
//! [`report`] writes the JSON Lines report, [`summary`] sums it up, [`resume`] finds what a previous
//! run already finished and [`verify`] checks that its files are still intact, [`retry`] decides what
//! to try again and when, and [`plan`] folds these steps into one decision per list line. The
//! allocator and the resume index remember something about every item; [`spill`] moves what they
//! remember to a file in the output directory once a list is long, so the supervisor's memory does
//! not grow with the list. The runner wires them to the supervisor and the fetch worker. [`reconcile`]
//! is `watchdog report`: it reads the reports back and sums up every item's latest outcome.

use std::process::ExitCode;

pub use self::options::BatchOptions;

pub mod allocate;
pub mod compact;
pub mod hosts;
pub mod list;
pub mod metrics;
mod options;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod resume;
pub mod retry;
pub mod run_stats;
pub mod runner;
pub mod session;
pub mod shard;
pub mod spill;
pub mod status;
pub mod status_line;
pub mod summary;
pub mod timestamp;
pub mod verify;
pub mod watch;
pub mod worker;

/// Runs `watchdog batch`.
pub fn run(args: BatchOptions) -> ExitCode {
    session::run(args)
}
