//! The one validator for logged operations: does `op` make sense against the state it
//! applies to?
//!
//! A record can carry a valid checksum and still mean something the filesystem never does
//! (a directory renamed into its own subtree, a size past the largest file, an extent far
//! beyond it, a link count past the limit). `Table::apply` and `apply_inode` call these
//! checks before they change anything, so replay at mount, fsck (which loads the same way)
//! and the live path all refuse the same operations; the live path also checks before it
//! logs (`Filesystem::commit_ns`, `commit_inode`), so an operation it refuses never
//! reaches the log.
//!
//! The checks here are the per-operation form of what fsck checks on a whole table
//! (`super::check::check_table`): an operation that passes them on a consistent table
//! leaves a consistent table.

use super::inode::{flags, mode, Inode};
use super::table::{ApplyError, Table, RENAME_EXCHANGE, RENAME_NOREPLACE, ROOT_INO};
use crate::filesystem::acl::{self, Acl};
use crate::filesystem::xattr::XATTR_SIZE_MAX;
use crate::filesystem::{MAX_FILE_SIZE, MAX_LINKS};
use crate::format::record::{valid, valid_xattr_name, Op, GROUP_MAX};

/// Every `SetAttr::valid` bit a record may set.
const VALID_ALL: u32 = valid::MODE
    | valid::UID
    | valid::GID
    | valid::ATIME
    | valid::MTIME
    | valid::CTIME
    | valid::FLAGS;
/// Every inode flag the filesystem ever stores.
pub const KNOWN_FLAGS: u32 = flags::IMMUTABLE | flags::APPEND | flags::SEALED_MAP;
/// Longest symlink target (exclusive), as `symlink(2)` here accepts.
pub const SYMLINK_MAX: usize = 4096;

fn bad<T>(msg: impl Into<String>) -> Result<T, ApplyError> {
    Err(ApplyError(msg.into()))
}

fn name_str(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}

/// A name a directory entry can get: not empty, at most 255 bytes, no `/` or NUL, not `.`
/// or `..`.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.contains(&b'/')
        && !name.contains(&0)
        && name != b"."
        && name != b".."
}

fn check_name(name: &[u8]) -> Result<(), ApplyError> {
    if !valid_name(name) {
        return bad(format!("bad name {}", name_str(name)));
    }
    Ok(())
}

/// File blocks past the largest file size: a run must end at or before this block.
pub fn max_file_blocks(bs: u64) -> u64 {
    MAX_FILE_SIZE / bs
}

/// Checks `op` against the table it is about to apply to. A `Group` is checked for its
/// shape and for its first operation only: the later ones depend on the earlier ones and
/// are checked one by one as the group applies.
pub fn validate(op: &Op, t: &Table) -> Result<(), ApplyError> {
    match op {
        Op::Create {
            parent,
            name,
            ino,
            mode: m,
            rdev,
            target,
            ..
        } => {
            check_name(name)?;
            if *ino <= ROOT_INO {
                return bad(format!("create: inode number {ino} is reserved"));
            }
            if t.inodes.contains_key(ino) {
                return bad(format!("create: inode {ino} already exists"));
            }
            if *ino < t.next_ino {
                return bad(format!(
                    "create: inode {ino} reuses a number below the next one ({})",
                    t.next_ino
                ));
            }
            let kind = m & mode::S_IFMT;
            if !mode::is_file_type(kind) || m & !(mode::S_IFMT | 0o7777) != 0 {
                return bad(format!("create: bad mode {m:o}"));
            }
            if u32::try_from(*rdev).is_err() {
                return bad(format!(
                    "create: device number {rdev:#x} is wider than 32 bits"
                ));
            }
            if kind == mode::S_IFLNK {
                if target.is_empty() || target.len() >= SYMLINK_MAX {
                    return bad(format!("create: symlink target of {} bytes", target.len()));
                }
            } else if !target.is_empty() {
                return bad(format!("create: a target for a non-symlink {ino}"));
            }
            let (existing, links) = live_dir(t, *parent, name, "create")?;
            if existing.is_some() {
                return bad(format!("create: {} exists in {parent}", name_str(name)));
            }
            if kind == mode::S_IFDIR && links >= MAX_LINKS {
                return bad(format!(
                    "create: directory {parent} already has {links} links"
                ));
            }
            Ok(())
        }
        Op::Link {
            ino, parent, name, ..
        } => {
            check_name(name)?;
            {
                let n = node(t, *ino, "link")?;
                let g = n.read();
                if g.attr.is_dir() {
                    return bad(format!("link: inode {ino} is a directory"));
                }
                if g.attr.nlink >= MAX_LINKS {
                    return bad(format!(
                        "link: inode {ino} already has {} links",
                        g.attr.nlink
                    ));
                }
            }
            if live_dir(t, *parent, name, "link")?.0.is_some() {
                return bad(format!("link: {} exists in {parent}", name_str(name)));
            }
            Ok(())
        }
        Op::Unlink { parent, name, .. } => {
            let (child, _) = {
                let n = node(t, *parent, "unlink")?;
                let g = n.read();
                let Some(d) = g.dir() else {
                    return bad(format!("unlink: {parent} is not a directory"));
                };
                match d.get(name) {
                    Some(e) => e,
                    None => return bad(format!("unlink: {} not in {parent}", name_str(name))),
                }
            };
            let n = node(t, child, "unlink target")?;
            if n.read().dir().is_some_and(|d| !d.is_empty()) {
                return bad(format!("unlink: directory {child} not empty"));
            }
            Ok(())
        }
        Op::Rename {
            parent,
            name,
            new_parent,
            new_name,
            flags: f,
            ..
        } => validate_rename(t, *parent, name, *new_parent, new_name, *f),
        Op::Evict { ino } => {
            if *ino == ROOT_INO {
                return bad("evict: the root directory");
            }
            let n = node(t, *ino, "evict")?;
            let g = n.read();
            if g.attr.nlink != 0 {
                return bad(format!(
                    "evict: inode {ino} still has {} links",
                    g.attr.nlink
                ));
            }
            if g.dir().is_some_and(|d| !d.is_empty()) {
                return bad(format!("evict: directory {ino} not empty"));
            }
            Ok(())
        }
        Op::Group(ops) => {
            validate_group_shape(ops)?;
            match ops.first() {
                Some(first) => validate(first, t),
                None => Ok(()),
            }
        }
        _ => {
            let Some(ino) = op.inode() else {
                return bad(format!("not an inode operation: {op:?}"));
            };
            let n = node(t, ino, "inode operation")?;
            let g = n.read();
            validate_inode(&g, op, t.block_size)
        }
    }
}

/// A group holds 1..=`GROUP_MAX` operations, none of them a group.
pub fn validate_group_shape(ops: &[Op]) -> Result<(), ApplyError> {
    if ops.is_empty() || ops.len() > GROUP_MAX {
        return bad(format!("group of {} operations", ops.len()));
    }
    if ops.iter().any(|o| matches!(o, Op::Group(_))) {
        return bad("group nested in a group");
    }
    Ok(())
}

fn node(t: &Table, ino: u64, what: &str) -> Result<super::Node, ApplyError> {
    match t.inodes.get(&ino) {
        Some(n) => Ok(n.clone()),
        None => bad(format!("{what}: inode {ino} does not exist")),
    }
}

/// A directory that still has its name (a removed directory takes no new entries): what
/// it has under `name`, and its link count.
fn live_dir(
    t: &Table,
    ino: u64,
    name: &[u8],
    what: &str,
) -> Result<(Option<(u64, u8)>, u32), ApplyError> {
    let n = node(t, ino, what)?;
    let g = n.read();
    let Some(d) = g.dir() else {
        return bad(format!("{what}: {ino} is not a directory"));
    };
    if g.attr.nlink == 0 {
        return bad(format!("{what}: directory {ino} was removed"));
    }
    Ok((d.get(name), g.attr.nlink))
}

/// Whether `ino` is `ancestor` or lies below it, following parent pointers up to the root.
/// A chain that does not reach the root within the table's size counts as "below" (only a
/// damaged table has one).
fn within(t: &Table, mut ino: u64, ancestor: u64) -> bool {
    for _ in 0..=t.inodes.len() {
        if ino == ancestor {
            return true;
        }
        if ino == ROOT_INO {
            return false;
        }
        let parent = t
            .inodes
            .get(&ino)
            .and_then(|n| n.read().dir().map(|d| d.parent));
        match parent {
            Some(p) => ino = p,
            None => return true,
        }
    }
    true
}

fn is_dir_kind(kind: u8) -> bool {
    kind as u32 == mode::S_IFDIR >> 12
}

fn validate_rename(
    t: &Table,
    parent: u64,
    name: &[u8],
    new_parent: u64,
    new_name: &[u8],
    f: u32,
) -> Result<(), ApplyError> {
    if f != 0 && f != RENAME_NOREPLACE && f != RENAME_EXCHANGE {
        return bad(format!("rename: flags {f:#x}"));
    }
    check_name(new_name)?;
    let src = {
        let n = node(t, parent, "rename source dir")?;
        let g = n.read();
        let Some(d) = g.dir() else {
            return bad(format!("rename: {parent} is not a directory"));
        };
        match d.get(name) {
            Some(e) => e,
            None => return bad(format!("rename: {} not in {parent}", name_str(name))),
        }
    };
    let (dst, np_links) = live_dir(t, new_parent, new_name, "rename target dir")?;
    let src_dir = is_dir_kind(src.1);
    let cross = parent != new_parent;
    // A directory moving to another parent must not land in its own subtree: the subtree
    // would be cut off from the root and still accept writes.
    let into_itself = |dir: u64, target_parent: u64| {
        if within(t, target_parent, dir) {
            return bad(format!(
                "rename would move directory {dir} into its own subtree ({target_parent})"
            ));
        }
        Ok(())
    };
    if f == RENAME_EXCHANGE {
        let Some(dst) = dst else {
            return bad(format!(
                "rename exchange: {} not in {new_parent}",
                name_str(new_name)
            ));
        };
        if dst.0 == src.0 {
            return bad("rename exchange: source and target are the same inode");
        }
        let dst_dir = is_dir_kind(dst.1);
        if cross {
            if src_dir {
                into_itself(src.0, new_parent)?;
            }
            if dst_dir {
                into_itself(dst.0, parent)?;
            }
        }
        return Ok(());
    }
    if let Some(dst) = dst {
        if f == RENAME_NOREPLACE {
            return bad(format!(
                "rename noreplace: {} exists in {new_parent}",
                name_str(new_name)
            ));
        }
        if dst.0 == src.0 {
            return bad("rename: source and target are the same inode");
        }
        let dst_dir = is_dir_kind(dst.1);
        if dst_dir != src_dir {
            return bad("rename: directory over non-directory or the reverse");
        }
        if dst_dir
            && node(t, dst.0, "rename target")?
                .read()
                .dir()
                .is_none_or(|d| !d.is_empty())
        {
            return bad(format!("rename: target directory {} not empty", dst.0));
        }
    }
    if src_dir && cross {
        into_itself(src.0, new_parent)?;
        let replaces_dir = dst.is_some();
        if !replaces_dir && np_links >= MAX_LINKS {
            return bad(format!("rename: directory {new_parent} has too many links"));
        }
    }
    Ok(())
}

/// Checks an operation on one inode against that inode (`bs`: block size).
pub fn validate_inode(g: &Inode, op: &Op, bs: u64) -> Result<(), ApplyError> {
    let ino = g.ino;
    let file = |what: &str| match g.extents() {
        Some(m) => Ok(m),
        None => bad(format!("{what}: inode {ino} is not a file")),
    };
    let max_blocks = max_file_blocks(bs);
    match op {
        Op::SetAttr {
            valid: v,
            flags: fl,
            ..
        } => {
            if v & !VALID_ALL != 0 {
                return bad(format!("setattr: inode {ino}: unknown fields {v:#x}"));
            }
            if v & valid::FLAGS != 0 && fl & !KNOWN_FLAGS != 0 {
                return bad(format!("setattr: inode {ino}: unknown flags {fl:#x}"));
            }
        }
        Op::Truncate { size, .. } => {
            file("truncate")?;
            if *size > MAX_FILE_SIZE {
                return bad(format!(
                    "truncate: inode {ino}: size {size} beyond the largest file size"
                ));
            }
        }
        Op::Map { size, extents, .. } => {
            let m = file("map")?;
            if *size > MAX_FILE_SIZE {
                return bad(format!(
                    "map: inode {ino}: size {size} beyond the largest file size"
                ));
            }
            let mut runs: Vec<(u64, u64)> = Vec::with_capacity(extents.len());
            for e in extents {
                let end = e.fblock.checked_add(e.len);
                if e.len == 0 || end.is_none_or(|end| end > max_blocks) {
                    return bad(format!(
                        "map: inode {ino}: blocks {}+{} beyond the largest file size",
                        e.fblock, e.len
                    ));
                }
                if e.dblock.checked_add(e.len).is_none() {
                    return bad(format!(
                        "map: inode {ino}: device blocks {}+{} overflow",
                        e.dblock, e.len
                    ));
                }
                let end = e.fblock + e.len;
                if !m.is_hole(e.fblock, end) {
                    return bad(format!(
                        "map: inode {ino} blocks {}+{} not a hole",
                        e.fblock, e.len
                    ));
                }
                runs.push((e.fblock, end));
            }
            runs.sort_unstable();
            if runs.windows(2).any(|w| w[0].1 > w[1].0) {
                return bad(format!(
                    "map: inode {ino}: overlapping extents in one record"
                ));
            }
        }
        Op::Punch { fblock, count, .. } => {
            file("punch")?;
            if fblock.checked_add(*count).is_none() {
                return bad(format!("punch: inode {ino}: range overflows"));
            }
        }
        Op::Remap {
            fblock,
            dblock,
            len,
            ..
        } => {
            let m = file("remap")?;
            let Some(end) = fblock.checked_add(*len) else {
                return bad(format!("remap: inode {ino}: range overflows"));
            };
            if *len == 0 || !m.is_mapped(*fblock, end) {
                return bad(format!(
                    "remap: inode {ino} blocks {fblock}+{len} not fully mapped"
                ));
            }
            if dblock.checked_add(*len).is_none() {
                return bad(format!("remap: inode {ino}: device blocks overflow"));
            }
        }
        Op::SetXattr { name, value, .. } => {
            if !valid_xattr_name(name) {
                return bad(format!("setxattr: inode {ino}: bad name"));
            }
            if value.len() > XATTR_SIZE_MAX {
                return bad(format!(
                    "setxattr: inode {ino}: value of {} bytes",
                    value.len()
                ));
            }
            if acl::is_acl_name(name) && !matches!(Acl::decode(value), Ok(Some(_))) {
                return bad(format!(
                    "setxattr: inode {ino}: {} does not parse",
                    name_str(name)
                ));
            }
            if name == acl::DEFAULT && !g.attr.is_dir() {
                return bad(format!(
                    "setxattr: inode {ino}: default ACL on a non-directory"
                ));
            }
        }
        Op::RemoveXattr { name, .. } => {
            if g.xattr(name).is_none() {
                return bad(format!(
                    "removexattr: inode {ino} has no {}",
                    name_str(name)
                ));
            }
        }
        Op::Group(ops) => {
            validate_group_shape(ops)?;
            // The operations of one inode's group do not depend on each other's effects
            // beyond what each checks itself.
            if let Some(first) = ops.first() {
                if first.inode() != Some(ino) {
                    return bad(format!("group for inode {ino} holds {first:?}"));
                }
                validate_inode(g, first, bs)?;
            }
        }
        other => return bad(format!("not an inode operation: {other:?}")),
    }
    Ok(())
}

/// The inodes whose own invariants (`acl_problems`) an applied operation can change.
pub fn touched(op: &Op, out: &mut Vec<u64>) {
    match op {
        Op::Create { ino, .. } => out.push(*ino),
        Op::Group(ops) => ops.iter().for_each(|o| touched(o, out)),
        _ => out.extend(op.inode()),
    }
}

/// A stored access ACL must parse and agree with the mode's permission bits (every path
/// that changes one changes the other in the same record); a default ACL must parse and
/// sit on a directory.
pub fn acl_problems(g: &Inode, problems: &mut Vec<String>) {
    let ino = g.ino;
    if let Some(v) = g.xattr(acl::ACCESS) {
        match Acl::decode(v) {
            Ok(Some(a)) => {
                let (bits, _) = a.mode_bits();
                if g.attr.mode & 0o777 != bits {
                    problems.push(format!(
                        "inode {ino}: mode {:o} disagrees with its access ACL ({bits:o})",
                        g.attr.mode & 0o777
                    ));
                }
            }
            _ => problems.push(format!("inode {ino}: stored access ACL does not parse")),
        }
    }
    if let Some(v) = g.xattr(acl::DEFAULT) {
        if !matches!(Acl::decode(v), Ok(Some(_))) {
            problems.push(format!("inode {ino}: stored default ACL does not parse"));
        } else if !g.attr.is_dir() {
            problems.push(format!("inode {ino}: default ACL on a non-directory"));
        }
    }
}
