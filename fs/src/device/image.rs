//! An image file acting as a DAX device: mapped whole, durable at `msync`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::mapping::{lock_exclusive, Mapping};
use super::{Device, DeviceKind};
use crate::error::Result;
use crate::persist;

/// An image file.
pub struct Image {
    map: Mapping,
    path: PathBuf,
}

impl Image {
    /// Opens and maps an image, taking its exclusive lock (waiting up to `wait`).
    pub fn open(path: &Path, wait: Duration) -> Result<Image> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        lock_exclusive(&file, path, wait)?;
        let len = file.metadata()?.len();
        let map = Mapping::new(file, len, 4096)?;
        Ok(Image {
            map,
            path: path.to_path_buf(),
        })
    }
}

impl Device for Image {
    fn size(&self) -> u64 {
        self.map.len
    }
    fn kind(&self) -> DeviceKind {
        DeviceKind::Image
    }
    fn align(&self) -> u64 {
        4096
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
        super::check_range(self.map.len, off, len)?;
        // SAFETY: `base` is our live mapping and the range was checked against its length.
        unsafe { persist::msync_range(self.map.base, off, len)? };
        Ok(())
    }
    fn fence(&self) {
        // msync(MS_SYNC) has completed by the time flush returns: nothing to order.
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
    fn flush_method(&self) -> &'static str {
        "msync"
    }
}

impl Image {
    /// The open file (window hosts map it themselves).
    pub fn file(&self) -> &std::fs::File {
        &self.map.file
    }
}
