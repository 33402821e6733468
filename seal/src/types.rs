//! The plain data the seal table takes and returns.
//!
//! Identifiers, seal and change kinds, configuration, and the effect records
//! ([`Decision`], [`Recall`], [`Revoked`], [`SealInfo`]) the filesystem core
//! acts on. No behaviour beyond trivial accessors lives here; it must not
//! decide anything (that is [`SealTable`](crate::SealTable)'s job).

use crate::{ByteRange, SealError};

/// Inode number (the filesystem core's inode id).
pub type Ino = u64;

/// Seal holder: an open file description, identified by its FUSE file handle.
pub type HolderId = u64;

/// Process id of the process that took a seal: shown and logged, never a key (a process
/// id is reused after the process exits, and a seal outlives it in forked children).
pub type Pid = u32;

/// User id of the caller that took a seal: what the per-user limit counts.
pub type Uid = u32;

/// Identity of one seal, unique for the life of a [`SealTable`](crate::SealTable)
/// (assigned in increasing order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SealId(pub u64);

/// What kind of protection a seal gives and how a conflict is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SealKind {
    /// Unbreakable, non-persisted seal: a conflicting change is refused
    /// with `ETXTBSY`. Needs write access to the file handle.
    Temporary,
    /// Breakable seal: a conflicting change recalls it (the holder is
    /// notified and must unseal within the break timeout) and waits; after
    /// the deadline the seal is revoked. Needs read access.
    Breakable,
    /// A live DAX window mapping. Conflicts like [`SealKind::Breakable`];
    /// counted separately in [`Stats::pins`]. Needs read access.
    MappingPin,
}

impl SealKind {
    /// True for kinds a conflicting change recalls rather than is refused by.
    pub const fn is_breakable(self) -> bool {
        matches!(self, SealKind::Breakable | SealKind::MappingPin)
    }
}

/// The kind of an extent-map-changing operation.
///
/// In-place writes to allocated blocks, reads, attribute changes, xattrs,
/// `link` and `rename` that keeps a link are *not* extent-map changes and
/// must not be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Size change: truncate up or down, extending write or fallocate. The
    /// caller passes `[min(old, new), max(old, new))` as the range.
    SizeChange,
    /// The size grows over `[old, new)` (extending write, truncate up, fallocate past
    /// the end) and no block moves: seals conflict (they freeze the size), mapping pins do
    /// not (blocks already past the end of the file stay where they are mapped).
    Extend,
    /// Hole punch of the range.
    Punch,
    /// Zero-range that reallocates blocks in the range.
    ZeroRange,
    /// Allocation into a hole (write or fallocate into a hole) in the range.
    AllocateHole,
    /// Unlink or rename-over of the last link (frees every block at the last
    /// close): conflicts with every seal on the inode whatever the range.
    /// Temporary seals refuse it; breakable seals and pins are recalled but
    /// do not hold it up ([`Decision::Notify`]).
    RemoveLast,
    /// Defragmentation or 2 MiB relocation of the range. A background
    /// optimisation must never break a seal, so *any* overlapping seal or pin
    /// refuses it with `ETXTBSY`; it never recalls.
    Relocate,
}

/// One extent-map-changing operation the core is about to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Change {
    /// What the operation does.
    pub kind: ChangeKind,
    /// The bytes whose mapping it changes (ignored for
    /// [`ChangeKind::RemoveLast`]). An empty range conflicts with nothing.
    pub range: ByteRange,
}

/// The access mode of the file handle a seal is asked for on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Access {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
}

/// Tunables of a [`SealTable`](crate::SealTable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Seals (of every kind, pins included) one holder (open file description)
    /// may hold at once; taking one more fails with `ENOLCK`. `0` forbids
    /// every seal.
    pub max_seals_per_holder: usize,
    /// Seals (of every kind, pins included) one user may hold at once, over
    /// all holders; taking one more fails with `ENOLCK`. Bounds the table's
    /// memory whatever the number of descriptors a user opens or shares.
    pub max_seals_per_user: usize,
    /// Time a recalled holder has to unseal before its seal is revoked, in
    /// nanoseconds.
    pub break_timeout_ns: u64,
}

impl Config {
    /// Default `max_seals` mount option value (per holder).
    pub const DEFAULT_MAX_SEALS_PER_HOLDER: usize = 1024;
    /// Default `max_seals_per_user` mount option value.
    pub const DEFAULT_MAX_SEALS_PER_USER: usize = 16384;
    /// Default `break_timeout` mount option value: 5 s.
    pub const DEFAULT_BREAK_TIMEOUT_NS: u64 = 5_000_000_000;
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_seals_per_holder: Self::DEFAULT_MAX_SEALS_PER_HOLDER,
            max_seals_per_user: Self::DEFAULT_MAX_SEALS_PER_USER,
            break_timeout_ns: Self::DEFAULT_BREAK_TIMEOUT_NS,
        }
    }
}

/// Recall state of a seal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SealState {
    /// Held, not recalled.
    Active,
    /// Recalled by a conflicting change; revoked by
    /// [`SealTable::expire`](crate::SealTable::expire) at `deadline` unless
    /// released first.
    Recalled {
        /// Revocation time, nanoseconds (same clock as the `now` arguments).
        deadline: u64,
    },
}

/// A seal as listed (`GET_SEALS`) or as released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SealInfo {
    /// The seal's identity.
    pub id: SealId,
    /// The sealed inode.
    pub ino: Ino,
    /// Seal kind.
    pub kind: SealKind,
    /// Sealed bytes.
    pub range: ByteRange,
    /// Owning file handle.
    pub holder: HolderId,
    /// Process that took the seal.
    pub pid: Pid,
    /// User that took the seal.
    pub uid: Uid,
    /// The `now` passed when the seal was taken.
    pub since: u64,
    /// Active or recalled.
    pub state: SealState,
}

/// A seal newly put into the recalled state by a
/// [`SealTable::check`](crate::SealTable::check): the core notifies `holder`
/// (`POLLPRI` on its file handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Recall {
    /// The recalled seal.
    pub id: SealId,
    /// Its inode.
    pub ino: Ino,
    /// Its holder, to notify.
    pub holder: HolderId,
    /// Process that took it.
    pub pid: Pid,
    /// [`SealKind::Breakable`] or [`SealKind::MappingPin`].
    pub kind: SealKind,
    /// Its range.
    pub range: ByteRange,
    /// When it will be revoked unless released.
    pub deadline: u64,
}

/// A seal revoked by [`SealTable::expire`](crate::SealTable::expire): the
/// core fences the holder (quarantines blocks it may still map).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Revoked {
    /// The revoked seal.
    pub id: SealId,
    /// Its inode.
    pub ino: Ino,
    /// Its holder, now fenced (`ENOLINK` until released).
    pub holder: HolderId,
    /// Process that took it.
    pub pid: Pid,
    /// [`SealKind::Breakable`] or [`SealKind::MappingPin`].
    pub kind: SealKind,
    /// Its range.
    pub range: ByteRange,
}

/// Answer of [`SealTable::check`](crate::SealTable::check) for one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No seal is in the way: perform the change now.
    Proceed,
    /// The change must fail with this error (`EPERM` or `ETXTBSY`).
    Refuse(SealError),
    /// Breakable seals or pins are in the way: park the operation and check
    /// again when seals on the inode are released or at `deadline`
    /// (after calling [`SealTable::expire`](crate::SealTable::expire)).
    Wait {
        /// Earliest revocation deadline among the conflicting recalled seals.
        /// It may already be `<= now` if `expire` has not been called.
        deadline: u64,
        /// Seals newly recalled by this call (each reported exactly once).
        recall: Vec<Recall>,
    },
    /// Perform the change now, and notify the holders of these newly recalled
    /// breakable seals and pins (each reported exactly once; empty when all
    /// were recalled before). The answer for [`ChangeKind::RemoveLast`]: a
    /// holder keeps its file open, so removing the last name leaves the extent
    /// map as it is until the last close, and nothing waits (the kernel holds
    /// the directory locked while an unlink or rename is outstanding). The
    /// recalled seals are revoked at their deadline unless released before.
    Notify {
        /// Seals newly recalled by this call.
        recall: Vec<Recall>,
    },
}

/// Counters for monitoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Stats {
    /// Temporary and breakable seals currently held (pins excluded).
    pub seals: u64,
    /// Mapping pins currently held.
    pub pins: u64,
    /// Seals put into the recalled state since the table was created.
    pub recalls: u64,
    /// Seals revoked since the table was created.
    pub revocations: u64,
}
