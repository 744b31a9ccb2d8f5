//! The supervisor: run one command, watch it, and stop its whole process tree when it overruns.
//!
//! One thread makes every decision. It blocks in the process layer's wait on the signal self-pipe and
//! the progress channel with a timeout equal to the nearest timer (deadline, stall, SIGKILL escalation),
//! so an idle supervisor uses no CPU and a deadline fires within a millisecond or two. Spawning, reaping,
//! signalling and the final sweep belong to [`crate::process`]; this module holds the rules: when to
//! stop the command, with which signal, and what to exit with.

mod command;
mod options;
mod relay;

pub use options::{DownloadView, SuperviseOptions, Supervised};

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::duration::for_people;
use crate::events::{EndedAs, Event, EventLog};
use crate::exit::Exit;
use crate::process::contain::{self, SpawnError};
use crate::process::Init;
use crate::process::{
    caught_even_if_ignored, die_of, forwarded_with, Deadline, Ended, Processes, ProgressChannel,
    SpawnSpec,
};
use crate::progress::FetchProgress;
use crate::protocol::{drain_fd, is_json_object, Arrived, Drained, LineReader, ProgressLine};
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

/// Why watchdog stopped the built-in fetch worker on `reason`, named by what had arrived; `None` for
/// a reason that is not watchdog's own limit. Other commands get GNU timeout's silence; a download
/// gets one line, as curl's `(28) Operation too slow` (an empty file or none says nothing of why).
fn stopped_fetch(reason: Reason, args: &SuperviseOptions, arrived: &Arrived) -> Option<String> {
    let so_far = if arrived.answered {
        format!("after {}", arrived.body_so_far())
    } else {
        "before any answer".to_string()
    };
    match (reason, args.timeout, args.stall) {
        (Reason::Stall, _, Some(stall)) if arrived.answered => Some(format!(
            "no data for {} {so_far} (--stall)",
            for_people(stall)
        )),
        (Reason::Stall, _, Some(stall)) => {
            Some(format!("no answer for {} (--stall)", for_people(stall)))
        }
        (Reason::Deadline, Some(timeout), _) => Some(format!(
            "the deadline of {} passed {so_far} (--timeout)",
            for_people(timeout)
        )),
        (Reason::Deadline, None, _) => Some(format!("SIGALRM arrived {so_far}")),
        _ => None,
    }
}

/// The C library's text for an error, as GNU tools print it: without Rust's " (os error N)".
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if e.raw_os_error().is_some() => text[..at].to_string(),
        _ => text,
    }
}

/// The shell's convention for how a process ended: its exit code, or 128 + the signal number.
fn shell_code(ended: Ended) -> u8 {
    match ended {
        Ended::Code(code) => (code & 0xff) as u8,
        Ended::Signal(signal) | Ended::CoreDump(signal) => Exit::Signal(signal).code(),
    }
}

/// How watchdog ends once the command's tree is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Exit with this code.
    Code(u8),
    /// Die of this signal, as the command did (see [`die_of`]).
    Die(i32),
}

/// Runs `command` under `args`; returns watchdog's exit code, or dies of the signal the command died
/// of when watchdog did not stop it.
pub fn run(args: &SuperviseOptions, command: Supervised) -> ExitCode {
    let outcome = match Supervisor::start(args, command) {
        Ok(supervisor) => supervisor.run(),
        Err((exit, message)) => {
            crate::report_error(message);
            return exit.into();
        }
    };
    // The supervisor, its handlers and its pipes are gone by now.
    match outcome {
        Outcome::Code(code) => ExitCode::from(code),
        Outcome::Die(signal) => die_of(signal),
    }
}

/// The built-in fetch worker's state that the supervisor acts on.
struct FetchJob {
    resume: bool,
    temp_path: Option<PathBuf>,
    view: FetchProgress,
    /// What had arrived of the answer, for the line that says why watchdog stopped the download.
    arrived: Arrived,
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
    /// The `--timeout` deadline, while it can still fire.
    deadline: Option<Deadline>,
    /// watchdog stopped the command on its deadline or stall (GNU's `timed_out`): 124 or 137.
    timed_out: Option<Reason>,
    /// The first signal watchdog forwarded.
    forwarded: Option<i32>,
    /// A signal went to the tree: from now on every wake-up looks at it.
    stopping: bool,
    /// When SIGKILL follows; `None` when not scheduled or once sent.
    kill_at: Option<Instant>,
    /// The `-k` grace was started once; later signals do not move it (GNU's rule).
    grace_started: bool,
    /// SIGKILL was sent to the whole tree: what is left is the final sweep's.
    killed: bool,
    /// SIGKILL was sent while the command itself was running (`-s KILL`, or the escalation): if it
    /// died of it, watchdog exits 137, as GNU timeout does.
    killed_command: bool,
    /// Children reaped since the last look (kept to spare an allocation per reap).
    ended: Vec<(Pid, Ended)>,
    /// Under an init (`--contain pidns`, `userns`, `sentinel`), the init (`child`), which reports the
    /// command's status.
    init: Option<Init>,
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
                arrived: Arrived::default(),
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
        let caught = forwarded_with(args.signal);
        let processes = Processes::start_catching(&caught, &caught_even_if_ignored(args.signal))
            .map_err(|e| {
                (
                    Exit::Failure,
                    format!("cannot install signal handlers: {e}"),
                )
            })?;

        processes.lead_own_group(!args.foreground);
        let contained = contain::spawn(&processes, &spec, channel, args.contain).map_err(|e| {
            let e = match e {
                SpawnError::Command(e) => e,
                SpawnError::Contain(why) => return (Exit::Failure, why),
            };
            // GNU timeout's words and codes: 127 when there is no such file, 126 otherwise.
            let exit = match e.kind() {
                std::io::ErrorKind::NotFound => Exit::NotFound,
                _ => Exit::CannotRun,
            };
            (
                exit,
                format!("failed to run command '{name}': {}", strerror(&e)),
            )
        })?;
        let (child, mechanism, init) = (contained.pid, contained.mechanism, contained.init);
        let activity = Activity::new(started);
        let (mut relays, done) = Relays::new();
        if let Some(out) = contained.stdout {
            relays.start(out, std::io::stdout(), activity.clone(), done.clone());
        }
        if let Some(err) = contained.stderr {
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
            progress: Some(contained.progress),
            lines: LineReader::new(),
            activity,
            relays,
            events,
            fetch,
            status: None,
            deadline: None,
            timed_out: None,
            forwarded: None,
            stopping: false,
            kill_at: None,
            grace_started: false,
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

    fn run(mut self) -> Outcome {
        // Counted from watchdog's start, as before the command was spawned; on Linux it counts
        // suspended time as GNU's does.
        let since_start = self.started.elapsed();
        self.deadline = self
            .args
            .timeout
            .map(|d| Deadline::after(d.saturating_sub(since_start)));
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
                    if !self.stopping && self.others_alive() {
                        // The command exited but left processes behind (a daemon, a background job).
                        // They are still watchdog's: stop them the same way, keeping the command's status.
                        self.send(self.args.signal, "cleanup");
                        self.start_grace();
                    }
                    if self.stopping && self.kill_at.is_none() {
                        // With -k 0 the command's stop had no escalation; what it left behind has.
                        self.kill_at = Some(Instant::now() + LEFTOVER_GRACE);
                    }
                }
            }

            // Every timer runs whatever signals arrived: the deadline and the stall watch while the
            // command runs, the escalation once started.
            if self.status.is_none() && self.timed_out.is_none() {
                if self.deadline.as_ref().is_some_and(Deadline::passed) {
                    self.time_out(Reason::Deadline);
                } else if let Some(stall) = self.args.stall {
                    if Instant::now() >= self.activity.last() + stall {
                        self.time_out(Reason::Stall);
                    }
                }
            }
            if self.kill_at.is_some_and(|at| Instant::now() >= at) {
                self.kill_all();
            }
            if self.killed {
                break;
            }

            let wake_at = self.next_wake();
            // Once the command exited or is being stopped, every wake-up looks at the tree: not every
            // death sends watchdog SIGCHLD.
            signalled = self.wait_for_events(wake_at) || self.stopping || self.status.is_some();
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

    /// The nearest moment something must happen without any event arriving (the deadline wakes the
    /// wait through its own descriptor where it has one).
    fn next_wake(&self) -> Option<Instant> {
        let running = self.status.is_none() && self.timed_out.is_none();
        let deadline = self
            .deadline
            .as_ref()
            .filter(|_| running)
            .and_then(Deadline::wake_at);
        let stall = self
            .args
            .stall
            .filter(|_| running)
            .map(|s| self.activity.last() + s);
        // Once stopping, or after the command exited (its children looked like zombies only), look at
        // the tree again soon: not every death sends SIGCHLD, and a scan may miss a birth.
        let rescan = (self.stopping || self.status.is_some()).then(|| Instant::now() + RESCAN);
        [deadline, stall, rescan, self.kill_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Blocks until a signal, a progress line, the deadline or `wake_at`; returns whether the signal
    /// pipe was readable.
    fn wait_for_events(&mut self, wake_at: Option<Instant>) -> bool {
        let progress = self.progress.as_ref().map(|fd| fd.as_raw_fd());
        let init = self.init.as_ref().and_then(Init::fd);
        let deadline = self
            .deadline
            .as_ref()
            .filter(|_| self.status.is_none() && self.timed_out.is_none())
            .and_then(Deadline::fd);
        let signalled = self
            .processes
            .wait(progress.into_iter().chain(init).chain(deadline), wake_at);
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
                fetch.arrived.observe(decoded);
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

    /// Forwards a signal watchdog received to the command. As in GNU timeout, the first one starts the
    /// `-k` grace (a command that ignores it is SIGKILLed after it), and the deadline keeps running.
    /// SIGALRM is the deadline's signal: the deadline is taken to have passed.
    fn forward(&mut self, signal: i32) {
        if signal == libc::SIGALRM {
            if self.status.is_none() && self.timed_out.is_none() {
                self.time_out(Reason::Deadline);
            }
            return;
        }
        self.forwarded.get_or_insert(signal);
        // Each is passed on (a user pressing Ctrl-C twice means it).
        self.send(signal, "forwarded");
        self.start_grace();
    }

    /// The deadline passed, the command stalled, or SIGALRM arrived: the `--signal` signal goes to the
    /// tree and the `-k` grace starts, unless an earlier signal started it.
    fn time_out(&mut self, reason: Reason) {
        self.timed_out = Some(reason);
        self.send(self.args.signal, reason.as_str());
        self.start_grace();
    }

    /// Schedules SIGKILL after the `-k` grace, once: a later signal does not move it. `-k 0` means no
    /// escalation, as in GNU, except for what is left after the command ended (see
    /// [`LEFTOVER_GRACE`]).
    fn start_grace(&mut self) {
        if self.grace_started {
            return;
        }
        let grace = match self.args.kill_after {
            zero if zero.is_zero() && self.status.is_some() => LEFTOVER_GRACE,
            zero if zero.is_zero() => return,
            grace => grace,
        };
        self.grace_started = true;
        self.kill_at = Some(Instant::now() + grace);
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
        self.stopping = true;
        self.announce(signal, why, reached);
    }

    /// The whole tree: through the init, when there is one (which applies it to its tree), else the
    /// group and every descendant that left it, both signals from one scan of /proc.
    fn signal_tree(&self, signal: i32, then_cont: bool) -> usize {
        match &self.init {
            Some(init) => {
                let reached = init.signal(&self.processes, signal);
                if then_cont {
                    init.send(&self.processes, libc::SIGCONT);
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
        self.kill_at = None;
        let why = match self.reason() {
            Reason::Exited => "cleanup",
            other => other.as_str(),
        };
        self.send(libc::SIGKILL, why);
        self.killed = true;
    }

    /// Everything after the tree is gone: drain output, clean up a killed download, report, pick the
    /// exit code.
    fn finish(mut self) -> Outcome {
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
        let reason = self.reason();
        let status = self.status.unwrap_or(Ended::Signal(libc::SIGKILL));
        if let Some(fetch) = self.fetch.as_mut() {
            fetch.view.finish();
            if let Some(why) = self
                .timed_out
                .and_then(|r| stopped_fetch(r, &self.args, &fetch.arrived))
            {
                crate::report_error(format!("fetch stopped: {why}"));
            }
            if reason != Reason::Exited && !fetch.resume {
                if let Some(temp) = &fetch.temp_path {
                    let _ = std::fs::remove_file(temp);
                }
            }
        }
        let relays = std::mem::replace(&mut self.relays, Relays::new().0);
        relays.finish(RELAY_DRAIN);

        if let Ended::CoreDump(_) = status {
            crate::report_error("the monitored command dumped core");
        }
        let outcome = self.outcome(status);
        let code = match outcome {
            Outcome::Code(code) => code,
            Outcome::Die(signal) => Exit::Signal(signal).code(),
        };
        let status = match status {
            Ended::Code(code) => EndedAs::Code(code),
            Ended::Signal(signal) | Ended::CoreDump(signal) => EndedAs::Signal(signal),
        };
        self.events.emit(&Event::Exit {
            reason: reason.as_str(),
            exit_code: code,
            status,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
        });
        outcome
    }

    /// Why the command stopped, for the events file: watchdog's deadline or stall first, then the
    /// signal it forwarded.
    fn reason(&self) -> Reason {
        match (self.timed_out, self.forwarded) {
            (Some(reason), _) => reason,
            (None, Some(signal)) => Reason::Forwarded(signal),
            (None, None) => Reason::Exited,
        }
    }

    /// GNU timeout's rules. Killed by watchdog's own SIGKILL: 137 whatever the reason (a script can
    /// tell the command was forced). Stopped on the deadline or stall: 124, or with
    /// `--preserve-status` the command's own status. Otherwise (it ended by itself, or after a
    /// forwarded signal) its own status stands, and a death by a signal is passed on as one.
    fn outcome(&self, status: Ended) -> Outcome {
        let forced = self.killed_command && status == Ended::Signal(libc::SIGKILL);
        match status {
            _ if forced => Outcome::Code(Exit::Signal(libc::SIGKILL).code()),
            _ if self.timed_out.is_some() && !self.args.preserve_status => {
                Outcome::Code(Exit::TimedOut.code())
            }
            _ if self.timed_out.is_some() => Outcome::Code(shell_code(status)),
            Ended::Code(_) => Outcome::Code(shell_code(status)),
            Ended::Signal(signal) | Ended::CoreDump(signal) => Outcome::Die(signal),
        }
    }
}
