//! Golden format fixture: an image written by format version 1 that every later build must
//! still mount, with known contents. A format change that breaks this test must bump the
//! format version and keep reading version 1 (or say why not).
//!
//! Regenerate (only on a deliberate format change) with
//! `SEALFS_WRITE_FIXTURE=1 cargo test -p sealfs --test fixture`.

mod common;

use std::sync::Arc;

use common::snapshot;
use sealfs::device::sim::SimDevice;
use sealfs::filesystem::{mkfs, MkfsOptions, MountOptions};
use sealfs::format::layout::LayoutOptions;
use sealfs::{Ctx, Filesystem};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/v1.img");

fn populate(fs: &Filesystem) {
    let c = Ctx {
        uid: 1000,
        gid: 100,
        pid: 1,
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
    if std::env::var("SEALFS_WRITE_FIXTURE").is_ok() {
        let dev = Arc::new(SimDevice::new(1 << 20, true));
        let layout = LayoutOptions {
            block_size: 0,
            log_len: 64 << 10,
            ckpt_len: 64 << 10,
        };
        mkfs(
            &*dev,
            MkfsOptions {
                layout,
                ..Default::default()
            },
        )
        .unwrap();
        let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
        populate(&fs);
        drop(fs);
        std::fs::write(PATH, dev.snapshot()).unwrap();
    }
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
