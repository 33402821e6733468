//! The free-space map: free extents indexed by start (for neighbours and lookups) and by size
//! (for best fit and largest first), so every operation is O(log n) in the number of free extents.
//!
//! It must not do I/O or panic, and must leave itself unchanged whenever it returns an error:
//! callers replay journals through it and rely on a refused operation having no effect.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::{AllocError, Extent, Hint};

/// How many size-index candidates an aligned search examines that may be too small to hold an
/// aligned run, before settling for the smallest extent that is certainly big enough. Bounds the
/// cost on a fragmented device at the price of an occasionally less than best fit.
const ALIGNED_SCAN_LIMIT: usize = 64;

/// Extent allocator over blocks `[0, total_blocks)`.
///
/// Invariants (checked by the tests after every operation): `by_start` and `by_size` hold the
/// same extents, no two free extents overlap or touch (they are always coalesced), every free
/// extent lies inside the device, and `free` is the sum of their lengths.
#[derive(Clone, Debug)]
pub struct Allocator {
    total: u64,
    free: u64,
    /// start -> len of every free extent.
    by_start: BTreeMap<u64, u64>,
    /// (len, start) of every free extent: ordered so the first entry at or above `(n, 0)` is the
    /// best fit for `n` blocks, lowest start on ties.
    by_size: BTreeSet<(u64, u64)>,
}

impl Allocator {
    /// An allocator over `total_blocks` blocks, all of them free.
    pub fn new(total_blocks: u64) -> Self {
        let mut a = Self {
            total: total_blocks,
            free: 0,
            by_start: BTreeMap::new(),
            by_size: BTreeSet::new(),
        };
        if total_blocks > 0 {
            a.insert_free(0, total_blocks);
        }
        a
    }

    /// Size of the device in blocks.
    pub fn total_blocks(&self) -> u64 {
        self.total
    }

    /// Number of free blocks (kept as a counter: O(1)).
    pub fn free_blocks(&self) -> u64 {
        self.free
    }

    /// Marks every block of `e` as used, as when replaying the filesystem's extent maps at mount.
    ///
    /// Errors: [`AllocError::Empty`], [`AllocError::OutOfRange`], or [`AllocError::AlreadyUsed`]
    /// if any block of `e` is not free. Nothing changes on error.
    pub fn mark_used(&mut self, e: Extent) -> Result<(), AllocError> {
        let end = self.check(e)?;
        match self.containing(e.start) {
            // Free extents are coalesced, so `e` is all free only if one free extent covers it.
            Some((s, l)) if end <= s + l => {
                self.carve(s, l, e.start, e.len);
                Ok(())
            }
            _ => Err(AllocError::AlreadyUsed {
                start: e.start,
                end,
            }),
        }
    }

    /// Returns every block of `e` to the free pool, merging it with free neighbours.
    ///
    /// Errors: [`AllocError::Empty`], [`AllocError::OutOfRange`], or [`AllocError::AlreadyFree`]
    /// if any block of `e` is already free (a double free). Nothing changes on error.
    pub fn free(&mut self, e: Extent) -> Result<(), AllocError> {
        let end = self.check(e)?;
        // Free extents are disjoint and sorted, so the last one starting before `end` reaches
        // furthest; if it does not reach into `e`, none does.
        let overlaps = self
            .by_start
            .range(..end)
            .next_back()
            .is_some_and(|(&s, &l)| s + l > e.start);
        if overlaps {
            return Err(AllocError::AlreadyFree {
                start: e.start,
                end,
            });
        }
        let (mut start, mut len) = (e.start, e.len);
        if let Some((&ps, &pl)) = self.by_start.range(..start).next_back() {
            if ps + pl == start {
                self.remove_free(ps, pl);
                start = ps;
                len += pl;
            }
        }
        if let Some(&nl) = self.by_start.get(&end) {
            self.remove_free(end, nl);
            len += nl;
        }
        self.insert_free(start, len);
        Ok(())
    }

    /// Whether every block of `e` is free. False for an empty or out-of-range extent.
    pub fn is_free(&self, e: Extent) -> bool {
        match self.check(e) {
            Ok(end) => self.containing(e.start).is_some_and(|(s, l)| end <= s + l),
            Err(_) => false,
        }
    }

    /// All-or-nothing: returns extents whose lengths sum to `count`, sorted by start, or NoSpace
    /// (and changes nothing). Policy, in order ("contiguous first"):
    /// 1. if hint.goal is Some(g) and block g is free: take the free run starting at g (as much
    ///    of it as needed); if it covers `count`, done; else keep it and continue for the rest;
    /// 2. a single free extent that holds the (remaining) count: if hint.align > 1 and count >=
    ///    hint.align, prefer the best-fitting free extent that can hold it starting at an aligned
    ///    block; otherwise best fit (smallest free extent with len >= count, lowest start on ties);
    /// 3. otherwise the largest free extents first until count is met (fewest pieces).
    ///
    /// Pieces are taken from the start of the free extent they come from (or from the aligned
    /// block). In rule 3 each whole largest extent is taken while none holds the rest, then rule 2
    /// places the rest, so the last piece is a best fit rather than a cut of the next largest.
    /// Pieces that touch (the goal run and the free blocks just before it) are returned merged.
    /// `count == 0` returns an empty vector.
    pub fn allocate(&mut self, count: u64, hint: Hint) -> Result<Vec<Extent>, AllocError> {
        // The free counter decides feasibility up front: if `count` blocks are free, rule 3 is
        // certain to find them, so no partial allocation ever needs undoing.
        if count > self.free {
            return Err(AllocError::NoSpace {
                wanted: count,
                free: self.free,
            });
        }
        let mut out = Vec::new();
        let mut remaining = count;
        if remaining == 0 {
            return Ok(out);
        }

        // Rule 1. A goal past the device is never inside a free extent, so it is ignored.
        if let Some(g) = hint.goal {
            if let Some((s, l)) = self.containing(g) {
                let n = (s + l - g).min(remaining);
                self.carve(s, l, g, n);
                out.push(Extent { start: g, len: n });
                remaining -= n;
            }
        }

        while remaining > 0 {
            // Rule 2.
            let aligned = if hint.align > 1 && remaining >= hint.align {
                self.take_aligned(remaining, hint.align)
            } else {
                None
            };
            if let Some(e) = aligned.or_else(|| self.take_best_fit(remaining)) {
                out.push(e);
                break;
            }
            // Rule 3: nothing holds the rest, so the largest extent is smaller than it: take it whole.
            let Some(&(l, s)) = self.by_size.last() else {
                // Unreachable while `free` matches the map; undo rather than hand out too little.
                for e in out {
                    let _ = self.free(e);
                }
                return Err(AllocError::NoSpace {
                    wanted: count,
                    free: self.free,
                });
            };
            self.remove_free(s, l);
            out.push(Extent { start: s, len: l });
            remaining -= l;
        }

        out.sort_unstable();
        let mut merged: Vec<Extent> = Vec::with_capacity(out.len());
        for e in out {
            match merged.last_mut() {
                Some(last) if last.start + last.len == e.start => last.len += e.len,
                _ => merged.push(e),
            }
        }
        Ok(merged)
    }

    /// Places the blocks of a file's run `[fblock, fblock + count)`: the file placement
    /// policy. A run that starts a fresh `huge`-block piece of the file (`fblock` a multiple
    /// of `huge`, at least a quarter of `huge` long) and cannot continue contiguously after
    /// `goal` (the block after the file's previous piece) gets one `huge`-aligned extent when
    /// one is free, so that large files map in 2 MiB pages; otherwise `allocate(count,
    /// goal)`. All or nothing, as `allocate`. `huge <= 1` turns the aligned rule off.
    pub fn place(
        &mut self,
        fblock: u64,
        count: u64,
        goal: Option<u64>,
        huge: u64,
    ) -> Result<Vec<Extent>, AllocError> {
        let goal_free = goal
            .is_some_and(|g| g < self.total_blocks() && self.is_free(Extent { start: g, len: 1 }));
        if huge > 1 && !goal_free && fblock.is_multiple_of(huge) && count >= huge / 4 {
            if let Some(e) = self.allocate_aligned(count, huge) {
                return Ok(vec![e]);
            }
        }
        self.allocate(count, Hint { goal, align: 0 })
    }

    /// Exactly one extent of `count` blocks starting at a multiple of `align` (>=1), or None
    /// (no change). Used to relocate a range into 2 MiB-aligned runs.
    ///
    /// `align == 0` is treated as 1; `count == 0` gives None. Among free extents that can hold
    /// the aligned run, the smallest is preferred (see `ALIGNED_SCAN_LIMIT` for the bound on that
    /// search); None is returned only if no free extent can hold it.
    pub fn allocate_aligned(&mut self, count: u64, align: u64) -> Option<Extent> {
        if count == 0 || count > self.free {
            return None;
        }
        self.take_aligned(count, align.max(1))
    }

    /// The free extents, sorted by start and coalesced (no two touch).
    pub fn free_extents(&self) -> impl Iterator<Item = Extent> + '_ {
        self.by_start
            .iter()
            .map(|(&start, &len)| Extent { start, len })
    }

    /// Length of the largest free extent (0 if nothing is free).
    pub fn largest_free(&self) -> u64 {
        self.by_size.last().map_or(0, |&(l, _)| l)
    }

    /// Validates `e` against the device and returns its end.
    fn check(&self, e: Extent) -> Result<u64, AllocError> {
        if e.len == 0 {
            return Err(AllocError::Empty { start: e.start });
        }
        match e.start.checked_add(e.len) {
            Some(end) if end <= self.total => Ok(end),
            _ => Err(AllocError::OutOfRange {
                start: e.start,
                end: e.end(),
                total: self.total,
            }),
        }
    }

    /// The free extent `(start, len)` containing block `b`, if `b` is free.
    fn containing(&self, b: u64) -> Option<(u64, u64)> {
        let (&s, &l) = self.by_start.range(..=b).next_back()?;
        (b - s < l).then_some((s, l))
    }

    /// Takes `n` blocks from the start of the smallest free extent that holds them.
    fn take_best_fit(&mut self, n: u64) -> Option<Extent> {
        let &(l, s) = self.by_size.range((n, 0)..).next()?;
        self.carve(s, l, s, n);
        Some(Extent { start: s, len: n })
    }

    /// Takes `n` blocks starting at a multiple of `align` (>= 1) from the smallest free extent
    /// found that can hold them.
    fn take_aligned(&mut self, n: u64, align: u64) -> Option<Extent> {
        let (s, l, a) = self.find_aligned(n, align)?;
        self.carve(s, l, a, n);
        Some(Extent { start: a, len: n })
    }

    /// Finds `(start, len, aligned_start)` of a free extent holding `n` blocks at a multiple of
    /// `align` (>= 1). Finds one whenever one exists.
    fn find_aligned(&self, n: u64, align: u64) -> Option<(u64, u64, u64)> {
        let fit = |&(l, s): &(u64, u64)| {
            let a = s.checked_next_multiple_of(align)?;
            (a.checked_add(n)? <= s + l).then_some((s, l, a))
        };
        // An extent of at least `sure` blocks holds an aligned run wherever it starts; smaller
        // ones (the window) depend on where they start, so each must be tried.
        let sure = n.checked_add(align - 1);
        let window_end = sure.map_or(Bound::Unbounded, |x| Bound::Excluded((x, 0)));
        let mut window = self.by_size.range((Bound::Included((n, 0)), window_end));
        if let Some(found) = window.by_ref().take(ALIGNED_SCAN_LIMIT).find_map(fit) {
            return Some(found);
        }
        if let Some(x) = sure {
            if let Some(found) = self.by_size.range((x, 0)..).next().and_then(fit) {
                return Some(found);
            }
        }
        // Nothing certain exists: the rest of the window is the only chance.
        window.find_map(fit)
    }

    /// Removes free extent `(s, l)` and puts back what is left of it around `[a, a + n)`,
    /// which it must contain.
    fn carve(&mut self, s: u64, l: u64, a: u64, n: u64) {
        self.remove_free(s, l);
        if a > s {
            self.insert_free(s, a - s);
        }
        let (end, cut_end) = (s + l, a + n);
        if end > cut_end {
            self.insert_free(cut_end, end - cut_end);
        }
    }

    fn insert_free(&mut self, start: u64, len: u64) {
        self.by_start.insert(start, len);
        self.by_size.insert((len, start));
        self.free += len;
    }

    fn remove_free(&mut self, start: u64, len: u64) {
        self.by_start.remove(&start);
        self.by_size.remove(&(len, start));
        self.free -= len;
    }

    /// Asserts the structural invariants; for tests only.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        assert_eq!(
            self.by_start.len(),
            self.by_size.len(),
            "indexes differ in size"
        );
        let mut sum = 0u64;
        let mut prev_end: Option<u64> = None;
        for (&s, &l) in &self.by_start {
            assert!(l > 0, "empty free extent at {s}");
            assert!(self.by_size.contains(&(l, s)), "size index lacks {s}+{l}");
            let end = s.checked_add(l).expect("free extent overflows");
            assert!(end <= self.total, "free extent {s}..{end} past device");
            if let Some(pe) = prev_end {
                assert!(pe < s, "free extents touch or overlap at {s}");
            }
            prev_end = Some(end);
            sum += l;
        }
        assert_eq!(sum, self.free, "free counter wrong");
    }
}
