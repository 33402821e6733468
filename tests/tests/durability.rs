//! What survives: a whole tree across umount/mount, fsynced files across a SIGKILL of the
//! daemon, and every byte under concurrent writers and readers on a multi-threaded mount.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use sealfs_tests::*;

/// Everything stat says about an entry (except atime, compared separately) plus its
/// contents, link target and xattrs.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    size: u64,
    blocks: u64,
    rdev: u64,
    mtime: Ts,
    ctime: Ts,
    atime: Ts,
    target: Option<Vec<u8>>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Metadata of every entry under `root` (contents are not read, so atimes stay put).
fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let p = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let xattrs = if ft.is_symlink() || ft.is_file() || ft.is_dir() {
            listxattr(&p)
                .unwrap()
                .into_iter()
                .map(|n| {
                    let v = getxattr(&p, &n).unwrap();
                    (n, v)
                })
                .collect()
        } else {
            Vec::new()
        };
        out.insert(
            rel.clone(),
            Entry {
                ino: md.ino(),
                mode: md.mode(),
                uid: md.uid(),
                gid: md.gid(),
                nlink: md.nlink(),
                size: md.size(),
                blocks: md.blocks(),
                rdev: md.rdev(),
                mtime: (md.mtime(), md.mtime_nsec()),
                ctime: (md.ctime(), md.ctime_nsec()),
                atime: (md.atime(), md.atime_nsec()),
                target: ft.is_symlink().then(|| {
                    fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes()
                }),
                xattrs,
            },
        );
        if ft.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                let name = e.unwrap().file_name().into_string().unwrap();
                stack.push(if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                });
            }
        }
    }
    out
}

/// Contents of the regular files; of a large (sparse) file, its first and last 64 KiB.
fn contents(root: &Path, snap: &BTreeMap<String, Entry>) -> BTreeMap<String, Vec<u8>> {
    const WHOLE: u64 = 16 << 20;
    snap.iter()
        .filter(|(_, e)| e.mode & libc::S_IFMT == libc::S_IFREG)
        .map(|(k, e)| {
            let bytes = if e.size <= WHOLE {
                fs::read(root.join(k)).unwrap()
            } else {
                let f = fs::File::open(root.join(k)).unwrap();
                let mut v = pread_vec(&f, 0, 65536).unwrap();
                v.extend(pread_vec(&f, e.size - 65536, 65536).unwrap());
                v
            };
            (k.clone(), bytes)
        })
        .collect()
}

#[test]
fn tree_survives_remount() {
    let Some(mut m) = Mount::new("") else { return };
    let p = |s: &str| m.path(s);
    fs::create_dir_all(p("a/b/c")).unwrap();
    fs::create_dir(p("empty")).unwrap();
    let sizes = [0usize, 1, 4095, 4096, 4097, 65536 + 7, (1 << 20) + 3];
    for (i, &n) in sizes.iter().enumerate() {
        fs::write(p(&format!("a/file{i}")), pattern(i as u64, 0, n)).unwrap();
    }
    fs::write(p("a/b/c/deep"), b"deep inside").unwrap();
    let sparse = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(p("sparse"))
        .unwrap();
    pwrite_all(&sparse, b"tail", 3 << 30).unwrap();
    pwrite_all(&sparse, b"head", 10).unwrap();
    drop(sparse);
    fs::hard_link(p("a/file3"), p("a/b/hard")).unwrap();
    std::os::unix::fs::symlink("a/file1", p("sym")).unwrap();
    std::os::unix::fs::symlink("../../nowhere", p("a/b/dangling")).unwrap();
    mknod(&p("fifo"), libc::S_IFIFO | 0o620, 0, 0).unwrap();
    mknod(&p("a/tty"), libc::S_IFCHR | 0o600, 4, 64).unwrap();
    mknod(&p("a/disk"), libc::S_IFBLK | 0o640, 259, 3).unwrap();
    chmod(&p("a/file2"), 0o4751).unwrap();
    chown(&p("a/file4"), 1001, 1002).unwrap();
    std::os::unix::fs::lchown(p("sym"), Some(5), Some(6)).unwrap();
    chmod(&p("a/b"), 0o2711).unwrap();
    chmod(&p("empty"), 0o1777).unwrap();
    setxattr(&p("a/file1"), b"user.one", b"1", 0).unwrap();
    setxattr(&p("a/file1"), b"trusted.two", &pattern(2, 0, 3000), 0).unwrap();
    setxattr(&p("a/b"), b"user.dir", b"d", 0).unwrap();
    setxattr(&p("sym"), b"trusted.link", b"l", 0).unwrap();
    chattr(&p("a/file5"), FS_IMMUTABLE_FL, true).unwrap();
    chattr(&p("a/file6"), FS_APPEND_FL, true).unwrap();
    // Explicit times last (children first: creating entries touches the parent).
    let mut k = 0i64;
    for rel in [
        "a/file0",
        "a/file1",
        "a/file2",
        "a/b/c/deep",
        "sym",
        "fifo",
        "a/tty",
        "a/b/c",
        "a/b",
        "a",
        "empty",
    ] {
        k += 1;
        utimens(
            &p(rel),
            (1_500_000_000 + k, k * 1000 + 1),
            (1_600_000_000 + k, k * 7),
        )
        .unwrap();
    }

    // Reading may update atimes (relatime); let that settle before the reference snapshot.
    let first = snapshot(m.mnt());
    let data_before = contents(m.mnt(), &first);
    let before = snapshot(m.mnt());
    assert_eq!(before.len(), 20, "entries in the tree: {:?}", before.keys());
    m.remount_checked();
    let after = snapshot(m.mnt());
    for (k, e) in &before {
        assert_eq!(after.get(k), Some(e), "{k} after remount");
    }
    assert_eq!(after.len(), before.len(), "{:?}", after.keys());
    let data_after = contents(m.mnt(), &after);
    for (k, v) in &data_before {
        assert_bytes(&data_after[k], v, k);
    }
    let f = fs::File::open(m.path("a/file5")).unwrap();
    assert_eq!(get_flags(&f).unwrap() & FS_IMMUTABLE_FL, FS_IMMUTABLE_FL);
    assert_errno!(fs::remove_file(m.path("a/file5")), libc::EPERM);
    let f = fs::File::open(m.path("a/file6")).unwrap();
    assert_eq!(get_flags(&f).unwrap() & FS_APPEND_FL, FS_APPEND_FL);
    drop(f);
    assert!(fs::metadata(m.path("fifo")).unwrap().file_type().is_fifo());
    // Let the fixture's fsck see a filesystem it can also delete from.
    chattr(&m.path("a/file5"), FS_IMMUTABLE_FL, false).unwrap();
    chattr(&m.path("a/file6"), FS_APPEND_FL, false).unwrap();
}

/// One round: a writer creates, fsyncs and renames files until the daemon is killed.
fn kill_round(m: &mut Mount, round: usize, min_done: usize) -> usize {
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let mnt = m.mnt().to_path_buf();
    let d2 = done.clone();
    std::thread::spawn(move || {
        let mut i = 0usize;
        let err = loop {
            let tmp = mnt.join(format!("r{round}/tmp{i}"));
            let fin = mnt.join(format!("r{round}/f{i}"));
            let len = 1 + (i * 7919) % 150_000;
            let r = (|| -> std::io::Result<()> {
                use std::io::Write;
                let mut f = fs::File::create(&tmp)?;
                f.write_all(&pattern((round * 100_000 + i) as u64, 0, len))?;
                f.sync_all()?;
                drop(f);
                fs::rename(&tmp, &fin)?;
                if i.is_multiple_of(10) {
                    fs::create_dir(mnt.join(format!("r{round}/dir{i}")))?;
                    setxattr(&fin, b"user.i", i.to_string().as_bytes(), 0)?;
                }
                Ok(())
            })();
            if let Err(e) = r {
                break e;
            }
            i += 1;
            d2.store(i, Ordering::SeqCst);
        };
        let _ = tx.send(err);
    });
    wait_until(
        "the writer makes progress",
        Duration::from_secs(120),
        || done.load(Ordering::SeqCst) >= min_done,
    );
    let pid = m
        .daemon_pid()
        .expect("daemon pid (process naming the mountpoint)");
    // SAFETY: kill(2) of the daemon we started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let err = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the writer must fail (not hang) once the daemon is dead");
    let n = done.load(Ordering::SeqCst);
    eprintln!("sigkill round {round}: {n} files completed; writer stopped with: {err}");
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::ENOTCONN) | Some(libc::ECONNABORTED)
        ),
        "writer error after SIGKILL: {err}"
    );
    n
}

fn check_round(m: &Mount, round: usize, n: usize) {
    for i in 0..n {
        let fin = m.path(&format!("r{round}/f{i}"));
        let len = 1 + (i * 7919) % 150_000;
        let got = fs::read(&fin).unwrap_or_else(|e| panic!("{}: {e}", fin.display()));
        assert_bytes(
            &got,
            &pattern((round * 100_000 + i) as u64, 0, len),
            &fin.display().to_string(),
        );
        if i % 10 == 0 {
            assert!(fs::metadata(m.path(&format!("r{round}/dir{i}")))
                .unwrap()
                .is_dir());
            assert_eq!(getxattr(&fin, b"user.i").unwrap(), i.to_string().as_bytes());
        }
        assert_errno!(
            fs::metadata(m.path(&format!("r{round}/tmp{i}"))),
            libc::ENOENT
        );
    }
}

#[test]
fn sigkill_keeps_fsynced_files() {
    let Some(mut m) = Mount::new("") else { return };
    let mut rounds = Vec::new();
    for round in 0..2 {
        fs::create_dir(m.path(&format!("r{round}"))).unwrap();
        let n = kill_round(&mut m, round, 30);
        m.recover_mount();
        rounds.push(n);
        for (r, &n) in rounds.iter().enumerate() {
            check_round(&m, r, n);
        }
    }
    m.remount_checked();
    for (r, &n) in rounds.iter().enumerate() {
        check_round(&m, r, n);
    }
}

#[test]
fn concurrent_writers_and_readers() {
    let Some(mut m) = Mount::new("threads=4") else {
        return;
    };
    const OWN: usize = 8;
    const OWN_LEN: usize = 2 << 20;
    const SHARED_LEN: u64 = 4 << 20;
    const STRIPE: u64 = 16 << 10;
    const STABLE: usize = 500;
    const CHURN: usize = 600;

    fs::create_dir(m.path("churn")).unwrap();
    for i in 0..STABLE {
        fs::write(m.path(&format!("churn/stable{i}")), b"").unwrap();
    }
    let shared = m.path("shared");
    fs::File::create(&shared)
        .unwrap()
        .set_len(SHARED_LEN)
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writers_left = Arc::new(AtomicUsize::new(4));
    let start = Arc::new(Barrier::new(OWN + 4 + 4 + 4 + 1));
    // Writers of their own files hand back (file number, expected bytes).
    type Worker = std::thread::JoinHandle<Option<(usize, Vec<u8>)>>;
    let mut handles: Vec<Worker> = Vec::new();

    // Writers of their own files: sequential pass, then random overwrites (kept in a model).
    for t in 0..OWN {
        let (path, start) = (m.path(&format!("own{t}")), start.clone());
        handles.push(std::thread::spawn(move || {
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            let mut model = Vec::with_capacity(OWN_LEN);
            let mut rng = Rng::new(t as u64);
            start.wait();
            while model.len() < OWN_LEN {
                let n = (1 + rng.below(65536) as usize).min(OWN_LEN - model.len());
                let buf = pattern(t as u64, model.len() as u64, n);
                pwrite_all(&f, &buf, model.len() as u64).unwrap();
                model.extend_from_slice(&buf);
            }
            for k in 0..200 {
                let off = rng.below(OWN_LEN as u64) as usize;
                let n = (1 + rng.below(20000) as usize).min(OWN_LEN - off);
                let buf = pattern(1000 + t as u64 * 1000 + k, off as u64, n);
                pwrite_all(&f, &buf, off as u64).unwrap();
                model[off..off + n].copy_from_slice(&buf);
            }
            Some((t, model))
        }));
    }

    // Writers of disjoint stripes of one file, two passes each, in random order.
    for w in 0..4u64 {
        let (path, start, left) = (shared.clone(), start.clone(), writers_left.clone());
        handles.push(std::thread::spawn(move || {
            let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
            let mut rng = Rng::new(100 + w);
            let mut stripes: Vec<u64> = (0..SHARED_LEN / STRIPE).filter(|s| s % 4 == w).collect();
            start.wait();
            for pass in 0..2u64 {
                for i in (1..stripes.len()).rev() {
                    stripes.swap(i, rng.below(i as u64 + 1) as usize);
                }
                for &s in &stripes {
                    let off = s * STRIPE;
                    pwrite_all(&f, &pattern(pass, off, STRIPE as usize), off).unwrap();
                }
            }
            left.fetch_sub(1, Ordering::SeqCst);
            None
        }));
    }

    // Readers of the shared file: every byte is 0 (never written yet) or a pass's byte.
    for r in 0..4u64 {
        let (path, start, left) = (shared.clone(), start.clone(), writers_left.clone());
        handles.push(std::thread::spawn(move || {
            let f = fs::File::open(&path).unwrap();
            let mut rng = Rng::new(200 + r);
            let mut reads = 0u64;
            start.wait();
            loop {
                let finished = left.load(Ordering::SeqCst) == 0;
                let off = rng.below(SHARED_LEN);
                let len = (1 + rng.below(65536)).min(SHARED_LEN - off) as usize;
                let got = pread_vec(&f, off, len).unwrap();
                assert_eq!(got.len(), len, "short read inside the file");
                let (p0, p1) = (pattern(0, off, len), pattern(1, off, len));
                for (i, &b) in got.iter().enumerate() {
                    assert!(
                        b == 0 || b == p0[i] || b == p1[i],
                        "reader {r}: byte {b:#x} at {} was never written there",
                        off + i as u64
                    );
                }
                reads += 1;
                if finished && reads > 20 {
                    break;
                }
            }
            None
        }));
    }

    // Creators and unlinkers in one directory, and a reader of that directory.
    for t in 0..3usize {
        let (dir, start) = (m.path("churn"), start.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            for i in 0..CHURN {
                fs::write(dir.join(format!("t{t}_{i}")), format!("{t}/{i}")).unwrap();
                if i > 0 && (i - 1) % 3 == 0 {
                    fs::remove_file(dir.join(format!("t{t}_{}", i - 1))).unwrap();
                }
            }
            None
        }));
    }
    {
        let (dir, start, stop) = (m.path("churn"), start.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            start.wait();
            let mut passes = 0;
            while !stop.load(Ordering::SeqCst) || passes < 3 {
                let mut stable = HashSet::new();
                for e in fs::read_dir(&dir).unwrap() {
                    let name = e.unwrap().file_name().into_string().unwrap();
                    if name.starts_with("stable") {
                        assert!(
                            stable.insert(name.clone()),
                            "readdir pass {passes}: {name} twice"
                        );
                    } else {
                        assert!(name.starts_with('t'), "unexpected name {name}");
                    }
                }
                assert_eq!(
                    stable.len(),
                    STABLE,
                    "readdir pass {passes}: stable entries"
                );
                passes += 1;
            }
            None
        }));
    }

    start.wait();
    let mut models = Vec::new();
    let n = handles.len();
    for (i, h) in handles.into_iter().enumerate() {
        if i == n - 1 {
            stop.store(true, Ordering::SeqCst);
        }
        if let Some(x) = h.join().expect("worker thread panicked") {
            models.push(x);
        }
    }

    let verify = |m: &Mount, when: &str| {
        for (t, model) in &models {
            let got = fs::read(m.path(&format!("own{t}"))).unwrap();
            assert_bytes(&got, model, &format!("{when}: own{t}"));
        }
        let got = fs::read(m.path("shared")).unwrap();
        assert_bytes(
            &got,
            &pattern(1, 0, SHARED_LEN as usize),
            &format!("{when}: shared"),
        );
        let mut names: Vec<String> = fs::read_dir(m.path("churn"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut want: Vec<String> = (0..STABLE).map(|i| format!("stable{i}")).collect();
        for t in 0..3 {
            for i in 0..CHURN {
                if i % 3 != 0 || i == CHURN - 1 {
                    want.push(format!("t{t}_{i}"));
                }
            }
        }
        want.sort();
        assert_eq!(names, want, "{when}: churn directory");
        for t in 0..3 {
            assert_eq!(
                fs::read_to_string(m.path(&format!("churn/t{t}_{}", CHURN - 1))).unwrap(),
                format!("{t}/{}", CHURN - 1)
            );
        }
    };
    verify(&m, "live");
    m.remount_checked();
    verify(&m, "after remount");
}
