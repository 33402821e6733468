//! `SEALFS_IOC_STAT` (`sealfs stat`), `SEALFS_IOC_SET_READONLY` (remount) and
//! `SEALFS_IOC_NOOP` (one round trip, for measuring it).

use std::time::Duration;

use super::{want_out, Reply, Request};
use crate::abi;
use crate::error::{Error, Result};
use crate::filesystem::Filesystem;

/// The transport's settings `SEALFS_IOC_STAT` reports beside the core's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct MountInfo {
    /// The kernel's page cache is used (`cache=page`).
    pub cache_page: bool,
    /// Users other than the mounter may use the mount.
    pub allow_other: bool,
    /// Worker threads.
    pub threads: usize,
    /// How long a recalled seal holder has to give the seal back.
    pub break_timeout: Duration,
    /// Seals one open file description may hold.
    pub max_seals: usize,
    /// Seals one user may hold.
    pub max_seals_per_user: usize,
    /// How long the kernel caches entries and attributes.
    pub timeout: Duration,
}

/// `SEALFS_IOC_STAT`.
pub fn stat(fs: &Filesystem, r: &Request<'_>, out: &mut Reply) -> Result<()> {
    want_out(r, abi::STAT_SIZE)?;
    out.data = answer(fs, r.mount).encode();
    Ok(())
}

/// `SEALFS_IOC_NOOP`: nothing to do, nothing to copy out.
pub fn noop(_fs: &Filesystem, _r: &Request<'_>, _out: &mut Reply) -> Result<()> {
    Ok(())
}

/// `SEALFS_IOC_SET_READONLY`: root only (the caller is checked before the argument).
pub fn set_readonly(fs: &Filesystem, r: &Request<'_>, _out: &mut Reply) -> Result<()> {
    if r.ctx.uid != 0 {
        return Err(Error::Perm("remount needs root"));
    }
    fs.set_read_only(abi::decode_readonly(r.input)?)
}

/// The `SEALFS_IOC_STAT` answer.
fn answer(fs: &Filesystem, cfg: &MountInfo) -> abi::StatArg {
    let s = fs.stats();
    let seals = fs.seal_stats();
    let dev = fs.device();
    let mut flags = 0;
    if fs.is_read_only() {
        flags |= abi::STAT_MOUNT_RO;
    }
    if cfg.cache_page {
        flags |= abi::STAT_MOUNT_CACHE_PAGE;
    }
    if cfg.allow_other {
        flags |= abi::STAT_MOUNT_ALLOW_OTHER;
    }
    if fs.acl_enabled() {
        flags |= abi::STAT_MOUNT_ACL;
    }
    abi::StatArg {
        block_size: s.block_size,
        total_blocks: s.total_blocks,
        free_blocks: s.free_blocks,
        inodes: s.inodes,
        max_inodes: s.max_inodes,
        log_used: s.log_used,
        log_len: s.log_len,
        checkpoints: s.checkpoints,
        records: s.records,
        generation: s.generation,
        device_size: dev.size(),
        flush_method: abi::flush_method_code(dev.flush_method()),
        device_kind: match dev.kind() {
            crate::device::DeviceKind::Image => abi::STAT_DEVICE_IMAGE,
            crate::device::DeviceKind::DevDax => abi::STAT_DEVICE_DEVDAX,
            crate::device::DeviceKind::Sim => abi::STAT_DEVICE_SIM,
        },
        mount_flags: flags,
        threads: cfg.threads as u64,
        break_timeout_ms: cfg.break_timeout.as_millis().min(u64::MAX as u128) as u64,
        max_seals: cfg.max_seals as u64,
        seals: seals.seals,
        pins: seals.pins,
        recalls: seals.recalls,
        revocations: seals.revocations,
        quarantined_blocks: fs.quarantined_blocks(),
        timeout_ms: cfg.timeout.as_millis().min(u64::MAX as u128) as u64,
        max_seals_per_user: cfg.max_seals_per_user as u64,
        uuid: fs.superblock().uuid,
        guest_mappings: fs.guest_mappings(),
    }
}
