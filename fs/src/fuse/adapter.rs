//! The fuser `Filesystem` implementation: each request becomes one core call, its result
//! one reply; errors become errnos through `Error::errno`. No filesystem logic lives here.
//!
//! Cache lifetimes: entries and attributes are valid for the mount's `timeout=` (default
//! 60 s) in the kernel. Every change goes through this daemon and the kernel, which
//! updates or drops what it cached after each of its own requests (attributes after a
//! write, fallocate, setxattr, link or rename; the parent after a create or unlink; atime
//! after a read or listing). What the daemon changes without the kernel knowing, it
//! invalidates itself: flags and ctime after `chattr` and the immutable ioctls, blocks
//! after SEAL with POPULATE and SETUPMAPPING (they fill holes), the mode after it clears
//! set-ID bits on a direct write. Generation numbers are 0: inode numbers are
//! never reused. The core does not count lookups (an inode lives while it has links or
//! open handles), so FORGET needs no answer and READDIRPLUS is safe.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, FopenFlags, Generation,
    INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, Notifier, OpenFlags, PollEvents,
    PollFlags, PollNotifier, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyPoll,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::atime::MountWatch;
use super::attr::{file_attr, file_type, request_time, time_set};
use super::options::{CacheMode, MountConfig};
use crate::error::{Error, Stop};
use crate::filesystem::namespace::SetAttr;
use crate::filesystem::xattr::XattrReply;
use crate::filesystem::{Ctx, Filesystem, NAME_MAX};
use crate::park::Parker;

/// Generation of every inode (numbers are never reused).
const GENERATION: Generation = Generation(0);
/// Largest read or write the kernel sends (256 pages: `fs.fuse.max_pages_limit`'s default).
pub const MAX_IO: u32 = 1 << 20;
/// Longest `copy_file_range` one request performs (the reply carries a u32 count).
const MAX_COPY: u64 = 1 << 30;
/// Entries one READDIRPLUS request looks at most.
const READDIRPLUS_BATCH: usize = 256;

/// The FUSE face of a mounted core.
pub struct SealFuse {
    fs: Arc<Filesystem>,
    cfg: MountConfig,
    /// The settings `SEALFS_IOC_STAT` reports.
    info: crate::ioctl::MountInfo,
    notifier: Arc<OnceLock<Notifier>>,
    parker: Arc<Parker>,
    mount: Option<MountWatch>,
}

impl SealFuse {
    /// Serves `fs` with the settings of `cfg`.
    pub fn new(fs: Arc<Filesystem>, cfg: MountConfig) -> SealFuse {
        let parker = Parker::start(fs.clone());
        SealFuse::with_parker(fs, cfg, parker)
    }

    /// Serves `fs` beside another transport of the same mount, sharing its parker: one
    /// thread retries the parked requests and delivers the recalls of every transport.
    pub fn with_parker(fs: Arc<Filesystem>, cfg: MountConfig, parker: Arc<Parker>) -> SealFuse {
        SealFuse {
            fs,
            info: cfg.info(),
            cfg,
            notifier: Arc::default(),
            parker,
            mount: None,
        }
    }

    /// Follows the atime flags of the mount of `source` on `mountpoint` (see
    /// [`super::atime`]); called before the mount is made.
    pub fn watch_mount(&mut self, mountpoint: &Path, source: &Path) {
        self.mount = Some(MountWatch::new(
            mountpoint.to_path_buf(),
            source.as_os_str().to_os_string(),
        ));
    }

    /// Brings the core's atime rule up to date with the mount's flags.
    fn refresh_atime(&self) {
        if let Some((p, nodiratime)) = self.mount.as_ref().and_then(MountWatch::changed) {
            self.fs.set_atime_policy(p, nodiratime);
        }
    }

    /// The parker of this mount's requests.
    pub fn parker(&self) -> Arc<Parker> {
        self.parker.clone()
    }

    /// Where the session's notifier goes once the session exists (it is made from the
    /// session, which owns this adapter).
    pub fn notifier_slot(&self) -> Arc<OnceLock<Notifier>> {
        self.notifier.clone()
    }

    /// Drops the kernel's cached attributes of `ino` (after a change no reply carries).
    fn invalidate_attr(&self, ino: u64) {
        invalidate_attr(&self.notifier, ino);
    }

    fn open_flags(&self) -> FopenFlags {
        // FOPEN_NOFLUSH: nothing is buffered here and no POSIX lock lives in the daemon, so
        // close(2) need not wait for a FLUSH round trip (the kernel still writes back its
        // own dirty pages first when it has a write-back cache).
        match self.cfg.cache {
            CacheMode::Direct => {
                FopenFlags::FOPEN_DIRECT_IO
                    | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES
                    | FopenFlags::FOPEN_NOFLUSH
            }
            CacheMode::Page => FopenFlags::FOPEN_NOFLUSH,
        }
    }

    /// Runs a core call that may have to wait out a seal recall: if it must, the request
    /// is parked (no worker thread held) and `done` replies when it finally runs.
    fn parked<T: 'static>(
        &self,
        f: impl FnMut(&Filesystem) -> crate::Attempt<T> + Send + 'static,
        done: impl FnOnce(crate::Result<T>) + Send + 'static,
    ) {
        let fs = self.fs.clone();
        let mut f = f;
        self.parker.run(move || f(&fs), done);
    }

    /// Drops page-cache pages of `ino` a window wrote under.
    fn invalidate_data(&self, ino: u64, off: u64, len: u64) {
        invalidate_data(&self.notifier, ino, off, len);
    }
}

fn ctx(req: &Request) -> Ctx {
    Ctx {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
        umask: 0,
    }
}

/// The context of a create, with the umask the kernel sent (used only when ACLs are on).
fn create_ctx(req: &Request, umask: u32) -> Ctx {
    Ctx { umask, ..ctx(req) }
}

/// The errno of a core error; unexpected ones are logged as errors, the rest at debug.
fn errno(e: Error) -> Errno {
    match &e {
        Error::Io(_) | Error::Format(_) | Error::Corrupt(_) => {
            tracing::error!(error = %e, "request failed")
        }
        _ => tracing::debug!(error = %e, "request failed"),
    }
    Errno::from_i32(e.errno())
}

/// Answers a request whose reply carries no data: done, or the errno of `r`.
fn reply_empty(reply: ReplyEmpty, r: crate::Result<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

/// Drops page-cache pages of `ino` through the session's notifier.
pub(crate) fn invalidate_data(notifier: &OnceLock<Notifier>, ino: u64, off: u64, len: u64) {
    if let Some(n) = notifier.get() {
        let (o, l) = (
            i64::try_from(off).unwrap_or(i64::MAX),
            i64::try_from(len).unwrap_or(i64::MAX),
        );
        if let Err(e) = n.inval_inode(INodeNo(ino), o, l) {
            tracing::debug!(ino, error = %e, "page-cache invalidation failed");
        }
    }
}

/// Drops the kernel's cached attributes of `ino` through the session's notifier.
fn invalidate_attr(notifier: &OnceLock<Notifier>, ino: u64) {
    if let Some(n) = notifier.get() {
        if let Err(e) = n.inval_inode(INodeNo(ino), -1, 0) {
            tracing::debug!(ino, error = %e, "attribute invalidation failed");
        }
    }
}

fn name(n: &OsStr) -> &[u8] {
    n.as_bytes()
}

impl SealFuse {
    /// Answers a request that names an inode: its entry (cached for the mount's timeout), or
    /// the errno of `r`.
    fn reply_entry(&self, reply: ReplyEntry, r: crate::Result<crate::Stat>) {
        match r {
            Ok(st) => reply.entry(&self.cfg.timeout, &file_attr(&st), GENERATION),
            Err(e) => reply.error(errno(e)),
        }
    }
}

/// One debug span per request: opcode, inode and (where there is one) file handle.
macro_rules! request {
    ($op:literal, $ino:expr) => {
        tracing::debug_span!("fuse", op = $op, ino = $ino).entered()
    };
    ($op:literal, $ino:expr, $fh:expr) => {
        tracing::debug_span!("fuse", op = $op, ino = $ino, fh = $fh).entered()
    };
}

impl fuser::Filesystem for SealFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        if let Err(max) = config.set_max_write(MAX_IO) {
            let _ = config.set_max_write(max);
        }
        if let Err(max) = config.set_max_readahead(MAX_IO) {
            let _ = config.set_max_readahead(max);
        }
        let _ = config.set_time_granularity(Duration::from_nanos(1));
        let _ = config.set_max_background(64);
        // POSIX ACLs: the kernel checks access against them; the daemon stores them, keeps
        // mode and access ACL in step and does inheritance, which needs the umask the
        // kernel then sends unapplied (FUSE_DONT_MASK). Both or neither.
        if self.cfg.acl {
            match config.add_capabilities(InitFlags::FUSE_POSIX_ACL | InitFlags::FUSE_DONT_MASK) {
                Ok(()) => self.fs.set_acl_enabled(true),
                Err(missing) => {
                    tracing::warn!(
                        ?missing,
                        "the kernel does not offer POSIX ACLs; mounted without"
                    )
                }
            }
        }
        let mut want = InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_BIG_WRITES
            | InitFlags::FUSE_ASYNC_DIO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_CACHE_SYMLINKS
            // File handles (name_to_handle_at, NFS export): the kernel encodes the node
            // id and generation and, for an inode it no longer caches, looks up "." of
            // that node id (and ".." for a directory's parent).
            | InitFlags::FUSE_EXPORT_SUPPORT
            // Shared mmap of files opened with FOPEN_DIRECT_IO (kernel >= 6.6).
            | InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP;
        if self.cfg.cache == CacheMode::Page {
            want |= InitFlags::FUSE_AUTO_INVAL_DATA;
        }
        for flag in want.iter() {
            if config.add_capabilities(flag).is_err() {
                tracing::debug!(?flag, "kernel does not offer this FUSE capability");
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEntry) {
        let _s = request!("lookup", parent.0);
        self.reply_entry(reply, self.fs.lookup(parent.0, name(n)));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let _s = request!("getattr", ino.0, fh.map(|f| f.0));
        match self.fs.getattr(ino.0) {
            Ok(st) => reply.attr(&self.cfg.timeout, &file_attr(&st)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _s = request!("setattr", ino.0, fh.map(|f| f.0));
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time_set),
            mtime: mtime.map(time_set),
            ctime: ctime.map(request_time),
            fh: fh.map(|f| f.0),
        };
        let c = ctx(req);
        let ttl = self.cfg.timeout;
        self.parked(
            move |fs| fs.setattr(ino.0, set, c),
            move |r| match r {
                Ok(st) => reply.attr(&ttl, &file_attr(&st)),
                Err(e) => reply.error(errno(e)),
            },
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _s = request!("readlink", ino.0);
        match self.fs.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        n: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let _s = request!("mknod", parent.0);
        self.reply_entry(
            reply,
            self.fs
                .mknod(parent.0, name(n), mode, rdev as u64, create_ctx(req, umask)),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        n: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _s = request!("mkdir", parent.0);
        self.reply_entry(
            reply,
            self.fs
                .mkdir(parent.0, name(n), mode, create_ctx(req, umask)),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        let _s = request!("unlink", parent.0);
        let nm = name(n).to_vec();
        self.parked(
            move |fs| fs.unlink(parent.0, &nm),
            move |r| reply_empty(reply, r),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        let _s = request!("rmdir", parent.0);
        reply_empty(reply, self.fs.rmdir(parent.0, name(n)));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _s = request!("symlink", parent.0);
        let target = target.as_os_str().as_bytes();
        self.reply_entry(
            reply,
            self.fs.symlink(parent.0, name(link_name), target, ctx(req)),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        n: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _s = request!("rename", parent.0);
        let (a, b, fl, c) = (
            name(n).to_vec(),
            name(newname).to_vec(),
            flags.bits(),
            ctx(req),
        );
        self.parked(
            move |fs| fs.rename(parent.0, &a, newparent.0, &b, fl, c),
            move |r| reply_empty(reply, r),
        );
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _s = request!("link", ino.0);
        self.reply_entry(reply, self.fs.link(ino.0, newparent.0, name(newname)));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _s = request!("open", ino.0);
        match self.fs.open(ino.0, flags.0, ctx(req)) {
            Ok(fh) => reply.opened(FileHandle(fh), self.open_flags()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _s = request!("read", ino.0, fh.0);
        self.refresh_atime();
        thread_local! {
            // Up to one READ's worth (max_read, 1 MiB) per worker thread, kept.
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| match self.fs.read_into(ino.0, offset, size, buf) {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(errno(e)),
        });
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _s = request!("write", ino.0, fh.0);
        // The kernel clears set-user/group-ID itself before page-cache writes
        // (`file_remove_privs`), but before a direct write it only tells: the writer
        // lacks CAP_FSETID when FUSE_WRITE_KILL_SUIDGID is set (`fuse_direct_io`).
        if write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID)
            && !write_flags.contains(WriteFlags::FUSE_WRITE_CACHE)
        {
            match self.fs.remove_privs(ino.0, ctx(req)) {
                Ok(true) => self.invalidate_attr(ino.0),
                Ok(false) => {}
                Err(e) => return reply.error(errno(e)),
            }
        }
        // The common case (no seal in the way) runs without copying the data.
        match self.fs.write(ino.0, offset, data) {
            Err(Stop::Wait(_)) => {
                let data = data.to_vec();
                self.parked(
                    move |fs| fs.write(ino.0, offset, &data),
                    move |r| match r {
                        Ok(n) => reply.written(n),
                        Err(e) => reply.error(errno(e)),
                    },
                );
            }
            Ok(n) => reply.written(n),
            Err(Stop::Failed(e)) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing is buffered: every reply is already as durable as it will get.
        let _s = request!("flush", ino.0, fh.0);
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _s = request!("release", ino.0, fh.0);
        self.parker.forget(fh.0);
        reply_empty(reply, self.fs.release(fh.0));
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _s = request!("fsync", ino.0, fh.0);
        reply_empty(reply, self.fs.fsync(ino.0, datasync));
    }

    fn opendir(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        // A real handle: an open directory outlives its removal (fstat still works).
        let _s = request!("opendir", ino.0);
        // The kernel may cache the listing (FOPEN_CACHE_DIR) and keep it across opens: every
        // change to a directory goes through the kernel, which drops the cache when the
        // directory changes (its i_version) or its attributes do. Not when this listing is
        // due to update the directory's atime: the daemon must see it, so the kernel is
        // told to drop its copy (no KEEP_CACHE) and cache this listing afresh.
        self.refresh_atime();
        let cache = if self.fs.listing_updates_atime(ino.0) {
            FopenFlags::FOPEN_CACHE_DIR
        } else {
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
        };
        match self.fs.open(ino.0, flags.0, ctx(req)) {
            Ok(fh) => reply.opened(FileHandle(fh), cache),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _s = request!("releasedir", ino.0, fh.0);
        reply_empty(reply, self.fs.release(fh.0));
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _s = request!("readdir", ino.0, fh.0);
        self.refresh_atime();
        let r = self.fs.readdir(ino.0, offset, |e| {
            reply.add(
                INodeNo(e.ino),
                e.cookie,
                file_type(e.kind),
                OsStr::from_bytes(&e.name),
            )
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _s = request!("readdirplus", ino.0, fh.0);
        // Collect first: attributes are read after the directory's lock is released.
        let mut entries = Vec::new();
        self.refresh_atime();
        let r = self.fs.readdir(ino.0, offset, |e| {
            entries.push(e);
            entries.len() >= READDIRPLUS_BATCH
        });
        if let Err(e) = r {
            return reply.error(errno(e));
        }
        for e in entries {
            let st = match self.fs.getattr(e.ino) {
                Ok(st) => st,
                // Removed since it was listed: leave it out.
                Err(Error::NotFound) => continue,
                Err(err) => return reply.error(errno(err)),
            };
            let name = OsStr::from_bytes(&e.name);
            if reply.add(
                INodeNo(e.ino),
                e.cookie,
                name,
                &self.cfg.timeout,
                &file_attr(&st),
                GENERATION,
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Directory changes are durable when their replies are sent.
        let _s = request!("fsyncdir", ino.0, fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let _s = request!("statfs", ino.0);
        let s = self.fs.stats();
        let files = s.max_inodes.max(s.inodes);
        reply.statfs(
            s.total_blocks,
            s.free_blocks,
            s.free_blocks,
            files,
            files - s.inodes,
            s.block_size as u32,
            NAME_MAX as u32,
            s.block_size as u32,
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        n: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _s = request!("setxattr", ino.0);
        // fuser does not negotiate FUSE_SETXATTR_EXT, so the kernel's
        // FUSE_SETXATTR_ACL_KILL_SGID flag never arrives: ask /proc what it would say.
        let pid = req.pid();
        let kill = |gid| !super::creds::in_group_or_capable_fsetid(pid, gid);
        reply_empty(
            reply,
            self.fs.setxattr_as(ino.0, name(n), value, flags, &kill),
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, n: &OsStr, size: u32, reply: ReplyXattr) {
        let _s = request!("getxattr", ino.0);
        match self.fs.getxattr(ino.0, name(n), size) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(d)) => reply.data(&d),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _s = request!("listxattr", ino.0);
        match self.fs.listxattr(ino.0, size) {
            Ok(XattrReply::Size(n)) => reply.size(n),
            Ok(XattrReply::Data(d)) => reply.data(&d),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        let _s = request!("removexattr", ino.0);
        reply_empty(reply, self.fs.removexattr(ino.0, name(n)));
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // default_permissions: the kernel checks the mode bits itself.
        let _s = request!("access", ino.0);
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        n: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _s = request!("create", parent.0);
        match self
            .fs
            .create(parent.0, name(n), mode, flags, create_ctx(req, umask))
        {
            Ok((st, fh)) => reply.created(
                &self.cfg.timeout,
                &file_attr(&st),
                GENERATION,
                FileHandle(fh),
                self.open_flags(),
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn ioctl(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        in_data: &[u8],
        out_size: u32,
        reply: ReplyIoctl,
    ) {
        let _s = request!("ioctl", ino.0, fh.0);
        tracing::debug!(
            cmd = format_args!("{cmd:#x}"),
            in_len = in_data.len(),
            out_size
        );
        let c = match crate::ioctl::command(cmd) {
            Ok(c) => c,
            Err(e) => return reply.error(errno(e)),
        };
        let r = crate::ioctl::Request {
            ino: ino.0,
            fh: fh.0,
            cmd,
            input: in_data,
            out_size,
            ctx: ctx(req),
            mount: &self.info,
        };
        let first = c.run(&self.fs, &r);
        for x in first.invalidate {
            self.invalidate_data(x.ino, x.offset, x.len);
        }
        let res = match first.result {
            // Only a command whose handler may park stops with a wait (`Command::run`).
            Err(Stop::Wait(_)) => {
                let input = in_data.to_vec();
                let notifier = self.notifier.clone();
                let retry_notifier = self.notifier.clone();
                let (user, info) = (r.ctx, self.info);
                self.parked(
                    move |fs| {
                        let r = crate::ioctl::Request {
                            ino: ino.0,
                            fh: fh.0,
                            cmd,
                            input: &input,
                            out_size,
                            ctx: user,
                            mount: &info,
                        };
                        // A retry applies the invalidations it asks for, as the first
                        // attempt does.
                        let o = c.run(fs, &r);
                        for x in o.invalidate {
                            invalidate_data(&retry_notifier, x.ino, x.offset, x.len);
                        }
                        o.result
                    },
                    move |res| {
                        if c.changes_attrs {
                            invalidate_attr(&notifier, ino.0);
                        }
                        match res {
                            Ok(out) => reply.ioctl(0, &out),
                            Err(e) => reply.error(errno(e)),
                        }
                    },
                );
                return;
            }
            Err(Stop::Failed(e)) => Err(e),
            Ok(out) => Ok(out),
        };
        if first.changes_attrs {
            self.invalidate_attr(ino.0);
        }
        match res {
            Ok(out) => reply.ioctl(0, &out),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _s = request!("fallocate", ino.0, fh.0);
        self.parked(
            move |fs| fs.fallocate(ino.0, offset, length, mode),
            move |r| reply_empty(reply, r),
        );
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        // The kernel sends only SEEK_DATA and SEEK_HOLE; it does the other whences itself.
        let _s = request!("lseek", ino.0, fh.0);
        if whence != libc::SEEK_DATA && whence != libc::SEEK_HOLE {
            return reply.error(Errno::EINVAL);
        }
        let Ok(off) = u64::try_from(offset) else {
            return reply.error(Errno::ENXIO);
        };
        match self.fs.seek(ino.0, off, whence) {
            Ok(pos) => reply.offset(pos as i64),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        _fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let _s = request!("copy_file_range", ino_in.0, fh_in.0);
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let len = len.min(MAX_COPY);
        self.parked(
            move |fs| fs.copy_range(ino_in.0, offset_in, ino_out.0, offset_out, len),
            move |r| match r {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(errno(e)),
            },
        );
    }

    fn poll(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        // POLLPRI tells a seal holder or window host that it is being recalled, or that its
        // seals were revoked (by a timeout or by root).
        let _s = request!("poll", ino.0, fh.0);
        let notify = flags
            .contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY)
            .then(|| Box::new(move || ph.notify()) as crate::park::Notify);
        let recalled = self.parker.poll(fh.0, notify, || {
            self.fs.recall_pending(fh.0)
                || self.fs.seals_revoked(fh.0)
                || !self.fs.recalled_mappings(fh.0).is_empty()
        });
        let mut ev = PollEvents::POLLIN | PollEvents::POLLOUT | PollEvents::POLLRDNORM;
        if recalled {
            ev |= PollEvents::POLLPRI;
        }
        reply.poll(ev);
    }
}
