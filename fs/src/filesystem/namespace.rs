//! Namespace operations: lookup, create, link, unlink, rename, readdir, setattr.
//!
//! Each checks what Linux checks (with the errno Linux gives), then commits one record and
//! applies it. The kernel's `default_permissions` does the permission-bit checks; this
//! code enforces what the kernel leaves to the filesystem (names, types, emptiness, link
//! counts, the append-only and immutable flags).

use sealfs_seal::ChangeKind;

use super::{acl, Attempt, Ctx, Error, Filesystem, Result, Retry, Stat, MAX_LINKS, NAME_MAX};
use crate::format::record::{valid, Op, Ts};
use crate::meta::inode::{flags, mode};
use crate::meta::table::{RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, ROOT_INO};
use crate::meta::{Inode, Node, Table};
use crate::sync::{Rank, RwLock};

/// A time in a setattr request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSet {
    /// The current time.
    Now,
    /// A given time.
    At(Ts),
}

/// A setattr request: `None` fields are left alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeSet>,
    /// New modification time.
    pub mtime: Option<TimeSet>,
    /// New change time (the kernel sends it explicitly).
    pub ctime: Option<Ts>,
    /// File handle the request came through, if any.
    pub fh: Option<u64>,
}

/// One directory entry for readdir.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// Position cookie of the *next* entry (pass it back to continue).
    pub cookie: u64,
    /// Inode.
    pub ino: u64,
    /// Type bits (`S_IFMT`).
    pub kind: u32,
    /// Name.
    pub name: Vec<u8>,
}

pub(crate) fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(Error::Invalid("bad file name"));
    }
    Ok(())
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// The directory inode of `ino` or the matching error.
fn want_dir(g: &Inode) -> Result<&crate::meta::dir::Dir> {
    if g.attr.nlink == 0 {
        // A removed directory accepts no new entries (ENOENT, as Linux).
        return Err(Error::NotFound);
    }
    g.dir().ok_or(Error::NotDir)
}

/// The namespace: the inode table (every inode, directory and extent map in memory).
/// Owns ranks 2 (`Table`) and 3 (`Inode`) of the lock order ([`crate::sync`]): the table
/// shared to find an inode (released as soon as its node is cloned) or exclusively for a
/// namespace change, then the inode's own lock; a second inode lock only under the table's.
pub(crate) struct Namespace {
    pub(super) table: RwLock<Table>,
}

impl Namespace {
    pub(super) fn new(table: Table) -> Namespace {
        Namespace {
            table: RwLock::new(Rank::Table, table),
        }
    }

    /// The node of `ino` (ENOENT when there is none), the table lock released again.
    pub(super) fn node(&self, ino: u64) -> Result<Node> {
        self.table.read().get(ino).cloned().ok_or(Error::NotFound)
    }
}

impl Filesystem {
    /// Looks `name` up in `parent`.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Stat> {
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        let t = self.namespace.table.read();
        let p = t.get(parent).ok_or(Error::NotFound)?;
        let child = {
            let g = p.read();
            if name == b"." {
                // The kernel's export code asks for "." of any inode (a file handle
                // names an inode by number: `fs/fuse/inode.c` `fuse_get_dentry`).
                return Ok(self.stat_of(&g));
            }
            let d = g.dir().ok_or(Error::NotDir)?;
            match name {
                b".." => d.parent,
                _ => d.get(name).ok_or(Error::NotFound)?.0,
            }
        };
        let c = t
            .get(child)
            .ok_or_else(|| Error::Corrupt(format!("entry names missing inode {child}")))?;
        let g = c.read();
        Ok(self.stat_of(&g))
    }

    /// Creates a node of any type (`mode` carries the type bits).
    pub fn mknod(&self, parent: u64, name: &[u8], m: u32, rdev: u64, ctx: Ctx) -> Result<Stat> {
        self.create_node(parent, name, m, rdev, b"", ctx)
    }

    /// Creates a directory.
    pub fn mkdir(&self, parent: u64, name: &[u8], m: u32, ctx: Ctx) -> Result<Stat> {
        self.create_node(parent, name, mode::S_IFDIR | (m & 0o7777), 0, b"", ctx)
    }

    /// Creates a symlink.
    pub fn symlink(&self, parent: u64, name: &[u8], target: &[u8], ctx: Ctx) -> Result<Stat> {
        if target.is_empty() {
            return Err(Error::NotFound);
        }
        if target.len() >= 4096 {
            return Err(Error::NameTooLong);
        }
        self.create_node(parent, name, mode::S_IFLNK | 0o777, 0, target, ctx)
    }

    /// Creates and opens a regular file.
    pub fn create(
        &self,
        parent: u64,
        name: &[u8],
        m: u32,
        open_flags: i32,
        ctx: Ctx,
    ) -> Result<(Stat, u64)> {
        let st = self.create_node(parent, name, mode::S_IFREG | (m & 0o7777), 0, b"", ctx)?;
        // The file is new: no flag can forbid this open.
        let fh = self.open(st.ino, open_flags & !libc::O_TRUNC, ctx)?;
        Ok((st, fh))
    }

    fn create_node(
        &self,
        parent: u64,
        name: &[u8],
        m: u32,
        rdev: u64,
        target: &[u8],
        ctx: Ctx,
    ) -> Result<Stat> {
        self.check_writable()?;
        check_name(name)?;
        if is_dot(name) {
            return Err(Error::Exists);
        }
        self.meta_room()?;
        let kind = m & mode::S_IFMT;
        let kind = if kind == 0 { mode::S_IFREG } else { kind };
        let rdev = if kind == mode::S_IFCHR || kind == mode::S_IFBLK {
            // What the kernel hands FUSE is 32 bits; the replay refuses wider ones.
            u32::try_from(rdev).map_err(|_| Error::Invalid("device number wider than 32 bits"))?
                as u64
        } else {
            0
        };
        self.transact(|| {
            let mut t = self.namespace.table.write();
            let p = t.get(parent).cloned().ok_or(Error::NotFound)?;
            let (gid, mut perm, dir_default) = {
                let g = p.read();
                let d = want_dir(&g)?;
                if g.attr.flags & flags::IMMUTABLE != 0 {
                    return Err(Error::Perm("immutable directory").into());
                }
                if d.get(name).is_some() {
                    return Err(Error::Exists.into());
                }
                if kind == mode::S_IFDIR && g.attr.nlink >= MAX_LINKS {
                    return Err(Error::TooManyLinks.into());
                }
                let dir_default = if self.acl_enabled() {
                    g.xattr(acl::DEFAULT).map(<[u8]>::to_vec)
                } else {
                    None
                };
                // BSD group semantics under a setgid directory, as inode_init_owner does.
                if g.attr.mode & libc::S_ISGID != 0 {
                    let mut perm = m & 0o7777;
                    if kind == mode::S_IFDIR {
                        perm |= libc::S_ISGID;
                    }
                    (g.attr.gid, perm, dir_default)
                } else {
                    (ctx.gid, m & 0o7777, dir_default)
                }
            };
            if kind != mode::S_IFDIR && perm & libc::S_ISGID != 0 && gid != ctx.gid && ctx.uid != 0
            {
                perm &= !libc::S_ISGID;
            }
            // With ACLs on, the umask or the directory's default ACL applies here
            // (posix_acl_create); otherwise the kernel applied the umask already.
            let inherited = if self.acl_enabled() {
                acl::inherit(dir_default.as_deref(), kind | perm, ctx.umask)?
            } else {
                acl::Inherited::plain(kind | perm)
            };
            let ino = t.next_ino;
            let time = self.now();
            let mut ops = vec![Op::Create {
                parent,
                name: name.to_vec(),
                ino,
                mode: inherited.mode,
                uid: ctx.uid,
                gid,
                rdev,
                time,
                target: target.to_vec(),
            }];
            for (name, value) in [
                (acl::ACCESS, inherited.access),
                (acl::DEFAULT, inherited.default),
            ] {
                if let Some(value) = value {
                    ops.push(Op::SetXattr {
                        ino,
                        name: name.to_vec(),
                        value,
                        time,
                    });
                }
            }
            let op = if ops.len() == 1 {
                ops.remove(0)
            } else {
                Op::Group(ops)
            };
            self.log_ns(&mut t, &op)?;
            let n = t.get(ino).cloned().ok_or(Error::NotFound)?;
            let g = n.read();
            Ok(self.stat_of(&g))
        })
    }

    /// Reads a symlink.
    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let n = self.namespace.node(ino)?;
        let g = n.read();
        match &g.body {
            crate::meta::Body::Symlink(t) => Ok(t.to_vec()),
            _ => Err(Error::Invalid("not a symlink")),
        }
    }

    /// Adds a hard link `newparent/newname` to `ino`.
    pub fn link(&self, ino: u64, newparent: u64, newname: &[u8]) -> Result<Stat> {
        self.check_writable()?;
        check_name(newname)?;
        if is_dot(newname) {
            return Err(Error::Exists);
        }
        self.meta_room()?;
        self.transact(|| {
            let mut t = self.namespace.table.write();
            let n = t.get(ino).cloned().ok_or(Error::NotFound)?;
            let p = t.get(newparent).cloned().ok_or(Error::NotFound)?;
            {
                let g = n.read();
                if g.attr.is_dir() {
                    return Err(Error::Perm("hard link to a directory").into());
                }
                if g.attr.flags & (flags::IMMUTABLE | flags::APPEND) != 0 {
                    return Err(Error::Perm("immutable or append-only file").into());
                }
                if g.attr.nlink == 0 {
                    return Err(Error::NotFound.into());
                }
                if g.attr.nlink >= MAX_LINKS {
                    return Err(Error::TooManyLinks.into());
                }
            }
            {
                let pg = p.read();
                let d = want_dir(&pg)?;
                if pg.attr.flags & flags::IMMUTABLE != 0 {
                    return Err(Error::Perm("immutable directory").into());
                }
                if d.get(newname).is_some() {
                    return Err(Error::Exists.into());
                }
            }
            let op = Op::Link {
                ino,
                parent: newparent,
                name: newname.to_vec(),
                time: self.now(),
            };
            self.log_ns(&mut t, &op)?;
            let g = n.read();
            Ok(self.stat_of(&g))
        })
    }

    /// Removes a non-directory name. Removing the last link of a file a breakable seal or
    /// mapping pin covers recalls it (the name goes at once; [`Attempt`] for the gate).
    pub fn unlink(&self, parent: u64, name: &[u8]) -> Attempt<()> {
        self.remove(parent, name, false, |inode| {
            self.seal_gate(inode, ChangeKind::RemoveLast, 0, u64::MAX)
        })
    }

    /// Removes an empty directory (never waits: no seal covers a directory).
    pub fn rmdir(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove(parent, name, true, |_| Ok(()))
    }

    /// Removes `name` (a directory when `dir`); `last_link` asks the seals before the last
    /// link of a regular file goes.
    fn remove<E: From<Error>>(
        &self,
        parent: u64,
        name: &[u8],
        dir: bool,
        last_link: impl Fn(&Inode) -> Result<(), E>,
    ) -> Result<(), E> {
        self.check_writable()?;
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong.into());
        }
        if dir && name == b"." {
            return Err(Error::Invalid("rmdir of .").into());
        }
        if dir && name == b".." {
            return Err(Error::NotEmpty.into());
        }
        let evict = self.transact_as::<_, E>(|| {
            let mut t = self.namespace.table.write();
            let p = t.get(parent).cloned().ok_or(Error::NotFound)?;
            let child = {
                let pg = p.read();
                let d = pg.dir().ok_or(Error::NotDir)?;
                if pg.attr.flags & (flags::IMMUTABLE | flags::APPEND) != 0 {
                    return Err(Error::Perm("immutable or append-only directory").into());
                }
                d.get(name).ok_or(Error::NotFound)?.0
            };
            let c = t.get(child).cloned().ok_or(Error::NotFound)?;
            {
                let cg = c.read();
                if dir && !cg.attr.is_dir() {
                    return Err(Error::NotDir.into());
                }
                if !dir && cg.attr.is_dir() {
                    return Err(Error::IsDir.into());
                }
                if cg.dir().is_some_and(|d| !d.is_empty()) {
                    return Err(Error::NotEmpty.into());
                }
                if cg.attr.flags & (flags::IMMUTABLE | flags::APPEND) != 0 {
                    return Err(Error::Perm("immutable or append-only file").into());
                }
                if cg.attr.is_file() && cg.attr.nlink == 1 {
                    last_link(&cg).map_err(Retry::Err)?;
                }
            }
            let op = Op::Unlink {
                parent,
                name: name.to_vec(),
                time: self.now(),
            };
            self.log_ns(&mut t, &op).map_err(Retry::widen)?;
            let cg = c.read();
            Ok((cg.attr.nlink == 0 && cg.open == 0).then_some(child))
        })?;
        if let Some(ino) = evict {
            self.evict(ino)?;
        }
        Ok(())
    }

    /// Renames on behalf of `ctx`, with `RENAME_NOREPLACE` / `RENAME_EXCHANGE` /
    /// `RENAME_WHITEOUT` in `rflags`. `RENAME_WHITEOUT` leaves a whiteout (a character
    /// device 0:0, mode 0, owned by `ctx`) at the old name, as overlayfs expects; the
    /// kernel has checked `CAP_MKNOD`. The rename and the whiteout's creation are one
    /// `Group` record: a crash keeps both or neither.
    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        rflags: u32,
        ctx: Ctx,
    ) -> Attempt<()> {
        self.check_writable()?;
        check_name(newname)?;
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong.into());
        }
        if rflags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
            || (rflags & RENAME_EXCHANGE != 0 && rflags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
        {
            return Err(Error::Invalid("rename flags").into());
        }
        if is_dot(name) || is_dot(newname) {
            return Err(Error::Busy.into());
        }
        let whiteout = rflags & RENAME_WHITEOUT != 0;
        let rflags = rflags & !RENAME_WHITEOUT;
        if whiteout {
            self.meta_room()?;
        }
        let evict = self.transact_may_wait(|| {
            let mut t = self.namespace.table.write();
            let evict = self.rename_checks(&t, parent, name, newparent, newname, rflags)?;
            let Some(evict) = evict else { return Ok(None) };
            let time = self.now();
            let op = Op::Rename {
                parent,
                name: name.to_vec(),
                new_parent: newparent,
                new_name: newname.to_vec(),
                flags: rflags,
                time,
            };
            if whiteout {
                let wo = Op::Create {
                    parent,
                    name: name.to_vec(),
                    ino: t.next_ino,
                    mode: mode::S_IFCHR,
                    uid: ctx.uid,
                    gid: ctx.gid,
                    rdev: 0,
                    time,
                    target: Vec::new(),
                };
                let group = Op::Group(vec![op, wo]);
                self.log_ns(&mut t, &group)?;
            } else {
                self.log_ns(&mut t, &op)?;
            }
            match evict {
                Some(ino) => {
                    let n = t.get(ino).cloned();
                    Ok(n.and_then(|n| {
                        let g = n.read();
                        (g.attr.nlink == 0 && g.open == 0).then_some(ino)
                    }))
                }
                None => Ok(None),
            }
        })?;
        if let Some(ino) = evict {
            self.evict(ino)?;
        }
        Ok(())
    }

    /// Validates a rename. `Ok(None)`: nothing to do (same inode). `Ok(Some(x))`: proceed;
    /// `x` is the replaced inode, if any.
    fn rename_checks(
        &self,
        t: &Table,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        rflags: u32,
    ) -> Attempt<Option<Option<u64>>> {
        let p = t.get(parent).cloned().ok_or(Error::NotFound)?;
        let np = t.get(newparent).cloned().ok_or(Error::NotFound)?;
        let src = {
            let g = p.read();
            let d = g.dir().ok_or(Error::NotDir)?;
            if g.attr.flags & (flags::IMMUTABLE | flags::APPEND) != 0 {
                return Err(Error::Perm("immutable or append-only directory").into());
            }
            d.get(name).ok_or(Error::NotFound)?.0
        };
        let dst = {
            let g = np.read();
            let d = want_dir(&g)?;
            if g.attr.flags & flags::IMMUTABLE != 0 {
                return Err(Error::Perm("immutable directory").into());
            }
            d.get(newname).map(|e| e.0)
        };
        if dst == Some(src) {
            return Ok(None);
        }
        let sg = t.get(src).cloned().ok_or(Error::NotFound)?;
        let (src_dir, src_flags) = {
            let g = sg.read();
            (g.attr.is_dir(), g.attr.flags)
        };
        if src_flags & (flags::IMMUTABLE | flags::APPEND) != 0 {
            return Err(Error::Perm("immutable or append-only file").into());
        }
        if rflags & RENAME_EXCHANGE != 0 && dst.is_none() {
            return Err(Error::NotFound.into());
        }
        if let Some(dst) = dst {
            if rflags & RENAME_NOREPLACE != 0 {
                return Err(Error::Exists.into());
            }
            let dg = t.get(dst).cloned().ok_or(Error::NotFound)?;
            let g = dg.read();
            if g.attr.flags & (flags::IMMUTABLE | flags::APPEND) != 0 {
                return Err(Error::Perm("immutable or append-only file").into());
            }
            if rflags & RENAME_EXCHANGE == 0 && g.attr.is_file() && g.attr.nlink == 1 {
                self.seal_gate(&g, ChangeKind::RemoveLast, 0, u64::MAX)?;
            }
            if rflags & RENAME_EXCHANGE == 0 {
                match (src_dir, g.attr.is_dir()) {
                    (true, false) => return Err(Error::NotDir.into()),
                    (false, true) => return Err(Error::IsDir.into()),
                    (true, true) if g.dir().is_some_and(|d| !d.is_empty()) => {
                        return Err(Error::NotEmpty.into())
                    }
                    _ => {}
                }
            } else if g.attr.is_dir() && parent != newparent {
                // The exchanged directory moves to `parent`: it must not land inside itself.
                if is_ancestor(t, dst, parent) {
                    return Err(Error::Invalid("directory moved into itself").into());
                }
            }
        }
        if src_dir && parent != newparent {
            if is_ancestor(t, src, newparent) {
                return Err(Error::Invalid("directory moved into itself").into());
            }
            if dst.is_none() && np.read().attr.nlink >= MAX_LINKS {
                return Err(Error::TooManyLinks.into());
            }
        }
        let replaced = if rflags & RENAME_EXCHANGE != 0 {
            None
        } else {
            dst
        };
        Ok(Some(replaced))
    }

    /// Lists `ino` from position `offset`, calling `add` per entry until it returns true
    /// (buffer full).
    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
        mut add: impl FnMut(DirEntry) -> bool,
    ) -> Result<()> {
        let n = self.namespace.node(ino)?;
        let g = n.read();
        let d = g.dir().ok_or(Error::NotDir)?;
        if offset < 1
            && add(DirEntry {
                cookie: 1,
                ino,
                kind: mode::S_IFDIR,
                name: b".".to_vec(),
            })
        {
            return Ok(());
        }
        if offset < 2
            && add(DirEntry {
                cookie: 2,
                ino: d.parent,
                kind: mode::S_IFDIR,
                name: b"..".to_vec(),
            })
        {
            return Ok(());
        }
        for (cookie, name, cino, kind) in d.entries_after(offset.max(2)) {
            if add(DirEntry {
                cookie,
                ino: cino,
                kind: (kind as u32) << 12,
                name: name.to_vec(),
            }) {
                break;
            }
        }
        let due = self.atime_due(&g.attr, true);
        drop(g);
        if due {
            // A listing is an access (`iterate_dir` calls `file_accessed`).
            self.touch_atime(&n, true);
        }
        Ok(())
    }

    /// Changes attributes. A size change may wait for a seal recall ([`Attempt`]).
    pub fn setattr(&self, ino: u64, req: SetAttr, ctx: Ctx) -> Attempt<Stat> {
        self.check_writable()?;
        self.setattr_allowed(ino, &req)?;
        if let Some(size) = req.size {
            self.truncate(ino, size, ctx)?;
        }
        Ok(self.set_other_attrs(ino, req)?)
    }

    /// What the flags and the file type allow a setattr `req` of `ino`.
    pub(super) fn setattr_allowed(&self, ino: u64, req: &SetAttr) -> Result<()> {
        {
            let n = self.namespace.node(ino)?;
            let g = n.read();
            let f = g.attr.flags;
            if f & flags::IMMUTABLE != 0 {
                return Err(Error::Perm("immutable file"));
            }
            let changes_ids = req.mode.is_some() || req.uid.is_some() || req.gid.is_some();
            let sets_times = matches!(req.atime, Some(TimeSet::At(_)))
                || matches!(req.mtime, Some(TimeSet::At(_)));
            if f & flags::APPEND != 0 && (changes_ids || sets_times || req.size.is_some()) {
                return Err(Error::Perm("append-only file"));
            }
            if req.size.is_some() {
                if g.attr.is_dir() {
                    return Err(Error::IsDir);
                }
                if !g.attr.is_file() {
                    return Err(Error::Invalid("truncate of a special file"));
                }
            }
        }
        Ok(())
    }

    /// The part of a setattr `req` other than the size (which `truncate` did), then the
    /// attributes of `ino`.
    pub(super) fn set_other_attrs(&self, ino: u64, req: SetAttr) -> Result<Stat> {
        let has_other = req.mode.is_some()
            || req.uid.is_some()
            || req.gid.is_some()
            || req.atime.is_some()
            || req.mtime.is_some()
            || (req.ctime.is_some() && req.size.is_none());
        if has_other {
            self.transact(|| {
                let n = self.namespace.node(ino)?;
                let mut g = n.write();
                let now = self.now();
                let mut v = valid::CTIME;
                let pick = |t: Option<TimeSet>, bit: u32, v: &mut u32| match t {
                    Some(TimeSet::Now) => {
                        *v |= bit;
                        now
                    }
                    Some(TimeSet::At(ts)) => {
                        *v |= bit;
                        ts
                    }
                    None => Ts::default(),
                };
                let atime = pick(req.atime, valid::ATIME, &mut v);
                let mtime = pick(req.mtime, valid::MTIME, &mut v);
                if req.mode.is_some() {
                    v |= valid::MODE;
                }
                if req.uid.is_some() {
                    v |= valid::UID;
                }
                if req.gid.is_some() {
                    v |= valid::GID;
                }
                // Pending in-memory times ride along so they are not lost.
                if g.dirty_times {
                    if v & valid::ATIME == 0 {
                        v |= valid::ATIME;
                    }
                    if v & valid::MTIME == 0 {
                        v |= valid::MTIME;
                    }
                }
                let op = Op::SetAttr {
                    ino,
                    valid: v,
                    mode: req.mode.unwrap_or(0),
                    uid: req.uid.unwrap_or(0),
                    gid: req.gid.unwrap_or(0),
                    atime: if req.atime.is_some() {
                        atime
                    } else {
                        g.attr.atime
                    },
                    mtime: if req.mtime.is_some() {
                        mtime
                    } else {
                        g.attr.mtime
                    },
                    ctime: req.ctime.unwrap_or(now),
                    flags: 0,
                };
                // chmod rewrites the access ACL's owner, group-class and other entries
                // in the same record (posix_acl_chmod), also under noacl: a stored
                // access ACL and the mode always agree (fsck checks it).
                let stored = g.xattr(acl::ACCESS);
                let op = match (req.mode, stored) {
                    (Some(m), Some(stored)) => {
                        let Some(mut a) = acl::Acl::decode(stored).ok().flatten() else {
                            return Err(
                                Error::Corrupt(format!("inode {ino}: stored access ACL")).into()
                            );
                        };
                        a.chmod(m);
                        Op::Group(vec![
                            op,
                            Op::SetXattr {
                                ino,
                                name: acl::ACCESS.to_vec(),
                                value: a.encode(),
                                time: req.ctime.unwrap_or(now),
                            },
                        ])
                    }
                    _ => op,
                };
                self.log_inode(&mut g, &op)
            })?;
        }
        self.getattr(ino)
    }

    /// Resolves a path from the root (tests and CLI helpers).
    pub fn resolve(&self, path: &[u8]) -> Result<u64> {
        let mut ino = ROOT_INO;
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            ino = self.lookup(ino, comp)?.ino;
        }
        Ok(ino)
    }
}

/// True when `anc` is `ino` or one of its ancestors.
fn is_ancestor(t: &Table, anc: u64, mut ino: u64) -> bool {
    for _ in 0..4096 {
        if ino == anc {
            return true;
        }
        if ino == ROOT_INO {
            return false;
        }
        let Some(n) = t.get(ino) else { return false };
        let parent = match n.read().dir() {
            Some(d) => d.parent,
            None => return false,
        };
        ino = parent;
    }
    false
}
