//! Conversions between the core's types and fuser's: attributes, file types, timestamps.
//! Pure functions; no filesystem logic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo, TimeOrNow};

use crate::filesystem::namespace::TimeSet;
use crate::filesystem::Stat;
use crate::format::record::Ts;
use crate::meta::inode::mode;

/// A core timestamp as a `SystemTime` (times before 1970 included).
pub fn system_time(t: Ts) -> SystemTime {
    let nsec = Duration::from_nanos(t.nsec as u64);
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::from_secs(t.sec as u64) + nsec
    } else {
        UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs()) + nsec
    }
}

/// A time from a fuser request as a core timestamp.
///
/// fuser 0.18 turns the kernel's `(sec, nsec)` with a negative `sec` into
/// `UNIX_EPOCH - (|sec| s + nsec ns)` (rather than `- |sec| s + nsec ns`); this is the exact
/// inverse of that, so times before 1970 arrive as the kernel sent them. (Replies go the
/// other way through fuser's correct conversion, see [`system_time`].)
pub fn request_time(t: SystemTime) -> Ts {
    let (sec, nsec) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            (
                -i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            )
        }
    };
    Ts { sec, nsec }
}

/// A setattr time.
pub fn time_set(t: TimeOrNow) -> TimeSet {
    match t {
        TimeOrNow::Now => TimeSet::Now,
        TimeOrNow::SpecificTime(s) => TimeSet::At(request_time(s)),
    }
}

/// The fuser file type of `S_IFMT` bits.
pub fn file_type(m: u32) -> FileType {
    match m & mode::S_IFMT {
        mode::S_IFDIR => FileType::Directory,
        mode::S_IFLNK => FileType::Symlink,
        mode::S_IFCHR => FileType::CharDevice,
        mode::S_IFBLK => FileType::BlockDevice,
        mode::S_IFIFO => FileType::NamedPipe,
        mode::S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

/// The attributes FUSE replies carry.
pub fn file_attr(s: &Stat) -> FileAttr {
    let a = &s.attr;
    FileAttr {
        ino: INodeNo(s.ino),
        size: a.size,
        blocks: s.blocks,
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.crtime),
        kind: file_type(a.mode),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        // The kernel's encoding (new_encode_dev), stored as mknod sent it.
        rdev: a.rdev,
        blksize: s.blksize,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What fuser 0.18 makes of the kernel's `(sec, nsec)` in a request.
    fn fuser_request(sec: i64, nsec: u32) -> SystemTime {
        if sec >= 0 {
            UNIX_EPOCH + Duration::new(sec as u64, nsec)
        } else {
            UNIX_EPOCH - Duration::new(sec.unsigned_abs(), nsec)
        }
    }

    #[test]
    fn timestamps_round_trip() {
        for t in [
            Ts { sec: 0, nsec: 0 },
            Ts {
                sec: 1_700_000_000,
                nsec: 123_456_789,
            },
            Ts { sec: -1, nsec: 1 },
            Ts {
                sec: -86_400,
                nsec: 999_999_999,
            },
            Ts {
                sec: -1_000_000,
                nsec: 500,
            },
            Ts { sec: -5, nsec: 0 },
        ] {
            assert_eq!(request_time(fuser_request(t.sec, t.nsec)), t);
            // Replies: fuser's own conversion back to (sec, nsec) is the inverse of this.
            let back = system_time(t);
            let expect = if t.sec >= 0 {
                back.duration_since(UNIX_EPOCH).unwrap()
            } else {
                UNIX_EPOCH.duration_since(back).unwrap()
            };
            let want = if t.sec >= 0 {
                Duration::new(t.sec as u64, t.nsec)
            } else {
                Duration::new(t.sec.unsigned_abs(), 0) - Duration::from_nanos(t.nsec as u64)
            };
            assert_eq!(expect, want);
        }
    }
}
