//! `sealfs fsck`: the same load mount does (superblocks, checkpoint, log header, log replay
//! through the validator), including the cross-checks of everything mount relies on
//! (`meta::check::check_table`: block ownership, link counts, directory tree reachability and parent
//! pointers, sizes against extents and types), which mount refuses on too.
//!
//! Read-only: fsck never writes to the device.

use std::path::Path;
use std::time::Duration;

use crate::device::Device;
use crate::journal::replay::load;

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

/// The `sealfs fsck DEVICE` command: prints findings, returns the exit code (0 clean, 1
/// problems, 2 the image cannot be loaded at all — no valid superblock, a damaged
/// checkpoint or log, a log record that cannot apply, a missing log — or a usage or I/O
/// error).
pub fn run(path: &Path) -> i32 {
    // Read-only: fsck only looks (and so works on an image on a read-only filesystem).
    let dev = match crate::device::open_with(path, Duration::from_secs(10), false) {
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
