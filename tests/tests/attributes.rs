//! Attributes through a real mount: modes, owners, umask, setgid inheritance, nanosecond
//! timestamps and which operation updates which of them, and extended attributes.

use std::fs;
use std::path::Path;
use std::time::Duration;

use sealfs_tests::*;

/// A pause that makes "updated" distinguishable from "unchanged" for timestamps (never used
/// to wait for anything to happen).
fn gap() {
    std::thread::sleep(Duration::from_millis(30));
}

/// The kernel may stamp with its coarse clock (a tick behind the wall clock).
const SLACK_NS: i64 = 50_000_000;

fn ns(t: Ts) -> i128 {
    t.0 as i128 * 1_000_000_000 + t.1 as i128
}

#[track_caller]
fn assert_recent(t: Ts, since: Ts, what: &str) {
    let now = now();
    assert!(
        ns(t) >= ns(since) - SLACK_NS as i128 && ns(t) <= ns(now) + SLACK_NS as i128,
        "{what}: {t:?} is not between {since:?} and {now:?}"
    );
}

#[track_caller]
fn assert_newer(after: Ts, before: Ts, what: &str) {
    assert!(
        ns(after) > ns(before),
        "{what}: {after:?} not newer than {before:?}"
    );
}

fn mode(p: &Path) -> u32 {
    lstat(p).unwrap().st_mode
}

#[test]
fn modes_owners_umask_setgid() {
    let Some(m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);

    fs::write(p("f"), b"x").unwrap();
    assert_eq!(mode(&p("f")), libc::S_IFREG | 0o644, "0666 & ~022");
    for bits in [0o751, 0o4755, 0o2755, 0o1700, 0o7777, 0o000] {
        chmod(&p("f"), bits).unwrap();
        assert_eq!(mode(&p("f")), libc::S_IFREG | bits, "chmod {bits:o}");
    }
    chmod(&p("f"), 0o7777).unwrap();
    chown(&p("f"), 1000, 2000).unwrap();
    let st = lstat(&p("f")).unwrap();
    assert_eq!((st.st_uid, st.st_gid), (1000, 2000));
    assert_eq!(
        st.st_mode,
        libc::S_IFREG | 0o1777,
        "chown clears set-user-ID and set-group-ID (group-executable) on a file"
    );
    chown(&p("f"), u32::MAX, 3000).unwrap();
    let st = lstat(&p("f")).unwrap();
    assert_eq!((st.st_uid, st.st_gid), (1000, 3000), "-1 leaves the owner");

    fs::create_dir(p("d")).unwrap();
    chmod(&p("d"), 0o2755).unwrap();
    chown(&p("d"), 5, 6).unwrap();
    assert_eq!(
        mode(&p("d")),
        libc::S_IFDIR | 0o2755,
        "a directory keeps setgid on chown"
    );

    // Symlink ownership (lchown) and mode (always 0777).
    std::os::unix::fs::symlink("f", p("sl")).unwrap();
    assert_eq!(mode(&p("sl")), libc::S_IFLNK | 0o777);
    std::os::unix::fs::lchown(p("sl"), Some(7), Some(8)).unwrap();
    let st = lstat(&p("sl")).unwrap();
    assert_eq!((st.st_uid, st.st_gid), (7, 8));
    assert_eq!(
        lstat(&p("f")).unwrap().st_uid,
        1000,
        "lchown does not follow"
    );

    // umask applies to every kind of creation (set in a child: the umask is per process).
    let r = in_child(
        ChildCreds {
            user: None,
            umask: Some(0o027),
        },
        || {
            let r = open(&p("um_file"), libc::O_CREAT | libc::O_WRONLY, 0o666)
                .and_then(|_| {
                    let c = cpath(&p("um_dir"));
                    // SAFETY: a valid C string.
                    if unsafe { libc::mkdir(c.as_ptr(), 0o777) } != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                })
                .and_then(|_| mknod(&p("um_fifo"), libc::S_IFIFO | 0o666, 0, 0))
                .and_then(|_| mknod(&p("um_reg"), libc::S_IFREG | 0o777, 0, 0));
            code(r)
        },
    );
    assert_eq!(r, 0);
    assert_eq!(mode(&p("um_file")), libc::S_IFREG | 0o640);
    assert_eq!(mode(&p("um_dir")), libc::S_IFDIR | 0o750);
    assert_eq!(mode(&p("um_fifo")), libc::S_IFIFO | 0o640);
    assert_eq!(mode(&p("um_reg")), libc::S_IFREG | 0o750);

    // A setgid directory hands its group (and, to subdirectories, the setgid bit) down.
    fs::create_dir(p("sg")).unwrap();
    chown(&p("sg"), 0, 1234).unwrap();
    chmod(&p("sg"), 0o2777).unwrap();
    fs::write(p("sg/file"), b"").unwrap();
    fs::create_dir(p("sg/sub")).unwrap();
    mknod(&p("sg/node"), libc::S_IFIFO | 0o644, 0, 0).unwrap();
    std::os::unix::fs::symlink("x", p("sg/link")).unwrap();
    for n in ["sg/file", "sg/sub", "sg/node", "sg/link"] {
        assert_eq!(lstat(&p(n)).unwrap().st_gid, 1234, "{n} inherits the group");
    }
    assert_eq!(
        mode(&p("sg/file")),
        libc::S_IFREG | 0o644,
        "files do not get setgid"
    );
    assert_eq!(
        mode(&p("sg/sub")),
        libc::S_IFDIR | 0o2755,
        "subdirectories do"
    );
    fs::create_dir(p("sg/sub/deeper")).unwrap();
    assert_eq!(lstat(&p("sg/sub/deeper")).unwrap().st_gid, 1234);
    assert_eq!(
        as_nobody(|| code(fs::write(p("sg/by_nobody"), b""))),
        0,
        "nobody creates in the 2777 directory"
    );
    let st = lstat(&p("sg/by_nobody")).unwrap();
    assert_eq!((st.st_uid, st.st_gid), (NOBODY, 1234));
    // Without setgid on the parent the creator's group is used.
    fs::create_dir(p("plain")).unwrap();
    chmod(&p("plain"), 0o777).unwrap();
    assert_eq!(as_nobody(|| code(fs::write(p("plain/n"), b""))), 0);
    let st = lstat(&p("plain/n")).unwrap();
    assert_eq!((st.st_uid, st.st_gid), (NOBODY, NOGROUP));
}

#[test]
fn timestamps() {
    let Some(mut m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);
    fs::create_dir(p("d1")).unwrap();
    fs::create_dir(p("d2")).unwrap();

    // Creation sets all three, and the parent's mtime and ctime.
    let (_, d1m, d1c) = times(&p("d1"));
    gap();
    let t0 = now();
    fs::write(p("d1/f"), b"").unwrap();
    let (a, mt, c) = times(&p("d1/f"));
    assert_recent(a, t0, "atime at create");
    assert_recent(mt, t0, "mtime at create");
    assert_recent(c, t0, "ctime at create");
    let (_, m2, c2) = times(&p("d1"));
    assert_newer(m2, d1m, "parent mtime after create");
    assert_newer(c2, d1c, "parent ctime after create");

    // Explicit nanosecond times round-trip exactly, including before 1970 and after 2038.
    let cases: [(Ts, Ts); 4] = [
        ((1_000_000_000, 123_456_789), (1_234_567_890, 987_654_321)),
        ((0, 0), (1, 1)),
        ((-1_000_000, 500), (-86_400, 999_999_999)),
        ((4_102_444_800, 1), (4_102_444_801, 999_999_998)),
    ];
    for (at, mt) in cases {
        let (_, _, c0) = times(&p("d1/f"));
        gap();
        utimens(&p("d1/f"), at, mt).unwrap();
        let (a, mm, c) = times(&p("d1/f"));
        assert_eq!((a, mm), (at, mt), "utimensat round trip");
        assert_newer(c, c0, "ctime after utimensat");
    }
    // UTIME_OMIT leaves a field; UTIME_NOW takes the current time.
    let a_old = (1_111_111_111, 111);
    let m_old = (1_222_222_222, 222);
    utimens(&p("d1/f"), a_old, m_old).unwrap();
    let t1 = now();
    utimens(&p("d1/f"), (0, libc::UTIME_OMIT), (0, libc::UTIME_NOW)).unwrap();
    let (a, mm, _) = times(&p("d1/f"));
    assert_eq!(a, a_old, "UTIME_OMIT atime");
    assert_recent(mm, t1, "UTIME_NOW mtime");
    utimens(&p("d1/f"), (0, libc::UTIME_NOW), (0, libc::UTIME_OMIT)).unwrap();
    let (a, mm2, _) = times(&p("d1/f"));
    assert_recent(a, t1, "UTIME_NOW atime");
    assert_eq!(mm2, mm, "UTIME_OMIT mtime");

    // A write updates mtime and ctime, not atime.
    utimens(&p("d1/f"), a_old, m_old).unwrap();
    let (_, _, c0) = times(&p("d1/f"));
    gap();
    let t2 = now();
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().write(true).open(p("d1/f")).unwrap();
        f.write_all(b"some bytes").unwrap();
    }
    let (a, mm, c) = times(&p("d1/f"));
    assert_eq!(a, a_old, "write leaves atime");
    assert_recent(mm, t2, "mtime after write");
    assert_newer(c, c0, "ctime after write");

    // Truncate changes mtime and ctime.
    utimens(&p("d1/f"), a_old, m_old).unwrap();
    let (_, _, c0) = times(&p("d1/f"));
    gap();
    truncate(&p("d1/f"), 3).unwrap();
    let (a, mm, c) = times(&p("d1/f"));
    assert_eq!(a, a_old, "truncate leaves atime");
    assert_newer(mm, m_old, "mtime after truncate");
    assert_newer(c, c0, "ctime after truncate");

    // chmod, chown and setxattr change ctime only.
    let (_, _, c0) = times(&p("d1/f"));
    let (_, m0, _) = times(&p("d1/f"));
    for (what, op) in [
        (
            "chmod",
            Box::new(|| chmod(&p("d1/f"), 0o600)) as Box<dyn Fn() -> std::io::Result<()>>,
        ),
        ("chown", Box::new(|| chown(&p("d1/f"), 12, 34))),
        (
            "setxattr",
            Box::new(|| setxattr(&p("d1/f"), b"user.k", b"v", 0)),
        ),
        // An ioctl changes ctime behind the kernel's attribute cache: the daemon must
        // invalidate it (the next stat comes within the attribute timeout).
        (
            "chattr +a",
            Box::new(|| chattr(&p("d1/f"), FS_APPEND_FL, true)),
        ),
        (
            "chattr -a",
            Box::new(|| chattr(&p("d1/f"), FS_APPEND_FL, false)),
        ),
    ] {
        let (_, _, before) = times(&p("d1/f"));
        gap();
        op().unwrap();
        let (a, mm, c) = times(&p("d1/f"));
        assert_eq!(a, a_old, "{what} leaves atime");
        assert_eq!(mm, m0, "{what} leaves mtime");
        assert_newer(c, before, &format!("ctime after {what}"));
    }
    assert_newer(times(&p("d1/f")).2, c0, "ctime moved");

    // Reading does not change mtime or ctime.
    let (_, m0, c0) = times(&p("d1/f"));
    let _ = fs::read(p("d1/f")).unwrap();
    let (_, mm, c) = times(&p("d1/f"));
    assert_eq!((mm, c), (m0, c0), "read leaves mtime and ctime");

    // Rename: ctime of the moved inode, mtime and ctime of both directories.
    let (fa, fm, fc) = times(&p("d1/f"));
    let (_, d1m, d1c) = times(&p("d1"));
    let (_, d2m, d2c) = times(&p("d2"));
    gap();
    fs::rename(p("d1/f"), p("d2/g")).unwrap();
    let (a, mm, c) = times(&p("d2/g"));
    assert_eq!(
        (a, mm),
        (fa, fm),
        "rename leaves the moved file's atime and mtime"
    );
    assert_newer(c, fc, "ctime of the renamed file");
    let (_, m1, c1) = times(&p("d1"));
    let (_, m2, c2) = times(&p("d2"));
    assert_newer(m1, d1m, "source directory mtime after rename");
    assert_newer(c1, d1c, "source directory ctime after rename");
    assert_newer(m2, d2m, "target directory mtime after rename");
    assert_newer(c2, d2c, "target directory ctime after rename");

    // link and unlink: the inode's ctime and the directory's mtime and ctime.
    let (_, gm, gc) = times(&p("d2/g"));
    let (_, dm, dc) = times(&p("d2"));
    gap();
    fs::hard_link(p("d2/g"), p("d2/h")).unwrap();
    let (_, mm, c) = times(&p("d2/g"));
    assert_eq!(mm, gm, "link leaves mtime");
    assert_newer(c, gc, "ctime after link");
    let (_, m2, c2) = times(&p("d2"));
    assert_newer(m2, dm, "directory mtime after link");
    assert_newer(c2, dc, "directory ctime after link");
    let (_, _, gc) = times(&p("d2/g"));
    let (_, dm, dc) = times(&p("d2"));
    gap();
    fs::remove_file(p("d2/h")).unwrap();
    let (_, mm, c) = times(&p("d2/g"));
    assert_eq!(mm, gm, "unlink leaves mtime of the remaining link");
    assert_newer(c, gc, "ctime after unlink of another link");
    let (_, m2, c2) = times(&p("d2"));
    assert_newer(m2, dm, "directory mtime after unlink");
    assert_newer(c2, dc, "directory ctime after unlink");

    // mkdir / rmdir touch the parent.
    let (_, dm, dc) = times(&p("d2"));
    gap();
    fs::create_dir(p("d2/sub")).unwrap();
    let (_, m2, c2) = times(&p("d2"));
    assert_newer(m2, dm, "mtime after mkdir");
    assert_newer(c2, dc, "ctime after mkdir");
    gap();
    fs::remove_dir(p("d2/sub")).unwrap();
    let (_, m3, c3) = times(&p("d2"));
    assert_newer(m3, m2, "mtime after rmdir");
    assert_newer(c3, c2, "ctime after rmdir");

    // Symlinks carry their own times (utimensat with AT_SYMLINK_NOFOLLOW).
    std::os::unix::fs::symlink("g", p("d2/sl")).unwrap();
    utimens(&p("d2/sl"), (5, 5), (6, 6)).unwrap();
    let (a, mm, _) = times(&p("d2/sl"));
    assert_eq!((a, mm), ((5, 5), (6, 6)));
    assert_eq!(times(&p("d2/g")).1, gm, "the target is untouched");

    // Times survive a remount exactly.
    let before: Vec<_> = ["d1", "d2", "d2/g", "d2/sl"].map(|n| times(&p(n))).to_vec();
    m.remount();
    let after: Vec<_> = ["d1", "d2", "d2/g", "d2/sl"]
        .map(|n| times(&m.path(n)))
        .to_vec();
    assert_eq!(after, before, "times after remount");
}

#[test]
fn xattrs() {
    let Some(mut m) = Mount::new("") else { return };
    let f = m.path("f");
    fs::write(&f, b"x").unwrap();
    let d = m.path("d");
    fs::create_dir(&d).unwrap();

    assert_eq!(listxattr(&f).unwrap(), Vec::<Vec<u8>>::new());
    setxattr(&f, b"user.a", b"hello", 0).unwrap();
    setxattr(&f, b"trusted.t", b"T\0binary\xff", 0).unwrap();
    setxattr(&f, b"security.s", b"S", 0).unwrap();
    setxattr(&f, b"user.empty", b"", 0).unwrap();
    setxattr(&d, b"user.dir", b"on a directory", 0).unwrap();
    assert_eq!(getxattr(&f, b"user.a").unwrap(), b"hello");
    assert_eq!(getxattr(&f, b"trusted.t").unwrap(), b"T\0binary\xff");
    assert_eq!(getxattr(&f, b"security.s").unwrap(), b"S");
    assert_eq!(getxattr(&f, b"user.empty").unwrap(), b"");
    assert_eq!(getxattr(&d, b"user.dir").unwrap(), b"on a directory");
    let want: Vec<Vec<u8>> = vec![
        b"security.s".to_vec(),
        b"trusted.t".to_vec(),
        b"user.a".to_vec(),
        b"user.empty".to_vec(),
    ];
    assert_eq!(listxattr(&f).unwrap(), want);

    // Size queries and short buffers.
    assert_eq!(getxattr_sized(&f, b"user.a", 0).unwrap().len(), 5);
    assert_eq!(getxattr_sized(&f, b"user.a", 5).unwrap(), b"hello");
    assert_errno!(getxattr_sized(&f, b"user.a", 4), libc::ERANGE);
    let total: usize = want.iter().map(|n| n.len() + 1).sum();
    assert_eq!(listxattr_sized(&f, 0).unwrap().len(), total);
    assert_errno!(listxattr_sized(&f, total - 1), libc::ERANGE);

    // Flags.
    assert_errno!(
        setxattr(&f, b"user.a", b"x", libc::XATTR_CREATE),
        libc::EEXIST
    );
    assert_errno!(
        setxattr(&f, b"user.zz", b"x", libc::XATTR_REPLACE),
        libc::ENODATA
    );
    setxattr(&f, b"user.a", b"replaced", libc::XATTR_REPLACE).unwrap();
    setxattr(&f, b"user.new", b"created", libc::XATTR_CREATE).unwrap();
    assert_eq!(getxattr(&f, b"user.a").unwrap(), b"replaced");
    assert_eq!(getxattr(&f, b"user.new").unwrap(), b"created");
    assert_errno!(getxattr(&f, b"user.missing"), libc::ENODATA);
    assert_errno!(getxattr(&d, b"user.a"), libc::ENODATA);

    // Limits: 64 KiB values, 255-byte names.
    let big = pattern(1, 0, 65536);
    setxattr(&f, b"user.big", &big, 0).unwrap();
    assert_bytes(&getxattr(&f, b"user.big").unwrap(), &big, "64 KiB xattr");
    assert_errno!(
        setxattr(&f, b"user.toobig", &pattern(2, 0, 65537), 0),
        libc::E2BIG
    );
    let name255 = [b"user.".to_vec(), vec![b'n'; 250]].concat();
    let name256 = [b"user.".to_vec(), vec![b'n'; 251]].concat();
    setxattr(&f, &name255, b"long name", 0).unwrap();
    assert_eq!(getxattr(&f, &name255).unwrap(), b"long name");
    assert_errno!(setxattr(&f, &name256, b"v", 0), libc::ERANGE);
    assert_errno!(getxattr(&f, &name256), libc::ERANGE);

    // Removal.
    removexattr(&f, b"user.new").unwrap();
    assert_errno!(getxattr(&f, b"user.new"), libc::ENODATA);
    assert_errno!(removexattr(&f, b"user.new"), libc::ENODATA);

    // Symlinks: no user.* (Linux), trusted.* works.
    std::os::unix::fs::symlink("f", m.path("sl")).unwrap();
    assert_errno!(setxattr(&m.path("sl"), b"user.x", b"v", 0), libc::EPERM);
    setxattr(&m.path("sl"), b"trusted.sl", b"link attr", 0).unwrap();
    assert_eq!(
        getxattr(&m.path("sl"), b"trusted.sl").unwrap(),
        b"link attr"
    );
    assert_errno!(getxattr(&m.path("sl"), b"user.a"), libc::ENODATA);

    // Many attributes on one inode.
    let many = m.path("many");
    fs::write(&many, b"").unwrap();
    for i in 0..200 {
        setxattr(
            &many,
            format!("user.k{i:03}").as_bytes(),
            &pattern(i, 0, i as usize),
            0,
        )
        .unwrap();
    }
    assert_eq!(listxattr(&many).unwrap().len(), 200);

    // Permissions: reading needs read access, writing write access.
    chmod(&f, 0o644).unwrap();
    let ff = f.clone();
    assert_eq!(as_nobody(|| code(getxattr(&ff, b"user.a"))), 0);
    assert_eq!(
        as_nobody(|| code(setxattr(&ff, b"user.a", b"no", 0))),
        libc::EACCES
    );
    chmod(&f, 0o600).unwrap();
    assert_eq!(as_nobody(|| code(getxattr(&ff, b"user.a"))), libc::EACCES);

    // Everything survives a remount.
    m.remount();
    let f = m.path("f");
    let mut want = vec![
        b"security.s".to_vec(),
        b"trusted.t".to_vec(),
        b"user.a".to_vec(),
        b"user.big".to_vec(),
        b"user.empty".to_vec(),
        name255.clone(),
    ];
    want.sort();
    assert_eq!(listxattr(&f).unwrap(), want);
    assert_eq!(getxattr(&f, b"user.a").unwrap(), b"replaced");
    assert_eq!(getxattr(&f, b"trusted.t").unwrap(), b"T\0binary\xff");
    assert_bytes(
        &getxattr(&f, b"user.big").unwrap(),
        &big,
        "64 KiB xattr after remount",
    );
    assert_eq!(
        getxattr(&m.path("d"), b"user.dir").unwrap(),
        b"on a directory"
    );
    assert_eq!(
        getxattr(&m.path("sl"), b"trusted.sl").unwrap(),
        b"link attr"
    );
    let many = m.path("many");
    for i in 0..200u64 {
        assert_eq!(
            getxattr(&many, format!("user.k{i:03}").as_bytes()).unwrap(),
            pattern(i, 0, i as usize)
        );
    }
}
