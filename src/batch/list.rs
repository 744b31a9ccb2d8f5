//! The batch list: one item per line, read as a stream.
//!
//! Lists run to millions of lines and come from anywhere (scrapers, exports, hand edits), so the reader
//! holds one bounded line at a time and never gives up on the stream: a line it cannot use becomes an
//! [`InvalidLine`] with a reason (reported as `invalid`), and reading goes on with the next line.
//!
//! Line forms, after an optional UTF-8 BOM on the first line and with `\n` or `\r\n` endings:
//!
//! ```text
//! https://host/a.jpg                              a URL
//! https://host/a.jpg<TAB>cats/a.jpg               a URL and its relative output path
//! {"url":"https://host/a.jpg","path":"cats/a.jpg","sha256":"<64 hex>"}    a JSON object
//! # a comment, and blank lines, are skipped
//! ```
//!
//! In the JSON form `path` and `sha256` are optional. Any other keys (a pipeline's ids, captions) are
//! kept as the item's [`Extra`] and travel unchanged into its report line under `extra`, so that the
//! report joins back to the rows the list came from.

use std::io::{self, BufRead};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::names;
use crate::redact;
use crate::url_parts::{HostPortError, UrlParts};

/// The longest line accepted, in bytes (without its line ending). Longer lines are skipped unread.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// How much of an invalid line is kept to show in the report.
const PREVIEW_BYTES: usize = 200;

/// One thing to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// An http or https URL (validated by [`validate_url`]).
    pub url: String,
    /// The relative output path as given in the list (checked to be usable; make it safe with
    /// [`names::output_name`]). A path ending in `/` is a directory for the URL's own name.
    pub path: Option<String>,
    /// The expected SHA-256 of the body, 64 lowercase hex digits.
    pub sha256: Option<String>,
    /// The other keys of a JSON line.
    pub extra: Option<Extra>,
}

/// The keys of a JSON list line other than `url`, `path` and `sha256`, as one JSON object: each key
/// and value exactly as the line wrote them, in its order (a number keeps all its digits).
#[derive(Debug, Clone)]
pub struct Extra(Box<RawValue>);

impl Extra {
    /// The object's JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for Extra {
    fn eq(&self, other: &Extra) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Eq for Extra {}

impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Extra, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Extra)
    }
}

/// The JSON list line of an item: `url`, `path` when given, and the keys of `extra` at the top
/// level, where its own list line had them (so a retry list carries them on). `None` only when the
/// text cannot be written as JSON, which plain strings always can.
pub fn json_line(url: &str, path: Option<&str>, extra: Option<&Extra>) -> Option<String> {
    #[derive(Serialize)]
    struct Line<'a> {
        url: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
    }
    let mut line = serde_json::to_string(&Line { url, path }).ok()?;
    // Only an object's keys can go back; a report line written by hand may hold anything here.
    let inner = extra
        .map(|extra| extra.as_json().trim())
        .and_then(|json| json.strip_prefix('{')?.strip_suffix('}'))
        .filter(|inner| !inner.trim().is_empty());
    if let Some(inner) = inner {
        line.pop();
        line.push(',');
        line.push_str(inner);
        line.push('}');
    }
    Some(line)
}

/// A JSON object's keys and raw values, in the order written.
struct RawObject<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawObject<'a>, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'de>, A::Error> {
                let mut fields = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push((key, value));
                }
                Ok(RawObject(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// The keys of the JSON object `text` other than the item's own, as an [`Extra`]; `None` when there
/// are none.
fn extra_keys(text: &str) -> Option<Extra> {
    let object: RawObject = serde_json::from_str(text).ok()?;
    let mut json = String::from("{");
    for (key, value) in object
        .0
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "url" | "path" | "sha256"))
    {
        if json.len() > 1 {
            json.push(',');
        }
        json.push_str(&serde_json::to_string(key).ok()?);
        json.push(':');
        json.push_str(value.get());
    }
    if json.len() == 1 {
        return None;
    }
    json.push('}');
    RawValue::from_string(json).ok().map(Extra)
}

/// A line that is not a usable item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    /// Why, for a person: `not an http or https URL`, `line longer than 8192 bytes`, ...
    pub reason: String,
    /// The start of the line (lossy UTF-8, at most 200 bytes), to show in the report.
    pub text: String,
}

/// One non-blank, non-comment line of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// 1-based line number in the list.
    pub line_no: u64,
    pub item: Result<Item, InvalidLine>,
}

/// Reads a list line by line. Yields `Err` only when reading itself fails (the list is unreadable);
/// bad lines are `Ok` entries with an [`InvalidLine`].
pub struct ListReader<R> {
    input: R,
    line_no: u64,
    buf: Vec<u8>,
    max_line: usize,
    failed: bool,
}

impl<R: BufRead> ListReader<R> {
    pub fn new(input: R) -> ListReader<R> {
        ListReader::with_max_line(input, MAX_LINE_BYTES)
    }

    fn with_max_line(input: R, max_line: usize) -> ListReader<R> {
        ListReader {
            input,
            line_no: 0,
            buf: Vec::new(),
            max_line,
            failed: false,
        }
    }

    /// The number of lines read so far, blank and comment lines included.
    #[cfg(test)]
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }
}

impl<R: BufRead> Iterator for ListReader<R> {
    type Item = io::Result<ListEntry>;

    fn next(&mut self) -> Option<io::Result<ListEntry>> {
        if self.failed {
            return None;
        }
        loop {
            let too_long = match read_bounded_line(&mut self.input, &mut self.buf, self.max_line) {
                Ok(Some(too_long)) => too_long,
                Ok(None) => return None,
                Err(err) => {
                    self.failed = true;
                    return Some(Err(err));
                }
            };
            self.line_no += 1;
            let mut line = self.buf.as_slice();
            if self.line_no == 1 {
                line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            }
            let item = if too_long {
                Err(invalid(
                    format!("line longer than {} bytes", self.max_line),
                    line,
                    true,
                ))
            } else {
                match parse_line(line) {
                    None => continue,
                    Some(item) => item.map_err(|reason| invalid(reason, line, false)),
                }
            };
            return Some(Ok(ListEntry {
                line_no: self.line_no,
                item,
            }));
        }
    }
}

/// The invalid line, its credentials hidden before it is cut to its preview: cut first, a long
/// userinfo would lose its `@` and then look like a host. A line that was itself `cut` at the length
/// limit may have lost its `@` already, and is redacted as such.
pub(crate) fn invalid(reason: String, line: &[u8], cut: bool) -> InvalidLine {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = String::from_utf8_lossy(line);
    let mut text = if cut {
        redact::redact_credentials_of_prefix(&line)
    } else {
        redact::redact_credentials(&line)
    };
    let mut end = text.len().min(PREVIEW_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        text = trimmed.to_string();
    }
    InvalidLine { reason, text }
}

/// Reads one line into `buf` (without the `\n`), keeping at most `max` bytes of it. Returns `None` at
/// the end of input, `Some(true)` when the line was longer than `max` (the rest was read and dropped).
pub(crate) fn read_bounded_line<R: BufRead>(
    input: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok(read_any.then_some(too_long));
        }
        read_any = true;
        let (chunk, used, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (&available[..newline], newline + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                let room = max - buf.len();
                buf.extend_from_slice(&chunk[..room]);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        input.consume(used);
        if complete {
            return Ok(Some(too_long));
        }
    }
}

/// Parses one line (without its `\n`). `None` for a blank or comment line, `Err(reason)` for a line
/// that is not a usable item.
pub fn parse_line(line: &[u8]) -> Option<Result<Item, String>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(_) => return Some(Err("not valid UTF-8".to_string())),
    };
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    Some(if text.starts_with('{') {
        parse_json(text)
    } else {
        parse_plain(text)
    })
}

fn parse_plain(text: &str) -> Result<Item, String> {
    let mut fields = text.split('\t');
    let url = fields.next().unwrap_or("").trim();
    let path = fields.next().map(str::trim);
    if fields.next().is_some() {
        return Err("more than two tab-separated fields (expected URL<TAB>PATH)".to_string());
    }
    if url.contains(' ') {
        return Err("white space in the URL (separate a path with a tab)".to_string());
    }
    make_item(url, path, None)
}

#[derive(Deserialize)]
struct JsonItem {
    url: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
}

fn parse_json(text: &str) -> Result<Item, String> {
    let item: JsonItem = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut made = make_item(&item.url, item.path.as_deref(), item.sha256.as_deref())?;
    made.extra = extra_keys(text);
    Ok(made)
}

fn make_item(url: &str, path: Option<&str>, sha256: Option<&str>) -> Result<Item, String> {
    validate_url(url)?;
    if let Some(path) = path {
        if path.is_empty() {
            return Err("empty path".to_string());
        }
        names::relative_path(path).map_err(|e| format!("path '{path}': {e}"))?;
    }
    let sha256 = match sha256 {
        None => None,
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(hex.to_ascii_lowercase())
        }
        Some(hex) => return Err(format!("sha256 '{hex}' is not 64 hex digits")),
    };
    Ok(Item {
        url: url.to_string(),
        path: path.map(str::to_string),
        sha256,
        extra: None,
    })
}

/// Checks that `url` is worth handing to the download worker: scheme http or https, a non-empty host,
/// a numeric port if any, no white space or control characters. Everything finer (IDNA, percent
/// escapes) is the HTTP client's job; it reports what it refuses as `invalid` too.
pub fn validate_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("empty URL".to_string());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("white space or control characters in the URL".to_string());
    }
    let parts = UrlParts::split(url);
    if !parts.is_http() {
        return Err("not an http or https URL".to_string());
    }
    let (host, port) = parts.host_and_port().map_err(|e| match e {
        HostPortError::UnclosedBracket => "unclosed '[' in the host".to_string(),
        HostPortError::TextAfterBracket => "unexpected text after ']'".to_string(),
    })?;
    if host.is_empty() {
        return Err("no host in the URL".to_string());
    }
    if let Some(port) = port {
        let valid = port.is_empty()
            || (port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p)));
        if !valid {
            return Err(format!("invalid port '{port}'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor, Read};

    fn entries(text: &[u8]) -> Vec<ListEntry> {
        ListReader::new(Cursor::new(text.to_vec()))
            .collect::<io::Result<Vec<_>>>()
            .unwrap_or_default()
    }

    fn item(url: &str, path: Option<&str>, sha256: Option<&str>) -> Item {
        Item {
            url: url.to_string(),
            path: path.map(str::to_string),
            sha256: sha256.map(str::to_string),
            extra: None,
        }
    }

    #[test]
    fn reads_the_three_forms() {
        let sha = "AB".repeat(32);
        let text = format!(
            "\u{FEFF}https://h/a.jpg\r\n\n  # comment\nhttps://h/b.jpg\tcats/b.jpg\n\
             {{\"url\":\"https://h/c\",\"path\":\"c.png\",\"sha256\":\"{sha}\",\"caption\":\"x\"}}\n\
             {{\"url\":\"http://h/d\",\"path\":null}}\n   https://h/e   "
        );
        let got = entries(text.as_bytes());
        let expected = vec![
            (1, item("https://h/a.jpg", None, None)),
            (4, item("https://h/b.jpg", Some("cats/b.jpg"), None)),
            (
                5,
                Item {
                    extra: extra_keys("{\"caption\":\"x\"}"),
                    ..item("https://h/c", Some("c.png"), Some(&"ab".repeat(32)))
                },
            ),
            (6, item("http://h/d", None, None)),
            (7, item("https://h/e", None, None)),
        ];
        assert_eq!(got.len(), expected.len());
        for (entry, (line_no, item)) in got.iter().zip(expected) {
            assert_eq!(entry.line_no, line_no);
            assert_eq!(entry.item.as_ref(), Ok(&item));
        }
    }

    #[test]
    fn extra_keys_of_a_json_line_are_kept_exactly_and_in_order() {
        let text = "{\"id\":12345678901234567890123,\"url\":\"https://h/a\",\"caption\":\"a \\\"cat\\\"\",\
                    \"tags\":[1, {\"x\":null}],\"path\":\"a.jpg\"}\n{\"url\":\"https://h/b\"}\n";
        let got = entries(text.as_bytes());
        let extra = got[0].item.as_ref().ok().and_then(|i| i.extra.clone());
        assert_eq!(
            extra.as_ref().map(Extra::as_json),
            Some("{\"id\":12345678901234567890123,\"caption\":\"a \\\"cat\\\"\",\"tags\":[1, {\"x\":null}]}")
        );
        assert_eq!(
            got[1].item.as_ref().ok().and_then(|i| i.extra.clone()),
            None
        );
    }

    #[test]
    fn bad_lines_are_reported_and_reading_goes_on() {
        let text = b"ftp://h/a\nhttps://\nnot a url\n{\"url\":5}\n{broken\nhttps://h/a\tb\tc\n\
            https://h/x\t../up\nhttps://h/x\t/abs\nhttps://h/x y\n\xff\xfe\n\
            {\"url\":\"https://h/\",\"sha256\":\"12\"}\nhttps://h:99999/\nhttps://h/ok\n";
        let got = entries(text);
        assert_eq!(got.len(), 13);
        let reasons: Vec<String> = got[..12]
            .iter()
            .map(|e| {
                e.item
                    .as_ref()
                    .err()
                    .map(|i| i.reason.clone())
                    .unwrap_or_default()
            })
            .collect();
        for (reason, expected) in reasons.iter().zip([
            "not an http or https URL",
            "no host",
            "white space",
            "invalid JSON",
            "invalid JSON",
            "more than two",
            "leaves the output directory",
            "absolute path",
            "white space in the URL",
            "not valid UTF-8",
            "not 64 hex digits",
            "invalid port",
        ]) {
            assert!(
                reason.contains(expected),
                "{reason:?} should mention {expected:?}"
            );
        }
        assert_eq!(
            got[0].item.as_ref().err().map(|i| i.text.as_str()),
            Some("ftp://h/a")
        );
        assert_eq!(got[12].item, Ok(item("https://h/ok", None, None)));
        assert_eq!(got[12].line_no, 13);
    }

    #[test]
    fn over_long_lines_are_skipped_without_buffering_them() {
        let mut text = b"https://h/".to_vec();
        text.extend(vec![b'x'; 100_000]);
        text.extend_from_slice(b"\nhttps://h/after\n");
        // A tiny BufReader capacity makes the long line arrive in many pieces.
        let mut reader = ListReader::new(BufReader::with_capacity(16, Cursor::new(text)));
        let first = reader.next().and_then(Result::ok);
        let first = first.map(|e| e.item);
        assert!(matches!(&first, Some(Err(i)) if i.reason.contains("longer than 8192")));
        assert!(reader.buf.capacity() <= 2 * MAX_LINE_BYTES);
        let second = reader
            .next()
            .and_then(Result::ok)
            .map(|e| (e.line_no, e.item));
        assert_eq!(second, Some((2, Ok(item("https://h/after", None, None)))));
        assert!(reader.next().is_none());
    }

    /// The preview of the first line, exactly as the report shows it.
    fn reported_preview(line: &str) -> String {
        let got = entries(line.as_bytes());
        let text = got[0].item.as_ref().err().map(|i| i.text.clone());
        let text = text.unwrap_or_default();
        assert!(!text.is_empty() && text.len() <= PREVIEW_BYTES, "{text}");
        text
    }

    #[test]
    fn a_long_userinfo_does_not_leak_through_the_cut_preview() {
        // The 200-byte preview ends inside the userinfo, before its `@`.
        let line = format!("https://user:{}@h:0/a.jpg\n", "s3cret".repeat(50));
        let shown = reported_preview(&line);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.starts_with("https://***@h:0/"), "{shown}");
        // The line itself is cut at the length limit before its `@`.
        let line = format!("https://user:{}@h/a.jpg\n", "s3cret".repeat(2000));
        let shown = reported_preview(&line);
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn json_escaped_slashes_do_not_hide_credentials_from_redaction() {
        let line = r#"{"url":"http:\/\/user:s3cret@h\/a.jpg","sha256":"12"}"#;
        let shown = reported_preview(&format!("{line}\n"));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains(r"http:\/\/***@h\/a.jpg"), "{shown}");
    }

    #[test]
    fn line_limit_is_exact() {
        let line = |n: usize| format!("https://h/{}\n", "a".repeat(n - 10));
        let ok = entries(line(MAX_LINE_BYTES).as_bytes());
        assert!(ok[0].item.is_ok());
        let long = entries(line(MAX_LINE_BYTES + 1).as_bytes());
        assert!(long[0].item.is_err());
        // The `\r` of a CRLF ending is part of the line.
        let crlf = entries(format!("https://h/{}\r\n", "a".repeat(MAX_LINE_BYTES - 11)).as_bytes());
        assert!(crlf[0].item.is_ok());
    }

    #[test]
    fn bom_only_counts_on_the_first_line() {
        let got = entries(b"https://h/a\n\xEF\xBB\xBFhttps://h/b\n");
        assert!(got[0].item.is_ok());
        assert!(got[1].item.is_err());
    }

    /// Produces `lines` list lines without ever holding them all, and fails after `fail_after` bytes.
    struct Generated {
        produced: u64,
        lines: u64,
        pending: Vec<u8>,
        fail_after: Option<u64>,
        bytes: u64,
    }

    impl Read for Generated {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.fail_after.is_some_and(|limit| self.bytes >= limit) {
                return Err(io::Error::other("disk on fire"));
            }
            if self.pending.is_empty() && self.produced < self.lines {
                self.produced += 1;
                self.pending = format!("https://h/{}.jpg\n", self.produced).into_bytes();
            }
            let n = out.len().min(self.pending.len());
            out[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            self.bytes += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn streams_many_lines_in_constant_memory() {
        let source = Generated {
            produced: 0,
            lines: 200_000,
            pending: Vec::new(),
            fail_after: None,
            bytes: 0,
        };
        let mut reader = ListReader::new(BufReader::new(source));
        let mut count = 0u64;
        for entry in reader.by_ref() {
            let entry = entry.map_err(|e| e.to_string());
            assert!(entry.is_ok_and(|e| e.item.is_ok()));
            count += 1;
        }
        assert_eq!(count, 200_000);
        assert_eq!(reader.lines_read(), 200_000);
        assert!(reader.buf.capacity() < 1024);
    }

    #[test]
    fn read_errors_end_the_stream_as_errors() {
        let source = Generated {
            produced: 0,
            lines: 1000,
            pending: Vec::new(),
            fail_after: Some(100),
            bytes: 0,
        };
        let results: Vec<_> = ListReader::new(BufReader::with_capacity(8, source)).collect();
        assert!(results.len() > 1);
        assert!(results[..results.len() - 1].iter().all(Result::is_ok));
        assert!(results.last().is_some_and(Result::is_err));
    }

    #[test]
    fn urls() {
        for good in [
            "http://h",
            "HTTPS://h/x",
            "https://u:p@h:8080/x?y#z",
            "https://[::1]:443/x",
            "https://h:/x",
            "https://bücher.example/x",
        ] {
            assert_eq!(validate_url(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "h/x",
            "ftp://h/x",
            "file:///etc/passwd",
            "https:///x",
            "https://u@/x",
            "https://h:0/",
            "https://h:x/",
            "https://[::1/",
            "https://[::1]x/",
            "https://h/a\u{0}",
            "https://h/\u{85}",
            "javascript:alert(1)",
            "https://h:1:2/",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }
}
