//! Making a filesystem, mounting it (checkpoint load + log replay) and writing
//! checkpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};

use crate::sync::{Mutex, Rank, RwLock};
use sealfs_alloc::{Allocator, Extent};

use super::{Filesystem, SbState};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::format::layout::{LayoutOptions, SB_SLOT_SIZE};
use crate::format::log_header::{records_start, LogHeader, LOG_HEADER_LEN, LOG_HEADER_VERSION};
use crate::format::record::{decode_header, decode_record, Ts};
use crate::format::superblock::{pick, SlotPick, FORMAT_VERSION, SB_LEN};
use crate::format::{checkpoint, crc, FormatError, Layout, Superblock};
use crate::log::Log;
use crate::meta::table::{ApplyError, Blocks};
use crate::meta::Table;
use crate::device::persist;

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

/// Reads both superblock slots.
pub fn read_superblocks(dev: &dyn Device) -> Result<SlotPick, FormatError> {
    let mut a = [0u8; SB_LEN];
    let mut b = [0u8; SB_LEN];
    if dev.size() < 2 * SB_SLOT_SIZE {
        return Err(FormatError::Truncated);
    }
    dev.read(0, &mut a).map_err(|_| FormatError::Truncated)?;
    dev.read(SB_SLOT_SIZE, &mut b)
        .map_err(|_| FormatError::Truncated)?;
    pick(&a, &b, dev.size())
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

/// Rebuilds the allocator from what checkpoints and records say is owned.
pub(crate) struct ReplayBlocks<'a> {
    pub alloc: &'a mut Allocator,
}

impl Blocks for ReplayBlocks<'_> {
    fn used(&mut self, start: u64, len: u64) -> Result<(), ApplyError> {
        self.alloc
            .mark_used(Extent { start, len })
            .map_err(|e| ApplyError(format!("{e}")))
    }
    fn freed(&mut self, ino: u64, start: u64, len: u64) -> Result<(), ApplyError> {
        self.alloc
            .free(Extent { start, len })
            .map_err(|e| ApplyError(format!("inode {ino}: {e}")))
    }
}

/// What loading found, for fsck.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The superblock in use.
    pub sb: Superblock,
    /// A problem with the other slot, if any.
    pub other_slot: Option<(u64, FormatError)>,
    /// Records replayed.
    pub replayed: u64,
    /// Why replay stopped (normal: a record of an earlier log epoch or zeroes).
    pub replay_end: String,
    /// Log bytes in use.
    pub log_tail: u64,
    /// What the cross-checks of the loaded table found (`fsck::check_table`); mount refuses
    /// a table with any.
    pub problems: Vec<String>,
    /// Data blocks owned by files.
    pub used_blocks: u64,
}

/// The invariants of the inodes one applied record touched that its operations cannot
/// check one at a time: a mode and its access ACL change in the same record (a `Group`),
/// so they must agree once the whole record has applied.
fn after_record(table: &Table, op: &crate::format::record::Op) -> std::result::Result<(), String> {
    let mut inos = Vec::new();
    crate::meta::validate::touched(op, &mut inos);
    let mut problems = Vec::new();
    for ino in inos {
        if let Some(n) = table.get(ino) {
            crate::meta::validate::acl_problems(&n.read(), &mut problems);
        }
    }
    match problems.into_iter().next() {
        Some(p) => Err(p),
        None => Ok(()),
    }
}

/// Loads the metadata state: superblock, checkpoint, log replay.
pub(crate) fn load(dev: &dyn Device) -> Result<(Table, Allocator, Log, LoadReport)> {
    let slots = read_superblocks(dev).map_err(|e| match e {
        FormatError::BadMagic(_) => {
            Error::Corrupt("not a sealfs filesystem (no valid superblock)".into())
        }
        other => Error::Corrupt(format!("no valid superblock: {other}")),
    })?;
    let sb = slots.current;
    let l = sb.layout;
    let mut blob = vec![0u8; sb.ckpt_used as usize];
    dev.read(l.ckpt_off[sb.active_ckpt as usize], &mut blob)?;
    let hdr = checkpoint::verify(&blob, sb.ckpt_crc)?;
    if hdr.generation > sb.generation {
        return Err(Error::Corrupt(format!(
            "checkpoint generation {} is newer than the superblock's {}",
            hdr.generation, sb.generation
        )));
    }
    if hdr.log_seq != sb.log_seq {
        return Err(Error::Corrupt(format!(
            "checkpoint starts the log at {} but the superblock says {}",
            hdr.log_seq, sb.log_seq
        )));
    }
    let mut alloc = Allocator::new(l.data_blocks);
    let mut table =
        checkpoint::decode(&blob, l.block_size, &mut ReplayBlocks { alloc: &mut alloc })?;
    drop(blob);
    // A checkpoint with a valid checksum can still hold nonsense (a size past the largest
    // file, a link count no name accounts for): the same cross-checks fsck runs.
    let ckpt_check = crate::fsck::check_table(&table, &alloc, &l);
    if !ckpt_check.problems.is_empty() {
        let report = LoadReport {
            sb,
            other_slot: slots.other_problem,
            replayed: 0,
            replay_end: "not replayed: the checkpoint is inconsistent".into(),
            log_tail: 0,
            problems: ckpt_check
                .problems
                .into_iter()
                .map(|p| format!("checkpoint: {p}"))
                .collect(),
            used_blocks: ckpt_check.used_blocks,
        };
        let log = Log {
            off: l.log_off,
            len: l.log_len,
            start: records_start(sb.version),
            tail: records_start(sb.version),
            next_seq: sb.log_seq,
            appended: 0,
        };
        return Ok((table, alloc, log, report));
    }
    check_log_header(dev, &sb)?;
    let mut region = LogView::new(dev, l.log_off, l.log_len as usize);
    let mut pos = records_start(sb.version) as usize;
    let mut seq = sb.log_seq;
    let replay_end;
    loop {
        let rest = region.at(pos)?;
        match decode_header(rest) {
            Ok(h) if h.seq == seq => match decode_record(rest) {
                Ok((_, op)) => {
                    table
                        .apply(&op, &mut ReplayBlocks { alloc: &mut alloc })
                        .map_err(|e| Error::Corrupt(format!("log record {seq}: {e}")))?;
                    after_record(&table, &op)
                        .map_err(|e| Error::Corrupt(format!("log record {seq}: {e}")))?;
                    pos += h.len;
                    seq += 1;
                }
                Err(e) => {
                    replay_end = format!("record {seq} at log offset {pos}: {e}");
                    break;
                }
            },
            Ok(h) => {
                replay_end = format!(
                    "record at log offset {pos} has sequence {} (expected {seq})",
                    h.seq
                );
                break;
            }
            Err(e) => {
                replay_end = format!("log offset {pos}: {e}");
                break;
            }
        }
    }
    if let Some((at, later)) = later_record(&mut region, pos, seq)? {
        return Err(Error::Corrupt(format!(
            "log record {later} at offset {at} follows a damaged or missing record {seq} ({replay_end})"
        )));
    }
    let log = Log {
        off: l.log_off,
        len: l.log_len,
        start: records_start(sb.version),
        tail: pos as u64,
        next_seq: seq,
        appended: 0,
    };
    let replayed = seq - sb.log_seq;
    let check = if replayed == 0 {
        ckpt_check
    } else {
        let mut c = crate::fsck::check_table(&table, &alloc, &l);
        for p in &mut c.problems {
            *p = format!("after log records {}..={}: {p}", sb.log_seq, seq - 1);
        }
        c
    };
    let report = LoadReport {
        sb,
        other_slot: slots.other_problem,
        replayed,
        replay_end,
        log_tail: pos as u64,
        problems: check.problems,
        used_blocks: check.used_blocks,
    };
    Ok((table, alloc, log, report))
}

/// From format version 3 on, the log region must hold the header of the current
/// generation: without it an erased log region would look like an empty log, and mount
/// would silently roll the filesystem back to its checkpoint.
fn check_log_header(dev: &dyn Device, sb: &Superblock) -> Result<()> {
    if sb.version < LOG_HEADER_VERSION {
        return Ok(());
    }
    let mut b = [0u8; LOG_HEADER_LEN];
    dev.read(
        sb.layout.log_off + LogHeader::slot_offset(sb.generation),
        &mut b,
    )?;
    let found = LogHeader::decode(&b);
    let why = match found {
        Ok(h) if h.generation == sb.generation && h.log_seq == sb.log_seq && h.uuid == sb.uuid => {
            return Ok(())
        }
        Ok(h) if h.uuid != sb.uuid => "it belongs to another filesystem".to_string(),
        Ok(h) => format!(
            "it names generation {} and log record {}",
            h.generation, h.log_seq
        ),
        Err(e) => format!("{e}"),
    };
    Err(Error::Corrupt(format!(
        "the log header of generation {} (log from record {}) is missing: {why}; the log \
         region was erased or overwritten, and replaying it could silently lose logged changes",
        sb.generation, sb.log_seq
    )))
}

/// Looks past the point where replay stopped for a valid record that should have come
/// later. Appends are serialized and each is durable before the next starts, so a crash
/// can only leave a torn *last* record: a valid record with a sequence number at or past
/// the expected one means corruption (or a superblock slot older than the log).
fn later_record(
    region: &mut LogView<'_>,
    stop: usize,
    expected: u64,
) -> Result<Option<(usize, u64)>> {
    use crate::format::record::{REC_ALIGN, REC_HEADER, REC_MAGIC};
    let magic = REC_MAGIC.to_le_bytes();
    if stop >= region.len {
        return Ok(None);
    }
    // The record at `stop` itself failed to apply only if its sequence is a later one.
    if let Ok((h, _)) = decode_record(region.at(stop)?) {
        if h.seq > expected {
            return Ok(Some((stop, h.seq)));
        }
    }
    let mut p = stop + REC_ALIGN;
    while p + REC_HEADER <= region.len {
        let b = region.at(p)?;
        if b[..4] == magic {
            if let Ok((h, _)) = decode_record(b) {
                if h.seq >= expected {
                    return Ok(Some((p, h.seq)));
                }
            }
        }
        p += REC_ALIGN;
    }
    Ok(None)
}

/// A window onto the log region, read from the device a chunk at a time (the region can be
/// 64 MiB; mount should not hold all of it).
struct LogView<'a> {
    dev: &'a dyn Device,
    off: u64,
    len: usize,
    buf: Vec<u8>,
    start: usize,
}

impl<'a> LogView<'a> {
    const CHUNK: usize = 1 << 20;

    fn new(dev: &'a dyn Device, off: u64, len: usize) -> Self {
        LogView {
            dev,
            off,
            len,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The bytes from `pos` on: at least a whole record's worth, or up to the region's end.
    fn at(&mut self, pos: usize) -> Result<&[u8]> {
        let want = (pos + crate::format::record::REC_MAX).min(self.len);
        if pos < self.start || want > self.start + self.buf.len() {
            let end = (pos + Self::CHUNK).min(self.len).max(want);
            self.buf.resize(end - pos, 0);
            self.dev.read(self.off + pos as u64, &mut self.buf)?;
            self.start = pos;
        }
        Ok(&self.buf[pos - self.start..])
    }
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
            gate: RwLock::new(Rank::Gate, ()),
            table: RwLock::new(Rank::Table, table),
            alloc: Mutex::new(Rank::Alloc, alloc),
            log: Mutex::new(Rank::Log, log),
            sb: Mutex::new(
                Rank::Superblock,
                SbState {
                    current: report.sb,
                    checkpoints: 0,
                },
            ),
            handles: Mutex::new(Rank::Handles, HashMap::new()),
            next_fh: AtomicU64::new(1),
            read_only: AtomicBool::new(opts.read_only),
            atime: AtomicU8::new(1),
            nodiratime: AtomicBool::new(false),
            acl: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            seals: super::seals::SealCtl::new(Default::default()),
            windows: Default::default(),
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

    /// Writes `sb` to its slot (by generation), durably.
    fn publish_superblock(&self, sb: &Superblock) -> Result<()> {
        persist::publish(&*self.dev, Superblock::slot_offset(sb.slot()), &sb.encode())?;
        Ok(())
    }

    /// Brings a filesystem of an older format version to the current one before anything
    /// of the newer format can be logged: a checkpoint in the old version first (the log's
    /// records are then all in the checkpoint, so the version 3 log header may overwrite
    /// the start of the region), then one in the current version. A crash leaves one of
    /// the superblocks written so far, each of which mounts to the same state.
    fn upgrade_format(&self) -> Result<()> {
        let from = self.sb.lock().current.version;
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
        let _gate = self.gate.write();
        let table = self.table.read();
        // The exclusive gate keeps every appender out, so the log's next sequence number and
        // the generation cannot move while the table (and each inode, rank 3) is encoded
        // before the log and superblock locks (ranks 10, 11) are taken.
        let next_seq = self.log.lock().next_seq;
        let generation = self.sb.lock().current.generation + 1;
        let blob = checkpoint::encode(&table, generation, next_seq);
        let mut log = self.log.lock();
        let mut sb = self.sb.lock();
        if log.next_seq != next_seq || sb.current.generation + 1 != generation {
            return Err(Error::Corrupt(
                "log appended or superblock published during a checkpoint".into(),
            ));
        }
        if blob.len() as u64 > self.layout.ckpt_len {
            tracing::error!(
                bytes = blob.len(),
                capacity = self.layout.ckpt_len,
                "metadata no longer fits a checkpoint"
            );
            return Err(Error::NoSpace);
        }
        let area = 1 - sb.current.active_ckpt;
        persist::publish(&*self.dev, self.layout.ckpt_off[area as usize], &blob)?;
        if version >= LOG_HEADER_VERSION {
            // Before the superblock: this slot is not the one the current generation needs.
            let h = LogHeader {
                generation,
                log_seq: log.next_seq,
                uuid: sb.current.uuid,
            };
            persist::publish(
                &*self.dev,
                self.layout.log_off + LogHeader::slot_offset(generation),
                &h.encode(),
            )?;
        }
        let new = Superblock {
            version,
            generation,
            active_ckpt: area,
            ckpt_used: blob.len() as u64,
            ckpt_crc: crc(&[&blob]),
            log_seq: log.next_seq,
            ..sb.current
        };
        self.publish_superblock(&new)?;
        log.start = records_start(version);
        log.tail = log.start;
        sb.current = new;
        sb.checkpoints += 1;
        tracing::debug!(generation, bytes = blob.len(), "checkpoint written");
        Ok(())
    }

    /// The superblock in use.
    pub fn superblock(&self) -> Superblock {
        self.sb.lock().current
    }
}
