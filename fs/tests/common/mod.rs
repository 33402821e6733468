//! Helpers shared by the core-level tests: a seeded RNG and a logical snapshot of a whole
//! tree taken through the core API. (A test keeps its `Arc<SimDevice>` and mounts a clone:
//! `Arc<D>` is a `Device`.)

#![allow(dead_code)]

use std::collections::BTreeMap;

use sealfs::device::Device;
use sealfs::filesystem::xattr::XattrReply;
use sealfs::filesystem::{mkfs, MkfsOptions};
use sealfs::format::layout::LayoutOptions;
use sealfs::meta::inode::mode;
use sealfs::Filesystem;

/// Records that the calling test skips its checks and why, as the mount tests' `skip`
/// does: a `SKIPPED` line, and one in the file `SEALFS_SKIP_LOG` names (scripts/test.sh).
pub fn skip(why: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string();
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("SEALFS_SKIP_LOG") {
        let open = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        writeln!(open.expect("open SEALFS_SKIP_LOG"), "{test}: {why}")
            .expect("write SEALFS_SKIP_LOG");
    }
}

/// The error a call that may wait for a recall (a [`sealfs::Stop`]) failed with, for tests
/// that expect it to fail: a wait there fails the test.
pub trait Failed {
    /// The error; panics on a wait.
    fn failed(self) -> sealfs::Error;
    /// Its errno; panics on a wait.
    fn errno(&self) -> i32;
}

impl Failed for sealfs::Stop {
    fn failed(self) -> sealfs::Error {
        match self {
            sealfs::Stop::Failed(e) => e,
            sealfs::Stop::Wait(w) => panic!("expected an error, got a wait: {w:?}"),
        }
    }

    fn errno(&self) -> i32 {
        match self {
            sealfs::Stop::Failed(e) => e.errno(),
            sealfs::Stop::Wait(w) => panic!("expected an error, got a wait: {w:?}"),
        }
    }
}

/// Makes a filesystem on `dev` with region sizes `layout` (a small log or checkpoint area
/// makes checkpoints and a full metadata area easy to reach).
pub fn mkfs_layout(dev: &dyn Device, layout: LayoutOptions) {
    mkfs(
        dev,
        MkfsOptions {
            layout,
            ..Default::default()
        },
    )
    .unwrap();
}

/// splitmix64: small, seedable, good enough for workloads.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let seed = self.next();
        (0..n)
            .map(|i| (seed.wrapping_mul(i as u64 + 1) >> 13) as u8)
            .collect()
    }
}

/// One inode as seen through the API (timestamps excluded: in-memory time updates are
/// persisted lazily, see docs/design.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub flags: u32,
    pub target: Vec<u8>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub content: Vec<u8>,
}

/// Every path in the tree and what it names.
pub type Tree = BTreeMap<Vec<u8>, Entry>;

/// Walks the whole tree through the core API.
pub fn snapshot(fs: &Filesystem) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![(1u64, Vec::new())];
    while let Some((dir, path)) = stack.pop() {
        let mut names = Vec::new();
        fs.readdir(dir, 0, |e| {
            if e.name != b"." && e.name != b".." {
                names.push(e.name);
            }
            false
        })
        .unwrap();
        for name in names {
            let st = fs.lookup(dir, &name).unwrap();
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(&name);
            let kind = st.attr.mode & mode::S_IFMT;
            let target = if kind == mode::S_IFLNK {
                fs.readlink(st.ino).unwrap()
            } else {
                Vec::new()
            };
            let content = if kind == mode::S_IFREG {
                fs.read(st.ino, 0, st.attr.size as u32).unwrap()
            } else {
                Vec::new()
            };
            let mut xattrs = BTreeMap::new();
            if let Ok(XattrReply::Data(list)) = fs.listxattr(st.ino, 1 << 20) {
                for n in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
                    if let Ok(XattrReply::Data(v)) = fs.getxattr(st.ino, n, 1 << 20) {
                        xattrs.insert(n.to_vec(), v);
                    }
                }
            }
            if kind == mode::S_IFDIR {
                stack.push((st.ino, p.clone()));
            }
            out.insert(
                p,
                Entry {
                    ino: st.ino,
                    mode: st.attr.mode,
                    uid: st.attr.uid,
                    gid: st.attr.gid,
                    nlink: st.attr.nlink,
                    size: st.attr.size,
                    flags: st.attr.flags,
                    target,
                    xattrs,
                    content,
                },
            );
        }
    }
    out
}
