//! Devices sealfs runs on: an image file (the embedded default), a device-DAX character
//! device, and a simulated device that records every store, flush and fence for crash
//! tests.
//!
//! A device is byte-addressable memory of a fixed size. Reads and writes are explicit
//! copies (DAX memory is shared with other mappings and hardware; nothing hands out
//! references into it). How stores become durable is decided by [`persist`], the one module that
//! flushes and fences.

pub mod devdax;
pub mod image;
mod mapping;
pub mod persist;
mod sigbus;
pub mod sim;

use std::path::Path;

use crate::error::{Error, Result};

/// What kind of device this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// A regular file mapped with `MAP_SHARED`; durable at `msync`.
    Image,
    /// A device-DAX character device; durable after cache write-back and `sfence`.
    DevDax,
    /// In-memory simulation for tests.
    Sim,
}

/// A byte-addressable device.
pub trait Device: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// The device kind.
    fn kind(&self) -> DeviceKind;
    /// Mapping alignment a window host must use (4 KiB or 2 MiB).
    fn align(&self) -> u64;
    /// Copies `buf.len()` bytes at `off` into `buf`.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<()>;
    /// Copies `data` to `off`. Not durable until flushed and fenced.
    fn write(&self, off: u64, data: &[u8]) -> Result<()>;
    /// Zeroes `[off, off+len)`. Not durable until flushed and fenced.
    fn zero(&self, off: u64, len: u64) -> Result<()>;
    /// Starts making `[off, off+len)` durable (write-back or msync).
    fn flush(&self, off: u64, len: u64) -> Result<()>;
    /// Orders earlier flushes before later stores; after it, flushed stores are durable.
    fn fence(&self);
    /// True when data writes must be flushed before `write` replies (device DAX: no page
    /// cache, CPU caches are the only volatile layer); false when `fsync` makes data
    /// durable (image files, as on ext4).
    fn durable_writes(&self) -> bool {
        self.kind() != DeviceKind::Image
    }
    /// Path the device was opened from, if any.
    fn path(&self) -> Option<&Path> {
        None
    }
    /// Name of the write-back method in use.
    fn flush_method(&self) -> &'static str;
    /// `fstat` of the open device file or image, if there is one: its owner and mode
    /// decide who may map it, whatever its path names by now.
    fn metadata(&self) -> Option<std::io::Result<std::fs::Metadata>> {
        None
    }
    /// False when the device was opened read-only: every store fails with EROFS.
    fn writable(&self) -> bool {
        true
    }
    /// The open device file or image, for a virtual machine monitor to map (the
    /// vhost-user back end passes it with each guest window mapping); none in a simulation.
    fn file(&self) -> Option<&std::fs::File> {
        None
    }
}

/// A shared device is a device: a test (or a tool) keeps an `Arc` while the filesystem owns
/// a clone in its box.
impl<D: Device + ?Sized> Device for std::sync::Arc<D> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn kind(&self) -> DeviceKind {
        (**self).kind()
    }
    fn align(&self) -> u64 {
        (**self).align()
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read(off, buf)
    }
    fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        (**self).write(off, data)
    }
    fn zero(&self, off: u64, len: u64) -> Result<()> {
        (**self).zero(off, len)
    }
    fn flush(&self, off: u64, len: u64) -> Result<()> {
        (**self).flush(off, len)
    }
    fn fence(&self) {
        (**self).fence()
    }
    fn durable_writes(&self) -> bool {
        (**self).durable_writes()
    }
    fn path(&self) -> Option<&Path> {
        (**self).path()
    }
    fn flush_method(&self) -> &'static str {
        (**self).flush_method()
    }
    fn metadata(&self) -> Option<std::io::Result<std::fs::Metadata>> {
        (**self).metadata()
    }
    fn writable(&self) -> bool {
        (**self).writable()
    }
    fn file(&self) -> Option<&std::fs::File> {
        (**self).file()
    }
}

/// Checks that `[off, off+len)` lies inside a device of `size` bytes.
pub fn check_range(size: u64, off: u64, len: u64) -> Result<()> {
    match off.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::Invalid("device range out of bounds")),
    }
}

/// Opens a device for the path: a device-DAX character device when it is one, else an
/// image file. Waits up to `wait` for another process's exclusive lock to go away.
pub fn open(path: &Path, wait: std::time::Duration) -> Result<Box<dyn Device>> {
    open_with(path, wait, true)
}

/// As [`open`]; read-only (every store fails with EROFS, nothing can write the device)
/// unless `write`: for fsck, and for a read-only mount of a device that cannot be opened
/// for writing (an image on a read-only filesystem).
pub fn open_with(path: &Path, wait: std::time::Duration, write: bool) -> Result<Box<dyn Device>> {
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::metadata(path)?;
    if md.file_type().is_char_device() {
        Ok(Box::new(devdax::DevDax::open_with(path, wait, write)?))
    } else if md.is_file() {
        Ok(Box::new(image::Image::open_with(path, wait, write)?))
    } else {
        Err(Error::Invalid(
            "not a regular file or a device-DAX character device",
        ))
    }
}
