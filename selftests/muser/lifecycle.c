// SPDX-License-Identifier: GPL-2.0
/*
 * Lifecycle races: everything that creates, opens, attaches, kills and
 * unloads, at once and at random, with the invariants checked throughout.
 *
 *   held_module      rmmod (delete_module O_NONBLOCK) fails with
 *                    EWOULDBLOCK while anything holds muser.ko: a control
 *                    node, a control node's mapping after close, a VFIO
 *                    device fd, its BAR mapping after close, an emulator
 *                    process; once all is let go it succeeds with an idle
 *                    device present, which goes with it
 *   one_mm_fault_vs_unmap  the emulator and the VMM are one process: a
 *                    thread faulting in the DMA window while another
 *                    unmaps guest memory must not deadlock (the fault
 *                    holds mmap_lock and takes dma.sem; the revoke must
 *                    not take mmap_lock, as type1's unpin accounting does,
 *                    with dma.sem held)
 *   races            NR_WORKERS threads each pick an operation and a device
 *                    slot at random, for MUSER_FUZZ_SECONDS (default 60) or
 *                    MUSER_FUZZ_CALLS operations, seeded by MUSER_FUZZ_SEED:
 *                    create and remove mdevs; open and close a VMM
 *                    (container, group, device fd, REQ eventfd), its reads,
 *                    writes, resets, BAR mappings, DMA map/unmap and
 *                    interrupts; open, close, attach, detach and take over
 *                    control nodes, serve requests, DMA_MAP/RELEASE/RW and
 *                    touch the DMA window; spawn emulator processes that
 *                    take over, serve, copy guest memory and exit, and
 *                    SIGKILL them; dump the netlink family; try rmmod.
 *                    A REQ thread closes a VMM when
 *                    the kernel asks (as QEMU does on removal), a netlink
 *                    listener counts events, a watchdog fails the test
 *                    with kernel stacks if a call takes over 30 s.
 *
 * Invariants: every call succeeds or fails with an errno from the set its
 * operation expects (wider while the device is being created or removed,
 * or the module unloaded under it); VMM reads return the emulators'
 * pattern; emulator processes exit cleanly or by SIGKILL. Every 2 s the
 * workers are stopped and the kernel's view is compared with the test's:
 * the mdevs in sysfs and in the netlink dump are the test's live devices,
 * each with VMM_OPEN as the test has it, no pins without a VMM, pins
 * within what the VMM mapped, an emulator pid that is the test's or one
 * of its children's, and a module refcount covering the files held. A few
 * times per run (and at the end) everything is let go: the refcount must
 * drop to 0 and rmmod succeed (taking the idle devices with it); the
 * module is loaded again. Leaks: kernel memory (slab objects, per cache;
 * FOLL_PIN pages; other kernel pages) is compared between the first such
 * point and the last, with the same threads alive and the module freshly
 * loaded at both. The module is left loaded with the parameters it had.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "harness.h"
#include "fixture.h"

#define NR_SLOTS	4
#define NR_WORKERS	6
#define MAX_CHILDREN	6
#define RUN_TIMEOUT_MS	300		/* timeout_ms during the run */
#define HANG_MS		30000		/* a call this long is a hang */
#define CHECK_MS	2000		/* between quiesced checks */
#ifndef RMMOD_EVERY_MS
#define RMMOD_EVERY_MS	3000		/* at most one rmmod try in this */
#endif
#define FUZZ_SECONDS	60
#define WARMUP_MS	6000	/* at least, before the first idle point */

#define BAR0		VFIO_PCI_BAR0_REGION_INDEX
#define BAR2		VFIO_PCI_BAR2_REGION_INDEX
#define PG		4096ul
#define DEVMEM_SIZE	PG		/* BAR2 [0, 4 KiB) is device memory */
#define EXTRA_IOVA	DMA_SIZE	/* a second range the VMM maps and unmaps */
#define EXTRA_SIZE	(2ul << 20)
#define GUEST_END	(EXTRA_IOVA + EXTRA_SIZE)
#define GUEST_PAGES	(GUEST_END / PG)

/*
 * Leak tolerances between the first and the last idle point. Unrelated
 * kernel activity moves a few dozen objects; a leak of one object per
 * create, open or spawn is hundreds at least.
 */
#define SLAB_TOLERANCE		200	/* objects, all caches */
#define CACHE_TOLERANCE		64	/* objects, any one cache */
#define OTHER_KB_TOLERANCE	2048	/* kernel pages outside slab */
#define LEAK_SNAPSHOTS		10	/* tries of the last one, 3 s apart */

/* ------------------------------------------------------------ operations */

enum op {
	OP_CREATE, OP_REMOVE, OP_VMM_OPEN, OP_VMM_CLOSE, OP_VMM_RW,
	OP_VMM_DEVMEM, OP_VMM_MMAP, OP_VMM_RESET, OP_VMM_DMA, OP_VMM_IRQ,
	OP_CTL_OPEN, OP_CTL_CLOSE, OP_ATTACH, OP_TAKEOVER, OP_DETACH,
	OP_SERVE, OP_DMA_MAP, OP_DMA_RW, OP_CTL_MMAP, OP_SPAWN, OP_KILL,
	OP_NL_DUMP, OP_RMMOD,
	OP_NR_RANDOM,
	/* Not picked at random. */
	OP_REQ_CLOSE = OP_NR_RANDOM, OP_CHECK, OP_IDLE, OP_RECOVER,
	OP_NR
};

static const char *const op_names[OP_NR] = {
	"create", "remove", "vmm_open", "vmm_close", "vmm_rw", "vmm_devmem",
	"vmm_mmap", "vmm_reset", "vmm_dma", "vmm_irq", "ctl_open",
	"ctl_close", "attach", "takeover", "detach", "serve", "dma_map",
	"dma_rw", "ctl_mmap", "spawn", "kill", "nl_dump", "rmmod",
	"req_close", "check", "idle", "recover",
};

/* Per mille, about; rmmod is rare: it resets everything when it succeeds. */
static const int op_weight[OP_NR_RANDOM] = {
	[OP_CREATE] = 40, [OP_REMOVE] = 25, [OP_VMM_OPEN] = 80,
	[OP_VMM_CLOSE] = 20, [OP_VMM_RW] = 100, [OP_VMM_DEVMEM] = 30,
	[OP_VMM_MMAP] = 20, [OP_VMM_RESET] = 20, [OP_VMM_DMA] = 40,
	[OP_VMM_IRQ] = 30, [OP_CTL_OPEN] = 60, [OP_CTL_CLOSE] = 30,
	[OP_ATTACH] = 40, [OP_TAKEOVER] = 40, [OP_DETACH] = 15,
	[OP_SERVE] = 100, [OP_DMA_MAP] = 50, [OP_DMA_RW] = 50,
	[OP_CTL_MMAP] = 20, [OP_SPAWN] = 60, [OP_KILL] = 30,
	[OP_NL_DUMP] = 20, [OP_RMMOD] = 5,
};

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#define MAX_ERRNO	140

/* Errno sets: zero-terminated lists. */
#define E(...)		((const int[]){ __VA_ARGS__, 0 })
#define NONE		E(0)

/* Flags and times threads share. */
#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static bool in_set(int e, const int *set)
{
	for (; set && *set; set++)
		if (*set == e)
			return true;
	return false;
}

static const char *lc_errname(int e)
{
	static __thread char buf[16];
	const char *s = e > 0 ? strerrorname_np(e) : NULL;

	if (s)
		return s;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static uint64_t lc_rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t seed_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x ? x : 1;
}

static unsigned long long lc_env(const char *name, unsigned long long def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

/* The layout every emulator of the test attaches with. */
static void lc_layout(struct muser_device_info *info)
{
	layout_default(info);
	info->num_mmap_areas = 1;
	info->mmap_areas[0].region = BAR2;
	info->mmap_areas[0].offset = 0;
	info->mmap_areas[0].size = DEVMEM_SIZE;
}

/* What the test's emulators answer to a READ. */
static void answer(int ctl, const struct emu_req *r, long *bad)
{
	uint8_t data[MUSER_MAX_DATA];
	uint32_t i;
	ssize_t n = 0;

	switch (r->hdr.type) {
	case MUSER_REQ_READ:
		for (i = 0; i < r->hdr.len && i < sizeof(data); i++)
			data[i] = emu_pattern(r->hdr.region, r->hdr.offset + i);
		n = emu_reply(ctl, r->hdr.id, 0, data, r->hdr.len);
		break;
	case MUSER_REQ_WRITE:
	case MUSER_REQ_RESET:
		n = emu_reply(ctl, r->hdr.id, 0, NULL, 0);
		break;
	default:	/* posted */
		return;
	}
	/* Timed out, taken over meanwhile, removed. */
	if (n < 0 && !in_set(-n, E(ENOENT, ENOTCONN, ENODEV)))
		*bad = n;
}

/* ------------------------------------------------------- generic netlink */

struct nl_dev {
	char uuid[UUID_LEN + 1];
	uint32_t state, pid, vmm_open;
	uint64_t pinned, mapped, devmem_pages, devmem_budget;
};

struct nl_msgbuf {
	struct nlmsghdr n;
	struct genlmsghdr g;
	char attrs[256];
};

static int nl_socket(void)
{
	int sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	struct timeval tv = { .tv_sec = 5 };

	if (sk < 0)
		return -errno;
	setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return sk;
}

static int nl_send(int sk, uint16_t type, uint16_t flags, uint8_t cmd,
		   uint8_t version, uint16_t attr, const char *str)
{
	struct nl_msgbuf m;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	size_t len = NLMSG_LENGTH(GENL_HDRLEN);

	memset(&m, 0, sizeof(m));
	m.n.nlmsg_type = type;
	m.n.nlmsg_flags = NLM_F_REQUEST | flags;
	m.n.nlmsg_seq = 1;
	m.g.cmd = cmd;
	m.g.version = version;
	if (str) {
		struct nlattr *a = (struct nlattr *)((char *)&m + len);

		a->nla_type = attr;
		a->nla_len = NLA_HDRLEN + strlen(str) + 1;
		strcpy((char *)a + NLA_HDRLEN, str);
		len += NLA_ALIGN(a->nla_len);
	}
	m.n.nlmsg_len = len;
	if (sendto(sk, &m, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

#define for_each_attr(a, start, len)					\
	for (a = (struct nlattr *)(start);				\
	     (char *)a + NLA_HDRLEN <= (char *)(start) + (len) &&	\
	     a->nla_len >= NLA_HDRLEN &&				\
	     (char *)a + a->nla_len <= (char *)(start) + (len);		\
	     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))

/* The family's id and its events group; -ENOENT if not registered. */
static int nl_resolve(int sk, uint16_t *family, uint32_t *group)
{
	char buf[8192];
	struct nlmsghdr *n = (struct nlmsghdr *)buf;
	struct nlattr *a, *g, *ga;
	ssize_t len;
	int ret;

	ret = nl_send(sk, GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY, 1,
		      CTRL_ATTR_FAMILY_NAME, MUSER_GENL_NAME);
	if (ret)
		return ret;
	len = recv(sk, buf, sizeof(buf), 0);
	if (len < 0)
		return -errno;
	if (!NLMSG_OK(n, len))
		return -EPROTO;
	if (n->nlmsg_type == NLMSG_ERROR) {
		ret = ((struct nlmsgerr *)NLMSG_DATA(n))->error;
		return ret ? ret : -EPROTO;
	}
	*family = 0;
	*group = 0;
	for_each_attr(a, (char *)NLMSG_DATA(n) + GENL_HDRLEN,
		      NLMSG_PAYLOAD(n, GENL_HDRLEN)) {
		if (a->nla_type == CTRL_ATTR_FAMILY_ID)
			*family = *(uint16_t *)((char *)a + NLA_HDRLEN);
		if ((a->nla_type & NLA_TYPE_MASK) != CTRL_ATTR_MCAST_GROUPS)
			continue;
		for_each_attr(g, (char *)a + NLA_HDRLEN, a->nla_len - NLA_HDRLEN) {
			uint32_t id = 0;
			bool events = false;

			for_each_attr(ga, (char *)g + NLA_HDRLEN,
				      g->nla_len - NLA_HDRLEN) {
				if (ga->nla_type == CTRL_ATTR_MCAST_GRP_ID)
					id = *(uint32_t *)((char *)ga + NLA_HDRLEN);
				if (ga->nla_type == CTRL_ATTR_MCAST_GRP_NAME &&
				    !strcmp((char *)ga + NLA_HDRLEN,
					    MUSER_GENL_MCGRP_EVENTS))
					events = true;
			}
			if (events)
				*group = id;
		}
	}
	return *family ? 0 : -EPROTO;
}

static void nl_parse_dev(struct nlmsghdr *n, struct nl_dev *d)
{
	struct nlattr *a;

	memset(d, 0, sizeof(*d));
	for_each_attr(a, (char *)NLMSG_DATA(n) + GENL_HDRLEN,
		      NLMSG_PAYLOAD(n, GENL_HDRLEN)) {
		void *v = (char *)a + NLA_HDRLEN;

		switch (a->nla_type) {
		case MUSER_ATTR_UUID:
			snprintf(d->uuid, sizeof(d->uuid), "%s", (char *)v);
			break;
		case MUSER_ATTR_STATE:
			d->state = *(uint32_t *)v;
			break;
		case MUSER_ATTR_EMULATOR_PID:
			d->pid = *(uint32_t *)v;
			break;
		case MUSER_ATTR_VMM_OPEN:
			d->vmm_open = *(uint32_t *)v;
			break;
		case MUSER_ATTR_PINNED_PAGES:
			memcpy(&d->pinned, v, 8);
			break;
		case MUSER_ATTR_MAPPED_PAGES:
			memcpy(&d->mapped, v, 8);
			break;
		case MUSER_ATTR_DEVMEM_PAGES:
			memcpy(&d->devmem_pages, v, 8);
			break;
		case MUSER_ATTR_DEVMEM_BUDGET:
			memcpy(&d->devmem_budget, v, 8);
			break;
		}
	}
}

/* MUSER_CMD_GET_DEVICE as a dump: the number of devices, or -errno. */
static int nl_dump(struct nl_dev *out, int max)
{
	static __thread char buf[32768];
	uint16_t family;
	uint32_t group;
	int sk, ret, nr = 0;

	sk = nl_socket();
	if (sk < 0)
		return sk;
	ret = nl_resolve(sk, &family, &group);
	if (ret)
		goto out;
	ret = nl_send(sk, family, NLM_F_DUMP, MUSER_CMD_GET_DEVICE,
		      MUSER_GENL_VERSION, 0, NULL);
	if (ret)
		goto out;
	for (;;) {
		ssize_t len = recv(sk, buf, sizeof(buf), 0);
		struct nlmsghdr *n;

		if (len < 0) {
			ret = -errno;
			goto out;
		}
		for (n = (struct nlmsghdr *)buf; NLMSG_OK(n, len);
		     n = NLMSG_NEXT(n, len)) {
			if (n->nlmsg_type == NLMSG_DONE) {
				ret = nr;
				goto out;
			}
			if (n->nlmsg_type == NLMSG_ERROR) {
				ret = ((struct nlmsgerr *)NLMSG_DATA(n))->error;
				ret = ret ? ret : -EPROTO;
				goto out;
			}
			if (nr < max)
				nl_parse_dev(n, &out[nr]);
			nr++;
		}
	}
out:
	close(sk);
	return ret;
}

/* ---------------------------------------------------- the emulator child */

static void emu_fail(const char *uuid, const char *what, int err)
{
	fprintf(stderr, "# emulator %d on %s: %s: unexpected %s\n", getpid(),
		uuid, what, lc_errname(err));
	fflush(stderr);
	_exit(1);
}

#define EMU_EXPECT(uuid, what, ret, set) do {				\
	if ((ret) < 0 && !in_set(-(ret), set))				\
		emu_fail(uuid, what, -(ret));				\
} while (0)

/* Guest memory and device memory the way an emulator uses them. */
static void emu_side_work(const char *uuid, int ctl, uint64_t *rng)
{
	uint64_t iova = lc_rnd(rng) % (GUEST_END / PG) * PG, off;
	struct muser_irq_state st;
	uint8_t buf[64], v;
	int ret;
	void *p;

	switch (lc_rnd(rng) % 6) {
	case 0:		/* copy */
		ret = _test_dma_rw(ctl, iova + lc_rnd(rng) % (PG - 64), buf,
				   1 + lc_rnd(rng) % 64, lc_rnd(rng) & 1);
		EMU_EXPECT(uuid, "DMA_RW", ret, E(ENXIO, EFAULT, ENOTCONN));
		break;
	case 1:		/* map, touch, release */
		ret = _test_dma_map(ctl, iova, PG, lc_rnd(rng) & 1 ? MUSER_DMA_F_WRITE : 0,
				    &off);
		EMU_EXPECT(uuid, "DMA_MAP", ret, E(ENXIO, EFAULT, ENOTCONN));
		if (ret)
			break;
		p = map_fd(ctl, off, PG, MAP_SHARED);
		if (!p)
			EMU_EXPECT(uuid, "mmap DMA window", -errno, E(ENOTCONN));
		if (p) {
			touch(p, &v);	/* SIGBUS once revoked: fine */
			munmap(p, PG);
		}
		ret = _test_dma_release(ctl, iova, PG);
		EMU_EXPECT(uuid, "DMA_RELEASE", ret, E(EINVAL, ENOTCONN));
		break;
	case 2:		/* the state area */
		p = map_fd(ctl, MUSER_STATE_OFFSET, PG, MAP_SHARED);
		if (!p) {
			EMU_EXPECT(uuid, "mmap state", -errno, E(ENOTCONN));
			break;
		}
		poke(p, (uint8_t)lc_rnd(rng));
		munmap(p, PG);
		break;
	case 3:		/* device memory */
		p = map_fd(ctl, MUSER_REGION_OFFSET(BAR2), DEVMEM_SIZE, MAP_SHARED);
		if (!p) {
			EMU_EXPECT(uuid, "mmap devmem", -errno, E(ENODEV));
			break;
		}
		poke(p, (uint8_t)lc_rnd(rng));
		munmap(p, DEVMEM_SIZE);
		break;
	case 4:
		ret = emu_trigger_irq(ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1);
		EMU_EXPECT(uuid, "TRIGGER_IRQ", ret, E(ENOENT, ENOTCONN));
		break;
	default:
		ret = emu_get_irq_state(ctl, VFIO_PCI_MSI_IRQ_INDEX, &st);
		EMU_EXPECT(uuid, "GET_IRQ_STATE", ret, NONE);
		break;
	}
}

/*
 * An emulator process: take the device over (or attach), serve it for a
 * while with the pattern, use guest and device memory, then detach or
 * just exit. Exit status 1 with a message on an unexpected errno.
 */
static int emulator_run(const char *uuid, uint64_t seed)
{
	static struct emu_req reqs[16];
	struct muser_device_info info;
	uint64_t rng = seed_mix(seed);
	int64_t end;
	long bad = 0;
	int ctl, ret, n, i;

	ctl = ctl_open(uuid, O_NONBLOCK);
	/* The device went (or the module is going) before we came. */
	EMU_EXPECT(uuid, "open", ctl, E(ENOENT, ENXIO, ENODEV));
	if (ctl < 0)
		return 0;
	lc_layout(&info);
	ret = ioctl(ctl, lc_rnd(&rng) % 4 ? MUSER_IOC_TAKEOVER : MUSER_IOC_ATTACH,
		    &info) ? -errno : 0;
	EMU_EXPECT(uuid, "attach", ret, E(EBUSY, ENODEV));
	if (ret)
		return 0;

	end = now_ms() + 100 + lc_rnd(&rng) % 3000;
	while (now_ms() < end) {
		struct pollfd pfd = { .fd = ctl, .events = POLLIN };

		poll(&pfd, 1, 20);
		n = emu_read(ctl, reqs, 16);
		/* Taken over, detached by nobody else, removed: the end. */
		if (n == -ENOTCONN || n == -ENODEV)
			return 0;
		EMU_EXPECT(uuid, "read", n, E(EAGAIN));
		for (i = 0; i < n; i++)
			answer(ctl, &reqs[i], &bad);
		if (bad)
			emu_fail(uuid, "reply", -bad);
		if (!(lc_rnd(&rng) % 4))
			emu_side_work(uuid, ctl, &rng);
	}
	if (lc_rnd(&rng) & 1) {
		ret = ioctl(ctl, MUSER_IOC_DETACH) ? -errno : 0;
		EMU_EXPECT(uuid, "detach", ret, E(ENOTCONN));
	}
	return 0;
}

/*
 * The emulators' parent: a process forked before the test opens anything
 * or starts a thread, so an emulator inherits none of the test's files (a
 * fork of the test itself would hold its VFIO group for a moment, and the
 * next open of the group fail with EBUSY). It forks emulators on request,
 * kills them on request (it alone reaps them, so a pid it knows is never
 * reused) and reports every exit on a second socket.
 */
enum { SP_SPAWN, SP_KILL, SP_KILLALL, SP_REPLY, SP_EXITED };

struct sp_msg {
	int type;
	pid_t pid;		/* or -errno in a reply */
	int status;
	uint64_t seed;
	char uuid[UUID_LEN + 1];
};

#define SP_MAX	64

static void sp_reap(int ev, pid_t *kids, bool block)
{
	struct sp_msg m = { .type = SP_EXITED };
	int i, n;

	for (n = 0, i = 0; i < SP_MAX; i++)
		n += kids[i] > 0;
	while (n && (m.pid = waitpid(-1, &m.status, block ? 0 : WNOHANG)) > 0) {
		for (i = 0; i < SP_MAX; i++)
			if (kids[i] == m.pid)
				kids[i] = 0;
		n--;
		send(ev, &m, sizeof(m), 0);
	}
}

static void spawner_main(int req, int ev)
{
	pid_t kids[SP_MAX] = { 0 };
	struct sp_msg m;
	int i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		struct pollfd p = { .fd = req, .events = POLLIN };
		int r = poll(&p, 1, 20);

		sp_reap(ev, kids, false);
		if (r <= 0)
			continue;
		if (recv(req, &m, sizeof(m), 0) != sizeof(m))
			break;		/* the test is done */
		switch (m.type) {
		case SP_SPAWN:
			for (i = 0; i < SP_MAX && kids[i]; i++)
				;
			m.pid = i < SP_MAX ? fork() : -1;
			if (!m.pid) {
				close(req);
				close(ev);
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				_exit(emulator_run(m.uuid, m.seed));
			}
			if (m.pid > 0)
				kids[i] = m.pid;
			else
				m.pid = -EAGAIN;
			break;
		case SP_KILL:
			for (i = 0; i < SP_MAX && kids[i] != m.pid; i++)
				;
			if (i == SP_MAX)
				m.pid = -ESRCH;
			else if (kill(m.pid, SIGKILL))
				m.pid = -errno;
			break;
		case SP_KILLALL:
			for (i = 0; i < SP_MAX; i++)
				if (kids[i])
					kill(kids[i], SIGKILL);
			sp_reap(ev, kids, true);
			break;
		}
		m.type = SP_REPLY;
		send(req, &m, sizeof(m), 0);
	}
	for (i = 0; i < SP_MAX; i++)
		if (kids[i])
			kill(kids[i], SIGKILL);
	sp_reap(ev, kids, true);
	_exit(0);
}

/* -------------------------------------------------------------- the test */

enum slot_state { S_EMPTY, S_CREATING, S_LIVE, S_REMOVING };

struct ctl_ent {
	int fd;
	unsigned int gen;	/* the device generation it was opened on */
	void *map;		/* its device memory, or NULL */
};

struct vmm {
	struct vfio_client c;	/* open iff c.device >= 0 */
	unsigned int gen;
	bool base_mapped, extra_mapped, req;
	void *bar;		/* the VMM's mapping of device memory */
};

/*
 * One device at a time, created and removed over and over. Locks: vmm_lock
 * or emu_lock for the VMM or the emulator side, st_lock (innermost, never
 * held across a blocking call) for the device's state.
 */
struct slot {
	pthread_mutex_t st_lock;
	enum slot_state state;
	unsigned int gen, seq;	/* seq: every state change */
	char uuid[UUID_LEN + 1], old_uuid[UUID_LEN + 1];

	pthread_mutex_t vmm_lock;
	struct vmm vmm;
	uint8_t *extra_mem;
	int req_efd, msi_efd;	/* for the life of the test */

	pthread_mutex_t emu_lock;
	struct ctl_ent ctl[2];
	void *orphan;		/* device memory mapped by a closed ctl */
};

struct child {
	pid_t pid;
	int slot;
	bool killed;
	int64_t killed_ms;
};

struct worker {
	pthread_t thread;
	pid_t tid;
	int id;
	uint64_t rng;
	int64_t op_start;	/* 0: between operations (LOAD/STORE) */
	int op;
};

#define NR_THREADS_WATCHED	(NR_WORKERS + 3)	/* + main, REQ, listener */

struct lc {
	struct __test_metadata *md;
	uint64_t seed;
	pid_t spawner;
	int sp_req, sp_ev;	/* requests and replies; exits */
	char params_run[256], params_orig[256];
	pthread_rwlock_t quiesce;
	struct slot slots[NR_SLOTS];
	struct worker w[NR_THREADS_WATCHED];

	pthread_mutex_t child_lock;
	struct child children[MAX_CHILDREN];
	long spawned, child_clean, child_killed;

	pthread_mutex_t rmmod_lock;
	int rmmod_inflight;
	int64_t rmmod_ms;		/* the last attempt */
	unsigned int unload_gen;	/* odd: unloaded under the workers */
	unsigned int loads;		/* every load of the module */
	long rmmod_ok, idle_points, checks;

	int stop, stop_helpers;	/* LOAD/STORE */
	long failures;
	long ops_total;
	long ops[OP_NR], skipped[OP_NR], unloading_errs;
	long errs[OP_NR][MAX_ERRNO];
	long events[MUSER_EVENT_DMA_UNMAPPED + 1], events_lost;
	long vmm_reads_checked;
};

static struct lc *g;

static void lc_fail(struct worker *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# FAIL [%s, thread %d, seed %#llx]: %s\n",
		w && w->op >= 0 ? op_names[w->op] : "-", w ? w->id : -1,
		(unsigned long long)g->seed, msg);
	if (__atomic_add_fetch(&g->failures, 1, __ATOMIC_RELAXED) >= 20)
		STORE(g->stop, 1);
}

/* A call's context: what could make it fail besides a bug. */
struct opctx {
	struct slot *s;
	char uuid[UUID_LEN + 1];
	enum slot_state state0;
	unsigned int seq0, seq1, gen0;
	unsigned int ugen0;
	bool stale;		/* on a removed device's file */
};

static void ctx_begin(struct opctx *o, struct slot *s)
{
	o->s = s;
	o->stale = false;
	o->ugen0 = __atomic_load_n(&g->unload_gen, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&s->st_lock);
	o->state0 = s->state;
	memcpy(o->uuid, s->uuid, sizeof(o->uuid));
	o->seq0 = o->seq1 = s->seq;
	o->gen0 = s->gen;
	pthread_mutex_unlock(&s->st_lock);
}

/* Right after the call: did the device change state meanwhile? */
static void ctx_end(struct opctx *o)
{
	pthread_mutex_lock(&o->s->st_lock);
	o->seq1 = o->s->seq;
	pthread_mutex_unlock(&o->s->st_lock);
}

/* Whether the module was unloaded under the call (waits out an rmmod). */
static bool ctx_unloaded(struct opctx *o)
{
	unsigned int u;

	while (__atomic_load_n(&g->rmmod_inflight, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	u = __atomic_load_n(&g->unload_gen, __ATOMIC_ACQUIRE);
	return u != o->ugen0 || (u & 1);
}

/*
 * Judge a call: @ret >= 0 or -errno. @normal: what it may fail with
 * anyway; @trans: also while its device is created or removed, or on a
 * removed device's file. While the module is unloaded under it, anything
 * that says the module or device is gone.
 */
static bool judge(struct worker *w, struct opctx *o, long ret,
		  const int *normal, const int *trans, const char *what)
{
	int e = ret < 0 ? (int)-ret : 0;

	if (!e)
		return true;
	if (e < MAX_ERRNO)
		__atomic_add_fetch(&g->errs[w->op][e], 1, __ATOMIC_RELAXED);
	if (in_set(e, normal))
		return false;
	if (o && (o->stale || o->state0 != S_LIVE || o->seq1 != o->seq0) &&
	    in_set(e, trans))
		return false;
	/*
	 * EINVAL: a container ioctl after the group's device went with the
	 * module (vfio_client_open() maps guest memory before it opens the
	 * device, so nothing holds the module yet).
	 */
	if (o && ctx_unloaded(o) &&
	    in_set(e, E(ENOENT, ENODEV, ENXIO, ENOTCONN, ETIMEDOUT, EBUSY,
			EPROTONOSUPPORT, EINVAL))) {
		__atomic_add_fetch(&g->unloading_errs, 1, __ATOMIC_RELAXED);
		return false;
	}
	lc_fail(w, "%s%s%s: %s (device state %d -> %s, gen %u)", what,
		o ? " on " : "", o ? o->uuid : "", lc_errname(e),
		o ? (int)o->state0 : -1,
		o && o->seq1 != o->seq0 ? "changed" : "same", o ? o->gen0 : 0);
	return false;
}

static void skip_op(struct worker *w)
{
	__atomic_add_fetch(&g->skipped[w->op], 1, __ATOMIC_RELAXED);
}

static void set_state(struct slot *s, enum slot_state st)
{
	pthread_mutex_lock(&s->st_lock);
	s->state = st;
	s->seq++;
	pthread_mutex_unlock(&s->st_lock);
}

/* ------------------------------------------------------------- children */

/* One request to the spawner; its reply's pid (or -errno). */
static pid_t sp_call(struct sp_msg *m)
{
	if (send(g->sp_req, m, sizeof(*m), 0) != sizeof(*m))
		return -errno;
	if (recv(g->sp_req, m, sizeof(*m), 0) != sizeof(*m))
		return -EPIPE;
	return m->pid;
}

/* Take in the exits the spawner reported. */
static void reap_locked(struct worker *w)
{
	struct sp_msg m;
	int i;

	while (recv(g->sp_ev, &m, sizeof(m), MSG_DONTWAIT) == sizeof(m)) {
		for (i = 0; i < MAX_CHILDREN; i++)
			if (g->children[i].pid == m.pid)
				break;
		if (i == MAX_CHILDREN) {
			lc_fail(w, "emulator %d exited, not one of ours", m.pid);
			continue;
		}
		if (WIFEXITED(m.status) && !WEXITSTATUS(m.status))
			g->child_clean++;
		else if (WIFSIGNALED(m.status) && WTERMSIG(m.status) == SIGKILL)
			g->child_killed++;
		else
			lc_fail(w, "emulator %d exited with status %#x (%s)",
				m.pid, m.status, WIFSIGNALED(m.status) ?
				strsignal(WTERMSIG(m.status)) : "exit code");
		g->children[i].pid = 0;
	}
}

static void reap(struct worker *w)
{
	pthread_mutex_lock(&g->child_lock);
	reap_locked(w);
	pthread_mutex_unlock(&g->child_lock);
}

static void op_spawn(struct worker *w, struct slot *s)
{
	struct sp_msg m = { .type = SP_SPAWN };
	enum slot_state st;
	pid_t pid;
	int i;

	pthread_mutex_lock(&s->st_lock);
	st = s->state;
	memcpy(m.uuid, s->uuid, sizeof(m.uuid));
	pthread_mutex_unlock(&s->st_lock);
	if (st != S_LIVE && (st != S_REMOVING || lc_rnd(&w->rng) % 4))
		return skip_op(w);

	pthread_mutex_lock(&g->child_lock);
	reap_locked(w);
	for (i = 0; i < MAX_CHILDREN && g->children[i].pid; i++)
		;
	if (i == MAX_CHILDREN) {
		pthread_mutex_unlock(&g->child_lock);
		return skip_op(w);
	}
	g->spawned++;
	m.seed = g->seed ^ (uint64_t)g->spawned << 32;
	pid = sp_call(&m);
	if (pid < 0)
		lc_fail(w, "spawning an emulator: %s", lc_errname(-pid));
	else
		g->children[i] = (struct child){
			.pid = pid, .slot = (int)(s - g->slots),
		};
	pthread_mutex_unlock(&g->child_lock);
}

static void op_kill(struct worker *w)
{
	int i, n = 0, pick[MAX_CHILDREN];
	struct sp_msg m = { .type = SP_KILL };

	pthread_mutex_lock(&g->child_lock);
	reap_locked(w);
	for (i = 0; i < MAX_CHILDREN; i++)
		if (g->children[i].pid && !g->children[i].killed)
			pick[n++] = i;
	if (n) {
		struct child *c = &g->children[pick[lc_rnd(&w->rng) % n]];

		m.pid = c->pid;
		/* ESRCH: it exited, its exit not read yet. */
		if (sp_call(&m) < 0 && m.pid != -ESRCH)
			lc_fail(w, "kill %d: %s", c->pid, lc_errname(-m.pid));
		c->killed = true;
		c->killed_ms = now_ms();
	}
	pthread_mutex_unlock(&g->child_lock);
	if (!n)
		skip_op(w);
}

/* SIGKILL every emulator and wait for all of them (the watchdog bounds it). */
static void kill_all_children(struct worker *w)
{
	struct sp_msg m = { .type = SP_KILLALL };
	int i;

	pthread_mutex_lock(&g->child_lock);
	for (i = 0; i < MAX_CHILDREN; i++) {
		if (!g->children[i].pid || g->children[i].killed)
			continue;
		g->children[i].killed = true;
		g->children[i].killed_ms = now_ms();
	}
	if (sp_call(&m) < 0)
		lc_fail(w, "the spawner: %s", lc_errname(-m.pid));
	reap_locked(w);
	for (i = 0; i < MAX_CHILDREN; i++)
		if (g->children[i].pid) {
			lc_fail(w, "emulator %d still there after SIGKILL",
				g->children[i].pid);
			g->children[i].pid = 0;
		}
	pthread_mutex_unlock(&g->child_lock);
}

/* --------------------------------------------------------------- devices */

static void op_create(struct worker *w, struct slot *s)
{
	struct opctx o;
	char uuid[UUID_LEN + 1];
	int ret;

	pthread_mutex_lock(&s->st_lock);
	if (s->state != S_EMPTY) {
		pthread_mutex_unlock(&s->st_lock);
		return skip_op(w);
	}
	s->state = S_CREATING;
	s->seq++;
	s->gen++;
	memcpy(s->old_uuid, s->uuid, sizeof(uuid));
	uuid_gen(s->uuid);
	memcpy(uuid, s->uuid, sizeof(uuid));
	pthread_mutex_unlock(&s->st_lock);

	ctx_begin(&o, s);
	o.state0 = S_LIVE;	/* nothing else may disturb a create */
	ret = mdev_create_uuid(uuid);
	ctx_end(&o);
	judge(w, &o, ret, NONE, NONE, "create");
	set_state(s, ret ? S_EMPTY : S_LIVE);
}

static void vmm_close_locked(struct slot *s)
{
	struct vmm *v = &s->vmm;

	if (v->bar)
		munmap(v->bar, DEVMEM_SIZE);
	v->bar = NULL;
	vfio_client_close(&v->c);
	v->base_mapped = v->extra_mapped = v->req = false;
}

static void op_remove(struct worker *w, struct slot *s)
{
	char uuid[UUID_LEN + 1], path[PATH_MAX];
	struct opctx o;
	int ret;

	pthread_mutex_lock(&s->st_lock);
	if (s->state != S_LIVE) {
		pthread_mutex_unlock(&s->st_lock);
		return skip_op(w);
	}
	s->state = S_REMOVING;
	s->seq++;
	memcpy(uuid, s->uuid, sizeof(uuid));
	pthread_mutex_unlock(&s->st_lock);

	/*
	 * Removal waits for the VMM to close the device: it is asked through
	 * the REQ eventfd (the REQ thread answers), or closed here first.
	 */
	pthread_mutex_lock(&s->vmm_lock);
	if (s->vmm.c.device >= 0 && (!s->vmm.req || lc_rnd(&w->rng) % 3))
		vmm_close_locked(s);
	pthread_mutex_unlock(&s->vmm_lock);

	ctx_begin(&o, s);
	o.state0 = S_LIVE;
	ret = mdev_remove(uuid);
	ctx_end(&o);
	judge(w, &o, ret, NONE, NONE, "remove");
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s", uuid);
	if (!ret && path_exists(path))
		lc_fail(w, "%s still exists after its removal", uuid);
	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", uuid);
	if (!ret && path_exists(path))
		lc_fail(w, "%s still exists after the removal", path);
	set_state(s, ret ? S_LIVE : S_EMPTY);
}

/* ------------------------------------------------------------------- VMM */

static void op_vmm_open(struct worker *w, struct slot *s)
{
	struct vmm *v = &s->vmm;
	const char *step = "?";
	struct opctx o;
	int ret;

	pthread_mutex_lock(&s->vmm_lock);
	ctx_begin(&o, s);
	if (v->c.device >= 0 || (o.state0 != S_LIVE && o.state0 != S_REMOVING)) {
		pthread_mutex_unlock(&s->vmm_lock);
		return skip_op(w);
	}
	ret = vfio_client_open(&v->c, o.uuid, &step);
	ctx_end(&o);
	if (!judge(w, &o, ret, NONE, E(ENOENT, ENODEV, EBUSY, EINVAL), step) &&
	    ret) {
		pthread_mutex_unlock(&s->vmm_lock);
		return;
	}
	v->gen = o.gen0;
	v->base_mapped = true;
	/* Needs the layout: ETIMEDOUT before any emulator attached. */
	ret = set_irq_eventfd(v->c.device, VFIO_PCI_REQ_IRQ_INDEX, 0, s->req_efd);
	judge(w, &o, ret, E(ETIMEDOUT), NONE, "SET_IRQS REQ");
	v->req = !ret;
	/* A VMM does not keep a device that is going. */
	pthread_mutex_lock(&s->st_lock);
	ret = s->state != S_LIVE || s->gen != v->gen;
	pthread_mutex_unlock(&s->st_lock);
	if (ret)
		vmm_close_locked(s);
	pthread_mutex_unlock(&s->vmm_lock);
}

static void op_vmm_close(struct worker *w, struct slot *s)
{
	pthread_mutex_lock(&s->vmm_lock);
	if (s->vmm.c.device < 0)
		skip_op(w);
	else
		vmm_close_locked(s);
	pthread_mutex_unlock(&s->vmm_lock);
}

/* Lock the slot's VMM if it is open; false (skipped) if not. */
static bool vmm_get(struct worker *w, struct slot *s)
{
	pthread_mutex_lock(&s->vmm_lock);
	if (s->vmm.c.device >= 0)
		return true;
	pthread_mutex_unlock(&s->vmm_lock);
	skip_op(w);
	return false;
}

/* Trapped accesses: answered by some emulator of ours, or ETIMEDOUT. */
static void op_vmm_rw(struct worker *w, struct slot *s)
{
	static const size_t lens[] = { 1, 2, 4, 8, 64 };
	uint8_t buf[64];
	struct opctx o;
	bool write = !(lc_rnd(&w->rng) % 4);
	size_t len = lens[lc_rnd(&w->rng) % 5], i;
	int region = lc_rnd(&w->rng) & 1 ? BAR0 : BAR2;
	uint64_t off;
	ssize_t n;

	if (!vmm_get(w, s))
		return;
	off = region == BAR0 ? lc_rnd(&w->rng) % (0x1000 - 64) :
	      DEVMEM_SIZE + lc_rnd(&w->rng) % (0x10000 - DEVMEM_SIZE - 64);
	memset(buf, 0xa5, sizeof(buf));
	ctx_begin(&o, s);
	n = write ? region_write(&s->vmm.c, region, off, buf, len) :
		    region_read(&s->vmm.c, region, off, buf, len);
	ctx_end(&o);
	if (judge(w, &o, n, E(ETIMEDOUT), NONE, write ? "pwrite" : "pread")) {
		if ((size_t)n != len)
			lc_fail(w, "%s of %zu bytes returned %zd", write ?
				"pwrite" : "pread", len, n);
		for (i = 0; !write && i < (size_t)n; i++) {
			if (buf[i] == emu_pattern(region, off + i))
				continue;
			lc_fail(w, "read of region %d at %#llx + %zu: %#x, expected %#x",
				region, (unsigned long long)off, i, buf[i],
				emu_pattern(region, off + i));
			break;
		}
		__atomic_add_fetch(&g->vmm_reads_checked, !write, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&s->vmm_lock);
}

/* Device memory: served by the kernel once there is a layout. */
static void op_vmm_devmem(struct worker *w, struct slot *s)
{
	uint8_t buf[256];
	struct opctx o;
	bool write = lc_rnd(&w->rng) & 1;
	uint64_t off = lc_rnd(&w->rng) % (DEVMEM_SIZE - sizeof(buf));
	ssize_t n;

	if (!vmm_get(w, s))
		return;
	memset(buf, (int)off, sizeof(buf));
	ctx_begin(&o, s);
	n = write ? region_write(&s->vmm.c, BAR2, off, buf, sizeof(buf)) :
		    region_read(&s->vmm.c, BAR2, off, buf, sizeof(buf));
	ctx_end(&o);
	if (judge(w, &o, n, E(ETIMEDOUT), NONE, "devmem rw") &&
	    n != sizeof(buf))
		lc_fail(w, "devmem access of %zu bytes returned %zd", sizeof(buf), n);
	pthread_mutex_unlock(&s->vmm_lock);
}

/* Map device memory through VFIO (kept until the VMM closes), or unmap. */
static void op_vmm_mmap(struct worker *w, struct slot *s)
{
	struct vmm *v = &s->vmm;
	struct opctx o;
	uint8_t b;
	void *p;

	if (!vmm_get(w, s))
		return;
	if (v->bar) {
		munmap(v->bar, DEVMEM_SIZE);
		v->bar = NULL;
	} else {
		ctx_begin(&o, s);
		p = map_fd(v->c.device, MUSER_REGION_OFFSET(BAR2), DEVMEM_SIZE, MAP_SHARED);
		ctx_end(&o);
		/* ENODEV: no emulator has attached yet (mmap never waits). */
		if (!p)
			judge(w, &o, -errno, E(ENODEV), NONE, "VFIO mmap");
		else if (!touch(p, &b))
			lc_fail(w, "VFIO mapping of device memory faults");
		v->bar = p;
	}
	pthread_mutex_unlock(&s->vmm_lock);
}

static void op_vmm_reset(struct worker *w, struct slot *s)
{
	struct opctx o;
	int ret;

	if (!vmm_get(w, s))
		return;
	ctx_begin(&o, s);
	ret = ioctl(s->vmm.c.device, VFIO_DEVICE_RESET) ? -errno : 0;
	ctx_end(&o);
	judge(w, &o, ret, E(ETIMEDOUT), NONE, "VFIO_DEVICE_RESET");
	pthread_mutex_unlock(&s->vmm_lock);
}

/* Unmap or map again one of the VMM's two guest memory ranges. */
static void op_vmm_dma(struct worker *w, struct slot *s)
{
	struct vmm *v = &s->vmm;
	bool extra = lc_rnd(&w->rng) % 3;
	bool *mapped = extra ? &v->extra_mapped : &v->base_mapped;
	uint64_t iova = extra ? EXTRA_IOVA : 0;
	const char *what;
	struct opctx o;
	int ret;

	if (!vmm_get(w, s))
		return;
	what = *mapped ? "VFIO_IOMMU_UNMAP_DMA" : "VFIO_IOMMU_MAP_DMA";
	ctx_begin(&o, s);
	if (*mapped)
		ret = _test_vmm_unmap(&v->c, iova, DMA_SIZE);
	else
		ret = _test_vmm_map(&v->c, extra ? s->extra_mem : v->c.dma,
				    iova, DMA_SIZE, VMM_RW);
	ctx_end(&o);
	if (!ret)
		*mapped = !*mapped;
	judge(w, &o, ret, NONE, NONE, what);
	pthread_mutex_unlock(&s->vmm_lock);
}

static void op_vmm_irq(struct worker *w, struct slot *s)
{
	struct vmm *v = &s->vmm;
	struct opctx o;
	const char *what;
	int ret;

	if (!vmm_get(w, s))
		return;
	ctx_begin(&o, s);
	switch (v->req ? lc_rnd(&w->rng) % 3 : 0) {
	case 0:
		what = "SET_IRQS REQ";
		ret = set_irq_eventfd(v->c.device, VFIO_PCI_REQ_IRQ_INDEX, 0,
				      s->req_efd);
		if (!ret)
			v->req = true;
		break;
	case 1:
		what = "SET_IRQS MSI";
		ret = set_irq_eventfd(v->c.device, VFIO_PCI_MSI_IRQ_INDEX, 0,
				      s->msi_efd);
		break;
	default:
		what = "SET_IRQS MSI off";
		ret = vfio_set_irqs(v->c.device, VFIO_IRQ_SET_DATA_NONE |
				    VFIO_IRQ_SET_ACTION_TRIGGER,
				    VFIO_PCI_MSI_IRQ_INDEX, 0, 0, NULL);
		break;
	}
	ctx_end(&o);
	judge(w, &o, ret, E(ETIMEDOUT), NONE, what);
	pthread_mutex_unlock(&s->vmm_lock);
}

/* ------------------------------------------------------ in-process ctl */

static void ctl_close_ent(struct slot *s, struct ctl_ent *c, bool keep_map)
{
	if (c->map && keep_map && !s->orphan)
		s->orphan = c->map;
	else if (c->map)
		munmap(c->map, DEVMEM_SIZE);
	c->map = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Lock the emulator side and pick an open control node, or skip. */
static struct ctl_ent *ctl_get(struct worker *w, struct slot *s,
			       struct opctx *o)
{
	struct ctl_ent *c;
	int i = lc_rnd(&w->rng) & 1;

	pthread_mutex_lock(&s->emu_lock);
	c = &s->ctl[i];
	if (c->fd < 0)
		c = &s->ctl[!i];
	if (c->fd < 0) {
		pthread_mutex_unlock(&s->emu_lock);
		skip_op(w);
		return NULL;
	}
	ctx_begin(o, s);
	o->stale = c->gen != o->gen0;
	return c;
}

static void op_ctl_open(struct worker *w, struct slot *s)
{
	struct ctl_ent *c;
	struct opctx o;
	int fd;

	pthread_mutex_lock(&s->emu_lock);
	c = &s->ctl[s->ctl[0].fd < 0 ? 0 : 1];
	ctx_begin(&o, s);
	if (c->fd >= 0 || (o.state0 != S_LIVE && o.state0 != S_REMOVING)) {
		pthread_mutex_unlock(&s->emu_lock);
		return skip_op(w);
	}
	fd = ctl_open(o.uuid, O_NONBLOCK);
	ctx_end(&o);
	if (fd >= 0) {
		c->fd = fd;
		c->gen = o.gen0;
	} else {
		judge(w, &o, fd, NONE, E(ENOENT, ENXIO, ENODEV), "open ctl");
	}
	pthread_mutex_unlock(&s->emu_lock);
}

static void op_ctl_close(struct worker *w, struct slot *s)
{
	struct ctl_ent *c;
	struct opctx o;

	pthread_mutex_lock(&s->emu_lock);
	if (s->orphan && lc_rnd(&w->rng) & 1) {
		munmap(s->orphan, DEVMEM_SIZE);
		s->orphan = NULL;
		pthread_mutex_unlock(&s->emu_lock);
		return;
	}
	pthread_mutex_unlock(&s->emu_lock);
	c = ctl_get(w, s, &o);
	if (!c)
		return;
	ctl_close_ent(s, c, lc_rnd(&w->rng) & 1);
	pthread_mutex_unlock(&s->emu_lock);
}

static void op_attach(struct worker *w, struct slot *s, bool takeover)
{
	struct muser_device_info info;
	struct ctl_ent *c;
	struct opctx o;
	int ret;

	c = ctl_get(w, s, &o);
	if (!c)
		return;
	lc_layout(&info);
	ret = ioctl(c->fd, takeover ? MUSER_IOC_TAKEOVER : MUSER_IOC_ATTACH,
		    &info) ? -errno : 0;
	ctx_end(&o);
	/* EBUSY: another emulator (attach), or this one already (either). */
	judge(w, &o, ret, E(EBUSY), E(ENODEV), takeover ? "TAKEOVER" : "ATTACH");
	pthread_mutex_unlock(&s->emu_lock);
}

static void op_detach(struct worker *w, struct slot *s)
{
	struct ctl_ent *c;
	struct opctx o;
	int ret;

	c = ctl_get(w, s, &o);
	if (!c)
		return;
	ret = ioctl(c->fd, MUSER_IOC_DETACH) ? -errno : 0;
	ctx_end(&o);
	judge(w, &o, ret, E(ENOTCONN), NONE, "DETACH");
	pthread_mutex_unlock(&s->emu_lock);
}

static void op_serve(struct worker *w, struct slot *s)
{
	static __thread struct emu_req reqs[16];
	struct ctl_ent *c;
	struct pollfd pfd;
	struct opctx o;
	long bad = 0;
	int n, i;

	c = ctl_get(w, s, &o);
	if (!c)
		return;
	pfd = (struct pollfd){ .fd = c->fd, .events = POLLIN };
	poll(&pfd, 1, 20);
	n = emu_read(c->fd, reqs, 16);
	ctx_end(&o);
	judge(w, &o, n, E(EAGAIN, ENOTCONN), E(ENODEV), "read ctl");
	for (i = 0; i < n; i++)
		answer(c->fd, &reqs[i], &bad);
	if (bad)
		judge(w, &o, bad, NONE, NONE, "reply");
	pthread_mutex_unlock(&s->emu_lock);
}

static void op_dma_map(struct worker *w, struct slot *s)
{
	uint64_t iova = lc_rnd(&w->rng) % GUEST_PAGES * PG, off;
	uint32_t size = PG * (1 + lc_rnd(&w->rng) % 2);
	struct ctl_ent *c;
	struct opctx o;
	uint8_t v;
	void *p;
	int ret;

	if (iova + size > GUEST_END)
		iova = GUEST_END - size;
	c = ctl_get(w, s, &o);
	if (!c)
		return;
	ret = _test_dma_map(c->fd, iova, size, lc_rnd(&w->rng) & 1 ? MUSER_DMA_F_WRITE : 0,
			    &off);
	ctx_end(&o);
	/* ENXIO: no VMM; EFAULT: not mapped by it; ENOTCONN: not attached. */
	judge(w, &o, ret, E(ENXIO, EFAULT, ENOTCONN), NONE, "DMA_MAP");
	if (!ret) {
		p = map_fd(c->fd, off, size, MAP_SHARED);
		if (!p)
			judge(w, &o, -errno, E(ENOTCONN), NONE, "mmap DMA window");
		if (p) {
			touch(p, &v);		/* SIGBUS once revoked */
			poke((uint8_t *)p + size - 1, v);
			munmap(p, size);
		}
		ret = _test_dma_release(c->fd, iova, size);
		/* Holds go with a detach or a takeover. */
		judge(w, &o, ret, E(EINVAL, ENOTCONN), NONE, "DMA_RELEASE");
	}
	pthread_mutex_unlock(&s->emu_lock);
}

static void op_dma_rw(struct worker *w, struct slot *s)
{
	uint64_t iova = lc_rnd(&w->rng) % (GUEST_END - 256);
	uint8_t buf[256];
	struct ctl_ent *c;
	struct opctx o;
	int ret;

	c = ctl_get(w, s, &o);
	if (!c)
		return;
	ret = _test_dma_rw(c->fd, iova, buf, 1 + lc_rnd(&w->rng) % sizeof(buf),
			   lc_rnd(&w->rng) & 1);
	ctx_end(&o);
	judge(w, &o, ret, E(ENXIO, EFAULT, ENOTCONN), NONE, "DMA_RW");
	pthread_mutex_unlock(&s->emu_lock);
}

/* Map device memory through the control node, kept past its close. */
static void op_ctl_mmap(struct worker *w, struct slot *s)
{
	struct ctl_ent *c;
	struct opctx o;
	uint8_t v;

	c = ctl_get(w, s, &o);
	if (!c)
		return;
	if (c->map) {
		munmap(c->map, DEVMEM_SIZE);
		c->map = NULL;
	} else {
		c->map = map_fd(c->fd, MUSER_REGION_OFFSET(BAR2), DEVMEM_SIZE, MAP_SHARED);
		ctx_end(&o);
		/* ENODEV: no layout yet, or the device is gone. */
		if (!c->map)
			judge(w, &o, -errno, E(ENODEV), NONE, "mmap devmem");
		else if (!touch(c->map, &v))
			lc_fail(w, "device memory mapped by the ctl faults");
	}
	pthread_mutex_unlock(&s->emu_lock);
}

/* ------------------------------------------------------- netlink, module */

static bool known_uuid(const char *uuid)
{
	int i;

	bool known = false;

	for (i = 0; i < NR_SLOTS && !known; i++) {
		pthread_mutex_lock(&g->slots[i].st_lock);
		known = !strcmp(g->slots[i].uuid, uuid) ||
			!strcmp(g->slots[i].old_uuid, uuid);
		pthread_mutex_unlock(&g->slots[i].st_lock);
	}
	return known;
}

static void op_nl_dump(struct worker *w)
{
	struct nl_dev devs[NR_SLOTS + 4];
	struct opctx o;
	int n, i;

	ctx_begin(&o, &g->slots[0]);
	n = nl_dump(devs, NR_SLOTS + 4);
	ctx_end(&o);
	o.state0 = S_LIVE;
	o.seq1 = o.seq0;
	if (!judge(w, &o, n, NONE, NONE, "netlink dump") && n < 0)
		return;
	if (n > NR_SLOTS)
		lc_fail(w, "netlink lists %d devices, the test has %d slots", n,
			NR_SLOTS);
	for (i = 0; i < n && i < NR_SLOTS; i++) {
		if (!known_uuid(devs[i].uuid))
			lc_fail(w, "netlink lists %s, not a device of the test",
				devs[i].uuid);
		if (devs[i].pinned > GUEST_PAGES || devs[i].mapped > devs[i].pinned)
			lc_fail(w, "%s: %llu pages pinned, %llu mapped (at most %lu)",
				devs[i].uuid, (unsigned long long)devs[i].pinned,
				(unsigned long long)devs[i].mapped, GUEST_PAGES);
	}
}

static int reload_module(const char *params)
{
	int ret = muser_module_load(params);

	if (!ret)
		__atomic_add_fetch(&g->loads, 1, __ATOMIC_RELEASE);
	return ret;
}

/*
 * rmmod at a random moment. It may succeed only when nothing holds the
 * module: then op_recover() checks that nothing did and loads it again.
 */
static bool op_rmmod(struct worker *w)
{
	int ret;

	pthread_mutex_lock(&g->rmmod_lock);
	/*
	 * Unloaded already, op_recover() to come; or tried a moment ago (once
	 * everything is reset most picks are skips: rmmod would come often).
	 */
	if ((g->unload_gen & 1) || now_ms() - g->rmmod_ms < RMMOD_EVERY_MS) {
		pthread_mutex_unlock(&g->rmmod_lock);
		skip_op(w);
		return false;
	}
	g->rmmod_ms = now_ms();
	__atomic_store_n(&g->rmmod_inflight, 1, __ATOMIC_RELEASE);
	ret = muser_module_unload();
	if (!ret) {
		__atomic_add_fetch(&g->unload_gen, 1, __ATOMIC_RELEASE);
		g->rmmod_ok++;
	}
	__atomic_store_n(&g->rmmod_inflight, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&g->rmmod_lock);
	judge(w, NULL, ret, E(EWOULDBLOCK), NONE, "delete_module");
	return !ret;
}

/* ----------------------------------------------------------- quiescence */

static void lock_all(void)
{
	int i;

	for (i = 0; i < NR_SLOTS; i++) {
		pthread_mutex_lock(&g->slots[i].vmm_lock);
		pthread_mutex_lock(&g->slots[i].emu_lock);
	}
}

static void unlock_all(void)
{
	int i;

	for (i = 0; i < NR_SLOTS; i++) {
		pthread_mutex_unlock(&g->slots[i].emu_lock);
		pthread_mutex_unlock(&g->slots[i].vmm_lock);
	}
}

/* Files of the module the test holds itself. */
static int files_held(void)
{
	int i, k, n = 0;

	for (i = 0; i < NR_SLOTS; i++) {
		struct slot *s = &g->slots[i];

		n += s->vmm.c.device >= 0;
		n += !!s->orphan;
		for (k = 0; k < 2; k++)
			n += s->ctl[k].fd >= 0 || s->ctl[k].map;
	}
	return n;
}

static void close_everything(void)
{
	int i, k;

	for (i = 0; i < NR_SLOTS; i++) {
		struct slot *s = &g->slots[i];

		for (k = 0; k < 2; k++)
			ctl_close_ent(s, &s->ctl[k], false);
		if (s->orphan)
			munmap(s->orphan, DEVMEM_SIZE);
		s->orphan = NULL;
		vmm_close_locked(s);
	}
}

static int list_mdevs(char uuids[][UUID_LEN + 1], int max)
{
	struct dirent *de;
	DIR *d = opendir(MDEV_BUS_DIR);
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n < max)
			snprintf(uuids[n], UUID_LEN + 1, "%.36s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static bool is_our_child(int slot, pid_t pid)
{
	int i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (g->children[i].pid == pid && g->children[i].slot == slot)
			return true;
	return false;
}

/*
 * With every worker stopped (and the REQ thread kept out by the slot
 * locks): the kernel's view against the test's. Children still run.
 */
static void check_quiesced(struct worker *w)
{
	char listed[NR_SLOTS + 4][UUID_LEN + 1];
	struct nl_dev devs[NR_SLOTS + 4];
	int i, k, n, nd, live = 0;
	long refcnt;

	g->checks++;
	pthread_mutex_lock(&g->child_lock);
	reap_locked(w);
	n = list_mdevs(listed, NR_SLOTS + 4);
	nd = nl_dump(devs, NR_SLOTS + 4);
	if (nd < 0)
		lc_fail(w, "netlink dump: %s", lc_errname(-nd));
	for (i = 0; i < NR_SLOTS; i++) {
		struct slot *s = &g->slots[i];
		struct nl_dev *d = NULL;
		bool in_sysfs = false;
		bool vmm = s->vmm.c.device >= 0;
		long pinned;

		if (s->state == S_CREATING || s->state == S_REMOVING)
			lc_fail(w, "slot %d in transition while quiesced", i);
		live += s->state == S_LIVE;
		for (k = 0; k < n && k < NR_SLOTS + 4; k++)
			in_sysfs |= !strcmp(listed[k], s->uuid);
		for (k = 0; k < nd && k < NR_SLOTS + 4; k++)
			if (!strcmp(devs[k].uuid, s->uuid))
				d = &devs[k];
		if (in_sysfs != (s->state == S_LIVE))
			lc_fail(w, "%s: the test has it %s, sysfs %s", s->uuid,
				s->state == S_LIVE ? "live" : "gone",
				in_sysfs ? "lists it" : "does not");
		if (nd >= 0 && !!d != (s->state == S_LIVE))
			lc_fail(w, "%s: the test has it %s, netlink %s", s->uuid,
				s->state == S_LIVE ? "live" : "gone",
				d ? "lists it" : "does not");
		if (s->state != S_LIVE || !d)
			continue;
		if (vmm && s->vmm.gen != s->gen)
			lc_fail(w, "%s: a VMM of a removed device is open", s->uuid);
		if (d->vmm_open != (uint32_t)vmm)
			lc_fail(w, "%s: VMM_OPEN %u, the test has %d open",
				s->uuid, d->vmm_open, vmm);
		if (!vmm && (d->pinned || d->mapped))
			lc_fail(w, "%s: %llu pages pinned, %llu mapped with no VMM",
				s->uuid, (unsigned long long)d->pinned,
				(unsigned long long)d->mapped);
		if (d->pinned > GUEST_PAGES || d->mapped > d->pinned)
			lc_fail(w, "%s: %llu pages pinned, %llu mapped, at most %lu",
				s->uuid, (unsigned long long)d->pinned,
				(unsigned long long)d->mapped, GUEST_PAGES);
		pinned = dma_stat(s->uuid, "pinned_pages");
		if (pinned < 0 || pinned > (long)GUEST_PAGES || (!vmm && pinned))
			lc_fail(w, "%s: sysfs pinned_pages %ld (VMM %s)", s->uuid,
				pinned, vmm ? "open" : "closed");
		if (d->devmem_pages > d->devmem_budget ||
		    d->devmem_pages > DEVMEM_SIZE / PG)
			lc_fail(w, "%s: %llu device memory pages", s->uuid,
				(unsigned long long)d->devmem_pages);
		if (d->state == MUSER_DEV_REMOVING)
			lc_fail(w, "%s: live but REMOVING", s->uuid);
		if (d->pid && d->pid != (uint32_t)getpid() && !is_our_child(i, d->pid))
			lc_fail(w, "%s: emulator pid %u is not the test's", s->uuid,
				d->pid);
	}
	if (n != live)
		lc_fail(w, "sysfs lists %d mdevs, the test has %d", n, live);
	if (nd >= 0 && nd != live)
		lc_fail(w, "netlink lists %d devices, the test has %d", nd, live);
	pthread_mutex_unlock(&g->child_lock);
	refcnt = muser_module_refcnt();
	if (refcnt < files_held())
		lc_fail(w, "module refcount %ld, the test holds %d files", refcnt,
			files_held());
}

static void reset_slots(void)
{
	int i;

	for (i = 0; i < NR_SLOTS; i++)
		if (g->slots[i].state != S_EMPTY)
			set_state(&g->slots[i], S_EMPTY);
}

/*
 * Let everything go: the module's refcount must fall to 0 and rmmod
 * succeed with the idle devices present; then they are gone. Workers are
 * stopped. Leaves the module loaded with @params; 0 or -errno.
 */
static int idle_point(struct worker *w, const char *params, bool remove)
{
	char listed[NR_SLOTS + 4][UUID_LEN + 1];
	long refcnt = -1;
	int64_t end;
	int i, ret;

	g->idle_points++;
	kill_all_children(w);
	lock_all();
	close_everything();
	for (i = 0; i < NR_SLOTS; i++) {
		struct slot *s = &g->slots[i];
		long pinned;

		if (s->state != S_LIVE)
			continue;
		pinned = dma_stat(s->uuid, "pinned_pages");
		if (pinned)
			lc_fail(w, "%s: pinned_pages %ld with everything closed",
				s->uuid, pinned);
		if (remove) {
			ret = mdev_remove(s->uuid);
			if (ret)
				lc_fail(w, "remove %s: %s", s->uuid, lc_errname(-ret));
			else
				set_state(s, S_EMPTY);
		}
	}
	/* Files closed by exiting children are released before they are reaped. */
	for (end = now_ms() + 2000; now_ms() < end; sleep_ms(20)) {
		refcnt = muser_module_refcnt();
		if (!refcnt)
			break;
	}
	if (refcnt)
		lc_fail(w, "module refcount %ld with nothing open", refcnt);
	ret = muser_module_unload();
	if (ret) {
		lc_fail(w, "rmmod with nothing open: %s", lc_errname(-ret));
		unlock_all();
		return ret;
	}
	if (path_exists("/sys/module/muser") || path_exists(MDEV_TYPE_DIR))
		lc_fail(w, "muser still in sysfs after rmmod");
	ret = list_mdevs(listed, NR_SLOTS + 4);
	if (ret > 0)
		lc_fail(w, "%d mdevs left after rmmod", ret);
	reset_slots();
	ret = reload_module(params);
	if (ret)
		lc_fail(w, "loading muser.ko again (%s): %s", params, lc_errname(-ret));
	unlock_all();
	return ret;
}

/* A worker's rmmod succeeded: nothing of the test may have held it. */
static void op_recover(struct worker *w)
{
	char listed[NR_SLOTS + 4][UUID_LEN + 1];
	int n, ret;

	w->op = OP_RECOVER;
	STORE(w->op_start, now_ms());
	pthread_rwlock_wrlock(&g->quiesce);
	kill_all_children(w);
	lock_all();
	if (files_held())
		lc_fail(w, "rmmod succeeded while the test held %d files of the module",
			files_held());
	close_everything();
	n = list_mdevs(listed, NR_SLOTS + 4);
	if (n > 0)
		lc_fail(w, "%d mdevs left after rmmod", n);
	reset_slots();
	ret = reload_module(g->params_run);
	if (ret) {
		lc_fail(w, "loading muser.ko again: %s", lc_errname(-ret));
		STORE(g->stop, 1);
	}
	__atomic_add_fetch(&g->unload_gen, 1, __ATOMIC_RELEASE);
	unlock_all();
	pthread_rwlock_unlock(&g->quiesce);
	g->ops[OP_RECOVER]++;
	STORE(w->op_start, 0);
}

/*
 * Stop the workers, for the main thread's checks; not between a worker's
 * successful rmmod and its op_recover(), which has the module to load.
 */
static void quiesce(void)
{
	for (;;) {
		pthread_rwlock_wrlock(&g->quiesce);
		if (!(LOAD(g->unload_gen) & 1))
			return;
		pthread_rwlock_unlock(&g->quiesce);
		sleep_ms(10);
	}
}

/* --------------------------------------------------------------- threads */

static int weight_total;

static int pick_op(struct worker *w)
{
	int r, op;

	r = lc_rnd(&w->rng) % weight_total;
	for (op = 0; r >= op_weight[op]; op++)
		r -= op_weight[op];
	return op;
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	unsigned long long calls = lc_env("MUSER_FUZZ_CALLS", 0), n;

	w->tid = gettid();
	while (!LOAD(g->stop)) {
		struct slot *s;
		bool unloaded = false;
		int op;

		pthread_rwlock_rdlock(&g->quiesce);
		if (LOAD(g->stop)) {
			pthread_rwlock_unlock(&g->quiesce);
			break;
		}
		op = pick_op(w);
		s = &g->slots[lc_rnd(&w->rng) % NR_SLOTS];
		w->op = op;
		STORE(w->op_start, now_ms());
		switch (op) {
		case OP_CREATE:
			op_create(w, s);
			break;
		case OP_REMOVE:
			op_remove(w, s);
			break;
		case OP_VMM_OPEN:
			op_vmm_open(w, s);
			break;
		case OP_VMM_CLOSE:
			op_vmm_close(w, s);
			break;
		case OP_VMM_RW:
			op_vmm_rw(w, s);
			break;
		case OP_VMM_DEVMEM:
			op_vmm_devmem(w, s);
			break;
		case OP_VMM_MMAP:
			op_vmm_mmap(w, s);
			break;
		case OP_VMM_RESET:
			op_vmm_reset(w, s);
			break;
		case OP_VMM_DMA:
			op_vmm_dma(w, s);
			break;
		case OP_VMM_IRQ:
			op_vmm_irq(w, s);
			break;
		case OP_CTL_OPEN:
			op_ctl_open(w, s);
			break;
		case OP_CTL_CLOSE:
			op_ctl_close(w, s);
			break;
		case OP_ATTACH:
			op_attach(w, s, false);
			break;
		case OP_TAKEOVER:
			op_attach(w, s, true);
			break;
		case OP_DETACH:
			op_detach(w, s);
			break;
		case OP_SERVE:
			op_serve(w, s);
			break;
		case OP_DMA_MAP:
			op_dma_map(w, s);
			break;
		case OP_DMA_RW:
			op_dma_rw(w, s);
			break;
		case OP_CTL_MMAP:
			op_ctl_mmap(w, s);
			break;
		case OP_SPAWN:
			op_spawn(w, s);
			break;
		case OP_KILL:
			op_kill(w);
			break;
		case OP_NL_DUMP:
			op_nl_dump(w);
			break;
		case OP_RMMOD:
			unloaded = op_rmmod(w);
			break;
		}
		STORE(w->op_start, 0);
		__atomic_add_fetch(&g->ops[op], 1, __ATOMIC_RELAXED);
		pthread_rwlock_unlock(&g->quiesce);
		if (unloaded)
			op_recover(w);
		n = __atomic_add_fetch(&g->ops_total, 1, __ATOMIC_RELAXED);
		if (calls && n >= calls)
			STORE(g->stop, 1);
	}
	return NULL;
}

/* The kernel asks a VMM to let its device go: close it, as QEMU would. */
static void *req_fn(void *arg)
{
	struct worker *w = arg;
	struct pollfd pfd[NR_SLOTS];
	uint64_t v;
	int i;

	w->tid = gettid();
	w->op = OP_REQ_CLOSE;
	for (i = 0; i < NR_SLOTS; i++)
		pfd[i] = (struct pollfd){ .fd = g->slots[i].req_efd, .events = POLLIN };
	while (!LOAD(g->stop_helpers)) {
		reap(w);
		if (poll(pfd, NR_SLOTS, 100) <= 0)
			continue;
		for (i = 0; i < NR_SLOTS; i++) {
			struct slot *s = &g->slots[i];

			if (!(pfd[i].revents & POLLIN) ||
			    read(s->req_efd, &v, sizeof(v)) != sizeof(v))
				continue;
			STORE(w->op_start, now_ms());
			pthread_mutex_lock(&s->vmm_lock);
			if (s->vmm.c.device >= 0) {
				vmm_close_locked(s);
				__atomic_add_fetch(&g->ops[OP_REQ_CLOSE], 1,
						   __ATOMIC_RELAXED);
			}
			pthread_mutex_unlock(&s->vmm_lock);
			STORE(w->op_start, 0);
		}
	}
	return NULL;
}

/* Count the family's events; subscribe again after every module load. */
static void *listener_fn(void *arg)
{
	struct worker *w = arg;
	unsigned int loads = ~0u;
	static char buf[16384];
	uint16_t family;
	uint32_t group;
	int sk = -1;

	w->tid = gettid();
	while (!LOAD(g->stop_helpers)) {
		struct nlmsghdr *n;
		ssize_t len;

		if (loads != __atomic_load_n(&g->loads, __ATOMIC_ACQUIRE)) {
			struct timeval tv = { .tv_usec = 100000 };
			int size = 4 << 20;

			if (sk >= 0)
				close(sk);
			loads = __atomic_load_n(&g->loads, __ATOMIC_ACQUIRE);
			sk = nl_socket();
			if (sk < 0 || nl_resolve(sk, &family, &group) || !group ||
			    setsockopt(sk, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
				       &group, sizeof(group))) {
				loads = ~0u;	/* unloaded: try again */
				sleep_ms(50);
				continue;
			}
			setsockopt(sk, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
			setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		}
		len = recv(sk, buf, sizeof(buf), 0);
		if (len < 0) {
			if (errno == ENOBUFS)
				g->events_lost++;
			continue;
		}
		for (n = (struct nlmsghdr *)buf; NLMSG_OK(n, len);
		     n = NLMSG_NEXT(n, len)) {
			struct nlattr *a;

			if (n->nlmsg_type != family)
				continue;
			for_each_attr(a, (char *)NLMSG_DATA(n) + GENL_HDRLEN,
				      NLMSG_PAYLOAD(n, GENL_HDRLEN)) {
				uint32_t ev = *(uint32_t *)((char *)a + NLA_HDRLEN);

				if (a->nla_type == MUSER_ATTR_EVENT &&
				    ev <= MUSER_EVENT_DMA_UNMAPPED)
					g->events[ev]++;
			}
		}
	}
	if (sk >= 0)
		close(sk);
	return NULL;
}

/* The kernel stacks of every thread of @pid. */
static void dump_threads(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);
		int k;

		if (tid <= 0)
			continue;
		for (k = 0; g && k < NR_THREADS_WATCHED; k++)
			if (g->w[k].tid == tid)
				break;
		if (g && k < NR_THREADS_WATCHED)
			fprintf(stderr, "# task %d: thread %d (%s)\n", tid, k,
				LOAD(g->w[k].op_start) && g->w[k].op >= 0 ?
				op_names[g->w[k].op] : "idle");
		else
			fprintf(stderr, "# task %d of %d\n", tid, pid);
		print_kernel_stack(tid);
	}
	closedir(d);
}

/*
 * Every thread and emulator: no call may take HANG_MS. A process of its
 * own, sharing *g: a thread stuck in the kernel may hold the test's
 * mmap_lock, and then any page fault of a watchdog thread would wait too.
 */
static void watchdog_main(pid_t test)
{
	int i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The spawner exits when the test closes its end. */
	close(g->sp_req);
	close(g->sp_ev);
	while (!LOAD(g->stop_helpers)) {
		int64_t now = now_ms();

		sleep_ms(500);
		for (i = 0; i < NR_THREADS_WATCHED; i++) {
			struct worker *w = &g->w[i];
			int64_t t = LOAD(w->op_start);

			if (!t || now - t < HANG_MS)
				continue;
			fprintf(stderr, "# FAIL: thread %d (tid %d) has been in %s for %lld ms (seed %#llx); kernel stacks:\n",
				w->id, w->tid, op_names[w->op],
				(long long)(now - t), (unsigned long long)g->seed);
			goto hung;
		}
		for (i = 0; i < MAX_CHILDREN; i++) {
			struct child c = g->children[i];

			if (!c.pid || !c.killed || now - c.killed_ms < HANG_MS)
				continue;
			fprintf(stderr, "# FAIL: emulator %d killed %lld ms ago has not exited (seed %#llx); kernel stacks:\n",
				c.pid, (long long)(now - c.killed_ms),
				(unsigned long long)g->seed);
			goto hung;
		}
	}
	_exit(0);
hung:
	dump_threads(test);
	for (i = 0; i < MAX_CHILDREN; i++)
		if (g->children[i].pid)
			dump_threads(g->children[i].pid);
	fprintf(stderr, "# blocked tasks (sysrq w) and the kernel log:\n");
	fflush(stderr);
	sysfs_write("/proc/sysrq-trigger", "w");
	sleep_ms(500);
	if (system("dmesg | tail -n 300 | sed 's/^/# dmesg: /' >&2"))
		fprintf(stderr, "# dmesg failed\n");
	fflush(stderr);
	kill(test, SIGKILL);
	_exit(1);
}

/* ---------------------------------------------------------------- setup */

/* "name=value ..." of the module's current parameters, @timeout_ms if >= 0. */
static int module_params(char *buf, size_t len, long timeout_ms)
{
	static const char *const names[] = {
		"max_instances", "timeout_ms", "dma_budget_mb", "devmem_budget_mb",
	};
	size_t at = 0, i;
	long v;

	buf[0] = 0;
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		if (param_get(names[i], &v))
			return -ENOENT;
		if (!strcmp(names[i], "timeout_ms") && timeout_ms >= 0)
			v = timeout_ms;
		at += snprintf(buf + at, len - at, "%s%s=%ld", at ? " " : "",
			       names[i], v);
	}
	return 0;
}

static void slots_init(void)
{
	int i, k;

	for (i = 0; i < NR_SLOTS; i++) {
		struct slot *s = &g->slots[i];

		pthread_mutex_init(&s->st_lock, NULL);
		pthread_mutex_init(&s->vmm_lock, NULL);
		pthread_mutex_init(&s->emu_lock, NULL);
		vfio_client_init(&s->vmm.c);
		for (k = 0; k < 2; k++)
			s->ctl[k].fd = -1;
		s->req_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		s->msi_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		s->extra_mem = mmap(NULL, EXTRA_SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
}

static void slots_free(void)
{
	int i;

	for (i = 0; i < NR_SLOTS; i++) {
		struct slot *s = &g->slots[i];

		close(s->req_efd);
		close(s->msi_efd);
		if (s->extra_mem != MAP_FAILED)
			munmap(s->extra_mem, EXTRA_SIZE);
	}
}

static void report(int64_t ms)
{
	char line[256];
	size_t at;
	int op, e;

	fprintf(stderr, "# lifecycle: %ld operations in %.1f s (%.0f/s), seed %#llx\n",
		g->ops_total, ms / 1000.0, g->ops_total * 1000.0 / (ms ? ms : 1),
		(unsigned long long)g->seed);
	for (op = 0; op < OP_NR; op++) {
		if (!g->ops[op] && !g->skipped[op])
			continue;
		at = snprintf(line, sizeof(line), "%-10s %6ld", op_names[op],
			      g->ops[op] - g->skipped[op]);
		if (g->skipped[op])
			at += snprintf(line + at, sizeof(line) - at, " (+%ld skipped)",
				       g->skipped[op]);
		for (e = 1; e < MAX_ERRNO; e++)
			if (g->errs[op][e] && at < sizeof(line) - 24)
				at += snprintf(line + at, sizeof(line) - at, " %s:%ld",
					       lc_errname(e), g->errs[op][e]);
		fprintf(stderr, "# lifecycle:   %s\n", line);
	}
	fprintf(stderr, "# lifecycle: emulators spawned %ld, exited %ld, SIGKILLed %ld; VMM reads checked %ld\n",
		g->spawned, g->child_clean, g->child_killed, g->vmm_reads_checked);
	fprintf(stderr, "# lifecycle: rmmod succeeded %ld times under the workers, %ld idle points, %ld quiesced checks, %ld errors while unloaded\n",
		g->rmmod_ok, g->idle_points, g->checks, g->unloading_errs);
	fprintf(stderr, "# lifecycle: events created %ld removed %ld attached %ld detached %ld vmm_opened %ld vmm_closed %ld dma_unmapped %ld (overruns %ld)\n",
		g->events[MUSER_EVENT_CREATED], g->events[MUSER_EVENT_REMOVED],
		g->events[MUSER_EVENT_EMULATOR_ATTACHED],
		g->events[MUSER_EVENT_EMULATOR_DETACHED],
		g->events[MUSER_EVENT_VMM_OPENED], g->events[MUSER_EVENT_VMM_CLOSED],
		g->events[MUSER_EVENT_DMA_UNMAPPED], g->events_lost);
}

/*
 * KASAN keeps freed objects in a quarantine, counted as allocated: slab
 * figures mean nothing there (kmemleak checks leaks on such kernels).
 */
static bool kasan_kernel(void)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[256];
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, " kasan_save_stack") != NULL;
	if (f)
		fclose(f);
	return found;
}

/*
 * Leaks between two idle points; the number of problems, each described
 * on stderr if @report.
 */
static int leak_check(const struct kmem_snap *a, const struct kmem_snap *b,
		      bool report)
{
	long d = report ? kmem_report(a, b, 8) : b->objects - a->objects;
	bool slab = !kasan_kernel();
	FILE *out = report ? stderr : fopen("/dev/null", "w");
	int i, k, bad = 0;

	if (!out)
		return -1;
	if (!slab)
		fprintf(out, "# slab figures not checked: KASAN's quarantine holds freed objects\n");
	if (slab && d > SLAB_TOLERANCE) {
		fprintf(out, "# FAIL: %+ld slab objects (tolerance %d)\n", d,
			SLAB_TOLERANCE);
		bad++;
	}
	for (i = 0; slab && i < b->nr; i++) {
		long before = 0;

		for (k = 0; k < a->nr; k++)
			if (!strcmp(a->caches[k].name, b->caches[i].name))
				before = a->caches[k].objects;
		if (b->caches[i].objects - before > CACHE_TOLERANCE) {
			fprintf(out, "# FAIL: %s: %+ld objects (tolerance %d)\n",
				b->caches[i].name, b->caches[i].objects - before,
				CACHE_TOLERANCE);
			bad++;
		}
	}
	if (a->foll_pins != b->foll_pins) {
		fprintf(out, "# FAIL: FOLL_PIN pages %ld -> %ld\n", a->foll_pins,
			b->foll_pins);
		bad++;
	}
	if (b->other_kb - a->other_kb > OTHER_KB_TOLERANCE) {
		fprintf(out, "# FAIL: other kernel memory %+ld kB (tolerance %d)\n",
			b->other_kb - a->other_kb, OTHER_KB_TOLERANCE);
		bad++;
	}
	if (!report)
		fclose(out);
	return bad;
}

/*
 * The last snapshot, taken again while it shows more than the first: a
 * leak stays, while objects that RCU or the caches free late (slowly in a
 * TCG guest on a loaded host) go. Returns the number of snapshots taken,
 * or -errno.
 */
static int last_snapshot(const struct kmem_snap *first, struct kmem_snap *last)
{
	int n, ret;

	for (n = 1; ; n++) {
		ret = kmem_snapshot(last);
		if (ret)
			return ret;
		if (n == LEAK_SNAPSHOTS || !leak_check(first, last, false))
			return n;
		kmem_snap_free(last);
		sleep_ms(3000);
	}
}

static bool have_module_file(char *why, size_t len)
{
	char path[PATH_MAX];

	muser_ko_path(path, sizeof(path));
	if (!access(path, R_OK))
		return true;
	snprintf(why, len, "cannot reload muser.ko: no %.200s", path);
	return false;
}

/* Load the module again if a failed test left it unloaded. */
static void ensure_loaded(struct __test_metadata *_metadata, const char *params)
{
	int ret;

	if (muser_loaded())
		return;
	ret = muser_module_load(params);
	EXPECT_EQ(0, ret) TH_LOG("loading muser.ko again: %s", lc_errname(-ret));
}

/* ---------------------------------------------------------------- tests */

/* delete_module(O_NONBLOCK) refused while held; succeeds once let go. */
TEST(held_module)
{
	char uuid[UUID_LEN + 1], params[256], why[256];
	struct muser_device_info info;
	struct vfio_client c;
	struct sample_proc p = { .pid = -1, .out = -1 };
	const char *step = "?";
	int kmsg, ctl, ret;
	void *map;

	REQUIRE_MUSER();
	if (!have_module_file(why, sizeof(why)))
		SKIP(return, "%s", why);
	ASSERT_EQ(0, module_params(params, sizeof(params), -1));
	kmsg = kmsg_start(_metadata->name);
	ASSERT_EQ(0, mdev_create(uuid));
	lc_layout(&info);

	/* A control node; then only its mapping of device memory. */
	ctl = ctl_open(uuid, 0);
	ASSERT_LE(0, ctl);
	EXPECT_EQ(-EWOULDBLOCK, muser_module_unload());
	ASSERT_EQ(0, ctl_attach(ctl, &info));
	map = map_fd(ctl, MUSER_REGION_OFFSET(BAR2), DEVMEM_SIZE, MAP_SHARED);
	ASSERT_NE(NULL, map);
	close(ctl);
	EXPECT_EQ(-EWOULDBLOCK, muser_module_unload());
	EXPECT_LT(0, muser_module_refcnt());
	munmap(map, DEVMEM_SIZE);
	EXPECT_EQ(0, muser_module_refcnt());

	/* A VFIO device fd; then only its mapping of device memory. */
	ret = vfio_client_open(&c, uuid, &step);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", step, strerror(-ret));
	EXPECT_EQ(-EWOULDBLOCK, muser_module_unload());
	map = map_fd(c.device, MUSER_REGION_OFFSET(BAR2), DEVMEM_SIZE, MAP_SHARED);
	ASSERT_NE(NULL, map);
	close(c.device);
	c.device = -1;
	EXPECT_EQ(-EWOULDBLOCK, muser_module_unload());
	munmap(map, DEVMEM_SIZE);
	vfio_client_close(&c);
	EXPECT_EQ(0, muser_module_refcnt());

	/* An emulator process serving it. */
	ret = sample_start(&p, uuid, 20000);
	if (!ret) {
		EXPECT_EQ(-EWOULDBLOCK, muser_module_unload());
		sample_stop(&p);
	} else {
		TH_LOG("the sample did not start (%s): not checked", strerror(-ret));
	}

	/* Nothing held: rmmod takes the idle device with it. */
	EXPECT_EQ(0, muser_module_refcnt());
	ret = muser_module_unload();
	EXPECT_EQ(0, ret) TH_LOG("rmmod: %s", lc_errname(-ret));
	if (!ret) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s", uuid);
		EXPECT_FALSE(path_exists(path));
		EXPECT_FALSE(path_exists("/sys/module/muser"));
		EXPECT_EQ(-ENOENT, muser_module_unload());
		ASSERT_EQ(0, muser_module_load(params));
	} else {
		mdev_remove(uuid);
	}
	ensure_loaded(_metadata, params);
	EXPECT_EQ(0, kmsg_check(kmsg, _metadata->name));
}

/* --------------------------------------------- one mm: fault vs unmap */

struct one_mm {
	struct vfio_client c;
	int ctl;
	long *progress;		/* shared: [0] faults, [1] unmaps */
	int stop;
};

static void *one_mm_toucher(void *arg)
{
	struct one_mm *t = arg;
	uint8_t v;
	size_t i;

	while (!LOAD(t->stop)) {
		uint8_t *p = map_fd(t->ctl, MUSER_DMA_OFFSET, DMA_SIZE, MAP_SHARED);

		if (!p)
			break;
		for (i = 0; i < DMA_SIZE; i += PG)
			touch(p + i, &v);	/* SIGBUS while unmapped */
		munmap(p, DMA_SIZE);
		__atomic_add_fetch(&t->progress[0], 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *one_mm_unmapper(void *arg)
{
	struct one_mm *t = arg;

	while (!LOAD(t->stop)) {
		_test_vmm_unmap(&t->c, 0, DMA_SIZE);
		_test_vmm_map(&t->c, t->c.dma, 0, DMA_SIZE, VMM_RW);
		if (!_test_dma_map(t->ctl, 0, DMA_SIZE, 0, NULL))
			_test_dma_release(t->ctl, 0, DMA_SIZE);
		__atomic_add_fetch(&t->progress[1], 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * A process of its own (the test's threads may be stuck holding its
 * mmap_lock): if neither thread makes progress for 10 s, print their
 * kernel stacks and kill the test.
 */
static void one_mm_watch(pid_t test, long *progress)
{
	long last[2] = { -1, -1 };
	int still = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		sleep_ms(1000);
		still = progress[0] == last[0] || progress[1] == last[1] ?
			still + 1 : 0;
		last[0] = progress[0];
		last[1] = progress[1];
		if (still < 10)
			continue;
		fprintf(stderr, "# FAIL: deadlock: no progress for 10 s (%ld faulting rounds, %ld unmaps); kernel stacks:\n",
			last[0], last[1]);
		dump_threads(test);
		fflush(stderr);
		kill(test, SIGKILL);
		_exit(1);
	}
}

TEST(one_mm_fault_vs_unmap)
{
	struct muser_device_info info;
	char uuid[UUID_LEN + 1];
	struct one_mm *t;
	const char *step = "?";
	pthread_t a, b;
	int kmsg, ret, status;
	pid_t w;

	REQUIRE_MUSER();
	t = mmap(NULL, sizeof(*t) + 2 * sizeof(long), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, t);
	t->progress = (long *)(t + 1);
	g = NULL;	/* dump_threads() names no workers */
	kmsg = kmsg_start(_metadata->name);
	ASSERT_EQ(0, mdev_create(uuid));
	t->ctl = ctl_open(uuid, 0);
	ASSERT_LE(0, t->ctl);
	lc_layout(&info);
	ASSERT_EQ(0, ctl_attach(t->ctl, &info));
	ret = vfio_client_open(&t->c, uuid, &step);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", step, strerror(-ret));

	fflush(stderr);
	w = fork();
	ASSERT_LE(0, w);
	if (!w)
		one_mm_watch(getppid(), t->progress);
	ASSERT_EQ(0, pthread_create(&a, NULL, one_mm_toucher, t));
	ASSERT_EQ(0, pthread_create(&b, NULL, one_mm_unmapper, t));
	sleep_ms(5000);
	STORE(t->stop, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	kill(w, SIGKILL);
	waitpid(w, &status, 0);
	TH_LOG("%ld faulting rounds, %ld unmaps", t->progress[0], t->progress[1]);
	EXPECT_LT(0, t->progress[0]);
	EXPECT_LT(0, t->progress[1]);

	vfio_client_close(&t->c);
	close(t->ctl);
	EXPECT_EQ(0, mdev_remove(uuid));
	EXPECT_EQ(0, kmsg_check(kmsg, _metadata->name));
	munmap(t, sizeof(*t) + 2 * sizeof(long));
}

TEST(races)
{
	unsigned long long seconds = lc_env("MUSER_FUZZ_SECONDS", FUZZ_SECONDS);
	unsigned long long calls = lc_env("MUSER_FUZZ_CALLS", 0);
	char listed[8][UUID_LEN + 1], why[256];
	struct kmem_snap first = { 0 }, last = { 0 };
	int64_t t0, next_check, next_idle, idle_every, warmup;
	pthread_t req, listener;
	pid_t watchdog, pid;
	pthread_rwlockattr_t ra;
	struct worker *self;
	int i, kmsg, n, ret, sp[4], status;

	REQUIRE_MUSER();
	if (geteuid())
		SKIP(return, "needs root");
	if (!have_module_file(why, sizeof(why)))
		SKIP(return, "%s", why);
	/* What a failed test before left (its process killed). */
	n = list_mdevs(listed, 8);
	for (i = 0; i < n && i < 8; i++) {
		TH_LOG("removing %s, left by an earlier test", listed[i]);
		ASSERT_EQ(0, mdev_remove(listed[i]));
	}

	/* Shared with the watchdog process. */
	g = mmap(NULL, sizeof(*g), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, g);
	g->md = _metadata;
	g->seed = lc_env("MUSER_FUZZ_SEED", (unsigned long long)now_ms() ^
			  (unsigned long long)getpid() << 20);
	/* Before anything is opened or started (see spawner_main()). */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp + 2));
	fflush(stdout);
	fflush(stderr);
	pid = fork();		/* *g is shared: only the parent writes it */
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sp[0]);
		close(sp[2]);
		spawner_main(sp[1], sp[3]);
	}
	g->spawner = pid;
	close(sp[1]);
	close(sp[3]);
	g->sp_req = sp[0];
	g->sp_ev = sp[2];
	ASSERT_EQ(0, module_params(g->params_orig, sizeof(g->params_orig), -1));
	ASSERT_EQ(0, module_params(g->params_run, sizeof(g->params_run),
				   RUN_TIMEOUT_MS));
	ASSERT_EQ(0, param_set("timeout_ms", RUN_TIMEOUT_MS));
	fprintf(stderr, "# lifecycle: seed %#llx (MUSER_FUZZ_SEED=%#llx replays it), %llu %s, %d workers, %d device slots\n",
		(unsigned long long)g->seed, (unsigned long long)g->seed,
		calls ? calls : seconds, calls ? "operations" : "seconds",
		NR_WORKERS, NR_SLOTS);
	kmsg = kmsg_start(_metadata->name);

	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&g->quiesce, &ra);
	pthread_mutex_init(&g->child_lock, NULL);
	pthread_mutex_init(&g->rmmod_lock, NULL);
	slots_init();
	for (i = 0; i < NR_SLOTS; i++)
		ASSERT_NE(MAP_FAILED, g->slots[i].extra_mem);

	for (i = 0; i < OP_NR_RANDOM; i++)
		weight_total += op_weight[i];
	for (i = 0; i < NR_THREADS_WATCHED; i++) {
		g->w[i].id = i;
		g->w[i].rng = seed_mix(g->seed + i);
		g->w[i].op = -1;
	}
	self = &g->w[NR_WORKERS];
	self->tid = gettid();
	self->op = OP_CHECK;
	fflush(stderr);
	watchdog = fork();
	ASSERT_LE(0, watchdog);
	if (!watchdog)
		watchdog_main(getppid());
	ASSERT_EQ(0, pthread_create(&req, NULL, req_fn, &g->w[NR_WORKERS + 1]));
	ASSERT_EQ(0, pthread_create(&listener, NULL, listener_fn,
				    &g->w[NR_WORKERS + 2]));
	for (i = 0; i < NR_WORKERS; i++)
		ASSERT_EQ(0, pthread_create(&g->w[i].thread, NULL, worker_fn,
					    &g->w[i]));

	/*
	 * The first idle point comes after a warm-up, so that the threads'
	 * stacks and arenas and the module's first allocations are in both
	 * snapshots: a tenth of the run, but at least WARMUP_MS (half of a
	 * short run, such as CI's 10 s). Idle points split the run in three
	 * or so.
	 */
	t0 = now_ms();
	idle_every = seconds * 1000 / 3;
	if (idle_every < 10000)
		idle_every = 10000;
	next_check = t0 + CHECK_MS;
	warmup = (int64_t)seconds * 100;
	if (warmup < WARMUP_MS)
		warmup = (int64_t)seconds * 500 < WARMUP_MS ?
			 (int64_t)seconds * 500 : WARMUP_MS;
	next_idle = t0 + (calls ? 3000 : warmup);
	while (!LOAD(g->stop)) {
		int64_t now = now_ms();

		if (!calls && now - t0 >= (int64_t)seconds * 1000)
			break;
		if (now < next_check && now < next_idle) {
			sleep_ms(50);
			continue;
		}
		quiesce();
		STORE(self->op_start, now_ms());
		if (now >= next_idle) {
			self->op = OP_IDLE;
			if (idle_point(self, g->params_run, false))
				STORE(g->stop, 1);
			if (!first.caches && !LOAD(g->stop)) {
				ret = kmem_snapshot(&first);
				EXPECT_EQ(0, ret);
			} else if (!LOAD(g->stop) && !kmem_snapshot(&last)) {
				/* The trend, for the figures. */
				fprintf(stderr, "# lifecycle: idle point at %.0f s, %ld operations:\n",
					(now_ms() - t0) / 1000.0, g->ops_total);
				kmem_report(&first, &last, 5);
				kmem_snap_free(&last);
			}
			next_idle = now_ms() + idle_every;
		} else {
			self->op = OP_CHECK;
			lock_all();
			check_quiesced(self);
			unlock_all();
		}
		g->ops[self->op]++;
		next_check = now_ms() + CHECK_MS;
		STORE(self->op_start, 0);
		pthread_rwlock_unlock(&g->quiesce);
	}

	/* The end: everything let go and removed; rmmod; leaks. */
	quiesce();
	STORE(g->stop, 1);
	STORE(self->op_start, now_ms());
	self->op = OP_IDLE;
	lock_all();
	check_quiesced(self);
	unlock_all();
	ret = idle_point(self, g->params_orig, true);
	if (!ret && first.caches) {
		ret = last_snapshot(&first, &last);
		EXPECT_LT(0, ret);
		if (ret > 1)
			TH_LOG("the last snapshot was taken %d times", ret);
		if (ret > 0)
			EXPECT_EQ(0, leak_check(&first, &last, true))
				TH_LOG("kernel memory leaked (seed %#llx)",
				       (unsigned long long)g->seed);
	}
	STORE(self->op_start, 0);
	pthread_rwlock_unlock(&g->quiesce);
	for (i = 0; i < NR_WORKERS; i++)
		pthread_join(g->w[i].thread, NULL);
	kill_all_children(self);
	close(g->sp_req);
	EXPECT_EQ(g->spawner, waitpid(g->spawner, &status, 0));
	EXPECT_EQ(0, status);
	close(g->sp_ev);
	STORE(g->stop_helpers, 1);
	pthread_join(req, NULL);
	pthread_join(listener, NULL);
	EXPECT_EQ(watchdog, waitpid(watchdog, &status, 0));
	EXPECT_EQ(0, status);
	report(now_ms() - t0);

	ensure_loaded(_metadata, g->params_orig);
	EXPECT_EQ(0, muser_loaded() ? list_mdevs(listed, 8) : 0);
	EXPECT_EQ(0, g->failures) TH_LOG("%ld invariant failures (seed %#llx)",
					 g->failures, (unsigned long long)g->seed);
	EXPECT_NE(0, g->idle_points);
	EXPECT_EQ(0, kmsg_check(kmsg, _metadata->name))
		TH_LOG("the kernel logged a warning, see above");
	slots_free();
	kmem_snap_free(&first);
	kmem_snap_free(&last);
	munmap(g, sizeof(*g));
}

/* The run's timeout follows its budget. */
static void __attribute__((constructor)) races_timeout(void)
{
	if (lc_env("MUSER_FUZZ_CALLS", 0))
		_races_object.timeout = 24 * 3600;
	else
		_races_object.timeout = lc_env("MUSER_FUZZ_SECONDS", FUZZ_SECONDS) + 300;
}

TEST_HARNESS_MAIN
