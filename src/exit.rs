//! Exit codes, documented once.
//!
//! The supervisor's codes follow GNU `timeout(1)` so that scripts written for it keep working. The download
//! worker's failure kinds get one distinct code each, in a block (10-19) that neither GNU `timeout` nor a
//! shell uses, so a script can tell "the server said 404" from "DNS failed" without parsing stderr. Batch
//! mode adds one code of its own (1, some item failed). Every code watchdog exits with is an [`Exit`],
//! and the tables `--help` shows for them live here beside it.

use std::process::ExitCode;

/// Why watchdog exited, as a number a script can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked (or, when supervising, the command's own status was 0).
    Success,
    /// Batch mode: at least one item failed or one list line was invalid; `watchdog report`: at
    /// least one item is not done.
    SomeFailed,
    /// `watchdog report`: every item is done, but some lines of the reports could not be read.
    UnreadableLines,
    /// The download URL is invalid, or its scheme (or a redirect's) is not http or https.
    InvalidUrl,
    /// The host name could not be resolved.
    Dns,
    /// The connection was refused, unreachable, or did not complete within `--connect-timeout`.
    Connect,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// The server answered with a 4xx/5xx status, or redirected too many times.
    HttpStatus,
    /// The body ended before its announced length, the connection broke mid-body, or (with
    /// `--expect image`) the image ended before its structure does.
    Truncated,
    /// The body was refused: `--expect`, `--max-size` or `--sha256` did not match.
    Rejected,
    /// A local file could not be written (disk full, permission, missing directory).
    LocalIo,
    /// The server's answer was not valid HTTP.
    Protocol,
    /// The proxy refused, demanded authentication that could not be given, could not be resolved or
    /// reached, answered garbage, or could not reach the origin.
    Proxy,
    /// watchdog stopped the command: its deadline passed or it stalled.
    TimedOut,
    /// watchdog itself failed: bad usage, bad duration, or an internal error.
    Failure,
    /// The command was found but could not be run.
    CannotRun,
    /// The command was not found.
    NotFound,
    /// Died of (or, for watchdog itself, was stopped by) this signal: the shell's 128 + N.
    Signal(i32),
}

impl Exit {
    /// The numeric status the process exits with.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::SomeFailed => 1,
            Exit::UnreadableLines => 2,
            Exit::InvalidUrl => 10,
            Exit::Dns => 11,
            Exit::Connect => 12,
            Exit::Tls => 13,
            Exit::HttpStatus => 14,
            Exit::Truncated => 15,
            Exit::Rejected => 16,
            Exit::LocalIo => 17,
            Exit::Protocol => 18,
            Exit::Proxy => 19,
            Exit::TimedOut => 124,
            Exit::Failure => 125,
            Exit::CannotRun => 126,
            Exit::NotFound => 127,
            // Signal numbers are 1 to 64; the bounds keep a nonsense number from wrapping around.
            Exit::Signal(signal) if signal <= 0 => 128,
            Exit::Signal(signal) if signal >= 127 => 255,
            Exit::Signal(signal) => 128 + signal as u8,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// The exit-status table shown by `--help`, the man page and the README.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0        the command exited 0 (for fetch: the file is complete at its path)
  1-123    the command's own exit status
  124      watchdog stopped the command: the --timeout deadline passed (or
           watchdog got SIGALRM), or --stall fired (with --preserve-status,
           the command's own status instead); silent as GNU timeout, but
           for fetch one line says why and how much had arrived
  125      watchdog itself failed (bad option or duration, internal error;
           for fetch also: the worker binary watchdog-fetch is not installed
           beside watchdog, or is of another version)
  126      the command was found but could not be run
  127      the command was not found
  137      watchdog had to SIGKILL the command (-s KILL, or the escalation
           after -k)
  128+N    the command died of signal N that watchdog did not send (also after
           one it forwarded): watchdog dies of N too, as GNU timeout, so a
           shell shows 128+N and Python -N (it exits 128+N only where it
           cannot die of it, as PID 1 of a PID namespace). After a forwarded
           signal the command's own status stands. 'the monitored command
           dumped core' if it did.

Fetch exit status:
  The built-in fetch worker adds one code per kind of failure:
  10  invalid URL, or a scheme (or redirect) other than http/https
  11  DNS lookup failed
  12  connection refused, unreachable, or --connect-timeout passed
  13  TLS handshake or certificate verification failed
  14  HTTP error status (4xx/5xx) or too many redirects
  15  truncated body (closed before Content-Length bytes, or an image cut
      short)
  16  content rejected by --expect, --max-size or --sha256
  17  local I/O error (disk full, permission denied, missing directory)
  18  the server's answer was not valid HTTP
  19  the proxy failed: it refused (403), demanded authentication that
      could not be given (407), could not be resolved or reached, answered
      garbage, or could not reach the server (502-504)";

/// The batch mode's exit-status table, shown by `watchdog batch --help` and its man page.
pub const BATCH_EXIT_STATUS_HELP: &str = "\
Exit status:
  0        every item is done: downloaded, already complete from an earlier
           run, or a duplicate
  1        at least one item failed or one list line was invalid; the report
           says which and why (run the same command again to retry: items
           already done are skipped)
  125      watchdog itself failed (bad option, unreadable list, a report that
           is a directory, a symbolic link at DIR/report.jsonl, or not
           writable, an index not writable, the worker binary watchdog-fetch
           not installed beside watchdog or of another version)
  128+N    stopped by signal N; the report holds every item that ended
           before the signal";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_128_plus_its_number() {
        assert_eq!(Exit::Signal(9).code(), 137);
        assert_eq!(Exit::Signal(15).code(), 143);
        assert_eq!(Exit::Signal(64).code(), 192);
        assert_eq!(Exit::Signal(-3).code(), 128);
        assert_eq!(Exit::Signal(i32::MAX).code(), 255);
    }
}
