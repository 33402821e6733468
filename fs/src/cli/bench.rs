//! `sealfs map --bench`: window, memcpy and read(2) throughput on one file of a mount.

use std::path::Path;
use std::time::{Duration, Instant};

use super::args::human;
use super::seal::{open, open_rw_create};
use super::{at, describe_io, Outcome};

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

/// `sealfs map --bench [--size SIZE] FILE`
pub(super) fn map_bench(path: &Path, size: u64) -> Outcome {
    use crate::window::{Window, SLOT};
    let size = size.div_ceil(SLOT) * SLOT;
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) < size {
        let f = open_rw_create(path)?;
        let chunk = vec![0x5au8; 1 << 20];
        use std::os::unix::fs::FileExt;
        let mut o = 0;
        while o < size {
            f.write_all_at(&chunk, o)
                .map_err(|e| at(path, describe_io(&e)))?;
            o += chunk.len() as u64;
        }
    }
    let window = (64u64 << 20).min(size / 4).max(SLOT);
    let mut buf = vec![0u8; 1 << 20];
    let reps = 3;
    // Streaming through a window smaller than the file: every slot cycles through
    // SETUPMAPPING, first-touch faults and REMOVEMAPPING.
    let mut best_win = Duration::MAX;
    let mut best_write = Duration::MAX;
    let mut setups = 0;
    for _ in 0..reps {
        let mut w = Window::open(path, window, true).map_err(|e| at(path, e))?;
        let t = Instant::now();
        let mut o = 0;
        while o < size {
            w.read_at(o, &mut buf).map_err(|e| at(path, e))?;
            o += buf.len() as u64;
        }
        best_win = best_win.min(t.elapsed());
        setups = w.setups;
        let t = Instant::now();
        let mut o = 0;
        while o < size {
            w.write_at(o, &buf).map_err(|e| at(path, e))?;
            o += buf.len() as u64;
        }
        w.flush(0, size).map_err(|e| at(path, e))?;
        best_write = best_write.min(t.elapsed());
    }
    // memcpy of the same bytes on an already-mapped region of the same device memory.
    let mut full = Window::open(path, size, false).map_err(|e| at(path, e))?;
    let mut o = 0;
    while o < size {
        full.read_at(o, &mut buf).map_err(|e| at(path, e))?;
        o += buf.len() as u64;
    }
    let mut best_mem = Duration::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let mut o = 0;
        while o < size {
            full.read_at(o, &mut buf).map_err(|e| at(path, e))?;
            o += buf.len() as u64;
        }
        best_mem = best_mem.min(t.elapsed());
    }
    drop(full);
    // read(2) through the mount.
    let f = open(path, false)?;
    let mut best_read = Duration::MAX;
    for _ in 0..reps {
        use std::os::unix::fs::FileExt;
        let t = Instant::now();
        let mut o = 0;
        while o < size {
            let n = f
                .read_at(&mut buf, o)
                .map_err(|e| at(path, describe_io(&e)))?;
            if n == 0 {
                break;
            }
            o += n as u64;
        }
        best_read = best_read.min(t.elapsed());
    }
    println!(
        "file {} ({}), window {} in {} slots of {}, best of {reps}",
        path.display(),
        human(size),
        human(window),
        window / SLOT,
        human(SLOT)
    );
    println!(
        "window read   {:8.2} GB/s  ({setups} SETUPMAPPING per pass)",
        gbps(size, best_win)
    );
    println!(
        "window write  {:8.2} GB/s  (incl. flush)",
        gbps(size, best_write)
    );
    println!(
        "memcpy        {:8.2} GB/s  (already mapped)",
        gbps(size, best_mem)
    );
    println!(
        "read(2)       {:8.2} GB/s  (through the mount)",
        gbps(size, best_read)
    );
    println!(
        "window_vs_fuse_read={:.2}",
        best_read.as_secs_f64() / best_win.as_secs_f64()
    );
    println!(
        "window_vs_memcpy={:.2}",
        best_mem.as_secs_f64() / best_win.as_secs_f64()
    );
    Ok(())
}
