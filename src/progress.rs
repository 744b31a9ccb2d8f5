//! What a person sees on a terminal while the built-in fetch worker runs: a progress bar on stderr fed
//! by the worker's progress lines (bytes, rate and ETA when the size is known, a spinner when not).
//! The supervisor decides whether to draw it (stderr is a terminal and no `--quiet`); when disabled
//! nothing is drawn at all.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
            ProgressLine::Error { .. } => self.clear(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            sha256: String::new(),
        });
        assert!(progress.bar.is_none());
    }
}
