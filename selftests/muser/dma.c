// SPDX-License-Identifier: GPL-2.0
/*
 * Guest DMA: the emulator pins guest memory on demand (MUSER_IOC_DMA_MAP),
 * maps it through its control node, copies with MUSER_IOC_DMA_RW, and
 * loses it when the VMM unmaps it. The test is the VMM (a VFIO container
 * with anonymous memory mapped for DMA, as QEMU's default guest RAM) and
 * the emulator at once.
 *
 * Covered: coherence both ways through the mapping and the copies, pin and
 * map accounting (sysfs) back to zero, cached pins (no new pin on a second
 * map), revocation on VMM unmap (SIGBUS on the stale mapping, EFAULT on
 * copies, the posted MUSER_REQ_DMA_UNMAP, mapping again after a remap),
 * iova outside mapped ranges, argument errors, RLIMIT_MEMLOCK exhaustion,
 * the per-device budget with LRU eviction, holds dropped on detach, the
 * VMM closing the device (MUSER_REQ_VMM_CLOSE), hugepage-backed memory and
 * unmaps racing emulator accesses.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "harness.h"
#include "fixture.h"

#define PG		4096ul
#define CHUNK		(1ul << MUSER_DMA_CHUNK_SHIFT)
#define GUEST_IOVA	(1ul << 30)		/* where the test maps its "RAM" */
#define GUEST_SIZE	(4 * CHUNK)

#define RW VMM_RW

/* Count posted notices of @type within @ms; the range of the last unmap. */
static int count_posted(int ctl, uint16_t type, struct muser_dma_range *last,
			int ms)
{
	static struct emu_req reqs[32];
	int64_t end = now_ms() + ms;
	int n, i, count = 0;

	while (now_ms() < end) {
		n = emu_read_timeout(ctl, reqs, 32, 50);
		if (n <= 0)
			continue;
		for (i = 0; i < n && i < 32; i++) {
			if (reqs[i].hdr.type != type)
				continue;
			count++;
			if (last && type == MUSER_REQ_DMA_UNMAP)
				memcpy(last, reqs[i].data, sizeof(*last));
		}
	}
	return count;
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + seed + (i >> 12));
}

FIXTURE(dma) {
	struct rig r;
	uint8_t *guest;		/* GUEST_SIZE bytes mapped at GUEST_IOVA */
	void *window;		/* the emulator's mapping, or NULL */
	size_t window_len;
};

FIXTURE_SETUP(dma)
{
	self->window = NULL;
	RIG_SETUP(&self->r, NULL, RIG_NONBLOCK);
	ASSERT_EQ(PG, sysconf(_SC_PAGESIZE));

	/* Anonymous memory, not touched yet: pinning must fault it in. */
	self->guest = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->guest);
	test_vmm_map(&self->r.c, self->guest, GUEST_IOVA, GUEST_SIZE);
	/* Drain what attaching and opening posted. */
	count_posted(self->r.ctl, 0, NULL, 50);
}

FIXTURE_TEARDOWN(dma)
{
	if (self->window)
		munmap(self->window, self->window_len);
	RIG_TEARDOWN(&self->r);
}

/* Map the DMA window of [iova, iova + len) into the test. */
static uint8_t *window(struct __test_metadata *_metadata,
		       FIXTURE_DATA(dma) *self, uint64_t offset, size_t len)
{
	void *p = map_fd(self->r.ctl, offset, len, MAP_SHARED);

	if (!p) {
		TH_LOG("mmap of the DMA window: %m");
		return NULL;
	}
	self->window = p;
	self->window_len = len;
	return p;
}

TEST_F(dma, map_coherent_both_ways)
{
	uint64_t off = 0, iova = GUEST_IOVA + CHUNK + 3 * PG;
	uint8_t *w, buf[2 * PG];

	fill(self->guest + CHUNK + 3 * PG, 2 * PG, 1);
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, iova, 2 * PG, MUSER_DMA_F_WRITE, &off));
	EXPECT_EQ(MUSER_DMA_OFFSET + iova, off);
	EXPECT_EQ(2, dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_EQ(2, dma_stat(self->r.uuid, "mapped_pages"));

	w = window(_metadata, self, off, 2 * PG);
	ASSERT_NE(NULL, w);
	EXPECT_EQ(0, memcmp(w, self->guest + CHUNK + 3 * PG, 2 * PG));
	/* The emulator's writes reach guest memory, and back. */
	fill(w, 2 * PG, 7);
	EXPECT_EQ(0, memcmp(w, self->guest + CHUNK + 3 * PG, 2 * PG));
	self->guest[CHUNK + 3 * PG + 100] ^= 0xff;
	EXPECT_EQ(w[100], self->guest[CHUNK + 3 * PG + 100]);

	/* Copies see the same memory. */
	ASSERT_EQ(0, _test_dma_rw(self->r.ctl, iova, buf, sizeof(buf), false));
	EXPECT_EQ(0, memcmp(buf, w, sizeof(buf)));
	fill(buf, sizeof(buf), 9);
	ASSERT_EQ(0, _test_dma_rw(self->r.ctl, iova + 1, buf, sizeof(buf) - 2, true));
	EXPECT_EQ(0, memcmp(buf, self->guest + CHUNK + 3 * PG + 1, sizeof(buf) - 2));

	/* Released: no longer mapped, still pinned; a second map pins nothing. */
	ASSERT_EQ(0, _test_dma_release(self->r.ctl, iova, 2 * PG));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	EXPECT_EQ(2, dma_stat(self->r.uuid, "pinned_pages"));
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, iova, 2 * PG, MUSER_DMA_F_WRITE, NULL));
	EXPECT_EQ(2, dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_EQ(-EINVAL, _test_dma_release(self->r.ctl, GUEST_IOVA + 3 * CHUNK, PG));
	ASSERT_EQ(0, _test_dma_release(self->r.ctl, iova, 2 * PG));
	EXPECT_EQ(-EINVAL, _test_dma_release(self->r.ctl, iova, 2 * PG));
}

TEST_F(dma, copy_pins_on_demand)
{
	uint8_t *buf = malloc(GUEST_SIZE);
	uint64_t off;

	ASSERT_NE(NULL, buf);
	fill(self->guest, GUEST_SIZE, 3);
	/* Straddling chunks, at most MUSER_DMA_RW_MAX a copy; no hold taken. */
	for (off = 5; off < GUEST_SIZE - 5; off += MUSER_DMA_RW_MAX) {
		uint64_t len = GUEST_SIZE - 5 - off;

		if (len > MUSER_DMA_RW_MAX)
			len = MUSER_DMA_RW_MAX;
		ASSERT_EQ(0, _test_dma_rw(self->r.ctl, GUEST_IOVA + off, buf + off, len, false));
	}
	EXPECT_EQ(0, memcmp(buf + 5, self->guest + 5, GUEST_SIZE - 10));
	EXPECT_EQ(GUEST_SIZE / PG, dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	free(buf);
}

TEST_F(dma, outside_mapped_ranges)
{
	uint8_t b[16];

	EXPECT_EQ(-EFAULT, _test_dma_map(self->r.ctl, 0x40000000ul * 8, PG, 0, NULL));
	/* Half in, half out: nothing held. */
	EXPECT_EQ(-EFAULT, _test_dma_map(self->r.ctl, GUEST_IOVA + GUEST_SIZE - PG,
				   2 * PG, 0, NULL));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	EXPECT_EQ(-EFAULT, _test_dma_rw(self->r.ctl, GUEST_IOVA - 8, b, sizeof(b), false));
	EXPECT_EQ(-EFAULT, _test_dma_rw(self->r.ctl, GUEST_IOVA, NULL, sizeof(b), false));
	/* The client's own 2 MiB at iova 0 is guest memory too. */
	EXPECT_EQ(0, _test_dma_rw(self->r.ctl, 0, b, sizeof(b), false));
}

TEST_F(dma, argument_errors)
{
	struct muser_dma_map m = { .argsz = sizeof(m), .iova = GUEST_IOVA, .size = PG };
	struct muser_dma_rw rw = { .argsz = sizeof(rw), .iova = GUEST_IOVA, .size = 8 };
	uint8_t b[8];
	int other;

	rw.data = (uintptr_t)b;
	EXPECT_EQ(-EINVAL, _test_dma_map(self->r.ctl, GUEST_IOVA, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, _test_dma_map(self->r.ctl, GUEST_IOVA, PG, 0x80, NULL));
	EXPECT_EQ(-EINVAL, _test_dma_map(self->r.ctl, MUSER_DMA_MAX_IOVA, 2, 0, NULL));
	EXPECT_EQ(-EINVAL, _test_dma_map(self->r.ctl, ~0ull - 1, 16, 0, NULL));
	/* The largest range is refused at once, not walked. */
	EXPECT_EQ(-ENOSPC, _test_dma_map(self->r.ctl, 0, MUSER_DMA_MAX_IOVA + 1, 0, NULL));
	m.argsz = sizeof(m) - 1;
	EXPECT_EQ(-1, ioctl(self->r.ctl, MUSER_IOC_DMA_MAP, &m));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->r.ctl, MUSER_IOC_DMA_MAP, NULL));
	EXPECT_EQ(EFAULT, errno);
	rw.argsz = sizeof(rw) - 8;
	EXPECT_EQ(-1, ioctl(self->r.ctl, MUSER_IOC_DMA_RW, &rw));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-EINVAL, _test_dma_rw(self->r.ctl, GUEST_IOVA, b, MUSER_DMA_RW_MAX + 1ull, false));
	EXPECT_EQ(-EINVAL, _test_dma_rw(self->r.ctl, GUEST_IOVA, b, 0, false));

	/* Only the attached emulator. */
	other = ctl_open(self->r.uuid, O_NONBLOCK);
	ASSERT_LE(0, other);
	EXPECT_EQ(-ENOTCONN, _test_dma_map(other, GUEST_IOVA, PG, 0, NULL));
	EXPECT_EQ(-ENOTCONN, _test_dma_rw(other, GUEST_IOVA, b, 8, false));
	EXPECT_EQ(NULL, map_fd(other, MUSER_DMA_OFFSET, PG, MAP_SHARED));
	EXPECT_EQ(ENOTCONN, errno);
	close(other);

	/* A private or oversized mapping of the window. */
	EXPECT_EQ(NULL, map_fd(self->r.ctl, MUSER_DMA_OFFSET, PG, MAP_PRIVATE));
	EXPECT_EQ(NULL, map_fd(self->r.ctl, MUSER_DMA_OFFSET + MUSER_DMA_MAX_IOVA + 1 - PG,
			       2 * PG, MAP_SHARED));
}

TEST_F(dma, vmm_unmap_revokes)
{
	uint64_t off = 0, iova = GUEST_IOVA + 2 * CHUNK;
	struct muser_dma_range range = { 0, 0 };
	uint8_t *w, v = 0, b[8];
	uint8_t *fresh;

	fill(self->guest + 2 * CHUNK, CHUNK, 5);
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, iova, CHUNK, MUSER_DMA_F_WRITE, &off));
	w = window(_metadata, self, off, CHUNK);
	ASSERT_NE(NULL, w);
	ASSERT_TRUE(touch(w + PG, &v));
	EXPECT_EQ(self->guest[2 * CHUNK + PG], v);

	/* The guest's memory goes: the mapping is gone before the ioctl returns. */
	ASSERT_EQ(0, _test_vmm_unmap(&self->r.c, GUEST_IOVA, GUEST_SIZE));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_FALSE(touch(w + PG, &v)) TH_LOG("stale guest memory still mapped");
	EXPECT_EQ(-EFAULT, _test_dma_rw(self->r.ctl, iova, b, sizeof(b), false));
	EXPECT_EQ(1, count_posted(self->r.ctl, MUSER_REQ_DMA_UNMAP, &range, 300));
	EXPECT_EQ(GUEST_IOVA, range.iova);
	EXPECT_EQ(GUEST_SIZE, range.size);
	EXPECT_EQ(-EFAULT, _test_dma_map(self->r.ctl, iova, PG, 0, NULL));

	/* New memory at the same iova: the hold and the mapping work again. */
	fresh = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, fresh);
	fill(fresh, GUEST_SIZE, 11);
	ASSERT_EQ(0, _test_vmm_map(&self->r.c, fresh, GUEST_IOVA, GUEST_SIZE, RW));
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, iova, CHUNK, MUSER_DMA_F_WRITE, NULL));
	ASSERT_TRUE(touch(w + PG, &v));
	EXPECT_EQ(fresh[2 * CHUNK + PG], v);
	EXPECT_EQ(0, _test_dma_release(self->r.ctl, iova, CHUNK));
	/* Twice mapped, once released: one hold left. */
	EXPECT_EQ(CHUNK / PG, dma_stat(self->r.uuid, "mapped_pages"));
	EXPECT_EQ(0, _test_dma_release(self->r.ctl, iova, CHUNK));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	self->guest = fresh;
}

TEST_F(dma, read_only_guest_memory)
{
	uint8_t *ro, b[8];

	ro = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	fill(ro, CHUNK, 2);
	ASSERT_EQ(0, _test_vmm_map(&self->r.c, ro, 8 * CHUNK, CHUNK, VFIO_DMA_MAP_FLAG_READ));
	EXPECT_EQ(-EPERM, _test_dma_map(self->r.ctl, 8 * CHUNK, PG, MUSER_DMA_F_WRITE, NULL));
	EXPECT_EQ(0, _test_dma_rw(self->r.ctl, 8 * CHUNK + PG, b, sizeof(b), false));
	EXPECT_EQ(0, memcmp(b, ro + PG, sizeof(b)));
	EXPECT_EQ(-EPERM, _test_dma_rw(self->r.ctl, 8 * CHUNK + PG, b, sizeof(b), true));
	EXPECT_EQ(0, _test_vmm_unmap(&self->r.c, 8 * CHUNK, CHUNK));
	munmap(ro, CHUNK);
}

TEST_F(dma, budget_evicts_least_recently_used)
{
	ASSERT_EQ(0, dma_stat_set(self->r.uuid, "budget_mb", 4));	/* 2 chunks */
	EXPECT_EQ(4, dma_stat(self->r.uuid, "budget_mb"));
	EXPECT_NE(0, dma_stat_set(self->r.uuid, "budget_mb", 0));

	ASSERT_EQ(0, _test_dma_map(self->r.ctl, GUEST_IOVA, CHUNK, 0, NULL));
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, GUEST_IOVA + CHUNK, CHUNK, 0, NULL));
	/* Both held: a third does not fit. */
	EXPECT_EQ(-ENOSPC, _test_dma_map(self->r.ctl, GUEST_IOVA + 2 * CHUNK, PG, 0, NULL));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "evictions"));

	/* Released ones are evicted, least recently used first. */
	ASSERT_EQ(0, _test_dma_release(self->r.ctl, GUEST_IOVA, CHUNK));
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, GUEST_IOVA + 2 * CHUNK, CHUNK, 0, NULL));
	EXPECT_EQ(1, dma_stat(self->r.uuid, "evictions"));
	EXPECT_EQ(2 * CHUNK / PG, dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_EQ(2 * CHUNK / PG, dma_stat(self->r.uuid, "mapped_pages"));

	/* Shrinking the budget evicts what nobody holds at once. */
	ASSERT_EQ(0, _test_dma_release(self->r.ctl, GUEST_IOVA + CHUNK, CHUNK));
	ASSERT_EQ(0, dma_stat_set(self->r.uuid, "budget_mb", 2));
	EXPECT_EQ(CHUNK / PG, dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_EQ(2, dma_stat(self->r.uuid, "evictions"));
	ASSERT_EQ(0, _test_dma_release(self->r.ctl, GUEST_IOVA + 2 * CHUNK, CHUNK));
}

TEST_F(dma, detach_drops_holds_keeps_pins)
{
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, GUEST_IOVA, 8 * PG, 0, NULL));
	EXPECT_EQ(8, dma_stat(self->r.uuid, "mapped_pages"));
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_DETACH));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	EXPECT_EQ(8, dma_stat(self->r.uuid, "pinned_pages"));
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, GUEST_IOVA, 8 * PG, 0, NULL));
	EXPECT_EQ(8, dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_EQ(8, dma_stat(self->r.uuid, "mapped_pages"));
}

TEST_F(dma, vmm_close_unpins_and_tells)
{
	uint8_t b[8];

	ASSERT_EQ(0, _test_dma_map(self->r.ctl, GUEST_IOVA, 8 * PG, 0, NULL));
	vfio_client_close(&self->r.c);
	EXPECT_EQ(0, dma_stat(self->r.uuid, "pinned_pages"));
	EXPECT_EQ(-ENXIO, _test_dma_map(self->r.ctl, GUEST_IOVA, PG, 0, NULL));
	EXPECT_EQ(-ENXIO, _test_dma_rw(self->r.ctl, GUEST_IOVA, b, sizeof(b), false));
	/* The holds are the emulator's to release. */
	EXPECT_EQ(0, _test_dma_release(self->r.ctl, GUEST_IOVA, 8 * PG));
	EXPECT_EQ(1, count_posted(self->r.ctl, MUSER_REQ_VMM_CLOSE, NULL, 300));
}

TEST_F(dma, vmm_close_notices)
{
	static struct emu_req reqs[8];
	struct muser_dma_range all;
	int n;

	ASSERT_EQ(0, _test_dma_map(self->r.ctl, GUEST_IOVA, PG, 0, NULL));
	vfio_client_close(&self->r.c);
	/* In order: what to forget, the irq state, then the close. */
	n = emu_read_timeout(self->r.ctl, reqs, 8, 1000);
	ASSERT_EQ(3, n);
	EXPECT_EQ(MUSER_REQ_DMA_UNMAP, reqs[0].hdr.type);
	memcpy(&all, reqs[0].data, sizeof(all));
	EXPECT_EQ(0, all.iova);
	EXPECT_EQ(~0ull, all.size);
	EXPECT_EQ(MUSER_REQ_IRQ_STATE, reqs[1].hdr.type);
	EXPECT_EQ(MUSER_REQ_VMM_CLOSE, reqs[2].hdr.type);
	EXPECT_EQ(0, reqs[2].hdr.id);
}

TEST_F(dma, rlimit_memlock)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	struct rlimit rl = { 16 * PG, 16 * PG };
	uint8_t *mem;

	/* This test process is the VMM: without CAP_IPC_LOCK, limited. */
	ASSERT_EQ(0, syscall(SYS_capget, &hdr, data));
	data[0].effective &= ~(1u << CAP_IPC_LOCK);
	data[0].permitted &= ~(1u << CAP_IPC_LOCK);
	ASSERT_EQ(0, syscall(SYS_capset, &hdr, data));
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));

	mem = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	/* The limit is taken when the VMM maps. */
	ASSERT_EQ(0, _test_vmm_map(&self->r.c, mem, 16 * CHUNK, CHUNK, RW));
	EXPECT_EQ(0, _test_dma_map(self->r.ctl, 16 * CHUNK, 8 * PG, 0, NULL));
	EXPECT_EQ(-ENOMEM, _test_dma_map(self->r.ctl, 16 * CHUNK + 8 * PG, 64 * PG, 0, NULL));
	EXPECT_EQ(8, dma_stat(self->r.uuid, "mapped_pages"));
	EXPECT_EQ(0, _test_dma_release(self->r.ctl, 16 * CHUNK, 8 * PG));
	EXPECT_EQ(0, _test_vmm_unmap(&self->r.c, 16 * CHUNK, CHUNK));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "pinned_pages"));
}

TEST_F(dma, hugepage_backed)
{
	uint8_t *huge, *w, v = 0;
	uint64_t off = 0, iova = 32 * CHUNK;
	long nr = 0;

	sysfs_read_long("/proc/sys/vm/nr_hugepages", &nr);
	if (nr < 2)
		sysfs_write("/proc/sys/vm/nr_hugepages", "2");
	huge = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (huge == MAP_FAILED)
		SKIP(return, "no 2 MiB hugepage available: %m");
	fill(huge, CHUNK, 4);
	ASSERT_EQ(0, _test_vmm_map(&self->r.c, huge, iova, CHUNK, RW));
	ASSERT_EQ(0, _test_dma_map(self->r.ctl, iova, CHUNK, MUSER_DMA_F_WRITE, &off));
	w = window(_metadata, self, off, CHUNK);
	ASSERT_NE(NULL, w);
	EXPECT_EQ(0, memcmp(w, huge, CHUNK));
	w[CHUNK - 1] ^= 0x5a;
	EXPECT_EQ(w[CHUNK - 1], huge[CHUNK - 1]);
	ASSERT_EQ(0, _test_dma_release(self->r.ctl, iova, CHUNK));
	ASSERT_EQ(0, _test_vmm_unmap(&self->r.c, iova, CHUNK));
	EXPECT_FALSE(touch(w, &v));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "pinned_pages"));
	munmap(huge, CHUNK);
}

struct unmapper {
	pthread_t thread;
	struct vfio_client *c;
	uint8_t *mem;
	volatile int stop;
	int rounds, errors;
};

static void *unmapper_fn(void *arg)
{
	struct unmapper *u = arg;

	while (!u->stop) {
		if (_test_vmm_unmap(u->c, GUEST_IOVA, GUEST_SIZE) ||
		    _test_vmm_map(u->c, u->mem, GUEST_IOVA, GUEST_SIZE, RW))
			u->errors++;
		u->rounds++;
	}
	return NULL;
}

TEST_F_TIMEOUT(dma, unmap_races_emulator, 120)
{
	struct unmapper u = { .c = &self->r.c, .mem = self->guest };
	int64_t end = now_ms() + 3000;
	int ok = 0, faults = 0, other = 0, i;
	uint8_t buf[PG];

	fill(self->guest, GUEST_SIZE, 6);
	ASSERT_EQ(0, pthread_create(&u.thread, NULL, unmapper_fn, &u));
	for (i = 0; now_ms() < end || u.rounds < 50; i++) {
		uint64_t iova = GUEST_IOVA + (i % (GUEST_SIZE / PG)) * PG;
		int ret = _test_dma_rw(self->r.ctl, iova, buf, sizeof(buf), false);

		if (!ret && !memcmp(buf, self->guest + (iova - GUEST_IOVA), PG))
			ok++;
		else if (ret == -EFAULT)
			faults++;
		else
			other++;
		ret = _test_dma_map(self->r.ctl, iova, PG, 0, NULL);
		if (!ret)
			ret = _test_dma_release(self->r.ctl, iova, PG);
		if (ret && ret != -EFAULT)
			other++;
	}
	u.stop = 1;
	pthread_join(u.thread, NULL);
	TH_LOG("%d rounds of unmap+map; copies: %d ok, %d EFAULT", u.rounds, ok, faults);
	EXPECT_EQ(0, u.errors);
	EXPECT_EQ(0, other);
	EXPECT_LT(0, ok);
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
}

TEST_HARNESS_MAIN
