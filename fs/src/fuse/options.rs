//! Mount options: the `-o` vocabulary of `sealfs mount`, `sealfs DEV MNT` and the
//! `mount -t fuse.sealfs` helper path, parsed into one [`MountConfig`].
//!
//! Generic options that mount(8) and mount.fuse3 pass along are accepted: the kernel mount
//! flags among them (`dev`, `suid`, `exec`, `atime`, `sync`, `dirsync`, their `no…` forms)
//! are applied to the mount, the rest (`auto`, `user`, `_netdev`, `x-*`, …) are ignored.
//! Nothing here touches a device or the kernel.

use std::time::Duration;

/// How file data reaches readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// `cache=direct` (default): every read and write goes to the daemon (FOPEN_DIRECT_IO),
    /// so what DAX windows see is what readers see. Shared mmap still works.
    Direct,
    /// `cache=page`: the kernel page cache serves reads; dropped at every open.
    Page,
}

/// A kernel mount flag given on the command line: `Some(true)` for `dev`, `Some(false)`
/// for `nodev`, `None` when neither was given.
pub type Flag = Option<bool>;

/// Everything the mount options decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountConfig {
    /// `ro` (`Some(true)`) or `rw` (`Some(false)`); read-write when neither is given
    /// (a remount then keeps the current state).
    pub ro: Flag,
    /// `allow_other`: users other than the mounter may use the mount. Default: on when
    /// mounting as root (xfstests and multi-user use need it), off otherwise.
    pub allow_other: bool,
    /// `allow_root`: only the mounter and root.
    pub allow_root: bool,
    /// `threads=N`: FUSE worker threads (default: the number of CPUs, at most 64).
    pub threads: usize,
    /// `cache=direct|page`.
    pub cache: CacheMode,
    /// `break_timeout=MS`: how long a recalled seal holder has to give the seal back.
    pub break_timeout: Duration,
    /// `max_seals=N`: seals one open file description may hold.
    pub max_seals: usize,
    /// `max_seals_per_user=N`: seals one user may hold over all descriptions.
    pub max_seals_per_user: usize,
    /// `subtype=NAME` (default `sealfs`, so the type is `fuse.sealfs`); an empty value
    /// leaves the subtype out (type `fuse`).
    pub subtype: String,
    /// `remount`: change the flags of a live mount instead of mounting.
    pub remount: bool,
    /// `acl` (default) / `noacl`: POSIX ACLs (`FUSE_POSIX_ACL`). Fixed at mount time; a
    /// remount cannot change it.
    pub acl: bool,
    /// `timeout=SECONDS` (fractions allowed): how long the kernel may cache names and
    /// attributes. Default [`DEFAULT_TIMEOUT`]: every change reaches this daemon through
    /// the kernel, which updates or drops what it cached; the daemon invalidates what it
    /// changes on its own (see the adapter).
    pub timeout: Duration,
    /// `dev` / `nodev`.
    pub dev: Flag,
    /// `suid` / `nosuid`.
    pub suid: Flag,
    /// `exec` / `noexec`.
    pub exec: Flag,
    /// `noatime` (true) / `atime` (false).
    pub noatime: Flag,
    /// `nodiratime` (true) / `diratime` (false).
    pub nodiratime: Flag,
    /// `relatime` (true) / `norelatime` (false).
    pub relatime: Flag,
    /// `strictatime` (true) / `nostrictatime` (false).
    pub strictatime: Flag,
    /// `sync` (true) / `async` (false).
    pub sync: Flag,
    /// `dirsync`.
    pub dirsync: Flag,
    /// `vhost_user=SOCKET`: also serve the filesystem to a virtual machine as a
    /// vhost-user-fs device on this UNIX socket (see [`crate::vhost`]).
    pub vhost_user: Option<std::path::PathBuf>,
    /// `vhost_tag=TAG`: the virtio-fs tag the guest mounts (default `sealfs`).
    pub vhost_tag: String,
    /// `vhost_window=SIZE`: the guest's DAX window in bytes (`K`/`M`/`G` suffixes; a power
    /// of two, at least 2 MiB; default 512 MiB; 0 offers no window).
    pub vhost_window: u64,
}

impl Default for MountConfig {
    fn default() -> Self {
        MountConfig {
            ro: None,
            allow_other: nix::unistd::geteuid().is_root(),
            allow_root: false,
            threads: default_threads(),
            cache: CacheMode::Direct,
            break_timeout: Duration::from_millis(5000),
            max_seals: 1024,
            max_seals_per_user: 16384,
            subtype: "sealfs".into(),
            remount: false,
            acl: true,
            timeout: DEFAULT_TIMEOUT,
            dev: None,
            suid: None,
            exec: None,
            noatime: None,
            nodiratime: None,
            relatime: None,
            strictatime: None,
            sync: None,
            dirsync: None,
            vhost_user: None,
            vhost_tag: "sealfs".into(),
            vhost_window: crate::vhost::DEFAULT_WINDOW,
        }
    }
}

/// How long the kernel caches names and attributes unless `timeout=` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest `timeout=` (a day, as virtiofsd's `cache=always`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86400);

/// Most worker threads `threads=` accepts.
pub const MAX_THREADS: usize = 256;

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 64)
}

fn need<'a>(key: &str, v: Option<&'a str>) -> Result<&'a str, String> {
    v.ok_or_else(|| format!("mount option {key} needs a value"))
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("mount option {key}: '{v}' is not a number"))
}

impl MountConfig {
    /// The settings `SEALFS_IOC_STAT` reports.
    pub fn info(&self) -> crate::ioctl::MountInfo {
        crate::ioctl::MountInfo {
            cache_page: self.cache == CacheMode::Page,
            allow_other: self.allow_other,
            threads: self.threads,
            break_timeout: self.break_timeout,
            max_seals: self.max_seals,
            max_seals_per_user: self.max_seals_per_user,
            timeout: self.timeout,
        }
    }

    /// Mounted (or to be remounted) read-only?
    pub fn read_only(&self) -> bool {
        self.ro == Some(true)
    }

    /// What `mount -t fuse.sealfs` run by root implies, as mount(8) does for any other
    /// filesystem: `dev` and `suid` unless `nodev` / `nosuid` were given. (fuser, like
    /// libfuse, mounts `nodev,nosuid` otherwise; mount.fuse3 adds `dev,suid` for root
    /// the same way.) A remount changes only the flags it names.
    pub fn root_mount_defaults(&mut self) {
        if !self.remount {
            self.dev.get_or_insert(true);
            self.suid.get_or_insert(true);
        }
    }

    /// Parses comma-separated option lists (each `-o` argument is one list); later options
    /// override earlier ones.
    pub fn parse<S: AsRef<str>>(lists: &[S]) -> Result<MountConfig, String> {
        let mut c = MountConfig::default();
        for list in lists {
            for opt in list.as_ref().split(',').filter(|o| !o.is_empty()) {
                c.apply(opt)?;
            }
        }
        Ok(c)
    }

    fn apply(&mut self, opt: &str) -> Result<(), String> {
        let (key, val) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, val) {
            ("ro", None) => self.ro = Some(true),
            ("rw", None) => self.ro = Some(false),
            ("allow_other", None) => self.allow_other = true,
            ("allow_root", None) => self.allow_root = true,
            ("threads", v) => {
                let n: usize = number(key, need(key, v)?)?;
                if n == 0 || n > MAX_THREADS {
                    return Err(format!("mount option threads: must be 1..={MAX_THREADS}"));
                }
                self.threads = n;
            }
            ("cache", Some("direct")) => self.cache = CacheMode::Direct,
            ("cache", Some("page")) => self.cache = CacheMode::Page,
            ("cache", _) => return Err("mount option cache: must be direct or page".into()),
            ("break_timeout", v) => {
                self.break_timeout = Duration::from_millis(number(key, need(key, v)?)?);
            }
            ("max_seals", v) => {
                let n: usize = number(key, need(key, v)?)?;
                if n == 0 {
                    return Err("mount option max_seals: must be at least 1".into());
                }
                self.max_seals = n;
            }
            ("max_seals_per_user", v) => {
                let n: usize = number(key, need(key, v)?)?;
                if n == 0 {
                    return Err("mount option max_seals_per_user: must be at least 1".into());
                }
                self.max_seals_per_user = n;
            }
            ("subtype", v) => self.subtype = need(key, v)?.to_string(),
            // The mount's source is always the device's canonical path.
            ("fsname", Some(_)) => {}
            ("remount", None) => self.remount = true,
            ("default_permissions", None) => {} // always on
            ("acl", None) => self.acl = true,
            ("timeout", v) => {
                let s: f64 = number(key, need(key, v)?)?;
                if !(0.0..=MAX_TIMEOUT.as_secs_f64()).contains(&s) {
                    return Err(format!(
                        "mount option timeout: must be 0..={} seconds",
                        MAX_TIMEOUT.as_secs()
                    ));
                }
                self.timeout = Duration::from_secs_f64(s);
            }
            ("noacl", None) => self.acl = false,
            ("dev", None) => self.dev = Some(true),
            ("nodev", None) => self.dev = Some(false),
            ("suid", None) => self.suid = Some(true),
            ("nosuid", None) => self.suid = Some(false),
            ("exec", None) => self.exec = Some(true),
            ("noexec", None) => self.exec = Some(false),
            ("atime", None) => self.noatime = Some(false),
            ("noatime", None) => self.noatime = Some(true),
            ("diratime", None) => self.nodiratime = Some(false),
            ("nodiratime", None) => self.nodiratime = Some(true),
            ("relatime", None) => self.relatime = Some(true),
            ("norelatime", None) => self.relatime = Some(false),
            ("strictatime", None) => self.strictatime = Some(true),
            ("nostrictatime", None) => self.strictatime = Some(false),
            ("sync", None) => self.sync = Some(true),
            ("async", None) => self.sync = Some(false),
            ("dirsync", None) => self.dirsync = Some(true),
            ("vhost_user", v) => self.vhost_user = Some(need(key, v)?.into()),
            ("vhost_tag", v) => {
                let t = need(key, v)?;
                if t.is_empty() || t.len() > crate::vhost::TAG_MAX {
                    return Err(format!(
                        "mount option vhost_tag: 1 to {} bytes",
                        crate::vhost::TAG_MAX
                    ));
                }
                self.vhost_tag = t.to_string();
            }
            ("vhost_window", v) => {
                let w = crate::cli::args::parse_size(std::ffi::OsStr::new(need(key, v)?))
                    .map_err(|e| format!("mount option vhost_window: {e}"))?;
                if w != 0 && (!w.is_power_of_two() || w < crate::vhost::SLOT) {
                    return Err(
                        "mount option vhost_window: a power of two, at least 2M (or 0)".into(),
                    );
                }
                self.vhost_window = w;
            }
            // fstab and mount(8) vocabulary with no meaning for a FUSE mount.
            (
                "defaults" | "auto" | "noauto" | "user" | "nouser" | "users" | "owner" | "group"
                | "_netdev" | "nofail" | "nonempty" | "lazytime" | "nolazytime" | "loud" | "silent"
                | "iversion" | "noiversion" | "mand" | "nomand",
                None,
            ) => {}
            ("comment", Some(_)) => {}
            // The kernel's own FUSE options, which mount(8) passes back on a remount.
            ("user_id" | "group_id" | "rootmode" | "fd" | "max_read" | "blksize", Some(_)) => {}
            (k, _) if k.starts_with("x-") => {}
            _ => return Err(format!("unknown mount option '{opt}'")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_options_are_accepted() {
        let c = MountConfig::parse(&[
            "rw,dev,suid,exec,atime,relatime,nodiratime,async,auto,user,_netdev,defaults",
            "x-systemd.automount,fsname=whatever,default_permissions,noauto,nouser",
            "user_id=0,group_id=0,rootmode=40000,max_read=131072",
        ])
        .unwrap();
        assert!(!c.read_only());
        assert_eq!(
            (c.dev, c.suid, c.exec),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(c.subtype, "sealfs");
    }

    #[test]
    fn sealfs_options() {
        let c = MountConfig::parse(&[
            "ro,allow_other,threads=3,cache=page,break_timeout=250,max_seals=9,subtype=",
            "noacl,timeout=0.25,max_seals_per_user=40",
        ])
        .unwrap();
        assert!(!c.acl);
        assert_eq!(c.timeout, Duration::from_millis(250));
        let d = MountConfig::default();
        assert!(d.acl);
        assert_eq!(d.timeout, DEFAULT_TIMEOUT);
        assert_eq!(
            MountConfig::parse(&["timeout=86400"]).unwrap().timeout,
            MAX_TIMEOUT
        );
        assert!(c.read_only() && c.allow_other);
        assert_eq!(c.threads, 3);
        assert_eq!(c.cache, CacheMode::Page);
        assert_eq!(c.break_timeout, Duration::from_millis(250));
        assert_eq!(c.max_seals, 9);
        assert_eq!(c.max_seals_per_user, 40);
        assert_eq!(d.max_seals_per_user, 16384);
        assert_eq!(c.subtype, "");
        assert!(MountConfig::parse(&["remount,ro"]).unwrap().remount);
        assert!(!MountConfig::parse(&["ro,rw"]).unwrap().read_only());
    }

    #[test]
    fn root_mount_defaults() {
        let mut c = MountConfig::parse(&["rw,allow_other"]).unwrap();
        c.root_mount_defaults();
        assert_eq!((c.dev, c.suid), (Some(true), Some(true)));
        let mut c = MountConfig::parse(&["nodev", "nosuid"]).unwrap();
        c.root_mount_defaults();
        assert_eq!((c.dev, c.suid), (Some(false), Some(false)));
        let mut c = MountConfig::parse(&["remount,ro"]).unwrap();
        c.root_mount_defaults();
        assert_eq!((c.dev, c.suid), (None, None));
    }

    #[test]
    fn bad_options_are_one_line_errors() {
        for bad in [
            "threads=0",
            "threads=x",
            "threads",
            "cache=none",
            "max_seals=0",
            "max_seals_per_user=0",
            "frobnicate",
            "ro=1",
            "timeout=-1",
            "timeout=86401",
            "timeout=NaN",
            "timeout=soon",
            "timeout",
        ] {
            let e = MountConfig::parse(&[bad]).unwrap_err();
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }
}
