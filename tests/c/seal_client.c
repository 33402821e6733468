/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seal_client.c - a tiny C client of the sealfs ioctls, compiled against include/sealfs.h by
 * tests/tests/seals.rs (cc -I include).
 *
 *   seal_client --abi   prints the ioctl numbers and structure sizes, one "NAME 0xVALUE" a line
 *   seal_client FILE    on a file of a sealfs mount: seals it (temporary, to EOF), checks that
 *                       ftruncate fails with ETXTBSY, that GET_SEALS lists exactly that seal
 *                       with this process's pid, unseals, truncates to 0. Exit 0 on success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sealfs.h"

_Static_assert(sizeof(struct sealfs_seal) == 24, "struct sealfs_seal");
_Static_assert(sizeof(struct sealfs_seal_info) == 40, "struct sealfs_seal_info");
_Static_assert(sizeof(struct sealfs_seal_list) == 8 + SEALFS_SEALS_MAX * 40, "seal list");
_Static_assert(sizeof(struct sealfs_dev_extent) == 24, "struct sealfs_dev_extent");

#define FAIL(...)                                  \
	do {                                       \
		fprintf(stderr, "seal_client: " __VA_ARGS__); \
		fputc('\n', stderr);               \
		return 1;                          \
	} while (0)

static void show(const char *name, unsigned long long v)
{
	printf("%s 0x%llx\n", name, v);
}

static int abi(void)
{
	show("SEALFS_IOC_SEAL", SEALFS_IOC_SEAL);
	show("SEALFS_IOC_UNSEAL", SEALFS_IOC_UNSEAL);
	show("SEALFS_IOC_GET_SEALS", SEALFS_IOC_GET_SEALS);
	show("SEALFS_IOC_SET_IMMUTABLE", SEALFS_IOC_SET_IMMUTABLE);
	show("SEALFS_IOC_CLEAR_IMMUTABLE", SEALFS_IOC_CLEAR_IMMUTABLE);
	show("SEALFS_IOC_EXTENTS", SEALFS_IOC_EXTENTS);
	show("SEALFS_IOC_DEFRAG", SEALFS_IOC_DEFRAG);
	show("SEALFS_IOC_SETUPMAPPING", SEALFS_IOC_SETUPMAPPING);
	show("SEALFS_IOC_REMOVEMAPPING", SEALFS_IOC_REMOVEMAPPING);
	show("SEALFS_IOC_FLUSHMAPPING", SEALFS_IOC_FLUSHMAPPING);
	show("SEALFS_IOC_GET_RECALLS", SEALFS_IOC_GET_RECALLS);
	show("SEALFS_IOC_STAT", SEALFS_IOC_STAT);
	show("SEALFS_IOC_SET_READONLY", SEALFS_IOC_SET_READONLY);
	show("sizeof(struct sealfs_seal)", sizeof(struct sealfs_seal));
	show("sizeof(struct sealfs_seal_list)", sizeof(struct sealfs_seal_list));
	show("sizeof(struct sealfs_immutable)", sizeof(struct sealfs_immutable));
	show("sizeof(struct sealfs_setupmapping)", sizeof(struct sealfs_setupmapping));
	show("sizeof(struct sealfs_ranges)", sizeof(struct sealfs_ranges));
	show("sizeof(struct sealfs_extent_list)", sizeof(struct sealfs_extent_list));
	show("sizeof(struct sealfs_defrag)", sizeof(struct sealfs_defrag));
	show("sizeof(struct sealfs_stat)", sizeof(struct sealfs_stat));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		FAIL("usage: seal_client --abi | seal_client FILE");
	if (strcmp(argv[1], "--abi") == 0)
		return abi();

	int fd = open(argv[1], O_RDWR);
	if (fd < 0)
		FAIL("open %s: %s", argv[1], strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size == 0)
		FAIL("%s must be a non-empty file", argv[1]);

	struct sealfs_seal s;
	memset(&s, 0, sizeof s);
	s.offset = 0;
	s.length = 0; /* to EOF */
	s.flags = 0;  /* temporary */
	if (ioctl(fd, SEALFS_IOC_SEAL, &s) < 0)
		FAIL("SEALFS_IOC_SEAL: %s", strerror(errno));

	if (ftruncate(fd, 0) == 0)
		FAIL("ftruncate succeeded under a temporary seal");
	if (errno != ETXTBSY)
		FAIL("ftruncate under a seal: %s, expected ETXTBSY", strerror(errno));

	struct sealfs_seal_list l;
	memset(&l, 0xff, sizeof l); /* the daemon fills it all */
	if (ioctl(fd, SEALFS_IOC_GET_SEALS, &l) < 0)
		FAIL("SEALFS_IOC_GET_SEALS: %s", strerror(errno));
	if (l.count != 1 || l.total != 1)
		FAIL("GET_SEALS: count %u total %u, expected 1 and 1", l.count, l.total);
	const struct sealfs_seal_info *i = &l.seals[0];
	if (i->kind != SEALFS_KIND_TEMPORARY || i->state != SEALFS_STATE_ACTIVE ||
	    i->pid != (__u32)getpid() || i->offset != 0 || i->length != 0 || i->remaining_ms != 0)
		FAIL("GET_SEALS: kind %u state %u pid %u (mine %d) [%llu, +%llu) remaining %llu",
		     i->kind, i->state, i->pid, (int)getpid(), (unsigned long long)i->offset,
		     (unsigned long long)i->length, (unsigned long long)i->remaining_ms);

	if (ioctl(fd, SEALFS_IOC_UNSEAL, &s) < 0)
		FAIL("SEALFS_IOC_UNSEAL: %s", strerror(errno));
	if (ftruncate(fd, 0) < 0)
		FAIL("ftruncate after UNSEAL: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size != 0)
		FAIL("size after ftruncate: %lld", (long long)st.st_size);
	memset(&l, 0, sizeof l);
	if (ioctl(fd, SEALFS_IOC_GET_SEALS, &l) < 0 || l.count != 0 || l.total != 0)
		FAIL("GET_SEALS after UNSEAL: count %u total %u", l.count, l.total);
	if (close(fd) < 0)
		FAIL("close: %s", strerror(errno));
	printf("ok: sealed, ftruncate ETXTBSY, 1 temporary seal of pid %d, unsealed, truncated\n",
	       (int)getpid());
	return 0;
}
