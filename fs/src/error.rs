//! The filesystem's error type and its one mapping to errno values.

use crate::format::FormatError;
use crate::meta::table::ApplyError;

/// Everything a sealfs operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ENOENT.
    #[error("no such file or directory")]
    NotFound,
    /// EEXIST.
    #[error("file exists")]
    Exists,
    /// ENOTDIR.
    #[error("not a directory")]
    NotDir,
    /// EISDIR.
    #[error("is a directory")]
    IsDir,
    /// ENOTEMPTY.
    #[error("directory not empty")]
    NotEmpty,
    /// ENAMETOOLONG.
    #[error("file name too long")]
    NameTooLong,
    /// EMLINK.
    #[error("too many links")]
    TooManyLinks,
    /// EFBIG.
    #[error("file too large")]
    FileTooBig,
    /// EINVAL with what was wrong.
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// EACCES.
    #[error("permission denied")]
    Access,
    /// EPERM with the reason.
    #[error("operation not permitted: {0}")]
    Perm(&'static str),
    /// ENOSPC.
    #[error("no space left on device")]
    NoSpace,
    /// ENODATA (no such xattr).
    #[error("no data available")]
    NoData,
    /// ERANGE (buffer too small).
    #[error("result too large for the buffer")]
    Range,
    /// E2BIG (xattr value too large).
    #[error("argument list too long")]
    TooBig,
    /// EOPNOTSUPP.
    #[error("operation not supported")]
    NotSupported,
    /// EBADF.
    #[error("bad file descriptor")]
    BadFd,
    /// ETXTBSY: a temporary seal refuses an extent-map change.
    #[error("text file busy (sealed)")]
    Sealed,
    /// ENOLCK.
    #[error("too many seals")]
    NoLocks,
    /// ENOLINK: the holder's seal or mapping was revoked.
    #[error("seal revoked")]
    Revoked,
    /// EROFS.
    #[error("read-only filesystem")]
    ReadOnly,
    /// EBUSY.
    #[error("device or resource busy")]
    Busy,
    /// ENXIO (seek past the last data/hole).
    #[error("no such device or address")]
    NoSuchAddress,
    /// EXDEV.
    #[error("cross-device link")]
    CrossDevice,
    /// ELOOP.
    #[error("too many levels of symbolic links")]
    Loop,
    /// An errno passed through from elsewhere.
    #[error("errno {0}")]
    Errno(i32),
    /// I/O error from the operating system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Malformed on-media bytes.
    #[error("corrupt filesystem: {0}")]
    Format(#[from] FormatError),
    /// Consistent bytes, inconsistent state.
    #[error("corrupt filesystem: {0}")]
    Corrupt(String),
}

/// A call must wait for a seal recall before it can go on: a breakable seal or mapping pin
/// in its way is being recalled. Not an error and never an errno: the caller runs the call
/// again after a release or at `deadline_ns` (monotonic, `Filesystem::clock_ns`), when
/// what was not given back is revoked. Transports park the request
/// ([`crate::park::Parker::run`]); other callers use `Filesystem::blocking`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    /// Inode whose seals must go.
    pub ino: u64,
    /// When the recalled seals are revoked at the latest.
    pub deadline_ns: u64,
}

/// Why a call that may wait for a recall did not finish: it failed, or it must wait.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// A real error, with its errno.
    #[error(transparent)]
    Failed(#[from] Error),
    /// Not done yet: run the call again when the recall ends ([`Wait`]).
    #[error("waiting for a seal recall on inode {}", .0.ino)]
    Wait(Wait),
}

/// The result of a core call that may have to wait for a seal recall (`write`, `truncate`,
/// `setattr`, `fallocate`, `unlink`, `rename`, `copy_range`, `seal`, `set_sealed_map`,
/// `setup_mapping`, `defrag`): done, failed, or [`Stop::Wait`].
pub type Attempt<T> = std::result::Result<T, Stop>;

impl From<sealfs_abi::AbiError> for Error {
    fn from(e: sealfs_abi::AbiError) -> Error {
        match e {
            sealfs_abi::AbiError::Invalid(what) => Error::Invalid(what),
            sealfs_abi::AbiError::TooBig => Error::TooBig,
        }
    }
}

impl From<ApplyError> for Error {
    fn from(e: ApplyError) -> Self {
        Error::Corrupt(e.0)
    }
}

impl From<sealfs_seal::SealError> for Error {
    fn from(e: sealfs_seal::SealError) -> Self {
        use sealfs_seal::SealError as S;
        match e {
            S::Busy => Error::Sealed,
            S::NotPermitted => Error::Perm("extent map sealed"),
            S::TooMany => Error::NoLocks,
            S::Revoked => Error::Revoked,
            S::BadAccess => Error::BadFd,
            S::Invalid => Error::Invalid("seal range"),
            S::NotFound => Error::Invalid("no such seal"),
            S::RecallPending => Error::Busy,
        }
    }
}

impl From<sealfs_seal::SealError> for Stop {
    fn from(e: sealfs_seal::SealError) -> Stop {
        Stop::Failed(e.into())
    }
}

impl From<sealfs_abi::AbiError> for Stop {
    fn from(e: sealfs_abi::AbiError) -> Stop {
        Stop::Failed(e.into())
    }
}

impl Error {
    /// The errno a FUSE reply or ioctl returns for this error. The one mapping in sealfs.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotFound => libc::ENOENT,
            Error::Exists => libc::EEXIST,
            Error::NotDir => libc::ENOTDIR,
            Error::IsDir => libc::EISDIR,
            Error::NotEmpty => libc::ENOTEMPTY,
            Error::NameTooLong => libc::ENAMETOOLONG,
            Error::TooManyLinks => libc::EMLINK,
            Error::FileTooBig => libc::EFBIG,
            Error::Invalid(_) => libc::EINVAL,
            Error::Access => libc::EACCES,
            Error::Perm(_) => libc::EPERM,
            Error::NoSpace => libc::ENOSPC,
            Error::NoData => libc::ENODATA,
            Error::Range => libc::ERANGE,
            Error::TooBig => libc::E2BIG,
            Error::NotSupported => libc::EOPNOTSUPP,
            Error::BadFd => libc::EBADF,
            Error::Sealed => libc::ETXTBSY,
            Error::NoLocks => libc::ENOLCK,
            Error::Revoked => libc::ENOLINK,
            Error::ReadOnly => libc::EROFS,
            Error::Busy => libc::EBUSY,
            Error::NoSuchAddress => libc::ENXIO,
            Error::CrossDevice => libc::EXDEV,
            Error::Loop => libc::ELOOP,
            Error::Errno(e) => *e,
            Error::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            Error::Format(_) | Error::Corrupt(_) => libc::EIO,
        }
    }
}

/// Result with the sealfs error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
