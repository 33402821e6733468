//! FUSE over the virtqueues, served by the same fuser adapter as the host mount.
//!
//! A guest driver's session (FUSE_INIT to a device reset) is a fuser session over one end of
//! a `SOCK_SEQPACKET` socket pair: like /dev/fuse, one read is one request and one write one
//! reply. The back end writes each request it pops from a virtqueue into the other end and
//! remembers its descriptor chain by `unique`; a reader thread takes each reply, matches it
//! to its chain, writes it into guest memory and gives the chain back. Messages with
//! `unique` 0 are notifications, which virtio-fs has no queue for: they are dropped.
//!
//! The bridge also keeps what a reset must undo: the file handles the guest has open (closed
//! when its session ends, which releases its seals as a process exit does).

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use vhost_user_backend::VringRwLock;

use super::dax::Suspended;
use super::wire::{self, Chain, Header};
use super::Guest;
use crate::fuse::SealFuse;

/// Largest reply fuser sends: a 1 MiB read and its header.
const MAX_REPLY: usize = (1 << 20) + 4096;
/// Socket buffer for either direction: a whole request or reply must fit in one message.
const SOCKET_BUFFER: libc::c_int = 8 << 20;

/// A request sent to the session and not answered yet.
struct Pending {
    vring: VringRwLock,
    chain: Chain,
    header: Header,
    /// Guest window mappings set aside while this request changes the file's blocks.
    suspended: Vec<Suspended>,
}

/// One guest driver's FUSE session.
pub struct Bridge {
    guest: Guest,
    sock: OwnedFd,
    pending: Mutex<HashMap<u64, Pending>>,
    /// File handles (files and directories) the guest has open.
    handles: Mutex<HashSet<u64>>,
    /// The FUSE_INIT request, and whether the guest asked for FUSE_MAP_ALIGNMENT.
    init: Mutex<Option<(u64, bool)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    ended: AtomicBool,
}

fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair just returned these two descriptors; nothing else owns them.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&pair.0, &pair.1] {
        grow_buffers(fd)?;
    }
    Ok(pair)
}

/// Makes room for a 1 MiB request or reply in one message. Root may exceed the system's
/// limit (`*BUFFORCE`); others get at most `net.core.wmem_max`, and a larger message then
/// fails with EMSGSIZE (logged, answered with EIO).
fn grow_buffers(fd: &OwnedFd) -> io::Result<()> {
    for (force, plain) in [
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
    ] {
        let v = SOCKET_BUFFER;
        let set = |opt| {
            // SAFETY: a valid socket, an int option and its size.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            }
        };
        if set(force) != 0 && set(plain) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Bridge {
    /// Starts a FUSE session for a guest driver that is about to send FUSE_INIT.
    pub fn start(guest: Guest) -> io::Result<Arc<Bridge>> {
        let (ours, theirs) = socket_pair()?;
        let b = Arc::new(Bridge {
            guest: guest.clone(),
            sock: ours,
            pending: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashSet::new()),
            init: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            ended: AtomicBool::new(false),
        });
        let inner = &guest.inner;
        let adapter = SealFuse::with_parker(
            inner.fs.clone(),
            inner.cfg.mount.clone(),
            inner.parker.clone(),
        );
        let mut config = fuser::Config::default();
        config.n_threads = Some(inner.cfg.mount.threads);
        config.clone_fd = false;
        config.acl = fuser::SessionACL::All;
        let session = std::thread::Builder::new()
            .name("sealfs-guest".into())
            .spawn(move || {
                // The handshake reads FUSE_INIT from the socket, so it runs here.
                match fuser::Session::from_fd(adapter, theirs, fuser::SessionACL::All, config) {
                    Ok(s) => {
                        if let Err(e) = s.run() {
                            tracing::debug!(error = %e, "vhost-user: guest FUSE session ended");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "vhost-user: guest FUSE handshake failed"),
                }
            })?;
        let me = b.clone();
        let reader = std::thread::Builder::new()
            .name("sealfs-guest-replies".into())
            .spawn(move || me.replies());
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                b.shutdown();
                let _ = session.join();
                return Err(e);
            }
        };
        b.threads.lock().extend([session, reader]);
        Ok(b)
    }

    /// Sends a request to the session; its reply completes `chain`.
    pub fn forward(
        &self,
        vring: &VringRwLock,
        mut chain: Chain,
        header: Header,
        suspended: Vec<Suspended>,
    ) {
        match header.opcode {
            wire::RELEASE | wire::RELEASEDIR => {
                if let Some(fh) = wire::le64(chain.args(), 0) {
                    self.handles.lock().remove(&fh);
                }
            }
            wire::INIT => {
                let asked =
                    wire::le32(chain.args(), 12).is_some_and(|f| f & wire::INIT_MAP_ALIGNMENT != 0);
                *self.init.lock() = Some((header.unique, asked));
            }
            _ => {}
        }
        let input = chain.take_input();
        self.pending.lock().insert(
            header.unique,
            Pending {
                vring: vring.clone(),
                chain,
                header,
                suspended,
            },
        );
        // SAFETY: a valid socket and a buffer of `input.len()` bytes.
        let n = unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                input.as_ptr().cast(),
                input.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            tracing::warn!(error = %e, opcode = header.opcode, "vhost-user: cannot pass a request to the guest's session");
            if let Some(p) = self.pending.lock().remove(&header.unique) {
                self.guest.inner.dax.resume(p.suspended);
                let r = wire::reply(header.unique, Err(libc::EIO), &[]);
                self.guest.complete(&p.vring, &p.chain, &r);
            }
        }
    }

    /// The reader thread: replies back into their chains until the session ends.
    fn replies(&self) {
        let mut buf = vec![0u8; MAX_REPLY];
        loop {
            // SAFETY: a valid socket and a buffer of `buf.len()` bytes.
            let n =
                unsafe { libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if !self.ended.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "vhost-user: reading the session's replies failed");
                }
                return;
            }
            if n == 0 {
                return;
            }
            self.reply(&mut buf[..n as usize]);
        }
    }

    fn reply(&self, msg: &mut [u8]) {
        let (Some(unique), Some(error)) = (wire::le64(msg, 8), wire::le32(msg, 4)) else {
            return;
        };
        if unique == 0 {
            // A notification (cache invalidation, poll wake-up): no queue to carry it.
            return;
        }
        let Some(p) = self.pending.lock().remove(&unique) else {
            tracing::debug!(unique, "vhost-user: reply to no pending request");
            return;
        };
        if error == 0 {
            self.note_reply(&p.header, msg);
        }
        if !p.suspended.is_empty() {
            self.guest.inner.dax.resume(p.suspended);
        }
        if p.header.opcode == wire::FSYNC {
            self.guest.inner.dax.guest_synced(p.header.nodeid);
        }
        self.guest.complete(&p.vring, &p.chain, msg);
    }

    /// What a successful reply tells the bridge: new handles, the INIT answer.
    fn note_reply(&self, h: &Header, msg: &mut [u8]) {
        let body = wire::OUT_HEADER;
        match h.opcode {
            wire::OPEN | wire::OPENDIR => {
                if let Some(fh) = wire::le64(msg, body) {
                    self.handles.lock().insert(fh);
                }
            }
            wire::CREATE => {
                // fuse_entry_out (128 bytes), then fuse_open_out.
                if let Some(fh) = wire::le64(msg, body + 128) {
                    self.handles.lock().insert(fh);
                }
            }
            wire::INIT => {
                let asked = matches!(*self.init.lock(), Some((u, true)) if u == h.unique);
                // fuse_init_out: flags at 12, map_alignment (log2) at 32.
                if asked && msg.len() >= body + 34 {
                    let at = body + 12;
                    let flags = wire::le32(msg, at).unwrap_or(0) | wire::INIT_MAP_ALIGNMENT;
                    msg[at..at + 4].copy_from_slice(&flags.to_le_bytes());
                    let align = self.guest.inner.dax.unit().trailing_zeros() as u16;
                    msg[body + 32..body + 34].copy_from_slice(&align.to_le_bytes());
                }
            }
            _ => {}
        }
    }

    fn shutdown(&self) {
        self.ended.store(true, Ordering::SeqCst);
        // SAFETY: a valid socket; the session's end reads end-of-file, its threads stop.
        unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_RDWR) };
    }

    /// Ends the session: its threads stop, unanswered requests are dropped (the device
    /// was reset), and the files the guest left open are closed.
    pub fn end(&self) {
        self.shutdown();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            if t.join().is_err() {
                tracing::error!("vhost-user: a guest session thread panicked");
            }
        }
        let dropped = std::mem::take(&mut *self.pending.lock());
        for (_, p) in dropped {
            self.guest.inner.dax.resume(p.suspended);
        }
        let handles = std::mem::take(&mut *self.handles.lock());
        let n = handles.len();
        for fh in handles {
            if let Err(e) = self.guest.inner.fs.release(fh) {
                tracing::warn!(fh, error = %e, "vhost-user: closing a guest's handle failed");
            }
        }
        if n > 0 {
            tracing::info!(
                handles = n,
                "vhost-user: closed the files the guest left open"
            );
        }
    }
}
