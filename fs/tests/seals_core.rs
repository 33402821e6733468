//! Seals through the core API: exact errors for each seal kind and each extent-map change,
//! recall and revocation, release on last close, and the permanent seal across remounts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Failed;
use sealfs::device::sim::SimDevice;
use sealfs::filesystem::seals::{Populate, SealMode, SealOptions};
use sealfs::filesystem::{mkfs, MkfsOptions, MountOptions};
use sealfs::{Ctx, Filesystem, Stop, Wait};

fn setup(timeout_ms: u64) -> (Arc<SimDevice>, Filesystem, u64) {
    let dev = Arc::new(SimDevice::new(16 << 20, true));
    mkfs(&*dev, MkfsOptions::default()).unwrap();
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    fs.configure_seals(SealOptions {
        max_seals: 4,
        max_seals_per_user: 6,
        break_timeout: Duration::from_millis(timeout_ms),
    });
    let (st, fh) = fs
        .create(1, b"f", 0o644, libc::O_RDWR, Ctx::root())
        .unwrap();
    fs.write(st.ino, 0, &vec![7u8; 3 * 4096 + 100]).unwrap();
    fs.release(fh).unwrap();
    (dev, fs, st.ino)
}

fn ctx(pid: u32) -> Ctx {
    Ctx {
        uid: 0,
        gid: 0,
        pid,
        umask: 0,
    }
}

#[test]
fn temporary_seal_refuses_map_changes_with_etxtbsy_and_allows_in_place_writes() {
    let (_d, fs, ino) = setup(5000);
    let fh = fs.open(ino, libc::O_RDWR, ctx(10)).unwrap();
    fs.seal(fh, 0, 0, SealMode::Temporary, Populate::No, ctx(10))
        .unwrap();
    assert_eq!(
        fs.truncate(ino, 10, Ctx::root()).unwrap_err().errno(),
        libc::ETXTBSY
    );
    assert_eq!(
        fs.write(ino, 20_000, b"x").unwrap_err().errno(),
        libc::ETXTBSY,
        "extending write"
    );
    assert_eq!(
        fs.fallocate(ino, 0, 4096, 3).unwrap_err().errno(),
        libc::ETXTBSY,
        "punch"
    );
    assert_eq!(
        fs.unlink(1, b"f").unwrap_err().errno(),
        libc::ETXTBSY,
        "unlink of the last link"
    );
    // Not extent-map changes:
    assert_eq!(fs.write(ino, 5, b"inplace").unwrap(), 7);
    assert_eq!(&fs.read(ino, 5, 7).unwrap(), b"inplace");
    fs.link(ino, 1, b"g").unwrap();
    fs.unlink(1, b"g").unwrap();
    fs.rename(1, b"f", 1, b"f2", 0, Ctx::root()).unwrap();
    fs.rename(1, b"f2", 1, b"f", 0, Ctx::root()).unwrap();
    assert_eq!(fs.seals_of(ino).len(), 1);
    fs.unseal(fh, 0, 0).unwrap();
    fs.truncate(ino, 10, Ctx::root()).unwrap();
    fs.release(fh).unwrap();
}

#[test]
fn range_seal_covers_holes_and_only_its_range() {
    let (_d, fs, ino) = setup(5000);
    let fh = fs.open(ino, libc::O_RDWR, ctx(10)).unwrap();
    fs.truncate(ino, 1 << 20, Ctx::root()).unwrap(); // hole from 16 KiB to 1 MiB
    fs.seal(
        fh,
        64 << 10,
        64 << 10,
        SealMode::Temporary,
        Populate::No,
        ctx(10),
    )
    .unwrap();
    assert_eq!(
        fs.write(ino, 70 << 10, b"x").unwrap_err().errno(),
        libc::ETXTBSY,
        "allocation into a sealed hole"
    );
    assert_eq!(
        fs.write(ino, 200 << 10, b"x").unwrap(),
        1,
        "a hole outside the range"
    );
    assert_eq!(fs.write(ino, 0, b"y").unwrap(), 1);
    fs.unseal(fh, 64 << 10, 64 << 10).unwrap();
    // POPULATE allocates the holes first, so in-place writes over the range then work.
    fs.seal(
        fh,
        64 << 10,
        64 << 10,
        SealMode::Temporary,
        Populate::Fill,
        ctx(10),
    )
    .unwrap();
    assert_eq!(fs.write(ino, 70 << 10, b"x").unwrap(), 1);
    assert_eq!(fs.read(ino, 64 << 10, 8).unwrap(), vec![0; 8]);
    fs.release(fh).unwrap();
    assert!(fs.seals_of(ino).is_empty(), "last close releases");
}

#[test]
fn access_modes_and_per_process_limit() {
    let (_d, fs, ino) = setup(5000);
    let ro = fs.open(ino, libc::O_RDONLY, ctx(11)).unwrap();
    assert_eq!(
        fs.seal(ro, 0, 0, SealMode::Temporary, Populate::No, ctx(11))
            .unwrap_err()
            .errno(),
        libc::EBADF
    );
    fs.seal(ro, 0, 0, SealMode::Breakable, Populate::No, ctx(11))
        .unwrap();
    for i in 1..4 {
        fs.seal(
            ro,
            i * 4096,
            4096,
            SealMode::Breakable,
            Populate::No,
            ctx(11),
        )
        .unwrap();
    }
    assert_eq!(
        fs.seal(ro, 0, 1, SealMode::Breakable, Populate::No, ctx(11))
            .unwrap_err()
            .errno(),
        libc::ENOLCK
    );
    fs.release(ro).unwrap();
}

#[test]
fn breakable_seal_is_recalled_then_released_or_revoked() {
    let (_d, fs, ino) = setup(200);
    let fh = fs.open(ino, libc::O_RDONLY, ctx(12)).unwrap();
    fs.seal(fh, 0, 0, SealMode::Breakable, Populate::No, ctx(12))
        .unwrap();
    // The conflicting truncate must wait; the holder is told.
    match fs.truncate(ino, 0, Ctx::root()) {
        Err(Stop::Wait(Wait { ino: i, .. })) => assert_eq!(i, ino),
        other => panic!("expected a wait, got {other:?}"),
    }
    assert!(fs.recall_pending(fh));
    assert_eq!(
        fs.take_notifications(),
        vec![fh],
        "the holder is told, once"
    );
    // A cooperative holder gives the seal back; the truncate then proceeds.
    fs.unseal(fh, 0, 0).unwrap();
    fs.truncate(ino, 0, Ctx::root()).unwrap();

    // An uncooperative holder is revoked after break_timeout; its next seal call: ENOLINK.
    fs.seal(fh, 0, 0, SealMode::Breakable, Populate::No, ctx(12))
        .unwrap();
    let t = std::time::Instant::now();
    fs.blocking(|| fs.truncate(ino, 4096, Ctx::root())).unwrap();
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    assert_eq!(
        fs.seal(fh, 0, 0, SealMode::Breakable, Populate::No, ctx(12))
            .unwrap_err()
            .errno(),
        libc::ENOLINK
    );
    assert_eq!(fs.seal_stats().revocations, 1);
    fs.release(fh).unwrap();
}

#[test]
fn permanent_seal_survives_remount_and_refuses_with_eperm() {
    let (dev, fs, ino) = setup(5000);
    fs.truncate(ino, 1 << 20, Ctx::root()).unwrap();
    assert_eq!(
        fs.set_sealed_map(ino, Populate::No, Ctx::root())
            .unwrap_err()
            .errno(),
        libc::EINVAL,
        "holes"
    );
    assert_eq!(
        fs.set_sealed_map(
            ino,
            Populate::No,
            Ctx {
                uid: 1000,
                gid: 1000,
                pid: 1,
                umask: 0,
            }
        )
        .unwrap_err()
        .errno(),
        libc::EPERM
    );
    fs.set_sealed_map(ino, Populate::Fill, Ctx::root()).unwrap();
    drop(fs);
    let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    assert!(fs.sealed_map(ino).unwrap());
    assert_eq!(
        fs.truncate(ino, 0, Ctx::root()).unwrap_err().errno(),
        libc::EPERM
    );
    assert_eq!(
        fs.write(ino, 1 << 20, b"x").unwrap_err().errno(),
        libc::EPERM
    );
    assert_eq!(
        fs.fallocate(ino, 0, 4096, 3).unwrap_err().errno(),
        libc::EPERM
    );
    assert_eq!(fs.unlink(1, b"f").unwrap_err().errno(), libc::EPERM);
    let (o, ofh) = fs
        .create(1, b"other", 0o644, libc::O_RDWR, Ctx::root())
        .unwrap();
    fs.release(ofh).unwrap();
    assert_eq!(
        fs.rename(1, b"other", 1, b"f", 0, Ctx::root())
            .unwrap_err()
            .errno(),
        libc::EPERM,
        "rename-over"
    );
    // In-place writes, reads, chmod, xattrs still work.
    assert_eq!(fs.write(ino, 100, b"abc").unwrap(), 3);
    assert_eq!(&fs.read(ino, 100, 3).unwrap(), b"abc");
    fs.setxattr(ino, b"user.a", b"1", 0).unwrap();
    let req = sealfs::filesystem::namespace::SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    fs.setattr(ino, req, Ctx::root()).unwrap();
    fs.clear_sealed_map(ino, Ctx::root()).unwrap();
    fs.rename(1, b"other", 1, b"f", 0, Ctx::root()).unwrap();
    assert!(fs.lookup(1, b"f").unwrap().ino == o.ino);
}

#[test]
fn defrag_moves_fragmented_files_but_never_a_sealed_one() {
    let (_d, fs, _) = setup(5000);
    let c = Ctx::root();
    let (a, fa) = fs.create(1, b"a", 0o644, libc::O_RDWR, c).unwrap();
    let (b, fb) = fs.create(1, b"b", 0o644, libc::O_RDWR, c).unwrap();
    // Interleaved block-sized appends fragment both files.
    for i in 0..16u64 {
        fs.write(a.ino, i * 4096, &vec![i as u8; 4096]).unwrap();
        fs.write(b.ino, i * 4096, &vec![100 + i as u8; 4096])
            .unwrap();
    }
    assert!(fs.extents(a.ino).unwrap().len() > 1);
    assert!(fs.extents(b.ino).unwrap().len() > 1);
    let a_before = fs.extents(a.ino).unwrap();
    let (da, db) = (
        fs.read(a.ino, 0, 1 << 20).unwrap(),
        fs.read(b.ino, 0, 1 << 20).unwrap(),
    );
    fs.seal(fa, 0, 0, SealMode::Temporary, Populate::No, ctx(20))
        .unwrap();
    let rep = fs.defrag(Ctx::root()).unwrap();
    assert_eq!(rep.sealed, 1);
    assert_eq!(rep.moved, 1);
    assert_eq!(
        fs.extents(a.ino).unwrap(),
        a_before,
        "the sealed file's extents are byte-identical"
    );
    assert_eq!(
        fs.extents(b.ino).unwrap().len(),
        1,
        "the other file is contiguous"
    );
    assert_eq!(fs.read(a.ino, 0, 1 << 20).unwrap(), da);
    assert_eq!(fs.read(b.ino, 0, 1 << 20).unwrap(), db);
    fs.release(fa).unwrap();
    fs.release(fb).unwrap();
    assert_eq!(fs.defrag(Ctx::root()).unwrap().moved, 1, "unsealed now");
    assert_eq!(fs.extents(a.ino).unwrap().len(), 1);
    assert_eq!(fs.read(a.ino, 0, 1 << 20).unwrap(), da);
}

/// Device addresses and defragmentation are root's: the core refuses anyone else with EPERM,
/// before it looks at the file or at whether the mount is writable.
#[test]
fn device_extents_and_defrag_are_refused_to_non_root_with_eperm() {
    let (_d, fs, ino) = setup(5000);
    let user = Ctx {
        uid: 1000,
        gid: 1000,
        pid: 10,
        umask: 0,
    };
    let perm = |r: Result<(), Stop>| r.map_err(|e| e.errno());
    assert_eq!(
        perm(
            fs.device_extents(ino, 0, user)
                .map(drop)
                .map_err(Into::into)
        ),
        Err(libc::EPERM)
    );
    assert_eq!(
        perm(
            fs.device_extents(u64::MAX, 0, user)
                .map(drop)
                .map_err(Into::into)
        ),
        Err(libc::EPERM)
    );
    assert_eq!(perm(fs.defrag(user).map(drop)), Err(libc::EPERM));
    let ext = fs.device_extents(ino, 0, Ctx::root()).unwrap();
    assert_eq!(
        ext.iter().map(|e| e.len).sum::<u64>(),
        4 * 4096,
        "the file's 4 blocks"
    );
    fs.set_read_only(true).unwrap();
    assert_eq!(perm(fs.defrag(user).map(drop)), Err(libc::EPERM));
    assert_eq!(perm(fs.defrag(Ctx::root()).map(drop)), Err(libc::EROFS));
}

/// Free data blocks and the file's allocated 512-byte blocks.
fn usage(fs: &Filesystem, ino: u64) -> (u64, u64) {
    (fs.stats().free_blocks, fs.getattr(ino).unwrap().blocks)
}

#[test]
fn populate_needs_write_access_whatever_the_seal_kind() {
    let (_d, fs, ino) = setup(5000);
    fs.truncate(ino, 1 << 20, Ctx::root()).unwrap(); // holes from 16 KiB to 1 MiB
    let before = usage(&fs, ino);
    let ro = fs.open(ino, libc::O_RDONLY, ctx(13)).unwrap();
    // A reader may take a breakable seal, but not fill the file's holes through it.
    assert_eq!(
        fs.seal(ro, 0, 0, SealMode::Breakable, Populate::Fill, ctx(13))
            .unwrap_err()
            .errno(),
        libc::EBADF
    );
    assert_eq!(
        usage(&fs, ino),
        before,
        "a refused POPULATE allocates nothing"
    );
    assert!(fs.seals_of(ino).is_empty());
    fs.seal(ro, 0, 0, SealMode::Breakable, Populate::No, ctx(13))
        .expect("the same seal without POPULATE");
    fs.release(ro).unwrap();
    // Through a descriptor open for writing, a breakable seal may populate.
    let rw = fs.open(ino, libc::O_RDWR, ctx(13)).unwrap();
    fs.seal(rw, 0, 0, SealMode::Breakable, Populate::Fill, ctx(13))
        .unwrap();
    let (free, blocks) = usage(&fs, ino);
    assert_eq!(blocks, (1 << 20) / 512, "every hole below EOF filled");
    assert_eq!(free, before.0 - ((1 << 20) - 4 * 4096) / 4096);
    fs.release(rw).unwrap();
}

#[test]
fn a_refused_populate_leaves_no_block_allocated() {
    let (_d, fs, ino) = setup(5000);
    fs.truncate(ino, 1 << 20, Ctx::root()).unwrap();
    let before = usage(&fs, ino);
    // max_seals is 4: the fifth seal is refused with ENOLCK after the holes were counted;
    // the blocks reserved for them must go back.
    let fh = fs.open(ino, libc::O_RDWR, ctx(14)).unwrap();
    for i in 0..4 {
        fs.seal(fh, i, 1, SealMode::Temporary, Populate::No, ctx(14))
            .unwrap();
    }
    assert_eq!(
        fs.seal(fh, 8192, 0, SealMode::Breakable, Populate::Fill, ctx(14))
            .unwrap_err()
            .errno(),
        libc::ENOLCK
    );
    assert_eq!(usage(&fs, ino), before, "ENOLCK after population");
    fs.release(fh).unwrap();
    // A recall in progress refuses the new seal with EBUSY: nothing allocated either.
    let holder = fs.open(ino, libc::O_RDONLY, ctx(15)).unwrap();
    fs.seal(holder, 0, 4096, SealMode::Breakable, Populate::No, ctx(15))
        .unwrap();
    assert!(matches!(
        fs.truncate(ino, 0, Ctx::root()),
        Err(Stop::Wait(_))
    ));
    let fh = fs.open(ino, libc::O_RDWR, ctx(16)).unwrap();
    assert_eq!(
        fs.seal(fh, 8192, 0, SealMode::Temporary, Populate::Fill, ctx(16))
            .unwrap_err()
            .errno(),
        libc::EBUSY
    );
    assert_eq!(usage(&fs, ino), before, "EBUSY after population");
    fs.release(fh).unwrap();
    fs.release(holder).unwrap();
    // More holes than free blocks: ENOSPC at once, nothing allocated.
    let big = 64 << 20;
    fs.truncate(ino, big, Ctx::root()).unwrap();
    let before = usage(&fs, ino);
    let fh = fs.open(ino, libc::O_RDWR, ctx(17)).unwrap();
    assert_eq!(
        fs.seal(fh, 0, 0, SealMode::Temporary, Populate::Fill, ctx(17))
            .unwrap_err()
            .errno(),
        libc::ENOSPC
    );
    assert_eq!(usage(&fs, ino), before, "ENOSPC");
    assert!(fs.seals_of(ino).is_empty());
    fs.release(fh).unwrap();
}

fn user(pid: u32, uid: u32) -> Ctx {
    Ctx {
        uid,
        gid: uid,
        pid,
        umask: 0,
    }
}

#[test]
fn limits_count_the_holder_and_the_user_never_the_pid() {
    let (_d, fs, ino) = setup(5000); // max_seals 4 per holder, 6 per user
    let shared = fs.open(ino, libc::O_RDONLY, user(20, 1000)).unwrap();
    // Forked children sealing through one inherited description: each has its own pid,
    // but the description holds the seals and is full after 4.
    for child in 0..4 {
        fs.seal(
            shared,
            child,
            1,
            SealMode::Breakable,
            Populate::No,
            user(100 + child as u32, 1000),
        )
        .unwrap();
    }
    for child in 4..8 {
        assert_eq!(
            fs.seal(
                shared,
                child,
                1,
                SealMode::Breakable,
                Populate::No,
                user(100 + child as u32, 1000)
            )
            .unwrap_err()
            .errno(),
            libc::ENOLCK,
            "child {child}"
        );
    }
    // The same user through other descriptions: 2 more, then the user's limit.
    let a = fs.open(ino, libc::O_RDONLY, user(21, 1000)).unwrap();
    let b = fs.open(ino, libc::O_RDONLY, user(21, 1000)).unwrap();
    fs.seal(a, 0, 1, SealMode::Breakable, Populate::No, user(21, 1000))
        .unwrap();
    fs.seal(b, 0, 1, SealMode::Breakable, Populate::No, user(21, 1000))
        .unwrap();
    assert_eq!(
        fs.seal(b, 1, 1, SealMode::Breakable, Populate::No, user(21, 1000))
            .unwrap_err()
            .errno(),
        libc::ENOLCK,
        "user 1000 holds 6"
    );
    // Another user, even with a pid that held seals before (reused): its own limits.
    let c = fs.open(ino, libc::O_RDONLY, user(100, 1001)).unwrap();
    fs.seal(c, 0, 1, SealMode::Breakable, Populate::No, user(100, 1001))
        .unwrap();
    // The last close of the shared description gives its 4 back to user 1000.
    fs.release(shared).unwrap();
    fs.seal(b, 1, 1, SealMode::Breakable, Populate::No, user(22, 1000))
        .unwrap();
    for fh in [a, b, c] {
        fs.release(fh).unwrap();
    }
    assert_eq!(fs.seal_stats().seals, 0);
}

/// A replacing seal takes the new seal and gives back every temporary and breakable seal of
/// the description in one step: the old ranges are free at once, the new one sealed, other
/// descriptions' seals untouched, and the description's limit does not stop it.
#[test]
fn a_replacing_seal_moves_the_descriptions_seals_in_one_call() {
    let (_d, fs, ino) = setup(5000); // max_seals 4; size 3 * 4096 + 100
    let fh = fs.open(ino, libc::O_RDWR, ctx(30)).unwrap();
    let other = fs.open(ino, libc::O_RDONLY, ctx(31)).unwrap();
    fs.seal(other, 0, 1, SealMode::Breakable, Populate::No, ctx(31))
        .unwrap();
    // Nothing held yet: a plain seal.
    fs.seal_replacing(fh, 0, 4096, SealMode::Temporary, Populate::No, ctx(30))
        .unwrap();
    for i in 1..4 {
        fs.seal(fh, i, 1, SealMode::Breakable, Populate::No, ctx(30))
            .unwrap();
    }
    assert_eq!(
        fs.seal(fh, 8192, 4096, SealMode::Temporary, Populate::No, ctx(30))
            .unwrap_err()
            .errno(),
        libc::ENOLCK,
        "four held"
    );
    fs.seal_replacing(fh, 8192, 4096, SealMode::Temporary, Populate::No, ctx(30))
        .unwrap();
    let held: Vec<(u64, u64, u64)> = fs
        .seals_of(ino)
        .iter()
        .map(|s| (s.holder, s.range.start, s.range.end))
        .collect();
    assert_eq!(held, vec![(other, 0, 1), (fh, 8192, 12288)]);
    // [0, 4096) is free for changes now; the new range is sealed.
    fs.fallocate(ino, 4096, 4096, 3).unwrap(); // punch [4096, 8192)
    assert_eq!(
        fs.fallocate(ino, 8192, 4096, 3).unwrap_err().errno(),
        libc::ETXTBSY
    );
    // The same range again: still exactly one seal of this description.
    fs.seal_replacing(fh, 8192, 4096, SealMode::Temporary, Populate::No, ctx(30))
        .unwrap();
    assert_eq!(fs.seals_of(ino).len(), 2);
    // UNSEAL of the replaced range finds nothing; of the new one, it goes.
    assert_eq!(fs.unseal(fh, 0, 4096).unwrap_err().errno(), libc::EINVAL);
    fs.unseal(fh, 8192, 4096).unwrap();
    assert_eq!(fs.seal_stats().seals, 1);
    // A refused replacement releases nothing: EBADF (a temporary seal needs write access).
    fs.seal_replacing(other, 0, 0, SealMode::Temporary, Populate::No, ctx(31))
        .map(|_| ())
        .expect_err("temporary seal through O_RDONLY");
    assert_eq!(fs.seals_of(ino).len(), 1, "other's seal is still there");
    fs.release(fh).unwrap();
    fs.release(other).unwrap();
}

/// A recall in progress refuses a replacement with EBUSY, the description's own recalled
/// seal included, and keeps every seal; a fenced description gets ENOLINK.
#[test]
fn a_replacing_seal_is_refused_during_a_recall_and_after_revocation() {
    let (_d, fs, ino) = setup(200);
    let fh = fs.open(ino, libc::O_RDWR, ctx(32)).unwrap();
    fs.seal(fh, 0, 4096, SealMode::Breakable, Populate::No, ctx(32))
        .unwrap();
    assert!(matches!(
        fs.truncate(ino, 0, Ctx::root()),
        Err(Stop::Wait(_))
    ));
    assert_eq!(
        fs.seal_replacing(fh, 8192, 0, SealMode::Temporary, Populate::No, ctx(32))
            .unwrap_err()
            .errno(),
        libc::EBUSY
    );
    assert_eq!(fs.seals_of(ino).len(), 1, "the recalled seal is still held");
    assert!(fs.recall_pending(fh));
    // Ignored until the deadline: revoked, and the description fenced.
    fs.blocking(|| fs.truncate(ino, 0, Ctx::root())).unwrap();
    assert_eq!(
        fs.seal_replacing(fh, 0, 0, SealMode::Temporary, Populate::No, ctx(32))
            .unwrap_err()
            .errno(),
        libc::ENOLINK
    );
    fs.release(fh).unwrap();
}

/// With POPULATE the holes of the new range are filled and the description's old seals
/// replaced in the same step; ENOSPC allocates nothing and keeps the old seal.
#[test]
fn a_populating_replacement_fills_the_new_range_or_changes_nothing() {
    let (_d, fs, ino) = setup(5000);
    fs.truncate(ino, 1 << 20, Ctx::root()).unwrap(); // holes from 16 KiB
    let fh = fs.open(ino, libc::O_RDWR, ctx(33)).unwrap();
    fs.seal(fh, 0, 4096, SealMode::Temporary, Populate::No, ctx(33))
        .unwrap();
    let (free, blocks) = usage(&fs, ino);
    fs.seal_replacing(
        fh,
        64 << 10,
        64 << 10,
        SealMode::Temporary,
        Populate::Fill,
        ctx(33),
    )
    .unwrap();
    assert_eq!(
        usage(&fs, ino),
        (free - 16, blocks + 16 * 8),
        "16 blocks of 4 KiB"
    );
    let held: Vec<(u64, u64)> = fs
        .seals_of(ino)
        .iter()
        .map(|s| (s.range.start, s.range.end))
        .collect();
    assert_eq!(held, vec![(64 << 10, 128 << 10)]);
    // The new range is sealed, the old one free.
    assert_eq!(
        fs.truncate(ino, 100 << 10, Ctx::root())
            .unwrap_err()
            .errno(),
        libc::ETXTBSY
    );
    fs.fallocate(ino, 0, 4096, 3).unwrap(); // punch [0, 4096)
                                            // More holes than free blocks: ENOSPC, nothing allocated, the old seal kept.
    fs.truncate(ino, 64 << 20, Ctx::root()).unwrap();
    let before = usage(&fs, ino);
    assert_eq!(
        fs.seal_replacing(fh, 0, 0, SealMode::Temporary, Populate::Fill, ctx(33))
            .unwrap_err()
            .errno(),
        libc::ENOSPC
    );
    assert_eq!(usage(&fs, ino), before, "nothing allocated");
    let held: Vec<(u64, u64)> = fs
        .seals_of(ino)
        .iter()
        .map(|s| (s.range.start, s.range.end))
        .collect();
    assert_eq!(held, vec![(64 << 10, 128 << 10)], "the old seal stays");
    fs.release(fh).unwrap();
}

/// A replacing, populating seal slides a sealed range forward: the description's own
/// seals (temporary or breakable) are not in the way of the holes it fills, so it neither
/// fails with ETXTBSY nor recalls itself; another description's seal over a hole still is,
/// and a seal over the part of the range that has no hole is not.
#[test]
fn a_populating_replacement_is_not_held_up_by_the_seals_it_replaces() {
    let (_d, fs, ino) = setup(5000);
    fs.truncate(ino, 1 << 20, Ctx::root()).unwrap(); // holes from 16 KiB
    let fh = fs.open(ino, libc::O_RDWR, ctx(33)).unwrap();
    let spans = |fs: &Filesystem| -> Vec<(u64, u64)> {
        fs.seals_of(ino)
            .iter()
            .map(|s| (s.range.start, s.range.end))
            .collect()
    };
    // Own temporary seal over holes [16K, 64K); the replacement's holes overlap it.
    fs.seal(fh, 0, 64 << 10, SealMode::Temporary, Populate::No, ctx(33))
        .unwrap();
    fs.seal_replacing(
        fh,
        32 << 10,
        64 << 10,
        SealMode::Temporary,
        Populate::Fill,
        ctx(33),
    )
    .unwrap();
    assert_eq!(spans(&fs), vec![(32 << 10, 96 << 10)]);
    // Own breakable seal: no recall of itself, nothing parked.
    fs.seal_replacing(
        fh,
        64 << 10,
        64 << 10,
        SealMode::Breakable,
        Populate::No,
        ctx(33),
    )
    .unwrap();
    fs.seal_replacing(
        fh,
        96 << 10,
        64 << 10,
        SealMode::Breakable,
        Populate::Fill,
        ctx(33),
    )
    .unwrap();
    assert_eq!(spans(&fs), vec![(96 << 10, 160 << 10)]);
    assert_eq!(fs.seal_stats().recalls, 0);
    // Another description's temporary seal over [200K, 210K) (a hole, not filled yet) is
    // in the way of a fill that reaches it, not of one that stops short of it.
    let other = fs.open(ino, libc::O_RDWR, ctx(34)).unwrap();
    fs.seal(
        other,
        200 << 10,
        10 << 10,
        SealMode::Temporary,
        Populate::No,
        ctx(34),
    )
    .unwrap();
    assert_eq!(
        fs.seal_replacing(
            fh,
            160 << 10,
            64 << 10,
            SealMode::Temporary,
            Populate::Fill,
            ctx(33)
        )
        .unwrap_err()
        .errno(),
        libc::ETXTBSY
    );
    fs.seal_replacing(
        fh,
        96 << 10,
        96 << 10,
        SealMode::Temporary,
        Populate::Fill,
        ctx(33),
    )
    .unwrap();
    // A fill whose holes lie past another's seal over blocks already there goes ahead.
    fs.seal(
        other,
        0,
        16 << 10,
        SealMode::Temporary,
        Populate::No,
        ctx(34),
    )
    .unwrap();
    fs.seal_replacing(fh, 0, 300 << 10, SealMode::Temporary, Populate::No, ctx(33))
        .unwrap();
    fs.release(other).unwrap();
    fs.release(fh).unwrap();
}

/// The process id recorded with a seal is looked up once per description and thread, then
/// remembered with the description: after the sealing thread has exited, a seal through the
/// same description still names its process, while another description, asking the system
/// anew, can only name the thread id it was given.
#[test]
fn the_sealing_process_is_remembered_per_description() {
    let (_d, fs, ino) = setup(5000);
    let me = std::process::id();
    // SAFETY: gettid has no arguments and cannot fail.
    let fs = Arc::new(fs);
    let (fs2, me2) = (fs.clone(), me);
    let (fh, tid) = std::thread::spawn(move || {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::gettid() } as u32;
        assert_ne!(tid, me2, "a thread other than the leader");
        let fh = fs2.open(ino, libc::O_RDWR, ctx(tid)).unwrap();
        fs2.seal(fh, 0, 1, SealMode::Temporary, Populate::No, ctx(tid))
            .unwrap();
        (fh, tid)
    })
    .join()
    .unwrap();
    let pids = |fs: &Filesystem| -> Vec<u32> { fs.seals_of(ino).iter().map(|s| s.pid).collect() };
    assert_eq!(pids(&fs), vec![me], "a thread's seal names its process");
    // The thread is gone (joined), its id no longer names anything.
    wait_gone(tid);
    fs.seal(fh, 1, 1, SealMode::Temporary, Populate::No, ctx(tid))
        .unwrap();
    assert_eq!(pids(&fs), vec![me, me], "remembered with the description");
    let fresh = fs.open(ino, libc::O_RDWR, ctx(tid)).unwrap();
    fs.seal(fresh, 2, 1, SealMode::Temporary, Populate::No, ctx(tid))
        .unwrap();
    assert_eq!(pids(&fs), vec![me, me, tid], "looked up anew: the id alone");
    fs.release(fh).unwrap();
    fs.release(fresh).unwrap();
}

/// Waits until no task has id `tid` (a joined thread's id goes a moment after the join).
fn wait_gone(tid: u32) {
    let t = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{tid}")).exists()
        || std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "thread {tid} still there"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
