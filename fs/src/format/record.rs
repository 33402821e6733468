//! Metadata log records.
//!
//! Every metadata change is one record: a 24-byte header (magic, length, sequence number,
//! crc32c, operation tag) and the operation's fields. A record is written, flushed and
//! fenced before the operation replies; replay applies records in sequence order and stops
//! at the first one whose magic, sequence number, length or checksum is wrong.

use super::codec::{le32, le64, Reader, Writer};
use super::{crc, FormatError};

/// Magic at the start of every record ("SLOG" little-endian).
pub const REC_MAGIC: u32 = 0x474f_4c53;
/// Header length.
pub const REC_HEADER: usize = 24;
/// Records are padded to this alignment.
pub const REC_ALIGN: usize = 8;
/// Largest record (a single xattr value of 64 KiB plus its name fits).
pub const REC_MAX: usize = 128 << 10;

const H_MAGIC: usize = 0;
/// Byte offset of a record's length (u32) in its header.
pub const H_LEN: usize = 4;
const H_SEQ: usize = 8;
/// Byte offset of a record's checksum (u32) in its header.
pub const H_CRC: usize = 16;
const H_TAG: usize = 20;

/// A timestamp: seconds and nanoseconds since the epoch.
///
/// Packed to 12 bytes (4-byte aligned): every inode holds four of them in memory. Read the
/// fields by value (`t.sec`), never by reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(C, packed(4))]
pub struct Ts {
    /// Seconds (may be negative).
    pub sec: i64,
    /// Nanoseconds, < 1e9.
    pub nsec: u32,
}

impl Ts {
    /// The current wall-clock time.
    pub fn now() -> Ts {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ts {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        }
    }

    pub(crate) fn put(&self, w: &mut Writer) {
        w.i64(self.sec);
        w.u32(self.nsec);
    }

    pub(crate) fn get(r: &mut Reader<'_>) -> Result<Ts, FormatError> {
        let sec = r.i64()?;
        let nsec = r.u32()?;
        if nsec >= 1_000_000_000 {
            return Err(FormatError::Invalid {
                what: "nanoseconds",
                value: nsec as u64,
            });
        }
        Ok(Ts { sec, nsec })
    }
}

/// One run of a file's blocks mapped to device blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapExtent {
    /// First file block.
    pub fblock: u64,
    /// First data block on the device.
    pub dblock: u64,
    /// Number of blocks.
    pub len: u64,
}

/// `SetAttr::valid` bits.
pub mod valid {
    /// mode (permission bits) is set.
    pub const MODE: u32 = 1;
    /// uid is set.
    pub const UID: u32 = 2;
    /// gid is set.
    pub const GID: u32 = 4;
    /// atime is set.
    pub const ATIME: u32 = 8;
    /// mtime is set.
    pub const MTIME: u32 = 16;
    /// ctime is set.
    pub const CTIME: u32 = 32;
    /// inode flags are set.
    pub const FLAGS: u32 = 64;
}

/// A metadata operation, as logged and as replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A new inode linked into `parent` (file, directory, symlink, device node, fifo).
    Create {
        /// Parent directory.
        parent: u64,
        /// Entry name.
        name: Vec<u8>,
        /// New inode number.
        ino: u64,
        /// Full mode including the file type bits.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Device number for device nodes.
        rdev: u64,
        /// Creation time (all four timestamps, and the parent's mtime/ctime).
        time: Ts,
        /// Symlink target (empty otherwise).
        target: Vec<u8>,
    },
    /// A new hard link.
    Link {
        /// Inode linked.
        ino: u64,
        /// Directory of the new name.
        parent: u64,
        /// New name.
        name: Vec<u8>,
        /// ctime of the inode, mtime/ctime of the parent.
        time: Ts,
    },
    /// Removal of a name (unlink or rmdir).
    Unlink {
        /// Directory.
        parent: u64,
        /// Name removed.
        name: Vec<u8>,
        /// Time of the change.
        time: Ts,
    },
    /// Rename with optional `RENAME_NOREPLACE` / `RENAME_EXCHANGE` flags.
    Rename {
        /// Source directory.
        parent: u64,
        /// Source name.
        name: Vec<u8>,
        /// Target directory.
        new_parent: u64,
        /// Target name.
        new_name: Vec<u8>,
        /// Linux rename flags.
        flags: u32,
        /// Time of the change.
        time: Ts,
    },
    /// Attribute change (not size).
    SetAttr {
        /// Inode.
        ino: u64,
        /// Which fields are set (`valid::*`).
        valid: u32,
        /// Permission bits (type bits ignored).
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Access time.
        atime: Ts,
        /// Modification time.
        mtime: Ts,
        /// Change time.
        ctime: Ts,
        /// Inode flags.
        flags: u32,
    },
    /// Size change by truncate; blocks past the new end are freed.
    Truncate {
        /// Inode.
        ino: u64,
        /// New size.
        size: u64,
        /// mtime and ctime.
        time: Ts,
    },
    /// Blocks newly mapped into a file, and/or a size increase.
    Map {
        /// Inode.
        ino: u64,
        /// New size if larger than the current one (0 = unchanged).
        size: u64,
        /// mtime and ctime (unchanged when `touch` is false).
        time: Ts,
        /// Whether to set mtime/ctime.
        touch: bool,
        /// Extents mapped (each over a hole of the file).
        extents: Vec<MapExtent>,
    },
    /// Blocks unmapped from a file (hole punch); size unchanged.
    Punch {
        /// Inode.
        ino: u64,
        /// First file block.
        fblock: u64,
        /// Number of blocks.
        count: u64,
        /// mtime and ctime.
        time: Ts,
    },
    /// Extended attribute set.
    SetXattr {
        /// Inode.
        ino: u64,
        /// Full name including the namespace prefix.
        name: Vec<u8>,
        /// Value.
        value: Vec<u8>,
        /// ctime.
        time: Ts,
    },
    /// Extended attribute removed.
    RemoveXattr {
        /// Inode.
        ino: u64,
        /// Name.
        name: Vec<u8>,
        /// ctime.
        time: Ts,
    },
    /// An unlinked inode's last reference went away: drop it and free its blocks.
    Evict {
        /// Inode.
        ino: u64,
    },
    /// Operations that are durable together or not at all: one record, one checksum,
    /// applied in order. Used where one system call changes two things that must agree
    /// (a mode and its access ACL; a new inode and the ACLs it inherits). Never nested,
    /// never empty.
    Group(Vec<Op>),
    /// Relocation: file blocks move to new device blocks (the old ones are freed).
    Remap {
        /// Inode.
        ino: u64,
        /// First file block.
        fblock: u64,
        /// New first device block.
        dblock: u64,
        /// Number of blocks.
        len: u64,
    },
}

const T_CREATE: u16 = 1;
const T_LINK: u16 = 2;
const T_UNLINK: u16 = 3;
const T_RENAME: u16 = 4;
const T_SETATTR: u16 = 5;
const T_TRUNCATE: u16 = 6;
const T_MAP: u16 = 7;
const T_PUNCH: u16 = 8;
const T_SETXATTR: u16 = 9;
const T_RMXATTR: u16 = 10;
const T_EVICT: u16 = 11;
const T_REMAP: u16 = 12;
const T_GROUP: u16 = 13;

/// Most operations one `Group` record may hold.
pub const GROUP_MAX: usize = 16;

impl Op {
    /// The one inode an inode-level operation changes (`None` for namespace operations
    /// and groups).
    pub fn inode(&self) -> Option<u64> {
        match self {
            Op::SetAttr { ino, .. }
            | Op::Truncate { ino, .. }
            | Op::Map { ino, .. }
            | Op::Punch { ino, .. }
            | Op::SetXattr { ino, .. }
            | Op::RemoveXattr { ino, .. }
            | Op::Remap { ino, .. } => Some(*ino),
            Op::Create { .. }
            | Op::Link { .. }
            | Op::Unlink { .. }
            | Op::Rename { .. }
            | Op::Evict { .. }
            | Op::Group(_) => None,
        }
    }

    fn tag(&self) -> u16 {
        match self {
            Op::Create { .. } => T_CREATE,
            Op::Link { .. } => T_LINK,
            Op::Unlink { .. } => T_UNLINK,
            Op::Rename { .. } => T_RENAME,
            Op::SetAttr { .. } => T_SETATTR,
            Op::Truncate { .. } => T_TRUNCATE,
            Op::Map { .. } => T_MAP,
            Op::Punch { .. } => T_PUNCH,
            Op::SetXattr { .. } => T_SETXATTR,
            Op::RemoveXattr { .. } => T_RMXATTR,
            Op::Evict { .. } => T_EVICT,
            Op::Remap { .. } => T_REMAP,
            Op::Group(_) => T_GROUP,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match self {
            Op::Create {
                parent,
                name,
                ino,
                mode,
                uid,
                gid,
                rdev,
                time,
                target,
            } => {
                w.u64(*parent);
                w.bytes16(name);
                w.u64(*ino);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
                w.u64(*rdev);
                time.put(w);
                w.bytes16(target);
            }
            Op::Link {
                ino,
                parent,
                name,
                time,
            } => {
                w.u64(*ino);
                w.u64(*parent);
                w.bytes16(name);
                time.put(w);
            }
            Op::Unlink { parent, name, time } => {
                w.u64(*parent);
                w.bytes16(name);
                time.put(w);
            }
            Op::Rename {
                parent,
                name,
                new_parent,
                new_name,
                flags,
                time,
            } => {
                w.u64(*parent);
                w.bytes16(name);
                w.u64(*new_parent);
                w.bytes16(new_name);
                w.u32(*flags);
                time.put(w);
            }
            Op::SetAttr {
                ino,
                valid,
                mode,
                uid,
                gid,
                atime,
                mtime,
                ctime,
                flags,
            } => {
                w.u64(*ino);
                w.u32(*valid);
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
                atime.put(w);
                mtime.put(w);
                ctime.put(w);
                w.u32(*flags);
            }
            Op::Truncate { ino, size, time } => {
                w.u64(*ino);
                w.u64(*size);
                time.put(w);
            }
            Op::Map {
                ino,
                size,
                time,
                touch,
                extents,
            } => {
                w.u64(*ino);
                w.u64(*size);
                time.put(w);
                w.u8(*touch as u8);
                w.u32(extents.len() as u32);
                for e in extents {
                    w.u64(e.fblock);
                    w.u64(e.dblock);
                    w.u64(e.len);
                }
            }
            Op::Punch {
                ino,
                fblock,
                count,
                time,
            } => {
                w.u64(*ino);
                w.u64(*fblock);
                w.u64(*count);
                time.put(w);
            }
            Op::SetXattr {
                ino,
                name,
                value,
                time,
            } => {
                w.u64(*ino);
                w.bytes16(name);
                w.bytes32(value);
                time.put(w);
            }
            Op::RemoveXattr { ino, name, time } => {
                w.u64(*ino);
                w.bytes16(name);
                time.put(w);
            }
            Op::Evict { ino } => w.u64(*ino),
            Op::Group(ops) => {
                // u16 count, u16 zero, then per operation: u16 tag, u16 zero, u32 body
                // length, body (unpadded).
                w.u16(ops.len() as u16);
                w.u16(0);
                for op in ops {
                    let mut sub = Writer::with_capacity(64);
                    op.encode_body(&mut sub);
                    w.u16(op.tag());
                    w.u16(0);
                    w.bytes32(sub.as_slice());
                }
            }
            Op::Remap {
                ino,
                fblock,
                dblock,
                len,
            } => {
                w.u64(*ino);
                w.u64(*fblock);
                w.u64(*dblock);
                w.u64(*len);
            }
        }
    }

    fn decode_body(tag: u16, r: &mut Reader<'_>) -> Result<Op, FormatError> {
        let op = match tag {
            T_CREATE => Op::Create {
                parent: r.u64()?,
                name: r.bytes16()?.to_vec(),
                ino: r.u64()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                rdev: r.u64()?,
                time: Ts::get(r)?,
                target: r.bytes16()?.to_vec(),
            },
            T_LINK => Op::Link {
                ino: r.u64()?,
                parent: r.u64()?,
                name: r.bytes16()?.to_vec(),
                time: Ts::get(r)?,
            },
            T_UNLINK => Op::Unlink {
                parent: r.u64()?,
                name: r.bytes16()?.to_vec(),
                time: Ts::get(r)?,
            },
            T_RENAME => Op::Rename {
                parent: r.u64()?,
                name: r.bytes16()?.to_vec(),
                new_parent: r.u64()?,
                new_name: r.bytes16()?.to_vec(),
                flags: r.u32()?,
                time: Ts::get(r)?,
            },
            T_SETATTR => Op::SetAttr {
                ino: r.u64()?,
                valid: r.u32()?,
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                atime: Ts::get(r)?,
                mtime: Ts::get(r)?,
                ctime: Ts::get(r)?,
                flags: r.u32()?,
            },
            T_TRUNCATE => Op::Truncate {
                ino: r.u64()?,
                size: r.u64()?,
                time: Ts::get(r)?,
            },
            T_MAP => {
                let ino = r.u64()?;
                let size = r.u64()?;
                let time = Ts::get(r)?;
                let touch = match r.u8()? {
                    0 => false,
                    1 => true,
                    v => {
                        return Err(FormatError::Invalid {
                            what: "map touch flag",
                            value: v as u64,
                        })
                    }
                };
                let n = r.u32()? as usize;
                if n > r.remaining() / 24 {
                    return Err(FormatError::Invalid {
                        what: "extent count",
                        value: n as u64,
                    });
                }
                let mut extents = Vec::with_capacity(n);
                for _ in 0..n {
                    extents.push(MapExtent {
                        fblock: r.u64()?,
                        dblock: r.u64()?,
                        len: r.u64()?,
                    });
                }
                Op::Map {
                    ino,
                    size,
                    time,
                    touch,
                    extents,
                }
            }
            T_PUNCH => Op::Punch {
                ino: r.u64()?,
                fblock: r.u64()?,
                count: r.u64()?,
                time: Ts::get(r)?,
            },
            T_SETXATTR => {
                let ino = r.u64()?;
                let name = r.bytes16()?;
                if !valid_xattr_name(name) {
                    return Err(FormatError::Invalid {
                        what: "xattr name",
                        value: name.len() as u64,
                    });
                }
                Op::SetXattr {
                    ino,
                    name: name.to_vec(),
                    value: r.bytes32()?.to_vec(),
                    time: Ts::get(r)?,
                }
            }
            T_RMXATTR => Op::RemoveXattr {
                ino: r.u64()?,
                name: r.bytes16()?.to_vec(),
                time: Ts::get(r)?,
            },
            T_EVICT => Op::Evict { ino: r.u64()? },
            T_GROUP => {
                let count = r.u16()? as usize;
                if count == 0 || count > GROUP_MAX {
                    return Err(FormatError::Invalid {
                        what: "group operation count",
                        value: count as u64,
                    });
                }
                zero16(r, "group reserved field")?;
                let mut ops = Vec::with_capacity(count);
                for _ in 0..count {
                    let tag = r.u16()?;
                    if tag == T_GROUP {
                        return Err(FormatError::Invalid {
                            what: "group nested in a group",
                            value: tag as u64,
                        });
                    }
                    zero16(r, "group entry reserved field")?;
                    let body = r.bytes32()?;
                    let mut sub = Reader::new(body);
                    let op = Op::decode_body(tag, &mut sub)?;
                    if sub.remaining() != 0 {
                        return Err(FormatError::Invalid {
                            what: "group entry trailing bytes",
                            value: sub.remaining() as u64,
                        });
                    }
                    ops.push(op);
                }
                Op::Group(ops)
            }
            T_REMAP => Op::Remap {
                ino: r.u64()?,
                fblock: r.u64()?,
                dblock: r.u64()?,
                len: r.u64()?,
            },
            other => {
                return Err(FormatError::Invalid {
                    what: "record type",
                    value: other as u64,
                })
            }
        };
        Ok(op)
    }

    /// Encodes a whole record (header, body, padding) with sequence number `seq`.
    pub fn encode_record(&self, seq: u64) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u32(REC_MAGIC);
        w.u32(0); // length, patched below
        w.u64(seq);
        w.u32(0); // crc, patched below
        w.u16(self.tag());
        w.u16(0);
        self.encode_body(&mut w);
        w.pad_to(REC_ALIGN);
        let len = w.len();
        w.patch_u32(H_LEN, len as u32);
        let b = w.as_slice();
        let c = crc(&[&b[..H_CRC], &b[H_CRC + 4..]]);
        w.patch_u32(H_CRC, c);
        w.into_inner()
    }
}

fn zero16(r: &mut Reader<'_>, what: &'static str) -> Result<(), FormatError> {
    match r.u16()? {
        0 => Ok(()),
        v => Err(FormatError::Invalid {
            what,
            value: v as u64,
        }),
    }
}

/// An extended attribute name any build can have stored: not empty, at most 255 bytes
/// (XATTR_NAME_MAX), no NUL (`listxattr` separates names with NULs). Checkpoint decoding
/// and `SetXattr` records both hold names to this.
pub fn valid_xattr_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.contains(&0)
}

/// What the header at some log position says, before the body is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Total record length including header and padding.
    pub len: usize,
    /// Sequence number.
    pub seq: u64,
}

/// Parses the header at the start of `b` (which holds the rest of the log region).
pub fn decode_header(b: &[u8]) -> Result<RecordHeader, FormatError> {
    if b.len() < REC_HEADER {
        return Err(FormatError::Truncated);
    }
    if le32(b, H_MAGIC) != REC_MAGIC {
        return Err(FormatError::BadMagic("log record"));
    }
    let len = le32(b, H_LEN) as usize;
    if len < REC_HEADER || !len.is_multiple_of(REC_ALIGN) || len > REC_MAX {
        return Err(FormatError::Invalid {
            what: "record length",
            value: len as u64,
        });
    }
    if len > b.len() {
        return Err(FormatError::Truncated);
    }
    Ok(RecordHeader {
        len,
        seq: le64(b, H_SEQ),
    })
}

/// Decodes and checks the record at the start of `b`; `b` must hold at least `hdr.len` bytes.
pub fn decode_record(b: &[u8]) -> Result<(RecordHeader, Op), FormatError> {
    let hdr = decode_header(b)?;
    let rec = &b[..hdr.len];
    if crc(&[&rec[..H_CRC], &rec[H_CRC + 4..]]) != le32(rec, H_CRC) {
        return Err(FormatError::Checksum("log record"));
    }
    let tag = u16::from_le_bytes([rec[H_TAG], rec[H_TAG + 1]]);
    // The encoding is canonical: reserved bytes and padding are zero, so a record decodes
    // only if encoding its operation gives back exactly these bytes.
    let reserved = u16::from_le_bytes([rec[H_TAG + 2], rec[H_TAG + 3]]);
    if reserved != 0 {
        return Err(FormatError::Invalid {
            what: "record reserved field",
            value: reserved as u64,
        });
    }
    let mut r = Reader::new(&rec[REC_HEADER..]);
    let op = Op::decode_body(tag, &mut r)?;
    let pad = r.remaining();
    if pad >= REC_ALIGN {
        return Err(FormatError::Invalid {
            what: "record trailing bytes",
            value: pad as u64,
        });
    }
    if rec[rec.len() - pad..].iter().any(|&b| b != 0) {
        return Err(FormatError::Invalid {
            what: "record padding",
            value: pad as u64,
        });
    }
    Ok((hdr, op))
}

/// Sample operations, one of every kind (two groups): the record codec's tests and the fuzz
/// seeds of `log_record` share them.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub fn samples() -> Vec<Op> {
    let t = Ts {
        sec: 1_700_000_000,
        nsec: 5,
    };
    vec![
        Op::Create {
            parent: 1,
            name: b"a".to_vec(),
            ino: 2,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            rdev: 0,
            time: t,
            target: vec![],
        },
        Op::Create {
            parent: 1,
            name: b"l".to_vec(),
            ino: 3,
            mode: 0o120777,
            uid: 1,
            gid: 2,
            rdev: 0,
            time: t,
            target: b"a".to_vec(),
        },
        Op::Link {
            ino: 2,
            parent: 1,
            name: b"b".to_vec(),
            time: t,
        },
        Op::Unlink {
            parent: 1,
            name: b"b".to_vec(),
            time: t,
        },
        Op::Rename {
            parent: 1,
            name: b"a".to_vec(),
            new_parent: 1,
            new_name: b"c".to_vec(),
            flags: 2,
            time: t,
        },
        Op::SetAttr {
            ino: 2,
            valid: 0x7f,
            mode: 0o600,
            uid: 5,
            gid: 6,
            atime: t,
            mtime: t,
            ctime: t,
            flags: 0x10,
        },
        Op::Truncate {
            ino: 2,
            size: 12345,
            time: t,
        },
        Op::Map {
            ino: 2,
            size: 8192,
            time: t,
            touch: true,
            extents: vec![
                MapExtent {
                    fblock: 0,
                    dblock: 9,
                    len: 2,
                },
                MapExtent {
                    fblock: 4,
                    dblock: 20,
                    len: 1,
                },
            ],
        },
        Op::Punch {
            ino: 2,
            fblock: 1,
            count: 1,
            time: t,
        },
        Op::SetXattr {
            ino: 2,
            name: b"user.x".to_vec(),
            value: vec![1, 2, 3],
            time: t,
        },
        Op::RemoveXattr {
            ino: 2,
            name: b"user.x".to_vec(),
            time: t,
        },
        Op::Evict { ino: 2 },
        Op::Remap {
            ino: 2,
            fblock: 0,
            dblock: 100,
            len: 3,
        },
        Op::Group(vec![
            Op::Rename {
                parent: 1,
                name: b"a".to_vec(),
                new_parent: 1,
                new_name: b"c".to_vec(),
                flags: 0,
                time: t,
            },
            Op::Create {
                parent: 1,
                name: b"a".to_vec(),
                ino: 3,
                mode: 0o20000,
                uid: 0,
                gid: 0,
                rdev: 0,
                time: t,
                target: vec![],
            },
        ]),
        Op::Group(vec![
            Op::SetXattr {
                ino: 2,
                name: b"system.posix_acl_access".to_vec(),
                value: vec![2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255],
                time: t,
            },
            Op::SetAttr {
                ino: 2,
                valid: 0x21,
                mode: 0o640,
                uid: 0,
                gid: 0,
                atime: t,
                mtime: t,
                ctime: t,
                flags: 0,
            },
        ]),
    ]
}
#[cfg(test)]
mod tests {

    use super::*;

    fn group_of(n: usize) -> Op {
        Op::Group(vec![Op::Evict { ino: 9 }; n])
    }

    #[test]
    fn group_limits() {
        let hdr_and_count = REC_HEADER;
        // Empty and oversized groups, and a group in a group, are refused.
        for (op, what) in [
            (group_of(0), "group operation count"),
            (group_of(GROUP_MAX + 1), "group operation count"),
            (Op::Group(vec![group_of(1)]), "group nested in a group"),
        ] {
            let rec = op.encode_record(1);
            match decode_record(&rec) {
                Err(FormatError::Invalid { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{op:?} decoded as {other:?}"),
            }
        }
        assert!(decode_record(&group_of(GROUP_MAX).encode_record(1)).is_ok());
        // An entry whose length covers more than its body is refused, checksum fixed.
        let mut rec = group_of(1).encode_record(1);
        // count, reserved, tag, reserved, then the u32 body length.
        let len_at = hdr_and_count + 8;
        assert_eq!(le32(&rec, len_at), 8);
        rec[len_at] = 4;
        let c = crc(&[&rec[..H_CRC], &rec[H_CRC + 4..]]);
        rec[H_CRC..H_CRC + 4].copy_from_slice(&c.to_le_bytes());
        assert!(decode_record(&rec).is_err(), "short entry body accepted");
    }

    #[test]
    fn roundtrip_every_op() {
        for (i, op) in samples().into_iter().enumerate() {
            let rec = op.encode_record(i as u64 + 10);
            assert_eq!(rec.len() % REC_ALIGN, 0);
            let (h, back) = decode_record(&rec).unwrap();
            assert_eq!(h.seq, i as u64 + 10);
            assert_eq!(back, op);
        }
    }

    #[test]
    fn every_bit_flip_is_caught() {
        for op in samples() {
            let rec = op.encode_record(7);
            for i in 0..rec.len() * 8 {
                let mut c = rec.clone();
                c[i / 8] ^= 1 << (i % 8);
                if let Ok((h, back)) = decode_record(&c) {
                    // A flip in the padding region after a valid length could only be accepted
                    // if the checksum still matched, which crc32c rules out for one bit.
                    panic!("flip {i} accepted: {h:?} {back:?}");
                }
            }
        }
    }
}
