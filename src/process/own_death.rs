//! watchdog's own end when its command died of a signal it did not send: it dies of the same signal,
//! as GNU timeout does, so that its caller sees what the command's fate was. A shell that waits for a
//! job killed by SIGINT stops its loop (bash's cooperative exit), and Python's `subprocess` reports
//! `-15` for SIGTERM, where an exit code of 143 would tell neither.

use std::process::ExitCode;

use crate::exit::Exit;

/// Dies of `signal`: resets it to its default action, unblocks it, turns off watchdog's own core dump
/// (the command's was the one that mattered) and raises it. Returns only where that cannot end the
/// process, with 128 + `signal` for the caller to exit with: as PID 1 of a namespace (whose kernel
/// does not deliver a default-action signal the init sends itself), or for a signal whose default is
/// not to terminate.
pub fn die_of(signal: i32) -> ExitCode {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: plain libc calls on integers and zeroed C structs that live on the stack; none of them
    // touches memory Rust owns.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut default.sa_mask);
        libc::sigaction(signal, &default, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::raise(signal);
    }
    Exit::Signal(signal).into()
}
