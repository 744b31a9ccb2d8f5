//! The HTTP client of a download: libcurl, one transfer at a time, read as it arrives.
//!
//! libcurl (through the `curl` crate) is the engine because corporate networks put a proxy in the
//! path and libcurl speaks to every kind as curl does: a forward-proxy request (absolute-form
//! `GET http://host/path`) for `http://`, a CONNECT tunnel for `https://`, Basic and Digest
//! proxy authentication (chosen from the proxy's 407 with `--proxy-anyauth`), SOCKS4a/5/5h, with connections kept alive across a worker's items. It is
//! built from source into the binary (with OpenSSL), so that a plain `watchdog 5 cmd` does not pay
//! for loading a system libcurl's thirty-odd shared libraries at every start.
//! A worker process downloads one URL at a time, so libcurl's blocking nature costs nothing; the
//! transfer is driven from a multi handle only so that the caller can look at the response head before
//! the body, and take the body chunk by chunk (content checks, atomic output, progress lines).
//!
//! What stays here rather than in libcurl: redirects are followed one hop at a time, so that every hop
//! is checked the same way (only http and https targets, a proxy chosen for each hop's host,
//! credentials from the URL or an `Authorization`/`Cookie` header never sent to another host); the
//! host name the connection goes to is looked up by our resolver (a phase of its own, see `dns`); and
//! libcurl is never left to read proxy variables itself.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use curl::easy::{Auth, Easy2, Handler, List, WriteError};
use curl::multi::{Easy2Handle, Multi};

use watchdog::transport::{
    self, parse_header, resolve_entry, trust, DownloadOptions, FailureKind, FetchError, Header,
    LookupError, LookupResolver, Phase, Phases, ProxyAuth, ProxyEnv, ProxyKind, ProxySetting,
    Response, Target, Transport, Trust,
};

use super::transport_error::{
    body_failure, no_answer, proxy_answer_error, request_error, Facts, Route,
};

/// How much of a redirect's body is read to keep its connection reusable; larger bodies are dropped
/// with their connection.
const REDIRECT_BODY_LIMIT: u64 = 64 * 1024;

/// libcurl's receive buffer: larger than its 16 KiB default, so a fast transfer takes fewer rounds.
const RECEIVE_BUFFER: usize = 128 * 1024;

/// The longest wait for socket activity in one round; libcurl shortens it to its own timers.
const ROUND: Duration = Duration::from_secs(1);

/// The most body bytes the kernel is asked to gather on the socket before it wakes the worker (see
/// [`LowWater`]).
const LOW_WATER_MAX: u64 = 128 * 1024;

/// The longest wait in one round while the socket's low-water mark is raised: a body that trickles
/// in is still seen (and reported to a stall watch) at least this often.
const LOW_WATER_ROUND: Duration = Duration::from_millis(100);

/// libcurl's `CURLINFO_ACTIVESOCKET` (`CURLINFO_SOCKET + 44`), which curl-sys does not name.
const CURLINFO_ACTIVESOCKET: curl_sys::CURLINFO = 0x50_0000 + 44;

/// An HTTP client for many downloads: one libcurl multi handle (its connection pool and DNS cache)
/// and one easy handle, reused, with the options that do not change between downloads.
pub struct Client {
    multi: Multi,
    /// The easy handle between transfers (`None` while one is in flight, or after libcurl lost it).
    idle: RefCell<Option<Easy2<Collector>>>,
    trust: Trust,
    insecure: bool,
    connect_timeout: Option<Duration>,
    proxies: ProxyEnv,
    proxy_auth: ProxyAuth,
    headers: Vec<Header>,
    max_redirects: u32,
    resolver: LookupResolver,
    /// Where the resolver and the transfers report their phases.
    phases: Arc<Phases>,
}

/// The engine [`transport::install`] is given: a [`Client`] for a worker's downloads.
pub fn connect(options: &DownloadOptions) -> Result<Box<dyn Transport>, FetchError> {
    Ok(Box::new(Client::new(options)?))
}

impl Transport for Client {
    fn get<'c>(
        &'c self,
        target: &Target,
        range_from: Option<u64>,
    ) -> Result<transport::Answer<'c>, FetchError> {
        Ok(Box::new(Client::get(self, target, range_from)?))
    }

    fn phases(&self) -> &Phases {
        &self.phases
    }
}

impl Client {
    /// Fails on a malformed header or an unreadable `--cacert` (or `SSL_CERT_FILE`).
    pub fn new(options: &DownloadOptions) -> Result<Client, FetchError> {
        let headers = options
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let phases = Arc::new(Phases::default());
        Ok(Client {
            multi: Multi::new(),
            idle: RefCell::new(None),
            trust: trust(options.cacert.as_deref(), |name| std::env::var(name).ok())?,
            insecure: options.insecure,
            connect_timeout: options.connect_timeout,
            proxies: ProxyEnv::from_env(options.proxy.as_deref(), options.noproxy.as_deref()),
            proxy_auth: options.proxy_auth,
            headers,
            max_redirects: options.max_redirects,
            resolver: LookupResolver::new(Arc::clone(&phases)),
            phases,
        })
    }

    /// Sends a GET for `target` (with `Range: bytes=FROM-` when `range_from` is given) and follows
    /// redirects. Returns the first answer that is not a redirect, its head read, its body not yet.
    pub fn get(&self, start: &Target, range_from: Option<u64>) -> Result<Answer<'_>, FetchError> {
        let mut target = start.clone();
        let mut hops = 0;
        loop {
            let mut answer = self.send(&target, start, range_from)?;
            if let Some(err) = answer.proxy_refusal() {
                return Err(err);
            }
            let status = answer.status();
            let location = match answer.header("location") {
                Some(location) if matches!(status, 301 | 302 | 303 | 307 | 308) => {
                    location.to_string()
                }
                _ => return Ok(answer),
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
            if answer
                .content_length()
                .is_some_and(|n| n <= REDIRECT_BODY_LIMIT)
            {
                // Read to the end so the connection can carry the next hop.
                while let Ok(true) = answer.read_chunk(|_| Ok(())) {}
            }
            drop(answer);
            target = target.redirect(&location)?;
            hops += 1;
        }
    }

    fn send(
        &self,
        target: &Target,
        start: &Target,
        range_from: Option<u64>,
    ) -> Result<Answer<'_>, FetchError> {
        let proxy = self
            .proxies
            .proxy_for(target.scheme(), target.host(), target.port());
        let route = Route {
            origin: target.host_port(),
            origin_host: target.host().to_string(),
            https: target.scheme() == "https",
            proxy: match proxy {
                Some(setting) => Some((setting.clone(), setting.kind()?)),
                None => None,
            },
            proxy_auth: self.proxy_auth,
        };
        let mut easy = match self.idle.borrow_mut().take() {
            Some(easy) => easy,
            None => self.new_easy()?,
        };
        let resolve = self.look_up(target, proxy, &route)?;
        let configured = configure(
            &mut easy,
            target,
            route.proxy.as_ref(),
            self.proxy_auth,
            resolve,
            self.request_headers(target, start, range_from),
        );
        if let Err(e) = configured {
            *self.idle.borrow_mut() = Some(easy);
            return Err(FetchError::new(
                FailureKind::Usage,
                format!("cannot set up the request: {e}"),
            ));
        }
        let (first, first_port) = match &route.proxy {
            Some((setting, _)) => setting.host_port()?,
            None => (target.host().to_string(), target.port()),
        };
        easy.get_mut().begin(Hop {
            first: format!("{first}:{first_port}"),
            via_proxy: route.proxy.is_some(),
            tunnel: route.https && route.proxy.as_ref().is_some_and(|(_, k)| k.is_http()),
            origin: target.host_port(),
            origin_tls: route.https,
        });
        let handle = self.multi.add2(easy).map_err(|e| {
            FetchError::new(
                FailureKind::Connect,
                format!("cannot start the request to {}: {e}", target.host_port()),
            )
        })?;
        let mut answer = Answer {
            client: self,
            handle: Some(handle),
            head: Head::default(),
            done: None,
            facts: Facts::default(),
            received: 0,
            low_water: LowWater::Default,
            route,
        };
        answer.wait_for_head()?;
        Ok(answer)
    }

    /// A fresh easy handle with the options that hold for every transfer.
    fn new_easy(&self) -> Result<Easy2<Collector>, FetchError> {
        let mut easy = Easy2::new(Collector::new(Arc::clone(&self.phases)));
        let failed = |option: &str, e: curl::Error| {
            FetchError::new(
                FailureKind::Usage,
                format!("cannot set up libcurl: {option}: {e}"),
            )
        };
        easy.useragent(&format!("watchdog/{}", env!("CARGO_PKG_VERSION")))
            .map_err(|e| failed("user agent", e))?;
        easy.follow_location(false)
            .map_err(|e| failed("redirects", e))?;
        // The path goes as written (`..` and all), as before: a server may mean something by it.
        easy.path_as_is(true).map_err(|e| failed("path as is", e))?;
        easy.buffer_size(RECEIVE_BUFFER)
            .map_err(|e| failed("buffer size", e))?;
        if let Some(limit) = self.connect_timeout {
            easy.connect_timeout(limit)
                .map_err(|e| failed("--connect-timeout", e))?;
        }
        if let Some(file) = &self.trust.file {
            easy.cainfo(file).map_err(|e| failed("CA file", e))?;
            easy.proxy_cainfo(&file.to_string_lossy())
                .map_err(|e| failed("proxy CA file", e))?;
        }
        if let Some(blob) = &self.trust.blob {
            easy.ssl_cainfo_blob(blob)
                .map_err(|e| failed("CA certificates", e))?;
            easy.proxy_ssl_cainfo_blob(blob)
                .map_err(|e| failed("proxy CA certificates", e))?;
        }
        if let Some(dir) = &self.trust.dir {
            easy.capath(dir).map_err(|e| failed("CA directory", e))?;
            easy.proxy_capath(dir)
                .map_err(|e| failed("proxy CA directory", e))?;
        }
        if self.insecure {
            easy.ssl_verify_peer(false)
                .and_then(|()| easy.ssl_verify_host(false))
                .map_err(|e| failed("--insecure", e))?;
        }
        Ok(easy)
    }

    /// Looks up the host the connection goes to (the proxy, or the origin when there is none or the
    /// proxy wants an address), and returns the entries libcurl must be told of.
    fn look_up(
        &self,
        target: &Target,
        proxy: Option<&ProxySetting>,
        route: &Route,
    ) -> Result<Vec<String>, FetchError> {
        let mut entries = Vec::new();
        let mut hosts = Vec::new();
        if let Some((setting, kind)) = &route.proxy {
            let (host, port) = setting.host_port()?;
            hosts.push((host, port, true));
            if kind.resolves_origin_here() {
                hosts.push((target.host().to_string(), target.port(), false));
            }
        } else {
            hosts.push((target.host().to_string(), target.port(), false));
        }
        for (host, port, is_proxy) in hosts {
            match self
                .resolver
                .resolve(&host, port, is_proxy, self.connect_timeout)
            {
                Ok(Some(addrs)) => {
                    entries.push(resolve_entry(&host, port, &addrs));
                    // Past the look-up: what comes next is a new connection (whose phase lines say
                    // so) or a pooled one, on which the request goes out at once.
                    self.phases
                        .send(Phase::Request, Some(target.host_port()), false);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(lookup_error(
                        e,
                        &host,
                        port,
                        is_proxy.then_some(proxy).flatten(),
                    ))
                }
            }
        }
        Ok(entries)
    }

    /// The request's headers: `-H` ones (credentials only to the origin the user named), Basic auth
    /// from the URL's userinfo, and `Range` for a resumed download.
    fn request_headers(
        &self,
        target: &Target,
        start: &Target,
        range_from: Option<u64>,
    ) -> Vec<String> {
        let same_origin = target.same_origin(start);
        let mut lines = Vec::with_capacity(self.headers.len() + 2);
        let mut has_authorization = false;
        for header in &self.headers {
            let private = header.is("authorization") || header.is("cookie");
            if !same_origin && private {
                continue;
            }
            has_authorization |= header.is("authorization");
            lines.push(header.line());
        }
        if let Some(credentials) = target.credentials() {
            if !has_authorization {
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                lines.push(format!("Authorization: Basic {encoded}"));
            }
        }
        if let Some(from) = range_from {
            lines.push(format!("Range: bytes={from}-"));
        }
        // libcurl adds `Accept: */*` unless told otherwise; ureq, before it, did too.
        lines
    }
}

/// The per-transfer options [`configure`] last set on an easy handle. libcurl keeps options from one
/// transfer to the next, so those that did not change (for a batch worker: the proxy, and the
/// headers, from one item to the next) are not set again.
#[derive(Debug, Default, PartialEq)]
struct Applied {
    proxy: Option<String>,
    headers: Vec<String>,
}

/// Sets the per-transfer options of `easy`: the URL, its proxy (or none: libcurl must not read the
/// environment), proxy authentication, addresses looked up, headers.
fn configure(
    easy: &mut Easy2<Collector>,
    target: &Target,
    proxy: Option<&(ProxySetting, ProxyKind)>,
    auth: ProxyAuth,
    resolve: Vec<String>,
    headers: Vec<String>,
) -> Result<(), curl::Error> {
    // Whatever fails below leaves the handle's options unknown: all are set next time.
    let applied = easy.get_mut().applied.take();
    easy.url(&target.uri.to_string())?;
    let proxy_url = proxy.map(|(setting, _)| setting.url.as_str());
    if applied.as_ref().map(|a| a.proxy.as_deref()) != Some(proxy_url) {
        match proxy {
            Some((setting, _)) => {
                easy.proxy(&setting.url)?;
                let mut methods = Auth::new();
                match auth {
                    ProxyAuth::Basic => methods.basic(true),
                    ProxyAuth::Digest => methods.digest(true),
                    ProxyAuth::Ntlm => methods.ntlm(true),
                    ProxyAuth::Any => methods.auto(true),
                };
                easy.proxy_auth(&methods)?;
            }
            None => easy.proxy("")?,
        }
        // Set, even empty: unset, libcurl would read NO_PROXY itself and bypass the proxy chosen
        // here.
        easy.noproxy("")?;
    }
    if !resolve.is_empty() {
        let mut list = List::new();
        for entry in resolve {
            list.append(&entry)?;
        }
        easy.resolve(list)?;
    }
    if applied.as_ref().map(|a| &a.headers) != Some(&headers) {
        let mut list = List::new();
        for line in &headers {
            list.append(line)?;
        }
        easy.http_headers(list)?;
    }
    easy.get_mut().applied = Some(Applied {
        proxy: proxy_url.map(str::to_string),
        headers,
    });
    Ok(())
}

fn lookup_error(
    err: LookupError,
    host: &str,
    port: u16,
    proxy: Option<&ProxySetting>,
) -> FetchError {
    let why = match err {
        LookupError::NotFound => "no such host",
        LookupError::TimedOut => "no answer within --connect-timeout",
    };
    match proxy {
        Some(setting) => FetchError::new(
            FailureKind::Proxy,
            format!(
                "cannot resolve the proxy's host '{host}' ({why}) of proxy {}; check the proxy setting",
                setting.shown()
            ),
        ),
        None => FetchError::new(
            FailureKind::Dns,
            format!(
                "cannot resolve host '{host}' ({why}, for port {port}); check the host name and your DNS settings"
            ),
        ),
    }
}

/// One response head: its status and header lines (names in lowercase).
#[derive(Debug, Clone, Default)]
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    complete: bool,
    /// The proxy's answer to CONNECT, not the origin's.
    connect: bool,
}

impl Head {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a transfer goes first, for its phase lines.
#[derive(Debug, Clone, Default)]
struct Hop {
    /// `host:port` of the first connection: the proxy, or the origin.
    first: String,
    via_proxy: bool,
    /// An https origin through an HTTP proxy: the proxy's answer to CONNECT comes first.
    tunnel: bool,
    origin: String,
    origin_tls: bool,
}

/// libcurl's callbacks for one transfer: the header blocks and body bytes received, and whether a
/// new connection was opened (for phase lines).
struct Collector {
    heads: Vec<Head>,
    body: Vec<u8>,
    phases: Arc<Phases>,
    hop: Hop,
    opened: bool,
    /// The sockets opened for this transfer (several while connection attempts race).
    sockets: Vec<std::os::fd::RawFd>,
    sent_tls: bool,
    sent_request: bool,
    /// The proxy answered CONNECT with 2xx: the heads that follow are the origin's.
    tunnel_open: bool,
    /// What the handle was last configured with (see [`Applied`]).
    applied: Option<Applied>,
}

impl Collector {
    fn new(phases: Arc<Phases>) -> Collector {
        Collector {
            heads: Vec::new(),
            body: Vec::new(),
            phases,
            hop: Hop::default(),
            opened: false,
            sockets: Vec::new(),
            sent_tls: false,
            sent_request: false,
            tunnel_open: false,
            applied: None,
        }
    }

    /// Forgets the previous transfer.
    fn begin(&mut self, hop: Hop) {
        self.heads.clear();
        self.body.clear();
        self.hop = hop;
        self.opened = false;
        self.sockets.clear();
        self.sent_tls = false;
        self.sent_request = false;
        self.tunnel_open = false;
    }

    fn send(&mut self, phase: Phase, proxy: bool) {
        let host = if proxy {
            self.hop.first.clone()
        } else {
            self.hop.origin.clone()
        };
        self.phases.send(phase, Some(host), proxy);
    }
}

/// libcurl's own socket opening, which [`Collector`] wraps.
struct PlainSockets;

impl Handler for PlainSockets {}

impl Handler for Collector {
    fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn header(&mut self, data: &[u8]) -> bool {
        let line = String::from_utf8_lossy(data);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.starts_with("HTTP/") {
            let status = line
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            self.heads.push(Head {
                status,
                // A tunnel is set up on a new connection only; a pooled one is already open.
                connect: self.hop.tunnel && self.opened && !self.tunnel_open,
                ..Head::default()
            });
        } else if let Some(head) = self.heads.last_mut().filter(|h| !h.complete) {
            if line.is_empty() {
                head.complete = true;
                if head.connect && (200..300).contains(&head.status) {
                    self.tunnel_open = true;
                }
            } else if let Some((name, value)) = line.split_once(':') {
                head.headers
                    .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        true
    }

    fn open_socket(
        &mut self,
        family: std::os::raw::c_int,
        socktype: std::os::raw::c_int,
        protocol: std::os::raw::c_int,
    ) -> Option<curl_sys::curl_socket_t> {
        if !self.opened {
            self.opened = true;
            let via_proxy = self.hop.via_proxy;
            self.send(Phase::Connecting, via_proxy);
        }
        let socket = PlainSockets.open_socket(family, socktype, protocol);
        self.sockets.extend(socket);
        socket
    }
}

/// Why reading a body stopped: the caller's sink refused the bytes, or the transfer failed (see
/// `transport_error::body_failure`).
pub enum ReadFailure {
    Sink(FetchError),
    Transfer(curl::Error),
}

/// An answer whose head has arrived; its body is read with [`Answer::read_chunk`]. Dropping it before
/// the end of the body closes its connection.
pub struct Answer<'c> {
    client: &'c Client,
    handle: Option<Easy2Handle<Collector>>,
    head: Head,
    /// The transfer's result, once libcurl has finished it.
    done: Option<Result<(), curl::Error>>,
    facts: Facts,
    route: Route,
    /// Body bytes handed to the caller so far.
    received: u64,
    low_water: LowWater,
}

/// The socket's low-water mark (`SO_RCVLOWAT`) while a body arrives in pieces. A proxy relays a body
/// in many small writes, and a worker woken for each of them paid a wake-up, a `select` and a few
/// `recv`s per piece (eight or nine per 50 KB item through Squid). Once the first piece is in and
/// the rest of the body is known (a `Content-Length`, plain HTTP to the socket), the kernel is asked
/// to wake the worker only when the rest (up to [`LOW_WATER_MAX`]) is there. It can never wait for
/// bytes that will not come: the mark is at most what the server still owes (lowered as the end
/// nears), an end of stream or an error wakes the worker anyway, each round is cut to
/// [`LOW_WATER_ROUND`], and the mark goes back to 1 when the body ends, before the connection carries
/// another request.
#[derive(Debug, Default)]
enum LowWater {
    /// Not raised yet.
    #[default]
    Default,
    /// Raised on this socket, to this many bytes.
    Raised(std::os::fd::RawFd, u64),
    /// Not for this transfer (TLS, no length, or the socket would not take it), or already reset.
    Off,
}

impl Answer<'_> {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.get(name)
    }

    /// The body's length, from `Content-Length` (absent with a transfer coding).
    pub fn content_length(&self) -> Option<u64> {
        if self.header("transfer-encoding").is_some() {
            return None;
        }
        self.header("content-length")?.trim().parse().ok()
    }

    /// Hands the body bytes received so far to `sink`, waiting for some if there are none. Returns
    /// `Ok(false)` at the end of the body.
    pub fn read_chunk(
        &mut self,
        mut sink: impl FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<bool, ReadFailure> {
        loop {
            let Some(handle) = self.handle.as_mut() else {
                return Ok(false);
            };
            if !handle.get_ref().body.is_empty() {
                let mut bytes = std::mem::take(&mut handle.get_mut().body);
                let fed = sink(&bytes);
                self.received += bytes.len() as u64;
                bytes.clear();
                handle.get_mut().body = bytes;
                fed.map_err(ReadFailure::Sink)?;
                if self.done.is_none() {
                    self.set_low_water();
                }
                return Ok(true);
            }
            if self.done.is_some() {
                self.reset_low_water();
            }
            if let Some(result) = &self.done {
                return match result {
                    Ok(()) => Ok(false),
                    Err(e) => Err(ReadFailure::Transfer(e.clone())),
                };
            }
            self.round(Some(ROUND)).map_err(ReadFailure::Sink)?;
        }
    }

    /// Drives the transfer until body bytes are ready for [`Answer::read_chunk`], the transfer has
    /// ended, or `until` has passed; returns `false` in the last case. Waiting costs what
    /// `read_chunk`'s own wait would: the poll's timeout is only shorter.
    pub fn body_ready_by(&mut self, until: Instant) -> Result<bool, FetchError> {
        loop {
            match &self.handle {
                Some(handle) if handle.get_ref().body.is_empty() && self.done.is_none() => {}
                _ => return Ok(true),
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.round(Some(left.min(ROUND)))?;
        }
    }

    /// Sets the socket's low-water mark to the rest of the body (see [`LowWater`]): raises it after
    /// the first piece, lowers it when less than the mark is still owed.
    fn set_low_water(&mut self) {
        let rest = |length: u64| length.saturating_sub(self.received).min(LOW_WATER_MAX);
        match (&self.low_water, self.content_length()) {
            (LowWater::Raised(socket, mark), Some(length)) if rest(length) < *mark => {
                let (socket, rest) = (*socket, rest(length).max(1));
                set_low_water(socket, rest as libc::c_int);
                self.low_water = LowWater::Raised(socket, rest);
                return;
            }
            (LowWater::Default, _) => {}
            _ => return,
        }
        self.low_water = LowWater::Off;
        let tls = self.route.https
            || matches!(&self.route.proxy, Some((_, kind)) if matches!(kind, ProxyKind::Https));
        let (Some(length), Some(handle), false) = (self.content_length(), &self.handle, tls) else {
            return;
        };
        let rest = rest(length);
        if rest <= 1 {
            return;
        }
        let mut socket: curl_sys::curl_socket_t = -1;
        // SAFETY: CURLINFO_ACTIVESOCKET writes one curl_socket_t through the pointer, which points
        // at a live local of that type; the handle is a live easy handle of this multi handle.
        let got = unsafe {
            curl_sys::curl_easy_getinfo(
                handle.raw(),
                CURLINFO_ACTIVESOCKET,
                &mut socket as *mut curl_sys::curl_socket_t,
            )
        };
        if got != curl_sys::CURLE_OK || socket < 0 {
            return;
        }
        if set_low_water(socket, rest as libc::c_int) {
            self.low_water = LowWater::Raised(socket, rest);
        }
    }

    /// Puts the socket's low-water mark back to 1 (the default), if it was raised.
    fn reset_low_water(&mut self) {
        if let LowWater::Raised(socket, _) = self.low_water {
            set_low_water(socket, 1);
        }
        self.low_water = LowWater::Off;
    }

    /// One round of the transfer: wait for the sockets (up to `wait`), let libcurl work, note its end.
    fn round(&mut self, wait: Option<Duration>) -> Result<(), FetchError> {
        let multi = &self.client.multi;
        let broken = |e: curl::MultiError| {
            FetchError::new(FailureKind::Connect, format!("libcurl failed: {e}"))
        };
        let wait = match self.low_water {
            LowWater::Raised(..) => wait.map(|w| w.min(LOW_WATER_ROUND)),
            _ => wait,
        };
        if let Some(wait) = wait {
            multi.wait(&mut [], wait).map_err(broken)?;
        }
        multi.perform().map_err(broken)?;
        if let Some(handle) = &self.handle {
            let mut finished = None;
            multi.messages(|message| {
                if let Some(result) = message.result_for2(handle) {
                    finished = Some(result);
                }
            });
            if finished.is_some() {
                self.done = finished;
            }
        }
        Ok(())
    }

    /// Drives the transfer until the final response head is in, sending phase lines as the new
    /// connection (if any) gets further.
    fn wait_for_head(&mut self) -> Result<(), FetchError> {
        let mut wait = false;
        loop {
            self.round(wait.then_some(ROUND))?;
            wait = true;
            let Some(handle) = self.handle.as_mut() else {
                return Err(FetchError::new(
                    FailureKind::Connect,
                    "the transfer was lost",
                ));
            };
            self.facts = facts(handle);
            let final_head = final_head(handle, self.done.is_some());
            if let Some(head) = final_head {
                let collector = handle.get_mut();
                if collector.opened && !collector.sent_request {
                    collector.sent_request = true;
                    collector.send(Phase::Request, false);
                }
                self.head = head;
                return Ok(());
            }
            if let Some(Err(e)) = &self.done {
                return Err(request_error(e, &self.facts, &self.route));
            }
            if self.done.is_some() {
                return Err(no_answer(&self.facts, &self.route));
            }
            update_phases(handle, &self.facts);
        }
    }

    /// The error for an answer the proxy gave in the origin's place (through a forward proxy), if
    /// this is one.
    fn proxy_refusal(&self) -> Option<FetchError> {
        proxy_answer_error(&self.head, &self.facts, &self.route)
    }
}

impl Response for Answer<'_> {
    fn status(&self) -> u16 {
        Answer::status(self)
    }

    fn header(&self, name: &str) -> Option<&str> {
        Answer::header(self, name)
    }

    fn content_length(&self) -> Option<u64> {
        Answer::content_length(self)
    }

    fn read_into(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<bool, transport::ReadFailure> {
        self.read_chunk(sink).map_err(|failure| match failure {
            ReadFailure::Sink(e) => transport::ReadFailure::Sink(e),
            ReadFailure::Transfer(e) => transport::ReadFailure::Transfer(body_failure(&e)),
        })
    }

    fn body_ready_by(&mut self, until: Instant) -> Result<bool, FetchError> {
        Answer::body_ready_by(self, until)
    }
}

impl Drop for Answer<'_> {
    fn drop(&mut self) {
        self.reset_low_water();
        if let Some(handle) = self.handle.take() {
            // Removing an unfinished transfer closes its connection; a finished one goes back to
            // the pool.
            if let Ok(easy) = self.client.multi.remove2(handle) {
                *self.client.idle.borrow_mut() = Some(easy);
            }
        }
    }
}

/// What the error translation needs to know of the transfer so far.
fn facts(handle: &Easy2Handle<Collector>) -> Facts {
    let collector = handle.get_ref();
    let since = |t: Result<Duration, curl::Error>| t.is_ok_and(|t| t > Duration::ZERO);
    let proxy_auth_head = collector.heads.iter().rev().find(|h| h.status == 407);
    Facts {
        connected: since(handle.connect_time())
            || collector.sockets.iter().any(|&fd| is_connected(fd)),
        tls_done: since(handle.appconnect_time()),
        connect_status: handle
            .http_connectcode()
            .ok()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        tunnel_answered: collector.tunnel_open,
        proxy_offers: proxy_auth_head
            .map(|h| {
                h.headers
                    .iter()
                    .filter(|(n, _)| n == "proxy-authenticate")
                    .filter_map(|(_, v)| v.split_whitespace().next())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Sets `SO_RCVLOWAT` of `socket` to `bytes`; false if the socket would not take it.
fn set_low_water(socket: curl_sys::curl_socket_t, bytes: libc::c_int) -> bool {
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local; a descriptor that is no
    // socket (or closed) makes it fail, which is reported and changes nothing.
    unsafe {
        libc::setsockopt(
            socket,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            &bytes as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// True when `fd` is a connected socket. libcurl's connect time is set only once the whole
/// connection is up (TLS included), so the TCP handshake is told by the socket itself.
fn is_connected(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: getpeername only writes into `addr` (of the size given in `len`); a descriptor that is
    // closed or not a socket makes it fail, which reads as "not connected".
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        libc::getpeername(
            fd,
            &mut addr as *mut libc::sockaddr_storage as *mut libc::sockaddr,
            &mut len,
        ) == 0
    }
}

/// The final response head, once it is known: the last complete head when body bytes arrived or the
/// transfer ended, or earlier a complete head that libcurl took as the answer (its status is the
/// response code; a CONNECT answer leaves that 0, a 407 may be followed by another try).
fn final_head(handle: &Easy2Handle<Collector>, ended: bool) -> Option<Head> {
    let collector = handle.get_ref();
    let last = collector
        .heads
        .iter()
        .rev()
        .find(|h| h.complete && !h.connect)?;
    if ended || !collector.body.is_empty() {
        return Some(last.clone());
    }
    let code = handle.response_code().unwrap_or(0);
    (last.status >= 200 && last.status != 407 && u32::from(last.status) == code)
        .then(|| last.clone())
}

/// Sends the phase lines of a new connection as it gets further: the TLS handshake with the origin
/// once connected (and, through an HTTP proxy, once the proxy answered CONNECT), then the request.
fn update_phases(handle: &mut Easy2Handle<Collector>, facts: &Facts) {
    let collector = handle.get_mut();
    if !collector.opened || collector.sent_request || !facts.connected {
        return;
    }
    if collector.hop.tunnel && !facts.tunnel_answered {
        return;
    }
    if collector.hop.origin_tls && !facts.tls_done {
        if !collector.sent_tls {
            collector.sent_tls = true;
            collector.send(Phase::Tls, false);
        }
        return;
    }
    collector.sent_request = true;
    collector.send(Phase::Request, false);
}
