//! `sealfs-window`: the client library of DAX windows, for window hosts (a VMM, an RDMA
//! registration agent, a benchmark) that map file ranges of a sealfs mount directly from the
//! device, bypassing the daemon for data. It speaks to the daemon only through the ioctls of
//! `sealfs-abi`.
//!
//! A [`Window`] reserves a range of virtual addresses and splits it into slots of 2 MiB (as
//! the virtio-fs guest driver does). Touching a file range maps its slot: the library asks
//! the daemon (SETUPMAPPING ioctl) for the device extents of the range, which pins them, and
//! maps the device there with `MAP_SHARED | MAP_FIXED`; a range that is not contiguous on the
//! device maps as several pieces. When every slot is in use the least recently used one is
//! reused: one SETUPMAPPING replaces its mapping in the daemon (virtio-fs semantics, no
//! REMOVEMAPPING) and the new `MAP_FIXED` mapping replaces it here. [`Window::flush`] makes
//! writes durable (cache write-back + fence on device DAX, `msync` on an image) and tells the
//! daemon so it can drop stale page-cache pages. A conflicting truncate, punch or unlink *recalls* pinned
//! slots: the file descriptor polls `POLLPRI`, and [`Window::handle_recalls`] unmaps them and
//! acknowledges.
//!
//! What needs the filesystem's own code — finding the mount's device in the mount table,
//! checking the device holds the mounted filesystem (its superblock), the cache write-back
//! instruction — is passed in as a [`Host`]; the `sealfs` crate has one
//! (`sealfs::window::Window::open`). Only a process that may open the device itself can be a
//! window host.

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use sealfs_abi as abi;

/// What a window operation can fail with.
#[derive(Debug)]
pub enum WindowError {
    /// A system call failed (open, mmap, msync, an ioctl the daemon refused).
    Io(std::io::Error),
    /// A bad request or answer, with what was wrong (EINVAL).
    Invalid(&'static str),
    /// A write through a window opened read-only (EBADF).
    BadFd,
}

impl std::fmt::Display for WindowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowError::Io(e) => e.fmt(f),
            WindowError::Invalid(what) => write!(f, "invalid argument: {what}"),
            WindowError::BadFd => f.write_str("bad file descriptor"),
        }
    }
}

impl std::error::Error for WindowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WindowError::Io(e) => e.source(),
            _ => None,
        }
    }
}

impl From<std::io::Error> for WindowError {
    fn from(e: std::io::Error) -> WindowError {
        WindowError::Io(e)
    }
}

impl From<abi::AbiError> for WindowError {
    fn from(e: abi::AbiError) -> WindowError {
        match e {
            abi::AbiError::Invalid(what) => WindowError::Invalid(what),
            abi::AbiError::TooBig => WindowError::Invalid("argument list too long"),
        }
    }
}

use WindowError as Error;
/// The result of a window operation.
pub type Result<T> = std::result::Result<T, WindowError>;

/// What the window needs from the filesystem's own code.
pub trait Host: Send {
    /// The device path of the sealfs mount holding `path` (as its mount table entry names
    /// it).
    fn device_of(&self, path: &Path) -> Result<PathBuf>;
    /// Checks that `dev` (opened from `devpath`; `devdax` when a character device) holds the
    /// filesystem whose UUID the daemon reported. Nothing is mapped before this passes.
    fn check_device(&self, dev: &File, devpath: &Path, devdax: bool, uuid: [u8; 16]) -> Result<()>;
    /// The name of the cache write-back [`Host::writeback`] uses.
    fn writeback_name(&self) -> &'static str;
    /// Writes back the CPU caches over `[ptr, ptr + len)` and fences, so stores there are
    /// durable on a device-DAX device.
    ///
    /// # Safety
    /// `ptr .. ptr + len` must be mapped.
    unsafe fn writeback(&self, ptr: *const u8, len: usize);
}

/// Slot size: the unit a window maps (2 MiB, as virtio-fs DAX windows use).
pub const SLOT: u64 = 2 << 20;

#[derive(Clone, Copy, Debug)]
struct Slot {
    foff: u64,
    len: u64,
    stamp: u64,
    dirty: bool,
}

/// A window of mapped file ranges.
pub struct Window {
    file: File,
    dev: File,
    devdax: bool,
    base: *mut u8,
    nslots: usize,
    slots: Vec<Option<Slot>>,
    by_foff: HashMap<u64, usize>,
    clock: u64,
    /// The file size as last seen: refreshed only when a slot would reach past it, so a
    /// slot cycle costs no `fstat` round trip to the daemon.
    size: u64,
    write: bool,
    host: Box<dyn Host>,
    /// SETUPMAPPING calls made (for benchmarks).
    pub setups: u64,
    /// REMOVEMAPPING calls made.
    pub removes: u64,
}

// SAFETY: the window's memory is process-wide shared mappings; the struct owns them and all
// access goes through `&mut self` or explicit copies.
unsafe impl Send for Window {}

/// `ioctl(fd, req, buf)` for a command whose argument is exactly `buf` (its `_IOC_SIZE`):
/// another length is refused with EINVAL before the call.
pub fn ioctl(fd: &File, req: u32, buf: &mut [u8]) -> Result<()> {
    let size = ((req >> 16) & 0x3fff) as usize;
    if size != buf.len() {
        return Err(Error::Io(std::io::Error::from_raw_os_error(libc::EINVAL)));
    }
    // SAFETY: the kernel reads and writes at most _IOC_SIZE(req) bytes, which is the length
    // of `buf`, checked above; `fd` is an open descriptor.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::c_ulong, buf.as_mut_ptr()) };
    if rc < 0 {
        return Err(Error::Io(std::io::Error::last_os_error()));
    }
    Ok(())
}

impl Window {
    /// Opens `path` (a file on a sealfs mount) and reserves a window of `size` bytes
    /// (rounded up to whole slots). `write` asks for writable mappings. `host` finds and
    /// checks the device (see [`Host`]).
    pub fn open(path: &Path, size: u64, write: bool, host: Box<dyn Host>) -> Result<Window> {
        let file = OpenOptions::new().read(true).write(write).open(path)?;
        let devpath = host.device_of(path)?;
        let dev = OpenOptions::new().read(true).write(write).open(&devpath)?;
        let devdax = {
            use std::os::unix::fs::FileTypeExt;
            dev.metadata()?.file_type().is_char_device()
        };
        let mut st = vec![0u8; abi::STAT_SIZE];
        ioctl(&file, abi::IOC_STAT, &mut st)?;
        let uuid = abi::StatArg::decode(&st)?.uuid;
        host.check_device(&dev, &devpath, devdax, uuid)?;
        let nslots = size.div_ceil(SLOT).max(1) as usize;
        let len = nslots as u64 * SLOT;
        // Reserve the address range, aligned to a slot so device-DAX mappings can use huge
        // pages: over-reserve one slot and trim.
        // SAFETY: an anonymous PROT_NONE reservation; nothing refers into it yet.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                (len + SLOT) as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        let start = raw as u64;
        let aligned = start.div_ceil(SLOT) * SLOT;
        // SAFETY: trimming the unaligned head and the tail of our own reservation.
        unsafe {
            if aligned > start {
                libc::munmap(raw, (aligned - start) as usize);
            }
            let tail = start + len + SLOT - (aligned + len);
            if tail > 0 {
                libc::munmap((aligned + len) as *mut libc::c_void, tail as usize);
            }
        }
        Ok(Window {
            file,
            dev,
            devdax,
            base: aligned as *mut u8,
            nslots,
            slots: vec![None; nslots],
            by_foff: HashMap::new(),
            clock: 0,
            size: 0,
            write,
            host,
            setups: 0,
            removes: 0,
        })
    }

    /// The sealfs file descriptor: poll it for `POLLPRI` to learn of recalls.
    pub fn fd(&self) -> &File {
        &self.file
    }

    /// How [`Window::flush`] makes stores durable: the cache-line write-back instruction
    /// on a device-DAX device, `msync` on an image file.
    pub fn flush_method(&self) -> &'static str {
        if self.devdax {
            self.host.writeback_name()
        } else {
            "msync"
        }
    }

    /// Slots in the window.
    pub fn slots(&self) -> usize {
        self.nslots
    }

    fn slot_addr(&self, i: usize) -> *mut u8 {
        // SAFETY: i < nslots, inside the reservation.
        unsafe { self.base.add(i * SLOT as usize) }
    }

    /// Maps the slot holding file offset `off`; returns its index.
    ///
    /// Reusing a slot costs one SETUPMAPPING and one `mmap` per device extent: the daemon
    /// replaces the slot's old mapping (and releases its pin) in the same call, and the new
    /// `MAP_FIXED` mapping replaces the old one in the address space.
    fn ensure(&mut self, off: u64) -> Result<usize> {
        let foff = off / SLOT * SLOT;
        self.clock += 1;
        if let Some(&i) = self.by_foff.get(&foff) {
            if let Some(s) = self.slots[i].as_mut() {
                s.stamp = self.clock;
            }
            return Ok(i);
        }
        // The size is asked again only when the slot would reach past what was last seen
        // (the file may have grown), or when the daemon refuses the range (it shrank).
        if foff + SLOT > self.size {
            self.size = self.file.metadata()?.len();
            if foff >= self.size {
                return Err(Error::Invalid("offset beyond the end of the file"));
            }
        }
        let i = match self.slots.iter().position(|s| s.is_none()) {
            Some(i) => i,
            None => (0..self.nslots)
                .min_by_key(|&i| self.slots[i].map(|s| s.stamp).unwrap_or(0))
                .unwrap_or(0),
        };
        if let Some(old) = self.slots[i] {
            // Written bytes are made durable before the slot shows another range; the
            // daemon drops the file's stale page-cache pages when it replaces the mapping.
            if old.dirty {
                self.sync_slot(i, old.len)?;
            }
        }
        let extents = match self.setup(i, foff) {
            Err(Error::Io(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                let size = self.file.metadata()?.len();
                if size == self.size {
                    return Err(self.setup_failed(i, Error::Io(e)));
                }
                self.size = size;
                self.setup(i, foff)
            }
            r => r,
        };
        let (len, extents) = match extents {
            Ok(r) => r,
            Err(e) => return Err(self.setup_failed(i, e)),
        };
        let prot = libc::PROT_READ | if self.write { libc::PROT_WRITE } else { 0 };
        let mut covered = 0;
        for (f, d, l) in extents {
            if f < foff || f + l > foff + len {
                let e = Error::Invalid("daemon answered extents outside the range");
                return Err(self.setup_failed(i, e));
            }
            // SAFETY: mapping over our own reservation (MAP_FIXED), within slot i; what was
            // mapped there (the slot's old range) is replaced.
            let p = unsafe {
                libc::mmap(
                    self.slot_addr(i).add((f - foff) as usize) as *mut libc::c_void,
                    l as usize,
                    prot,
                    // Pre-fault the whole piece in one call instead of one fault per page.
                    libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE,
                    self.dev.as_raw_fd(),
                    d as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                let e = Error::Io(std::io::Error::last_os_error());
                return Err(self.setup_failed(i, e));
            }
            covered = covered.max(f - foff + l);
        }
        // The old range may have been longer than the new one (the file's last slot): what
        // the new mapping does not cover goes back to the reservation.
        if let Some(old) = self.slots[i] {
            if old.len > covered {
                self.reserve(i, covered, old.len - covered)?;
            }
            self.by_foff.remove(&old.foff);
        }
        self.slots[i] = Some(Slot {
            foff,
            len,
            stamp: self.clock,
            dirty: false,
        });
        self.by_foff.insert(foff, i);
        Ok(i)
    }

    /// SETUPMAPPING of the file range at `foff` for slot `i` (a live slot is replaced):
    /// the range's length and its extents.
    fn setup(&mut self, i: usize, foff: u64) -> Result<(u64, Vec<abi::Triple>)> {
        if foff >= self.size {
            return Err(Error::Invalid("offset beyond the end of the file"));
        }
        let unit = if self.devdax { SLOT } else { 4096 };
        let len = (self.size - foff).div_ceil(unit).min(SLOT.div_ceil(unit)) * unit;
        let len = len.min(SLOT);
        let flags = abi::MAP_READ | if self.write { abi::MAP_WRITE } else { 0 };
        let req = abi::SetupMapping {
            foffset: foff,
            len,
            flags,
            moffset: i as u64 * SLOT,
        };
        let mut buf = req.encode();
        ioctl(&self.file, abi::IOC_SETUPMAPPING, &mut buf)?;
        self.setups += 1;
        Ok((len, abi::decode_mapping_answer(&buf)?))
    }

    /// Slot `i` could not be (re)mapped: whatever it showed is unmapped and given back, so
    /// the slot is empty on both sides (the daemon may have removed its old mapping
    /// already, which makes that REMOVEMAPPING's EINVAL expected). Returns `e`.
    fn setup_failed(&mut self, i: usize, e: Error) -> Error {
        let _ = self.reserve(i, 0, SLOT);
        if let Some(old) = self.slots[i].take() {
            self.by_foff.remove(&old.foff);
        }
        let _ = self.remove(&[(i as u64 * SLOT, SLOT)]);
        e
    }

    /// Puts `[at, at+len)` of slot `i` back to the `PROT_NONE` reservation.
    fn reserve(&self, i: usize, at: u64, len: u64) -> Result<()> {
        // SAFETY: replaces our own mapping inside slot i with the reservation again.
        let p = unsafe {
            libc::mmap(
                self.slot_addr(i).add(at as usize) as *mut libc::c_void,
                len as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// REMOVEMAPPING of up to [`abi::RANGES_MAX`] slots in one call.
    fn remove(&mut self, ranges: &[(u64, u64)]) -> Result<()> {
        let mut b = abi::encode_ranges(ranges);
        self.removes += 1;
        ioctl(&self.file, abi::IOC_REMOVEMAPPING, &mut b)
    }

    /// Unmaps the slots `which` (flushing the written ones first) and gives them back to
    /// the daemon, [`abi::RANGES_MAX`] per REMOVEMAPPING.
    fn unmap_slots(&mut self, which: &[usize]) -> Result<()> {
        let mut gone = Vec::new();
        for &i in which {
            let Some(s) = self.slots[i] else {
                continue;
            };
            if s.dirty {
                self.flush_slot(i)?;
            }
            self.reserve(i, 0, SLOT)?;
            self.slots[i] = None;
            self.by_foff.remove(&s.foff);
            gone.push((i as u64 * SLOT, s.len));
        }
        for chunk in gone.chunks(abi::RANGES_MAX) {
            self.remove(chunk)?;
        }
        Ok(())
    }

    /// Makes the stores through slot `i` durable (cache write-back and fence on device DAX,
    /// `msync` on an image), without telling the daemon.
    fn sync_slot(&mut self, i: usize, len: u64) -> Result<()> {
        let p = self.slot_addr(i);
        if self.devdax {
            // SAFETY: the slot is mapped for len bytes.
            unsafe { self.host.writeback(p, len as usize) };
        } else {
            // SAFETY: msync of our own mapping.
            let rc = unsafe { libc::msync(p as *mut libc::c_void, len as usize, libc::MS_SYNC) };
            if rc != 0 {
                return Err(Error::Io(std::io::Error::last_os_error()));
            }
        }
        if let Some(s) = self.slots[i].as_mut() {
            s.dirty = false;
        }
        Ok(())
    }

    fn flush_slot(&mut self, i: usize) -> Result<()> {
        let Some(s) = self.slots[i] else {
            return Ok(());
        };
        self.sync_slot(i, s.len)?;
        let mut b = abi::encode_ranges(&[(i as u64 * SLOT, s.len)]);
        ioctl(&self.file, abi::IOC_FLUSHMAPPING, &mut b)
    }

    /// Copies file bytes at `off` into `buf` through the window.
    pub fn read_at(&mut self, mut off: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let i = self.ensure(off)?;
            let s = self.slots[i].ok_or(Error::Invalid("slot"))?;
            let within = off - s.foff;
            if within >= s.len {
                return Err(Error::Invalid("read beyond the end of the file"));
            }
            let n = ((s.len - within) as usize).min(buf.len() - done);
            // SAFETY: the slot maps s.len bytes; `buf` is a distinct allocation.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.slot_addr(i).add(within as usize),
                    buf[done..].as_mut_ptr(),
                    n,
                )
            };
            done += n;
            off += n as u64;
        }
        Ok(())
    }

    /// Copies `data` to file offset `off` through the window (within the file size).
    pub fn write_at(&mut self, mut off: u64, data: &[u8]) -> Result<()> {
        if !self.write {
            return Err(Error::BadFd);
        }
        let mut done = 0;
        while done < data.len() {
            let i = self.ensure(off)?;
            let s = self.slots[i].ok_or(Error::Invalid("slot"))?;
            let within = off - s.foff;
            if within >= s.len {
                return Err(Error::Invalid("write beyond the end of the file"));
            }
            let n = ((s.len - within) as usize).min(data.len() - done);
            // SAFETY: as in read_at.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    data[done..].as_ptr(),
                    self.slot_addr(i).add(within as usize),
                    n,
                )
            };
            if let Some(s) = self.slots[i].as_mut() {
                s.dirty = true;
            }
            done += n;
            off += n as u64;
        }
        Ok(())
    }

    /// A read-only view of `len` bytes at `off` inside one slot. Other writers of the file
    /// (through the daemon or another window) may change these bytes while the slice lives,
    /// as with any shared mapping.
    pub fn slice(&mut self, off: u64, len: usize) -> Result<&[u8]> {
        let i = self.ensure(off)?;
        let s = self.slots[i].ok_or(Error::Invalid("slot"))?;
        let within = off - s.foff;
        if within + len as u64 > s.len {
            return Err(Error::Invalid("slice crosses a slot"));
        }
        // SAFETY: mapped for s.len bytes and kept mapped while `self` is borrowed.
        Ok(unsafe { std::slice::from_raw_parts(self.slot_addr(i).add(within as usize), len) })
    }

    /// Makes writes to `[off, off+len)` durable and tells the daemon (which drops stale
    /// page-cache pages of the file).
    pub fn flush(&mut self, off: u64, len: u64) -> Result<()> {
        let first = off / SLOT * SLOT;
        let mut f = first;
        while f < off + len {
            if let Some(&i) = self.by_foff.get(&f) {
                self.flush_slot(i)?;
            }
            f += SLOT;
        }
        Ok(())
    }

    /// Unmaps the slots whose pins the daemon is recalling and acknowledges each; returns how
    /// many were given back.
    pub fn handle_recalls(&mut self) -> Result<usize> {
        let mut b = vec![0u8; abi::RANGES_SIZE];
        ioctl(&self.file, abi::IOC_GET_RECALLS, &mut b)?;
        let recalled: Vec<usize> = abi::decode_recalls(&b)?
            .into_iter()
            .map(|(moff, _len)| (moff / SLOT) as usize)
            .filter(|&i| i < self.nslots && self.slots[i].is_some())
            .collect();
        self.unmap_slots(&recalled)?;
        Ok(recalled.len())
    }

    /// Unmaps every slot.
    pub fn unmap_all(&mut self) -> Result<()> {
        let all: Vec<usize> = (0..self.nslots).collect();
        self.unmap_slots(&all)
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let _ = self.unmap_all();
        // SAFETY: releasing our whole reservation.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.nslots * SLOT as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_refuses_a_buffer_of_another_size_than_the_command_says() {
        // /dev/null answers every ioctl with ENOTTY; EINVAL shows the size check refused
        // the call before it reached the kernel.
        let f = File::open("/dev/null").unwrap();
        let mut short = vec![0u8; abi::RANGES_SIZE - 1];
        match ioctl(&f, abi::IOC_GET_RECALLS, &mut short) {
            Err(WindowError::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
            other => panic!("{other:?}"),
        }
        let mut exact = vec![0u8; abi::RANGES_SIZE];
        match ioctl(&f, abi::IOC_GET_RECALLS, &mut exact) {
            Err(WindowError::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOTTY)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn recalls_decode_as_the_daemon_fills_them() {
        let mut b = abi::encode_ranges(&[(2 * SLOT, SLOT), (0, 4096)]);
        assert_eq!(
            abi::decode_recalls(&b).unwrap(),
            vec![(2 * SLOT, SLOT), (0, 4096)]
        );
        b[0] = 0;
        assert_eq!(abi::decode_recalls(&b).unwrap(), vec![]);
        b[0] = 200;
        assert_eq!(abi::decode_recalls(&b).unwrap().len(), abi::RANGES_MAX);
    }
}
