//! The batch report: one JSON line per item, written the moment the item finishes.
//!
//! The report is how a batch "loses nothing": every item of the list ends as exactly one line, written
//! and flushed the moment the item finishes, so a crash or a kill leaves a report that is complete up
//! to that moment. A rerun with the same list reads it back (`super::resume::DoneIndex`) and skips
//! what is done.
//!
//! A line has exactly these keys, `null` where a value does not apply:
//!
//! ```text
//! {"url":"https://***@host/a.jpg","path":"a.jpg","status":"ok","http_status":200,"bytes":5120,
//!  "sha256":"<64 hex>","attempts":1,"elapsed_ms":84,"error":null,
//!  "finished_at":"2026-12-02T02:33:12.123Z","run":"2026-12-02T02:30:00.000Z-4711","extra":null}
//! ```
//!
//! `url` and `error` never carry credentials (`user:password@` becomes `***@`); `path` is relative to
//! the output directory; `status` is one of [`Status`]; `finished_at` is when the line was written
//! (UTC), `run` names the batch invocation that wrote it, and `extra` holds the other keys of the
//! item's JSON list line, unchanged. Lines of earlier versions lack the last three and still read.
//!
//! Where the report goes: a regular file is appended to and read back by the next run for resuming;
//! standard output (`-`), a pipe, a FIFO or a character device is a stream, written one flushed line
//! per item and never read back. The default report, inside the output directory, is opened without
//! following a symbolic link, as the downloads are.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::list::{Extra, InvalidLine};
use super::status::Status;
use super::timestamp::format_utc_millis;
use crate::redact::redact_credentials;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportEntry {
    #[serde(serialize_with = "serialize_redacted")]
    pub url: String,
    /// Relative to the output directory.
    pub path: Option<String>,
    pub status: Status,
    pub http_status: Option<u16>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    pub attempts: u32,
    pub elapsed_ms: u64,
    #[serde(serialize_with = "serialize_redacted_option")]
    pub error: Option<String>,
    /// When the line was written, UTC, RFC 3339 with milliseconds; set by [`ReportWriter::write`].
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The batch invocation that wrote the line; set by [`ReportWriter::write`].
    #[serde(default)]
    pub run: Option<String>,
    /// The other keys of the item's JSON list line.
    #[serde(default)]
    pub extra: Option<Extra>,
}

fn serialize_redacted<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_credentials(text))
}

fn serialize_redacted_option<S: Serializer>(
    text: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => serializer.serialize_str(&redact_credentials(text)),
        None => serializer.serialize_none(),
    }
}

impl ReportEntry {
    /// An entry with only `url` and `status` set.
    pub fn new(url: &str, status: Status) -> ReportEntry {
        ReportEntry {
            url: url.to_string(),
            path: None,
            status,
            http_status: None,
            bytes: None,
            sha256: None,
            attempts: 0,
            elapsed_ms: 0,
            error: None,
            finished_at: None,
            run: None,
            extra: None,
        }
    }

    /// The entry for a list line that is not a usable item: the line's text stands in for the URL.
    pub fn invalid(line_no: u64, line: &InvalidLine) -> ReportEntry {
        ReportEntry {
            error: Some(format!("line {line_no}: {}", line.reason)),
            ..ReportEntry::new(&line.text, Status::Invalid)
        }
    }

    /// The key of the item this line is about; see [`item_key`].
    pub fn key(&self) -> u64 {
        item_key(self.path.as_deref().unwrap_or(""), &self.url)
    }

    /// The entry as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        // Serializing plain strings and numbers cannot fail; the fallback keeps the line valid JSON.
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"url\":null,\"path\":null,\"status\":\"{}\",\"http_status\":null,\"bytes\":null,\
                 \"sha256\":null,\"attempts\":{},\"elapsed_ms\":{},\"error\":\"unreportable entry\",\
                 \"finished_at\":null,\"run\":null,\"extra\":null}}",
                self.status, self.attempts, self.elapsed_ms
            )
        })
    }
}

/// The key of an item, the same for every reader of reports (resume, `watchdog report`): its path
/// relative to the output directory (empty for an item without one, such as an invalid line) and its
/// URL in the redacted form, which is all a report has. 64 bits of a SHA-256: two of a million items
/// share a key with a chance of 3 in 10^8.
pub fn item_key(path: &str, url: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"item\0");
    hasher.update(path.as_bytes());
    hasher.update(b"\0");
    hasher.update(redact_credentials(url).as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Where the report of a batch goes, and whether it can be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportPath {
    /// `DIR/report.jsonl`: inside the output directory, so a symbolic link there is refused.
    Default(std::path::PathBuf),
    /// `--report PATH`: the user's choice, opened as given (`-` is standard output).
    Given(std::path::PathBuf),
}

impl ReportPath {
    pub fn path(&self) -> &Path {
        match self {
            ReportPath::Default(path) | ReportPath::Given(path) => path,
        }
    }
}

/// The report, opened.
pub struct OpenReport {
    pub writer: ReportWriter,
    /// The report as a regular file, to read back for resuming (its offset is at the start); `None`
    /// for a stream.
    pub earlier: Option<File>,
}

/// Opens the report for a batch, before anything is downloaded. Fails (with the message for the
/// one error line) when it is a directory, a symbolic link where the default report goes, or cannot
/// be opened.
pub fn open_report(report: &ReportPath, run: &str) -> Result<OpenReport, String> {
    let path = report.path();
    let error = |e: io::Error| format!("cannot open the report '{}': {e}", path.display());
    if path.as_os_str() == "-" {
        return Ok(OpenReport {
            writer: ReportWriter::new(Box::new(io::stdout()), run),
            earlier: None,
        });
    }
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true).mode(0o666);
    match report {
        ReportPath::Default(_) => {
            // The output directory may be shared: a link planted at the report's name must not
            // take the report (and its appends) elsewhere.
            options.custom_flags(libc::O_NOFOLLOW);
        }
        ReportPath::Given(_) => {
            let kind = std::fs::metadata(path).map(|m| m.file_type());
            if let Ok(kind) = &kind {
                if kind.is_dir() {
                    return Err(format!(
                        "cannot open the report '{}': it is a directory",
                        path.display()
                    ));
                }
                if kind.is_fifo() || kind.is_char_device() || kind.is_socket() {
                    // Written only: a reader of a pipe must see EOF when watchdog ends, and a
                    // stream cannot be read back.
                    let stream = OpenOptions::new().write(true).open(path).map_err(error)?;
                    return Ok(OpenReport {
                        writer: ReportWriter::new(Box::new(stream), run),
                        earlier: None,
                    });
                }
            }
        }
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!(
                "cannot open the report '{}': it is a symbolic link, and watchdog follows none \
                 inside the output directory (remove it, or give --report PATH)",
                path.display()
            ))
        }
        Err(e) => return Err(error(e)),
    };
    let kind = file.metadata().map_err(error)?.file_type();
    if kind.is_dir() {
        return Err(format!(
            "cannot open the report '{}': it is a directory",
            path.display()
        ));
    }
    if !kind.is_file() {
        // A FIFO or device at the default name: written as a stream, never read back.
        return Ok(OpenReport {
            writer: ReportWriter::new(Box::new(file), run),
            earlier: None,
        });
    }
    end_last_line(&file).map_err(error)?;
    let earlier = file.try_clone().map_err(error)?;
    Ok(OpenReport {
        writer: ReportWriter::new(Box::new(file), run),
        earlier: Some(earlier),
    })
}

/// When a previous run was killed in the middle of a line, ends that fragment so the next entry
/// starts on a line of its own; leaves the offset at the start, for reading the report back.
fn end_last_line(mut file: &File) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
        file.seek(SeekFrom::Start(0))?;
    }
    Ok(())
}

/// The id of one batch invocation, for the `run` key of its report lines: when it started (UTC) and
/// its process id, so that ids sort by start time and two runs started in the same millisecond differ.
pub fn new_run_id() -> String {
    format!(
        "{}-{}",
        format_utc_millis(SystemTime::now()),
        std::process::id()
    )
}

/// Appends entries to the report, one `write` and flush per entry, so that every finished item is
/// on disk (or in the pipe) before the next one is reported.
pub struct ReportWriter {
    out: Box<dyn Write>,
    run: String,
}

impl ReportWriter {
    /// A writer to `out` that stamps every entry with `run`.
    pub fn new(out: Box<dyn Write>, run: &str) -> ReportWriter {
        ReportWriter {
            out,
            run: run.to_string(),
        }
    }

    /// Opens (or creates) the regular file at `path` for appending, as [`open_report`] does with
    /// `--report PATH`.
    #[cfg(test)]
    pub fn open(path: &Path) -> io::Result<ReportWriter> {
        open_report(&ReportPath::Given(path.to_path_buf()), "test")
            .map(|open| open.writer)
            .map_err(io::Error::other)
    }

    /// Stamps `entry` with the time and this run, and writes it as one line.
    pub fn write(&mut self, entry: &mut ReportEntry) -> io::Result<()> {
        entry.finished_at = Some(format_utc_millis(SystemTime::now()));
        entry.run = Some(self.run.clone());
        let mut line = entry.to_json_line().into_bytes();
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }
}

/// Report entries for the tests of the modules that read reports back.
#[cfg(test)]
pub(super) mod testing {
    use sha2::{Digest, Sha256};

    use super::{ReportEntry, Status};

    /// The `ok` entry of `body` fetched from `url` to `path`, with its size and SHA-256.
    pub fn ok_entry(url: &str, path: &str, body: &[u8]) -> ReportEntry {
        let digest = Sha256::digest(body);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        ReportEntry {
            path: Some(path.to_string()),
            http_status: Some(200),
            bytes: Some(body.len() as u64),
            sha256: Some(hex),
            attempts: 1,
            elapsed_ms: 12,
            ..ReportEntry::new(url, Status::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_one_json_line_with_exactly_the_report_keys() {
        let mut entry = ReportEntry::new("https://user:pw@h/a.jpg", Status::HttpError);
        entry.http_status = Some(404);
        entry.attempts = 1;
        entry.error = Some("GET https://user:pw@h/a.jpg: 404 Not Found".into());
        let line = entry.to_json_line();
        assert!(!line.contains('\n'));
        assert!(!line.contains("pw"), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let keys: Vec<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut expected = vec![
            "url",
            "path",
            "status",
            "http_status",
            "bytes",
            "sha256",
            "attempts",
            "elapsed_ms",
            "error",
            "finished_at",
            "run",
            "extra",
        ];
        let mut keys = keys;
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["url"], "https://***@h/a.jpg");
        assert_eq!(value["status"], "http_error");
        assert_eq!(value["http_status"], 404);
        assert!(value["path"].is_null() && value["bytes"].is_null() && value["sha256"].is_null());
    }

    #[test]
    fn invalid_lines_are_reported_with_their_line_number() {
        let line = InvalidLine {
            reason: "not an http or https URL".into(),
            text: "ftp://u:p@h/x".into(),
        };
        let entry = ReportEntry::invalid(7, &line);
        let value: serde_json::Value =
            serde_json::from_str(&entry.to_json_line()).unwrap_or_default();
        assert_eq!(value["status"], "invalid");
        assert_eq!(value["url"], "ftp://***@h/x");
        assert_eq!(value["error"], "line 7: not an http or https URL");
    }

    #[test]
    fn the_writer_appends_whole_lines_even_after_a_killed_run() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("report.jsonl");
        std::fs::write(&path, "{\"url\":\"https://h/a\",\"pa")?;
        let mut writer = ReportWriter::open(&path)?;
        writer.write(&mut ReportEntry::new("https://h/b", Status::Timeout))?;
        // Visible to a reader at once, without dropping the writer.
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("{\"url\":\"https://h/b\""));
        drop(writer);
        let mut writer = ReportWriter::open(&path)?;
        writer.write(&mut ReportEntry::new("https://h/c", Status::Ok))?;
        assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 3);
        Ok(())
    }
}
