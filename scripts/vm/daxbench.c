/*
 * daxbench: a small static helper for the sealfs VM tests (scripts/vm.sh).
 *
 * It touches a device-DAX node (or any file) the way sealfs does not, so the
 * guest tests can compare and poke:
 *
 *   daxbench cpu                 flush instructions CPUID offers, and the one used
 *   daxbench bw-map DEV MIB      write then read MIB MiB in 1 MiB blocks through a
 *                                MAP_SHARED mapping of DEV (writes are written back
 *                                with clwb/clflushopt/clflush + sfence per block)
 *   daxbench bw-file FILE MIB    write(2) MIB MiB in 1 MiB blocks + fsync, then read(2)
 *                                them back; FILE is created/truncated
 *   daxbench peek DEV OFF LEN    copy LEN bytes at offset OFF of the mapping to stdout
 *   daxbench poke DEV OFF        copy stdin to offset OFF of the mapping (flushed)
 *   daxbench tree DIR            one line per entry below DIR (unsorted): path, type,
 *                                mode, and size, link count and FNV-1a hash of the
 *                                contents for files, the target for symlinks — a
 *                                manifest made in one pass (lstat + read per file)
 *
 * Device DAX refuses read(2)/pwrite(2) and 4 KiB-offset mappings on a 2 MiB
 * device, so everything maps from offset 0 with lengths rounded up to 2 MiB.
 * Both bandwidth modes stamp every block and check the stamps on read-back.
 * Output is one line of key=value pairs; exit 0 ok, 1 failure, 2 usage.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)
#define MAP_ALIGN (2 * MIB)
#define LINE 64

enum flush_kind { FLUSH_CLFLUSH, FLUSH_CLFLUSHOPT, FLUSH_CLWB };
static enum flush_kind flush_kind = FLUSH_CLFLUSH;
static int has_clflushopt, has_clwb;

static void detect_cpu(void)
{
	unsigned a, b, c, d;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		has_clflushopt = (b >> 23) & 1;
		has_clwb = (b >> 24) & 1;
	}
	flush_kind = has_clwb ? FLUSH_CLWB : has_clflushopt ? FLUSH_CLFLUSHOPT : FLUSH_CLFLUSH;
}

static const char *flush_name(void)
{
	return flush_kind == FLUSH_CLWB ? "clwb" : flush_kind == FLUSH_CLFLUSHOPT ? "clflushopt" : "clflush";
}

/* Write back [p, p+len) from the CPU caches, then order it (sfence). */
static void flush_range(volatile char *p, size_t len)
{
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(LINE - 1);
	uintptr_t end = (uintptr_t)p + len;
	for (uintptr_t x = start; x < end; x += LINE) {
		volatile char *q = (volatile char *)x;
		switch (flush_kind) {
		case FLUSH_CLWB:
			__asm__ volatile("clwb %0" : "+m"(*q));
			break;
		case FLUSH_CLFLUSHOPT:
			__asm__ volatile("clflushopt %0" : "+m"(*q));
			break;
		default:
			__asm__ volatile("clflush %0" : "+m"(*q));
		}
	}
	__asm__ volatile("sfence" ::: "memory");
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "daxbench: %s %s: %s\n", what, path ? path : "", strerror(errno));
	exit(1);
}

static char *map_dev(const char *path, size_t len, int *fd_out)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		die("open", path);
	size_t maplen = (len + MAP_ALIGN - 1) & ~(MAP_ALIGN - 1);
	char *m = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die("mmap", path);
	*fd_out = fd;
	return m;
}

static void stamp(char *blk, unsigned long i)
{
	memcpy(blk, &i, sizeof i);
	memcpy(blk + MIB - sizeof i, &i, sizeof i);
}

static int stamp_ok(const char *blk, unsigned long i)
{
	unsigned long a, b;
	memcpy(&a, blk, sizeof a);
	memcpy(&b, blk + MIB - sizeof b, sizeof b);
	return a == i && b == i;
}

static char *pattern_block(void)
{
	char *buf = aligned_alloc(4096, MIB);
	if (!buf)
		die("alloc", NULL);
	for (size_t i = 0; i < MIB; i++)
		buf[i] = (char)(i * 131 + 7);
	return buf;
}

static int bw_map(const char *dev, unsigned long mib)
{
	int fd;
	char *m = map_dev(dev, mib * MIB, &fd);
	char *buf = pattern_block();
	double t0 = now();
	for (unsigned long i = 0; i < mib; i++) {
		stamp(buf, i);
		memcpy(m + i * MIB, buf, MIB);
		flush_range(m + i * MIB, MIB);
	}
	double t1 = now();
	unsigned long bad = 0;
	for (unsigned long i = 0; i < mib; i++) {
		memcpy(buf, m + i * MIB, MIB);
		bad += !stamp_ok(buf, i);
	}
	double t2 = now();
	printf("mode=map flush=%s mib=%lu write_s=%.3f read_s=%.3f write_MBps=%.1f read_MBps=%.1f bad_blocks=%lu\n",
	       flush_name(), mib, t1 - t0, t2 - t1, mib / (t1 - t0), mib / (t2 - t1), bad);
	return bad ? 1 : 0;
}

static int bw_file(const char *path, unsigned long mib)
{
	char *buf = pattern_block();
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		die("open", path);
	double t0 = now();
	for (unsigned long i = 0; i < mib; i++) {
		stamp(buf, i);
		size_t done = 0;
		while (done < MIB) {
			ssize_t n = write(fd, buf + done, MIB - done);
			if (n <= 0)
				die("write", path);
			done += n;
		}
	}
	if (fsync(fd))
		die("fsync", path);
	if (close(fd))
		die("close", path);
	double t1 = now();
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open", path);
	unsigned long bad = 0;
	for (unsigned long i = 0; i < mib; i++) {
		size_t done = 0;
		while (done < MIB) {
			ssize_t n = read(fd, buf + done, MIB - done);
			if (n <= 0)
				die("read", path);
			done += n;
		}
		bad += !stamp_ok(buf, i);
	}
	close(fd);
	double t2 = now();
	printf("mode=file mib=%lu write_s=%.3f read_s=%.3f write_MBps=%.1f read_MBps=%.1f bad_blocks=%lu\n",
	       mib, t1 - t0, t2 - t1, mib / (t1 - t0), mib / (t2 - t1), bad);
	return bad ? 1 : 0;
}

static int peek(const char *dev, unsigned long off, unsigned long len)
{
	int fd;
	char *m = map_dev(dev, off + len, &fd);
	fwrite(m + off, 1, len, stdout);
	return fflush(stdout) ? 1 : 0;
}

static int poke(const char *dev, unsigned long off)
{
	static char in[1 << 16];
	size_t len = fread(in, 1, sizeof in, stdin);
	int fd;
	char *m = map_dev(dev, off + len, &fd);
	memcpy(m + off, in, len);
	flush_range(m + off, len);
	return 0;
}

static size_t tree_prefix;

static int tree_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	const char *rel = path + tree_prefix;
	if (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	if (type == FTW_D) {
		printf("%s d %04o\n", rel, (unsigned)(st->st_mode & 07777));
	} else if (type == FTW_SL) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n < 0)
			die("readlink", path);
		target[n] = 0;
		printf("%s l -> %s\n", rel, target);
	} else if (type == FTW_F && S_ISREG(st->st_mode)) {
		static char buf[1 << 20];
		uint64_t h = 0xcbf29ce484222325ULL, total = 0;
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			die("open", path);
		for (;;) {
			ssize_t n = read(fd, buf, sizeof buf);
			if (n < 0)
				die("read", path);
			if (n == 0)
				break;
			for (ssize_t i = 0; i < n; i++)
				h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ULL;
			total += n;
		}
		close(fd);
		printf("%s f %04o size=%lld read=%llu nlink=%lu fnv=%016llx\n", rel, (unsigned)(st->st_mode & 07777),
		       (long long)st->st_size, (unsigned long long)total, (unsigned long)st->st_nlink,
		       (unsigned long long)h);
	} else if (type == FTW_F) {
		printf("%s other %06o\n", rel, (unsigned)st->st_mode);
	} else {
		fprintf(stderr, "daxbench: cannot read %s\n", path);
		return 1;
	}
	return 0;
}

static int tree(const char *dir)
{
	tree_prefix = strlen(dir);
	return nftw(dir, tree_entry, 32, FTW_PHYS) ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: daxbench cpu | bw-map DEV MIB | bw-file FILE MIB | peek DEV OFF LEN | poke DEV OFF | tree DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	detect_cpu();
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "cpu")) {
		printf("clflush=1 clflushopt=%d clwb=%d used=%s\n", has_clflushopt, has_clwb, flush_name());
		return 0;
	}
	if (!strcmp(argv[1], "bw-map") && argc == 4)
		return bw_map(argv[2], strtoul(argv[3], NULL, 0));
	if (!strcmp(argv[1], "bw-file") && argc == 4)
		return bw_file(argv[2], strtoul(argv[3], NULL, 0));
	if (!strcmp(argv[1], "peek") && argc == 5)
		return peek(argv[2], strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
	if (!strcmp(argv[1], "poke") && argc == 4)
		return poke(argv[2], strtoul(argv[3], NULL, 0));
	if (!strcmp(argv[1], "tree") && argc == 3)
		return tree(argv[2]);
	usage();
	return 2;
}
