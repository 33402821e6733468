//! A whole-device shared mapping with bounds-checked explicit copies, and the exclusive
//! lock that keeps two daemons off one device.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use super::check_range;
use super::sigbus;
use crate::error::{Error, Result};

/// A `MAP_SHARED` mapping of a whole file or device.
pub struct Mapping {
    pub(crate) base: *mut u8,
    pub(crate) len: u64,
    pub(crate) file: File,
    /// False when `file` is open read-only: the mapping is `PROT_READ` and every store
    /// is refused with EROFS before it touches memory.
    pub(crate) writable: bool,
    /// The SIGBUS guard of this mapping (see `sigbus`): set when the device shrank under it.
    guard: Option<&'static sigbus::Slot>,
    /// The failure has been logged.
    logged: std::sync::atomic::AtomicBool,
}

// SAFETY: the mapping is plain shared memory; all access goes through explicit copies
// with bounds checks, and concurrent copies to one range are the callers' concern exactly
// as for any shared memory (the filesystem's locks order them).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `file` shared, with the start aligned to `align` (the kernel
    /// aligns device-DAX mappings itself; `align` is checked afterwards): read-write, or
    /// read-only when `file` is open read-only.
    pub fn new(file: File, len: u64, align: u64) -> Result<Mapping> {
        if len == 0 || len > isize::MAX as u64 {
            return Err(Error::Invalid("device size"));
        }
        // SAFETY: F_GETFL on an fd we own.
        let fl = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        if fl < 0 {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        let writable = fl & libc::O_ACCMODE != libc::O_RDONLY;
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of a file we hold open; the kernel picks the
        // address. MAP_SHARED_VALIDATE is not needed: no flags beyond MAP_SHARED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        // The kernel aligns device-DAX mappings to the device alignment itself (its
        // get_unmapped_area); `align` is recorded for window hosts, not checked here.
        let _ = align;
        Ok(Mapping {
            base: p as *mut u8,
            len,
            file,
            writable,
            guard: sigbus::register(p as usize, len as usize),
            logged: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// EROFS for a read-only mapping (a store into it would fault).
    pub fn check_writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly)
        }
    }

    /// Fails the mapping when its file is now shorter than the mapping (a write(2) past
    /// the new end would grow the file again instead of faulting).
    pub fn check_size(&self) -> Result<()> {
        if self.file.metadata()?.len() < self.len {
            if let Some(g) = self.guard {
                g.fail();
            }
        }
        self.check_failed()
    }

    /// EIO once an access has faulted (the device shrank under the mapping): logged once,
    /// with the sizes.
    pub fn check_failed(&self) -> Result<()> {
        if !self.guard.is_some_and(|g| g.failed()) {
            return Ok(());
        }
        if !self.logged.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let now = self.file.metadata().map(|m| m.len()).unwrap_or(0);
            tracing::error!(
                mapped = self.len,
                now,
                "the device shrank under the mount (an access past its end raised SIGBUS): \
                 every device access now fails with EIO; unmount, restore the device, fsck"
            );
        }
        Err(Error::Errno(libc::EIO))
    }

    /// Copies out.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.len, off, buf.len() as u64)?;
        self.check_failed()?;
        // SAFETY: bounds checked above; `buf` is a distinct Rust allocation, so the ranges
        // cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off as usize), buf.as_mut_ptr(), buf.len())
        };
        self.check_failed()
    }

    /// Copies in.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        check_range(self.len, off, data.len() as u64)?;
        self.check_writable()?;
        self.check_failed()?;
        // SAFETY: bounds checked above; `data` is not part of this mapping's range as seen by
        // Rust (callers pass their own buffers).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(off as usize), data.len())
        };
        self.check_failed()
    }

    /// Zeroes a range.
    pub fn zero(&self, off: u64, len: u64) -> Result<()> {
        check_range(self.len, off, len)?;
        self.check_writable()?;
        self.check_failed()?;
        // SAFETY: bounds checked above.
        unsafe { std::ptr::write_bytes(self.base.add(off as usize), 0, len as usize) };
        self.check_failed()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(g) = self.guard {
            sigbus::unregister(g);
        }
        // SAFETY: unmapping exactly what `new` mapped; nothing refers into it any more
        // (no references into the mapping are ever handed out).
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len as usize) };
    }
}

/// Takes an exclusive `flock` on `file`, waiting up to `wait` for a previous holder (a
/// daemon that is still exiting after `umount`).
///
/// Anyone who may read the device can take a `flock` on it, and no other lock is safe from
/// that either (a reader's shared `fcntl` lock blocks a writer's exclusive one), so a
/// refusal names the holder as the kernel reports it (`/proc/locks`): a mounted device
/// ("mounted on …") and a holder that is not a sealfs process fail at once; a sealfs
/// process (a daemon still exiting) is waited for.
pub fn lock_exclusive(file: &File, path: &Path, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        // SAFETY: flock on an fd we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(Error::Io(e));
        }
        let holder = Holder::of(file);
        let why = match &holder {
            Holder::Mounted(mnt) => format!("mounted on {}", mnt.display()),
            Holder::Other(pid, comm) => {
                format!("locked by process {pid} ({comm}), which is not a sealfs process")
            }
            _ if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            // A sealfs process held it all along: EBUSY, "in use by another sealfs process".
            Holder::Sealfs(pid) => {
                tracing::error!(path = %path.display(), pid, "device is in use by another sealfs process");
                return Err(Error::Busy);
            }
            Holder::Unknown => format!(
                "locked by another process (still after {} s)",
                wait.as_secs()
            ),
        };
        tracing::error!(path = %path.display(), "device is busy: {why}");
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            why,
        )));
    }
}

/// Who holds the lock on a device, as far as can be told.
enum Holder {
    /// A sealfs mount has it as its source.
    Mounted(std::path::PathBuf),
    /// A sealfs process (by its command name, or this very process) holds the lock.
    Sealfs(u32),
    /// Another program holds it: pid and command name.
    Other(u32, String),
    /// The lock's holder is not known (gone, or not visible here).
    Unknown,
}

impl Holder {
    fn of(file: &File) -> Holder {
        use std::os::unix::fs::MetadataExt;
        let Ok(md) = file.metadata() else {
            return Holder::Unknown;
        };
        let same = |p: &Path| {
            std::fs::metadata(p).is_ok_and(|m| m.dev() == md.dev() && m.ino() == md.ino())
        };
        if let Ok(all) = crate::mounts::all() {
            if let Some(m) = all.iter().find(|m| {
                (m.fstype == "fuse" || m.fstype.starts_with("fuse."))
                    && Path::new(&m.source).is_absolute()
                    && same(Path::new(&m.source))
            }) {
                return Holder::Mounted(m.mount_point.clone());
            }
        }
        let (maj, min) = (libc::major(md.dev()), libc::minor(md.dev()));
        let want = format!("{maj:02x}:{min:02x}:{}", md.ino());
        let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
        // `1: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF`; waiters have `->` after the id.
        let pid = locks.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6 && f[1] == "FLOCK" && f[5] == want)
                .then(|| f[4].parse::<u32>().ok())
                .flatten()
        });
        let Some(pid) = pid else {
            return Holder::Unknown;
        };
        if pid == std::process::id() {
            return Holder::Sealfs(pid);
        }
        match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            Ok(c) => {
                let c = c.trim_end().to_string();
                if c.starts_with("sealfs") || c.starts_with("mount.fuse.seal") {
                    Holder::Sealfs(pid)
                } else {
                    Holder::Other(pid, c)
                }
            }
            Err(_) => Holder::Unknown,
        }
    }
}
