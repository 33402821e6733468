//! `sealfs seal`, `unseal`, `seals`, `extents` and `map`: the seal and window commands,
//! all thin clients of the ioctls in `crate::abi`. `map --bench` is in `bench`, `defrag`
//! in `admin`.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{human, parse_size, Arg, Args};
use super::{at, describe_io, sys, Failure, Outcome};
use crate::abi;

fn parse_range(v: &OsString) -> Result<(u64, u64), Failure> {
    let s = v.to_string_lossy();
    let (o, l) = s
        .split_once(':')
        .ok_or_else(|| Failure::Usage(format!("--range wants OFF:LEN, not '{s}'")))?;
    let off = parse_size(o.as_ref()).map_err(Failure::Usage)?;
    let len = parse_size(l.as_ref()).map_err(Failure::Usage)?;
    Ok((off, len))
}

/// Takes the one FILE argument; a second positional argument is a usage error.
fn the_file(file: &mut Option<PathBuf>, p: OsString) -> Result<(), Failure> {
    if file.is_some() {
        return Err(Failure::Usage(format!(
            "unexpected argument {}",
            p.to_string_lossy()
        )));
    }
    *file = Some(PathBuf::from(p));
    Ok(())
}

pub(super) fn ioctl(f: &File, path: &Path, cmd: u32, buf: &mut [u8]) -> Result<(), String> {
    sys::ioctl(f, cmd, buf).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTTY) => at(path, "not on a sealfs mount"),
        Some(libc::ETXTBSY) => at(
            path,
            "the extent map is sealed by someone else (Text file busy)",
        ),
        _ => at(path, describe_io(&e)),
    })
}

pub(super) fn open(path: &Path, write: bool) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .map_err(|e| at(path, describe_io(&e)))
}

/// Waits up to `ms` for POLLPRI (a recall) on `f`.
fn recalled(f: &File, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0 && p.revents & libc::POLLPRI != 0
}

/// `sealfs seal ...`
pub fn seal(rest: Vec<OsString>) -> Outcome {
    let mut a = Args::new(rest);
    let (mut breakable, mut populate, mut immutable, mut hold) = (false, false, false, false);
    let mut range = (0u64, 0u64);
    let mut file: Option<PathBuf> = None;
    let mut command: Vec<OsString> = Vec::new();
    while let Some(arg) = a.next_arg() {
        match arg {
            Arg::Flag(f, v) => match f.as_str() {
                "--breakable" => breakable = true,
                "--populate" => populate = true,
                "--immutable" => immutable = true,
                "--hold" => hold = true,
                "--range" => range = parse_range(&a.value("--range", v)?)?,
                other => return Err(Failure::Usage(format!("unknown option {other}"))),
            },
            Arg::Pos(p) if file.is_none() => file = Some(PathBuf::from(p)),
            Arg::Pos(p) => {
                // `sealfs seal FILE COMMAND...` without `--`.
                command.push(p);
                command.extend(a.rest());
                break;
            }
        }
    }
    let path = file.ok_or_else(|| Failure::Usage("FILE is missing".into()))?;
    if immutable {
        if breakable || hold || !command.is_empty() || range != (0, 0) {
            return Err(Failure::Usage(
                "--immutable takes only --populate and FILE".into(),
            ));
        }
        let f = open(&path, false)?;
        let mut b = abi::encode_immutable(populate);
        ioctl(&f, &path, abi::IOC_SET_IMMUTABLE, &mut b).map_err(|e| {
            if e.ends_with("Invalid argument") {
                at(
                    &path,
                    "the file has holes (use --populate to allocate them)",
                )
            } else {
                e
            }
        })?;
        println!("{}: extent map sealed permanently", path.display());
        return Ok(());
    }
    if hold != command.is_empty() {
        return Err(Failure::Usage("give either --hold or -- COMMAND".into()));
    }
    // An unbreakable seal needs write access, a breakable one read access; filling holes
    // (--populate) needs write access too.
    let f = open(&path, !breakable || populate)?;
    let arg = abi::SealArg {
        offset: range.0,
        length: range.1,
        flags: (if breakable { abi::SEAL_BREAKABLE } else { 0 })
            | (if populate { abi::SEAL_POPULATE } else { 0 }),
    };
    let mut b = arg.encode();
    ioctl(&f, &path, abi::IOC_SEAL, &mut b)?;
    let what = if breakable { "breakable seal" } else { "seal" };
    let unseal = |f: &File| {
        let mut b = arg.encode();
        ioctl(f, &path, abi::IOC_UNSEAL, &mut b)
    };
    if hold {
        eprintln!(
            "sealfs seal: {what} on {} held by pid {}; holding until killed",
            path.display(),
            std::process::id()
        );
        loop {
            if breakable && recalled(&f, 1000) {
                unseal(&f)?;
                eprintln!(
                    "sealfs seal: recalled; {what} on {} released",
                    path.display()
                );
                return Ok(());
            } else if !breakable {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
    let mut child = std::process::Command::new(&command[0])
        .args(&command[1..])
        .spawn()
        .map_err(|e| format!("{}: {}", command[0].to_string_lossy(), describe_io(&e)))?;
    let mut held = true;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| describe_io(&e))? {
            break st;
        }
        if held && breakable && recalled(&f, 50) {
            unseal(&f)?;
            held = false;
            eprintln!(
                "sealfs seal: recalled; {what} on {} released",
                path.display()
            );
        } else if !(held && breakable) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Explicitly, so the seal is gone when this returns (RELEASE after close is async).
    if held {
        unseal(&f)?;
    }
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// `sealfs unseal --immutable FILE` and `sealfs unseal --force [--range OFF:LEN] FILE`
pub fn unseal(rest: Vec<OsString>) -> Outcome {
    let mut a = Args::new(rest);
    let (mut immutable, mut force, mut range) = (false, false, None);
    let mut file = None;
    while let Some(arg) = a.next_arg() {
        match arg {
            Arg::Flag(f, v) => match f.as_str() {
                "--immutable" => immutable = true,
                "--force" => force = true,
                "--range" => range = Some(parse_range(&a.value("--range", v)?)?),
                other => return Err(Failure::Usage(format!("unknown option {other}"))),
            },
            Arg::Pos(p) => the_file(&mut file, p)?,
        }
    }
    let path = file.ok_or_else(|| Failure::Usage("FILE is missing".into()))?;
    if force {
        if immutable {
            return Err(Failure::Usage(
                "--force revokes held seals; the permanent seal goes with --immutable".into(),
            ));
        }
        let (offset, length) = range.unwrap_or((0, 0));
        let f = open(&path, false)?;
        let mut b = abi::SealArg {
            offset,
            length,
            flags: 0,
        }
        .encode();
        ioctl(&f, &path, abi::IOC_REVOKE, &mut b).map_err(|e| {
            if e.ends_with("Operation not permitted") {
                at(&path, "only root may revoke seals")
            } else {
                e
            }
        })?;
        println!(
            "{}: seals and mapping pins revoked; their holders get ENOLINK",
            path.display()
        );
        return Ok(());
    }
    if range.is_some() {
        return Err(Failure::Usage("--range goes with --force".into()));
    }
    if !immutable {
        return Err(Failure::Usage(
            "give --immutable (the permanent seal) or --force (revoke held seals, root)".into(),
        ));
    }
    let f = open(&path, false)?;
    let mut b = abi::encode_immutable(false);
    ioctl(&f, &path, abi::IOC_CLEAR_IMMUTABLE, &mut b)?;
    println!("{}: permanent seal cleared", path.display());
    Ok(())
}

/// `sealfs seals FILE`
pub fn seals(rest: Vec<OsString>) -> Outcome {
    let mut a = Args::new(rest);
    let path = PathBuf::from(a.positional("FILE")?);
    a.finish()?;
    let f = open(&path, false)?;
    let mut b = vec![0u8; abi::SEAL_LIST_SIZE];
    ioctl(&f, &path, abi::IOC_GET_SEALS, &mut b)?;
    let (list, total) = abi::decode_seal_list(&b).map_err(|e| at(&path, e))?;
    if list.is_empty() {
        println!("{}: no seals", path.display());
        return Ok(());
    }
    println!(
        "{:<10} {:>8} {:>14} {:>14}  STATE",
        "KIND", "PID", "OFFSET", "LENGTH"
    );
    for s in &list {
        let kind = match s.kind {
            abi::KIND_TEMPORARY => "temporary",
            abi::KIND_BREAKABLE => "breakable",
            abi::KIND_PIN => "mapping",
            abi::KIND_IMMUTABLE => "immutable",
            _ => "?",
        };
        let len = if s.length == 0 {
            "to EOF".to_string()
        } else {
            s.length.to_string()
        };
        let state = if s.state == abi::STATE_RECALLED {
            format!("recalled, revoked in {} ms", s.remaining_ms)
        } else {
            "active".to_string()
        };
        let pid = if s.kind == abi::KIND_IMMUTABLE {
            "-".to_string()
        } else {
            s.pid.to_string()
        };
        println!("{kind:<10} {pid:>8} {:>14} {len:>14}  {state}", s.offset);
    }
    if total as usize > list.len() {
        println!("... {} more", total as usize - list.len());
    }
    Ok(())
}

/// `sealfs extents FILE` (root only)
pub fn extents(rest: Vec<OsString>) -> Outcome {
    let mut a = Args::new(rest);
    let path = PathBuf::from(a.positional("FILE")?);
    a.finish()?;
    let f = open(&path, false)?;
    let mut start = 0u64;
    // The header follows the first answer: a refusal prints nothing on stdout.
    let mut header = true;
    loop {
        let mut b = vec![0u8; abi::EXTENT_LIST_SIZE];
        b[..8].copy_from_slice(&start.to_le_bytes());
        ioctl(&f, &path, abi::IOC_EXTENTS, &mut b).map_err(|e| {
            if e.ends_with("Operation not permitted") {
                at(&path, "device addresses are shown to root only")
            } else {
                e
            }
        })?;
        let (list, total) = abi::decode_extent_list(&b).map_err(|e| at(&path, e))?;
        if std::mem::take(&mut header) {
            println!(
                "{:>14} {:>16} {:>14}",
                "FILE OFFSET", "DEVICE OFFSET", "LENGTH"
            );
        }
        for (fo, d, l) in &list {
            println!("{fo:>14} {d:>#16x} {l:>14}");
        }
        match list.last() {
            Some(&(fo, _, l)) if (total as usize) > list.len() => start = fo + l,
            _ => break,
        }
    }
    Ok(())
}

/// `sealfs map FILE [--range OFF:LEN]` and `sealfs map --bench [--size SIZE] FILE`
pub fn map(rest: Vec<OsString>) -> Outcome {
    let mut a = Args::new(rest);
    let (mut bench, mut verify, mut size, mut range) = (false, false, 256u64 << 20, None);
    let mut file = None;
    while let Some(arg) = a.next_arg() {
        match arg {
            Arg::Flag(f, v) => match f.as_str() {
                "--bench" => bench = true,
                "--verify" => verify = true,
                "--size" => size = parse_size(&a.value("--size", v)?).map_err(Failure::Usage)?,
                "--range" => range = Some(parse_range(&a.value("--range", v)?)?),
                other => return Err(Failure::Usage(format!("unknown option {other}"))),
            },
            Arg::Pos(p) => the_file(&mut file, p)?,
        }
    }
    let path = file.ok_or_else(|| Failure::Usage("FILE is missing".into()))?;
    if bench {
        return super::bench::map_bench(&path, size);
    }
    if verify {
        return map_verify(&path, size);
    }
    use crate::window::{Window, SLOT};
    let fsize = std::fs::metadata(&path)
        .map_err(|e| at(&path, describe_io(&e)))?
        .len();
    let (off, len) = range.unwrap_or((0, fsize));
    let len = len.min(fsize.saturating_sub(off));
    if len == 0 {
        return Err(Failure::Failed(at(&path, "nothing to map (empty range)")));
    }
    let mut w =
        Window::open(&path, len.div_ceil(SLOT) * SLOT + SLOT, false).map_err(|e| at(&path, e))?;
    let mut sum = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = off;
    while pos < off + len {
        let n = (off + len - pos).min(buf.len() as u64) as usize;
        w.read_at(pos, &mut buf[..n]).map_err(|e| at(&path, e))?;
        sum = buf[..n]
            .iter()
            .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
        pos += n as u64;
    }
    println!(
        "{}: mapped [{off}, {}) through a window of {} slots of {}: {} SETUPMAPPING calls; checksum {sum:016x}",
        path.display(),
        off + len,
        w.slots(),
        human(SLOT),
        w.setups
    );
    Ok(())
}

/// Opens `path` for reading and writing, creating it (empty) when missing.
pub(super) fn open_rw_create(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| at(path, describe_io(&e)))
}

/// The bytes `map --verify` stores at file offset `off` in pass `pass`: every 8-byte word
/// names its own offset, so a misplaced or stale block shows as a mismatch.
fn stamp(buf: &mut [u8], off: u64, pass: u64) {
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        let v = (off + i as u64 * 8) ^ pass.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        w.copy_from_slice(&v.to_le_bytes());
    }
}

fn mismatch(path: &Path, how: &str, off: u64, want: &[u8], got: &[u8]) -> Failure {
    let at_byte = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(0);
    Failure::Failed(format!(
        "{}: {how}: bytes differ at file offset {}",
        path.display(),
        off + at_byte as u64
    ))
}

/// `sealfs map --verify [--size SIZE] FILE`: writes a pattern with write(2) + fsync and
/// reads it back through a window; then stores another through a writable window, flushes
/// it and reads it back with read(2), which leaves FILE holding the window's bytes. Any
/// differing byte fails the command.
fn map_verify(path: &Path, size: u64) -> Outcome {
    use crate::window::{Window, SLOT};
    use std::os::unix::fs::FileExt;
    let size = size.div_ceil(SLOT) * SLOT;
    let f = open_rw_create(path)?;
    f.set_len(size).map_err(|e| at(path, describe_io(&e)))?;
    f.sync_all().map_err(|e| at(path, describe_io(&e)))?;
    let chunk = 1usize << 20;
    let (mut want, mut got) = (vec![0u8; chunk], vec![0u8; chunk]);
    // Pass 1: write(2) + fsync, read back through a window.
    let mut o = 0;
    while o < size {
        stamp(&mut want, o, 1);
        f.write_all_at(&want, o)
            .map_err(|e| at(path, describe_io(&e)))?;
        o += chunk as u64;
    }
    f.sync_all().map_err(|e| at(path, describe_io(&e)))?;
    let mut w = Window::open(path, (size / 2).max(SLOT), false).map_err(|e| at(path, e))?;
    let mut o = 0;
    while o < size {
        stamp(&mut want, o, 1);
        w.read_at(o, &mut got).map_err(|e| at(path, e))?;
        if want != got {
            return Err(mismatch(path, "write(2), window read back", o, &want, &got));
        }
        o += chunk as u64;
    }
    drop(w);
    // Pass 2: the window writes (half the file's size as the window, so slots cycle).
    let mut w = Window::open(path, (size / 2).max(SLOT), true).map_err(|e| at(path, e))?;
    let method = w.flush_method();
    let mut o = 0;
    while o < size {
        stamp(&mut want, o, 2);
        w.write_at(o, &want).map_err(|e| at(path, e))?;
        o += chunk as u64;
    }
    w.flush(0, size).map_err(|e| at(path, e))?;
    let setups = w.setups;
    drop(w);
    let mut o = 0;
    while o < size {
        stamp(&mut want, o, 2);
        f.read_exact_at(&mut got, o)
            .map_err(|e| at(path, describe_io(&e)))?;
        if want != got {
            return Err(mismatch(path, "window write, read(2) back", o, &want, &got));
        }
        o += chunk as u64;
    }
    println!(
        "{}: verified {}: written through a window ({setups} SETUPMAPPING calls, flushed with {method}) and read back by read(2), after a pass written by write(2) and read back through a window",
        path.display(),
        human(size)
    );
    Ok(())
}
