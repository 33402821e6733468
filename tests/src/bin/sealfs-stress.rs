//! `sealfs-stress`: an fsx-style stress tester for sealfs (or any directory).
//!
//! P worker processes (the binary re-executed with `--worker I`) each own F files
//! `DIR/p<I>-f<J>` and run a seeded random sequence of operations on them — `pwrite`,
//! `pread`, `ftruncate`, `fallocate` (default, `KEEP_SIZE`, `PUNCH_HOLE`, `ZERO_RANGE`),
//! `MAP_SHARED` mmap reads and writes, `copy_file_range`, `fsync`/`fdatasync`, close and
//! reopen, `SEEK_DATA`/`SEEK_HOLE`, and temporary sealfs seals — checking every result
//! against an exact in-memory model of each file. No two processes share a file, so the
//! model is exact; the processes still run concurrently against one filesystem.
//!
//! A run is reproducible: the worker seeds derive from `--seed`, and `--worker I` replays
//! one worker alone. On the first miscompare or unexpected errno a worker prints the seed,
//! the op index, the first differing offset with expected and got bytes, which logged ops
//! touched that offset, and the tail of its op log (the last 1000 ops go to the log file),
//! then exits non-zero.
//!
//! With `--durable-log DUR` each worker also records, outside the mount, the contents of a
//! file at its last successful `fsync`/`fdatasync` and, before every later operation that
//! may change it, the byte range it may change. After a crash `--verify-durable DUR` checks
//! that every byte fsynced and not touched since is there (see `docs/testing.md`).
//!
//! This tool must not know the filesystem's internals: it only uses system calls on files
//! under `--dir`, like any application.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

/// Exit codes of a worker (and of the parent, which passes the worst one on).
mod code {
    pub const OK: u8 = 0;
    /// An unexpected errno, a short copy, a bad seek result or a usage error.
    pub const ERROR: u8 = 1;
    /// Data read back differs from the model.
    pub const MISCOMPARE: u8 = 2;
    /// The filesystem went away (ENOTCONN, ECONNABORTED; EIO and SIGBUS too with
    /// `--durable-log`): expected when the daemon is killed by the kill loop.
    pub const GONE: u8 = 3;
    /// SIGBUS or SIGSEGV inside an mmap access.
    pub const FAULT: u8 = 4;
}

const USAGE: &str = "\
usage: sealfs-stress --dir DIR [options]
  --dir DIR            directory to work in (a sealfs mount, or tmpfs for a dry run)
  --seed N             random seed (default: from the clock; printed)
  --ops N              operations in total, split over the workers (default 100000)
  --procs P            worker processes (default 4)
  --files F            files per worker (default 4)
  --max-size BYTES     largest file size (default 1M; K/M/G suffixes)
  --no-mmap            no mmap reads or writes
  --no-seals           no sealfs seals
  --fsync-every K      fsync the file touched by every K-th op of a worker (0: never)
  --log FILE           where a failing worker writes its full op log (default under /tmp)
  --durable-log DUR    record fsynced state in directory DUR (outside the mount)
  --verify-durable DUR after a crash: check DIR against the fsynced state in DUR
  --verify-only        same as --verify-durable with the --durable-log directory
  --enospc             ENOSPC is allowed (for a small, filling filesystem): the model
                       follows what the filesystem says it did, within what is possible
  --stats              print each worker's count of logged system calls per kind
  --worker I           run worker I alone in the foreground (replay of a failure)
exit status: 0 ok, 1 error, 2 miscompare, 3 filesystem gone, 4 fault in mmap";

/// The sealfs ioctl ABI (`include/sealfs.h`).
mod abi {
    /// `_IOW('S', 1, struct sealfs_seal)`.
    pub const SEALFS_IOC_SEAL: u64 = 0x4018_5301;
    /// `_IOW('S', 2, struct sealfs_seal)`.
    pub const SEALFS_IOC_UNSEAL: u64 = 0x4018_5302;
    /// `SEALFS_SEAL_POPULATE`: allocate and zero the holes of the range first.
    pub const SEAL_POPULATE: u32 = 0x2;
    /// `SEALFS_SEAL_REPLACE`: the seal replaces the descriptor's other seals.
    pub const SEAL_REPLACE: u32 = 0x4;

    /// `struct sealfs_seal`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct Seal {
        pub offset: u64,
        /// 0: to the end of the file, whatever it becomes.
        pub length: u64,
        pub flags: u32,
        pub reserved: u32,
    }
}

/// Thin system call wrappers returning the errno; all of the tool's `unsafe` lives here.
mod sys {
    use std::ffi::CString;
    use std::os::fd::RawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    pub type Res<T> = Result<T, i32>;

    fn errno() -> i32 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    }

    fn cvt(r: libc::c_int) -> Res<()> {
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    pub fn cpath(p: &Path) -> CString {
        CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
    }

    pub fn open(path: &Path, flags: libc::c_int) -> Res<RawFd> {
        let c = cpath(path);
        loop {
            // SAFETY: c is a valid NUL-terminated path; the mode is a plain integer.
            let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
            if fd >= 0 {
                return Ok(fd);
            }
            let e = errno();
            if e != libc::EINTR {
                return Err(e);
            }
        }
    }

    pub fn close(fd: RawFd) -> Res<()> {
        // SAFETY: fd is a descriptor this process opened and owns; it is not used again.
        cvt(unsafe { libc::close(fd) })
    }

    /// Writes all of `buf` at `off` (a short write is continued, as fsx does).
    pub fn pwrite_all(fd: RawFd, buf: &[u8], off: u64) -> Res<()> {
        pwrite_progress(fd, buf, off).map_err(|(_, e)| e)
    }

    /// As `pwrite_all`, but an error also says how many bytes were written before it.
    pub fn pwrite_progress(fd: RawFd, buf: &[u8], off: u64) -> Result<(), (usize, i32)> {
        let mut done = 0;
        while done < buf.len() {
            let rest = &buf[done..];
            // SAFETY: rest is a valid readable buffer of rest.len() bytes.
            let n = unsafe {
                libc::pwrite(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    (off + done as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err((done, e));
            }
            if n == 0 {
                return Err((done, libc::EIO));
            }
            done += n as usize;
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes at `off`, stopping at end of file.
    pub fn pread_full(fd: RawFd, buf: &mut [u8], off: u64) -> Res<usize> {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: rest is a valid writable buffer of rest.len() bytes.
            let n = unsafe {
                libc::pread(
                    fd,
                    rest.as_mut_ptr().cast(),
                    rest.len(),
                    (off + done as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                break;
            }
            done += n as usize;
        }
        Ok(done)
    }

    pub fn ftruncate(fd: RawFd, size: u64) -> Res<()> {
        // SAFETY: plain system call on an owned descriptor.
        cvt(unsafe { libc::ftruncate(fd, size as libc::off_t) })
    }

    pub fn fallocate(fd: RawFd, mode: libc::c_int, off: u64, len: u64) -> Res<()> {
        // SAFETY: plain system call on an owned descriptor.
        cvt(unsafe { libc::fallocate(fd, mode, off as libc::off_t, len as libc::off_t) })
    }

    pub fn fsync(fd: RawFd) -> Res<()> {
        // SAFETY: plain system call on an owned descriptor.
        cvt(unsafe { libc::fsync(fd) })
    }

    pub fn fdatasync(fd: RawFd) -> Res<()> {
        // SAFETY: plain system call on an owned descriptor.
        cvt(unsafe { libc::fdatasync(fd) })
    }

    pub fn lseek(fd: RawFd, off: u64, whence: libc::c_int) -> Res<u64> {
        // SAFETY: plain system call on an owned descriptor.
        let r = unsafe { libc::lseek(fd, off as libc::off_t, whence) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(r as u64)
        }
    }

    pub fn fstat_size(fd: RawFd) -> Res<u64> {
        // SAFETY: st is plain old data that fstat fills in.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: st is a valid, writable struct stat.
        cvt(unsafe { libc::fstat(fd, &mut st) })?;
        Ok(st.st_size as u64)
    }

    /// One `copy_file_range` call; returns the bytes copied (possibly short).
    pub fn copy_file_range(src: RawFd, soff: u64, dst: RawFd, doff: u64, len: u64) -> Res<u64> {
        let mut so = soff as libc::off64_t;
        let mut d = doff as libc::off64_t;
        // SAFETY: the offset pointers are valid for the duration of the call.
        let n = unsafe { libc::copy_file_range(src, &mut so, dst, &mut d, len as usize, 0) };
        if n < 0 {
            Err(errno())
        } else {
            Ok(n as u64)
        }
    }

    pub fn seal_ioctl(fd: RawFd, cmd: u64, arg: &super::abi::Seal) -> Res<()> {
        // SAFETY: arg points to a valid 24-byte struct sealfs_seal, which the kernel only
        // reads (an _IOW ioctl).
        let r = unsafe { libc::ioctl(fd, cmd as _, arg as *const super::abi::Seal) };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }

    pub fn page_size() -> u64 {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            p as u64
        } else {
            4096
        }
    }

    /// A `MAP_SHARED` mapping of a file range, unmapped on drop.
    pub struct Mapping {
        ptr: *mut u8,
        len: usize,
    }

    impl Mapping {
        /// Maps `[off, off+len)` of `fd`; `off` must be page aligned.
        pub fn new(fd: RawFd, off: u64, len: usize, write: bool) -> Res<Mapping> {
            let prot = libc::PROT_READ | if write { libc::PROT_WRITE } else { 0 };
            // SAFETY: a fresh mapping chosen by the kernel; nothing else aliases it.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_SHARED,
                    fd,
                    off as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(errno());
            }
            Ok(Mapping { ptr: p.cast(), len })
        }

        /// Copies `out.len()` bytes at `at` out of the mapping (a fault here is SIGBUS,
        /// which the worker's fault handler reports).
        pub fn read(&self, at: usize, out: &mut [u8]) {
            assert!(at + out.len() <= self.len);
            // SAFETY: the source range lies inside the live mapping; explicit copies
            // because the page cache may be written by the kernel underneath.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(at), out.as_mut_ptr(), out.len()) }
        }

        pub fn write(&self, at: usize, data: &[u8]) {
            assert!(at + data.len() <= self.len);
            // SAFETY: the destination range lies inside the live, writable mapping.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(at), data.len()) }
        }

        pub fn msync(&self) -> Res<()> {
            // SAFETY: ptr/len describe exactly this live mapping.
            cvt(unsafe { libc::msync(self.ptr.cast(), self.len, libc::MS_SYNC) })
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: ptr/len describe exactly this mapping, which is not used afterwards.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }

    /// Dies with the parent (a killed stress run leaves no workers behind).
    pub fn die_with_parent() {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no memory effects.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }

    pub fn kill(pid: u32, sig: libc::c_int) {
        // SAFETY: signals only a child this process started.
        unsafe { libc::kill(pid as libc::pid_t, sig) };
    }

    /// Installs `handler` for SIGBUS and SIGSEGV (one shot: a second fault kills).
    pub fn on_fault(handler: extern "C" fn(libc::c_int)) {
        for sig in [libc::SIGBUS, libc::SIGSEGV] {
            // SAFETY: sa is plain old data, fully initialised before use; the handler is an
            // extern "C" function that lives for the whole program.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = handler as usize;
                sa.sa_flags = libc::SA_RESETHAND;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }

    pub fn exit_now(code: i32) -> ! {
        // SAFETY: _exit never returns and is async-signal-safe.
        unsafe { libc::_exit(code) }
    }
}

/// Deterministic randomness: SplitMix64 for the op stream and for write data.
mod rng {
    pub fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(seed)
        }
        pub fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix(self.0)
        }
        /// Uniform in `[0, n)`; 0 when n is 0.
        pub fn below(&mut self, n: u64) -> u64 {
            ((self.next() as u128 * n as u128) >> 64) as u64
        }
        pub fn one_in(&mut self, n: u64) -> bool {
            self.below(n) == 0
        }
    }

    /// The data an op writes: a function of (worker seed, op index, file offset), so a
    /// byte read back can be traced to the op that wrote it.
    pub fn pattern(wseed: u64, idx: u64, off: u64, buf: &mut [u8]) {
        let key = mix(wseed ^ mix(idx));
        let mut pos = off;
        let mut i = 0;
        while i < buf.len() {
            let word = mix(key ^ (pos >> 3).wrapping_mul(0xD6E8_FEB8_6659_FD93)).to_le_bytes();
            let start = (pos & 7) as usize;
            let n = (8 - start).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&word[start..start + n]);
            i += n;
            pos += n as u64;
        }
    }
}

/// Command line options, shared by the parent and its workers.
#[derive(Clone, Debug)]
struct Opts {
    dir: PathBuf,
    seed: u64,
    ops: u64,
    procs: u32,
    files: u32,
    max_size: u64,
    mmap: bool,
    seals: bool,
    fsync_every: u64,
    log: Option<PathBuf>,
    durable: Option<PathBuf>,
    verify_durable: Option<PathBuf>,
    worker: Option<u32>,
    stats: bool,
    enospc: bool,
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        dir: PathBuf::new(),
        seed: 0,
        ops: 100_000,
        procs: 4,
        files: 4,
        max_size: 1 << 20,
        mmap: true,
        seals: true,
        fsync_every: 0,
        log: None,
        durable: None,
        verify_durable: None,
        worker: None,
        stats: false,
        enospc: false,
    };
    let mut seed = None;
    let mut verify_only = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| -> Result<String, String> {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let num = |name: &str, v: String| -> Result<u64, String> {
            parse_size(&v).ok_or_else(|| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--dir" => o.dir = PathBuf::from(val(a)?),
            "--seed" => seed = Some(num(a, val(a)?)?),
            "--ops" => o.ops = num(a, val(a)?)?,
            "--procs" => o.procs = num(a, val(a)?)? as u32,
            "--files" => o.files = num(a, val(a)?)? as u32,
            "--max-size" => o.max_size = num(a, val(a)?)?,
            "--no-mmap" => o.mmap = false,
            "--no-seals" => o.seals = false,
            "--fsync-every" => o.fsync_every = num(a, val(a)?)?,
            "--log" => o.log = Some(PathBuf::from(val(a)?)),
            "--durable-log" => o.durable = Some(PathBuf::from(val(a)?)),
            "--verify-durable" => o.verify_durable = Some(PathBuf::from(val(a)?)),
            "--verify-only" => verify_only = true,
            "--stats" => o.stats = true,
            "--enospc" => o.enospc = true,
            "--worker" => o.worker = Some(num(a, val(a)?)? as u32),
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument: {a}")),
        }
    }
    if o.dir.as_os_str().is_empty() {
        return Err("--dir is required".into());
    }
    if o.enospc && o.durable.is_some() {
        return Err("--enospc and --durable-log do not mix".into());
    }
    if verify_only {
        o.verify_durable = Some(
            o.durable
                .clone()
                .ok_or("--verify-only needs --durable-log DUR")?,
        );
    }
    if o.procs == 0 || o.files == 0 || o.procs > 256 || o.files > 256 {
        return Err("--procs and --files must be in 1..=256".into());
    }
    if o.max_size < 4096 {
        return Err("--max-size must be at least 4096".into());
    }
    if let Some(w) = o.worker {
        if w >= o.procs {
            return Err(format!("--worker {w} needs --procs > {w}"));
        }
    }
    o.seed = seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        rng::mix(t ^ std::process::id() as u64) % 1_000_000_000
    });
    Ok(o)
}

fn errname(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::ENOLCK => "ENOLCK",
        libc::ENOSYS => "ENOSYS",
        libc::ENXIO => "ENXIO",
        libc::ENOLINK => "ENOLINK",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ENOTCONN => "ENOTCONN",
        _ => return format!("errno {e} ({})", std::io::Error::from_raw_os_error(e)),
    };
    name.to_string()
}

fn hex(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// File name of worker `w`'s file `f`.
fn file_name(w: u32, f: usize) -> String {
    format!("p{w}-f{f}")
}

// ---------------------------------------------------------------------------------------
// Durability records (outside the mount).
// ---------------------------------------------------------------------------------------

/// On-disk records of `--durable-log DUR`, per file `NAME`:
/// - `DUR/NAME.snap`: `SFSSNAP1`, u64 LE size, then the contents at the last successful
///   fsync; replaced atomically (write `.tmp`, rename).
/// - `DUR/NAME.dirty`: records of 24 bytes (u64 LE `lo`, `hi`, `flags`) appended *before*
///   every operation issued since that fsync: bytes in `[lo, hi)` may have changed, and
///   with flag 1 the size may have changed. Emptied after each snapshot.
mod durable {
    use std::fs::{self, File, OpenOptions};
    use std::io::{Read, Write};
    use std::path::{Path, PathBuf};

    pub const MAGIC: &[u8; 8] = b"SFSSNAP1";
    pub const SIZE_MAY_CHANGE: u64 = 1;

    pub struct Track {
        snap: PathBuf,
        tmp: PathBuf,
        dirty: File,
        dirty_path: PathBuf,
        /// Records were appended since the last snapshot.
        pub dirty_now: bool,
    }

    impl Track {
        /// Forgets what DUR knew about `name` (before the file is recreated).
        pub fn reset(dur: &Path, name: &str) -> std::io::Result<Track> {
            let snap = dur.join(format!("{name}.snap"));
            let tmp = dur.join(format!("{name}.snap.tmp"));
            let dirty_path = dur.join(format!("{name}.dirty"));
            for p in [&snap, &tmp] {
                match fs::remove_file(p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            let dirty = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&dirty_path)?;
            dirty.set_len(0)?;
            Ok(Track {
                snap,
                tmp,
                dirty,
                dirty_path,
                dirty_now: false,
            })
        }

        /// Before an operation: `[lo, hi)` may change.
        pub fn mark(&mut self, lo: u64, hi: u64, size_may_change: bool) -> std::io::Result<()> {
            let mut rec = [0u8; 24];
            rec[0..8].copy_from_slice(&lo.to_le_bytes());
            rec[8..16].copy_from_slice(&hi.to_le_bytes());
            let flags = if size_may_change { SIZE_MAY_CHANGE } else { 0 };
            rec[16..24].copy_from_slice(&flags.to_le_bytes());
            self.dirty_now = true;
            self.dirty.write_all(&rec)
        }

        /// After a successful fsync: the contents are durable.
        pub fn snapshot(&mut self, data: &[u8]) -> std::io::Result<()> {
            let mut f = File::create(&self.tmp)?;
            let mut head = [0u8; 16];
            head[..8].copy_from_slice(MAGIC);
            head[8..].copy_from_slice(&(data.len() as u64).to_le_bytes());
            f.write_all(&head)?;
            f.write_all(data)?;
            drop(f);
            fs::rename(&self.tmp, &self.snap)?;
            // Stale records left by a kill between rename and here only weaken the check.
            self.dirty.set_len(0)?;
            self.dirty_now = false;
            Ok(())
        }
    }

    /// A file's durable state as read back by `--verify-durable`.
    pub struct Saved {
        pub data: Vec<u8>,
        /// `(lo, hi, flags)` records.
        pub dirty: Vec<(u64, u64, u64)>,
    }

    pub fn load(dur: &Path, name: &str) -> Result<Saved, String> {
        let snap = dur.join(format!("{name}.snap"));
        let mut buf = Vec::new();
        File::open(&snap)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| format!("{}: {e}", snap.display()))?;
        if buf.len() < 16 || &buf[..8] != MAGIC {
            return Err(format!("{}: not a snapshot", snap.display()));
        }
        let size = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")) as usize;
        if buf.len() != 16 + size {
            return Err(format!("{}: truncated snapshot", snap.display()));
        }
        let data = buf.split_off(16);
        let mut raw = Vec::new();
        let dp = dur.join(format!("{name}.dirty"));
        match File::open(&dp) {
            Ok(mut f) => {
                f.read_to_end(&mut raw)
                    .map_err(|e| format!("{}: {e}", dp.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", dp.display())),
        }
        let dirty = raw
            .chunks_exact(24)
            .map(|r| {
                let w = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().expect("8 bytes"));
                (w(0), w(8), w(16))
            })
            .collect();
        Ok(Saved { data, dirty })
    }

    impl Track {
        pub fn dirty_path(&self) -> &Path {
            &self.dirty_path
        }
    }
}

// ---------------------------------------------------------------------------------------
// The worker.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Create,
    Write,
    Read,
    Truncate,
    Falloc,
    FallocKeep,
    Punch,
    Zero,
    ZeroKeep,
    MmapRead,
    MmapWrite,
    Copy,
    Fsync,
    Fdatasync,
    Reopen,
    Stat,
    SeekData,
    SeekHole,
    Verify,
    Seal,
    SealTruncate,
    SealPunch,
    SealWrite,
    SealHoleWrite,
    SealExtend,
    SealGrow,
    Unseal,
}

impl Kind {
    const ALL: [Kind; 27] = [
        Kind::Create,
        Kind::Write,
        Kind::Read,
        Kind::Truncate,
        Kind::Falloc,
        Kind::FallocKeep,
        Kind::Punch,
        Kind::Zero,
        Kind::ZeroKeep,
        Kind::MmapRead,
        Kind::MmapWrite,
        Kind::Copy,
        Kind::Fsync,
        Kind::Fdatasync,
        Kind::Reopen,
        Kind::Stat,
        Kind::SeekData,
        Kind::SeekHole,
        Kind::Verify,
        Kind::Seal,
        Kind::SealTruncate,
        Kind::SealPunch,
        Kind::SealWrite,
        Kind::SealHoleWrite,
        Kind::SealExtend,
        Kind::SealGrow,
        Kind::Unseal,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Write => "write",
            Kind::Read => "read",
            Kind::Truncate => "truncate",
            Kind::Falloc => "falloc",
            Kind::FallocKeep => "falloc-keep",
            Kind::Punch => "punch-hole",
            Kind::Zero => "zero-range",
            Kind::ZeroKeep => "zero-range-keep",
            Kind::MmapRead => "mmap-read",
            Kind::MmapWrite => "mmap-write",
            Kind::Copy => "copy-range",
            Kind::Fsync => "fsync",
            Kind::Fdatasync => "fdatasync",
            Kind::Reopen => "reopen",
            Kind::Stat => "stat",
            Kind::SeekData => "seek-data",
            Kind::SeekHole => "seek-hole",
            Kind::Verify => "verify",
            Kind::Seal => "seal",
            Kind::SealTruncate => "sealed-truncate",
            Kind::SealPunch => "sealed-punch",
            Kind::SealWrite => "sealed-write",
            Kind::SealHoleWrite => "sealed-hole-write",
            Kind::SealExtend => "sealed-extend",
            Kind::SealGrow => "sealed-grow",
            Kind::Unseal => "unseal",
        }
    }

    /// Ops whose data is `rng::pattern(wseed, idx, offset)`.
    fn writes_pattern(self) -> bool {
        matches!(self, Kind::Write | Kind::MmapWrite | Kind::SealWrite)
    }
}

/// One logged operation.
#[derive(Clone, Debug)]
struct Rec {
    idx: u64,
    file: usize,
    kind: Kind,
    off: u64,
    len: u64,
    /// Copy: source file; seal: flags.
    aux: u64,
    /// Copy: source offset.
    aux2: u64,
    size_before: u64,
    size_after: u64,
    /// Bytes transferred or the resulting offset; negative: -errno.
    result: i64,
}

impl Rec {
    fn line(&self) -> String {
        let mut s = format!(
            "#{:<7} f{} {:<17} off {:#9x} len {:#7x}",
            self.idx,
            self.file,
            self.kind.name(),
            self.off,
            self.len
        );
        match self.kind {
            Kind::Copy => {
                let _ = write!(s, " from f{} @ {:#x}", self.aux, self.aux2);
            }
            Kind::Seal | Kind::Unseal => {
                let _ = write!(s, " flags {:#x}", self.aux);
            }
            _ => {}
        }
        let _ = write!(s, " size {:#x}->{:#x}", self.size_before, self.size_after);
        if self.result < 0 {
            let _ = write!(s, " = {}", errname(-self.result as i32));
        } else {
            let _ = write!(s, " = {:#x}", self.result);
        }
        s
    }

    /// The byte range this op may have changed (for blame).
    fn touches(&self, at: u64) -> bool {
        match self.kind {
            Kind::Write
            | Kind::MmapWrite
            | Kind::SealWrite
            | Kind::Copy
            | Kind::Punch
            | Kind::Zero
            | Kind::ZeroKeep => at >= self.off && at < self.off + self.len,
            Kind::Truncate | Kind::Falloc | Kind::Create => {
                let lo = self.size_before.min(self.size_after);
                at >= lo
            }
            _ => false,
        }
    }
}

struct FileState {
    path: PathBuf,
    fd: i32,
    model: Vec<u8>,
    track: Option<durable::Track>,
}

/// Op kinds a filesystem may not support; each is turned off at its first EOPNOTSUPP.
#[derive(Default)]
struct Support {
    off: Vec<(Kind, String)>,
}

impl Support {
    fn has(&self, k: Kind) -> bool {
        !self.off.iter().any(|(x, _)| *x == k)
    }
    fn disable(&mut self, k: Kind, why: String) {
        if self.has(k) {
            self.off.push((k, why));
        }
    }
}

const RING: usize = 1000;
const MAX_IO: u64 = 256 << 10;

static FAULT_WORKER: std::sync::atomic::AtomicPtr<Worker> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_fault(sig: libc::c_int) {
    let w = FAULT_WORKER.load(std::sync::atomic::Ordering::SeqCst);
    if !w.is_null() {
        // SAFETY: the pointer is set while the worker runs its op loop and the fault came
        // from this single thread inside an mmap copy; we only read the log and exit.
        let w = unsafe { &*w };
        w.report_fault(sig);
    }
    sys::exit_now(code::FAULT as i32);
}

struct Worker {
    o: Opts,
    id: u32,
    wseed: u64,
    rng: rng::Rng,
    files: Vec<FileState>,
    ring: VecDeque<Rec>,
    idx: u64,
    support: Support,
    buf: Vec<u8>,
    rbuf: Vec<u8>,
    page: u64,
    counts: [u64; 32],
    /// Operations that got ENOSPC (with `--enospc`).
    enospc: u64,
    start: Instant,
}

impl Worker {
    fn new(o: Opts, id: u32) -> Worker {
        let wseed = rng::mix(o.seed ^ rng::mix(u64::from(id) + 1));
        let mut support = Support::default();
        if !o.mmap {
            support.disable(Kind::MmapRead, "option".into());
            support.disable(Kind::MmapWrite, "option".into());
        }
        if !o.seals {
            support.disable(Kind::Seal, "option".into());
        }
        if o.files < 2 {
            support.disable(Kind::Copy, "one-file".into());
        }
        if o.enospc {
            // A write fault that cannot allocate is SIGBUS: no model can follow that.
            support.disable(Kind::MmapWrite, "enospc".into());
        }
        Worker {
            o,
            id,
            wseed,
            rng: rng::Rng::new(wseed),
            files: Vec::new(),
            ring: VecDeque::with_capacity(RING),
            idx: 0,
            support,
            buf: Vec::with_capacity(MAX_IO as usize),
            rbuf: Vec::with_capacity(MAX_IO as usize),
            page: sys::page_size(),
            counts: [0; 32],
            enospc: 0,
            start: Instant::now(),
        }
    }

    fn my_ops(&self) -> u64 {
        let p = u64::from(self.o.procs);
        self.o.ops / p + u64::from(u64::from(self.id) < self.o.ops % p)
    }

    fn log(&mut self, r: Rec) {
        if self.ring.len() == RING {
            self.ring.pop_front();
        }
        self.counts[r.kind as usize] += 1;
        self.ring.push_back(r);
    }

    fn rec(&self, f: usize, kind: Kind, off: u64, len: u64) -> Rec {
        let size = self.files[f].model.len() as u64;
        Rec {
            idx: self.idx,
            file: f,
            kind,
            off,
            len,
            aux: 0,
            aux2: 0,
            size_before: size,
            size_after: size,
            result: 0,
        }
    }

    // ---- failure reporting -----------------------------------------------------------

    fn replay_cmd(&self) -> String {
        let o = &self.o;
        let mut s = format!(
            "sealfs-stress --dir {} --seed {} --ops {} --procs {} --files {} --max-size {}",
            o.dir.display(),
            o.seed,
            o.ops,
            o.procs,
            o.files,
            o.max_size
        );
        if !o.mmap {
            s.push_str(" --no-mmap");
        }
        if !o.seals {
            s.push_str(" --no-seals");
        }
        if o.fsync_every > 0 {
            let _ = write!(s, " --fsync-every {}", o.fsync_every);
        }
        if o.enospc {
            s.push_str(" --enospc");
        }
        let _ = write!(s, " --worker {}", self.id);
        s
    }

    fn log_path(&self) -> PathBuf {
        match &self.o.log {
            Some(p) => p.clone(),
            None => PathBuf::from(format!(
                "/tmp/sealfs-stress-seed{}-w{}.log",
                self.o.seed, self.id
            )),
        }
    }

    /// Prints `report` with the op log tail and writes the full log to the log file.
    fn emit_failure(&self, report: &str) {
        let lp = self.log_path();
        let mut full = format!(
            "sealfs-stress worker {} seed {} ({} ops logged, oldest first)\n{report}\nop log:\n",
            self.id,
            self.o.seed,
            self.ring.len()
        );
        for r in &self.ring {
            full.push_str(&r.line());
            full.push('\n');
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&lp)
            .and_then(|mut f| f.write_all(full.as_bytes()))
            .is_ok();
        let tail = 40.min(self.ring.len());
        let mut out = format!(
            "{report}\n  op log tail (last {tail} of {}; full log {}{}):\n",
            self.ring.len(),
            lp.display(),
            if written { "" } else { " NOT WRITTEN" }
        );
        for r in self.ring.iter().skip(self.ring.len() - tail) {
            let _ = writeln!(out, "    {}", r.line());
        }
        let _ = writeln!(out, "  replay: {}", self.replay_cmd());
        let _ = std::io::stderr().write_all(out.as_bytes());
    }

    fn header(&self, f: usize) -> String {
        format!(
            "sealfs-stress: FAILURE seed={} worker={} op=#{} file={}",
            self.o.seed,
            self.id,
            self.idx,
            self.files
                .get(f)
                .map(|x| x.path.display().to_string())
                .unwrap_or_default()
        )
    }

    fn gone(e: i32, durable: bool) -> bool {
        e == libc::ENOTCONN || e == libc::ECONNABORTED || (durable && e == libc::EIO)
    }

    /// An op failed with an errno the model does not allow.
    fn fail_errno(&mut self, mut r: Rec, e: i32, what: &str) -> ! {
        r.result = -(e as i64);
        let f = r.file;
        self.log(r);
        if Self::gone(e, self.o.durable.is_some()) {
            eprintln!(
                "sealfs-stress: worker {}: filesystem gone at op #{} ({})",
                self.id,
                self.idx,
                errname(e)
            );
            std::process::exit(i32::from(code::GONE));
        }
        let report = format!("{}: {what}: unexpected {}", self.header(f), errname(e));
        self.emit_failure(&report);
        std::process::exit(i32::from(code::ERROR));
    }

    /// A result that is not an errno but still wrong (a wrong size, seek, or success).
    fn fail(&mut self, r: Option<Rec>, f: usize, what: &str) -> ! {
        if let Some(r) = r {
            self.log(r);
        }
        let report = format!("{}: {what}", self.header(f));
        self.emit_failure(&report);
        std::process::exit(i32::from(code::ERROR));
    }

    fn report_fault(&self, sig: libc::c_int) {
        let name = if sig == libc::SIGBUS {
            "SIGBUS"
        } else {
            "SIGSEGV"
        };
        if self.o.durable.is_some() && sig == libc::SIGBUS {
            eprintln!(
                "sealfs-stress: worker {}: SIGBUS at op #{} (filesystem gone?)",
                self.id, self.idx
            );
            sys::exit_now(i32::from(code::GONE));
        }
        let report = format!(
            "sealfs-stress: FAILURE seed={} worker={} op=#{}: {name} in an mmap access \
             (the op is the next one after the log's last line)",
            self.o.seed, self.id, self.idx
        );
        self.emit_failure(&report);
    }

    /// `got` (read at `base`) differs from `expected`; never returns.
    fn miscompare(&mut self, f: usize, what: &str, base: u64, expected: &[u8], got: &[u8]) -> ! {
        let model_size = self.files[f].model.len() as u64;
        let mut s = format!("{}: MISCOMPARE in {what}\n", self.header(f));
        let _ = writeln!(
            s,
            "  range {:#x}..{:#x}: expected {} bytes, got {} bytes (model size {:#x})",
            base,
            base + expected.len() as u64,
            expected.len(),
            got.len(),
            model_size
        );
        let common = expected.len().min(got.len());
        let first = (0..common).find(|&i| expected[i] != got[i]);
        let bad = (0..common).filter(|&i| expected[i] != got[i]).count();
        match first {
            Some(i) => {
                let last = (0..common)
                    .rev()
                    .find(|&i| expected[i] != got[i])
                    .unwrap_or(i);
                let at = base + i as u64;
                let end = (i + 16).min(common);
                let _ = writeln!(
                    s,
                    "  first difference at offset {at:#x} (last at {:#x}, {bad} bytes differ)",
                    base + last as u64
                );
                let _ = writeln!(s, "  expected: {}", hex(&expected[i..end]));
                let _ = writeln!(s, "  got:      {}", hex(&got[i..end]));
                let g = &got[i..end];
                let e = &expected[i..end];
                let _ = writeln!(s, "  expected bytes: {}", self.blame(at, e));
                let _ = writeln!(s, "  got bytes:      {}", self.blame(at, g));
                let touching: Vec<String> = self
                    .ring
                    .iter()
                    .rev()
                    .filter(|r| r.file == f && r.touches(at))
                    .take(6)
                    .map(|r| r.line())
                    .collect();
                let _ = writeln!(s, "  last logged ops touching {at:#x} (newest first):");
                for t in touching {
                    let _ = writeln!(s, "    {t}");
                }
            }
            None => {
                let _ = writeln!(
                    s,
                    "  the common {common} bytes agree; the length differs (size mismatch)"
                );
            }
        }
        self.emit_failure(s.trim_end());
        std::process::exit(i32::from(code::MISCOMPARE));
    }

    /// What wrote `bytes` at `at`: zeros, or the pattern of a logged write.
    fn blame(&self, at: u64, bytes: &[u8]) -> String {
        if bytes.iter().all(|&b| b == 0) {
            return "zeros (a hole, a truncate, a punch or a zero-range)".into();
        }
        let mut tmp = vec![0u8; bytes.len()];
        for r in self.ring.iter().rev() {
            if !r.kind.writes_pattern() {
                continue;
            }
            rng::pattern(self.wseed, r.idx, at, &mut tmp);
            if tmp == bytes {
                let same_place = at >= r.off && at < r.off + r.len;
                return format!(
                    "data of op #{} ({} at {:#x} len {:#x}{})",
                    r.idx,
                    r.kind.name(),
                    r.off,
                    r.len,
                    if same_place {
                        ""
                    } else {
                        ", which did NOT cover this offset"
                    }
                );
            }
        }
        "not the data of any write in the log at this offset (copied, shifted, or garbage)".into()
    }

    // ---- setup and the op loop ---------------------------------------------------------

    fn setup(&mut self) {
        for j in 0..self.o.files as usize {
            let name = file_name(self.id, j);
            let path = self.o.dir.join(&name);
            let track = self.o.durable.as_ref().map(|d| {
                durable::Track::reset(d, &name).unwrap_or_else(|e| {
                    eprintln!("sealfs-stress: {}: {e}", d.display());
                    std::process::exit(i32::from(code::ERROR));
                })
            });
            self.files.push(FileState {
                path: path.clone(),
                fd: -1,
                model: Vec::new(),
                track,
            });
            let r = self.rec(j, Kind::Create, 0, 0);
            match sys::open(&path, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) {
                Ok(fd) => self.files[j].fd = fd,
                Err(e) => self.fail_errno(r, e, "open(O_CREAT|O_TRUNC)"),
            }
            self.log(r);
        }
        if self.o.durable.is_some() {
            for j in 0..self.files.len() {
                self.sync(j, false);
            }
            if let Ok(dfd) = sys::open(&self.o.dir, libc::O_RDONLY | libc::O_DIRECTORY) {
                let r = sys::fsync(dfd);
                let _ = sys::close(dfd);
                if let Err(e) = r {
                    if e != libc::EINVAL && e != libc::ENOSYS {
                        let r = self.rec(0, Kind::Fsync, 0, 0);
                        self.fail_errno(r, e, "fsync of the directory");
                    }
                }
            }
            for j in 0..self.files.len() {
                self.snapshot(j);
            }
        }
    }

    fn run(&mut self) -> u8 {
        self.setup();
        let n = self.my_ops();
        FAULT_WORKER.store(self as *mut Worker, std::sync::atomic::Ordering::SeqCst);
        sys::on_fault(on_fault);
        for i in 1..=n {
            self.idx = i;
            let f = self.rng.below(u64::from(self.o.files)) as usize;
            let touched = self.one_op(f);
            if self.o.fsync_every > 0 && i % self.o.fsync_every == 0 {
                let data_only = self.rng.one_in(2);
                self.sync(touched, data_only);
            }
        }
        self.idx = n + 1;
        for f in 0..self.files.len() {
            self.verify_file(f);
        }
        for f in 0..self.files.len() {
            let _ = sys::close(self.files[f].fd);
        }
        FAULT_WORKER.store(std::ptr::null_mut(), std::sync::atomic::Ordering::SeqCst);
        let mut line = format!(
            "worker {}: ops={} miscompares=0 elapsed={:.2}",
            self.id,
            n,
            self.start.elapsed().as_secs_f64()
        );
        if self.o.enospc {
            let _ = write!(line, " enospc={}", self.enospc);
        }
        if !self.support.off.is_empty() {
            line.push_str(" skipped:");
            for (k, why) in &self.support.off {
                let _ = write!(line, " {}({why})", k.name());
            }
        }
        line.push('\n');
        if self.o.stats {
            let _ = write!(line, "worker {} calls:", self.id);
            for k in Kind::ALL {
                let n = self.counts[k as usize];
                if n > 0 {
                    let _ = write!(line, " {}={n}", k.name());
                }
            }
            line.push('\n');
        }
        let _ = std::io::stdout().write_all(line.as_bytes());
        code::OK
    }

    fn one_op(&mut self, f: usize) -> usize {
        // Weights out of 100.
        let roll = self.rng.below(100);
        match roll {
            0..=21 => self.op_write(f),
            22..=35 => self.op_read(f),
            36..=41 => self.op_truncate(f),
            42..=52 => self.op_falloc(f),
            53..=56 => self.op_mmap(f, false),
            57..=61 => self.op_mmap(f, true),
            62..=66 => return self.op_copy(f),
            67..=69 => {
                let data = self.rng.one_in(3);
                self.sync(f, data);
            }
            70..=71 => self.op_reopen(f),
            72..=77 => self.op_seal(f),
            78..=79 => self.op_stat(f),
            80..=84 => self.op_seek(f),
            85 => self.verify_file(f),
            _ => {
                if self.rng.one_in(2) {
                    self.op_write(f)
                } else {
                    self.op_read(f)
                }
            }
        }
        f
    }

    fn size(&self, f: usize) -> u64 {
        self.files[f].model.len() as u64
    }

    fn pick_len(&mut self) -> u64 {
        let cap = match self.rng.below(8) {
            0..=3 => 4096,
            4..=6 => 64 << 10,
            _ => MAX_IO,
        };
        let mut l = 1 + self.rng.below(cap);
        if self.rng.one_in(4) {
            l = l.div_ceil(4096) * 4096;
        }
        l.min(MAX_IO)
    }

    fn pick_off(&mut self, size: u64) -> u64 {
        let max = self.o.max_size;
        let o = match self.rng.below(8) {
            0..=2 => self.rng.below(max),
            3..=4 => self.rng.below(size + 1),
            5 => size,
            6 => size.saturating_sub(self.rng.below(8192)),
            _ => self.rng.below(max) & !4095,
        };
        o.min(max - 1)
    }

    /// An offset and length with `off + len <= max_size`.
    fn pick_range(&mut self, size: u64) -> (u64, u64) {
        let off = self.pick_off(size);
        let len = self.pick_len().min(self.o.max_size - off).max(1);
        (off, len)
    }

    fn mark(&mut self, f: usize, lo: u64, hi: u64, size_may_change: bool) {
        if let Some(t) = self.files[f].track.as_mut() {
            if let Err(e) = t.mark(lo, hi, size_may_change) {
                eprintln!(
                    "sealfs-stress: durable log {}: {e}",
                    t.dirty_path().display()
                );
                std::process::exit(i32::from(code::ERROR));
            }
        }
    }

    fn snapshot(&mut self, f: usize) {
        let fs = &mut self.files[f];
        if let Some(t) = fs.track.as_mut() {
            if let Err(e) = t.snapshot(&fs.model) {
                eprintln!(
                    "sealfs-stress: durable snapshot of {}: {e}",
                    fs.path.display()
                );
                std::process::exit(i32::from(code::ERROR));
            }
        }
    }

    fn model_write(&mut self, f: usize, off: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let m = &mut self.files[f].model;
        let end = off as usize + data.len();
        if m.len() < end {
            m.resize(end, 0);
        }
        m[off as usize..end].copy_from_slice(data);
    }

    fn model_zero(&mut self, f: usize, lo: u64, hi: u64) {
        let m = &mut self.files[f].model;
        let hi = (hi as usize).min(m.len());
        let lo = (lo as usize).min(hi);
        m[lo..hi].fill(0);
    }

    // ---- operations -------------------------------------------------------------------

    fn op_write(&mut self, f: usize) {
        let size = self.size(f);
        let (off, len) = self.pick_range(size);
        self.do_write(f, Kind::Write, off, len);
    }

    fn do_write(&mut self, f: usize, kind: Kind, off: u64, len: u64) {
        let size = self.size(f);
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(len as usize, 0);
        rng::pattern(self.wseed, self.idx, off, &mut buf);
        self.mark(f, off, off + len, off + len > size);
        let mut r = self.rec(f, kind, off, len);
        let mut done = len as usize;
        match sys::pwrite_progress(self.files[f].fd, &buf, off) {
            Ok(()) => {}
            // An in-place write under a seal never allocates, so never runs out of space.
            Err((n, libc::ENOSPC)) if self.o.enospc && kind == Kind::Write => {
                self.enospc += 1;
                r.result = -(libc::ENOSPC as i64);
                r.aux = n as u64;
                done = n;
            }
            Err((_, e)) => self.fail_errno(r, e, "pwrite"),
        }
        self.model_write(f, off, &buf[..done]);
        self.buf = buf;
        r.size_after = self.size(f);
        if r.result >= 0 {
            r.result = len as i64;
        }
        self.log(r);
    }

    /// After an ENOSPC from an op that may have changed `[lo, hi)` and the size (to
    /// anything in `[old, grow_to]`): reads back what the filesystem did, checks that each
    /// byte is unchanged or the op's value there (`alt`, or zero when `alt` is `None`), and
    /// adopts it as the model.
    fn settle_enospc(&mut self, mut r: Rec, lo: u64, hi: u64, grow_to: u64, alt: Option<&[u8]>) {
        self.enospc += 1;
        r.result = -(libc::ENOSPC as i64);
        let f = r.file;
        let old = self.size(f);
        let size = match sys::fstat_size(self.files[f].fd) {
            Ok(s) => s,
            Err(e) => self.fail_errno(r, e, "fstat after ENOSPC"),
        };
        if size != old && (size < old || size > grow_to) {
            let what = format!(
                "{} failed with ENOSPC but changed the size {old:#x} -> {size:#x} (allowed: \
                 unchanged or up to {grow_to:#x})",
                r.kind.name()
            );
            self.fail(Some(r), f, &what);
        }
        self.files[f].model.resize(size as usize, 0);
        r.size_after = size;
        self.log(r);
        let hi = hi.min(size);
        if lo >= hi {
            return;
        }
        let mut got = vec![0u8; (hi - lo) as usize];
        let mut r2 = self.rec(f, Kind::Read, lo, hi - lo);
        let n = match sys::pread_full(self.files[f].fd, &mut got, lo) {
            Ok(n) => n,
            Err(e) => self.fail_errno(r2, e, "pread after ENOSPC"),
        };
        r2.result = n as i64;
        self.log(r2);
        let model = &self.files[f].model[lo as usize..hi as usize];
        let ok = |i: usize| {
            let other = alt.map_or(0, |a| a[i]);
            i < n && (got[i] == model[i] || got[i] == other)
        };
        if let Some(i) = (0..got.len()).find(|&i| !ok(i)) {
            let expected = model.to_vec();
            let what = format!(
                "read-back after ENOSPC (each byte must be unchanged or {}; first bad byte at \
                 {:#x})",
                if alt.is_some() {
                    "the copied byte"
                } else {
                    "zero"
                },
                lo + i as u64
            );
            self.miscompare(f, &what, lo, &expected, &got[..n]);
        }
        self.files[f].model[lo as usize..hi as usize].copy_from_slice(&got);
    }

    fn op_read(&mut self, f: usize) {
        let size = self.size(f);
        let off = match self.rng.below(4) {
            0 => self.rng.below(self.o.max_size),
            _ => self.rng.below(size + 1),
        };
        let len = self.pick_len();
        self.check_range(f, Kind::Read, off, len);
    }

    /// Reads `[off, off+len)` with pread and compares it with the model.
    fn check_range(&mut self, f: usize, kind: Kind, off: u64, len: u64) {
        let mut r = self.rec(f, kind, off, len);
        let mut got = std::mem::take(&mut self.rbuf);
        got.resize(len as usize, 0);
        let n = match sys::pread_full(self.files[f].fd, &mut got, off) {
            Ok(n) => n,
            Err(e) => self.fail_errno(r, e, "pread"),
        };
        r.result = n as i64;
        self.log(r);
        let size = self.size(f);
        let lo = off.min(size) as usize;
        let hi = (off + len).min(size) as usize;
        if n != hi - lo || got[..n] != self.files[f].model[lo..hi] {
            let expected = self.files[f].model[lo..hi].to_vec();
            let what = format!("{} of {off:#x} len {len:#x}", kind.name());
            self.miscompare(f, &what, off, &expected, &got[..n]);
        }
        self.rbuf = got;
    }

    fn verify_file(&mut self, f: usize) {
        let size = self.size(f);
        // One byte more than the model, to see a file that is too long.
        let mut off = 0;
        loop {
            let len = MAX_IO.min(size + 1 - off);
            self.check_range(f, Kind::Verify, off, len);
            off += len;
            if off > size {
                break;
            }
        }
    }

    fn op_truncate(&mut self, f: usize) {
        let size = self.size(f);
        let max = self.o.max_size;
        let new = match self.rng.below(6) {
            0..=1 => self.rng.below(max + 1),
            2 => self.rng.below(max + 1) & !4095,
            3 => size.saturating_sub(self.rng.below(8192)),
            4 => (size + self.rng.below(8192)).min(max),
            _ => self.rng.below(size + 1),
        };
        self.mark(f, new.min(size), u64::MAX, new != size);
        let mut r = self.rec(f, Kind::Truncate, new, 0);
        match sys::ftruncate(self.files[f].fd, new) {
            Ok(()) => {}
            // Shrinking never needs space; growing may need metadata. All or nothing.
            Err(libc::ENOSPC) if self.o.enospc && new > size => {
                return self.settle_enospc(r, 0, 0, new, None);
            }
            Err(e) => self.fail_errno(r, e, "ftruncate"),
        }
        self.files[f].model.resize(new as usize, 0);
        r.size_after = new;
        self.log(r);
    }

    fn op_falloc(&mut self, f: usize) {
        let kinds = [
            Kind::Falloc,
            Kind::FallocKeep,
            Kind::Punch,
            Kind::Zero,
            Kind::ZeroKeep,
        ];
        let avail: Vec<Kind> = kinds
            .iter()
            .copied()
            .filter(|&k| self.support.has(k))
            .collect();
        if avail.is_empty() {
            return self.op_write(f);
        }
        let kind = avail[self.rng.below(avail.len() as u64) as usize];
        let size = self.size(f);
        let (off, len) = self.pick_range(size);
        let end = off + len;
        let (mode, grows) = match kind {
            Kind::Falloc => (0, end > size),
            Kind::FallocKeep => (libc::FALLOC_FL_KEEP_SIZE, false),
            Kind::Punch => (
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                false,
            ),
            Kind::Zero => (libc::FALLOC_FL_ZERO_RANGE, end > size),
            _ => (
                libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
                false,
            ),
        };
        match kind {
            Kind::FallocKeep => {}
            Kind::Falloc => self.mark(f, size, end, grows),
            _ => self.mark(f, off, end, grows),
        }
        let mut r = self.rec(f, kind, off, len);
        match sys::fallocate(self.files[f].fd, mode, off, len) {
            Ok(()) => {}
            Err(e) if e == libc::EOPNOTSUPP || e == libc::ENOSYS => {
                r.result = -(e as i64);
                self.log(r);
                self.support.disable(kind, errname(e));
                return;
            }
            Err(libc::ENOSPC) if self.o.enospc => {
                let (lo, hi) = match kind {
                    Kind::Falloc | Kind::FallocKeep => (0, 0),
                    _ => (off, end),
                };
                let grow_to = if grows { end } else { size };
                return self.settle_enospc(r, lo, hi, grow_to, None);
            }
            Err(e) => self.fail_errno(r, e, "fallocate"),
        }
        match kind {
            Kind::Falloc | Kind::Zero if grows => self.files[f].model.resize(end as usize, 0),
            _ => {}
        }
        if matches!(kind, Kind::Punch | Kind::Zero | Kind::ZeroKeep) {
            self.model_zero(f, off, end);
        }
        r.size_after = self.size(f);
        self.log(r);
    }

    fn op_mmap(&mut self, f: usize, write: bool) {
        let kind = if write {
            Kind::MmapWrite
        } else {
            Kind::MmapRead
        };
        let size = self.size(f);
        if !self.support.has(kind) || size == 0 {
            return self.op_read(f);
        }
        let off = self.rng.below(size);
        let len = 1 + self.rng.below((size - off).min(MAX_IO));
        let pa = off & !(self.page - 1);
        let mlen = (off + len - pa) as usize;
        let at = (off - pa) as usize;
        let mut r = self.rec(f, kind, off, len);
        let map = match sys::Mapping::new(self.files[f].fd, pa, mlen, write) {
            Ok(m) => m,
            Err(e) if e == libc::ENODEV || e == libc::EOPNOTSUPP || e == libc::EACCES => {
                r.result = -(e as i64);
                self.log(r);
                self.support.disable(Kind::MmapRead, errname(e));
                self.support.disable(Kind::MmapWrite, errname(e));
                return;
            }
            Err(e) => self.fail_errno(r, e, "mmap"),
        };
        if write {
            let mut buf = std::mem::take(&mut self.buf);
            buf.resize(len as usize, 0);
            rng::pattern(self.wseed, self.idx, off, &mut buf);
            self.mark(f, off, off + len, false);
            // Logged before the access, so a SIGBUS report shows it.
            r.result = len as i64;
            self.log(r.clone());
            map.write(at, &buf);
            if let Err(e) = map.msync() {
                self.fail_errno(r, e, "msync");
            }
            drop(map);
            self.model_write(f, off, &buf);
            self.buf = buf;
        } else {
            let mut got = std::mem::take(&mut self.rbuf);
            got.resize(len as usize, 0);
            r.result = len as i64;
            self.log(r);
            map.read(at, &mut got);
            drop(map);
            let lo = off as usize;
            if got[..] != self.files[f].model[lo..lo + len as usize] {
                let expected = self.files[f].model[lo..lo + len as usize].to_vec();
                let what = format!("mmap read of {off:#x} len {len:#x}");
                self.miscompare(f, &what, off, &expected, &got);
            }
            self.rbuf = got;
        }
    }

    fn op_copy(&mut self, dst: usize) -> usize {
        if !self.support.has(Kind::Copy) {
            self.op_write(dst);
            return dst;
        }
        let mut src = self.rng.below(u64::from(self.o.files) - 1) as usize;
        if src >= dst {
            src += 1;
        }
        let ssize = self.size(src);
        let soff = if self.rng.one_in(8) {
            self.rng.below(self.o.max_size)
        } else {
            self.rng.below(ssize + 1)
        };
        let dsize = self.size(dst);
        let (doff, len) = self.pick_range(dsize);
        let want = len.min(ssize.saturating_sub(soff));
        self.mark(dst, doff, doff + len, doff + want > dsize);
        let mut r = self.rec(dst, Kind::Copy, doff, len);
        r.aux = src as u64;
        r.aux2 = soff;
        let mut done = 0;
        while done < len {
            match sys::copy_file_range(
                self.files[src].fd,
                soff + done,
                self.files[dst].fd,
                doff + done,
                len - done,
            ) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(libc::ENOSPC) if self.o.enospc => {
                    self.enospc += 1;
                    if done > 0 {
                        let data =
                            self.files[src].model[soff as usize..(soff + done) as usize].to_vec();
                        self.model_write(dst, doff, &data);
                    }
                    // What the failing call itself did is unknown: settle the rest.
                    let rest = self.files[src].model
                        [(soff + done) as usize..(soff + want) as usize]
                        .to_vec();
                    self.enospc -= 1;
                    self.settle_enospc(r, doff + done, doff + want, doff + want, Some(&rest));
                    return dst;
                }
                Err(e)
                    if done == 0
                        && (e == libc::EXDEV || e == libc::EOPNOTSUPP || e == libc::ENOSYS) =>
                {
                    r.result = -(e as i64);
                    self.log(r);
                    self.support.disable(Kind::Copy, errname(e));
                    return dst;
                }
                Err(e) => {
                    r.result = done as i64;
                    self.fail_errno(r, e, "copy_file_range")
                }
            }
        }
        r.result = done as i64;
        if done != want {
            let what = format!(
                "copy_file_range copied {done:#x} bytes, expected {want:#x} (source size {ssize:#x})"
            );
            self.fail(Some(r), dst, &what);
        }
        if done > 0 {
            let data = self.files[src].model[soff as usize..(soff + done) as usize].to_vec();
            self.model_write(dst, doff, &data);
        }
        r.size_after = self.size(dst);
        self.log(r);
        dst
    }

    /// fsync or fdatasync, then (with `--durable-log`) the new durable snapshot.
    fn sync(&mut self, f: usize, data_only: bool) {
        let kind = if data_only {
            Kind::Fdatasync
        } else {
            Kind::Fsync
        };
        let r = self.rec(f, kind, 0, 0);
        let fd = self.files[f].fd;
        let res = if data_only {
            sys::fdatasync(fd)
        } else {
            sys::fsync(fd)
        };
        if let Err(e) = res {
            self.fail_errno(r, e, kind.name());
        }
        self.log(r);
        if self.files[f].track.is_some() {
            self.snapshot(f);
        }
    }

    fn op_reopen(&mut self, f: usize) {
        let r = self.rec(f, Kind::Reopen, 0, 0);
        if let Err(e) = sys::close(self.files[f].fd) {
            self.fail_errno(r, e, "close");
        }
        match sys::open(&self.files[f].path.clone(), libc::O_RDWR) {
            Ok(fd) => self.files[f].fd = fd,
            Err(e) => self.fail_errno(r, e, "open"),
        }
        self.log(r);
    }

    fn op_stat(&mut self, f: usize) {
        let mut r = self.rec(f, Kind::Stat, 0, 0);
        match sys::fstat_size(self.files[f].fd) {
            Ok(s) => {
                r.result = s as i64;
                if s != self.size(f) {
                    let what = format!("fstat size {s:#x}, model size {:#x}", self.size(f));
                    self.fail(Some(r), f, &what);
                }
                self.log(r);
            }
            Err(e) => self.fail_errno(r, e, "fstat"),
        }
    }

    /// SEEK_DATA / SEEK_HOLE must never call a range holding model data a hole.
    fn op_seek(&mut self, f: usize) {
        let size = self.size(f);
        if size == 0 || !self.support.has(Kind::SeekData) {
            return self.op_read(f);
        }
        let off = self.rng.below(size);
        let fd = self.files[f].fd;
        let hole_kind = self.rng.one_in(2);
        let kind = if hole_kind {
            Kind::SeekHole
        } else {
            Kind::SeekData
        };
        let mut r = self.rec(f, kind, off, 0);
        let whence = if hole_kind {
            libc::SEEK_HOLE
        } else {
            libc::SEEK_DATA
        };
        let pos = match sys::lseek(fd, off, whence) {
            Ok(p) => Some(p),
            Err(libc::ENXIO) if !hole_kind => None,
            Err(e) if e == libc::EINVAL || e == libc::EOPNOTSUPP => {
                r.result = -(e as i64);
                self.log(r);
                self.support.disable(Kind::SeekData, errname(e));
                return;
            }
            Err(e) => self.fail_errno(r, e, kind.name()),
        };
        r.result = pos.map(|p| p as i64).unwrap_or(-(libc::ENXIO as i64));
        // The claimed hole: [off, data) for SEEK_DATA, [hole, next data) for SEEK_HOLE.
        let (lo, hi) = if hole_kind {
            let h = pos.unwrap_or(size);
            if h < off || h > size {
                let what = format!("SEEK_HOLE from {off:#x} returned {h:#x} (size {size:#x})");
                self.fail(Some(r), f, &what);
            }
            if h == size {
                (size, size)
            } else {
                let r2 = self.rec(f, Kind::SeekData, h, 0);
                let d = match sys::lseek(fd, h, libc::SEEK_DATA) {
                    Ok(d) => d,
                    Err(libc::ENXIO) => size,
                    Err(e) => self.fail_errno(r2, e, "SEEK_DATA"),
                };
                (h, d.min(size))
            }
        } else {
            let d = pos.unwrap_or(size);
            if d < off || (pos.is_some() && d >= size) {
                let what = format!("SEEK_DATA from {off:#x} returned {d:#x} (size {size:#x})");
                self.fail(Some(r), f, &what);
            }
            (off, d)
        };
        self.log(r);
        let m = &self.files[f].model[lo as usize..hi as usize];
        if let Some(i) = m.iter().position(|&b| b != 0) {
            let at = lo + i as u64;
            let what = format!(
                "{} from {off:#x}: {lo:#x}..{hi:#x} reported as a hole, but the model has \
                 data at {at:#x} ({:#04x})",
                kind.name(),
                m[i]
            );
            self.fail(None, f, &what);
        }
    }

    /// Takes a temporary seal on a range within EOF and checks what it must refuse and
    /// what it must allow; then unseals. One time in three (without POPULATE) the seal
    /// replaces a first seal on `[0, 1)`, which must be gone when it returns.
    fn op_seal(&mut self, f: usize) {
        let size = self.size(f);
        if !self.support.has(Kind::Seal) || size < 2 {
            return self.op_write(f);
        }
        let fd = self.files[f].fd;
        let off = self.rng.below(size - 1);
        let len = 1 + self.rng.below((size - off).min(MAX_IO));
        let to_eof = self.rng.one_in(6);
        let populate = self.rng.one_in(2);
        let replace = !populate && self.rng.one_in(3);
        let first = abi::Seal {
            offset: 0,
            length: 1,
            flags: 0,
            reserved: 0,
        };
        if replace {
            let mut r = self.rec(f, Kind::Seal, 0, 1);
            match sys::seal_ioctl(fd, abi::SEALFS_IOC_SEAL, &first) {
                Ok(()) => self.log(r),
                Err(e) if e == libc::ENOTTY || e == libc::ENOSYS || e == libc::EOPNOTSUPP => {
                    r.result = -(e as i64);
                    self.log(r);
                    self.support.disable(Kind::Seal, errname(e));
                    return self.op_write(f);
                }
                Err(e) => self.fail_errno(r, e, "SEALFS_IOC_SEAL (to be replaced)"),
            }
        }
        let arg = abi::Seal {
            offset: off,
            length: if to_eof { 0 } else { len },
            flags: if populate {
                abi::SEAL_POPULATE
            } else if replace {
                abi::SEAL_REPLACE
            } else {
                0
            },
            reserved: 0,
        };
        // The range checked: up to EOF for a to-EOF seal.
        let end = if to_eof { size } else { off + len };
        let mut r = self.rec(f, Kind::Seal, off, arg.length);
        r.aux = u64::from(arg.flags);
        match sys::seal_ioctl(fd, abi::SEALFS_IOC_SEAL, &arg) {
            Ok(()) => self.log(r),
            Err(e) if e == libc::ENOTTY || e == libc::ENOSYS || e == libc::EOPNOTSUPP => {
                r.result = -(e as i64);
                self.log(r);
                self.support.disable(Kind::Seal, errname(e));
                return self.op_write(f);
            }
            // POPULATE allocates; on a full filesystem no seal is taken.
            Err(libc::ENOSPC) if self.o.enospc && populate => {
                self.enospc += 1;
                r.result = -(libc::ENOSPC as i64);
                self.log(r);
                return;
            }
            Err(e) => self.fail_errno(r, e, "SEALFS_IOC_SEAL"),
        }

        // A truncate into (or below) the sealed range changes its extent map: ETXTBSY.
        let new = if self.rng.one_in(2) {
            off + self.rng.below(end - off)
        } else {
            self.rng.below(end)
        };
        self.expect_busy(f, Kind::SealTruncate, new, 0, |fd| sys::ftruncate(fd, new));

        // A hole punch inside the range is refused too, even over holes.
        if self.support.has(Kind::Punch) && self.rng.one_in(2) {
            let po = off + self.rng.below(end - off);
            let pl = 1 + self.rng.below(end - po);
            let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            self.expect_busy(f, Kind::SealPunch, po, pl, |fd| {
                sys::fallocate(fd, mode, po, pl)
            });
        }

        // An in-place write inside allocated blocks succeeds.
        if populate {
            let wo = off + self.rng.below(end - off);
            let wl = 1 + self.rng.below((end - wo).min(64 << 10));
            self.do_write(f, Kind::SealWrite, wo, wl);
        } else {
            self.sealed_write_by_extents(f, off, end);
        }

        if to_eof {
            // Growing the file past the seal's offset is a change inside "to EOF".
            let k = 1 + self.rng.below(4096);
            let grow = (size + k).min(self.o.max_size);
            if grow > size {
                if self.rng.one_in(2) {
                    self.expect_busy(f, Kind::SealGrow, grow, 0, |fd| sys::ftruncate(fd, grow));
                } else {
                    let data = vec![0x5a_u8; (grow - size) as usize];
                    self.expect_busy(f, Kind::SealExtend, size, grow - size, |fd| {
                        sys::pwrite_all(fd, &data, size)
                    });
                }
            }
        } else if self.rng.one_in(3) && off + len < self.o.max_size {
            // Growing a file whose seal ends below EOF touches nothing sealed: allowed.
            let grow = (size + 1 + self.rng.below(8192)).min(self.o.max_size);
            self.mark(f, size, grow, true);
            let mut r = self.rec(f, Kind::Truncate, grow, 0);
            if let Err(e) = sys::ftruncate(fd, grow) {
                self.fail_errno(
                    r,
                    e,
                    "ftruncate growing a file whose seal ends below EOF (must be allowed)",
                );
            }
            self.files[f].model.resize(grow as usize, 0);
            r.size_after = grow;
            self.log(r);
        }

        let mut r = self.rec(f, Kind::Unseal, off, arg.length);
        r.aux = u64::from(arg.flags);
        if let Err(e) = sys::seal_ioctl(fd, abi::SEALFS_IOC_UNSEAL, &arg) {
            self.fail_errno(r, e, "SEALFS_IOC_UNSEAL");
        }
        self.log(r);
        if replace {
            // The first seal was replaced: nothing of this descriptor is left to unseal.
            let mut r = self.rec(f, Kind::Unseal, 0, 1);
            match sys::seal_ioctl(fd, abi::SEALFS_IOC_UNSEAL, &first) {
                Err(libc::EINVAL) => {
                    r.result = -(libc::EINVAL as i64);
                    self.log(r);
                }
                Err(e) => self.fail_errno(r, e, "SEALFS_IOC_UNSEAL of a replaced seal"),
                Ok(()) => self.fail(
                    Some(r),
                    f,
                    "SEALFS_IOC_UNSEAL of a replaced seal succeeded (expected EINVAL)",
                ),
            }
        }
    }

    /// Without POPULATE: writes inside a data extent must pass; a write into a hole of the
    /// sealed range must be refused.
    fn sealed_write_by_extents(&mut self, f: usize, off: u64, end: u64) {
        let fd = self.files[f].fd;
        let r = self.rec(f, Kind::SeekData, off, 0);
        let data = match sys::lseek(fd, off, libc::SEEK_DATA) {
            Ok(d) => d,
            Err(libc::ENXIO) => end,
            Err(e) => self.fail_errno(r, e, "SEEK_DATA in a sealed range"),
        };
        if data < end {
            let r = self.rec(f, Kind::SeekHole, data, 0);
            let hole = match sys::lseek(fd, data, libc::SEEK_HOLE) {
                Ok(h) => h,
                Err(e) => self.fail_errno(r, e, "SEEK_HOLE in a sealed range"),
            };
            let stop = hole.min(end);
            if stop > data {
                let wo = data + self.rng.below(stop - data);
                let wl = 1 + self.rng.below((stop - wo).min(64 << 10));
                self.do_write(f, Kind::SealWrite, wo, wl);
            }
        }
        let r = self.rec(f, Kind::SeekHole, off, 0);
        let hole = match sys::lseek(fd, off, libc::SEEK_HOLE) {
            Ok(h) => h,
            Err(e) => self.fail_errno(r, e, "SEEK_HOLE in a sealed range"),
        };
        if hole < end {
            let wl = 1 + self.rng.below((end - hole).min(4096));
            let data = vec![0xa5_u8; wl as usize];
            self.expect_busy(f, Kind::SealHoleWrite, hole, wl, |fd| {
                sys::pwrite_all(fd, &data, hole)
            });
        }
    }

    /// Runs an op that a held seal must refuse with ETXTBSY (and that changes nothing).
    fn expect_busy(
        &mut self,
        f: usize,
        kind: Kind,
        off: u64,
        len: u64,
        op: impl FnOnce(i32) -> sys::Res<()>,
    ) {
        // If it wrongly succeeds, the file may have changed: conservative durable record.
        self.mark(f, off.min(self.size(f)), u64::MAX, true);
        let mut r = self.rec(f, kind, off, len);
        match op(self.files[f].fd) {
            Err(libc::ETXTBSY) => {
                r.result = -(libc::ETXTBSY as i64);
                self.log(r);
            }
            // On a full filesystem an allocating op may run out of space before it would
            // have met the seal; it changed nothing either way (checked by later reads).
            Err(libc::ENOSPC) if self.o.enospc && kind != Kind::SealTruncate => {
                self.enospc += 1;
                r.result = -(libc::ENOSPC as i64);
                self.log(r);
            }
            Err(e) => self.fail_errno(r, e, &format!("{} (expected ETXTBSY)", kind.name())),
            Ok(()) => self.fail(
                Some(r),
                f,
                &format!(
                    "{} at {off:#x} len {len:#x} succeeded under a temporary seal \
                     (expected ETXTBSY)",
                    kind.name()
                ),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Durable verification.
// ---------------------------------------------------------------------------------------

/// Checks DIR against the fsynced state recorded in DUR. Rules, per file with a snapshot
/// `D` (its contents at the last successful fsync/fdatasync) and dirty records (ranges
/// possibly changed by ops issued after it):
/// - no dirty record: the file is exactly `D` (size and bytes);
/// - otherwise every byte of `D` outside all dirty ranges is there with its value, and
///   when no record says the size may have changed, the size is exactly `len(D)`.
fn verify_durable(o: &Opts, dur: &Path) -> u8 {
    let mut names: Vec<String> = match std::fs::read_dir(dur) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".snap"))
                    .map(str::to_string)
            })
            .collect(),
        Err(e) => {
            eprintln!("sealfs-stress: {}: {e}", dur.display());
            return code::ERROR;
        }
    };
    names.sort();
    let (mut clean, mut dirty, mut bytes, mut failures) = (0u64, 0u64, 0u64, 0u64);
    for name in &names {
        let saved = match durable::load(dur, name) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sealfs-stress: {e}");
                failures += 1;
                continue;
            }
        };
        let path = o.dir.join(name);
        let actual = match std::fs::read(&path) {
            Ok(a) => a,
            Err(e) => {
                eprintln!(
                    "sealfs-stress: DURABILITY FAILURE: {}: {e} (fsynced with {} bytes)",
                    path.display(),
                    saved.data.len()
                );
                failures += 1;
                continue;
            }
        };
        let d = &saved.data;
        let mut may_change = vec![false; d.len()];
        let mut size_may_change = false;
        for &(lo, hi, flags) in &saved.dirty {
            size_may_change |= flags & durable::SIZE_MAY_CHANGE != 0;
            let lo = (lo as usize).min(d.len());
            let hi = (hi.min(d.len() as u64)) as usize;
            if lo < hi {
                may_change[lo..hi].fill(true);
            }
        }
        if saved.dirty.is_empty() {
            clean += 1;
        } else {
            dirty += 1;
        }
        let mut problem = None;
        if !size_may_change && actual.len() != d.len() {
            problem = Some(format!(
                "size {:#x}, fsynced size {:#x} and no size change since",
                actual.len(),
                d.len()
            ));
        }
        if problem.is_none() {
            for i in 0..d.len() {
                if may_change[i] {
                    continue;
                }
                bytes += 1;
                if i >= actual.len() {
                    problem = Some(format!(
                        "file ends at {:#x}, but fsynced byte {i:#x} was not changed since",
                        actual.len()
                    ));
                    break;
                }
                if actual[i] != d[i] {
                    let end = (i + 16).min(d.len()).min(actual.len());
                    problem = Some(format!(
                        "fsynced byte at {i:#x} differs\n  expected: {}\n  got:      {}",
                        hex(&d[i..end]),
                        hex(&actual[i..end])
                    ));
                    break;
                }
            }
        }
        if let Some(p) = problem {
            eprintln!(
                "sealfs-stress: DURABILITY FAILURE: {} ({} dirty records since the last \
                 fsync): {p}",
                path.display(),
                saved.dirty.len()
            );
            failures += 1;
        }
    }
    println!(
        "verify-durable: {} files ({clean} clean since fsync, {dirty} changed since), \
         {bytes} fsynced bytes checked, {failures} failures",
        names.len()
    );
    if failures > 0 {
        code::MISCOMPARE
    } else {
        code::OK
    }
}

// ---------------------------------------------------------------------------------------
// The parent.
// ---------------------------------------------------------------------------------------

fn run_parent(o: &Opts, args: &[String]) -> u8 {
    if let Err(e) = std::fs::create_dir_all(&o.dir) {
        eprintln!("sealfs-stress: {}: {e}", o.dir.display());
        return code::ERROR;
    }
    if let Some(d) = &o.durable {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("sealfs-stress: {}: {e}", d.display());
            return code::ERROR;
        }
    }
    println!(
        "stress: seed={} dir={} procs={} files={} ops={} max-size={}{}{}{}",
        o.seed,
        o.dir.display(),
        o.procs,
        o.files,
        o.ops,
        o.max_size,
        if o.mmap { "" } else { " no-mmap" },
        if o.seals { "" } else { " no-seals" },
        if o.fsync_every > 0 {
            format!(" fsync-every={}", o.fsync_every)
        } else {
            String::new()
        }
    );
    let _ = std::io::stdout().flush();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sealfs-stress: current_exe: {e}");
            return code::ERROR;
        }
    };
    let start = Instant::now();
    let mut kids: Vec<(u32, Option<Child>)> = Vec::new();
    for i in 0..o.procs {
        let mut cmd = Command::new(&exe);
        cmd.args(args)
            .args(["--seed", &o.seed.to_string()])
            .args(["--worker", &i.to_string()]);
        match cmd.spawn() {
            Ok(c) => kids.push((i, Some(c))),
            Err(e) => {
                eprintln!("sealfs-stress: spawning worker {i}: {e}");
                for (_, c) in kids.iter_mut() {
                    if let Some(c) = c {
                        sys::kill(c.id(), libc::SIGKILL);
                        let _ = c.wait();
                    }
                }
                return code::ERROR;
            }
        }
    }
    let mut worst = code::OK;
    let mut miscompares = 0;
    let mut ops_ok = 0u64;
    let p = u64::from(o.procs);
    let mut left = kids.len();
    let mut stopping = false;
    while left > 0 {
        let mut progressed = false;
        for (i, slot) in kids.iter_mut() {
            let Some(child) = slot.as_mut() else { continue };
            let status = match child.try_wait() {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => {
                    eprintln!("sealfs-stress: waiting for worker {i}: {e}");
                    worst = worst.max(code::ERROR);
                    *slot = None;
                    left -= 1;
                    continue;
                }
            };
            progressed = true;
            *slot = None;
            left -= 1;
            let c = match status.code() {
                Some(c) => c as u8,
                None if stopping => continue,
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    eprintln!(
                        "sealfs-stress: worker {i} killed by signal {}",
                        status.signal().unwrap_or(0)
                    );
                    code::FAULT
                }
            };
            if c == code::OK {
                ops_ok += o.ops / p + u64::from(u64::from(*i) < o.ops % p);
            }
            if c == code::MISCOMPARE {
                miscompares += 1;
            }
            worst = worst.max(c);
        }
        // One failure is enough: stop the others.
        if worst != code::OK && worst != code::GONE && !stopping {
            stopping = true;
            for (_, slot) in kids.iter_mut() {
                if let Some(c) = slot.as_mut() {
                    sys::kill(c.id(), libc::SIGKILL);
                }
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "stress: {ops_ok} ops, {} procs, {miscompares} miscompares, {secs:.1} s{}",
        o.procs,
        match worst {
            code::OK => String::new(),
            c => format!(" (FAILED, exit {c})"),
        }
    );
    worst
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("sealfs-stress: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 1 });
        }
    };
    if let Some(dur) = &o.verify_durable {
        return ExitCode::from(verify_durable(&o, dur));
    }
    if let Some(id) = o.worker {
        sys::die_with_parent();
        let mut w = Worker::new(o, id);
        return ExitCode::from(w.run());
    }
    // Workers get the same arguments (the seed made explicit) plus --worker.
    let mut pass = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seed" {
            it.next();
        } else {
            pass.push(a.clone());
        }
    }
    ExitCode::from(run_parent(&o, &pass))
}
