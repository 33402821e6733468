//! Mount-time recovery: pick the superblock, load its checkpoint, replay the log records
//! written since, and check that nothing valid lies past where replay stopped.
//!
//! Replay applies each record with `meta::Table::apply`, the function the live filesystem
//! applies it with, so the state after replay is the state the filesystem had.

use sealfs_alloc::{Allocator, Extent};

use super::checkpoint;
use super::log::Log;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::format::layout::SB_SLOT_SIZE;
use crate::format::log_header::{records_start, LogHeader, LOG_HEADER_LEN, LOG_HEADER_VERSION};
use crate::format::record::{decode_header, decode_record, Op};
use crate::format::superblock::{pick, SlotPick, SB_LEN};
use crate::format::{FormatError, Superblock};
use crate::meta::check::check_table;
use crate::meta::table::{ApplyError, Blocks};
use crate::meta::Table;

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

/// Rebuilds the allocator from what checkpoints and records say is owned.
pub struct ReplayBlocks<'a> {
    /// The allocator being rebuilt.
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
    /// What the cross-checks of the loaded table found (`meta::check::check_table`); mount refuses
    /// a table with any.
    pub problems: Vec<String>,
    /// Data blocks owned by files.
    pub used_blocks: u64,
}

/// The invariants of the inodes one applied record touched that its operations cannot
/// check one at a time: a mode and its access ACL change in the same record (a `Group`),
/// so they must agree once the whole record has applied.
fn after_record(table: &Table, op: &Op) -> std::result::Result<(), String> {
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
    let ckpt_check = check_table(&table, &alloc, &l);
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
            Ok(h) if h.seq < seq => {
                replay_end = format!(
                    "the end of the log, offset {pos} (a record left from before the last \
                     checkpoint, sequence {})",
                    h.seq
                );
                break;
            }
            Ok(h) => {
                replay_end = format!(
                    "record at log offset {pos} has sequence {} (expected {seq})",
                    h.seq
                );
                break;
            }
            // No record starts here: the normal end of the log (zeroes, or bytes an
            // earlier log epoch left in the middle of a record).
            Err(FormatError::BadMagic(_)) => {
                replay_end = format!("the end of the log, offset {pos} (no record starts there)");
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
        let mut c = check_table(&table, &alloc, &l);
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
