//! The request target: an http or https URL as it goes on the wire, with its credentials kept apart,
//! and the next target of a redirect.
//!
//! It exists apart from the client because every hop of a redirect chain must be checked the same way:
//! only http and https, and credentials (from the URL) kept with the origin the user named.
//!
//! URLs are parsed and relative redirects resolved by the `url` crate (WHATWG URL parsing, as browsers
//! and reqwest do it). Its authority is what is sent: the host in lowercase (IDNA hosts in punycode),
//! a default port left out. The path and query of a URL the user gave (or of an absolute `Location`)
//! go as written, with only unsafe bytes percent-encoded: WHATWG would resolve `..`, `%2e%2e` and
//! backslashes in them, and a server may mean something else by those. What the user wrote is also
//! checked first with [`UrlParts`](crate::url_parts::UrlParts), for what the WHATWG rules would let
//! through: `http:///x` has no host (WHATWG takes the path for the host), and the credentials are the
//! userinfo as written.

use std::fmt;

use url::Url;

use super::error::{FailureKind, FetchError};
use crate::redact::redact_credentials;
use crate::url_parts::{is_http_scheme, percent_decode, UrlParts};

/// A URL split into what is sent (no credentials, no fragment) and what is shown (credentials
/// replaced by `***`).
#[derive(Debug, Clone)]
pub struct Target {
    /// What is sent.
    pub uri: Uri,
    /// The same URL as WHATWG reads it (its path normalized), which relative redirects are resolved
    /// against, as a browser resolves them.
    url: Url,
    /// `user:password`, percent-decoded, from the URL's userinfo.
    credentials: Option<String>,
}

/// The error for a URL that cannot be parsed, saying why.
fn invalid(why: &str) -> FetchError {
    FetchError::new(
        FailureKind::InvalidUrl,
        format!("not a valid URL: {why}; expected http://HOST/PATH or https://HOST/PATH"),
    )
}

impl Target {
    /// Parses an http or https URL.
    pub fn parse(text: &str) -> Result<Target, FetchError> {
        let text = text.trim();
        let parts = UrlParts::split(text);
        let scheme = parts.scheme.ok_or_else(|| invalid("no scheme"))?;
        if !is_http_scheme(scheme) {
            return Err(FetchError::new(
                FailureKind::InvalidUrl,
                format!(
                    "unsupported scheme '{}': only http and https URLs can be downloaded",
                    scheme.to_ascii_lowercase()
                ),
            ));
        }
        if parts.host().is_none() {
            return Err(invalid("no host"));
        }
        let url = Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
        let path = parts.path.unwrap_or("/");
        let path_and_query = match parts.query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_string(),
        };
        Target::sent(url, &path_and_query, parts.userinfo.map(percent_decode))
    }

    /// The target for `url` (http or https), asking for `path_and_query` and sending `credentials`.
    fn sent(
        mut url: Url,
        path_and_query: &str,
        credentials: Option<String>,
    ) -> Result<Target, FetchError> {
        // Neither fails on an http(s) URL, which always has a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        let host = url.host_str().unwrap_or_default();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let uri = Uri {
            scheme: url.scheme().to_string(),
            host: host.to_string(),
            port: url.port(),
            path_and_query: encode_unsafe(path_and_query),
        };
        Ok(Target {
            uri,
            url,
            credentials,
        })
    }

    pub fn scheme(&self) -> &str {
        &self.uri.scheme
    }

    /// The host as in the URL: lowercase, IDNA in punycode, an IPv6 literal in brackets.
    pub fn host(&self) -> &str {
        &self.uri.host
    }

    pub fn port(&self) -> u16 {
        self.uri
            .port
            .unwrap_or(if self.scheme() == "https" { 443 } else { 80 })
    }

    /// `host:port`, for messages.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host(), self.port())
    }

    pub fn same_origin(&self, other: &Target) -> bool {
        self.scheme() == other.scheme()
            && self.host().eq_ignore_ascii_case(other.host())
            && self.port() == other.port()
    }

    /// The target of a `Location` header, resolved against this URL. Refuses schemes other than
    /// http and https. Credentials in the `Location` are sent; without them, this target's
    /// credentials go on only to the same origin.
    ///
    /// An absolute `Location` (also one without a scheme, `//host/path`) is taken as written, like a
    /// URL given on the command line; a relative one is resolved by the WHATWG rules.
    pub fn redirect(&self, location: &str) -> Result<Target, FetchError> {
        let location = location.trim();
        let mut target = match Url::parse(location) {
            Ok(absolute) if !is_http_scheme(absolute.scheme()) => {
                return Err(FetchError::new(
                    FailureKind::InvalidUrl,
                    format!(
                        "redirected to a {}: URL ({}), which watchdog refuses to follow; only http and https redirects are followed",
                        absolute.scheme(),
                        redact_credentials(location)
                    ),
                ));
            }
            Err(url::ParseError::RelativeUrlWithoutBase) if location.starts_with("//") => {
                Target::parse(&format!("{}:{location}", self.scheme()))
            }
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                self.url.join(location).map_err(|e| invalid(&e.to_string())).and_then(|next| {
                    let path_and_query = match next.query() {
                        Some(query) => format!("{}?{query}", next.path()),
                        None => next.path().to_string(),
                    };
                    // A relative reference has no userinfo of its own.
                    Target::sent(next, &path_and_query, None)
                })
            }
            _ => Target::parse(location),
        }
        .map_err(|e| redirect_error(location, &e))?;
        if target.credentials.is_none() && self.same_origin(&target) {
            target.credentials.clone_from(&self.credentials);
        }
        Ok(target)
    }

    /// `user:password` (percent-decoded) from the URL, to send as Basic auth.
    pub fn credentials(&self) -> Option<&str> {
        self.credentials.as_deref()
    }
}

/// The URL as it is sent: scheme, authority (no userinfo, a default port left out), and the path and
/// query with unsafe bytes escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    scheme: String,
    host: String,
    port: Option<u16>,
    path_and_query: String,
}

impl Uri {
    /// The path, without the query.
    #[cfg(test)]
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path_and_query)
    }
}

fn redirect_error(location: &str, err: &FetchError) -> FetchError {
    FetchError::new(
        err.failure_kind(),
        format!(
            "redirected to {}, which is {}",
            redact_credentials(location),
            err.message()
        ),
    )
}

/// Percent-encodes the bytes that may not appear in a request target, which the WHATWG rules leave
/// as they are in some parts (`|`, `^`, `\` and braces in a query): libcurl refuses a URL with
/// white space or control bytes, and servers differ on the others. Escapes already there are left alone.
fn encode_unsafe(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for &b in url.as_bytes() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn parses_and_strips_credentials_and_fragments() {
        let t = target("https://user:p%40ss@Example.com:8443/a/b.jpg?x=1#frag");
        assert_eq!(t.uri.to_string(), "https://example.com:8443/a/b.jpg?x=1");
        assert_eq!(t.credentials.as_deref(), Some("user:p@ss"));
        assert_eq!(t.port(), 8443);
        assert_eq!(target("http://h").uri.path(), "/");
        assert_eq!(target("http://h?q=1").uri.to_string(), "http://h/?q=1");
        assert_eq!(target("http://h/a b").uri.path(), "/a%20b");
        assert_eq!(
            target("https://u:p:q@h/").credentials.as_deref(),
            Some("u:p:q")
        );
        assert_eq!(target("https://u@h/").credentials.as_deref(), Some("u"));
        assert_eq!(target("https://h/").credentials, None);
    }

    #[test]
    fn sends_the_authority_normalized_and_the_path_as_written() {
        let sent = |url: &str| target(url).uri.to_string();
        assert_eq!(sent("HTTP://H:80/x"), "http://h/x");
        assert_eq!(sent("https://h:443/x"), "https://h/x");
        assert_eq!(sent("https://h:8443/x"), "https://h:8443/x");
        // The path and query go as written: a server may mean something by `..` or a backslash.
        assert_eq!(sent("http://h/a/./b/../c.jpg"), "http://h/a/./b/../c.jpg");
        assert_eq!(sent("http://h/a/%2e%2e/b\\c"), "http://h/a/%2e%2e/b%5Cc");
        assert_eq!(sent("http://h/a\tb"), "http://h/a%09b");
        assert_eq!(
            sent("https://bücher.example/x"),
            "https://xn--bcher-kva.example/x"
        );
        assert_eq!(sent("http://h/caf\u{e9}.jpg"), "http://h/caf%C3%A9.jpg");
        assert_eq!(sent("http://h/a%2Fb%ZZ"), "http://h/a%2Fb%ZZ");
        assert_eq!(sent("http://h/a|b?q={x}^"), "http://h/a%7Cb?q=%7Bx%7D%5E");
        assert_eq!(sent("http://[::1]:81/x"), "http://[::1]:81/x");
        assert_eq!(target("http://[::1]:81/x").host_port(), "[::1]:81");
    }

    #[test]
    fn refuses_bad_urls() {
        for url in [
            "ftp://h/x",
            "file:///etc/passwd",
            "h/x",
            "http://",
            "http:///x",
            "http://u:p@/x",
            "http://:80/x",
            "http://h:99999/x",
            "http://h:x/",
            "http://[::1/x",
            "http://a b/",
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
        assert_eq!(go("./d/../e#f"), "http://h:81/a/b/e");
        assert_eq!(go("/%7Ex y"), "http://h:81/%7Ex%20y");
        assert_eq!(go("HTTP://Other:80/x/../y"), "http://other/x/../y");
        assert_eq!(go("//other/y/../z"), "http://other/y/../z");
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
        assert_eq!(
            base.redirect("//v:w@other/b")
                .unwrap()
                .credentials
                .as_deref(),
            Some("v:w")
        );
        assert_eq!(
            base.redirect("http://x:p%40@other/")
                .unwrap()
                .credentials
                .as_deref(),
            Some("x:p@")
        );
    }
}
