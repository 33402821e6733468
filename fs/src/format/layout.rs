//! Where each region lives on the device, computed once at mkfs and recorded in the
//! superblock.
//!
//! ```text
//! 0        superblock slot A   (4 KiB)
//! 4 KiB    superblock slot B   (4 KiB)
//! 8 KiB    metadata log        (log_len)
//! ...      checkpoint area 0   (ckpt_len)
//! ...      checkpoint area 1   (ckpt_len)
//! data_off data blocks         (data_blocks * block_size), data_off 2 MiB-aligned
//! ```

use super::FormatError;

/// Size of one superblock slot.
pub const SB_SLOT_SIZE: u64 = 4096;
/// Offset of the log region.
pub const LOG_OFF: u64 = 2 * SB_SLOT_SIZE;
/// 2 MiB: the mapping granularity of a 2 MiB-aligned device-DAX device.
pub const HUGE: u64 = 2 << 20;
/// Smallest device mkfs accepts.
pub const MIN_DEVICE: u64 = 1 << 20;
/// Smallest log region.
pub const MIN_LOG: u64 = 64 << 10;
/// Smallest checkpoint area.
pub const MIN_CKPT: u64 = 64 << 10;

/// Region offsets and sizes of one filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Device size in bytes.
    pub device_size: u64,
    /// Allocation unit in bytes (4 KiB or 2 MiB).
    pub block_size: u64,
    /// Metadata log offset.
    pub log_off: u64,
    /// Metadata log length.
    pub log_len: u64,
    /// Checkpoint area offsets.
    pub ckpt_off: [u64; 2],
    /// Capacity of each checkpoint area.
    pub ckpt_len: u64,
    /// First data block's offset.
    pub data_off: u64,
    /// Number of data blocks.
    pub data_blocks: u64,
}

fn round_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Options that shape the layout.
#[derive(Clone, Copy, Debug, Default)]
pub struct LayoutOptions {
    /// Block size in bytes (4096 or 2 MiB); 0 = 4096.
    pub block_size: u64,
    /// Log length override in bytes; 0 = default (device/64, 64 KiB..64 MiB).
    pub log_len: u64,
    /// Checkpoint area length override; 0 = default (device/32, at least 64 KiB).
    pub ckpt_len: u64,
}

impl Layout {
    /// Computes the layout for a device of `device_size` bytes.
    pub fn compute(device_size: u64, opts: LayoutOptions) -> Result<Layout, FormatError> {
        let block_size = if opts.block_size == 0 {
            4096
        } else {
            opts.block_size
        };
        if block_size != 4096 && block_size != HUGE {
            return Err(FormatError::Invalid {
                what: "block size",
                value: block_size,
            });
        }
        if device_size < MIN_DEVICE {
            return Err(FormatError::Invalid {
                what: "device size",
                value: device_size,
            });
        }
        let log_len = if opts.log_len != 0 {
            round_up(opts.log_len.max(MIN_LOG), 4096)
        } else {
            round_up((device_size / 64).clamp(MIN_LOG, 64 << 20), 4096)
        };
        let ckpt_len = if opts.ckpt_len != 0 {
            round_up(opts.ckpt_len.max(MIN_CKPT), 4096)
        } else {
            round_up((device_size / 32).max(MIN_CKPT), 4096)
        };
        let ckpt0 = LOG_OFF + log_len;
        let ckpt1 = ckpt0 + ckpt_len;
        let meta_end = ckpt1 + ckpt_len;
        // Data starts 2 MiB-aligned so that windows on a 2 MiB device map whole pages; tiny
        // test devices only align to the block size.
        let align = if device_size >= 64 << 20 {
            HUGE.max(block_size)
        } else {
            block_size
        };
        let data_off = round_up(meta_end, align);
        if data_off >= device_size {
            return Err(FormatError::Invalid {
                what: "device size (too small for metadata)",
                value: device_size,
            });
        }
        let data_blocks = (device_size - data_off) / block_size;
        if data_blocks == 0 {
            return Err(FormatError::Invalid {
                what: "device size (no data blocks)",
                value: device_size,
            });
        }
        Ok(Layout {
            device_size,
            block_size,
            log_off: LOG_OFF,
            log_len,
            ckpt_off: [ckpt0, ckpt1],
            ckpt_len,
            data_off,
            data_blocks,
        })
    }

    /// Checks a layout read from a superblock against itself and the device.
    pub fn validate(&self, actual_device_size: u64) -> Result<(), FormatError> {
        let bad = |what, value| Err(FormatError::Invalid { what, value });
        if self.block_size != 4096 && self.block_size != HUGE {
            return bad("block size", self.block_size);
        }
        if self.device_size > actual_device_size {
            return bad("device size (larger than the device)", self.device_size);
        }
        if self.log_off != LOG_OFF || self.log_len < MIN_LOG || !self.log_len.is_multiple_of(4096) {
            return bad("log region", self.log_len);
        }
        let log_end = self.log_off.checked_add(self.log_len);
        if log_end != Some(self.ckpt_off[0])
            || self.ckpt_len < MIN_CKPT
            || !self.ckpt_len.is_multiple_of(4096)
        {
            return bad("checkpoint area", self.ckpt_off[0]);
        }
        if self.ckpt_off[0].checked_add(self.ckpt_len) != Some(self.ckpt_off[1]) {
            return bad("checkpoint area", self.ckpt_off[1]);
        }
        let meta_end = match self.ckpt_off[1].checked_add(self.ckpt_len) {
            Some(v) => v,
            None => return bad("checkpoint area", self.ckpt_len),
        };
        if self.data_off < meta_end || !self.data_off.is_multiple_of(self.block_size) {
            return bad("data offset", self.data_off);
        }
        let data_len = self.data_blocks.checked_mul(self.block_size);
        match data_len.and_then(|l| l.checked_add(self.data_off)) {
            Some(end) if end <= self.device_size && self.data_blocks > 0 => Ok(()),
            _ => bad("data block count", self.data_blocks),
        }
    }

    /// Device offset of data block `b`.
    pub fn block_offset(&self, b: u64) -> u64 {
        self.data_off + b * self.block_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_is_valid_and_aligned() {
        for size in [1u64 << 20, 4 << 20, 64 << 20, 1 << 30, 100 << 30] {
            let l = Layout::compute(size, LayoutOptions::default()).unwrap();
            l.validate(size).unwrap();
            if size >= 64 << 20 {
                assert_eq!(l.data_off % HUGE, 0);
            }
        }
    }

    #[test]
    fn rejects_bad_options() {
        assert!(Layout::compute(
            1 << 30,
            LayoutOptions {
                block_size: 8192,
                ..Default::default()
            }
        )
        .is_err());
        assert!(Layout::compute(4096, LayoutOptions::default()).is_err());
    }
}
