//! The cargo-fuzz targets of `fuzz/` as seeded mutation loops on stable Rust.
//!
//! Each target of `sealfs::fuzzing` runs on its seeds (the built-in ones and the files of
//! `fuzz/corpus/<target>/`), then on mutants of them: bit flips, byte and integer sets,
//! truncation, extension, insertion, deletion and splicing. Inputs that reach the deepest
//! layer of a target join the pool (the only feedback: there is no coverage on stable). A
//! panic fails the test with the input in hex and the command that reproduces it; an input
//! that runs longer than the per-input limit fails it as a hang.
//!
//! Environment:
//! - `SEALFS_FUZZ_ITERS`: mutants per target (default: a few seconds' worth in release);
//! - `SEALFS_FUZZ_SECONDS`: time cap per target (default 20; the loop stops early there);
//! - `SEALFS_FUZZ_SEED`: RNG seed (default fixed, so runs are reproducible);
//! - `SEALFS_FUZZ_HANG_MS`: per-input limit (default 2000);
//! - `SEALFS_FUZZ_REPRO=target:hex`: the `repro` test runs that one input, unguarded;
//! - `SEALFS_WRITE_CORPUS=DIR`: the `write_corpus` test writes the seeds to `DIR/<target>/`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealfs::fuzzing::{self, hex, unhex};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const MAX_LEN: usize = 64 << 10;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The files of `fuzz/corpus/<target>/`, sorted by name.
fn corpus_files(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(corpus_dir(target)) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, Vec<u8>)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect();
    v.sort();
    v
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = fuzzing::seeds(target).into_iter().map(|s| s.1).collect();
    v.extend(corpus_files(target).into_iter().map(|f| f.1));
    v.push(Vec::new());
    v
}

/// One to four stacked mutations of `input`, sometimes splicing in another pool member.
fn mutate(rng: &mut Rng, pool: &[Vec<u8>], input: &[u8]) -> Vec<u8> {
    const INTERESTING: [u64; 14] = [
        0,
        1,
        2,
        7,
        8,
        24,
        64,
        255,
        4096,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        i64::MAX as u64,
        u64::MAX,
    ];
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                b[i] = [0u8, 1, 0x7f, 0x80, 0xff][rng.below(5)];
            }
            3 if len > 0 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let v = if rng.below(2) == 0 {
                    v
                } else {
                    v.wrapping_add(rng.below(3) as u64).wrapping_sub(1)
                };
                let w = [2usize, 4, 8][rng.below(3)];
                let i = rng.below(len);
                for (k, byte) in v.to_le_bytes()[..w].iter().enumerate() {
                    if i + k < len {
                        b[i + k] = *byte;
                    }
                }
            }
            4 if len > 0 => b.truncate(rng.below(len)),
            5 => {
                let n = 1 + rng.below(64);
                b.extend((0..n).map(|_| rng.next() as u8));
            }
            6 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(i..i, ins);
            }
            7 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                b.drain(i..i + n);
            }
            8 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            9 if len > 1 => {
                let (src, dst) = (rng.below(len), rng.below(len));
                let n = 1 + rng.below((len - src.max(dst)).min(64));
                let chunk = b[src..src + n].to_vec();
                b[dst..dst + n].copy_from_slice(&chunk);
            }
            _ => {
                // The leading selector/flag byte steers every target: mutate it often.
                if b.is_empty() {
                    b.push(0);
                }
                b[0] ^= 1 << rng.below(8);
            }
        }
    }
    b.truncate(MAX_LEN);
    b
}

/// What the worker is running, for the hang watchdog.
struct Current {
    input: Mutex<Vec<u8>>,
    started_ns: AtomicU64,
    busy: AtomicBool,
    done: AtomicBool,
}

struct Outcome {
    execs: u64,
    accepted: u64,
    pool: usize,
    capped: bool,
    panic: Option<(Vec<u8>, String)>,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

fn fuzz_loop(target: &'static str, default_iters: u64) {
    let iters = env_u64("SEALFS_FUZZ_ITERS").unwrap_or(default_iters);
    let cap = Duration::from_secs(env_u64("SEALFS_FUZZ_SECONDS").unwrap_or(20));
    let hang = Duration::from_millis(env_u64("SEALFS_FUZZ_HANG_MS").unwrap_or(2000));
    let seed = env_u64("SEALFS_FUZZ_SEED").unwrap_or(0x005e_a1f5)
        ^ target
            .bytes()
            .fold(0u64, |h, c| h.wrapping_mul(31) ^ c as u64);
    // The image target builds its base image once; keep that out of the per-input clock.
    if target == "image" {
        let _ = fuzzing::base_image();
    }
    let epoch = Instant::now();
    let cur = Arc::new(Current {
        input: Mutex::new(Vec::new()),
        started_ns: AtomicU64::new(0),
        busy: AtomicBool::new(false),
        done: AtomicBool::new(false),
    });
    let c2 = cur.clone();
    let worker = std::thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut pool = seeds(target);
        let nseeds = pool.len();
        let mut out = Outcome {
            execs: 0,
            accepted: 0,
            pool: 0,
            capped: false,
            panic: None,
        };
        let total = nseeds as u64 + iters;
        for i in 0..total {
            if epoch.elapsed() > cap {
                out.capped = true;
                break;
            }
            let input = if (i as usize) < nseeds {
                pool[i as usize].clone()
            } else {
                let base = &pool[rng.below(pool.len())];
                mutate(&mut rng, &pool, base)
            };
            *c2.input.lock().unwrap() = input.clone();
            c2.started_ns
                .store(epoch.elapsed().as_nanos() as u64, Ordering::SeqCst);
            c2.busy.store(true, Ordering::SeqCst);
            let r = catch_unwind(AssertUnwindSafe(|| fuzzing::run(target, &input)));
            c2.busy.store(false, Ordering::SeqCst);
            out.execs += 1;
            match r {
                Ok(true) => {
                    out.accepted += 1;
                    if (i as usize) >= nseeds {
                        if pool.len() < 512 {
                            pool.push(input);
                        } else {
                            let k = nseeds + rng.below(512 - nseeds);
                            pool[k] = input;
                        }
                    }
                }
                Ok(false) => {}
                Err(p) => {
                    out.panic = Some((input, panic_message(&*p)));
                    break;
                }
            }
        }
        out.pool = pool.len();
        c2.done.store(true, Ordering::SeqCst);
        out
    });
    while !cur.done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        if cur.busy.load(Ordering::SeqCst) {
            let started = Duration::from_nanos(cur.started_ns.load(Ordering::SeqCst));
            let ran = epoch.elapsed().saturating_sub(started);
            if ran > hang && cur.busy.load(Ordering::SeqCst) {
                let input = cur.input.lock().unwrap().clone();
                panic!(
                    "fuzz target {target}: input ran for more than {hang:?} (hang)\ninput: {}\n\
                     reproduce: SEALFS_FUZZ_REPRO={target}:{} cargo test --release -p sealfs \
                     --test fuzz_loops repro -- --nocapture",
                    hex(&input),
                    hex(&input)
                );
            }
        }
    }
    let out = worker.join().expect("worker thread");
    let secs = epoch.elapsed().as_secs_f64();
    eprintln!(
        "fuzz_loops: {target}: {} execs in {secs:.1} s ({:.0}/s), {} reached the deepest layer, \
         pool {}{}",
        out.execs,
        out.execs as f64 / secs.max(1e-9),
        out.accepted,
        out.pool,
        if out.capped {
            ", stopped at the time cap"
        } else {
            ""
        }
    );
    if let Some((input, msg)) = out.panic {
        panic!(
            "fuzz target {target} panicked: {msg}\ninput: {}\n\
             reproduce: SEALFS_FUZZ_REPRO={target}:{} cargo test --release -p sealfs \
             --test fuzz_loops repro -- --nocapture",
            hex(&input),
            hex(&input)
        );
    }
}

#[test]
fn superblock() {
    fuzz_loop("superblock", 1_500_000);
}

#[test]
fn log_record() {
    fuzz_loop("log_record", 3_000_000);
}

#[test]
fn checkpoint() {
    fuzz_loop("checkpoint", 1_500_000);
}

#[test]
fn image() {
    fuzz_loop("image", 15_000);
}

#[test]
fn ioctl_args() {
    fuzz_loop("ioctl_args", 3_000_000);
}

/// The committed corpus is small and every file of it runs clean.
#[test]
fn corpus_files_are_small_and_clean() {
    for t in fuzzing::TARGETS {
        let files = corpus_files(t);
        assert!(
            !files.is_empty(),
            "no corpus for {t} in {:?}",
            corpus_dir(t)
        );
        for (p, b) in files {
            assert!(b.len() < 64 << 10, "{} is {} bytes", p.display(), b.len());
            fuzzing::run(t, &b);
        }
    }
}

/// `SEALFS_WRITE_CORPUS=DIR` writes the seeds to `DIR/<target>/<name>`; a no-op otherwise.
#[test]
fn write_corpus() {
    let Ok(dir) = std::env::var("SEALFS_WRITE_CORPUS") else {
        return;
    };
    for t in fuzzing::TARGETS {
        let d = PathBuf::from(&dir).join(t);
        std::fs::create_dir_all(&d).unwrap();
        for (name, bytes) in fuzzing::seeds(t) {
            assert!(bytes.len() < 64 << 10, "seed {t}/{name} too large");
            std::fs::write(d.join(&name), &bytes).unwrap();
        }
    }
}

/// `SEALFS_FUZZ_REPRO=target:hex` (or `target:@file`) runs that input outside any guard,
/// so that a panic shows its full backtrace (with `RUST_BACKTRACE=1`).
#[test]
fn repro() {
    let Ok(spec) = std::env::var("SEALFS_FUZZ_REPRO") else {
        return;
    };
    let (target, what) = spec.split_once(':').expect("SEALFS_FUZZ_REPRO=target:hex");
    let input = match what.strip_prefix('@') {
        Some(path) => std::fs::read(path).expect("read the input file"),
        None => unhex(what).expect("hex input"),
    };
    let ok = fuzzing::run(target, &input);
    eprintln!("repro: {target}: ran clean (deepest layer reached: {ok})");
}

/// Inputs that once failed: each stays here so the fix cannot regress.
#[test]
fn regressions() {
    let cases: &[(&str, &str)] = &[
        // Finding 1: a record with a non-zero reserved header field (bytes 22..24) decoded,
        // so it did not re-encode to the same bytes.
        (
            "log_record",
            "05534c4f472000000015000000000000000718121c0b0000800200000000000000753ce395f0d95b14\
             6679ca71949a6dba0300000000000000621c3433b8a8234cf58c3f8eb8c37c9e",
        ),
        // Findings 2-4 as found against the base image of this build (see
        // invalid_names_in_images_are_caught for the same cases built by search).
        ("image", "0603d400012e"),
        ("image", "060359020100"),
        ("image", "0102bf010100"),
    ];
    for (target, h) in cases {
        fuzzing::run(target, &unhex(h).unwrap());
    }
}

/// Patches one byte of the base image (`region` as in `fuzzing::patch_image`, with the
/// checksum repairs of `flags`) and returns the fuzz input.
fn one_byte_patch(flags: u8, region: u8, off: usize, byte: u8) -> Vec<u8> {
    let mut v = vec![flags, region];
    v.extend_from_slice(&(off as u16).to_le_bytes());
    v.extend_from_slice(&[1, byte]);
    v
}

/// Findings 2-4 (image target): names no build can write were accepted where they are
/// stored, and fsck called the image clean:
/// 2. a checkpoint directory entry named "." (or "..", or with a NUL): readdir listed "."
///    twice and the file behind it had no reachable name;
/// 3. a checkpoint xattr name with a NUL: listxattr split it in two names, getxattr of
///    either failed;
/// 4. the same through a `SetXattr` log record.
///
/// Checkpoint decoding now holds entry names to the rules replay has (non-empty, at most
/// 255 bytes, no '/' or NUL, not "." or "..") and checkpoint decoding and `SetXattr`
/// records hold xattr names to `record::valid_xattr_name`. The inputs are built by
/// searching the base image, so that they keep hitting the same bytes if it changes.
#[test]
fn invalid_names_in_images_are_caught() {
    let b = fuzzing::base_image();
    let (co, used) = b.current_ckpt;
    let ckpt = &b.bytes[co as usize..(co + used) as usize];
    let find = |hay: &[u8], needle: &[u8]| {
        hay.windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{:?} not in the base image", needle))
    };
    // Checkpoint (region 3), repairing the checkpoint and superblock checksums (2 | 4).
    let entry_a = find(ckpt, &[1, 0, b'a']) + 2;
    let xattr = find(ckpt, b"trusted.two") + 8;
    let log_start = b.layout.log_off as usize;
    let log = &b.bytes[log_start..log_start + b.log_used as usize];
    let cases = [
        ("entry named '.'", one_byte_patch(6, 3, entry_a, b'.')),
        ("entry named with a NUL", one_byte_patch(6, 3, entry_a, 0)),
        (
            "checkpoint xattr name with a NUL",
            one_byte_patch(6, 3, xattr, 0),
        ),
        // Log (region 2), repairing the record checksums (1).
        (
            "SetXattr record name with a NUL",
            one_byte_patch(1, 2, find(log, b"user.x") + 5, 0),
        ),
    ];
    for (what, input) in cases {
        let img = fuzzing::patch_image(&input);
        let r = sealfs::fsck::check(&sealfs::device::sim::SimDevice::from_image(img, true));
        assert!(
            !r.clean(),
            "{what}: fsck calls it clean (input {})",
            hex(&input)
        );
        fuzzing::image(&input);
    }
}

/// Finding 4 at the record level: a `SetXattr` with an empty or NUL-containing name does
/// not decode.
#[test]
fn setxattr_records_need_a_valid_name() {
    use sealfs::format::record::{decode_record, Op, Ts};
    let rec = |name: &[u8]| {
        Op::SetXattr {
            ino: 2,
            name: name.to_vec(),
            value: b"v".to_vec(),
            time: Ts::default(),
        }
        .encode_record(1)
    };
    assert!(decode_record(&rec(b"user.ok")).is_ok());
    assert!(decode_record(&rec(b"")).is_err());
    assert!(decode_record(&rec(b"user.a\0b")).is_err());
    assert!(decode_record(&rec(&[b'x'; 256])).is_err());
}

/// Rewrites a record's checksum after an edit.
fn reseal(rec: &mut [u8]) {
    let c = sealfs::format::crc(&[&rec[..16], &rec[20..]]);
    rec[16..20].copy_from_slice(&c.to_le_bytes());
}

/// Finding 1: `decode_record` accepted non-canonical records (checksum valid, but reserved
/// bytes, padding or the Map `touch` byte not as the encoder writes them), which replay
/// would apply although no build ever wrote them. They are rejected now.
#[test]
fn records_are_canonical() {
    use sealfs::format::record::{decode_record, MapExtent, Op, Ts};
    let op = Op::Evict { ino: 5 };
    let good = op.encode_record(3);
    assert_eq!(decode_record(&good).unwrap().1, op);
    // Reserved header field.
    let mut r = good.clone();
    r[22] = 1;
    reseal(&mut r);
    assert!(decode_record(&r).is_err(), "reserved field accepted");
    // Padding: an Evict body is 8 bytes, so 24 + 8 = 32 needs none; a Link has some.
    let link = Op::Link {
        ino: 2,
        parent: 1,
        name: b"abc".to_vec(),
        time: Ts { sec: 1, nsec: 2 },
    }
    .encode_record(4);
    assert_ne!(
        (24 + 8 + 8 + 2 + 3 + 12) % 8,
        0,
        "the Link record must have padding"
    );
    let mut r = link.clone();
    let last = r.len() - 1;
    r[last] = 0x55;
    reseal(&mut r);
    assert!(decode_record(&r).is_err(), "non-zero padding accepted");
    // Map touch byte other than 0 or 1 (ino, size, ts = 28 bytes into the body).
    let map = Op::Map {
        ino: 2,
        size: 0,
        time: Ts { sec: 1, nsec: 2 },
        touch: true,
        extents: vec![MapExtent {
            fblock: 0,
            dblock: 1,
            len: 1,
        }],
    };
    let mut r = map.encode_record(5);
    assert_eq!(r[24 + 28], 1);
    r[24 + 28] = 2;
    reseal(&mut r);
    assert!(decode_record(&r).is_err(), "touch byte 2 accepted");
}
