//! What a FUSE request does not carry about its caller, read from `/proc`: supplementary
//! groups and capabilities. Used only where the kernel would have decided and FUSE does
//! not pass the decision on.

/// `CAP_FSETID`.
const CAP_FSETID: u32 = 4;

/// The kernel's `in_group_or_capable` for the thread `tid` and group `gid`: true when
/// `gid` is its filesystem gid or one of its supplementary groups, or it has `CAP_FSETID`.
/// False when the thread is gone or `/proc` cannot be read (so a set-group-ID bit is
/// cleared rather than kept on a guess).
pub fn in_group_or_capable_fsetid(tid: u32, gid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{tid}/status")) {
        Ok(status) => status_allows(&status, gid),
        Err(e) => {
            tracing::debug!(tid, error = %e, "caller's credentials unreadable");
            false
        }
    }
}

/// The decision from the text of `/proc/TID/status`.
fn status_allows(status: &str, gid: u32) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    // "Gid:" is real, effective, saved, filesystem.
    let fsgid = field("Gid:").and_then(|v| v.split_whitespace().nth(3)?.parse::<u32>().ok());
    if fsgid == Some(gid) {
        return true;
    }
    let in_groups = field("Groups:").is_some_and(|v| {
        v.split_whitespace()
            .any(|g| g.parse::<u32>().ok() == Some(gid))
    });
    if in_groups {
        return true;
    }
    field("CapEff:")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_FSETID) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t101\n\
        Groups:\t20 24 27 \nCapEff:\t0000000000000000\n";

    #[test]
    fn groups_and_capability() {
        assert!(status_allows(STATUS, 101), "filesystem gid");
        assert!(
            !status_allows(STATUS, 100),
            "effective gid is not the one the kernel uses"
        );
        assert!(status_allows(STATUS, 24), "supplementary group");
        assert!(!status_allows(STATUS, 25));
        let root = STATUS.replace("0000000000000000", "000001ffffffffff");
        assert!(status_allows(&root, 25), "CAP_FSETID");
        let no_fsetid = STATUS.replace("0000000000000000", "000001ffffffffef");
        assert!(
            !status_allows(&no_fsetid, 25),
            "every capability but CAP_FSETID"
        );
        assert!(!status_allows("", 0), "nothing readable");
    }

    #[test]
    fn this_process() {
        // SAFETY: getgid has no preconditions and cannot fail.
        let gid = unsafe { libc::getgid() };
        assert!(in_group_or_capable_fsetid(std::process::id(), gid));
        assert!(!in_group_or_capable_fsetid(u32::MAX, gid), "no such thread");
    }
}
