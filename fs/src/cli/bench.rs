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
    let reps = 5;
    // memcpy of the same bytes on an already-mapped region of the same device memory.
    let mut full = Window::open(path, size, false).map_err(|e| at(path, e))?;
    let pass = |w: &mut Window, buf: &mut [u8]| -> Result<Duration, String> {
        let t = Instant::now();
        let mut o = 0;
        while o < size {
            w.read_at(o, buf).map_err(|e| at(path, e))?;
            o += buf.len() as u64;
        }
        Ok(t.elapsed())
    };
    pass(&mut full, &mut buf)?;
    // Streaming through a window smaller than the file: every slot cycles through
    // SETUPMAPPING (which replaces the slot's old mapping) and first-touch faults. Each
    // window pass runs right beside a memcpy pass, so a machine whose load changes during
    // the run weighs on both alike.
    let mut best_win = Duration::MAX;
    let mut best_write = Duration::MAX;
    let mut best_mem = Duration::MAX;
    let mut setups = 0;
    for _ in 0..reps {
        let mut w = Window::open(path, window, true).map_err(|e| at(path, e))?;
        best_win = best_win.min(pass(&mut w, &mut buf)?);
        setups = w.setups;
        best_mem = best_mem.min(pass(&mut full, &mut buf)?);
        let t = Instant::now();
        let mut o = 0;
        while o < size {
            w.write_at(o, &buf).map_err(|e| at(path, e))?;
            o += buf.len() as u64;
        }
        w.flush(0, size).map_err(|e| at(path, e))?;
        best_write = best_write.min(t.elapsed());
    }
    drop(full);
    let setup_us = setup_cost(path, size)?;
    let cycles = slot_cycles(path, size, window)?;
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
    println!("setupmapping_us={setup_us:.1}");
    println!("slot_cycle_per_s={cycles:.0}");
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

/// The median cost of one SETUPMAPPING of a 2 MiB slot in µs: the same slot mapped to the
/// file's successive 2 MiB ranges, each call replacing the slot's previous mapping (as a
/// window reusing a slot does), without mapping anything.
fn setup_cost(path: &Path, size: u64) -> Result<f64, String> {
    use crate::abi;
    use crate::window::SLOT;
    let f = open(path, false)?;
    let n = (size / SLOT).clamp(1, 1000);
    let mut times = Vec::with_capacity(2 * n as usize);
    for round in 0..2 {
        for k in 0..n {
            let mut b = abi::SetupMapping {
                foffset: k * SLOT,
                len: SLOT,
                flags: abi::MAP_READ,
                moffset: 0,
            }
            .encode();
            let t = Instant::now();
            super::sys::ioctl(&f, abi::IOC_SETUPMAPPING, &mut b)
                .map_err(|e| at(path, describe_io(&e)))?;
            // The first round warms the daemon's caches.
            if round == 1 {
                times.push(t.elapsed());
            }
        }
    }
    let mut b = abi::encode_ranges(&[(0, SLOT)]);
    super::sys::ioctl(&f, abi::IOC_REMOVEMAPPING, &mut b).map_err(|e| at(path, describe_io(&e)))?;
    times.sort();
    Ok(times[times.len() / 2].as_secs_f64() * 1e6)
}

/// Slot cycles per second: streaming through a window of `window` bytes touching one byte
/// per 2 MiB slot, so each step is a whole slot cycle (SETUPMAPPING replacing the slot's
/// old range, its `mmap` and pre-faulting) with no copy. Best of three passes.
fn slot_cycles(path: &Path, size: u64, window: u64) -> Result<f64, String> {
    use crate::window::{Window, SLOT};
    let mut best = 0f64;
    let mut w = Window::open(path, window, false).map_err(|e| at(path, e))?;
    let mut b = [0u8; 1];
    for _ in 0..3 {
        let before = w.setups;
        let t = Instant::now();
        let mut o = 0;
        while o < size {
            w.read_at(o, &mut b).map_err(|e| at(path, e))?;
            o += SLOT;
        }
        let rate = (w.setups - before) as f64 / t.elapsed().as_secs_f64();
        best = best.max(rate);
    }
    Ok(best)
}
