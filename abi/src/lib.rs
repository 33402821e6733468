//! The ioctl ABI of sealfs: numbers and fixed-size little-endian argument structures, as
//! `include/sealfs.h` declares them for C programs.
//!
//! FUSE passes ioctl arguments of files on a FUSE mount by their `_IOC_SIZE`: the kernel
//! copies exactly that many bytes in (`_IOW`) and out (`_IOR`). Decoders here take those
//! bytes and return [`AbiError::Invalid`] (EINVAL in the daemon) for anything malformed —
//! wrong size, unknown flags, non-zero reserved fields — and never panic. This crate is
//! pure: no I/O, no logging, nothing of the filesystem; the daemon (`sealfs`) and the
//! window client (`sealfs-window`) both build on it. A test checks every number, size
//! and offset here against the C header.

#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

/// What an argument structure can be refused for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// A malformed argument (EINVAL), with what was wrong.
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// More entries than the structure holds (E2BIG).
    #[error("argument list too long")]
    TooBig,
}

/// The result of a decoder.
pub type Result<T> = std::result::Result<T, AbiError>;
use AbiError as Error;

/// Reads a little-endian u32 at `at`; the caller checked the length (`exact`).
fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Reads a little-endian u64 at `at`; the caller checked the length (`exact`).
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Writes a little-endian u32 at `at` of a buffer of the structure's size.
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian u64 at `at` of a buffer of the structure's size.
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

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
/// `SEALFS_IOC_REVOKE` (root): revokes every seal and pin overlapping the range, of any
/// holder; `struct sealfs_seal` with `flags` 0.
pub const IOC_REVOKE: u32 = ioc(IOC_WRITE, IOC_TYPE, 8, SEAL_ARG_SIZE);
/// Seal flag: breakable (recalled on conflict instead of refusing it).
pub const SEAL_BREAKABLE: u32 = 1;
/// Seal flag: allocate and zero the holes of the range first.
pub const SEAL_POPULATE: u32 = 2;
/// Seal flag: the new seal replaces every temporary and breakable seal the descriptor
/// holds, in the same step (a seal moved in one call); ignored by UNSEAL.
pub const SEAL_REPLACE: u32 = 4;

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
        if a.flags & !(SEAL_BREAKABLE | SEAL_POPULATE | SEAL_REPLACE) != 0 {
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

/// `SEALFS_MAP_READ`: a SETUPMAPPING flag, map for reading.
pub const MAP_READ: u64 = 1;
/// `SEALFS_MAP_WRITE`: map for writing.
pub const MAP_WRITE: u64 = 2;
/// `SEALFS_MAP_POPULATE`: accepted for parity with virtio-fs (holes are always allocated).
pub const MAP_POPULATE: u64 = 4;

/// (file offset, device offset, length) of one device extent.
pub type Triple = (u64, u64, u64);

/// Device extents one SETUPMAPPING answer carries at most (a 2 MiB slot of 4 KiB blocks).
pub const MAP_EXTENTS_MAX: usize = 512;
/// One `struct sealfs_dev_extent`: foffset u64, doffset u64, len u64.
pub const DEV_EXTENT_SIZE: usize = 24;
/// `struct sealfs_setupmapping`: fh u64 (ignored: the fd names the file), foffset u64,
/// len u64, flags u64, moffset u64 (the virtio-fs `fuse_setupmapping_in` fields), then
/// count u32, reserved u32 and `MAP_EXTENTS_MAX` extents filled by the daemon.
pub const SETUPMAPPING_SIZE: usize = 40 + 8 + MAP_EXTENTS_MAX * DEV_EXTENT_SIZE;
/// `SEALFS_IOC_SETUPMAPPING`.
pub const IOC_SETUPMAPPING: u32 = ioc(IOC_READ | IOC_WRITE, IOC_TYPE, 0x20, SETUPMAPPING_SIZE);
/// Ranges one REMOVEMAPPING / FLUSHMAPPING / GET_RECALLS call carries at most.
pub const RANGES_MAX: usize = 16;
/// `struct sealfs_ranges`: count u32, reserved u32, then `RANGES_MAX` × (moffset u64, len u64)
/// (the virtio-fs `fuse_removemapping_one` fields).
pub const RANGES_SIZE: usize = 8 + RANGES_MAX * 16;
/// `SEALFS_IOC_REMOVEMAPPING`.
pub const IOC_REMOVEMAPPING: u32 = ioc(IOC_WRITE, IOC_TYPE, 0x21, RANGES_SIZE);
/// `SEALFS_IOC_FLUSHMAPPING`: the host flushed writes through these slots; the daemon drops
/// stale page-cache pages of the file.
pub const IOC_FLUSHMAPPING: u32 = ioc(IOC_WRITE, IOC_TYPE, 0x22, RANGES_SIZE);
/// `SEALFS_IOC_GET_RECALLS`: the slots of this fd whose pins are being recalled.
pub const IOC_GET_RECALLS: u32 = ioc(IOC_READ, IOC_TYPE, 0x23, RANGES_SIZE);
/// `struct sealfs_extent_list`: start u64 (file offset to list from), count u32, total u32,
/// then `MAP_EXTENTS_MAX` extents. Root only.
pub const EXTENT_LIST_SIZE: usize = 16 + MAP_EXTENTS_MAX * DEV_EXTENT_SIZE;
/// `SEALFS_IOC_EXTENTS`.
pub const IOC_EXTENTS: u32 = ioc(IOC_READ | IOC_WRITE, IOC_TYPE, 6, EXTENT_LIST_SIZE);
/// `SEALFS_IOC_DEFRAG` (on any file or directory of the mount; root only): counts out.
pub const DEFRAG_SIZE: usize = 32;
/// `SEALFS_IOC_DEFRAG`.
pub const IOC_DEFRAG: u32 = ioc(IOC_READ, IOC_TYPE, 7, DEFRAG_SIZE);

/// A decoded SETUPMAPPING request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupMapping {
    /// File offset.
    pub foffset: u64,
    /// Length.
    pub len: u64,
    /// `MAP_*` flags.
    pub flags: u64,
    /// Window offset of the slot (the key REMOVEMAPPING uses).
    pub moffset: u64,
}

impl SetupMapping {
    /// Decodes the request half of `struct sealfs_setupmapping`.
    pub fn decode(b: &[u8]) -> Result<SetupMapping> {
        exact(b, SETUPMAPPING_SIZE)?;
        if le32(b, 44) != 0 {
            return Err(Error::Invalid("reserved field not zero"));
        }
        Ok(SetupMapping {
            foffset: le64(b, 8),
            len: le64(b, 16),
            flags: le64(b, 24),
            moffset: le64(b, 32),
        })
    }

    /// Encodes a request (the answer fields zero).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SETUPMAPPING_SIZE];
        put64(&mut b, 8, self.foffset);
        put64(&mut b, 16, self.len);
        put64(&mut b, 24, self.flags);
        put64(&mut b, 32, self.moffset);
        b
    }
}

/// Fills the answer half: `(foffset, doffset, len)` triples. Too many → E2BIG.
pub fn encode_mapping_answer(req: &[u8], extents: &[(u64, u64, u64)]) -> Result<Vec<u8>> {
    if extents.len() > MAP_EXTENTS_MAX {
        return Err(Error::TooBig);
    }
    let mut b = req.to_vec();
    b.resize(SETUPMAPPING_SIZE, 0);
    put32(&mut b, 40, extents.len() as u32);
    for (i, &(f, d, l)) in extents.iter().enumerate() {
        let o = 48 + i * DEV_EXTENT_SIZE;
        put64(&mut b, o, f);
        put64(&mut b, o + 8, d);
        put64(&mut b, o + 16, l);
    }
    Ok(b)
}

/// Decodes the answer half.
pub fn decode_mapping_answer(b: &[u8]) -> Result<Vec<(u64, u64, u64)>> {
    exact(b, SETUPMAPPING_SIZE)?;
    let n = le32(b, 40) as usize;
    if n > MAP_EXTENTS_MAX {
        return Err(Error::Invalid("extent count"));
    }
    Ok((0..n)
        .map(|i| {
            let o = 48 + i * DEV_EXTENT_SIZE;
            (le64(b, o), le64(b, o + 8), le64(b, o + 16))
        })
        .collect())
}

/// Decodes `struct sealfs_ranges` as (moffset, len) pairs.
pub fn decode_ranges(b: &[u8]) -> Result<Vec<(u64, u64)>> {
    exact(b, RANGES_SIZE)?;
    let n = le32(b, 0) as usize;
    if n > RANGES_MAX || n == 0 || le32(b, 4) != 0 {
        return Err(Error::Invalid("range count"));
    }
    Ok((0..n)
        .map(|i| (le64(b, 8 + i * 16), le64(b, 16 + i * 16)))
        .collect())
}

/// Decodes the `struct sealfs_ranges` GET_RECALLS fills: the first `count` (at most
/// `RANGES_MAX`) entries as (moffset, len); none is not an error here.
pub fn decode_recalls(b: &[u8]) -> Result<Vec<(u64, u64)>> {
    exact(b, RANGES_SIZE)?;
    let n = (le32(b, 0) as usize).min(RANGES_MAX);
    Ok((0..n)
        .map(|i| (le64(b, 8 + i * 16), le64(b, 16 + i * 16)))
        .collect())
}

/// Encodes `struct sealfs_ranges` (at most `RANGES_MAX`).
pub fn encode_ranges(r: &[(u64, u64)]) -> Vec<u8> {
    let mut b = vec![0u8; RANGES_SIZE];
    let n = r.len().min(RANGES_MAX);
    put32(&mut b, 0, n as u32);
    for (i, &(m, l)) in r.iter().take(n).enumerate() {
        put64(&mut b, 8 + i * 16, m);
        put64(&mut b, 16 + i * 16, l);
    }
    b
}

/// Decodes the start offset of `struct sealfs_extent_list`.
pub fn decode_extent_start(b: &[u8]) -> Result<u64> {
    exact(b, EXTENT_LIST_SIZE)?;
    Ok(le64(b, 0))
}

/// Encodes an extent list answer.
pub fn encode_extent_list(start: u64, extents: &[(u64, u64, u64)], total: usize) -> Vec<u8> {
    let mut b = vec![0u8; EXTENT_LIST_SIZE];
    put64(&mut b, 0, start);
    let n = extents.len().min(MAP_EXTENTS_MAX);
    put32(&mut b, 8, n as u32);
    put32(&mut b, 12, total.min(u32::MAX as usize) as u32);
    for (i, &(f, d, l)) in extents.iter().take(n).enumerate() {
        let o = 16 + i * DEV_EXTENT_SIZE;
        put64(&mut b, o, f);
        put64(&mut b, o + 8, d);
        put64(&mut b, o + 16, l);
    }
    b
}

/// Decodes an extent list answer: (extents, total).
pub fn decode_extent_list(b: &[u8]) -> Result<(Vec<Triple>, u32)> {
    exact(b, EXTENT_LIST_SIZE)?;
    let n = le32(b, 8) as usize;
    if n > MAP_EXTENTS_MAX {
        return Err(Error::Invalid("extent count"));
    }
    let v = (0..n)
        .map(|i| {
            let o = 16 + i * DEV_EXTENT_SIZE;
            (le64(b, o), le64(b, o + 8), le64(b, o + 16))
        })
        .collect();
    Ok((v, le32(b, 12)))
}

/// Encodes the defrag counts (files, moved, sealed, no_space).
pub fn encode_defrag(files: u64, moved: u64, sealed: u64, no_space: u64) -> Vec<u8> {
    let mut b = vec![0u8; DEFRAG_SIZE];
    put64(&mut b, 0, files);
    put64(&mut b, 8, moved);
    put64(&mut b, 16, sealed);
    put64(&mut b, 24, no_space);
    b
}

/// Decodes the defrag counts.
pub fn decode_defrag(b: &[u8]) -> Result<[u64; 4]> {
    exact(b, DEFRAG_SIZE)?;
    Ok([le64(b, 0), le64(b, 8), le64(b, 16), le64(b, 24)])
}

#[cfg(test)]
mod window_abi_tests {
    use super::*;

    #[test]
    fn window_numbers_match_the_c_header() {
        // From the C preprocessor on include/sealfs.h (x86-64).
        assert_eq!(
            [
                IOC_SETUPMAPPING,
                IOC_REMOVEMAPPING,
                IOC_FLUSHMAPPING,
                IOC_GET_RECALLS,
                IOC_EXTENTS,
                IOC_DEFRAG
            ],
            [0xf0305320, 0x41085321, 0x41085322, 0x81085323, 0xf0105306, 0x80205307]
        );
    }
}

/// `struct sealfs_stat`: 32 little-endian u64 fields (see [`StatArg`] for their order),
/// returned by `SEALFS_IOC_STAT` on any file or directory of a mount.
pub const STAT_SIZE: usize = 256;
/// `SEALFS_IOC_STAT`.
pub const IOC_STAT: u32 = ioc(IOC_READ, IOC_TYPE, 0x10, STAT_SIZE);
/// Byte offset of `uuid[16]` in `struct sealfs_stat` (after the 24 u64 fields).
pub const STAT_UUID_AT: usize = 200;
/// Byte offset of `guest_mappings` in `struct sealfs_stat` (after `uuid[16]`).
pub const STAT_GUEST_MAPPINGS_AT: usize = 216;
/// Value of the first field of `struct sealfs_stat`.
pub const STAT_VERSION: u64 = 1;
/// `mount_flags` bit: mounted read-only.
pub const STAT_MOUNT_RO: u64 = 1;
/// `mount_flags` bit: `cache=page` (else direct I/O).
pub const STAT_MOUNT_CACHE_PAGE: u64 = 2;
/// `mount_flags` bit: `allow_other`.
pub const STAT_MOUNT_ALLOW_OTHER: u64 = 4;
/// `mount_flags` bit: POSIX ACLs on (`acl`, negotiated with the kernel).
pub const STAT_MOUNT_ACL: u64 = 8;
/// `device_kind` values.
pub const STAT_DEVICE_IMAGE: u64 = 1;
/// Device DAX.
pub const STAT_DEVICE_DEVDAX: u64 = 2;
/// Simulated (tests).
pub const STAT_DEVICE_SIM: u64 = 3;
/// `flush_method` values, in the order of [`FLUSH_METHODS`] (0 = unknown).
pub const FLUSH_METHODS: [&str; 5] = ["msync", "clwb", "clflushopt", "clflush", "simulated"];

/// `struct sealfs_readonly`: read_only u32 (1 or 0), reserved u32.
pub const READONLY_ARG_SIZE: usize = 8;
/// `SEALFS_IOC_SET_READONLY` (root only, on the mount): what `mount -o remount,ro|rw` tells
/// the daemon after (ro) or before (rw) changing the kernel's mount flags.
pub const IOC_SET_READONLY: u32 = ioc(IOC_WRITE, IOC_TYPE, 0x11, READONLY_ARG_SIZE);

/// `SEALFS_IOC_NOOP` (`_IO`, no argument): does nothing and answers 0, on any file or
/// directory of a mount, for anyone. One ioctl round trip to the daemon and back, what
/// `scripts/bench.sh` sets the seal figures against.
pub const IOC_NOOP: u32 = ioc(0, IOC_TYPE, 0x12, 0);

/// The counters and settings `sealfs stat` shows, in their on-the-wire order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatArg {
    /// Allocation unit in bytes.
    pub block_size: u64,
    /// Data blocks.
    pub total_blocks: u64,
    /// Free data blocks.
    pub free_blocks: u64,
    /// Inodes in use.
    pub inodes: u64,
    /// Inodes the checkpoint area holds (estimate).
    pub max_inodes: u64,
    /// Log bytes used since the last checkpoint.
    pub log_used: u64,
    /// Log capacity in bytes.
    pub log_len: u64,
    /// Checkpoints written since mount.
    pub checkpoints: u64,
    /// Log records appended since mount.
    pub records: u64,
    /// Superblock generation.
    pub generation: u64,
    /// Device size in bytes.
    pub device_size: u64,
    /// Index into [`FLUSH_METHODS`] plus one; 0 = unknown.
    pub flush_method: u64,
    /// `STAT_DEVICE_*`.
    pub device_kind: u64,
    /// `STAT_MOUNT_*` bits.
    pub mount_flags: u64,
    /// FUSE worker threads.
    pub threads: u64,
    /// `break_timeout` in milliseconds.
    pub break_timeout_ms: u64,
    /// `max_seals`: per open file description.
    pub max_seals: u64,
    /// Temporary and breakable seals held now.
    pub seals: u64,
    /// Mapping pins held now.
    pub pins: u64,
    /// Recalls since mount.
    pub recalls: u64,
    /// Revocations since mount.
    pub revocations: u64,
    /// Blocks quarantined after revocations.
    pub quarantined_blocks: u64,
    /// How long the kernel caches names and attributes (`timeout=`), milliseconds.
    pub timeout_ms: u64,
    /// `max_seals_per_user`: seals one user may hold in all.
    pub max_seals_per_user: u64,
    /// The filesystem's UUID (as in its superblock): a window host that opens the device
    /// by the mount's source checks it found this filesystem there.
    pub uuid: [u8; 16],
    /// Live DAX window mappings of a virtual machine served over vhost-user-fs.
    pub guest_mappings: u64,
}

impl StatArg {
    fn fields(&self) -> [u64; 25] {
        [
            STAT_VERSION,
            self.block_size,
            self.total_blocks,
            self.free_blocks,
            self.inodes,
            self.max_inodes,
            self.log_used,
            self.log_len,
            self.checkpoints,
            self.records,
            self.generation,
            self.device_size,
            self.flush_method,
            self.device_kind,
            self.mount_flags,
            self.threads,
            self.break_timeout_ms,
            self.max_seals,
            self.seals,
            self.pins,
            self.recalls,
            self.revocations,
            self.quarantined_blocks,
            self.timeout_ms,
            self.max_seals_per_user,
        ]
    }

    /// Encodes `struct sealfs_stat` (unused fields zero).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; STAT_SIZE];
        for (i, v) in self.fields().iter().enumerate() {
            put64(&mut b, i * 8, *v);
        }
        b[STAT_UUID_AT..STAT_UUID_AT + 16].copy_from_slice(&self.uuid);
        put64(&mut b, STAT_GUEST_MAPPINGS_AT, self.guest_mappings);
        b
    }

    /// Decodes `struct sealfs_stat`.
    pub fn decode(b: &[u8]) -> Result<StatArg> {
        exact(b, STAT_SIZE)?;
        if le64(b, 0) != STAT_VERSION {
            return Err(Error::Invalid("sealfs_stat version"));
        }
        let f = |i: usize| le64(b, i * 8);
        Ok(StatArg {
            block_size: f(1),
            total_blocks: f(2),
            free_blocks: f(3),
            inodes: f(4),
            max_inodes: f(5),
            log_used: f(6),
            log_len: f(7),
            checkpoints: f(8),
            records: f(9),
            generation: f(10),
            device_size: f(11),
            flush_method: f(12),
            device_kind: f(13),
            mount_flags: f(14),
            threads: f(15),
            break_timeout_ms: f(16),
            max_seals: f(17),
            seals: f(18),
            pins: f(19),
            recalls: f(20),
            revocations: f(21),
            quarantined_blocks: f(22),
            timeout_ms: f(23),
            max_seals_per_user: f(24),
            uuid: b[STAT_UUID_AT..STAT_UUID_AT + 16]
                .try_into()
                .map_err(|_| Error::Invalid("sealfs_stat size"))?,
            guest_mappings: le64(b, STAT_GUEST_MAPPINGS_AT),
        })
    }

    /// The flush method's name.
    pub fn flush_method_name(&self) -> &'static str {
        match self.flush_method {
            n @ 1..=5 => FLUSH_METHODS[n as usize - 1],
            _ => "unknown",
        }
    }
}

/// The `flush_method` code of a device's method name.
pub fn flush_method_code(name: &str) -> u64 {
    FLUSH_METHODS
        .iter()
        .position(|m| *m == name)
        .map_or(0, |i| i as u64 + 1)
}

/// Decodes `struct sealfs_readonly`.
pub fn decode_readonly(b: &[u8]) -> Result<bool> {
    exact(b, READONLY_ARG_SIZE)?;
    match (le32(b, 0), le32(b, 4)) {
        (v @ (0 | 1), 0) => Ok(v == 1),
        _ => Err(Error::Invalid("sealfs_readonly fields")),
    }
}

/// Encodes `struct sealfs_readonly`.
pub fn encode_readonly(ro: bool) -> [u8; READONLY_ARG_SIZE] {
    let mut b = [0u8; READONLY_ARG_SIZE];
    put32(&mut b, 0, ro as u32);
    b
}

#[cfg(test)]
mod stat_abi_tests {
    use super::*;

    #[test]
    fn stat_numbers_and_round_trip() {
        // From the C preprocessor on include/sealfs.h (x86-64).
        assert_eq!(
            [IOC_STAT, IOC_SET_READONLY, IOC_NOOP],
            [0x8100_5310, 0x4008_5311, 0x0000_5312]
        );
        let s = StatArg {
            block_size: 4096,
            free_blocks: 7,
            flush_method: flush_method_code("clwb"),
            quarantined_blocks: 3,
            timeout_ms: 60_000,
            max_seals_per_user: 16384,
            uuid: [9; 16],
            guest_mappings: 26,
            ..Default::default()
        };
        assert_eq!(StatArg::decode(&s.encode()).unwrap(), s);
        assert_eq!(s.flush_method_name(), "clwb");
        assert!(StatArg::decode(&[0u8; STAT_SIZE]).is_err());
        assert!(StatArg::decode(&s.encode()[..8]).is_err());
        assert!(decode_readonly(&encode_readonly(true)).unwrap());
        assert!(decode_readonly(&[2, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}

/// Every sealfs ioctl number.
pub const IOC_ALL: [u32; 15] = [
    IOC_SEAL,
    IOC_UNSEAL,
    IOC_REVOKE,
    IOC_GET_SEALS,
    IOC_SET_IMMUTABLE,
    IOC_CLEAR_IMMUTABLE,
    IOC_EXTENTS,
    IOC_DEFRAG,
    IOC_SETUPMAPPING,
    IOC_REMOVEMAPPING,
    IOC_FLUSHMAPPING,
    IOC_GET_RECALLS,
    IOC_STAT,
    IOC_SET_READONLY,
    IOC_NOOP,
];

/// True when `cmd` has the type and number of a sealfs ioctl but another argument size or
/// direction: a wrong argument size (EINVAL), not an unknown ioctl (ENOTTY).
pub fn wrong_size(cmd: u32) -> bool {
    IOC_ALL
        .iter()
        .any(|&c| c & 0xffff == cmd & 0xffff && c != cmd)
}
