//! Crafted metadata: log records and checkpoints whose checksums are right but whose meaning
//! is not (what a bug or a hostile image writer produces, rather than bit rot). For every
//! record type and every checkpoint field, fsck reports the problem and mount refuses
//! with the record's sequence number (or "checkpoint") and the reason; nothing is served.

mod common;

use std::sync::Arc;

use sealfs::device::sim::SimDevice;
use sealfs::filesystem::{mkfs, MkfsOptions, MountOptions, MAX_LINKS};
use sealfs::format::layout::LayoutOptions;
use sealfs::format::record::{valid, MapExtent, Op, Ts};
use sealfs::format::{crc, Superblock};
use sealfs::journal::checkpoint::{self, CKPT_HEADER};
use sealfs::journal::replay::read_superblocks;
use sealfs::meta::inode::{mode, Body};
use sealfs::meta::table::{ApplyError, Blocks};
use sealfs::{Ctx, Filesystem};

const SIZE: u64 = 4 << 20;
const T: Ts = Ts {
    sec: 1_700_000_000,
    nsec: 0,
};

/// Inode numbers of the base image.
#[derive(Clone, Copy, Debug)]
struct Inos {
    /// /a (directory)
    a: u64,
    /// /a/b (directory)
    b: u64,
    /// /f (regular file, 3 blocks mapped at file blocks 0..3)
    f: u64,
    /// /l (symlink to "f")
    l: u64,
    /// Next inode number.
    next: u64,
}

/// A base image: a checkpoint holding /a/b, /f (with data and an xattr) and /l, then an
/// empty log; every case adds one crafted record or rewrites the checkpoint.
fn base() -> (Vec<u8>, Inos) {
    let dev = Arc::new(SimDevice::new(SIZE, true));
    mkfs(
        &*dev,
        MkfsOptions {
            layout: LayoutOptions {
                block_size: 0,
                log_len: 256 << 10,
                ckpt_len: 128 << 10,
            },
            ..Default::default()
        },
    )
    .unwrap();
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    let c = Ctx::root();
    let a = fs.mkdir(1, b"a", 0o755, c).unwrap().ino;
    let b = fs.mkdir(a, b"b", 0o755, c).unwrap().ino;
    let (st, fh) = fs.create(1, b"f", 0o644, libc::O_RDWR, c).unwrap();
    fs.write(st.ino, 0, &[7u8; 3 * 4096]).unwrap();
    fs.setxattr(st.ino, b"user.x", b"1", 0).unwrap();
    fs.release(fh).unwrap();
    let l = fs.symlink(1, b"l", b"f", c).unwrap().ino;
    fs.checkpoint().unwrap();
    drop(fs);
    let img = dev.snapshot();
    let rep = sealfs::fsck::check(&SimDevice::from_image(img.clone(), true));
    assert!(rep.clean(), "{:?}", rep.problems);
    (
        img,
        Inos {
            a,
            b,
            f: st.ino,
            l,
            next: l + 1,
        },
    )
}

/// Where the next record goes and its sequence number.
fn tail(img: &[u8]) -> (u64, u64) {
    let dev = Arc::new(SimDevice::from_image(img.to_vec(), true));
    let rep = sealfs::fsck::check(&*dev);
    let fs = Filesystem::mount(Box::new(dev), MountOptions { read_only: true }).unwrap();
    let sb = fs.superblock();
    let at = sb.layout.log_off + fs.stats().log_used;
    (at, sb.log_seq + rep.replayed)
}

/// The image with `ops` appended to the log as records (valid checksums, next sequence
/// numbers); returns it and the sequence number of the last one.
fn with_records(img: &[u8], ops: &[Op]) -> (Vec<u8>, u64) {
    let (mut at, mut seq) = tail(img);
    let mut img = img.to_vec();
    for op in ops {
        let rec = op.encode_record(seq);
        assert!(sealfs::format::record::decode_record(&rec).is_ok());
        img[at as usize..at as usize + rec.len()].copy_from_slice(&rec);
        at += rec.len() as u64;
        seq += 1;
    }
    (img, seq - 1)
}

/// fsck reports a problem containing `want` (and nothing clean), and mount refuses with a
/// message containing `want`, read-only and read-write.
fn refused(img: &[u8], want: &str, case: &str) {
    let dev = Arc::new(SimDevice::from_image(img.to_vec(), true));
    let rep = sealfs::fsck::check(&*dev);
    assert!(!rep.clean(), "{case}: fsck says clean");
    assert!(
        rep.problems.iter().any(|p| p.contains(want)),
        "{case}: fsck problems {:?} lack {want:?}",
        rep.problems
    );
    for read_only in [true, false] {
        match Filesystem::mount(Box::new(dev.clone()), MountOptions { read_only }) {
            Ok(_) => panic!("{case}: mounted (read_only {read_only})"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(want),
                    "{case}: mount error {msg:?} lacks {want:?}"
                );
            }
        }
    }
}

fn create(parent: u64, name: &[u8], ino: u64, m: u32, target: &[u8]) -> Op {
    Op::Create {
        parent,
        name: name.to_vec(),
        ino,
        mode: m,
        uid: 0,
        gid: 0,
        rdev: 0,
        time: T,
        target: target.to_vec(),
    }
}

fn rename(parent: u64, name: &[u8], new_parent: u64, new_name: &[u8], flags: u32) -> Op {
    Op::Rename {
        parent,
        name: name.to_vec(),
        new_parent,
        new_name: new_name.to_vec(),
        flags,
        time: T,
    }
}

fn setattr(ino: u64, v: u32, m: u32, flags: u32) -> Op {
    Op::SetAttr {
        ino,
        valid: v,
        mode: m,
        uid: 0,
        gid: 0,
        atime: T,
        mtime: T,
        ctime: T,
        flags,
    }
}

/// One access ACL entry list (user::rw-, group::r--, other::r--) plus a named user, so
/// that it is not equivalent to a mode.
fn acl_value(user_perm: u16, group_perm: u16, other_perm: u16) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    let mut entry = |tag: u16, perm: u16, id: u32| {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    };
    entry(0x01, user_perm, u32::MAX); // ACL_USER_OBJ
    entry(0x02, 7, 1000); // ACL_USER
    entry(0x04, group_perm, u32::MAX); // ACL_GROUP_OBJ
    entry(0x10, group_perm, u32::MAX); // ACL_MASK
    entry(0x20, other_perm, u32::MAX); // ACL_OTHER
    v
}

#[test]
fn a_record_with_a_valid_checksum_and_an_invalid_meaning_is_refused() {
    let (img, i) = base();
    let dblock = |img: &[u8]| {
        // The data area's size, for extents beyond it.
        let sb = read_superblocks(&SimDevice::from_image(img.to_vec(), true))
            .unwrap()
            .current;
        sb.layout.data_blocks
    };
    let data_blocks = dblock(&img);
    let max_blocks = sealfs::filesystem::MAX_FILE_SIZE / 4096;
    let x = |n: &str| n.as_bytes().to_vec();
    // (case, records, what the refusal names)
    let removed = format!("directory {} was removed", i.b);
    let subtree = format!(
        "rename would move directory {} into its own subtree ({})",
        i.a, i.b
    );
    let cases: Vec<(&str, Vec<Op>, &str)> = vec![
        // Create
        (
            "create into a file",
            vec![create(i.f, b"x", i.next, mode::S_IFREG | 0o644, b"")],
            "not a directory",
        ),
        (
            "create reusing an inode number",
            vec![create(1, b"x", i.f, mode::S_IFREG | 0o644, b"")],
            "already exists",
        ),
        (
            "create of the root's inode number",
            vec![create(1, b"x", 1, mode::S_IFDIR | 0o755, b"")],
            "inode number 1 is reserved",
        ),
        (
            "create below the next inode number",
            vec![
                create(1, b"x", i.next + 5, mode::S_IFREG | 0o644, b""),
                create(1, b"y", i.next + 1, mode::S_IFREG | 0o644, b""),
            ],
            "reuses a number below the next one",
        ),
        (
            "create with mode bits past 07777",
            vec![create(1, b"x", i.next, mode::S_IFREG | 0o10644, b"")],
            "bad mode",
        ),
        (
            "create of a symlink with no target",
            vec![create(1, b"x", i.next, mode::S_IFLNK | 0o777, b"")],
            "symlink target of 0 bytes",
        ),
        (
            "create in a removed directory",
            vec![
                Op::Unlink {
                    parent: i.a,
                    name: x("b"),
                    time: T,
                },
                create(i.b, b"x", i.next, mode::S_IFREG | 0o644, b""),
            ],
            &removed,
        ),
        // Link
        (
            "link of a directory",
            vec![Op::Link {
                ino: i.a,
                parent: 1,
                name: x("x"),
                time: T,
            }],
            "is a directory",
        ),
        (
            "link over an existing name",
            vec![Op::Link {
                ino: i.f,
                parent: 1,
                name: x("l"),
                time: T,
            }],
            "exists in 1",
        ),
        // Unlink
        (
            "unlink of a missing name",
            vec![Op::Unlink {
                parent: 1,
                name: x("nope"),
                time: T,
            }],
            "not in 1",
        ),
        (
            "unlink of a non-empty directory",
            vec![Op::Unlink {
                parent: 1,
                name: x("a"),
                time: T,
            }],
            "not empty",
        ),
        // Rename
        (
            "rename of a directory into its own child",
            vec![rename(1, b"a", i.b, b"a2", 0)],
            &subtree,
        ),
        (
            "rename of a directory into itself",
            vec![rename(1, b"a", i.a, b"a2", 0)],
            "into its own subtree",
        ),
        (
            "rename exchange that moves a directory below itself",
            vec![rename(i.a, b"b", 1, b"a", 2)],
            "into its own subtree",
        ),
        (
            "rename with both NOREPLACE and EXCHANGE",
            vec![rename(1, b"f", 1, b"l", 3)],
            "rename: flags 0x3",
        ),
        // SetAttr
        (
            "setattr of unknown fields",
            vec![setattr(i.f, 0x80, 0, 0)],
            "unknown fields 0x80",
        ),
        (
            "setattr of unknown inode flags",
            vec![setattr(i.f, valid::FLAGS, 0, 0x1)],
            "unknown flags 0x1",
        ),
        (
            "chmod that disagrees with the access ACL",
            vec![
                Op::SetXattr {
                    ino: i.f,
                    name: x("system.posix_acl_access"),
                    value: acl_value(6, 4, 4),
                    time: T,
                },
                setattr(i.f, valid::MODE, 0o600, 0),
            ],
            "disagrees with its access ACL",
        ),
        // Truncate
        (
            "truncate to 2^64-1",
            vec![Op::Truncate {
                ino: i.f,
                size: u64::MAX,
                time: T,
            }],
            "size 18446744073709551615 beyond the largest file size",
        ),
        (
            "truncate of a directory",
            vec![Op::Truncate {
                ino: i.a,
                size: 0,
                time: T,
            }],
            "is not a file",
        ),
        // Map
        (
            "map far beyond the largest file size",
            vec![Op::Map {
                ino: i.f,
                size: 0,
                time: T,
                touch: false,
                extents: vec![MapExtent {
                    fblock: 1 << 50,
                    dblock: data_blocks - 1,
                    len: 1,
                }],
            }],
            "beyond the largest file size",
        ),
        (
            "map ending one block past the largest file size",
            vec![Op::Map {
                ino: i.f,
                size: 0,
                time: T,
                touch: false,
                extents: vec![MapExtent {
                    fblock: max_blocks,
                    dblock: data_blocks - 1,
                    len: 1,
                }],
            }],
            "beyond the largest file size",
        ),
        (
            "map with a size of 2^64-1",
            vec![Op::Map {
                ino: i.f,
                size: u64::MAX,
                time: T,
                touch: false,
                extents: vec![],
            }],
            "beyond the largest file size",
        ),
        (
            "map beyond the data area",
            vec![Op::Map {
                ino: i.f,
                size: 0,
                time: T,
                touch: false,
                extents: vec![MapExtent {
                    fblock: 10,
                    dblock: data_blocks,
                    len: 1,
                }],
            }],
            "log record",
        ),
        (
            "map with overlapping extents",
            vec![Op::Map {
                ino: i.f,
                size: 0,
                time: T,
                touch: false,
                extents: vec![
                    MapExtent {
                        fblock: 10,
                        dblock: data_blocks - 4,
                        len: 2,
                    },
                    MapExtent {
                        fblock: 11,
                        dblock: data_blocks - 2,
                        len: 2,
                    },
                ],
            }],
            "overlapping extents",
        ),
        // Punch
        (
            "punch of a symlink",
            vec![Op::Punch {
                ino: i.l,
                fblock: 0,
                count: 1,
                time: T,
            }],
            "is not a file",
        ),
        (
            "punch whose range overflows",
            vec![Op::Punch {
                ino: i.f,
                fblock: u64::MAX,
                count: 2,
                time: T,
            }],
            "range overflows",
        ),
        // SetXattr
        (
            "an access ACL that does not parse",
            vec![Op::SetXattr {
                ino: i.f,
                name: x("system.posix_acl_access"),
                value: vec![1, 2, 3],
                time: T,
            }],
            "does not parse",
        ),
        (
            "a default ACL on a file",
            vec![Op::SetXattr {
                ino: i.f,
                name: x("system.posix_acl_default"),
                value: acl_value(6, 4, 4),
                time: T,
            }],
            "default ACL on a non-directory",
        ),
        (
            "an xattr value past 64 KiB",
            vec![Op::SetXattr {
                ino: i.f,
                name: x("user.big"),
                value: vec![0; 65537],
                time: T,
            }],
            "value of 65537 bytes",
        ),
        // RemoveXattr
        (
            "removal of a missing xattr",
            vec![Op::RemoveXattr {
                ino: i.f,
                name: x("user.nope"),
                time: T,
            }],
            "has no",
        ),
        // Evict
        (
            "evict of a linked file",
            vec![Op::Evict { ino: i.f }],
            "still has 1 links",
        ),
        (
            "evict of the root",
            vec![Op::Evict { ino: 1 }],
            "evict: the root directory",
        ),
        // Remap
        (
            "remap of unmapped blocks",
            vec![Op::Remap {
                ino: i.f,
                fblock: 5,
                dblock: data_blocks - 2,
                len: 1,
            }],
            "not fully mapped",
        ),
        (
            "remap beyond the data area",
            vec![Op::Remap {
                ino: i.f,
                fblock: 0,
                dblock: data_blocks,
                len: 1,
            }],
            "log record",
        ),
        // Group
        (
            "a group whose second operation is invalid",
            vec![Op::Group(vec![
                create(1, b"x", i.next, mode::S_IFDIR | 0o755, b""),
                rename(1, b"a", i.b, b"a2", 0),
            ])],
            "into its own subtree",
        ),
        (
            "a group that evicts a linked file",
            vec![Op::Group(vec![
                setattr(i.f, valid::MODE, 0o600, 0),
                Op::Evict { ino: i.f },
            ])],
            "still has 1 links",
        ),
    ];
    let mut tags = std::collections::HashSet::new();
    for (case, ops, want) in &cases {
        for op in ops {
            tags.insert(std::mem::discriminant(op));
        }
        let (bad, seq) = with_records(&img, ops);
        refused(&bad, &format!("log record {seq}: "), case);
        refused(&bad, want, case);
        // The same records without the last one (the invalid one) are accepted: the
        // refusal is about that record's meaning, not about its bytes.
        let (good, _) = with_records(&img, &ops[..ops.len() - 1]);
        let rep = sealfs::fsck::check(&SimDevice::from_image(good, true));
        assert!(rep.clean(), "{case}: prefix not clean: {:?}", rep.problems);
    }
    assert_eq!(tags.len(), 13, "every record type has a case");
}

/// The live path refuses what replay refuses, before it logs: a rename into its own
/// subtree gets EINVAL and leaves nothing in the log.
#[test]
fn the_live_path_never_logs_what_replay_refuses() {
    let (img, i) = base();
    let dev = Arc::new(SimDevice::from_image(img, true));
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    let before = fs.stats().log_used;
    let e = fs.rename(1, b"a", i.b, b"a2", 0, Ctx::root()).unwrap_err();
    assert_eq!(e.errno(), libc::EINVAL);
    assert_eq!(fs.stats().log_used, before);
    drop(fs);
    assert!(sealfs::fsck::check(&*dev).clean());
}

struct NoBlocks;
impl Blocks for NoBlocks {
    fn used(&mut self, _: u64, _: u64) -> Result<(), ApplyError> {
        Ok(())
    }
    fn freed(&mut self, _: u64, _: u64, _: u64) -> Result<(), ApplyError> {
        Ok(())
    }
}

/// Rewrites the current checkpoint: `edit` changes the decoded table, `patch` the encoded
/// bytes; the checksum in the superblock is made to match.
fn with_checkpoint(
    img: &[u8],
    edit: impl FnOnce(&mut sealfs::meta::Table),
    patch: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut img = img.to_vec();
    let dev = SimDevice::from_image(img.clone(), true);
    let mut sb: Superblock = read_superblocks(&dev).unwrap().current;
    let l = sb.layout;
    let at = l.ckpt_off[sb.active_ckpt as usize] as usize;
    let blob = &img[at..at + sb.ckpt_used as usize];
    let hdr = checkpoint::verify(blob, sb.ckpt_crc).unwrap();
    let mut t = checkpoint::decode(blob, l.block_size, &mut NoBlocks).unwrap();
    edit(&mut t);
    let mut blob = checkpoint::encode(&t, hdr.generation, hdr.log_seq);
    patch(&mut blob);
    img[at..at + blob.len()].copy_from_slice(&blob);
    sb.ckpt_used = blob.len() as u64;
    sb.ckpt_crc = crc(&[&blob]);
    let slot = Superblock::slot_offset(sb.slot()) as usize;
    img[slot..slot + 256].copy_from_slice(&sb.encode());
    img
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn a_checkpoint_with_a_valid_checksum_and_an_invalid_field_is_refused() {
    let (img, i) = base();
    type Edit = Box<dyn FnOnce(&mut sealfs::meta::Table)>;
    type Patch = Box<dyn FnOnce(&mut Vec<u8>)>;
    let none_e = || -> Edit { Box::new(|_| {}) };
    let none_p = || -> Patch { Box::new(|_| {}) };
    let inode = move |t: &sealfs::meta::Table, ino: u64| t.get(ino).unwrap().clone();
    let cases: Vec<(&str, Edit, Patch, String)> = vec![
        // Header fields.
        (
            "generation past the superblock's",
            none_e(),
            Box::new(|b| put64(b, 8, 1 << 40)),
            "checkpoint generation".into(),
        ),
        (
            "log_seq other than the superblock's",
            none_e(),
            Box::new(|b| put64(b, 16, 999)),
            "checkpoint starts the log at 999".into(),
        ),
        (
            "next inode number at or below an inode",
            none_e(),
            Box::new(move |b| put64(b, 24, i.l)),
            "beyond next inode number".into(),
        ),
        (
            "inode count larger than the body",
            none_e(),
            Box::new(|b| put64(b, 32, 1 << 30)),
            "inode count".into(),
        ),
        (
            "block size",
            none_e(),
            Box::new(|b| put64(b, 40, 8192)),
            "checkpoint block size".into(),
        ),
        (
            "body length",
            none_e(),
            Box::new(|b| {
                let n = b.len() as u64 - CKPT_HEADER as u64;
                put64(b, 48, n + 8)
            }),
            "checkpoint body length".into(),
        ),
        (
            "reserved header word",
            none_e(),
            Box::new(|b| put64(b, 56, 1)),
            "checkpoint reserved".into(),
        ),
        // Inode fields.
        (
            "inode number 0",
            Box::new(move |t| {
                let n = t.inodes.remove(&i.l).unwrap();
                n.write().ino = 0;
                t.inodes.insert(0, n);
            }),
            none_p(),
            "inode 0".into(),
        ),
        (
            "mode with bits past 07777",
            Box::new(move |t| inode(t, i.f).write().attr.mode |= 0o200000),
            none_p(),
            "inode mode".into(),
        ),
        (
            "mode of another type than the entry naming it",
            Box::new(move |t| {
                let n = inode(t, i.l);
                let mut g = n.write();
                g.attr.mode = mode::S_IFIFO | 0o644;
                g.body = Body::Special;
            }),
            none_p(),
            "mismatched inode".into(),
        ),
        (
            "link count 2^31",
            Box::new(move |t| inode(t, i.f).write().attr.nlink = 1 << 31),
            none_p(),
            format!("inode {}: link count 2147483648", i.f),
        ),
        (
            "link count past the limit with as many names",
            Box::new(move |t| inode(t, i.f).write().attr.nlink = MAX_LINKS + 1),
            none_p(),
            "beyond the limit".into(),
        ),
        (
            "unknown inode flags",
            Box::new(move |t| inode(t, i.f).write().attr.flags = 0x4),
            none_p(),
            "unknown flags 0x4".into(),
        ),
        // The root is the first inode of the body: ino, five u32s, then rdev.
        (
            "device number on 64 bits",
            none_e(),
            Box::new(|b| b[CKPT_HEADER + 8 + 20 + 4] = 1),
            "invalid device number".into(),
        ),
        (
            "size 2^64-1",
            Box::new(move |t| inode(t, i.f).write().attr.size = u64::MAX),
            none_p(),
            "size 18446744073709551615 beyond the largest file size".into(),
        ),
        // rdev, size, then atime (seconds, nanoseconds).
        (
            "nanoseconds of a timestamp",
            none_e(),
            Box::new(|b| {
                let at = CKPT_HEADER + 8 + 20 + 8 + 8 + 8;
                b[at..at + 4].copy_from_slice(&1_000_000_000u32.to_le_bytes());
            }),
            "invalid nanoseconds".into(),
        ),
        (
            "an access ACL that does not parse",
            Box::new(move |t| {
                inode(t, i.f)
                    .write()
                    .set_xattr(b"system.posix_acl_access", &[9, 9])
            }),
            none_p(),
            "stored access ACL does not parse".into(),
        ),
        (
            "an extent far beyond the largest file size",
            Box::new(move |t| {
                let n = inode(t, i.f);
                let mut g = n.write();
                let d = g.extents().unwrap().iter().next().unwrap().dblock;
                let m = g.extents_mut().unwrap();
                m.remove(0, 1);
                assert!(m.insert(1 << 50, d, 1));
            }),
            none_p(),
            "beyond the largest file size".into(),
        ),
        (
            "an extent beyond the data area",
            Box::new(move |t| {
                let n = inode(t, i.f);
                let mut g = n.write();
                assert!(g.extents_mut().unwrap().insert(100, 1 << 40, 1));
            }),
            none_p(),
            "checkpoint".into(),
        ),
        (
            "a directory's parent pointer",
            Box::new(move |t| inode(t, i.b).write().dir_mut().unwrap().parent = 1),
            none_p(),
            format!("directory {}: parent pointer 1", i.b),
        ),
        (
            "an entry naming a missing inode",
            Box::new(move |t| {
                inode(t, i.a).write().dir_mut().unwrap().insert(
                    b"ghost",
                    999,
                    (mode::S_IFREG >> 12) as u8,
                );
            }),
            none_p(),
            "names missing or mismatched inode 999".into(),
        ),
        (
            "a symlink's size",
            Box::new(move |t| inode(t, i.l).write().attr.size = 7),
            none_p(),
            format!("symlink {}: size 7", i.l),
        ),
        (
            "an orphan that still has links",
            Box::new(move |t| {
                t.orphans.insert(i.f);
            }),
            none_p(),
            "is missing or linked".into(),
        ),
    ];
    for (case, edit, patch, want) in cases {
        let bad = with_checkpoint(&img, edit, patch);
        refused(&bad, "checkpoint", case);
        refused(&bad, &want, case);
    }
    // A checkpoint rewritten without change is still clean (the helper is sound).
    let same = with_checkpoint(&img, |_| {}, |_| {});
    assert!(sealfs::fsck::check(&SimDevice::from_image(same, true)).clean());
}

/// Erasing the log region does not roll the filesystem back to its checkpoint: the log
/// header of the current generation is gone, fsck exits 2 and mount refuses. Erasing only
/// its first 4 KiB (both header slots) is caught the same way.
#[test]
fn an_erased_log_is_refused_not_rolled_back() {
    let (img, i) = base();
    // Records after the checkpoint that an erased log would lose.
    let dev = Arc::new(SimDevice::from_image(img, true));
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap();
    fs.rename(1, b"f", i.a, b"moved", 0, Ctx::root()).unwrap();
    fs.mkdir(1, b"later", 0o700, Ctx::root()).unwrap();
    let gen = fs.superblock().generation;
    drop(fs);
    let img = dev.snapshot();
    let l = read_superblocks(&SimDevice::from_image(img.clone(), true))
        .unwrap()
        .current
        .layout;
    let log = l.log_off as usize..(l.log_off + l.log_len) as usize;
    let cases = [
        ("the whole log region", log.clone()),
        ("its first 4 KiB", log.start..log.start + 4096),
    ];
    for (case, range) in cases {
        let mut bad = img.clone();
        bad[range].fill(0);
        let want = format!("log header of generation {gen}");
        refused(&bad, &want, case);
        let rep = sealfs::fsck::check(&SimDevice::from_image(bad.clone(), true));
        assert!(rep.unloadable, "{case}");
        // The command exits 2.
        let path = std::env::temp_dir().join(format!(
            "sealfs-erased-log-{}-{}",
            std::process::id(),
            case.len()
        ));
        std::fs::write(&path, &bad).unwrap();
        let code = sealfs::fsck::run(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(code, 2, "{case}: fsck exit status");
    }
    // The intact image is clean and has the records.
    let dev = Arc::new(SimDevice::from_image(img, true));
    assert!(sealfs::fsck::check(&*dev).clean());
    let fs = Filesystem::mount(Box::new(dev), MountOptions { read_only: true }).unwrap();
    assert!(fs.lookup(1, b"later").is_ok());
}

/// The header of the generation before stays valid while the next checkpoint is written
/// (it goes to the other slot), so the header check never refuses a state a crash leaves;
/// a header of the wrong generation is refused.
#[test]
fn a_log_header_of_another_generation_is_refused() {
    let (img, _) = base();
    let sb = read_superblocks(&SimDevice::from_image(img.clone(), true))
        .unwrap()
        .current;
    let l = sb.layout;
    let mut bad = img.clone();
    // Copy the other slot's header (generation - 1 or older) over the current one.
    let cur =
        (l.log_off + sealfs::format::log_header::LogHeader::slot_offset(sb.generation)) as usize;
    let other = (l.log_off + sealfs::format::log_header::LogHeader::slot_offset(sb.generation + 1))
        as usize;
    let n = sealfs::format::log_header::LOG_HEADER_LEN;
    let copy = bad[other..other + n].to_vec();
    bad[cur..cur + n].copy_from_slice(&copy);
    refused(&bad, "log header", "header of another generation");
}
