//! sealfs: a filesystem for DAX devices (persistent memory, CXL memory) whose extent maps
//! can be sealed, served over FUSE.
//!
//! Layers, bottom up; a module imports only from layers below it (`sync` and `error` are
//! used throughout; `error` sits above `format` and `meta`, whose error types it wraps):
//! `format` (pure on-media codecs: layout, superblock, log header, log records; imports
//! nothing of sealfs); `meta` (in-memory state and the apply function shared by live
//! operations and replay); `device` (image file, device DAX, simulated) with
//! `device::persist`, the only place that flushes, fences or orders durability;
//! `journal` (the log writer, the checkpoint codec and publish, replay, the transaction
//! helper); `filesystem` (the transport-free core); `fsck`; `fuse` (the thin adapter);
//! `mounts` (the mount table); `cli`.

#![warn(missing_docs)]
// Input from users, disks and other processes must never panic the daemon.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod abi;
pub mod cli;
pub mod device;
pub mod error;
pub mod filesystem;
pub mod format;
pub mod fsck;
pub mod fuse;
pub mod ioctl;
// The fuzz harness asserts its oracles by panicking, as a fuzz target must. Only with the
// `fuzzing` feature (fuzz/ and the core's tests turn it on).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod fuzzing;
pub mod journal;
pub mod meta;
pub mod mounts;
pub mod park;
pub mod sync;
pub mod vhost;
pub mod window;

pub use error::{Error, Result};
pub use filesystem::{Ctx, Filesystem, Stat};
