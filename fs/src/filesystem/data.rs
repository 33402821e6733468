//! File data: read, write, truncate, fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range and
//! the chattr flags.
//!
//! Data is copied between caller buffers and the device mapping. Invariants:
//! * bytes of allocated blocks beyond EOF are zero (so growing a file shows zeroes);
//! * newly allocated blocks are written and flushed before the record that maps them
//!   (no stale bytes after a crash); on device DAX every write is flushed before it returns.

use sealfs_alloc::Extent;
use sealfs_seal::ChangeKind;

use super::{Attempt, Ctx, Error, Filesystem, Result, Retry, Stop, MAX_FILE_SIZE};
use crate::device::persist::{self, Batch};
use crate::format::record::{MapExtent, Op};
use crate::meta::extents::ExtentMap;
use crate::meta::inode::flags;
use crate::meta::Inode;

/// `fallocate` mode bits.
pub mod falloc {
    /// Do not change the size.
    pub const KEEP_SIZE: i32 = 0x01;
    /// Deallocate the range.
    pub const PUNCH_HOLE: i32 = 0x02;
    /// Zero the range.
    pub const ZERO_RANGE: i32 = 0x10;
}

/// Whether an allocation may grow the file (`FALLOC_FL_KEEP_SIZE` says it may not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Size {
    /// The size grows to the end of the range.
    Grow,
    /// The size stays; blocks past the end are allocated all the same.
    Keep,
}

/// What an allocation does to the bytes the range already maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    /// Plain `fallocate`: only holes get (zeroed) blocks; mapped bytes stay as they are.
    Holes,
    /// `FALLOC_FL_ZERO_RANGE`: mapped bytes are zeroed in place too.
    ZeroRange,
}

/// Largest file range one allocation record covers (keeps records small).
const CHUNK: u64 = 64 << 20;
/// 2 MiB in bytes.
const HUGE: u64 = 2 << 20;

fn file_map(g: &Inode) -> Result<&ExtentMap> {
    if g.attr.is_dir() {
        return Err(Error::IsDir);
    }
    g.extents().ok_or(Error::Invalid("not a regular file"))
}

/// What a population may do: fill past the end of the file, and whose seals it may pass
/// (a replacing SEAL's own, which it is about to release).
#[derive(Clone, Copy)]
struct Scope {
    beyond_eof: bool,
    spare: Option<u64>,
}

impl Filesystem {
    /// Copies file bytes `[off, off+buf.len())` (holes read as zero).
    fn copy_out(&self, m: &ExtentMap, off: u64, buf: &mut [u8]) -> Result<()> {
        let bs = self.bs;
        let end = off + buf.len() as u64;
        for seg in m.segments(off / bs, end.div_ceil(bs)) {
            let s = (seg.fblock * bs).max(off);
            let e = ((seg.fblock + seg.len) * bs).min(end);
            let dst = &mut buf[(s - off) as usize..(e - off) as usize];
            match seg.dblock {
                Some(d) => self
                    .dev
                    .read(self.layout.block_offset(d) + (s - seg.fblock * bs), dst)?,
                None => dst.fill(0),
            }
        }
        Ok(())
    }

    /// Reads up to `size` bytes at `off`; updates atime as the mount's rule says.
    pub fn read(&self, ino: u64, off: u64, size: u32) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let n = self.read_into(ino, off, size, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// [`read`](Self::read) into `buf`, whose first bytes (the count returned) it fills;
    /// `buf` only grows. A transport that keeps one buffer per thread neither allocates
    /// nor zeroes a megabyte per READ (every byte is written: holes as zeros).
    pub fn read_into(&self, ino: u64, off: u64, size: u32, buf: &mut Vec<u8>) -> Result<usize> {
        let n = self.namespace.node(ino)?;
        let len = {
            let g = n.read();
            let m = file_map(&g)?;
            if off >= g.attr.size {
                return Ok(0);
            }
            let len = ((off + size as u64).min(g.attr.size) - off) as usize;
            if buf.len() < len {
                buf.resize(len, 0);
            }
            self.copy_out(m, off, &mut buf[..len])?;
            if !self.atime_due(&g.attr, false) {
                return Ok(len);
            }
            len
        };
        self.touch_atime(&n, false);
        Ok(len)
    }

    /// Allocates device blocks for the holes among `segs`, in file order. All or nothing.
    fn allocate_holes(&self, m: &ExtentMap, fstart: u64, fend: u64) -> Result<Vec<MapExtent>> {
        let mut out: Vec<MapExtent> = Vec::new();
        let mut alloc = self.space.alloc.lock();
        let huge_blocks = (HUGE / self.bs).max(1);
        let holes = m
            .segments(fstart, fend)
            .into_iter()
            .filter(|s| s.dblock.is_none());
        for seg in holes {
            let goal = out
                .last()
                .map(|e| e.dblock + e.len)
                .or_else(|| m.goal_for(seg.fblock));
            let Ok(got) = alloc.place(seg.fblock, seg.len, goal, huge_blocks) else {
                for x in &out {
                    self.give_back(
                        &mut alloc,
                        Extent {
                            start: x.dblock,
                            len: x.len,
                        },
                    );
                }
                return Err(Error::NoSpace);
            };
            let mut fb = seg.fblock;
            for e in got {
                out.push(MapExtent {
                    fblock: fb,
                    dblock: e.start,
                    len: e.len,
                });
                fb += e.len;
            }
        }
        Ok(out)
    }

    fn unreserve(&self, exts: &[MapExtent]) {
        let mut alloc = self.space.alloc.lock();
        for x in exts {
            self.give_back(
                &mut alloc,
                Extent {
                    start: x.dblock,
                    len: x.len,
                },
            );
        }
    }

    /// Returns reserved blocks a change did not use to the allocator. Its refusal means the
    /// free map disagrees with what this code reserved: the filesystem stops accepting
    /// changes rather than go on with a wrong free map (never dropped silently).
    pub(super) fn give_back(&self, alloc: &mut sealfs_alloc::Allocator, e: Extent) {
        if let Err(err) = alloc.free(e) {
            let _ = self.journal.fail(crate::meta::table::ApplyError(format!(
                "giving back reserved blocks {}+{}: {err}",
                e.start, e.len
            )));
        }
    }

    /// Device byte offset of file byte `pos` in a mapped run.
    fn dev_off(&self, fblock: u64, dblock: u64, pos: u64) -> u64 {
        self.layout.block_offset(dblock) + (pos - fblock * self.bs)
    }

    /// Copies `data` to file bytes `[off, off + data.len())`, which `map` and the blocks just
    /// reserved for its holes (`new`) cover: the bytes of new blocks the data does not cover
    /// are zeroed, new blocks are flushed (they must be durable before the record that maps
    /// them), and on a device whose writes are durable every written byte is flushed too; a
    /// fence ends it when anything was flushed. On failure the caller gives `new` back.
    fn copy_in(&self, map: &ExtentMap, new: &[MapExtent], off: u64, data: &[u8]) -> Result<()> {
        let bs = self.bs;
        let end = off + data.len() as u64;
        let (fstart, fend) = (off / bs, end.div_ceil(bs));
        let durable = self.dev.durable_writes();
        let batch = Batch::new(&*self.dev);
        // New blocks: zero what the data does not cover.
        for x in new {
            let (bstart, bend) = (x.fblock * bs, (x.fblock + x.len) * bs);
            if bstart < off {
                self.dev.zero(
                    self.dev_off(x.fblock, x.dblock, bstart),
                    off.min(bend) - bstart,
                )?;
            }
            if bend > end {
                let zs = end.max(bstart);
                self.dev
                    .zero(self.dev_off(x.fblock, x.dblock, zs), bend - zs)?;
            }
        }
        let mut runs: Vec<MapExtent> = map
            .segments(fstart, fend)
            .iter()
            .filter_map(|s| s.mapped())
            .collect();
        runs.extend_from_slice(new);
        for run in runs {
            let s = (run.fblock * bs).max(off);
            let e = ((run.fblock + run.len) * bs).min(end);
            if s >= e {
                continue;
            }
            let doff = self.dev_off(run.fblock, run.dblock, s);
            self.dev
                .write(doff, &data[(s - off) as usize..(e - off) as usize])?;
            if durable {
                batch.flush(doff, e - s)?;
            }
        }
        for x in new {
            batch.flush(self.layout.block_offset(x.dblock), x.len * bs)?;
        }
        if durable || !new.is_empty() {
            batch.fence();
        }
        Ok(())
    }

    /// Writes `data` at `off`; returns bytes written (short only when the device fills).
    pub fn write(&self, ino: u64, off: u64, data: &[u8]) -> Attempt<u32> {
        self.check_writable()?;
        if data.is_empty() {
            return Ok(0);
        }
        self.transact_may_wait(|| self.write_once(ino, off, data))
    }

    /// One try of `write`; runs inside [`Filesystem::transact`] (under the gate).
    fn write_once(&self, ino: u64, off: u64, data: &[u8]) -> Result<u32, Retry<Stop>> {
        let node = self.namespace.node(ino)?;
        let mut inode = node.write();
        file_map(&inode)?;
        if inode.attr.flags & flags::IMMUTABLE != 0 {
            return Err(Error::Perm("immutable file").into());
        }
        if inode.attr.flags & flags::APPEND != 0 && off < inode.attr.size {
            return Err(Error::Perm("append-only file").into());
        }
        if off >= MAX_FILE_SIZE {
            return Err(Error::FileTooBig.into());
        }
        let bs = self.bs;
        let mut len = (data.len() as u64).min(MAX_FILE_SIZE - off);
        let fstart = off / bs;
        let map = inode
            .extents()
            .ok_or(Error::Invalid("not a regular file"))?;
        // Shorten the write to what the free space can hold (a short write, as Linux does).
        let free = self.space.alloc.lock().free_blocks();
        let mut holes = 0;
        for seg in map.segments(fstart, (off + len).div_ceil(bs)) {
            if seg.dblock.is_none() {
                if holes + seg.len > free {
                    let fits = free - holes;
                    let end = (seg.fblock + fits) * bs;
                    if end <= off {
                        return Err(Error::NoSpace.into());
                    }
                    len = len.min(end - off);
                    holes += fits;
                    break;
                }
                holes += seg.len;
            }
        }
        let end = off + len;
        let fend = end.div_ceil(bs);
        if holes > 0 {
            self.seal_gate(&inode, ChangeKind::AllocateHole, off, end)?;
        }
        if end > inode.attr.size {
            self.seal_gate(&inode, ChangeKind::Extend, inode.attr.size, end)?;
        }
        let new = if holes > 0 {
            self.allocate_holes(map, fstart, fend)?
        } else {
            Vec::new()
        };
        let data = &data[..len as usize];
        if let Err(e) = self.copy_in(map, &new, off, data) {
            self.unreserve(&new);
            return Err(e.into());
        }
        let now = self.now();
        if !new.is_empty() || end > inode.attr.size {
            let op = Op::Map {
                ino,
                size: if end > inode.attr.size { end } else { 0 },
                time: now,
                touch: true,
                extents: new.clone(),
            };
            if let Err(e) = self.commit_inode(&inode, &op) {
                self.unreserve(&new);
                return Err(e.into());
            }
            self.apply_inode(&mut inode, &op)?;
        } else {
            inode.attr.mtime = now;
            inode.attr.ctime = now;
            inode.dirty_times = true;
        }
        Ok(len as u32)
    }

    /// Changes the size.
    pub fn truncate(&self, ino: u64, size: u64, _ctx: Ctx) -> Attempt<()> {
        self.check_writable()?;
        if size > MAX_FILE_SIZE {
            return Err(Error::FileTooBig.into());
        }
        self.transact_may_wait(|| {
            let n = self.namespace.node(ino)?;
            let mut g = n.write();
            let m = file_map(&g)?;
            if g.attr.flags & (flags::IMMUTABLE | flags::APPEND) != 0 {
                return Err(Error::Perm("immutable or append-only file").into());
            }
            let bs = self.bs;
            if size != g.attr.size {
                let kind = if size > g.attr.size {
                    ChangeKind::Extend
                } else {
                    ChangeKind::SizeChange
                };
                self.seal_gate(&g, kind, size.min(g.attr.size), size.max(g.attr.size))?;
            }
            if size < g.attr.size && !size.is_multiple_of(bs) {
                // Bytes past EOF in an allocated block must read as zero if the file grows.
                let fb = size / bs;
                if let Some(seg) = m.segments(fb, fb + 1).first() {
                    if let Some(d) = seg.dblock {
                        let doff = self.dev_off(fb, d, size);
                        let n = (fb + 1) * bs - size;
                        self.dev.zero(doff, n)?;
                        persist::persist(&*self.dev, doff, n)?;
                    }
                }
            }
            let op = Op::Truncate {
                ino,
                size,
                time: self.now(),
            };
            Ok(self.log_inode(&mut g, &op)?)
        })
    }

    /// `fallocate(2)`.
    pub fn fallocate(&self, ino: u64, off: u64, len: u64, mode: i32) -> Attempt<()> {
        self.check_writable()?;
        let supported = falloc::KEEP_SIZE | falloc::PUNCH_HOLE | falloc::ZERO_RANGE;
        if mode & !supported != 0 {
            return Err(Error::NotSupported.into());
        }
        if mode & falloc::PUNCH_HOLE != 0
            && (mode & falloc::KEEP_SIZE == 0 || mode & falloc::ZERO_RANGE != 0)
        {
            return Err(Error::NotSupported.into());
        }
        if len == 0 {
            return Err(Error::Invalid("fallocate length 0").into());
        }
        let end = off.checked_add(len).ok_or(Error::FileTooBig)?;
        if end > MAX_FILE_SIZE {
            return Err(Error::FileTooBig.into());
        }
        {
            let n = self.namespace.node(ino)?;
            let g = n.read();
            file_map(&g)?;
            if g.attr.flags & flags::IMMUTABLE != 0 {
                return Err(Error::Perm("immutable file").into());
            }
            if mode & !falloc::KEEP_SIZE != 0 && g.attr.flags & flags::APPEND != 0 {
                return Err(Error::Perm("append-only file").into());
            }
        }
        if mode & falloc::PUNCH_HOLE != 0 {
            return self.punch(ino, off, end);
        }
        let size = if mode & falloc::KEEP_SIZE != 0 {
            Size::Keep
        } else {
            Size::Grow
        };
        let fill = if mode & falloc::ZERO_RANGE != 0 {
            Fill::ZeroRange
        } else {
            Fill::Holes
        };
        let mut pos = off;
        while pos < end {
            let cend = ((pos / CHUNK + 1) * CHUNK).min(end);
            self.transact_may_wait(|| self.allocate_range(ino, pos, cend, size, fill))?;
            pos = cend;
        }
        Ok(())
    }

    /// Allocates (and zeroes) the holes of `[off, end)`; with [`Fill::ZeroRange`], zeroes the
    /// mapped bytes too. Grows the size to `end` unless [`Size::Keep`]. Runs inside
    /// [`Filesystem::transact`] (under the gate).
    fn allocate_range(
        &self,
        ino: u64,
        off: u64,
        end: u64,
        size: Size,
        fill: Fill,
    ) -> Result<(), Retry<Stop>> {
        let node = self.namespace.node(ino)?;
        let mut inode = node.write();
        let bs = self.bs;
        let map = file_map(&inode)?;
        let (fstart, fend) = (off / bs, end.div_ceil(bs));
        let holes: u64 = map
            .segments(fstart, fend)
            .iter()
            .filter(|s| s.dblock.is_none())
            .map(|s| s.len)
            .sum();
        if holes > self.space.alloc.lock().free_blocks() {
            return Err(Error::NoSpace.into());
        }
        if holes > 0 {
            self.seal_gate(&inode, ChangeKind::AllocateHole, off, end)?;
        }
        let grow = size == Size::Grow && end > inode.attr.size;
        let zero = fill == Fill::ZeroRange;
        if grow {
            self.seal_gate(&inode, ChangeKind::Extend, inode.attr.size, end)?;
        }
        let new = if holes > 0 {
            self.allocate_holes(map, fstart, fend)?
        } else {
            Vec::new()
        };
        if let Err(e) = self.zero_new(&new, map, zero.then_some(off..end)) {
            self.unreserve(&new);
            return Err(e.into());
        }
        if new.is_empty() && !grow {
            if zero {
                let now = self.now();
                inode.attr.mtime = now;
                inode.attr.ctime = now;
                inode.dirty_times = true;
            }
            return Ok(());
        }
        let op = Op::Map {
            ino,
            size: if grow { end } else { 0 },
            time: self.now(),
            touch: grow || zero,
            extents: new.clone(),
        };
        if let Err(e) = self.commit_inode(&inode, &op) {
            self.unreserve(&new);
            return Err(e.into());
        }
        Ok(self.apply_inode(&mut inode, &op)?)
    }

    /// Zeroes the blocks just reserved for holes (`new`) and, for `ZERO_RANGE`, the bytes
    /// `map` already maps in `mapped`; one fence makes all of it durable before the record that
    /// maps the new blocks. On failure the caller gives `new` back.
    fn zero_new(
        &self,
        new: &[MapExtent],
        map: &ExtentMap,
        mapped: Option<std::ops::Range<u64>>,
    ) -> Result<()> {
        let bs = self.bs;
        let batch = Batch::new(&*self.dev);
        for x in new {
            batch.zero(self.layout.block_offset(x.dblock), x.len * bs)?;
        }
        if let Some(range) = mapped {
            for seg in map.segments(range.start / bs, range.end.div_ceil(bs)) {
                let Some(d) = seg.dblock else { continue };
                let s = (seg.fblock * bs).max(range.start);
                let e = ((seg.fblock + seg.len) * bs).min(range.end);
                batch.zero(self.dev_off(seg.fblock, d, s), e - s)?;
            }
        }
        batch.fence();
        Ok(())
    }

    /// `SEALFS_SEAL_POPULATE`: allocates and zeroes every hole of `[off, end)` below the
    /// file size, then runs `take` (taking the seal) with the inode still locked. All or
    /// nothing: the holes are counted, checked against the free space and the seals, and
    /// reserved in one step; when `take` or the log refuses, the reservation is returned
    /// (and `undo` gets back what `take` gave), so a failed call leaves no block allocated.
    /// The new blocks are mapped by consecutive `Map` records appended together.
    pub(crate) fn populate_then<T>(
        &self,
        ino: u64,
        off: u64,
        end: u64,
        take: impl FnMut() -> Result<T>,
        undo: impl FnMut(T),
    ) -> Attempt<T> {
        self.populate_then_to(ino, off, end, false, take, undo)
    }

    /// [`Filesystem::populate_then`] for a SEAL that replaces the seals of description
    /// `spare` (when set): those seals are not in the way of the holes it fills.
    pub(crate) fn populate_sparing<T>(
        &self,
        ino: u64,
        off: u64,
        end: u64,
        spare: Option<u64>,
        mut take: impl FnMut() -> Result<T>,
        mut undo: impl FnMut(T),
    ) -> Attempt<T> {
        let scope = Scope {
            beyond_eof: false,
            spare,
        };
        self.populate_scoped(ino, off, end, scope, &mut take, &mut undo)
    }

    /// [`Filesystem::populate_then`], filling past the end of the file too when
    /// `beyond_eof` (the size stays, as with `FALLOC_FL_KEEP_SIZE`).
    pub(crate) fn populate_then_to<T>(
        &self,
        ino: u64,
        off: u64,
        end: u64,
        beyond_eof: bool,
        mut take: impl FnMut() -> Result<T>,
        mut undo: impl FnMut(T),
    ) -> Attempt<T> {
        let scope = Scope {
            beyond_eof,
            spare: None,
        };
        self.populate_scoped(ino, off, end, scope, &mut take, &mut undo)
    }

    fn populate_scoped<T>(
        &self,
        ino: u64,
        off: u64,
        end: u64,
        scope: Scope,
        take: &mut impl FnMut() -> Result<T>,
        undo: &mut impl FnMut(T),
    ) -> Attempt<T> {
        self.check_writable()?;
        self.transact_may_wait(|| self.populate_once(ino, off, end, scope, take, undo))
            .map_err(|e| match e {
                // Mapping records that could never fit in the log: too much to populate.
                Stop::Failed(Error::TooBig) => Stop::Failed(Error::NoSpace),
                other => other,
            })
    }

    /// One try of `populate`; runs inside [`Filesystem::transact`] (under the gate).
    fn populate_once<T>(
        &self,
        ino: u64,
        off: u64,
        end: u64,
        scope: Scope,
        take: &mut impl FnMut() -> Result<T>,
        undo: &mut impl FnMut(T),
    ) -> Result<T, Retry<Stop>> {
        /// Extents per `Map` record (24 bytes each: well under `REC_MAX`).
        const PER_RECORD: usize = 4096;
        let n = self.namespace.node(ino)?;
        let mut g = n.write();
        let bs = self.bs;
        let m = file_map(&g)?;
        if g.attr.flags & flags::IMMUTABLE != 0 {
            return Err(Error::Perm("immutable file").into());
        }
        let end = if scope.beyond_eof {
            end
        } else {
            end.min(g.attr.size)
        };
        let (fstart, fend) = (off / bs, end.div_ceil(bs));
        let gaps: Vec<_> = if off < end {
            m.segments(fstart, fend)
                .into_iter()
                .filter(|s| s.dblock.is_none())
                .collect()
        } else {
            Vec::new()
        };
        let holes: u64 = gaps.iter().map(|s| s.len).sum();
        let (Some(first), Some(last)) = (gaps.first(), gaps.last()) else {
            return Ok(take()?);
        };
        if holes > self.space.alloc.lock().free_blocks() {
            return Err(Error::NoSpace.into());
        }
        // Only the span of the holes (whole blocks) changes the map: a seal over the rest
        // of the range (the caller's own, say, when sliding a sealed range forward) is not
        // in the way.
        let span_start = first.fblock * bs;
        let span_end = (last.fblock + last.len) * bs;
        self.seal_gate_sparing(
            &g,
            ChangeKind::AllocateHole,
            span_start,
            span_end,
            scope.spare,
        )?;
        let new = self.allocate_holes(m, fstart, fend)?;
        if let Err(e) = self.zero_new(&new, m, None) {
            self.unreserve(&new);
            return Err(e.into());
        }
        let taken = match take() {
            Ok(t) => t,
            Err(e) => {
                self.unreserve(&new);
                return Err(e.into());
            }
        };
        let time = self.now();
        let ops: Vec<Op> = new
            .chunks(PER_RECORD)
            .map(|c| Op::Map {
                ino,
                size: 0,
                time,
                touch: false,
                extents: c.to_vec(),
            })
            .collect();
        if let Err(e) = ops.iter().try_for_each(|op| self.check_inode_op(&g, op)) {
            self.unreserve(&new);
            undo(taken);
            return Err(e.into());
        }
        let (written, res) = self.journal.commit_all(&*self.dev, &ops);
        for op in &ops[..written] {
            // Checked above, so not expected to fail; if it does, the seal taken with the
            // blocks goes (a replacement gets its seals back) as for a refused log.
            if let Err(e) = self.apply_inode(&mut g, op) {
                undo(taken);
                return Err(e.into());
            }
        }
        if let Err(e) = res {
            self.unreserve(&new[(written * PER_RECORD).min(new.len())..]);
            undo(taken);
            return Err(e.into());
        }
        Ok(taken)
    }

    fn punch(&self, ino: u64, off: u64, end: u64) -> Attempt<()> {
        self.transact_may_wait(|| {
            let n = self.namespace.node(ino)?;
            let mut g = n.write();
            let bs = self.bs;
            let m = file_map(&g)?;
            let end = end.min(g.attr.size.max(m.end_block() * bs));
            if off >= end {
                return Ok(());
            }
            self.seal_gate(&g, ChangeKind::Punch, off, end)?;
            // Partial blocks at either end are zeroed in place.
            let first_full = off.div_ceil(bs);
            let last_full = end / bs;
            let mut partial = Vec::new();
            if first_full > last_full {
                partial.push((off, end));
            } else {
                if !off.is_multiple_of(bs) {
                    partial.push((off, first_full * bs));
                }
                if end % bs != 0 {
                    partial.push((last_full * bs, end));
                }
            }
            for (s, e) in partial {
                for seg in m.segments(s / bs, e.div_ceil(bs)) {
                    if let Some(d) = seg.dblock {
                        let doff = self.dev_off(seg.fblock, d, s);
                        self.dev.zero(doff, e - s)?;
                        persist::persist(&*self.dev, doff, e - s)?;
                    }
                }
            }
            let now = self.now();
            if first_full < last_full && !m.is_hole(first_full, last_full) {
                let op = Op::Punch {
                    ino,
                    fblock: first_full,
                    count: last_full - first_full,
                    time: now,
                };
                self.log_inode(&mut g, &op)?;
            } else {
                g.attr.mtime = now;
                g.attr.ctime = now;
                g.dirty_times = true;
            }
            Ok(())
        })
    }

    /// `lseek` with `SEEK_DATA` (3) or `SEEK_HOLE` (4); other whences are the kernel's.
    pub fn seek(&self, ino: u64, off: u64, whence: i32) -> Result<u64> {
        let n = self.namespace.node(ino)?;
        let g = n.read();
        let m = file_map(&g)?;
        let size = g.attr.size;
        if off >= size {
            return Err(Error::NoSuchAddress);
        }
        let bs = self.bs;
        match whence {
            libc::SEEK_DATA => match m.next_data(off / bs) {
                Some(b) if b * bs < size => Ok((b * bs).max(off)),
                _ => Err(Error::NoSuchAddress),
            },
            libc::SEEK_HOLE => Ok((m.next_hole(off / bs) * bs).max(off).min(size)),
            _ => Err(Error::Invalid("whence")),
        }
    }

    /// `copy_file_range(2)`: copies through the device, returns bytes copied.
    pub fn copy_range(
        &self,
        ino_in: u64,
        off_in: u64,
        ino_out: u64,
        off_out: u64,
        len: u64,
    ) -> Attempt<u64> {
        if ino_in == ino_out
            && off_in < off_out.saturating_add(len)
            && off_out < off_in.saturating_add(len)
        {
            return Err(Error::Invalid("overlapping copy in one file").into());
        }
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(1 << 20) as u32;
            let buf = self.read(ino_in, off_in + done, n)?;
            if buf.is_empty() {
                break;
            }
            let w = self.write(ino_out, off_out + done, &buf)? as u64;
            done += w;
            if w < buf.len() as u64 {
                break;
            }
        }
        Ok(done)
    }

    /// `FS_IOC_GETFLAGS`.
    pub fn get_flags(&self, ino: u64) -> Result<u32> {
        let n = self.namespace.node(ino)?;
        let g = n.read();
        Ok(g.attr.flags & flags::USER_SETTABLE)
    }

    /// `FS_IOC_SETFLAGS`: owner or root; the immutable and append-only flags need root
    /// (CAP_LINUX_IMMUTABLE).
    pub fn set_flags(&self, ino: u64, new: u32, ctx: Ctx) -> Result<()> {
        self.check_writable()?;
        if new & !flags::USER_SETTABLE != 0 {
            return Err(Error::NotSupported);
        }
        self.transact(|| {
            let node = self.namespace.node(ino)?;
            let mut inode = node.write();
            if ctx.uid != 0 && ctx.uid != inode.attr.uid {
                return Err(Error::Perm("not the owner").into());
            }
            let old = inode.attr.flags & flags::USER_SETTABLE;
            if old != new && ctx.uid != 0 {
                return Err(Error::Perm(
                    "changing immutable/append-only needs CAP_LINUX_IMMUTABLE",
                )
                .into());
            }
            let kept = inode.attr.flags & !flags::USER_SETTABLE;
            self.log_flags(&mut inode, kept | new)
        })
    }
}

impl Filesystem {
    /// What the kernel's `file_remove_privs` does before a write by a caller without
    /// CAP_FSETID: clears set-user-ID, and set-group-ID when the group may execute. Writes
    /// through FOPEN_DIRECT_IO do not pass through the kernel's own call; the kernel marks
    /// them `FUSE_WRITE_KILL_SUIDGID` instead when the writer lacks CAP_FSETID
    /// (`fs/fuse/file.c`, `fuse_direct_io`), and the FUSE adapter then asks for this. True
    /// when the mode changed.
    pub fn remove_privs(&self, ino: u64, _ctx: Ctx) -> Result<bool> {
        let perm = self.getattr(ino)?.attr.mode & 0o7777;
        let mut new = perm & !libc::S_ISUID;
        if perm & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP {
            new &= !libc::S_ISGID;
        }
        if new == perm {
            return Ok(false);
        }
        let req = super::namespace::SetAttr {
            mode: Some(new),
            ..Default::default()
        };
        // No size: nothing here can wait for a recall.
        self.check_writable()?;
        self.setattr_allowed(ino, &req)?;
        self.set_other_attrs(ino, req).map(|_| true)
    }
}
