//! A long-lived batch worker process: takes items one after another on stdin and downloads each with
//! the same HTTP agent, so keep-alive connections are reused. It reports on the progress channel exactly
//! as `fetch` does, one `done` or `error` line closing each item. The batch supervisor SIGKILLs it when an
//! item overruns and starts a fresh one, so nothing here needs a timeout of its own.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::resume::Expected;
use super::verify::is_done;
use crate::exit::Exit;
use crate::failure::FailureKind;
use crate::fetch::{DownloadOptions, FetchRequest, Fetcher, Output};
use crate::protocol::{ProgressLine, ProgressWriter};

/// The hidden first argument that puts the worker binary into batch-worker mode, with watchdog's
/// version, which the worker checks (see `crate::fetch::worker_binary`).
pub const WORKER_ARG: &str = concat!("__batch-worker@", env!("CARGO_PKG_VERSION"));

/// One assignment, as one JSON line on the worker's stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub url: String,
    pub path: PathBuf,
    pub sha256: Option<String>,
    /// A retry: continue the partial file an earlier attempt left. A first attempt removes any.
    pub resume: bool,
    /// An earlier run reported this item done: check the file first (which reads all of it, so it
    /// happens here, under the item's deadline, rather than in the supervisor) and fetch only if it
    /// does not match.
    #[serde(default)]
    pub already: Option<Expected>,
}

/// What every item of a worker shares, sent once as the one JSON argument after [`WORKER_ARG`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerOptions {
    pub download: DownloadOptions,
    /// Compute the SHA-256 of each body (off with `watchdog batch --no-sha256`).
    pub digest: bool,
}

/// The arguments that start a worker with `options`, computing each body's SHA-256 when `digest` is
/// set.
pub fn worker_args(options: &DownloadOptions, digest: bool) -> Result<Vec<OsString>, String> {
    let options = WorkerOptions {
        download: options.clone(),
        digest,
    };
    let json = serde_json::to_string(&options)
        .map_err(|e| format!("cannot pass the options to a worker: {e}"))?;
    Ok(vec![WORKER_ARG.into(), json.into()])
}

/// The options [`worker_args`] sent.
fn parse_options(args: &[OsString]) -> Result<WorkerOptions, String> {
    let [json] = args else {
        return Err(format!("expected one JSON argument, got {}", args.len()));
    };
    let json = json.to_str().ok_or("the options are not UTF-8")?;
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// Test-only (a build with the `test-hooks` feature): the names in `WATCHDOG_TEST_SILENT_HOSTS` get
/// a resolver that never answers.
#[cfg(feature = "test-hooks")]
fn with_test_hooks(fetcher: Fetcher) -> Fetcher {
    let silent_hosts: Vec<String> = std::env::var(crate::fetch::SILENT_HOSTS_ENV)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    fetcher.silent_hosts(silent_hosts)
}

/// A build for users has no test hooks: the worker's environment changes nothing.
#[cfg(not(feature = "test-hooks"))]
fn with_test_hooks(fetcher: Fetcher) -> Fetcher {
    fetcher
}

/// Entry point of the worker process: `args` are what followed [`WORKER_ARG`].
pub fn worker_main(args: &[OsString]) -> ExitCode {
    let options = match parse_options(args) {
        Ok(options) => options,
        Err(e) => {
            crate::report_error(format!("batch worker: bad options: {e}"));
            return Exit::Failure.into();
        }
    };
    let mut progress = ProgressWriter::from_env();
    let fetcher = match Fetcher::new(&options.download) {
        Ok(fetcher) => with_test_hooks(fetcher.brief().report_phases(progress.try_clone_channel())),
        Err(err) => {
            crate::report_error(&err);
            return err.exit().into();
        }
    };
    let stdin = BufReader::new(std::io::stdin());
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        let assignment: Assignment = match serde_json::from_str(&line) {
            Ok(a) => a,
            Err(e) => {
                progress.send(&ProgressLine::Error {
                    kind: FailureKind::Usage,
                    message: format!("bad assignment: {e}"),
                    http_status: None,
                    retry_after_s: None,
                });
                continue;
            }
        };
        if let Some(expected) = &assignment.already {
            if is_done(&assignment.path, expected).unwrap_or(false) {
                progress.send(&ProgressLine::Present {
                    path: assignment.path.display().to_string(),
                    bytes: expected.bytes,
                });
                continue;
            }
        }
        // A first attempt starts afresh, but like every attempt keeps what a cut-off transfer
        // brought (a truncated body, an image cut short) for its retry to continue with a Range
        // request; the runner removes the partial file when it gives the item up.
        let no_partial = !assignment.resume
            && match std::fs::remove_file(crate::fetch::temp_path_for(&assignment.path)) {
                Ok(()) => true,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            };
        let request = FetchRequest {
            url: assignment.url,
            output: Output::File(assignment.path),
            sha256: assignment.sha256,
            resume: true,
            no_partial,
            digest: options.digest,
        };
        // The fetcher reports the outcome (done or error) on the progress channel itself.
        let _ = fetcher.fetch(&request, &mut progress);
    }
    Exit::Success.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_options_reach_the_worker_whole() {
        let download = DownloadOptions {
            connect_timeout: Some(Duration::from_millis(250)),
            max_size: Some(1 << 20),
            expect: Some(crate::fetch::Expect::Image),
            headers: vec!["Cookie: a=b; c=d".into(), "X-Spaces:  two  ".into()],
            max_redirects: 0,
            cacert: Some(PathBuf::from("/etc/ssl/my ca.pem")),
            insecure: false,
            fsync: true,
            proxy: Some("http://user:p%40ss@127.0.0.1:3128".into()),
            noproxy: Some("localhost,.internal".into()),
            proxy_auth: crate::fetch::ProxyAuth::Digest,
        };
        let args = worker_args(&download, false).expect("serialize");
        assert_eq!(args[0], WORKER_ARG);
        let received = parse_options(&args[1..]).expect("parse");
        assert_eq!(
            received,
            WorkerOptions {
                download,
                digest: false
            }
        );
        assert!(parse_options(&[]).is_err());
        assert!(parse_options(&["--insecure".into()]).is_err());
    }
}
