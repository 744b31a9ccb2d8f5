//! How an item of a batch ended: the status word of its report line.
//!
//! The word set is part of the report's documented schema (`watchdog batch --help`, the man page), so
//! it lives in one enum that serializes to exactly those words.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::exit::Exit;

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
    pub const ALL: [Status; 12] = [
        Status::Ok,
        Status::Skipped,
        Status::Timeout,
        Status::Stalled,
        Status::HttpError,
        Status::DnsError,
        Status::ConnectError,
        Status::TlsError,
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
            Status::Truncated => "truncated",
            Status::Rejected => "rejected",
            Status::Invalid => "invalid",
            Status::IoError => "io_error",
            Status::Skipped => "skipped",
        }
    }

    /// The status named `name` (the `kind` of the fetch worker's error line).
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The status of a fetch worker that exited with `code`; `None` for codes that are not a download
    /// outcome (124 is `timeout` or `stalled` depending on which timer fired, which the supervisor knows).
    pub fn from_worker_exit(code: u8) -> Option<Status> {
        let status = [
            (Exit::Success, Status::Ok),
            (Exit::InvalidUrl, Status::Invalid),
            (Exit::Dns, Status::DnsError),
            (Exit::Connect, Status::ConnectError),
            (Exit::Tls, Status::TlsError),
            (Exit::HttpStatus, Status::HttpError),
            (Exit::Truncated, Status::Truncated),
            (Exit::Rejected, Status::Rejected),
            (Exit::LocalIo, Status::IoError),
            (Exit::Protocol, Status::HttpError),
        ]
        .into_iter()
        .find(|(exit, _)| exit.code() == code)?
        .1;
        Some(status)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_serialize_to_their_report_names() {
        for status in Status::ALL {
            let json = serde_json::to_string(&status).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(Status::from_name(status.as_str()), Some(status));
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
        assert_eq!(Status::from_name("nope"), None);
    }

    #[test]
    fn worker_exit_codes_map_to_statuses() {
        assert_eq!(Status::from_worker_exit(0), Some(Status::Ok));
        assert_eq!(Status::from_worker_exit(11), Some(Status::DnsError));
        assert_eq!(Status::from_worker_exit(14), Some(Status::HttpError));
        assert_eq!(Status::from_worker_exit(17), Some(Status::IoError));
        assert_eq!(Status::from_worker_exit(124), None);
        assert_eq!(Status::from_worker_exit(125), None);
    }
}
