//! Serving a virtual machine: sealfs as a **vhost-user-fs device back end**, so a QEMU guest
//! mounts it with `mount -t virtiofs TAG /mnt` (and `-o dax=always` for its DAX window).
//!
//! The guest speaks FUSE over virtqueues. One daemon serves its host mount and one guest at
//! a time, over the same core, journal and seal table, so a guest's operations are exactly as
//! crash-safe as a host mount's and seals hold across the boundary.
//!
//! * `bridge` — FUSE over the virtqueues: each request is handed to the same fuser adapter
//!   the host mount uses (a second session over a `SOCK_SEQPACKET` socket pair, which keeps
//!   /dev/fuse's one-message-per-read framing) and each reply is written back into the
//!   request's descriptor chain;
//! * `dax` — the guest's DAX window: FUSE_SETUPMAPPING becomes a mapping pin on the file
//!   range plus `VHOST_USER_BACKEND_SHMEM_MAP` of the device at the range's device offset,
//!   FUSE_REMOVEMAPPING the reverse; a revoked pin is fenced by unmapping it from the window.
//!
//! The vhost-user device side (the socket protocol, the vrings, guest memory) is rust-vmm's
//! `vhost-user-backend`; QEMU 11.1 or later gives the guest the window, through its generic
//! `vhost-user-test-device-pci` with `virtio-id=26` (docs/windows.md, "Serving a guest").

mod bridge;
mod dax;
mod wire;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserShMemConfig};
use vhost::vhost_user::{Backend, Listener};
use vhost_user_backend::{VhostUserBackend, VhostUserDaemon, VringRwLock, VringT};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_queue::QueueT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;

use crate::filesystem::Filesystem;
use crate::fuse::MountConfig;
use crate::park::Parker;

/// The guest driver's mapping unit: it maps its window in 2 MiB ranges (FUSE_DAX_SZ).
pub const SLOT: u64 = 2 << 20;
/// Default DAX window: 256 slots. Every live slot costs QEMU one vhost memory slot, and
/// vhost-user allows 509 in all (guest RAM included), so a larger window can run out.
pub const DEFAULT_WINDOW: u64 = 512 << 20;
/// Longest tag `struct virtio_fs_config` holds.
pub const TAG_MAX: usize = 36;
/// Request queues offered (queue 0 is the high-priority queue of FORGETs).
const REQUEST_QUEUES: usize = 1;
/// Largest virtqueue accepted.
const QUEUE_SIZE: usize = 1024;
/// `VHOST_USER_F_PROTOCOL_FEATURES`.
const PROTOCOL_FEATURES: u64 = 1 << 30;

/// What `sealfs mount -o vhost_user=…` serves: the guest side of one mount.
pub struct Config {
    /// The UNIX socket QEMU connects to.
    pub socket: PathBuf,
    /// The virtio-fs tag.
    pub tag: String,
    /// DAX window size in bytes (0: none).
    pub window: u64,
    /// The settings of the guest's FUSE session (the host mount's).
    pub mount: MountConfig,
}

/// The guest back end of one mount (cheap to clone; the vhost-user library wants a clone).
#[derive(Clone)]
pub struct Guest {
    inner: Arc<Inner>,
}

struct Inner {
    fs: Arc<Filesystem>,
    cfg: Config,
    parker: Arc<Parker>,
    mem: RwLock<Option<GuestMemoryAtomic<GuestMemoryMmap>>>,
    /// The FUSE session of the guest driver now bound (from its FUSE_INIT to a reset).
    session: Mutex<Option<Arc<bridge::Bridge>>>,
    dax: Arc<dax::Window>,
    /// Set when the queues run; SHMEM requests are sent only then (QEMU 11.1.3 crashes
    /// on one that arrives before the device started).
    running: AtomicBool,
    /// The clean-up after the device stopped, which runs on its own thread (below).
    cleanup: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Starts serving guests of `fs` on `cfg.socket`: when this returns the socket listens, so
/// QEMU may be started. One VMM connection is served at a time; after it ends (the VM
/// exits) the socket is listened on again.
pub fn serve(
    fs: Arc<Filesystem>,
    cfg: Config,
    parker: Arc<Parker>,
    host_notifier: Arc<OnceLock<fuser::Notifier>>,
) -> io::Result<()> {
    replace_stale_socket(&cfg.socket)?;
    let mut listener = Listener::new(&cfg.socket, false).map_err(|e| {
        io::Error::other(format!(
            "cannot listen on {}: {e}",
            cfg.socket.as_path().display()
        ))
    })?;
    let unit = fs.device().align().max(fs.block_size());
    let dax = dax::Window::start(fs.clone(), cfg.window, unit, host_notifier);
    let guest = Guest {
        inner: Arc::new(Inner {
            fs,
            cfg,
            parker,
            mem: RwLock::new(None),
            session: Mutex::new(None),
            dax,
            running: AtomicBool::new(false),
            cleanup: Mutex::new(None),
        }),
    };
    std::thread::Builder::new()
        .name("sealfs-vhost".into())
        .spawn(move || guest.accept_loop(&mut listener))?;
    Ok(())
}

/// Removes an old socket at `path` (a previous daemon's); anything else there is an error,
/// never deleted.
fn replace_stale_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Guest {
    fn accept_loop(&self, listener: &mut Listener) {
        let socket = self.inner.cfg.socket.clone();
        loop {
            let mut daemon = match VhostUserDaemon::new(
                "sealfs-vhost-user".into(),
                self.clone(),
                GuestMemoryAtomic::new(GuestMemoryMmap::new()),
            ) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = ?e, "vhost-user back end cannot start; no guest will be served");
                    return;
                }
            };
            if let Err(e) = daemon.start(listener) {
                tracing::error!(error = ?e, socket = %socket.display(), "vhost-user: accepting a connection failed");
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
            tracing::info!(socket = %socket.display(), "vhost-user: a VMM connected");
            match daemon.wait() {
                Ok(())
                | Err(vhost_user_backend::Error::HandleRequest(
                    vhost::vhost_user::Error::Disconnected
                    | vhost::vhost_user::Error::PartialMessage,
                )) => {}
                Err(e) => {
                    tracing::warn!(error = ?e, "vhost-user: the connection ended with an error")
                }
            }
            drop(daemon);
            self.stop_device("the VMM disconnected");
            self.finish_cleanup();
            self.inner.dax.set_backend(None);
            tracing::info!(socket = %socket.display(), "vhost-user: listening again");
        }
    }

    /// The guest driver went away (reset, reboot, VM exit): its FUSE session ends (its open
    /// files are closed, its seals released) and its window mappings are gone in QEMU, so
    /// their pins are dropped and quarantined blocks come back.
    ///
    /// Called from the thread that answers QEMU (GET_VRING_BASE, RESET_DEVICE), which must
    /// not wait: QEMU waits for that answer and meanwhile reads nothing on the channel a
    /// `SHMEM_MAP` in flight waits on. So this stops further SHMEM requests at once and
    /// leaves the clean-up to a thread of its own, which the device's restart waits for.
    fn stop_device(&self, why: &'static str) {
        self.inner.running.store(false, Ordering::SeqCst);
        self.inner.dax.halt();
        let me = self.clone();
        let mut slot = self.inner.cleanup.lock();
        let previous = slot.take();
        let spawned = std::thread::Builder::new()
            .name("sealfs-guest-reset".into())
            .spawn(move || {
                if let Some(p) = previous {
                    let _ = p.join();
                }
                me.inner.dax.device_stopped();
                me.end_session(why);
            });
        match spawned {
            Ok(h) => *slot = Some(h),
            Err(e) => {
                drop(slot);
                tracing::error!(error = %e, "vhost-user: cannot start the reset thread; cleaning up in place");
                self.inner.dax.device_stopped();
                self.end_session(why);
            }
        }
    }

    /// Waits for the clean-up of the last stop (the device is starting again).
    fn finish_cleanup(&self) {
        let pending = self.inner.cleanup.lock().take();
        if let Some(h) = pending {
            if h.join().is_err() {
                tracing::error!("vhost-user: the reset thread panicked");
            }
        }
    }

    /// Ends the guest driver's FUSE session, if one is bound.
    fn end_session(&self, why: &'static str) {
        let old = self.inner.session.lock().take();
        if let Some(b) = old {
            tracing::info!(reason = why, "vhost-user: ending the guest's FUSE session");
            b.end();
        }
    }

    /// Serves the requests waiting on queue `index`.
    fn process_queue(&self, index: usize, vring: &VringRwLock) -> io::Result<()> {
        let Some(atomic) = self.inner.mem.read().clone() else {
            return Ok(());
        };
        if !self.inner.running.swap(true, Ordering::SeqCst) {
            self.finish_cleanup();
            self.inner.dax.device_started();
        }
        let mem = atomic.memory();
        loop {
            let chain = vring
                .get_mut()
                .get_queue_mut()
                .pop_descriptor_chain(mem.clone());
            let Some(chain) = chain else { break };
            let req = match wire::Chain::read(&mem, chain) {
                Ok(r) => r,
                Err((head, e)) => {
                    tracing::warn!(queue = index, error = %e, "vhost-user: unreadable request");
                    vring.add_used(head, 0).map_err(io::Error::other)?;
                    continue;
                }
            };
            self.request(vring, req);
        }
        vring.signal_used_queue()
    }

    /// One FUSE request from the guest.
    fn request(&self, vring: &VringRwLock, chain: wire::Chain) {
        let Some(h) = chain.header() else {
            // Not a FUSE request (too short, or its length field disagrees): given back
            // unanswered rather than passed to the session.
            tracing::warn!("vhost-user: malformed request from the guest");
            self.complete(vring, &chain, &[]);
            return;
        };
        match h.opcode {
            // No reply: the core counts no lookups, and virtio-fs has no interrupts.
            wire::FORGET | wire::BATCH_FORGET | wire::INTERRUPT => {
                self.complete(vring, &chain, &[]);
            }
            wire::SETUPMAPPING => {
                let r = self.inner.dax.setup(h.nodeid, chain.args());
                self.complete(vring, &chain, &wire::reply(h.unique, r, &[]));
            }
            wire::REMOVEMAPPING => {
                let r = self.inner.dax.remove(chain.args());
                self.complete(vring, &chain, &wire::reply(h.unique, r, &[]));
            }
            wire::IOCTL if wire::host_only_ioctl(chain.args()) => {
                // Window, revocation and remount commands concern the host's device and
                // processes, which a guest's root is not.
                let r = Err(libc::EPERM);
                self.complete(vring, &chain, &wire::reply(h.unique, r, &[]));
            }
            wire::DESTROY => {
                // The guest unmounted: the window keeps what it mapped until unmapped here.
                self.inner.dax.session_ended();
                self.forward(vring, chain, h);
            }
            wire::INIT => {
                // A new session (after an unmount, or a driver that starts over without a
                // reset): the old one's mappings and open files go first.
                self.inner.dax.session_ended();
                self.end_session("the guest driver started again");
                match bridge::Bridge::start(self.clone()) {
                    Ok(b) => {
                        *self.inner.session.lock() = Some(b.clone());
                        b.forward(vring, chain, h, Vec::new());
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "vhost-user: cannot start the guest's FUSE session");
                        self.complete(vring, &chain, &wire::reply(h.unique, Err(libc::EIO), &[]));
                    }
                }
            }
            _ => self.forward(vring, chain, h),
        }
    }

    /// Hands a request to the guest's FUSE session.
    fn forward(&self, vring: &VringRwLock, chain: wire::Chain, h: wire::Header) {
        let session = self.inner.session.lock().clone();
        let Some(b) = session else {
            self.complete(vring, &chain, &wire::reply(h.unique, Err(libc::EIO), &[]));
            return;
        };
        // A truncate, punch or collapse from the guest itself: the guest kernel has broken
        // its own DAX layouts first, so its mappings of the range step aside while the
        // request runs and are mapped again (onto the file's new blocks) before it is
        // answered.
        let suspended = match wire::extent_change(&h, chain.args()) {
            Some((start, end)) => self.inner.dax.suspend(h.nodeid, start, end),
            None => Vec::new(),
        };
        b.forward(vring, chain, h, suspended);
    }

    /// Writes `reply` into the chain's writable buffers and gives the chain back.
    fn complete(&self, vring: &VringRwLock, chain: &wire::Chain, reply: &[u8]) {
        let Some(atomic) = self.inner.mem.read().clone() else {
            return;
        };
        let mem = atomic.memory();
        let n = match chain.write_reply(&mem, reply) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "vhost-user: cannot write a reply into guest memory");
                0
            }
        };
        if let Err(e) = vring.add_used(chain.head(), n) {
            tracing::warn!(error = ?e, "vhost-user: add_used failed");
        }
        if let Err(e) = vring.signal_used_queue() {
            tracing::warn!(error = %e, "vhost-user: cannot signal the guest");
        }
    }
}

impl VhostUserBackend for Guest {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        1 + REQUEST_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1) | PROTOCOL_FEATURES
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        // SHMEM: the DAX window; BACKEND_REQ + BACKEND_SEND_FD: the channel its maps travel
        // on, with the device's fd; REPLY_ACK: to learn whether QEMU mapped; CONFIGURE_MEM_SLOTS:
        // each window mapping is a memory region QEMU reports back, beyond the 8 a full memory
        // table can carry.
        VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::BACKEND_REQ
            | VhostUserProtocolFeatures::BACKEND_SEND_FD
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::SHMEM
            | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
    }

    fn reset_device(&self) {
        self.stop_device("device reset");
    }

    fn set_event_idx(&self, _enabled: bool) {}

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let cfg = wire::virtio_fs_config(&self.inner.cfg.tag, REQUEST_QUEUES as u32);
        let start = (offset as usize).min(cfg.len());
        let end = start.saturating_add(size as usize).min(cfg.len());
        cfg[start..end].to_vec()
    }

    fn get_shmem_config(&self) -> io::Result<VhostUserShMemConfig> {
        if self.inner.cfg.window == 0 {
            return Ok(VhostUserShMemConfig::new(0, &[]));
        }
        Ok(VhostUserShMemConfig::new(1, &[self.inner.cfg.window]))
    }

    fn update_memory(&self, mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        *self.inner.mem.write() = Some(mem);
        Ok(())
    }

    fn set_backend_req_fd(&self, backend: Backend) {
        self.inner.dax.set_backend(Some(backend));
    }

    fn stop_vring(&self, _queue_index: u32) -> io::Result<()> {
        if self.inner.running.load(Ordering::SeqCst) {
            self.stop_device("queues stopped");
        }
        Ok(())
    }

    fn handle_event(
        &self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        match vrings.get(device_event as usize) {
            Some(v) => self.process_queue(device_event as usize, v),
            None => Ok(()),
        }
    }
}
