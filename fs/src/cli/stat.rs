//! `sealfs stat MOUNTPOINT`: asks the daemon for its counters (`SEALFS_IOC_STAT`) and
//! prints them for people.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::args::{human, Args};
use super::{at, describe_io, mounts, sys, Outcome};
use crate::abi::{self, StatArg};

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// Runs `sealfs stat`.
pub fn run(rest: Vec<OsString>) -> Outcome {
    let mut a = Args::new(rest);
    let path = PathBuf::from(a.positional("MOUNTPOINT")?);
    a.finish()?;
    let s = query(&path)?;
    let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    let mount = mounts::containing(&canon);
    print(&path, mount.as_ref(), &s);
    Ok(())
}

fn query(path: &Path) -> Result<StatArg, String> {
    let f = File::open(path).map_err(|e| at(path, describe_io(&e)))?;
    let mut buf = vec![0u8; abi::STAT_SIZE];
    sys::ioctl(&f, abi::IOC_STAT, &mut buf).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTTY) | Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            at(path, "not on a sealfs mount")
        }
        _ => at(path, describe_io(&e)),
    })?;
    StatArg::decode(&buf).map_err(|e| at(path, format!("unexpected answer from the daemon: {e}")))
}

fn print(path: &Path, mount: Option<&mounts::MountInfo>, s: &StatArg) {
    let kind = match s.device_kind {
        abi::STAT_DEVICE_IMAGE => "image file",
        abi::STAT_DEVICE_DEVDAX => "device DAX",
        abi::STAT_DEVICE_SIM => "simulated device",
        _ => "device",
    };
    match mount {
        Some(m) => println!(
            "{}: {} on {} ({kind}, {})",
            m.mount_point.display(),
            m.fstype,
            Path::new(&m.source).display(),
            human(s.device_size)
        ),
        None => println!(
            "{}: sealfs ({kind}, {})",
            path.display(),
            human(s.device_size)
        ),
    }
    let bs = s.block_size;
    let used = s.total_blocks.saturating_sub(s.free_blocks);
    println!("  block size    {}", human(bs));
    println!(
        "  space         {} used of {} ({}), {} free",
        human(used * bs),
        human(s.total_blocks * bs),
        pct(used, s.total_blocks),
        human(s.free_blocks * bs)
    );
    println!(
        "  data blocks   {} total, {used} used, {} free",
        s.total_blocks, s.free_blocks
    );
    println!(
        "  inodes        {} in use of about {}",
        s.inodes, s.max_inodes
    );
    println!(
        "  log           {} of {} used ({})",
        human(s.log_used),
        human(s.log_len),
        pct(s.log_used, s.log_len)
    );
    println!(
        "  checkpoints   {} since mount (superblock generation {})",
        s.checkpoints, s.generation
    );
    println!("  log records   {} since mount", s.records);
    println!("  flush method  {}", s.flush_method_name());
    let mut opts = vec![if s.mount_flags & abi::STAT_MOUNT_RO != 0 {
        "ro".to_string()
    } else {
        "rw".to_string()
    }];
    opts.push(
        if s.mount_flags & abi::STAT_MOUNT_CACHE_PAGE != 0 {
            "cache=page"
        } else {
            "cache=direct"
        }
        .into(),
    );
    if s.mount_flags & abi::STAT_MOUNT_ALLOW_OTHER != 0 {
        opts.push("allow_other".into());
    }
    opts.push(
        if s.mount_flags & abi::STAT_MOUNT_ACL != 0 {
            "acl"
        } else {
            "noacl"
        }
        .into(),
    );
    opts.push(format!("threads={}", s.threads));
    opts.push(format!("break_timeout={}", s.break_timeout_ms));
    opts.push(format!("timeout={}", s.timeout_ms as f64 / 1000.0));
    opts.push(format!("max_seals={}", s.max_seals));
    opts.push(format!("max_seals_per_user={}", s.max_seals_per_user));
    println!("  options       {}", opts.join(","));
    println!("  seals         {} held, {} mapping pins", s.seals, s.pins);
    println!(
        "  recalls       {} since mount, {} revocations",
        s.recalls, s.revocations
    );
    println!(
        "  quarantined   {} blocks ({})",
        s.quarantined_blocks,
        human(s.quarantined_blocks * bs)
    );
    println!("  guest window mappings: {}", s.guest_mappings);
}
