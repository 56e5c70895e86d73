// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupts: the eventfds a VMM sets with VFIO_DEVICE_SET_IRQS, raised by
 * the emulator with MUSER_IOC_TRIGGER_IRQ and read back with
 * MUSER_IOC_GET_IRQ_STATE, and the posted MUSER_REQ_IRQ_STATE requests that
 * tell the emulator the configuration changed. The test is the emulator
 * (control node) and the VMM (VFIO device) at once.
 *
 * The layout: INTx, MSI with 4 vectors, MSI-X with 16 (2048 in one test).
 *
 * Covered: MSI and MSI-X delivery to the right eventfd, swapping and
 * removing a vector's eventfd at run time, disabling an index, loopback
 * triggers (DATA_NONE, DATA_BOOL), INTx automask, mask and unmask by ioctl
 * and by the unmask eventfd, GET_IRQ_STATE, the posted notifications
 * (coalesced, none for a failed SET_IRQS, kept for the next emulator), the
 * VMM closing the device, SET_IRQS of count 0 with every data type and
 * action (no data: only a DATA_NONE trigger, which disables, does
 * anything), and SET_IRQS / GET_IRQ_STATE / TRIGGER_IRQ argument errors in
 * the kselftest length-test style.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "harness.h"
#include "fixture.h"

#define INTX	VFIO_PCI_INTX_IRQ_INDEX
#define MSI	VFIO_PCI_MSI_IRQ_INDEX
#define MSIX	VFIO_PCI_MSIX_IRQ_INDEX
#define ERR	VFIO_PCI_ERR_IRQ_INDEX
#define REQ	VFIO_PCI_REQ_IRQ_INDEX
#define NR_MSI	4
#define NR_MSIX	16
#define MAX_EFDS 64

#define EVENTFD_TRIGGER	(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER)
#define NONE_TRIGGER	(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER)
#define BOOL_TRIGGER	(VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER)
#define NONE_MASK	(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK)
#define NONE_UNMASK	(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK)
#define BOOL_MASK	(VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_MASK)
#define BOOL_UNMASK	(VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_UNMASK)
#define EVENTFD_UNMASK	(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK)

#define SET_IRQS_MINSZ	offsetofend(struct vfio_irq_set, count)
#ifndef offsetofend
#define offsetofend(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))
#endif

static void layout_irqs(struct muser_device_info *info, uint32_t nr_msix)
{
	layout_default(info);
	info->irqs[MSI].count = NR_MSI;
	info->irqs[MSIX].flags = VFIO_IRQ_INFO_NORESIZE;
	info->irqs[MSIX].count = nr_msix;
}

/* The eventfd's counter, 0 if not signalled; it is reset. */
static uint64_t efd_take(int efd)
{
	uint64_t v;

	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static int set_one(int device, uint32_t index, uint32_t vector, int fd)
{
	int32_t f = fd;

	return vfio_set_irqs(device, EVENTFD_TRIGGER, index, vector, 1, &f);
}

static int set_action(int device, uint32_t flags, uint32_t index,
		      uint8_t val)
{
	return vfio_set_irqs(device, flags, index, 0, 1, &val);
}

/*
 * Read every pending request (ctl is O_NONBLOCK). Returns how many were
 * posted MUSER_REQ_IRQ_STATE, checking their headers, or -errno; other
 * requests are counted in *other (if not NULL) and answered with pattern
 * data.
 */
static int drain_posted(int ctl, int *other)
{
	struct emu_req reqs[16];
	int posted = 0, n, i;
	uint8_t data[8] = { 0 };

	if (other)
		*other = 0;
	for (;;) {
		n = emu_read(ctl, reqs, 16);
		if (n == -EAGAIN)
			return posted;
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			const struct muser_req *h = &reqs[i].hdr;

			if (h->type != MUSER_REQ_IRQ_STATE) {
				if (other)
					(*other)++;
				emu_reply(ctl, h->id, 0, data,
					  h->type == MUSER_REQ_READ ? h->len : 0);
				continue;
			}
			if (h->id || h->flags || h->region || h->offset ||
			    h->len || h->data_len) {
				fprintf(stderr, "# bad IRQ_STATE header: id %llu flags %u region %u offset %llu len %u data_len %u\n",
					(unsigned long long)h->id, h->flags,
					h->region, (unsigned long long)h->offset,
					h->len, h->data_len);
				return -EPROTO;
			}
			posted++;
		}
	}
}

/* Wait up to @ms for a posted notification; returns how many came. */
static int wait_posted(int ctl, int ms)
{
	struct pollfd pfd = { .fd = ctl, .events = POLLIN };

	if (poll(&pfd, 1, ms) <= 0)
		return 0;
	return drain_posted(ctl, NULL);
}

/* Poll GET_IRQ_STATE until INTx's masked flag is @want (<= @ms). */
static bool wait_masked(int ctl, bool want, int ms)
{
	struct muser_irq_state st;
	int64_t end = now_ms() + ms;

	for (;;) {
		if (!emu_get_irq_state(ctl, INTX, &st) &&
		    !!(st.flags & MUSER_IRQ_STATE_F_MASKED) == want)
			return true;
		if (now_ms() > end)
			return false;
		sleep_ms(5);
	}
}

FIXTURE(irqs) {
	struct rig r;		/* O_NONBLOCK control node */
	int efd[MAX_EFDS];
	int nr_efd;
};

/* A new non-blocking eventfd, closed by the teardown. */
static int new_efd(FIXTURE_DATA(irqs) *self)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd >= 0 && self->nr_efd < MAX_EFDS)
		self->efd[self->nr_efd++] = fd;
	return fd;
}

FIXTURE_SETUP(irqs)
{
	struct muser_device_info layout;

	self->nr_efd = 0;
	layout_irqs(&layout, NR_MSIX);
	RIG_SETUP(&self->r, &layout, RIG_NONBLOCK);
}

FIXTURE_TEARDOWN(irqs)
{
	int i;

	vfio_client_close(&self->r.c);
	for (i = 0; i < self->nr_efd; i++)
		close(self->efd[i]);
	RIG_TEARDOWN(&self->r);
}

/*
 * An eventfd on every MSI-X, MSI and INTx vector (ACTION_TRIGGER), in
 * @fds, @msi and *@intx.
 */
static void arm_all(struct __test_metadata *_metadata,
		    FIXTURE_DATA(irqs) *self, int32_t fds[NR_MSIX],
		    int32_t msi[NR_MSI], int *intx)
{
	uint32_t v;

	for (v = 0; v < NR_MSIX; v++)
		ASSERT_LE(0, fds[v] = new_efd(self));
	for (v = 0; v < NR_MSI; v++)
		ASSERT_LE(0, msi[v] = new_efd(self));
	ASSERT_LE(0, *intx = new_efd(self));
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSIX, 0,
				   NR_MSIX, fds));
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSI, 0,
				   NR_MSI, msi));
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, *intx));
}

/*
 * Check that exactly the eventfds in @want (a bitmap over @fds) fired, once
 * each; consumes their counters.
 */
#define EXPECT_FIRED(fds, n, want) do {					\
	uint32_t _i;							\
	for (_i = 0; _i < (n); _i++) {					\
		uint64_t _got = efd_take((fds)[_i]);			\
		EXPECT_EQ(((want) >> _i) & 1, _got)			\
			TH_LOG("vector %u fired %llu times", _i,	\
			       (unsigned long long)_got);		\
	}								\
} while (0)

TEST_F(irqs, msi_delivery)
{
	struct muser_irq_state st;
	int32_t fds[NR_MSI];
	uint32_t v;

	SKIP_IF_SETUP_SKIPPED();
	for (v = 0; v < NR_MSI; v++)
		ASSERT_LE(0, fds[v] = new_efd(self));

	/* Nothing set yet. */
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSI, &st));
	EXPECT_EQ(0, st.count);
	EXPECT_EQ(0, st.enabled[0]);
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSI, 0, 1));

	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSI, 0,
				   NR_MSI, fds));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSI, &st));
	EXPECT_EQ(NR_MSI, st.count);
	EXPECT_EQ(0xfULL, st.enabled[0]);
	EXPECT_EQ(0, st.enabled[1]);
	EXPECT_EQ(0, st.flags);

	for (v = 0; v < NR_MSI; v++) {
		EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, v, 1));
		EXPECT_FIRED(fds, NR_MSI, 1u << v);
	}
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 0, NR_MSI));
	EXPECT_FIRED(fds, NR_MSI, 0xfu);
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 1, 2));
	EXPECT_FIRED(fds, NR_MSI, 0x6u);
	/* Each trigger is one event. */
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 2, 1));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 2, 1));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 2, 1));
	EXPECT_EQ(3, efd_take(fds[2]));

	/* Out of the layout's range: EINVAL, nothing fires. */
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSI, NR_MSI, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSI, NR_MSI - 1, 2));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSI, 0, NR_MSI + 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSI, 0, 0));
	EXPECT_FIRED(fds, NR_MSI, 0u);

	/* INTx and MSI-X are separate indexes. */
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSIX, 0, 1));
	EXPECT_FIRED(fds, NR_MSI, 0u);
}

TEST_F(irqs, msix_delivery_and_swap)
{
	struct muser_irq_state st;
	int32_t fds[NR_MSIX], swap[3];
	int newfd, newfd2;
	uint32_t v;

	SKIP_IF_SETUP_SKIPPED();
	for (v = 0; v < NR_MSIX; v++)
		ASSERT_LE(0, fds[v] = new_efd(self));
	ASSERT_LE(0, newfd = new_efd(self));
	ASSERT_LE(0, newfd2 = new_efd(self));

	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSIX, 0,
				   NR_MSIX, fds));
	for (v = 0; v < NR_MSIX; v++) {
		EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, v, 1));
		EXPECT_FIRED(fds, NR_MSIX, 1u << v);
	}
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSIX, &st));
	EXPECT_EQ(NR_MSIX, st.count);
	EXPECT_EQ(0xffffULL, st.enabled[0]);

	/* Swap vector 3's eventfd: only the new one fires. */
	ASSERT_EQ(0, set_one(self->r.c.device, MSIX, 3, newfd));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 3, 1));
	EXPECT_EQ(1, efd_take(newfd));
	EXPECT_FIRED(fds, NR_MSIX, 0u);
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 0, NR_MSIX));
	EXPECT_EQ(1, efd_take(newfd));
	EXPECT_FIRED(fds, NR_MSIX, 0xfff7u);
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSIX, &st));
	EXPECT_EQ(NR_MSIX, st.count);
	EXPECT_EQ(0xffffULL, st.enabled[0]);

	/* Several at once: vectors 4..6 all to newfd2. */
	swap[0] = swap[1] = swap[2] = newfd2;
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSIX, 4,
				   3, swap));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 3, 5));
	EXPECT_EQ(1, efd_take(newfd));
	EXPECT_EQ(3, efd_take(newfd2));
	EXPECT_FIRED(fds, NR_MSIX, 0x80u);

	/* fd -1 removes vector 3: ENOENT for it, the others still fire. */
	ASSERT_EQ(0, set_one(self->r.c.device, MSIX, 3, -1));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSIX, 3, 1));
	EXPECT_EQ(0, efd_take(newfd));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSIX, &st));
	EXPECT_EQ(NR_MSIX, st.count);
	EXPECT_EQ(0xfff7ULL, st.enabled[0]);
	EXPECT_FALSE(irq_state_enabled(&st, 3));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSIX, 0, NR_MSIX));
	EXPECT_EQ(0, efd_take(newfd));
	EXPECT_EQ(3, efd_take(newfd2));
	EXPECT_FIRED(fds, NR_MSIX, 0xff87u);

	/* Back again, to its original eventfd. */
	ASSERT_EQ(0, set_one(self->r.c.device, MSIX, 3, fds[3]));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 3, 1));
	EXPECT_FIRED(fds, NR_MSIX, 0x8u);
	EXPECT_EQ(0, efd_take(newfd));

	/* A bad fd among good ones changes nothing. */
	swap[0] = newfd;
	swap[1] = 9999;
	EXPECT_EQ(-EBADF, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSIX,
					0, 2, swap));
	swap[1] = self->r.c.container;	/* not an eventfd */
	EXPECT_EQ(-EINVAL, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSIX,
					 0, 2, swap));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 0, 2));
	EXPECT_FIRED(fds, NR_MSIX, 0x3u);
	EXPECT_EQ(0, efd_take(newfd));

	/* DATA_NONE with count 0 disables the whole index. */
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER, MSIX, 0, 0,
				   NULL));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSIX, 0, 1));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSIX, 0, NR_MSIX));
	EXPECT_FIRED(fds, NR_MSIX, 0u);
	EXPECT_EQ(0, efd_take(newfd2));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSIX, &st));
	EXPECT_EQ(0, st.count) TH_LOG("a disabled index reports vectors");
	EXPECT_EQ(0, st.enabled[0]);

	/* Enabled again, smaller. */
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSIX, 0,
				   2, fds));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSIX, &st));
	EXPECT_EQ(2, st.count);
	EXPECT_EQ(0x3ULL, st.enabled[0]);
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 1, 1));
	EXPECT_FIRED(fds, NR_MSIX, 0x2u);
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSIX, 2, 1));
}

/* The largest MSI-X table: the bitmap's edges, one eventfd for all. */
TEST(msix_2048)
{
	FIXTURE_DATA(irqs) f, *self = &f;
	static int32_t all[2048];
	struct muser_irq_state st;
	uint32_t vecs[] = { 0, 63, 64, 127, 1000, 2047 };
	int efd, i;

	struct muser_device_info layout;

	memset(&f, 0, sizeof(f));
	layout_irqs(&layout, 2048);
	RIG_SETUP(&f.r, &layout, RIG_NONBLOCK);
	efd = new_efd(self);
	ASSERT_LE(0, efd);

	for (i = 0; i < (int)ARRAY_SIZE(vecs); i++)
		ASSERT_EQ(0, set_one(f.r.c.device, MSIX, vecs[i], efd));
	ASSERT_EQ(0, emu_get_irq_state(f.r.ctl, MSIX, &st));
	EXPECT_EQ(2048, st.count);
	EXPECT_EQ(1ULL | 1ULL << 63, st.enabled[0]);
	EXPECT_EQ(1ULL | 1ULL << 63, st.enabled[1]);
	EXPECT_EQ(1ULL << (1000 % 64), st.enabled[1000 / 64]);
	EXPECT_EQ(1ULL << 63, st.enabled[31]);
	EXPECT_EQ(0, st.enabled[2] | st.enabled[14] | st.enabled[30]);
	EXPECT_EQ(0, emu_trigger_irq(f.r.ctl, MSIX, 2047, 1));
	EXPECT_EQ(1, efd_take(efd));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(f.r.ctl, MSIX, 1, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(f.r.ctl, MSIX, 2047, 2));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(f.r.ctl, MSIX, 2048, 1));
	EXPECT_EQ(-EINVAL, set_one(f.r.c.device, MSIX, 2048, efd));

	/* All 2048 vectors on one eventfd: one event each. */
	for (i = 0; i < 2048; i++)
		all[i] = efd;
	ASSERT_EQ(0, vfio_set_irqs(f.r.c.device, EVENTFD_TRIGGER, MSIX, 0, 2048,
				   all));
	ASSERT_EQ(0, emu_get_irq_state(f.r.ctl, MSIX, &st));
	for (i = 0; i < 32; i++)
		EXPECT_EQ(~0ULL, st.enabled[i]) TH_LOG("word %d", i);
	EXPECT_EQ(0, emu_trigger_irq(f.r.ctl, MSIX, 0, 2048));
	EXPECT_EQ(2048, efd_take(efd));
	ASSERT_EQ(0, vfio_set_irqs(f.r.c.device, NONE_TRIGGER, MSIX, 0, 0, NULL));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(f.r.ctl, MSIX, 2047, 1));

	vfio_client_close(&f.r.c);
	close(efd);
	RIG_TEARDOWN(&f.r);
}

/* SET_IRQS ACTION_TRIGGER with DATA_NONE / DATA_BOOL: the VMM's loopback. */
TEST_F(irqs, loopback_triggers)
{
	int32_t fds[NR_MSIX], msi[NR_MSI];
	uint8_t b[4] = { 1, 0, 1, 1 }, zero = 0;
	int intx;

	SKIP_IF_SETUP_SKIPPED();
	arm_all(_metadata, self, fds, msi, &intx);

	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER, MSIX, 2, 3,
				   NULL));
	EXPECT_FIRED(fds, NR_MSIX, 0x1cu);
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, BOOL_TRIGGER, MSIX, 8, 4, b));
	EXPECT_FIRED(fds, NR_MSIX, 0xd00u);
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, BOOL_TRIGGER, MSI, 0, 4, b));
	EXPECT_FIRED(msi, NR_MSI, 0xdu);
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER, MSI, 3, 1,
				   NULL));
	EXPECT_FIRED(msi, NR_MSI, 0x8u);
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER, INTX, 0, 1,
				   NULL));
	EXPECT_EQ(1, efd_take(intx));
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, BOOL_TRIGGER, INTX, 0, 1,
				   &zero));
	EXPECT_EQ(0, efd_take(intx));
	/* Count 0 of DATA_BOOL does nothing (DATA_NONE would disable). */
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, BOOL_TRIGGER, MSIX, 0, 0,
				   NULL));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 0, 1));
	EXPECT_FIRED(fds, NR_MSIX, 0x1u);

	/* A vector without an eventfd: nothing to signal, no error. */
	ASSERT_EQ(0, set_one(self->r.c.device, MSIX, 5, -1));
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER, MSIX, 4, 3,
				   NULL));
	EXPECT_FIRED(fds, NR_MSIX, 0x50u);
}

TEST_F(irqs, intx_mask_unmask)
{
	struct muser_irq_state st;
	int intx;
	int32_t fd;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_LE(0, intx = new_efd(self));
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, intx));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(1, st.count);
	EXPECT_EQ(1, st.enabled[0]);
	EXPECT_EQ(0, st.flags);

	/* A trigger fires and automasks. */
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(intx));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(MUSER_IRQ_STATE_F_MASKED, st.flags);
	/* Masked: the next one is pending... */
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(0, efd_take(intx));
	/* ...and delivered, once, on unmask, which masks again. */
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));
	EXPECT_EQ(1, efd_take(intx));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(MUSER_IRQ_STATE_F_MASKED, st.flags);
	/* Nothing pending now: unmask just unmasks. */
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));
	EXPECT_EQ(0, efd_take(intx));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(0, st.flags);
	/* Unmasking an unmasked INTx is harmless. */
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));
	EXPECT_EQ(0, efd_take(intx));

	/* Explicit mask by the VMM, DATA_BOOL flavours. */
	EXPECT_EQ(0, set_action(self->r.c.device, BOOL_MASK, INTX, 0));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(0, st.flags) TH_LOG("mask with a false bool masked");
	EXPECT_EQ(0, set_action(self->r.c.device, BOOL_MASK, INTX, 1));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(MUSER_IRQ_STATE_F_MASKED, st.flags);
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(0, efd_take(intx));
	EXPECT_EQ(0, set_action(self->r.c.device, BOOL_UNMASK, INTX, 0));
	EXPECT_EQ(0, efd_take(intx));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(MUSER_IRQ_STATE_F_MASKED, st.flags);
	EXPECT_EQ(0, set_action(self->r.c.device, BOOL_UNMASK, INTX, 1));
	EXPECT_EQ(1, efd_take(intx));
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));
	/* Mask, count 0: nothing happens. */
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_MASK, INTX, 0, 0,
				   NULL));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(0, st.flags);

	/* A mask eventfd is not supported (nor is it by vfio-pci). */
	fd = intx;
	EXPECT_EQ(-EINVAL, vfio_set_irqs(self->r.c.device,
					 VFIO_IRQ_SET_DATA_EVENTFD |
					 VFIO_IRQ_SET_ACTION_MASK, INTX, 0, 1,
					 &fd));
	/* Only INTx is maskable. */
	EXPECT_EQ(-ENOTTY, vfio_set_irqs(self->r.c.device, NONE_MASK, MSI, 0, 1,
					 NULL));
	EXPECT_EQ(-ENOTTY, vfio_set_irqs(self->r.c.device, NONE_UNMASK, MSIX, 0,
					 1, NULL));

	/* Disabling INTx forgets mask and pending state. */
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(intx));
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER, INTX, 0, 0,
				   NULL));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(0, st.flags);
	EXPECT_EQ(0, st.count);
	EXPECT_EQ(0, st.enabled[0]);
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, intx));
	EXPECT_EQ(0, efd_take(intx)) TH_LOG("a stale pending INTx fired");
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(intx));
}

/*
 * INTx MASK and UNMASK with count 0 carry no data whatever the data type:
 * nothing happens, masked or not. (A DATA_BOOL one once read the missing
 * bool, an oops with irq_lock held, so that the VMM's close and the
 * device's removal then hung.)
 */
TEST_F(irqs, intx_mask_count_zero)
{
	static const uint32_t flags[] = {
		BOOL_MASK, BOOL_UNMASK, NONE_MASK, NONE_UNMASK,
	};
	struct muser_irq_state st;
	int intx, pass;
	unsigned int i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_LE(0, intx = new_efd(self));
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, intx));
	for (pass = 0; pass < 2; pass++) {
		/* Pass 0 unmasked, pass 1 masked with a trigger pending. */
		if (pass) {
			EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
			EXPECT_EQ(1, efd_take(intx));
			EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
		}
		for (i = 0; i < ARRAY_SIZE(flags); i++) {
			EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, flags[i],
						   INTX, 0, 0, NULL))
				TH_LOG("flags 0x%x", flags[i]);
			ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
			EXPECT_EQ(pass ? MUSER_IRQ_STATE_F_MASKED : 0, st.flags)
				TH_LOG("flags 0x%x changed the mask", flags[i]);
			EXPECT_EQ(1, st.count);
			EXPECT_EQ(0, efd_take(intx))
				TH_LOG("flags 0x%x fired INTx", flags[i]);
		}
		/* A mask or unmask eventfd needs one: EINVAL, as vfio-pci. */
		EXPECT_EQ(-EINVAL, vfio_set_irqs(self->r.c.device,
						 VFIO_IRQ_SET_DATA_EVENTFD |
						 VFIO_IRQ_SET_ACTION_MASK,
						 INTX, 0, 0, NULL));
		EXPECT_EQ(-EINVAL, vfio_set_irqs(self->r.c.device, EVENTFD_UNMASK,
						 INTX, 0, 0, NULL));
	}
	/* Still working: the pending trigger comes with a real unmask. */
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));
	EXPECT_EQ(1, efd_take(intx));
	/* The VMM's close and the removal (teardown) must not wait. */
	vfio_client_close(&self->r.c);
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, INTX, &st));
	EXPECT_EQ(0, st.count);
}

/* Every index is as count_zero_every_index() set it up. */
static void check_irq_config(struct __test_metadata *_metadata,
			     FIXTURE_DATA(irqs) *self, const uint32_t *indexes,
			     const uint32_t *counts, int n)
{
	struct muser_irq_state st;
	int x;

	for (x = 0; x < n; x++) {
		ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, indexes[x], &st));
		EXPECT_EQ(counts[x], st.count) TH_LOG("index %u", indexes[x]);
		EXPECT_EQ((1ull << counts[x]) - 1, st.enabled[0])
			TH_LOG("index %u", indexes[x]);
		EXPECT_EQ(0, st.flags) TH_LOG("index %u", indexes[x]);
	}
}

/*
 * Count 0 of every data type on every index: only DATA_NONE with
 * ACTION_TRIGGER does something (it disables the index). A count-0 trigger
 * with DATA_BOOL or DATA_EVENTFD keeps the eventfds, INTx's unmask eventfd
 * among them (it was dropped, as only disabling INTx should do); MASK and
 * UNMASK change nothing (INTx; an eventfd needs one: EINVAL) or are not
 * supported (MSI, MSI-X: ENOTTY, as vfio-pci).
 */
TEST_F(irqs, count_zero_every_index)
{
	static const uint32_t types[] = {
		VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_BOOL,
		VFIO_IRQ_SET_DATA_EVENTFD,
	};
	static const uint32_t masks[] = {
		VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_UNMASK,
	};
	static const uint32_t indexes[] = { INTX, MSI, MSIX };
	static const uint32_t counts[] = { 1, NR_MSI, NR_MSIX };
	int32_t fds[NR_MSIX], msi[NR_MSI];
	int intx, unmask, want;
	unsigned int x, a, t, v;

	SKIP_IF_SETUP_SKIPPED();
	arm_all(_metadata, self, fds, msi, &intx);
	ASSERT_LE(0, unmask = new_efd(self));
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_UNMASK, INTX, 0, 1,
				   &unmask));

	/* Triggers of count 0, at the first and at the last vector. */
	for (x = 0; x < 3; x++) {
		for (v = 0; v < 2; v++) {
			uint32_t start = v ? counts[x] - 1 : 0;

			EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, BOOL_TRIGGER,
						   indexes[x], start, 0, NULL))
				TH_LOG("index %u start %u", indexes[x], start);
			EXPECT_EQ(0, vfio_set_irqs(self->r.c.device,
						   EVENTFD_TRIGGER, indexes[x],
						   start, 0, NULL))
				TH_LOG("index %u start %u", indexes[x], start);
		}
	}
	check_irq_config(_metadata, self, indexes, counts, 3);
	/* Every eventfd is still in place... */
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 0, NR_MSIX));
	EXPECT_FIRED(fds, NR_MSIX, 0xffffu);
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 0, NR_MSI));
	EXPECT_FIRED(msi, NR_MSI, 0xfu);
	/* ...INTx's unmask eventfd too: it delivers a pending trigger. */
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(intx));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(0, efd_take(intx));
	ASSERT_EQ(0, eventfd_write(unmask, 1));
	EXPECT_EQ(1, eventfd_wait(intx, 2000))
		TH_LOG("a count-0 trigger dropped the unmask eventfd");
	EXPECT_TRUE(wait_masked(self->r.ctl, true, 2000));
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));
	EXPECT_LE(0, drain_posted(self->r.ctl, NULL));

	/* Masks and unmasks of count 0. */
	for (x = 0; x < 3; x++) {
		for (a = 0; a < 2; a++) {
			for (t = 0; t < 3; t++) {
				uint32_t flags = masks[a] | types[t];

				if (indexes[x] != INTX)
					want = -ENOTTY;
				else if (types[t] == VFIO_IRQ_SET_DATA_EVENTFD)
					want = -EINVAL;
				else
					want = 0;
				EXPECT_EQ(want, vfio_set_irqs(self->r.c.device,
							      flags, indexes[x],
							      0, 0, NULL))
					TH_LOG("index %u flags 0x%x",
					       indexes[x], flags);
			}
		}
	}
	check_irq_config(_metadata, self, indexes, counts, 3);
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(intx));

	/* DATA_NONE, count 0: each index disabled. */
	for (x = 0; x < 3; x++) {
		struct muser_irq_state st;

		EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER,
					   indexes[x], 0, 0, NULL));
		ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, indexes[x], &st));
		EXPECT_EQ(0, st.count) TH_LOG("index %u", indexes[x]);
		EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, indexes[x], 0, 1));
	}
}

/* The unmask eventfd: the VMM signals it instead of an UNMASK ioctl. */
TEST_F(irqs, intx_unmask_eventfd)
{
	int intx, unmask, unmask2;
	int32_t fd;
	int ret, i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_LE(0, intx = new_efd(self));
	ASSERT_LE(0, unmask = new_efd(self));
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, intx));
	fd = unmask;
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_UNMASK, INTX, 0, 1,
				   &fd));

	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, eventfd_wait(intx, 1000));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(0, eventfd_wait(intx, 100)) TH_LOG("not automasked");
	EXPECT_LE(0, drain_posted(self->r.ctl, NULL));

	/* Signalling it delivers the pending trigger (and masks again)... */
	ASSERT_EQ(0, eventfd_write(unmask, 1));
	EXPECT_EQ(1, eventfd_wait(intx, 2000)) TH_LOG("pending INTx lost");
	EXPECT_TRUE(wait_masked(self->r.ctl, true, 1000));
	/* ...and the emulator is told the state changed. */
	EXPECT_LE(1, wait_posted(self->r.ctl, 2000));
	/* With nothing pending it just unmasks. */
	ASSERT_EQ(0, eventfd_write(unmask, 1));
	EXPECT_TRUE(wait_masked(self->r.ctl, false, 2000));
	EXPECT_EQ(0, eventfd_wait(intx, 100));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(intx));

	/* Removed (fd -1): signalling it no longer unmasks. */
	fd = -1;
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_UNMASK, INTX, 0, 1,
				   &fd));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	ASSERT_EQ(0, eventfd_write(unmask, 1));
	EXPECT_EQ(0, eventfd_wait(intx, 300));
	EXPECT_TRUE(wait_masked(self->r.ctl, true, 0));
	/* The ioctl still works. */
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));
	EXPECT_EQ(1, efd_take(intx));
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));

	/* Set again, then the VMM closes it: the kernel lets go of it. */
	unmask2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, unmask2);
	fd = unmask2;
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_UNMASK, INTX, 0, 1,
				   &fd));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(intx));
	ASSERT_EQ(0, eventfd_write(unmask2, 1));
	EXPECT_TRUE(wait_masked(self->r.ctl, false, 2000));
	close(unmask2);
	fd = unmask;
	for (i = 0; i < 100; i++) {
		ret = vfio_set_irqs(self->r.c.device, EVENTFD_UNMASK, INTX, 0, 1,
				    &fd);
		if (ret != -EBUSY)
			break;
		sleep_ms(10);
	}
	EXPECT_EQ(0, ret) TH_LOG("a new unmask eventfd after closing the old one");
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(intx));
	ASSERT_EQ(0, eventfd_write(unmask, 1));
	EXPECT_TRUE(wait_masked(self->r.ctl, false, 2000));

	/* Disabling INTx drops the unmask eventfd (as vfio-pci): a new one
	 * can be set at once, while the old one is still open.
	 */
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER, INTX, 0, 0,
				   NULL));
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, intx));
	unmask2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, unmask2);
	fd = unmask2;
	EXPECT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_UNMASK, INTX, 0, 1,
				   &fd));
	close(unmask2);

	/* Bad fds. */
	fd = 9999;
	EXPECT_EQ(-EBADF, vfio_set_irqs(self->r.c.device, EVENTFD_UNMASK, INTX, 0,
					1, &fd));
	/* The VMM closing the device tears it all down (no hang, no leak). */
	vfio_client_close(&self->r.c);
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
}

/* MUSER_REQ_IRQ_STATE: posted after each successful SET_IRQS, coalesced. */
TEST_F(irqs, irq_state_posted)
{
	struct pollfd pfd = { .events = POLLIN };
	struct async_access a;
	struct emu_req r[4];
	int32_t fds[NR_MSIX];
	int efd, n, other, i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_LE(0, efd = new_efd(self));
	for (i = 0; i < NR_MSIX; i++)
		fds[i] = efd;
	pfd.fd = self->r.ctl;

	/* Nothing yet. */
	EXPECT_EQ(0, drain_posted(self->r.ctl, NULL));
	EXPECT_EQ(0, poll(&pfd, 1, 0));

	/* One SET_IRQS: POLLIN, one posted request with id 0. */
	ASSERT_EQ(0, set_one(self->r.c.device, MSI, 0, efd));
	EXPECT_EQ(1, poll(&pfd, 1, 1000));
	EXPECT_TRUE(pfd.revents & POLLIN);
	n = emu_read(self->r.ctl, r, 4);
	ASSERT_EQ(1, n);
	EXPECT_EQ(MUSER_REQ_IRQ_STATE, r[0].hdr.type);
	EXPECT_EQ(0, r[0].hdr.id);
	EXPECT_EQ(0, r[0].hdr.flags);
	EXPECT_EQ(0, r[0].hdr.len);
	EXPECT_EQ(0, r[0].hdr.data_len);
	EXPECT_EQ(-EAGAIN, emu_read(self->r.ctl, r, 4));
	/* Posted: no reply is expected, one is refused. */
	EXPECT_EQ(-ENOENT, emu_reply(self->r.ctl, 0, 0, NULL, 0));

	/* Each kind of SET_IRQS posts. */
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSIX, 0,
				   NR_MSIX, fds));
	EXPECT_EQ(1, drain_posted(self->r.ctl, NULL)) TH_LOG("eventfds");
	ASSERT_EQ(0, set_one(self->r.c.device, MSIX, 3, -1));
	EXPECT_EQ(1, drain_posted(self->r.ctl, NULL)) TH_LOG("fd -1");
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, efd));
	EXPECT_EQ(1, drain_posted(self->r.ctl, NULL)) TH_LOG("INTx");
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_MASK, INTX, 0, 1, NULL));
	EXPECT_EQ(1, drain_posted(self->r.ctl, NULL)) TH_LOG("mask");
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_UNMASK, INTX, 0, 1,
				   NULL));
	EXPECT_EQ(1, drain_posted(self->r.ctl, NULL)) TH_LOG("unmask");
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, NONE_TRIGGER, MSIX, 0, 0,
				   NULL));
	EXPECT_EQ(1, drain_posted(self->r.ctl, NULL)) TH_LOG("disable");

	/* Several without reading: at least one, at most a few. */
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, set_one(self->r.c.device, MSIX, i, efd));
	n = drain_posted(self->r.ctl, NULL);
	EXPECT_LE(1, n);
	EXPECT_GE(2, n) TH_LOG("%d notifications for 8 changes", n);

	/* A failed SET_IRQS changes nothing and posts nothing. */
	EXPECT_EQ(-EINVAL, set_one(self->r.c.device, MSIX, NR_MSIX, efd));
	EXPECT_EQ(-EBADF, set_one(self->r.c.device, MSIX, 0, 9999));
	EXPECT_EQ(-EINVAL, set_one(self->r.c.device, ERR, 0, efd));
	EXPECT_EQ(0, drain_posted(self->r.ctl, NULL));

	/* Alongside requests: both delivered, the request still answered. */
	ASSERT_EQ(0, async_start(&a, &self->r.c, VFIO_PCI_BAR0_REGION_INDEX, 0,
				 4, false));
	EXPECT_EQ(1, poll(&pfd, 1, 5000));
	ASSERT_EQ(0, set_one(self->r.c.device, MSI, 0, -1));
	EXPECT_EQ(1, drain_posted(self->r.ctl, &other));
	EXPECT_EQ(1, other);
	EXPECT_EQ(4, async_join(&a));

	/* Changes while no emulator is attached reach the next one. */
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_DETACH));
	ASSERT_EQ(0, set_one(self->r.c.device, MSI, 1, efd));
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
	EXPECT_EQ(1, wait_posted(self->r.ctl, 1000));
}

/* SET_IRQS argument checks, kselftest length-test style. */
TEST_F(irqs, set_irqs_errors)
{
	struct {
		struct vfio_irq_set set;
		int32_t fds[4];
		uint8_t extra[64];
	} buf;
	const uint32_t minsz = SET_IRQS_MINSZ;
	struct muser_irq_state st;
	static const struct {
		uint32_t index, start, count;
	} range[] = {
		{ MSI, NR_MSI, 1 }, { MSI, NR_MSI - 1, 2 }, { MSI, 0, NR_MSI + 1 },
		{ MSI, 0xffffffff, 1 }, { MSI, 1, 0xffffffff },
		{ MSI, 0, 0xffffffff }, { MSIX, NR_MSIX, 1 },
		{ MSIX, 0x80000000, 0x80000000 }, { INTX, 1, 1 },
		{ INTX, 0, 2 }, { REQ, 1, 1 }, { ERR, 0, 1 }, { ERR, 0, 0 },
		{ MUSER_NUM_IRQS, 0, 1 }, { 0xffffffff, 0, 1 },
	};
	static const uint32_t bad_flags[] = {
		VFIO_IRQ_SET_ACTION_TRIGGER,			/* no data type */
		VFIO_IRQ_SET_DATA_NONE,				/* no action */
		VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL |
			VFIO_IRQ_SET_ACTION_TRIGGER,
		VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK |
			VFIO_IRQ_SET_ACTION_UNMASK,
		NONE_TRIGGER | 1u << 6,
		NONE_TRIGGER | 1u << 31,
	};
	int efd, efd2;
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_LE(0, efd = new_efd(self));
	ASSERT_LE(0, efd2 = new_efd(self));
	ASSERT_EQ(0, set_one(self->r.c.device, MSI, 0, efd));

	/* argsz below the header. */
	for (i = 0; i < minsz; i += 4) {
		memset(&buf, 0, sizeof(buf));
		buf.set.argsz = i;
		buf.set.flags = NONE_TRIGGER;
		buf.set.index = MSI;
		buf.set.count = 1;
		EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf))
			TH_LOG("argsz %zu accepted", i);
		EXPECT_EQ(EINVAL, errno);
	}
	/* argsz short of the data: one fd short, one byte short. */
	memset(&buf, 0, sizeof(buf));
	buf.set.flags = EVENTFD_TRIGGER;
	buf.set.index = MSI;
	buf.set.count = 2;
	buf.fds[0] = buf.fds[1] = efd2;
	for (i = minsz; i < minsz + 8; i++) {
		buf.set.argsz = i;
		EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf))
			TH_LOG("argsz %zu accepted for 2 fds", i);
		EXPECT_EQ(EINVAL, errno);
	}
	buf.set.flags = BOOL_TRIGGER;
	buf.set.count = 3;
	buf.set.argsz = minsz + 2;
	EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf));
	EXPECT_EQ(EINVAL, errno);
	/* None of that changed vector 0. */
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 0, 1));
	EXPECT_EQ(1, efd_take(efd));
	EXPECT_EQ(0, efd_take(efd2));

	/* Exact and oversized argsz work. */
	buf.set.flags = EVENTFD_TRIGGER;
	buf.set.count = 2;
	buf.set.argsz = minsz + 8;
	EXPECT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf)) TH_LOG("%m");
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 0, 2));
	EXPECT_EQ(2, efd_take(efd2));
	buf.fds[0] = buf.fds[1] = efd;
	buf.set.argsz = sizeof(buf);
	EXPECT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf)) TH_LOG("%m");
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSI, 0, 2));
	EXPECT_EQ(2, efd_take(efd));
	buf.set.flags = NONE_TRIGGER;
	buf.set.count = 1;
	buf.set.argsz = minsz;
	EXPECT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf)) TH_LOG("%m");
	EXPECT_EQ(1, efd_take(efd));
	buf.set.flags = BOOL_TRIGGER;
	buf.set.count = 3;
	buf.set.argsz = minsz + 3;
	memset(buf.fds, 0, sizeof(buf.fds));
	EXPECT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf)) TH_LOG("%m");

	/* Flags. */
	for (i = 0; i < ARRAY_SIZE(bad_flags); i++) {
		memset(&buf, 0, sizeof(buf));
		buf.set.argsz = sizeof(buf);
		buf.set.flags = bad_flags[i];
		buf.set.index = MSI;
		buf.set.count = 1;
		EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf))
			TH_LOG("flags 0x%x accepted", bad_flags[i]);
		/* vfio-pci says ENOTTY for a missing or double action. */
		EXPECT_TRUE(errno == EINVAL || errno == ENOTTY)
			TH_LOG("flags 0x%x: %m", bad_flags[i]);
	}

	/* Indexes and vector ranges the layout does not have. */
	for (i = 0; i < ARRAY_SIZE(range); i++) {
		memset(&buf, 0, sizeof(buf));
		buf.set.argsz = sizeof(buf);
		buf.set.flags = NONE_TRIGGER;
		buf.set.index = range[i].index;
		buf.set.start = range[i].start;
		buf.set.count = range[i].count;
		EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, &buf))
			TH_LOG("index %u start %u count %u accepted",
			       range[i].index, range[i].start, range[i].count);
		EXPECT_EQ(EINVAL, errno) TH_LOG("case %zu", i);
	}

	/* Nothing changed, nothing was posted but the good calls' notice. */
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSI, &st));
	EXPECT_EQ(2, st.count);
	EXPECT_EQ(0x3ULL, st.enabled[0]);
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, ERR, &st));
	EXPECT_EQ(0, st.count);
}

/* GET_IRQ_STATE and TRIGGER_IRQ argument checks. */
TEST_F(irqs, emulator_ioctl_errors)
{
	struct {
		struct muser_irq_state st;
		uint8_t extra[64];
	} big;
	struct {
		struct muser_irq_trigger t;
		uint8_t extra[16];
	} trig;
	uint32_t bad_argsz[] = { 0, 4, offsetofend(struct muser_irq_state, index),
				 sizeof(struct muser_irq_state) - 8,
				 sizeof(struct muser_irq_state) - 1 };
	uint32_t bad_index[] = { MUSER_NUM_IRQS, 0x100, 0xffffffff };
	int efd, other;
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_LE(0, efd = new_efd(self));
	ASSERT_EQ(0, set_one(self->r.c.device, MSIX, 9, efd));

	for (i = 0; i < ARRAY_SIZE(bad_argsz); i++) {
		memset(&big, 0, sizeof(big));
		big.st.argsz = bad_argsz[i];
		big.st.index = MSIX;
		EXPECT_EQ(-1, ioctl(self->r.ctl, MUSER_IOC_GET_IRQ_STATE, &big))
			TH_LOG("argsz %u accepted", bad_argsz[i]);
		EXPECT_EQ(EINVAL, errno);
	}
	for (i = 0; i < ARRAY_SIZE(bad_index); i++) {
		memset(&big, 0, sizeof(big));
		big.st.argsz = sizeof(big.st);
		big.st.index = bad_index[i];
		EXPECT_EQ(-1, ioctl(self->r.ctl, MUSER_IOC_GET_IRQ_STATE, &big))
			TH_LOG("index %u accepted", bad_index[i]);
		EXPECT_EQ(EINVAL, errno);
	}
	/* Oversized: works, writes only the structure; garbage in is ignored. */
	memset(&big, 0xa5, sizeof(big));
	big.st.argsz = sizeof(big);
	big.st.index = MSIX;
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_GET_IRQ_STATE, &big)) TH_LOG("%m");
	EXPECT_EQ(10, big.st.count);
	EXPECT_EQ(0, big.st.flags);
	EXPECT_EQ(1ULL << 9, big.st.enabled[0]);
	for (i = 1; i < 32; i++)
		EXPECT_EQ(0, big.st.enabled[i]) TH_LOG("word %zu", i);
	for (i = 0; i < sizeof(big.extra); i++)
		ASSERT_EQ(0xa5, big.extra[i]) TH_LOG("byte %zu written", i);
	/* Every valid index answers, the kernel's REQ included. */
	for (i = 0; i < MUSER_NUM_IRQS; i++) {
		memset(&big, 0, sizeof(big));
		big.st.argsz = sizeof(big.st);
		big.st.index = i;
		EXPECT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_GET_IRQ_STATE, &big))
			TH_LOG("index %zu: %m", i);
	}

	/* TRIGGER_IRQ: argsz. */
	for (i = 0; i < sizeof(trig.t); i += 4) {
		memset(&trig, 0, sizeof(trig));
		trig.t.argsz = i;
		trig.t.index = MSIX;
		trig.t.start = 9;
		trig.t.count = 1;
		EXPECT_EQ(-1, ioctl(self->r.ctl, MUSER_IOC_TRIGGER_IRQ, &trig))
			TH_LOG("argsz %zu accepted", i);
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_EQ(0, efd_take(efd));
	trig.t.argsz = sizeof(trig);
	EXPECT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_TRIGGER_IRQ, &trig)) TH_LOG("%m");
	EXPECT_EQ(1, efd_take(efd));
	/* Indexes and ranges. */
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, REQ, 0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, ERR, 0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MUSER_NUM_IRQS, 0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, 0xffffffff, 0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSIX, NR_MSIX, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSIX, NR_MSIX - 1, 2));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSIX, 0, 0));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSIX, 0xffffffff, 2));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, MSIX, 1, 0xffffffff));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->r.ctl, INTX, 1, 1));
	EXPECT_EQ(0, efd_take(efd));
	/* Only the attached emulator triggers. */
	other = ctl_open(self->r.uuid, O_NONBLOCK);
	ASSERT_LE(0, other);
	EXPECT_EQ(-ENOTCONN, emu_trigger_irq(other, MSIX, 9, 1));
	close(other);
	EXPECT_EQ(0, efd_take(efd));
}

/*
 * The VMM closing the device drops its whole configuration; reset does
 * not touch it.
 */
TEST_F(irqs, reset_and_close)
{
	struct reset_arg ra;
	struct muser_irq_state st;
	int32_t fds[NR_MSIX];
	struct emu_req r[4];
	int efd, i, n, got_reset = 0;
	int64_t end;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_LE(0, efd = new_efd(self));
	for (i = 0; i < NR_MSIX; i++)
		fds[i] = efd;
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSIX, 0,
				   NR_MSIX, fds));
	ASSERT_EQ(0, vfio_set_irqs(self->r.c.device, EVENTFD_TRIGGER, MSI, 0,
				   NR_MSI, fds));
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, efd));
	ASSERT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));	/* masks */
	EXPECT_EQ(1, efd_take(efd));

	/* Reset is the emulator's business: the eventfds stay. */
	ra.fd = self->r.c.device;
	ASSERT_EQ(0, pthread_create(&ra.thread, NULL, reset_fn, &ra));
	end = now_ms() + 5000;
	while (!got_reset && now_ms() < end) {
		n = emu_read_timeout(self->r.ctl, r, 4, 100);
		for (i = 0; i < n; i++) {
			if (r[i].hdr.type != MUSER_REQ_RESET)
				continue;
			got_reset++;
			EXPECT_LT(0, emu_reply(self->r.ctl, r[i].hdr.id, 0, NULL,
					       0));
		}
	}
	pthread_join(ra.thread, NULL);
	EXPECT_EQ(1, got_reset);
	EXPECT_EQ(0, ra.ret);
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, MSIX, 0, NR_MSIX));
	EXPECT_EQ(NR_MSIX, efd_take(efd));
	ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, MSIX, &st));
	EXPECT_EQ(NR_MSIX, st.count);

	/* Close: every index back to nothing. */
	vfio_client_close(&self->r.c);
	for (i = 0; i < MUSER_NUM_IRQS; i++) {
		ASSERT_EQ(0, emu_get_irq_state(self->r.ctl, i, &st));
		EXPECT_EQ(0, st.count) TH_LOG("index %d", i);
		EXPECT_EQ(0, st.flags) TH_LOG("index %d", i);
		EXPECT_EQ(0, st.enabled[0]) TH_LOG("index %d", i);
	}
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSIX, 0, 1));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, MSI, 0, 1));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(0, efd_take(efd));

	/* A new VMM starts from scratch, INTx unmasked. */
	ASSERT_EQ(0, vfio_client_open(&self->r.c, self->r.uuid, NULL));
	ASSERT_EQ(0, set_one(self->r.c.device, INTX, 0, efd));
	EXPECT_EQ(0, emu_trigger_irq(self->r.ctl, INTX, 0, 1));
	EXPECT_EQ(1, efd_take(efd));
}

TEST_HARNESS_MAIN
