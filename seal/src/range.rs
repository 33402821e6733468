//! Half-open byte ranges of a file and their overlap rule.
//!
//! The one definition of "a change touches a seal" for ranges lives here. It
//! must not know about seal kinds or change kinds (the `RemoveLast` exception
//! is decided by the table).

/// A half-open byte range `[start, end)` of one file.
///
/// `end == u64::MAX` means "to the end of the file, whatever its size",
/// including any later growth, so [`ByteRange::WHOLE`] covers the whole file.
/// A range with `start >= end` is empty: it overlaps nothing. Seals must be
/// non-empty; change ranges may be empty (a no-op change conflicts with no
/// seal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteRange {
    /// First byte in the range.
    pub start: u64,
    /// One past the last byte; `u64::MAX` means to end of file.
    pub end: u64,
}

impl ByteRange {
    /// The whole file, `[0, u64::MAX)`.
    pub const WHOLE: ByteRange = ByteRange {
        start: 0,
        end: u64::MAX,
    };

    /// `[start, end)`, unchecked (an empty or reversed range is allowed here;
    /// [`SealTable::seal`](crate::SealTable::seal) refuses it).
    pub const fn new(start: u64, end: u64) -> Self {
        ByteRange { start, end }
    }

    /// `[start, u64::MAX)`: from `start` to the end of the file, growth included.
    pub const fn to_eof(start: u64) -> Self {
        ByteRange {
            start,
            end: u64::MAX,
        }
    }

    /// True when the range holds no byte (`start >= end`).
    pub const fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// True when the range reaches the end of the file (`end == u64::MAX`).
    pub const fn is_to_eof(&self) -> bool {
        self.end == u64::MAX
    }

    /// True when both ranges are non-empty and share at least one byte.
    /// Touching ranges (`a.end == b.start`) do not overlap.
    pub const fn overlaps(&self, other: &ByteRange) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_ranges_do_not_overlap() {
        let a = ByteRange::new(0, 10);
        let b = ByteRange::new(10, 20);
        assert!(!a.overlaps(&b));
        assert!(!b.overlaps(&a));
        assert!(a.overlaps(&ByteRange::new(9, 10)));
    }

    #[test]
    fn empty_and_reversed_overlap_nothing() {
        let w = ByteRange::WHOLE;
        assert!(!w.overlaps(&ByteRange::new(5, 5)));
        assert!(!w.overlaps(&ByteRange::new(6, 5)));
        assert!(!ByteRange::new(5, 5).overlaps(&ByteRange::new(5, 5)));
    }

    #[test]
    fn to_eof_covers_the_last_bytes() {
        let s = ByteRange::to_eof(100);
        assert!(s.is_to_eof());
        assert!(s.overlaps(&ByteRange::new(u64::MAX - 1, u64::MAX)));
        assert!(!s.overlaps(&ByteRange::new(0, 100)));
        assert!(ByteRange::WHOLE.overlaps(&ByteRange::new(0, 1)));
    }
}
