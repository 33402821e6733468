//! The mount's access-time flags, followed live.
//!
//! FUSE inodes carry `S_NOATIME` (`fs/fuse/inode.c`, `fuse_init_inode`): the kernel never
//! updates atime itself and leaves it to the server, which only sees requests, not the
//! mount they came through. The flags that decide (`noatime`, `relatime`, `strictatime`,
//! `nodiratime`) are per mount and change with `mount -o remount,…` (done by another
//! process), so the daemon reads them from `/proc/self/mountinfo`: the kernel marks an
//! open mountinfo file `POLLPRI | POLLERR` whenever the mount table changes
//! (`fs/proc_namespace.c`, `mounts_poll`; each open file keeps its own mark).
//!
//! Two open files watch it:
//! - a **watcher thread** ([`MountWatch::follow`]) sleeps in `poll` on one and, when the
//!   table changes, reads it and hands the core the new rule. The kernel wakes it inside
//!   the remount, before `mount(8)` returns, so reads and listings pay nothing for it
//!   (before, each READ paid a zero-timeout `poll` and a lock);
//! - an access that **would update atime** under the rule the core has asks the other
//!   file first ([`MountWatch::changed`], a zero-timeout `poll`), so a remount to
//!   `noatime`, `relatime` or `nodiratime` holds for every access after it, even one that
//!   reaches the daemon before the watcher thread has run. Only a remount the other way
//!   (to `strictatime`, or off `noatime`) relies on the thread alone: an access in the few
//!   microseconds until it runs keeps the old atime, as one concurrent with the remount
//!   would.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Weak;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use parking_lot::Mutex;

use crate::filesystem::{AtimePolicy, Filesystem};
use crate::mounts::{self, MountInfo};

/// The atime rule of a mount, from its per-mount options: `noatime` wins, then
/// `relatime`; neither is `strictatime`.
pub fn policy_of(m: &MountInfo) -> AtimePolicy {
    if m.has("noatime") {
        AtimePolicy::Never
    } else if m.has("relatime") {
        AtimePolicy::Relative
    } else {
        AtimePolicy::Always
    }
}

/// Watches the mount table for the mount of one daemon.
pub struct MountWatch {
    mountpoint: PathBuf,
    source: OsString,
    file: Mutex<Option<File>>,
}

impl MountWatch {
    /// Watches the topmost `fuse*` mount of `source` on `mountpoint` (canonical). Opened
    /// before the mount exists, so that the mount itself is the first change seen.
    pub fn new(mountpoint: PathBuf, source: OsString) -> MountWatch {
        let file = match File::open("/proc/self/mountinfo") {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch /proc/self/mountinfo; atime follows the mount options given at mount time");
                None
            }
        };
        MountWatch {
            mountpoint,
            source,
            file: Mutex::new(file),
        }
    }

    /// The mount's atime rule and `nodiratime` if the mount table changed since the last
    /// call and the mount is still there; `None` when nothing changed (or it cannot be
    /// told).
    pub fn changed(&self) -> Option<(AtimePolicy, bool)> {
        let mut guard = self.file.lock();
        let f = guard.as_mut()?;
        if !table_changed(f, PollTimeout::ZERO) {
            return None;
        }
        flags_of(f, &self.mountpoint, &self.source)
    }

    /// Starts the watcher thread: from now on every change of the mount's flags reaches
    /// `fs` without a request asking. The thread ends within a second of `fs` going.
    pub fn follow(&self, fs: Weak<Filesystem>) {
        let mut f = match File::open("/proc/self/mountinfo") {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch /proc/self/mountinfo; atime follows the mount flags only when an access asks");
                return;
            }
        };
        let (mountpoint, source) = (self.mountpoint.clone(), self.source.clone());
        let spawned = std::thread::Builder::new()
            .name("sealfs-mountwatch".into())
            .spawn(move || loop {
                let changed = table_changed(&f, PollTimeout::from(1000u16));
                let Some(fs) = fs.upgrade() else { return };
                if changed {
                    if let Some((p, nodiratime)) = flags_of(&mut f, &mountpoint, &source) {
                        fs.set_atime_policy(p, nodiratime);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the mount watcher; atime follows the mount flags only when an access asks");
        }
    }
}

/// Did the mount table change since `f` last asked (waiting up to `timeout`)?
fn table_changed(f: &File, timeout: PollTimeout) -> bool {
    let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
    match poll(&mut fds, timeout) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .unwrap_or(PollFlags::empty())
            .intersects(PollFlags::POLLPRI | PollFlags::POLLERR),
        Err(e) => {
            tracing::debug!(error = %e, "poll of mountinfo failed");
            false
        }
    }
}

/// The atime rule and `nodiratime` of the topmost `fuse*` mount of `source` on
/// `mountpoint`, read from `f` (an open mountinfo); `None` if it is not there.
fn flags_of(f: &mut File, mountpoint: &Path, source: &OsString) -> Option<(AtimePolicy, bool)> {
    let mut text = String::new();
    if let Err(e) = f
        .seek(SeekFrom::Start(0))
        .and_then(|_| f.read_to_string(&mut text))
    {
        tracing::debug!(error = %e, "reading mountinfo failed");
        return None;
    }
    let ours = mounts::parse(&text).into_iter().rfind(|m| {
        m.mount_point == mountpoint
            && m.source == *source
            && (m.fstype == "fuse" || m.fstype.starts_with("fuse."))
    })?;
    let p = policy_of(&ours);
    tracing::debug!(policy = ?p, options = ?ours.options, "mount flags changed");
    Some((p, ours.has("nodiratime")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_from_options() {
        let m = |o: &str| {
            let line = format!("36 35 0:50 / /m {o} - fuse.sealfs /img rw\n");
            mounts::parse(&line).remove(0)
        };
        assert_eq!(
            policy_of(&m("rw,nosuid,nodev,relatime")),
            AtimePolicy::Relative
        );
        assert_eq!(policy_of(&m("rw,noatime")), AtimePolicy::Never);
        assert_eq!(policy_of(&m("ro,nodiratime")), AtimePolicy::Always);
        assert_eq!(policy_of(&m("rw")), AtimePolicy::Always);
    }
}
