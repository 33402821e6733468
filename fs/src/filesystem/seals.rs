//! Seals in the core: the bridge between file operations and the pure `sealfs_seal` state
//! machine, which alone decides. Every extent-map change asks `seal_gate` first.
//!
//! Temporary and breakable seals live only in memory (never on media). The permanent seal
//! (immutable extent map) is the persisted inode flag `SEALED_MAP`; the state machine is
//! told about it on every check and refuses with EPERM.
//!
//! A change that conflicts with a breakable seal stops with [`crate::Stop::Wait`]: the recall has
//! been recorded (the holder is notified through the hook) and the caller retries after a
//! release or at the deadline, when `expire_seals` revokes what was not given back. The FUSE
//! adapter parks such requests without holding a worker thread; other callers use
//! `blocking`.

use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, Rank, RwLock};
use sealfs_seal::{
    Access, ByteRange, Change, ChangeKind, Config, Decision, Recall, SealInfo, SealKind, SealTable,
    Stats,
};

use super::{Attempt, Ctx, Error, Filesystem, Result, Stop, Wait};
use crate::meta::inode::flags;
use crate::meta::Inode;

/// Seal options from the mount command line.
#[derive(Clone, Copy, Debug)]
pub struct SealOptions {
    /// Seals one open file description may hold (`max_seals`).
    pub max_seals: usize,
    /// Seals one user may hold over all descriptions (`max_seals_per_user`).
    pub max_seals_per_user: usize,
    /// How long a recalled holder has to unseal (`break_timeout`).
    pub break_timeout: Duration,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            max_seals: Config::DEFAULT_MAX_SEALS_PER_HOLDER,
            max_seals_per_user: Config::DEFAULT_MAX_SEALS_PER_USER,
            break_timeout: Duration::from_millis(5000),
        }
    }
}

/// Which seal [`Filesystem::seal`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealMode {
    /// Unbreakable: a conflicting change is refused (ETXTBSY). Needs write access.
    Temporary,
    /// Breakable: a conflicting change recalls it and waits. Needs read access.
    Breakable,
}

/// Whether a seal (or the permanent seal) first allocates the holes of its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Populate {
    /// Leave holes as they are.
    No,
    /// Allocate and zero every hole in the range (up to the file size) first; needs what a
    /// write needs.
    Fill,
}

/// Counters for `sealfs stat`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SealStats {
    /// Seals held now (temporary and breakable).
    pub seals: u64,
    /// Mapping pins held now.
    pub pins: u64,
    /// Recalls since mount.
    pub recalls: u64,
    /// Revocations since mount.
    pub revocations: u64,
}

type Hook = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The core's seal state: the seal table, the holders to notify and the transports' hooks.
/// Owns ranks 4 (`SealTable`), 5 (`Recalls`) and 13 (`SealHook`) of the lock order
/// ([`crate::sync`]): the table under an inode lock for a gate decision, the recall queue
/// after it, and the hooks only to copy them (they are called with no lock held).
pub(crate) struct SealCtl {
    pub(crate) table: Mutex<SealTable>,
    changed: Condvar,
    /// Holders to wake with POLLPRI: recalled, or revoked without a recall first.
    to_notify: Mutex<Vec<u64>>,
    hooks: RwLock<Vec<Hook>>,
    epoch: Instant,
}

impl SealCtl {
    pub(crate) fn new(opts: SealOptions) -> SealCtl {
        SealCtl {
            table: Mutex::new(Rank::SealTable, SealTable::new(config(opts))),
            changed: Condvar::new(),
            to_notify: Mutex::new(Rank::Recalls, Vec::new()),
            hooks: RwLock::new(Rank::SealHook, Vec::new()),
            epoch: Instant::now(),
        }
    }
}

fn config(o: SealOptions) -> Config {
    Config {
        max_seals_per_holder: o.max_seals,
        max_seals_per_user: o.max_seals_per_user,
        break_timeout_ns: o.break_timeout.as_nanos().min(u64::MAX as u128) as u64,
    }
}

/// A byte range `[off, off+len)`, `len == 0` meaning "to the end of the file, whatever it
/// becomes".
pub fn range(off: u64, len: u64) -> Result<ByteRange> {
    if len == 0 {
        return Ok(ByteRange::to_eof(off));
    }
    match off.checked_add(len) {
        Some(end) => Ok(ByteRange::new(off, end)),
        None => Err(Error::Invalid("seal range overflows")),
    }
}

impl Filesystem {
    /// Monotonic nanoseconds since mount (the seal clock).
    pub fn clock_ns(&self) -> u64 {
        self.seals.epoch.elapsed().as_nanos() as u64
    }

    /// Replaces the seal options (at mount, before any seal exists).
    pub fn configure_seals(&self, opts: SealOptions) {
        *self.seals.table.lock() = SealTable::new(config(opts));
    }

    /// Adds a hook called (from any thread, with no core lock held) whenever recalls are
    /// pending or seals were released or revoked: the parker sends poll notifications and
    /// retries parked requests; the vhost-user back end fences revoked guest mappings.
    pub fn add_seal_hook(&self, f: impl Fn() + Send + Sync + 'static) {
        self.seals.hooks.write().push(std::sync::Arc::new(f));
    }

    pub(crate) fn seals_changed(&self) {
        self.seals.changed.notify_all();
        // Called with no lock held: the transport calls back into the core.
        let hooks = self.seals.hooks.read().clone();
        for h in hooks {
            h();
        }
    }

    /// The one question every extent-map change asks, with the inode locked.
    pub(crate) fn seal_gate(
        &self,
        inode: &Inode,
        kind: ChangeKind,
        start: u64,
        end: u64,
    ) -> Attempt<()> {
        self.seal_gate_sparing(inode, kind, start, end, None)
    }

    /// [`seal_gate`](Self::seal_gate) with the seals of description `spare` out of the way
    /// (a replacing SEAL is about to release them).
    pub(crate) fn seal_gate_sparing(
        &self,
        inode: &Inode,
        kind: ChangeKind,
        start: u64,
        end: u64,
        spare: Option<u64>,
    ) -> Attempt<()> {
        let immutable = inode.attr.flags & flags::SEALED_MAP != 0;
        let mut table = self.seals.table.lock();
        if !immutable && !table.has_seals(inode.ino) {
            return Ok(());
        }
        let now = self.clock_ns();
        let revoked = table.expire(now);
        let change = Change {
            kind,
            range: ByteRange::new(start, end.max(start)),
        };
        let decision = table.check_sparing(inode.ino, &change, immutable, now, spare);
        drop(table);
        self.on_revoked(&revoked);
        match decision {
            Decision::Proceed => Ok(()),
            Decision::Refuse(e) => Err(Error::from(e).into()),
            // Unlink or rename over the last link: the holders are told, and the name goes
            // now (the kernel holds the directory locked until the reply; the blocks stay
            // the file's while a holder keeps it open).
            Decision::Notify { recall } => {
                self.send_recalls(recall);
                Ok(())
            }
            Decision::Wait { deadline, recall } => {
                self.send_recalls(recall);
                Err(Stop::Wait(Wait {
                    ino: inode.ino,
                    deadline_ns: deadline,
                }))
            }
        }
    }

    /// Queues newly recalled seals for their holders' POLLPRI.
    fn send_recalls(&self, recall: Vec<Recall>) {
        if recall.is_empty() {
            return;
        }
        for r in &recall {
            tracing::debug!(ino = r.ino, holder = r.holder, "recalling seal");
        }
        self.seals
            .to_notify
            .lock()
            .extend(recall.iter().map(|r| r.holder));
        self.seals_changed();
    }

    /// Takes a temporary or breakable seal (`mode`) on the open file `fh`. `len == 0` seals
    /// to the end of the file. [`Populate::Fill`] allocates and zeroes the holes in the range
    /// (up to the current size) first.
    pub fn seal(
        &self,
        fh: u64,
        off: u64,
        len: u64,
        mode: SealMode,
        populate: Populate,
        ctx: Ctx,
    ) -> Attempt<()> {
        self.seal_with(fh, off, len, mode, populate, false, ctx)
    }

    /// [`Filesystem::seal`] that, in the same step, releases every temporary and breakable
    /// seal `fh` already holds, whatever its range (`SEALFS_SEAL_REPLACE`): moving a seal
    /// costs one call. A refused call releases nothing; a recall in progress on the file
    /// refuses it (EBUSY), this description's own recalled seal included; the limits count
    /// the released seals as gone. Mapping pins stay.
    pub fn seal_replacing(
        &self,
        fh: u64,
        off: u64,
        len: u64,
        mode: SealMode,
        populate: Populate,
        ctx: Ctx,
    ) -> Attempt<()> {
        self.seal_with(fh, off, len, mode, populate, true, ctx)
    }

    #[allow(clippy::too_many_arguments)]
    fn seal_with(
        &self,
        fh: u64,
        off: u64,
        len: u64,
        mode: SealMode,
        populate: Populate,
        replace: bool,
        ctx: Ctx,
    ) -> Attempt<()> {
        let breakable = mode == SealMode::Breakable;
        let h = self.handle(fh)?;
        let r = range(off, len)?;
        let node = self.namespace.node(h.ino)?;
        if !node.read().attr.is_file() {
            return Err(Error::Invalid("seals apply to regular files").into());
        }
        if self.seals.table.lock().is_revoked(fh) {
            return Err(Error::Revoked.into());
        }
        // Access first: a refused seal must not have allocated anything.
        if (!breakable && !h.writable()) || (breakable && !h.readable()) {
            return Err(Error::BadFd.into());
        }
        let kind = match mode {
            SealMode::Breakable => SealKind::Breakable,
            SealMode::Temporary => SealKind::Temporary,
        };
        let access = Access {
            read: h.readable(),
            write: h.writable(),
        };
        let pid = self.caller_pid(fh, &h, ctx.pid);
        let take = || -> Result<(sealfs_seal::SealId, Vec<SealInfo>)> {
            let now = self.clock_ns();
            let mut table = self.seals.table.lock();
            Ok(if replace {
                table.replace(h.ino, fh, pid, ctx.uid, kind, r, access, now)?
            } else {
                (
                    table.seal(h.ino, fh, pid, ctx.uid, kind, r, access, now)?,
                    Vec::new(),
                )
            })
        };
        let released = if populate == Populate::Fill {
            // Filling holes is an allocation, which needs what a write needs: a read-only
            // mount refuses it (EROFS), a descriptor not open for writing too (EBADF),
            // whatever the seal kind.
            self.check_writable()?;
            if !h.writable() {
                return Err(Error::BadFd.into());
            }
            // Population and the seal are one step under the inode lock: a refused seal
            // (ENOLCK, EBUSY, ...) allocates nothing, and no hole can be punched between.
            // Undone (the log refused the new blocks), a replacement gives the replaced
            // seals back.
            let spare = replace.then_some(fh);
            let (_, released) =
                self.populate_sparing(h.ino, r.start, r.end, spare, take, |(id, replaced)| {
                    self.seals
                        .table
                        .lock()
                        .undo_replace(h.ino, fh, id, replaced);
                })?;
            released
        } else {
            // Under the inode lock, as every extent-map change asks `seal_gate` and applies
            // under it: a change that passed the gate before this seal existed is applied
            // before the seal is granted, never after. (Without it the change still
            // linearises before the seal, since every reader of the map waits for the inode
            // lock; with it the seal table never lists a seal over a map still changing.)
            let _g = node.read();
            take()?.1
        };
        if !released.is_empty() {
            self.seals_changed();
        }
        Ok(())
    }

    /// Allocates (zeroed) every hole of `r` below the file size; all or nothing.
    fn populate(&self, ino: u64, r: ByteRange) -> Attempt<()> {
        self.populate_then(ino, r.start, r.end, || Ok(()), |()| {})
    }

    /// Drops the seals of `fh` on exactly this range.
    pub fn unseal(&self, fh: u64, off: u64, len: u64) -> Result<()> {
        let h = self.handle(fh)?;
        let r = range(off, len)?;
        // Only seals: a mapping pin with the same range goes away with REMOVEMAPPING alone.
        self.seals.table.lock().unseal_seals(fh, h.ino, r)?;
        self.seals_changed();
        Ok(())
    }

    /// Revokes at once every seal and mapping pin on `ino` overlapping `[off, off+len)`
    /// (`len` 0: to the end), whoever holds it: their holders are fenced (ENOLINK) and
    /// operations waiting for them go on, as when a recall times out. Root only (`sealfs
    /// unseal --force`). Returns how many were revoked.
    pub fn revoke_seals(&self, ino: u64, off: u64, len: u64, ctx: Ctx) -> Result<usize> {
        ctx.require_root("only root revokes seals")?;
        {
            let node = self.namespace.node(ino)?;
            let inode = node.read();
            if !inode.attr.is_file() {
                return Err(Error::Invalid("seals apply to regular files"));
            }
        }
        let r = range(off, len)?;
        if r.is_empty() {
            return Err(Error::Invalid("empty range"));
        }
        let revoked = self.seals.table.lock().revoke(ino, r);
        for s in &revoked {
            tracing::info!(ino, holder = s.holder, pid = s.pid, kind = ?s.kind, "revoked by root");
        }
        // No recall came first: wake the holders that wait in poll() (POLLPRI; their
        // next seal call says ENOLINK).
        self.seals
            .to_notify
            .lock()
            .extend(revoked.iter().map(|s| s.holder));
        self.fence(&revoked);
        Ok(revoked.len())
    }

    /// Seals of `ino`.
    pub fn seals_of(&self, ino: u64) -> Vec<SealInfo> {
        self.seals.table.lock().list(ino)
    }

    /// True when seals held through `fh` were revoked (its seal calls answer ENOLINK until
    /// it is closed); its holder sees POLLPRI too.
    pub fn seals_revoked(&self, fh: u64) -> bool {
        self.seals.table.lock().is_revoked(fh)
    }

    /// True when a seal held through `fh` is being recalled (its holder should see POLLPRI).
    pub fn recall_pending(&self, fh: u64) -> bool {
        let Ok(h) = self.handle(fh) else { return false };
        self.seals
            .table
            .lock()
            .list(h.ino)
            .iter()
            .any(|s| s.holder == fh && matches!(s.state, sealfs_seal::SealState::Recalled { .. }))
    }

    /// Holders (file handles) to wake with POLLPRI since the last call: recalled, or
    /// revoked by root.
    pub fn take_notifications(&self) -> Vec<u64> {
        std::mem::take(&mut *self.seals.to_notify.lock())
    }

    /// Revokes recalled seals whose deadline passed; true if any was.
    pub fn expire_seals(&self) -> bool {
        let now = self.clock_ns();
        let revoked = self.seals.table.lock().expire(now);
        self.on_revoked(&revoked);
        !revoked.is_empty()
    }

    /// Revoked breakable seals fence their holders (the state machine did that); revoked
    /// mapping pins also quarantine the blocks the host may still have mapped.
    fn on_revoked(&self, revoked: &[sealfs_seal::Revoked]) {
        for r in revoked {
            tracing::info!(ino = r.ino, holder = r.holder, pid = r.pid, kind = ?r.kind, "revoked after break_timeout");
        }
        self.fence(revoked);
    }

    /// Quarantines what revoked pins may still map and wakes what waited for the seals.
    fn fence(&self, revoked: &[sealfs_seal::Revoked]) {
        for r in revoked {
            if r.kind == SealKind::MappingPin {
                self.pin_revoked(r.holder, r.id);
            }
        }
        if !revoked.is_empty() {
            self.seals_changed();
        }
    }

    /// True while a recall waits to be notified or timed out.
    pub fn recalls_in_flight(&self) -> bool {
        !self.seals.to_notify.lock().is_empty() || self.next_seal_deadline().is_some()
    }

    /// Earliest pending recall deadline (seal clock).
    pub fn next_seal_deadline(&self) -> Option<u64> {
        self.seals.table.lock().next_deadline()
    }

    /// Seal counters.
    pub fn seal_stats(&self) -> SealStats {
        let Stats {
            seals,
            pins,
            recalls,
            revocations,
        } = self.seals.table.lock().stats();
        SealStats {
            seals,
            pins,
            recalls,
            revocations,
        }
    }

    /// Releases every seal held through `fh` (its last close).
    pub(crate) fn release_seals(&self, fh: u64) {
        let released = self.seals.table.lock().release_holder(fh);
        if !released.is_empty() {
            self.seals_changed();
        }
    }

    /// Runs `f`, waiting out recalls (for callers that may block: tests, relocation, the CLI
    /// inside the daemon never). Waits at most until each deadline, then revokes.
    pub fn blocking<T>(&self, mut f: impl FnMut() -> Attempt<T>) -> Result<T> {
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(Stop::Failed(e)) => return Err(e),
                Err(Stop::Wait(Wait { deadline_ns, .. })) => {
                    let now = self.clock_ns();
                    if deadline_ns > now {
                        let mut table = self.seals.table.lock();
                        let wait =
                            Duration::from_nanos(deadline_ns - now).min(Duration::from_millis(50));
                        self.seals.changed.wait_for(&mut table, wait);
                    }
                    self.expire_seals();
                }
            }
        }
    }

    /// Sets the permanent seal (immutable extent map). Owner or root. A file with holes
    /// below its size is refused (EINVAL) unless [`Populate::Fill`] allocates them first.
    pub fn set_sealed_map(&self, ino: u64, populate: Populate, ctx: Ctx) -> Attempt<()> {
        self.check_writable()?;
        {
            let node = self.namespace.node(ino)?;
            let inode = node.read();
            if !inode.attr.is_file() {
                return Err(Error::Invalid("seals apply to regular files").into());
            }
            if ctx.uid != 0 && ctx.uid != inode.attr.uid {
                return Err(Error::Perm("not the owner").into());
            }
        }
        if populate == Populate::Fill {
            self.populate(ino, ByteRange::to_eof(0))?;
        }
        Ok(self.set_map_flag(ino, true)?)
    }

    /// Clears the permanent seal. Owner or root.
    pub fn clear_sealed_map(&self, ino: u64, ctx: Ctx) -> Result<()> {
        self.check_writable()?;
        {
            let node = self.namespace.node(ino)?;
            let inode = node.read();
            if ctx.uid != 0 && ctx.uid != inode.attr.uid {
                return Err(Error::Perm("not the owner"));
            }
        }
        self.set_map_flag(ino, false)
    }

    fn set_map_flag(&self, ino: u64, on: bool) -> Result<()> {
        self.transact(|| {
            let node = self.namespace.node(ino)?;
            let mut inode = node.write();
            if on {
                let bs = self.bs;
                let map = inode
                    .extents()
                    .ok_or(Error::Invalid("not a regular file"))?;
                let blocks = inode.attr.size.div_ceil(bs);
                if !map.is_mapped(0, blocks) {
                    return Err(Error::Invalid("file has holes (use populate)").into());
                }
            }
            let attr = inode.attr;
            let new = if on {
                attr.flags | flags::SEALED_MAP
            } else {
                attr.flags & !flags::SEALED_MAP
            };
            if new == attr.flags {
                return Ok(());
            }
            self.log_flags(&mut inode, new)
        })
    }

    /// Whether the permanent seal is set.
    pub fn sealed_map(&self, ino: u64) -> Result<bool> {
        let node = self.namespace.node(ino)?;
        let inode = node.read();
        Ok(inode.attr.flags & flags::SEALED_MAP != 0)
    }
}
