// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile emulator: everything the process holding the control node
 * /dev/muser/UUID can do to muser.ko, while a VMM (a vfio_client, its
 * accesses on other threads) uses the device. Whatever the emulator does,
 * a VMM access ends with the emulator's data, the errno it sent, EIO for a
 * malformed answer, or ETIMEDOUT, within timeout_ms (set low here); the
 * kernel logs nothing bad and nothing stays pinned.
 *
 * Covered:
 *  - replies: wrong ids, lengths and errors; batches with a bad reply in
 *    the middle; partial, faulting, empty and huge write buffers; replies
 *    by files that are not (or no longer) the emulator; replies after the
 *    VMM gave up (ENOENT);
 *  - read(): small and faulting buffers (nothing is lost), O_NONBLOCK,
 *    files that are not attached, blocked readers, poll();
 *  - layouts with every field at the edge, for ATTACH and TAKEOVER (the
 *    cases attach_cases.h users do not have), and a layout in use;
 *  - every muser ioctl (and unknown ones) with bad pointers, argsz below,
 *    at and above, from attached and other files; DMA ranges at the edges,
 *    huge ranges failing fast, copies to and from every kind of memory,
 *    the hold limit (EOVERFLOW);
 *  - mmap/munmap/mremap/madvise/mprotect, fork() and faults at every part
 *    of the control node (device memory, the state area, the DMA window,
 *    past each, offsets >= 2^63); the last close waiting for mappings;
 *  - the VMM remapping guest memory the emulator keeps pinning: DMA calls
 *    do not wait for unmaps that are over (dma_remap_fences);
 *  - races: emulator processes attaching, taking over, detaching and
 *    being SIGKILLed at random moments while VMM threads read, write,
 *    change interrupts and remap guest memory (emulators_come_and_go);
 *    DMA_MAP/RELEASE/RW and faults through the window from four threads
 *    while the VMM unmaps and maps its memory (dma_storm);
 *  - he_fuzz: a seeded fuzzer of all of the above against a model of what
 *    muser.ko must answer (see "the fuzzer" below): he_fuzz.replies,
 *    .ioctls and .mmaps run a part of it for a few thousand operations,
 *    he_fuzz.fuzz all of it, with child emulators, for MUSER_FUZZ_SECONDS
 *    (default 45) or MUSER_FUZZ_CALLS hostile calls, seeded by
 *    MUSER_FUZZ_SEED; MUSER_FUZZ_TRACE=1 prints each operation,
 *    MUSER_FUZZ_PARANOID=1 checks pins after each. Run one test with
 *    -r FIXTURE.TEST (harness.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "harness.h"
#include "fixture.h"
#include "attach_cases.h"

#define PG		4096ul
#define CHUNK		(1ul << MUSER_DMA_CHUNK_SHIFT)
#define GUEST_IOVA	(1ul << 30)	/* the test's "RAM", beside iova 0 */
#define GUEST_SIZE	(2 * CHUNK)
#define BAR0		VFIO_PCI_BAR0_REGION_INDEX
#define BAR2		VFIO_PCI_BAR2_REGION_INDEX
#define CONFIG		VFIO_PCI_CONFIG_REGION_INDEX
#define AREA_OFF	0x8000ul	/* BAR2's device memory */
#define AREA_SIZE	0x4000ul
#define TIMEOUT_MS	1000	/* timeout_ms for the sweeps */
#define STORM_TIMEOUT_MS 500	/* and for the races and the fuzzer */
#define SLACK_MS	2000	/* scheduling under TCG on a loaded host */
#define WAIT_MS		5000	/* for a request that must come */
#define REPLY_SZ(len)	(sizeof(struct muser_reply) + (((len) + 7) & ~7ul))
#define U32_MAX		0xffffffffu
#define U64_MAX		0xffffffffffffffffull
#define MIN(a, b)	((a) < (b) ? (a) : (b))

/* ------------------------------------------------------------ helpers */

/* layout_default() plus device memory at BAR2 [AREA_OFF, +AREA_SIZE). */
static void layout_hostile(struct muser_device_info *info)
{
	layout_default(info);
	info->num_mmap_areas = 1;
	info->mmap_areas[0].region = BAR2;
	info->mmap_areas[0].offset = AREA_OFF;
	info->mmap_areas[0].size = AREA_SIZE;
}

/* The layouts muser.ko takes as equal (argsz and version do not count). */
static bool same_layout(const struct muser_device_info *a,
			const struct muser_device_info *b)
{
	return a->flags == b->flags && a->num_regions == b->num_regions &&
	       a->num_irqs == b->num_irqs &&
	       a->num_mmap_areas == b->num_mmap_areas &&
	       !memcmp(a->regions, b->regions, sizeof(a->regions)) &&
	       !memcmp(a->irqs, b->irqs, sizeof(a->irqs)) &&
	       (a->num_mmap_areas > MUSER_MAX_MMAP_AREAS ||
		!memcmp(a->mmap_areas, b->mmap_areas,
			a->num_mmap_areas * sizeof(a->mmap_areas[0]))) &&
	       a->num_dev_regions == b->num_dev_regions &&
	       !memcmp(a->dev_regions, b->dev_regions, sizeof(a->dev_regions));
}

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

/* Raw syscalls: the compiler must not object to NULL or huge buffers. */
static ssize_t xwrite(int fd, const void *buf, size_t len)
{
	ssize_t n = syscall(SYS_write, fd, buf, len);

	return n < 0 ? -errno : n;
}

static ssize_t xread(int fd, void *buf, size_t len)
{
	ssize_t n = syscall(SYS_read, fd, buf, len);

	return n < 0 ? -errno : n;
}

static void *xmmap(int fd, uint64_t off, size_t len, int prot, int flags)
{
	void *p = mmap(NULL, len, prot, flags, fd, (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

static void pattern(uint8_t *p, uint32_t region, uint64_t off, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = emu_pattern(region, off + i);
}

/*
 * Append a reply to @buf at @pos: the header, @dlen bytes of @data (zeros
 * if NULL) and, if @pad, zeros up to MUSER_ALIGN. @len is what the header
 * claims. Returns the new end.
 */
static size_t put_reply(uint8_t *buf, size_t pos, uint64_t id, int32_t error,
			uint32_t len, const void *data, size_t dlen, bool pad)
{
	struct muser_reply rep = { .id = id, .error = error, .len = len };

	memcpy(buf + pos, &rep, sizeof(rep));
	pos += sizeof(rep);
	if (data)
		memcpy(buf + pos, data, dlen);
	else
		memset(buf + pos, 0, dlen);
	pos += dlen;
	if (pad) {
		memset(buf + pos, 0, ((dlen + 7) & ~7ul) - dlen);
		pos += ((dlen + 7) & ~7ul) - dlen;
	}
	return pos;
}

/* The right answer to @r: emu_pattern() data for a READ. */
static ssize_t reply_ok(int ctl, const struct emu_req *r)
{
	uint8_t data[MUSER_MAX_DATA];

	if (r->hdr.type != MUSER_REQ_READ)
		return emu_reply(ctl, r->hdr.id, 0, NULL, 0);
	pattern(data, r->hdr.region, r->hdr.offset, r->hdr.len);
	return emu_reply(ctl, r->hdr.id, 0, data, r->hdr.len);
}

/* Read every pending notice and request without answering; how many. */
static int drain(int ctl)
{
	struct emu_req reqs[16];
	int n, total = 0;

	while ((n = emu_read_timeout(ctl, reqs, 16, 20)) > 0)
		total += n;
	return total;
}

/* Sentinels of access_end(), beside a byte count or -errno. */
#define ACCESS_BAD_DATA	(-10000)	/* a read returned other data */
#define ACCESS_HUNG	(-10001)	/* it took longer than timeout_ms */

/*
 * Wait for a VMM access: its result, ACCESS_BAD_DATA if a read returned
 * anything but emu_pattern(), ACCESS_HUNG if it outlived @timeout_ms.
 */
static ssize_t access_end(struct async_access *a, long timeout_ms)
{
	uint8_t want[sizeof(a->buf)];
	ssize_t ret = async_join(a);

	if (a->elapsed_ms > timeout_ms + SLACK_MS) {
		fprintf(stderr, "# a VMM access took %lld ms (timeout_ms %ld)\n",
			(long long)a->elapsed_ms, timeout_ms);
		return ACCESS_HUNG;
	}
	if (ret > 0 && !a->write) {
		pattern(want, a->region, a->off, ret);
		if (memcmp(want, a->buf, ret))
			return ACCESS_BAD_DATA;
	}
	return ret;
}

/* Start a VMM access and wait for its request: 0 or -errno. */
static int access_begin(struct rig *rig, struct async_access *a, int region,
			uint64_t off, size_t len, bool write, struct emu_req *r)
{
	int ret;

	memset(a->buf, 0, sizeof(a->buf));
	if (write)
		pattern(a->buf, region, off, len);
	ret = async_start(a, &rig->c, region, off, len, write);
	if (ret)
		return ret;
	ret = emu_next_request(rig->ctl, r, WAIT_MS);
	if (ret == 1)
		return 0;
	/* Nobody will answer: let it time out before returning. */
	async_join(a);
	return ret ? ret : -ETIMEDOUT;
}

/* ------------------------------------------------------------ fixture */

/*
 * A device with device memory in BAR2, the test attached as its emulator
 * (O_NONBLOCK), a VMM with 2 MiB at iova 0 and GUEST_SIZE at GUEST_IOVA,
 * and timeout_ms at TIMEOUT_MS.
 */
FIXTURE(hemu) {
	struct rig r;
	uint8_t *guest;
	long timeout;
};

FIXTURE_SETUP(hemu)
{
	struct muser_device_info layout;
	size_t i;

	self->guest = NULL;
	self->timeout = TIMEOUT_MS;
	layout_hostile(&layout);
	RIG_SETUP(&self->r, &layout, RIG_NONBLOCK);
	ASSERT_EQ(PG, sysconf(_SC_PAGESIZE));
	ASSERT_EQ(0, rig_set_timeout(&self->r, TIMEOUT_MS));
	self->guest = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->guest);
	/* As QEMU does: emulator processes forked here get no copy. */
	ASSERT_EQ(0, madvise(self->guest, GUEST_SIZE, MADV_DONTFORK));
	for (i = 0; i < GUEST_SIZE; i++)
		self->guest[i] = (uint8_t)(i * 7 + (i >> 12));
	test_vmm_map(&self->r.c, self->guest, GUEST_IOVA, GUEST_SIZE);
	drain(self->r.ctl);
}

FIXTURE_TEARDOWN(hemu)
{
	RIG_TEARDOWN(&self->r);
	if (self->guest && self->guest != MAP_FAILED)
		munmap(self->guest, GUEST_SIZE);
}

/* Another open of the device's control node. */
static int other_ctl(FIXTURE_DATA(hemu) *self)
{
	return ctl_open(self->r.uuid, O_NONBLOCK);
}

/* ---------------------------------------------------------- replies */

/* Replies to ids that no request of this emulator has: ENOENT. */
TEST_F(hemu, reply_ids)
{
	struct async_access a;
	struct emu_req r;
	uint64_t answered;
	uint8_t data[4];
	uint64_t bad[5];
	size_t i;

	/* One round trip, for an id that was answered. */
	ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0x10, 4, false, &r));
	ASSERT_LT(0, reply_ok(self->r.ctl, &r));
	ASSERT_EQ(4, access_end(&a, self->timeout));
	answered = r.hdr.id;

	ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0x20, 4, false, &r));
	pattern(data, BAR0, 0x20, 4);
	bad[0] = 0;			/* posted notices' id */
	bad[1] = answered;
	bad[2] = r.hdr.id + 1;		/* not issued yet */
	bad[3] = r.hdr.id + (1ull << 40);
	bad[4] = U64_MAX;
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		unsigned long long id = bad[i];

		EXPECT_EQ(-ENOENT, emu_reply(self->r.ctl, id, 0, data, 4))
			TH_LOG("id 0x%llx", id);
	}
	/* Errors to the wrong id settle nothing either. */
	EXPECT_EQ(-ENOENT, emu_reply(self->r.ctl, answered, EIO, NULL, 0));
	EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	EXPECT_LT(0, emu_reply(self->r.ctl, r.hdr.id, 0, data, 4));
	EXPECT_EQ(4, access_end(&a, self->timeout));
	EXPECT_EQ(-ENOENT, emu_reply(self->r.ctl, r.hdr.id, 0, data, 4));
}

/* Wait until @ctl is no longer the emulator (poll says EPOLLERR). */
static bool wait_retired(int ctl)
{
	int64_t end = now_ms() + WAIT_MS;
	struct pollfd p = { .fd = ctl, .events = POLLIN };

	while (now_ms() < end) {
		if (poll(&p, 1, 0) == 1 && p.revents & POLLERR)
			return true;
		sleep_ms(1);
	}
	return false;
}

/*
 * The id of a request another emulator holds: during a takeover the new
 * emulator cannot answer what the old one read (ENOENT), nor the old one
 * what the new one read (ENOTCONN); each answers its own.
 */
TEST_F(hemu, reply_ids_of_the_other_emulator)
{
	struct emu_takeover t = { .info = &self->r.layout };
	struct async_access a1, a2;
	struct emu_req r1, r2;
	int old = self->r.ctl;

	ASSERT_EQ(0, access_begin(&self->r, &a1, BAR0, 0x30, 2, false, &r1));
	t.ctl = other_ctl(self);
	ASSERT_LE(0, t.ctl);
	ASSERT_EQ(0, pthread_create(&t.thread, NULL, emu_takeover_fn, &t));
	ASSERT_TRUE(wait_retired(old));
	/* Requests go to the new emulator as soon as it is one. */
	self->r.ctl = t.ctl;
	ASSERT_EQ(0, access_begin(&self->r, &a2, BAR0, 0x40, 2, false, &r2));
	self->r.ctl = old;

	EXPECT_EQ(-ENOENT, reply_ok(t.ctl, &r1));
	EXPECT_EQ(-ENOTCONN, reply_ok(old, &r2));
	EXPECT_FALSE(__atomic_load_n(&t.done, __ATOMIC_ACQUIRE));
	EXPECT_LT(0, reply_ok(old, &r1));
	EXPECT_EQ(2, access_end(&a1, self->timeout));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, t.ret);
	/* Retired: nothing of it is left to answer. */
	EXPECT_EQ(-ENOTCONN, reply_ok(old, &r1));
	EXPECT_LT(0, reply_ok(t.ctl, &r2));
	EXPECT_EQ(2, access_end(&a2, self->timeout));

	/* The new one is the rig's emulator from now on. */
	close(old);
	self->r.ctl = t.ctl;
}

/*
 * One bad reply to a request, then (if it is still waiting) the right one.
 * @settles: the bad reply fails the VMM's access with EIO at once.
 */
struct bad_reply {
	const char *what;
	int region;
	uint64_t off;
	size_t len;
	bool write;
	int32_t error;
	uint32_t claim;		/* the header's len */
	size_t dlen;		/* bytes of data written after the header */
	bool pad;
	ssize_t want;		/* from write() */
	bool settles;
};

static const struct bad_reply bad_replies[] = {
	{ "READ, len 0", BAR0, 0, 4, false, 0, 0, 0, true, -EINVAL, true },
	{ "READ, len > the request's", BAR0, 0, 4, false, 0, 8, 8, true, -EINVAL, true },
	{ "READ, len 4096 for 4", BAR0, 0, 4, false, 0, 4096, 4096, true, -EINVAL, true },
	{ "READ, len 3 padded", BAR0, 0, 4, false, 0, 3, 3, true, -EINVAL, true },
	{ "READ, len 3 unpadded", BAR0, 0, 4, false, 0, 3, 3, false, -EINVAL, false },
	{ "READ, len 4 unpadded", BAR0, 0, 4, false, 0, 4, 4, false, -EINVAL, false },
	{ "READ, len MAX_DATA + 1", BAR0, 0, 4, false, 0, 4097, 4097, true, -EINVAL, false },
	{ "READ, len MAX_DATA + 8", BAR0, 0, 4, false, 0, 4104, 4104, true, -EINVAL, false },
	{ "READ, len U32_MAX", BAR0, 0, 4, false, 0, U32_MAX, 8, true, -EINVAL, false },
	{ "READ, len past the buffer", BAR0, 0, 4, false, 0, 4096, 8, true, -EINVAL, false },
	{ "READ, header only", BAR0, 0, 4, false, 0, 4, 0, false, -EINVAL, false },
	{ "READ 4096, len 4088", BAR2, 0, 4096, false, 0, 4088, 4088, true, -EINVAL, true },
	{ "READ 1 of config, unpadded", CONFIG, 0x40, 1, false, 0, 1, 1, false, -EINVAL, false },
	{ "WRITE, with data", BAR0, 8, 4, true, 0, 4, 4, true, -EINVAL, true },
	{ "WRITE, len 4096", BAR0, 8, 4, true, 0, 4096, 4096, true, -EINVAL, true },
	{ "READ, error -1", BAR0, 0, 4, false, -1, 0, 0, true, -EINVAL, false },
	{ "READ, error -EIO", BAR0, 0, 4, false, -EIO, 0, 0, true, -EINVAL, false },
	{ "READ, error INT_MIN", BAR0, 0, 4, false, INT_MIN, 0, 0, true, -EINVAL, false },
	{ "READ, error 512 (ERESTARTSYS)", BAR0, 0, 4, false, 512, 0, 0, true, -EINVAL, false },
	{ "READ, error 513 (ERESTARTNOINTR)", BAR0, 0, 4, false, 513, 0, 0, true, -EINVAL, false },
	{ "READ, error 514 (ERESTARTNOHAND)", BAR0, 0, 4, false, 514, 0, 0, true, -EINVAL, false },
	{ "READ, error 516 (ERESTART_RESTARTBLOCK)", BAR0, 0, 4, false, 516, 0, 0, true, -EINVAL, false },
	{ "READ, error 4095", BAR0, 0, 4, false, 4095, 0, 0, true, -EINVAL, false },
	{ "READ, error 4096", BAR0, 0, 4, false, 4096, 0, 0, true, -EINVAL, false },
	{ "READ, error INT_MAX", BAR0, 0, 4, false, INT_MAX, 0, 0, true, -EINVAL, false },
	{ "READ, error EIO with data", BAR0, 0, 4, false, EIO, 4, 4, true, -EINVAL, false },
	{ "WRITE, error 1 with data", BAR0, 8, 4, true, 1, 4, 4, true, -EINVAL, false },
	{ "WRITE, error 511 with data", BAR0, 8, 4, true, 511, 8, 8, true, -EINVAL, false },
};

/* Wrong lengths and errors: EINVAL, and the VMM sees EIO or the data. */
TEST_F(hemu, reply_lengths_and_errors)
{
	static uint8_t buf[REPLY_SZ(8192)] __attribute__((aligned(8)));
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad_replies); i++) {
		const struct bad_reply *b = &bad_replies[i];
		struct async_access a;
		struct emu_req r;
		size_t n;

		ASSERT_EQ(0, access_begin(&self->r, &a, b->region, b->off,
					  b->len, b->write, &r)) TH_LOG("%s", b->what);
		n = put_reply(buf, 0, r.hdr.id, b->error, b->claim, NULL,
			      b->dlen, b->pad);
		EXPECT_EQ(b->want, xwrite(self->r.ctl, buf, n)) TH_LOG("%s", b->what);
		if (b->settles) {
			EXPECT_EQ(-EIO, access_end(&a, self->timeout)) TH_LOG("%s", b->what);
			EXPECT_EQ(-ENOENT, reply_ok(self->r.ctl, &r)) TH_LOG("%s", b->what);
			continue;
		}
		EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE)) TH_LOG("%s", b->what);
		EXPECT_LT(0, reply_ok(self->r.ctl, &r)) TH_LOG("%s", b->what);
		EXPECT_EQ(b->len, access_end(&a, self->timeout)) TH_LOG("%s", b->what);
	}
}

/* Every errno an emulator may send reaches the VMM as it is. */
TEST_F(hemu, reply_every_errno)
{
	int32_t e;

	for (e = 1; e < 512; e++) {
		bool write = e % 3 == 0;
		struct async_access a;
		struct emu_req r;

		ASSERT_EQ(0, access_begin(&self->r, &a, e % 2 ? BAR0 : CONFIG,
					  4 * (e % 32), 4, write, &r));
		EXPECT_LT(0, emu_reply(self->r.ctl, r.hdr.id, e, NULL, 0));
		EXPECT_EQ(-e, access_end(&a, self->timeout)) TH_LOG("errno %d", e);
	}
	/* Data of full size comes through the large path. */
	{
		struct async_access a;
		struct emu_req r;

		ASSERT_EQ(0, access_begin(&self->r, &a, BAR2, 0, 4096, false, &r));
		EXPECT_LT(0, reply_ok(self->r.ctl, &r));
		EXPECT_EQ(4096, access_end(&a, self->timeout));
	}
}

enum { BATCH = 6 };

/*
 * BATCH reads in flight, answered in one write() whose third reply is
 * bad in the way @bad says: 0 an unknown id, 1 a bad header, 2 a wrong
 * len (which fails that access with EIO). Only the two whole replies
 * before it are consumed; the rest is written again.
 */
static void batch_case(struct __test_metadata *_metadata,
		       FIXTURE_DATA(hemu) *self, int bad)
{
	static const size_t lens[BATCH] = { 1, 2, 4, 8, 4096, 3 };
	static uint8_t buf[BATCH * REPLY_SZ(4096)] __attribute__((aligned(8)));
	struct async_access a[BATCH];
	struct emu_req reqs[BATCH], r;
	size_t at[BATCH + 1];
	uint8_t data[4096];
	int i, got = 0;

	/* One at a time, so the order of the requests is known. */
	for (i = 0; i < BATCH; i++) {
		ASSERT_EQ(0, access_begin(&self->r, &a[i], BAR2, 0x1000 * i,
					  lens[i], false, &r));
		reqs[got++] = r;
	}
	at[0] = 0;
	for (i = 0; i < BATCH; i++) {
		pattern(data, BAR2, 0x1000 * i, lens[i]);
		at[i + 1] = put_reply(buf, at[i], reqs[i].hdr.id, 0, lens[i],
				      data, lens[i], true);
	}
	if (bad == 0)
		((struct muser_reply *)(buf + at[2]))->id += 1000;
	else if (bad == 1)
		((struct muser_reply *)(buf + at[2]))->error = -1;
	else	/* 8 for 4: the same size on the wire */
		((struct muser_reply *)(buf + at[2]))->len = 8;

	EXPECT_EQ(at[2], xwrite(self->r.ctl, buf, at[BATCH]));
	EXPECT_EQ(bad == 2 ? -ENOENT : bad == 0 ? -ENOENT : -EINVAL,
		  xwrite(self->r.ctl, buf + at[2], at[BATCH] - at[2]));
	EXPECT_EQ(at[BATCH] - at[3],
		  xwrite(self->r.ctl, buf + at[3], at[BATCH] - at[3]));
	if (bad != 2)
		EXPECT_LT(0, reply_ok(self->r.ctl, &reqs[2]));
	for (i = 0; i < BATCH; i++)
		EXPECT_EQ(i == 2 && bad == 2 ? -EIO : (ssize_t)lens[i],
			  access_end(&a[i], self->timeout))
			TH_LOG("bad %d, access %d", bad, i);
}

TEST_F(hemu, reply_batch_bad_in_the_middle)
{
	batch_case(_metadata, self, 0);
	batch_case(_metadata, self, 1);
	batch_case(_metadata, self, 2);
}

/* Write buffers cut short or faulting: EINVAL/EFAULT, nothing settled. */
TEST_F(hemu, reply_partial_and_faulting)
{
	uint8_t buf[3 * REPLY_SZ(8)] __attribute__((aligned(8)));
	uint8_t *g = guarded_alloc(PG);
	const size_t one = REPLY_SZ(4);
	struct async_access a, b;
	struct emu_req r, r2;
	uint8_t data[8];
	size_t n;

	ASSERT_NE(NULL, g);
	ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0x50, 4, false, &r));
	pattern(data, BAR0, 0x50, 4);
	n = put_reply(buf, 0, r.hdr.id, 0, 4, data, 4, true);

	/* Shorter than a header, or than its data. */
	EXPECT_EQ(-EINVAL, xwrite(self->r.ctl, buf, 1));
	EXPECT_EQ(-EINVAL, xwrite(self->r.ctl, buf, sizeof(struct muser_reply) - 1));
	EXPECT_EQ(-EINVAL, xwrite(self->r.ctl, buf, sizeof(struct muser_reply)));
	EXPECT_EQ(-EINVAL, xwrite(self->r.ctl, buf, n - 1));
	/* No buffer, a kernel address, a guard page. */
	EXPECT_EQ(-EFAULT, xwrite(self->r.ctl, NULL, n));
	EXPECT_EQ(-EFAULT, xwrite(self->r.ctl, (void *)0xffffffff81000000ul, n));
	EXPECT_EQ(-EFAULT, xwrite(self->r.ctl, g + PG, n));
	/* The header readable, its data in the guard page. */
	memcpy(g + PG - sizeof(struct muser_reply), buf, sizeof(struct muser_reply));
	EXPECT_EQ(-EFAULT, xwrite(self->r.ctl, g + PG - sizeof(struct muser_reply), n));
	/* The header itself across the guard. */
	memcpy(g + PG - 8, buf, 8);
	EXPECT_EQ(-EFAULT, xwrite(self->r.ctl, g + PG - 8, n));
	EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));

	/* A whole reply, then a fragment or a fault: the reply only. */
	ASSERT_EQ(0, access_begin(&self->r, &b, BAR0, 0x58, 4, false, &r2));
	memcpy(g + PG - one, buf, one);
	EXPECT_EQ(one, xwrite(self->r.ctl, g + PG - one, one + 64));
	EXPECT_EQ(4, access_end(&a, self->timeout));
	pattern(data, BAR0, 0x58, 4);
	n = put_reply(buf, 0, r2.hdr.id, 0, 4, data, 4, true);
	n = put_reply(buf, n, r2.hdr.id + 1, 0, 8, NULL, 0, false);
	EXPECT_EQ(one, xwrite(self->r.ctl, buf, n));
	EXPECT_EQ(4, access_end(&b, self->timeout));

	/* A trailing fragment shorter than a header is left alone. */
	ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0x60, 4, false, &r));
	pattern(data, BAR0, 0x60, 4);
	n = put_reply(buf, 0, r.hdr.id, 0, 4, data, 4, true);
	EXPECT_EQ(one, xwrite(self->r.ctl, buf, n + 8));
	EXPECT_EQ(4, access_end(&a, self->timeout));
	guarded_free(g, PG);
}

/* Reply buffers in the control node's own mappings. */
TEST_F(hemu, reply_from_own_mappings)
{
	const size_t one = REPLY_SZ(8);
	uint8_t *dev, *state, *win, data[8];
	struct async_access a;
	struct emu_req r;
	int i;

	dev = xmmap(self->r.ctl, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE,
		    PROT_READ | PROT_WRITE, MAP_SHARED);
	state = xmmap(self->r.ctl, MUSER_STATE_OFFSET, PG,
		      PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(NULL, dev);
	ASSERT_NE(NULL, state);
	test_dma_map(self->r.ctl, GUEST_IOVA, PG, MUSER_DMA_F_WRITE);
	win = xmmap(self->r.ctl, MUSER_DMA_OFFSET + GUEST_IOVA, 2 * PG,
		    PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(NULL, win);

	for (i = 0; i < 4; i++) {
		/* Device memory, the state area, a pinned guest page. */
		uint8_t *p = i == 0 ? dev : i == 1 ? state : win;

		ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0x80 + 8 * i, 8,
					  false, &r));
		pattern(data, BAR0, 0x80 + 8 * i, 8);
		if (i == 3) {
			/* The guest page after it is not pinned: it faults. */
			put_reply(win + PG - 16, 0, r.hdr.id, 0, 8, NULL, 0, false);
			EXPECT_EQ(-EFAULT, xwrite(self->r.ctl, win + PG - 16, one));
			p = win + PG - one;
		}
		put_reply(p, 0, r.hdr.id, 0, 8, data, 8, true);
		EXPECT_EQ(one, xwrite(self->r.ctl, p, one)) TH_LOG("mapping %d", i);
		EXPECT_EQ(8, access_end(&a, self->timeout)) TH_LOG("mapping %d", i);
	}
	munmap(win, 2 * PG);
	munmap(state, PG);
	munmap(dev, AREA_SIZE);
	test_dma_release(self->r.ctl, GUEST_IOVA, PG);
}

/* Zero and huge write sizes; many replies in one write. */
TEST_F(hemu, write_sizes)
{
	enum { N = 64 };
	const size_t one = REPLY_SZ(4);
	static uint8_t buf[N * REPLY_SZ(8)] __attribute__((aligned(8)));
	static struct emu_req reqs[N];
	struct async_access *a = calloc(N, sizeof(*a));
	struct emu_req r;
	uint8_t *big, *g, data[8];
	size_t n = 0;
	ssize_t ret;
	int i;

	ASSERT_NE(NULL, a);
	/* Nothing to consume: not a reply. */
	ret = xwrite(self->r.ctl, buf, 0);
	EXPECT_TRUE(ret == 0 || ret == -EINVAL) TH_LOG("write of 0 bytes: %zd", ret);
	ret = xwrite(self->r.ctl, NULL, 0);
	EXPECT_TRUE(ret == 0 || ret == -EINVAL) TH_LOG("write of 0 bytes: %zd", ret);

	/* A good reply followed by 1 GiB of zeros (id 0: ENOENT stops it). */
	big = mmap(NULL, 1ul << 30, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, big);
	ASSERT_EQ(0, access_begin(&self->r, &a[0], BAR0, 0x90, 4, false, &r));
	pattern(data, BAR0, 0x90, 4);
	put_reply(big, 0, r.hdr.id, 0, 4, data, 4, true);
	EXPECT_EQ(one, xwrite(self->r.ctl, big, 1ul << 30));
	EXPECT_EQ(4, access_end(&a[0], self->timeout));
	munmap(big, 1ul << 30);

	/* 1 MiB of which one reply exists, then a guard page. */
	g = guarded_alloc(one);
	ASSERT_NE(NULL, g);
	ASSERT_EQ(0, access_begin(&self->r, &a[0], BAR0, 0x98, 4, false, &r));
	pattern(data, BAR0, 0x98, 4);
	put_reply(g, 0, r.hdr.id, 0, 4, data, 4, true);
	EXPECT_EQ(one, xwrite(self->r.ctl, g, 1ul << 20));
	EXPECT_EQ(4, access_end(&a[0], self->timeout));
	/* Past the end of the address space: the VFS says EFAULT. */
	EXPECT_EQ(-EFAULT, xwrite(self->r.ctl, g, SSIZE_MAX));
	EXPECT_EQ(-EFAULT, xwrite(self->r.ctl, g, (size_t)SSIZE_MAX + 1));
	guarded_free(g, one);

	/* N requests in flight, answered in one write. */
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, async_start(&a[i], &self->r.c, BAR0, 8 * i, 1 + i % 8, false));
	for (i = 0; i < N; ) {
		int k, got = emu_read_timeout(self->r.ctl, reqs, N, WAIT_MS);

		ASSERT_LT(0, got);
		for (k = 0; k < got; k++) {
			if (!reqs[k].hdr.id)
				continue;
			pattern(data, BAR0, reqs[k].hdr.offset, reqs[k].hdr.len);
			n = put_reply(buf, n, reqs[k].hdr.id, 0, reqs[k].hdr.len,
				      data, reqs[k].hdr.len, true);
			i++;
		}
	}
	EXPECT_EQ(n, xwrite(self->r.ctl, buf, n));
	for (i = 0; i < N; i++)
		EXPECT_EQ(1 + i % 8, access_end(&a[i], self->timeout)) TH_LOG("access %d", i);
	free(a);
}

/* Files that are not the emulator cannot answer: ENOTCONN. */
TEST_F(hemu, reply_from_other_files)
{
	struct async_access a;
	struct emu_req r, again;
	int other = other_ctl(self);

	ASSERT_LE(0, other);
	/* Never attached. */
	ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0xa0, 4, false, &r));
	EXPECT_EQ(-ENOTCONN, reply_ok(other, &r));
	EXPECT_EQ(-ENOTCONN, emu_reply(other, r.hdr.id, EIO, NULL, 0));
	EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));

	/* Detached: what it read goes to the next emulator, replayed. */
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DETACH, NULL));
	EXPECT_EQ(-ENOTCONN, reply_ok(self->r.ctl, &r));
	ASSERT_EQ(0, ctl_attach(other, &self->r.layout));
	ASSERT_EQ(1, emu_next_request(other, &again, WAIT_MS));
	EXPECT_EQ(r.hdr.id, again.hdr.id);
	EXPECT_TRUE(again.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_EQ(-ENOTCONN, reply_ok(self->r.ctl, &again));
	EXPECT_LT(0, reply_ok(other, &again));
	EXPECT_EQ(4, access_end(&a, self->timeout));

	/* Taken over with nothing read: it answers nothing any more. */
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_TAKEOVER, &self->r.layout));
	ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0xa8, 4, false, &r));
	EXPECT_EQ(-ENOTCONN, reply_ok(other, &r));
	EXPECT_LT(0, reply_ok(self->r.ctl, &r));
	EXPECT_EQ(4, access_end(&a, self->timeout));
	close(other);
}

/* The VMM gave up: the late reply gets ENOENT, and changes nothing. */
TEST_F(hemu, reply_after_timeout)
{
	uint8_t buf[2 * REPLY_SZ(4)] __attribute__((aligned(8)));
	struct async_access a, b;
	struct emu_req r, r2;
	uint8_t data[4];
	size_t n;

	ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0xb0, 4, false, &r));
	EXPECT_EQ(-ETIMEDOUT, access_end(&a, self->timeout));
	EXPECT_LE(self->timeout - 50, a.elapsed_ms);
	EXPECT_EQ(-ENOENT, reply_ok(self->r.ctl, &r));
	EXPECT_EQ(-ENOENT, emu_reply(self->r.ctl, r.hdr.id, EIO, NULL, 0));

	/* Late first in a batch: nothing consumed; the rest then goes. */
	ASSERT_EQ(0, access_begin(&self->r, &b, BAR0, 0xb8, 4, false, &r2));
	pattern(data, BAR0, 0xb8, 4);
	n = put_reply(buf, 0, r.hdr.id, 0, 4, data, 4, true);
	n = put_reply(buf, n, r2.hdr.id, 0, 4, data, 4, true);
	EXPECT_EQ(-ENOENT, xwrite(self->r.ctl, buf, n));
	EXPECT_EQ(n / 2, xwrite(self->r.ctl, buf + n / 2, n / 2));
	EXPECT_EQ(4, access_end(&b, self->timeout));
}

/* ------------------------------------------------------------ read() */

/* Wait until the control node has something to read. */
static bool wait_readable(int ctl)
{
	struct pollfd p = { .fd = ctl, .events = POLLIN };

	return poll(&p, 1, WAIT_MS) == 1 && p.revents & POLLIN;
}

/* Buffers under MUSER_READ_BUF_MIN: EINVAL at once; exactly that is room. */
TEST_F(hemu, read_small_buffers)
{
	static uint8_t buf[MUSER_READ_BUF_MIN] __attribute__((aligned(8)));
	const size_t sizes[] = { 0, 1, sizeof(struct muser_req),
				 MUSER_READ_BUF_MIN - 1 };
	struct muser_req *h = (struct muser_req *)buf;
	struct async_access a;
	int fl = fcntl(self->r.ctl, F_GETFL);
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t sz = sizes[i];

		EXPECT_EQ(-EINVAL, xread(self->r.ctl, buf, sz)) TH_LOG("%zu", sz);
	}
	/* Blocking, with nothing pending: still EINVAL, not a wait. */
	ASSERT_EQ(0, fcntl(self->r.ctl, F_SETFL, fl & ~O_NONBLOCK));
	EXPECT_EQ(-EINVAL, xread(self->r.ctl, buf, 1));
	ASSERT_EQ(0, fcntl(self->r.ctl, F_SETFL, fl));

	/* A write of MUSER_MAX_DATA fills MUSER_READ_BUF_MIN exactly. */
	pattern(a.buf, BAR2, 0, MUSER_MAX_DATA);
	ASSERT_EQ(0, async_start(&a, &self->r.c, BAR2, 0, MUSER_MAX_DATA, true));
	ASSERT_TRUE(wait_readable(self->r.ctl));
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t sz = sizes[i];

		EXPECT_EQ(-EINVAL, xread(self->r.ctl, buf, sz)) TH_LOG("%zu", sz);
	}
	EXPECT_EQ(MUSER_READ_BUF_MIN, xread(self->r.ctl, buf, sizeof(buf)));
	EXPECT_EQ(MUSER_REQ_WRITE, h->type);
	EXPECT_EQ(MUSER_MAX_DATA, h->data_len);
	EXPECT_EQ(0, memcmp(h + 1, a.buf, MUSER_MAX_DATA));
	EXPECT_LT(0, emu_reply(self->r.ctl, h->id, 0, NULL, 0));
	EXPECT_EQ(MUSER_MAX_DATA, access_end(&a, self->timeout));
}

/*
 * Read into @dst (@len bytes), which must fault; then collect what good
 * reads return until @want ids and one IRQ_STATE notice are seen, each
 * exactly once.
 */
static int fault_then_collect(int ctl, void *dst, size_t len,
			      const uint64_t *want, int nwant)
{
	static struct emu_req reqs[64];
	int seen[8] = { 0 }, irq = 0, got = 0, n, i, k;
	int64_t end = now_ms() + WAIT_MS;

	if (!wait_readable(ctl))
		return -ETIMEDOUT;
	n = (int)xread(ctl, dst, len);
	if (n != -EFAULT) {
		fprintf(stderr, "# read into a faulting buffer: %d\n", n);
		return -EPROTO;
	}
	while ((got < nwant || !irq) && now_ms() < end) {
		n = emu_read_timeout(ctl, reqs, 64, 100);
		for (i = 0; i < n; i++) {
			if (reqs[i].hdr.type == MUSER_REQ_IRQ_STATE)
				irq++;
			for (k = 0; k < nwant; k++) {
				if (reqs[i].hdr.id != want[k])
					continue;
				seen[k]++;
				got++;
				/* Put back by the detach, not by the fault. */
				if (!(reqs[i].hdr.flags & MUSER_REQ_F_REPLAYED))
					return -EPROTO;
			}
		}
	}
	for (k = 0; k < nwant; k++)
		if (seen[k] != 1)
			return -ENOENT;
	return irq == 1 ? 0 : -EMLINK;
}

/*
 * A faulting read() buffer: EFAULT, and every request and notice is
 * delivered again by the next read (nothing lost, nothing doubled).
 */
TEST_F(hemu, read_faulting_buffers)
{
	enum { N = 3 };
	uint8_t *g = guarded_alloc(PG), *ro, *win;
	struct async_access a[N];
	uint64_t ids[N];
	struct emu_req r;
	int efd, i, round;

	ASSERT_NE(NULL, g);
	ro = mmap(NULL, 2 * MUSER_READ_BUF_MIN, PROT_READ,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	win = xmmap(self->r.ctl, MUSER_DMA_OFFSET + GUEST_IOVA, 2 * MUSER_READ_BUF_MIN,
		    PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(NULL, win);
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, efd);

	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, access_begin(&self->r, &a[i], BAR0, 0xc0 + 8 * i, 4,
					  false, &r));
		ids[i] = r.hdr.id;
	}
	/* Delivered and not answered: put them back as if never read. */
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DETACH, NULL));
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
	drain(self->r.ctl);	/* they come back replayed: take them again */

	for (round = 0; round < 6; round++) {
		void *dst[] = { NULL, g + PG, ro, g + PG - 100, win,
				(void *)0xffffffff81000000ul };

		/* A notice and new requests pending with the replayed ones. */
		ASSERT_EQ(0, set_irq_eventfd(self->r.c.device,
					     VFIO_PCI_MSI_IRQ_INDEX, 0,
					     round % 2 ? -1 : efd));
		ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DETACH, NULL));
		ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
		EXPECT_EQ(0, fault_then_collect(self->r.ctl, dst[round],
						2 * MUSER_READ_BUF_MIN, ids, N))
			TH_LOG("buffer %d", round);
	}
	for (i = 0; i < N; i++) {
		r.hdr.id = ids[i];
		r.hdr.type = MUSER_REQ_READ;
		r.hdr.region = BAR0;
		r.hdr.offset = 0xc0 + 8 * i;
		r.hdr.len = 4;
		EXPECT_LT(0, reply_ok(self->r.ctl, &r));
		EXPECT_EQ(4, access_end(&a[i], self->timeout));
	}
	close(efd);
	munmap(win, 2 * MUSER_READ_BUF_MIN);
	munmap(ro, 2 * MUSER_READ_BUF_MIN);
	guarded_free(g, PG);
}

/* Huge counts, and buffers in the node's own mappings. */
TEST_F(hemu, read_huge_and_mapped_buffers)
{
	uint8_t *big = malloc(1 << 16), *dev, *state;
	struct async_access a;
	struct emu_req r;
	int i;

	ASSERT_NE(NULL, big);
	dev = xmmap(self->r.ctl, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE,
		    PROT_READ | PROT_WRITE, MAP_SHARED);
	state = xmmap(self->r.ctl, MUSER_STATE_OFFSET, 4 * PG,
		      PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(NULL, dev);
	ASSERT_NE(NULL, state);
	for (i = 0; i < 3; i++) {
		uint8_t *dst = i == 0 ? big : i == 1 ? dev : state;
		size_t len = i == 0 ? 1ul << 30 : i == 1 ? AREA_SIZE : 4 * PG;
		struct muser_req *h = (struct muser_req *)dst;

		ASSERT_EQ(0, async_start(&a, &self->r.c, BAR0, 0xe0, 8, false));
		ASSERT_TRUE(wait_readable(self->r.ctl));
		EXPECT_EQ(sizeof(*h), xread(self->r.ctl, dst, len)) TH_LOG("buffer %d", i);
		EXPECT_EQ(MUSER_REQ_READ, h->type);
		r.hdr = *h;
		EXPECT_LT(0, reply_ok(self->r.ctl, &r));
		EXPECT_EQ(8, access_end(&a, self->timeout));
	}
	munmap(state, 4 * PG);
	munmap(dev, AREA_SIZE);
	free(big);
}

static void on_usr1(int sig)
{
	(void)sig;
}

struct reader {
	pthread_t thread;
	int fd;
	ssize_t ret;
	volatile int done;
};

static void *reader_fn(void *p)
{
	static __thread uint8_t buf[MUSER_READ_BUF_MIN];
	struct reader *r = p;

	r->ret = xread(r->fd, buf, sizeof(buf));
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* EAGAIN, ENOTCONN, readers woken by a detach or a signal, poll(). */
TEST_F(hemu, read_states_and_poll)
{
	static uint8_t buf[MUSER_READ_BUF_MIN];
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	struct pollfd p = { .events = POLLIN | POLLOUT };
	struct reader rd = { .ret = 0 };
	struct async_access a;
	struct emu_req r;
	int other = other_ctl(self), blocking;

	ASSERT_LE(0, other);
	blocking = ctl_open(self->r.uuid, 0);
	ASSERT_LE(0, blocking);
	EXPECT_EQ(-EAGAIN, xread(self->r.ctl, buf, sizeof(buf)));
	EXPECT_EQ(-ENOTCONN, xread(other, buf, sizeof(buf)));
	EXPECT_EQ(-ENOTCONN, xread(blocking, buf, sizeof(buf)));

	p.fd = self->r.ctl;
	EXPECT_EQ(1, poll(&p, 1, 0));
	EXPECT_EQ(POLLOUT, p.revents & (POLLIN | POLLOUT | POLLERR | POLLHUP));
	p.fd = other;
	EXPECT_EQ(1, poll(&p, 1, 0));
	EXPECT_EQ(POLLERR, p.revents & (POLLIN | POLLOUT | POLLERR | POLLHUP));
	ASSERT_EQ(0, async_start(&a, &self->r.c, BAR0, 0xe8, 4, false));
	ASSERT_TRUE(wait_readable(self->r.ctl));
	p.fd = self->r.ctl;
	EXPECT_EQ(1, poll(&p, 1, 0));
	EXPECT_EQ(POLLIN | POLLOUT, p.revents & (POLLIN | POLLOUT | POLLERR | POLLHUP));
	ASSERT_EQ(1, emu_next_request(self->r.ctl, &r, WAIT_MS));
	EXPECT_LT(0, reply_ok(self->r.ctl, &r));
	EXPECT_EQ(4, access_end(&a, self->timeout));

	/* A reader blocked in read() is woken by its own detach. */
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DETACH, NULL));
	ASSERT_EQ(0, ctl_attach(blocking, &self->r.layout));
	rd.fd = blocking;
	ASSERT_EQ(0, pthread_create(&rd.thread, NULL, reader_fn, &rd));
	sleep_ms(100);
	EXPECT_FALSE(__atomic_load_n(&rd.done, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, xioctl(blocking, MUSER_IOC_DETACH, NULL));
	pthread_join(rd.thread, NULL);
	EXPECT_EQ(-ENOTCONN, rd.ret);

	/* ... or by a signal without SA_RESTART. */
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, ctl_attach(blocking, &self->r.layout));
	rd.done = 0;
	ASSERT_EQ(0, pthread_create(&rd.thread, NULL, reader_fn, &rd));
	sleep_ms(100);
	EXPECT_FALSE(__atomic_load_n(&rd.done, __ATOMIC_ACQUIRE));
	pthread_kill(rd.thread, SIGUSR1);
	pthread_join(rd.thread, NULL);
	EXPECT_EQ(-EINTR, rd.ret);

	/* Taken over: EPOLLERR and ENOTCONN for the old one. */
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_TAKEOVER, &self->r.layout));
	p.fd = blocking;
	EXPECT_EQ(1, poll(&p, 1, 0));
	EXPECT_EQ(POLLERR, p.revents & (POLLIN | POLLOUT | POLLERR | POLLHUP));
	EXPECT_EQ(-ENOTCONN, xread(blocking, buf, sizeof(buf)));
	close(blocking);
	close(other);
}

/* ------------------------------------------------------------ layouts */

/*
 * Edge values attach_cases.h users (emu_proto, devmem) do not try;
 * each is also tried as a TAKEOVER, alone and over a running emulator.
 */
ATTACH_FIXTURE(edge, layout_default);

#define EDGE(name, expect_, body) ATTACH_CASE(edge, name, expect_, body)
#define RG(i)	(info->regions[VFIO_PCI_##i##_REGION_INDEX])
#define IQ(i)	(info->irqs[VFIO_PCI_##i##_IRQ_INDEX])
#define AR(i)	(info->mmap_areas[i])
#define RWF	(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)
#define ONE_AREA(r, o, s) do {						\
	info->num_mmap_areas = 1;					\
	AR(0).region = (r);						\
	AR(0).offset = (o);						\
	AR(0).size = (s);						\
} while (0)

EDGE(argsz_one, -EINVAL, info->argsz = 1);
EDGE(argsz_minus_one, -EINVAL, info->argsz = sizeof(*info) - 1);
EDGE(argsz_max, 0, info->argsz = U32_MAX);
EDGE(version_max, -EINVAL, info->version = U32_MAX);
EDGE(no_flags, 0, info->flags = 0);
EDGE(flags_bit1, -EINVAL, info->flags |= 1u << 1);
EDGE(flags_all, -EINVAL, info->flags = U32_MAX);
EDGE(num_regions_0, -EINVAL, info->num_regions = 0);
EDGE(num_regions_9_no_vga, 0, info->num_regions = 9);
EDGE(num_regions_max, -EINVAL, info->num_regions = U32_MAX);
EDGE(num_irqs_0, -EINVAL, info->num_irqs = 0);
EDGE(num_irqs_max, -EINVAL, info->num_irqs = U32_MAX);
EDGE(bar_0, 0, RG(BAR0).size = 0);
EDGE(bar_1, 0, RG(BAR0).size = 1);
EDGE(bar_255, -EINVAL, RG(BAR0).size = 255);
EDGE(bar_256, 0, RG(BAR0).size = 256);
EDGE(bar_4096, 0, RG(BAR0).size = 4096);
EDGE(bar_4097, -EINVAL, RG(BAR0).size = 4097);
EDGE(bar_3m, -EINVAL, RG(BAR0).size = 3ull << 20);
EDGE(bar_1t, 0, RG(BAR0).size = 1ull << 40);
EDGE(bar_1t_plus_page, -EINVAL, RG(BAR0).size = (1ull << 40) + PG);
EDGE(bar_2p63, -EINVAL, RG(BAR0).size = 1ull << 63);
EDGE(bar_max, -EINVAL, RG(BAR0).size = U64_MAX);
EDGE(bar5_1t, 0, RG(BAR5).size = 1ull << 40; RG(BAR5).flags = RWF);
EDGE(rom_1t, 0, RG(ROM).size = 1ull << 40;
     RG(ROM).flags = VFIO_REGION_INFO_FLAG_READ);
EDGE(bar_no_access, 0, RG(BAR0).flags = 0);
EDGE(bar_flag_caps, -EINVAL, RG(BAR0).flags |= VFIO_REGION_INFO_FLAG_CAPS);
EDGE(bar_flag_bit31, -EINVAL, RG(BAR0).flags |= 1u << 31);
EDGE(bar_pad, -EINVAL, RG(BAR0).pad = 1);
EDGE(absent_bar_pad, -EINVAL, RG(BAR1).pad = 7);
EDGE(config_255, -EINVAL, RG(CONFIG).size = 255);
EDGE(config_257, -EINVAL, RG(CONFIG).size = 257);
EDGE(config_4095, -EINVAL, RG(CONFIG).size = 4095);
EDGE(config_4097, -EINVAL, RG(CONFIG).size = 4097);
EDGE(config_read_only, -EINVAL, RG(CONFIG).flags = VFIO_REGION_INFO_FLAG_READ);
EDGE(config_no_access, -EINVAL, RG(CONFIG).flags = 0);
EDGE(vga_plus_one, -EINVAL, info->num_regions = 9;
     RG(VGA).size = 0xc0001; RG(VGA).flags = RWF);
EDGE(vga_no_access, 0, info->num_regions = 9; RG(VGA).size = 0xc0000);
EDGE(area_last_page_of_1t, 0, RG(BAR0).size = 1ull << 40;
     ONE_AREA(BAR0, (1ull << 40) - PG, PG));
EDGE(area_whole_1t, 0, RG(BAR0).size = 1ull << 40;
     ONE_AREA(BAR0, 0, 1ull << 40));
EDGE(area_state_index, -EINVAL, ONE_AREA(MUSER_STATE_INDEX, 0, PG));
EDGE(area_offset_2p63, -EINVAL, ONE_AREA(BAR0, 1ull << 63, PG));
EDGE(area_size_2p63, -EINVAL, ONE_AREA(BAR0, 0, 1ull << 63));
EDGE(area_size_max, -EINVAL, ONE_AREA(BAR0, PG, U64_MAX & ~(PG - 1)));
EDGE(area_on_bar_without_access, 0, RG(BAR0).flags = 0; ONE_AREA(BAR0, 0, PG));
EDGE(areas_same_offset_two_bars, 0, ONE_AREA(BAR0, 0, PG);
     info->num_mmap_areas = 2; AR(1).region = BAR2; AR(1).size = PG);
EDGE(areas_16_last_bad, -EINVAL, int i;
     info->num_mmap_areas = MUSER_MAX_MMAP_AREAS;
     for (i = 0; i < MUSER_MAX_MMAP_AREAS; i++) {
	     AR(i).region = BAR2; AR(i).offset = i * PG; AR(i).size = PG;
     }
     AR(15).offset += 8);
EDGE(intx_flag_noresize, -EINVAL, IQ(INTX).flags |= VFIO_IRQ_INFO_NORESIZE);
EDGE(intx_count_max, -EINVAL, IQ(INTX).count = U32_MAX);
EDGE(msi_2, 0, IQ(MSI).count = 2);
EDGE(msi_16, 0, IQ(MSI).count = 16);
EDGE(msi_31, -EINVAL, IQ(MSI).count = 31);
EDGE(msi_33, -EINVAL, IQ(MSI).count = 33);
EDGE(msi_max, -EINVAL, IQ(MSI).count = U32_MAX);
EDGE(msi_flag_maskable, -EINVAL, IQ(MSI).flags |= VFIO_IRQ_INFO_MASKABLE);
EDGE(msi_flag_eventfd, 0, IQ(MSI).flags |= VFIO_IRQ_INFO_EVENTFD);
EDGE(msi_flag_bit31, -EINVAL, IQ(MSI).flags |= 1u << 31);
EDGE(msix_1, 0, IQ(MSIX).count = 1);
EDGE(msix_2047, 0, IQ(MSIX).count = 2047);
EDGE(msix_2049, -EINVAL, IQ(MSIX).count = 2049);
EDGE(msix_max, -EINVAL, IQ(MSIX).count = U32_MAX);
EDGE(msix_flag_automasked, -EINVAL, IQ(MSIX).count = 8;
     IQ(MSIX).flags = VFIO_IRQ_INFO_AUTOMASKED);
EDGE(err_flag_maskable, -EINVAL, IQ(ERR).count = 1;
     IQ(ERR).flags = VFIO_IRQ_INFO_MASKABLE);
EDGE(err_max, -EINVAL, IQ(ERR).count = U32_MAX);
/* Device-specific regions: one migration region, read-write, past its header. */
#define DR(i)	(info->dev_regions[i])
#define ONE_MIG(sz) do {						\
	info->num_dev_regions = 1;					\
	DR(0).region.flags = RWF;					\
	DR(0).region.size = (sz);					\
	DR(0).type = VFIO_REGION_TYPE_MIGRATION_DEPRECATED;		\
	DR(0).subtype = VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED;	\
} while (0)
EDGE(dev_region_mig, 0, ONE_MIG(8192));
EDGE(dev_region_mig_no_vga, 0, info->num_regions = 8; ONE_MIG(8192));
EDGE(dev_region_hdr_only, -EINVAL, ONE_MIG(MUSER_MIG_HDR_SIZE));
EDGE(dev_region_hdr_plus_one, 0, ONE_MIG(MUSER_MIG_HDR_SIZE + 1));
EDGE(dev_region_window_max, 0, ONE_MIG(1ull << 40));
EDGE(dev_region_past_window, -EINVAL, ONE_MIG((1ull << 40) + 1));
EDGE(dev_region_size_0, -EINVAL, ONE_MIG(0));
EDGE(dev_region_read_only, -EINVAL, ONE_MIG(8192); DR(0).region.flags = VFIO_REGION_INFO_FLAG_READ);
EDGE(dev_region_posted, -EINVAL, ONE_MIG(8192); DR(0).region.flags |= MUSER_REGION_F_POSTED_WRITES);
EDGE(dev_region_pad, -EINVAL, ONE_MIG(8192); DR(0).region.pad = 1);
EDGE(dev_region_other_type, -EINVAL, ONE_MIG(8192); DR(0).type = VFIO_REGION_TYPE_GFX);
EDGE(dev_region_other_subtype, -EINVAL, ONE_MIG(8192); DR(0).subtype = 2);
EDGE(dev_region_two_mig, -EINVAL, ONE_MIG(8192); info->num_dev_regions = 2; DR(1) = DR(0));
EDGE(dev_region_count_max, -EINVAL, info->num_dev_regions = U32_MAX);
EDGE(dev_region_count_past, -EINVAL, info->num_dev_regions = MUSER_MAX_DEV_REGIONS + 1);
EDGE(dev_region_unused_set, -EINVAL, DR(2).region.size = 8192);
EDGE(dev_region_info_pad, -EINVAL, info->pad = 1);

ATTACH_TEST(edge)

/* The same layouts through MUSER_IOC_TAKEOVER. */
TEST_F(edge, takeover)
{
	struct {
		struct muser_device_info info;
		uint8_t tail[64];
	} good, big;
	int run, want;

	SKIP_IF_SETUP_SKIPPED();
	memset(&good, 0, sizeof(good));
	edge_known_good(&good.info);
	big = good;
	variant->modify(&big.info);
	/* With no emulator a takeover is an attach. */
	EXPECT_EQ(variant->expect, xioctl(self->ctl, MUSER_IOC_TAKEOVER, &big.info));
	if (!variant->expect)
		ASSERT_EQ(0, xioctl(self->ctl, MUSER_IOC_DETACH, NULL));
	/* Over a running emulator: only its own layout. */
	run = ctl_open(self->uuid, O_NONBLOCK);
	ASSERT_LE(0, run);
	ASSERT_EQ(0, ctl_attach(run, &good.info));
	want = variant->expect ? variant->expect :
	       same_layout(&big.info, &good.info) ? 0 : -EBUSY;
	EXPECT_EQ(want, xioctl(self->ctl, MUSER_IOC_TAKEOVER, &big.info));
	EXPECT_EQ(want ? 0 : -ENOTCONN, xioctl(run, MUSER_IOC_DETACH, NULL));
	close(run);
}

/* While a VMM has the device open its layout stays. */
TEST_F(hemu, layout_in_use)
{
	struct vfio_region_info ri;
	struct muser_device_info plain;
	int other = other_ctl(self);

	ASSERT_LE(0, other);
	layout_default(&plain);		/* no device memory: different */
	EXPECT_EQ(-EBUSY, ctl_attach(other, &self->r.layout));
	EXPECT_EQ(-EBUSY, xioctl(other, MUSER_IOC_TAKEOVER, &plain));
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DETACH, NULL));
	EXPECT_EQ(-EBUSY, ctl_attach(other, &plain));
	EXPECT_EQ(-EBUSY, xioctl(other, MUSER_IOC_TAKEOVER, &plain));
	ASSERT_EQ(0, get_region_info(self->r.c.device, BAR2, &ri));
	EXPECT_TRUE(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
	ASSERT_EQ(0, ctl_attach(other, &self->r.layout));
	ASSERT_EQ(0, xioctl(other, MUSER_IOC_DETACH, NULL));

	/* With the VMM gone any valid layout replaces it. */
	vfio_client_close(&self->r.c);
	ASSERT_EQ(0, ctl_attach(other, &plain));
	ASSERT_EQ(0, rig_open_vmm(&self->r, NULL));
	ASSERT_EQ(0, get_region_info(self->r.c.device, BAR2, &ri));
	EXPECT_FALSE(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
	EXPECT_EQ(-EBUSY, ctl_attach(self->r.ctl, &self->r.layout));
	close(other);
}

/* ------------------------------------------------------------ ioctls */

struct ioc {
	const char *name;
	unsigned long cmd;
	size_t size;
};

static const struct ioc iocs[] = {
	{ "ATTACH", MUSER_IOC_ATTACH, sizeof(struct muser_device_info) },
	{ "TAKEOVER", MUSER_IOC_TAKEOVER, sizeof(struct muser_device_info) },
	{ "TRIGGER_IRQ", MUSER_IOC_TRIGGER_IRQ, sizeof(struct muser_irq_trigger) },
	{ "GET_IRQ_STATE", MUSER_IOC_GET_IRQ_STATE, sizeof(struct muser_irq_state) },
	{ "DMA_MAP", MUSER_IOC_DMA_MAP, sizeof(struct muser_dma_map) },
	{ "DMA_RELEASE", MUSER_IOC_DMA_RELEASE, sizeof(struct muser_dma_map) },
	{ "DMA_RW", MUSER_IOC_DMA_RW, sizeof(struct muser_dma_rw) },
};

/*
 * A valid argument for @cmd in @p (@argsz in it): what the rig's emulator
 * may do without changing anything that lasts.
 */
static void ioc_arg(unsigned long cmd, void *p, uint32_t argsz, void *data)
{
	struct muser_device_info *info = p;
	struct muser_irq_trigger *t = p;
	struct muser_irq_state *st = p;
	struct muser_dma_map *m = p;
	struct muser_dma_rw *rw = p;

	switch (cmd) {
	case MUSER_IOC_ATTACH:
	case MUSER_IOC_TAKEOVER:
		layout_hostile(info);
		info->argsz = argsz;
		break;
	case MUSER_IOC_TRIGGER_IRQ:
		*t = (struct muser_irq_trigger){ argsz, VFIO_PCI_INTX_IRQ_INDEX, 0, 1 };
		break;
	case MUSER_IOC_GET_IRQ_STATE:
		memset(st, 0, sizeof(*st));
		st->argsz = argsz;
		break;
	case MUSER_IOC_DMA_MAP:
	case MUSER_IOC_DMA_RELEASE:
		*m = (struct muser_dma_map){ argsz, 0, GUEST_IOVA, PG, 0 };
		break;
	case MUSER_IOC_DMA_RW:
		*rw = (struct muser_dma_rw){ argsz, 0, GUEST_IOVA, 8, (uintptr_t)data };
		break;
	}
}

/* Arguments the kernel cannot read (or write back): EFAULT, no effect. */
TEST_F(hemu, ioctl_bad_pointers)
{
	uint8_t *g = guarded_alloc(2 * PG), *ro, data[8];
	size_t i, k;

	ASSERT_NE(NULL, g);
	for (i = 0; i < ARRAY_SIZE(iocs); i++) {
		const struct ioc *c = &iocs[i];
		void *bad[] = { NULL, (void *)1, (void *)0xffffffff81000000ul,
				g + 2 * PG, g + 2 * PG - c->size + 8 };

		/* The last: all but its last 8 bytes readable. */
		ioc_arg(c->cmd, g + 2 * PG - c->size, c->size, data);
		memmove(g + 2 * PG - c->size + 8, g + 2 * PG - c->size, c->size - 8);
		for (k = 0; k < ARRAY_SIZE(bad); k++)
			EXPECT_EQ(-EFAULT, xioctl(self->r.ctl, c->cmd, bad[k]))
				TH_LOG("%s, pointer %zu", c->name, k);
	}
	/* Written back to read-only memory: nothing kept. */
	ro = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	ioc_arg(MUSER_IOC_DMA_MAP, ro, sizeof(struct muser_dma_map), NULL);
	ioc_arg(MUSER_IOC_GET_IRQ_STATE, ro + 256, sizeof(struct muser_irq_state), NULL);
	ASSERT_EQ(0, mprotect(ro, PG, PROT_READ));
	EXPECT_EQ(-EFAULT, xioctl(self->r.ctl, MUSER_IOC_DMA_MAP, ro));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	EXPECT_EQ(-EINVAL, _test_dma_release(self->r.ctl, GUEST_IOVA, PG));
	EXPECT_EQ(-EFAULT, xioctl(self->r.ctl, MUSER_IOC_GET_IRQ_STATE, ro + 256));
	/* Read-only is fine where nothing is written back. */
	EXPECT_EQ(-ENOENT, xioctl(self->r.ctl, MUSER_IOC_TRIGGER_IRQ,
				  (ioc_arg(MUSER_IOC_TRIGGER_IRQ, g, sizeof(struct muser_irq_trigger), NULL),
				   mprotect(g, PG, PROT_READ), g)));
	munmap(ro, PG);
	guarded_free(g, 2 * PG);
}

/* Arguments in the control node's own mappings. */
TEST_F(hemu, ioctl_args_in_own_mappings)
{
	uint8_t *dev, *state, *win, data[8];
	struct muser_dma_map *m;
	int other = other_ctl(self);

	ASSERT_LE(0, other);
	dev = xmmap(self->r.ctl, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE,
		    PROT_READ | PROT_WRITE, MAP_SHARED);
	state = xmmap(self->r.ctl, MUSER_STATE_OFFSET, 2 * PG,
		      PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(NULL, dev);
	ASSERT_NE(NULL, state);
	test_dma_map(self->r.ctl, GUEST_IOVA, 2 * PG, MUSER_DMA_F_WRITE);
	win = xmmap(self->r.ctl, MUSER_DMA_OFFSET + GUEST_IOVA, 2 * PG,
		    PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(NULL, win);

	/* DMA_MAP's offset written back into device memory. */
	m = (struct muser_dma_map *)dev;
	ioc_arg(MUSER_IOC_DMA_MAP, m, sizeof(*m), NULL);
	EXPECT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DMA_MAP, m));
	EXPECT_EQ(MUSER_DMA_OFFSET + GUEST_IOVA, m->offset);
	EXPECT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DMA_RELEASE, m));
	/* The irq state into the state area; a copy into the window. */
	ioc_arg(MUSER_IOC_GET_IRQ_STATE, state, sizeof(struct muser_irq_state), NULL);
	EXPECT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_GET_IRQ_STATE, state));
	ioc_arg(MUSER_IOC_DMA_RW, win + PG, sizeof(struct muser_dma_rw), win);
	EXPECT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DMA_RW, win + PG));
	/* A layout read from guest memory, by another file: EBUSY. */
	ioc_arg(MUSER_IOC_ATTACH, win, sizeof(struct muser_device_info), NULL);
	EXPECT_EQ(-EBUSY, xioctl(other, MUSER_IOC_ATTACH, win));
	(void)data;
	munmap(win, 2 * PG);
	munmap(state, 2 * PG);
	munmap(dev, AREA_SIZE);
	test_dma_release(self->r.ctl, GUEST_IOVA, 2 * PG);
	close(other);
}

/* argsz below the structure: EINVAL; at or above: as usual. */
TEST_F(hemu, ioctl_argsz)
{
	const uint32_t sizes[] = { 0, 1, 0, 0, 1, U32_MAX };
	uint8_t arg[sizeof(struct muser_device_info) + 64] __attribute__((aligned(8)));
	uint8_t data[8];
	int efd = eventfd(0, EFD_CLOEXEC);
	size_t i, k;

	ASSERT_LE(0, efd);
	ASSERT_EQ(0, set_irq_eventfd(self->r.c.device, VFIO_PCI_INTX_IRQ_INDEX, 0, efd));
	for (i = 0; i < ARRAY_SIZE(iocs); i++) {
		const struct ioc *c = &iocs[i];
		bool attach = c->cmd == MUSER_IOC_ATTACH || c->cmd == MUSER_IOC_TAKEOVER;

		for (k = 0; k < ARRAY_SIZE(sizes); k++) {
			/* 0, 1, size - 1, size, size + 1, U32_MAX */
			uint32_t argsz = k == 2 ? c->size - 1 : k == 3 ? c->size :
					 k == 4 ? c->size + 1 : sizes[k];
			bool ok = argsz >= c->size;
			int ret;

			memset(arg, 0, sizeof(arg));
			ioc_arg(c->cmd, arg, argsz, data);
			if (attach)
				ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DETACH, NULL));
			if (ok && c->cmd == MUSER_IOC_DMA_RELEASE)
				test_dma_map(self->r.ctl, GUEST_IOVA, PG, 0);
			ret = xioctl(self->r.ctl, c->cmd, arg);
			EXPECT_EQ(ok ? 0 : -EINVAL, ret) TH_LOG("%s, argsz %u", c->name, argsz);
			if (attach && ret)
				ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
			if (!ret && c->cmd == MUSER_IOC_DMA_MAP)
				test_dma_release(self->r.ctl, GUEST_IOVA, PG);
		}
	}
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	close(efd);
}

/* Types do_vfs_ioctl() handles for any file; never sent at random. */
static bool vfs_ioctl_type(unsigned int type)
{
	return type == 'T' || type == 'X' || type == 'f' || type == 0x94 ||
	       type == 0x15 || type == 0;
}

static bool muser_cmd(unsigned long cmd)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(iocs); i++)
		if (iocs[i].cmd == cmd)
			return true;
	return cmd == MUSER_IOC_DETACH || cmd == MUSER_IOC_RING_SETUP ||
	       cmd == MUSER_IOC_RING_ENTER;
}

/* Every other number: ENOTTY, from the emulator and from other files. */
TEST_F(hemu, ioctl_unknown)
{
	static const unsigned long vfio[] = {
		VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU,
		VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO,
		VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_SET_IRQS, VFIO_DEVICE_RESET,
		VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA,
	};
	static uint8_t arg[1 << 16] __attribute__((aligned(8)));
	const unsigned int dirs[] = { _IOC_NONE, _IOC_READ, _IOC_WRITE,
				      _IOC_READ | _IOC_WRITE };
	unsigned int nr, d, bad = 0, tried = 0;
	uint64_t seed = (uint64_t)now_ms() ^ getpid();
	int fds[2] = { self->r.ctl, other_ctl(self) }, f, i;

	ASSERT_LE(0, fds[1]);
	for (f = 0; f < 2; f++) {
		for (nr = 0; nr < 256; nr++)
			for (d = 0; d < ARRAY_SIZE(dirs); d++) {
				unsigned long cmd = _IOC(dirs[d], MUSER_IOC_MAGIC, nr,
							 d ? 8 * (nr % 64) : 0);
				int ret;

				if (muser_cmd(cmd))
					continue;
				tried++;
				ret = xioctl(fds[f], cmd, arg);
				if (ret != -ENOTTY && bad++ < 8)
					TH_LOG("cmd 0x%lx: %d", cmd, ret);
			}
		for (i = 0; i < (int)ARRAY_SIZE(vfio); i++, tried++)
			if (xioctl(fds[f], vfio[i], arg) != -ENOTTY && bad++ < 8)
				TH_LOG("VFIO cmd 0x%lx answered", vfio[i]);
		for (i = 0; i < 20000; i++) {
			unsigned long cmd;

			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			cmd = (uint32_t)(seed >> 32);
			if (vfs_ioctl_type(_IOC_TYPE(cmd)) || muser_cmd(cmd))
				continue;
			tried++;
			if (xioctl(fds[f], cmd, arg) != -ENOTTY && bad++ < 8)
				TH_LOG("cmd 0x%lx answered", cmd);
		}
	}
	TH_LOG("%u unknown ioctl numbers tried", tried);
	EXPECT_EQ(0, bad);
	close(fds[1]);
}

/* What a file that is not the emulator gets from every call. */
static int not_the_emulator(int fd, const char **what)
{
	static uint8_t buf[MUSER_READ_BUF_MIN];
	uint8_t arg[sizeof(struct muser_irq_state)] __attribute__((aligned(8)));
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t data[8];
	size_t i;
	void *m;

	*what = "DETACH";
	if (xioctl(fd, MUSER_IOC_DETACH, NULL) != -ENOTCONN)
		return -1;
	for (i = 0; i < ARRAY_SIZE(iocs); i++) {
		unsigned long cmd = iocs[i].cmd;
		int want = -ENOTCONN, ret;

		if (cmd == MUSER_IOC_ATTACH || cmd == MUSER_IOC_TAKEOVER)
			continue;
		ioc_arg(cmd, arg, iocs[i].size, data);
		ret = xioctl(fd, cmd, arg);
		*what = iocs[i].name;
		/* The VMM's irq configuration is no secret: either is fine. */
		if (cmd == MUSER_IOC_GET_IRQ_STATE ? ret && ret != want : ret != want)
			return -1;
	}
	*what = "read";
	if (xread(fd, buf, sizeof(buf)) != -ENOTCONN)
		return -1;
	*what = "write";
	put_reply(buf, 0, 1, 0, 0, NULL, 0, false);
	if (xwrite(fd, buf, sizeof(struct muser_reply)) != -ENOTCONN)
		return -1;
	*what = "poll";
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLERR) || p.revents & POLLIN)
		return -1;
	*what = "mmap of the DMA window";
	m = xmmap(fd, MUSER_DMA_OFFSET + GUEST_IOVA, PG, PROT_READ, MAP_SHARED);
	if (m || errno != ENOTCONN)
		return -1;
	*what = "mmap of the state area";
	m = xmmap(fd, MUSER_STATE_OFFSET, PG, PROT_READ, MAP_SHARED);
	if (m || errno != ENOTCONN)
		return -1;
	/* Device memory is the device's: any opener maps it. */
	*what = "mmap of device memory";
	m = xmmap(fd, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, PG, PROT_READ, MAP_SHARED);
	if (!m)
		return -1;
	munmap(m, PG);
	return 0;
}

/* Never attached, detached, taken over: ENOTCONN everywhere. */
TEST_F(hemu, ioctl_not_attached)
{
	int other = other_ctl(self);
	const char *what = "";

	ASSERT_LE(0, other);
	EXPECT_EQ(0, not_the_emulator(other, &what)) TH_LOG("never attached: %s", what);
	EXPECT_EQ(-EBUSY, ctl_attach(other, &self->r.layout));
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DETACH, NULL));
	EXPECT_EQ(0, not_the_emulator(self->r.ctl, &what)) TH_LOG("detached: %s", what);
	ASSERT_EQ(0, ctl_attach(other, &self->r.layout));
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_TAKEOVER, &self->r.layout));
	EXPECT_EQ(0, not_the_emulator(other, &what)) TH_LOG("taken over: %s", what);
	close(other);
}

/* TRIGGER_IRQ and GET_IRQ_STATE at every edge of the layout. */
TEST_F(hemu, irq_edges)
{
	static const struct {
		uint32_t index, start, count;
		int want;
	} trig[] = {
		{ VFIO_PCI_INTX_IRQ_INDEX, 0, 1, -ENOENT },
		{ VFIO_PCI_MSI_IRQ_INDEX, 0, 1, -ENOENT },
		{ VFIO_PCI_MSIX_IRQ_INDEX, 0, 1, -EINVAL },
		{ VFIO_PCI_ERR_IRQ_INDEX, 0, 1, -EINVAL },
		{ VFIO_PCI_REQ_IRQ_INDEX, 0, 1, -EINVAL },
		{ VFIO_PCI_NUM_IRQS, 0, 1, -EINVAL },
		{ U32_MAX, 0, 1, -EINVAL },
		{ VFIO_PCI_INTX_IRQ_INDEX, 0, 0, -EINVAL },
		{ VFIO_PCI_INTX_IRQ_INDEX, 1, 1, -EINVAL },
		{ VFIO_PCI_INTX_IRQ_INDEX, 0, 2, -EINVAL },
		{ VFIO_PCI_INTX_IRQ_INDEX, U32_MAX, 1, -EINVAL },
		{ VFIO_PCI_INTX_IRQ_INDEX, 1, U32_MAX, -EINVAL },
		{ VFIO_PCI_MSI_IRQ_INDEX, 0, U32_MAX, -EINVAL },
		{ VFIO_PCI_MSI_IRQ_INDEX, U32_MAX, U32_MAX, -EINVAL },
	};
	struct muser_irq_state st;
	uint32_t idx[] = { 0, 1, 2, 3, 4, 5, 6, U32_MAX };
	int efd = eventfd(0, EFD_CLOEXEC);
	size_t i;

	ASSERT_LE(0, efd);
	for (i = 0; i < ARRAY_SIZE(trig); i++)
		EXPECT_EQ(trig[i].want, emu_trigger_irq(self->r.ctl, trig[i].index,
							trig[i].start, trig[i].count))
			TH_LOG("index %u start %u count %u", trig[i].index,
			       trig[i].start, trig[i].count);
	ASSERT_EQ(0, set_irq_eventfd(self->r.c.device, VFIO_PCI_MSI_IRQ_INDEX, 0, efd));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
	EXPECT_EQ(1, eventfd_wait(efd, WAIT_MS));
	for (i = 0; i < ARRAY_SIZE(idx); i++) {
		uint32_t index = idx[i];

		EXPECT_EQ(index < MUSER_NUM_IRQS ? 0 : -EINVAL,
			  emu_get_irq_state(self->r.ctl, index, &st))
			TH_LOG("index %u", index);
	}
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, VFIO_PCI_MSI_IRQ_INDEX, &st));
	EXPECT_EQ(1, st.count);
	EXPECT_TRUE(irq_state_enabled(&st, 0));
	close(efd);
}

/* ------------------------------------------------------- guest memory */

/* mmap() as the syscall: offsets past 2^63 and no libc checks. */
static void *raw_mmap(int fd, uint64_t off, uint64_t len, int prot, int flags)
{
	long p = syscall(SYS_mmap, NULL, len, prot, flags, fd, off);

	return p < 0 && p > -4096 ? NULL : (void *)p;
}

static const struct dma_case {
	const char *what;
	uint64_t iova, size;
	uint32_t flags;
	int want;		/* DMA_MAP's: 0 or -errno */
} dma_cases[] = {
	{ "one byte", GUEST_IOVA, 1, 0, 0 },
	{ "two bytes across a page", GUEST_IOVA + PG - 1, 2, 0, 0 },
	{ "the last byte", GUEST_IOVA + GUEST_SIZE - 1, 1, MUSER_DMA_F_WRITE, 0 },
	{ "a byte past the end", GUEST_IOVA + GUEST_SIZE - 1, 2, 0, -EFAULT },
	{ "all of it", GUEST_IOVA, GUEST_SIZE, MUSER_DMA_F_WRITE, 0 },
	{ "iova 0", 0, 1, 0, 0 },
	{ "between the mappings", DMA_SIZE, PG, 0, -EFAULT },
	{ "size 0", GUEST_IOVA, 0, 0, -EINVAL },
	{ "the last iova", MUSER_DMA_MAX_IOVA, 1, 0, -EFAULT },
	{ "past the last iova", MUSER_DMA_MAX_IOVA, 2, 0, -EINVAL },
	{ "iova 2^62", MUSER_DMA_MAX_IOVA + 1, 1, 0, -EINVAL },
	{ "iova 2^63", 1ull << 63, 1, 0, -EINVAL },
	{ "iova U64_MAX", U64_MAX, 1, 0, -EINVAL },
	{ "wrapping", U64_MAX - PG + 1, 2 * PG, 0, -EINVAL },
	{ "size U64_MAX", 0, U64_MAX, 0, -EINVAL },
	{ "2^62 bytes from 1", 1, MUSER_DMA_MAX_IOVA + 1, 0, -EINVAL },
	{ "all 2^62 bytes", 0, MUSER_DMA_MAX_IOVA + 1, 0, -ENOSPC },
	{ "1 TiB", GUEST_IOVA, 1ull << 40, 0, -ENOSPC },
	{ "512 MiB, 4 of them mapped", GUEST_IOVA, 512ul << 20, 0, -EFAULT },
	{ "an unknown flag", GUEST_IOVA, PG, 1u << 2, -EINVAL },
	{ "every flag", GUEST_IOVA, PG, U32_MAX, -EINVAL },
	{ "PROBE", GUEST_IOVA, PG, MUSER_DMA_F_PROBE, 0 },
	{ "PROBE of nothing", 1ull << 40, PG, MUSER_DMA_F_PROBE, -EFAULT },
	{ "WRITE|PROBE", GUEST_IOVA, PG, MUSER_DMA_F_WRITE | MUSER_DMA_F_PROBE, 0 },
};

/*
 * DMA_MAP, DMA_RELEASE and DMA_RW over ranges at every edge: huge ones fail
 * at once, nothing is held after a failure, holds count per chunk up to
 * MUSER_DMA_MAX_HOLDS.
 */
TEST_F_TIMEOUT(hemu, dma_edges, 300)
{
	const int ctl = self->r.ctl;
	uint8_t buf[64];
	long mapped;
	size_t i;
	int n;

	for (i = 0; i < ARRAY_SIZE(dma_cases); i++) {
		const struct dma_case *c = &dma_cases[i];
		uint8_t *data = guarded_alloc(MUSER_DMA_RW_MAX);
		int want_rw = c->want == -EINVAL || c->size > MUSER_DMA_RW_MAX ?
			      -EINVAL : c->want;
		const char *what = c->what;
		struct muser_dma_rw rw;
		uint64_t off = 0;
		int64_t t0 = now_ms(), ms;

		ASSERT_NE(NULL, data);
		EXPECT_EQ(c->want, _test_dma_map(ctl, c->iova, c->size, c->flags, &off))
			TH_LOG("DMA_MAP %s", what);
		ms = now_ms() - t0;
		EXPECT_GT(SLACK_MS, ms) TH_LOG("DMA_MAP %s took %lld ms", what, (long long)ms);
		if (!c->want) {
			EXPECT_EQ(MUSER_DMA_OFFSET + (c->iova & ~(PG - 1)), off) TH_LOG("%s", what);
			EXPECT_EQ(0, _test_dma_release(ctl, c->iova, c->size)) TH_LOG("%s", what);
		}
		EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages")) TH_LOG("%s", what);
		/* A copy writes back what it read: guest memory stays as it is. */
		rw = (struct muser_dma_rw){ sizeof(rw), c->flags & ~MUSER_DMA_F_WRITE,
					    c->iova, c->size, (uintptr_t)data };
		EXPECT_EQ(want_rw, xioctl(ctl, MUSER_IOC_DMA_RW, &rw)) TH_LOG("DMA_RW %s", what);
		if (!want_rw && c->flags & MUSER_DMA_F_WRITE)
			EXPECT_EQ(0, _test_dma_rw(ctl, c->iova, data, c->size, true));
		if (!want_rw && c->iova >= GUEST_IOVA)
			EXPECT_EQ(0, memcmp(data, self->guest + (c->iova - GUEST_IOVA),
					    c->size)) TH_LOG("%s", what);
		guarded_free(data, MUSER_DMA_RW_MAX);
	}

	/* Releases of what is not held, of a range partly held, twice. */
	EXPECT_EQ(-EINVAL, _test_dma_release(ctl, GUEST_IOVA, PG));
	test_dma_map(ctl, GUEST_IOVA, PG, 0);
	mapped = dma_stat(self->r.uuid, "mapped_pages");
	EXPECT_LT(0, mapped);
	EXPECT_EQ(-EINVAL, _test_dma_release(ctl, GUEST_IOVA, CHUNK + PG));
	EXPECT_EQ(-EINVAL, _test_dma_release(ctl, GUEST_IOVA, 0));
	EXPECT_EQ(-EINVAL, _test_dma_release(ctl, U64_MAX, 2));
	EXPECT_EQ(mapped, dma_stat(self->r.uuid, "mapped_pages"));
	/* Holds count per chunk: any range in it releases one. */
	EXPECT_EQ(0, _test_dma_release(ctl, GUEST_IOVA + CHUNK - 1, 1));
	EXPECT_EQ(-EINVAL, _test_dma_release(ctl, GUEST_IOVA, PG));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));

	/* The hold limit; a range over a full chunk takes nothing. */
	for (n = 0; n < MUSER_DMA_MAX_HOLDS; n++)
		if (_test_dma_map(ctl, GUEST_IOVA + PG * (n % 512), 1, 0, NULL))
			break;
	EXPECT_EQ(MUSER_DMA_MAX_HOLDS, n);
	EXPECT_EQ(-EOVERFLOW, _test_dma_map(ctl, GUEST_IOVA, PG, 0, NULL));
	EXPECT_EQ(-EOVERFLOW, _test_dma_map(ctl, GUEST_IOVA + CHUNK - PG, 2 * PG, 0, NULL));
	EXPECT_EQ(-EINVAL, _test_dma_release(ctl, GUEST_IOVA + CHUNK, PG));
	/* Copies need no hold. */
	EXPECT_EQ(0, _test_dma_rw(ctl, GUEST_IOVA, buf, sizeof(buf), false));
	for (n = 0; n < MUSER_DMA_MAX_HOLDS; n++)
		if (_test_dma_release(ctl, GUEST_IOVA, PG))
			break;
	EXPECT_EQ(MUSER_DMA_MAX_HOLDS, n);
	EXPECT_EQ(-EINVAL, _test_dma_release(ctl, GUEST_IOVA, PG));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
}

/* DMA_RW's buffer in every kind of memory the emulator has. */
TEST_F(hemu, dma_rw_buffers)
{
	const int ctl = self->r.ctl;
	uint8_t *dev, *state, *win0, *wing, *ro, *g;
	struct muser_dma_rw *rw;
	uint8_t buf[64];

	dev = xmmap(ctl, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE,
		    PROT_READ | PROT_WRITE, MAP_SHARED);
	state = xmmap(ctl, MUSER_STATE_OFFSET, PG, PROT_READ | PROT_WRITE, MAP_SHARED);
	/* iova 0: the first page pinned, the second not. */
	test_dma_map(ctl, 0, PG, MUSER_DMA_F_WRITE);
	win0 = xmmap(ctl, MUSER_DMA_OFFSET, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED);
	test_dma_map(ctl, GUEST_IOVA, PG, MUSER_DMA_F_WRITE);
	wing = xmmap(ctl, MUSER_DMA_OFFSET + GUEST_IOVA, PG, PROT_READ | PROT_WRITE,
		     MAP_SHARED);
	ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g = guarded_alloc(PG);
	ASSERT_NE(NULL, dev);
	ASSERT_NE(NULL, state);
	ASSERT_NE(NULL, win0);
	ASSERT_NE(NULL, wing);
	ASSERT_NE(MAP_FAILED, ro);
	ASSERT_NE(NULL, g);

	/* Device memory, the state area, a pinned page of the window. */
	EXPECT_EQ(0, _test_dma_rw(ctl, GUEST_IOVA + 100, dev + 8, 64, false));
	EXPECT_EQ(0, memcmp(dev + 8, self->guest + 100, 64));
	EXPECT_EQ(0, _test_dma_rw(ctl, GUEST_IOVA + 200, state + 8, 64, false));
	EXPECT_EQ(0, memcmp(state + 8, self->guest + 200, 64));
	EXPECT_EQ(0, _test_dma_rw(ctl, GUEST_IOVA + 300, win0 + 8, 64, false));
	EXPECT_EQ(0, memcmp(win0 + 8, self->guest + 300, 64));
	EXPECT_EQ(0, memcmp(win0 + 8, (uint8_t *)self->r.c.dma + 8, 64));
	/* The window onto the very page copied, elsewhere in it. */
	EXPECT_EQ(0, _test_dma_rw(ctl, GUEST_IOVA, wing + 2048, 64, false));
	EXPECT_EQ(0, memcmp(self->guest + 2048, self->guest, 64));
	memcpy(buf, self->guest + 1000, 64);
	EXPECT_EQ(0, _test_dma_rw(ctl, GUEST_IOVA + 3000, wing + 1000, 64, true));
	EXPECT_EQ(0, memcmp(self->guest + 3000, buf, 64));
	/* An unpinned page of the window: the copy faults, no SIGBUS. */
	EXPECT_EQ(-EFAULT, _test_dma_rw(ctl, GUEST_IOVA, win0 + PG + 8, 64, false));
	EXPECT_EQ(-EFAULT, _test_dma_rw(ctl, GUEST_IOVA, win0 + PG + 8, 64, true));
	/* Read-only memory: a source, not a destination. */
	EXPECT_EQ(0, _test_dma_rw(ctl, GUEST_IOVA + PG, ro, 64, true));
	EXPECT_EQ(-EFAULT, _test_dma_rw(ctl, GUEST_IOVA, ro, 64, false));
	/* NULL, the kernel, across a guard page. */
	EXPECT_EQ(-EFAULT, _test_dma_rw(ctl, GUEST_IOVA, NULL, 64, false));
	EXPECT_EQ(-EFAULT, _test_dma_rw(ctl, GUEST_IOVA, (void *)0xffffffff81000000ul, 64, true));
	EXPECT_EQ(-EFAULT, _test_dma_rw(ctl, GUEST_IOVA, g + PG - 32, 64, false));
	EXPECT_EQ(-EFAULT, _test_dma_rw(ctl, GUEST_IOVA, g + PG - 32, 64, true));
	/* Its own argument as the buffer. */
	rw = (struct muser_dma_rw *)g;
	*rw = (struct muser_dma_rw){ sizeof(*rw), 0, GUEST_IOVA + 512, sizeof(*rw),
				     (uintptr_t)rw };
	EXPECT_EQ(0, xioctl(ctl, MUSER_IOC_DMA_RW, rw));
	EXPECT_EQ(0, memcmp(g, self->guest + 512, sizeof(*rw)));

	/* No VMM: ENXIO; holds survive it and are released. */
	vfio_client_close(&self->r.c);
	EXPECT_EQ(-ENXIO, _test_dma_map(ctl, GUEST_IOVA, PG, 0, NULL));
	EXPECT_EQ(-ENXIO, _test_dma_rw(ctl, GUEST_IOVA, buf, 8, false));
	EXPECT_EQ(0, _test_dma_release(ctl, GUEST_IOVA, PG));
	EXPECT_EQ(0, _test_dma_release(ctl, 0, PG));
	EXPECT_FALSE(touch(wing, buf));
	ASSERT_EQ(0, rig_open_vmm(&self->r, NULL));
	test_vmm_map(&self->r.c, self->guest, GUEST_IOVA, GUEST_SIZE);

	munmap(ro, PG);
	guarded_free(g, PG);
	munmap(wing, PG);
	munmap(win0, 2 * PG);
	munmap(state, PG);
	munmap(dev, AREA_SIZE);
}

/* ------------------------------------------------------------ mmap() */

#define EMU	0
#define OTHER	1

static const struct mmap_case {
	const char *what;
	uint64_t off, len;
	int flags, who;
	int want, or_want;	/* 0 or -errno, and another one taken */
} mmap_cases[] = {
	{ "device memory", MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE, MAP_SHARED, EMU, 0, 0 },
	{ "device memory, another file", MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE,
	  MAP_SHARED_VALIDATE, OTHER, 0, 0 },
	{ "its last page", MUSER_REGION_OFFSET(BAR2) + AREA_OFF + AREA_SIZE - PG, PG, MAP_SHARED, EMU, 0, 0 },
	{ "a page past it", MUSER_REGION_OFFSET(BAR2) + AREA_OFF + AREA_SIZE - PG, 2 * PG,
	  MAP_SHARED, EMU, -EINVAL, 0 },
	{ "a page before it", MUSER_REGION_OFFSET(BAR2) + AREA_OFF - PG, 2 * PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "after it", MUSER_REGION_OFFSET(BAR2) + AREA_OFF + AREA_SIZE, PG, MAP_SHARED, OTHER, -EINVAL, 0 },
	{ "device memory, private", MUSER_REGION_OFFSET(BAR2) + AREA_OFF, PG, MAP_PRIVATE, EMU, -EINVAL, 0 },
	{ "trapped BAR0", MUSER_REGION_OFFSET(BAR0), PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "config space", MUSER_REGION_OFFSET(CONFIG), PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "BAR2 past its end", MUSER_REGION_OFFSET(BAR2) + 0x10000, PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "BAR2's last page of 2^40", MUSER_REGION_OFFSET(BAR2 + 1) - PG, PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "absent VGA", MUSER_REGION_OFFSET(VFIO_PCI_VGA_REGION_INDEX), PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "region 9", MUSER_REGION_OFFSET(9), PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "region 14", MUSER_REGION_OFFSET(14) + 0x8000, PG, MAP_SHARED, OTHER, -EINVAL, 0 },
	{ "region 14 into the state area", MUSER_REGION_OFFSET(15) - PG, 2 * PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "the state area", MUSER_STATE_OFFSET, MUSER_STATE_SIZE, MAP_SHARED, EMU, 0, 0 },
	{ "the state area, another file", MUSER_STATE_OFFSET, PG, MAP_SHARED, OTHER, -ENOTCONN, 0 },
	{ "its last page", MUSER_STATE_OFFSET + MUSER_STATE_SIZE - PG, PG, MAP_SHARED, EMU, 0, 0 },
	{ "a page past it", MUSER_STATE_OFFSET + MUSER_STATE_SIZE - PG, 2 * PG,
	  MAP_SHARED, EMU, -EINVAL, 0 },
	{ "after it", MUSER_STATE_OFFSET + MUSER_STATE_SIZE, PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "the state area, private", MUSER_STATE_OFFSET, PG, MAP_PRIVATE, EMU, -EINVAL, 0 },
	{ "2^61", 1ull << 61, PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "below the window", MUSER_DMA_OFFSET - PG, PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "below the window, into it", MUSER_DMA_OFFSET - PG, 2 * PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "below the window, another file", MUSER_DMA_OFFSET - PG, PG, MAP_SHARED, OTHER, -ENOTCONN, 0 },
	{ "the window", MUSER_DMA_OFFSET + GUEST_IOVA, GUEST_SIZE, MAP_SHARED, EMU, 0, 0 },
	{ "the window at 0", MUSER_DMA_OFFSET, PG, MAP_SHARED, EMU, 0, 0 },
	{ "the window, another file", MUSER_DMA_OFFSET, PG, MAP_SHARED, OTHER, -ENOTCONN, 0 },
	{ "the window, private", MUSER_DMA_OFFSET, PG, MAP_PRIVATE, EMU, -EINVAL, 0 },
	{ "its last page", MUSER_DMA_OFFSET + MUSER_DMA_MAX_IOVA + 1 - PG, PG, MAP_SHARED, EMU, 0, 0 },
	{ "a page past it", MUSER_DMA_OFFSET + MUSER_DMA_MAX_IOVA + 1 - PG, 2 * PG,
	  MAP_SHARED, EMU, -EINVAL, 0 },
	{ "2^63", 1ull << 63, PG, MAP_SHARED, EMU, -EINVAL, -EOVERFLOW },
	{ "2^63 plus the window", (1ull << 63) + MUSER_DMA_OFFSET, PG, MAP_SHARED, EMU,
	  -EINVAL, -EOVERFLOW },
	{ "2^63, another file", 1ull << 63, PG, MAP_SHARED, OTHER, -ENOTCONN, -EOVERFLOW },
	{ "2^64 minus a page", -PG, PG, MAP_SHARED, EMU, -EINVAL, -EOVERFLOW },
	{ "unaligned", MUSER_REGION_OFFSET(BAR2) + AREA_OFF + 1, PG, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "0 bytes", MUSER_REGION_OFFSET(BAR2) + AREA_OFF, 0, MAP_SHARED, EMU, -EINVAL, 0 },
	{ "2^46 bytes of device memory", MUSER_REGION_OFFSET(BAR2) + AREA_OFF, 1ull << 46, MAP_SHARED,
	  EMU, -EINVAL, -ENOMEM },
	{ "2^46 bytes of the window", MUSER_DMA_OFFSET, 1ull << 46, MAP_SHARED, EMU, 0, -ENOMEM },
};

/* Every part of the control node, each edge of each; what maps is touched. */
TEST_F(hemu, mmap_edges)
{
	int fds[2] = { self->r.ctl, other_ctl(self) };
	size_t i;

	ASSERT_LE(0, fds[1]);
	test_dma_map(self->r.ctl, GUEST_IOVA + PG, PG, MUSER_DMA_F_WRITE);
	for (i = 0; i < ARRAY_SIZE(mmap_cases); i++) {
		const struct mmap_case *c = &mmap_cases[i];
		const char *what = c->what;
		uint8_t *p, v, *page;
		int got;

		p = raw_mmap(fds[c->who], c->off, c->len, PROT_READ | PROT_WRITE, c->flags);
		got = p ? 0 : -errno;
		EXPECT_TRUE(got == c->want || (c->or_want && got == c->or_want))
			TH_LOG("%s (%s): %s", what, c->who ? "other" : "emulator",
			       errname(-got));
		if (!p)
			continue;
		/* Device memory and the state area: pages on first touch. */
		if (c->off < MUSER_DMA_OFFSET) {
			EXPECT_TRUE(poke(p, 0x5a)) TH_LOG("%s", what);
			EXPECT_TRUE(touch(p + c->len - 1, &v)) TH_LOG("%s", what);
		} else if (c->off == MUSER_DMA_OFFSET + GUEST_IOVA) {
			/* Only the pinned page is there. */
			EXPECT_FALSE(touch(p, &v)) TH_LOG("%s", what);
			page = p + PG;
			EXPECT_TRUE(touch(page, &v)) TH_LOG("%s", what);
			EXPECT_EQ(self->guest[PG], v);
			EXPECT_TRUE(poke(page + 1, self->guest[PG + 1])) TH_LOG("%s", what);
			EXPECT_FALSE(touch(p + 2 * PG, &v)) TH_LOG("%s", what);
		} else {
			EXPECT_FALSE(touch(p, &v)) TH_LOG("%s", what);
		}
		munmap(p, c->len);
	}
	test_dma_release(self->r.ctl, GUEST_IOVA + PG, PG);
	close(fds[1]);
}

/* mremap, madvise, mprotect and fork() of the control node's mappings. */
TEST_F(hemu, mmap_remap_and_fork)
{
	const int ctl = self->r.ctl;
	uint8_t *dev, *win, *wro, *state, *moved, *spot, v;
	pid_t pid;
	int status;

	dev = xmmap(ctl, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE, PROT_READ | PROT_WRITE,
		    MAP_SHARED);
	state = xmmap(ctl, MUSER_STATE_OFFSET, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED);
	test_dma_map(ctl, GUEST_IOVA, 4 * PG, MUSER_DMA_F_WRITE);
	win = xmmap(ctl, MUSER_DMA_OFFSET + GUEST_IOVA, 4 * PG, PROT_READ | PROT_WRITE,
		    MAP_SHARED);
	wro = xmmap(ctl, MUSER_DMA_OFFSET + GUEST_IOVA, PG, PROT_READ, MAP_SHARED);
	ASSERT_NE(NULL, dev);
	ASSERT_NE(NULL, state);
	ASSERT_NE(NULL, win);
	ASSERT_NE(NULL, wro);
	/* Where mappings move to: nothing else is there. */
	spot = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, spot);
	memset(dev, 0x11, AREA_SIZE);
	state[0] = 0x22;

	/* No growing (VM_DONTEXPAND); shrinking and moving are fine. */
	EXPECT_EQ(MAP_FAILED, mremap(dev, AREA_SIZE, AREA_SIZE + PG, 0));
	EXPECT_EQ(MAP_FAILED, mremap(dev, AREA_SIZE, AREA_SIZE + PG, MREMAP_MAYMOVE));
	EXPECT_EQ(MAP_FAILED, mremap(win, 4 * PG, 8 * PG, MREMAP_MAYMOVE));
	EXPECT_EQ(MAP_FAILED, mremap(state, 2 * PG, MUSER_STATE_SIZE + PG, MREMAP_MAYMOVE));
	EXPECT_EQ(dev, mremap(dev, AREA_SIZE, 2 * PG, 0));
	moved = mremap(dev, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
	EXPECT_NE(MAP_FAILED, moved);
	if (moved != MAP_FAILED) {
		EXPECT_TRUE(touch(moved + PG, &v));
		EXPECT_EQ(0x11, v);
		dev = moved;
	}
	moved = mremap(win, 4 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, spot + 2 * PG);
	EXPECT_NE(MAP_FAILED, moved);
	if (moved != MAP_FAILED) {
		EXPECT_TRUE(touch(moved + PG, &v));
		EXPECT_EQ(self->guest[PG], v);
		munmap(win + 2 * PG, 2 * PG);
		win = moved;
	}
	/* Dropped pages come back with what they held. */
	EXPECT_EQ(0, madvise(dev, 2 * PG, MADV_DONTNEED));
	EXPECT_TRUE(touch(dev + 1, &v));
	EXPECT_EQ(0x11, v);
	EXPECT_EQ(0, madvise(state, 2 * PG, MADV_DONTNEED));
	EXPECT_TRUE(touch(state, &v));
	EXPECT_EQ(0x22, v);
	madvise(win, 2 * PG, MADV_DONTNEED);	/* PFN map: either answer */
	EXPECT_TRUE(touch(win + 5, &v));
	EXPECT_EQ(self->guest[5], v);
	/* A read-only view of the window stays one. */
	EXPECT_EQ(-1, mprotect(wro, PG, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(0, mprotect(dev, 2 * PG, PROT_READ));
	EXPECT_FALSE(poke(dev, 1));
	EXPECT_EQ(0, mprotect(dev, 2 * PG, PROT_READ | PROT_WRITE));

	/* A child shares device memory and the state area, not the window. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		uint8_t c;

		if (!touch(dev, &c) || c != 0x11 || !poke(dev + 7, 0x33))
			_exit(1);
		if (!touch(state, &c) || c != 0x22)
			_exit(2);
		if (touch(win, &c) || touch(wro, &c))
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0x33, dev[7]);

	/* Detached: the window faults; the rest stays as it was. */
	ASSERT_EQ(0, xioctl(ctl, MUSER_IOC_DETACH, NULL));
	EXPECT_FALSE(touch(win, &v));
	EXPECT_FALSE(touch(wro, &v));
	EXPECT_TRUE(touch(dev + 7, &v));
	EXPECT_EQ(0x33, v);
	EXPECT_TRUE(poke(state + 1, 0x44));
	ASSERT_EQ(0, ctl_attach(ctl, &self->r.layout));
	munmap(wro, PG);
	munmap(win, 2 * PG);
	munmap(state, 2 * PG);
	munmap(dev, 2 * PG);
}

/*
 * The emulator's last close waits for its mappings to go: until then it
 * is still the emulator.
 */
TEST_F(hemu, close_with_mappings)
{
	int ctl = self->r.ctl, other = other_ctl(self);
	struct async_access a;
	struct emu_req r;
	uint8_t *dev, *win, v;

	ASSERT_LE(0, other);
	dev = xmmap(ctl, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, PG, PROT_READ | PROT_WRITE, MAP_SHARED);
	win = xmmap(ctl, MUSER_DMA_OFFSET + GUEST_IOVA, PG, PROT_READ, MAP_SHARED);
	ASSERT_NE(NULL, dev);
	ASSERT_NE(NULL, win);
	test_dma_map(ctl, GUEST_IOVA, PG, 0);
	close(ctl);
	self->r.ctl = -1;
	EXPECT_EQ(-EBUSY, ctl_attach(other, &self->r.layout));
	EXPECT_TRUE(touch(win, &v));
	EXPECT_EQ(self->guest[0], v);
	munmap(win, PG);
	EXPECT_EQ(-EBUSY, ctl_attach(other, &self->r.layout));
	munmap(dev, PG);
	/* Now it is gone: its hold went with it, the pin stays. */
	EXPECT_EQ(0, ctl_attach(other, &self->r.layout));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	EXPECT_LT(0, dma_stat(self->r.uuid, "pinned_pages"));
	self->r.ctl = other;
	ASSERT_EQ(0, access_begin(&self->r, &a, BAR0, 0x10, 4, false, &r));
	EXPECT_LT(0, reply_ok(other, &r));
	EXPECT_EQ(4, access_end(&a, self->timeout));
}

/*
 * The VMM unmaps and maps the same guest memory again and again while the
 * emulator pins it in between, as when a guest moves a BAR over RAM back
 * and forth: no DMA_MAP waits for an unmap that is over. muser.ko used to
 * take an unmap of the range of a fence that expired less than a second
 * ago for a retry of type1's and fence ten times longer each time: 100 ms,
 * 1 s, 10 s, 100 s. Fences now last until the unmapping thread returns.
 */
TEST_F_TIMEOUT(hemu, dma_remap_fences, 120)
{
	int64_t t0, ms;
	int i, ret;

	for (i = 0; i < 5; i++) {
		t0 = now_ms();
		ret = _test_dma_map(self->r.ctl, GUEST_IOVA, PG, 0, NULL);
		ms = now_ms() - t0;
		TH_LOG("round %d: DMA_MAP after the remap took %lld ms", i, (long long)ms);
		EXPECT_EQ(0, ret);
		EXPECT_GT(SLACK_MS, ms) TH_LOG("round %d", i);
		if (!ret)
			test_dma_release(self->r.ctl, GUEST_IOVA, PG);
		test_vmm_unmap(&self->r.c, GUEST_IOVA, GUEST_SIZE);
		test_vmm_map(&self->r.c, self->guest, GUEST_IOVA, GUEST_SIZE);
	}
}

/* ------------------------------------------------------------ storms */

/* A thread's kernel stack, without malloc (mmap_lock may be stuck). */
static void thread_stack(const char *tid)
{
	static char buf[4096];
	char path[300];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%s/stack", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	fprintf(stderr, "# thread %s:\n%s", tid, buf);
}

/*
 * Join @n threads, waiting at most @ms in all; if some are still going,
 * print where every thread of the process is in the kernel. Returns the
 * number not joined.
 */
static int join_all(pthread_t *t, size_t stride, int n, int ms)
{
	int64_t end = now_ms() + ms;
	int sysrq = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	int i, left = 0;
	DIR *d;
	struct dirent *e;

	for (i = 0; i < n; i++) {
		pthread_t *th = (pthread_t *)((char *)t + i * stride);
		int64_t rest = end - now_ms();
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		rest = rest > 0 ? rest : 0;
		ts.tv_sec += rest / 1000;
		ts.tv_nsec += (rest % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (pthread_timedjoin_np(*th, NULL, &ts))
			left++;
	}
	if (!left) {
		if (sysrq >= 0)
			close(sysrq);
		return 0;
	}
	/*
	 * The blocked tasks to the kernel log first: what follows needs
	 * memory, which a thread stuck with mmap_lock held may not allow.
	 */
	if (sysrq >= 0 && write(sysrq, "w", 1) != 1)
		perror("# sysrq-trigger");
	fprintf(stderr, "# %d threads still going after %d ms; their kernel stacks:\n", left, ms);
	d = opendir("/proc/self/task");
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			thread_stack(e->d_name);
	if (d)
		closedir(d);
	if (sysrq >= 0)
		close(sysrq);
	return left;
}

#define STORM_MS	5000	/* each storm's length */
#define DSTORM_THREADS	4
#define DSTORM_SLOTS	4	/* the guest, as the VMM maps it: 1 MiB each */

struct dstorm {
	struct rig *r;
	uint8_t *guest;
	volatile int stop;
	int bad;
	/* the VMM's view: slot i mapped, and read-only */
	volatile int mapped[DSTORM_SLOTS], ro[DSTORM_SLOTS];
	long remaps;
	/* what the emulator threads saw */
	long calls, ok, efault, eperm, sigbus, touched;
	int64_t max_ms;
};

struct dstorm_thread {
	pthread_t thread;
	struct dstorm *s;
	uint64_t rng;
};

static void dstorm_miss(struct dstorm *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dstorm_miss(struct dstorm *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmiss(&s->bad, -1, fmt, ap);
	va_end(ap);
}

/* The VMM: unmaps a slot, maps it again (read-only now and then). */
static void *dstorm_vmm(void *p)
{
	struct dstorm_thread *t = p;
	struct dstorm *s = t->s;
	int i, ret;

	while (!s->stop) {
		i = below(&t->rng, DSTORM_SLOTS);
		ret = _test_vmm_unmap(&s->r->c, GUEST_IOVA + i * (GUEST_SIZE / DSTORM_SLOTS),
				      GUEST_SIZE / DSTORM_SLOTS);
		if (ret)
			dstorm_miss(s, "VMM unmap of slot %d: %s", i, errname(-ret));
		s->mapped[i] = 0;
		usleep(below(&t->rng, 3000));
		s->ro[i] = chance(&t->rng, 20);
		ret = _test_vmm_map(&s->r->c, s->guest + i * (GUEST_SIZE / DSTORM_SLOTS),
				    GUEST_IOVA + i * (GUEST_SIZE / DSTORM_SLOTS),
				    GUEST_SIZE / DSTORM_SLOTS,
				    s->ro[i] ? VFIO_DMA_MAP_FLAG_READ : VMM_RW);
		if (ret)
			dstorm_miss(s, "VMM map of slot %d: %s", i, errname(-ret));
		s->mapped[i] = 1;
		__atomic_add_fetch(&s->remaps, 1, __ATOMIC_RELAXED);
		usleep(below(&t->rng, 20000));
	}
	return NULL;
}

/* Guest memory never changes: copies and pokes write back what is there. */
static bool dstorm_same(struct dstorm *s, uint64_t iova, const uint8_t *p, size_t len)
{
	return !memcmp(p, s->guest + (iova - GUEST_IOVA), len);
}

static void dstorm_count(struct dstorm *s, const char *call, int ret, bool write,
			 int64_t t0)
{
	int64_t ms = now_ms() - t0;

	__atomic_add_fetch(&s->calls, 1, __ATOMIC_RELAXED);
	if (ms > s->max_ms)
		s->max_ms = ms;
	if (!ret)
		__atomic_add_fetch(&s->ok, 1, __ATOMIC_RELAXED);
	else if (ret == -EFAULT)
		__atomic_add_fetch(&s->efault, 1, __ATOMIC_RELAXED);
	else if (ret == -EPERM && write)
		__atomic_add_fetch(&s->eperm, 1, __ATOMIC_RELAXED);
	else
		dstorm_miss(s, "%s: %s", call, errname(-ret));
}

/* An emulator thread: DMA_MAP, touch, DMA_RELEASE, DMA_RW at random. */
static void *dstorm_emu(void *p)
{
	struct dstorm_thread *t = p;
	struct dstorm *s = t->s;
	const int ctl = s->r->ctl;
	uint8_t *buf = malloc(64 * 1024), v;
	uint64_t *r = &t->rng;

	while (buf && !s->stop) {
		uint64_t size = chance(r, 50) ? 1 + below(r, 64) : 1 + below(r, 64 * 1024);
		uint64_t iova = GUEST_IOVA + below(r, GUEST_SIZE - size + 1), off = 0, i;
		bool write = chance(r, 40);
		int64_t t0 = now_ms();
		uint8_t *win;
		int ret;

		if (chance(r, 50)) {
			ret = _test_dma_rw(ctl, iova, buf, size, false);
			if (!ret && !dstorm_same(s, iova, buf, size))
				dstorm_miss(s, "DMA_RW read of iova 0x%" PRIx64 " got other data", iova);
			dstorm_count(s, "DMA_RW read", ret, false, t0);
			if (ret || !write)
				continue;
			t0 = now_ms();
			ret = _test_dma_rw(ctl, iova, buf, size, true);
			dstorm_count(s, "DMA_RW write", ret, true, t0);
			continue;
		}
		ret = _test_dma_map(ctl, iova, size, write ? MUSER_DMA_F_WRITE : 0, &off);
		dstorm_count(s, "DMA_MAP", ret, write, t0);
		if (ret)
			continue;
		win = xmmap(ctl, off, ((iova + size - 1) | (PG - 1)) + 1 - (off - MUSER_DMA_OFFSET),
			    PROT_READ | (write ? PROT_WRITE : 0), MAP_SHARED);
		for (i = 0; win && i < 4; i++) {
			uint64_t at = iova + below(r, size);
			uint8_t *q = win + (at - (off - MUSER_DMA_OFFSET));

			__atomic_add_fetch(&s->touched, 1, __ATOMIC_RELAXED);
			if (!touch(q, &v)) {
				__atomic_add_fetch(&s->sigbus, 1, __ATOMIC_RELAXED);
				continue;
			}
			if (!dstorm_same(s, at, &v, 1))
				dstorm_miss(s, "the window at iova 0x%" PRIx64 " holds 0x%02x", at, v);
			if (write && !poke(q, v))
				__atomic_add_fetch(&s->sigbus, 1, __ATOMIC_RELAXED);
		}
		if (win)
			munmap(win, ((iova + size - 1) | (PG - 1)) + 1 - (off - MUSER_DMA_OFFSET));
		ret = _test_dma_release(ctl, iova, size);
		if (ret)
			dstorm_miss(s, "DMA_RELEASE of what DMA_MAP took: %s", errname(-ret));
	}
	free(buf);
	return NULL;
}

/*
 * DMA_MAP/RELEASE/RW and faults through the window from four threads
 * while the VMM unmaps and maps guest memory (read-only now and then):
 * every call ends in success, EFAULT (unmapped just then) or EPERM (a
 * write to read-only memory), sees guest memory as it is, and holds
 * are released whatever happened to the pins.
 */
TEST_F_TIMEOUT(hemu, dma_storm, 120)
{
	struct dstorm s = { .r = &self->r, .guest = self->guest };
	struct dstorm_thread t[DSTORM_THREADS + 1];
	uint64_t seed = (uint64_t)now_ms() ^ (uint64_t)getpid() << 32;
	int i;

	TH_LOG("seed %#" PRIx64, seed);
	/* The guest as DSTORM_SLOTS mappings. */
	test_vmm_unmap(&self->r.c, GUEST_IOVA, GUEST_SIZE);
	for (i = 0; i < DSTORM_SLOTS; i++) {
		test_vmm_map(&self->r.c, self->guest + i * (GUEST_SIZE / DSTORM_SLOTS),
			     GUEST_IOVA + i * (GUEST_SIZE / DSTORM_SLOTS),
			     GUEST_SIZE / DSTORM_SLOTS);
		s.mapped[i] = 1;
	}
	for (i = 0; i <= DSTORM_THREADS; i++) {
		t[i].s = &s;
		t[i].rng = seed + i;
		ASSERT_EQ(0, pthread_create(&t[i].thread, NULL,
					    i ? dstorm_emu : dstorm_vmm, &t[i]));
	}
	sleep_ms(STORM_MS);
	s.stop = 1;
	/*
	 * A call that waits for long keeps its thread: a failure. Stuck
	 * threads would hang the teardown too: end the test here (the
	 * kernel's blocked tasks are in its log, from sysrq-w).
	 */
	if (join_all(&t[0].thread, sizeof(t[0]), DSTORM_THREADS + 1, 2 * SLACK_MS)) {
		TH_LOG("DMA calls or the VMM's unmaps never returned");
		fflush(NULL);
		_exit(KSFT_FAIL);
	}
	TH_LOG("%ld remaps; %ld calls: %ld ok, %ld EFAULT, %ld EPERM; %ld touches, %ld SIGBUS; slowest call %lld ms",
	       s.remaps, s.calls, s.ok, s.efault, s.eperm, s.touched, s.sigbus,
	       (long long)s.max_ms);
	EXPECT_EQ(0, s.bad);
	EXPECT_LT(0, s.ok);
	EXPECT_LT(0, s.remaps);
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	/* The fences of the unmaps are short: nothing waits for long. */
	EXPECT_GT(SLACK_MS, s.max_ms);
}

/* ----------------------------------------- emulators coming and going */

#define COME_GO_MS	8000
#define VMM_THREADS	3

struct come_go {
	struct rig *r;
	uint8_t *guest;
	volatile int stop;
	int bad;
	long timeout;
	long accesses, timeouts, devmem, infos, irqs, remaps;
	int64_t slowest;
};

struct come_go_vmm {
	pthread_t thread;
	struct come_go *g;
	int idx;
	uint64_t rng;
};

static void come_go_miss(struct come_go *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void come_go_miss(struct come_go *g, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmiss(&g->bad, -1, fmt, ap);
	va_end(ap);
}

/*
 * A VMM thread: reads and writes of trapped registers (the pattern, or
 * ETIMEDOUT while no emulator answers, never later than timeout_ms), of
 * device memory (always there, never waits), info ioctls and SET_IRQS.
 * The last one maps and unmaps guest memory instead.
 */
static void *come_go_vmm_fn(void *p)
{
	struct come_go_vmm *v = p;
	struct come_go *g = v->g;
	struct vfio_client *c = &g->r->c;
	uint8_t buf[8], want[8];
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t *r = &v->rng;

	while (!g->stop) {
		uint64_t off = 0x400 * v->idx + 8 * below(r, 64);
		size_t len = 1 + below(r, 8);
		bool write = chance(r, 40);
		struct vfio_region_info ri;
		int64_t t0 = now_ms(), ms;
		ssize_t n;
		int ret;

		if (v->idx == VMM_THREADS - 1) {
			uint64_t iova = GUEST_IOVA + CHUNK + below(r, 4) * (CHUNK / 4);

			ret = _test_vmm_unmap(c, iova, CHUNK / 4);
			if (!ret)
				ret = _test_vmm_map(c, g->guest + (iova - GUEST_IOVA), iova,
						    CHUNK / 4, VMM_RW);
			if (ret)
				come_go_miss(g, "VMM remap of iova 0x%" PRIx64 ": %s", iova,
					     errname(-ret));
			__atomic_add_fetch(&g->remaps, 1, __ATOMIC_RELAXED);
			usleep(20000 + below(r, 30000));
			continue;
		}
		switch (below(r, 10)) {
		case 0:
			ret = get_region_info(c->device, BAR2, &ri);
			if (ret || ri.size != 0x10000)
				come_go_miss(g, "GET_REGION_INFO: %s", errname(-ret));
			__atomic_add_fetch(&g->infos, 1, __ATOMIC_RELAXED);
			continue;
		case 1:
			ret = set_irq_eventfd(c->device, VFIO_PCI_MSI_IRQ_INDEX, 0,
					      chance(r, 50) ? efd : -1);
			if (ret)
				come_go_miss(g, "SET_IRQS: %s", errname(-ret));
			__atomic_add_fetch(&g->irqs, 1, __ATOMIC_RELAXED);
			continue;
		case 2:
			/* Device memory: 0x5a everywhere, served without a request. */
			n = region_read(c, BAR2, AREA_OFF + below(r, AREA_SIZE - 8), buf, 8);
			if (n != 8 || memcmp(buf, "\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a", 8))
				come_go_miss(g, "device memory read: %zd", n);
			ms = now_ms() - t0;
			if (ms > SLACK_MS)
				come_go_miss(g, "device memory read took %lld ms", (long long)ms);
			__atomic_add_fetch(&g->devmem, 1, __ATOMIC_RELAXED);
			continue;
		}
		pattern(want, BAR0, off, len);
		if (write)
			n = region_write(c, BAR0, off, want, len);
		else
			n = region_read(c, BAR0, off, buf, len);
		ms = now_ms() - t0;
		if (ms > g->slowest)
			g->slowest = ms;
		__atomic_add_fetch(&g->accesses, 1, __ATOMIC_RELAXED);
		if (n == -ETIMEDOUT)
			__atomic_add_fetch(&g->timeouts, 1, __ATOMIC_RELAXED);
		else if (n != (ssize_t)len)
			come_go_miss(g, "%s of BAR0 0x%" PRIx64 " +%zu: %s",
				     write ? "write" : "read", off, len, errname(-n));
		else if (!write && memcmp(buf, want, len))
			come_go_miss(g, "read of BAR0 0x%" PRIx64 ": other data", off);
		if (ms > g->timeout + SLACK_MS)
			come_go_miss(g, "an access took %lld ms", (long long)ms);
	}
	close(efd);
	return NULL;
}

/* How a child emulator ends. */
enum { END_EXIT, END_DETACH, END_KILLED, END_HANG };

#define CHILD_ATTACH	(1u << 0)	/* attach, not take over */
#define CHILD_TAKEOVER	(1u << 1)	/* take over, not attach */
#define CHILD_DEVMEM_5A	(1u << 2)	/* device memory holds 0x5a */
#define CHILD_TIGHT_DMA	(1u << 3)	/* a DMA budget a pin may find full */

/*
 * A child emulator: attach (or take over), serve for @ms, use guest
 * memory and device memory, then end as @how says. Its exit status is the
 * number of things that went wrong (printed).
 */
static int child_emulator(const char *uuid, const struct muser_device_info *l,
			  uint64_t seed, int ms, int how, unsigned int flags)
{
	static struct emu_req reqs[16];
	uint64_t rng = seed, *r = &rng;
	int64_t end = now_ms() + ms, t0 = now_ms();
	int ctl, ret, n, i, bad = 0;
	uint8_t data[8], *dev, *win, v;

	ctl = ctl_open(uuid, O_NONBLOCK);
	if (ctl < 0)
		return 1;
	/* The previous one may still be going: EBUSY until it has. */
	do {
		bool takeover = flags & CHILD_TAKEOVER ||
				(!(flags & CHILD_ATTACH) && chance(r, 50));

		ret = xioctl(ctl, takeover ? MUSER_IOC_TAKEOVER : MUSER_IOC_ATTACH,
			     (void *)l);
	} while (ret == -EBUSY && now_ms() - t0 < 3000 && !usleep(1000));
	if (ret) {
		fprintf(stderr, "# child %d: attach: %s\n", getpid(), errname(-ret));
		return 1;
	}
	dev = xmmap(ctl, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE, PROT_READ, MAP_SHARED);
	win = xmmap(ctl, MUSER_DMA_OFFSET + GUEST_IOVA, GUEST_SIZE, PROT_READ, MAP_SHARED);
	if (!dev || !win)
		bad++;
	while (now_ms() < end || how == END_HANG) {
		n = emu_read_timeout(ctl, reqs, 16, 5);
		if (n == -ENOTCONN || n == -EPIPE)	/* taken over: finish */
			break;
		for (i = 0; i < n; i++) {
			if (!reqs[i].hdr.id || chance(r, 5))	/* left to the next one */
				continue;
			if (reqs[i].hdr.type == MUSER_REQ_READ)
				pattern(data, reqs[i].hdr.region, reqs[i].hdr.offset,
					reqs[i].hdr.len);
			ret = emu_reply(ctl, reqs[i].hdr.id, 0, data,
					reqs[i].hdr.type == MUSER_REQ_READ ? reqs[i].hdr.len : 0);
			if (ret < 0 && ret != -ENOENT && ret != -ENOTCONN) {
				fprintf(stderr, "# child %d: reply: %s\n", getpid(), errname(-ret));
				bad++;
			}
		}
		if (chance(r, 30)) {
			uint64_t iova = GUEST_IOVA + below(r, GUEST_SIZE - 64);

			ret = _test_dma_map(ctl, iova, 64, 0, NULL);
			if (!ret && !touch(win + (iova - GUEST_IOVA), &v))
				v = 0;	/* revoked meanwhile, or taken over */
			if (!ret)
				ret = _test_dma_release(ctl, iova, 64);
			if (ret == -ENOSPC && flags & CHILD_TIGHT_DMA)
				ret = 0;
			if (ret && ret != -EFAULT && ret != -ENOTCONN) {
				fprintf(stderr, "# child %d: DMA: %s\n", getpid(), errname(-ret));
				bad++;
			}
			ret = _test_dma_rw(ctl, iova, data, 8, false);
			if (ret == -ENOSPC && flags & CHILD_TIGHT_DMA)
				ret = 0;
			if (ret && ret != -EFAULT && ret != -ENOTCONN) {
				fprintf(stderr, "# child %d: DMA_RW: %s\n", getpid(), errname(-ret));
				bad++;
			}
		}
		if (dev && chance(r, 10) && (!touch(dev + below(r, AREA_SIZE), &v) ||
					     (flags & CHILD_DEVMEM_5A && v != 0x5a))) {
			fprintf(stderr, "# child %d: device memory\n", getpid());
			bad++;
		}
		if (chance(r, 10)) {
			ret = emu_trigger_irq(ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1);
			if (ret && ret != -ENOENT && ret != -ENOTCONN) {
				fprintf(stderr, "# child %d: TRIGGER_IRQ: %s\n", getpid(), errname(-ret));
				bad++;
			}
		}
	}
	if (how == END_DETACH) {
		ret = xioctl(ctl, MUSER_IOC_DETACH, NULL);
		if (ret && ret != -ENOTCONN)
			bad++;
	}
	return bad;
}

/*
 * Emulator processes attach or take over, serve, detach, exit, and are
 * SIGKILLed at random moments (a new one taking over before the old one
 * is killed, now and then), while VMM threads read and write registers
 * and device memory, change interrupts and remap guest memory. The VMM
 * sees the emulators' data, or ETIMEDOUT when none answers in time; the
 * children see only the errors an emulator may; at the end a new
 * emulator serves as if nothing happened.
 */
TEST_F_TIMEOUT(hemu, emulators_come_and_go, 180)
{
	struct come_go g = { .r = &self->r, .guest = self->guest, .timeout = STORM_TIMEOUT_MS };
	struct come_go_vmm v[VMM_THREADS];
	uint64_t seed = (uint64_t)now_ms() ^ (uint64_t)getpid() << 32, rng = seed;
	int64_t end = now_ms() + COME_GO_MS;
	int children = 0, kills = 0, failed = 0, status, i;
	pid_t prev = 0, pid;
	struct emu_thread emu;
	uint8_t *dev;

	TH_LOG("seed %#" PRIx64, seed);
	ASSERT_EQ(0, rig_set_timeout(&self->r, STORM_TIMEOUT_MS));
	dev = xmmap(self->r.ctl, MUSER_REGION_OFFSET(BAR2) + AREA_OFF, AREA_SIZE,
		    PROT_READ | PROT_WRITE, MAP_SHARED);
	ASSERT_NE(NULL, dev);
	memset(dev, 0x5a, AREA_SIZE);
	munmap(dev, AREA_SIZE);
	ASSERT_EQ(0, xioctl(self->r.ctl, MUSER_IOC_DETACH, NULL));
	/* The last VMM thread remaps the second chunk a quarter at a time. */
	test_vmm_unmap(&self->r.c, GUEST_IOVA, GUEST_SIZE);
	test_vmm_map(&self->r.c, self->guest, GUEST_IOVA, CHUNK);
	for (i = 0; i < 4; i++)
		test_vmm_map(&self->r.c, self->guest + CHUNK + i * (CHUNK / 4),
			     GUEST_IOVA + CHUNK + i * (CHUNK / 4), CHUNK / 4);
	for (i = 0; i < VMM_THREADS; i++) {
		v[i] = (struct come_go_vmm){ .g = &g, .idx = i, .rng = seed + i + 1 };
		ASSERT_EQ(0, pthread_create(&v[i].thread, NULL, come_go_vmm_fn, &v[i]));
	}

	while (now_ms() < end && !failed) {
		int how = below(&rng, 4), ms = below(&rng, 200);

		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(child_emulator(self->r.uuid, &self->r.layout, rnd(&rng),
					     ms, how, CHILD_DEVMEM_5A));
		children++;
		/* The previous one goes now, while this one takes over. */
		if (prev) {
			if (chance(&rng, 50))
				usleep(below(&rng, 20000));
			kill(prev, SIGKILL);
			kills++;
			waitpid(prev, &status, 0);
			prev = 0;
		}
		if (chance(&rng, 25)) {
			prev = pid;
			usleep(below(&rng, 100000));
			continue;
		}
		usleep(below(&rng, 250000));
		if (how == END_KILLED || how == END_HANG || chance(&rng, 30)) {
			kill(pid, SIGKILL);
			kills++;
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		if (WIFEXITED(status) && WEXITSTATUS(status))
			failed++;
	}
	if (prev) {
		kill(prev, SIGKILL);
		waitpid(prev, &status, 0);
	}
	/* A new emulator: everything works as before. */
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
	ASSERT_EQ(0, emu_thread_start(&emu, self->r.ctl));
	sleep_ms(300);
	g.stop = 1;
	for (i = 0; i < VMM_THREADS; i++)
		pthread_join(v[i].thread, NULL);
	{
		uint8_t b[8], w[8];

		pattern(w, BAR0, 0x10, 8);
		EXPECT_EQ(8, region_read(&self->r.c, BAR0, 0x10, b, 8));
		EXPECT_EQ(0, memcmp(b, w, 8));
	}
	emu_thread_stop(&emu);
	TH_LOG("%d emulators, %d SIGKILLed; VMM: %ld accesses (%ld timed out, slowest %lld ms), %ld of device memory, %ld infos, %ld SET_IRQS, %ld remaps",
	       children, kills, g.accesses, g.timeouts, (long long)g.slowest, g.devmem,
	       g.infos, g.irqs, g.remaps);
	EXPECT_EQ(0, failed) TH_LOG("children found problems, see above");
	EXPECT_EQ(0, g.bad);
	EXPECT_EQ(0, emu.errors);
	EXPECT_LT(g.timeouts, g.accesses);
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
}

/* ============================================================ the fuzzer */

/*
 * he_fuzz: this thread is the emulator, checked against a model of what
 * muser.ko must answer. FZ_WORKERS VMM threads keep requests coming, one
 * access each at a time, at an offset that names the thread and the
 * access; the model knows which request each reply settles and what the
 * thread must then see (the data or errno sent, EIO for a malformed
 * answer, ETIMEDOUT when nobody answered in time). The fuzzer is also the
 * VMM for guest memory and interrupts, so the model knows what is mapped,
 * pinned (or may be) and enabled.
 */
#define FZ_IOVA		(1ull << 30)
#define FZ_SPAN		(8ul << 20)	/* guest memory the fuzzer's VMM maps */
#define FZ_PAGES	((DMA_SIZE + FZ_SPAN) / PG)
#define FZ_CHUNKS	(1 + FZ_SPAN / CHUNK)
#define FZ_SLOTS	7
#define FZ_WORKERS	3
#define FZ_MAPS		24
#define FZ_FDS		4
#define FZ_STALE	32
#define FZ_CHECK_EVERY	500
#define FZ_REOPEN_EVERY	6000
#define FZ_SECONDS	45
#define FZ_TRACE	96	/* operations printed at the first mismatch */
#define FZ_TIMEOUT_MS	400
#define FZ_SCRATCH	(MUSER_DMA_RW_MAX + 64 * 1024)
#define ALIGN8(x)	(((x) + 7) & ~7ull)

/* How guest memory is mapped: slot 0 is the rig's 2 MiB at iova 0. */
static const struct { uint64_t iova, size; } fz_slots[FZ_SLOTS] = {
	{ 0, DMA_SIZE },
	{ FZ_IOVA, 1ul << 20 },
	{ FZ_IOVA + (1ul << 20), 2ul << 20 },		/* across a chunk */
	{ FZ_IOVA + (3ul << 20), PG },
	{ FZ_IOVA + (3ul << 20) + 2 * PG, (1ul << 20) - 2 * PG },	/* a hole before */
	{ FZ_IOVA + (4ul << 20), 2ul << 20 },
	{ FZ_IOVA + (6ul << 20), 2ul << 20 },
};

enum { PIN_NO, PIN_RW, PIN_RO, PIN_MAYBE };
enum { W_READ, W_WRITE, W_RESET };
enum { W_IDLE, W_BUSY, W_DONE };
enum { BK_OK, BK_NULL, BK_KERNEL, BK_RO, BK_GUARD, BK_NR };
enum { MK_DEV, MK_STATE, MK_DMA };

#define KERNEL_ADDR	((void *)0xffff888000000000ul)

struct fz;

/**
 * struct fz_worker - a VMM thread and what the fuzzer knows of its access.
 * Written by the thread before it sets W_BUSY: @seq, @op, @off, @len,
 * @t0; before W_DONE: @ret, @elapsed, @data_ok. The rest is the fuzzer's:
 * @id of its request once read (0: not seen), @owner the file that read it,
 * @answered, @requeued (may be delivered again, flagged replayed),
 * @foreign (an emulator the model does not follow may have answered),
 * @expect the results it may end with.
 */
struct fz_worker {
	pthread_t thread;
	struct fz *f;
	int idx;
	uint64_t rng;
	sem_t go;
	int state;
	unsigned int seq;
	int op;
	uint64_t off;
	uint32_t len;
	int64_t t0, elapsed;
	long ret;
	bool data_ok;
	uint64_t id;
	int owner;
	bool answered, requeued, foreign, posted, settled;
	long expect[3];
	int nexpect;
};

struct fz_map {
	uint8_t *p;
	uint64_t off, len;
	int prot, fi, kind;
	bool mayw;		/* mapped writable: a window may become so */
};

struct fz {
	struct rig r;
	uint64_t seed, rng;
	int bad;
	long at;
	/* the emulator's files; @cur is attached (-1: none) */
	int fd[FZ_FDS];
	int cur;
	struct muser_device_info l;
	bool vmm_open;
	/* guest memory */
	uint8_t *guest;
	bool mapped[FZ_SLOTS], ro[FZ_SLOTS];
	int64_t unmapped_ms[FZ_SLOTS];
	uint8_t pin[FZ_PAGES];
	uint32_t holds[FZ_CHUNKS];
	unsigned int budget_mb;
	/* VMM threads and their requests */
	struct fz_worker w[FZ_WORKERS];
	volatile int stop;
	bool paused;
	uint64_t stale[FZ_STALE];
	unsigned int nstale;
	/* notices owed to the emulator */
	struct muser_dma_range owed[64];
	int nowed;
	bool irq_notice, close_notice, notices_unknown;
	/* device memory and the state area as they must be */
	uint8_t dev[AREA_SIZE];
	bool dev_unknown;
	uint8_t *state;
	struct fz_map map[FZ_MAPS];
	int nmaps;
	/* interrupts as the VMM set them */
	int msi_efd, intx_efd;
	bool msi_on, intx_on, msi_unknown;
	uint32_t msi_count;
	long msi_fired;
	bool child_alive, foreign_layout;
	bool trace;		/* MUSER_FUZZ_TRACE: print each operation */
	bool paranoid;		/* MUSER_FUZZ_PARANOID: check pins after each */
	char ring[FZ_TRACE][160];
	unsigned int nring, dumped;
	/* buffers: scratch, a guard page after it, two read-only pages */
	uint8_t *mem, *guard, *ro_mem;
	/* what was done */
	unsigned long n[32], ops, calls;
	unsigned long replies, settled, timeouts, children, kills, takeovers;
	uint64_t kinds;
};

static void fz_miss(struct fz *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * The last FZ_TRACE operations, printed at the first mismatch (or each
 * as it happens with MUSER_FUZZ_TRACE=1).
 */
static void fz_trace(struct fz *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fz_trace(struct fz *f, const char *fmt, ...)
{
	char *line = f->ring[f->nring++ % FZ_TRACE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(f->ring[0]), fmt, ap);
	va_end(ap);
	if (f->trace)
		fprintf(stderr, "#   %s\n", line);
}

static void fz_miss(struct fz *f, const char *fmt, ...)
{
	unsigned int i;
	va_list ap;

	/* What led to it, unless printed already. */
	if (!f->trace && f->bad < MAX_REPORTS && f->nring > f->dumped) {
		fprintf(stderr, "# the last operations before this mismatch:\n");
		i = f->nring - f->dumped > FZ_TRACE ? f->nring - FZ_TRACE : f->dumped;
		for (; i < f->nring; i++)
			fprintf(stderr, "#   %s\n", f->ring[i % FZ_TRACE]);
		f->dumped = f->nring;
	}
	va_start(ap, fmt);
	vmiss(&f->bad, f->at, fmt, ap);
	va_end(ap);
}

static bool fz_judge(struct fz *f, struct want w, long ret, int err,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static bool fz_judge(struct fz *f, struct want w, long ret, int err,
		     const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	if (!want_has(w, ret < 0 ? err : 0))
		fz_miss(f, "(the next mismatch follows)");
	ok = vjudge(&f->bad, f->at, w, ret, err, fmt, ap);
	va_end(ap);
	return ok;
}

/* ---------------------------------------------------- guest memory model */

static int fz_page(uint64_t iova)
{
	if (iova < DMA_SIZE)
		return iova / PG;
	if (iova >= FZ_IOVA && iova - FZ_IOVA < FZ_SPAN)
		return (DMA_SIZE + (iova - FZ_IOVA)) / PG;
	return -1;
}

static int fz_chunk(uint64_t iova)
{
	if (iova < CHUNK)
		return 0;
	if (iova >= FZ_IOVA && iova - FZ_IOVA < FZ_SPAN)
		return 1 + (iova - FZ_IOVA) / CHUNK;
	return -1;
}

static uint64_t fz_page_iova(int pg)
{
	return pg < (int)(DMA_SIZE / PG) ? (uint64_t)pg * PG :
	       FZ_IOVA + ((uint64_t)pg * PG - DMA_SIZE);
}

/* Where the VMM's memory for @iova is (its slot must be mapped). */
static uint8_t *fz_gva(struct fz *f, uint64_t iova)
{
	return iova < DMA_SIZE ? (uint8_t *)f->r.c.dma + iova : f->guest + (iova - FZ_IOVA);
}

/* The mapped slot holding @iova, or -1. */
static int fz_slot_at(struct fz *f, uint64_t iova)
{
	int i;

	for (i = 0; i < FZ_SLOTS; i++)
		if (f->mapped[i] && iova >= fz_slots[i].iova &&
		    iova - fz_slots[i].iova < fz_slots[i].size)
			return i;
	return -1;
}

/* What pinning [iova, iova + size) meets first: 0, -EFAULT or -EPERM. */
static int fz_scan(struct fz *f, uint64_t iova, uint64_t size, bool write)
{
	uint64_t at = iova & ~(PG - 1), last = iova + size - 1;
	int s;

	for (;;) {
		s = fz_slot_at(f, at);
		if (s < 0)
			return -EFAULT;
		if (f->ro[s] && write)
			return -EPERM;
		if (fz_slots[s].iova + fz_slots[s].size - 1 >= last)
			return 0;
		at = fz_slots[s].iova + fz_slots[s].size;
	}
}

/* Pinned pages of the model: sure ones and maybe ones, in @chunk or all. */
static void fz_pins(struct fz *f, int chunk, bool held_only, long *yes, long *maybe)
{
	int pg;

	*yes = *maybe = 0;
	for (pg = 0; pg < (int)FZ_PAGES; pg++) {
		int c = fz_chunk(fz_page_iova(pg));

		if ((chunk >= 0 && c != chunk) || (held_only && !f->holds[c]))
			continue;
		if (f->pin[pg] == PIN_MAYBE)
			++*maybe;
		else if (f->pin[pg] != PIN_NO)
			++*yes;
	}
}

/* Pages of [iova, iova + size) in the model: a failure may have pinned them. */
static void fz_maybe_pinned(struct fz *f, uint64_t iova, uint64_t size)
{
	uint64_t first = iova / PG, last = (iova + size - 1) / PG;
	int pg;

	for (pg = 0; pg < (int)FZ_PAGES; pg++) {
		uint64_t at = fz_page_iova(pg);

		if (at / PG >= first && at / PG <= last && f->pin[pg] == PIN_NO &&
		    fz_slot_at(f, at) >= 0)
			f->pin[pg] = PIN_MAYBE;
	}
}

static void fz_pinned(struct fz *f, uint64_t iova, uint64_t size)
{
	uint64_t at;
	int pg, s;

	for (at = iova & ~(PG - 1); at <= iova + size - 1; at += PG) {
		pg = fz_page(at);
		s = fz_slot_at(f, at);
		if (pg < 0 || s < 0) {
			fz_miss(f, "iova 0x%" PRIx64 " is pinned, and not mapped", at);
			return;
		}
		f->pin[pg] = f->ro[s] ? PIN_RO : PIN_RW;
	}
}

/* With a small budget, unheld pins may be evicted at any DMA call. */
static void fz_evictable(struct fz *f)
{
	int pg;

	for (pg = 0; pg < (int)FZ_PAGES; pg++)
		if (f->pin[pg] != PIN_NO && !f->holds[fz_chunk(fz_page_iova(pg))])
			f->pin[pg] = PIN_MAYBE;
}

/*
 * The result of pinning [iova, iova + size), a valid range: ENOSPC when the
 * budget cannot take the pages, else what fz_scan() finds.
 */
static struct want fz_pin_want(struct fz *f, uint64_t iova, uint64_t size, bool write)
{
	uint64_t first = iova / PG, last = (iova + size - 1) / PG;
	uint64_t npages = last - first + 1, budget = (uint64_t)f->budget_mb << 8;
	long yes = 0, maybe = 0, all_yes, all_maybe;
	struct want w = WANT(0);
	int pg;

	if (!f->vmm_open)
		return WANT(ENXIO);
	for (pg = 0; pg < (int)FZ_PAGES; pg++) {
		uint64_t at = fz_page_iova(pg) / PG;

		if (at < first || at > last)
			continue;
		if (f->pin[pg] == PIN_MAYBE)
			maybe++;
		else if (f->pin[pg] != PIN_NO)
			yes++;
	}
	fz_pins(f, -1, false, &all_yes, &all_maybe);
	if (npages - yes - maybe > budget)
		return WANT(ENOSPC);
	w.err[0] = -fz_scan(f, iova, size, write);
	if (npages - yes + all_yes + all_maybe > budget)
		want_add(&w, ENOSPC);
	return w;
}

/* ------------------------------------------------------------- buffers */

/* Copy @len bytes of @src where buffer kind @bk says; the pointer to use. */
static void *fz_place(struct fz *f, int bk, const void *src, size_t len)
{
	size_t k;

	switch (bk) {
	case BK_NULL:
		return NULL;
	case BK_KERNEL:
		return KERNEL_ADDR;
	case BK_RO:
		len = MIN(len, 2 * PG);
		mprotect(f->ro_mem, 2 * PG, PROT_READ | PROT_WRITE);
		memcpy(f->ro_mem, src, len);
		mprotect(f->ro_mem, 2 * PG, PROT_READ);
		return f->ro_mem;
	case BK_GUARD:		/* all but its last 1..8 bytes readable */
		k = 1 + below(&f->rng, 8);
		k = MIN(len, k);
		memcpy(f->guard - (len - k), src, len - k);
		return f->guard - (len - k);
	}
	memcpy(f->mem, src, len);
	return f->mem;
}

static int fz_bk(struct fz *f, unsigned int bad_percent)
{
	return chance(&f->rng, bad_percent) ? 1 + below(&f->rng, BK_NR - 1) : BK_OK;
}

static const char *const bk_names[BK_NR] = { "ok", "NULL", "kernel", "read-only", "guard" };

/* ------------------------------------------------------------ requests */

static long fz_success(const struct fz_worker *w)
{
	return w->op == W_RESET ? 0 : (long)w->len;
}

static void fz_expect(struct fz_worker *w, long a, long b)
{
	w->nexpect = 0;
	w->expect[w->nexpect++] = a;
	if (b != a)
		w->expect[w->nexpect++] = b;
}

static void fz_stale(struct fz *f, uint64_t id)
{
	if (id)
		f->stale[f->nstale++ % FZ_STALE] = id;
}

/* A VMM thread: one access at a time, when the fuzzer says go. */
static void *fz_worker_fn(void *p)
{
	struct fz_worker *w = p;
	struct fz *f = w->f;
	uint8_t buf[8], want[8];
	int i;

	for (;;) {
		sem_wait(&w->go);
		if (f->stop)
			break;
		w->seq++;
		w->op = w->idx == 0 && chance(&w->rng, 4) ? W_RESET :
			chance(&w->rng, 40) ? W_WRITE : W_READ;
		w->len = 1 + below(&w->rng, 8);
		w->off = 0x200 * w->idx + 8 * (w->seq % 32);
		w->t0 = now_ms();
		__atomic_store_n(&w->state, W_BUSY, __ATOMIC_RELEASE);
		pattern(want, BAR0, w->off, w->len);
		if (w->op == W_RESET)
			w->ret = ioctl(f->r.c.device, VFIO_DEVICE_RESET) ? -errno : 0;
		else if (w->op == W_WRITE)
			w->ret = region_write(&f->r.c, BAR0, w->off, want, w->len);
		else
			w->ret = region_read(&f->r.c, BAR0, w->off, buf, w->len);
		w->elapsed = now_ms() - w->t0;
		w->data_ok = true;
		for (i = 0; w->op == W_READ && i < w->ret; i++)
			w->data_ok &= buf[i] == want[i];
		__atomic_store_n(&w->state, W_DONE, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void fz_go(struct fz *f, struct fz_worker *w)
{
	if (f->paused || w->posted)
		return;
	w->id = 0;
	w->owner = -1;
	w->answered = w->requeued = w->settled = false;
	w->foreign = f->child_alive;
	fz_expect(w, -ETIMEDOUT, -ETIMEDOUT);
	w->posted = true;
	sem_post(&w->go);
}

/* Judge the accesses that ended; let their threads go on. */
static void fz_collect(struct fz *f)
{
	int i, k;

	for (i = 0; i < FZ_WORKERS; i++) {
		struct fz_worker *w = &f->w[i];
		bool ok = false;

		if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) != W_DONE) {
			if (!w->posted)
				fz_go(f, w);
			continue;
		}
		for (k = 0; k < w->nexpect; k++)
			ok |= w->ret == w->expect[k];
		ok |= w->foreign && w->ret == fz_success(w);
		if (!ok)
			fz_miss(f, "VMM thread %d: %s of 0x%" PRIx64 " +%u (request %" PRIu64 ") ended with %ld, expected %ld%s",
				i, w->op == W_RESET ? "reset" : w->op == W_WRITE ? "write" : "read",
				w->off, w->len, w->id, w->ret, w->expect[0],
				w->foreign ? " or success" : "");
		if (w->ret > 0 && !w->data_ok)
			fz_miss(f, "VMM thread %d: read of 0x%" PRIx64 " returned other data", i, w->off);
		if (w->elapsed > FZ_TIMEOUT_MS + SLACK_MS)
			fz_miss(f, "VMM thread %d: an access took %lld ms", i, (long long)w->elapsed);
		if (w->ret == -ETIMEDOUT && !w->settled) {
			f->timeouts++;
			if (w->elapsed < FZ_TIMEOUT_MS - 50)
				fz_miss(f, "VMM thread %d: timed out after %lld ms", i,
					(long long)w->elapsed);
		}
		fz_stale(f, w->id);
		__atomic_store_n(&w->state, W_IDLE, __ATOMIC_RELAXED);
		w->posted = false;
		fz_go(f, w);
	}
}

/* A request read by file @fi: whose, and delivered as it may be? */
static void fz_request(struct fz *f, const struct muser_req *h, const uint8_t *data, int fi)
{
	bool replayed = h->flags & MUSER_REQ_F_REPLAYED;
	struct fz_worker *w = NULL;
	uint8_t want[8];
	unsigned int i;

	if (h->flags & ~MUSER_REQ_F_REPLAYED)
		fz_miss(f, "request %" PRIu64 " has flags 0x%x", (uint64_t)h->id, h->flags);
	if (h->type == MUSER_REQ_RESET) {
		if (h->len || h->data_len)
			fz_miss(f, "RESET %" PRIu64 " with len %u", (uint64_t)h->id, h->len);
		if (__atomic_load_n(&f->w[0].state, __ATOMIC_ACQUIRE) == W_BUSY &&
		    f->w[0].op == W_RESET)
			w = &f->w[0];
	} else if (h->type == MUSER_REQ_READ || h->type == MUSER_REQ_WRITE) {
		i = h->offset / 0x200;
		if (h->region != BAR0 || i >= FZ_WORKERS || h->len < 1 || h->len > 8 ||
		    h->data_len != (h->type == MUSER_REQ_WRITE ? h->len : 0)) {
			fz_miss(f, "request %" PRIu64 ": type %u region %u offset 0x%" PRIx64 " len %u data %u",
				(uint64_t)h->id, h->type, h->region, (uint64_t)h->offset,
				h->len, h->data_len);
			return;
		}
		w = &f->w[i];
		if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) != W_BUSY ||
		    w->off != h->offset || w->len != h->len ||
		    w->op != (h->type == MUSER_REQ_WRITE ? W_WRITE : W_READ))
			w = NULL;
		if (h->type == MUSER_REQ_WRITE) {
			pattern(want, BAR0, h->offset, h->len);
			if (memcmp(data, want, h->len))
				fz_miss(f, "WRITE %" PRIu64 " carries other data", (uint64_t)h->id);
		}
	} else {
		fz_miss(f, "request %" PRIu64 " of type %u", (uint64_t)h->id, h->type);
		return;
	}
	if (!w) {	/* staged before its access timed out: a dead one */
		fz_stale(f, h->id);
		return;
	}
	if (!w->id) {
		if (replayed && !w->foreign)
			fz_miss(f, "request %" PRIu64 " is new but flagged replayed", (uint64_t)h->id);
	} else if (w->id != h->id) {
		fz_miss(f, "VMM thread %d: request %" PRIu64 " for the access of request %" PRIu64,
			w->idx, (uint64_t)h->id, w->id);
	} else if (!w->requeued || !replayed || w->answered) {
		fz_miss(f, "request %" PRIu64 " delivered again (%s, %s)", (uint64_t)h->id,
			replayed ? "replayed" : "not flagged", w->requeued ? "requeued" : "never put back");
	}
	w->id = h->id;
	w->owner = fi;
	w->requeued = false;
}

static void fz_notice(struct fz *f, const struct muser_req *h, const uint8_t *data)
{
	struct muser_dma_range rg;
	int i;

	switch (h->type) {
	case MUSER_REQ_DMA_UNMAP:
		if (h->len != sizeof(rg) || h->data_len != sizeof(rg)) {
			fz_miss(f, "DMA_UNMAP notice of %u bytes", h->data_len);
			return;
		}
		memcpy(&rg, data, sizeof(rg));
		if (!rg.size)
			fz_miss(f, "DMA_UNMAP notice of 0 bytes at 0x%" PRIx64, (uint64_t)rg.iova);
		for (i = 0; i < f->nowed; ) {
			struct muser_dma_range *o = &f->owed[i];

			if (rg.size == ~0ull ||
			    (o->iova <= rg.iova + (rg.size - 1) && rg.iova <= o->iova + (o->size - 1)))
				*o = f->owed[--f->nowed];
			else
				i++;
		}
		return;
	case MUSER_REQ_IRQ_STATE:
		f->irq_notice = false;
		break;
	case MUSER_REQ_VMM_CLOSE:
		f->close_notice = false;
		break;
	default:
		fz_miss(f, "posted notice of type %u", h->type);
		return;
	}
	if (h->len || h->data_len)
		fz_miss(f, "notice %u with %u bytes", h->type, h->data_len);
}

/* Parse what read() returned: whole requests, padded. */
static void fz_take(struct fz *f, const uint8_t *buf, size_t n, int fi)
{
	size_t pos = 0;

	while (pos < n) {
		const struct muser_req *h = (const void *)(buf + pos);

		if (n - pos < sizeof(*h) || h->data_len > MUSER_MAX_DATA ||
		    n - pos - sizeof(*h) < h->data_len) {
			fz_miss(f, "read() returned a malformed stream at %zu of %zu", pos, n);
			return;
		}
		if (h->id)
			fz_request(f, h, (const uint8_t *)(h + 1), fi);
		else
			fz_notice(f, h, (const uint8_t *)(h + 1));
		pos += sizeof(*h) + ALIGN8(h->data_len);
	}
	if (pos != n)
		fz_miss(f, "read() returned %zu bytes, requests end at %zu", n, pos);
}

/* A good read by the attached file, if any: what is pending. */
static int fz_read_all(struct fz *f)
{
	ssize_t n;

	if (f->cur < 0)
		return 0;
	n = xread(f->fd[f->cur], f->mem, 4 * MUSER_READ_BUF_MIN);
	if (n > 0)
		fz_take(f, f->mem, n, f->cur);
	else
		fz_judge(f, WANT(EAGAIN), n, -n, "read() of the attached file");
	return n > 0;
}

/* Model a detach (or release, or takeover) of the attached file. */
static void fz_detached(struct fz *f)
{
	int i;

	for (i = 0; i < FZ_WORKERS; i++) {
		struct fz_worker *w = &f->w[i];

		if (w->owner == f->cur && !w->answered) {
			w->owner = -1;
			w->requeued = true;
		}
	}
	memset(f->holds, 0, sizeof(f->holds));
	f->nowed = 0;	/* unmap notices were about the holds */
	f->cur = -1;
}

/* ------------------------------------------------------------- replies */

enum { RO_CONSUME, RO_SETTLE_EINVAL, RO_EINVAL, RO_ENOENT, RO_ENOTCONN };

/* One reply of a write(): what it says, whose request it answers. */
struct rdesc {
	uint64_t id;
	int32_t error;
	uint32_t len;
	size_t wire;		/* its bytes in the buffer */
	struct fz_worker *w;
	long value;		/* what the VMM thread sees when it settles */
};

static int fz_outcome(struct fz *f, int fi, const struct rdesc *d, size_t left)
{
	uint32_t want;

	if (left < sizeof(struct muser_reply) || d->error < 0 || d->error >= 512 ||
	    d->len > MUSER_MAX_DATA || (d->error && d->len) ||
	    sizeof(struct muser_reply) + ALIGN8(d->len) > left)
		return RO_EINVAL;
	if (fi != f->cur)
		return RO_ENOTCONN;
	if (!d->w || d->w->id != d->id || d->w->owner != fi || d->w->answered)
		return RO_ENOENT;
	want = !d->error && d->w->op == W_READ ? d->w->len : 0;
	return d->len == want ? RO_CONSUME : RO_SETTLE_EINVAL;
}

/*
 * write() @total bytes at @buf by file @fi: the replies @d, maybe a
 * fragment after them; @fault: the last one runs into unreadable memory.
 */
static void fz_write(struct fz *f, int fi, const struct rdesc *d, int nd,
		     const void *buf, size_t total, bool fault)
{
	ssize_t ret = xwrite(f->fd[fi], buf, total);
	size_t pos = 0;
	int i, o;

	f->replies += nd;
	for (i = 0; i < nd; i++) {
		struct fz_worker *w = d[i].w;

		o = fz_outcome(f, fi, &d[i], total - pos);
		if (fault && i == nd - 1 && o != RO_EINVAL)
			o = -1;
		if (ret > 0 && pos + d[i].wire <= (size_t)ret) {
			if (o != RO_CONSUME) {
				fz_miss(f, "write() took reply %d of %d (id %" PRIu64 " error %d len %u): outcome %d",
					i, nd, d[i].id, d[i].error, d[i].len, o);
				return;
			}
			w->answered = w->settled = true;
			w->owner = -1;
			fz_expect(w, d[i].value, d[i].value);
			f->settled++;
			pos += d[i].wire;
			continue;
		}
		if (ret > 0 && (size_t)ret != pos) {
			fz_miss(f, "write() returned %zd, reply %d starts at %zu", ret, i, pos);
			return;
		}
		switch (o) {
		case -1:
			fz_judge(f, ret > 0 ? WANT(0) : WANT(EFAULT), ret, -ret,
				 "write() of a reply running into a guard page");
			break;
		case RO_CONSUME:	/* only if it timed out just then */
			fz_judge(f, ret > 0 ? WANT(0) : WANT(ENOENT), ret, -ret,
				 "write() of a good reply to %" PRIu64, d[i].id);
			w->answered = true;
			w->owner = -1;
			fz_expect(w, -ETIMEDOUT, -ETIMEDOUT);
			break;
		case RO_SETTLE_EINVAL:
			fz_judge(f, ret > 0 ? WANT(0) : WANT(EINVAL, ENOENT), ret, -ret,
				 "write() of reply %" PRIu64 " with len %u", d[i].id, d[i].len);
			w->answered = true;
			w->owner = -1;
			if (ret > 0)
				fz_expect(w, -EIO, -ETIMEDOUT);
			else
				fz_expect(w, ret == -EINVAL ? -EIO : -ETIMEDOUT,
					  ret == -EINVAL ? -EIO : -ETIMEDOUT);
			break;
		default:
			fz_judge(f, ret > 0 ? WANT(0) :
				 o == RO_EINVAL ? WANT(EINVAL) :
				 o == RO_ENOENT ? WANT(ENOENT) : WANT(ENOTCONN),
				 ret, -ret, "write() of reply %" PRIu64 " (error %d len %u, file %d of %d attached)",
				 d[i].id, d[i].error, d[i].len, fi, f->cur);
		}
		return;
	}
	/* All taken; a trailing fragment shorter than a header is left. */
	if (nd && ret != (ssize_t)pos)
		fz_miss(f, "write() of %d whole replies (%zu bytes) returned %zd", nd, pos, ret);
	if (!nd)
		fz_judge(f, WANT(EINVAL), ret, -ret, "write() of %zu bytes", total);
}

/* A worker whose request file @fi read and has not answered, or NULL. */
static struct fz_worker *fz_owned(struct fz *f, int fi)
{
	int i, k = below(&f->rng, FZ_WORKERS);

	for (i = 0; i < FZ_WORKERS; i++) {
		struct fz_worker *w = &f->w[(i + k) % FZ_WORKERS];

		if (w->id && w->owner == fi && !w->answered)
			return w;
	}
	return NULL;
}

/* Append reply @d to @buf at @pos: the right data for a good READ reply. */
static size_t fz_put(uint8_t *buf, size_t pos, struct rdesc *d, bool pad)
{
	uint8_t data[MUSER_MAX_DATA + 8];
	size_t dlen = d->len > MUSER_MAX_DATA ? 8 : d->len;

	if (d->w && d->w->op == W_READ && !d->error)
		pattern(data, BAR0, d->w->off, MIN(dlen, sizeof(data)));
	else
		memset(data, 0xee, MIN(dlen, sizeof(data)));
	pos = put_reply(buf, pos, d->id, d->error, d->len, data, MIN(dlen, sizeof(data)), pad);
	return pos;
}

/* A reply as an emulator means it: success, or an errno. */
static struct rdesc fz_good(struct fz *f, struct fz_worker *w)
{
	struct rdesc d = { .id = w->id, .w = w };
	uint64_t *r = &f->rng;

	if (chance(r, 25)) {
		d.error = chance(r, 50) ? (int32_t)(1 + below(r, 511)) :
			  (int32_t[]){ 1, EIO, EINVAL, ETIMEDOUT, EAGAIN, 511 }[below(r, 6)];
		d.value = -d.error;
	} else {
		d.len = w->op == W_READ ? w->len : 0;
		d.value = fz_success(w);
	}
	d.wire = sizeof(struct muser_reply) + ALIGN8(d.len);
	return d;
}

/* An id no pending request of the attached file has. */
static uint64_t fz_dead_id(struct fz *f)
{
	uint64_t *r = &f->rng;

	switch (below(r, 4)) {
	case 0:
		return 0;
	case 1:
		return U64_MAX - below(r, 3);
	case 2:
		return (1ull << 40) + rnd(r) % (1ull << 40);
	}
	return f->nstale ? f->stale[below(r, MIN(f->nstale, FZ_STALE))] : 1ull << 50;
}

static void fz_reply(struct fz *f)
{
	struct fz_worker *w;
	struct rdesc d;
	size_t n;
	int bk;

	if (f->cur < 0 || !(w = fz_owned(f, f->cur))) {
		fz_read_all(f);
		return;
	}
	d = fz_good(f, w);
	n = fz_put(f->mem + FZ_SCRATCH / 2, 0, &d, true);
	bk = chance(&f->rng, 10) ? BK_RO : BK_OK;
	fz_write(f, f->cur, &d, 1, fz_place(f, bk, f->mem + FZ_SCRATCH / 2, n), n, false);
}

/* A malformed reply, a wrong id, or one cut short or faulting. */
static void fz_reply_bad(struct fz *f)
{
	uint64_t *r = &f->rng;
	int fi = f->cur >= 0 && chance(r, 90) ? f->cur : (int)below(r, FZ_FDS);
	struct fz_worker *w = fz_owned(f, f->cur);
	uint8_t *buf = f->mem + FZ_SCRATCH / 2;
	struct rdesc d = { 0 };
	bool fault = false, pad = true;
	size_t n, cut;
	void *at;

	if (f->fd[fi] < 0)
		return;
	d.w = w;
	d.id = w ? w->id : fz_dead_id(f);
	switch (below(r, 6)) {
	case 0:		/* a length the request does not take */
		if (w && w->op == W_READ)
			d.len = chance(r, 50) ? w->len + 1 + below(r, 8) : below(r, w->len);
		else
			d.len = 1 + below(r, chance(r, 80) ? 8 : MUSER_MAX_DATA);
		break;
	case 1:		/* a bad header */
		switch (below(r, 5)) {
		case 0: d.error = -(int32_t)(1 + below(r, 4096)); break;
		case 1: d.error = 512 + below(r, 5); break;
		case 2: d.error = chance(r, 50) ? INT_MAX : INT_MIN; break;
		case 3: d.len = MUSER_MAX_DATA + 1 + below(r, 16); break;
		default: d.error = 1 + below(r, 511); d.len = 1 + below(r, 8); break;
		}
		break;
	case 2:		/* a request nobody has */
		d.id = fz_dead_id(f);
		d.w = NULL;
		d.len = w && w->op == W_READ ? w->len : 0;
		break;
	case 3:		/* right, but from the wrong file */
		if (!w)
			return;
		d = fz_good(f, w);
		fi = (f->cur + 1 + below(r, FZ_FDS - 1)) % FZ_FDS;
		if (f->fd[fi] < 0)
			return;
		break;
	case 4:		/* cut short: the data or the header */
		if (!w)
			return;
		d = fz_good(f, w);
		break;
	default:	/* running into a guard page */
		if (!w)
			return;
		d = fz_good(f, w);
		fault = true;
		break;
	}
	d.wire = sizeof(struct muser_reply) + (d.len > MUSER_MAX_DATA ? 8 : ALIGN8(d.len));
	if (chance(r, 20) && d.len % 8 && !fault)
		pad = false;
	n = fz_put(buf, 0, &d, pad);
	if (!pad)
		d.wire = n;
	at = buf;
	if (fault) {
		/* Within what the kernel reads: the header and len bytes. */
		cut = 1 + below(r, sizeof(struct muser_reply) + d.len - 1);
		memcpy(f->guard - cut, buf, cut);
		at = f->guard - cut;
		fz_write(f, fi, &d, 1, at, n, true);
		return;
	}
	if (d.w && d.error == 0 && below(r, 2) && d.wire == n && n > sizeof(struct muser_reply)) {
		n -= 1 + below(r, n - sizeof(struct muser_reply));	/* data cut */
	} else if (below(r, 10) == 0) {
		n = below(r, sizeof(struct muser_reply));		/* header cut */
		fz_write(f, fi, &d, 0, at, n, false);
		return;
	}
	fz_write(f, fi, &d, 1, at, n, false);
}

/* Several replies in one write(), maybe a bad one among them. */
static void fz_reply_batch(struct fz *f)
{
	uint64_t *r = &f->rng;
	uint8_t *buf = f->mem + FZ_SCRATCH / 2;
	struct rdesc d[FZ_WORKERS + 2];
	size_t n = 0;
	int nd = 0, i, tail;

	if (f->cur < 0)
		return;
	fz_read_all(f);
	for (i = 0; i < FZ_WORKERS; i++) {
		struct fz_worker *w = &f->w[i];

		if (w->id && w->owner == f->cur && !w->answered)
			d[nd++] = fz_good(f, w);
	}
	if (chance(r, 40)) {		/* one bad, anywhere */
		struct rdesc b = { .id = fz_dead_id(f) };

		if (chance(r, 50))
			b.error = -1;
		b.wire = sizeof(struct muser_reply);
		i = below(r, nd + 1);
		memmove(&d[i + 1], &d[i], (nd - i) * sizeof(d[0]));
		d[i] = b;
		nd++;
	}
	for (i = 0; i < nd; i++)
		n = fz_put(buf, n, &d[i], true);
	tail = chance(r, 20) ? 1 + below(r, sizeof(struct muser_reply) - 1) : 0;
	memset(buf + n, 0, tail);
	fz_write(f, f->cur, d, nd, buf, n + tail, false);
}

/* Answer everything the attached file holds (before a takeover, say). */
static void fz_answer_all(struct fz *f)
{
	struct fz_worker *w;
	struct rdesc d;
	size_t n;

	while (f->cur >= 0 && (w = fz_owned(f, f->cur))) {
		d = fz_good(f, w);
		n = fz_put(f->mem, 0, &d, true);
		fz_write(f, f->cur, &d, 1, f->mem, n, false);
	}
}

/* read() with a buffer of any size and kind, from any file. */
static void fz_read(struct fz *f)
{
	static const size_t lens[] = { MUSER_READ_BUF_MIN, 2 * MUSER_READ_BUF_MIN,
				       64 * 1024, 1ul << 20, MUSER_READ_BUF_MIN - 1,
				       sizeof(struct muser_req), 0 };
	uint64_t *r = &f->rng;
	int fi = f->cur >= 0 && chance(r, 85) ? f->cur : (int)below(r, FZ_FDS);
	int bk = fz_bk(f, 12);
	size_t len = chance(r, 70) ? lens[0] : lens[below(r, ARRAY_SIZE(lens))];
	uint8_t *dst = bk == BK_OK ? f->mem : bk == BK_NULL ? NULL :
		       bk == BK_KERNEL ? KERNEL_ADDR : bk == BK_RO ? f->ro_mem :
		       f->guard - 100;
	struct want w;
	ssize_t n;

	if (f->fd[fi] < 0)
		return;
	if (bk == BK_KERNEL)		/* access_ok() in the VFS, first */
		w = WANT(EFAULT);
	else if (len < MUSER_READ_BUF_MIN)
		w = WANT(EINVAL);
	else if (fi != f->cur)
		w = WANT(ENOTCONN);
	else if (bk == BK_OK)
		w = WANT(0, EAGAIN);
	else
		w = bk == BK_GUARD ? WANT(0, EFAULT, EAGAIN) : WANT(EFAULT, EAGAIN);
	n = xread(f->fd[fi], dst, len);
	fz_judge(f, w, n, -n, "read() of %zu bytes into a %s buffer, file %d of %d attached",
		 len, bk_names[bk], fi, f->cur);
	if (n > 0 && fi == f->cur && (bk == BK_OK || bk == BK_GUARD))
		fz_take(f, dst, n, fi);
}

/* ------------------------------------------------------------- ioctls */

/* The argument of an ioctl: @arg placed as @bk says; the result judged. */
static long fz_ioctl(struct fz *f, int fi, unsigned long cmd, const void *arg,
		     size_t len, int bk, void **at)
{
	void *p = fz_place(f, bk, arg, len);

	if (at)
		*at = p;
	return xioctl(f->fd[fi], cmd, p);
}

static void fz_do_dma_map(struct fz *f, int fi, struct muser_dma_map m, int bk)
{
	bool attached = fi == f->cur, valid;
	struct muser_dma_map *p;
	struct want w;
	long ret;

	valid = !(m.flags & ~(MUSER_DMA_F_WRITE | MUSER_DMA_F_PROBE)) && m.size &&
		m.iova <= MUSER_DMA_MAX_IOVA && m.size <= MUSER_DMA_MAX_IOVA - m.iova + 1;
	if (bk == BK_NULL || bk == BK_KERNEL || bk == BK_GUARD)
		w = WANT(EFAULT);
	else if (m.argsz < sizeof(m))
		w = WANT(EINVAL);
	else if (!attached)
		w = WANT(ENOTCONN);
	else if (!valid)
		w = WANT(EINVAL);
	else if (bk == BK_RO)
		w = WANT(EFAULT);
	else
		w = fz_pin_want(f, m.iova, m.size, m.flags & MUSER_DMA_F_WRITE);
	if (f->budget_mb < 64 && w.err[0] != EFAULT && attached && valid && bk == BK_OK)
		want_add(&w, ENOSPC);
	ret = fz_ioctl(f, fi, MUSER_IOC_DMA_MAP, &m, sizeof(m), bk, (void **)&p);
	fz_trace(f, "DMA_MAP 0x%" PRIx64 " +0x%" PRIx64 " flags %#x bk %d file %d: %ld",
		 (uint64_t)m.iova, (uint64_t)m.size, m.flags, bk, fi, ret);
	fz_judge(f, w, ret, -ret, "DMA_MAP argsz %u flags 0x%x iova 0x%" PRIx64 " size 0x%" PRIx64 " (%s, file %d of %d)",
		 m.argsz, m.flags, (uint64_t)m.iova, (uint64_t)m.size, bk_names[bk], fi, f->cur);
	if (!ret && p->offset != MUSER_DMA_OFFSET + (m.iova & ~(PG - 1)))
		fz_miss(f, "DMA_MAP of 0x%" PRIx64 ": offset 0x%" PRIx64, (uint64_t)m.iova,
			(uint64_t)p->offset);
	if (!ret) {
		uint64_t c;

		fz_pinned(f, m.iova, m.size);
		for (c = m.iova / CHUNK; c <= (m.iova + m.size - 1) / CHUNK; c++)
			if (fz_chunk(c * CHUNK) >= 0)
				f->holds[fz_chunk(c * CHUNK)]++;
	} else if (attached && valid && bk == BK_OK) {
		fz_maybe_pinned(f, m.iova, m.size);
		if (want_has(w, ENOSPC))
			fz_evictable(f);
	}
	if (f->budget_mb < 64)
		fz_evictable(f);
}

static void fz_do_dma_release(struct fz *f, int fi, struct muser_dma_map m, int bk)
{
	bool valid = !(m.flags & ~(MUSER_DMA_F_WRITE | MUSER_DMA_F_PROBE)) && m.size &&
		     m.iova <= MUSER_DMA_MAX_IOVA && m.size <= MUSER_DMA_MAX_IOVA - m.iova + 1;
	uint64_t c, lo = m.iova / CHUNK, hi = (m.iova + m.size - 1) / CHUNK;
	bool held = valid && hi - lo < FZ_CHUNKS;
	struct want w;
	long ret;

	for (c = lo; held && c <= hi; c++)
		held = fz_chunk(c * CHUNK) >= 0 && f->holds[fz_chunk(c * CHUNK)];
	if (bk == BK_NULL || bk == BK_KERNEL || bk == BK_GUARD)
		w = WANT(EFAULT);
	else if (m.argsz < sizeof(m))
		w = WANT(EINVAL);
	else if (fi != f->cur)
		w = WANT(ENOTCONN);
	else
		w = held ? WANT(0) : WANT(EINVAL);
	ret = fz_ioctl(f, fi, MUSER_IOC_DMA_RELEASE, &m, sizeof(m), bk, NULL);
	fz_trace(f, "DMA_RELEASE 0x%" PRIx64 " +0x%" PRIx64 ": %ld",
		 (uint64_t)m.iova, (uint64_t)m.size, ret);
	fz_judge(f, w, ret, -ret, "DMA_RELEASE argsz %u flags 0x%x iova 0x%" PRIx64 " size 0x%" PRIx64 " (%s, file %d of %d)",
		 m.argsz, m.flags, (uint64_t)m.iova, (uint64_t)m.size, bk_names[bk], fi, f->cur);
	if (!ret)
		for (c = lo; c <= hi && held; c++)
			f->holds[fz_chunk(c * CHUNK)]--;
	if (f->budget_mb < 64)
		fz_evictable(f);
}

static void fz_do_dma_rw(struct fz *f, int fi, struct muser_dma_rw rw, int bk, int data_bk)
{
	bool write = rw.flags & MUSER_DMA_F_WRITE, attached = fi == f->cur, valid;
	uint8_t *data = f->mem + FZ_SCRATCH - MUSER_DMA_RW_MAX;
	struct want w;
	long ret;
	int scan;

	valid = !(rw.flags & ~(MUSER_DMA_F_WRITE | MUSER_DMA_F_PROBE)) && rw.size &&
		rw.iova <= MUSER_DMA_MAX_IOVA && rw.size <= MUSER_DMA_MAX_IOVA - rw.iova + 1 &&
		rw.size <= MUSER_DMA_RW_MAX;
	switch (data_bk) {
	case BK_NULL: rw.data = 0; break;
	case BK_KERNEL: rw.data = (uintptr_t)KERNEL_ADDR; break;
	case BK_RO: rw.data = (uintptr_t)f->ro_mem; break;
	case BK_GUARD: rw.data = (uintptr_t)(f->guard - below(&f->rng, MIN(rw.size, PG))); break;
	default: rw.data = (uintptr_t)data;
	}
	if (bk == BK_NULL || bk == BK_KERNEL || bk == BK_GUARD)
		w = WANT(EFAULT);
	else if (rw.argsz < sizeof(rw))
		w = WANT(EINVAL);
	else if (!attached)
		w = WANT(ENOTCONN);
	else if (!valid)
		w = WANT(EINVAL);
	else if (!f->vmm_open)
		w = WANT(ENXIO);
	else {
		scan = fz_scan(f, rw.iova, rw.size, write);
		w = WANT(-scan);
		/* A bad buffer faults, unless pinning fails first. */
		if (data_bk != BK_OK && !(data_bk == BK_RO && write)) {
			w = WANT(EFAULT);
			if (scan)
				want_add(&w, -scan);
		}
		if (f->budget_mb < 64)
			want_add(&w, ENOSPC);
	}
	ret = fz_ioctl(f, fi, MUSER_IOC_DMA_RW, &rw, sizeof(rw), bk, NULL);
	fz_trace(f, "DMA_RW 0x%" PRIx64 " +0x%" PRIx64 " flags %#x: %ld",
		 (uint64_t)rw.iova, (uint64_t)rw.size, rw.flags, ret);
	if (!fz_judge(f, w, ret, -ret, "DMA_RW argsz %u flags 0x%x iova 0x%" PRIx64 " size 0x%" PRIx64 " (%s, data %s, file %d of %d)",
		      rw.argsz, rw.flags, (uint64_t)rw.iova, (uint64_t)rw.size,
		      bk_names[bk], bk_names[data_bk], fi, f->cur))
		return;
	if (!ret && data_bk == BK_OK) {
		uint64_t i;

		for (i = 0; i < rw.size; i++)
			if (data[i] != *fz_gva(f, rw.iova + i)) {
				fz_miss(f, "DMA_RW %s of iova 0x%" PRIx64 ": byte %" PRIu64 " differs",
					write ? "write" : "read", (uint64_t)rw.iova, i);
				break;
			}
	}
	if (!ret)
		fz_pinned(f, rw.iova, rw.size);
	else if (attached && valid && bk == BK_OK)
		fz_maybe_pinned(f, rw.iova, rw.size);
	if (f->budget_mb < 64)
		fz_evictable(f);
}

/* A range near guest memory, or anywhere. */
static void fz_range(struct fz *f, __u64 *iova, __u64 *size)
{
	uint64_t *r = &f->rng;
	int s = below(r, FZ_SLOTS);

	switch (below(r, 12)) {
	case 0:
		*iova = edge64(r, MUSER_DMA_MAX_IOVA);
		*size = edge64(r, PG);
		return;
	case 1:
		*iova = FZ_IOVA + below(r, FZ_SPAN);
		*size = edge64(r, FZ_SPAN);
		return;
	case 2:		/* a slot's edges */
		*iova = fz_slots[s].iova + (chance(r, 50) ? 0 : fz_slots[s].size) -
			below(r, 2 * PG) + PG;
		*size = 1 + below(r, 3 * PG);
		return;
	}
	*iova = fz_slots[s].iova + below(r, fz_slots[s].size);
	*size = chance(r, 60) ? 1 + below(r, 256) : 1 + below(r, 256 * 1024);
}

static int fz_fi(struct fz *f, unsigned int other_percent)
{
	int fi = f->cur >= 0 && !chance(&f->rng, other_percent) ? f->cur :
		 (int)below(&f->rng, FZ_FDS);

	return f->fd[fi] >= 0 ? fi : -1;
}

static void fz_dma_map(struct fz *f)
{
	struct muser_dma_map m = { .argsz = sizeof(m) };
	int fi = fz_fi(f, 8);

	if (fi < 0)
		return;
	fz_range(f, &m.iova, &m.size);
	m.flags = chance(&f->rng, 40) ? MUSER_DMA_F_WRITE : 0;
	if (chance(&f->rng, 20))
		m.flags |= MUSER_DMA_F_PROBE;
	fz_do_dma_map(f, fi, m, fz_bk(f, 4));
}

static void fz_dma_release(struct fz *f)
{
	struct muser_dma_map m = { .argsz = sizeof(m) };
	int fi = fz_fi(f, 8), c;

	if (fi < 0)
		return;
	fz_range(f, &m.iova, &m.size);
	/* Mostly what is held. */
	for (c = 0; c < (int)FZ_CHUNKS && chance(&f->rng, 70); c++) {
		int k = (c + below(&f->rng, FZ_CHUNKS)) % FZ_CHUNKS;

		if (f->holds[k]) {
			m.iova = (k ? FZ_IOVA + (uint64_t)(k - 1) * CHUNK : 0) + below(&f->rng, CHUNK);
			m.size = 1 + below(&f->rng, CHUNK - m.iova % CHUNK);
			break;
		}
	}
	fz_do_dma_release(f, fi, m, fz_bk(f, 4));
}

static void fz_dma_rw(struct fz *f)
{
	struct muser_dma_rw rw = { .argsz = sizeof(rw) };
	int fi = fz_fi(f, 8);

	if (fi < 0)
		return;
	fz_range(f, &rw.iova, &rw.size);
	if (chance(&f->rng, 50))
		rw.size = MIN(rw.size, 4 * PG);
	rw.flags = chance(&f->rng, 40) ? MUSER_DMA_F_WRITE : 0;
	if (rw.flags && rw.size <= MUSER_DMA_RW_MAX && fz_scan(f, rw.iova, rw.size, false) == 0)
		/* Write what is there: guest memory keeps its content. */
		memcpy(f->mem + FZ_SCRATCH - MUSER_DMA_RW_MAX, fz_gva(f, rw.iova), rw.size);
	else if (rw.flags && rw.size <= MUSER_DMA_RW_MAX)
		rw.flags = 0;
	fz_do_dma_rw(f, fi, rw, fz_bk(f, 3), fz_bk(f, 8));
}

/* MUSER_IOC_TRIGGER_IRQ against the layout and what the VMM enabled. */
static void fz_do_trigger(struct fz *f, int fi, struct muser_irq_trigger t, int bk)
{
	uint32_t count = t.index < MUSER_NUM_IRQS ? f->l.irqs[t.index].count : 0;
	bool on = t.index == VFIO_PCI_INTX_IRQ_INDEX ? f->intx_on : f->msi_on;
	struct want w;
	long ret;

	if (fi != f->cur)
		w = WANT(ENOTCONN);
	else if (bk == BK_NULL || bk == BK_KERNEL || bk == BK_GUARD)
		w = WANT(EFAULT);
	else if (t.argsz < sizeof(t) || t.index >= VFIO_PCI_REQ_IRQ_INDEX ||
		 !t.count || t.start >= count || t.count > count - t.start)
		w = WANT(EINVAL);
	else
		w = on ? WANT(0) : WANT(ENOENT);
	ret = fz_ioctl(f, fi, MUSER_IOC_TRIGGER_IRQ, &t, sizeof(t), bk, NULL);
	fz_judge(f, w, ret, -ret, "TRIGGER_IRQ argsz %u index %u start %u count %u (%s, file %d of %d)",
		 t.argsz, t.index, t.start, t.count, bk_names[bk], fi, f->cur);
	if (!ret && t.index == VFIO_PCI_MSI_IRQ_INDEX)
		f->msi_fired++;
}

static void fz_do_irq_state(struct fz *f, int fi, uint32_t argsz, uint32_t index, int bk)
{
	struct muser_irq_state st = { .argsz = argsz, .index = index }, *p;
	bool valid = argsz >= sizeof(st) && index < MUSER_NUM_IRQS;
	struct want w;
	long ret;

	if (bk == BK_NULL || bk == BK_KERNEL)
		w = WANT(EFAULT);
	else if (bk == BK_GUARD)
		w = valid ? WANT(EFAULT) : WANT(EFAULT, EINVAL);
	else if (!valid)
		w = WANT(EINVAL);
	else
		w = bk == BK_RO ? WANT(EFAULT) : WANT(0);
	memset(st.enabled, 0xa5, sizeof(st.enabled));
	ret = fz_ioctl(f, fi, MUSER_IOC_GET_IRQ_STATE, &st, sizeof(st), bk, (void **)&p);
	fz_judge(f, w, ret, -ret, "GET_IRQ_STATE argsz %u index %u (%s)", argsz, index,
		 bk_names[bk]);
	if (!ret && index == VFIO_PCI_MSI_IRQ_INDEX && f->vmm_open &&
	    (p->count != f->msi_count || p->enabled[0] != f->msi_on ||
	     p->enabled[1] || p->flags))
		fz_miss(f, "GET_IRQ_STATE of MSI: count %u enabled 0x%" PRIx64 " (VMM: %s)",
			p->count, (uint64_t)p->enabled[0], f->msi_on ? "on" : "off");
	if (!ret && index == VFIO_PCI_MSIX_IRQ_INDEX && (p->count || p->enabled[0]))
		fz_miss(f, "GET_IRQ_STATE of MSI-X: count %u", p->count);
}

static void fz_trigger(struct fz *f)
{
	uint64_t *r = &f->rng;
	struct muser_irq_trigger t = {
		.argsz = chance(r, 95) ? sizeof(t) : edge32(r, sizeof(t)),
		.index = chance(r, 80) ? below(r, 2) : edge32(r, MUSER_NUM_IRQS),
		.start = chance(r, 80) ? 0 : edge32(r, 1),
		.count = chance(r, 80) ? 1 : edge32(r, 1),
	};
	int fi = fz_fi(f, 10);

	if (fi >= 0)
		fz_do_trigger(f, fi, t, fz_bk(f, 4));
}

static void fz_irq_state(struct fz *f)
{
	uint64_t *r = &f->rng;
	int fi = below(r, FZ_FDS);

	if (f->fd[fi] >= 0)
		fz_do_irq_state(f, fi, chance(r, 85) ? sizeof(struct muser_irq_state) :
				edge32(r, sizeof(struct muser_irq_state)),
				chance(r, 85) ? below(r, MUSER_NUM_IRQS) : edge32(r, MUSER_NUM_IRQS),
				fz_bk(f, 10));
}

/* ------------------------------------------------------------- layouts */

/* What muser_layout_validate() must take: the uapi's rules. */
static bool fz_layout_ok(const struct muser_device_info *l)
{
	static const uint32_t irq_flags[MUSER_NUM_IRQS] = {
		VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
		VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
		VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
		VFIO_IRQ_INFO_EVENTFD,
	};
	static const uint32_t irq_max[MUSER_NUM_IRQS] = { 1, 32, 2048, 1 };
	const uint32_t rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	uint32_t i, j;

	if (l->argsz < sizeof(*l) || l->version != MUSER_API_VERSION ||
	    l->flags & ~MUSER_DEV_F_RESET || l->num_regions < CONFIG + 1 ||
	    l->num_regions > MUSER_NUM_REGIONS || l->num_irqs != MUSER_NUM_IRQS)
		return false;
	for (i = 0; i < MUSER_NUM_REGIONS; i++) {
		const struct muser_region *g = &l->regions[i];

		uint32_t allowed = i < 6 ? rw | MUSER_REGION_F_POSTED_WRITES : rw;

		if ((i >= l->num_regions && g->size) || g->flags & ~allowed || g->pad)
			return false;
		if (!g->size)
			continue;
		if (i == CONFIG && ((g->size != 256 && g->size != 4096) || g->flags != rw))
			return false;
		if (i == VFIO_PCI_VGA_REGION_INDEX && g->size != 0xc0000)
			return false;
		if (i < CONFIG && (g->size & (g->size - 1) || g->size > 1ull << 40))
			return false;
	}
	if (!l->regions[CONFIG].size || l->num_mmap_areas > MUSER_MAX_MMAP_AREAS)
		return false;
	for (i = 0; i < l->num_mmap_areas; i++) {
		const struct muser_mmap_area *a = &l->mmap_areas[i];
		uint64_t rsize;

		if (a->pad || a->region > VFIO_PCI_ROM_REGION_INDEX || a->region >= l->num_regions)
			return false;
		rsize = l->regions[a->region].size;
		if (!a->size || a->offset % PG || a->size % PG || a->offset >= rsize ||
		    a->size > rsize - a->offset)
			return false;
		for (j = 0; j < i; j++) {
			const struct muser_mmap_area *b = &l->mmap_areas[j];

			if (b->region == a->region && a->offset < b->offset + b->size &&
			    b->offset < a->offset + a->size)
				return false;
		}
	}
	for (i = 0; i < VFIO_PCI_REQ_IRQ_INDEX; i++) {
		const struct muser_irq *q = &l->irqs[i];

		if (q->flags & ~irq_flags[i] || q->count > irq_max[i] ||
		    (i == VFIO_PCI_MSI_IRQ_INDEX && q->count & (q->count - 1)))
			return false;
	}
	/* Device-specific regions: one migration region at most, nothing else. */
	if (l->num_dev_regions > MUSER_MAX_DEV_REGIONS || l->pad)
		return false;
	for (i = 0; i < MUSER_MAX_DEV_REGIONS; i++) {
		const struct muser_dev_region *d = &l->dev_regions[i];
		static const struct muser_dev_region zero;

		if (i >= l->num_dev_regions) {
			if (memcmp(d, &zero, sizeof(zero)))
				return false;
			continue;
		}
		if (d->region.flags != rw || d->region.pad ||
		    d->region.size <= MUSER_MIG_HDR_SIZE || d->region.size > 1ull << 40 ||
		    d->type != VFIO_REGION_TYPE_MIGRATION_DEPRECATED ||
		    d->subtype != VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED || i > 0)
			return false;
	}
	return true;
}

/* The fuzzer's layout with a few fields at their edges (or none). */
static void fz_rand_layout(struct fz *f, struct muser_device_info *l)
{
	static const uint64_t sizes[] = { 0, 1, 256, 4096, 0xc0000, 1ull << 40,
					  (1ull << 40) + 1, 1ull << 41, 3 * PG };
	uint64_t *r = &f->rng;
	int n = chance(r, 15) ? 0 : 1 + below(r, 3), i = below(r, MUSER_NUM_REGIONS);
	struct muser_mmap_area *a;

	*l = f->l;
	while (n--) {
		a = &l->mmap_areas[below(r, 3)];
		switch (below(r, 17)) {
		case 0: l->argsz = edge32(r, sizeof(*l)); break;
		case 1: l->version = edge32(r, MUSER_API_VERSION); break;
		case 2: l->flags = edge32(r, MUSER_DEV_F_RESET); break;
		case 3: l->num_regions = edge32(r, MUSER_NUM_REGIONS); break;
		case 4: l->num_irqs = edge32(r, MUSER_NUM_IRQS); break;
		case 5: l->num_mmap_areas = chance(r, 50) ? below(r, 4) : edge32(r, 16); break;
		case 6: l->regions[i].flags = chance(r, 70) ? below(r, 8) : edge32(r, 3); break;
		case 7:
			l->regions[i].size = chance(r, 40) ? sizes[below(r, ARRAY_SIZE(sizes))] :
					     chance(r, 50) ? 1ull << below(r, 64) :
					     edge64(r, l->regions[i].size);
			break;
		case 8: l->regions[i].pad = edge32(r, 0); break;
		case 9: l->irqs[below(r, MUSER_NUM_IRQS)].flags = 1u << below(r, 8); break;
		case 10: l->irqs[below(r, MUSER_NUM_IRQS)].count = edge32(r, 1u << below(r, 12)); break;
		case 11: a->region = chance(r, 80) ? below(r, 10) : edge32(r, 16); break;
		case 12: a->offset = chance(r, 50) ? below(r, 32) * PG : edge64(r, 0x10000); break;
		case 13: a->size = chance(r, 50) ? below(r, 32) * PG : edge64(r, AREA_SIZE); break;
		case 14: l->num_dev_regions = chance(r, 60) ? below(r, 3) : edge32(r, 4); break;
		case 15: l->pad = edge32(r, 0); break;
		default: {
			struct muser_dev_region *d = &l->dev_regions[below(r, MUSER_MAX_DEV_REGIONS)];

			switch (below(r, 5)) {
			case 0: d->region.flags = chance(r, 50) ? 3 : edge32(r, 3); break;
			case 1: d->region.size = chance(r, 50) ? 8192 : edge64(r, MUSER_MIG_HDR_SIZE); break;
			case 2: d->region.pad = edge32(r, 0); break;
			case 3: d->type = chance(r, 60) ? VFIO_REGION_TYPE_MIGRATION_DEPRECATED : edge32(r, 3); break;
			default: d->subtype = chance(r, 60) ? 1 : edge32(r, 1); break;
			}
			break;
		}
		}
	}
}

/*
 * ATTACH or TAKEOVER of @l by file @fi: validation first, then who is
 * attached and whether the layout is the one in use.
 */
static void fz_do_attach(struct fz *f, int fi, const struct muser_device_info *l,
			 bool takeover, int bk)
{
	bool same = same_layout(l, &f->l), ok = fz_layout_ok(l);
	struct want w;
	long ret;

	if (bk == BK_NULL || bk == BK_KERNEL || bk == BK_GUARD)
		w = WANT(EFAULT);
	else if (!ok)
		w = WANT(EINVAL);
	else if (fi == f->cur || (f->cur >= 0 && !takeover))
		w = WANT(EBUSY);
	else if (!same && (f->cur >= 0 || f->vmm_open))
		w = WANT(EBUSY);
	else
		w = WANT(0);
	if (!w.err[0] && takeover && f->cur >= 0) {
		/* The old one would make the takeover wait: answer first. */
		if (chance(&f->rng, 80))
			fz_answer_all(f);
	}
	ret = fz_ioctl(f, fi, takeover ? MUSER_IOC_TAKEOVER : MUSER_IOC_ATTACH, l,
		       sizeof(*l), bk, NULL);
	fz_trace(f, "%s by file %d: %ld", takeover ? "TAKEOVER" : "ATTACH", fi, ret);
	fz_judge(f, w, ret, -ret, "%s by file %d (%d attached) of a layout %s%s (%s)",
		 takeover ? "TAKEOVER" : "ATTACH", fi, f->cur, ok ? "valid" : "invalid",
		 same ? ", the one in use" : "", bk_names[bk]);
	if (ret)
		return;
	if (f->cur >= 0) {
		fz_detached(f);
		f->takeovers++;
	}
	f->cur = fi;
	/* Only with the VMM away: fz_reopen() puts the layout back. */
	if (!same)
		f->foreign_layout = f->dev_unknown = true;
}

static void fz_layout(struct fz *f)
{
	struct muser_device_info l;
	int fi = below(&f->rng, FZ_FDS);

	if (f->fd[fi] < 0)
		return;
	fz_rand_layout(f, &l);
	fz_do_attach(f, fi, &l, chance(&f->rng, 50), fz_bk(f, 5));
}

/* Random arguments for every muser ioctl. */
static void fz_ioctl_args(struct fz *f)
{
	uint64_t *r = &f->rng;
	int fi = fz_fi(f, 20), bk = fz_bk(f, 15);
	struct muser_dma_map m = {
		.argsz = chance(r, 80) ? sizeof(m) : edge32(r, sizeof(m)),
		.flags = chance(r, 70) ? below(r, 4) : edge32(r, 4),
		.iova = chance(r, 50) ? edge64(r, FZ_IOVA) : edge64(r, MUSER_DMA_MAX_IOVA),
		.size = edge64(r, chance(r, 50) ? PG : FZ_SPAN),
		.offset = rnd(r),
	};
	struct muser_dma_rw rw = {
		.argsz = chance(r, 80) ? sizeof(rw) : edge32(r, sizeof(rw)),
		.flags = m.flags & ~MUSER_DMA_F_WRITE, .iova = m.iova,
		.size = chance(r, 50) ? edge64(r, PG) : edge64(r, MUSER_DMA_RW_MAX),
	};
	struct muser_irq_trigger t = {
		.argsz = edge32(r, sizeof(t)), .index = edge32(r, 2),
		.start = edge32(r, 0), .count = edge32(r, 1),
	};

	if (fi < 0)
		return;
	switch (below(r, 6)) {
	case 0: fz_do_dma_map(f, fi, m, bk); break;
	case 1: fz_do_dma_release(f, fi, m, bk); break;
	case 2: fz_do_dma_rw(f, fi, rw, bk, fz_bk(f, 30)); break;
	case 3: fz_do_trigger(f, fi, t, bk); break;
	case 4: fz_do_irq_state(f, fi, edge32(r, sizeof(struct muser_irq_state)),
				edge32(r, MUSER_NUM_IRQS), bk); break;
	default: fz_layout(f); break;
	}
}

static void fz_random_ioctl(struct fz *f)
{
	int fi = below(&f->rng, FZ_FDS);
	unsigned long cmd;
	long ret;
	void *arg = f->mem;

	if (f->fd[fi] < 0)
		return;
	do
		cmd = (uint32_t)rnd(&f->rng);
	while (vfs_ioctl_type(_IOC_TYPE(cmd)) || muser_cmd(cmd));
	if (chance(&f->rng, 20))
		arg = (void *)(uintptr_t)rnd(&f->rng);
	memset(f->mem, 0xa5, 256);
	ret = xioctl(f->fd[fi], cmd, arg);
	fz_judge(f, WANT(ENOTTY), ret, -ret, "ioctl 0x%lx", cmd);
}

/* ------------------------------------------------------------- mmap() */

/* What mmap() of @len bytes at @off by file @fi must answer. */
static struct want fz_mmap_want(struct fz *f, int fi, uint64_t off, uint64_t len, int flags)
{
	bool shared = (flags & MAP_TYPE) != MAP_PRIVATE, attached = fi == f->cur;
	uint64_t plen = (len + PG - 1) & ~(PG - 1), o, at;
	uint32_t i, index;

	if (off & (PG - 1) || !len)
		return WANT(EINVAL);
	if (off >= MUSER_DMA_OFFSET) {
		o = off - MUSER_DMA_OFFSET;
		if (!attached)
			return WANT(ENOTCONN);
		if (!shared || o > MUSER_DMA_MAX_IOVA || plen > MUSER_DMA_MAX_IOVA + 1 - o)
			return WANT(EINVAL);
		return WANT(0);
	}
	if (off >= MUSER_STATE_OFFSET) {
		o = off - MUSER_STATE_OFFSET;
		if (!attached)
			return WANT(ENOTCONN);
		if (!shared || o >= MUSER_STATE_SIZE || plen > MUSER_STATE_SIZE - o)
			return WANT(EINVAL);
		return WANT(0);
	}
	if (off >= MUSER_REGION_OFFSET(MUSER_NUM_REGIONS) || !shared)
		return WANT(EINVAL);
	/* Device memory: areas of the region, adjacent ones as one. */
	index = off >> MUSER_REGION_SHIFT;
	o = off & (MUSER_REGION_OFFSET(1) - 1);
	for (at = o; at < o + plen; ) {
		for (i = 0; i < f->l.num_mmap_areas; i++) {
			const struct muser_mmap_area *a = &f->l.mmap_areas[i];

			if (a->region == index && at >= a->offset && at - a->offset < a->size)
				break;
		}
		if (i == f->l.num_mmap_areas)
			return WANT(EINVAL);
		at = f->l.mmap_areas[i].offset + f->l.mmap_areas[i].size;
	}
	return WANT(0);
}

static void fz_mmap_place(struct fz *f, uint64_t *off, uint64_t *len)
{
	static const uint64_t dev_offs[] = { 0, 0, PG, AREA_SIZE - PG, AREA_SIZE, -PG };
	static const uint64_t dev_lens[] = { PG, 2 * PG, AREA_SIZE, AREA_SIZE + PG, 1 };
	static const uint64_t st_offs[] = { 0, MUSER_STATE_SIZE - PG, MUSER_STATE_SIZE,
					    MUSER_STATE_SIZE + PG, -PG };
	static const uint64_t st_lens[] = { PG, 4 * PG, 64 * PG, MUSER_STATE_SIZE };
	const uint64_t dev = MUSER_REGION_OFFSET(BAR2) + AREA_OFF;
	uint64_t *r = &f->rng;
	int s = below(r, FZ_SLOTS);

	switch (below(r, 10)) {
	case 0: case 1: case 2:
		*off = dev + dev_offs[below(r, ARRAY_SIZE(dev_offs))];
		*len = dev_lens[below(r, ARRAY_SIZE(dev_lens))];
		return;
	case 3: case 4:
		*off = MUSER_STATE_OFFSET + (chance(r, 60) ? below(r, 1024) * PG :
					     st_offs[below(r, ARRAY_SIZE(st_offs))]);
		*len = st_lens[below(r, ARRAY_SIZE(st_lens))];
		return;
	case 5: case 6: case 7:
		if (chance(r, 10)) {
			*off = MUSER_DMA_OFFSET + MUSER_DMA_MAX_IOVA + 1 - PG * below(r, 3);
			*len = PG * (1 + below(r, 3));
			return;
		}
		*off = MUSER_DMA_OFFSET + fz_slots[s].iova +
		       PG * below(r, fz_slots[s].size / PG + 2) - PG;
		*len = chance(r, 20) ? fz_slots[s].size : PG * (1 + below(r, 8));
		return;
	}
	*len = PG * (1 + below(r, 4));
	switch (below(r, 6)) {
	case 0: *off = MUSER_REGION_OFFSET(below(r, 16)) + PG * below(r, 32); break;
	case 1: *off = (MUSER_STATE_OFFSET + MUSER_STATE_SIZE +
			below(r, MUSER_DMA_OFFSET - MUSER_STATE_OFFSET - MUSER_STATE_SIZE)) &
		       ~(PG - 1); break;
	case 2: *off = (1ull << 63) | (rnd(r) & ~(PG - 1)); break;
	case 3: *off = rnd(r) & ~(PG - 1); break;
	case 4: *off = dev + 1 + below(r, PG - 1); break;
	default: *off = dev; *len = 0; break;
	}
}

static void fz_unmap(struct fz *f, int i)
{
	struct fz_map *m = &f->map[i];

	fz_judge(f, WANT(0), munmap(m->p, m->len), errno, "munmap");
	*m = f->map[--f->nmaps];
}

static void fz_mmap(struct fz *f)
{
	static const int prots[] = { PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
				     PROT_READ, PROT_NONE };
	uint64_t *r = &f->rng;
	int fi = fz_fi(f, 20), prot = prots[below(r, ARRAY_SIZE(prots))];
	int flags = chance(r, 85) ? MAP_SHARED : chance(r, 50) ? MAP_PRIVATE : MAP_SHARED_VALIDATE;
	uint64_t off, len;
	struct want w;
	uint8_t *p;

	if (fi < 0)
		return;
	fz_mmap_place(f, &off, &len);
	w = fz_mmap_want(f, fi, off, len, flags);
	if (f->nmaps == FZ_MAPS)
		fz_unmap(f, below(r, FZ_MAPS));
	p = raw_mmap(f->fd[fi], off, len, prot, flags);
	if (!fz_judge(f, w, p ? 0 : -1, errno, "mmap of 0x%" PRIx64 " +0x%" PRIx64 " flags %#x by file %d (%d attached)",
		      off, len, flags, fi, f->cur) || !p) {
		if (p)
			munmap(p, len);
		return;
	}
	f->map[f->nmaps++] = (struct fz_map){
		.p = p, .off = off, .len = (len + PG - 1) & ~(PG - 1), .prot = prot, .fi = fi,
		.mayw = prot & PROT_WRITE,
		.kind = off >= MUSER_DMA_OFFSET ? MK_DMA : off >= MUSER_STATE_OFFSET ? MK_STATE : MK_DEV,
	};
}

static void fz_munmap(struct fz *f)
{
	struct fz_map *m;
	int i;

	if (!f->nmaps)
		return fz_mmap(f);
	i = below(&f->rng, f->nmaps);
	m = &f->map[i];
	if (m->len > PG && chance(&f->rng, 30)) {	/* split it */
		fz_judge(f, WANT(0), munmap(m->p, PG), errno, "munmap of a mapping's first page");
		m->p += PG;
		m->off += PG;
		m->len -= PG;
		return;
	}
	fz_unmap(f, i);
}

/* May the byte at @off of mapping @m be read (written)? 1, 0, -1: either. */
static int fz_can(struct fz *f, const struct fz_map *m, uint64_t off, bool write)
{
	bool vm_write = m->prot & PROT_WRITE;
	int pg, s;

	if (m->prot == PROT_NONE || (write && !vm_write))
		return 0;
	if (m->kind != MK_DMA)
		return 1;
	pg = fz_page(off - MUSER_DMA_OFFSET);
	if (m->fi != f->cur || pg < 0)
		return 0;
	s = fz_slot_at(f, off - MUSER_DMA_OFFSET);
	switch (f->pin[pg]) {
	case PIN_RW:
		return 1;
	case PIN_RO:
		return !vm_write;
	case PIN_MAYBE:
		return s >= 0 && (!f->ro[s] || !vm_write) ? -1 : 0;
	}
	return 0;
}

static uint8_t *fz_truth(struct fz *f, const struct fz_map *m, uint64_t off)
{
	if (m->kind == MK_DEV)
		return f->dev_unknown ? NULL : &f->dev[(off & (MUSER_REGION_OFFSET(1) - 1)) - AREA_OFF];
	if (m->kind == MK_STATE)
		return &f->state[off - MUSER_STATE_OFFSET];
	return fz_gva(f, off - MUSER_DMA_OFFSET);
}

/* Touch a mapping, drop its pages, change its protection, move it. */
static void fz_touch(struct fz *f)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE };
	uint64_t *r = &f->rng, b, off;
	struct fz_map *m;
	uint8_t v, *truth, *spot;
	bool write, ok;
	int can, prot, ret, pg;

	if (!f->nmaps)
		return fz_mmap(f);
	m = &f->map[below(r, f->nmaps)];
	b = below(r, m->len);
	off = m->off + b;
	switch (below(r, 16)) {
	case 0:
		ret = madvise(m->p, m->len, MADV_DONTNEED);
		fz_judge(f, m->kind == MK_DMA ? WANT(0, EINVAL) : WANT(0), ret, errno,
			 "MADV_DONTNEED of a mapping of 0x%" PRIx64, m->off);
		return;
	case 1:
		prot = prots[below(r, ARRAY_SIZE(prots))];
		ret = mprotect(m->p, m->len, prot);
		/* A window mapped without write never gets it. */
		if (fz_judge(f, m->kind == MK_DMA && prot & PROT_WRITE && !m->mayw ?
			     WANT(EACCES) : WANT(0), ret, errno,
			     "mprotect(%d) of a mapping of 0x%" PRIx64, prot, m->off) && !ret)
			m->prot = prot;
		return;
	case 2:
		if (m->len > PG && chance(r, 50)) {
			spot = mremap(m->p, m->len, m->len - PG, 0);
			if (spot != m->p)
				fz_miss(f, "shrinking a mapping of 0x%" PRIx64 ": %s", m->off,
					errname(errno));
			else
				m->len -= PG;
			return;
		}
		spot = mremap(m->p, m->len, m->len + PG, MREMAP_MAYMOVE);
		fz_judge(f, WANT(EFAULT), spot == MAP_FAILED ? -1 : 0, errno,
			 "growing a mapping of 0x%" PRIx64, m->off);
		if (spot != MAP_FAILED) {
			munmap(spot + m->len, PG);
			m->p = spot;
		}
		return;
	case 3:
		spot = mmap(NULL, m->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (spot == MAP_FAILED)
			return;
		if (mremap(m->p, m->len, m->len, MREMAP_MAYMOVE | MREMAP_FIXED, spot) != spot) {
			fz_miss(f, "moving a mapping of 0x%" PRIx64 ": %s", m->off, errname(errno));
			munmap(spot, m->len);
			return;
		}
		m->p = spot;
		return;
	}
	write = chance(r, 40);
	can = fz_can(f, m, off, write);
	truth = fz_truth(f, m, off);
	if (write) {
		v = (uint8_t)rnd(r);
		ok = poke(m->p + b, v);
	} else {
		ok = touch(m->p + b, &v);
	}
	if (can >= 0 && ok != (bool)can) {
		fz_miss(f, "%s of a mapping of 0x%" PRIx64 " (prot %d, file %d of %d attached) at 0x%" PRIx64 " %s",
			write ? "write" : "read", m->off, m->prot, m->fi, f->cur, off,
			ok ? "worked" : "faulted");
		return;
	}
	if (!ok)
		return;
	if (m->kind == MK_DMA && can < 0) {	/* it was pinned after all */
		pg = fz_page(off - MUSER_DMA_OFFSET);
		f->pin[pg] = f->ro[fz_slot_at(f, off - MUSER_DMA_OFFSET)] ? PIN_RO : PIN_RW;
	}
	if (!truth) {
		return;
	} else if (write && m->kind != MK_DMA) {
		*truth = v;
	} else if (*truth != v) {
		fz_miss(f, "%s at 0x%" PRIx64 ": 0x%02x there, 0x%02x expected",
			write ? "after a write" : "read", off, write ? *truth : v,
			write ? v : *truth);
	}
}

/* ---------------------------------------------- emulators, VMM, checks */

/* ATTACH the layout by some open file: nobody is attached. */
static void fz_attach_any(struct fz *f)
{
	int fi = below(&f->rng, FZ_FDS), k;

	for (k = 0; k < FZ_FDS && f->fd[fi] < 0; k++)
		fi = (fi + 1) % FZ_FDS;
	if (f->fd[fi] < 0)
		f->fd[fi] = ctl_open(f->r.uuid, O_NONBLOCK);
	fz_do_attach(f, fi, &f->l, chance(&f->rng, 50), BK_OK);
}

static bool fz_fd_mapped(struct fz *f, int fi)
{
	int i;

	for (i = 0; i < f->nmaps; i++)
		if (f->map[i].fi == fi)
			return true;
	return false;
}

static void fz_switch(struct fz *f)
{
	uint64_t *r = &f->rng;
	int fi = below(r, FZ_FDS), ret;

	if (f->cur < 0)
		return fz_attach_any(f);
	switch (below(r, 5)) {
	case 0:		/* detach, and attach again (or not, for a while) */
		ret = xioctl(f->fd[f->cur], MUSER_IOC_DETACH, NULL);
		fz_judge(f, WANT(0), ret, -ret, "DETACH of the attached file");
		fi = f->cur;
		fz_detached(f);
		if (chance(r, 60))
			fz_do_attach(f, fi, &f->l, chance(r, 50), BK_OK);
		return;
	case 1:		/* another file takes over */
		if (fi == f->cur)
			fi = (fi + 1) % FZ_FDS;
		if (f->fd[fi] < 0)
			f->fd[fi] = ctl_open(f->r.uuid, O_NONBLOCK);
		fz_do_attach(f, fi, &f->l, true, BK_OK);
		return;
	case 2:		/* a file closed (its release detaches) and opened again */
		if (fz_fd_mapped(f, fi) || f->fd[fi] < 0)
			return;
		close(f->fd[fi]);
		if (fi == f->cur)
			fz_detached(f);
		f->fd[fi] = ctl_open(f->r.uuid, O_NONBLOCK);
		if (f->fd[fi] < 0)
			fz_miss(f, "opening the control node: %s", errname(-f->fd[fi]));
		return;
	default:	/* DETACH by a file that is not attached */
		if (fi == f->cur || f->fd[fi] < 0)
			return;
		ret = xioctl(f->fd[fi], MUSER_IOC_DETACH, NULL);
		fz_judge(f, WANT(ENOTCONN), ret, -ret, "DETACH by file %d (%d attached)", fi, f->cur);
	}
}

/* Nothing the model does not know of may be pinned: a child was. */
static void fz_pins_unknown(struct fz *f)
{
	int pg;

	for (pg = 0; pg < (int)FZ_PAGES; pg++)
		if (f->pin[pg] == PIN_NO && fz_slot_at(f, fz_page_iova(pg)) >= 0)
			f->pin[pg] = PIN_MAYBE;
}

/* A child emulator takes over (or attaches), serves and dies. */
static void fz_child(struct fz *f)
{
	uint64_t *r = &f->rng, seed = rnd(r);
	int how = below(r, 4), ms = 5 + below(r, 80), status, i, ret;
	bool takeover = f->cur >= 0 && chance(r, 50), reaped = false;
	int64_t end;
	pid_t pid;

	if (f->cur >= 0 && !takeover) {
		ret = xioctl(f->fd[f->cur], MUSER_IOC_DETACH, NULL);
		fz_judge(f, WANT(0), ret, -ret, "DETACH before a child");
		fz_detached(f);
	}
	fz_answer_all(f);
	for (i = 0; i < FZ_WORKERS; i++) {
		struct fz_worker *w = &f->w[i];

		w->foreign = true;
		if (!w->answered) {
			w->id = 0;
			w->owner = -1;
			w->requeued = false;
		}
	}
	f->children++;
	f->child_alive = true;
	fz_trace(f, "child: %s, %d ms, end %d", takeover ? "takes over" : "attaches", ms, how);
	fflush(NULL);
	pid = fork();
	if (!pid)
		_exit(child_emulator(f->r.uuid, &f->l, seed, ms, how,
				     (takeover ? CHILD_TAKEOVER : CHILD_ATTACH) |
				     (f->budget_mb < 64 ? CHILD_TIGHT_DMA : 0)) ? 1 : 0);
	if (pid < 0) {
		fz_miss(f, "fork: %s", errname(errno));
		f->child_alive = false;
		return;
	}
	end = now_ms() + ms + below(r, 150);
	while (now_ms() < end) {
		fz_collect(f);
		if (waitpid(pid, &status, WNOHANG) == pid) {
			reaped = true;
			break;
		}
		usleep(2000);
	}
	if (!reaped) {
		kill(pid, SIGKILL);
		f->kills++;
		waitpid(pid, &status, 0);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status))
		fz_miss(f, "a child emulator failed (see above)");
	f->child_alive = false;
	/* Taken over, or not yet when it was killed: detached now anyway. */
	if (f->cur >= 0) {
		ret = xioctl(f->fd[f->cur], MUSER_IOC_DETACH, NULL);
		fz_judge(f, WANT(0, ENOTCONN), ret, -ret, "DETACH after a child");
		fz_detached(f);
	}
	for (i = 0; i < FZ_WORKERS; i++)
		if (!f->w[i].answered)
			f->w[i].id = 0, f->w[i].owner = -1;
	fz_pins_unknown(f);
	if (f->budget_mb < 64)	/* its pins may have evicted ours */
		fz_evictable(f);
	f->nowed = 0;
	f->notices_unknown = f->msi_unknown = true;
	fz_attach_any(f);
}

static void fz_vmm_map(struct fz *f)
{
	int s = below(&f->rng, FZ_SLOTS), ret;
	bool ro = chance(&f->rng, 25);

	if (!f->vmm_open)
		return;
	ret = _test_vmm_map(&f->r.c, fz_gva(f, fz_slots[s].iova), fz_slots[s].iova,
			    fz_slots[s].size, ro ? VFIO_DMA_MAP_FLAG_READ : VMM_RW);
	fz_trace(f, "slot %d %s: %d", s, ro ? "read-only" : "read-write", ret);
	if (fz_judge(f, f->mapped[s] ? WANT(EEXIST) : WANT(0), ret, -ret,
		     "VMM map of slot %d", s) && !ret) {
		f->mapped[s] = true;
		f->ro[s] = ro;
	}
}

static bool fz_slot_pinned(struct fz *f, int s, bool sure)
{
	uint64_t at;

	for (at = fz_slots[s].iova; at < fz_slots[s].iova + fz_slots[s].size; at += PG) {
		int p = f->pin[fz_page(at)];

		if (p == PIN_RW || p == PIN_RO || (!sure && p == PIN_MAYBE))
			return true;
	}
	return false;
}

/*
 * VMM unmaps of one or more slots (or cutting one: EINVAL). A slot the
 * emulator may have pinned is unmapped at most every 1.5 s: a faster
 * unmap of the same range counts as a retry of type1's and escalates the
 * fence (see muser_dma_fence()).
 */
static void fz_vmm_unmap(struct fz *f)
{
	uint64_t *r = &f->rng, iova, end;
	int a = below(r, FZ_SLOTS), b = a + below(r, 3), s, ret;
	bool cut = false;
	struct want w;

	if (!f->vmm_open)
		return;
	b = MIN(FZ_SLOTS - 1, b);
	iova = fz_slots[a].iova;
	end = fz_slots[b].iova + fz_slots[b].size;
	if (a == 0) {	/* iova 0 and the fuzzer's memory are far apart */
		b = 0;
		end = fz_slots[0].size;
	}
	if (chance(r, 10) && fz_slots[a].size > PG) {
		iova += PG;
		cut = f->mapped[a];
	}
	for (s = a; s <= b; s++)
		if (f->mapped[s] && fz_slot_pinned(f, s, false) &&
		    now_ms() - f->unmapped_ms[s] < 1500)
			return;
	w = cut ? WANT(EINVAL) : WANT(0);
	ret = _test_vmm_unmap(&f->r.c, iova, end - iova);
	fz_trace(f, "unmap 0x%" PRIx64 " +0x%" PRIx64 ": %d", iova, end - iova, ret);
	if (!fz_judge(f, w, ret, -ret, "VMM unmap of 0x%" PRIx64 " +0x%" PRIx64, iova, end - iova) || ret)
		return;
	for (s = a; s <= b; s++) {
		uint64_t at;

		if (!f->mapped[s] || fz_slots[s].iova < iova)
			continue;
		if (fz_slot_pinned(f, s, false))
			f->unmapped_ms[s] = now_ms();
		if (fz_slot_pinned(f, s, true) && f->cur >= 0 && f->nowed < (int)ARRAY_SIZE(f->owed))
			f->owed[f->nowed++] = (struct muser_dma_range){ fz_slots[s].iova,
									fz_slots[s].size };
		for (at = fz_slots[s].iova; at < fz_slots[s].iova + fz_slots[s].size; at += PG)
			f->pin[fz_page(at)] = PIN_NO;
		f->mapped[s] = false;
	}
}

/* The eventfd of MSI has fired as often as the model says. */
static void fz_check_msi(struct fz *f)
{
	uint64_t n = 0;

	if (read(f->msi_efd, &n, sizeof(n)) != sizeof(n))
		n = 0;
	if (!f->msi_unknown && (long)n != f->msi_fired)
		fz_miss(f, "MSI fired %" PRIu64 " times, %ld triggers", n, f->msi_fired);
	f->msi_fired = 0;
	f->msi_unknown = false;
}

static void fz_vmm_irq(struct fz *f)
{
	uint64_t *r = &f->rng;
	bool msi = chance(r, 70), on = chance(r, 60), whole = !on && chance(r, 50);
	int idx = msi ? VFIO_PCI_MSI_IRQ_INDEX : VFIO_PCI_INTX_IRQ_INDEX, ret;

	if (!f->vmm_open)
		return;
	if (msi)
		fz_check_msi(f);
	if (whole)	/* the index off: it has no vectors again */
		ret = vfio_set_irqs(f->r.c.device, VFIO_IRQ_SET_DATA_NONE |
				    VFIO_IRQ_SET_ACTION_TRIGGER, idx, 0, 0, NULL);
	else		/* vector 0 gets an eventfd, or none (it stays) */
		ret = set_irq_eventfd(f->r.c.device, idx, 0,
				      on ? (msi ? f->msi_efd : f->intx_efd) : -1);
	fz_judge(f, WANT(0), ret, -ret, "SET_IRQS of %s %s", msi ? "MSI" : "INTx",
		 on ? "on" : whole ? "disabled" : "off");
	f->irq_notice = true;
	if (msi) {
		f->msi_on = on;
		f->msi_count = !whole;
	} else {
		f->intx_on = on;
	}
}

static void fz_vmm_devmem(struct fz *f)
{
	uint64_t *r = &f->rng, off = below(r, AREA_SIZE), i;
	size_t len = 1 + below(r, 64);
	uint8_t buf[64];
	ssize_t n;

	len = MIN(AREA_SIZE - off, len);
	if (!f->vmm_open)
		return;
	if (chance(r, 50)) {
		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd(r);
		n = region_write(&f->r.c, BAR2, AREA_OFF + off, buf, len);
		if (n == (ssize_t)len)
			memcpy(f->dev + off, buf, len);
	} else {
		n = region_read(&f->r.c, BAR2, AREA_OFF + off, buf, len);
		if (n == (ssize_t)len && !f->dev_unknown && memcmp(buf, f->dev + off, len))
			fz_miss(f, "VMM read of device memory at 0x%" PRIx64 ": other data", off);
	}
	if (n != (ssize_t)len)
		fz_miss(f, "VMM %s of device memory at 0x%" PRIx64 " +%zu: %zd",
			len ? "access" : "?", off, len, n);
}

static void fz_budget(struct fz *f)
{
	static const unsigned int mb[] = { 1, 2, 4, 16, 1024, 1024 };
	unsigned int v = mb[below(&f->rng, ARRAY_SIZE(mb))];
	int ret = dma_stat_set(f->r.uuid, "budget_mb", v);

	fz_trace(f, "budget %u MB: %d", v, ret);
	if (!fz_judge(f, WANT(0), ret, -ret, "dma/budget_mb = %u", v))
		return;
	f->budget_mb = v;
	if (v < 64)
		fz_evictable(f);
}

/* Device memory as the VMM reads it; after a layout change, each page
 * either kept what it had or was dropped (zeros). */
static void fz_check_devmem(struct fz *f)
{
	uint8_t buf[AREA_SIZE];
	uint64_t pg;
	ssize_t n;

	if (!f->vmm_open)
		return;
	n = region_read(&f->r.c, BAR2, AREA_OFF, buf, AREA_SIZE);
	if (n != AREA_SIZE) {
		fz_miss(f, "VMM read of all device memory: %zd", n);
		return;
	}
	for (pg = 0; pg < AREA_SIZE; pg += PG) {
		static const uint8_t zero[PG];

		if (!memcmp(buf + pg, f->dev + pg, PG))
			continue;
		if (f->dev_unknown && !memcmp(buf + pg, zero, PG))
			continue;
		fz_miss(f, "device memory page 0x%" PRIx64 " holds other data", pg);
	}
	memcpy(f->dev, buf, AREA_SIZE);
	f->dev_unknown = false;
}

/* The device's pins and holds as the model has them; maybes resolved. */
static void fz_check_pins(struct fz *f)
{
	long yes, maybe, n;
	int i, pg;

	fz_pins(f, -1, false, &yes, &maybe);
	n = dma_stat(f->r.uuid, "pinned_pages");
	if (n < yes || n > yes + maybe) {
		fz_miss(f, "%ld pages pinned, the model has %ld and %ld maybe", n, yes, maybe);
		/* Start over from "anything mapped may be pinned". */
		for (pg = 0; pg < (int)FZ_PAGES; pg++)
			if (fz_slot_at(f, fz_page_iova(pg)) >= 0)
				f->pin[pg] = PIN_MAYBE;
	} else if (maybe && (n == yes || n == yes + maybe))
		for (pg = 0; pg < (int)FZ_PAGES; pg++)
			if (f->pin[pg] == PIN_MAYBE)
				f->pin[pg] = n == yes ? PIN_NO :
					     f->ro[fz_slot_at(f, fz_page_iova(pg))] ? PIN_RO : PIN_RW;
	fz_pins(f, -1, true, &yes, &maybe);
	n = dma_stat(f->r.uuid, "mapped_pages");
	if (n < yes || n > yes + maybe) {
		fz_miss(f, "%ld pages mapped, the model has %ld and %ld maybe (pinned %ld)", n, yes,
			maybe, dma_stat(f->r.uuid, "pinned_pages"));
		for (i = 0; i < (int)FZ_CHUNKS; i++) {
			long y, m;

			fz_pins(f, i, false, &y, &m);
			fprintf(stderr, "#   chunk %d: %u holds, %ld pinned, %ld maybe\n", i,
				f->holds[i], y, m);
		}
	}
}

static void fz_check(struct fz *f)
{
	uint8_t *st;
	int i;

	fz_collect(f);
	for (i = 0; i < 8 && fz_read_all(f); i++)
		;
	if (f->cur >= 0) {
		if (!f->notices_unknown) {
			for (i = 0; i < f->nowed; i++)
				fz_miss(f, "no DMA_UNMAP notice for 0x%" PRIx64 " +0x%" PRIx64,
					(uint64_t)f->owed[i].iova, (uint64_t)f->owed[i].size);
			if (f->irq_notice)
				fz_miss(f, "no IRQ_STATE notice after SET_IRQS");
			if (f->close_notice)
				fz_miss(f, "no VMM_CLOSE notice after the VMM closed");
		}
		f->nowed = 0;
		f->irq_notice = f->close_notice = f->notices_unknown = false;
	}
	fz_check_pins(f);
	fz_check_devmem(f);
	/* The state area keeps what emulators wrote. */
	if (f->cur >= 0) {
		st = xmmap(f->fd[f->cur], MUSER_STATE_OFFSET, MUSER_STATE_SIZE, PROT_READ, MAP_SHARED);
		if (!st)
			fz_miss(f, "mmap of the state area: %s", errname(errno));
		else if (memcmp(st, f->state, MUSER_STATE_SIZE))
			fz_miss(f, "the state area holds other data");
		if (st)
			munmap(st, MUSER_STATE_SIZE);
	}
	fz_check_msi(f);
	for (i = 0; i < FZ_FDS; i++)
		if (f->fd[i] >= 0) {
			fz_do_irq_state(f, i, sizeof(struct muser_irq_state),
					VFIO_PCI_MSI_IRQ_INDEX, BK_OK);
			break;
		}
}

static bool fz_quiet(struct fz *f)
{
	int i;

	for (i = 0; i < FZ_WORKERS; i++)
		if (f->w[i].posted)
			return false;
	return true;
}

/*
 * The VMM closes the device and opens it again; meanwhile, with no VMM,
 * DMA fails with ENXIO and any valid layout attaches.
 */
static void fz_reopen(struct fz *f)
{
	struct muser_device_info l;
	int64_t end = now_ms() + 3 * FZ_TIMEOUT_MS + SLACK_MS;
	const char *step = "?";
	int i, ret, s;

	f->paused = true;
	while (!fz_quiet(f) && now_ms() < end) {
		fz_read_all(f);
		fz_answer_all(f);
		fz_collect(f);
		usleep(1000);
	}
	if (!fz_quiet(f)) {
		fz_miss(f, "the VMM threads did not finish");
		f->paused = false;
		return;
	}
	fz_check_msi(f);
	vfio_client_close(&f->r.c);
	f->vmm_open = false;
	memset(f->mapped, 0, sizeof(f->mapped));
	memset(f->pin, PIN_NO, sizeof(f->pin));
	if (f->cur >= 0 && f->nowed < (int)ARRAY_SIZE(f->owed))
		f->owed[f->nowed++] = (struct muser_dma_range){ 0, ~0ull };
	f->irq_notice = f->close_notice = true;
	f->msi_on = f->intx_on = false;
	f->msi_count = 0;
	if (f->cur >= 0) {
		fz_do_dma_map(f, f->cur, (struct muser_dma_map){ sizeof(struct muser_dma_map),
			      0, FZ_IOVA, PG, 0 }, BK_OK);
		fz_do_dma_rw(f, f->cur, (struct muser_dma_rw){ sizeof(struct muser_dma_rw),
			     0, 0, 8, 0 }, BK_OK, BK_OK);
	}
	/* Any valid layout now. */
	if (f->cur >= 0 && chance(&f->rng, 60)) {
		ret = xioctl(f->fd[f->cur], MUSER_IOC_DETACH, NULL);
		fz_judge(f, WANT(0), ret, -ret, "DETACH with the VMM away");
		fz_detached(f);
	}
	for (i = 0; f->cur < 0 && i < 6; i++) {
		int fi = below(&f->rng, FZ_FDS);

		if (f->fd[fi] < 0)
			continue;
		fz_rand_layout(f, &l);
		fz_do_attach(f, fi, &l, chance(&f->rng, 50), BK_OK);
		if (f->cur >= 0 && f->foreign_layout) {
			ret = xioctl(f->fd[f->cur], MUSER_IOC_DETACH, NULL);
			fz_judge(f, WANT(0), ret, -ret, "DETACH of a foreign layout");
			fz_detached(f);
		}
	}
	f->foreign_layout = false;
	if (f->cur < 0)
		fz_attach_any(f);
	ret = rig_open_vmm(&f->r, &step);
	if (ret) {
		fz_miss(f, "reopening the VMM: %s: %s", step, errname(-ret));
		return;
	}
	madvise(f->r.c.dma, DMA_SIZE, MADV_DONTFORK);
	f->vmm_open = true;
	f->mapped[0] = true;
	f->ro[0] = false;
	for (s = 1; s < FZ_SLOTS; s++) {
		ret = _test_vmm_map(&f->r.c, fz_gva(f, fz_slots[s].iova), fz_slots[s].iova,
				    fz_slots[s].size, VMM_RW);
		fz_judge(f, WANT(0), ret, -ret, "VMM map of slot %d after reopening", s);
		f->mapped[s] = !ret;
		f->ro[s] = false;
	}
	/* Device memory as it is now, before anyone writes it. */
	fz_check_devmem(f);
	f->paused = false;
	fz_collect(f);
}

/* ------------------------------------------------------------ the loop */

enum fzk {
	FZK_READ, FZK_REPLY, FZK_REPLY_BAD, FZK_REPLY_BATCH, FZK_DMA_MAP,
	FZK_DMA_RELEASE, FZK_DMA_RW, FZK_TRIGGER, FZK_IRQ_STATE, FZK_LAYOUT,
	FZK_IOCTL_ARGS, FZK_RANDOM_IOCTL, FZK_MMAP, FZK_MUNMAP, FZK_TOUCH,
	FZK_SWITCH, FZK_CHILD,
	/* The kinds above are the hostile emulator's calls; the VMM's: */
	FZK_VMM_MAP, FZK_VMM_UNMAP, FZK_VMM_IRQ, FZK_VMM_DEVMEM, FZK_BUDGET,
	FZK_REOPEN, FZK_CHECK, FZK_NR
};

static const char *const fzk_names[FZK_NR] = {
	"read", "reply", "bad_reply", "reply_batch", "dma_map", "dma_release",
	"dma_rw", "trigger_irq", "get_irq_state", "attach_layout", "ioctl_args",
	"random_ioctl", "mmap", "munmap", "touch", "switch", "child",
	"vmm_map", "vmm_unmap", "vmm_irq", "vmm_devmem", "budget", "reopen", "check",
};

static const unsigned int fzk_weight[FZK_NR] = {
	[FZK_READ] = 150, [FZK_REPLY] = 150, [FZK_REPLY_BAD] = 60,
	[FZK_REPLY_BATCH] = 30, [FZK_DMA_MAP] = 60, [FZK_DMA_RELEASE] = 40,
	[FZK_DMA_RW] = 60, [FZK_TRIGGER] = 30, [FZK_IRQ_STATE] = 15,
	[FZK_LAYOUT] = 30, [FZK_IOCTL_ARGS] = 60, [FZK_RANDOM_IOCTL] = 15,
	[FZK_MMAP] = 40, [FZK_MUNMAP] = 20, [FZK_TOUCH] = 60, [FZK_SWITCH] = 6,
	[FZK_CHILD] = 1, [FZK_VMM_MAP] = 15, [FZK_VMM_UNMAP] = 15,
	[FZK_VMM_IRQ] = 10, [FZK_VMM_DEVMEM] = 10, [FZK_BUDGET] = 1,
};

#define FZ_ALL		((1ull << FZK_NR) - 1)
#define FZ_KINDS(...)	fz_mask((const int[]){ __VA_ARGS__, -1 })

static uint64_t fz_mask(const int *k)
{
	uint64_t m = 1ull << FZK_CHECK;

	while (*k >= 0)
		m |= 1ull << *k++;
	return m;
}

static int fz_pick(struct fz *f)
{
	unsigned int total = 0, x;
	int k;

	for (k = 0; k < FZK_NR; k++)
		if (f->kinds & 1ull << k)
			total += fzk_weight[k];
	x = below(&f->rng, total);
	for (k = 0; k < FZK_NR; k++) {
		if (!(f->kinds & 1ull << k))
			continue;
		if (x < fzk_weight[k])
			break;
		x -= fzk_weight[k];
	}
	return k;
}

static void fz_step(struct fz *f)
{
	int k = fz_pick(f);

	if (f->ops && !(f->ops % FZ_REOPEN_EVERY) && f->kinds & 1ull << FZK_REOPEN)
		k = FZK_REOPEN;
	else if (f->ops && !(f->ops % FZ_CHECK_EVERY))
		k = FZK_CHECK;
	f->at = f->ops;
	fz_collect(f);
	fz_trace(f, "%lu: %s, file %d attached", f->ops, fzk_names[k], f->cur);
	switch (k) {
	case FZK_READ: fz_read(f); break;
	case FZK_REPLY: fz_reply(f); break;
	case FZK_REPLY_BAD: fz_reply_bad(f); break;
	case FZK_REPLY_BATCH: fz_reply_batch(f); break;
	case FZK_DMA_MAP: fz_dma_map(f); break;
	case FZK_DMA_RELEASE: fz_dma_release(f); break;
	case FZK_DMA_RW: fz_dma_rw(f); break;
	case FZK_TRIGGER: fz_trigger(f); break;
	case FZK_IRQ_STATE: fz_irq_state(f); break;
	case FZK_LAYOUT: fz_layout(f); break;
	case FZK_IOCTL_ARGS: fz_ioctl_args(f); break;
	case FZK_RANDOM_IOCTL: fz_random_ioctl(f); break;
	case FZK_MMAP: fz_mmap(f); break;
	case FZK_MUNMAP: fz_munmap(f); break;
	case FZK_TOUCH: fz_touch(f); break;
	case FZK_SWITCH: fz_switch(f); break;
	case FZK_CHILD: fz_child(f); break;
	case FZK_VMM_MAP: fz_vmm_map(f); break;
	case FZK_VMM_UNMAP: fz_vmm_unmap(f); break;
	case FZK_VMM_IRQ: fz_vmm_irq(f); break;
	case FZK_VMM_DEVMEM: fz_vmm_devmem(f); break;
	case FZK_BUDGET: fz_budget(f); break;
	case FZK_REOPEN: fz_reopen(f); break;
	default: k = FZK_CHECK; fz_check(f); break;
	}
	if (f->paranoid && !f->child_alive)
		fz_check_pins(f);
	f->n[k]++;
	f->ops++;
	if (k < FZK_VMM_MAP)
		f->calls++;
}

/* Run @kinds for @ops operations, or as the budget @b says. */
static void fz_run(struct fz *f, uint64_t kinds, unsigned long ops,
		   const struct fuzz_budget *b)
{
	int64_t t0 = now_ms(), ms = 0;
	double done;

	f->kinds = kinds;
	f->trace = env_ull("MUSER_FUZZ_TRACE", 0);
	f->paranoid = env_ull("MUSER_FUZZ_PARANOID", 0);
	fz_collect(f);
	for (;;) {
		if (!(f->ops & 31))
			ms = now_ms() - t0;
		done = b ? fuzz_done(b, f->calls, ms) : (double)f->ops / ops;
		if (done >= 1 || f->bad > MAX_REPORTS)
			break;
		fz_step(f);
		if (f->ops % 50000 == 0)
			fprintf(stderr, "# fuzz: %lu operations, %lu calls, %.0f s\n",
				f->ops, f->calls, (now_ms() - t0) / 1000.0);
	}
	f->at = -1;
	fz_check(f);
	fuzz_report("hostile emulator", fzk_names, f->n, FZK_NR, f->calls, f->ops,
		    now_ms() - t0);
	fprintf(stderr, "# fuzz: %lu replies, %lu settled requests, %lu VMM timeouts, %lu children (%lu SIGKILLed), %lu takeovers\n",
		f->replies, f->settled, f->timeouts, f->children, f->kills, f->takeovers);
}

FIXTURE(he_fuzz) {
	struct fz *f;
};

FIXTURE_SETUP(he_fuzz)
{
	struct fz *f = calloc(1, sizeof(*f));
	uint64_t i;
	int s;

	self->f = f;
	ASSERT_NE(NULL, f);
	f->at = -1;
	f->msi_efd = f->intx_efd = -1;
	for (s = 0; s < FZ_FDS; s++)
		f->fd[s] = -1;
	layout_hostile(&f->l);
	RIG_SETUP(&f->r, &f->l, RIG_NONBLOCK);
	ASSERT_EQ(PG, sysconf(_SC_PAGESIZE));
	ASSERT_EQ(0, rig_set_timeout(&f->r, FZ_TIMEOUT_MS));
	f->fd[0] = f->r.ctl;
	for (s = 1; s < FZ_FDS; s++)
		ASSERT_LE(0, f->fd[s] = ctl_open(f->r.uuid, O_NONBLOCK));
	f->cur = 0;
	f->vmm_open = true;
	f->budget_mb = dma_stat(f->r.uuid, "budget_mb");
	ASSERT_LT(0, (long)f->budget_mb);
	/* Children get no copy of guest memory, as with QEMU. */
	ASSERT_EQ(0, madvise(f->r.c.dma, DMA_SIZE, MADV_DONTFORK));
	f->guest = mmap(NULL, FZ_SPAN, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, f->guest);
	ASSERT_EQ(0, madvise(f->guest, FZ_SPAN, MADV_DONTFORK));
	for (i = 0; i < FZ_SPAN; i++)
		f->guest[i] = (uint8_t)(i * 13 + (i >> 12));
	f->mapped[0] = true;
	for (s = 1; s < FZ_SLOTS; s++) {
		test_vmm_map(&f->r.c, fz_gva(f, fz_slots[s].iova), fz_slots[s].iova,
			     fz_slots[s].size);
		f->mapped[s] = true;
	}
	f->mem = mmap(NULL, FZ_SCRATCH + 3 * PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, f->mem);
	f->guard = f->mem + FZ_SCRATCH;
	f->ro_mem = f->guard + PG;
	ASSERT_EQ(0, mprotect(f->guard, PG, PROT_NONE));
	ASSERT_EQ(0, mprotect(f->ro_mem, 2 * PG, PROT_READ));
	f->state = calloc(1, MUSER_STATE_SIZE);
	ASSERT_NE(NULL, f->state);
	f->msi_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->intx_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, f->msi_efd);
	ASSERT_LE(0, f->intx_efd);
	drain(f->r.ctl);
	for (s = 0; s < FZ_WORKERS; s++) {
		struct fz_worker *w = &f->w[s];

		w->f = f;
		w->idx = s;
		w->rng = (uint64_t)now_ms() * 31 + s;
		ASSERT_EQ(0, sem_init(&w->go, 0, 0));
		ASSERT_EQ(0, pthread_create(&w->thread, NULL, fz_worker_fn, w));
	}
}

FIXTURE_TEARDOWN(he_fuzz)
{
	struct fz *f = self->f;
	int i;

	if (!f)
		return;
	f->stop = 1;
	for (i = 0; i < FZ_WORKERS; i++) {
		if (!f->w[i].thread)
			continue;
		sem_post(&f->w[i].go);
		pthread_join(f->w[i].thread, NULL);
		sem_destroy(&f->w[i].go);
	}
	while (f->nmaps)
		fz_unmap(f, f->nmaps - 1);
	for (i = 0; i < FZ_FDS; i++)
		if (f->fd[i] >= 0)
			close(f->fd[i]);
	f->r.ctl = -1;
	RIG_TEARDOWN(&f->r);
	if (f->guest && f->guest != MAP_FAILED)
		munmap(f->guest, FZ_SPAN);
	if (f->mem && f->mem != MAP_FAILED)
		munmap(f->mem, FZ_SCRATCH + 3 * PG);
	if (f->msi_efd >= 0)
		close(f->msi_efd);
	if (f->intx_efd >= 0)
		close(f->intx_efd);
	free(f->state);
	EXPECT_EQ(0, f->bad) TH_LOG("seed %#" PRIx64 " replays it (MUSER_FUZZ_SEED)", f->seed);
	free(f);
}

static void fz_seed(struct fz *f)
{
	f->seed = env_ull("MUSER_FUZZ_SEED", (uint64_t)now_ms() ^ (uint64_t)getpid() << 20);
	f->rng = f->seed;
	fprintf(stderr, "# fuzz: seed %#" PRIx64 "\n", f->seed);
}

/* Replies of every kind to every request, from every file. */
TEST_F(he_fuzz, replies)
{
	fz_seed(self->f);
	fz_run(self->f, FZ_KINDS(FZK_READ, FZK_REPLY, FZK_REPLY_BAD, FZK_REPLY_BATCH,
				 FZK_SWITCH, FZK_VMM_IRQ), 3000, NULL);
}

/* Every muser ioctl with random arguments, layouts at their edges. */
TEST_F(he_fuzz, ioctls)
{
	fz_seed(self->f);
	fz_run(self->f, FZ_KINDS(FZK_READ, FZK_REPLY, FZK_DMA_MAP, FZK_DMA_RELEASE,
				 FZK_DMA_RW, FZK_TRIGGER, FZK_IRQ_STATE, FZK_LAYOUT,
				 FZK_IOCTL_ARGS, FZK_RANDOM_IOCTL, FZK_SWITCH,
				 FZK_VMM_MAP, FZK_VMM_UNMAP, FZK_VMM_IRQ, FZK_BUDGET,
				 FZK_REOPEN), 4000, NULL);
}

/* mmap, munmap, mremap, mprotect and faults at random offsets. */
TEST_F(he_fuzz, mmaps)
{
	fz_seed(self->f);
	fz_run(self->f, FZ_KINDS(FZK_READ, FZK_REPLY, FZK_DMA_MAP, FZK_DMA_RELEASE,
				 FZK_DMA_RW, FZK_MMAP, FZK_MUNMAP, FZK_TOUCH, FZK_SWITCH,
				 FZK_VMM_MAP, FZK_VMM_UNMAP, FZK_VMM_DEVMEM), 4000, NULL);
}

/*
 * All of it at random, with child emulators taking over and dying:
 * MUSER_FUZZ_SECONDS (default FZ_SECONDS) or MUSER_FUZZ_CALLS hostile
 * emulator calls, seeded by MUSER_FUZZ_SEED.
 */
TEST_F_TIMEOUT(he_fuzz, fuzz, FZ_SECONDS + 120)
{
	struct fuzz_budget b;

	fuzz_budget_init(&b, "hostile emulator", FZ_SECONDS);
	self->f->seed = b.seed;
	self->f->rng = b.seed;
	fz_run(self->f, FZ_ALL, 0, &b);
}

/* The fuzzer's timeout follows its budget. */
static void __attribute__((constructor)) he_fuzz_timeout(void)
{
	_he_fuzz_fuzz_object.timeout = fuzz_timeout(FZ_SECONDS, 120);
}

TEST_HARNESS_MAIN
