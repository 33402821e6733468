//! The seal error enum and its errno mapping.
//!
//! This is the one place where a seal refusal becomes a Linux errno; nothing
//! else in sealfs may pick an errno for a seal decision. It must not depend on
//! `libc` (the crate is pure), so the x86_64 values are literal constants.

/// Linux errno values (x86_64, also the generic table) used by [`SealError::errno`].
mod errno {
    pub const EPERM: i32 = 1;
    pub const EBADF: i32 = 9;
    pub const EBUSY: i32 = 16;
    pub const EINVAL: i32 = 22;
    pub const ETXTBSY: i32 = 26;
    pub const ENOLCK: i32 = 37;
    pub const ENOLINK: i32 = 67;
}

/// Why a seal operation or an extent-map change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SealError {
    /// An unbreakable (temporary) seal covers the range, or a relocation met
    /// any seal or pin (`ETXTBSY`).
    #[error("extent map is sealed")]
    Busy,
    /// The inode's extent map is persistently immutable (`EPERM`).
    #[error("extent map is immutable")]
    NotPermitted,
    /// The holder already holds `max_seals_per_holder` seals, or the user
    /// `max_seals_per_user` (`ENOLCK`).
    #[error("too many seals held by this file handle or user")]
    TooMany,
    /// One of this holder's seals was revoked after a recall timed out; the
    /// holder stays fenced until it is released (`ENOLINK`).
    #[error("a seal of this file handle was revoked")]
    Revoked,
    /// The file handle lacks the access the seal kind needs: write for a
    /// temporary seal, read for a breakable seal or a mapping pin (`EBADF`).
    #[error("file handle not open for the access this seal needs")]
    BadAccess,
    /// The byte range is empty or reversed (`start >= end`) (`EINVAL`).
    #[error("invalid byte range")]
    Invalid,
    /// Unseal named no seal this holder has (`EINVAL`).
    #[error("no such seal")]
    NotFound,
    /// A new seal was asked for on an inode where a recall is in progress;
    /// refused so that the waiting operation cannot be starved (`EBUSY`).
    #[error("a recall is in progress on this file")]
    RecallPending,
}

impl SealError {
    /// The Linux errno (positive) this error is reported as.
    pub fn errno(&self) -> i32 {
        match self {
            SealError::Busy => errno::ETXTBSY,
            SealError::NotPermitted => errno::EPERM,
            SealError::TooMany => errno::ENOLCK,
            SealError::Revoked => errno::ENOLINK,
            SealError::BadAccess => errno::EBADF,
            SealError::Invalid | SealError::NotFound => errno::EINVAL,
            SealError::RecallPending => errno::EBUSY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_values() {
        assert_eq!(SealError::Busy.errno(), 26);
        assert_eq!(SealError::NotPermitted.errno(), 1);
        assert_eq!(SealError::TooMany.errno(), 37);
        assert_eq!(SealError::Revoked.errno(), 67);
        assert_eq!(SealError::BadAccess.errno(), 9);
        assert_eq!(SealError::Invalid.errno(), 22);
        assert_eq!(SealError::NotFound.errno(), 22);
        assert_eq!(SealError::RecallPending.errno(), 16);
    }
}
