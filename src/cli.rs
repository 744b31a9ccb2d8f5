//! The command-line interface: the single source for `--help`, the man pages and the parsers.
//!
//! Three entry points share one binary: the supervisor (`watchdog [OPTIONS] -- COMMAND`), the built-in
//! download worker (`watchdog [OPTIONS] -- fetch URL`, whose options are [`FetchArgs`]) and batch mode
//! (`watchdog batch LIST`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::batch::BatchOptions;
use crate::duration::{parse_duration, parse_optional_duration, parse_size};
use crate::exit::Exit;
use crate::exit::{BATCH_EXIT_STATUS_HELP, EXIT_STATUS_HELP};
use crate::fetch::{DownloadOptions, Expect, FetchOptions, ProxyAuth};
use crate::supervisor::{DownloadView, SuperviseOptions, Supervised};
use std::process::ExitCode;

/// The supervisor's examples, shown by `--help` and the man page.
pub const SUPERVISE_EXAMPLES: &str = "\
Examples:
  watchdog --timeout 5 -- curl -sO https://host/a.jpg
      Run curl; at 5 s send SIGTERM to its whole process tree, SIGKILL 2 s later.
  watchdog 5 curl -sO https://host/a.jpg
      The same in GNU timeout's form: a script written for timeout(1) works unchanged.
  watchdog --timeout 5 --stall 2 -- fetch https://host/a.jpg -o a.jpg
      Download with the built-in worker; stop it when no byte arrives for 2 s.
  watchdog -t 1m -s INT -k 5 --events run.jsonl -- ./train.sh
      Send SIGINT after a minute, SIGKILL 5 s later; log watchdog's events as JSON Lines.
  watchdog batch urls.txt --out imgs/ --jobs 16 --timeout 10
      Download a list of URLs, 16 at a time, each under its own 10 s deadline.";

/// The progress channel and events schema, shown by `--help` and the man page.
pub const PROTOCOL_HELP: &str = "\
Progress channel:
  Every command gets the write end of a pipe; its fd number is in WATCHDOG_PROGRESS_FD. Each line
  written there that is a JSON object counts as a heartbeat for --stall, e.g.
    {\"event\":\"progress\",\"bytes\":1024,\"total\":4096}
  Lines longer than 64 KiB, and lines that are not JSON objects, are ignored.

Events file:
  --events FILE writes one JSON object per line, each with \"event\" and \"time_ms\" (since start):
  {\"event\":\"start\",\"pid\":N,\"argv\":[...],\"contain\":\"pidns|group\"}
  {\"event\":\"progress\",\"data\":{...}}            a line relayed from the progress channel
  {\"event\":\"signal\",\"signal\":\"TERM\",\"reason\":\"deadline|stall|forwarded|cleanup\",\"pids\":N}
  {\"event\":\"exit\",\"reason\":\"exited|deadline|stall|forwarded\",\"exit_code\":N,
   \"status\":{\"code\":N} or {\"signal\":N},\"elapsed_ms\":N}
  Credentials in URLs (user:password@) are replaced by \"***\".";

/// The batch mode's examples, list format and report, shown by `batch --help` and its man page.
///
/// Like every hand-wrapped help block, its lines fit in 100 columns, the widest clap prints help at;
/// a longer line would be wrapped a second time.
pub const BATCH_HELP: &str = "\
Examples:
  watchdog batch urls.txt --out imgs/ --jobs 16 --timeout 10 --stall 3
      Download urls.txt into imgs/, 16 at a time; report in imgs/report.jsonl.
  grep jpg urls.txt | watchdog batch - --out imgs/ --expect image --max-size 20M
      Read the list from stdin; refuse anything that is not an image or is over 20 MiB.
  watchdog batch urls.txt --out imgs/ --shard 3/8
      Take the third of eight disjoint shards (by a hash of the URL); run the other seven elsewhere.
  watchdog batch urls.txt --out imgs/ --shard auto
      Pick the shard from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or from JOB_COMPLETION_INDEX
      with --shard-count N (a Kubernetes Indexed Job).

List format:
  One item per line: a URL; URL<TAB>RELATIVE/PATH to name the file; or a JSON object
  {\"url\":...,\"path\":...,\"sha256\":...}. Blank lines and # comments are skipped; CRLF and a UTF-8
  BOM are accepted. A line that is not an http(s) URL, is unparsable or is longer than 8 KiB is
  reported invalid. Names come from the URL's last path segment, percent-decoded and sanitized; no
  name ever leaves DIR. Name collisions get a short hash suffix; a URL listed twice is fetched once.
  Past 32,768 items, the index of names moves from memory to an unnamed file in DIR (up to 64 bytes
  of disk per item, and up to 96 more per item an earlier run finished), so DIR needs that room
  beside the downloads.

Report:
  One JSON object per item, appended and flushed as each finishes:
  {\"url\",\"path\",\"status\",\"http_status\",\"bytes\",\"sha256\",\"attempts\",\"elapsed_ms\",\"error\"}
  status is one of ok, timeout, stalled, http_error, dns_error, connect_error, tls_error, truncated,
  rejected, invalid, io_error, skipped. io_error is a file that could not be written, or a worker
  process that died with the item (the error says how; a death is retried, a full disk is not).
  sha256 is null with --no-sha256 (unless the list gave one). Credentials in URLs are replaced by
  \"***\".";

fn batch_after_help() -> String {
    format!("{BATCH_HELP}\n\n{BATCH_EXIT_STATUS_HELP}")
}

/// The one place watchdog differs from GNU timeout on purpose, shown by `--help` and the man page.
pub const GNU_DIFFERENCES_HELP: &str = "\
Differences from GNU timeout:
  watchdog takes GNU timeout's command line (watchdog [OPTION]... DURATION COMMAND [ARG]...), its
  options, durations, signals and exit codes, and differs only where it keeps a promise GNU does
  not make:
  - SIGKILL follows the first signal after a 2 s grace unless -k says otherwise, so a command that
    ignores the signal cannot hang the caller (GNU waits for ever). -k 0 means no SIGKILL, as in GNU.
  - The signals go to the command's whole process tree, including processes that left its group
    (setsid, double fork), and watchdog returns only when none of them is left; what the command
    leaves behind when it exits is stopped too (with -k 0, SIGKILL after 2 s).
  - The command is tied to watchdog with SIGKILL (PR_SET_PDEATHSIG), not with the --signal signal,
    so that it cannot outlive a killed watchdog by ignoring that signal.
  - A signal the caller ignored (a background job's INT and QUIT, nohup's HUP) is not caught; the
    command inherits it ignored.";

fn after_help() -> String {
    format!(
        "{SUPERVISE_EXAMPLES}\n\n{EXIT_STATUS_HELP}\n\n{GNU_DIFFERENCES_HELP}\n\n{PROTOCOL_HELP}"
    )
}

/// Reports a command-line error the way every other watchdog error looks, on one line
/// (`watchdog: invalid value '5x' for '--timeout <DURATION>': expected ...`). Help and version go to
/// stdout and exit 0; anything else is a usage error, 125 as in GNU timeout.
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
            crate::report_error(format!("{message} (see --help)"));
            crate::exit::Exit::Failure.into()
        }
    }
}

/// Parses watchdog's own command line (not the fetch worker's). GNU timeout's form,
/// `watchdog [OPTION]... DURATION COMMAND [ARG]...`, is rewritten to `--timeout DURATION -- COMMAND...`
/// first; see [`gnu_form`]. Returns the parsed line and the arguments clap saw; `Err` carries the exit
/// code after the message is printed.
pub fn parse(args: Vec<OsString>) -> Result<(Cli, Vec<OsString>), ExitCode> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    let args = gnu_form(&command, args)?;
    let parsed = command
        .try_get_matches_from_mut(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => Ok((cli, args)),
        Err(err) => Err(exit_for_usage(err.with_cmd(&command))),
    }
}

/// Whether an operand was meant as a number: what follows `--` is only taken for a DURATION if it
/// parses as one, or is a number that does not (a negative one, typically), which is then an error.
fn looks_numeric(text: &str) -> bool {
    let text = text.trim_start();
    let text = text
        .strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    text.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

/// GNU timeout's form. The options before the first operand are skipped (clap knows which take a
/// value); then, unless `--timeout` was given or the operand names a mode (`batch`, `report`), the
/// first operand is the DURATION and the rest the command: `watchdog -k 1 5 curl URL` becomes
/// `watchdog -k 1 --timeout 5 -- curl URL`. Without `--` the first operand must be a DURATION, as in
/// GNU; after `--` it is one only if it reads as a number, so `watchdog -- sleep 5` still runs `sleep`
/// with no deadline. Anything clap would reject (an unknown option) is left for clap to report.
fn gnu_form(command: &clap::Command, args: Vec<OsString>) -> Result<Vec<OsString>, ExitCode> {
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    let is_timeout = |arg: &clap::Arg| arg.get_id() == "timeout";
    let mut timeout_given = false;
    let mut after_dashes = false;
    // The options, with every short one on its own and its value apart (`-vk1` is `-v -k 1`): clap
    // takes a glued value for the command when the command's argument accepts hyphens.
    let mut options: Vec<OsString> = args.iter().take(1).cloned().collect();
    let mut at = 1;
    while at < args.len() {
        let Some(word) = args[at].to_str() else {
            break; // not UTF-8: an operand
        };
        if word == "--" {
            after_dashes = true;
            at += 1;
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(name)) else {
                return Ok(args);
            };
            timeout_given |= is_timeout(arg);
            let end = if takes_value(arg) && !inline {
                at + 2
            } else {
                at + 1
            };
            options.extend_from_slice(&args[at..end.min(args.len())]);
            at = end;
            continue;
        }
        if word.len() > 1 && word.starts_with('-') {
            at += 1;
            for (i, c) in word.char_indices().skip(1) {
                let Some(arg) = command.get_arguments().find(|a| a.get_short() == Some(c)) else {
                    return Ok(args);
                };
                options.push(OsString::from(format!("-{c}")));
                if takes_value(arg) {
                    timeout_given |= is_timeout(arg);
                    let rest = &word[i + c.len_utf8()..];
                    if !rest.is_empty() {
                        options.push(OsString::from(rest));
                    } else if let Some(value) = args.get(at) {
                        options.push(value.clone());
                        at += 1;
                    }
                    break;
                }
            }
            continue;
        }
        break;
    }
    let mut rewritten = options;
    let Some(operand) = args.get(at) else {
        if after_dashes {
            rewritten.push(OsString::from("--"));
        }
        return Ok(rewritten);
    };
    let text = operand.to_string_lossy();
    let keep = |mut rewritten: Vec<OsString>| {
        if after_dashes {
            rewritten.push(OsString::from("--"));
        }
        rewritten.extend_from_slice(&args[at..]);
        Ok(rewritten)
    };
    if timeout_given || (!after_dashes && command.get_subcommands().any(|s| s.get_name() == text)) {
        return keep(rewritten);
    }
    match parse_duration(&text) {
        Ok(_) => {
            rewritten.push(OsString::from("--timeout"));
            rewritten.push(operand.clone());
            rewritten.push(OsString::from("--"));
            rewritten.extend_from_slice(&args[at + 1..]);
            Ok(rewritten)
        }
        Err(_) if after_dashes && !looks_numeric(&text) => keep(rewritten),
        Err(e) => {
            let hint = if after_dashes {
                ""
            } else {
                " (give a DURATION before the command, or put `--` before the command)"
            };
            crate::report_error(format!(
                "invalid duration '{text}': expected {}{hint}",
                e.expected
            ));
            Err(Exit::Failure.into())
        }
    }
}

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

/// Run COMMAND under a hard deadline and a stall watch; kill its whole process tree when it overruns.
#[derive(Debug, Parser)]
#[command(
    name = "watchdog",
    version,
    about = "Run a command under a hard deadline and a stall watch; kill its whole process tree when it overruns",
    long_about = "Run COMMAND under a hard deadline (--timeout) and an optional stall watch (--stall). When either \
fires, watchdog signals the command's whole process tree, follows with SIGKILL after a grace period, and \
returns only when no process it started is still running.\n\nGNU timeout's form works as well: \
`watchdog [OPTIONS] DURATION COMMAND [ARG]...` is `watchdog [OPTIONS] --timeout DURATION -- COMMAND [ARG]...`. \
Without `--` the first operand must be a DURATION; after `--` it is one only when it reads as a number.\n\nWhen COMMAND is the bare word `fetch`, watchdog \
runs its built-in download worker instead of looking `fetch` up on PATH (see `watchdog -- fetch --help`); \
give a path (./fetch) to run an external program of that name.",
    after_long_help = after_help(),
    override_usage = "watchdog [OPTIONS] DURATION COMMAND [ARG]...\n       watchdog [OPTIONS] -- COMMAND [ARG]...\n       watchdog batch [OPTIONS] LIST\n       watchdog report [OPTIONS] FILE...",
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

    /// Stop the command when it shows no sign of life for this long: no line on the progress channel and
    /// no output on stdout/stderr (which watchdog then relays). 0 disables it.
    #[arg(long, value_name = "DURATION", value_parser = optional_duration, default_value = "0",
          help_heading = "Deadline")]
    pub stall: std::option::Option<Duration>,

    /// Signal sent first when the command overruns: a name (TERM, SIGINT, int) or a number; 0 sends
    /// nothing, so only the SIGKILL that follows stops the command.
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

    /// Keep the command in watchdog's process group so it can read from the terminal. Only the command
    /// itself gets the first signal; its descendants are still swept before watchdog exits.
    #[arg(short = 'f', long, help_heading = "Stopping")]
    pub foreground: bool,

    /// Print a line on stderr whenever watchdog sends a signal, exactly as GNU timeout does (the reason
    /// is in --events). Given twice, also a line naming how the tree is contained (--contain).
    #[arg(short = 'v', long, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Show no progress bar for the built-in fetch worker.
    #[arg(short = 'q', long, help_heading = "Output")]
    pub quiet: bool,

    /// Write watchdog's own events (start, progress, signals, exit) to FILE as JSON Lines.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub events: Option<PathBuf>,

    /// How the command's process tree is held (see "How the tree is contained" in the README).
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
    /// The strongest the system allows: pidns where it can be had, else group, silently.
    Auto,
    /// The command runs under watchdog's init as PID 2 of a new PID namespace (needs CAP_SYS_ADMIN,
    /// Linux): nothing it starts can leave it, and nothing survives even a SIGKILLed watchdog, since
    /// the kernel kills the namespace with its init. An error (125) when it cannot be had.
    Pidns,
    /// The command runs in its own process group and watchdog is its subreaper: every descendant is
    /// swept while watchdog lives, but if watchdog is SIGKILLed only the command itself dies with it.
    Group,
}

/// `--expect` values: what kind of content a download must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExpectArg {
    /// JPEG, PNG, GIF, WebP, BMP or TIFF, judged by the body's magic bytes.
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

    /// Authenticate to the proxy with the most secure scheme its 407 answer offers (one more round
    /// trip per connection).
    #[arg(long, group = "proxy_auth", help_heading = "Proxy")]
    pub proxy_anyauth: bool,
}

impl DownloadArgs {
    /// The proxy authentication scheme chosen (at most one of the flags: clap's group).
    fn proxy_auth(&self) -> ProxyAuth {
        if self.proxy_digest {
            ProxyAuth::Digest
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
them: http:// goes to an HTTP proxy as a forward request, https:// through a CONNECT tunnel.",
    after_long_help = EXIT_STATUS_HELP
)]
pub struct FetchArgs {
    /// The http or https URL to download.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Where to write the file; `-` writes to stdout. Default: the URL's last path segment, sanitized.
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

    /// Directory the files are written to.
    #[arg(short = 'o', long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,

    /// Concurrent downloads.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 16)]
    pub jobs: usize,

    /// Deadline of each attempt of each item; 0 disables it. The default bounds a batch that nobody
    /// tuned: no item can hold a worker for more than ten minutes per attempt.
    #[arg(short = 't', long, value_name = "DURATION", value_parser = optional_duration, default_value = "10m")]
    pub timeout: std::option::Option<Duration>,

    /// Stop an attempt when no data arrives for this long; 0 disables it.
    #[arg(long, value_name = "DURATION", value_parser = optional_duration, default_value = "1m")]
    pub stall: std::option::Option<Duration>,

    /// Retries per item after a failure that may be transient, with exponential backoff and jitter,
    /// and at least the server's Retry-After (up to 60 s; an item asked to wait longer is not retried).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,

    /// JSON Lines report, one line per item (default: DIR/report.jsonl).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Take only shard K of N (1-based, by a hash of the URL), or `auto` from Slurm / Kubernetes variables.
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<String>,

    /// The shard count for `--shard auto` under a Kubernetes Indexed Job (JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "N")]
    pub shard_count: Option<u32>,

    /// Do not compute the SHA-256 of each download (the report's sha256 is then null, and a rerun
    /// checks finished files by size alone); items whose list line gives a sha256 are still checked.
    /// Hashing takes about a sixth of the CPU time of a batch of small files from a fast server.
    #[arg(long)]
    pub no_sha256: bool,

    /// Show no progress.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    #[command(flatten)]
    pub network: Box<BadNetworkArgs>,

    #[command(flatten)]
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
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub host_failures: u32,

    /// At most N items of one host (name and port) at a time; the others wait while items of other
    /// hosts go ahead. 0 (the default) leaves only --jobs as the limit, as curl --parallel does.
    #[arg(long, value_name = "N", default_value_t = 0)]
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
            download: (*args.download).into(),
        }
    }
}

/// Entry point of the fetch worker process (`watchdog __fetch-worker ARGS`): `args` are what followed
/// `fetch` on the command line.
pub fn fetch_worker_main(args: &[OsString]) -> std::process::ExitCode {
    let argv = std::iter::once(OsString::from("fetch")).chain(args.iter().cloned());
    match FetchArgs::try_parse_from(argv) {
        Ok(args) => crate::fetch::worker_main(&args.into()),
        Err(err) => exit_for_usage(err),
    }
}

/// Parses the command line and dispatches to the supervisor, the fetch worker, batch mode or
/// `report`; returns the exit code.
pub fn run(args: Vec<OsString>) -> ExitCode {
    if args.get(1).is_some_and(|a| a == crate::fetch::WORKER_ARG) {
        return fetch_worker_main(&args[2..]);
    }
    if args
        .get(1)
        .is_some_and(|a| a == crate::batch::worker::WORKER_ARG)
    {
        return crate::batch::worker::worker_main(&args[2..]);
    }
    if args
        .get(1)
        .is_some_and(|a| a == crate::process::init::INIT_ARG)
    {
        return crate::process::init::init_main(&args[2..]);
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
            crate::report_error(format!(
                "unknown option '{first}' (see --help; put `--` before a command)"
            ));
            return crate::exit::Exit::Failure.into();
        }
    }
    match cli.mode {
        Some(Mode::Batch(batch)) => crate::batch::run(batch.into()),
        Some(Mode::Report(report)) => crate::reconcile::run(report.into()),
        None => match supervised(&cli.command) {
            Ok(command) => crate::supervisor::run(&cli.supervise.into(), command),
            Err(code) => code,
        },
    }
}

impl From<ReportArgs> for crate::reconcile::ReconcileOptions {
    fn from(args: ReportArgs) -> crate::reconcile::ReconcileOptions {
        crate::reconcile::ReconcileOptions {
            files: args.files,
            failed: args.failed,
            json: args.json,
            index_dir: args.index_dir,
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
                ContainArg::Group => crate::process::contain::Contain::Group,
            },
        }
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
    let name = program.to_string_lossy().into_owned();
    if program != "fetch" {
        return Ok(Supervised {
            program: program.clone(),
            args: command[1..].to_vec(),
            arg0: None,
            name,
            argv: command.to_vec(),
            download: None,
        });
    }
    let parsed = FetchArgs::try_parse_from(command).map_err(exit_for_usage)?;
    let exe = std::env::current_exe().map_err(|e| {
        crate::report_error(format!(
            "cannot find watchdog's own executable to run fetch: {e}"
        ));
        ExitCode::from(Exit::Failure)
    })?;
    let mut args = vec![OsString::from(crate::fetch::WORKER_ARG)];
    args.extend_from_slice(&command[1..]);
    Ok(Supervised {
        program: exe.into_os_string(),
        args,
        arg0: Some(OsString::from("watchdog-fetch")),
        name,
        argv: command.to_vec(),
        download: Some(DownloadView {
            keep_partial: parsed.resume,
        }),
    })
}

/// `watchdog report`: what batch reports add up to, item by item.
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Read the reports of `watchdog batch` (every shard, every rerun) and keep the latest outcome of \
each item; print a summary: counts per status and per host, bytes, and what is still missing. With --failed, \
print the items still not ok as a list that `watchdog batch` takes back, each with its path, so that a retry \
lands where the first try would have. Reports of any length are read as streams, in flat memory; a line that \
is not a report line is named with its line number and skipped.",
    after_long_help = crate::reconcile::REPORT_HELP
)]
pub struct ReportArgs {
    /// Batch reports (JSON Lines), in any order, except that reruns which wrote separate reports go
    /// oldest first.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Print the items whose latest outcome is not ok, one JSON object {"url","path"} a line, for
    /// `watchdog batch`; the summary goes to stderr.
    #[arg(long)]
    pub failed: bool,

    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Where the index of items goes past 32,768 items (default: the first FILE's directory).
    #[arg(long, value_name = "DIR")]
    pub index_dir: Option<PathBuf>,
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
