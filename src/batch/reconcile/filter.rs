//! Which keys the reports certainly do not hold, answered from memory.
//!
//! With `--list`, every item of the list is looked up in the index of the reports' items. Once that
//! index is on disk each lookup is a read of its file, and in the common case (a run killed early,
//! a shard that never ran) most items of the list are in no report at all. A [`KeyFilter`] (a Bloom
//! filter of the index's keys, built with one sequential read of the index) says "not there" for
//! nearly all of them without that read. It never says "not there" of a key that is there, so an
//! answer it gives is exact; a key it cannot rule out is looked up as before.
//!
//! Its size follows the number of keys up to [`MAX_BITS`] (2 MiB), and stays there however long the
//! reports are: past about a million items its answers grow less useful, never wrong, and the memory
//! stays flat.

use std::io;

use crate::batch::spill::SpillMap;

/// The largest filter, in bits: 2 MiB.
const MAX_BITS_LOG2: u32 = 24;
pub const MAX_BITS: u64 = 1 << MAX_BITS_LOG2;
/// The smallest filter, in bits: 8 KiB.
const MIN_BITS_LOG2: u32 = 16;
/// Bits per key aimed at: with two probes, about 1.4% of absent keys are not ruled out.
const BITS_PER_KEY: u64 = 16;
/// Odd multipliers that pick a key's two bits (the keys are hashes; these spread them again).
const PROBES: [u64; 2] = [0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F];

/// A Bloom filter of 64-bit keys; see the module documentation.
pub struct KeyFilter {
    words: Vec<u64>,
    bits_log2: u32,
}

impl KeyFilter {
    /// An empty filter sized for `keys` keys.
    pub fn with_capacity(keys: u64) -> KeyFilter {
        let bits = keys
            .saturating_mul(BITS_PER_KEY)
            .clamp(1 << MIN_BITS_LOG2, MAX_BITS)
            .next_power_of_two();
        let bits_log2 = bits.trailing_zeros();
        KeyFilter {
            words: vec![0; (bits / 64) as usize],
            bits_log2,
        }
    }

    /// A filter of every key of `map`, when `map` is on disk (where it saves reads); `None` while
    /// `map` is in memory, where a lookup costs less than the filter.
    pub fn of_spilled<V: crate::batch::spill::SlotValue>(
        map: &SpillMap<V>,
    ) -> io::Result<Option<KeyFilter>> {
        if !map.is_on_disk() {
            return Ok(None);
        }
        let mut filter = KeyFilter::with_capacity(map.len() as u64);
        map.for_each_key(|key| filter.insert(key))?;
        Ok(Some(filter))
    }

    pub fn insert(&mut self, key: u64) {
        for bit in self.bits(key) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// False only for a key never inserted.
    pub fn may_hold(&self, key: u64) -> bool {
        self.bits(key)
            .into_iter()
            .all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    fn bits(&self, key: u64) -> [u64; 2] {
        PROBES.map(|odd| key.wrapping_mul(odd) >> (64 - self.bits_log2))
    }

    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (SplitMix64).
    fn keys(seed: u64, n: usize) -> Vec<u64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut x = state;
                x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                x ^ (x >> 31)
            })
            .collect()
    }

    #[test]
    fn a_key_inserted_is_never_ruled_out_and_most_others_are() {
        let held = keys(1, 200_000);
        let mut filter = KeyFilter::with_capacity(held.len() as u64);
        for &key in &held {
            filter.insert(key);
        }
        assert!(held.iter().all(|&key| filter.may_hold(key)));
        assert!(filter.may_hold(held[0]) && !KeyFilter::with_capacity(1).may_hold(held[0]));
        let absent = keys(2, 200_000);
        let not_ruled_out = absent.iter().filter(|&&key| filter.may_hold(key)).count();
        assert!(
            not_ruled_out < absent.len() / 30,
            "{not_ruled_out} of {} absent keys not ruled out",
            absent.len()
        );
    }

    #[test]
    fn its_memory_stops_growing_at_two_mebibytes() {
        assert_eq!(KeyFilter::with_capacity(0).heap_bytes(), 8 * 1024);
        assert_eq!(
            KeyFilter::with_capacity(100_000_000).heap_bytes(),
            (MAX_BITS / 8) as usize
        );
        // Overfull, it still holds every key it was given.
        let held = keys(3, 3_000_000);
        let mut filter = KeyFilter::with_capacity(held.len() as u64);
        held.iter().for_each(|&key| filter.insert(key));
        assert!(held.iter().all(|&key| filter.may_hold(key)));
    }

    #[test]
    fn a_map_on_disk_gets_a_filter_of_all_its_keys_and_one_in_memory_none() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut map: SpillMap<u64> = SpillMap::with_memory_entries(dir.path(), 100);
        let held = keys(4, 1000);
        for (i, &key) in held.iter().take(50).enumerate() {
            map.insert(key, i as u64)?;
        }
        assert!(KeyFilter::of_spilled(&map)?.is_none());
        map.insert(0, 7)?;
        for (i, &key) in held.iter().enumerate().skip(50) {
            map.insert(key, i as u64)?;
        }
        let filter = KeyFilter::of_spilled(&map)?.expect("the map is on disk");
        assert!(filter.may_hold(0));
        assert!(held.iter().all(|&key| filter.may_hold(key)));
        let absent = keys(5, 1000);
        assert!(absent.iter().filter(|&&key| filter.may_hold(key)).count() < 100);
        Ok(())
    }
}
