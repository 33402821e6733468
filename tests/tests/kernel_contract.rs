//! What the kernel leaves to a FUSE server, through a real mount: the access-time policy
//! of the mount (also after `remount`), `dev`/`suid` under `mount -t fuse.sealfs` as root,
//! `RENAME_WHITEOUT`, file handles (`name_to_handle_at` / `open_by_handle_at`) and the
//! clearing of set-user/group-ID bits by a direct write.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use sealfs_tests::*;

fn atime(p: &Path) -> (i64, i64) {
    let m = fs::metadata(p).unwrap();
    (m.atime(), m.atime_nsec())
}

/// Reads `p` through a fresh descriptor (a read request reaches the daemon).
fn read_all(p: &Path) {
    let f = fs::File::open(p).unwrap();
    let mut buf = [0u8; 16];
    assert!(f.read_at(&mut buf, 0).unwrap() > 0);
}

/// `sealfs IMG MNT -o remount,OPTS`, the form mount(8) runs for a remount.
fn remount_with(m: &Mount, opts: &str) {
    let out = Command::new(sealfs_bin())
        .arg(m.img())
        .arg(m.mnt())
        .args(["-o", &format!("remount,{opts}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "remount,{opts}: {}", describe(&out));
}

/// The per-mount options of `mnt` in /proc/mounts.
fn options(mnt: &Path) -> Vec<String> {
    let (_, _, o) = mount_entry(mnt).expect("mounted");
    o.split(',').map(str::to_string).collect()
}

#[test]
fn atime_follows_the_mount_flags() {
    let Some(m) = Mount::new("") else { return };
    let f = m.path("f");
    fs::write(&f, b"data").unwrap();
    // Default (relatime): the first read after a write updates atime, the next does not.
    assert!(options(m.mnt()).iter().any(|o| o == "relatime"));
    let t0 = atime(&f);
    sleep(Duration::from_millis(20));
    read_all(&f);
    let t1 = atime(&f);
    assert!(
        t1 > t0,
        "relatime: first read after the write updates atime"
    );
    sleep(Duration::from_millis(20));
    read_all(&f);
    assert_eq!(atime(&f), t1, "relatime: atime after mtime is kept");

    // remount,strictatime: every read updates it.
    remount_with(&m, "strictatime");
    let o = options(m.mnt());
    assert!(
        !o.iter().any(|o| o == "relatime" || o == "noatime"),
        "{o:?}"
    );
    sleep(Duration::from_millis(20));
    read_all(&f);
    let t2 = atime(&f);
    assert!(t2 > t1, "strictatime: a read updates atime");
    sleep(Duration::from_millis(20));
    read_all(&f);
    let t3 = atime(&f);
    assert!(t3 > t2, "strictatime: every read updates atime");

    // remount,noatime: reads never update it, even with atime before mtime.
    remount_with(&m, "noatime");
    assert!(options(m.mnt()).iter().any(|o| o == "noatime"));
    fs::write(&f, b"newer").unwrap();
    let t4 = atime(&f);
    sleep(Duration::from_millis(20));
    read_all(&f);
    assert_eq!(atime(&f), t4, "noatime: a read leaves atime alone");

    // remount,relatime: back to the default rule (atime is before mtime: updated once).
    remount_with(&m, "relatime");
    assert!(options(m.mnt()).iter().any(|o| o == "relatime"));
    read_all(&f);
    let t5 = atime(&f);
    assert!(t5 > t4, "relatime again: atime before mtime is updated");
    read_all(&f);
    assert_eq!(atime(&f), t5);
}

#[test]
fn strictatime_and_nodiratime_at_mount_time() {
    let Some(m) = Mount::new("strictatime,nodiratime") else {
        return;
    };
    let o = options(m.mnt());
    assert!(o.iter().any(|o| o == "nodiratime"), "{o:?}");
    assert!(
        !o.iter().any(|o| o == "relatime" || o == "noatime"),
        "{o:?}"
    );
    let f = m.path("f");
    fs::write(&f, b"data").unwrap();
    read_all(&f);
    let t1 = atime(&f);
    sleep(Duration::from_millis(20));
    read_all(&f);
    assert!(atime(&f) > t1, "strictatime from the start");

    // nodiratime: listing a directory leaves its atime alone; without it (remount
    // keeps strictatime), every listing updates it.
    let d = m.path("d");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("x"), b"").unwrap();
    let t0 = atime(&d);
    sleep(Duration::from_millis(20));
    assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    assert_eq!(
        atime(&d),
        t0,
        "nodiratime: a listing keeps the directory's atime"
    );
    remount_with(&m, "diratime");
    assert!(!options(m.mnt()).iter().any(|o| o == "nodiratime"));
    assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    let t1 = atime(&d);
    assert!(t1 > t0, "a listing updates the directory's atime");
    sleep(Duration::from_millis(20));
    assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    assert!(atime(&d) > t1, "strictatime: every listing");
    // A listing of an unchanged directory under relatime does not.
    remount_with(&m, "relatime");
    let t2 = atime(&d);
    assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    assert_eq!(atime(&d), t2, "relatime: atime after mtime is kept");
}

#[test]
fn noatime_at_mount_time() {
    let Some(m) = Mount::new("noatime") else {
        return;
    };
    let f = m.path("f");
    fs::write(&f, b"data").unwrap();
    let t0 = atime(&f);
    sleep(Duration::from_millis(20));
    read_all(&f);
    assert_eq!(atime(&f), t0);
}

/// `mount.fuse.sealfs IMG MNT -o OPTS` (what `mount -t fuse.sealfs` runs), through a
/// symlink of that name to this build.
fn helper_mount(dir: &Path, img: &Path, mnt: &Path, opts: &str) {
    let helper = dir.join("mount.fuse.sealfs");
    if !helper.exists() {
        std::os::unix::fs::symlink(sealfs_bin(), &helper).unwrap();
    }
    let out = Command::new(&helper)
        .arg(img)
        .arg(mnt)
        .args(["-o", opts])
        .output()
        .unwrap();
    assert!(out.status.success(), "helper -o {opts}: {}", describe(&out));
}

#[test]
fn helper_as_root_mounts_dev_suid_unless_told() {
    let Some(mut m) = Mount::new("") else { return };
    // A device node to open: the null device (1:3).
    mknod(&m.path("null"), libc::S_IFCHR | 0o666, 1, 3).unwrap();
    let (dir, img, mnt) = (
        m.dir().to_path_buf(),
        m.img().to_path_buf(),
        m.mnt().to_path_buf(),
    );
    m.umount();
    let _guard = UnmountGuard(mnt.clone());

    helper_mount(&dir, &img, &mnt, "allow_other");
    let o = options(&mnt);
    assert!(
        !o.iter().any(|o| o == "nodev" || o == "nosuid"),
        "mount -t fuse.sealfs as root: dev,suid: {o:?}"
    );
    let mut null = fs::OpenOptions::new()
        .write(true)
        .open(mnt.join("null"))
        .unwrap();
    null.write_all(b"gone").unwrap();
    drop(null);
    unmount_path(&mnt);

    helper_mount(&dir, &img, &mnt, "nodev,nosuid,allow_other");
    let o = options(&mnt);
    assert!(
        o.iter().any(|o| o == "nodev") && o.iter().any(|o| o == "nosuid"),
        "{o:?}"
    );
    assert_eq!(
        errno_of(|| fs::File::open(mnt.join("null"))),
        libc::EACCES,
        "a device node on a nodev mount"
    );
    unmount_path(&mnt);

    // `sealfs mount` keeps fuser's (and libfuse's) nodev,nosuid default.
    let out = sealfs(&[
        OsStr::new("mount"),
        OsStr::new("-o"),
        OsStr::new("allow_other"),
        img.as_os_str(),
        mnt.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let o = options(&mnt);
    assert!(
        o.iter().any(|o| o == "nodev") && o.iter().any(|o| o == "nosuid"),
        "{o:?}"
    );
    unmount_path(&mnt);
    let out = sealfs(&[OsStr::new("fsck"), img.as_os_str()]);
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn rename_whiteout() {
    let Some(mut m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);
    fs::write(p("a"), b"payload").unwrap();
    renameat2(&p("a"), &p("b"), libc::RENAME_WHITEOUT).unwrap();
    assert_eq!(fs::read(p("b")).unwrap(), b"payload");
    let st = lstat(&p("a")).unwrap();
    assert_eq!(st.st_mode, libc::S_IFCHR, "a whiteout: char device, mode 0");
    assert_eq!(st.st_rdev, 0, "a whiteout is 0:0");
    assert_eq!(st.st_nlink, 1);
    assert!(fs::symlink_metadata(p("a"))
        .unwrap()
        .file_type()
        .is_char_device());

    // Over an existing target, and with RENAME_NOREPLACE.
    fs::write(p("c"), b"c").unwrap();
    fs::write(p("d"), b"d").unwrap();
    renameat2(&p("c"), &p("d"), libc::RENAME_WHITEOUT).unwrap();
    assert_eq!(fs::read(p("d")).unwrap(), b"c");
    assert_eq!(lstat(&p("c")).unwrap().st_mode, libc::S_IFCHR);
    fs::write(p("e"), b"e").unwrap();
    assert_eq!(
        errno_of(|| renameat2(
            &p("e"),
            &p("d"),
            libc::RENAME_WHITEOUT | libc::RENAME_NOREPLACE
        )),
        libc::EEXIST
    );
    renameat2(
        &p("e"),
        &p("f"),
        libc::RENAME_WHITEOUT | libc::RENAME_NOREPLACE,
    )
    .unwrap();
    assert_eq!(lstat(&p("e")).unwrap().st_mode, libc::S_IFCHR);

    // A directory leaves a whiteout too; RENAME_EXCHANGE with it is invalid.
    fs::create_dir(p("dir")).unwrap();
    renameat2(&p("dir"), &p("dir2"), libc::RENAME_WHITEOUT).unwrap();
    assert!(fs::metadata(p("dir2")).unwrap().is_dir());
    assert_eq!(lstat(&p("dir")).unwrap().st_mode, libc::S_IFCHR);
    assert_eq!(
        errno_of(|| renameat2(
            &p("b"),
            &p("d"),
            libc::RENAME_WHITEOUT | libc::RENAME_EXCHANGE
        )),
        libc::EINVAL
    );
    // A missing source changes nothing.
    assert_eq!(
        errno_of(|| renameat2(&p("nope"), &p("x"), libc::RENAME_WHITEOUT)),
        libc::ENOENT
    );

    // Whiteouts survive a remount (and fsck is clean).
    m.remount_checked();
    let p = |s: &str| m.path(s);
    for w in ["a", "c", "e", "dir"] {
        let st = lstat(&p(w)).unwrap();
        assert_eq!((st.st_mode, st.st_rdev), (libc::S_IFCHR, 0), "{w}");
    }
    assert_eq!(fs::read(p("b")).unwrap(), b"payload");
    assert_eq!(fs::read(p("f")).unwrap(), b"e");
    // A whiteout is removed like any other name.
    fs::remove_file(p("a")).unwrap();
    assert_eq!(errno_of(|| lstat(&p("a"))), libc::ENOENT);
}

/// `struct file_handle` with room for the handle bytes.
#[repr(C)]
struct Handle {
    bytes: u32,
    kind: i32,
    f: [u8; 128],
}

fn name_to_handle(p: &Path) -> std::io::Result<(Handle, i32)> {
    let c = cpath(p);
    let mut h = Handle {
        bytes: 128,
        kind: 0,
        f: [0; 128],
    };
    let mut mount_id: i32 = 0;
    // SAFETY: valid C string, a handle buffer of the declared size, a mount id out-param.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c.as_ptr(),
            &mut h as *mut Handle,
            &mut mount_id as *mut i32,
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((h, mount_id))
}

fn open_by_handle(mnt: &Path, h: &mut Handle) -> std::io::Result<fs::File> {
    let dir = fs::File::open(mnt)?;
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: a valid directory fd and handle; the returned fd is owned by the File.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            dir.as_raw_fd(),
            h as *mut Handle,
            libc::O_RDONLY,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nobody else owns.
    Ok(unsafe { fs::File::from_raw_fd(fd as i32) })
}

/// Drops the kernel's dentry and inode caches, so that a handle must be resolved by
/// asking the daemon.
fn drop_caches() {
    // SAFETY: no arguments.
    unsafe { libc::sync() };
    fs::write("/proc/sys/vm/drop_caches", b"2").unwrap();
}

#[test]
fn file_handles_resolve_through_the_daemon() {
    let Some(m) = Mount::new("") else { return };
    fs::create_dir(m.path("d")).unwrap();
    fs::write(m.path("d/f"), b"handle me").unwrap();
    let (mut hf, _) = name_to_handle(&m.path("d/f")).unwrap();
    let (mut hd, _) = name_to_handle(&m.path("d")).unwrap();
    drop_caches();
    let mut buf = [0u8; 9];
    open_by_handle(m.mnt(), &mut hf)
        .unwrap()
        .read_exact_at(&mut buf, 0)
        .unwrap();
    assert_eq!(&buf, b"handle me");
    let d = open_by_handle(m.mnt(), &mut hd).unwrap();
    assert!(d.metadata().unwrap().is_dir());
    assert_eq!(
        d.metadata().unwrap().ino(),
        fs::metadata(m.path("d")).unwrap().ino()
    );
    drop(d);

    // Renamed: the handle still names the file.
    fs::rename(m.path("d/f"), m.path("g")).unwrap();
    drop_caches();
    open_by_handle(m.mnt(), &mut hf)
        .unwrap()
        .read_exact_at(&mut buf, 0)
        .unwrap();
    assert_eq!(&buf, b"handle me");

    // Removed (and not open): the handle goes stale once the kernel lets go of the
    // inode (the release of the descriptor above is asynchronous and pins it until the
    // daemon has answered); until then the kernel resolves it from its own cache.
    fs::remove_file(m.path("g")).unwrap();
    let mut err = 0;
    wait_until(
        "the handle of a removed file to go stale",
        Duration::from_secs(10),
        || {
            drop_caches();
            match open_by_handle(m.mnt(), &mut hf) {
                Ok(_) => false,
                Err(e) => {
                    err = e.raw_os_error().unwrap_or(0);
                    true
                }
            }
        },
    );
    assert_eq!(err, libc::ESTALE);
}

fn mode_of(p: &PathBuf) -> u32 {
    fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn direct_write_by_another_user_clears_set_id_bits() {
    let Some(m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);
    for (name, before, after) in [
        ("suid", 0o4777, 0o0777),
        ("sgid_gx", 0o2777, 0o0777),
        // set-group-ID without group execute marks mandatory locking: kept.
        ("sgid_nogx", 0o2767, 0o2767),
        ("both", 0o6777, 0o0777),
    ] {
        fs::write(p(name), b"x").unwrap();
        chmod(&p(name), before).unwrap();
        let path = p(name);
        let r = as_nobody(move || {
            let r = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.write_at(b"y", 0));
            code(r)
        });
        assert_eq!(r, 0, "{name}: write as nobody");
        assert_eq!(mode_of(&p(name)), after, "{name}");
    }
    // Root (CAP_FSETID) keeps them.
    fs::write(p("root"), b"x").unwrap();
    chmod(&p("root"), 0o6777).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(p("root"))
        .unwrap()
        .write_at(b"y", 0)
        .unwrap();
    assert_eq!(mode_of(&p("root")), 0o6777);
}

/// The ioctl behind `seal`/`map`: `arg` is read and written in place.
fn ioctl_inout(f: &fs::File, req: u32, arg: &mut [u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `arg` is as large as the size encoded in `req`, and lives across the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req as _, arg.as_mut_ptr()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn block_counts_after_ioctls_that_fill_holes() {
    // The kernel caches attributes for the mount's timeout; SEAL with POPULATE and a
    // writable SETUPMAPPING allocate blocks behind its back, so the daemon must invalidate.
    let Some(m) = Mount::new("timeout=3600") else {
        return;
    };
    let blocks = |p: &Path| fs::metadata(p).unwrap().blocks();
    // A file of `len` bytes, all hole, its attributes now in the kernel's cache.
    let sparse = |name: &str, len: u64| {
        let p = m.path(name);
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
            .unwrap();
        f.set_len(len).unwrap();
        assert_eq!(blocks(&p), 0, "{name}: a hole");
        (p, f)
    };
    let (p, f) = sparse("sparse-seal", 1 << 20);
    let mut arg = sealfs::abi::SealArg {
        offset: 0,
        length: 0,
        flags: sealfs::abi::SEAL_POPULATE,
    }
    .encode();
    ioctl_inout(&f, sealfs::abi::IOC_SEAL, &mut arg).expect("SEAL with POPULATE");
    assert_eq!(blocks(&p), 2048, "SEAL with POPULATE filled the 1 MiB hole");
    drop(f);

    let (q, g) = sparse("sparse-map", 4 << 20);
    let mut arg = sealfs::abi::SetupMapping {
        foffset: 0,
        len: 2 << 20,
        flags: 2, // SEALFS_MAP_WRITE
        moffset: 0,
    }
    .encode();
    ioctl_inout(&g, sealfs::abi::IOC_SETUPMAPPING, &mut arg).expect("SETUPMAPPING");
    assert_eq!(blocks(&q), 4096, "a writable mapping filled 2 MiB");
    let mut ranges = sealfs::abi::encode_ranges(&[(0, 2 << 20)]);
    ioctl_inout(&g, sealfs::abi::IOC_REMOVEMAPPING, &mut ranges).expect("REMOVEMAPPING");
}
