//! DAX window mappings through the core API: pins, recall, revocation and quarantine.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Failed;
use sealfs::device::sim::SimDevice;
use sealfs::filesystem::seals::SealOptions;
use sealfs::filesystem::windows::{MappedRange, RecalledMapping, MAP_READ, MAP_WRITE};
use sealfs::filesystem::{mkfs, MkfsOptions, MountOptions};
use sealfs::{Ctx, Filesystem, Stop};

fn setup() -> (Filesystem, u64, u64) {
    let dev = Arc::new(SimDevice::new(16 << 20, true));
    mkfs(&*dev, MkfsOptions::default()).unwrap();
    let fs = Filesystem::mount(Box::new(dev), MountOptions::default()).unwrap();
    fs.configure_seals(SealOptions {
        max_seals: 64,
        max_seals_per_user: 64,
        break_timeout: Duration::from_millis(100),
    });
    let (st, fh) = fs
        .create(1, b"f", 0o644, libc::O_RDWR, Ctx::root())
        .unwrap();
    fs.truncate(st.ino, 1 << 20, Ctx::root()).unwrap();
    (fs, st.ino, fh)
}

fn host(pid: u32) -> Ctx {
    Ctx {
        uid: 0,
        gid: 0,
        pid,
        umask: 0,
    }
}

#[test]
fn mapping_pins_the_range_and_a_recall_is_answered_by_removemapping() {
    let (fs, ino, fh) = setup();
    let me = std::process::id();
    let ext = fs
        .setup_mapping(fh, 0, 64 << 10, MAP_READ | MAP_WRITE, 0, host(me))
        .unwrap();
    assert_eq!(
        ext.iter().map(|e| e.len).sum::<u64>(),
        64 << 10,
        "holes were populated and mapped"
    );
    assert!(ext.iter().all(|e| e.doffset >= fs.layout().data_off));
    assert_eq!(
        fs.setup_mapping(fh, 0, 4096, MAP_READ, 0, host(me))
            .unwrap_err()
            .errno(),
        libc::EEXIST
    );
    assert_eq!(
        fs.setup_mapping(fh, 1, 4096, MAP_READ, 1, host(me))
            .unwrap_err()
            .errno(),
        libc::EINVAL,
        "unaligned"
    );
    assert_eq!(
        fs.setup_mapping(fh, 0, 4096, 8, 1, host(me))
            .unwrap_err()
            .errno(),
        libc::EINVAL,
        "bad flags"
    );
    assert_eq!(
        fs.setup_mapping(fh, 2 << 20, 4096, MAP_READ, 1, host(me))
            .unwrap_err()
            .errno(),
        libc::EINVAL,
        "past EOF"
    );
    let ro = fs.open(ino, libc::O_RDONLY, host(me)).unwrap();
    assert_eq!(
        fs.setup_mapping(ro, 0, 4096, MAP_WRITE, 0, host(me))
            .unwrap_err()
            .errno(),
        libc::EACCES
    );
    // A truncate into the mapped range waits for the host.
    assert!(matches!(
        fs.truncate(ino, 4096, Ctx::root()),
        Err(Stop::Wait(_))
    ));
    assert_eq!(
        fs.recalled_mappings(fh),
        vec![RecalledMapping {
            moffset: 0,
            len: 64 << 10
        }]
    );
    fs.remove_mapping(fh, 0).unwrap();
    fs.truncate(ino, 4096, Ctx::root()).unwrap();
    assert_eq!(fs.quarantined_blocks(), 0);
    fs.release(ro).unwrap();
    fs.release(fh).unwrap();
}

#[test]
fn a_revoked_host_is_fenced_and_its_blocks_are_quarantined_until_it_exits() {
    let (fs, ino, fh) = setup();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let ext = fs
        .setup_mapping(fh, 0, 256 << 10, MAP_READ | MAP_WRITE, 0, host(child.id()))
        .unwrap();
    let mapped: Vec<(u64, u64)> = ext.iter().map(|e| (e.doffset, e.doffset + e.len)).collect();
    let free_before = fs.stats().free_blocks;
    // The host never answers: revoked after break_timeout, then the truncate proceeds.
    fs.blocking(|| fs.truncate(ino, 0, Ctx::root())).unwrap();
    assert_eq!(
        fs.setup_mapping(fh, 0, 4096, MAP_READ, 9, host(child.id()))
            .unwrap_err()
            .errno(),
        libc::ENOLINK
    );
    assert_eq!(
        fs.quarantined_blocks(),
        64,
        "256 KiB of freed blocks held back"
    );
    assert_eq!(
        fs.stats().free_blocks,
        free_before,
        "not returned to the allocator"
    );
    // Allocate everything there is: no new file may get a quarantined block.
    let (big, bfh) = fs
        .create(1, b"big", 0o644, libc::O_RDWR, Ctx::root())
        .unwrap();
    let chunk = vec![1u8; 1 << 20];
    let mut off = 0;
    loop {
        match fs.write(big.ino, off, &chunk) {
            Ok(n) => off += n as u64,
            Err(e) => {
                assert_eq!(e.errno(), libc::ENOSPC, "at offset {off}");
                break;
            }
        }
    }
    let base = fs.layout().data_off;
    for x in fs.extents(big.ino).unwrap() {
        let (s, e) = (base + x.dblock * 4096, base + (x.dblock + x.len) * 4096);
        assert!(
            mapped.iter().all(|&(ms, me)| e <= ms || s >= me),
            "a quarantined block was reallocated"
        );
    }
    // The host exits: the quarantine ends and the space comes back.
    child.kill().unwrap();
    child.wait().unwrap();
    fs.reap_quarantine();
    assert_eq!(fs.quarantined_blocks(), 0);
    assert_eq!(fs.stats().free_blocks, 64);
    fs.release(bfh).unwrap();
    fs.release(fh).unwrap();
}

#[test]
fn closing_the_fd_does_not_end_the_quarantine_but_removemapping_would_have() {
    let (fs, ino, fh) = setup();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    fs.setup_mapping(fh, 0, 64 << 10, MAP_READ | MAP_WRITE, 0, host(child.id()))
        .unwrap();
    fs.release(fh).unwrap();
    let fh2 = fs.open(ino, libc::O_RDWR, Ctx::root()).unwrap();
    fs.truncate(ino, 0, Ctx::root()).unwrap();
    assert_eq!(fs.quarantined_blocks(), 16);
    child.kill().unwrap();
    child.wait().unwrap();
    fs.reap_quarantine();
    assert_eq!(fs.quarantined_blocks(), 0);
    fs.release(fh2).unwrap();
}

/// Forks a child that waits to be killed; returns its pid.
fn idle_child() -> libc::pid_t {
    // SAFETY: the child only calls pause and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        loop {
            // SAFETY: plain system calls in the child.
            unsafe { libc::pause() };
        }
    }
    pid
}

fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// A new process that gets `want` as its pid (through `ns_last_pid`), or `None`.
fn child_with_pid(want: libc::pid_t) -> Option<libc::pid_t> {
    for _ in 0..50 {
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).is_err() {
            return None;
        }
        let pid = idle_child();
        if pid == want {
            return Some(pid);
        }
        kill_and_reap(pid);
    }
    None
}

#[test]
fn the_quarantine_watches_the_host_not_a_process_that_reuses_its_pid() {
    let (fs, ino, fh) = setup();
    let host_pid = idle_child();
    fs.setup_mapping(
        fh,
        0,
        64 << 10,
        MAP_READ | MAP_WRITE,
        0,
        host(host_pid as u32),
    )
    .unwrap();
    // The host exits; an unrelated process gets its pid before the pin is revoked.
    kill_and_reap(host_pid);
    let Some(other) = child_with_pid(host_pid) else {
        common::skip(&format!(
            "cannot make a process reuse pid {host_pid} (needs root)"
        ));
        fs.release(fh).unwrap();
        return;
    };
    fs.blocking(|| fs.truncate(ino, 0, Ctx::root())).unwrap();
    fs.reap_quarantine();
    let held = fs.quarantined_blocks();
    kill_and_reap(other);
    assert_eq!(
        held, 0,
        "the host exited: nothing stays quarantined for the new process with its pid"
    );
    fs.release(fh).unwrap();
}

#[test]
fn root_revokes_a_pin_at_once_and_its_blocks_are_quarantined() {
    let (fs, ino, fh) = setup();
    let me = std::process::id();
    fs.setup_mapping(fh, 0, 64 << 10, MAP_READ | MAP_WRITE, 0, host(me))
        .unwrap();
    let user = Ctx {
        uid: 1000,
        gid: 1000,
        pid: me,
        umask: 0,
    };
    assert_eq!(
        fs.revoke_seals(ino, 0, 0, user).unwrap_err().errno(),
        libc::EPERM
    );
    assert_eq!(fs.revoke_seals(ino, 0, 0, Ctx::root()).unwrap(), 1);
    assert!(fs.seals_of(ino).is_empty());
    assert_eq!(
        fs.recalled_mappings(fh),
        vec![RecalledMapping {
            moffset: 0,
            len: 64 << 10
        }]
    );
    assert_eq!(
        fs.setup_mapping(fh, 0, 4096, MAP_READ, 1, host(me))
            .unwrap_err()
            .errno(),
        libc::ENOLINK
    );
    // Nothing waits now; the freed blocks stay out of the allocator until acknowledged.
    fs.truncate(ino, 0, Ctx::root()).unwrap();
    assert_eq!(fs.quarantined_blocks(), 16);
    fs.remove_mapping(fh, 0).unwrap();
    assert_eq!(fs.quarantined_blocks(), 0);
    fs.release(fh).unwrap();
}

/// A SETUPMAPPING over a live slot (`replace_mapping`, what the ioctl does) replaces the
/// slot's mapping in one call: the old pin — here recalled by a truncate — is released at
/// once, so the truncate proceeds with no REMOVEMAPPING; bad arguments are refused before
/// the old mapping is touched.
#[test]
fn replacing_a_live_slot_releases_its_pin_in_the_same_call() {
    let (fs, ino, fh) = setup();
    let me = std::process::id();
    let rw = MAP_READ | MAP_WRITE;
    fs.setup_mapping(fh, 512 << 10, 64 << 10, rw, 0, host(me))
        .unwrap();
    assert!(matches!(
        fs.truncate(ino, 256 << 10, Ctx::root()),
        Err(Stop::Wait(_))
    ));
    let recalled = vec![RecalledMapping {
        moffset: 0,
        len: 64 << 10,
    }];
    assert_eq!(fs.recalled_mappings(fh), recalled);
    let old = MappedRange {
        ino,
        foffset: 512 << 10,
        len: 64 << 10,
        write: true,
    };
    for (foffset, len, flags, errno) in [
        (0, 4096, 8, libc::EINVAL),
        (1, 4096, MAP_READ, libc::EINVAL),
        (0, 0, MAP_READ, libc::EINVAL),
        (2 << 20, 4096, MAP_READ, libc::EINVAL),
    ] {
        let mut replaced = Vec::new();
        let e = fs
            .replace_mapping(fh, foffset, len, flags, 0, host(me), &mut replaced)
            .unwrap_err();
        assert_eq!(e.errno(), errno, "{foffset} {len} {flags}");
        assert_eq!(
            replaced,
            vec![],
            "refused before the old mapping was touched"
        );
        assert_eq!(fs.mapping(fh, 0), Some(old));
    }
    assert_eq!(fs.recalled_mappings(fh), recalled);
    let mut replaced = Vec::new();
    let ext = fs
        .replace_mapping(fh, 0, 64 << 10, rw, 0, host(me), &mut replaced)
        .unwrap();
    assert_eq!(replaced, vec![old]);
    assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), 64 << 10);
    assert_eq!(ext[0].foffset, 0);
    assert_eq!(fs.recalled_mappings(fh), vec![]);
    assert_eq!(fs.seal_stats().pins, 1);
    fs.truncate(ino, 256 << 10, Ctx::root()).unwrap();
    assert_eq!(
        fs.mapping(fh, 0),
        Some(MappedRange {
            ino,
            foffset: 0,
            len: 64 << 10,
            write: true
        })
    );
    // The same range again (a read mapping becoming writable, say): still one pin.
    let mut replaced = Vec::new();
    fs.replace_mapping(fh, 0, 64 << 10, MAP_READ, 0, host(me), &mut replaced)
        .unwrap();
    assert_eq!(replaced.len(), 1);
    assert_eq!(fs.seal_stats().pins, 1);
    assert_eq!(fs.seal_stats().recalls, 1);
    fs.remove_mapping(fh, 0).unwrap();
    assert_eq!(fs.seal_stats().pins, 0);
    assert_eq!(fs.quarantined_blocks(), 0);
    fs.release(fh).unwrap();
}

/// A replacement that fails once the arguments have been checked (here the new range's
/// hole is under another descriptor's temporary seal: ETXTBSY) has removed the old mapping:
/// the slot is empty, its pin gone, and REMOVEMAPPING of it is EINVAL.
#[test]
fn a_replacement_refused_after_the_argument_checks_leaves_the_slot_empty() {
    use sealfs::filesystem::seals::{Populate, SealMode};
    let (fs, ino, fh) = setup();
    let me = std::process::id();
    let rw = MAP_READ | MAP_WRITE;
    fs.setup_mapping(fh, 0, 64 << 10, rw, 0, host(me)).unwrap();
    let other = fs.open(ino, libc::O_RDWR, Ctx::root()).unwrap();
    fs.seal(
        other,
        512 << 10,
        64 << 10,
        SealMode::Temporary,
        Populate::No,
        Ctx::root(),
    )
    .unwrap();
    let mut replaced = Vec::new();
    let e = fs
        .replace_mapping(fh, 512 << 10, 64 << 10, rw, 0, host(me), &mut replaced)
        .unwrap_err();
    assert_eq!(e.errno(), libc::ETXTBSY);
    assert_eq!(
        replaced,
        vec![MappedRange {
            ino,
            foffset: 0,
            len: 64 << 10,
            write: true
        }]
    );
    assert_eq!(fs.mapping(fh, 0), None);
    assert_eq!(fs.seal_stats().pins, 0);
    assert_eq!(fs.remove_mapping(fh, 0).unwrap_err().errno(), libc::EINVAL);
    fs.release(other).unwrap();
    fs.release(fh).unwrap();
}
