//! The `--timeout` deadline as a clock the machine's sleep does not stop.
//!
//! GNU timeout's timer (`timer_create` on `CLOCK_REALTIME`) counts the time the machine spent
//! suspended: a 1 h deadline set before a laptop sleeps for 2 h fires on resume. `Instant` is
//! `CLOCK_MONOTONIC`, which stops during suspend, so on Linux the deadline is a `timerfd` on
//! `CLOCK_BOOTTIME` (which counts suspended time and, unlike the wall clock, does not jump when the
//! date is set), polled with everything else in [`super::Processes::wait`]. Elsewhere it is an
//! `Instant`, and suspended time does not count.

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::io;
use std::time::{Duration, Instant};

#[cfg(any(target_os = "linux", target_os = "android"))]
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// Durations longer than this never fire (about 31,700 years); the kernel's timer would saturate.
const FOREVER: Duration = Duration::from_secs(1 << 40);

/// A one-shot deadline.
pub struct Deadline {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    timer: Option<TimerFd>,
    /// When it passes on the monotonic clock: the fallback, and the answer to "how long until".
    at: Option<Instant>,
}

impl Deadline {
    /// A deadline `after` from now. Where no timer can be had (out of descriptors), it falls back to
    /// the monotonic clock rather than to no deadline.
    pub fn after(after: Duration) -> Deadline {
        let at = (after < FOREVER).then(|| Instant::now() + after);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let timer = at.and_then(|_| boot_timer(after).ok());
            Deadline { timer, at }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Deadline { at }
    }

    /// The descriptor to poll: readable once the deadline passed (Linux).
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::{AsFd, AsRawFd};
            self.timer.as_ref().map(|t| t.as_fd().as_raw_fd())
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        None
    }

    /// When to wake up for it without a descriptor to poll (elsewhere than Linux).
    pub fn wake_at(&self) -> Option<Instant> {
        match self.fd() {
            Some(_) => None,
            None => self.at,
        }
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(timer) = &self.timer {
            // A one-shot timer that fired is disarmed; an error leaves the monotonic clock to decide.
            if let Ok(remaining) = timer.get() {
                return remaining.is_none();
            }
        }
        self.at.is_some_and(|at| Instant::now() >= at)
    }
}

/// A one-shot timerfd on CLOCK_BOOTTIME that fires `after` from now.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn boot_timer(after: Duration) -> io::Result<TimerFd> {
    let timer = TimerFd::new(
        ClockId::CLOCK_BOOTTIME,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    // A zero it_value would disarm the timer: the smallest step instead.
    let after = after.max(Duration::from_nanos(1));
    timer.set(
        Expiration::OneShot(after.into()),
        TimerSetTimeFlags::empty(),
    )?;
    Ok(timer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_passes_after_its_duration_and_its_descriptor_says_so() {
        let deadline = Deadline::after(Duration::from_millis(50));
        assert!(!deadline.passed());
        if let Some(fd) = deadline.fd() {
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd on the stack.
            let n = unsafe { libc::poll(&mut poll, 1, 10_000) };
            assert_eq!(n, 1);
        } else {
            std::thread::sleep(Duration::from_millis(60));
        }
        assert!(deadline.passed());
    }

    /// On Linux the deadline is a timerfd on CLOCK_BOOTTIME (suspended time counts), non-blocking
    /// and close-on-exec (the command does not inherit it), as the kernel reports in fdinfo.
    #[cfg(target_os = "linux")]
    #[test]
    fn on_linux_it_is_a_boottime_timer_the_command_does_not_inherit() {
        let deadline = Deadline::after(Duration::from_secs(3600));
        let fd = deadline.fd().expect("a timerfd on Linux");
        assert_eq!(deadline.wake_at(), None, "the descriptor is polled instead");
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).expect("fdinfo");
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in {info}"))
        };
        assert_eq!(field("clockid:"), libc::CLOCK_BOOTTIME.to_string());
        let flags = i32::from_str_radix(&field("flags:"), 8).expect("octal flags");
        assert_eq!(
            flags & (libc::O_NONBLOCK | libc::O_CLOEXEC),
            libc::O_NONBLOCK | libc::O_CLOEXEC,
            "fdinfo flags {flags:o}"
        );
        assert!(!deadline.passed());
    }

    /// Out of descriptors, the deadline still passes on time, on the monotonic clock. Tried in a forked
    /// child, whose descriptor limit is set to zero (the limit is the whole process's).
    #[cfg(target_os = "linux")]
    #[test]
    fn out_of_descriptors_it_falls_back_to_the_monotonic_clock() {
        let _serial = crate::process::PROCESS_TESTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // SAFETY: the child calls only getrlimit, setrlimit, clock reads, timerfd_create (which fails), nanosleep
        // and _exit: nothing that allocates or takes a lock another thread could hold.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: plain libc calls on integers and structs on the stack (see above).
            let code = unsafe {
                let mut limit: libc::rlimit = std::mem::zeroed();
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
                limit.rlim_cur = 0;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                let deadline = Deadline::after(Duration::from_millis(50));
                let before = deadline.passed();
                let nap = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 80_000_000,
                };
                libc::nanosleep(&nap, std::ptr::null_mut());
                match (
                    deadline.fd(),
                    deadline.wake_at().is_some(),
                    before,
                    deadline.passed(),
                ) {
                    (None, true, false, true) => 0,
                    (Some(_), ..) => 1, // a timer after all: nothing was tried
                    (None, false, ..) => 2,
                    (None, true, true, _) => 3,
                    (None, true, false, false) => 4,
                }
            };
            // SAFETY: ends the forked child without running the test harness's exit handlers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let meaning = match code {
            Some(0) => "",
            Some(1) => "a timer was created with no descriptors left",
            Some(2) => "no wake-up time without a descriptor",
            Some(3) => "passed at once",
            Some(4) => "not passed 80 ms after a 50 ms deadline",
            _ => "the child died",
        };
        assert_eq!(code, Some(0), "{meaning} (status {status})");
    }

    #[test]
    fn forever_never_passes() {
        // FOREVER itself is the first duration that means "never" (no timer is armed at all).
        for after in [FOREVER, Duration::from_secs(u64::MAX)] {
            let deadline = Deadline::after(after);
            assert!(!deadline.passed());
            assert_eq!(
                (deadline.fd(), deadline.wake_at()),
                (None, None),
                "{after:?}"
            );
        }
    }
}
