//! A map from 64-bit hashes to small fixed-size values that moves to a file on disk when it grows, so
//! that the supervisor's memory stays the same for a list of a thousand lines or of ten million.
//!
//! Batch mode remembers something about every item of the list: which names are taken
//! ([`super::allocate`]) and which files a previous run finished ([`super::report::DoneIndex`]). Kept in
//! memory that is 16 to 24 bytes per item, 160 to 240 MB for ten million lines, on a machine that may
//! run many shards side by side. A [`SpillMap`] keeps its first [`MEMORY_ENTRIES`] entries in a
//! [`CompactMap`] (well under 1 MB) and then moves all of them into a [`DiskTable`], which answers from
//! then on.
//!
//! The disk table is an open-addressing hash table with linear probing: fixed-size slots (the key, then
//! the value's words, all little-endian) in one file, at most half of them used, so that a lookup
//! usually reads one run of [`RUN_SLOTS`] slots with one `pread`. It doubles into a new file when it is
//! half full, reading the old one sequentially. It is read and written with `pread`/`pwrite`, never
//! mapped: mapped pages would count in the process's resident memory, which is what this avoids. The
//! kernel still caches the file while memory is free, but that cache is the kernel's to reclaim (it
//! writes the pages back and drops them under pressure), not memory the supervisor holds.
//!
//! The file is created in a directory the caller chooses, the output directory: it is writable and has
//! room for the downloads, so it has room for the index (about 32 to 64 bytes of disk per entry at a
//! load between 1/4 and 1/2, twice that for a moment while the table doubles). The system temp
//! directory would be the wrong place: `/tmp` is often a RAM-backed tmpfs, where the file would be
//! memory again. The file is removed from the directory right after it is created, and lives on only
//! through its open descriptor, so nothing is left behind however the process ends. Its name while it
//! exists (`watchdog-index-PID-N.watchdog-part`) is one no download can have: final names never end in
//! `.watchdog-part`, and temp files start with a dot.

use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::compact::CompactMap;
use crate::fetch::TEMP_SUFFIX;

/// Entries a [`SpillMap`] keeps in memory before it moves to disk: 512 kB of 16-byte entries, 768 kB
/// of 24-byte ones.
pub const MEMORY_ENTRIES: usize = 1 << 15;

/// The most 64-bit words a value may have.
pub const MAX_WORDS: usize = 2;

/// Slots read by one `pread` while probing: a run of linear probing at load 1/2 is usually shorter.
const RUN_SLOTS: usize = 8;

/// Slots read at a time while the table doubles.
const GROW_CHUNK_SLOTS: usize = 4096;

/// The smallest table, in slots.
const MIN_SLOTS: u64 = 1024;

/// A value the disk table can store: `WORDS` 64-bit words.
pub trait SlotValue: Copy {
    const WORDS: usize;
    /// The value's words; only the first `WORDS` are stored.
    fn to_words(self) -> [u64; MAX_WORDS];
    fn from_words(words: [u64; MAX_WORDS]) -> Self;
}

impl SlotValue for u64 {
    const WORDS: usize = 1;
    fn to_words(self) -> [u64; MAX_WORDS] {
        [self, 0]
    }
    fn from_words(words: [u64; MAX_WORDS]) -> u64 {
        words[0]
    }
}

impl SlotValue for (u64, u64) {
    const WORDS: usize = 2;
    fn to_words(self) -> [u64; MAX_WORDS] {
        [self.0, self.1]
    }
    fn from_words(words: [u64; MAX_WORDS]) -> (u64, u64) {
        (words[0], words[1])
    }
}

/// A hash table in an unlinked file; see the module documentation.
pub struct DiskTable<V> {
    file: File,
    /// Where the file (and the next one, when the table doubles) is created.
    dir: PathBuf,
    /// The table has `1 << bits` slots.
    bits: u32,
    /// Entries in the file.
    stored: u64,
    /// The value of key 0, which on disk marks an empty slot, so it is kept here.
    zero: Option<V>,
    _value: PhantomData<V>,
}

impl<V: SlotValue> DiskTable<V> {
    const SLOT_BYTES: usize = 8 * (1 + V::WORDS);

    /// An empty table in a new unlinked file in `dir`, with room for `entries` before it doubles.
    pub fn create(dir: &Path, entries: u64) -> io::Result<DiskTable<V>> {
        const { assert!(V::WORDS <= MAX_WORDS) };
        let slots = entries
            .saturating_mul(2)
            .max(MIN_SLOTS)
            .checked_next_power_of_two()
            .ok_or_else(|| io::Error::other("index too large"))?;
        let bits = slots.trailing_zeros();
        let file = create_unlinked(dir)?;
        // Sparse: the file takes disk space only as slots are written, and reads as empty slots.
        file.set_len(slots * Self::SLOT_BYTES as u64)?;
        Ok(DiskTable {
            file,
            dir: dir.to_path_buf(),
            bits,
            stored: 0,
            zero: None,
            _value: PhantomData,
        })
    }

    pub fn get(&self, key: u64) -> io::Result<Option<V>> {
        if key == 0 {
            return Ok(self.zero);
        }
        Ok(self.find(key)?.1)
    }

    /// Inserts or replaces the value of `key`.
    pub fn insert(&mut self, key: u64, value: V) -> io::Result<()> {
        if key == 0 {
            self.zero = Some(value);
            return Ok(());
        }
        let (slot, old) = self.find(key)?;
        self.write_slot(slot, key, value)?;
        if old.is_none() {
            self.stored += 1;
            if self.stored * 2 > self.slots() {
                self.grow()?;
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.stored as usize + usize::from(self.zero.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the file, in bytes (of which only the written slots take disk space).
    pub fn file_bytes(&self) -> u64 {
        self.slots() * Self::SLOT_BYTES as u64
    }

    fn slots(&self) -> u64 {
        1 << self.bits
    }

    /// The slot where a probe for `key` starts. Fibonacci hashing spreads even keys that are not
    /// well-mixed hashes.
    fn home(&self, key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)
    }

    /// The slot that holds `key` and its value, or the empty slot where it belongs.
    fn find(&self, key: u64) -> io::Result<(u64, Option<V>)> {
        let mut buf = [0u8; RUN_SLOTS * 8 * (1 + MAX_WORDS)];
        let mut slot = self.home(key);
        // At most half the slots are used, so the probe meets an empty slot within one lap.
        loop {
            let run = (self.slots() - slot).min(RUN_SLOTS as u64) as usize;
            let bytes = &mut buf[..run * Self::SLOT_BYTES];
            self.file
                .read_exact_at(bytes, slot * Self::SLOT_BYTES as u64)?;
            for (i, raw) in bytes.chunks_exact(Self::SLOT_BYTES).enumerate() {
                let (found, value) = decode::<V>(raw);
                if found == 0 {
                    return Ok((slot + i as u64, None));
                }
                if found == key {
                    return Ok((slot + i as u64, Some(value)));
                }
            }
            slot = (slot + run as u64) & (self.slots() - 1);
        }
    }

    fn write_slot(&self, slot: u64, key: u64, value: V) -> io::Result<()> {
        let mut buf = [0u8; 8 * (1 + MAX_WORDS)];
        let raw = &mut buf[..Self::SLOT_BYTES];
        encode(raw, key, value);
        self.file.write_all_at(raw, slot * Self::SLOT_BYTES as u64)
    }

    /// Moves every entry into a new file of twice the slots, then drops the old file.
    fn grow(&mut self) -> io::Result<()> {
        let mut bigger = DiskTable::<V>::create(&self.dir, self.slots())?;
        let mut chunk = vec![0u8; GROW_CHUNK_SLOTS * Self::SLOT_BYTES];
        let mut slot = 0;
        while slot < self.slots() {
            let n = (self.slots() - slot).min(GROW_CHUNK_SLOTS as u64) as usize;
            let bytes = &mut chunk[..n * Self::SLOT_BYTES];
            self.file
                .read_exact_at(bytes, slot * Self::SLOT_BYTES as u64)?;
            for raw in bytes.chunks_exact(Self::SLOT_BYTES) {
                let (key, value) = decode::<V>(raw);
                if key != 0 {
                    // Every key is new to the bigger table, which stays at most a quarter full.
                    let (to, _) = bigger.find(key)?;
                    bigger.write_slot(to, key, value)?;
                    bigger.stored += 1;
                }
            }
            slot += n as u64;
        }
        bigger.zero = self.zero;
        *self = bigger;
        Ok(())
    }
}

fn decode<V: SlotValue>(raw: &[u8]) -> (u64, V) {
    let mut words = [0u64; 1 + MAX_WORDS];
    for (word, bytes) in words.iter_mut().zip(raw.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        *word = u64::from_le_bytes(le);
    }
    (words[0], V::from_words([words[1], words[2]]))
}

fn encode<V: SlotValue>(raw: &mut [u8], key: u64, value: V) {
    let [first, second] = value.to_words();
    for (bytes, word) in raw.chunks_exact_mut(8).zip([key, first, second]) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
}

/// A new file in `dir`, already removed from it: see the module documentation.
fn create_unlinked(dir: &Path) -> io::Result<File> {
    static CREATED: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            "watchdog-index-{}-{n}{TEMP_SUFFIX}",
            std::process::id()
        ));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            // Left by a process of the same id that was killed between these two calls.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && n < 1000 => {}
            Err(err) => return Err(err),
        }
    }
}

/// A map that starts in memory and moves to a [`DiskTable`] in `dir` past a number of entries; see the
/// module documentation.
pub struct SpillMap<V> {
    store: Store<V>,
    dir: PathBuf,
    memory_entries: usize,
}

enum Store<V> {
    Memory(CompactMap<V>),
    Disk(DiskTable<V>),
}

impl<V: SlotValue> SpillMap<V> {
    /// A map that moves to `dir` past [`MEMORY_ENTRIES`] entries.
    pub fn new(dir: &Path) -> SpillMap<V> {
        SpillMap::with_memory_entries(dir, MEMORY_ENTRIES)
    }

    /// A map that moves to `dir` past `memory_entries` entries.
    pub fn with_memory_entries(dir: &Path, memory_entries: usize) -> SpillMap<V> {
        SpillMap {
            // Merged every 1/8 of the limit: the map stays near its entry size and merges stay few.
            store: Store::Memory(CompactMap::with_min_recent((memory_entries / 8).max(1))),
            dir: dir.to_path_buf(),
            memory_entries,
        }
    }

    pub fn get(&self, key: u64) -> io::Result<Option<V>> {
        match &self.store {
            Store::Memory(map) => Ok(map.get(key)),
            Store::Disk(table) => table.get(key),
        }
    }

    /// Inserts or replaces the value of `key`. Fails only once the map is on disk (or moving there),
    /// when the file cannot be created, written or read.
    pub fn insert(&mut self, key: u64, value: V) -> io::Result<()> {
        match &mut self.store {
            Store::Memory(map) => {
                map.insert(key, value);
                if map.len() > self.memory_entries {
                    let mut table = DiskTable::create(&self.dir, 2 * map.len() as u64)?;
                    for (key, value) in map.iter() {
                        table.insert(key, value)?;
                    }
                    self.store = Store::Disk(table);
                }
                Ok(())
            }
            Store::Disk(table) => table.insert(key, value),
        }
    }

    pub fn len(&self) -> usize {
        match &self.store {
            Store::Memory(map) => map.len(),
            Store::Disk(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the entries are in the disk table.
    pub fn is_on_disk(&self) -> bool {
        matches!(self.store, Store::Disk(_))
    }

    /// Approximate heap memory in use, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.dir.capacity()
            + match &self.store {
                Store::Memory(map) => map.heap_bytes(),
                Store::Disk(_) => 0,
            }
    }

    /// The size of the disk table's file, in bytes; 0 while the map is in memory.
    pub fn file_bytes(&self) -> u64 {
        match &self.store {
            Store::Memory(_) => 0,
            Store::Disk(table) => table.file_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A small deterministic generator (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = self.0;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        }
    }

    fn entries_in(dir: &Path) -> io::Result<usize> {
        Ok(std::fs::read_dir(dir)?.count())
    }

    #[test]
    fn the_disk_table_behaves_like_a_hash_map_across_growth() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut table = DiskTable::<(u64, u64)>::create(dir.path(), 0)?;
        let mut model = HashMap::new();
        let mut rng = Rng(7);
        // Keys from a small pool (so that many are overwritten), some of them sequential, and 0.
        let pool: Vec<u64> = (0..6000)
            .map(|i| if i % 3 == 0 { i } else { rng.next() })
            .collect();
        for i in 0..20_000u64 {
            let key = pool[(rng.next() % pool.len() as u64) as usize];
            let value = (i, rng.next());
            table.insert(key, value)?;
            model.insert(key, value);
            if i % 1000 == 0 {
                for _ in 0..100 {
                    let probe = pool[(rng.next() % pool.len() as u64) as usize];
                    assert_eq!(table.get(probe)?, model.get(&probe).copied());
                }
            }
        }
        assert!(model.contains_key(&0));
        assert_eq!(table.len(), model.len());
        for (key, value) in &model {
            assert_eq!(table.get(*key)?, Some(*value), "{key}");
        }
        for _ in 0..1000 {
            let absent = rng.next() | 1 << 63;
            assert_eq!(table.get(absent)?, None);
        }
        // It grew from its smallest size, and stays at most half full.
        assert!(table.file_bytes() > MIN_SLOTS * 24);
        assert!(table.stored * 2 <= table.slots());
        assert_eq!(entries_in(dir.path())?, 0, "the file is unlinked");
        Ok(())
    }

    #[test]
    fn the_map_moves_to_disk_past_its_limit_and_keeps_answering() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut map = SpillMap::<u64>::with_memory_entries(dir.path(), 100);
        let mut model = HashMap::new();
        let mut rng = Rng(11);
        let keys: Vec<u64> = (0..5000).map(|_| rng.next()).collect();
        for (i, key) in keys.iter().enumerate() {
            map.insert(*key, i as u64)?;
            model.insert(*key, i as u64);
            assert_eq!(map.is_on_disk(), map.len() > 100, "after {i} inserts");
            if i % 50 == 0 {
                for probe in &keys[..=i] {
                    assert_eq!(map.get(*probe)?, model.get(probe).copied());
                }
            }
        }
        // Overwrites after the move.
        for key in keys.iter().step_by(7) {
            map.insert(*key, 42)?;
            model.insert(*key, 42);
        }
        map.insert(0, 9)?;
        model.insert(0, 9);
        assert_eq!(map.len(), model.len());
        for (key, value) in &model {
            assert_eq!(map.get(*key)?, Some(*value));
        }
        assert!(map.file_bytes() > 0);
        assert_eq!(entries_in(dir.path())?, 0, "the file is unlinked");
        Ok(())
    }

    #[test]
    fn a_spill_directory_that_cannot_be_written_is_an_error_when_the_map_moves() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("gone");
        let mut map = SpillMap::<u64>::with_memory_entries(&missing, 10);
        for key in 1..=10 {
            map.insert(key, key)?;
        }
        let err = map.insert(11, 11).err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::NotFound));
        // What was in memory is still there.
        assert_eq!(map.get(5)?, Some(5));
        assert!(!map.is_on_disk());
        Ok(())
    }
}
