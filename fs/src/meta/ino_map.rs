//! Maps keyed by inode number, with a hash that costs one multiplication.
//!
//! The standard `HashMap` hashes with SipHash, built to resist keys an attacker chooses.
//! Inode numbers are handed out by the filesystem itself (sequentially, never reused), so
//! that defence buys nothing here and SipHash was the largest cost of loading a table:
//! every inode is inserted once and looked up several times by the mount's cross-checks.
//! A crafted image can at worst make its own mount slower.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A map from inode numbers (walked, roughly, in number order).
pub type InoMap<V> = HashMap<u64, V, BuildHasherDefault<InoHasher>>;
/// A set of inode numbers.
pub type InoSet = HashSet<u64, BuildHasherDefault<InoHasher>>;

/// Keeps the key's low 57 bits as they are and takes the top 7 from the key times an odd
/// constant (the golden ratio's 64-bit fraction). The table picks a bucket with the low
/// bits, so consecutive inode numbers sit in consecutive buckets without colliding, and
/// walking the table visits inodes in number order, which is the order a checkpoint
/// decodes (allocates) them in: a pass over a million inodes reads memory in sequence
/// instead of at random. The table keeps the top 7 bits as a tag to rule out most
/// non-matching buckets, so those must vary from key to key.
#[derive(Default, Clone, Copy, Debug)]
pub struct InoHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;
const LOW: u64 = (1 << 57) - 1;

impl Hasher for InoHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        let key = self.0.rotate_left(5) ^ n;
        self.0 = (key & LOW) | (key.wrapping_mul(K) & !LOW);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by u64 keys; any other key still hashes, eight bytes at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_numbers_spread_over_buckets_and_tags() {
        let hash = |n: u64| {
            let mut h = InoHasher::default();
            h.write_u64(n);
            h.finish()
        };
        // Low 10 bits (1024 buckets) of 1024 consecutive numbers: all different.
        let low: std::collections::BTreeSet<u64> = (5000..6024).map(|n| hash(n) & 1023).collect();
        assert_eq!(low.len(), 1024);
        // Top 7 bits (the tag) take every value over 1024 consecutive numbers.
        let tags: std::collections::BTreeSet<u64> = (5000..6024).map(|n| hash(n) >> 57).collect();
        assert_eq!(tags.len(), 128);
        let mut m: InoMap<u32> = InoMap::default();
        for n in 0..100_000u64 {
            m.insert(n * 3, n as u32);
        }
        assert_eq!(m.get(&(99_999 * 3)), Some(&99_999));
        assert_eq!(m.get(&1), None);
    }
}
