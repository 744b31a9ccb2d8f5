//! Output names for a whole batch: every item gets a name no other item has, and a URL that appears
//! twice is fetched once.
//!
//! The names come from [`crate::names`]; this module only decides between them. An item asks for a name
//! (its list path, or its URL's name); when another URL already holds that name it gets
//! `NAME-<8 hex>.EXT`, then `NAME-<16 hex>.EXT`, then `NAME-<16 hex>-2.EXT`, ..., the hex digits from its
//! own URL. The chain depends only on the item, and the allocator only on the order of the list, so the
//! same list (or the same shard of it) gives the same names on every run, which is what resuming needs.
//!
//! # Memory
//!
//! Lists run to ten million lines, so nothing of a URL or name is kept but two 64-bit hashes per
//! assigned name: the key is a hash of the name (lower-cased, so `A.jpg` and `a.jpg`, which are one
//! file on macOS and Windows, count as the same), the value a fingerprint of the URL that holds it (plus
//! one entry per distinct directory of list paths). Every shard names every item of the list (see
//! [`super::plan`]), so `--shard` does not divide this. The entries live in a [`SpillMap`]: the first
//! 32,768 in memory (about 0.5 MB), all of them in an unlinked file in the output directory beyond that,
//! so the allocator's memory is the same for a thousand lines or ten million. The file takes 32 to 64
//! bytes of disk per item (537 MB at ten million, and for a moment 50% more while it doubles), and the
//! kernel caches it while memory is free. An item costs one `pread` and one `pwrite` (and a `pread` per
//! directory of its list path, a `pwrite` per new one). Measured with the file on ext4, ten million
//! names: 15 bytes of heap and 4.6 MB peak resident for the whole test process, 2.9 µs per item,
//! hashing included; with everything in memory it was 164 MB of heap, 174 MB resident, 2.4 µs per
//! item. A million-line list that is all another shard's runs in 4.6 MB peak resident instead of
//! 22.6 MB (against 4.0 MB for a thousand lines; `scripts/bench.sh memory`, mode `shard`), and takes
//! 2.9 s instead of 1.9 s.
//! (Checking only the file system and the items in flight would need no index but cannot tell a
//! previous run's file of the same URL from another URL's file; a set of URL hashes alone cannot
//! resolve name collisions.)
//!
//! # What can go wrong, and how rarely
//!
//! - Two names with the same 64-bit hash: the second gets a suffix it did not need. Never an overwrite:
//!   equal names always have equal hashes.
//! - A different URL with the same 64-bit fingerprint and a name with the same hash: it is taken for a
//!   duplicate and not fetched. Each item compares against about three entries, so over ten million
//!   items the chance is about 10^-12.
//! - Shards writing to one directory agree on every name because each one allocates the whole list,
//!   but each reserves only its own report's name: a URL named like another shard's report, in the
//!   same directory, would replace that report. Put the reports elsewhere, or name them distinctly.
//! - Unicode normalization (macOS stores NFD) is not folded.
//! - The same URL with two different list paths is two items and is fetched twice.

use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::spill::SpillMap;
use crate::names::{url_hash_hex, with_suffix, LONG_HASH_HEX, SHORT_HASH_HEX};

/// Value of a name held by something other than a download (e.g. the report file).
const RESERVED: u64 = 1;
/// Value of a name that is a directory of some list path.
const DIRECTORY: u64 = 2;
/// The longest suffix chain tried before giving up on an item.
const MAX_CANDIDATES: u32 = 100;

/// What the runner should do with an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// Download to this name (relative to the output directory).
    Assigned(String),
    /// The same URL already has this name earlier in the list: do not download it again.
    Duplicate(String),
    /// No name can be given (a directory of the path is another item's file); the reason says why.
    Conflict(String),
}

/// Hands out unique names; see the module documentation.
pub struct NameAllocator {
    names: SpillMap<u64>,
}

impl NameAllocator {
    /// An allocator that keeps its index in `spill_dir` once the list is long (the output directory).
    pub fn new(spill_dir: &Path) -> NameAllocator {
        NameAllocator {
            names: SpillMap::new(spill_dir),
        }
    }

    #[cfg(test)]
    /// An allocator that moves its index to `spill_dir` past `memory_entries` names.
    pub fn with_memory_entries(spill_dir: &Path, memory_entries: usize) -> NameAllocator {
        NameAllocator {
            names: SpillMap::with_memory_entries(spill_dir, memory_entries),
        }
    }

    /// Keeps `name` (relative to the output directory) away from every item, e.g. `report.jsonl`.
    pub fn reserve(&mut self, name: &str) -> io::Result<()> {
        self.names.insert(name_key(name), RESERVED)
    }

    /// Gives the item `url`, which asks for `requested` (from [`crate::names::output_name`]), its name.
    /// Fails only when the index on disk cannot be written or read.
    pub fn allocate(&mut self, url: &str, requested: &str) -> io::Result<Allocation> {
        let fingerprint = url_fingerprint(url);
        // The directories not remembered yet; a directory of another item's path is fine.
        let mut new_directories = Vec::new();
        for dir in ancestors(requested) {
            match self.names.get(name_key(dir))? {
                None => new_directories.push(dir),
                Some(DIRECTORY) => {}
                Some(_) => {
                    return Ok(Allocation::Conflict(format!(
                        "'{dir}' is a file of another item, not a directory"
                    )))
                }
            }
        }
        // Only a name someone else holds needs the URL's hash: most items never compute it.
        let mut long = None;
        for attempt in 0..MAX_CANDIDATES {
            let candidate = if attempt == 0 {
                requested.to_string()
            } else {
                let long: &str = long.get_or_insert_with(|| url_hash_hex(url, LONG_HASH_HEX));
                match attempt {
                    1 => with_suffix(requested, &long[..SHORT_HASH_HEX]),
                    2 => with_suffix(requested, long),
                    n => with_suffix(requested, &format!("{long}-{}", n - 1)),
                }
            };
            match self.names.insert_new(name_key(&candidate), fingerprint)? {
                None => {
                    for dir in new_directories {
                        self.names.insert(name_key(dir), DIRECTORY)?;
                    }
                    return Ok(Allocation::Assigned(candidate));
                }
                Some(holder) if holder == fingerprint => {
                    return Ok(Allocation::Duplicate(candidate))
                }
                Some(_) => {}
            }
        }
        Ok(Allocation::Conflict(format!(
            "no free name after {MAX_CANDIDATES} tries for '{requested}'"
        )))
    }

    #[cfg(test)]
    /// Names assigned, reserved and directories remembered.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    #[cfg(test)]
    /// Approximate heap memory in use, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.names.heap_bytes()
    }

    #[cfg(test)]
    /// The size of the index file on disk, in bytes; 0 while the index is in memory.
    pub fn file_bytes(&self) -> u64 {
        self.names.file_bytes()
    }
}

/// `a`, `a/b` for `a/b/c.jpg`.
fn ancestors(path: &str) -> Vec<&str> {
    path.match_indices('/').map(|(at, _)| &path[..at]).collect()
}

fn hash64(domain: &[u8], text: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(text.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

fn name_key(name: &str) -> u64 {
    hash64(b"name\0", &name.to_lowercase())
}

/// A URL's fingerprint, never equal to the markers [`RESERVED`] and [`DIRECTORY`].
fn url_fingerprint(url: &str) -> u64 {
    let hash = hash64(b"url\0", url);
    if hash <= DIRECTORY {
        hash + DIRECTORY + 1
    } else {
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{output_name, sanitize_component, with_hash_suffix};
    use std::collections::HashSet;
    use tempfile::TempDir;

    fn assigned(allocation: Allocation) -> String {
        match allocation {
            Allocation::Assigned(name) => name,
            other => panic!("expected a name, got {other:?}"),
        }
    }

    /// An allocator and the directory its index would move to.
    fn allocator() -> io::Result<(NameAllocator, TempDir)> {
        let dir = tempfile::tempdir()?;
        Ok((NameAllocator::new(dir.path()), dir))
    }

    #[test]
    fn collisions_get_the_url_hash_and_duplicates_are_spotted() -> io::Result<()> {
        let (mut names, _dir) = allocator()?;
        let a = "https://h/1/cat.jpg";
        let b = "https://h/2/cat.jpg";
        assert_eq!(
            names.allocate(a, "cat.jpg")?,
            Allocation::Assigned("cat.jpg".into())
        );
        let b_name = assigned(names.allocate(b, "cat.jpg")?);
        assert_eq!(b_name, with_hash_suffix("cat.jpg", b));
        // The second copy of either URL finds its own name again, through the same chain.
        assert_eq!(
            names.allocate(a, "cat.jpg")?,
            Allocation::Duplicate("cat.jpg".into())
        );
        assert_eq!(names.allocate(b, "cat.jpg")?, Allocation::Duplicate(b_name));
        Ok(())
    }

    #[test]
    fn names_differing_only_in_case_collide() -> io::Result<()> {
        let (mut names, _dir) = allocator()?;
        assert_eq!(
            assigned(names.allocate("https://h/A.JPG", "A.JPG")?),
            "A.JPG"
        );
        let second = assigned(names.allocate("https://h/a.jpg", "a.jpg")?);
        assert_ne!(second.to_lowercase(), "a.jpg");
        Ok(())
    }

    #[test]
    fn reserved_names_are_never_handed_out() -> io::Result<()> {
        let (mut names, _dir) = allocator()?;
        names.reserve("report.jsonl")?;
        let url = "https://h/report.jsonl";
        assert_ne!(
            assigned(names.allocate(url, "report.jsonl")?),
            "report.jsonl"
        );
        Ok(())
    }

    #[test]
    fn files_and_directories_do_not_clash() -> io::Result<()> {
        let (mut names, _dir) = allocator()?;
        assert_eq!(
            assigned(names.allocate("https://h/1", "a/b.jpg")?),
            "a/b.jpg"
        );
        // A file may not take the directory's name...
        assert_ne!(assigned(names.allocate("https://h/a", "a")?), "a");
        // ...and a directory may not pass through a file.
        assert_eq!(assigned(names.allocate("https://h/f", "f")?), "f");
        assert!(matches!(
            names.allocate("https://h/2", "f/c.jpg")?,
            Allocation::Conflict(_)
        ));
        // Sharing a directory is fine.
        assert_eq!(
            assigned(names.allocate("https://h/3", "a/c.jpg")?),
            "a/c.jpg"
        );
        Ok(())
    }

    #[test]
    fn the_chain_goes_on_when_short_hashes_collide() -> io::Result<()> {
        let (mut names, _dir) = allocator()?;
        let url = "https://h/x.jpg?v=1";
        let short = with_hash_suffix("x.jpg", url);
        // Other URLs already hold the name and its first two alternatives.
        names.allocate("https://h/other1", "x.jpg")?;
        names.allocate("https://h/other2", &short)?;
        let long = with_suffix("x.jpg", &url_hash_hex(url, LONG_HASH_HEX));
        names.allocate("https://h/other3", &long)?;
        let got = assigned(names.allocate(url, "x.jpg")?);
        assert_eq!(
            got,
            with_suffix("x.jpg", &format!("{}-2", url_hash_hex(url, LONG_HASH_HEX)))
        );
        assert_eq!(names.allocate(url, "x.jpg")?, Allocation::Duplicate(got));
        Ok(())
    }

    /// Many URLs asking for one name, with the index moving to disk a tenth of the way in.
    #[test]
    fn many_items_with_one_name_all_get_distinct_safe_names() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let n = 20_000;
        let mut names = NameAllocator::with_memory_entries(dir.path(), n / 10);
        let mut seen = HashSet::new();
        for id in 0..n {
            let url = format!("https://cdn/x/original.jpg?id={id}");
            let requested = output_name(&url, None).unwrap_or_default();
            let name = assigned(names.allocate(&url, &requested)?);
            assert!(sanitize_component(&name).as_deref() == Some(name.as_str()));
            assert!(seen.insert(name.to_lowercase()), "{name} handed out twice");
        }
        assert!(names.file_bytes() > 0, "the index moved to disk");
        // Second pass: every URL is recognized as a duplicate of its own name.
        for id in 0..n {
            let url = format!("https://cdn/x/original.jpg?id={id}");
            let requested = output_name(&url, None).unwrap_or_default();
            match names.allocate(&url, &requested)? {
                Allocation::Duplicate(name) => assert!(seen.contains(&name.to_lowercase())),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert_eq!(names.len(), n);
        assert!(names.heap_bytes() < 4096, "{} bytes", names.heap_bytes());
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }

    /// The memory and time figures of the module documentation (run with `--release -- --ignored`):
    /// ten million items, the index on disk in the temp directory (on disk, not tmpfs, for the figure
    /// to mean anything).
    #[test]
    #[ignore]
    fn ten_million_names_keep_memory_flat() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut names = NameAllocator::new(dir.path());
        let n = 10_000_000;
        let start = std::time::Instant::now();
        for id in 0..n {
            let url = format!("https://cdn{}/p/{id}.jpg", id % 100);
            let requested = output_name(&url, None).unwrap_or_default();
            names.allocate(&url, &requested)?;
        }
        let elapsed = start.elapsed();
        let heap = names.heap_bytes();
        // Linux only; elsewhere the heap figure alone.
        let peak = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        eprintln!(
            "{n} names: {heap} bytes of heap, peak resident {peak}, index file {:.0} MB, {elapsed:?} \
             ({:.2} µs per item)",
            names.file_bytes() as f64 / 1e6,
            elapsed.as_secs_f64() * 1e6 / n as f64
        );
        assert_eq!(names.len(), n);
        assert!(heap < 4096, "{heap} bytes");
        Ok(())
    }

    #[test]
    fn allocation_is_deterministic() -> io::Result<()> {
        let run = || -> io::Result<Vec<String>> {
            let (mut names, _dir) = allocator()?;
            (0..500)
                .map(|i| {
                    let got = names.allocate(&format!("https://h/{}?{i}", i % 7), "n.png")?;
                    Ok(format!("{got:?}"))
                })
                .collect()
        };
        assert_eq!(run()?, run()?);
        Ok(())
    }
}
