//! The metadata journal: the log every change is committed to, the checkpoints that
//! compact it, mount-time replay of both, and the transaction shape every logged change of
//! the core follows.
//!
//! * [`log`]: the log writer (one checksummed record per operation, durable before the
//!   operation replies; log order is commit order).
//! * [`checkpoint`]: the checkpoint codec (the whole `meta::Table` in one blob) and the
//!   publication of a new generation (checkpoint area, log header, superblock).
//! * [`replay`]: reading the superblocks, loading the checkpoint and replaying the log.
//! * `transact`: the gate and the checkpoint-and-retry around one logged change.
//! * `Journal`: the journal's state in a mounted filesystem (gate, log writer, superblock
//!   in use, failure flag) and the locking of a checkpoint.
//!
//! The journal sits above `device` (it writes only through `device::persist`), `format`
//! (superblock, log header and record encodings) and `meta` (the table it serialises and
//! the apply function replay shares with the live path), and below `filesystem`.
//!
//! # Locks
//!
//! [`crate::sync`] is the one statement of the lock order, checked on every acquisition.
//! The journal's part of it: a change holds the gate shared, then the table and inode
//! locks it needs, then the log for one append; a checkpoint holds the gate exclusively
//! (keeping every appender out), the table shared and each inode in turn while it encodes,
//! then the log and the superblock while it publishes. So: gate → table → inode → … →
//! log → superblock.

pub mod checkpoint;
pub mod log;
pub mod replay;

use std::sync::atomic::{AtomicBool, Ordering};

use self::log::Log;
use crate::device::Device;
use crate::error::{Error, Result, Stop};
use crate::format::record::Op;
use crate::format::Superblock;
use crate::meta::table::ApplyError;
use crate::meta::Table;
use crate::sync::{Mutex, Rank, RwLock};

/// Why a logged change did not finish: an error `E` (an [`Error`], or a [`Stop`] for a
/// change that may wait for a seal recall), or the log had no room for its record (nothing
/// written; [`transact`] checkpoints and runs it again). Internal to the core: `LogFull`
/// never reaches a caller.
#[derive(Debug)]
pub(crate) enum Retry<E = Error> {
    /// A real error (or a wait), returned as it is.
    Err(E),
    /// The log is full: checkpoint and retry.
    LogFull,
}

impl<E: From<Error>> From<Error> for Retry<E> {
    fn from(e: Error) -> Retry<E> {
        Retry::Err(e.into())
    }
}

impl<E: From<Error>> From<crate::format::FormatError> for Retry<E> {
    fn from(e: crate::format::FormatError) -> Retry<E> {
        Retry::Err(Error::from(e).into())
    }
}

impl<E: From<Error>> From<std::io::Error> for Retry<E> {
    fn from(e: std::io::Error) -> Retry<E> {
        Retry::Err(Error::from(e).into())
    }
}

impl<E: From<Error>> From<sealfs_seal::SealError> for Retry<E> {
    fn from(e: sealfs_seal::SealError) -> Retry<E> {
        Retry::Err(Error::from(e).into())
    }
}

impl From<Stop> for Retry<Stop> {
    fn from(s: Stop) -> Retry<Stop> {
        Retry::Err(s)
    }
}

impl Retry {
    /// The same outcome for a change whose error type is `E`.
    pub(crate) fn widen<E: From<Error>>(self) -> Retry<E> {
        match self {
            Retry::Err(e) => Retry::Err(e.into()),
            Retry::LogFull => Retry::LogFull,
        }
    }
}

/// A step that cannot wait inside a change that may.
impl From<Retry> for Retry<Stop> {
    fn from(r: Retry) -> Retry<Stop> {
        match r {
            Retry::Err(e) => Retry::Err(e.into()),
            Retry::LogFull => Retry::LogFull,
        }
    }
}

/// The journal of a mounted filesystem: the gate, the log writer, the superblock in use
/// and whether a logged change failed to apply. Owns ranks 1 (`Gate`), 10 (`Log`) and 11
/// (`Superblock`) of the lock order ([`crate::sync`]): every logged change holds the gate
/// shared around its table and inode locks and takes the log for one append; a
/// checkpoint holds the gate exclusively and the table shared while it encodes, then the
/// log and the superblock (in that order) while it publishes.
pub(crate) struct Journal {
    gate: RwLock<()>,
    log: Mutex<Log>,
    sb: Mutex<SbState>,
    /// A logged change failed to apply: memory and log disagree, no further change.
    failed: AtomicBool,
}

/// Superblock state that checkpoints advance.
struct SbState {
    current: Superblock,
    /// Checkpoints written since mount.
    checkpoints: u64,
}

/// The journal's counters for `sealfs stat`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JournalStats {
    /// Log bytes used since the last checkpoint (the region offset of its end).
    pub(crate) log_used: u64,
    /// Log capacity.
    pub(crate) log_len: u64,
    /// Log records appended since mount.
    pub(crate) records: u64,
    /// Checkpoints written since mount.
    pub(crate) checkpoints: u64,
    /// Superblock generation.
    pub(crate) generation: u64,
}

impl Journal {
    /// The journal of a filesystem just loaded: its log writer and superblock.
    pub(crate) fn new(log: Log, sb: Superblock) -> Journal {
        Journal {
            gate: RwLock::new(Rank::Gate, ()),
            log: Mutex::new(Rank::Log, log),
            sb: Mutex::new(
                Rank::Superblock,
                SbState {
                    current: sb,
                    checkpoints: 0,
                },
            ),
            failed: AtomicBool::new(false),
        }
    }

    /// Appends `op` to the log (durable on return).
    pub(crate) fn commit(&self, dev: &dyn Device, op: &Op) -> Result<(), Retry> {
        self.log.lock().append(dev, op).map(|_| ())
    }

    /// Appends `ops`, each its own record ([`Log::append_all`]).
    pub(crate) fn commit_all(&self, dev: &dyn Device, ops: &[Op]) -> (usize, Result<(), Retry>) {
        self.log.lock().append_all(dev, ops)
    }

    /// Runs one logged change ([`transact`]) under this journal's gate.
    pub(crate) fn transact<T, E: From<Error>>(
        &self,
        checkpoint: impl FnMut() -> Result<()>,
        body: impl FnMut() -> Result<T, Retry<E>>,
    ) -> Result<T, E> {
        transact(&self.gate, checkpoint, body)
    }

    /// Bytes the metadata would take in a checkpoint at most: the last checkpoint's size
    /// plus twice the log bytes since (a create's checkpoint entry is larger than its log
    /// record, but less than twice as large).
    pub(crate) fn projected_meta(&self) -> u64 {
        // Each lock in its own statement: a temporary guard lives to the end of its
        // statement, and holding the superblock while taking the log inverts the order a
        // checkpoint takes them in (crate::sync).
        let log_used = self.log.lock().used();
        let ckpt_used = self.sb.lock().current.ckpt_used;
        ckpt_used + 2 * log_used
    }

    /// Writes `table` (read-locked here, under the exclusive gate) to the inactive
    /// checkpoint area and publishes it with a superblock of format `version`; the log
    /// starts over.
    pub(crate) fn checkpoint(
        &self,
        dev: &dyn Device,
        table: &RwLock<Table>,
        version: u32,
    ) -> Result<()> {
        let _gate = self.gate.write();
        let table = table.read();
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
        sb.current = checkpoint::publish(dev, &blob, version, &mut log, &sb.current)?;
        sb.checkpoints += 1;
        Ok(())
    }

    /// The superblock in use.
    pub(crate) fn superblock(&self) -> Superblock {
        self.sb.lock().current
    }

    /// The journal's counters.
    pub(crate) fn stats(&self) -> JournalStats {
        let (log_used, log_len, records) = {
            let l = self.log.lock();
            (l.tail, l.len, l.appended)
        };
        let sb = self.sb.lock();
        JournalStats {
            log_used,
            log_len,
            records,
            checkpoints: sb.checkpoints,
            generation: sb.current.generation,
        }
    }

    /// A committed change failed to apply (`e`): memory and log disagree, so no further
    /// change is accepted. Returns the error to answer with.
    pub(crate) fn fail(&self, e: ApplyError) -> Error {
        tracing::error!(error = %e, "logged operation failed to apply; refusing further changes");
        self.failed.store(true, Ordering::Relaxed);
        Error::Corrupt(e.0)
    }

    /// Whether a change failed to apply since mount.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// The end of the log's records (tests: whether anything was appended).
    #[cfg(test)]
    pub(crate) fn log_tail(&self) -> u64 {
        self.log.lock().tail
    }
}

/// How many times [`transact`] runs a change that keeps finding the log full.
const TRIES: usize = 3;

/// Runs one logged change: `body` under the shared `gate`, where it checks, commits (the
/// append is durable before it returns) and applies. When the append finds the log full
/// ([`Retry::LogFull`], nothing written), the gate is released, `checkpoint` runs (it takes the gate
/// exclusively and starts the log over) and `body` runs again from the start; after three
/// full logs in a row, `NoSpace`. A change that may wait for a recall has `E` = [`Stop`]:
/// its wait ends it like an error (the gate released), and the caller runs it again later.
pub(crate) fn transact<T, E: From<Error>>(
    gate: &RwLock<()>,
    mut checkpoint: impl FnMut() -> Result<()>,
    mut body: impl FnMut() -> Result<T, Retry<E>>,
) -> Result<T, E> {
    for _ in 0..TRIES {
        let r = {
            let _gate = gate.read();
            body()
        };
        match r {
            Err(Retry::LogFull) => checkpoint()?,
            Err(Retry::Err(e)) => return Err(e),
            Ok(v) => return Ok(v),
        }
    }
    Err(Error::NoSpace.into())
}
