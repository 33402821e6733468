//! Turning a mounted core and a [`MountConfig`] into a live FUSE session: the fuser
//! configuration (fsname, subtype, kernel flags, access, threads) and the mount itself.

use std::io;
use std::path::Path;
use std::sync::Arc;

use fuser::{Config, MountOption, Session, SessionACL};

use super::adapter::SealFuse;
use super::options::MountConfig;
use crate::filesystem::seals::SealOptions;
use crate::filesystem::{AtimePolicy, Filesystem};

/// The fuser configuration for mounting `device` with `cfg`.
///
/// The mount's source (`fsname`) is the device's canonical path (the mount command
/// resolves it), so that `umount DEVICE`, tools that match mounts by device, and window
/// hosts that reopen the device find it from any working directory. The subtype travels as
/// the kernel's own `subtype=` option (fuser's `Subtype` only reaches fusermount), which
/// makes the type `fuse.sealfs`. `default_permissions` is always on.
pub fn fuser_config(device: &Path, cfg: &MountConfig) -> Config {
    let mut o = vec![
        MountOption::FSName(device.to_string_lossy().into_owned()),
        MountOption::DefaultPermissions,
    ];
    if !cfg.subtype.is_empty() {
        o.push(MountOption::CUSTOM(format!("subtype={}", cfg.subtype)));
    }
    if cfg.read_only() {
        o.push(MountOption::RO);
    }
    // fuser mounts nodev,nosuid unless dev/suid are asked for (as libfuse does).
    if cfg.dev == Some(true) {
        o.push(MountOption::Dev);
    }
    if cfg.suid == Some(true) {
        o.push(MountOption::Suid);
    }
    if cfg.exec == Some(false) {
        o.push(MountOption::NoExec);
    }
    if cfg.noatime == Some(true) {
        o.push(MountOption::NoAtime);
    }
    if cfg.sync == Some(true) {
        o.push(MountOption::Sync);
    }
    if cfg.dirsync == Some(true) {
        o.push(MountOption::DirSync);
    }
    let mut c = Config::default();
    c.mount_options = o;
    c.acl = if cfg.allow_other {
        SessionACL::All
    } else if cfg.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    c.n_threads = Some(cfg.threads);
    c.clone_fd = true;
    c
}

/// What another transport of the same mount (the vhost-user back end) shares with the
/// FUSE session: its parker, and its notifier (to drop the host's cached pages a guest
/// wrote under).
pub struct Shared {
    /// The mount's parker.
    pub parker: Arc<crate::park::Parker>,
    /// The FUSE session's notifier, set once the session exists.
    pub notifier: Arc<std::sync::OnceLock<fuser::Notifier>>,
}

/// Mounts `fs` (opened from `device`) on `mountpoint` and completes the FUSE handshake:
/// when this returns, the mount is live. `Session::run` then serves it until unmounted.
pub fn mount(
    fs: Arc<Filesystem>,
    device: &Path,
    mountpoint: &Path,
    cfg: &MountConfig,
) -> io::Result<(Session<SealFuse>, Shared)> {
    fs.configure_seals(SealOptions {
        max_seals: cfg.max_seals,
        max_seals_per_user: cfg.max_seals_per_user,
        break_timeout: cfg.break_timeout,
    });
    let config = fuser_config(device, cfg);
    let policy = if cfg.noatime == Some(true) {
        AtimePolicy::Never
    } else if cfg.strictatime == Some(true) {
        AtimePolicy::Always
    } else {
        AtimePolicy::Relative
    };
    fs.set_atime_policy(policy, cfg.nodiratime == Some(true));
    let mut adapter = SealFuse::new(fs, cfg.clone());
    adapter.watch_mount(mountpoint, device);
    let slot = adapter.notifier_slot();
    let parker = adapter.parker();
    let session = Session::new(adapter, mountpoint, &config)?;
    let _ = slot.set(session.notifier());
    Ok((
        session,
        Shared {
            parker,
            notifier: slot,
        },
    ))
}
