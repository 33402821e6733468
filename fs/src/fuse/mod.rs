//! The FUSE adapter: a thin translation layer between fuser requests and the
//! transport-free core (`crate::filesystem`). It decides nothing about files: it converts
//! arguments, calls the core, converts the result (errors through `Error::errno`, the one
//! errno mapping) and replies.
//!
//! * `adapter` — the fuser `Filesystem` implementation, one core call per request;
//! * `atime` — the mount's access-time flags, followed through remounts;
//! * `attr` — attribute, file type and timestamp conversions;
//! * `creds` — caller credentials FUSE does not pass (groups, capabilities);
//! * `options` — the `-o` mount option vocabulary ([`MountConfig`]);
//! * `session` — the fuser configuration and the mount itself.

pub mod adapter;
pub mod atime;
pub mod attr;
pub mod creds;
pub mod options;
pub mod session;

pub use adapter::SealFuse;
pub use options::{CacheMode, MountConfig};
