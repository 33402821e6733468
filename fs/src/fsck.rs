//! `sealfs fsck`: the same load mount does (superblocks, checkpoint, log header, log replay
//! through the validator), including the cross-checks of everything mount relies on
//! (`check_table`: block ownership, link counts, directory tree reachability and parent
//! pointers, sizes against extents and types), which mount refuses on too.
//!
//! Read-only: fsck never writes to the device.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::Duration;

use sealfs_alloc::Allocator;

use crate::device::Device;
use crate::filesystem::{MAX_FILE_SIZE, MAX_LINKS};
use crate::format::Layout;
use crate::journal::replay::load;
use crate::meta::inode::mode;
use crate::meta::validate::{acl_problems, KNOWN_FLAGS, SYMLINK_MAX};
use crate::meta::{Body, Table, ROOT_INO};

/// What fsck found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Problems: each makes fsck exit 1.
    pub problems: Vec<String>,
    /// Observations that are not problems (e.g. a torn superblock slot beside a valid one).
    pub notes: Vec<String>,
    /// Inodes checked.
    pub inodes: u64,
    /// Data blocks in use.
    pub used_blocks: u64,
    /// Log records replayed.
    pub replayed: u64,
    /// The image could not be loaded at all (mount refuses it before any cross-check).
    pub unloadable: bool,
}

impl Report {
    /// True when no problem was found.
    pub fn clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the filesystem on `dev`.
pub fn check(dev: &dyn Device) -> Report {
    let mut r = Report::default();
    let (table, _alloc, _log, load) = match load(dev) {
        Ok(x) => x,
        Err(e) => {
            r.problems.push(format!("{e}"));
            r.unloadable = true;
            return r;
        }
    };
    if let Some((slot, e)) = &load.other_slot {
        let name = if *slot == 0 { "A" } else { "B" };
        r.notes.push(format!(
            "superblock slot {name} is not valid ({e}); slot {} (generation {}) is current — a state an interrupted checkpoint can leave",
            if *slot == 0 { "B" } else { "A" },
            load.sb.generation
        ));
    }
    r.replayed = load.replayed;
    r.notes.push(format!(
        "replayed {} log records; replay ended at {}",
        load.replayed, load.replay_end
    ));
    r.inodes = table.inodes.len() as u64;
    r.used_blocks = load.used_blocks;
    r.problems = load.problems;
    if !table.orphans.is_empty() {
        r.notes.push(format!(
            "{} unlinked inodes still allocated (freed at the next mount)",
            table.orphans.len()
        ));
    }
    r
}

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
    let mut names: HashMap<u64, u32> = HashMap::new();
    let mut subdirs: HashMap<u64, u32> = HashMap::new();
    let mut dir_parent: HashMap<u64, u64> = HashMap::new();
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
                for (f, d, l) in m.iter() {
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
    let mut seen = std::collections::HashSet::new();
    let mut queue = VecDeque::from([ROOT_INO]);
    while let Some(ino) = queue.pop_front() {
        if !seen.insert(ino) {
            continue;
        }
        if let Some(n) = table.inodes.get(&ino) {
            if let Some(d) = n.read().dir() {
                for (_, c, _) in d.iter() {
                    queue.push_back(c);
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

/// The `sealfs fsck DEVICE` command: prints findings, returns the exit code (0 clean, 1
/// problems, 2 the image cannot be loaded at all — no valid superblock, a damaged
/// checkpoint or log, a log record that cannot apply, a missing log — or a usage or I/O
/// error).
pub fn run(path: &Path) -> i32 {
    let dev = match crate::device::open(path, Duration::from_secs(10)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("sealfs fsck: {}: {e}", path.display());
            return 2;
        }
    };
    let t = std::time::Instant::now();
    let r = check(&*dev);
    for n in &r.notes {
        println!("note: {n}");
    }
    for p in &r.problems {
        println!("problem: {p}");
    }
    if r.clean() {
        println!(
            "{}: clean, {} inodes, {} blocks used ({:.2} s)",
            path.display(),
            r.inodes,
            r.used_blocks,
            t.elapsed().as_secs_f64()
        );
        0
    } else {
        println!("{}: {} problems found", path.display(), r.problems.len());
        if r.unloadable {
            2
        } else {
            1
        }
    }
}
