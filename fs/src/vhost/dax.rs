//! The guest's DAX window: virtio-fs SETUPMAPPING / REMOVEMAPPING onto the device.
//!
//! The guest driver cuts its window (shared memory region 0) into 2 MiB slots and asks for
//! one file range per slot, naming no file handle. Each slot here is:
//!
//! * a core mapping pin on the file range, taken through a handle the back end opens on the
//!   inode (read-only or read-write, shared by the slots of that inode and access), with
//!   [`MAP_BEYOND_EOF`]: the guest keeps a slot across truncates and extensions and only
//!   checks the file size itself, so the whole slot is backed by blocks, zeroed past the end
//!   of the file as `fallocate(FALLOC_FL_KEEP_SIZE)` leaves them;
//! * one `SHMEM_MAP` of the device file per device extent of the range, at the extent's
//!   device offset (one piece when the range is contiguous, which the allocator's 2 MiB
//!   placement and, on a 2 MiB device, relocation aim for).
//!
//! A conflicting change from elsewhere (the host, another process) recalls the pin. The
//! guest cannot be told — virtio-fs has no notification queue — so after `break_timeout`
//! the core revokes it, and this module fences the slot: it unmaps it from the window, after
//! which the guest reads zeros there and its stores go nowhere. The revoked pin's blocks stay
//! in quarantine until the guest removes the slot or its device is reset.
//!
//! Changes the guest itself makes (truncate, punch, collapse, insert, `O_TRUNC`) do not
//! wait: the guest kernel breaks its own DAX layouts first, so the back end unmaps and unpins
//! the slots of the range while the request runs ([`Window::suspend`]) and maps them again
//! onto the file's new blocks before answering it ([`Window::resume`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use vhost::vhost_user::message::{VhostUserMMap, VhostUserMMapFlags};
use vhost::vhost_user::{Backend, VhostUserFrontendReqHandler};

use super::wire;
use crate::filesystem::windows::{MAP_BEYOND_EOF, MAP_READ, MAP_WRITE};
use crate::filesystem::{Ctx, Filesystem};

/// virtio-fs's `FUSE_SETUPMAPPING_FLAG_WRITE` and `_READ` (not sealfs's ioctl bits).
const GUEST_WRITE: u64 = 1 << 0;
const GUEST_READ: u64 = 1 << 1;

struct Slot {
    ino: u64,
    fh: u64,
    foffset: u64,
    len: u64,
    write: bool,
    /// (window offset, length) of each SHMEM_MAP, exactly as QEMU must be asked to unmap.
    pieces: Vec<(u64, u64)>,
    /// Unmapped from the window after its pin was revoked.
    fenced: bool,
}

struct FileRef {
    fh: u64,
    slots: usize,
}

#[derive(Default)]
struct State {
    backend: Option<Backend>,
    running: bool,
    slots: BTreeMap<u64, Slot>,
    /// Handles by (inode, writable).
    files: HashMap<(u64, bool), FileRef>,
    /// Window offsets of slots set aside while a guest request changes their blocks.
    suspended: HashMap<u64, u64>,
}

/// Whether dropping a slot gives back the blocks it allocated past the end of the file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trim {
    /// The slot is gone for good (removed, reset, replaced by another range).
    Yes,
    /// The slot comes back at once (set aside, or upgraded to writable).
    No,
}

/// A slot set aside by [`Window::suspend`].
pub struct Suspended {
    moffset: u64,
    ino: u64,
    foffset: u64,
    len: u64,
    write: bool,
}

/// The window of the guest now bound.
pub struct Window {
    fs: Arc<Filesystem>,
    size: u64,
    unit: u64,
    host_notifier: Arc<OnceLock<fuser::Notifier>>,
    state: Mutex<State>,
    /// Set (without the state lock) when the device stops: no SHMEM request is sent from
    /// then on, even by a thread that holds the state lock.
    halted: std::sync::atomic::AtomicBool,
    kicked: Mutex<bool>,
    wake: Condvar,
}

/// The back end acts as a trusted window host: the daemon's own credentials and process.
fn daemon_ctx() -> Ctx {
    Ctx {
        uid: 0,
        gid: 0,
        pid: std::process::id(),
        umask: 0,
    }
}

fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    a < b.saturating_add(blen) && b < a.saturating_add(alen)
}

impl Window {
    /// A window of `size` bytes over `fs`, whose ranges map in `unit`s; starts the thread
    /// that fences revoked slots.
    pub fn start(
        fs: Arc<Filesystem>,
        size: u64,
        unit: u64,
        host_notifier: Arc<OnceLock<fuser::Notifier>>,
    ) -> Arc<Window> {
        let w = Arc::new(Window {
            fs: fs.clone(),
            size,
            unit,
            host_notifier,
            state: Mutex::new(State::default()),
            halted: std::sync::atomic::AtomicBool::new(true),
            kicked: Mutex::new(false),
            wake: Condvar::new(),
        });
        let hook: Weak<Window> = Arc::downgrade(&w);
        // Called from inside the core: only a wake-up, never this module's state lock.
        fs.add_seal_hook(move || {
            if let Some(w) = hook.upgrade() {
                *w.kicked.lock() = true;
                w.wake.notify_one();
            }
        });
        let weak = Arc::downgrade(&w);
        let spawned = std::thread::Builder::new()
            .name("sealfs-guest-fence".into())
            .spawn(move || {
                while let Some(w) = weak.upgrade() {
                    w.fence_revoked();
                    let mut k = w.kicked.lock();
                    if !*k {
                        w.wake.wait_for(&mut k, Duration::from_millis(500));
                    }
                    *k = false;
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "vhost-user: cannot start the fencing thread; revoked guest mappings stay mapped");
        }
        w
    }

    /// The mapping unit (log2 of it is FUSE_INIT's `map_alignment`).
    pub fn unit(&self) -> u64 {
        self.unit
    }

    /// The channel SHMEM requests go on (none once the VMM disconnected).
    pub fn set_backend(&self, backend: Option<Backend>) {
        self.state.lock().backend = backend;
    }

    /// The queues run: SHMEM requests may be sent.
    pub fn device_started(&self) {
        let mut st = self.state.lock();
        st.running = true;
        self.halted
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// The device is stopping: from now on no SHMEM request goes out. Takes no lock.
    pub fn halt(&self) {
        self.halted.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether SHMEM requests may go out (the device runs and is not being stopped).
    fn live(&self, st: &State) -> bool {
        st.running && !self.halted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The device stopped or was reset: QEMU dropped every window mapping, so the pins go
    /// (revoked ones end their quarantine) and the back end's handles are closed.
    pub fn device_stopped(&self) {
        let mut st = self.state.lock();
        st.running = false;
        self.drop_all(&mut st);
    }

    /// A guest driver's session ended with the device still running (an unmount, then a
    /// new FUSE_INIT): its mappings stay in QEMU's window until unmapped here, and a new
    /// session's mappings must not overlap them.
    pub fn session_ended(&self) {
        let mut st = self.state.lock();
        self.drop_all(&mut st);
    }

    fn drop_all(&self, st: &mut State) {
        st.suspended.clear();
        let all: Vec<u64> = st.slots.keys().copied().collect();
        let n = all.len();
        for m in all {
            self.drop_slot(st, m, Trim::Yes);
        }
        self.publish(st);
        if n > 0 {
            tracing::info!(
                mappings = n,
                "vhost-user: the guest's window mappings are gone"
            );
        }
    }

    /// FUSE_SETUPMAPPING of inode `ino`.
    pub fn setup(&self, ino: u64, args: &[u8]) -> Result<(), i32> {
        let (foffset, len, flags, moffset) = wire::setupmapping(args).ok_or(libc::EINVAL)?;
        if self.size == 0 {
            return Err(libc::ENOSYS);
        }
        if flags & !(GUEST_READ | GUEST_WRITE) != 0
            || len == 0
            || !moffset.is_multiple_of(self.unit)
            || moffset.checked_add(len).is_none_or(|e| e > self.size)
        {
            tracing::debug!(
                foffset,
                len,
                flags,
                moffset,
                "vhost-user: SETUPMAPPING refused"
            );
            return Err(libc::EINVAL);
        }
        let write = flags & GUEST_WRITE != 0;
        let mut st = self.state.lock();
        if !self.live(&st) || st.backend.is_none() {
            return Err(libc::EIO);
        }
        // The guest reuses the slot (or upgrades it to writable): what was mapped there
        // goes first, QEMU refuses overlapping mappings.
        self.clear_range(&mut st, moffset, len, Some((ino, foffset)));
        let r = self.map_slot(&mut st, ino, foffset, len, write, moffset);
        self.publish(&st);
        r
    }

    fn map_slot(
        &self,
        st: &mut State,
        ino: u64,
        foffset: u64,
        len: u64,
        write: bool,
        moffset: u64,
    ) -> Result<(), i32> {
        let Some(backend) = st.backend.clone().filter(|_| self.live(st)) else {
            return Err(libc::EIO);
        };
        let Some(dev) = self.fs.device().file() else {
            return Err(libc::EIO);
        };
        let fh = self.file_ref(st, ino, write)?;
        let mut flags = MAP_READ | if write { MAP_WRITE } else { 0 };
        let mut len = len;
        if self.fs.is_read_only() {
            // Nothing can be allocated, and no file can grow while the mount is read-only:
            // the slot shows the file up to its last block (the guest reads no further).
            let size = self.fs.getattr(ino).map_err(|e| e.errno())?.attr.size;
            let end = size.div_ceil(self.unit) * self.unit;
            len = len.min(end.saturating_sub(foffset));
            if len == 0 {
                self.unref(st, ino, write);
                return Err(libc::EINVAL);
            }
        } else {
            flags |= MAP_BEYOND_EOF;
        }
        let extents = match self
            .fs
            .setup_mapping(fh, foffset, len, flags, moffset, daemon_ctx())
        {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(ino, foffset, error = %e, "vhost-user: guest mapping refused");
                self.unref(st, ino, write);
                return Err(e.errno());
            }
        };
        let mut pieces = Vec::with_capacity(extents.len());
        for e in extents {
            let shm_offset = moffset + (e.foffset - foffset);
            let req = VhostUserMMap {
                shmid: 0,
                fd_offset: e.doffset,
                shm_offset,
                len: e.len,
                flags: if write {
                    VhostUserMMapFlags::WRITABLE.bits()
                } else {
                    0
                },
                ..Default::default()
            };
            let mapped = if self.live(st) {
                backend.shmem_map(&req, dev).map(|_| ())
            } else {
                Err(std::io::Error::other("the device is stopping"))
            };
            if let Err(err) = mapped {
                tracing::warn!(error = %err, ino, foffset, moffset, "vhost-user: SHMEM_MAP failed");
                if self.live(st) {
                    for (o, l) in pieces {
                        unmap(&backend, o, l);
                    }
                }
                if let Err(e) = self.fs.remove_mapping(fh, moffset) {
                    tracing::warn!(error = %e, "vhost-user: dropping a half-made mapping failed");
                }
                self.unref(st, ino, write);
                return Err(libc::EIO);
            }
            pieces.push((shm_offset, e.len));
        }
        tracing::debug!(
            ino,
            foffset,
            len,
            moffset,
            write,
            pieces = pieces.len(),
            "vhost-user: guest mapping"
        );
        st.slots.insert(
            moffset,
            Slot {
                ino,
                fh,
                foffset,
                len,
                write,
                pieces,
                fenced: false,
            },
        );
        Ok(())
    }

    /// FUSE_REMOVEMAPPING: each named range's slots go. Ranges with nothing mapped are not
    /// an error (the slot may have gone with a reset or a fence).
    pub fn remove(&self, args: &[u8]) -> Result<(), i32> {
        let ranges = wire::removemapping(args).ok_or(libc::EINVAL)?;
        let mut st = self.state.lock();
        for (moffset, len) in ranges {
            self.clear_range(&mut st, moffset, len, None);
        }
        self.publish(&st);
        Ok(())
    }

    /// Drops every slot over window bytes `[moffset, moffset+len)`, and forgets slots set
    /// aside there (the guest removed or reused them: they must not come back).
    fn clear_range(&self, st: &mut State, moffset: u64, len: u64, keep: Option<(u64, u64)>) {
        let hit: Vec<u64> = st
            .slots
            .range(..moffset.saturating_add(len))
            .filter(|(m, s)| overlaps(**m, s.len, moffset, len))
            .map(|(m, _)| *m)
            .collect();
        for m in hit {
            let same = st.slots.get(&m).map(|s| (s.ino, s.foffset)) == keep;
            self.drop_slot(st, m, if same { Trim::No } else { Trim::Yes });
        }
        st.suspended.retain(|m, l| !overlaps(*m, *l, moffset, len));
    }

    /// Sets aside the slots of `ino` over `[start, end)` while a guest request changes
    /// their blocks.
    pub fn suspend(&self, ino: u64, start: u64, end: u64) -> Vec<Suspended> {
        let mut st = self.state.lock();
        let hit: Vec<u64> = st
            .slots
            .iter()
            .filter(|(_, s)| {
                s.ino == ino && !s.fenced && overlaps(s.foffset, s.len, start, end - start)
            })
            .map(|(m, _)| *m)
            .collect();
        let mut out = Vec::with_capacity(hit.len());
        for m in hit {
            let Some(s) = st.slots.get(&m) else { continue };
            let len = s.len;
            out.push(Suspended {
                moffset: m,
                ino,
                foffset: s.foffset,
                len,
                write: s.write,
            });
            self.drop_slot(&mut st, m, Trim::No);
            st.suspended.insert(m, len);
        }
        self.publish(&st);
        out
    }

    /// Maps set-aside slots again (those the guest did not remove or reuse meanwhile).
    pub fn resume(&self, slots: Vec<Suspended>) {
        if slots.is_empty() {
            return;
        }
        let mut st = self.state.lock();
        for s in slots {
            if st.suspended.remove(&s.moffset).is_none() || !self.live(&st) {
                continue;
            }
            if let Err(e) = self.map_slot(&mut st, s.ino, s.foffset, s.len, s.write, s.moffset) {
                tracing::warn!(
                    ino = s.ino,
                    foffset = s.foffset,
                    errno = e,
                    "vhost-user: a guest mapping could not be made again; the guest sees zeros there"
                );
            }
        }
        self.publish(&st);
    }

    /// The guest fsynced `ino`: the host's cached pages of it may be older than what the
    /// guest stored through its window.
    pub fn guest_synced(&self, ino: u64) {
        let written = self
            .state
            .lock()
            .slots
            .values()
            .any(|s| s.ino == ino && s.write);
        if written {
            crate::fuse::adapter::invalidate_data(&self.host_notifier, ino, 0, 0);
        }
    }

    fn drop_slot(&self, st: &mut State, moffset: u64, trim: Trim) {
        let Some(s) = st.slots.remove(&moffset) else {
            return;
        };
        if !s.fenced && self.live(st) {
            if let Some(b) = st.backend.as_ref() {
                for &(o, l) in &s.pieces {
                    unmap(b, o, l);
                }
            }
        }
        if let Err(e) = self.fs.remove_mapping(s.fh, moffset) {
            tracing::warn!(error = %e, moffset, "vhost-user: removing a guest mapping's pin failed");
        }
        if trim == Trim::Yes {
            // The slot backed its whole range; what lies past the end of the file goes
            // back, as a filesystem trims speculative preallocation.
            if let Err(e) = self.fs.trim_beyond_eof(s.ino, s.foffset, s.foffset + s.len) {
                tracing::warn!(error = %e, ino = s.ino, "vhost-user: trimming a slot's blocks past the end of the file failed");
            }
        }
        if s.write {
            // Pages the host cached under what the guest wrote through the slot.
            crate::fuse::adapter::invalidate_data(&self.host_notifier, s.ino, s.foffset, s.len);
        }
        self.unref(st, s.ino, s.write);
    }

    fn file_ref(&self, st: &mut State, ino: u64, write: bool) -> Result<u64, i32> {
        if let Some(f) = st.files.get_mut(&(ino, write)) {
            f.slots += 1;
            return Ok(f.fh);
        }
        let mode = if write { libc::O_RDWR } else { libc::O_RDONLY };
        let fh = self
            .fs
            .open(ino, mode, daemon_ctx())
            .map_err(|e| e.errno())?;
        st.files.insert((ino, write), FileRef { fh, slots: 1 });
        Ok(fh)
    }

    fn unref(&self, st: &mut State, ino: u64, write: bool) {
        let Some(f) = st.files.get_mut(&(ino, write)) else {
            return;
        };
        f.slots -= 1;
        if f.slots == 0 {
            let fh = f.fh;
            st.files.remove(&(ino, write));
            if let Err(e) = self.fs.release(fh) {
                tracing::warn!(error = %e, "vhost-user: closing a window handle failed");
            }
        }
    }

    fn publish(&self, st: &State) {
        let live = st.slots.values().filter(|s| !s.fenced).count();
        self.fs.set_guest_mappings(live as u64);
    }

    /// Unmaps every slot whose pin the core revoked.
    fn fence_revoked(&self) {
        let mut st = self.state.lock();
        let backend = st.backend.clone();
        let mut fenced = 0;
        let st_live = self.live(&st);
        for (m, s) in st.slots.iter_mut() {
            if s.fenced || !self.fs.mapping_revoked(s.fh, *m) {
                continue;
            }
            if st_live {
                if let Some(b) = backend.as_ref() {
                    for &(o, l) in &s.pieces {
                        unmap(b, o, l);
                    }
                }
            }
            s.fenced = true;
            fenced += 1;
            tracing::warn!(
                ino = s.ino,
                foffset = s.foffset,
                len = s.len,
                moffset = *m,
                "vhost-user: guest mapping revoked after break_timeout; unmapped from the guest's window"
            );
        }
        if fenced > 0 {
            self.publish(&st);
        }
    }
}

fn unmap(backend: &Backend, shm_offset: u64, len: u64) {
    let req = VhostUserMMap {
        shmid: 0,
        shm_offset,
        len,
        ..Default::default()
    };
    if let Err(e) = backend.shmem_unmap(&req) {
        tracing::warn!(error = %e, shm_offset, len, "vhost-user: SHMEM_UNMAP failed");
    }
}
