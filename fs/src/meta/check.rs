//! Cross-checks of a whole loaded table: what no single operation's validator can see
//! (block ownership, link counts, directory tree reachability and parent pointers, sizes
//! against extents and types, ACLs). Mount runs them on the checkpoint and again after
//! replay (`journal::replay::load`) and refuses a table that fails any; fsck lists them.

use std::collections::VecDeque;

use sealfs_alloc::Allocator;

use super::inode::mode;
use super::validate::{acl_problems, KNOWN_FLAGS, SYMLINK_MAX};
use super::{Body, InoMap, InoSet, Table, ROOT_INO};
use crate::filesystem::{MAX_FILE_SIZE, MAX_LINKS};
use crate::format::record::MapExtent;
use crate::format::Layout;

/// What [`check_table`] found.
#[derive(Debug, Default, Clone)]
pub struct TableCheck {
    /// Problems, each one line.
    pub problems: Vec<String>,
    /// Data blocks owned by files.
    pub used_blocks: u64,
}

/// Cross-checks of a loaded table (block ownership, link counts, directory tree
/// reachability and parent pointers, sizes against extents and types, ACLs). Mount runs
/// them on the checkpoint and again after replay and refuses a table that fails any; fsck
/// lists them all.
pub fn check_table(table: &Table, alloc: &Allocator, layout: &Layout) -> TableCheck {
    let mut problems = Vec::new();
    let r = &mut problems;
    // Link counts and parent pointers, from the directory entries.
    // Sized for every inode up front: growing a map of ten million entries by doubling
    // moved each entry about twice (a third of a mount's time at that size).
    let inodes = table.inodes.len();
    let mut names: InoMap<u32> = InoMap::with_capacity_and_hasher(inodes, Default::default());
    let mut subdirs: InoMap<u32> = InoMap::default();
    let mut dir_parent: InoMap<u64> = InoMap::default();
    let mut used = 0u64;
    for (&ino, n) in &table.inodes {
        let g = n.read();
        match &g.body {
            Body::Dir(d) => {
                for (name, child, kind) in d.iter() {
                    *names.entry(child).or_default() += 1;
                    if kind as u32 == mode::S_IFDIR >> 12 {
                        *subdirs.entry(ino).or_default() += 1;
                        if let Some(prev) = dir_parent.insert(child, ino) {
                            r.push(format!(
                                "directory {child} has two names (in {prev} and in {ino}, {:?})",
                                String::from_utf8_lossy(name)
                            ));
                        }
                    }
                }
            }
            Body::File(m) => {
                if !g.attr.is_file() {
                    r.push(format!(
                        "inode {ino}: file body on a non-file mode {:o}",
                        g.attr.mode
                    ));
                }
                for MapExtent {
                    fblock: f,
                    dblock: d,
                    len: l,
                } in m.iter()
                {
                    used += l;
                    if d.checked_add(l).is_none_or(|e| e > layout.data_blocks) {
                        r.push(format!("inode {ino}: extent {d}+{l} outside the data area"));
                    }
                    if f.checked_add(l)
                        .is_none_or(|e| e.saturating_mul(layout.block_size) > MAX_FILE_SIZE)
                    {
                        r.push(format!(
                            "inode {ino}: extent at file block {f} beyond the largest file size"
                        ));
                    }
                }
                if g.attr.size > MAX_FILE_SIZE {
                    r.push(format!(
                        "inode {ino}: size {} beyond the largest file size",
                        g.attr.size
                    ));
                }
            }
            Body::Symlink(t) => {
                if g.attr.size != t.len() as u64 {
                    r.push(format!(
                        "symlink {ino}: size {} but target is {} bytes",
                        g.attr.size,
                        t.len()
                    ));
                }
                if t.is_empty() || t.len() >= SYMLINK_MAX {
                    r.push(format!("symlink {ino}: target of {} bytes", t.len()));
                }
            }
            Body::Special => {}
        }
        if g.attr.nlink > MAX_LINKS {
            r.push(format!(
                "inode {ino}: link count {} beyond the limit {MAX_LINKS}",
                g.attr.nlink
            ));
        }
        if g.attr.flags & !KNOWN_FLAGS != 0 {
            r.push(format!("inode {ino}: unknown flags {:#x}", g.attr.flags));
        }
    }
    if alloc.free_blocks() + used != alloc.total_blocks() {
        r.push(format!(
            "free space accounting: {} free + {} used != {} blocks",
            alloc.free_blocks(),
            used,
            alloc.total_blocks()
        ));
    }
    for (&ino, n) in &table.inodes {
        let g = n.read();
        let linked = names.get(&ino).copied().unwrap_or(0);
        if g.attr.is_dir() {
            if ino == ROOT_INO {
                if linked != 0 {
                    r.push("root directory has a name".into());
                }
            } else if linked != 1 && g.attr.nlink != 0 {
                r.push(format!("directory {ino} has {linked} names"));
            }
            let want = 2 + subdirs.get(&ino).copied().unwrap_or(0);
            if g.attr.nlink != 0 && g.attr.nlink != want {
                r.push(format!(
                    "directory {ino}: link count {} but {} expected",
                    g.attr.nlink, want
                ));
            }
            if let (Some(d), Some(&p)) = (g.dir(), dir_parent.get(&ino)) {
                if d.parent != p {
                    r.push(format!(
                        "directory {ino}: parent pointer {} but it is named in {p}",
                        d.parent
                    ));
                }
            }
        } else if g.attr.nlink != linked {
            r.push(format!(
                "inode {ino}: link count {} but {} names",
                g.attr.nlink, linked
            ));
        }
        if g.attr.nlink == 0 && !table.orphans.contains(&ino) {
            r.push(format!("inode {ino}: no links and not an orphan"));
        }
        acl_problems(&g, r);
    }
    // Reachability from the root.
    let mut seen = InoSet::with_capacity_and_hasher(inodes, Default::default());
    let mut queue = VecDeque::from([ROOT_INO]);
    while let Some(ino) = queue.pop_front() {
        if !seen.insert(ino) {
            continue;
        }
        if let Some(n) = table.inodes.get(&ino) {
            if let Some(d) = n.read().dir() {
                for (_, child, kind) in d.iter() {
                    // Only directories are walked into: anything else is reached by being
                    // named, without a read of its inode (a pass over every file's memory).
                    // Entry kinds match their inodes: checkpoint decoding refuses one that
                    // does not, and the operation validators keep them so.
                    if kind as u32 == mode::S_IFDIR >> 12 {
                        queue.push_back(child);
                    } else {
                        seen.insert(child);
                    }
                }
            }
        }
    }
    for &ino in table.inodes.keys() {
        if !seen.contains(&ino) && !table.orphans.contains(&ino) {
            r.push(format!("inode {ino} is not reachable from the root"));
        }
    }
    TableCheck {
        problems,
        used_blocks: used,
    }
}
