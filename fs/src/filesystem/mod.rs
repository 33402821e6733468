//! The filesystem core: a transport-free API over inode numbers that the FUSE adapter and
//! the tests drive.
//!
//! The state is split into subsystems, each owning its locks: the journal
//! (`crate::journal::Journal`: gate, log, superblock), the namespace (the inode table),
//! the space (allocator and window quarantine), the seals, the windows (mapping table) and
//! the handles (open file descriptions). Every lock is a ranked lock of [`crate::sync`],
//! whose documentation is the one statement of the acquisition order (gate, table, inodes,
//! seals, windows, alloc, log, superblock, handles), checked on every acquisition; each
//! subsystem says which ranks it owns.
//!
//! Every mutation builds an `Op`, appends it to the log (durable before the reply), then
//! applies it with the same function replay uses, inside `Filesystem::transact` (the
//! journal's gate and checkpoint-and-retry, [`crate::journal`]). Data reaches the device
//! through [`crate::device::persist`] only.

pub mod acl;
pub mod data;
pub mod mount;
pub mod namespace;
pub mod relocate;
pub mod seals;
mod space;
pub mod windows;
pub mod xattr;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use crate::sync::{Mutex, Rank};
use sealfs_alloc::Extent;

use crate::device::Device;
use crate::error::{Attempt, Error, Result, Stop, Wait};
use crate::format::record::{valid, Op, Ts};
use crate::format::Layout;
use crate::journal::{Journal, Retry};
use crate::meta::inode::{mode, Attr};
use crate::meta::table::{ApplyError, Blocks};
use crate::meta::{Node, Table};

pub use mount::{mkfs, MkfsOptions, MountOptions};

/// Largest file size (16 TiB, as ext4 with 4 KiB blocks).
pub const MAX_FILE_SIZE: u64 = 1 << 44;
/// Most hard links to one inode (as ext4).
pub const MAX_LINKS: u32 = 65000;
/// Longest name.
pub const NAME_MAX: usize = 255;

/// Who is asking (from the FUSE request).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ctx {
    /// Caller's uid.
    pub uid: u32,
    /// Caller's gid.
    pub gid: u32,
    /// Caller's pid.
    pub pid: u32,
    /// The caller's umask, for creates when ACLs are on (the kernel then leaves it to the
    /// filesystem, which ignores it under a default ACL); 0 otherwise.
    pub umask: u32,
}

impl Ctx {
    /// Root, pid 0 (tests, internal callers).
    pub fn root() -> Ctx {
        Ctx::default()
    }

    /// EPERM (saying `why`) unless the caller is root.
    pub fn require_root(self, why: &'static str) -> Result<()> {
        if self.uid != 0 {
            return Err(Error::Perm(why));
        }
        Ok(())
    }
}

/// Attributes as returned to callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Inode number.
    pub ino: u64,
    /// Attributes.
    pub attr: Attr,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Preferred I/O size.
    pub blksize: u32,
}

/// Filesystem-wide counters for `statfs` and `sealfs stat`.
#[derive(Clone, Copy, Debug)]
pub struct FsStats {
    /// Block size.
    pub block_size: u64,
    /// Data blocks.
    pub total_blocks: u64,
    /// Free data blocks.
    pub free_blocks: u64,
    /// Inodes in use.
    pub inodes: u64,
    /// Inodes the checkpoint area can hold (estimate).
    pub max_inodes: u64,
    /// Log bytes used since the last checkpoint.
    pub log_used: u64,
    /// Log capacity.
    pub log_len: u64,
    /// Checkpoints written since mount.
    pub checkpoints: u64,
    /// Log records appended since mount.
    pub records: u64,
    /// Superblock generation.
    pub generation: u64,
}

/// An open file description.
#[derive(Clone, Copy, Debug)]
pub struct Handle {
    /// Inode.
    pub ino: u64,
    /// `open(2)` flags.
    pub flags: i32,
    /// Opener's pid.
    pub pid: u32,
    /// Threads that sealed through this description and their process ids, `(tid, tgid)`,
    /// by `tid % SEALERS` (`(0, 0)`: none yet): a seal by the same thread again names its
    /// process with this lookup instead of system calls.
    pub sealers: [(u32, u32); SEALERS],
}

/// Threads per open file description whose process id is remembered for seals.
pub const SEALERS: usize = 4;

impl Handle {
    /// Opened for writing?
    pub fn writable(&self) -> bool {
        matches!(self.flags & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR)
    }
    /// Opened for reading?
    pub fn readable(&self) -> bool {
        matches!(self.flags & libc::O_ACCMODE, libc::O_RDONLY | libc::O_RDWR)
    }
}

/// When a read updates a file's access time: the mount's atime flags (`noatime`,
/// `relatime`, `strictatime`), which the FUSE layer follows (FUSE inodes carry
/// `S_NOATIME`: the kernel leaves atime to the server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtimePolicy {
    /// `noatime`: reads never update it.
    Never,
    /// `relatime` (the default): only when atime is not after mtime or ctime, or is more
    /// than a day old.
    Relative,
    /// `strictatime`: every read.
    Always,
}

impl AtimePolicy {
    fn to_u8(self) -> u8 {
        match self {
            AtimePolicy::Never => 0,
            AtimePolicy::Relative => 1,
            AtimePolicy::Always => 2,
        }
    }

    fn from_u8(v: u8) -> AtimePolicy {
        match v {
            0 => AtimePolicy::Never,
            2 => AtimePolicy::Always,
            _ => AtimePolicy::Relative,
        }
    }
}

/// The mount's switches: read-only, the access-time rule and POSIX ACLs. Atomics only,
/// no ranked lock.
struct Settings {
    read_only: AtomicBool,
    atime: AtomicU8,
    nodiratime: AtomicBool,
    acl: AtomicBool,
}

impl Settings {
    fn new(read_only: bool) -> Settings {
        Settings {
            read_only: AtomicBool::new(read_only),
            atime: AtomicU8::new(AtimePolicy::Relative.to_u8()),
            nodiratime: AtomicBool::new(false),
            acl: AtomicBool::new(false),
        }
    }
}

/// Open file descriptions. Owns rank 12 (`Handles`) of the lock order
/// ([`crate::sync`]): taken last but for the seal hook, briefly, for one insert, lookup or
/// removal.
struct Handles {
    open: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
}

impl Handles {
    fn new() -> Handles {
        Handles {
            open: Mutex::new(Rank::Handles, HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }

    /// Records `h` under a new file handle.
    fn insert(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.open.lock().insert(fh, h);
        fh
    }

    /// The handle `fh` (EBADF when it is not open).
    fn get(&self, fh: u64) -> Result<Handle> {
        self.open.lock().get(&fh).copied().ok_or(Error::BadFd)
    }

    /// Remembers that thread `tid` of process `tgid` sealed through `fh` (nothing when `fh`
    /// was closed meanwhile).
    fn remember_sealer(&self, fh: u64, tid: u32, tgid: u32) {
        if let Some(h) = self.open.lock().get_mut(&fh) {
            h.sealers[tid as usize % SEALERS] = (tid, tgid);
        }
    }

    /// Forgets `fh`, returning what it was (EBADF when it is not open).
    fn remove(&self, fh: u64) -> Result<Handle> {
        self.open.lock().remove(&fh).ok_or(Error::BadFd)
    }
}

/// A mounted sealfs: the device and its layout, which never change, and the state of its
/// subsystems, each owning its locks and its part of the one lock order
/// ([`crate::sync`]): the journal, the namespace, the space, the seals, the windows and
/// the handles. Methods that touch one subsystem live on it; those that coordinate several
/// are `Filesystem`'s.
pub struct Filesystem {
    dev: Box<dyn Device>,
    layout: Layout,
    bs: u64,
    journal: Journal,
    namespace: namespace::Namespace,
    space: space::Space,
    settings: Settings,
    seals: seals::SealCtl,
    windows: windows::Windows,
    handles: Handles,
}

/// Frees blocks into the allocator after the record that frees them is durable.
struct LiveBlocks<'a> {
    space: &'a space::Space,
}

impl Blocks for LiveBlocks<'_> {
    fn used(&mut self, _start: u64, _len: u64) -> Result<(), ApplyError> {
        // Live allocations were reserved in the allocator before the record was written.
        Ok(())
    }
    fn freed(&mut self, ino: u64, start: u64, len: u64) -> Result<(), ApplyError> {
        self.space
            .free(Extent { start, len })
            .map_err(|e| ApplyError(format!("inode {ino}: {e}")))
    }
}

/// An operation the validator refused before it was logged.
fn refused(e: ApplyError) -> Error {
    tracing::error!(error = %e, "operation refused by the validator before logging");
    Error::Corrupt(e.0)
}

/// Converts a mode's type bits to a name for messages.
pub fn kind_name(m: u32) -> &'static str {
    match m & mode::S_IFMT {
        mode::S_IFREG => "file",
        mode::S_IFDIR => "directory",
        mode::S_IFLNK => "symlink",
        mode::S_IFCHR => "character device",
        mode::S_IFBLK => "block device",
        mode::S_IFIFO => "fifo",
        mode::S_IFSOCK => "socket",
        _ => "unknown",
    }
}

impl Filesystem {
    /// Block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.bs
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The device.
    pub fn device(&self) -> &dyn Device {
        &*self.dev
    }

    /// Mounted read-only (`-o ro`, or remounted so)?
    pub fn is_read_only(&self) -> bool {
        self.settings.read_only.load(Ordering::SeqCst)
    }

    /// Turns POSIX ACLs on (the FUSE session negotiated `FUSE_POSIX_ACL` and
    /// `FUSE_DONT_MASK`): `system.posix_acl_*` attributes are accepted and interpreted,
    /// creates inherit default ACLs and apply [`Ctx::umask`] themselves.
    pub fn set_acl_enabled(&self, on: bool) {
        self.settings.acl.store(on, Ordering::SeqCst);
    }

    /// Whether POSIX ACLs are on.
    pub fn acl_enabled(&self) -> bool {
        self.settings.acl.load(Ordering::Relaxed)
    }

    /// The access-time rule reads and directory listings follow from now on; with
    /// `nodiratime`, listings never update a directory's atime.
    pub fn set_atime_policy(&self, p: AtimePolicy, nodiratime: bool) {
        self.settings.atime.store(p.to_u8(), Ordering::SeqCst);
        self.settings.nodiratime.store(nodiratime, Ordering::SeqCst);
    }

    /// The access-time rule reads follow, and whether `nodiratime` is on.
    pub fn atime_policy(&self) -> (AtimePolicy, bool) {
        (
            AtimePolicy::from_u8(self.settings.atime.load(Ordering::SeqCst)),
            self.settings.nodiratime.load(Ordering::SeqCst),
        )
    }

    /// Is an access of a node with attributes `a` (a directory listing when `dir`) due
    /// to update its atime? The kernel's `atime_needs_update` / `relatime_need_update`.
    fn atime_due(&self, a: &Attr, dir: bool) -> bool {
        if self.is_read_only() {
            return false;
        }
        let (p, nodiratime) = self.atime_policy();
        if dir && nodiratime {
            return false;
        }
        match p {
            AtimePolicy::Never => false,
            AtimePolicy::Always => true,
            AtimePolicy::Relative => {
                a.atime <= a.mtime || a.atime <= a.ctime || self.now().sec - a.atime.sec >= 86400
            }
        }
    }

    /// Would listing directory `ino` now update its atime? The FUSE adapter lets the
    /// kernel serve a listing from its cache only when not (a cached listing never reaches
    /// the daemon): always under `noatime`/`nodiratime`, never under `strictatime`, and
    /// under `relatime` while atime is after mtime and ctime and less than a day old.
    pub fn listing_updates_atime(&self, ino: u64) -> bool {
        self.access_updates_atime(ino, true)
    }

    /// Would an access of `ino` now (a listing when `dir`) update its atime under the
    /// current rule? True for an inode that is not there (let the access find out).
    pub fn access_updates_atime(&self, ino: u64, dir: bool) -> bool {
        match self.namespace.node(ino) {
            Ok(n) => self.atime_due(&n.read().attr, dir),
            Err(_) => true,
        }
    }

    /// Sets the atime of `n` to now when `atime_due` (in memory; logged with the other
    /// time updates at the last close, fsync or checkpoint). Decided under the shared lock
    /// first: most reads update nothing, and readers of one file then do not queue behind
    /// each other's exclusive lock.
    fn touch_atime(&self, node: &Node, dir: bool) {
        if !self.atime_due(&node.read().attr, dir) {
            return;
        }
        let mut inode = node.write();
        if self.atime_due(&inode.attr, dir) {
            inode.attr.atime = self.now();
            inode.dirty_times = true;
        }
    }

    /// Switches between read-only and read-write (`mount -o remount,ro|rw`). Going
    /// read-write frees the orphans a read-only mount had to keep. EROFS for read-write on
    /// a device opened read-only (e.g. an image on a read-only filesystem).
    pub fn set_read_only(&self, ro: bool) -> Result<()> {
        if !ro && !self.device().writable() {
            return Err(Error::ReadOnly);
        }
        let was = self.settings.read_only.swap(ro, Ordering::SeqCst);
        if was && !ro {
            let orphans: Vec<u64> = self
                .namespace
                .table
                .read()
                .orphans
                .iter()
                .copied()
                .collect();
            for ino in orphans {
                self.evict(ino)?;
            }
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        if self.journal.failed() {
            return Err(Error::Errno(libc::EIO));
        }
        Ok(())
    }

    /// Refuses operations that grow the metadata (new names, xattrs) once the state could
    /// outgrow a checkpoint area, so that a full log can always be checkpointed and
    /// deletions keep working. The estimate (last checkpoint + twice the log bytes since) only ever
    /// overstates; when it trips, a checkpoint measures the real size first.
    fn meta_room(&self) -> Result<()> {
        let limit = self.layout.ckpt_len / 10 * 9;
        if self.journal.projected_meta() <= limit {
            return Ok(());
        }
        self.checkpoint()?;
        if self.journal.projected_meta() <= limit {
            return Ok(());
        }
        tracing::warn!(limit, "metadata area full");
        Err(Error::NoSpace)
    }

    /// Appends `op` to the log (durable on return).
    fn commit(&self, op: &Op) -> Result<(), Retry> {
        self.journal.commit(&*self.dev, op)
    }

    /// Checks a namespace op against the table it will apply to (the validator replay and
    /// fsck use), then logs it. An op the validator refuses is a bug of the path that built
    /// it: it is refused here, before the log holds a record every later mount would
    /// refuse.
    fn commit_ns(&self, table: &Table, op: &Op) -> Result<(), Retry> {
        crate::meta::validate::validate(op, table).map_err(refused)?;
        self.commit(op)
    }

    /// Checks an inode op against the (locked) inode, then logs it; see `commit_ns`.
    fn commit_inode(&self, inode: &crate::meta::Inode, op: &Op) -> Result<(), Retry> {
        self.check_inode_op(inode, op)?;
        self.commit(op)
    }

    /// What `commit_inode` checks, for callers that log several records at once.
    fn check_inode_op(&self, inode: &crate::meta::Inode, op: &Op) -> Result<()> {
        crate::meta::validate::validate_inode(inode, op, self.bs).map_err(refused)
    }

    /// Applies a committed inode-level op to a locked inode. A failure here means memory
    /// and log disagree: the filesystem stops accepting changes.
    fn apply_inode(&self, inode: &mut crate::meta::Inode, op: &Op) -> Result<()> {
        let mut b = LiveBlocks { space: &self.space };
        crate::meta::table::apply_inode(inode, op, self.bs, &mut b)
            .map_err(|e| self.journal.fail(e))
    }

    /// Applies a committed namespace op (caller holds the table write lock).
    fn apply_ns(&self, table: &mut Table, op: &Op) -> Result<()> {
        let mut b = LiveBlocks { space: &self.space };
        table.apply(op, &mut b).map_err(|e| self.journal.fail(e))
    }

    /// One logged inode change: checks `op` against the locked inode, commits it (durable)
    /// and applies it (`commit_inode`, then `apply_inode`). Nothing is logged or changed
    /// when the check or the append fails.
    fn log_inode(&self, inode: &mut crate::meta::Inode, op: &Op) -> Result<(), Retry> {
        self.commit_inode(inode, op)?;
        Ok(self.apply_inode(inode, op)?)
    }

    /// Logs a change of the locked inode's flags to `flags` (ctime now) as one `SetAttr`;
    /// pending in-memory times ride along (apply clears the dirty mark).
    fn log_flags(&self, inode: &mut crate::meta::Inode, flags: u32) -> Result<(), Retry> {
        let a = inode.attr;
        let op = Op::SetAttr {
            ino: inode.ino,
            valid: valid::FLAGS | valid::CTIME | valid::ATIME | valid::MTIME,
            mode: 0,
            uid: 0,
            gid: 0,
            atime: a.atime,
            mtime: a.mtime,
            ctime: self.now(),
            flags,
        };
        self.log_inode(inode, &op)
    }

    /// One logged namespace change under the table's write lock: `commit_ns`, then
    /// `apply_ns`.
    fn log_ns(&self, table: &mut Table, op: &Op) -> Result<(), Retry> {
        self.commit_ns(table, op)?;
        Ok(self.apply_ns(table, op)?)
    }

    /// Runs one logged change, `body`, under the shared gate, checkpointing and running it
    /// again when the log is full ([`crate::journal::transact`]). `body` checks, commits
    /// and applies; it must not take the gate itself.
    fn transact<T>(&self, body: impl FnMut() -> Result<T, Retry>) -> Result<T> {
        self.journal.transact(|| self.checkpoint(), body)
    }

    /// [`Filesystem::transact`] for a change whose error type is `E`: an [`Error`], or a
    /// [`Stop`] when it may wait.
    fn transact_as<T, E: From<Error>>(
        &self,
        body: impl FnMut() -> Result<T, Retry<E>>,
    ) -> Result<T, E> {
        self.journal.transact(|| self.checkpoint(), body)
    }

    /// [`Filesystem::transact`] for a change that may have to wait for a seal recall
    /// (`seal_gate`): `body`'s wait ends the attempt, as an error would, and the caller
    /// gets it as [`Stop::Wait`].
    fn transact_may_wait<T>(&self, body: impl FnMut() -> Result<T, Retry<Stop>>) -> Attempt<T> {
        self.journal.transact(|| self.checkpoint(), body)
    }

    /// A `Stat` for a locked inode.
    fn stat_of(&self, inode: &crate::meta::Inode) -> Stat {
        let blocks = inode.extents().map(|m| m.mapped_blocks()).unwrap_or(0) * (self.bs / 512);
        Stat {
            ino: inode.ino,
            attr: inode.attr,
            blocks,
            blksize: self.bs.min(1 << 20) as u32,
        }
    }

    /// Attributes of `ino`.
    pub fn getattr(&self, ino: u64) -> Result<Stat> {
        let node = self.namespace.node(ino)?;
        let inode = node.read();
        Ok(self.stat_of(&inode))
    }

    /// Filesystem counters.
    pub fn stats(&self) -> FsStats {
        let (free, total) = {
            let a = self.space.alloc.lock();
            (a.free_blocks(), a.total_blocks())
        };
        let inodes = self.namespace.table.read().inodes.len() as u64;
        let journal = self.journal.stats();
        FsStats {
            block_size: self.bs,
            total_blocks: total,
            free_blocks: free,
            inodes,
            max_inodes: self.layout.ckpt_len / 128,
            log_used: journal.log_used,
            log_len: journal.log_len,
            checkpoints: journal.checkpoints,
            records: journal.records,
            generation: journal.generation,
        }
    }

    /// Opens `ino` with `flags`, returning a file handle.
    pub fn open(&self, ino: u64, flags: i32, ctx: Ctx) -> Result<u64> {
        let node = self.namespace.node(ino)?;
        let mut inode = node.write();
        let write = matches!(flags & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR);
        if write || flags & libc::O_TRUNC != 0 {
            if self.is_read_only() {
                return Err(Error::ReadOnly);
            }
            if inode.attr.flags & crate::meta::inode::flags::IMMUTABLE != 0 {
                return Err(Error::Perm("immutable file"));
            }
            if inode.attr.flags & crate::meta::inode::flags::APPEND != 0
                && (flags & libc::O_APPEND == 0 || flags & libc::O_TRUNC != 0)
            {
                return Err(Error::Perm("append-only file"));
            }
        }
        inode.open += 1;
        Ok(self.handles.insert(Handle {
            ino,
            flags,
            pid: ctx.pid,
            sealers: [(0, 0); SEALERS],
        }))
    }

    /// The handle `fh`.
    pub fn handle(&self, fh: u64) -> Result<Handle> {
        self.handles.get(fh)
    }

    /// The process id of thread `tid`, calling through the open file `h` (`fh`): asked of
    /// the system ([`windows::tgid_of`]) the first time this thread calls through this
    /// description, then remembered with it.
    pub(crate) fn caller_pid(&self, fh: u64, h: &Handle, tid: u32) -> u32 {
        let (t, pid) = h.sealers[tid as usize % SEALERS];
        if t == tid {
            return pid;
        }
        let pid = windows::tgid_of(tid);
        self.handles.remember_sealer(fh, tid, pid);
        pid
    }

    /// Last close of a file handle: an unlinked inode goes away with its last handle.
    pub fn release(&self, fh: u64) -> Result<()> {
        let h = self.handles.remove(fh)?;
        self.release_mappings(fh);
        self.release_seals(fh);
        let evict = {
            let Ok(node) = self.namespace.node(h.ino) else {
                return Ok(());
            };
            let mut inode = node.write();
            inode.open = inode.open.saturating_sub(1);
            if inode.dirty_times && inode.attr.nlink > 0 && !self.is_read_only() {
                drop(inode);
                self.flush_times(h.ino)?;
                false
            } else {
                inode.open == 0 && inode.attr.nlink == 0
            }
        };
        if evict {
            self.evict(h.ino)?;
        }
        Ok(())
    }

    /// Logs in-memory-only time changes of `ino`.
    fn flush_times(&self, ino: u64) -> Result<()> {
        if self.is_read_only() {
            return Ok(());
        }
        self.transact(|| {
            let node = self.namespace.node(ino)?;
            let mut inode = node.write();
            if !inode.dirty_times {
                return Ok(());
            }
            let a = inode.attr;
            let op = Op::SetAttr {
                ino,
                valid: crate::format::record::valid::ATIME
                    | crate::format::record::valid::MTIME
                    | crate::format::record::valid::CTIME,
                mode: 0,
                uid: 0,
                gid: 0,
                atime: a.atime,
                mtime: a.mtime,
                ctime: a.ctime,
                flags: 0,
            };
            self.log_inode(&mut inode, &op)
        })
    }

    /// Drops an unlinked inode with no handles left.
    fn evict(&self, ino: u64) -> Result<()> {
        self.transact(|| {
            let mut table = self.namespace.table.write();
            let Some(node) = table.get(ino).cloned() else {
                return Ok(());
            };
            {
                let inode = node.read();
                if inode.attr.nlink != 0 || inode.open != 0 {
                    return Ok(());
                }
            }
            let op = Op::Evict { ino };
            self.log_ns(&mut table, &op)
        })
    }

    /// `fsync`: file data (image files) and in-memory times become durable.
    pub fn fsync(&self, ino: u64, datasync: bool) -> Result<()> {
        let node = self.namespace.node(ino)?;
        {
            let inode = node.read();
            if !self.dev.durable_writes() {
                if let Some(map) = inode.extents() {
                    let batch = crate::device::persist::Batch::new(&*self.dev);
                    for e in map.iter() {
                        batch.flush(self.layout.block_offset(e.dblock), e.len * self.bs)?;
                    }
                    batch.fence();
                }
            }
            if datasync || !inode.dirty_times {
                return Ok(());
            }
        }
        self.flush_times(ino)
    }

    /// Current time for timestamps.
    fn now(&self) -> Ts {
        Ts::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::sim::SimDevice;

    /// The live path runs the validator before it logs: an operation it refuses leaves the
    /// log and the table as they were and does not stop the filesystem.
    #[test]
    fn an_operation_the_validator_refuses_is_never_logged() {
        let dev = std::sync::Arc::new(SimDevice::new(4 << 20, true));
        mkfs(&*dev, MkfsOptions::default()).unwrap();
        let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
        let c = Ctx::root();
        let a = fs.mkdir(1, b"a", 0o755, c).unwrap().ino;
        let b = fs.mkdir(a, b"b", 0o755, c).unwrap().ino;
        let (f, fh) = fs.create(1, b"f", 0o644, libc::O_RDWR, c).unwrap();
        fs.release(fh).unwrap();
        let tail = fs.journal.log_tail();
        {
            let t = fs.namespace.table.read();
            let op = Op::Rename {
                parent: 1,
                name: b"a".to_vec(),
                new_parent: b,
                new_name: b"x".to_vec(),
                flags: 0,
                time: Ts::now(),
            };
            match fs.commit_ns(&t, &op) {
                Err(Retry::Err(Error::Corrupt(m))) => {
                    assert!(m.contains("into its own subtree"), "{m}")
                }
                other => panic!("{other:?}"),
            }
            let node = t.get(f.ino).unwrap().clone();
            let inode = node.read();
            let op = Op::Truncate {
                ino: f.ino,
                size: u64::MAX,
                time: Ts::now(),
            };
            match fs.commit_inode(&inode, &op) {
                Err(Retry::Err(Error::Corrupt(m))) => {
                    assert!(m.contains("beyond the largest file"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(fs.journal.log_tail(), tail, "nothing was logged");
        assert!(!fs.journal.failed());
        fs.rename(1, b"f", a, b"g", 0, Ctx::root()).unwrap();
        assert_eq!(fs.lookup(a, b"g").unwrap().ino, f.ino);
    }
}
