//! The `sealfs` command line: argument parsing, subcommands and their one-line errors.
//!
//! Every failure prints exactly one line on stderr (`sealfs: …`) and exits non-zero: 1 for
//! an operation that failed, 2 for a usage error. `RUST_LOG` turns on `tracing` output
//! (silent by default).
//!
//! * `args` — argument iteration and size parsing;
//! * `logging` — `tracing` set-up;
//! * `mkfs`, `mount`, `stat`, `seal` (seals, extents, `map`) — the subcommands (`fsck` is
//!   `crate::fsck::run`);
//! * `admin` — `defrag`; `bench` — `map --bench`;
//! * `sys` — the few raw system calls (fork, ioctl) the command line needs.

mod admin;
pub(crate) mod args;
mod bench;
mod logging;
mod mkfs;
mod mount;
mod seal;
mod stat;
mod sys;

use std::ffi::OsString;
use std::path::Path;

use crate::error::Error;
use crate::mounts;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// Bad command line (exit 2).
    Usage(String),
    /// The operation failed (exit 1).
    Failed(String),
}

/// What commands return.
pub type Outcome = Result<(), Failure>;

impl Failure {
    fn code(&self) -> i32 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Failed(_) => 1,
        }
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Failed(s)
    }
}

const USAGE: &str = "\
usage: sealfs COMMAND [ARGS]

commands:
  mkfs [--size SIZE] [--block-size 4K|2M] [--log-size SIZE] [--checkpoint-size SIZE]
       [--force] DEVICE
                        make a filesystem (creates an image file with --size)
  mount [-f] [-o OPTIONS] DEVICE MOUNTPOINT
                        mount; returns once the mount is live (-f: stay in the foreground)
  DEVICE MOUNTPOINT [-o OPTIONS]
                        the same (the form mount -t fuse.sealfs runs)
  fsck DEVICE           check a filesystem that is not mounted
  stat MOUNTPOINT       space, inodes, log, seals of a mount
  seal [--breakable] [--range OFF:LEN] [--populate] FILE -- COMMAND...
                        hold a seal on FILE's extent map while COMMAND runs
  seal [--breakable] [--range OFF:LEN] [--populate] --hold FILE
                        hold it until killed (breakable: until recalled)
  seal --immutable [--populate] FILE | unseal --immutable FILE
                        set or clear the permanent seal (immutable extent map)
  unseal --force [--range OFF:LEN] FILE
                        revoke every seal and mapping pin on FILE (root)
  seals FILE            list the seals on FILE (kind, range, holder pid, recall state)
  extents FILE          FILE's device extents (root only)
  defrag MOUNTPOINT     make fragmented files contiguous; never moves sealed ranges
  map FILE [--range OFF:LEN]
                        map FILE through a DAX window and read it (a demo)
  map --verify [--size SIZE] FILE
                        write a pattern through a window, flush, read it back with
                        read(2); and the other way round (exits 1 on a differing byte)
  map --bench [--size SIZE] FILE
                        window vs memcpy vs read(2) bandwidth
  help [COMMAND]        this text, or a command's

DEVICE is an image file or a device-DAX character device (/dev/daxX.Y).
Environment: RUST_LOG (e.g. sealfs=debug) enables logging; a mount daemon in the
background writes its log to the file named by SEALFS_LOG, else nowhere.
";

const HELP_MKFS: &str = "\
usage: sealfs mkfs [--size SIZE] [--block-size 4K|2M] [--log-size SIZE]
                   [--checkpoint-size SIZE] [--force] DEVICE

Makes an empty sealfs on DEVICE. A missing image file is created (sparse) with --size,
which is then required; --size also resizes an existing image file. SIZE takes the
suffixes K, M, G, T (powers of 1024). The block size is 4K by default.
--log-size sets the metadata log (default 1/64 of the device, 64K..64M) and
--checkpoint-size each of the two checkpoint areas (default 1/32 of the device, at
least 64K); both must be multiples of 4K and at least 64K. A bigger log means fewer
checkpoints; bigger checkpoint areas hold more inodes and entries.
A DEVICE that already holds a sealfs is refused unless --force is given.
An image file is left readable and writable by its owner only (created 0600; group and
other access taken away): it holds every file's bytes, whatever the files' modes.
";

const HELP_MOUNT: &str = "\
usage: sealfs mount [-f] [-o OPTIONS] DEVICE MOUNTPOINT
       sealfs DEVICE MOUNTPOINT [-f] [-o OPTIONS]

Mounts the sealfs on DEVICE at MOUNTPOINT and returns once the mount is live, leaving a
daemon (one per mount, its command line naming the mountpoint) that exits when the
filesystem is unmounted. -f keeps the daemon in the foreground. SIGTERM or SIGINT to
the daemon unmounts (lazily when busy). The mount's source is DEVICE's canonical path; its
type is fuse.sealfs. With allow_other (the default for root), a DEVICE that users other
than the mounter may read or write is refused.

options (comma-separated, -o may repeat):
  ro, rw                read-only or read-write (default rw)
  allow_other           let other users use the mount (default when mounting as root)
  allow_root            only the mounting user and root
  threads=N             FUSE worker threads (default: number of CPUs)
  cache=direct|page     direct I/O (default; shared mmap works) or the page cache
  break_timeout=MS      time a recalled seal holder has to unseal (default 5000)
  max_seals=N           seals one open file description may hold (default 1024)
  max_seals_per_user=N  seals one user may hold in all (default 16384)
  acl, noacl            POSIX ACLs (default acl): the kernel checks them, sealfs keeps
                        them in step with the mode and inherits default ACLs
  timeout=SECONDS       how long the kernel caches names and attributes (default 60)
  subtype=NAME          type fuse.NAME (default sealfs; empty: plain fuse)
  vhost_user=SOCKET     also serve a virtual machine as a vhost-user-fs device on this
                        UNIX socket (QEMU >= 11.1; guest: mount -t virtiofs TAG, -o dax)
  vhost_tag=TAG         the guest's virtio-fs tag (default sealfs)
  vhost_window=SIZE     the guest's DAX window (default 512M; 0: none)
  remount               change the flags (ro/rw, nodev, nosuid, noexec, noatime, ...)
                        of the live mount at MOUNTPOINT instead of mounting
  dev, suid, exec, noexec, atime, noatime, sync, async, dirsync and their no- forms
                        kernel mount flags (nodev,nosuid unless dev/suid are given;
                        as mount.fuse.sealfs run by root: dev,suid unless nodev/nosuid)
  relatime, strictatime, nodiratime, diratime
                        when reads and directory listings update atime (default
                        relatime); the daemon follows the mount's flags, remounts too
  defaults, auto, noauto, user, nouser, _netdev, nofail, x-*, fsname=...,
  default_permissions, user_id=, group_id=, rootmode=
                        accepted and ignored at mount (mount(8) and fstab pass them)

With `mount -t fuse.sealfs DEVICE MOUNTPOINT` mount.fuse3 runs `sealfs DEVICE MOUNTPOINT
-o OPTIONS` (sealfs must be on the helpers' PATH), and an /etc/fstab line works the
same way. The binary also answers to the name mount.fuse.sealfs.
";

const HELP_FSCK: &str = "\
usage: sealfs fsck DEVICE

Checks superblocks, log, checkpoint, block ownership, link counts, reachability and sizes
of an unmounted sealfs. Exit status: 0 clean, 1 problems found, 2 the filesystem cannot be
loaded (no valid superblock, damaged checkpoint, erased or damaged log, a log record that
cannot apply), usage or I/O error.
";

const HELP_SEAL: &str = "\
usage: sealfs seal [--breakable] [--range OFF:LEN] [--populate] FILE -- COMMAND...
       sealfs seal [--breakable] [--range OFF:LEN] [--populate] --hold FILE
       sealfs seal --immutable [--populate] FILE
       sealfs unseal --immutable FILE
       sealfs unseal --force [--range OFF:LEN] FILE

Seals the extent map of FILE (or of [OFF, OFF+LEN); LEN 0 = to the end of the file):
while the seal is held, the file offset -> device offset mapping cannot change.
Truncate, hole punch, extending writes, allocation into sealed holes, unlink of the
last link and rename over it get ETXTBSY (Text file busy); in-place writes, reads,
chmod and xattrs work. With -- COMMAND the seal is held while COMMAND runs, like
flock(1); it is released explicitly before sealfs exits, and the exit status is
COMMAND's. --hold holds it until killed. --breakable makes it recallable: a
conflicting operation waits while the holder is notified; --hold then releases and
says so, -- COMMAND releases it and lets COMMAND run on. --populate allocates and
zeroes holes in the range first. --immutable sets the permanent seal (persisted;
conflicting operations get EPERM) on a file without holes (--populate fills them);
unseal --immutable clears it. Owner or root. unseal --force (root) revokes every
temporary and breakable seal and mapping pin on FILE (or overlapping the range) at once,
whoever holds it: operations waiting for them go on, and each holder's descriptor gets
ENOLINK from then on.
";

const HELP_STAT: &str = "\
usage: sealfs stat MOUNTPOINT

Shows the counters of the mount holding MOUNTPOINT: space and inodes in use, log fill,
checkpoints and records since mount, the flush method, mount options, seals, mapping
pins, recalls and revocations.
";

fn help(topic: Option<&str>) -> Outcome {
    let text = match topic {
        None => USAGE,
        Some("mkfs") => HELP_MKFS,
        Some("mount") => HELP_MOUNT,
        Some("fsck") => HELP_FSCK,
        Some("stat") => HELP_STAT,
        Some("seal" | "unseal" | "seals" | "extents" | "defrag" | "map") => HELP_SEAL,
        Some("help") => USAGE,
        Some(other) => return Err(Failure::Usage(format!("no help for '{other}'"))),
    };
    print!("{text}");
    Ok(())
}

/// A one-line description of a core error, for messages of the form `PATH: description`.
pub fn describe(e: &Error) -> String {
    match e {
        Error::Io(io) => describe_io(io),
        Error::Corrupt(s) if s.starts_with("not a sealfs") => s.clone(),
        Error::Busy => "in use by another sealfs process (still locked after 10 s)".into(),
        other => other.to_string(),
    }
}

/// An I/O error as `strerror` says it, without Rust's "(os error N)" suffix.
pub fn describe_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// `path: message`.
pub fn at(path: &Path, msg: impl std::fmt::Display) -> String {
    format!("{}: {msg}", path.display())
}

fn name_of(argv0: &OsString) -> String {
    Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The `sealfs` program: runs the command in `std::env::args_os()` and returns the exit
/// status.
pub fn main() -> i32 {
    logging::init();
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let argv0 = if argv.is_empty() {
        OsString::from("sealfs")
    } else {
        argv.remove(0)
    };
    let (prefix, outcome) = if name_of(&argv0).starts_with("mount.fuse.") {
        ("sealfs", mount::helper(argv))
    } else {
        dispatch(argv)
    };
    match outcome {
        Ok(()) => 0,
        Err(f) => {
            match &f {
                Failure::Usage(m) => {
                    eprintln!("{prefix}: {m} (see 'sealfs help')");
                }
                Failure::Failed(m) => eprintln!("{prefix}: {m}"),
            }
            f.code()
        }
    }
}

fn dispatch(argv: Vec<OsString>) -> (&'static str, Outcome) {
    let Some(first) = argv.first() else {
        eprint!("{USAGE}");
        return ("sealfs", Err(Failure::Usage("no command given".into())));
    };
    let rest = argv[1..].to_vec();
    let wants_help = rest.first().is_some_and(|a| a == "--help" || a == "-h");
    match first.to_str() {
        Some(
            sub @ ("mkfs" | "mount" | "fsck" | "stat" | "seal" | "unseal" | "seals" | "extents"
            | "defrag" | "map"),
        ) if wants_help => ("sealfs", help(Some(sub))),
        Some("help" | "--help" | "-h") => (
            "sealfs",
            match rest.first() {
                Some(t) => help(Some(&t.to_string_lossy())),
                None => help(None),
            },
        ),
        Some("--version" | "-V") => {
            println!("sealfs {}", env!("CARGO_PKG_VERSION"));
            ("sealfs", Ok(()))
        }
        Some("mkfs") => ("sealfs mkfs", mkfs::run(rest)),
        Some("mount") => ("sealfs", mount::subcommand(rest)),
        Some("fsck") => ("sealfs fsck", fsck(rest)),
        Some("stat") => ("sealfs stat", stat::run(rest)),
        Some("seal") => ("sealfs seal", seal::seal(rest)),
        Some("unseal") => ("sealfs unseal", seal::unseal(rest)),
        Some("seals") => ("sealfs seals", seal::seals(rest)),
        Some("extents") => ("sealfs extents", seal::extents(rest)),
        Some("defrag") => ("sealfs defrag", admin::defrag(rest)),
        Some("map") => ("sealfs map", seal::map(rest)),
        _ => ("sealfs", mount::direct(argv)),
    }
}

fn fsck(rest: Vec<OsString>) -> Outcome {
    let mut a = args::Args::new(rest);
    let dev = a.positional("DEVICE")?;
    a.finish()?;
    match crate::fsck::run(Path::new(&dev)) {
        0 => Ok(()),
        code => std::process::exit(code),
    }
}
