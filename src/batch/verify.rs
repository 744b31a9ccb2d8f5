//! Whether a file on disk is still what an earlier run finished: its size and, when the report has
//! one, its SHA-256.
//!
//! Apart from the index because it is slow file I/O (it may read the whole file), which runs in a
//! worker where it cannot stall the batch, while the index is consulted by the supervisor.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::resume::Expected;

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
    use crate::batch::report::testing::ok_entry;
    use crate::batch::report::ReportEntry;
    use crate::batch::resume::DoneIndex;
    use crate::batch::status::Status;
    use std::io::Cursor;

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
}
