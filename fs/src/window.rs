//! `sealfs::window`: the DAX window client (the `sealfs-window` crate) with what it needs
//! from this crate — the mount table, the superblock check of the device, the cache
//! write-back of `device::persist` — and this crate's error type.
//!
//! ```no_run
//! use sealfs::window::Window;
//! # fn main() -> sealfs::Result<()> {
//! // A 64 MiB window over a file on a sealfs mount.
//! let mut w = Window::open("/mnt/sealfs/data.bin".as_ref(), 64 << 20, true)?;
//! w.write_at(4096, b"written through the window")?;
//! w.flush(4096, 26)?;
//! let mut back = [0u8; 26];
//! w.read_at(4096, &mut back)?;
//! assert_eq!(&back, b"written through the window");
//! # Ok(()) }
//! ```

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::device::persist::{self, Writeback};
use crate::error::{Error, Result};
pub use sealfs_window::{Host, WindowError, SLOT};

impl From<WindowError> for Error {
    fn from(e: WindowError) -> Error {
        match e {
            WindowError::Io(io) => Error::Io(io),
            WindowError::Invalid(what) => Error::Invalid(what),
            WindowError::BadFd => Error::BadFd,
        }
    }
}

/// The sealfs mount holding `path` and its device: (mountpoint, device path).
pub fn mount_of(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let p = std::fs::canonicalize(path)
        .or_else(|_| std::fs::canonicalize(path.parent().unwrap_or(Path::new("."))))?;
    crate::mounts::all()?
        .into_iter()
        .filter(|m| {
            (m.fstype == "fuse" || m.fstype.starts_with("fuse.") && m.fstype.contains("sealfs"))
                && p.starts_with(&m.mount_point)
        })
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .map(|m| (m.mount_point, PathBuf::from(m.source)))
        .ok_or(Error::Invalid("not on a sealfs mount"))
}

/// Checks that `dev` (opened by the path the mount records) holds the filesystem mounted
/// there: its superblock UUID must be `want`, the one the daemon reports. Nothing is mapped
/// before this passes, so a path that names another file by now (the device was renamed
/// or replaced) is never written through.
fn check_device(dev: &File, devpath: &Path, devdax: bool, want: [u8; 16]) -> Result<()> {
    use crate::format::layout::SB_SLOT_SIZE;
    use crate::format::superblock::{pick, SB_LEN};
    let (size, head_len) = if devdax {
        let (size, align) = crate::device::devdax::geometry(devpath)?;
        (size, align.max(2 * SB_SLOT_SIZE))
    } else {
        (dev.metadata()?.len(), 2 * SB_SLOT_SIZE)
    };
    if size < 2 * SB_SLOT_SIZE {
        return Err(Error::Invalid("the mount's device holds no sealfs"));
    }
    let mut head = vec![0u8; 2 * SB_SLOT_SIZE as usize];
    if devdax {
        // read(2) does not work on device DAX: look through a read-only mapping of the
        // first alignment unit (the only length such a device maps).
        // SAFETY: a fresh shared read-only mapping of an fd we hold; unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                head_len as usize,
                libc::PROT_READ,
                libc::MAP_SHARED,
                dev.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        // SAFETY: the mapping is head_len >= head.len() bytes long.
        unsafe {
            std::ptr::copy_nonoverlapping(p as *const u8, head.as_mut_ptr(), head.len());
            libc::munmap(p, head_len as usize);
        }
    } else {
        use std::os::unix::fs::FileExt;
        dev.read_exact_at(&mut head, 0)?;
    }
    let slot = SB_SLOT_SIZE as usize;
    let found = pick(&head[..SB_LEN], &head[slot..slot + SB_LEN], size)
        .map(|p| p.current.uuid)
        .ok();
    if found != Some(want) {
        tracing::error!(device = %devpath.display(), "the mount's device path holds another filesystem");
        return Err(Error::Invalid(
            "the mount's device path does not hold the mounted filesystem (UUID differs)",
        ));
    }
    Ok(())
}

/// The [`Host`] of this crate.
struct Sealfs {
    wb: Writeback,
}

impl Host for Sealfs {
    fn device_of(&self, path: &Path) -> sealfs_window::Result<PathBuf> {
        mount_of(path).map(|(_, dev)| dev).map_err(to_window)
    }

    fn check_device(
        &self,
        dev: &File,
        devpath: &Path,
        devdax: bool,
        uuid: [u8; 16],
    ) -> sealfs_window::Result<()> {
        check_device(dev, devpath, devdax, uuid).map_err(to_window)
    }

    fn writeback_name(&self) -> &'static str {
        self.wb.name()
    }

    unsafe fn writeback(&self, ptr: *const u8, len: usize) {
        // SAFETY: the caller guarantees the range is mapped.
        unsafe { persist::writeback_range(self.wb, ptr, len) };
        persist::sfence();
    }
}

/// This crate's errors as the window reports them (I/O errors keep their errno; the rest
/// were EINVAL where the window code returns them).
fn to_window(e: Error) -> WindowError {
    match e {
        Error::Io(io) => WindowError::Io(io),
        Error::Invalid(what) => WindowError::Invalid(what),
        other => WindowError::Io(std::io::Error::from_raw_os_error(other.errno())),
    }
}

/// A window of mapped file ranges ([`sealfs_window::Window`] with this crate's [`Host`] and
/// error type).
pub struct Window(sealfs_window::Window);

impl std::ops::Deref for Window {
    type Target = sealfs_window::Window;
    fn deref(&self) -> &sealfs_window::Window {
        &self.0
    }
}

impl std::ops::DerefMut for Window {
    fn deref_mut(&mut self) -> &mut sealfs_window::Window {
        &mut self.0
    }
}

impl Window {
    /// Opens `path` (a file on a sealfs mount) and reserves a window of `size` bytes
    /// (rounded up to whole slots). `write` asks for writable mappings.
    pub fn open(path: &Path, size: u64, write: bool) -> Result<Window> {
        let host = Box::new(Sealfs {
            wb: Writeback::detect(),
        });
        Ok(Window(sealfs_window::Window::open(
            path, size, write, host,
        )?))
    }

    /// Copies file bytes at `off` into `buf` through the window.
    pub fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<()> {
        Ok(self.0.read_at(off, buf)?)
    }

    /// Copies `data` to file offset `off` through the window (within the file size).
    pub fn write_at(&mut self, off: u64, data: &[u8]) -> Result<()> {
        Ok(self.0.write_at(off, data)?)
    }

    /// A read-only view of `len` bytes at `off` inside one slot.
    pub fn slice(&mut self, off: u64, len: usize) -> Result<&[u8]> {
        Ok(self.0.slice(off, len)?)
    }

    /// Makes writes to `[off, off+len)` durable and tells the daemon.
    pub fn flush(&mut self, off: u64, len: u64) -> Result<()> {
        Ok(self.0.flush(off, len)?)
    }

    /// Unmaps the slots whose pins the daemon is recalling and acknowledges each.
    pub fn handle_recalls(&mut self) -> Result<usize> {
        Ok(self.0.handle_recalls()?)
    }

    /// Unmaps every slot.
    pub fn unmap_all(&mut self) -> Result<()> {
        Ok(self.0.unmap_all()?)
    }
}
