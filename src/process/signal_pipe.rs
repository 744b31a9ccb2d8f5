//! Signals delivered to watchdog, turned into wake-ups for the one loop that decides everything.
//!
//! The handlers (installed by signal-hook) only set a flag and write a byte to a socket pair, the
//! self-pipe trick; the loop polls that socket together with everything else and decides what to do.
//!
//! Each handler registration owns its own duplicate of the write end: signal-hook takes ownership of the
//! descriptor it is given and closes it when the handler is unregistered. Sharing one descriptor between
//! registrations, or keeping it owned here as well, would let a late signal write into a descriptor that
//! was closed and reused for something else. On drop every handler is unregistered first, so no signal
//! can reach a closed descriptor.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook::SigId;

/// The signals watchdog forwards to what it runs before tearing the tree down.
pub const FORWARDED: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// What arrived since the last [`SignalPipe::take`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    /// Which of the [`FORWARDED`] signals arrived, in that order.
    pub forwarded: [bool; 3],
}

impl Arrived {
    /// The first forwarded signal that arrived, if any.
    pub fn first(&self) -> Option<i32> {
        FORWARDED
            .iter()
            .zip(self.forwarded)
            .find(|(_, came)| *came)
            .map(|(signal, _)| *signal)
    }

    /// Every forwarded signal that arrived, in [`FORWARDED`] order.
    pub fn signals(&self) -> impl Iterator<Item = i32> + '_ {
        FORWARDED
            .iter()
            .zip(self.forwarded)
            .filter(|(_, came)| *came)
            .map(|(signal, _)| *signal)
    }
}

pub struct SignalPipe {
    wake: UnixStream,
    registrations: Vec<SigId>,
    forwarded: [Arc<AtomicBool>; 3],
}

impl SignalPipe {
    /// Installs the handlers. Call before spawning, so that no SIGCHLD can be missed.
    pub fn install() -> io::Result<SignalPipe> {
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let forwarded = [
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        ];
        let mut pipe = SignalPipe {
            wake,
            registrations: Vec::new(),
            forwarded,
        };
        // The flags are registered before the pipe so they are already set when the wake-up byte is
        // read. SIGCHLD needs no flag: the loop reaps on every wake-up of the pipe.
        for (signal, flag) in FORWARDED.iter().zip(&pipe.forwarded) {
            let id = signal_hook::flag::register(*signal, Arc::clone(flag))?;
            pipe.registrations.push(id);
        }
        for signal in [SIGCHLD, SIGINT, SIGTERM, SIGHUP] {
            // Each registration owns (and on unregistering closes) a descriptor of its own.
            let id = signal_hook::low_level::pipe::register(signal, notify.try_clone()?)?;
            pipe.registrations.push(id);
        }
        Ok(pipe)
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
            forwarded: [
                self.forwarded[0].swap(false, Ordering::SeqCst),
                self.forwarded[1].swap(false, Ordering::SeqCst),
                self.forwarded[2].swap(false, Ordering::SeqCst),
            ],
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
    use std::os::fd::AsRawFd;

    /// After the pipe is dropped, a signal must not write into whatever descriptor took the number of
    /// its old write end.
    #[test]
    fn a_dropped_pipe_writes_nowhere() {
        let _serial = crate::process::PROCESS_TESTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let pipe = SignalPipe::install().unwrap();
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
        let mut pipe = SignalPipe::install().unwrap();
        // SIGHUP's default action would end the test process, but the handler is installed.
        signal_hook::low_level::raise(SIGHUP).unwrap();
        let arrived = pipe.take();
        assert_eq!(arrived.first(), Some(SIGHUP));
        assert_eq!(pipe.take(), Arrived::default());
    }
}
