//! DAX windows, the daemon side: virtio-fs-style SETUPMAPPING / REMOVEMAPPING on an open
//! file, each live mapping a *mapping pin* on its file range, and the quarantine that keeps
//! blocks a window host may still have mapped from being reallocated.
//!
//! A window host (a trusted process that may open the device itself) asks for the device
//! extents of a file range and maps the device there. The pin keeps that range's extent map
//! still; a conflicting change recalls it (POLLPRI on the host's fd). If the host does not
//! answer within `break_timeout`, the pin is revoked, and any block of its range that is
//! freed afterwards is quarantined until the host acknowledges (REMOVEMAPPING) or its
//! process exits (watched through a pidfd opened at SETUPMAPPING, while the host is
//! certainly alive: its process id may be reused by the time the pin is revoked). Closing
//! the fd does not unmap the device, so it quarantines the same way.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Weak};

use crate::sync::{Mutex, Rank};
use sealfs_alloc::Extent;
use sealfs_seal::{Access, ByteRange, SealId, SealKind};

use super::space::Hold;
use super::{Attempt, Ctx, Error, Filesystem, Result, Stop};

/// The SETUPMAPPING flags, as the ABI defines them.
pub use crate::abi::{MAP_POPULATE, MAP_READ, MAP_WRITE};

/// A flag only the daemon's own window hosts use (never accepted from an ioctl): map the
/// whole range even where it lies past the end of the file, allocating zeroed blocks there
/// as `fallocate(FALLOC_FL_KEEP_SIZE)` does. A virtio-fs guest maps whole 2 MiB ranges and
/// keeps them across truncates and extensions, so its window slot must stay backed.
pub(crate) const MAP_BEYOND_EOF: u64 = 1 << 63;

/// Most device extents one mapping may need (the ioctl answer's capacity).
pub const MAX_EXTENTS: usize = crate::abi::MAP_EXTENTS_MAX;

/// One piece of a mapping's answer: file bytes `[foffset, foffset+len)` live at device
/// bytes `[doffset, doffset+len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevExtent {
    /// File offset.
    pub foffset: u64,
    /// Device offset.
    pub doffset: u64,
    /// Length.
    pub len: u64,
}

/// The file range a window mapping shows: what REMOVEMAPPING and FLUSHMAPPING need to drop
/// the page-cache pages a writable window wrote under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedRange {
    /// The mapped file.
    pub ino: u64,
    /// File offset of the mapping.
    pub foffset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Whether the host may write through it.
    pub write: bool,
}

struct Mapping {
    ino: u64,
    foffset: u64,
    len: u64,
    write: bool,
    seal: SealId,
    /// The host process, opened while it called SETUPMAPPING.
    host: Option<Arc<OwnedFd>>,
    blocks: Vec<Extent>,
    revoked: bool,
}

impl Mapping {
    fn range(&self) -> MappedRange {
        MappedRange {
            ino: self.ino,
            foffset: self.foffset,
            len: self.len,
            write: self.write,
        }
    }
}

/// A window slot whose pin is being recalled (or was revoked): what GET_RECALLS reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecalledMapping {
    /// The slot's offset in the host's window.
    pub moffset: u64,
    /// Length of the mapping in bytes.
    pub len: u64,
}

/// The mapping table of a mounted filesystem: live window mappings and the pidfds of the
/// hosts that set them up (the quarantine of their blocks is the space's,
/// [`super::space::Space`]). Owns ranks 6 (`WindowMaps`) and 8 (`WindowHosts`) of the
/// lock order ([`crate::sync`]): a revoked pin or a last close holds the maps while it
/// starts a quarantine hold (rank 7).
pub(crate) struct Windows {
    maps: Mutex<HashMap<(u64, u64), Mapping>>,
    /// One pidfd per live host process, shared by its mappings (one descriptor per
    /// process, not per mapping). Looked up by process id only to share it: an entry is
    /// used only while its process has not exited, and then that id is still its own.
    hosts: Mutex<HashMap<u32, Weak<OwnedFd>>>,
    /// Live mappings of a virtual machine's DAX window (kept by the vhost-user back end).
    guest_mappings: std::sync::atomic::AtomicU64,
}

impl Windows {
    /// A pidfd for host process `pid`, which is calling now (so alive, and `pid` is its).
    fn host_pidfd(&self, pid: u32) -> Option<Arc<OwnedFd>> {
        let mut hosts = self.hosts.lock();
        if let Some(fd) = hosts.get(&pid).and_then(Weak::upgrade) {
            if !exited(&Some(fd.clone())) {
                return Some(fd);
            }
        }
        hosts.retain(|_, w| w.strong_count() > 0);
        let fd = Arc::new(pidfd_open(pid)?);
        hosts.insert(pid, Arc::downgrade(&fd));
        Some(fd)
    }

    /// The process id and pidfd of the host whose thread `tid` is calling now. A host that
    /// already has mappings is found without a system call beyond one `poll`: a live entry
    /// for `tid` is a process whose id is `tid`, so `tid` is its leader (no other task can
    /// hold that id meanwhile). Otherwise as [`tgid_of`] and [`Windows::host_pidfd`].
    fn host_of(&self, tid: u32) -> (u32, Option<Arc<OwnedFd>>) {
        let known = self.hosts.lock().get(&tid).and_then(Weak::upgrade);
        if let Some(fd) = known {
            if !exited(&Some(fd.clone())) {
                return (tid, Some(fd));
            }
        }
        let pid = tgid_of(tid);
        (pid, self.host_pidfd(pid))
    }
}

impl Default for Windows {
    fn default() -> Windows {
        Windows {
            maps: Mutex::new(Rank::WindowMaps, HashMap::new()),
            hosts: Mutex::new(Rank::WindowHosts, HashMap::new()),
            guest_mappings: Default::default(),
        }
    }
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The process (thread-group) id of a thread id: FUSE reports the calling *thread*, and
/// seal limits and exit watches are per process.
pub fn tgid_of(tid: u32) -> u32 {
    // Most callers are a process's main thread. pidfd_open succeeds only for a thread-group
    // leader (one syscall), so /proc/TID/status (which the kernel formats in full, tens of
    // microseconds) is read only for other threads.
    if pidfd_open(tid).is_some() {
        return tid;
    }
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Tgid:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(tid)
}

fn exited(fd: &Option<Arc<OwnedFd>>) -> bool {
    use std::os::fd::AsRawFd;
    let Some(fd) = fd else { return false };
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLIN != 0
}

impl Filesystem {
    fn may_map_device(&self, ctx: Ctx, write: bool) -> Result<()> {
        if ctx.uid == 0 {
            return Ok(());
        }
        // The open device's own owner and mode: its path may name another file by now.
        let Some(md) = self.dev.metadata() else {
            return Err(Error::Perm("no device to map"));
        };
        let md = md?;
        let m = md.mode();
        let bits = if md.uid() == ctx.uid {
            m >> 6
        } else if md.gid() == ctx.gid {
            m >> 3
        } else {
            m
        } & 7;
        let need = if write { 6 } else { 4 };
        if bits & need != need {
            return Err(Error::Perm(
                "the caller may not open the device for this access",
            ));
        }
        Ok(())
    }

    /// SETUPMAPPING: pins `[foffset, foffset+len)` of the file open as `fh` for the window
    /// slot `moffset` and returns its device extents. Holes are allocated first. A slot
    /// that is already mapped is refused with EEXIST (see [`Filesystem::replace_mapping`]
    /// for the ioctl's virtio-fs semantics).
    pub fn setup_mapping(
        &self,
        fh: u64,
        foffset: u64,
        len: u64,
        flags: u64,
        moffset: u64,
        ctx: Ctx,
    ) -> Attempt<Vec<DevExtent>> {
        self.setup_mapping_at(fh, foffset, len, flags, moffset, None, ctx)
    }

    /// SETUPMAPPING as virtio-fs defines it: a mapping at a slot that is already mapped
    /// replaces it in the same call. Once the arguments have been checked the old mapping
    /// is removed exactly as REMOVEMAPPING removes it (its pin released, waiters retried),
    /// before the new range is populated and pinned; so an error after that point leaves the
    /// slot empty. Returns the new extents; `replaced` gets the ranges the replaced
    /// mappings showed, whatever the outcome (the adapter drops the page-cache pages a
    /// writable one wrote under).
    #[allow(clippy::too_many_arguments)]
    pub fn replace_mapping(
        &self,
        fh: u64,
        foffset: u64,
        len: u64,
        flags: u64,
        moffset: u64,
        ctx: Ctx,
        replaced: &mut Vec<MappedRange>,
    ) -> Attempt<Vec<DevExtent>> {
        self.setup_mapping_at(fh, foffset, len, flags, moffset, Some(replaced), ctx)
    }

    #[allow(clippy::too_many_arguments)]
    fn setup_mapping_at(
        &self,
        fh: u64,
        foffset: u64,
        len: u64,
        flags: u64,
        moffset: u64,
        mut replaced: Option<&mut Vec<MappedRange>>,
        ctx: Ctx,
    ) -> Attempt<Vec<DevExtent>> {
        if flags & !(MAP_READ | MAP_WRITE | MAP_POPULATE | MAP_BEYOND_EOF) != 0
            || flags & (MAP_READ | MAP_WRITE) == 0
        {
            return Err(Error::Invalid("mapping flags").into());
        }
        let h = self.handle(fh)?;
        let write = flags & MAP_WRITE != 0;
        if (write && !h.writable()) || (flags & MAP_READ != 0 && !h.readable()) {
            return Err(Error::Access.into());
        }
        self.may_map_device(ctx, write)?;
        let unit = self.dev.align().max(self.bs);
        let end = foffset
            .checked_add(len)
            .ok_or(Error::Invalid("mapping range overflows"))?;
        if len == 0 || !foffset.is_multiple_of(unit) || !len.is_multiple_of(unit) {
            return Err(Error::Invalid("mapping range must be aligned to the mapping unit").into());
        }
        if self.seals.table.lock().is_revoked(fh) {
            return Err(Error::Revoked.into());
        }
        if replaced.is_none() && self.windows.maps.lock().contains_key(&(fh, moffset)) {
            return Err(Error::Exists.into());
        }
        let size = self.getattr(h.ino)?.attr.size;
        let beyond_eof = flags & MAP_BEYOND_EOF != 0;
        if !beyond_eof && end > size.div_ceil(unit) * unit {
            return Err(Error::Invalid("mapping beyond the end of the file").into());
        }
        // Before the old mapping goes, which may hold the host's only reference to its pidfd.
        let (pid, host) = self.windows.host_of(ctx.pid);
        // The slot's old mapping goes before anything else happens: its pin must not be in
        // the way of populating or relocating the new range (it may be the same range).
        if let Some(replaced) = replaced.as_deref_mut() {
            let old = self.windows.maps.lock().remove(&(fh, moffset));
            if let Some(m) = old {
                replaced.push(self.mapping_removed(fh, moffset, m));
            }
        }
        let fill_end = if beyond_eof { end } else { end.min(size) };
        if foffset < fill_end {
            // All or nothing, as SEAL with POPULATE: a refused mapping keeps no new block.
            self.populate_then_to(h.ino, foffset, fill_end, beyond_eof, || Ok(()), |()| {})?;
        }
        if unit > self.bs {
            self.align_for_window(h.ino, foffset, end, unit)?;
        }
        let n = self.namespace.node(h.ino)?;
        let g = n.write();
        let m = g.extents().ok_or(Error::Invalid("not a regular file"))?;
        let (fb, fe) = (foffset / self.bs, end / self.bs);
        let segs = m.segments(fb, fe);
        if segs.iter().any(|s| s.dblock.is_none()) {
            return Err(Error::Invalid("range has holes").into());
        }
        if segs.len() > MAX_EXTENTS {
            return Err(Error::TooBig.into());
        }
        let access = Access {
            read: h.readable(),
            write: h.writable(),
        };
        let now = self.clock_ns();
        let seal = self.seals.table.lock().seal(
            h.ino,
            fh,
            pid,
            ctx.uid,
            SealKind::MappingPin,
            ByteRange::new(foffset, end),
            access,
            now,
        )?;
        let mut out = Vec::new();
        let mut blocks = Vec::new();
        for s in segs {
            let d = s.dblock.unwrap_or(0);
            out.push(DevExtent {
                foffset: s.fblock * self.bs,
                doffset: self.layout.block_offset(d),
                len: s.len * self.bs,
            });
            blocks.push(Extent {
                start: d,
                len: s.len,
            });
        }
        let mapping = Mapping {
            ino: h.ino,
            foffset,
            len,
            write,
            seal,
            host,
            blocks,
            revoked: false,
        };
        // The slot is checked again where it is taken: two SETUPMAPPINGs of one slot may
        // both have passed the early check. Without `replace` the loser must not leave an
        // orphaned pin; with it, the later call replaces the earlier one, as it would have
        // if they had not overlapped.
        let mut maps = self.windows.maps.lock();
        match (maps.entry((fh, moffset)), replaced) {
            (std::collections::hash_map::Entry::Vacant(slot), _) => {
                slot.insert(mapping);
            }
            (std::collections::hash_map::Entry::Occupied(mut slot), Some(replaced)) => {
                let old = std::mem::replace(slot.get_mut(), mapping);
                drop(maps);
                replaced.push(self.mapping_removed(fh, moffset, old));
            }
            (std::collections::hash_map::Entry::Occupied(_), None) => {
                drop(maps);
                self.seals.table.lock().remove_acknowledged(fh, seal);
                return Err(Error::Exists.into());
            }
        }
        Ok(out)
    }

    /// On a 2 MiB-aligned device, relocates the range into `unit`-aligned runs when it is
    /// not laid out that way (allowed: it is not pinned yet), or fails with EINVAL.
    fn align_for_window(&self, ino: u64, start: u64, end: u64, unit: u64) -> Attempt<()> {
        let per = unit / self.bs;
        let (fb, fe) = (start / self.bs, end / self.bs);
        // File block f on device block d maps cleanly iff f and d are congruent modulo the
        // unit (the data area itself starts unit-aligned).
        let aligned = self
            .extents(ino)?
            .iter()
            .filter(|e| e.fblock < fe && e.fblock + e.len > fb)
            .all(|e| e.dblock % per == e.fblock % per);
        if aligned {
            return Ok(());
        }
        self.transact_may_wait(|| self.relocate_range(ino, fb, fe, per))
            .map_err(|e| match e {
                Stop::Failed(Error::Sealed | Error::NoSpace) => {
                    Stop::Failed(Error::Invalid("range cannot be laid out in aligned runs"))
                }
                other => other,
            })
    }

    /// REMOVEMAPPING of the mapping at `moffset` of `fh`. Returns the range it showed so the
    /// adapter can invalidate page-cache pages the window wrote under.
    pub fn remove_mapping(&self, fh: u64, moffset: u64) -> Result<MappedRange> {
        let mut v = self.remove_mappings(fh, &[moffset])?;
        v.pop().ok_or(Error::Invalid("no mapping at that offset"))
    }

    /// REMOVEMAPPING of several slots of `fh`, all or nothing: EINVAL, and nothing removed,
    /// when one of them has no mapping or is named twice.
    pub fn remove_mappings(&self, fh: u64, moffsets: &[u64]) -> Result<Vec<MappedRange>> {
        let removed: Vec<(u64, Mapping)> = {
            let mut maps = self.windows.maps.lock();
            for (i, m) in moffsets.iter().enumerate() {
                if !maps.contains_key(&(fh, *m)) || moffsets[..i].contains(m) {
                    return Err(Error::Invalid("no mapping at that offset"));
                }
            }
            moffsets
                .iter()
                .filter_map(|&m| maps.remove(&(fh, m)).map(|x| (m, x)))
                .collect()
        };
        Ok(removed
            .into_iter()
            .map(|(moffset, m)| self.mapping_removed(fh, moffset, m))
            .collect())
    }

    fn mapping_removed(&self, fh: u64, moffset: u64, m: Mapping) -> MappedRange {
        if m.revoked {
            // The acknowledgement a revoked host owes: its quarantined blocks come back.
            self.space
                .release_holds(|h| h.holder == fh && h.moffset == moffset);
        } else {
            self.seals.table.lock().remove_acknowledged(fh, m.seal);
            self.seals_changed();
        }
        m.range()
    }

    /// The window slots of `fh` whose pins are being recalled.
    pub fn recalled_mappings(&self, fh: u64) -> Vec<RecalledMapping> {
        let Ok(h) = self.handle(fh) else {
            return Vec::new();
        };
        let recalled: Vec<SealId> = self
            .seals_of(h.ino)
            .into_iter()
            .filter(|s| {
                s.holder == fh && matches!(s.state, sealfs_seal::SealState::Recalled { .. })
            })
            .map(|s| s.id)
            .collect();
        let maps = self.windows.maps.lock();
        maps.iter()
            .filter(|(k, m)| k.0 == fh && (m.revoked || recalled.contains(&m.seal)))
            .map(|(k, m)| RecalledMapping {
                moffset: k.1,
                len: m.len,
            })
            .collect()
    }

    /// Gives back the blocks of `[start, end)` past the end of the file — what a mapping made
    /// with [`MAP_BEYOND_EOF`] allocated there — once that mapping is gone. Never waits:
    /// blocks a seal or pin covers stay (the last mapping to go trims). A breakable seal taken
    /// between the check and the punch is recalled as by any punch, and keeps the blocks.
    pub(crate) fn trim_beyond_eof(&self, ino: u64, start: u64, end: u64) -> Result<()> {
        let size = self.getattr(ino)?.attr.size;
        let from = start.max(size.div_ceil(self.bs) * self.bs);
        if from >= end {
            return Ok(());
        }
        let past = ByteRange::new(from, end);
        if self.seals_of(ino).iter().any(|s| s.range.overlaps(&past)) {
            return Ok(());
        }
        let (first, last) = (from / self.bs, end.div_ceil(self.bs));
        let allocated = self
            .extents(ino)?
            .iter()
            .any(|e| e.fblock < last && e.fblock + e.len > first);
        if !allocated {
            return Ok(());
        }
        let punch = crate::filesystem::data::falloc::PUNCH_HOLE
            | crate::filesystem::data::falloc::KEEP_SIZE;
        match self.fallocate(ino, from, end - from, punch) {
            // A seal or pin taken since the check: it keeps the blocks, as above.
            Err(Stop::Wait(_)) | Err(Stop::Failed(Error::Sealed)) => Ok(()),
            Err(Stop::Failed(e)) => Err(e),
            Ok(()) => Ok(()),
        }
    }

    /// True when the pin of the mapping of `fh` at `moffset` was revoked (its blocks are in
    /// quarantine until the mapping is removed).
    pub fn mapping_revoked(&self, fh: u64, moffset: u64) -> bool {
        self.windows
            .maps
            .lock()
            .get(&(fh, moffset))
            .is_some_and(|m| m.revoked)
    }

    /// The range the mapping of `fh` at `moffset` shows.
    pub fn mapping(&self, fh: u64, moffset: u64) -> Option<MappedRange> {
        self.windows
            .maps
            .lock()
            .get(&(fh, moffset))
            .map(Mapping::range)
    }

    /// A revoked pin: its blocks go into quarantine until the host acknowledges or exits.
    pub(crate) fn pin_revoked(&self, holder: u64, seal: SealId) {
        let mut maps = self.windows.maps.lock();
        for (k, m) in maps
            .iter_mut()
            .filter(|(k, m)| k.0 == holder && m.seal == seal)
        {
            m.revoked = true;
            self.space.hold(Hold {
                holder,
                moffset: k.1,
                pidfd: m.host.clone(),
                at_risk: m.blocks.clone(),
                held: Vec::new(),
            });
        }
    }

    /// Last close of `fh`: its mappings stay mapped in the host, so their blocks are
    /// quarantined until the host process exits.
    pub(crate) fn release_mappings(&self, fh: u64) {
        let mut maps = self.windows.maps.lock();
        let keys: Vec<(u64, u64)> = maps.keys().filter(|k| k.0 == fh).copied().collect();
        for k in keys {
            if let Some(m) = maps.remove(&k) {
                if m.revoked {
                    // Already quarantined at revocation.
                    continue;
                }
                self.space.hold(Hold {
                    holder: fh,
                    moffset: k.1,
                    pidfd: m.host,
                    at_risk: m.blocks,
                    held: Vec::new(),
                });
            }
        }
    }

    /// Ends the quarantine of hosts whose process has exited. Cheap when nothing is held.
    pub fn reap_quarantine(&self) {
        if self.space.no_holds() {
            return;
        }
        self.space
            .release_holds(|h| exited(&h.pidfd) || h.pidfd.is_none());
    }

    /// Records how many DAX window mappings a virtual machine has live now (`sealfs stat`).
    pub fn set_guest_mappings(&self, n: u64) {
        self.windows
            .guest_mappings
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Live DAX window mappings of a virtual machine.
    pub fn guest_mappings(&self) -> u64 {
        self.windows
            .guest_mappings
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Blocks held back in quarantine now.
    pub fn quarantined_blocks(&self) -> u64 {
        self.space.quarantined_blocks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::sim::SimDevice;
    use crate::device::Device;
    use crate::filesystem::seals::{Populate, SealMode};
    use crate::filesystem::{mkfs, MkfsOptions, MountOptions};

    const SLOT: u64 = 2 << 20;

    fn fs() -> (Arc<SimDevice>, Filesystem) {
        let dev = Arc::new(SimDevice::new(64 << 20, true));
        mkfs(&*dev, MkfsOptions::default()).unwrap();
        let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
        (dev, fs)
    }

    /// A guest's slot is backed past the end of the file (size kept); growing the file over
    /// it moves no block and recalls nothing, shrinking it recalls the pin.
    #[test]
    fn a_mapping_beyond_eof_is_backed_and_survives_growth_but_not_shrinking() {
        let (dev, fs) = fs();
        let c = Ctx::root();
        let (f, fh) = fs.create(1, b"f", 0o644, libc::O_RDWR, c).unwrap();
        fs.write(f.ino, 0, &[7u8; 100]).unwrap();
        // Without the flag the range ends at the last block of the file.
        assert!(matches!(
            fs.setup_mapping(fh, 0, SLOT, MAP_READ | MAP_WRITE, 0, c),
            Err(Stop::Failed(Error::Invalid(_)))
        ));
        let ext = fs
            .setup_mapping(fh, 0, SLOT, MAP_READ | MAP_WRITE | MAP_BEYOND_EOF, 0, c)
            .unwrap();
        assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), SLOT);
        assert_eq!(ext[0].foffset, 0);
        assert_eq!(fs.getattr(f.ino).unwrap().attr.size, 100);
        // The blocks past the end read as zeros on the device.
        let mut tail = vec![1u8; 4096];
        dev.read(ext[0].doffset + 4096, &mut tail).unwrap();
        assert_eq!(tail, vec![0u8; 4096]);
        // Growth: an extending write and a truncate up, both over pinned blocks.
        fs.write(f.ino, SLOT / 2, b"grown").unwrap();
        fs.truncate(f.ino, SLOT, c).unwrap();
        assert_eq!(fs.seal_stats().recalls, 0);
        assert_eq!(
            fs.device_extents(f.ino, 0, c).unwrap(),
            ext,
            "growth moved no block"
        );
        // Shrinking frees pinned blocks: the pin is recalled and the truncate waits.
        assert!(matches!(fs.truncate(f.ino, 4096, c), Err(Stop::Wait(_))));
        assert_eq!(fs.seal_stats().recalls, 1);
        fs.remove_mapping(fh, 0).unwrap();
        fs.truncate(f.ino, 4096, c).unwrap();
        fs.release(fh).unwrap();
        assert_eq!(
            fs.read(f.ino, 0, 200).unwrap(),
            [7u8; 100]
                .iter()
                .copied()
                .chain([0u8; 100])
                .collect::<Vec<_>>()
        );
    }

    /// Once the mapping is gone, the blocks it allocated past the end of the file go back —
    /// unless a seal still covers them; the file's own blocks and bytes stay.
    #[test]
    fn blocks_past_the_end_go_back_when_the_mapping_does() {
        let (_dev, fs) = fs();
        let c = Ctx::root();
        let (f, fh) = fs.create(1, b"f", 0o644, libc::O_RDWR, c).unwrap();
        fs.write(f.ino, 0, &[7u8; 100]).unwrap();
        let free0 = fs.stats().free_blocks;
        let flags = MAP_READ | MAP_WRITE | MAP_BEYOND_EOF;
        fs.setup_mapping(fh, 0, SLOT, flags, 0, c).unwrap();
        let per_slot = SLOT / fs.block_size();
        assert_eq!(fs.stats().free_blocks, free0 - (per_slot - 1));
        // While a breakable seal covers the range past the end, nothing is trimmed.
        let reader = fs.open(f.ino, libc::O_RDONLY, c).unwrap();
        fs.seal(reader, 8192, 0, SealMode::Breakable, Populate::No, c)
            .unwrap();
        fs.remove_mapping(fh, 0).unwrap();
        fs.trim_beyond_eof(f.ino, 0, SLOT).unwrap();
        assert_eq!(fs.stats().free_blocks, free0 - (per_slot - 1));
        assert_eq!(fs.seal_stats().recalls, 0, "trimming never recalls");
        fs.release(reader).unwrap();
        fs.trim_beyond_eof(f.ino, 0, SLOT).unwrap();
        assert_eq!(fs.stats().free_blocks, free0);
        assert_eq!(fs.getattr(f.ino).unwrap().attr.size, 100);
        assert_eq!(fs.read(f.ino, 0, 4096).unwrap(), vec![7u8; 100]);
        fs.release(fh).unwrap();
    }
}
