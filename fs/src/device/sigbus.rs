//! Surviving a device that shrinks under its mapping.
//!
//! An image file truncated while mounted makes every access to the mapping past its new
//! end raise SIGBUS, which would kill the daemon. Checking the file's size before each
//! access cannot close the race (the file can shrink during the copy), so a SIGBUS handler
//! recovers instead: when the faulting address lies inside a registered device mapping, it
//! maps an anonymous zero page over the faulting page (`mmap(MAP_FIXED)`, an
//! async-signal-safe system call) and marks that mapping failed; the interrupted copy then
//! completes on the zero page and returns. Every device access checks the mark after its
//! copy (and before, once set), so the access that faulted, and every later one, fails
//! with EIO — the daemon keeps serving and says why in its log. Faults outside every
//! registered mapping go to the handler that was installed before (Rust's stack-overflow
//! handler, or the default action).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// Mappings one process can register (device mappings: one per open device).
const SLOTS: usize = 64;

/// One registered mapping: `[base, base + len)`, and whether a SIGBUS hit it.
pub(crate) struct Slot {
    base: AtomicUsize,
    len: AtomicUsize,
    failed: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    base: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    failed: AtomicBool::new(false),
};

static REGISTRY: [Slot; SLOTS] = [EMPTY; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
/// The SIGBUS disposition before ours (a `libc::sigaction`, written once before ours is
/// installed and only read afterwards).
static mut PREVIOUS: Option<libc::sigaction> = None;

impl Slot {
    /// Has an access to this mapping faulted (the device shrank)?
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Marks the mapping failed without a fault (the device was seen to have shrunk).
    pub(crate) fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }
}

/// Registers `[base, base + len)`; `None` when every slot is taken (the mapping then
/// works as before, unprotected).
pub(crate) fn register(base: usize, len: usize) -> Option<&'static Slot> {
    INSTALL.call_once(install);
    for s in REGISTRY.iter() {
        if s.base
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            s.failed.store(false, Ordering::Release);
            s.len.store(len, Ordering::Release);
            s.base.store(base, Ordering::Release);
            return Some(s);
        }
    }
    tracing::warn!("too many device mappings: a shrinking device would kill this process");
    None
}

/// Gives the slot back (before the mapping is unmapped).
pub(crate) fn unregister(s: &Slot) {
    s.len.store(0, Ordering::Release);
    s.base.store(0, Ordering::Release);
}

fn install() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, Ordering::Relaxed);
    }
    // SAFETY: a zeroed sigaction is a valid "no handler" value to be filled in; the
    // previous disposition is stored before ours can run, and only read afterwards.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
            return;
        }
        PREVIOUS = Some(old);
        if libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) != 0 {
            tracing::warn!(
                "cannot install the SIGBUS handler: a shrinking device would kill this process"
            );
        }
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Only atomics and system calls here (async-signal-safe).
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for s in REGISTRY.iter() {
        let base = s.base.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Acquire);
        if base == 0 || base == usize::MAX || addr < base || addr - base >= len {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: replaces one page of our own device mapping (inside [base, base+len)) with
        // anonymous zero memory; nothing holds references into the mapping.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            s.failed.store(true, Ordering::Release);
            return;
        }
    }
    // Not ours: what would have happened without this handler.
    // SAFETY: PREVIOUS was written before this handler was installed.
    let prev = unsafe { *std::ptr::addr_of!(PREVIOUS) };
    match prev {
        Some(old)
            if old.sa_sigaction != libc::SIG_DFL
                && old.sa_sigaction != libc::SIG_IGN
                && old.sa_flags & libc::SA_SIGINFO != 0 =>
        {
            // SAFETY: calling the handler that was installed before ours, as the kernel
            // would have.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(old.sa_sigaction) };
            f(sig, info, ctx);
        }
        Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            // SAFETY: as above, a plain handler.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(old.sa_sigaction) };
            f(sig);
        }
        _ => {
            // SAFETY: back to the default action; returning re-runs the faulting access,
            // which then ends the process as SIGBUS always did.
            unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        }
    }
}
