//! The built-in download worker (`watchdog -- fetch URL`).
//!
//! The supervisor runs the worker binary, `watchdog-fetch`, as `watchdog-fetch __fetch-worker
//! ARGS...` (see [`worker_binary`]); [`worker_main`] is that process. The HTTP engine is the worker
//! binary's, behind the [`transport`] seam. It downloads one URL with a [`Fetcher`], reports on the
//! progress channel (a `start` line when the response head arrives, `progress` lines as bytes come
//! in, then `done` or `error`), and exits with one code per kind of failure. Batch mode keeps one [`Fetcher`] per long-lived worker so
//! that downloads from the same host reuse keep-alive connections, and makes it [brief](Fetcher::brief):
//! an item that ends within a tenth of a second sends its `done` or `error` line alone.
//!
//! The worker sets no overall deadline of its own: the supervisor's `--timeout` and `--stall` bound it
//! and kill it, and then delete the temp file named in the `start` line.

mod content;
mod dns;
mod error;
mod headers;
mod options;
mod output;
mod phase;
pub mod proxy;
mod target;
mod tls;
pub mod transport;
mod worker_binary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub use self::error::{FailureKind, FetchError};
pub use self::options::{DownloadOptions, Expect, FetchOptions, ProxyAuth};
pub use self::output::{create_dirs_beneath, temp_path_for};
#[cfg(feature = "test-hooks")]
pub use self::phase::SILENT_HOSTS_ENV;
pub use self::worker_binary::{
    other_version, worker_binary, worker_binary_of_this_version, VERSION, WORKER_BINARY,
};

use self::content::BodyCheck;
use self::output::{FileSink, Sink};
use self::target::Target;
use self::transport::{Answer, ReadFailure, Transport};
use crate::protocol::{ProgressLine, ProgressWriter};
use crate::redact::redact_credentials;

/// The hidden first argument that puts the worker binary into worker mode. It carries watchdog's
/// version, which the worker checks (see [`worker_binary`]).
pub const WORKER_ARG: &str = concat!("__fetch-worker@", env!("CARGO_PKG_VERSION"));

/// The shortest interval between two `progress` lines. Short enough that every chunk that arrives
/// after a quiet spell is reported at once (a stall watch must see it), long enough to keep a fast
/// transfer from flooding the channel. Bytes that arrive just before a pause are reported when the
/// pause has lasted the rest of the interval (a poll timeout, not a timer per read).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Where a download goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A file, written atomically through a temp file beside it.
    File(PathBuf),
    /// Standard output, streamed as it arrives.
    Stdout,
}

impl Output {
    /// `-` means stdout, anything else a file.
    pub fn from_path(path: &Path) -> Output {
        if path.as_os_str() == "-" {
            Output::Stdout
        } else {
            Output::File(path.to_path_buf())
        }
    }
}

/// One download.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub url: String,
    pub output: Output,
    /// The expected SHA-256 of the body, in hex (either case).
    pub sha256: Option<String>,
    /// Continue from, and on transfer failure keep, the temp file.
    pub resume: bool,
    /// The caller has just removed the temp file (a batch worker's first attempt): with `resume`,
    /// there is nothing to continue from, and no need to look.
    pub no_partial: bool,
    /// Compute the body's SHA-256 (always done when `sha256` is given).
    pub digest: bool,
}

/// A completed download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The final path; `None` when the body went to stdout.
    pub path: Option<PathBuf>,
    /// The size of the complete body (including bytes kept from an earlier, resumed attempt).
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the complete body, unless the request asked for no digest.
    pub sha256: Option<String>,
    /// The status of the final answer (200, 206, or 416 for a file that was already complete).
    pub http_status: u16,
}

/// Downloads URLs with one HTTP agent, so consecutive downloads reuse connections.
pub struct Fetcher {
    client: Box<dyn Transport>,
    expect: Option<Expect>,
    max_size: Option<u64>,
    fsync: bool,
    /// Batch mode: fold the lines of a download that ends within [`PROGRESS_INTERVAL`] into its `done`
    /// or `error` line. See [`Fetcher::brief`].
    brief: bool,
}

/// How the body of an answer relates to what is on disk.
enum Start {
    /// Write from byte 0.
    Fresh,
    /// Append to the bytes already in the temp file.
    Append,
}

impl Fetcher {
    /// Builds the agent: trusted roots (system store plus `--cacert`), headers, proxy settings from the
    /// environment. Fails on a malformed header or an unreadable `--cacert`, and in a binary without
    /// an HTTP engine (see [`transport::install`]).
    pub fn new(options: &DownloadOptions) -> Result<Fetcher, FetchError> {
        Ok(Fetcher {
            client: transport::connect(options)?,
            expect: options.expect,
            max_size: options.max_size,
            fsync: options.fsync,
            brief: false,
        })
    }

    /// Sends the `start` line of a download only once it has run for [`PROGRESS_INTERVAL`], and no
    /// closing `progress` line: the `done` line carries the size and status.
    ///
    /// Most items of a batch are small images that finish in a few milliseconds, and every line wakes
    /// the supervisor: three lines per item were two thirds of its wake-ups and a measurable share of
    /// the whole batch's CPU time. A download that lasts longer reports as before, so a stall watch
    /// still sees its headers and every chunk after a quiet spell (up to [`PROGRESS_INTERVAL`] later
    /// than an unfolded `start` line would have).
    pub fn brief(mut self) -> Fetcher {
        self.brief = true;
        self
    }

    /// Sends `phase` lines to `channel` (a second handle on the progress channel) when a look-up or a
    /// new connection starts, so a supervisor that stops an attempt knows how far it got.
    pub fn report_phases(self, channel: Option<std::fs::File>) -> Fetcher {
        if let Some(channel) = channel {
            self.client.phases().connect(channel);
        }
        self
    }

    /// Test-only: the resolver never answers for `hosts` (see [`SILENT_HOSTS_ENV`]).
    #[cfg(feature = "test-hooks")]
    pub fn silent_hosts(self, hosts: Vec<String>) -> Fetcher {
        if !hosts.is_empty() {
            self.client.phases().set_silent_hosts(hosts);
        }
        self
    }

    /// Downloads `request.url`. Reports on `progress` as it goes, ending with a `done` or an `error`
    /// line. On failure nothing is left at the final path, and the temp file is removed unless
    /// `request.resume` is set and the transfer (not the content) failed.
    pub fn fetch(
        &self,
        request: &FetchRequest,
        progress: &mut ProgressWriter,
    ) -> Result<Outcome, FetchError> {
        let result = self
            .try_fetch(request, progress)
            .map_err(|e| e.with_url(&request.url));
        match &result {
            Ok(outcome) => progress.send(&ProgressLine::Done {
                path: outcome
                    .path
                    .as_ref()
                    .map_or_else(|| "-".to_string(), |p| p.display().to_string()),
                bytes: outcome.bytes,
                sha256: outcome.sha256.clone(),
                http_status: Some(outcome.http_status),
            }),
            Err(err) => progress.send(&ProgressLine::Error {
                kind: err.failure_kind(),
                message: err.to_string(),
                http_status: err.http_status(),
                retry_after_s: err.retry_after().map(|wait| wait.as_secs()),
            }),
        }
        result
    }

    fn try_fetch(
        &self,
        request: &FetchRequest,
        progress: &mut ProgressWriter,
    ) -> Result<Outcome, FetchError> {
        let began = Instant::now();
        let target = Target::parse(&request.url)?;
        let expected_sha = request
            .sha256
            .as_deref()
            .map(content::parse_sha256)
            .transpose()?;
        let final_path = match &request.output {
            Output::File(path) => Some(path.as_path()),
            Output::Stdout => None,
        };
        let resume_from = match final_path {
            Some(path) if request.resume && !request.no_partial => {
                std::fs::metadata(temp_path_for(path))
                    .ok()
                    .map(|m| m.len())
                    .filter(|&n| n > 0)
            }
            _ => None,
        };

        let mut range_from = resume_from;
        let (answer, start, total) = loop {
            let answer = self.client.get(&target, range_from)?;
            let code = answer.status();
            let with_status = |e: FetchError| e.with_status(code);
            match (range_from, code) {
                (Some(from), 206) => {
                    let range = content_range(&answer).ok_or_else(|| {
                        with_status(bad_range("206 without a usable Content-Range"))
                    })?;
                    if range.start != Some(from) {
                        self.remove_partial(final_path);
                        return Err(with_status(bad_range(&format!(
                            "asked for bytes from {from}, the server sent from {}; the partial file was removed",
                            range.start.map_or("an unknown offset".to_string(), |s| s.to_string())
                        ))));
                    }
                    let total = range
                        .total
                        .or_else(|| answer.content_length().map(|n| from + n));
                    break (answer, Start::Append, total);
                }
                (Some(from), 416) => {
                    let total = content_range(&answer).and_then(|r| r.total);
                    if total == Some(from) {
                        break (answer, Start::Append, total);
                    }
                    // The partial file does not fit the resource (it changed, or the server lies):
                    // start over.
                    self.remove_partial(final_path);
                    range_from = None;
                    continue;
                }
                (_, 200..=299) => {
                    let total = answer.content_length();
                    break (answer, Start::Fresh, total);
                }
                (_, 400..=599) => {
                    let reason = reason_phrase(code);
                    let hint = match code {
                        404 | 410 => "; check the URL",
                        401 | 403 => {
                            "; the server refused access (credentials or -H headers may help)"
                        }
                        429 | 500..=599 => "; the server may recover, try again later",
                        _ => "",
                    };
                    let retry_after = retry_after(&answer);
                    let asked = retry_after
                        .map(|wait| format!(" (it asked for a retry in {} s)", wait.as_secs()))
                        .unwrap_or_default();
                    return Err(with_status(FetchError::new(
                        FailureKind::HttpStatus,
                        format!("the server answered {code} {reason}{asked}{hint}"),
                    ))
                    .with_retry_after(retry_after));
                }
                _ => {
                    return Err(with_status(FetchError::new(
                        FailureKind::HttpStatus,
                        format!("unexpected answer {code} for a download"),
                    )));
                }
            }
        };
        let http_status = answer.status();

        let mut check = BodyCheck::new(self.expect, self.max_size);
        if !request.digest && expected_sha.is_none() {
            check = check.without_digest();
        }
        check.check_announced(total)?;

        let start_line = || ProgressLine::Start {
            url: redact_credentials(&request.url),
            http_status,
            total,
            temp_path: final_path
                .map(temp_path_for)
                .map(|p| std::path::absolute(&p).unwrap_or(p))
                .map(|p| p.display().to_string()),
        };
        // A brief download whose headers came quickly holds its start line back (see `brief`); the
        // supervisor knows the temp path from the final one.
        let mut held_start = None;
        if self.brief && began.elapsed() < PROGRESS_INTERVAL {
            // Built only if it is sent: most are not.
            held_start = Some(&start_line as &dyn Fn() -> ProgressLine);
        } else {
            progress.send(&start_line());
        }

        let received = (|| {
            let mut sink = match (final_path, &start) {
                (Some(path), Start::Fresh) => Sink::File(FileSink::create(path)?),
                (Some(path), Start::Append) => {
                    let opened = FileSink::append(path, |bytes| check.feed_existing(bytes));
                    match opened {
                        Ok(file) => Sink::File(file),
                        Err(e) => {
                            if e.failure_kind() == FailureKind::Rejected {
                                self.remove_partial(final_path);
                            }
                            return Err(e);
                        }
                    }
                }
                (None, _) => Sink::Stdout(std::io::stdout()),
            };

            let streamed = self.stream(
                answer,
                &mut sink,
                &mut check,
                total,
                progress,
                &mut held_start,
            );
            let finished = streamed.and_then(|()| {
                let rest = check.finish()?;
                sink.write_all(&rest)?;
                sink.flush()?;
                verify(&mut check, total, expected_sha.as_deref())
            });
            if let Err(err) = finished {
                if let Sink::File(file) = sink {
                    if request.resume && err.failure_kind().is_transfer_failure() {
                        drop(file);
                    } else {
                        file.discard();
                    }
                }
                return Err(err);
            }

            if !self.brief {
                progress.send(&ProgressLine::Progress {
                    bytes: check.bytes(),
                    total,
                });
            }
            if let Sink::File(file) = sink {
                file.commit(self.fsync)?;
            }
            Ok(Outcome {
                path: final_path.map(Path::to_path_buf),
                bytes: check.bytes(),
                sha256: check.sha256_hex(),
                http_status,
            })
        })();
        // Failures past the response head name its status: the start line that would have carried it
        // may never have been sent.
        received.map_err(|e| match e.http_status() {
            Some(_) => e,
            None => e.with_status(http_status),
        })
    }

    /// Copies the body to `sink` through `check`, sending rate-limited progress lines, the first of
    /// them preceded by `held_start` if there is one.
    fn stream(
        &self,
        mut answer: Answer<'_>,
        sink: &mut Sink,
        check: &mut BodyCheck,
        total: Option<u64>,
        progress: &mut ProgressWriter,
        held_start: &mut Option<&dyn Fn() -> ProgressLine>,
    ) -> Result<(), FetchError> {
        let mut last_report = Instant::now();
        let mut reported = check.bytes();
        loop {
            // Bytes (or a held start line) not yet reported go out when the body pauses for the rest
            // of the interval, so a supervisor that stops a stalled download knows what had arrived.
            let unreported = check.bytes() != reported || held_start.is_some();
            if unreported && !answer.body_ready_by(last_report + PROGRESS_INTERVAL)? {
                if let Some(start) = held_start.take() {
                    progress.send(&start());
                }
                if check.bytes() != reported {
                    progress.send(&ProgressLine::Progress {
                        bytes: check.bytes(),
                        total,
                    });
                }
                reported = check.bytes();
                last_report = Instant::now();
            }
            let more = answer.read_chunk(|bytes| {
                let ready = check.feed(bytes)?;
                sink.write_all(&ready)
            });
            match more {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(ReadFailure::Sink(e)) => return Err(e),
                Err(ReadFailure::Transfer(e)) => {
                    return Err(transport::body_error(&e, check.bytes(), total))
                }
            }
            if check.bytes() != reported && last_report.elapsed() >= PROGRESS_INTERVAL {
                if let Some(start) = held_start.take() {
                    progress.send(&start());
                }
                progress.send(&ProgressLine::Progress {
                    bytes: check.bytes(),
                    total,
                });
                reported = check.bytes();
                last_report = Instant::now();
            }
        }
    }

    fn remove_partial(&self, final_path: Option<&Path>) {
        if let Some(path) = final_path {
            let _ = std::fs::remove_file(temp_path_for(path));
        }
    }
}

/// The `Retry-After` of a 429 or 503 in delay-seconds, the form servers use for rate limits. The other
/// form, an HTTP date, is ignored: the retry then waits its usual backoff.
fn retry_after(answer: &Answer<'_>) -> Option<Duration> {
    let value = answer.header("retry-after")?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The complete body against its announced length and `--sha256`.
fn verify(
    check: &mut BodyCheck,
    total: Option<u64>,
    expected_sha: Option<&str>,
) -> Result<(), FetchError> {
    if let Some(total) = total {
        if check.bytes() < total {
            return Err(FetchError::new(
                FailureKind::Truncated,
                format!(
                    "the body ended after {} of {total} bytes; try again, with --resume to continue where it stopped",
                    check.bytes()
                ),
            ));
        }
    }
    if let Some(expected) = expected_sha {
        let actual = check.sha256_hex().unwrap_or_default();
        if actual != expected {
            return Err(FetchError::new(
                FailureKind::Rejected,
                format!(
                    "SHA-256 mismatch: expected {expected}, got {actual}; the file was not kept"
                ),
            ));
        }
    }
    Ok(())
}

/// The reason phrase of a status, for messages (HTTP/2 answers carry none of their own).
fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn bad_range(why: &str) -> FetchError {
    FetchError::new(FailureKind::Protocol, format!("cannot resume: {why}"))
}

/// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL` on a 416).
struct ContentRange {
    start: Option<u64>,
    total: Option<u64>,
}

fn content_range(answer: &Answer<'_>) -> Option<ContentRange> {
    let value = answer.header("content-range")?;
    parse_content_range(value)
}

fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.trim().parse().ok()?),
    };
    Some(ContentRange { start, total })
}

/// Entry point of the worker process, given what followed `fetch` on the command line.
pub fn worker_main(args: &FetchOptions) -> ExitCode {
    let mut progress = ProgressWriter::from_env();
    match run_worker(args, &mut progress) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            crate::report_error(format!("fetch: {err}"));
            err.exit().into()
        }
    }
}

fn run_worker(args: &FetchOptions, progress: &mut ProgressWriter) -> Result<Outcome, FetchError> {
    let prepared = default_output(args.output.as_deref(), &args.url).and_then(|output| {
        let fetcher = Fetcher::new(&args.download)?;
        Ok((output, fetcher))
    });
    let (output, fetcher) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            let err = err.with_url(&args.url);
            progress.send(&ProgressLine::Error {
                kind: err.failure_kind(),
                message: err.to_string(),
                http_status: None,
                retry_after_s: None,
            });
            return Err(err);
        }
    };
    let request = FetchRequest {
        url: args.url.clone(),
        output,
        sha256: args.sha256.clone(),
        resume: args.resume,
        no_partial: false,
        digest: true,
    };
    fetcher.fetch(&request, progress)
}

/// `-o PATH`; `-o DIR` (an existing directory, or a path ending in `/`), the URL's last path segment
/// in DIR, as curl's `--output-dir` and wget's `-P` put it; else that name in the current directory.
/// Decided before any request: a DIR that does not exist, or a URL that names no file, fails first.
fn default_output(output: Option<&Path>, url: &str) -> Result<Output, FetchError> {
    let dir = match output {
        Some(path) if path.as_os_str() != "-" && names_a_directory(path) => {
            if !path.is_dir() {
                return Err(FetchError::new(
                    FailureKind::LocalIo,
                    format!(
                        "-o '{}': no such directory (create it first, or give the file's own path)",
                        path.display()
                    ),
                ));
            }
            path
        }
        Some(path) => return Ok(Output::from_path(path)),
        None => Path::new(""),
    };
    match crate::names::name_from_url(url) {
        Some(name) => Ok(Output::File(dir.join(name))),
        None => Err(FetchError::new(
            FailureKind::Usage,
            "cannot name the output file after this URL (its path has no file name); choose one with -o PATH",
        )),
    }
}

/// Whether `-o PATH` names a directory to put the file in: one that exists, or a path ending in `/`.
fn names_a_directory(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().ends_with(b"/") || path.is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        let r = parse_content_range("bytes 100-199/1000").unwrap();
        assert_eq!((r.start, r.total), (Some(100), Some(1000)));
        let r = parse_content_range("bytes */1000").unwrap();
        assert_eq!((r.start, r.total), (None, Some(1000)));
        let r = parse_content_range("bytes 5-9/*").unwrap();
        assert_eq!((r.start, r.total), (Some(5), None));
        assert!(parse_content_range("items 1-2/3").is_none());
        assert!(parse_content_range("bytes x-2/3").is_none());
    }

    #[test]
    fn a_directory_given_to_o_takes_the_file_under_the_urls_name() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let into = |output: &Path| default_output(Some(output), "http://h/x/a.jpg?q=1").ok();
        assert_eq!(
            into(dir.path()),
            Some(Output::File(dir.path().join("a.jpg")))
        );
        let slash = PathBuf::from(format!("{}/", dir.path().display()));
        assert_eq!(into(&slash), Some(Output::File(slash.join("a.jpg"))));
        assert_eq!(
            into(Path::new("b.jpg")),
            Some(Output::File(PathBuf::from("b.jpg")))
        );
        let missing = PathBuf::from(format!("{}/", dir.path().join("nope").display()));
        let err = default_output(Some(&missing), "http://h/a.jpg");
        assert!(
            matches!(&err, Err(e) if e.failure_kind() == FailureKind::LocalIo
                && e.to_string().contains("no such directory")),
            "{err:?}"
        );
        assert!(default_output(Some(dir.path()), "http://h/").is_err());
        Ok(())
    }

    #[test]
    fn dash_means_stdout() {
        assert_eq!(Output::from_path(Path::new("-")), Output::Stdout);
        assert_eq!(
            Output::from_path(Path::new("a.jpg")),
            Output::File(PathBuf::from("a.jpg"))
        );
    }
}
