//! Why a download failed, in the one vocabulary every caller branches on.
//!
//! A [`FailureKind`] decides everything that follows from a failure: the exit code of
//! `watchdog -- fetch` ([`FailureKind::exit`]), the batch report's status word
//! ([`FailureKind::status_word`], the word `batch::status::Status` serializes to), whether batch mode
//! tries again ([`FailureKind::is_retriable`]), and the `kind` of the progress channel's error line,
//! which carries the kind itself so the batch runner gets back the very value the worker sent.
//!
//! It sits at the bottom of the crate (it imports only the exit codes) so that the progress channel
//! (`protocol`), the worker (`fetch`) and batch mode can all name it without importing each other.

use serde::{Deserialize, Serialize};

use crate::exit::Exit;

/// Why an attempt at a download failed: one variant per exit code of the worker, and the three ways
/// only a supervisor sees an attempt end (its deadline, its stall timer, the death of its process).
///
/// On the wire (the progress channel's error line) a kind is its report status word. Two pairs of
/// kinds share a word, as they share a status and a retry decision: [`FailureKind::Usage`] travels as
/// `invalid` and [`FailureKind::Protocol`] as `http_error`, and are read back as
/// [`FailureKind::InvalidUrl`] and [`FailureKind::HttpStatus`]; only their exit codes differ, which
/// matter to `watchdog -- fetch` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureKind {
    /// Bad usage: a malformed header, an unreadable `--cacert`, an unusable proxy setting.
    #[serde(rename = "invalid", skip_deserializing)]
    Usage,
    /// The URL (or a redirect target) is not a valid http/https URL.
    #[serde(rename = "invalid")]
    InvalidUrl,
    #[serde(rename = "dns_error")]
    Dns,
    #[serde(rename = "connect_error")]
    Connect,
    #[serde(rename = "tls_error")]
    Tls,
    /// The proxy failed us: it refused (403), demanded authentication watchdog could not give (407),
    /// could not be resolved or reached, answered something that is not HTTP, or reported that it
    /// could not reach the origin (502, 503, 504). Never the origin's doing.
    #[serde(rename = "proxy_error")]
    Proxy,
    /// A 4xx/5xx answer, or too many redirects.
    #[serde(rename = "http_error")]
    HttpStatus,
    #[serde(rename = "truncated")]
    Truncated,
    /// `--expect`, `--max-size` or `--sha256` refused the body.
    #[serde(rename = "rejected")]
    Rejected,
    #[serde(rename = "io_error")]
    LocalIo,
    /// The answer was not valid HTTP.
    #[serde(rename = "http_error", skip_deserializing)]
    Protocol,
    /// The attempt's deadline (`--timeout`) passed; the supervisor killed the worker.
    #[serde(rename = "timeout")]
    TimedOut,
    /// No data arrived for `--stall`; the supervisor killed the worker.
    #[serde(rename = "stalled")]
    Stalled,
    /// The worker process died with the item in hand (the OOM killer, a crash). Nothing the worker
    /// could say: the supervisor saw it die. Reported as `io_error`, but tried again like a timeout.
    #[serde(skip)]
    WorkerDied,
}

impl FailureKind {
    /// Every kind.
    pub const ALL: [FailureKind; 14] = [
        FailureKind::Usage,
        FailureKind::InvalidUrl,
        FailureKind::Dns,
        FailureKind::Connect,
        FailureKind::Tls,
        FailureKind::Proxy,
        FailureKind::HttpStatus,
        FailureKind::Truncated,
        FailureKind::Rejected,
        FailureKind::LocalIo,
        FailureKind::Protocol,
        FailureKind::TimedOut,
        FailureKind::Stalled,
        FailureKind::WorkerDied,
    ];

    /// The exit code of `watchdog -- fetch` for this kind. A worker that died is watchdog's failure
    /// (the single-command supervisor reports a death by signal as 128+N before it gets here).
    pub fn exit(self) -> Exit {
        match self {
            FailureKind::Usage | FailureKind::WorkerDied => Exit::Failure,
            FailureKind::InvalidUrl => Exit::InvalidUrl,
            FailureKind::Dns => Exit::Dns,
            FailureKind::Connect => Exit::Connect,
            FailureKind::Tls => Exit::Tls,
            FailureKind::Proxy => Exit::Proxy,
            FailureKind::HttpStatus => Exit::HttpStatus,
            FailureKind::Truncated => Exit::Truncated,
            FailureKind::Rejected => Exit::Rejected,
            FailureKind::LocalIo => Exit::LocalIo,
            FailureKind::Protocol => Exit::Protocol,
            FailureKind::TimedOut | FailureKind::Stalled => Exit::TimedOut,
        }
    }

    /// The batch report's status word for an item whose last attempt failed this way (also the word
    /// the kind travels as on the progress channel).
    pub const fn status_word(self) -> &'static str {
        match self {
            FailureKind::Usage | FailureKind::InvalidUrl => "invalid",
            FailureKind::Dns => "dns_error",
            FailureKind::Connect => "connect_error",
            FailureKind::Tls => "tls_error",
            FailureKind::Proxy => "proxy_error",
            FailureKind::HttpStatus | FailureKind::Protocol => "http_error",
            FailureKind::Truncated => "truncated",
            FailureKind::Rejected => "rejected",
            FailureKind::LocalIo | FailureKind::WorkerDied => "io_error",
            FailureKind::TimedOut => "timeout",
            FailureKind::Stalled => "stalled",
        }
    }

    /// Whether an attempt that failed this way (with the answer's `http_status`, when there was one)
    /// may succeed if tried again.
    ///
    /// Retried when it may be transient: the network or the server had a bad moment (timeout, stall,
    /// refused or reset connection, DNS hiccup, cut-off body, 5xx, 429, 408), the proxy could not be
    /// reached or could not reach the origin (no answer, or 502/503/504), or the worker process died
    /// under the item (the OOM killer, a crash), which says nothing about the item itself. Not
    /// retried when trying again gives the same answer: other 4xx, a proxy's 403 or 407, a body
    /// refused by the content checks, an invalid URL, a local I/O error (a full disk does not empty
    /// itself), a TLS certificate problem. An answer that is not valid HTTP goes by its status like
    /// any `http_error`.
    pub fn is_retriable(self, http_status: Option<u16>) -> bool {
        match self {
            FailureKind::TimedOut
            | FailureKind::Stalled
            | FailureKind::WorkerDied
            | FailureKind::Connect
            | FailureKind::Dns
            | FailureKind::Truncated => true,
            FailureKind::Proxy => matches!(http_status, None | Some(502..=504)),
            FailureKind::HttpStatus | FailureKind::Protocol => {
                matches!(http_status, Some(code) if code >= 500 || code == 429 || code == 408)
            }
            FailureKind::Usage
            | FailureKind::InvalidUrl
            | FailureKind::Tls
            | FailureKind::Rejected
            | FailureKind::LocalIo => false,
        }
    }

    /// True for failures of the transfer itself (network, server), after which a partial file is worth
    /// keeping for `--resume`; false when the content or the local side is at fault.
    pub fn is_transfer_failure(self) -> bool {
        !matches!(
            self,
            FailureKind::Rejected | FailureKind::LocalIo | FailureKind::Usage
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire words of the progress channel's error line, as they were when `kind` was a string.
    #[test]
    fn kinds_travel_as_report_words_and_come_back_with_the_same_meaning() {
        let words = [
            (FailureKind::Usage, "invalid", FailureKind::InvalidUrl),
            (FailureKind::InvalidUrl, "invalid", FailureKind::InvalidUrl),
            (FailureKind::Dns, "dns_error", FailureKind::Dns),
            (FailureKind::Connect, "connect_error", FailureKind::Connect),
            (FailureKind::Tls, "tls_error", FailureKind::Tls),
            (FailureKind::Proxy, "proxy_error", FailureKind::Proxy),
            (
                FailureKind::HttpStatus,
                "http_error",
                FailureKind::HttpStatus,
            ),
            (FailureKind::Truncated, "truncated", FailureKind::Truncated),
            (FailureKind::Rejected, "rejected", FailureKind::Rejected),
            (FailureKind::LocalIo, "io_error", FailureKind::LocalIo),
            (FailureKind::Protocol, "http_error", FailureKind::HttpStatus),
            (FailureKind::TimedOut, "timeout", FailureKind::TimedOut),
            (FailureKind::Stalled, "stalled", FailureKind::Stalled),
        ];
        for (kind, word, read_back) in words {
            let json = format!("\"{word}\"");
            assert_eq!(serde_json::to_string(&kind).ok(), Some(json.clone()));
            assert_eq!(kind.status_word(), word);
            assert_eq!(
                serde_json::from_str::<FailureKind>(&json).ok(),
                Some(read_back)
            );
        }
        // A worker never reports its own death; nothing on the wire reads as one.
        assert!(serde_json::to_string(&FailureKind::WorkerDied).is_err());
        assert_eq!(FailureKind::WorkerDied.status_word(), "io_error");
        assert!(serde_json::from_str::<FailureKind>("\"nope\"").is_err());
        assert_eq!(words.len() + 1, FailureKind::ALL.len());
    }

    #[test]
    fn a_proxy_that_could_not_reach_the_origin_is_retried_and_one_that_refused_is_not() {
        for code in [502, 503, 504] {
            assert!(FailureKind::Proxy.is_retriable(Some(code)), "{code}");
        }
        assert!(FailureKind::Proxy.is_retriable(None), "unreachable proxy");
        for code in [403, 407, 400, 500] {
            assert!(!FailureKind::Proxy.is_retriable(Some(code)), "{code}");
        }
    }

    #[test]
    fn the_proxy_has_an_exit_code_of_its_own() {
        let codes: std::collections::HashSet<u8> = FailureKind::ALL
            .iter()
            .filter(|k| {
                !matches!(
                    k,
                    FailureKind::Usage | FailureKind::WorkerDied | FailureKind::Stalled
                )
            })
            .map(|k| k.exit().code())
            .collect();
        assert_eq!(codes.len(), FailureKind::ALL.len() - 3);
        assert_eq!(FailureKind::Proxy.exit().code(), 19);
    }
}
