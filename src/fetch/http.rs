//! The HTTP client of a download: the ureq agents (TLS, timeouts, keep-alive pool), the request sent
//! for each hop, and redirects followed one hop at a time.
//!
//! Redirects are followed here rather than by ureq so that every hop is checked the same way: only
//! http and https targets, a proxy chosen for each hop's host, and credentials (from the URL or an
//! `Authorization`/`Cookie` header) never sent to a host other than the one the user named.

use std::io;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use ureq::http::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE, LOCATION};
use ureq::http::Response;
use ureq::tls::TlsConfig;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    ConnectProxyConnector, Connector, RustlsConnector, TcpConnector,
};
use ureq::{Agent, Body, Proxy};

use super::dns::LookupResolver;
use super::error::{FailureKind, FetchError};
use super::headers::parse_header;
use super::phase::{At, Mark, Phases};
use super::proxy::{ProxyEnv, ProxySetting};
use super::target::Target;
use super::tls::root_certs;
use super::transport_error::request_error;
use super::DownloadOptions;
use crate::url_parts::{is_http_scheme, UrlParts};

/// How much of a redirect's body is read to keep its connection reusable; larger bodies are dropped
/// with their connection.
const REDIRECT_BODY_LIMIT: u64 = 64 * 1024;

/// An agent that leaves redirects, status errors and proxies to the caller, and tells `phases` what
/// it is doing before an answer arrives.
///
/// The connector chain is ureq's default one (CONNECT proxy, TCP, rustls) with phase marks between
/// the links; SOCKS proxies are refused before a request is made (see `ureq_proxy`).
fn build_agent(
    connect_timeout: Option<std::time::Duration>,
    tls: TlsConfig,
    phases: &Arc<Phases>,
) -> Agent {
    let mark = |at| Mark {
        phases: Arc::clone(phases),
        at,
    };
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
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(mark(At::BeforeTcp))
            .chain(TcpConnector::default())
            .chain(mark(At::BeforeTls))
            .chain(RustlsConnector::default())
            .chain(mark(At::Connected));
    Agent::with_parts(
        config,
        connector,
        LookupResolver::<DefaultResolver>::new(Arc::clone(phases)),
    )
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
    /// Where both agents report their phases.
    pub(super) phases: Arc<Phases>,
}

impl Client {
    pub fn new(options: &DownloadOptions) -> Result<Client, FetchError> {
        let headers = options
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let phases = Arc::new(Phases::default());
        let client = Client {
            plain: build_agent(options.connect_timeout, TlsConfig::default(), &phases),
            secure: OnceLock::new(),
            insecure: options.insecure,
            cacert: options.cacert.clone(),
            connect_timeout: options.connect_timeout,
            proxies: ProxyEnv::from_env(),
            headers,
            max_redirects: options.max_redirects,
            phases,
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
            Ok(build_agent(self.connect_timeout, tls, &self.phases))
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
            || proxy.is_some_and(|p| {
                UrlParts::split(&p.url)
                    .scheme
                    .is_some_and(|s| s.eq_ignore_ascii_case("https"))
            });
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
        if let Some(credentials) = target.credentials() {
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
    if let Some(scheme) = UrlParts::split(&setting.url).scheme {
        if !is_http_scheme(scheme) {
            return Err(bad(&format!(
                "{} proxies are not supported; use an http:// or https:// proxy",
                scheme.to_ascii_lowercase()
            )));
        }
    }
    Proxy::new(&setting.url).map_err(|_| bad("not a valid proxy URL; expected http://HOST:PORT"))
}
