//! Mounting: `sealfs mount`, the `sealfs DEVICE MOUNTPOINT -o OPTIONS` form that
//! mount.fuse3 runs, the `mount.fuse.sealfs` helper convention, remounts, and the daemon.
//!
//! Without `-f` the command forks: the child opens the device, mounts, and reports through
//! a pipe that the mount is live (or the one-line error); the parent exits 0 or 1 with it.
//! The child then serves the mount until it is unmounted, detached from the terminal,
//! its standard streams on /dev/null (stderr on `$SEALFS_LOG` when set). One daemon
//! serves one mount; its command line is the one that mounted, naming the mountpoint.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::statvfs::FsFlags;

use super::args::{Arg, Args};
use super::sys::{self, ForkResult};
use super::{at, describe, describe_io, mounts, Failure, Outcome};
use crate::abi;
use crate::filesystem::{Filesystem, MountOptions};
use crate::fuse::MountConfig;

/// How long the daemon waits for a previous daemon's lock on the device (it outlives
/// `umount` by a moment).
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A parsed mount command line.
struct Request {
    device: PathBuf,
    mountpoint: PathBuf,
    options: Vec<String>,
    foreground: bool,
    /// mount(8)'s `-f` to a helper: do everything but the mount.
    fake: bool,
    /// Invoked as `mount.fuse.sealfs` (by `mount -t fuse.sealfs`).
    helper: bool,
}

fn opt_value(a: &mut Args, f: &str, v: Option<OsString>) -> Result<String, Failure> {
    let v = a.value(f, v)?;
    v.into_string()
        .map_err(|_| Failure::Usage("mount options must be UTF-8".into()))
}

/// Parses `[-f] [-o OPTS]... DEVICE MOUNTPOINT` in any order. In helper mode `-f` is
/// mount(8)'s "fake" and `-s`, `-n`, `-v`, `-N NS`, `-t TYPE` are accepted.
fn parse(rest: Vec<OsString>, helper: bool) -> Result<Request, Failure> {
    let mut a = Args::new(rest);
    let (mut pos, mut options) = (Vec::new(), Vec::new());
    let (mut foreground, mut fake) = (false, false);
    while let Some(arg) = a.next_arg() {
        match arg {
            Arg::Pos(p) => pos.push(p),
            Arg::Flag(f, v) if f == "-o" || f == "--options" => {
                options.push(opt_value(&mut a, &f, v)?)
            }
            Arg::Flag(f, None) if f == "-f" && helper => fake = true,
            Arg::Flag(f, None) if f == "-f" || f == "--foreground" => foreground = true,
            Arg::Flag(f, None) if helper && (f == "-s" || f == "-n" || f == "-v") => {}
            Arg::Flag(f, v) if helper && (f == "-t" || f == "-N") => {
                a.value(&f, v)?;
            }
            Arg::Flag(f, _) => return Err(Failure::Usage(format!("unknown option {f}"))),
        }
    }
    let mut pos = pos.into_iter();
    let (Some(device), Some(mountpoint)) = (pos.next(), pos.next()) else {
        return Err(Failure::Usage(
            "usage: sealfs mount [-f] [-o OPTIONS] DEVICE MOUNTPOINT".into(),
        ));
    };
    if let Some(extra) = pos.next() {
        return Err(Failure::Usage(format!(
            "unexpected argument '{}'",
            extra.to_string_lossy()
        )));
    }
    Ok(Request {
        device: device.into(),
        mountpoint: mountpoint.into(),
        options,
        foreground,
        fake,
        helper,
    })
}

/// `sealfs mount ARGS`.
pub fn subcommand(rest: Vec<OsString>) -> Outcome {
    run(parse(rest, false)?)
}

/// `sealfs DEVICE MOUNTPOINT [-o OPTS]`: anything that is not a known command. Exactly two
/// positional arguments make it a mount; anything else is an unknown command.
pub fn direct(argv: Vec<OsString>) -> Outcome {
    let positionals = {
        let mut a = Args::new(argv.clone());
        let mut n = 0;
        while let Some(arg) = a.next_arg() {
            match arg {
                Arg::Pos(_) => n += 1,
                Arg::Flag(f, v) if f == "-o" => {
                    a.value(&f, v)?;
                }
                Arg::Flag(..) => {}
            }
        }
        n
    };
    if positionals != 2 {
        let first = argv[0].to_string_lossy();
        return Err(Failure::Usage(if first.starts_with('-') {
            format!("unknown option {first}")
        } else {
            format!("unknown command '{first}'")
        }));
    }
    run(parse(argv, false)?)
}

/// Invoked as `mount.fuse.sealfs DEVICE MOUNTPOINT [-sfnv] [-N NS] [-o OPTS] [-t TYPE]`.
pub fn helper(argv: Vec<OsString>) -> Outcome {
    run(parse(argv, true)?)
}

fn run(r: Request) -> Outcome {
    let mut cfg = MountConfig::parse(&r.options).map_err(Failure::Usage)?;
    if r.helper && nix::unistd::geteuid().is_root() {
        // mount(8) mounts other filesystems dev,suid unless told otherwise; so does
        // `mount -t fuse.sealfs` run by root (docs/design.md, the mount options).
        cfg.root_mount_defaults();
    }
    if r.fake {
        return Ok(());
    }
    if cfg.remount {
        return remount(&r.mountpoint, &cfg).map_err(Failure::Failed);
    }
    let mnt =
        std::fs::canonicalize(&r.mountpoint).map_err(|e| at(&r.mountpoint, describe_io(&e)))?;
    if !mnt.is_dir() {
        return Err(at(&r.mountpoint, "not a directory").into());
    }
    if mounts::at(&mnt).is_some() {
        return Err(at(
            &r.mountpoint,
            "mountpoint is busy (something is already mounted there)",
        )
        .into());
    }
    // The mount records, and the daemon and window hosts reopen, the canonical path: a
    // relative one would resolve against whatever directory they run in.
    let device = std::fs::canonicalize(&r.device).map_err(|e| at(&r.device, describe_io(&e)))?;
    if r.foreground {
        return serve(&device, &mnt, &cfg, false, || {}).map_err(Failure::Failed);
    }
    daemonize(&device, &mnt, &cfg)
}

/// Why users other than the mounter could read or write the device behind the mount's
/// back, if they could: its group or other permission bits allow it (with an ACL, the group
/// bits are its mask, which bounds every named entry), or another user owns it.
fn exposure(md: &std::fs::Metadata, mounter: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mode = md.mode() & 0o7777;
    if mode & 0o066 != 0 {
        Some(format!(
            "its mode {mode:04o} lets other users read or write it"
        ))
    } else if md.uid() != mounter && md.uid() != 0 {
        Some(format!("it belongs to uid {}", md.uid()))
    } else {
        None
    }
}

/// Forks the daemon and waits for its word that the mount is live.
fn daemonize(device: &Path, mnt: &Path, cfg: &MountConfig) -> Outcome {
    let (rx, tx) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {}", e.desc()))?;
    match sys::fork().map_err(|e| format!("fork: {}", e.desc()))? {
        ForkResult::Parent { child } => {
            drop(tx);
            let mut msg = String::new();
            let _ = File::from(rx).read_to_string(&mut msg);
            if msg == "OK\n" {
                return Ok(());
            }
            let _ = nix::sys::wait::waitpid(child, None);
            Err(match msg.strip_prefix("ERR ") {
                Some(m) => m.trim_end().to_string(),
                None => "the mount daemon exited before the mount was live".into(),
            }
            .into())
        }
        ForkResult::Child => {
            drop(rx);
            let _ = nix::unistd::setsid();
            let mut report = Some(File::from(tx));
            let r = serve(device, mnt, cfg, true, || {
                detach_stdio();
                if let Some(mut p) = report.take() {
                    let _ = p.write_all(b"OK\n");
                }
            });
            let code = match r {
                Ok(()) => 0,
                Err(m) => {
                    match report.take() {
                        Some(mut p) => {
                            let _ = p.write_all(format!("ERR {m}\n").as_bytes());
                        }
                        None => {
                            tracing::error!("{m}");
                            eprintln!("sealfs: {m}");
                        }
                    }
                    1
                }
            };
            std::process::exit(code)
        }
    }
}

/// Points stdin and stdout at /dev/null and stderr at `$SEALFS_LOG` (appended) or
/// /dev/null, so that nobody waiting for the mounting command's output waits for the
/// daemon.
fn detach_stdio() {
    let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") else {
        return;
    };
    let log = std::env::var_os("SEALFS_LOG")
        .and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok());
    let _ = nix::unistd::dup2_stdin(&null);
    let _ = nix::unistd::dup2_stdout(&null);
    let _ = match &log {
        Some(l) => nix::unistd::dup2_stderr(l),
        None => nix::unistd::dup2_stderr(&null),
    };
}

/// Opens the device, mounts, calls `live` once the mount is live, then serves until the
/// filesystem is unmounted. SIGTERM, SIGINT and SIGHUP unmount (lazily when busy).
fn serve(
    device: &Path,
    mnt: &Path,
    cfg: &MountConfig,
    background: bool,
    live: impl FnOnce(),
) -> Result<(), String> {
    let dev = match crate::device::open(device, LOCK_WAIT) {
        // A read-only mount of a device this process may not write (an image on a
        // read-only filesystem) opens it read-only; it then cannot be remounted rw.
        Err(crate::error::Error::Io(e))
            if cfg.read_only()
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM)
                ) =>
        {
            crate::device::open_with(device, LOCK_WAIT, false)
        }
        r => r,
    }
    .map_err(|e| at(device, describe(&e)))?;
    let fs = Filesystem::mount(
        dev,
        MountOptions {
            read_only: cfg.read_only(),
        },
    )
    .map_err(|e| at(device, describe(&e)))?;
    release_load_memory();
    if cfg.allow_other {
        // allow_other shares the mount's permission checks with every user; a device they
        // may read or write bypasses them all (and grants window access, see
        // docs/semantics.md).
        let md = fs
            .device()
            .metadata()
            .transpose()
            .map_err(|e| at(device, describe_io(&e)))?;
        let mounter = nix::unistd::geteuid().as_raw();
        if let Some(why) = md.as_ref().and_then(|md| exposure(md, mounter)) {
            return Err(at(
                device,
                format!(
                    "refusing to mount with allow_other: {why}, so they would read every \
                     file's bytes from it whatever the file's mode (chmod 600 it; chown it to \
                     the mounting user)"
                ),
            ));
        }
    }
    if background {
        // Keep no directory busy; every path from here on is absolute.
        let _ = nix::unistd::chdir("/");
    }
    // Worker threads inherit this mask; one thread takes the signals with sigwait.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("blocking signals: {}", e.desc()))?;
    let fs = Arc::new(fs);
    let (mut session, shared) =
        crate::fuse::session::mount(fs.clone(), device, mnt, cfg).map_err(|e| {
            at(
                mnt,
                format!("mount failed: {}{}", describe_io(&e), unprivileged(&e)),
            )
        })?;
    if cfg.strictatime == Some(true) || cfg.nodiratime == Some(true) {
        mount_atime_flags(mnt, cfg).map_err(|e| at(mnt, e))?;
    }
    if let Some(socket) = &cfg.vhost_user {
        let guest = crate::vhost::Config {
            socket: socket.clone(),
            tag: cfg.vhost_tag.clone(),
            window: cfg.vhost_window,
            mount: cfg.clone(),
        };
        crate::vhost::serve(fs, guest, shared.parker, shared.notifier)
            .map_err(|e| at(socket, describe_io(&e)))?;
    }
    let mut unmounter = session.unmount_callable();
    let target = mnt.to_path_buf();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let Ok(sig) = signals.wait() else { continue };
            tracing::info!(signal = ?sig, "unmounting");
            if unmounter.unmount().is_err() {
                let _ = nix::mount::umount2(&target, MntFlags::MNT_DETACH);
            }
        })
        .map_err(|e| format!("starting the signal thread: {}", describe_io(&e)))?;
    tracing::info!(device = %device.display(), mountpoint = %mnt.display(), "mounted");
    live();
    session
        .run()
        .map_err(|e| at(mnt, format!("FUSE session failed: {}", describe_io(&e))))?;
    tracing::info!(mountpoint = %mnt.display(), "unmounted");
    Ok(())
}

/// Why a mount by a user other than root was refused, when that is the likely reason.
fn unprivileged(e: &std::io::Error) -> String {
    use nix::unistd::AccessFlags;
    if nix::unistd::geteuid().is_root()
        || !matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM))
    {
        return String::new();
    }
    let fuse_rw = nix::unistd::access("/dev/fuse", AccessFlags::R_OK | AccessFlags::W_OK);
    if fuse_rw.is_err() {
        " (not root, and this user may not open /dev/fuse for reading and writing: mount as \
         root)"
            .into()
    } else {
        " (not root: a user's mount goes through fusermount3, which refused it; mount as root)"
            .into()
    }
}

/// Gives back to the system the heap that loading freed: the checkpoint blob and the
/// cross-checks' maps (several bytes per file, freed before the mount serves) stay in
/// glibc's heap otherwise, below the inode table allocated after them, and a daemon with
/// a million files kept some 60 MB it no longer used (docs/performance.md).
fn release_load_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it takes glibc's
    // allocator locks like any malloc call.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// fuser mounts with `noatime` or the kernel's default `relatime` only: `strictatime`
/// and `nodiratime` are set on the live mount afterwards, with a bind remount, which
/// changes the per-mount flags only and sends the daemon no request (it is not serving
/// yet). The other per-mount flags are restated as mounted.
fn mount_atime_flags(mnt: &Path, cfg: &MountConfig) -> Result<(), String> {
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    flags.set(MsFlags::MS_RDONLY, cfg.read_only());
    flags.set(MsFlags::MS_NODEV, cfg.dev != Some(true));
    flags.set(MsFlags::MS_NOSUID, cfg.suid != Some(true));
    flags.set(MsFlags::MS_NOEXEC, cfg.exec == Some(false));
    flags.set(MsFlags::MS_NODIRATIME, cfg.nodiratime == Some(true));
    if cfg.noatime == Some(true) {
        flags |= MsFlags::MS_NOATIME;
    } else if cfg.strictatime == Some(true) {
        flags |= MsFlags::MS_STRICTATIME;
    } else {
        flags |= MsFlags::MS_RELATIME;
    }
    nix::mount::mount::<Path, Path, Path, Path>(None, mnt, None, flags, None)
        .map_err(|e| format!("setting the atime flags: {}", e.desc()))
}

/// `-o remount,...`: changes the flags of the live mount at `mountpoint` with
/// `mount(2)`/`MS_REMOUNT` and tells its daemon about ro/rw. Flags not named keep their
/// current state.
fn remount(mountpoint: &Path, cfg: &MountConfig) -> Result<(), String> {
    let mnt = std::fs::canonicalize(mountpoint).map_err(|e| at(mountpoint, describe_io(&e)))?;
    match mounts::at(&mnt) {
        Some(m) if m.fstype == "fuse" || m.fstype.starts_with("fuse.") => {}
        _ => return Err(at(mountpoint, "not a sealfs mount point")),
    }
    let cur = nix::sys::statvfs::statvfs(&mnt)
        .map_err(|e| at(mountpoint, e.desc()))?
        .flags();
    let mut flags = MsFlags::MS_REMOUNT;
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        flags.set(ms, cur.contains(st));
    }
    let mut set = |ms: MsFlags, on: Option<bool>| {
        if let Some(on) = on {
            flags.set(ms, on);
        }
    };
    set(MsFlags::MS_RDONLY, cfg.ro);
    set(MsFlags::MS_NODEV, cfg.dev.map(|d| !d));
    set(MsFlags::MS_NOSUID, cfg.suid.map(|s| !s));
    set(MsFlags::MS_NOEXEC, cfg.exec.map(|e| !e));
    set(MsFlags::MS_SYNCHRONOUS, cfg.sync);
    set(MsFlags::MS_DIRSYNC, cfg.dirsync);
    set(MsFlags::MS_NOATIME, cfg.noatime);
    set(MsFlags::MS_NODIRATIME, cfg.nodiratime);
    set(MsFlags::MS_RELATIME, cfg.relatime);
    set(MsFlags::MS_STRICTATIME, cfg.strictatime);
    if cfg.strictatime == Some(true) {
        flags.remove(MsFlags::MS_RELATIME | MsFlags::MS_NOATIME);
    }
    if cfg.relatime == Some(true) && cfg.noatime != Some(true) {
        flags.remove(MsFlags::MS_NOATIME);
    }
    // State the atime flags in full: a remount without any of them keeps the old ones
    // (`path_mount`), so `diratime` alone would not clear `nodiratime`.
    if !flags.intersects(MsFlags::MS_NOATIME | MsFlags::MS_RELATIME) {
        flags |= MsFlags::MS_STRICTATIME;
    }
    let ro = flags.contains(MsFlags::MS_RDONLY);
    // The daemon stops writing after the kernel stops sending writes, and starts again
    // before the kernel lets them through.
    if !ro {
        tell_daemon(&mnt, false)?;
    }
    nix::mount::mount::<Path, Path, Path, Path>(None, &mnt, None, flags, None).map_err(|e| {
        let why = if e == nix::errno::Errno::EBUSY && ro {
            "files are open for writing".to_string()
        } else {
            e.desc().to_string()
        };
        at(mountpoint, format!("remount failed: {why}"))
    })?;
    if ro {
        tell_daemon(&mnt, true)?;
    }
    Ok(())
}

/// `SEALFS_IOC_SET_READONLY` on the mount's root.
fn tell_daemon(mnt: &Path, ro: bool) -> Result<(), String> {
    let f = File::open(mnt).map_err(|e| at(mnt, describe_io(&e)))?;
    let mut arg = abi::encode_readonly(ro);
    sys::ioctl(&f, abi::IOC_SET_READONLY, &mut arg).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOTTY) {
            at(mnt, "not a sealfs mount")
        } else {
            at(mnt, describe_io(&e))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn forms() {
        let r = parse(v(&["-o", "ro", "img", "mnt", "-oallow_other", "-f"]), false).unwrap();
        assert_eq!(r.device, Path::new("img"));
        assert_eq!(r.mountpoint, Path::new("mnt"));
        assert_eq!(r.options, ["ro", "allow_other"]);
        assert!(r.foreground && !r.fake);
        let r = parse(
            v(&["img", "mnt", "-n", "-o", "rw", "-t", "fuse.sealfs", "-f"]),
            true,
        )
        .unwrap();
        assert!(r.fake && !r.foreground);
        assert!(parse(v(&["img"]), false).is_err());
        assert!(parse(v(&["a", "b", "c"]), false).is_err());
        assert!(parse(v(&["-x", "a", "b"]), false).is_err());
        assert!(direct(v(&["frobnicate"])).is_err());
    }
}
