// SPDX-License-Identifier: BSD-3-Clause
/*
 * Request parsing and reply building: crafted request buffers go through
 * muser_handle_requests() and the reply buffer is checked byte for byte,
 * including malformed requests from the kernel.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "../private.h"
#include "test.h"

int test_failures;

#define BAR2_SIZE	0x100

struct bar_state {
	uint8_t regs[BAR2_SIZE];
	unsigned int calls;
	int fail_errno;
	ssize_t ret_override;
	int replayed;		/* muser_req_replayed() seen in the callback */
	unsigned int resets;
	int reset_errno;
	enum muser_reset_reason reason;
};

static ssize_t bar2_cb(struct muser_dev *dev, void *priv, void *buf,
		       size_t count, uint64_t offset, bool is_write)
{
	struct bar_state *s = priv;

	s->calls++;
	s->replayed = muser_req_replayed(dev);
	if (s->fail_errno) {
		errno = s->fail_errno;
		return -1;
	}
	if (s->ret_override)
		return s->ret_override;
	if (is_write)
		memcpy(&s->regs[offset], buf, count);
	else
		memcpy(buf, &s->regs[offset], count);
	return count;
}

static int reset_cb(struct muser_dev *dev, void *priv,
		    enum muser_reset_reason reason)
{
	struct bar_state *s = priv;

	(void)dev;
	s->resets++;
	s->reason = reason;
	if (s->reset_errno) {
		errno = s->reset_errno;
		return -1;
	}
	memset(s->regs, 0, sizeof(s->regs));
	return 0;
}

/* A device as muser_realize() leaves it, without a kernel. */
static struct muser_dev *new_dev(struct bar_state *s)
{
	struct muser_dev *dev = muser_dev_alloc(-1, NULL, NULL, "test");

	CHECK(dev != NULL);
	CHECK_EQ(muser_pci_set_ids(dev, 0x494f, 0x0dc8, 0x494f, 0x0dc8), 0);
	CHECK_EQ(muser_setup_bar(dev, 2, BAR2_SIZE, MUSER_BAR_MEM32, bar2_cb, s), 0);
	CHECK_EQ(muser_setup_bar(dev, 4, 0x1000, MUSER_BAR_MEM32, NULL, NULL), 0);
	CHECK_EQ(muser_set_reset_cb(dev, reset_cb, s), 0);
	muser_pcicfg_init(dev);
	muser_build_device_info(dev, &dev->info);
	dev->realized = true;
	return dev;
}

struct buf {
	uint8_t b[64 * 1024] __attribute__((aligned(8)));
	size_t len;
};

static void put_req(struct buf *in, uint64_t id, uint16_t type, uint16_t flags,
		    uint32_t region, uint64_t offset, uint32_t len,
		    const void *data, uint32_t data_len)
{
	struct muser_req r = {
		.id = id, .type = type, .flags = flags, .region = region,
		.offset = offset, .len = len, .data_len = data_len,
	};

	memcpy(in->b + in->len, &r, sizeof(r));
	in->len += sizeof(r);
	memset(in->b + in->len, 0, MUSER_ALIGN_UP(data_len));
	if (data_len)
		memcpy(in->b + in->len, data, data_len);
	in->len += MUSER_ALIGN_UP(data_len);
}

#define put_read(in, id, region, off, len) \
	put_req(in, id, MUSER_REQ_READ, 0, region, off, len, NULL, 0)
#define put_write(in, id, region, off, data, len) \
	put_req(in, id, MUSER_REQ_WRITE, 0, region, off, len, data, len)

/* Walk the replies: returns a pointer to reply @i's header, or NULL. */
static const struct muser_reply *reply_at(const struct buf *out, unsigned int i)
{
	size_t pos = 0;

	while (pos < out->len) {
		const struct muser_reply *r = (const void *)(out->b + pos);

		if (i-- == 0)
			return r;
		pos += sizeof(*r) + MUSER_ALIGN_UP(r->len);
	}
	return NULL;
}

static const uint8_t *reply_data(const struct muser_reply *r)
{
	return (const uint8_t *)(r + 1);
}

/* Handle all of @in into @out; returns the number of replies. */
static unsigned int handle(struct muser_dev *dev, struct buf *in,
			   struct buf *out)
{
	unsigned int n = 0;
	size_t used;

	memset(out->b, 0xee, sizeof(out->b));
	used = muser_handle_requests(dev, in->b, in->len, out->b,
				     sizeof(out->b), &out->len, &n);
	CHECK_EQ(used, in->len);
	return n;
}

static void check_reply(const struct buf *out, unsigned int i, uint64_t id,
			int error, uint32_t len)
{
	const struct muser_reply *r = reply_at(out, i);

	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_EQ(r->id, id);
	CHECK_EQ(r->error, error);
	CHECK_EQ(r->len, len);
}

static struct buf in, out;

static void test_batch(void)
{
	struct bar_state s = { 0 };
	struct muser_dev *dev = new_dev(&s);
	const struct muser_reply *r;
	uint8_t w[2] = { 0x12, 0x34 };
	uint32_t cmd = PCI_COMMAND_MEMORY | 0xffff0000;

	s.regs[0] = 0x5a;
	in.len = 0;
	put_read(&in, 1, VFIO_PCI_CONFIG_REGION_INDEX, 0, 256);
	put_read(&in, 2, VFIO_PCI_BAR2_REGION_INDEX, 0, 4);
	put_write(&in, 3, VFIO_PCI_BAR2_REGION_INDEX, 4, w, 2);
	put_write(&in, 4, VFIO_PCI_CONFIG_REGION_INDEX, PCI_COMMAND, &cmd, 4);
	put_read(&in, 5, VFIO_PCI_CONFIG_REGION_INDEX, PCI_COMMAND, 2);
	put_read(&in, 6, VFIO_PCI_BAR2_REGION_INDEX, 4, 3);
	put_read(&in, 7, VFIO_PCI_BAR4_REGION_INDEX, 0xff8, 8);

	CHECK_EQ(handle(dev, &in, &out), 7);
	check_reply(&out, 0, 1, 0, 256);
	r = reply_at(&out, 0);
	CHECK_EQ(reply_data(r)[0], 0x4f);
	CHECK_EQ(reply_data(r)[3], 0x0d);
	check_reply(&out, 1, 2, 0, 4);
	CHECK_EQ(reply_data(reply_at(&out, 1))[0], 0x5a);
	check_reply(&out, 2, 3, 0, 0);
	CHECK_EQ(s.regs[4], 0x12);
	CHECK_EQ(s.regs[5], 0x34);
	check_reply(&out, 3, 4, 0, 0);
	check_reply(&out, 4, 5, 0, 2);
	CHECK_EQ(reply_data(reply_at(&out, 4))[0], PCI_COMMAND_MEMORY);
	/* a 3-byte read: data padded with zeros to 8 */
	check_reply(&out, 5, 6, 0, 3);
	r = reply_at(&out, 5);
	CHECK_EQ(reply_data(r)[1], 0x34);
	CHECK_EQ(reply_data(r)[3], 0);
	CHECK_EQ(reply_data(r)[7], 0);
	/* a BAR without callback reads zeros */
	check_reply(&out, 6, 7, 0, 8);
	CHECK_EQ(reply_data(reply_at(&out, 6))[7], 0);
	CHECK(reply_at(&out, 7) == NULL);
	CHECK_EQ(out.len, 7 * 16 + 256 + 8 + 8 + 8 + 8);
	muser_dev_destroy(dev);
}

static void test_invalid_requests(void)
{
	struct bar_state s = { 0 };
	struct muser_dev *dev = new_dev(&s);
	uint8_t w[8] = { 0 };
	unsigned int i;

	in.len = 0;
	put_read(&in, 10, VFIO_PCI_ROM_REGION_INDEX, 0, 4);
	put_read(&in, 11, VFIO_PCI_VGA_REGION_INDEX, 0, 4);
	put_read(&in, 12, 9, 0, 4);
	put_read(&in, 13, 0xffffffff, 0, 4);
	put_read(&in, 14, VFIO_PCI_BAR3_REGION_INDEX, 0, 4);	/* absent */
	put_read(&in, 15, VFIO_PCI_BAR2_REGION_INDEX, 0xfe, 4);	/* past end */
	put_read(&in, 16, VFIO_PCI_BAR2_REGION_INDEX, UINT64_MAX, 2);
	put_read(&in, 17, VFIO_PCI_BAR2_REGION_INDEX, 0, 0);
	put_read(&in, 18, VFIO_PCI_CONFIG_REGION_INDEX, 0, MUSER_MAX_DATA + 1);
	put_read(&in, 19, VFIO_PCI_CONFIG_REGION_INDEX, 0x100, 1);
	/* data_len disagreeing with the type: framing still holds */
	put_req(&in, 20, MUSER_REQ_WRITE, 0, VFIO_PCI_BAR2_REGION_INDEX, 0, 4, w, 2);
	put_req(&in, 21, MUSER_REQ_READ, 0, VFIO_PCI_BAR2_REGION_INDEX, 0, 4, w, 8);
	put_req(&in, 22, 99, 0, VFIO_PCI_BAR2_REGION_INDEX, 0, 4, NULL, 0);
	put_req(&in, 23, 0, 0, 0, 0, 0, NULL, 0);
	put_req(&in, 24, MUSER_REQ_RESET, 0, 0, 0, 0, w, 8);
	/* still in step after all that */
	put_read(&in, 25, VFIO_PCI_CONFIG_REGION_INDEX, 0, 2);

	CHECK_EQ(handle(dev, &in, &out), 16);
	for (i = 0; i < 15; i++)
		check_reply(&out, i, 10 + i, EINVAL, 0);
	check_reply(&out, 15, 25, 0, 2);
	CHECK_EQ(s.calls, 0);
	CHECK_EQ(s.resets, 0);
	muser_dev_destroy(dev);
}

static void test_broken_framing(void)
{
	struct bar_state s = { 0 };
	struct muser_dev *dev = new_dev(&s);
	struct muser_req r = {
		.id = 31, .type = MUSER_REQ_WRITE, .region = 2, .len = 64,
		.data_len = 64,
	};
	unsigned int n = 0;

	/* data_len runs past the end of what was read */
	in.len = 0;
	put_read(&in, 30, VFIO_PCI_BAR2_REGION_INDEX, 0, 1);
	memcpy(in.b + in.len, &r, sizeof(r));
	in.len += sizeof(r) + 16;
	CHECK_EQ(handle(dev, &in, &out), 2);
	check_reply(&out, 0, 30, 0, 1);
	check_reply(&out, 1, 31, EINVAL, 0);
	CHECK_EQ(s.calls, 1);

	/* a truncated header at the end is dropped without a reply */
	in.len = 0;
	put_read(&in, 32, VFIO_PCI_BAR2_REGION_INDEX, 0, 1);
	memset(in.b + in.len, 0xff, 24);
	in.len += 24;
	CHECK_EQ(handle(dev, &in, &out), 1);
	check_reply(&out, 0, 32, 0, 1);

	/* the last request may lack its padding */
	in.len = 0;
	put_write(&in, 33, VFIO_PCI_BAR2_REGION_INDEX, 8, "abc", 3);
	in.len -= 5;
	CHECK_EQ(muser_handle_requests(dev, in.b, in.len, out.b, sizeof(out.b),
				       &out.len, &n), in.len);
	CHECK_EQ(n, 1);
	check_reply(&out, 0, 33, 0, 0);
	CHECK_EQ(s.regs[10], 'c');
	muser_dev_destroy(dev);
}

static void test_callback_errors(void)
{
	struct bar_state s = { 0 };
	struct muser_dev *dev = new_dev(&s);

	in.len = 0;
	put_read(&in, 40, VFIO_PCI_BAR2_REGION_INDEX, 0, 4);
	s.fail_errno = EPERM;
	CHECK_EQ(handle(dev, &in, &out), 1);
	check_reply(&out, 0, 40, EPERM, 0);

	s.fail_errno = -5;	/* nonsense errno: EIO */
	CHECK_EQ(handle(dev, &in, &out), 1);
	check_reply(&out, 0, 40, EIO, 0);

	s.fail_errno = 512;	/* ERESTARTSYS, kernel-internal: EIO */
	CHECK_EQ(handle(dev, &in, &out), 1);
	check_reply(&out, 0, 40, EIO, 0);

	s.fail_errno = 511;
	CHECK_EQ(handle(dev, &in, &out), 1);
	check_reply(&out, 0, 40, 511, 0);

	s.fail_errno = 0;
	s.ret_override = 2;	/* short access: EIO */
	CHECK_EQ(handle(dev, &in, &out), 1);
	check_reply(&out, 0, 40, EIO, 0);
	muser_dev_destroy(dev);
}

static void test_reset_request(void)
{
	struct bar_state s = { 0 };
	struct muser_dev *dev = new_dev(&s);
	uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	const struct muser_reply *r;

	s.regs[0] = 9;
	s.reason = MUSER_RESET_FLR;
	in.len = 0;
	put_write(&in, 50, VFIO_PCI_CONFIG_REGION_INDEX, PCI_COMMAND, &cmd, 2);
	put_req(&in, 51, MUSER_REQ_RESET, 0, 0, 0, 0, NULL, 0);
	put_read(&in, 52, VFIO_PCI_CONFIG_REGION_INDEX, PCI_COMMAND, 2);
	CHECK_EQ(handle(dev, &in, &out), 3);
	check_reply(&out, 1, 51, 0, 0);
	r = reply_at(&out, 2);
	CHECK_EQ(reply_data(r)[0], 0);
	CHECK_EQ(s.resets, 1);
	CHECK_EQ(s.reason, MUSER_RESET_VFIO);
	CHECK_EQ(s.regs[0], 0);

	s.reset_errno = EBUSY;
	in.len = 0;
	put_req(&in, 53, MUSER_REQ_RESET, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(handle(dev, &in, &out), 1);
	check_reply(&out, 0, 53, EBUSY, 0);
	muser_dev_destroy(dev);
}

static void test_replayed_flag(void)
{
	struct bar_state s = { 0 };
	struct muser_dev *dev = new_dev(&s);

	in.len = 0;
	put_req(&in, 60, MUSER_REQ_READ, MUSER_REQ_F_REPLAYED,
		VFIO_PCI_BAR2_REGION_INDEX, 0, 1, NULL, 0);
	CHECK_EQ(handle(dev, &in, &out), 1);
	CHECK_EQ(s.replayed, 1);
	CHECK(!muser_req_replayed(dev));
	in.len = 0;
	put_read(&in, 61, VFIO_PCI_BAR2_REGION_INDEX, 0, 1);
	CHECK_EQ(handle(dev, &in, &out), 1);
	CHECK_EQ(s.replayed, 0);
	muser_dev_destroy(dev);
}

/* Replies that do not fit are left for the next call. */
static void test_out_buffer_full(void)
{
	struct bar_state s = { 0 };
	struct muser_dev *dev = new_dev(&s);
	size_t cap = 2 * (16 + MUSER_MAX_DATA) + 8, used, pos = 0;
	unsigned int n = 0, i;

	in.len = 0;
	for (i = 0; i < 5; i++)
		put_read(&in, 70 + i, VFIO_PCI_BAR4_REGION_INDEX, 0, MUSER_MAX_DATA);
	used = muser_handle_requests(dev, in.b, in.len, out.b, cap, &out.len, &n);
	CHECK_EQ(used, 2 * sizeof(struct muser_req));
	CHECK_EQ(n, 2);
	CHECK_EQ(out.len, 2 * (16 + MUSER_MAX_DATA));
	pos += used;
	while (pos < in.len) {
		used = muser_handle_requests(dev, in.b + pos, in.len - pos, out.b,
					     cap, &out.len, &n);
		CHECK(used > 0);
		if (!used)
			break;
		pos += used;
	}
	CHECK_EQ(n, 5);
	check_reply(&out, 0, 74, 0, MUSER_MAX_DATA);
	muser_dev_destroy(dev);
}

int main(void)
{
	RUN(test_batch);
	RUN(test_invalid_requests);
	RUN(test_broken_framing);
	RUN(test_callback_errors);
	RUN(test_reset_request);
	RUN(test_replayed_flag);
	RUN(test_out_buffer_full);
	TEST_MAIN_END();
}
