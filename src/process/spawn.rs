//! Starting the command so that it can always be stopped: in its own process group, tied to watchdog's
//! life with `PR_SET_PDEATHSIG`, and holding the write end of the progress channel.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::{getpid, pipe2};

use crate::protocol::PROGRESS_FD_ENV;

/// How to start the command.
pub struct SpawnSpec<'a> {
    pub program: OsString,
    pub args: &'a [OsString],
    /// `argv[0]` as the command should see it, when it differs from `program`.
    pub arg0: Option<OsString>,
    /// Own process group (the default) or stay in watchdog's (`--foreground`).
    pub own_group: bool,
    /// Pipe stdout/stderr through watchdog (needed to see output as a sign of life for `--stall`).
    pub capture_output: bool,
    /// Give the command a pipe for stdin (batch workers take their items there).
    pub pipe_stdin: bool,
}

/// A started command and watchdog's ends of its pipes.
pub struct Spawned {
    pub child: Child,
    /// The read end of the progress channel.
    pub progress: OwnedFd,
    /// With `pipe_stdin`, on Linux: a non-blocking reader of the command's stdin pipe of its own (an
    /// open file description apart from the command's, which stays blocking), through which the
    /// caller takes back what it wrote and the command has not read yet. Whichever of the two reads
    /// a byte first has it: the kernel decides.
    pub stdin_reclaim: Option<OwnedFd>,
}

/// The progress channel before the command starts: watchdog's read end and the command's write end.
pub struct ProgressChannel {
    read: OwnedFd,
    write: OwnedFd,
}

impl ProgressChannel {
    /// Creates the pipe, with the write end on a single-digit fd where one is free: POSIX shells such
    /// as dash only accept `>&N` for N below 10. Create it before opening other files so one is.
    pub fn new() -> io::Result<ProgressChannel> {
        let (read, mut write) = pipe2(OFlag::O_CLOEXEC)?;
        fcntl(read.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        if write.as_raw_fd() > 9 {
            let low = fcntl(write.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(3))?;
            // SAFETY: F_DUPFD_CLOEXEC just returned this new fd, owned by nothing else.
            write = unsafe { OwnedFd::from_raw_fd(low) };
        }
        Ok(ProgressChannel { read, write })
    }

    /// The write end, which the command inherits.
    #[cfg(target_os = "linux")]
    pub(crate) fn write_fd(&self) -> std::os::fd::RawFd {
        self.write.as_raw_fd()
    }

    /// watchdog's read end.
    #[cfg(target_os = "linux")]
    pub(crate) fn read_fd(&self) -> std::os::fd::RawFd {
        self.read.as_raw_fd()
    }

    /// watchdog's read end alone, once the command holds the write end.
    pub(crate) fn into_read(self) -> OwnedFd {
        self.read
    }
}

/// Starts the command. The `io::Error` is the one exec failed with, so callers can tell "not found"
/// (127) from "cannot run" (126).
pub fn spawn(spec: &SpawnSpec<'_>, channel: ProgressChannel) -> io::Result<Spawned> {
    let ProgressChannel {
        read: progress_read,
        write: progress_write,
    } = channel;
    let write_fd = progress_write.as_raw_fd();
    let parent = getpid().as_raw();

    let mut command = Command::new(&spec.program);
    command
        .args(spec.args)
        .env(PROGRESS_FD_ENV, write_fd.to_string());
    if let Some(arg0) = &spec.arg0 {
        command.arg0(arg0);
    }
    if spec.own_group {
        command.process_group(0);
    }
    if spec.capture_output {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let stdin_pipe = if spec.pipe_stdin {
        let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
        command.stdin(Stdio::from(read.try_clone()?));
        Some((read, write))
    } else {
        None
    };
    // The standard library resets SIGPIPE to the default in the child; a caller that ignored it
    // (watchdog's own SIG_IGN is the runtime's, not the caller's) gets it back ignored.
    let ignore_pipe = super::signal_pipe::ignored_at_start(libc::SIGPIPE);
    // watchdog ignores the terminal's stop signals for itself (see `Processes::lead_own_group`); the
    // command gets them as the caller left them.
    let default_tty_stops =
        [libc::SIGTTIN, libc::SIGTTOU].map(|signal| !super::signal_pipe::ignored_at_start(signal));
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (fcntl, signal, prctl, getppid) on integers and stack
    // values; it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            // The progress pipe was created close-on-exec so that no other child inherits it; this
            // child must.
            if libc::fcntl(write_fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            if ignore_pipe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            for (signal, default) in [libc::SIGTTIN, libc::SIGTTOU]
                .into_iter()
                .zip(default_tty_stops)
            {
                if default {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            tie_to_parent(parent)
        });
    }
    let mut child = command.spawn()?;
    drop(progress_write);
    let mut stdin_reclaim = None;
    if let Some((read, write)) = stdin_pipe {
        child.stdin = Some(write.into());
        stdin_reclaim = reopen_nonblocking(&read);
    }
    Ok(Spawned {
        child,
        progress: progress_read,
        stdin_reclaim,
    })
}

/// A second, non-blocking open file description of the pipe end `fd` (Linux: through /proc), or
/// `None` where that cannot be had.
#[cfg(target_os = "linux")]
fn reopen_nonblocking(fd: &OwnedFd) -> Option<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()
        .map(OwnedFd::from)
}

#[cfg(not(target_os = "linux"))]
fn reopen_nonblocking(_fd: &OwnedFd) -> Option<OwnedFd> {
    None
}

/// Asks the kernel to SIGKILL this (child) process when watchdog dies, so a SIGKILLed watchdog does not
/// leave its command running. If watchdog died before the request took effect, exit at once.
#[cfg(target_os = "linux")]
fn tie_to_parent(parent: i32) -> io::Result<()> {
    // SAFETY: prctl and getppid take and return integers only.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            libc::_exit(125);
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn tie_to_parent(_parent: i32) -> io::Result<()> {
    Ok(())
}
