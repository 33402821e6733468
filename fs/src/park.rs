//! Parking requests that must wait for a seal recall, without holding a worker thread.
//!
//! A core call that conflicts with a breakable seal or a mapping pin returns
//! `Error::WouldWait`. A transport hands such a request here with a closure that retries it
//! and one that sends the reply; the first attempt runs in the worker thread, and if it
//! must wait the request is parked and the worker is free again — so the holder's UNSEAL or
//! REMOVEMAPPING is served even with `threads=1`. One background thread retries parked
//! requests whenever seals change (the core's seal hook) or a recall deadline passes (when
//! the core revokes), delivers `POLLPRI` to recalled holders, and ends the quarantine of
//! window hosts that exited.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::filesystem::Filesystem;

type Retry = Box<dyn FnMut() -> bool + Send>;

/// Wakes one poller: the transport sends it its notification (over FUSE, the kernel poll
/// handle the POLL request carried).
pub type Notify = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

/// The parked requests and poll registrations of one mount.
pub struct Parker {
    fs: Arc<Filesystem>,
    parked: Mutex<Vec<Retry>>,
    polls: Mutex<HashMap<u64, Notify>>,
    kicked: Mutex<bool>,
    wake: Condvar,
}

impl Parker {
    /// Starts the parker of `fs` (one background thread, which ends with the mount).
    pub fn start(fs: Arc<Filesystem>) -> Arc<Parker> {
        let p = Arc::new(Parker {
            fs: fs.clone(),
            parked: Mutex::new(Vec::new()),
            polls: Mutex::new(HashMap::new()),
            kicked: Mutex::new(false),
            wake: Condvar::new(),
        });
        let weak: Weak<Parker> = Arc::downgrade(&p);
        let hook = weak.clone();
        fs.add_seal_hook(move || {
            if let Some(p) = hook.upgrade() {
                p.kick_if_needed();
            }
        });
        let spawned = std::thread::Builder::new()
            .name("sealfs-recall".into())
            .spawn(move || {
                while let Some(p) = weak.upgrade() {
                    p.tick();
                    p.sleep();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the recall thread; recalls will not be timed out");
        }
        p
    }

    /// Wakes the thread only when it has something to do: parked requests to retry, or
    /// recalls to notify and time. A seal released with nothing waiting on it (the common
    /// UNSEAL) then costs no wake-up of another thread.
    fn kick_if_needed(&self) {
        if !self.parked.lock().is_empty() || self.fs.recalls_in_flight() {
            self.kick();
        }
    }

    fn kick(&self) {
        *self.kicked.lock() = true;
        self.wake.notify_one();
    }

    /// Sleeps until kicked, the next recall deadline, or a short poll interval (for the
    /// quarantine's exit watch).
    fn sleep(&self) {
        // The deadline is read before `kicked` is locked: the core is never called with a
        // transport lock held (a kick could come from inside the core meanwhile: it sets
        // `kicked`, and the wait below returns at once).
        let now = self.fs.clock_ns();
        let mut wait = Duration::from_millis(200);
        if let Some(d) = self.fs.next_seal_deadline() {
            wait = wait.min(Duration::from_nanos(d.saturating_sub(now)) + Duration::from_millis(1));
        }
        let mut k = self.kicked.lock();
        if !*k {
            self.wake.wait_for(&mut k, wait);
        }
        *k = false;
    }

    fn tick(&self) {
        // Recalls are delivered before anything that can take long (a revocation pass, a
        // retried copy of up to 1 GiB) and again after each retry: a holder must hear of
        // its recall well before the deadline, not after it.
        self.deliver_notifications();
        self.fs.expire_seals();
        self.fs.reap_quarantine();
        self.deliver_notifications();
        let mut work = std::mem::take(&mut *self.parked.lock());
        work.retain_mut(|retry| {
            let done = retry();
            self.deliver_notifications();
            !done
        });
        if !work.is_empty() {
            self.parked.lock().extend(work);
        }
    }

    /// Runs `attempt`; if it must wait for a recall, parks it and retries it later. `reply`
    /// gets the final result exactly once.
    pub fn run<T: 'static>(
        &self,
        mut attempt: impl FnMut() -> Result<T> + Send + 'static,
        reply: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        match attempt() {
            Err(Error::WouldWait { ino, .. }) => {
                tracing::debug!(ino, "request parked until a recall ends");
                let mut reply = Some(reply);
                self.parked.lock().push(Box::new(move || match attempt() {
                    Err(Error::WouldWait { .. }) => false,
                    r => {
                        if let Some(f) = reply.take() {
                            f(r);
                        }
                        true
                    }
                }));
                self.kick();
            }
            r => reply(r),
        }
    }

    fn deliver_notifications(&self) {
        for holder in self.fs.take_notifications() {
            self.notify(holder);
        }
    }

    /// Wakes the poller of `holder`, if one is registered (once: the kernel polls again).
    fn notify(&self, holder: u64) {
        let n = self.polls.lock().remove(&holder);
        if let Some(n) = n {
            if let Err(e) = n() {
                tracing::debug!(error = %e, holder, "poll notification not delivered");
            }
        }
    }

    /// Answers a POLL of `fh`: whether a recall is pending (`recalled` asks the core). When
    /// the kernel wants a notification, `notify` is registered *before* the question: a
    /// recall that lands after the answer "no" finds the registration and wakes the poller;
    /// asking first would let a recall slip in between and find none, leaving the holder
    /// asleep until `break_timeout` revokes its seal.
    pub fn poll(&self, fh: u64, notify: Option<Notify>, recalled: impl FnOnce() -> bool) -> bool {
        if let Some(n) = notify {
            self.polls.lock().insert(fh, n);
        }
        recalled()
    }

    /// Forgets `fh` (its last close).
    pub fn forget(&self, fh: u64) {
        self.polls.lock().remove(&fh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::sim::SimDevice;
    use crate::filesystem::{mkfs, MkfsOptions, MountOptions};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn parker() -> Arc<Parker> {
        let dev = SimDevice::new(16 << 20, true);
        mkfs(&dev, MkfsOptions::default()).unwrap();
        let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
        Parker::start(Arc::new(fs))
    }

    fn counter() -> (Arc<AtomicU32>, Notify) {
        let n = Arc::new(AtomicU32::new(0));
        let m = n.clone();
        let f: Notify = Box::new(move || {
            m.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        (n, f)
    }

    /// The interleaving that lost wakeups: the core answers "no recall", and before the
    /// POLL returns, a recall lands and the recall thread delivers it. The registration
    /// must already be there to receive it.
    #[test]
    fn a_recall_between_the_check_and_the_reply_is_notified() {
        let p = parker();
        let (woken, n) = counter();
        let recalled = p.poll(7, Some(n), || {
            p.notify(7);
            false
        });
        assert!(!recalled);
        assert_eq!(woken.load(Ordering::SeqCst), 1, "the poller was woken");
    }

    #[test]
    fn a_pending_recall_is_answered_and_a_later_one_notified_once() {
        let p = parker();
        let (woken, n) = counter();
        assert!(p.poll(3, Some(n), || true));
        p.notify(3);
        p.notify(3);
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        let (other, n) = counter();
        assert!(!p.poll(4, Some(n), || false));
        p.forget(4);
        p.notify(4);
        assert_eq!(
            other.load(Ordering::SeqCst),
            0,
            "a closed file is not notified"
        );
    }
}
