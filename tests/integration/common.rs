//! Shared set-up: run the binary the way a user would, and prove afterwards that no process it started
//! survived.
//!
//! Every test gets a [`Marker`]: a unique value put into the environment of the watchdog it runs. Every
//! process watchdog starts inherits it, so the test can find its own processes (and only its own) in /proc,
//! whatever they renamed themselves to or however they escaped the process group.

#![allow(dead_code)] // each feature module uses its own part of these helpers

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::server::TestServer;

pub const MARKER_ENV: &str = "WATCHDOG_TEST_MARKER";

/// The watchdog binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_watchdog"))
}

/// The download worker binary under test, `watchdog-fetch`, which watchdog finds beside itself.
pub fn fetch_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_watchdog-fetch"))
}

/// A unique tag for the processes of one test. Dropping it fails the test when a process still
/// carries the tag (after killing it, so that nothing is left for the next test): every test that has
/// a marker proves that no process watchdog started outlived it. A test that leaves processes behind
/// on purpose (a documented limit) says so with [`Marker::kill_survivors`] before the marker drops.
pub struct Marker {
    value: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Marker {
    pub fn new(test: &str) -> Marker {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        Marker {
            value: format!("{test}-{}-{n}", std::process::id()),
        }
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// A `Command` for watchdog with the marker set and the caller's proxy settings cleared.
    pub fn watchdog(&self) -> Command {
        self.command(bin())
    }

    /// `watchdog-fetch __fetch-worker@VERSION`, the download worker alone (no supervisor), as
    /// [`Marker::watchdog`] sets it up.
    pub fn fetch_worker(&self) -> Command {
        let mut cmd = self.command(fetch_bin());
        cmd.arg(watchdog::FETCH_WORKER_ARG);
        cmd
    }

    fn command(&self, program: PathBuf) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(MARKER_ENV, &self.value);
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Live (non-zombie) processes that carry the marker.
    pub fn survivors(&self) -> Vec<u32> {
        processes_with_env(MARKER_ENV, &self.value)
    }

    /// Asserts that no process carrying the marker is alive. Zombies are not alive. A process killed a
    /// moment ago can take a little while to become a zombie, so this waits up to a few seconds.
    pub fn assert_no_survivors(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let alive = self.survivors();
            if alive.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let names: Vec<String> = alive.iter().map(|pid| describe(*pid)).collect();
                panic!("processes outlived watchdog: {}", names.join(", "));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills every live process that carries the marker (a test's deliberate leftovers); returns how
    /// many there were.
    pub fn kill_survivors(&self) -> usize {
        let alive = self.survivors();
        for pid in &alive {
            // SAFETY: plain kill(2) on a pid we just saw carrying our marker.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
        alive.len()
    }

    /// Waits (bounded) until `count` live processes carry the marker; returns their pids.
    pub fn wait_for_processes(&self, count: usize, timeout: Duration) -> Vec<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let alive = self.survivors();
            if alive.len() >= count || Instant::now() > deadline {
                return alive;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Marker {
    /// Fails the test when a process outlived it. A process killed a moment ago can take a little while
    /// to become a zombie, so this waits (bounded) before calling anything a survivor, then kills the
    /// survivors and fails. When the test is already failing, the survivors are only killed: a second
    /// panic would abort the whole test binary.
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut alive = self.survivors();
        while !alive.is_empty() && Instant::now() < deadline && !std::thread::panicking() {
            std::thread::sleep(Duration::from_millis(20));
            alive = self.survivors();
        }
        if alive.is_empty() {
            return;
        }
        let names: Vec<String> = alive.iter().map(|pid| describe(*pid)).collect();
        self.kill_survivors();
        if !std::thread::panicking() {
            panic!(
                "processes outlived watchdog (killed now): {}",
                names.join(", ")
            );
        }
    }
}

/// The opt-out for tests that cannot run here: set to 1, a test whose tool or privilege is missing
/// says so on stderr and passes without running. Unset (scripts/test.sh and .ci/run never set it), such
/// a test fails: a test that did not run is not a pass.
pub const ALLOW_SKIP_ENV: &str = "WATCHDOG_TEST_ALLOW_SKIP";

/// Whether `test` can run here, given whether what it needs is `available` (`needs` says what that is
/// and how to get it). When it is missing the test fails, unless [`ALLOW_SKIP_ENV`] is `1`: then this
/// says so on stderr and returns false, and the caller returns.
pub fn can_run(test: &str, available: bool, needs: &str) -> bool {
    if available {
        return true;
    }
    let allowed = std::env::var(ALLOW_SKIP_ENV).is_ok_and(|v| v == "1");
    assert!(
        allowed,
        "{test}: cannot run here: needs {needs} (set {ALLOW_SKIP_ENV}=1 to skip it on purpose)"
    );
    eprintln!("{test}: SKIPPED ({ALLOW_SKIP_ENV}=1): needs {needs}");
    false
}

/// True when the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Pids of live processes whose environment has `name=value`.
pub fn processes_with_env(name: &str, value: &str) -> Vec<u32> {
    let needle = format!("{name}={value}").into_bytes();
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || is_zombie(pid) {
            continue;
        }
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ
            .split(|&b| b == 0)
            .any(|var| var == needle.as_slice())
            && !is_zombie(pid)
        {
            found.push(pid);
        }
    }
    found
}

fn is_zombie(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_none_or(|s| s == "Z" || s == "X"),
        Err(_) => true,
    }
}

fn describe(pid: u32) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    format!("{pid} ({})", cmdline.join(" ").trim())
}

/// A test's world: a marker, the misbehaving loopback server, and a root directory of its own that
/// holds what the test writes and nothing else, so that anything written where it should not be shows
/// up. Each feature module adds the methods it needs in its own `impl World`.
/// Variables that `--shard auto` reads; cleared so that a test run inside a Slurm or Kubernetes job
/// behaves like anywhere else.
pub const SCHEDULER_ENV: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
    "SLURM_ARRAY_TASK_COUNT",
    "JOB_COMPLETION_INDEX",
];

pub struct World {
    pub marker: Marker,
    pub server: TestServer,
    pub root: tempfile::TempDir,
}

impl World {
    pub fn new(name: &str) -> World {
        World {
            marker: Marker::new(name),
            server: TestServer::start(),
            root: tempdir(),
        }
    }

    /// `name` in the root directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// `path` on the test server.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

/// A path as the `&str` argument of a command line.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The contents of `path`, failing the test when it cannot be read.
pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// True when `path` exists.
pub fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// What a finished watchdog run left: exit code, output, wall time.
pub struct Run {
    pub code: Option<i32>,
    /// The signal watchdog died of, when it passed on the command's death by one (GNU's way).
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `cmd` to completion, failing the test (instead of hanging it) if watchdog itself takes longer
/// than `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Run {
    run_bounded_with_input(cmd, None, limit)
}

/// [`run_bounded`] with `input` written to watchdog's stdin (then closed), as in `cat list | watchdog`.
pub fn run_bounded_with_input(cmd: &mut Command, input: Option<&[u8]>, limit: Duration) -> Run {
    use std::io::{Read, Write};
    use std::process::Stdio;
    use wait_timeout::ChildExt;
    let started = Instant::now();
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watchdog");
    let writer = input.map(|input| {
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // A thread, so that a watchdog that stops reading cannot block the test.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        })
    });
    // Read both pipes on threads so a chatty command cannot fill one and block.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = match child.wait_timeout(limit).expect("wait for watchdog") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog did not return within {limit:?}");
        }
    };
    let elapsed = started.elapsed();
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Run {
        code: status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        elapsed,
    }
}

/// Runs watchdog with `args` under `marker`, bounded by 30 s.
pub fn watchdog(marker: &Marker, args: &[&str]) -> Run {
    run_bounded(marker.watchdog().args(args), Duration::from_secs(30))
}

/// Sends `signal` to a watchdog the test started, then waits for it, failing the test (instead of
/// hanging it) if it has not exited within `limit`.
pub fn signal_and_wait(
    child: &mut std::process::Child,
    signal: i32,
    limit: Duration,
) -> std::process::ExitStatus {
    use wait_timeout::ChildExt;
    // SAFETY: kill(2) on a child this test started and has not reaped.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    match child.wait_timeout(limit).expect("wait for watchdog") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog did not exit within {limit:?} of signal {signal}");
        }
    }
}
