//! The Linux inode-flag ioctls: only the immutable and append-only flags exist here.
//!
//! FUSE delivers a restricted ioctl's argument as exactly `_IOC_SIZE(cmd)` bytes in
//! (`_IOW`) and takes at most that many out (`_IOR`). `chattr`/`lsattr` arrive through the
//! kernel's fileattr path with the `FS_IOC_*FLAGS` numbers of a `long` argument but 4 bytes
//! of data; the `int`-sized numbers are handled the same way. Before any flag change the
//! kernel reads the old attributes with `FS_IOC_FSGETXATTR`, so that one is answered
//! too (with `FS_IOC_FSSETXATTR`, for `xfs_io chattr`).

use super::{want_out, Reply, Request};
use crate::abi;
use crate::error::{Error, Result};
use crate::filesystem::Filesystem;

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

/// `FS_IOC_GETFLAGS`, `FS_IOC32_GETFLAGS`.
pub fn get_flags(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Result<()> {
    want_out(r, 4)?;
    out.data = fs.get_flags(r.ino)?.to_le_bytes().to_vec();
    Ok(())
}

/// `FS_IOC_SETFLAGS`, `FS_IOC32_SETFLAGS`: 4 bytes of flags.
pub fn set_flags(fs: &Filesystem, r: &Request<'_>, _out: &mut Reply) -> Result<()> {
    let b: [u8; 4] = r
        .input
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Invalid("ioctl argument size"))?;
    fs.set_flags(r.ino, u32::from_le_bytes(b), r.ctx)
}

/// `FS_IOC_FSGETXATTR`: the xflags of the inode flags, the rest 0.
pub fn get_xattr(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Result<()> {
    want_out(r, FSXATTR_SIZE)?;
    let f = fs.get_flags(r.ino)?;
    let mut x = 0;
    if f & FL_IMMUTABLE != 0 {
        x |= XFLAG_IMMUTABLE;
    }
    if f & FL_APPEND != 0 {
        x |= XFLAG_APPEND;
    }
    out.data = vec![0u8; FSXATTR_SIZE];
    out.data[..4].copy_from_slice(&x.to_le_bytes());
    Ok(())
}

/// `FS_IOC_FSSETXATTR`: only the immutable and append xflags, every other field 0.
pub fn set_xattr(fs: &Filesystem, r: &Request<'_>, _out: &mut Reply) -> Result<()> {
    if r.input.len() != FSXATTR_SIZE {
        return Err(Error::Invalid("ioctl argument size"));
    }
    let word = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&r.input[i * 4..i * 4 + 4]);
        u32::from_le_bytes(b)
    };
    let x = word(0);
    // extsize, projid and cowextsize have no meaning here: only 0 is accepted.
    if x & !(XFLAG_IMMUTABLE | XFLAG_APPEND) != 0 || word(1) != 0 || word(3) != 0 || word(4) != 0 {
        return Err(Error::NotSupported);
    }
    let mut f = 0;
    if x & XFLAG_IMMUTABLE != 0 {
        f |= FL_IMMUTABLE;
    }
    if x & XFLAG_APPEND != 0 {
        f |= FL_APPEND;
    }
    fs.set_flags(r.ino, f, r.ctx)
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
