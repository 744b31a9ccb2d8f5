//! Where the body goes. A file download is written to a temp file beside the final path and renamed
//! into place only when complete and verified, so the final path holds a whole file or nothing; the
//! temp file's name is fixed by the final path, so `--resume` (and the supervisor's clean-up) can find
//! it. `-` streams to stdout instead, with no temp file.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::{FailureKind, FetchError};
use crate::names::TEMP_SUFFIX;

/// The longest file name most file systems accept (NAME_MAX).
const NAME_MAX: usize = 255;

/// The temp file a download to `final_path` is written to: `.NAME.watchdog-part` in the same
/// directory (a long NAME is shortened so the result stays a valid file name).
pub fn temp_path_for(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".to_string());
    let budget = NAME_MAX - 1 - TEMP_SUFFIX.len();
    let mut end = name.len().min(budget);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut temp = OsString::from(".");
    temp.push(&name[..end]);
    temp.push(TEMP_SUFFIX);
    final_path.with_file_name(temp)
}

/// An open destination for body bytes.
pub enum Sink {
    File(FileSink),
    Stdout(io::Stdout),
}

impl Sink {
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), FetchError> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self {
            Sink::File(file) => file
                .file
                .write_all(bytes)
                .map_err(|e| io_error("cannot write", &file.temp, &e)),
            Sink::Stdout(out) => out.write_all(bytes).map_err(|e| {
                FetchError::new(FailureKind::LocalIo, format!("cannot write to stdout: {e}"))
            }),
        }
    }
}

impl Sink {
    /// Pushes out buffered bytes (stdout); files are flushed by `commit`.
    pub fn flush(&mut self) -> Result<(), FetchError> {
        match self {
            Sink::File(_) => Ok(()),
            Sink::Stdout(out) => out.flush().map_err(|e| {
                FetchError::new(FailureKind::LocalIo, format!("cannot write to stdout: {e}"))
            }),
        }
    }
}

/// The temp file of a download to a file.
pub struct FileSink {
    file: File,
    temp: PathBuf,
    final_path: PathBuf,
}

impl FileSink {
    /// Creates (or truncates) the temp file for `final_path`.
    pub fn create(final_path: &Path) -> Result<FileSink, FetchError> {
        let temp = temp_path_for(final_path);
        // O_NOFOLLOW: a symlink planted at the temp path must not redirect the write elsewhere.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
            .map_err(|e| io_error("cannot create", &temp, &e))?;
        Ok(FileSink {
            file,
            temp,
            final_path: final_path.to_path_buf(),
        })
    }

    /// Opens the existing temp file for appending, feeding its current contents to `existing` (to hash
    /// and check them) first.
    pub fn append(
        final_path: &Path,
        mut existing: impl FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<FileSink, FetchError> {
        let temp = temp_path_for(final_path);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
            .map_err(|e| io_error("cannot open", &temp, &e))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("cannot read", &temp, &e)),
            };
            existing(&buf[..n])?;
        }
        Ok(FileSink {
            file,
            temp,
            final_path: final_path.to_path_buf(),
        })
    }

    /// Moves the complete file into place; with `fsync`, makes the file and the rename durable first.
    pub fn commit(self, fsync: bool) -> Result<(), FetchError> {
        if fsync {
            self.file
                .sync_all()
                .map_err(|e| io_error("cannot fsync", &self.temp, &e))?;
        }
        drop(self.file);
        std::fs::rename(&self.temp, &self.final_path).map_err(|e| {
            let err = io_error("cannot move the download to", &self.final_path, &e);
            let _ = std::fs::remove_file(&self.temp);
            err
        })?;
        if fsync {
            let dir = match self.final_path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error("cannot fsync directory", dir, &e))?;
        }
        Ok(())
    }

    /// Removes the temp file.
    pub fn discard(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// Creates the directory `rel` (relative, plain names only) under `root` without following a symbolic
/// link anywhere below `root`: each component is opened with `openat(O_NOFOLLOW | O_DIRECTORY)` from
/// the one before, and made with `mkdirat` when missing. A link in the way (even one pointing inside
/// `root`) is an error naming it, so `URL<TAB>link/x.jpg` never writes outside the output directory.
pub fn create_dirs_beneath(root: &Path, rel: &Path) -> io::Result<()> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{fstatat, mkdirat, Mode};
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
    use std::path::Component;

    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let open = |dir: Option<&OwnedFd>, name: &Path| -> nix::Result<OwnedFd> {
        let fd = match dir {
            Some(dir) => openat(Some(dir.as_raw_fd()), name, flags, Mode::empty())?,
            None => nix::fcntl::open(name, flags & !OFlag::O_NOFOLLOW, Mode::empty())?,
        };
        // SAFETY: `fd` was just opened and is owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let mut dir = open(None, root)?;
    let mut so_far = root.to_path_buf();
    for component in rel.components() {
        let Component::Normal(name) = component else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{}' is not a plain relative path", rel.display()),
            ));
        };
        so_far.push(name);
        let name = Path::new(name);
        let next = match open(Some(&dir), name) {
            Err(nix::errno::Errno::ENOENT) => {
                match mkdirat(
                    Some(dir.as_fd().as_raw_fd()),
                    name,
                    Mode::from_bits_truncate(0o777),
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open(Some(&dir), name)
            }
            other => other,
        };
        dir = match next {
            Ok(fd) => fd,
            Err(e @ (nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR)) => {
                let is_link = fstatat(
                    Some(dir.as_raw_fd()),
                    name,
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
                if is_link {
                    return Err(io::Error::other(format!(
                        "'{}' is a symbolic link, and nothing is written through links under the output \
                         directory; replace it with a directory",
                        so_far.display()
                    )));
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(())
}

/// A local I/O failure, with a hint for the common causes.
pub fn io_error(what: &str, path: &Path, err: &io::Error) -> FetchError {
    let hint = match err.kind() {
        io::ErrorKind::NotFound => "; does the directory exist?",
        io::ErrorKind::PermissionDenied => {
            "; check the permissions, or choose another path with -o"
        }
        _ if err.raw_os_error() == Some(libc::ENOSPC) => {
            "; free some space or choose another path with -o"
        }
        _ => "",
    };
    FetchError::new(
        FailureKind::LocalIo,
        format!("{what} {}: {err}{hint}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_sits_beside_the_final_path() {
        assert_eq!(
            temp_path_for(Path::new("out/a.jpg")),
            PathBuf::from("out/.a.jpg.watchdog-part")
        );
        assert_eq!(
            temp_path_for(Path::new("a.jpg")),
            PathBuf::from(".a.jpg.watchdog-part")
        );
    }

    #[test]
    fn directories_are_made_beneath_the_root_and_links_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        create_dirs_beneath(root.path(), Path::new("a/b/c")).unwrap();
        assert!(root.path().join("a/b/c").is_dir());
        create_dirs_beneath(root.path(), Path::new("a/b")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("a/link")).unwrap();
        let err = create_dirs_beneath(root.path(), Path::new("a/link/d")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!outside.path().join("d").exists());
        std::fs::write(root.path().join("file"), b"").unwrap();
        assert!(create_dirs_beneath(root.path(), Path::new("file/x")).is_err());
        assert!(create_dirs_beneath(root.path(), Path::new("../x")).is_err());
    }

    #[test]
    fn long_names_stay_valid() {
        let long = "é".repeat(200);
        let temp = temp_path_for(Path::new(&long));
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert!(name.len() <= NAME_MAX, "{}", name.len());
        assert!(name.ends_with(TEMP_SUFFIX));
    }
}
