//! The init's life, in the child watchdog forks for it: set up the namespace (or the sentinel), start
//! the command, reap, pass signals on, report on the status pipe, exit.
//!
//! This child never execs itself (that second exec was most of the start-up cost), so from the fork
//! to its end it calls only async-signal-safe functions: the ones POSIX lists (`close`, `dup2`,
//! `open`, `read`, `write`, `fcntl`, `getpid`, `getppid`, `kill`, `setpgid`, `sigaction`,
//! `sigprocmask`, `sigemptyset`, `sigfillset`, `sigaddset`, `waitpid`, `poll`, `stat`, `execve`,
//! `_exit`) and Linux system calls that touch no user-space state (`prctl`, `unshare`, `mount`,
//! `clone` as `vfork` on a stack of its own, `pipe2`, `sigwaitinfo`,
//! `sigtimedwait`, `close_range`, `getdents64`), plus plain computation on memory it owns
//! (formatting a status line, sorting the /proc snapshot in place). It allocates nothing, takes no lock, and never returns into watchdog's
//! code: every path ends in `_exit`. Nothing here would deadlock even if watchdog had other threads
//! at the fork; it has none then (checked in debug builds, see [`super::start`]).

use std::os::fd::RawFd;

use super::raw_proc;
use super::wire::{Line, Step, MAX_LINE};
use crate::process::exec::Exec;
use crate::process::Ended;

/// What the child sets up around the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// PID 1 of a new PID namespace (in a new user namespace when `maps` is set).
    Namespace,
    /// A subreaper in watchdog's PID namespace that sweeps the tree when watchdog dies.
    Sentinel,
}

/// A uid or gid map line, prepared before the fork.
#[derive(Clone, Copy)]
pub struct MapLine {
    pub text: [u8; 48],
    pub len: usize,
}

impl MapLine {
    /// `ID ID 1`: the id maps to itself, and nothing else is mapped.
    pub fn identity(id: u32) -> MapLine {
        let mut text = [0u8; 48];
        let formatted = format!("{id} {id} 1\n");
        let len = formatted.len().min(text.len());
        text[..len].copy_from_slice(&formatted.as_bytes()[..len]);
        MapLine { text, len }
    }
}

/// Everything the child needs, prepared by watchdog before the fork.
pub struct Plan<'a> {
    pub role: Role,
    /// The user namespace's maps (uid, gid), when one was created with the PID namespace.
    pub maps: Option<(MapLine, MapLine)>,
    /// Signals go to the command alone while it runs (`--foreground`).
    pub foreground: bool,
    /// The init leads a process group of its own, which the command joins.
    pub own_group: bool,
    pub exec: &'a mut Exec,
    /// The status pipe's write end (the init's), and watchdog's read end, closed at once.
    pub status: RawFd,
    pub status_read: RawFd,
    /// The progress channel's write end, which the command inherits.
    pub progress: RawFd,
    /// Descriptors only watchdog uses (its pipe ends): closed first.
    pub close_first: [RawFd; 4],
    /// What becomes the command's stdin, stdout and stderr (negative: inherited).
    pub stdio: [RawFd; 3],
    /// The caller had SIGPIPE ignored: the command gets it ignored too.
    pub ignore_pipe: bool,
    /// Whether the caller left SIGTTIN and SIGTTOU at their default: watchdog ignores them for itself
    /// (see `Processes::lead_own_group`), and the command gets them as the caller left them.
    pub default_tty_stops: [bool; 2],
    /// watchdog's pid, to notice that the sentinel was orphaned.
    pub parent: i32,
    /// watchdog's executable, to recognise a nested watchdog.
    pub exe: Option<(u64, u64)>,
    /// Room to look at /proc in.
    pub tree: raw_proc::Tree<'a>,
    /// The stack the command runs on from its `vfork` to its exec (see [`start_command`]).
    pub command_stack: &'a mut [u8],
}

/// The signal a sentinel is sent when watchdog dies (caught: it sweeps the tree before exiting).
const SENTINEL_DEATH_SIGNAL: i32 = libc::SIGHUP;

/// How long the sentinel's sweep waits for SIGCHLD before it looks at /proc again.
const SWEEP_RESCAN_NS: i64 = 10_000_000;

/// Runs the init; never returns.
pub fn run(plan: &mut Plan<'_>) -> ! {
    for fd in plan.close_first.into_iter().chain([plan.status_read]) {
        if fd >= 0 {
            // SAFETY: close (async-signal-safe) on watchdog's ends, which this process never uses.
            unsafe {
                libc::close(fd);
            }
        }
    }
    tie_to_watchdog(plan);
    // SAFETY: prctl with a constant, NUL-terminated name of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"watchdog-init".as_ptr(), 0, 0, 0);
    }
    if let Some((uid, gid)) = &plan.maps {
        if let Err((step, errno)) = map_ids(uid, gid) {
            send(plan.status, Line::Unavailable(step, errno));
            exit(125);
        }
    }
    let own_proc = match plan.role {
        Role::Namespace => own_proc(),
        Role::Sentinel => {
            // SAFETY: prctl with integers.
            unsafe {
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            }
            false
        }
    };
    if plan.own_group {
        // SAFETY: setpgid (async-signal-safe) with integers.
        unsafe {
            libc::setpgid(0, 0);
        }
    }
    for (target, fd) in (0..).zip(plan.stdio) {
        if fd == target {
            // SAFETY: fcntl (async-signal-safe): already in place, it only must survive exec.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
        } else if fd >= 0 {
            // SAFETY: dup2 (async-signal-safe) on integers; the new descriptor is not close-on-exec.
            unsafe {
                libc::dup2(fd, target);
            }
        }
    }
    let command = start_command(plan);
    release_inherited(plan.status);
    supervise(plan, command, own_proc)
}

/// Asks the kernel to signal this process when watchdog dies, and exits if watchdog already has.
fn tie_to_watchdog(plan: &Plan<'_>) {
    match plan.role {
        Role::Namespace => {
            // In a new PID namespace getppid() is 0, so the status pipe shows whether watchdog is
            // there: its read end is watchdog's alone now, and a dying process closes its files
            // before its children are re-parented.
            // SAFETY: prctl and poll (async-signal-safe) on integers and one stack pollfd.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                let mut probe = libc::pollfd {
                    fd: plan.status,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                if libc::poll(&mut probe, 1, 0) == 1 && probe.revents & libc::POLLERR != 0 {
                    exit(125);
                }
            }
        }
        Role::Sentinel => {
            // SAFETY: prctl and getppid (async-signal-safe) on integers.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, SENTINEL_DEATH_SIGNAL, 0, 0, 0);
                if libc::getppid() != plan.parent {
                    exit(125);
                }
            }
        }
    }
}

/// Writes the user namespace's maps for this process (setgroups first: an unprivileged gid map needs
/// setgroups denied).
fn map_ids(uid: &MapLine, gid: &MapLine) -> Result<(), (Step, i32)> {
    match write_file(c"/proc/self/setgroups", b"deny") {
        // Kernels before 3.19 have no such file, and need none.
        Ok(()) | Err(libc::ENOENT) => {}
        Err(errno) => return Err((Step::SetGroups, errno)),
    }
    write_file(
        c"/proc/self/uid_map",
        uid.text.get(..uid.len).unwrap_or_default(),
    )
    .map_err(|e| (Step::UidMap, e))?;
    write_file(
        c"/proc/self/gid_map",
        gid.text.get(..gid.len).unwrap_or_default(),
    )
    .map_err(|e| (Step::GidMap, e))
}

fn write_file(path: &std::ffi::CStr, text: &[u8]) -> Result<(), i32> {
    // SAFETY: open, write and close (async-signal-safe) on a NUL-terminated path and a byte slice.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let written = libc::write(fd, text.as_ptr().cast(), text.len());
        let failed = (written != text.len() as isize).then(errno);
        libc::close(fd);
        failed.map_or(Ok(()), Err)
    }
}

/// A private mount namespace with this namespace's /proc over the old one, so that a process inside
/// finds itself through /proc/self. Nothing is mounted unless the mount tree is private first, so no
/// mount can propagate to the host. Returns whether /proc is this namespace's own.
fn own_proc() -> bool {
    // SAFETY: unshare and mount (system calls) with constant, NUL-terminated strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) == -1 {
            return false;
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) == -1
        {
            return false;
        }
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ) == 0
    }
}

/// What the command's side of the `vfork` needs, on the init's stack.
struct CommandStart<'p, 'a> {
    plan: &'p mut Plan<'a>,
    check_write: RawFd,
    check_read: RawFd,
    init: i32,
}

/// Starts the command with `vfork` semantics (`clone(CLONE_VM | CLONE_VFORK)` on a stack of its own,
/// as posix_spawn does): the init's memory is shared rather than copied, so neither its page tables
/// are copied nor the copy torn down again at exec, and the init waits, suspended, until the command
/// has exec'd or failed to. Reports `started` or `error ERRNO` and returns its pid (exits after an
/// error).
fn start_command(plan: &mut Plan<'_>) -> i32 {
    let mut check = [-1; 2];
    // SAFETY: pipe2 (a system call) into a two-int array: the command's exec error comes back on it.
    if unsafe { libc::pipe2(check.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        send(plan.status, Line::Error(errno()));
        exit(126);
    }
    let [check_read, check_write] = check;
    let status = plan.status;
    // The stack grows down from its 16-byte aligned end.
    let stack_len = plan.command_stack.len();
    let top = plan.command_stack.as_mut_ptr().wrapping_add(stack_len);
    let top = top.wrapping_sub(top as usize % 16);
    let mut start = CommandStart {
        plan,
        check_write,
        check_read,
        // SAFETY: getpid (async-signal-safe).
        init: unsafe { libc::getpid() },
    };
    // SAFETY: clone(2) through glibc's wrapper (a system call, no atfork handlers, no lock), with
    // the child on its own stack inside `command_stack`, which lives as long as the init. With
    // CLONE_VM the child shares the init's memory: it writes only to its own stack, to `start`'s
    // `Exec` (a slot of the script argv, which the init never reads), and to errno; with CLONE_VFORK
    // the init is suspended until the child execs or exits, so nothing runs beside it.
    let pid = unsafe {
        libc::clone(
            command_child,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::addr_of_mut!(start).cast(),
        )
    };
    let clone_error = errno();
    // SAFETY: close (async-signal-safe).
    unsafe {
        libc::close(check_write);
    }
    if pid < 0 {
        send(status, Line::Error(clone_error));
        exit(126);
    }
    // Closed by a successful exec: end of file. Otherwise the errno exec failed with.
    let mut bytes = [0u8; 4];
    let got = loop {
        // SAFETY: read (async-signal-safe) into a stack buffer.
        let got = unsafe { libc::read(check_read, bytes.as_mut_ptr().cast(), bytes.len()) };
        if got == -1 && errno() == libc::EINTR {
            continue;
        }
        break got;
    };
    // SAFETY: close (async-signal-safe).
    unsafe {
        libc::close(check_read);
    }
    if got == 4 {
        // The command exits at once; nothing else runs here, so reap it and leave.
        // SAFETY: waitpid (async-signal-safe) on the child just started.
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        send(status, Line::Error(i32::from_ne_bytes(bytes)));
        exit(126);
    }
    send(status, Line::Started);
    pid
}

/// The command's side of [`start_command`]'s `vfork`: default signal state, then exec; on failure,
/// the errno on the check pipe and `_exit`. Never returns.
extern "C" fn command_child(start: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `start` is the `CommandStart` the init passed to clone, alive on the init's stack,
    // which is suspended until this child execs or exits.
    let start = unsafe { &mut *start.cast::<CommandStart<'_, '_>>() };
    let plan = &mut *start.plan;
    // SAFETY: sigaction, sigemptyset, sigprocmask, prctl, getppid, fcntl, close, write and _exit
    // (async-signal-safe, or system calls) on integers and stack values; sigaction and sigprocmask
    // change this process's own tables, which CLONE_VM does not share.
    unsafe {
        libc::close(start.check_read);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = if plan.ignore_pipe {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGPIPE, &action, std::ptr::null_mut());
        action.sa_sigaction = libc::SIG_DFL;
        for (signal, default) in [
            (libc::SIGTTIN, plan.default_tty_stops[0]),
            (libc::SIGTTOU, plan.default_tty_stops[1]),
        ] {
            if default {
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if plan.role == Role::Sentinel {
            // Only the namespace's death is the kernel's: under a sentinel, the command dies
            // with it, as it would with watchdog under a process group.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != start.init {
                exit(125);
            }
        }
        let mut failed = if libc::fcntl(plan.progress, libc::F_SETFD, 0) == -1 {
            errno()
        } else {
            0
        };
        if failed == 0 {
            failed = plan.exec.exec();
        }
        let bytes = failed.to_ne_bytes();
        libc::write(start.check_write, bytes.as_ptr().cast(), bytes.len());
        exit(127);
    }
}

/// The command holds the progress channel and the standard streams now; the init keeping copies would
/// hold them open after the command's tree is gone. Every descriptor but the status pipe is closed,
/// and stdin, stdout and stderr point at /dev/null.
fn release_inherited(status: RawFd) {
    // SAFETY: open, dup2, close (async-signal-safe) and the close_range system call on integers.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            // (A status pipe on 0, 1 or 2, when watchdog started without them, is kept.)
            for fd in (0..3).filter(|&fd| fd != status) {
                libc::dup2(null, fd);
            }
        }
        let (status, above) = (status as libc::c_uint, (status + 1) as libc::c_uint);
        if status > 3 {
            libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, status - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, above, libc::c_uint::MAX, 0);
    }
}

/// Reaps, passes signals on and reports, until nothing is left.
fn supervise(plan: &mut Plan<'_>, command: i32, own_proc: bool) -> ! {
    let mut ended: Option<Line> = None;
    let mut told_remaining = false;
    loop {
        loop {
            let mut raw = 0;
            // SAFETY: waitpid (async-signal-safe) writes one int.
            let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
            if pid > 0 {
                if pid == command {
                    let line = match Ended::from_wait_status(raw) {
                        Some(Ended::Code(code)) => Line::Exit(code),
                        Some(Ended::CoreDump(signal)) => Line::Core(signal),
                        Some(Ended::Signal(signal)) => Line::Signal(signal),
                        None => continue,
                    };
                    send(plan.status, line);
                    ended = Some(line);
                }
                continue;
            }
            if pid == -1 && errno() == libc::EINTR {
                continue;
            }
            if pid == -1 {
                // ECHILD: nothing is left.
                exit(match ended {
                    Some(Line::Exit(code)) => code & 0xff,
                    Some(Line::Signal(signal) | Line::Core(signal)) => 128 + signal,
                    _ => 1,
                });
            }
            // Something outlived the command: watchdog cleans it up as it would without the init.
            if ended.is_some() && !told_remaining {
                send(plan.status, Line::Remaining);
                told_remaining = true;
            }
            break;
        }
        let (signal, sender, sent) = wait_signal();
        if plan.role == Role::Sentinel && orphaned(plan) {
            sweep_and_exit(plan);
        }
        if signal == libc::SIGCHLD || !sent || !from_outside(plan, sender) {
            continue;
        }
        if plan.foreground && ended.is_none() {
            // SAFETY: kill (async-signal-safe) with integers.
            unsafe {
                libc::kill(command, signal);
            }
        } else {
            signal_tree(plan, signal, own_proc);
        }
    }
}

/// Whether the sentinel's watchdog is gone.
fn orphaned(plan: &Plan<'_>) -> bool {
    // SAFETY: getppid (async-signal-safe).
    unsafe { libc::getppid() != plan.parent }
}

/// Whether a signal sent by `sender` (kill(2) or sigqueue(3)) came from outside the tree: watchdog,
/// or whoever signals the pid the events file names. Signals sent from inside (a script's `kill 0`
/// reaches the init as a member of the command's group) already reached their targets.
fn from_outside(plan: &Plan<'_>, sender: i32) -> bool {
    match plan.role {
        // The sender is not in this namespace, so it has no pid here.
        Role::Namespace => sender == 0,
        Role::Sentinel => {
            // SAFETY: getpid (async-signal-safe).
            let me = unsafe { libc::getpid() };
            sender == plan.parent || (sender != me && !below(sender, me))
        }
    }
}

/// Whether `pid` is below `root` (walking its parents up; for the rare check of a signal's sender).
fn below(pid: i32, root: i32) -> bool {
    let Some(mut at) = raw_proc::parent_of(pid) else {
        return false;
    };
    // Bounded: a pid reused while walking cannot make it loop.
    for _ in 0..4096 {
        if at == root {
            return true;
        }
        if at <= 1 {
            return false;
        }
        match raw_proc::parent_of(at) {
            Some(parent) => at = parent,
            None => return false,
        }
    }
    false
}

/// Applies `signal` to every process of the tree but the init itself, except what a nested watchdog
/// runs (left to the nested one, which gets the signal itself, so nested watchdogs behave like nested
/// timeouts). SIGKILL reaches everything.
fn signal_tree(plan: &mut Plan<'_>, signal: i32, own_proc: bool) {
    // SAFETY: getpid (async-signal-safe).
    let me = unsafe { libc::getpid() };
    let exe = if signal == libc::SIGKILL {
        None
    } else {
        plan.exe
    };
    if plan.role == Role::Namespace && (!own_proc || exe.is_none()) {
        // SAFETY: kill (async-signal-safe). From PID 1, -1 means every process in the namespace but
        // the init itself. Without this namespace's own /proc nothing else can be told apart.
        unsafe {
            libc::kill(-1, signal);
        }
        return;
    }
    plan.tree.for_each_below(me, exe, |pid| {
        // SAFETY: kill (async-signal-safe).
        unsafe {
            libc::kill(pid, signal);
        }
    });
}

/// watchdog died: the sentinel SIGKILLs its whole tree (every orphan in it was re-parented here) and
/// reaps it, and exits once `wait` reports no children.
fn sweep_and_exit(plan: &mut Plan<'_>) -> ! {
    // SAFETY: getpid (async-signal-safe).
    let me = unsafe { libc::getpid() };
    loop {
        loop {
            // SAFETY: waitpid (async-signal-safe).
            let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
            if pid > 0 || (pid == -1 && errno() == libc::EINTR) {
                continue;
            }
            if pid == -1 {
                exit(128 + SENTINEL_DEATH_SIGNAL);
            }
            break;
        }
        plan.tree.for_each_below(me, None, |pid| {
            // SAFETY: kill (async-signal-safe).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        });
        // SAFETY: sigemptyset, sigaddset and sigtimedwait on stack values: SIGCHLD (blocked) wakes it.
        unsafe {
            let mut child: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut child);
            libc::sigaddset(&mut child, libc::SIGCHLD);
            let rescan = libc::timespec {
                tv_sec: 0,
                tv_nsec: SWEEP_RESCAN_NS,
            };
            libc::sigtimedwait(&child, std::ptr::null_mut(), &rescan);
        }
    }
}

/// Waits for the next signal (all are blocked); returns it, its sender's pid, and whether it was sent
/// with kill(2) or sigqueue(3) (a terminal's ^C or a child's SIGCHLD was not).
fn wait_signal() -> (i32, i32, bool) {
    // SAFETY: sigfillset and sigwaitinfo on stack values.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let signal = libc::sigwaitinfo(&all, &mut info);
            if signal > 0 {
                let sent = info.si_code == libc::SI_USER || info.si_code == libc::SI_QUEUE;
                return (signal, info.si_pid(), sent);
            }
        }
    }
}

/// Writes one status line (a pipe write of under PIPE_BUF bytes is whole).
fn send(status: RawFd, line: Line) {
    let mut buf = [0u8; MAX_LINE];
    let len = line.encode(&mut buf);
    // SAFETY: write (async-signal-safe) from a stack buffer.
    unsafe {
        libc::write(status, buf.as_ptr().cast(), len);
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit (async-signal-safe) ends this process without running watchdog's exit paths.
    unsafe { libc::_exit(code) }
}

fn errno() -> i32 {
    // SAFETY: errno is thread-local and this is its own thread.
    unsafe { *libc::__errno_location() }
}
