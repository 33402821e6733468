//! `sealfs mkfs [--size SIZE] [--block-size 4K|2M] [--log-size SIZE]
//! [--checkpoint-size SIZE] [--force] DEVICE`.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{human, parse_size, Arg, Args};
use super::{at, describe, describe_io, Failure, Outcome};
use crate::device::{self, DeviceKind};
use crate::error::Error;
use crate::filesystem::{mkfs, MkfsOptions};
use crate::format::layout::{LayoutOptions, HUGE, MIN_DEVICE, MIN_LOG};
use crate::format::FormatError;
use crate::journal::replay::read_superblocks;

/// How long mkfs waits for a daemon that still holds the device.
const LOCK_WAIT: Duration = Duration::from_secs(10);

struct Opts {
    dev: PathBuf,
    size: Option<u64>,
    block_size: u64,
    log_len: u64,
    ckpt_len: u64,
    force: bool,
}

/// Parses a region size: at least 64 KiB, a multiple of 4 KiB.
fn region_size(flag: &str, v: &OsString) -> Result<u64, Failure> {
    let n = parse_size(v).map_err(Failure::Usage)?;
    if n < MIN_LOG || !n.is_multiple_of(4096) {
        return Err(Failure::Usage(format!(
            "{flag} must be a multiple of 4K and at least 64K"
        )));
    }
    Ok(n)
}

fn parse(rest: Vec<OsString>) -> Result<Opts, Failure> {
    let mut a = Args::new(rest);
    let (mut size, mut block_size, mut force, mut dev) = (None, 0, false, None);
    let (mut log_len, mut ckpt_len) = (0, 0);
    while let Some(arg) = a.next_arg() {
        match arg {
            Arg::Flag(f, v) if f == "--size" || f == "-s" => {
                let s = parse_size(&a.value(&f, v)?).map_err(Failure::Usage)?;
                size = Some(s);
            }
            Arg::Flag(f, v) if f == "--block-size" || f == "-b" => {
                block_size = parse_size(&a.value(&f, v)?).map_err(Failure::Usage)?;
                if block_size != 4096 && block_size != HUGE {
                    return Err(Failure::Usage("--block-size must be 4K or 2M".into()));
                }
            }
            Arg::Flag(f, v) if f == "--log-size" => log_len = region_size(&f, &a.value(&f, v)?)?,
            Arg::Flag(f, v) if f == "--checkpoint-size" => {
                ckpt_len = region_size(&f, &a.value(&f, v)?)?
            }
            Arg::Flag(f, None) if f == "--force" || f == "-f" => force = true,
            Arg::Flag(f, _) => return Err(Failure::Usage(format!("unknown option {f}"))),
            Arg::Pos(p) if dev.is_none() => dev = Some(PathBuf::from(p)),
            Arg::Pos(p) => {
                return Err(Failure::Usage(format!(
                    "unexpected argument '{}'",
                    p.to_string_lossy()
                )))
            }
        }
    }
    let dev = dev.ok_or_else(|| Failure::Usage("missing DEVICE".into()))?;
    Ok(Opts {
        dev,
        size,
        block_size,
        log_len,
        ckpt_len,
        force,
    })
}

fn exists_msg(dev: &Path) -> String {
    format!(
        "{} already holds a sealfs filesystem (use --force to overwrite)",
        dev.display()
    )
}

/// Does `dev` hold a sealfs? (Takes the device's lock for the look.)
fn holds_sealfs(dev: &Path) -> Result<bool, String> {
    let d = device::open(dev, LOCK_WAIT).map_err(|e| at(dev, describe(&e)))?;
    Ok(read_superblocks(&*d).is_ok())
}

/// Creates or resizes the image file as `--size` asks; true when it was created.
fn prepare(o: &Opts) -> Result<bool, String> {
    match std::fs::metadata(&o.dev) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let Some(size) = o.size else {
                return Err(at(
                    &o.dev,
                    "does not exist (give --size to create an image file)",
                ));
            };
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                // Private: the image holds every file's bytes, whatever their modes.
                .mode(0o600)
                .open(&o.dev)
                .map_err(|e| at(&o.dev, describe_io(&e)))?;
            if let Err(e) = f.set_len(size) {
                let _ = std::fs::remove_file(&o.dev);
                return Err(at(&o.dev, describe_io(&e)));
            }
            Ok(true)
        }
        Err(e) => Err(at(&o.dev, describe_io(&e))),
        Ok(md) => {
            if let Some(size) = o.size {
                if !md.is_file() {
                    return Err(at(&o.dev, "--size applies to image files only"));
                }
                if md.len() != size {
                    if !o.force && holds_sealfs(&o.dev)? {
                        return Err(exists_msg(&o.dev));
                    }
                    OpenOptions::new()
                        .write(true)
                        .open(&o.dev)
                        .and_then(|f| f.set_len(size))
                        .map_err(|e| at(&o.dev, describe_io(&e)))?;
                }
            }
            Ok(false)
        }
    }
}

/// Runs `sealfs mkfs`.
pub fn run(rest: Vec<OsString>) -> Outcome {
    let o = parse(rest)?;
    let created = prepare(&o)?;
    let made = device::open(&o.dev, LOCK_WAIT).and_then(|d| {
        let opts = MkfsOptions {
            layout: LayoutOptions {
                block_size: o.block_size,
                log_len: o.log_len,
                ckpt_len: o.ckpt_len,
            },
            force: o.force,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        let sb = mkfs(&*d, opts)?;
        Ok((sb, d.kind()))
    });
    let (sb, kind) = match made {
        Ok(x) => x,
        Err(e) => {
            if created {
                let _ = std::fs::remove_file(&o.dev);
            }
            return Err(match e {
                Error::Exists => exists_msg(&o.dev),
                Error::Format(FormatError::Invalid { what, value })
                    if what.starts_with("device size") =>
                {
                    at(&o.dev, size_problem(what, value, o.block_size))
                }
                e => at(&o.dev, describe(&e)),
            }
            .into());
        }
    };
    let narrowed = if kind == DeviceKind::Image {
        make_private(&o.dev)
    } else {
        None
    };
    let l = sb.layout;
    let kind = match kind {
        DeviceKind::Image => "image file",
        DeviceKind::DevDax => "device DAX",
        DeviceKind::Sim => "simulated",
    };
    println!("made a sealfs filesystem on {}", o.dev.display());
    println!(
        "  size         {} ({} bytes, {kind})",
        human(l.device_size),
        l.device_size
    );
    println!("  block size   {}", human(l.block_size));
    println!(
        "  data blocks  {} ({})",
        l.data_blocks,
        human(l.data_blocks * l.block_size)
    );
    println!("  log          {}", human(l.log_len));
    println!("  checkpoints  2 x {}", human(l.ckpt_len));
    if let Some((from, to)) = narrowed {
        println!("  access       owner only (mode {from:04o} -> {to:04o})");
    }
    Ok(())
}

/// What is wrong with a device size the layout refused, in words (it is not a corrupt
/// filesystem: nothing was written).
fn size_problem(what: &str, size: u64, block_size: u64) -> String {
    let bs = if block_size == 0 { 4096 } else { block_size };
    if size < MIN_DEVICE {
        format!(
            "size {} ({size} bytes) is below the minimum of {}",
            human(size),
            human(MIN_DEVICE)
        )
    } else if what.contains("no data blocks") {
        format!(
            "size {} is too small: no room for a single {} data block after the metadata",
            human(size),
            human(bs)
        )
    } else {
        format!(
            "size {} is too small for the metadata (log and two checkpoint areas); give a \
             bigger --size or a smaller --log-size/--checkpoint-size",
            human(size)
        )
    }
}

/// Takes group and other access away from an image file (which holds every file's bytes,
/// whatever their modes): `Some((old, new))` mode when it changed. A failure is a warning,
/// not an error: the filesystem is made; a mount with `allow_other` will refuse the image.
fn make_private(dev: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(dev).ok()?;
    let from = md.permissions().mode() & 0o7777;
    let to = from & !0o077;
    if !md.is_file() || from == to {
        return None;
    }
    match std::fs::set_permissions(dev, std::fs::Permissions::from_mode(to)) {
        Ok(()) => Some((from, to)),
        Err(e) => {
            eprintln!(
                "sealfs: warning: {}: could not take group and other access away: {}",
                dev.display(),
                describe_io(&e)
            );
            None
        }
    }
}
