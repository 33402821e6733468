//! Directory entries, indexed by name hash.
//!
//! Entries live in a `BTreeMap` keyed by (hash of name, name): lookups are O(log n) and a
//! readdir position is the hash (a stable 62-bit cookie, as ext4's htree uses), so a
//! 100k-entry directory is never scanned linearly and concurrent changes do not shift
//! positions of other entries.

use std::collections::BTreeMap;

/// File type of a directory entry (the `S_IFMT` bits >> 12).
pub type Kind = u8;

/// A name as a directory keeps it: names of up to [`INLINE`] bytes (almost all) are held
/// inside the entry, longer ones on the heap. Keeps a 100k-entry directory from making 100k
/// small allocations.
#[derive(Clone)]
enum Name {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

/// Longest name held inline.
const INLINE: usize = 22;

impl Name {
    fn new(name: &[u8]) -> Name {
        if name.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..name.len()].copy_from_slice(name);
            Name::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            Name::Heap(Box::from(name))
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes } => &bytes[..*len as usize],
            Name::Heap(b) => b,
        }
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// One entry.
#[derive(Clone, Debug)]
struct Entry {
    name: Name,
    ino: u64,
    kind: Kind,
}

/// The entries whose names share one hash: nearly always one.
#[derive(Clone, Debug)]
enum Bucket {
    One(Entry),
    /// Two or more, sorted by name.
    More(Vec<Entry>),
}

impl Bucket {
    fn as_slice(&self) -> &[Entry] {
        match self {
            Bucket::One(e) => std::slice::from_ref(e),
            Bucket::More(v) => v,
        }
    }

    fn find_mut(&mut self, name: &[u8]) -> Option<&mut Entry> {
        match self {
            Bucket::One(e) => (e.name.as_bytes() == name).then_some(e),
            Bucket::More(v) => v.iter_mut().find(|e| e.name.as_bytes() == name),
        }
    }
}

/// A directory's entries and its parent (for "..").
#[derive(Clone, Debug, Default)]
pub struct Dir {
    /// Parent directory inode (the root is its own parent).
    pub parent: u64,
    /// Name hash -> the entries with that hash. Looking a name up allocates nothing.
    entries: BTreeMap<u64, Bucket>,
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

    /// A directory built at once from `entries` (name, ino, kind), as a checkpoint load
    /// does: the index is bulk-built with full nodes (inserting one by one in hash order
    /// leaves them about half full). `None` when a name repeats.
    pub fn from_entries<'a>(
        parent: u64,
        entries: impl IntoIterator<Item = (&'a [u8], u64, Kind)>,
    ) -> Option<Dir> {
        let mut all: Vec<(u64, Entry)> = entries
            .into_iter()
            .map(|(name, ino, kind)| {
                let e = Entry {
                    name: Name::new(name),
                    ino,
                    kind,
                };
                (name_hash(name), e)
            })
            .collect();
        // Checkpoints store entries in this order already; the sort then costs one pass.
        all.sort_by(|a, b| (a.0, a.1.name.as_bytes()).cmp(&(b.0, b.1.name.as_bytes())));
        let mut buckets: Vec<(u64, Bucket)> = Vec::with_capacity(all.len());
        for (h, e) in all {
            match buckets.last_mut() {
                Some((lh, b)) if *lh == h => {
                    if b.as_slice().last().map(|l| l.name.as_bytes()) == Some(e.name.as_bytes()) {
                        return None;
                    }
                    *b = match std::mem::replace(b, Bucket::More(Vec::new())) {
                        Bucket::One(first) => Bucket::More(vec![first, e]),
                        Bucket::More(mut v) => {
                            v.push(e);
                            Bucket::More(v)
                        }
                    };
                }
                _ => buckets.push((h, Bucket::One(e))),
            }
        }
        Some(Dir {
            parent,
            entries: buckets.into_iter().collect(),
        })
    }

    /// Number of entries (not counting "." and ".."). Counts: O(entries); a checkpoint
    /// is its one user, and a counter would cost every directory 8 bytes.
    pub fn len(&self) -> usize {
        self.entries.values().map(|b| b.as_slice().len()).sum()
    }

    /// True when the directory holds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The inode and kind named `name`.
    pub fn get(&self, name: &[u8]) -> Option<(u64, Kind)> {
        self.get_at(name_hash(name), name)
    }

    /// Adds an entry; false if the name exists.
    pub fn insert(&mut self, name: &[u8], ino: u64, kind: Kind) -> bool {
        self.insert_at(name_hash(name), name, ino, kind)
    }

    /// Removes an entry, returning what it named.
    pub fn remove(&mut self, name: &[u8]) -> Option<(u64, Kind)> {
        self.remove_at(name_hash(name), name)
    }

    /// Replaces what an existing entry names.
    pub fn replace(&mut self, name: &[u8], ino: u64, kind: Kind) -> Option<(u64, Kind)> {
        let e = self.entries.get_mut(&name_hash(name))?.find_mut(name)?;
        let old = (e.ino, e.kind);
        (e.ino, e.kind) = (ino, kind);
        Some(old)
    }

    // The `_at` forms take the hash, so tests can make names collide.
    fn get_at(&self, h: u64, name: &[u8]) -> Option<(u64, Kind)> {
        self.entries
            .get(&h)?
            .as_slice()
            .iter()
            .find(|e| e.name.as_bytes() == name)
            .map(|e| (e.ino, e.kind))
    }

    fn insert_at(&mut self, h: u64, name: &[u8], ino: u64, kind: Kind) -> bool {
        let new = Entry {
            name: Name::new(name),
            ino,
            kind,
        };
        match self.entries.entry(h) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(Bucket::One(new));
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let b = o.get_mut();
                if b.find_mut(name).is_some() {
                    return false;
                }
                let mut v = match std::mem::replace(b, Bucket::More(Vec::new())) {
                    Bucket::One(e) => vec![e],
                    Bucket::More(v) => v,
                };
                let at = v.partition_point(|e| e.name.as_bytes() < name);
                v.insert(at, new);
                *b = Bucket::More(v);
            }
        }
        true
    }

    fn remove_at(&mut self, h: u64, name: &[u8]) -> Option<(u64, Kind)> {
        let b = self.entries.get_mut(&h)?;
        let gone = match b {
            Bucket::One(e) if e.name.as_bytes() == name => {
                let gone = (e.ino, e.kind);
                self.entries.remove(&h);
                gone
            }
            Bucket::One(_) => return None,
            Bucket::More(v) => {
                let at = v.iter().position(|e| e.name.as_bytes() == name)?;
                let e = v.remove(at);
                if v.len() == 1 {
                    if let Some(last) = v.pop() {
                        *b = Bucket::One(last);
                    }
                }
                (e.ino, e.kind)
            }
        };
        Some(gone)
    }

    /// Entries with cookie > `after` (0 = from the start), in cookie order, as
    /// (cookie, name, ino, kind). Cookie of an entry = FIRST_COOKIE + hash.
    pub fn entries_after(&self, after: u64) -> impl Iterator<Item = (u64, &[u8], u64, Kind)> + '_ {
        let start = if after < FIRST_COOKIE {
            0
        } else {
            after - FIRST_COOKIE + 1
        };
        self.entries.range(start..).flat_map(|(h, b)| {
            b.as_slice()
                .iter()
                .map(move |e| (h + FIRST_COOKIE, e.name.as_bytes(), e.ino, e.kind))
        })
    }

    /// All entries (name, ino, kind) in cookie order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64, Kind)> + '_ {
        self.entries.values().flat_map(|b| {
            b.as_slice()
                .iter()
                .map(|e| (e.name.as_bytes(), e.ino, e.kind))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_small() {
        assert_eq!(std::mem::size_of::<Name>(), 24);
        assert_eq!(std::mem::size_of::<Bucket>(), 40);
    }

    #[test]
    fn colliding_hashes_share_a_bucket() {
        let mut d = Dir::new(1);
        let h = 77;
        let long = [b'x'; 40];
        assert!(d.insert_at(h, b"b", 12, 8));
        assert!(d.insert_at(h, &long, 11, 8));
        assert!(d.insert_at(h, b"a", 10, 8));
        assert!(
            !d.insert_at(h, b"a", 1, 8),
            "duplicate in a shared bucket refused"
        );
        assert!(d.insert(b"other", 13, 4));
        assert_eq!(d.len(), 4);
        assert_eq!(d.get_at(h, b"a"), Some((10, 8)));
        assert_eq!(d.get_at(h, b"c"), None);
        let e = d.entries.get_mut(&h).unwrap().find_mut(b"a").unwrap();
        e.ino = 20;
        let all: Vec<_> = d
            .entries_after(0)
            .filter(|&(c, ..)| c == h + FIRST_COOKIE)
            .map(|(_, n, i, _)| (n.to_vec(), i))
            .collect();
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), 20),
                (b"b".to_vec(), 12),
                (long.to_vec(), 11)
            ],
            "one cookie, sorted by name"
        );
        assert_eq!(d.remove_at(h, b"b"), Some((12, 8)));
        assert_eq!(d.remove_at(h, b"b"), None);
        assert_eq!(d.remove_at(h, &long), Some((11, 8)));
        assert!(
            matches!(d.entries.get(&h), Some(Bucket::One(_))),
            "back to one"
        );
        assert_eq!(d.remove_at(h, b"zz"), None);
        assert_eq!(d.len(), 2);
        assert_eq!(d.remove_at(h, b"a"), Some((20, 8)));
        assert_eq!(d.remove(b"other"), Some((13, 4)));
        assert!(d.is_empty() && d.entries.is_empty());
    }

    #[test]
    fn built_at_once_equals_built_one_by_one() {
        let names: Vec<Vec<u8>> = (0..5000)
            .map(|i| format!("f{}{i}", "x".repeat(i % 30)).into_bytes())
            .collect();
        let mut one = Dir::new(7);
        for (i, n) in names.iter().enumerate() {
            assert!(one.insert(n, i as u64, 8));
        }
        let bulk = Dir::from_entries(
            7,
            names
                .iter()
                .enumerate()
                .rev()
                .map(|(i, n)| (&n[..], i as u64, 8)),
        )
        .unwrap();
        let a: Vec<_> = one.entries_after(0).collect();
        let b: Vec<_> = bulk.entries_after(0).collect();
        assert_eq!(a, b);
        assert_eq!((bulk.len(), bulk.parent), (5000, 7));
        let dup = [(&b"x"[..], 1, 8), (&b"y"[..], 2, 8), (&b"x"[..], 3, 8)];
        assert!(
            Dir::from_entries(1, dup).is_none(),
            "a repeated name is refused"
        );
    }

    #[test]
    fn insert_get_remove_long_and_short_names() {
        let mut d = Dir::new(1);
        let names: Vec<Vec<u8>> = (0..200)
            .map(|i| format!("{}{i}", "n".repeat(i % 40)).into_bytes())
            .collect();
        for (i, n) in names.iter().enumerate() {
            assert!(d.insert(n, i as u64 + 100, 8));
            assert!(!d.insert(n, 1, 8), "duplicate refused");
        }
        assert_eq!(d.len(), 200);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(d.get(n), Some((i as u64 + 100, 8)));
        }
        assert_eq!(d.get(b"absent"), None);
        let listed: Vec<u64> = d.entries_after(0).map(|(c, ..)| c).collect();
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "cookie order");
        // Resuming after any cookie yields exactly the later entries.
        let mid = listed[100];
        assert_eq!(d.entries_after(mid).count(), 99);
        for n in &names {
            assert!(d.remove(n).is_some());
        }
        assert!(d.is_empty());
    }
}
