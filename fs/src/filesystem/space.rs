//! Space: the block allocator and the quarantine that keeps back the freed blocks a window
//! host may still have mapped (a revoked mapping pin, or a mapping whose file was closed,
//! until the host acknowledges or exits).

use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::sync::{Mutex, Rank};
use sealfs_alloc::{Allocator, Extent};

/// The space of a mounted filesystem. Owns ranks 7 (`WindowHolds`) and 9 (`Alloc`) of the
/// lock order ([`crate::sync`]): a free takes the holds first, keeps back what they cover,
/// then takes the allocator for the rest; nothing else is taken while either is held.
pub(crate) struct Space {
    pub(super) alloc: Mutex<Allocator>,
    holds: Mutex<Vec<Hold>>,
}

/// Blocks a host may still map; freed ones are held back from the allocator.
pub(super) struct Hold {
    /// The file handle the mapping was set up through.
    pub(super) holder: u64,
    /// The mapping's slot in the host's window.
    pub(super) moffset: u64,
    /// The host process, when it could be opened.
    pub(super) pidfd: Option<Arc<OwnedFd>>,
    /// The blocks the host may map.
    pub(super) at_risk: Vec<Extent>,
    /// Those of them freed since, kept out of the allocator.
    pub(super) held: Vec<Extent>,
}

impl Space {
    /// The space of a filesystem just loaded, with nothing in quarantine.
    pub(super) fn new(alloc: Allocator) -> Space {
        Space {
            alloc: Mutex::new(Rank::Alloc, alloc),
            holds: Mutex::new(Rank::WindowHolds, Vec::new()),
        }
    }

    /// Frees `e`, keeping back the blocks under quarantine.
    pub(super) fn free(&self, e: Extent) -> std::result::Result<(), String> {
        let mut holds = self.holds.lock();
        let mut rest = vec![e];
        for h in holds.iter_mut() {
            let mut next = Vec::new();
            for piece in rest {
                let mut cut = vec![piece];
                for r in &h.at_risk {
                    let mut out = Vec::new();
                    for c in cut {
                        let (s, t) = (c.start.max(r.start), c.end().min(r.end()));
                        if s >= t {
                            out.push(c);
                            continue;
                        }
                        h.held.push(Extent {
                            start: s,
                            len: t - s,
                        });
                        if c.start < s {
                            out.push(Extent {
                                start: c.start,
                                len: s - c.start,
                            });
                        }
                        if t < c.end() {
                            out.push(Extent {
                                start: t,
                                len: c.end() - t,
                            });
                        }
                    }
                    cut = out;
                }
                next.extend(cut);
            }
            rest = next;
        }
        drop(holds);
        let mut a = self.alloc.lock();
        for piece in rest {
            a.free(piece).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Starts quarantining what `h` says a host may map.
    pub(super) fn hold(&self, h: Hold) {
        self.holds.lock().push(h);
    }

    /// Ends the holds `pred` picks: their held blocks go back to the allocator.
    pub(super) fn release_holds(&self, pred: impl Fn(&Hold) -> bool) {
        let gone: Vec<Hold> = {
            let mut holds = self.holds.lock();
            let (gone, keep): (Vec<Hold>, Vec<Hold>) = holds.drain(..).partition(|h| pred(h));
            *holds = keep;
            gone
        };
        let mut a = self.alloc.lock();
        for h in gone {
            for e in h.held {
                if let Err(err) = a.free(e) {
                    tracing::error!(error = %err, "returning quarantined blocks failed");
                }
            }
        }
    }

    /// Whether nothing is under quarantine.
    pub(super) fn no_holds(&self) -> bool {
        self.holds.lock().is_empty()
    }

    /// Blocks held back in quarantine now.
    pub(super) fn quarantined_blocks(&self) -> u64 {
        self.holds
            .lock()
            .iter()
            .flat_map(|h| h.held.iter())
            .map(|e| e.len)
            .sum()
    }
}
