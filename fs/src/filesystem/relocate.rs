//! Relocation: moving a file's blocks to new device blocks (defragmentation, and laying a
//! range out in 2 MiB-aligned runs for windows on a 2 MiB device).
//!
//! Relocation is an extent-map change like any other: it asks the seal state machine
//! first, and a sealed or pinned range is never moved (refused, never recalled — tidying
//! up is not worth revoking anyone). Data is copied and made durable before the `Remap`
//! records that switch the map are logged; the old blocks are freed only after.

use sealfs_alloc::Extent;
use sealfs_seal::ChangeKind;

use super::{Error, Filesystem, Result};
use crate::format::record::Op;

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
    /// The device extents of a regular file: (file block, data block, length), and the
    /// device byte offset of data block 0 (for `sealfs extents`, root only).
    pub fn extents(&self, ino: u64) -> Result<Vec<(u64, u64, u64)>> {
        let n = self.node(ino)?;
        let g = n.read();
        Ok(g.extents()
            .ok_or(Error::Invalid("not a regular file"))?
            .iter()
            .collect())
    }

    /// Makes every fragmented, unsealed regular file contiguous where a free run allows.
    pub fn defrag(&self) -> Result<DefragReport> {
        self.check_writable()?;
        let inos: Vec<u64> = {
            let t = self.table.read();
            let mut v: Vec<u64> = t.inodes.keys().copied().collect();
            v.sort_unstable();
            v
        };
        let mut rep = DefragReport::default();
        for ino in inos {
            match self.with_log_room(|| self.defrag_file(ino)) {
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

    /// `None`: not a regular file; `Some(moved)`.
    fn defrag_file(&self, ino: u64) -> Result<Option<bool>> {
        let _gate = self.gate.read();
        let n = self.node(ino)?;
        let mut g = n.write();
        let Some(m) = g.extents() else {
            return Ok(None);
        };
        let runs: Vec<(u64, u64, u64)> = m.iter().collect();
        // Contiguous already: runs follow each other on the device.
        if runs.windows(2).all(|w| w[0].1 + w[0].2 == w[1].1) {
            return Ok(Some(false));
        }
        let first = runs[0].0;
        let (last_f, _, last_l) = runs[runs.len() - 1];
        self.seal_gate(
            &g,
            ChangeKind::Relocate,
            first * self.bs,
            (last_f + last_l) * self.bs,
        )?;
        let total: u64 = runs.iter().map(|r| r.2).sum();
        let target = self
            .alloc
            .lock()
            .allocate_aligned(total, 1)
            .ok_or(Error::NoSpace)?;
        let mut ops = Vec::with_capacity(runs.len());
        let mut dst = target.start;
        let copy = (|| -> Result<()> {
            let mut buf = vec![0u8; (1 << 20).min(total * self.bs) as usize];
            for &(f, d, l) in &runs {
                let mut done = 0;
                while done < l * self.bs {
                    let k = (l * self.bs - done).min(buf.len() as u64) as usize;
                    self.dev
                        .read(self.layout.block_offset(d) + done, &mut buf[..k])?;
                    self.dev
                        .write(self.layout.block_offset(dst) + done, &buf[..k])?;
                    done += k as u64;
                }
                ops.push(Op::Remap {
                    ino,
                    fblock: f,
                    dblock: dst,
                    len: l,
                });
                dst += l;
            }
            crate::persist::persist(
                &*self.dev,
                self.layout.block_offset(target.start),
                total * self.bs,
            )
        })();
        if let Err(e) = copy {
            let _ = self.alloc.lock().free(target);
            return Err(e);
        }
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = self.commit(op) {
                // Runs not yet switched give their reserved blocks back.
                let mut a = self.alloc.lock();
                for op in &ops[i..] {
                    if let Op::Remap { dblock, len, .. } = op {
                        let _ = a.free(Extent {
                            start: *dblock,
                            len: *len,
                        });
                    }
                }
                return Err(e);
            }
            self.apply_inode(&mut g, op)?;
        }
        Ok(Some(true))
    }
}
