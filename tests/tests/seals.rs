//! Seals on a real mount: temporary, range, breakable (recall answered and ignored) and
//! permanent seals through the ioctls (`sealfs::abi` structures), their access rules and
//! limits, their lifetime across `fork`, close, exit and SIGKILL, the `sealfs seal`,
//! `seals` and `unseal` commands, and a C client compiled against `include/sealfs.h`.
//!
//! Every outcome is exact: the errno, the size, the bytes. Timings that matter for the
//! contract (release after exit or SIGKILL, recall latency) are bounded and printed.

use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sealfs::abi;
use sealfs_tests::*;

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

fn seal_arg(offset: u64, length: u64, flags: u32) -> [u8; abi::SEAL_ARG_SIZE] {
    abi::SealArg {
        offset,
        length,
        flags,
    }
    .encode()
}

fn seal(f: &impl AsRawFd, offset: u64, length: u64, flags: u32) -> io::Result<()> {
    ioctl_buf(f, abi::IOC_SEAL, &mut seal_arg(offset, length, flags))
}

fn unseal(f: &impl AsRawFd, offset: u64, length: u64) -> io::Result<()> {
    ioctl_buf(f, abi::IOC_UNSEAL, &mut seal_arg(offset, length, 0))
}

/// GET_SEALS: (entries, total).
fn get_seals(f: &impl AsRawFd) -> (Vec<abi::SealInfoArg>, u32) {
    let mut b = vec![0u8; abi::SEAL_LIST_SIZE];
    ioctl_buf(f, abi::IOC_GET_SEALS, &mut b).expect("SEALFS_IOC_GET_SEALS");
    abi::decode_seal_list(&b).expect("decode seal list")
}

fn seals_of(p: &Path) -> Vec<abi::SealInfoArg> {
    let f = File::open(p).expect("open for GET_SEALS");
    let (v, total) = get_seals(&f);
    assert_eq!(total as usize, v.len(), "fewer than SEALS_MAX seals here");
    v
}

fn stat_of(m: &Mount) -> abi::StatArg {
    let f = File::open(m.mnt()).expect("open mountpoint");
    let mut b = vec![0u8; abi::STAT_SIZE];
    ioctl_buf(&f, abi::IOC_STAT, &mut b).expect("SEALFS_IOC_STAT");
    abi::StatArg::decode(&b).expect("decode stat")
}

fn set_immutable(f: &impl AsRawFd, populate: bool) -> io::Result<()> {
    ioctl_buf(
        f,
        abi::IOC_SET_IMMUTABLE,
        &mut abi::encode_immutable(populate),
    )
}

fn clear_immutable(f: &impl AsRawFd) -> io::Result<()> {
    ioctl_buf(
        f,
        abi::IOC_CLEAR_IMMUTABLE,
        &mut abi::encode_immutable(false),
    )
}

fn rw(p: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap_or_else(|e| panic!("open {} rw: {e}", p.display()))
}

fn size_of(p: &Path) -> u64 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .len()
}

/// Raw `pwrite` (one call): the byte count or the errno, with no retry of a short write.
fn pwrite1(f: &File, buf: &[u8], off: u64) -> io::Result<usize> {
    // SAFETY: a valid fd and buffer.
    let r = unsafe { libc::pwrite(f.as_raw_fd(), buf.as_ptr().cast(), buf.len(), off as i64) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Polls until `truncate(p, len)` succeeds; returns the time it took (panics after `limit`).
fn truncate_when_free(p: &Path, len: i64, limit: Duration) -> Duration {
    let t = Instant::now();
    loop {
        match truncate(p, len) {
            Ok(()) => return t.elapsed(),
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {}
            Err(e) => panic!("truncate {}: {e}", p.display()),
        }
        assert!(
            t.elapsed() < limit,
            "truncate of {} still ETXTBSY after {limit:?}",
            p.display()
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

// ---------------------------------------------------------------------------------------
// Processes: forked children that keep only the descriptors they are given.

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: a two-int array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: fresh descriptors owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Forks a child that keeps stdio and `keep` (every other inherited descriptor, those of
/// tests running in parallel included, is closed at once) and runs `f`, exiting with its
/// value. The child must only make system calls.
fn fork_child(keep: &[RawFd], f: impl FnOnce() -> i32) -> libc::pid_t {
    let mut keep: Vec<u32> = keep.iter().map(|&k| k as u32).collect();
    keep.sort_unstable();
    // SAFETY: fork; the child closes descriptors and runs `f` (system calls only), then
    // _exits without running destructors.
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

/// Waits up to `limit` for a child; its wait status, or None if it is still running.
fn wait_child(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    let t = Instant::now();
    loop {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        assert!(r >= 0, "waitpid {pid}: {}", io::Error::last_os_error());
        if r == pid {
            return Some(st);
        }
        if t.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The exit code of a child that must exit normally within `limit`.
#[track_caller]
fn exit_code(pid: libc::pid_t, limit: Duration) -> i32 {
    let st = wait_child(pid, limit).unwrap_or_else(|| {
        kill(pid, libc::SIGKILL);
        let _ = wait_child(pid, Duration::from_secs(5));
        panic!("child {pid} still running after {limit:?}")
    });
    assert!(libc::WIFEXITED(st), "child {pid} died: status {st:#x}");
    libc::WEXITSTATUS(st)
}

fn kill(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, sig) };
}

/// Kills and reaps a child when dropped (so a failing assertion leaves no process behind).
struct Reap(libc::pid_t);

impl Drop for Reap {
    fn drop(&mut self) {
        let mut st = 0;
        // SAFETY: waiting for our own child. -1 (ECHILD): already reaped, and its pid may
        // belong to someone else now, so nothing is signalled; 0: still running (its pid is
        // still ours).
        if unsafe { libc::waitpid(self.0, &mut st, libc::WNOHANG) } == 0 {
            kill(self.0, libc::SIGKILL);
            // SAFETY: as above.
            unsafe { libc::waitpid(self.0, &mut st, 0) };
        }
    }
}

/// Kills a spawned command when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_byte(fd: &impl AsRawFd, b: u8) {
    // SAFETY: one byte from a valid buffer.
    let r = unsafe { libc::write(fd.as_raw_fd(), [b].as_ptr().cast(), 1) };
    assert_eq!(r, 1, "write to pipe: {}", io::Error::last_os_error());
}

/// Reads one byte within `limit`, None on timeout or EOF.
fn read_byte(fd: &impl AsRawFd, limit: Duration) -> Option<u8> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, limit.as_millis() as i32) };
    if n <= 0 {
        return None;
    }
    let mut b = [0u8];
    // SAFETY: one byte into a valid buffer.
    let r = unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
    (r == 1).then_some(b[0])
}

/// Polls `fd` for POLLPRI for up to `limit`; whether it came.
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

fn my_pid() -> u32 {
    std::process::id()
}

// ---------------------------------------------------------------------------------------
// 1. Temporary seals.

#[test]
fn temporary_seal_refuses_map_changes_and_allows_the_rest() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("f");
    const S: u64 = 3 * 65536 + 100;
    let mut want = pattern(1, 0, S as usize);
    fs::write(&p, &want).unwrap();
    let holder = rw(&p);
    seal(&holder, 0, 0, 0).expect("temporary seal to EOF");
    let list = seals_of(&p);
    assert_eq!(
        list,
        vec![abi::SealInfoArg {
            offset: 0,
            length: 0,
            kind: abi::KIND_TEMPORARY,
            state: abi::STATE_ACTIVE,
            pid: my_pid(),
            remaining_ms: 0,
        }]
    );
    assert_eq!(stat_of(&m).seals, 1);

    // Size changes, by path, by another descriptor, by the holder, by another process.
    assert_errno!(truncate(&p, 0), libc::ETXTBSY);
    assert_errno!(truncate(&p, S as i64 - 1), libc::ETXTBSY);
    assert_errno!(truncate(&p, S as i64 + 4096), libc::ETXTBSY);
    let other = rw(&p);
    assert_errno!(other.set_len(0), libc::ETXTBSY);
    assert_errno!(holder.set_len(0), libc::ETXTBSY);
    assert_errno!(open(&p, libc::O_WRONLY | libc::O_TRUNC, 0), libc::ETXTBSY);
    let pc = p.clone();
    assert_eq!(
        in_child(ChildCreds::default(), move || code(truncate(&pc, 0))),
        libc::ETXTBSY,
        "truncate from another process"
    );
    let out = Command::new("truncate")
        .args(["-s", "0"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Text file busy"),
        "{}",
        describe(&out)
    );
    // Extending writes: past EOF, and straddling EOF (nothing of it is written).
    assert_errno!(pwrite1(&other, b"x", S), libc::ETXTBSY);
    assert_errno!(pwrite1(&other, &[7u8; 20], S - 10), libc::ETXTBSY);
    assert_eq!(
        pread_vec(&other, S - 10, 20).unwrap(),
        &want[(S - 10) as usize..],
        "a refused write straddling EOF wrote nothing"
    );
    assert_errno!(pwrite1(&other, b"x", S + 1_000_000), libc::ETXTBSY);
    // fallocate: punch (in the middle, even of allocated blocks), and growing.
    assert_errno!(
        fallocate(
            &other,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            4096,
            4096
        ),
        libc::ETXTBSY
    );
    assert_errno!(fallocate(&other, 0, 0, S as i64 + 8192), libc::ETXTBSY);
    // Unlink of the last link, rename over it.
    assert_errno!(fs::remove_file(&p), libc::ETXTBSY);
    let q = m.path("q");
    fs::write(&q, b"replacement").unwrap();
    assert_errno!(fs::rename(&q, &p), libc::ETXTBSY);
    assert_eq!(fs::read(&q).unwrap(), b"replacement");
    // Not the last link: allowed.
    let p2 = m.path("f.link");
    fs::hard_link(&p, &p2).expect("link is not a map change");
    fs::remove_file(&p2).expect("unlink of a name that is not the last link");

    // copy_file_range into the file past EOF is an extending write.
    let src = m.path("src");
    fs::write(&src, b"0123456789").unwrap();
    let srcf = File::open(&src).unwrap();
    assert_errno!(
        copy_file_range(&srcf, 0, &other, S as i64, 10),
        libc::ETXTBSY
    );

    // What is not a map change works.
    truncate(&p, S as i64).expect("truncate to the same size changes nothing");
    fallocate(&other, libc::FALLOC_FL_KEEP_SIZE, 0, 8192)
        .expect("fallocate(KEEP_SIZE) over allocated blocks allocates nothing");
    fallocate(
        &other,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        S as i64 + 65536,
        4096,
    )
    .expect("punching wholly past EOF and the last block changes nothing");
    fallocate(
        &other,
        libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
        4096,
        4096,
    )
    .expect("ZERO_RANGE over allocated blocks zeroes in place");
    want[4096..8192].fill(0);
    renameat2(&q, &p, libc::RENAME_EXCHANGE).expect("RENAME_EXCHANGE replaces no last link");
    assert_eq!(fs::read(&p).unwrap(), b"replacement");
    renameat2(&q, &p, libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(size_of(&p), S);
    assert_errno!(fs::remove_file(&p), libc::ETXTBSY);
    pwrite_all(&other, b"hello", 100).expect("in-place write");
    want[100..105].copy_from_slice(b"hello");
    pwrite_all(&other, &[0xA5; 4096], 8192).expect("in-place write of a whole block");
    want[8192..8192 + 4096].fill(0xA5);
    pwrite_all(&holder, b"by the holder", S - 13).expect("in-place write up to EOF");
    want[(S - 13) as usize..].copy_from_slice(b"by the holder");
    chmod(&p, 0o600).expect("chmod");
    setxattr(&p, b"user.k", b"v", 0).expect("setxattr");
    assert_eq!(getxattr(&p, b"user.k").unwrap(), b"v");
    touch_now(&p).expect("utimes");
    assert_eq!(size_of(&p), S);
    assert_eq!(fstat_sync(&other).unwrap().stx_size, S);
    assert_bytes(&fs::read(&p).unwrap(), &want, "contents under the seal");
    assert_eq!(fs::metadata(&p).unwrap().len(), S);

    // UNSEAL needs exactly the range; then everything works again.
    assert_errno!(unseal(&holder, 0, S), libc::EINVAL);
    assert_errno!(unseal(&other, 0, 0), libc::EINVAL);
    unseal(&holder, 0, 0).expect("unseal");
    assert_errno!(unseal(&holder, 0, 0), libc::EINVAL);
    assert_eq!(seals_of(&p), vec![]);
    // The last close of the description releases its seals (RELEASE comes after close
    // returns, so this polls).
    let h2 = rw(&p);
    seal(&h2, 0, 0, 0).unwrap();
    assert_errno!(truncate(&p, S as i64 - 1), libc::ETXTBSY);
    drop(h2);
    let after_close = truncate_when_free(&p, S as i64 - 1, Duration::from_secs(1));
    assert_eq!(size_of(&p), S - 1);
    eprintln!("figure: seal gone {after_close:?} after close(2)");
    truncate(&p, 4096).expect("truncate after unseal");
    assert_eq!(size_of(&p), 4096);
    assert_bytes(&fs::read(&p).unwrap(), &want[..4096], "after truncate");
    fs::rename(&q, &p).expect("rename over after unseal");
    assert_eq!(fs::read(&p).unwrap(), b"replacement");

    // Figure: seal + unseal round trip.
    let mut rt = Vec::new();
    for _ in 0..400 {
        let t = Instant::now();
        seal(&holder, 0, 0, 0).unwrap();
        unseal(&holder, 0, 0).unwrap();
        rt.push(t.elapsed());
    }
    rt.sort();
    eprintln!(
        "figure: seal+unseal round trip median {:?}, p90 {:?} (debug daemon)",
        rt[rt.len() / 2],
        rt[rt.len() * 9 / 10]
    );
}

#[test]
fn range_seal_over_a_hole_and_populate() {
    let Some(m) = Mount::new("") else { return };
    const K: u64 = 1024;
    let p = m.path("holes");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.set_len(1 << 20).unwrap();
    pwrite_all(&f, &pattern(3, 0, 64 * K as usize), 0).unwrap();
    // [256K, 384K) is a hole.
    assert_eq!(
        lseek(&f, 256 * K as i64, libc::SEEK_HOLE).unwrap(),
        256 * K as i64
    );
    assert_eq!(
        lseek(&f, 64 * K as i64, libc::SEEK_DATA).map_err(|e| e.raw_os_error()),
        Err(Some(libc::ENXIO))
    );

    let holder = rw(&p);
    seal(&holder, 256 * K, 128 * K, 0).expect("range seal over a hole");
    let list = seals_of(&p);
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].offset, list[0].length, list[0].kind),
        (256 * K, 128 * K, abi::KIND_TEMPORARY)
    );

    // Filling the sealed hole, or any allocating write overlapping it, is refused.
    assert_errno!(pwrite1(&f, &[1; 4096], 300 * K), libc::ETXTBSY);
    assert_errno!(pwrite1(&f, &[1; 10], 300 * K + 5), libc::ETXTBSY);
    assert_errno!(pwrite1(&f, &[1; 10 * 1024], 250 * K), libc::ETXTBSY);
    assert_errno!(pwrite1(&f, &[1; 100], 384 * K - 1), libc::ETXTBSY);
    assert_errno!(fallocate(&f, 0, 300 * K as i64, 4096), libc::ETXTBSY);
    assert_errno!(
        fallocate(
            &f,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            256 * K as i64,
            4096
        ),
        libc::ETXTBSY
    );
    assert_errno!(truncate(&p, 300 * K as i64), libc::ETXTBSY);
    // Outside the range: allowed (allocating, in place, growing, touching the end).
    assert_eq!(pwrite1(&f, &[2; 4096], 600 * K).unwrap(), 4096);
    assert_eq!(pwrite1(&f, &[3; 100], 10).unwrap(), 100);
    assert_eq!(pwrite1(&f, &[4; 4096], 384 * K).unwrap(), 4096);
    assert_eq!(pwrite1(&f, &[5; 4096], 252 * K).unwrap(), 4096);
    truncate(&p, 2 << 20).expect("growing does not touch [256K, 384K)");
    truncate(&p, 1 << 20).expect("shrinking to 1 MiB does not touch it either");
    assert_eq!(size_of(&p), 1 << 20);
    // The sealed hole still reads zeroes and is still a hole.
    assert_eq!(
        pread_vec(&f, 256 * K, 128 * K as usize).unwrap(),
        vec![0u8; 128 * K as usize]
    );
    assert_eq!(
        lseek(&f, 256 * K as i64, libc::SEEK_HOLE).unwrap(),
        256 * K as i64
    );
    assert_eq!(
        lseek(&f, 256 * K as i64, libc::SEEK_DATA).unwrap(),
        384 * K as i64
    );

    // POPULATE over the sealed hole by the same descriptor: its own seal refuses it.
    assert_errno!(
        seal(&holder, 256 * K, 128 * K, abi::SEAL_POPULATE),
        libc::ETXTBSY
    );
    unseal(&holder, 256 * K, 128 * K).unwrap();
    seal(&holder, 256 * K, 128 * K, abi::SEAL_POPULATE).expect("seal with POPULATE");
    assert_eq!(
        lseek(&f, 256 * K as i64, libc::SEEK_DATA).unwrap(),
        256 * K as i64
    );
    assert_eq!(
        lseek(&f, 252 * K as i64, libc::SEEK_HOLE).unwrap(),
        (384 + 4) * K as i64,
        "[252K, 388K) allocated now"
    );
    assert_eq!(size_of(&p), 1 << 20, "POPULATE keeps the size");
    assert_eq!(pwrite1(&f, b"0123456789", 300 * K + 5).unwrap(), 10);
    let mut want = vec![0u8; 128 * K as usize];
    want[(44 * K + 5) as usize..(44 * K + 15) as usize].copy_from_slice(b"0123456789");
    assert_bytes(
        &pread_vec(&f, 256 * K, 128 * K as usize).unwrap(),
        &want,
        "populated range",
    );
    assert_errno!(
        fallocate(
            &f,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            300 * K as i64,
            4096
        ),
        libc::ETXTBSY
    );
    unseal(&holder, 256 * K, 128 * K).unwrap();
    truncate(&p, 0).expect("truncate after unseal");
    assert_eq!(size_of(&p), 0);
}

// ---------------------------------------------------------------------------------------
// 2. Access rules, limits, malformed arguments.

#[test]
fn access_rules_limits_and_bad_arguments() {
    let Some(m) = Mount::new("max_seals=3,max_seals_per_user=5") else {
        return;
    };
    assert_eq!(stat_of(&m).max_seals, 3);
    assert_eq!(stat_of(&m).max_seals_per_user, 5);
    let p = m.path("f");
    fs::write(&p, vec![9u8; 8192]).unwrap();
    let ro = File::open(&p).unwrap();
    let wo = OpenOptions::new().write(true).open(&p).unwrap();
    let both = rw(&p);
    assert_errno!(seal(&ro, 0, 0, 0), libc::EBADF);
    assert_errno!(seal(&wo, 0, 0, abi::SEAL_BREAKABLE), libc::EBADF);
    assert_errno!(seal(&ro, 0, 0, abi::SEAL_POPULATE), libc::EBADF);
    assert_eq!(seals_of(&p), vec![], "refused seals leave nothing");
    seal(&ro, 0, 0, abi::SEAL_BREAKABLE).expect("breakable seal on O_RDONLY");
    seal(&wo, 0, 4096, 0).expect("temporary seal on O_WRONLY");
    // max_seals counts per open file description: `both` may hold three of its own.
    seal(&both, 4096, 4096, 0).expect("first seal of both");
    seal(&both, 0, 100, 0).expect("second seal of both");
    seal(&both, 100, 100, 0).expect("third seal of both");
    assert_errno!(seal(&both, 200, 100, 0), libc::ENOLCK);
    // Forked children sharing `both` share its count (they are not new holders).
    for _ in 0..3 {
        assert_eq!(
            in_child(ChildCreds::default(), || code(seal(&both, 300, 1, 0))),
            libc::ENOLCK,
            "a child sealing through the inherited description"
        );
    }
    // max_seals_per_user: this user holds 5 over all its descriptions.
    assert_errno!(seal(&ro, 100, 100, abi::SEAL_BREAKABLE), libc::ENOLCK);
    let mut kinds: Vec<(u32, u64, u64, u32)> = seals_of(&p)
        .iter()
        .map(|s| (s.kind, s.offset, s.length, s.pid))
        .collect();
    kinds.sort();
    let mut want = vec![
        (abi::KIND_TEMPORARY, 0, 4096, my_pid()),
        (abi::KIND_TEMPORARY, 4096, 4096, my_pid()),
        (abi::KIND_TEMPORARY, 0, 100, my_pid()),
        (abi::KIND_TEMPORARY, 100, 100, my_pid()),
        (abi::KIND_BREAKABLE, 0, 0, my_pid()),
    ];
    want.sort();
    assert_eq!(kinds, want);
    assert_eq!(stat_of(&m).seals, 5);
    // Another user, with a description of its own, is under its own limits.
    let pc = p.clone();
    assert_eq!(
        as_nobody(move || {
            let f = match File::open(&pc) {
                Ok(f) => f,
                Err(_) => return 100,
            };
            code(seal(&f, 0, 0, abi::SEAL_BREAKABLE))
        }),
        0,
        "another user under its own limit"
    );
    // Under the limits again after an unseal.
    unseal(&both, 4096, 4096).unwrap();
    seal(&both, 4096, 4096, 0).expect("seal after an unseal");

    // Malformed arguments: EINVAL, even at the limit.
    let mut b = seal_arg(0, 0, 0);
    b[20] = 1;
    assert_errno!(ioctl_buf(&both, abi::IOC_SEAL, &mut b), libc::EINVAL);
    for flags in [8u32, 0x8000_0000, abi::SEAL_BREAKABLE | 8] {
        assert_errno!(seal(&both, 0, 0, flags), libc::EINVAL);
    }
    assert_errno!(seal(&both, u64::MAX, 2, 0), libc::EINVAL);
    assert_errno!(seal(&both, 1, u64::MAX, 0), libc::EINVAL);
    let mut b = seal_arg(0, 100, 0);
    b[23] = 0x80;
    assert_errno!(ioctl_buf(&both, abi::IOC_UNSEAL, &mut b), libc::EINVAL);
    let mut b = abi::encode_immutable(false);
    b[0] = 0x10;
    assert_errno!(
        ioctl_buf(&both, abi::IOC_SET_IMMUTABLE, &mut b),
        libc::EINVAL
    );
    let mut b = abi::encode_immutable(false);
    b[4] = 1;
    assert_errno!(
        ioctl_buf(&both, abi::IOC_SET_IMMUTABLE, &mut b),
        libc::EINVAL
    );
    assert_errno!(unseal(&both, 0, 4096), libc::EINVAL);
    // A number of sealfs's type that it does not know.
    let unknown = abi::ioc(1, abi::IOC_TYPE, 0x7f, 24);
    assert_errno!(ioctl_buf(&both, unknown, &mut [0u8; 24]), libc::ENOTTY);
    // Seals apply to regular files.
    let d = m.path("dir");
    fs::create_dir(&d).unwrap();
    let df = File::open(&d).unwrap();
    assert_errno!(seal(&df, 0, 0, abi::SEAL_BREAKABLE), libc::EINVAL);
    assert_eq!(
        after_release(5, || seals_of(&p).len()),
        5,
        "the other user's seal went with its last close"
    );
}

/// Free blocks of the mount and the file's `st_blocks` as `stat` sees them (through the
/// kernel's attribute cache).
fn usage(m: &Mount, p: &Path) -> (u64, i64) {
    (statfs(m.mnt()).f_bfree, lstat(p).unwrap().st_blocks)
}

#[test]
fn populate_by_a_reader_or_beyond_free_space_allocates_nothing() {
    let Some(m) = Mount::new("") else { return };
    const M: u64 = 1 << 20;
    let p = m.path("sparse");
    // Root's sparse file, larger than the free space, readable by everyone.
    File::create(&p).unwrap().set_len(400 * M).unwrap();
    chmod(&p, 0o644).unwrap();
    let before = usage(&m, &p);
    assert_eq!(before.1, 0);
    // A reader may take a breakable seal, but POPULATE through its read-only descriptor
    // would allocate the owner's blocks: EBADF, as a write through it would get.
    let pc = p.clone();
    assert_eq!(
        as_nobody(move || {
            let f = match File::open(&pc) {
                Ok(f) => f,
                Err(_) => return 100,
            };
            let r = code(seal(&f, 0, 0, abi::SEAL_BREAKABLE | abi::SEAL_POPULATE));
            if r != libc::EBADF {
                return r;
            }
            code(seal(&f, 0, 0, abi::SEAL_BREAKABLE))
        }),
        0,
        "EBADF with POPULATE, then the breakable seal alone"
    );
    assert_eq!(usage(&m, &p), before, "the reader allocated nothing");
    assert_errno!(
        lseek(&File::open(&p).unwrap(), 0, libc::SEEK_DATA),
        libc::ENXIO
    );
    // More holes than free blocks: ENOSPC, and every block goes back.
    let f = rw(&p);
    assert_errno!(seal(&f, 0, 0, abi::SEAL_POPULATE), libc::ENOSPC);
    assert_errno!(
        seal(&f, 0, 0, abi::SEAL_BREAKABLE | abi::SEAL_POPULATE),
        libc::ENOSPC
    );
    assert_eq!(usage(&m, &p), before, "a failed POPULATE changes nothing");
    assert_eq!(seals_of(&p), vec![]);
    // One that fits: `stat` shows the new blocks at once (the cached attributes were
    // dropped), and the free space went down by as much.
    seal(&f, 0, 8 * M, abi::SEAL_POPULATE).expect("populate 8 MiB");
    let (free, blocks) = usage(&m, &p);
    assert_eq!(blocks, (8 * M / 512) as i64);
    assert_eq!(free, before.0 - 8 * M / statfs(m.mnt()).f_bsize as u64);
    unseal(&f, 0, 8 * M).unwrap();
}

// ---------------------------------------------------------------------------------------
// 3. fork: the seal belongs to the open file description.

#[test]
fn seal_survives_the_parents_close_while_a_forked_child_holds_it() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("f");
    fs::write(&p, vec![1u8; 8192]).unwrap();
    let fd = rw(&p);
    seal(&fd, 0, 0, 0).unwrap();
    let (go_r, go_w) = pipe();
    let go_raw = go_r.as_raw_fd();
    let child = fork_child(&[fd.as_raw_fd(), go_raw], move || {
        let mut b = [0u8];
        // SAFETY: a blocking one-byte read from the inherited pipe.
        unsafe { libc::read(go_raw, b.as_mut_ptr().cast(), 1) };
        0
    });
    let _reap = Reap(child);
    drop(go_r);
    drop(fd);
    // The parent's close was not the last one: no RELEASE, the seal stays.
    std::thread::sleep(Duration::from_millis(200));
    assert_errno!(truncate(&p, 0), libc::ETXTBSY);
    let list = seals_of(&p);
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].kind, list[0].pid), (abi::KIND_TEMPORARY, my_pid()));
    std::thread::sleep(Duration::from_millis(100));
    assert_errno!(truncate(&p, 0), libc::ETXTBSY);

    // The child exits normally: its exit is the last close.
    let t = Instant::now();
    write_byte(&go_w, b'x');
    assert_eq!(exit_code(child, Duration::from_secs(5)), 0);
    let reaped = t.elapsed();
    let after = truncate_when_free(&p, 0, Duration::from_secs(1));
    let total = t.elapsed();
    assert!(total < Duration::from_secs(1));
    assert_eq!(size_of(&p), 0);
    assert_eq!(seals_of(&p), vec![]);
    eprintln!(
        "figure: fork: seal gone {total:?} after the child was told to exit \
         ({after:?} after it was reaped at {reaped:?})"
    );
}

// ---------------------------------------------------------------------------------------
// 4. SIGKILL of a holder.

#[test]
fn sigkill_of_a_holder_releases_the_seal_within_a_second() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("f");
    fs::write(&p, vec![1u8; 8192]).unwrap();

    // `sealfs seal --hold FILE`, an exec'd process.
    let mut cmd = Command::new(sealfs_bin());
    cmd.args([OsStr::new("seal"), OsStr::new("--hold"), p.as_os_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut holder = KillOnDrop(cmd.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(holder.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains(&format!("held by pid {}", holder.0.id())),
        "sealfs seal --hold said: {line:?}"
    );
    assert_errno!(truncate(&p, 0), libc::ETXTBSY);
    let t = Instant::now();
    kill(holder.0.id() as i32, libc::SIGKILL);
    let cli = truncate_when_free(&p, 0, Duration::from_secs(1));
    let _ = holder.0.wait();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(size_of(&p), 0);

    // A forked child that seals itself and sleeps, three times.
    let mut figures = Vec::new();
    for round in 0..3 {
        fs::write(&p, vec![2u8; 4096]).unwrap();
        let path = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let (r, w) = pipe();
        let w_raw = w.as_raw_fd();
        let arg = seal_arg(0, 0, 0);
        let child = fork_child(&[w_raw], move || {
            // SAFETY: system calls only.
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDWR);
                if fd < 0 || libc::ioctl(fd, abi::IOC_SEAL as _, arg.as_ptr()) < 0 {
                    return 10;
                }
                libc::write(w_raw, b"S".as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
        });
        let _reap = Reap(child);
        drop(w);
        assert_eq!(
            read_byte(&r, Duration::from_secs(5)),
            Some(b'S'),
            "round {round}: child sealed"
        );
        assert_errno!(truncate(&p, 0), libc::ETXTBSY);
        assert_eq!(seals_of(&p)[0].pid, child as u32);
        let t = Instant::now();
        kill(child, libc::SIGKILL);
        let d = truncate_when_free(&p, 0, Duration::from_secs(1));
        assert!(t.elapsed() < Duration::from_secs(1));
        let st = wait_child(child, Duration::from_secs(5)).expect("killed child reaped");
        assert!(libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL);
        assert_eq!(size_of(&p), 0);
        figures.push(d);
    }
    eprintln!(
        "figure: SIGKILL of the holder to a successful truncate: `sealfs seal --hold` {cli:?}; \
         forked holders {figures:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. Breakable seals: recall answered, recall ignored.

/// A forked holder: seals BREAKABLE on a read-only descriptor, says `S`, waits for POLLPRI,
/// says `P`, unseals, says `U`.
fn cooperative_holder(p: &Path) -> (libc::pid_t, OwnedFd) {
    let path = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let (r, w) = pipe();
    let w_raw = w.as_raw_fd();
    let arg = seal_arg(0, 0, abi::SEAL_BREAKABLE);
    let child = fork_child(&[w_raw], move || {
        // SAFETY: system calls only.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return 10;
            }
            if libc::ioctl(fd, abi::IOC_SEAL as _, arg.as_ptr()) < 0 {
                return 11;
            }
            libc::write(w_raw, b"S".as_ptr().cast(), 1);
            let mut pf = libc::pollfd {
                fd,
                events: libc::POLLPRI,
                revents: 0,
            };
            let n = libc::poll(&mut pf, 1, 10_000);
            if n <= 0 {
                return 12;
            }
            if pf.revents & libc::POLLPRI == 0 {
                return 13;
            }
            libc::write(w_raw, b"P".as_ptr().cast(), 1);
            if libc::ioctl(fd, abi::IOC_UNSEAL as _, arg.as_ptr()) < 0 {
                return 14;
            }
            libc::write(w_raw, b"U".as_ptr().cast(), 1);
            0
        }
    });
    drop(w);
    (child, r)
}

fn recall_answered(opts: &str) {
    let Some(m) = Mount::new(opts) else { return };
    let p = m.path("f");
    fs::write(&p, vec![1u8; 65536]).unwrap();
    let (child, r) = cooperative_holder(&p);
    let _reap = Reap(child);
    assert_eq!(
        read_byte(&r, Duration::from_secs(5)),
        Some(b'S'),
        "holder sealed"
    );
    let list = seals_of(&p);
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].kind, list[0].state, list[0].pid),
        (abi::KIND_BREAKABLE, abi::STATE_ACTIVE, child as u32)
    );
    let t = Instant::now();
    truncate(&p, 4096).expect("truncate against a cooperative breakable holder");
    let took = t.elapsed();
    assert_eq!(
        read_byte(&r, Duration::from_secs(1)),
        Some(b'P'),
        "holder saw POLLPRI"
    );
    assert_eq!(
        read_byte(&r, Duration::from_secs(1)),
        Some(b'U'),
        "holder unsealed"
    );
    assert_eq!(exit_code(child, Duration::from_secs(5)), 0);
    assert!(took < Duration::from_secs(2), "recall took {took:?}");
    assert_eq!(size_of(&p), 4096);
    let s = stat_of(&m);
    assert_eq!((s.recalls, s.revocations, s.seals), (1, 0, 0));
    eprintln!("figure: recall answered ({opts}): truncate waited {took:?}");
}

#[test]
fn breakable_recall_answered() {
    recall_answered("break_timeout=5000");
}

#[test]
fn breakable_recall_answered_with_one_worker_thread() {
    recall_answered("break_timeout=5000,threads=1");
}

#[test]
fn breakable_recall_answered_by_the_cli_holder() {
    let Some(m) = Mount::new("break_timeout=5000") else {
        return;
    };
    let p = m.path("f");
    fs::write(&p, vec![1u8; 4096]).unwrap();
    let mut cmd = Command::new(sealfs_bin());
    cmd.args([
        OsStr::new("seal"),
        OsStr::new("--breakable"),
        OsStr::new("--hold"),
        p.as_os_str(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut holder = KillOnDrop(cmd.spawn().unwrap());
    let mut err = BufReader::new(holder.0.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("breakable seal"), "{line:?}");
    let t = Instant::now();
    truncate(&p, 0).unwrap();
    let took = t.elapsed();
    line.clear();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("recalled; breakable seal"), "{line:?}");
    let st = holder.0.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(size_of(&p), 0);
    eprintln!("figure: recall answered by `sealfs seal --breakable --hold`: {took:?}");
}

#[test]
fn breakable_recall_ignored_is_revoked_and_fenced() {
    let Some(m) = Mount::new("break_timeout=300") else {
        return;
    };
    let p = m.path("f");
    fs::write(&p, vec![1u8; 65536]).unwrap();

    // A breakable range seal is recalled only by changes overlapping its range.
    let r0 = File::open(&p).unwrap();
    seal(&r0, 0, 4096, abi::SEAL_BREAKABLE).unwrap();
    let t = Instant::now();
    truncate(&p, 8192).expect("[8192, 65536) does not overlap [0, 4096)");
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "no wait: {:?}",
        t.elapsed()
    );
    assert_eq!(stat_of(&m).recalls, 0);
    assert_eq!(seals_of(&p)[0].state, abi::STATE_ACTIVE);
    // A temporary seal in the way wins outright: ETXTBSY at once, nothing recalled.
    let tmp = rw(&p);
    seal(&tmp, 0, 0, 0).unwrap();
    let t = Instant::now();
    assert_errno!(truncate(&p, 0), libc::ETXTBSY);
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "no wait: {:?}",
        t.elapsed()
    );
    assert_eq!(stat_of(&m).recalls, 0);
    unseal(&tmp, 0, 0).unwrap();
    unseal(&r0, 0, 4096).unwrap();
    drop((r0, tmp));
    fs::write(&p, vec![1u8; 65536]).unwrap();

    let h = File::open(&p).unwrap();
    seal(&h, 0, 0, abi::SEAL_BREAKABLE).unwrap();
    let pc = p.clone();
    let t = Instant::now();
    let worker = std::thread::spawn(move || {
        let r = truncate(&pc, 100);
        (r.map_err(|e| e.raw_os_error()), Instant::now())
    });
    assert!(
        wait_pollpri(&h, Duration::from_secs(2)),
        "holder sees POLLPRI"
    );
    let list = seals_of(&p);
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].kind, list[0].state, list[0].pid),
        (abi::KIND_BREAKABLE, abi::STATE_RECALLED, my_pid())
    );
    assert!(list[0].remaining_ms <= 300, "{:?}", list[0]);
    assert!(!worker.is_finished(), "the truncate waits for the recall");
    // New seals on the file during the recall: EBUSY.
    let o = rw(&p);
    assert_errno!(seal(&o, 0, 0, 0), libc::EBUSY);
    let (r, done) = worker.join().unwrap();
    let took = done - t;
    assert_eq!(r, Ok(()));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "truncate took {took:?} with break_timeout=300"
    );
    assert_eq!(size_of(&p), 100);
    // The holder is fenced.
    assert_errno!(seal(&h, 0, 0, abi::SEAL_BREAKABLE), libc::ENOLINK);
    assert_errno!(unseal(&h, 0, 0), libc::ENOLINK);
    assert_eq!(seals_of(&p), vec![]);
    let s = stat_of(&m);
    assert_eq!((s.recalls, s.revocations, s.seals), (1, 1, 0));
    // Only that description: another one seals.
    seal(&o, 0, 0, abi::SEAL_BREAKABLE).expect("another descriptor is not fenced");
    unseal(&o, 0, 0).unwrap();
    eprintln!("figure: recall ignored, revoked after {took:?} (break_timeout=300)");
}

#[test]
fn rm_rf_over_ignored_breakable_seals_does_not_wait_per_file() {
    // 10 files, each with a breakable seal its holder ignores: removing them all must not
    // take 10 x break_timeout with the directory locked, nor wait at all.
    let Some(m) = Mount::new("break_timeout=2000") else {
        return;
    };
    let d = m.path("d");
    fs::create_dir(&d).unwrap();
    let holders: Vec<File> = (0..10)
        .map(|i| {
            let p = d.join(format!("f{i}"));
            fs::write(&p, pattern(i, 0, 8192)).unwrap();
            let h = File::open(&p).unwrap();
            seal(&h, 0, 0, abi::SEAL_BREAKABLE).unwrap();
            h
        })
        .collect();
    let t = Instant::now();
    let out = Command::new("rm").arg("-rf").arg(&d).output().unwrap();
    let took = t.elapsed();
    assert!(out.status.success(), "rm -rf: {}", describe(&out));
    assert!(!d.exists());
    assert!(
        took < Duration::from_millis(1000),
        "rm -rf of 10 sealed files took {took:?} (break_timeout=2000)"
    );
    // Every holder was recalled at once, and still reads its file's bytes: the blocks
    // stay the file's while it is open.
    for (i, h) in holders.iter().enumerate() {
        assert!(
            wait_pollpri(h, Duration::from_secs(1)),
            "holder {i} recalled"
        );
        assert_eq!(pread_vec(h, 0, 8192).unwrap(), pattern(i as u64, 0, 8192));
        let (list, _) = get_seals(h);
        assert_eq!(
            (list.len(), list[0].state),
            (1, abi::STATE_RECALLED),
            "holder {i}"
        );
    }
    assert_eq!(stat_of(&m).recalls, 10);
    // One deadline for all: all revoked together, about break_timeout after the rm.
    wait_until("all ten revoked", Duration::from_secs(5), || {
        stat_of(&m).revocations == 10
    });
    let revoked = t.elapsed();
    assert!(
        revoked < Duration::from_millis(3500),
        "revoked after {revoked:?}"
    );
    for h in &holders {
        assert_errno!(seal(h, 0, 0, abi::SEAL_BREAKABLE), libc::ENOLINK);
    }
    let free = statfs(m.mnt()).f_bfree;
    drop(holders);
    // The last closes free the ten files' blocks.
    assert_eq!(
        after_release(free + 20, || statfs(m.mnt()).f_bfree),
        free + 20
    );
    eprintln!("figure: rm -rf of 10 files under ignored breakable seals: {took:?}");
}

#[test]
fn root_revokes_any_seal_with_unseal_force() {
    let Some(m) = Mount::new("break_timeout=60000") else {
        return;
    };
    let p = m.path("f");
    fs::write(&p, vec![5u8; 65536]).unwrap();
    chmod(&p, 0o666).unwrap();
    let os = p.as_os_str();
    // A breakable seal whose holder ignores the recall: a truncate would wait 60 s.
    let h = File::open(&p).unwrap();
    seal(&h, 0, 0, abi::SEAL_BREAKABLE).unwrap();
    let pc = p.clone();
    let t = Instant::now();
    let worker = std::thread::spawn(move || truncate(&pc, 100).map_err(|e| e.raw_os_error()));
    assert!(wait_pollpri(&h, Duration::from_secs(2)), "recalled");
    assert!(!worker.is_finished());
    // Only root may revoke.
    let pc = p.clone();
    assert_eq!(
        as_nobody(move || {
            let f = match File::open(&pc) {
                Ok(f) => f,
                Err(_) => return 100,
            };
            code(ioctl_buf(&f, abi::IOC_REVOKE, &mut seal_arg(0, 0, 0)))
        }),
        libc::EPERM
    );
    let said = sealfs_ok(&[OsStr::new("unseal"), OsStr::new("--force"), os]);
    assert!(said.contains("revoked"), "{said}");
    assert_eq!(worker.join().unwrap(), Ok(()));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(size_of(&p), 100);
    assert_errno!(seal(&h, 0, 0, abi::SEAL_BREAKABLE), libc::ENOLINK);
    assert_errno!(unseal(&h, 0, 0), libc::ENOLINK);
    // A temporary seal too, and only the range asked for.
    let a = rw(&p);
    let b = rw(&p);
    seal(&a, 0, 10, 0).unwrap();
    seal(&b, 50, 10, 0).unwrap();
    assert_errno!(truncate(&p, 0), libc::ETXTBSY);
    let mut arg = seal_arg(0, 20, 0);
    ioctl_buf(&File::open(&p).unwrap(), abi::IOC_REVOKE, &mut arg).expect("revoke [0, 20)");
    assert_errno!(seal(&a, 0, 10, 0), libc::ENOLINK);
    let left = seals_of(&p);
    assert_eq!((left.len(), left[0].offset), (1, 50));
    assert_errno!(truncate(&p, 0), libc::ETXTBSY);
    // Flags are refused.
    assert_errno!(
        ioctl_buf(
            &a,
            abi::IOC_REVOKE,
            &mut seal_arg(0, 0, abi::SEAL_BREAKABLE)
        ),
        libc::EINVAL
    );
    sealfs_ok(&[
        OsStr::new("unseal"),
        OsStr::new("--force"),
        OsStr::new("--range"),
        OsStr::new("0:0"),
        os,
    ]);
    truncate(&p, 0).expect("nothing left in the way");
    assert_errno!(unseal(&b, 50, 10), libc::ENOLINK);
    assert_eq!(stat_of(&m).revocations, 3);
}

// ---------------------------------------------------------------------------------------
// 6. The permanent seal and chattr +i.

fn sealfs_ok(args: &[&OsStr]) -> String {
    let out = sealfs(args);
    assert!(out.status.success(), "sealfs {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_permanent(m: &Mount, p: &Path, size: u64) {
    assert_errno!(truncate(p, 0), libc::EPERM);
    assert_errno!(truncate(p, size as i64 + 4096), libc::EPERM);
    let f = rw(p);
    assert_errno!(f.set_len(1), libc::EPERM);
    assert_errno!(
        fallocate(
            &f,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            0,
            4096
        ),
        libc::EPERM
    );
    assert_errno!(pwrite1(&f, b"x", size), libc::EPERM);
    assert_errno!(fs::remove_file(p), libc::EPERM);
    let q = m.path("replacement");
    fs::write(&q, b"r").unwrap();
    assert_errno!(fs::rename(&q, p), libc::EPERM);
    fs::remove_file(&q).unwrap();
    assert_eq!(size_of(p), size);
}

#[test]
fn permanent_seal_by_cli_persists_and_differs_from_chattr_i() {
    let Some(mut m) = Mount::new("") else { return };
    let p = m.path("perm");
    let size = 1u64 << 20;
    {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(size).unwrap();
        pwrite_all(&f, b"head", 0).unwrap();
    }
    let os = p.as_os_str();
    let out = sealfs(&[OsStr::new("seal"), OsStr::new("--immutable"), os]);
    assert!(
        !out.status.success(),
        "holes refuse the permanent seal: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holes"),
        "{}",
        describe(&out)
    );
    assert_errno!(set_immutable(&File::open(&p).unwrap(), false), libc::EINVAL);
    assert_eq!(seals_of(&p), vec![]);
    let said = sealfs_ok(&[
        OsStr::new("seal"),
        OsStr::new("--immutable"),
        OsStr::new("--populate"),
        os,
    ]);
    assert!(said.contains("sealed permanently"), "{said}");
    assert_eq!(
        seals_of(&p),
        vec![abi::SealInfoArg {
            offset: 0,
            length: 0,
            kind: abi::KIND_IMMUTABLE,
            state: abi::STATE_ACTIVE,
            pid: 0,
            remaining_ms: 0,
        }]
    );
    {
        let f = File::open(&p).unwrap();
        assert_eq!(
            lseek(&f, 0, libc::SEEK_HOLE).unwrap(),
            size as i64,
            "populated"
        );
    }
    assert_permanent(&m, &p, size);
    // In place: allowed; chmod and xattrs too.
    {
        let f = rw(&p);
        pwrite_all(&f, b"in place", 500_000).expect("in-place write under the permanent seal");
        assert_eq!(pread_vec(&f, 500_000, 8).unwrap(), b"in place");
        assert_eq!(pread_vec(&f, 0, 4).unwrap(), b"head");
    }
    chmod(&p, 0o640).unwrap();
    setxattr(&p, b"user.a", b"1", 0).unwrap();
    assert_eq!(
        get_flags(&File::open(&p).unwrap()).unwrap(),
        0,
        "not an FS_IOC flag"
    );

    // Survives remount.
    m.remount_checked();
    assert_permanent(&m, &p, size);
    let listed = sealfs_ok(&[OsStr::new("seals"), os]);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().next() == Some("immutable")),
        "{listed}"
    );
    // And a crash of the daemon (SIGKILL, then mount again: log replay).
    let daemon = m.daemon_pid().expect("daemon pid");
    kill(daemon as i32, libc::SIGKILL);
    assert!(pid_gone_within(daemon, Duration::from_secs(10)));
    m.recover_mount();
    assert_permanent(&m, &p, size);
    assert_eq!(
        pread_vec(&File::open(&p).unwrap(), 500_000, 8).unwrap(),
        b"in place"
    );

    let said = sealfs_ok(&[OsStr::new("unseal"), OsStr::new("--immutable"), os]);
    assert!(said.contains("cleared"), "{said}");
    assert_eq!(seals_of(&p), vec![]);
    truncate(&p, 4096).expect("truncate after unseal --immutable");
    assert_eq!(size_of(&p), 4096);

    // chattr +i forbids in-place writes; the permanent seal does not. Independent flags.
    let a = m.path("a");
    let b = m.path("b");
    fs::write(&a, vec![1u8; 8192]).unwrap();
    fs::write(&b, vec![2u8; 8192]).unwrap();
    let b_before = rw(&b);
    set_immutable(&File::open(&a).unwrap(), false).expect("a has no holes");
    chattr(&b, FS_IMMUTABLE_FL, true).expect("chattr +i b");
    assert_eq!(
        get_flags(&File::open(&b).unwrap()).unwrap(),
        FS_IMMUTABLE_FL
    );
    assert_eq!(get_flags(&File::open(&a).unwrap()).unwrap(), 0);
    assert_eq!(seals_of(&b), vec![], "chattr +i is not a seal");
    assert_eq!(seals_of(&a).len(), 1);
    pwrite_all(&rw(&a), b"ok", 10).expect("in place under the permanent seal");
    assert_errno!(pwrite1(&b_before, b"no", 10), libc::EPERM);
    assert_errno!(open(&b, libc::O_RDWR, 0), libc::EPERM);
    assert_errno!(truncate(&a, 0), libc::EPERM);
    assert_errno!(truncate(&b, 0), libc::EPERM);
    // Both on b; then clear chattr +i: in place works again, the map stays sealed.
    set_immutable(&File::open(&b).unwrap(), false).expect("permanent seal on a chattr +i file");
    chattr(&b, FS_IMMUTABLE_FL, false).unwrap();
    pwrite_all(&b_before, b"yes", 10).expect("in place after chattr -i");
    assert_errno!(truncate(&b, 0), libc::EPERM);
    clear_immutable(&File::open(&b).unwrap()).unwrap();
    clear_immutable(&File::open(&a).unwrap()).unwrap();
    truncate(&a, 0).unwrap();
    truncate(&b, 0).unwrap();
    assert_eq!((size_of(&a), size_of(&b)), (0, 0));
}

// ---------------------------------------------------------------------------------------
// 7. The command line.

#[test]
fn seal_command_holds_for_a_command_and_lists_holders() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("f");
    fs::write(&p, vec![1u8; 4096]).unwrap();
    let ps = p.to_str().unwrap();
    let run = |args: &[&str]| {
        Command::new(sealfs_bin())
            .args(args)
            .output()
            .expect("spawn sealfs")
    };
    let out = run(&[
        "seal",
        ps,
        "--",
        "sh",
        "-c",
        &format!("truncate -s 0 '{ps}'"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Text file busy"),
        "{}",
        describe(&out)
    );
    assert_eq!(size_of(&p), 4096);
    // The seal is gone when the command returns: no retry needed.
    truncate(&p, 100).expect("truncate right after `sealfs seal -- ...`");
    let out = run(&["seal", ps, "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    truncate(&p, 200).expect("truncate right after `sealfs seal -- true`");
    let out = run(&["seal", ps, "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    truncate(&p, 300).unwrap();
    assert_eq!(size_of(&p), 300);
    let out = run(&[
        "seal",
        "--range",
        "0:100",
        ps,
        "--",
        "sh",
        "-c",
        &format!("truncate -s 400 '{ps}' && truncate -s 50 '{ps}'"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "range seal: growing works, cutting into it does not: {}",
        describe(&out)
    );
    assert_eq!(size_of(&p), 400);

    // `--hold`: `sealfs seals` names the holder.
    let mut cmd = Command::new(sealfs_bin());
    cmd.args(["seal", "--hold", ps])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut holder = KillOnDrop(cmd.spawn().unwrap());
    let hpid = holder.0.id();
    let mut line = String::new();
    BufReader::new(holder.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains(&format!("held by pid {hpid}")), "{line:?}");
    let out = run(&["seals", ps]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![vec![
            "temporary",
            &hpid.to_string(),
            "0",
            "to",
            "EOF",
            "active"
        ]],
        "{text}"
    );
    assert!(text.lines().next().unwrap().starts_with("KIND"), "{text}");
    kill(hpid as i32, libc::SIGTERM);
    let _ = holder.0.wait();
    truncate_when_free(&p, 0, Duration::from_secs(1));
    let out = run(&["seals", ps]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{ps}: no seals")
    );
}

// ---------------------------------------------------------------------------------------
// 8. A C client against include/sealfs.h.

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn c_client_compiles_against_the_header_and_seals() {
    let Some(m) = Mount::new("") else { return };
    let root = repo_root();
    let src = root.join("tests/c/seal_client.c");
    let exe = m.dir().join("seal_client");
    let cc = match Command::new("cc")
        .arg("-std=c11")
        .args(["-Wall", "-Wextra", "-Werror", "-O1"])
        .arg(format!("-I{}", root.join("include").display()))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            skip("no C compiler (cc) installed");
            return;
        }
        Err(e) => panic!("cc: {e}"),
    };
    assert!(cc.status.success(), "cc: {}", describe(&cc));

    // The numbers and sizes the C preprocessor computes are the ones sealfs decodes.
    let out = Command::new(&exe).arg("--abi").output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let want = [
        ("SEALFS_IOC_SEAL", abi::IOC_SEAL as u64),
        ("SEALFS_IOC_UNSEAL", abi::IOC_UNSEAL as u64),
        ("SEALFS_IOC_GET_SEALS", abi::IOC_GET_SEALS as u64),
        ("SEALFS_IOC_SET_IMMUTABLE", abi::IOC_SET_IMMUTABLE as u64),
        (
            "SEALFS_IOC_CLEAR_IMMUTABLE",
            abi::IOC_CLEAR_IMMUTABLE as u64,
        ),
        ("SEALFS_IOC_EXTENTS", abi::IOC_EXTENTS as u64),
        ("SEALFS_IOC_DEFRAG", abi::IOC_DEFRAG as u64),
        ("SEALFS_IOC_SETUPMAPPING", abi::IOC_SETUPMAPPING as u64),
        ("SEALFS_IOC_REMOVEMAPPING", abi::IOC_REMOVEMAPPING as u64),
        ("SEALFS_IOC_FLUSHMAPPING", abi::IOC_FLUSHMAPPING as u64),
        ("SEALFS_IOC_GET_RECALLS", abi::IOC_GET_RECALLS as u64),
        ("SEALFS_IOC_STAT", abi::IOC_STAT as u64),
        ("SEALFS_IOC_SET_READONLY", abi::IOC_SET_READONLY as u64),
        ("sizeof(struct sealfs_seal)", abi::SEAL_ARG_SIZE as u64),
        (
            "sizeof(struct sealfs_seal_list)",
            abi::SEAL_LIST_SIZE as u64,
        ),
        (
            "sizeof(struct sealfs_immutable)",
            abi::IMMUTABLE_ARG_SIZE as u64,
        ),
        (
            "sizeof(struct sealfs_setupmapping)",
            abi::SETUPMAPPING_SIZE as u64,
        ),
        ("sizeof(struct sealfs_ranges)", abi::RANGES_SIZE as u64),
        (
            "sizeof(struct sealfs_extent_list)",
            abi::EXTENT_LIST_SIZE as u64,
        ),
        ("sizeof(struct sealfs_defrag)", abi::DEFRAG_SIZE as u64),
        ("sizeof(struct sealfs_stat)", abi::STAT_SIZE as u64),
    ];
    let got: Vec<(String, u64)> = text
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("NAME VALUE");
            (
                k.to_string(),
                u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(got, want);

    let p = m.path("c-file");
    fs::write(&p, vec![7u8; 12345]).unwrap();
    let out = Command::new(&exe).arg(&p).output().unwrap();
    eprintln!(
        "seal_client: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(size_of(&p), 0, "the client truncated after unsealing");
    assert_eq!(seals_of(&p), vec![]);
}

// ---------------------------------------------------------------------------------------
// 9. The no-op ioctl (the bench's yardstick) and one-round-trip seal cycles.

/// NOOP answers 0 on a file (any open mode) and on a directory, for root and for another
/// user; the same number with an argument size is EINVAL, a neighbouring number ENOTTY.
#[test]
fn noop_ioctl_answers_zero_to_anyone_on_files_and_directories() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("f");
    fs::write(&p, b"abc").unwrap();
    fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let noop = |f: &File| -> io::Result<()> {
        // SAFETY: an _IO ioctl: no argument is read or written.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), abi::IOC_NOOP as _) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    noop(&File::open(&p).unwrap()).expect("NOOP on O_RDONLY");
    noop(&rw(&p)).expect("NOOP on O_RDWR");
    noop(&File::open(m.mnt()).unwrap()).expect("NOOP on the mount's root directory");
    let other = ChildCreds {
        user: Some((65534, 65534)),
        ..Default::default()
    };
    assert_eq!(
        in_child(other, || code(noop(&File::open(&p).unwrap()))),
        0,
        "NOOP by another user"
    );
    let f = File::open(&p).unwrap();
    assert_errno!(
        ioctl_buf(&f, abi::ioc(2, abi::IOC_TYPE, 0x12, 8), &mut [0u8; 8]),
        libc::EINVAL
    );
    assert_errno!(
        ioctl_buf(&f, abi::ioc(0, abi::IOC_TYPE, 0x13, 0), &mut []),
        libc::ENOTTY
    );
    assert_eq!(fs::read(&p).unwrap(), b"abc");
    assert_eq!(seals_of(&p), vec![]);
}

fn kinds_of(p: &Path) -> Vec<(u64, u64, u32, u32, u32)> {
    seals_of(p)
        .iter()
        .map(|s| (s.offset, s.length, s.kind, s.state, s.pid))
        .collect()
}

/// SEAL with `SEALFS_SEAL_REPLACE` on a real mount: one call moves the descriptor's seals to
/// a new range (the old ranges free at once, the new one sealed), another descriptor's seal
/// stays, `max_seals` does not stop the move, a thousand cycles leave exactly one seal, and
/// UNSEAL accepts and ignores the flag.
#[test]
fn replace_moves_a_descriptors_seals_in_one_call() {
    let Some(m) = Mount::new("max_seals=2") else {
        return;
    };
    let p = m.path("f");
    fs::write(&p, vec![5u8; 16384]).unwrap();
    let f = rw(&p);
    let other = rw(&p);
    seal(&other, 12288, 4096, 0).unwrap();
    seal(&f, 0, 4096, 0).unwrap();
    seal(&f, 4096, 4096, abi::SEAL_BREAKABLE).unwrap();
    assert_errno!(seal(&f, 8192, 4096, 0), libc::ENOLCK);
    seal(&f, 8192, 4096, abi::SEAL_REPLACE).expect("a replacing seal at max_seals");
    let (t, me) = (abi::KIND_TEMPORARY, my_pid());
    assert_eq!(
        kinds_of(&p),
        vec![(12288, 4096, t, 0, me), (8192, 4096, t, 0, me)]
    );
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    fallocate(&f, punch, 0, 8192).expect("the replaced ranges are free");
    assert_errno!(fallocate(&f, punch, 8192, 4096), libc::ETXTBSY);
    // A breakable replacement of a temporary seal: the kind is the new call's.
    seal(&f, 8192, 4096, abi::SEAL_REPLACE | abi::SEAL_BREAKABLE).unwrap();
    assert_eq!(
        kinds_of(&p),
        vec![
            (12288, 4096, t, 0, me),
            (8192, 4096, abi::KIND_BREAKABLE, 0, me)
        ]
    );
    // The one-round-trip cycle, a thousand times over two ranges.
    for i in 0..1000u64 {
        seal(&f, (i % 2) * 4096, 4096, abi::SEAL_REPLACE).unwrap();
    }
    assert_eq!(
        kinds_of(&p),
        vec![(12288, 4096, t, 0, me), (4096, 4096, t, 0, me)]
    );
    assert_eq!(stat_of(&m).seals, 2);
    // UNSEAL ignores the flag; the seal it names goes.
    ioctl_buf(
        &f,
        abi::IOC_UNSEAL,
        &mut seal_arg(4096, 4096, abi::SEAL_REPLACE),
    )
    .expect("UNSEAL with REPLACE set");
    assert_eq!(kinds_of(&p), vec![(12288, 4096, t, 0, me)]);
    // A refused replacement releases nothing: a temporary seal through O_RDONLY.
    let ro = File::open(&p).unwrap();
    seal(&ro, 0, 1, abi::SEAL_BREAKABLE).unwrap();
    assert_errno!(seal(&ro, 0, 0, abi::SEAL_REPLACE), libc::EBADF);
    assert_eq!(kinds_of(&p).len(), 2);
}

/// While a seal of the file is being recalled, a replacement is refused with EBUSY even when
/// the recalled seal is the caller's own, and the seal stays held (recalled); the holder
/// gives it back with UNSEAL and the waiting truncate proceeds.
#[test]
fn replace_during_a_recall_is_ebusy_and_keeps_the_seal() {
    let Some(m) = Mount::new("break_timeout=10000") else {
        return;
    };
    let p = m.path("f");
    fs::write(&p, vec![5u8; 16384]).unwrap();
    let b = File::open(&p).unwrap();
    seal(&b, 0, 4096, abi::SEAL_BREAKABLE).unwrap();
    let p2 = p.clone();
    let truncating = std::thread::spawn(move || {
        let t = Instant::now();
        truncate(&p2, 0).expect("truncate after the recall");
        t.elapsed()
    });
    assert!(wait_pollpri(&b, Duration::from_secs(5)), "recalled");
    assert_errno!(
        seal(&b, 8192, 4096, abi::SEAL_BREAKABLE | abi::SEAL_REPLACE),
        libc::EBUSY
    );
    let list = seals_of(&p);
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].offset, list[0].length, list[0].state),
        (0, 4096, abi::STATE_RECALLED)
    );
    unseal(&b, 0, 4096).unwrap();
    let waited = truncating.join().unwrap();
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(size_of(&p), 0);
    assert_eq!(seals_of(&p), vec![]);
}
