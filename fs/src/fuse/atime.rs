//! The mount's access-time flags, followed live.
//!
//! FUSE inodes carry `S_NOATIME` (`fs/fuse/inode.c`, `fuse_init_inode`): the kernel never
//! updates atime itself and leaves it to the server, which only sees requests, not the
//! mount they came through. The flags that decide (`noatime`, `relatime`, `strictatime`,
//! `nodiratime`)
//! are per mount and change with `mount -o remount,…` (done by another process), so the
//! daemon reads them from `/proc/self/mountinfo`, which it keeps open: the kernel marks
//! an open mountinfo file `POLLPRI | POLLERR` whenever the mount table changes
//! (`fs/proc_namespace.c`, `mounts_poll`). Before a read decides on atime, a zero-timeout
//! `poll` asks whether anything changed; only then is the table read again (the same before
//! a directory listing). A remount
//! completes before `mount(8)` returns, so the first read after it sees the new flags.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use parking_lot::Mutex;

use crate::filesystem::AtimePolicy;
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
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "poll of mountinfo failed");
                return None;
            }
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if !revents.intersects(PollFlags::POLLPRI | PollFlags::POLLERR) {
            return None;
        }
        let mut text = String::new();
        if let Err(e) = f
            .seek(SeekFrom::Start(0))
            .and_then(|_| f.read_to_string(&mut text))
        {
            tracing::debug!(error = %e, "reading mountinfo failed");
            return None;
        }
        let ours = mounts::parse(&text).into_iter().rfind(|m| {
            m.mount_point == self.mountpoint
                && m.source == self.source
                && (m.fstype == "fuse" || m.fstype.starts_with("fuse."))
        })?;
        let p = policy_of(&ours);
        tracing::debug!(policy = ?p, options = ?ours.options, "mount flags changed");
        Some((p, ours.has("nodiratime")))
    }
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
