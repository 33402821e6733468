//! Names through a real mount: files, directories, symlinks, hard links, device nodes,
//! fifos, rename in all its forms, and the exact errno of every refusal.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use libc::{RENAME_EXCHANGE, RENAME_NOREPLACE};
use sealfs_tests::*;

fn nlink(p: &Path) -> u64 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
        .nlink()
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
        .ino()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn files_dirs_links_and_nodes() {
    let Some(m) = Mount::new("") else { return };
    let root = m.mnt();
    assert_eq!(nlink(root), 2, "empty root: nlink 2");
    assert!(names(root).is_empty(), "fresh root lists nothing");

    // Directories: nlink = 2 + subdirectories.
    let d = m.path("d");
    fs::create_dir(&d).unwrap();
    assert_eq!(nlink(&d), 2);
    assert_eq!(nlink(root), 3);
    fs::create_dir(d.join("a")).unwrap();
    fs::create_dir(d.join("b")).unwrap();
    fs::write(d.join("f"), b"x").unwrap();
    assert_eq!(nlink(&d), 4, "d has two subdirectories");
    assert_eq!(ino(&d.join("a/..")), ino(&d), "a/.. is d");
    fs::remove_dir(d.join("b")).unwrap();
    assert_eq!(nlink(&d), 3);
    assert_eq!(names(&d), ["a", "f"]);

    // Regular file and hard links.
    let f = m.path("file");
    fs::write(&f, b"hello world").unwrap();
    assert_eq!(nlink(&f), 1);
    fs::hard_link(&f, m.path("link1")).unwrap();
    fs::hard_link(&f, d.join("link2")).unwrap();
    assert_eq!(nlink(&f), 3);
    assert_eq!(ino(&f), ino(&m.path("link1")));
    assert_eq!(ino(&f), ino(&d.join("link2")));
    fs::remove_file(&f).unwrap();
    assert_eq!(nlink(&m.path("link1")), 2);
    assert_eq!(fs::read(d.join("link2")).unwrap(), b"hello world");
    assert_errno!(fs::hard_link(&d, m.path("dirlink")), libc::EPERM);
    assert_eq!(
        nlink(root),
        3,
        "links to files do not change the directory's nlink"
    );

    // Symlinks: the target is stored verbatim, lstat size is its length.
    let target = "d/link2";
    std::os::unix::fs::symlink(target, m.path("sym")).unwrap();
    let md = fs::symlink_metadata(m.path("sym")).unwrap();
    assert!(md.file_type().is_symlink());
    assert_eq!(md.len(), target.len() as u64);
    assert_eq!(fs::read_link(m.path("sym")).unwrap(), Path::new(target));
    assert_eq!(fs::read(m.path("sym")).unwrap(), b"hello world", "followed");
    let long_target = "x/".repeat(1000) + "end";
    std::os::unix::fs::symlink(&long_target, m.path("longsym")).unwrap();
    assert_eq!(
        fs::read_link(m.path("longsym")).unwrap(),
        Path::new(&long_target)
    );
    std::os::unix::fs::symlink("nowhere", m.path("dangling")).unwrap();
    assert_errno!(fs::metadata(m.path("dangling")), libc::ENOENT);
    assert_errno!(fs::read_link(m.path("link1")), libc::EINVAL);

    // Fifo and device nodes keep their type, mode and rdev.
    mknod(&m.path("fifo"), libc::S_IFIFO | 0o640, 0, 0).unwrap();
    mknod(&m.path("chr"), libc::S_IFCHR | 0o600, 1, 3).unwrap();
    mknod(&m.path("blk"), libc::S_IFBLK | 0o644, 8, 17).unwrap();
    mknod(&m.path("plain"), libc::S_IFREG | 0o644, 0, 0).unwrap();
    let st = lstat(&m.path("fifo")).unwrap();
    assert_eq!(st.st_mode, libc::S_IFIFO | 0o640);
    let st = lstat(&m.path("chr")).unwrap();
    assert_eq!(st.st_mode, libc::S_IFCHR | 0o600);
    assert_eq!(st.st_rdev, libc::makedev(1, 3));
    let st = lstat(&m.path("blk")).unwrap();
    assert_eq!(st.st_mode, libc::S_IFBLK | 0o644);
    assert_eq!(st.st_rdev, libc::makedev(8, 17));
    let st = lstat(&m.path("plain")).unwrap();
    assert_eq!(st.st_mode, libc::S_IFREG | 0o644);
    assert_eq!(st.st_size, 0);
    assert!(fs::metadata(m.path("fifo")).unwrap().file_type().is_fifo());
    assert!(fs::metadata(m.path("chr"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(fs::metadata(m.path("blk"))
        .unwrap()
        .file_type()
        .is_block_device());
    // A fifo on the mount works as a fifo (the kernel serves it, not the daemon).
    let fifo = m.path("fifo");
    let writer = std::thread::spawn(move || fs::write(fifo, b"through the pipe").unwrap());
    assert_eq!(fs::read(m.path("fifo")).unwrap(), b"through the pipe");
    writer.join().unwrap();

    assert_eq!(
        names(root),
        ["blk", "chr", "d", "dangling", "fifo", "link1", "longsym", "plain", "sym"]
    );

    // Names are bytes: anything but '/' and NUL, not necessarily UTF-8.
    {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        fs::create_dir(m.path("odd")).unwrap();
        let odd: [&[u8]; 6] = [
            b"...",
            b" lead space",
            b"new\nline",
            b"\xff\xfe\x80",
            b"-",
            b"\x01\x7f",
        ];
        for n in odd {
            fs::write(m.path("odd").join(OsStr::from_bytes(n)), n).unwrap();
        }
        let mut got: Vec<Vec<u8>> = fs::read_dir(m.path("odd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        got.sort();
        let mut want: Vec<Vec<u8>> = odd.iter().map(|n| n.to_vec()).collect();
        want.sort();
        assert_eq!(got, want);
        for n in odd {
            assert_eq!(
                fs::read(m.path("odd").join(OsStr::from_bytes(n))).unwrap(),
                n
            );
        }
    }

    // An unlinked file that is still open stays readable and writable until closed.
    let p = m.path("orphan");
    fs::write(&p, b"still here").unwrap();
    let fd = open(&p, libc::O_RDWR, 0).unwrap();
    fs::remove_file(&p).unwrap();
    assert_errno!(fs::metadata(&p), libc::ENOENT);
    assert_eq!(pread_vec(&fd, 0, 100).unwrap(), b"still here");
    pwrite_all(&fd, b"STILL", 0).unwrap();
    assert_eq!(pread_vec(&fd, 0, 100).unwrap(), b"STILL here");
    assert_eq!(fstat_sync(&fd).unwrap().stx_nlink, 0);
    drop(fd);

    // An open directory that is removed still answers fstat (nlink 0) until closed.
    fs::create_dir(m.path("gone")).unwrap();
    let dir = fs::File::open(m.path("gone")).unwrap();
    fs::remove_dir(m.path("gone")).unwrap();
    let st = fstat_sync(&dir).map_err(|e| format!("fstat of an open, removed directory: {e}"));
    assert_eq!(
        st.map(|s| s.stx_nlink),
        Ok(0),
        "a removed directory has no links"
    );
    drop(dir);
}

#[test]
fn rename_forms() {
    let Some(m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);
    fs::create_dir(p("d1")).unwrap();
    fs::create_dir(p("d2")).unwrap();

    // Plain rename within and across directories keeps the inode.
    fs::write(p("d1/a"), b"A").unwrap();
    let ia = ino(&p("d1/a"));
    fs::rename(p("d1/a"), p("d1/b")).unwrap();
    assert_errno!(fs::metadata(p("d1/a")), libc::ENOENT);
    fs::rename(p("d1/b"), p("d2/c")).unwrap();
    assert_eq!(ino(&p("d2/c")), ia);
    assert_eq!(fs::read(p("d2/c")).unwrap(), b"A");
    fs::rename(p("d2/c"), p("d2/c")).unwrap();
    assert_eq!(ino(&p("d2/c")), ia, "rename onto itself is a no-op");

    // Rename over an existing file replaces it; its other links survive.
    fs::write(p("d1/victim"), b"V").unwrap();
    fs::hard_link(p("d1/victim"), p("d1/victim2")).unwrap();
    fs::rename(p("d2/c"), p("d1/victim")).unwrap();
    assert_eq!(ino(&p("d1/victim")), ia);
    assert_eq!(nlink(&p("d1/victim2")), 1);
    assert_eq!(fs::read(p("d1/victim2")).unwrap(), b"V");
    assert!(names(&p("d2")).is_empty());

    // RENAME_NOREPLACE.
    fs::write(p("n1"), b"1").unwrap();
    fs::write(p("n2"), b"2").unwrap();
    assert_errno!(
        renameat2(&p("n1"), &p("n2"), RENAME_NOREPLACE),
        libc::EEXIST
    );
    assert_eq!(fs::read(p("n1")).unwrap(), b"1");
    assert_eq!(fs::read(p("n2")).unwrap(), b"2");
    renameat2(&p("n1"), &p("n3"), RENAME_NOREPLACE).unwrap();
    assert_eq!(fs::read(p("n3")).unwrap(), b"1");
    assert_errno!(fs::metadata(p("n1")), libc::ENOENT);

    // RENAME_EXCHANGE of two files: both names stay, contents and inodes swap.
    let (i2, i3) = (ino(&p("n2")), ino(&p("n3")));
    renameat2(&p("n2"), &p("n3"), RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(p("n2")).unwrap(), b"1");
    assert_eq!(fs::read(p("n3")).unwrap(), b"2");
    assert_eq!((ino(&p("n2")), ino(&p("n3"))), (i3, i2));
    assert_errno!(
        renameat2(&p("n2"), &p("missing"), RENAME_EXCHANGE),
        libc::ENOENT
    );
    assert_errno!(
        renameat2(&p("n2"), &p("n3"), RENAME_EXCHANGE | RENAME_NOREPLACE),
        libc::EINVAL
    );

    // RENAME_EXCHANGE of a file and a directory in different parents: the parents'
    // link counts and the directory's ".." follow.
    fs::create_dir(p("d1/sub")).unwrap();
    fs::write(p("d1/sub/inner"), b"in").unwrap();
    fs::write(p("d2/file"), b"F").unwrap();
    assert_eq!((nlink(&p("d1")), nlink(&p("d2"))), (3, 2));
    renameat2(&p("d1/sub"), &p("d2/file"), RENAME_EXCHANGE).unwrap();
    assert!(fs::symlink_metadata(p("d1/sub")).unwrap().is_file());
    assert_eq!(fs::read(p("d1/sub")).unwrap(), b"F");
    assert!(fs::symlink_metadata(p("d2/file")).unwrap().is_dir());
    assert_eq!(fs::read(p("d2/file/inner")).unwrap(), b"in");
    assert_eq!((nlink(&p("d1")), nlink(&p("d2"))), (2, 3));
    assert_eq!(ino(&p("d2/file/..")), ino(&p("d2")));

    // Directory renames.
    fs::create_dir_all(p("src/deep")).unwrap();
    fs::create_dir(p("full")).unwrap();
    fs::write(p("full/x"), b"").unwrap();
    fs::create_dir(p("empty")).unwrap();
    fs::write(p("plainfile"), b"").unwrap();
    assert_errno!(fs::rename(p("src"), p("full")), libc::ENOTEMPTY);
    assert_errno!(fs::rename(p("src"), p("plainfile")), libc::ENOTDIR);
    assert_errno!(fs::rename(p("plainfile"), p("empty")), libc::EISDIR);
    assert_errno!(fs::rename(p("src"), p("src/deep/inside")), libc::EINVAL);
    assert_errno!(fs::rename(p("src"), p("src/deep")), libc::EINVAL);
    let root_links = nlink(m.mnt());
    let isrc = ino(&p("src"));
    fs::rename(p("src"), p("empty")).unwrap();
    assert_eq!(ino(&p("empty")), isrc, "a directory replaces an empty one");
    assert_errno!(fs::metadata(p("src")), libc::ENOENT);
    assert_eq!(
        nlink(m.mnt()),
        root_links - 1,
        "the replaced directory is gone"
    );
    fs::rename(p("empty"), p("d1/moved")).unwrap();
    assert_eq!(nlink(m.mnt()), root_links - 2);
    assert_eq!(nlink(&p("d1")), 3);
    assert_eq!(ino(&p("d1/moved/deep/../..")), ino(&p("d1")));
    assert!(fs::metadata(p("d1/moved/deep")).unwrap().is_dir());

    // Symlinks and special files move like files.
    std::os::unix::fs::symlink("target", p("sl")).unwrap();
    fs::rename(p("sl"), p("d2/sl")).unwrap();
    assert_eq!(fs::read_link(p("d2/sl")).unwrap(), Path::new("target"));
    mknod(&p("ff"), libc::S_IFIFO | 0o600, 0, 0).unwrap();
    fs::rename(p("ff"), p("d2/ff")).unwrap();
    assert_eq!(lstat(&p("d2/ff")).unwrap().st_mode, libc::S_IFIFO | 0o600);

    // A file replaced by rename while open stays readable through its descriptor.
    fs::write(p("old"), b"old contents").unwrap();
    fs::write(p("new"), b"new").unwrap();
    let fd = fs::File::open(p("old")).unwrap();
    fs::rename(p("new"), p("old")).unwrap();
    assert_eq!(pread_vec(&fd, 0, 100).unwrap(), b"old contents");
    assert_eq!(fd.metadata().unwrap().nlink(), 0);
    assert_eq!(fs::read(p("old")).unwrap(), b"new");
    drop(fd);
}

#[test]
fn errno_catalogue() {
    let Some(m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);
    fs::create_dir(p("dir")).unwrap();
    fs::write(p("dir/f"), b"data").unwrap();
    fs::write(p("file"), b"data").unwrap();

    // ENOENT
    assert_errno!(fs::metadata(p("nope")), libc::ENOENT);
    assert_errno!(fs::metadata(p("nope/x")), libc::ENOENT);
    assert_errno!(fs::File::open(p("nope")), libc::ENOENT);
    assert_errno!(fs::remove_file(p("nope")), libc::ENOENT);
    assert_errno!(fs::remove_dir(p("nope")), libc::ENOENT);
    assert_errno!(fs::rename(p("nope"), p("x")), libc::ENOENT);
    assert_errno!(fs::hard_link(p("nope"), p("x")), libc::ENOENT);
    assert_errno!(fs::write(p("nope/x"), b""), libc::ENOENT);

    // EEXIST
    assert_errno!(fs::create_dir(p("dir")), libc::EEXIST);
    assert_errno!(fs::create_dir(p("file")), libc::EEXIST);
    assert_errno!(
        open(
            &p("file"),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
            0o644
        ),
        libc::EEXIST
    );
    assert_errno!(fs::hard_link(p("file"), p("dir/f")), libc::EEXIST);
    assert_errno!(std::os::unix::fs::symlink("t", p("file")), libc::EEXIST);
    assert_errno!(mknod(&p("file"), libc::S_IFIFO | 0o644, 0, 0), libc::EEXIST);

    // ENOTDIR
    assert_errno!(fs::metadata(p("file/x")), libc::ENOTDIR);
    assert_errno!(fs::create_dir(p("file/x")), libc::ENOTDIR);
    assert_errno!(fs::remove_dir(p("file")), libc::ENOTDIR);
    assert_errno!(
        open(&p("file"), libc::O_RDONLY | libc::O_DIRECTORY, 0),
        libc::ENOTDIR
    );
    assert_errno!(fs::read_dir(p("file")), libc::ENOTDIR);

    // EISDIR
    assert_errno!(open(&p("dir"), libc::O_WRONLY, 0), libc::EISDIR);
    assert_errno!(open(&p("dir"), libc::O_RDWR, 0), libc::EISDIR);
    assert_errno!(fs::remove_file(p("dir")), libc::EISDIR);
    assert_errno!(truncate(&p("dir"), 0), libc::EISDIR);

    // ENOTEMPTY
    assert_errno!(fs::remove_dir(p("dir")), libc::ENOTEMPTY);

    // ENAMETOOLONG: 255 bytes is the longest name, in every operation that makes one.
    let n255 = "a".repeat(255);
    let n256 = "b".repeat(256);
    fs::write(p(&n255), b"ok").unwrap();
    assert_eq!(fs::read(p(&n255)).unwrap(), b"ok");
    assert_eq!(names(m.mnt()).iter().filter(|n| n.len() == 255).count(), 1);
    assert_errno!(fs::write(p(&n256), b""), libc::ENAMETOOLONG);
    assert_errno!(fs::metadata(p(&n256)), libc::ENAMETOOLONG);
    assert_errno!(fs::create_dir(p(&n256)), libc::ENAMETOOLONG);
    assert_errno!(
        std::os::unix::fs::symlink("t", p(&n256)),
        libc::ENAMETOOLONG
    );
    assert_errno!(fs::hard_link(p("file"), p(&n256)), libc::ENAMETOOLONG);
    assert_errno!(fs::rename(p("file"), p(&n256)), libc::ENAMETOOLONG);
    assert_errno!(
        mknod(&p(&n256), libc::S_IFIFO | 0o644, 0, 0),
        libc::ENAMETOOLONG
    );
    let d255 = "d".repeat(255);
    fs::create_dir(p(&d255)).unwrap();
    std::os::unix::fs::symlink("t", p(&format!("{d255}/{}", "s".repeat(255)))).unwrap();

    // ELOOP
    std::os::unix::fs::symlink("loop2", p("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", p("loop2")).unwrap();
    assert_errno!(fs::File::open(p("loop1")), libc::ELOOP);
    assert_errno!(fs::metadata(p("loop1")), libc::ELOOP);
    std::os::unix::fs::symlink("file", p("tofile")).unwrap();
    assert_errno!(
        open(&p("tofile"), libc::O_RDONLY | libc::O_NOFOLLOW, 0),
        libc::ELOOP
    );

    // EFBIG: the largest file is 16 TiB.
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p("file"))
        .unwrap();
    assert_errno!(pwrite_all(&f, b"x", 1 << 44), libc::EFBIG);
    assert_errno!(f.set_len((1 << 44) + 4096), libc::EFBIG);
    assert_eq!(
        f.metadata().unwrap().len(),
        4,
        "the failed calls changed nothing"
    );

    // EINVAL
    assert_errno!(fallocate(&f, 0, 0, 0), libc::EINVAL);
    assert_errno!(fallocate(&f, 0, -1, 10), libc::EINVAL);
    assert_errno!(lseek(&f, -1, libc::SEEK_SET), libc::EINVAL);
    drop(f);

    // EXDEV: rename and link off the mount.
    let outside = m.dir().join("outside");
    assert_errno!(fs::rename(p("file"), &outside), libc::EXDEV);
    assert_errno!(fs::hard_link(p("file"), &outside), libc::EXDEV);
    assert_eq!(fs::read(p("file")).unwrap(), b"data");
}

#[test]
fn permission_errnos_as_another_user() {
    let Some(m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);
    fs::write(p("secret"), b"s").unwrap();
    chmod(&p("secret"), 0o600).unwrap();
    fs::write(p("public"), b"p").unwrap();
    chmod(&p("public"), 0o666).unwrap();
    fs::create_dir(p("closed")).unwrap();
    fs::write(p("closed/inner"), b"i").unwrap();
    chmod(&p("closed"), 0o700).unwrap();
    fs::create_dir(p("sticky")).unwrap();
    chmod(&p("sticky"), 0o1777).unwrap();
    fs::write(p("sticky/roots"), b"r").unwrap();
    chmod(&p("sticky/roots"), 0o666).unwrap();
    fs::create_dir(p("mine")).unwrap();
    chown(&p("mine"), NOBODY, NOGROUP).unwrap();

    let secret = p("secret");
    assert_eq!(
        as_nobody(|| code(fs::File::open(&secret))),
        libc::EACCES,
        "nobody opens a 0600 root file"
    );
    assert_eq!(as_nobody(|| code(fs::read(p("public")))), 0);
    assert_eq!(
        as_nobody(|| code(fs::write(p("newfile"), b""))),
        libc::EACCES,
        "nobody creates in a 0755 root directory"
    );
    assert_eq!(as_nobody(|| code(fs::read_dir(p("closed")))), libc::EACCES);
    assert_eq!(
        as_nobody(|| code(fs::metadata(p("closed/inner")))),
        libc::EACCES
    );
    assert_eq!(
        as_nobody(|| code(fs::remove_file(p("public")))),
        libc::EACCES
    );

    // Ownership: only the owner (or root) changes modes, owners and explicit times.
    assert_eq!(
        as_nobody(|| code(chown(&p("public"), NOBODY, NOGROUP))),
        libc::EPERM
    );
    assert_eq!(as_nobody(|| code(chmod(&p("public"), 0o777))), libc::EPERM);
    assert_eq!(
        as_nobody(|| code(utimens(&p("public"), (1, 0), (1, 0)))),
        libc::EPERM,
        "explicit times need ownership"
    );
    assert_eq!(
        as_nobody(|| code(touch_now(&p("public")))),
        0,
        "times set to now need write access only"
    );
    assert_eq!(as_nobody(|| code(touch_now(&p("secret")))), libc::EACCES);
    // A sticky directory: others may not remove root's file.
    assert_eq!(
        as_nobody(|| code(fs::remove_file(p("sticky/roots")))),
        libc::EPERM
    );
    // In its own directory nobody works normally and may give a file away to nobody else.
    assert_eq!(
        as_nobody(|| {
            let r = fs::write(p("mine/f"), b"n").and_then(|_| chmod(&p("mine/f"), 0o640));
            if r.is_err() {
                return code(r);
            }
            code(chown(&p("mine/f"), 0, u32::MAX))
        }),
        libc::EPERM
    );
    let st = lstat(&p("mine/f")).unwrap();
    assert_eq!(
        (st.st_uid, st.st_gid, st.st_mode),
        (NOBODY, NOGROUP, libc::S_IFREG | 0o640)
    );
}

#[test]
fn immutable_and_append_only_flags() {
    let Some(m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);

    // chattr +i
    fs::write(p("imm"), b"frozen").unwrap();
    let early = fs::OpenOptions::new().write(true).open(p("imm")).unwrap();
    chattr(&p("imm"), FS_IMMUTABLE_FL, true).unwrap();
    let f = fs::File::open(p("imm")).unwrap();
    assert_eq!(
        get_flags(&f).unwrap() & (FS_IMMUTABLE_FL | FS_APPEND_FL),
        FS_IMMUTABLE_FL
    );
    drop(f);
    assert_errno!(
        fs::OpenOptions::new().write(true).open(p("imm")),
        libc::EPERM
    );
    assert_errno!(
        fs::OpenOptions::new().append(true).open(p("imm")),
        libc::EPERM
    );
    assert_errno!(pwrite_all(&early, b"X", 0), libc::EPERM);
    assert_errno!(fs::remove_file(p("imm")), libc::EPERM);
    assert_errno!(fs::rename(p("imm"), p("imm2")), libc::EPERM);
    assert_errno!(fs::hard_link(p("imm"), p("imm3")), libc::EPERM);
    assert_errno!(truncate(&p("imm"), 0), libc::EPERM);
    assert_errno!(chmod(&p("imm"), 0o600), libc::EPERM);
    assert_errno!(chown(&p("imm"), 1, 1), libc::EPERM);
    assert_errno!(utimens(&p("imm"), (1, 0), (1, 0)), libc::EPERM);
    assert_errno!(setxattr(&p("imm"), b"user.x", b"v", 0), libc::EPERM);
    assert_errno!(fallocate(&early, 0, 0, 8192), libc::EPERM);
    assert_eq!(fs::read(p("imm")).unwrap(), b"frozen", "reads still work");
    drop(early);
    chattr(&p("imm"), FS_IMMUTABLE_FL, false).unwrap();
    fs::write(p("imm"), b"thawed").unwrap();
    assert_eq!(fs::read(p("imm")).unwrap(), b"thawed");
    fs::remove_file(p("imm")).unwrap();

    // chattr +a
    fs::write(p("log"), b"one\n").unwrap();
    chattr(&p("log"), FS_APPEND_FL, true).unwrap();
    let f = fs::File::open(p("log")).unwrap();
    assert_eq!(
        get_flags(&f).unwrap() & (FS_IMMUTABLE_FL | FS_APPEND_FL),
        FS_APPEND_FL
    );
    drop(f);
    assert_errno!(
        fs::OpenOptions::new().write(true).open(p("log")),
        libc::EPERM
    );
    assert_errno!(
        fs::OpenOptions::new().read(true).write(true).open(p("log")),
        libc::EPERM
    );
    assert_errno!(
        open(
            &p("log"),
            libc::O_WRONLY | libc::O_APPEND | libc::O_TRUNC,
            0
        ),
        libc::EPERM
    );
    assert_errno!(truncate(&p("log"), 0), libc::EPERM);
    assert_errno!(truncate(&p("log"), 100), libc::EPERM);
    assert_errno!(fs::remove_file(p("log")), libc::EPERM);
    assert_errno!(fs::rename(p("log"), p("log2")), libc::EPERM);
    assert_errno!(fs::hard_link(p("log"), p("log3")), libc::EPERM);
    {
        use std::io::Write;
        let mut a = fs::OpenOptions::new().append(true).open(p("log")).unwrap();
        a.write_all(b"two\n").unwrap();
        // pwrite on an O_APPEND descriptor appends too (Linux).
        pwrite_all(&a, b"three\n", 0).unwrap();
    }
    assert_eq!(fs::read(p("log")).unwrap(), b"one\ntwo\nthree\n");
    chattr(&p("log"), FS_APPEND_FL, false).unwrap();
    truncate(&p("log"), 0).unwrap();
    fs::remove_file(p("log")).unwrap();

    // An immutable directory takes no new entries and loses none; its files stay writable.
    fs::create_dir(p("idir")).unwrap();
    fs::write(p("idir/old"), b"old").unwrap();
    chattr(&p("idir"), FS_IMMUTABLE_FL, true).unwrap();
    assert_errno!(fs::write(p("idir/new"), b""), libc::EPERM);
    assert_errno!(fs::create_dir(p("idir/sub")), libc::EPERM);
    assert_errno!(fs::remove_file(p("idir/old")), libc::EPERM);
    assert_errno!(fs::rename(p("idir/old"), p("moved")), libc::EPERM);
    fs::write(p("outside"), b"").unwrap();
    assert_errno!(fs::hard_link(p("outside"), p("idir/l")), libc::EPERM);
    assert_errno!(std::os::unix::fs::symlink("t", p("idir/s")), libc::EPERM);
    fs::write(p("idir/old"), b"rewritten").unwrap();
    assert_eq!(fs::read(p("idir/old")).unwrap(), b"rewritten");
    chattr(&p("idir"), FS_IMMUTABLE_FL, false).unwrap();
    fs::remove_file(p("idir/old")).unwrap();

    // An append-only directory takes new entries but loses none.
    fs::create_dir(p("adir")).unwrap();
    fs::write(p("adir/old"), b"").unwrap();
    chattr(&p("adir"), FS_APPEND_FL, true).unwrap();
    fs::write(p("adir/new"), b"").unwrap();
    assert_errno!(fs::remove_file(p("adir/old")), libc::EPERM);
    assert_errno!(fs::rename(p("adir/old"), p("moved")), libc::EPERM);
    chattr(&p("adir"), FS_APPEND_FL, false).unwrap();
    fs::remove_file(p("adir/old")).unwrap();

    // Only the owner (or root) changes flags.
    fs::write(p("others"), b"").unwrap();
    chmod(&p("others"), 0o666).unwrap();
    assert_eq!(
        as_nobody(|| code(chattr(&p("others"), FS_APPEND_FL, true))),
        libc::EPERM
    );
}
