//! File data through a real mount: statfs accounting, fallocate modes, SEEK_DATA and
//! SEEK_HOLE, copy_file_range, fsync, sparse and large files, truncate and write edges.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;

use sealfs_tests::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// `FUSE_SUPER_MAGIC`.
const FUSE_MAGIC: i64 = 0x6573_5546;

fn rw(p: &std::path::Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .unwrap()
}

fn blocks(f: &File) -> u64 {
    f.metadata().unwrap().blocks()
}

fn size(f: &File) -> u64 {
    f.metadata().unwrap().len()
}

fn free_blocks(m: &Mount) -> u64 {
    statfs(m.mnt()).f_bfree
}

#[test]
fn statfs_accounting() {
    let Some(m) = Mount::new("") else { return };
    let s = statfs(m.mnt());
    assert_eq!(s.f_type, FUSE_MAGIC, "f_type");
    assert_eq!(s.f_bsize, 4096, "f_bsize");
    assert_eq!(s.f_frsize, 4096, "f_frsize");
    assert_eq!(s.f_namelen, 255, "f_namelen");
    let image_blocks = 256 * MIB / 4096;
    assert!(
        s.f_blocks <= image_blocks && s.f_blocks >= image_blocks * 8 / 10,
        "f_blocks {} for a {image_blocks}-block image",
        s.f_blocks
    );
    assert!(
        s.f_bfree <= s.f_blocks && s.f_bfree + 16 >= s.f_blocks,
        "fresh image is free: {} of {}",
        s.f_bfree,
        s.f_blocks
    );
    assert!(s.f_bavail <= s.f_bfree);
    let free0 = s.f_bfree;

    // 10 MiB of data takes 2560 blocks (a little metadata slack allowed), and gives them back.
    let p = m.path("ten");
    let mut f = File::create(&p).unwrap();
    let chunk = pattern(7, 0, MIB as usize);
    for _ in 0..10 {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    let used = free0 - free_blocks(&m);
    assert!(
        (2560..=2560 + 16).contains(&used),
        "10 MiB written: free blocks dropped by {used}, expected 2560"
    );
    assert_eq!(blocks(&f), 10 * MIB / 512, "st_blocks of a 10 MiB file");
    drop(f);
    fs::remove_file(&p).unwrap();
    assert_eq!(
        after_release(free0, || free_blocks(&m)),
        free0,
        "free blocks back after unlink"
    );

    // Inode counts, when reported, follow creations.
    let s = statfs(m.mnt());
    if s.f_files != 0 {
        for i in 0..10 {
            fs::write(m.path(&format!("i{i}")), b"").unwrap();
        }
        assert_eq!(
            statfs(m.mnt()).f_ffree,
            s.f_ffree - 10,
            "f_ffree after 10 creates"
        );
    }
}

#[test]
fn fallocate_modes() {
    let Some(m) = Mount::new("") else { return };
    let p = m.path("fa");
    let f = rw(&p);
    let free0 = free_blocks(&m);

    // Default mode allocates and extends.
    fallocate(&f, 0, 0, MIB as i64).unwrap();
    assert_eq!(size(&f), MIB);
    assert_eq!(blocks(&f), 2048);
    assert_eq!(
        pread_vec(&f, 0, MIB as usize).unwrap(),
        vec![0; MIB as usize]
    );
    assert_eq!(free0 - free_blocks(&m), 256);

    // KEEP_SIZE allocates past EOF without changing the size.
    fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, MIB as i64, MIB as i64).unwrap();
    assert_eq!(size(&f), MIB);
    assert_eq!(blocks(&f), 4096);
    assert!(
        pread_vec(&f, MIB, 10).unwrap().is_empty(),
        "EOF is still at 1 MiB"
    );

    // Fill with data; default-mode fallocate over data changes nothing.
    let data = pattern(3, 0, MIB as usize);
    pwrite_all(&f, &data, 0).unwrap();
    fallocate(&f, 0, 0, 512 * 1024).unwrap();
    assert_bytes(
        &pread_vec(&f, 0, MIB as usize).unwrap(),
        &data,
        "fallocate over data",
    );
    assert_eq!(blocks(&f), 4096);

    // PUNCH_HOLE of whole blocks frees them and reads zeros.
    let mut want = data.clone();
    fallocate(
        &f,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        8192,
        16384,
    )
    .unwrap();
    want[8192..24576].fill(0);
    assert_eq!(size(&f), MIB);
    assert_eq!(blocks(&f), 4096 - 32);
    assert_bytes(
        &pread_vec(&f, 0, MIB as usize).unwrap(),
        &want,
        "after punch",
    );

    // An unaligned punch zeroes the partial blocks and frees none.
    fallocate(
        &f,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        100,
        5000,
    )
    .unwrap();
    want[100..5100].fill(0);
    assert_eq!(blocks(&f), 4096 - 32);
    assert_bytes(
        &pread_vec(&f, 0, MIB as usize).unwrap(),
        &want,
        "after unaligned punch",
    );

    assert_errno!(
        fallocate(&f, libc::FALLOC_FL_PUNCH_HOLE, 0, 4096),
        libc::EOPNOTSUPP
    );

    // ZERO_RANGE inside the file keeps the size; past EOF it extends unless KEEP_SIZE.
    fallocate(&f, libc::FALLOC_FL_ZERO_RANGE, 65536 + 10, 8192).unwrap();
    want[65546..65546 + 8192].fill(0);
    assert_eq!(size(&f), MIB);
    assert_bytes(
        &pread_vec(&f, 0, MIB as usize).unwrap(),
        &want,
        "after zero range",
    );
    fallocate(&f, libc::FALLOC_FL_ZERO_RANGE, (MIB - 4096) as i64, 12288).unwrap();
    want[(MIB - 4096) as usize..].fill(0);
    want.resize((MIB + 8192) as usize, 0);
    assert_eq!(size(&f), MIB + 8192);
    assert_bytes(
        &pread_vec(&f, 0, 2 * MIB as usize).unwrap(),
        &want,
        "zero range past EOF",
    );
    fallocate(
        &f,
        libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
        (MIB + 8192) as i64,
        65536,
    )
    .unwrap();
    assert_eq!(size(&f), MIB + 8192, "ZERO_RANGE|KEEP_SIZE past EOF");

    // Larger than the free space: ENOSPC, and nothing leaks.
    let g = rw(&m.path("huge"));
    assert_errno!(fallocate(&g, 0, 0, GIB as i64), libc::ENOSPC);
    drop(g);
    fs::remove_file(m.path("huge")).unwrap();
    drop(f);
    fs::remove_file(&p).unwrap();
    assert_eq!(
        after_release(free0, || free_blocks(&m)),
        free0,
        "all blocks back"
    );
}

#[test]
fn seek_data_and_hole() {
    let Some(m) = Mount::new("") else { return };
    let f = rw(&m.path("sparse"));
    pwrite_all(&f, &[1; 4096], 0).unwrap();
    pwrite_all(&f, &[2; 4096], MIB).unwrap();
    f.set_len(2 * MIB).unwrap();
    let (data, hole) = (libc::SEEK_DATA, libc::SEEK_HOLE);
    let m1 = MIB as i64;
    let cases: &[(i64, i32, i64)] = &[
        (0, data, 0),
        (0, hole, 4096),
        (100, data, 100),
        (100, hole, 4096),
        (4096, data, m1),
        (5000, data, m1),
        (4096, hole, 4096),
        (m1, hole, m1 + 4096),
        (m1 + 100, data, m1 + 100),
        (m1 + 100, hole, m1 + 4096),
        (m1 + 4096, hole, m1 + 4096),
        (2 * m1 - 1, hole, 2 * m1 - 1),
    ];
    for &(off, whence, want) in cases {
        let w = if whence == data {
            "SEEK_DATA"
        } else {
            "SEEK_HOLE"
        };
        assert_eq!(lseek(&f, off, whence).unwrap(), want, "{w} from {off}");
    }
    for (off, whence) in [
        (m1 + 4096, data),
        (2 * m1 - 1, data),
        (2 * m1, data),
        (2 * m1, hole),
        (3 * m1, data),
        (3 * m1, hole),
    ] {
        assert_errno!(lseek(&f, off, whence), libc::ENXIO);
    }

    // A file of data only: the hole is at EOF (not block-rounded); empty files have none.
    let g = rw(&m.path("dense"));
    pwrite_all(&g, &[3; 5000], 0).unwrap();
    assert_eq!(lseek(&g, 0, data).unwrap(), 0);
    assert_eq!(lseek(&g, 0, hole).unwrap(), 5000);
    assert_eq!(lseek(&g, 4999, hole).unwrap(), 5000);
    assert_errno!(lseek(&g, 5000, data), libc::ENXIO);
    let e = rw(&m.path("empty"));
    assert_errno!(lseek(&e, 0, data), libc::ENXIO);
    assert_errno!(lseek(&e, 0, hole), libc::ENXIO);

    // A punched hole shows up.
    fallocate(
        &g,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        0,
        4096,
    )
    .unwrap();
    assert_eq!(lseek(&g, 0, data).unwrap(), 4096);
    assert_eq!(lseek(&g, 0, hole).unwrap(), 0);
}

#[test]
fn copy_file_range_and_fsync() {
    let Some(m) = Mount::new("") else { return };
    let src_len = MIB as usize + 123;
    let src_data = pattern(11, 0, src_len);
    fs::write(m.path("src"), &src_data).unwrap();
    let src = File::open(m.path("src")).unwrap();
    let dst = rw(&m.path("dst"));

    let copy_all = |so: i64, d: i64, len: usize| -> usize {
        let mut done = 0;
        while done < len {
            let n =
                copy_file_range(&src, so + done as i64, &dst, d + done as i64, len - done).unwrap();
            if n == 0 {
                break;
            }
            done += n;
        }
        done
    };
    assert_eq!(copy_all(1000, 5000, 300_000), 300_000);
    assert_eq!(size(&dst), 305_000);
    let got = pread_vec(&dst, 0, 400_000).unwrap();
    assert_eq!(got.len(), 305_000);
    assert!(
        got[..5000].iter().all(|&b| b == 0),
        "gap before the copy is zero"
    );
    assert_bytes(&got[5000..], &src_data[1000..301_000], "copied range");
    // Across the source's EOF the copy is short; past it, empty.
    assert_eq!(copy_all(src_len as i64 - 100, 0, 1000), 100);
    assert_bytes(
        &pread_vec(&dst, 0, 100).unwrap(),
        &src_data[src_len - 100..],
        "tail copy",
    );
    assert_eq!(
        copy_file_range(&src, src_len as i64 + 10, &dst, 0, 10).unwrap(),
        0
    );
    assert_eq!(size(&dst), 305_000);
    // Overlapping ranges of one file are refused.
    let same = rw(&m.path("src"));
    assert_errno!(copy_file_range(&same, 0, &same, 100, 1000), libc::EINVAL);

    dst.sync_all().unwrap();
    dst.sync_data().unwrap();
    File::open(m.mnt()).unwrap().sync_all().unwrap();
    assert_bytes(
        &fs::read(m.path("src")).unwrap(),
        &src_data,
        "source untouched",
    );
}

#[test]
fn sparse_and_large_files() {
    let Some(m) = Mount::new("") else { return };
    let free0 = free_blocks(&m);
    let f = rw(&m.path("big"));
    pwrite_all(&f, b"hello", 5 * GIB).unwrap();
    assert_eq!(size(&f), 5 * GIB + 5);
    assert!(
        blocks(&f) * 512 <= 4 * MIB,
        "a 5-byte write at 5 GiB allocated {} bytes",
        blocks(&f) * 512
    );
    assert!(free0 - free_blocks(&m) <= 1024);
    assert_eq!(pread_vec(&f, 5 * GIB - 3, 100).unwrap(), b"\0\0\0hello");
    assert_eq!(pread_vec(&f, 4 * GIB, 65536).unwrap(), vec![0; 65536]);
    assert_eq!(pread_vec(&f, 0, 4096).unwrap(), vec![0; 4096]);
    assert!(pread_vec(&f, 5 * GIB + 5, 10).unwrap().is_empty());
    // Writes across the 4 GiB boundary.
    pwrite_all(&f, b"abcd", 4 * GIB - 2).unwrap();
    assert_eq!(pread_vec(&f, 4 * GIB - 4, 8).unwrap(), b"\0\0abcd\0\0");
    let first_data = lseek(&f, 0, libc::SEEK_DATA).unwrap() as u64;
    assert!(
        (4 * GIB - 2 * MIB..=4 * GIB - 2).contains(&first_data),
        "SEEK_DATA from 0 gave {first_data}"
    );
    f.sync_all().unwrap();
    f.set_len(4096).unwrap();
    assert_eq!(size(&f), 4096);
    assert_eq!(blocks(&f), 0);
    assert_eq!(free_blocks(&m), free0);

    // A single 3 MiB write at an odd offset, read back in odd chunks.
    let g = rw(&m.path("three"));
    let data = pattern(5, 12345, 3 * MIB as usize);
    pwrite_all(&g, &data, 12345).unwrap();
    let mut back = Vec::new();
    let mut off = 12345;
    while off < 12345 + data.len() as u64 {
        let chunk = pread_vec(&g, off, 77_777).unwrap();
        off += chunk.len() as u64;
        back.extend(chunk);
    }
    assert_bytes(&back, &data, "3 MiB write");
    assert_eq!(pread_vec(&g, 0, 12345).unwrap(), vec![0; 12345]);
}

#[test]
fn truncate_and_write_edges() {
    let Some(m) = Mount::new("") else { return };
    let f = rw(&m.path("t"));
    pwrite_all(&f, &[0xAA; 8192], 0).unwrap();
    f.set_len(100).unwrap();
    f.set_len(8192).unwrap();
    let got = pread_vec(&f, 0, 9000).unwrap();
    assert_eq!(got.len(), 8192);
    assert!(got[..100].iter().all(|&b| b == 0xAA));
    assert!(
        got[100..].iter().all(|&b| b == 0),
        "re-extended tail reads zeros"
    );

    // A write past EOF in the same block as the old EOF leaves zeros in between.
    let g = rw(&m.path("gap"));
    pwrite_all(&g, &[0xBB; 4096], 0).unwrap();
    g.set_len(10).unwrap();
    pwrite_all(&g, b"Z", 20).unwrap();
    let got = pread_vec(&g, 0, 100).unwrap();
    let mut want = vec![0xBB; 10];
    want.resize(20, 0);
    want.push(b'Z');
    assert_eq!(got, want);
    pwrite_all(&g, b"far", 3 * 4096 + 7).unwrap();
    let got = pread_vec(&g, 0, 5 * 4096).unwrap();
    assert_eq!(got.len(), 3 * 4096 + 10);
    assert!(got[21..3 * 4096 + 7].iter().all(|&b| b == 0));
    assert_eq!(&got[3 * 4096 + 7..], b"far");

    // Shrinking freed the second block, re-extending did not allocate; O_TRUNC frees the
    // rest.
    assert_eq!(
        blocks(&f),
        8,
        "one 4 KiB block left after truncate down and up"
    );
    let before = free_blocks(&m);
    drop(
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(m.path("t"))
            .unwrap(),
    );
    assert_eq!(size(&f), 0);
    assert_eq!(blocks(&f), 0);
    assert_eq!(free_blocks(&m), before + 1);

    // O_APPEND from two descriptors interleaves whole writes.
    let mut a = OpenOptions::new()
        .append(true)
        .create(true)
        .open(m.path("app"))
        .unwrap();
    let mut b = OpenOptions::new().append(true).open(m.path("app")).unwrap();
    for i in 0..10 {
        a.write_all(format!("a{i};").as_bytes()).unwrap();
        b.write_all(format!("b{i};").as_bytes()).unwrap();
    }
    let want: String = (0..10).map(|i| format!("a{i};b{i};")).collect();
    assert_eq!(fs::read_to_string(m.path("app")).unwrap(), want);

    // Overwrites in place, unaligned, across block boundaries.
    let h = rw(&m.path("over"));
    let mut model = pattern(1, 0, 64 * 1024);
    pwrite_all(&h, &model, 0).unwrap();
    let mut rng = Rng::new(42);
    for i in 0..200 {
        let off = rng.below(70_000) as usize;
        let len = 1 + rng.below(9000) as usize;
        let buf = pattern(100 + i, off as u64, len);
        pwrite_all(&h, &buf, off as u64).unwrap();
        if model.len() < off + len {
            model.resize(off + len, 0);
        }
        model[off..off + len].copy_from_slice(&buf);
    }
    assert_bytes(
        &pread_vec(&h, 0, 200_000).unwrap(),
        &model,
        "random overwrites",
    );
}

/// Shared mappings: the file's bytes appear in the mapping, stores through it reach
/// read(2) after msync, write(2) shows up in the mapping, and all of it survives a remount.
fn mmap_roundtrip(opts: &str) {
    let Some(mut m) = Mount::new(opts) else {
        return;
    };
    let p = m.path("mapped");
    let len = 3 * 4096 + 100;
    {
        let f = rw(&p);
        f.set_len(len as u64).unwrap();
        pwrite_all(&f, b"before", 0).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of an open file of `len` bytes; the slice below
        // is only used while the mapping exists and nothing else in this process maps it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(
            ptr,
            libc::MAP_FAILED,
            "mmap MAP_SHARED ({opts}): {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: see above.
        let map = unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) };
        assert_eq!(&map[..6], b"before", "{opts}: file bytes in the mapping");
        map[4096..4101].copy_from_slice(b"hello");
        map[len - 1] = b'Z';
        // SAFETY: the mapping above.
        assert_eq!(unsafe { libc::msync(ptr, len, libc::MS_SYNC) }, 0);
        let g = File::open(&p).unwrap();
        assert_eq!(
            pread_vec(&g, 4096, 5).unwrap(),
            b"hello",
            "{opts}: msync'd store"
        );
        assert_eq!(pread_vec(&g, len as u64 - 1, 10).unwrap(), b"Z");
        pwrite_all(&f, b"written", 200).unwrap();
        assert_eq!(
            &map[200..207],
            b"written",
            "{opts}: write(2) seen in the mapping"
        );
        // SAFETY: unmapping our own mapping; `map` is not used afterwards.
        assert_eq!(unsafe { libc::munmap(ptr, len) }, 0);
        f.sync_all().unwrap();
    }
    m.remount();
    let got = fs::read(m.path("mapped")).unwrap();
    assert_eq!(got.len(), len);
    assert_eq!(&got[..6], b"before");
    assert_eq!(&got[200..207], b"written");
    assert_eq!(&got[4096..4101], b"hello");
    assert_eq!(got[len - 1], b'Z');
}

#[test]
fn mmap_shared_direct_io() {
    mmap_roundtrip("");
}

#[test]
fn mmap_shared_page_cache() {
    mmap_roundtrip("cache=page");
}

#[test]
fn page_cache_mode_data_and_sizes() {
    let Some(m) = Mount::new("cache=page") else {
        return;
    };
    let p = m.path("pc");
    let data = pattern(21, 0, 300_000);
    fs::write(&p, &data).unwrap();
    assert_bytes(&fs::read(&p).unwrap(), &data, "cache=page read back");
    let f = rw(&p);
    f.set_len(1000).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 1000);
    assert_bytes(&fs::read(&p).unwrap(), &data[..1000], "after truncate");
    pwrite_all(&f, b"tail", 5000).unwrap();
    let got = fs::read(&p).unwrap();
    assert_eq!(got.len(), 5004);
    assert!(got[1000..5000].iter().all(|&b| b == 0));
    f.sync_all().unwrap();
}
