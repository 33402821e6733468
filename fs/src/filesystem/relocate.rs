//! Relocation: moving a file's blocks to new device blocks (defragmentation, and laying a
//! range out in 2 MiB-aligned runs for windows on a 2 MiB device).
//!
//! Relocation is an extent-map change like any other: it asks the seal state machine
//! first, and a sealed or pinned range is never moved (refused, never recalled — tidying
//! up is not worth revoking anyone). Data is copied and made durable before the `Remap`
//! records that switch the map are logged; the old blocks are freed only after.

use sealfs_alloc::Extent;
use sealfs_seal::ChangeKind;

use super::windows::DevExtent;
use super::{Ctx, Error, Filesystem, Result, Retry};
use crate::format::record::{MapExtent, Op};

/// What a defragmentation pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragReport {
    /// Files examined.
    pub files: u64,
    /// Files made contiguous.
    pub moved: u64,
    /// Fragmented files left alone because a seal or mapping pin covers them.
    pub sealed: u64,
    /// Fragmented files left alone for lack of a contiguous free run.
    pub no_space: u64,
}

impl Filesystem {
    /// The runs of a regular file's extent map, in data blocks, sorted by file block.
    pub fn extents(&self, ino: u64) -> Result<Vec<MapExtent>> {
        let node = self.node(ino)?;
        let inode = node.read();
        Ok(inode
            .extents()
            .ok_or(Error::Invalid("not a regular file"))?
            .iter()
            .collect())
    }

    /// The extents of a regular file that end past byte `start`, in bytes at device
    /// addresses — what `SEALFS_IOC_EXTENTS` reports. Root only (EPERM for anyone else,
    /// checked first): device addresses let a caller reach the data of any file.
    pub fn device_extents(&self, ino: u64, start: u64, ctx: Ctx) -> Result<Vec<DevExtent>> {
        ctx.require_root("device addresses are shown to root only")?;
        let bs = self.bs;
        Ok(self
            .extents(ino)?
            .into_iter()
            .filter(|e| (e.fblock + e.len) * bs > start)
            .map(|e| DevExtent {
                foffset: e.fblock * bs,
                doffset: self.layout.block_offset(e.dblock),
                len: e.len * bs,
            })
            .collect())
    }

    /// Moves `[fstart, fend)` (fully mapped) into one run starting at a multiple of `per`
    /// blocks, so file block f lands on a device block congruent to f modulo `per`. Runs
    /// inside [`Filesystem::transact`] (under the gate).
    pub(crate) fn relocate_range(
        &self,
        ino: u64,
        fstart: u64,
        fend: u64,
        per: u64,
    ) -> Result<(), Retry> {
        let node = self.node(ino)?;
        let mut inode = node.write();
        let map = inode
            .extents()
            .ok_or(Error::Invalid("not a regular file"))?;
        let runs: Vec<MapExtent> = map
            .segments(fstart, fend)
            .iter()
            .map(|s| s.mapped())
            .collect::<Option<Vec<_>>>()
            .ok_or(Error::Invalid("range has holes"))?;
        self.seal_gate(
            &inode,
            ChangeKind::Relocate,
            fstart * self.bs,
            fend * self.bs,
        )?;
        let target = self
            .alloc
            .lock()
            .allocate_aligned(fend - fstart, per)
            .ok_or(Error::NoSpace)?;
        let dsts: Vec<u64> = runs
            .iter()
            .map(|r| target.start + (r.fblock - fstart))
            .collect();
        self.move_runs(&mut inode, &runs, &dsts, target)
    }

    /// Copies each run to its new device block, makes the
    /// copies durable, then logs and applies one `Remap` per run. `target` was reserved by the
    /// caller and covers every destination; whatever is not switched is given back.
    fn move_runs(
        &self,
        inode: &mut crate::meta::Inode,
        runs: &[MapExtent],
        dsts: &[u64],
        target: Extent,
    ) -> Result<(), Retry> {
        let ino = inode.ino;
        if let Err(e) = self.copy_runs(runs, dsts, target) {
            self.give_back(&mut self.alloc.lock(), target);
            return Err(e.into());
        }
        // Destination blocks not used by any run (gaps) go back right away.
        let mut used: Vec<Extent> = runs
            .iter()
            .zip(dsts)
            .map(|(r, &d)| Extent {
                start: d,
                len: r.len,
            })
            .collect();
        used.sort_by_key(|e| e.start);
        {
            let mut alloc = self.alloc.lock();
            let mut pos = target.start;
            for e in &used {
                if e.start > pos {
                    self.give_back(
                        &mut alloc,
                        Extent {
                            start: pos,
                            len: e.start - pos,
                        },
                    );
                }
                pos = e.end();
            }
            if pos < target.end() {
                self.give_back(
                    &mut alloc,
                    Extent {
                        start: pos,
                        len: target.end() - pos,
                    },
                );
            }
        }
        for (i, (run, &dst)) in runs.iter().zip(dsts).enumerate() {
            let op = Op::Remap {
                ino,
                fblock: run.fblock,
                dblock: dst,
                len: run.len,
            };
            if let Err(e) = self.commit_inode(inode, &op) {
                let mut alloc = self.alloc.lock();
                for (r, &d) in runs[i..].iter().zip(&dsts[i..]) {
                    self.give_back(
                        &mut alloc,
                        Extent {
                            start: d,
                            len: r.len,
                        },
                    );
                }
                return Err(e);
            }
            self.apply_inode(inode, &op)?;
        }
        Ok(())
    }

    /// Copies each run to its new device block `dsts[i]` and makes `target`, which holds
    /// every destination, durable.
    fn copy_runs(&self, runs: &[MapExtent], dsts: &[u64], target: Extent) -> Result<()> {
        let bs = self.bs;
        let mut buf = vec![0u8; (1u64 << 20).min(target.len * bs) as usize];
        for (
            &MapExtent {
                dblock: d, len: l, ..
            },
            &dst,
        ) in runs.iter().zip(dsts)
        {
            let mut done = 0;
            while done < l * bs {
                let k = (l * bs - done).min(buf.len() as u64) as usize;
                self.dev
                    .read(self.layout.block_offset(d) + done, &mut buf[..k])?;
                self.dev
                    .write(self.layout.block_offset(dst) + done, &buf[..k])?;
                done += k as u64;
            }
        }
        crate::device::persist::persist(
            &*self.dev,
            self.layout.block_offset(target.start),
            target.len * bs,
        )
    }

    /// Makes every fragmented, unsealed regular file contiguous where a free run allows.
    /// Root only (EPERM for anyone else, checked before the mount's writability).
    pub fn defrag(&self, ctx: Ctx) -> Result<DefragReport> {
        ctx.require_root("defrag is for root")?;
        self.check_writable()?;
        let inos: Vec<u64> = {
            let table = self.table.read();
            let mut v: Vec<u64> = table.inodes.keys().copied().collect();
            v.sort_unstable();
            v
        };
        let mut rep = DefragReport::default();
        for ino in inos {
            match self.transact(|| self.defrag_file(ino)) {
                Ok(None) => {}
                Ok(Some(true)) => {
                    rep.files += 1;
                    rep.moved += 1;
                }
                Ok(Some(false)) => rep.files += 1,
                Err(Error::Sealed) | Err(Error::Perm(_)) => {
                    rep.files += 1;
                    rep.sealed += 1;
                }
                Err(Error::NoSpace) => {
                    rep.files += 1;
                    rep.no_space += 1;
                }
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(rep)
    }

    /// `None`: not a regular file; `Some(moved)`. Runs inside [`Filesystem::transact`]
    /// (under the gate).
    fn defrag_file(&self, ino: u64) -> Result<Option<bool>, Retry> {
        let node = self.node(ino)?;
        let mut inode = node.write();
        let Some(map) = inode.extents() else {
            return Ok(None);
        };
        let runs: Vec<MapExtent> = map.iter().collect();
        // Contiguous already: runs follow each other on the device.
        if runs
            .windows(2)
            .all(|w| w[0].dblock + w[0].len == w[1].dblock)
        {
            return Ok(Some(false));
        }
        let first = runs[0].fblock;
        let last = runs[runs.len() - 1];
        self.seal_gate(
            &inode,
            ChangeKind::Relocate,
            first * self.bs,
            (last.fblock + last.len) * self.bs,
        )?;
        let total: u64 = runs.iter().map(|r| r.len).sum();
        let target = self
            .alloc
            .lock()
            .allocate_aligned(total, 1)
            .ok_or(Error::NoSpace)?;
        // Runs are packed one after another in the new extent.
        let mut dsts = Vec::with_capacity(runs.len());
        let mut next = target.start;
        for r in &runs {
            dsts.push(next);
            next += r.len;
        }
        self.move_runs(&mut inode, &runs, &dsts, target)?;
        Ok(Some(true))
    }
}
