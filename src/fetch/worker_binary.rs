//! Where the download worker is: `watchdog-fetch`, installed beside `watchdog`.
//!
//! Downloads run in a binary of their own, which holds the HTTP engine (see [`super::transport`]):
//! the supervisor runs it for `watchdog -- fetch URL`, and batch mode starts its workers from it. It
//! is looked for in the directory of the running executable (symbolic links resolved) and nowhere
//! else, not along PATH: the two are built and installed together, and a `watchdog-fetch` of another
//! version could speak another progress protocol.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// The version of watchdog and of the worker binary built with it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long the worker binary may take to say its version.
const VERSION_ANSWER: Duration = Duration::from_secs(10);

/// [`worker_binary`], checked to be of this watchdog's version: the worker is asked (`watchdog-fetch
/// --version`), once, before a batch starts, where a worker of another version would otherwise fail
/// every item. `Err` is the one line that says what is wrong. (`watchdog -- fetch` asks nothing: the
/// worker checks the version its hidden argument carries, see [`other_version`].)
pub fn worker_binary_of_this_version() -> Result<PathBuf, String> {
    let path = worker_binary()?;
    let answer = version_of(&path).map_err(|e| {
        format!(
            "the download worker '{}' did not say its version ({e}): install watchdog and {WORKER_BINARY} \
             from the same build",
            path.display()
        )
    })?;
    // clap's `--version` line: the name, then the version.
    let theirs = answer.split_whitespace().last().unwrap_or_default();
    if theirs != VERSION {
        return Err(other_version(&path, theirs, VERSION));
    }
    Ok(path)
}

/// The one line that says the worker at `path` (version `worker`) and watchdog (version
/// `watchdog`) are of different versions; an empty version is one that said none.
pub fn other_version(path: &Path, worker: &str, watchdog: &str) -> String {
    let name = |v: &str| {
        if v.is_empty() {
            "of another version".to_string()
        } else {
            format!("version {v}")
        }
    };
    format!(
        "the download worker '{}' is {}, and watchdog is {}: install both from the same build \
         (`cargo install` installs both; copy both binaries together)",
        path.display(),
        name(worker),
        name(watchdog)
    )
}

/// What `path --version` printed on stdout, within [`VERSION_ANSWER`].
fn version_of(path: &Path) -> Result<String, String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::io::Read;
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let hung = match child.stdout.take() {
        Some(mut out) => {
            let deadline = Instant::now() + VERSION_ANSWER;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
                let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, timeout) {
                    Ok(0) => break true,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.to_string()),
                    Ok(_) => {}
                }
                let mut chunk = [0u8; 256];
                match out.read(&mut chunk) {
                    Ok(0) => break false,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        None => false,
    };
    if hung {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if hung {
        return Err(format!("no answer in {} s", VERSION_ANSWER.as_secs()));
    }
    if !status.success() {
        return Err(format!("it exited with {status}"));
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
