//! The inode table and the one function that applies a logged operation to it.
//!
//! `apply` is used both live (right after the record is durable in the log) and by replay
//! at mount, so the state after replay is by construction the state the live filesystem
//! had. It validates everything it is given (a checksummed record may still carry
//! nonsense), returns an error instead of panicking, and leaves the table unchanged on
//! error where it can detect the problem up front.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::sync::InodeLock;

use super::ino_map::InoMap;
use super::inode::{mode, Attr, Inode};
use crate::format::record::{valid, Op, Ts};

/// A shared, individually locked inode.
pub type Node = Arc<InodeLock<Inode>>;

/// The root directory's inode number.
pub const ROOT_INO: u64 = 1;
/// `RENAME_NOREPLACE`.
pub const RENAME_NOREPLACE: u32 = 1;
/// `RENAME_EXCHANGE`.
pub const RENAME_EXCHANGE: u32 = 2;
/// `RENAME_WHITEOUT`: never in a record (the whiteout is a `Create` of its own).
pub const RENAME_WHITEOUT: u32 = 4;

/// A logged operation that cannot apply to the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ApplyError> {
    Err(ApplyError(msg.into()))
}

/// Where blocks go when an operation maps or unmaps them.
pub trait Blocks {
    /// Blocks `[start, start+len)` became owned by a file.
    fn used(&mut self, start: u64, len: u64) -> Result<(), ApplyError>;
    /// Blocks `[start, start+len)` stopped being owned by `ino`.
    fn freed(&mut self, ino: u64, start: u64, len: u64) -> Result<(), ApplyError>;
}

/// All inodes.
#[derive(Debug)]
pub struct Table {
    /// Inodes by number.
    pub inodes: InoMap<Node>,
    /// Next inode number to hand out (numbers are never reused).
    pub next_ino: u64,
    /// Inodes with no links left, kept until their last open handle goes.
    pub orphans: BTreeSet<u64>,
    /// Block size in bytes.
    pub block_size: u64,
}

impl Table {
    /// A table holding only the root directory.
    pub fn with_root(block_size: u64, time: Ts, uid: u32, gid: u32) -> Table {
        let attr = Attr {
            mode: mode::S_IFDIR | 0o755,
            uid,
            gid,
            nlink: 2,
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            ..Default::default()
        };
        let mut inodes = InoMap::default();
        inodes.insert(
            ROOT_INO,
            Arc::new(InodeLock::new(Inode::new(ROOT_INO, attr, ROOT_INO, b""))),
        );
        Table {
            inodes,
            next_ino: ROOT_INO + 1,
            orphans: BTreeSet::new(),
            block_size,
        }
    }

    /// An empty table (checkpoint decoding fills it).
    pub fn empty(block_size: u64) -> Table {
        Table {
            inodes: InoMap::default(),
            next_ino: ROOT_INO + 1,
            orphans: BTreeSet::new(),
            block_size,
        }
    }

    /// The inode `ino`.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.inodes.get(&ino)
    }

    fn node(&self, ino: u64, what: &str) -> Result<Node, ApplyError> {
        match self.inodes.get(&ino) {
            Some(n) => Ok(n.clone()),
            None => err(format!("{what}: inode {ino} does not exist")),
        }
    }

    fn touch_dir(&self, ino: u64, time: Ts) -> Result<(), ApplyError> {
        let n = self.node(ino, "directory")?;
        let mut d = n.write();
        d.attr.mtime = time;
        d.attr.ctime = time;
        Ok(())
    }

    /// Applies one operation, after [`validate`](super::validate::validate) accepts it (an
    /// operation it refuses changes nothing).
    pub fn apply(&mut self, op: &Op, blocks: &mut dyn Blocks) -> Result<(), ApplyError> {
        super::validate::validate(op, self)?;
        match op {
            Op::Create {
                parent,
                name,
                ino,
                mode: m,
                uid,
                gid,
                rdev,
                time,
                target,
            } => self.create(*parent, name, *ino, *m, *uid, *gid, *rdev, *time, target),
            Op::Link {
                ino,
                parent,
                name,
                time,
            } => self.link(*ino, *parent, name, *time),
            Op::Unlink { parent, name, time } => self.unlink(*parent, name, *time),
            Op::Rename {
                parent,
                name,
                new_parent,
                new_name,
                flags,
                time,
            } => self.rename(*parent, name, *new_parent, new_name, *flags, *time),
            Op::Evict { ino } => self.evict(*ino, blocks),
            Op::Group(ops) => {
                for op in ops {
                    self.apply(op, blocks)?;
                }
                Ok(())
            }
            // Every other operation concerns one inode.
            _ => {
                let Some(ino) = op.inode() else {
                    return err(format!("not an inode operation: {op:?}"));
                };
                let n = self.node(ino, "inode operation")?;
                let mut g = n.write();
                apply_inode(&mut g, op, self.block_size, blocks)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        parent: u64,
        name: &[u8],
        ino: u64,
        m: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
        time: Ts,
        target: &[u8],
    ) -> Result<(), ApplyError> {
        check_name(name)?;
        if self.inodes.contains_key(&ino) || ino <= ROOT_INO {
            return err(format!("create: inode {ino} already exists"));
        }
        let kind = m & mode::S_IFMT;
        if !mode::is_file_type(kind) {
            return err(format!("create: bad mode {m:o}"));
        }
        let Ok(rdev) = u32::try_from(rdev) else {
            return err(format!(
                "create: device number {rdev:#x} is wider than 32 bits"
            ));
        };
        let p = self.node(parent, "create parent")?;
        let attr = Attr {
            mode: m,
            uid,
            gid,
            nlink: if kind == mode::S_IFDIR { 2 } else { 1 },
            rdev,
            size: if kind == mode::S_IFLNK {
                target.len() as u64
            } else {
                0
            },
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            flags: 0,
        };
        let inode = Inode::new(ino, attr, parent, target);
        {
            let mut pg = p.write();
            let is_dir = kind == mode::S_IFDIR;
            let kind8 = inode.dirent_kind();
            let Some(d) = pg.dir_mut() else {
                return err(format!("create: parent {parent} is not a directory"));
            };
            if !d.insert(name, ino, kind8) {
                return err(format!(
                    "create: {} exists in {parent}",
                    String::from_utf8_lossy(name)
                ));
            }
            if is_dir {
                pg.attr.nlink = pg.attr.nlink.saturating_add(1);
            }
            pg.attr.mtime = time;
            pg.attr.ctime = time;
        }
        self.inodes.insert(ino, Arc::new(InodeLock::new(inode)));
        self.next_ino = self.next_ino.max(ino + 1);
        Ok(())
    }

    fn link(&mut self, ino: u64, parent: u64, name: &[u8], time: Ts) -> Result<(), ApplyError> {
        check_name(name)?;
        let n = self.node(ino, "link")?;
        let p = self.node(parent, "link parent")?;
        let kind8 = {
            let g = n.read();
            if g.attr.is_dir() {
                return err(format!("link: inode {ino} is a directory"));
            }
            g.dirent_kind()
        };
        {
            let mut pg = p.write();
            let Some(d) = pg.dir_mut() else {
                return err("link: parent is not a directory");
            };
            if !d.insert(name, ino, kind8) {
                return err("link: name exists");
            }
            pg.attr.mtime = time;
            pg.attr.ctime = time;
        }
        let mut g = n.write();
        g.attr.nlink = g.attr.nlink.saturating_add(1);
        g.attr.ctime = time;
        self.orphans.remove(&ino);
        Ok(())
    }

    /// Drops one name of `child` (already removed from its directory).
    fn drop_link(&mut self, child: u64, parent: u64, time: Ts) -> Result<(), ApplyError> {
        let c = self.node(child, "unlink target")?;
        let mut cg = c.write();
        if cg.attr.is_dir() {
            if cg.dir().map(|d| !d.is_empty()).unwrap_or(false) {
                return err(format!("unlink: directory {child} not empty"));
            }
            cg.attr.nlink = 0;
            drop(cg);
            let p = self.node(parent, "unlink parent")?;
            let mut pg = p.write();
            pg.attr.nlink = pg.attr.nlink.saturating_sub(1).max(2);
        } else {
            cg.attr.nlink = cg.attr.nlink.saturating_sub(1);
            cg.attr.ctime = time;
            if cg.attr.nlink > 0 {
                return Ok(());
            }
        }
        self.orphans.insert(child);
        Ok(())
    }

    fn unlink(&mut self, parent: u64, name: &[u8], time: Ts) -> Result<(), ApplyError> {
        let p = self.node(parent, "unlink parent")?;
        let (child, _) = {
            let pg = p.read();
            let Some(d) = pg.dir() else {
                return err("unlink: parent is not a directory");
            };
            match d.get(name) {
                Some(e) => e,
                None => {
                    return err(format!(
                        "unlink: {} not in {parent}",
                        String::from_utf8_lossy(name)
                    ))
                }
            }
        };
        {
            let c = self.node(child, "unlink target")?;
            let cg = c.read();
            if cg.dir().map(|d| !d.is_empty()).unwrap_or(false) {
                return err(format!("unlink: directory {child} not empty"));
            }
        }
        {
            let mut pg = p.write();
            if let Some(d) = pg.dir_mut() {
                d.remove(name);
            }
            pg.attr.mtime = time;
            pg.attr.ctime = time;
        }
        self.drop_link(child, parent, time)
    }

    fn rename(
        &mut self,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        flags: u32,
        time: Ts,
    ) -> Result<(), ApplyError> {
        check_name(new_name)?;
        let p = self.node(parent, "rename source dir")?;
        let np = self.node(new_parent, "rename target dir")?;
        let src = {
            let g = p.read();
            match g.dir().and_then(|d| d.get(name)) {
                Some(e) => e,
                None => return err("rename: source missing"),
            }
        };
        let dst = {
            let g = np.read();
            match g.dir() {
                Some(d) => d.get(new_name),
                None => return err("rename: target parent is not a directory"),
            }
        };
        let src_is_dir = src.1 as u32 == mode::S_IFDIR >> 12;
        if flags & RENAME_EXCHANGE != 0 {
            let Some(dst) = dst else {
                return err("rename exchange: target missing");
            };
            let dst_is_dir = dst.1 as u32 == mode::S_IFDIR >> 12;
            p.write().dir_mut().map(|d| d.replace(name, dst.0, dst.1));
            np.write()
                .dir_mut()
                .map(|d| d.replace(new_name, src.0, src.1));
            if parent != new_parent {
                if src_is_dir != dst_is_dir {
                    let (gain, lose) = if src_is_dir { (&np, &p) } else { (&p, &np) };
                    gain.write().attr.nlink += 1;
                    let mut l = lose.write();
                    l.attr.nlink = l.attr.nlink.saturating_sub(1);
                }
                if src_is_dir {
                    if let Some(d) = self.node(src.0, "rename")?.write().dir_mut() {
                        d.parent = new_parent;
                    }
                }
                if dst_is_dir {
                    if let Some(d) = self.node(dst.0, "rename")?.write().dir_mut() {
                        d.parent = parent;
                    }
                }
            }
            self.node(src.0, "rename")?.write().attr.ctime = time;
            self.node(dst.0, "rename")?.write().attr.ctime = time;
            self.touch_dir(parent, time)?;
            self.touch_dir(new_parent, time)?;
            return Ok(());
        }
        if let Some(dst) = dst {
            if flags & RENAME_NOREPLACE != 0 {
                return err("rename noreplace: target exists");
            }
            if dst.0 == src.0 {
                return err("rename: source and target are the same inode");
            }
            let dst_is_dir = dst.1 as u32 == mode::S_IFDIR >> 12;
            if dst_is_dir != src_is_dir {
                return err("rename: directory over non-directory or the reverse");
            }
            if dst_is_dir
                && self
                    .node(dst.0, "rename")?
                    .read()
                    .dir()
                    .map(|d| !d.is_empty())
                    .unwrap_or(true)
            {
                return err("rename: target directory not empty");
            }
            np.write().dir_mut().map(|d| d.remove(new_name));
            self.drop_link(dst.0, new_parent, time)?;
        }
        p.write().dir_mut().map(|d| d.remove(name));
        {
            let mut g = np.write();
            let Some(d) = g.dir_mut() else {
                return err("rename: target parent is not a directory");
            };
            d.insert(new_name, src.0, src.1);
        }
        if src_is_dir && parent != new_parent {
            let mut pg = p.write();
            pg.attr.nlink = pg.attr.nlink.saturating_sub(1);
            drop(pg);
            np.write().attr.nlink += 1;
            if let Some(d) = self.node(src.0, "rename")?.write().dir_mut() {
                d.parent = new_parent;
            }
        }
        self.node(src.0, "rename")?.write().attr.ctime = time;
        self.touch_dir(parent, time)?;
        if new_parent != parent {
            self.touch_dir(new_parent, time)?;
        }
        Ok(())
    }

    fn evict(&mut self, ino: u64, blocks: &mut dyn Blocks) -> Result<(), ApplyError> {
        let n = self.node(ino, "evict")?;
        {
            let mut g = n.write();
            if g.attr.nlink != 0 {
                return err(format!(
                    "evict: inode {ino} still has {} links",
                    g.attr.nlink
                ));
            }
            if let Some(m) = g.extents_mut() {
                let end = m.end_block();
                for (d, l) in m.remove(0, end) {
                    blocks.freed(ino, d, l)?;
                }
            }
        }
        self.inodes.remove(&ino);
        self.orphans.remove(&ino);
        Ok(())
    }
}

fn check_name(name: &[u8]) -> Result<(), ApplyError> {
    if name.is_empty()
        || name.len() > 255
        || name.contains(&b'/')
        || name.contains(&0)
        || name == b"."
        || name == b".."
    {
        return err(format!("bad name {:?}", String::from_utf8_lossy(name)));
    }
    Ok(())
}

/// Applies an operation that concerns one inode only, after
/// [`validate_inode`](super::validate::validate_inode) accepts it.
pub fn apply_inode(
    g: &mut Inode,
    op: &Op,
    bs: u64,
    blocks: &mut dyn Blocks,
) -> Result<(), ApplyError> {
    super::validate::validate_inode(g, op, bs)?;
    let ino = g.ino;
    match op {
        Op::SetAttr {
            valid: v,
            mode: m,
            uid,
            gid,
            atime,
            mtime,
            ctime,
            flags,
            ..
        } => {
            if v & valid::MODE != 0 {
                g.attr.mode = (g.attr.mode & mode::S_IFMT) | (m & 0o7777);
            }
            if v & valid::UID != 0 {
                g.attr.uid = *uid;
            }
            if v & valid::GID != 0 {
                g.attr.gid = *gid;
            }
            if v & valid::ATIME != 0 {
                g.attr.atime = *atime;
            }
            if v & valid::MTIME != 0 {
                g.attr.mtime = *mtime;
            }
            if v & valid::CTIME != 0 {
                g.attr.ctime = *ctime;
            }
            if v & valid::FLAGS != 0 {
                g.attr.flags = *flags;
            }
            g.dirty_times = false;
        }
        Op::Truncate { size, time, .. } => {
            let Some(m) = g.extents_mut() else {
                return err(format!("truncate: inode {ino} is not a file"));
            };
            let keep = size.div_ceil(bs);
            let end = m.end_block();
            for (d, l) in m.remove(keep, end.max(keep)) {
                blocks.freed(ino, d, l)?;
            }
            g.attr.size = *size;
            g.attr.mtime = *time;
            g.attr.ctime = *time;
        }
        Op::Map {
            size,
            time,
            touch,
            extents,
            ..
        } => {
            let Some(m) = g.extents_mut() else {
                return err(format!("map: inode {ino} is not a file"));
            };
            for e in extents {
                let ok = e
                    .fblock
                    .checked_add(e.len)
                    .is_some_and(|end| m.is_hole(e.fblock, end));
                if !ok || e.len == 0 {
                    return err(format!(
                        "map: inode {ino} blocks {}+{} not a hole",
                        e.fblock, e.len
                    ));
                }
            }
            for e in extents {
                blocks.used(e.dblock, e.len)?;
                if !m.insert(e.fblock, e.dblock, e.len) {
                    return err(format!(
                        "map: inode {ino} overlapping extents in one record"
                    ));
                }
            }
            if *size > g.attr.size {
                g.attr.size = *size;
            }
            if *touch {
                g.attr.mtime = *time;
                g.attr.ctime = *time;
            }
        }
        Op::Punch {
            fblock,
            count,
            time,
            ..
        } => {
            let Some(m) = g.extents_mut() else {
                return err(format!("punch: inode {ino} is not a file"));
            };
            let Some(end) = fblock.checked_add(*count) else {
                return err("punch: range overflows");
            };
            for (d, l) in m.remove(*fblock, end) {
                blocks.freed(ino, d, l)?;
            }
            g.attr.mtime = *time;
            g.attr.ctime = *time;
        }
        Op::SetXattr {
            name, value, time, ..
        } => {
            g.set_xattr(name, value);
            g.attr.ctime = *time;
        }
        Op::RemoveXattr { name, time, .. } => {
            if !g.remove_xattr(name) {
                return err(format!(
                    "removexattr: inode {ino} has no {}",
                    String::from_utf8_lossy(name)
                ));
            }
            g.attr.ctime = *time;
        }
        Op::Remap {
            fblock,
            dblock,
            len,
            ..
        } => {
            let Some(m) = g.extents_mut() else {
                return err(format!("remap: inode {ino} is not a file"));
            };
            let Some(end) = fblock.checked_add(*len) else {
                return err("remap: range overflows");
            };
            if *len == 0 || !m.is_mapped(*fblock, end) {
                return err(format!(
                    "remap: inode {ino} blocks {fblock}+{len} not fully mapped"
                ));
            }
            blocks.used(*dblock, *len)?;
            let old = m.remove(*fblock, end);
            m.insert(*fblock, *dblock, *len);
            for (d, l) in old {
                blocks.freed(ino, d, l)?;
            }
        }
        Op::Group(ops) => {
            for op in ops {
                if op.inode() != Some(ino) {
                    return err(format!("group for inode {ino} holds {op:?}"));
                }
                apply_inode(g, op, bs, blocks)?;
            }
        }
        other => return err(format!("not an inode operation: {other:?}")),
    }
    Ok(())
}
