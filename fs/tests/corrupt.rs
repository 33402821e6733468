//! Damaged images never panic fsck or mount: bit flips, random bytes and zeroed spans in
//! every metadata region (both superblock slots, the checkpoint, the log) and truncated
//! images. Where fsck calls an image clean, it must mount to the state after some prefix of
//! the operations that built it (damage to the very last log record is indistinguishable
//! from a crash during it; anything earlier must be reported).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use common::{mkfs_layout, snapshot, Rng, Tree};
use sealfs::device::sim::SimDevice;
use sealfs::filesystem::MountOptions;
use sealfs::format::layout::LayoutOptions;
use sealfs::{Ctx, Filesystem};

const SIZE: u64 = 4 << 20;

/// Builds an image with a checkpoint and a log tail; returns it with the tree after each
/// operation.
fn build() -> (Vec<u8>, Vec<Tree>) {
    let dev = Arc::new(SimDevice::new(SIZE, true));
    let layout = LayoutOptions {
        block_size: 0,
        log_len: 64 << 10,
        ckpt_len: 256 << 10,
    };
    mkfs_layout(&*dev, layout);
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    let c = Ctx::root();
    let mut states = vec![snapshot(&fs)];
    let mut r = Rng(7);
    for i in 0..40u32 {
        match i % 5 {
            0 => {
                fs.mkdir(1, format!("d{i}").as_bytes(), 0o755, c).unwrap();
            }
            1 | 2 => {
                let (st, fh) = fs
                    .create(1, format!("f{i}").as_bytes(), 0o644, libc::O_RDWR, c)
                    .unwrap();
                let (off, n) = (r.below(9000), 1 + r.below(20000) as usize);
                fs.write(st.ino, off, &r.bytes(n)).unwrap();
                fs.setxattr(st.ino, b"user.x", &r.bytes(40), 0).unwrap();
                fs.release(fh).unwrap();
            }
            3 => fs
                .rename(
                    1,
                    format!("f{}", i - 1).as_bytes(),
                    1,
                    format!("g{i}").as_bytes(),
                    0,
                    Ctx::root(),
                )
                .unwrap(),
            _ => {
                let d = fs.lookup(1, format!("d{}", i - 4).as_bytes()).unwrap();
                fs.symlink(d.ino, b"link", b"../g3", c).unwrap();
            }
        }
        if i == 20 {
            fs.checkpoint().unwrap();
        }
        states.push(snapshot(&fs));
    }
    drop(fs);
    (dev.snapshot(), states)
}

#[derive(Debug)]
enum Damage {
    Flip(u64, u8),
    Random(u64, usize, u64),
    Zero(u64, usize),
    Truncate(u64),
}

fn apply(img: &[u8], d: &Damage) -> Vec<u8> {
    let mut v = img.to_vec();
    match *d {
        Damage::Flip(at, bit) => v[at as usize] ^= 1 << bit,
        Damage::Random(at, n, seed) => {
            let b = Rng(seed).bytes(n);
            let end = (at as usize + n).min(v.len());
            v[at as usize..end].copy_from_slice(&b[..end - at as usize]);
        }
        Damage::Zero(at, n) => {
            let end = (at as usize + n).min(v.len());
            v[at as usize..end].fill(0);
        }
        Damage::Truncate(len) => v.truncate(len as usize),
    }
    v
}

#[test]
fn damaged_images_never_panic_and_clean_means_intact() {
    let (img, states) = build();
    let probe = SimDevice::from_image(img.clone(), true);
    let pick = sealfs::journal::replay::read_superblocks(&probe).unwrap();
    let sb = pick.current;
    let l = sb.layout;
    let ckpt = (l.ckpt_off[sb.active_ckpt as usize], sb.ckpt_used);
    let regions: [(u64, u64); 5] = [
        (0, 256),
        (4096, 256),
        (l.log_off, 16 << 10),
        ckpt,
        (l.ckpt_off[1 - sb.active_ckpt as usize], 4096),
    ];
    let iterations: u64 = std::env::var("SEALFS_CORRUPT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut r = Rng(11);
    let (mut clean, mut refused) = (0, 0);
    for it in 0..iterations {
        let (start, len) = regions[(it % regions.len() as u64) as usize];
        let at = start + r.below(len);
        let d = match r.below(10) {
            0..=5 => Damage::Flip(at, r.below(8) as u8),
            6 | 7 => Damage::Random(at, 1 + r.below(64) as usize, r.next()),
            8 => Damage::Zero(at, 1 + r.below(512) as usize),
            _ => Damage::Truncate(r.below(img.len() as u64)),
        };
        let bad = apply(&img, &d);
        let res = catch_unwind(AssertUnwindSafe(|| {
            let dev = Arc::new(SimDevice::from_image(bad, true));
            let rep = sealfs::fsck::check(&*dev);
            let mounted =
                Filesystem::mount(Box::new(dev.clone()), MountOptions { read_only: true });
            let tree = mounted.as_ref().ok().map(snapshot);
            (rep, mounted.is_ok(), tree)
        }));
        let (rep, mounted, tree) = match res {
            Ok(x) => x,
            Err(_) => panic!("panic on damage {d:?} (iteration {it})"),
        };
        if rep.clean() {
            clean += 1;
            assert!(mounted, "fsck clean but mount failed after {d:?}");
            let tree = tree.unwrap();
            assert!(
                states.contains(&tree),
                "fsck clean but the tree is not a prefix state after {d:?}"
            );
        } else {
            refused += 1;
        }
    }
    println!("corruption: {iterations} damaged images, {refused} refused with a clear error, {clean} clean and intact");
}

#[test]
fn a_torn_superblock_slot_beside_a_valid_one_is_a_note_not_a_problem() {
    let (img, states) = build();
    let probe = SimDevice::from_image(img.clone(), true);
    let cur = sealfs::journal::replay::read_superblocks(&probe)
        .unwrap()
        .current;
    // Tear the slot that is *not* current: everything mount needs is intact.
    let other = (1 - cur.slot()) * 4096;
    let bad = apply(&img, &Damage::Random(other + 20, 30, 5));
    let dev = Arc::new(SimDevice::from_image(bad, true));
    let rep = sealfs::fsck::check(&*dev);
    assert!(rep.clean(), "{:?}", rep.problems);
    assert!(
        rep.notes.iter().any(|n| n.contains("superblock slot")),
        "{:?}",
        rep.notes
    );
    let fs = Filesystem::mount(Box::new(dev), MountOptions { read_only: true }).unwrap();
    assert_eq!(&snapshot(&fs), states.last().unwrap());
}

#[test]
fn damage_in_the_middle_of_the_log_is_reported() {
    let (img, _) = build();
    let probe = SimDevice::from_image(img.clone(), true);
    let sb = sealfs::journal::replay::read_superblocks(&probe)
        .unwrap()
        .current;
    let first = sb.layout.log_off + sealfs::format::log_header::records_start(sb.version);
    // The first record after the checkpoint: flip one payload bit.
    let bad = apply(&img, &Damage::Flip(first + 30, 3));
    let rep = sealfs::fsck::check(&SimDevice::from_image(bad, true));
    assert!(!rep.clean());
    assert!(
        rep.problems[0].contains("follows a damaged or missing record"),
        "{:?}",
        rep.problems
    );
}
