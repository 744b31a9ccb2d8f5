//! Keeps credentials out of output: `https://user:secret@host/` is shown as `https://***@host/`.

/// Replaces the userinfo part of every URL in `text` with `***`.
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let authority_len = after
            .find(['/', '?', '#', ' ', '\t', '\n', '"'])
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_credentials;

    #[test]
    fn hides_userinfo_only() {
        assert_eq!(redact_credentials("https://u:p@h/x"), "https://***@h/x");
        assert_eq!(
            redact_credentials("get http://h:80/a?b=c@d"),
            "get http://h:80/a?b=c@d"
        );
        assert_eq!(
            redact_credentials("a http://x@y b ftp://q:w@e"),
            "a http://***@y b ftp://***@e"
        );
        assert_eq!(redact_credentials("no url"), "no url");
    }
}
