//! The supervisor: run one command, watch it, and stop its whole process tree when it overruns.
//!
//! One thread makes every decision. It blocks in the process layer's wait on the signal self-pipe and
//! the progress channel with a timeout equal to the nearest timer (deadline, stall, SIGKILL escalation),
//! so an idle supervisor uses no CPU and a deadline fires within a millisecond or two. Spawning, reaping,
//! signalling and the final sweep belong to [`crate::process`]; this module holds the rules: when to
//! stop the command, with which signal, and what to exit with.

mod options;
mod relay;

pub use options::{DownloadView, SuperviseOptions, Supervised};

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::events::{EndedAs, Event, EventLog};
use crate::exit::Exit;
use crate::process::contain::{self, Init, SpawnError};
use crate::process::{forwarded_with, Ended, Processes, ProgressChannel, SpawnSpec};
use crate::progress::FetchProgress;
use crate::protocol::{drain_fd, is_json_object, Drained, LineReader, ProgressLine};
use crate::redact::redact_argv;
use crate::signals::signal_name;
use relay::{Activity, Relays};

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

/// The shell's convention for how a process ended: its exit code, or 128 + the signal number.
fn shell_code(ended: Ended) -> u8 {
    match ended {
        Ended::Code(code) => (code & 0xff) as u8,
        Ended::Signal(signal) => Exit::Signal(signal).code(),
    }
}

/// Runs `command` under `args`; returns watchdog's exit code.
pub fn run(args: &SuperviseOptions, command: Supervised) -> ExitCode {
    match Supervisor::start(args, command) {
        Ok(supervisor) => supervisor.run(),
        Err((exit, message)) => {
            crate::report_error(message);
            exit.into()
        }
    }
}

/// The built-in fetch worker's state that the supervisor acts on.
struct FetchJob {
    resume: bool,
    temp_path: Option<PathBuf>,
    view: FetchProgress,
}

struct Supervisor {
    args: SuperviseOptions,
    started: Instant,
    child: Pid,
    /// The group to signal, when the command has one of its own.
    group: Option<Pid>,
    name: String,
    processes: Processes,
    progress: Option<OwnedFd>,
    lines: LineReader,
    activity: Activity,
    relays: Relays,
    events: EventLog,
    fetch: Option<FetchJob>,
    status: Option<Ended>,
    stop: Option<Stop>,
    /// SIGKILL was sent to the whole tree: what is left is the final sweep's.
    killed: bool,
    /// SIGKILL was sent while the command itself was running (`-s KILL`, or the escalation): if it
    /// died of it, watchdog exits 137, as GNU timeout does.
    killed_command: bool,
    /// Children reaped since the last look (kept to spare an allocation per reap).
    ended: Vec<(Pid, Ended)>,
    /// Under `--contain pidns`, the namespace's init (`child`), which reports the command's status.
    init: Option<Init>,
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

/// The grace before SIGKILL for processes left behind after the command ended, when `-k 0` asked
/// for no escalation of the command's own stop (GNU's meaning): the promise that nothing outlives
/// watchdog still holds, with the default grace.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// How long the final sweep keeps killing before it names the processes that would not die.
const SWEEP_LIMIT: Duration = Duration::from_secs(10);

type StartError = (Exit, String);

impl Supervisor {
    fn start(args: &SuperviseOptions, command: Supervised) -> Result<Box<Supervisor>, StartError> {
        let started = Instant::now();
        let Supervised {
            program,
            args: command_args,
            arg0,
            name,
            argv,
            download,
        } = command;
        let spec = SpawnSpec {
            program,
            args: &command_args,
            arg0,
            own_group: !args.foreground,
            capture_output: args.stall.is_some(),
            pipe_stdin: false,
        };
        let fetch = download.map(|view| {
            let show =
                !args.quiet && nix::unistd::isatty(std::io::stderr().as_raw_fd()).unwrap_or(false);
            FetchJob {
                resume: view.keep_partial,
                temp_path: None,
                view: FetchProgress::new(show),
            }
        });

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
        let processes = Processes::start_catching(&forwarded_with(args.signal)).map_err(|e| {
            (
                Exit::Failure,
                format!("cannot install signal handlers: {e}"),
            )
        })?;

        let contained = contain::spawn(&processes, &spec, channel, args.contain).map_err(|e| {
            let e = match e {
                SpawnError::Command(e) => e,
                SpawnError::Contain(why) => return (Exit::Failure, why),
            };
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
        let (mut spawned, mechanism, init) =
            (contained.spawned, contained.mechanism, contained.init);
        let child = Pid::from_raw(spawned.child.id() as i32);
        let activity = Activity::new(started);
        let (mut relays, done) = Relays::new();
        if let Some(out) = spawned.child.stdout.take() {
            relays.start(out, std::io::stdout(), activity.clone(), done.clone());
        }
        if let Some(err) = spawned.child.stderr.take() {
            relays.start(err, std::io::stderr(), activity.clone(), done);
        }
        let argv: Vec<String> = redact_argv(
            &argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
        );
        let mut supervisor = Supervisor {
            args: args.clone(),
            started,
            child,
            group: (!args.foreground).then_some(child),
            name,
            processes,
            progress: Some(spawned.progress),
            lines: LineReader::new(),
            activity,
            relays,
            events,
            fetch,
            status: None,
            stop: None,
            killed: false,
            killed_command: false,
            ended: Vec::new(),
            init,
        };
        if args.verbose_contain {
            crate::say(format_args!(
                "watchdog: running '{}' {} (--contain {})",
                supervisor.name,
                mechanism.describe(),
                mechanism.as_str()
            ));
        }
        supervisor.events.emit(&Event::Start {
            pid: child.as_raw(),
            argv: &argv,
            contain: mechanism.as_str(),
        });
        Ok(Box::new(supervisor))
    }

    fn run(mut self) -> ExitCode {
        let deadline = self.args.timeout.map(|d| self.started + d);
        // Signals (SIGCHLD included) arrive through the self-pipe: only when it was readable is there
        // anything to take or reap.
        let mut signalled = true;
        while !self.killed {
            if signalled {
                for signal in self.processes.take_signals().signals() {
                    self.forward(signal);
                }
                let children_left = self.reap();
                if self.status.is_some() {
                    // With a subreaper, "no children" is the only proof that nothing is left: an orphan
                    // created a moment ago is on its way back to watchdog, and /proc may not show it yet.
                    if !children_left {
                        break;
                    }
                    if self.stop.is_none() && self.others_alive() {
                        // The command exited but left processes behind (a daemon, a background job).
                        // They are still watchdog's: stop them the same way, keeping the command's status.
                        self.begin_stop(Reason::Exited);
                    } else if let Some(stop) = self.stop.as_mut() {
                        // With -k 0 the command's stop had no escalation; what it left behind has.
                        stop.kill_at
                            .get_or_insert_with(|| Instant::now() + LEFTOVER_GRACE);
                    }
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
                }
            }
            if self.killed {
                break;
            }

            let wake_at = self.next_wake(deadline);
            // Once the command exited or is being stopped, every wake-up looks at the tree: not every
            // death sends watchdog SIGCHLD.
            signalled =
                self.wait_for_events(wake_at) || self.stop.is_some() || self.status.is_some();
        }
        self.finish()
    }

    /// Whether anything but zombies is left of the tree after the command exited.
    fn others_alive(&self) -> bool {
        if let Some(init) = &self.init {
            // The init knows; without anything left it is already on its way out.
            init.others_remain()
        } else if self.processes.has_subreaper() {
            !self.processes.descendants().is_empty()
        } else {
            // Only the group can be seen; a member of it may outlive the command.
            self.group
                .is_some_and(|g| self.processes.signal_group(g, 0))
        }
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
                // The command exited and its children looked like zombies only: look again soon, in
                // case a scan missed one being born.
                let rescan = self.status.map(|_| Instant::now() + RESCAN);
                [deadline, stall, rescan].into_iter().flatten().min()
            }
        }
    }

    /// Blocks until a signal, a progress line or `wake_at`; returns whether the signal pipe was readable.
    fn wait_for_events(&mut self, wake_at: Option<Instant>) -> bool {
        let progress = self.progress.as_ref().map(|fd| fd.as_raw_fd());
        let init = self.init.as_ref().and_then(Init::fd);
        let signalled = self
            .processes
            .wait(progress.into_iter().chain(init), wake_at);
        if self.processes.ready().next().is_some() {
            self.read_progress();
            self.read_init();
        }
        signalled
    }

    /// Reads what is on the progress channel, up to a budget, so a flood cannot delay a deadline. Each
    /// line is decoded once, in place: nothing of it is kept but what the progress view needs.
    fn read_progress(&mut self) {
        let Some(fd) = self.progress.as_ref().map(|fd| fd.as_raw_fd()) else {
            return;
        };
        let activity = &self.activity;
        let fetch = &mut self.fetch;
        let events = &mut self.events;
        let drained = drain_fd(fd, &mut self.lines, |line| {
            let decoded = match fetch.as_ref() {
                Some(_) => crate::protocol::decode_line(line),
                None => None,
            };
            if decoded.is_none() && !is_json_object(line) {
                return;
            }
            activity.touch();
            if let (Some(fetch), Some(decoded)) = (fetch.as_mut(), &decoded) {
                if let ProgressLine::Start {
                    temp_path: Some(path),
                    ..
                } = decoded
                {
                    fetch.temp_path = Some(PathBuf::from(path));
                }
                fetch.view.observe(decoded);
            }
            if events.is_enabled() {
                if let Ok(data) = serde_json::from_slice(line) {
                    events.emit(&Event::Progress { data });
                }
            }
        });
        if matches!(drained, Ok(Drained::Closed) | Err(_)) {
            // Every holder of the write end is gone, or reading failed: stop polling it.
            self.progress = None;
        }
    }

    /// Reaps every child that has ended; the command's own status is kept. Returns whether watchdog
    /// still has children.
    fn reap(&mut self) -> bool {
        let children_left = self.processes.reap(&mut self.ended);
        self.note_ended();
        self.read_init();
        children_left
    }

    /// Takes the command's status from its namespace's init, once reported (the init may outlive it).
    fn read_init(&mut self) {
        if let Some(ended) = self.init.as_mut().and_then(Init::read) {
            self.status.get_or_insert(ended);
        }
    }

    fn note_ended(&mut self) {
        for (pid, ended) in self.ended.drain(..) {
            if pid == self.child {
                // An init reports the command's own status; one that did not died before it could.
                let reported = self.init.as_mut().and_then(Init::read);
                self.status = Some(reported.unwrap_or(ended));
            }
        }
    }

    /// Forwards a signal watchdog received to the command, then tears the tree down. SIGALRM is the
    /// deadline's signal, as in GNU timeout: the deadline is taken to have passed.
    fn forward(&mut self, signal: i32) {
        if signal == libc::SIGALRM {
            if self.stop.is_none() {
                self.begin_stop(Reason::Deadline);
            }
            return;
        }
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
        let why = match reason {
            Reason::Exited => "cleanup",
            other => other.as_str(),
        };
        self.send(self.args.signal, why);
        self.arm_kill();
    }

    /// Schedules SIGKILL after the grace. `-k 0` means no escalation, as in GNU, except for what is
    /// left after the command ended (see [`LEFTOVER_GRACE`]).
    fn arm_kill(&mut self) {
        let grace = match self.args.kill_after {
            zero if zero.is_zero() && self.status.is_some() => LEFTOVER_GRACE,
            zero if zero.is_zero() => return,
            grace => grace,
        };
        if let Some(stop) = self.stop.as_mut() {
            stop.kill_at = Some(Instant::now() + grace);
        }
    }

    /// Sends `signal` to the command's group and every descendant that left it, each once (or, with
    /// --foreground, to the command alone while it runs), then SIGCONT so that a stopped process acts on
    /// it.
    fn send(&mut self, signal: i32, why: &str) {
        // The null signal delivers nothing; neither does the SIGCONT that would follow it.
        let then_cont = signal != libc::SIGKILL && signal != libc::SIGCONT && signal != 0;
        let reached = if self.args.foreground && self.status.is_none() {
            let reached = self.processes.signal(self.child, signal);
            if then_cont {
                self.processes.signal(self.child, libc::SIGCONT);
            }
            usize::from(reached)
        } else {
            self.signal_tree(signal, then_cont)
        };
        if signal == libc::SIGKILL && self.status.is_none() {
            self.killed_command = true;
        }
        self.announce(signal, why, reached);
    }

    /// The whole tree: through the init under `pidns` (which applies it to its namespace), else the
    /// group and every descendant that left it, both signals from one scan of /proc.
    fn signal_tree(&self, signal: i32, then_cont: bool) -> usize {
        match &self.init {
            Some(init) => {
                let reached = init.signal(&self.processes, signal);
                if then_cont {
                    init.signal(&self.processes, libc::SIGCONT);
                }
                reached
            }
            None => self.processes.signal_tree(self.group, signal, then_cont),
        }
    }

    /// GNU timeout's `-v` line; the reason is in the `--events` line only.
    fn announce(&mut self, signal: i32, why: &str, count: usize) {
        let name = signal_name(signal);
        if self.args.verbose {
            crate::say(format_args!(
                "watchdog: sending signal {name} to command '{}'",
                self.name
            ));
        }
        self.events.emit(&Event::Signal {
            signal: &name,
            reason: why,
            pids: count,
        });
    }

    /// SIGKILLs the whole tree; the final sweep then waits until it is gone.
    fn kill_all(&mut self) {
        if let Some(stop) = self.stop.as_mut() {
            stop.kill_at = None;
        }
        let why = match self.stop.as_ref().map(|s| s.reason) {
            Some(Reason::Exited) | None => "cleanup",
            Some(other) => other.as_str(),
        };
        self.send(libc::SIGKILL, why);
        self.killed = true;
    }

    /// Everything after the tree is gone: drain output, clean up a killed download, report, pick the
    /// exit code.
    fn finish(mut self) -> ExitCode {
        let groups: Vec<Pid> = self.group.into_iter().collect();
        let swept = self.processes.sweep(&groups, SWEEP_LIMIT, &mut self.ended);
        self.note_ended();
        if let Err(left) = swept {
            let pids: Vec<String> = left.iter().map(|p| p.to_string()).collect();
            crate::report_error(format!(
                "{} processes did not die after SIGKILL (blocked in the kernel?): pids {}",
                left.len(),
                pids.join(" ")
            ));
        }
        if self.progress.is_some() {
            self.read_progress();
        }
        let reason = self.stop.as_ref().map_or(Reason::Exited, |s| s.reason);
        let status = self.status.unwrap_or(Ended::Signal(libc::SIGKILL));
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

        // Killed by watchdog's own SIGKILL: 137 whatever the reason, as GNU timeout (a script can tell
        // the command was forced).
        let forced = self.killed_command && status == Ended::Signal(libc::SIGKILL);
        let code = match reason {
            Reason::Exited => shell_code(status),
            _ if forced => Exit::Signal(libc::SIGKILL).code(),
            Reason::Deadline | Reason::Stall if self.args.preserve_status => shell_code(status),
            Reason::Deadline | Reason::Stall => Exit::TimedOut.code(),
            Reason::Forwarded(signal) => Exit::Signal(signal).code(),
        };
        let status = match status {
            Ended::Code(code) => EndedAs::Code(code),
            Ended::Signal(signal) => EndedAs::Signal(signal),
        };
        self.events.emit(&Event::Exit {
            reason: reason.as_str(),
            exit_code: code,
            status,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
        });
        ExitCode::from(code)
    }
}
