//! The process layer: everything about the processes watchdog starts, written once and used by both the
//! single-command supervisor and the batch runner, which keep only their own rules on top of it.
//!
//! - spawning into a process group, tied to watchdog's life ([`spawn`]);
//! - the signal self-pipe ([`signal_pipe`]);
//! - one `poll` wait over the caller's channels, the signal pipe and the nearest timer
//!   ([`Processes::wait`]);
//! - reaping: in the watchdog process, [`Processes::reap`] is the only `waitpid` caller, because once
//!   watchdog is a subreaper every orphaned descendant becomes its child, and a second caller could
//!   steal a status another part is waiting for. The only other callers are the init ([`init`]), a
//!   process of its own that reaps its own tree, and a start that failed: a command that could not
//!   exec is reaped by pid where it was started (as std's spawn does), before anything else runs;
//! - signalling a group and the descendants that left it, each process once ([`Processes::signal_tree`]);
//! - the final sweep, which returns only when no descendant is left ([`Processes::sweep`]);
//! - containment, so that a SIGKILLed watchdog leaves nothing either ([`contain`], [`init`]).

pub mod contain;
mod deadline;
#[cfg(target_os = "linux")]
mod exec;
mod init;
mod own_death;
mod signal_pipe;
mod spawn;
mod tree;

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

pub use deadline::Deadline;
pub use init::Init;
pub use own_death::die_of;
#[cfg(target_os = "linux")]
pub use signal_pipe::ignored_at_start;
pub use signal_pipe::{caught_even_if_ignored, forwarded_with, Arrived, INTERRUPTS};
pub use spawn::{ProgressChannel, SpawnSpec, Spawned};
pub use tree::Descendant;

/// How a child ended, as `wait(2)` told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal (any number, real-time signals included).
    Signal(i32),
    /// It was killed by this signal and dumped core.
    CoreDump(i32),
}

impl Ended {
    /// How a child ended, from the status `waitpid` gave; `None` for a stop or a continue, which are
    /// not ends. Pure and allocation-free, so the init uses it between fork and exec too.
    pub fn from_wait_status(status: libc::c_int) -> Option<Ended> {
        if libc::WIFEXITED(status) {
            Some(Ended::Code(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) && libc::WCOREDUMP(status) {
            Some(Ended::CoreDump(libc::WTERMSIG(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Ended::Signal(libc::WTERMSIG(status)))
        } else {
            None
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Code(code) => write!(f, "exit status {code}"),
            Ended::Signal(signal) | Ended::CoreDump(signal) => {
                write!(
                    f,
                    "signal {} ({signal})",
                    crate::signals::signal_name(*signal)
                )
            }
        }
    }
}

/// Watchdog's hold on the processes it starts.
pub struct Processes {
    signals: signal_pipe::SignalPipe,
    subreaper: bool,
    me: Pid,
    /// watchdog's own executable, to recognise a nested watchdog (see [`Processes::signal_tree`]).
    exe: Option<(u64, u64)>,
    /// The descriptors of the last [`Processes::wait`], the signal pipe first; kept to spare an
    /// allocation per wake-up.
    polled: Vec<libc::pollfd>,
}

impl Processes {
    /// Makes watchdog the reaper of its orphaned descendants (Linux) and installs the signal handlers
    /// for [`INTERRUPTS`] (batch mode's set). Call once, before the first spawn, so that no SIGCHLD
    /// can be missed.
    pub fn start() -> io::Result<Processes> {
        Processes::start_catching(&INTERRUPTS, &[])
    }

    /// Like [`Processes::start`], catching `signals` ([`Processes::take_signals`] reports them). A
    /// signal the caller left ignored stays ignored (and the command inherits it so) unless it is in
    /// `even_if_ignored`.
    pub fn start_catching(signals: &[i32], even_if_ignored: &[i32]) -> io::Result<Processes> {
        let subreaper = tree::become_subreaper();
        let signals = signal_pipe::SignalPipe::install(signals, even_if_ignored)?;
        Ok(Processes {
            signals,
            subreaper,
            me: nix::unistd::getpid(),
            exe: tree::executable(None),
            polled: Vec::new(),
        })
    }

    /// Makes watchdog the leader of a new process group, as GNU timeout does without `--foreground`, so
    /// that `kill -SIG -PID` on a watchdog started in the background reaches it (and through it the
    /// command). Also ignores SIGTTIN and SIGTTOU, so that a watchdog in a background group is not
    /// stopped by a line it writes on the terminal; the command gets them back at their default.
    /// Failing (a session leader cannot) leaves it where it was, as GNU does.
    pub fn lead_own_group(&self, lead: bool) {
        if lead {
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
        }
        // SAFETY: signal(2) with SIG_IGN on two valid signal numbers.
        unsafe {
            libc::signal(libc::SIGTTIN, libc::SIG_IGN);
            libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        }
    }

    /// Whether every orphaned descendant comes back to watchdog (so "no children" means "nothing left").
    pub fn has_subreaper(&self) -> bool {
        self.subreaper
    }

    /// Starts a command (see [`SpawnSpec`]). The `io::Error` is the one exec failed with, so callers can
    /// tell "not found" (127) from "cannot run" (126).
    pub fn spawn(&self, spec: &SpawnSpec<'_>, channel: ProgressChannel) -> io::Result<Spawned> {
        spawn::spawn(spec, channel)
    }

    /// Starts the supervisor's command as [`Processes::spawn`] does, but with `vfork` semantics
    /// (see [`spawn::spawn_shared`]); no stdin pipe.
    #[cfg(target_os = "linux")]
    pub fn spawn_shared(
        &self,
        spec: &SpawnSpec<'_>,
        channel: ProgressChannel,
    ) -> io::Result<spawn::SharedSpawn> {
        spawn::spawn_shared(spec, channel, self.signals.handled())
    }

    /// Returns (and clears) the caught signals that arrived, emptying the wake-up pipe.
    pub fn take_signals(&mut self) -> Arrived {
        self.signals.take()
    }

    /// Blocks until a signal arrives, one of `fds` is readable (or hung up), or `wake_at` passes.
    /// Returns whether the signal pipe was readable: only then is there anything to take or reap.
    /// [`Processes::ready`] then tells which of `fds` are.
    pub fn wait(&mut self, fds: impl IntoIterator<Item = RawFd>, wake_at: Option<Instant>) -> bool {
        self.polled.clear();
        self.polled.push(pollfd(self.signals.fd().as_raw_fd()));
        self.polled.extend(fds.into_iter().map(pollfd));
        let timeout = match wake_at {
            None => -1,
            // Round up: waking a little early would only loop once more.
            Some(at) => at
                .saturating_duration_since(Instant::now())
                .as_nanos()
                .div_ceil(1_000_000)
                .min(i32::MAX as u128) as i32,
        };
        // SAFETY: `polled` is a live, initialised array of `len` pollfd structs.
        let n = unsafe {
            libc::poll(
                self.polled.as_mut_ptr(),
                self.polled.len() as libc::nfds_t,
                timeout,
            )
        };
        if n < 0 {
            // EINTR: a signal arrived; anything else: look at everything once more.
            self.polled.iter_mut().for_each(|p| p.revents = 0);
            return true;
        }
        let signalled = self.polled[0].revents != 0;
        if signalled {
            // Emptied now, so the next wait blocks; the flags stay for `take_signals`.
            self.signals.drain();
        }
        signalled
    }

    /// Indices (into the last [`Processes::wait`]'s `fds`) of the descriptors that are readable.
    pub fn ready(&self) -> impl Iterator<Item = usize> + '_ {
        self.polled
            .iter()
            .skip(1)
            .enumerate()
            .filter(|(_, p)| p.revents != 0)
            .map(|(i, _)| i)
    }

    /// Reaps every child that has ended, appending each to `ended`. Returns whether watchdog still has
    /// children; with a subreaper none means no descendants at all, since every orphan comes back.
    pub fn reap(&mut self, ended: &mut Vec<(Pid, Ended)>) -> bool {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes one int through the pointer it is given.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            match pid {
                0 => return true,
                pid if pid > 0 => {
                    let Some(how) = Ended::from_wait_status(status) else {
                        continue; // stopped or continued: not asked for, but not an end either
                    };
                    ended.push((Pid::from_raw(pid), how));
                }
                _ => match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // ECHILD: no children left.
                    _ => return false,
                },
            }
        }
    }

    /// Live descendants of watchdog (Linux: found through /proc; elsewhere none can be seen).
    pub fn descendants(&self) -> Vec<Descendant> {
        tree::descendants(self.me)
    }

    /// Sends `signal` to process group `group`; false when the group is empty.
    pub fn signal_group(&self, group: Pid, signal: i32) -> bool {
        tree::signal_pid_raw(Pid::from_raw(-group.as_raw()), signal)
    }

    /// Sends `signal` to one process; false when it is gone.
    pub fn signal(&self, pid: Pid, signal: i32) -> bool {
        tree::signal_pid_raw(pid, signal)
    }

    /// Sends `signal` to `group` and to every descendant outside it, so that each process gets it once
    /// (a second TERM can cut short the clean-up the first one started). Returns how many were reached:
    /// the group counts as its live members found, or one when none can be seen.
    ///
    /// A nested watchdog is signalled, but not what it runs: it forwards the signal to its own tree by
    /// its own rules, as nested GNU timeouts do (an outer SIGALRM becomes the inner one's `--signal`).
    /// SIGKILL reaches everything.
    ///
    /// With `then_cont`, each process gets SIGCONT right after the signal (a stopped process must act
    /// on it), from the same scan of /proc.
    pub fn signal_tree(&self, group: Option<Pid>, signal: i32, then_cont: bool) -> usize {
        let send = |pid: Pid| {
            let reached = tree::signal_pid_raw(pid, signal);
            if then_cont {
                tree::signal_pid_raw(pid, libc::SIGCONT);
            }
            reached
        };
        let mut reached = 0;
        let group_reached = group.is_some_and(|g| send(Pid::from_raw(-g.as_raw())));
        let nested = |pid: Pid| {
            signal != libc::SIGKILL && self.exe.is_some() && tree::executable(Some(pid)) == self.exe
        };
        for found in tree::descendants_pruned(self.me, nested) {
            if Some(found.group) == group {
                reached += usize::from(group_reached);
            } else if send(found.pid) {
                reached += 1;
            }
        }
        reached.max(usize::from(group_reached))
    }

    /// SIGKILLs `groups` and every descendant until none is left, reaping each (appended to `ended`).
    /// Returns only when `wait` reports no children (with a subreaper: nothing watchdog started is
    /// running), or after `limit` with the pids that would not die (blocked in the kernel, typically).
    pub fn sweep(
        &mut self,
        groups: &[Pid],
        limit: Duration,
        ended: &mut Vec<(Pid, Ended)>,
    ) -> Result<(), Vec<Pid>> {
        let give_up = Instant::now() + limit;
        loop {
            if !self.reap(ended) {
                return Ok(());
            }
            // Scanned after reaping: a process forked after the scan has a parent that is still alive
            // (it forked it), so the next pass finds it.
            let live = self.descendants();
            for group in groups {
                self.signal_group(*group, libc::SIGKILL);
            }
            for found in &live {
                self.signal(found.pid, libc::SIGKILL);
            }
            let now = Instant::now();
            if now >= give_up {
                return Err(live.iter().map(|d| d.pid).collect());
            }
            // SIGCHLD wakes this at once for a child; a grandchild dying under a live parent is seen
            // by the next scan.
            self.wait_signal((now + SWEEP_RESCAN).min(give_up));
        }
    }

    /// Waits for the signal pipe alone (SIGCHLD, typically) until `at`, leaving what arrived to
    /// [`Processes::take_signals`].
    fn wait_signal(&mut self, at: Instant) {
        self.wait(std::iter::empty(), Some(at));
    }
}

/// Held by the unit tests that start processes or raise signals: a runner under test reaps every child
/// of the test process, sweeps its descendants and sees every signal, which would disturb another
/// such test running beside it.
#[cfg(test)]
pub(crate) static PROCESS_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Every signal held on this thread from [`AllSignalsHeld::hold`] until the value is dropped: across
/// the clone that starts a child, so that none of watchdog's handlers can run in the child before it
/// has put them back to their defaults. Drop it only after reading the clone's errno.
#[cfg(target_os = "linux")]
struct AllSignalsHeld {
    saved: libc::sigset_t,
}

#[cfg(target_os = "linux")]
impl AllSignalsHeld {
    fn hold() -> AllSignalsHeld {
        // SAFETY: sigfillset and pthread_sigmask on stack values.
        let saved = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut saved: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut saved);
            saved
        };
        AllSignalsHeld { saved }
    }
}

#[cfg(target_os = "linux")]
impl Drop for AllSignalsHeld {
    fn drop(&mut self) {
        // SAFETY: pthread_sigmask restoring the mask `hold` saved.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.saved, std::ptr::null_mut());
        }
    }
}

/// How often the sweep looks again for processes that SIGCHLD cannot announce.
const SWEEP_RESCAN: Duration = Duration::from_millis(10);

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::Ended;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    fn raw_status_of(script: &str) -> i32 {
        let status = Command::new("sh")
            .args(["-c", script])
            .status()
            .expect("run sh");
        status.into_raw()
    }

    #[test]
    fn a_wait_status_is_an_exit_a_signal_a_core_dump_or_no_end() {
        assert_eq!(
            Ended::from_wait_status(raw_status_of("exit 3")),
            Some(Ended::Code(3))
        );
        assert_eq!(
            Ended::from_wait_status(raw_status_of("kill -KILL $$")),
            Some(Ended::Signal(libc::SIGKILL))
        );
        // A core dump and a stop, as the kernel encodes them (no core file is made here).
        let core = std::process::ExitStatus::from_raw(libc::SIGSEGV | 0x80);
        assert_eq!(
            Ended::from_wait_status(core.into_raw()),
            Some(Ended::CoreDump(libc::SIGSEGV))
        );
        let stopped = std::process::ExitStatus::from_raw((libc::SIGSTOP << 8) | 0x7f);
        assert_eq!(Ended::from_wait_status(stopped.into_raw()), None);
        assert_eq!(Ended::from_wait_status(0xffff), None, "continued");
    }
}
