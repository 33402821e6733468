//! Many threads through the core API at once, while checkpoints run: creates, writes,
//! truncates, renames, links, xattrs, seals, window mappings and unlinks race each other
//! and two checkpoint threads. A watchdog fails the test when no operation completes for
//! `STALL` (a deadlock), instead of hanging; the lock-rank check (`sealfs::sync`) fails it
//! at the first out-of-order acquisition. At the end the image must be clean and remount
//! to exactly the tree the live filesystem showed.
//!
//! Runs for `SEALFS_CONCURRENCY_SECS` seconds (default 3); `scripts/stress.sh` runs it for
//! minutes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{mkfs_layout, snapshot, Failed, Rng};
use sealfs::device::sim::SimDevice;
use sealfs::filesystem::seals::{Populate, SealMode, SealOptions};
use sealfs::filesystem::windows::{MAP_READ, MAP_WRITE};
use sealfs::filesystem::MountOptions;
use sealfs::format::layout::LayoutOptions;
use sealfs::{Ctx, Error, Filesystem, Stop};

const WORKERS: u64 = 6;
const CHECKPOINTERS: u64 = 2;
const STALL: Duration = Duration::from_secs(20);

fn ctx() -> Ctx {
    Ctx {
        pid: std::process::id(),
        ..Ctx::root()
    }
}

/// Errors a racing operation may meet because another thread got there first (or the
/// device filled up); anything else is a failure.
fn expected(e: &Error) -> bool {
    matches!(
        e.errno(),
        libc::ENOENT | libc::EEXIST | libc::ENOTEMPTY | libc::ENOSPC | libc::ETXTBSY
    ) || matches!(e, Error::Invalid(_))
}

/// `r`'s value, or `None` for an error a race may cause; anything else (a wait for a
/// recall included: no breakable seal is taken here) fails the test.
fn ok_or_expected<T>(what: &str, r: Result<T, impl Into<Stop>>) -> Option<T> {
    match r.map_err(Into::into) {
        Ok(v) => Some(v),
        Err(Stop::Failed(e)) if expected(&e) => None,
        Err(Stop::Failed(e)) => panic!("{what}: unexpected {e} (errno {})", e.errno()),
        Err(Stop::Wait(w)) => panic!("{what}: unexpected wait {w:?}"),
    }
}

/// Successful operations of each kind (the `match` arms below).
type Kinds = [u64; 10];

fn worker(fs: &Filesystem, id: u64, stop: &AtomicBool, done: &AtomicU64) -> Kinds {
    let mut kinds = Kinds::default();
    let mut rng = Rng(0x5ea1_f500 + id);
    let me = ctx();
    let dir = fs
        .mkdir(1, format!("w{id}").as_bytes(), 0o755, me)
        .unwrap()
        .ino;
    let shared = fs.lookup(1, b"shared").unwrap().ino;
    let mut slot = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("f{}", rng.below(16));
        let name = name.as_bytes();
        let kind = rng.below(10) as usize;
        let file = match kind {
            0 | 1 | 2 | 9 => None,
            _ => match ok_or_expected("lookup", fs.lookup(dir, name)) {
                Some(st) => Some(st.ino),
                None => {
                    // Nothing there: make it, so the next operation on it has a target.
                    if let Some((_, fh)) =
                        ok_or_expected("create", fs.create(dir, name, 0o644, libc::O_RDWR, me))
                    {
                        fs.release(fh).unwrap();
                    }
                    continue;
                }
            },
        };
        let ok = match (kind, file) {
            (0, _) => {
                match ok_or_expected("create", fs.create(dir, name, 0o644, libc::O_RDWR, me)) {
                    Some((st, fh)) => {
                        let n = 1 + rng.below(64 << 10) as usize;
                        let data = rng.bytes(n);
                        let off = rng.below(1 << 20);
                        ok_or_expected("write", fs.write(st.ino, off, &data));
                        fs.release(fh).unwrap();
                        true
                    }
                    None => false,
                }
            }
            (1, _) => ok_or_expected("unlink", fs.unlink(dir, name)).is_some(),
            (2, _) => {
                let other = format!("s{}", rng.below(8));
                let r = if rng.chance(50) {
                    fs.rename(dir, name, shared, other.as_bytes(), 0, Ctx::root())
                } else {
                    fs.rename(shared, other.as_bytes(), dir, name, 0, Ctx::root())
                };
                ok_or_expected("rename", r).is_some()
            }
            (3, Some(ino)) => {
                let n = 1 + rng.below(200) as usize;
                let v = rng.bytes(n);
                let set = ok_or_expected("setxattr", fs.setxattr(ino, b"user.k", &v, 0));
                if set.is_some() && rng.chance(50) {
                    ok_or_expected("removexattr", fs.removexattr(ino, b"user.k"));
                }
                set.is_some()
            }
            (4, Some(ino)) => {
                ok_or_expected("truncate", fs.truncate(ino, rng.below(2 << 20), me)).is_some()
            }
            (5, Some(ino)) => {
                let link = format!("l{}", rng.below(4));
                ok_or_expected("unlink", fs.unlink(shared, link.as_bytes()));
                ok_or_expected("link", fs.link(ino, shared, link.as_bytes())).is_some()
            }
            (6, Some(ino)) => {
                // A seal held across other threads' truncates, checkpoints and unlinks.
                let fh = fs.open(ino, libc::O_RDWR, me).unwrap();
                let sealed = ok_or_expected(
                    "seal",
                    fs.seal(fh, 0, 0, SealMode::Temporary, Populate::No, me),
                );
                if sealed.is_some() {
                    ok_or_expected("write", fs.write(ino, 0, b"sealed"));
                    fs.unseal(fh, 0, 0).unwrap();
                }
                fs.release(fh).unwrap();
                sealed.is_some()
            }
            (7, Some(ino)) => {
                // A window mapping: holes populated, the range pinned, then removed.
                let fh = fs.open(ino, libc::O_RDWR, me).unwrap();
                ok_or_expected("truncate", fs.truncate(ino, 64 << 10, me));
                slot += 1 << 21;
                let mapped = ok_or_expected(
                    "setup_mapping",
                    fs.setup_mapping(fh, 0, 4096, MAP_READ | MAP_WRITE, slot, me),
                );
                if mapped.is_some() {
                    fs.remove_mapping(fh, slot).unwrap();
                }
                fs.release(fh).unwrap();
                mapped.is_some()
            }
            (8, Some(ino)) => {
                let read = ok_or_expected("read", fs.read(ino, 0, 8192));
                ok_or_expected("fsync", fs.fsync(ino, false));
                read.is_some()
            }
            _ => {
                let sub = format!("d{}", rng.below(4));
                ok_or_expected("mkdir", fs.mkdir(dir, sub.as_bytes(), 0o755, me)).is_some()
                    || ok_or_expected("rmdir", fs.rmdir(dir, sub.as_bytes())).is_some()
            }
        };
        if ok {
            kinds[kind] += 1;
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    kinds
}

#[test]
fn operations_race_checkpoints_without_deadlock_and_remount_identically() {
    sealfs::sync::panic_on_violation(true);
    let secs: u64 = std::env::var("SEALFS_CONCURRENCY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dev = Arc::new(SimDevice::new(256 << 20, true));
    // A small log: besides the explicit checkpoints, a full log checkpoints from inside
    // operations (transact), the path where the deadlock lived.
    let layout = LayoutOptions {
        log_len: 256 << 10,
        ..Default::default()
    };
    mkfs_layout(&*dev, layout);
    let fs = Arc::new(Filesystem::mount(Box::new(dev.clone()), MountOptions::default()).unwrap());
    fs.configure_seals(SealOptions {
        max_seals: 1 << 16,
        max_seals_per_user: 1 << 16,
        // Long enough that a starved holder is not revoked on a loaded machine.
        break_timeout: Duration::from_secs(10),
    });
    let shared = fs.mkdir(1, b"shared", 0o755, ctx()).unwrap().ino;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let checkpoints = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for id in 0..WORKERS {
        let (fs, stop, done) = (fs.clone(), stop.clone(), done.clone());
        threads.push(std::thread::spawn(move || worker(&fs, id, &stop, &done)));
    }
    for _ in 0..CHECKPOINTERS {
        let (fs, stop, n) = (fs.clone(), stop.clone(), checkpoints.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                fs.checkpoint().unwrap();
                n.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
            Kinds::default()
        }));
    }
    // A breakable holder and a truncater share one file: every truncate recalls the seal
    // (the recall, wait and release paths), the holder answers and seals again.
    let hot = fs
        .create(shared, b"hot", 0o644, libc::O_RDWR, ctx())
        .map(|(st, fh)| {
            fs.release(fh).unwrap();
            st.ino
        })
        .unwrap();
    let recalls_answered = Arc::new(AtomicU64::new(0));
    {
        let (fs, stop, done, n) = (
            fs.clone(),
            stop.clone(),
            done.clone(),
            recalls_answered.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let fh = fs.open(hot, libc::O_RDWR, ctx()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                fs.seal(fh, 0, 0, SealMode::Breakable, Populate::No, ctx())
                    .unwrap();
                while !stop.load(Ordering::Relaxed) && !fs.recall_pending(fh) {
                    std::thread::yield_now();
                }
                fs.unseal(fh, 0, 0).unwrap();
                n.fetch_add(1, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            }
            fs.release(fh).unwrap();
            Kinds::default()
        }));
    }
    {
        let (fs, stop, done) = (fs.clone(), stop.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            let mut size = 0;
            while !stop.load(Ordering::Relaxed) {
                size = (size + 4096) % (256 << 10);
                fs.blocking(|| fs.truncate(hot, size, ctx())).unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
            Kinds::default()
        }));
    }
    let start = Instant::now();
    let (mut last, mut last_change) = (0, Instant::now());
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(100));
        let now = done.load(Ordering::Relaxed) + checkpoints.load(Ordering::Relaxed);
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
        if threads.iter().any(|t| t.is_finished()) {
            break;
        }
        assert!(
            last_change.elapsed() < STALL,
            "no operation completed for {STALL:?} after {last} operations: deadlock"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + STALL;
    while !threads.iter().all(|t| t.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "threads did not stop within {STALL:?}: deadlock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut kinds = Kinds::default();
    for t in threads {
        let k = t.join().expect("a thread failed (see its panic above)");
        for (sum, n) in kinds.iter_mut().zip(k) {
            *sum += n;
        }
    }
    let ops = done.load(Ordering::Relaxed);
    let ckpts = checkpoints.load(Ordering::Relaxed);
    println!(
        "{ops} operations by {WORKERS} threads and {ckpts} checkpoints by {CHECKPOINTERS} in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let answered = recalls_answered.load(Ordering::Relaxed);
    let stats = fs.seal_stats();
    println!(
        "breakable holder: {answered} recalls answered; {} recalls, {} revocations in all",
        stats.recalls, stats.revocations
    );
    assert!(answered > 0, "no recall was answered");
    assert_eq!(
        stats.revocations, 0,
        "a recall went unanswered until its deadline"
    );
    println!("successful operations by kind (create, unlink, rename, xattr, truncate, link, seal, mapping, read, mkdir/rmdir): {kinds:?}");
    assert!(ckpts > 0, "no checkpoint ran");
    assert!(
        kinds.iter().all(|&n| n > 0),
        "every kind of operation succeeded at least once: {kinds:?}"
    );
    let live = snapshot(&fs);
    let fs = Arc::into_inner(fs).expect("no thread holds the filesystem");
    drop(fs);
    let rep = sealfs::fsck::check(&*dev);
    assert!(rep.clean(), "fsck after the run: {rep:?}");
    let again = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    assert_eq!(snapshot(&again), live, "the remounted tree differs");
}

/// Many threads replace the same window slot of one descriptor at once (SETUPMAPPING's
/// ioctl semantics): every call succeeds, and one mapping with one pin is left.
#[test]
fn racing_replacements_of_one_slot_leave_one_pin() {
    sealfs::sync::panic_on_violation(true);
    let dev = Arc::new(SimDevice::new(64 << 20, true));
    mkfs_layout(&*dev, LayoutOptions::default());
    let fs = Arc::new(Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap());
    let (st, fh) = fs.create(1, b"f", 0o644, libc::O_RDWR, ctx()).unwrap();
    fs.truncate(st.ino, 4 << 20, ctx()).unwrap();
    for round in 0..200u64 {
        let slot = (round % 4) << 21;
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (fs, barrier) = (fs.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut replaced = Vec::new();
                    fs.replace_mapping(
                        fh,
                        t << 20,
                        1 << 20,
                        MAP_READ | MAP_WRITE,
                        slot,
                        ctx(),
                        &mut replaced,
                    )
                    .map(|_| replaced.len())
                    .map_err(|e| e.errno())
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(
            results.iter().all(|r| r.is_ok()),
            "round {round}: {results:?}"
        );
        // Each of the four mappings but the one left replaced exactly one.
        let replaced: usize = results.iter().map(|r| r.unwrap()).sum();
        assert_eq!(replaced, 3, "round {round}: {results:?}");
        assert_eq!(fs.seal_stats().pins, 1, "round {round}: one pin");
        fs.remove_mapping(fh, slot).unwrap();
        assert_eq!(fs.seal_stats().pins, 0, "round {round}: no pin left");
    }
}

/// Many threads map the same window slot of one descriptor at once: exactly one mapping
/// (and one pin) results, the others get EEXIST, and removing it leaves no pin behind.
#[test]
fn racing_setupmappings_of_one_slot_leave_one_pin() {
    sealfs::sync::panic_on_violation(true);
    let dev = Arc::new(SimDevice::new(64 << 20, true));
    mkfs_layout(&*dev, LayoutOptions::default());
    let fs = Arc::new(Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap());
    let (st, fh) = fs.create(1, b"f", 0o644, libc::O_RDWR, ctx()).unwrap();
    fs.truncate(st.ino, 4 << 20, ctx()).unwrap();
    for round in 0..200u64 {
        let slot = round << 21;
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (fs, barrier) = (fs.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    fs.setup_mapping(fh, 0, 1 << 20, MAP_READ | MAP_WRITE, slot, ctx())
                        .map(|_| ())
                        .map_err(|e| e.errno())
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {results:?}");
        assert!(results.iter().all(|r| r.is_ok() || *r == Err(libc::EEXIST)));
        assert_eq!(fs.seal_stats().pins, 1, "round {round}: one pin");
        fs.remove_mapping(fh, slot).unwrap();
        assert_eq!(fs.seal_stats().pins, 0, "round {round}: no pin left");
    }
}
