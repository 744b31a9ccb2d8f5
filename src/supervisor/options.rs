//! What the supervisor is asked to do, as plain data: the command line (`crate::cli`) parses its flags
//! and converts them once, so the supervisor depends on no argument parser.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// How the supervisor watches and stops the command.
#[derive(Debug, Clone)]
pub struct SuperviseOptions {
    /// Hard deadline; `None` for none.
    pub timeout: Option<Duration>,
    /// Longest silence (no progress line, no output) allowed; `None` for no stall watch.
    pub stall: Option<Duration>,
    /// The first signal sent when the command overruns.
    pub signal: i32,
    /// Grace between the first signal and SIGKILL; zero sends SIGKILL at once.
    pub kill_after: Duration,
    /// Exit with the command's own status when it was stopped, instead of 124.
    pub preserve_status: bool,
    /// Keep the command in watchdog's process group (it may read the terminal).
    pub foreground: bool,
    /// GNU timeout's line on stderr for every signal sent.
    pub verbose: bool,
    /// A line on stderr naming the containment mechanism (`-vv`: one `-v` keeps GNU's output exact,
    /// which scripts may parse).
    pub verbose_contain: bool,
    /// No progress bar for a download.
    pub quiet: bool,
    /// Where to write the `--events` lines.
    pub events: Option<PathBuf>,
    /// How the command's tree is contained.
    pub contain: crate::process::contain::Contain,
}

/// The command to run. To the supervisor the built-in downloader is a command like any other, plus a
/// progress view and the clean-up of its temp file.
#[derive(Debug, Clone)]
pub struct Supervised {
    /// What to exec.
    pub program: OsString,
    pub args: Vec<OsString>,
    /// `argv[0]` as the command should see it, when it differs from `program`.
    pub arg0: Option<OsString>,
    /// The name messages use: the command as the user wrote it.
    pub name: String,
    /// The argv as the user wrote it, for the `--events` start line (credentials are redacted there).
    pub argv: Vec<OsString>,
    /// Set for the built-in download worker.
    pub download: Option<DownloadView>,
}

/// What the supervisor does for a download worker beyond running it.
#[derive(Debug, Clone, Copy)]
pub struct DownloadView {
    /// `--resume`: a killed download keeps its partial file for the next try.
    pub keep_partial: bool,
}
