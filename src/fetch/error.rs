//! Why a download failed, in the terms its callers branch on: an exit code for `watchdog -- fetch`, a
//! status word for the batch report, and one line a person can act on.

use std::fmt;

use crate::exit::Exit;

/// The kinds of failure, one per exit code of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Bad usage: a malformed header, an unreadable `--cacert`, an unusable proxy setting.
    Usage,
    /// The URL (or a redirect target) is not a valid http/https URL.
    InvalidUrl,
    Dns,
    Connect,
    Tls,
    /// A 4xx/5xx answer, or too many redirects.
    HttpStatus,
    Truncated,
    /// `--expect`, `--max-size` or `--sha256` refused the body.
    Rejected,
    LocalIo,
    /// The answer was not valid HTTP.
    Protocol,
}

impl FailureKind {
    /// The exit code of `watchdog -- fetch` for this kind.
    pub fn exit(self) -> Exit {
        match self {
            FailureKind::Usage => Exit::Failure,
            FailureKind::InvalidUrl => Exit::InvalidUrl,
            FailureKind::Dns => Exit::Dns,
            FailureKind::Connect => Exit::Connect,
            FailureKind::Tls => Exit::Tls,
            FailureKind::HttpStatus => Exit::HttpStatus,
            FailureKind::Truncated => Exit::Truncated,
            FailureKind::Rejected => Exit::Rejected,
            FailureKind::LocalIo => Exit::LocalIo,
            FailureKind::Protocol => Exit::Protocol,
        }
    }

    /// The batch report's status word (also the `kind` of the progress channel's error line).
    pub fn report_status(self) -> &'static str {
        match self {
            FailureKind::Usage | FailureKind::InvalidUrl => "invalid",
            FailureKind::Dns => "dns_error",
            FailureKind::Connect => "connect_error",
            FailureKind::Tls => "tls_error",
            FailureKind::HttpStatus | FailureKind::Protocol => "http_error",
            FailureKind::Truncated => "truncated",
            FailureKind::Rejected => "rejected",
            FailureKind::LocalIo => "io_error",
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

    /// True when trying again later might succeed (batch mode's retry decision).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureKind::Dns
                | FailureKind::Connect
                | FailureKind::Truncated
                | FailureKind::Protocol
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

    /// The batch report's status word: invalid, dns_error, connect_error, tls_error, http_error,
    /// truncated, rejected or io_error.
    pub fn kind(&self) -> &'static str {
        self.kind.report_status()
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
        assert_eq!(err.kind(), "http_error");
        assert_eq!(err.http_status(), Some(404));
    }
}
