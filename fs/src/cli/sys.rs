//! The raw system calls of the command line, each behind a safe function: `fork` for the
//! mount daemon and `ioctl` for `sealfs stat` and remount. The only `unsafe` in `cli`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

pub use nix::unistd::ForkResult;

/// Forks. Must be called while the process has a single thread (the command line forks
/// before the daemon starts any).
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: the caller forks before creating any thread, so the child inherits no lock
    // held by another thread and may run arbitrary code.
    unsafe { nix::unistd::fork() }
}

/// `ioctl(fd, cmd, buf)` for a command whose argument is exactly `buf` (its `_IOC_SIZE`).
pub fn ioctl(f: &File, cmd: u32, buf: &mut [u8]) -> io::Result<()> {
    let size = ((cmd >> 16) & 0x3fff) as usize;
    if size != buf.len() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: the kernel reads and writes at most _IOC_SIZE(cmd) bytes, which is the
    // length of `buf`, checked above; `f` is an open descriptor.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), cmd as libc::c_ulong, buf.as_mut_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
