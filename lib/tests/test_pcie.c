// SPDX-License-Identifier: BSD-3-Clause
/*
 * The PCI Express capability: its registers for each endpoint type, the
 * error interrupt and 4 KiB config space it brings, function level reset
 * through Device Control (and resets' reasons), argument checks.
 */
#include <errno.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "test.h"
#include "test_util.h"

int test_failures;

#define CAP	0x40
#define DEVCAP	(CAP + PCI_EXP_DEVCAP)
#define DEVCTL	(CAP + PCI_EXP_DEVCTL)
#define DEVSTA	(CAP + PCI_EXP_DEVSTA)

/* Relaxed ordering, no snoop, 512-byte max read request. */
#define DEVCTL_INIT	0x2810

/* Counts calls: the capability's bytes must never reach it. */
static ssize_t cfg_cb(struct muser_dev *dev, void *priv, void *buf,
		      size_t count, uint64_t offset, bool is_write)
{
	(void)dev, (void)buf, (void)offset, (void)is_write;
	(*(unsigned int *)priv)++;
	return count;
}

static void test_pcie_regs(void)
{
	unsigned int cb_calls = 0;
	uint8_t cap[0x3c];
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_set_config_cb(t.dev, cfg_cb, &cb_calls), 0);
	CHECK_EQ(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, 0), CAP);
	CHECK_EQ(muser_add_cap_vendor(t.dev, NULL, 0, 0), CAP + 0x3c);
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.regions[CFG].size, 4096);
	CHECK_EQ(t.fk->info.irqs[VFIO_PCI_ERR_IRQ_INDEX].count, 1);
	CHECK_EQ(t.fk->info.irqs[VFIO_PCI_ERR_IRQ_INDEX].flags, VFIO_IRQ_INFO_EVENTFD);

	CHECK_EQ(treq(&t, CFG, CAP, cap, sizeof(cap), false), 0);
	CHECK_EQ(cb_calls, 0);
	CHECK_EQ(cfg_rd(&t, CAP, 4), 0x00027c10);	/* v2 endpoint, next 0x7c */
	CHECK_EQ(cfg_rd(&t, DEVCAP, 4), PCI_EXP_DEVCAP_RBER | PCI_EXP_DEVCAP_L0S |
					 PCI_EXP_DEVCAP_L1);
	CHECK_EQ(cfg_rd(&t, DEVCTL, 2), DEVCTL_INIT);
	cfg_wr(&t, DEVCTL, 2, 0xffff);			/* no FLR: bit 15 RO */
	CHECK_EQ(cfg_rd(&t, DEVCTL, 2), 0x78ff);
	cfg_wr(&t, DEVCTL, 2, 0);
	CHECK_EQ(cfg_rd(&t, DEVCTL, 2), 0);
	/* Device Status error bits are write-1-to-clear */
	t.dev->pcicfg.cfg[DEVSTA] = 0x3f;
	cfg_wr(&t, DEVSTA, 2, PCI_EXP_DEVSTA_CED | PCI_EXP_DEVSTA_FED | 0xffc0);
	CHECK_EQ(cfg_rd(&t, DEVSTA, 2), 0x3a);
	cfg_wr(&t, DEVSTA, 2, 0xffff);
	CHECK_EQ(cfg_rd(&t, DEVSTA, 2), 0x30);

	/* a 2.5 GT/s x1 link; ASPM, common clock, extended synch RW */
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKCAP, 4), 0x11);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKSTA, 2), 0x11);
	cfg_wr(&t, CAP + PCI_EXP_LNKCTL, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKCTL, 4), 0x001100c3);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKCAP2, 4), PCI_EXP_LNKCAP2_SLS_2_5GB);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKCTL2, 2), PCI_EXP_LNKCTL2_TLS_2_5GT);
	/* slot and root registers, DevCap2/DevCtl2: read-only 0 */
	cfg_wr(&t, CAP + PCI_EXP_SLTCAP, 4, 0xffffffff);
	cfg_wr(&t, CAP + PCI_EXP_DEVCTL2, 4, 0xffffffff);
	cfg_wr(&t, CAP + 0x38, 4, 0xffffffff);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_SLTCAP, 4), 0);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_DEVCTL2, 4), 0);
	CHECK_EQ(cfg_rd(&t, CAP + 0x38, 4), 0);
	CHECK_EQ(cb_calls, 0);

	CHECK_EQ(treset(&t), 0);
	CHECK_EQ(cfg_rd(&t, DEVCTL, 2), DEVCTL_INIT);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKCTL, 2), 0);
	tctx_fini(&t);
}

static void test_pcie_types(void)
{
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_add_cap_pcie(t.dev, MUSER_PCIE_RC_ENDPOINT, MUSER_PCIE_FLR), CAP);
	tctx_realize(&t);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_FLAGS, 2), 0x92);
	CHECK(cfg_rd(&t, DEVCAP, 4) & PCI_EXP_DEVCAP_FLR);
	/* no link */
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKCAP, 4), 0);
	cfg_wr(&t, CAP + PCI_EXP_LNKCTL, 2, 0xffff);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKCTL, 4), 0);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_LNKCAP2, 4), 0);
	tctx_fini(&t);

	tctx_init(&t);
	CHECK_EQ(muser_add_cap_pcie(t.dev, MUSER_PCIE_LEGACY_ENDPOINT, 0), CAP);
	tctx_realize(&t);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_EXP_FLAGS, 2), 0x12);
	tctx_fini(&t);

	tctx_init(&t);
	CHECK_ERR(muser_add_cap_pcie(t.dev, 4, 0), EINVAL);	/* root port */
	CHECK_ERR(muser_add_cap_pcie(t.dev, 2, 0), EINVAL);
	CHECK_ERR(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, 2), EINVAL);
	CHECK_EQ(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, 0), CAP);
	CHECK_ERR(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, 0), EEXIST);
	/* 256-byte config space on request: QEMU then sees conventional PCI */
	CHECK_EQ(muser_set_config_size(t.dev, 256), 0);
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.regions[CFG].size, 256);
	CHECK_EQ(treq(&t, CFG, 0x100, (uint8_t[4]){ 0 }, 4, false), EINVAL);
	tctx_fini(&t);
}

struct reset_log {
	unsigned int n;
	enum muser_reset_reason reason;
	uint16_t cmd_seen;	/* the command register during the callback */
	int fail_errno;
};

static int reset_cb(struct muser_dev *dev, void *priv,
		    enum muser_reset_reason reason)
{
	struct reset_log *l = priv;
	uint8_t cmd[2];

	l->n++;
	l->reason = reason;
	CHECK_EQ(muser_config_read(dev, cmd, 2, PCI_COMMAND), 0);
	l->cmd_seen = cmd[0] | cmd[1] << 8;
	if (l->fail_errno) {
		errno = l->fail_errno;
		return -1;
	}
	return 0;
}

static void test_flr(void)
{
	struct reset_log l = { 0 };
	struct tctx t;
	unsigned int msi;

	tctx_init(&t);
	CHECK_EQ(muser_setup_bar(t.dev, 0, 0x1000, MUSER_BAR_MEM32, NULL, NULL), 0);
	CHECK_EQ(muser_set_reset_cb(t.dev, reset_cb, &l), 0);
	CHECK_EQ(muser_add_cap_pcie(t.dev, MUSER_PCIE_ENDPOINT, MUSER_PCIE_FLR), CAP);
	msi = muser_add_cap_msi(t.dev, 1, MUSER_MSI_MASKABLE);
	CHECK_EQ(msi, CAP + 0x3c);
	tctx_realize(&t);
	CHECK(cfg_rd(&t, DEVCAP, 4) & PCI_EXP_DEVCAP_FLR);

	/* the guest programs the device */
	cfg_wr(&t, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	cfg_wr(&t, PCI_BASE_ADDRESS_0, 4, 0xfe000000);
	cfg_wr(&t, msi + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
	cfg_wr(&t, msi + PCI_MSI_MASK_32, 4, 1);
	CHECK_EQ(muser_irq_trigger(t.dev, VFIO_PCI_MSI_IRQ_INDEX, 0), 0);
	cfg_wr(&t, DEVCTL, 2, PCI_EXP_DEVCTL_CERE);
	CHECK_EQ(l.n, 0);

	/* Initiate FLR, in a dword write with Device Status */
	cfg_wr(&t, DEVCTL, 4, PCI_EXP_DEVCTL_BCR_FLR | PCI_EXP_DEVCTL_CERE);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.reason, MUSER_RESET_FLR);
	CHECK_EQ(l.cmd_seen, 0);		/* config reset before the callback */
	CHECK_EQ(cfg_rd(&t, DEVCTL, 2), DEVCTL_INIT);	/* FLR reads 0 */
	CHECK_EQ(cfg_rd(&t, PCI_COMMAND, 2), 0);
	CHECK_EQ(cfg_rd(&t, PCI_BASE_ADDRESS_0, 4), 0);
	CHECK_EQ(cfg_rd(&t, msi + PCI_MSI_FLAGS, 2), PCI_MSI_FLAGS_MASKBIT);
	CHECK_EQ(cfg_rd(&t, msi + PCI_MSI_MASK_32, 4), 0);
	CHECK_EQ(cfg_rd(&t, msi + PCI_MSI_PENDING_32, 4), 0);
	/* a write of 0 to the bit is no reset */
	cfg_wr(&t, DEVCTL, 2, 0);
	CHECK_EQ(l.n, 1);

	/* VMM resets say so */
	CHECK_EQ(treset(&t), 0);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(l.reason, MUSER_RESET_VFIO);

	/* a failing reset callback fails the config write */
	l.fail_errno = EIO;
	CHECK_EQ(treq(&t, CFG, DEVCTL, (uint16_t[]){ PCI_EXP_DEVCTL_BCR_FLR }, 2, true),
		 EIO);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(l.reason, MUSER_RESET_FLR);
	tctx_fini(&t);
}

int main(void)
{
	RUN(test_pcie_regs);
	RUN(test_pcie_types);
	RUN(test_flr);
	TEST_MAIN_END();
}
