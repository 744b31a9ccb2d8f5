//! The batch report: one JSON line per item, a summary, the exit code, and what a rerun may skip.
//!
//! The report is how a batch "loses nothing": every item of the list ends as exactly one line, written
//! and flushed the moment the item finishes, so a crash or a kill leaves a report that is complete up
//! to that moment. A rerun with the same list reads it back ([`DoneIndex`]) and skips what is done.
//!
//! A line has exactly these keys, `null` where a value does not apply:
//!
//! ```text
//! {"url":"https://***@host/a.jpg","path":"a.jpg","status":"ok","http_status":200,"bytes":5120,
//!  "sha256":"<64 hex>","attempts":1,"elapsed_ms":84,"error":null}
//! ```
//!
//! `url` and `error` never carry credentials (`user:password@` becomes `***@`); `path` is relative to
//! the output directory; `status` is one of [`Status`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::list::{read_bounded_line, InvalidLine};
use super::spill::SpillMap;
use crate::exit::Exit;
use crate::redact::redact_credentials;

/// How an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The file is complete at its path.
    Ok,
    /// The attempt's deadline (`--timeout`) passed.
    Timeout,
    /// No data arrived for `--stall`.
    Stalled,
    /// The server answered 4xx/5xx, redirected too often, or not in valid HTTP.
    HttpError,
    DnsError,
    ConnectError,
    TlsError,
    /// The body ended before its announced length.
    Truncated,
    /// The body failed `--expect`, `--max-size` or the list's sha256.
    Rejected,
    /// The list line or its URL or path is not usable.
    Invalid,
    /// A local file could not be written.
    IoError,
    /// Nothing to do: already complete from an earlier run, or a duplicate of an earlier line.
    Skipped,
}

impl Status {
    /// Every status, in the order the summary lists them.
    pub const ALL: [Status; 12] = [
        Status::Ok,
        Status::Skipped,
        Status::Timeout,
        Status::Stalled,
        Status::HttpError,
        Status::DnsError,
        Status::ConnectError,
        Status::TlsError,
        Status::Truncated,
        Status::Rejected,
        Status::Invalid,
        Status::IoError,
    ];

    /// The name in the report (`http_error`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Timeout => "timeout",
            Status::Stalled => "stalled",
            Status::HttpError => "http_error",
            Status::DnsError => "dns_error",
            Status::ConnectError => "connect_error",
            Status::TlsError => "tls_error",
            Status::Truncated => "truncated",
            Status::Rejected => "rejected",
            Status::Invalid => "invalid",
            Status::IoError => "io_error",
            Status::Skipped => "skipped",
        }
    }

    /// The status named `name` (the `kind` of the fetch worker's error line).
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The status of a fetch worker that exited with `code`; `None` for codes that are not a download
    /// outcome (124 is `timeout` or `stalled` depending on which timer fired, which the supervisor knows).
    pub fn from_worker_exit(code: u8) -> Option<Status> {
        let status = [
            (Exit::Success, Status::Ok),
            (Exit::InvalidUrl, Status::Invalid),
            (Exit::Dns, Status::DnsError),
            (Exit::Connect, Status::ConnectError),
            (Exit::Tls, Status::TlsError),
            (Exit::HttpStatus, Status::HttpError),
            (Exit::Truncated, Status::Truncated),
            (Exit::Rejected, Status::Rejected),
            (Exit::LocalIo, Status::IoError),
            (Exit::Protocol, Status::HttpError),
        ]
        .into_iter()
        .find(|(exit, _)| exit.code() == code)?
        .1;
        Some(status)
    }

    fn index(self) -> usize {
        Status::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
        }
    }

    /// The entry for a list line that is not a usable item: the line's text stands in for the URL.
    pub fn invalid(line_no: u64, line: &InvalidLine) -> ReportEntry {
        ReportEntry {
            error: Some(format!("line {line_no}: {}", line.reason)),
            ..ReportEntry::new(&line.text, Status::Invalid)
        }
    }

    /// The entry as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        // Serializing plain strings and numbers cannot fail; the fallback keeps the line valid JSON.
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"url\":null,\"path\":null,\"status\":\"{}\",\"http_status\":null,\"bytes\":null,\
                 \"sha256\":null,\"attempts\":{},\"elapsed_ms\":{},\"error\":\"unreportable entry\"}}",
                self.status, self.attempts, self.elapsed_ms
            )
        })
    }
}

/// Appends entries to the report, one `write` and flush per entry, so that every finished item is on
/// disk before the next one is reported.
pub struct ReportWriter {
    file: File,
}

impl ReportWriter {
    /// Opens (or creates) the report for appending. When a previous run was killed in the middle of a
    /// line, that fragment is ended first so the next entry starts on a line of its own.
    pub fn open(path: &Path) -> io::Result<ReportWriter> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(ReportWriter { file })
    }

    pub fn write(&mut self, entry: &ReportEntry) -> io::Result<()> {
        let mut line = entry.to_json_line().into_bytes();
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()
    }
}

/// Counts of a batch's outcomes, for the closing summary and the exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    counts: [u64; 12],
    /// Bytes downloaded by this run (not counting skipped items).
    pub bytes: u64,
}

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    pub fn record(&mut self, entry: &ReportEntry) {
        self.counts[entry.status.index()] += 1;
        if entry.status == Status::Ok {
            self.bytes += entry.bytes.unwrap_or(0);
        }
    }

    pub fn count(&self, status: Status) -> u64 {
        self.counts[status.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Items that ended neither `ok` nor `skipped`.
    pub fn failed(&self) -> u64 {
        self.total() - self.count(Status::Ok) - self.count(Status::Skipped)
    }

    /// [`Exit::Success`] when every item is `ok` or `skipped`, else [`Exit::SomeFailed`].
    pub fn exit(&self) -> Exit {
        if self.failed() == 0 {
            Exit::Success
        } else {
            Exit::SomeFailed
        }
    }

    /// Two lines for a person, e.g.
    /// `1200 items in 1m 05s: 1150 ok, 30 skipped, 20 http_error` and
    /// `17.7 files/s, 2.4 MB/s (153.2 MB downloaded)`.
    pub fn render(&self, elapsed: Duration) -> String {
        let counts: Vec<String> = Status::ALL
            .iter()
            .filter(|s| self.count(**s) > 0)
            .map(|s| format!("{} {}", self.count(*s), s))
            .collect();
        let counts = if counts.is_empty() {
            "nothing to do".to_string()
        } else {
            counts.join(", ")
        };
        let seconds = elapsed.as_secs_f64().max(0.001);
        let items = self.total();
        format!(
            "{items} item{} in {}: {counts}\n{:.1} files/s, {:.1} MB/s ({} downloaded)",
            if items == 1 { "" } else { "s" },
            render_duration(elapsed),
            self.count(Status::Ok) as f64 / seconds,
            self.bytes as f64 / 1e6 / seconds,
            render_bytes(self.bytes),
        )
    }
}

fn render_duration(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    match secs {
        0..=59 => format!("{:.1}s", elapsed.as_secs_f64()),
        60..=3599 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m {:02}s", secs / 3600, secs / 60 % 60, secs % 60),
    }
}

fn render_bytes(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes} B"),
        1_000..=999_999 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
}

/// Report lines longer than this are not from watchdog and are ignored when resuming.
const MAX_REPORT_LINE: usize = 64 * 1024;

/// What a previous run left at a path: the size, and (when the report had one) the start of the
/// SHA-256 the file must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub bytes: u64,
    /// The first 8 bytes of the SHA-256, big-endian.
    pub sha256_prefix: Option<u64>,
}

/// The items earlier runs finished, read back from the report for resuming.
///
/// Only `ok` lines count, keyed by a 64-bit hash of (path, URL): the URL is part of the key because
/// names depend on the order of the list, so after the list changed, a path may belong to another URL
/// than the one whose file is there. A later `ok` line for the same key replaces an earlier one; a
/// failure does not undo an earlier `ok` (files are only ever renamed into place complete, so the
/// earlier file is still whole).
///
/// Memory: 24 bytes per `ok` line (key, size, 64 bits of the SHA-256) in a [`SpillMap`]: in memory up
/// to 32,768 lines (768 kB), in an unlinked file in the output directory beyond that (48 to 96 bytes
/// of disk per line), so resuming a run of a million items takes about the memory of one of a
/// thousand. Measured (`scripts/bench.sh memory`, mode `resume`): 5.1 MB peak resident for a million
/// `ok` lines against 4.2 MB for a thousand, where it was 47 MB with the index in memory; reading them
/// and planning the list took 5.1 s instead of 3.3 s. The report is read as a stream, one bounded line
/// at a time. Keeping 64 of the SHA-256's 256 bits is enough to catch a file that was altered or cut
/// short by accident (a chance of 2^-64 to miss one), and a third of the space of the whole digest.
pub struct DoneIndex {
    done: SpillMap<(u64, u64)>,
}

/// Why [`DoneIndex::load`] failed.
#[derive(Debug)]
pub enum LoadError {
    /// The report could not be read.
    Report(io::Error),
    /// The index could not be written to (or read from) its file in the spill directory.
    Index(io::Error),
}

impl From<LoadError> for io::Error {
    fn from(err: LoadError) -> io::Error {
        match err {
            LoadError::Report(err) | LoadError::Index(err) => err,
        }
    }
}

/// Marks a stored size whose entry has a SHA-256 prefix; sizes never reach 2^63.
const HAS_SHA256: u64 = 1 << 63;

impl DoneIndex {
    /// An index of nothing done, for a fresh run; `spill_dir` as for [`DoneIndex::load`].
    pub fn new(spill_dir: &Path) -> DoneIndex {
        DoneIndex {
            done: SpillMap::new(spill_dir),
        }
    }

    /// Reads the report at `path`; no report yet means nothing is done. A long report's index is kept
    /// in a file in `spill_dir` (the output directory).
    pub fn load(path: &Path, spill_dir: &Path) -> Result<DoneIndex, LoadError> {
        match File::open(path) {
            Ok(file) => DoneIndex::read(BufReader::new(file), spill_dir),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(DoneIndex::new(spill_dir)),
            Err(err) => Err(LoadError::Report(err)),
        }
    }

    /// Reads a report. Lines that are not report entries (such as the fragment a killed run left)
    /// are ignored.
    pub fn read<R: BufRead>(input: R, spill_dir: &Path) -> Result<DoneIndex, LoadError> {
        let mut index = DoneIndex::new(spill_dir);
        index.add_report(input)?;
        Ok(index)
    }

    /// Adds the `ok` lines of a report.
    fn add_report<R: BufRead>(&mut self, mut input: R) -> Result<(), LoadError> {
        let mut line = Vec::new();
        while let Some(too_long) =
            read_bounded_line(&mut input, &mut line, MAX_REPORT_LINE).map_err(LoadError::Report)?
        {
            if too_long {
                continue;
            }
            let Ok(entry) = serde_json::from_slice::<ReportEntry>(&line) else {
                continue;
            };
            if entry.status != Status::Ok {
                continue;
            }
            let (Some(path), Some(bytes)) = (entry.path.as_deref(), entry.bytes) else {
                continue;
            };
            if bytes >= HAS_SHA256 {
                continue;
            }
            let value = match entry.sha256.as_deref().and_then(sha256_prefix) {
                Some(prefix) => (bytes | HAS_SHA256, prefix),
                None => (bytes, 0),
            };
            self.done
                .insert(done_key(path, &entry.url), value)
                .map_err(LoadError::Index)?;
        }
        Ok(())
    }

    /// What the file at `path` (relative to the output directory) must be for the item `url` to count
    /// as done; `None` when no earlier run finished it. Fails only when the index on disk cannot be
    /// read.
    pub fn expected(&self, url: &str, path: &str) -> io::Result<Option<Expected>> {
        let Some((bytes, prefix)) = self.done.get(done_key(path, url))? else {
            return Ok(None);
        };
        Ok(Some(Expected {
            bytes: bytes & !HAS_SHA256,
            sha256_prefix: (bytes & HAS_SHA256 != 0).then_some(prefix),
        }))
    }

    /// Finished items remembered.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The size of the index file on disk, in bytes; 0 while the index is in memory.
    pub fn file_bytes(&self) -> u64 {
        self.done.file_bytes()
    }
}

/// The key of an item: URLs are compared in their redacted form, which is all the report has.
fn done_key(path: &str, url: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"done\0");
    hasher.update(path.as_bytes());
    hasher.update(b"\0");
    hasher.update(redact_credentials(url).as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

fn sha256_prefix(hex: &str) -> Option<u64> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(&hex[..16], 16).ok()
}

/// Whether `file` is what an earlier run finished: a regular file (a symbolic link does not count) of
/// the expected size and, when known, SHA-256. A missing file is simply not done. This reads the whole
/// file when a digest is expected, so it belongs where slow I/O cannot stall the batch (a worker).
pub fn is_done(file: &Path, expected: &Expected) -> io::Result<bool> {
    let metadata = match std::fs::symlink_metadata(file) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    if !metadata.is_file() || metadata.len() != expected.bytes {
        return Ok(false);
    }
    let Some(prefix) = expected.sha256_prefix else {
        return Ok(true);
    };
    let mut hasher = Sha256::new();
    let mut reader = File::open(file)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Ok(u64::from_be_bytes(first) == prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn ok_entry(url: &str, path: &str, body: &[u8]) -> ReportEntry {
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

    #[test]
    fn statuses_serialize_to_their_report_names() {
        for status in Status::ALL {
            let json = serde_json::to_string(&status).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(Status::from_name(status.as_str()), Some(status));
        }
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        let mut expected = vec![
            "ok",
            "timeout",
            "stalled",
            "http_error",
            "dns_error",
            "connect_error",
            "tls_error",
            "truncated",
            "rejected",
            "invalid",
            "io_error",
            "skipped",
        ];
        let mut sorted = names.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        assert_eq!(Status::from_name("nope"), None);
    }

    #[test]
    fn worker_exit_codes_map_to_statuses() {
        assert_eq!(Status::from_worker_exit(0), Some(Status::Ok));
        assert_eq!(Status::from_worker_exit(11), Some(Status::DnsError));
        assert_eq!(Status::from_worker_exit(14), Some(Status::HttpError));
        assert_eq!(Status::from_worker_exit(17), Some(Status::IoError));
        assert_eq!(Status::from_worker_exit(124), None);
        assert_eq!(Status::from_worker_exit(125), None);
    }

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
        writer.write(&ReportEntry::new("https://h/b", Status::Timeout))?;
        // Visible to a reader at once, without dropping the writer.
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("{\"url\":\"https://h/b\""));
        drop(writer);
        let mut writer = ReportWriter::open(&path)?;
        writer.write(&ReportEntry::new("https://h/c", Status::Ok))?;
        assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 3);
        Ok(())
    }

    #[test]
    fn summary_counts_and_exit_codes() {
        let mut summary = Summary::new();
        assert_eq!(summary.exit(), Exit::Success);
        let mut ok = ReportEntry::new("https://h/a", Status::Ok);
        ok.bytes = Some(2_500_000);
        summary.record(&ok);
        summary.record(&ReportEntry::new("https://h/b", Status::Skipped));
        assert_eq!(summary.exit(), Exit::Success);
        summary.record(&ReportEntry::new("https://h/c", Status::HttpError));
        summary.record(&ReportEntry::new("https://h/d", Status::HttpError));
        assert_eq!(summary.exit(), Exit::SomeFailed);
        assert_eq!(summary.total(), 4);
        assert_eq!(summary.failed(), 2);
        assert_eq!(summary.count(Status::HttpError), 2);
        let text = summary.render(Duration::from_secs(2));
        assert!(
            text.starts_with("4 items in 2.0s: 1 ok, 1 skipped, 2 http_error"),
            "{text}"
        );
        assert!(
            text.contains("0.5 files/s, 1.2 MB/s (2.5 MB downloaded)"),
            "{text}"
        );
        assert!(Summary::new()
            .render(Duration::from_secs(3700))
            .contains("1h 01m 40s"));
        let mut invalid_only = Summary::new();
        invalid_only.record(&ReportEntry::new("x", Status::Invalid));
        assert_eq!(invalid_only.exit(), Exit::SomeFailed);
    }

    #[test]
    fn resume_counts_only_intact_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let body = b"an image body".repeat(1000);
        let mut report = Vec::new();
        for (url, path) in [
            ("https://u:pw@h/a.jpg", "a.jpg"),
            ("https://h/b.jpg", "b.jpg"),
            ("https://h/c.jpg", "c.jpg"),
            ("https://h/d.jpg", "d.jpg"),
        ] {
            report.extend(ok_entry(url, path, &body).to_json_line().into_bytes());
            report.push(b'\n');
        }
        // Failures and noise do not count, nor undo an earlier ok.
        report.extend(
            ReportEntry::new("https://h/b.jpg", Status::Timeout)
                .to_json_line()
                .into_bytes(),
        );
        report.extend(b"\nnot json\n\n{\"url\":\"https://h/e.jpg\",\"path\":\"e.jpg\",\"sta");
        let index = DoneIndex::read(Cursor::new(report), dir.path())?;
        assert_eq!(index.len(), 4);

        let a = dir.path().join("a.jpg");
        std::fs::write(&a, &body)?;
        let b = dir.path().join("b.jpg");
        std::fs::write(&b, &body[..body.len() - 1])?;
        let c = dir.path().join("c.jpg");
        let mut altered = body.clone();
        altered[5] ^= 1;
        std::fs::write(&c, &altered)?;

        // The report only knows the redacted URL; the list has the real one.
        let expect_a = index.expected("https://u:pw@h/a.jpg", "a.jpg")?;
        assert!(expect_a.is_some_and(|e| e.bytes == body.len() as u64 && e.sha256_prefix.is_some()));
        let done = |url: &str, path: &str, file: &Path| -> io::Result<bool> {
            match index.expected(url, path)? {
                Some(expected) => is_done(file, &expected),
                None => Ok(false),
            }
        };
        assert!(done("https://u:pw@h/a.jpg", "a.jpg", &a)?);
        assert!(!done("https://h/b.jpg", "b.jpg", &b)?, "truncated");
        assert!(!done("https://h/c.jpg", "c.jpg", &c)?, "altered, same size");
        assert!(
            !done("https://h/d.jpg", "d.jpg", &dir.path().join("d.jpg"))?,
            "missing"
        );
        assert!(
            !done("https://h/e.jpg", "e.jpg", &dir.path().join("e.jpg"))?,
            "never finished"
        );
        // Another URL at the same path is not done, even though the file is intact.
        assert!(!done("https://h/other.jpg", "a.jpg", &a)?);
        // Without a digest in the report, the size decides.
        let sizes_only = Expected {
            bytes: body.len() as u64,
            sha256_prefix: None,
        };
        assert!(is_done(&c, &sizes_only)?);
        // A symbolic link is not a finished download.
        let link = dir.path().join("link.jpg");
        std::os::unix::fs::symlink(&a, &link)?;
        let expect_a = expect_a.unwrap_or(sizes_only);
        assert!(!is_done(&link, &expect_a)?);
        Ok(())
    }

    #[test]
    fn resume_with_no_report_yet() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let index = DoneIndex::load(&dir.path().join("report.jsonl"), dir.path())?;
        assert!(index.is_empty());
        Ok(())
    }

    #[test]
    fn a_later_ok_replaces_an_earlier_one() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = ok_entry("https://h/a", "a", b"old");
        let second = ok_entry("https://h/a", "a", b"newer body");
        let report = format!("{}\n{}\n", first.to_json_line(), second.to_json_line());
        let index = DoneIndex::read(Cursor::new(report), dir.path())?;
        assert_eq!(
            index.expected("https://h/a", "a")?.map(|e| e.bytes),
            Some(10)
        );
        Ok(())
    }

    /// A report longer than the index keeps in memory: every `ok` line is still found, from disk.
    #[test]
    fn a_long_report_is_indexed_on_disk() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut report = String::new();
        for i in 0..300u64 {
            let mut entry = ok_entry(&format!("https://h/{i}"), &format!("{i}.jpg"), b"x");
            entry.bytes = Some(i);
            if i % 2 == 0 {
                entry.sha256 = None;
            }
            report.push_str(&entry.to_json_line());
            report.push('\n');
        }
        let mut index = DoneIndex {
            done: SpillMap::with_memory_entries(dir.path(), 50),
        };
        index.add_report(Cursor::new(report))?;
        assert!(index.file_bytes() > 0);
        assert_eq!(index.len(), 300);
        for i in 0..300u64 {
            let expected = index.expected(&format!("https://h/{i}"), &format!("{i}.jpg"))?;
            assert_eq!(expected.map(|e| e.bytes), Some(i));
            assert_eq!(
                expected.is_some_and(|e| e.sha256_prefix.is_some()),
                i % 2 == 1
            );
        }
        assert_eq!(index.expected("https://h/1", "2.jpg")?, None);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }

    #[test]
    fn an_index_that_cannot_be_written_is_not_a_report_error() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut report = String::new();
        for i in 0..20 {
            report.push_str(&ok_entry(&format!("https://h/{i}"), "a", b"x").to_json_line());
            report.push('\n');
        }
        let mut index = DoneIndex {
            done: SpillMap::with_memory_entries(&dir.path().join("gone"), 10),
        };
        let got = index.add_report(Cursor::new(report));
        assert!(matches!(got, Err(LoadError::Index(_))), "{got:?}");
        Ok(())
    }
}
