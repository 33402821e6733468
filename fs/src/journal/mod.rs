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

use crate::error::{Error, Result};
use crate::sync::RwLock;

/// Why a logged change did not finish: a real error, or the log had no room for its
/// record (nothing written; [`transact`] checkpoints and runs it again). Internal to the
/// core: `LogFull` never reaches a caller.
#[derive(Debug)]
pub(crate) enum Retry {
    /// A real error, returned as it is.
    Err(Error),
    /// The log is full: checkpoint and retry.
    LogFull,
}

impl From<Error> for Retry {
    fn from(e: Error) -> Retry {
        Retry::Err(e)
    }
}

impl From<crate::format::FormatError> for Retry {
    fn from(e: crate::format::FormatError) -> Retry {
        Retry::Err(e.into())
    }
}

impl From<std::io::Error> for Retry {
    fn from(e: std::io::Error) -> Retry {
        Retry::Err(e.into())
    }
}

impl From<sealfs_seal::SealError> for Retry {
    fn from(e: sealfs_seal::SealError) -> Retry {
        Retry::Err(e.into())
    }
}

/// How many times [`transact`] runs a change that keeps finding the log full.
const TRIES: usize = 3;

/// Runs one logged change: `body` under the shared `gate`, where it checks, commits (the
/// append is durable before it returns) and applies. When the append finds the log full
/// ([`Retry::LogFull`], nothing written), the gate is released, `checkpoint` runs (it takes the gate
/// exclusively and starts the log over) and `body` runs again from the start; after three
/// full logs in a row, `NoSpace`.
pub(crate) fn transact<T>(
    gate: &RwLock<()>,
    mut checkpoint: impl FnMut() -> Result<()>,
    mut body: impl FnMut() -> Result<T, Retry>,
) -> Result<T> {
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
    Err(Error::NoSpace)
}
