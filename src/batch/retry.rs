//! Which failures are worth another attempt, and how long to wait before it.
//!
//! Whether a failure is worth another attempt is the failure's own rule
//! ([`FailureKind::is_retriable`](crate::failure::FailureKind::is_retriable)); this module decides how
//! long to wait before it.
//!
//! The wait is exponential backoff with full jitter (a uniform random delay between zero and the
//! backoff), so thousands of items that failed together do not come back together; at least as long as
//! the server's `Retry-After`, when it sent one (up to [`RETRY_AFTER_CAP`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::report::ReportEntry;
use super::status::Status;
use crate::failure::FailureKind;

/// The words of a report's error for an item whose worker process died with it (see the runner),
/// which [`retry_may_fix`] reads back: such an `io_error` says nothing about the item.
pub const WORKER_DIED_WITH_ITEM: &str = "with this item in hand";

/// The backoff before the first retry.
pub const BACKOFF_BASE: Duration = Duration::from_millis(200);

/// The longest backoff.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The longest `Retry-After` (of a 429 or 503) a retry waits for. A server asking for more is taken at
/// its word: the item is not retried in this run, rather than holding it (and the end of the batch)
/// for minutes, and the report says to run the batch again later.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// Whether an attempt that failed for `kind` (with the answer's `http_status`, when there was one)
/// may succeed if tried again.
pub fn is_retriable(kind: FailureKind, http_status: Option<u16>) -> bool {
    kind.is_retriable(http_status)
}

/// Whether running the batch again may fix an item whose latest outcome is `entry`: the rule batch
/// mode retries by ([`FailureKind::is_retriable`]), read back from the report line. A timeout, a
/// stall, a 503 may; a 404, a body `--expect` refused, an invalid line, a full disk will not until
/// someone changes something. Never for an item that is done.
pub fn retry_may_fix(entry: &ReportEntry) -> bool {
    let kind = match entry.status {
        Status::Ok | Status::Skipped => return false,
        Status::Timeout => FailureKind::TimedOut,
        Status::Stalled => FailureKind::Stalled,
        Status::HttpError => FailureKind::HttpStatus,
        Status::DnsError => FailureKind::Dns,
        Status::ConnectError => FailureKind::Connect,
        Status::TlsError => FailureKind::Tls,
        Status::ProxyError => FailureKind::Proxy,
        Status::Truncated => FailureKind::Truncated,
        Status::Rejected => FailureKind::Rejected,
        Status::Invalid => FailureKind::InvalidUrl,
        Status::IoError
            if entry
                .error
                .as_deref()
                .is_some_and(|e| e.contains(WORKER_DIED_WITH_ITEM)) =>
        {
            FailureKind::WorkerDied
        }
        Status::IoError => FailureKind::LocalIo,
    };
    kind.is_retriable(entry.http_status)
}

/// The delay before retry number `attempt` (1 for the first retry): uniform in `[0, min(5 s, 200 ms ×
/// 2^(attempt-1))]`. The same `(attempt, seed)` always gives the same delay; give each item its own
/// seed, e.g. [`seed_from_clock`] mixed with the item's line number.
pub fn backoff(attempt: u32, seed: u64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_CAP);
    let ceiling_ns = ceiling.as_nanos() as u64;
    let random = splitmix64(seed ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    Duration::from_nanos(random % (ceiling_ns + 1))
}

/// A seed that differs between runs and between processes.
pub fn seed_from_clock() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    splitmix64(nanos ^ (u64::from(std::process::id()) << 32))
}

/// Mixes a 64-bit value into a well-distributed one (SplitMix64's output function).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_retried() {
        for kind in [
            FailureKind::TimedOut,
            FailureKind::Stalled,
            FailureKind::Connect,
            FailureKind::Dns,
            FailureKind::Truncated,
            FailureKind::WorkerDied,
        ] {
            assert!(is_retriable(kind, None), "{kind:?}");
        }
        for kind in [FailureKind::HttpStatus, FailureKind::Protocol] {
            for code in [500, 502, 503, 504, 429, 408] {
                assert!(is_retriable(kind, Some(code)), "{code}");
            }
            for code in [400, 401, 403, 404, 410, 451] {
                assert!(!is_retriable(kind, Some(code)), "{code}");
            }
            // Too many redirects, or no valid answer at all: no status.
            assert!(!is_retriable(kind, None));
        }
        for kind in [
            FailureKind::Usage,
            FailureKind::InvalidUrl,
            FailureKind::Tls,
            FailureKind::Rejected,
            FailureKind::LocalIo,
        ] {
            assert!(!is_retriable(kind, None), "{kind:?}");
        }
    }

    #[test]
    fn a_report_line_says_whether_a_retry_may_fix_its_item() {
        let line = |status: Status, http_status: Option<u16>, error: &str| {
            let mut entry = ReportEntry::new("https://h/a", status);
            entry.http_status = http_status;
            entry.error = Some(error.to_string());
            retry_may_fix(&entry)
        };
        assert!(line(Status::Stalled, None, "no data"));
        assert!(line(Status::Timeout, Some(200), "deadline"));
        assert!(line(Status::HttpError, Some(503), "busy"));
        assert!(line(Status::ConnectError, None, "refused"));
        assert!(!line(Status::HttpError, Some(404), "not found"));
        assert!(!line(Status::HttpError, None, "too many redirects"));
        assert!(!line(Status::Rejected, Some(200), "not an image"));
        assert!(!line(Status::Invalid, None, "not a URL"));
        assert!(!line(Status::Ok, Some(200), ""));
        assert!(!line(Status::IoError, None, "No space left on device"));
        assert!(line(
            Status::IoError,
            None,
            &format!("the worker process was killed by signal 9 (SIGKILL) {WORKER_DIED_WITH_ITEM}")
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        for attempt in 1..40u32 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_CAP);
            let mut max = Duration::ZERO;
            let mut min = Duration::MAX;
            let mut sum = Duration::ZERO;
            for seed in 0..2000u64 {
                let delay = backoff(attempt, seed);
                assert!(
                    delay <= ceiling,
                    "attempt {attempt}: {delay:?} > {ceiling:?}"
                );
                max = max.max(delay);
                min = min.min(delay);
                sum += delay;
            }
            // Spread over the whole range, centred on half the ceiling.
            assert!(
                max > ceiling * 9 / 10 && min < ceiling / 10,
                "attempt {attempt}"
            );
            let mean = sum / 2000;
            assert!(
                mean > ceiling * 4 / 10 && mean < ceiling * 6 / 10,
                "attempt {attempt}: {mean:?}"
            );
        }
        assert_eq!(backoff(3, 42), backoff(3, 42));
        assert_ne!(backoff(3, 42), backoff(3, 43));
        assert!(backoff(0, 1) <= BACKOFF_BASE);
        assert!(backoff(u32::MAX, 1) <= BACKOFF_CAP);
    }

    #[test]
    fn the_mixer_is_splitmix64() {
        // The first two outputs of SplitMix64 seeded with 0, as published with its reference code.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    /// The seed for which [`backoff`]'s mixer gives `random`: the mixer is a bijection, undone step
    /// by step (xor-shifts by re-applying them, multiplications by the odd factor's inverse).
    fn seed_giving(attempt: u32, random: u64) -> u64 {
        fn unshift(y: u64, shift: u32) -> u64 {
            let mut x = y;
            for _ in 0..64 / shift {
                x = y ^ (x >> shift);
            }
            x
        }
        fn inverse(odd: u64) -> u64 {
            let mut inv = odd;
            for _ in 0..6 {
                inv = inv.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inv)));
            }
            inv
        }
        let mut z = unshift(random, 31);
        z = unshift(z.wrapping_mul(inverse(0x94D0_49BB_1331_11EB)), 27);
        z = unshift(z.wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9)), 30);
        z.wrapping_sub(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    #[test]
    fn the_ceiling_itself_is_a_possible_delay() {
        // Full jitter is uniform in [0, ceiling], both ends included: 200 ms before the first retry,
        // 400 ms before the second, 5 s from the sixth on.
        for (attempt, ceiling) in [(1, 200), (2, 400), (6, 5000), (40, 5000)] {
            let ceiling = Duration::from_millis(ceiling);
            let top = seed_giving(attempt, ceiling.as_nanos() as u64);
            assert_eq!(backoff(attempt, top), ceiling, "attempt {attempt}");
            let bottom = seed_giving(attempt, ceiling.as_nanos() as u64 + 1);
            assert_eq!(
                backoff(attempt, bottom),
                Duration::ZERO,
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn seeds_vary() {
        let a = seed_from_clock();
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(a, seed_from_clock());
    }
}
