//! Why a download failed, in the one vocabulary every caller branches on.
//!
//! A [`FailureKind`] decides everything that follows from a failure: the exit code of
//! `watchdog -- fetch` ([`FailureKind::exit`]), the batch report's status word (`Status::from`, in
//! `batch::status`), whether batch mode tries again (`batch::retry::is_retriable`), and the `kind` of
//! the progress channel's error line, which carries the kind itself so the batch runner gets back the
//! very value the worker sent. A [`FetchError`] adds the one line a person can act on.

use std::fmt;

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
    pub const ALL: [FailureKind; 13] = [
        FailureKind::Usage,
        FailureKind::InvalidUrl,
        FailureKind::Dns,
        FailureKind::Connect,
        FailureKind::Tls,
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
            FailureKind::HttpStatus => Exit::HttpStatus,
            FailureKind::Truncated => Exit::Truncated,
            FailureKind::Rejected => Exit::Rejected,
            FailureKind::LocalIo => Exit::LocalIo,
            FailureKind::Protocol => Exit::Protocol,
            FailureKind::TimedOut | FailureKind::Stalled => Exit::TimedOut,
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

/// A failed download. Its `Display` is one line, `URL: what happened; what to do`, with credentials
/// in the URL already replaced by `***`.
#[derive(Debug, Clone)]
pub struct FetchError {
    kind: FailureKind,
    url: Option<String>,
    message: String,
    http_status: Option<u16>,
    /// How long the server asked the client to wait before trying again (`Retry-After`).
    retry_after: Option<std::time::Duration>,
}

impl FetchError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            url: None,
            message: message.into(),
            http_status: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, wait: Option<std::time::Duration>) -> FetchError {
        self.retry_after = wait;
        self
    }

    /// The server's `Retry-After`, when it sent one in seconds.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Names the URL the failure is about (redacted here, so callers cannot forget).
    pub fn with_url(mut self, url: &str) -> FetchError {
        self.url = Some(crate::redact::redact_credentials(url));
        self
    }

    pub fn with_status(mut self, status: u16) -> FetchError {
        self.http_status = Some(status);
        self
    }

    pub fn failure_kind(&self) -> FailureKind {
        self.kind
    }

    /// The exit code of `watchdog -- fetch` for this failure.
    pub fn exit(&self) -> Exit {
        self.kind.exit()
    }

    /// The HTTP status of the answer that caused the failure, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// The message without the URL.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.url {
            Some(url) => write!(f, "{url}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FetchError {}

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
            assert_eq!(
                serde_json::from_str::<FailureKind>(&json).ok(),
                Some(read_back)
            );
        }
        // A worker never reports its own death; nothing on the wire reads as one.
        assert!(serde_json::to_string(&FailureKind::WorkerDied).is_err());
        assert!(serde_json::from_str::<FailureKind>("\"nope\"").is_err());
        assert_eq!(words.len() + 1, FailureKind::ALL.len());
    }

    #[test]
    fn display_redacts_credentials() {
        let err = FetchError::new(FailureKind::HttpStatus, "server answered 404 Not Found")
            .with_url("https://user:secret@host/a.jpg")
            .with_status(404);
        let text = err.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(
            text,
            "https://***@host/a.jpg: server answered 404 Not Found"
        );
        assert_eq!(err.exit(), Exit::HttpStatus);
        assert_eq!(err.failure_kind(), FailureKind::HttpStatus);
        assert_eq!(
            serde_json::to_string(&err.failure_kind()).ok().as_deref(),
            Some("\"http_error\"")
        );
        assert_eq!(err.http_status(), Some(404));
    }
}
