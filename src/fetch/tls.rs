//! TLS trust for the https agent: which roots are trusted, and what a failed handshake most likely
//! means. Kept apart from the client so that the rules for `--cacert` and the remedies suggested in
//! TLS errors are in one place.

use std::io;
use std::sync::Arc;

use ureq::tls::{Certificate, PemItem, RootCerts};

use super::error::{FailureKind, FetchError};

/// The trusted roots: the system store plus `--cacert`. Falls back to the built-in Mozilla roots only
/// when the system has none and no `--cacert` was given.
pub(super) fn root_certs(cacert: Option<&std::path::Path>) -> Result<RootCerts, FetchError> {
    let native = rustls_native_certs::load_native_certs();
    let mut certs: Vec<Certificate<'static>> = native
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(path) = cacert {
        let bad = |why: String| {
            FetchError::new(
                FailureKind::Usage,
                format!("--cacert {}: {why}", path.display()),
            )
        };
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let mut found = 0;
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(cert)) => {
                    certs.push(cert);
                    found += 1;
                }
                Ok(_) => {}
                Err(e) => return Err(bad(format!("not a valid PEM file: {e}"))),
            }
        }
        if found == 0 {
            return Err(bad(
                "no certificate in it; expected PEM (-----BEGIN CERTIFICATE-----)".to_string(),
            ));
        }
    }
    if certs.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

/// True when `err` (or the error it wraps) came from the TLS library.
pub(super) fn is_tls_io(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// What went wrong in a TLS handshake, with the likely remedy.
pub(super) fn tls_io_message(err: &io::Error, host: &str) -> String {
    match err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::InappropriateMessage { .. }) => {
            format!("TLS with {host} failed: {err}; the server does not speak TLS there (is it a plain http:// server?)")
        }
        Some(rustls::Error::InvalidCertificate(_)) => format!(
            "TLS with {host} failed: {err}; if the server uses a private CA, pass it with --cacert FILE (or skip verification with --insecure)"
        ),
        _ => format!("TLS with {host} failed: {err}"),
    }
}
