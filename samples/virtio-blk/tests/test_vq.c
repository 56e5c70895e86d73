// SPDX-License-Identifier: BSD-3-Clause
/*
 * Split-ring logic of the virtio-blk sample against rings in ordinary
 * memory, with a fake guest memory for indirect tables: well-formed
 * chains, and every malformation the walker must refuse without following.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "../../../lib/tests/test.h"
#include "vq.h"

int test_failures;

#define NUM 8
#define GUEST_BASE 0x100000ull

static struct vring_desc desc[NUM];
static uint16_t avail[3 + NUM];
static uint8_t used[6 + 8 * NUM] __attribute__((aligned(8)));
static uint8_t guest[4096];	/* guest memory at GUEST_BASE */
static struct vq vq;
static int reads;

static int fake_read(void *opaque, uint64_t iova, void *buf, size_t len)
{
	(void)opaque;
	reads++;
	if (iova < GUEST_BASE || iova - GUEST_BASE > sizeof(guest) ||
	    len > sizeof(guest) - (iova - GUEST_BASE)) {
		errno = EFAULT;
		return -1;
	}
	memcpy(buf, guest + (iova - GUEST_BASE), len);
	return 0;
}

static void set_desc(struct vring_desc *t, unsigned int i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	t[i].addr = htole64(addr);
	t[i].len = htole32(len);
	t[i].flags = htole16(flags);
	t[i].next = htole16(next);
}

static void reset(bool event_idx)
{
	memset(desc, 0, sizeof(desc));
	memset(avail, 0, sizeof(avail));
	memset(used, 0, sizeof(used));
	memset(guest, 0, sizeof(guest));
	vq_init(&vq, NUM, desc, avail, used, event_idx, true);
}

/* Makes chain @head available. */
static void offer(uint16_t head)
{
	uint16_t idx = le16toh(avail[1]);

	avail[2 + idx % NUM] = htole16(head);
	avail[1] = htole16(idx + 1);
}

static int walk(uint16_t head, struct vq_seg *segs, unsigned int max)
{
	return vq_walk(&vq, head, fake_read, NULL, segs, max);
}

static void test_sizes(void)
{
	CHECK_EQ(vq_desc_size(256), 4096);
	CHECK_EQ(vq_avail_size(256), 6 + 2 * 256);
	CHECK_EQ(vq_used_size(256), 6 + 8 * 256);
}

static void test_pop(void)
{
	uint16_t head = 99;

	reset(false);
	CHECK_EQ(vq_pop(&vq, &head), 0);
	offer(3);
	offer(5);
	CHECK_EQ(vq_pop(&vq, &head), 1);
	CHECK_EQ(head, 3);
	CHECK_EQ(vq_pop(&vq, &head), 1);
	CHECK_EQ(head, 5);
	CHECK_EQ(vq_pop(&vq, &head), 0);
	/* a head out of range */
	offer(NUM);
	CHECK_ERR(vq_pop(&vq, &head), EINVAL);
	/* an index more than NUM ahead */
	reset(false);
	avail[1] = htole16(NUM + 1);
	CHECK_ERR(vq_pop(&vq, &head), EINVAL);
	/* exactly NUM ahead is fine; wrap-around of the 16-bit index too */
	reset(false);
	vq.last_avail = 0xfffe;
	avail[1] = htole16((uint16_t)(0xfffe + NUM));
	CHECK_EQ(vq_pop(&vq, &head), 1);
}

static void test_chain(void)
{
	struct vq_seg s[8];

	reset(false);
	/* header (R), data (W, 2 buffers), status (W), out of order in the table */
	set_desc(desc, 0, 0x1000, 16, VRING_DESC_F_NEXT, 4);
	set_desc(desc, 4, 0x2000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(desc, 2, 0x3000, 0, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 7);	/* empty: dropped */
	set_desc(desc, 7, 0x4000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(desc, 1, 0x5000, 1, VRING_DESC_F_WRITE, 0);
	CHECK_EQ(walk(0, s, 8), 4);
	CHECK_EQ(s[0].iova, 0x1000);
	CHECK_EQ(s[0].len, 16);
	CHECK(!s[0].write);
	CHECK_EQ(s[1].iova, 0x2000);
	CHECK(s[1].write);
	CHECK_EQ(s[2].iova, 0x4000);
	CHECK_EQ(s[3].iova, 0x5000);
	CHECK_EQ(s[3].len, 1);
	/* too many for the caller */
	CHECK_ERR(walk(0, s, 3), E2BIG);
	CHECK_EQ(walk(0, s, 4), 4);
}

static void test_bad_chains(void)
{
	struct vq_seg s[16];
	unsigned int i;

	reset(false);
	/* a loop */
	set_desc(desc, 0, 0x1000, 16, VRING_DESC_F_NEXT, 1);
	set_desc(desc, 1, 0x2000, 16, VRING_DESC_F_NEXT, 0);
	CHECK_ERR(walk(0, s, 16), EINVAL);
	/* a self loop */
	set_desc(desc, 0, 0x1000, 16, VRING_DESC_F_NEXT, 0);
	CHECK_ERR(walk(0, s, 16), EINVAL);
	/* a chain through every descriptor is fine, one more is a loop */
	for (i = 0; i < NUM; i++)
		set_desc(desc, i, 0x1000 * i, 16, i + 1 < NUM ? VRING_DESC_F_NEXT : 0, i + 1);
	CHECK_EQ(walk(0, s, 16), NUM);
	set_desc(desc, NUM - 1, 0x1000, 16, VRING_DESC_F_NEXT, 0);
	CHECK_ERR(walk(0, s, 16), EINVAL);
	/* next out of range */
	set_desc(desc, 0, 0x1000, 16, VRING_DESC_F_NEXT, NUM);
	CHECK_ERR(walk(0, s, 16), EINVAL);
	CHECK_ERR(walk(NUM, s, 16), EINVAL);
	/* readable after writable */
	set_desc(desc, 0, 0x1000, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(desc, 1, 0x2000, 16, 0, 0);
	CHECK_ERR(walk(0, s, 16), EINVAL);
	/* a buffer wrapping around the address space */
	set_desc(desc, 0, ~0ull - 4, 16, 0, 0);
	CHECK_ERR(walk(0, s, 16), EINVAL);
}

static void test_indirect(void)
{
	struct vring_desc *t = (void *)guest;
	struct vq_seg s[16];

	reset(false);
	set_desc(t, 0, 0x1000, 16, VRING_DESC_F_NEXT, 2);
	set_desc(t, 2, 0x2000, 4096, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, 0x3000, 1, VRING_DESC_F_WRITE, 0);
	set_desc(desc, 5, GUEST_BASE, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	reads = 0;
	CHECK_EQ(walk(5, s, 16), 3);
	CHECK_EQ(reads, 1);
	CHECK_EQ(s[1].iova, 0x2000);
	CHECK_EQ(s[1].len, 4096);
	CHECK(s[2].write);

	/* not negotiated */
	vq.indirect = false;
	CHECK_ERR(walk(5, s, 16), EINVAL);
	vq.indirect = true;
	/* INDIRECT with NEXT */
	set_desc(desc, 5, GUEST_BASE, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 0);
	CHECK_ERR(walk(5, s, 16), EINVAL);
	/* bad sizes */
	set_desc(desc, 5, GUEST_BASE, 3 * 16 + 1, VRING_DESC_F_INDIRECT, 0);
	CHECK_ERR(walk(5, s, 16), EINVAL);
	set_desc(desc, 5, GUEST_BASE, 0, VRING_DESC_F_INDIRECT, 0);
	CHECK_ERR(walk(5, s, 16), EINVAL);
	set_desc(desc, 5, GUEST_BASE, (VQ_MAX_INDIRECT + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	CHECK_ERR(walk(5, s, 16), EINVAL);
	/* not in guest memory: the read's error */
	set_desc(desc, 5, 0x10, 16, VRING_DESC_F_INDIRECT, 0);
	CHECK_ERR(walk(5, s, 16), EFAULT);
	/* not at the head of a chain */
	set_desc(desc, 4, 0x1000, 16, VRING_DESC_F_NEXT, 5);
	set_desc(desc, 5, GUEST_BASE, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	CHECK_ERR(walk(4, s, 16), EINVAL);
	/* nested */
	set_desc(t, 1, GUEST_BASE, 16, VRING_DESC_F_INDIRECT, 0);
	CHECK_ERR(walk(5, s, 16), EINVAL);
	/* a loop inside the table */
	set_desc(t, 1, 0x3000, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	CHECK_ERR(walk(5, s, 16), EINVAL);
	/* next beyond the table (it has 3 entries) */
	set_desc(t, 1, 0x3000, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	CHECK_ERR(walk(5, s, 16), EINVAL);
}

static uint16_t used_idx(void)
{
	return le16toh(*(uint16_t *)(used + 2));
}

static void test_push_and_interrupts(void)
{
	uint32_t id, len;
	uint16_t head;

	reset(false);
	CHECK(!vq_need_interrupt(&vq));		/* nothing pushed */
	offer(2);
	CHECK_EQ(vq_pop(&vq, &head), 1);
	vq_push(&vq, head, 513);
	CHECK_EQ(used_idx(), 1);
	memcpy(&id, used + 4, 4);
	memcpy(&len, used + 8, 4);
	CHECK_EQ(le32toh(id), 2);
	CHECK_EQ(le32toh(len), 513);
	CHECK(vq_need_interrupt(&vq));
	CHECK(!vq_need_interrupt(&vq));		/* already signalled */
	/* VRING_AVAIL_F_NO_INTERRUPT */
	avail[0] = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	vq_push(&vq, 0, 1);
	CHECK(!vq_need_interrupt(&vq));
	CHECK(!vq_enable_notify(&vq));

	/* EVENT_IDX: interrupt when used->idx passes used_event */
	reset(true);
	avail[2 + NUM] = htole16(1);		/* used_event: after the 2nd */
	vq_push(&vq, 0, 1);
	CHECK(!vq_need_interrupt(&vq));
	vq_push(&vq, 1, 1);
	CHECK(vq_need_interrupt(&vq));
	vq_push(&vq, 2, 1);
	CHECK(!vq_need_interrupt(&vq));
	/* vq_enable_notify writes avail_event and sees new entries */
	offer(1);
	CHECK(vq_enable_notify(&vq));
	CHECK_EQ(vq_pop(&vq, &head), 1);
	CHECK(!vq_enable_notify(&vq));
	CHECK_EQ(le16toh(*(uint16_t *)(used + 4 + 8 * NUM)), 1);
}

/* A queue restarted on used rings carries on from used->idx. */
static void test_init_from_used(void)
{
	reset(false);
	*(uint16_t *)(used + 2) = htole16(7);
	vq_init(&vq, NUM, desc, avail, used, false, true);
	CHECK_EQ(vq.last_avail, 7);
	CHECK_EQ(vq.used_idx, 7);
}

int main(void)
{
	RUN(test_sizes);
	RUN(test_pop);
	RUN(test_chain);
	RUN(test_bad_chains);
	RUN(test_indirect);
	RUN(test_push_and_interrupts);
	RUN(test_init_from_used);
	TEST_MAIN_END();
}
