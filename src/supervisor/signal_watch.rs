//! Signals delivered to watchdog, turned into events for the main loop.
//!
//! The handlers (installed by signal-hook) only set a flag and write a byte to a socket pair, the
//! self-pipe trick; the main loop polls that socket together with everything else and decides what to do.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};

/// The signals watchdog forwards to the command before tearing the tree down.
pub const FORWARDED: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// What arrived since the last [`SignalWatch::take`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Arrived {
    /// Which of the `FORWARDED` signals arrived, in that order.
    pub forwarded: [bool; 3],
}

pub struct SignalWatch {
    wake: UnixStream,
    /// The handlers' end; kept open for as long as they may write to it.
    _notify: UnixStream,
    forwarded: [Arc<AtomicBool>; 3],
}

impl SignalWatch {
    /// Installs the handlers. Call before spawning, so that no SIGCHLD can be missed.
    pub fn install() -> io::Result<SignalWatch> {
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let forwarded = [
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        ];
        // The flags are registered before the pipe so they are already set when the wake-up byte is
        // read. SIGCHLD needs no flag: the loop reaps on every wake-up.
        for (signal, flag) in FORWARDED.iter().zip(&forwarded) {
            signal_hook::flag::register(*signal, Arc::clone(flag))?;
        }
        for signal in [SIGCHLD, SIGINT, SIGTERM, SIGHUP] {
            signal_hook::low_level::pipe::register_raw(signal, notify.as_raw_fd())?;
        }
        Ok(SignalWatch {
            wake,
            _notify: notify,
            forwarded,
        })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Empties the wake-up socket and returns (and clears) what arrived.
    pub fn take(&mut self) -> Arrived {
        let mut buf = [0u8; 64];
        while matches!(self.wake.read(&mut buf), Ok(n) if n > 0) {}
        Arrived {
            forwarded: [
                self.forwarded[0].swap(false, Ordering::SeqCst),
                self.forwarded[1].swap(false, Ordering::SeqCst),
                self.forwarded[2].swap(false, Ordering::SeqCst),
            ],
        }
    }
}
