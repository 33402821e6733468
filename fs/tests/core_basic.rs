//! The core API driven directly (no FUSE): create, write, read, rename, remount.

mod common;

use std::sync::Arc;

use common::mkfs_layout;

use common::Failed;
use sealfs::device::sim::SimDevice;
use sealfs::device::Device;
use sealfs::filesystem::{mkfs, MkfsOptions, MountOptions};
use sealfs::{Ctx, Error, Filesystem};

fn fresh(size: u64) -> (Arc<SimDevice>, Filesystem) {
    let dev = Arc::new(SimDevice::new(size, false));
    mkfs(&*dev, MkfsOptions::default()).unwrap();
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
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
    fs.rename(d.ino, b"file", 1, b"moved", 0, Ctx::root())
        .unwrap();
    assert!(matches!(fs.lookup(d.ino, b"file"), Err(Error::NotFound)));
    fs.release(fh).unwrap();
    fs.fsync(f.ino, false).unwrap();
    drop(fs);
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    let st = fs.lookup(1, b"moved").unwrap();
    assert_eq!(st.attr.size, 100_010);
    assert_eq!(&fs.read(st.ino, 10, 200_000).unwrap()[..], &data[..]);
    fs.checkpoint().unwrap();
    fs.unlink(1, b"moved").unwrap();
    fs.rmdir(1, b"dir").unwrap();
    let free = fs.stats().free_blocks;
    drop(fs);
    let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    assert_eq!(fs.stats().free_blocks, free);
    assert_eq!(fs.stats().free_blocks, fs.stats().total_blocks);
}

/// The device-DAX code path (sysfs-free geometry, mapping, cache-line write-back + sfence)
/// on an ordinary file: mkfs, write, remount, read back.
#[test]
fn devdax_code_path_on_an_image() {
    use sealfs::device::devdax::DevDax;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dax.img");
    std::fs::File::create(&p)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let dev = DevDax::with_geometry(&p, 64 << 20, 2 << 20, Duration::ZERO).unwrap();
    assert!(dev.durable_writes());
    assert!(["clwb", "clflushopt", "clflush"].contains(&dev.flush_method()));
    mkfs(&dev, MkfsOptions::default()).unwrap();
    let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    assert_eq!(
        fs.layout().data_off % (2 << 20),
        0,
        "data area must start 2 MiB-aligned"
    );
    let (st, fh) = fs
        .create(1, b"f", 0o644, libc::O_RDWR, Ctx::root())
        .unwrap();
    let data = vec![0x5a; 3 << 20];
    fs.write(st.ino, 4096, &data).unwrap();
    fs.release(fh).unwrap();
    drop(fs);
    // A second opener waits for the first's lock; here the first is gone.
    let dev = DevDax::with_geometry(&p, 64 << 20, 2 << 20, Duration::from_secs(1)).unwrap();
    let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    let st = fs.lookup(1, b"f").unwrap();
    assert_eq!(st.attr.size, 4096 + (3 << 20));
    assert_eq!(fs.read(st.ino, 4096, 3 << 20).unwrap(), data);
    assert_eq!(fs.read(st.ino, 0, 4096).unwrap(), vec![0; 4096]);
}

/// Two openers of one image: the second waits (bounded) for the first's exclusive lock and
/// then fails with EBUSY, never sharing the device.
#[test]
fn second_opener_is_refused_while_the_first_holds_the_device() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.img");
    std::fs::File::create(&p).unwrap().set_len(8 << 20).unwrap();
    let first = sealfs::device::open(&p, Duration::ZERO).unwrap();
    let t = Instant::now();
    let second = sealfs::device::open(&p, Duration::from_millis(200));
    assert!(matches!(second, Err(Error::Busy)));
    assert!(t.elapsed() >= Duration::from_millis(200));
    drop(first);
    assert!(sealfs::device::open(&p, Duration::ZERO).is_ok());
}

/// Filling the device: short writes then ENOSPC; every byte written reads back, and the
/// space returns on unlink.
#[test]
fn full_device_keeps_every_written_byte() {
    let (dev, fs) = fresh(8 << 20);
    let c = Ctx::root();
    let total = fs.stats().free_blocks;
    let (f, fh) = fs.create(1, b"fill", 0o644, libc::O_RDWR, c).unwrap();
    let mut off = 0u64;
    let mut i = 0u8;
    let err = loop {
        let chunk = vec![i; 300_000];
        match fs.write(f.ino, off, &chunk) {
            Ok(n) => {
                assert!(n > 0);
                off += n as u64;
                i = i.wrapping_add(1);
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err.errno(), libc::ENOSPC);
    assert_eq!(fs.stats().free_blocks, 0);
    assert_eq!(fs.getattr(f.ino).unwrap().attr.size, off);
    fs.fsync(f.ino, false).unwrap();
    fs.release(fh).unwrap();
    drop(fs);
    let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    let back = fs.read(f.ino, 0, off as u32).unwrap();
    for (k, b) in back.iter().enumerate() {
        assert_eq!(*b, (k / 300_000) as u8, "byte {k}");
    }
    fs.unlink(1, b"fill").unwrap();
    assert_eq!(fs.stats().free_blocks, total);
}

/// When the metadata would outgrow a checkpoint area, new names get ENOSPC, deletions keep
/// working, and the log never jams.
#[test]
fn metadata_area_full_refuses_growth_but_not_deletion() {
    let dev = Arc::new(SimDevice::new(4 << 20, false));
    let layout = sealfs::format::layout::LayoutOptions {
        block_size: 0,
        log_len: 64 << 10,
        ckpt_len: 64 << 10,
    };
    mkfs_layout(&*dev, layout);
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    let c = Ctx::root();
    let mut n = 0;
    let err = loop {
        match fs.mknod(
            1,
            format!("a-fairly-long-file-name-{n:06}").as_bytes(),
            libc::S_IFREG | 0o644,
            0,
            c,
        ) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err.errno(), libc::ENOSPC);
    assert!(n > 100, "only {n} files fit");
    for i in 0..n {
        fs.unlink(1, format!("a-fairly-long-file-name-{i:06}").as_bytes())
            .unwrap();
    }
    fs.mknod(1, b"again", libc::S_IFREG | 0o644, 0, c).unwrap();
    drop(fs);
    let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    assert_eq!(fs.stats().inodes, 2);
}

#[test]
fn device_numbers_are_32_bits_and_survive_replay_and_checkpoint() {
    let (dev, fs) = fresh(16 << 20);
    let c = Ctx::root();
    let wide = fs.mknod(1, b"wide", libc::S_IFCHR | 0o600, 1 << 40, c);
    assert_eq!(wide.unwrap_err().errno(), libc::EINVAL);
    assert!(matches!(fs.lookup(1, b"wide"), Err(Error::NotFound)));
    let rdev = 0xfff0_0123u64; // major 0xfff, minor 0xf0123 in the kernel's 32-bit encoding
    let st = fs.mknod(1, b"chr", libc::S_IFCHR | 0o600, rdev, c).unwrap();
    assert_eq!(st.attr.rdev as u64, rdev);
    let fifo = fs.mknod(1, b"fifo", libc::S_IFIFO | 0o600, 77, c).unwrap();
    assert_eq!(fifo.attr.rdev, 0, "only device nodes keep a device number");
    drop(fs);
    // Replayed from the log ...
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    assert_eq!(fs.lookup(1, b"chr").unwrap().attr.rdev as u64, rdev);
    fs.checkpoint().unwrap();
    drop(fs);
    // ... and loaded from a checkpoint.
    let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    assert_eq!(fs.lookup(1, b"chr").unwrap().attr.rdev as u64, rdev);
}
