//! The mount table of this process (`/proc/self/mountinfo`).

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Filesystem type (`fuse.sealfs`).
    pub fstype: String,
    /// Source (for sealfs: the device's canonical path).
    pub source: OsString,
    /// The per-mount options (`rw,nosuid,nodev,relatime`): read-only, device, set-id,
    /// exec and access-time flags.
    pub options: Vec<String>,
}

impl MountInfo {
    /// Is the per-mount option `name` set?
    pub fn has(&self, name: &str) -> bool {
        self.options.iter().any(|o| o == name)
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Parses the text of a mountinfo file.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            // id parent maj:min root mountpoint options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let mut l = left.split(' ').skip(4);
            let mp = l.next()?;
            let options = l.next()?.split(',').map(str::to_string).collect();
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let source = r.next().unwrap_or("");
            Some(MountInfo {
                mount_point: PathBuf::from(OsString::from_vec(unescape(mp))),
                fstype,
                source: OsString::from_vec(unescape(source)),
                options,
            })
        })
        .collect()
}

/// Every mount, in mount order.
pub fn all() -> io::Result<Vec<MountInfo>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The topmost mount whose mount point is exactly `path` (canonical).
pub fn at(path: &Path) -> Option<MountInfo> {
    all().ok()?.into_iter().rfind(|m| m.mount_point == path)
}

/// The mount holding `path` (canonical): the longest mount point that is a prefix.
pub fn containing(path: &Path) -> Option<MountInfo> {
    all()
        .ok()?
        .into_iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_lines() {
        let t = "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - fuse.sealfs /img\\040x rw\n\
                 37 35 98:0 / /mnt rw - ext4 /dev/sda1 rw\n";
        let m = parse(t);
        assert_eq!(m[0].mount_point, Path::new("/mnt/a b"));
        assert_eq!(m[0].fstype, "fuse.sealfs");
        assert_eq!(m[0].source, "/img x");
        assert_eq!(m[1].source, "/dev/sda1");
        assert!(m[0].has("noatime") && m[0].has("rw") && !m[0].has("relatime"));
        assert_eq!(m[1].options, ["rw"]);
    }
}
