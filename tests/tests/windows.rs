//! DAX windows on a real mount, with the test process itself as the window host (root, so it
//! may open the image): coherence both ways through `sealfs::window::Window`, many windows
//! on one file and LRU slot reuse, the SETUPMAPPING/REMOVEMAPPING errnos, recall answered and
//! racing a REMOVEMAPPING, revocation with the quarantine of the host's blocks, shared-mmap
//! coherence after a flush, and `sealfs map`.
//!
//! Every outcome is exact: the errno, the bytes, the block counts. Timings are bounded and
//! printed.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use sealfs::abi;
use sealfs::window::{Window, SLOT};
use sealfs_tests::*;

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------
// ioctl helpers.

fn ioctl_buf(f: &impl AsRawFd, req: u32, buf: &mut [u8]) -> io::Result<()> {
    // SAFETY: `buf` is as large as the size encoded in `req`, which is what the kernel copies.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req as _, buf.as_mut_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Device extents `(file offset, device offset, length)` of a file (IOC_EXTENTS, root only).
fn extents(p: &Path) -> Vec<abi::Triple> {
    let f = File::open(p).unwrap();
    let mut all = Vec::new();
    let mut start = 0u64;
    loop {
        let mut b = vec![0u8; abi::EXTENT_LIST_SIZE];
        b[..8].copy_from_slice(&start.to_le_bytes());
        ioctl_buf(&f, abi::IOC_EXTENTS, &mut b).expect("SEALFS_IOC_EXTENTS");
        let (list, total) = abi::decode_extent_list(&b).unwrap();
        all.extend_from_slice(&list);
        match list.last() {
            Some(&(fo, _, l)) if total as usize > list.len() => start = fo + l,
            _ => return all,
        }
    }
}

/// SETUPMAPPING through `f`: the extents, or the errno.
fn setup(
    f: &File,
    foffset: u64,
    len: u64,
    flags: u64,
    moffset: u64,
) -> io::Result<Vec<abi::Triple>> {
    let mut b = abi::SetupMapping {
        foffset,
        len,
        flags,
        moffset,
    }
    .encode();
    ioctl_buf(f, abi::IOC_SETUPMAPPING, &mut b)?;
    Ok(abi::decode_mapping_answer(&b).unwrap())
}

fn remove(f: &File, ranges: &[(u64, u64)]) -> io::Result<()> {
    ioctl_buf(f, abi::IOC_REMOVEMAPPING, &mut abi::encode_ranges(ranges))
}

fn get_recalls(f: &File) -> Vec<(u64, u64)> {
    let mut b = vec![0u8; abi::RANGES_SIZE];
    ioctl_buf(f, abi::IOC_GET_RECALLS, &mut b).expect("GET_RECALLS");
    let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| {
            let o = 8 + i * 16;
            (
                u64::from_le_bytes(b[o..o + 8].try_into().unwrap()),
                u64::from_le_bytes(b[o + 8..o + 16].try_into().unwrap()),
            )
        })
        .collect()
}

fn seals_of(p: &Path) -> Vec<abi::SealInfoArg> {
    let f = File::open(p).unwrap();
    let mut b = vec![0u8; abi::SEAL_LIST_SIZE];
    ioctl_buf(&f, abi::IOC_GET_SEALS, &mut b).expect("GET_SEALS");
    abi::decode_seal_list(&b).unwrap().0
}

fn stat_of(m: &Mount) -> abi::StatArg {
    let f = File::open(m.mnt()).unwrap();
    let mut b = vec![0u8; abi::STAT_SIZE];
    ioctl_buf(&f, abi::IOC_STAT, &mut b).expect("SEALFS_IOC_STAT");
    abi::StatArg::decode(&b).unwrap()
}

fn rw(p: &Path) -> File {
    OpenOptions::new().read(true).write(true).open(p).unwrap()
}

fn create(p: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(p)
        .unwrap()
}

fn size_of(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

/// The errno of a window library error (its I/O errors carry one; `Invalid` is EINVAL).
fn werrno(e: &sealfs::Error) -> i32 {
    match e {
        sealfs::Error::Io(io) => io.raw_os_error().unwrap_or(-1),
        sealfs::Error::Invalid(_) => libc::EINVAL,
        other => panic!("unexpected window error {other:?}"),
    }
}

fn wait_pollpri(fd: &impl AsRawFd, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        let left = limit.saturating_sub(t.elapsed()).as_millis().max(1) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, left) };
        if n > 0 && p.revents & libc::POLLPRI != 0 {
            return true;
        }
    }
    false
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

// ---------------------------------------------------------------------------------------
// Child processes.

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: a two-int array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: fresh descriptors owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Forks a child that keeps stdio and `keep` only (descriptors of tests running in parallel
/// are closed at once) and runs `f`, exiting with its value without running destructors.
fn fork_child(keep: &[RawFd], f: impl FnOnce() -> i32) -> libc::pid_t {
    let mut keep: Vec<u32> = keep.iter().map(|&k| k as u32).collect();
    keep.sort_unstable();
    // SAFETY: fork; the child closes inherited descriptors and runs `f`, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let mut lo = 3u32;
        for &k in &keep {
            if k >= lo {
                if k > lo {
                    // SAFETY: closing inherited descriptors of this child.
                    unsafe { libc::syscall(libc::SYS_close_range, lo, k - 1, 0) };
                }
                lo = k + 1;
            }
        }
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_close_range, lo, u32::MAX, 0) };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(251);
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(r) };
    }
    pid
}

/// Kills and reaps a child when dropped, unless it was reaped already.
struct Reap(libc::pid_t);

impl Drop for Reap {
    fn drop(&mut self) {
        let mut st = 0;
        // SAFETY: waiting for our own child; 0 means it still runs (its pid is still ours).
        if unsafe { libc::waitpid(self.0, &mut st, libc::WNOHANG) } == 0 {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, &mut st, 0);
            }
        }
    }
}

fn read_exact_timeout(fd: &impl AsRawFd, buf: &mut [u8], limit: Duration) -> bool {
    let t = Instant::now();
    let mut done = 0;
    while done < buf.len() {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = limit.saturating_sub(t.elapsed()).as_millis() as i32;
        // SAFETY: one valid pollfd.
        if left <= 0 || unsafe { libc::poll(&mut p, 1, left) } <= 0 {
            return false;
        }
        // SAFETY: reading into the rest of a valid buffer.
        let r = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf[done..].as_mut_ptr().cast(),
                buf.len() - done,
            )
        };
        if r <= 0 {
            return false;
        }
        done += r as usize;
    }
    true
}

// ---------------------------------------------------------------------------------------
// 1. Coherence both ways, unaligned, across extent and slot boundaries.

#[test]
fn window_and_read_write_are_coherent_both_ways() {
    let Some(m) = Mount::new("") else { return };
    let a = m.path("a");
    let b = m.path("b");
    // Fragment `a`: interleaved appends with `b`.
    {
        let fa = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&a)
            .unwrap();
        let fb = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&b)
            .unwrap();
        use std::io::Write;
        for i in 0..128u64 {
            (&fa)
                .write_all(&pattern(1, i * 128 * 1024, 128 * 1024))
                .unwrap();
            (&fb).write_all(&pattern(9, i * 4096, 4096)).unwrap();
        }
    }
    let size = 16 * MIB;
    assert_eq!(size_of(&a), size);
    let ext = extents(&a);
    assert!(
        ext.len() >= 8,
        "interleaved appends fragment the file: {} extents",
        ext.len()
    );
    assert_eq!(ext.iter().map(|e| e.2).sum::<u64>(), size, "no holes");
    // `sealfs extents` prints the same list.
    let out = sealfs(&[OsStr::new("extents"), a.as_os_str()]);
    assert!(out.status.success(), "{}", describe(&out));
    let printed: Vec<abi::Triple> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                u64::from_str_radix(f[1].trim_start_matches("0x"), 16).unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(printed, ext, "sealfs extents");
    let mut want = pattern(1, 0, size as usize);

    let mut w = Window::open(&a, 4 * MIB, true).unwrap();
    assert_eq!(w.slots(), 2);
    // Writes through the window: unaligned, across extent boundaries (file offsets where the
    // device offset jumps), across slot boundaries, at the very end.
    let mut spots: Vec<(u64, usize)> = vec![
        (1, 10),
        (SLOT - 3, 9),
        (8 * MIB - 5000, 10_000),
        (size - 13, 13),
    ];
    for e in ext.iter().take(ext.len() - 1).step_by(ext.len() / 6) {
        spots.push((e.0 + e.2 - 7, 20));
    }
    for (i, &(off, len)) in spots.iter().enumerate() {
        let data = pattern(100 + i as u64, off, len);
        w.write_at(off, &data).unwrap();
        want[off as usize..off as usize + len].copy_from_slice(&data);
    }
    w.flush(0, size).unwrap();
    assert!(
        w.setups > 2,
        "a 2-slot window over 16 MiB cycles its slots: {}",
        w.setups
    );
    let f = File::open(&a).unwrap();
    assert_bytes(
        &pread_vec(&f, 0, size as usize).unwrap(),
        &want,
        "read(2) after window writes",
    );

    // The other way: write(2) through the mount, read through the window.
    let wf = rw(&a);
    let mut spots2: Vec<(u64, usize)> = vec![(4097, 3), (SLOT + 1, 4095), (6 * MIB - 1, 2)];
    for e in ext
        .iter()
        .skip(1)
        .take(ext.len() - 2)
        .step_by(ext.len() / 5)
    {
        spots2.push((e.0 + e.2 - 3000, 6000));
    }
    for (i, &(off, len)) in spots2.iter().enumerate() {
        let data = pattern(200 + i as u64, off, len);
        pwrite_all(&wf, &data, off).unwrap();
        want[off as usize..off as usize + len].copy_from_slice(&data);
    }
    for &(off, len) in spots2.iter().chain(spots.iter()) {
        let mut got = vec![0u8; len];
        w.read_at(off, &mut got).unwrap();
        assert_bytes(
            &got,
            &want[off as usize..off as usize + len],
            &format!("window read at {off}"),
        );
    }
    let mut whole = vec![0u8; size as usize];
    w.read_at(0, &mut whole).unwrap();
    assert_bytes(&whole, &want, "whole file through the window");
    eprintln!(
        "coherence: {} extents, {} SETUPMAPPING and {} REMOVEMAPPING through a 2-slot window",
        ext.len(),
        w.setups,
        w.removes
    );
    drop(w);
    assert_eq!(stat_of(&m).pins, 0);
    assert_bytes(
        &pread_vec(&f, 0, size as usize).unwrap(),
        &want,
        "read(2) at the end",
    );
}

// ---------------------------------------------------------------------------------------
// 2. Many windows, LRU reuse, and the SETUPMAPPING/REMOVEMAPPING errnos.

#[test]
fn many_windows_lru_reuse_and_mapping_errors() {
    let Some(m) = Mount::new("") else { return };
    let c = m.path("c");
    let size = 16 * MIB;
    let want = pattern(5, 0, size as usize);
    fs::write(&c, &want).unwrap();
    let mut w1 = Window::open(&c, 4 * MIB, true).unwrap();
    let mut w2 = Window::open(&c, 4 * MIB, false).unwrap();
    w1.write_at(5 * MIB + 3, b"one window").unwrap();
    w1.flush(5 * MIB, 16).unwrap();
    let mut got = [0u8; 10];
    w2.read_at(5 * MIB + 3, &mut got).unwrap();
    assert_eq!(
        &got, b"one window",
        "a second window on the same file sees it"
    );
    let mut want = want;
    want[(5 * MIB + 3) as usize..(5 * MIB + 13) as usize].copy_from_slice(b"one window");
    let pins: Vec<(u32, u64, u64, u32)> = seals_of(&c)
        .iter()
        .map(|s| (s.kind, s.offset, s.length, s.pid))
        .collect();
    let me = std::process::id();
    assert_eq!(
        pins,
        vec![
            (abi::KIND_PIN, 4 * MIB, SLOT, me),
            (abi::KIND_PIN, 4 * MIB, SLOT, me)
        ]
    );
    assert_eq!(stat_of(&m).pins, 2);

    // A window smaller than the file: LRU reuse of its two slots.
    let mut w3 = Window::open(&c, 4 * MIB, false).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut whole = Vec::with_capacity(size as usize);
    for o in (0..size).step_by(MIB as usize) {
        w3.read_at(o, &mut buf).unwrap();
        whole.extend_from_slice(&buf);
    }
    assert_bytes(&whole, &want, "the whole file through 2 slots");
    // A slot is reused by a SETUPMAPPING that replaces its old mapping: no REMOVEMAPPING.
    assert_eq!((w3.setups, w3.removes), (8, 0));
    assert_eq!(stat_of(&m).pins, 4);
    w3.read_at(15 * MIB, &mut buf).unwrap();
    assert_eq!((w3.setups, w3.removes), (8, 0), "still mapped");
    w3.read_at(0, &mut buf).unwrap();
    assert_eq!(
        (w3.setups, w3.removes),
        (9, 0),
        "the least recently used slot was replaced"
    );
    assert_eq!(stat_of(&m).pins, 4, "replacing keeps one pin per slot");
    // Past EOF.
    let e = w3.read_at(size, &mut [0u8; 1]).unwrap_err();
    assert_eq!(werrno(&e), libc::EINVAL, "{e}");
    let e = w3.read_at(size - 1, &mut [0u8; 2]).unwrap_err();
    assert_eq!(werrno(&e), libc::EINVAL, "{e}");
    drop((w1, w2, w3));
    assert_eq!(stat_of(&m).pins, 0);

    // The raw ioctls.
    let f = rw(&c);
    let ro = File::open(&c).unwrap();
    let rd = 1; // SEALFS_MAP_READ
    let wr = 2; // SEALFS_MAP_WRITE
    assert_errno!(setup(&f, size, 4096, rd, 0), libc::EINVAL);
    assert_errno!(setup(&f, 14 * MIB, 4 * MIB, rd, 0), libc::EINVAL);
    assert_errno!(setup(&f, 1, 4096, rd, 0), libc::EINVAL);
    assert_errno!(setup(&f, 0, 100, rd, 0), libc::EINVAL);
    assert_errno!(setup(&f, 0, 0, rd, 0), libc::EINVAL);
    assert_errno!(setup(&f, 0, 4096, 0, 0), libc::EINVAL);
    assert_errno!(setup(&f, 0, 4096, rd | 8, 0), libc::EINVAL);
    assert_errno!(setup(&f, u64::MAX - 4095, 8192, rd, 0), libc::EINVAL);
    assert_errno!(setup(&ro, 0, 4096, rd | wr, 0), libc::EACCES);
    let ext = setup(&f, 2 * MIB, 8192, rd | wr, 0).expect("setup");
    assert_eq!(ext.iter().map(|e| e.2).sum::<u64>(), 8192);
    assert_eq!(ext[0].0, 2 * MIB);
    let by_extents: Vec<abi::Triple> = extents(&c)
        .into_iter()
        .filter(|e| e.0 <= 2 * MIB && 2 * MIB < e.0 + e.2)
        .collect();
    assert_eq!(
        ext[0].1,
        by_extents[0].1 + (2 * MIB - by_extents[0].0),
        "same device offset as EXTENTS"
    );
    // A live slot is replaced (virtio-fs semantics): one pin still, now on [0, 4096).
    let again = setup(&f, 0, 4096, rd, 0).expect("SETUPMAPPING over a live slot");
    assert_eq!((again.len(), again[0].0, again[0].2), (1, 0, 4096));
    assert_eq!(stat_of(&m).pins, 1);
    assert_eq!(
        seals_of(&c)
            .iter()
            .map(|s| (s.offset, s.length))
            .collect::<Vec<_>>(),
        vec![(0, 4096)]
    );
    setup(&ro, 0, 4096, rd, 0).expect("the same slot key through another descriptor");
    assert_errno!(remove(&f, &[(SLOT, 4096)]), libc::EINVAL);
    assert_errno!(remove(&f, &[]), libc::EINVAL);
    let mut bad = abi::encode_ranges(&[(0, 8192)]);
    bad[4] = 1;
    assert_errno!(
        ioctl_buf(&f, abi::IOC_REMOVEMAPPING, &mut bad),
        libc::EINVAL
    );
    assert_eq!(stat_of(&m).pins, 2);
    remove(&f, &[(0, 8192)]).unwrap();
    assert_errno!(remove(&f, &[(0, 8192)]), libc::EINVAL);
    remove(&ro, &[(0, 4096)]).unwrap();
    assert_eq!(stat_of(&m).pins, 0);
    assert_eq!(get_recalls(&f), vec![]);

    // Only a process that may open the device (here the image) for that access maps it;
    // device addresses are for root only.
    chmod(&c, 0o666).unwrap();
    let img_mode = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(m.img(), fs::Permissions::from_mode(mode)).unwrap()
    };
    let as_nobody_map = |flags: u64| {
        let cc = c.clone();
        as_nobody(move || {
            let Ok(f) = OpenOptions::new().read(true).write(true).open(&cc) else {
                return 100;
            };
            match setup(&f, 0, 4096, flags, 0) {
                Ok(_) => code(remove(&f, &[(0, 4096)])),
                Err(e) => e.raw_os_error().unwrap_or(101),
            }
        })
    };
    img_mode(0o600);
    assert_eq!(
        as_nobody_map(rd),
        libc::EPERM,
        "image 0600: no READ mapping"
    );
    assert_eq!(as_nobody_map(rd | wr), libc::EPERM);
    img_mode(0o604);
    assert_eq!(as_nobody_map(rd), 0, "image 0604: READ mapping allowed");
    assert_eq!(
        as_nobody_map(rd | wr),
        libc::EPERM,
        "image 0604: no WRITE mapping"
    );
    img_mode(0o606);
    assert_eq!(
        as_nobody_map(rd | wr),
        0,
        "image 0606: WRITE mapping allowed"
    );
    img_mode(0o644);
    let cc = c.clone();
    assert_eq!(
        as_nobody(move || {
            let Ok(f) = File::open(&cc) else { return 100 };
            let mut b = vec![0u8; abi::EXTENT_LIST_SIZE];
            code(ioctl_buf(&f, abi::IOC_EXTENTS, &mut b))
        }),
        libc::EPERM,
        "EXTENTS is root only"
    );
    assert_eq!(stat_of(&m).pins, 0);

    // Figure: SETUPMAPPING + REMOVEMAPPING round trip of one 2 MiB slot.
    let mut rt = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        setup(&f, 0, SLOT, rd | wr, 0).unwrap();
        remove(&f, &[(0, SLOT)]).unwrap();
        rt.push(t.elapsed());
    }
    rt.sort();
    eprintln!(
        "figure: SETUPMAPPING+REMOVEMAPPING round trip (2 MiB slot) median {:?}, p90 {:?} (debug daemon)",
        rt[rt.len() / 2],
        rt[rt.len() * 9 / 10]
    );
    assert_bytes(
        &pread_vec(&f, 0, size as usize).unwrap(),
        &want,
        "contents unchanged",
    );
}

// ---------------------------------------------------------------------------------------
// 3. Recall answered by handle_recalls; a recall racing a REMOVEMAPPING.

#[test]
fn recall_answered_by_handle_recalls() {
    let Some(m) = Mount::new("") else { return };
    let d = m.path("d");
    let want = pattern(7, 0, 4 * MIB as usize);
    fs::write(&d, &want).unwrap();
    let mut w = Window::open(&d, SLOT, true).unwrap();
    w.write_at(10, b"dirty").unwrap();
    assert_eq!(seals_of(&d).len(), 1);
    let dc = d.clone();
    let t0 = Instant::now();
    let worker = std::thread::spawn(move || {
        let r = truncate(&dc, MIB as i64);
        (r.map_err(|e| e.raw_os_error()), Instant::now())
    });
    assert!(
        wait_pollpri(w.fd(), Duration::from_secs(3)),
        "POLLPRI on the window's fd"
    );
    let t_pri = Instant::now();
    let s = seals_of(&d);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].kind, s[0].state),
        (abi::KIND_PIN, abi::STATE_RECALLED)
    );
    assert_eq!(get_recalls(w.fd()), vec![(0, SLOT)]);
    assert!(!worker.is_finished(), "the truncate waits for the pin");
    let other = File::open(&d).unwrap();
    assert_errno!(setup(&other, 0, 4096, 1, 0), libc::EBUSY);
    assert_errno!(
        ioctl_buf(
            &other,
            abi::IOC_SEAL,
            &mut abi::SealArg {
                offset: 0,
                length: 0,
                flags: abi::SEAL_BREAKABLE
            }
            .encode()
        ),
        libc::EBUSY
    );
    let t_ack = Instant::now();
    assert_eq!(w.handle_recalls().unwrap(), 1);
    let (r, t_done) = worker.join().unwrap();
    assert_eq!(r, Ok(()));
    let total = t_done - t0;
    assert!(total < Duration::from_secs(2), "{total:?}");
    assert_eq!(size_of(&d), MIB);
    let f = File::open(&d).unwrap();
    let mut expect = want[..MIB as usize].to_vec();
    expect[10..15].copy_from_slice(b"dirty");
    assert_bytes(
        &pread_vec(&f, 0, 2 * MIB as usize).unwrap(),
        &expect,
        "flushed before unmapping, then cut",
    );
    let s = stat_of(&m);
    assert_eq!(
        (s.recalls, s.revocations, s.pins, s.quarantined_blocks),
        (1, 0, 0, 0)
    );
    // The window maps again after the recall.
    let mut got = [0u8; 5];
    w.read_at(10, &mut got).unwrap();
    assert_eq!(&got, b"dirty");
    eprintln!(
        "figure: window recall: POLLPRI {:?} after the truncate started; truncate done {:?} \
         after handle_recalls began; {total:?} in all",
        t_pri - t0,
        t_done - t_ack
    );
}

#[test]
fn recall_racing_removemapping() {
    let Some(m) = Mount::new("") else { return };
    let e = m.path("e");
    let mut outcomes = [0usize; 2]; // unmap_all Ok, EINVAL
    let mut worst = Duration::ZERO;
    for round in 0..20u64 {
        fs::write(&e, pattern(round, 0, 4 * MIB as usize)).unwrap();
        let mut w = Window::open(&e, 4 * MIB, true).unwrap();
        w.write_at(round, b"x").unwrap();
        w.read_at(3 * MIB, &mut [0u8; 1]).unwrap();
        let ec = e.clone();
        let t = Instant::now();
        let worker = std::thread::spawn(move || truncate(&ec, 0).map_err(|e| e.raw_os_error()));
        std::thread::sleep(Duration::from_micros(round * 150));
        match w.unmap_all() {
            Ok(()) => outcomes[0] += 1,
            Err(err) => {
                assert_eq!(werrno(&err), libc::EINVAL, "round {round}: {err}");
                outcomes[1] += 1;
            }
        }
        assert_eq!(w.handle_recalls().unwrap(), 0, "nothing left to give back");
        assert_eq!(worker.join().unwrap(), Ok(()), "round {round}");
        worst = worst.max(t.elapsed());
        assert_eq!(size_of(&e), 0);
        drop(w);
    }
    assert!(worst < Duration::from_secs(2), "{worst:?}");

    // Raw: a truncate and two REMOVEMAPPINGs of the same slot at once.
    let mut raw = [0usize; 2];
    for round in 0..20u64 {
        fs::write(&e, pattern(round, 0, 4 * MIB as usize)).unwrap();
        let f = rw(&e);
        setup(&f, 0, SLOT, 3, 0).unwrap();
        let (r1, r2, rt) = std::thread::scope(|s| {
            let ec = e.clone();
            let tr = s.spawn(move || truncate(&ec, 0).map_err(|e| e.raw_os_error()));
            std::thread::sleep(Duration::from_micros(round * 100));
            let a = s.spawn(|| remove(&f, &[(0, SLOT)]).map_err(|e| e.raw_os_error()));
            let b = s.spawn(|| remove(&f, &[(0, SLOT)]).map_err(|e| e.raw_os_error()));
            (a.join().unwrap(), b.join().unwrap(), tr.join().unwrap())
        });
        let mut rs = [r1, r2];
        rs.sort();
        assert_eq!(
            rs,
            [Ok(()), Err(Some(libc::EINVAL))],
            "round {round}: exactly one removal succeeds"
        );
        assert_eq!(rt, Ok(()), "round {round}");
        assert_eq!(get_recalls(&f), vec![]);
        raw[usize::from(r1.is_err())] += 1;
    }
    let s = stat_of(&m);
    assert_eq!((s.pins, s.revocations, s.quarantined_blocks), (0, 0, 0));
    eprintln!(
        "recall vs REMOVEMAPPING: window unmap_all {} ok / {} EINVAL, worst truncate {worst:?}; \
         raw double removal won by the first/second thread {raw:?}; recalls counted {}",
        outcomes[0], outcomes[1], s.recalls
    );
    // The fixture's fsck on drop checks the image.
}

// ---------------------------------------------------------------------------------------
// 4. Revocation and quarantine.

#[test]
fn revoked_host_quarantines_its_blocks_until_it_exits() {
    let Some(m) = Mount::new("break_timeout=300") else {
        return;
    };
    let v = m.path("victim");
    let free_init = stat_of(&m).free_blocks;
    let bs = stat_of(&m).block_size;
    fs::write(&v, pattern(11, 0, 4 * MIB as usize)).unwrap();
    let nblocks = 4 * MIB / bs;
    assert_eq!(stat_of(&m).free_blocks, free_init - nblocks);
    let mapped = extents(&v);
    assert_eq!(mapped.iter().map(|e| e.2).sum::<u64>(), 4 * MIB);

    // The host: a child that maps both slots of the file and then never answers.
    let (r, w) = pipe();
    let w_raw = w.as_raw_fd();
    let vc = v.clone();
    let child = fork_child(&[w_raw], move || {
        let mut win = match Window::open(&vc, 4 * MIB, true) {
            Ok(win) => win,
            Err(_) => return 10,
        };
        if win.read_at(0, &mut [0u8; 1]).is_err() || win.write_at(2 * MIB, b"host").is_err() {
            return 11;
        }
        // SAFETY: one byte to the parent, then sleep until killed.
        unsafe {
            libc::write(w_raw, b"M".as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    });
    let _reap = Reap(child);
    drop(w);
    let mut said = [0u8; 1];
    assert!(
        read_exact_timeout(&r, &mut said, Duration::from_secs(10)),
        "the host mapped"
    );
    assert_eq!(&said, b"M");
    let pins: Vec<(u32, u32, u64)> = seals_of(&v)
        .iter()
        .map(|s| (s.kind, s.pid, s.offset))
        .collect();
    assert_eq!(
        pins,
        vec![
            (abi::KIND_PIN, child as u32, 0),
            (abi::KIND_PIN, child as u32, SLOT)
        ]
    );

    let t = Instant::now();
    truncate(&v, 0).expect("truncate against an unresponsive host");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "revoked after {took:?} with break_timeout=300"
    );
    let s = stat_of(&m);
    assert_eq!((s.recalls, s.revocations, s.pins), (2, 2, 0));
    assert_eq!(
        s.quarantined_blocks, nblocks,
        "every block the host mapped is held back"
    );
    assert_eq!(s.free_blocks, free_init - nblocks);
    assert_eq!(statfs(m.mnt()).f_bfree, free_init - nblocks);
    let out = m.stat_output();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let q = text
        .lines()
        .find(|l| l.trim_start().starts_with("quarantined"))
        .unwrap_or_else(|| panic!("no quarantined line: {text}"));
    assert_eq!(
        q.split_whitespace().nth(1),
        Some(&*nblocks.to_string()),
        "{q}"
    );
    eprintln!("sealfs stat: {}", q.trim());

    // Allocate aggressively: a written file, then everything left by fallocate.
    let big = m.path("big");
    {
        let f = create(&big);
        let chunk = vec![0xEEu8; MIB as usize];
        for i in 0..32 {
            pwrite_all(&f, &chunk, i * MIB).unwrap();
        }
    }
    let rest = m.path("rest");
    let left = stat_of(&m).free_blocks;
    {
        let f = create(&rest);
        fallocate(&f, 0, 0, (left * bs) as i64).expect("fallocate every free block");
        assert_eq!(stat_of(&m).free_blocks, 0);
        let g = create(&m.path("one-more"));
        assert_errno!(pwrite_all(&g, &[1u8; 4096], 0), libc::ENOSPC);
    }
    for p in [&big, &rest] {
        for e in extents(p) {
            for q in &mapped {
                assert!(
                    !overlaps((e.1, e.2), (q.1, q.2)),
                    "{} got device range {:#x}+{} inside the quarantined {:#x}+{}",
                    p.display(),
                    e.1,
                    e.2,
                    q.1,
                    q.2
                );
            }
        }
    }
    fs::remove_file(&big).unwrap();
    fs::remove_file(&rest).unwrap();
    fs::remove_file(m.path("one-more")).unwrap();
    assert_eq!(
        after_release(free_init - nblocks, || stat_of(&m).free_blocks),
        free_init - nblocks
    );
    assert_eq!(stat_of(&m).quarantined_blocks, nblocks);

    // The host dies: the quarantine ends.
    let t = Instant::now();
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        let mut st = 0;
        assert_eq!(libc::waitpid(child, &mut st, 0), child);
    }
    let reaped = t.elapsed();
    wait_until(
        "quarantine ends after the host exits",
        Duration::from_secs(1),
        || stat_of(&m).quarantined_blocks == 0,
    );
    let released = t.elapsed();
    assert!(released < Duration::from_secs(1));
    let s = stat_of(&m);
    assert_eq!(s.free_blocks, free_init);
    assert_eq!(statfs(m.mnt()).f_bfree, free_init);
    assert_eq!(seals_of(&v), vec![]);
    eprintln!(
        "figure: revocation after {took:?} (break_timeout=300); {nblocks} blocks quarantined, \
         returned {released:?} after SIGKILL of the host (reaped at {reaped:?})"
    );
}

#[test]
fn quarantine_ends_on_acknowledgement_and_outlives_a_close() {
    let Some(m) = Mount::new("break_timeout=300") else {
        return;
    };
    let bs = stat_of(&m).block_size;
    let free_init = stat_of(&m).free_blocks;
    let v = m.path("v");
    fs::write(&v, pattern(21, 0, 4 * MIB as usize)).unwrap();
    let slot_blocks = SLOT / bs;

    // A revoked host that acknowledges late: REMOVEMAPPING ends its quarantine.
    let f = rw(&v);
    setup(&f, 0, SLOT, 3, 0).unwrap();
    let t = Instant::now();
    truncate(&v, 0).unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let s = stat_of(&m);
    assert_eq!((s.revocations, s.quarantined_blocks), (1, slot_blocks));
    assert_eq!(s.free_blocks, free_init - slot_blocks);
    assert_eq!(
        get_recalls(&f),
        vec![(0, SLOT)],
        "a revoked slot is listed until acknowledged"
    );
    fs::write(&v, pattern(22, 0, 4 * MIB as usize)).unwrap();
    assert_errno!(setup(&f, 0, 4096, 1, SLOT), libc::ENOLINK);
    remove(&f, &[(0, SLOT)]).expect("REMOVEMAPPING is not refused to a fenced descriptor");
    let s = stat_of(&m);
    assert_eq!(s.quarantined_blocks, 0);
    assert_eq!(s.free_blocks, free_init - 4 * MIB / bs);
    assert_eq!(get_recalls(&f), vec![]);
    drop(f);

    // A host that closes its descriptor without REMOVEMAPPING still maps the device: what
    // is freed from its range stays quarantined until the process exits.
    let (r, w) = pipe();
    let w_raw = w.as_raw_fd();
    let vc = v.clone();
    let child = fork_child(&[w_raw], move || {
        let Ok(f) = OpenOptions::new().read(true).write(true).open(&vc) else {
            return 10;
        };
        if setup(&f, 0, SLOT, 3, 0).is_err() {
            return 11;
        }
        drop(f);
        // SAFETY: one byte to the parent, then sleep until killed.
        unsafe {
            libc::write(w_raw, b"C".as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    });
    let _reap = Reap(child);
    drop(w);
    let mut said = [0u8; 1];
    assert!(read_exact_timeout(&r, &mut said, Duration::from_secs(10)));
    assert_eq!(&said, b"C");
    wait_until(
        "the pin goes with the last close",
        Duration::from_secs(1),
        || stat_of(&m).pins == 0,
    );
    let t = Instant::now();
    truncate(&v, 0).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "no pin, no wait: {:?}",
        t.elapsed()
    );
    let s = stat_of(&m);
    assert_eq!((s.quarantined_blocks, s.revocations), (slot_blocks, 1));
    assert_eq!(s.free_blocks, free_init - slot_blocks);
    let t = Instant::now();
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        let mut st = 0;
        assert_eq!(libc::waitpid(child, &mut st, 0), child);
    }
    wait_until(
        "quarantine ends when the host exits",
        Duration::from_secs(1),
        || stat_of(&m).quarantined_blocks == 0,
    );
    eprintln!(
        "figure: closed-but-mapped host: quarantine of {slot_blocks} blocks ended {:?} after SIGKILL",
        t.elapsed()
    );
    assert_eq!(stat_of(&m).free_blocks, free_init);
}

// ---------------------------------------------------------------------------------------
// 5. Shared mmap sees window writes after the flush.

#[test]
fn shared_mmap_sees_window_writes_after_flush() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("mm");
    let len = 64 * 1024usize;
    let mut want = pattern(13, 0, len);
    fs::write(&p, &want).unwrap();
    // The window first: opening a file drops its page cache (no FOPEN_KEEP_CACHE), which
    // would hide a missing invalidation if it came after the mmap reader filled the cache.
    let mut w = Window::open(&p, SLOT, true).unwrap();
    w.read_at(0, &mut [0u8; 1]).unwrap();
    let f = File::open(&p).unwrap();
    // SAFETY: a fresh shared read-only mapping of the whole file.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(
        addr,
        libc::MAP_FAILED,
        "mmap: {}",
        io::Error::last_os_error()
    );
    // SAFETY: the mapping is `len` bytes and lives until munmap below.
    let view = unsafe { std::slice::from_raw_parts(addr as *const u8, len) };
    let read_view = |off: usize, n: usize| -> Vec<u8> {
        (off..off + n)
            // SAFETY: volatile reads inside the mapping (the page cache may change under it).
            .map(|i| unsafe { std::ptr::read_volatile(view.as_ptr().add(i)) })
            .collect()
    };
    assert_eq!(read_view(100, 16), want[100..116], "page cache filled");
    assert_eq!(read_view(40_000, 16), want[40_000..40_016]);

    w.write_at(100, b"through a window").unwrap();
    w.write_at(40_000, b"second page too!").unwrap();
    // Not part of the contract, shown so the check below means something: before the flush
    // the page cache may still hold the old bytes.
    let stale = read_view(100, 16) != b"through a window";
    w.flush(0, len as u64).unwrap();
    want[100..116].copy_from_slice(b"through a window");
    want[40_000..40_016].copy_from_slice(b"second page too!");
    assert_eq!(
        read_view(100, 16),
        b"through a window",
        "mmap after FLUSHMAPPING"
    );
    assert_eq!(read_view(40_000, 16), b"second page too!");
    assert_bytes(&read_view(0, len), &want, "the whole mapping");
    assert_bytes(&pread_vec(&f, 0, len).unwrap(), &want, "read(2)");
    // REMOVEMAPPING of a written slot invalidates too (the library flushes a dirty slot
    // before removing it; dropping the window removes every slot).
    assert_eq!(
        read_view(20_000, 4),
        want[20_000..20_004],
        "cache filled again"
    );
    w.write_at(20_000, b"gone").unwrap();
    drop(w);
    want[20_000..20_004].copy_from_slice(b"gone");
    assert_eq!(read_view(20_000, 4), b"gone", "mmap after REMOVEMAPPING");
    eprintln!(
        "mmap coherence: page cache was {} before the flush, current after it",
        if stale { "stale" } else { "already current" }
    );
    // SAFETY: our own mapping.
    unsafe { libc::munmap(addr, len) };
}

// ---------------------------------------------------------------------------------------
// 6. `sealfs map`.

#[test]
fn map_command_and_bench() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("m");
    let data = pattern(17, 0, 5 * MIB as usize);
    fs::write(&p, &data).unwrap();
    let sum = |b: &[u8]| {
        b.iter()
            .fold(0u64, |s, &x| s.wrapping_mul(31).wrapping_add(x as u64))
    };
    let run = |args: &[&OsStr]| {
        let out = sealfs(args);
        assert!(out.status.success(), "sealfs {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&[OsStr::new("map"), p.as_os_str()]);
    eprintln!("sealfs map: {}", out.trim());
    assert!(out.contains("3 SETUPMAPPING calls"), "{out}");
    assert!(
        out.contains(&format!("checksum {:016x}", sum(&data))),
        "{out}"
    );
    assert!(out.contains(&format!("mapped [0, {})", 5 * MIB)), "{out}");
    let out = run(&[
        OsStr::new("map"),
        OsStr::new("--range"),
        OsStr::new("4096:8192"),
        p.as_os_str(),
    ]);
    assert!(out.contains("mapped [4096, 12288)"), "{out}");
    assert!(out.contains("1 SETUPMAPPING calls"), "{out}");
    assert!(
        out.contains(&format!("checksum {:016x}", sum(&data[4096..12288]))),
        "{out}"
    );
    assert_eq!(stat_of(&m).pins, 0);

    let bench = m.path("bench");
    let t = Instant::now();
    let out = run(&[
        OsStr::new("map"),
        OsStr::new("--bench"),
        OsStr::new("--size"),
        OsStr::new("64M"),
        bench.as_os_str(),
    ]);
    eprintln!(
        "sealfs map --bench --size 64M ({:?}):\n{}",
        t.elapsed(),
        out.trim_end()
    );
    let lines: Vec<&str> = out.lines().collect();
    let last = lines.last().expect("output");
    assert!(last.starts_with("window_vs_memcpy="), "{out}");
    last["window_vs_memcpy=".len()..]
        .parse::<f64>()
        .expect("a ratio");
    let fuse = lines
        .iter()
        .find(|l| l.starts_with("window_vs_fuse_read="))
        .unwrap_or_else(|| panic!("{out}"));
    fuse["window_vs_fuse_read=".len()..]
        .parse::<f64>()
        .expect("a ratio");
    for key in ["setupmapping_us=", "slot_cycle_per_s="] {
        let l = lines
            .iter()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key}: {out}"));
        let v = l[key.len()..].parse::<f64>().expect("a number");
        assert!(v > 0.0, "{l}");
    }
    assert_eq!(size_of(&bench), 64 * MIB);
    assert_eq!(stat_of(&m).pins, 0);

    let v = m.path("verify");
    let out = run(&[
        OsStr::new("map"),
        OsStr::new("--verify"),
        OsStr::new("--size"),
        OsStr::new("8M"),
        v.as_os_str(),
    ]);
    eprintln!("sealfs map --verify: {}", out.trim());
    assert!(out.contains("verified 8 MiB:"), "{out}");
    assert!(out.contains("flushed with msync"), "an image window: {out}");
    // The last pass went through the window: every word names its own offset (pass 2).
    let got = fs::read(&v).unwrap();
    assert_eq!(got.len() as u64, 8 * MIB);
    let key = 2u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for (i, w) in got.chunks_exact(8).enumerate().step_by(4093) {
        assert_eq!(
            u64::from_le_bytes(w.try_into().unwrap()),
            (i as u64 * 8) ^ key
        );
    }
    assert_eq!(stat_of(&m).pins, 0);
}

#[test]
fn a_mapping_refused_for_space_allocates_nothing() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("sparse");
    let f = create(&p);
    f.set_len(400 * MIB).unwrap();
    let free = statfs(m.mnt()).f_bfree;
    // More holes than free space (flags: READ | WRITE): ENOSPC, and not one block of the
    // range stays allocated.
    assert_errno!(setup(&f, 0, 384 * MIB, 3, 0), libc::ENOSPC);
    assert_eq!(statfs(m.mnt()).f_bfree, free);
    assert_eq!(lstat(&p).unwrap().st_blocks, 0);
    assert_eq!(seals_of(&p), vec![]);
}

/// Argument checks as docs/ioctl.md states them, on every sealfs ioctl: a known ioctl
/// with another argument size is EINVAL (not ENOTTY); a non-zero reserved field is EINVAL
/// and changes nothing; a REMOVEMAPPING with one bad entry removes nothing.
#[test]
fn ioctl_argument_checks_and_removemapping_all_or_nothing() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("f");
    fs::write(&p, pattern(3, 0, 4 * MIB as usize)).unwrap();
    let f = rw(&p);
    let rd = sealfs::filesystem::windows::MAP_READ;

    for cmd in abi::IOC_ALL {
        let size = ((cmd >> 16) & 0x3fff) as usize;
        let other = (cmd & !(0x3fff << 16)) | (((size as u32) + 8) << 16);
        let mut b = vec![0u8; size + 8];
        let got = ioctl_buf(&f, other, &mut b).map_err(|e| e.raw_os_error());
        assert_eq!(
            got,
            Err(Some(libc::EINVAL)),
            "ioctl {cmd:#x} with an argument of {} bytes",
            size + 8
        );
    }
    // An unknown number of the sealfs type stays ENOTTY.
    let mut b = vec![0u8; 8];
    assert_errno!(
        ioctl_buf(&f, (1 << 30) | (8 << 16) | (0x53 << 8) | 0x7f, &mut b),
        libc::ENOTTY
    );

    // SETUPMAPPING's reserved word.
    let mut b = abi::SetupMapping {
        foffset: 0,
        len: 4096,
        flags: rd,
        moffset: 0,
    }
    .encode();
    b[44] = 1;
    assert_errno!(ioctl_buf(&f, abi::IOC_SETUPMAPPING, &mut b), libc::EINVAL);
    assert_eq!(stat_of(&m).pins, 0, "nothing pinned");

    // REMOVEMAPPING: all or nothing.
    setup(&f, 0, 4096, rd, 0).unwrap();
    setup(&f, 4096, 4096, rd, SLOT).unwrap();
    assert_eq!(stat_of(&m).pins, 2);
    assert_errno!(remove(&f, &[(0, 4096), (5 * SLOT, 4096)]), libc::EINVAL);
    assert_eq!(stat_of(&m).pins, 2, "one bad entry: nothing removed");
    assert_errno!(remove(&f, &[(SLOT, 4096), (SLOT, 4096)]), libc::EINVAL);
    assert_eq!(stat_of(&m).pins, 2, "a slot named twice: nothing removed");
    remove(&f, &[(0, 4096), (SLOT, 4096)]).unwrap();
    assert_eq!(stat_of(&m).pins, 0);
}

/// SETUPMAPPING over a live slot replaces it in one call, as virtio-fs does: the old pin is
/// released at once, so a truncate it was holding up proceeds without a REMOVEMAPPING and
/// without waiting for `break_timeout` (a minute here); the slot keeps one pin, now on the
/// new range. REMOVEMAPPING gives back up to 16 slots in one call, and no more.
#[test]
fn setupmapping_over_a_live_slot_replaces_it_and_releases_its_pin() {
    let Some(m) = Mount::new("break_timeout=60000") else {
        return;
    };
    let p = m.path("r");
    let want = pattern(11, 0, 4 * MIB as usize);
    fs::write(&p, &want).unwrap();
    let f = rw(&p);
    let (rd, wr) = (1, 2);
    setup(&f, 2 * MIB, 64 << 10, rd | wr, 0).expect("setup");
    let pc = p.clone();
    let t0 = Instant::now();
    let worker = std::thread::spawn(move || {
        let r = truncate(&pc, MIB as i64);
        (r.map_err(|e| e.raw_os_error()), Instant::now())
    });
    assert!(wait_pollpri(&f, Duration::from_secs(3)), "POLLPRI");
    assert_eq!(get_recalls(&f), vec![(0, 64 << 10)]);
    assert!(!worker.is_finished(), "the truncate waits for the pin");
    // Bad arguments are refused before the old mapping is touched: it is still recalled.
    assert_errno!(setup(&f, 0, 4096, rd | 8, 0), libc::EINVAL);
    assert_errno!(setup(&f, 8 * MIB, 4096, rd, 0), libc::EINVAL);
    assert_eq!(get_recalls(&f), vec![(0, 64 << 10)]);
    assert!(!worker.is_finished(), "still waiting");
    // The replacement: a range the truncate leaves alone.
    let t_replace = Instant::now();
    let ext = setup(&f, 0, 64 << 10, rd | wr, 0).expect("SETUPMAPPING over the recalled slot");
    assert_eq!(ext.iter().map(|e| e.2).sum::<u64>(), 64 << 10);
    assert_eq!(ext[0].0, 0);
    let (r, t_done) = worker.join().unwrap();
    assert_eq!(r, Ok(()));
    assert!(t_done - t0 < Duration::from_secs(30), "{:?}", t_done - t0);
    assert_eq!(size_of(&p), MIB);
    assert_eq!(get_recalls(&f), vec![]);
    let s = stat_of(&m);
    assert_eq!((s.pins, s.recalls, s.revocations), (1, 1, 0));
    assert_eq!(
        seals_of(&p)
            .iter()
            .map(|s| (s.kind, s.state, s.offset, s.length))
            .collect::<Vec<_>>(),
        vec![(abi::KIND_PIN, abi::STATE_ACTIVE, 0, 64 << 10)]
    );
    // The new mapping holds: a truncate into it waits again.
    assert_errno!(remove(&f, &[(SLOT, 4096)]), libc::EINVAL);
    remove(&f, &[(0, 64 << 10)]).unwrap();
    assert_eq!(stat_of(&m).pins, 0);
    eprintln!(
        "figure: truncate done {:?} after the replacing SETUPMAPPING began",
        t_done - t_replace
    );

    // 16 slots in one REMOVEMAPPING; a count of 17 is refused and removes nothing.
    let slots: Vec<(u64, u64)> = (0..16).map(|i| (i * SLOT, 4096)).collect();
    for &(mo, _) in &slots {
        setup(&f, 0, 4096, rd, mo).unwrap();
    }
    assert_eq!(stat_of(&m).pins, 16);
    let mut b = abi::encode_ranges(&slots);
    b[..4].copy_from_slice(&17u32.to_le_bytes());
    assert_errno!(ioctl_buf(&f, abi::IOC_REMOVEMAPPING, &mut b), libc::EINVAL);
    assert_eq!(stat_of(&m).pins, 16);
    remove(&f, &slots).unwrap();
    assert_eq!(stat_of(&m).pins, 0);
}

/// The window client streams a file four times its size through its slots with one
/// SETUPMAPPING per slot and no REMOVEMAPPING, and what it wrote through a slot it then
/// reused reached the file.
#[test]
fn window_reuses_slots_without_removemapping() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("s");
    let size = 16 * MIB;
    fs::write(&p, pattern(13, 0, size as usize)).unwrap();
    let mut w = Window::open(&p, 4 * MIB, true).unwrap();
    let mut want = pattern(13, 0, size as usize);
    for o in (0..size).step_by(SLOT as usize) {
        let tag = format!("slot at {o:>9}");
        w.write_at(o + 100, tag.as_bytes()).unwrap();
        want[(o + 100) as usize..(o + 100) as usize + tag.len()].copy_from_slice(tag.as_bytes());
    }
    assert_eq!((w.setups, w.removes), (8, 0));
    assert_eq!(stat_of(&m).pins, 2);
    // Every slot but the last two was replaced; their bytes are in the file already.
    let f = File::open(&p).unwrap();
    assert_bytes(
        &pread_vec(&f, 0, 12 * MIB as usize).unwrap(),
        &want[..12 * MIB as usize],
        "replaced slots",
    );
    let mut got = vec![0u8; size as usize];
    w.read_at(0, &mut got).unwrap();
    assert_bytes(&got, &want, "read back through the window");
    assert_eq!((w.setups, w.removes), (16, 0));
    drop(w);
    assert_eq!(stat_of(&m).pins, 0, "the drop gave both slots back");
    assert_bytes(&fs::read(&p).unwrap(), &want, "after the drop");
}

/// A slot written through and then reused is replaced by one SETUPMAPPING, with no
/// FLUSHMAPPING or REMOVEMAPPING: the replacement itself drops the page-cache pages the old
/// writable mapping wrote under, so a shared-mmap reader sees the new bytes.
#[test]
fn a_replaced_written_slot_invalidates_the_page_cache() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("rep");
    let len = 4 * MIB as usize;
    let mut want = pattern(19, 0, len);
    fs::write(&p, &want).unwrap();
    // The window first (an open drops the page cache, see the test above).
    let mut w = Window::open(&p, SLOT, true).unwrap();
    w.read_at(0, &mut [0u8; 1]).unwrap();
    let f = File::open(&p).unwrap();
    // SAFETY: a fresh shared read-only mapping of the first 64 KiB of the file.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            65536,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED, "{}", io::Error::last_os_error());
    let read_view = |off: usize, n: usize| -> Vec<u8> {
        (off..off + n)
            // SAFETY: volatile reads inside the 64 KiB mapping.
            .map(|i| unsafe { std::ptr::read_volatile((addr as *const u8).add(i)) })
            .collect()
    };
    assert_eq!(read_view(100, 16), want[100..116], "page cache filled");
    w.write_at(100, b"through a window").unwrap();
    want[100..116].copy_from_slice(b"through a window");
    // The window's only slot now shows [2 MiB, 4 MiB): replaced, not removed.
    w.read_at(2 * MIB, &mut [0u8; 1]).unwrap();
    assert_eq!((w.setups, w.removes), (2, 0));
    assert_eq!(
        read_view(100, 16),
        b"through a window",
        "mmap after the replacing SETUPMAPPING"
    );
    assert_bytes(&pread_vec(&f, 0, 65536).unwrap(), &want[..65536], "read(2)");
    // SAFETY: our own mapping.
    unsafe { libc::munmap(addr, 65536) };
}
