//! libcurl's errors, and a proxy's own answers, translated into [`FailureKind`]s with messages that
//! name what failed and what to do.
//!
//! Kept apart from the client because the translation is long and is the same for every request and
//! every body read: one place decides which failure is `dns`, `connect`, `tls`, `proxy`, `protocol`
//! or `truncated`. The proxy's part is told from the origin's by where the transfer had got to: a
//! forward-proxy request only ever talks to the proxy, a tunnel is the proxy's until it answered
//! CONNECT, and a SOCKS connection until it is connected.

use watchdog::transport::{
    BodyFailure, FailureKind, FetchError, ProxyAuth, ProxyKind, ProxySetting,
};

use super::http::Head;

/// Where a request goes: the origin, and the proxy on the way if there is one.
#[derive(Debug, Clone)]
pub(super) struct Route {
    /// `host:port` of the origin.
    pub(super) origin: String,
    pub(super) origin_host: String,
    pub(super) https: bool,
    pub(super) proxy: Option<(ProxySetting, ProxyKind)>,
    pub(super) proxy_auth: ProxyAuth,
}

impl Route {
    /// A forward-proxy request: an `http://` URL through an HTTP proxy, which answers for the origin.
    fn forwarded(&self) -> bool {
        !self.https && self.proxy.as_ref().is_some_and(|(_, kind)| kind.is_http())
    }
}

/// How far a transfer got, from libcurl's timings and the heads received.
#[derive(Debug, Clone, Default)]
pub(super) struct Facts {
    /// The TCP connection (to the proxy, if any) was made.
    pub(super) connected: bool,
    /// The TLS handshake finished.
    pub(super) tls_done: bool,
    /// The proxy's status for CONNECT (0 when there was none).
    pub(super) connect_status: u16,
    /// The proxy answered CONNECT.
    pub(super) tunnel_answered: bool,
    /// The schemes of the last 407's `Proxy-Authenticate` headers.
    pub(super) proxy_offers: Vec<String>,
}

/// CURLE_WEIRD_SERVER_REPLY: the answer is not HTTP.
const WEIRD_SERVER_REPLY: curl_sys::CURLcode = 8;
/// CURLE_PROXY: the proxy's handshake failed (SOCKS: refused, or could not reach the origin).
const PROXY_HANDSHAKE: curl_sys::CURLcode = 97;

const TLS_HINT: &str = "; if the server uses a private CA, pass it with --cacert FILE (or skip verification with --insecure)";
/// The same through a proxy, which may be the one whose certificate was refused.
const TLS_PROXY_HINT: &str = "; a proxy that intercepts TLS shows certificates signed by its own CA: pass that CA (or the server's private CA) with --cacert FILE (or skip verification with --insecure)";

/// Translates an error from connecting, sending or receiving the response head.
pub(super) fn request_error(err: &curl::Error, facts: &Facts, route: &Route) -> FetchError {
    if let Some((setting, kind)) = &route.proxy {
        if let Some(error) = proxy_error(err, facts, route, setting, *kind) {
            return error;
        }
    }
    let via = route
        .proxy
        .as_ref()
        .map(|(setting, _)| format!(" via proxy {}", setting.shown()))
        .unwrap_or_default();
    let host = &route.origin;
    let why = detail(err);
    let (kind, message) = if err.is_couldnt_resolve_host() {
        (
            FailureKind::Dns,
            format!(
                "cannot resolve host '{}'{via}; check the host name and your DNS settings",
                route.origin_host
            ),
        )
    } else if err.is_operation_timedout() && !facts.connected {
        (
            FailureKind::Connect,
            format!("cannot connect to {host}{via} within --connect-timeout; is the server up?"),
        )
    } else if err.is_couldnt_connect() {
        (
            FailureKind::Connect,
            format!("cannot connect to {host}{via} ({why}); is the server up?"),
        )
    } else if err.is_peer_failed_verification()
        || err.is_ssl_cacert()
        || err.is_ssl_certproblem()
        || err.is_ssl_issuer_error()
    {
        let hint = if route.proxy.is_some() {
            TLS_PROXY_HINT
        } else {
            TLS_HINT
        };
        (
            FailureKind::Tls,
            format!("TLS with {host}{via} failed: {why}{hint}"),
        )
    } else if err.is_ssl_connect_error() || err.is_ssl_cipher() || err.is_use_ssl_failed() {
        let hint = if why.contains("wrong version number") || why.contains("packet length too long")
        {
            "; the server does not speak TLS there (is it a plain http:// server?)"
        } else {
            ""
        };
        (
            FailureKind::Tls,
            format!("TLS with {host} failed: {why}{hint}"),
        )
    } else if err.is_got_nothing() || err.is_recv_error() || err.is_send_error() {
        if route.https && !facts.tls_done {
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
    } else if (err.code() == WEIRD_SERVER_REPLY || err.is_unsupported_protocol())
        || err.is_http2_error()
        || err.is_http2_stream_error()
    {
        (
            FailureKind::Protocol,
            format!("the answer from {host} is not valid HTTP: {why}"),
        )
    } else if err.is_url_malformed() {
        (FailureKind::InvalidUrl, format!("invalid URL: {why}"))
    } else {
        (
            FailureKind::Connect,
            format!("request to {host}{via} failed: {why}"),
        )
    };
    FetchError::new(kind, message)
}

/// The error for a transfer that ended without a complete response head.
pub(super) fn no_answer(facts: &Facts, route: &Route) -> FetchError {
    match &route.proxy {
        Some((setting, kind))
            if route.forwarded() || (kind.is_http() && !facts.tunnel_answered) =>
        {
            FetchError::new(
                FailureKind::Proxy,
                format!(
                    "proxy {} closed the connection without a complete answer",
                    setting.shown()
                ),
            )
        }
        _ => FetchError::new(
            FailureKind::Protocol,
            format!("{} closed the connection without answering", route.origin),
        ),
    }
}

/// The error when it is the proxy's doing, else `None`.
fn proxy_error(
    err: &curl::Error,
    facts: &Facts,
    route: &Route,
    setting: &ProxySetting,
    kind: ProxyKind,
) -> Option<FetchError> {
    let proxy = setting.shown();
    let why = detail(err);
    let fail = |message: String| Some(FetchError::new(FailureKind::Proxy, message));
    if err.is_couldnt_resolve_proxy() {
        return fail(format!(
            "cannot resolve the host of proxy {proxy}; check the proxy setting"
        ));
    }
    if facts.connect_status >= 300 {
        let status = facts.connect_status;
        let message = refusal(status, &proxy, &route.origin, facts, route, setting);
        return Some(FetchError::new(FailureKind::Proxy, message).with_status(status));
    }
    if !facts.connected && (err.is_couldnt_connect() || err.is_operation_timedout()) {
        let when = if err.is_operation_timedout() {
            " within --connect-timeout".to_string()
        } else {
            format!(" ({why})")
        };
        return fail(format!(
            "cannot connect to proxy {proxy}{when}; is the proxy running, and is the setting right?"
        ));
    }
    if err.code() == PROXY_HANDSHAKE {
        return fail(format!(
            "proxy {proxy} failed the request to {}: {why}",
            route.origin
        ));
    }
    let with_proxy = route.forwarded()
        || (kind.is_http() && !facts.tunnel_answered)
        || (!kind.is_http() && !facts.connected);
    if with_proxy {
        if err.is_got_nothing() || err.is_recv_error() || err.is_send_error() {
            return fail(format!(
                "proxy {proxy} closed the connection without answering ({why})"
            ));
        }
        if (err.code() == WEIRD_SERVER_REPLY || err.is_unsupported_protocol())
            || err.is_couldnt_connect()
        {
            return fail(format!(
                "proxy {proxy} did not answer as an HTTP proxy: {why}"
            ));
        }
        if err.is_operation_timedout() {
            return fail(format!(
                "proxy {proxy} did not answer within --connect-timeout"
            ));
        }
    }
    None
}

/// What a proxy's refusal with `status` means, for a tunnel or a forwarded request to `origin`.
fn refusal(
    status: u16,
    proxy: &str,
    origin: &str,
    facts: &Facts,
    route: &Route,
    setting: &ProxySetting,
) -> String {
    match status {
        407 => {
            let offered = if facts.proxy_offers.is_empty() {
                "it named no scheme".to_string()
            } else {
                format!("it offers {}", facts.proxy_offers.join(", "))
            };
            let tried = if !setting.has_credentials() {
                "watchdog sent no credentials: put them in the proxy URL (http://USER:PASSWORD@HOST:PORT)".to_string()
            } else if route.proxy_auth == ProxyAuth::Any {
                "watchdog tried the schemes it offers (--proxy-anyauth) and the credentials were refused: check the user name and password".to_string()
            } else if !facts.proxy_offers.is_empty()
                && !facts
                    .proxy_offers
                    .iter()
                    .any(|offer| offer.eq_ignore_ascii_case(route.proxy_auth.name()))
            {
                format!(
                    "watchdog tried {}, which it does not offer: choose one it offers with --proxy-digest, --proxy-ntlm or --proxy-anyauth",
                    route.proxy_auth.name()
                )
            } else {
                format!(
                    "watchdog tried {} and was refused: check the user name and password, or choose the scheme it offers with --proxy-digest, --proxy-ntlm or --proxy-anyauth",
                    route.proxy_auth.name()
                )
            };
            format!("proxy {proxy} demands authentication (407) for {origin}: {offered}; {tried}")
        }
        403 => format!(
            "proxy {proxy} refused the request to {origin} (403 Forbidden): its rules do not allow it; ask the proxy's administrators, or bypass it with --noproxy"
        ),
        502..=504 => format!(
            "proxy {proxy} could not reach {origin} ({status}); it may recover, try again later"
        ),
        _ => format!("proxy {proxy} refused the request to {origin} ({status})"),
    }
}

/// Through a forward proxy, an answer the proxy gave itself (a 407, or an error page it marks as its
/// own with `X-Squid-Error` or `Proxy-Status`) is the proxy's failure, not the origin's.
pub(super) fn proxy_answer_error(head: &Head, facts: &Facts, route: &Route) -> Option<FetchError> {
    let (setting, _) = route.proxy.as_ref()?;
    if !route.forwarded() {
        return None;
    }
    let status = head.status;
    let marked = head.get("x-squid-error").or(head.get("proxy-status"));
    if status != 407 && (status < 400 || marked.is_none()) {
        return None;
    }
    let mut facts = facts.clone();
    if status == 407 {
        facts.proxy_offers = head
            .headers
            .iter()
            .filter(|(n, _)| n == "proxy-authenticate")
            .filter_map(|(_, v)| v.split_whitespace().next())
            .map(str::to_string)
            .collect();
    }
    let mut message = refusal(
        status,
        &setting.shown(),
        &route.origin,
        &facts,
        route,
        setting,
    );
    if let Some(marker) = marked.filter(|_| status != 407) {
        message.push_str(&format!(" [{}]", marker.trim()));
    }
    Some(FetchError::new(FailureKind::Proxy, message).with_status(status))
}

/// An error while reading the body, for the library's message (`transport::body_error`).
pub(super) fn body_failure(err: &curl::Error) -> BodyFailure {
    let detail = detail(err);
    BodyFailure {
        malformed: err.is_bad_content_encoding() || detail.contains("chunk"),
        detail,
    }
}

/// libcurl's own words for an error: its error buffer when it filled it, else the code's description.
fn detail(err: &curl::Error) -> String {
    err.extra_description()
        .unwrap_or_else(|| err.description())
        .trim_end_matches('.')
        .to_string()
}
