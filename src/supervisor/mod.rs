//! The supervisor: run one command, watch it, and stop its whole process tree when it overruns.
//!
//! One thread makes every decision. It blocks in `poll(2)` on the signal self-pipe and the progress
//! channel with a timeout equal to the nearest timer (deadline, stall, SIGKILL escalation), so an idle
//! supervisor uses no CPU and a deadline fires within a millisecond or two. It is also the only place
//! that reaps children: once watchdog is a subreaper, orphaned descendants become its children too, and
//! a second `waitpid` caller could steal the command's exit status.

mod relay;
pub mod signal_watch;
pub mod spawn;
pub mod tree;

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::json;

use crate::cli::{FetchArgs, SuperviseArgs};
use crate::events::EventLog;
use crate::exit::Exit;
use crate::progress::FetchProgress;
use crate::protocol::{drain_fd, parse_heartbeat, LineReader, ProgressLine};
use crate::redact::redact_credentials;
use crate::signals::signal_name;
use relay::{Activity, Relays};
use signal_watch::{SignalWatch, FORWARDED};
use spawn::{spawn, ProgressChannel, SpawnSpec};

/// Why the command stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It exited by itself.
    Exited,
    /// The `--timeout` deadline passed.
    Deadline,
    /// No sign of life for `--stall`.
    Stall,
    /// watchdog received this signal and forwarded it.
    Forwarded(i32),
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Exited => "exited",
            Reason::Deadline => "deadline",
            Reason::Stall => "stall",
            Reason::Forwarded(_) => "forwarded",
        }
    }
}

/// How the command ended, as `wait(2)` told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Code(i32),
    Signal(i32),
}

impl Status {
    /// The shell's convention: the exit code, or 128 + the signal number.
    fn shell_code(self) -> u8 {
        match self {
            Status::Code(code) => (code & 0xff) as u8,
            Status::Signal(signal) => Exit::Signal(signal).code(),
        }
    }
}

/// Runs `command` under `args`; returns watchdog's exit code.
pub fn run(args: &SuperviseArgs, command: &[OsString]) -> ExitCode {
    match Supervisor::start(args, command) {
        Ok(Started::Running(supervisor)) => supervisor.run(),
        Ok(Started::Exit(code)) => code,
        Err((exit, message)) => {
            crate::report_error(message);
            exit.into()
        }
    }
}

enum Started {
    Running(Box<Supervisor>),
    /// Nothing to supervise (e.g. `fetch --help`): exit with this code.
    Exit(ExitCode),
}

/// The built-in fetch worker's state that the supervisor acts on.
struct FetchJob {
    resume: bool,
    temp_path: Option<PathBuf>,
    view: FetchProgress,
}

struct Supervisor {
    args: SuperviseArgs,
    started: Instant,
    child: Pid,
    /// The group to signal, when the command has one of its own.
    group: Option<Pid>,
    name: String,
    signals: SignalWatch,
    progress: Option<OwnedFd>,
    lines: LineReader,
    activity: Activity,
    relays: Relays,
    events: EventLog,
    fetch: Option<FetchJob>,
    status: Option<Status>,
    stop: Option<Stop>,
    has_subreaper: bool,
}

/// A teardown under way.
struct Stop {
    reason: Reason,
    /// When SIGKILL follows; `None` once it was sent.
    kill_at: Option<Instant>,
}

/// How often the tree is re-scanned while watchdog waits for signalled processes to die. SIGCHLD already
/// wakes the loop for every death it can see; this covers the rest (a grandchild dying under a live
/// parent) and costs nothing while the command runs normally.
const RESCAN: Duration = Duration::from_millis(50);

/// How long watchdog waits for relayed output to drain after the tree is gone.
const RELAY_DRAIN: Duration = Duration::from_secs(1);

type StartError = (Exit, String);

impl Supervisor {
    fn start(args: &SuperviseArgs, command: &[OsString]) -> Result<Started, StartError> {
        let started = Instant::now();
        let Some(program) = command.first() else {
            return Err((
                Exit::Failure,
                "missing COMMAND: give it after `--`".to_string(),
            ));
        };
        let name = program.to_string_lossy().into_owned();
        let mut fetch = None;
        let mut spec = SpawnSpec {
            program: program.clone(),
            args: &command[1..],
            arg0: None,
            own_group: !args.foreground,
            capture_output: args.stall.is_some(),
            pipe_stdin: false,
        };
        let mut worker_args = Vec::new();
        if program == "fetch" {
            let parsed = match FetchArgs::try_parse_from(command) {
                Ok(parsed) => parsed,
                Err(err) => return Ok(Started::Exit(crate::cli::exit_for_usage(err))),
            };
            let exe = std::env::current_exe().map_err(|e| {
                (
                    Exit::Failure,
                    format!("cannot find watchdog's own executable to run fetch: {e}"),
                )
            })?;
            worker_args.push(OsString::from(crate::fetch::WORKER_ARG));
            worker_args.extend_from_slice(&command[1..]);
            spec.program = exe.into_os_string();
            spec.arg0 = Some(OsString::from("watchdog-fetch"));
            spec.args = &worker_args;
            let show =
                !args.quiet && nix::unistd::isatty(std::io::stderr().as_raw_fd()).unwrap_or(false);
            fetch = Some(FetchJob {
                resume: parsed.resume,
                temp_path: None,
                view: FetchProgress::new(show),
            });
        }

        // First, so that its write end gets a low fd number (see ProgressChannel::new).
        let channel = ProgressChannel::new().map_err(|e| {
            (
                Exit::Failure,
                format!("cannot create the progress pipe: {e}"),
            )
        })?;
        let events = EventLog::open(args.events.as_deref(), started).map_err(|e| {
            let path = args
                .events
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display();
            (
                Exit::Failure,
                format!("--events: cannot create '{path}': {e}"),
            )
        })?;
        let has_subreaper = tree::become_subreaper();
        let signals = SignalWatch::install().map_err(|e| {
            (
                Exit::Failure,
                format!("cannot install signal handlers: {e}"),
            )
        })?;

        let mut spawned = spawn(&spec, channel).map_err(|e| {
            let (exit, what) = match e.kind() {
                std::io::ErrorKind::NotFound => (
                    Exit::NotFound,
                    "command not found (check the name and PATH)".to_string(),
                ),
                _ => (
                    Exit::CannotRun,
                    format!("{e} (check that it is an executable file)"),
                ),
            };
            (exit, format!("cannot run '{name}': {what}"))
        })?;
        let child = Pid::from_raw(spawned.child.id() as i32);
        let activity = Activity::new(started);
        let (mut relays, done) = Relays::new();
        if let Some(out) = spawned.child.stdout.take() {
            relays.start(out, std::io::stdout(), activity.clone(), done.clone());
        }
        if let Some(err) = spawned.child.stderr.take() {
            relays.start(err, std::io::stderr(), activity.clone(), done);
        }
        let argv: Vec<String> = command
            .iter()
            .map(|a| redact_credentials(&a.to_string_lossy()))
            .collect();
        let mut supervisor = Supervisor {
            args: args.clone(),
            started,
            child,
            group: (!args.foreground).then_some(child),
            name,
            signals,
            progress: Some(spawned.progress),
            lines: LineReader::new(),
            activity,
            relays,
            events,
            fetch,
            status: None,
            stop: None,
            has_subreaper,
        };
        supervisor
            .events
            .emit("start", json!({ "pid": child.as_raw(), "argv": argv }));
        Ok(Started::Running(Box::new(supervisor)))
    }

    fn run(mut self) -> ExitCode {
        let deadline = self.args.timeout.map(|d| self.started + d);
        loop {
            let arrived = self.signals.take();
            for (signal, came) in FORWARDED.iter().zip(arrived.forwarded) {
                if came {
                    self.forward(*signal);
                }
            }
            let children_left = self.reap();

            if self.status.is_some() {
                // The common case costs one waitpid: no children, so (as subreaper) no descendants.
                if !children_left || tree::descendants(nix::unistd::getpid()).is_empty() {
                    break;
                }
                if self.stop.is_none() {
                    // The command exited but left processes behind (a daemon, a background job). They are
                    // still watchdog's: stop them the same way, keeping the command's own status.
                    self.begin_stop(Reason::Exited);
                }
            }

            let now = Instant::now();
            if self.stop.is_none() {
                if deadline.is_some_and(|d| now >= d) {
                    self.begin_stop(Reason::Deadline);
                } else if let Some(stall) = self.args.stall {
                    if now >= self.activity.last() + stall {
                        self.begin_stop(Reason::Stall);
                    }
                }
            }
            if let Some(kill_at) = self.stop.as_ref().and_then(|s| s.kill_at) {
                if now >= kill_at {
                    self.kill_all();
                    continue;
                }
            }

            let wake_at = self.next_wake(deadline);
            self.wait_for_events(wake_at);
        }
        self.finish()
    }

    /// The nearest moment something must happen without any event arriving.
    fn next_wake(&self, deadline: Option<Instant>) -> Option<Instant> {
        match &self.stop {
            Some(stop) => {
                let rescan = Instant::now() + RESCAN;
                Some(stop.kill_at.map_or(rescan, |k| k.min(rescan)))
            }
            None => {
                let stall = self.args.stall.map(|s| self.activity.last() + s);
                [deadline, stall].into_iter().flatten().min()
            }
        }
    }

    /// Blocks until a signal, a progress line or `wake_at`.
    fn wait_for_events(&mut self, wake_at: Option<Instant>) {
        let timeout = match wake_at {
            None => PollTimeout::NONE,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                // Round up: waking a little early would only spin once more.
                let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let progress_ready = {
            let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
            if let Some(progress) = &self.progress {
                fds.push(PollFd::new(progress.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => fds
                    .get(1)
                    .and_then(|fd| fd.revents())
                    .is_some_and(|r| !r.is_empty()),
                Err(Errno::EINTR) => false,
                Err(_) => false,
            }
        };
        if progress_ready {
            self.read_progress();
        }
    }

    fn read_progress(&mut self) {
        let Some(fd) = self.progress.as_ref().map(|fd| fd.as_raw_fd()) else {
            return;
        };
        let mut lines = Vec::new();
        let open = drain_fd(fd, &mut self.lines, |line| {
            if let Some(object) = parse_heartbeat(line) {
                lines.push(object);
            }
        });
        for object in lines {
            self.activity.touch();
            if let Some(fetch) = self.fetch.as_mut() {
                if let Ok(line) = serde_json::from_value::<ProgressLine>(serde_json::Value::Object(
                    object.clone(),
                )) {
                    if let ProgressLine::Start {
                        temp_path: Some(path),
                        ..
                    } = &line
                    {
                        fetch.temp_path = Some(PathBuf::from(path));
                    }
                    fetch.view.observe(&line);
                }
            }
            if self.events.is_enabled() {
                self.events.emit("progress", json!({ "data": object }));
            }
        }
        if !matches!(open, Ok(true)) {
            // End of file (every holder of the write end is gone) or an error: stop polling it.
            self.progress = None;
        }
    }

    /// Reaps every child that has exited; the command's own status is kept.
    /// Returns whether watchdog still has children; with a subreaper, none means no descendants at all,
    /// since every orphan is re-parented to watchdog.
    fn reap(&mut self) -> bool {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.child => {
                    self.status = Some(Status::Code(code))
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == self.child => {
                    self.status = Some(Status::Signal(signal as i32))
                }
                Ok(WaitStatus::StillAlive) => return true,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(_) => return false, // ECHILD: no children left
            }
        }
    }

    /// Forwards a signal watchdog received to the command, then tears the tree down.
    fn forward(&mut self, signal: i32) {
        match &mut self.stop {
            // A second signal while stopping is passed on too (a user pressing Ctrl-C twice means it).
            Some(_) => {
                self.send(signal, "forwarded");
            }
            None => {
                self.stop = Some(Stop {
                    reason: Reason::Forwarded(signal),
                    kill_at: None,
                });
                self.send(signal, "forwarded");
                self.arm_kill();
            }
        }
    }

    fn begin_stop(&mut self, reason: Reason) {
        self.stop = Some(Stop {
            reason,
            kill_at: None,
        });
        if self.args.kill_after.is_zero() {
            // No grace: the first signal would only be a formality, SIGKILL is the one that counts.
            self.kill_all();
            return;
        }
        let why = match reason {
            Reason::Exited => "cleanup",
            other => other.as_str(),
        };
        self.send(self.args.signal, why);
        self.arm_kill();
    }

    fn arm_kill(&mut self) {
        if self.args.kill_after.is_zero() {
            self.kill_all();
        } else if let Some(stop) = self.stop.as_mut() {
            stop.kill_at = Some(Instant::now() + self.args.kill_after);
        }
    }

    /// Sends `signal` to the command's group (or, with --foreground, to the command) and to every
    /// descendant that left it, then SIGCONT so that a stopped process acts on it.
    fn send(&mut self, signal: i32, why: &str) {
        // The group first: it holds almost every process and needs no scan of /proc.
        let mut count = 0;
        if let Some(group) = self.group {
            if tree::signal_pid_raw(Pid::from_raw(-group.as_raw()), signal) {
                count += 1;
            }
        }
        let targets = self.targets();
        for pid in &targets {
            if tree::signal_pid_raw(*pid, signal) {
                count += 1;
            }
        }
        if signal != libc::SIGKILL && signal != libc::SIGCONT {
            if let Some(group) = self.group {
                tree::signal_group(group, Signal::SIGCONT);
            }
            for pid in &targets {
                tree::signal_pid(*pid, Signal::SIGCONT);
            }
        }
        self.announce(signal, why, targets.len().max(count));
    }

    /// Processes to signal one by one: the whole tree; with --foreground the command alone at first.
    fn targets(&self) -> Vec<Pid> {
        let mut targets = if self.args.foreground && self.status.is_none() {
            vec![self.child]
        } else {
            tree::descendants(nix::unistd::getpid())
        };
        if self.status.is_none() && !targets.contains(&self.child) {
            targets.push(self.child);
        }
        targets
    }

    fn announce(&mut self, signal: i32, why: &str, count: usize) {
        let name = signal_name(signal);
        if self.args.verbose {
            let detail = match why {
                "deadline" => format!(
                    " (deadline of {} passed)",
                    human(self.args.timeout.unwrap_or_default())
                ),
                "stall" => format!(
                    " (no sign of life for {})",
                    human(self.args.stall.unwrap_or_default())
                ),
                "cleanup" => " (left behind after it exited)".to_string(),
                _ => String::new(),
            };
            let what = if why == "cleanup" {
                "processes started by command"
            } else {
                "command"
            };
            eprintln!(
                "watchdog: sending signal {name} to {what} '{}'{detail}",
                self.name
            );
        }
        self.events.emit(
            "signal",
            json!({ "signal": name, "reason": why, "pids": count }),
        );
    }

    /// SIGKILLs the whole tree and waits until it is gone. Repeats, because a process can fork between a
    /// scan and the kill; each pass takes the new ones.
    fn kill_all(&mut self) {
        if let Some(stop) = self.stop.as_mut() {
            stop.kill_at = None;
        }
        let why = match self.stop.as_ref().map(|s| s.reason) {
            Some(Reason::Exited) | None => "cleanup",
            Some(other) => other.as_str(),
        };
        self.send(libc::SIGKILL, why);
        let me = nix::unistd::getpid();
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let children_left = self.reap();
            let left = if children_left {
                tree::descendants(me)
            } else {
                Vec::new()
            };
            let group_alive = self
                .group
                .is_some_and(|g| tree::signal_pid_raw(Pid::from_raw(-g.as_raw()), 0));
            if left.is_empty() && !group_alive && (self.status.is_some() || !self.has_subreaper) {
                return;
            }
            if Instant::now() > give_up {
                crate::report_error(format!(
                    "{} processes did not die after SIGKILL (uninterruptible sleep?)",
                    left.len()
                ));
                return;
            }
            if let Some(group) = self.group {
                tree::signal_group(group, Signal::SIGKILL);
            }
            for pid in left {
                tree::signal_pid(pid, Signal::SIGKILL);
            }
            self.signals_wait(Duration::from_millis(5));
        }
    }

    /// Sleeps until a signal arrives (SIGCHLD, typically) or `limit` passes.
    fn signals_wait(&mut self, limit: Duration) {
        let mut fds = [PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
        let ms = limit.as_millis().min(i32::MAX as u128) as i32;
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        );
        let arrived = self.signals.take();
        for (signal, came) in FORWARDED.iter().zip(arrived.forwarded) {
            if came && self.stop.is_none() {
                self.stop = Some(Stop {
                    reason: Reason::Forwarded(*signal),
                    kill_at: None,
                });
            }
        }
    }

    /// Everything after the tree is gone: drain output, clean up a killed download, report, pick the
    /// exit code.
    fn finish(mut self) -> ExitCode {
        if self.progress.is_some() {
            self.read_progress();
        }
        let reason = self.stop.as_ref().map_or(Reason::Exited, |s| s.reason);
        let status = self.status.unwrap_or(Status::Signal(libc::SIGKILL));
        if let Some(fetch) = self.fetch.as_mut() {
            fetch.view.finish();
            if reason != Reason::Exited && !fetch.resume {
                if let Some(temp) = &fetch.temp_path {
                    let _ = std::fs::remove_file(temp);
                }
            }
        }
        let relays = std::mem::replace(&mut self.relays, Relays::new().0);
        relays.finish(RELAY_DRAIN);

        let code = match reason {
            Reason::Exited => status.shell_code(),
            Reason::Deadline | Reason::Stall if self.args.preserve_status => status.shell_code(),
            Reason::Deadline | Reason::Stall => Exit::TimedOut.code(),
            Reason::Forwarded(signal) => Exit::Signal(signal).code(),
        };
        let status_json = match status {
            Status::Code(code) => json!({ "code": code }),
            Status::Signal(signal) => json!({ "signal": signal }),
        };
        self.events.emit(
            "exit",
            json!({
                "reason": reason.as_str(),
                "exit_code": code,
                "status": status_json,
                "elapsed_ms": self.started.elapsed().as_millis() as u64,
            }),
        );
        ExitCode::from(code)
    }
}

/// A duration as a person wrote it, roughly: `5s`, `300ms`, `1.5s`.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
