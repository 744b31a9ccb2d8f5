//! A long-lived batch worker process: takes items one after another on stdin and downloads each with
//! the same HTTP agent, so keep-alive connections are reused. It reports on the progress channel exactly
//! as `fetch` does, one `done` or `error` line closing each item. The batch supervisor SIGKILLs it when an
//! item overruns and starts a fresh one, so nothing here needs a timeout of its own.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde::{Deserialize, Serialize};

use super::resume::Expected;
use super::verify::is_done;
use crate::cli::DownloadOptions;
use crate::exit::Exit;
use crate::fetch::{FailureKind, FetchRequest, Fetcher, Output};
use crate::protocol::{ProgressLine, ProgressWriter};

/// The hidden first argument that puts the binary into batch-worker mode.
pub const WORKER_ARG: &str = "__batch-worker";

/// One assignment, as one JSON line on the worker's stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub url: String,
    pub path: PathBuf,
    pub sha256: Option<String>,
    pub resume: bool,
    /// An earlier run reported this item done: check the file first (which reads all of it, so it
    /// happens here, under the item's deadline, rather than in the supervisor) and fetch only if it
    /// does not match.
    #[serde(default)]
    pub already: Option<Expected>,
}

#[derive(Debug, Parser)]
#[command(name = "watchdog-batch-worker")]
struct WorkerArgs {
    #[command(flatten)]
    download: DownloadOptions,
    /// `watchdog batch --no-sha256`.
    #[arg(long)]
    no_sha256: bool,
}

/// The command-line flags that rebuild `options` (and `--no-sha256` when `digest` is off) in a worker.
pub fn worker_args(options: &DownloadOptions, digest: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![WORKER_ARG.into()];
    if !digest {
        args.push("--no-sha256".into());
    }
    if let Some(t) = options.connect_timeout {
        args.push(format!("--connect-timeout={}ms", t.as_millis().max(1)).into());
    }
    if let Some(max) = options.max_size {
        args.push(format!("--max-size={max}").into());
    }
    if options.expect.is_some() {
        args.push("--expect=image".into());
    }
    for header in &options.headers {
        args.push("--header".into());
        args.push(header.into());
    }
    args.push(format!("--max-redirects={}", options.max_redirects).into());
    if let Some(cacert) = &options.cacert {
        args.push("--cacert".into());
        args.push(cacert.into());
    }
    if options.insecure {
        args.push("--insecure".into());
    }
    if options.fsync {
        args.push("--fsync".into());
    }
    args
}

/// Entry point of the worker process.
pub fn worker_main(args: &[OsString]) -> ExitCode {
    let parsed = match WorkerArgs::try_parse_from(
        std::iter::once(OsString::from("watchdog-batch-worker")).chain(args.iter().cloned()),
    ) {
        Ok(parsed) => parsed,
        Err(err) => return crate::cli::exit_for_usage(err),
    };
    let mut progress = ProgressWriter::from_env();
    let fetcher = match Fetcher::new(&parsed.download) {
        Ok(fetcher) => fetcher.brief(),
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
        let request = FetchRequest {
            url: assignment.url,
            output: Output::File(assignment.path),
            sha256: assignment.sha256,
            resume: assignment.resume,
            digest: !parsed.no_sha256,
        };
        // The fetcher reports the outcome (done or error) on the progress channel itself.
        let _ = fetcher.fetch(&request, &mut progress);
    }
    Exit::Success.into()
}
