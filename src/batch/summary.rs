//! The closing summary of a batch: counts per status, throughput, and the exit code they imply.
//!
//! Kept apart from the report because it is about the run, not an item: it is built as items finish,
//! printed once for a person, and decides whether the batch exits 0 or 1.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::report::ReportEntry;
use super::retry::retry_may_fix;
use super::status::Status;
use crate::exit::Exit;
use crate::protocol::bytes_for_people;

/// Items per status: what a batch's summary and `watchdog report` both count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    counts: [u64; Status::ALL.len()],
}

impl StatusCounts {
    pub fn add(&mut self, status: Status) {
        self.counts[status.index()] += 1;
    }

    pub fn count(&self, status: Status) -> u64 {
        self.counts[status.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Items that are done (`ok` or `skipped`, see [`Status::is_done`]).
    pub fn done(&self) -> u64 {
        Status::ALL
            .iter()
            .filter(|s| s.is_done())
            .map(|s| self.count(*s))
            .sum()
    }

    /// Items that are not done.
    pub fn not_done(&self) -> u64 {
        self.total() - self.done()
    }

    /// `1150 ok, 30 skipped, 20 http_error`: the statuses that occur, in [`Status::ALL`]'s order;
    /// `None` when there are none.
    pub fn render(&self) -> Option<String> {
        self.render_where(|_| true)
    }

    /// `6 timeout, 4 http_error`: the failures that occur, by status; `None` when there are none.
    pub fn render_failures(&self) -> Option<String> {
        self.render_where(|s| !s.is_done())
    }

    fn render_where(&self, keep: impl Fn(Status) -> bool) -> Option<String> {
        let counts: Vec<String> = Status::ALL
            .iter()
            .filter(|s| keep(**s) && self.count(**s) > 0)
            .map(|s| format!("{} {}", self.count(*s), s))
            .collect();
        (!counts.is_empty()).then(|| counts.join(", "))
    }
}

/// Counts of a batch's outcomes, for the closing summary and the exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    counts: StatusCounts,
    /// Bytes downloaded by this run (not counting skipped items).
    pub bytes: u64,
    /// Items reported without an attempt because their host was down (the circuit breaker); they are
    /// counted under their status too.
    pub held_back: u64,
    /// Attempts of the items that ended, and of those the attempts after an item's first.
    pub attempts: u64,
    pub retries: u64,
    /// The first few failed items of each status (in [`Status::ALL`]'s order), as `URL: why`.
    named: [Vec<String>; Status::ALL.len()],
    /// Failed items a retry may fix (see [`retry_may_fix`]).
    retryable: u64,
}

/// How many failed items of each status the closing summary names.
const NAMED_PER_STATUS: usize = 3;

/// The longest `URL: why` the closing summary prints, in characters.
const NAMED_WIDTH: usize = 160;

/// How a batch run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every item of the list was taken and ended.
    Finished,
    /// A signal stopped the run; items in flight and the rest of the list were not done.
    Interrupted(i32),
    /// An error (printed before the summary) stopped the run.
    Stopped,
}

/// What the closing summary says beside the counts: how the run ended, and where to look next.
#[derive(Debug, Clone, Copy)]
pub struct Closing<'a> {
    pub ending: Ending,
    pub elapsed: Duration,
    /// The items of the list, when known (a list file, no shard): the ones not reached are not done.
    pub listed: Option<u64>,
    /// The report file; `None` when it is a stream, which cannot be read back for a retry.
    pub report: Option<&'a Path>,
    /// Whether `--report` was given (a retry must then name it too).
    pub report_given: bool,
    /// `--out` as given: a retry must use the same directory.
    pub out: &'a Path,
}

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    pub fn record(&mut self, entry: &ReportEntry) {
        self.counts.add(entry.status);
        if retry_may_fix(entry) {
            self.retryable += 1;
        }
        if entry.status == Status::Ok {
            self.bytes += entry.bytes.unwrap_or(0);
        }
        self.attempts += u64::from(entry.attempts);
        self.retries += u64::from(entry.attempts.saturating_sub(1));
        let named = &mut self.named[entry.status.index()];
        if !entry.status.is_done() && named.len() < NAMED_PER_STATUS {
            let mut line = crate::redact::redact_credentials(&entry.url);
            if let Some(error) = &entry.error {
                let error = error_without_url(&entry.url, error);
                let error = error_without_url(&line, error);
                line.push_str(": ");
                line.push_str(error);
            }
            if line.chars().count() > NAMED_WIDTH {
                line = line.chars().take(NAMED_WIDTH - 1).collect::<String>() + "…";
            }
            named.push(line);
        }
    }

    pub fn count(&self, status: Status) -> u64 {
        self.counts.count(status)
    }

    /// Items per status.
    pub fn counts(&self) -> &StatusCounts {
        &self.counts
    }

    pub fn total(&self) -> u64 {
        self.counts.total()
    }

    /// Items that ended neither `ok` nor `skipped`.
    pub fn failed(&self) -> u64 {
        self.counts.not_done()
    }

    /// [`Exit::Success`] when every item is `ok` or `skipped`, else [`Exit::SomeFailed`].
    pub fn exit(&self) -> Exit {
        if self.failed() == 0 {
            Exit::Success
        } else {
            Exit::SomeFailed
        }
    }

    /// Two lines for a person, e.g.
    /// `1200 items in 1m 05s: 1150 ok, 30 skipped, 20 http_error` and
    /// `17.7 files/s, 2.3 MiB/s (146.1 MiB downloaded)`.
    pub fn render(&self, elapsed: Duration) -> String {
        let mut counts = self
            .counts
            .render()
            .unwrap_or_else(|| "nothing to do".to_string());
        if self.held_back > 0 {
            counts.push_str(&format!(
                " ({} not tried: host down, see --host-failures)",
                self.held_back
            ));
        }
        let seconds = elapsed.as_secs_f64().max(0.001);
        let items = self.total();
        format!(
            "{items} item{} in {}: {counts}\n{:.1} files/s, {}/s ({} downloaded)",
            if items == 1 { "" } else { "s" },
            render_duration(elapsed),
            self.count(Status::Ok) as f64 / seconds,
            bytes_for_people((self.bytes as f64 / seconds) as u64),
            bytes_for_people(self.bytes),
        )
    }
}

impl Summary {
    /// The end-of-run summary, true on every ending: the counts (see [`Summary::render`]), how the
    /// run ended and what was not done, the first few failed items of each status, the report, and
    /// the command that retries what a retry can fix, or that resumes an interrupted run.
    pub fn render_closing(&self, closing: &Closing) -> String {
        let items = self.total();
        let mut text = match closing.ending {
            Ending::Finished => self.render(closing.elapsed),
            Ending::Interrupted(_) | Ending::Stopped => {
                let how = match closing.ending {
                    Ending::Interrupted(signal) => {
                        format!("interrupted by SIG{}", crate::signals::signal_name(signal))
                    }
                    _ => "stopped by the error above".to_string(),
                };
                let not_done = match closing.listed {
                    Some(listed) => format!(
                        "{} of {listed} not done",
                        self.failed() + listed.saturating_sub(items)
                    ),
                    None => format!("{} failed, the rest of the list not done", self.failed()),
                };
                let counts = self
                    .counts
                    .render()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                let rate = self.render(closing.elapsed);
                let rate = rate.lines().nth(1).unwrap_or_default();
                format!(
                    "batch {how} after {}: {items} item{} ended{counts}, {not_done}\n{rate}",
                    render_duration(closing.elapsed),
                    if items == 1 { "" } else { "s" },
                )
            }
        };
        for status in Status::ALL.iter().filter(|s| !s.is_done()) {
            let count = self.count(*status);
            if count == 0 {
                continue;
            }
            let _ = write!(text, "\n{count} {status}:");
            let named = &self.named[status.index()];
            for line in named {
                let _ = write!(text, "\n  {line}");
            }
            if count > named.len() as u64 {
                let _ = write!(text, "\n  and {} more", count - named.len() as u64);
            }
        }
        if let Some(report) = closing.report {
            let _ = write!(text, "\nreport: {}", report.display());
        }
        let permanent = self.failed() - self.retryable - self.count(Status::Invalid);
        if closing.ending != Ending::Finished {
            text.push_str("\nto resume, run the same command again: items done are skipped");
        } else if let (Some(report), true) = (closing.report, self.retryable > 0) {
            let report = shell_word(&report.to_string_lossy());
            let _ = write!(
                text,
                "\nto retry the {} item{} a retry may fix: watchdog report --failed {report} > \
                 retry.txt && watchdog batch retry.txt --out {}{}",
                self.retryable,
                if self.retryable == 1 { "" } else { "s" },
                shell_word(&closing.out.to_string_lossy()),
                if closing.report_given {
                    format!(" --report {report}")
                } else {
                    String::new()
                }
            );
        }
        if permanent > 0 && closing.ending == Ending::Finished {
            let _ = write!(
                text,
                "\n{permanent} failed item{} a retry will not fix (a 404, a body refused, a local \
                 error): see their errors",
                if permanent == 1 { "" } else { "s" },
            );
        }
        if self.count(Status::Invalid) > 0 {
            text.push_str("\ninvalid items are not retried: correct their list lines");
        }
        text
    }
}

/// A report's error without the URL it starts with (`URL: the server answered 404`): most errors name
/// the URL already, and once on a line is enough.
pub(crate) fn error_without_url<'a>(url: &str, error: &'a str) -> &'a str {
    error
        .strip_prefix(url)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(error)
}

/// `word` as one word of a POSIX shell command line: as it is when it holds nothing the shell
/// reads, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn render_duration(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    match secs {
        0..=59 => format!("{:.1}s", elapsed.as_secs_f64()),
        60..=3599 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m {:02}s", secs / 3600, secs / 60 % 60, secs % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_and_exit_codes() {
        let mut summary = Summary::new();
        assert_eq!(summary.exit(), Exit::Success);
        let mut ok = ReportEntry::new("https://h/a", Status::Ok);
        ok.bytes = Some(2_500_000);
        summary.record(&ok);
        summary.record(&ReportEntry::new("https://h/b", Status::Skipped));
        assert_eq!(summary.exit(), Exit::Success);
        summary.record(&ReportEntry::new("https://h/c", Status::HttpError));
        summary.record(&ReportEntry::new("https://h/d", Status::HttpError));
        assert_eq!(summary.exit(), Exit::SomeFailed);
        assert_eq!(summary.total(), 4);
        assert_eq!(summary.failed(), 2);
        assert_eq!(summary.count(Status::HttpError), 2);
        let text = summary.render(Duration::from_secs(2));
        assert!(
            text.starts_with("4 items in 2.0s: 1 ok, 1 skipped, 2 http_error"),
            "{text}"
        );
        assert!(
            text.contains("0.5 files/s, 1.2 MiB/s (2.4 MiB downloaded)"),
            "{text}"
        );
        assert!(Summary::new()
            .render(Duration::from_secs(3700))
            .contains("1h 01m 40s"));
        let mut down = Summary::new();
        down.record(&ReportEntry::new("http://h/e", Status::ConnectError));
        down.held_back = 1;
        assert!(down
            .render(Duration::from_secs(1))
            .contains("1 connect_error (1 not tried: host down"));
        assert_eq!(
            summary.counts().render_failures().as_deref(),
            Some("2 http_error")
        );
        assert_eq!(Summary::new().counts().render_failures(), None);
        assert_eq!((summary.attempts, summary.retries), (0, 0));
        let mut retried = ReportEntry::new("https://h/r", Status::Ok);
        retried.attempts = 3;
        summary.record(&retried);
        assert_eq!((summary.attempts, summary.retries), (3, 2));
        let mut invalid_only = Summary::new();
        invalid_only.record(&ReportEntry::new("x", Status::Invalid));
        assert_eq!(invalid_only.exit(), Exit::SomeFailed);
    }

    #[test]
    fn the_closing_summary_says_how_the_run_ended_and_what_to_do_next() {
        let mut summary = Summary::new();
        summary.record(&ReportEntry::new("https://h/a", Status::Ok));
        for i in 0..5 {
            let mut failed = ReportEntry::new(&format!("https://u:pw@h/{i}"), Status::Timeout);
            failed.error = Some(format!("https://u:pw@h/{i}: no data for 2 s"));
            summary.record(&failed);
        }
        let closing = Closing {
            ending: Ending::Finished,
            elapsed: Duration::from_secs(1),
            listed: None,
            report: Some(Path::new("my dir/report.jsonl")),
            report_given: true,
            out: Path::new("my dir"),
        };
        let text = summary.render_closing(&closing);
        assert!(
            text.contains("\n5 timeout:\n  https://***@h/0: no data for 2 s\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  and 2 more\nreport: my dir/report.jsonl\n"),
            "{text}"
        );
        assert!(!text.contains("pw"), "{text}");
        assert!(
            text.ends_with(
                "to retry the 5 items a retry may fix: watchdog report --failed 'my dir/report.jsonl' \
                 > retry.txt && watchdog batch retry.txt --out 'my dir' --report 'my dir/report.jsonl'"
            ),
            "{text}"
        );
        let stopped = summary.render_closing(&Closing {
            ending: Ending::Stopped,
            listed: Some(10),
            ..closing
        });
        assert!(
            stopped.starts_with(
                "batch stopped by the error above after 1.0s: 6 items ended (1 ok, 5 timeout), \
                 9 of 10 not done"
            ),
            "{stopped}"
        );
        assert!(stopped.ends_with("to resume, run the same command again: items done are skipped"));
        let interrupted = Summary::new().render_closing(&Closing {
            ending: Ending::Interrupted(2),
            listed: None,
            report: None,
            ..closing
        });
        assert!(
            interrupted.starts_with(
                "batch interrupted by SIGINT after 1.0s: 0 items ended, 0 failed, the rest of the \
                 list not done"
            ),
            "{interrupted}"
        );
        assert!(!interrupted.contains("nothing to do"));
        // A 404 is not worth a retry: no retry command for it, a word that says why.
        let mut not_found = Summary::new();
        let mut entry = ReportEntry::new("https://h/gone", Status::HttpError);
        entry.http_status = Some(404);
        not_found.record(&entry);
        let text = not_found.render_closing(&closing);
        assert!(!text.contains("to retry"), "{text}");
        assert!(
            text.ends_with("1 failed item a retry will not fix (a 404, a body refused, a local error): see their errors"),
            "{text}"
        );
    }
}
