//! The core API driven directly (no FUSE): create, write, read, rename, remount.

use std::sync::Arc;

use sealfs::device::sim::SimDevice;
use sealfs::device::Device;
use sealfs::filesystem::{mkfs, MkfsOptions, MountOptions};
use sealfs::{Ctx, Error, Filesystem};

/// A device wrapper so one SimDevice can be remounted.
struct Shared(Arc<SimDevice>);
impl Device for Shared {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn kind(&self) -> sealfs::device::DeviceKind {
        self.0.kind()
    }
    fn align(&self) -> u64 {
        self.0.align()
    }
    fn read(&self, o: u64, b: &mut [u8]) -> sealfs::Result<()> {
        self.0.read(o, b)
    }
    fn write(&self, o: u64, d: &[u8]) -> sealfs::Result<()> {
        self.0.write(o, d)
    }
    fn zero(&self, o: u64, l: u64) -> sealfs::Result<()> {
        self.0.zero(o, l)
    }
    fn flush(&self, o: u64, l: u64) -> sealfs::Result<()> {
        self.0.flush(o, l)
    }
    fn fence(&self) {
        self.0.fence()
    }
    fn durable_writes(&self) -> bool {
        self.0.durable_writes()
    }
    fn flush_method(&self) -> &'static str {
        "sim"
    }
}

fn fresh(size: u64) -> (Arc<SimDevice>, Filesystem) {
    let dev = Arc::new(SimDevice::new(size, false));
    mkfs(&*dev, MkfsOptions::default()).unwrap();
    let fs = Filesystem::mount(Box::new(Shared(dev.clone())), MountOptions::default()).unwrap();
    (dev, fs)
}

#[test]
fn create_write_read_remount() {
    let (dev, fs) = fresh(16 << 20);
    let c = Ctx::root();
    let d = fs.mkdir(1, b"dir", 0o755, c).unwrap();
    let (f, fh) = fs.create(d.ino, b"file", 0o644, libc::O_RDWR, c).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(fs.write(f.ino, 10, &data).unwrap(), data.len() as u32);
    let back = fs.read(f.ino, 0, 200_000).unwrap();
    assert_eq!(back.len(), 100_010);
    assert_eq!(&back[..10], &[0; 10]);
    assert_eq!(&back[10..], &data[..]);
    fs.rename(d.ino, b"file", 1, b"moved", 0).unwrap();
    assert!(matches!(fs.lookup(d.ino, b"file"), Err(Error::NotFound)));
    fs.release(fh).unwrap();
    fs.fsync(f.ino, false).unwrap();
    drop(fs);
    let fs = Filesystem::mount(Box::new(Shared(dev.clone())), MountOptions::default()).unwrap();
    let st = fs.lookup(1, b"moved").unwrap();
    assert_eq!(st.attr.size, 100_010);
    assert_eq!(&fs.read(st.ino, 10, 200_000).unwrap()[..], &data[..]);
    fs.checkpoint().unwrap();
    fs.unlink(1, b"moved").unwrap();
    fs.rmdir(1, b"dir").unwrap();
    let free = fs.stats().free_blocks;
    drop(fs);
    let fs = Filesystem::mount(Box::new(Shared(dev)), MountOptions::default()).unwrap();
    assert_eq!(fs.stats().free_blocks, free);
    assert_eq!(fs.stats().free_blocks, fs.stats().total_blocks);
}
