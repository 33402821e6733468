//! Extended attributes in the user., trusted. and security. namespaces (and the two POSIX
//! ACL names when ACLs are on; see `acl`), with Linux's
//! limits and errnos (ERANGE for a short buffer or a long name, E2BIG for a large value,
//! ENODATA for a missing name, EEXIST/ENODATA for XATTR_CREATE/XATTR_REPLACE).

use super::{acl, Error, Filesystem, Result, Retry};
use crate::format::record::Op;
use crate::meta::inode::flags;

/// Longest attribute name (XATTR_NAME_MAX).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest attribute value (XATTR_SIZE_MAX).
pub const XATTR_SIZE_MAX: usize = 65536;
/// Total names + values one inode may carry.
pub const XATTR_TOTAL_MAX: usize = 1 << 20;
/// `XATTR_CREATE`.
pub const XATTR_CREATE: i32 = 1;
/// `XATTR_REPLACE`.
pub const XATTR_REPLACE: i32 = 2;

/// What a sized query returns: the size (when the caller passed 0) or the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum XattrReply {
    /// Size only.
    Size(u32),
    /// The data.
    Data(Vec<u8>),
}

fn check_name(name: &[u8], acl_on: bool) -> Result<()> {
    if name.len() > XATTR_NAME_MAX {
        return Err(Error::Range);
    }
    if acl::is_acl_name(name) {
        return if acl_on {
            Ok(())
        } else {
            Err(Error::NotSupported)
        };
    }
    let ok = [&b"user."[..], b"trusted.", b"security."]
        .iter()
        .any(|p| name.len() > p.len() && name.starts_with(p));
    if !ok {
        return Err(Error::NotSupported);
    }
    Ok(())
}

/// ENOSPC when setting `name` to a value of `len` bytes would take the inode's names and
/// values past [`XATTR_TOTAL_MAX`].
pub(crate) fn check_total(g: &crate::meta::Inode, name: &[u8], len: usize) -> Result<()> {
    let total: usize = g
        .xattrs
        .as_ref()
        .map(|x| x.iter().map(|(k, v)| k.len() + v.len()).sum())
        .unwrap_or(0);
    let old = g.xattr(name).map(|v| v.len() + name.len()).unwrap_or(0);
    if total - old + name.len() + len > XATTR_TOTAL_MAX {
        return Err(Error::NoSpace);
    }
    Ok(())
}

fn sized(data: Vec<u8>, size: u32) -> Result<XattrReply> {
    if size == 0 {
        return Ok(XattrReply::Size(data.len() as u32));
    }
    if data.len() > size as usize {
        return Err(Error::Range);
    }
    Ok(XattrReply::Data(data))
}

impl Filesystem {
    /// Runs `f` on the write-locked inode `ino` for an attribute change, with the log made
    /// room for (checkpoint and retry) and immutable or append-only files refused; `f`
    /// commits and applies its record. The caller has checked the filesystem is writable.
    pub(crate) fn change_xattrs(
        &self,
        ino: u64,
        mut f: impl FnMut(&mut crate::meta::Inode) -> Result<(), Retry>,
    ) -> Result<()> {
        self.transact(|| {
            let n = self.namespace.node(ino)?;
            let mut g = n.write();
            if g.attr.flags & (flags::IMMUTABLE | flags::APPEND) != 0 {
                return Err(Error::Perm("immutable or append-only file").into());
            }
            f(&mut g)
        })
    }

    /// `setxattr(2)` by a caller whose groups and capabilities are unknown: an access ACL
    /// keeps a set-group-ID bit (see [`Filesystem::setxattr_as`]).
    pub fn setxattr(&self, ino: u64, name: &[u8], value: &[u8], xflags: i32) -> Result<()> {
        self.setxattr_as(ino, name, value, xflags, &|_| false)
    }

    /// `setxattr(2)`. The ACL names go to [`Filesystem::set_acl`], which asks `kill_sgid`
    /// (with the file's group) whether the caller is outside that group and lacks
    /// `CAP_FSETID`, and then clears a set-group-ID bit; other names never ask it.
    pub fn setxattr_as(
        &self,
        ino: u64,
        name: &[u8],
        value: &[u8],
        xflags: i32,
        kill_sgid: &dyn Fn(u32) -> bool,
    ) -> Result<()> {
        if acl::is_acl_name(name) {
            return self.set_acl(ino, name, value, xflags, kill_sgid);
        }
        self.check_writable()?;
        check_name(name, self.acl_enabled())?;
        if value.len() > XATTR_SIZE_MAX {
            return Err(Error::TooBig);
        }
        self.meta_room()?;
        self.change_xattrs(ino, |g| {
            let old = g.xattr(name).map(|v| v.len());
            if xflags & XATTR_CREATE != 0 && old.is_some() {
                return Err(Error::Exists.into());
            }
            if xflags & XATTR_REPLACE != 0 && old.is_none() {
                return Err(Error::NoData.into());
            }
            check_total(g, name, value.len())?;
            let op = Op::SetXattr {
                ino,
                name: name.to_vec(),
                value: value.to_vec(),
                time: self.now(),
            };
            self.log_inode(g, &op)
        })
    }

    /// `getxattr(2)`; `size` 0 asks for the size.
    pub fn getxattr(&self, ino: u64, name: &[u8], size: u32) -> Result<XattrReply> {
        if name.len() > XATTR_NAME_MAX {
            return Err(Error::Range);
        }
        if acl::is_acl_name(name) && !self.acl_enabled() {
            return Err(Error::NotSupported);
        }
        let n = self.namespace.node(ino)?;
        let g = n.read();
        let v = g.xattr(name).ok_or(Error::NoData)?.to_vec();
        sized(v, size)
    }

    /// `listxattr(2)`: NUL-terminated names.
    pub fn listxattr(&self, ino: u64, size: u32) -> Result<XattrReply> {
        let n = self.namespace.node(ino)?;
        let g = n.read();
        let mut out = Vec::new();
        let acl_on = self.acl_enabled();
        if let Some(x) = &g.xattrs {
            for k in x.keys().filter(|k| acl_on || !acl::is_acl_name(k)) {
                out.extend_from_slice(k);
                out.push(0);
            }
        }
        sized(out, size)
    }

    /// `removexattr(2)`.
    pub fn removexattr(&self, ino: u64, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        check_name(name, self.acl_enabled())?;
        self.change_xattrs(ino, |g| {
            if g.xattr(name).is_none() {
                return Err(Error::NoData.into());
            }
            let op = Op::RemoveXattr {
                ino,
                name: name.to_vec(),
                time: self.now(),
            };
            self.log_inode(g, &op)
        })
    }
}
