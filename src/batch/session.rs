//! One `watchdog batch` run: opens the list and the report, resolves the shard, plans every line, and
//! lets the [`Runner`] download what needs downloading.

use std::io::{self, BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::list::ListReader;
use super::plan::{Plan, Planner};
use super::report::{new_run_id, open_report, ReportEntry, ReportPath, ReportWriter};
use super::resume::{DoneIndex, LoadError};
use super::run_stats::RunStats;
use super::runner::{failure, open_list, Items, Limits, Pending, RunEnd, Runner};
use super::shard::Shard;
use super::status::Status;
use super::summary::{Closing, Ending, Summary};
use super::watch::Watch;
use super::BatchOptions;
use crate::exit::Exit;
use crate::progress::{BatchProgress, ItemEnd};

/// The list, the planner and the report, seen by the runner as a stream of items.
struct ListItems {
    reader: ListReader<Box<dyn BufRead>>,
    planner: Planner,
    out_dir: PathBuf,
    report: ReportWriter,
    report_path: PathBuf,
    summary: Summary,
    /// The first error reading the list, writing the report or keeping the index; ends the run with 125.
    fatal: Option<String>,
    progress: Option<BatchProgress>,
    /// The directory the previous item needed, known to exist.
    last_dir: Option<PathBuf>,
    /// In flight, per host, the list's length: for the status lines and the metrics file.
    stats: RunStats,
    watch: Watch,
}

impl ListItems {
    fn record(&mut self, mut entry: ReportEntry) {
        if let Err(e) = self.report.write(&mut entry) {
            if self.fatal.is_none() {
                self.fatal = Some(format!(
                    "cannot write the report '{}': {e}",
                    self.report_path.display()
                ));
            }
        }
        self.summary.record(&entry);
        self.stats.ended(&entry);
        if let Some(progress) = self.progress.as_mut() {
            let end = match entry.status {
                Status::Ok => ItemEnd::Downloaded(entry.bytes.unwrap_or(0)),
                Status::Skipped => ItemEnd::Skipped,
                _ => ItemEnd::Failed,
            };
            let causes = (!entry.status.is_done())
                .then(|| self.summary.counts().render_failures())
                .flatten();
            progress.item_done(end, causes);
        }
    }
}

impl Items for ListItems {
    fn next_item(&mut self) -> Option<Pending> {
        if self.fatal.is_some() {
            return None;
        }
        loop {
            let Some(next) = self.reader.next() else {
                self.stats.list_ended();
                return None;
            };
            let entry = match next {
                Ok(entry) => entry,
                Err(e) => {
                    self.fatal = Some(format!("cannot read the list: {e}"));
                    return None;
                }
            };
            let plan = match self.planner.plan(entry) {
                Ok(plan) => plan,
                Err(e) => {
                    self.fatal = Some(index_failure(&self.out_dir, &e));
                    return None;
                }
            };
            let (line_no, item, path, already) = match plan {
                Plan::NotMine => continue,
                Plan::Report(entry) => {
                    self.stats.item_read();
                    self.record(entry);
                    continue;
                }
                Plan::Fetch {
                    line_no,
                    item,
                    path,
                } => (line_no, item, path, None),
                // The worker checks the file: that reads all of it, which must not stall this loop.
                Plan::CheckDone {
                    line_no,
                    item,
                    path,
                    expected,
                } => (line_no, item, path, Some(expected)),
            };
            self.stats.item_read();
            // Most lists name no directories: the output directory exists, and a mkdir per item
            // would be wasted.
            let parent = Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty() && Some(*p) != self.last_dir.as_deref())
                .map(Path::to_path_buf);
            if let Some(parent) = parent {
                // Component by component, following no link: `link/x.jpg` must not land outside DIR.
                if let Err(e) = crate::fetch::create_dirs_beneath(&self.out_dir, &parent) {
                    self.record(ReportEntry {
                        path: Some(path),
                        error: Some(format!(
                            "cannot create the directory '{}': {e}",
                            self.out_dir.join(&parent).display()
                        )),
                        extra: item.extra,
                        ..ReportEntry::new(&item.url, Status::IoError)
                    });
                    continue;
                }
                self.last_dir = Some(parent);
            }
            return Some(Pending {
                line_no,
                host: super::hosts::host_key(&item.url),
                path: self.out_dir.join(&path),
                rel: path,
                url: item.url,
                sha256: item.sha256,
                attempts: 0,
                first_started: None,
                not_before: Instant::now(),
                already,
                extra: item.extra,
            });
        }
    }

    fn finish(&mut self, entry: ReportEntry) {
        self.record(entry);
    }

    fn held_back(&mut self, host: &str) {
        self.summary.held_back += 1;
        self.stats.held_back(host);
    }

    fn due_at(&self) -> Option<Instant> {
        self.watch.due_at()
    }

    fn tick(&mut self) {
        if self.watch.due_at().is_some() {
            self.watch.tick(&self.summary, &self.stats, Instant::now());
        }
    }

    fn worker_busy(&mut self, slot: usize, url: &str) {
        self.stats.worker_busy(slot);
        if let Some(progress) = self.progress.as_mut() {
            progress.worker_busy(slot, url);
        }
    }

    fn worker_progress(&mut self, slot: usize, bytes: u64, total: Option<u64>) {
        self.stats.worker_progress(slot, bytes);
        if let Some(progress) = self.progress.as_mut() {
            progress.worker_progress(slot, bytes, total);
        }
    }

    fn worker_idle(&mut self, slot: usize) {
        self.stats.worker_idle(slot);
        if let Some(progress) = self.progress.as_mut() {
            progress.worker_idle(slot);
        }
    }
}

/// The message for an index (of names, or of what earlier runs finished) that cannot be kept in its file
/// in the output directory `dir`.
fn index_failure(dir: &Path, err: &io::Error) -> String {
    format!(
        "cannot keep the batch index in '{}': {err} (the output directory must be writable and have \
         room for it: about 64 bytes per list item)",
        dir.display()
    )
}

/// The number of lines of a list file that may be items (not blank, not comments), for the progress
/// bar's, the status lines' and the metrics' total; `None` for stdin or a file that cannot be read.
/// Only counted when one of them is shown.
fn count_items(list: &std::path::Path) -> Option<u64> {
    if list.as_os_str() == "-" {
        return None;
    }
    let file = std::fs::File::open(list).ok()?;
    let mut count = 0;
    let mut reader = io::BufReader::with_capacity(256 * 1024, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Some(count),
            Ok(_) => {
                let text = line.trim_ascii();
                if !text.is_empty()
                    && !text.starts_with(b"#")
                    && !text.starts_with("\u{feff}#".as_bytes())
                {
                    count += 1;
                }
            }
            Err(_) => return None,
        }
    }
}

/// The most workers a batch starts: each is a process with its own connection, and past this many a
/// machine runs out of processes, file descriptors or the server's patience before it gains speed.
const MAX_JOBS: usize = 1024;

/// Runs `watchdog batch`.
pub fn run(mut args: BatchOptions) -> ExitCode {
    let started = Instant::now();
    if args.jobs == 0 {
        return failure("--jobs must be at least 1");
    }
    if args.jobs > MAX_JOBS {
        // Workers start only as items need them, so a --jobs beyond the list's length costs nothing;
        // beyond this cap it would, on a long list.
        crate::report_error(format!(
            "batch: --jobs {} is more than a batch runs at once: using {MAX_JOBS}",
            args.jobs
        ));
        args.jobs = MAX_JOBS;
    }
    let shard = match &args.shard {
        None => Shard::ALL,
        Some(spec) => match Shard::resolve(spec, args.shard_count, |name| std::env::var(name).ok())
        {
            Ok(shard) => shard,
            Err(e) => return failure(format!("--shard: {e}")),
        },
    };
    // The workers' binary is checked before anything is created: without it, or with one of another
    // version, nothing can be fetched.
    if let Err(e) = crate::fetch::worker_binary_of_this_version() {
        return failure(e);
    }
    if std::fs::metadata(&args.out).is_ok_and(|m| !m.is_dir()) {
        return failure(format!(
            "--out '{}': not a directory (give the directory the files go into)",
            args.out.display()
        ));
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        return failure(format!(
            "cannot create the output directory '{}': {e}",
            args.out.display()
        ));
    }
    // Before any request: a directory no file can be created in would fail every item, after its
    // download (the default report inside it fails on its own; --report elsewhere does not).
    if let Err(e) = crate::batch::spill::create_unlinked_file(&args.out) {
        return failure(format!(
            "--out '{}': cannot create files there: {e}",
            args.out.display()
        ));
    }
    let report = match &args.report {
        Some(path) => ReportPath::Given(path.clone()),
        None => ReportPath::Default(args.out.join("report.jsonl")),
    };
    let report_path = report.path().to_path_buf();
    let opened = match open_report(&report, &new_run_id()) {
        Ok(opened) => opened,
        Err(message) => return failure(message),
    };
    let report_is_stream = opened.earlier.is_none();
    let done = match opened.earlier {
        Some(earlier) => match DoneIndex::from_report(earlier, &args.out) {
            Ok(done) => done,
            Err(LoadError::Report(e)) => {
                return failure(format!(
                    "cannot read the earlier report '{}': {e}",
                    report_path.display()
                ))
            }
            Err(LoadError::Index(e)) => return failure(index_failure(&args.out, &e)),
        },
        None => {
            if !args.quiet {
                crate::report_error(format!(
                    "batch: the report '{}' is a stream (standard output, a pipe or a device): it \
                     is written, never read back, so items an earlier run finished are not skipped",
                    report_path.display()
                ));
            }
            DoneIndex::new(&args.out)
        }
    };
    let report = opened.writer;
    let planner = match Planner::new(shard, &args.out, &report_path, done) {
        Ok(planner) => planner,
        Err(e) => return failure(index_failure(&args.out, &e)),
    };
    let list = match open_list(&args.list) {
        Ok(list) => list,
        Err(e) => {
            return failure(format!(
                "cannot open the list '{}': {e}",
                args.list.display()
            ))
        }
    };
    let on_terminal = io::stderr().is_terminal();
    let show_progress = !args.quiet && on_terminal;
    let status_lines = !args.quiet && !on_terminal && args.progress_interval.is_some();
    // A shard takes an unknown part of the list, so its total is unknown too (until it ended).
    let listed = (show_progress || status_lines || args.metrics.is_some())
        .then(|| {
            args.shard
                .is_none()
                .then(|| count_items(&args.list))
                .flatten()
        })
        .flatten();
    let progress = show_progress.then(|| BatchProgress::new(listed));
    let stats = RunStats::new(listed, args.metrics.is_some());
    let mut watch = Watch::new(
        args.progress_interval,
        status_lines,
        args.metrics.clone(),
        &stats,
    );
    // The file is written at once: a path that cannot take it fails the run before any download.
    if let Err(e) = watch.write_metrics(&Summary::new(), &stats, None) {
        return failure(e);
    }
    let mut items = ListItems {
        reader: ListReader::new(list),
        planner,
        out_dir: args.out.clone(),
        report,
        report_path: report_path.clone(),
        summary: Summary::new(),
        fatal: None,
        progress,
        last_dir: None,
        stats,
        watch,
    };
    let limits = Limits {
        jobs: args.jobs,
        timeout: args.timeout,
        stall: args.stall,
        retries: args.retries,
        host_failures: args.host_failures,
        per_host: args.per_host,
        min_speed: args
            .min_speed
            .map(|rate| (rate, args.min_speed_window.max(Duration::from_millis(100)))),
    };
    let runner = match Runner::new(&args, limits, &mut items) {
        Ok(runner) => runner,
        Err(e) => return failure(e),
    };
    let end = runner.run();
    if let Some(progress) = items.progress.as_mut() {
        progress.finish();
    }
    let ending = match (&items.fatal, end) {
        (Some(fatal), _) => {
            crate::report_error(format!("batch: {fatal}"));
            Ending::Stopped
        }
        (None, RunEnd::Interrupted(signal)) => Ending::Interrupted(signal),
        (None, RunEnd::Complete) => Ending::Finished,
    };
    // -q hides progress, not failures: a quiet run that succeeded says nothing, one that did not
    // says what happened (what cron mails and CI logs show).
    // A run stopped before any item ended was stopped by bad input (a list that cannot be read): its
    // one error line says everything.
    let success = ending == Ending::Finished && items.summary.failed() == 0;
    items.watch.finish(&items.summary, &items.stats, success);
    let stopped_at_once = ending == Ending::Stopped && items.summary.total() == 0;
    let quiet_success = args.quiet && ending == Ending::Finished && items.summary.failed() == 0;
    if !stopped_at_once && !quiet_success {
        let listed = match ending {
            Ending::Finished => None,
            _ => args
                .shard
                .is_none()
                .then(|| count_items(&args.list))
                .flatten(),
        };
        crate::say(items.summary.render_closing(&Closing {
            ending,
            elapsed: started.elapsed(),
            listed,
            report: (!report_is_stream).then_some(report_path.as_path()),
            report_given: args.report.is_some(),
            out: &args.out,
        }));
    }
    match ending {
        Ending::Stopped => Exit::Failure.into(),
        Ending::Interrupted(signal) => Exit::Signal(signal).into(),
        Ending::Finished => items.summary.exit().into(),
    }
}
