//! Safe local file names for downloads.
//!
//! Every name that ends up under the output directory comes from here: the last path segment of a URL,
//! or a relative path given in a batch list. Both are untrusted, so the rules are strict and the same
//! everywhere:
//!
//! - a name never leaves the output directory: separators (`/`, `\`, also when percent-encoded as
//!   `%2F`/`%5C`) inside a component are replaced, `..` is refused, absolute paths are refused;
//! - every component is a valid, portable file name: no NUL or control characters, none of
//!   `<>:"|?*`, no invisible bidirectional or zero-width characters, no trailing dots or spaces, no
//!   Windows device names (`CON`, `nul.txt`, `COM1`, ...), at most [`MAX_COMPONENT_BYTES`] bytes;
//! - a URL without a usable name gets a stable one from a hash of the URL, so reruns agree;
//! - hashes are the first bytes of SHA-256, stable across versions and platforms, computed over the URL
//!   with its credentials redacted, so a name never helps anyone guess a password.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::hex::lower_hex;
use crate::redact::redact_credentials;
use crate::url_parts::{percent_decode, UrlParts};

/// The longest component (file or directory name) produced, in bytes. Below the usual 255-byte limit
/// so that the download's temp file (`.NAME.watchdog-part`) and a collision suffix still fit.
pub const MAX_COMPONENT_BYTES: usize = 200;

/// The longest relative path accepted from a list, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// The most components accepted in a relative path from a list.
pub const MAX_PATH_DEPTH: usize = 32;

/// An extension longer than this is treated as part of the stem when shortening a name.
const MAX_EXTENSION_BYTES: usize = 16;

/// The suffix the download worker gives its temp files (a leading dot hides them from `ls` and globs
/// such as `*.jpg`); a final name must never look like one, or the clean-up of temp files could take
/// it for garbage.
pub const TEMP_SUFFIX: &str = ".watchdog-part";

/// Hex digits of the URL hash in [`with_hash_suffix`].
pub const SHORT_HASH_HEX: usize = 8;

/// Hex digits of the URL hash in [`fallback_name`] (and in the longer collision suffix).
pub const LONG_HASH_HEX: usize = 16;

/// A relative path from a list that cannot be used as an output name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub reason: String,
}

impl NameError {
    fn new(reason: impl Into<String>) -> NameError {
        NameError {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for NameError {}

/// The URL's last path segment, percent-decoded, as a safe file name; `None` when it has none
/// (`https://host/`, `https://host/dir/`, `https://host/?id=3`, a last segment of `..`).
pub fn name_from_url(url: &str) -> Option<String> {
    let last = UrlParts::split(url).last_segment()?;
    // Decoding after splitting: an encoded separator (%2F) stays inside the component, where
    // sanitize_component replaces it.
    sanitize_component(&percent_decode(last))
}

/// The output name of a list item: its relative `path` made safe when given (a path ending in `/` is a
/// directory that receives the URL's own name), otherwise the URL's name, otherwise [`fallback_name`].
/// Errors only for a given path that cannot be made safe.
pub fn output_name(url: &str, path: Option<&str>) -> Result<String, NameError> {
    let from_url = || name_from_url(url).unwrap_or_else(|| fallback_name(url));
    match path {
        None => Ok(from_url()),
        Some(path) => {
            let is_dir = path.ends_with('/') || path.ends_with('\\');
            let relative = relative_path(path)?;
            if is_dir {
                let joined = format!("{relative}/{}", from_url());
                check_path_limits(&joined)?;
                Ok(joined)
            } else {
                Ok(relative)
            }
        }
    }
}

/// A relative path from a list, made safe: `/` and `\` separate components, empty and `.` components
/// are dropped, each component goes through [`sanitize_component`]. Refused: absolute paths (`/x`, `\x`,
/// `C:x`), `..` anywhere, a component with nothing usable left, more than [`MAX_PATH_DEPTH`] components
/// or more than [`MAX_PATH_BYTES`] bytes.
pub fn relative_path(path: &str) -> Result<String, NameError> {
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(NameError::new("absolute path"));
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(NameError::new("absolute path (drive letter)"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(NameError::new(format!(
            "path longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    let mut parts = Vec::new();
    for raw in path.split(['/', '\\']) {
        if raw.is_empty() || raw == "." {
            continue;
        }
        if raw.trim() == ".." {
            return Err(NameError::new("path leaves the output directory (..)"));
        }
        match sanitize_component(raw) {
            Some(part) => parts.push(part),
            None => {
                return Err(NameError::new(format!(
                    "path component '{}' is not a usable name",
                    raw.escape_debug()
                )))
            }
        }
    }
    if parts.is_empty() {
        return Err(NameError::new("empty path"));
    }
    let joined = parts.join("/");
    check_path_limits(&joined)?;
    Ok(joined)
}

fn check_path_limits(path: &str) -> Result<(), NameError> {
    if path.split('/').count() > MAX_PATH_DEPTH {
        return Err(NameError::new(format!(
            "path deeper than {MAX_PATH_DEPTH} components"
        )));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(NameError::new(format!(
            "path longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    Ok(())
}

/// One path component made safe (see the module documentation for the rules); `None` if nothing usable
/// is left (empty, only dots and spaces, `.`, `..`).
pub fn sanitize_component(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .map(|c| if is_forbidden_char(c) { '_' } else { c })
        .collect();
    let trimmed = trim_name(&cleaned);
    if trimmed.is_empty() {
        return None;
    }
    let mut name = trimmed.to_string();
    if is_windows_device_name(&name) {
        name.insert(0, '_');
    }
    if name.ends_with(TEMP_SUFFIX) {
        name.push('_');
    }
    let name = shorten(&name, MAX_COMPONENT_BYTES);
    if name.is_empty() {
        None
    } else {
        Some(name)
    }
}

/// Leading white space, trailing white space and trailing dots go: Windows drops trailing dots and
/// spaces silently, and white space at either end is invisible in a listing.
fn trim_name(name: &str) -> &str {
    name.trim_start()
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
}

fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        // Zero-width and bidirectional formatting characters make a name look like another one.
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `CON`, `PRN`, `AUX`, `NUL`, `COM0-9`, `LPT0-9` (also with superscript digits) and `CONIN$`/`CONOUT$`,
/// in any case, alone or followed by an extension: Windows opens the device instead of a file.
fn is_windows_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let upper = stem.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let rest: Vec<char> = chars.collect();
    (prefix == "COM" || prefix == "LPT")
        && rest.len() == 1
        && (rest[0].is_ascii_digit() || matches!(rest[0], '¹' | '²' | '³'))
}

/// Splits `name` into stem and extension (with its dot). A leading dot does not start an extension, and
/// neither does a "dot" followed by something too long or with spaces to be an extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot)
            if dot > 0
                && name.len() - dot <= MAX_EXTENSION_BYTES + 1
                && !name[dot..].contains(char::is_whitespace) =>
        {
            name.split_at(dot)
        }
        _ => (name, ""),
    }
}

/// `name` cut to at most `max` bytes on a character boundary, keeping the extension when it has one.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = split_extension(name);
    if !ext.is_empty() && ext.len() < max {
        let stem = trim_name(truncate_on_char(stem, max - ext.len()));
        if !stem.is_empty() {
            return format!("{stem}{ext}");
        }
    }
    trim_name(truncate_on_char(name, max)).to_string()
}

fn truncate_on_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A stable name for a URL that has no usable name of its own: `HOST-<16 hex digits>`, the digits from
/// a hash of the whole URL (query included, so `?id=1` and `?id=2` differ).
pub fn fallback_name(url: &str) -> String {
    let host = UrlParts::split(url)
        .host()
        .map(|h| percent_decode(h).to_ascii_lowercase())
        .and_then(|h| sanitize_component(truncate_on_char(&h, 64)))
        .unwrap_or_else(|| "url".to_string());
    format!("{host}-{}", url_hash_hex(url, LONG_HASH_HEX))
}

#[cfg(test)]
/// `name` with a short stable hash of `url` before its extension (`a.jpg` → `a-1f2e3d4c.jpg`), to
/// resolve a collision with another URL's name. For a path, only the last component changes.
pub fn with_hash_suffix(name: &str, url: &str) -> String {
    with_suffix(name, &url_hash_hex(url, SHORT_HASH_HEX))
}

/// `name` with `-SUFFIX` inserted before the extension of its last component, shortened so the
/// component stays within [`MAX_COMPONENT_BYTES`].
pub(crate) fn with_suffix(name: &str, suffix: &str) -> String {
    let (dir, file) = match name.rfind('/') {
        Some(slash) => name.split_at(slash + 1),
        None => ("", name),
    };
    let (stem, ext) = split_extension(file);
    let ext = if ext.len() + suffix.len() + 1 > MAX_COMPONENT_BYTES {
        ""
    } else {
        ext
    };
    let room = MAX_COMPONENT_BYTES - ext.len() - suffix.len() - 1;
    let stem = truncate_on_char(stem, room);
    format!("{dir}{stem}-{suffix}{ext}")
}

/// The first `hex_digits` hex digits of the SHA-256 of `url` with its credentials redacted.
pub fn url_hash_hex(url: &str, hex_digits: usize) -> String {
    let mut hex = lower_hex(&Sha256::digest(redact_credentials(url).as_bytes()));
    hex.truncate(hex_digits.min(64));
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    /// True when `name`, joined to any directory, names something inside it.
    fn stays_inside(name: &str) -> bool {
        !name.is_empty()
            && Path::new(name)
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
            && name.split('/').all(|c| {
                !c.is_empty()
                    && c.len() <= MAX_COMPONENT_BYTES
                    && sanitize_component(c).as_deref() == Some(c)
            })
    }

    #[test]
    fn url_names() {
        assert_eq!(name_from_url("https://h/a/b.jpg").as_deref(), Some("b.jpg"));
        assert_eq!(
            name_from_url("https://h/b.jpg?x=1#f").as_deref(),
            Some("b.jpg")
        );
        assert_eq!(
            name_from_url("https://h/b.jpg#f?x").as_deref(),
            Some("b.jpg")
        );
        assert_eq!(
            name_from_url("https://h/my%20cat.png").as_deref(),
            Some("my cat.png")
        );
        assert_eq!(
            name_from_url("https://h/caf%C3%A9.jpg").as_deref(),
            Some("café.jpg")
        );
        assert_eq!(
            name_from_url("https://h/bad%ZZ.jpg").as_deref(),
            Some("bad%ZZ.jpg")
        );
        assert_eq!(name_from_url("https://h/end%").as_deref(), Some("end%"));
        assert_eq!(name_from_url("https://h/"), None);
        assert_eq!(name_from_url("https://h"), None);
        assert_eq!(name_from_url("https://h/dir/"), None);
        assert_eq!(name_from_url("https://h/?id=3"), None);
        assert_eq!(name_from_url("https://h/a/.."), None);
        assert_eq!(name_from_url("https://h/a/%2e%2E"), None);
        assert_eq!(
            name_from_url("https://u:p@h:8080/x.gif").as_deref(),
            Some("x.gif")
        );
    }

    #[test]
    fn names_come_from_the_path_as_written() {
        let name = |url: &str| name_from_url(url);
        assert_eq!(
            name("http://[::1]:8080/a%2Fb.jpg").as_deref(),
            Some("a_b.jpg")
        );
        assert_eq!(name("https://h/a/b.jpg?x=/c.png").as_deref(), Some("b.jpg"));
        assert_eq!(name("https://h/x/../b.jpg").as_deref(), Some("b.jpg"));
        assert_eq!(name("https://h/b.jpg/.."), None);
        assert_eq!(
            name("https://h/%E2%80%AEgpj.exe").as_deref(),
            Some("_gpj.exe")
        );
        assert_eq!(name("https://h/a%252F.jpg").as_deref(), Some("a%2F.jpg"));
        assert_eq!(name("HTTPS://H/A.JPG").as_deref(), Some("A.JPG"));
        assert_eq!(name("https://h:8080"), None);
        assert_eq!(name("https://h:8080?x=/a.jpg"), None);
        // Other schemes are named too, so that the download itself refuses them.
        assert_eq!(name("ftp://h/x.png").as_deref(), Some("x.png"));
        assert_eq!(name("h/x.png").as_deref(), Some("x.png"));
    }

    #[test]
    fn fallback_names_take_the_host_as_written() {
        let host = |url: &str| {
            let name = fallback_name(url);
            name[..name.len() - LONG_HASH_HEX - 1].to_string()
        };
        assert_eq!(host("http://[::1]:8080/"), "__1");
        assert_eq!(host("https://u:p@Host.Example:8443/?q=1"), "host.example");
        assert_eq!(host("https://b%C3%BCcher.example/"), "bücher.example");
        assert_eq!(host("https://bücher.example/dir/"), "bücher.example");
        assert_eq!(host("https://h/?id=1#x"), "h");
    }

    #[test]
    fn encoded_separators_stay_inside_the_component() {
        assert_eq!(
            name_from_url("https://h/a%2F..%2F..%2Fetc%2Fpasswd").as_deref(),
            Some("a_.._.._etc_passwd")
        );
        assert_eq!(
            name_from_url("https://h/..%5C..%5Cwin.ini").as_deref(),
            Some(".._.._win.ini")
        );
        assert_eq!(
            name_from_url("https://h/%00%0a.jpg").as_deref(),
            Some("__.jpg")
        );
    }

    #[test]
    fn components_are_portable() {
        assert_eq!(sanitize_component("a.jpg").as_deref(), Some("a.jpg"));
        assert_eq!(sanitize_component(".hidden").as_deref(), Some(".hidden"));
        assert_eq!(sanitize_component("a\0b").as_deref(), Some("a_b"));
        assert_eq!(
            sanitize_component("a:b?c*.jpg").as_deref(),
            Some("a_b_c_.jpg")
        );
        assert_eq!(sanitize_component("  name. . ").as_deref(), Some("name"));
        assert_eq!(
            sanitize_component("evil\u{202E}gpj.exe").as_deref(),
            Some("evil_gpj.exe")
        );
        assert_eq!(sanitize_component(".."), None);
        assert_eq!(sanitize_component("."), None);
        assert_eq!(sanitize_component("..."), None);
        assert_eq!(sanitize_component(" "), None);
        assert_eq!(sanitize_component(""), None);
        assert_eq!(
            sanitize_component(".x.watchdog-part").as_deref(),
            Some(".x.watchdog-part_")
        );
    }

    #[test]
    fn windows_device_names_are_neutralized() {
        for name in [
            "CON",
            "con",
            "Con.txt",
            "nul.tar.gz",
            "AUX",
            "prn.jpg",
            "COM1",
            "lpt9.png",
            "COM¹",
            "conin$",
        ] {
            let safe = sanitize_component(name).unwrap_or_default();
            assert_eq!(safe, format!("_{name}"), "{name}");
        }
        for name in [
            "CONSOLE",
            "COM",
            "COM10",
            "LPT",
            "auxiliary.jpg",
            "nullable",
        ] {
            assert_eq!(sanitize_component(name).as_deref(), Some(name), "{name}");
        }
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.jpeg", "a".repeat(500));
        let short = sanitize_component(&long).unwrap_or_default();
        assert_eq!(short.len(), MAX_COMPONENT_BYTES);
        assert!(short.ends_with("a.jpeg"));
        // Multi-byte characters are never split.
        let long = format!("{}.png", "é".repeat(300));
        let short = sanitize_component(&long).unwrap_or_default();
        assert!(short.len() <= MAX_COMPONENT_BYTES && short.ends_with("é.png"));
        // A "long extension" is just part of the name.
        let long = format!("x.{}", "b".repeat(400));
        let short = sanitize_component(&long).unwrap_or_default();
        assert_eq!(short.len(), MAX_COMPONENT_BYTES);
        assert!(short.starts_with("x.bbb"));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative_path("a/b/c.jpg").as_deref(), Ok("a/b/c.jpg"));
        assert_eq!(relative_path("a//./b\\c.jpg").as_deref(), Ok("a/b/c.jpg"));
        assert_eq!(relative_path("a/con/x").as_deref(), Ok("a/_con/x"));
        assert!(relative_path("/etc/passwd").is_err());
        assert!(relative_path("\\\\server\\share").is_err());
        assert!(relative_path("C:/x").is_err());
        assert!(relative_path("c:x").is_err());
        assert!(relative_path("a/../../x").is_err());
        assert!(relative_path("a/ .. /x").is_err());
        assert!(relative_path("..").is_err());
        assert!(relative_path("").is_err());
        assert!(relative_path("./.").is_err());
        assert!(relative_path("a/.../b").is_err());
        assert!(relative_path(&"a/".repeat(40)).is_err());
        assert!(relative_path(&"a".repeat(2000)).is_err());
    }

    #[test]
    fn output_names() {
        let url = "https://h/p/cat.jpg";
        assert_eq!(output_name(url, None).as_deref(), Ok("cat.jpg"));
        assert_eq!(output_name(url, Some("x/y.jpg")).as_deref(), Ok("x/y.jpg"));
        assert_eq!(output_name(url, Some("x/")).as_deref(), Ok("x/cat.jpg"));
        assert!(output_name(url, Some("../y")).is_err());
        let fallback = output_name("https://Example.COM:8443/?id=3", None).unwrap_or_default();
        assert!(fallback.starts_with("example.com-"), "{fallback}");
        assert_eq!(fallback.len(), "example.com-".len() + 16);
    }

    #[test]
    fn fallback_names_are_stable_and_distinct() {
        let a = fallback_name("https://h/?id=1");
        let b = fallback_name("https://h/?id=2");
        assert_ne!(a, b);
        assert_eq!(a, fallback_name("https://h/?id=1"));
        // Pinned: the hash must never change between versions or platforms.
        assert_eq!(a, format!("h-{}", url_hash_hex("https://h/?id=1", 16)));
        assert_eq!(
            url_hash_hex("abc", 64),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Credentials never influence (or leak through) the hash.
        assert_eq!(
            fallback_name("https://u:secret@h/"),
            fallback_name("https://u:other@h/")
        );
        assert!(fallback_name("mailto:x").starts_with("url-"));
    }

    #[test]
    fn hash_suffix_goes_before_the_extension() {
        let url = "https://h/a.jpg?v=2";
        let hex = url_hash_hex(url, SHORT_HASH_HEX);
        assert_eq!(with_hash_suffix("a.jpg", url), format!("a-{hex}.jpg"));
        assert_eq!(with_hash_suffix("a", url), format!("a-{hex}"));
        assert_eq!(with_hash_suffix(".rc", url), format!(".rc-{hex}"));
        assert_eq!(
            with_hash_suffix("d.x/a.tar.gz", url),
            format!("d.x/a.tar-{hex}.gz")
        );
        assert_ne!(
            with_hash_suffix("a.jpg", url),
            with_hash_suffix("a.jpg", "https://h/a.jpg?v=3")
        );
        let long = sanitize_component(&format!("{}.jpg", "z".repeat(300))).unwrap_or_default();
        let suffixed = with_hash_suffix(&long, url);
        assert_eq!(suffixed.len(), MAX_COMPONENT_BYTES);
        assert!(suffixed.ends_with(&format!("-{hex}.jpg")));
        assert!(stays_inside(&suffixed));
    }

    /// A deterministic stream of hostile strings built from dangerous pieces.
    fn hostile_inputs() -> Vec<String> {
        let pieces = [
            "..", ".", "/", "\\", "%2F", "%2f", "%5C", "%2e%2e", "%00", "\0", "\n", "\r", "\t",
            " ", "CON", "nul", "com1", "LPT¹", ":", "C:", "*", "?", "#", "%", "%%", "é",
            "\u{202E}", "\u{FEFF}", "a", "b.jpg", ".tar.gz", "~", "$", "...", "//", "%252F",
            "\u{7f}", "\u{85}", "\u{2028}", "x",
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut out = Vec::new();
        for _ in 0..4000 {
            let len = (next() % 12) as usize;
            let mut s = String::new();
            for _ in 0..len {
                s.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            if next() % 10 == 0 {
                s.push_str(&"y".repeat((next() % 600) as usize));
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn hostile_inputs_never_leave_the_directory() {
        let dir = Path::new("/out/dir");
        for input in hostile_inputs() {
            let url = format!("https://h/{input}");
            let name = output_name(&url, None).unwrap_or_default();
            assert!(stays_inside(&name), "{url:?} -> {name:?}");
            assert!(dir.join(&name).starts_with(dir));
            assert!(stays_inside(&with_hash_suffix(&name, &url)), "{name:?}");
            if let Some(c) = sanitize_component(&input) {
                assert!(stays_inside(&c), "{input:?} -> {c:?}");
                assert_eq!(
                    sanitize_component(&c).as_deref(),
                    Some(c.as_str()),
                    "idempotent"
                );
            }
            for path in [input.clone(), format!("{input}/"), format!("d/{input}")] {
                if let Ok(name) = output_name(&url, Some(&path)) {
                    assert!(stays_inside(&name), "{path:?} -> {name:?}");
                    assert!(name.len() <= MAX_PATH_BYTES);
                }
            }
        }
    }
}
