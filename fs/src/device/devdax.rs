//! A device-DAX character device (`/dev/daxX.Y`): size and alignment from sysfs, mapped
//! whole at the device alignment, durable by cache-line write-back and `sfence`.
//!
//! `read(2)`/`pread` on such a device fail with EINVAL and `msync` does nothing, so all
//! access is through the mapping. `DevDax::with_geometry` runs the same code over any file
//! (tests use an image), so the write-back path is exercised without a real device.

use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::mapping::{lock_exclusive, Mapping};
use super::persist::{self, Writeback};
use super::{check_range, Device, DeviceKind};
use crate::error::{Error, Result};

/// A device-DAX device.
pub struct DevDax {
    map: Mapping,
    align: u64,
    how: Writeback,
    path: PathBuf,
}

fn read_sysfs_u64(p: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(p).ok()?;
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// Size and alignment of a device-DAX device from sysfs.
pub fn geometry(path: &Path) -> Result<(u64, u64)> {
    let md = std::fs::metadata(path)?;
    let rdev = md.rdev();
    let (maj, min) = (libc::major(rdev), libc::minor(rdev));
    let mut dirs = vec![PathBuf::from(format!("/sys/dev/char/{maj}:{min}"))];
    if let Some(name) = path.file_name() {
        dirs.push(Path::new("/sys/bus/dax/devices").join(name));
    }
    for d in dirs {
        if let Some(size) = read_sysfs_u64(&d.join("size")) {
            let align = read_sysfs_u64(&d.join("align")).unwrap_or(2 << 20);
            return Ok((size, align));
        }
    }
    Err(Error::Invalid("not a device-DAX device (no size in sysfs)"))
}

impl DevDax {
    /// Opens a real device-DAX device.
    pub fn open(path: &Path, wait: Duration) -> Result<DevDax> {
        Self::open_with(path, wait, true)
    }

    /// As [`DevDax::open`]; read-only (stores fail with EROFS) unless `write`.
    pub fn open_with(path: &Path, wait: Duration, write: bool) -> Result<DevDax> {
        let (size, align) = geometry(path)?;
        Self::with_geometry_mode(path, size, align, wait, write)
    }

    /// Opens `path` (a device or, for tests, any file at least `size` bytes long) as a
    /// device-DAX device of the given geometry.
    pub fn with_geometry(path: &Path, size: u64, align: u64, wait: Duration) -> Result<DevDax> {
        Self::with_geometry_mode(path, size, align, wait, true)
    }

    fn with_geometry_mode(
        path: &Path,
        size: u64,
        align: u64,
        wait: Duration,
        write: bool,
    ) -> Result<DevDax> {
        if align == 0 || !align.is_power_of_two() || !size.is_multiple_of(align) || size == 0 {
            return Err(Error::Invalid("device-DAX size/alignment"));
        }
        let file = OpenOptions::new().read(true).write(write).open(path)?;
        lock_exclusive(&file, path, wait)?;
        let map = Mapping::new(file, size, align)?;
        Ok(DevDax {
            map,
            align,
            how: Writeback::detect(),
            path: path.to_path_buf(),
        })
    }
}

impl Device for DevDax {
    fn size(&self) -> u64 {
        self.map.len
    }
    fn kind(&self) -> DeviceKind {
        DeviceKind::DevDax
    }
    fn align(&self) -> u64 {
        self.align
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        self.map.read(off, buf)
    }
    fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        self.map.write(off, data)
    }
    fn zero(&self, off: u64, len: u64) -> Result<()> {
        self.map.zero(off, len)
    }
    fn flush(&self, off: u64, len: u64) -> Result<()> {
        check_range(self.map.len, off, len)?;
        // SAFETY: the range was checked against the mapping's length.
        unsafe {
            persist::writeback_range(self.how, self.map.base.add(off as usize), len as usize)
        };
        Ok(())
    }
    fn fence(&self) {
        persist::sfence();
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
    fn file(&self) -> Option<&std::fs::File> {
        Some(&self.map.file)
    }
    fn metadata(&self) -> Option<std::io::Result<std::fs::Metadata>> {
        Some(self.map.file.metadata())
    }
    fn flush_method(&self) -> &'static str {
        self.how.name()
    }
    fn writable(&self) -> bool {
        self.map.writable
    }
}
