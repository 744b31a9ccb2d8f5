//! Signals delivered to watchdog, turned into wake-ups for the one loop that decides everything.
//!
//! The handlers (installed by signal-hook, one per signal) only set the signal's bit and write a byte
//! to a socket pair, the self-pipe trick; the loop polls that socket together with everything else and
//! decides what to do.
//!
//! The write end is owned by the handlers alone (an `Arc` each closure holds), never by this module:
//! signal-hook drops an unregistered action only once no handler is running it, so the descriptor is
//! closed only after the last handler that could write to it is gone, and a late signal can never
//! write into a descriptor that was closed and reused for something else.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use signal_hook::consts::{
    SIGALRM, SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGSTOP, SIGTERM, SIGUSR1, SIGUSR2,
};
use signal_hook::SigId;

/// The signals the supervisor catches and forwards to what it runs: every catchable signal whose
/// default action would end watchdog and that a user or a parent sends to stop a job (the set GNU
/// `timeout` catches, plus USR1 and USR2; POSIX.1-2024 asks for them to be passed on). SIGALRM is the
/// deadline's own signal, as in GNU: an outer timeout's ALRM stops the command as if the deadline
/// passed. The signal given by `--signal` is caught too (see [`forwarded_with`]).
pub const FORWARDED: [i32; 7] = [SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM];

/// The narrower set batch mode stops on.
pub const INTERRUPTS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// The signals GNU timeout catches even when its caller left them ignored (a background job's INT and
/// QUIT): its own set and the `--signal` one. The command then finds them at their default, as under
/// GNU, so that `kill -INT -PID` on a backgrounded watchdog stops it. HUP is not among them: `nohup`
/// ignores it so that a hangup does not end the job, and a watchdog that caught it would forward the
/// hangup to the command. USR1 and USR2, which watchdog forwards beyond GNU's set, keep the caller's
/// choice too.
pub fn caught_even_if_ignored(signal: i32) -> Vec<i32> {
    let mut set = vec![SIGINT, SIGQUIT, SIGALRM, SIGTERM];
    if signal != SIGHUP && !set.contains(&signal) {
        set.push(signal);
    }
    set
}

/// [`FORWARDED`] plus `signal` (the one `--signal` sends), when it can be caught.
pub fn forwarded_with(signal: i32) -> Vec<i32> {
    let mut set = FORWARDED.to_vec();
    if catchable(signal) && !set.contains(&signal) {
        set.push(signal);
    }
    set
}

/// Whether a handler may be installed for `signal`: not the null signal, not KILL or STOP, not CHLD
/// (the reaper's own), and none that signal-hook refuses (SEGV, ILL, FPE: faults, not requests).
fn catchable(signal: i32) -> bool {
    (1..=64).contains(&signal)
        && ![SIGKILL, SIGSTOP, SIGCHLD].contains(&signal)
        && !signal_hook::consts::FORBIDDEN.contains(&signal)
}

/// Signals that were ignored (SIG_IGN) when watchdog was started, one bit per signal (bit N-1 for
/// signal N), read before the Rust runtime sets SIGPIPE to ignored. The command inherits them: an
/// ignored signal is not caught (so it stays ignored across exec), and SIGPIPE, which the runtime
/// changes and the standard library resets to the default in the child, is set back in the child
/// when the caller had it ignored.
static IGNORED_AT_START: AtomicU64 = AtomicU64::new(0);

/// Runs before `main` (and so before the runtime ignores SIGPIPE), from the ELF constructor list.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static RECORD_DISPOSITIONS: extern "C" fn() = record_dispositions;

#[cfg(target_os = "linux")]
extern "C" fn record_dispositions() {
    let mut ignored = 0u64;
    for signal in 1..=64 {
        // SAFETY: sigaction with a null new action only reads the current one into `old`, a zeroed
        // plain C struct; an invalid signal number fails with EINVAL and leaves it alone.
        let is_ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
        };
        if is_ignored {
            ignored |= 1 << (signal - 1);
        }
    }
    IGNORED_AT_START.store(ignored, Ordering::Relaxed);
}

/// Whether `signal` was ignored when watchdog started (always false where this cannot be known).
pub fn ignored_at_start(signal: i32) -> bool {
    (1..=64).contains(&signal)
        && IGNORED_AT_START.load(Ordering::Relaxed) & (1 << (signal - 1)) != 0
}

/// What arrived since the last [`SignalPipe::take`]: one bit per signal (bit N-1 for signal N).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    mask: u64,
}

impl Arrived {
    /// The lowest-numbered signal that arrived, if any.
    pub fn first(&self) -> Option<i32> {
        self.signals().next()
    }

    /// Every caught signal that arrived, by number.
    pub fn signals(&self) -> impl Iterator<Item = i32> + '_ {
        (1..=64).filter(|signal| self.mask & (1 << (signal - 1)) != 0)
    }
}

pub struct SignalPipe {
    wake: UnixStream,
    registrations: Vec<SigId>,
    /// The signals with a handler, SIGCHLD first.
    handled: Vec<i32>,
    arrived: Arc<AtomicU64>,
}

impl SignalPipe {
    /// Installs the handlers for `signals` (and SIGCHLD). Call before spawning, so that no SIGCHLD can
    /// be missed. A signal that was ignored when watchdog started is left ignored, unless it is in
    /// `even_if_ignored`.
    pub fn install(signals: &[i32], even_if_ignored: &[i32]) -> io::Result<SignalPipe> {
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let notify = Arc::new(notify);
        let mut pipe = SignalPipe {
            wake,
            registrations: Vec::new(),
            handled: Vec::new(),
            arrived: Arc::new(AtomicU64::new(0)),
        };
        let caught: Vec<i32> = signals
            .iter()
            .copied()
            .filter(|s| catchable(*s) && (!ignored_at_start(*s) || even_if_ignored.contains(s)))
            .collect();
        // The bit is set before the wake-up byte is written, so it is there when the byte is read.
        // SIGCHLD needs no bit: the loop reaps on every wake-up of the pipe.
        for signal in std::iter::once(SIGCHLD).chain(caught) {
            let arrived = Arc::clone(&pipe.arrived);
            let notify = Arc::clone(&notify);
            let bit = if signal == SIGCHLD {
                0
            } else {
                1u64 << (signal - 1)
            };
            // SAFETY: the action does a lock-free atomic OR and a non-blocking send(2) of one byte,
            // both async-signal-safe; it allocates nothing and takes no lock.
            let id = unsafe {
                signal_hook::low_level::register(signal, move || {
                    arrived.fetch_or(bit, Ordering::SeqCst);
                    let fd = notify.as_raw_fd();
                    libc::send(fd, b"X".as_ptr().cast(), 1, libc::MSG_DONTWAIT);
                })
            }?;
            pipe.registrations.push(id);
            pipe.handled.push(signal);
        }
        Ok(pipe)
    }

    /// The signals these handlers catch.
    #[cfg(target_os = "linux")]
    pub fn handled(&self) -> &[i32] {
        &self.handled
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Empties the wake-up socket, leaving the flags for [`SignalPipe::take`].
    pub fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.wake.read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Empties the wake-up socket and returns (and clears) what arrived.
    pub fn take(&mut self) -> Arrived {
        self.drain();
        Arrived {
            mask: self.arrived.swap(0, Ordering::SeqCst),
        }
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for id in self.registrations.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After the pipe is dropped, a signal must not write into whatever descriptor took the number of
    /// its old write end.
    #[test]
    fn a_dropped_pipe_writes_nowhere() {
        let _serial = crate::process::PROCESS_TESTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let pipe = SignalPipe::install(&FORWARDED, &[]).unwrap();
        drop(pipe);
        // Take a batch of fresh descriptors: among them are the numbers the pipe used.
        let pairs: Vec<(UnixStream, UnixStream)> =
            (0..16).map(|_| UnixStream::pair().unwrap()).collect();
        for (a, b) in &pairs {
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
        }
        signal_hook::low_level::raise(SIGCHLD).unwrap();
        let mut buf = [0u8; 16];
        for (a, b) in &pairs {
            for end in [a, b] {
                let mut end: &UnixStream = end;
                assert!(
                    !matches!(end.read(&mut buf), Ok(n) if n > 0),
                    "a signal wrote into reused fd {}",
                    end.as_raw_fd()
                );
            }
        }
    }

    #[test]
    fn a_signal_wakes_the_pipe_and_sets_its_flag() {
        let _serial = crate::process::PROCESS_TESTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Caught even if ignored: the test runner may have been started under nohup (HUP ignored).
        let mut pipe = SignalPipe::install(&FORWARDED, &FORWARDED).unwrap();
        // SIGHUP's default action would end the test process, but the handler is installed.
        signal_hook::low_level::raise(SIGHUP).unwrap();
        let arrived = pipe.take();
        assert_eq!(arrived.first(), Some(SIGHUP));
        assert_eq!(pipe.take(), Arrived::default());
        signal_hook::low_level::raise(SIGUSR2).unwrap();
        signal_hook::low_level::raise(SIGQUIT).unwrap();
        let arrived = pipe.take();
        assert_eq!(arrived.signals().collect::<Vec<_>>(), [SIGQUIT, SIGUSR2]);
    }

    #[test]
    fn the_signal_of_dash_s_is_caught_too_unless_it_cannot_be() {
        assert!(forwarded_with(40).contains(&40));
        assert_eq!(forwarded_with(libc::SIGKILL), FORWARDED);
        assert_eq!(forwarded_with(0), FORWARDED);
        assert_eq!(forwarded_with(SIGTERM), FORWARDED);
    }

    #[test]
    fn nohups_hangup_stays_ignored_whatever_the_signal() {
        assert!(!caught_even_if_ignored(SIGHUP).contains(&SIGHUP));
        assert!(caught_even_if_ignored(40).contains(&40));
        assert!(caught_even_if_ignored(SIGTERM).contains(&SIGINT));
        assert!(!caught_even_if_ignored(SIGTERM).contains(&SIGUSR1));
    }
}
