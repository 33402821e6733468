//! The on-media format: layout, superblocks, log headers and log records (the checkpoint
//! codec, which walks the in-memory table, is `journal::checkpoint`).
//!
//! Everything here is explicit little-endian encoding with named offsets (see
//! `docs/format.md`, which documents every byte). This module turns bytes into values and
//! back and validates them; it never touches a device and never panics on any input. It
//! imports nothing of sealfs but itself: `meta`, `journal` and everything above build on it.

pub mod codec;
pub mod layout;
pub mod log_header;
pub mod record;
pub mod superblock;

pub use layout::Layout;
pub use superblock::Superblock;

/// Why some bytes are not a valid sealfs structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The structure ends before its declared end.
    #[error("truncated structure")]
    Truncated,
    /// Wrong magic number: this is not (that part of) a sealfs image.
    #[error("bad magic in {0}")]
    BadMagic(&'static str),
    /// A format version this build does not read.
    #[error("unsupported format version {0}")]
    Version(u32),
    /// Checksum mismatch.
    #[error("checksum mismatch in {0}")]
    Checksum(&'static str),
    /// A field holds a value that cannot be right.
    #[error("invalid {what}: {value}")]
    Invalid {
        /// Which field.
        what: &'static str,
        /// The offending value.
        value: u64,
    },
}

/// crc32c as used by every checksummed structure.
pub fn crc(parts: &[&[u8]]) -> u32 {
    let mut c = 0u32;
    for p in parts {
        c = crc32c::crc32c_append(c, p);
    }
    c
}
