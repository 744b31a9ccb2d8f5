//! `watchdog report`: what a set of batch reports adds up to, item by item.
//!
//! A batch over a bad network ends with some items done and some not, over several shards and several
//! reruns, each appending to its report. This reads any number of those reports and keeps, for every
//! item, its *latest outcome* (see [`REPORT_HELP`] for the rule), then sums them up: counts per status,
//! per host, bytes, and what is still missing; or, with `--failed`, lists the missing items in a form
//! `watchdog batch` takes back, each with its path, so that a retry lands where the first try would
//! have.
//!
//! An item is identified as the resume index of batch mode identifies it: by its path and its
//! (redacted) URL. Memory stays flat for reports of any length: the reports are read twice as streams,
//! one bounded line at a time. The first pass records, per item, the ordinal of the line that holds its
//! latest outcome, in a [`SpillMap`] (in memory up to 32,768 items, in an unlinked file in the index
//! directory beyond that, as batch mode's own indexes); the second pass takes each item's outcome from
//! exactly that line. Each file is read up to the length it had when the first pass opened it, so a
//! report that a running batch is still appending to is read as one consistent snapshot.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::batch::list::read_bounded_line;
use crate::batch::report::ReportEntry;
use crate::batch::spill::SpillMap;
use crate::batch::status::Status;
use crate::batch::summary::render_bytes;
use crate::exit::Exit;
use crate::redact::redact_credentials;

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

/// Every item's latest outcome is `ok` or `skipped`, and every line could be read.
pub const EXIT_ALL_DONE: u8 = 0;
/// At least one item's latest outcome is a failure.
pub const EXIT_SOME_MISSING: u8 = 1;
/// Every item read is done, but some lines are not report lines (each was named on stderr).
pub const EXIT_UNREADABLE_LINES: u8 = 2;

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

/// Lines longer than this are not from watchdog.
const MAX_LINE: usize = 64 * 1024;
/// Hosts counted one by one; items of any further host are summed up as other hosts.
const MAX_HOSTS: usize = 10_000;
/// Hosts shown in the text summary.
const HOSTS_SHOWN: usize = 10;
/// Missing items shown in the text summary.
const MISSING_SHOWN: usize = 10;
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
    ExitCode::from(outcome.exit_code())
}

/// One report given on the command line, and the length read of it.
struct Source {
    path: PathBuf,
    len: u64,
    /// Whether the file ends in the middle of a line (a batch is writing it, or was killed).
    ends_mid_line: bool,
}

/// What one line of a report is.
enum Line {
    Blank,
    Entry(Box<ReportEntry>),
    Bad(String),
}

fn parse_line(buf: &[u8], too_long: bool) -> Line {
    if too_long {
        return Line::Bad(format!(
            "longer than {} KiB, not a report line",
            MAX_LINE / 1024
        ));
    }
    let Ok(text) = std::str::from_utf8(buf) else {
        return Line::Bad("not valid UTF-8, not a report line".to_string());
    };
    let text = text.trim();
    if text.is_empty() {
        return Line::Blank;
    }
    match serde_json::from_str::<ReportEntry>(text) {
        Ok(entry) => Line::Entry(Box::new(entry)),
        Err(e) => {
            let reason = e.to_string().replace(" at line 1 column ", " at column ");
            Line::Bad(format!("not a report line: {reason}"))
        }
    }
}

/// The key of an item: its path and URL, as batch's resume index takes them (redacted, as the report
/// has them). 64 bits of a SHA-256: two of a million items share a key with a chance of 3 in 10^8.
fn item_key(entry: &ReportEntry) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"item\0");
    hasher.update(entry.path.as_deref().unwrap_or("").as_bytes());
    hasher.update(b"\0");
    hasher.update(redact_credentials(&entry.url).as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The host of a URL, without credentials and port; `-` when there is none (an invalid line).
fn host(url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return "-".to_string();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    if host.is_empty() {
        "-".to_string()
    } else {
        host.to_ascii_lowercase()
    }
}

fn is_done(status: Status) -> bool {
    matches!(status, Status::Ok | Status::Skipped)
}

fn status_index(status: Status) -> usize {
    Status::ALL.iter().position(|s| *s == status).unwrap_or(0)
}

/// Items, done and missing, of one host.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct HostCount {
    items: u64,
    done: u64,
    missing: u64,
}

/// A missing item shown in the text summary.
#[derive(Debug, Clone)]
struct Missing {
    status: Status,
    url: String,
    path: Option<String>,
    error: Option<String>,
}

/// What the reports add up to.
#[derive(Debug, Default)]
pub struct Outcome {
    reports: usize,
    lines: u64,
    bad_lines: u64,
    counts: [u64; Status::ALL.len()],
    bytes: u64,
    hosts: HashMap<String, HostCount>,
    other_hosts: HostCount,
    first_missing: Vec<Missing>,
    /// With `--failed`: missing items left out of the list.
    unlisted_invalid: u64,
    unlisted_credentials: u64,
}

impl Outcome {
    pub fn items(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn count(&self, status: Status) -> u64 {
        self.counts[status_index(status)]
    }

    pub fn done(&self) -> u64 {
        self.count(Status::Ok) + self.count(Status::Skipped)
    }

    pub fn missing(&self) -> u64 {
        self.items() - self.done()
    }

    /// Lines that were not report lines.
    #[cfg(test)]
    pub fn bad_lines(&self) -> u64 {
        self.bad_lines
    }

    pub fn exit_code(&self) -> u8 {
        if self.missing() > 0 {
            EXIT_SOME_MISSING
        } else if self.bad_lines > 0 {
            EXIT_UNREADABLE_LINES
        } else {
            EXIT_ALL_DONE
        }
    }

    fn record(&mut self, entry: &ReportEntry) {
        self.counts[status_index(entry.status)] += 1;
        let done = is_done(entry.status);
        if done {
            self.bytes += entry.bytes.unwrap_or(0);
        } else if self.first_missing.len() < MISSING_SHOWN {
            self.first_missing.push(Missing {
                status: entry.status,
                url: redact_credentials(&entry.url),
                path: entry.path.clone(),
                error: entry.error.as_deref().map(redact_credentials),
            });
        }
        let host = host(&entry.url);
        let count = if let Some(count) = self.hosts.get_mut(&host) {
            count
        } else if self.hosts.len() < MAX_HOSTS {
            self.hosts.entry(host).or_default()
        } else {
            &mut self.other_hosts
        };
        count.items += 1;
        if done {
            count.done += 1;
        } else {
            count.missing += 1;
        }
    }

    /// Hosts by number of items, most first, then by name.
    fn hosts_sorted(&self) -> Vec<(&str, HostCount)> {
        let mut hosts: Vec<(&str, HostCount)> =
            self.hosts.iter().map(|(h, c)| (h.as_str(), *c)).collect();
        hosts.sort_by(|a, b| b.1.items.cmp(&a.1.items).then(a.0.cmp(b.0)));
        hosts
    }

    /// The summary for a person.
    pub fn render_text(&self) -> String {
        let mut text = String::new();
        let counts: Vec<String> = Status::ALL
            .iter()
            .filter(|s| self.count(**s) > 0)
            .map(|s| format!("{} {}", self.count(*s), s))
            .collect();
        text.push_str(&format!(
            "{} item{} in {} report{} ({} line{}{}): {}\n",
            self.items(),
            plural(self.items()),
            self.reports,
            plural(self.reports as u64),
            self.lines,
            plural(self.lines),
            if self.bad_lines > 0 {
                format!(", {} not readable", self.bad_lines)
            } else {
                String::new()
            },
            if counts.is_empty() {
                "nothing reported".to_string()
            } else {
                counts.join(", ")
            },
        ));
        text.push_str(&format!(
            "done {} ({}), missing {}\n",
            self.done(),
            render_bytes(self.bytes),
            self.missing()
        ));
        let hosts = self.hosts_sorted();
        if !hosts.is_empty() {
            text.push_str("by host:\n");
            let width = hosts
                .iter()
                .take(HOSTS_SHOWN)
                .map(|(h, _)| h.len())
                .max()
                .unwrap_or(0);
            for (host, count) in hosts.iter().take(HOSTS_SHOWN) {
                text.push_str(&format!(
                    "  {host:width$}  {} item{}: {} done, {} missing\n",
                    count.items,
                    plural(count.items),
                    count.done,
                    count.missing
                ));
            }
            let rest = hosts.len().saturating_sub(HOSTS_SHOWN);
            if rest > 0 || self.other_hosts.items > 0 {
                let items = hosts
                    .iter()
                    .skip(HOSTS_SHOWN)
                    .map(|(_, c)| c.items)
                    .sum::<u64>()
                    + self.other_hosts.items;
                text.push_str(&format!("  ... {items} items on other hosts\n"));
            }
        }
        if self.missing() > 0 {
            text.push_str(&format!(
                "missing (the first {} of {}; `watchdog report --failed` lists them all for `watchdog batch`):\n",
                self.first_missing.len(),
                self.missing()
            ));
            for item in &self.first_missing {
                text.push_str(&format!(
                    "  {}  {}  {}{}\n",
                    item.status,
                    item.path.as_deref().unwrap_or("-"),
                    item.url,
                    item.error
                        .as_deref()
                        .map(|e| format!("  ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
        text
    }

    /// The summary as one JSON object, on one line.
    pub fn render_json(&self) -> String {
        #[derive(Serialize)]
        struct Host<'a> {
            host: &'a str,
            #[serde(flatten)]
            count: HostCount,
        }
        #[derive(Serialize)]
        struct Json<'a> {
            reports: usize,
            lines: u64,
            unreadable_lines: u64,
            items: u64,
            done: u64,
            missing: u64,
            bytes: u64,
            statuses: serde_json::Map<String, serde_json::Value>,
            hosts: Vec<Host<'a>>,
            other_hosts: HostCount,
            exit_code: u8,
        }
        let statuses = Status::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), self.count(*s).into()))
            .collect();
        let json = Json {
            reports: self.reports,
            lines: self.lines,
            unreadable_lines: self.bad_lines,
            items: self.items(),
            done: self.done(),
            missing: self.missing(),
            bytes: self.bytes,
            statuses,
            hosts: self
                .hosts_sorted()
                .into_iter()
                .map(|(host, count)| Host { host, count })
                .collect(),
            other_hosts: self.other_hosts,
            exit_code: self.exit_code(),
        };
        let mut line = serde_json::to_string(&json).unwrap_or_else(|_| "{}".to_string());
        line.push('\n');
        line
    }

    /// With `--failed`: what was listed, and why some missing items were not.
    fn write_retry_notes(&self, err: &mut dyn Write) -> io::Result<()> {
        if self.unlisted_invalid > 0 {
            writeln!(
                err,
                "watchdog: {} invalid item{} not listed: fix {} in the list first (the report's error names the line)",
                self.unlisted_invalid,
                plural(self.unlisted_invalid),
                if self.unlisted_invalid == 1 { "its line" } else { "their lines" },
            )?;
        }
        if self.unlisted_credentials > 0 {
            writeln!(
                err,
                "watchdog: {} item{} not listed: the URL had credentials, which reports never keep (***); \
                 list {} again from the original list",
                self.unlisted_credentials,
                plural(self.unlisted_credentials),
                if self.unlisted_credentials == 1 { "it" } else { "them" },
            )?;
        }
        Ok(())
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The line `watchdog batch` takes back for a missing item, or why there is none.
fn retry_line(entry: &ReportEntry) -> Result<String, &'static str> {
    if entry.status == Status::Invalid {
        return Err("invalid");
    }
    if redact_credentials(&entry.url) != entry.url || entry.url.contains("://***@") {
        return Err("credentials");
    }
    #[derive(Serialize)]
    struct Retry<'a> {
        url: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
    }
    serde_json::to_string(&Retry {
        url: &entry.url,
        path: entry.path.as_deref(),
    })
    .map_err(|_| "invalid")
}

fn open(path: &Path) -> Result<File, String> {
    let file = File::open(path)
        .map_err(|e| format!("cannot read the report '{}': {e}", path.display()))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot read the report '{}': {e}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!(
            "'{}' is not a regular file: reports are read twice, so save it to a file first",
            path.display()
        ));
    }
    Ok(file)
}

/// Whether the last byte of the first `len` bytes of `file` is not a newline.
fn ends_mid_line(file: &File, len: u64) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
}

/// Reads the first `source.len` bytes of a report line by line: `each(line_no, line, is_last)`.
fn for_each_line(
    file: File,
    source: &Source,
    each: &mut dyn FnMut(u64, Line, bool) -> Result<(), String>,
) -> Result<(), String> {
    let read_error =
        |e: io::Error| format!("cannot read the report '{}': {e}", source.path.display());
    let mut reader = BufReader::with_capacity(64 * 1024, file.take(source.len));
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut pending: Option<Line> = None;
    loop {
        let next = read_bounded_line(&mut reader, &mut buf, MAX_LINE).map_err(read_error)?;
        // One line late, to know which one is the last.
        if let Some(line) = pending.take() {
            each(line_no, line, next.is_none())?;
        }
        let Some(too_long) = next else { break };
        line_no += 1;
        pending = Some(parse_line(&buf, too_long));
    }
    Ok(())
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
        let file = open(path)?;
        let len = file
            .metadata()
            .map_err(|e| format!("cannot read the report '{}': {e}", path.display()))?
            .len();
        let source = Source {
            path: path.clone(),
            len,
            ends_mid_line: ends_mid_line(&file, len)
                .map_err(|e| format!("cannot read the report '{}': {e}", path.display()))?,
        };
        let mut named = 0u64;
        let mut bad_here = 0u64;
        for_each_line(file, &source, &mut |line_no, line, last| {
            ordinal += 1;
            outcome.lines += 1;
            match line {
                Line::Blank => {}
                Line::Entry(entry) => {
                    let key = item_key(&entry);
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
        let file = open(&source.path)?;
        for_each_line(file, source, &mut |_, line, _| {
            ordinal += 1;
            let Line::Entry(entry) = line else {
                return Ok(());
            };
            if latest.get(item_key(&entry)).map_err(index_error)? != Some(ordinal) {
                return Ok(());
            }
            outcome.record(&entry);
            if is_done(entry.status) {
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
        assert_eq!(outcome.exit_code(), EXIT_SOME_MISSING);
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
        assert_eq!(outcome.bad_lines(), 3);
        assert_eq!(outcome.exit_code(), EXIT_UNREADABLE_LINES);
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

    #[test]
    fn hosts_are_named_without_credentials_or_port() {
        assert_eq!(host("https://u:p@Example.org:8443/a"), "example.org");
        assert_eq!(host("http://[::1]:80/x"), "::1");
        assert_eq!(host("ftp"), "-");
        assert_eq!(host("https:///x"), "-");
    }
}
