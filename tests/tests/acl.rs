//! POSIX ACLs through a real mount: the kernel checks access against what the daemon
//! stores; the daemon keeps mode and access ACL in step (setfacl, chmod), inherits default
//! ACLs, applies the umask only without one, clears set-group-ID for callers outside the
//! group, and keeps all of it across a remount. `noacl` turns the names away.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sealfs_tests::*;

const ACCESS: &[u8] = b"system.posix_acl_access";
const DEFAULT: &[u8] = b"system.posix_acl_default";
const X: u32 = u32::MAX;
const USER_OBJ: u16 = 1;
const USER: u16 = 2;
const GROUP_OBJ: u16 = 4;
const GROUP: u16 = 8;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// An ACL in the xattr format (version 2, then tag/perm/id entries).
fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut b = 2u32.to_le_bytes().to_vec();
    for &(t, p, id) in entries {
        b.extend_from_slice(&t.to_le_bytes());
        b.extend_from_slice(&p.to_le_bytes());
        b.extend_from_slice(&id.to_le_bytes());
    }
    b
}

/// `sealfs stat` reports exactly one of acl/noacl, `acl`, and the `timeout` option given.
#[track_caller]
fn assert_options(m: &Mount, acl: &str, timeout: &str) {
    let opts = options_of(m);
    let acls: Vec<&String> = opts.iter().filter(|o| o.ends_with("acl")).collect();
    assert_eq!(acls, [acl], "{opts:?}");
    assert!(opts.iter().any(|o| o == timeout), "{timeout} in {opts:?}");
}

/// The options `sealfs stat` reports for the mount.
fn options_of(m: &Mount) -> Vec<String> {
    let out = m.stat_output();
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("options"))
        .unwrap_or_else(|| panic!("no options line in {text}"));
    line.trim().split(',').map(str::to_string).collect()
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode()
}

/// What `nobody` gets opening `p` for reading and for writing (0 or the errno).
fn nobody_rw(p: &Path) -> (i32, i32) {
    let p = p.to_path_buf();
    let q = p.clone();
    (
        as_nobody(move || code(open(&p, libc::O_RDONLY, 0))),
        as_nobody(move || code(open(&q, libc::O_WRONLY, 0))),
    )
}

#[test]
fn access_acl_grants_and_sets_the_mode() {
    let Some(m) = Mount::new("") else { return };
    assert_options(&m, "acl", "timeout=60");
    let p = m.path("f");
    fs::write(&p, b"data").unwrap();
    chmod(&p, 0o640).unwrap();
    assert_eq!(nobody_rw(&p), (libc::EACCES, libc::EACCES));
    assert_errno!(getxattr(&p, ACCESS), libc::ENODATA);

    // A named entry for nobody, rw, with a mask of rw: the group bits show the mask.
    let a = acl(&[
        (USER_OBJ, 6, X),
        (USER, 6, NOBODY),
        (GROUP_OBJ, 4, X),
        (MASK, 6, X),
        (OTHER, 0, X),
    ]);
    setxattr(&p, ACCESS, &a, 0).unwrap();
    assert_eq!(getxattr(&p, ACCESS).unwrap(), a);
    assert_eq!(mode_of(&p), libc::S_IFREG | 0o660);
    assert_eq!(nobody_rw(&p), (0, 0), "the named entry grants nobody rw");
    let names = listxattr(&p).unwrap();
    assert!(names.contains(&ACCESS.to_vec()), "{names:?}");

    // chmod rewrites the mask (and owner, other): nobody loses write, keeps read.
    chmod(&p, 0o640).unwrap();
    assert_eq!(
        getxattr(&p, ACCESS).unwrap(),
        acl(&[
            (USER_OBJ, 6, X),
            (USER, 6, NOBODY),
            (GROUP_OBJ, 4, X),
            (MASK, 4, X),
            (OTHER, 0, X)
        ])
    );
    assert_eq!(
        nobody_rw(&p),
        (0, libc::EACCES),
        "the mask limits the named entry"
    );

    // An ACL the mode alone says is not stored; the mode takes its bits.
    let minimal = acl(&[(USER_OBJ, 7, X), (GROUP_OBJ, 5, X), (OTHER, 1, X)]);
    setxattr(&p, ACCESS, &minimal, 0).unwrap();
    assert_errno!(getxattr(&p, ACCESS), libc::ENODATA);
    assert_eq!(mode_of(&p), libc::S_IFREG | 0o751);
    assert_eq!(nobody_rw(&p), (libc::EACCES, libc::EACCES));

    // Removing an ACL keeps the mode.
    setxattr(&p, ACCESS, &a, 0).unwrap();
    removexattr(&p, ACCESS).unwrap();
    assert_eq!(mode_of(&p), libc::S_IFREG | 0o660);
    assert_errno!(getxattr(&p, ACCESS), libc::ENODATA);
    assert_errno!(removexattr(&p, ACCESS), libc::ENODATA);

    // Bad values are refused by the kernel or the daemon with the kernel's errnos.
    let unordered = acl(&[
        (USER_OBJ, 6, X),
        (USER, 6, 7),
        (USER, 6, 5),
        (GROUP_OBJ, 4, X),
        (MASK, 6, X),
        (OTHER, 0, X),
    ]);
    assert_errno!(setxattr(&p, ACCESS, &unordered, 0), libc::EINVAL);
    assert_errno!(setxattr(&p, ACCESS, &[2, 0, 0], 0), libc::EINVAL);
    let mut v1 = minimal.clone();
    v1[0] = 1;
    assert_errno!(setxattr(&p, ACCESS, &v1, 0), libc::EOPNOTSUPP);
    // A default ACL belongs to directories only.
    assert_errno!(setxattr(&p, DEFAULT, &minimal, 0), libc::EACCES);
    assert_eq!(
        mode_of(&p),
        libc::S_IFREG | 0o660,
        "refusals changed nothing"
    );
}

#[test]
fn default_acl_is_inherited_and_the_umask_applies_only_without_one() {
    let Some(mut m) = Mount::new("") else { return };
    let d = m.path("d");
    fs::create_dir(&d).unwrap();
    chmod(&d, 0o777).unwrap();
    let def = acl(&[
        (USER_OBJ, 7, X),
        (USER, 7, NOBODY),
        (GROUP_OBJ, 5, X),
        (GROUP, 7, NOGROUP),
        (MASK, 7, X),
        (OTHER, 5, X),
    ]);
    setxattr(&d, DEFAULT, &def, 0).unwrap();
    assert_eq!(getxattr(&d, DEFAULT).unwrap(), def);

    let creds = ChildCreds {
        user: None,
        umask: Some(0o077),
    };
    let (f, sub, fifo, link) = (d.join("f"), d.join("sub"), d.join("fifo"), d.join("link"));
    let (f2, sub2, fifo2, link2) = (f.clone(), sub.clone(), fifo.clone(), link.clone());
    let made = in_child(creds, move || {
        code(open(&f2, libc::O_CREAT | libc::O_WRONLY, 0o666))
            .max(code(fs::create_dir(&sub2)))
            .max(code(mknod(&fifo2, libc::S_IFIFO | 0o644, 0, 0)))
            .max(code(std::os::unix::fs::symlink("f", &link2)))
    });
    assert_eq!(made, 0);
    // The umask 077 is ignored; the default ACL masks the requested mode.
    assert_eq!(mode_of(&f), libc::S_IFREG | 0o664);
    assert_eq!(
        getxattr(&f, ACCESS).unwrap(),
        acl(&[
            (USER_OBJ, 6, X),
            (USER, 7, NOBODY),
            (GROUP_OBJ, 5, X),
            (GROUP, 7, NOGROUP),
            (MASK, 6, X),
            (OTHER, 4, X)
        ])
    );
    assert_errno!(getxattr(&f, DEFAULT), libc::ENODATA);
    assert_eq!(mode_of(&sub), libc::S_IFDIR | 0o775);
    assert_eq!(
        getxattr(&sub, DEFAULT).unwrap(),
        def,
        "directories inherit it"
    );
    assert!(getxattr(&sub, ACCESS).is_ok());
    assert_eq!(mode_of(&fifo), libc::S_IFIFO | 0o644);
    assert_eq!(mode_of(&link), libc::S_IFLNK | 0o777);
    assert_eq!(nobody_rw(&f), (0, 0), "inherited named entry, masked to rw");

    // Outside the directory: plain umask, no ACL.
    let g = m.path("g");
    let g2 = g.clone();
    let h = m.path("h");
    let h2 = h.clone();
    let made = in_child(creds, move || {
        code(open(&g2, libc::O_CREAT | libc::O_WRONLY, 0o666)).max(code(fs::create_dir(&h2)))
    });
    assert_eq!(made, 0);
    assert_eq!(mode_of(&g), libc::S_IFREG | 0o600);
    assert_eq!(mode_of(&h), libc::S_IFDIR | 0o700);
    assert_errno!(getxattr(&g, ACCESS), libc::ENODATA);

    // All of it survives a remount (replay) and fsck.
    m.remount_checked();
    assert_eq!(getxattr(&d.join("sub"), DEFAULT).unwrap(), def);
    assert_eq!(mode_of(&m.path("d/f")), libc::S_IFREG | 0o664);
    assert_eq!(nobody_rw(&m.path("d/f")), (0, 0));
}

#[test]
fn setting_an_acl_clears_setgid_for_callers_outside_the_group() {
    let Some(m) = Mount::new("") else { return };
    let minimal = acl(&[(USER_OBJ, 7, X), (GROUP_OBJ, 7, X), (OTHER, 0, X)]);
    // Owned by nobody (so nobody may set its ACL), group root, which nobody is not in.
    let p = m.path("sgid");
    fs::write(&p, b"x").unwrap();
    chown(&p, NOBODY, 0).unwrap();
    chmod(&p, 0o2770).unwrap();
    let q = p.clone();
    let v = minimal.clone();
    assert_eq!(as_nobody(move || code(setxattr(&q, ACCESS, &v, 0))), 0);
    assert_eq!(mode_of(&p), libc::S_IFREG | 0o770, "set-group-ID cleared");

    // Root (CAP_FSETID) keeps it.
    chmod(&p, 0o2770).unwrap();
    setxattr(&p, ACCESS, &minimal, 0).unwrap();
    assert_eq!(mode_of(&p), libc::S_IFREG | 0o2770);
}

#[test]
fn noacl_turns_the_names_away() {
    let Some(m) = Mount::new("noacl,timeout=2.5") else {
        return;
    };
    assert_options(&m, "noacl", "timeout=2.5");
    let p = m.path("f");
    fs::write(&p, b"x").unwrap();
    let a = acl(&[(USER_OBJ, 6, X), (GROUP_OBJ, 4, X), (OTHER, 0, X)]);
    assert_errno!(setxattr(&p, ACCESS, &a, 0), libc::EOPNOTSUPP);
    assert_errno!(getxattr(&p, ACCESS), libc::EOPNOTSUPP);
    // The kernel applies the umask itself.
    let q = m.path("g");
    let q2 = q.clone();
    let creds = ChildCreds {
        user: None,
        umask: Some(0o027),
    };
    assert_eq!(
        in_child(creds, move || code(open(
            &q2,
            libc::O_CREAT | libc::O_WRONLY,
            0o666
        ))),
        0
    );
    assert_eq!(mode_of(&q), libc::S_IFREG | 0o640);
}
