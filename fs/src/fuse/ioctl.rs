//! ioctl dispatch: decodes the command and its argument bytes (`crate::abi`), calls the
//! core, encodes the answer. Unknown commands get ENOTTY, as on any Linux filesystem.
//!
//! FUSE delivers a restricted ioctl's argument as exactly `_IOC_SIZE(cmd)` bytes in
//! (`_IOW`) and takes at most that many out (`_IOR`). `chattr`/`lsattr` arrive through the
//! kernel's fileattr path with the `FS_IOC_*FLAGS` numbers of a `long` argument but 4 bytes
//! of data; the `int`-sized numbers are handled the same way. Before any flag change the
//! kernel reads the old attributes with `FS_IOC_FSGETXATTR`, so that one is answered
//! too (with `FS_IOC_FSSETXATTR`, for `xfs_io chattr`).

use crate::abi;
use crate::error::{Error, Result};
use crate::filesystem::{Ctx, Filesystem};
use crate::fuse::options::{CacheMode, MountConfig};

/// `FS_IOC_GETFLAGS` (`_IOR('f', 1, long)`).
pub const FS_IOC_GETFLAGS: u32 = abi::ioc(2, b'f', 1, 8);
/// `FS_IOC_SETFLAGS` (`_IOW('f', 2, long)`).
pub const FS_IOC_SETFLAGS: u32 = abi::ioc(1, b'f', 2, 8);
/// `FS_IOC32_GETFLAGS` (`_IOR('f', 1, int)`).
pub const FS_IOC32_GETFLAGS: u32 = abi::ioc(2, b'f', 1, 4);
/// `FS_IOC32_SETFLAGS` (`_IOW('f', 2, int)`).
pub const FS_IOC32_SETFLAGS: u32 = abi::ioc(1, b'f', 2, 4);

/// `FS_IOC_FSGETXATTR` (`_IOR('X', 31, struct fsxattr)`): the kernel asks it before every
/// flag change, and `xfs_io` uses it.
pub const FS_IOC_FSGETXATTR: u32 = abi::ioc(2, b'X', 31, FSXATTR_SIZE);
/// `FS_IOC_FSSETXATTR` (`_IOW('X', 32, struct fsxattr)`).
pub const FS_IOC_FSSETXATTR: u32 = abi::ioc(1, b'X', 32, FSXATTR_SIZE);
/// `struct fsxattr`: xflags, extsize, nextents, projid, cowextsize (u32 each), 8 pad bytes.
const FSXATTR_SIZE: usize = 28;
/// `FS_XFLAG_IMMUTABLE`.
const XFLAG_IMMUTABLE: u32 = 0x08;
/// `FS_XFLAG_APPEND`.
const XFLAG_APPEND: u32 = 0x10;
/// `FS_IMMUTABLE_FL`, `FS_APPEND_FL`: the inode flags the xflags above stand for.
const FL_IMMUTABLE: u32 = 0x10;
const FL_APPEND: u32 = 0x20;

/// One ioctl request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Inode the ioctl was issued on.
    pub ino: u64,
    /// File handle (0 for directories).
    pub fh: u64,
    /// Command number.
    pub cmd: u32,
    /// Argument bytes copied in.
    pub input: &'a [u8],
    /// Bytes the caller takes back at most.
    pub out_size: u32,
    /// Caller.
    pub ctx: Ctx,
}

/// Runs one ioctl; returns the bytes to copy out (empty for none).
pub fn dispatch(fs: &Filesystem, cfg: &MountConfig, r: Request<'_>) -> Result<Vec<u8>> {
    match r.cmd {
        FS_IOC_GETFLAGS | FS_IOC32_GETFLAGS => {
            want_out(&r, 4)?;
            Ok(fs.get_flags(r.ino)?.to_le_bytes().to_vec())
        }
        FS_IOC_SETFLAGS | FS_IOC32_SETFLAGS => {
            let b: [u8; 4] = r
                .input
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(Error::Invalid("ioctl argument size"))?;
            fs.set_flags(r.ino, u32::from_le_bytes(b), r.ctx)?;
            Ok(Vec::new())
        }
        FS_IOC_FSGETXATTR => {
            want_out(&r, FSXATTR_SIZE)?;
            let f = fs.get_flags(r.ino)?;
            let mut x = 0;
            if f & FL_IMMUTABLE != 0 {
                x |= XFLAG_IMMUTABLE;
            }
            if f & FL_APPEND != 0 {
                x |= XFLAG_APPEND;
            }
            let mut out = vec![0u8; FSXATTR_SIZE];
            out[..4].copy_from_slice(&x.to_le_bytes());
            Ok(out)
        }
        FS_IOC_FSSETXATTR => {
            if r.input.len() != FSXATTR_SIZE {
                return Err(Error::Invalid("ioctl argument size"));
            }
            let word = |i: usize| crate::format::codec::le32(r.input, i * 4);
            let x = word(0);
            // extsize, projid and cowextsize have no meaning here: only 0 is accepted.
            if x & !(XFLAG_IMMUTABLE | XFLAG_APPEND) != 0
                || word(1) != 0
                || word(3) != 0
                || word(4) != 0
            {
                return Err(Error::NotSupported);
            }
            let mut f = 0;
            if x & XFLAG_IMMUTABLE != 0 {
                f |= FL_IMMUTABLE;
            }
            if x & XFLAG_APPEND != 0 {
                f |= FL_APPEND;
            }
            fs.set_flags(r.ino, f, r.ctx)?;
            Ok(Vec::new())
        }
        abi::IOC_STAT => {
            want_out(&r, abi::STAT_SIZE)?;
            Ok(stat(fs, cfg).encode())
        }
        abi::IOC_SET_READONLY => {
            if r.ctx.uid != 0 {
                return Err(Error::Perm("remount needs root"));
            }
            let ro = abi::decode_readonly(r.input)?;
            if !ro && !fs.device().writable() {
                // Opened read-only (e.g. an image on a read-only filesystem).
                return Err(Error::ReadOnly);
            }
            fs.set_read_only(ro)?;
            Ok(Vec::new())
        }
        cmd if abi::wrong_size(cmd) => Err(Error::Invalid("ioctl argument size")),
        _ => Err(Error::Errno(libc::ENOTTY)),
    }
}

fn want_out(r: &Request<'_>, n: usize) -> Result<()> {
    if (r.out_size as usize) < n {
        return Err(Error::Invalid("ioctl output buffer too small"));
    }
    Ok(())
}

/// The `SEALFS_IOC_STAT` answer.
fn stat(fs: &Filesystem, cfg: &MountConfig) -> abi::StatArg {
    let s = fs.stats();
    let seals = fs.seal_stats();
    let dev = fs.device();
    let mut flags = 0;
    if fs.is_read_only() {
        flags |= abi::STAT_MOUNT_RO;
    }
    if cfg.cache == CacheMode::Page {
        flags |= abi::STAT_MOUNT_CACHE_PAGE;
    }
    if cfg.allow_other {
        flags |= abi::STAT_MOUNT_ALLOW_OTHER;
    }
    if fs.acl_enabled() {
        flags |= abi::STAT_MOUNT_ACL;
    }
    abi::StatArg {
        block_size: s.block_size,
        total_blocks: s.total_blocks,
        free_blocks: s.free_blocks,
        inodes: s.inodes,
        max_inodes: s.max_inodes,
        log_used: s.log_used,
        log_len: s.log_len,
        checkpoints: s.checkpoints,
        records: s.records,
        generation: s.generation,
        device_size: dev.size(),
        flush_method: abi::flush_method_code(dev.flush_method()),
        device_kind: match dev.kind() {
            crate::device::DeviceKind::Image => abi::STAT_DEVICE_IMAGE,
            crate::device::DeviceKind::DevDax => abi::STAT_DEVICE_DEVDAX,
            crate::device::DeviceKind::Sim => abi::STAT_DEVICE_SIM,
        },
        mount_flags: flags,
        threads: cfg.threads as u64,
        break_timeout_ms: cfg.break_timeout.as_millis().min(u64::MAX as u128) as u64,
        max_seals: cfg.max_seals as u64,
        seals: seals.seals,
        pins: seals.pins,
        recalls: seals.recalls,
        revocations: seals.revocations,
        quarantined_blocks: fs.quarantined_blocks(),
        timeout_ms: cfg.timeout.as_millis().min(u64::MAX as u128) as u64,
        max_seals_per_user: cfg.max_seals_per_user as u64,
        uuid: fs.superblock().uuid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_ioctl_numbers() {
        assert_eq!(FS_IOC_GETFLAGS, 0x8008_6601);
        assert_eq!(FS_IOC_SETFLAGS, 0x4008_6602);
        assert_eq!(FS_IOC32_GETFLAGS, 0x8004_6601);
        assert_eq!(FS_IOC32_SETFLAGS, 0x4004_6602);
        assert_eq!(FS_IOC_FSGETXATTR, 0x801c_581f);
        assert_eq!(FS_IOC_FSSETXATTR, 0x401c_5820);
    }
}
