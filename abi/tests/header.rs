//! Checks the crate against `include/sealfs.h`: a small C program built with the system C
//! compiler (`cc`, or `$CC`) prints every ioctl number and constant, every structure's
//! size, and the bytes of each structure filled with distinct field values; the Rust side
//! must give the same numbers and encode the same values to the same bytes (so field
//! offsets agree too). No compiler is a failure, not a skip.

use sealfs_abi as abi;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

const PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include "sealfs.h"

#define N(x) printf("%s %llu\n", #x, (unsigned long long)(x))
static void dump(const char *name, const void *p, size_t n) {
	const unsigned char *b = p;
	printf("%s ", name);
	for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
	printf("\n");
}
#define DUMP(name, v) dump(name, &(v), sizeof(v))

int main(void) {
	N(SEALFS_IOC_SEAL); N(SEALFS_IOC_UNSEAL); N(SEALFS_IOC_GET_SEALS);
	N(SEALFS_IOC_SET_IMMUTABLE); N(SEALFS_IOC_CLEAR_IMMUTABLE); N(SEALFS_IOC_REVOKE);
	N(SEALFS_IOC_EXTENTS); N(SEALFS_IOC_DEFRAG); N(SEALFS_IOC_SETUPMAPPING);
	N(SEALFS_IOC_REMOVEMAPPING); N(SEALFS_IOC_FLUSHMAPPING); N(SEALFS_IOC_GET_RECALLS);
	N(SEALFS_IOC_STAT); N(SEALFS_IOC_SET_READONLY); N(SEALFS_IOC_NOOP);
	N(SEALFS_IOC_TYPE); N(SEALFS_SEAL_BREAKABLE); N(SEALFS_SEAL_POPULATE);
	N(SEALFS_SEAL_REPLACE);
	N(SEALFS_KIND_TEMPORARY); N(SEALFS_KIND_BREAKABLE); N(SEALFS_KIND_PIN);
	N(SEALFS_KIND_IMMUTABLE); N(SEALFS_STATE_ACTIVE); N(SEALFS_STATE_RECALLED);
	N(SEALFS_SEALS_MAX); N(SEALFS_MAP_READ); N(SEALFS_MAP_WRITE); N(SEALFS_MAP_POPULATE);
	N(SEALFS_MAP_EXTENTS_MAX); N(SEALFS_RANGES_MAX); N(SEALFS_STAT_VERSION);
	N(SEALFS_STAT_MOUNT_RO); N(SEALFS_STAT_MOUNT_CACHE_PAGE);
	N(SEALFS_STAT_MOUNT_ALLOW_OTHER); N(SEALFS_STAT_MOUNT_ACL);
	N(SEALFS_STAT_DEVICE_IMAGE); N(SEALFS_STAT_DEVICE_DEVDAX); N(SEALFS_STAT_DEVICE_SIM);
	N(sizeof(struct sealfs_seal)); N(sizeof(struct sealfs_seal_info));
	N(sizeof(struct sealfs_seal_list)); N(sizeof(struct sealfs_immutable));
	N(sizeof(struct sealfs_dev_extent)); N(sizeof(struct sealfs_setupmapping));
	N(sizeof(struct sealfs_ranges)); N(sizeof(struct sealfs_extent_list));
	N(sizeof(struct sealfs_defrag)); N(sizeof(struct sealfs_stat));
	N(sizeof(struct sealfs_readonly)); N(offsetof(struct sealfs_stat, uuid));
	N(offsetof(struct sealfs_stat, guest_mappings));

	struct sealfs_seal seal = { .offset = 0x1122334455667788ull, .length = 0x99aabbccddeeff01ull,
		.flags = 3 };
	DUMP("seal", seal);
	struct sealfs_immutable imm = { .flags = SEALFS_SEAL_POPULATE };
	DUMP("immutable", imm);
	static struct sealfs_seal_list list;
	list.count = 2; list.total = 5;
	for (int i = 0; i < 2; i++) {
		list.seals[i].offset = 0x1000 * (i + 1); list.seals[i].length = 0x2000 + i;
		list.seals[i].kind = 1 + i; list.seals[i].state = i; list.seals[i].pid = 4242 + i;
		list.seals[i].remaining_ms = 0x0102030405060708ull + i;
	}
	DUMP("seal_list", list);
	static struct sealfs_setupmapping sm;
	sm.foffset = 0x3000; sm.len = 0x200000; sm.flags = 3; sm.moffset = 0x400000;
	sm.count = 2;
	for (int i = 0; i < 2; i++) {
		sm.extents[i].foffset = 0x3000 + i * 0x1000; sm.extents[i].doffset = 0x77000 + i;
		sm.extents[i].len = 0x1000;
	}
	DUMP("setupmapping", sm);
	static struct sealfs_ranges rg;
	rg.count = 2;
	rg.ranges[0].moffset = 0x200000; rg.ranges[0].len = 0x1000;
	rg.ranges[1].moffset = 0x400000; rg.ranges[1].len = 0x2000;
	DUMP("ranges", rg);
	static struct sealfs_extent_list el;
	el.start = 0x5000; el.count = 1; el.total = 9;
	el.extents[0].foffset = 0x5000; el.extents[0].doffset = 0x88000; el.extents[0].len = 0x3000;
	DUMP("extent_list", el);
	struct sealfs_defrag df = { .files = 1, .moved = 2, .sealed = 3, .no_space = 4 };
	DUMP("defrag", df);
	struct sealfs_stat st;
	memset(&st, 0, sizeof(st));
	__u64 *f = &st.version;
	for (int i = 1; i < 25; i++) f[i] = 0x100 + i;
	st.version = SEALFS_STAT_VERSION;
	for (int i = 0; i < 16; i++) st.uuid[i] = 0xa0 + i;
	st.guest_mappings = 0x11a;
	DUMP("stat", st);
	struct sealfs_readonly ro = { .read_only = 1 };
	DUMP("readonly", ro);
	return 0;
}
"#;

/// Builds and runs the C program; returns its `name value` lines.
fn from_c() -> HashMap<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("sealfs-abi-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("abi.c");
    let exe = dir.join("abi");
    std::fs::write(&src, PROGRAM).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg("-std=c11")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(root.join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler {cc}: {e}"));
    assert!(
        out.status.success(),
        "{cc} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn numbers_sizes_and_layouts_match_the_c_header() {
    let c = from_c();
    let num = |k: &str| -> u64 {
        c.get(k)
            .unwrap_or_else(|| panic!("{k} missing from the C output"))
            .parse()
            .unwrap()
    };
    let ioctls: [(&str, u32); 15] = [
        ("SEALFS_IOC_SEAL", abi::IOC_SEAL),
        ("SEALFS_IOC_UNSEAL", abi::IOC_UNSEAL),
        ("SEALFS_IOC_GET_SEALS", abi::IOC_GET_SEALS),
        ("SEALFS_IOC_SET_IMMUTABLE", abi::IOC_SET_IMMUTABLE),
        ("SEALFS_IOC_CLEAR_IMMUTABLE", abi::IOC_CLEAR_IMMUTABLE),
        ("SEALFS_IOC_REVOKE", abi::IOC_REVOKE),
        ("SEALFS_IOC_EXTENTS", abi::IOC_EXTENTS),
        ("SEALFS_IOC_DEFRAG", abi::IOC_DEFRAG),
        ("SEALFS_IOC_SETUPMAPPING", abi::IOC_SETUPMAPPING),
        ("SEALFS_IOC_REMOVEMAPPING", abi::IOC_REMOVEMAPPING),
        ("SEALFS_IOC_FLUSHMAPPING", abi::IOC_FLUSHMAPPING),
        ("SEALFS_IOC_GET_RECALLS", abi::IOC_GET_RECALLS),
        ("SEALFS_IOC_STAT", abi::IOC_STAT),
        ("SEALFS_IOC_SET_READONLY", abi::IOC_SET_READONLY),
        ("SEALFS_IOC_NOOP", abi::IOC_NOOP),
    ];
    for (k, v) in ioctls {
        assert_eq!(num(k), v as u64, "{k}");
    }
    // Every number the daemon answers to is in the header (REVOKE is checked above).
    for cmd in abi::IOC_ALL {
        assert!(ioctls.iter().any(|&(_, v)| v == cmd), "{cmd:#x}");
    }
    let consts: [(&str, u64); 24] = [
        ("SEALFS_IOC_TYPE", abi::IOC_TYPE as u64),
        ("SEALFS_SEAL_BREAKABLE", abi::SEAL_BREAKABLE as u64),
        ("SEALFS_SEAL_POPULATE", abi::SEAL_POPULATE as u64),
        ("SEALFS_SEAL_REPLACE", abi::SEAL_REPLACE as u64),
        ("SEALFS_KIND_TEMPORARY", abi::KIND_TEMPORARY as u64),
        ("SEALFS_KIND_BREAKABLE", abi::KIND_BREAKABLE as u64),
        ("SEALFS_KIND_PIN", abi::KIND_PIN as u64),
        ("SEALFS_KIND_IMMUTABLE", abi::KIND_IMMUTABLE as u64),
        ("SEALFS_STATE_ACTIVE", abi::STATE_ACTIVE as u64),
        ("SEALFS_STATE_RECALLED", abi::STATE_RECALLED as u64),
        ("SEALFS_SEALS_MAX", abi::SEALS_MAX as u64),
        ("SEALFS_MAP_READ", abi::MAP_READ),
        ("SEALFS_MAP_WRITE", abi::MAP_WRITE),
        ("SEALFS_MAP_POPULATE", abi::MAP_POPULATE),
        ("SEALFS_MAP_EXTENTS_MAX", abi::MAP_EXTENTS_MAX as u64),
        ("SEALFS_RANGES_MAX", abi::RANGES_MAX as u64),
        ("SEALFS_STAT_VERSION", abi::STAT_VERSION),
        ("SEALFS_STAT_MOUNT_RO", abi::STAT_MOUNT_RO),
        ("SEALFS_STAT_MOUNT_CACHE_PAGE", abi::STAT_MOUNT_CACHE_PAGE),
        ("SEALFS_STAT_MOUNT_ALLOW_OTHER", abi::STAT_MOUNT_ALLOW_OTHER),
        ("SEALFS_STAT_MOUNT_ACL", abi::STAT_MOUNT_ACL),
        ("SEALFS_STAT_DEVICE_IMAGE", abi::STAT_DEVICE_IMAGE),
        ("SEALFS_STAT_DEVICE_DEVDAX", abi::STAT_DEVICE_DEVDAX),
        ("SEALFS_STAT_DEVICE_SIM", abi::STAT_DEVICE_SIM),
    ];
    for (k, v) in consts {
        assert_eq!(num(k), v, "{k}");
    }
    let sizes: [(&str, usize); 13] = [
        ("sizeof(struct sealfs_seal)", abi::SEAL_ARG_SIZE),
        ("sizeof(struct sealfs_seal_info)", abi::SEAL_INFO_SIZE),
        ("sizeof(struct sealfs_seal_list)", abi::SEAL_LIST_SIZE),
        ("sizeof(struct sealfs_immutable)", abi::IMMUTABLE_ARG_SIZE),
        ("sizeof(struct sealfs_dev_extent)", abi::DEV_EXTENT_SIZE),
        ("sizeof(struct sealfs_setupmapping)", abi::SETUPMAPPING_SIZE),
        ("sizeof(struct sealfs_ranges)", abi::RANGES_SIZE),
        ("sizeof(struct sealfs_extent_list)", abi::EXTENT_LIST_SIZE),
        ("sizeof(struct sealfs_defrag)", abi::DEFRAG_SIZE),
        ("sizeof(struct sealfs_stat)", abi::STAT_SIZE),
        ("sizeof(struct sealfs_readonly)", abi::READONLY_ARG_SIZE),
        ("offsetof(struct sealfs_stat, uuid)", abi::STAT_UUID_AT),
        (
            "offsetof(struct sealfs_stat, guest_mappings)",
            abi::STAT_GUEST_MAPPINGS_AT,
        ),
    ];
    for (k, v) in sizes {
        assert_eq!(num(k), v as u64, "{k}");
    }

    // Layouts: the same values encode to the C program's bytes.
    let bytes = |k: &str| c.get(k).unwrap_or_else(|| panic!("{k} missing")).clone();
    let seal = abi::SealArg {
        offset: 0x1122334455667788,
        length: 0x99aabbccddeeff01,
        flags: 3,
    };
    assert_eq!(hex(&seal.encode()), bytes("seal"));
    assert_eq!(abi::SealArg::decode(&seal.encode()), Ok(seal));
    assert_eq!(hex(&abi::encode_immutable(true)), bytes("immutable"));
    let infos: Vec<abi::SealInfoArg> = (0..2u32)
        .map(|i| abi::SealInfoArg {
            offset: 0x1000 * (i as u64 + 1),
            length: 0x2000 + i as u64,
            kind: 1 + i,
            state: i,
            pid: 4242 + i,
            remaining_ms: 0x0102030405060708 + i as u64,
        })
        .collect();
    let mut list = abi::encode_seal_list(&infos);
    list[4] = 5; // total: 5 seals on the file, 2 listed
    assert_eq!(hex(&list), bytes("seal_list"));
    let req = abi::SetupMapping {
        foffset: 0x3000,
        len: 0x200000,
        flags: abi::MAP_READ | abi::MAP_WRITE,
        moffset: 0x400000,
    };
    let triples = [(0x3000, 0x77000, 0x1000), (0x4000, 0x77001, 0x1000)];
    let answer = abi::encode_mapping_answer(&req.encode(), &triples).unwrap();
    assert_eq!(hex(&answer), bytes("setupmapping"));
    assert_eq!(abi::SetupMapping::decode(&answer), Ok(req));
    assert_eq!(abi::decode_mapping_answer(&answer).unwrap(), triples);
    let ranges = [(0x200000, 0x1000), (0x400000, 0x2000)];
    assert_eq!(hex(&abi::encode_ranges(&ranges)), bytes("ranges"));
    let el = abi::encode_extent_list(0x5000, &[(0x5000, 0x88000, 0x3000)], 9);
    assert_eq!(hex(&el), bytes("extent_list"));
    assert_eq!(hex(&abi::encode_defrag(1, 2, 3, 4)), bytes("defrag"));
    let f = |i: u64| 0x100 + i;
    let st = abi::StatArg {
        block_size: f(1),
        total_blocks: f(2),
        free_blocks: f(3),
        inodes: f(4),
        max_inodes: f(5),
        log_used: f(6),
        log_len: f(7),
        checkpoints: f(8),
        records: f(9),
        generation: f(10),
        device_size: f(11),
        flush_method: f(12),
        device_kind: f(13),
        mount_flags: f(14),
        threads: f(15),
        break_timeout_ms: f(16),
        max_seals: f(17),
        seals: f(18),
        pins: f(19),
        recalls: f(20),
        revocations: f(21),
        quarantined_blocks: f(22),
        timeout_ms: f(23),
        max_seals_per_user: f(24),
        uuid: std::array::from_fn(|i| 0xa0 + i as u8),
        guest_mappings: 0x11a,
    };
    assert_eq!(hex(&st.encode()), bytes("stat"));
    assert_eq!(hex(&abi::encode_readonly(true)), bytes("readonly"));
}
