//! The seal and window ioctls: decode (`crate::abi`), call the core, encode the answer.
//! Returns `None` for commands that are not sealfs's own, so the general dispatch can go on.
//!
//! A SEAL with POPULATE and a SETUPMAPPING can meet a recall while they allocate holes: they
//! return `Error::WouldWait` like any other extent-map change and the adapter parks them.

use super::ioctl::Request;
use crate::abi;
use crate::error::{Error, Result};
use crate::filesystem::Filesystem;

/// Page-cache ranges the adapter must invalidate after a window was flushed or removed:
/// (ino, offset, len).
pub type Invalidate = Vec<(u64, u64, u64)>;

fn need_out(r: &Request<'_>, n: usize) -> Result<()> {
    if (r.out_size as usize) < n {
        return Err(Error::Invalid("ioctl output buffer too small"));
    }
    Ok(())
}

fn need_fh(r: &Request<'_>) -> Result<u64> {
    if r.fh == 0 {
        return Err(Error::BadFd);
    }
    Ok(r.fh)
}

/// Runs one sealfs ioctl; `None` when `r.cmd` is not one.
pub fn dispatch(
    fs: &Filesystem,
    r: &Request<'_>,
    inval: &mut Invalidate,
) -> Option<Result<Vec<u8>>> {
    let out = match r.cmd {
        abi::IOC_SEAL => (|| {
            let a = abi::SealArg::decode(r.input)?;
            let fh = need_fh(r)?;
            fs.seal(
                fh,
                a.offset,
                a.length,
                a.flags & abi::SEAL_BREAKABLE != 0,
                a.flags & abi::SEAL_POPULATE != 0,
                r.ctx,
            )?;
            Ok(Vec::new())
        })(),
        abi::IOC_UNSEAL => (|| {
            let a = abi::SealArg::decode(r.input)?;
            fs.unseal(need_fh(r)?, a.offset, a.length)?;
            Ok(Vec::new())
        })(),
        abi::IOC_REVOKE => (|| {
            let a = abi::SealArg::decode(r.input)?;
            if a.flags != 0 {
                return Err(Error::Invalid("revoke takes no flags"));
            }
            fs.revoke_seals(r.ino, a.offset, a.length, r.ctx)?;
            Ok(Vec::new())
        })(),
        abi::IOC_GET_SEALS => (|| {
            need_out(r, abi::SEAL_LIST_SIZE)?;
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
            Ok(abi::encode_seal_list(&list))
        })(),
        abi::IOC_SET_IMMUTABLE => (|| {
            let populate = abi::decode_immutable(r.input)?;
            fs.set_sealed_map(r.ino, populate, r.ctx)?;
            Ok(Vec::new())
        })(),
        abi::IOC_CLEAR_IMMUTABLE => (|| {
            abi::decode_immutable(r.input)?;
            fs.clear_sealed_map(r.ino, r.ctx)?;
            Ok(Vec::new())
        })(),
        abi::IOC_SETUPMAPPING => (|| {
            need_out(r, abi::SETUPMAPPING_SIZE)?;
            let m = abi::SetupMapping::decode(r.input)?;
            let ext = fs.setup_mapping(need_fh(r)?, m.foffset, m.len, m.flags, m.moffset, r.ctx)?;
            let triples: Vec<(u64, u64, u64)> =
                ext.iter().map(|e| (e.foffset, e.doffset, e.len)).collect();
            abi::encode_mapping_answer(r.input, &triples)
        })(),
        abi::IOC_REMOVEMAPPING => (|| {
            let fh = need_fh(r)?;
            let slots: Vec<u64> = abi::decode_ranges(r.input)?.iter().map(|r| r.0).collect();
            // All or nothing: one bad entry removes none.
            for (ino, off, len, write) in fs.remove_mappings(fh, &slots)? {
                if write {
                    inval.push((ino, off, len));
                }
            }
            Ok(Vec::new())
        })(),
        abi::IOC_FLUSHMAPPING => (|| {
            let fh = need_fh(r)?;
            for (moffset, _len) in abi::decode_ranges(r.input)? {
                let (ino, off, len, write) = fs
                    .mapping(fh, moffset)
                    .ok_or(Error::Invalid("no mapping at that offset"))?;
                if write {
                    inval.push((ino, off, len));
                }
            }
            Ok(Vec::new())
        })(),
        abi::IOC_GET_RECALLS => (|| {
            need_out(r, abi::RANGES_SIZE)?;
            let v = fs.recalled_mappings(need_fh(r)?);
            let mut b = abi::encode_ranges(&v);
            if v.is_empty() {
                b[..4].copy_from_slice(&0u32.to_le_bytes());
            }
            Ok(b)
        })(),
        abi::IOC_EXTENTS => (|| {
            if r.ctx.uid != 0 {
                return Err(Error::Perm("device addresses are shown to root only"));
            }
            need_out(r, abi::EXTENT_LIST_SIZE)?;
            let start = abi::decode_extent_start(r.input)?;
            let bs = fs.block_size();
            let base = fs.layout().data_off;
            let all: Vec<(u64, u64, u64)> = fs
                .extents(r.ino)?
                .into_iter()
                .filter(|&(f, _, l)| (f + l) * bs > start)
                .map(|(f, d, l)| (f * bs, base + d * bs, l * bs))
                .collect();
            Ok(abi::encode_extent_list(start, &all, all.len()))
        })(),
        abi::IOC_DEFRAG => (|| {
            if r.ctx.uid != 0 {
                return Err(Error::Perm("defrag is for root"));
            }
            need_out(r, abi::DEFRAG_SIZE)?;
            let d = fs.defrag()?;
            Ok(abi::encode_defrag(d.files, d.moved, d.sealed, d.no_space))
        })(),
        _ => return None,
    };
    Some(out)
}
