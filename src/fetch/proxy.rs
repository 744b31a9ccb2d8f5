//! Which proxy a request goes through, decided the way curl decides it.
//!
//! ureq's own environment handling reads one proxy for every scheme and a simpler NO_PROXY; people
//! copy their proxy settings between curl, wget and us, so the rules here follow curl: a proxy per
//! scheme (`http_proxy`, `https_proxy`, then `all_proxy`, lowercase before uppercase) and a NO_PROXY
//! list of host names, domains, IP literals, CIDR ranges and `host:port` entries. The choice is made
//! for every hop of a redirect chain, because each hop can go to another host.

use std::net::IpAddr;

/// The proxy settings found in the environment.
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    http: Option<ProxySetting>,
    https: Option<ProxySetting>,
    all: Option<ProxySetting>,
    no_proxy: NoProxy,
}

/// One proxy URL and the variable it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySetting {
    pub variable: &'static str,
    pub url: String,
}

impl ProxyEnv {
    /// Reads the process environment.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a table in tests). Empty values count as
    /// unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let get = |lower: &'static str, upper: &'static str| {
            [lower, upper].into_iter().find_map(|variable| {
                lookup(variable)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(|url| ProxySetting { variable, url })
            })
        };
        let no_proxy = get("no_proxy", "NO_PROXY")
            .map(|s| NoProxy::parse(&s.url))
            .unwrap_or_default();
        ProxyEnv {
            http: get("http_proxy", "HTTP_PROXY"),
            https: get("https_proxy", "HTTPS_PROXY"),
            all: get("all_proxy", "ALL_PROXY"),
            no_proxy,
        }
    }

    /// The proxy for a request to `scheme://host:port`, or `None` to connect directly.
    pub fn proxy_for(&self, scheme: &str, host: &str, port: u16) -> Option<&ProxySetting> {
        let specific = match scheme {
            "http" => self.http.as_ref(),
            "https" => self.https.as_ref(),
            _ => None,
        };
        let setting = specific.or(self.all.as_ref())?;
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
}
