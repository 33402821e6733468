//! Maps keyed by inode number: a cheap hash that keeps runs of consecutive numbers
//! together, and a secret per process so that chosen numbers cannot collide on purpose.
//!
//! The standard `HashMap` hashes with SipHash, and SipHash was the largest cost of loading
//! a table: every inode is inserted once and looked up several times by the mount's
//! cross-checks, and walking a million inodes in hash order misses the cache at every
//! step. Inode numbers are handed out sequentially and a checkpoint allocates inodes in
//! number order, so a hash that keeps consecutive numbers in consecutive buckets makes a
//! walk of the table a walk of memory. But the numbers come from the image, which may be
//! crafted (or be what is left after a patterned deletion): a hash that is only the
//! number's low bits puts every multiple of the table size in one bucket, and the table
//! then goes quadratic. So only runs of 4096 numbers stay together, each starting at a
//! bucket given by a keyed mixer of the rest of the number, with a secret drawn once per
//! process.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// A map from inode numbers (walked in runs of 4096 consecutive numbers).
pub type InoMap<V> = HashMap<u64, V, BuildHasherDefault<InoHasher>>;
/// A set of inode numbers.
pub type InoSet = HashSet<u64, BuildHasherDefault<InoHasher>>;

/// Runs of 4096 consecutive numbers sit in consecutive buckets (a table of fewer buckets
/// than that wraps them, still without collisions within the run).
const RUN_BITS: u32 = 12;
const RUN: u64 = (1 << RUN_BITS) - 1;

/// The hash of one inode number: the start of its run (the number without its low
/// `RUN_BITS` bits, mixed with the process's secret by splitmix64's finaliser) plus its
/// place in the run; the top 7 bits — which the table keeps as a tag to rule out most
/// non-matching buckets — mixed with the low bits too, so numbers of one run do not share
/// a tag.
#[derive(Default, Clone, Copy, Debug)]
pub struct InoHasher(u64);

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xbf58_476d_1ce4_e5b9;
const K3: u64 = 0x94d0_49bb_1331_11eb;

/// The process's secret, from the standard library's random hasher keys.
fn secret() -> u64 {
    static SECRET: OnceLock<u64> = OnceLock::new();
    *SECRET.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5ea1u64))
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(K2);
    x = (x ^ (x >> 27)).wrapping_mul(K3);
    x ^ (x >> 31)
}

impl Hasher for InoHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        let key = self.0.rotate_left(5) ^ n;
        // A run starts at a bucket of its own, anywhere (not at a multiple of the run's
        // length: numbers that share their low bits must still land apart).
        let start = mix((key >> RUN_BITS) ^ secret());
        let h = start.wrapping_add(key & RUN);
        self.0 = h ^ ((key & RUN).wrapping_mul(K1) & (0x7f << 57));
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
    use std::collections::BTreeSet;

    fn hash(n: u64) -> u64 {
        let mut h = InoHasher::default();
        h.write_u64(n);
        h.finish()
    }

    #[test]
    fn a_run_of_numbers_takes_consecutive_buckets_with_varied_tags() {
        let base = 7 << RUN_BITS;
        let mask = (1u64 << 20) - 1;
        let first = hash(base) & mask;
        for i in 0..4096u64 {
            assert_eq!(
                hash(base + i) & mask,
                (first + i) & mask,
                "number {i} of the run"
            );
        }
        let tags: BTreeSet<u64> = (base..base + 1024).map(|n| hash(n) >> 57).collect();
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn chosen_numbers_do_not_pile_into_one_bucket() {
        // Multiples of a power of two (what a crafted image or a patterned deletion leaves)
        // spread over a 2^17-bucket table as random keys would: about 70k distinct buckets
        // for 100k keys; a hash of the low bits alone gives 1.
        for shift in [12u32, 17, 20, 32, 44] {
            let buckets: BTreeSet<u64> = (1..=100_000u64)
                .map(|i| hash(i << shift) & ((1 << 17) - 1))
                .collect();
            assert!(
                buckets.len() > 60_000,
                "i << {shift}: {} buckets",
                buckets.len()
            );
        }
        let mut m: InoMap<u32> = InoMap::default();
        for i in 0..100_000u64 {
            m.insert(i << 32, i as u32);
        }
        assert_eq!(m.get(&(99_999 << 32)), Some(&99_999));
        assert_eq!(m.get(&1), None);
    }
}
