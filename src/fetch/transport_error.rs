//! ureq's errors translated into [`FailureKind`]s, with messages that name what failed and what to do.
//!
//! Kept apart from the client because the translation is long and is the same for every request and
//! every body read: one place decides which failure is `dns`, `connect`, `tls`, `protocol` or
//! `truncated`.

use std::io;

use super::error::{FailureKind, FetchError};
use super::proxy::ProxySetting;
use super::target::Target;
use super::tls::{is_tls_io, tls_io_message};

/// Translates an error from connecting, sending or receiving the response head.
pub(super) fn request_error(
    err: ureq::Error,
    target: &Target,
    proxy: Option<&ProxySetting>,
) -> FetchError {
    use ureq::Error as E;
    let via = proxy
        .map(|p| {
            format!(
                " via proxy {} (from {})",
                crate::redact::redact_credentials(&p.url),
                p.variable
            )
        })
        .unwrap_or_default();
    let host = target.host_port();
    let tls_hint = "; if the server uses a private CA, pass it with --cacert FILE (or skip verification with --insecure)";
    let (kind, message) = match err {
        E::HostNotFound | E::Timeout(ureq::Timeout::Resolve) => (
            FailureKind::Dns,
            format!(
                "cannot resolve host '{}'{via}; check the host name and your DNS settings",
                target.host()
            ),
        ),
        E::Timeout(ureq::Timeout::Connect) => (
            FailureKind::Connect,
            format!("cannot connect to {host}{via} within --connect-timeout; is the server up?"),
        ),
        E::ConnectProxyFailed(reason) => (
            FailureKind::Connect,
            format!("the proxy refused to connect to {host}{via}: {reason}"),
        ),
        E::ConnectionFailed => (
            FailureKind::Connect,
            format!("cannot connect to {host}{via}; is the server up?"),
        ),
        E::Tls(why) => (
            FailureKind::Tls,
            format!("TLS with {host} failed: {why}{tls_hint}"),
        ),
        E::Rustls(e) => (
            FailureKind::Tls,
            format!("TLS with {host} failed: {e}{tls_hint}"),
        ),
        E::Pem(e) => (FailureKind::Tls, format!("bad certificate: {e}")),
        E::TlsRequired => (
            FailureKind::Tls,
            format!("no TLS connection to {host} could be made"),
        ),
        E::Io(e) if is_tls_io(&e) => (FailureKind::Tls, tls_io_message(&e, &host)),
        E::Io(e) => io_request_error(e, target, &host, &via),
        E::Protocol(e) => (
            FailureKind::Protocol,
            format!("the answer from {host} is not valid HTTP: {e}"),
        ),
        E::LargeResponseHeader(..) => (
            FailureKind::Protocol,
            format!("the answer from {host} has headers too large to be HTTP"),
        ),
        E::BadUri(why) => (FailureKind::InvalidUrl, format!("invalid URL: {why}")),
        E::Http(e) => (FailureKind::InvalidUrl, format!("invalid request: {e}")),
        E::InvalidProxyUrl => (FailureKind::Usage, format!("invalid proxy URL{via}")),
        other => (
            FailureKind::Connect,
            format!("request to {host}{via} failed: {other}"),
        ),
    };
    FetchError::new(kind, message)
}

fn io_request_error(e: io::Error, target: &Target, host: &str, via: &str) -> (FailureKind, String) {
    use io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            if target.scheme() == "https" {
                // A server that hangs up during the handshake is usually not speaking TLS there.
                (
                    FailureKind::Tls,
                    format!("{host} closed the connection during the TLS handshake{via}; is it an https server?"),
                )
            } else {
                (
                    FailureKind::Protocol,
                    format!("{host} closed the connection without answering{via}"),
                )
            }
        }
        K::InvalidData if target.scheme() == "https" => (
            FailureKind::Tls,
            format!("TLS with {host} failed: {e}; is it an https server?"),
        ),
        K::InvalidData => (
            FailureKind::Protocol,
            format!("the answer from {host} is not valid HTTP: {e}"),
        ),
        _ => (
            FailureKind::Connect,
            format!("cannot connect to {host}{via}: {e}; is the server up?"),
        ),
    }
}

/// Translates an error while reading the body.
pub fn body_error(err: io::Error, received: u64, total: Option<u64>) -> FetchError {
    let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
    match ureq::Error::from(err) {
        ureq::Error::Protocol(e) => FetchError::new(
            FailureKind::Protocol,
            format!("the body is not valid HTTP after {received}{of} bytes: {e}"),
        ),
        e => FetchError::new(
            FailureKind::Truncated,
            format!(
                "the transfer broke off after {received}{of} bytes ({e}); try again, with --resume to continue where it stopped"
            ),
        ),
    }
}
