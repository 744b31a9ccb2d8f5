//! `watchdog report`: what a set of batch reports adds up to, item by item.
//!
//! A batch over a bad network ends with some items done and some not, over several shards and several
//! reruns, each appending to its report. This reads any number of those reports and keeps, for every
//! item, its *latest outcome* (see [`REPORT_HELP`] for the rule), then sums them up: counts per status,
//! per host, bytes, and what is still missing; or, with `--failed`, lists the missing items in a form
//! `watchdog batch` takes back, each with its path, so that a retry lands where the first try would
//! have.
//!
//! An item is identified as the resume index of batch mode identifies it, by
//! [`crate::batch::report::item_key`]. Memory stays flat for reports of any length: the reports are
//! read twice as streams, one bounded line at a time. The first pass records, per item, the rank
//! ([`rank`]) and the ordinal of the line that holds its latest outcome, in a [`SpillMap`] (in
//! memory up to 32,768 items, in an unlinked file in the index directory beyond that, as batch
//! mode's own indexes); the second pass takes each item's outcome from
//! exactly that line. Each file is read up to the length it had when the first pass opened it, so a
//! report that a running batch is still appending to is read as one consistent snapshot. With
//! `--list`, a pass between the two plans the list as batch would (the same [`Planner`]: names,
//! shard, duplicates) and looks every item's key up: what no report mentions was never tried,
//! `missing`; an item the reports mention is marked as listed in the same probe, so that the last pass
//! can count the reports' items that are not on the list. Every step probes the index at most once per
//! line, and the list's items that no report mentions mostly not at all: a [`filter`] of the reports'
//! keys, in memory, rules them out once the index is on disk.
//!
//! [`read`] reads the reports, [`tally`] counts the outcomes, [`render`] prints them, [`html`] draws
//! them as a page (`--html`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::batch::list::{json_line, ListReader};
use crate::batch::metrics::replace_file;
use crate::batch::plan::{Plan, Planner};
use crate::batch::report::item_key;
use crate::batch::resume::DoneIndex;
use crate::batch::runner::open_list;
use crate::batch::shard::Shard;
use crate::batch::spill::SpillMap;
use crate::batch::status::Status;
use crate::batch::timestamp::{format_utc_millis, parse_utc_millis};
use crate::exit::Exit;

use self::filter::KeyFilter;
use self::read::{for_each_line, Line, Source};
use self::tally::{retry_line, ListCounts, Outcome};

mod filter;
mod html;
mod read;
mod render;
mod tally;

/// What `watchdog report` is asked to do, as plain data (the command line converts to it once).
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// The reports, oldest run first.
    pub files: Vec<PathBuf>,
    /// Print the items still not ok that a retry may fix as a list for `watchdog batch`.
    pub failed: bool,
    /// With `failed`: also the items a retry will not fix.
    pub include_permanent: bool,
    /// The summary as one JSON object.
    pub json: bool,
    /// Where the on-disk index goes past the in-memory limit.
    pub index_dir: Option<PathBuf>,
    /// The list the batches were given: its items no report mentions are `missing`.
    pub list: Option<PathBuf>,
    /// `K/N` or `auto`: check one shard's share of the list.
    pub shard: Option<String>,
    /// The shard count for `--shard auto` under a Kubernetes Indexed Job.
    pub shard_count: Option<u32>,
    /// Write the outcome as Prometheus metrics to this file.
    pub metrics: Option<PathBuf>,
    /// Write the outcome as a web page to this file.
    pub html: Option<PathBuf>,
}

/// The list to reconcile against, and the share of it the reports should cover.
pub struct ListScope {
    pub path: PathBuf,
    pub shard: Shard,
    /// The output directory the batches wrote to, as far as the names of items depend on it: the
    /// reports inside it took their names before any item could.
    pub out_dir: PathBuf,
}

/// The rule, the output and the exit codes, shown by `report --help` and its man page.
pub const REPORT_HELP: &str = "\
Examples:
  watchdog report --list urls.txt /data/imgs/report-*.jsonl
      Every item of the list accounted for: counts per status and per host, bytes, and the items still missing, including those no report mentions (never tried: a killed run, a shard that never ran).
  watchdog report --failed --list urls.txt imgs/report-*.jsonl > retry.jsonl
  watchdog batch retry.jsonl --out imgs --report imgs/report-retry.jsonl
      List the items not done that a retry may fix, or never tried (JSON lines with url, path and the list line's other keys; the summary goes to stderr), and fetch exactly those, each to the path batch gave it: the same --out as before, since the paths are relative to it.
  watchdog report --list urls.txt --shard 3/16 /data/imgs/report-3.jsonl
      Check one shard's report against its share of the list.
  watchdog report --json report.jsonl
      The summary as one JSON object, for a pipeline.
  ssh host cat imgs/report.jsonl | watchdog report -
      Read a report from stdin.

Latest outcome:
  An item is its path and URL, as batch keys it (for resuming, and for --list). Of an item's lines, the one with the latest finished_at is its outcome (a line of an older watchdog, without one, is older than any line with one; lines of the same millisecond, or without a time, count in the order read: files in the order given, each top to bottom), so the order of the files does not matter. A skipped line never replaces another outcome: it says the item was complete from an earlier run, or a duplicate of a line whose own outcome stands. An item counts as done when its outcome is ok or skipped.

The list:
  Without --list, only the items the reports mention are seen: the summary says how many, and an item never tried (the run was killed, a shard never ran) is not counted anywhere. With --list, the list is read as batch reads it (the same names, duplicates and shards: --shard and --shard-count as batch takes them), and every item of it (of the shard) that no report mentions is missing (never tried); an invalid list line no report mentions counts as invalid. Items are named as a batch whose --out is the first FILE's directory names them. Items of the reports that are not on the list (or not in the shard) are counted and named in the summary: reports of another list, or of a batch whose --out was another directory.

Output:
  A summary on stdout (on stderr with --failed): the counts of the latest outcomes per status (and missing, never tried), per host (the 10 with the most items; --json has up to 10,000), bytes of the items done, and the items not done grouped by cause (status, and an http_error's code): first those a retry may fix (timeout, stall, 5xx, 429, connection refused, never tried: the rule batch retries by), then those it will not (a 404, a body refused, a local I/O error), each cause with its count and its first 3 items as aligned columns: path, URL, error.
  A line that is not a report line (not JSON, a missing or mistyped field, longer than 64 KiB, the incomplete last line of a report still being written) is named on stderr with its file and line number, and skipped. A file with lines but not one report line (the URL list given by mistake) is an error: not a batch report.
  --failed writes one JSON object per item not done that a retry may fix, {\"url\":...,\"path\":...} and the other keys its list line had (the report's extra), those of the reports first, then those never tried, in list order; --include-permanent adds those a retry will not fix. Left out, with a note on stderr: invalid ones, whose list line must be fixed first, and those whose URL had credentials, which reports never keep (***); a never-tried item is written with the list's own URL.
  --json writes the summary as one object; its not_done lists every item not done: url, path, status, http_status, error, retry_may_fix. --metrics FILE also writes the outcome in the Prometheus text format, as batch --metrics does (without what only a running batch knows: in flight, the circuit breaker; the times are the items' earliest start and latest finished_at). --html FILE also writes one self-contained page (no network needed): bars per status and per host, items over time, the slowest hosts, and a table of the first 1000 items not done, filterable (page.html#status=timeout&q=TEXT sets the filter), saying how many it left out.

Memory:
  Flat over reports and lists of any length: past 32,768 items the indexes move to unnamed files in --index-dir (the first FILE's directory unless given), about 32 to 64 bytes of disk per item.

Exit status:
  0        every item is done (ok or skipped), and every line was a report
           line; without --list, only the items the reports mention are
           known to be done
  1        at least one item's latest outcome is a failure or invalid, or
           (with --list) an item was never tried
  2        every item is done, but some lines could not be read (named on
           stderr)
  125      watchdog itself failed: a bad option, a FILE or LIST that cannot
           be read, a FILE that is not a regular file or not a batch report,
           an index directory that cannot be written, stdout closed";

/// Unreadable lines named on stderr per file; the rest are counted.
const BAD_LINES_NAMED: u64 = 20;

/// Runs `watchdog report`.
pub fn run(args: ReconcileOptions) -> ExitCode {
    let index_dir = args.index_dir.clone().unwrap_or_else(|| {
        args.files
            .first()
            .and_then(|f| f.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let scope = match &args.list {
        None if args.shard.is_some() || args.shard_count.is_some() => {
            crate::report_error("report: --shard checks a share of the list: give --list LIST too");
            return Exit::Failure.into();
        }
        None => None,
        Some(list) => {
            let shard = match &args.shard {
                None => Shard::ALL,
                Some(spec) => {
                    match Shard::resolve(spec, args.shard_count, |name| std::env::var(name).ok()) {
                        Ok(shard) => shard,
                        Err(e) => {
                            crate::report_error(format!("report: --shard: {e}"));
                            return Exit::Failure.into();
                        }
                    }
                }
            };
            let out_dir = args
                .files
                .first()
                .and_then(|f| f.parent())
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            Some(ListScope {
                path: list.clone(),
                shard,
                out_dir,
            })
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let failed_out: Option<&mut dyn Write> = if args.failed { Some(&mut out) } else { None };
    let not_done = if args.json {
        match crate::batch::spill::create_unlinked_file(&index_dir) {
            Ok(file) => Some(file),
            Err(e) => {
                crate::report_error(format!(
                    "report: cannot keep the list of items not done in '{}': {e} (give \
                     --index-dir a writable directory)",
                    index_dir.display()
                ));
                return Exit::Failure.into();
            }
        }
    } else {
        None
    };
    let mut outcome = match reconcile(
        &args.files,
        scope.as_ref(),
        &index_dir,
        Wanted {
            failed: failed_out,
            include_permanent: args.include_permanent,
            not_done,
        },
        args.html.is_some(),
        &mut |message| crate::report_error(message),
    ) {
        Ok(outcome) => outcome,
        Err(message) => {
            crate::report_error(message);
            return Exit::Failure.into();
        }
    };
    let write_summary = |outcome: &mut Outcome, to: &mut dyn Write| {
        if args.json {
            outcome.write_json(to)
        } else {
            to.write_all(outcome.render_text().as_bytes())
        }
    };
    let written = if args.failed {
        out.flush().and_then(|()| {
            let stderr = io::stderr();
            let mut err = stderr.lock();
            outcome.write_retry_notes(&mut err)?;
            write_summary(&mut outcome, &mut err)
        })
    } else {
        write_summary(&mut outcome, &mut out).and_then(|()| out.flush())
    };
    if let Err(e) = written {
        crate::report_error(format!("cannot write the output: {e}"));
        return Exit::Failure.into();
    }
    if let Some(path) = &args.metrics {
        if let Err(e) = outcome.metrics().write_to(path) {
            crate::report_error(format!(
                "report: cannot write the metrics file '{}': {e}",
                path.display()
            ));
            return Exit::Failure.into();
        }
    }
    if let Some(path) = &args.html {
        let generated = format_utc_millis(std::time::SystemTime::now());
        let page = outcome.render_html(&generated);
        if let Err(e) = replace_file(path, page.as_bytes()) {
            crate::report_error(format!(
                "report: cannot write the page '{}': {e}",
                path.display()
            ));
            return Exit::Failure.into();
        }
    }
    outcome.exit().into()
}

/// Where an outcome stands in the order of outcomes: a failure or success beats any `skipped` line
/// (which only says the item was done earlier, or is a duplicate), then the later `finished_at` wins
/// (a line without one, from before watchdog wrote it, is older than any with one), then the line read
/// later. The second word is the line's ordinal.
fn rank(entry: &crate::batch::report::ReportEntry) -> u64 {
    const REAL_OUTCOME: u64 = 1 << 63;
    let millis = entry
        .finished_at
        .as_deref()
        .and_then(parse_utc_millis)
        .unwrap_or(0)
        .min(REAL_OUTCOME - 1);
    if entry.status == Status::Skipped {
        millis
    } else {
        REAL_OUTCOME | millis
    }
}

/// What [`reconcile`] writes beside the outcome it returns.
pub struct Wanted<'a> {
    /// The retry list (`--failed`): the items not done that a retry may fix.
    pub failed: Option<&'a mut dyn Write>,
    /// Also the items a retry will not fix (`--include-permanent`).
    pub include_permanent: bool,
    /// A file for every item not done, as JSON lines (`--json`): see [`Outcome::not_done`].
    pub not_done: Option<std::fs::File>,
}

/// The bit of a latest line's ordinal that says the item is on the list (pass 2): ordinals count
/// lines, far below it.
const LISTED: u64 = 1 << 63;

/// Marks the item `key` of the list as listed in `latest`; returns whether no report mentions it
/// (it was never tried). A key `reported` rules out is not looked up.
fn mark_listed(
    latest: &mut SpillMap<(u64, u64)>,
    reported: Option<&KeyFilter>,
    key: u64,
) -> io::Result<bool> {
    if reported.is_some_and(|filter| !filter.may_hold(key)) {
        return Ok(true);
    }
    let old = latest.update(key, |old| {
        old.filter(|(_, at)| at & LISTED == 0)
            .map(|(rank, at)| (rank, at | LISTED))
    })?;
    Ok(old.is_none())
}

/// Reads `files` (see the module documentation), and with `scope` the list, writes what `wanted`
/// asks for, and names every unreadable line through `warn`. Fails when a file cannot be read, holds
/// lines but not one report line (a list given by mistake), or the index cannot be kept.
pub fn reconcile(
    files: &[PathBuf],
    scope: Option<&ListScope>,
    index_dir: &Path,
    wanted: Wanted,
    page: bool,
    warn: &mut dyn FnMut(String),
) -> Result<Outcome, String> {
    let Wanted {
        mut failed,
        include_permanent,
        not_done,
    } = wanted;
    let index_error = |e: io::Error| {
        format!(
            "cannot keep the index of items in '{}': {e} (give --index-dir a writable directory with \
             room for about 64 bytes per item)",
            index_dir.display()
        )
    };
    let mut sources = Vec::with_capacity(files.len());
    // Per item: the rank of its latest line and the line's ordinal.
    let mut latest: SpillMap<(u64, u64)> = SpillMap::new(index_dir);
    let mut outcome = Outcome {
        reports: files.len(),
        page: page.then(Box::default),
        not_done: not_done.map(io::BufWriter::new),
        ..Outcome::default()
    };
    // Pass 1: the ordinal of each item's latest line, and every unreadable line named.
    let mut ordinal = 0u64;
    for path in files {
        let (source, file) = Source::open(path, index_dir)?;
        let mut named = 0u64;
        let mut bad_here = 0u64;
        let mut entries_here = 0u64;
        // Held back until the file shows a report line: a file without one is an error of its own.
        let mut held: Vec<String> = Vec::new();
        let mut first_bad: Option<String> = None;
        for_each_line(file, &source, &mut |line_no, line, last| {
            ordinal += 1;
            outcome.lines += 1;
            match line {
                Line::Blank => {}
                Line::Entry(entry) => {
                    entries_here += 1;
                    for warning in held.drain(..) {
                        warn(warning);
                    }
                    let rank = rank(&entry);
                    latest
                        .update(entry.key(), |old| match old {
                            Some((before, _)) if before > rank => None,
                            _ => Some((rank, ordinal)),
                        })
                        .map_err(index_error)?;
                }
                Line::Bad(reason) => {
                    bad_here += 1;
                    first_bad.get_or_insert_with(|| format!("line {line_no}: {reason}"));
                    if named < BAD_LINES_NAMED {
                        named += 1;
                        let reason = if last && source.ends_mid_line {
                            "incomplete last line (a batch is still writing this report, or was \
                             killed while writing it)"
                                .to_string()
                        } else {
                            reason
                        };
                        let warning =
                            format!("{}: line {line_no}: {reason}; skipped", source.name());
                        if entries_here == 0 {
                            held.push(warning);
                        } else {
                            warn(warning);
                        }
                    }
                }
            }
            Ok(())
        })?;
        if entries_here == 0 && bad_here > 0 {
            return Err(format!(
                "report: '{}': not a batch report: none of its {bad_here} lines is a report line ({})",
                source.name(),
                first_bad.unwrap_or_default()
            ));
        }
        if bad_here > named {
            warn(format!(
                "{}: {} more lines that are not report lines; skipped",
                source.name(),
                bad_here - named
            ));
        }
        outcome.bad_lines += bad_here;
        sources.push(source);
    }
    let mut write_failed = |line: &str| -> Result<(), String> {
        if let Some(out) = failed.as_mut() {
            writeln!(out, "{line}").map_err(|e| format!("cannot write the list: {e}"))?;
        }
        Ok(())
    };
    // Pass 2, with --list: the list, keyed as batch keys it; what no report mentions is missing. An
    // item the reports mention is marked as listed where its latest line is noted (one probe does
    // both), to find the reports' items that are not on the list.
    if let Some(scope) = scope {
        outcome.list = Some(ListCounts {
            path: scope.path.display().to_string(),
            shard: (scope.shard != Shard::ALL).then(|| scope.shard.to_string()),
            ..ListCounts::default()
        });
        let list_error =
            |e: io::Error| format!("cannot read the list '{}': {e}", scope.path.display());
        let list = open_list(&scope.path).map_err(list_error)?;
        // The planner batch uses: the same names, shard and duplicates, so the same keys. The
        // reports inside the output directory took their names first, as each batch's did.
        let mut planner = Planner::new(
            scope.shard,
            &scope.out_dir,
            Path::new(""),
            DoneIndex::new(index_dir),
        )
        .map_err(index_error)?;
        for report in files {
            planner
                .reserve(&scope.out_dir, report)
                .map_err(index_error)?;
        }
        // Most items of a list no report mentions are ruled out in memory, without a read of
        // the index.
        let reported = KeyFilter::of_spilled(&latest).map_err(index_error)?;
        for entry in ListReader::new(list) {
            let entry = entry.map_err(list_error)?;
            match planner.plan(entry).map_err(index_error)? {
                Plan::NotMine => {}
                Plan::Report(entry) => {
                    // A duplicate is its first line's item, counted there.
                    if entry.status == Status::Skipped {
                        continue;
                    }
                    if let Some(list) = outcome.list.as_mut() {
                        list.items += 1;
                    }
                    if mark_listed(&mut latest, reported.as_ref(), entry.key())
                        .map_err(index_error)?
                    {
                        if let Some(list) = outcome.list.as_mut() {
                            list.invalid_unreported += 1;
                        }
                        outcome.record(&entry);
                        outcome.unlisted_invalid += 1;
                    }
                }
                Plan::Fetch { item, path, .. } | Plan::CheckDone { item, path, .. } => {
                    if let Some(list) = outcome.list.as_mut() {
                        list.items += 1;
                    }
                    let key = item_key(&path, &item.url);
                    if !mark_listed(&mut latest, reported.as_ref(), key).map_err(index_error)? {
                        continue;
                    }
                    outcome.record_never_tried(&item.url, &path);
                    // The list's own URL: a retry list is a list, as secret as the one it came from.
                    match json_line(&item.url, Some(&path), item.extra.as_ref()) {
                        Some(line) => write_failed(&line)?,
                        None => outcome.unlisted_invalid += 1,
                    }
                }
            }
        }
    }
    // Pass 3: each item's outcome, from its latest line.
    let mut ordinal = 0u64;
    for source in &sources {
        let file = source.reopen()?;
        for_each_line(file, source, &mut |_, line, _| {
            ordinal += 1;
            let Line::Entry(entry) = line else {
                return Ok(());
            };
            let Some((_, at)) = latest.get(entry.key()).map_err(index_error)? else {
                return Ok(());
            };
            if at & !LISTED != ordinal {
                return Ok(());
            }
            outcome.record(&entry);
            if at & LISTED == 0 {
                if let Some(list) = outcome.list.as_mut() {
                    list.not_on_list += 1;
                }
            }
            if entry.status.is_done() {
                return Ok(());
            }
            match retry_line(&entry, include_permanent) {
                Ok(line) => write_failed(&line)?,
                Err("credentials") => outcome.unlisted_credentials += 1,
                Err("permanent") => outcome.unlisted_permanent += 1,
                Err(_) => outcome.unlisted_invalid += 1,
            }
            Ok(())
        })?;
    }
    if let Some(e) = outcome.not_done_error.take() {
        return Err(format!(
            "cannot keep the list of items not done in '{}': {e}",
            index_dir.display()
        ));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::report::ReportEntry;

    fn entry(url: &str, path: &str, status: Status) -> String {
        let mut entry = ReportEntry::new(url, status);
        entry.path = Some(path.to_string());
        entry.attempts = 1;
        if status == Status::Ok {
            entry.bytes = Some(1000);
        }
        entry.to_json_line()
    }

    fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
        let path = dir.join(name);
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text).unwrap_or_default();
        path
    }

    fn run(files: &[PathBuf], dir: &Path) -> (Outcome, String, Vec<String>) {
        let mut list = Vec::new();
        let mut warnings = Vec::new();
        let wanted = Wanted {
            failed: Some(&mut list),
            include_permanent: true,
            not_done: None,
        };
        let outcome = reconcile(files, None, dir, wanted, false, &mut |w| warnings.push(w));
        let outcome = outcome.unwrap_or_else(|e| panic!("{e}"));
        (
            outcome,
            String::from_utf8(list).unwrap_or_default(),
            warnings,
        )
    }

    #[test]
    fn the_latest_line_wins_but_skipped_never_replaces_an_outcome() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = write(
            dir.path(),
            "r1.jsonl",
            &[
                entry("https://h/a", "a", Status::Timeout),
                entry("https://h/b", "b", Status::Ok),
                entry("https://h/c", "c", Status::HttpError),
                entry("https://h/c", "c", Status::Skipped),
                entry("https://h/d", "d", Status::Skipped),
                entry("https://h/e", "e", Status::Ok),
            ],
        );
        let second = write(
            dir.path(),
            "r2.jsonl",
            &[
                entry("https://h/a", "a", Status::Ok),
                entry("https://h/b", "b", Status::Skipped),
                entry("https://h/d", "d", Status::Stalled),
                entry("https://h/e", "e", Status::DnsError),
                // Another path is another item.
                entry("https://h/a", "a-2", Status::Truncated),
            ],
        );
        let (outcome, list, warnings) = run(&[first, second], dir.path());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(outcome.items(), 6);
        assert_eq!(outcome.count(Status::Ok), 2, "a and b");
        assert_eq!(
            outcome.count(Status::HttpError),
            1,
            "c: the duplicate's skip"
        );
        assert_eq!(outcome.count(Status::Stalled), 1, "d: skipped, then failed");
        assert_eq!(outcome.count(Status::DnsError), 1, "e: ok, then failed");
        assert_eq!(outcome.count(Status::Truncated), 1);
        assert_eq!(outcome.count(Status::Skipped), 0);
        assert_eq!(outcome.bytes, 2000);
        assert_eq!(outcome.exit(), Exit::SomeFailed);
        assert_eq!(
            list,
            "{\"url\":\"https://h/c\",\"path\":\"c\"}\n{\"url\":\"https://h/d\",\"path\":\"d\"}\n\
             {\"url\":\"https://h/e\",\"path\":\"e\"}\n{\"url\":\"https://h/a\",\"path\":\"a-2\"}\n"
        );
        Ok(())
    }

    #[test]
    fn unreadable_lines_are_named_and_skipped() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("r.jsonl");
        let text = format!(
            "{}\nnot json\n\n{{\"url\":\"https://h/x\"}}\n{}\n{{\"url\":\"https://h/c\",\"pa",
            entry("https://h/a", "a", Status::Ok),
            entry("https://h/b", "b", Status::Ok),
        );
        std::fs::write(&path, text)?;
        let (outcome, list, warnings) = run(&[path], dir.path());
        assert_eq!(outcome.items(), 2);
        assert_eq!(outcome.bad_lines, 3);
        assert_eq!(outcome.exit(), Exit::UnreadableLines);
        assert!(list.is_empty());
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("r.jsonl: line 2: not a report line"));
        assert!(warnings[1].contains("line 4: not a report line: missing field"));
        assert!(warnings[2].contains("line 6: incomplete last line"));
        Ok(())
    }

    #[test]
    fn invalid_items_and_credentials_are_not_listed_for_a_retry() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = write(
            dir.path(),
            "r.jsonl",
            &[
                ReportEntry::new("ftp://h/x", Status::Invalid).to_json_line(),
                entry("https://u:pw@h/a", "a", Status::HttpError),
                entry("https://h/b\"q", "b\tc", Status::Timeout),
            ],
        );
        let (outcome, list, _) = run(&[path], dir.path());
        assert_eq!(outcome.missing(), 3);
        assert_eq!(outcome.unlisted_invalid, 1);
        assert_eq!(outcome.unlisted_credentials, 1);
        assert_eq!(list, "{\"url\":\"https://h/b\\\"q\",\"path\":\"b\\tc\"}\n");
        let text = outcome.render_text();
        assert!(
            text.contains("3 items in 1 report (3 lines): 1 timeout"),
            "{text}"
        );
        assert!(text.contains("https://***@h/a"), "{text}");
        // Not the password anywhere, leaving out the random temp directory the text names.
        let shown = text.replace(&dir.path().display().to_string(), "DIR");
        assert!(!shown.contains("pw"), "{text}");
        Ok(())
    }

    #[test]
    fn a_long_report_is_indexed_on_disk_and_still_exact() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut first = Vec::new();
        let mut second = Vec::new();
        for i in 0..40_000u32 {
            let url = format!("https://h{}/{i}", i % 3);
            first.push(entry(&url, &format!("{i}"), Status::Timeout));
            if i % 4 != 0 {
                second.push(entry(&url, &format!("{i}"), Status::Ok));
            }
        }
        let files = [
            write(dir.path(), "a.jsonl", &first),
            write(dir.path(), "b.jsonl", &second),
        ];
        let (outcome, list, _) = run(&files, dir.path());
        assert_eq!(outcome.items(), 40_000);
        assert_eq!(outcome.count(Status::Ok), 30_000);
        assert_eq!(outcome.count(Status::Timeout), 10_000);
        assert_eq!(list.lines().count(), 10_000);
        assert_eq!(outcome.hosts.len(), 3);
        // The index file is unlinked: nothing left behind but the reports.
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 2);
        let json: serde_json::Value =
            serde_json::from_str(&outcome.render_json()).unwrap_or_default();
        assert_eq!(json["items"], 40_000);
        assert_eq!(json["statuses"]["timeout"], 10_000);
        assert_eq!(json["missing"], 10_000);
        assert_eq!(json["exit_code"], 1);
        Ok(())
    }

    #[test]
    fn a_list_checked_against_a_report_indexed_on_disk_finds_exactly_the_items_never_tried(
    ) -> io::Result<()> {
        // 45,000 report items: past the in-memory index, so the list's items are ruled out by the
        // filter of the index on disk, and looked up there when it cannot rule them out.
        let dir = tempfile::tempdir()?;
        let list = dir.path().join("list.txt");
        let urls: Vec<String> = (0..60_000).map(|i| format!("https://h/{i}.jpg")).collect();
        std::fs::write(&list, urls.join("\n") + "\n")?;
        let mut lines: Vec<String> = (20_000..60_000)
            .map(|i| entry(&urls[i], &format!("{i}.jpg"), Status::Ok))
            .collect();
        lines
            .extend((0..5_000).map(|i| entry(&format!("https://h/x{i}.jpg"), "x.jpg", Status::Ok)));
        let report = write(dir.path(), "report.jsonl", &lines);
        let scope = ListScope {
            path: list,
            shard: Shard::ALL,
            out_dir: dir.path().to_path_buf(),
        };
        let mut failed = Vec::new();
        let wanted = Wanted {
            failed: Some(&mut failed),
            include_permanent: false,
            not_done: None,
        };
        let outcome = reconcile(
            &[report],
            Some(&scope),
            dir.path(),
            wanted,
            false,
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let counts = outcome
            .list
            .as_ref()
            .map(|list| (list.items, list.missing, list.not_on_list));
        assert_eq!(counts, Some((60_000, 20_000, 5_000)));
        assert_eq!(outcome.never_tried(), 20_000);
        assert_eq!(outcome.count(Status::Ok), 45_000);
        let failed = String::from_utf8(failed).unwrap_or_default();
        let retried: Vec<&str> = failed.lines().collect();
        let expected: Vec<String> = (0..20_000)
            .map(|i| format!("{{\"url\":\"{}\",\"path\":\"{i}.jpg\"}}", urls[i]))
            .collect();
        assert_eq!(retried, expected);
        // Nothing left behind but the list and the report.
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 2);
        Ok(())
    }

    fn stamped(url: &str, path: &str, status: Status, finished_at: &str) -> String {
        let mut entry: ReportEntry = serde_json::from_str(&entry(url, path, status))
            .unwrap_or_else(|_| ReportEntry::new(url, status));
        entry.finished_at = Some(finished_at.to_string());
        entry.run = Some(format!("{finished_at}-1"));
        entry.to_json_line()
    }

    #[test]
    fn outcomes_are_ordered_by_finished_at_not_by_the_order_of_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let newer = write(
            dir.path(),
            "newer.jsonl",
            &[
                stamped("https://h/a", "a", Status::Ok, "2026-12-02T10:00:00.001Z"),
                stamped(
                    "https://h/b",
                    "b",
                    Status::Timeout,
                    "2026-12-02T10:00:00.000Z",
                ),
                // A skipped line never replaces an outcome, however late.
                stamped(
                    "https://h/c",
                    "c",
                    Status::Skipped,
                    "2026-12-02T11:00:00.000Z",
                ),
            ],
        );
        let older = write(
            dir.path(),
            "older.jsonl",
            &[
                stamped(
                    "https://h/a",
                    "a",
                    Status::Timeout,
                    "2026-12-02T10:00:00.000Z",
                ),
                stamped("https://h/b", "b", Status::Ok, "2026-12-02T10:00:00.001Z"),
                stamped(
                    "https://h/c",
                    "c",
                    Status::HttpError,
                    "2026-12-02T09:00:00.000Z",
                ),
                // Written before lines had a time: older than any line that has one.
                entry("https://h/a", "a", Status::DnsError),
            ],
        );
        for files in [
            [newer.clone(), older.clone()],
            [older.clone(), newer.clone()],
        ] {
            let (outcome, list, _) = run(&files, dir.path());
            assert_eq!(outcome.items(), 3);
            assert_eq!(outcome.count(Status::Ok), 2, "a and b, by time");
            assert_eq!(outcome.count(Status::HttpError), 1, "c");
            assert_eq!(list, "{\"url\":\"https://h/c\",\"path\":\"c\"}\n");
        }
        Ok(())
    }

    #[test]
    fn a_list_item_no_report_mentions_is_missing_and_listed_for_a_retry() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let list = dir.path().join("list.txt");
        std::fs::write(
            &list,
            "https://h/a.jpg\n{\"url\":\"https://h/b.jpg\",\"id\":17,\"caption\":\"b\"}\n\
             https://h/c.jpg\tcats/c.jpg\nftp://h/x\nhttps://h/a.jpg\nhttps://u:pw@h/d.jpg\n",
        )?;
        let report = write(
            dir.path(),
            "report.jsonl",
            &[
                entry("https://h/a.jpg", "a.jpg", Status::Ok),
                entry("https://h/elsewhere.jpg", "elsewhere.jpg", Status::Ok),
            ],
        );
        let scope = ListScope {
            path: list,
            shard: Shard::ALL,
            out_dir: dir.path().to_path_buf(),
        };
        let mut failed = Vec::new();
        let outcome = reconcile(
            &[report],
            Some(&scope),
            dir.path(),
            Wanted {
                failed: Some(&mut failed),
                include_permanent: true,
                not_done: None,
            },
            false,
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let failed = String::from_utf8(failed).unwrap_or_default();
        assert_eq!(
            outcome.items(),
            6,
            "a, b, c, d, the invalid line and elsewhere"
        );
        assert_eq!(outcome.never_tried(), 3);
        assert_eq!(outcome.count(Status::Invalid), 1);
        assert_eq!(outcome.missing(), 4);
        assert_eq!(outcome.exit(), Exit::SomeFailed);
        assert_eq!(
            failed,
            "{\"url\":\"https://h/b.jpg\",\"path\":\"b.jpg\",\"id\":17,\"caption\":\"b\"}\n\
             {\"url\":\"https://h/c.jpg\",\"path\":\"cats/c.jpg\"}\n\
             {\"url\":\"https://u:pw@h/d.jpg\",\"path\":\"d.jpg\"}\n"
        );
        let text = outcome.render_text();
        assert!(text.contains("2 ok, 1 invalid, 3 missing"), "{text}");
        assert!(
            text.contains("\n1 item of the reports is not on the list (another list"),
            "{text}"
        );
        assert!(
            text.contains(": 5 items, 3 never tried (missing), 1 invalid line"),
            "{text}"
        );
        // Not the password anywhere, leaving out the random temp directory the text names.
        let shown = text.replace(&dir.path().display().to_string(), "DIR");
        assert!(!shown.contains("pw"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&outcome.render_json()).unwrap_or_default();
        assert_eq!(json["statuses"]["missing"], 3);
        assert_eq!(json["list"]["missing"], 3);
        assert_eq!(json["reported"], 2);
        assert_eq!(json["list"]["not_on_list"], 1);
        Ok(())
    }

    #[test]
    fn without_the_list_the_summary_says_what_it_cannot_see() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let report = write(
            dir.path(),
            "report.jsonl",
            &[entry("https://h/a.jpg", "a.jpg", Status::Ok)],
        );
        let (outcome, _, _) = run(&[report], dir.path());
        assert_eq!(outcome.exit(), Exit::Success);
        let text = outcome.render_text();
        assert!(
            text.contains(
                "the reports mention 1 item; items never tried are not seen without --list LIST"
            ),
            "{text}"
        );
        Ok(())
    }
}
