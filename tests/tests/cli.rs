//! The command line a user types: `sealfs mount` in its forms, `mount -t fuse.sealfs`,
//! `/proc/mounts`, immediate remount and fsck after `umount`, and the one-line errors.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sealfs_tests::*;

/// Asserts a failed command with exactly one clear line on stderr; returns that line.
#[track_caller]
fn one_line_failure(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} must fail: {}", describe(out));
    assert!(
        out.status.code().is_some(),
        "{what} must exit, not die of a signal: {}",
        describe(out)
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!err.is_empty(), "{what}: no message: {}", describe(out));
    assert!(
        !err.contains('\n'),
        "{what}: more than one line: {}",
        describe(out)
    );
    for dump in ["panicked", "Os {", "kind:", "RUST_BACKTRACE"] {
        assert!(!err.contains(dump), "{what}: not a clear message: {err}");
    }
    err
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

/// `umount ARG`, retried while busy: a process forked by a parallel test may hold a copy
/// of one of our descriptors until it execs.
fn umount_cmd(arg: &Path) -> Output {
    let t = Instant::now();
    loop {
        let out = run(Command::new("umount").arg(arg));
        let busy = String::from_utf8_lossy(&out.stderr).contains("busy");
        if out.status.success() || !busy || t.elapsed() > Duration::from_secs(10) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes a 64 MiB image at `img` (asserting success).
fn mkfs_64m(img: &Path) {
    let out = sealfs(&[
        OsStr::new("mkfs"),
        OsStr::new("--size"),
        OsStr::new("64M"),
        img.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
}

/// A temporary directory holding a fresh 64 MiB image `img` and an empty mount point
/// `mnt`, unmounted when dropped.
struct Scratch {
    _guard: UnmountGuard,
    dir: tempfile::TempDir,
    img: PathBuf,
    mnt: PathBuf,
}

/// A [`Scratch`]; `None` (and a skip line) without root and `/dev/fuse`.
fn scratch() -> Option<Scratch> {
    if !can_mount() {
        skip("needs root and /dev/fuse");
        return None;
    }
    let dir = temp_dir();
    let img = dir.path().join("img");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let _guard = UnmountGuard(mnt.clone());
    mkfs_64m(&img);
    Some(Scratch {
        _guard,
        dir,
        img,
        mnt,
    })
}

fn fsck(img: &Path) -> Output {
    sealfs(&[OsStr::new("fsck"), img.as_os_str()])
}

fn sealfs_mount(img: &Path, mnt: &Path, opts: &str) -> Output {
    sealfs(&[
        OsStr::new("mount"),
        OsStr::new("-o"),
        OsStr::new(opts),
        img.as_os_str(),
        mnt.as_os_str(),
    ])
}

#[test]
fn proc_mounts_stat_and_immediate_remount() {
    let Some(mut m) = Mount::new("") else { return };
    fs::write(m.path("hello"), b"hi").unwrap();
    let (src, ty, _) = mount_entry(m.mnt()).unwrap();
    assert_eq!(
        Path::new(&src),
        m.img(),
        "mount source is the image path as given"
    );
    assert_eq!(ty, "fuse.sealfs");
    let pid = m
        .daemon_pid()
        .expect("a daemon process whose command line names the mountpoint");
    assert_eq!(find_daemon(m.mnt()), Some(pid));
    let out = m.stat_output();
    assert!(out.status.success(), "sealfs stat: {}", describe(&out));
    assert!(!out.stdout.is_empty(), "sealfs stat prints something");
    eprintln!("sealfs stat:\n{}", String::from_utf8_lossy(&out.stdout));

    // umount, then at once mount again (the old daemon may still hold the image).
    let (img, mnt) = (m.img().to_path_buf(), m.mnt().to_path_buf());
    m.umount();
    let guard = UnmountGuard(mnt.clone());
    for round in 0..3 {
        let out = sealfs_mount(&img, &mnt, "allow_other");
        assert!(
            out.status.success(),
            "immediate remount {round}: {}",
            describe(&out)
        );
        assert_eq!(fs::read(mnt.join("hello")).unwrap(), b"hi");
        fs::write(mnt.join(format!("round{round}")), b"r").unwrap();
        let out = umount_cmd(&mnt);
        assert!(out.status.success(), "umount: {}", describe(&out));
    }
    // umount, then at once fsck.
    let out = fsck(&img);
    assert!(out.status.success(), "immediate fsck: {}", describe(&out));
    drop(guard);
}

#[test]
fn mount_forms() {
    let Some(mut m) = Mount::new("") else { return };
    fs::write(m.path("hello"), b"hi").unwrap();
    let (img, mnt) = (m.img().to_path_buf(), m.mnt().to_path_buf());
    m.umount();
    let _guard = UnmountGuard(mnt.clone());
    let bin = sealfs_bin();
    let bindir = bin.parent().unwrap();

    // `sealfs DEV MNT -o OPTS` (what mount.fuse runs) returns once the mount is live and
    // accepts the generic options mount(8) passes.
    for opts in [
        "rw,dev,suid,exec,atime,allow_other",
        "nodev,nosuid,noexec,noatime,allow_other",
    ] {
        let out = run(Command::new(&bin)
            .arg(&img)
            .arg(&mnt)
            .args(["-o", opts])
            .env_remove("RUST_LOG"));
        assert!(
            out.status.success(),
            "sealfs IMG MNT -o {opts}: {}",
            describe(&out)
        );
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "a successful mount is silent without RUST_LOG: {}",
            describe(&out)
        );
        assert!(is_mounted(&mnt), "mounted when `sealfs IMG MNT` returns");
        assert_eq!(fs::read(mnt.join("hello")).unwrap(), b"hi");
        unmount_path(&mnt);
    }

    // The mount.fuse helper's calling convention (`mount.fuse IMG MNT -o OPTS -t fuse.sealfs`
    // runs `sealfs IMG MNT -o OPTS` through /bin/sh and PATH), run directly so that PATH
    // names this build: mount(8) drops PATH for its helpers.
    let path = format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let fuse_helper = [
        "/sbin/mount.fuse3",
        "/sbin/mount.fuse",
        "/usr/sbin/mount.fuse3",
    ]
    .into_iter()
    .find(|h| Path::new(h).exists());
    let mut wrote_via_helper = false;
    match fuse_helper {
        None => skip("the mount.fuse path: no mount.fuse3 helper installed"),
        Some(h) => {
            let out = run(Command::new(h)
                .arg(&img)
                .arg(&mnt)
                .args(["-o", "rw,allow_other", "-t", "fuse.sealfs"])
                .env("PATH", &path));
            assert!(
                out.status.success(),
                "{h} IMG MNT -t fuse.sealfs: {}",
                describe(&out)
            );
            let (src, ty, _) = mount_entry(&mnt).expect("mounted by the helper");
            assert_eq!(Path::new(&src), img.as_path());
            assert_eq!(ty, "fuse.sealfs");
            assert_eq!(fs::read(mnt.join("hello")).unwrap(), b"hi");
            fs::write(mnt.join("via_helper"), b"h").unwrap();
            wrote_via_helper = true;
            // xfstests unmounts by device.
            let out = umount_cmd(&img);
            assert!(out.status.success(), "umount IMG: {}", describe(&out));
            assert!(!is_mounted(&mnt));
        }
    }

    // mount -t fuse.sealfs itself. mount(8) runs /sbin/mount.fuse.sealfs when installed,
    // else mount.fuse with `sealfs` from its default PATH; in a private mount namespace this
    // build is bound over whichever of the two it would run.
    let unshare = ["/usr/bin/unshare", "/bin/unshare"]
        .into_iter()
        .find(|u| Path::new(u).exists());
    let sealfs_helper = Path::new("/sbin/mount.fuse.sealfs");
    let bind = if sealfs_helper.exists() {
        Some(format!(
            "mount --bind '{}' /sbin/mount.fuse.sealfs",
            bin.display()
        ))
    } else if fuse_helper.is_some() && Path::new("/usr/local/bin").is_dir() {
        let shadow = m.dir().join("bin");
        fs::create_dir(&shadow).unwrap();
        std::os::unix::fs::symlink(&bin, shadow.join("sealfs")).unwrap();
        Some(format!(
            "mount --bind '{}' /usr/local/bin",
            shadow.display()
        ))
    } else {
        None
    };
    let mut wrote_via_mount = false;
    match (unshare, bind) {
        (Some(unshare), Some(bind)) => {
            let (i, mt) = (img.display(), mnt.display());
            let script = format!(
                "set -e\n\
                 trap 'umount -l \"{mt}\" 2>/dev/null || true' EXIT\n\
                 mount --make-rprivate /\n\
                 {bind}\n\
                 mount -t fuse.sealfs -o allow_other \"{i}\" \"{mt}\"\n\
                 grep -F ' {mt} ' /proc/self/mounts\n\
                 cat \"{mt}/hello\"; echo\n\
                 echo m > \"{mt}/via_mount\"\n\
                 umount \"{i}\"\n"
            );
            let out = run(Command::new(unshare).args(["-m", "sh", "-c", &script]));
            assert!(
                out.status.success(),
                "mount -t fuse.sealfs: {}",
                describe(&out)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut lines = stdout.lines();
            let entry: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
            assert_eq!(
                entry.get(..3),
                Some(
                    &[
                        i.to_string().as_str(),
                        mt.to_string().as_str(),
                        "fuse.sealfs"
                    ][..]
                ),
                "/proc/mounts after mount -t fuse.sealfs: {stdout}"
            );
            assert_eq!(lines.next(), Some("hi"));
            wrote_via_mount = true;
        }
        _ => skip(
            "mount -t fuse.sealfs: needs unshare(1) and either /sbin/mount.fuse.sealfs or \
             mount.fuse with /usr/local/bin",
        ),
    }

    // -f stays in the foreground until unmounted.
    let errf = m.dir().join("fg.stderr");
    let mut child = Command::new(&bin)
        .args(["mount", "-f", "-o", "allow_other"])
        .arg(&img)
        .arg(&mnt)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&errf).unwrap())
        .env("RUST_LOG", "debug")
        .spawn()
        .unwrap();
    wait_until("the -f mount is live", Duration::from_secs(30), || {
        if let Some(st) = child.try_wait().unwrap() {
            panic!(
                "sealfs mount -f exited early ({st}): {}",
                fs::read_to_string(&errf).unwrap_or_default()
            );
        }
        is_mounted(&mnt)
    });
    assert_eq!(
        find_daemon(&mnt),
        Some(child.id()),
        "-f: the daemon is this process"
    );
    assert_eq!(fs::read(mnt.join("hello")).unwrap(), b"hi");
    unmount_path(&mnt);
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "sealfs mount -f did not exit after umount"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let log = fs::read_to_string(&errf).unwrap_or_default();
    assert!(status.success(), "sealfs mount -f exit: {status}: {log}");
    assert!(!log.is_empty(), "RUST_LOG=debug makes the daemon log");

    // -o ro
    let out = sealfs_mount(&img, &mnt, "ro,allow_other");
    assert!(out.status.success(), "mount -o ro: {}", describe(&out));
    let (_, _, opts) = mount_entry(&mnt).unwrap();
    assert!(
        opts.split(',').any(|o| o == "ro"),
        "ro in /proc/mounts options: {opts}"
    );
    assert_eq!(fs::read(mnt.join("hello")).unwrap(), b"hi");
    assert_errno!(fs::write(mnt.join("new"), b""), libc::EROFS);
    assert_errno!(
        fs::OpenOptions::new().write(true).open(mnt.join("hello")),
        libc::EROFS
    );
    assert_errno!(fs::remove_file(mnt.join("hello")), libc::EROFS);
    unmount_path(&mnt);

    // Every mount above left a consistent image behind (the fixture fscks it again).
    let out = sealfs_mount(&img, &mnt, "allow_other");
    assert!(out.status.success(), "{}", describe(&out));
    if wrote_via_helper {
        assert_eq!(fs::read(mnt.join("via_helper")).unwrap(), b"h");
    }
    if wrote_via_mount {
        assert_eq!(fs::read(mnt.join("via_mount")).unwrap(), b"m\n");
    }
    unmount_path(&mnt);
}

#[test]
fn errors_are_one_clear_line() {
    let Some(m) = Mount::new("") else { return };
    fs::write(m.path("keep"), b"kept").unwrap();
    let dir = m.dir().to_path_buf();

    // A second filesystem on a busy mountpoint.
    let img2 = dir.join("img2");
    let out = sealfs(&[
        OsStr::new("mkfs"),
        OsStr::new("--size"),
        OsStr::new("64M"),
        img2.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = sealfs_mount(&img2, m.mnt(), "allow_other");
    let msg = one_line_failure(&out, "mount on a busy mountpoint");
    eprintln!("busy mountpoint: {msg}");
    let (src, _, _) = mount_entry(m.mnt()).unwrap();
    assert_eq!(
        Path::new(&src),
        m.img(),
        "the first mount is still the top one"
    );
    assert_eq!(fs::read(m.path("keep")).unwrap(), b"kept");

    // The same image twice.
    let mnt2 = dir.join("mnt2");
    fs::create_dir(&mnt2).unwrap();
    let _g2 = UnmountGuard(mnt2.clone());
    let t = Instant::now();
    let out = sealfs_mount(m.img(), &mnt2, "allow_other");
    let msg = one_line_failure(&out, "mounting a mounted image again");
    eprintln!("image in use ({:?}): {msg}", t.elapsed());
    assert!(!is_mounted(&mnt2));

    // mkfs refuses an existing sealfs without --force.
    fs::create_dir(dir.join("mnt3")).unwrap();
    let mnt3 = dir.join("mnt3");
    let _g3 = UnmountGuard(mnt3.clone());
    let out = sealfs_mount(&img2, &mnt3, "allow_other");
    assert!(out.status.success(), "{}", describe(&out));
    fs::write(mnt3.join("precious"), b"p").unwrap();
    unmount_path(&mnt3);
    let out = sealfs(&[
        OsStr::new("mkfs"),
        OsStr::new("--size"),
        OsStr::new("64M"),
        img2.as_os_str(),
    ]);
    let msg = one_line_failure(&out, "mkfs over an existing sealfs");
    eprintln!("mkfs without --force: {msg}");
    let out = fsck(&img2);
    assert!(out.status.success(), "{}", describe(&out));
    let out = sealfs_mount(&img2, &mnt3, "allow_other");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fs::read(mnt3.join("precious")).unwrap(), b"p");
    unmount_path(&mnt3);
    let out = sealfs(&[
        OsStr::new("mkfs"),
        OsStr::new("--force"),
        OsStr::new("--size"),
        OsStr::new("64M"),
        img2.as_os_str(),
    ]);
    assert!(out.status.success(), "mkfs --force: {}", describe(&out));
    let out = sealfs_mount(&img2, &mnt3, "allow_other");
    assert!(out.status.success(), "{}", describe(&out));
    assert_errno!(fs::metadata(mnt3.join("precious")), libc::ENOENT);
    unmount_path(&mnt3);

    // Images that are not sealfs.
    let zeros = dir.join("zeros");
    fs::File::create(&zeros).unwrap().set_len(16 << 20).unwrap();
    let random = dir.join("random");
    fs::write(&random, pattern(99, 0, 4 << 20)).unwrap();
    for junk in [&zeros, &random] {
        let out = sealfs_mount(junk, &mnt3, "allow_other");
        let msg = one_line_failure(&out, &format!("mount {}", junk.display()));
        assert!(
            msg.contains("not a sealfs"),
            "message for {}: {msg}",
            junk.display()
        );
        assert!(!is_mounted(&mnt3));
        let out = fsck(junk);
        assert!(
            matches!(out.status.code(), Some(1) | Some(2)),
            "fsck of a non-sealfs file: {}",
            describe(&out)
        );
    }

    // A missing image.
    let missing = dir.join("no-such-image");
    let out = sealfs_mount(&missing, &mnt3, "allow_other");
    let msg = one_line_failure(&out, "mount of a missing image");
    assert!(
        msg.contains("no-such-image"),
        "names the missing file: {msg}"
    );
    assert!(!is_mounted(&mnt3));
    let out = fsck(&missing);
    assert_eq!(
        out.status.code(),
        Some(2),
        "fsck of a missing image: {}",
        describe(&out)
    );
    let out = sealfs(&[OsStr::new("fsck")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "fsck without an argument: {}",
        describe(&out)
    );

    assert_eq!(fs::read(m.path("keep")).unwrap(), b"kept");
}

#[test]
fn mkfs_region_sizes() {
    let dir = temp_dir();
    let img = dir.path().join("img");
    let mk = |extra: &[&str]| {
        let mut args: Vec<&OsStr> = vec![OsStr::new("mkfs"), OsStr::new("--force")];
        args.extend(extra.iter().map(OsStr::new));
        args.extend([OsStr::new("--size"), OsStr::new("256M"), img.as_os_str()]);
        sealfs(&args)
    };
    let out = mk(&["--log-size", "4M", "--checkpoint-size", "1M"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("log          4 MiB"), "{text}");
    assert!(text.contains("checkpoints  2 x 1 MiB"), "{text}");
    let out = fsck(&img);
    assert!(out.status.success(), "{}", describe(&out));
    for bad in ["1000", "60K", "65537"] {
        let out = mk(&["--log-size", bad]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--log-size {bad}: {}",
            describe(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--log-size must be a multiple of 4K and at least 64K"),
            "{err}"
        );
    }
    // More metadata than the device holds: refused with the reason, image unchanged.
    let out = mk(&["--log-size", "200M", "--checkpoint-size", "64M"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too small"),
        "{}",
        describe(&out)
    );
    let out = fsck(&img);
    assert!(
        out.status.success(),
        "the earlier filesystem is intact: {}",
        describe(&out)
    );
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn set_mode_of(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap()
}

/// The image holds every file's bytes whatever their modes: mkfs leaves it to its owner,
/// and a mount shared with other users (`allow_other`) refuses a device they could read or
/// write.
#[test]
fn image_is_private_and_allow_other_refuses_an_exposed_device() {
    if !can_mount() {
        skip("needs root and /dev/fuse");
        return;
    }
    let dir = temp_dir();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let _g = UnmountGuard(mnt.clone());

    // Created by mkfs: 0600 whatever the umask; nobody cannot open it.
    let img = dir.path().join("img");
    let out = {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(sealfs_bin());
        c.args([OsStr::new("mkfs"), OsStr::new("--size"), OsStr::new("64M")])
            .arg(&img);
        // SAFETY: umask only, between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0);
                Ok(())
            })
        };
        run(&mut c)
    };
    assert!(
        out.status.success(),
        "mkfs under umask 0: {}",
        describe(&out)
    );
    assert_eq!(mode_of(&img), 0o600, "a created image is private");
    let i2 = img.clone();
    assert_eq!(
        as_nobody(move || code(fs::File::open(&i2))),
        libc::EACCES,
        "another user cannot read the image"
    );

    // An existing image file loses group and other access.
    let old = dir.path().join("old");
    fs::File::create(&old).unwrap().set_len(64 << 20).unwrap();
    set_mode_of(&old, 0o664);
    let out = sealfs(&[OsStr::new("mkfs"), old.as_os_str()]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("access       owner only (mode 0664 -> 0600)"),
        "{}",
        describe(&out)
    );
    assert_eq!(mode_of(&old), 0o600);

    // allow_other (the default as root) over an image others may read or write, or that
    // another user owns: refused with the reason, nothing mounted.
    for (mode, owner, why) in [
        (0o644, 0, "its mode 0644 lets other users read or write it"),
        (0o660, 0, "its mode 0660 lets other users read or write it"),
        (0o602, 0, "its mode 0602 lets other users read or write it"),
        (0o600, NOBODY, "it belongs to uid 65534"),
    ] {
        set_mode_of(&img, mode);
        chown(&img, owner, 0).unwrap();
        for opts in ["allow_other", "rw"] {
            let out = sealfs_mount(&img, &mnt, opts);
            let msg = one_line_failure(&out, &format!("mount -o {opts} of a {mode:04o} image"));
            assert!(
                msg.contains("refusing to mount with allow_other") && msg.contains(why),
                "mode {mode:04o} owner {owner}: {msg}"
            );
            assert!(!is_mounted(&mnt));
        }
    }
    // Private and root's: mounts.
    chown(&img, 0, 0).unwrap();
    set_mode_of(&img, 0o600);
    let out = sealfs_mount(&img, &mnt, "allow_other");
    assert!(out.status.success(), "{}", describe(&out));
    fs::write(mnt.join("f"), b"x").unwrap();
    unmount_path(&mnt);
    let out = fsck(&img);
    assert!(out.status.success(), "{}", describe(&out));
}

/// fsck, mkfs and a mount of `img` on `mnt` each fail within 5 s with a message containing
/// `want`, and nothing is mounted on `mnt`.
fn refused_at_once(img: &Path, mnt: &Path, want: &str) {
    for (what, args) in [
        ("fsck", vec![OsStr::new("fsck"), img.as_os_str()]),
        (
            "mkfs",
            vec![OsStr::new("mkfs"), OsStr::new("--force"), img.as_os_str()],
        ),
        (
            "mount",
            vec![OsStr::new("mount"), img.as_os_str(), mnt.as_os_str()],
        ),
    ] {
        let t = Instant::now();
        let out = sealfs(&args);
        let msg = one_line_failure(&out, what);
        assert!(msg.contains(want), "{what}: {msg}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{what} failed only after {:?}",
            t.elapsed()
        );
        assert!(!is_mounted(mnt));
    }
}

/// A reader of the image can take a `flock` on it; mount, fsck and mkfs then fail at once
/// naming that process, not after a wait blaming a sealfs process. A mounted image is
/// named as mounted, at once.
#[test]
fn a_lock_on_the_image_names_its_holder_at_once() {
    let Some(Scratch {
        dir,
        img,
        mnt,
        _guard,
    }) = scratch()
    else {
        return;
    };

    // An unprivileged reader locks the image.
    set_mode_of(&img, 0o644);
    // setpriv execs flock, which keeps its pid; -o: only flock holds the lock, not the
    // command it runs.
    let mut holder = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "flock",
            "-x",
            "-o",
        ])
        .arg(&img)
        .args(["sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn setpriv flock");
    let probe = fs::File::open(&img).unwrap();
    wait_until("the reader holds the lock", Duration::from_secs(10), || {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&probe);
        // SAFETY: flock on an fd we own; a probe that got the lock gives it back at once.
        unsafe {
            if libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB) == 0 {
                libc::flock(fd, libc::LOCK_UN);
                return false;
            }
        }
        true
    });
    set_mode_of(&img, 0o600);
    let want = format!(
        "locked by process {} (flock), which is not a sealfs process",
        holder.id()
    );
    refused_at_once(&img, &mnt, &want);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = fsck(&img);
    assert!(out.status.success(), "lock gone: {}", describe(&out));

    // Mounted: fsck, mkfs and a second mount say so at once.
    let out = sealfs_mount(&img, &mnt, "allow_other");
    assert!(out.status.success(), "{}", describe(&out));
    let want = format!("mounted on {}", mnt.display());
    let mnt2 = dir.path().join("mnt2");
    fs::create_dir(&mnt2).unwrap();
    let _g2 = UnmountGuard(mnt2.clone());
    refused_at_once(&img, &mnt2, &want);
    unmount_path(&mnt);
    let out = fsck(&img);
    assert!(out.status.success(), "{}", describe(&out));
}

/// A mount by a relative path records the canonical one, so a window host elsewhere
/// reopens the right device; and a window host checks the superblock UUID of what it
/// opened before it maps anything.
#[test]
fn relative_image_path_and_device_identity() {
    let Some(Scratch {
        dir,
        img,
        mnt,
        _guard,
    }) = scratch()
    else {
        return;
    };
    let out = run(Command::new(sealfs_bin())
        .args(["mount", "img", "mnt"])
        .current_dir(dir.path()));
    assert!(out.status.success(), "{}", describe(&out));
    let (src, _, _) = mount_entry(&mnt).expect("mounted");
    assert_eq!(
        Path::new(&src),
        fs::canonicalize(&img).unwrap(),
        "the canonical path is recorded"
    );

    // A window host in another directory, beside an unrelated file of the same name.
    let elsewhere = temp_dir();
    let decoy = elsewhere.path().join("img");
    let decoy_bytes = pattern(7, 0, 4 << 20);
    fs::write(&decoy, &decoy_bytes).unwrap();
    let out = run(Command::new(sealfs_bin())
        .args([
            OsStr::new("map"),
            OsStr::new("--verify"),
            OsStr::new("--size"),
            OsStr::new("2M"),
        ])
        .arg(mnt.join("f"))
        .current_dir(elsewhere.path()));
    assert!(out.status.success(), "{}", describe(&out));
    assert_bytes(
        &fs::read(&decoy).unwrap(),
        &decoy_bytes,
        "the unrelated file",
    );

    // The image is replaced under the mount by another filesystem: the window host finds
    // another UUID at the recorded path and maps nothing.
    fs::rename(&img, dir.path().join("img.moved")).unwrap();
    mkfs_64m(&img);
    let before = fs::read(&img).unwrap();
    let out = sealfs(&[
        OsStr::new("map"),
        OsStr::new("--verify"),
        OsStr::new("--size"),
        OsStr::new("2M"),
        mnt.join("f").as_os_str(),
    ]);
    let msg = one_line_failure(&out, "map through a replaced device");
    assert!(
        msg.contains("does not hold the mounted filesystem (UUID differs)"),
        "{msg}"
    );
    assert!(
        fs::read(&img).unwrap() == before,
        "the other filesystem is unchanged"
    );
    unmount_path(&mnt);
    for i in [img.clone(), dir.path().join("img.moved")] {
        let out = fsck(&i);
        assert!(out.status.success(), "{}", describe(&out));
    }
}

/// mkfs size errors name the problem; nothing is left behind.
#[test]
fn mkfs_size_errors_say_what_is_wrong() {
    let dir = temp_dir();
    let img = dir.path().join("img");
    for (args, want) in [
        (
            vec!["--size", "512K"],
            "size 512 KiB (524288 bytes) is below the minimum of 1 MiB",
        ),
        (
            vec!["--block-size", "2M", "--size", "3M"],
            "size 3 MiB is too small: no room for a single 2 MiB data block after the metadata",
        ),
        (
            vec![
                "--size",
                "2M",
                "--log-size",
                "1M",
                "--checkpoint-size",
                "1M",
            ],
            "size 2 MiB is too small for the metadata (log and two checkpoint areas)",
        ),
    ] {
        let mut a: Vec<&OsStr> = vec![OsStr::new("mkfs")];
        a.extend(args.iter().map(OsStr::new));
        a.push(img.as_os_str());
        let out = sealfs(&a);
        let msg = one_line_failure(&out, &format!("mkfs {args:?}"));
        assert!(msg.contains(want), "mkfs {args:?}: {msg}");
        assert!(!msg.contains("corrupt"), "mkfs {args:?}: {msg}");
        assert!(!img.exists(), "mkfs {args:?} left the image it created");
    }
}

/// fsck's note on where log replay stopped reads as the normal end of the log.
#[test]
fn fsck_notes_the_normal_end_of_the_log() {
    let dir = temp_dir();
    let img = dir.path().join("img");
    let out = sealfs(&[
        OsStr::new("mkfs"),
        OsStr::new("--size"),
        OsStr::new("8M"),
        img.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = fsck(&img);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "note: replayed 0 log records; replay ended at the end of the log, offset 4096 (no record starts there)"
        ),
        "{text}"
    );
    assert!(!text.contains("bad magic"), "{text}");
}

/// A user other than root is told why a mount fails, and `sealfs extents` prints its
/// refusal without a table header before it.
#[test]
fn unprivileged_mount_and_extents_say_why() {
    let Some(m) = Mount::new("") else { return };
    fs::write(m.path("f"), b"data").unwrap();
    let as_nobody_run = |args: &[&OsStr], cwd: &Path| {
        run(Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(sealfs_bin())
            .args(args)
            .current_dir(cwd))
    };
    let out = as_nobody_run(&[OsStr::new("extents"), m.path("f").as_os_str()], m.dir());
    let msg = one_line_failure(&out, "extents as nobody");
    assert!(
        msg.contains("device addresses are shown to root only"),
        "{msg}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "no table header");

    // nobody's own image and mountpoint.
    let dir = temp_dir();
    let img = dir.path().join("img");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let _g = UnmountGuard(mnt.clone());
    chown(dir.path(), NOBODY, NOGROUP).unwrap();
    chown(&mnt, NOBODY, NOGROUP).unwrap();
    let out = as_nobody_run(
        &[
            OsStr::new("mkfs"),
            OsStr::new("--size"),
            OsStr::new("8M"),
            img.as_os_str(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let out = as_nobody_run(
        &[OsStr::new("mount"), img.as_os_str(), mnt.as_os_str()],
        dir.path(),
    );
    if out.status.success() {
        // A user mount that works (fusermount3 and an open /dev/fuse): nothing to explain.
        unmount_path(&mnt);
        return;
    }
    let msg = one_line_failure(&out, "mount as nobody");
    assert!(
        msg.contains("mount failed: ")
            && msg.contains("(not root")
            && msg.contains("mount as root)"),
        "{msg}"
    );
}

/// An image on a read-only filesystem: fsck checks it, `-o ro` mounts it (stores fail with
/// EROFS, nothing touches the image), a read-write mount and a remount rw say why not.
#[test]
fn image_on_a_read_only_filesystem() {
    if !can_mount() {
        skip("needs root and /dev/fuse");
        return;
    }
    let dir = temp_dir();
    let ro = dir.path().join("ro");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&ro).unwrap();
    fs::create_dir(&mnt).unwrap();
    let out = run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=96m", "sealfs-test-ro"])
        .arg(&ro));
    assert!(out.status.success(), "mount tmpfs: {}", describe(&out));
    let _gro = UnmountGuard(ro.clone());
    let _g = UnmountGuard(mnt.clone());
    let img = ro.join("img");
    mkfs_64m(&img);
    let out = sealfs_mount(&img, &mnt, "allow_other");
    assert!(out.status.success(), "{}", describe(&out));
    fs::write(mnt.join("f"), b"kept").unwrap();
    let daemon = find_daemon(&mnt);
    unmount_path(&mnt);
    // The daemon holds the image open for writing until it has exited.
    if let Some(pid) = daemon {
        wait_pid_gone(pid, Duration::from_secs(30));
    }
    let out = run(Command::new("mount").args(["-o", "remount,ro"]).arg(&ro));
    assert!(out.status.success(), "remount tmpfs ro: {}", describe(&out));
    let before = fs::read(&img).unwrap();

    let out = fsck(&img);
    assert!(out.status.success(), "fsck: {}", describe(&out));
    let out = sealfs_mount(&img, &mnt, "ro,allow_other");
    assert!(out.status.success(), "mount -o ro: {}", describe(&out));
    assert_eq!(fs::read(mnt.join("f")).unwrap(), b"kept");
    assert_errno!(fs::write(mnt.join("g"), b"x"), libc::EROFS);
    let out = run(Command::new(sealfs_bin())
        .args(["mount", "-o", "remount,rw"])
        .arg(&img)
        .arg(&mnt));
    let msg = one_line_failure(&out, "remount rw of a read-only device");
    assert!(msg.contains("Read-only file system"), "{msg}");
    assert!(
        mount_entry(&mnt).is_some_and(|(_, _, o)| o.split(',').any(|x| x == "ro")),
        "still mounted read-only"
    );
    assert_eq!(fs::read(mnt.join("f")).unwrap(), b"kept");
    unmount_path(&mnt);
    let out = sealfs_mount(&img, &mnt, "allow_other");
    let msg = one_line_failure(
        &out,
        "read-write mount of an image on a read-only filesystem",
    );
    assert!(msg.contains("Read-only file system"), "{msg}");
    assert!(fs::read(&img).unwrap() == before, "the image is unchanged");
}

/// The image shrinks under a live mount: accesses past its new end answer EIO, the
/// daemon keeps serving (and says why in its log), and unmounts normally.
#[test]
fn truncated_image_answers_eio_and_the_daemon_survives() {
    let Some(Scratch {
        dir,
        img,
        mnt,
        _guard,
    }) = scratch()
    else {
        return;
    };
    let log = dir.path().join("log");
    let out = run(Command::new(sealfs_bin())
        .args(["mount", "-o", "allow_other"])
        .arg(&img)
        .arg(&mnt)
        .env("SEALFS_LOG", &log)
        .env("RUST_LOG", "sealfs=error"));
    assert!(out.status.success(), "{}", describe(&out));
    let daemon = find_daemon(&mnt).expect("daemon");
    let small = pattern(1, 0, 4096);
    let big = pattern(2, 0, 8 << 20);
    fs::write(mnt.join("small"), &small).unwrap();
    fs::write(mnt.join("big"), &big).unwrap();

    // Data starts at 6 MiB on a 64 MiB image: keep the metadata, drop every data block.
    fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(6 << 20)
        .unwrap();
    assert_errno!(fs::read(mnt.join("big")), libc::EIO);
    assert_errno!(fs::read(mnt.join("small")), libc::EIO);
    assert_errno!(
        fs::write(mnt.join("new"), pattern(3, 0, 1 << 20)),
        libc::EIO
    );
    // Still serving.
    assert!(
        !pid_gone_within(daemon, Duration::from_millis(200)),
        "the daemon died"
    );
    assert!(is_mounted(&mnt));
    let names: Vec<String> = fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"big".to_string()), "{names:?}");
    assert_eq!(fs::metadata(mnt.join("big")).unwrap().len(), 8 << 20);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("the device shrank under the mount"),
        "the log says why: {text}"
    );
    unmount_path(&mnt);
    wait_pid_gone(daemon, Duration::from_secs(30));
}
