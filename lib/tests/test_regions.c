// SPDX-License-Identifier: BSD-3-Clause
/*
 * Regions beyond the BARs: the expansion ROM (layout, ROM BAR sizing and
 * enable bit, read-only region), the VGA ranges, the config space size
 * and a whole 4 KiB config read in one request; the attach layout of a
 * device with everything, checked by the fake kernel as muser.ko does.
 */
#include <errno.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "test.h"
#include "test_util.h"

int test_failures;

#define ROM	VFIO_PCI_ROM_REGION_INDEX
#define VGA	VFIO_PCI_VGA_REGION_INDEX

struct log {
	unsigned int n;
	uint64_t off;
	size_t count;
	bool is_write;
};

/* Reads return the low byte of each offset. */
static ssize_t region_cb(struct muser_dev *dev, void *priv, void *buf,
			 size_t count, uint64_t offset, bool is_write)
{
	struct log *l = priv;
	size_t i;

	(void)dev;
	*l = (struct log){ l->n + 1, offset, count, is_write };
	if (!is_write)
		for (i = 0; i < count; i++)
			((uint8_t *)buf)[i] = offset + i;
	return count;
}

static void test_rom(void)
{
	struct log l = { 0 };
	uint8_t buf[4096];
	struct tctx t;

	tctx_init(&t);
	CHECK_ERR(muser_setup_rom(t.dev, 0x400, region_cb, &l), EINVAL);
	CHECK_ERR(muser_setup_rom(t.dev, 0x3000, region_cb, &l), EINVAL);
	CHECK_ERR(muser_setup_rom(t.dev, 0x2000000, region_cb, &l), EINVAL);
	CHECK_EQ(muser_setup_rom(t.dev, 0x8000, region_cb, &l), 0);
	CHECK_ERR(muser_setup_rom(t.dev, 0x8000, region_cb, &l), EEXIST);
	tctx_realize(&t);
	CHECK_ERR(muser_setup_rom(t.dev, 0x8000, region_cb, &l), EBUSY);
	CHECK_EQ(t.fk->info.regions[ROM].size, 0x8000);
	CHECK_EQ(t.fk->info.regions[ROM].flags, VFIO_REGION_INFO_FLAG_READ);

	/* QEMU's sizing: all ones but the enable bit, read, restore */
	CHECK_EQ(cfg_rd(&t, PCI_ROM_ADDRESS, 4), 0);
	cfg_wr(&t, PCI_ROM_ADDRESS, 4, PCI_ROM_ADDRESS_MASK);
	CHECK_EQ(cfg_rd(&t, PCI_ROM_ADDRESS, 4), 0xffff8000);
	cfg_wr(&t, PCI_ROM_ADDRESS, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(&t, PCI_ROM_ADDRESS, 4), 0xffff8001);
	cfg_wr(&t, PCI_ROM_ADDRESS, 4, 0xfebc0001);
	CHECK_EQ(cfg_rd(&t, PCI_ROM_ADDRESS, 4), 0xfebc0001);

	/* the contents, read in pieces as the kernel splits them */
	CHECK_EQ(treq(&t, ROM, 0x7000, buf, sizeof(buf), false), 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.off, 0x7000);
	CHECK_EQ(l.count, 4096);
	CHECK(!l.is_write);
	CHECK_EQ(buf[0x55], 0x55);
	/* read-only */
	CHECK_EQ(treq(&t, ROM, 0, buf, 4, true), EINVAL);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(treset(&t), 0);
	CHECK_EQ(cfg_rd(&t, PCI_ROM_ADDRESS, 4), 0);
	tctx_fini(&t);

	/* a ROM without a callback reads zeros */
	tctx_init(&t);
	CHECK_EQ(muser_setup_rom(t.dev, 0x800, NULL, NULL), 0);
	tctx_realize(&t);
	cfg_wr(&t, PCI_ROM_ADDRESS, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(&t, PCI_ROM_ADDRESS, 4), 0xfffff801);
	memset(buf, 0xff, 4);
	CHECK_EQ(treq(&t, ROM, 0x7fc, buf, 4, false), 0);
	CHECK_EQ(buf[0] | buf[3], 0);
	tctx_fini(&t);
}

static void test_vga(void)
{
	struct log l = { 0 };
	uint8_t buf[8] = { 0 };
	struct tctx t;

	tctx_init(&t);
	CHECK_ERR(muser_setup_vga(t.dev, NULL, NULL), EINVAL);
	CHECK_EQ(muser_setup_vga(t.dev, region_cb, &l), 0);
	CHECK_ERR(muser_setup_vga(t.dev, region_cb, &l), EEXIST);
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.num_regions, 9);
	CHECK_EQ(t.fk->info.regions[VGA].size, 0xc0000);
	CHECK_EQ(t.fk->info.regions[VGA].flags,
		 VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);

	CHECK_EQ(trd(&t, VGA, 0xa0000, 4), 0x03020100);
	CHECK_EQ(l.off, 0xa0000);
	twr(&t, VGA, 0xbfffc, 4, 0);
	CHECK_EQ(l.off, 0xbfffc);
	CHECK(l.is_write);
	CHECK_EQ(trd(&t, VGA, 0x3b0, 4), 0xb3b2b1b0);
	CHECK_EQ(trd(&t, VGA, 0x3bb, 1), 0xbb);
	CHECK_EQ(trd(&t, VGA, 0x3c0, 4), 0xc3c2c1c0);
	CHECK_EQ(trd(&t, VGA, 0x3df, 1), 0xdf);
	CHECK_EQ(l.n, 6);
	/* outside the ranges, or across their ends */
	CHECK_EQ(treq(&t, VGA, 0, buf, 1, false), EINVAL);
	CHECK_EQ(treq(&t, VGA, 0x3bc, buf, 1, false), EINVAL);
	CHECK_EQ(treq(&t, VGA, 0x3ba, buf, 4, false), EINVAL);
	CHECK_EQ(treq(&t, VGA, 0x3de, buf, 4, true), EINVAL);
	CHECK_EQ(treq(&t, VGA, 0x9ffff, buf, 2, false), EINVAL);
	CHECK_EQ(treq(&t, VGA, 0x3e0, buf, 1, false), EINVAL);
	CHECK_EQ(l.n, 6);
	tctx_fini(&t);
}

static ssize_t nop_cb(struct muser_dev *dev, void *priv, void *buf,
		      size_t count, uint64_t offset, bool is_write)
{
	(void)dev, (void)priv, (void)buf, (void)offset, (void)is_write;
	return count;
}

/* Everything at once: the kernel's checks accept the layout. */
static void test_full_layout(void)
{
	const struct muser_device_info *i;
	uint8_t cfg[4096];
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_pci_set_irq_pin(t.dev, 1), 0);
	CHECK_EQ(muser_setup_bar(t.dev, 0, 0x4000, MUSER_BAR_MEM64 | MUSER_BAR_PREFETCH,
				 nop_cb, NULL), 0);
	CHECK_EQ(muser_setup_bar(t.dev, 2, 0x10000, MUSER_BAR_MEM32, nop_cb, NULL), 0);
	CHECK_EQ(muser_setup_bar(t.dev, 4, 0x100, MUSER_BAR_IO, nop_cb, NULL), 0);
	CHECK_EQ(muser_setup_rom(t.dev, 0x10000, nop_cb, NULL), 0);
	CHECK_EQ(muser_setup_vga(t.dev, nop_cb, NULL), 0);
	CHECK_EQ(muser_add_cap_pm(t.dev, 0), 0x40);
	CHECK_EQ(muser_add_cap_msi(t.dev, 32, MUSER_MSI_64BIT | MUSER_MSI_MASKABLE), 0x48);
	CHECK_EQ(muser_add_cap_msix(t.dev, 2048, 2, 0, 0, 0x2000), 0x60);
	CHECK_EQ(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, MUSER_PCIE_FLR), 0x6c);
	CHECK_EQ(muser_add_ext_cap_dsn(t.dev, 42), 0x100);
	tctx_realize(&t);	/* fails if the fake kernel refuses it */
	i = &t.fk->info;
	CHECK_EQ(i->regions[0].size, 0x4000);
	CHECK_EQ(i->regions[2].size, 0x10000);
	CHECK_EQ(i->regions[4].size, 0x100);
	CHECK_EQ(i->regions[CFG].size, 4096);
	CHECK_EQ(i->irqs[VFIO_PCI_INTX_IRQ_INDEX].count, 1);
	CHECK_EQ(i->irqs[VFIO_PCI_MSI_IRQ_INDEX].count, 32);
	CHECK_EQ(i->irqs[VFIO_PCI_MSIX_IRQ_INDEX].count, 2048);
	CHECK_EQ(i->irqs[VFIO_PCI_ERR_IRQ_INDEX].count, 1);
	CHECK_EQ(i->irqs[VFIO_PCI_REQ_IRQ_INDEX].count, 0);

	/* the whole config space in one request; BAR types survive */
	CHECK_EQ(treq(&t, CFG, 0, cfg, sizeof(cfg), false), 0);
	CHECK_EQ(cfg[PCI_BASE_ADDRESS_0], 0x0c);
	CHECK_EQ(cfg[PCI_BASE_ADDRESS_4], 0x01);
	CHECK_EQ(cfg[PCI_CAPABILITY_LIST], 0x40);
	CHECK_EQ(cfg[0x60], PCI_CAP_ID_MSIX);
	CHECK_EQ(cfg[0x100], PCI_EXT_CAP_ID_DSN);
	CHECK_EQ(cfg[0x104], 42);
	/* and the BARs still size */
	cfg_wr(&t, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
	cfg_wr(&t, PCI_BASE_ADDRESS_1, 4, 0xffffffff);
	cfg_wr(&t, PCI_BASE_ADDRESS_4, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(&t, PCI_BASE_ADDRESS_0, 4), 0xffffc00c);
	CHECK_EQ(cfg_rd(&t, PCI_BASE_ADDRESS_1, 4), 0xffffffff);
	CHECK_EQ(cfg_rd(&t, PCI_BASE_ADDRESS_4, 4), 0xffffff01);
	tctx_fini(&t);
}

int main(void)
{
	RUN(test_rom);
	RUN(test_vga);
	RUN(test_full_layout);
	TEST_MAIN_END();
}
