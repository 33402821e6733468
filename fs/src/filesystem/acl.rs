//! POSIX ACLs (`FUSE_POSIX_ACL`): stored as the extended attributes
//! `system.posix_acl_access` and `system.posix_acl_default`, in the kernel's xattr format.
//!
//! The kernel checks permissions against the ACLs itself (it fetches them with GETXATTR
//! and caches them); what FUSE leaves to the server, and what this module does, is what
//! XFS and ext4 do in `posix_acl_chmod`, `posix_acl_update_mode` and `posix_acl_create`:
//! keep the mode and the access ACL the same bits, inherit a directory's default ACL into
//! what is created in it, and apply the umask only where there is no default ACL. Each
//! such change is one `Group` log record, so a crash never separates a mode from its ACL.

use super::{Error, Filesystem, Result};
use crate::format::record::{valid, Op};
use crate::meta::inode::mode;

/// The access ACL's attribute name.
pub const ACCESS: &[u8] = b"system.posix_acl_access";
/// The default ACL's attribute name (directories only).
pub const DEFAULT: &[u8] = b"system.posix_acl_default";

/// `POSIX_ACL_XATTR_VERSION`.
const XATTR_VERSION: u32 = 2;
/// Header (version) and entry sizes of the xattr format.
const HEADER: usize = 4;
const ENTRY: usize = 8;
/// The kernel's limit on entries in one ACL value (it fits a page).
pub const MAX_ENTRIES: usize = (4096 - HEADER) / ENTRY;
/// The id of entries that name no user or group.
const NO_ID: u32 = u32::MAX;

/// Entry tags (`ACL_USER_OBJ` ...).
pub mod tag {
    /// The owner.
    pub const USER_OBJ: u16 = 0x01;
    /// A named user.
    pub const USER: u16 = 0x02;
    /// The owning group.
    pub const GROUP_OBJ: u16 = 0x04;
    /// A named group.
    pub const GROUP: u16 = 0x08;
    /// The mask of the group class.
    pub const MASK: u16 = 0x10;
    /// Everyone else.
    pub const OTHER: u16 = 0x20;
}

/// True for the names this module owns.
pub fn is_acl_name(name: &[u8]) -> bool {
    name == ACCESS || name == DEFAULT
}

/// One ACL entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `tag::*`.
    pub tag: u16,
    /// rwx bits (4, 2, 1).
    pub perm: u16,
    /// uid or gid of a named entry; `u32::MAX` otherwise.
    pub id: u32,
}

/// A valid ACL, in the order `posix_acl_valid` demands: owner, named users by uid, owning
/// group, named groups by gid, mask, other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl(Vec<Entry>);

impl Acl {
    /// Parses and validates an xattr value. `Ok(None)` for a value with no entries (the
    /// kernel's "no ACL"). Errors as the kernel's: EOPNOTSUPP for another version, EINVAL
    /// for a bad size, an unknown tag, bad permission bits or a wrong order.
    pub fn decode(b: &[u8]) -> Result<Option<Acl>> {
        if b.len() < HEADER || !(b.len() - HEADER).is_multiple_of(ENTRY) {
            return Err(Error::Invalid("ACL size"));
        }
        let version = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if version != XATTR_VERSION {
            return Err(Error::NotSupported);
        }
        let n = (b.len() - HEADER) / ENTRY;
        if n == 0 {
            return Ok(None);
        }
        if n > MAX_ENTRIES {
            return Err(Error::TooBig);
        }
        let mut v = Vec::with_capacity(n);
        for e in b[HEADER..].chunks_exact(ENTRY) {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u16::from_le_bytes([e[2], e[3]]);
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            // Only named entries carry an id; the others are stored without one.
            let id = if tag == tag::USER || tag == tag::GROUP {
                id
            } else {
                NO_ID
            };
            v.push(Entry { tag, perm, id });
        }
        let acl = Acl(v);
        acl.validate()?;
        Ok(Some(acl))
    }

    /// The state machine of the kernel's `posix_acl_valid`.
    fn validate(&self) -> Result<()> {
        const BAD: Error = Error::Invalid("ACL entries");
        #[derive(PartialEq)]
        enum S {
            UserObj,
            User,
            Group,
            Other,
            Done,
        }
        let mut s = S::UserObj;
        let mut needs_mask = false;
        let mut prev: Option<u32> = None;
        for e in &self.0 {
            if e.perm & !7 != 0 {
                return Err(BAD);
            }
            match e.tag {
                tag::USER_OBJ if s == S::UserObj => s = S::User,
                tag::USER if s == S::User => {
                    if prev.is_some_and(|p| p >= e.id) {
                        return Err(BAD);
                    }
                    prev = Some(e.id);
                    needs_mask = true;
                }
                tag::GROUP_OBJ if s == S::User => {
                    s = S::Group;
                    prev = None;
                }
                tag::GROUP if s == S::Group => {
                    if prev.is_some_and(|p| p >= e.id) {
                        return Err(BAD);
                    }
                    prev = Some(e.id);
                    needs_mask = true;
                }
                tag::MASK if s == S::Group => s = S::Other,
                tag::OTHER if s == S::Other || (s == S::Group && !needs_mask) => s = S::Done,
                _ => return Err(BAD),
            }
        }
        if s == S::Done {
            Ok(())
        } else {
            Err(BAD)
        }
    }

    /// The xattr value (canonical: ids of unnamed entries are `u32::MAX`).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER + ENTRY * self.0.len());
        b.extend_from_slice(&XATTR_VERSION.to_le_bytes());
        for e in &self.0 {
            b.extend_from_slice(&e.tag.to_le_bytes());
            b.extend_from_slice(&e.perm.to_le_bytes());
            b.extend_from_slice(&e.id.to_le_bytes());
        }
        b
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.0
    }

    /// `posix_acl_equiv_mode`: the permission bits this ACL gives the three classes, and
    /// whether the mode alone says everything (no named entries and no mask).
    pub fn mode_bits(&self) -> (u32, bool) {
        let mut m = 0u32;
        let mut equivalent = true;
        for e in &self.0 {
            let p = (e.perm & 7) as u32;
            match e.tag {
                tag::USER_OBJ => m |= p << 6,
                tag::GROUP_OBJ => m |= p << 3,
                tag::OTHER => m |= p,
                tag::MASK => {
                    // The mask follows the owning group: it is what the group bits show.
                    m = (m & !0o070) | (p << 3);
                    equivalent = false;
                }
                _ => equivalent = false,
            }
        }
        (m, equivalent)
    }

    /// `posix_acl_chmod`: the owner, group-class (the mask if there is one, else the owning
    /// group) and other entries take the new mode's bits.
    pub fn chmod(&mut self, m: u32) {
        let has_mask = self.0.iter().any(|e| e.tag == tag::MASK);
        for e in &mut self.0 {
            match e.tag {
                tag::USER_OBJ => e.perm = ((m >> 6) & 7) as u16,
                tag::OTHER => e.perm = (m & 7) as u16,
                tag::MASK => e.perm = ((m >> 3) & 7) as u16,
                tag::GROUP_OBJ if !has_mask => e.perm = ((m >> 3) & 7) as u16,
                _ => {}
            }
        }
    }

    /// `posix_acl_create_masq`: a default ACL becomes a new inode's access ACL, masked by
    /// the mode the creator asked for, and the mode is masked by it in turn. Returns the
    /// new mode (bits outside rwx kept) and whether the ACL says more than that mode.
    pub fn create_masq(&mut self, m: u32) -> (u32, bool) {
        let mut bits = m & 0o777;
        let mut equivalent = true;
        let has_mask = self.0.iter().any(|e| e.tag == tag::MASK);
        for e in &mut self.0 {
            match e.tag {
                tag::USER_OBJ => {
                    e.perm &= ((bits >> 6) & 7) as u16;
                    bits &= ((e.perm as u32) << 6) | !0o700;
                }
                tag::OTHER => {
                    e.perm &= (bits & 7) as u16;
                    bits &= e.perm as u32 | !0o007;
                }
                tag::USER | tag::GROUP => equivalent = false,
                tag::MASK => equivalent = false,
                tag::GROUP_OBJ => {}
                _ => {}
            }
        }
        // The group class: the mask if there is one, else the owning group.
        let class = if has_mask { tag::MASK } else { tag::GROUP_OBJ };
        if let Some(e) = self.0.iter_mut().find(|e| e.tag == class) {
            e.perm &= ((bits >> 3) & 7) as u16;
            bits &= ((e.perm as u32) << 3) | !0o070;
        }
        ((m & !0o777) | bits, !equivalent)
    }
}

/// What a new inode gets from its directory's default ACL (see [`inherit`]).
pub(crate) struct Inherited {
    /// The mode to create with.
    pub mode: u32,
    /// Its access ACL, when the mode alone does not say it.
    pub access: Option<Vec<u8>>,
    /// Its default ACL (directories only).
    pub default: Option<Vec<u8>>,
}

impl Inherited {
    /// A mode and no ACLs.
    pub(crate) fn plain(mode: u32) -> Inherited {
        Inherited {
            mode,
            access: None,
            default: None,
        }
    }
}

/// `posix_acl_create`: for a new inode of mode `m` (type bits included) in a directory
/// whose default ACL is `dir_default`, the mode and ACLs it gets. Without a default ACL
/// the umask applies; with one, the umask is ignored. Symlinks get neither.
pub(crate) fn inherit(dir_default: Option<&[u8]>, m: u32, umask: u32) -> Result<Inherited> {
    let kind = m & mode::S_IFMT;
    let plain = Inherited::plain;
    if kind == mode::S_IFLNK {
        return Ok(plain(m));
    }
    let Some(stored) = dir_default else {
        return Ok(plain(m & !(umask & 0o777)));
    };
    // A stored ACL was validated when it was set; one that no longer parses (a damaged
    // value) is an I/O error for the create, as the kernel's `get_acl` failure would be.
    let Some(def) = Acl::decode(stored).map_err(|_| Error::Corrupt("stored default ACL".into()))?
    else {
        return Ok(plain(m & !(umask & 0o777)));
    };
    let mut access = def.clone();
    let (mode, more) = access.create_masq(m);
    Ok(Inherited {
        mode,
        access: more.then(|| access.encode()),
        default: (kind == mode::S_IFDIR).then(|| def.encode()),
    })
}

impl Filesystem {
    /// `setxattr` of `system.posix_acl_access` or `system.posix_acl_default`.
    ///
    /// An access ACL sets the mode's permission bits (`posix_acl_update_mode`) in the same
    /// record; an ACL the mode alone expresses is not stored (an existing one is removed).
    /// `kill_sgid` is asked, with the file's group, whether the caller is outside that
    /// group and lacks `CAP_FSETID`; if so a set-group-ID bit is cleared, as the kernel
    /// asks with `FUSE_SETXATTR_ACL_KILL_SGID`.
    pub fn set_acl(
        &self,
        ino: u64,
        name: &[u8],
        value: &[u8],
        xflags: i32,
        kill_sgid: &dyn Fn(u32) -> bool,
    ) -> Result<()> {
        self.check_writable()?;
        if !self.acl_enabled() || !is_acl_name(name) {
            return Err(Error::NotSupported);
        }
        let acl = Acl::decode(value)?;
        self.meta_room()?;
        self.change_xattrs(ino, |g| {
            if name == DEFAULT && !g.attr.is_dir() {
                return Err(Error::Access.into());
            }
            let had = g.xattr(name).is_some();
            if xflags & super::xattr::XATTR_CREATE != 0 && had {
                return Err(Error::Exists.into());
            }
            if xflags & super::xattr::XATTR_REPLACE != 0 && !had {
                return Err(Error::NoData.into());
            }
            let time = self.now();
            let mut ops = Vec::new();
            if let Some(a) = &acl {
                super::xattr::check_total(g, name, a.encode().len())?;
            }
            let stored = |keep: Option<Vec<u8>>, ops: &mut Vec<Op>| match keep {
                Some(value) => ops.push(Op::SetXattr {
                    ino,
                    name: name.to_vec(),
                    value,
                    time,
                }),
                None if had => ops.push(Op::RemoveXattr {
                    ino,
                    name: name.to_vec(),
                    time,
                }),
                None => {}
            };
            if name == ACCESS {
                let mut m = g.attr.mode;
                if let Some(acl) = &acl {
                    let (bits, equivalent) = acl.mode_bits();
                    m = (m & !0o777) | bits;
                    stored((!equivalent).then(|| acl.encode()), &mut ops);
                } else {
                    stored(None, &mut ops);
                }
                if m & libc::S_ISGID != 0 && kill_sgid(g.attr.gid) {
                    m &= !libc::S_ISGID;
                }
                ops.push(Op::SetAttr {
                    ino,
                    // atime and mtime as they are: pending in-memory times get logged
                    // (SetAttr clears the inode's dirty-times mark).
                    valid: valid::MODE | valid::CTIME | valid::ATIME | valid::MTIME,
                    mode: m & 0o7777,
                    uid: 0,
                    gid: 0,
                    atime: g.attr.atime,
                    mtime: g.attr.mtime,
                    ctime: time,
                    flags: 0,
                });
            } else {
                stored(acl.as_ref().map(Acl::encode), &mut ops);
            }
            let op = match ops.len() {
                0 => return Ok(()),
                1 => ops.remove(0),
                _ => Op::Group(ops),
            };
            self.log_inode(g, &op)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut b = XATTR_VERSION.to_le_bytes().to_vec();
        for &(t, p, id) in entries {
            b.extend_from_slice(&t.to_le_bytes());
            b.extend_from_slice(&p.to_le_bytes());
            b.extend_from_slice(&id.to_le_bytes());
        }
        b
    }

    use tag::*;
    const X: u32 = u32::MAX;

    #[test]
    fn decode_validates_like_the_kernel() {
        let minimal = acl(&[(USER_OBJ, 6, X), (GROUP_OBJ, 4, X), (OTHER, 4, X)]);
        assert!(Acl::decode(&minimal).unwrap().is_some());
        assert_eq!(Acl::decode(&acl(&[])).unwrap(), None, "header only: no ACL");
        let named = acl(&[
            (USER_OBJ, 7, X),
            (USER, 5, 1000),
            (USER, 4, 1001),
            (GROUP_OBJ, 5, X),
            (GROUP, 1, 50),
            (MASK, 7, X),
            (OTHER, 0, X),
        ]);
        assert!(Acl::decode(&named).unwrap().is_some());
        let ragged = {
            let mut v = minimal.clone();
            v.push(0);
            v
        };
        let v1 = {
            let mut v = minimal.clone();
            v[0] = 1;
            v
        };
        let (u, g, o, m) = (
            (USER_OBJ, 6, X),
            (GROUP_OBJ, 4, X),
            (OTHER, 4, X),
            (MASK, 4, X),
        );
        let bad: Vec<(&str, Vec<u8>, i32)> = vec![
            ("short", vec![2, 0, 0], libc::EINVAL),
            ("ragged", ragged, libc::EINVAL),
            ("version 1", v1, libc::EOPNOTSUPP),
            ("no other", acl(&[u, g]), libc::EINVAL),
            (
                "named user, no mask",
                acl(&[u, (USER, 4, 5), g, o]),
                libc::EINVAL,
            ),
            (
                "users out of order",
                acl(&[u, (USER, 4, 6), (USER, 4, 5), g, m, o]),
                libc::EINVAL,
            ),
            (
                "duplicate user",
                acl(&[u, (USER, 4, 5), (USER, 4, 5), g, m, o]),
                libc::EINVAL,
            ),
            (
                "groups out of order",
                acl(&[u, g, (GROUP, 4, 9), (GROUP, 4, 8), m, o]),
                libc::EINVAL,
            ),
            ("perm 8", acl(&[(USER_OBJ, 8, X), g, o]), libc::EINVAL),
            ("unknown tag", acl(&[u, (0x40, 4, X), g, o]), libc::EINVAL),
            ("entry after other", acl(&[u, g, o, o]), libc::EINVAL),
            ("group before user", acl(&[g, u, o]), libc::EINVAL),
            ("two masks", acl(&[u, g, m, m, o]), libc::EINVAL),
            (
                "too many",
                acl(&vec![(USER, 4, 1); MAX_ENTRIES + 1]),
                libc::E2BIG,
            ),
        ];
        for (what, v, want) in bad {
            let got = Acl::decode(&v).map(|_| ()).map_err(|e| e.errno());
            assert_eq!(got, Err(want), "{what}");
        }
    }

    #[test]
    fn unnamed_ids_are_stored_canonically() {
        let v = acl(&[(USER_OBJ, 6, 7), (GROUP_OBJ, 4, 0), (OTHER, 4, 3)]);
        let a = Acl::decode(&v).unwrap().unwrap();
        assert_eq!(
            a.encode(),
            acl(&[(USER_OBJ, 6, X), (GROUP_OBJ, 4, X), (OTHER, 4, X)])
        );
    }

    #[test]
    fn mode_bits_follow_the_mask() {
        let a = Acl::decode(&acl(&[(USER_OBJ, 6, X), (GROUP_OBJ, 4, X), (OTHER, 1, X)]))
            .unwrap()
            .unwrap();
        assert_eq!(a.mode_bits(), (0o641, true));
        let a = Acl::decode(&acl(&[
            (USER_OBJ, 7, X),
            (USER, 6, 1000),
            (GROUP_OBJ, 4, X),
            (MASK, 2, X),
            (OTHER, 0, X),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(a.mode_bits(), (0o720, false));
    }

    #[test]
    fn chmod_rewrites_owner_mask_and_other() {
        let mut a = Acl::decode(&acl(&[
            (USER_OBJ, 7, X),
            (USER, 6, 1000),
            (GROUP_OBJ, 4, X),
            (MASK, 7, X),
            (OTHER, 5, X),
        ]))
        .unwrap()
        .unwrap();
        a.chmod(0o4751 & 0o777);
        assert_eq!(
            a.encode(),
            acl(&[
                (USER_OBJ, 7, X),
                (USER, 6, 1000),
                (GROUP_OBJ, 4, X),
                (MASK, 5, X),
                (OTHER, 1, X)
            ])
        );
        let mut b = Acl::decode(&acl(&[(USER_OBJ, 7, X), (GROUP_OBJ, 4, X), (OTHER, 5, X)]))
            .unwrap()
            .unwrap();
        b.chmod(0o620);
        assert_eq!(
            b.encode(),
            acl(&[(USER_OBJ, 6, X), (GROUP_OBJ, 2, X), (OTHER, 0, X)])
        );
    }

    #[test]
    fn inheritance_masks_both_ways() {
        let def = acl(&[
            (USER_OBJ, 7, X),
            (USER, 7, 1000),
            (GROUP_OBJ, 5, X),
            (MASK, 7, X),
            (OTHER, 5, X),
        ]);
        // A file created 0666 in the directory: the mask takes the group bits.
        let f = inherit(Some(&def), mode::S_IFREG | 0o666, 0o077).unwrap();
        assert_eq!(
            f.mode,
            mode::S_IFREG | 0o664,
            "umask ignored, ACL masks the mode"
        );
        assert_eq!(
            f.access.unwrap(),
            acl(&[
                (USER_OBJ, 6, X),
                (USER, 7, 1000),
                (GROUP_OBJ, 5, X),
                (MASK, 6, X),
                (OTHER, 4, X)
            ])
        );
        assert_eq!(f.default, None);
        // A directory also inherits the default ACL as it was.
        let d = inherit(Some(&def), mode::S_IFDIR | libc::S_ISGID | 0o777, 0o022).unwrap();
        assert_eq!(d.mode, mode::S_IFDIR | libc::S_ISGID | 0o775);
        assert_eq!(d.default.as_deref(), Some(&def[..]));
        assert!(d.access.is_some());
        // A minimal default ACL gives a mode and no access ACL.
        let min = acl(&[(USER_OBJ, 6, X), (GROUP_OBJ, 4, X), (OTHER, 0, X)]);
        let f = inherit(Some(&min), mode::S_IFREG | 0o666, 0o022).unwrap();
        assert_eq!(
            (f.mode, f.access, f.default),
            (mode::S_IFREG | 0o640, None, None)
        );
        // No default ACL: the umask.
        let f = inherit(None, mode::S_IFREG | 0o666, 0o027).unwrap();
        assert_eq!((f.mode, f.access.is_none()), (mode::S_IFREG | 0o640, true));
        // Symlinks: neither.
        let l = inherit(Some(&def), mode::S_IFLNK | 0o777, 0o077).unwrap();
        assert_eq!(
            (l.mode, l.access, l.default),
            (mode::S_IFLNK | 0o777, None, None)
        );
    }
}
