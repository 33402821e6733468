//! The in-memory inode: attributes, extended attributes and the type-specific body.
//!
//! This is the state that checkpoints store and log replay rebuilds. It holds no locks and
//! does no I/O.

use std::collections::BTreeMap;

use super::dir::Dir;
use super::extents::ExtentMap;
use crate::format::record::Ts;

/// `S_IFMT` and the type values (Linux).
pub mod mode {
    /// Whether `kind` (the `S_IFMT` bits of a mode) is one of the seven file types.
    pub fn is_file_type(kind: u32) -> bool {
        [
            S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK,
        ]
        .contains(&kind)
    }

    /// Type mask.
    pub const S_IFMT: u32 = 0o170000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140000;
    /// Symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Block device.
    pub const S_IFBLK: u32 = 0o060000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
    /// FIFO.
    pub const S_IFIFO: u32 = 0o010000;
}

/// Inode flags (the `FS_IOC_GETFLAGS` values where Linux has one).
pub mod flags {
    /// `chattr +i`: no change at all, no write.
    pub const IMMUTABLE: u32 = 0x0000_0010;
    /// `chattr +a`: writes only append; no truncate, unlink or rename.
    pub const APPEND: u32 = 0x0000_0020;
    /// sealfs: the extent map is sealed permanently (see docs/semantics.md).
    pub const SEALED_MAP: u32 = 0x8000_0000;
    /// The flags `FS_IOC_SETFLAGS` may change.
    pub const USER_SETTABLE: u32 = IMMUTABLE | APPEND;
}

/// Inode attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Device number (device nodes), as FUSE carries it (the kernel's 32-bit
    /// `new_encode_dev` form). The on-media format keeps 64 bits.
    pub rdev: u32,
    /// Size in bytes.
    pub size: u64,
    /// Access time.
    pub atime: Ts,
    /// Modification time.
    pub mtime: Ts,
    /// Change time.
    pub ctime: Ts,
    /// Creation time.
    pub crtime: Ts,
    /// Inode flags (`flags::*`).
    pub flags: u32,
}

impl Attr {
    /// The type bits.
    pub fn kind(&self) -> u32 {
        self.mode & mode::S_IFMT
    }
    /// A directory?
    pub fn is_dir(&self) -> bool {
        self.kind() == mode::S_IFDIR
    }
    /// A regular file?
    pub fn is_file(&self) -> bool {
        self.kind() == mode::S_IFREG
    }
}

/// What an inode holds besides attributes.
#[derive(Clone, Debug)]
pub enum Body {
    /// Regular file: its extent map.
    File(ExtentMap),
    /// Directory: its entries.
    Dir(Dir),
    /// Symlink: its target.
    Symlink(Box<[u8]>),
    /// Device node, fifo or socket.
    Special,
}

/// Extended attributes, sorted by name (absent when there are none, to keep inodes small).
pub type Xattrs = Option<Box<BTreeMap<Box<[u8]>, Box<[u8]>>>>;

/// One inode.
#[derive(Clone, Debug)]
pub struct Inode {
    /// Inode number.
    pub ino: u64,
    /// Attributes.
    pub attr: Attr,
    /// Extended attributes.
    pub xattrs: Xattrs,
    /// Body.
    pub body: Body,
    /// Times changed in memory only (in-place writes, reads), not yet logged.
    pub dirty_times: bool,
    /// Open file handles (runtime only): an unlinked inode stays until this is 0.
    pub open: u32,
}

impl Inode {
    /// A new inode of the type in `attr.mode`.
    pub fn new(ino: u64, attr: Attr, parent: u64, target: &[u8]) -> Inode {
        let body = match attr.kind() {
            mode::S_IFREG => Body::File(ExtentMap::new()),
            mode::S_IFDIR => Body::Dir(Dir::new(parent)),
            mode::S_IFLNK => Body::Symlink(Box::from(target)),
            _ => Body::Special,
        };
        Inode {
            ino,
            attr,
            xattrs: None,
            body,
            dirty_times: false,
            open: 0,
        }
    }

    /// The extent map of a regular file.
    pub fn extents(&self) -> Option<&ExtentMap> {
        match &self.body {
            Body::File(m) => Some(m),
            _ => None,
        }
    }

    /// The extent map of a regular file, mutable.
    pub fn extents_mut(&mut self) -> Option<&mut ExtentMap> {
        match &mut self.body {
            Body::File(m) => Some(m),
            _ => None,
        }
    }

    /// The entries of a directory.
    pub fn dir(&self) -> Option<&Dir> {
        match &self.body {
            Body::Dir(d) => Some(d),
            _ => None,
        }
    }

    /// The entries of a directory, mutable.
    pub fn dir_mut(&mut self) -> Option<&mut Dir> {
        match &mut self.body {
            Body::Dir(d) => Some(d),
            _ => None,
        }
    }

    /// Value of an extended attribute.
    pub fn xattr(&self, name: &[u8]) -> Option<&[u8]> {
        self.xattrs.as_ref()?.get(name).map(|v| &v[..])
    }

    /// Sets an extended attribute.
    pub fn set_xattr(&mut self, name: &[u8], value: &[u8]) {
        self.xattrs
            .get_or_insert_with(Default::default)
            .insert(Box::from(name), Box::from(value));
    }

    /// Removes an extended attribute; false if absent.
    pub fn remove_xattr(&mut self, name: &[u8]) -> bool {
        let Some(x) = self.xattrs.as_mut() else {
            return false;
        };
        let had = x.remove(name).is_some();
        if x.is_empty() {
            self.xattrs = None;
        }
        had
    }

    /// The directory-entry kind of this inode (`mode >> 12`).
    pub fn dirent_kind(&self) -> u8 {
        (self.attr.kind() >> 12) as u8
    }
}

#[cfg(test)]
mod size {
    /// Every inode in memory is an `Arc<InodeLock<Inode>>`: 16 + 8 + this. At 144 bytes
    /// the allocation is 168 bytes, a 176-byte malloc chunk (at 160, a 192-byte one).
    #[test]
    fn inode_stays_small() {
        assert_eq!(std::mem::size_of::<crate::format::record::Ts>(), 12);
        assert_eq!(std::mem::size_of::<super::Attr>(), 80);
        assert_eq!(std::mem::size_of::<super::Inode>(), 144);
        assert_eq!(
            std::mem::size_of::<crate::sync::InodeLock<super::Inode>>(),
            8 + 144
        );
    }
}
