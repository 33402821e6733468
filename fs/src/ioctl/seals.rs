//! The seal and window ioctls, the extent list and defrag: decode (`crate::abi`), call the
//! core, encode the answer.
//!
//! A SEAL or SET_IMMUTABLE with POPULATE and a SETUPMAPPING can meet a recall while they
//! allocate holes, DEFRAG while it relocates: their handlers return an [`Attempt`], whose
//! [`crate::error::Stop::Wait`] the transport parks (their table entries are
//! `Handler::MayPark`).

use super::{want_out, Invalidation, Reply, Request};
use crate::abi;
use crate::error::{Attempt, Error, Result};
use crate::filesystem::seals::{Populate, SealMode};
use crate::filesystem::windows::{DevExtent, MappedRange};
use crate::filesystem::Filesystem;

fn need_fh(r: &Request<'_>) -> Result<u64> {
    if r.fh == 0 {
        return Err(Error::BadFd);
    }
    Ok(r.fh)
}

/// A device extent as the ABI's (file offset, device offset, length).
fn triple(e: &DevExtent) -> abi::Triple {
    (e.foffset, e.doffset, e.len)
}

/// `SEALFS_IOC_SEAL` (with `SEALFS_SEAL_REPLACE`: the seal that replaces this
/// descriptor's others).
pub fn seal(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Attempt<()> {
    let a = abi::SealArg::decode(r.input)?;
    let populate = if a.flags & abi::SEAL_POPULATE != 0 {
        Populate::Fill
    } else {
        // Without population a seal changes no attribute the kernel caches.
        out.attrs_kept = true;
        Populate::No
    };
    let mode = if a.flags & abi::SEAL_BREAKABLE != 0 {
        SealMode::Breakable
    } else {
        SealMode::Temporary
    };
    let fh = need_fh(r)?;
    if a.flags & abi::SEAL_REPLACE != 0 {
        fs.seal_replacing(fh, a.offset, a.length, mode, populate, r.ctx)
    } else {
        fs.seal(fh, a.offset, a.length, mode, populate, r.ctx)
    }
}

/// `SEALFS_IOC_UNSEAL`.
pub fn unseal(fs: &Filesystem, r: &Request<'_>, _out: &mut Reply) -> Result<()> {
    let a = abi::SealArg::decode(r.input)?;
    fs.unseal(need_fh(r)?, a.offset, a.length)
}

/// `SEALFS_IOC_REVOKE`.
pub fn revoke(fs: &Filesystem, r: &Request<'_>, _out: &mut Reply) -> Result<()> {
    let a = abi::SealArg::decode(r.input)?;
    if a.flags != 0 {
        return Err(Error::Invalid("revoke takes no flags"));
    }
    fs.revoke_seals(r.ino, a.offset, a.length, r.ctx)?;
    Ok(())
}

/// `SEALFS_IOC_GET_SEALS`.
pub fn get_seals(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Result<()> {
    want_out(r, abi::SEAL_LIST_SIZE)?;
    let now = fs.clock_ns();
    let mut list: Vec<abi::SealInfoArg> = Vec::new();
    if fs.sealed_map(r.ino)? {
        list.push(abi::SealInfoArg {
            offset: 0,
            length: 0,
            kind: abi::KIND_IMMUTABLE,
            state: abi::STATE_ACTIVE,
            pid: 0,
            remaining_ms: 0,
        });
    }
    for s in fs.seals_of(r.ino) {
        let (state, remaining_ms) = match s.state {
            sealfs_seal::SealState::Active => (abi::STATE_ACTIVE, 0),
            sealfs_seal::SealState::Recalled { deadline } => (
                abi::STATE_RECALLED,
                deadline.saturating_sub(now) / 1_000_000,
            ),
        };
        list.push(abi::SealInfoArg {
            offset: s.range.start,
            length: if s.range.end == u64::MAX {
                0
            } else {
                s.range.end - s.range.start
            },
            kind: match s.kind {
                sealfs_seal::SealKind::Temporary => abi::KIND_TEMPORARY,
                sealfs_seal::SealKind::Breakable => abi::KIND_BREAKABLE,
                sealfs_seal::SealKind::MappingPin => abi::KIND_PIN,
            },
            state,
            pid: s.pid,
            remaining_ms,
        });
    }
    out.data = abi::encode_seal_list(&list);
    Ok(())
}

/// `SEALFS_IOC_SET_IMMUTABLE`.
pub fn set_immutable(fs: &Filesystem, r: &Request<'_>, _out: &mut Reply) -> Attempt<()> {
    let populate = if abi::decode_immutable(r.input)? {
        Populate::Fill
    } else {
        Populate::No
    };
    fs.set_sealed_map(r.ino, populate, r.ctx)
}

/// `SEALFS_IOC_CLEAR_IMMUTABLE`.
pub fn clear_immutable(fs: &Filesystem, r: &Request<'_>, _out: &mut Reply) -> Result<()> {
    abi::decode_immutable(r.input)?;
    fs.clear_sealed_map(r.ino, r.ctx)
}

/// `SEALFS_IOC_SETUPMAPPING`: a live slot is replaced (virtio-fs semantics), and the pages
/// its writable mapping wrote under are dropped as REMOVEMAPPING drops them.
pub fn setup_mapping(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Attempt<()> {
    want_out(r, abi::SETUPMAPPING_SIZE)?;
    let m = abi::SetupMapping::decode(r.input)?;
    let mut replaced = Vec::new();
    let ext = fs.replace_mapping(
        need_fh(r)?,
        m.foffset,
        m.len,
        m.flags,
        m.moffset,
        r.ctx,
        &mut replaced,
    );
    // The replaced mapping is gone whatever the outcome: so are its stale pages.
    for old in replaced {
        drop_written(out, old);
    }
    let ext = ext?;
    let triples: Vec<abi::Triple> = ext.iter().map(triple).collect();
    out.data = abi::encode_mapping_answer(r.input, &triples)?;
    Ok(())
}

/// The page-cache pages under a writable window are stale: the transport drops them.
fn drop_written(out: &mut Reply, m: MappedRange) {
    if m.write {
        out.invalidate.push(Invalidation {
            ino: m.ino,
            offset: m.foffset,
            len: m.len,
        });
    }
}

/// `SEALFS_IOC_REMOVEMAPPING`: the pages a writable window wrote under are dropped.
pub fn remove_mapping(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Result<()> {
    let fh = need_fh(r)?;
    let slots: Vec<u64> = abi::decode_ranges(r.input)?.iter().map(|r| r.0).collect();
    // All or nothing: one bad entry removes none.
    for m in fs.remove_mappings(fh, &slots)? {
        drop_written(out, m);
    }
    Ok(())
}

/// `SEALFS_IOC_FLUSHMAPPING`: the pages under each writable window named are dropped (those
/// before a bad entry too).
pub fn flush_mapping(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Result<()> {
    let fh = need_fh(r)?;
    for (moffset, _len) in abi::decode_ranges(r.input)? {
        let m = fs
            .mapping(fh, moffset)
            .ok_or(Error::Invalid("no mapping at that offset"))?;
        drop_written(out, m);
    }
    Ok(())
}

/// `SEALFS_IOC_GET_RECALLS`.
pub fn get_recalls(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Result<()> {
    want_out(r, abi::RANGES_SIZE)?;
    let v: Vec<(u64, u64)> = fs
        .recalled_mappings(need_fh(r)?)
        .iter()
        .map(|m| (m.moffset, m.len))
        .collect();
    let mut b = abi::encode_ranges(&v);
    if v.is_empty() {
        b[..4].copy_from_slice(&0u32.to_le_bytes());
    }
    out.data = b;
    Ok(())
}

/// `SEALFS_IOC_EXTENTS` (the core refuses anyone but root).
pub fn extents(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Result<()> {
    want_out(r, abi::EXTENT_LIST_SIZE)?;
    let start = abi::decode_extent_start(r.input)?;
    let all: Vec<abi::Triple> = fs
        .device_extents(r.ino, start, r.ctx)?
        .iter()
        .map(triple)
        .collect();
    out.data = abi::encode_extent_list(start, &all, all.len());
    Ok(())
}

/// `SEALFS_IOC_DEFRAG` (the core refuses anyone but root).
pub fn defrag(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Attempt<()> {
    want_out(r, abi::DEFRAG_SIZE)?;
    let d = fs.defrag(r.ctx)?;
    out.data = abi::encode_defrag(d.files, d.moved, d.sealed, d.no_space);
    Ok(())
}
