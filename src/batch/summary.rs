//! The closing summary of a batch: counts per status, throughput, and the exit code they imply.
//!
//! Kept apart from the report because it is about the run, not an item: it is built as items finish,
//! printed once for a person, and decides whether the batch exits 0 or 1.

use std::time::Duration;

use super::report::ReportEntry;
use super::status::Status;
use crate::exit::Exit;

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
        let counts: Vec<String> = Status::ALL
            .iter()
            .filter(|s| self.count(**s) > 0)
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
}

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    pub fn record(&mut self, entry: &ReportEntry) {
        self.counts.add(entry.status);
        if entry.status == Status::Ok {
            self.bytes += entry.bytes.unwrap_or(0);
        }
    }

    pub fn count(&self, status: Status) -> u64 {
        self.counts.count(status)
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
    /// `17.7 files/s, 2.4 MB/s (153.2 MB downloaded)`.
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
            "{items} item{} in {}: {counts}\n{:.1} files/s, {:.1} MB/s ({} downloaded)",
            if items == 1 { "" } else { "s" },
            render_duration(elapsed),
            self.count(Status::Ok) as f64 / seconds,
            self.bytes as f64 / 1e6 / seconds,
            render_bytes(self.bytes),
        )
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

/// A byte count as a person reads it: `550 B`, `1.2 MB`.
pub(crate) fn render_bytes(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes} B"),
        1_000..=999_999 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
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
            text.contains("0.5 files/s, 1.2 MB/s (2.5 MB downloaded)"),
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
        let mut invalid_only = Summary::new();
        invalid_only.record(&ReportEntry::new("x", Status::Invalid));
        assert_eq!(invalid_only.exit(), Exit::SomeFailed);
    }
}
