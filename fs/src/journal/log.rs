//! The metadata log writer: appends one checksummed record per operation and makes it
//! durable before returning, under one mutex so that log order is commit order.

use super::Retry;
use crate::device::persist;
use crate::device::Device;
use crate::error::Error;
use crate::format::record::{Op, REC_MAX};

/// Append position and sequence numbers of the live log.
#[derive(Debug)]
pub struct Log {
    /// Region offset on the device.
    pub off: u64,
    /// Region length.
    pub len: u64,
    /// Where records start in the region (after the log header, format version 3 on).
    pub start: u64,
    /// End of the records since the last checkpoint (region offset, from `start` on).
    pub tail: u64,
    /// Sequence number of the next record.
    pub next_seq: u64,
    /// Records appended since mount (for `sealfs stat`).
    pub appended: u64,
}

impl Log {
    /// Appends `op` and makes it durable. [`Retry::LogFull`] when it does not fit (the caller
    /// checkpoints and retries; nothing was written).
    pub(crate) fn append(&mut self, dev: &dyn Device, op: &Op) -> Result<u64, Retry> {
        let rec = op.encode_record(self.next_seq);
        if rec.len() > REC_MAX {
            return Err(Error::TooBig.into());
        }
        if self.tail + rec.len() as u64 > self.len {
            return Err(Retry::LogFull);
        }
        persist::publish(dev, self.off + self.tail, &rec)?;
        self.tail += rec.len() as u64;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.appended += 1;
        Ok(seq)
    }

    /// Record bytes since the last checkpoint.
    pub fn used(&self) -> u64 {
        self.tail - self.start
    }

    /// Appends `ops` in order, each its own record, after checking that all of them fit:
    /// [`Retry::LogFull`] (nothing written) when they do not (`TooBig` when they never could).
    /// Returns how many were written and the error that stopped it: a device error after
    /// the first record leaves a durable prefix, which the caller must apply.
    pub(crate) fn append_all(
        &mut self,
        dev: &dyn Device,
        ops: &[Op],
    ) -> (usize, Result<(), Retry>) {
        let mut recs = Vec::with_capacity(ops.len());
        let mut total = 0u64;
        for (i, op) in ops.iter().enumerate() {
            let rec = op.encode_record(self.next_seq + i as u64);
            if rec.len() > REC_MAX {
                return (0, Err(Error::TooBig.into()));
            }
            total += rec.len() as u64;
            recs.push(rec);
        }
        if total > self.len - self.start {
            return (0, Err(Error::TooBig.into()));
        }
        if self.tail + total > self.len {
            return (0, Err(Retry::LogFull));
        }
        for (i, rec) in recs.iter().enumerate() {
            if let Err(e) = persist::publish(dev, self.off + self.tail, rec) {
                return (i, Err(e.into()));
            }
            self.tail += rec.len() as u64;
            self.next_seq += 1;
            self.appended += 1;
        }
        (recs.len(), Ok(()))
    }

    /// Fraction of the log in use, 0..=1.
    pub fn fill(&self) -> f64 {
        self.used() as f64 / (self.len - self.start) as f64
    }
}
