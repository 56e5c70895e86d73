// SPDX-License-Identifier: GPL-2.0
/*
 * The request ring (MUSER_IOC_RING_SETUP), attacked as a hostile emulator
 * would: setup and mmap at every edge, round trips without read() or
 * write(), WAKEUP and RING_ENTER with sleeping VMM threads, requests too
 * large for the ring and their order, bad and duplicate answers, indices
 * out of range, replay to the next emulator and takeover, VMM threads and
 * emulators killed with requests in the ring, 8 VMM threads against a ring
 * emulator thread, then a seeded fuzzer of answers. The test is the raw
 * emulator and the VMM, on layout_default() with BAR0 posted (BAR2 is not).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "harness.h"
#include "fixture.h"

#define WAIT_MS	5000	/* for a request that must arrive */
#define BAR0	VFIO_PCI_BAR0_REGION_INDEX
#define BAR2	VFIO_PCI_BAR2_REGION_INDEX
#define PG	4096

FIXTURE(ring) {
	struct rig rig;
	struct muser_device_info layout;
	struct emu_ring ring;
	int log;		/* kmsg_start() of tests counting log lines */
};

FIXTURE_SETUP(ring)
{
	memset(&self->ring, 0, sizeof(self->ring));
	self->log = -1;
	layout_default(&self->layout);
	self->layout.regions[BAR0].flags |= MUSER_REGION_F_POSTED_WRITES;
	RIG_SETUP(&self->rig, &self->layout, RIG_NONBLOCK);
	ASSERT_EQ(PG, sysconf(_SC_PAGESIZE));
}

FIXTURE_TEARDOWN(ring)
{
	/* The mapping holds the file: unmap before the rig closes it. */
	emu_ring_close(&self->ring);
	RIG_TEARDOWN(&self->rig);
	if (self->log >= 0)
		close(self->log);
}

#define test_ring(self, entries) \
	ASSERT_EQ(0, emu_ring_open(&(self)->ring, (self)->rig.ctl, entries))

#define test_figures(self, f) ASSERT_EQ(0, nl_figures((self)->rig.uuid, f))

/*
 * Log lines are ratelimited per call site (10 in 5 s): a test counting
 * them starts a fresh window first.
 */
static int kmsg_fresh(const char *name)
{
	sleep_ms(5100);
	return kmsg_start(name);
}

static void fill(uint8_t *buf, uint32_t region, uint64_t off, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = emu_pattern(region, off + i);
}

static bool filled(const uint8_t *buf, uint32_t region, uint64_t off,
		   size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != emu_pattern(region, off + i))
			return false;
	return true;
}

/* read() of the O_NONBLOCK control node until it returns something. */
static int read_wait(int ctl, struct emu_req *reqs, int max, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int n;

	for (;;) {
		n = emu_read(ctl, reqs, max);
		if (n != -EAGAIN || now_ms() >= end)
			return n == -EAGAIN ? 0 : n;
		sleep_ms(1);
	}
}

/*
 * @want requests from the SQ of @r (NULL: none) and read(), SQ first as
 * the uapi asks, each sorted by where it came from in @from (1: ring).
 */
static int collect(struct emu_ring *r, int ctl, struct emu_req *reqs,
		   int *from, int want, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int have = 0, n = 0, i;

	while (have < want && now_ms() < end) {
		while (r && have < want && (n = emu_ring_pop(r, &reqs[have])) == 1)
			from[have++] = 1;
		if (r && n < 0)
			return n;
		if (have == want)
			break;
		n = emu_read(ctl, reqs + have, want - have);
		if (n == -EAGAIN) {
			sleep_ms(1);
			continue;
		}
		if (n < 0)
			return n;
		for (i = 0; i < n; i++)
			from[have++] = 0;
	}
	return have;
}

/* The answer a good emulator gives @q, through the CQ. */
static int ring_answer_ok(struct emu_ring *r, const struct emu_req *q)
{
	uint8_t data[MUSER_RING_DATA];

	if (q->hdr.type != MUSER_REQ_READ)
		return emu_ring_answer(r, q->hdr.id, 0, NULL, 0);
	fill(data, q->hdr.region, q->hdr.offset, q->hdr.len);
	return emu_ring_answer(r, q->hdr.id, 0, data, q->hdr.len);
}

/* The same through write(). */
static ssize_t write_answer_ok(int ctl, const struct emu_req *q)
{
	uint8_t data[MUSER_MAX_DATA];

	if (q->hdr.type != MUSER_REQ_READ)
		return emu_reply(ctl, q->hdr.id, 0, NULL, 0);
	fill(data, q->hdr.region, q->hdr.offset, q->hdr.len);
	return emu_reply(ctl, q->hdr.id, 0, data, q->hdr.len);
}

#define ASSERT_REQ(q, t, reg, off, l) do {				\
	ASSERT_EQ(t, (q)->hdr.type);					\
	ASSERT_EQ((uint32_t)(reg), (q)->hdr.region);			\
	ASSERT_EQ((uint64_t)(off), (q)->hdr.offset);			\
	ASSERT_EQ((uint32_t)(l), (q)->hdr.len);				\
	ASSERT_EQ((t) == MUSER_REQ_WRITE ? (uint32_t)(l) : 0,		\
		  (q)->hdr.data_len);					\
} while (0)

/* A VMM access from another thread, its request taken from the SQ. */
#define test_ring_request(self, a, region, off, len, write, q) do {	\
	if (write)							\
		fill((a)->buf, region, off, len);			\
	ASSERT_EQ(0, async_start(a, &(self)->rig.c, region, off, len, write)); \
	ASSERT_EQ(1, emu_ring_pop_wait(&(self)->ring, q, WAIT_MS));	\
	ASSERT_REQ(q, (write) ? MUSER_REQ_WRITE : MUSER_REQ_READ,	\
		   region, off, len);					\
} while (0)

static bool wait_kflag(struct emu_ring *r, uint32_t flag, bool set,
		       int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (!!(emu_ring_kflags(r) & flag) != set) {
		if (now_ms() >= end)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* Wait until @n requests are in the SQ, not taken. */
static bool wait_pending(struct emu_ring *r, uint32_t n, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (emu_ring_pending(r) < n) {
		if (now_ms() >= end)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* The old emulator goes: unmap its ring, close it, serve with @ctl. */
static void replace_rig_ctl(FIXTURE_DATA(ring) *self, int ctl)
{
	emu_ring_close(&self->ring);
	close(self->rig.ctl);
	self->rig.ctl = ctl;
}

/* ------------------------------------------------------------ setup */

static int setup_entries(int ctl, uint32_t argsz, uint32_t flags,
			 uint32_t entries, uint32_t pad)
{
	struct muser_ring_setup s[2];	/* room for argsz past the struct */

	memset(s, 0, sizeof(s));
	s[0].argsz = argsz;
	s[0].flags = flags;
	s[0].entries = entries;
	s[0].pad = pad;
	return emu_ring_setup_raw(ctl, s);
}

/* Bad arguments: EINVAL, and the file may still set up its one ring. */
TEST_F(ring, setup_bad_arguments)
{
	static const uint32_t bad_entries[] = {
		0, 3, 6, 255, 257, 384, 512, 1024, 1u << 16, 1u << 31, UINT_MAX,
	};
	const uint32_t sz = sizeof(struct muser_ring_setup);
	size_t i;

	self->log = kmsg_fresh("ring.setup_bad_arguments");
	ASSERT_LE(0, self->log);
	for (i = 0; i < ARRAY_SIZE(bad_entries); i++)
		EXPECT_EQ(-EINVAL, setup_entries(self->rig.ctl, sz, 0,
						 bad_entries[i], 0))
			TH_LOG("entries %u", bad_entries[i]);
	EXPECT_EQ(-EINVAL, setup_entries(self->rig.ctl, sz, 1, 8, 0));
	EXPECT_EQ(-EINVAL, setup_entries(self->rig.ctl, sz, 1u << 31, 8, 0));
	EXPECT_EQ(-EINVAL, setup_entries(self->rig.ctl, sz, 0, 8, 1));
	EXPECT_EQ(-EINVAL, setup_entries(self->rig.ctl, 0, 0, 8, 0));
	EXPECT_EQ(-EINVAL, setup_entries(self->rig.ctl, 1, 0, 8, 0));
	EXPECT_EQ(-EINVAL, setup_entries(self->rig.ctl, sz - 1, 0, 8, 0));
	EXPECT_EQ(-EFAULT, emu_ring_setup_raw(self->rig.ctl, NULL));
	/* No ring: nothing to enter, nothing to map. */
	EXPECT_EQ(-ENODEV, ioctl(self->rig.ctl, MUSER_IOC_RING_ENTER) ? -errno : 0);
	EXPECT_LE(1, kmsg_count(self->log, "ring setup: bad argument"));
	/* None of that took the file's ring. */
	test_ring(self, 8);
	EXPECT_EQ(-EBUSY, setup_entries(self->rig.ctl, sz, 0, 8, 0));
	{
		struct muser_ring_setup s = { .argsz = sz, .entries = 4 };

		/* A refused call writes nothing back. */
		EXPECT_EQ(-EBUSY, emu_ring_setup_raw(self->rig.ctl, &s));
		EXPECT_EQ(0, s.size);
		EXPECT_EQ(0, s.sq_off);
		EXPECT_EQ(0, s.cq_off);
	}
	EXPECT_EQ(-EBUSY, setup_entries(self->rig.ctl, sz, 0, 1, 0));
}

/* Only the attached emulator sets up a ring. */
TEST_F(ring, setup_not_attached)
{
	const uint32_t sz = sizeof(struct muser_ring_setup);
	int other = ctl_open(self->rig.uuid, O_NONBLOCK);

	ASSERT_LE(0, other);
	EXPECT_EQ(-ENOTCONN, setup_entries(other, sz, 0, 8, 0));
	EXPECT_EQ(-ENODEV, ioctl(other, MUSER_IOC_RING_ENTER) ? -errno : 0);
	ASSERT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH));
	EXPECT_EQ(-ENOTCONN, setup_entries(self->rig.ctl, sz, 0, 8, 0));
	/* The other file attaches: now it may, and only once. */
	ASSERT_EQ(0, ctl_attach(other, &self->layout));
	EXPECT_EQ(0, setup_entries(other, sz, 0, 8, 0));
	EXPECT_EQ(-EBUSY, setup_entries(other, sz, 0, 8, 0));
	EXPECT_EQ(-ENOTCONN, setup_entries(self->rig.ctl, sz, 0, 8, 0));
	EXPECT_EQ(0, ioctl(other, MUSER_IOC_RING_ENTER) ? -errno : 0);
	close(other);
	ASSERT_EQ(0, ctl_attach(self->rig.ctl, &self->layout));
}

/*
 * Every good size, each on a file of its own (one ring per file), with
 * argsz at and past the struct: the layout the kernel reports holds both
 * queues, and a fresh ring is all zeroes.
 */
TEST_F(ring, setup_every_size)
{
	const uint32_t sizes[] = { sizeof(struct muser_ring_setup),
				   sizeof(struct muser_ring_setup) + 8, UINT_MAX };
	uint32_t e, k = 0;

	ASSERT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH));
	for (e = 1; e <= MUSER_RING_MAX_ENTRIES; e *= 2, k++) {
		struct muser_ring_setup s[2];
		int ctl = ctl_open(self->rig.uuid, O_NONBLOCK);
		uint8_t *p;
		size_t i;

		ASSERT_LE(0, ctl);
		ASSERT_EQ(0, ctl_attach(ctl, &self->layout));
		memset(s, 0, sizeof(s));
		s[0].argsz = sizes[k % ARRAY_SIZE(sizes)];
		s[0].entries = e;
		ASSERT_EQ(0, emu_ring_setup_raw(ctl, s)) TH_LOG("entries %u", e);
		EXPECT_EQ(0, s[0].size % PG) TH_LOG("entries %u", e);
		EXPECT_LE(sizeof(struct muser_ring_hdr), s[0].sq_off);
		EXPECT_LE(s[0].sq_off + e * sizeof(struct muser_ring_sqe), s[0].cq_off);
		EXPECT_LE(s[0].cq_off + e * sizeof(struct muser_ring_cqe), s[0].size);
		/* What the kernel wrote stayed within the struct. */
		EXPECT_EQ(0, s[1].argsz);
		EXPECT_EQ(-EBUSY, setup_entries(ctl, sizeof(s[0]), 0, e, 0));
		p = mmap(NULL, s[0].size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 ctl, MUSER_RING_OFFSET);
		ASSERT_NE(MAP_FAILED, p) TH_LOG("entries %u: %s", e, strerror(errno));
		for (i = 0; i < s[0].size; i++)
			if (p[i])
				break;
		EXPECT_EQ(s[0].size, i) TH_LOG("entries %u: byte %zu set", e, i);
		munmap(p, s[0].size);
		close(ctl);
	}
	ASSERT_EQ(0, ctl_attach(self->rig.ctl, &self->layout));
}

/*
 * A ring serves the attachment it was set up in: detached and attached
 * again, the file keeps its ring (EBUSY) but new requests go to read().
 */
TEST_F(ring, setup_after_detach)
{
	struct async_access a;
	struct emu_req q;
	int from;

	int ctl;

	test_ring(self, 8);
	EXPECT_EQ(0, emu_ring_kflags(&self->ring) & MUSER_RING_F_RETIRED);
	ASSERT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH));
	EXPECT_TRUE(emu_ring_kflags(&self->ring) & MUSER_RING_F_RETIRED);
	EXPECT_EQ(-ENOTCONN, emu_read(self->rig.ctl, &q, 1));
	EXPECT_EQ(-ENOTCONN, setup_entries(self->rig.ctl, sizeof(struct muser_ring_setup), 0, 8, 0));
	/* Its ring may hold stale copies: the file cannot attach again. */
	EXPECT_EQ(-EBUSY, ctl_attach(self->rig.ctl, &self->layout));

	/* A new file can; nothing enters the old ring. */
	ctl = ctl_open(self->rig.uuid, O_NONBLOCK);
	ASSERT_LE(0, ctl);
	ASSERT_EQ(0, ctl_attach(ctl, &self->layout));
	ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0x10, 4, false));
	ASSERT_EQ(1, collect(NULL, ctl, &q, &from, 1, WAIT_MS));
	EXPECT_EQ(0, self->ring.hdr->sq_tail);
	EXPECT_EQ(0, emu_ring_pending(&self->ring));
	ASSERT_LT(0, write_answer_ok(ctl, &q));
	ASSERT_EQ(4, async_join(&a));
	replace_rig_ctl(self, ctl);
}

/* ------------------------------------------------------------- mmap */

static int try_map(int fd, uint64_t off, size_t len, int prot, int flags)
{
	long p = syscall(SYS_mmap, NULL, len, prot, flags, fd, off);

	if (p < 0 && p > -4096)
		return -errno;
	munmap((void *)p, len);
	return 0;
}

TEST_F(ring, mmap_edges)
{
	const int rw = PROT_READ | PROT_WRITE;
	int other = ctl_open(self->rig.uuid, O_NONBLOCK);
	struct muser_ring_hdr *h2;
	struct async_access a;
	struct emu_req q;
	size_t size;
	void *p;
	int ret;

	ASSERT_LE(0, other);
	/* No ring yet, and a file that has none: nothing at that offset. */
	ret = try_map(self->rig.ctl, MUSER_RING_OFFSET, PG, rw, MAP_SHARED);
	EXPECT_TRUE(ret == -ENODEV || ret == -EINVAL) TH_LOG("%d", ret);
	ret = try_map(other, MUSER_RING_OFFSET, PG, rw, MAP_SHARED);
	EXPECT_TRUE(ret == -ENODEV || ret == -EINVAL) TH_LOG("%d", ret);

	test_ring(self, 4);
	size = self->ring.setup.size;
	/* The ring is the file's own: the other file still has none. */
	ret = try_map(other, MUSER_RING_OFFSET, PG, rw, MAP_SHARED);
	EXPECT_TRUE(ret == -ENODEV || ret == -EINVAL) TH_LOG("%d", ret);
	EXPECT_EQ(0, try_map(self->rig.ctl, MUSER_RING_OFFSET, PG, rw, MAP_SHARED));
	EXPECT_EQ(0, try_map(self->rig.ctl, MUSER_RING_OFFSET, size, PROT_READ, MAP_SHARED));
	EXPECT_EQ(-EINVAL, try_map(self->rig.ctl, MUSER_RING_OFFSET, size + PG, rw, MAP_SHARED));
	EXPECT_EQ(-EINVAL, try_map(self->rig.ctl, MUSER_RING_OFFSET, 64 * size, rw, MAP_SHARED));
	EXPECT_EQ(-EINVAL, try_map(self->rig.ctl, MUSER_RING_OFFSET + PG, PG, rw, MAP_SHARED));
	EXPECT_EQ(-EINVAL, try_map(self->rig.ctl, MUSER_RING_OFFSET + size, PG, rw, MAP_SHARED));
	EXPECT_EQ(-EINVAL, try_map(self->rig.ctl, MUSER_RING_OFFSET + (1ull << 39), PG, rw, MAP_SHARED));
	/* A private copy would never see the kernel's indices. */
	EXPECT_EQ(-EINVAL, try_map(self->rig.ctl, MUSER_RING_OFFSET, PG, rw, MAP_PRIVATE));
	ret = try_map(self->rig.ctl, MUSER_RING_OFFSET, PG, rw | PROT_EXEC, MAP_SHARED);
	TH_LOG("PROT_EXEC mapping of the ring: %s", ret ? strerror(-ret) : "allowed");

	/* It cannot grow past the ring. */
	p = mmap(NULL, size, rw, MAP_SHARED, self->rig.ctl, MUSER_RING_OFFSET);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(MAP_FAILED, mremap(p, size, size + PG, MREMAP_MAYMOVE));
	/* Two mappings, one ring. */
	h2 = p;
	test_ring_request(self, &a, BAR2, 0x40, 4, false, &q);
	EXPECT_EQ(1, __atomic_load_n(&h2->sq_tail, __ATOMIC_ACQUIRE));
	EXPECT_EQ(1, __atomic_load_n(&h2->sq_head, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
	ASSERT_EQ(4, async_join(&a));
	munmap(p, size);
	close(other);
}

/* ------------------------------------------------------ round trips */

/*
 * Reads of every size that fits, and writes with their data in the SQ,
 * answered in the CQ: nothing for read(), and the counters say so; one
 * SQ request answered by write() counts as such.
 */
TEST_F(ring, round_trip)
{
	static const uint32_t lens[] = { 1, 2, 4, 8, 16, 32 };
	struct nl_figures f;
	struct async_access a;
	struct emu_req q, none[1];
	size_t i;
	int n = 0;

	test_ring(self, 8);
	for (i = 0; i < ARRAY_SIZE(lens); i++, n++) {
		uint64_t off = 0x100 * i + lens[i];

		memset(a.buf, 0, sizeof(a.buf));
		test_ring_request(self, &a, BAR2, off, lens[i], false, &q);
		EXPECT_EQ(0, q.hdr.flags);
		EXPECT_EQ(-EAGAIN, emu_read(self->rig.ctl, none, 1));
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
		ASSERT_EQ(lens[i], async_join(&a));
		EXPECT_TRUE(filled(a.buf, BAR2, off, lens[i])) TH_LOG("len %u", lens[i]);
	}
	for (i = 0; i < ARRAY_SIZE(lens); i++, n++) {
		uint64_t off = 0x2000 + 0x100 * i;

		const struct muser_ring_sqe *e;
		size_t k;

		/* The SQ is ours to scribble on: the kernel writes whole entries. */
		memset(self->ring.sq, 0xff, self->ring.entries * sizeof(*self->ring.sq));
		test_ring_request(self, &a, BAR2, off, lens[i], true, &q);
		EXPECT_TRUE(filled(q.data, BAR2, off, lens[i])) TH_LOG("len %u", lens[i]);
		e = &self->ring.sq[(self->ring.hdr->sq_head - 1) % self->ring.entries];
		for (k = lens[i]; k < MUSER_RING_DATA; k++)
			EXPECT_EQ(0, e->data[k]) TH_LOG("len %u, byte %zu", lens[i], k);
		EXPECT_EQ(-EAGAIN, emu_read(self->rig.ctl, none, 1));
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
		ASSERT_EQ(lens[i], async_join(&a));
	}
	/* poll() says when the SQ holds something, and only then. */
	EXPECT_EQ(0, poll_in(self->rig.ctl, 0));
	ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0x3000, 4, false));
	EXPECT_EQ(POLLIN, poll_in(self->rig.ctl, WAIT_MS));
	ASSERT_EQ(1, emu_ring_pop_wait(&self->ring, &q, WAIT_MS));
	EXPECT_EQ(0, poll_in(self->rig.ctl, 0));
	/* An SQ request answered by write(). */
	ASSERT_LT(0, write_answer_ok(self->rig.ctl, &q));
	ASSERT_EQ(4, async_join(&a));
	EXPECT_TRUE(filled(a.buf, BAR2, 0x3000, 4));

	test_figures(self, &f);
	ASSERT_TRUE(f.has_answers);
	EXPECT_EQ(n, f.answers_ring);
	EXPECT_EQ(1, f.answers_syscall);
	EXPECT_EQ(n + 1, f.requests);
	EXPECT_EQ(0, f.failed);
}

/*
 * spin_us 0: the VMM thread sleeps at once and the kernel sets WAKEUP;
 * an answer in the CQ waits until RING_ENTER takes it.
 */
TEST_F(ring, wakeup_and_enter)
{
	struct async_access a[4];
	struct emu_req q[4];
	struct nl_figures f;
	uint32_t head;
	int i;

	ASSERT_EQ(0, rig_set_spin_us(&self->rig, 0));
	test_ring(self, 8);
	EXPECT_EQ(0, emu_ring_kflags(&self->ring) & MUSER_RING_F_WAKEUP);
	/* Nothing to take: entering is harmless. */
	EXPECT_EQ(0, emu_ring_enter(&self->ring));

	test_ring_request(self, &a[0], BAR2, 0x80, 4, false, &q[0]);
	ASSERT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_WAKEUP, true, WAIT_MS));
	{
		struct muser_ring_cqe c;
		uint8_t d[4];

		fill(d, BAR2, 0x80, 4);
		emu_ring_cqe(&c, q[0].hdr.id, 0, d, 4);
		ASSERT_EQ(0, emu_ring_post(&self->ring, &c));
	}
	head = self->ring.hdr->cq_head;
	sleep_ms(300);
	/* Posted, not entered: the sleeper does not see it. */
	EXPECT_EQ(0, __atomic_load_n(&a[0].done, __ATOMIC_ACQUIRE));
	EXPECT_EQ(head, __atomic_load_n(&self->ring.hdr->cq_head, __ATOMIC_ACQUIRE));
	EXPECT_EQ(1, emu_ring_kick(&self->ring));
	ASSERT_EQ(4, async_join(&a[0]));
	EXPECT_TRUE(filled(a[0].buf, BAR2, 0x80, 4));
	EXPECT_EQ(head + 1, self->ring.hdr->cq_head);
	/* Nobody sleeps any more. */
	EXPECT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_WAKEUP, false, WAIT_MS));

	/* Four sleepers, four answers, one RING_ENTER. */
	for (i = 0; i < 4; i++)
		test_ring_request(self, &a[i], BAR2, 0x100 + 8 * i, 8, false, &q[i]);
	ASSERT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_WAKEUP, true, WAIT_MS));
	sleep_ms(100);
	for (i = 0; i < 4; i++) {
		struct muser_ring_cqe c;
		uint8_t d[8];

		fill(d, BAR2, 0x100 + 8 * i, 8);
		emu_ring_cqe(&c, q[i].hdr.id, 0, d, 8);
		ASSERT_EQ(0, emu_ring_post(&self->ring, &c));
	}
	EXPECT_EQ(1, emu_ring_kick(&self->ring));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(8, async_join(&a[i]));
		EXPECT_TRUE(filled(a[i].buf, BAR2, 0x100 + 8 * i, 8));
	}
	test_figures(self, &f);
	EXPECT_EQ(5, f.answers_ring);
	EXPECT_EQ(0, f.answers_syscall);
	EXPECT_LE(5, f.slept);
}

/*
 * A full CQ (spin_us 0, nobody takes answers until entered): the next
 * post finds no room until RING_ENTER takes the others.
 */
TEST_F(ring, cq_full)
{
	struct async_access a[3];
	struct muser_ring_cqe c;
	struct emu_req q[3];
	int from[3], i;

	ASSERT_EQ(0, rig_set_spin_us(&self->rig, 0));
	test_ring(self, 2);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, async_start(&a[i], &self->rig.c, BAR2, 0x10 * i, 4, false));
		ASSERT_EQ(1, collect(&self->ring, self->rig.ctl, &q[i], &from[i], 1, WAIT_MS));
		ASSERT_REQ(&q[i], MUSER_REQ_READ, BAR2, 0x10 * i, 4);
	}
	/* Two entries: the first two came in the SQ. */
	EXPECT_EQ(1, from[0]);
	EXPECT_EQ(1, from[1]);
	ASSERT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_WAKEUP, true, WAIT_MS));
	sleep_ms(100);
	for (i = 0; i < 3; i++) {
		uint8_t d[4];

		fill(d, BAR2, 0x10 * i, 4);
		emu_ring_cqe(&c, q[i].hdr.id, 0, d, 4);
		if (i < 2)
			ASSERT_EQ(0, emu_ring_post(&self->ring, &c));
	}
	EXPECT_EQ(-ENOSPC, emu_ring_post(&self->ring, &c));
	ASSERT_EQ(0, emu_ring_enter(&self->ring));
	ASSERT_EQ(0, emu_ring_post(&self->ring, &c));
	EXPECT_EQ(1, emu_ring_kick(&self->ring));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(4, async_join(&a[i]));
		EXPECT_TRUE(filled(a[i].buf, BAR2, 0x10 * i, 4));
	}
}

/* --------------------------------------------- too large for the ring */

/*
 * A 64-byte read waits for read() (MUSER_RING_F_READ); a 4-byte read
 * behind it does not overtake it through the SQ.
 */
TEST_F(ring, large_waits_for_read)
{
	struct async_access big, small;
	struct emu_req q[4];
	uint8_t data[64];
	int from[4], n;

	test_ring(self, 8);
	ASSERT_EQ(0, async_start(&big, &self->rig.c, BAR2, 0x40, 64, false));
	ASSERT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_READ, true, WAIT_MS));
	EXPECT_EQ(0, emu_ring_pending(&self->ring));
	ASSERT_EQ(0, async_start(&small, &self->rig.c, BAR2, 0x200, 4, false));
	sleep_ms(200);
	/* Not in the SQ: it would be seen before the older large one. */
	EXPECT_EQ(0, __atomic_load_n(&self->ring.hdr->sq_tail, __ATOMIC_ACQUIRE));

	n = read_wait(self->rig.ctl, q, 4, WAIT_MS);
	ASSERT_LE(1, n);
	ASSERT_REQ(&q[0], MUSER_REQ_READ, BAR2, 0x40, 64);
	if (n == 1) {
		ASSERT_EQ(1, collect(&self->ring, self->rig.ctl, &q[1], &from[1], 1, WAIT_MS));
	} else {
		ASSERT_EQ(2, n);
		from[1] = 0;
	}
	TH_LOG("the small read came %s", from[1] ? "in the SQ" : "by read()");
	ASSERT_REQ(&q[1], MUSER_REQ_READ, BAR2, 0x200, 4);
	EXPECT_LT(q[0].hdr.id, q[1].hdr.id);
	/* Either queue's request may be answered in the CQ. */
	ASSERT_EQ(0, ring_answer_ok(&self->ring, &q[1]));
	ASSERT_EQ(4, async_join(&small));
	EXPECT_TRUE(filled(small.buf, BAR2, 0x200, 4));
	EXPECT_EQ(0, __atomic_load_n(&big.done, __ATOMIC_ACQUIRE));
	fill(data, BAR2, 0x40, 64);
	ASSERT_LT(0, emu_reply(self->rig.ctl, q[0].hdr.id, 0, data, 64));
	ASSERT_EQ(64, async_join(&big));
	EXPECT_TRUE(filled(big.buf, BAR2, 0x40, 64));
	EXPECT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_READ, false, WAIT_MS));

	/* 4 KiB: read() too; and an error answers a large read in the CQ. */
	ASSERT_EQ(0, async_start(&big, &self->rig.c, BAR2, 0x1000, 4096, false));
	ASSERT_EQ(1, read_wait(self->rig.ctl, q, 4, WAIT_MS));
	ASSERT_REQ(&q[0], MUSER_REQ_READ, BAR2, 0x1000, 4096);
	EXPECT_EQ(0, emu_ring_pending(&self->ring));
	ASSERT_LT(0, write_answer_ok(self->rig.ctl, &q[0]));
	ASSERT_EQ(4096, async_join(&big));
	EXPECT_TRUE(filled(big.buf, BAR2, 0x1000, 4096));

	ASSERT_EQ(0, async_start(&big, &self->rig.c, BAR2, 0x80, 64, false));
	ASSERT_EQ(1, read_wait(self->rig.ctl, q, 4, WAIT_MS));
	ASSERT_EQ(0, emu_ring_answer(&self->ring, q[0].hdr.id, ENXIO, NULL, 0));
	ASSERT_EQ(-ENXIO, async_join(&big));

	/* A 40-byte write: its data by read(), its answer in the CQ. */
	fill(big.buf, BAR2, 0x300, 40);
	ASSERT_EQ(0, async_start(&big, &self->rig.c, BAR2, 0x300, 40, true));
	ASSERT_EQ(1, read_wait(self->rig.ctl, q, 4, WAIT_MS));
	ASSERT_REQ(&q[0], MUSER_REQ_WRITE, BAR2, 0x300, 40);
	EXPECT_TRUE(filled(q[0].data, BAR2, 0x300, 40));
	ASSERT_EQ(0, ring_answer_ok(&self->ring, &q[0]));
	ASSERT_EQ(40, async_join(&big));
	EXPECT_EQ(0, emu_ring_pending(&self->ring));
}

/*
 * read() gives nothing while the SQ holds a request not taken, blocking
 * or not, even with a newer one waiting for it: it would overtake.
 */
TEST_F(ring, read_waits_for_the_sq)
{
	struct async_access small, big;
	struct emu_req q[2];
	int fl = fcntl(self->rig.ctl, F_GETFL);
	uint8_t data[64];

	ASSERT_LE(0, fl);
	test_ring(self, 8);
	ASSERT_EQ(0, async_start(&small, &self->rig.c, BAR2, 0x10, 4, false));
	ASSERT_TRUE(wait_pending(&self->ring, 1, WAIT_MS));
	ASSERT_EQ(0, async_start(&big, &self->rig.c, BAR2, 0x100, 64, false));
	ASSERT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_READ, true, WAIT_MS));
	EXPECT_EQ(-EAGAIN, emu_read(self->rig.ctl, q, 2));
	ASSERT_EQ(0, fcntl(self->rig.ctl, F_SETFL, fl & ~O_NONBLOCK));
	EXPECT_EQ(-EAGAIN, emu_read(self->rig.ctl, q, 2));
	ASSERT_EQ(0, fcntl(self->rig.ctl, F_SETFL, fl));
	ASSERT_EQ(1, emu_ring_pop(&self->ring, &q[0]));
	ASSERT_REQ(&q[0], MUSER_REQ_READ, BAR2, 0x10, 4);
	ASSERT_EQ(1, read_wait(self->rig.ctl, &q[1], 1, WAIT_MS));
	ASSERT_REQ(&q[1], MUSER_REQ_READ, BAR2, 0x100, 64);
	EXPECT_LT(q[0].hdr.id, q[1].hdr.id);
	fill(data, BAR2, 0x100, 64);
	ASSERT_LT(0, emu_reply(self->rig.ctl, q[1].hdr.id, 0, data, 64));
	ASSERT_EQ(0, ring_answer_ok(&self->ring, &q[0]));
	ASSERT_EQ(64, async_join(&big));
	ASSERT_EQ(4, async_join(&small));
	EXPECT_TRUE(filled(big.buf, BAR2, 0x100, 64));
	EXPECT_TRUE(filled(small.buf, BAR2, 0x10, 4));
}

/* A one-entry SQ: the first request in it, the next two for read(). */
TEST_F(ring, sq_full)
{
	struct async_access a[3];
	struct emu_req q[3];
	int i, n, from;

	test_ring(self, 1);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, async_start(&a[i], &self->rig.c, BAR2, 0x20 * i, 2, false));
		if (!i) {
			ASSERT_TRUE(wait_pending(&self->ring, 1, WAIT_MS));
		} else {
			ASSERT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_READ, true, WAIT_MS));
		}
		/* One at a time, so their order is known. */
		sleep_ms(50);
	}
	EXPECT_EQ(1, self->ring.hdr->sq_tail);
	ASSERT_EQ(1, emu_ring_pop(&self->ring, &q[0]));
	ASSERT_REQ(&q[0], MUSER_REQ_READ, BAR2, 0, 2);
	n = read_wait(self->rig.ctl, &q[1], 2, WAIT_MS);
	if (n == 1)
		n += collect(&self->ring, self->rig.ctl, &q[2], &from, 1, WAIT_MS);
	ASSERT_EQ(2, n);
	for (i = 0; i < 3; i++) {
		ASSERT_REQ(&q[i], MUSER_REQ_READ, BAR2, 0x20 * i, 2);
		if (i)
			EXPECT_LT(q[i - 1].hdr.id, q[i].hdr.id);
	}
	for (i = 2; i >= 0; i--) {
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q[i]));
		ASSERT_EQ(2, async_join(&a[i]));
	}
}

/* The notices of a VMM's close wait for read(), flagged. */
TEST_F(ring, notices_for_read)
{
	struct emu_req q[8];
	bool close_seen = false;
	int n, i;

	test_ring(self, 8);
	vfio_client_close(&self->rig.c);
	ASSERT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_READ, true, WAIT_MS));
	EXPECT_EQ(0, emu_ring_pending(&self->ring));
	n = read_wait(self->rig.ctl, q, 8, WAIT_MS);
	ASSERT_LT(0, n);
	for (i = 0; i < n; i++)
		close_seen |= q[i].hdr.type == MUSER_REQ_VMM_CLOSE;
	EXPECT_TRUE(close_seen);
	EXPECT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_READ, false, WAIT_MS));
}

/* ------------------------------------------------------ bad answers */

struct bad_cqe {
	const char *what;
	bool write;
	int64_t id_delta;	/* added to the request's id */
	bool id_zero;
	int32_t error;
	uint32_t len;
	bool settles;		/* the access fails with EIO */
	const char *log;	/* the line the kernel logs, or NULL */
};

#define HDR_LOG	"request ring: answer"
#define LEN_LOG	"bytes of data, expected"

static const struct bad_cqe bad_cqes[] = {
	{ "unknown id", false, 1000, false, 0, 4, false, NULL },
	{ "id 0", false, 0, true, 0, 4, false, NULL },
	{ "id - 1", false, -1, false, 0, 4, false, NULL },
	{ "error -1", false, 0, false, -1, 0, false, HDR_LOG },
	{ "error INT_MIN", false, 0, false, INT_MIN, 0, false, HDR_LOG },
	{ "error 512", false, 0, false, 512, 0, false, HDR_LOG },
	{ "error 4096", false, 0, false, 4096, 0, false, HDR_LOG },
	{ "len 33", false, 0, false, 0, 33, false, HDR_LOG },
	{ "len UINT_MAX", false, 0, false, 0, UINT_MAX, false, HDR_LOG },
	{ "error EIO with data", false, 0, false, EIO, 4, false, HDR_LOG },
	{ "write, error 1 with data", true, 0, false, 1, 4, false, HDR_LOG },
	{ "read, len 2 for 4", false, 0, false, 0, 2, true, LEN_LOG },
	{ "read, len 0 for 4", false, 0, false, 0, 0, true, LEN_LOG },
	{ "read, len 32 for 4", false, 0, false, 0, 32, true, LEN_LOG },
	{ "write, with data", true, 0, false, 0, 4, true, LEN_LOG },
};

/*
 * Each bad answer, taken by RING_ENTER (spin_us 0: nothing else takes
 * it): refused, logged, the access still waiting; or, for the request's
 * id with the wrong amount of data, the access fails with EIO at once.
 * Duplicates of a good answer change nothing. Only good answers count.
 */
TEST_F(ring, bad_answers)
{
	struct nl_figures f;
	int good = 0, settled = 0, len_log;
	size_t i;

	ASSERT_EQ(0, rig_set_spin_us(&self->rig, 0));
	test_ring(self, 8);
	self->log = kmsg_fresh("ring.bad_answers");
	ASSERT_LE(0, self->log);
	/* A second reader: kmsg_count() consumes what it reads. */
	len_log = kmsg_start("ring.bad_answers (lengths)");
	ASSERT_LE(0, len_log);
	for (i = 0; i < ARRAY_SIZE(bad_cqes); i++) {
		const struct bad_cqe *b = &bad_cqes[i];
		struct muser_ring_cqe c;
		struct async_access a;
		struct emu_req q;
		uint8_t d[MUSER_RING_DATA];

		test_ring_request(self, &a, BAR2, 0x40 + 4 * i, 4, b->write, &q);
		fill(d, BAR2, q.hdr.offset, sizeof(d));
		emu_ring_cqe(&c, b->id_zero ? 0 : q.hdr.id + b->id_delta,
			     b->error, d, b->len);
		ASSERT_EQ(0, emu_ring_post(&self->ring, &c));
		ASSERT_EQ(0, emu_ring_enter(&self->ring));
		EXPECT_EQ(0, emu_ring_wait_taken(&self->ring, 0)) TH_LOG("%s", b->what);
		if (b->settles) {
			settled++;
			EXPECT_EQ(-EIO, async_join(&a)) TH_LOG("%s", b->what);
			/* Settled once: the good answer comes too late. */
			ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
			ASSERT_EQ(0, emu_ring_enter(&self->ring));
			continue;
		}
		sleep_ms(20);
		EXPECT_EQ(0, __atomic_load_n(&a.done, __ATOMIC_ACQUIRE)) TH_LOG("%s", b->what);
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
		/* A duplicate in the same batch, and one later. */
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
		ASSERT_EQ(4, async_join(&a)) TH_LOG("%s", b->what);
		if (!b->write)
			EXPECT_TRUE(filled(a.buf, BAR2, q.hdr.offset, 4)) TH_LOG("%s", b->what);
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
		ASSERT_EQ(0, emu_ring_enter(&self->ring));
		good++;
	}
	EXPECT_EQ(0, emu_ring_wait_taken(&self->ring, WAIT_MS));
	test_figures(self, &f);
	/* Good answers only: those of the wrong length failed with EIO. */
	EXPECT_EQ(good, f.answers_ring);
	EXPECT_EQ(0, f.answers_syscall);
	EXPECT_EQ(settled, f.failed);
	EXPECT_EQ(EIO, f.last_error);
	/* Ratelimited: at least one line of each kind. */
	EXPECT_LE(1, kmsg_count(self->log, HDR_LOG));
	EXPECT_LE(1, kmsg_count(len_log, LEN_LOG));
	close(len_log);
}

/* ------------------------------------------------- broken indices */

/* sq_head beyond sq_tail: the ring breaks; read() serves from then on. */
TEST_F(ring, broken_sq_head)
{
	struct async_access a;
	struct muser_ring_cqe c;
	struct emu_req q;
	int i;

	test_ring(self, 8);
	test_ring_request(self, &a, BAR2, 0, 4, false, &q);
	ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
	ASSERT_EQ(4, async_join(&a));

	self->log = kmsg_fresh("ring.broken_sq_head");
	ASSERT_LE(0, self->log);
	__atomic_store_n(&self->ring.hdr->sq_head, self->ring.hdr->sq_tail + 1,
			 __ATOMIC_RELEASE);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0x10 * i, 4, false));
		ASSERT_EQ(1, read_wait(self->rig.ctl, &q, 1, WAIT_MS)) TH_LOG("request %d", i);
		ASSERT_REQ(&q, MUSER_REQ_READ, BAR2, 0x10 * i, 4);
		EXPECT_TRUE(emu_ring_kflags(&self->ring) & MUSER_RING_F_BROKEN);
		EXPECT_EQ(1, self->ring.hdr->sq_tail);
		if (i == 1) {
			/* A broken ring's CQ is not read either. */
			emu_ring_cqe(&c, q.hdr.id, 0, "abcd", 4);
			ASSERT_EQ(0, emu_ring_post(&self->ring, &c));
			ASSERT_EQ(0, emu_ring_enter(&self->ring));
			sleep_ms(50);
			EXPECT_EQ(0, __atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
		}
		ASSERT_LT(0, write_answer_ok(self->rig.ctl, &q));
		ASSERT_EQ(4, async_join(&a));
		EXPECT_TRUE(filled(a.buf, BAR2, 0x10 * i, 4));
	}
	EXPECT_LE(1, kmsg_count(self->log, "request ring: sq_head"));
	/* Everything answered: the broken sq_head does not make POLLIN. */
	EXPECT_EQ(0, poll_in(self->rig.ctl, 0));
}

/* cq_tail more than the queue ahead of cq_head: broken likewise. */
TEST_F(ring, broken_cq_tail)
{
	struct async_access a;
	struct emu_req q;

	ASSERT_EQ(0, rig_set_spin_us(&self->rig, 0));
	test_ring(self, 8);
	self->log = kmsg_fresh("ring.broken_cq_tail");
	ASSERT_LE(0, self->log);
	test_ring_request(self, &a, BAR2, 0x8, 4, false, &q);
	__atomic_store_n(&self->ring.hdr->cq_tail, self->ring.hdr->cq_head + 9,
			 __ATOMIC_RELEASE);
	EXPECT_EQ(0, emu_ring_enter(&self->ring));
	EXPECT_TRUE(emu_ring_kflags(&self->ring) & MUSER_RING_F_BROKEN);
	EXPECT_EQ(0, self->ring.hdr->cq_head);
	sleep_ms(50);
	/* Nothing was taken: the access waits for write(). */
	EXPECT_EQ(0, __atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	ASSERT_LT(0, write_answer_ok(self->rig.ctl, &q));
	ASSERT_EQ(4, async_join(&a));
	EXPECT_LE(1, kmsg_count(self->log, "request ring: cq_tail"));

	ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0x20, 4, false));
	ASSERT_EQ(1, read_wait(self->rig.ctl, &q, 1, WAIT_MS));
	ASSERT_REQ(&q, MUSER_REQ_READ, BAR2, 0x20, 4);
	EXPECT_EQ(1, self->ring.hdr->sq_tail);
	ASSERT_LT(0, write_answer_ok(self->rig.ctl, &q));
	ASSERT_EQ(4, async_join(&a));
}

/*
 * The kernel's own indices and flags scribbled over: it keeps its copies,
 * writes them back, and serves on.
 */
TEST_F(ring, kernel_fields_scribbled)
{
	struct async_access a;
	struct emu_req q;
	int i;

	ASSERT_EQ(0, rig_set_spin_us(&self->rig, 0));
	test_ring(self, 8);
	for (i = 0; i < 3; i++) {
		self->ring.hdr->sq_tail = 0x12345 * (i + 1);
		self->ring.hdr->cq_head = 77 * (i + 1);
		self->ring.hdr->kflags = ~0u;
		memset(self->ring.hdr->kpad, 0xa5, sizeof(self->ring.hdr->kpad));
		memset(self->ring.sq, 0x5a, self->ring.entries * sizeof(*self->ring.sq));
		ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0x30 + i, 1, false));
		/* The kernel's sq_tail comes back with the request. */
		ASSERT_TRUE(wait_flag((volatile int *)&self->ring.hdr->sq_tail, WAIT_MS));
		while (__atomic_load_n(&self->ring.hdr->sq_tail, __ATOMIC_ACQUIRE) ==
		       0x12345u * (i + 1))
			sleep_ms(1);
		EXPECT_EQ(i + 1, self->ring.hdr->sq_tail);
		ASSERT_EQ(1, emu_ring_pop(&self->ring, &q));
		ASSERT_REQ(&q, MUSER_REQ_READ, BAR2, 0x30 + i, 1);
		/* Ours to restore: the kernel writes them only on change. */
		self->ring.hdr->cq_head = i;
		self->ring.hdr->kflags = MUSER_RING_F_WAKEUP;
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
		ASSERT_EQ(1, async_join(&a));
		EXPECT_TRUE(filled(a.buf, BAR2, 0x30 + i, 1));
		EXPECT_EQ(i + 1, self->ring.hdr->cq_head);
	}
}

/* ------------------------------------------------ replay, takeover */


/*
 * Three reads in the SQ, one taken: the emulator unmaps its ring and
 * closes without answering. The next emulator, reading or with a ring
 * (@ring), gets all three, in order, flagged REPLAYED.
 */
static void replay_case(struct __test_metadata *_metadata,
			FIXTURE_DATA(ring) *self, bool ring)
{
	struct async_access a[3];
	struct emu_req q[3], first;
	uint64_t ids[3];
	int from[3], i, ctl;

	test_ring(self, 8);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, async_start(&a[i], &self->rig.c, BAR2, 0x100 + 4 * i, 4, false));
		ASSERT_TRUE(wait_pending(&self->ring, i + 1, WAIT_MS));
	}
	ASSERT_EQ(1, emu_ring_pop(&self->ring, &first));
	for (i = 0; i < 3; i++)
		ids[i] = self->ring.sq[i].req.id;
	EXPECT_EQ(first.hdr.id, ids[0]);

	ctl = ctl_open(self->rig.uuid, O_NONBLOCK);
	ASSERT_LE(0, ctl);
	replace_rig_ctl(self, ctl);
	ASSERT_EQ(0, ctl_attach(ctl, &self->layout));
	if (ring)
		test_ring(self, 8);
	ASSERT_EQ(3, collect(ring ? &self->ring : NULL, ctl, q, from, 3, WAIT_MS));
	for (i = 0; i < 3; i++) {
		ASSERT_REQ(&q[i], MUSER_REQ_READ, BAR2, 0x100 + 4 * i, 4);
		EXPECT_EQ(ids[i], q[i].hdr.id);
		EXPECT_TRUE(q[i].hdr.flags & MUSER_REQ_F_REPLAYED);
		/* A ring set up after the attach gets what waits. */
		EXPECT_EQ(ring, from[i]);
		EXPECT_EQ(0, __atomic_load_n(&a[i].done, __ATOMIC_ACQUIRE));
	}
	for (i = 0; i < 3; i++) {
		if (ring) {
			ASSERT_EQ(0, ring_answer_ok(&self->ring, &q[i]));
		} else {
			ASSERT_LT(0, write_answer_ok(ctl, &q[i]));
		}
		ASSERT_EQ(4, async_join(&a[i]));
		EXPECT_TRUE(filled(a[i].buf, BAR2, 0x100 + 4 * i, 4));
	}
}

TEST_F(ring, replay_to_read)
{
	replay_case(_metadata, self, false);
}

TEST_F(ring, replay_to_ring)
{
	replay_case(_metadata, self, true);
}

/* DETACH with the ring mapped: the same file, attached again, reads them. */
TEST_F(ring, replay_after_detach)
{
	struct async_access a;
	struct emu_req q;
	uint64_t id;

	struct emu_ring old;
	int ctl;

	test_ring(self, 8);
	test_ring_request(self, &a, BAR2, 0x44, 4, false, &q);
	id = q.hdr.id;
	ASSERT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH));
	ctl = ctl_open(self->rig.uuid, O_NONBLOCK);
	ASSERT_LE(0, ctl);
	ASSERT_EQ(0, ctl_attach(ctl, &self->layout));
	ASSERT_EQ(1, read_wait(ctl, &q, 1, WAIT_MS));
	EXPECT_EQ(id, q.hdr.id);
	EXPECT_TRUE(q.hdr.flags & MUSER_REQ_F_REPLAYED);
	/* Replayed, it is the new emulator's: the old ring's answer is not taken. */
	old = self->ring;
	ASSERT_EQ(0, ring_answer_ok(&old, &q));
	ASSERT_EQ(0, emu_ring_enter(&old));
	sleep_ms(50);
	EXPECT_EQ(0, __atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	ASSERT_LT(0, write_answer_ok(ctl, &q));
	ASSERT_EQ(4, async_join(&a));
	EXPECT_TRUE(filled(a.buf, BAR2, 0x44, 4));
	replace_rig_ctl(self, ctl);
}

/* Posted writes in the SQ, unanswered: replayed with their data. */
TEST_F(ring, replay_posted)
{
	struct emu_req q[3];
	struct nl_figures f;
	uint32_t v;
	int from[3], i, ctl;

	test_ring(self, 8);
	for (i = 0; i < 3; i++) {
		v = 0xc0de0000 + i;
		ASSERT_EQ(4, region_write(&self->rig.c, BAR0, 8 * i, &v, 4));
	}
	ASSERT_EQ(3, emu_ring_pending(&self->ring));
	ctl = ctl_open(self->rig.uuid, O_NONBLOCK);
	ASSERT_LE(0, ctl);
	replace_rig_ctl(self, ctl);
	ASSERT_EQ(0, ctl_attach(ctl, &self->layout));
	test_ring(self, 4);
	ASSERT_EQ(3, collect(&self->ring, ctl, q, from, 3, WAIT_MS));
	for (i = 0; i < 3; i++) {
		ASSERT_REQ(&q[i], MUSER_REQ_WRITE, BAR0, 8 * i, 4);
		EXPECT_EQ(MUSER_REQ_F_POSTED | MUSER_REQ_F_REPLAYED, q[i].hdr.flags);
		memcpy(&v, q[i].data, 4);
		EXPECT_EQ(0xc0de0000 + i, v);
		EXPECT_EQ(1, from[i]);
		ASSERT_EQ(0, emu_ring_answer(&self->ring, q[i].hdr.id, 0, NULL, 0));
	}
	/* Nobody waits for posted writes: entering takes their answers. */
	ASSERT_EQ(0, emu_ring_enter(&self->ring));
	EXPECT_EQ(0, emu_ring_wait_taken(&self->ring, 0));
	test_figures(self, &f);
	EXPECT_EQ(3, f.posted);
	EXPECT_EQ(0, f.failed);
	EXPECT_EQ(3, f.answers_ring);
}

/*
 * A takeover while the old emulator holds a request from its ring: the
 * takeover waits (WAKEUP on the old ring), new requests go to the new
 * emulator's ring, the old ring cannot answer them, and the old one's
 * answer from its ring ends the takeover.
 */
TEST_F(ring, takeover)
{
	struct emu_takeover t = { .info = &self->layout };
	struct async_access a1, a2;
	struct emu_ring old = { 0 };
	struct muser_ring_cqe c;
	struct emu_req q1, q2;
	int64_t end;

	test_ring(self, 8);
	test_ring_request(self, &a1, BAR2, 0x10, 4, false, &q1);
	t.ctl = ctl_open(self->rig.uuid, O_NONBLOCK);
	ASSERT_LE(0, t.ctl);
	ASSERT_EQ(0, pthread_create(&t.thread, NULL, emu_takeover_fn, &t));
	end = now_ms() + WAIT_MS;
	while (!(poll_in(self->rig.ctl, 0) & POLLERR) && now_ms() < end)
		sleep_ms(1);
	ASSERT_TRUE(poll_in(self->rig.ctl, 0) & POLLERR);
	EXPECT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_WAKEUP, true, WAIT_MS));
	EXPECT_TRUE(emu_ring_kflags(&self->ring) & MUSER_RING_F_RETIRED);
	/* The old file has its ring: it sets up no other. */
	EXPECT_EQ(-ENOTCONN, setup_entries(self->rig.ctl, sizeof(struct muser_ring_setup), 0, 8, 0));

	old = self->ring;
	ASSERT_EQ(0, emu_ring_open(&self->ring, t.ctl, 8));
	ASSERT_EQ(0, async_start(&a2, &self->rig.c, BAR2, 0x20, 4, false));
	ASSERT_EQ(1, emu_ring_pop_wait(&self->ring, &q2, WAIT_MS));
	ASSERT_REQ(&q2, MUSER_REQ_READ, BAR2, 0x20, 4);
	EXPECT_EQ(1, old.hdr->sq_tail);
	/* The old ring answering the new one's request: not taken. */
	emu_ring_cqe(&c, q2.hdr.id, 0, "wxyz", 4);
	ASSERT_EQ(0, emu_ring_post(&old, &c));
	ASSERT_EQ(0, emu_ring_enter(&old));
	sleep_ms(50);
	EXPECT_EQ(0, __atomic_load_n(&a2.done, __ATOMIC_ACQUIRE));
	EXPECT_EQ(0, __atomic_load_n(&t.done, __ATOMIC_ACQUIRE));

	ASSERT_EQ(0, ring_answer_ok(&old, &q1));
	ASSERT_EQ(4, async_join(&a1));
	EXPECT_TRUE(filled(a1.buf, BAR2, 0x10, 4));
	ASSERT_EQ(0, pthread_join(t.thread, NULL));
	ASSERT_EQ(0, t.ret);
	ASSERT_EQ(0, ring_answer_ok(&self->ring, &q2));
	ASSERT_EQ(4, async_join(&a2));
	EXPECT_TRUE(filled(a2.buf, BAR2, 0x20, 4));
	emu_ring_close(&old);
	close(self->rig.ctl);
	self->rig.ctl = t.ctl;
}

struct closer {
	pthread_t thread;
	struct vfio_client *c;
	volatile int done;
};

static void *close_fn(void *arg)
{
	struct closer *cl = arg;

	vfio_client_close(cl->c);
	__atomic_store_n(&cl->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The VMM's last close waits for posted writes answered in the CQ: it
 * sets WAKEUP, and RING_ENTER ends it.
 */
TEST_F(ring, posted_close_waits)
{
	struct closer cl = { .c = &self->rig.c };
	struct nl_figures f;
	struct emu_req q[3];
	uint32_t v;
	int i;

	test_ring(self, 8);
	for (i = 0; i < 3; i++) {
		v = 0x900d0000 + i;
		ASSERT_EQ(4, region_write(&self->rig.c, BAR0, 4 * i, &v, 4));
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, emu_ring_pop_wait(&self->ring, &q[i], WAIT_MS));
		ASSERT_REQ(&q[i], MUSER_REQ_WRITE, BAR0, 4 * i, 4);
		EXPECT_EQ(MUSER_REQ_F_POSTED, q[i].hdr.flags);
	}
	ASSERT_EQ(0, pthread_create(&cl.thread, NULL, close_fn, &cl));
	ASSERT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_WAKEUP, true, WAIT_MS));
	sleep_ms(100);
	EXPECT_EQ(0, __atomic_load_n(&cl.done, __ATOMIC_ACQUIRE));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, emu_ring_answer(&self->ring, q[i].hdr.id, 0, NULL, 0));
	ASSERT_EQ(0, pthread_join(cl.thread, NULL));
	test_figures(self, &f);
	EXPECT_EQ(3, f.posted);
	EXPECT_EQ(0, f.failed);
	EXPECT_EQ(3, f.answers_ring);
}

/* --------------------------------------------------------- killed */

/*
 * A VMM killed while its request is in the ring, taken or not: the late
 * answer is ignored, the failure counted, and the ring serves on.
 */
TEST_F(ring, vmm_killed)
{
	struct async_access a;
	struct nl_figures f;
	struct emu_req q;
	int k, status;
	pid_t pid;

	test_ring(self, 8);
	for (k = 0; k < 2; k++) {
		uint32_t before = self->ring.hdr->sq_tail;
		uint8_t b[4];

		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(region_read(&self->rig.c, BAR2, 0x60, b, 4) == 4 ? 0 : 1);
		while (__atomic_load_n(&self->ring.hdr->sq_tail, __ATOMIC_ACQUIRE) == before)
			sleep_ms(1);
		if (!k)
			ASSERT_EQ(1, emu_ring_pop(&self->ring, &q));
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status));
		if (k)
			ASSERT_EQ(1, emu_ring_pop(&self->ring, &q));
		ASSERT_REQ(&q, MUSER_REQ_READ, BAR2, 0x60, 4);
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
		ASSERT_EQ(0, emu_ring_enter(&self->ring));
		EXPECT_EQ(0, emu_ring_wait_taken(&self->ring, WAIT_MS));

		test_ring_request(self, &a, BAR2, 0x64, 4, false, &q);
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
		ASSERT_EQ(4, async_join(&a));
	}
	test_figures(self, &f);
	EXPECT_EQ(2, f.failed);
	EXPECT_EQ(EINTR, f.last_error);
	EXPECT_EQ(2, f.answers_ring);
}

/*
 * An emulator process with a ring, SIGKILLed with requests in its SQ (one
 * taken): the next emulator gets them all, replayed, in order.
 */
TEST_F(ring, emulator_killed)
{
	struct async_access a[3];
	struct emu_req q[3];
	int from[3], pipefd[2], i, status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct emu_ring r;
		int ctl = ctl_open(self->rig.uuid, O_NONBLOCK);

		if (ctl < 0 || ctl_attach(ctl, &self->layout) ||
		    emu_ring_open(&r, ctl, 8) || write(pipefd[1], "r", 1) != 1)
			_exit(1);
		if (!wait_pending(&r, 3, 10 * WAIT_MS))
			_exit(1);
		if (emu_ring_pop(&r, &q[0]) != 1 || write(pipefd[1], "p", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	ASSERT_EQ('r', c);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, async_start(&a[i], &self->rig.c, BAR2, 0x200 + 8 * i, 8, false));
		sleep_ms(50);	/* in order */
	}
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	ASSERT_EQ('p', c);
	close(pipefd[0]);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));

	/* The rig's own file, detached, has no ring: it sets one up now. */
	{
		int ret = -EBUSY;

		for (i = 0; i < 100 && ret == -EBUSY; i++) {
			ret = ctl_attach(self->rig.ctl, &self->layout);
			if (ret == -EBUSY)
				sleep_ms(10);
		}
		ASSERT_EQ(0, ret);
	}
	test_ring(self, 8);
	ASSERT_EQ(3, collect(&self->ring, self->rig.ctl, q, from, 3, WAIT_MS));
	for (i = 0; i < 3; i++) {
		ASSERT_REQ(&q[i], MUSER_REQ_READ, BAR2, 0x200 + 8 * i, 8);
		EXPECT_TRUE(q[i].hdr.flags & MUSER_REQ_F_REPLAYED);
		if (i)
			EXPECT_LT(q[i - 1].hdr.id, q[i].hdr.id);
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, ring_answer_ok(&self->ring, &q[i]));
		ASSERT_EQ(8, async_join(&a[i]));
		EXPECT_TRUE(filled(a[i].buf, BAR2, 0x200 + 8 * i, 8));
	}
}

/*
 * Files that were the emulator keep their rings until closed: 200 of
 * them, detached and open, and round trips work as before (the kernel
 * looks only at rings that may hold answers; the costs are printed).
 */
TEST_F_TIMEOUT(ring, many_retired_rings, 300)
{
	int fds[200], i, k;
	int64_t t[2];

	test_ring(self, 8);
	for (k = 0; k < 2; k++) {
		t[k] = now_ms();
		for (i = 0; i < 100; i++) {
			struct async_access a;
			struct emu_req q;

			test_ring_request(self, &a, BAR2, 8 * i, 4, false, &q);
			ASSERT_EQ(0, ring_answer_ok(&self->ring, &q));
			ASSERT_EQ(4, async_join(&a));
		}
		t[k] = now_ms() - t[k];
		if (k)
			break;
		ASSERT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH));
		for (i = 0; i < 200; i++) {
			fds[i] = ctl_open(self->rig.uuid, O_NONBLOCK);
			ASSERT_LE(0, fds[i]);
			ASSERT_EQ(0, ctl_attach(fds[i], &self->layout));
			ASSERT_EQ(0, setup_entries(fds[i], sizeof(struct muser_ring_setup),
						   0, MUSER_RING_MAX_ENTRIES, 0));
			ASSERT_EQ(0, ioctl(fds[i], MUSER_IOC_DETACH));
		}
		/* The rig's file keeps its retired ring: serve with a new one. */
		i = ctl_open(self->rig.uuid, O_NONBLOCK);
		ASSERT_LE(0, i);
		replace_rig_ctl(self, i);
		ASSERT_EQ(0, ctl_attach(self->rig.ctl, &self->layout));
		test_ring(self, 8);
	}
	TH_LOG("100 round trips: %lld ms with one ring, %lld ms with 200 retired ones",
	       (long long)t[0], (long long)t[1]);
	for (i = 0; i < 200; i++)
		close(fds[i]);
}

/* The device removed: the ring says so, read() and setup say ENODEV. */
TEST_F(ring, retired_on_removal)
{
	struct emu_req q[8];

	test_ring(self, 8);
	vfio_client_close(&self->rig.c);
	ASSERT_EQ(0, mdev_remove(self->rig.uuid));
	self->rig.created = false;
	EXPECT_TRUE(wait_kflag(&self->ring, MUSER_RING_F_RETIRED, true, WAIT_MS));
	EXPECT_EQ(-ENODEV, setup_entries(self->rig.ctl, sizeof(struct muser_ring_setup), 0, 8, 0));
	/* Notices of the close may come first. */
	while (emu_read(self->rig.ctl, q, 8) > 0)
		;
	EXPECT_EQ(-ENODEV, emu_read(self->rig.ctl, q, 8));
	EXPECT_EQ(0, emu_ring_enter(&self->ring));
}

/* ------------------------------------------------------ concurrency */

#define THREADS		8
#define PER_THREAD	300

struct vmm_thread {
	pthread_t thread;
	struct vfio_client *c;
	int id, reads, writes, bad;
};

/* Reads of 1..64 bytes (64 goes through read()), every 8th a write. */
static void *vmm_fn(void *arg)
{
	static const uint32_t lens[] = { 1, 2, 4, 8, 32, 64 };
	struct vmm_thread *v = arg;
	uint8_t buf[64];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		uint32_t len = lens[(i + v->id) % 6];
		uint64_t off = (uint64_t)v->id * 0x1000 + (i % 60) * 64;

		if (i % 8 == 7) {
			fill(buf, BAR2, off, 4);
			if (region_write(v->c, BAR2, off, buf, 4) != 4)
				v->bad++;
			v->writes++;
			continue;
		}
		memset(buf, 0, sizeof(buf));
		if (region_read(v->c, BAR2, off, buf, len) != (ssize_t)len ||
		    !filled(buf, BAR2, off, len))
			v->bad++;
		v->reads++;
	}
	return NULL;
}

static void threads_case(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ring) *self, unsigned int flags)
{
	struct vmm_thread v[THREADS];
	struct emu_thread e;
	struct nl_figures f;
	int i, reads = 0, writes = 0;

	ASSERT_EQ(0, emu_thread_start_ring(&e, self->rig.ctl, flags, 0));
	for (i = 0; i < THREADS; i++) {
		v[i] = (struct vmm_thread){ .c = &self->rig.c, .id = i };
		ASSERT_EQ(0, pthread_create(&v[i].thread, NULL, vmm_fn, &v[i]));
	}
	for (i = 0; i < THREADS; i++) {
		ASSERT_EQ(0, pthread_join(v[i].thread, NULL));
		EXPECT_EQ(0, v[i].bad) TH_LOG("thread %d", i);
		reads += v[i].reads;
		writes += v[i].writes;
	}
	emu_thread_stop(&e);
	EXPECT_EQ(0, e.errors);
	EXPECT_EQ(reads, e.nr_read);
	EXPECT_EQ(writes, e.nr_write);
	TH_LOG("%d requests: %ld in the SQ, %ld answers in the CQ, %lu RING_ENTERs",
	       reads + writes, e.nr_ring, e.nr_cqe, e.ring.entered);
	EXPECT_LT(0, e.nr_ring);
	EXPECT_LT(0, e.nr_cqe);
	test_figures(self, &f);
	EXPECT_EQ(reads + writes, f.requests);
	EXPECT_EQ(0, f.failed);
	EXPECT_EQ(e.nr_cqe, f.answers_ring);
	EXPECT_EQ(reads + writes - e.nr_cqe, f.answers_syscall);
}

TEST_F_TIMEOUT(ring, threads_poll, 300)
{
	threads_case(_metadata, self, 0);
}

TEST_F_TIMEOUT(ring, threads_spin, 300)
{
	threads_case(_metadata, self, EMU_THREAD_SPIN);
}

TEST_F_TIMEOUT(ring, threads_sleeping_vmm, 300)
{
	ASSERT_EQ(0, rig_set_spin_us(&self->rig, 0));
	threads_case(_metadata, self, 0);
}

/* ----------------------------------------------------------- fuzzer */

#define FZ_TIMEOUT_MS	400

/*
 * Whether the kernel settles the request @q with @c, and how: the VMM's
 * result in *@ret, a successful read's data in @data.
 */
static bool fz_settles(const struct muser_ring_cqe *c, const struct emu_req *q,
		       ssize_t *ret, uint8_t *data)
{
	uint32_t want;

	if (c->reply.id != q->hdr.id || c->reply.error < 0 ||
	    c->reply.error >= 512 || c->reply.len > MUSER_RING_DATA ||
	    (c->reply.error && c->reply.len))
		return false;
	want = !c->reply.error && q->hdr.type == MUSER_REQ_READ ? q->hdr.len : 0;
	if (c->reply.error)
		*ret = -c->reply.error;
	else
		*ret = c->reply.len == want ? (ssize_t)q->hdr.len : -EIO;
	memcpy(data, c->data, c->reply.len == want ? want : 0);
	return true;
}

/* One hostile answer to @q (or to an older id, @stale). */
static void fz_cqe(uint64_t *s, struct muser_ring_cqe *c,
		   const struct emu_req *q, uint64_t stale)
{
	uint32_t i;

	memset(c, 0, sizeof(*c));
	switch (below(s, 4)) {
	case 0:
		c->reply.id = q->hdr.id;
		break;
	case 1:
		c->reply.id = stale;
		break;
	default:
		c->reply.id = edge64(s, q->hdr.id);
	}
	c->reply.error = chance(s, 50) ? 0 : (int32_t)edge32(s, below(s, 2) ? 512 : 0);
	c->reply.len = chance(s, 50) ? q->hdr.len : edge32(s, q->hdr.len);
	for (i = 0; i < sizeof(c->data); i++)
		c->data[i] = (uint8_t)rnd(s);
	if (chance(s, 10))
		memset(c->pad, 0xff, sizeof(c->pad));
}

/*
 * Seeded: VMM accesses of every size, each answered by up to 4 hostile
 * CQ entries (taken by RING_ENTER) and then, or not, a good one. The VMM
 * gets exactly what the first entry that settles it says, or ETIMEDOUT
 * without one, and never waits past timeout_ms.
 */
TEST_F_TIMEOUT(ring, fuzz, 600)
{
	static const uint32_t lens[] = { 1, 2, 4, 8, 16, 32, 64, 40 };
	struct fuzz_budget b;
	unsigned long rounds = 0, timeouts = 0, eio = 0, errors = 0, ok = 0;
	uint64_t s, stale = 0;
	struct nl_figures f;
	int64_t t0 = now_ms();

	ASSERT_EQ(0, rig_set_timeout(&self->rig, FZ_TIMEOUT_MS));
	ASSERT_EQ(0, rig_set_spin_us(&self->rig, 0));
	test_ring(self, 8);
	fuzz_budget_init(&b, "ring answers", 20);
	s = b.seed;
	while (fuzz_done(&b, rounds, now_ms() - b.t0) < 1) {
		uint32_t len = lens[below(&s, ARRAY_SIZE(lens))];
		bool write = chance(&s, 30);
		uint64_t off = below(&s, 0x10000 / 64) * 64;
		uint8_t d[MUSER_RING_DATA], want_data[64];
		struct async_access a;
		struct muser_ring_cqe c;
		struct emu_req q;
		ssize_t want = -ETIMEDOUT, got;
		bool settled = false;
		int from, n, k;

		if (write)
			fill(a.buf, BAR2, off, len);
		ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, off, len, write));
		ASSERT_EQ(1, collect(&self->ring, self->rig.ctl, &q, &from, 1, WAIT_MS))
			TH_LOG("round %lu", rounds);
		ASSERT_EQ(len, q.hdr.len);
		ASSERT_EQ(len <= MUSER_RING_DATA, from) TH_LOG("round %lu", rounds);
		n = below(&s, 5);
		for (k = 0; k <= n; k++) {
			if (k < n) {
				fz_cqe(&s, &c, &q, stale);
			} else if (chance(&s, 25)) {
				break;		/* nothing: it times out */
			} else if (chance(&s, 33)) {
				emu_ring_cqe(&c, q.hdr.id, 1 + below(&s, 511), NULL, 0);
			} else if (len > MUSER_RING_DATA) {
				/* A good answer that does not fit: write(). */
				ASSERT_EQ(0, emu_ring_enter(&self->ring));
				if (!settled) {
					settled = true;
					want = len;
					fill(want_data, BAR2, off, len);
				}
				got = write_answer_ok(self->rig.ctl, &q);
				ASSERT_TRUE(got > 0 || got == -ENOENT) TH_LOG("round %lu", rounds);
				break;
			} else {
				fill(d, BAR2, off, len);
				emu_ring_cqe(&c, q.hdr.id, 0, d, write ? 0 : len);
			}
			if (!settled)
				settled = fz_settles(&c, &q, &want, want_data);
			if (emu_ring_post(&self->ring, &c)) {
				ASSERT_EQ(0, emu_ring_enter(&self->ring));
				ASSERT_EQ(0, emu_ring_post(&self->ring, &c));
			}
		}
		ASSERT_EQ(0, emu_ring_enter(&self->ring));
		got = async_join(&a);
		/* Too slow an answer times out: the only other outcome. */
		if (got != want) {
			ASSERT_EQ(-ETIMEDOUT, got) TH_LOG("round %lu: want %zd", rounds, want);
			ASSERT_LE(FZ_TIMEOUT_MS - 50, a.elapsed_ms) TH_LOG("round %lu", rounds);
		}
		ASSERT_GT(FZ_TIMEOUT_MS + 3000, a.elapsed_ms) TH_LOG("round %lu", rounds);
		if (got == (ssize_t)len && !write)
			ASSERT_EQ(0, memcmp(a.buf, want_data, len)) TH_LOG("round %lu", rounds);
		timeouts += got == -ETIMEDOUT;
		eio += got == -EIO;
		ok += got == (ssize_t)len;
		errors += got < 0 && got != -ETIMEDOUT && got != -EIO;
		stale = q.hdr.id;
		rounds++;
	}
	ASSERT_EQ(0, emu_ring_enter(&self->ring));
	TH_LOG("%lu rounds in %lld ms: %lu answered, %lu EIO, %lu other errors, %lu timed out",
	       rounds, (long long)(now_ms() - t0), ok, eio, errors, timeouts);
	test_figures(self, &f);
	EXPECT_EQ(rounds, f.requests);
	EXPECT_EQ(rounds - ok, f.failed);
	/* The ring survived it all. */
	EXPECT_EQ(0, emu_ring_kflags(&self->ring) & MUSER_RING_F_BROKEN);
}

TEST_HARNESS_MAIN
