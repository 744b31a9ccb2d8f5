//! The one place that knows how a URL's text divides into parts.
//!
//! watchdog looks at URLs in two ways, and both start here:
//!
//! - As written. Output names (`names`), the batch list's acceptance check (`batch::list`), the
//!   credentials sent as Basic auth and the host a proxy is chosen for are taken from the text the user
//!   wrote, so that `%2F` stays inside a name, a list line is judged as it stands, and the batch hot path
//!   (millions of lines) splits each URL without allocating. [`UrlParts`] gives each part as a slice
//!   of the original text (RFC 3986 generic syntax: `scheme://userinfo@host:port/path?query#fragment`).
//! - As sent. The request target (`fetch::target`) is parsed with the `url` crate (WHATWG URL
//!   parsing, as browsers do it), which normalizes what goes on the wire (host case, IDNA, dot
//!   segments, escapes) and resolves redirects. It refuses what [`UrlParts`] cannot see is wrong.
//!
//! [`UrlParts`] never refuses text: it is also used on URLs that are not http(s) (to name their output
//! before the download refuses them) and on text that is no URL at all.

/// A URL's text split into its parts, each a slice of the text; no part is decoded or normalized.
///
/// The query and fragment end the path and the authority wherever they start, and `://` only
/// introduces a scheme when no `/` comes before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// The scheme as written (`HTTPS` stays `HTTPS`); `None` when the text has no `scheme://`.
    pub scheme: Option<&'a str>,
    /// What comes before the last `@` of the authority (`user:p%40ss`), if there is an `@`.
    pub userinfo: Option<&'a str>,
    /// The authority after the userinfo: `host`, `host:port`, `[v6]:port`.
    pub host_port: &'a str,
    /// From the `/` that ends the authority up to the query or fragment; `None` without that `/`
    /// (`https://host`, `https://host?q`).
    pub path: Option<&'a str>,
    /// After the `?` up to the fragment; `None` without a `?` (or with a `#` before it).
    pub query: Option<&'a str>,
}

/// Why [`UrlParts::host_and_port`] cannot tell the host from the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPortError {
    /// `[::1` with no `]`.
    UnclosedBracket,
    /// `[::1]x`: something other than `:PORT` after the `]`.
    TextAfterBracket,
}

impl<'a> UrlParts<'a> {
    /// Splits `text`. Text without `scheme://` is read as `authority/path` (`host/x.jpg`).
    pub fn split(text: &'a str) -> UrlParts<'a> {
        // A byte loop: a `[char]` pattern decodes every character, and two memchr calls cost more
        // on a line this short; this runs on every line of a list of millions.
        let head_end = text
            .bytes()
            .position(|b| b == b'?' || b == b'#')
            .unwrap_or(text.len());
        let head = &text[..head_end];
        let query = text[head_end..]
            .strip_prefix('?')
            .map(|q| q.split('#').next().unwrap_or(q));
        let (scheme, rest) = match head.find("://") {
            Some(i) if !head[..i].contains('/') => (Some(&head[..i]), &head[i + 3..]),
            _ => (None, head),
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], Some(&rest[slash..])),
            None => (rest, None),
        };
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        UrlParts {
            scheme,
            userinfo,
            host_port,
            path,
            query,
        }
    }

    /// True when the scheme is http or https, in any case.
    pub fn is_http(&self) -> bool {
        self.scheme.is_some_and(is_http_scheme)
    }

    /// The host (an IPv6 literal without its brackets) and the port text after its `:`, if any
    /// (`Some("")` for `host:`).
    pub fn host_and_port(&self) -> Result<(&'a str, Option<&'a str>), HostPortError> {
        let host_port = self.host_port;
        if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(HostPortError::UnclosedBracket)?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or(HostPortError::TextAfterBracket)?,
                ),
            };
            Ok((host, port))
        } else {
            Ok(match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            })
        }
    }

    /// The host, leniently: an unclosed `[` gives what follows it, text after `]` is ignored. `None`
    /// when the text has no scheme or the host is empty.
    pub fn host(&self) -> Option<&'a str> {
        self.scheme?;
        let host_port = self.host_port;
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host_port.split(':').next().unwrap_or(host_port),
        };
        (!host.is_empty()).then_some(host)
    }

    /// The last segment of the path (after its last `/`), still percent-encoded; `None` without a
    /// path.
    pub fn last_segment(&self) -> Option<&'a str> {
        self.path?.rsplit('/').next()
    }
}

/// True for `http` and `https`, in any case.
pub fn is_http_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

/// Decodes `%XX` escapes; malformed escapes stay as they are, invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> UrlParts<'_> {
        UrlParts::split(text)
    }

    #[test]
    fn splits_every_part_as_written() {
        let p = parts("HTTPS://u:p%40ss@Example.COM:8443/a/b%20c.jpg?x=/y#f/g");
        assert_eq!(p.scheme, Some("HTTPS"));
        assert_eq!(p.userinfo, Some("u:p%40ss"));
        assert_eq!(p.host_port, "Example.COM:8443");
        assert_eq!(p.path, Some("/a/b%20c.jpg"));
        assert_eq!(p.query, Some("x=/y"));
        assert_eq!(p.host(), Some("Example.COM"));
        assert_eq!(p.host_and_port(), Ok(("Example.COM", Some("8443"))));
        assert_eq!(p.last_segment(), Some("b%20c.jpg"));
        assert!(p.is_http());
    }

    #[test]
    fn the_last_at_ends_the_userinfo() {
        let p = parts("http://a@b:c@h/x");
        assert_eq!((p.userinfo, p.host_port), (Some("a@b:c"), "h"));
        // An `@` in the query is not in the authority.
        let p = parts("http://h:80/a?b=c@d");
        assert_eq!((p.userinfo, p.host_port), (None, "h:80"));
    }

    #[test]
    fn query_and_fragment_end_the_authority_and_the_path() {
        assert_eq!(parts("https://h?x/a.jpg").path, None);
        assert_eq!(parts("https://h?x/a.jpg").query, Some("x/a.jpg"));
        assert_eq!(parts("https://h/a#f?x").query, None);
        assert_eq!(parts("https://h/a?#f").query, Some(""));
        assert_eq!(parts("https://h#/a").host_port, "h");
        assert_eq!(parts("https://h/b.jpg#f?x").last_segment(), Some("b.jpg"));
        assert_eq!(parts("https://h/").last_segment(), Some(""));
        assert_eq!(parts("https://h").last_segment(), None);
    }

    #[test]
    fn text_without_a_scheme_is_authority_and_path() {
        let p = parts("h/x.jpg");
        assert_eq!((p.scheme, p.host_port, p.path), (None, "h", Some("/x.jpg")));
        assert_eq!(p.host(), None);
        // `://` after a `/` or after the query does not start a scheme.
        assert_eq!(parts("a/b://h/x").scheme, None);
        assert_eq!(parts("a/b://h/x").last_segment(), Some("x"));
        assert_eq!(parts("h?u=http://x").scheme, None);
        assert!(!parts("mailto:x").is_http());
        assert_eq!(parts("mailto:x").host(), None);
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(
            parts("https://[::1]:443/x").host_and_port(),
            Ok(("::1", Some("443")))
        );
        assert_eq!(parts("https://[::1]/x").host_and_port(), Ok(("::1", None)));
        assert_eq!(parts("https://h:/x").host_and_port(), Ok(("h", Some(""))));
        assert_eq!(
            parts("https://[::1/").host_and_port(),
            Err(HostPortError::UnclosedBracket)
        );
        assert_eq!(
            parts("https://[::1]x/").host_and_port(),
            Err(HostPortError::TextAfterBracket)
        );
        assert_eq!(parts("https://[::1/").host(), Some("::1"));
        assert_eq!(parts("https://[fe80::1]:8/").host(), Some("fe80::1"));
        assert_eq!(parts("https://u@:8/").host(), None);
        assert_eq!(parts("https:///x").host(), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("my%20cat"), "my cat");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        assert_eq!(percent_decode("p%40ss%3a"), "p@ss:");
        assert_eq!(percent_decode("bad%ZZ%4"), "bad%ZZ%4");
        assert_eq!(percent_decode("end%"), "end%");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }
}
