//! A simulated device for crash tests: memory plus a trace of every store, flush and fence.
//!
//! `CrashState` replays a trace event by event and can produce, at any point, the image a
//! power cut would leave: everything flushed and fenced is there; stores not yet durable
//! are dropped, kept, or kept as a random subset of 8-byte words (torn writes). Flushes
//! cover whole 64-byte cache lines, as `clwb` does.

use parking_lot::Mutex;

use super::persist::CACHE_LINE;
use super::{check_range, Device, DeviceKind};
use crate::error::Result;

/// One recorded device event.
#[derive(Clone, Debug)]
pub enum Event {
    /// Bytes stored at an offset.
    Store {
        /// Offset.
        off: u64,
        /// Bytes.
        data: Vec<u8>,
    },
    /// A flush of a range.
    Flush {
        /// Offset.
        off: u64,
        /// Length.
        len: u64,
    },
    /// A fence.
    Fence,
    /// A marker the test inserted (e.g. "operation 7 replied").
    Mark(u64),
}

struct Inner {
    mem: Vec<u8>,
    trace: Option<Vec<Event>>,
}

/// An in-memory device that optionally records a trace.
pub struct SimDevice {
    inner: Mutex<Inner>,
    size: u64,
    durable_writes: bool,
}

impl SimDevice {
    /// A zeroed device. `durable_writes` selects device-DAX (true) or image-file (false)
    /// data durability rules.
    pub fn new(size: u64, durable_writes: bool) -> SimDevice {
        Self::from_image(vec![0; size as usize], durable_writes)
    }

    /// A device holding `image`.
    pub fn from_image(image: Vec<u8>, durable_writes: bool) -> SimDevice {
        let size = image.len() as u64;
        SimDevice {
            inner: Mutex::new(Inner {
                mem: image,
                trace: None,
            }),
            size,
            durable_writes,
        }
    }

    /// Starts recording events (clears any earlier trace).
    pub fn start_trace(&self) {
        self.inner.lock().trace = Some(Vec::new());
    }

    /// Stops recording and returns the trace.
    pub fn take_trace(&self) -> Vec<Event> {
        self.inner.lock().trace.take().unwrap_or_default()
    }

    /// Inserts a marker into the trace.
    pub fn mark(&self, m: u64) {
        if let Some(t) = self.inner.lock().trace.as_mut() {
            t.push(Event::Mark(m));
        }
    }

    /// A copy of the current memory (every store kept).
    pub fn snapshot(&self) -> Vec<u8> {
        self.inner.lock().mem.clone()
    }

    fn record(&self, inner: &mut Inner, e: Event) {
        if let Some(t) = inner.trace.as_mut() {
            t.push(e);
        }
    }
}

impl Device for SimDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn kind(&self) -> DeviceKind {
        DeviceKind::Sim
    }
    fn align(&self) -> u64 {
        4096
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        check_range(self.size, off, buf.len() as u64)?;
        let g = self.inner.lock();
        buf.copy_from_slice(&g.mem[off as usize..off as usize + buf.len()]);
        Ok(())
    }
    fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        check_range(self.size, off, data.len() as u64)?;
        let mut g = self.inner.lock();
        g.mem[off as usize..off as usize + data.len()].copy_from_slice(data);
        self.record(
            &mut g,
            Event::Store {
                off,
                data: data.to_vec(),
            },
        );
        Ok(())
    }
    fn zero(&self, off: u64, len: u64) -> Result<()> {
        self.write(off, &vec![0; len as usize])
    }
    fn flush(&self, off: u64, len: u64) -> Result<()> {
        check_range(self.size, off, len)?;
        let mut g = self.inner.lock();
        self.record(&mut g, Event::Flush { off, len });
        Ok(())
    }
    fn fence(&self) {
        let mut g = self.inner.lock();
        self.record(&mut g, Event::Fence);
    }
    fn durable_writes(&self) -> bool {
        self.durable_writes
    }
    fn flush_method(&self) -> &'static str {
        "simulated"
    }
}

/// How stores that were not yet durable at the cut survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Survival {
    /// None of them.
    Dropped,
    /// All of them (what the CPU had written when power went).
    Kept,
    /// A random subset of their 8-byte words (seeded).
    Torn(u64),
}

/// Replays a trace and produces post-crash images.
pub struct CrashState {
    durable: Vec<u8>,
    // Stores not yet flushed (offset, bytes), in order.
    pending: Vec<(u64, Vec<u8>)>,
    // Stores flushed but not yet fenced.
    flushed: Vec<(u64, Vec<u8>)>,
}

impl CrashState {
    /// Starts from a fully durable image.
    pub fn new(base: Vec<u8>) -> CrashState {
        CrashState {
            durable: base,
            pending: Vec::new(),
            flushed: Vec::new(),
        }
    }

    /// Applies one event.
    pub fn step(&mut self, e: &Event) {
        match e {
            Event::Store { off, data } => self.pending.push((*off, data.clone())),
            Event::Flush { off, len } => {
                let start = off & !(CACHE_LINE - 1);
                let end = (off + len).div_ceil(CACHE_LINE) * CACHE_LINE;
                let mut keep = Vec::new();
                for (o, d) in self.pending.drain(..) {
                    let (s, e2) = (o, o + d.len() as u64);
                    let (is, ie) = (s.max(start), e2.min(end));
                    if is >= ie {
                        keep.push((o, d));
                        continue;
                    }
                    if s < is {
                        keep.push((s, d[..(is - s) as usize].to_vec()));
                    }
                    self.flushed
                        .push((is, d[(is - s) as usize..(ie - s) as usize].to_vec()));
                    if ie < e2 {
                        keep.push((ie, d[(ie - s) as usize..].to_vec()));
                    }
                }
                self.pending = keep;
            }
            Event::Fence => {
                for (o, d) in self.flushed.drain(..) {
                    self.durable[o as usize..o as usize + d.len()].copy_from_slice(&d);
                }
            }
            Event::Mark(_) => {}
        }
    }

    /// The image a power cut now would leave.
    pub fn image(&self, how: Survival) -> Vec<u8> {
        let mut img = self.durable.clone();
        let mut rng = match how {
            Survival::Dropped => return img,
            Survival::Kept => None,
            Survival::Torn(seed) => Some(seed | 1),
        };
        // Flushed and pending stores in program order are interleaved by offset only; for
        // the image what matters is which words land, and later stores win when both do.
        for (o, d) in self.flushed.iter().chain(self.pending.iter()) {
            match rng.as_mut() {
                None => img[*o as usize..*o as usize + d.len()].copy_from_slice(d),
                Some(state) => {
                    // Words are 8-byte aligned device words; each survives or not.
                    let mut pos = *o;
                    let end = o + d.len() as u64;
                    while pos < end {
                        let word_end = ((pos / 8) + 1) * 8;
                        let piece_end = word_end.min(end);
                        *state ^= *state << 13;
                        *state ^= *state >> 7;
                        *state ^= *state << 17;
                        if *state & 1 == 1 {
                            let a = (pos - o) as usize;
                            let b = (piece_end - o) as usize;
                            img[pos as usize..piece_end as usize].copy_from_slice(&d[a..b]);
                        }
                        pos = piece_end;
                    }
                }
            }
        }
        img
    }

    /// True when some stores are not yet durable.
    pub fn has_volatile(&self) -> bool {
        !self.pending.is_empty() || !self.flushed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_then_fence_makes_durable() {
        let mut c = CrashState::new(vec![0; 256]);
        c.step(&Event::Store {
            off: 0,
            data: vec![1; 8],
        });
        c.step(&Event::Store {
            off: 128,
            data: vec![2; 8],
        });
        assert_eq!(c.image(Survival::Dropped)[0], 0);
        c.step(&Event::Flush { off: 0, len: 8 });
        assert_eq!(c.image(Survival::Dropped)[0], 0, "flushed but not fenced");
        c.step(&Event::Fence);
        let img = c.image(Survival::Dropped);
        assert_eq!((img[0], img[128]), (1, 0));
        assert_eq!(c.image(Survival::Kept)[128], 2);
    }
}
