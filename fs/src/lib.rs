//! sealfs: a filesystem for DAX devices (persistent memory, CXL memory) whose extent maps
//! can be sealed, served over FUSE.
//!
//! Layers, bottom up: `device` (image file, device DAX, simulated) and `persist` (the only
//! place that orders durability); `format` (on-media encoding); `meta` (in-memory state
//! and the apply function shared by live operations and replay); `log`; `filesystem` (the
//! transport-free core); `fsck`; `fuse` (the thin adapter); `mounts` (the mount table);
//! `cli`.

pub mod abi;
pub mod cli;
pub mod device;
pub mod error;
pub mod filesystem;
pub mod format;
pub mod fsck;
pub mod fuse;
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod meta;
pub mod mounts;
pub mod sync;
pub mod window;

pub use error::{Error, Result};
pub use filesystem::{Ctx, Filesystem, Stat};
