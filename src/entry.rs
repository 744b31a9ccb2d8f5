//! The binary's entry point, in place of the standard library's start-up (`src/main.rs` is
//! `#![no_main]`), because that start-up is most of what a `watchdog 5 true` costs beyond GNU
//! timeout's: for the main thread's stack-overflow guard, glibc reads and parses `/proc/self/maps`
//! (some 100,000 instructions, an eighth of a whole `watchdog 5 true`, plus the kernel's work to
//! print the maps), and an alternate signal stack is mapped and unmapped.
//!
//! [`main`] does what watchdog needs of that start-up, as the standard library does it: a closed
//! stdin, stdout or stderr is opened on `/dev/null` (so that no pipe watchdog creates takes their
//! number), SIGPIPE is ignored (a write to a closed pipe is an error, not death), a panic exits 101,
//! and stdout is flushed at the end. What is given up is the message on a stack overflow: the
//! process dies of SIGSEGV without the standard library's line saying why. The arguments are read
//! from C's `argv`: only on glibc does the standard library capture them without its start-up, and
//! the same binary must keep its arguments on the BSDs and musl.

use std::ffi::{c_char, c_int, CStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

/// The exit status of a process whose main function panicked, as the standard library's.
const PANICKED: u8 = 101;

/// Runs `run` with the process's arguments (C's `argc` and `argv`), as the standard library's
/// start-up would run a Rust `main` returning its `ExitCode`; returns the status for C's `main` to
/// return.
///
/// # Safety
/// `argv` must be C's `argv`: `argc` pointers to NUL-terminated strings that live for the whole
/// process (as the C library's start-up passes them to `main`).
pub unsafe fn main(
    argc: c_int,
    argv: *const *const c_char,
    run: fn(Vec<OsString>) -> ExitCode,
) -> i32 {
    open_missing_standard_fds();
    let count = usize::try_from(argc).unwrap_or(0);
    let args = (0..count)
        // SAFETY: the caller passes C's argv, whose first argc entries are valid C strings.
        .map(|i| unsafe { *argv.add(i) })
        .take_while(|arg| !arg.is_null())
        // SAFETY: as above: a non-null entry of argv is a NUL-terminated string.
        .map(|arg| {
            OsString::from(std::ffi::OsStr::from_bytes(
                unsafe { CStr::from_ptr(arg) }.to_bytes(),
            ))
        })
        .collect::<Vec<_>>();
    // SAFETY: signal(2) with SIG_IGN on a valid signal number, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = match std::panic::catch_unwind(|| run(args)) {
        Ok(code) => code,
        Err(payload) => {
            // As the standard library does: the payload is not dropped, since its drop could panic.
            std::mem::forget(payload);
            ExitCode::from(PANICKED)
        }
    };
    let _ = std::io::stdout().flush();
    status(code)
}

/// The number `code` stands for: `ExitCode` shows it only by comparison.
fn status(code: ExitCode) -> i32 {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .map_or(1, i32::from)
}

/// Opens `/dev/null` on each of fds 0, 1 and 2 that is closed, in order, as the standard library's
/// start-up does; aborts, as it does, when that cannot be done.
fn open_missing_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    let open_null = || {
        // SAFETY: open(2) with a NUL-terminated path; the fd it returns stays open for good, as the
        // standard stream it stands for.
        if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) } == -1 {
            std::process::abort();
        }
    };
    loop {
        // SAFETY: poll(2) on an array of three pollfd structs that lives on this stack.
        if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } != -1 {
            break;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // poll itself cannot run (RLIMIT_NOFILE, memory): ask each descriptor instead.
            Some(libc::EINVAL | libc::EAGAIN | libc::ENOMEM) => {
                for fd in 0..3 {
                    // SAFETY: fcntl(2) F_GETFD on an integer descriptor only reads its flags.
                    let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
                        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
                    if closed {
                        open_null();
                    }
                }
                return;
            }
            _ => std::process::abort(),
        }
    }
    for fd in fds {
        if fd.revents & libc::POLLNVAL != 0 {
            open_null();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_is_returned_as_its_number() {
        for n in 0..=u8::MAX {
            assert_eq!(status(ExitCode::from(n)), i32::from(n));
        }
        assert_eq!(status(ExitCode::SUCCESS), 0);
        assert_eq!(status(ExitCode::FAILURE), 1);
    }
}
