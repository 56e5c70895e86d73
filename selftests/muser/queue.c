// SPDX-License-Identifier: GPL-2.0
/*
 * What the kernel queues for an emulator is bounded, however hard the VMM
 * pushes and however slowly the emulator reads:
 *
 * requests_bounded: 300 VMM threads access a trapped register at once
 * while the emulator reads without answering. At most MUSER_MAX_QUEUED
 * (256) requests are queued or in flight; the other threads wait for a
 * slot (before the kernel allocates anything for them) until answers free
 * slots, and then every access completes with the emulator's data.
 *
 * notices_bounded: posted notices (id 0) coalesce: a flood of interrupt
 * configuration changes is one MUSER_REQ_IRQ_STATE, up to
 * MUSER_MAX_UNMAP_EVENTS unmaps are told one by one and more become one
 * unmap of everything, many VMM closes are one MUSER_REQ_VMM_CLOSE. All of
 * it fits one read of MUSER_READ_BUF_MIN bytes, and the kernel's slab
 * memory does not grow with the flood.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "harness.h"
#include "fixture.h"

#define BAR0		VFIO_PCI_BAR0_REGION_INDEX
#define MSI		VFIO_PCI_MSI_IRQ_INDEX
#define PG		4096ul
#define CHUNK		(1ul << MUSER_DMA_CHUNK_SHIFT)
#define MAX_QUEUED	256	/* MUSER_MAX_QUEUED, kmod/muser_mdev.h */
#define MAX_UNMAPS	16	/* MUSER_MAX_UNMAP_EVENTS, kmod/muser_mdev.h */
#define NR_READERS	300
#define LONG_MS		60000

FIXTURE(queue) {
	struct rig r;
};

FIXTURE_SETUP(queue)
{
	RIG_SETUP(&self->r, NULL, RIG_NONBLOCK);
	/* No access may time out while the test holds it. */
	ASSERT_EQ(0, rig_set_timeout(&self->r, LONG_MS));
}

FIXTURE_TEARDOWN(queue)
{
	RIG_TEARDOWN(&self->r);
}

/* ------------------------------------------------------------- requests */

struct reader {
	pthread_t thread;
	int device;
	int index;		/* reads BAR0 byte @index */
	pid_t tid;
	ssize_t ret;
	uint8_t val;
	volatile int started;
};

static void *reader_fn(void *p)
{
	struct reader *r = p;

	r->tid = gettid();
	__atomic_store_n(&r->started, 1, __ATOMIC_RELEASE);
	r->ret = pread(r->device, &r->val, 1, MUSER_REGION_OFFSET(BAR0) + r->index);
	if (r->ret < 0)
		r->ret = -errno;
	return NULL;
}

/* Is thread @tid of this process blocked in pread64()? */
static bool in_pread(pid_t tid)
{
	char path[64], buf[128];
	long nr;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	if (sysfs_read(path, buf, sizeof(buf)) < 0)
		return false;
	return sscanf(buf, "%ld", &nr) == 1 && nr == SYS_pread64;
}

struct held {
	uint64_t id;
	uint64_t offset;
};

/*
 * Read what came within 100 ms into @reqs and hold each request that needs
 * an answer in @held; @seen counts them per reader, @dups the repeats.
 * Returns how many came, notices included.
 */
static int hold_requests(struct __test_metadata *_metadata, int ctl,
			 struct emu_req *reqs, struct held *held, int *nheld,
			 uint8_t *seen, int *dups, bool check_type)
{
	int i, n;

	n = emu_read_timeout(ctl, reqs, 600, 100);
	ASSERT_LE(0, n) TH_LOG("read: %s", strerror(-n));
	for (i = 0; i < n; i++) {
		uint64_t off = reqs[i].hdr.offset;

		if (!reqs[i].hdr.id)
			continue;
		if (check_type)
			ASSERT_EQ(MUSER_REQ_READ, reqs[i].hdr.type);
		ASSERT_GT(NR_READERS, off);
		*dups += seen[off]++ > 0;
		held[(*nheld)++] = (struct held){ reqs[i].hdr.id, off };
	}
	return n;
}

TEST_F_TIMEOUT(queue, requests_bounded, 300)
{
	/* One read() stages up to 4 * MUSER_READ_BUF_MIN: 516 READs. */
	static struct emu_req reqs[600];
	struct reader *rd;
	struct held *held;
	uint8_t seen[NR_READERS] = { 0 };
	int nheld = 0, answered = 0, most = 0, dups = 0, quiet = 0;
	int i, n, waiting;
	pthread_attr_t attr;
	int64_t end;

	SKIP_IF_SETUP_SKIPPED();
	rd = calloc(NR_READERS, sizeof(*rd));
	held = calloc(NR_READERS, sizeof(*held));
	ASSERT_NE(NULL, rd);
	ASSERT_NE(NULL, held);
	pthread_attr_init(&attr);
	/* Small stacks, with room for the helpers' thread-local buffers. */
	pthread_attr_setstacksize(&attr, 1 << 20);
	for (i = 0; i < NR_READERS; i++) {
		rd[i].device = self->r.c.device;
		rd[i].index = i;
		ASSERT_EQ(0, pthread_create(&rd[i].thread, &attr, reader_fn,
					    &rd[i]));
	}

	/*
	 * Read without answering until every reader is accounted for: its
	 * request came, or it is blocked in pread() and nothing more is
	 * pending (twice in a row, 100 ms apart).
	 */
	for (end = now_ms() + LONG_MS / 2; nheld < NR_READERS && quiet < 2;) {
		ASSERT_LT(now_ms(), end) TH_LOG("%d requests came", nheld);
		n = hold_requests(_metadata, self->r.ctl, reqs, held, &nheld,
				  seen, &dups, true);
		most = nheld > most ? nheld : most;
		for (waiting = 0, i = 0; i < NR_READERS; i++)
			waiting += !seen[i] &&
				   __atomic_load_n(&rd[i].started, __ATOMIC_ACQUIRE) &&
				   in_pread(rd[i].tid);
		quiet = n == 0 && nheld + waiting == NR_READERS ? quiet + 1 : 0;
	}
	TH_LOG("%d requests queued at once; %d readers waited for a slot",
	       nheld, NR_READERS - nheld);
	EXPECT_EQ(MAX_QUEUED, nheld)
		TH_LOG("more than MUSER_MAX_QUEUED, or fewer than the slots");

	/* Answers free slots: the rest come, never more than the bound. */
	for (end = now_ms() + LONG_MS / 2; answered < NR_READERS;) {
		ASSERT_LT(now_ms(), end) TH_LOG("%d answered", answered);
		while (answered < nheld) {
			uint8_t v = emu_pattern(BAR0, held[answered].offset);

			EXPECT_LT(0, emu_reply(self->r.ctl, held[answered].id, 0,
					       &v, 1));
			answered++;
		}
		n = hold_requests(_metadata, self->r.ctl, reqs, held, &nheld,
				  seen, &dups, false);
		most = nheld - answered > most ? nheld - answered : most;
	}
	for (i = 0; i < NR_READERS; i++) {
		pthread_join(rd[i].thread, NULL);
		EXPECT_EQ(1, rd[i].ret) TH_LOG("reader %d: %s", i,
					       strerror(-rd[i].ret));
		EXPECT_EQ(emu_pattern(BAR0, i), rd[i].val) TH_LOG("reader %d", i);
	}
	EXPECT_GE(MAX_QUEUED, most) TH_LOG("%d requests outstanding at once", most);
	EXPECT_EQ(0, dups);
	pthread_attr_destroy(&attr);
	free(held);
	free(rd);
}

/* -------------------------------------------------------------- notices */

/* SUnreclaim of /proc/meminfo in kB, or -1. */
static long sunreclaim_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SUnreclaim: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

struct notices {
	int irq_state, vmm_close, unmaps, other;
	bool unmap_all;
	struct muser_dma_range range[MAX_UNMAPS + 1];
};

/*
 * One read() of MUSER_READ_BUF_MIN bytes, which must hold every notice,
 * then a second one, which must find nothing.
 */
static int read_notices(int ctl, struct notices *nt)
{
	static uint8_t buf[MUSER_READ_BUF_MIN] __attribute__((aligned(8)));
	size_t pos = 0;
	ssize_t n;

	memset(nt, 0, sizeof(*nt));
	n = read(ctl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	while (pos + sizeof(struct muser_req) <= (size_t)n) {
		const struct muser_req *h = (const void *)(buf + pos);
		const struct muser_dma_range *r = (const void *)(h + 1);

		if (h->id) {
			nt->other++;
		} else if (h->type == MUSER_REQ_IRQ_STATE) {
			nt->irq_state++;
		} else if (h->type == MUSER_REQ_VMM_CLOSE) {
			nt->vmm_close++;
		} else if (h->type == MUSER_REQ_DMA_UNMAP) {
			if (nt->unmaps <= MAX_UNMAPS)
				nt->range[nt->unmaps] = *r;
			nt->unmaps++;
			nt->unmap_all |= r->iova == 0 && r->size == ~0ull;
		} else {
			nt->other++;
		}
		pos += sizeof(*h) + ((h->data_len + MUSER_ALIGN - 1) &
				     ~(MUSER_ALIGN - 1));
	}
	if (read(ctl, buf, sizeof(buf)) >= 0 || errno != EAGAIN)
		return -EOVERFLOW;
	return 0;
}

/* @count VMM unmaps of pages the emulator pinned, @stride apart. */
static int unmap_flood(struct rig *r, void *mem, int count, uint64_t stride)
{
	int i, ret;

	for (i = 0; i < count; i++) {
		uint64_t iova = (1ull << 32) + i * stride;

		ret = _test_vmm_map(&r->c, mem, iova, PG, VMM_RW);
		if (!ret)
			ret = _test_dma_map(r->ctl, iova, PG, 0, NULL);
		if (!ret)
			ret = _test_dma_release(r->ctl, iova, PG);
		if (!ret)
			ret = _test_vmm_unmap(&r->c, iova, PG);
		if (ret)
			return ret;
	}
	return 0;
}

#define IRQ_FLOOD	40000

TEST_F_TIMEOUT(queue, notices_bounded, 300)
{
	struct notices nt;
	long before, after;
	int efd, fd, i;
	void *mem;

	SKIP_IF_SETUP_SKIPPED();
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, efd);
	mem = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);

	/* Interrupt configuration changes: one notice. */
	before = sunreclaim_kb();
	for (i = 0; i < IRQ_FLOOD; i++) {
		fd = i & 1 ? -1 : efd;
		ASSERT_EQ(0, vfio_set_irqs(self->r.c.device,
					   VFIO_IRQ_SET_DATA_EVENTFD |
					   VFIO_IRQ_SET_ACTION_TRIGGER,
					   MSI, 0, 1, &fd));
	}
	after = sunreclaim_kb();
	TH_LOG("%d SET_IRQS: unreclaimable slab %+ld kB", IRQ_FLOOD,
	       after - before);
	/* A queued notice each would be megabytes. */
	EXPECT_GT(1024, after - before);
	ASSERT_EQ(0, read_notices(self->r.ctl, &nt));
	EXPECT_EQ(1, nt.irq_state);
	EXPECT_EQ(0, nt.unmaps + nt.vmm_close + nt.other);

	/* Unmaps, up to the bound: each told, in order. */
	ASSERT_EQ(0, unmap_flood(&self->r, mem, MAX_UNMAPS, 4 * CHUNK));
	ASSERT_EQ(0, read_notices(self->r.ctl, &nt));
	EXPECT_EQ(MAX_UNMAPS, nt.unmaps);
	for (i = 0; i < MAX_UNMAPS && i < nt.unmaps; i++) {
		EXPECT_EQ((1ull << 32) + i * 4 * CHUNK, nt.range[i].iova);
		EXPECT_EQ(PG, nt.range[i].size);
	}
	/* Past it: one unmap of everything. */
	before = sunreclaim_kb();
	ASSERT_EQ(0, unmap_flood(&self->r, mem, 20 * MAX_UNMAPS, 4 * CHUNK));
	after = sunreclaim_kb();
	TH_LOG("%d unmaps: unreclaimable slab %+ld kB", 20 * MAX_UNMAPS,
	       after - before);
	ASSERT_EQ(0, read_notices(self->r.ctl, &nt));
	EXPECT_EQ(1, nt.unmaps);
	EXPECT_TRUE(nt.unmap_all);
	EXPECT_EQ(0, nt.irq_state + nt.vmm_close + nt.other);

	/* VMM opens and closes: one of each notice a close posts. */
	for (i = 0; i < 20; i++) {
		vfio_client_close(&self->r.c);
		ASSERT_EQ(0, rig_open_vmm(&self->r, NULL));
	}
	ASSERT_EQ(0, read_notices(self->r.ctl, &nt));
	EXPECT_EQ(1, nt.vmm_close);
	EXPECT_EQ(1, nt.irq_state);
	EXPECT_GE(1, nt.unmaps);
	EXPECT_EQ(0, nt.other);
	munmap(mem, PG);
	close(efd);
}

TEST_HARNESS_MAIN
