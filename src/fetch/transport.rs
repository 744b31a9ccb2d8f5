//! The seam between a download and the HTTP engine that carries it.
//!
//! The engine is libcurl, with OpenSSL built in, and it lives in the `watchdog-fetch` binary rather
//! than in this library: the `curl` crate runs libcurl's and OpenSSL's global initialisation from a
//! constructor at every start of any binary that links it, and the two add some 5 MB to it. Kept out
//! of the library, they cost nothing to `watchdog 5 true`, which never downloads. `watchdog-fetch`
//! hands its engine over with [`install`] before it does anything else; a [`Fetcher`](super::Fetcher)
//! then gets its [`Transport`] from it. Everything around the transfer (redirect targets, the proxy
//! chosen, the resolver, content checks, output, progress) stays in the library, and the engine uses
//! the pieces it needs from here.

use std::sync::OnceLock;

pub use super::dns::{resolve_entry, LookupError, LookupResolver};
pub use super::error::{FailureKind, FetchError};
pub use super::headers::{parse_header, Header};
pub use super::phase::Phases;
pub use super::proxy::{ProxyEnv, ProxyKind, ProxySetting};
pub use super::target::Target;
pub use super::tls::{trust, Trust};
pub use super::{DownloadOptions, ProxyAuth};
pub use crate::protocol::Phase;

/// An HTTP client for many downloads, keeping its connections between them.
pub trait Transport {
    /// Sends a GET for `target` (with `Range: bytes=FROM-` when `range_from` is given) and follows
    /// redirects. Returns the first answer that is not a redirect, its head read, its body not yet.
    fn get<'c>(
        &'c self,
        target: &Target,
        range_from: Option<u64>,
    ) -> Result<Answer<'c>, FetchError>;

    /// Where the resolver and the transfers report their phases.
    fn phases(&self) -> &Phases;
}

/// An answer whose head has arrived. Dropping it before the end of the body closes its connection.
pub trait Response {
    fn status(&self) -> u16;

    /// The value of header `name` (lowercase).
    fn header(&self, name: &str) -> Option<&str>;

    /// The body's length, from `Content-Length` (absent with a transfer coding).
    fn content_length(&self) -> Option<u64> {
        if self.header("transfer-encoding").is_some() {
            return None;
        }
        self.header("content-length")?.trim().parse().ok()
    }

    /// Hands the body bytes received so far to `sink`, waiting for some if there are none. Returns
    /// `Ok(false)` at the end of the body.
    fn read_into(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<bool, ReadFailure>;

    /// Waits until body bytes are ready for [`Response::read_into`], the body has ended, or `until`
    /// has passed; `Ok(false)` in the last case. A supervisor that stops a stalled download learns
    /// from the progress sent on `false` what had arrived.
    fn body_ready_by(&mut self, until: std::time::Instant) -> Result<bool, FetchError>;
}

/// An answer from a [`Transport`].
pub type Answer<'c> = Box<dyn Response + 'c>;

impl dyn Response + '_ {
    /// [`Response::read_into`] with a closure.
    pub fn read_chunk(
        &mut self,
        mut sink: impl FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<bool, ReadFailure> {
        self.read_into(&mut sink)
    }
}

/// Why reading a body stopped: the caller's sink refused the bytes, or the transfer failed.
pub enum ReadFailure {
    Sink(FetchError),
    Transfer(BodyFailure),
}

/// A transfer that failed while the body came in, in the engine's words.
#[derive(Debug, Clone)]
pub struct BodyFailure {
    /// The body was not valid HTTP (a bad chunk or content encoding) rather than cut short.
    pub malformed: bool,
    /// What the engine said, without a final period.
    pub detail: String,
}

/// Translates a failure while reading the body, after `received` bytes (of `total`, when announced).
pub(super) fn body_error(failure: &BodyFailure, received: u64, total: Option<u64>) -> FetchError {
    let why = &failure.detail;
    let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
    if failure.malformed {
        FetchError::new(
            FailureKind::Protocol,
            format!("the body is not valid HTTP after {received}{of} bytes: {why}"),
        )
    } else {
        FetchError::new(
            FailureKind::Truncated,
            format!(
                "the transfer broke off after {received}{of} bytes ({why}); try again, with --resume to continue where it stopped"
            ),
        )
    }
}

/// Builds the engine's client for a worker's downloads.
pub type Connect = fn(&DownloadOptions) -> Result<Box<dyn Transport>, FetchError>;

/// The engine of this process, once [`install`]ed.
static ENGINE: OnceLock<Connect> = OnceLock::new();

/// Makes `connect` the engine of every [`Fetcher`](super::Fetcher) of this process. The first call
/// wins.
pub fn install(connect: Connect) {
    let _ = ENGINE.set(connect);
}

/// A client from the installed engine; an error in a binary that has none (`watchdog` itself: its
/// downloads run in `watchdog-fetch`).
pub(super) fn connect(options: &DownloadOptions) -> Result<Box<dyn Transport>, FetchError> {
    match ENGINE.get() {
        Some(connect) => connect(options),
        None => Err(FetchError::new(
            FailureKind::Usage,
            format!(
                "this executable has no HTTP engine: downloads run in {}",
                super::worker_binary::WORKER_BINARY
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_failure_is_malformed_or_truncated_with_what_was_received() {
        let cut = BodyFailure {
            malformed: false,
            detail: "Connection reset by peer".to_string(),
        };
        let err = body_error(&cut, 10, Some(100));
        assert_eq!(err.failure_kind(), FailureKind::Truncated);
        assert!(err
            .to_string()
            .contains("after 10 of 100 bytes (Connection reset by peer)"));
        let bad = BodyFailure {
            malformed: true,
            detail: "invalid chunk".to_string(),
        };
        let err = body_error(&bad, 3, None);
        assert_eq!(err.failure_kind(), FailureKind::Protocol);
        assert!(err
            .to_string()
            .contains("not valid HTTP after 3 bytes: invalid chunk"));
    }

    #[test]
    fn without_an_engine_a_fetcher_says_where_downloads_run() {
        let options = DownloadOptions {
            connect_timeout: None,
            max_size: None,
            expect: None,
            headers: Vec::new(),
            max_redirects: 10,
            cacert: None,
            insecure: false,
            fsync: false,
            proxy: None,
            noproxy: None,
            proxy_auth: ProxyAuth::Basic,
        };
        // Nothing in the library installs an engine: only the worker binary does.
        let message = super::super::Fetcher::new(&options)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("no HTTP engine"), "{message}");
        assert!(message.contains("watchdog-fetch"), "{message}");
    }
}
