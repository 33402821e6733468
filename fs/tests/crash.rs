//! Crash safety, exhaustively: generated workloads run on a simulated device that records
//! every store, flush and fence; each run is cut at every flush and fence, with the stores
//! that were not yet durable dropped, kept, or kept as a random subset of 8-byte words.
//! Every cut must give an image that fsck calls clean and that mounts to the state after
//! the operations that had replied (plus, possibly, the one in flight), with file data as
//! of its last fsync (image-file rules) or as of each write (device-DAX rules).
//!
//! `SEALFS_CRASH_WORKLOADS` sets the number of workloads (default 1000 with optimisations,
//! 100 without).

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{snapshot, Rng, Tree};
use sealfs::device::sim::{CrashState, Event, SimDevice, Survival};
use sealfs::filesystem::seals::Populate;
use sealfs::filesystem::{mkfs, MkfsOptions, MountOptions};
use sealfs::format::layout::LayoutOptions;
use sealfs::{Ctx, Filesystem};

const DEV_SIZE: u64 = 4 << 20;

fn layout() -> LayoutOptions {
    LayoutOptions {
        block_size: 0,
        log_len: 64 << 10,
        ckpt_len: 256 << 10,
    }
}

#[derive(Clone, Debug)]
enum W {
    Mkdir(String),
    Create(String),
    Write(String, u64, usize, u64),
    Truncate(String, u64),
    Punch(String, u64, u64),
    Zero(String, u64, u64),
    Falloc(String, u64, u64, bool),
    Rename(String, String, u32),
    Unlink(String),
    Rmdir(String),
    Link(String, String),
    Symlink(String, String),
    SetX(String, u8, usize),
    RmX(String, u8),
    Fsync(String),
    Chmod(String, u32),
    Chattr(String, u32),
    SealMap(String, bool),
    Acl(String, u8),
    Defrag,
    Checkpoint,
}

const DIRS: [&str; 4] = ["", "/a", "/b", "/a/c"];

fn path(r: &mut Rng) -> String {
    let d = DIRS[r.below(DIRS.len() as u64) as usize];
    if r.chance(25) && d != "/a/c" {
        let sub = ["a", "b", "c"][r.below(3) as usize];
        return format!("{d}/{sub}");
    }
    format!("{d}/f{}", r.below(4))
}

fn gen(seed: u64) -> Vec<W> {
    let mut r = Rng(seed);
    let n = if seed.is_multiple_of(10) {
        60
    } else {
        6 + r.below(14) as usize
    };
    let bs = 4096;
    let mut w = vec![
        W::Mkdir("/a".into()),
        W::Mkdir("/b".into()),
        W::Create("/f0".into()),
        W::Create("/a/f1".into()),
    ];
    let mut known: Vec<String> = vec!["/f0".into(), "/a/f1".into()];
    for _ in 0..n {
        // Mostly operate on names created earlier, so that most operations do something.
        let p = if r.chance(70) {
            known[r.below(known.len() as u64) as usize].clone()
        } else {
            path(&mut r)
        };
        let off = r.below(12) * bs / 2 + r.below(100);
        w.push(match r.below(20) {
            0 => W::Mkdir(p),
            1 | 2 => {
                let p = path(&mut r);
                known.push(p.clone());
                W::Create(p)
            }
            3..=5 => W::Write(p, off, 1 + r.below(3 * bs) as usize, r.next()),
            6 => W::Truncate(p, r.below(8 * bs)),
            7 => W::Punch(p, off, 1 + r.below(4 * bs)),
            8 => W::Zero(p, off, 1 + r.below(4 * bs)),
            9 => W::Falloc(p, off, 1 + r.below(6 * bs), r.chance(50)),
            10 | 11 => W::Rename(p, path(&mut r), [0, 0, 1, 2, 4][r.below(5) as usize]),
            12 => W::Unlink(p),
            13 => W::Rmdir(p),
            14 => W::Link(p, path(&mut r)),
            15 => W::Symlink(p, "target".into()),
            16 => W::SetX(p, r.below(2) as u8, r.below(3000) as usize),
            17 => W::RmX(p, r.below(2) as u8),
            18 => W::Fsync(p),
            _ => match r.below(7) {
                3 => W::Defrag,
                4 | 5 => W::Acl(p, r.below(3) as u8),
                0 => W::Chmod(p, 0o600 + r.below(0o100) as u32),
                1 => W::Chattr(p, if r.chance(50) { 0x20 } else { 0 }),
                2 => W::SealMap(p, r.chance(70)),
                _ => W::Checkpoint,
            },
        });
    }
    w
}

fn split(p: &str) -> (String, Vec<u8>) {
    let i = p.rfind('/').unwrap();
    (p[..i].to_string(), p.as_bytes()[i + 1..].to_vec())
}

/// Runs one operation; returns the inode whose data it changed or made durable.
fn run(fs: &Filesystem, w: &W) -> (Option<u64>, Option<u64>) {
    let c = Ctx::root();
    let ino = |p: &str| fs.resolve(p.as_bytes()).ok();
    let parent = |p: &str| {
        let (d, n) = split(p);
        fs.resolve(d.as_bytes()).ok().map(|i| (i, n))
    };
    let mut dirty = None;
    let mut synced = None;
    match w {
        W::Mkdir(p) => {
            if let Some((d, n)) = parent(p) {
                let _ = fs.mkdir(d, &n, 0o755, c);
            }
        }
        W::Create(p) => {
            if let Some((d, n)) = parent(p) {
                if let Ok((_, fh)) = fs.create(d, &n, 0o644, libc::O_RDWR, c) {
                    let _ = fs.release(fh);
                }
            }
        }
        W::Write(p, off, len, seed) => {
            if let Some(i) = ino(p) {
                let data = Rng(*seed).bytes(*len);
                if fs.write(i, *off, &data).is_ok() {
                    dirty = Some(i);
                }
            }
        }
        W::Truncate(p, s) => {
            if let Some(i) = ino(p) {
                if fs.truncate(i, *s, c).is_ok() {
                    dirty = Some(i);
                }
            }
        }
        W::Punch(p, o, l) => {
            if let Some(i) = ino(p) {
                if fs.fallocate(i, *o, *l, 3).is_ok() {
                    dirty = Some(i);
                }
            }
        }
        W::Zero(p, o, l) => {
            if let Some(i) = ino(p) {
                if fs.fallocate(i, *o, *l, 0x10).is_ok() {
                    dirty = Some(i);
                }
            }
        }
        W::Falloc(p, o, l, keep) => {
            if let Some(i) = ino(p) {
                if fs.fallocate(i, *o, *l, if *keep { 1 } else { 0 }).is_ok() {
                    dirty = Some(i);
                }
            }
        }
        W::Rename(a, b, f) => {
            if let (Some((d1, n1)), Some((d2, n2))) = (parent(a), parent(b)) {
                let _ = fs.rename(d1, &n1, d2, &n2, *f, Ctx::root());
            }
        }
        W::Unlink(p) => {
            if let Some((d, n)) = parent(p) {
                let _ = fs.unlink(d, &n);
            }
        }
        W::Rmdir(p) => {
            if let Some((d, n)) = parent(p) {
                let _ = fs.rmdir(d, &n);
            }
        }
        W::Link(a, b) => {
            if let (Some(i), Some((d, n))) = (ino(a), parent(b)) {
                let _ = fs.link(i, d, &n);
            }
        }
        W::Symlink(p, t) => {
            if let Some((d, n)) = parent(p) {
                let _ = fs.symlink(d, &n, t.as_bytes(), c);
            }
        }
        W::SetX(p, k, len) => {
            if let Some(i) = ino(p) {
                let name = format!("user.k{k}");
                let _ = fs.setxattr(i, name.as_bytes(), &Rng(*len as u64).bytes(*len), 0);
            }
        }
        W::RmX(p, k) => {
            if let Some(i) = ino(p) {
                let _ = fs.removexattr(i, format!("user.k{k}").as_bytes());
            }
        }
        W::Fsync(p) => {
            if let Some(i) = ino(p) {
                if fs.fsync(i, false).is_ok() {
                    synced = Some(i);
                }
            }
        }
        W::Chmod(p, m) => {
            if let Some(i) = ino(p) {
                let req = sealfs::filesystem::namespace::SetAttr {
                    mode: Some(*m),
                    ..Default::default()
                };
                let _ = fs.setattr(i, req, c);
            }
        }
        W::Chattr(p, f) => {
            if let Some(i) = ino(p) {
                let _ = fs.set_flags(i, *f, c);
            }
        }
        W::SealMap(p, on) => {
            if let Some(i) = ino(p) {
                let _ = if *on {
                    fs.set_sealed_map(i, r_populate(i), c)
                } else {
                    fs.clear_sealed_map(i, c)
                };
            }
        }
        W::Acl(p, k) => {
            if let Some(i) = ino(p) {
                // 0: an access ACL with a named entry (stored, and the mode changes with
                // it); 1: a default ACL (directories; what is created in them inherits);
                // 2: a minimal access ACL (the stored one goes, the mode changes).
                let e = |t: u16, perm: u16, id: u32| {
                    [&t.to_le_bytes()[..], &perm.to_le_bytes(), &id.to_le_bytes()].concat()
                };
                let x = u32::MAX;
                let named = [
                    e(1, 7, x),
                    e(2, 6, 1000 + i as u32 % 3),
                    e(4, 5, x),
                    e(0x10, 6, x),
                    e(0x20, 4, x),
                ]
                .concat();
                let minimal = [e(1, 6, x), e(4, 4, x), e(0x20, 0, x)].concat();
                let (name, body): (&[u8], _) = match k {
                    0 => (b"system.posix_acl_access", named),
                    1 => (b"system.posix_acl_default", named),
                    _ => (b"system.posix_acl_access", minimal),
                };
                let value = [&2u32.to_le_bytes()[..], &body].concat();
                let _ = fs.set_acl(i, name, &value, 0, &|_| true);
            }
        }
        W::Defrag => {
            let _ = fs.defrag(Ctx::root());
        }
        W::Checkpoint => {
            let _ = fs.checkpoint();
        }
    }
    (dirty, synced)
}

/// Populate holes on odd inodes, refuse files with holes on even ones.
fn r_populate(ino: u64) -> Populate {
    if ino % 2 == 1 {
        Populate::Fill
    } else {
        Populate::No
    }
}

/// Compares a recovered tree with an expected one. File contents are compared when
/// `clean` holds the inode (its data is durable) or `all_data` is set (device DAX).
fn same(
    r: &Tree,
    s: &Tree,
    clean: &HashSet<u64>,
    all_data: bool,
    torn: Option<u64>,
) -> Result<(), String> {
    let rk: Vec<_> = r.keys().collect();
    let sk: Vec<_> = s.keys().collect();
    if rk != sk {
        return Err(format!(
            "paths differ: recovered {:?} expected {:?}",
            rk.iter()
                .map(|k| String::from_utf8_lossy(k))
                .collect::<Vec<_>>(),
            sk.iter()
                .map(|k| String::from_utf8_lossy(k))
                .collect::<Vec<_>>()
        ));
    }
    for (k, re) in r {
        let se = &s[k];
        let mut a = re.clone();
        let mut b = se.clone();
        if !(all_data || clean.contains(&se.ino)) || torn == Some(se.ino) {
            a.content.clear();
            b.content.clear();
        }
        if a != b {
            return Err(format!(
                "{}: recovered {:?} expected {:?}",
                String::from_utf8_lossy(k),
                (
                    a.ino,
                    a.mode,
                    a.nlink,
                    a.size,
                    a.flags,
                    a.xattrs.len(),
                    a.content.len()
                ),
                (
                    b.ino,
                    b.mode,
                    b.nlink,
                    b.size,
                    b.flags,
                    b.xattrs.len(),
                    b.content.len()
                )
            ));
        }
        if a.content != b.content {
            return Err(format!("{}: content differs", String::from_utf8_lossy(k)));
        }
    }
    Ok(())
}

struct Outcome {
    cuts: u64,
    images: u64,
}

fn check_workload(seed: u64) -> Result<Outcome, String> {
    let devdax = seed % 2 == 1;
    let dev = Arc::new(SimDevice::new(DEV_SIZE, devdax));
    mkfs(
        &*dev,
        MkfsOptions {
            layout: layout(),
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let base = dev.snapshot();
    let ops = gen(seed);
    let fs = Filesystem::mount(Box::new(dev.clone()), MountOptions::default())
        .map_err(|e| e.to_string())?;
    fs.set_acl_enabled(true);
    let mut states = vec![snapshot(&fs)];
    let mut clean_sets: Vec<HashSet<u64>> = vec![HashSet::new()];
    let mut clean: HashSet<u64> = HashSet::new();
    let mut dirtied: Vec<Option<u64>> = Vec::new();
    dev.start_trace();
    for (i, w) in ops.iter().enumerate() {
        dev.mark(2 * i as u64);
        let (dirty, synced) = run(&fs, w);
        dev.mark(2 * i as u64 + 1);
        dirtied.push(dirty);
        if let Some(d) = dirty {
            clean.remove(&d);
        }
        if let Some(s) = synced {
            clean.insert(s);
        }
        // Data that was never written since mkfs is trivially "as of fsync".
        let snap = snapshot(&fs);
        states.push(snap);
        clean_sets.push(clean.clone());
    }
    let trace = dev.take_trace();
    drop(fs);
    let mut cs = CrashState::new(base);
    let (mut started, mut completed) = (0usize, 0usize);
    let mut out = Outcome { cuts: 0, images: 0 };
    for (k, ev) in trace
        .iter()
        .enumerate()
        .chain(std::iter::once((trace.len(), &Event::Fence)))
    {
        let at_end = k == trace.len();
        if matches!(ev, Event::Flush { .. } | Event::Fence) {
            out.cuts += 1;
            let variants: &[Survival] = if cs.has_volatile() {
                &[
                    Survival::Dropped,
                    Survival::Kept,
                    Survival::Torn(seed ^ k as u64),
                ]
            } else {
                &[Survival::Dropped]
            };
            for &v in variants {
                out.images += 1;
                let img = cs.image(v);
                let cut = || {
                    format!(
                        "seed {seed} cut {k}/{} {v:?} after {completed} ops",
                        trace.len()
                    )
                };
                let cdev = Arc::new(SimDevice::from_image(img, devdax));
                let rep = sealfs::fsck::check(&*cdev);
                if !rep.clean() {
                    return Err(format!("{}: fsck: {:?}", cut(), rep.problems));
                }
                let fs = Filesystem::mount(Box::new(cdev.clone()), MountOptions::default())
                    .map_err(|e| format!("{}: mount: {e}", cut()))?;
                fs.set_acl_enabled(true);
                let r = snapshot(&fs);
                // The data an operation in flight was changing may be partly written.
                let torn = if started > completed {
                    dirtied[completed]
                } else {
                    None
                };
                let ok_done = same(&r, &states[completed], &clean_sets[completed], devdax, torn);
                let ok = ok_done.clone().or_else(|e| {
                    if started > completed {
                        same(&r, &states[started], &clean_sets[completed], devdax, torn)
                    } else {
                        Err(e)
                    }
                });
                if let Err(e) = ok {
                    return Err(format!(
                        "{}: {e} (op in flight: {:?})",
                        cut(),
                        ops.get(completed)
                    ));
                }
                // Now and then, use the recovered filesystem and check it again.
                if (k + seed as usize).is_multiple_of(7) {
                    let c = Ctx::root();
                    if let Ok((st, fh)) = fs.create(1, b"after-crash", 0o644, libc::O_RDWR, c) {
                        let _ = fs.write(st.ino, 0, b"hello");
                        let _ = fs.release(fh);
                    }
                    drop(fs);
                    let rep = sealfs::fsck::check(&*cdev);
                    if !rep.clean() {
                        return Err(format!("{}: fsck after use: {:?}", cut(), rep.problems));
                    }
                }
            }
        }
        if at_end {
            break;
        }
        if let Event::Mark(m) = ev {
            if m % 2 == 0 {
                started = *m as usize / 2 + 1;
            } else {
                completed = *m as usize / 2 + 1;
            }
        }
        cs.step(ev);
    }
    Ok(out)
}

#[test]
fn every_cut_of_every_workload_recovers() {
    let default = if cfg!(debug_assertions) { 100 } else { 1000 };
    let n: u64 = std::env::var("SEALFS_CRASH_WORKLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let first: u64 = std::env::var("SEALFS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (mut cuts, mut images) = (0, 0);
    let t = std::time::Instant::now();
    for seed in first..first + n {
        match check_workload(seed) {
            Ok(o) => {
                cuts += o.cuts;
                images += o.images;
            }
            Err(e) => panic!("{e}\nworkload: {:?}", gen(seed)),
        }
    }
    println!(
        "crash matrix: {n} workloads x {cuts} cut points ({images} crash images checked) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}
