//! Ranked locks: the core's mutexes and read-write locks, each with a place in one global
//! acquisition order, checked on every acquisition.
//!
//! # The lock order
//!
//! A thread may take a lock only while every lock it already holds has a lower [`Rank`]
//! (inode locks, the one rank held several times at once, excepted among themselves: a
//! rename's checks lock the moved inode and the one it replaces, and only under the table
//! lock, which serialises those who lock more than one inode; a second inode lock without
//! the table lock counts as an inversion). The order, first to last:
//!
//! | rank | lock | held for |
//! |---|---|---|
//! | 1 `Gate` | the journal's gate | shared by every mutation, exclusive by a checkpoint |
//! | 2 `Table` | the namespace's inode table | shared to find an inode, exclusive for namespace changes |
//! | 3 `Inode` | each inode's lock | data I/O on different files proceeds in parallel |
//! | 4 `SealTable` | the seal state machine | a gate decision, a seal, a release |
//! | 5 `Recalls` | holders waiting to be sent POLLPRI | a push or a drain |
//! | 6 `WindowMaps` | live window mappings | a SETUPMAPPING / REMOVEMAPPING |
//! | 7 `WindowHolds` | quarantine holds | freeing blocks, a holder's exit |
//! | 8 `WindowHosts` | one pidfd per window host process | a lookup or an insert |
//! | 9 `Alloc` | the block allocator | an allocation or a free |
//! | 10 `Log` | the log's append position | one append (durable before it unlocks) |
//! | 11 `Superblock` | the superblock in use | a checkpoint's publish, a read of counters |
//! | 12 `Handles` | open file descriptions | an insert, a lookup, a removal |
//! | 13 `SealHook` | the transport's notifier | a copy of it (it is called unlocked) |
//!
//! Each subsystem of the core owns a part of this order and says which in its
//! documentation: the journal (`Journal`: 1, 10, 11), the namespace (`Namespace`: 2, 3),
//! the seals (`SealCtl`: 4, 5, 13), the windows (`Windows`: 6, 8), the space (`Space`: 7,
//! 9) and the open file descriptions (`Handles`: 12).
//!
//! The transport's own locks (FUSE adapter, parked requests) are outside this order: the
//! core calls the transport (the seal hook) with no ranked lock held, and the transport
//! calls the core with none of its own held.
//!
//! # Checking
//!
//! Every thread keeps a count of the ranks it holds (a thread-local array; a few
//! nanoseconds per acquisition). Taking a lock out of order is a bug that can deadlock
//! under the right interleaving even when a test never hits it; the check reports it the
//! first time the *order* occurs, whatever the interleaving. With debug assertions, in unit
//! tests and with the `strict-locks` feature (the integration tests and the stress tool
//! build with it) it panics, naming both locks; otherwise it logs an error once per pair
//! and goes on.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A lock's place in the acquisition order (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Rank {
    /// The journal's gate.
    Gate = 1,
    /// The namespace's inode table.
    Table = 2,
    /// One inode's lock (several may be held, in table-lock-protected order).
    Inode = 3,
    /// The seal state machine.
    SealTable = 4,
    /// Holders waiting to be sent POLLPRI.
    Recalls = 5,
    /// Live window mappings.
    WindowMaps = 6,
    /// Quarantine holds.
    WindowHolds = 7,
    /// The pidfds of window host processes.
    WindowHosts = 8,
    /// The block allocator.
    Alloc = 9,
    /// The log writer.
    Log = 10,
    /// The superblock in use.
    Superblock = 11,
    /// Open file descriptions.
    Handles = 12,
    /// The transport's seal notifier.
    SealHook = 13,
}

const RANKS: usize = 14;
// One bit per rank in `Held::mask`.
const _: () = assert!(RANKS < 16);

impl Rank {
    fn from_index(i: usize) -> Option<Rank> {
        use Rank::*;
        [
            Gate,
            Table,
            Inode,
            SealTable,
            Recalls,
            WindowMaps,
            WindowHolds,
            WindowHosts,
            Alloc,
            Log,
            Superblock,
            Handles,
            SealHook,
        ]
        .into_iter()
        .find(|r| *r as usize == i)
    }
}

/// What one thread holds: a count per rank, and a bit per rank held at least once, so
/// that the check of an acquisition is one shift rather than a scan of every rank above.
#[derive(Clone, Copy)]
struct Held {
    count: [u8; RANKS],
    mask: u16,
}

thread_local! {
    static HELD: Cell<Held> = const { Cell::new(Held { count: [0; RANKS], mask: 0 }) };
}

/// Whether an out-of-order acquisition panics (tests, debug builds, `strict-locks`, or
/// after [`panic_on_violation`]) or is logged.
static STRICT: AtomicBool =
    AtomicBool::new(cfg!(any(debug_assertions, test, feature = "strict-locks")));

/// Makes an out-of-order acquisition panic (`true`) or log an error (`false`) from now on,
/// whatever the build (tests of the core turn it on).
pub fn panic_on_violation(on: bool) {
    STRICT.store(on, Ordering::Relaxed);
}

/// Checks that `rank` may be taken now and records it as held.
fn acquire(rank: Rank) {
    let r = rank as usize;
    HELD.with(|h| {
        let mut held = h.get();
        let first = r + usize::from(rank == Rank::Inode);
        if held.mask >> first != 0 {
            // The highest rank held, which is at or above `first`.
            let top = 15 - held.mask.leading_zeros() as usize;
            violation(rank, Rank::from_index(top).unwrap_or(rank));
        }
        // A second inode lock only under the table lock, which serialises whoever locks
        // more than one inode (rename).
        if rank == Rank::Inode && held.count[r] > 0 && held.mask & (1 << Rank::Table as u16) == 0 {
            violation(rank, rank);
        }
        // Counted only once the checks passed: a panicking check leaves nothing held.
        held.count[r] = held.count[r].saturating_add(1);
        held.mask |= 1 << r;
        h.set(held);
    });
}

fn release(rank: Rank) {
    let r = rank as usize;
    HELD.with(|h| {
        let mut held = h.get();
        held.count[r] = held.count[r].saturating_sub(1);
        if held.count[r] == 0 {
            held.mask &= !(1 << r);
        }
        h.set(held);
    });
}

#[cold]
fn violation(taking: Rank, holding: Rank) {
    let msg = format!("lock order violated: taking {taking:?} while holding {holding:?}");
    if STRICT.load(Ordering::Relaxed) {
        // Only where asked for (tests, debug builds, strict-locks): a bug in the daemon's
        // own lock order, never something input can cause.
        #[allow(clippy::panic)]
        {
            panic!("{msg}");
        }
    }
    static REPORTED: std::sync::Mutex<Vec<(Rank, Rank)>> = std::sync::Mutex::new(Vec::new());
    let mut seen = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.contains(&(taking, holding)) {
        seen.push((taking, holding));
        tracing::error!("{msg} (a deadlock is possible; please report)");
    }
}

/// The ranks the calling thread holds now, lowest first (for tests and messages).
pub fn held_ranks() -> Vec<Rank> {
    let held = HELD.with(|h| h.get());
    (0..RANKS)
        .filter(|&i| held.count[i] > 0)
        .filter_map(Rank::from_index)
        .collect()
}

/// A mutex with a rank.
pub struct Mutex<T> {
    rank: Rank,
    inner: parking_lot::Mutex<T>,
}

/// A held [`Mutex`].
pub struct MutexGuard<'a, T> {
    rank: Rank,
    inner: parking_lot::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A mutex at `rank` holding `value`.
    pub const fn new(rank: Rank, value: T) -> Mutex<T> {
        Mutex {
            rank,
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// Locks, checking the order first.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        acquire(self.rank);
        MutexGuard {
            rank: self.rank,
            inner: self.inner.lock(),
        }
    }

    /// The value, without locking (exclusive access proves nobody holds it).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutex")
            .field("rank", &self.rank)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RwLock")
            .field("rank", &self.rank)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        release(self.rank);
    }
}

/// A read-write lock with a rank. Taking it shared twice on one thread counts as an
/// inversion too: a writer queued between the two would deadlock them.
pub struct RwLock<T> {
    rank: Rank,
    inner: parking_lot::RwLock<T>,
}

/// A [`RwLock`] held shared.
pub struct RwLockReadGuard<'a, T> {
    rank: Rank,
    inner: parking_lot::RwLockReadGuard<'a, T>,
}

/// A [`RwLock`] held exclusively.
pub struct RwLockWriteGuard<'a, T> {
    rank: Rank,
    inner: parking_lot::RwLockWriteGuard<'a, T>,
}

impl<T> RwLock<T> {
    /// A lock at `rank` holding `value`.
    pub const fn new(rank: Rank, value: T) -> RwLock<T> {
        RwLock {
            rank,
            inner: parking_lot::RwLock::new(value),
        }
    }

    /// Locks shared, checking the order first.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        acquire(self.rank);
        RwLockReadGuard {
            rank: self.rank,
            inner: self.inner.read(),
        }
    }

    /// Locks exclusively, checking the order first.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        acquire(self.rank);
        RwLockWriteGuard {
            rank: self.rank,
            inner: self.inner.write(),
        }
    }

    /// The value, without locking.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

/// The lock of one inode: a [`RwLock`] at [`Rank::Inode`] whose rank is its type's rather
/// than a field. There is one per file, and a rank byte made every inode's allocation a
/// 192-byte malloc chunk instead of 176 (16 bytes a file).
pub struct InodeLock<T> {
    inner: parking_lot::RwLock<T>,
}

impl<T> InodeLock<T> {
    /// An inode lock holding `value`.
    pub const fn new(value: T) -> InodeLock<T> {
        InodeLock {
            inner: parking_lot::RwLock::new(value),
        }
    }

    /// Locks shared, checking the order first.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        acquire(Rank::Inode);
        RwLockReadGuard {
            rank: Rank::Inode,
            inner: self.inner.read(),
        }
    }

    /// Locks exclusively, checking the order first.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        acquire(Rank::Inode);
        RwLockWriteGuard {
            rank: Rank::Inode,
            inner: self.inner.write(),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for InodeLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InodeLock")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        release(self.rank);
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        release(self.rank);
    }
}

/// A condition variable for ranked mutexes. The mutex counts as held while waiting (the
/// thread takes nothing else meanwhile).
#[derive(Default)]
pub struct Condvar(parking_lot::Condvar);

impl Condvar {
    /// A condition variable.
    pub const fn new() -> Condvar {
        Condvar(parking_lot::Condvar::new())
    }

    /// Waits at most `timeout` for a notification, unlocking `guard` meanwhile.
    pub fn wait_for<T>(&self, guard: &mut MutexGuard<'_, T>, timeout: Duration) {
        self.0.wait_for(&mut guard.inner, timeout);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_is_accepted_and_counted() {
        let gate = RwLock::new(Rank::Gate, ());
        let table = RwLock::new(Rank::Table, ());
        let a = RwLock::new(Rank::Inode, 1);
        let b = RwLock::new(Rank::Inode, 2);
        let log = Mutex::new(Rank::Log, 0u64);
        {
            let _g = gate.read();
            let _t = table.write();
            let _a = a.write();
            let _b = b.read();
            *log.lock() += 1;
            assert_eq!(held_ranks(), vec![Rank::Gate, Rank::Table, Rank::Inode]);
        }
        assert!(held_ranks().is_empty());
    }

    #[test]
    fn inversion_panics_naming_both_locks() {
        let log = Mutex::new(Rank::Log, ());
        let sb = Mutex::new(Rank::Superblock, ());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _s = sb.lock();
            let _l = log.lock();
        }));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert_eq!(
            msg,
            "lock order violated: taking Log while holding Superblock"
        );
    }

    #[test]
    fn two_inodes_only_under_the_table() {
        let table = RwLock::new(Rank::Table, ());
        let a = RwLock::new(Rank::Inode, 1);
        let b = RwLock::new(Rank::Inode, 2);
        {
            let _t = table.write();
            let _a = a.write();
            let _b = b.read();
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _a = a.write();
            let _b = b.read();
        }));
        assert!(r.is_err());
        assert!(held_ranks().is_empty());
    }

    #[test]
    fn shared_twice_is_an_inversion() {
        let gate = RwLock::new(Rank::Gate, ());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _a = gate.read();
            let _b = gate.read();
        }));
        assert!(r.is_err());
    }
}
