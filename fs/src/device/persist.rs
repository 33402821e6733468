//! The one place that decides how bytes become durable.
//!
//! * `Writeback` picks the cache-line write-back instruction at start-up from CPUID
//!   (`clwb`, else `clflushopt`, else `clflush`) and `writeback_range` + `sfence` make stores
//!   to device-DAX memory persistent (CPU caches are write-back; only eADR/CXL GPF platforms
//!   make them persistent).
//! * `msync_range` makes stores to a mapped image file durable (the page cache is written to
//!   the file).
//! * `publish` is the ordering primitive every on-media update uses: write, flush, fence;
//!   `persist` makes earlier stores to one range durable.
//! * `Batch` is the data path's form: several ranges written back, then one fence.
//!
//! Nothing else in sealfs issues flushes or fences or decides their order: the devices
//! implement `Device::flush` and `Device::fence` with the primitives here, and everything
//! above `device` (the log, checkpoints, the data path, fsync) calls only `publish`,
//! `persist` and `Batch`.

use std::sync::OnceLock;

use crate::device::Device;
use crate::error::Result;

/// Cache line size assumed for write-back loops (every x86-64 CPU sealfs runs on).
pub const CACHE_LINE: u64 = 64;

/// Which write-back instruction this CPU offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writeback {
    /// `clwb`: write back, keep the line cached.
    Clwb,
    /// `clflushopt`: write back and evict, weakly ordered.
    Clflushopt,
    /// `clflush`: write back and evict, strongly ordered.
    Clflush,
    /// Not x86-64: no user-space write-back instruction is used; `msync` only.
    None,
}

impl Writeback {
    /// The best instruction this CPU has (detected once).
    pub fn detect() -> Writeback {
        static W: OnceLock<Writeback> = OnceLock::new();
        *W.get_or_init(detect_cpu)
    }

    /// Name as printed by `sealfs stat`.
    pub fn name(self) -> &'static str {
        match self {
            Writeback::Clwb => "clwb",
            Writeback::Clflushopt => "clflushopt",
            Writeback::Clflush => "clflush",
            Writeback::None => "none",
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_cpu() -> Writeback {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // Leaf 7 is only read when the maximum leaf reported by leaf 0 includes it.
    let l0 = __cpuid(0);
    let leaf1 = __cpuid(1);
    let leaf7 = if l0.eax >= 7 {
        Some(__cpuid_count(7, 0))
    } else {
        None
    };
    if let Some(l7) = leaf7 {
        if l7.ebx & (1 << 24) != 0 {
            return Writeback::Clwb;
        }
        if l7.ebx & (1 << 23) != 0 {
            return Writeback::Clflushopt;
        }
    }
    if leaf1.edx & (1 << 19) != 0 {
        Writeback::Clflush
    } else {
        Writeback::None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_cpu() -> Writeback {
    Writeback::None
}

/// Writes back every cache line of `[ptr, ptr+len)` with `how`. Does not fence.
///
/// # Safety
/// `ptr..ptr+len` must lie inside one live mapping.
pub unsafe fn writeback_range(how: Writeback, ptr: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    let start = (ptr as usize) & !(CACHE_LINE as usize - 1);
    let end = ptr as usize + len;
    let mut p = start;
    while p < end {
        // SAFETY: the caller guarantees the range is mapped; each line touched starts at or
        // before `ptr` only by rounding down within the same page, which is mapped too.
        unsafe { writeback_line(how, p as *const u8) };
        p += CACHE_LINE as usize;
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn writeback_line(how: Writeback, p: *const u8) {
    use std::arch::asm;
    // SAFETY: the caller guarantees `p` points into a live mapping; these instructions only
    // write back cache lines and never fault on a mapped address.
    unsafe {
        match how {
            Writeback::Clwb => asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags)),
            Writeback::Clflushopt => {
                asm!("clflushopt [{0}]", in(reg) p, options(nostack, preserves_flags))
            }
            Writeback::Clflush => {
                asm!("clflush [{0}]", in(reg) p, options(nostack, preserves_flags))
            }
            Writeback::None => {}
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn writeback_line(_how: Writeback, _p: *const u8) {}

/// Orders all earlier write-backs and stores before any later store (`sfence`).
pub fn sfence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no memory-safety preconditions.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
    #[cfg(not(target_arch = "x86_64"))]
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// `msync(MS_SYNC)` of the pages covering `[off, off+len)` of a mapping at `base`.
///
/// # Safety
/// `base` must be the start of a live shared mapping at least `off + len` bytes long.
pub unsafe fn msync_range(base: *mut u8, off: u64, len: u64) -> std::io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let page = page_size();
    let start = off & !(page - 1);
    let end = off + len;
    // SAFETY: the range is page-aligned and inside the mapping per the caller's guarantee.
    let rc = unsafe {
        libc::msync(
            base.add(start as usize) as *mut libc::c_void,
            (end - start) as usize,
            libc::MS_SYNC,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The system's page size (what `msync` aligns to), read once.
fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf takes a constant and returns a number.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(n)
            .ok()
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// Writes `bytes` at `off`, flushes them and fences: when this returns they are durable.
pub fn publish(dev: &dyn Device, off: u64, bytes: &[u8]) -> Result<()> {
    dev.write(off, bytes)?;
    dev.flush(off, bytes.len() as u64)?;
    dev.fence();
    Ok(())
}

/// Makes earlier stores to `[off, off+len)` durable.
pub fn persist(dev: &dyn Device, off: u64, len: u64) -> Result<()> {
    dev.flush(off, len)?;
    dev.fence();
    Ok(())
}

/// Ranges whose earlier stores become durable together: each [`Batch::flush`] starts
/// writing one back, and [`Batch::fence`] orders them all at once (one fence for a whole
/// write or `fsync`, instead of one per range).
#[must_use = "flushed ranges are durable only after `fence`"]
pub struct Batch<'a> {
    dev: &'a dyn Device,
}

impl<'a> Batch<'a> {
    /// An empty batch on `dev`.
    pub fn new(dev: &'a dyn Device) -> Batch<'a> {
        Batch { dev }
    }

    /// Starts making earlier stores to `[off, off+len)` durable. Not durable until
    /// [`Batch::fence`].
    pub fn flush(&self, off: u64, len: u64) -> Result<()> {
        self.dev.flush(off, len)
    }

    /// Zeroes `[off, off+len)` and starts making the zeroes durable.
    pub fn zero(&self, off: u64, len: u64) -> Result<()> {
        self.dev.zero(off, len)?;
        self.dev.flush(off, len)
    }

    /// Fences: every range flushed so far is durable when this returns.
    pub fn fence(self) {
        self.dev.fence();
    }
}
