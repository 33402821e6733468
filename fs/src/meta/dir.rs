//! Directory entries, indexed by name hash.
//!
//! Entries live in a `BTreeMap` keyed by (hash of name, name): lookups are O(log n) and a
//! readdir position is the hash (a stable 62-bit cookie, as ext4's htree uses), so a
//! 100k-entry directory is never scanned linearly and concurrent changes do not shift
//! positions of other entries.

use std::collections::BTreeMap;

/// File type of a directory entry (the `S_IFMT` bits >> 12).
pub type Kind = u8;

/// Index key: (name hash, name).
type Key = (u64, Box<[u8]>);

/// A directory's entries and its parent (for "..").
#[derive(Clone, Debug, Default)]
pub struct Dir {
    /// Parent directory inode (the root is its own parent).
    pub parent: u64,
    entries: BTreeMap<Key, (u64, Kind)>,
}

/// First cookie handed to a real entry; 1 and 2 are "." and "..".
pub const FIRST_COOKIE: u64 = 3;

/// The 62-bit hash of a name used as its position cookie.
pub fn name_hash(name: &[u8]) -> u64 {
    // FNV-1a, then a final avalanche so that similar names spread over the key space.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h & ((1u64 << 62) - 1)
}

impl Dir {
    /// An empty directory whose parent is `parent`.
    pub fn new(parent: u64) -> Self {
        Dir {
            parent,
            entries: BTreeMap::new(),
        }
    }

    /// Number of entries (not counting "." and "..").
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the directory holds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The inode and kind named `name`.
    pub fn get(&self, name: &[u8]) -> Option<(u64, Kind)> {
        self.entries
            .get(&(name_hash(name), Box::from(name)))
            .copied()
    }

    /// Adds an entry; false if the name exists.
    pub fn insert(&mut self, name: &[u8], ino: u64, kind: Kind) -> bool {
        let key = (name_hash(name), Box::from(name));
        if self.entries.contains_key(&key) {
            return false;
        }
        self.entries.insert(key, (ino, kind));
        true
    }

    /// Removes an entry, returning what it named.
    pub fn remove(&mut self, name: &[u8]) -> Option<(u64, Kind)> {
        self.entries.remove(&(name_hash(name), Box::from(name)))
    }

    /// Replaces what an existing entry names.
    pub fn replace(&mut self, name: &[u8], ino: u64, kind: Kind) -> Option<(u64, Kind)> {
        let key = (name_hash(name), Box::from(name));
        let old = self.entries.get_mut(&key)?;
        Some(std::mem::replace(old, (ino, kind)))
    }

    /// Entries with cookie > `after` (0 = from the start), in cookie order, as
    /// (cookie, name, ino, kind). Cookie of an entry = FIRST_COOKIE + hash.
    pub fn entries_after(&self, after: u64) -> impl Iterator<Item = (u64, &[u8], u64, Kind)> + '_ {
        let start = if after < FIRST_COOKIE {
            0
        } else {
            after - FIRST_COOKIE + 1
        };
        let empty: Box<[u8]> = Box::from(&b""[..]);
        self.entries
            .range((start, empty)..)
            .map(|((h, n), &(ino, k))| (h + FIRST_COOKIE, &n[..], ino, k))
    }

    /// All entries (name, ino, kind) in cookie order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64, Kind)> + '_ {
        self.entries
            .iter()
            .map(|((_, n), &(ino, k))| (&n[..], ino, k))
    }
}
