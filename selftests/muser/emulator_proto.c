// SPDX-License-Identifier: GPL-2.0
/*
 * The emulator side of <linux/muser.h>, driven by hand: the test is both the
 * emulator (read() requests from /dev/muser/UUID, write() replies) and the
 * VMM (a VFIO client whose accesses run on helper threads), so it controls
 * every byte and every ordering.
 *
 * Covered: attach/detach/EBUSY, layout validation, request contents, reply
 * validation (ENOENT, EINVAL), errno propagation to the VMM, replies out of
 * order and batched, large accesses split, MUSER_REQ_F_REPLAYED, poll and
 * O_NONBLOCK, reset, interrupt triggering, the no-emulator timeout, and
 * removing a device the VMM holds open (the REQ irq).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common.h"
#include "harness.h"
#include "attach_cases.h"

#define WAIT_MS	5000	/* for a request that must arrive */

/* Read exactly one request, waiting at most WAIT_MS. */
static int read_one(int ctl, struct emu_req *r)
{
	struct emu_req reqs[4];
	int n = emu_read_timeout(ctl, reqs, 4, WAIT_MS);

	if (n == 1)
		*r = reqs[0];
	return n;
}

/* Read until @want requests are collected (each read waits WAIT_MS). */
static int read_n(int ctl, struct emu_req *reqs, int want)
{
	int have = 0, n;

	while (have < want) {
		n = emu_read_timeout(ctl, reqs + have, want - have, WAIT_MS);
		if (n <= 0)
			return n < 0 ? n : have;
		have += n;
	}
	return have;
}

static int set_irq_action(int device, uint32_t index, uint32_t action)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | action,
		.index = index,
		.count = 1,
	};

	return ioctl(device, VFIO_DEVICE_SET_IRQS, &set) ? -errno : 0;
}

/* ------------------------------------------------------------------ raw */

/* An mdev with the test attached as emulator and a VFIO client open. */
FIXTURE(raw) {
	char uuid[UUID_LEN + 1];
	bool created;
	int ctl;
	struct muser_device_info layout;
	struct vfio_client c;
	long saved_timeout;
	int kmsg;
};

FIXTURE_SETUP(raw)
{
	const char *step = "?";
	int ret;

	self->kmsg = -1;
	self->ctl = -1;
	self->saved_timeout = -1;
	vfio_client_init(&self->c);
	REQUIRE_MUSER();

	self->kmsg = kmsg_start(_metadata->name);
	ret = mdev_create(self->uuid);
	ASSERT_EQ(0, ret) TH_LOG("create mdev: %s", strerror(-ret));
	self->created = true;
	self->ctl = ctl_open(self->uuid, 0);
	ASSERT_LE(0, self->ctl) TH_LOG("open control node: %s",
				       strerror(-self->ctl));
	layout_default(&self->layout);
	ASSERT_EQ(0, ctl_attach(self->ctl, &self->layout));
	ret = vfio_client_open(&self->c, self->uuid, &step);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", step, strerror(-ret));
}

FIXTURE_TEARDOWN(raw)
{
	vfio_client_close(&self->c);
	if (self->ctl >= 0)
		close(self->ctl);
	if (self->created)
		EXPECT_EQ(0, mdev_remove(self->uuid));
	if (self->saved_timeout >= 0)
		EXPECT_EQ(0, param_set("timeout_ms", self->saved_timeout));
	if (self->kmsg >= 0)
		EXPECT_EQ(0, kmsg_check(self->kmsg, _metadata->name))
			TH_LOG("the kernel logged a warning, see above");
}

TEST_F(raw, attach_detach_ebusy)
{
	struct muser_device_info other;
	int ctl2, ctl3;

	SKIP_IF_SETUP_SKIPPED();
	ctl2 = ctl_open(self->uuid, 0);
	ASSERT_LE(0, ctl2);
	ctl3 = ctl_open(self->uuid, 0);
	ASSERT_LE(0, ctl3);

	/* One emulator per device. */
	EXPECT_EQ(-EBUSY, ctl_attach(ctl2, &self->layout));
	EXPECT_EQ(-EBUSY, ctl_attach(self->ctl, &self->layout));
	/* Only the attached file can detach. */
	EXPECT_EQ(-1, ioctl(ctl2, MUSER_IOC_DETACH));
	EXPECT_EQ(0, ioctl(self->ctl, MUSER_IOC_DETACH)) TH_LOG("%m");
	EXPECT_EQ(-1, ioctl(self->ctl, MUSER_IOC_DETACH));

	/* Now another may attach, and the first is the one refused. */
	EXPECT_EQ(0, ctl_attach(ctl2, &self->layout));
	EXPECT_EQ(-EBUSY, ctl_attach(self->ctl, &self->layout));
	EXPECT_EQ(-EBUSY, ctl_attach(ctl3, &self->layout));

	/* Closing detaches. */
	close(ctl2);
	EXPECT_EQ(0, ctl_attach(ctl3, &self->layout));
	close(ctl3);

	/*
	 * The VMM has the device open: a different layout is refused, the
	 * same one is accepted.
	 */
	other = self->layout;
	other.regions[VFIO_PCI_BAR0_REGION_INDEX].size = 0x2000;
	ctl2 = ctl_attach(self->ctl, &other);
	EXPECT_TRUE(ctl2 == -EBUSY || ctl2 == -EINVAL)
		TH_LOG("different layout while open: %d", ctl2);
	EXPECT_EQ(0, ctl_attach(self->ctl, &self->layout));

	/* Unknown ioctl. */
	EXPECT_EQ(-1, ioctl(self->ctl, _IO(MUSER_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(raw, device_info_from_layout)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info ri;
	struct vfio_irq_info ii;
	int i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, ioctl(self->c.device, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
		  info.flags & (VFIO_DEVICE_FLAGS_PCI |
				VFIO_DEVICE_FLAGS_RESET));
	EXPECT_EQ(self->layout.num_regions, info.num_regions);
	EXPECT_EQ(MUSER_NUM_IRQS, info.num_irqs);
	for (i = 0; i < (int)info.num_regions; i++) {
		const struct muser_region *r = &self->layout.regions[i];

		ASSERT_EQ(0, get_region_info(self->c.device, i, &ri));
		EXPECT_EQ(r->size, ri.size) TH_LOG("region %d", i);
		EXPECT_EQ(MUSER_REGION_OFFSET(i), ri.offset);
		if (r->size)
			EXPECT_EQ(r->flags, ri.flags &
				  (VFIO_REGION_INFO_FLAG_READ |
				   VFIO_REGION_INFO_FLAG_WRITE))
				TH_LOG("region %d", i);
		EXPECT_FALSE(ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
	}
	for (i = 0; i < MUSER_NUM_IRQS; i++) {
		const struct muser_irq *q = &self->layout.irqs[i];

		ASSERT_EQ(0, get_irq_info(self->c.device, i, &ii));
		if (i == VFIO_PCI_REQ_IRQ_INDEX) {
			EXPECT_EQ(1, ii.count);
		} else {
			EXPECT_EQ(q->count, ii.count) TH_LOG("irq %d", i);
			if (q->count)
				EXPECT_EQ(q->flags | VFIO_IRQ_INFO_EVENTFD,
					  ii.flags) TH_LOG("irq %d", i);
		}
	}
}

TEST_F(raw, read_request)
{
	struct async_access a;
	struct emu_req r;
	uint8_t data[4] = { 0x11, 0x22, 0x33, 0x44 };

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 0x10, 4, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_EQ(MUSER_REQ_READ, r.hdr.type);
	EXPECT_EQ(0, r.hdr.flags);
	EXPECT_EQ(VFIO_PCI_BAR0_REGION_INDEX, r.hdr.region);
	EXPECT_EQ(0x10, r.hdr.offset);
	EXPECT_EQ(4, r.hdr.len);
	EXPECT_EQ(0, r.hdr.data_len);
	EXPECT_EQ(sizeof(struct muser_reply) + 8,
		  emu_reply(self->ctl, r.hdr.id, 0, data, 4));
	EXPECT_EQ(4, async_join(&a));
	EXPECT_EQ(0, memcmp(a.buf, data, 4));

	/* Config space is a region like any other. */
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_CONFIG_REGION_INDEX,
				 0, 2, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_EQ(MUSER_REQ_READ, r.hdr.type);
	EXPECT_EQ(VFIO_PCI_CONFIG_REGION_INDEX, r.hdr.region);
	EXPECT_EQ(0, r.hdr.offset);
	EXPECT_EQ(2, r.hdr.len);
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, "\x4f\x49", 2));
	EXPECT_EQ(2, async_join(&a));
	EXPECT_EQ(0, memcmp(a.buf, "\x4f\x49", 2));
}

TEST_F(raw, write_request)
{
	struct async_access a;
	struct emu_req r;
	uint32_t v = 0xcafef00d;

	SKIP_IF_SETUP_SKIPPED();
	memcpy(a.buf, &v, 4);
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR2_REGION_INDEX,
				 0x104, 4, true));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_EQ(MUSER_REQ_WRITE, r.hdr.type);
	EXPECT_EQ(VFIO_PCI_BAR2_REGION_INDEX, r.hdr.region);
	EXPECT_EQ(0x104, r.hdr.offset);
	EXPECT_EQ(4, r.hdr.len);
	EXPECT_EQ(4, r.hdr.data_len);
	EXPECT_EQ(0, memcmp(r.data, &v, 4));
	EXPECT_EQ(sizeof(struct muser_reply),
		  emu_reply(self->ctl, r.hdr.id, 0, NULL, 0));
	EXPECT_EQ(4, async_join(&a));
}

TEST_F(raw, ids_unique)
{
	struct async_access a;
	struct emu_req r;
	uint64_t ids[8];
	int i, j;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, async_start(&a, &self->c,
					 VFIO_PCI_BAR0_REGION_INDEX, i, 1,
					 false));
		ASSERT_EQ(1, read_one(self->ctl, &r));
		ids[i] = r.hdr.id;
		EXPECT_EQ((uint64_t)i, r.hdr.offset);
		EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, "x", 1));
		EXPECT_EQ(1, async_join(&a));
		for (j = 0; j < i; j++)
			EXPECT_NE(ids[j], ids[i]);
	}
}

/* The emulator's errno is what the VMM's syscall fails with. */
TEST_F(raw, error_propagates)
{
	struct async_access a;
	struct emu_req r;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 0, 4, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, EIO, NULL, 0));
	EXPECT_EQ(-EIO, async_join(&a));

	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 8, 4, true));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, EACCES, NULL, 0));
	EXPECT_EQ(-EACCES, async_join(&a));

	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_CONFIG_REGION_INDEX,
				 0x40, 1, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, ENODEV, NULL, 0));
	EXPECT_EQ(-ENODEV, async_join(&a));
}

TEST_F(raw, reply_unknown_id)
{
	struct async_access a;
	struct emu_req r;

	SKIP_IF_SETUP_SKIPPED();
	/* Nothing in flight at all. */
	EXPECT_EQ(-ENOENT, emu_reply(self->ctl, 12345, 0, NULL, 0));

	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 0, 1, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_EQ(-ENOENT, emu_reply(self->ctl, r.hdr.id + 1000, 0, "z", 1));
	EXPECT_EQ(-ENOENT, emu_reply(self->ctl, r.hdr.id - 1, 0, "z", 1));
	/* The request is still waiting and the right id completes it. */
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, "a", 1));
	EXPECT_EQ(1, async_join(&a));
	EXPECT_EQ('a', a.buf[0]);
	/* A second reply to the same id: nobody waits for it any more. */
	EXPECT_EQ(-ENOENT, emu_reply(self->ctl, r.hdr.id, 0, "a", 1));
}

/* Malformed reply headers are refused and change nothing. */
TEST_F(raw, reply_malformed)
{
	uint8_t buf[sizeof(struct muser_reply) + 2 * MUSER_MAX_DATA]
		__attribute__((aligned(8)));
	struct muser_reply *rep = (struct muser_reply *)buf;
	struct async_access a;
	struct emu_req r;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 0, 4, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	memset(buf, 0, sizeof(buf));

	/* Shorter than a header. */
	rep->id = r.hdr.id;
	rep->len = 4;
	EXPECT_EQ(-1, write(self->ctl, buf, sizeof(*rep) - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(self->ctl, buf, 1));
	EXPECT_EQ(EINVAL, errno);
	/* Header announces data that is not there. */
	EXPECT_EQ(-1, write(self->ctl, buf, sizeof(*rep)));
	EXPECT_EQ(EINVAL, errno);
	/* Data not padded to MUSER_ALIGN. */
	EXPECT_EQ(-1, write(self->ctl, buf, sizeof(*rep) + 4));
	EXPECT_EQ(EINVAL, errno);
	/* More data than any request carries. */
	rep->len = MUSER_MAX_DATA + 8;
	EXPECT_EQ(-1, write(self->ctl, buf, sizeof(*rep) + MUSER_MAX_DATA + 8));
	EXPECT_EQ(EINVAL, errno);
	/* Negative error. */
	rep->len = 0;
	rep->error = -EIO;
	EXPECT_EQ(-1, write(self->ctl, buf, sizeof(*rep)));
	EXPECT_EQ(EINVAL, errno);
	/* An error with data. */
	rep->len = 4;
	rep->error = EIO;
	EXPECT_EQ(-1, write(self->ctl, buf, sizeof(*rep) + 8));
	EXPECT_EQ(EINVAL, errno);

	/* None of that touched the request. */
	EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, "abcd", 4));
	EXPECT_EQ(4, async_join(&a));
	EXPECT_EQ(0, memcmp(a.buf, "abcd", 4));
}

/*
 * A well-formed reply whose len does not match the request: EINVAL for the
 * emulator. The VMM's access then fails (EIO), or if the kernel kept the
 * request, a correct reply still completes it.
 */
TEST_F(raw, reply_wrong_len)
{
	struct {
		uint32_t region;
		size_t len;
		bool write;
		uint32_t bad_len;
	} cases[] = {
		{ VFIO_PCI_BAR0_REGION_INDEX, 4, false, 2 },	/* short */
		{ VFIO_PCI_BAR0_REGION_INDEX, 4, false, 8 },	/* long */
		{ VFIO_PCI_BAR0_REGION_INDEX, 4, false, 0 },	/* none */
		{ VFIO_PCI_BAR0_REGION_INDEX, 4, true, 4 },	/* data for a write */
		{ VFIO_PCI_CONFIG_REGION_INDEX, 1, false, 8 },
	};
	uint8_t junk[8] = "01234567";
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct async_access a;
		struct emu_req r;
		ssize_t ret;

		memset(a.buf, 0, sizeof(a.buf));
		ASSERT_EQ(0, async_start(&a, &self->c, cases[i].region, 0,
					 cases[i].len, cases[i].write));
		ASSERT_EQ(1, read_one(self->ctl, &r));
		EXPECT_EQ(-EINVAL, emu_reply(self->ctl, r.hdr.id, 0, junk,
					     cases[i].bad_len))
			TH_LOG("case %zu", i);
		ret = emu_reply(self->ctl, r.hdr.id, 0,
				cases[i].write ? NULL : "abcd",
				cases[i].write ? 0 : cases[i].len);
		if (ret == -ENOENT) {
			/* The bad reply settled it: the VMM must see an error. */
			EXPECT_EQ(-EIO, async_join(&a)) TH_LOG("case %zu", i);
		} else {
			EXPECT_LT(0, ret) TH_LOG("case %zu", i);
			EXPECT_EQ(cases[i].len, async_join(&a))
				TH_LOG("case %zu", i);
		}
	}
}

/* Several requests in flight, answered in reverse order. */
TEST_F(raw, out_of_order)
{
	enum { N = 4 };
	struct async_access a[N];
	struct emu_req reqs[N];
	int i, j;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, async_start(&a[i], &self->c,
					 VFIO_PCI_BAR2_REGION_INDEX,
					 0x100 * i, 8, false));
	ASSERT_EQ(N, read_n(self->ctl, reqs, N));
	for (i = 0; i < N; i++)
		for (j = 0; j < i; j++)
			EXPECT_NE(reqs[i].hdr.id, reqs[j].hdr.id);
	for (i = N - 1; i >= 0; i--) {
		uint8_t data[8];

		for (j = 0; j < 8; j++)
			data[j] = emu_pattern(reqs[i].hdr.region,
					      reqs[i].hdr.offset + j);
		EXPECT_EQ(sizeof(struct muser_reply) + 8,
			  emu_reply(self->ctl, reqs[i].hdr.id, 0, data, 8));
	}
	for (i = 0; i < N; i++) {
		EXPECT_EQ(8, async_join(&a[i]));
		for (j = 0; j < 8; j++)
			EXPECT_EQ(emu_pattern(VFIO_PCI_BAR2_REGION_INDEX,
					      0x100 * i + j), a[i].buf[j])
				TH_LOG("access %d byte %d", i, j);
	}
}

/* Several replies in one write(); an invalid one stops consumption. */
TEST_F(raw, batched_replies)
{
	enum { N = 3 };
	uint8_t buf[N * (sizeof(struct muser_reply) + 8)]
		__attribute__((aligned(8)));
	const size_t one = sizeof(struct muser_reply) + 8;
	struct async_access a[N];
	struct emu_req reqs[N];
	int i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, async_start(&a[i], &self->c,
					 VFIO_PCI_BAR0_REGION_INDEX, 8 * i, 4,
					 false));
	ASSERT_EQ(N, read_n(self->ctl, reqs, N));

	memset(buf, 0, sizeof(buf));
	for (i = 0; i < N; i++) {
		struct muser_reply *rep = (void *)(buf + i * one);

		rep->id = reqs[i].hdr.id;
		rep->len = 4;
		memset(rep + 1, 'A' + reqs[i].hdr.offset / 8, 4);
	}
	/* The second reply's id is wrong: only the first is consumed. */
	((struct muser_reply *)(buf + one))->id += 1000;
	EXPECT_EQ(one, write(self->ctl, buf, sizeof(buf)));
	((struct muser_reply *)(buf + one))->id -= 1000;
	/* The rest, in one go. */
	EXPECT_EQ(2 * one, write(self->ctl, buf + one, 2 * one));
	for (i = 0; i < N; i++) {
		EXPECT_EQ(4, async_join(&a[i]));
		EXPECT_EQ('A' + i, a[i].buf[0]);
		EXPECT_EQ('A' + i, a[i].buf[3]);
	}
}

/* Accesses bigger than MUSER_MAX_DATA arrive as several requests. */
TEST_F(raw, large_access_split)
{
	static uint8_t data[MUSER_MAX_DATA];
	struct async_access a;
	struct emu_req r;
	size_t done = 0;
	int n = 0, j;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR2_REGION_INDEX,
				 0x10, 2 * MUSER_MAX_DATA, false));
	while (done < 2 * MUSER_MAX_DATA) {
		ASSERT_EQ(1, read_one(self->ctl, &r)) TH_LOG("after %zu", done);
		ASSERT_EQ(MUSER_REQ_READ, r.hdr.type);
		ASSERT_EQ(0x10 + done, r.hdr.offset);
		ASSERT_GE(MUSER_MAX_DATA, r.hdr.len);
		ASSERT_LT(0, r.hdr.len);
		for (j = 0; j < (int)r.hdr.len; j++)
			data[j] = emu_pattern(r.hdr.region, r.hdr.offset + j);
		ASSERT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, data,
				       r.hdr.len));
		done += r.hdr.len;
		n++;
	}
	EXPECT_LE(2, n);
	EXPECT_EQ(2 * MUSER_MAX_DATA, async_join(&a));
	for (j = 0; j < 2 * MUSER_MAX_DATA; j++)
		if (a.buf[j] != emu_pattern(VFIO_PCI_BAR2_REGION_INDEX,
					    0x10 + j)) {
			EXPECT_EQ(emu_pattern(VFIO_PCI_BAR2_REGION_INDEX,
					      0x10 + j), a.buf[j])
				TH_LOG("byte %d", j);
			break;
		}

	/* A large write carries all its data. */
	memset(a.buf, 0x77, 2 * MUSER_MAX_DATA);
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR2_REGION_INDEX,
				 0, MUSER_MAX_DATA + 8, true));
	done = 0;
	while (done < MUSER_MAX_DATA + 8) {
		ASSERT_EQ(1, read_one(self->ctl, &r));
		ASSERT_EQ(MUSER_REQ_WRITE, r.hdr.type);
		ASSERT_EQ(done, r.hdr.offset);
		ASSERT_EQ(r.hdr.len, r.hdr.data_len);
		EXPECT_EQ(0x77, r.data[0]);
		EXPECT_EQ(0x77, r.data[r.hdr.len - 1]);
		ASSERT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, NULL, 0));
		done += r.hdr.len;
	}
	EXPECT_EQ(MUSER_MAX_DATA + 8, async_join(&a));
}

/*
 * An emulator that goes away with a request read but unanswered: the next
 * emulator gets it again, flagged MUSER_REQ_F_REPLAYED, and its answer
 * reaches the VMM. Once by close(), once by MUSER_IOC_DETACH.
 */
TEST_F(raw, replayed_after_detach)
{
	struct async_access a;
	struct emu_req r, r2;
	int round;

	SKIP_IF_SETUP_SKIPPED();
	for (round = 0; round < 2; round++) {
		ASSERT_EQ(0, async_start(&a, &self->c,
					 VFIO_PCI_BAR0_REGION_INDEX, 0x20, 4,
					 false));
		ASSERT_EQ(1, read_one(self->ctl, &r));
		EXPECT_EQ(0, r.hdr.flags & MUSER_REQ_F_REPLAYED);

		if (round == 0) {
			close(self->ctl);
			self->ctl = ctl_open(self->uuid, 0);
			ASSERT_LE(0, self->ctl);
		} else {
			ASSERT_EQ(0, ioctl(self->ctl, MUSER_IOC_DETACH));
			/* A detached file can no longer answer. */
			EXPECT_GT(0, emu_reply(self->ctl, r.hdr.id, 0,
					       "abcd", 4));
		}
		EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
		ASSERT_EQ(0, ctl_attach(self->ctl, &self->layout));

		ASSERT_EQ(1, read_one(self->ctl, &r2)) TH_LOG("round %d", round);
		EXPECT_TRUE(r2.hdr.flags & MUSER_REQ_F_REPLAYED);
		EXPECT_EQ(r.hdr.type, r2.hdr.type);
		EXPECT_EQ(r.hdr.region, r2.hdr.region);
		EXPECT_EQ(r.hdr.offset, r2.hdr.offset);
		EXPECT_EQ(r.hdr.len, r2.hdr.len);
		TH_LOG("round %d: id %llu replayed as %llu", round,
		       (unsigned long long)r.hdr.id,
		       (unsigned long long)r2.hdr.id);
		EXPECT_LT(0, emu_reply(self->ctl, r2.hdr.id, 0, "wxyz", 4));
		EXPECT_EQ(4, async_join(&a));
		EXPECT_EQ(0, memcmp(a.buf, "wxyz", 4));
	}

	/* A fresh request after that is not flagged. */
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 0, 1, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_EQ(0, r.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, "q", 1));
	EXPECT_EQ(1, async_join(&a));
}

/* A replayed WRITE carries its data again. */
TEST_F(raw, replayed_write_keeps_data)
{
	struct async_access a;
	struct emu_req r, r2;

	SKIP_IF_SETUP_SKIPPED();
	memcpy(a.buf, "PQRSTUVW", 8);
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR2_REGION_INDEX,
				 0x40, 8, true));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	ASSERT_EQ(MUSER_REQ_WRITE, r.hdr.type);
	close(self->ctl);
	self->ctl = ctl_open(self->uuid, 0);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, ctl_attach(self->ctl, &self->layout));
	ASSERT_EQ(1, read_one(self->ctl, &r2));
	EXPECT_TRUE(r2.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_EQ(MUSER_REQ_WRITE, r2.hdr.type);
	EXPECT_EQ(8, r2.hdr.data_len);
	EXPECT_EQ(0, memcmp(r2.data, "PQRSTUVW", 8));
	EXPECT_LT(0, emu_reply(self->ctl, r2.hdr.id, 0, NULL, 0));
	EXPECT_EQ(8, async_join(&a));
}

TEST_F(raw, poll_and_nonblock)
{
	struct pollfd pfd = { .events = POLLIN };
	uint8_t small[64];
	struct async_access a;
	struct emu_req r;
	int nb;

	SKIP_IF_SETUP_SKIPPED();
	/* Nothing pending: no POLLIN, and O_NONBLOCK read says EAGAIN. */
	pfd.fd = self->ctl;
	EXPECT_EQ(0, poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN));
	nb = fcntl(self->ctl, F_GETFL);
	ASSERT_EQ(0, fcntl(self->ctl, F_SETFL, nb | O_NONBLOCK));
	EXPECT_EQ(-EAGAIN, emu_read(self->ctl, &r, 1));

	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 4, 4, false));
	EXPECT_EQ(1, poll(&pfd, 1, WAIT_MS));
	EXPECT_TRUE(pfd.revents & POLLIN);
	/* A buffer smaller than MUSER_READ_BUF_MIN is refused. */
	EXPECT_EQ(-1, read(self->ctl, small, sizeof(small)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(1, emu_read(self->ctl, &r, 1));
	/* Delivered: no longer pending. */
	EXPECT_EQ(0, poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN));
	EXPECT_EQ(-EAGAIN, emu_read(self->ctl, &r, 1));
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, "1234", 4));
	EXPECT_EQ(4, async_join(&a));

	/* A file that is not attached gets no requests. */
	nb = ctl_open(self->uuid, O_NONBLOCK);
	ASSERT_LE(0, nb);
	pfd.fd = nb;
	pfd.revents = 0;
	EXPECT_LE(0, poll(&pfd, 1, 0));
	EXPECT_FALSE(pfd.revents & POLLIN);
	EXPECT_GT(0, emu_read(nb, &r, 1));
	close(nb);
}

TEST_F(raw, reset_request)
{
	struct reset_arg ra = { .fd = self->c.device };
	void *(*fn)(void *) = reset_fn;
	struct emu_req r;
	pthread_t t;
	int ret;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, pthread_create(&t, NULL, fn, &ra));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_EQ(MUSER_REQ_RESET, r.hdr.type);
	EXPECT_EQ(0, r.hdr.data_len);
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, NULL, 0));
	pthread_join(t, NULL);
	EXPECT_EQ(0, ra.ret);

	/* A failed reset fails the ioctl with the emulator's errno. */
	ASSERT_EQ(0, pthread_create(&t, NULL, fn, &ra));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_EQ(MUSER_REQ_RESET, r.hdr.type);
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, EIO, NULL, 0));
	pthread_join(t, NULL);
	EXPECT_EQ(-EIO, ra.ret);

	/* Data in a reset reply is refused. */
	ASSERT_EQ(0, pthread_create(&t, NULL, fn, &ra));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	ret = emu_reply(self->ctl, r.hdr.id, 0, "12345678", 8);
	EXPECT_EQ(-EINVAL, ret);
	if (ret == -EINVAL)
		emu_reply(self->ctl, r.hdr.id, 0, NULL, 0);
	pthread_join(t, NULL);
}

TEST_F(raw, irq_trigger)
{
	int intx, msi;

	SKIP_IF_SETUP_SKIPPED();
	intx = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	msi = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, intx);
	ASSERT_LE(0, msi);

	/* The VMM has not set an eventfd yet. */
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->ctl, VFIO_PCI_INTX_IRQ_INDEX,
					   0, 1));
	/* Indexes and ranges the layout does not have. */
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->ctl, VFIO_PCI_INTX_IRQ_INDEX,
					   1, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->ctl, VFIO_PCI_INTX_IRQ_INDEX,
					   0, 2));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->ctl, VFIO_PCI_MSIX_IRQ_INDEX,
					   0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->ctl, VFIO_PCI_ERR_IRQ_INDEX,
					   0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->ctl, MUSER_NUM_IRQS, 0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->ctl, 0xffffffff, 0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->ctl, VFIO_PCI_MSI_IRQ_INDEX,
					   0xffffffff, 2));
	{
		struct muser_irq_trigger t = {
			.argsz = 8, .index = VFIO_PCI_MSI_IRQ_INDEX,
			.count = 1,
		};

		EXPECT_EQ(-1, ioctl(self->ctl, MUSER_IOC_TRIGGER_IRQ, &t));
		EXPECT_EQ(EINVAL, errno);
	}

	/* INTx: fires, is automasked, fires again on unmask. */
	ASSERT_EQ(0, set_irq_eventfd(self->c.device, VFIO_PCI_INTX_IRQ_INDEX,
				     0, intx));
	EXPECT_EQ(0, emu_trigger_irq(self->ctl, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
	EXPECT_EQ(1, eventfd_wait(intx, 1000));
	EXPECT_EQ(0, emu_trigger_irq(self->ctl, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
	EXPECT_EQ(0, eventfd_wait(intx, 100)) TH_LOG("INTx not automasked");
	EXPECT_EQ(0, set_irq_action(self->c.device, VFIO_PCI_INTX_IRQ_INDEX,
				    VFIO_IRQ_SET_ACTION_UNMASK));
	EXPECT_EQ(1, eventfd_wait(intx, 1000)) TH_LOG("pending INTx lost");
	/* Explicit mask: pending until unmask. */
	EXPECT_EQ(0, set_irq_action(self->c.device, VFIO_PCI_INTX_IRQ_INDEX,
				    VFIO_IRQ_SET_ACTION_UNMASK));
	EXPECT_EQ(0, set_irq_action(self->c.device, VFIO_PCI_INTX_IRQ_INDEX,
				    VFIO_IRQ_SET_ACTION_MASK));
	EXPECT_EQ(0, emu_trigger_irq(self->ctl, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
	EXPECT_EQ(0, eventfd_wait(intx, 100));
	EXPECT_EQ(0, set_irq_action(self->c.device, VFIO_PCI_INTX_IRQ_INDEX,
				    VFIO_IRQ_SET_ACTION_UNMASK));
	EXPECT_EQ(1, eventfd_wait(intx, 1000));

	/* MSI vector 0. */
	ASSERT_EQ(0, set_irq_eventfd(self->c.device, VFIO_PCI_MSI_IRQ_INDEX,
				     0, msi));
	EXPECT_EQ(0, emu_trigger_irq(self->ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
	EXPECT_EQ(1, eventfd_wait(msi, 1000));
	EXPECT_EQ(0, emu_trigger_irq(self->ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
	EXPECT_EQ(0, emu_trigger_irq(self->ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
	EXPECT_EQ(2, eventfd_wait(msi, 1000));
	/* Torn down by the VMM: ENOENT again. */
	EXPECT_EQ(0, set_irq_eventfd(self->c.device, VFIO_PCI_MSI_IRQ_INDEX,
				     0, -1));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->ctl, VFIO_PCI_MSI_IRQ_INDEX,
					   0, 1));

	/* A file that is not the attached emulator cannot trigger. */
	{
		int other = ctl_open(self->uuid, 0);

		ASSERT_LE(0, other);
		EXPECT_NE(0, emu_trigger_irq(other, VFIO_PCI_INTX_IRQ_INDEX, 0,
					     1));
		close(other);
	}

	/* The VMM closing the device releases its eventfds. */
	vfio_client_close(&self->c);
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->ctl, VFIO_PCI_INTX_IRQ_INDEX,
					   0, 1));
	close(intx);
	close(msi);
}

struct stress_arg {
	pthread_t thread;
	struct vfio_client *c;
	unsigned int seed;
	int iterations;
	int bad;
	char what[128];
};

static void *stress_fn(void *p)
{
	static const int regions[] = { VFIO_PCI_BAR0_REGION_INDEX,
				       VFIO_PCI_BAR2_REGION_INDEX,
				       VFIO_PCI_CONFIG_REGION_INDEX };
	static const uint64_t sizes[] = { 0x1000, 0x10000, 256 };
	struct stress_arg *s = p;
	uint8_t buf[64];
	int i, j;

	for (i = 0; i < s->iterations && !s->bad; i++) {
		int k = rand_r(&s->seed) % 3;
		size_t len = 1 + rand_r(&s->seed) % sizeof(buf);
		uint64_t off = rand_r(&s->seed) % (sizes[k] - len + 1);
		bool wr = rand_r(&s->seed) % 4 == 0;
		ssize_t n;

		if (wr) {
			memset(buf, i, len);
			n = region_write(s->c, regions[k], off, buf, len);
		} else {
			n = region_read(s->c, regions[k], off, buf, len);
		}
		if (n != (ssize_t)len) {
			snprintf(s->what, sizeof(s->what),
				 "%s region %d off 0x%llx len %zu: %zd",
				 wr ? "write" : "read", regions[k],
				 (unsigned long long)off, len, n);
			s->bad++;
			break;
		}
		for (j = 0; !wr && j < (int)len; j++) {
			if (buf[j] != emu_pattern(regions[k], off + j)) {
				snprintf(s->what, sizeof(s->what),
					 "read region %d off 0x%llx byte %d: 0x%02x",
					 regions[k], (unsigned long long)off, j,
					 buf[j]);
				s->bad++;
				break;
			}
		}
	}
	return NULL;
}

/* Several VMM threads at once against a background emulator. */
TEST_F_TIMEOUT(raw, concurrent_stress, 120)
{
	enum { THREADS = 4, ITERATIONS = 250 };
	struct stress_arg st[THREADS];
	struct emu_thread emu;
	int i, total;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, emu_thread_start(&emu, self->ctl));
	for (i = 0; i < THREADS; i++) {
		memset(&st[i], 0, sizeof(st[i]));
		st[i].c = &self->c;
		st[i].seed = 1234 + i;
		st[i].iterations = ITERATIONS;
		ASSERT_EQ(0, pthread_create(&st[i].thread, NULL, stress_fn,
					    &st[i]));
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(st[i].thread, NULL);
		EXPECT_EQ(0, st[i].bad) TH_LOG("thread %d: %s", i, st[i].what);
	}
	emu_thread_stop(&emu);
	EXPECT_EQ(0, emu.errors);
	EXPECT_EQ(0, emu.nr_replayed);
	total = emu.nr_read + emu.nr_write;
	EXPECT_EQ(THREADS * ITERATIONS, total);
}

/*
 * A VMM killed while it waits cancels its request: delivered or not, the
 * emulator never has to answer it, and a late answer gets ENOENT.
 */
TEST_F(raw, vmm_killed_while_waiting)
{
	struct async_access a;
	struct emu_req r;
	int round, status, fl;
	pid_t pid;

	SKIP_IF_SETUP_SKIPPED();
	for (round = 0; round < 2; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			uint8_t b[4];

			/* The device fd is shared with the parent. */
			pread(self->c.device, b, 4,
			      MUSER_REGION_OFFSET(VFIO_PCI_BAR0_REGION_INDEX) + 0x40);
			_exit(0);
		}
		if (round == 0) {
			/* Delivered, then the VMM dies. */
			ASSERT_EQ(1, read_one(self->ctl, &r));
			EXPECT_EQ(0x40, r.hdr.offset);
			kill(pid, SIGKILL);
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			EXPECT_TRUE(WIFSIGNALED(status));
			EXPECT_EQ(-ENOENT, emu_reply(self->ctl, r.hdr.id, 0,
						     "abcd", 4));
		} else {
			/* The VMM dies before the emulator reads. */
			struct pollfd pfd = { .fd = self->ctl, .events = POLLIN };

			EXPECT_EQ(1, poll(&pfd, 1, WAIT_MS));
			kill(pid, SIGKILL);
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			EXPECT_TRUE(WIFSIGNALED(status));
			fl = fcntl(self->ctl, F_GETFL);
			fcntl(self->ctl, F_SETFL, fl | O_NONBLOCK);
			EXPECT_EQ(-EAGAIN, emu_read(self->ctl, &r, 1))
				TH_LOG("a cancelled request was delivered");
			fcntl(self->ctl, F_SETFL, fl);
		}
	}
	/* The device still works for the surviving VMM. */
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 0, 4, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, "abcd", 4));
	EXPECT_EQ(4, async_join(&a));
}

/* An unanswered request fails with ETIMEDOUT; a late reply gets ENOENT. */
TEST_F(raw, unanswered_request_times_out)
{
	struct async_access a;
	struct emu_req r;
	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, param_get("timeout_ms", &self->saved_timeout));
	ASSERT_EQ(0, param_set("timeout_ms", 500));
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 0, 4, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_EQ(-ETIMEDOUT, async_join(&a));
	EXPECT_LE(400, a.elapsed_ms);
	EXPECT_GE(5000, a.elapsed_ms);
	EXPECT_EQ(-ENOENT, emu_reply(self->ctl, r.hdr.id, 0, "abcd", 4));
	EXPECT_EQ(0, param_set("timeout_ms", self->saved_timeout));

	/* The device keeps working. */
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR0_REGION_INDEX,
				 0, 4, false));
	ASSERT_EQ(1, read_one(self->ctl, &r));
	EXPECT_LT(0, emu_reply(self->ctl, r.hdr.id, 0, "abcd", 4));
	EXPECT_EQ(4, async_join(&a));
}

/* ------------------------------------------------------ layout validation */

ATTACH_FIXTURE(layout, layout_default);

#define LAYOUT_CASE(name, expect_, body) ATTACH_CASE(layout, name, expect_, body)

#define R(i)	(info->regions[VFIO_PCI_##i##_REGION_INDEX])
#define Q(i)	(info->irqs[VFIO_PCI_##i##_IRQ_INDEX])

LAYOUT_CASE(good, 0, (void)info);
LAYOUT_CASE(argsz_bigger, 0, info->argsz = sizeof(*info) + 64);
LAYOUT_CASE(with_vga, 0,
	    info->num_regions = 9; R(VGA).size = 0xc0000;
	    R(VGA).flags = VFIO_REGION_INFO_FLAG_READ |
			   VFIO_REGION_INFO_FLAG_WRITE);
LAYOUT_CASE(config_4096, 0, R(CONFIG).size = 4096);
LAYOUT_CASE(bar_64bit_4g, 0, R(BAR0).size = 1ULL << 32);
LAYOUT_CASE(rom, 0, R(ROM).size = 0x8000;
	    R(ROM).flags = VFIO_REGION_INFO_FLAG_READ);
LAYOUT_CASE(all_irqs, 0, Q(MSI).count = 32; Q(MSIX).count = 2048;
	    Q(MSIX).flags = VFIO_IRQ_INFO_NORESIZE; Q(ERR).count = 1);
LAYOUT_CASE(no_irqs, 0, Q(INTX).count = 0; Q(INTX).flags = 0;
	    Q(MSI).count = 0; Q(MSI).flags = 0);

LAYOUT_CASE(argsz_zero, -EINVAL, info->argsz = 0);
LAYOUT_CASE(argsz_short, -EINVAL, info->argsz = sizeof(*info) - 8);
LAYOUT_CASE(version_0, -EINVAL, info->version = 0);
LAYOUT_CASE(version_next, -EINVAL, info->version = MUSER_API_VERSION + 1);
LAYOUT_CASE(unknown_flag, -EINVAL, info->flags |= 1u << 31);
LAYOUT_CASE(num_regions_7, -EINVAL, info->num_regions = 7);
LAYOUT_CASE(num_regions_10, -EINVAL, info->num_regions = 10);
LAYOUT_CASE(num_irqs_4, -EINVAL, info->num_irqs = 4);
LAYOUT_CASE(num_irqs_6, -EINVAL, info->num_irqs = 6);
LAYOUT_CASE(bar0_not_pow2, -EINVAL, R(BAR0).size = 0x300);
LAYOUT_CASE(bar2_size_3, -EINVAL, R(BAR2).size = 3);
LAYOUT_CASE(bar5_not_pow2, -EINVAL, R(BAR5).size = 0x1001;
	    R(BAR5).flags = VFIO_REGION_INFO_FLAG_READ);
LAYOUT_CASE(rom_not_pow2, -EINVAL, R(ROM).size = 0x1800;
	    R(ROM).flags = VFIO_REGION_INFO_FLAG_READ);
/* A region must fit the 1 TiB offset window vfio-pci gives each index. */
LAYOUT_CASE(bar_beyond_offset_window, -EINVAL, R(BAR0).size = 1ULL << 41);
LAYOUT_CASE(config_0, -EINVAL, R(CONFIG).size = 0);
LAYOUT_CASE(config_128, -EINVAL, R(CONFIG).size = 128);
LAYOUT_CASE(config_512, -EINVAL, R(CONFIG).size = 512);
LAYOUT_CASE(config_8192, -EINVAL, R(CONFIG).size = 8192);
LAYOUT_CASE(vga_bad_size, -EINVAL, info->num_regions = 9;
	    R(VGA).size = 0x1000; R(VGA).flags = VFIO_REGION_INFO_FLAG_READ);
LAYOUT_CASE(vga_beyond_num_regions, -EINVAL, R(VGA).size = 0xc0000;
	    R(VGA).flags = VFIO_REGION_INFO_FLAG_READ);
LAYOUT_CASE(region_flag_mmap, -EINVAL,
	    R(BAR0).flags |= VFIO_REGION_INFO_FLAG_MMAP);
LAYOUT_CASE(intx_count_2, -EINVAL, Q(INTX).count = 2);
LAYOUT_CASE(msi_count_3, -EINVAL, Q(MSI).count = 3);
LAYOUT_CASE(msi_count_64, -EINVAL, Q(MSI).count = 64);
LAYOUT_CASE(msix_count_4096, -EINVAL, Q(MSIX).count = 4096);
LAYOUT_CASE(err_count_2, -EINVAL, Q(ERR).count = 2);

ATTACH_TEST(layout)

/* ---------------------------------------------------------- no emulator */

/*
 * timeout_ms is set to 500 for these: a VMM access while no emulator is
 * attached fails with ETIMEDOUT after about that long.
 */
FIXTURE(noemu) {
	char uuid[UUID_LEN + 1];
	bool created;
	long saved_timeout;
	struct vfio_client c;
	int kmsg;
};

#define NOEMU_TIMEOUT_MS	500

FIXTURE_SETUP(noemu)
{
	const char *step = "?";
	int ret;

	self->kmsg = -1;
	self->saved_timeout = -1;
	vfio_client_init(&self->c);
	REQUIRE_MUSER();
	self->kmsg = kmsg_start(_metadata->name);
	ASSERT_EQ(0, param_get("timeout_ms", &self->saved_timeout));
	ASSERT_EQ(0, param_set("timeout_ms", NOEMU_TIMEOUT_MS));
	ret = mdev_create(self->uuid);
	ASSERT_EQ(0, ret) TH_LOG("create mdev: %s", strerror(-ret));
	self->created = true;
	/* Opening the device does not need an emulator. */
	ret = vfio_client_open(&self->c, self->uuid, &step);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", step, strerror(-ret));
}

FIXTURE_TEARDOWN(noemu)
{
	vfio_client_close(&self->c);
	if (self->created)
		EXPECT_EQ(0, mdev_remove(self->uuid));
	if (self->saved_timeout >= 0)
		EXPECT_EQ(0, param_set("timeout_ms", self->saved_timeout));
	/* "no emulator attached" errors are expected here; WARNs are not. */
	if (self->kmsg >= 0)
		EXPECT_EQ(0, kmsg_check(self->kmsg, _metadata->name));
}

#define EXPECT_TIMED_OUT(elapsed) do {					\
	EXPECT_LE(NOEMU_TIMEOUT_MS - 100, (elapsed));			\
	EXPECT_GE(NOEMU_TIMEOUT_MS * 10, (elapsed));			\
} while (0)

TEST_F(noemu, timeout_param)
{
	long v;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, param_get("timeout_ms", &v));
	EXPECT_EQ(NOEMU_TIMEOUT_MS, v);
	ASSERT_EQ(0, param_set("timeout_ms", 1234));
	ASSERT_EQ(0, param_get("timeout_ms", &v));
	EXPECT_EQ(1234, v);
	ASSERT_EQ(0, param_set("timeout_ms", NOEMU_TIMEOUT_MS));
}

/* Before any emulator ever attached, even GET_INFO waits, then fails. */
TEST_F(noemu, info_before_first_attach)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info ri;
	struct vfio_irq_info ii;
	int64_t t0;

	SKIP_IF_SETUP_SKIPPED();
	t0 = now_ms();
	EXPECT_EQ(-1, ioctl(self->c.device, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_TIMED_OUT(now_ms() - t0);

	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, get_region_info(self->c.device,
					      VFIO_PCI_CONFIG_REGION_INDEX,
					      &ri));
	EXPECT_TIMED_OUT(now_ms() - t0);

	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, get_irq_info(self->c.device,
					   VFIO_PCI_INTX_IRQ_INDEX, &ii));
	EXPECT_TIMED_OUT(now_ms() - t0);
}

TEST_F(noemu, access_before_first_attach)
{
	uint32_t v;
	int64_t t0;

	SKIP_IF_SETUP_SKIPPED();
	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, region_read(&self->c,
					  VFIO_PCI_CONFIG_REGION_INDEX, 0,
					  &v, 4));
	EXPECT_TIMED_OUT(now_ms() - t0);
	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, region_write(&self->c,
					   VFIO_PCI_CONFIG_REGION_INDEX, 4,
					   &v, 2));
	EXPECT_TIMED_OUT(now_ms() - t0);
	t0 = now_ms();
	EXPECT_EQ(-1, ioctl(self->c.device, VFIO_DEVICE_RESET));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_TIMED_OUT(now_ms() - t0);
}

/* Attach, work, detach: accesses time out again; reattach: they work. */
TEST_F(noemu, emulator_comes_and_goes)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct muser_device_info layout;
	struct emu_thread emu;
	uint8_t b[4];
	int ctl, round;
	int64_t t0;

	SKIP_IF_SETUP_SKIPPED();
	layout_default(&layout);
	for (round = 0; round < 2; round++) {
		ctl = ctl_open(self->uuid, 0);
		ASSERT_LE(0, ctl);
		ASSERT_EQ(0, ctl_attach(ctl, &layout));
		ASSERT_EQ(0, emu_thread_start(&emu, ctl));

		EXPECT_EQ(0, ioctl(self->c.device, VFIO_DEVICE_GET_INFO,
				   &info));
		EXPECT_EQ(layout.num_regions, info.num_regions);
		EXPECT_EQ(4, region_read(&self->c, VFIO_PCI_BAR0_REGION_INDEX,
					 0x30, b, 4));
		EXPECT_EQ(emu_pattern(VFIO_PCI_BAR0_REGION_INDEX, 0x33), b[3]);
		EXPECT_EQ(4, region_write(&self->c,
					  VFIO_PCI_BAR0_REGION_INDEX, 0x30,
					  b, 4));

		emu_thread_stop(&emu);
		EXPECT_EQ(0, emu.errors);
		close(ctl);

		/* Gone: the layout stays, accesses time out. */
		EXPECT_EQ(0, ioctl(self->c.device, VFIO_DEVICE_GET_INFO,
				   &info));
		t0 = now_ms();
		EXPECT_EQ(-ETIMEDOUT, region_read(&self->c,
						  VFIO_PCI_BAR0_REGION_INDEX,
						  0, b, 4));
		EXPECT_TIMED_OUT(now_ms() - t0);
	}
}

/* An access waiting for the first emulator succeeds once it attaches. */
TEST_F(noemu, attach_while_waiting)
{
	struct muser_device_info layout;
	struct emu_thread emu;
	struct async_access a;
	int ctl;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, param_set("timeout_ms", 5000));
	ASSERT_EQ(0, async_start(&a, &self->c, VFIO_PCI_BAR2_REGION_INDEX,
				 0x20, 2, false));
	sleep_ms(300);
	EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	layout_default(&layout);
	ctl = ctl_open(self->uuid, 0);
	ASSERT_LE(0, ctl);
	ASSERT_EQ(0, ctl_attach(ctl, &layout));
	ASSERT_EQ(0, emu_thread_start(&emu, ctl));
	EXPECT_EQ(2, async_join(&a));
	EXPECT_EQ(emu_pattern(VFIO_PCI_BAR2_REGION_INDEX, 0x21), a.buf[1]);
	EXPECT_GT(5000, a.elapsed_ms);
	emu_thread_stop(&emu);
	close(ctl);
}

/* ------------------------------------------------------------ removal */

struct remover {
	pthread_t thread;
	const char *uuid;
	int ret;
	volatile int done;
};

static void *remover_fn(void *p)
{
	struct remover *r = p;

	r->ret = mdev_remove(r->uuid);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Removing a device the VMM holds open: the kernel signals the REQ eventfd,
 * the VMM lets go, the removal completes and the control node disappears.
 * The emulator stays attached throughout, as a real one would.
 */
TEST_F_TIMEOUT(raw, remove_while_open_req_irq, 60)
{
	char path[256];
	struct remover rm = { .uuid = self->uuid };
	struct emu_thread emu;
	struct pollfd pfd;
	int efd;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, emu_thread_start(&emu, self->ctl));
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, set_irq_eventfd(self->c.device, VFIO_PCI_REQ_IRQ_INDEX,
				     0, efd));
	/* The device works before. */
	EXPECT_EQ(0, ioctl(self->c.device, VFIO_DEVICE_RESET));

	ASSERT_EQ(0, pthread_create(&rm.thread, NULL, remover_fn, &rm));
	EXPECT_LT(0, eventfd_wait(efd, 15000)) TH_LOG("no REQ irq");
	/* Blocked until the VMM lets go; the emulator still serves it. */
	EXPECT_FALSE(__atomic_load_n(&rm.done, __ATOMIC_ACQUIRE));
	EXPECT_EQ(0, ioctl(self->c.device, VFIO_DEVICE_RESET));

	vfio_client_close(&self->c);
	close(efd);
	ASSERT_TRUE(wait_flag(&rm.done, 20000)) TH_LOG("remove still blocked");
	pthread_join(rm.thread, NULL);
	EXPECT_EQ(0, rm.ret);
	self->created = false;

	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", self->uuid);
	EXPECT_EQ(0, wait_path(path, false, 5000)) TH_LOG("%s still there", path);
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s", self->uuid);
	EXPECT_EQ(0, wait_path(path, false, 5000)) TH_LOG("%s still there", path);

	/* The emulator is told: hangup, and it can no longer attach. */
	emu_thread_stop(&emu);
	EXPECT_EQ(0, emu.errors);
	pfd.fd = self->ctl;
	pfd.events = POLLIN;
	EXPECT_EQ(1, poll(&pfd, 1, 1000));
	EXPECT_TRUE(pfd.revents & (POLLHUP | POLLERR));
	EXPECT_EQ(-ENODEV, emu_read(self->ctl, NULL, 0));
	EXPECT_NE(0, ctl_attach(self->ctl, &self->layout));
}

/* Removing a device nobody has open is immediate, emulator or not. */
TEST(remove_with_emulator_attached)
{
	struct muser_device_info layout;
	char uuid[UUID_LEN + 1], path[256];
	struct pollfd pfd;
	int64_t t0;
	int ctl, kmsg, ret;

	REQUIRE_MUSER();
	kmsg = kmsg_start(_metadata->name);
	ret = mdev_create(uuid);
	ASSERT_EQ(0, ret) TH_LOG("create: %s", strerror(-ret));
	ctl = ctl_open(uuid, 0);
	ASSERT_LE(0, ctl);
	layout_default(&layout);
	ASSERT_EQ(0, ctl_attach(ctl, &layout));

	t0 = now_ms();
	EXPECT_EQ(0, mdev_remove(uuid));
	EXPECT_GT(3000, now_ms() - t0);
	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", uuid);
	EXPECT_EQ(0, wait_path(path, false, 5000));
	pfd.fd = ctl;
	pfd.events = POLLIN;
	EXPECT_EQ(1, poll(&pfd, 1, 1000));
	EXPECT_TRUE(pfd.revents & POLLHUP);
	EXPECT_EQ(-ENODEV, emu_read(ctl, NULL, 0));
	EXPECT_NE(0, ioctl(ctl, MUSER_IOC_DETACH));
	close(ctl);
	EXPECT_EQ(0, kmsg_check(kmsg, _metadata->name));
}

/* Without MUSER_DEV_F_RESET the VMM is not offered reset. */
TEST(no_reset_flag)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct muser_device_info layout;
	char uuid[UUID_LEN + 1];
	struct vfio_client c;
	const char *step = "?";
	struct emu_req r;
	int ctl, kmsg, ret;

	REQUIRE_MUSER();
	kmsg = kmsg_start(_metadata->name);
	ret = mdev_create(uuid);
	ASSERT_EQ(0, ret) TH_LOG("create: %s", strerror(-ret));
	ctl = ctl_open(uuid, O_NONBLOCK);
	ASSERT_LE(0, ctl);
	layout_default(&layout);
	layout.flags = 0;
	ASSERT_EQ(0, ctl_attach(ctl, &layout));
	ret = vfio_client_open(&c, uuid, &step);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", step, strerror(-ret));
	ASSERT_EQ(0, ioctl(c.device, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
	EXPECT_FALSE(info.flags & VFIO_DEVICE_FLAGS_RESET);
	EXPECT_EQ(-1, ioctl(c.device, VFIO_DEVICE_RESET));
	EXPECT_EQ(-EAGAIN, emu_read(ctl, &r, 1)) TH_LOG("reset reached the emulator");
	vfio_client_close(&c);
	close(ctl);
	EXPECT_EQ(0, mdev_remove(uuid));
	EXPECT_EQ(0, kmsg_check(kmsg, _metadata->name));
}

/* The control node of a removed device can no longer be opened. */
TEST(control_node_lifecycle)
{
	char uuid[UUID_LEN + 1], path[256];
	struct stat st;
	int kmsg, ret, ctl;

	REQUIRE_MUSER();
	kmsg = kmsg_start(_metadata->name);
	ret = mdev_create(uuid);
	ASSERT_EQ(0, ret) TH_LOG("create: %s", strerror(-ret));
	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", uuid);
	ASSERT_EQ(0, wait_path(path, true, 5000));
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	ctl = ctl_open(uuid, 0);
	EXPECT_LE(0, ctl);
	if (ctl >= 0)
		close(ctl);
	EXPECT_EQ(0, mdev_remove(uuid));
	EXPECT_EQ(0, wait_path(path, false, 5000));
	EXPECT_GT(0, ctl_open(uuid, 0));
	EXPECT_EQ(0, kmsg_check(kmsg, _metadata->name));
}

TEST_HARNESS_MAIN
