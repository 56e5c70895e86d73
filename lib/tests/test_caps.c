// SPDX-License-Identifier: BSD-3-Clause
/*
 * The capability lists: placement, dword alignment, chaining from 0x34
 * and 0x100, read-only headers, argument checks, space limits; the
 * vendor-specific, serial number and power management capabilities; which
 * config bytes reach the config callback.
 */
#include <errno.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "test.h"
#include "test_util.h"

int test_failures;

static void test_chain(void)
{
	static const uint8_t body[2] = { 0xab, 0xcd };
	struct cap_entry c[8];
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_setup_bar(t.dev, 0, 0x4000, MUSER_BAR_MEM32, NULL, NULL), 0);
	CHECK_EQ(muser_add_cap_pm(t.dev, 0), 0x40);
	CHECK_EQ(muser_add_cap_vendor(t.dev, body, 2, 0), 0x48);	/* 5 bytes */
	CHECK_EQ(muser_add_cap_msi(t.dev, 4, MUSER_MSI_64BIT), 0x50);	/* 14 */
	CHECK_EQ(muser_add_cap_msix(t.dev, 8, 0, 0x2000, 0, 0x3000), 0x60);
	CHECK_EQ(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, 0), 0x6c);
	CHECK_EQ(muser_add_ext_cap_dsn(t.dev, 0x0123456789abcdefull), 0x100);
	CHECK_EQ(muser_add_ext_cap_vendor(t.dev, 0x1234, 5, body, 1, 0), 0x10c);
	CHECK_ERR(muser_add_ext_cap_dsn(t.dev, 1), EEXIST);
	tctx_realize(&t);

	CHECK(cfg_rd(&t, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	CHECK_EQ(walk_caps(&t, c, 8), 5);
	CHECK_EQ(c[0].off, 0x40);
	CHECK_EQ(c[0].id, PCI_CAP_ID_PM);
	CHECK_EQ(c[1].off, 0x48);
	CHECK_EQ(c[1].id, PCI_CAP_ID_VNDR);
	CHECK_EQ(c[2].off, 0x50);
	CHECK_EQ(c[2].id, PCI_CAP_ID_MSI);
	CHECK_EQ(c[3].off, 0x60);
	CHECK_EQ(c[3].id, PCI_CAP_ID_MSIX);
	CHECK_EQ(c[4].off, 0x6c);
	CHECK_EQ(c[4].id, PCI_CAP_ID_EXP);
	CHECK_EQ(cfg_rd(&t, 0x6c + PCI_CAP_LIST_NEXT, 1), 0);

	/* the vendor capability: length byte and body, read-only */
	CHECK_EQ(cfg_rd(&t, 0x48, 4), 0xab055009);
	CHECK_EQ(cfg_rd(&t, 0x4c, 1), 0xcd);
	cfg_wr(&t, 0x48, 4, 0xffffffff);
	cfg_wr(&t, 0x4c, 1, 0);
	CHECK_EQ(cfg_rd(&t, 0x48, 4), 0xab055009);
	CHECK_EQ(cfg_rd(&t, 0x4c, 1), 0xcd);
	/* the pointer, IDs and next pointers are read-only */
	cfg_wr(&t, PCI_CAPABILITY_LIST, 1, 0x80);
	cfg_wr(&t, 0x40, 2, 0);
	cfg_wr(&t, PCI_STATUS, 2, 0xffff);
	CHECK_EQ(cfg_rd(&t, PCI_CAPABILITY_LIST, 1), 0x40);
	CHECK_EQ(cfg_rd(&t, 0x40, 2), 0x4801);
	CHECK(cfg_rd(&t, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);

	/* extended: DSN then VSEC, version 1, headers read-only */
	CHECK_EQ(walk_ext_caps(&t, c, 8), 2);
	CHECK_EQ(c[0].off, 0x100);
	CHECK_EQ(c[0].id, PCI_EXT_CAP_ID_DSN);
	CHECK_EQ(c[0].version, 1);
	CHECK_EQ(c[1].off, 0x10c);
	CHECK_EQ(c[1].id, PCI_EXT_CAP_ID_VNDR);
	CHECK_EQ(c[1].version, 1);
	CHECK_EQ(cfg_rd(&t, 0x104, 4), 0x89abcdef);
	CHECK_EQ(cfg_rd(&t, 0x108, 4), 0x01234567);
	CHECK_EQ(cfg_rd(&t, 0x110, 4), 0x00951234);	/* len 9, rev 5, ID */
	CHECK_EQ(cfg_rd(&t, 0x114, 1), 0xab);
	cfg_wr(&t, 0x100, 4, 0xffffffff);
	cfg_wr(&t, 0x104, 4, 0);
	cfg_wr(&t, 0x110, 4, 0);
	CHECK_EQ(cfg_rd(&t, 0x100, 4), 0x10c10003);
	CHECK_EQ(cfg_rd(&t, 0x104, 4), 0x89abcdef);
	CHECK_EQ(cfg_rd(&t, 0x110, 4), 0x00951234);
	tctx_fini(&t);
}

/* The example in muser.h's overview says what it gives. */
static void test_overview_example(void)
{
	struct cap_entry c[4];
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_setup_bar(t.dev, 0, 0x4000, MUSER_BAR_MEM64, NULL, NULL), 0);
	CHECK_EQ(muser_add_cap_pm(t.dev, 0), 0x40);
	CHECK_EQ(muser_add_cap_msix(t.dev, 16, 0, 0x2000, 0, 0x3000), 0x48);
	CHECK_EQ(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, MUSER_PCIE_FLR), 0x54);
	CHECK_EQ(muser_add_ext_cap_dsn(t.dev, 0x0123456789abcdefull), 0x100);
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.regions[CFG].size, 4096);
	CHECK_EQ(walk_caps(&t, c, 4), 3);
	CHECK_EQ(walk_ext_caps(&t, c, 4), 1);
	tctx_fini(&t);
}

static void test_no_caps(void)
{
	struct cap_entry c[1];
	struct tctx t;

	tctx_init(&t);
	tctx_realize(&t);
	CHECK_EQ(cfg_rd(&t, PCI_CAPABILITY_LIST, 1), 0);
	CHECK_EQ(cfg_rd(&t, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	CHECK_EQ(walk_caps(&t, c, 1), 0);
	CHECK_EQ(t.fk->info.regions[CFG].size, 256);
	tctx_fini(&t);
}

static void test_arguments(void)
{
	struct tctx t;
	int i;

	tctx_init(&t);
	CHECK_ERR(muser_add_cap_pm(t.dev, 4), EINVAL);
	CHECK_ERR(muser_add_cap_vendor(t.dev, NULL, 1, 0), EINVAL);
	CHECK_ERR(muser_add_cap_vendor(t.dev, "x", 1, 2), EINVAL);
	CHECK_ERR(muser_add_ext_cap_vendor(t.dev, 1, 16, "x", 1, 0), EINVAL);
	CHECK_ERR(muser_add_ext_cap_vendor(t.dev, 1, 0, NULL, 0x1000 - 8, MUSER_CAP_CB),
		  EINVAL);	/* VSEC Length is 12 bits */
	CHECK_ERR(muser_set_config_size(t.dev, 512), EINVAL);
	CHECK_EQ(muser_add_cap_pm(t.dev, MUSER_PM_D1 | MUSER_PM_D2), 0x40);
	CHECK_ERR(muser_add_cap_pm(t.dev, 0), EEXIST);

	/* a vendor capability taking all the room left */
	CHECK_ERR(muser_add_cap_vendor(t.dev, NULL, 0x100 - 0x48 - 2, MUSER_CAP_CB),
		  ENOSPC);
	CHECK_EQ(muser_add_cap_vendor(t.dev, NULL, 0x100 - 0x48 - 3, MUSER_CAP_CB), 0x48);
	CHECK_ERR(muser_add_cap_vendor(t.dev, NULL, 0, 0), ENOSPC);
	CHECK_ERR(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, 0), ENOSPC);

	/* extended capabilities need 4 KiB config space */
	CHECK_EQ(muser_set_config_size(t.dev, 256), 0);
	CHECK_ERR(muser_add_ext_cap_dsn(t.dev, 1), EINVAL);
	CHECK_ERR(muser_add_ext_cap_vendor(t.dev, 1, 1, "x", 1, 0), EINVAL);
	CHECK_EQ(muser_set_config_size(t.dev, 4096), 0);
	CHECK_EQ(muser_add_ext_cap_dsn(t.dev, 1), 0x100);
	CHECK_ERR(muser_set_config_size(t.dev, 256), EINVAL);
	CHECK_ERR(muser_add_ext_cap_dsn(t.dev, 2), EEXIST);
	CHECK_EQ(muser_add_ext_cap_vendor(t.dev, 1, 1, NULL, 0xf00 - 12 - 8,
					  MUSER_CAP_CB), 0x10c);
	CHECK_ERR(muser_add_ext_cap_vendor(t.dev, 1, 1, NULL, 0, 0), ENOSPC);

	tctx_realize(&t);
	CHECK_ERR(muser_add_cap_pm(t.dev, 0), EBUSY);
	CHECK_ERR(muser_add_cap_vendor(t.dev, "x", 1, 0), EBUSY);
	CHECK_ERR(muser_add_cap_msi(t.dev, 1, 0), EBUSY);
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, 0, 0, 0, 0x100), EBUSY);
	CHECK_ERR(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, 0), EBUSY);
	CHECK_ERR(muser_add_ext_cap_dsn(t.dev, 1), EBUSY);
	CHECK_ERR(muser_add_ext_cap_vendor(t.dev, 1, 1, "x", 1, 0), EBUSY);
	CHECK_ERR(muser_set_config_size(t.dev, 4096), EBUSY);
	/* One rule for every setup_* and set_*_cb: EBUSY once realized. */
	CHECK_ERR(muser_set_irq_state_cb(t.dev, NULL, NULL), EBUSY);
	CHECK_ERR(muser_set_reset_cb(t.dev, NULL, NULL), EBUSY);
	CHECK_ERR(muser_set_config_cb(t.dev, NULL, NULL), EBUSY);
	CHECK_ERR(muser_set_recover_cb(t.dev, NULL, NULL), EBUSY);
	CHECK_ERR(muser_set_dma_revoke_cb(t.dev, NULL, NULL), EBUSY);
	CHECK_ERR(muser_setup_bar(t.dev, 1, 0x1000, 0, NULL, NULL), EBUSY);
	tctx_fini(&t);

	/* at most 32 capabilities */
	tctx_init(&t);
	for (i = 0; i < 32; i++)
		CHECK_EQ(muser_add_cap_vendor(t.dev, NULL, 0, 0), 0x40 + 4 * i);
	CHECK_ERR(muser_add_ext_cap_dsn(t.dev, 1), ENOSPC);
	tctx_realize(&t);
	CHECK_EQ(cfg_rd(&t, 0x40 + 4 * 31, 4), 0x00030009);
	CHECK_EQ(cfg_rd(&t, 0x40 + 4 * 30, 4), 0x0003bc09);
	tctx_fini(&t);
}

static void test_pm(void)
{
	struct tctx t;
	const unsigned int csr = 0x40 + PCI_PM_CTRL;

	tctx_init(&t);
	CHECK_EQ(muser_add_cap_pm(t.dev, 0), 0x40);
	tctx_realize(&t);
	CHECK_EQ(cfg_rd(&t, 0x40, 4), 0x00030001);	/* version 3, no D1/D2 */
	CHECK_EQ(cfg_rd(&t, csr, 4), PCI_PM_CTRL_NO_SOFT_RESET);
	cfg_wr(&t, csr, 2, 0xffff);			/* D3hot; the rest RO */
	CHECK_EQ(cfg_rd(&t, csr, 4), PCI_PM_CTRL_NO_SOFT_RESET | 3);
	cfg_wr(&t, csr, 2, 1);				/* D1 unsupported */
	CHECK_EQ(cfg_rd(&t, csr, 2), PCI_PM_CTRL_NO_SOFT_RESET | 3);
	cfg_wr(&t, csr, 1, 2);				/* D2 unsupported */
	CHECK_EQ(cfg_rd(&t, csr, 2), PCI_PM_CTRL_NO_SOFT_RESET | 3);
	cfg_wr(&t, csr, 2, 0);
	CHECK_EQ(cfg_rd(&t, csr, 2), PCI_PM_CTRL_NO_SOFT_RESET);
	cfg_wr(&t, csr, 2, 3);
	CHECK_EQ(treset(&t), 0);			/* back to D0 */
	CHECK_EQ(cfg_rd(&t, csr, 2), PCI_PM_CTRL_NO_SOFT_RESET);
	tctx_fini(&t);

	tctx_init(&t);
	CHECK_EQ(muser_add_cap_pm(t.dev, MUSER_PM_D1 | MUSER_PM_D2), 0x40);
	tctx_realize(&t);
	CHECK_EQ(cfg_rd(&t, 0x42, 2), PCI_PM_CAP_D1 | PCI_PM_CAP_D2 | 3);
	cfg_wr(&t, csr, 2, 1);
	CHECK_EQ(cfg_rd(&t, csr, 2), PCI_PM_CTRL_NO_SOFT_RESET | 1);
	cfg_wr(&t, csr, 2, 2);
	CHECK_EQ(cfg_rd(&t, csr, 2), PCI_PM_CTRL_NO_SOFT_RESET | 2);
	tctx_fini(&t);
}

#define LOG_MAX	16

struct cfg_log {
	unsigned int n;
	struct { uint64_t off; size_t count; bool is_write; } calls[LOG_MAX];
};

/* Reads return 0xc0 | low bits of the offset; every call is logged. */
static ssize_t cfg_cb(struct muser_dev *dev, void *priv, void *buf,
		      size_t count, uint64_t offset, bool is_write)
{
	struct cfg_log *l = priv;
	size_t i;

	(void)dev;
	if (l->n < LOG_MAX)
		l->calls[l->n] = (typeof(l->calls[0])){ offset, count, is_write };
	l->n++;
	if (!is_write)
		for (i = 0; i < count; i++)
			((uint8_t *)buf)[i] = 0xc0 | ((offset + i) & 0x3f);
	return count;
}

#define CHECK_CALL(l, i, o, c) do {					\
	CHECK_EQ((l)->calls[i].off, o);					\
	CHECK_EQ((l)->calls[i].count, c);				\
} while (0)

/* Which bytes the config callback gets, including 4 KiB space. */
static void test_config_cb_split(void)
{
	struct cfg_log l = { 0 };
	uint8_t all[4096];
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_set_config_cb(t.dev, cfg_cb, &l), 0);
	CHECK_EQ(muser_add_cap_pm(t.dev, 0), 0x40);
	CHECK_EQ(muser_add_cap_vendor(t.dev, NULL, 6, MUSER_CAP_CB), 0x48);
	CHECK_EQ(muser_add_cap_vendor(t.dev, "\x11\x22", 2, 0), 0x54);
	CHECK_EQ(muser_add_ext_cap_vendor(t.dev, 7, 1, NULL, 8, MUSER_CAP_CB), 0x100);
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.regions[CFG].size, 4096);

	/* the vendor body (0x4b..0x50) is the callback's, the header ours */
	CHECK_EQ(cfg_rd(&t, 0x48, 4), 0xcb095409);
	CHECK_EQ(l.n, 1);
	CHECK_CALL(&l, 0, 0x4b, 1);
	/* a read over PM, vendor header and body, and the gap after it */
	l.n = 0;
	CHECK_EQ(treq(&t, CFG, 0x44, all, 0x10, false), 0);
	CHECK_EQ(l.n, 1);
	CHECK_CALL(&l, 0, 0x4b, 9);
	CHECK_EQ(all[0], PCI_PM_CTRL_NO_SOFT_RESET);
	CHECK_EQ(all[4], PCI_CAP_ID_VNDR);
	CHECK_EQ(all[6], 9);
	CHECK_EQ(all[7], 0xcb);
	CHECK_EQ(all[0xf], 0xd3);
	/* the extended VSEC header is ours, its body and the rest are not */
	l.n = 0;
	CHECK_EQ(cfg_rd(&t, 0x100, 4), 0x1000b);
	CHECK_EQ(cfg_rd(&t, 0x104, 4), 0x01010007);
	CHECK_EQ(l.n, 0);
	cfg_wr(&t, 0x108, 4, 0x12345678);
	CHECK_EQ(l.n, 1);
	CHECK_CALL(&l, 0, 0x108, 4);
	CHECK(l.calls[0].is_write);

	/* the whole 4 KiB in one request: header and capabilities from the
	 * library, three parts from the callback */
	l.n = 0;
	memset(all, 0xee, sizeof(all));
	CHECK_EQ(treq(&t, CFG, 0, all, sizeof(all), false), 0);
	CHECK_EQ(l.n, 3);
	CHECK_CALL(&l, 0, 0x4b, 0x54 - 0x4b);
	CHECK_CALL(&l, 1, 0x59, 0x100 - 0x59);
	CHECK_CALL(&l, 2, 0x108, 0x1000 - 0x108);
	CHECK_EQ(all[0x54], PCI_CAP_ID_VNDR);
	CHECK_EQ(all[0x57], 0x11);
	CHECK_EQ(all[0x58], 0x22);
	CHECK_EQ(all[0], 0x4f);
	CHECK_EQ(all[PCI_CAPABILITY_LIST], 0x40);
	CHECK_EQ(all[0x41], 0x48);
	CHECK_EQ(all[0x59], 0xd9);
	CHECK_EQ(all[0xff], 0xff);
	CHECK_EQ(all[0x100], 0x0b);
	CHECK_EQ(all[0x106], 0x01);	/* VSEC rev */
	CHECK_EQ(all[0x107], 0x01);	/* VSEC length 16 */
	CHECK_EQ(all[0x108], 0xc8);
	CHECK_EQ(all[0xfff], 0xff);
	tctx_fini(&t);
}

/* 4 KiB without extended capabilities: 0x100 reads 0, the rest is the callback's. */
static void test_ext_space_empty(void)
{
	struct cfg_log l = { 0 };
	struct cap_entry c[1];
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_set_config_cb(t.dev, cfg_cb, &l), 0);
	CHECK_EQ(muser_set_config_size(t.dev, 4096), 0);
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.regions[CFG].size, 4096);
	CHECK_EQ(walk_ext_caps(&t, c, 1), 0);
	CHECK_EQ(l.n, 0);
	CHECK_EQ(cfg_rd(&t, 0x104, 4), 0xc7c6c5c4);
	CHECK_EQ(cfg_rd(&t, 0xffc, 4), 0xfffefdfc);
	tctx_fini(&t);
}

int main(void)
{
	RUN(test_chain);
	RUN(test_overview_example);
	RUN(test_no_caps);
	RUN(test_arguments);
	RUN(test_pm);
	RUN(test_config_cb_split);
	RUN(test_ext_space_empty);
	TEST_MAIN_END();
}
