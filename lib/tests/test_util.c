// SPDX-License-Identifier: BSD-3-Clause
/*
 * See test_util.h.
 */
#include <errno.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "test.h"
#include "test_util.h"

void tctx_init(struct tctx *t)
{
	t->fk = fake_kernel_new();
	t->dev = fake_dev_new(t->fk);
	t->next_id = 1;
	CHECK_EQ(muser_pci_set_ids(t->dev, 0x494f, 0x0dc8, 0x494f, 0x0dc8), 0);
}

void tctx_realize(struct tctx *t)
{
	CHECK_EQ(muser_realize(t->dev), 0);
}

void tctx_fini(struct tctx *t)
{
	muser_dev_destroy(t->dev);
	fake_kernel_free(t->fk);
}

int treq(struct tctx *t, uint32_t region, uint64_t off, void *buf,
	 uint32_t len, bool is_write)
{
	const struct fake_reply *r;
	uint64_t id = t->next_id++;

	fake_queue(t->fk, id, is_write ? MUSER_REQ_WRITE : MUSER_REQ_READ, 0,
		   region, off, len, is_write ? buf : NULL, is_write ? len : 0);
	CHECK_EQ(muser_dispatch(t->dev), 1);
	r = fake_reply(t->fk, id);
	CHECK(r != NULL);
	if (!r)
		return EPROTO;
	if (!is_write && !r->error) {
		CHECK_EQ(r->len, len);
		memcpy(buf, r->data, len);
	}
	return r->error;
}

uint32_t trd(struct tctx *t, uint32_t region, uint64_t off, unsigned int n)
{
	uint8_t b[4] = { 0 };

	CHECK_EQ(treq(t, region, off, b, n, false), 0);
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

void twr(struct tctx *t, uint32_t region, uint64_t off, unsigned int n,
	 uint32_t v)
{
	uint8_t b[4] = { v, v >> 8, v >> 16, v >> 24 };

	CHECK_EQ(treq(t, region, off, b, n, true), 0);
}

int treset(struct tctx *t)
{
	uint64_t id = t->next_id++;
	const struct fake_reply *r;

	fake_queue(t->fk, id, MUSER_REQ_RESET, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(muser_dispatch(t->dev), 1);
	r = fake_reply(t->fk, id);
	CHECK(r != NULL);
	return r ? r->error : EPROTO;
}

unsigned int walk_caps(struct tctx *t, struct cap_entry *caps,
		       unsigned int max)
{
	unsigned int n = 0, pos;

	if (!(cfg_rd(t, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
		return 0;
	pos = cfg_rd(t, PCI_CAPABILITY_LIST, 1);
	while (pos) {
		CHECK_EQ(pos % 4, 0);
		CHECK(pos >= PCI_STD_HEADER_SIZEOF && pos < 0x100);
		if (pos % 4 || pos < PCI_STD_HEADER_SIZEOF || n == 48)
			break;	/* misplaced, or a loop */
		if (n < max)
			caps[n] = (struct cap_entry){
				.off = pos, .id = cfg_rd(t, pos, 1),
			};
		n++;
		pos = cfg_rd(t, pos + PCI_CAP_LIST_NEXT, 1);
	}
	return n;
}

unsigned int walk_ext_caps(struct tctx *t, struct cap_entry *caps,
			   unsigned int max)
{
	unsigned int n = 0, pos = 0x100;
	uint32_t hdr;

	do {
		CHECK_EQ(pos % 4, 0);
		CHECK(pos >= 0x100 && pos < 0x1000);
		if (pos % 4 || pos < 0x100 || pos >= 0x1000 || n == 960)
			break;
		hdr = cfg_rd(t, pos, 4);
		if (!hdr)
			break;	/* no extended capabilities */
		if (n < max)
			caps[n] = (struct cap_entry){
				.off = pos, .id = PCI_EXT_CAP_ID(hdr),
				.version = PCI_EXT_CAP_VER(hdr),
			};
		n++;
		pos = PCI_EXT_CAP_NEXT(hdr);
	} while (pos);
	return n;
}
