//! Entry points for the fuzz targets (`tests/fuzz/`) and the property tests: each takes arbitrary
//! bytes, runs one parser on them the way watchdog does, and panics when a property that must hold
//! for every input does not. Built only with the `fuzzing` feature (and in this crate's own tests).

use std::time::Duration;

use crate::batch::list::{invalid, json_line, parse_line};
use crate::duration::{parse_duration, parse_size};
use crate::fetch::proxy::ProxyEnv;
use crate::image::{ImageCheck, Verdict};
use crate::names::output_name;
use crate::protocol::{decode_line, is_json_object, LineReader, MAX_LINE};
use crate::redact::{redact_argv, redact_credentials, redact_credentials_of_prefix};
use crate::url_parts::UrlParts;

/// The progress channel: bytes in chunks of every size, as a pipe may deliver them. No line handed
/// on is longer than the limit, and decoding one never panics.
pub fn progress_channel(data: &[u8]) {
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut reader = LineReader::new();
    for piece in data.chunks(chunk) {
        reader.feed(piece, |line| {
            assert!(line.len() <= MAX_LINE, "a line of {} bytes", line.len());
            if decode_line(line).is_some() {
                assert!(
                    is_json_object(line),
                    "a progress line that is not an object"
                );
            }
        });
    }
}

/// A LIST line, in any of its three forms. An accepted item has an http(s) URL, and written back as
/// a JSON list line (as a retry list has it) reads back as the same URL, path and extra keys; a
/// refused line, as the report shows it (its reason and its preview, whole or cut at the length
/// limit), never shows a password the line carried.
pub fn list_line(data: &[u8]) {
    match parse_line(data) {
        None => {}
        Some(Ok(item)) => {
            assert!(
                UrlParts::split(&item.url).is_http(),
                "accepted a non-http URL: {:?}",
                item.url
            );
            let written = json_line(&item.url, item.path.as_deref(), item.extra.as_ref());
            let written = written.unwrap_or_else(|| panic!("cannot write {item:?} back"));
            match parse_line(written.as_bytes()) {
                Some(Ok(again)) => assert!(
                    (&again.url, &again.path, &again.extra) == (&item.url, &item.path, &item.extra),
                    "{written:?} reads back as {again:?}, not {item:?}"
                ),
                other => panic!("{written:?} written back from {item:?} reads as {other:?}"),
            }
        }
        Some(Err(reason)) => {
            let Ok(text) = std::str::from_utf8(data) else {
                return;
            };
            for cut in [false, true] {
                let shown = invalid(reason.clone(), data, cut);
                let line = text.strip_suffix('\r').unwrap_or(text);
                assert_hidden(line, &shown.text);
                // The reason's own words may hold a short password's bytes ("invalid JSON: ..."),
                // and may quote the host or path, which can hold the same text as the password.
                if let Some((userinfo, password)) = password_of(line, 4) {
                    assert!(
                        !shown.reason.contains(password)
                            || without_userinfo(line, userinfo).contains(password),
                        "{:?} shows the password of {line:?}",
                        shown.reason
                    );
                }
            }
        }
    }
}

/// The `--expect image` check, on any body in chunks of any size (the first byte picks the size): it
/// never panics, reaches the verdict it reaches on the body in one piece, and never takes a verdict
/// back as bytes are added (whole stays whole, malformed stays malformed at the same byte).
pub fn image_check(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let mut at_once = ImageCheck::new();
    let _ = at_once.feed(body);
    let mut chunked = ImageCheck::new();
    for piece in body.chunks(usize::from(first % 64) + 1) {
        let before = chunked.finish();
        let _ = chunked.feed(piece);
        let after = chunked.finish();
        if before != Verdict::Truncated {
            assert_eq!(before, after, "a verdict was taken back");
        }
    }
    assert_eq!(
        chunked.finish(),
        at_once.finish(),
        "the chunking changed the verdict"
    );
}

/// DURATION and size parsing: never a panic; a duration that parses is finite and not negative.
pub fn duration_and_size(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(duration) = parse_duration(text) {
        assert!(
            duration <= Duration::from_secs(1_000_000_000),
            "{text:?} is {duration:?}, past the clamp"
        );
        if let Some(expected) = plain_decimal_duration(text) {
            assert_eq!(duration, expected, "{text:?}");
        }
    }
    let _ = parse_size(text);
}

/// The duration a plain decimal number with an optional unit means, read by the standard library's
/// float parser and clamped as the man page says: `None` for any other form (hex, `inf`, white space).
/// A number that reads as 0 but is not (`1e-400`) may be the smallest step, so it is not judged.
fn plain_decimal_duration(text: &str) -> Option<Duration> {
    let (number, scale) = [
        ("ms", 0.001),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
        ("d", 86400.0),
    ]
    .into_iter()
    .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, scale)))
    .unwrap_or((text, 1.0));
    let decimal = |c: char| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-');
    if number.is_empty() || !number.chars().all(decimal) {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let seconds = value * scale;
    if seconds == 0.0 && number.chars().any(|c| ('1'..='9').contains(&c)) {
        return None;
    }
    if seconds >= 1e9 {
        return Some(Duration::from_secs(1_000_000_000));
    }
    let duration = Duration::from_secs_f64(seconds);
    Some(if duration.is_zero() && seconds > 0.0 {
        Duration::from_nanos(1)
    } else {
        duration
    })
}

/// URL splitting and redaction: redacting twice changes nothing more, and no password survives it,
/// whole or as the start of a line cut short.
pub fn url_redaction(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts = UrlParts::split(text);
    let _ = parts.host_and_port();
    let _ = parts.last_segment();
    let once = redact_credentials(text);
    assert_eq!(redact_credentials(&once), once, "redaction is not stable");
    assert_hidden(text, &once);
    assert_hidden(text, &redact_credentials_of_prefix(text));
}

/// A proxy setting (`-x VALUE`, or an `*_proxy` variable): whatever it is, its credentials appear in
/// none of what watchdog shows of it (the setting as named in messages, its errors, the command line
/// of `--events`), with a scheme or without one.
pub fn proxy_setting(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let as_url = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let as_shown_url = |shown: &str| {
        if shown.contains("://") {
            shown.to_string()
        } else {
            format!("http://{shown}")
        }
    };
    let env = ProxyEnv::from_lookup(|_| None).with_command_line(Some(text), None);
    let mut shown = Vec::new();
    if let Some(word) = redact_argv(&["fetch", "-x", text]).pop() {
        shown.push(as_shown_url(&word));
    }
    if let Some(word) = redact_argv(&["fetch", &format!("--proxy={text}")]).pop() {
        shown.push(as_shown_url(word.trim_start_matches("--proxy=")));
    }
    if let Some(setting) = env.proxy_for("http", "h", 80) {
        let named = setting.shown();
        shown.push(named.trim_end_matches(" (from -x/--proxy)").to_string());
        // Errors name the setting the same way.
        let _ = setting.kind();
        let _ = setting.host_port();
    }
    for line in shown {
        assert_hidden(&as_url, &line);
    }
}

/// Output names: a URL, optionally a TAB and a PATH as in a LIST line. A name is never empty, never
/// absolute, never climbs out of DIR, and never carries the URL's credentials.
pub fn output_names(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (url, path) = match text.split_once('\t') {
        Some((url, path)) => (url, Some(path)),
        None => (text, None),
    };
    let Ok(name) = output_name(url, path) else {
        return;
    };
    assert!(!name.is_empty(), "an empty name for {text:?}");
    assert!(
        !name.starts_with('/') && !name.starts_with('\\'),
        "an absolute name {name:?}"
    );
    for component in name.split(['/', '\\']) {
        assert!(
            !component.is_empty() && component != "." && component != "..",
            "{name:?} leaves DIR or has an empty component"
        );
    }
    if path.is_none() {
        assert_name_hidden(url, &name);
    }
}

/// The userinfo and password of `text`'s URL (one with a `scheme://`), when it has a password of at
/// least `min_len` bytes, not already `***` and without a `*` (which the `***` put in its place could
/// spell), in a userinfo with nothing a userinfo cannot hold (RFC 3986: no quote, no white space), so
/// that text around a URL is not mistaken for its credentials.
fn password_of(text: &str, min_len: usize) -> Option<(&str, &str)> {
    let parts = UrlParts::split(text);
    let (Some(_), Some(userinfo)) = (parts.scheme, parts.userinfo) else {
        return None;
    };
    let (_, password) = userinfo.split_once(':')?;
    let not_userinfo = [' ', '\t', '\n', '\r', '"', '\\'];
    (password.len() >= min_len && !password.contains('*') && !userinfo.contains(not_userinfo))
        .then_some((userinfo, password))
}

/// Panics when `shown` (a redacted form of `original`, or text made from it) shows the password of
/// `original`'s URL anywhere: it may hold the password's bytes only as often as `original` does once
/// its userinfo is replaced by `***` (a one-byte password is also a letter of the host).
fn assert_hidden(original: &str, shown: &str) {
    let Some((userinfo, password)) = password_of(original, 1) else {
        return;
    };
    let allowed = without_userinfo(original, userinfo)
        .matches(password)
        .count();
    assert!(
        shown.matches(password).count() <= allowed,
        "{shown:?} shows the password of {original:?}"
    );
}

/// `original` with its `userinfo` (a slice of it) replaced by `***` where it is, not where its text
/// first occurs: what a redacted form may show.
fn without_userinfo(original: &str, userinfo: &str) -> String {
    let at = userinfo.as_ptr() as usize - original.as_ptr() as usize;
    format!("{}***{}", &original[..at], &original[at + userinfo.len()..])
}

/// Panics when an output name carries the userinfo of its URL (unless the URL's path carries it too).
fn assert_name_hidden(url: &str, name: &str) {
    let Some((userinfo, _)) = password_of(url, 4) else {
        return;
    };
    let parts = UrlParts::split(url);
    let elsewhere = [parts.path, parts.query]
        .into_iter()
        .flatten()
        .any(|p| p.contains(userinfo));
    assert!(
        elsewhere || !name.contains(userinfo),
        "the name {name:?} carries the credentials of {url:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text that looks like what these parsers meet: URLs with and without credentials, paths with
    /// dots and separators, JSON, durations, and some noise.
    fn urlish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("http://".to_string()),
            Just("https://".to_string()),
            Just("ftp://".to_string()),
            Just("socks5h://".to_string()),
            Just("socks4a://".to_string()),
            Just("user:s3cretpw@".to_string()),
            Just(":\\/\\/".to_string()),
            Just("@".to_string()),
            Just("/".to_string()),
            Just("\\".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just("%2F".to_string()),
            Just("%2e%2e".to_string()),
            Just("?q=1".to_string()),
            Just("#f".to_string()),
            Just("[::1]:80".to_string()),
            Just("\t".to_string()),
            Just("{\"url\":\"".to_string()),
            Just("\",\"path\":\"".to_string()),
            Just("\"}".to_string()),
            // Extra keys of a JSON line, between two string values.
            Just("\",\"id\":12345678901234567890123,\"c\":\"".to_string()),
            Just("\",\"tags\":[1, {\"x\":null}],\"\\u0041\":\"q \\\"".to_string()),
            "[a-zA-Z0-9._~-]{0,8}",
            "\\PC{0,4}",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|parts| parts.concat())
    }

    proptest! {
        // No regression files: a failure found here becomes a named unit test beside the code it
        // concerns (see redact.rs), as the fuzz targets' findings do.
        #![proptest_config(ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn names_stay_inside_dir_and_carry_no_credential(text in urlish()) {
            output_names(text.as_bytes());
        }

        #[test]
        fn redaction_hides_every_password(text in urlish()) {
            url_redaction(text.as_bytes());
        }

        #[test]
        fn proxy_settings_never_show_their_password(text in urlish()) {
            proxy_setting(text.as_bytes());
        }

        #[test]
        fn list_lines_accept_only_http_and_hide_passwords(text in urlish()) {
            list_line(text.as_bytes());
        }

        #[test]
        fn durations_and_sizes_never_panic(text in "[0-9a-fA-FxXpP.+e-]{0,12}[smhdKMG]?") {
            duration_and_size(text.as_bytes());
        }

        #[test]
        fn image_checks_never_panic_whatever_the_chunks(
            head in prop_oneof![Just(&b"\xFF\xD8\xFF"[..]), Just(&b"\x89PNG\r\n\x1A\n"[..]), Just(&b"GIF89a"[..]),
                Just(&b"RIFF\x40\0\0\0WEBP"[..]), Just(&b"BM"[..]), Just(&b"II*\0"[..]), Just(&b"MM\0*"[..])],
            tail in proptest::collection::vec(any::<u8>(), 0..2048),
            first in any::<u8>(),
        ) {
            image_check(&[&[first], head, &tail[..]].concat());
        }

        #[test]
        fn plain_decimal_durations_are_read_and_clamped(
            text in "[0-9]{1,4}(\\.[0-9]{0,3})?([eE][+-]?[0-9]{1,2})?(ms|s|m|h|d)?"
        ) {
            duration_and_size(text.as_bytes());
        }

        #[test]
        fn the_progress_channel_bounds_its_lines(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            progress_channel(&data);
        }
    }

    /// Found by the property test: the port text quoted by the reason (`invalid port ':1]:80'`) is
    /// the host's, which happens to hold the same bytes as the password; the host is not secret.
    #[test]
    fn a_reason_may_quote_a_host_that_holds_the_passwords_text() {
        list_line(b"https://[::1]:80@%2F[::1]:80");
    }

    #[test]
    fn a_password_left_anywhere_is_caught() {
        for (original, shown) in [
            ("https://u:longpass@h/x", "https://u:longpass@h/x"),
            ("https://u:longpass@h/x", "https://***@h/x?longpass"),
            ("https://u:pw@h/x", "line 1: not a URL https://***@h/x pw"),
            ("https://u:q@h/x", "https://***@h/x?q"),
        ] {
            let result = std::panic::catch_unwind(|| assert_hidden(original, shown));
            assert!(result.is_err(), "{shown:?} passed for {original:?}");
        }
        // Its bytes elsewhere in the original are not the password.
        assert_hidden("https://u:h@h/x", "https://***@h/x");
        // Found by the list_line fuzz target: the userinfo's text also stands before the URL.
        assert_hidden(
            "&-\u{1}\0\0\0\0\0\0\0:\0:@://:\0:@::;",
            "white space or control characters in the URL &-\u{1}\0\0\0\0\0\0\0:\0:@://***@::;",
        );
    }

    #[test]
    fn a_list_line_with_extra_keys_reads_back_the_same() {
        list_line(
            br#"{"id":12345678901234567890123,"url":"https://h/a","tags":[1, {"x":null}],"path":"p/a.jpg","\u0041":"q \""}"#,
        );
        list_line(b"https://h/b\tq/b.jpg");
    }

    #[test]
    fn a_duration_off_the_decimal_reading_is_caught() {
        assert_eq!(
            plain_decimal_duration("1.5m"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            plain_decimal_duration("1e20"),
            Some(Duration::from_secs(1_000_000_000))
        );
        assert_eq!(plain_decimal_duration("1e-400"), None);
        assert_eq!(
            plain_decimal_duration("1e-12"),
            Some(Duration::from_nanos(1))
        );
        assert_eq!(plain_decimal_duration("0x10"), None);
    }
}
