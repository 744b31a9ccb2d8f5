//! What a person sees on a terminal while the built-in fetch worker runs: a progress bar on stderr fed
//! by the worker's progress lines (bytes, rate and ETA when the size is known, a spinner when not).
//! The supervisor decides whether to draw it (stderr is a terminal and no `--quiet`); when disabled
//! nothing is drawn at all.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::protocol::ProgressLine;

/// A progress bar fed by the worker's progress lines; draws nothing when disabled.
pub struct FetchProgress {
    enabled: bool,
    bar: Option<ProgressBar>,
}

const BAR_TEMPLATE: &str = "{spinner} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}";
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
        bar.set_style(style.progress_chars("=> "));
    }
}

/// What a person sees during `watchdog batch` on a terminal: one overall bar (done/total, ok/failed,
/// files/s, MB/s, ETA) and one line per busy worker (its URL and bytes so far).
pub struct BatchProgress {
    multi: MultiProgress,
    overall: ProgressBar,
    workers: Vec<Option<ProgressBar>>,
    ok: u64,
    failed: u64,
    bytes: u64,
    started: Instant,
}

const OVERALL_TEMPLATE: &str =
    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} ETA {eta}";
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
        BatchProgress {
            multi,
            overall,
            workers: Vec::new(),
            ok: 0,
            failed: 0,
            bytes: 0,
            started: Instant::now(),
        }
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
    pub fn item_done(&mut self, ok: bool, bytes: u64, causes: Option<String>) {
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        self.bytes += bytes;
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        self.overall.inc(1);
        self.overall.set_message(format!(
            "ok {} failed {}{} · {:.1} files/s · {:.1} MB/s",
            self.ok,
            self.failed,
            causes.map(|c| format!(" ({c})")).unwrap_or_default(),
            (self.ok + self.failed) as f64 / seconds,
            self.bytes as f64 / seconds / 1e6
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
        progress.item_done(true, 10, None);
        progress.item_done(false, 0, Some("1 timeout".to_string()));
        let message = progress.overall.message();
        assert!(
            message.starts_with("ok 1 failed 1 (1 timeout) · "),
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
