//! A map from 64-bit hashes to small fixed-size values, in little more memory than the entries themselves.
//!
//! Batch mode remembers something about every item of the list (which names are taken, which files a
//! previous run finished). This map holds the first entries of those indexes, up to
//! [`super::spill::MEMORY_ENTRIES`]; past that they move to a table on disk (see [`super::spill`]). A
//! `HashMap<u64, _>` spends about twice the entry size once its spare capacity and control bytes are
//! counted, and doubles its allocation when it grows. This map keeps almost everything in one sorted
//! `Vec` with no spare capacity (binary search to look up) and only the most recent inserts in a small
//! `HashMap`, merged into the `Vec` in place when that buffer reaches 1/32 of the map or the minimum
//! its owner chose, whichever is larger.
//!
//! Memory: `size_of::<(u64, V)>()` bytes per entry, plus the buffer (at most ~1/32 of that again, or the
//! minimum, times about two), plus one transient sorted copy of the buffer during a merge. Merges move
//! every entry, but each one happens only after the map grew by 1/32, so the total work stays
//! near-linear.

use std::collections::HashMap;

/// A map from `u64` keys (already well-mixed hashes) to `V`.
pub struct CompactMap<V> {
    sorted: Vec<(u64, V)>,
    recent: HashMap<u64, V>,
    min_recent: usize,
}

impl<V: Copy> CompactMap<V> {
    /// A map that merges its recent inserts once there are `min_recent` of them (or 1/32 of the map).
    pub fn with_min_recent(min_recent: usize) -> CompactMap<V> {
        CompactMap {
            sorted: Vec::new(),
            recent: HashMap::new(),
            min_recent,
        }
    }

    pub fn get(&self, key: u64) -> Option<V> {
        if let Some(value) = self.recent.get(&key) {
            return Some(*value);
        }
        self.sorted
            .binary_search_by_key(&key, |entry| entry.0)
            .ok()
            .map(|at| self.sorted[at].1)
    }

    /// Inserts or replaces the value of `key`.
    pub fn insert(&mut self, key: u64, value: V) {
        if let Ok(at) = self.sorted.binary_search_by_key(&key, |entry| entry.0) {
            self.sorted[at].1 = value;
            return;
        }
        self.recent.insert(key, value);
        if self.recent.len() >= self.min_recent.max(self.sorted.len() / 32) {
            self.merge();
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.sorted
            .iter()
            .copied()
            .chain(self.recent.iter().map(|(key, value)| (*key, *value)))
    }

    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    #[cfg(test)]
    /// Approximate heap memory in use, in bytes.
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u64, V)>();
        self.sorted.capacity() * entry + self.recent.capacity() * (entry + 1)
    }

    /// Moves the recent inserts into the sorted vector, merging from the back so that no second copy of
    /// the vector is needed.
    fn merge(&mut self) {
        let mut fresh: Vec<(u64, V)> = self.recent.drain().collect();
        fresh.sort_unstable_by_key(|entry| entry.0);
        let old = self.sorted.len();
        self.sorted.reserve_exact(fresh.len());
        // Grow to the final length; these slots are overwritten below.
        self.sorted.extend_from_slice(&fresh);
        let (mut i, mut j, mut k) = (old, fresh.len(), self.sorted.len());
        while j > 0 {
            k -= 1;
            if i > 0 && self.sorted[i - 1].0 > fresh[j - 1].0 {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = fresh[j - 1];
                j -= 1;
            }
        }
        self.recent = HashMap::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    #[test]
    fn behaves_like_a_hash_map_across_merges() {
        let mut map = CompactMap::with_min_recent(7);
        let mut model = HashMap::new();
        for i in 0..5000u64 {
            let key = mix(i % 3000);
            map.insert(key, i);
            model.insert(key, i);
            if i % 97 == 0 {
                for probe in 0..50 {
                    assert_eq!(
                        map.get(mix(probe * 61)),
                        model.get(&mix(probe * 61)).copied()
                    );
                }
            }
        }
        assert_eq!(map.len(), model.len());
        for (key, value) in &model {
            assert_eq!(map.get(*key), Some(*value));
        }
        assert_eq!(map.get(mix(3000)), None);
        assert!(map.sorted.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn memory_stays_near_the_entry_size() {
        let mut map = CompactMap::with_min_recent(1 << 16);
        let n = 1_000_000u64;
        for i in 0..n {
            map.insert(mix(i), i);
        }
        let per_entry = map.heap_bytes() as f64 / n as f64;
        // 16 bytes of entry; the recent buffer may add a few more.
        assert!(per_entry < 20.0, "{per_entry} bytes per entry");
    }
}
