//! What a person sees on a terminal while the built-in fetch worker runs. Placeholder.

use crate::protocol::ProgressLine;

/// A progress bar fed by the worker's progress lines; draws nothing when disabled.
pub struct FetchProgress {
    _enabled: bool,
}

impl FetchProgress {
    pub fn new(enabled: bool) -> FetchProgress {
        FetchProgress { _enabled: enabled }
    }
    pub fn observe(&mut self, _line: &ProgressLine) {}
    pub fn finish(&mut self) {}
}
