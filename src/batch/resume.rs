//! What earlier runs finished, read back from the report, so that a rerun skips it.
//!
//! A rerun must neither download again what is done nor trust a file that changed since; this index
//! remembers, for every `ok` line, the size and the start of the SHA-256 the file had, and
//! `super::verify::is_done` checks a file against that.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::list::read_bounded_line;
use super::report::{item_key, ReportEntry};
use super::spill::SpillMap;
use super::status::Status;

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
    #[cfg(test)]
    pub fn load(path: &Path, spill_dir: &Path) -> Result<DoneIndex, LoadError> {
        match File::open(path) {
            Ok(file) => DoneIndex::from_report(file, spill_dir),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(DoneIndex::new(spill_dir)),
            Err(err) => Err(LoadError::Report(err)),
        }
    }

    /// Reads the open report `file` from its current offset. Only a regular file is read back: a
    /// pipe, FIFO or device would block or be consumed, so it is refused with an error that says so.
    pub fn from_report(file: File, spill_dir: &Path) -> Result<DoneIndex, LoadError> {
        if !file.metadata().map_err(LoadError::Report)?.is_file() {
            return Err(LoadError::Report(io::Error::other(
                "not a regular file: a report is read back for resuming only from a file",
            )));
        }
        DoneIndex::read(BufReader::with_capacity(64 * 1024, file), spill_dir)
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
                .insert(item_key(path, &entry.url), value)
                .map_err(LoadError::Index)?;
        }
        Ok(())
    }

    /// What the file at `path` (relative to the output directory) must be for the item `url` to count
    /// as done; `None` when no earlier run finished it. Fails only when the index on disk cannot be
    /// read.
    pub fn expected(&self, url: &str, path: &str) -> io::Result<Option<Expected>> {
        let Some((bytes, prefix)) = self.done.get(item_key(path, url))? else {
            return Ok(None);
        };
        Ok(Some(Expected {
            bytes: bytes & !HAS_SHA256,
            sha256_prefix: (bytes & HAS_SHA256 != 0).then_some(prefix),
        }))
    }

    #[cfg(test)]
    /// Finished items remembered.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    #[cfg(test)]
    /// The size of the index file on disk, in bytes; 0 while the index is in memory.
    pub fn file_bytes(&self) -> u64 {
        self.done.file_bytes()
    }
}

fn sha256_prefix(hex: &str) -> Option<u64> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(&hex[..16], 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::report::testing::ok_entry;
    use std::io::Cursor;

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

    #[test]
    fn a_report_on_disk_is_read_back_and_a_directory_is_refused() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let report = dir.path().join("report.jsonl");
        let entry = ok_entry("https://h/a.jpg", "a.jpg", b"body");
        std::fs::write(&report, format!("{}\n", entry.to_json_line()))?;
        let index = DoneIndex::load(&report, dir.path())?;
        assert_eq!(
            index.expected("https://h/a.jpg", "a.jpg")?.map(|e| e.bytes),
            Some(4)
        );
        // `--report DIR` by mistake: refused with a reason, not read as an empty report.
        match DoneIndex::load(dir.path(), dir.path()) {
            Err(LoadError::Report(err)) => {
                assert!(err.to_string().contains("not a regular file"), "{err}")
            }
            Err(other) => panic!("refused for the wrong reason: {other:?}"),
            Ok(_) => panic!("a directory was read as a report"),
        }
        Ok(())
    }

    #[test]
    fn long_lines_are_read_back_up_to_64_kib() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        // A URL with a long query (8 kB) is still an item a rerun skips; a line over 64 KiB is not
        // watchdog's and is ignored.
        let long = format!("https://h/a.jpg?{}", "q".repeat(8 * 1024));
        let too_long = format!("https://h/b.jpg?{}", "q".repeat(64 * 1024));
        let report = format!(
            "{}\n{}\n",
            ok_entry(&long, "a.jpg", b"x").to_json_line(),
            ok_entry(&too_long, "b.jpg", b"x").to_json_line()
        );
        let index = DoneIndex::read(Cursor::new(report), dir.path())?;
        assert!(index.expected(&long, "a.jpg")?.is_some());
        assert_eq!(index.expected(&too_long, "b.jpg")?, None);
        assert_eq!(index.len(), 1);
        Ok(())
    }

    #[test]
    fn a_sha256_that_is_not_64_hex_digits_is_not_trusted() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let good = ok_entry("https://h/good", "good", b"x");
        let digest = good.sha256.clone().unwrap_or_default();
        let mut report = format!("{}\n", good.to_json_line());
        // One digit too many, and the right length with a letter that is no hex digit: the file is
        // judged by its size alone, as for a line without a `sha256`.
        for (name, sha256) in [
            ("long", format!("{digest}0")),
            ("bad", format!("{}g", &digest[..63])),
        ] {
            let mut entry = ok_entry(&format!("https://h/{name}"), name, b"x");
            entry.sha256 = Some(sha256);
            report.push_str(&entry.to_json_line());
            report.push('\n');
        }
        let index = DoneIndex::read(Cursor::new(report), dir.path())?;
        let prefix = u64::from_str_radix(&digest[..16], 16).ok();
        let expected = |name: &str| index.expected(&format!("https://h/{name}"), name);
        assert_eq!(expected("good")?.and_then(|e| e.sha256_prefix), prefix);
        for name in ["long", "bad"] {
            let got = expected(name)?;
            assert_eq!(
                got.map(|e| (e.bytes, e.sha256_prefix)),
                Some((1, None)),
                "{name}"
            );
        }
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
