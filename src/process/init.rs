//! The init of a command's PID namespace (`--contain pidns`): watchdog's own binary, started as
//! `watchdog __contain-init STATUS_FD MODE [--arg0 ARG0] -- PROGRAM ARGS...` as PID 1 of a new PID
//! namespace (see [`super::contain`]).
//!
//! It gives the namespace its own /proc (in a private mount namespace, so that a process inside sees
//! its own pid through /proc/self), starts the command as PID 2, reaps every process that ends in the
//! namespace, and applies the signals watchdog sends it: to the whole namespace with `kill(-1, sig)`,
//! or to the command alone with `--foreground` while it runs. It reports on STATUS_FD that the command
//! started (or the errno it could not be run with), then how it ended, and exits once nothing else is
//! left in the namespace. Every signal is blocked from before its exec (see `spawn_with`), so none is
//! lost, and it takes them with `sigwaitinfo`.
//!
//! Signals sent from inside the namespace (a script's `kill 0`, which reaches the init as a member of
//! the command's group) and those the kernel generates (a terminal's ^C) already reached their targets
//! and are not passed on again; only those sent from outside (watchdog, or whoever signals the pid
//! the events file names) are applied.

use std::ffi::OsString;
use std::process::ExitCode;

/// The hidden first argument that selects this mode.
pub const INIT_ARG: &str = "__contain-init";
/// MODE: signals go to the whole namespace.
pub const MODE_GROUP: &str = "group";
/// MODE: signals go to the command alone while it runs (`--foreground`).
pub const MODE_FOREGROUND: &str = "foreground";

#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the namespace is Linux-only
struct InitArgs {
    status_fd: i32,
    foreground: bool,
    arg0: Option<OsString>,
    program: OsString,
    args: Vec<OsString>,
}

fn parse(args: &[OsString]) -> Option<InitArgs> {
    let mut it = args.iter();
    let status_fd = it.next()?.to_str()?.parse().ok()?;
    let foreground = match it.next()?.to_str()? {
        MODE_GROUP => false,
        MODE_FOREGROUND => true,
        _ => return None,
    };
    let mut arg0 = None;
    loop {
        match it.next()?.to_str() {
            Some("--arg0") => arg0 = Some(it.next()?.clone()),
            Some("--") => break,
            _ => return None,
        }
    }
    let program = it.next()?.clone();
    Some(InitArgs {
        status_fd,
        foreground,
        arg0,
        program,
        args: it.cloned().collect(),
    })
}

/// Entry point of the init (`args` follow [`INIT_ARG`]).
pub fn init_main(args: &[OsString]) -> ExitCode {
    let Some(args) = parse(args) else {
        crate::report_error("internal init: bad arguments (this mode is watchdog's own)");
        return crate::exit::Exit::Failure.into();
    };
    imp::run(args)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io::Write;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Command, ExitCode};

    use super::InitArgs;
    use crate::process::contain::line;
    use crate::protocol::PROGRESS_FD_ENV;

    pub fn run(args: InitArgs) -> ExitCode {
        // SAFETY: fcntl on an integer; F_GETFD only tells whether the descriptor is open.
        if unsafe { libc::fcntl(args.status_fd, libc::F_GETFD) } == -1 {
            crate::report_error("internal init: the status descriptor is not open");
            return crate::exit::Exit::Failure.into();
        }
        // SAFETY: watchdog passed this descriptor to this process alone, and nothing else owns it here.
        let status = unsafe { OwnedFd::from_raw_fd(args.status_fd) };
        let mut status = std::fs::File::from(status);
        // SAFETY: fcntl on a descriptor just checked to be open: the command must not inherit it.
        unsafe {
            libc::fcntl(args.status_fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        own_proc();

        let mut command = Command::new(&args.program);
        command.args(&args.args);
        if let Some(arg0) = &args.arg0 {
            command.arg0(arg0);
        }
        // The init's mask blocks everything; the command starts with an empty one, as it would
        // under watchdog directly. (std's posix_spawn path would hand the init's mask on.)
        // std resets SIGPIPE to the default in the child: one that watchdog's caller ignored (and so
        // the init was started with) stays ignored, as it does without containment.
        let ignore_pipe = crate::process::ignored_at_start(libc::SIGPIPE);
        // SAFETY: the closure runs in the forked child before exec and only calls sigemptyset,
        // sigprocmask and signal on a stack value and integers.
        unsafe {
            command.pre_exec(move || {
                let mut none = std::mem::zeroed::<libc::sigset_t>();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                if ignore_pipe {
                    libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                }
                Ok(())
            });
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(libc::ENOEXEC);
                let _ = writeln!(status, "{} {errno}", line::ERROR);
                return crate::exit::Exit::CannotRun.into();
            }
        };
        let command_pid = child.id() as i32;
        // The command holds the progress channel and the standard streams now; the init keeping copies
        // would hold a reader of them open after the command's tree is gone.
        let _ = writeln!(status, "{}", line::STARTED);
        let _ = status.flush();
        release_inherited();
        // The std handle is not needed: the loop below reaps with waitpid(-1).
        drop(child);

        let mut ended: Option<std::process::ExitStatus> = None;
        let mut told_remaining = false;
        loop {
            // Reap everything that ended; stop once the command is gone and nothing is left.
            loop {
                let mut raw = 0;
                // SAFETY: waitpid writes one int through the pointer it is given.
                let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
                if pid > 0 {
                    if pid == command_pid {
                        let how = std::process::ExitStatus::from_raw(raw);
                        report(&mut status, how);
                        ended = Some(how);
                    }
                    continue;
                }
                if pid == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {
                    continue;
                }
                if pid == -1 {
                    // ECHILD: nothing is left in the namespace.
                    return exit_code(ended);
                }
                // Something outlived the command: watchdog cleans it up as it would without the init.
                if ended.is_some() && !told_remaining {
                    let _ = writeln!(status, "{}", line::REMAINING);
                    let _ = status.flush();
                    told_remaining = true;
                }
                break;
            }
            let (signal, from_outside) = wait_signal();
            if signal == libc::SIGCHLD || !from_outside {
                continue;
            }
            if args.foreground && ended.is_none() {
                // SAFETY: kill(2) with integers.
                unsafe {
                    libc::kill(command_pid, signal);
                }
            } else {
                signal_namespace(signal);
            }
        }
    }

    /// Applies `signal` to every process in the namespace, as `kill(-1, sig)` would, except what a
    /// nested watchdog runs: that is left to the nested one, which gets the signal itself, so nested
    /// watchdogs behave like nested timeouts under containment too. SIGKILL reaches everything.
    fn signal_namespace(signal: i32) {
        let me = nix::unistd::Pid::from_raw(1);
        let exe = crate::process::tree::executable(None);
        let nested = |pid: nix::unistd::Pid| {
            signal != libc::SIGKILL
                && exe.is_some()
                && crate::process::tree::executable(Some(pid)) == exe
        };
        // Only this namespace's own /proc may be scanned: without it (the mount failed), pid 1 there
        // is the host's init.
        let own_proc = std::fs::read_link("/proc/self").is_ok_and(|p| p.as_os_str() == "1");
        let found = if own_proc && signal != libc::SIGKILL {
            crate::process::tree::descendants_pruned(me, nested)
        } else {
            Vec::new()
        };
        if found.is_empty() {
            // SAFETY: kill(2) with integers. From PID 1, -1 means every process in the namespace but
            // the init itself.
            unsafe {
                libc::kill(-1, signal);
            }
            return;
        }
        for process in found {
            crate::process::tree::signal_pid_raw(process.pid, signal);
        }
    }

    /// A private mount namespace with this namespace's /proc over the old one. Without it a process
    /// inside would look itself up in the parent namespace's /proc. Nothing is mounted unless the mount
    /// tree is private first, so no mount can propagate to the host; a failure leaves the old /proc.
    fn own_proc() {
        // SAFETY: unshare and mount with constant, NUL-terminated strings.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) == -1 {
                return;
            }
            let root = c"/".as_ptr();
            if libc::mount(
                std::ptr::null(),
                root,
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == -1
            {
                return;
            }
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            );
        }
    }

    /// Closes the init's copies of the progress channel and points stdin, stdout and stderr at
    /// /dev/null.
    fn release_inherited() {
        if let Some(fd) = std::env::var(PROGRESS_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|fd| *fd > 2)
        {
            // SAFETY: close on the descriptor watchdog named for the command, which the init never uses.
            unsafe {
                libc::close(fd);
            }
        }
        // SAFETY: open and dup2 on integers and a constant path.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if null >= 0 {
                for fd in 0..3 {
                    libc::dup2(null, fd);
                }
                if null > 2 {
                    libc::close(null);
                }
            }
        }
    }

    /// Waits for the next signal; returns it and whether it came from outside the namespace by
    /// kill(2) (a zero sender pid: the sender is not in this namespace).
    fn wait_signal() -> (i32, bool) {
        // SAFETY: sigfillset and sigwaitinfo on stack values.
        unsafe {
            let mut all = std::mem::zeroed::<libc::sigset_t>();
            libc::sigfillset(&mut all);
            loop {
                let mut info = std::mem::zeroed::<libc::siginfo_t>();
                let signal = libc::sigwaitinfo(&all, &mut info);
                if signal > 0 {
                    let from_outside = (info.si_code == libc::SI_USER
                        || info.si_code == libc::SI_QUEUE)
                        && info.si_pid() == 0;
                    return (signal, from_outside);
                }
            }
        }
    }

    fn report(status: &mut std::fs::File, how: std::process::ExitStatus) {
        let _ = match (how.code(), how.signal()) {
            (Some(code), _) => writeln!(status, "{} {code}", line::EXIT),
            (None, Some(signal)) if how.core_dumped() => {
                writeln!(status, "{} {signal}", line::CORE)
            }
            (None, Some(signal)) => writeln!(status, "{} {signal}", line::SIGNAL),
            (None, None) => Ok(()),
        };
        let _ = status.flush();
    }

    /// The command's own code, or 128 + the signal that killed it (the status pipe carries the truth).
    fn exit_code(ended: Option<std::process::ExitStatus>) -> ExitCode {
        match ended.map(|how| (how.code(), how.signal())) {
            Some((Some(code), _)) => ExitCode::from((code & 0xff) as u8),
            Some((None, Some(signal))) => crate::exit::Exit::Signal(signal).into(),
            _ => crate::exit::Exit::Failure.into(),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::process::ExitCode;

    pub fn run(_args: super::InitArgs) -> ExitCode {
        crate::report_error("internal init: PID namespaces exist on Linux only");
        crate::exit::Exit::Failure.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_init_takes_what_contain_gives_it() {
        let parsed = parse(&os(&[
            "12",
            "foreground",
            "--arg0",
            "x",
            "--",
            "sh",
            "-c",
            "--",
        ]));
        let parsed = parsed.expect("valid arguments");
        assert_eq!(parsed.status_fd, 12);
        assert!(parsed.foreground);
        assert_eq!(parsed.arg0, Some(OsString::from("x")));
        assert_eq!(parsed.program, "sh");
        assert_eq!(parsed.args, os(&["-c", "--"]));
        let parsed = parse(&os(&["3", "group", "--", "true"])).expect("valid arguments");
        assert!(!parsed.foreground && parsed.arg0.is_none() && parsed.args.is_empty());
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &[][..],
            &["x", "group", "--", "true"][..],
            &["3", "both", "--", "true"][..],
            &["3", "group", "true"][..],
            &["3", "group", "--"][..],
            &["3", "group", "--arg0"][..],
        ] {
            assert!(parse(&os(bad)).is_none(), "{bad:?}");
        }
    }
}
