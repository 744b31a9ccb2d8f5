//! Reading reports for `watchdog report`: each file as a stream of bounded lines, up to the length it
//! had when it was opened, each line parsed into a [`ReportEntry`] or named as not one.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::batch::list::read_bounded_line;
use crate::batch::report::ReportEntry;

/// Lines longer than this are not from watchdog.
pub const MAX_LINE: usize = 64 * 1024;

/// One report given on the command line, and the length read of it.
pub struct Source {
    pub path: PathBuf,
    pub len: u64,
    /// Whether the file ends in the middle of a line (a batch is writing it, or was killed).
    pub ends_mid_line: bool,
    /// For `-`: the copy of standard input.
    spool: Option<File>,
}

/// What one line of a report is.
pub enum Line {
    Blank,
    Entry(Box<ReportEntry>),
    Bad(String),
}

pub fn parse_line(buf: &[u8], too_long: bool) -> Line {
    if too_long {
        return Line::Bad(format!(
            "longer than {} KiB, not a report line",
            MAX_LINE / 1024
        ));
    }
    let Ok(text) = std::str::from_utf8(buf) else {
        return Line::Bad("not valid UTF-8, not a report line".to_string());
    };
    let text = text.trim();
    if text.is_empty() {
        return Line::Blank;
    }
    match serde_json::from_str::<ReportEntry>(text) {
        Ok(entry) => Line::Entry(Box::new(entry)),
        Err(e) => {
            let reason = e.to_string().replace(" at line 1 column ", " at column ");
            Line::Bad(format!("not a report line: {reason}"))
        }
    }
}

/// Opens a report: a regular file only, since it is read twice.
pub fn open(path: &Path) -> Result<File, String> {
    let file = File::open(path)
        .map_err(|e| format!("cannot read the report '{}': {e}", path.display()))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot read the report '{}': {e}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!(
            "'{}' is not a regular file: reports are read twice, so save it to a file first",
            path.display()
        ));
    }
    Ok(file)
}

impl Source {
    /// Opens the report at `path` and takes its length now: what a running batch appends later is
    /// not read. `-` is standard input, copied first into an unlinked file in `spool_dir`, since a
    /// report is read twice.
    pub fn open(path: &Path, spool_dir: &Path) -> Result<(Source, File), String> {
        let stdin = path.as_os_str() == "-";
        let file = if stdin {
            spool_stdin(spool_dir)?
        } else {
            open(path)?
        };
        let error = |e: io::Error| format!("cannot read the report '{}': {e}", path.display());
        let len = file.metadata().map_err(error)?.len();
        let source = Source {
            path: path.to_path_buf(),
            len,
            ends_mid_line: ends_mid_line(&file, len).map_err(error)?,
            spool: if stdin {
                Some(file.try_clone().map_err(error)?)
            } else {
                None
            },
        };
        Ok((source, file))
    }

    /// The report again, from its start, for the second pass.
    pub fn reopen(&self) -> Result<File, String> {
        match &self.spool {
            None => open(&self.path),
            Some(spool) => {
                let error = |e: io::Error| format!("cannot read standard input again: {e}");
                let mut file = spool.try_clone().map_err(error)?;
                file.seek(SeekFrom::Start(0)).map_err(error)?;
                Ok(file)
            }
        }
    }

    /// The report as messages name it.
    pub fn name(&self) -> String {
        if self.spool.is_some() {
            "standard input".to_string()
        } else {
            self.path.display().to_string()
        }
    }
}

/// Standard input, copied into an unlinked file in `dir` and rewound.
fn spool_stdin(dir: &Path) -> Result<File, String> {
    let error = |e: io::Error| {
        format!(
            "cannot keep a copy of standard input in '{}': {e} (give --index-dir a writable \
             directory)",
            dir.display()
        )
    };
    let mut file = crate::batch::spill::create_unlinked_file(dir).map_err(error)?;
    io::copy(&mut io::stdin().lock(), &mut file)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    file.seek(SeekFrom::Start(0)).map_err(error)?;
    Ok(file)
}

/// Whether the last byte of the first `len` bytes of `file` is not a newline.
pub fn ends_mid_line(file: &File, len: u64) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
}

/// Reads the first `source.len` bytes of a report line by line: `each(line_no, line, is_last)`.
pub fn for_each_line(
    file: File,
    source: &Source,
    each: &mut dyn FnMut(u64, Line, bool) -> Result<(), String>,
) -> Result<(), String> {
    let read_error = |e: io::Error| format!("cannot read the report '{}': {e}", source.name());
    let mut reader = BufReader::with_capacity(64 * 1024, file.take(source.len));
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut pending: Option<Line> = None;
    loop {
        let next = read_bounded_line(&mut reader, &mut buf, MAX_LINE).map_err(read_error)?;
        // One line late, to know which one is the last.
        if let Some(line) = pending.take() {
            each(line_no, line, next.is_none())?;
        }
        let Some(too_long) = next else { break };
        line_no += 1;
        pending = Some(parse_line(&buf, too_long));
    }
    Ok(())
}
