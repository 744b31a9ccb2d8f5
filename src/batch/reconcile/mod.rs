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
//! read twice as streams, one bounded line at a time. The first pass records, per item, the ordinal of the line that holds its
//! latest outcome, in a [`SpillMap`] (in memory up to 32,768 items, in an unlinked file in the index
//! directory beyond that, as batch mode's own indexes); the second pass takes each item's outcome from
//! exactly that line. Each file is read up to the length it had when the first pass opened it, so a
//! report that a running batch is still appending to is read as one consistent snapshot.
//!
//! [`read`] reads the reports, [`tally`] counts the outcomes, [`render`] prints them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::batch::spill::SpillMap;
use crate::batch::status::Status;
use crate::exit::Exit;

use self::read::{for_each_line, Line, Source};
use self::tally::{retry_line, Outcome};

mod read;
mod render;
mod tally;

/// What `watchdog report` is asked to do, as plain data (the command line converts to it once).
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// The reports, oldest run first.
    pub files: Vec<PathBuf>,
    /// Print the items still not ok as a list for `watchdog batch`.
    pub failed: bool,
    /// The summary as one JSON object.
    pub json: bool,
    /// Where the on-disk index goes past the in-memory limit.
    pub index_dir: Option<PathBuf>,
}

/// The rule, the output and the exit codes, shown by `report --help` and its man page.
pub const REPORT_HELP: &str = "\
Examples:
  watchdog report /data/imgs/report-*.jsonl
      Sum up the reports of every shard and rerun: counts per status and per host, bytes, and the
      items still missing.
  watchdog report --failed /data/imgs/report-*.jsonl > retry.jsonl
  watchdog batch retry.jsonl --out /data/imgs --report /data/imgs/report-retry.jsonl
      List the items still not ok (JSON lines with url and path, the summary goes to stderr), and
      fetch exactly those again, each to the path its first try had.
  watchdog report --json report.jsonl
      The summary as one JSON object, for a pipeline.

Latest outcome:
  An item is its path and URL, as batch mode's resume index keys it. The files are read in the order
  given, each from top to bottom (the order in which batch appended its lines, as items finished),
  and an item's last line is its outcome, except that a skipped line never replaces an earlier
  outcome: it says the item was complete from an earlier run, or a duplicate of a line whose own
  outcome stands. Report lines carry no timestamp. Shards hold disjoint items and a rerun with the same
  --report appends to it, so the order of the files matters only when reruns wrote separate reports:
  give those oldest first. An item counts as done when its outcome is ok or skipped.

Output:
  A summary on stdout (on stderr with --failed): the counts of the latest outcomes per status, per host
  (the 10 with the most items; --json has up to 10,000), bytes of the items done, and the first items
  still missing with their status and error. A line that is not a report line (not JSON, a missing or
  mistyped field, longer than 64 KiB, the incomplete last line of a report still being written) is
  named on stderr with its file and line number, and skipped.
  --failed writes one JSON object per missing item, {\"url\":...,\"path\":...}, in the order the reports
  list them. Two kinds of missing item are left out, with a note on stderr: invalid ones, whose list
  line must be fixed first, and those whose URL had credentials, which reports never keep (***).

Memory:
  Flat over reports of any length: past 32,768 items the index moves to an unnamed file in
  --index-dir (the first FILE's directory unless given), about 32 to 64 bytes of disk per item.

Exit status:
  0        every item is done (ok or skipped), and every line was a report line
  1        at least one item's latest outcome is a failure (or invalid)
  2        every item is done, but some lines could not be read (named on stderr)
  125      watchdog itself failed: a bad option, a FILE that cannot be read or is not a regular file,
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
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let failed_out: Option<&mut dyn Write> = if args.failed { Some(&mut out) } else { None };
    let outcome = match reconcile(&args.files, &index_dir, failed_out, &mut |message| {
        crate::report_error(message)
    }) {
        Ok(outcome) => outcome,
        Err(message) => {
            crate::report_error(message);
            return Exit::Failure.into();
        }
    };
    let summary = if args.json {
        outcome.render_json()
    } else {
        outcome.render_text()
    };
    let written = if args.failed {
        out.flush().and_then(|()| {
            let stderr = io::stderr();
            let mut err = stderr.lock();
            outcome.write_retry_notes(&mut err)?;
            err.write_all(summary.as_bytes())
        })
    } else {
        out.write_all(summary.as_bytes()).and_then(|()| out.flush())
    };
    if let Err(e) = written {
        crate::report_error(format!("cannot write the output: {e}"));
        return Exit::Failure.into();
    }
    outcome.exit().into()
}

/// Reads `files` (see the module documentation), writes the retry list to `failed` when given, and
/// names every unreadable line through `warn`. Fails when a file cannot be read or the index cannot be
/// kept.
pub fn reconcile(
    files: &[PathBuf],
    index_dir: &Path,
    mut failed: Option<&mut dyn Write>,
    warn: &mut dyn FnMut(String),
) -> Result<Outcome, String> {
    let index_error = |e: io::Error| {
        format!(
            "cannot keep the index of items in '{}': {e} (give --index-dir a writable directory with \
             room for about 64 bytes per item)",
            index_dir.display()
        )
    };
    let mut sources = Vec::with_capacity(files.len());
    let mut latest: SpillMap<u64> = SpillMap::new(index_dir);
    let mut outcome = Outcome {
        reports: files.len(),
        ..Outcome::default()
    };
    // Pass 1: the ordinal of each item's latest line, and every unreadable line named.
    let mut ordinal = 0u64;
    for path in files {
        let (source, file) = Source::open(path)?;
        let mut named = 0u64;
        let mut bad_here = 0u64;
        for_each_line(file, &source, &mut |line_no, line, last| {
            ordinal += 1;
            outcome.lines += 1;
            match line {
                Line::Blank => {}
                Line::Entry(entry) => {
                    let key = entry.key();
                    if entry.status == Status::Skipped {
                        latest.insert_new(key, ordinal).map_err(index_error)?;
                    } else {
                        latest.insert(key, ordinal).map_err(index_error)?;
                    }
                }
                Line::Bad(reason) => {
                    bad_here += 1;
                    if named < BAD_LINES_NAMED {
                        named += 1;
                        let reason = if last && source.ends_mid_line {
                            "incomplete last line (a batch is still writing this report, or was \
                             killed while writing it)"
                                .to_string()
                        } else {
                            reason
                        };
                        warn(format!(
                            "{}: line {line_no}: {reason}; skipped",
                            source.path.display()
                        ));
                    }
                }
            }
            Ok(())
        })?;
        if bad_here > named {
            warn(format!(
                "{}: {} more lines that are not report lines; skipped",
                source.path.display(),
                bad_here - named
            ));
        }
        outcome.bad_lines += bad_here;
        sources.push(source);
    }
    // Pass 2: each item's outcome, from its latest line.
    let mut ordinal = 0u64;
    for source in &sources {
        let file = read::open(&source.path)?;
        for_each_line(file, source, &mut |_, line, _| {
            ordinal += 1;
            let Line::Entry(entry) = line else {
                return Ok(());
            };
            if latest.get(entry.key()).map_err(index_error)? != Some(ordinal) {
                return Ok(());
            }
            outcome.record(&entry);
            if entry.status.is_done() {
                return Ok(());
            }
            if let Some(out) = failed.as_mut() {
                match retry_line(&entry) {
                    Ok(line) => {
                        writeln!(out, "{line}")
                            .map_err(|e| format!("cannot write the list: {e}"))?;
                    }
                    Err("credentials") => outcome.unlisted_credentials += 1,
                    Err(_) => outcome.unlisted_invalid += 1,
                }
            }
            Ok(())
        })?;
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
        let outcome = reconcile(files, dir, Some(&mut list), &mut |w| warnings.push(w));
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
        assert!(!text.contains("pw"), "{text}");
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
}
