//! How the command's tree is held: in a PID namespace of its own where the kernel allows it, else in a
//! process group with watchdog as its subreaper.
//!
//! Under `pidns` the command runs under a minimal init (watchdog's own binary, see [`super::init`]) that
//! is PID 1 of a new PID namespace. Every process the command starts, `setsid` escapees and
//! double-forked daemons included, is in that namespace and cannot leave it; when its PID 1 dies, the
//! kernel SIGKILLs all of them. The init has PR_SET_PDEATHSIG=SIGKILL, so a SIGKILLed watchdog takes the
//! init along, and with it the whole namespace. Under `group` (no CAP_SYS_ADMIN, or not Linux) only
//! the direct child dies with watchdog; while watchdog lives, both sweep every descendant.
//!
//! The init is watchdog's direct child: watchdog calls `unshare(CLONE_NEWPID)` (which only changes the
//! namespace of the caller's *next* children), spawns the init, and at once goes back to its own
//! namespace for children with `setns`. A signal watchdog sends to the init applies to the whole
//! namespace (`kill(-1, sig)` from PID 1), or only to the command with `--foreground` while it runs.
//! The init reports over a pipe that the command started (or why it could not be run) and then how
//! it ended, so that exit codes are the same under every mechanism.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

use super::{Ended, Processes, ProgressChannel, SpawnSpec, Spawned};

/// Which containment to use, as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contain {
    /// The strongest available: a PID namespace, else a process group.
    Auto,
    /// A PID namespace, or an error when one cannot be had.
    PidNamespace,
    /// A process group, with watchdog as subreaper.
    Group,
}

/// The containment a command actually runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    // Only Linux has PID namespaces; elsewhere every run is contained as a group.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    PidNamespace,
    Group,
}

impl Mechanism {
    /// The name `--contain` takes and the events file records.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::PidNamespace => "pidns",
            Mechanism::Group => "group",
        }
    }

    /// What it means, for `-v`.
    pub fn describe(self) -> &'static str {
        match self {
            Mechanism::PidNamespace => "as PID 2 under its own init in a new PID namespace",
            Mechanism::Group => "in its own process group",
        }
    }
}

/// Why the command could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// Exec (or fork) failed with this error: the caller tells "not found" from "cannot run".
    Command(io::Error),
    /// The containment asked for cannot be had; the message says why.
    Contain(String),
}

/// A started command under its containment.
pub struct Started {
    pub spawned: Spawned,
    pub mechanism: Mechanism,
    /// The namespace's init, under `pidns`: `spawned.child` is the init, not the command.
    pub init: Option<Init>,
}

/// Starts the command under `contain` (see the module comment).
pub fn spawn(
    processes: &Processes,
    spec: &SpawnSpec<'_>,
    channel: ProgressChannel,
    contain: Contain,
) -> Result<Started, SpawnError> {
    let group = |channel| {
        processes
            .spawn(spec, channel)
            .map(|spawned| Started {
                spawned,
                mechanism: Mechanism::Group,
                init: None,
            })
            .map_err(SpawnError::Command)
    };
    match contain {
        Contain::Group => group(channel),
        Contain::PidNamespace => spawn_init(spec, channel).map_err(|failure| match failure {
            InitFailure::Command(e) => SpawnError::Command(e),
            InitFailure::Unavailable(_, why) | InitFailure::Broken(why) => {
                SpawnError::Contain(format!(
                    "--contain pidns: {why} (it needs CAP_SYS_ADMIN on Linux; --contain auto \
                     falls back to a process group)"
                ))
            }
        }),
        // The fallback is silent: the channel comes back when no namespace could be had.
        Contain::Auto => match spawn_init(spec, channel) {
            Ok(started) => Ok(started),
            Err(InitFailure::Unavailable(channel, _)) => group(channel),
            Err(InitFailure::Command(e)) => Err(SpawnError::Command(e)),
            // The namespace was granted but its init did not start the command (a sandbox that
            // allows unshare and not what follows): nothing ran yet, so a process group still can.
            Err(InitFailure::Broken(why)) => match ProgressChannel::new() {
                Ok(channel) => group(channel),
                Err(e) => Err(SpawnError::Contain(format!(
                    "{why}; then cannot create the progress pipe: {e}"
                ))),
            },
        },
    }
}

/// Why the command does not run under an init.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the namespace is Linux-only
enum InitFailure {
    /// No namespace could be made; the progress channel is still unused.
    Unavailable(ProgressChannel, String),
    /// The init could not be started, or ended without starting the command.
    Broken(String),
    /// The init could not run the command: exec's error.
    Command(io::Error),
}

/// The init's side of the status pipe, one line each: `started`, `error ERRNO` (the command could not
/// be run), then `exit CODE` or `signal N` when the command ended, and `remaining` when other processes
/// outlived it (otherwise the init exits at once).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the namespace is Linux-only
pub(crate) mod line {
    pub const STARTED: &str = "started";
    pub const ERROR: &str = "error";
    pub const EXIT: &str = "exit";
    pub const SIGNAL: &str = "signal";
    /// Killed by a signal, with a core dump.
    pub const CORE: &str = "core";
    pub const REMAINING: &str = "remaining";
}

/// Watchdog's hold on the namespace's init.
pub struct Init {
    pid: Pid,
    status: Option<OwnedFd>,
    pending: Vec<u8>,
    ended: Option<Ended>,
    remaining: bool,
}

impl Init {
    /// Whether the init said that processes outlived the command (read by [`Init::read`]). Spares a
    /// scan of /proc: the init knows, since every process of the namespace is its descendant.
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
            while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let text: Vec<u8> = self.pending.drain(..=end).collect();
                if let Some(ended) = parse_end(&text) {
                    self.ended = Some(ended);
                } else if text.trim_ascii_end() == line::REMAINING.as_bytes() {
                    self.remaining = true;
                }
            }
        }
        self.ended
    }

    /// Sends `signal` to the init, which applies it to the namespace (or, with `--foreground`, to the
    /// command while it runs). Returns how many processes it reaches: the live ones in the namespace
    /// besides the init, or one when none is seen.
    pub fn signal(&self, processes: &Processes, signal: i32) -> usize {
        if !processes.signal(self.pid, signal) {
            return 0;
        }
        let others = processes
            .descendants()
            .iter()
            .filter(|d| d.pid != self.pid)
            .count();
        others.max(1)
    }
}

fn parse_end(line: &[u8]) -> Option<Ended> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let (word, number) = text.split_once(' ')?;
    let number: i32 = number.parse().ok()?;
    match word {
        line::EXIT => Some(Ended::Code(number)),
        line::SIGNAL => Some(Ended::Signal(number)),
        line::CORE => Some(Ended::CoreDump(number)),
        _ => None,
    }
}

/// The init's arguments after [`super::init::INIT_ARG`]: `STATUS_FD MODE [--arg0 ARG0] -- PROGRAM ARGS`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the namespace is Linux-only
fn init_args(spec: &SpawnSpec<'_>, status_fd: RawFd) -> Vec<OsString> {
    let mut args = vec![
        OsString::from(super::init::INIT_ARG),
        OsString::from(status_fd.to_string()),
        OsString::from(if spec.own_group {
            super::init::MODE_GROUP
        } else {
            super::init::MODE_FOREGROUND
        }),
    ];
    if let Some(arg0) = &spec.arg0 {
        args.push(OsString::from("--arg0"));
        args.push(arg0.clone());
    }
    args.push(OsString::from("--"));
    args.push(spec.program.clone());
    args.extend(spec.args.iter().cloned());
    args
}

#[cfg(target_os = "linux")]
fn spawn_init(spec: &SpawnSpec<'_>, channel: ProgressChannel) -> Result<Started, InitFailure> {
    use nix::fcntl::OFlag;

    let (status_read, status_write) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(e) => {
            return Err(InitFailure::Unavailable(
                channel,
                format!("cannot create a pipe: {e}"),
            ))
        }
    };
    let own = match std::fs::File::open("/proc/self/ns/pid") {
        Ok(file) => file,
        Err(e) => {
            return Err(InitFailure::Unavailable(
                channel,
                format!("cannot open /proc/self/ns/pid: {e}"),
            ))
        }
    };
    // SAFETY: unshare with a flag word; it changes only where this thread's next children go.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } == -1 {
        let e = io::Error::last_os_error();
        return Err(InitFailure::Unavailable(
            channel,
            format!("cannot create a PID namespace: {e}"),
        ));
    }
    let args = init_args(spec, status_write.as_raw_fd());
    let init_spec = SpawnSpec {
        // The running binary itself, whatever became of its path since it started.
        program: OsString::from("/proc/self/exe"),
        args: &args,
        arg0: Some(OsString::from("watchdog-init")),
        own_group: spec.own_group,
        capture_output: spec.capture_output,
        pipe_stdin: spec.pipe_stdin,
    };
    let lifeline = super::spawn::Lifeline {
        write: status_write.as_raw_fd(),
        read: status_read.as_raw_fd(),
    };
    let spawned = super::spawn::spawn_with(&init_spec, channel, Some(lifeline));
    // Back to watchdog's own namespace for any later child. This cannot fail for the namespace the
    // process is in; were it to, a later fork would fail with a clear error, not misbehave.
    // SAFETY: setns on a descriptor this function owns.
    unsafe {
        libc::setns(own.as_raw_fd(), libc::CLONE_NEWPID);
    }
    drop(status_write);
    let spawned = spawned
        .map_err(|e| InitFailure::Broken(format!("cannot start the namespace's init: {e}")))?;
    let pid = Pid::from_raw(spawned.child.id() as i32);

    // Wait for the init to start the command: only then are its errors (127, 126) known.
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
    match first
        .as_deref()
        .and_then(|l| l.split_once(' ').or(Some((l, ""))))
    {
        Some((line::STARTED, _)) => Ok(Started {
            spawned,
            mechanism: Mechanism::PidNamespace,
            init: Some(init),
        }),
        // The init exits by itself after an error line; watchdog exits too, and the zombie with it.
        Some((line::ERROR, errno)) => Err(InitFailure::Command(io::Error::from_raw_os_error(
            errno.parse().unwrap_or(libc::ENOEXEC),
        ))),
        _ => Err(InitFailure::Broken(
            "the namespace's init ended before starting the command".to_string(),
        )),
    }
}

#[cfg(not(target_os = "linux"))]
fn spawn_init(_spec: &SpawnSpec<'_>, channel: ProgressChannel) -> Result<Started, InitFailure> {
    Err(InitFailure::Unavailable(
        channel,
        "PID namespaces exist on Linux only".to_string(),
    ))
}

#[cfg(target_os = "linux")]
impl Init {
    /// Blocks for the init's first line (the pipe is still blocking); `None` at end of file.
    fn first_line(&mut self) -> Option<String> {
        let fd = self.status.as_ref()?.as_raw_fd();
        let mut buf = [0u8; 64];
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Some(String::from_utf8_lossy(&line).trim_end().to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_reports_how_the_command_ended() {
        assert_eq!(parse_end(b"exit 3\n"), Some(Ended::Code(3)));
        assert_eq!(parse_end(b"signal 40\n"), Some(Ended::Signal(40)));
        assert_eq!(parse_end(b"core 11\n"), Some(Ended::CoreDump(11)));
        assert_eq!(parse_end(b"remaining\n"), None);
        assert_eq!(parse_end(b"exit x\n"), None);
        assert_eq!(parse_end(b"started\n"), None);
    }
}
