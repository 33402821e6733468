//! Checkpoints: the whole metadata state in one checksummed blob.
//!
//! Written to the inactive checkpoint area when the log fills; the superblock slot written
//! afterwards makes it current. Decoding rebuilds a `Table` and reports every owned device
//! block to a `Blocks` sink (the allocator at mount, the ownership checker in fsck).
//!
//! The codec lives in the journal, not in `format`, because it walks `meta::Table`; the
//! bytes it writes are documented in `docs/format.md` with the rest of the format.

use std::sync::Arc;

use crate::sync::InodeLock;

use super::log::Log;
use crate::device::persist;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::format::codec::{le64, Reader, Writer};
use crate::format::log_header::{records_start, LogHeader, LOG_HEADER_VERSION};
use crate::format::record::{valid_xattr_name, Ts};
use crate::format::{crc, FormatError, Superblock};
use crate::meta::dir::Dir;
use crate::meta::extents::ExtentMap;
use crate::meta::inode::{mode, Attr, Body, Inode};
use crate::meta::table::{ApplyError, Blocks, Table, ROOT_INO};
use crate::meta::validate::valid_name;

/// Magic at the start of a checkpoint.
pub const CKPT_MAGIC: &[u8; 8] = b"SFCKPT\0\x01";
/// Header length.
pub const CKPT_HEADER: usize = 64;

const OFF_GENERATION: usize = 8;
const OFF_LOG_SEQ: usize = 16;
const OFF_NEXT_INO: usize = 24;
const OFF_COUNT: usize = 32;
/// Byte offset of the block size (u64) in a checkpoint header.
pub const OFF_BLOCK_SIZE: usize = 40;
/// Byte offset of the body length (u64) in a checkpoint header.
pub const OFF_BODY_LEN: usize = 48;
const OFF_RESERVED: usize = 56;

/// Why a checkpoint could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Bytes are malformed.
    #[error("checkpoint: {0}")]
    Format(#[from] FormatError),
    /// Well-formed but inconsistent.
    #[error("checkpoint: {0}")]
    Apply(#[from] ApplyError),
}

/// Here rather than in `error`, which sits below the journal.
impl From<CheckpointError> for Error {
    fn from(e: CheckpointError) -> Self {
        match e {
            CheckpointError::Format(f) => Error::Corrupt(format!("checkpoint: {f}")),
            CheckpointError::Apply(a) => Error::Corrupt(format!("checkpoint: {}", a.0)),
        }
    }
}

/// Encodes the table. The caller holds every lock that keeps it still.
pub fn encode(t: &Table, generation: u64, log_seq: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(CKPT_HEADER + t.inodes.len() * 96);
    w.raw(CKPT_MAGIC);
    w.u64(generation);
    w.u64(log_seq);
    w.u64(t.next_ino);
    w.u64(t.inodes.len() as u64);
    w.u64(t.block_size);
    w.u64(0); // body length, patched
    w.u64(0);
    debug_assert_eq!(w.len(), CKPT_HEADER);
    let mut inos: Vec<u64> = t.inodes.keys().copied().collect();
    inos.sort_unstable();
    for ino in inos {
        let g = t.inodes[&ino].read();
        encode_inode(&mut w, &g);
    }
    w.u64(t.orphans.len() as u64);
    for o in &t.orphans {
        w.u64(*o);
    }
    let body_len = (w.len() - CKPT_HEADER) as u64;
    w.patch_u64(OFF_BODY_LEN, body_len);
    w.into_inner()
}

fn encode_inode(w: &mut Writer, g: &Inode) {
    let a = &g.attr;
    w.u64(g.ino);
    w.u32(a.mode);
    w.u32(a.uid);
    w.u32(a.gid);
    w.u32(a.nlink);
    w.u32(a.flags);
    w.u64(a.rdev as u64);
    w.u64(a.size);
    a.atime.put(w);
    a.mtime.put(w);
    a.ctime.put(w);
    a.crtime.put(w);
    match &g.xattrs {
        Some(x) => {
            w.u32(x.len() as u32);
            for (k, v) in x.iter() {
                w.bytes16(k);
                w.bytes32(v);
            }
        }
        None => w.u32(0),
    }
    match &g.body {
        Body::File(m) => {
            w.u32(m.run_count() as u32);
            for e in m.iter() {
                w.u64(e.fblock);
                w.u64(e.dblock);
                w.u64(e.len);
            }
        }
        Body::Dir(d) => {
            w.u64(d.parent);
            w.u32(d.len() as u32);
            for (name, ino, kind) in d.iter() {
                w.u64(ino);
                w.u8(kind);
                w.bytes16(name);
            }
        }
        Body::Symlink(t) => w.bytes16(t),
        Body::Special => {}
    }
}

/// Makes `blob` (a checkpoint of generation `current.generation + 1`, encoded while the
/// exclusive gate kept every appender out) the filesystem's state: the inactive checkpoint
/// area, then (format version 3 on) the new generation's log header, then the superblock
/// slot that makes both current; the log starts over. The caller holds the log and
/// superblock locks. `NoSpace` (nothing written) when the blob does not fit the area.
/// Returns the superblock now in use.
pub fn publish(
    dev: &dyn Device,
    blob: &[u8],
    version: u32,
    log: &mut Log,
    current: &Superblock,
) -> Result<Superblock> {
    let layout = &current.layout;
    let generation = current.generation + 1;
    if blob.len() as u64 > layout.ckpt_len {
        tracing::error!(
            bytes = blob.len(),
            capacity = layout.ckpt_len,
            "metadata no longer fits a checkpoint"
        );
        return Err(Error::NoSpace);
    }
    let area = 1 - current.active_ckpt;
    persist::publish(dev, layout.ckpt_off[area as usize], blob)?;
    if version >= LOG_HEADER_VERSION {
        // Before the superblock: this slot is not the one the current generation needs.
        let h = LogHeader {
            generation,
            log_seq: log.next_seq,
            uuid: current.uuid,
        };
        persist::publish(
            dev,
            layout.log_off + LogHeader::slot_offset(generation),
            &h.encode(),
        )?;
    }
    let new = Superblock {
        version,
        generation,
        active_ckpt: area,
        ckpt_used: blob.len() as u64,
        ckpt_crc: crc(&[blob]),
        log_seq: log.next_seq,
        ..*current
    };
    persist::publish(dev, Superblock::slot_offset(new.slot()), &new.encode())?;
    log.start = records_start(version);
    log.tail = log.start;
    tracing::debug!(generation, bytes = blob.len(), "checkpoint written");
    Ok(new)
}

/// The fixed header fields of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Generation of the superblock that published it.
    pub generation: u64,
    /// First log sequence number after it.
    pub log_seq: u64,
}

/// Checks a checkpoint blob against the superblock's length and checksum and returns its
/// header.
pub fn verify(b: &[u8], expect_crc: u32) -> Result<Header, FormatError> {
    if b.len() < CKPT_HEADER {
        return Err(FormatError::Truncated);
    }
    if &b[..8] != CKPT_MAGIC {
        return Err(FormatError::BadMagic("checkpoint"));
    }
    if crc(&[b]) != expect_crc {
        return Err(FormatError::Checksum("checkpoint"));
    }
    let body_len = le64(b, OFF_BODY_LEN);
    if body_len != (b.len() - CKPT_HEADER) as u64 {
        return Err(FormatError::Invalid {
            what: "checkpoint body length",
            value: body_len,
        });
    }
    let reserved = le64(b, OFF_RESERVED);
    if reserved != 0 {
        return Err(FormatError::Invalid {
            what: "checkpoint reserved header word",
            value: reserved,
        });
    }
    Ok(Header {
        generation: le64(b, OFF_GENERATION),
        log_seq: le64(b, OFF_LOG_SEQ),
    })
}

/// Decodes a verified checkpoint into a table, reporting owned blocks to `blocks`.
pub fn decode(
    b: &[u8],
    block_size: u64,
    blocks: &mut dyn Blocks,
) -> Result<Table, CheckpointError> {
    if b.len() < CKPT_HEADER {
        return Err(FormatError::Truncated.into());
    }
    let bs = le64(b, OFF_BLOCK_SIZE);
    if bs != block_size {
        return Err(FormatError::Invalid {
            what: "checkpoint block size",
            value: bs,
        }
        .into());
    }
    let count = le64(b, OFF_COUNT);
    let mut t = Table::empty(block_size);
    t.next_ino = le64(b, OFF_NEXT_INO);
    let mut r = Reader::new(&b[CKPT_HEADER..]);
    if count > (r.remaining() / 64) as u64 {
        return Err(FormatError::Invalid {
            what: "inode count",
            value: count,
        }
        .into());
    }
    t.inodes.reserve(count as usize);
    for _ in 0..count {
        let inode = decode_inode(&mut r, blocks)?;
        if inode.ino < ROOT_INO || inode.ino >= t.next_ino || t.inodes.contains_key(&inode.ino) {
            return Err(ApplyError(format!(
                "inode {} duplicated or beyond next inode number",
                inode.ino
            ))
            .into());
        }
        t.inodes.insert(inode.ino, Arc::new(InodeLock::new(inode)));
    }
    let norphans = r.u64()?;
    if norphans > (r.remaining() / 8) as u64 {
        return Err(FormatError::Invalid {
            what: "orphan count",
            value: norphans,
        }
        .into());
    }
    for _ in 0..norphans {
        let o = r.u64()?;
        match t.inodes.get(&o) {
            Some(n) if n.read().attr.nlink == 0 => {
                t.orphans.insert(o);
            }
            _ => return Err(ApplyError(format!("orphan {o} is missing or linked")).into()),
        }
    }
    if r.remaining() != 0 {
        return Err(FormatError::Invalid {
            what: "checkpoint trailing bytes",
            value: r.remaining() as u64,
        }
        .into());
    }
    validate_refs(&t)?;
    Ok(t)
}

/// Every directory entry names an existing inode of the kind it says; the root exists.
fn validate_refs(t: &Table) -> Result<(), ApplyError> {
    let root = t
        .inodes
        .get(&ROOT_INO)
        .ok_or_else(|| ApplyError("no root directory".into()))?;
    if !root.read().attr.is_dir() {
        return Err(ApplyError("root is not a directory".into()));
    }
    let mut entries: Vec<(u64, u8)> = Vec::new();
    for n in t.inodes.values() {
        // One inode lock at a time (crate::sync): the entries are copied out first, without
        // their names (a name is looked up again only to report a bad entry).
        let dir_ino = {
            let g = n.read();
            let Some(d) = g.dir() else { continue };
            entries.clear();
            entries.extend(d.iter().map(|(_, ino, kind)| (ino, kind)));
            g.ino
        };
        // In number order, which is the table's and memory's order (meta::InoMap): the
        // lookups below then walk memory forward instead of jumping (a third of a
        // ten-million-file mount was spent waiting on those jumps).
        entries.sort_unstable();
        for &(ino, kind) in &entries {
            // A directory's own entry can name itself only if corrupt.
            let ok = ino != dir_ino
                && t.inodes
                    .get(&ino)
                    .is_some_and(|c| c.read().dirent_kind() == kind);
            if !ok {
                let name = n
                    .read()
                    .dir()
                    .and_then(|d| d.iter().find(|e| e.1 == ino).map(|e| e.0.to_vec()))
                    .unwrap_or_default();
                return Err(ApplyError(format!(
                    "entry {:?} in directory {dir_ino} names missing or mismatched inode {ino}",
                    String::from_utf8_lossy(&name),
                )));
            }
        }
    }
    Ok(())
}

/// A device number: 64 bits on the media, of which only the low 32 are ever written.
fn rdev32(v: u64) -> Result<u32, FormatError> {
    u32::try_from(v).map_err(|_| FormatError::Invalid {
        what: "device number",
        value: v,
    })
}

fn decode_inode(r: &mut Reader<'_>, blocks: &mut dyn Blocks) -> Result<Inode, CheckpointError> {
    let ino = r.u64()?;
    let attr = Attr {
        mode: r.u32()?,
        uid: r.u32()?,
        gid: r.u32()?,
        nlink: r.u32()?,
        flags: r.u32()?,
        rdev: rdev32(r.u64()?)?,
        size: r.u64()?,
        atime: Ts::get(r)?,
        mtime: Ts::get(r)?,
        ctime: Ts::get(r)?,
        crtime: Ts::get(r)?,
    };
    if attr.mode & !(mode::S_IFMT | 0o7777) != 0 {
        return Err(FormatError::Invalid {
            what: "inode mode",
            value: attr.mode as u64,
        }
        .into());
    }
    let nx = r.u32()?;
    let mut inode = Inode::new(ino, attr, 0, b"");
    for _ in 0..nx {
        let k = r.bytes16()?;
        let v = r.bytes32()?;
        if !valid_xattr_name(k) {
            return Err(FormatError::Invalid {
                what: "xattr name",
                value: k.len() as u64,
            }
            .into());
        }
        inode.set_xattr(k, v);
    }
    match attr.kind() {
        mode::S_IFREG => {
            let n = r.u32()? as usize;
            if n > r.remaining() / 24 {
                return Err(FormatError::Invalid {
                    what: "extent count",
                    value: n as u64,
                }
                .into());
            }
            let mut m = ExtentMap::new();
            for _ in 0..n {
                let (f, d, l) = (r.u64()?, r.u64()?, r.u64()?);
                blocks.used(d, l)?;
                if !m.insert(f, d, l) {
                    return Err(ApplyError(format!(
                        "inode {ino}: overlapping extent at file block {f}"
                    ))
                    .into());
                }
            }
            inode.body = Body::File(m);
        }
        mode::S_IFDIR => {
            let parent = r.u64()?;
            let n = r.u32()? as usize;
            if n > r.remaining() / 11 {
                return Err(FormatError::Invalid {
                    what: "entry count",
                    value: n as u64,
                }
                .into());
            }
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let cino = r.u64()?;
                let kind = r.u8()?;
                let name = r.bytes16()?;
                // What log replay accepts for a new name.
                if !valid_name(name) {
                    return Err(ApplyError(format!("directory {ino}: bad entry name")).into());
                }
                entries.push((name, cino, kind));
            }
            let d = Dir::from_entries(parent, entries)
                .ok_or_else(|| ApplyError(format!("directory {ino}: duplicate entry")))?;
            inode.body = Body::Dir(d);
        }
        mode::S_IFLNK => inode.body = Body::Symlink(Box::from(r.bytes16()?)),
        mode::S_IFCHR | mode::S_IFBLK | mode::S_IFIFO | mode::S_IFSOCK => {}
        other => {
            return Err(FormatError::Invalid {
                what: "inode mode",
                value: other as u64,
            }
            .into())
        }
    }
    Ok(inode)
}
