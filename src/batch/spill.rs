//! A map from 64-bit hashes to small fixed-size values that moves to a file on disk when it grows, so
//! that the supervisor's memory stays the same for a list of a thousand lines or of ten million.
//!
//! Batch mode remembers something about every item of the list: which names are taken
//! ([`super::allocate`]) and which files a previous run finished ([`super::resume::DoneIndex`]). Kept in
//! memory that is 16 to 24 bytes per item, 160 to 240 MB for ten million lines, on a machine that may
//! run many shards side by side. A [`SpillMap`] keeps its first [`MEMORY_ENTRIES`] entries in a
//! [`CompactMap`] (well under 1 MB) and then moves all of them into a [`DiskTable`], which answers from
//! then on.
//!
//! The disk table is an open-addressing hash table with linear probing: fixed-size slots (the key, then
//! the value's words, all little-endian) in one file, at most half of them used, so that a lookup
//! usually reads one run of 8 slots (`RUN_SLOTS`) with one `pread`. It doubles into a new file when
//! it is half full, reading the old one sequentially. It is read and written with `pread`/`pwrite`, never
//! mapped: mapped pages would count in the process's resident memory, which is what this avoids. The
//! kernel still caches the file while memory is free, but that cache is the kernel's to reclaim (it
//! writes the pages back and drops them under pressure), not memory the supervisor holds.
//!
//! The file is created in a directory the caller chooses, the output directory: it is writable and has
//! room for the downloads, so it has room for the index (about 32 to 64 bytes of disk per entry at a
//! load between 1/4 and 1/2, and half as much again for a moment while the table doubles). The system
//! temp directory would be the wrong place: `/tmp` is often a RAM-backed tmpfs, where the file would be
//! memory again (and so is an output directory on tmpfs). The file is removed from the directory right
//! after it is created and lives on only through its open descriptor, so nothing is left behind however
//! the process ends, unless it ends between those two calls. Its name while it exists
//! (`watchdog-index-PID-N.watchdog-part`) is one no download can have: final names never end in
//! `.watchdog-part`, and temp files start with a dot.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::compact::CompactMap;
use crate::names::TEMP_SUFFIX;

/// Entries a [`SpillMap`] keeps in memory before it moves to disk: 512 kB of 16-byte entries, 768 kB
/// of 24-byte ones.
pub const MEMORY_ENTRIES: usize = 1 << 15;

/// The most 64-bit words a value may have.
pub const MAX_WORDS: usize = 2;

/// Slots read by one `pread` while probing: a run of linear probing at load 1/2 is usually shorter.
const RUN_SLOTS: usize = 8;

/// Slots read at a time while the table doubles, and entries inserted at a time when the map moves to
/// disk.
const GROW_CHUNK_SLOTS: usize = 4096;

/// The widest stretch of slots placed in memory at once by [`DiskTable::insert_absent`]: the homes of a
/// chunk of the old table, which double with it.
const STRETCH_SLOTS: u64 = 2 * GROW_CHUNK_SLOTS as u64;

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
            self.added()?;
        }
        Ok(())
    }

    /// Inserts `value` unless `key` already has a value, and returns that value: one probe where a
    /// lookup and an insert would take two.
    pub fn insert_new(&mut self, key: u64, value: V) -> io::Result<Option<V>> {
        if key == 0 {
            let old = self.zero;
            self.zero = old.or(Some(value));
            return Ok(old);
        }
        let (slot, old) = self.find(key)?;
        if old.is_none() {
            self.write_slot(slot, key, value)?;
            self.added()?;
        }
        Ok(old)
    }

    /// Looks `key` up and, when `change` returns a value for what it found, stores that value: one
    /// probe where a lookup and an insert would take two. Returns what was there before.
    pub fn update(
        &mut self,
        key: u64,
        change: impl FnOnce(Option<V>) -> Option<V>,
    ) -> io::Result<Option<V>> {
        if key == 0 {
            let old = self.zero;
            if let Some(value) = change(old) {
                self.zero = Some(value);
            }
            return Ok(old);
        }
        let (slot, old) = self.find(key)?;
        if let Some(value) = change(old) {
            self.write_slot(slot, key, value)?;
            if old.is_none() {
                self.added()?;
            }
        }
        Ok(old)
    }

    /// Inserts entries whose keys the table does not hold yet (and that are distinct), a few thousand
    /// at a time with one read and one write per stretch of the table they fall in.
    pub fn insert_all(&mut self, entries: impl Iterator<Item = (u64, V)>) -> io::Result<()> {
        let mut batch = Vec::with_capacity(GROW_CHUNK_SLOTS);
        let mut stretch = Vec::new();
        for (key, value) in entries {
            if key == 0 {
                self.zero = Some(value);
                continue;
            }
            batch.push((key, value));
            if batch.len() == GROW_CHUNK_SLOTS {
                self.insert_absent(&mut batch, &mut stretch)?;
                batch.clear();
            }
        }
        self.insert_absent(&mut batch, &mut stretch)?;
        while self.stored * 2 > self.slots() {
            self.grow()?;
        }
        Ok(())
    }

    /// Calls `each` with every key, reading the file in order, a chunk at a time.
    pub fn for_each_key(&self, mut each: impl FnMut(u64)) -> io::Result<()> {
        if self.zero.is_some() {
            each(0);
        }
        self.for_each_chunk(|entries| {
            entries.for_each(|(key, _)| each(key));
            Ok(())
        })
    }

    /// Reads the file in order, [`GROW_CHUNK_SLOTS`] slots at a time, and calls `each` with the
    /// entries stored in each chunk (empty slots left out; key 0 lives in memory, not here).
    fn for_each_chunk(
        &self,
        mut each: impl FnMut(&mut dyn Iterator<Item = (u64, V)>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut chunk = vec![0u8; GROW_CHUNK_SLOTS * Self::SLOT_BYTES];
        let mut slot = 0;
        while slot < self.slots() {
            let n = (self.slots() - slot).min(GROW_CHUNK_SLOTS as u64) as usize;
            let bytes = &mut chunk[..n * Self::SLOT_BYTES];
            self.file
                .read_exact_at(bytes, slot * Self::SLOT_BYTES as u64)?;
            each(
                &mut bytes
                    .chunks_exact(Self::SLOT_BYTES)
                    .map(decode::<V>)
                    .filter(|(key, _)| *key != 0),
            )?;
            slot += n as u64;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.stored as usize + usize::from(self.zero.is_some())
    }

    #[cfg(test)]
    /// The size of the file, in bytes (of which only the written slots take disk space).
    pub fn file_bytes(&self) -> u64 {
        self.slots() * Self::SLOT_BYTES as u64
    }

    fn slots(&self) -> u64 {
        1 << self.bits
    }

    /// The slot where a probe for `key` starts. Fibonacci hashing spreads even keys that are not
    /// well-mixed hashes, and keeps the order of slots when the table doubles: an entry at home `h`
    /// has home `2h` or `2h + 1` in the bigger table.
    fn home(&self, key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)
    }

    /// Counts a new entry, and doubles the table when it is more than half full.
    fn added(&mut self) -> io::Result<()> {
        self.stored += 1;
        if self.stored * 2 > self.slots() {
            self.grow()?;
        }
        Ok(())
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

    /// Moves every entry into a new file of twice the slots, reading the old one in order, then drops
    /// the old file.
    fn grow(&mut self) -> io::Result<()> {
        let mut bigger = DiskTable::<V>::create(&self.dir, self.slots())?;
        bigger.zero = self.zero;
        let mut batch = Vec::with_capacity(GROW_CHUNK_SLOTS);
        let mut stretch = Vec::new();
        self.for_each_chunk(|entries| {
            batch.clear();
            batch.extend(entries);
            // The bigger table stays at most a quarter full here, so it does not grow in turn.
            bigger.insert_absent(&mut batch, &mut stretch)
        })?;
        *self = bigger;
        Ok(())
    }

    /// Inserts `entries`, whose keys are distinct, not 0 and not in the table, with few reads and
    /// writes: sorted by home slot, entries whose homes lie within [`STRETCH_SLOTS`] of each other are
    /// placed in one stretch of the table, read into `stretch` and written back at once. A probe that
    /// runs past the stretch reads on; one that would wrap around the end of the table is done slot by
    /// slot afterwards. Doubling and the move from memory insert every entry anew, and one read and
    /// one write per entry would cost them as much as all the inserts before them. Does not grow the
    /// table: the caller makes room first.
    fn insert_absent(&mut self, entries: &mut [(u64, V)], stretch: &mut Vec<u8>) -> io::Result<()> {
        let bytes = Self::SLOT_BYTES;
        entries.sort_unstable_by_key(|(key, _)| self.home(*key));
        let mut wrapped = Vec::new();
        let mut rest = &entries[..];
        while let Some(&(first, _)) = rest.first() {
            let start = self.home(first);
            let in_stretch = rest
                .iter()
                .take_while(|(key, _)| self.home(*key) - start < STRETCH_SLOTS)
                .count();
            let (group, tail) = rest.split_at(in_stretch);
            rest = tail;
            let last = group.last().map_or(start, |(key, _)| self.home(*key));
            let mut len = (last - start + RUN_SLOTS as u64).min(self.slots() - start);
            stretch.resize(len as usize * bytes, 0);
            self.file.read_exact_at(stretch, start * bytes as u64)?;
            for &(key, value) in group {
                let mut at = self.home(key) - start;
                loop {
                    if at == len {
                        if start + len == self.slots() {
                            wrapped.push((key, value));
                            break;
                        }
                        let more = (self.slots() - start - len).min(RUN_SLOTS as u64);
                        stretch.resize((len + more) as usize * bytes, 0);
                        self.file.read_exact_at(
                            &mut stretch[len as usize * bytes..],
                            (start + len) * bytes as u64,
                        )?;
                        len += more;
                    }
                    let raw = &mut stretch[at as usize * bytes..(at as usize + 1) * bytes];
                    if decode::<V>(raw).0 == 0 {
                        encode(raw, key, value);
                        self.stored += 1;
                        break;
                    }
                    at += 1;
                }
            }
            self.file.write_all_at(stretch, start * bytes as u64)?;
        }
        for (key, value) in wrapped {
            let (slot, _) = self.find(key)?;
            self.write_slot(slot, key, value)?;
            self.stored += 1;
        }
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

/// A new file in `dir`, already removed from it, read at random: see the module documentation.
fn create_unlinked(dir: &Path) -> io::Result<File> {
    let file = create_unlinked_file(dir)?;
    advise_random_access(&file);
    skip_access_times(&file);
    Ok(file)
}

/// A new file in `dir`, already removed from it, so that nothing is left behind whatever happens.
pub(crate) fn create_unlinked_file(dir: &Path) -> io::Result<File> {
    static CREATED: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    loop {
        attempts += 1;
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
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {}
            Err(err) => return Err(err),
        }
    }
}

/// Tells the kernel that the file is read at random, so that it reads no slots ahead nobody asked for.
/// That also keeps its pages in the cache small: Linux 6.16+ caches ext4 files in large folios when
/// reading ahead, and then every small `pwrite` walks the block list of a whole folio, which made the
/// table several times slower. Only advice: a failure changes nothing else.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn advise_random_access(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of the call; no memory is passed.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM);
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn advise_random_access(_file: &File) {}

/// Asks the kernel not to update the file's access time on reads: with the file written as it is read,
/// a relatime mount would otherwise update it on nearly every lookup. Only a saving: a failure (the
/// flag needs the file's owner, which this process is) changes nothing else.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn skip_access_times(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the duration of both calls; no memory is passed.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags | libc::O_NOATIME);
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn skip_access_times(_file: &File) {}

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
                self.spill_if_full()
            }
            Store::Disk(table) => table.insert(key, value),
        }
    }

    /// Inserts `value` unless `key` already has a value, and returns that value (one probe on disk
    /// where [`SpillMap::get`] and [`SpillMap::insert`] would take two). Fails as `insert` does.
    pub fn insert_new(&mut self, key: u64, value: V) -> io::Result<Option<V>> {
        match &mut self.store {
            Store::Memory(map) => {
                let old = map.get(key);
                if old.is_none() {
                    map.insert(key, value);
                    self.spill_if_full()?;
                }
                Ok(old)
            }
            Store::Disk(table) => table.insert_new(key, value),
        }
    }

    /// Looks `key` up and, when `change` returns a value for what it found, stores that value (one
    /// probe on disk where [`SpillMap::get`] and [`SpillMap::insert`] would take two). Returns what was
    /// there before. Fails as `insert` does.
    pub fn update(
        &mut self,
        key: u64,
        change: impl FnOnce(Option<V>) -> Option<V>,
    ) -> io::Result<Option<V>> {
        match &mut self.store {
            Store::Memory(map) => {
                let old = map.get(key);
                if let Some(value) = change(old) {
                    map.insert(key, value);
                    if old.is_none() {
                        self.spill_if_full()?;
                    }
                }
                Ok(old)
            }
            Store::Disk(table) => table.update(key, change),
        }
    }

    /// Moves the entries to a new disk table once there are more than the memory holds.
    fn spill_if_full(&mut self) -> io::Result<()> {
        if let Store::Memory(map) = &self.store {
            if map.len() > self.memory_entries {
                let mut table = DiskTable::create(&self.dir, 2 * map.len() as u64)?;
                table.insert_all(map.iter())?;
                self.store = Store::Disk(table);
            }
        }
        Ok(())
    }

    /// Whether the entries are in the disk table, where each lookup costs a read of the file.
    pub fn is_on_disk(&self) -> bool {
        matches!(self.store, Store::Disk(_))
    }

    /// How many keys the map holds.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Memory(map) => map.len(),
            Store::Disk(table) => table.len(),
        }
    }

    /// Calls `each` with every key, in no particular order (on disk, one sequential read of the file).
    pub fn for_each_key(&self, mut each: impl FnMut(u64)) -> io::Result<()> {
        match &self.store {
            Store::Memory(map) => {
                map.iter().for_each(|(key, _)| each(key));
                Ok(())
            }
            Store::Disk(table) => table.for_each_key(each),
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(test)]
    /// Approximate heap memory in use, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.dir.capacity()
            + match &self.store {
                Store::Memory(map) => map.heap_bytes(),
                Store::Disk(_) => 0,
            }
    }

    #[cfg(test)]
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
    fn probes_wrap_around_the_end_of_the_table_in_every_way_of_inserting() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut table = DiskTable::<u64>::create(dir.path(), 0)?;
        assert_eq!(table.slots(), MIN_SLOTS);
        // Keys whose probes start in the last 4 slots: most of them wrap to slot 0 and on.
        let mut rng = Rng(3);
        let ends: Vec<u64> = std::iter::from_fn(|| Some(rng.next()))
            .filter(|key| table.home(*key) >= MIN_SLOTS - 4)
            .take(40)
            .collect();
        for key in &ends[..20] {
            assert_eq!(table.insert_new(*key, *key)?, None);
        }
        table.insert_all(ends[20..].iter().map(|key| (*key, *key)))?;
        assert_eq!(table.len(), 40);
        for key in &ends {
            assert_eq!(table.get(*key)?, Some(*key));
            assert_eq!(table.insert_new(*key, 0)?, Some(*key));
        }
        // Doubling twice keeps them, and what wraps then.
        let others: Vec<u64> = (0..1500).map(|_| rng.next()).collect();
        for key in &others {
            table.insert(*key, !*key)?;
        }
        assert_eq!(table.slots(), 4 * MIN_SLOTS);
        for key in &ends {
            assert_eq!(table.get(*key)?, Some(*key));
        }
        for key in &others {
            assert_eq!(table.get(*key)?, Some(!*key));
        }
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
        // insert_new leaves a value in place, and adds a missing one.
        assert_eq!(map.insert_new(keys[3], 1)?, model.get(&keys[3]).copied());
        assert_eq!(map.insert_new(0, 1)?, Some(9));
        let fresh = rng.next();
        assert_eq!(map.insert_new(fresh, 1)?, None);
        model.insert(fresh, 1);
        assert_eq!(map.len(), model.len());
        for (key, value) in &model {
            assert_eq!(map.get(*key)?, Some(*value));
        }
        assert!(map.file_bytes() > 0);
        assert_eq!(entries_in(dir.path())?, 0, "the file is unlinked");
        Ok(())
    }

    #[test]
    fn update_changes_adds_or_leaves_a_value_with_one_probe_in_memory_and_on_disk() -> io::Result<()>
    {
        let dir = tempfile::tempdir()?;
        let mut rng = Rng(5);
        for memory_entries in [1000, 10] {
            let mut map = SpillMap::<u64>::with_memory_entries(dir.path(), memory_entries);
            let mut model = HashMap::new();
            for i in 0..200u64 {
                let key = if i % 50 == 0 { 0 } else { rng.next() % 150 };
                // Raise a value, never lower it; add what is missing.
                let old = map.update(key, |old| match old {
                    Some(v) if v >= i % 7 => None,
                    _ => Some(i % 7),
                })?;
                assert_eq!(old, model.get(&key).copied(), "{key}");
                let value = model.entry(key).or_insert(i % 7);
                *value = (*value).max(i % 7);
                // Nothing is stored for a missing key the change leaves alone.
                assert_eq!(map.update(1 << 40 | i, |_| None)?, None);
            }
            assert_eq!(map.is_on_disk(), memory_entries == 10);
            assert_eq!(map.len(), model.len());
            for (key, value) in &model {
                assert_eq!(map.get(*key)?, Some(*value));
            }
        }
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
