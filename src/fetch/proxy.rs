//! Which proxy a request goes through, decided the way curl decides it.
//!
//! People copy their proxy settings between curl, wget and us, so the rules here follow curl: `-x URL`
//! first (`-x ""` means no proxy at all), else a proxy per scheme (`http_proxy`, `https_proxy`, then
//! `all_proxy`, lowercase before uppercase); `--noproxy LIST` first, else `NO_PROXY`, a list of host
//! names, domains, IP literals, CIDR ranges and `host:port` entries. The choice is made here, for
//! every hop of a redirect chain (each hop can go to another host), and libcurl is told the one proxy
//! of that hop, never left to read the environment itself.

use std::net::IpAddr;

use super::error::{FailureKind, FetchError};
use crate::redact::redact_credentials;
use crate::url_parts::UrlParts;

/// The proxy settings: the command line's, then the environment's.
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    /// `-x URL`; `Some(None)` is `-x ""`, no proxy for any request.
    explicit: Option<Option<ProxySetting>>,
    http: Option<ProxySetting>,
    https: Option<ProxySetting>,
    all: Option<ProxySetting>,
    no_proxy: NoProxy,
}

/// One proxy URL and where it came from (a variable, or `-x`, for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySetting {
    pub variable: &'static str,
    pub url: String,
}

/// The kinds of proxy libcurl speaks to, named by the proxy URL's scheme (none means `http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// Forward requests for `http://`, CONNECT tunnels for `https://`.
    Http,
    /// The same, over TLS to the proxy.
    Https,
    /// SOCKS4: the origin's name is resolved here.
    Socks4,
    /// SOCKS4a: the proxy resolves the origin's name.
    Socks4a,
    /// SOCKS5: the origin's name is resolved here.
    Socks5,
    /// SOCKS5 with the name resolved by the proxy.
    Socks5h,
}

impl ProxyKind {
    /// True when watchdog looks up the origin's name itself (and tells the proxy its address).
    pub fn resolves_origin_here(self) -> bool {
        matches!(self, ProxyKind::Socks4 | ProxyKind::Socks5)
    }

    /// True for an HTTP proxy (plain or over TLS), which answers in HTTP itself.
    pub fn is_http(self) -> bool {
        matches!(self, ProxyKind::Http | ProxyKind::Https)
    }
}

impl ProxySetting {
    /// The URL as given, or `http://` before one without a scheme (curl's default), so that it
    /// always parses (and redacts) as a URL.
    fn new(variable: &'static str, url: &str) -> ProxySetting {
        let url = url.trim();
        let url = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        ProxySetting { variable, url }
    }

    /// The URL with its credentials hidden, and where it came from: for messages.
    pub fn shown(&self) -> String {
        format!("{} (from {})", redact_credentials(&self.url), self.variable)
    }

    /// The proxy's kind, or a usage error naming the setting for a scheme libcurl cannot use as a
    /// proxy.
    pub fn kind(&self) -> Result<ProxyKind, FetchError> {
        let scheme = UrlParts::split(&self.url)
            .scheme
            .unwrap_or("http")
            .to_ascii_lowercase();
        Ok(match scheme.as_str() {
            "http" => ProxyKind::Http,
            "https" => ProxyKind::Https,
            "socks4" => ProxyKind::Socks4,
            "socks4a" => ProxyKind::Socks4a,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            other => {
                return Err(FetchError::new(
                    FailureKind::Usage,
                    format!(
                        "proxy {} = {}: '{other}' proxies are not supported; use http://, https://, socks4://, socks4a://, socks5:// or socks5h://",
                        self.variable,
                        redact_credentials(&self.url)
                    ),
                ))
            }
        })
    }

    /// The proxy's host (as written, IPv6 in brackets) and port (curl's default 1080 for SOCKS,
    /// 443 for https, else 1080 too: curl's default proxy port).
    pub fn host_port(&self) -> Result<(String, u16), FetchError> {
        let kind = self.kind()?;
        let bad = |why: &str| {
            FetchError::new(
                FailureKind::Usage,
                format!(
                    "proxy {} = {}: {why}; expected SCHEME://[USER:PASSWORD@]HOST:PORT",
                    self.variable,
                    redact_credentials(&self.url)
                ),
            )
        };
        let parts = UrlParts::split(&self.url);
        let (host, port) = parts
            .host_and_port()
            .map_err(|_| bad("not a valid host and port"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(port) => port.parse::<u16>().map_err(|_| bad("not a valid port"))?,
            None if kind == ProxyKind::Https => 443,
            None => 1080,
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_ascii_lowercase()
        };
        Ok((host, port))
    }

    /// True when the URL carries a user name (and perhaps a password) for the proxy.
    pub fn has_credentials(&self) -> bool {
        UrlParts::split(&self.url).userinfo.is_some()
    }
}

impl ProxyEnv {
    /// Reads the process environment, under the command line's `-x` and `--noproxy`.
    pub fn from_env(proxy: Option<&str>, noproxy: Option<&str>) -> ProxyEnv {
        ProxyEnv::from_lookup(|name| std::env::var(name).ok()).with_command_line(proxy, noproxy)
    }

    /// `-x URL` wins over every variable (`-x ""` turns proxies off); `--noproxy LIST` over
    /// `NO_PROXY`.
    pub fn with_command_line(mut self, proxy: Option<&str>, noproxy: Option<&str>) -> ProxyEnv {
        if let Some(url) = proxy {
            self.explicit =
                Some((!url.trim().is_empty()).then(|| ProxySetting::new("-x/--proxy", url)));
        }
        if let Some(list) = noproxy {
            self.no_proxy = NoProxy::parse(list);
        }
        self
    }

    /// Reads settings through `lookup` (the environment, or a table in tests). Empty values count as
    /// unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let get = |lower: &'static str, upper: &'static str| {
            [lower, upper].into_iter().find_map(|variable| {
                lookup(variable)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(|url| ProxySetting::new(variable, &url))
            })
        };
        let no_proxy = ["no_proxy", "NO_PROXY"]
            .into_iter()
            .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
            .map(|list| NoProxy::parse(&list))
            .unwrap_or_default();
        ProxyEnv {
            http: get("http_proxy", "HTTP_PROXY"),
            https: get("https_proxy", "HTTPS_PROXY"),
            all: get("all_proxy", "ALL_PROXY"),
            no_proxy,
            explicit: None,
        }
    }

    /// The proxy for a request to `scheme://host:port`, or `None` to connect directly.
    pub fn proxy_for(&self, scheme: &str, host: &str, port: u16) -> Option<&ProxySetting> {
        let setting = match &self.explicit {
            Some(explicit) => explicit.as_ref()?,
            None => {
                let specific = match scheme {
                    "http" => self.http.as_ref(),
                    "https" => self.https.as_ref(),
                    _ => None,
                };
                specific.or(self.all.as_ref())?
            }
        };
        if self.no_proxy.matches(host, port) {
            None
        } else {
            Some(setting)
        }
    }
}

/// A parsed NO_PROXY list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `*`: no request uses a proxy.
    All,
    /// A host name; matches itself and every subdomain.
    Domain { name: String, port: Option<u16> },
    /// An IP literal; matches only that address.
    Ip { addr: IpAddr, port: Option<u16> },
    /// An address range such as 10.0.0.0/8.
    Cidr { net: IpAddr, prefix: u8 },
}

impl NoProxy {
    /// Parses a list separated by commas and/or white space. Entries that cannot mean anything (an
    /// empty entry, a CIDR with a bad prefix) are skipped, as curl skips them.
    pub fn parse(list: &str) -> NoProxy {
        let entries = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter_map(parse_entry)
            .collect();
        NoProxy { entries }
    }

    /// True when a request to `host:port` must bypass the proxy. `host` may be bracketed (`[::1]`).
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let host = normalize_host(host);
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| match entry {
            Entry::All => true,
            Entry::Domain { name, port: p } => {
                port_matches(*p, port)
                    && (host == *name
                        || (ip.is_none()
                            && host.len() > name.len()
                            && host.ends_with(name.as_str())
                            && host.as_bytes()[host.len() - name.len() - 1] == b'.'))
            }
            Entry::Ip { addr, port: p } => port_matches(*p, port) && ip == Some(*addr),
            Entry::Cidr { net, prefix } => ip.is_some_and(|ip| in_network(ip, *net, *prefix)),
        })
    }
}

fn port_matches(wanted: Option<u16>, port: u16) -> bool {
    !matches!(wanted, Some(p) if p != port)
}

/// Lowercase, without brackets around an IPv6 literal and without a trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_entry(raw: &str) -> Option<Entry> {
    let text = raw.trim().to_ascii_lowercase();
    if text.is_empty() {
        return None;
    }
    if text == "*" {
        return Some(Entry::All);
    }
    if let Some((addr, prefix)) = text.split_once('/') {
        let net = normalize_host(addr).parse::<IpAddr>().ok()?;
        let prefix = prefix.parse::<u8>().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        return (prefix <= max).then_some(Entry::Cidr { net, prefix });
    }
    // `[v6]` or `[v6]:port`
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let addr = addr.parse::<IpAddr>().ok()?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse::<u16>().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some(Entry::Ip { addr, port });
    }
    // A bare IPv6 literal has colons too, so try the whole entry as an address first.
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(Entry::Ip { addr, port: None });
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse::<u16>().ok()?)),
        None => (text.as_str(), None),
    };
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Some(Entry::Ip { addr, port });
    }
    // `*.corp`, `.corp` and `corp` all mean "corp and everything under it".
    let name = host.trim_start_matches('*').trim_start_matches('.');
    let name = name.trim_end_matches('.');
    if name.is_empty() {
        return None;
    }
    Some(Entry::Domain {
        name: name.to_string(),
        port,
    })
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bypass(list: &str, host: &str, port: u16) -> bool {
        NoProxy::parse(list).matches(host, port)
    }

    #[test]
    fn star_matches_everything() {
        assert!(bypass("*", "example.com", 80));
        assert!(bypass("foo, *", "10.1.2.3", 443));
        assert!(!bypass("", "example.com", 80));
    }

    #[test]
    fn domains_match_themselves_and_subdomains() {
        for list in ["corp.example", ".corp.example", "*.corp.example"] {
            assert!(bypass(list, "corp.example", 80), "{list}");
            assert!(bypass(list, "a.b.corp.example", 80), "{list}");
            assert!(!bypass(list, "notcorp.example", 80), "{list}");
            assert!(!bypass(list, "corp.example.org", 80), "{list}");
        }
    }

    #[test]
    fn matching_ignores_case_and_trailing_dots() {
        assert!(bypass("Corp.Example.", "host.CORP.example", 80));
        assert!(bypass("corp.example", "host.corp.example.", 80));
    }

    #[test]
    fn separators_are_commas_and_spaces() {
        let list = " a.example ,b.example\tc.example  d.example,,";
        for host in ["a.example", "b.example", "c.example", "d.example"] {
            assert!(bypass(list, host, 80), "{host}");
        }
        assert!(!bypass(list, "e.example", 80));
    }

    #[test]
    fn ports_restrict_an_entry() {
        assert!(bypass("host.example:8080", "host.example", 8080));
        assert!(!bypass("host.example:8080", "host.example", 80));
        assert!(bypass("127.0.0.1:9000", "127.0.0.1", 9000));
        assert!(!bypass("127.0.0.1:9000", "127.0.0.1", 9001));
        assert!(bypass("[::1]:9000", "[::1]", 9000));
        assert!(!bypass("[::1]:9000", "::1", 80));
    }

    #[test]
    fn ip_literals_match_exactly() {
        assert!(bypass("127.0.0.1", "127.0.0.1", 80));
        assert!(!bypass("127.0.0.1", "127.0.0.2", 80));
        assert!(bypass("::1", "[::1]", 80));
        assert!(bypass("[::1]", "::1", 80));
        assert!(bypass("2001:DB8::1", "[2001:db8::1]", 80));
        // An IP entry is not a domain suffix.
        assert!(!bypass("0.0.1", "10.0.0.1", 80));
    }

    #[test]
    fn cidr_ranges_match_addresses_inside() {
        assert!(bypass("10.0.0.0/8", "10.200.3.4", 80));
        assert!(!bypass("10.0.0.0/8", "11.0.0.1", 80));
        assert!(bypass("192.168.1.0/24", "192.168.1.77", 80));
        assert!(!bypass("192.168.1.0/24", "192.168.2.1", 80));
        assert!(bypass("0.0.0.0/0", "8.8.8.8", 80));
        assert!(bypass("::1/128", "[::1]", 80));
        assert!(bypass("fd00::/8", "fd12::5", 80));
        assert!(!bypass("fd00::/8", "fe80::1", 80));
        // Host names are not resolved to match a range.
        assert!(!bypass("127.0.0.0/8", "localhost", 80));
        // Nonsense prefixes are ignored.
        assert!(!bypass("10.0.0.0/33", "10.0.0.1", 80));
    }

    #[test]
    fn proxy_is_chosen_per_scheme_lowercase_first() {
        let vars = [
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:1"),
            ("HTTPS_PROXY", "http://secure:2"),
            ("ALL_PROXY", "http://all:3"),
            ("NO_PROXY", "internal.example"),
        ];
        let env = ProxyEnv::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        });
        let url = |scheme, host| env.proxy_for(scheme, host, 80).map(|s| s.url.as_str());
        assert_eq!(url("http", "a.example"), Some("http://lower:1"));
        assert_eq!(url("https", "a.example"), Some("http://secure:2"));
        assert_eq!(url("ftp", "a.example"), Some("http://all:3"));
        assert_eq!(url("http", "x.internal.example"), None);
        assert_eq!(
            env.proxy_for("https", "a.example", 443).map(|s| s.variable),
            Some("HTTPS_PROXY")
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = ProxyEnv::from_lookup(|name| match name {
            "http_proxy" => Some(" ".to_string()),
            "HTTP_PROXY" => Some("http://p:1".to_string()),
            _ => None,
        });
        assert_eq!(
            env.proxy_for("http", "h", 80).map(|s| s.url.as_str()),
            Some("http://p:1")
        );
        assert_eq!(env.proxy_for("https", "h", 443), None);
    }

    #[test]
    fn the_command_line_wins_over_the_environment_as_in_curl() {
        let vars = [
            ("http_proxy", "http://env:1"),
            ("NO_PROXY", "internal.example"),
        ];
        let env = || {
            ProxyEnv::from_lookup(|name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        let url =
            |env: &ProxyEnv, scheme, host| env.proxy_for(scheme, host, 80).map(|s| s.url.clone());
        let x = env().with_command_line(Some("socks5h://cli:9"), None);
        assert_eq!(
            url(&x, "https", "a.example").as_deref(),
            Some("socks5h://cli:9")
        );
        assert_eq!(
            url(&x, "http", "x.internal.example"),
            None,
            "NO_PROXY still applies"
        );
        let off = env().with_command_line(Some(""), None);
        assert_eq!(
            url(&off, "http", "a.example"),
            None,
            "-x '' turns proxies off"
        );
        let listed = env().with_command_line(None, Some("a.example"));
        assert_eq!(url(&listed, "http", "a.example"), None);
        assert_eq!(
            url(&listed, "http", "x.internal.example").as_deref(),
            Some("http://env:1"),
            "--noproxy replaces NO_PROXY"
        );
        let bare = env().with_command_line(Some("user:pw@proxy.example:3128"), None);
        assert_eq!(
            url(&bare, "http", "a").as_deref(),
            Some("http://user:pw@proxy.example:3128"),
            "no scheme means http"
        );
    }

    #[test]
    fn proxy_kinds_ports_and_credentials_come_from_the_url() {
        let setting = |url: &str| ProxySetting::new("-x/--proxy", url);
        let kind = |url: &str| setting(url).kind().ok();
        assert_eq!(kind("http://p:1"), Some(ProxyKind::Http));
        assert_eq!(kind("HTTPS://p:1"), Some(ProxyKind::Https));
        assert_eq!(kind("socks4://p"), Some(ProxyKind::Socks4));
        assert_eq!(kind("socks4a://p"), Some(ProxyKind::Socks4a));
        assert_eq!(kind("socks5://p"), Some(ProxyKind::Socks5));
        assert_eq!(kind("socks5h://p"), Some(ProxyKind::Socks5h));
        let err = setting("ftp://user:secret@p:21").kind().unwrap_err();
        assert_eq!(err.failure_kind(), FailureKind::Usage);
        assert!(err.message().contains("'ftp' proxies are not supported"));
        assert!(!err.message().contains("secret"), "{}", err.message());
        assert_eq!(
            setting("http://u:p@Proxy.Example:3128").host_port().ok(),
            Some(("proxy.example".to_string(), 3128))
        );
        assert_eq!(
            setting("socks5h://p").host_port().ok(),
            Some(("p".to_string(), 1080))
        );
        assert_eq!(
            setting("https://p").host_port().ok(),
            Some(("p".to_string(), 443))
        );
        assert_eq!(
            setting("http://[::1]:3128").host_port().ok(),
            Some(("[::1]".to_string(), 3128))
        );
        assert!(setting("http://p:99999").host_port().is_err());
        assert!(setting("http://u:p@p:1").has_credentials());
        assert!(!setting("http://p:1").has_credentials());
        let shown = setting("http://u:secret@p:1").shown();
        assert_eq!(shown, "http://***@p:1 (from -x/--proxy)");
    }
}
