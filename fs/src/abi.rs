//! The ioctl ABI of sealfs: numbers and fixed-size little-endian argument structures, as
//! `include/sealfs.h` declares them for C programs.
//!
//! FUSE passes ioctl arguments of files on a FUSE mount by their `_IOC_SIZE`: the kernel
//! copies exactly that many bytes in (`_IOW`) and out (`_IOR`). Decoders here take those
//! bytes and return `Error::Invalid` (EINVAL) for anything malformed — wrong size, unknown
//! flags, non-zero reserved fields — and never panic. Nothing here touches the filesystem.

use crate::error::{Error, Result};
use crate::format::codec::{le32, le64, put32, put64};

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` as on x86-64 and arm64.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// The ioctl type byte of sealfs.
pub const IOC_TYPE: u8 = b'S';

/// `struct sealfs_seal`: offset u64, length u64 (0 = to the end of the file), flags u32,
/// reserved u32.
pub const SEAL_ARG_SIZE: usize = 24;
/// `SEALFS_IOC_SEAL`.
pub const IOC_SEAL: u32 = ioc(IOC_WRITE, IOC_TYPE, 1, SEAL_ARG_SIZE);
/// `SEALFS_IOC_UNSEAL`.
pub const IOC_UNSEAL: u32 = ioc(IOC_WRITE, IOC_TYPE, 2, SEAL_ARG_SIZE);
/// Seal flag: breakable (recalled on conflict instead of refusing it).
pub const SEAL_BREAKABLE: u32 = 1;
/// Seal flag: allocate and zero the holes of the range first.
pub const SEAL_POPULATE: u32 = 2;

/// Entries one `SEALFS_IOC_GET_SEALS` call returns at most.
pub const SEALS_MAX: usize = 32;
/// One `struct sealfs_seal_info`: offset u64, length u64, kind u32, state u32, pid u32,
/// reserved u32, remaining milliseconds before revocation u64 (recalled seals).
pub const SEAL_INFO_SIZE: usize = 40;
/// `struct sealfs_seal_list`: count u32 (entries filled), total u32 (seals on the file),
/// then `SEALS_MAX` entries.
pub const SEAL_LIST_SIZE: usize = 8 + SEALS_MAX * SEAL_INFO_SIZE;
/// `SEALFS_IOC_GET_SEALS`.
pub const IOC_GET_SEALS: u32 = ioc(IOC_READ, IOC_TYPE, 3, SEAL_LIST_SIZE);
/// Kind values in `sealfs_seal_info`.
pub const KIND_TEMPORARY: u32 = 1;
/// Breakable seal.
pub const KIND_BREAKABLE: u32 = 2;
/// Mapping pin (a live DAX window mapping).
pub const KIND_PIN: u32 = 3;
/// Permanent seal (immutable extent map), reported as a pseudo-entry with pid 0.
pub const KIND_IMMUTABLE: u32 = 4;
/// State: active.
pub const STATE_ACTIVE: u32 = 0;
/// State: being recalled.
pub const STATE_RECALLED: u32 = 1;

/// `struct sealfs_immutable`: flags u32 (`SEAL_POPULATE`), reserved u32.
pub const IMMUTABLE_ARG_SIZE: usize = 8;
/// `SEALFS_IOC_SET_IMMUTABLE`.
pub const IOC_SET_IMMUTABLE: u32 = ioc(IOC_WRITE, IOC_TYPE, 4, IMMUTABLE_ARG_SIZE);
/// `SEALFS_IOC_CLEAR_IMMUTABLE`.
pub const IOC_CLEAR_IMMUTABLE: u32 = ioc(IOC_WRITE, IOC_TYPE, 5, IMMUTABLE_ARG_SIZE);

/// A decoded `struct sealfs_seal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealArg {
    /// First byte.
    pub offset: u64,
    /// Length; 0 = to the end of the file.
    pub length: u64,
    /// `SEAL_*` flags.
    pub flags: u32,
}

fn exact(b: &[u8], n: usize) -> Result<()> {
    if b.len() != n {
        return Err(Error::Invalid("ioctl argument size"));
    }
    Ok(())
}

impl SealArg {
    /// Decodes and validates.
    pub fn decode(b: &[u8]) -> Result<SealArg> {
        exact(b, SEAL_ARG_SIZE)?;
        let a = SealArg {
            offset: le64(b, 0),
            length: le64(b, 8),
            flags: le32(b, 16),
        };
        if a.flags & !(SEAL_BREAKABLE | SEAL_POPULATE) != 0 {
            return Err(Error::Invalid("unknown seal flags"));
        }
        if le32(b, 20) != 0 {
            return Err(Error::Invalid("reserved field not zero"));
        }
        if a.offset.checked_add(a.length).is_none() {
            return Err(Error::Invalid("seal range overflows"));
        }
        Ok(a)
    }

    /// Encodes (for the CLI and tests).
    pub fn encode(&self) -> [u8; SEAL_ARG_SIZE] {
        let mut b = [0u8; SEAL_ARG_SIZE];
        put64(&mut b, 0, self.offset);
        put64(&mut b, 8, self.length);
        put32(&mut b, 16, self.flags);
        b
    }
}

/// Decodes `struct sealfs_immutable`, returning whether to populate.
pub fn decode_immutable(b: &[u8]) -> Result<bool> {
    exact(b, IMMUTABLE_ARG_SIZE)?;
    let flags = le32(b, 0);
    if flags & !SEAL_POPULATE != 0 || le32(b, 4) != 0 {
        return Err(Error::Invalid("unknown immutable flags"));
    }
    Ok(flags & SEAL_POPULATE != 0)
}

/// Encodes `struct sealfs_immutable`.
pub fn encode_immutable(populate: bool) -> [u8; IMMUTABLE_ARG_SIZE] {
    let mut b = [0u8; IMMUTABLE_ARG_SIZE];
    put32(&mut b, 0, if populate { SEAL_POPULATE } else { 0 });
    b
}

/// One seal as listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealInfoArg {
    /// First byte.
    pub offset: u64,
    /// Length; 0 = to the end of the file.
    pub length: u64,
    /// `KIND_*`.
    pub kind: u32,
    /// `STATE_*`.
    pub state: u32,
    /// Holder pid.
    pub pid: u32,
    /// Milliseconds until revocation, for recalled seals.
    pub remaining_ms: u64,
}

/// Encodes a seal list (at most `SEALS_MAX` entries; `total` tells how many exist).
pub fn encode_seal_list(seals: &[SealInfoArg]) -> Vec<u8> {
    let mut b = vec![0u8; SEAL_LIST_SIZE];
    let n = seals.len().min(SEALS_MAX);
    put32(&mut b, 0, n as u32);
    put32(&mut b, 4, seals.len().min(u32::MAX as usize) as u32);
    for (i, s) in seals.iter().take(n).enumerate() {
        let o = 8 + i * SEAL_INFO_SIZE;
        put64(&mut b, o, s.offset);
        put64(&mut b, o + 8, s.length);
        put32(&mut b, o + 16, s.kind);
        put32(&mut b, o + 20, s.state);
        put32(&mut b, o + 24, s.pid);
        put64(&mut b, o + 32, s.remaining_ms);
    }
    b
}

/// Decodes a seal list; returns the entries and the total count.
pub fn decode_seal_list(b: &[u8]) -> Result<(Vec<SealInfoArg>, u32)> {
    exact(b, SEAL_LIST_SIZE)?;
    let n = le32(b, 0) as usize;
    if n > SEALS_MAX {
        return Err(Error::Invalid("seal count"));
    }
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let o = 8 + i * SEAL_INFO_SIZE;
        v.push(SealInfoArg {
            offset: le64(b, o),
            length: le64(b, o + 8),
            kind: le32(b, o + 16),
            state: le32(b, o + 20),
            pid: le32(b, o + 24),
            remaining_ms: le64(b, o + 32),
        });
    }
    Ok((v, le32(b, 4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_c_header() {
        // Values computed by the C preprocessor from include/sealfs.h on x86-64.
        assert_eq!(IOC_SEAL, 0x4018_5301);
        assert_eq!(IOC_UNSEAL, 0x4018_5302);
        assert_eq!(IOC_SET_IMMUTABLE, 0x4008_5304);
    }

    #[test]
    fn seal_arg_validation() {
        let a = SealArg {
            offset: 4096,
            length: 0,
            flags: SEAL_BREAKABLE,
        };
        assert_eq!(SealArg::decode(&a.encode()).unwrap(), a);
        let mut bad = a.encode();
        bad[16] = 0x80;
        assert!(SealArg::decode(&bad).is_err());
        let mut bad = a.encode();
        bad[20] = 1;
        assert!(SealArg::decode(&bad).is_err());
        assert!(SealArg::decode(&a.encode()[..23]).is_err());
        let over = SealArg {
            offset: u64::MAX,
            length: 2,
            flags: 0,
        };
        assert!(SealArg::decode(&over.encode()).is_err());
    }
}
