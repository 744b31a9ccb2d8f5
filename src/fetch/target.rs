//! The request target: an http or https URL as it goes on the wire, with its credentials kept apart,
//! and the next target of a redirect.
//!
//! It exists apart from the client because every hop of a redirect chain must be checked the same way:
//! only http and https, and credentials (from the URL) kept with the origin the user named.

use ureq::http::Uri;

use super::error::{FailureKind, FetchError};

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

    pub(super) fn scheme(&self) -> &str {
        self.uri.scheme_str().unwrap_or("http")
    }

    pub(super) fn host(&self) -> &str {
        self.uri.host().unwrap_or("")
    }

    pub(super) fn port(&self) -> u16 {
        self.uri
            .port_u16()
            .unwrap_or(if self.scheme() == "https" { 443 } else { 80 })
    }

    /// `host:port`, for messages.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host(), self.port())
    }

    pub(super) fn same_origin(&self, other: &Target) -> bool {
        self.scheme() == other.scheme()
            && self.host().eq_ignore_ascii_case(other.host())
            && self.port() == other.port()
    }

    /// The target of a `Location` header, resolved against this URL. Refuses schemes other than
    /// http and https.
    pub(super) fn redirect(&self, location: &str) -> Result<Target, FetchError> {
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

    /// `user:password` (percent-decoded) from the URL, to send as Basic auth.
    pub(super) fn credentials(&self) -> Option<&str> {
        self.credentials.as_deref()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
