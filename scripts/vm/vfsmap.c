/*
 * vfsmap: a small static helper for the virtio-fs sequence of the sealfs VM
 * tests (scripts/vm.sh, sequence C). It runs in the guest (on the virtio-fs
 * mount, where a MAP_SHARED mapping is a DAX mapping of the window) and on the
 * host (on the sealfs FUSE mount), so both sides can write and check the same
 * bytes:
 *
 *   vfsmap write  FILE SEED SPEC...   store the pattern at each SPEC through a
 *                                     MAP_SHARED mapping of the whole file, then
 *                                     msync(MS_SYNC) and fsync
 *   vfsmap pwrite FILE SEED SPEC...   the same bytes with pwrite(2), then fsync
 *   vfsmap check  FILE SEED SPEC...   read(2) the whole file: the pattern at each
 *                                     SPEC, zero everywhere else
 *   vfsmap mcheck FILE SEED SPEC...   the same check through a MAP_SHARED mapping
 *   vfsmap hold   FILE SEED OFF LEN READY GO SECS
 *                                     map the file read-only, read [OFF, OFF+LEN),
 *                                     create the file READY, wait (at most SECS
 *                                     seconds) until the file GO exists, then read
 *                                     the same bytes through the same mapping again
 *
 * A SPEC is OFF:LEN in bytes. The pattern byte at file offset o for seed s is
 * never zero, so zeros read where the pattern was are told apart. Later SPECs
 * win where they overlap. `hold` prints "before: WHAT" and "after: WHAT", WHAT
 * being "pattern", "zero", "other" or "SIGBUS", followed by the first bytes in
 * hex. Exit 0 ok, 1 failure (a message says which byte), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct spec {
	uint64_t off, len;
};

static unsigned char pattern(unsigned seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)seed * 0xC2B2AE3D27D4EB4FULL;
	x ^= x >> 29;
	return (unsigned char)(1 + (x % 255));
}

static int usage(void)
{
	fprintf(stderr, "usage: vfsmap write|pwrite|check|mcheck FILE SEED OFF:LEN...\n"
			"       vfsmap hold FILE SEED OFF LEN READY GO SECS\n");
	return 2;
}

static int parse_specs(int n, char **av, struct spec *s)
{
	for (int i = 0; i < n; i++) {
		char *end;
		s[i].off = strtoull(av[i], &end, 0);
		if (*end != ':')
			return -1;
		s[i].len = strtoull(end + 1, &end, 0);
		if (*end || s[i].len == 0)
			return -1;
	}
	return 0;
}

/* The whole file as it should be: zero, with the pattern at each spec. */
static unsigned char *expected(uint64_t size, unsigned seed, int n, const struct spec *s)
{
	unsigned char *e = calloc(1, size ? size : 1);
	if (!e)
		return NULL;
	for (int i = 0; i < n; i++)
		for (uint64_t o = s[i].off; o < s[i].off + s[i].len && o < size; o++)
			e[o] = pattern(seed, o);
	return e;
}

static int compare(const char *what, const unsigned char *got, const unsigned char *want, uint64_t size)
{
	uint64_t bad = 0, first = 0;
	for (uint64_t o = 0; o < size; o++)
		if (got[o] != want[o]) {
			if (!bad)
				first = o;
			bad++;
		}
	if (bad) {
		printf("%s: %llu of %llu bytes differ; first at offset %llu: expected 0x%02x, got 0x%02x\n", what,
		       (unsigned long long)bad, (unsigned long long)size, (unsigned long long)first, want[first],
		       got[first]);
		return 1;
	}
	printf("%s: all %llu bytes as expected\n", what, (unsigned long long)size);
	return 0;
}

static int write_or_check(const char *mode, const char *path, unsigned seed, int n, struct spec *s)
{
	int writing = !strcmp(mode, "write") || !strcmp(mode, "pwrite");
	int fd = open(path, writing ? O_RDWR : O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "vfsmap: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		fprintf(stderr, "vfsmap: fstat %s: %s\n", path, strerror(errno));
		return 1;
	}
	uint64_t size = (uint64_t)st.st_size;
	for (int i = 0; i < n; i++)
		if (s[i].off + s[i].len > size) {
			fprintf(stderr, "vfsmap: %llu:%llu lies beyond the file's %llu bytes\n",
				(unsigned long long)s[i].off, (unsigned long long)s[i].len, (unsigned long long)size);
			return 1;
		}
	if (!strcmp(mode, "pwrite")) {
		for (int i = 0; i < n; i++) {
			unsigned char *b = malloc(s[i].len);
			if (!b)
				return 1;
			for (uint64_t k = 0; k < s[i].len; k++)
				b[k] = pattern(seed, s[i].off + k);
			ssize_t w = pwrite(fd, b, s[i].len, (off_t)s[i].off);
			free(b);
			if (w != (ssize_t)s[i].len) {
				fprintf(stderr, "vfsmap: pwrite %s at %llu: %s\n", path, (unsigned long long)s[i].off,
					w < 0 ? strerror(errno) : "short write");
				return 1;
			}
		}
		if (fsync(fd) < 0) {
			fprintf(stderr, "vfsmap: fsync %s: %s\n", path, strerror(errno));
			return 1;
		}
		printf("pwrite: %d ranges written and fsynced\n", n);
		return 0;
	}
	if (!strcmp(mode, "check")) {
		unsigned char *got = malloc(size ? size : 1), *want = expected(size, seed, n, s);
		if (!got || !want)
			return 1;
		uint64_t done = 0;
		while (done < size) {
			ssize_t r = pread(fd, got + done, size - done, (off_t)done);
			if (r <= 0) {
				fprintf(stderr, "vfsmap: read %s at %llu: %s\n", path, (unsigned long long)done,
					r < 0 ? strerror(errno) : "unexpected end of file");
				return 1;
			}
			done += (uint64_t)r;
		}
		return compare("read(2)", got, want, size);
	}
	if (size == 0) {
		fprintf(stderr, "vfsmap: %s is empty; nothing to map\n", path);
		return 1;
	}
	unsigned char *m = mmap(NULL, size, writing ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "vfsmap: mmap %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (writing) {
		for (int i = 0; i < n; i++)
			for (uint64_t k = 0; k < s[i].len; k++)
				m[s[i].off + k] = pattern(seed, s[i].off + k);
		if (msync(m, size, MS_SYNC) < 0 || fsync(fd) < 0) {
			fprintf(stderr, "vfsmap: msync/fsync %s: %s\n", path, strerror(errno));
			return 1;
		}
		printf("write: %d ranges stored through the mapping, msynced and fsynced\n", n);
		return 0;
	}
	unsigned char *want = expected(size, seed, n, s);
	if (!want)
		return 1;
	return compare("mapping", m, want, size);
}

static sigjmp_buf bus_jump;
static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

/* Reads [off, off+len) of the mapping into buf; "SIGBUS" if the read faulted. */
static const char *sample(volatile unsigned char *m, unsigned seed, uint64_t off, uint64_t len, unsigned char *buf)
{
	if (sigsetjmp(bus_jump, 1))
		return "SIGBUS";
	for (uint64_t k = 0; k < len; k++)
		buf[k] = m[off + k];
	int zero = 1, pat = 1;
	for (uint64_t k = 0; k < len; k++) {
		if (buf[k])
			zero = 0;
		if (buf[k] != pattern(seed, off + k))
			pat = 0;
	}
	return pat ? "pattern" : zero ? "zero" : "other";
}

static void show(const char *when, const char *what, const unsigned char *buf, uint64_t len)
{
	printf("%s: %s", when, what);
	if (strcmp(what, "SIGBUS")) {
		printf(" (");
		for (uint64_t k = 0; k < len && k < 16; k++)
			printf("%s%02x", k ? " " : "", buf[k]);
		printf("%s)", len > 16 ? " ..." : "");
	}
	printf("\n");
	fflush(stdout);
}

static int hold(char **av)
{
	const char *path = av[0], *ready = av[4], *go = av[5];
	unsigned seed = (unsigned)strtoul(av[1], NULL, 0);
	uint64_t off = strtoull(av[2], NULL, 0), len = strtoull(av[3], NULL, 0);
	int secs = atoi(av[6]);
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vfsmap: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (len == 0 || len > 4096 || off + len > (uint64_t)st.st_size) {
		fprintf(stderr, "vfsmap: %llu:%llu is not within the file (at most 4096 bytes)\n",
			(unsigned long long)off, (unsigned long long)len);
		return 2;
	}
	volatile unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "vfsmap: mmap %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = on_bus;
	sigaction(SIGBUS, &sa, NULL);
	unsigned char buf[4096];
	show("before", sample(m, seed, off, len, buf), buf, len);
	int rfd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (rfd < 0) {
		fprintf(stderr, "vfsmap: create %s: %s\n", ready, strerror(errno));
		return 1;
	}
	close(rfd);
	struct timespec t = { 0, 50 * 1000 * 1000 };
	for (int i = 0; access(go, F_OK) != 0; i++) {
		if (i >= secs * 20) {
			printf("after: not read (no %s within %d s)\n", go, secs);
			return 1;
		}
		nanosleep(&t, NULL);
	}
	show("after", sample(m, seed, off, len, buf), buf, len);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "hold"))
		return argc == 9 ? hold(argv + 2) : usage();
	if (strcmp(argv[1], "write") && strcmp(argv[1], "pwrite") && strcmp(argv[1], "check") &&
	    strcmp(argv[1], "mcheck"))
		return usage();
	if (argc < 4)
		return usage();
	int n = argc - 4;
	struct spec *s = calloc((size_t)n + 1, sizeof *s);
	if (!s || parse_specs(n, argv + 4, s) < 0)
		return usage();
	return write_or_check(argv[1], argv[2], (unsigned)strtoul(argv[3], NULL, 0), n, s);
}
