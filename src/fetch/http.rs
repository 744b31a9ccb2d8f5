//! The HTTP side of a download: the ureq agent (TLS roots, timeouts, keep-alive pool), URLs and
//! credentials, redirects followed one hop at a time, and ureq's errors translated into
//! [`FailureKind`]s.
//!
//! Redirects are followed here rather than by ureq so that every hop is checked the same way: only
//! http and https targets, a proxy chosen for each hop's host, and credentials (from the URL or an
//! `Authorization`/`Cookie` header) never sent to a host other than the one the user named.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use ureq::http::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE, LOCATION};
use ureq::http::{Response, Uri};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, Body, Proxy};

use super::error::{FailureKind, FetchError};
use super::proxy::{ProxyEnv, ProxySetting};
use crate::cli::DownloadOptions;

/// How much of a redirect's body is read to keep its connection reusable; larger bodies are dropped
/// with their connection.
const REDIRECT_BODY_LIMIT: u64 = 64 * 1024;

/// A URL split into what is sent (no credentials, no fragment) and what is shown (credentials
/// replaced by `***`).
#[derive(Debug, Clone)]
pub struct Target {
    pub uri: Uri,
    /// `user:password`, percent-decoded, from the URL's userinfo.
    credentials: Option<String>,
}

impl Target {
    /// Parses an http or https URL.
    pub fn parse(text: &str) -> Result<Target, FetchError> {
        let invalid = |why: &str| {
            FetchError::new(
                FailureKind::InvalidUrl,
                format!("not a valid URL: {why}; expected http://HOST/PATH or https://HOST/PATH"),
            )
        };
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(FetchError::new(
                FailureKind::InvalidUrl,
                format!(
                    "unsupported scheme '{scheme}': only http and https URLs can be downloaded"
                ),
            ));
        }
        let rest = rest.split('#').next().unwrap_or("");
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let (credentials, host_port) = match authority.rfind('@') {
            Some(at) => (
                Some(crate::url_parts::percent_decode(&authority[..at])),
                &authority[at + 1..],
            ),
            None => (None, authority),
        };
        if host_port.is_empty() || host_port.starts_with(':') {
            return Err(invalid("no host"));
        }
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let uri: Uri = format!("{scheme}://{host_port}{}", encode_unsafe(&path))
            .parse()
            .map_err(|e| invalid(&format!("{e}")))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        Ok(Target { uri, credentials })
    }

    fn scheme(&self) -> &str {
        self.uri.scheme_str().unwrap_or("http")
    }

    fn host(&self) -> &str {
        self.uri.host().unwrap_or("")
    }

    fn port(&self) -> u16 {
        self.uri
            .port_u16()
            .unwrap_or(if self.scheme() == "https" { 443 } else { 80 })
    }

    /// `host:port`, for messages.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host(), self.port())
    }

    fn same_origin(&self, other: &Target) -> bool {
        self.scheme() == other.scheme()
            && self.host().eq_ignore_ascii_case(other.host())
            && self.port() == other.port()
    }

    /// The target of a `Location` header, resolved against this URL. Refuses schemes other than
    /// http and https.
    fn redirect(&self, location: &str) -> Result<Target, FetchError> {
        let location = location.trim();
        if let Some(scheme) = url_scheme(location) {
            let lower = scheme.to_ascii_lowercase();
            if lower != "http" && lower != "https" {
                return Err(FetchError::new(
                    FailureKind::InvalidUrl,
                    format!(
                        "redirected to a {lower}: URL ({}), which watchdog refuses to follow; only http and https redirects are followed",
                        crate::redact::redact_credentials(location)
                    ),
                ));
            }
            return Target::parse(location).map_err(|e| redirect_error(location, &e));
        }
        let origin = format!("{}://{}", self.scheme(), self.authority());
        let absolute = if location.starts_with("//") {
            format!("{}:{location}", self.scheme())
        } else if location.starts_with('/') {
            format!("{origin}{location}")
        } else {
            let path = self.uri.path();
            if let Some(query) = location.strip_prefix('?') {
                format!("{origin}{path}?{query}")
            } else {
                let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
                format!(
                    "{origin}{}",
                    remove_dot_segments(&format!("{dir}{location}"))
                )
            }
        };
        let mut target = Target::parse(&absolute).map_err(|e| redirect_error(location, &e))?;
        if target.credentials.is_none() && self.same_origin(&target) {
            target.credentials.clone_from(&self.credentials);
        }
        Ok(target)
    }

    fn authority(&self) -> &str {
        self.uri.authority().map_or("", |a| a.as_str())
    }
}

fn redirect_error(location: &str, err: &FetchError) -> FetchError {
    FetchError::new(
        err.failure_kind(),
        format!(
            "redirected to {}, which is {}",
            crate::redact::redact_credentials(location),
            err.message()
        ),
    )
}

/// The scheme of an absolute URL (`scheme:`), if `text` starts with one.
fn url_scheme(text: &str) -> Option<&str> {
    let colon = text.find(':')?;
    let scheme = &text[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// Resolves `.` and `..` segments of a path (RFC 3986, 5.2.4); the query is left alone.
fn remove_dot_segments(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut result = out.join("/");
    if !result.starts_with('/') {
        result.insert(0, '/');
    }
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

/// Percent-encodes the bytes that may not appear in a request target (spaces, controls, non-ASCII).
fn encode_unsafe(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b <= b' '
            || b >= 0x7f
            || matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
        {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// One `-H 'Name: value'`.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), FetchError> {
    let bad = |why: String| {
        FetchError::new(
            FailureKind::Usage,
            format!("invalid header '{text}': {why}; expected -H 'Name: value'"),
        )
    };
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("no ':' after the name".to_string()))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad(format!("'{}' is not a valid header name", name.trim())))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| bad("the value contains control characters".to_string()))?;
    Ok((name, value))
}

/// How long an address looked up is used again: as long as curl keeps one in its DNS cache.
const DNS_CACHE_TTL: Duration = Duration::from_secs(60);
/// The most hosts remembered; past it, stale entries are dropped, then all of them.
const DNS_CACHE_HOSTS: usize = 256;

/// The system resolver, with failed look-ups reported as "host not found" rather than a bare I/O
/// error, and answers kept for [`DNS_CACHE_TTL`].
///
/// ureq resolves the host of every request, even one that then goes over a pooled keep-alive
/// connection. A batch worker fetches thousands of URLs from a few hosts; without the cache each one
/// would cost a `getaddrinfo` (files read, often a DNS round trip), on exactly the slow network that
/// watchdog is for. Failures are not kept: the next item asks again.
#[derive(Debug, Default)]
struct LookupResolver<R = DefaultResolver> {
    system: R,
    /// `host:port` to when it was looked up and its addresses.
    cache: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl<R: Resolver> Resolver for LookupResolver<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = uri.authority().map(|authority| {
            let default_port = if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            };
            format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(default_port)
            )
        });
        if let (Some(key), Ok(cache)) = (&key, self.cache.lock()) {
            if let Some((at, addrs)) = cache.get(key) {
                if at.elapsed() < DNS_CACHE_TTL {
                    return Ok(addrs.clone());
                }
            }
        }
        let addrs = match self.system.resolve(uri, config, timeout) {
            Err(ureq::Error::Io(_)) => return Err(ureq::Error::HostNotFound),
            other => other?,
        };
        if let (Some(key), Ok(mut cache)) = (key, self.cache.lock()) {
            if cache.len() >= DNS_CACHE_HOSTS {
                cache.retain(|_, (at, _)| at.elapsed() < DNS_CACHE_TTL);
                if cache.len() >= DNS_CACHE_HOSTS {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), addrs.clone()));
        }
        Ok(addrs)
    }
}

/// An agent that leaves redirects, status errors and proxies to the caller.
fn build_agent(connect_timeout: Option<std::time::Duration>, tls: TlsConfig) -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .user_agent(format!("watchdog/{}", env!("CARGO_PKG_VERSION")))
        .timeout_connect(connect_timeout)
        .timeout_resolve(connect_timeout)
        .tls_config(tls)
        .build();
    Agent::with_parts(
        config,
        DefaultConnector::new(),
        LookupResolver::<DefaultResolver>::default(),
    )
}

/// The trusted roots: the system store plus `--cacert`. Falls back to the built-in Mozilla roots only
/// when the system has none and no `--cacert` was given.
fn root_certs(cacert: Option<&std::path::Path>) -> Result<RootCerts, FetchError> {
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

/// An HTTP client for many downloads: agents (and their keep-alive pools), with the options that do
/// not change between downloads.
///
/// Reading the system trust store costs a few milliseconds (it parses every certificate), which a
/// batch of plain-http downloads would pay once per worker for nothing, so the https agent is built
/// on the first https request, unless `--cacert` was given: a bad file must be reported at once.
pub struct Client {
    /// For http URLs.
    plain: Agent,
    /// For https URLs, built when first needed.
    secure: OnceLock<Result<Agent, FetchError>>,
    insecure: bool,
    cacert: Option<std::path::PathBuf>,
    connect_timeout: Option<std::time::Duration>,
    proxies: ProxyEnv,
    headers: Vec<(HeaderName, HeaderValue)>,
    max_redirects: u32,
}

impl Client {
    pub fn new(options: &DownloadOptions) -> Result<Client, FetchError> {
        let headers = options
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let client = Client {
            plain: build_agent(options.connect_timeout, TlsConfig::default()),
            secure: OnceLock::new(),
            insecure: options.insecure,
            cacert: options.cacert.clone(),
            connect_timeout: options.connect_timeout,
            proxies: ProxyEnv::from_env(),
            headers,
            max_redirects: options.max_redirects,
        };
        if client.cacert.is_some() {
            client.secure_agent()?;
        }
        Ok(client)
    }

    /// The https agent, trusting the system store plus `--cacert`.
    fn secure_agent(&self) -> Result<&Agent, FetchError> {
        let built = self.secure.get_or_init(|| {
            let tls = TlsConfig::builder()
                .root_certs(root_certs(self.cacert.as_deref())?)
                .disable_verification(self.insecure)
                .build();
            Ok(build_agent(self.connect_timeout, tls))
        });
        built.as_ref().map_err(Clone::clone)
    }

    /// Sends a GET for `target` (with `Range: bytes=FROM-` when `range_from` is given) and follows
    /// redirects. Returns the first answer that is not a redirect.
    pub fn get(
        &self,
        start: &Target,
        range_from: Option<u64>,
    ) -> Result<Response<Body>, FetchError> {
        let mut target = start.clone();
        let mut hops = 0;
        loop {
            let response = self.send(&target, start, range_from)?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let location = match location {
                Some(location) if matches!(status, 301 | 302 | 303 | 307 | 308) => location,
                _ => return Ok(response),
            };
            if hops >= self.max_redirects {
                return Err(FetchError::new(
                    FailureKind::HttpStatus,
                    format!(
                        "too many redirects (more than {}); the server may be redirecting in a loop, or raise --max-redirects",
                        self.max_redirects
                    ),
                )
                .with_status(status));
            }
            drain_small(response);
            target = target.redirect(&location)?;
            hops += 1;
        }
    }

    fn send(
        &self,
        target: &Target,
        start: &Target,
        range_from: Option<u64>,
    ) -> Result<Response<Body>, FetchError> {
        let same_origin = target.same_origin(start);
        let proxy = self
            .proxies
            .proxy_for(target.scheme(), target.host(), target.port());
        // TLS is spoken to an https target, or to an https proxy.
        let needs_tls = target.uri.scheme_str() == Some("https")
            || proxy.is_some_and(|p| p.url.to_ascii_lowercase().starts_with("https://"));
        let agent = if needs_tls {
            self.secure_agent()?
        } else {
            &self.plain
        };
        let mut request = agent.get(target.uri.clone());
        let mut has_authorization = false;
        for (name, value) in &self.headers {
            if !same_origin && (name == AUTHORIZATION || name == COOKIE) {
                continue;
            }
            has_authorization |= name == AUTHORIZATION;
            request = request.header(name, value);
        }
        if let Some(credentials) = &target.credentials {
            if !has_authorization {
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                request = request.header(AUTHORIZATION, format!("Basic {encoded}"));
            }
        }
        if let Some(from) = range_from {
            request = request.header("Range", format!("bytes={from}-"));
        }
        let result = match proxy {
            Some(setting) => request
                .config()
                .proxy(Some(ureq_proxy(setting)?))
                .build()
                .call(),
            None => request.call(),
        };
        result.map_err(|e| request_error(e, target, proxy))
    }
}

/// Reads a small redirect body so its connection can be reused; a large one is dropped instead.
fn drain_small(response: Response<Body>) {
    let (_, body) = response.into_parts();
    if body
        .content_length()
        .is_some_and(|n| n <= REDIRECT_BODY_LIMIT)
    {
        let mut reader = body.into_with_config().limit(REDIRECT_BODY_LIMIT).reader();
        let _ = io::copy(&mut reader, &mut io::sink());
    }
}

fn ureq_proxy(setting: &ProxySetting) -> Result<Proxy, FetchError> {
    let bad = |why: &str| {
        FetchError::new(
            FailureKind::Usage,
            format!(
                "{} = {}: {why}",
                setting.variable,
                crate::redact::redact_credentials(&setting.url)
            ),
        )
    };
    if let Some(scheme) = setting.url.split_once("://").map(|(s, _)| s) {
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad(&format!(
                "{scheme} proxies are not supported; use an http:// or https:// proxy"
            )));
        }
    }
    Proxy::new(&setting.url).map_err(|_| bad("not a valid proxy URL; expected http://HOST:PORT"))
}

/// True when `err` (or the error it wraps) came from the TLS library.
fn is_tls_io(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// What went wrong in a TLS handshake, with the likely remedy.
fn tls_io_message(err: &io::Error, host: &str) -> String {
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

/// Translates an error from connecting, sending or receiving the response head.
fn request_error(err: ureq::Error, target: &Target, proxy: Option<&ProxySetting>) -> FetchError {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers 127.0.0.1 for any host but `nowhere`, counting the look-ups.
    #[derive(Debug, Default)]
    struct CountingResolver(AtomicUsize);

    impl Resolver for CountingResolver {
        fn resolve(
            &self,
            uri: &Uri,
            _: &ureq::config::Config,
            _: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if uri.host() == Some("nowhere") {
                return Err(ureq::Error::Io(io::Error::other("no such host")));
            }
            let mut addrs = DefaultResolver::default().empty();
            addrs.push(std::net::SocketAddr::from(([127, 0, 0, 1], 80)));
            Ok(addrs)
        }
    }

    #[test]
    fn looked_up_hosts_are_remembered_and_failures_are_not() {
        let resolver = LookupResolver::<CountingResolver>::default();
        let config = Agent::config_builder().build();
        let timeout = NextTimeout {
            after: Duration::from_secs(5).into(),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        let resolve = |url: &str| {
            let uri: Uri = url.parse().unwrap();
            resolver.resolve(&uri, &config, timeout)
        };
        for url in ["http://a/1.jpg", "http://a/2.jpg", "http://a:80/3.jpg"] {
            assert_eq!(resolve(url).map(|a| a.len()).ok(), Some(1));
        }
        assert_eq!(
            resolver.system.0.load(Ordering::SeqCst),
            1,
            "one look-up for host a"
        );
        assert!(resolve("https://a/4.jpg").is_ok());
        assert!(resolve("http://b/1.jpg").is_ok());
        assert_eq!(
            resolver.system.0.load(Ordering::SeqCst),
            3,
            "another port, another host"
        );
        for _ in 0..2 {
            assert!(matches!(
                resolve("http://nowhere/x"),
                Err(ureq::Error::HostNotFound)
            ));
        }
        assert_eq!(
            resolver.system.0.load(Ordering::SeqCst),
            5,
            "failures are asked again"
        );
    }

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn parses_and_strips_credentials_and_fragments() {
        let t = target("https://user:p%40ss@Example.com:8443/a/b.jpg?x=1#frag");
        assert_eq!(t.uri.to_string(), "https://Example.com:8443/a/b.jpg?x=1");
        assert_eq!(t.credentials.as_deref(), Some("user:p@ss"));
        assert_eq!(t.port(), 8443);
        assert_eq!(target("http://h").uri.path(), "/");
        assert_eq!(target("http://h?q=1").uri.to_string(), "http://h/?q=1");
        assert_eq!(target("http://h/a b").uri.path(), "/a%20b");
    }

    #[test]
    fn refuses_bad_urls() {
        for url in [
            "ftp://h/x",
            "file:///etc/passwd",
            "h/x",
            "http://",
            "http:///x",
        ] {
            let err = Target::parse(url).unwrap_err();
            assert_eq!(err.failure_kind(), FailureKind::InvalidUrl, "{url}");
        }
    }

    #[test]
    fn resolves_redirects() {
        let base = target("http://h:81/a/b/c?q");
        let go = |loc: &str| base.redirect(loc).unwrap().uri.to_string();
        assert_eq!(go("https://other/x"), "https://other/x");
        assert_eq!(go("//other/y"), "http://other/y");
        assert_eq!(go("/z"), "http://h:81/z");
        assert_eq!(go("d"), "http://h:81/a/b/d");
        assert_eq!(go("../d?x=1"), "http://h:81/a/d?x=1");
        assert_eq!(go("?p=2"), "http://h:81/a/b/c?p=2");
    }

    #[test]
    fn refuses_redirects_to_other_schemes() {
        let base = target("http://h/");
        for loc in ["file:///etc/passwd", "ftp://h/x", "javascript:alert(1)"] {
            let err = base.redirect(loc).unwrap_err();
            assert_eq!(err.failure_kind(), FailureKind::InvalidUrl, "{loc}");
        }
    }

    #[test]
    fn credentials_stay_with_their_origin() {
        let base = target("http://u:p@h/a");
        assert_eq!(
            base.redirect("/b").unwrap().credentials.as_deref(),
            Some("u:p")
        );
        assert_eq!(base.redirect("http://other/b").unwrap().credentials, None);
    }

    #[test]
    fn headers_are_validated() {
        assert!(parse_header("X-Test: yes").is_ok());
        assert!(parse_header("X-Empty:").is_ok());
        for bad in ["no colon", "Bad Name: x", ": x", "X: a\r\nInjected: 1"] {
            let err = parse_header(bad).unwrap_err();
            assert_eq!(err.failure_kind(), FailureKind::Usage, "{bad}");
        }
    }
}
