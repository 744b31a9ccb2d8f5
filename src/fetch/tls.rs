//! TLS trust: which roots libcurl is told to trust, checked before any request so that a bad
//! `--cacert` is a usage error and not a failed handshake.
//!
//! The roots are the system store plus `--cacert`, as before: libcurl's compiled-in bundle (or
//! `SSL_CERT_FILE`, which OpenSSL and curl's tool honour and libcurl alone does not), and the system's
//! hashed certificate directory (or `SSL_CERT_DIR`). A corporate root CA given either way keeps
//! working through a TLS-intercepting proxy.

use std::path::{Path, PathBuf};

use super::error::{FailureKind, FetchError};

/// The system's hashed certificate directory (Debian, Ubuntu, Alpine, Arch, Fedora's compat link).
const SYSTEM_CERT_DIR: &str = "/etc/ssl/certs";

/// The system CA bundles, the first that exists being the system store when a `--cacert` must be
/// trusted beside it.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// What libcurl is told to trust.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// `CURLOPT_CAINFO`: `None` keeps libcurl's compiled-in bundle.
    pub file: Option<PathBuf>,
    /// `CURLOPT_CAINFO_BLOB`, when more than one file must be trusted (read once, here).
    pub blob: Option<Vec<u8>>,
    /// `CURLOPT_CAPATH`: `None` keeps libcurl's compiled-in directory.
    pub dir: Option<PathBuf>,
}

/// The trusted roots for `--cacert` and the environment. Fails on a `--cacert` (or `SSL_CERT_FILE`)
/// that cannot be read or holds no PEM certificate.
pub fn trust(
    cacert: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Trust, FetchError> {
    let cert_file = env("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let cert_dir = env("SSL_CERT_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(file) = &cert_file {
        read_pem(file, "SSL_CERT_FILE")?;
    }
    let Some(cacert) = cacert else {
        return Ok(Trust {
            file: cert_file,
            blob: None,
            dir: cert_dir,
        });
    };
    let extra = read_pem(cacert, "--cacert")?;
    let system = match &cert_file {
        Some(file) => Some(file.clone()),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
    };
    let dir = cert_dir.or_else(|| {
        let dir = PathBuf::from(SYSTEM_CERT_DIR);
        dir.is_dir().then_some(dir)
    });
    let blob = match system.and_then(|p| std::fs::read(p).ok()) {
        Some(mut bundle) => {
            bundle.push(b'\n');
            bundle.extend_from_slice(&extra);
            Some(bundle)
        }
        None => None,
    };
    Ok(Trust {
        file: blob.is_none().then(|| cacert.to_path_buf()),
        blob,
        dir,
    })
}

/// The file's contents, when it holds at least one PEM certificate.
fn read_pem(path: &Path, option: &str) -> Result<Vec<u8>, FetchError> {
    let bad = |why: String| {
        FetchError::new(
            FailureKind::Usage,
            format!("{option} {}: {why}", path.display()),
        )
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(bad(
            "no certificate in it; expected PEM (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn without_cacert_libcurl_keeps_its_own_store_unless_the_environment_names_one() {
        assert_eq!(trust(None, |_| None).ok(), Some(Trust::default()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("corp.pem");
        std::fs::write(&file, PEM).unwrap();
        let env = |name: &str| (name == "SSL_CERT_FILE").then(|| file.display().to_string());
        let t = trust(None, env).unwrap();
        assert_eq!(t.file.as_deref(), Some(file.as_path()));
        assert_eq!(t.blob, None);
    }

    #[test]
    fn cacert_is_trusted_beside_the_system_store() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.pem");
        let corp = dir.path().join("corp.pem");
        std::fs::write(&system, PEM.replace("MIIB", "SYSTEM")).unwrap();
        std::fs::write(&corp, PEM.replace("MIIB", "CORP")).unwrap();
        let env = |name: &str| (name == "SSL_CERT_FILE").then(|| system.display().to_string());
        let t = trust(Some(&corp), env).unwrap();
        let blob = String::from_utf8(t.blob.unwrap()).unwrap();
        assert!(blob.contains("SYSTEM") && blob.contains("CORP"), "{blob}");
    }

    #[test]
    fn a_file_without_certificates_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("bogus.pem");
        std::fs::write(&bogus, "not a certificate\n").unwrap();
        for path in [bogus.as_path(), Path::new("/nonexistent/ca.pem")] {
            let err = trust(Some(path), |_| None).unwrap_err();
            assert_eq!(err.failure_kind(), FailureKind::Usage);
            assert!(err.message().starts_with("--cacert "), "{}", err.message());
        }
    }
}
