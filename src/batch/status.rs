//! How an item of a batch ended: the status word of its report line.
//!
//! The word set is part of the report's documented schema (`watchdog batch --help`, the man page), so
//! it lives in one enum that serializes to exactly those words. A failed attempt's [`FailureKind`]
//! decides its status through one total `From`, so no failure can end up with a status picked by hand
//! or by a string that did not match.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::failure::FailureKind;

/// How an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The file is complete at its path.
    Ok,
    /// The attempt's deadline (`--timeout`) passed.
    Timeout,
    /// No data arrived for `--stall`.
    Stalled,
    /// The server answered 4xx/5xx, redirected too often, or not in valid HTTP.
    HttpError,
    DnsError,
    ConnectError,
    TlsError,
    /// The proxy refused, demanded authentication watchdog could not give, could not be reached, or
    /// could not reach the origin.
    ProxyError,
    /// The body ended before its announced length.
    Truncated,
    /// The body failed `--expect`, `--max-size` or the list's sha256.
    Rejected,
    /// The list line or its URL or path is not usable.
    Invalid,
    /// A local file could not be written.
    IoError,
    /// Nothing to do: already complete from an earlier run, or a duplicate of an earlier line.
    Skipped,
}

impl Status {
    /// Every status, in the order the summary lists them.
    pub const ALL: [Status; 13] = [
        Status::Ok,
        Status::Skipped,
        Status::Timeout,
        Status::Stalled,
        Status::HttpError,
        Status::DnsError,
        Status::ConnectError,
        Status::TlsError,
        Status::ProxyError,
        Status::Truncated,
        Status::Rejected,
        Status::Invalid,
        Status::IoError,
    ];

    /// The name in the report (`http_error`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Timeout => "timeout",
            Status::Stalled => "stalled",
            Status::HttpError => "http_error",
            Status::DnsError => "dns_error",
            Status::ConnectError => "connect_error",
            Status::TlsError => "tls_error",
            Status::ProxyError => "proxy_error",
            Status::Truncated => "truncated",
            Status::Rejected => "rejected",
            Status::Invalid => "invalid",
            Status::IoError => "io_error",
            Status::Skipped => "skipped",
        }
    }

    /// Whether the item is done: complete at its path (`ok`), or nothing was left to do (`skipped`).
    /// Every "did this item make it" question in batch and report asks this.
    pub const fn is_done(self) -> bool {
        matches!(self, Status::Ok | Status::Skipped)
    }

    /// The status's place in [`Status::ALL`].
    pub(super) fn index(self) -> usize {
        Status::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<FailureKind> for Status {
    /// The report status of an item whose last attempt failed for `kind`. A worker that died is an
    /// `io_error` (watchdog's own side failed, not the server), with an error message that says so.
    fn from(kind: FailureKind) -> Status {
        match kind {
            FailureKind::Usage | FailureKind::InvalidUrl => Status::Invalid,
            FailureKind::Dns => Status::DnsError,
            FailureKind::Connect => Status::ConnectError,
            FailureKind::Tls => Status::TlsError,
            FailureKind::Proxy => Status::ProxyError,
            FailureKind::HttpStatus | FailureKind::Protocol => Status::HttpError,
            FailureKind::Truncated => Status::Truncated,
            FailureKind::Rejected => Status::Rejected,
            FailureKind::LocalIo | FailureKind::WorkerDied => Status::IoError,
            FailureKind::TimedOut => Status::Timeout,
            FailureKind::Stalled => Status::Stalled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_to_their_report_names() {
        for status in Status::ALL {
            let json = serde_json::to_string(&status).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<Status>(&json).ok(), Some(status));
        }
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        let mut expected = vec![
            "ok",
            "timeout",
            "stalled",
            "http_error",
            "dns_error",
            "connect_error",
            "tls_error",
            "proxy_error",
            "truncated",
            "rejected",
            "invalid",
            "io_error",
            "skipped",
        ];
        let mut sorted = names.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        assert!(serde_json::from_str::<Status>("\"nope\"").is_err());
    }

    /// What the worker writes on the progress channel is what the report says: the two never
    /// disagree on a word.
    #[test]
    fn a_failure_is_reported_in_the_word_it_travelled_as() {
        for kind in FailureKind::ALL {
            let status = Status::from(kind);
            assert!(!status.is_done(), "{kind:?}");
            if kind == FailureKind::WorkerDied {
                assert_eq!(status, Status::IoError);
                continue;
            }
            let wire = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(wire, format!("\"{status}\""), "{kind:?}");
        }
    }

    /// The fetch worker's exit code and the report status of every failure, side by side.
    #[test]
    fn exit_codes_and_statuses_of_a_failure_agree() {
        let pairs: Vec<(FailureKind, u8, Status)> = FailureKind::ALL
            .into_iter()
            .map(|kind| (kind, kind.exit().code(), Status::from(kind)))
            .collect();
        assert_eq!(
            pairs,
            [
                (FailureKind::Usage, 125, Status::Invalid),
                (FailureKind::InvalidUrl, 10, Status::Invalid),
                (FailureKind::Dns, 11, Status::DnsError),
                (FailureKind::Connect, 12, Status::ConnectError),
                (FailureKind::Tls, 13, Status::TlsError),
                (FailureKind::Proxy, 19, Status::ProxyError),
                (FailureKind::HttpStatus, 14, Status::HttpError),
                (FailureKind::Truncated, 15, Status::Truncated),
                (FailureKind::Rejected, 16, Status::Rejected),
                (FailureKind::LocalIo, 17, Status::IoError),
                (FailureKind::Protocol, 18, Status::HttpError),
                (FailureKind::TimedOut, 124, Status::Timeout),
                (FailureKind::Stalled, 124, Status::Stalled),
                (FailureKind::WorkerDied, 125, Status::IoError),
            ]
        );
    }
}
