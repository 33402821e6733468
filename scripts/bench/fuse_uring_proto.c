/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuse_uring_proto.c - a measurement prototype: one tiny in-memory FUSE filesystem served
 * either by the classic /dev/fuse read()/writev() loop or by FUSE over io_uring (Linux >= 6.14,
 * fuse module parameter enable_uring=Y), with the same request handlers, so that only the
 * transport differs. Compiled at run time with gcc by scripts/bench/uring.sh; see
 * docs/performance.md, "FUSE over io_uring: the prototype".
 *
 *   serve MNT devfuse|uring|uring-unpinned STATS [THREADS]
 *       mount a fresh filesystem on MNT (mount(2), needs root) and serve it until it is
 *       unmounted. devfuse: THREADS (default 2) threads read() the one /dev/fuse fd.
 *       uring: FUSE_INIT is answered over /dev/fuse with FUSE_OVER_IO_URING, then one thread
 *       per possible CPU (pinned to it) registers its queue's ring entries with
 *       FUSE_IO_URING_CMD_REGISTER and answers each completion with COMMIT_AND_FETCH; one
 *       thread still reads /dev/fuse, where the kernel keeps sending FORGETs. uring-unpinned:
 *       the same without pinning the queue threads (to tell what the per-CPU placement gives
 *       from what the ring itself gives). Prints "ready"
 *       once serving; if the kernel refuses io_uring it prints "uring_error=..." with what
 *       the kernel answered and exits with status 3.
 *       STATS is a file the server maps and counts requests in (served over the ring, over
 *       /dev/fuse, and forgets), so the clients below can tell requests per operation.
 *   The timed client loops (STATS: the server's file, for the request counts):
 *   create DIR N STATS     N x (open O_CREAT|O_EXCL + close), then N x unlink
 *   mkfiles DIR N          create N empty files s%07d (set-up for stat)
 *   stat DIR N STATS       fstatat every s%07d (entry and attribute timeouts are 0: uncached)
 *   fill FILE MIB          write FILE sequentially, MIB MiB in 128 KiB writes
 *   randread FILE N STATS  N x 4 KiB pread at random 4 KiB-aligned offsets inside FILE
 *   randwrite FILE N STATS N x 4 KiB pwrite at random 4 KiB-aligned offsets inside FILE
 *   PROTO_JOBS=P runs the timed loop of create, stat, randread, randwrite in P processes at
 *   once, each on its share of the N items (us_per_op is then wall time over all operations).
 *   Each prints one line: "us_per_op=X ops=N ring_reqs=R dev_reqs=D server_cpu_us_per_op=S
 *   client_cpu_us_per_op=C", all for the timed loop: wall time, requests served over the ring
 *   and over /dev/fuse, and CPU time (user + system) of the server's threads (from
 *   /proc/PID/task/TID/schedstat) and of the client.
 *
 * The FUSE and io_uring structures below are written from the kernel's UAPI
 * (include/uapi/linux/fuse.h, protocol 7.42; linux/io_uring.h); the Debian 12 headers
 * predate FUSE over io_uring.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ FUSE protocol (7.42) */

enum {
	OP_LOOKUP = 1, OP_FORGET = 2, OP_GETATTR = 3, OP_SETATTR = 4, OP_UNLINK = 10,
	OP_OPEN = 14, OP_READ = 15, OP_WRITE = 16, OP_STATFS = 17, OP_RELEASE = 18,
	OP_FSYNC = 20, OP_FLUSH = 25, OP_INIT = 26, OP_OPENDIR = 27, OP_READDIR = 28,
	OP_RELEASEDIR = 29, OP_ACCESS = 34, OP_CREATE = 35, OP_INTERRUPT = 36,
	OP_DESTROY = 38, OP_BATCH_FORGET = 42,
};

#define F_BIG_WRITES (1u << 5)
#define F_PARALLEL_DIROPS (1u << 18)
#define F_MAX_PAGES (1u << 22)
#define F_INIT_EXT (1u << 30)
#define F2_OVER_IO_URING (1u << (41 - 32)) /* FUSE_OVER_IO_URING, in flags2 */
#define FOPEN_DIRECT_IO (1u << 0)
#define FATTR_MODE (1u << 0)
#define FATTR_SIZE (1u << 3)

struct f_in_header {
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};
struct f_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};
struct f_attr {
	uint64_t ino, size, blocks, atime, mtime, ctime;
	uint32_t atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags;
};
struct f_entry_out {
	uint64_t nodeid, generation, entry_valid, attr_valid;
	uint32_t entry_valid_nsec, attr_valid_nsec;
	struct f_attr attr;
};
struct f_attr_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec, dummy;
	struct f_attr attr;
};
struct f_getattr_in { uint32_t getattr_flags, dummy; uint64_t fh; };
struct f_setattr_in {
	uint32_t valid, padding;
	uint64_t fh, size, lock_owner, atime, mtime, ctime;
	uint32_t atimensec, mtimensec, ctimensec, mode, unused4, uid, gid, unused5;
};
struct f_open_in { uint32_t flags, open_flags; };
struct f_create_in { uint32_t flags, mode, umask, open_flags; };
struct f_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };
struct f_release_in { uint64_t fh; uint32_t flags, release_flags; uint64_t lock_owner; };
struct f_flush_in { uint64_t fh; uint32_t unused, padding; uint64_t lock_owner; };
struct f_read_in {
	uint64_t fh, offset;
	uint32_t size, read_flags;
	uint64_t lock_owner;
	uint32_t flags, padding;
};
struct f_write_in {
	uint64_t fh, offset;
	uint32_t size, write_flags;
	uint64_t lock_owner;
	uint32_t flags, padding;
};
struct f_write_out { uint32_t size, padding; };
struct f_kstatfs {
	uint64_t blocks, bfree, bavail, files, ffree;
	uint32_t bsize, namelen, frsize, padding, spare[6];
};
struct f_forget_in { uint64_t nlookup; };
struct f_batch_forget_in { uint32_t count, dummy; };
struct f_fsync_in { uint64_t fh; uint32_t fsync_flags, padding; };
struct f_access_in { uint32_t mask, padding; };
struct f_init_in {
	uint32_t major, minor, max_readahead, flags, flags2, unused[11];
};
struct f_init_out {
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2, max_stack_depth, unused[6];
};

/* FUSE over io_uring (include/uapi/linux/fuse.h, 7.42) */
#define URING_HDR_SZ 128
#define URING_OP_SZ 128
struct f_uring_ent_in_out {
	uint64_t flags, commit_id;
	uint32_t payload_sz, padding;
	uint64_t reserved;
};
struct f_uring_req_header {
	char in_out[URING_HDR_SZ]; /* fuse_in_header in, fuse_out_header out */
	char op_in[URING_OP_SZ];   /* the opcode's own header (first in-argument) */
	struct f_uring_ent_in_out ring_ent_in_out;
};
enum { URING_CMD_REGISTER = 1, URING_CMD_COMMIT_AND_FETCH = 2 };
struct f_uring_cmd_req {
	uint64_t flags, commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct f_in_header) == 40, "in header");
_Static_assert(sizeof(struct f_entry_out) == 128, "entry_out");
_Static_assert(sizeof(struct f_init_out) == 64, "init_out");
_Static_assert(sizeof(struct f_uring_req_header) == 288, "uring header");
_Static_assert(sizeof(struct f_uring_cmd_req) == 24, "uring cmd");

#define MAX_WRITE (128u * 1024)
#define MAX_PAGES 32u
#define PAYLOAD_SZ (MAX_WRITE) /* >= max(8 KiB, max_write, max_pages * 4 KiB) */
#define DEV_BUF_SZ (PAYLOAD_SZ + 4096)
#define QUEUE_DEPTH 8

static void die(const char *what)
{
	fprintf(stderr, "fuse_uring_proto: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ------------------------------------------------------------ request counters */

struct stats {
	_Atomic uint64_t ring_reqs, dev_reqs, forgets;
	uint64_t server_pid; /* for the clients: the server's CPU time is in /proc/PID/task */
};
static struct stats *stats;

static struct stats *map_stats(const char *path, int create)
{
	int fd = open(path, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDONLY, 0600);
	if (fd < 0)
		die(path);
	if (create && ftruncate(fd, 4096) != 0)
		die("ftruncate stats");
	void *p = mmap(NULL, 4096, create ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap stats");
	close(fd);
	return p;
}

/* ------------------------------------------------------------ the in-memory filesystem */

struct inode {
	uint64_t ino;
	uint32_t mode;
	int linked;
	char *data;
	uint64_t size, cap;
	struct inode *hnext;
	char name[256];
};

#define HBUCKETS 65536
static struct inode *buckets[HBUCKETS];
static struct inode **inodes; /* by inode number */
static uint64_t n_inodes, cap_inodes;
static pthread_mutex_t fs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec t_start;

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % HBUCKETS;
}

static struct inode *new_inode(uint32_t mode)
{
	if (n_inodes == cap_inodes) {
		cap_inodes = cap_inodes ? cap_inodes * 2 : 1024;
		inodes = realloc(inodes, cap_inodes * sizeof(*inodes));
		if (!inodes)
			die("realloc");
	}
	struct inode *in = calloc(1, sizeof(*in));
	if (!in)
		die("calloc");
	in->ino = n_inodes;
	in->mode = mode;
	in->linked = 1;
	inodes[n_inodes++] = in;
	return in;
}

static struct inode *get_inode(uint64_t ino)
{
	return ino < n_inodes ? inodes[ino] : NULL;
}

static struct inode *find_child(const char *name)
{
	for (struct inode *in = buckets[name_hash(name)]; in; in = in->hnext)
		if (strcmp(in->name, name) == 0)
			return in;
	return NULL;
}

static void fill_attr(const struct inode *in, struct f_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = in->ino;
	a->size = in->size;
	a->blocks = (in->size + 511) / 512;
	a->atime = a->mtime = a->ctime = (uint64_t)t_start.tv_sec;
	a->mode = in->mode;
	a->nlink = S_ISDIR(in->mode) ? 2 : 1;
	a->blksize = 4096;
}

static void fill_entry(const struct inode *in, struct f_entry_out *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = in->ino;
	e->generation = 1;
	/* entry_valid = attr_valid = 0: every stat reaches the filesystem */
	fill_attr(in, &e->attr);
}

#define MAX_FILE_SIZE (1ull << 30) /* the workloads need 16 MiB */

static int set_size(struct inode *in, uint64_t size)
{
	if (size > MAX_FILE_SIZE)
		return -EFBIG;
	if (size > in->cap) {
		uint64_t cap = in->cap ? in->cap : 65536;
		while (cap < size)
			cap *= 2;
		char *d = realloc(in->data, cap);
		if (!d)
			return -ENOMEM;
		memset(d + in->cap, 0, cap - in->cap);
		in->data = d;
		in->cap = cap;
	}
	if (size < in->size)
		memset(in->data + size, 0, in->size - size);
	in->size = size;
	return 0;
}

/*
 * One request, whichever transport brought it: `op` is the opcode's own header (the first
 * in-argument), `data`/`dlen` the rest of the in-arguments (a name, write data). The reply's
 * arguments go to `out` (room: PAYLOAD_SZ); the handler reads all its input before it writes
 * there, since on the ring `data` and `out` are the same buffer.
 * Returns the reply's argument length (>= 0), a negative errno, or 1 << 30 for "no reply".
 */
#define NO_REPLY (1 << 30)
static int handle(const struct f_in_header *ih, const void *op, const char *data, uint32_t dlen,
		  char *out)
{
	int ret;
	pthread_mutex_lock(&fs_lock);
	struct inode *in = get_inode(ih->nodeid);
	switch (ih->opcode) {
	case OP_LOOKUP: {
		if (dlen == 0 || data[dlen - 1] != 0 || ih->nodeid != 1) {
			ret = -ENOENT;
			break;
		}
		struct inode *c = find_child(data);
		if (!c) {
			ret = -ENOENT;
			break;
		}
		fill_entry(c, (struct f_entry_out *)out);
		ret = sizeof(struct f_entry_out);
		break;
	}
	case OP_FORGET:
	case OP_BATCH_FORGET:
	case OP_INTERRUPT:
		ret = NO_REPLY;
		break;
	case OP_GETATTR: {
		if (!in) {
			ret = -ENOENT;
			break;
		}
		struct f_attr_out *a = (struct f_attr_out *)out;
		memset(a, 0, sizeof(*a));
		fill_attr(in, &a->attr);
		ret = sizeof(*a);
		break;
	}
	case OP_SETATTR: {
		const struct f_setattr_in *s = op;
		if (!in) {
			ret = -ENOENT;
			break;
		}
		if ((s->valid & FATTR_SIZE) && (ret = set_size(in, s->size)) != 0)
			break;
		if (s->valid & FATTR_MODE)
			in->mode = (in->mode & S_IFMT) | (s->mode & 07777);
		struct f_attr_out *a = (struct f_attr_out *)out;
		memset(a, 0, sizeof(*a));
		fill_attr(in, &a->attr);
		ret = sizeof(*a);
		break;
	}
	case OP_CREATE: {
		const struct f_create_in *c = op;
		if (ih->nodeid != 1 || dlen == 0 || data[dlen - 1] != 0 || dlen > 256) {
			ret = -EINVAL;
			break;
		}
		if (find_child(data)) {
			ret = -EEXIST;
			break;
		}
		struct inode *n = new_inode(S_IFREG | (c->mode & 07777));
		memcpy(n->name, data, dlen);
		uint32_t h = name_hash(n->name);
		n->hnext = buckets[h];
		buckets[h] = n;
		fill_entry(n, (struct f_entry_out *)out);
		struct f_open_out *o = (struct f_open_out *)(out + sizeof(struct f_entry_out));
		memset(o, 0, sizeof(*o));
		o->fh = n->ino;
		o->open_flags = FOPEN_DIRECT_IO;
		ret = sizeof(struct f_entry_out) + sizeof(*o);
		break;
	}
	case OP_UNLINK: {
		struct inode *c = (ih->nodeid == 1 && dlen && data[dlen - 1] == 0) ? find_child(data)
										    : NULL;
		if (!c) {
			ret = -ENOENT;
			break;
		}
		struct inode **pp = &buckets[name_hash(c->name)];
		while (*pp != c)
			pp = &(*pp)->hnext;
		*pp = c->hnext;
		c->linked = 0;
		free(c->data);
		c->data = NULL;
		c->size = c->cap = 0;
		ret = 0;
		break;
	}
	case OP_OPEN:
	case OP_OPENDIR: {
		if (!in) {
			ret = -ENOENT;
			break;
		}
		struct f_open_out *o = (struct f_open_out *)out;
		memset(o, 0, sizeof(*o));
		o->fh = in->ino;
		o->open_flags = ih->opcode == OP_OPEN ? FOPEN_DIRECT_IO : 0;
		ret = sizeof(*o);
		break;
	}
	case OP_READ: {
		const struct f_read_in *r = op;
		if (!in) {
			ret = -ENOENT;
			break;
		}
		if (S_ISDIR(in->mode)) { /* READDIR is enough for the workloads: empty */
			ret = 0;
			break;
		}
		uint64_t n = 0;
		if (r->offset < in->size)
			n = in->size - r->offset < r->size ? in->size - r->offset : r->size;
		if (n > PAYLOAD_SZ)
			n = PAYLOAD_SZ;
		if (n)
			memcpy(out, in->data + r->offset, n);
		ret = (int)n;
		break;
	}
	case OP_READDIR:
		ret = 0;
		break;
	case OP_WRITE: {
		const struct f_write_in *w = op;
		if (!in) {
			ret = -ENOENT;
			break;
		}
		if (w->size > dlen) {
			ret = -EINVAL;
			break;
		}
		if (w->offset > MAX_FILE_SIZE) {
			ret = -EFBIG;
			break;
		}
		if (w->offset + w->size > in->size && (ret = set_size(in, w->offset + w->size)) != 0)
			break;
		memcpy(in->data + w->offset, data, w->size);
		struct f_write_out *o = (struct f_write_out *)out;
		o->size = w->size;
		o->padding = 0;
		ret = sizeof(*o);
		break;
	}
	case OP_STATFS: {
		struct f_kstatfs *s = (struct f_kstatfs *)out;
		memset(s, 0, sizeof(*s));
		s->blocks = s->bfree = s->bavail = 1u << 20;
		s->files = s->ffree = 1u << 20;
		s->bsize = s->frsize = 4096;
		s->namelen = 255;
		ret = sizeof(*s);
		break;
	}
	case OP_RELEASE:
	case OP_RELEASEDIR:
	case OP_FLUSH:
	case OP_FSYNC:
	case OP_ACCESS:
	case OP_DESTROY:
		ret = 0;
		break;
	default:
		ret = -ENOSYS;
	}
	pthread_mutex_unlock(&fs_lock);
	return ret;
}

/* Size of the opcode's own header, i.e. of its first in-argument (what the ring puts in op_in). */
static uint32_t op_header_size(uint32_t opcode)
{
	switch (opcode) {
	case OP_FORGET: return sizeof(struct f_forget_in);
	case OP_BATCH_FORGET: return sizeof(struct f_batch_forget_in);
	case OP_GETATTR: return sizeof(struct f_getattr_in);
	case OP_SETATTR: return sizeof(struct f_setattr_in);
	case OP_OPEN: case OP_OPENDIR: return sizeof(struct f_open_in);
	case OP_CREATE: return sizeof(struct f_create_in);
	case OP_READ: case OP_READDIR: return sizeof(struct f_read_in);
	case OP_WRITE: return sizeof(struct f_write_in);
	case OP_RELEASE: case OP_RELEASEDIR: return sizeof(struct f_release_in);
	case OP_FLUSH: return sizeof(struct f_flush_in);
	case OP_FSYNC: return sizeof(struct f_fsync_in);
	case OP_ACCESS: return sizeof(struct f_access_in);
	case OP_INIT: return sizeof(struct f_init_in);
	case OP_INTERRUPT: return 8;
	default: return 0; /* LOOKUP, UNLINK (name only), STATFS, DESTROY: none */
	}
}

/* ------------------------------------------------------------ /dev/fuse transport */

static int devfd = -1;
static int use_uring, pin_queues = 1;
static const char *mountpoint;

static int dev_reply(uint64_t unique, int ret, const void *out)
{
	struct f_out_header oh = {.unique = unique};
	struct iovec iov[2] = {{&oh, sizeof(oh)}, {(void *)out, 0}};
	if (ret < 0)
		oh.error = ret;
	else
		iov[1].iov_len = (size_t)ret;
	oh.len = (uint32_t)(sizeof(oh) + iov[1].iov_len);
	ssize_t n = writev(devfd, iov, 2);
	if (n < 0 && errno != ENOENT) /* ENOENT: the request was interrupted meanwhile */
		return -errno;
	return 0;
}

static void *dev_loop(void *arg)
{
	(void)arg;
	char *buf = malloc(DEV_BUF_SZ), *out = malloc(PAYLOAD_SZ);
	if (!buf || !out)
		die("malloc");
	for (;;) {
		ssize_t n = read(devfd, buf, DEV_BUF_SZ);
		if (n < 0) {
			if (errno == EINTR || errno == ENOENT || errno == EAGAIN)
				continue;
			if (errno == ENODEV) /* unmounted */
				break;
			die("read /dev/fuse");
		}
		if ((size_t)n < sizeof(struct f_in_header))
			continue;
		const struct f_in_header *ih = (const void *)buf;
		uint32_t hs = op_header_size(ih->opcode);
		if (sizeof(*ih) + hs > (size_t)n)
			hs = (uint32_t)(n - sizeof(*ih));
		const char *op = buf + sizeof(*ih);
		if (ih->opcode == OP_FORGET || ih->opcode == OP_BATCH_FORGET)
			atomic_fetch_add(&stats->forgets, 1);
		else
			atomic_fetch_add(&stats->dev_reqs, 1);
		int ret = handle(ih, op, op + hs, (uint32_t)(n - sizeof(*ih) - hs), out);
		if (ret != NO_REPLY && dev_reply(ih->unique, ret, out) < 0)
			die("writev /dev/fuse");
	}
	free(buf);
	free(out);
	return NULL;
}

/* FUSE_INIT, always over /dev/fuse. Returns 0, or exits when the kernel cannot do io_uring. */
static void do_init(void)
{
	char *buf = malloc(DEV_BUF_SZ);
	if (!buf)
		die("malloc");
	ssize_t n;
	do
		n = read(devfd, buf, DEV_BUF_SZ);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die("read FUSE_INIT");
	const struct f_in_header *ih = (const void *)buf;
	const struct f_init_in *ii = (const void *)(buf + sizeof(*ih));
	if (ih->opcode != OP_INIT)
		die("first request is not FUSE_INIT");
	int ext = (ii->flags & F_INIT_EXT) != 0;
	int kernel_uring = ext && (ii->flags2 & F2_OVER_IO_URING);
	printf("kernel_fuse=%u.%u kernel_offers_io_uring=%d\n", ii->major, ii->minor, kernel_uring);
	fflush(stdout);
	struct f_init_out io = {0};
	io.major = 7;
	io.minor = ii->minor < 42 ? ii->minor : 42;
	io.max_readahead = ii->max_readahead;
	io.flags = (ii->flags & (F_BIG_WRITES | F_PARALLEL_DIROPS | F_MAX_PAGES)) | F_INIT_EXT;
	io.max_background = 64;
	io.congestion_threshold = 48;
	io.max_write = MAX_WRITE;
	io.time_gran = 1;
	io.max_pages = MAX_PAGES;
	if (use_uring)
		io.flags2 = F2_OVER_IO_URING;
	/* PROTO_FORCE_URING=1: register the rings even so, to see what the kernel answers */
	const char *force = getenv("PROTO_FORCE_URING");
	if (use_uring && !kernel_uring && !(force && strcmp(force, "1") == 0)) {
		printf("uring_error=the kernel's FUSE_INIT does not offer FUSE_OVER_IO_URING "
		       "(protocol %u.%u, flags2=%#x; enable_uring off or kernel < 6.14)\n",
		       ii->major, ii->minor, ext ? ii->flags2 : 0);
		fflush(stdout);
		dev_reply(ih->unique, -EPROTO, NULL);
		umount2(mountpoint, MNT_DETACH);
		exit(3);
	}
	if (dev_reply(ih->unique, sizeof(io), &io) < 0)
		die("reply FUSE_INIT");
	free(buf);
}

/* ------------------------------------------------------------ io_uring transport */

struct ring {
	int fd;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
	char *sqes; /* 128-byte SQEs */
	unsigned to_submit;
};

static int ring_setup(struct ring *r, unsigned entries, unsigned *flags_used)
{
	struct io_uring_params p;
	const unsigned tries[] = {
		IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SQE128,
	};
	int fd = -1;
	for (unsigned i = 0; i < 2 && fd < 0; i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		fd = (int)syscall(__NR_io_uring_setup, entries, &p);
		*flags_used = tries[i];
	}
	if (fd < 0)
		return -errno;
	size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_sz = cq_sz = sq_sz > cq_sz ? sq_sz : cq_sz;
	char *sq = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
			IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return -errno;
	char *cq = sq;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		cq = mmap(NULL, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
			  IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			return -errno;
	}
	r->sqes = mmap(NULL, p.sq_entries * 128, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	r->fd = fd;
	r->sq_head = (unsigned *)(sq + p.sq_off.head);
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	r->to_submit = 0;
	return 0;
}

/* Queue one FUSE uring command; the SQ has a slot per ring entry, so it never overflows. */
static void ring_push_cmd(struct ring *r, uint32_t cmd_op, uint16_t qid, uint64_t commit_id,
			  const struct iovec *iov, uint64_t user_data)
{
	unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = (struct io_uring_sqe *)(r->sqes + (size_t)idx * 128);
	memset(sqe, 0, 128);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = devfd;
	sqe->cmd_op = cmd_op;
	if (iov) {
		sqe->addr = (uint64_t)(uintptr_t)iov;
		sqe->len = 2; /* iov[0]: the headers, iov[1]: the payload */
	}
	sqe->user_data = user_data;
	struct f_uring_cmd_req *req = (struct f_uring_cmd_req *)((char *)sqe + 48); /* sqe->cmd */
	req->qid = qid;
	req->commit_id = commit_id;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	r->to_submit++;
}

static int ring_enter(struct ring *r, unsigned min_complete)
{
	int n = (int)syscall(__NR_io_uring_enter, r->fd, r->to_submit, min_complete,
			     min_complete ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
	if (n < 0)
		return -errno;
	r->to_submit -= (unsigned)n < r->to_submit ? (unsigned)n : r->to_submit;
	return n;
}

struct queue {
	int qid;
	pthread_t thread;
	struct ring ring;
	struct f_uring_req_header *hdr[QUEUE_DEPTH];
	char *payload[QUEUE_DEPTH];
	struct iovec iov[QUEUE_DEPTH][2];
	/* set-up outcome, for the main thread */
	int setup_err;
	unsigned ring_flags;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int setup_done;
};

static void queue_setup_done(struct queue *q, int err)
{
	pthread_mutex_lock(&q->mu);
	q->setup_err = err;
	q->setup_done = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void *uring_loop(void *arg)
{
	struct queue *q = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(q->qid, &set);
	/* the kernel queues a request on the ring of the CPU its caller runs on */
	if (pin_queues)
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	int err = ring_setup(&q->ring, QUEUE_DEPTH, &q->ring_flags);
	if (err) {
		queue_setup_done(q, err);
		return NULL;
	}
	struct ring *r = &q->ring;
	for (int e = 0; e < QUEUE_DEPTH; e++) {
		q->hdr[e] = aligned_alloc(4096, 4096);
		q->payload[e] = aligned_alloc(4096, PAYLOAD_SZ);
		if (!q->hdr[e] || !q->payload[e])
			die("aligned_alloc");
		memset(q->hdr[e], 0, 4096);
		memset(q->payload[e], 0, PAYLOAD_SZ);
		q->iov[e][0] = (struct iovec){q->hdr[e], sizeof(struct f_uring_req_header)};
		q->iov[e][1] = (struct iovec){q->payload[e], PAYLOAD_SZ};
		ring_push_cmd(r, URING_CMD_REGISTER, (uint16_t)q->qid, 0, q->iov[e], (uint64_t)e);
	}
	int n = ring_enter(r, 0);
	if (n < 0) {
		queue_setup_done(q, n);
		return NULL;
	}
	/* A refused REGISTER completes at once with the kernel's error. */
	unsigned head = *r->cq_head;
	if (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
		int res = r->cqes[head & *r->cq_mask].res;
		if (res < 0) {
			queue_setup_done(q, res);
			return NULL;
		}
	}
	queue_setup_done(q, 0);
	for (;;) {
		n = ring_enter(r, 1);
		if (n < 0) {
			if (n == -EINTR || n == -EAGAIN || n == -EBUSY)
				continue;
			errno = -n;
			die("io_uring_enter");
		}
		head = *r->cq_head;
		unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
		int stop = 0;
		for (; head != tail; head++) {
			const struct io_uring_cqe *cqe = &r->cqes[head & *r->cq_mask];
			int e = (int)cqe->user_data;
			if (cqe->res < 0) {
				/* ENOTCONN: unmounted (the kernel tears the ring down) */
				if (cqe->res != -ENOTCONN && cqe->res != -ECANCELED)
					fprintf(stderr, "fuse_uring_proto: queue %d entry %d: %s\n",
						q->qid, e, strerror(-cqe->res));
				stop = 1;
				continue;
			}
			struct f_uring_req_header *h = q->hdr[e];
			struct f_in_header ih;
			memcpy(&ih, h->in_out, sizeof(ih));
			uint64_t commit_id = h->ring_ent_in_out.commit_id;
			uint32_t plen = h->ring_ent_in_out.payload_sz;
			atomic_fetch_add(&stats->ring_reqs, 1);
			int ret = handle(&ih, h->op_in, q->payload[e], plen, q->payload[e]);
			if (ret == NO_REPLY) /* never on the ring; answer anyway so the entry returns */
				ret = -ENOSYS;
			struct f_out_header oh = {.unique = ih.unique};
			oh.error = ret < 0 ? ret : 0;
			oh.len = (uint32_t)sizeof(oh) + (ret > 0 ? (uint32_t)ret : 0);
			memcpy(h->in_out, &oh, sizeof(oh));
			h->ring_ent_in_out.payload_sz = ret > 0 ? (uint32_t)ret : 0;
			ring_push_cmd(r, URING_CMD_COMMIT_AND_FETCH, (uint16_t)q->qid, commit_id, NULL,
				      (uint64_t)e);
		}
		__atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
		if (stop && r->to_submit == 0)
			break;
		if (stop) { /* submit what is pending, then leave */
			ring_enter(r, 0);
			break;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ serve */

static int possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	int lo = 0, hi = 0;
	if (!f || fscanf(f, "%d-%d", &lo, &hi) < 1)
		die("/sys/devices/system/cpu/possible");
	fclose(f);
	return (hi > lo ? hi : lo) + 1;
}

static int serve(const char *mnt, const char *transport, const char *stats_path, int threads)
{
	if (strcmp(transport, "uring") == 0)
		use_uring = 1;
	else if (strcmp(transport, "uring-unpinned") == 0)
		use_uring = 1, pin_queues = 0;
	else if (strcmp(transport, "devfuse") != 0) {
		fprintf(stderr, "fuse_uring_proto: transport is devfuse, uring or uring-unpinned, not %s\n",
			transport);
		return 2;
	}
	stats = map_stats(stats_path, 1);
	stats->server_pid = (uint64_t)getpid();
	clock_gettime(CLOCK_REALTIME, &t_start);
	new_inode(0);                  /* inode 0: unused */
	new_inode(S_IFDIR | 0755);     /* inode 1: the root */
	devfd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (devfd < 0)
		die("/dev/fuse");
	char opts[128];
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", devfd);
	if (mount("fuse_uring_proto", mnt, "fuse", MS_NOSUID | MS_NODEV, opts) != 0)
		die("mount");
	mountpoint = mnt;
	do_init();
	int nq = possible_cpus();
	struct queue *qs = calloc((size_t)nq, sizeof(*qs));
	if (!qs)
		die("calloc");
	int ndev = use_uring ? 1 : threads; /* with io_uring, /dev/fuse still carries FORGETs */
	pthread_t *dev = calloc((size_t)ndev, sizeof(*dev));
	if (use_uring) {
		for (int i = 0; i < nq; i++) {
			qs[i].qid = i;
			pthread_mutex_init(&qs[i].mu, NULL);
			pthread_cond_init(&qs[i].cv, NULL);
			if (pthread_create(&qs[i].thread, NULL, uring_loop, &qs[i]) != 0)
				die("pthread_create");
		}
		for (int i = 0; i < nq; i++) {
			pthread_mutex_lock(&qs[i].mu);
			while (!qs[i].setup_done)
				pthread_cond_wait(&qs[i].cv, &qs[i].mu);
			pthread_mutex_unlock(&qs[i].mu);
			if (qs[i].setup_err) {
				printf("uring_error=queue %d: %s: %s (%d)\n", i,
				       qs[i].ring_flags ? "FUSE_IO_URING_CMD_REGISTER" : "io_uring_setup",
				       strerror(-qs[i].setup_err), qs[i].setup_err);
				fflush(stdout);
				umount2(mnt, MNT_DETACH);
				exit(3);
			}
		}
		printf("queues=%d depth=%d ring_flags=%#x\n", nq, QUEUE_DEPTH, qs[0].ring_flags);
	}
	for (int i = 0; i < ndev; i++)
		if (pthread_create(&dev[i], NULL, dev_loop, NULL) != 0)
			die("pthread_create");
	printf("ready transport=%s dev_threads=%d\n", transport, ndev);
	fflush(stdout);
	for (int i = 0; i < ndev; i++)
		pthread_join(dev[i], NULL);
	if (use_uring)
		for (int i = 0; i < nq; i++)
			pthread_join(qs[i].thread, NULL);
	printf("done ring_reqs=%llu dev_reqs=%llu forgets=%llu\n",
	       (unsigned long long)stats->ring_reqs, (unsigned long long)stats->dev_reqs,
	       (unsigned long long)stats->forgets);
	return 0;
}

/* ------------------------------------------------------------ timed client loops */

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct snap {
	uint64_t ring_reqs, dev_reqs;
	double server_cpu_us, client_cpu_us;
};

/* CPU time of all the server's threads (user + system, ns in schedstat's first field) */
static double server_cpu_us(void)
{
	if (!stats || !stats->server_pid)
		return 0;
	char dir[64], path[512];
	snprintf(dir, sizeof(dir), "/proc/%llu/task", (unsigned long long)stats->server_pid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	double sum = 0;
	for (struct dirent *de; (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/schedstat", dir, de->d_name);
		FILE *f = fopen(path, "r");
		unsigned long long ns;
		if (f && fscanf(f, "%llu", &ns) == 1)
			sum += (double)ns / 1e3;
		if (f)
			fclose(f);
	}
	closedir(d);
	return sum;
}

static struct snap take_snap(void)
{
	struct snap s;
	struct timespec ts;
	s.ring_reqs = stats ? atomic_load(&stats->ring_reqs) : 0;
	s.dev_reqs = stats ? atomic_load(&stats->dev_reqs) : 0;
	s.server_cpu_us = server_cpu_us();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	s.client_cpu_us = (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
	struct rusage ru; /* the PROTO_JOBS children, once waited for */
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
		s.client_cpu_us += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
				   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	return s;
}

static void report(double t0, long ops, struct snap s0)
{
	double t1 = now_us();
	struct snap s1 = take_snap();
	printf("us_per_op=%.3f ops=%ld ring_reqs=%llu dev_reqs=%llu server_cpu_us_per_op=%.3f "
	       "client_cpu_us_per_op=%.3f\n",
	       (t1 - t0) / (double)ops, ops, (unsigned long long)(s1.ring_reqs - s0.ring_reqs),
	       (unsigned long long)(s1.dev_reqs - s0.dev_reqs),
	       (s1.server_cpu_us - s0.server_cpu_us) / (double)ops,
	       (s1.client_cpu_us - s0.client_cpu_us) / (double)ops);
}

/* The timed part of a workload over items [from, to); returns the operations done. */
static long timed_loop(const char *cmd, const char *path, long from, long to)
{
	char name[4096];
	if (strcmp(cmd, "create") == 0) {
		for (long i = from; i < to; i++) {
			snprintf(name, sizeof(name), "%s/c%07ld", path, i);
			int fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd < 0 || close(fd) != 0)
				die(name);
		}
		for (long i = from; i < to; i++) {
			snprintf(name, sizeof(name), "%s/c%07ld", path, i);
			if (unlink(name) != 0)
				die(name);
		}
		return 2 * (to - from);
	}
	if (strcmp(cmd, "stat") == 0) {
		struct stat st;
		for (long i = from; i < to; i++) {
			snprintf(name, sizeof(name), "%s/s%07ld", path, i);
			if (stat(name, &st) != 0)
				die(name);
		}
		return to - from;
	}
	/* randread, randwrite */
	int wr = cmd[4] == 'w';
	int fd = open(path, O_RDWR);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 4096)
		die(path);
	uint64_t blocks = (uint64_t)st.st_size / 4096;
	char *buf = aligned_alloc(4096, 4096);
	if (!buf)
		die("aligned_alloc");
	memset(buf, 0x5a, 4096);
	rng ^= (uint64_t)(from + 1) * 0x2545f4914f6cdd1dull;
	for (long i = from; i < to; i++) {
		off_t off = (off_t)(next_rand() % blocks) * 4096;
		if ((wr ? pwrite(fd, buf, 4096, off) : pread(fd, buf, 4096, off)) != 4096)
			die(wr ? "pwrite" : "pread");
	}
	close(fd);
	free(buf);
	return to - from;
}

static int client(int argc, char **argv)
{
	const char *cmd = argv[1], *path = argv[2];
	long n = argc > 3 ? atol(argv[3]) : 0;
	if (argc > 4)
		stats = map_stats(argv[4], 0);
	char name[4096];
	if (strcmp(cmd, "mkfiles") == 0) {
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s/s%07ld", path, i);
			int fd = open(name, O_CREAT | O_WRONLY, 0644);
			if (fd < 0 || close(fd) != 0)
				die(name);
		}
		return 0;
	}
	if (strcmp(cmd, "fill") == 0) {
		int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		char *buf = calloc(1, 128 * 1024);
		if (fd < 0 || !buf)
			die(path);
		for (long i = 0; i < n * 8; i++)
			if (write(fd, buf, 128 * 1024) != 128 * 1024)
				die("fill write");
		close(fd);
		free(buf);
		return 0;
	}
	if (strcmp(cmd, "create") != 0 && strcmp(cmd, "stat") != 0 &&
	    strcmp(cmd, "randread") != 0 && strcmp(cmd, "randwrite") != 0) {
		fprintf(stderr, "fuse_uring_proto: unknown command %s\n", cmd);
		return 2;
	}
	/* PROTO_JOBS=P: P processes share the N items, all at once (throughput: wall / total) */
	const char *j = getenv("PROTO_JOBS");
	long jobs = j ? atol(j) : 1;
	if (jobs < 1 || jobs > 64 || jobs > n) {
		fprintf(stderr, "fuse_uring_proto: PROTO_JOBS must be 1..64 and at most N\n");
		return 2;
	}
	if (cmd[0] == 'r') /* warm-up of the random I/O: a tenth, untimed */
		timed_loop(cmd, path, n, n + n / 10 + 1);
	struct snap s0 = take_snap();
	double t0 = now_us();
	long ops = 0;
	if (jobs == 1) {
		ops = timed_loop(cmd, path, 0, n);
	} else {
		for (long k = 0; k < jobs; k++) {
			pid_t pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				timed_loop(cmd, path, k * n / jobs, (k + 1) * n / jobs);
				_exit(0);
			}
		}
		for (long k = 0; k < jobs; k++) {
			int status;
			if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				fprintf(stderr, "fuse_uring_proto: a %s job failed\n", cmd);
				return 1;
			}
		}
		ops = strcmp(cmd, "create") == 0 ? 2 * n : n;
	}
	report(t0, ops, s0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 2);
	if (argc >= 3 && strcmp(argv[1], "serve") != 0)
		return client(argc, argv);
	fprintf(stderr, "usage: fuse_uring_proto serve MNT devfuse|uring|uring-unpinned STATS [THREADS]\n"
			"       fuse_uring_proto create|mkfiles|stat|fill|randread|randwrite PATH N "
			"[STATS]\n");
	return 2;
}
