//! The log header (format version 3): proof that the log region belongs to the current
//! checkpoint, so that an erased log is not mistaken for an empty one.
//!
//! Every checkpoint leaves the log logically empty, and an empty log is also what an erased
//! (zeroed) region looks like: without more, zeroing the log would roll the filesystem back
//! to its last checkpoint with fsck calling it clean. So each checkpoint, before its
//! superblock is published, writes a small header naming its generation and the log's
//! first sequence number into the first 4 KiB of the log region; records follow after those
//! 4 KiB. Headers alternate between two slots by generation parity, as superblock slots do:
//! writing the header of generation `g + 1` never touches the header generation `g` needs,
//! so a crash at any point leaves the current superblock with its header.

use super::codec::{le32, le64, put32, put64};
use super::{crc, FormatError};

/// Magic at the start of a header slot.
pub const LOG_HEADER_MAGIC: &[u8; 8] = b"SFLOGHD\x01";
/// Bytes of the log region the header slots take (version 3 on); records start here.
pub const LOG_HEADER_AREA: u64 = 4096;
/// Distance between the two slots (slot `g mod 2` of generation `g`).
pub const LOG_HEADER_SLOT: u64 = 2048;
/// Encoded length of a slot.
pub const LOG_HEADER_LEN: usize = 64;
/// The first format version with a log header.
pub const LOG_HEADER_VERSION: u32 = 3;

const OFF_GENERATION: usize = 8;
const OFF_LOG_SEQ: usize = 16;
const OFF_UUID: usize = 24;
const OFF_CRC: usize = 60;

/// One decoded header slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHeader {
    /// Generation of the superblock (and checkpoint) this log follows.
    pub generation: u64,
    /// Sequence number of the first record after that checkpoint.
    pub log_seq: u64,
    /// The filesystem's UUID.
    pub uuid: [u8; 16],
}

impl LogHeader {
    /// Offset of generation `generation`'s slot within the log region.
    pub fn slot_offset(generation: u64) -> u64 {
        (generation % 2) * LOG_HEADER_SLOT
    }

    /// Encodes the slot.
    pub fn encode(&self) -> [u8; LOG_HEADER_LEN] {
        let mut b = [0u8; LOG_HEADER_LEN];
        b[..8].copy_from_slice(LOG_HEADER_MAGIC);
        put64(&mut b, OFF_GENERATION, self.generation);
        put64(&mut b, OFF_LOG_SEQ, self.log_seq);
        b[OFF_UUID..OFF_UUID + 16].copy_from_slice(&self.uuid);
        let c = crc(&[&b[..OFF_CRC]]);
        put32(&mut b, OFF_CRC, c);
        b
    }

    /// Decodes a slot: magic, checksum and zero reserved bytes.
    pub fn decode(b: &[u8]) -> Result<LogHeader, FormatError> {
        if b.len() < LOG_HEADER_LEN {
            return Err(FormatError::Truncated);
        }
        if &b[..8] != LOG_HEADER_MAGIC {
            return Err(FormatError::BadMagic("log header"));
        }
        if crc(&[&b[..OFF_CRC]]) != le32(b, OFF_CRC) {
            return Err(FormatError::Checksum("log header"));
        }
        if b[OFF_UUID + 16..OFF_CRC].iter().any(|&x| x != 0) {
            return Err(FormatError::Invalid {
                what: "log header reserved bytes",
                value: 0,
            });
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[OFF_UUID..OFF_UUID + 16]);
        Ok(LogHeader {
            generation: le64(b, OFF_GENERATION),
            log_seq: le64(b, OFF_LOG_SEQ),
            uuid,
        })
    }
}

/// Where log records start in the log region of a filesystem of format `version`.
pub fn records_start(version: u32) -> u64 {
    if version >= LOG_HEADER_VERSION {
        LOG_HEADER_AREA
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_every_bit_flip_is_caught() {
        let h = LogHeader {
            generation: 7,
            log_seq: 99,
            uuid: [3; 16],
        };
        let b = h.encode();
        assert_eq!(LogHeader::decode(&b).unwrap(), h);
        for i in 0..LOG_HEADER_LEN * 8 {
            let mut c = b;
            c[i / 8] ^= 1 << (i % 8);
            assert!(LogHeader::decode(&c).is_err(), "flip of bit {i} accepted");
        }
        assert!(LogHeader::decode(&[0; LOG_HEADER_LEN]).is_err());
    }
}
