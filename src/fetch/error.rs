//! A failed download: its [`FailureKind`] (`crate::failure`, which decides the exit code, report
//! status and retry) with the one line a person can act on.

use std::fmt;

use crate::exit::Exit;
pub use crate::failure::FailureKind;

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
