//! What an unattended batch tells the outside while it runs, on one schedule: a status line on stderr
//! ([`super::status_line`]) and the metrics file ([`super::metrics`]), every `--progress-interval`.
//!
//! The runner asks when the next one is due ([`Watch::due_at`]) and folds that into its one wait, so
//! the schedule costs no thread and no wake-up between lines.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::metrics::{earlier_last_success, epoch_seconds, HostTally, Metrics};
use super::run_stats::RunStats;
use super::status_line::StatusLine;
use super::summary::Summary;

pub struct Watch {
    interval: Option<Duration>,
    next: Option<Instant>,
    status: Option<StatusLine>,
    metrics: Option<PathBuf>,
    /// The last success an earlier run recorded in the metrics file.
    last_success: Option<f64>,
    /// The metrics file could not be written (said once).
    metrics_failed: bool,
}

impl Watch {
    /// `status_lines`: write them (stderr is no terminal, no `-q`); `metrics`: the file, if any.
    /// Nothing is scheduled when `interval` is `None` or there is nothing to write.
    pub fn new(
        interval: Option<Duration>,
        status_lines: bool,
        metrics: Option<PathBuf>,
        stats: &RunStats,
    ) -> Watch {
        let status = (status_lines && interval.is_some()).then(|| StatusLine::new(stats.started));
        let scheduled = interval.filter(|_| status.is_some() || metrics.is_some());
        Watch {
            interval: scheduled,
            next: scheduled.map(|i| stats.started + i),
            status,
            last_success: metrics.as_deref().and_then(earlier_last_success),
            metrics,
            metrics_failed: false,
        }
    }

    /// When the next line or file is due.
    pub fn due_at(&self) -> Option<Instant> {
        self.next
    }

    /// Writes what is due at `now`, if anything.
    pub fn tick(&mut self, summary: &Summary, stats: &RunStats, now: Instant) {
        let (Some(next), Some(interval)) = (self.next, self.interval) else {
            return;
        };
        if now < next {
            return;
        }
        // The next one an interval after this one was due, or after now when the loop was late.
        let mut at = next + interval;
        if at <= now {
            at = now + interval;
        }
        self.next = Some(at);
        if let Some(status) = self.status.as_mut() {
            crate::say(status.render(summary, stats, now));
        }
        if let Err(message) = self.write_metrics(summary, stats, None) {
            self.warn_once(message);
        }
    }

    /// The run ended, with every item done (`true`) or not: the last metrics file.
    pub fn finish(&mut self, summary: &Summary, stats: &RunStats, success: bool) {
        if let Err(message) = self.write_metrics(summary, stats, Some(success)) {
            self.warn_once(message);
        }
    }

    /// A metrics file that cannot be written is said once; the downloads go on.
    fn warn_once(&mut self, message: String) {
        if !self.metrics_failed {
            self.metrics_failed = true;
            crate::report_error(format!("batch: {message}"));
        }
    }

    /// Writes the metrics file, if asked for; `ended`: the run ended, with every item done or not.
    pub fn write_metrics(
        &mut self,
        summary: &Summary,
        stats: &RunStats,
        ended: Option<bool>,
    ) -> Result<(), String> {
        let Some(path) = &self.metrics else {
            return Ok(());
        };
        let now = epoch_seconds(std::time::SystemTime::now());
        if ended == Some(true) {
            self.last_success = Some(now);
        }
        let metrics = Metrics {
            counts: *summary.counts(),
            listed: stats.listed,
            bytes: summary.bytes,
            attempts: summary.attempts,
            retries: summary.retries,
            in_flight: Some(stats.in_flight()),
            hosts_tripped: Some(stats.hosts_tripped()),
            held_back: Some(summary.held_back),
            start_time: Some(epoch_seconds(stats.started_at)),
            end_time: ended.map(|_| now),
            last_success: self.last_success,
            hosts: stats.hosts.as_ref().map(HostTally::top).unwrap_or_default(),
        };
        metrics
            .write_to(path)
            .map_err(|e| format!("cannot write the metrics file '{}': {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_due_an_interval_apart_and_never_bunch_up_after_a_late_wake_up() {
        let stats = RunStats::new(None, false);
        let second = Duration::from_secs(1);
        let off = Watch::new(None, true, None, &stats);
        assert_eq!(off.due_at(), None);
        let no_output = Watch::new(Some(second), false, None, &stats);
        assert_eq!(
            no_output.due_at(),
            None,
            "nothing to write, nothing scheduled"
        );
        let mut watch = Watch::new(Some(second), true, None, &stats);
        let start = stats.started;
        assert_eq!(watch.due_at(), Some(start + second));
        let summary = Summary::new();
        watch.tick(&summary, &stats, start + Duration::from_millis(500));
        assert_eq!(watch.due_at(), Some(start + second), "not due yet");
        watch.tick(&summary, &stats, start + Duration::from_millis(1100));
        assert_eq!(watch.due_at(), Some(start + 2 * second));
        // A loop late by several intervals writes one line, the next an interval later.
        watch.tick(&summary, &stats, start + Duration::from_millis(5500));
        assert_eq!(watch.due_at(), Some(start + Duration::from_millis(6500)));
    }
}
