//! In-memory metadata: inodes, directories, extent maps, and the apply function shared by
//! live operations and log replay. No I/O here.

pub mod check;
pub mod dir;
pub mod extents;
pub mod ino_map;
pub mod inode;
pub mod table;
pub mod validate;

pub use ino_map::{InoMap, InoSet};
pub use inode::{Attr, Body, Inode};
pub use table::{Blocks, Node, Table, ROOT_INO};
