//! Starting the command so that it can always be stopped: in its own process group, tied to watchdog's
//! life with `PR_SET_PDEATHSIG`, and holding the write end of the progress channel.

use std::ffi::OsString;
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::RawFd;
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

/// A command started by [`spawn_shared`]: its pid and watchdog's ends of its pipes.
#[cfg(target_os = "linux")]
pub struct SharedSpawn {
    pub pid: i32,
    pub progress: OwnedFd,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// The stack the command runs on between its `vfork` and its exec: zeroed pages, mapped apart from
/// the heap, of which only the few exec's preparation touches are ever used.
#[cfg(target_os = "linux")]
const SHARED_STACK: usize = 256 * 1024;

/// What the command's side of [`spawn_shared`] needs, on watchdog's stack.
#[cfg(target_os = "linux")]
struct SharedStart<'a> {
    exec: &'a mut super::exec::Exec,
    progress: RawFd,
    /// The write ends that become stdout and stderr (negative: inherited).
    stdio: [RawFd; 2],
    own_group: bool,
    ignore_pipe: bool,
    default_tty_stops: [bool; 2],
    /// The signals watchdog has handlers for: back to their default before the mask opens.
    handled: &'a [i32],
    parent: i32,
    check_write: RawFd,
}

/// [`spawn`] for the supervisor's command, with `vfork` semantics: `clone(CLONE_VM | CLONE_VFORK)`
/// on a stack of its own, as posix_spawn does, rather than std's fork, which copies the page tables
/// of watchdog's whole address space only for exec to throw the copy away. The command gets the same
/// state as under [`spawn`]: its own process group unless `--foreground`, the progress channel,
/// stdout and stderr piped when asked, an empty signal mask, SIGPIPE, SIGTTIN and SIGTTOU as the
/// caller had them, PR_SET_PDEATHSIG. Exec's error comes back as the `io::Error`, and a command
/// that failed to exec is reaped here, as std's spawn does. `handled` are the signals watchdog
/// catches (see [`super::signal_pipe`]).
#[cfg(target_os = "linux")]
pub fn spawn_shared(
    spec: &SpawnSpec<'_>,
    channel: ProgressChannel,
    handled: &[i32],
) -> io::Result<SharedSpawn> {
    let ProgressChannel {
        read: progress_read,
        write: progress_write,
    } = channel;
    let progress = progress_write.as_raw_fd();
    let mut exec = super::exec::Exec::new(
        &spec.program,
        spec.args,
        spec.arg0.as_deref(),
        (PROGRESS_FD_ENV, &progress.to_string()),
    )
    .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let pipes = |wanted: bool| wanted.then(|| pipe2(OFlag::O_CLOEXEC)).transpose();
    let stdout = pipes(spec.capture_output)?;
    let stderr = pipes(spec.capture_output)?;
    let (check_read, check_write) = pipe2(OFlag::O_CLOEXEC)?;
    let write_end =
        |pipe: &Option<(OwnedFd, OwnedFd)>| pipe.as_ref().map_or(-1, |p| p.1.as_raw_fd());
    let mut stack = vec![0u8; SHARED_STACK];
    let top = stack.as_mut_ptr().wrapping_add(SHARED_STACK);
    let top = top.wrapping_sub(top as usize % 16);
    let mut start = SharedStart {
        exec: &mut exec,
        progress,
        stdio: [write_end(&stdout), write_end(&stderr)],
        own_group: spec.own_group,
        ignore_pipe: super::signal_pipe::ignored_at_start(libc::SIGPIPE),
        default_tty_stops: [libc::SIGTTIN, libc::SIGTTOU]
            .map(|signal| !super::signal_pipe::ignored_at_start(signal)),
        handled,
        parent: getpid().as_raw(),
        check_write: check_write.as_raw_fd(),
    };
    // Every signal is held across the clone, so none of watchdog's handlers can run in the child,
    // which shares watchdog's memory.
    let held = super::AllSignalsHeld::hold();
    // SAFETY: clone(2) through glibc's wrapper (a system call; no atfork handlers, no lock), the
    // child on its own stack inside `stack`, which outlives it. With CLONE_VM the child shares
    // watchdog's memory and writes only its own stack, errno and a slot of `exec`'s script argv;
    // with CLONE_VFORK this thread is suspended until the child execs or exits, and the child calls
    // only async-signal-safe functions (see `shared_child`).
    let pid = unsafe {
        libc::clone(
            shared_child,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::addr_of_mut!(start).cast(),
        )
    };
    let clone_error = io::Error::last_os_error();
    drop(held);
    drop(check_write);
    drop(progress_write);
    let stdout = stdout.map(|(read, _)| read);
    let stderr = stderr.map(|(read, _)| read);
    if pid < 0 {
        return Err(clone_error);
    }
    // Closed by a successful exec: end of file. Otherwise the errno exec failed with.
    let mut bytes = [0u8; 4];
    let mut got = 0;
    while got < bytes.len() {
        match nix::unistd::read(check_read.as_raw_fd(), &mut bytes[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if got == bytes.len() {
        // The child exits at once; reaped here, as std's spawn does, so that nothing is left.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(bytes)));
    }
    Ok(SharedSpawn {
        pid,
        progress: progress_read,
        stdout,
        stderr,
    })
}

/// The command's side of [`spawn_shared`]: the state [`spawn`] gives it, then exec; on failure, the
/// errno on the check pipe and `_exit(127)`. Never returns.
#[cfg(target_os = "linux")]
extern "C" fn shared_child(start: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `start` is the `SharedStart` that spawn_shared passed to clone, alive on its stack,
    // which is suspended until this child execs or exits.
    let start = unsafe { &mut *start.cast::<SharedStart<'_>>() };
    // SAFETY: dup2, setpgid, sigaction, sigemptyset, sigprocmask, prctl, getppid, fcntl, execve,
    // write and _exit: async-signal-safe, or system calls, on integers and stack values.
    // sigaction and sigprocmask change this process's own tables, which CLONE_VM does not share.
    unsafe {
        for (target, fd) in [1, 2].into_iter().zip(start.stdio) {
            if fd >= 0 {
                libc::dup2(fd, target);
            }
        }
        if start.own_group {
            libc::setpgid(0, 0);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_sigaction = libc::SIG_DFL;
        // Exec would reset them anyway; before the mask opens, so that no handler runs here.
        for &signal in start.handled {
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        action.sa_sigaction = if start.ignore_pipe {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        libc::sigaction(libc::SIGPIPE, &action, std::ptr::null_mut());
        action.sa_sigaction = libc::SIG_DFL;
        for (signal, default) in [libc::SIGTTIN, libc::SIGTTOU]
            .into_iter()
            .zip(start.default_tty_stops)
        {
            if default {
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        let mut failed = 0;
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == -1 {
            failed = errno();
        } else if libc::getppid() != start.parent {
            libc::_exit(125);
        }
        if failed == 0 && libc::fcntl(start.progress, libc::F_SETFD, 0) == -1 {
            failed = errno();
        }
        if failed == 0 {
            failed = start.exec.exec();
        }
        let bytes = failed.to_ne_bytes();
        libc::write(start.check_write, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// The calling thread's errno.
#[cfg(target_os = "linux")]
fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}
