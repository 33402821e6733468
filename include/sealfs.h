/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sealfs.h - the ioctl ABI of sealfs for C programs.
 *
 * All structures are fixed-size and little-endian (the native order of every platform
 * sealfs runs on). Issue the ioctls on a file descriptor of a file on a sealfs mount.
 * See docs/ioctl.md for the semantics and errno values.
 */
#ifndef SEALFS_H
#define SEALFS_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SEALFS_IOC_TYPE 'S'

/* Seal flags. */
#define SEALFS_SEAL_BREAKABLE 0x1u /* recalled on conflict instead of refusing it */
#define SEALFS_SEAL_POPULATE  0x2u /* allocate and zero holes in the range first */
#define SEALFS_SEAL_REPLACE   0x4u /* release this descriptor's other seals in the same step */

struct sealfs_seal {
	__u64 offset;
	__u64 length;   /* 0: to the end of the file, whatever it becomes */
	__u32 flags;    /* SEALFS_SEAL_* */
	__u32 reserved; /* must be 0 */
};

/* Seal kinds and states reported by SEALFS_IOC_GET_SEALS. */
#define SEALFS_KIND_TEMPORARY 1
#define SEALFS_KIND_BREAKABLE 2
#define SEALFS_KIND_PIN       3 /* a live DAX window mapping */
#define SEALFS_KIND_IMMUTABLE 4 /* the permanent seal (pid 0) */
#define SEALFS_STATE_ACTIVE   0
#define SEALFS_STATE_RECALLED 1

#define SEALFS_SEALS_MAX 32

struct sealfs_seal_info {
	__u64 offset;
	__u64 length;       /* 0: to the end of the file */
	__u32 kind;         /* SEALFS_KIND_* */
	__u32 state;        /* SEALFS_STATE_* */
	__u32 pid;          /* holder */
	__u32 reserved;
	__u64 remaining_ms; /* recalled: time left before revocation */
};

struct sealfs_seal_list {
	__u32 count; /* entries filled */
	__u32 total; /* seals on the file (may exceed SEALFS_SEALS_MAX) */
	struct sealfs_seal_info seals[SEALFS_SEALS_MAX];
};

struct sealfs_immutable {
	__u32 flags;    /* SEALFS_SEAL_POPULATE or 0 */
	__u32 reserved; /* must be 0 */
};

#define SEALFS_IOC_SEAL            _IOW(SEALFS_IOC_TYPE, 1, struct sealfs_seal)
#define SEALFS_IOC_UNSEAL          _IOW(SEALFS_IOC_TYPE, 2, struct sealfs_seal)
#define SEALFS_IOC_GET_SEALS       _IOR(SEALFS_IOC_TYPE, 3, struct sealfs_seal_list)
#define SEALFS_IOC_SET_IMMUTABLE   _IOW(SEALFS_IOC_TYPE, 4, struct sealfs_immutable)
#define SEALFS_IOC_CLEAR_IMMUTABLE _IOW(SEALFS_IOC_TYPE, 5, struct sealfs_immutable)
/* Root only: revoke every seal and mapping pin overlapping the range, whoever holds it
 * (flags 0); the holders are fenced (ENOLINK) as after a recall timed out. */
#define SEALFS_IOC_REVOKE          _IOW(SEALFS_IOC_TYPE, 8, struct sealfs_seal)

/* DAX windows (virtio-fs style). */
#define SEALFS_MAP_READ     0x1ull
#define SEALFS_MAP_WRITE    0x2ull
#define SEALFS_MAP_POPULATE 0x4ull /* holes are always allocated; accepted for parity */
#define SEALFS_MAP_EXTENTS_MAX 512

struct sealfs_dev_extent {
	__u64 foffset; /* file offset */
	__u64 doffset; /* device offset: map the device here */
	__u64 len;
};

struct sealfs_setupmapping {
	/* in: the fields of virtio-fs' fuse_setupmapping_in */
	__u64 fh;      /* ignored: the file descriptor names the file */
	__u64 foffset;
	__u64 len;
	__u64 flags;   /* SEALFS_MAP_* */
	__u64 moffset; /* window offset of the slot; REMOVEMAPPING's key; a mapped slot is replaced */
	/* out */
	__u32 count;
	__u32 reserved;
	struct sealfs_dev_extent extents[SEALFS_MAP_EXTENTS_MAX];
};

#define SEALFS_RANGES_MAX 16
struct sealfs_range {
	__u64 moffset;
	__u64 len;
};
struct sealfs_ranges {
	__u32 count;
	__u32 reserved;
	struct sealfs_range ranges[SEALFS_RANGES_MAX];
};

struct sealfs_extent_list {
	__u64 start; /* in: file offset to list from */
	__u32 count; /* out */
	__u32 total;
	struct sealfs_dev_extent extents[SEALFS_MAP_EXTENTS_MAX];
};

struct sealfs_defrag {
	__u64 files, moved, sealed, no_space;
};

#define SEALFS_IOC_EXTENTS      _IOWR(SEALFS_IOC_TYPE, 6, struct sealfs_extent_list)
#define SEALFS_IOC_DEFRAG       _IOR(SEALFS_IOC_TYPE, 7, struct sealfs_defrag)
#define SEALFS_IOC_SETUPMAPPING _IOWR(SEALFS_IOC_TYPE, 0x20, struct sealfs_setupmapping)
#define SEALFS_IOC_REMOVEMAPPING _IOW(SEALFS_IOC_TYPE, 0x21, struct sealfs_ranges)
#define SEALFS_IOC_FLUSHMAPPING _IOW(SEALFS_IOC_TYPE, 0x22, struct sealfs_ranges)
#define SEALFS_IOC_GET_RECALLS  _IOR(SEALFS_IOC_TYPE, 0x23, struct sealfs_ranges)

/* Counters and settings of a mount (sealfs stat), on any file or directory of it. */
#define SEALFS_STAT_VERSION 1
#define SEALFS_STAT_MOUNT_RO          0x1ull
#define SEALFS_STAT_MOUNT_CACHE_PAGE  0x2ull
#define SEALFS_STAT_MOUNT_ALLOW_OTHER 0x4ull
#define SEALFS_STAT_MOUNT_ACL         0x8ull
#define SEALFS_STAT_DEVICE_IMAGE  1
#define SEALFS_STAT_DEVICE_DEVDAX 2
#define SEALFS_STAT_DEVICE_SIM    3

struct sealfs_stat {
	__u64 version;      /* SEALFS_STAT_VERSION */
	__u64 block_size;
	__u64 total_blocks; /* data blocks */
	__u64 free_blocks;
	__u64 inodes;       /* in use */
	__u64 max_inodes;   /* checkpoint capacity (estimate) */
	__u64 log_used;     /* bytes since the last checkpoint */
	__u64 log_len;
	__u64 checkpoints;  /* since mount */
	__u64 records;      /* log records since mount */
	__u64 generation;   /* superblock generation */
	__u64 device_size;
	__u64 flush_method; /* 1 msync, 2 clwb, 3 clflushopt, 4 clflush, 5 simulated, 0 unknown */
	__u64 device_kind;  /* SEALFS_STAT_DEVICE_* */
	__u64 mount_flags;  /* SEALFS_STAT_MOUNT_* */
	__u64 threads;
	__u64 break_timeout_ms;
	__u64 max_seals;    /* per open file description */
	__u64 seals;        /* temporary and breakable seals held now */
	__u64 pins;         /* mapping pins held now */
	__u64 recalls;      /* since mount */
	__u64 revocations;  /* since mount */
	__u64 quarantined_blocks;
	__u64 timeout_ms;   /* name and attribute cache lifetime (timeout=) */
	__u64 max_seals_per_user;
	__u8  uuid[16];     /* the filesystem's UUID, as in its superblock */
	__u64 guest_mappings; /* live DAX window mappings of a vhost-user-fs guest */
	__u64 reserved[4];
};

/* Remount support (root only): the daemon stops or resumes writing. */
struct sealfs_readonly {
	__u32 read_only; /* 1 or 0 */
	__u32 reserved;  /* must be 0 */
};

#define SEALFS_IOC_STAT         _IOR(SEALFS_IOC_TYPE, 0x10, struct sealfs_stat)
#define SEALFS_IOC_SET_READONLY _IOW(SEALFS_IOC_TYPE, 0x11, struct sealfs_readonly)

/* Does nothing and returns 0 (any file or directory of a mount, anyone): one ioctl round
 * trip to the daemon, for measuring it. */
#define SEALFS_IOC_NOOP         _IO(SEALFS_IOC_TYPE, 0x12)

#endif /* SEALFS_H */
