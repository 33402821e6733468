//! Making a filesystem, mounting it (the journal's checkpoint load and log replay) and
//! taking the locks a checkpoint needs.

use super::Filesystem;
use crate::device::persist;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::format::layout::{LayoutOptions, SB_SLOT_SIZE};
use crate::format::log_header::LogHeader;
use crate::format::record::Ts;
use crate::format::superblock::FORMAT_VERSION;
use crate::format::{crc, Layout, Superblock};
use crate::journal::replay::{load, read_superblocks};
use crate::journal::{checkpoint, Journal};
use crate::meta::Table;

/// Options for `mkfs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MkfsOptions {
    /// Layout knobs (block size, log and checkpoint sizes).
    pub layout: LayoutOptions,
    /// Overwrite an existing sealfs.
    pub force: bool,
    /// Owner of the root directory.
    pub uid: u32,
    /// Group of the root directory.
    pub gid: u32,
}

/// Options for mounting.
#[derive(Clone, Copy, Debug, Default)]
pub struct MountOptions {
    /// Refuse every change and write nothing (fsck, `-o ro`).
    pub read_only: bool,
}

fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    // SAFETY: getrandom writes at most `u.len()` bytes into our buffer.
    let n = unsafe { libc::getrandom(u.as_mut_ptr() as *mut libc::c_void, u.len(), 0) };
    if n != u.len() as isize {
        // Uniqueness, not secrecy, is what the UUID is for: fall back to the clock.
        let t = Ts::now();
        u[..8].copy_from_slice(&t.sec.to_le_bytes());
        u[8..12].copy_from_slice(&t.nsec.to_le_bytes());
        u[12..].copy_from_slice(&std::process::id().to_le_bytes());
    }
    u
}

/// Writes a new, empty filesystem.
pub fn mkfs(dev: &dyn Device, opts: MkfsOptions) -> Result<Superblock> {
    let layout = Layout::compute(dev.size(), opts.layout)?;
    if !opts.force && read_superblocks(dev).is_ok() {
        return Err(Error::Exists);
    }
    let now = Ts::now();
    let table = Table::with_root(layout.block_size, now, opts.uid, opts.gid);
    let log_seq = 1;
    let blob = checkpoint::encode(&table, 1, log_seq);
    // Invalidate both slots first: a crash during mkfs must not leave the old filesystem
    // half-overwritten yet mountable.
    persist::publish(dev, 0, &vec![0u8; 2 * SB_SLOT_SIZE as usize])?;
    // Old log records of an earlier filesystem must never replay into this one.
    let chunk = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < layout.log_len {
        let n = (layout.log_len - off).min(chunk.len() as u64);
        dev.write(layout.log_off + off, &chunk[..n as usize])?;
        off += n;
    }
    persist::persist(dev, layout.log_off, layout.log_len)?;
    persist::publish(dev, layout.ckpt_off[0], &blob)?;
    let uuid = random_uuid();
    // Generations 0 and 1 both follow this checkpoint: each gets its log header.
    for generation in [0, 1] {
        let h = LogHeader {
            generation,
            log_seq,
            uuid,
        };
        persist::publish(
            dev,
            layout.log_off + LogHeader::slot_offset(generation),
            &h.encode(),
        )?;
    }
    let mut sb = Superblock {
        version: FORMAT_VERSION,
        uuid,
        generation: 0,
        layout,
        active_ckpt: 0,
        ckpt_used: blob.len() as u64,
        ckpt_crc: crc(&[&blob]),
        log_seq,
        created_ns: now.sec as u64 * 1_000_000_000 + now.nsec as u64,
    };
    persist::publish(dev, Superblock::slot_offset(sb.slot()), &sb.encode())?;
    sb.generation = 1;
    persist::publish(dev, Superblock::slot_offset(sb.slot()), &sb.encode())?;
    Ok(sb)
}

impl Filesystem {
    /// Mounts the filesystem on `dev`.
    pub fn mount(dev: Box<dyn Device>, opts: MountOptions) -> Result<Filesystem> {
        let (table, alloc, log, report) = load(&*dev)?;
        if let Some(first) = report.problems.first() {
            let more = match report.problems.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more; sealfs fsck lists them)"),
            };
            return Err(Error::Corrupt(format!("{first}{more}")));
        }
        let layout = report.sb.layout;
        let orphans: Vec<u64> = table.orphans.iter().copied().collect();
        let fs = Filesystem {
            dev,
            layout,
            bs: layout.block_size,
            journal: Journal::new(log, report.sb),
            namespace: super::namespace::Namespace::new(table),
            space: super::space::Space::new(alloc),
            settings: super::Settings::new(opts.read_only),
            seals: super::seals::SealCtl::new(Default::default()),
            windows: Default::default(),
            handles: super::Handles::new(),
        };
        if !opts.read_only {
            fs.upgrade_format()?;
            // Files unlinked while open when the last daemon stopped: nobody can open them now.
            for ino in orphans {
                fs.evict(ino)?;
            }
        }
        Ok(fs)
    }

    /// Brings a filesystem of an older format version to the current one before anything
    /// of the newer format can be logged: a checkpoint in the old version first (the log's
    /// records are then all in the checkpoint, so the version 3 log header may overwrite
    /// the start of the region), then one in the current version. A crash leaves one of
    /// the superblocks written so far, each of which mounts to the same state.
    fn upgrade_format(&self) -> Result<()> {
        let from = self.journal.superblock().version;
        if from == FORMAT_VERSION {
            return Ok(());
        }
        self.checkpoint_as(from)?;
        self.checkpoint_as(FORMAT_VERSION)?;
        tracing::info!(from, to = FORMAT_VERSION, "format version upgraded");
        Ok(())
    }

    /// Writes the whole metadata state to the inactive checkpoint area and publishes it;
    /// the log starts over.
    pub fn checkpoint(&self) -> Result<()> {
        self.checkpoint_as(FORMAT_VERSION)
    }

    /// A checkpoint whose superblock says format `version` (older versions only while
    /// upgrading: they have no log header).
    fn checkpoint_as(&self, version: u32) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        self.journal
            .checkpoint(&*self.dev, &self.namespace.table, version)
    }

    /// The superblock in use.
    pub fn superblock(&self) -> Superblock {
        self.journal.superblock()
    }
}
