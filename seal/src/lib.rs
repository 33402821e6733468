//! Seal and mapping-pin state machine for sealfs.
//!
//! This crate alone decides whether an *extent-map-changing operation* on an
//! inode may proceed, must wait for a recall, or is refused, and with which
//! errno. It knows seals (temporary, breakable), mapping pins (live DAX
//! window mappings) and, through a flag the caller passes, the persisted
//! immutable extent map.
//!
//! It must not do I/O, read clocks, take locks or use `unsafe`: time is a
//! `u64` nanoseconds argument and every effect (a recall to notify, a seal
//! revoked, seals released) is a return value the filesystem core acts on.
//! It never panics, whatever it is given.
//!
//! The entry point is [`SealTable`]:
//!
//! ```
//! use sealfs_seal::{Access, ByteRange, Change, ChangeKind, Config, Decision,
//!                   SealError, SealKind, SealTable};
//!
//! let mut t = SealTable::new(Config::default());
//! let rw = Access { read: true, write: true };
//! t.seal(7, 1, 100, 1000, SealKind::Temporary, ByteRange::WHOLE, rw, 0).unwrap();
//! let punch = Change { kind: ChangeKind::Punch, range: ByteRange::new(0, 4096) };
//! assert_eq!(t.check(7, &punch, false, 1), Decision::Refuse(SealError::Busy));
//! assert_eq!(SealError::Busy.errno(), 26); // ETXTBSY
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod error;
mod range;
mod table;
mod types;

pub use error::SealError;
pub use range::ByteRange;
pub use table::SealTable;
pub use types::{
    Access, Change, ChangeKind, Config, Decision, HolderId, Ino, Pid, Recall, Revoked, SealId,
    SealInfo, SealKind, SealState, Stats, Uid,
};
