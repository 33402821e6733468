/*
 * rdma-agent.c — an RDMA agent over a sealed sealfs window, for sequence R of
 * scripts/vm.sh (run by scripts/vm/guest-rdma.sh inside the guest, on Soft-RoCE).
 *
 * Built static by scripts/vm.sh against Debian's libibverbs (with the rxe provider
 * linked in) and include/sealfs.h.
 *
 *   rdma-agent serve [-b] [-i] [-w N] DEV FILE OFF LEN SEED CTL
 *       The agent: open FILE read-write, take a temporary (-b: breakable) seal with
 *       POPULATE on [OFF, OFF+LEN), SETUPMAPPING the range, mmap each device extent of
 *       DEV (MAP_SHARED | MAP_FIXED) into one window, ibv_reg_mr the window on rxe0,
 *       connect two RC queue pairs over loopback (the "server" owns the registration,
 *       the "client" has its own buffer) and do an RDMA WRITE of pattern SEED into the
 *       whole window, an RDMA READ back, a cache-line flush and FLUSHMAPPING. Then it
 *       writes CTL/ready and serves: CTL/stop tears down in order (dereg, munmap,
 *       REMOVEMAPPING, UNSEAL, close); CTL/write2 (holding a seed) does another RDMA
 *       WRITE + READ through the registration and tries SEAL again (CTL/write2-done); a
 *       recall (POLLPRI) is answered by the same teardown (CTL/recalled), or with -i
 *       ignored (CTL/recall-ignored). With -w N it forks N workers after registering:
 *       worker k opens its own verbs context for a requester QP connected to a responder
 *       QP of the parent's (the registration's protection domain), waits for CTL/go,
 *       writes and reads back slice k of pattern SEED through the inherited registration,
 *       flushes, writes CTL/worker-k and exits when CTL/exit-k appears; the parent
 *       exits once the QPs are connected. Worker 0 first tries an RDMA WRITE on a QP of
 *       the parent's context and reports what the kernel answers.
 *       With -o the registration is an on-demand-paging one (see serve_odp).
 *   rdma-agent link-add NAME NETDEV     `rdma link add NAME type rxe netdev NETDEV`
 *   rdma-agent try truncate FILE SIZE | punch FILE OFF LEN | unlink FILE
 *       prints "ok MS" or "ERRNO-NAME MS" (how long the call took)
 *   rdma-agent check FILE OFF LEN SEED  pread(2) the range and compare with pattern SEED
 *   rdma-agent stat PATH                the mount's seal counters (SEALFS_IOC_STAT)
 *   rdma-agent fill FILE                fallocate 2 MiB pieces until ENOSPC
 *   rdma-agent overlap FILE EXTENTS     whether FILE's device extents overlap the
 *                                       "doffset len" lines of EXTENTS
 *   rdma-agent res                      rxe0's resource counts (pd, cq, qp, mr, ...) from
 *                                       RDMA_NLDEV_CMD_RES_GET, as `rdma resource show`
 *   rdma-agent odp                      on-demand paging: the device's capability and
 *                                       what ibv_reg_mr(IBV_ACCESS_ON_DEMAND) answers
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <linux/falloc.h>
#include <linux/netlink.h>
#include <poll.h>
#include <rdma/rdma_netlink.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sealfs.h"

#define SLOT (2ull << 20)

/* Path MTU of the queue pairs: 1024 (what rxe offers on a 1500-byte netdev), or 4096
 * with RDMA_AGENT_MTU=4096 (the netdev's MTU must allow it). */
static enum ibv_mtu path_mtu = IBV_MTU_1024;

static const char *ename(int e)
{
	static char buf[16];
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ETXTBSY: return "ETXTBSY";
	case ENOSPC: return "ENOSPC";
	case ENOSYS: return "ENOSYS";
	case ENOLINK: return "ENOLINK";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ENXIO: return "ENXIO";
	case E2BIG: return "E2BIG";
	}
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

static void die(const char *what, int e)
{
	printf("error: %s: %s (%s)\n", what, ename(e), strerror(e));
	fflush(stdout);
	exit(2);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Byte i of pattern `seed`: a hash, so a misplaced block or slot shows. */
static uint8_t pat(uint64_t i, uint64_t seed)
{
	uint64_t x = (i ^ (seed << 40)) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	return (uint8_t)(x >> 32);
}

static void fill_pat(uint8_t *p, uint64_t off, uint64_t len, uint64_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = pat(off + i, seed);
}

/* -1 when equal, else the first differing index */
static int64_t cmp_pat(const uint8_t *p, uint64_t off, uint64_t len, uint64_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != pat(off + i, seed))
			return (int64_t)i;
	return -1;
}

static int exists(const char *ctl, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", ctl, name);
	return access(path, F_OK) == 0;
}

static void put(const char *ctl, const char *name, const char *fmt, ...)
{
	char path[512], tmp[520];
	snprintf(path, sizeof path, "%s/%s", ctl, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		die("fopen ctl file", errno);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	rename(tmp, path);
}

/* Write back the cache lines of [p, p+len) and fence (clflush: every x86-64 CPU has it). */
static void flush_lines(const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p & ~63ul, end = (uintptr_t)p + len;
	for (; a < end; a += 64)
		__asm__ volatile("clflush %0" : "+m"(*(volatile char *)a));
	__asm__ volatile("sfence" ::: "memory");
}

/* ---------------------------------------------------------------------------
 * Verbs: one device, two connected RC queue pairs per "pair" (loopback)
 * ------------------------------------------------------------------------- */
struct rd {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int gid_idx;
	union ibv_gid gid;
};

struct pair {
	struct ibv_cq *cq;
	struct ibv_qp *srv, *cli;
	uint8_t *buf; /* client buffer: 2 * len, MAP_SHARED so forked workers use the same pages */
	struct ibv_mr *bmr;
	uint64_t len;
};

static void rd_open(struct rd *r, const char *name)
{
	int n = 0;
	struct ibv_device **l = ibv_get_device_list(&n);
	if (!l || n == 0)
		die("ibv_get_device_list: no RDMA device", errno ? errno : ENODEV);
	r->ctx = NULL;
	for (int i = 0; i < n; i++)
		if (strcmp(ibv_get_device_name(l[i]), name) == 0)
			r->ctx = ibv_open_device(l[i]);
	ibv_free_device_list(l);
	if (!r->ctx)
		die("ibv_open_device", errno ? errno : ENODEV);
	r->pd = ibv_alloc_pd(r->ctx);
	if (!r->pd)
		die("ibv_alloc_pd", errno);
	struct ibv_port_attr pa;
	if (ibv_query_port(r->ctx, 1, &pa))
		die("ibv_query_port", errno);
	/* The IPv4-mapped RoCEv2 GID of the netdev's address. */
	r->gid_idx = -1;
	for (int i = 0; i < pa.gid_tbl_len && i < 64; i++) {
		union ibv_gid g;
		if (ibv_query_gid(r->ctx, 1, i, &g))
			continue;
		static const uint8_t v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(g.raw, v4, 12) == 0) {
			r->gid_idx = i;
			r->gid = g;
			break;
		}
	}
	if (r->gid_idx < 0)
		die("no IPv4 GID on rxe0 port 1 (does the netdev have an address?)", ENOENT);
}

static void qp_connect(struct rd *r, struct ibv_qp *qp, uint32_t dest)
{
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("ibv_modify_qp INIT", errno);
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = path_mtu;
	a.dest_qp_num = dest;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = r->gid;
	a.ah_attr.grh.sgid_index = r->gid_idx;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				  IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("ibv_modify_qp RTR", errno);
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				  IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		die("ibv_modify_qp RTS", errno);
}

static void pair_make(struct rd *r, struct pair *p, uint64_t len)
{
	p->len = len;
	p->cq = ibv_create_cq(r->ctx, 16, NULL, NULL, 0);
	if (!p->cq)
		die("ibv_create_cq", errno);
	struct ibv_qp_init_attr ia;
	memset(&ia, 0, sizeof ia);
	ia.send_cq = ia.recv_cq = p->cq;
	ia.qp_type = IBV_QPT_RC;
	ia.cap.max_send_wr = 8;
	ia.cap.max_recv_wr = 1;
	ia.cap.max_send_sge = ia.cap.max_recv_sge = 1;
	p->srv = ibv_create_qp(r->pd, &ia);
	p->cli = ibv_create_qp(r->pd, &ia);
	if (!p->srv || !p->cli)
		die("ibv_create_qp", errno);
	qp_connect(r, p->srv, p->cli->qp_num);
	qp_connect(r, p->cli, p->srv->qp_num);
	p->buf = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p->buf == MAP_FAILED)
		die("mmap client buffer", errno);
	p->bmr = ibv_reg_mr(r->pd, p->buf, 2 * len, IBV_ACCESS_LOCAL_WRITE);
	if (!p->bmr)
		die("ibv_reg_mr of the client buffer", errno);
}

/* One RDMA WRITE (buf[0..len) -> remote) or READ (remote -> buf[len..2len)) of len bytes
 * at remote address `raddr`; returns 0 or a description in `why`. */
static int rdma_op(struct pair *p, int write, uint64_t raddr, uint32_t rkey, uint64_t len, char *why,
		   size_t wn)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(write ? p->buf : p->buf + p->len),
		.length = (uint32_t)len,
		.lkey = p->bmr->lkey,
	};
	struct ibv_send_wr wr, *bad;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = 1;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = write ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	int e = ibv_post_send(p->cli, &wr, &bad);
	if (e) {
		snprintf(why, wn, "ibv_post_send: %s", ename(e));
		return -1;
	}
	double t0 = now_ms();
	struct ibv_wc wc;
	for (;;) {
		int n = ibv_poll_cq(p->cq, 1, &wc);
		if (n < 0) {
			snprintf(why, wn, "ibv_poll_cq failed");
			return -1;
		}
		if (n == 1)
			break;
		if (now_ms() - t0 > 30000) {
			snprintf(why, wn, "no completion within 30 s");
			return -1;
		}
		usleep(200);
	}
	if (wc.status != IBV_WC_SUCCESS) {
		snprintf(why, wn, "completion status %s (%d)", ibv_wc_status_str(wc.status), wc.status);
		return -1;
	}
	return 0;
}

/* RDMA WRITE pattern `seed` over window[off, off+len), READ it back, compare. */
static int write_read(struct pair *p, uint8_t *window, uint32_t rkey, uint64_t foff, uint64_t off,
		      uint64_t len, uint64_t seed, char *why, size_t wn)
{
	fill_pat(p->buf, foff + off, len, seed);
	memset(p->buf + p->len, 0, len);
	if (rdma_op(p, 1, (uintptr_t)window + off, rkey, len, why, wn))
		return -1;
	if (rdma_op(p, 0, (uintptr_t)window + off, rkey, len, why, wn))
		return -1;
	int64_t d = cmp_pat(p->buf + p->len, foff + off, len, seed);
	if (d >= 0) {
		snprintf(why, wn, "RDMA READ differs at window offset %lld", (long long)(off + d));
		return -1;
	}
	d = cmp_pat(window + off, foff + off, len, seed);
	if (d >= 0) {
		snprintf(why, wn, "the window (CPU load) differs at offset %lld", (long long)(off + d));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------
 * serve
 * ------------------------------------------------------------------------- */
static void vma_of(const void *addr, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	snprintf(out, n, "(not found)");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && (uintptr_t)addr >= a && (uintptr_t)addr < b) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, n, "%s", line);
			break;
		}
	}
	fclose(f);
}

/* The forking server. The parent owns the registration and one responder QP per
 * worker; each worker opens its own verbs context for its requester QP (a forked
 * child cannot ring the doorbell of a QP of its parent's context: rxe's post_send
 * is a write(2) on the uverbs descriptor, and the kernel refuses write(2) from a
 * process whose credentials are not the opener's — worker 0 shows that answer). */
static int serve_workers(struct rd *r, int fd, uint8_t *window, struct ibv_mr *mr, uint64_t off, uint64_t len,
			 uint64_t seed, int workers, const char *ctl)
{
	uint64_t slice = len / workers;
	char why[200];
	struct pair p0; /* a loopback pair in the parent's context, for worker 0's try */
	pair_make(r, &p0, 4096);
	struct ibv_qp **srv = calloc(workers, sizeof *srv);
	int(*pipes)[2] = calloc(workers, sizeof *pipes);
	for (int k = 0; k < workers; k++) {
		struct ibv_cq *cq = ibv_create_cq(r->ctx, 4, NULL, NULL, 0);
		struct ibv_qp_init_attr ia;
		memset(&ia, 0, sizeof ia);
		ia.send_cq = ia.recv_cq = cq;
		ia.qp_type = IBV_QPT_RC;
		ia.cap.max_send_wr = ia.cap.max_recv_wr = 1;
		ia.cap.max_send_sge = ia.cap.max_recv_sge = 1;
		if (!cq || !(srv[k] = ibv_create_qp(r->pd, &ia)))
			die("responder QP", errno);
		if (pipe(pipes[k]))
			die("pipe", errno);
	}
	for (int k = 0; k < workers; k++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork", errno);
		if (pid > 0) {
			printf("worker %d: pid %d\n", k, pid);
			continue;
		}
		/* worker k: its own context, PD, CQ and requester QP; the parent's registration */
		char name[32], tried[240] = "", msg[512];
		struct rd w;
		struct pair p;
		rd_open(&w, "rxe0");
		p.len = slice;
		p.cq = ibv_create_cq(w.ctx, 16, NULL, NULL, 0);
		struct ibv_qp_init_attr ia;
		memset(&ia, 0, sizeof ia);
		ia.send_cq = ia.recv_cq = p.cq;
		ia.qp_type = IBV_QPT_RC;
		ia.cap.max_send_wr = 8;
		ia.cap.max_recv_wr = 1;
		ia.cap.max_send_sge = ia.cap.max_recv_sge = 1;
		if (!p.cq || !(p.cli = ibv_create_qp(w.pd, &ia)))
			die("worker requester QP", errno);
		p.srv = srv[k];
		p.buf = mmap(NULL, 2 * slice, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p.buf == MAP_FAILED || !(p.bmr = ibv_reg_mr(w.pd, p.buf, 2 * slice, IBV_ACCESS_LOCAL_WRITE)))
			die("worker buffer", errno);
		uint32_t qpn = p.cli->qp_num;
		if (write(pipes[k][1], &qpn, sizeof qpn) != sizeof qpn)
			die("write pipe", errno);
		qp_connect(&w, p.cli, srv[k]->qp_num);
		if (k == 0) {
			fill_pat(p0.buf, 0, 4096, seed);
			if (rdma_op(&p0, 1, (uintptr_t)window, mr->rkey, 4096, why, sizeof why) == 0)
				snprintf(tried, sizeof tried, "; the parent's QP: RDMA WRITE ok");
			else
				snprintf(tried, sizeof tried, "; the parent's QP: %s", why);
		}
		while (!exists(ctl, "go"))
			usleep(20000);
		uint64_t o = k * slice;
		if (write_read(&p, window, mr->rkey, off, o, slice, seed, why, sizeof why) == 0) {
			flush_lines(window + o, slice);
			struct sealfs_ranges fr = { .count = 1 };
			fr.ranges[0].moffset = 0;
			fr.ranges[0].len = len;
			int e = ioctl(fd, SEALFS_IOC_FLUSHMAPPING, &fr) ? errno : 0;
			snprintf(msg, sizeof msg, "ok pid %d, FLUSHMAPPING %s%s", getpid(), ename(e), tried);
		} else {
			snprintf(msg, sizeof msg, "fail %s%s", why, tried);
		}
		snprintf(name, sizeof name, "worker-%d", k);
		put(ctl, name, "%s\n", msg);
		snprintf(name, sizeof name, "exit-%d", k);
		while (!exists(ctl, name))
			usleep(20000);
		_exit(0);
	}
	for (int k = 0; k < workers; k++) {
		uint32_t qpn;
		if (read(pipes[k][0], &qpn, sizeof qpn) != sizeof qpn)
			die("read pipe", errno);
		qp_connect(r, srv[k], qpn);
	}
	put(ctl, "ready", "ok %d\n", getpid());
	printf("parent exits; the workers keep the seal, the pin and the registration\n");
	_exit(0);
}

/* On-demand paging (-o): the window is registered with IBV_ACCESS_ON_DEMAND (no pin).
 * A recall is answered by unmapping the window (the kernel's MMU notifier invalidates the
 * registration's translations), REMOVEMAPPING and UNSEAL — without ibv_dereg_mr.
 * CTL/access (a seed): another RDMA WRITE + READ through the same registration, then
 * whether the blocks the window showed before the recall still hold pattern SEED
 * (CTL/access-done). CTL/remap (a seed): seal and map the range again at the same
 * address and write + read it through the same registration from a new QP
 * (CTL/remap-done). CTL/stop ends. */
static int serve_odp(struct rd *r, int fd, int dfd, uint8_t *window, struct sealfs_setupmapping *sm, uint64_t off,
		     uint64_t len, uint64_t seed, uint32_t sflags, const char *ctl)
{
	char why[200];
	struct ibv_device_attr_ex ax;
	memset(&ax, 0, sizeof ax);
	int e = ibv_query_device_ex(r->ctx, NULL, &ax);
	if (e || !(ax.odp_caps.general_caps & IBV_ODP_SUPPORT)) {
		put(ctl, "ready", "noodp query %s general_caps 0x%llx\n", ename(e),
		    (unsigned long long)ax.odp_caps.general_caps);
		return 5;
	}
	struct ibv_mr *mr = ibv_reg_mr(r->pd, window, len,
				       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
					       IBV_ACCESS_ON_DEMAND);
	if (!mr) {
		e = errno;
		printf("ibv_reg_mr(IBV_ACCESS_ON_DEMAND) of the window: %s (%s)\n", ename(e), strerror(e));
		put(ctl, "ready", "fail ibv_reg_mr(IBV_ACCESS_ON_DEMAND) %s\n", ename(e));
		return 3;
	}
	printf("ibv_reg_mr(IBV_ACCESS_ON_DEMAND) of the window: ok, rkey 0x%x (rc_odp_caps 0x%x)\n", mr->rkey,
	       ax.odp_caps.per_transport_caps.rc_odp_caps);
	/* the device extents before any recall, for the stale-block check */
	uint32_t n0 = sm->count;
	struct sealfs_dev_extent *old = calloc(n0, sizeof *old);
	memcpy(old, sm->extents, n0 * sizeof *old);
	struct pair p;
	pair_make(r, &p, len);
	if (write_read(&p, window, mr->rkey, off, 0, len, seed, why, sizeof why)) {
		int64_t dw = cmp_pat(window, off, len, seed), dr = cmp_pat(p.buf + len, off, len, seed);
		uint64_t zr = 0;
		for (uint64_t i = 0; i < len; i++)
			zr += p.buf[len + i] == 0;
		printf("RDMA WRITE/READ through the ODP registration failed: %s; window (CPU) %s at %lld; "
		       "READ buffer differs at %lld, %llu zero bytes, first %02x %02x %02x %02x (pattern %02x %02x %02x %02x)\n",
		       why, dw < 0 ? "holds the pattern" : "differs", (long long)dw, (long long)dr, (unsigned long long)zr,
		       p.buf[len], p.buf[len + 1], p.buf[len + 2], p.buf[len + 3], pat(off, seed), pat(off + 1, seed),
		       pat(off + 2, seed), pat(off + 3, seed));
		put(ctl, "ready", "fail %s; window %s\n", why, dw < 0 ? "holds the pattern" : "differs");
		return 4;
	}
	flush_lines(window, len);
	struct sealfs_ranges fr = { .count = 1 };
	fr.ranges[0].moffset = 0;
	fr.ranges[0].len = len;
	if (ioctl(fd, SEALFS_IOC_FLUSHMAPPING, &fr))
		die("SEALFS_IOC_FLUSHMAPPING", errno);
	printf("RDMA WRITE + READ of %llu bytes through the ODP registration: ok\n", (unsigned long long)len);
	put(ctl, "ready", "ok %d\n", getpid());
	int mapped = 1;
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLPRI };
		int n = poll(&pf, 1, mapped ? 50 : 0);
		if (!mapped)
			usleep(50000);
		if (n > 0 && (pf.revents & POLLPRI) && mapped) {
			struct sealfs_ranges rc;
			memset(&rc, 0, sizeof rc);
			int re = ioctl(fd, SEALFS_IOC_GET_RECALLS, &rc) ? errno : 0;
			void *m = mmap(window, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
				       -1, 0);
			int e2 = m == window ? 0 : errno;
			int e3 = ioctl(fd, SEALFS_IOC_REMOVEMAPPING, &fr) ? errno : 0;
			struct sealfs_seal us = { .offset = off, .length = len, .flags = sflags };
			int e4 = ioctl(fd, SEALFS_IOC_UNSEAL, &us) ? errno : 0;
			mapped = 0;
			printf("recall (POLLPRI): GET_RECALLS %s (%u slot(s)); munmap %s, REMOVEMAPPING %s, UNSEAL %s; "
			       "the ODP registration stays\n",
			       ename(re), rc.count, ename(e2), ename(e3), ename(e4));
			put(ctl, "recalled", "%u %s %s %s\n", rc.count, ename(e2), ename(e3), ename(e4));
		}
		char path[512];
		unsigned long long s2 = 0;
		snprintf(path, sizeof path, "%s/access", ctl);
		FILE *f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%llu", &s2) != 1)
				die("read CTL/access", EINVAL);
			fclose(f);
			unlink(path);
			int ok = write_read(&p, window, mr->rkey, off, 0, len, s2, why, sizeof why);
			/* the blocks the window showed before the recall */
			int stale = 1;
			for (uint32_t i = 0; i < n0; i++) {
				uint8_t *o = mmap(NULL, old[i].len, PROT_READ, MAP_SHARED, dfd, old[i].doffset);
				if (o == MAP_FAILED)
					die("mmap of the old extent", errno);
				if (cmp_pat(o, old[i].foffset, old[i].len, seed) >= 0)
					stale = 0;
				munmap(o, old[i].len);
			}
			printf("access after the recall: %s; the old blocks %s pattern %llu\n", ok == 0 ? "ok" : why,
			       stale ? "still hold" : "no longer hold", (unsigned long long)seed);
			put(ctl, "access-done", "%s%s stale=%s\n", ok == 0 ? "ok" : "fail ", ok == 0 ? "" : why,
			    stale ? "unchanged" : "changed");
		}
		snprintf(path, sizeof path, "%s/remap", ctl);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%llu", &s2) != 1)
				die("read CTL/remap", EINVAL);
			fclose(f);
			unlink(path);
			struct sealfs_seal seal = { .offset = off, .length = len, .flags = sflags | SEALFS_SEAL_POPULATE };
			if (ioctl(fd, SEALFS_IOC_SEAL, &seal))
				die("SEALFS_IOC_SEAL (remap)", errno);
			memset(sm, 0, sizeof *sm);
			sm->foffset = off;
			sm->len = len;
			sm->flags = SEALFS_MAP_READ | SEALFS_MAP_WRITE;
			if (ioctl(fd, SEALFS_IOC_SETUPMAPPING, sm))
				die("SEALFS_IOC_SETUPMAPPING (remap)", errno);
			int same = sm->count == n0;
			for (uint32_t i = 0; i < sm->count; i++) {
				struct sealfs_dev_extent *x = &sm->extents[i];
				if (mmap(window + (x->foffset - off), x->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
					 dfd, x->doffset) != window + (x->foffset - off))
					die("mmap (remap)", errno);
				if (same && x->doffset != old[i].doffset)
					same = 0;
			}
			mapped = 1;
			struct pair p2;
			pair_make(r, &p2, len);
			int ok = write_read(&p2, window, mr->rkey, off, 0, len, s2, why, sizeof why);
			if (ok == 0) {
				flush_lines(window, len);
				if (ioctl(fd, SEALFS_IOC_FLUSHMAPPING, &fr))
					die("SEALFS_IOC_FLUSHMAPPING (remap)", errno);
			}
			printf("remap: %s device blocks; RDMA WRITE + READ through the same registration: %s\n",
			       same ? "the same" : "other", ok == 0 ? "ok" : why);
			put(ctl, "remap-done", "%s%s blocks=%s\n", ok == 0 ? "ok" : "fail ", ok == 0 ? "" : why,
			    same ? "same" : "other");
		}
		if (exists(ctl, "stop"))
			return 0;
	}
}

static int cmd_serve(int argc, char **argv)
{
	int breakable = 0, ignore = 0, workers = 0, odp = 0, c;
	while ((c = getopt(argc, argv, "biow:")) != -1) {
		switch (c) {
		case 'b': breakable = 1; break;
		case 'i': ignore = 1; break;
		case 'o': odp = 1; break;
		case 'w': workers = atoi(optarg); break;
		default: return 64;
		}
	}
	if (argc - optind != 6) {
		fprintf(stderr, "usage: rdma-agent serve [-b] [-i] [-o] [-w N] DEV FILE OFF LEN SEED CTL\n");
		return 64;
	}
	const char *dev = argv[optind], *file = argv[optind + 1], *ctl = argv[optind + 5];
	uint64_t off = strtoull(argv[optind + 2], NULL, 0), len = strtoull(argv[optind + 3], NULL, 0);
	uint64_t seed = strtoull(argv[optind + 4], NULL, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);

	int fd = open(file, O_RDWR);
	if (fd < 0)
		die("open FILE", errno);
	uint32_t sflags = breakable ? SEALFS_SEAL_BREAKABLE : 0;
	struct sealfs_seal seal = { .offset = off, .length = len, .flags = sflags | SEALFS_SEAL_POPULATE };
	if (ioctl(fd, SEALFS_IOC_SEAL, &seal))
		die("SEALFS_IOC_SEAL", errno);
	printf("sealed [%llu, +%llu) %s\n", (unsigned long long)off, (unsigned long long)len,
	       breakable ? "breakable" : "temporary");
	static struct sealfs_setupmapping sm;
	sm.foffset = off;
	sm.len = len;
	sm.flags = SEALFS_MAP_READ | SEALFS_MAP_WRITE;
	sm.moffset = 0;
	if (ioctl(fd, SEALFS_IOC_SETUPMAPPING, &sm))
		die("SEALFS_IOC_SETUPMAPPING", errno);
	int dfd = open(dev, O_RDWR);
	if (dfd < 0)
		die("open DEV", errno);
	uint8_t *res = mmap(NULL, len + SLOT, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		die("mmap reservation", errno);
	uint8_t *window = (uint8_t *)(((uintptr_t)res + SLOT - 1) & ~(SLOT - 1));
	FILE *ef;
	{
		char path[512];
		snprintf(path, sizeof path, "%s/extents", ctl);
		ef = fopen(path, "w");
		if (!ef)
			die("fopen CTL/extents", errno);
	}
	for (uint32_t i = 0; i < sm.count; i++) {
		struct sealfs_dev_extent *e = &sm.extents[i];
		void *at = window + (e->foffset - off);
		if (mmap(at, e->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, dfd, e->doffset) != at)
			die("mmap of a device extent", errno);
		fprintf(ef, "%llu %llu\n", (unsigned long long)e->doffset, (unsigned long long)e->len);
		printf("extent %u: file %llu -> device %llu, %llu bytes\n", i, (unsigned long long)e->foffset,
		       (unsigned long long)e->doffset, (unsigned long long)e->len);
	}
	fclose(ef);
	char vma[512];
	vma_of(window, vma, sizeof vma);
	printf("window vma: %s\n", vma);

	struct rd r;
	rd_open(&r, "rxe0");
	if (odp)
		return serve_odp(&r, fd, dfd, window, &sm, off, len, seed, sflags, ctl);
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	struct ibv_mr *mr = ibv_reg_mr(r.pd, window, len, access);
	if (!mr) {
		int e = errno;
		printf("ibv_reg_mr of the window: %s (%s)\n", ename(e), strerror(e));
		put(ctl, "reg-failed", "%s\n", ename(e));
		return 3;
	}
	printf("ibv_reg_mr of the window: ok, lkey 0x%x rkey 0x%x\n", mr->lkey, mr->rkey);
	char why[200];

	if (workers > 0)
		return serve_workers(&r, fd, window, mr, off, len, seed, workers, ctl);

	struct pair p;
	pair_make(&r, &p, len);
	double t0 = now_ms();
	if (write_read(&p, window, mr->rkey, off, 0, len, seed, why, sizeof why)) {
		printf("RDMA WRITE/READ through the registration failed: %s\n", why);
		put(ctl, "ready", "fail %s\n", why);
		return 4;
	}
	double t1 = now_ms();
	flush_lines(window, len);
	struct sealfs_ranges fr = { .count = 1 };
	fr.ranges[0].moffset = 0;
	fr.ranges[0].len = len;
	if (ioctl(fd, SEALFS_IOC_FLUSHMAPPING, &fr))
		die("SEALFS_IOC_FLUSHMAPPING", errno);
	printf("RDMA WRITE + READ of %llu bytes through the registered window: ok (%.0f ms); flushed\n",
	       (unsigned long long)len, t1 - t0);
	put(ctl, "ready", "ok %d %.0f\n", getpid(), t1 - t0);

	int recall_seen = 0;
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLPRI };
		int n = poll(&pf, 1, recall_seen ? 0 : 50);
		if (recall_seen)
			usleep(50000);
		if (n > 0 && (pf.revents & POLLPRI) && !recall_seen) {
			double r0 = now_ms();
			struct sealfs_ranges rc;
			memset(&rc, 0, sizeof rc);
			int re = ioctl(fd, SEALFS_IOC_GET_RECALLS, &rc) ? errno : 0;
			if (ignore) {
				recall_seen = 1;
				printf("recall (POLLPRI): ignored; GET_RECALLS %s, %u slot(s)\n", ename(re), rc.count);
				put(ctl, "recall-ignored", "%u\n", rc.count);
				continue;
			}
			int e1 = ibv_dereg_mr(mr);
			void *m = mmap(window, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
				       -1, 0);
			int e2 = m == window ? 0 : errno;
			int e3 = ioctl(fd, SEALFS_IOC_REMOVEMAPPING, &fr) ? errno : 0;
			struct sealfs_seal us = { .offset = off, .length = len, .flags = sflags };
			int e4 = ioctl(fd, SEALFS_IOC_UNSEAL, &us) ? errno : 0;
			printf("recall (POLLPRI): GET_RECALLS %s (%u slot(s)), ibv_dereg_mr %s, munmap %s, "
			       "REMOVEMAPPING %s, UNSEAL %s, in %.1f ms\n",
			       ename(re), rc.count, ename(e1), ename(e2), ename(e3), ename(e4), now_ms() - r0);
			put(ctl, "recalled", "%u %s %s %s %s\n", rc.count, ename(e1), ename(e2), ename(e3), ename(e4));
			close(fd);
			return 0;
		}
		if (exists(ctl, "write2")) {
			char path[512];
			snprintf(path, sizeof path, "%s/write2", ctl);
			FILE *f = fopen(path, "r");
			unsigned long long s2 = 0;
			if (!f || fscanf(f, "%llu", &s2) != 1)
				die("read CTL/write2", EINVAL);
			fclose(f);
			unlink(path);
			int ok = write_read(&p, window, mr->rkey, off, 0, len, s2, why, sizeof why);
			if (ok == 0)
				flush_lines(window, len);
			struct sealfs_seal s = { .offset = off, .length = len, .flags = sflags };
			int se = ioctl(fd, SEALFS_IOC_SEAL, &s) ? errno : 0;
			printf("write2: RDMA WRITE + READ of pattern %llu: %s; SEAL again: %s\n", s2,
			       ok == 0 ? "ok" : why, ename(se));
			put(ctl, "write2-done", "%s seal=%s\n", ok == 0 ? "ok" : "fail", ename(se));
		}
		if (exists(ctl, "stop")) {
			int e1 = ibv_dereg_mr(mr);
			int e2 = munmap(window, len) ? errno : 0;
			int e3 = ioctl(fd, SEALFS_IOC_REMOVEMAPPING, &fr) ? errno : 0;
			struct sealfs_seal us = { .offset = off, .length = len, .flags = sflags };
			int e4 = ioctl(fd, SEALFS_IOC_UNSEAL, &us) ? errno : 0;
			close(fd);
			printf("stop: ibv_dereg_mr %s, munmap %s, REMOVEMAPPING %s, UNSEAL %s\n", ename(e1), ename(e2),
			       ename(e3), ename(e4));
			put(ctl, "stopped", "%s %s %s %s\n", ename(e1), ename(e2), ename(e3), ename(e4));
			return 0;
		}
	}
}

/* ---------------------------------------------------------------------------
 * link-add: RDMA_NLDEV_CMD_NEWLINK over NETLINK_RDMA (what `rdma link add` sends)
 * ------------------------------------------------------------------------- */
static void nla_str(struct nlmsghdr *h, int type, const char *s)
{
	struct nlattr *a = (struct nlattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
	size_t l = strlen(s) + 1;
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + l;
	memcpy((char *)a + NLA_HDRLEN, s, l);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static int cmd_link_add(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: rdma-agent link-add NAME NETDEV\n");
		return 64;
	}
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_RDMA);
	if (s < 0)
		die("socket(NETLINK_RDMA)", errno);
	union {
		struct nlmsghdr h;
		char b[1024];
	} m;
	memset(&m, 0, sizeof m);
	m.h.nlmsg_len = NLMSG_HDRLEN;
	m.h.nlmsg_type = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_NEWLINK);
	m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	m.h.nlmsg_seq = 1;
	nla_str(&m.h, RDMA_NLDEV_ATTR_DEV_NAME, argv[1]);
	nla_str(&m.h, RDMA_NLDEV_ATTR_LINK_TYPE, "rxe");
	nla_str(&m.h, RDMA_NLDEV_ATTR_NDEV_NAME, argv[2]);
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	if (sendto(s, &m, m.h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0)
		die("sendto(NETLINK_RDMA)", errno);
	char rb[4096];
	ssize_t n = recv(s, rb, sizeof rb, 0);
	if (n < (ssize_t)(NLMSG_HDRLEN + sizeof(int)))
		die("recv(NETLINK_RDMA)", n < 0 ? errno : EINVAL);
	struct nlmsghdr *rh = (struct nlmsghdr *)rb;
	if (rh->nlmsg_type != NLMSG_ERROR)
		die("unexpected netlink answer", EINVAL);
	int err = -((struct nlmsgerr *)NLMSG_DATA(rh))->error;
	if (err)
		die("RDMA_NLDEV_CMD_NEWLINK", err);
	printf("rdma link add %s type rxe netdev %s: ok\n", argv[1], argv[2]);
	return 0;
}

/* res: the resource counts of rxe0 (`rdma resource show`: RDMA_NLDEV_CMD_RES_GET dump),
 * "pd=N cq=N qp=N cm_id=N mr=N ctx=N ..." — the kernel's view of live registrations. */
static int cmd_res(void)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_RDMA);
	if (s < 0)
		die("socket(NETLINK_RDMA)", errno);
	struct nlmsghdr h = {
		.nlmsg_len = NLMSG_HDRLEN,
		.nlmsg_type = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_RES_GET),
		.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		.nlmsg_seq = 2,
	};
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	if (sendto(s, &h, h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0)
		die("sendto(NETLINK_RDMA)", errno);
	static char rb[65536];
	int found = 0;
	for (;;) {
		ssize_t n = recv(s, rb, sizeof rb, 0);
		if (n < 0)
			die("recv(NETLINK_RDMA)", errno);
		for (struct nlmsghdr *m = (struct nlmsghdr *)rb; NLMSG_OK(m, (size_t)n); m = NLMSG_NEXT(m, n)) {
			if (m->nlmsg_type == NLMSG_DONE)
				goto done;
			if (m->nlmsg_type == NLMSG_ERROR)
				die("RDMA_NLDEV_CMD_RES_GET", -((struct nlmsgerr *)NLMSG_DATA(m))->error);
			char line[512] = "";
			int is_rxe0 = 0;
			char *a = (char *)m + NLMSG_HDRLEN, *end = (char *)m + m->nlmsg_len;
			while (a + NLA_HDRLEN <= end) {
				struct nlattr *at = (struct nlattr *)a;
				if (at->nla_len < NLA_HDRLEN || a + at->nla_len > end)
					break;
				int type = at->nla_type & NLA_TYPE_MASK;
				if (type == RDMA_NLDEV_ATTR_DEV_NAME && strcmp(a + NLA_HDRLEN, "rxe0") == 0)
					is_rxe0 = 1;
				if (type == RDMA_NLDEV_ATTR_RES_SUMMARY) {
					char *e = a + NLA_HDRLEN, *eend = a + at->nla_len;
					while (e + NLA_HDRLEN <= eend) {
						struct nlattr *ent = (struct nlattr *)e;
						if (ent->nla_len < NLA_HDRLEN || e + ent->nla_len > eend)
							break;
						const char *name = "?";
						unsigned long long cur = 0;
						char *f = e + NLA_HDRLEN, *fend = e + ent->nla_len;
						while (f + NLA_HDRLEN <= fend) {
							struct nlattr *fa = (struct nlattr *)f;
							if (fa->nla_len < NLA_HDRLEN || f + fa->nla_len > fend)
								break;
							int ft = fa->nla_type & NLA_TYPE_MASK;
							if (ft == RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_NAME)
								name = f + NLA_HDRLEN;
							if (ft == RDMA_NLDEV_ATTR_RES_SUMMARY_ENTRY_CURR)
								memcpy(&cur, f + NLA_HDRLEN, sizeof cur);
							f += NLA_ALIGN(fa->nla_len);
						}
						size_t l = strlen(line);
						snprintf(line + l, sizeof line - l, "%s%s=%llu", l ? " " : "", name, cur);
						e += NLA_ALIGN(ent->nla_len);
					}
				}
				a += NLA_ALIGN(at->nla_len);
			}
			if (is_rxe0) {
				printf("%s\n", line);
				found = 1;
			}
		}
	}
done:
	if (!found)
		die("no resource summary for rxe0", ENODEV);
	return 0;
}

/* ---------------------------------------------------------------------------
 * small tools for the test script
 * ------------------------------------------------------------------------- */
static int cmd_try(int argc, char **argv)
{
	if (argc < 3)
		return 64;
	double t0 = now_ms();
	int e = 0;
	if (strcmp(argv[1], "truncate") == 0 && argc == 4) {
		e = truncate(argv[2], strtoll(argv[3], NULL, 0)) ? errno : 0;
	} else if (strcmp(argv[1], "punch") == 0 && argc == 5) {
		int fd = open(argv[2], O_RDWR);
		if (fd < 0)
			e = errno;
		else {
			e = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, strtoll(argv[3], NULL, 0),
				      strtoll(argv[4], NULL, 0))
				    ? errno
				    : 0;
			close(fd);
		}
	} else if (strcmp(argv[1], "unlink") == 0 && argc == 3) {
		e = unlink(argv[2]) ? errno : 0;
	} else {
		fprintf(stderr, "usage: rdma-agent try truncate FILE SIZE | punch FILE OFF LEN | unlink FILE\n");
		return 64;
	}
	printf("%s %.0f\n", ename(e), now_ms() - t0);
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	if (argc != 5)
		return 64;
	uint64_t off = strtoull(argv[2], NULL, 0), len = strtoull(argv[3], NULL, 0), seed = strtoull(argv[4], NULL, 0);
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		die("open", errno);
	uint8_t *b = malloc(len);
	ssize_t n = pread(fd, b, len, off);
	if (n != (ssize_t)len) {
		printf("short read: %zd of %llu bytes (%s)\n", n, (unsigned long long)len, n < 0 ? ename(errno) : "");
		return 1;
	}
	int64_t d = cmp_pat(b, off, len, seed);
	if (d >= 0) {
		printf("differs at file offset %llu: 0x%02x, pattern %llu has 0x%02x\n",
		       (unsigned long long)(off + d), b[d], (unsigned long long)seed, pat(off + d, seed));
		return 1;
	}
	printf("ok: %llu bytes at %llu are pattern %llu\n", (unsigned long long)len, (unsigned long long)off,
	       (unsigned long long)seed);
	return 0;
}

static int cmd_stat(int argc, char **argv)
{
	if (argc != 2)
		return 64;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		die("open", errno);
	struct sealfs_stat st;
	memset(&st, 0, sizeof st);
	if (ioctl(fd, SEALFS_IOC_STAT, &st))
		die("SEALFS_IOC_STAT", errno);
	printf("seals=%llu pins=%llu recalls=%llu revocations=%llu quarantined=%llu free=%llu\n",
	       (unsigned long long)st.seals, (unsigned long long)st.pins, (unsigned long long)st.recalls,
	       (unsigned long long)st.revocations, (unsigned long long)st.quarantined_blocks,
	       (unsigned long long)st.free_blocks);
	return 0;
}

static int cmd_fill(int argc, char **argv)
{
	if (argc != 2)
		return 64;
	int fd = open(argv[1], O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		die("open", errno);
	uint64_t off = 0;
	int e = 0;
	for (uint64_t step = SLOT; step >= 4096; step /= 2) {
		while (fallocate(fd, 0, off, step) == 0)
			off += step;
		e = errno;
		if (e != ENOSPC)
			break;
	}
	printf("filled %llu bytes, then %s\n", (unsigned long long)off, ename(e));
	return e == ENOSPC ? 0 : 1;
}

static int cmd_overlap(int argc, char **argv)
{
	if (argc != 3)
		return 64;
	uint64_t ad[64], al[64];
	int na = 0;
	FILE *f = fopen(argv[2], "r");
	if (!f)
		die("open EXTENTS", errno);
	unsigned long long a, b;
	while (na < 64 && fscanf(f, "%llu %llu", &a, &b) == 2) {
		ad[na] = a;
		al[na] = b;
		na++;
	}
	fclose(f);
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		die("open FILE", errno);
	static struct sealfs_extent_list el;
	uint64_t start = 0, total = 0;
	for (;;) {
		memset(&el, 0, sizeof el);
		el.start = start;
		if (ioctl(fd, SEALFS_IOC_EXTENTS, &el))
			die("SEALFS_IOC_EXTENTS", errno);
		if (el.count == 0)
			break;
		for (uint32_t i = 0; i < el.count; i++) {
			struct sealfs_dev_extent *e = &el.extents[i];
			total += e->len;
			for (int j = 0; j < na; j++)
				if (e->doffset < ad[j] + al[j] && ad[j] < e->doffset + e->len) {
					printf("overlap: file offset %llu is device %llu, inside the agent's [%llu, +%llu)\n",
					       (unsigned long long)e->foffset, (unsigned long long)e->doffset,
					       (unsigned long long)ad[j], (unsigned long long)al[j]);
					return 1;
				}
			start = e->foffset + e->len;
		}
	}
	printf("none: %llu bytes of extents, none inside the agent's %d range(s)\n", (unsigned long long)total, na);
	return 0;
}

static int cmd_odp(void)
{
	struct rd r;
	rd_open(&r, "rxe0");
	struct ibv_device_attr_ex ax;
	memset(&ax, 0, sizeof ax);
	int e = ibv_query_device_ex(r.ctx, NULL, &ax);
	if (e)
		die("ibv_query_device_ex", e);
	size_t len = 1 << 20;
	void *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ibv_mr *mr = ibv_reg_mr(r.pd, b, len,
				       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_ON_DEMAND);
	int re = mr ? 0 : errno;
	printf("odp_caps.general_caps=0x%llx (IBV_ODP_SUPPORT %s) rc_odp_caps=0x%x; "
	       "ibv_reg_mr(IBV_ACCESS_ON_DEMAND)=%s",
	       (unsigned long long)ax.odp_caps.general_caps,
	       (ax.odp_caps.general_caps & IBV_ODP_SUPPORT) ? "set" : "clear", ax.odp_caps.per_transport_caps.rc_odp_caps,
	       ename(re));
	if (mr) {
		/* the same RDMA WRITE + READ as on the window, on anonymous memory */
		struct pair p;
		char why[200];
		pair_make(&r, &p, 65536);
		int ok = write_read(&p, b, mr->rkey, 0, 0, 65536, 3, why, sizeof why);
		printf("; RDMA WRITE + READ of 64 KiB of anonymous memory through it (path MTU %d): %s",
		       path_mtu == IBV_MTU_4096 ? 4096 : 1024, ok == 0 ? "ok" : why);
		if (ok) {
			uint8_t *rb = p.buf + p.len, *m = b;
			printf(" (READ buffer %02x %02x %02x %02x, memory %02x %02x %02x %02x, pattern %02x %02x %02x %02x; "
			       "memory %s the pattern)",
			       rb[0], rb[1], rb[2], rb[3], m[0], m[1], m[2], m[3], pat(0, 3), pat(1, 3), pat(2, 3), pat(3, 3),
			       cmp_pat(m, 0, 65536, 3) < 0 ? "holds" : "does not hold");
		}
	}
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: rdma-agent serve|link-add|try|check|stat|fill|overlap|odp|res ...\n");
		return 64;
	}
	const char *c = argv[1];
	const char *mtu = getenv("RDMA_AGENT_MTU");
	if (mtu && strcmp(mtu, "4096") == 0)
		path_mtu = IBV_MTU_4096;
	if (strcmp(c, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(c, "link-add") == 0)
		return cmd_link_add(argc - 1, argv + 1);
	if (strcmp(c, "try") == 0)
		return cmd_try(argc - 1, argv + 1);
	if (strcmp(c, "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(c, "stat") == 0)
		return cmd_stat(argc - 1, argv + 1);
	if (strcmp(c, "fill") == 0)
		return cmd_fill(argc - 1, argv + 1);
	if (strcmp(c, "overlap") == 0)
		return cmd_overlap(argc - 1, argv + 1);
	if (strcmp(c, "odp") == 0)
		return cmd_odp();
	if (strcmp(c, "res") == 0)
		return cmd_res();
	fprintf(stderr, "rdma-agent: unknown command %s\n", c);
	return 64;
}
