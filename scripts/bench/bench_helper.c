/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_helper.c - the small timed loops of scripts/bench.sh, compiled at run time with gcc.
 * Every subcommand prints one line "key=value ..." on stdout; the script parses it.
 *
 *   create_unlink DIR N     create N empty files (open O_CREAT|O_EXCL, close), unlink them
 *                           -> ops_per_s over the 2N operations
 *   mkfiles DIR N           create N empty files named f%07d (set-up for readdir/stat)
 *   readdir DIR             getdents64 over DIR -> entries, entries_per_s
 *   stat DIR N              fstatat every f%07d -> us_per_op (mean)
 *   fsync_small FILE N      N x (4 KiB pwrite appended + fsync) -> ops_per_s
 *   wloop FILE N            N x 4 KiB pwrite appended to a fresh FILE -> ops_per_s
 *   seal_unseal FILE N      N x (SEALFS_IOC_SEAL + SEALFS_IOC_UNSEAL) -> median_us, p99_us
 *   noop_ioctl FILE N       N x SEALFS_IOC_NOOP (one ioctl round trip) -> median_us, p99_us
 *   seal_replace FILE N     N x SEALFS_IOC_SEAL with SEALFS_SEAL_REPLACE (a seal cycle in one
 *                           round trip: each call releases the previous seal) -> median_us, p99_us
 *   holder_death FILE N     N x: a child seals FILE and pauses, SIGKILL it, time until
 *                           ftruncate stops failing with ETXTBSY -> median_us, max_us
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sealfs.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int name(char *buf, size_t n, const char *dir, const char *prefix, long i)
{
	return snprintf(buf, n, "%s/%s%07ld", dir, prefix, i);
}

static int create_unlink(const char *dir, long n)
{
	char p[4096];
	double t = now();
	for (long i = 0; i < n; i++) {
		name(p, sizeof p, dir, "c", i);
		int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			die(p);
		close(fd);
	}
	double tc = now() - t;
	t = now();
	for (long i = 0; i < n; i++) {
		name(p, sizeof p, dir, "c", i);
		if (unlink(p) < 0)
			die(p);
	}
	double tu = now() - t;
	printf("ops_per_s=%.1f create_per_s=%.1f unlink_per_s=%.1f\n", 2 * n / (tc + tu), n / tc,
	       n / tu);
	return 0;
}

static int mkfiles(const char *dir, long n)
{
	char p[4096];
	for (long i = 0; i < n; i++) {
		name(p, sizeof p, dir, "f", i);
		int fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			die(p);
		close(fd);
	}
	printf("files=%ld\n", n);
	return 0;
}

static int do_readdir(const char *dir)
{
	static char buf[1 << 16];
	double t = now();
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die(dir);
	long entries = 0;
	for (;;) {
		long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (r < 0)
			die("getdents64");
		if (r == 0)
			break;
		for (long off = 0; off < r;) {
			unsigned short reclen = *(unsigned short *)(buf + off + 16);
			entries++;
			off += reclen;
		}
	}
	close(fd);
	double el = now() - t;
	printf("entries=%ld entries_per_s=%.1f\n", entries, entries / el);
	return 0;
}

static int do_stat(const char *dir, long n)
{
	char p[64];
	struct stat st;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		die(dir);
	double t = now();
	for (long i = 0; i < n; i++) {
		snprintf(p, sizeof p, "f%07ld", i);
		if (fstatat(dfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die(p);
	}
	double el = now() - t;
	printf("us_per_op=%.3f stats_per_s=%.1f\n", el * 1e6 / n, n / el);
	return 0;
}

static int write_loop(const char *file, long n, int sync)
{
	static char buf[4096];
	memset(buf, 0xa5, sizeof buf);
	int fd = open(file, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		die(file);
	double t = now();
	for (long i = 0; i < n; i++) {
		if (pwrite(fd, buf, sizeof buf, i * (off_t)sizeof buf) != (ssize_t)sizeof buf)
			die("pwrite");
		if (sync && fsync(fd) < 0)
			die("fsync");
	}
	double el = now() - t;
	close(fd);
	printf("ops_per_s=%.1f us_per_op=%.3f\n", n / el, el * 1e6 / n);
	return 0;
}

/* Sorts the N latencies and prints their median, p99 and the mean over EL seconds. */
static void report(double *lat, long n, double el)
{
	qsort(lat, n, sizeof *lat, cmp_double);
	printf("median_us=%.3f p99_us=%.3f mean_us=%.3f\n", lat[n / 2], lat[n * 99 / 100],
	       el * 1e6 / n);
}

static int seal_unseal(const char *file, long n)
{
	int fd = open(file, O_CREAT | O_RDWR, 0644);
	if (fd < 0)
		die(file);
	if (pwrite(fd, "x", 1, 0) != 1)
		die("pwrite");
	struct sealfs_seal s = { 0, 0, 0, 0 };
	double *lat = malloc(n * sizeof *lat);
	/* a few warm-up rounds */
	for (int i = 0; i < 10; i++) {
		if (ioctl(fd, SEALFS_IOC_SEAL, &s) < 0)
			die("SEALFS_IOC_SEAL");
		if (ioctl(fd, SEALFS_IOC_UNSEAL, &s) < 0)
			die("SEALFS_IOC_UNSEAL");
	}
	double t0 = now();
	for (long i = 0; i < n; i++) {
		double t = now();
		if (ioctl(fd, SEALFS_IOC_SEAL, &s) < 0)
			die("SEALFS_IOC_SEAL");
		if (ioctl(fd, SEALFS_IOC_UNSEAL, &s) < 0)
			die("SEALFS_IOC_UNSEAL");
		lat[i] = (now() - t) * 1e6;
	}
	report(lat, n, now() - t0);
	close(fd);
	return 0;
}

static int seal_replace(const char *file, long n)
{
	int fd = open(file, O_CREAT | O_RDWR, 0644);
	if (fd < 0)
		die(file);
	if (pwrite(fd, "x", 1, 0) != 1)
		die("pwrite");
	struct sealfs_seal s = { 0, 0, SEALFS_SEAL_REPLACE, 0 };
	double *lat = malloc(n * sizeof *lat);
	for (int i = 0; i < 10; i++)
		if (ioctl(fd, SEALFS_IOC_SEAL, &s) < 0)
			die("SEALFS_IOC_SEAL");
	double t0 = now();
	for (long i = 0; i < n; i++) {
		double t = now();
		if (ioctl(fd, SEALFS_IOC_SEAL, &s) < 0)
			die("SEALFS_IOC_SEAL");
		lat[i] = (now() - t) * 1e6;
	}
	double el = now() - t0;
	/* Each call replaced the one before: exactly one seal is left. */
	if (ioctl(fd, SEALFS_IOC_UNSEAL, &s) < 0)
		die("SEALFS_IOC_UNSEAL");
	if (ioctl(fd, SEALFS_IOC_UNSEAL, &s) == 0 || errno != EINVAL) {
		fprintf(stderr, "seal_replace: more than one seal was left\n");
		exit(1);
	}
	report(lat, n, el);
	close(fd);
	return 0;
}

static int noop_ioctl(const char *file, long n)
{
	int fd = open(file, O_CREAT | O_RDWR, 0644);
	if (fd < 0)
		die(file);
	double *lat = malloc(n * sizeof *lat);
	for (int i = 0; i < 10; i++)
		if (ioctl(fd, SEALFS_IOC_NOOP) < 0)
			die("SEALFS_IOC_NOOP");
	double t0 = now();
	for (long i = 0; i < n; i++) {
		double t = now();
		if (ioctl(fd, SEALFS_IOC_NOOP) < 0)
			die("SEALFS_IOC_NOOP");
		lat[i] = (now() - t) * 1e6;
	}
	report(lat, n, now() - t0);
	close(fd);
	return 0;
}

static int holder_death(const char *file, long n)
{
	int fd = open(file, O_CREAT | O_RDWR, 0644);
	if (fd < 0)
		die(file);
	if (ftruncate(fd, 4096) < 0)
		die("ftruncate");
	double *lat = malloc(n * sizeof *lat);
	long spins_total = 0;
	off_t size = 4096;
	for (long i = 0; i < n; i++) {
		int pfd[2];
		if (pipe(pfd) < 0)
			die("pipe");
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(pfd[0]);
			int cfd = open(file, O_RDWR);
			if (cfd < 0)
				die("child open");
			struct sealfs_seal s = { 0, 0, 0, 0 };
			if (ioctl(cfd, SEALFS_IOC_SEAL, &s) < 0)
				die("child SEALFS_IOC_SEAL");
			if (write(pfd[1], "r", 1) != 1)
				die("child write");
			for (;;)
				pause();
		}
		close(pfd[1]);
		char c;
		if (read(pfd[0], &c, 1) != 1) {
			fprintf(stderr, "holder_death: the child did not seal\n");
			exit(1);
		}
		close(pfd[0]);
		off_t want = size == 4096 ? 8192 : 4096;
		if (ftruncate(fd, want) == 0 || errno != ETXTBSY) {
			fprintf(stderr, "holder_death: ftruncate under a seal did not fail with ETXTBSY\n");
			exit(1);
		}
		double t = now();
		kill(pid, SIGKILL);
		long spins = 0;
		for (;;) {
			if (ftruncate(fd, want) == 0)
				break;
			if (errno != ETXTBSY)
				die("ftruncate");
			spins++;
			if (now() - t > 10.0) {
				fprintf(stderr, "holder_death: still sealed 10 s after SIGKILL\n");
				exit(1);
			}
		}
		lat[i] = (now() - t) * 1e6;
		spins_total += spins;
		size = want;
		waitpid(pid, NULL, 0);
	}
	qsort(lat, n, sizeof *lat, cmp_double);
	printf("median_us=%.1f min_us=%.1f max_us=%.1f mean_spins=%.1f\n", lat[n / 2], lat[0],
	       lat[n - 1], (double)spins_total / n);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_helper CMD PATH [N]\n");
		return 2;
	}
	const char *cmd = argv[1], *path = argv[2];
	long n = argc > 3 ? atol(argv[3]) : 0;
	if (!strcmp(cmd, "create_unlink"))
		return create_unlink(path, n);
	if (!strcmp(cmd, "mkfiles"))
		return mkfiles(path, n);
	if (!strcmp(cmd, "readdir"))
		return do_readdir(path);
	if (!strcmp(cmd, "stat"))
		return do_stat(path, n);
	if (!strcmp(cmd, "fsync_small"))
		return write_loop(path, n, 1);
	if (!strcmp(cmd, "wloop"))
		return write_loop(path, n, 0);
	if (!strcmp(cmd, "seal_unseal"))
		return seal_unseal(path, n);
	if (!strcmp(cmd, "seal_replace"))
		return seal_replace(path, n);
	if (!strcmp(cmd, "noop_ioctl"))
		return noop_ioctl(path, n);
	if (!strcmp(cmd, "holder_death"))
		return holder_death(path, n);
	fprintf(stderr, "bench_helper: unknown command %s\n", cmd);
	return 2;
}
