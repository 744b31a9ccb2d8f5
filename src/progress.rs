//! What a person sees on a terminal while the built-in fetch worker runs: a progress bar on stderr fed
//! by the worker's progress lines (bytes, rate and ETA when the size is known, a spinner when not).
//! The supervisor decides whether to draw it (stderr is a terminal and no `--quiet`); when disabled
//! nothing is drawn at all.
//!
//! Both bars speak one unit family, binary (KiB, MiB, as indicatif's `{bytes}` does), and show no ETA
//! until there is something to estimate from: `ETA -` rather than a made-up `ETA 0s`.

use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState,
    ProgressStyle,
};

use crate::protocol::ProgressLine;

/// A progress bar fed by the worker's progress lines; draws nothing when disabled.
pub struct FetchProgress {
    enabled: bool,
    bar: Option<ProgressBar>,
}

const BAR_TEMPLATE: &str =
    "{spinner} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta_known}";
const SPINNER_TEMPLATE: &str = "{spinner} {bytes} {bytes_per_sec} {elapsed}";

impl FetchProgress {
    pub fn new(enabled: bool) -> FetchProgress {
        FetchProgress { enabled, bar: None }
    }

    /// Updates the bar from one line of the worker.
    pub fn observe(&mut self, line: &ProgressLine) {
        if !self.enabled {
            return;
        }
        match line {
            ProgressLine::Start { total, .. } => {
                self.clear();
                let bar = ProgressBar::with_draw_target(*total, ProgressDrawTarget::stderr());
                set_style(&bar, *total);
                bar.enable_steady_tick(Duration::from_millis(200));
                self.bar = Some(bar);
            }
            ProgressLine::Progress { bytes, total } => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::with_draw_target(*total, ProgressDrawTarget::stderr());
                    set_style(&bar, *total);
                    bar
                });
                if let Some(total) = total {
                    if bar.length() != Some(*total) {
                        bar.set_length(*total);
                        set_style(bar, Some(*total));
                    }
                }
                bar.set_position(*bytes);
            }
            ProgressLine::Done { bytes, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(*bytes);
                }
                self.clear();
            }
            ProgressLine::Error { .. } | ProgressLine::Present { .. } => self.clear(),
            // Batch workers only; nothing to draw.
            ProgressLine::Phase { .. } => {}
        }
    }

    /// Removes the bar from the terminal (the worker finished, failed or was stopped).
    pub fn finish(&mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for FetchProgress {
    fn drop(&mut self) {
        self.clear();
    }
}

fn set_style(bar: &ProgressBar, total: Option<u64>) {
    let template = if total.is_some() {
        BAR_TEMPLATE
    } else {
        SPINNER_TEMPLATE
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        let style = style.with_key(
            "eta_known",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&render_eta(state.pos(), state.len(), state.eta()));
            },
        );
        bar.set_style(style.progress_chars("=> "));
    }
}

/// The ETA of a download: `-` until a byte has arrived (indicatif would say `0s`), then indicatif's
/// estimate, `0s` only once the whole size is there.
fn render_eta(position: u64, length: Option<u64>, eta: Duration) -> String {
    match length {
        Some(length) if position >= length => "0s".to_string(),
        Some(_) if position > 0 => HumanDuration(eta).to_string(),
        _ => "-".to_string(),
    }
}

/// How one list line of a batch ended, as the overall bar counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemEnd {
    /// Downloaded, with its size.
    Downloaded(u64),
    /// Nothing to do (complete from an earlier run, a duplicate): no download, so it counts in no
    /// rate and no ETA.
    Skipped,
    /// Failed, or invalid.
    Failed,
}

/// What a person sees during `watchdog batch` on a terminal: one overall bar (done/total, ok/failed,
/// files/s, MB/s, ETA) and one line per busy worker (its URL and bytes so far).
pub struct BatchProgress {
    multi: MultiProgress,
    overall: ProgressBar,
    workers: Vec<Option<ProgressBar>>,
    counts: OverallCounts,
    started: Instant,
}

/// What the overall bar of a batch has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct OverallCounts {
    downloaded: u64,
    skipped: u64,
    failed: u64,
    bytes: u64,
}

impl OverallCounts {
    fn add(&mut self, end: ItemEnd) {
        match end {
            ItemEnd::Downloaded(bytes) => {
                self.downloaded += 1;
                self.bytes += bytes;
            }
            ItemEnd::Skipped => self.skipped += 1,
            ItemEnd::Failed => self.failed += 1,
        }
    }

    /// `ok 10 skipped 90 failed 1 · 2.0 files/s · 1.5 MiB/s · ETA 45s`: the rates count downloads
    /// only, and the ETA (when the list's length is known) extrapolates the items attempted so far,
    /// `-` before one has ended.
    fn render(&self, elapsed: Duration, remaining: Option<u64>, causes: Option<&str>) -> String {
        let seconds = elapsed.as_secs_f64().max(0.001);
        let mut text = format!(
            "ok {} skipped {} failed {}{} · {:.1} files/s · {}/s",
            self.downloaded,
            self.skipped,
            self.failed,
            causes.map(|c| format!(" ({c})")).unwrap_or_default(),
            self.downloaded as f64 / seconds,
            HumanBytes((self.bytes as f64 / seconds) as u64)
        );
        if let Some(remaining) = remaining {
            let attempted = self.downloaded + self.failed;
            let eta = if attempted == 0 {
                "-".to_string()
            } else {
                HumanDuration(elapsed.mul_f64(remaining as f64 / attempted as f64)).to_string()
            };
            text.push_str(&format!(" · ETA {eta}"));
        }
        text
    }
}

const OVERALL_TEMPLATE: &str = "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}";
const OVERALL_UNKNOWN_TEMPLATE: &str = "{spinner} [{elapsed_precise}] {pos} done {msg}";
const WORKER_TEMPLATE: &str = "  {prefix:>3} {wide_msg} {bytes}/{total_bytes}";

impl BatchProgress {
    /// `total` is the number of list lines when it could be counted up front.
    pub fn new(total: Option<u64>) -> BatchProgress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(total.unwrap_or(0)));
        let template = if total.is_some() {
            OVERALL_TEMPLATE
        } else {
            OVERALL_UNKNOWN_TEMPLATE
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            overall.set_style(style);
        }
        overall.enable_steady_tick(Duration::from_millis(200));
        let progress = BatchProgress {
            multi,
            overall,
            workers: Vec::new(),
            counts: OverallCounts::default(),
            started: Instant::now(),
        };
        progress.overall.set_message(progress.counts.render(
            Duration::ZERO,
            total.map(|_| progress.overall.length().unwrap_or(0)),
            None,
        ));
        progress
    }

    /// Worker `slot` took the item `url`.
    pub fn worker_busy(&mut self, slot: usize, url: &str) {
        if self.workers.len() <= slot {
            self.workers.resize(slot + 1, None);
        }
        let bar = self.workers[slot].get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            if let Ok(style) = ProgressStyle::with_template(WORKER_TEMPLATE) {
                bar.set_style(style);
            }
            bar.set_prefix(format!("{}", slot + 1));
            bar
        });
        bar.set_message(crate::redact::redact_credentials(url));
        bar.set_position(0);
        bar.set_length(0);
    }

    /// Bytes so far of worker `slot`'s item.
    pub fn worker_progress(&mut self, slot: usize, bytes: u64, total: Option<u64>) {
        if let Some(Some(bar)) = self.workers.get(slot) {
            bar.set_length(total.unwrap_or(bytes));
            bar.set_position(bytes);
        }
    }

    /// Worker `slot` has no item (finished, or was replaced).
    pub fn worker_idle(&mut self, slot: usize) {
        if let Some(Some(bar)) = self.workers.get(slot) {
            bar.set_message("");
            bar.set_length(0);
            bar.set_position(0);
        }
    }

    /// One list line is finished (lines that needed no download too); `causes` are the failures so
    /// far by status (`6 timeout, 4 http_error`), as the status lines in a log count them.
    pub fn item_done(&mut self, end: ItemEnd, causes: Option<String>) {
        self.counts.add(end);
        self.overall.inc(1);
        let remaining = self
            .overall
            .length()
            .filter(|length| *length > 0)
            .map(|length| length.saturating_sub(self.overall.position()));
        self.overall.set_message(self.counts.render(
            self.started.elapsed(),
            remaining,
            causes.as_deref(),
        ));
    }

    /// Removes every bar from the terminal.
    pub fn finish(&mut self) {
        for bar in self.workers.drain(..).flatten() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_bar_counts_failures_by_cause() {
        let mut progress = BatchProgress::new(Some(3));
        progress.item_done(ItemEnd::Downloaded(10), None);
        progress.item_done(ItemEnd::Failed, Some("1 timeout".to_string()));
        let message = progress.overall.message();
        assert!(
            message.starts_with("ok 1 skipped 0 failed 1 (1 timeout) · "),
            "{message}"
        );
        progress.finish();
    }

    #[test]
    fn a_disabled_bar_ignores_everything() {
        let mut progress = FetchProgress::new(false);
        progress.observe(&ProgressLine::Progress {
            bytes: 1,
            total: None,
        });
        assert!(progress.bar.is_none());
        progress.finish();
    }

    #[test]
    fn no_eta_before_there_is_something_to_estimate_from() {
        assert_eq!(render_eta(0, Some(1000), Duration::ZERO), "-");
        assert_eq!(render_eta(0, None, Duration::ZERO), "-");
        assert_eq!(
            render_eta(500, Some(1000), Duration::from_secs(3)),
            "3 seconds"
        );
        assert_eq!(render_eta(1000, Some(1000), Duration::ZERO), "0s");
        let start = OverallCounts::default().render(Duration::ZERO, Some(100), None);
        assert!(start.ends_with("ETA -"), "{start}");
        assert!(!start.contains("0s"), "{start}");
    }

    #[test]
    fn the_overall_rate_counts_downloads_only_in_binary_units() {
        let mut counts = OverallCounts::default();
        for _ in 0..90 {
            counts.add(ItemEnd::Skipped);
        }
        let skipped_only = counts.render(Duration::from_secs(10), Some(10), None);
        assert!(
            skipped_only.contains("0.0 files/s · 0 B/s · ETA -"),
            "{skipped_only}"
        );
        for _ in 0..10 {
            counts.add(ItemEnd::Downloaded(1024 * 1024));
        }
        counts.add(ItemEnd::Failed);
        let text = counts.render(Duration::from_secs(10), Some(22), None);
        assert!(
            text.starts_with("ok 10 skipped 90 failed 1 · 1.0 files/s · 1.00 MiB/s · ETA "),
            "{text}"
        );
        // 11 items attempted in 10 s: 22 more take about 20 s, whatever the 90 skipped took.
        assert!(text.ends_with("ETA 20 seconds"), "{text}");
    }

    #[test]
    fn an_enabled_bar_follows_the_lines() {
        let mut progress = FetchProgress::new(true);
        progress.observe(&ProgressLine::Start {
            url: "http://h/a".into(),
            http_status: 200,
            total: None,
            temp_path: None,
        });
        progress.observe(&ProgressLine::Progress {
            bytes: 10,
            total: Some(100),
        });
        let bar = progress.bar.as_ref().map(|b| (b.position(), b.length()));
        assert_eq!(bar, Some((10, Some(100))));
        progress.observe(&ProgressLine::Done {
            path: "a".into(),
            bytes: 100,
            sha256: None,
            http_status: None,
        });
        assert!(progress.bar.is_none());
    }
}
