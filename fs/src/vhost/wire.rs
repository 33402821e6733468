//! The few FUSE and virtio-fs wire facts the back end reads itself: request headers, the
//! arguments of the requests it answers or watches, reply framing, the device config, and a
//! request's descriptor chain gathered out of guest memory. Everything else is parsed by
//! fuser in the guest's FUSE session.

use std::io;

use virtio_queue::DescriptorChain;
use vm_memory::{Bytes, GuestAddress, GuestMemoryLoadGuard, GuestMemoryMmap};

/// FUSE opcodes the back end looks at.
pub const SETATTR: u32 = 4;
pub const FORGET: u32 = 2;
pub const OPEN: u32 = 14;
pub const RELEASE: u32 = 18;
pub const FSYNC: u32 = 20;
pub const INIT: u32 = 26;
pub const OPENDIR: u32 = 27;
pub const RELEASEDIR: u32 = 29;
pub const CREATE: u32 = 35;
pub const DESTROY: u32 = 38;
pub const INTERRUPT: u32 = 36;
pub const IOCTL: u32 = 39;
pub const BATCH_FORGET: u32 = 42;
pub const FALLOCATE: u32 = 43;
pub const SETUPMAPPING: u32 = 48;
pub const REMOVEMAPPING: u32 = 49;

/// `struct fuse_in_header`.
pub const IN_HEADER: usize = 40;
/// `struct fuse_out_header`.
pub const OUT_HEADER: usize = 16;
/// Largest request accepted from the guest: a 1 MiB write and its headers.
const MAX_REQUEST: usize = (1 << 20) + 4096;

/// `FATTR_SIZE` in `fuse_setattr_in.valid`.
const FATTR_SIZE: u32 = 1 << 3;
/// `FUSE_MAP_ALIGNMENT` in `fuse_init_in/out.flags`.
pub const INIT_MAP_ALIGNMENT: u32 = 1 << 26;

/// What a request header says.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub opcode: u32,
    pub unique: u64,
    pub nodeid: u64,
}

pub fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A request's descriptor chain: what the guest sent, and where the reply goes.
pub struct Chain {
    head: u16,
    input: Vec<u8>,
    out: Vec<(GuestAddress, u32)>,
}

type Mem = GuestMemoryLoadGuard<GuestMemoryMmap>;

impl Chain {
    /// Gathers the readable part of `chain` and notes its writable buffers; on failure
    /// gives back the head to return the chain with.
    pub fn read(
        mem: &GuestMemoryMmap,
        chain: DescriptorChain<Mem>,
    ) -> std::result::Result<Chain, (u16, String)> {
        let head = chain.head_index();
        let mut input = Vec::new();
        let mut out = Vec::new();
        for d in chain {
            if d.is_write_only() {
                out.push((d.addr(), d.len()));
                continue;
            }
            let len = d.len() as usize;
            if input.len() + len > MAX_REQUEST {
                return Err((head, format!("request longer than {MAX_REQUEST} bytes")));
            }
            let at = input.len();
            input.resize(at + len, 0);
            mem.read_slice(&mut input[at..], d.addr())
                .map_err(|e| (head, format!("reading guest memory: {e}")))?;
        }
        Ok(Chain { head, input, out })
    }

    pub fn head(&self) -> u16 {
        self.head
    }

    /// Takes the request as the guest sent it (header and arguments) out of the chain,
    /// which then only remembers where the reply goes.
    pub fn take_input(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.input)
    }

    /// The request's header, if it has a whole one whose length is the request's.
    pub fn header(&self) -> Option<Header> {
        if self.input.len() < IN_HEADER || le32(&self.input, 0)? as usize != self.input.len() {
            return None;
        }
        Some(Header {
            opcode: le32(&self.input, 4)?,
            unique: le64(&self.input, 8)?,
            nodeid: le64(&self.input, 16)?,
        })
    }

    /// The arguments after the header.
    pub fn args(&self) -> &[u8] {
        self.input.get(IN_HEADER..).unwrap_or(&[])
    }

    /// Room for the reply.
    pub fn capacity(&self) -> usize {
        self.out.iter().map(|&(_, l)| l as usize).sum()
    }

    /// Copies `reply` into the writable buffers; the bytes written. A reply that does not
    /// fit is replaced by an EIO reply (the guest sized the buffers, so this is its error).
    pub fn write_reply(&self, mem: &GuestMemoryMmap, reply: &[u8]) -> io::Result<u32> {
        let short;
        let reply = if reply.len() > self.capacity() && reply.len() >= OUT_HEADER {
            tracing::warn!(
                len = reply.len(),
                room = self.capacity(),
                "vhost-user: reply longer than the guest's buffers"
            );
            short = error_reply(le64(reply, 8).unwrap_or(0), libc::EIO);
            &short[..]
        } else {
            reply
        };
        let mut done = 0;
        for &(addr, len) in &self.out {
            if done >= reply.len() {
                break;
            }
            let n = (len as usize).min(reply.len() - done);
            mem.write_slice(&reply[done..done + n], addr)
                .map_err(io::Error::other)?;
            done += n;
        }
        Ok(done as u32)
    }
}

/// A reply: `Ok` with its payload, or an errno.
pub fn reply(unique: u64, r: std::result::Result<(), i32>, payload: &[u8]) -> Vec<u8> {
    match r {
        Err(e) => error_reply(unique, e),
        Ok(()) => {
            let mut b = Vec::with_capacity(OUT_HEADER + payload.len());
            b.extend_from_slice(&((OUT_HEADER + payload.len()) as u32).to_le_bytes());
            b.extend_from_slice(&0i32.to_le_bytes());
            b.extend_from_slice(&unique.to_le_bytes());
            b.extend_from_slice(payload);
            b
        }
    }
}

fn error_reply(unique: u64, errno: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(OUT_HEADER);
    b.extend_from_slice(&(OUT_HEADER as u32).to_le_bytes());
    b.extend_from_slice(&(-errno).to_le_bytes());
    b.extend_from_slice(&unique.to_le_bytes());
    b
}

/// `struct virtio_fs_config`: the tag (NUL-padded to 36 bytes) and the request queues.
pub fn virtio_fs_config(tag: &str, request_queues: u32) -> Vec<u8> {
    let mut c = vec![0u8; 40];
    let t = tag.as_bytes();
    let n = t.len().min(36);
    c[..n].copy_from_slice(&t[..n]);
    c[36..40].copy_from_slice(&request_queues.to_le_bytes());
    c
}

/// The ioctls a guest may not run: window-host commands (their device offsets are the
/// host's), revocation and remount (root of the host, not of a guest).
pub fn host_only_ioctl(args: &[u8]) -> bool {
    let Some(cmd) = le32(args, 12) else {
        return false;
    };
    [
        crate::abi::IOC_SETUPMAPPING,
        crate::abi::IOC_REMOVEMAPPING,
        crate::abi::IOC_FLUSHMAPPING,
        crate::abi::IOC_GET_RECALLS,
        crate::abi::IOC_REVOKE,
        crate::abi::IOC_SET_READONLY,
        crate::abi::IOC_DEFRAG,
    ]
    .contains(&cmd)
}

/// The file range whose blocks a request frees or moves, if it does: a truncate (from the
/// new size on), an open with `O_TRUNC`, a punch, zero, collapse or insert.
pub fn extent_change(h: &Header, args: &[u8]) -> Option<(u64, u64)> {
    const PUNCH_HOLE: u32 = 0x02;
    const COLLAPSE_RANGE: u32 = 0x08;
    const ZERO_RANGE: u32 = 0x10;
    const INSERT_RANGE: u32 = 0x20;
    match h.opcode {
        SETATTR if le32(args, 0)? & FATTR_SIZE != 0 => Some((le64(args, 16)?, u64::MAX)),
        OPEN if le32(args, 0)? & libc::O_TRUNC as u32 != 0 => Some((0, u64::MAX)),
        FALLOCATE => {
            let (off, len, mode) = (le64(args, 8)?, le64(args, 16)?, le32(args, 24)?);
            if mode & (COLLAPSE_RANGE | INSERT_RANGE) != 0 {
                Some((off, u64::MAX))
            } else if mode & (PUNCH_HOLE | ZERO_RANGE) != 0 {
                Some((off, off.saturating_add(len)))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `fuse_setupmapping_in`: (foffset, len, flags, moffset); `fh` is not used (the guest
/// sends -1: the mapping belongs to the inode).
pub fn setupmapping(args: &[u8]) -> Option<(u64, u64, u64, u64)> {
    Some((
        le64(args, 8)?,
        le64(args, 16)?,
        le64(args, 24)?,
        le64(args, 32)?,
    ))
}

/// `fuse_removemapping_in` and its `fuse_removemapping_one` array: (moffset, len) pairs.
pub fn removemapping(args: &[u8]) -> Option<Vec<(u64, u64)>> {
    let count = le32(args, 0)? as usize;
    let mut v = Vec::with_capacity(count.min(256));
    for i in 0..count {
        let at = 4 + 16 * i;
        v.push((le64(args, at)?, le64(args, at + 8)?));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: u32) -> Header {
        Header {
            opcode,
            unique: 1,
            nodeid: 5,
        }
    }

    #[test]
    fn extent_changes() {
        let mut setattr = vec![0u8; 88];
        setattr[0..4].copy_from_slice(&FATTR_SIZE.to_le_bytes());
        setattr[16..24].copy_from_slice(&4096u64.to_le_bytes());
        assert_eq!(
            extent_change(&header(SETATTR), &setattr),
            Some((4096, u64::MAX))
        );
        setattr[0..4].copy_from_slice(&1u32.to_le_bytes()); // FATTR_MODE only
        assert_eq!(extent_change(&header(SETATTR), &setattr), None);
        let mut open = vec![0u8; 8];
        open[0..4].copy_from_slice(&(libc::O_RDWR as u32 | libc::O_TRUNC as u32).to_le_bytes());
        assert_eq!(extent_change(&header(OPEN), &open), Some((0, u64::MAX)));
        let mut fa = vec![0u8; 32];
        fa[8..16].copy_from_slice(&8192u64.to_le_bytes());
        fa[16..24].copy_from_slice(&4096u64.to_le_bytes());
        fa[24..28].copy_from_slice(&(0x02u32 | 0x01).to_le_bytes()); // punch, keep size
        assert_eq!(extent_change(&header(FALLOCATE), &fa), Some((8192, 12288)));
        fa[24..28].copy_from_slice(&0x08u32.to_le_bytes()); // collapse
        assert_eq!(
            extent_change(&header(FALLOCATE), &fa),
            Some((8192, u64::MAX))
        );
        fa[24..28].copy_from_slice(&0x01u32.to_le_bytes()); // keep size: allocates only
        assert_eq!(extent_change(&header(FALLOCATE), &fa), None);
        // Truncated arguments are no change (fuser answers them with an error).
        assert_eq!(extent_change(&header(SETATTR), &[0u8; 8]), None);
    }

    #[test]
    fn removemapping_parses_exactly() {
        let mut a = vec![0u8; 4 + 32];
        a[0..4].copy_from_slice(&2u32.to_le_bytes());
        a[4..12].copy_from_slice(&(2u64 << 20).to_le_bytes());
        a[12..20].copy_from_slice(&(2u64 << 20).to_le_bytes());
        a[20..28].copy_from_slice(&0u64.to_le_bytes());
        a[28..36].copy_from_slice(&(2u64 << 20).to_le_bytes());
        assert_eq!(
            removemapping(&a),
            Some(vec![(2 << 20, 2 << 20), (0, 2 << 20)])
        );
        a[0..4].copy_from_slice(&3u32.to_le_bytes()); // claims more than it carries
        assert_eq!(removemapping(&a), None);
    }

    #[test]
    fn config_and_replies() {
        let c = virtio_fs_config("sealfs", 1);
        assert_eq!(&c[..7], b"sealfs\0");
        assert_eq!(&c[36..], &1u32.to_le_bytes());
        assert_eq!(
            reply(7, Err(libc::ENOENT), &[]),
            [
                16u32.to_le_bytes().as_slice(),
                (-libc::ENOENT).to_le_bytes().as_slice(),
                7u64.to_le_bytes().as_slice()
            ]
            .concat()
        );
        assert_eq!(reply(7, Ok(()), b"ab").len(), 18);
    }
}
