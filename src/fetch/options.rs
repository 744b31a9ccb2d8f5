//! What a download is asked to do, as plain data. The command line (`crate::cli`) parses its flags and
//! converts them into these once; the fetch worker and batch mode take only these, and a batch worker
//! receives them as JSON.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of content a download must be (`--expect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// JPEG, PNG, GIF, WebP, BMP or TIFF, judged by the body's magic bytes.
    Image,
}

/// How watchdog authenticates to an HTTP proxy that asks (407), with the credentials in the proxy
/// URL: curl's `--proxy-basic`, `--proxy-digest`, `--proxy-ntlm`, `--proxy-anyauth`.
///
/// Not offered: Negotiate (Kerberos), since the libcurl built in has no GSS-API: Debian ships the
/// Kerberos libraries only as shared objects, which every user's machine would then need and load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyAuth {
    /// Basic, sent with the first request (curl's default).
    #[default]
    Basic,
    Digest,
    /// NTLM (libcurl's own, on the vendored OpenSSL's DES: see .cargo/config.toml).
    Ntlm,
    /// Whichever the proxy offers in its `Proxy-Authenticate`, the most secure first: one more round
    /// trip on each new connection to the proxy.
    Any,
}

impl ProxyAuth {
    /// The scheme's name, as a proxy's `Proxy-Authenticate` spells it.
    pub fn name(self) -> &'static str {
        match self {
            ProxyAuth::Basic => "Basic",
            ProxyAuth::Digest => "Digest",
            ProxyAuth::Ntlm => "NTLM",
            ProxyAuth::Any => "any scheme offered",
        }
    }
}

/// The options of a download that do not change from one URL to the next, shared by `fetch` and
/// `batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadOptions {
    /// Give up connecting after this long; `None` leaves connecting to the overall deadline.
    pub connect_timeout: Option<Duration>,
    /// Refuse a body larger than this many bytes.
    pub max_size: Option<u64>,
    /// Accept only a body of this kind.
    pub expect: Option<Expect>,
    /// Extra request headers, each `Name: value`.
    pub headers: Vec<String>,
    /// Follow at most this many redirects.
    pub max_redirects: u32,
    /// Also trust the CA certificates in this PEM file.
    #[serde(with = "os_path")]
    pub cacert: Option<PathBuf>,
    /// Do not verify TLS certificates or host names.
    pub insecure: bool,
    /// fsync the file and its directory before reporting success.
    pub fsync: bool,
    /// `-x URL`: the proxy for every request, over the environment's (`""`: no proxy).
    #[serde(default)]
    pub proxy: Option<String>,
    /// `--noproxy LIST`: hosts reached directly, over `NO_PROXY`.
    #[serde(default)]
    pub noproxy: Option<String>,
    /// How to answer a proxy's 407.
    #[serde(default)]
    pub proxy_auth: ProxyAuth,
}

/// One `watchdog -- fetch URL` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// The http or https URL to download.
    pub url: String,
    /// Where to write the file (`-` is stdout); `None` names it after the URL.
    pub output: Option<PathBuf>,
    /// The body's expected SHA-256, in hex.
    pub sha256: Option<String>,
    /// Keep a partial download when interrupted, and continue it next time.
    pub resume: bool,
    pub download: DownloadOptions,
}

/// A path in JSON: a string when it is UTF-8, else its bytes, so that any path the command line
/// accepted survives the trip to a worker.
mod os_path {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Bytes(Vec<u8>),
    }

    pub fn serialize<S: Serializer>(path: &Option<PathBuf>, to: S) -> Result<S::Ok, S::Error> {
        path.as_ref()
            .map(|p| match p.to_str() {
                Some(text) => Repr::Text(text.to_string()),
                None => Repr::Bytes(p.as_os_str().as_bytes().to_vec()),
            })
            .serialize(to)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Option<PathBuf>, D::Error> {
        Ok(Option::<Repr>::deserialize(from)?.map(|repr| match repr {
            Repr::Text(text) => PathBuf::from(text),
            Repr::Bytes(bytes) => PathBuf::from(OsString::from_vec(bytes)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    fn options(cacert: Option<PathBuf>) -> DownloadOptions {
        DownloadOptions {
            connect_timeout: Some(Duration::from_millis(1500)),
            max_size: Some(20 << 20),
            expect: Some(Expect::Image),
            headers: vec!["Authorization: Bearer x".into(), "X-A: 1".into()],
            max_redirects: 3,
            cacert,
            insecure: true,
            fsync: true,
            proxy: Some("socks5h://u:p@127.0.0.1:1080".into()),
            noproxy: Some("localhost".into()),
            proxy_auth: ProxyAuth::Any,
        }
    }

    #[test]
    fn download_options_survive_json() {
        for cacert in [
            None,
            Some(PathBuf::from("/etc/ca.pem")),
            Some(PathBuf::from(OsString::from_vec(
                b"/tmp/\xff\xfe.pem".to_vec(),
            ))),
        ] {
            let sent = options(cacert);
            let json = serde_json::to_string(&sent).expect("serialize");
            let back: DownloadOptions = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, sent, "{json}");
        }
    }
}
