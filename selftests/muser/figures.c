// SPDX-License-Identifier: GPL-2.0
/*
 * A device's figures - netlink MUSER_CMD_GET_DEVICE (a request and a dump)
 * and the sysfs files dma/ and devmem/ under the mdev - never wait for the
 * device's locks. Anyone may ask (GET_DEVICE needs no privilege), and the
 * netlink handler runs under genl_mutex, so a figure that waited for a
 * device's DMA lock would let an unprivileged user stall every generic
 * netlink family behind an emulator's pin of guest memory.
 *
 * pin_in_progress: the VMM maps PIN_MB of guest memory (MUSER_PIN_MB,
 * default 256) and the emulator pins all of it with one DMA_MAP on a
 * thread. The test knows the pin is running, by ordering rather than
 * timing, from the VMM's VmLck (type1 accounts each page as it pins it),
 * and asks an unprivileged child for the figures meanwhile. Every answer
 * must come while the pin still runs: VmLck short of the whole range when
 * it arrives. The child also checks the netlink figures against sysfs.
 *
 * devmem_figures: netlink DEVMEM_PAGES and DEVMEM_BUDGET follow the
 * device memory written and the per-device budget (sysfs devmem/).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "harness.h"
#include "fixture.h"

#define PG		4096ul
#define MiB		(1ul << 20)
#define PIN_IOVA	(1ul << 32)
#define NOBODY		65534
#define PROBE_MS	120000	/* a probe that takes longer is stuck */

/* ------------------------------------------------ probes while pinning */

/* VmLck of @pid in kB, -1 if unknown. */
static long vmlck_kb(pid_t pid)
{
	char path[64], line[128];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

enum { PROBE_NL_SELF, PROBE_NL_OTHER, PROBE_NL_DUMP, PROBE_SYSFS, NR_PROBES };

static const char *const probe_names[NR_PROBES] = {
	"GET_DEVICE of the pinning device", "GET_DEVICE of another device",
	"a GET_DEVICE dump", "sysfs dma/ and devmem/",
};

/**
 * struct probe_result - what the unprivileged child found, per probe.
 * @err:      0 or -errno
 * @vmlck_kb: the VMM's VmLck right after the answer came
 * @nl:       the pinning device's netlink figures (PROBE_NL_SELF)
 * @dump:     devices in the dump
 * @sysfs:    dma/pinned_pages, dma/mapped_pages, devmem/pages
 */
struct probe_result {
	int done;
	int err[NR_PROBES];
	long vmlck_kb[NR_PROBES];
	struct nl_figures nl;
	int dump;
	long sysfs[3];
	int dropped;	/* privileges were dropped */
};

static void run_probes(pid_t vmm, const char *uuid, const char *other,
		       struct probe_result *res)
{
	static const char *const files[3] = {
		"dma/pinned_pages", "dma/mapped_pages", "devmem/pages",
	};
	struct nl_figures f;
	char path[256];
	int fd, family, i;

	/* Anybody may ask. */
	res->dropped = !setgroups(0, NULL) && !setgid(NOBODY) &&
		       !setuid(NOBODY) && geteuid() == NOBODY;
	fd = nl_open(&family);
	for (i = 0; i < NR_PROBES; i++) {
		if (fd < 0 && i != PROBE_SYSFS) {
			res->err[i] = fd;
			continue;
		}
		switch (i) {
		case PROBE_NL_SELF:
			res->err[i] = nl_get_device(fd, family, uuid, &res->nl);
			break;
		case PROBE_NL_OTHER:
			res->err[i] = nl_get_device(fd, family, other, &f);
			break;
		case PROBE_NL_DUMP:
			res->dump = nl_dump_count(fd, family);
			res->err[i] = res->dump < 0 ? res->dump : 0;
			break;
		case PROBE_SYSFS:
			for (int j = 0; j < 3; j++) {
				snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/%s",
					 uuid, files[j]);
				res->err[i] = sysfs_read_long(path, &res->sysfs[j]);
				if (res->err[i])
					break;
			}
			break;
		}
		res->vmlck_kb[i] = vmlck_kb(vmm);
	}
	if (fd >= 0)
		close(fd);
	res->done = 1;
}

/*
 * Run the probes in an unprivileged child; false if it did not finish
 * within PROBE_MS (it is killed then).
 */
static bool probe_child(const char *uuid, const char *other,
			struct probe_result *res)
{
	struct probe_result *shared;
	pid_t vmm = getpid(), pid;
	int64_t end = now_ms() + PROBE_MS;
	int status;
	bool ok;

	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return false;
	memset(shared, 0, sizeof(*shared));
	pid = fork();
	if (pid == 0) {
		run_probes(vmm, uuid, other, shared);
		_exit(0);
	}
	while (pid > 0 && !__atomic_load_n(&shared->done, __ATOMIC_ACQUIRE) &&
	       now_ms() < end)
		sleep_ms(1);
	ok = pid > 0 && shared->done;
	if (pid > 0) {
		if (!ok)
			kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	*res = *shared;
	munmap(shared, sizeof(*shared));
	return ok;
}

struct pin_arg {
	pthread_t thread;
	int ctl;
	uint64_t size;
	int ret;
	volatile int done;
};

static void *pin_fn(void *p)
{
	struct pin_arg *a = p;

	a->ret = _test_dma_map(a->ctl, PIN_IOVA, a->size, 0, NULL);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

FIXTURE(figures) {
	struct rig r;
	char other[UUID_LEN + 1];	/* a second device */
	bool other_created;
	int other_ctl;
	struct vfio_client other_vmm;
};

FIXTURE_SETUP(figures)
{
	int ret;

	self->other_ctl = -1;
	vfio_client_init(&self->other_vmm);
	RIG_SETUP(&self->r, NULL, RIG_NONBLOCK);
	ret = mdev_create(self->other);
	ASSERT_EQ(0, ret) TH_LOG("second mdev: %s", strerror(-ret));
	self->other_created = true;
}

FIXTURE_TEARDOWN(figures)
{
	vfio_client_close(&self->other_vmm);
	if (self->other_ctl >= 0)
		close(self->other_ctl);
	if (self->other_created)
		EXPECT_EQ(0, mdev_remove(self->other));
	RIG_TEARDOWN(&self->r);
}

TEST_F_TIMEOUT(figures, pin_in_progress, 600)
{
	const char *env = getenv("MUSER_PIN_MB");
	uint64_t size = (env ? strtoul(env, NULL, 0) : 256) * MiB;
	struct probe_result res;
	struct pin_arg pin = { .ctl = self->r.ctl, .size = size };
	long base, now, whole_kb = size >> 10;
	int64_t t0, end;
	bool finished;
	void *mem;
	int i;

	SKIP_IF_SETUP_SKIPPED();
	/* Not populated: each page faults in as it is pinned, slowly. */
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	test_vmm_map(&self->r.c, mem, PIN_IOVA, size);
	ASSERT_EQ(0, dma_stat_set(self->r.uuid, "budget_mb", 2 * (size / MiB)));
	base = vmlck_kb(getpid());
	ASSERT_LE(0, base) TH_LOG("no VmLck in /proc/self/status");

	t0 = now_ms();
	ASSERT_EQ(0, pthread_create(&pin.thread, NULL, pin_fn, &pin));
	/* The pin is running once type1 has accounted a page of it. */
	for (end = now_ms() + PROBE_MS;; sleep_ms(1)) {
		now = vmlck_kb(getpid()) - base;
		if (now > 0 || pin.done || now_ms() > end)
			break;
	}
	if (now <= 0 || now >= whole_kb)
		pthread_join(pin.thread, NULL);
	ASSERT_LT(0, now) TH_LOG("the pin did not start (DMA_MAP: %d)", pin.ret);
	ASSERT_GT(whole_kb, now)
		TH_LOG("%lu MiB pinned before the test looked: raise MUSER_PIN_MB",
		       size / MiB);
	TH_LOG("pin running: %ld of %ld kB after %lld ms", now, whole_kb,
	       (long long)(now_ms() - t0));

	finished = probe_child(self->r.uuid, self->other, &res);
	pthread_join(pin.thread, NULL);
	TH_LOG("the pin took %lld ms", (long long)(now_ms() - t0));
	EXPECT_EQ(0, pin.ret);
	EXPECT_TRUE(finished) TH_LOG("the probes did not finish in %d ms",
				     PROBE_MS);
	EXPECT_TRUE(res.dropped) TH_LOG("could not drop privileges");
	for (i = 0; i < NR_PROBES; i++) {
		EXPECT_EQ(0, res.err[i]) TH_LOG("%s: %s", probe_names[i],
						strerror(-res.err[i]));
		/* Answered while the pin ran, or it waited for the pin. */
		EXPECT_GT(base + whole_kb, res.vmlck_kb[i])
			TH_LOG("%s waited for the pin to finish", probe_names[i]);
		TH_LOG("%s: answered at %ld of %ld kB pinned", probe_names[i],
		       res.vmlck_kb[i] - base, whole_kb);
	}
	/* Mid-pin figures: some pages pinned, none held yet. */
	EXPECT_EQ(MUSER_DEV_ATTACHED, res.nl.state);
	EXPECT_GT(size / PG, res.nl.pinned);
	EXPECT_GT(size / PG, res.nl.mapped);
	EXPECT_LE(2, res.dump);
	EXPECT_GT((long)(size / PG), res.sysfs[0]);
	EXPECT_GT((long)(size / PG), res.sysfs[1]);

	/* And after it, the whole range. */
	EXPECT_EQ((long)(size / PG), dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_EQ((long)(size / PG), dma_stat(self->r.uuid, "mapped_pages"));
	test_dma_release(self->r.ctl, PIN_IOVA, size);
	test_vmm_unmap(&self->r.c, PIN_IOVA, size);
	EXPECT_EQ(0, dma_stat(self->r.uuid, "pinned_pages"));
	munmap(mem, size);
}

/* Device memory in the netlink figures, as in sysfs devmem/. */
TEST_F(figures, devmem_figures)
{
	struct muser_device_info info;
	struct nl_figures f;
	char path[256], byte = 1;
	long budget_mb, pages;
	int fd, family, i;

	SKIP_IF_SETUP_SKIPPED();
	/* The second device, with BAR2 as device memory. */
	self->other_ctl = ctl_open(self->other, O_NONBLOCK);
	ASSERT_LE(0, self->other_ctl);
	layout_default(&info);
	info.num_mmap_areas = 1;
	info.mmap_areas[0].region = VFIO_PCI_BAR2_REGION_INDEX;
	info.mmap_areas[0].size = info.regions[VFIO_PCI_BAR2_REGION_INDEX].size;
	ASSERT_EQ(0, ctl_attach(self->other_ctl, &info));
	ASSERT_EQ(0, vfio_client_open(&self->other_vmm, self->other, NULL));

	fd = nl_open(&family);
	ASSERT_LE(0, fd) TH_LOG("genetlink: %s", strerror(-fd));
	ASSERT_EQ(0, param_get("devmem_budget_mb", &budget_mb));
	ASSERT_EQ(0, nl_get_device(fd, family, self->other, &f));
	ASSERT_TRUE(f.has_devmem) TH_LOG("no MUSER_ATTR_DEVMEM_PAGES");
	EXPECT_EQ(0, f.devmem_pages);
	EXPECT_EQ((uint64_t)budget_mb * (MiB / PG), f.devmem_budget);

	for (i = 0; i < 5; i++)
		ASSERT_EQ(1, pwrite(self->other_vmm.device, &byte, 1,
				    MUSER_REGION_OFFSET(VFIO_PCI_BAR2_REGION_INDEX) + i * PG));
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/devmem/pages", self->other);
	ASSERT_EQ(0, sysfs_read_long(path, &pages));
	EXPECT_EQ(5, pages);
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/devmem/budget_mb",
		 self->other);
	ASSERT_EQ(0, sysfs_write(path, "3"));
	ASSERT_EQ(0, nl_get_device(fd, family, self->other, &f));
	EXPECT_EQ(5, f.devmem_pages);
	EXPECT_EQ(3 * (MiB / PG), f.devmem_budget);
	close(fd);
}

TEST_HARNESS_MAIN
