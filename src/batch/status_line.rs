//! The status line a batch writes to stderr every `--progress-interval` when stderr is not a terminal
//! (a log file, Slurm's output, `kubectl logs`), so that a long unattended run never looks hung.
//!
//! One line, `key=value` pairs after a fixed prefix, so `grep 'watchdog: progress:'` finds them and a
//! script can split them:
//!
//! ```text
//! watchdog: progress: elapsed=1m30s ended=120/1000 ok=110 skipped=0 failed=10 timeout=6 http_error=4
//!   in_flight=4 items_per_s=2.0 mb_per_s=1.30 eta=7m20s
//! ```
//!
//! (one line in the log). `ended` is items that ended, of the total once the list's length is known
//! (`?` before); a `<status>=N` pair follows `failed` for each cause that occurred; the rates are over
//! the last interval (bytes of the items downloaded and in flight); `eta` is the items left at the average rate so far (`?`
//! until the total and a rate are known).

use std::time::{Duration, Instant};

use super::run_stats::RunStats;
use super::status::Status;
use super::summary::Summary;

/// The prefix of every status line.
pub const PREFIX: &str = "watchdog: progress:";

/// What the previous line saw, for the rates over the interval.
#[derive(Debug)]
pub struct StatusLine {
    at: Instant,
    ended: u64,
    /// Bytes of the items downloaded and of those in flight.
    bytes: u64,
}

impl StatusLine {
    pub fn new(started: Instant) -> StatusLine {
        StatusLine {
            at: started,
            ended: 0,
            bytes: 0,
        }
    }

    /// The line for now; the rates are measured from the previous call.
    pub fn render(&mut self, summary: &Summary, stats: &RunStats, now: Instant) -> String {
        let ended = summary.total();
        let interval = now
            .saturating_duration_since(self.at)
            .as_secs_f64()
            .max(0.001);
        let items_per_s = ended.saturating_sub(self.ended) as f64 / interval;
        // An item that failed takes its bytes so far out of the count: the rate is then low for
        // one interval, never negative.
        let bytes = summary.bytes + stats.in_flight_bytes();
        let mb_per_s = bytes.saturating_sub(self.bytes) as f64 / 1e6 / interval;
        self.at = now;
        self.ended = ended;
        self.bytes = bytes;
        let elapsed = now.saturating_duration_since(stats.started);
        let counts = summary.counts();
        let mut line = format!(
            "{PREFIX} elapsed={} ended={ended}/{} ok={} skipped={} failed={}",
            compact_duration(elapsed),
            stats.listed.map_or("?".to_string(), |n| n.to_string()),
            counts.count(Status::Ok),
            counts.count(Status::Skipped),
            counts.not_done(),
        );
        for status in Status::ALL.iter().filter(|s| !s.is_done()) {
            let n = counts.count(*status);
            if n > 0 {
                line.push_str(&format!(" {status}={n}"));
            }
        }
        let average = ended as f64 / elapsed.as_secs_f64().max(0.001);
        let eta = match stats.listed {
            Some(listed) if ended >= listed => "0s".to_string(),
            Some(listed) if average > 0.0 => compact_duration(Duration::from_secs_f64(
                ((listed - ended) as f64 / average).min(1e9),
            )),
            _ => "?".to_string(),
        };
        line.push_str(&format!(
            " in_flight={} items_per_s={items_per_s:.1} mb_per_s={mb_per_s:.2} eta={eta}",
            stats.in_flight()
        ));
        line
    }
}

/// `45s`, `4m05s`, `1h02m03s`: a duration in one word (as Go's time.ParseDuration reads it).
pub fn compact_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::report::ReportEntry;

    #[test]
    fn a_line_says_where_the_run_is_and_how_fast_it_goes() {
        let mut stats = RunStats::new(None, false);
        let start = stats.started;
        let mut summary = Summary::new();
        let mut line = StatusLine::new(start);
        for _ in 0..3 {
            summary.record(&ReportEntry::new("http://h/a", Status::Ok));
        }
        summary.record(&ReportEntry::new("http://h/b", Status::Timeout));
        stats.worker_busy(0);
        stats.worker_progress(0, 2_000_000);
        let text = line.render(&summary, &stats, start + Duration::from_secs(2));
        assert_eq!(
            text,
            "watchdog: progress: elapsed=2s ended=4/? ok=3 skipped=0 failed=1 timeout=1 \
             in_flight=1 items_per_s=2.0 mb_per_s=1.00 eta=?"
        );
        stats.listed = Some(10);
        for _ in 0..2 {
            summary.record(&ReportEntry::new("http://h/c", Status::HttpError));
        }
        let text = line.render(&summary, &stats, start + Duration::from_secs(4));
        // 6 of 10 in 4 s: 4 left at 1.5/s.
        assert!(
            text.ends_with(
                "ended=6/10 ok=3 skipped=0 failed=3 timeout=1 http_error=2 in_flight=1 \
                 items_per_s=1.0 mb_per_s=0.00 eta=2s"
            ),
            "{text}"
        );
        assert_eq!(compact_duration(Duration::from_secs(3723)), "1h02m03s");
        assert_eq!(compact_duration(Duration::from_secs(245)), "4m05s");
    }
}
