//! The init: a forked copy of watchdog (no second exec) that stands between watchdog and the command,
//! either as PID 1 of a new PID namespace (in a new user namespace too, for a caller without
//! CAP_SYS_ADMIN) or as a *sentinel*, a subreaper that sweeps the tree when watchdog dies.
//!
//! As PID 1 it gives the namespace its own /proc (in a private mount namespace, so that a process
//! inside sees its own pid through /proc/self), starts the command as PID 2, reaps every process that
//! ends in the namespace, and applies the signals watchdog sends it: to the whole namespace, or to the
//! command alone with `--foreground` while it runs. It has PR_SET_PDEATHSIG=SIGKILL: a SIGKILLed
//! watchdog takes the init along, and the kernel then kills everything in the namespace.
//!
//! As a sentinel it does the same in watchdog's namespace, for the processes below it, and its
//! parent-death signal is a catchable one: when watchdog dies, it SIGKILLs every descendant (orphans
//! come back to it) before it exits. Nothing but the sentinel itself enforces that: a SIGKILLed
//! sentinel leaves the tree running.
//!
//! Either way it reports on the status pipe (see [`wire`]) that the command started (or why it could
//! not be run), then how it ended, so that exit codes are the same under every mechanism. Signals sent
//! from inside the tree (a script's `kill 0`) and those the kernel generates (a terminal's ^C) already
//! reached their targets and are not passed on again. Every signal is blocked from the fork on, so
//! none is lost (PID 1 drops signals it has no handler for), and it takes them with `sigwaitinfo`.
//!
//! This module is watchdog's side: preparing, forking, and reading the status pipe ([`Init`]).
//! [`child`] is the init's side.

#[cfg(target_os = "linux")]
mod child;
#[cfg(target_os = "linux")]
mod raw_proc;
mod wire;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

use super::{Ended, Processes};
use wire::Line;

/// Where the init runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PID 1 of a new PID namespace (needs CAP_SYS_ADMIN).
    PidNamespace,
    /// PID 1 of a new PID namespace owned by a new user namespace that maps the caller's own uid and
    /// gid to themselves (needs unprivileged user namespaces).
    UserNamespace,
    /// A subreaper in watchdog's own namespace that sweeps the tree when watchdog dies.
    Sentinel,
}

/// Why the init did not start the command.
#[derive(Debug)]
pub enum Failure {
    /// The init could not be set up (no namespace can be had here, or the init failed before it
    /// started the command): nothing ran, and another mechanism may be tried.
    Unavailable(String),
    /// The command could not be run: exec's error.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Command(io::Error),
}

/// Watchdog's hold on the init.
pub struct Init {
    pid: Pid,
    status: Option<OwnedFd>,
    pending: Vec<u8>,
    ended: Option<Ended>,
    remaining: bool,
}

impl Init {
    /// The init's pid (in watchdog's namespace).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the init said that processes outlived the command (read by [`Init::read`]). Spares a
    /// scan of /proc: the init knows, since every process of its tree is its descendant.
    pub fn others_remain(&self) -> bool {
        self.remaining
    }

    /// The status pipe, to poll while it is open.
    pub fn fd(&self) -> Option<RawFd> {
        self.status.as_ref().map(|fd| fd.as_raw_fd())
    }

    /// Reads what the init reported; returns how the command ended once it has.
    pub fn read(&mut self) -> Option<Ended> {
        if let Some(fd) = &self.status {
            let mut buf = [0u8; 256];
            loop {
                match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                    Ok(0) => {
                        self.status = None;
                        break;
                    }
                    Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(_) => {
                        self.status = None;
                        break;
                    }
                }
            }
            while let Some(line) = self.next_line() {
                match line {
                    Some(Line::Exit(code)) => self.ended = Some(Ended::Code(code)),
                    Some(Line::Signal(signal)) => self.ended = Some(Ended::Signal(signal)),
                    Some(Line::Core(signal)) => self.ended = Some(Ended::CoreDump(signal)),
                    Some(Line::Remaining) => self.remaining = true,
                    _ => {}
                }
            }
        }
        self.ended
    }

    /// Sends `signal` to the init, which applies it to its tree (or, with `--foreground`, to the
    /// command while it runs). Returns how many processes it reaches: the live ones below the init, or
    /// one when none is seen.
    pub fn signal(&self, processes: &Processes, signal: i32) -> usize {
        if !self.send(processes, signal) {
            return 0;
        }
        let others = processes
            .descendants()
            .iter()
            .filter(|d| d.pid != self.pid)
            .count();
        others.max(1)
    }

    /// [`Init::signal`] without counting (a scan of /proc): whether the init was there to get it.
    pub fn send(&self, processes: &Processes, signal: i32) -> bool {
        processes.signal(self.pid, signal)
    }

    /// The next complete line of what was read (`Some(None)` for one that is not a status line).
    fn next_line(&mut self) -> Option<Option<Line>> {
        let end = self.pending.iter().position(|&b| b == b'\n')?;
        let line = Line::decode(&self.pending[..end]);
        self.pending.drain(..=end);
        Some(line)
    }
}

/// A started command under its init, and watchdog's ends of its pipes.
pub struct Started {
    pub init: Init,
    pub stdout: Option<std::fs::File>,
    pub stderr: Option<std::fs::File>,
}

#[cfg(target_os = "linux")]
pub use imp::start;

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::fcntl::OFlag;
    use nix::unistd::Pid;

    use super::child::{self, MapLine, Plan, Role};
    use super::wire::Line;
    use super::{Failure, Init, Kind, Started};
    use crate::process::exec::Exec;
    use crate::process::{ProgressChannel, SpawnSpec};
    use crate::protocol::PROGRESS_FD_ENV;

    /// The size of the stack the command starts on (see `child::start_command`): large enough
    /// to be mapped apart from the heap, untouched but for the few pages exec's preparation uses.
    const COMMAND_STACK: usize = 256 * 1024;

    /// Forks the init of `kind` and waits until it started the command (only then are exec's errors,
    /// 127 and 126, known). `channel` stays the caller's: on failure it can be used again.
    pub fn start(
        kind: Kind,
        spec: &SpawnSpec<'_>,
        channel: &ProgressChannel,
    ) -> Result<Started, Failure> {
        let pipe = |what: &str| {
            nix::unistd::pipe2(OFlag::O_CLOEXEC)
                .map_err(|e| Failure::Unavailable(format!("cannot create {what}: {e}")))
        };
        let progress = channel.write_fd();
        let mut exec = Exec::new(
            &spec.program,
            spec.args,
            spec.arg0.as_deref(),
            (PROGRESS_FD_ENV, &progress.to_string()),
        )
        .ok_or_else(|| Failure::Command(io::Error::from_raw_os_error(libc::EINVAL)))?;
        let (status_read, status_write) = pipe("the init's status pipe")?;
        // A piped stdin is batch mode's, which runs its workers as process groups.
        debug_assert!(
            !spec.pipe_stdin,
            "an init gives the command watchdog's stdin"
        );
        let stdout = spec.capture_output.then(|| pipe("a pipe")).transpose()?;
        let stderr = spec.capture_output.then(|| pipe("a pipe")).transpose()?;
        let raw = |end: Option<&OwnedFd>| end.map_or(-1, |fd| fd.as_raw_fd());
        let maps = (kind == Kind::UserNamespace).then(|| {
            // SAFETY: geteuid and getegid take nothing and cannot fail.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            (MapLine::identity(uid), MapLine::identity(gid))
        });
        // The init's room to look at /proc: zeroed pages, which cost nothing until it uses them.
        let mut links = vec![0u64; super::raw_proc::TREE_CAPACITY];
        let mut marks = vec![0u8; super::raw_proc::TREE_CAPACITY];
        // The command's stack between its vfork and its exec: zeroed pages, as above.
        let mut command_stack = vec![0u8; COMMAND_STACK];
        let mut plan = Plan {
            role: match kind {
                Kind::Sentinel => Role::Sentinel,
                Kind::PidNamespace | Kind::UserNamespace => Role::Namespace,
            },
            maps,
            foreground: !spec.own_group,
            own_group: spec.own_group,
            exec: &mut exec,
            status: status_write.as_raw_fd(),
            status_read: status_read.as_raw_fd(),
            progress,
            close_first: [
                channel.read_fd(),
                -1,
                raw(stdout.as_ref().map(|(read, _)| read)),
                raw(stderr.as_ref().map(|(read, _)| read)),
            ],
            stdio: [
                -1,
                raw(stdout.as_ref().map(|(_, write)| write)),
                raw(stderr.as_ref().map(|(_, write)| write)),
            ],
            ignore_pipe: crate::process::ignored_at_start(libc::SIGPIPE),
            default_tty_stops: [libc::SIGTTIN, libc::SIGTTOU]
                .map(|signal| !crate::process::ignored_at_start(signal)),
            // SAFETY: getpid takes nothing and cannot fail.
            parent: unsafe { libc::getpid() },
            exe: crate::process::tree::executable(None),
            tree: super::raw_proc::Tree::new(&mut links, &mut marks),
            command_stack: &mut command_stack,
        };
        let flags = match kind {
            Kind::PidNamespace => libc::CLONE_NEWPID,
            Kind::UserNamespace => libc::CLONE_NEWUSER | libc::CLONE_NEWPID,
            Kind::Sentinel => 0,
        };
        let pid = fork_init(flags, &mut plan).map_err(|e| {
            Failure::Unavailable(match kind {
                Kind::PidNamespace => format!("cannot create a PID namespace: {e}"),
                Kind::UserNamespace => format!("cannot create a user namespace: {e}"),
                Kind::Sentinel => format!("cannot start the sentinel: {e}"),
            })
        })?;
        drop(status_write);
        let mut init = Init {
            pid,
            status: Some(status_read),
            pending: Vec::new(),
            ended: None,
            remaining: false,
        };
        let first = init.first_line();
        if let Some(fd) = init.fd() {
            let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        // An init that failed exits by itself; the reaper collects it like any other child.
        match first {
            Some(Line::Started) => Ok(Started {
                init,
                stdout: stdout.map(|(read, _)| File::from(read)),
                stderr: stderr.map(|(read, _)| File::from(read)),
            }),
            Some(Line::Error(errno)) => Err(Failure::Command(io::Error::from_raw_os_error(errno))),
            Some(Line::Unavailable(step, errno)) => Err(Failure::Unavailable(format!(
                "cannot write /proc/self/{}: {}",
                step.as_str(),
                io::Error::from_raw_os_error(errno)
            ))),
            _ => Err(Failure::Unavailable(
                "the init ended before starting the command".to_string(),
            )),
        }
    }

    /// Forks the init with clone `flags` (namespaces) and runs [`child::run`] in it. Every signal is
    /// blocked across the fork, so the init starts with all of them held for its `sigwaitinfo`, and
    /// none of watchdog's handlers can run in it.
    fn fork_init(flags: libc::c_int, plan: &mut Plan<'_>) -> io::Result<Pid> {
        debug_assert_eq!(
            threads(),
            Some(1),
            "the init is forked while watchdog has one thread"
        );
        let held = crate::process::AllSignalsHeld::hold();
        // SAFETY: clone as fork (no stack, no shared memory) plus namespace flags. In the child only
        // async-signal-safe code runs (child::run, which never returns), so no lock or allocator
        // state copied from watchdog is ever touched there.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            child::run(plan);
        }
        let error = io::Error::last_os_error();
        drop(held);
        if pid < 0 {
            return Err(error);
        }
        Ok(Pid::from_raw(pid as i32))
    }

    /// How many threads this process has (from /proc/self/stat), for the check above.
    fn threads() -> Option<usize> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        // Field 20 is num_threads; `rest` starts at field 3.
        rest.split_ascii_whitespace().nth(17)?.parse().ok()
    }

    impl Init {
        /// Blocks for the init's first line (the pipe is still blocking); `None` at end of file.
        fn first_line(&mut self) -> Option<Line> {
            let fd = self.status.as_ref()?.as_raw_fd();
            let mut buf = [0u8; 64];
            loop {
                if let Some(line) = self.next_line() {
                    return line;
                }
                match nix::unistd::read(fd, &mut buf) {
                    Ok(0) => return None,
                    Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return None,
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn start(
    _kind: Kind,
    _spec: &super::SpawnSpec<'_>,
    _channel: &super::ProgressChannel,
) -> Result<Started, Failure> {
    Err(Failure::Unavailable(
        "an init needs Linux (PID namespaces, subreapers)".to_string(),
    ))
}
