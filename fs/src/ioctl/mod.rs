//! The ioctl layer, shared by every transport: ONE table of the commands sealfs answers
//! (number, handler, whether it changes the inode's attributes behind the kernel's cache,
//! whether it may have to wait out a seal recall), and the handlers, which decode the
//! argument bytes (`crate::abi`), call the core with the caller's `Ctx` (the core decides
//! what the caller may do) and encode the answer.
//!
//! A transport only translates: it looks the command up ([`command`]; an unknown one is
//! ENOTTY, a sealfs number with another argument size EINVAL), runs it ([`Command::run`]),
//! applies the page-cache invalidations the [`Outcome`] carries (on every attempt, also a
//! failed one), parks and retries the command when it must wait for a recall
//! ([`Stop::Wait`], which only a [`Handler::MayPark`] entry returns), drops the inode's
//! cached attributes when the outcome says the call may have changed them, and maps the
//! error to its errno.
//!
//! * `flags` — the Linux inode-flag ioctls (`chattr`, `lsattr`, `xfs_io chattr`);
//! * `seals` — seals, the permanent seal, DAX windows, the extent list and defrag;
//! * `mount` — `sealfs stat`, the remount switch and the no-op.

use crate::abi;
use crate::error::{Attempt, Error, Result, Stop};
use crate::filesystem::{Ctx, Filesystem};

pub mod flags;
pub mod mount;
pub mod seals;

pub use mount::MountInfo;

/// One page-cache range a transport must drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalidation {
    /// The inode whose pages go.
    pub ino: u64,
    /// File offset of the range.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// One ioctl request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Inode the ioctl was issued on.
    pub ino: u64,
    /// File handle (0 for directories).
    pub fh: u64,
    /// Command number.
    pub cmd: u32,
    /// Argument bytes copied in.
    pub input: &'a [u8],
    /// Bytes the caller takes back at most.
    pub out_size: u32,
    /// Caller.
    pub ctx: Ctx,
    /// The mount's settings (for `SEALFS_IOC_STAT`).
    pub mount: &'a MountInfo,
}

/// What a handler builds: the bytes to copy out, and the page-cache ranges the transport
/// must drop (a window flushed or removed), which hold whether or not the handler fails.
#[derive(Debug, Default)]
pub struct Reply {
    /// Bytes to copy out (empty for none).
    pub data: Vec<u8>,
    /// Page-cache ranges to invalidate.
    pub invalidate: Vec<Invalidation>,
    /// This call changes no attribute, although its command may (a SEAL without
    /// POPULATE): the transport keeps the kernel's cached attributes.
    pub attrs_kept: bool,
}

/// The result of one attempt of a command.
#[derive(Debug)]
pub struct Outcome {
    /// The bytes to copy out, the error, or (a [`Handler::MayPark`] command only) the
    /// wait for a recall.
    pub result: Attempt<Vec<u8>>,
    /// Page-cache ranges to invalidate, whatever the result.
    pub invalidate: Vec<Invalidation>,
    /// The transport drops the inode's cached attributes after this attempt: the entry
    /// changes attributes ([`Command::changes_attrs`]) and the handler did not say this
    /// call leaves them ([`Reply::attrs_kept`]).
    pub changes_attrs: bool,
}

/// A handler: fills `reply` or fails; by whether it may have to wait for a seal recall.
#[derive(Clone, Copy)]
pub enum Handler {
    /// It never waits.
    Never(fn(&Filesystem, &Request<'_>, &mut Reply) -> Result<()>),
    /// It may return [`Stop::Wait`] (it allocates holes or relocates, and can meet a
    /// recall): the transport parks it and runs it again when seals change.
    MayPark(fn(&Filesystem, &Request<'_>, &mut Reply) -> Attempt<()>),
}

/// One entry of the command table.
pub struct Command {
    /// Command number.
    pub cmd: u32,
    /// Name, for logs.
    pub name: &'static str,
    /// The handler.
    pub handler: Handler,
    /// It changes the inode's flags, ctime or block count, which no reply carries: the
    /// transport drops the cached attributes after it (whatever the outcome: a failed call
    /// should have changed nothing, but the kernel must never keep attributes the daemon
    /// may have changed), unless the handler says this call cannot have
    /// ([`Reply::attrs_kept`]: a SEAL without POPULATE).
    pub changes_attrs: bool,
    /// Its handler is a [`Handler::MayPark`]: its outcome may be [`Stop::Wait`].
    pub may_park: bool,
}

impl Command {
    /// Runs one attempt.
    pub fn run(&self, fs: &Filesystem, r: &Request<'_>) -> Outcome {
        let mut reply = Reply::default();
        let result = match self.handler {
            Handler::Never(f) => f(fs, r, &mut reply).map_err(Stop::Failed),
            Handler::MayPark(f) => f(fs, r, &mut reply),
        }
        .map(|()| reply.data);
        Outcome {
            result,
            invalidate: reply.invalidate,
            changes_attrs: self.changes_attrs && !reply.attrs_kept,
        }
    }
}

/// Whether a command changes attributes no reply carries ([`Command::changes_attrs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attrs {
    /// It leaves the cached attributes true.
    Kept,
    /// The transport drops the cached attributes after it.
    Changed,
}

const fn entry(cmd: u32, name: &'static str, handler: Handler, attrs: Attrs) -> Command {
    Command {
        cmd,
        name,
        handler,
        changes_attrs: matches!(attrs, Attrs::Changed),
        may_park: matches!(handler, Handler::MayPark(_)),
    }
}

/// Every command sealfs answers.
pub static TABLE: &[Command] = &[
    entry(
        flags::FS_IOC_GETFLAGS,
        "GETFLAGS",
        Handler::Never(flags::get_flags),
        Attrs::Kept,
    ),
    entry(
        flags::FS_IOC32_GETFLAGS,
        "GETFLAGS32",
        Handler::Never(flags::get_flags),
        Attrs::Kept,
    ),
    entry(
        flags::FS_IOC_SETFLAGS,
        "SETFLAGS",
        Handler::Never(flags::set_flags),
        Attrs::Changed,
    ),
    entry(
        flags::FS_IOC32_SETFLAGS,
        "SETFLAGS32",
        Handler::Never(flags::set_flags),
        Attrs::Changed,
    ),
    entry(
        flags::FS_IOC_FSGETXATTR,
        "FSGETXATTR",
        Handler::Never(flags::get_xattr),
        Attrs::Kept,
    ),
    entry(
        flags::FS_IOC_FSSETXATTR,
        "FSSETXATTR",
        Handler::Never(flags::set_xattr),
        Attrs::Changed,
    ),
    entry(
        abi::IOC_STAT,
        "STAT",
        Handler::Never(mount::stat),
        Attrs::Kept,
    ),
    entry(
        abi::IOC_SET_READONLY,
        "SET_READONLY",
        Handler::Never(mount::set_readonly),
        Attrs::Kept,
    ),
    entry(
        abi::IOC_NOOP,
        "NOOP",
        Handler::Never(mount::noop),
        Attrs::Kept,
    ),
    // SEAL with POPULATE fills holes (block count) and may meet a recall.
    entry(
        abi::IOC_SEAL,
        "SEAL",
        Handler::MayPark(seals::seal),
        Attrs::Changed,
    ),
    entry(
        abi::IOC_UNSEAL,
        "UNSEAL",
        Handler::Never(seals::unseal),
        Attrs::Kept,
    ),
    entry(
        abi::IOC_REVOKE,
        "REVOKE",
        Handler::Never(seals::revoke),
        Attrs::Kept,
    ),
    entry(
        abi::IOC_GET_SEALS,
        "GET_SEALS",
        Handler::Never(seals::get_seals),
        Attrs::Kept,
    ),
    // The permanent seal is an inode flag; with POPULATE it fills holes first.
    entry(
        abi::IOC_SET_IMMUTABLE,
        "SET_IMMUTABLE",
        Handler::MayPark(seals::set_immutable),
        Attrs::Changed,
    ),
    entry(
        abi::IOC_CLEAR_IMMUTABLE,
        "CLEAR_IMMUTABLE",
        Handler::Never(seals::clear_immutable),
        Attrs::Changed,
    ),
    // SETUPMAPPING fills the holes it maps for writing.
    entry(
        abi::IOC_SETUPMAPPING,
        "SETUPMAPPING",
        Handler::MayPark(seals::setup_mapping),
        Attrs::Changed,
    ),
    entry(
        abi::IOC_REMOVEMAPPING,
        "REMOVEMAPPING",
        Handler::Never(seals::remove_mapping),
        Attrs::Kept,
    ),
    entry(
        abi::IOC_FLUSHMAPPING,
        "FLUSHMAPPING",
        Handler::Never(seals::flush_mapping),
        Attrs::Kept,
    ),
    entry(
        abi::IOC_GET_RECALLS,
        "GET_RECALLS",
        Handler::Never(seals::get_recalls),
        Attrs::Kept,
    ),
    entry(
        abi::IOC_EXTENTS,
        "EXTENTS",
        Handler::Never(seals::extents),
        Attrs::Kept,
    ),
    // Defrag relocates files and waits out the recall of a breakable seal in its way.
    entry(
        abi::IOC_DEFRAG,
        "DEFRAG",
        Handler::MayPark(seals::defrag),
        Attrs::Kept,
    ),
];

/// The table entry of `cmd`: ENOTTY for an unknown command (as on any Linux filesystem),
/// EINVAL for a sealfs command number with another argument size or direction.
pub fn command(cmd: u32) -> Result<&'static Command> {
    if let Some(c) = TABLE.iter().find(|c| c.cmd == cmd) {
        return Ok(c);
    }
    if abi::wrong_size(cmd) {
        return Err(Error::Invalid("ioctl argument size"));
    }
    Err(Error::Errno(libc::ENOTTY))
}

/// Fails unless the caller takes back at least `n` bytes.
fn want_out(r: &Request<'_>, n: usize) -> Result<()> {
    if (r.out_size as usize) < n {
        return Err(Error::Invalid("ioctl output buffer too small"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_number() {
        for (i, c) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|d| d.cmd != c.cmd),
                "{} is in the table twice",
                c.name
            );
        }
        for &c in abi::IOC_ALL.iter() {
            assert!(command(c).is_ok(), "{c:#x} has no entry");
        }
    }

    fn mounted() -> Filesystem {
        use crate::device::sim::SimDevice;
        use crate::filesystem::{mkfs, MkfsOptions, MountOptions};
        let dev = SimDevice::new(16 << 20, true);
        mkfs(&dev, MkfsOptions::default()).unwrap();
        Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap()
    }

    /// The answer any transport gets: the extents in bytes at device addresses, for root;
    /// EPERM (the core's refusal) for anyone else.
    #[test]
    fn extents_in_bytes_for_root_only() {
        let fs = mounted();
        let (st, _) = fs
            .create(1, b"f", 0o644, libc::O_RDWR, Ctx::root())
            .unwrap();
        fs.write(st.ino, 0, &[7u8; 8192]).unwrap();
        let info = MountInfo::default();
        let input = abi::encode_extent_list(0, &[], 0);
        let mut r = Request {
            ino: st.ino,
            fh: 0,
            cmd: abi::IOC_EXTENTS,
            input: &input,
            out_size: abi::EXTENT_LIST_SIZE as u32,
            ctx: Ctx::root(),
            mount: &info,
        };
        let c = command(r.cmd).unwrap();
        let out = c.run(&fs, &r).result.unwrap();
        let (list, total) = abi::decode_extent_list(&out).unwrap();
        let bs = fs.block_size();
        let d = fs.extents(st.ino).unwrap()[0].dblock;
        assert_eq!(total, 1);
        assert_eq!(list, vec![(0, fs.layout().data_off + d * bs, 8192)]);
        r.ctx.uid = 1000;
        assert!(matches!(
            c.run(&fs, &r).result,
            Err(Stop::Failed(Error::Perm(_)))
        ));
    }

    /// NOOP answers 0 and no bytes, to anyone, on a directory as on a file; the same number
    /// with an argument size is EINVAL like any sealfs number of another size.
    #[test]
    fn noop_answers_nothing_to_anyone() {
        let fs = mounted();
        let info = MountInfo::default();
        let mut ctx = Ctx::root();
        ctx.uid = 1000;
        let r = Request {
            ino: 1,
            fh: 0,
            cmd: abi::IOC_NOOP,
            input: &[],
            out_size: 0,
            ctx,
            mount: &info,
        };
        let c = command(abi::IOC_NOOP).unwrap();
        assert_eq!(c.name, "NOOP");
        assert!(!c.changes_attrs && !c.may_park);
        let o = c.run(&fs, &r);
        assert_eq!(o.result.unwrap(), Vec::<u8>::new());
        assert!(o.invalidate.is_empty());
        assert!(matches!(
            command(abi::ioc(2, abi::IOC_TYPE, 0x12, 8)),
            Err(Error::Invalid(_))
        ));
    }

    /// A SEAL without POPULATE changes no attribute: the transport keeps the kernel's
    /// cached ones (no invalidation written to the kernel per seal); with POPULATE, or an
    /// argument that did not decode, it drops them as the entry says.
    #[test]
    fn only_a_populating_seal_drops_cached_attributes() {
        let fs = mounted();
        let (st, fh) = fs
            .create(1, b"f", 0o644, libc::O_RDWR, Ctx::root())
            .unwrap();
        fs.truncate(st.ino, 8192, Ctx::root()).unwrap();
        let info = MountInfo::default();
        let c = command(abi::IOC_SEAL).unwrap();
        assert!(c.changes_attrs);
        let run = |offset: u64, flags: u32| {
            let input = abi::SealArg {
                offset,
                length: 4096,
                flags,
            }
            .encode();
            let r = Request {
                ino: st.ino,
                fh,
                cmd: abi::IOC_SEAL,
                input: &input,
                out_size: 0,
                ctx: Ctx::root(),
                mount: &info,
            };
            let o = c.run(&fs, &r);
            (o.result.is_ok(), o.changes_attrs)
        };
        assert_eq!(run(0, 0), (true, false));
        assert_eq!(
            run(0, abi::SEAL_BREAKABLE | abi::SEAL_REPLACE),
            (true, false)
        );
        assert_eq!(run(4096, abi::SEAL_POPULATE), (true, true));
        assert_eq!(run(0, 0x80), (false, true));
        let blocks = fs.getattr(st.ino).unwrap().blocks;
        assert_eq!(blocks, 8, "POPULATE filled the second block");
    }

    #[test]
    fn unknown_and_wrong_size() {
        assert!(matches!(command(0x1234), Err(Error::Errno(libc::ENOTTY))));
        let wrong = (abi::IOC_SEAL & !0x3fff_0000) | (3 << 16);
        assert!(matches!(command(wrong), Err(Error::Invalid(_))));
    }
}
