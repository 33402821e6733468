//! A file's extent map: file block → device data block, as sorted runs.
//!
//! Pure data structure; it does not allocate or free device blocks itself — callers get
//! back the device runs that left the map and hand them to the allocator.

use std::collections::BTreeMap;

use crate::format::record::MapExtent;

/// One piece of a file range: mapped (`dblock` is `Some`) or a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First file block.
    pub fblock: u64,
    /// Number of blocks.
    pub len: u64,
    /// First device block, or `None` for a hole.
    pub dblock: Option<u64>,
}

impl Segment {
    /// The run this piece is, or `None` for a hole.
    pub fn mapped(&self) -> Option<MapExtent> {
        self.dblock.map(|dblock| MapExtent {
            fblock: self.fblock,
            dblock,
            len: self.len,
        })
    }
}

/// A run of device blocks (start, len).
pub type Run = (u64, u64);

/// Sorted, non-overlapping, coalesced runs of a file's mapped blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtentMap {
    // fblock -> (dblock, len)
    runs: BTreeMap<u64, (u64, u64)>,
}

impl ExtentMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of runs.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// All runs, sorted by file block.
    pub fn iter(&self) -> impl Iterator<Item = MapExtent> + '_ {
        self.runs.iter().map(|(&fblock, &(dblock, len))| MapExtent {
            fblock,
            dblock,
            len,
        })
    }

    /// Total mapped blocks.
    pub fn mapped_blocks(&self) -> u64 {
        self.runs.values().map(|&(_, l)| l).sum()
    }

    /// The run containing `fblock`, if any.
    fn containing(&self, fblock: u64) -> Option<(u64, u64, u64)> {
        let (&f, &(d, l)) = self.runs.range(..=fblock).next_back()?;
        (fblock < f + l).then_some((f, d, l))
    }

    /// Splits `[start, end)` into mapped pieces and holes, in order.
    pub fn segments(&self, start: u64, end: u64) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut pos = start;
        if let Some((f, d, l)) = self.containing(start) {
            let n = (f + l).min(end) - start;
            out.push(Segment {
                fblock: start,
                len: n,
                dblock: Some(d + (start - f)),
            });
            pos = start + n;
        }
        for (&f, &(d, l)) in self.runs.range(pos..end) {
            if f > pos {
                out.push(Segment {
                    fblock: pos,
                    len: f - pos,
                    dblock: None,
                });
            }
            let n = (f + l).min(end) - f;
            out.push(Segment {
                fblock: f,
                len: n,
                dblock: Some(d),
            });
            pos = f + n;
        }
        if pos < end {
            out.push(Segment {
                fblock: pos,
                len: end - pos,
                dblock: None,
            });
        }
        out
    }

    /// True if every block in `[start, end)` is a hole.
    pub fn is_hole(&self, start: u64, end: u64) -> bool {
        self.containing(start).is_none() && self.runs.range(start..end).next().is_none()
    }

    /// True if every block in `[start, end)` is mapped.
    pub fn is_mapped(&self, start: u64, end: u64) -> bool {
        self.segments(start, end).iter().all(|s| s.dblock.is_some())
    }

    /// Maps `[fblock, fblock+len)` to device blocks starting at `dblock`. The range must be
    /// a hole (returns false and changes nothing otherwise). Coalesces with neighbours.
    pub fn insert(&mut self, fblock: u64, dblock: u64, len: u64) -> bool {
        let Some(fend) = fblock.checked_add(len) else {
            return false;
        };
        if len == 0 || dblock.checked_add(len).is_none() || !self.is_hole(fblock, fend) {
            return false;
        }
        let (mut f, mut d, mut l) = (fblock, dblock, len);
        if let Some((&pf, &(pd, pl))) = self.runs.range(..fblock).next_back() {
            if pf + pl == fblock && pd + pl == dblock {
                self.runs.remove(&pf);
                f = pf;
                d = pd;
                l += pl;
            }
        }
        if let Some(&(nd, nl)) = self.runs.get(&fend) {
            if d + l == nd {
                self.runs.remove(&fend);
                l += nl;
            }
        }
        self.runs.insert(f, (d, l));
        true
    }

    /// Unmaps `[start, end)`, returning the device runs that left the map.
    pub fn remove(&mut self, start: u64, end: u64) -> Vec<Run> {
        let mut freed = Vec::new();
        if start >= end {
            return freed;
        }
        // Split a run straddling `start`.
        if let Some((f, d, l)) = self.containing(start) {
            if f < start {
                self.runs.insert(f, (d, start - f));
                self.runs.insert(start, (d + (start - f), l - (start - f)));
            }
        }
        // Split a run straddling `end`.
        if let Some((f, d, l)) = self.containing(end) {
            if f < end {
                self.runs.insert(f, (d, end - f));
                self.runs.insert(end, (d + (end - f), l - (end - f)));
            }
        }
        let keys: Vec<u64> = self.runs.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            if let Some((d, l)) = self.runs.remove(&k) {
                freed.push((d, l));
            }
        }
        freed
    }

    /// The device block right after the last mapped block before `fblock` (an allocation
    /// goal that keeps a file contiguous).
    pub fn goal_for(&self, fblock: u64) -> Option<u64> {
        let (&f, &(d, l)) = self.runs.range(..fblock).next_back()?;
        Some(d + (fblock.min(f + l) - f))
    }

    /// First mapped block at or after `fblock`.
    pub fn next_data(&self, fblock: u64) -> Option<u64> {
        if self.containing(fblock).is_some() {
            return Some(fblock);
        }
        self.runs.range(fblock..).next().map(|(&f, _)| f)
    }

    /// First hole block at or after `fblock`.
    pub fn next_hole(&self, fblock: u64) -> u64 {
        let mut pos = fblock;
        while let Some((f, _, l)) = self.containing(pos) {
            pos = f + l;
        }
        pos
    }

    /// The first block past the last mapped block (0 when empty).
    pub fn end_block(&self) -> u64 {
        self.runs
            .iter()
            .next_back()
            .map(|(&f, &(_, l))| f + l)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_coalesces_and_remove_splits() {
        let mut m = ExtentMap::new();
        assert!(m.insert(0, 100, 2));
        assert!(m.insert(2, 102, 2));
        assert_eq!(m.run_count(), 1);
        assert!(!m.insert(1, 500, 1));
        assert!(m.insert(10, 200, 5));
        assert_eq!(m.segments(0, 16).len(), 4);
        let freed = m.remove(1, 12);
        assert_eq!(freed, vec![(101, 3), (200, 2)]);
        assert_eq!(
            m.iter()
                .map(|e| (e.fblock, e.dblock, e.len))
                .collect::<Vec<_>>(),
            vec![(0, 100, 1), (12, 202, 3)]
        );
        assert_eq!(m.next_data(1), Some(12));
        assert_eq!(m.next_hole(12), 15);
        assert_eq!(m.goal_for(20), Some(205));
    }
}
