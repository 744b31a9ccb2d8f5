//! What a `watchdog batch` run is asked to do, as plain data, converted once from the command line
//! (`crate::cli::BatchArgs`).

use std::path::PathBuf;
use std::time::Duration;

use crate::fetch::DownloadOptions;

/// One `watchdog batch` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    /// The list file; `-` is stdin.
    pub list: PathBuf,
    /// The directory the files are written to.
    pub out: PathBuf,
    /// Concurrent downloads.
    pub jobs: usize,
    /// Deadline of each attempt of each item; `None` disables it.
    pub timeout: Option<Duration>,
    /// Stop an attempt when no data arrives for this long; `None` disables it.
    pub stall: Option<Duration>,
    /// Stop an attempt whose body arrives slower than this many bytes per second over
    /// `min_speed_window`; `None` disables it.
    pub min_speed: Option<u64>,
    pub min_speed_window: Duration,
    /// Retries per item after a failure that may be transient.
    pub retries: u32,
    /// Consecutive DNS/connect failures after which a host's items are no longer tried (but for a
    /// probe now and then); 0 disables the circuit breaker.
    pub host_failures: u32,
    /// At most this many items of one host at a time; `None`: only `jobs` limits them.
    pub per_host: Option<usize>,
    /// The report file; `None` is DIR/report.jsonl.
    pub report: Option<PathBuf>,
    /// `K/N` or `auto`, as given.
    pub shard: Option<String>,
    /// The shard count for `--shard auto` under a Kubernetes Indexed Job.
    pub shard_count: Option<u32>,
    /// Do not compute the SHA-256 of each download.
    pub no_sha256: bool,
    /// Show no progress.
    pub quiet: bool,
    /// How often a status line goes to stderr when it is no terminal, and the metrics file is
    /// rewritten; `None`: never (the metrics file only at the start and the end).
    pub progress_interval: Option<Duration>,
    /// The Prometheus metrics file.
    pub metrics: Option<PathBuf>,
    pub download: DownloadOptions,
}
