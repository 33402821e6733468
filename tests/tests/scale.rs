//! Sizes and limits through a real mount: a 100k-entry directory (indexed lookups), the
//! hard-link limit, a full device, and a log that fills many times over.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use sealfs_tests::*;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn large_directory_is_indexed() {
    // 100k inodes need more than a 256 MiB image's checkpoint area would hold on ext4 too.
    let Some(mut m) = Mount::with_size("1G", "") else {
        return;
    };
    let n = env_usize("SEALFS_TEST_BIGDIR", 100_000);
    fs::create_dir(m.path("big")).unwrap();
    fs::create_dir(m.path("small")).unwrap();
    for i in 0..10 {
        fs::write(m.path(&format!("small/f{i:06}")), b"").unwrap();
    }
    let t = Instant::now();
    for i in 0..n {
        mknod(
            &m.path(&format!("big/f{i:06}")),
            libc::S_IFREG | 0o644,
            0,
            0,
        )
        .unwrap_or_else(|e| panic!("create #{i}: {e}"));
    }
    let dt = t.elapsed();
    eprintln!(
        "large_directory: {n} creates in {dt:?} ({:.0}/s)",
        n as f64 / dt.as_secs_f64()
    );

    // After a remount no dentry is cached: every stat below is a real LOOKUP.
    m.remount();
    let t = Instant::now();
    let mut inos = HashSet::with_capacity(n);
    for i in 0..n {
        let md = fs::symlink_metadata(m.path(&format!("big/f{i:06}")))
            .unwrap_or_else(|e| panic!("lookup #{i}: {e}"));
        assert!(md.is_file());
        assert!(inos.insert(md.ino()), "inode number {} repeated", md.ino());
    }
    let dt = t.elapsed();
    eprintln!(
        "large_directory: {n} cold lookups in {dt:?} ({:.0}/s)",
        n as f64 / dt.as_secs_f64()
    );

    let t = Instant::now();
    let mut seen = HashSet::with_capacity(n);
    for e in fs::read_dir(m.path("big")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(seen.insert(name.clone()), "readdir returned {name} twice");
    }
    eprintln!(
        "large_directory: readdir of {} entries in {:?}",
        seen.len(),
        t.elapsed()
    );
    assert_eq!(seen.len(), n, "readdir entry count");
    for i in (0..n).step_by(997) {
        assert!(seen.contains(&format!("f{i:06}")));
    }
    assert_eq!(fs::symlink_metadata(m.path("big")).unwrap().nlink(), 2);

    // Misses (never cached, each name distinct) in the big directory against the small one,
    // interleaved so that load from parallel tests hits both alike.
    let (mut big, mut small) = (Duration::ZERO, Duration::ZERO);
    let per = 200;
    for round in 0..10 {
        for (dir, acc) in [("big", &mut big), ("small", &mut small)] {
            let t = Instant::now();
            for i in 0..per {
                let p = m.path(&format!("{dir}/miss-{round}-{i}"));
                assert_errno!(fs::symlink_metadata(&p), libc::ENOENT);
            }
            *acc += t.elapsed();
        }
    }
    let ratio = big.as_secs_f64() / small.as_secs_f64();
    eprintln!(
        "large_directory: {} missed lookups: {:?} in {n} entries vs {:?} in 10 (ratio {ratio:.2})",
        per * 10,
        big,
        small
    );
    assert!(
        ratio < 10.0,
        "lookups in a {n}-entry directory are {ratio:.1}x slower than in a 10-entry one"
    );
}

#[test]
fn hard_link_limit() {
    let Some(m) = Mount::new("") else { return };
    // Linux (ext4) allows 65000 links; each link() is two FUSE round trips, a few seconds.
    const MAX: u64 = 65_000;
    fs::create_dir(m.path("links")).unwrap();
    let target = m.path("target");
    fs::write(&target, b"linked").unwrap();
    let t = Instant::now();
    for i in 1..MAX {
        fs::hard_link(&target, m.path(&format!("links/l{i}")))
            .unwrap_or_else(|e| panic!("link #{i}: {e}"));
    }
    eprintln!("hard_link_limit: {} links in {:?}", MAX - 1, t.elapsed());
    assert_eq!(fs::metadata(&target).unwrap().nlink(), MAX);
    assert_errno!(
        fs::hard_link(&target, m.path("links/one-too-many")),
        libc::EMLINK
    );
    assert_errno!(fs::metadata(m.path("links/one-too-many")), libc::ENOENT);
    fs::remove_file(m.path("links/l1")).unwrap();
    fs::hard_link(&target, m.path("links/again")).unwrap();
    assert_eq!(fs::metadata(&target).unwrap().nlink(), MAX);
    assert_eq!(fs::read(m.path("links/l777")).unwrap(), b"linked");
}

#[test]
fn full_device_loses_nothing() {
    let Some(mut m) = Mount::with_size("64M", "") else {
        return;
    };
    let free0 = statfs(m.mnt()).f_bfree;
    let mut files: Vec<(String, u64, usize)> = Vec::new(); // (name, seed, length)
    let chunk = 64 * 1024;
    let mut rng = Rng::new(9);
    'fill: for i in 0.. {
        let name = format!("f{i:04}");
        let seed = 1000 + i as u64;
        let target = 128 * 1024 + rng.below(1536 * 1024) as usize;
        let mut f = fs::File::create(m.path(&name)).unwrap();
        let mut len = 0usize;
        while len < target {
            let n = chunk.min(target - len);
            match f.write(&pattern(seed, len as u64, n)) {
                Ok(0) => panic!("write returned 0"),
                Ok(w) => len += w,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    f.sync_all().unwrap();
                    files.push((name, seed, len));
                    break 'fill;
                }
                Err(e) => panic!("writing {name} at {len}: {e}"),
            }
        }
        f.sync_all().unwrap();
        files.push((name, seed, len));
        assert!(i < 1000, "64 MiB never filled");
    }
    // Top up with 4 KiB writes until not even one block is left.
    let mut tops = 0u64;
    {
        let mut f = fs::File::create(m.path("topup")).unwrap();
        loop {
            match f.write(&[0x77; 4096]) {
                Ok(n) => tops += n as u64,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "top-up write: {e}");
                    break;
                }
            }
        }
        f.sync_all().unwrap();
    }
    let s = statfs(m.mnt());
    eprintln!(
        "full_device: {} files, {} bytes, top-up {tops}, free blocks left {}",
        files.len(),
        files.iter().map(|f| f.2).sum::<usize>(),
        s.f_bfree
    );
    // ext4 keeps a small reserve too; sealfs's metadata lives outside the data blocks.
    assert!(
        s.f_bfree * 25 < s.f_blocks,
        "device full but {} of {} blocks free",
        s.f_bfree,
        s.f_blocks
    );
    // In-place overwrites need no allocation and still work.
    {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(m.path(&files[0].0))
            .unwrap();
        pwrite_all(&f, &pattern(files[0].1, 0, 4096), 0).unwrap();
        f.sync_all().unwrap();
    }

    m.remount_checked();
    for (name, seed, len) in &files {
        let got = fs::read(m.path(name)).unwrap();
        assert_bytes(&got, &pattern(*seed, 0, *len), name);
    }
    assert_eq!(fs::metadata(m.path("topup")).unwrap().len(), tops);

    for (name, _, _) in &files {
        fs::remove_file(m.path(name)).unwrap();
    }
    fs::remove_file(m.path("topup")).unwrap();
    assert_eq!(
        after_release(free0, || statfs(m.mnt()).f_bfree),
        free0,
        "all space back after deleting"
    );
    m.remount_checked();
    assert_eq!(
        statfs(m.mnt()).f_bfree,
        free0,
        "all space back after remount"
    );
}

#[test]
fn log_fills_many_times_without_errors() {
    // 8 MiB: a 128 KiB log, so a few thousand records fill it.
    let Some(mut m) = Mount::with_size("8M", "") else {
        return;
    };
    let ops = env_usize("SEALFS_TEST_LOG_OPS", 30_000);
    let dirs = ["a", "b", "c", "a/deep"];
    for d in dirs {
        fs::create_dir(m.path(d)).unwrap();
    }
    // name -> (content, mode)
    let mut model: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
    let mut rng = Rng::new(77);
    let t = Instant::now();
    for op in 0..ops {
        let dir = dirs[rng.below(dirs.len() as u64) as usize];
        let name = format!("{dir}/n{}", rng.below(400));
        let r = rng.below(100);
        let res = if r < 35 || model.is_empty() {
            let content = format!("op {op}").into_bytes();
            let res = fs::write(m.path(&name), &content);
            let mode = model.get(&name).map(|e| e.1).unwrap_or(0o644);
            model.insert(name.clone(), (content, mode));
            res
        } else {
            let existing: Vec<&String> = model.keys().collect();
            let pick = existing[rng.below(existing.len() as u64) as usize].clone();
            if r < 60 {
                let res = fs::rename(m.path(&pick), m.path(&name));
                if pick != name {
                    let v = model.remove(&pick).unwrap();
                    model.insert(name.clone(), v);
                }
                res
            } else if r < 80 {
                model.remove(&pick);
                fs::remove_file(m.path(&pick))
            } else if r < 90 {
                let mode = 0o600 | (rng.below(0o100) as u32);
                model.get_mut(&pick).unwrap().1 = mode;
                chmod(&m.path(&pick), mode)
            } else {
                setxattr(&m.path(&pick), b"user.op", format!("{op}").as_bytes(), 0)
            }
        };
        if let Err(e) = res {
            panic!("operation {op} on {name}: {e}");
        }
    }
    eprintln!(
        "log_fills: {ops} operations in {:?}; {} files live",
        t.elapsed(),
        model.len()
    );
    let stat = m.stat_output();
    eprintln!(
        "log_fills: sealfs stat:\n{}",
        String::from_utf8_lossy(&stat.stdout)
    );

    let check = |m: &Mount, when: &str| {
        let mut found = BTreeMap::new();
        for d in dirs {
            for e in fs::read_dir(m.path(d)).unwrap() {
                let e = e.unwrap();
                let name = format!("{d}/{}", e.file_name().to_str().unwrap());
                if e.file_type().unwrap().is_file() {
                    let mode = e.metadata().unwrap().mode() & 0o7777;
                    found.insert(name.clone(), (fs::read(m.path(&name)).unwrap(), mode));
                }
            }
        }
        assert_eq!(found.len(), model.len(), "{when}: number of files");
        for (k, v) in &model {
            assert_eq!(found.get(k), Some(v), "{when}: {k}");
        }
    };
    check(&m, "before remount");
    m.remount_checked();
    check(&m, "after remount");
}
