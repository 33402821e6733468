//! A breakable-seal holder that waits for its recall in `poll()`, against a truncate that
//! recalls it, round after round on a real mount. Every recall must reach the holder as
//! POLLPRI: a notification lost between the daemon's check for a pending recall and its
//! registration of the poll would leave the holder asleep until `break_timeout` revokes
//! the seal (its UNSEAL then fails with ENOLINK).

use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sealfs::abi;
use sealfs_tests::*;

const ROUNDS: u32 = 3000;

fn seal_ioctl(fd: i32, req: u32, flags: u32) -> i32 {
    let mut arg = abi::SealArg {
        offset: 0,
        length: 0,
        flags,
    }
    .encode();
    // SAFETY: the argument buffer has the size the command encodes.
    if unsafe { libc::ioctl(fd, req as _, arg.as_mut_ptr()) } < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

#[test]
fn every_recall_reaches_a_holder_waiting_in_poll() {
    // One worker thread makes the daemon serve POLL, the truncate and the recall thread's
    // notification in every possible order.
    let Some(m) = Mount::new("break_timeout=500") else {
        return;
    };
    let p = m.path("f");
    fs::write(&p, vec![7u8; 8192]).unwrap();
    let (sealed_tx, sealed_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let holder_path = p.clone();
    let holder = std::thread::spawn(move || {
        let f = OpenOptions::new().read(true).open(&holder_path).unwrap();
        let fd = f.as_raw_fd();
        let (mut missed, mut revoked) = (0u32, 0u32);
        for _ in 0..ROUNDS {
            assert_eq!(
                seal_ioctl(fd, abi::IOC_SEAL, abi::SEAL_BREAKABLE),
                0,
                "seal"
            );
            sealed_tx.send(()).unwrap();
            let mut pf = libc::pollfd {
                fd,
                events: libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pf, 1, 10_000) };
            if n <= 0 || pf.revents & libc::POLLPRI == 0 {
                missed += 1;
            }
            match seal_ioctl(fd, abi::IOC_UNSEAL, 0) {
                0 => {}
                libc::ENOLINK => revoked += 1,
                e => panic!("unseal: {}", errno_name(e)),
            }
            if go_rx.recv().is_err() {
                break;
            }
        }
        (missed, revoked)
    });
    let start = Instant::now();
    let mut slow = 0;
    for round in 0..ROUNDS {
        sealed_rx.recv().unwrap();
        let t = Instant::now();
        truncate(&p, if round % 2 == 0 { 4096 } else { 8192 }).unwrap();
        if t.elapsed() >= Duration::from_millis(400) {
            slow += 1;
        }
        go_tx.send(()).unwrap();
    }
    let (missed, revoked) = holder.join().unwrap();
    let s = m.stat_output();
    eprintln!(
        "figure: {ROUNDS} recall rounds in {:?}: {missed} POLLPRI missed, {revoked} revoked, \
         {slow} truncates waited out the timeout",
        start.elapsed()
    );
    assert_eq!(
        (missed, revoked, slow),
        (0, 0, 0),
        "every recall reached the holder in poll(); sealfs stat: {}",
        describe(&s)
    );
}

#[test]
fn a_holder_revoked_by_root_is_woken_in_poll() {
    let Some(m) = Mount::new("") else {
        return;
    };
    let p = m.path("f");
    fs::write(&p, vec![1u8; 4096]).unwrap();
    let holder_path = p.clone();
    let (sealed_tx, sealed_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&holder_path)
            .unwrap();
        let fd = f.as_raw_fd();
        assert_eq!(seal_ioctl(fd, abi::IOC_SEAL, 0), 0, "temporary seal");
        sealed_tx.send(()).unwrap();
        let mut pf = libc::pollfd {
            fd,
            events: libc::POLLPRI,
            revents: 0,
        };
        let t = Instant::now();
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pf, 1, 10_000) };
        let woke = (n, pf.revents & libc::POLLPRI != 0, t.elapsed());
        (woke, seal_ioctl(fd, abi::IOC_UNSEAL, 0))
    });
    sealed_rx.recv().unwrap();
    assert_eq!(errno_of(|| truncate(&p, 0)), libc::ETXTBSY);
    std::thread::sleep(Duration::from_millis(100));
    let f = fs::File::open(&p).unwrap();
    assert_eq!(
        seal_ioctl(f.as_raw_fd(), abi::IOC_REVOKE, 0),
        0,
        "root revokes"
    );
    let ((n, pri, waited), unseal) = holder.join().unwrap();
    assert_eq!((n, pri), (1, true), "POLLPRI after {waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(unseal, libc::ENOLINK);
    truncate(&p, 0).unwrap();
}
