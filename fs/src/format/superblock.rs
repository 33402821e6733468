//! The two superblock slots (A at offset 0, B at 4 KiB).
//!
//! Each slot describes the whole filesystem: layout, the current checkpoint and where log
//! replay starts. Slots are written alternately (generation parity picks the slot), so a
//! torn write of one slot leaves the other intact. Mount takes the valid slot with the
//! highest generation.

use super::codec::{le32, le64, put32, put64};
use super::layout::{Layout, SB_SLOT_SIZE};
use super::{crc, FormatError};

/// Magic at offset 0 of each slot.
pub const SB_MAGIC: &[u8; 8] = b"SEALFS\0\x01";
/// Current format version.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest version this build mounts. Version 2 added the `Group` log record, version 3
/// the log header (`log_header`); a read-write mount of an older filesystem checkpoints it
/// as the current version before it logs anything, so a build that knows only the older
/// version refuses it.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Bytes covered by the slot checksum; the checksum sits right after them.
pub const SB_CRC_AT: usize = 252;
/// Encoded length of a slot (the rest of the 4 KiB slot is zero).
pub const SB_LEN: usize = 256;

// Field offsets within a slot.
const OFF_MAGIC: usize = 0;
/// Byte offset of the format version (u32) in a superblock slot.
pub const OFF_VERSION: usize = 8;
/// Byte offset of the flags (u32, not read by version 1).
pub const OFF_FLAGS: usize = 12;
const OFF_UUID: usize = 16;
const OFF_GENERATION: usize = 32;
const OFF_DEVICE_SIZE: usize = 40;
const OFF_BLOCK_SIZE: usize = 48;
const OFF_LOG_OFF: usize = 56;
const OFF_LOG_LEN: usize = 64;
const OFF_CKPT0: usize = 72;
const OFF_CKPT1: usize = 80;
const OFF_CKPT_LEN: usize = 88;
const OFF_DATA_OFF: usize = 96;
const OFF_DATA_BLOCKS: usize = 104;
/// Byte offset of the active checkpoint copy (u32).
pub const OFF_ACTIVE_CKPT: usize = 112;
/// Byte offset of the bytes used in the active checkpoint (u64).
pub const OFF_CKPT_USED: usize = 120;
/// Byte offset of the checksum of the active checkpoint (u32).
pub const OFF_CKPT_CRC: usize = 128;
const OFF_LOG_SEQ: usize = 136;
const OFF_CREATED: usize = 144;
/// Bytes no version-1 field uses; version 1 writes them as zero and refuses others (a
/// later version would raise the version or set a flag, never reuse them silently).
pub const RESERVED: [std::ops::Range<usize>; 3] = [116..120, 132..136, 152..SB_CRC_AT];

/// One decoded superblock slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Format version this slot was written with.
    pub version: u32,
    /// Filesystem identity.
    pub uuid: [u8; 16],
    /// Incremented by every checkpoint; the higher valid slot wins.
    pub generation: u64,
    /// Region layout.
    pub layout: Layout,
    /// Which checkpoint area (0/1) holds the current checkpoint.
    pub active_ckpt: u32,
    /// Length in bytes of the current checkpoint.
    pub ckpt_used: u64,
    /// crc32c of those bytes.
    pub ckpt_crc: u32,
    /// Sequence number of the first log record after that checkpoint.
    pub log_seq: u64,
    /// mkfs time, ns since the epoch.
    pub created_ns: u64,
}

impl Superblock {
    /// Which slot (0 = A, 1 = B) this generation is written to.
    pub fn slot(&self) -> u64 {
        self.generation % 2
    }

    /// Device offset of slot `slot`.
    pub fn slot_offset(slot: u64) -> u64 {
        slot * SB_SLOT_SIZE
    }

    /// Encodes the slot (SB_LEN bytes).
    pub fn encode(&self) -> [u8; SB_LEN] {
        let mut b = [0u8; SB_LEN];
        b[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(SB_MAGIC);
        put32(&mut b, OFF_VERSION, self.version);
        put32(&mut b, OFF_FLAGS, 0);
        b[OFF_UUID..OFF_UUID + 16].copy_from_slice(&self.uuid);
        put64(&mut b, OFF_GENERATION, self.generation);
        let l = &self.layout;
        put64(&mut b, OFF_DEVICE_SIZE, l.device_size);
        put64(&mut b, OFF_BLOCK_SIZE, l.block_size);
        put64(&mut b, OFF_LOG_OFF, l.log_off);
        put64(&mut b, OFF_LOG_LEN, l.log_len);
        put64(&mut b, OFF_CKPT0, l.ckpt_off[0]);
        put64(&mut b, OFF_CKPT1, l.ckpt_off[1]);
        put64(&mut b, OFF_CKPT_LEN, l.ckpt_len);
        put64(&mut b, OFF_DATA_OFF, l.data_off);
        put64(&mut b, OFF_DATA_BLOCKS, l.data_blocks);
        put32(&mut b, OFF_ACTIVE_CKPT, self.active_ckpt);
        put64(&mut b, OFF_CKPT_USED, self.ckpt_used);
        put32(&mut b, OFF_CKPT_CRC, self.ckpt_crc);
        put64(&mut b, OFF_LOG_SEQ, self.log_seq);
        put64(&mut b, OFF_CREATED, self.created_ns);
        let c = crc(&[&b[..SB_CRC_AT]]);
        put32(&mut b, SB_CRC_AT, c);
        b
    }

    /// Decodes and validates a slot. `device_size` is the real size of the device.
    pub fn decode(b: &[u8], device_size: u64) -> Result<Superblock, FormatError> {
        if b.len() < SB_LEN {
            return Err(FormatError::Truncated);
        }
        if &b[OFF_MAGIC..OFF_MAGIC + 8] != SB_MAGIC {
            return Err(FormatError::BadMagic("superblock"));
        }
        if crc(&[&b[..SB_CRC_AT]]) != le32(b, SB_CRC_AT) {
            return Err(FormatError::Checksum("superblock"));
        }
        let version = le32(b, OFF_VERSION);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(FormatError::Version(version));
        }
        let flags = le32(b, OFF_FLAGS);
        if flags != 0 {
            return Err(FormatError::Invalid {
                what: "superblock flags (none are defined)",
                value: flags as u64,
            });
        }
        if let Some(at) = RESERVED.iter().flat_map(|r| r.clone()).find(|&i| b[i] != 0) {
            return Err(FormatError::Invalid {
                what: "reserved superblock byte (offset in the value)",
                value: at as u64,
            });
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[OFF_UUID..OFF_UUID + 16]);
        let layout = Layout {
            device_size: le64(b, OFF_DEVICE_SIZE),
            block_size: le64(b, OFF_BLOCK_SIZE),
            log_off: le64(b, OFF_LOG_OFF),
            log_len: le64(b, OFF_LOG_LEN),
            ckpt_off: [le64(b, OFF_CKPT0), le64(b, OFF_CKPT1)],
            ckpt_len: le64(b, OFF_CKPT_LEN),
            data_off: le64(b, OFF_DATA_OFF),
            data_blocks: le64(b, OFF_DATA_BLOCKS),
        };
        layout.validate(device_size)?;
        let sb = Superblock {
            version,
            uuid,
            generation: le64(b, OFF_GENERATION),
            layout,
            active_ckpt: le32(b, OFF_ACTIVE_CKPT),
            ckpt_used: le64(b, OFF_CKPT_USED),
            ckpt_crc: le32(b, OFF_CKPT_CRC),
            log_seq: le64(b, OFF_LOG_SEQ),
            created_ns: le64(b, OFF_CREATED),
        };
        if sb.active_ckpt > 1 {
            return Err(FormatError::Invalid {
                what: "active checkpoint",
                value: sb.active_ckpt as u64,
            });
        }
        if sb.ckpt_used > layout.ckpt_len || sb.ckpt_used == 0 {
            return Err(FormatError::Invalid {
                what: "checkpoint length",
                value: sb.ckpt_used,
            });
        }
        Ok(sb)
    }
}

/// The outcome of reading both slots.
#[derive(Debug, Clone)]
pub struct SlotPick {
    /// The valid slot with the highest generation.
    pub current: Superblock,
    /// Problems with the other slot, if any (fsck reports them; a torn slot beside a valid
    /// one is a state a crash can leave).
    pub other_problem: Option<(u64, FormatError)>,
}

/// Picks the current superblock out of the two slot images.
pub fn pick(slot_a: &[u8], slot_b: &[u8], device_size: u64) -> Result<SlotPick, FormatError> {
    let a = Superblock::decode(slot_a, device_size);
    let b = Superblock::decode(slot_b, device_size);
    match (a, b) {
        (Ok(a), Ok(b)) => {
            let (cur, other) = if b.generation > a.generation {
                (b, a)
            } else {
                (a, b)
            };
            let mut other_problem = None;
            if other.uuid != cur.uuid {
                other_problem = Some((
                    other.slot(),
                    FormatError::Invalid {
                        what: "uuid of the other slot",
                        value: 0,
                    },
                ));
            }
            Ok(SlotPick {
                current: cur,
                other_problem,
            })
        }
        (Ok(a), Err(e)) => Ok(SlotPick {
            current: a,
            other_problem: Some((1, e)),
        }),
        (Err(e), Ok(b)) => Ok(SlotPick {
            current: b,
            other_problem: Some((0, e)),
        }),
        (Err(ea), Err(_)) => Err(ea),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::layout::LayoutOptions;

    fn sample() -> Superblock {
        Superblock {
            version: FORMAT_VERSION,
            uuid: [7; 16],
            generation: 3,
            layout: Layout::compute(64 << 20, LayoutOptions::default()).unwrap(),
            active_ckpt: 1,
            ckpt_used: 100,
            ckpt_crc: 0xdead,
            log_seq: 42,
            created_ns: 1,
        }
    }

    #[test]
    fn roundtrip() {
        let sb = sample();
        let b = sb.encode();
        assert_eq!(Superblock::decode(&b, 64 << 20).unwrap(), sb);
    }

    #[test]
    fn flags_and_reserved_bytes_must_be_zero() {
        let b = sample().encode();
        let refix = |mut c: [u8; SB_LEN]| {
            let k = crc(&[&c[..SB_CRC_AT]]);
            put32(&mut c, SB_CRC_AT, k);
            c
        };
        let mut c = b;
        put32(&mut c, OFF_FLAGS, 4);
        match Superblock::decode(&refix(c), 64 << 20) {
            Err(FormatError::Invalid { what, value: 4 }) => assert!(what.contains("flags")),
            other => panic!("{other:?}"),
        }
        for at in [116, 135, 152, 200, SB_CRC_AT - 1] {
            let mut c = b;
            c[at] = 1;
            match Superblock::decode(&refix(c), 64 << 20) {
                Err(FormatError::Invalid { what, value }) => {
                    assert!(what.contains("reserved"));
                    assert_eq!(value, at as u64);
                }
                other => panic!("byte {at}: {other:?}"),
            }
        }
        // Every byte that is not reserved belongs to a field.
        let mut c = b;
        c[OFF_CREATED + 7] ^= 1;
        assert!(Superblock::decode(&refix(c), 64 << 20).is_ok());
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let b = sample().encode();
        for i in 0..SB_LEN * 8 {
            let mut c = b;
            c[i / 8] ^= 1 << (i % 8);
            assert!(
                Superblock::decode(&c, 64 << 20).is_err(),
                "flip of bit {i} accepted"
            );
        }
    }

    #[test]
    fn pick_prefers_higher_generation_and_survives_one_torn_slot() {
        let a = sample();
        let mut b = sample();
        b.generation = 4;
        let (ea, eb) = (a.encode(), b.encode());
        assert_eq!(pick(&ea, &eb, 64 << 20).unwrap().current.generation, 4);
        let mut torn = eb;
        torn[100] ^= 0xff;
        let p = pick(&ea, &torn, 64 << 20).unwrap();
        assert_eq!(p.current.generation, 3);
        assert!(p.other_problem.is_some());
        assert!(pick(&torn, &torn, 64 << 20).is_err());
    }
}
