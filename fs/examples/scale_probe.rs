//! Measures core-level create rate, mount time, resident memory per file and fsck time on
//! an image (a measurement, not a test; `scripts/bench.sh` reports the same through the
//! mount). `cargo run --release -p sealfs --example scale_probe -- IMG N`

use std::time::{Duration, Instant};

use sealfs::filesystem::{mkfs, MkfsOptions, MountOptions};
use sealfs::{Ctx, Filesystem};

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() -> sealfs::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: scale_probe IMG NFILES");
        std::process::exit(2);
    }
    let img = &args[1];
    let n: u64 = args[2].parse().unwrap_or(0);
    if let Some(existing) = args.get(2).and_then(|a| a.strip_prefix("mount:")) {
        // Mount an existing image in a fresh process: resident memory per inode.
        let files: u64 = existing.parse().unwrap_or(1);
        let base = rss_kib();
        let t = Instant::now();
        let fs = Filesystem::mount(
            sealfs::device::open(img.as_ref(), Duration::ZERO)?,
            MountOptions::default(),
        )?;
        let el = t.elapsed();
        let rss = rss_kib();
        println!(
            "mount: {:.3} s; {} inodes; resident growth {} KiB = {:.0} bytes/file",
            el.as_secs_f64(),
            fs.stats().inodes,
            rss.saturating_sub(base),
            (rss.saturating_sub(base) * 1024) as f64 / files as f64
        );
        return Ok(());
    }
    // Sparse: the checkpoint areas (a 32nd of the device each) must hold every inode and
    // name, about 150 bytes a file; 8 KiB of device per file leaves room for both.
    std::fs::File::create(img)?.set_len((8u64 << 30).max(n.saturating_mul(8 << 10)))?;
    let dev = sealfs::device::open(img.as_ref(), Duration::ZERO)?;
    mkfs(&*dev, MkfsOptions::default())?;
    let fs = Filesystem::mount(dev, MountOptions::default())?;
    let t = Instant::now();
    let c = Ctx::root();
    let per_dir = 10_000;
    let mut dir = 1;
    for i in 0..n {
        if i % per_dir == 0 {
            dir = fs
                .mkdir(1, format!("d{}", i / per_dir).as_bytes(), 0o755, c)?
                .ino;
        }
        fs.mknod(
            dir,
            format!("file-{i:08}").as_bytes(),
            libc::S_IFREG | 0o644,
            0,
            c,
        )?;
    }
    let el = t.elapsed();
    println!(
        "creates: {n} in {:.2} s = {:.0}/s",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64()
    );
    fs.checkpoint()?;
    drop(fs);
    let base = rss_kib();
    let t = Instant::now();
    let dev = sealfs::device::open(img.as_ref(), Duration::ZERO)?;
    let fs = Filesystem::mount(dev, MountOptions::default())?;
    let el = t.elapsed();
    let rss = rss_kib();
    println!(
        "mount: {:.3} s; resident growth {} KiB = {:.0} bytes/file",
        el.as_secs_f64(),
        rss.saturating_sub(base),
        (rss.saturating_sub(base) * 1024) as f64 / n as f64
    );
    drop(fs);
    let t = Instant::now();
    let dev = sealfs::device::open(img.as_ref(), Duration::ZERO)?;
    let r = sealfs::fsck::check(&*dev);
    println!(
        "fsck: {:.3} s clean={}",
        t.elapsed().as_secs_f64(),
        r.clean()
    );
    Ok(())
}
