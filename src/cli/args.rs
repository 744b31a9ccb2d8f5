//! The clap definitions of every mode, and the one place they become the plain options the modules
//! own (`From` conversions at the end): nothing else in watchdog sees a clap type.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::help::{after_help, batch_after_help};
use crate::batch::BatchOptions;
use crate::duration::{parse_duration, parse_optional_duration, parse_size};
use crate::exit::EXIT_STATUS_HELP;
use crate::fetch::{DownloadOptions, Expect, FetchOptions, ProxyAuth};
use crate::supervisor::SuperviseOptions;

/// Parses a DURATION where 0 disables the timer.
fn optional_duration(text: &str) -> Result<Option<Duration>, String> {
    parse_optional_duration(text).map_err(|e| format!("expected {}", e.expected))
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| format!("expected {}", e.expected))
}

fn size(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| format!("expected {}", e.expected))
}

/// A count (`--retries`, `--jobs`): a whole number, 0 or more. Negative numbers reach it (rather than
/// being taken for an unknown option) so that the message names the problem.
fn count<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    if text.trim_start().starts_with('-') {
        return Err("a count cannot be negative: expected a whole number, 0 or more".to_string());
    }
    text.parse()
        .map_err(|_| "expected a whole number, 0 or more".to_string())
}

/// Run COMMAND under a hard deadline and a stall watch; kill its whole process tree when it overruns.
#[derive(Debug, Parser)]
#[command(
    name = "watchdog",
    version,
    about = "Run a command under a hard deadline and a stall watch; kill its whole process tree when it overruns",
    long_about = "Run COMMAND under a hard deadline (--timeout) and an optional stall watch (--stall). When either \
fires, watchdog signals the command's whole process tree, follows with SIGKILL after a grace period, and \
returns only when no process it started is still running.\n\nGNU timeout's form works as well: \
`watchdog [OPTION]... DURATION COMMAND [ARG]...` is `watchdog [OPTION]... --timeout DURATION -- COMMAND [ARG]...`. \
Without `--` the first operand must be a DURATION; after `--` it is one only when it reads as a number. \
Long options may be abbreviated to any unambiguous prefix, as GNU's getopt_long allows (`--kill=1`, \
`--sig=KILL`, `--pres`); a prefix GNU timeout reads as one of its own options keeps that meaning (`--s` is \
`--signal`, beside watchdog's `--stall`).\n\nWhen COMMAND is the bare word `fetch`, watchdog \
runs its built-in download worker instead of looking `fetch` up on PATH (see `watchdog -- fetch --help`); \
give a path (./fetch) to run an external program of that name.",
    after_long_help = after_help(),
    override_usage = "watchdog [OPTION]... DURATION COMMAND [ARG]...\n       watchdog [OPTION]... -- COMMAND [ARG]...\n       watchdog batch [OPTION]... LIST\n       watchdog report [OPTION]... FILE...",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub supervise: SuperviseArgs,

    /// The command to run, with its arguments: after DURATION (GNU timeout's form), or after `--`.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    pub command: Vec<OsString>,

    #[command(subcommand)]
    pub mode: Option<Mode>,
}

/// Modes other than supervising a single command.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Download a list of URLs, each in a supervised worker process, and report on every item.
    Batch(BatchArgs),
    /// Sum up batch reports (shards, reruns): the latest outcome of every item, what is still missing.
    Report(ReportArgs),
}

/// How the supervisor watches and stops the command.
#[derive(Debug, Clone, Args)]
pub struct SuperviseArgs {
    /// Hard deadline for the command; 0 disables it.
    #[arg(short = 't', long, value_name = "DURATION", value_parser = optional_duration, default_value = "0",
          help_heading = "Deadline")]
    pub timeout: std::option::Option<Duration>,

    /// Stop the command when it shows no sign of life for this long (no line on the progress channel,
    /// no output on stdout or stderr, which watchdog relays); 0 disables it.
    #[arg(long, value_name = "DURATION", value_parser = optional_duration, default_value = "0",
          help_heading = "Deadline")]
    pub stall: std::option::Option<Duration>,

    /// Signal sent first when the command overruns: a name as GNU timeout takes it (TERM, SIGINT, int,
    /// RTMIN, RTMIN+1, RTMAX-2) or a number (also a shell's 128+N); 0 (EXIT) sends nothing, so only
    /// the SIGKILL that follows stops the command.
    #[arg(short = 's', long, value_name = "SIGNAL", default_value = "TERM", value_parser = crate::signals::parse_signal,
          help_heading = "Stopping")]
    pub signal: i32,

    /// Grace period between the first signal and SIGKILL; 0 sends no SIGKILL (as GNU timeout).
    #[arg(short = 'k', long, value_name = "DURATION", value_parser = duration, default_value = "2s",
          help_heading = "Stopping")]
    pub kill_after: Duration,

    /// When the command is stopped, exit with its own status instead of 124 (137 stays 137).
    #[arg(short = 'p', long, help_heading = "Stopping")]
    pub preserve_status: bool,

    /// Keep the command in watchdog's process group, so that it can read from the terminal. Only the
    /// command itself gets the first signal; its descendants are swept all the same before watchdog
    /// exits.
    #[arg(short = 'f', long, help_heading = "Stopping")]
    pub foreground: bool,

    /// Print a line on stderr whenever watchdog sends a signal, exactly as GNU timeout does (the reason
    /// is in --events). Given twice, also a line that names the --contain mechanism used.
    #[arg(short = 'v', long, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Show no progress bar for the built-in fetch worker.
    #[arg(short = 'q', long, help_heading = "Output")]
    pub quiet: bool,

    /// Write watchdog's own events (start, progress, signals, exit) to FILE as JSON Lines.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub events: Option<PathBuf>,

    /// How the command's process tree is held: one of the values below; -vv and --events name the
    /// one used.
    #[arg(
        long,
        value_name = "HOW",
        value_enum,
        default_value = "auto",
        help_heading = "Stopping"
    )]
    pub contain: ContainArg,
}

/// `--contain` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContainArg {
    /// The strongest the system allows, silently: pidns (root), else userns, else sentinel (also for a
    /// command that is setuid, setgid or has file capabilities), else group.
    Auto,
    /// The command runs under watchdog's init as PID 2 of a new PID namespace (needs CAP_SYS_ADMIN,
    /// Linux): nothing it starts can leave it, and nothing survives even a SIGKILLed watchdog, since
    /// the kernel kills the namespace with its init. An error (125) when it cannot be had.
    Pidns,
    /// pidns for an ordinary user: the PID namespace is owned by a new user namespace that maps only
    /// your own uid and gid, so `id`, file ownership and $HOME are unchanged, but setuid programs
    /// (sudo) cannot gain privilege inside and other users' ids show as nobody. Needs unprivileged
    /// user namespaces; an error (125) when they cannot be had.
    Userns,
    /// The command runs under a sentinel process (a subreaper, in its own process group) that kills
    /// every descendant when watchdog dies, even by SIGKILL. Changes nothing the command sees; no
    /// guarantee if the sentinel itself is SIGKILLed.
    Sentinel,
    /// The command runs in its own process group and watchdog is its subreaper: every descendant is
    /// swept while watchdog lives, but if watchdog is SIGKILLed only the command itself dies with it.
    Group,
}

/// `--expect` values: what kind of content a download must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExpectArg {
    /// A whole JPEG, PNG, GIF, WebP, BMP or TIFF: its structure is followed to its end as it
    /// arrives; an image cut short is truncated (and retried), a broken one rejected.
    Image,
}

/// Options of the download, shared by `fetch` and `batch`.
#[derive(Debug, Clone, Args)]
pub struct DownloadArgs {
    /// Give up connecting after this long (the whole transfer is bounded by the supervisor's --timeout).
    #[arg(long, value_name = "DURATION", value_parser = optional_duration, default_value = "0")]
    pub connect_timeout: std::option::Option<Duration>,

    /// Refuse a body larger than this (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", value_parser = size)]
    pub max_size: Option<u64>,

    /// Accept only a body of this kind.
    #[arg(long, value_name = "KIND", value_enum)]
    pub expect: Option<ExpectArg>,

    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// Follow at most this many redirects (http and https only).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: u32,

    /// Also trust the CA certificates in this PEM file (the system trust store is always used).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Do not verify TLS certificates or host names.
    #[arg(long)]
    pub insecure: bool,

    /// fsync the file and its directory before reporting success (durability across power loss).
    #[arg(long)]
    pub fsync: bool,

    /// Use this proxy for every request, over HTTP_PROXY, HTTPS_PROXY and ALL_PROXY:
    /// [SCHEME://][USER:PASSWORD@]HOST[:PORT] with SCHEME http (the default), https, socks4, socks4a,
    /// socks5 or socks5h (the proxy resolves the name); "" turns proxies off.
    #[arg(short = 'x', long, value_name = "URL", help_heading = "Proxy")]
    pub proxy: Option<String>,

    /// Reach these hosts directly, over NO_PROXY: host names (with their subdomains), IP addresses,
    /// CIDR ranges and HOST:PORT, separated by commas; '*' for every host.
    #[arg(long, value_name = "LIST", help_heading = "Proxy")]
    pub noproxy: Option<String>,

    /// Authenticate to the proxy with Basic, the credentials from the proxy URL (the default).
    #[arg(long, group = "proxy_auth", help_heading = "Proxy")]
    pub proxy_basic: bool,

    /// Authenticate to the proxy with Digest.
    #[arg(long, group = "proxy_auth", help_heading = "Proxy")]
    pub proxy_digest: bool,

    /// Authenticate to the proxy with NTLM.
    #[arg(long, group = "proxy_auth", help_heading = "Proxy")]
    pub proxy_ntlm: bool,

    /// Authenticate to the proxy with the most secure scheme its 407 answer offers, at the cost of
    /// one more round trip per connection to the proxy.
    #[arg(long, group = "proxy_auth", help_heading = "Proxy")]
    pub proxy_anyauth: bool,
}

impl DownloadArgs {
    /// The proxy authentication scheme chosen (at most one of the flags: clap's group).
    fn proxy_auth(&self) -> ProxyAuth {
        if self.proxy_digest {
            ProxyAuth::Digest
        } else if self.proxy_ntlm {
            ProxyAuth::Ntlm
        } else if self.proxy_anyauth {
            ProxyAuth::Any
        } else {
            ProxyAuth::Basic
        }
    }
}

/// Download one URL to a file, atomically: the final path holds a complete, verified file or nothing.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "watchdog-fetch",
    bin_name = "watchdog -- fetch",
    version,
    about = "Download one URL to a file under watchdog's supervision",
    long_about = "The built-in download worker. Run it as `watchdog [OPTIONS] -- fetch URL [-o PATH]`: watchdog's \
--timeout bounds the whole transfer (DNS, connect, every byte), --stall stops it when no data arrives, and \
the file appears at PATH only when it is complete and verified. Proxies come from -x/--proxy, else \
HTTP_PROXY, HTTPS_PROXY and ALL_PROXY, bypassed for --noproxy, else NO_PROXY (either case), as curl reads \
them: http:// goes to an HTTP proxy as a forward request, https:// through a CONNECT tunnel. The worker is \
a binary of its own, watchdog-fetch, which watchdog runs from its own directory (without it there, fetch \
and batch exit 125); run directly, `watchdog-fetch URL [-o PATH]` is the same download with no deadline \
and no stall watch.",
    after_long_help = EXIT_STATUS_HELP
)]
pub struct FetchArgs {
    /// The http or https URL to download.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Where to write the file; `-` writes to stdout; a directory (one that exists, or a path ending
    /// in /) gets the file under the URL's name, as curl --output-dir does. Default: the URL's last
    /// path segment, sanitized, in the current directory.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// The body's expected SHA-256, in hex.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,

    /// Keep a partial download when interrupted, and continue it with a Range request next time.
    #[arg(long)]
    pub resume: bool,

    #[command(flatten)]
    pub download: DownloadArgs,
}

/// `watchdog batch`: many downloads, each supervised, one report line per item.
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Download every URL in LIST into DIR. Each item runs in a worker process under its own deadline \
(--timeout, per attempt) and stall watch (--stall); a worker whose item overruns is SIGKILLed and replaced, \
so one stuck download never delays another. Every item gets one line in the report, written and flushed as \
it finishes. Run the same command again after a crash or a failure: items already complete are skipped.",
    after_long_help = batch_after_help()
)]
// The help text spells a tab as <TAB>, which rustdoc would take for an HTML tag.
#[allow(rustdoc::invalid_html_tags)]
pub struct BatchArgs {
    /// File with one item per line (URL, URL<TAB>PATH, or a JSON object); `-` reads stdin.
    #[arg(value_name = "LIST")]
    pub list: PathBuf,

    /// Directory the files are written to (created if missing); one that no file can be created in
    /// fails before any request is sent.
    #[arg(
        short = 'o',
        long,
        value_name = "DIR",
        default_value = ".",
        help_heading = "Output"
    )]
    pub out: PathBuf,

    /// Concurrent downloads (at most 1024).
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = 16,
        value_parser = count::<usize>,
        allow_negative_numbers = true,
        help_heading = "Limits"
    )]
    pub jobs: usize,

    /// Deadline of each attempt of each item; 0 disables it. The default bounds a batch that nobody
    /// tuned: no item can hold a worker for more than ten minutes per attempt.
    #[arg(short = 't', long, value_name = "DURATION", value_parser = optional_duration, default_value = "10m", help_heading = "Limits")]
    pub timeout: std::option::Option<Duration>,

    /// Stop an attempt when no data arrives for this long; 0 disables it.
    #[arg(long, value_name = "DURATION", value_parser = optional_duration, default_value = "1m", help_heading = "Limits")]
    pub stall: std::option::Option<Duration>,

    /// Retries per item after a failure that may be transient, with exponential backoff and jitter,
    /// and at least the server's Retry-After (up to 60 s: an item asked to wait longer is left for a
    /// later run).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = count::<u32>, allow_negative_numbers = true, help_heading = "Limits")]
    pub retries: u32,

    /// JSON Lines report, one line per item (default: DIR/report.jsonl); `-` is stdout, and a pipe,
    /// FIFO or device is written as a stream, never read back.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,

    /// Take only shard K of N (1-based, by a hash of the URL), or `auto` from Slurm / Kubernetes variables.
    #[arg(long, value_name = "K/N|auto", help_heading = "Sharding")]
    pub shard: Option<String>,

    /// With `--shard auto` under a Kubernetes Indexed Job (JOB_COMPLETION_INDEX set): the number of
    /// shards.
    #[arg(long, value_name = "N", help_heading = "Sharding")]
    pub shard_count: Option<u32>,

    /// Do not compute the SHA-256 of each download (the report's sha256 is then null, and a rerun
    /// checks finished files by size alone); items whose list line gives a sha256 are still checked.
    /// Hashing takes about a sixth of the CPU time of a batch of small files from a fast server.
    #[arg(long, help_heading = "Output")]
    pub no_sha256: bool,

    /// Show no progress, and no summary when every item is done; a run with failures, or one that
    /// was interrupted, still prints its summary.
    #[arg(short = 'q', long, help_heading = "Output")]
    pub quiet: bool,

    /// When stderr is not a terminal (a log file), write a status line to it this often: elapsed,
    /// items ended of the total, ok, failed by cause, in flight, items/s and MB/s over the interval,
    /// ETA; also how often --metrics is rewritten. 0 turns both off (the metrics file is then
    /// written only at the start and at the end); -q turns the status lines off too.
    #[arg(long, value_name = "DURATION", value_parser = optional_duration, default_value = "30s", help_heading = "Output")]
    pub progress_interval: std::option::Option<Duration>,

    /// Write Prometheus metrics to FILE (text format, for node_exporter's textfile collector): the
    /// file is replaced atomically at the start, at every --progress-interval and when the run ends.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub metrics: Option<PathBuf>,

    #[command(flatten, next_help_heading = "Bad networks")]
    pub network: Box<BadNetworkArgs>,

    #[command(flatten, next_help_heading = "Download")]
    pub download: Box<DownloadArgs>,
}

/// The options of `watchdog batch` for bad networks and busy servers: slow bodies, dead hosts, a cap
/// per host. Boxed, to keep the command line's enum of modes small.
#[derive(Debug, Clone, Args)]
pub struct BadNetworkArgs {
    /// Stop an attempt whose body arrives slower than RATE bytes per second (K, M suffixes: 1K is 1024)
    /// over --min-speed-window, as `stalled` with the measured rate; retried like a stall. Catches a
    /// server that drips a byte now and then, which the stall watch never sees. 0 (the default)
    /// disables it.
    #[arg(long, value_name = "RATE", value_parser = size, default_value = "0")]
    pub min_speed: u64,

    /// The window over which --min-speed is measured, from the first body bytes on.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "5s")]
    pub min_speed_window: Duration,

    /// Circuit breaker: after N attempts in a row on one host (name and port) fail at DNS or connect,
    /// its remaining items get no worker and are reported at once with that status and an error
    /// naming the host, but for one probe every 10 s that lets a host that came back in again. A
    /// rerun tries them as usual. 0 disables it.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = count::<u32>, allow_negative_numbers = true)]
    pub host_failures: u32,

    /// At most N items of one host (name and port) at a time; the others wait while items of other
    /// hosts go ahead. 0 (the default) leaves only --jobs as the limit, as curl --parallel does.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = count::<usize>, allow_negative_numbers = true)]
    pub per_host: usize,
}

// The one place the command line becomes the options the rest of watchdog works with.

impl From<ExpectArg> for Expect {
    fn from(arg: ExpectArg) -> Expect {
        match arg {
            ExpectArg::Image => Expect::Image,
        }
    }
}

impl From<DownloadArgs> for DownloadOptions {
    fn from(args: DownloadArgs) -> DownloadOptions {
        let proxy_auth = args.proxy_auth();
        DownloadOptions {
            connect_timeout: args.connect_timeout,
            max_size: args.max_size,
            expect: args.expect.map(Expect::from),
            headers: args.headers,
            max_redirects: args.max_redirects,
            cacert: args.cacert,
            insecure: args.insecure,
            fsync: args.fsync,
            proxy: args.proxy,
            noproxy: args.noproxy,
            proxy_auth,
        }
    }
}

impl From<FetchArgs> for FetchOptions {
    fn from(args: FetchArgs) -> FetchOptions {
        FetchOptions {
            url: args.url,
            output: args.output,
            sha256: args.sha256,
            resume: args.resume,
            download: args.download.into(),
        }
    }
}

impl From<BatchArgs> for BatchOptions {
    fn from(args: BatchArgs) -> BatchOptions {
        BatchOptions {
            list: args.list,
            out: args.out,
            jobs: args.jobs,
            timeout: args.timeout,
            stall: args.stall,
            min_speed: (args.network.min_speed > 0).then_some(args.network.min_speed),
            min_speed_window: args.network.min_speed_window,
            retries: args.retries,
            host_failures: args.network.host_failures,
            per_host: (args.network.per_host > 0).then_some(args.network.per_host),
            report: args.report,
            shard: args.shard,
            shard_count: args.shard_count,
            no_sha256: args.no_sha256,
            quiet: args.quiet,
            progress_interval: args.progress_interval,
            metrics: args.metrics,
            download: (*args.download).into(),
        }
    }
}

impl From<ReportArgs> for crate::batch::reconcile::ReconcileOptions {
    fn from(args: ReportArgs) -> crate::batch::reconcile::ReconcileOptions {
        crate::batch::reconcile::ReconcileOptions {
            files: args.files,
            failed: args.failed,
            include_permanent: args.include_permanent,
            json: args.json,
            index_dir: args.index_dir,
            list: args.list,
            shard: args.shard,
            shard_count: args.shard_count,
            metrics: args.metrics,
            html: args.html,
        }
    }
}

impl From<SuperviseArgs> for SuperviseOptions {
    fn from(args: SuperviseArgs) -> SuperviseOptions {
        SuperviseOptions {
            timeout: args.timeout,
            stall: args.stall,
            signal: args.signal,
            kill_after: args.kill_after,
            preserve_status: args.preserve_status,
            foreground: args.foreground,
            verbose: args.verbose > 0,
            verbose_contain: args.verbose > 1,
            quiet: args.quiet,
            events: args.events,
            contain: match args.contain {
                ContainArg::Auto => crate::process::contain::Contain::Auto,
                ContainArg::Pidns => crate::process::contain::Contain::PidNamespace,
                ContainArg::Userns => crate::process::contain::Contain::UserNamespace,
                ContainArg::Sentinel => crate::process::contain::Contain::Sentinel,
                ContainArg::Group => crate::process::contain::Contain::Group,
            },
        }
    }
}

/// `watchdog report`: what batch reports add up to, item by item.
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Read the reports of `watchdog batch` (every shard, every rerun) and keep the latest outcome of \
each item; print a summary: counts per status and per host, bytes, and what is still missing. With --failed, \
print the items still not ok as a list that `watchdog batch` takes back, each with its path, so that a retry \
lands where the first try would have. With --list, every item of the list that no report mentions is missing \
(never tried), so a killed run or a shard that never ran is seen. Reports and lists of any length are read as \
streams, in flat memory; a line that is not a report line is named with its line number and skipped.",
    after_long_help = crate::batch::reconcile::REPORT_HELP
)]
pub struct ReportArgs {
    /// Batch reports (JSON Lines), in any order, except that reruns which wrote separate reports go
    /// oldest first; `-` reads one from stdin.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Print the items not done that a retry may fix (timeouts, stalls, 5xx, never tried), one JSON
    /// object {"url","path"} a line, for `watchdog batch`, which must be given the same --out (the
    /// paths are relative to it); the summary goes to stderr.
    #[arg(long)]
    pub failed: bool,

    /// With --failed, also list the items a retry will not fix (a 404, a body --expect or --sha256
    /// refused, a local I/O error), once their cause is dealt with.
    #[arg(long, requires = "failed")]
    pub include_permanent: bool,

    /// Print the summary as one JSON object; its not_done lists every item not done.
    #[arg(long)]
    pub json: bool,

    /// Where the index of items goes past 32,768 items (default: the first FILE's directory).
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,

    /// The list the batches were given (`-` is stdin): its items that no report mentions were never
    /// tried, and count as `missing`.
    #[arg(long, value_name = "LIST")]
    pub list: Option<PathBuf>,

    /// Check only shard K of N of the list (as batch --shard does), or `auto` from Slurm or Kubernetes
    /// variables; needs --list.
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,

    /// With `--shard auto` under a Kubernetes Indexed Job (JOB_COMPLETION_INDEX set): the number of
    /// shards.
    #[arg(long, value_name = "N")]
    pub shard_count: Option<u32>,

    /// Also write the outcome as Prometheus metrics to FILE (as `batch --metrics` writes them),
    /// replaced atomically, so a reconciliation job can publish its result.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,

    /// Also write the outcome as one self-contained web page to FILE (no network needed to view
    /// it): bars per status and per host, items done and not done over time, the slowest hosts, and
    /// a filterable table of the items not done (the first 1000).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(args: &[&str]) -> BatchArgs {
        let argv = ["watchdog", "batch", "list.txt"].iter().chain(args);
        match Cli::try_parse_from(argv).map(|cli| cli.mode) {
            Ok(Some(Mode::Batch(batch))) => batch,
            other => panic!("not a batch command line: {other:?}"),
        }
    }

    #[test]
    fn a_batch_is_bounded_unless_told_otherwise() {
        let plain = batch(&[]);
        assert_eq!(plain.timeout, Some(Duration::from_secs(600)));
        assert_eq!(plain.stall, Some(Duration::from_secs(60)));
        let unbounded = batch(&["-t", "0", "--stall", "0"]);
        assert_eq!((unbounded.timeout, unbounded.stall), (None, None));
        assert_eq!(
            batch(&["-t", "2.5"]).timeout,
            Some(Duration::from_millis(2500))
        );
    }
}
