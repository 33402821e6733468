//! Shared fixture for the integration tests: a real sealfs image mounted through FUSE by
//! the `sealfs` binary, plus thin syscall wrappers that return the exact errno.
//!
//! Every [`Mount`] lives in its own temporary directory (under `/dev/shm` when it exists,
//! where `msync` is cheap), is unmounted on drop and its image then has to pass
//! `sealfs fsck`. Tests that need root and `/dev/fuse` skip where those are missing:
//! they return early through [`skip`], which says so and records it, so that
//! `scripts/test.sh` counts skips apart from passes.
//!
//! This crate must not reach into the filesystem core: everything goes through the mount,
//! the way a user of the filesystem sees it.

use std::ffi::{CString, OsStr};
use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `FS_IMMUTABLE_FL` (`chattr +i`).
pub const FS_IMMUTABLE_FL: libc::c_int = 0x10;
/// `FS_APPEND_FL` (`chattr +a`).
pub const FS_APPEND_FL: libc::c_int = 0x20;
/// The unprivileged user the permission tests run as.
pub const NOBODY: u32 = 65534;
/// Its group.
pub const NOGROUP: u32 = 65534;

/// Where the `sealfs` binary is: `$SEALFS_BIN`, else next to the test's `deps/` directory
/// (`target/<profile>/deps/<test>` → `target/<profile>/sealfs`).
pub fn sealfs_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SEALFS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test binary has a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("sealfs");
    assert!(
        bin.is_file(),
        "the sealfs binary is missing at {}: build it first (`cargo build -p sealfs`, or run \
         a root `cargo test`, which builds it), or point SEALFS_BIN at it",
        bin.display()
    );
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| warn_if_stale(&bin));
    bin
}

/// `cargo test -p sealfs-tests` alone does not rebuild the binary: say so when a source
/// file of the crates it is built from is newer than it.
fn warn_if_stale(bin: &Path) {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stack: Vec<PathBuf> = ["fs/src", "alloc/src", "seal/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built)
            {
                eprintln!(
                    "warning: {} is newer than {}: the tests run an old build \
                     (`cargo build -p sealfs` or a root `cargo test` rebuilds it)",
                    p.display(),
                    bin.display()
                );
                return;
            }
        }
    }
}

/// Records that the calling test skips its checks, or a part of them, and why: a
/// `SKIPPED` line on stderr, and a line in the file the environment variable
/// `SEALFS_SKIP_LOG` names, when set (`scripts/test.sh` sets it, then counts and prints
/// the skips, so a skipped test is never reported as a plain pass).
pub fn skip(why: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string();
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("SEALFS_SKIP_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open SEALFS_SKIP_LOG");
        writeln!(f, "{test}: {why}").expect("write SEALFS_SKIP_LOG");
    }
}

/// Root and `/dev/fuse`: what a real mount needs.
pub fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Path::new("/dev/fuse").exists()
}

/// Runs `sealfs ARGS`, returning its output (never panics on a non-zero exit).
pub fn sealfs(args: &[&OsStr]) -> Output {
    Command::new(sealfs_bin())
        .args(args)
        .output()
        .expect("spawn sealfs")
}

/// A short description of a finished command for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One mounted sealfs image in its own temporary directory.
pub struct Mount {
    dir: tempfile::TempDir,
    img: PathBuf,
    mnt: PathBuf,
    opts: String,
    daemon: Option<u32>,
    mounted: bool,
}

impl Mount {
    /// A 256 MiB image mounted with `opts` (comma-separated, may be empty); `None` (a skip)
    /// without root or `/dev/fuse`.
    pub fn new(opts: &str) -> Option<Mount> {
        Mount::with_size("256M", opts)
    }

    /// An image of `size` (as `sealfs mkfs --size` takes it) mounted with `opts`.
    pub fn with_size(size: &str, opts: &str) -> Option<Mount> {
        Mount::with_mkfs(&["--size", size], opts)
    }

    /// An image made by `sealfs mkfs MKFS_ARGS IMG`, mounted with `opts`.
    pub fn with_mkfs(mkfs_args: &[&str], opts: &str) -> Option<Mount> {
        if !can_mount() {
            skip("needs root and /dev/fuse");
            return None;
        }
        // One process-wide umask, so tests running in parallel see the same one. Tests
        // that need another umask set it in a child process (see `in_child`).
        // SAFETY: umask has no preconditions.
        unsafe { libc::umask(0o022) };
        let dir = temp_dir();
        let img = dir.path().join("img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir mnt");
        let mut args: Vec<&OsStr> = vec![OsStr::new("mkfs")];
        args.extend(mkfs_args.iter().map(OsStr::new));
        args.push(img.as_os_str());
        let out = sealfs(&args);
        assert!(
            out.status.success(),
            "sealfs mkfs failed: {}",
            describe(&out)
        );
        let mut m = Mount {
            dir,
            img,
            mnt,
            opts: with_allow_other(opts),
            daemon: None,
            mounted: false,
        };
        m.mount();
        Some(m)
    }

    /// The temporary directory holding the image and the mountpoint.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The image file.
    pub fn img(&self) -> &Path {
        &self.img
    }

    /// The mountpoint.
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    /// A path inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// The daemon serving this mount (found by its command line naming the mountpoint).
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon
    }

    /// Mounts the image (it must not be mounted).
    fn mount(&mut self) {
        assert!(!self.mounted);
        let mut args: Vec<&OsStr> = vec![OsStr::new("mount")];
        if !self.opts.is_empty() {
            args.push(OsStr::new("-o"));
            args.push(OsStr::new(&self.opts));
        }
        args.push(self.img.as_os_str());
        args.push(self.mnt.as_os_str());
        let out = sealfs(&args);
        assert!(
            out.status.success(),
            "sealfs mount -o {} failed: {}",
            self.opts,
            describe(&out)
        );
        assert!(
            is_mounted(&self.mnt),
            "sealfs mount returned success but {} is not in /proc/mounts",
            self.mnt.display()
        );
        self.mounted = true;
        self.daemon = find_daemon(&self.mnt);
    }

    /// Unmounts (retrying while busy, then lazily) and waits for the daemon to exit.
    pub fn umount(&mut self) {
        if !self.mounted {
            return;
        }
        unmount_path(&self.mnt);
        self.mounted = false;
        if let Some(pid) = self.daemon.take() {
            if std::thread::panicking() {
                pid_gone_within(pid, Duration::from_secs(30));
            } else {
                wait_pid_gone(pid, Duration::from_secs(30));
            }
        }
    }

    /// Unmounts, runs `sealfs fsck` on the image and returns its output (not asserted).
    pub fn umount_and_fsck(&mut self) -> Output {
        self.umount();
        sealfs(&[OsStr::new("fsck"), self.img.as_os_str()])
    }

    /// Unmounts, asserts a clean fsck, and mounts the same image again.
    pub fn remount_checked(&mut self) {
        let out = self.umount_and_fsck();
        assert!(
            out.status.success(),
            "fsck of {} not clean: {}",
            self.img.display(),
            describe(&out)
        );
        self.mount();
    }

    /// Unmounts and mounts the same image again.
    pub fn remount(&mut self) {
        self.umount();
        self.mount();
    }

    /// Mounts again after the daemon died (e.g. SIGKILL): the dead mount is unmounted
    /// first.
    pub fn recover_mount(&mut self) {
        if is_mounted(&self.mnt) {
            unmount_path(&self.mnt);
        }
        self.mounted = false;
        if let Some(pid) = self.daemon.take() {
            wait_pid_gone(pid, Duration::from_secs(30));
        }
        self.mount();
    }

    /// `sealfs stat MNT`.
    pub fn stat_output(&self) -> Output {
        sealfs(&[OsStr::new("stat"), self.mnt.as_os_str()])
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let out = self.umount_and_fsck();
        if std::thread::panicking() {
            if !out.status.success() {
                eprintln!(
                    "(while panicking) fsck of {}: {}",
                    self.img.display(),
                    describe(&out)
                );
            }
            return;
        }
        assert!(
            out.status.success(),
            "fsck of {} after the test is not clean: {}",
            self.img.display(),
            describe(&out)
        );
    }
}

fn with_allow_other(opts: &str) -> String {
    if opts.split(',').any(|o| o == "allow_other") {
        opts.to_string()
    } else if opts.is_empty() {
        "allow_other".to_string()
    } else {
        format!("{opts},allow_other")
    }
}

/// A fresh temporary directory, world-searchable so that other users reach the mount.
pub fn temp_dir() -> tempfile::TempDir {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("sealfs-test-");
        b
    };
    let dir = if Path::new("/dev/shm").is_dir() {
        builder.tempdir_in("/dev/shm")
    } else {
        builder.tempdir()
    }
    .expect("temp dir");
    set_mode(dir.path(), 0o755);
    dir
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Is `mnt` a mountpoint in `/proc/mounts`?
pub fn is_mounted(mnt: &Path) -> bool {
    mount_entry(mnt).is_some()
}

/// The `/proc/mounts` line for `mnt` (the last one, when stacked): source, type, options.
pub fn mount_entry(mnt: &Path) -> Option<(String, String, String)> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
    let want = mnt.to_str().expect("utf-8 mountpoint");
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() >= 4 && unescape_mounts(f[1]) == want)
                .then(|| (unescape_mounts(f[0]), f[2].to_string(), f[3].to_string()))
        })
        .next_back()
}

fn unescape_mounts(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Unmounts `mnt`: retries while busy for a bounded time, then detaches lazily.
pub fn unmount_path(mnt: &Path) {
    let c = cpath(mnt);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // SAFETY: c is a valid NUL-terminated path.
        let r = unsafe { libc::umount2(c.as_ptr(), 0) };
        if r == 0 {
            return;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOENT) if !is_mounted(mnt) => return,
            Some(libc::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                eprintln!("umount {} failed ({e}); detaching lazily", mnt.display());
                // SAFETY: as above.
                let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                if r != 0 && is_mounted(mnt) {
                    let e = io::Error::last_os_error();
                    if std::thread::panicking() {
                        eprintln!("umount -l {}: {e}", mnt.display());
                    } else {
                        panic!("umount -l {}: {e}", mnt.display());
                    }
                }
                return;
            }
        }
    }
}

/// Unmounts a path (if mounted) and waits for its daemon when dropped: for tests that mount
/// by hand, so that a failing assertion does not leave a mount behind.
pub struct UnmountGuard(pub PathBuf);

impl Drop for UnmountGuard {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let daemon = find_daemon(&self.0);
            unmount_path(&self.0);
            if let Some(pid) = daemon {
                if !pid_gone_within(pid, Duration::from_secs(30)) {
                    eprintln!("daemon {pid} of {} did not exit", self.0.display());
                }
            }
        }
    }
}

/// The process whose command line has `mnt` as one argument, other than this one.
pub fn find_daemon(mnt: &Path) -> Option<u32> {
    let want = mnt.as_os_str().as_bytes();
    let me = std::process::id();
    let mut found = None;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || is_zombie(pid) {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let mut args = cmd.split(|&b| b == 0);
        let argv0 = args.next().unwrap_or_default();
        if !argv0.ends_with(b"sealfs") {
            continue;
        }
        if args.any(|a| a == want) {
            found = Some(pid);
        }
    }
    found
}

fn is_zombie(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// Waits (bounded) until `pid` no longer runs; panics if it outlives `limit`.
pub fn wait_pid_gone(pid: u32, limit: Duration) {
    assert!(
        pid_gone_within(pid, limit),
        "daemon {pid} still running {limit:?} after umount"
    );
}

/// Whether every thread of process `pid` has finished exiting. Its leader shows as a
/// zombie as soon as the leader itself is done, while the other threads may still be
/// exiting — and the last of them is the one that closes the process's files and unmaps
/// its memory (an image the daemon had open stays busy until then). Those threads leave
/// `/proc/PID/task` as they finish.
fn all_threads_gone(pid: u32) -> bool {
    if !is_zombie(pid) {
        return false;
    }
    match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(tasks) => tasks
            .flatten()
            .all(|t| t.file_name().to_str() == Some(pid.to_string().as_str())),
        Err(_) => true,
    }
}

/// Waits up to `limit` for `pid` to stop running (all its threads, so its files are
/// closed); whether it did.
pub fn pid_gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !all_threads_gone(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Reads `read()` until it returns `want` or two seconds pass, and returns the last value,
/// for the caller to compare exactly.
///
/// For counters that change when the kernel's RELEASE of a closed file arrives: `close(2)`
/// on a FUSE file queues RELEASE in the background without waiting for it, so a daemon
/// with several threads may handle a later UNLINK first. The unlinked inode then stays
/// open, with its blocks, until that RELEASE is handled a moment later.
pub fn after_release<T: PartialEq>(want: T, mut read: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = read();
        if got == want || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `cond` every few milliseconds until it holds; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------
// Errno helpers and syscall wrappers.

/// The errno of a call that must fail; panics (naming the call) if it succeeded.
#[track_caller]
pub fn errno_of<T: Debug>(f: impl FnOnce() -> io::Result<T>) -> i32 {
    match f() {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e
            .raw_os_error()
            .unwrap_or_else(|| panic!("error without an errno: {e}")),
    }
}

/// Asserts that an `io::Result` expression fails with exactly the given errno.
#[macro_export]
macro_rules! assert_errno {
    ($call:expr, $errno:expr) => {{
        let want: i32 = $errno;
        match $call {
            Ok(v) => panic!(
                "{} succeeded ({:?}), expected {}",
                stringify!($call),
                v,
                $crate::errno_name(want)
            ),
            Err(e) => {
                let got = e.raw_os_error().unwrap_or(-1);
                assert!(
                    got == want,
                    "{}: expected {}, got {} ({})",
                    stringify!($call),
                    $crate::errno_name(want),
                    $crate::errno_name(got),
                    e
                );
            }
        }
    }};
}

/// A readable name for an errno value.
pub fn errno_name(e: i32) -> String {
    let names: &[(i32, &str)] = &[
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::EIO, "EIO"),
        (libc::ENXIO, "ENXIO"),
        (libc::E2BIG, "E2BIG"),
        (libc::EBADF, "EBADF"),
        (libc::EACCES, "EACCES"),
        (libc::EBUSY, "EBUSY"),
        (libc::EEXIST, "EEXIST"),
        (libc::EXDEV, "EXDEV"),
        (libc::ENOTDIR, "ENOTDIR"),
        (libc::EISDIR, "EISDIR"),
        (libc::EINVAL, "EINVAL"),
        (libc::EFBIG, "EFBIG"),
        (libc::ENOSPC, "ENOSPC"),
        (libc::EROFS, "EROFS"),
        (libc::EMLINK, "EMLINK"),
        (libc::ERANGE, "ERANGE"),
        (libc::ENAMETOOLONG, "ENAMETOOLONG"),
        (libc::ENOSYS, "ENOSYS"),
        (libc::ENOTEMPTY, "ENOTEMPTY"),
        (libc::ELOOP, "ELOOP"),
        (libc::ENODATA, "ENODATA"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::ENOTCONN, "ENOTCONN"),
        (libc::ETXTBSY, "ETXTBSY"),
    ];
    match names.iter().find(|(n, _)| *n == e) {
        Some((_, s)) => format!("{s}({e})"),
        None => format!("errno {e}"),
    }
}

/// A path as a C string.
pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// A byte string as a C string.
pub fn cstr(s: &[u8]) -> CString {
    CString::new(s).expect("no NUL")
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_isize(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `renameat2(AT_FDCWD, old, AT_FDCWD, new, flags)`.
pub fn renameat2(old: &Path, new: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (o, n) = (cpath(old), cpath(new));
    // SAFETY: valid C strings.
    cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            o.as_ptr(),
            libc::AT_FDCWD,
            n.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// `mknod(path, mode, makedev(major, minor))`.
pub fn mknod(p: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: valid C string.
    cvt(unsafe { libc::mknod(c.as_ptr(), mode, libc::makedev(major, minor)) }).map(drop)
}

/// `fallocate(fd, mode, off, len)`.
pub fn fallocate(f: &File, mode: libc::c_int, off: i64, len: i64) -> io::Result<()> {
    // SAFETY: a valid fd.
    cvt(unsafe { libc::fallocate(f.as_raw_fd(), mode, off, len) }).map(drop)
}

/// `lseek(fd, off, whence)`.
pub fn lseek(f: &File, off: i64, whence: libc::c_int) -> io::Result<i64> {
    // SAFETY: a valid fd.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// One `copy_file_range` call with explicit offsets; returns the bytes copied.
pub fn copy_file_range(
    src: &File,
    src_off: i64,
    dst: &File,
    dst_off: i64,
    len: usize,
) -> io::Result<usize> {
    let (mut so, mut d) = (src_off, dst_off);
    // SAFETY: valid fds and offset pointers.
    cvt_isize(unsafe {
        libc::copy_file_range(src.as_raw_fd(), &mut so, dst.as_raw_fd(), &mut d, len, 0)
    })
}

/// `FS_IOC_GETFLAGS`.
pub fn get_flags(f: &File) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    // SAFETY: a valid fd; the kernel reads/writes a 4-byte int for this ioctl.
    cvt(unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut v) })?;
    Ok(v)
}

/// `FS_IOC_SETFLAGS`.
pub fn set_flags(f: &File, flags: libc::c_int) -> io::Result<()> {
    let v: libc::c_int = flags;
    // SAFETY: as above.
    cvt(unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &v) }).map(drop)
}

/// `chattr` on a path: sets or clears `flag`, keeping the other flags.
pub fn chattr(p: &Path, flag: libc::c_int, on: bool) -> io::Result<()> {
    let f = File::open(p)?;
    let old = get_flags(&f)?;
    set_flags(&f, if on { old | flag } else { old & !flag })
}

/// `lsetxattr` (symlinks are not followed).
pub fn setxattr(p: &Path, name: &[u8], value: &[u8], flags: libc::c_int) -> io::Result<()> {
    let (c, n) = (cpath(p), cstr(name));
    // SAFETY: valid C strings and a value buffer of the given length.
    cvt(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
}

/// `lgetxattr` into a buffer of `size` bytes (0: the size query); returns the bytes.
pub fn getxattr_sized(p: &Path, name: &[u8], size: usize) -> io::Result<Vec<u8>> {
    let (c, n) = (cpath(p), cstr(name));
    let mut buf = vec![0u8; size];
    // SAFETY: valid C strings and a buffer of `size` bytes (NULL when 0).
    let r = cvt_isize(unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            n.as_ptr(),
            if size == 0 {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            size,
        )
    })?;
    if size == 0 {
        return Ok(vec![0; r]);
    }
    buf.truncate(r);
    Ok(buf)
}

/// The value of an xattr (size query, then read).
pub fn getxattr(p: &Path, name: &[u8]) -> io::Result<Vec<u8>> {
    let len = getxattr_sized(p, name, 0)?.len();
    getxattr_sized(p, name, len.max(1)).map(|mut v| {
        v.truncate(len);
        v
    })
}

/// `llistxattr` into a buffer of `size` bytes; returns the raw NUL-separated list (with
/// `size` 0: a vector whose length is the needed size).
pub fn listxattr_sized(p: &Path, size: usize) -> io::Result<Vec<u8>> {
    let c = cpath(p);
    let mut buf = vec![0u8; size];
    // SAFETY: a valid C string and a buffer of `size` bytes (NULL when 0).
    let r = cvt_isize(unsafe {
        libc::llistxattr(
            c.as_ptr(),
            if size == 0 {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            size,
        )
    })?;
    if size == 0 {
        return Ok(vec![0; r]);
    }
    buf.truncate(r);
    Ok(buf)
}

/// The sorted xattr names of a path.
pub fn listxattr(p: &Path) -> io::Result<Vec<Vec<u8>>> {
    let len = listxattr_sized(p, 0)?.len();
    if len == 0 {
        return Ok(Vec::new());
    }
    let raw = listxattr_sized(p, len)?;
    let mut names: Vec<Vec<u8>> = raw
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| s.to_vec())
        .collect();
    names.sort();
    Ok(names)
}

/// `lremovexattr`.
pub fn removexattr(p: &Path, name: &[u8]) -> io::Result<()> {
    let (c, n) = (cpath(p), cstr(name));
    // SAFETY: valid C strings.
    cvt(unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) }).map(drop)
}

/// A timestamp as (seconds, nanoseconds).
pub type Ts = (i64, i64);

/// `utimensat(AT_FDCWD, p, [atime, mtime], AT_SYMLINK_NOFOLLOW)`; a field may be
/// `(0, libc::UTIME_NOW)` or `(0, libc::UTIME_OMIT)`.
pub fn utimens(p: &Path, atime: Ts, mtime: Ts) -> io::Result<()> {
    let c = cpath(p);
    let ts = [
        libc::timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        libc::timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    ];
    // SAFETY: a valid C string and a two-element timespec array.
    cvt(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// `utimensat(p, NULL)`: both times to now (needs write access, not ownership).
pub fn touch_now(p: &Path) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: a valid C string; NULL times means now.
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) }).map(drop)
}

/// (atime, mtime, ctime) of a path (not following a final symlink).
pub fn times(p: &Path) -> (Ts, Ts, Ts) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
    (
        (m.atime(), m.atime_nsec()),
        (m.mtime(), m.mtime_nsec()),
        (m.ctime(), m.ctime_nsec()),
    )
}

/// The current wall-clock time.
pub fn now() -> Ts {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

/// `statfs` of a path.
pub fn statfs(p: &Path) -> libc::statfs {
    let c = cpath(p);
    // SAFETY: zeroed is a valid statfs; a valid C string and out-pointer.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut s) };
    assert_eq!(
        r,
        0,
        "statfs {}: {}",
        p.display(),
        io::Error::last_os_error()
    );
    s
}

/// `lstat` returning the raw stat (for fields std leaves out).
pub fn lstat(p: &Path) -> io::Result<libc::stat> {
    let c = cpath(p);
    // SAFETY: zeroed is a valid stat; a valid C string and out-pointer.
    let mut s: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    cvt(unsafe { libc::lstat(c.as_ptr(), &mut s) })?;
    Ok(s)
}

/// `statx(fd, AT_STATX_FORCE_SYNC)`: attributes fetched from the filesystem, never from the
/// kernel's attribute cache.
pub fn fstat_sync(f: &File) -> io::Result<libc::statx> {
    let empty = cstr(b"");
    // SAFETY: zeroed is a valid statx; a valid fd, C string and out-pointer.
    let mut s: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    cvt(unsafe {
        libc::statx(
            f.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_FORCE_SYNC,
            libc::STATX_BASIC_STATS,
            &mut s,
        )
    })?;
    Ok(s)
}

/// `open(p, flags, mode)` as a `File`.
pub fn open(p: &Path, flags: libc::c_int, mode: u32) -> io::Result<File> {
    use std::os::fd::FromRawFd;
    let c = cpath(p);
    // SAFETY: a valid C string.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `truncate(p, len)`.
pub fn truncate(p: &Path, len: i64) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: a valid C string.
    cvt(unsafe { libc::truncate(c.as_ptr(), len) }).map(drop)
}

/// `chown(p, uid, gid)` (following symlinks; `u32::MAX` leaves a field).
pub fn chown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: a valid C string.
    cvt(unsafe { libc::chown(c.as_ptr(), uid, gid) }).map(drop)
}

/// `chmod(p, mode)`.
pub fn chmod(p: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: a valid C string.
    cvt(unsafe { libc::chmod(c.as_ptr(), mode) }).map(drop)
}

/// `pwrite` of the whole buffer (loops over short writes; the first error is returned).
pub fn pwrite_all(f: &File, buf: &[u8], off: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.write_all_at(buf, off)
}

/// `pread` of exactly `len` bytes or up to EOF.
pub fn pread_vec(f: &File, off: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f.read_at(&mut buf[done..], off + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// The `Err(errno)` of an `io::Result` as a plain code (0 for success): what a forked
/// child reports through its exit status.
pub fn code<T>(r: io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(255),
    }
}

/// How a forked child runs `in_child`'s closure.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChildCreds {
    /// uid and gid to switch to (supplementary groups are dropped).
    pub user: Option<(u32, u32)>,
    /// umask to set.
    pub umask: Option<u32>,
}

/// Runs `f` in a forked child (as another user and/or with another umask, without
/// touching this process) and returns its result: the closure's `i32` (use [`code`] for
/// an errno; must be 0..=200). Panics if the child cannot switch credentials.
pub fn in_child(creds: ChildCreds, f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: fork; the child only makes system calls and runs `f`, then _exits without
    // running destructors or touching the parent's locks (no printing).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain system calls in the child.
        unsafe {
            if let Some(m) = creds.umask {
                libc::umask(m);
            }
            if let Some((uid, gid)) = creds.user {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    libc::_exit(250);
                }
            }
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(251);
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(r) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    let code = libc::WEXITSTATUS(status);
    assert_ne!(code, 250, "child could not switch to another user");
    assert_ne!(code, 251, "child closure panicked");
    code
}

/// Runs `f` as `nobody:nogroup` in a child; returns its code.
pub fn as_nobody(f: impl FnOnce() -> i32) -> i32 {
    in_child(
        ChildCreds {
            user: Some((NOBODY, NOGROUP)),
            umask: None,
        },
        f,
    )
}

// ---------------------------------------------------------------------------------------
// Data patterns.

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The byte at absolute offset `off` of the pattern `seed` (never 0).
pub fn pattern_byte(seed: u64, off: u64) -> u8 {
    let w = splitmix(seed.wrapping_mul(0x1000_0000_01B3) ^ (off / 8));
    let b = (w >> ((off % 8) * 8)) as u8;
    if b == 0 {
        0x5A
    } else {
        b
    }
}

/// `len` bytes of the pattern `seed` starting at absolute offset `off`.
pub fn pattern(seed: u64, off: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| pattern_byte(seed, off + i))
        .collect()
}

/// The first offset where `got` differs from `want`, for readable assertion messages.
pub fn first_diff(got: &[u8], want: &[u8]) -> Option<usize> {
    got.iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .or((got.len() != want.len()).then(|| got.len().min(want.len())))
}

/// Asserts two byte strings are equal, reporting the first difference (not the bytes).
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if let Some(i) = first_diff(got, want) {
        panic!(
            "{what}: bytes differ at offset {i} (got len {}, want len {}; got {:?}, want {:?})",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

/// A tiny deterministic RNG for workloads (xorshift).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(splitmix(seed) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
