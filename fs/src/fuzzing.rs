//! Fuzz-target bodies, shared by the cargo-fuzz front end (`fuzz/fuzz_targets/*.rs`, nightly,
//! libFuzzer) and the seeded mutation loops that run on stable inside `cargo test`
//! (`fs/tests/fuzz_loops.rs`), so that both run exactly the same code on an input.
//!
//! Each target takes arbitrary bytes, never fails on them, and panics only when a property
//! is violated (or when the code under test panics, which is the bug being looked for). A
//! target returns `true` when the input got through to the deepest layer (decoded, mounted),
//! which the stable loops use as their only feedback.
//!
//! Checksums would stop almost every mutated input at the first check, so most targets start
//! with a flag byte that asks the harness to *repair* magic numbers, lengths and checksums
//! after mutation: that is what a crafted image (rather than a bit rot) looks like, and it
//! lets the mutations reach the field validation and the consumers behind it.
//!
//! Input formats (documented for people writing seeds by hand):
//! - `superblock`: `sel u8, flags u8, [device size u64 when sel % 4 == 3], slot A (256 bytes),
//!   slot B (256 bytes)`; short inputs are zero-padded.
//! - `log_record`: `flags u8, record bytes`.
//! - `checkpoint`: `flags u8, sel u8, checkpoint blob`.
//! - `image`: `flags u8`, then patches `region u8, offset u16 LE, length u8, bytes`.
//! - `ioctl_args`: `sel u8, argument bytes`.

use std::collections::{HashSet, VecDeque};
use std::sync::OnceLock;

use sealfs_alloc::Allocator;

use crate::abi;
use crate::device::sim::SimDevice;
use crate::device::Device;
use crate::filesystem::mount::{mkfs, MkfsOptions, MountOptions};
use crate::filesystem::namespace::DirEntry;
use crate::filesystem::xattr::XattrReply;
use crate::format::codec::{le32, le64, put32, put64};
use crate::format::layout::{LayoutOptions, SB_SLOT_SIZE};
use crate::format::log_header::{records_start, LogHeader, LOG_HEADER_LEN};
use crate::format::record::{
    decode_header, decode_record, MapExtent, Op, Ts, REC_ALIGN, REC_HEADER, REC_MAGIC, REC_MAX,
};
use crate::format::superblock::{self, Superblock, FORMAT_VERSION, SB_CRC_AT, SB_LEN, SB_MAGIC};
use crate::format::{crc, Layout};
use crate::fsck;
use crate::journal::checkpoint::{self, CKPT_HEADER, CKPT_MAGIC};
use crate::journal::replay::ReplayBlocks;
use crate::meta::inode::mode;
use crate::meta::table::{Blocks, Table};
use crate::{Ctx, Filesystem};

/// The targets, by name (the cargo-fuzz binaries and corpus directories have these names).
pub const TARGETS: &[&str] = &[
    "superblock",
    "log_record",
    "checkpoint",
    "image",
    "ioctl_args",
];

/// Runs target `name` on `data`. Panics on an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "superblock" => superblock(data),
        "log_record" => log_record(data),
        "checkpoint" => checkpoint(data),
        "image" => image(data),
        "ioctl_args" => ioctl_args(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

// Field offsets, as the format modules export them.
use crate::format::record::{H_CRC as REC_OFF_CRC, H_LEN as REC_OFF_LEN};
use crate::format::superblock::{
    OFF_ACTIVE_CKPT as SB_OFF_ACTIVE_CKPT, OFF_CKPT_CRC as SB_OFF_CKPT_CRC,
    OFF_CKPT_USED as SB_OFF_CKPT_USED, OFF_FLAGS as SB_OFF_FLAGS, OFF_VERSION as SB_OFF_VERSION,
    RESERVED as SB_RESERVED,
};
use crate::journal::checkpoint::{
    OFF_BLOCK_SIZE as CKPT_OFF_BLOCK_SIZE, OFF_BODY_LEN as CKPT_OFF_BODY_LEN,
};
/// Superblock bytes that `Superblock::decode` does not read: flags, reserved fields and the
/// checksum (which covers them).
const SB_UNREAD: &[(usize, usize)] = &[
    (SB_OFF_FLAGS, SB_OFF_FLAGS + 4),
    (SB_RESERVED[0].start, SB_RESERVED[0].end),
    (SB_RESERVED[1].start, SB_RESERVED[1].end),
    (SB_RESERVED[2].start, SB_LEN),
];

/// A slice of `data` starting at `at`, `n` bytes long, zero-padded when `data` is short.
fn padded(data: &[u8], at: usize, n: usize) -> Vec<u8> {
    let mut v = data.get(at..).unwrap_or(&[]).to_vec();
    v.resize(n, 0);
    v
}

/// Rewrites the checksum of an encoded superblock slot.
fn fix_sb_crc(slot: &mut [u8]) {
    let c = crc(&[&slot[..SB_CRC_AT]]);
    put32(slot, SB_CRC_AT, c);
}

// ---------------------------------------------------------------------------------------
// superblock

/// `Superblock::decode` and `superblock::pick` on two slot images and a device size.
pub fn superblock(data: &[u8]) -> bool {
    let sel = data.first().copied().unwrap_or(0);
    let flags = data.get(1).copied().unwrap_or(0);
    let mut at = 2;
    let device_size = match sel % 4 {
        0 => 64 << 20,
        1 => 4 << 20,
        2 => 2 << 20,
        _ => {
            at += 8;
            le64(&padded(data, 2, 8), 0)
        }
    };
    // The raw input as one slot: exercises the short and odd-length paths.
    let _ = Superblock::decode(data.get(at..).unwrap_or(&[]), device_size);
    let mut a = padded(data, at, SB_LEN);
    let mut b = padded(data, at + SB_LEN, SB_LEN);
    for (slot, bit) in [(&mut a, 0u8), (&mut b, 1)] {
        if flags & (1 << bit) != 0 {
            slot[..8].copy_from_slice(SB_MAGIC);
            put32(slot, SB_OFF_VERSION, superblock::FORMAT_VERSION);
        }
        if flags & (4 << bit) != 0 {
            fix_sb_crc(slot);
        }
    }
    let da = check_slot(&a, device_size);
    let db = check_slot(&b, device_size);
    let p = superblock::pick(&a, &b, device_size);
    match (&da, &db, &p) {
        (None, None, Err(_)) => {}
        (_, _, Ok(p)) => {
            let best = [da, db].into_iter().flatten().map(|s| s.generation).max();
            assert_eq!(
                Some(p.current.generation),
                best,
                "pick chose a lower generation"
            );
            assert!(
                da == Some(p.current) || db == Some(p.current),
                "pick returned a slot neither decode returned"
            );
            if da.is_some() != db.is_some() {
                assert!(p.other_problem.is_some(), "a bad slot went unreported");
            }
        }
        _ => panic!("pick disagrees with decode: {da:?} {db:?} {p:?}"),
    }
    da.is_some() || db.is_some()
}

/// Decodes one slot and checks what a successful decode promises.
fn check_slot(slot: &[u8], device_size: u64) -> Option<Superblock> {
    let sb = Superblock::decode(slot, device_size).ok()?;
    sb.layout
        .validate(device_size)
        .expect("decoded layout invalid");
    assert!(sb.active_ckpt <= 1);
    assert!(sb.ckpt_used > 0 && sb.ckpt_used <= sb.layout.ckpt_len);
    let enc = sb.encode();
    assert_eq!(
        Superblock::decode(&enc, device_size).as_ref(),
        Ok(&sb),
        "re-encoded superblock decodes differently"
    );
    // Every byte decode reads must come back unchanged.
    let mut i = 0;
    while i < SB_LEN {
        if let Some(&(_, end)) = SB_UNREAD.iter().find(|(s, e)| (*s..*e).contains(&i)) {
            i = end;
            continue;
        }
        assert_eq!(enc[i], slot[i], "superblock byte {i} does not round-trip");
        i += 1;
    }
    Some(sb)
}

// ---------------------------------------------------------------------------------------
// log_record

/// `record::decode_header` / `decode_record`, and round trips both ways: whatever decodes
/// re-encodes to the same bytes, and an operation built from the input decodes back to
/// itself.
///
/// Flags: bit 0 writes the magic, bit 1 sets the length to the padded input length, bit 2
/// recomputes the checksum, bit 3 also builds an `Op` from the input and round-trips it.
pub fn log_record(data: &[u8]) -> bool {
    let flags = data.first().copied().unwrap_or(0);
    let raw = data.get(1..).unwrap_or(&[]);
    let _ = check_record(raw);
    let mut b = raw.to_vec();
    if flags & 7 != 0 {
        if b.len() < REC_HEADER {
            b.resize(REC_HEADER, 0);
        }
        if flags & 1 != 0 {
            put32(&mut b, 0, REC_MAGIC);
        }
        if flags & 2 != 0 {
            b.resize(b.len().div_ceil(REC_ALIGN) * REC_ALIGN, 0);
            let n = b.len() as u32;
            put32(&mut b, REC_OFF_LEN, n);
        }
        if flags & 4 != 0 {
            fix_record_crc(&mut b);
        }
    }
    let ok = check_record(&b);
    if flags & 8 != 0 {
        op_roundtrip(raw);
    }
    ok
}

/// Recomputes the checksum of the record at the start of `b` when its length field fits.
fn fix_record_crc(b: &mut [u8]) -> bool {
    if b.len() < REC_HEADER {
        return false;
    }
    let len = le32(b, REC_OFF_LEN) as usize;
    if len < REC_HEADER || len > b.len() {
        return false;
    }
    let c = crc(&[&b[..REC_OFF_CRC], &b[REC_OFF_CRC + 4..len]]);
    put32(b, REC_OFF_CRC, c);
    true
}

fn check_record(b: &[u8]) -> bool {
    let h = decode_header(b);
    let Ok((rh, op)) = decode_record(b) else {
        return false;
    };
    assert_eq!(h, Ok(rh), "decode_record and decode_header disagree");
    assert!(rh.len <= b.len() && rh.len >= REC_HEADER && rh.len <= REC_MAX);
    let enc = op.encode_record(rh.seq);
    assert!(
        enc == b[..rh.len],
        "record does not re-encode to the same bytes:\n in  {}\n out {}",
        hex(&b[..rh.len]),
        hex(&enc)
    );
    true
}

/// A tiny cursor over fuzz input that never fails (zeros past the end).
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> u8 {
        let v = self.b.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        self.u32() as u64 | (self.u32() as u64) << 32
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.u8() as usize).min(max);
        (0..n).map(|_| self.u8()).collect()
    }
    fn ts(&mut self) -> Ts {
        Ts {
            sec: self.u64() as i64,
            nsec: self.u32() % 1_000_000_000,
        }
    }
}

/// Builds an operation of every kind from fuzz bytes; encoding then decoding must give it
/// back unchanged.
fn op_roundtrip(b: &[u8]) {
    let mut c = Cursor { b, pos: 0 };
    let op = if c.u8() % 13 == 12 {
        let n = 1 + c.u8() as usize % 4;
        Op::Group((0..n).map(|_| single_op(&mut c)).collect())
    } else {
        single_op(&mut c)
    };
    let seq = c.u64();
    let enc = op.encode_record(seq);
    let (h, back) = decode_record(&enc).expect("an encoded record does not decode");
    assert_eq!((h.seq, h.len), (seq, enc.len()));
    assert_eq!(back, op, "an encoded record decodes to another operation");
}

/// One operation of any kind but `Group`, from fuzz bytes.
fn single_op(c: &mut Cursor<'_>) -> Op {
    let tag = c.u8() % 12;
    match tag {
        0 => Op::Create {
            parent: c.u64(),
            name: c.bytes(255),
            ino: c.u64(),
            mode: c.u32(),
            uid: c.u32(),
            gid: c.u32(),
            rdev: c.u64(),
            time: c.ts(),
            target: c.bytes(255),
        },
        1 => Op::Link {
            ino: c.u64(),
            parent: c.u64(),
            name: c.bytes(255),
            time: c.ts(),
        },
        2 => Op::Unlink {
            parent: c.u64(),
            name: c.bytes(255),
            time: c.ts(),
        },
        3 => Op::Rename {
            parent: c.u64(),
            name: c.bytes(255),
            new_parent: c.u64(),
            new_name: c.bytes(255),
            flags: c.u32(),
            time: c.ts(),
        },
        4 => Op::SetAttr {
            ino: c.u64(),
            valid: c.u32(),
            mode: c.u32(),
            uid: c.u32(),
            gid: c.u32(),
            atime: c.ts(),
            mtime: c.ts(),
            ctime: c.ts(),
            flags: c.u32(),
        },
        5 => Op::Truncate {
            ino: c.u64(),
            size: c.u64(),
            time: c.ts(),
        },
        6 => {
            let (ino, size, time, touch) = (c.u64(), c.u64(), c.ts(), c.u8() & 1 != 0);
            let n = c.u8() as usize % 8;
            let extents = (0..n)
                .map(|_| MapExtent {
                    fblock: c.u64(),
                    dblock: c.u64(),
                    len: c.u64(),
                })
                .collect();
            Op::Map {
                ino,
                size,
                time,
                touch,
                extents,
            }
        }
        7 => Op::Punch {
            ino: c.u64(),
            fblock: c.u64(),
            count: c.u64(),
            time: c.ts(),
        },
        8 => Op::SetXattr {
            ino: c.u64(),
            // Only valid names encode to a record that decodes (record::valid_xattr_name).
            name: {
                let mut n: Vec<u8> = c.bytes(255).into_iter().map(|b| b.max(1)).collect();
                if n.is_empty() {
                    n.push(b'x');
                }
                n
            },
            value: c.bytes(255),
            time: c.ts(),
        },
        9 => Op::RemoveXattr {
            ino: c.u64(),
            name: c.bytes(255),
            time: c.ts(),
        },
        10 => Op::Evict { ino: c.u64() },
        _ => Op::Remap {
            ino: c.u64(),
            fblock: c.u64(),
            dblock: c.u64(),
            len: c.u64(),
        },
    }
}

// ---------------------------------------------------------------------------------------
// checkpoint

/// Counts what a checkpoint reports to its `Blocks` sink while feeding the allocator, as
/// mount does.
struct CountingBlocks<'a> {
    inner: ReplayBlocks<'a>,
    used: u64,
}

impl Blocks for CountingBlocks<'_> {
    fn used(&mut self, start: u64, len: u64) -> Result<(), crate::meta::table::ApplyError> {
        self.inner.used(start, len)?;
        self.used += len;
        Ok(())
    }
    fn freed(
        &mut self,
        ino: u64,
        start: u64,
        len: u64,
    ) -> Result<(), crate::meta::table::ApplyError> {
        self.inner.freed(ino, start, len)
    }
}

/// Sum of the extent lengths of every file in a table.
fn mapped_blocks(t: &Table) -> u64 {
    t.inodes
        .values()
        .map(|n| {
            n.read()
                .extents()
                .map_or(0, |m| m.iter().map(|e| e.len).sum())
        })
        .sum()
}

/// `checkpoint::verify` and `checkpoint::decode` into a table with the allocator as the
/// block sink; a decoded checkpoint must re-encode to one that decodes to the same table.
///
/// Flags: bit 0 writes the magic, bit 1 the body length, bit 2 the block size of the `sel`
/// byte. `sel` bit 0 picks 2 MiB blocks instead of 4 KiB, bits 1-3 the allocator size.
pub fn checkpoint(data: &[u8]) -> bool {
    let flags = data.first().copied().unwrap_or(0);
    let sel = data.get(1).copied().unwrap_or(0);
    let mut blob = data.get(2..).unwrap_or(&[]).to_vec();
    let block_size: u64 = if sel & 1 != 0 { 2 << 20 } else { 4096 };
    let total =
        [0u64, 1, 16, 462, 4096, 1 << 20, u32::MAX as u64, 1 << 40][(sel >> 1) as usize & 7];
    if flags & 7 != 0 && blob.len() < CKPT_HEADER {
        blob.resize(CKPT_HEADER, 0);
    }
    if flags & 1 != 0 {
        blob[..8].copy_from_slice(CKPT_MAGIC);
    }
    if flags & 2 != 0 {
        let n = (blob.len() - CKPT_HEADER) as u64;
        put64(&mut blob, CKPT_OFF_BODY_LEN, n);
    }
    if flags & 4 != 0 {
        put64(&mut blob, CKPT_OFF_BLOCK_SIZE, block_size);
    }
    let c = crc(&[&blob]);
    let verified = checkpoint::verify(&blob, c);
    assert!(
        checkpoint::verify(&blob, c ^ 1).is_err(),
        "checkpoint verified against a wrong checksum"
    );
    if let Ok(h) = verified {
        assert_eq!((h.generation, h.log_seq), (le64(&blob, 8), le64(&blob, 16)));
    }
    // decode is public and must be safe on unverified bytes as well.
    let mut alloc = Allocator::new(total);
    let mut sink = CountingBlocks {
        inner: ReplayBlocks { alloc: &mut alloc },
        used: 0,
    };
    let Ok(t) = checkpoint::decode(&blob, block_size, &mut sink) else {
        return false;
    };
    let reported = sink.used;
    assert_eq!(
        alloc.total_blocks() - alloc.free_blocks(),
        reported,
        "allocator and sink disagree"
    );
    assert_eq!(
        mapped_blocks(&t),
        reported,
        "extents and owned blocks disagree"
    );
    assert!(t.inodes.contains_key(&crate::meta::ROOT_INO));
    let (generation, log_seq) = (le64(&blob, 8), le64(&blob, 16));
    let e1 = checkpoint::encode(&t, generation, log_seq);
    checkpoint::verify(&e1, crc(&[&e1])).expect("re-encoded checkpoint does not verify");
    let mut alloc2 = Allocator::new(total);
    let t2 = checkpoint::decode(&e1, block_size, &mut ReplayBlocks { alloc: &mut alloc2 })
        .unwrap_or_else(|e| panic!("re-encoded checkpoint does not decode: {e}"));
    assert_eq!(alloc2.free_blocks(), alloc.free_blocks());
    let e2 = checkpoint::encode(&t2, generation, log_seq);
    assert!(e1 == e2, "checkpoint encoding is not a fixed point");
    verified.is_ok()
}

// ---------------------------------------------------------------------------------------
// image

/// Size of the image the `image` target patches.
pub const IMAGE_SIZE: u64 = 2 << 20;

/// The valid image the `image` target patches, and its layout.
pub struct BaseImage {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Its layout.
    pub layout: Layout,
    /// Log bytes in use (records after the checkpoint).
    pub log_used: u64,
    /// Offset and length of the current checkpoint.
    pub current_ckpt: (u64, u64),
}

/// Builds (once per process) a small valid image: files, directories, a symlink, a device
/// node, hard links, xattrs, a fragmented file moved by defrag, a checkpoint holding an
/// orphan, and log records of every operation type after it.
pub fn base_image() -> &'static BaseImage {
    static IMG: OnceLock<BaseImage> = OnceLock::new();
    IMG.get_or_init(build_image)
}

fn build_image() -> BaseImage {
    let dev = std::sync::Arc::new(SimDevice::new(IMAGE_SIZE, true));
    mkfs(
        &*dev,
        MkfsOptions {
            layout: LayoutOptions::default(),
            ..Default::default()
        },
    )
    .expect("mkfs");
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).expect("mount");
    let c = Ctx::root();
    let pat = |n: usize, k: u8| {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(k))
            .collect::<Vec<u8>>()
    };
    let d = fs.mkdir(1, b"dir", 0o755, c).unwrap();
    let sub = fs.mkdir(d.ino, b"sub", 0o700, c).unwrap();
    let (a, fa) = fs.create(1, b"a", 0o644, libc::O_RDWR, c).unwrap();
    let (b, fb) = fs.create(d.ino, b"b", 0o600, libc::O_RDWR, c).unwrap();
    // Interleaved block writes fragment both files.
    for i in 0..6u64 {
        fs.write(a.ino, i * 4096, &pat(4096, 3)).unwrap();
        fs.write(b.ino, i * 4096, &pat(4096, 5)).unwrap();
    }
    fs.setxattr(a.ino, b"user.one", b"1", 0).unwrap();
    fs.setxattr(a.ino, b"trusted.two", &pat(100, 7), 0).unwrap();
    fs.symlink(sub.ino, b"ln", b"../../a", c).unwrap();
    fs.mknod(1, b"fifo", mode::S_IFIFO | 0o644, 0, c).unwrap();
    fs.mknod(1, b"chr", mode::S_IFCHR | 0o600, 0x0501, c)
        .unwrap();
    fs.link(a.ino, sub.ino, b"a2").unwrap();
    fs.release(fb).unwrap();
    // An orphan: unlinked while open, caught by the checkpoint.
    let (o, fo) = fs.create(1, b"orphan", 0o644, libc::O_RDWR, c).unwrap();
    fs.write(o.ino, 0, b"gone").unwrap();
    fs.unlink(1, b"orphan").unwrap();
    fs.checkpoint().unwrap();
    // After the checkpoint: one record of every type.
    fs.release(fo).unwrap(); // Evict
    let (e, fe) = fs.create(1, b"e", 0o644, libc::O_RDWR, c).unwrap(); // Create
    fs.write(e.ino, 0, &pat(20000, 11)).unwrap(); // Map
    fs.fallocate(
        e.ino,
        4096,
        4096,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
    )
    .unwrap(); // Punch
    fs.truncate(e.ino, 9000, c).unwrap(); // Truncate
    fs.setattr(
        e.ino,
        crate::filesystem::namespace::SetAttr {
            mode: Some(0o640),
            ..Default::default()
        },
        c,
    )
    .unwrap(); // SetAttr
    fs.setxattr(e.ino, b"user.x", b"value", 0).unwrap(); // SetXattr
    fs.removexattr(a.ino, b"user.one").unwrap(); // RemoveXattr
    fs.link(e.ino, d.ino, b"e2").unwrap(); // Link
    fs.rename(1, b"e", sub.ino, b"e3", 0, Ctx::root()).unwrap(); // Rename
    fs.unlink(1, b"fifo").unwrap(); // Unlink (+ Evict)
    fs.release(fe).unwrap();
    fs.release(fa).unwrap();
    let rep = fs.defrag(c).unwrap(); // Remap
    assert!(rep.moved > 0, "defrag moved nothing: {rep:?}");
    let log_used = fs.stats().log_used;
    let layout = *fs.layout();
    let sb = fs.superblock();
    let current_ckpt = (layout.ckpt_off[sb.active_ckpt as usize], sb.ckpt_used);
    drop(fs);
    let mut bytes = dev.snapshot();
    canonicalize(&mut bytes, &layout);
    let r = fsck::check(&SimDevice::from_image(bytes.clone(), true));
    assert!(r.clean(), "base image not clean: {:?}", r.problems);
    BaseImage {
        bytes,
        layout,
        log_used,
        current_ckpt,
    }
}

/// The time every timestamp of the base image is set to.
const FIXED_TIME: Ts = Ts {
    sec: 1_700_000_000,
    nsec: 123_456_789,
};

/// Makes the base image the same in every process: a fixed UUID, creation time and
/// timestamps (in both checkpoints and in every log record, live or stale), checksums
/// rewritten, and the torn remains of older records zeroed. A crash input of the `image`
/// target then reproduces in a later run.
fn canonicalize(img: &mut [u8], l: &Layout) {
    struct NoBlocks;
    impl Blocks for NoBlocks {
        fn used(&mut self, _: u64, _: u64) -> Result<(), crate::meta::table::ApplyError> {
            Ok(())
        }
        fn freed(&mut self, _: u64, _: u64, _: u64) -> Result<(), crate::meta::table::ApplyError> {
            Ok(())
        }
    }
    let slot_b = SB_SLOT_SIZE as usize;
    for s in [0, slot_b] {
        let mut sb = Superblock::decode(&img[s..s + SB_LEN], IMAGE_SIZE).expect("base slot");
        let co = l.ckpt_off[sb.active_ckpt as usize] as usize;
        let blob = &img[co..co + sb.ckpt_used as usize];
        let hdr = checkpoint::verify(blob, sb.ckpt_crc).expect("base checkpoint");
        let t = checkpoint::decode(blob, l.block_size, &mut NoBlocks).expect("base checkpoint");
        for n in t.inodes.values() {
            let a = &mut n.write().attr;
            (a.atime, a.mtime, a.ctime, a.crtime) =
                (FIXED_TIME, FIXED_TIME, FIXED_TIME, FIXED_TIME);
        }
        let blob = checkpoint::encode(&t, hdr.generation, hdr.log_seq);
        assert_eq!(blob.len() as u64, sb.ckpt_used);
        img[co..co + blob.len()].copy_from_slice(&blob);
        sb.ckpt_crc = crc(&[&blob]);
        sb.uuid = *b"sealfs-fuzz-base";
        sb.created_ns = 1_700_000_000_000_000_000;
        img[s..s + SB_LEN].copy_from_slice(&sb.encode());
    }
    let log = &mut img[l.log_off as usize..(l.log_off + l.log_len) as usize];
    // The log headers name the UUID too.
    for slot in [0, 1] {
        let at = LogHeader::slot_offset(slot) as usize;
        if let Ok(mut h) = LogHeader::decode(&log[at..]) {
            h.uuid = *b"sealfs-fuzz-base";
            log[at..at + LOG_HEADER_LEN].copy_from_slice(&h.encode());
        }
    }
    let mut pos = records_start(FORMAT_VERSION) as usize;
    while pos + REC_HEADER <= log.len() {
        let Ok((h, mut op)) = decode_record(&log[pos..]) else {
            // Past the live records: torn remains of older ones (times included) go.
            log[pos..pos + REC_ALIGN].fill(0);
            pos += REC_ALIGN;
            continue;
        };
        fix_times(&mut op);
        let rec = op.encode_record(h.seq);
        assert_eq!(rec.len(), h.len);
        log[pos..pos + rec.len()].copy_from_slice(&rec);
        pos += rec.len();
    }
}

/// Sets every timestamp an operation carries to `FIXED_TIME`.
fn fix_times(op: &mut Op) {
    let f = FIXED_TIME;
    match op {
        Op::Create { time, .. }
        | Op::Link { time, .. }
        | Op::Unlink { time, .. }
        | Op::Rename { time, .. }
        | Op::Truncate { time, .. }
        | Op::Map { time, .. }
        | Op::Punch { time, .. }
        | Op::SetXattr { time, .. }
        | Op::RemoveXattr { time, .. } => *time = f,
        Op::SetAttr {
            atime,
            mtime,
            ctime,
            ..
        } => (*atime, *mtime, *ctime) = (f, f, f),
        Op::Evict { .. } | Op::Remap { .. } => {}
        Op::Group(ops) => ops.iter_mut().for_each(fix_times),
    }
}

/// Applies the patches of an `image` input to a copy of the base image, then repairs the
/// checksums the flags ask for. Patches only touch the metadata regions.
///
/// Regions (`region % 6`): 0 slot A and 1 slot B (offset % 256), 2 the log (offset % log
/// length), 3 the active checkpoint (offset % its length), 4 the inactive checkpoint area,
/// 5 anywhere in the metadata (offset × 4).
///
/// Flags: bit 0 repairs every log record checksum along the replay chain, bit 1 rewrites the
/// checkpoint checksum and body length into both superblocks, bit 2 repairs both superblock
/// checksums (done last).
pub fn patch_image(data: &[u8]) -> Vec<u8> {
    let mut img = patch_meta(data);
    img.extend_from_slice(&base_image().bytes[img.len()..]);
    img
}

/// End of the metadata regions (superblocks, log, checkpoint areas) of the base image.
fn meta_end() -> u64 {
    let l = base_image().layout;
    l.ckpt_off[1] + l.ckpt_len
}

/// `patch_image`, but only the metadata prefix (`meta_end()` bytes): the data blocks are
/// never patched, and copying them for every input would dominate the target's time.
fn patch_meta(data: &[u8]) -> Vec<u8> {
    let base = base_image();
    let l = base.layout;
    let meta_end = meta_end();
    let mut img = base.bytes[..meta_end as usize].to_vec();
    let flags = data.first().copied().unwrap_or(0);
    let (ck, ck_used) = base.current_ckpt;
    let other_ck = if ck == l.ckpt_off[0] {
        l.ckpt_off[1]
    } else {
        l.ckpt_off[0]
    };
    let mut p = 1;
    while p + 4 <= data.len() {
        let region = data[p];
        let off = u16::from_le_bytes([data[p + 1], data[p + 2]]) as u64;
        let n = data[p + 3] as usize;
        p += 4;
        let bytes = &data[p..(p + n).min(data.len())];
        p += n;
        let (start, len) = match region % 6 {
            0 => (0, SB_LEN as u64),
            1 => (SB_SLOT_SIZE, SB_LEN as u64),
            2 => (l.log_off, l.log_len),
            3 => (ck, ck_used),
            4 => (other_ck, l.ckpt_len),
            _ => (0, meta_end),
        };
        let off = if region % 6 == 5 { off * 4 } else { off };
        let at = start + off % len;
        let room = (start + len - at) as usize;
        let take = bytes.len().min(room);
        img[at as usize..at as usize + take].copy_from_slice(&bytes[..take]);
    }
    if flags & 1 != 0 {
        let log = &mut img[l.log_off as usize..(l.log_off + l.log_len) as usize];
        let mut pos = records_start(FORMAT_VERSION) as usize;
        while pos + REC_HEADER <= log.len() && le32(log, pos) == REC_MAGIC {
            if !fix_record_crc(&mut log[pos..]) {
                break;
            }
            match decode_header(&log[pos..]) {
                Ok(h) => pos += h.len,
                Err(_) => break,
            }
        }
    }
    if flags & 2 != 0 {
        for s in [0, SB_SLOT_SIZE as usize] {
            let active = le32(&img, s + SB_OFF_ACTIVE_CKPT) as usize;
            let used = le64(&img, s + SB_OFF_CKPT_USED);
            if active > 1 || used < CKPT_HEADER as u64 || used > l.ckpt_len {
                continue;
            }
            let co = l.ckpt_off[active] as usize;
            put64(&mut img, co + CKPT_OFF_BODY_LEN, used - CKPT_HEADER as u64);
            let c = crc(&[&img[co..co + used as usize]]);
            put32(&mut img, s + SB_OFF_CKPT_CRC, c);
        }
    }
    if flags & 4 != 0 {
        fix_sb_crc(&mut img[..SB_LEN]);
        fix_sb_crc(&mut img[SB_SLOT_SIZE as usize..SB_SLOT_SIZE as usize + SB_LEN]);
    }
    img
}

/// Patches the base image, runs fsck on it, mounts it read-only and walks the whole tree
/// through the core API. When fsck calls the image clean, mount must succeed and every
/// entry must be reachable; a clean image is also mounted read-write, checkpointed, and
/// must still be clean afterwards.
///
/// Returns true when the patches changed live metadata (a superblock slot, the log records
/// in use, the current checkpoint) and the image still mounted.
pub fn image(data: &[u8]) -> bool {
    let meta = patch_meta(data);
    let changed = live_metadata_changed(&meta);
    // fsck and the read-only mount never write: one device serves all three steps.
    let dev = std::sync::Arc::new(CowDevice::new(meta));
    let report = fsck::check(&*dev);
    let clean = report.clean();
    let fs = match Filesystem::mount(Box::new(dev.clone()), MountOptions { read_only: true }) {
        Ok(fs) => fs,
        Err(e) => {
            assert!(!clean, "fsck says clean but mount fails: {e}");
            return false;
        }
    };
    walk(&fs, clean);
    drop(fs);
    if clean {
        let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default())
            .unwrap_or_else(|e| panic!("fsck says clean but a read-write mount fails: {e}"));
        fs.checkpoint()
            .unwrap_or_else(|e| panic!("checkpoint of a clean image fails: {e}"));
        drop(fs);
        let again = fsck::check(&*dev);
        assert!(
            again.clean(),
            "clean image not clean after mount + checkpoint: {:?}",
            again.problems
        );
    }
    changed
}

/// The base image with its metadata prefix replaced: reads of the data blocks come from
/// the base image until something writes there (then they are copied once).
struct CowDevice {
    meta_len: usize,
    state: parking_lot::Mutex<(Vec<u8>, Option<Vec<u8>>)>,
}

impl CowDevice {
    fn new(meta: Vec<u8>) -> CowDevice {
        CowDevice {
            meta_len: meta.len(),
            state: parking_lot::Mutex::new((meta, None)),
        }
    }
}

impl Device for CowDevice {
    fn size(&self) -> u64 {
        IMAGE_SIZE
    }
    fn kind(&self) -> crate::device::DeviceKind {
        crate::device::DeviceKind::Sim
    }
    fn align(&self) -> u64 {
        4096
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> crate::Result<()> {
        crate::device::check_range(IMAGE_SIZE, off, buf.len() as u64)?;
        let g = self.state.lock();
        let (m, off, end) = (self.meta_len, off as usize, off as usize + buf.len());
        let split = end.min(m).saturating_sub(off);
        let (lo, hi) = buf.split_at_mut(split);
        if split > 0 {
            lo.copy_from_slice(&g.0[off..off + split]);
        }
        if !hi.is_empty() {
            let from = off + split;
            match &g.1 {
                Some(d) => hi.copy_from_slice(&d[from - m..end - m]),
                None => hi.copy_from_slice(&base_image().bytes[from..end]),
            }
        }
        Ok(())
    }
    fn write(&self, off: u64, data: &[u8]) -> crate::Result<()> {
        crate::device::check_range(IMAGE_SIZE, off, data.len() as u64)?;
        let mut g = self.state.lock();
        let (m, off, end) = (self.meta_len, off as usize, off as usize + data.len());
        let split = end.min(m).saturating_sub(off);
        let (lo, hi) = data.split_at(split);
        if split > 0 {
            g.0[off..off + split].copy_from_slice(lo);
        }
        if !hi.is_empty() {
            let from = off + split;
            let d = g.1.get_or_insert_with(|| base_image().bytes[m..].to_vec());
            d[from - m..end - m].copy_from_slice(hi);
        }
        Ok(())
    }
    fn zero(&self, off: u64, len: u64) -> crate::Result<()> {
        self.write(off, &vec![0; len as usize])
    }
    fn flush(&self, off: u64, len: u64) -> crate::Result<()> {
        crate::device::check_range(IMAGE_SIZE, off, len)
    }
    fn fence(&self) {}
    fn flush_method(&self) -> &'static str {
        "simulated"
    }
}

/// Whether `img` differs from the base image where the base image's metadata is live.
fn live_metadata_changed(img: &[u8]) -> bool {
    let base = base_image();
    let l = base.layout;
    let slot_b = SB_SLOT_SIZE as usize;
    let (ck, used) = base.current_ckpt;
    let log = l.log_off as usize;
    [
        (0, SB_LEN),
        (slot_b, slot_b + SB_LEN),
        (log, log + base.log_used as usize),
        (ck as usize, (ck + used) as usize),
    ]
    .iter()
    .any(|&(s, e)| img[s..e] != base.bytes[s..e])
}

/// Visits every reachable inode with the read-only calls of the core API. On a clean image
/// these must succeed; on a damaged one they may fail but not panic.
fn walk(fs: &Filesystem, clean: bool) {
    const MAX_INODES: usize = 4096;
    const MAX_ENTRIES: usize = 4096;
    let _ = fs.stats();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([crate::meta::ROOT_INO]);
    while let Some(ino) = queue.pop_front() {
        if !seen.insert(ino) || seen.len() > MAX_INODES {
            continue;
        }
        let st = match fs.getattr(ino) {
            Ok(st) => st,
            Err(e) => {
                assert!(!clean, "getattr({ino}) on a clean image: {e}");
                continue;
            }
        };
        visit_inode(fs, ino, st.attr.mode, st.attr.size, clean);
        if st.attr.kind() != mode::S_IFDIR {
            continue;
        }
        let mut entries: Vec<DirEntry> = Vec::new();
        let r = fs.readdir(ino, 0, |e| {
            entries.push(e);
            entries.len() >= MAX_ENTRIES
        });
        if let Err(e) = r {
            assert!(!clean, "readdir({ino}) on a clean image: {e}");
        }
        // Resume from the middle, as a second getdents call would.
        if let Some(mid) = entries.get(entries.len() / 2) {
            let _ = fs.readdir(ino, mid.cookie, |_| false);
        }
        // readdir makes up "." and ".." (cookies 1 and 2); every later entry is stored and
        // must carry a name a directory can hold.
        for e in entries.into_iter().filter(|e| e.cookie > 2) {
            let valid = !e.name.is_empty()
                && e.name.len() <= 255
                && !e.name.contains(&b'/')
                && !e.name.contains(&0)
                && e.name != b"."
                && e.name != b"..";
            assert!(
                !clean || valid,
                "clean image, but directory {ino} has an entry named {:?}",
                String::from_utf8_lossy(&e.name)
            );
            match fs.lookup(ino, &e.name) {
                Ok(st) => assert!(
                    !clean || st.ino == e.ino,
                    "lookup of {:?} in {ino} gives {} but readdir says {}",
                    String::from_utf8_lossy(&e.name),
                    st.ino,
                    e.ino
                ),
                Err(err) => assert!(!clean, "lookup of a listed entry failed: {err}"),
            }
            queue.push_back(e.ino);
        }
        let _ = fs.lookup(ino, b"..");
        let _ = fs.lookup(ino, b"no such name");
    }
}

fn visit_inode(fs: &Filesystem, ino: u64, m: u32, size: u64, clean: bool) {
    let must = |what: &str, r: crate::Result<()>| {
        if let Err(e) = r {
            assert!(!clean, "{what}({ino}) on a clean image: {e}");
        }
    };
    match m & mode::S_IFMT {
        mode::S_IFREG => {
            must("read", fs.read(ino, 0, 1 << 16).map(drop));
            // The kernel never asks past i64::MAX (MAX_LFS_FILESIZE).
            let last = size.saturating_sub(5000).min(i64::MAX as u64 - (1 << 20));
            must("read", fs.read(ino, last, 8192).map(drop));
            let _ = fs.seek(ino, 0, libc::SEEK_DATA);
            let _ = fs.seek(ino, 0, libc::SEEK_HOLE);
            must("extents", fs.extents(ino).map(drop));
            let _ = fs.sealed_map(ino);
            if let Ok(fh) = fs.open(ino, libc::O_RDONLY, Ctx::root()) {
                let _ = fs.release(fh);
            }
        }
        mode::S_IFLNK => must("readlink", fs.readlink(ino).map(drop)),
        _ => {}
    }
    let _ = fs.get_flags(ino);
    if let Ok(XattrReply::Data(names)) = fs.listxattr(ino, 1 << 20) {
        // NUL-terminated names, as listxattr(2) returns them.
        let body = names.strip_suffix(&[0]).unwrap_or(&names);
        for name in body.split(|&c| c == 0).filter(|_| !names.is_empty()) {
            assert!(
                !clean || !name.is_empty(),
                "clean image, but inode {ino} lists an empty or NUL-containing xattr name"
            );
            must("getxattr", fs.getxattr(ino, name, 1 << 20).map(drop));
        }
    }
}

// ---------------------------------------------------------------------------------------
// ioctl_args

/// The ioctl argument decoders, on the raw bytes and on the bytes resized to the exact
/// argument size (`sel` bit 7), with encode/decode agreement for what decodes.
pub fn ioctl_args(data: &[u8]) -> bool {
    let sel = data.first().copied().unwrap_or(0);
    let raw = data.get(1..).unwrap_or(&[]);
    let which = sel % 9;
    let size = [
        abi::SEAL_ARG_SIZE,
        abi::IMMUTABLE_ARG_SIZE,
        abi::SEAL_LIST_SIZE,
        abi::SETUPMAPPING_SIZE,
        abi::SETUPMAPPING_SIZE,
        abi::RANGES_SIZE,
        abi::EXTENT_LIST_SIZE,
        abi::EXTENT_LIST_SIZE,
        abi::DEFRAG_SIZE,
    ][which as usize];
    let b = if sel & 0x80 != 0 {
        padded(raw, 0, size)
    } else {
        raw.to_vec()
    };
    match which {
        0 => {
            let Ok(a) = abi::SealArg::decode(&b) else {
                return false;
            };
            assert!(a.offset.checked_add(a.length).is_some());
            assert_eq!(a.encode()[..], b[..], "seal argument does not round-trip");
        }
        1 => {
            let Ok(p) = abi::decode_immutable(&b) else {
                return false;
            };
            assert_eq!(abi::encode_immutable(p)[..], b[..]);
        }
        2 => {
            let Ok((v, _total)) = abi::decode_seal_list(&b) else {
                return false;
            };
            assert!(v.len() <= abi::SEALS_MAX);
            let (back, _) = abi::decode_seal_list(&abi::encode_seal_list(&v)).unwrap();
            assert_eq!(back, v);
        }
        3 => {
            let Ok(m) = abi::SetupMapping::decode(&b) else {
                return false;
            };
            assert_eq!(m.encode()[8..40], b[8..40]);
        }
        4 => {
            let Ok(v) = abi::decode_mapping_answer(&b) else {
                return false;
            };
            assert!(v.len() <= abi::MAP_EXTENTS_MAX);
            assert!(abi::encode_mapping_answer(&b, &v).unwrap() == b);
        }
        5 => {
            let Ok(r) = abi::decode_ranges(&b) else {
                return false;
            };
            assert!(!r.is_empty() && r.len() <= abi::RANGES_MAX);
            let n = 8 + 16 * r.len();
            assert_eq!(abi::encode_ranges(&r)[..n], b[..n]);
        }
        6 => {
            let Ok(start) = abi::decode_extent_start(&b) else {
                return false;
            };
            assert_eq!(start, le64(&b, 0));
        }
        7 => {
            let Ok((v, total)) = abi::decode_extent_list(&b) else {
                return false;
            };
            let n = 16 + abi::DEV_EXTENT_SIZE * v.len();
            let enc = abi::encode_extent_list(le64(&b, 0), &v, total as usize);
            assert!(enc[..n] == b[..n]);
        }
        _ => {
            let Ok(c) = abi::decode_defrag(&b) else {
                return false;
            };
            assert_eq!(abi::encode_defrag(c[0], c[1], c[2], c[3])[..], b[..]);
        }
    }
    true
}

// ---------------------------------------------------------------------------------------
// seeds

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses lower- or upper-case hex (whitespace ignored).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Create { .. } => "create",
        Op::Link { .. } => "link",
        Op::Unlink { .. } => "unlink",
        Op::Rename { .. } => "rename",
        Op::SetAttr { .. } => "setattr",
        Op::Truncate { .. } => "truncate",
        Op::Map { .. } => "map",
        Op::Punch { .. } => "punch",
        Op::SetXattr { .. } => "setxattr",
        Op::RemoveXattr { .. } => "removexattr",
        Op::Evict { .. } => "evict",
        Op::Remap { .. } => "remap",
        Op::Group(_) => "group",
    }
}

/// Seed inputs for target `name`, with file names: valid structures in the target's input
/// format, plus a few near misses. Every seed is small (< 64 KiB).
pub fn seeds(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    match name {
        "superblock" => {
            let base = base_image();
            let a = &base.bytes[..SB_LEN];
            let b = &base.bytes[SB_SLOT_SIZE as usize..SB_SLOT_SIZE as usize + SB_LEN];
            let mut v = vec![2u8, 0];
            v.extend_from_slice(a);
            v.extend_from_slice(b);
            out.push(("mkfs-2m-both-slots".into(), v.clone()));
            let mut torn = v.clone();
            torn[2 + SB_LEN + 100] ^= 0xff;
            out.push(("torn-slot-b".into(), torn));
            let mut fixed = v.clone();
            fixed[1] = 0x0c;
            out.push(("crc-repair".into(), fixed));
            let sb = Superblock {
                version: superblock::FORMAT_VERSION,
                uuid: [7; 16],
                generation: 3,
                layout: Layout::compute(64 << 20, LayoutOptions::default()).unwrap(),
                active_ckpt: 1,
                ckpt_used: 100,
                ckpt_crc: 0xdead,
                log_seq: 42,
                created_ns: 1,
            };
            let mut v = vec![0u8, 0];
            v.extend_from_slice(&sb.encode());
            out.push(("64m-slot-a-only".into(), v));
            let huge = Superblock {
                layout: Layout::compute(
                    1 << 30,
                    LayoutOptions {
                        block_size: 2 << 20,
                        ..Default::default()
                    },
                )
                .unwrap(),
                ..sb
            };
            let mut v = vec![3u8, 0];
            v.extend_from_slice(&(1u64 << 30).to_le_bytes());
            v.extend_from_slice(&huge.encode());
            v.extend_from_slice(
                &Superblock {
                    generation: 4,
                    ..huge
                }
                .encode(),
            );
            out.push(("1g-2m-blocks".into(), v));
        }
        "log_record" => {
            for (i, op) in crate::format::record::samples().into_iter().enumerate() {
                let mut v = vec![0u8];
                v.extend_from_slice(&op.encode_record(10 + i as u64));
                out.push((format!("{:02}-{}", i, op_name(&op)), v));
            }
            out.push(("structured-map".into(), {
                let mut v = vec![8u8, 6];
                v.extend_from_slice(&[1; 40]);
                v
            }));
            out.push(("repair-all".into(), {
                let mut v = vec![7u8];
                v.extend_from_slice(&crate::format::record::samples()[0].encode_record(1)[..40]);
                v
            }));
        }
        "checkpoint" => {
            let (co, used) = base_image().current_ckpt;
            let blob = &base_image().bytes[co as usize..(co + used) as usize];
            let mut v = vec![0u8, 6];
            v.extend_from_slice(blob);
            out.push(("image-checkpoint".into(), v));
            let t = Table::with_root(4096, Ts { sec: 1, nsec: 2 }, 0, 0);
            let mut v = vec![0u8, 4];
            v.extend_from_slice(&checkpoint::encode(&t, 1, 1));
            out.push(("mkfs-root-only".into(), v));
            let mut v = vec![6u8, 1 | 6];
            v.extend_from_slice(&checkpoint::encode(
                &Table::with_root(2 << 20, Ts::default(), 0, 0),
                9,
                9,
            ));
            out.push(("root-2m-repair".into(), v));
        }
        "image" => {
            out.push(("unchanged".into(), vec![0]));
            out.push(("sb-generation-bump".into(), vec![4, 0, 32, 0, 1, 0x7f]));
            // Overwrite the first record's sequence number, repairing its checksum.
            let seq_at = (records_start(FORMAT_VERSION) as u16 + 8).to_le_bytes();
            out.push((
                "log-seq-repaired".into(),
                vec![1, 2, seq_at[0], seq_at[1], 2, 0xff, 0xff],
            ));
            // Damage the active checkpoint and repair its checksum in the superblocks.
            out.push((
                "ckpt-inode-count".into(),
                vec![6, 3, 32, 0, 4, 0xff, 0xff, 0, 0],
            ));
            out.push(("ckpt-body-byte".into(), vec![6, 3, 0x80, 0, 1, 0x41]));
            out.push(("zero-slot-a".into(), {
                let mut v = vec![0, 0, 0, 0, 255];
                v.extend_from_slice(&[0; 255]);
                v
            }));
            out.push(("log-tail-garbage".into(), {
                let mut v = vec![1u8, 2];
                v.extend_from_slice(&(base_image().log_used as u16).to_le_bytes());
                let rec = Op::Evict { ino: 2 }.encode_record(999);
                v.push(rec.len() as u8);
                v.extend_from_slice(&rec);
                v
            }));
        }
        "ioctl_args" => {
            let seal = abi::SealArg {
                offset: 4096,
                length: 8192,
                flags: abi::SEAL_BREAKABLE,
            };
            let mut v = vec![0u8];
            v.extend_from_slice(&seal.encode());
            out.push(("seal".into(), v));
            let mut v = vec![1u8];
            v.extend_from_slice(&abi::encode_immutable(true));
            out.push(("immutable-populate".into(), v));
            let list = abi::encode_seal_list(&[abi::SealInfoArg {
                offset: 0,
                length: 4096,
                kind: abi::KIND_TEMPORARY,
                state: abi::STATE_ACTIVE,
                pid: 42,
                remaining_ms: 0,
            }]);
            let mut v = vec![2u8];
            v.extend_from_slice(&list);
            out.push(("seal-list".into(), v));
            let req = abi::SetupMapping {
                foffset: 0,
                len: 2 << 20,
                flags: 3,
                moffset: 4 << 20,
            }
            .encode();
            let mut v = vec![3u8 | 0x80];
            v.extend_from_slice(&req[..48]);
            out.push(("setupmapping-request".into(), v));
            let ans =
                abi::encode_mapping_answer(&req, &[(0, 1 << 20, 4096), (4096, 0, 8192)]).unwrap();
            let mut v = vec![4u8 | 0x80];
            v.extend_from_slice(&ans[..48 + 2 * abi::DEV_EXTENT_SIZE]);
            out.push(("setupmapping-answer".into(), v));
            let mut v = vec![5u8];
            v.extend_from_slice(&abi::encode_ranges(&[(0, 2 << 20), (2 << 20, 2 << 20)]));
            out.push(("ranges".into(), v));
            let el = abi::encode_extent_list(0, &[(0, 0, 4096), (4096, 8192, 4096)], 2);
            let mut v = vec![7u8 | 0x80];
            v.extend_from_slice(&el[..16 + 2 * abi::DEV_EXTENT_SIZE]);
            out.push(("extent-list".into(), v));
            let mut v = vec![6u8 | 0x80];
            v.extend_from_slice(&4096u64.to_le_bytes());
            out.push(("extent-start".into(), v));
            let mut v = vec![8u8];
            v.extend_from_slice(&abi::encode_defrag(3, 2, 1, 0));
            out.push(("defrag".into(), v));
        }
        other => panic!("unknown fuzz target {other}"),
    }
    out
}
