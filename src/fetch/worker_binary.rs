//! Where the download worker is: `watchdog-fetch`, installed beside `watchdog`.
//!
//! Downloads run in a binary of their own, which holds the HTTP engine (see [`super::transport`]):
//! the supervisor runs it for `watchdog -- fetch URL`, and batch mode starts its workers from it. It
//! is looked for in the directory of the running executable (symbolic links resolved) and nowhere
//! else, not along PATH: the two are built and installed together, and a `watchdog-fetch` of another
//! version could speak another progress protocol.

use std::path::PathBuf;

/// The worker binary's file name.
pub const WORKER_BINARY: &str = "watchdog-fetch";

/// The path of `watchdog-fetch` beside the running executable, or the one error line that says where
/// it was looked for and what to do.
pub fn worker_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| {
        format!("cannot find watchdog's own executable, beside which {WORKER_BINARY} is looked for: {e}")
    })?;
    let path = exe.with_file_name(WORKER_BINARY);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(missing(&path, "not a file")),
        Err(e) => Err(missing(&path, &e.to_string())),
    }
}

fn missing(path: &std::path::Path, why: &str) -> String {
    format!(
        "the download worker '{}' is missing ({why}): downloads run in {WORKER_BINARY}, which must \
         be installed beside watchdog (`cargo install` installs both; copy both binaries together)",
        path.display()
    )
}
