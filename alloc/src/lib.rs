//! `sealfs-alloc`: the extent allocator that decides which blocks of a DAX device hold what.
//!
//! It is a pure in-memory map of free blocks over `[0, total_blocks)`. It must not do I/O,
//! read clocks, use `unsafe` or panic on any input: persistence and crash recovery belong to the
//! filesystem core, which rebuilds this map at mount time by replaying
//! [`Allocator::mark_used`] for every extent it finds in use.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod allocator;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

pub use allocator::Allocator;

/// A run of consecutive blocks `[start, start + len)`. Valid extents have `len > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Extent {
    /// First block of the run.
    pub start: u64,
    /// Number of blocks in the run.
    pub len: u64,
}

impl Extent {
    /// One past the last block (`start + len`).
    ///
    /// Saturates at `u64::MAX` rather than panicking, so a nonsensical extent built by a caller
    /// still yields a value that the allocator then rejects as out of range.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// Placement preferences for [`Allocator::allocate`]. `Hint::default()` means no preference.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hint {
    /// Block the caller would like the allocation to start at (e.g. the block right after
    /// the file's last extent, so sequential writes extend one extent). None = no preference.
    pub goal: Option<u64>,
    /// Preferred alignment of the start, in blocks (e.g. 512 = 2 MiB with 4 KiB blocks).
    /// 0 or 1 = none. A preference, not a requirement (see allocate_aligned for the strict form).
    pub align: u64,
}

/// Why an allocator operation was refused. The allocator is unchanged whenever one is returned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    /// Fewer free blocks exist than were asked for.
    #[error("no space: {wanted} blocks wanted, {free} free")]
    NoSpace {
        /// Blocks asked for.
        wanted: u64,
        /// Blocks free at the time of the request.
        free: u64,
    },
    /// The extent reaches past the end of the device (or past `u64::MAX`).
    #[error("blocks {start}..{end} are outside the device ({total} blocks)")]
    OutOfRange {
        /// First block of the offending extent.
        start: u64,
        /// One past its last block (saturated at `u64::MAX`).
        end: u64,
        /// Size of the device in blocks.
        total: u64,
    },
    /// [`Allocator::mark_used`] was given an extent with a block that is not free.
    #[error("blocks {start}..{end} overlap blocks already in use")]
    AlreadyUsed {
        /// First block of the offending extent.
        start: u64,
        /// One past its last block.
        end: u64,
    },
    /// [`Allocator::free`] was given an extent with a block that is already free.
    #[error("blocks {start}..{end} overlap blocks already free")]
    AlreadyFree {
        /// First block of the offending extent.
        start: u64,
        /// One past its last block.
        end: u64,
    },
    /// The extent has length zero.
    #[error("empty extent at block {start}")]
    Empty {
        /// Start of the empty extent.
        start: u64,
    },
}
