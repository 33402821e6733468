//! An image file acting as a DAX device: mapped whole, durable at `msync`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::mapping::{lock_exclusive, Mapping};
use super::persist;
use super::{Device, DeviceKind};
use crate::error::Result;

/// Writes of at least this many bytes use pwrite(2) instead of a copy into the mapping.
const PWRITE_MIN: usize = 64 << 10;

/// An image file.
pub struct Image {
    map: Mapping,
    path: PathBuf,
}

impl Image {
    /// Opens and maps an image, taking its exclusive lock (waiting up to `wait`).
    pub fn open(path: &Path, wait: Duration) -> Result<Image> {
        Self::open_with(path, wait, true)
    }

    /// As [`Image::open`]; read-only (stores fail with EROFS) unless `write`.
    pub fn open_with(path: &Path, wait: Duration, write: bool) -> Result<Image> {
        let file = OpenOptions::new().read(true).write(write).open(path)?;
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
        // Through the mapping: measured no slower than pread(2), even on first touch.
        self.map.read(off, buf)
    }
    fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        if data.len() < PWRITE_MIN {
            return self.map.write(off, data);
        }
        // Large writes go through pwrite(2): same page cache as the mapping (so coherent
        // with it, and msync still makes them durable), but a page the image file does not
        // have yet is filled by the copy instead of being zeroed at a fault first. On a
        // sparse image in tmpfs that halves the cost of first writes.
        super::check_range(self.map.len, off, data.len() as u64)?;
        self.map.check_writable()?;
        self.map.check_size()?;
        use std::os::unix::fs::FileExt;
        self.map.file.write_all_at(data, off)?;
        Ok(())
    }
    fn zero(&self, off: u64, len: u64) -> Result<()> {
        self.map.zero(off, len)
    }
    fn flush(&self, off: u64, len: u64) -> Result<()> {
        super::check_range(self.map.len, off, len)?;
        self.map.check_failed()?;
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
    fn file(&self) -> Option<&std::fs::File> {
        Some(&self.map.file)
    }
    fn metadata(&self) -> Option<std::io::Result<std::fs::Metadata>> {
        Some(self.map.file.metadata())
    }
    fn flush_method(&self) -> &'static str {
        "msync"
    }
    fn writable(&self) -> bool {
        self.map.writable
    }
}

impl Image {
    /// The open file (window hosts map it themselves).
    pub fn file(&self) -> &std::fs::File {
        &self.map.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_writes_are_coherent_with_the_mapping_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        std::fs::File::create(&p).unwrap().set_len(1 << 20).unwrap();
        let img = Image::open(&p, Duration::ZERO).unwrap();
        let big: Vec<u8> = (0..PWRITE_MIN * 2).map(|i| (i % 253) as u8).collect();
        img.write(4096, &big).unwrap(); // pwrite
        img.write(100, b"small").unwrap(); // through the mapping
        let mut back = vec![0u8; big.len()];
        img.read(4096, &mut back).unwrap();
        assert_eq!(back, big);
        img.flush(0, 1 << 20).unwrap();
        let file = std::fs::read(&p).unwrap();
        assert_eq!(&file[100..105], b"small");
        assert_eq!(&file[4096..4096 + big.len()], &big[..]);
        assert_eq!(
            img.write((1 << 20) - 10, &big).unwrap_err().errno(),
            libc::EINVAL,
            "out of bounds"
        );
    }
}
