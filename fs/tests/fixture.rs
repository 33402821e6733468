//! Golden format fixture: an image written by format version 1 that every later build must
//! still mount, with known contents, and upgrade (from version 1 and, with its superblocks
//! relabelled, from version 2) to the current version at a read-write mount. A format change that breaks this test must bump the
//! format version and keep reading version 1 (or say why not).
//!
//! The image was made by the version 1 build with `populate` below on a 1 MiB simulated
//! device (64 KiB log and checkpoint areas); builds since version 2 cannot write it again.

mod common;

use std::sync::Arc;

use common::snapshot;
use sealfs::device::sim::{CrashState, Event, SimDevice, Survival};
use sealfs::filesystem::seals::Populate;
use sealfs::filesystem::MountOptions;
use sealfs::format::layout::SB_SLOT_SIZE;
use sealfs::format::superblock::FORMAT_VERSION;
use sealfs::format::Superblock;
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
    fs.rename(1, b"hard", 1, b"hard2", 0, Ctx::root()).unwrap();
    fs.set_sealed_map(g.ino, Populate::Fill, Ctx::root())
        .unwrap();
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
fn read_write_mount_upgrades_version_1_to_the_current_version() {
    let img = std::fs::read(PATH).expect("tests/fixtures/v1.img");
    let slots = [0usize, SB_SLOT_SIZE as usize];
    assert_eq!(
        slots.map(|s| version_of(&img, s)),
        [1, 1],
        "the fixture is version 1 in both slots"
    );
    upgrades(img, 1);
}

/// A version 2 image: the fixture with both slots saying version 2 (version 2 only added
/// a record type the fixture's log does not hold).
fn version_2_image() -> Vec<u8> {
    let mut img = std::fs::read(PATH).expect("tests/fixtures/v1.img");
    for at in [0, SB_SLOT_SIZE as usize] {
        let mut sb = Superblock::decode(&img[at..at + 256], img.len() as u64).unwrap();
        sb.version = 2;
        img[at..at + 256].copy_from_slice(&sb.encode());
    }
    img
}

#[test]
fn read_write_mount_upgrades_version_2_to_the_current_version() {
    upgrades(version_2_image(), 2);
}

fn version_of(img: &[u8], slot: usize) -> u32 {
    u32::from_le_bytes(img[slot + 8..slot + 12].try_into().unwrap())
}

/// `img` (format `from`) mounts read-only unchanged; a read-write mount upgrades it to
/// the current version with its contents, and from then on an erased log is refused.
fn upgrades(img: Vec<u8>, from: u32) {
    let slots = [0usize, SB_SLOT_SIZE as usize];
    // A read-only mount changes nothing.
    let dev = Arc::new(SimDevice::from_image(img.clone(), true));
    let rep = sealfs::fsck::check(&*dev);
    assert!(rep.clean(), "{:?}", rep.problems);
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions { read_only: true }).unwrap();
    assert_eq!(fs.superblock().version, from);
    let before = snapshot(&fs);
    drop(fs);
    assert_eq!(dev.snapshot(), img, "a read-only mount wrote to the device");

    // A read-write mount checkpoints in the old version (the log's records all go into
    // the checkpoint), then in the current one (which writes the log header).
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    let sb = fs.superblock();
    assert_eq!(sb.version, FORMAT_VERSION);
    assert_eq!(snapshot(&fs), before);
    fs.rename(1, b"hard2", 1, b"hard3", 0, Ctx::root()).unwrap();
    drop(fs);
    let after = dev.snapshot();
    let newer = sb.slot() as usize;
    assert_eq!(version_of(&after, slots[newer]), FORMAT_VERSION);
    assert_eq!(
        version_of(&after, slots[1 - newer]),
        from,
        "the other slot holds the checkpoint in the old version"
    );
    let rep = sealfs::fsck::check(&*dev);
    assert!(rep.clean(), "{:?}", rep.problems);
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions { read_only: true }).unwrap();
    assert_eq!(fs.superblock().version, FORMAT_VERSION);
    let t = snapshot(&fs);
    assert_eq!(t[&b"/hard3"[..]].ino, before[&b"/hard2"[..]].ino);
    assert_eq!(t[&b"/dir/hello.txt"[..]].content, b"hello, sealfs v1\n");
    drop(fs);

    // Now the log must prove it belongs to the checkpoint: erased, it is refused.
    let l = sb.layout;
    let mut erased = dev.snapshot();
    erased[l.log_off as usize..(l.log_off + l.log_len) as usize].fill(0);
    let dev = SimDevice::from_image(erased, true);
    let rep = sealfs::fsck::check(&dev);
    assert!(rep.unloadable, "{:?}", rep.problems);
    assert!(rep.problems[0].contains("log header"), "{:?}", rep.problems);
}

/// A crash at any point of the upgrade leaves an image that fsck calls clean and that
/// mounts (read-only, and read-write, finishing the upgrade) with the fixture's contents.
#[test]
fn a_crash_during_the_upgrade_loses_nothing() {
    for (from, img) in [
        (1, std::fs::read(PATH).expect("tests/fixtures/v1.img")),
        (2, version_2_image()),
    ] {
        let dev = Arc::new(SimDevice::from_image(img.clone(), true));
        let fs =
            Filesystem::mount(Box::new(dev.clone()), MountOptions { read_only: true }).unwrap();
        let want = snapshot(&fs);
        drop(fs);
        dev.start_trace();
        let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
        drop(fs);
        let trace = dev.take_trace();
        let mut cs = CrashState::new(img.clone());
        let mut cuts = 0;
        for (k, e) in trace.iter().enumerate() {
            cs.step(e);
            if !matches!(e, Event::Flush { .. } | Event::Fence) {
                continue;
            }
            for how in [Survival::Dropped, Survival::Kept, Survival::Torn(k as u64)] {
                cuts += 1;
                let cut = Arc::new(SimDevice::from_image(cs.image(how), true));
                let rep = sealfs::fsck::check(&*cut);
                assert!(
                    rep.clean(),
                    "version {from}, cut at event {k} ({how:?}): {:?}",
                    rep.problems
                );
                for read_only in [true, false] {
                    let fs = Filesystem::mount(Box::new(cut.clone()), MountOptions { read_only })
                        .unwrap_or_else(|e| panic!("version {from}, cut at {k} ({how:?}): {e}"));
                    assert_eq!(snapshot(&fs), want, "version {from}, cut at {k} ({how:?})");
                }
            }
        }
        assert!(
            cuts > 6,
            "the upgrade wrote too little to be traced: {cuts}"
        );
    }
}
