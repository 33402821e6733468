//! Golden format fixture: an image written by format version 1 that every later build must
//! still mount, with known contents. A format change that breaks this test must bump the
//! format version and keep reading version 1 (or say why not).
//!
//! The image was made by the version 1 build with `populate` below on a 1 MiB simulated
//! device (64 KiB log and checkpoint areas); builds since version 2 cannot write it again.

mod common;

use std::sync::Arc;

use common::snapshot;
use sealfs::device::sim::SimDevice;
use sealfs::filesystem::MountOptions;
use sealfs::format::layout::SB_SLOT_SIZE;
use sealfs::format::superblock::FORMAT_VERSION;
use sealfs::{Ctx, Filesystem};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/v1.img");

/// What the version 1 build did to make the fixture (kept as its description).
#[allow(dead_code)]
fn populate(fs: &Filesystem) {
    let c = Ctx {
        uid: 1000,
        gid: 100,
        pid: 1,
        umask: 0,
    };
    let d = fs.mkdir(1, b"dir", 0o750, c).unwrap();
    let (f, fh) = fs
        .create(d.ino, b"hello.txt", 0o644, libc::O_RDWR, c)
        .unwrap();
    fs.write(f.ino, 0, b"hello, sealfs v1\n").unwrap();
    fs.setxattr(f.ino, b"user.fixture", b"yes", 0).unwrap();
    fs.release(fh).unwrap();
    let (g, gh) = fs.create(1, b"sparse", 0o600, libc::O_RDWR, c).unwrap();
    fs.write(g.ino, 100_000, &[0xab; 5000]).unwrap();
    fs.release(gh).unwrap();
    fs.symlink(1, b"link", b"dir/hello.txt", c).unwrap();
    fs.link(f.ino, 1, b"hard").unwrap();
    fs.checkpoint().unwrap();
    fs.mknod(1, b"fifo", libc::S_IFIFO | 0o644, 0, c).unwrap();
    fs.rename(1, b"hard", 1, b"hard2", 0).unwrap();
    fs.set_sealed_map(g.ino, true, Ctx::root()).unwrap();
}

#[test]
fn version_1_fixture_still_mounts_with_its_contents() {
    let img = std::fs::read(PATH).expect("tests/fixtures/v1.img");
    let dev = Arc::new(SimDevice::from_image(img, true));
    let rep = sealfs::fsck::check(&*dev);
    assert!(rep.clean(), "{:?}", rep.problems);
    let fs = Filesystem::mount(Box::new(dev), MountOptions { read_only: true }).unwrap();
    let t = snapshot(&fs);
    let hello = &t[&b"/dir/hello.txt"[..]];
    assert_eq!(hello.content, b"hello, sealfs v1\n");
    assert_eq!(
        (hello.mode, hello.uid, hello.gid, hello.nlink),
        (0o100644, 1000, 100, 2)
    );
    assert_eq!(hello.xattrs[&b"user.fixture"[..]], b"yes");
    assert_eq!(t[&b"/hard2"[..]].ino, hello.ino);
    assert_eq!(t[&b"/link"[..]].target, b"dir/hello.txt");
    assert_eq!(t[&b"/fifo"[..]].mode, 0o010644);
    let sparse = &t[&b"/sparse"[..]];
    assert_eq!(sparse.size, 105_000);
    assert!(sparse.content[..100_000].iter().all(|&b| b == 0));
    assert!(sparse.content[100_000..].iter().all(|&b| b == 0xab));
    assert!(
        fs.sealed_map(sparse.ino).unwrap(),
        "the permanent seal is persisted"
    );
    assert_eq!(t[&b"/dir"[..]].mode, 0o040750);
}

#[test]
fn read_write_mount_upgrades_version_1_to_2() {
    let img = std::fs::read(PATH).expect("tests/fixtures/v1.img");
    let version_of =
        |img: &[u8], slot: usize| u32::from_le_bytes(img[slot + 8..slot + 12].try_into().unwrap());
    let slots = [0usize, SB_SLOT_SIZE as usize];
    assert_eq!(
        slots.map(|s| version_of(&img, s)),
        [1, 1],
        "the fixture is version 1 in both slots"
    );
    // A read-only mount changes nothing.
    let dev = Arc::new(SimDevice::from_image(img.clone(), true));
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions { read_only: true }).unwrap();
    assert_eq!(fs.superblock().version, 1);
    drop(fs);
    assert_eq!(dev.snapshot(), img, "a read-only mount wrote to the device");

    // A read-write mount writes a version 2 slot with the next generation before anything
    // else, and the filesystem keeps its contents.
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    let sb = fs.superblock();
    assert_eq!(sb.version, FORMAT_VERSION);
    let before = snapshot(&fs);
    fs.rename(1, b"hard2", 1, b"hard3", 0).unwrap();
    drop(fs);
    let after = dev.snapshot();
    let newer = sb.slot() as usize;
    assert_eq!(version_of(&after, slots[newer]), 2);
    assert_eq!(
        version_of(&after, slots[1 - newer]),
        1,
        "the older slot stays as it was"
    );
    let rep = sealfs::fsck::check(&*dev);
    assert!(rep.clean(), "{:?}", rep.problems);
    let fs = Filesystem::mount(Box::new(dev), MountOptions { read_only: true }).unwrap();
    assert_eq!(fs.superblock().version, 2);
    let t = snapshot(&fs);
    assert_eq!(t[&b"/hard3"[..]].ino, before[&b"/hard2"[..]].ino);
    assert_eq!(t[&b"/dir/hello.txt"[..]].content, b"hello, sealfs v1\n");
}
