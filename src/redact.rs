//! Keeps credentials out of output: `https://user:secret@host/` is shown as `https://***@host/`.
//!
//! This is a scan of text, not a URL parser, on purpose. What is redacted is arbitrary text: argv
//! words, error messages, list lines that are not usable URLs, JSON whose slashes are escaped
//! (`http:\/\/user:pw@host\/`), the first bytes of a line cut short. A URL can start anywhere in it
//! and be broken in any way. A parser (the `url` crate, or [`UrlParts`](crate::url_parts::UrlParts),
//! which expects the text to be one URL) finds no URL in `get http://u:p@h`, and refuses a broken one
//! whose credentials must still be hidden. So the scan finds every `://` (and its JSON-escaped form
//! `:\/\/`) and errs on the side of hiding: an authority ends only where no userinfo can go on (`/`,
//! `?`, `#`, white space, a quote), and everything before its last `@` goes.

/// Where a URL's authority starts in text: after `://`, or after `:\/\/` in JSON.
const SEPARATORS: [&str; 2] = ["://", ":\\/\\/"];

/// Characters that end an authority; a JSON-escaped one also ends at `\/`.
const AUTHORITY_END: [char; 7] = ['/', '?', '#', ' ', '\t', '\n', '"'];

/// Replaces the userinfo part of every URL in `text` with `***`.
pub fn redact_credentials(text: &str) -> String {
    redact(text, false)
}

/// Like [`redact_credentials`], for text that is the start of something longer (a line cut at a
/// length limit): the last authority, when it runs to the end of `text` without an `@`, may have
/// been cut before its `@`, so all of it is hidden.
pub fn redact_credentials_of_prefix(text: &str) -> String {
    redact(text, true)
}

fn redact(text: &str, cut: bool) -> String {
    if !cut && !text.contains('@') {
        // Nothing to hide: the common case, and it costs one pass.
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((start, separator)) = next_separator(rest) {
        let authority_start = start + separator.len();
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let mut authority_len = after.find(AUTHORITY_END).unwrap_or(after.len());
        if separator != SEPARATORS[0] {
            if let Some(escaped_slash) = after[..authority_len].find("\\/") {
                authority_len = escaped_slash;
            }
        }
        let authority = &after[..authority_len];
        // What follows the userinfo is scanned again: its end may be the `scheme:` of another URL
        // (`http://a:b@http://c:d@h/`), whose `://` starts right where this authority ends.
        rest = match authority.rfind('@') {
            Some(at) => {
                out.push_str("***@");
                &after[at + 1..]
            }
            None if cut && authority_len == after.len() && !authority.is_empty() => {
                out.push_str("***");
                ""
            }
            None => after,
        };
    }
    out.push_str(rest);
    out
}

/// Redacts a command line for display: every URL's credentials, and, on `fetch`'s command line, the
/// userinfo of a proxy given without a scheme (`-x user:pw@host:port`, which curl and watchdog take
/// as `http://`).
pub fn redact_argv<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    let is_fetch = argv.first().is_some_and(|a| a.as_ref() == "fetch");
    let mut out = Vec::with_capacity(argv.len());
    let mut proxy_next = false;
    for word in argv {
        let word = word.as_ref();
        let (prefix, value) = if !is_fetch {
            ("", None)
        } else if proxy_next {
            ("", Some(word))
        } else if let Some(value) = word.strip_prefix("--proxy=") {
            ("--proxy=", Some(value))
        } else if let Some(value) = word.strip_prefix("-x").filter(|v| !v.is_empty()) {
            ("-x", Some(value))
        } else {
            ("", None)
        };
        proxy_next = is_fetch && (word == "-x" || word == "--proxy");
        out.push(match value {
            Some(value) => format!("{prefix}{}", redact_proxy(value)),
            None => redact_credentials(word),
        });
    }
    out
}

/// A proxy URL with its credentials hidden, also when it has no scheme.
pub fn redact_proxy(value: &str) -> String {
    if value.contains("://") {
        return redact_credentials(value);
    }
    let authority_len = value.find(AUTHORITY_END).unwrap_or(value.len());
    match value[..authority_len].rfind('@') {
        Some(at) => format!("***@{}", &value[at + 1..]),
        None => value.to_string(),
    }
}

/// The first scheme separator in `text`: its position and which one it is. One pass over the colons,
/// because this runs on every invalid line of a list of millions.
fn next_separator(text: &str) -> Option<(usize, &'static str)> {
    let mut from = 0;
    while let Some(found) = text[from..].find(':') {
        let at = from + found;
        let rest = &text[at..];
        if let Some(separator) = SEPARATORS.iter().find(|s| rest.starts_with(**s)) {
            return Some((at, separator));
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(redact_credentials("http://a@b@h/"), "http://***@h/");
    }

    #[test]
    fn hides_the_userinfo_of_a_url_right_after_another() {
        // Found by the redaction fuzz target: the second URL's `:` ended the first authority, and
        // its `://` was not seen.
        assert_eq!(
            redact_credentials("https://u:p@https://user:s3cretpw@h/"),
            "https://***@https://***@h/"
        );
        assert_eq!(
            redact_credentials("http://h:http://user:s3cretpw@h/"),
            "http://h:http://***@h/"
        );
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        for text in ["https://u:p@h/x", "http:\\/\\/u:p@h\\/x", "http://h/"] {
            let once = redact_credentials(text);
            assert_eq!(redact_credentials(&once), once);
        }
        let cut = redact_credentials_of_prefix("http://u:pass");
        assert_eq!(redact_credentials(&cut), cut);
    }

    #[test]
    fn hides_userinfo_behind_json_escaped_slashes() {
        assert_eq!(
            redact_credentials(r#"{"url":"http:\/\/user:pw@host\/a.jpg","sha256":"12"}"#),
            r#"{"url":"http:\/\/***@host\/a.jpg","sha256":"12"}"#
        );
        // The query of an escaped URL is not userinfo.
        assert_eq!(
            redact_credentials(r"https:\/\/h\/a?b=c@d"),
            r"https:\/\/h\/a?b=c@d"
        );
        assert_eq!(
            redact_credentials(r"a http:\/\/u:p@h b https://v:q@i/"),
            r"a http:\/\/***@h b https://***@i/"
        );
    }

    #[test]
    fn proxy_words_of_fetch_are_hidden_with_or_without_a_scheme() {
        let argv = [
            "fetch",
            "http://u:p@h/a.jpg",
            "-x",
            "alice:pw@proxy:3128",
            "--proxy=bob:pw@proxy:3128",
            "-xcarol:pw@proxy:3128",
            "--proxy",
            "socks5h://dave:pw@proxy:1080",
        ];
        assert_eq!(
            redact_argv(&argv),
            [
                "fetch",
                "http://***@h/a.jpg",
                "-x",
                "***@proxy:3128",
                "--proxy=***@proxy:3128",
                "-x***@proxy:3128",
                "--proxy",
                "socks5h://***@proxy:1080",
            ]
        );
        // Another command's words are only scanned for URLs.
        assert_eq!(redact_argv(&["tar", "-x", "a@b"]), ["tar", "-x", "a@b"]);
        assert_eq!(redact_proxy("proxy:3128"), "proxy:3128");
    }

    #[test]
    fn a_cut_authority_is_hidden_whole() {
        let secret = "s".repeat(300);
        let line = format!("https://user:{secret}@h/a.jpg");
        let cut = redact_credentials_of_prefix(&line[..200]);
        assert_eq!(cut, "https://***");
        // What is complete is redacted as usual, and a path that runs to the cut stays.
        assert_eq!(
            redact_credentials_of_prefix("http://u:p@h/aaaa"),
            "http://***@h/aaaa"
        );
        assert_eq!(
            redact_credentials_of_prefix("http://h/aaaa"),
            "http://h/aaaa"
        );
        assert_eq!(redact_credentials_of_prefix("x http://"), "x http://");
        // Uncut text keeps its host.
        assert_eq!(redact_credentials("https://host"), "https://host");
    }
}
