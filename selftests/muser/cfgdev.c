// SPDX-License-Identifier: GPL-2.0
/*
 * cfgdev: the libmuser emulator that config_space.c tests config space
 * against. It has a bit of everything libmuser emulates in config space:
 *
 *   BAR0/1  64-bit prefetchable memory, 16 KiB: MSI-X table at 0x2000,
 *           PBA at 0x3000, zeros elsewhere
 *   BAR2    32-bit memory, 4 KiB: the registers below
 *   BAR3    I/O, 32 bytes, zeros
 *   ROM     64 KiB, zeros
 *   INTA, PM, MSI (4 vectors, 64-bit, maskable), MSI-X (8 vectors),
 *   PCIe endpoint (with FLR unless --no-flr), DSN, vendor-specific
 *   extended capability; config space 4 KiB. The bytes no capability owns
 *   go to a config callback: plain read-write memory, zero at reset.
 *
 * BAR2 registers (32-bit, little-endian; other accesses read 0):
 *   0x00 CFGDEV_MAGIC
 *   0x04 resets with MUSER_RESET_VFIO          (read-only)
 *   0x08 resets with MUSER_RESET_FLR           (read-only)
 *   0x0c reason of the last reset, ~0 if none  (read-only)
 *   0x10 the command register as the last reset callback saw it
 *   0x14 calls of the config callback          (read-only)
 *   0x18 write an action: CFGDEV_INTX (muser_irq_trigger of INTx),
 *        CFGDEV_INTX_DEASSERT, CFGDEV_MSI | vector, CFGDEV_MSIX | vector
 *   0x1c errno of the last action, 0 if it succeeded
 *
 *   cfgdev [--no-flr] UUID     prints "ready" once realized
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <muser.h>

#include "cfgdev.h"

static struct muser_dev *dev;
static uint32_t regs[CFGDEV_NR_REGS];
static uint8_t devcfg[MUSER_CONFIG_SIZE_PCIE];

static ssize_t regs_access(struct muser_dev *d, void *priv, void *buf,
			   size_t count, uint64_t offset, bool is_write)
{
	uint32_t v;
	int ret;

	(void)d;
	(void)priv;
	if (count != 4 || offset % 4 || offset >= sizeof(regs))
		return count;	/* reads as zeros, ignores writes */
	if (!is_write) {
		memcpy(buf, &regs[offset / 4], 4);
		return count;
	}
	if (offset != CFGDEV_ACTION)
		return count;
	memcpy(&v, buf, 4);
	switch (v & CFGDEV_ACTION_MASK) {
	case CFGDEV_INTX:
		ret = muser_irq_trigger(dev, VFIO_PCI_INTX_IRQ_INDEX, 0);
		break;
	case CFGDEV_INTX_DEASSERT:
		ret = muser_irq_intx_deassert(dev);
		break;
	case CFGDEV_MSI:
		ret = muser_irq_trigger(dev, VFIO_PCI_MSI_IRQ_INDEX,
					v & ~CFGDEV_ACTION_MASK);
		break;
	case CFGDEV_MSIX:
		ret = muser_irq_trigger(dev, VFIO_PCI_MSIX_IRQ_INDEX,
					v & ~CFGDEV_ACTION_MASK);
		break;
	default:
		ret = -1;
		errno = EINVAL;
		break;
	}
	regs[CFGDEV_ERRNO / 4] = ret < 0 ? errno : 0;
	return count;
}

static ssize_t config_access(struct muser_dev *d, void *priv, void *buf,
			     size_t count, uint64_t offset, bool is_write)
{
	(void)d;
	(void)priv;
	regs[CFGDEV_CFG_CALLS / 4]++;
	if (offset > sizeof(devcfg) || count > sizeof(devcfg) - offset) {
		errno = EINVAL;
		return -1;
	}
	if (is_write)
		memcpy(&devcfg[offset], buf, count);
	else
		memcpy(buf, &devcfg[offset], count);
	return count;
}

static int reset(struct muser_dev *d, void *priv,
		 enum muser_reset_reason reason)
{
	uint16_t cmd = 0xffff;

	(void)priv;
	if (reason == MUSER_RESET_FLR)
		regs[CFGDEV_FLRS / 4]++;
	else
		regs[CFGDEV_RESETS / 4]++;
	regs[CFGDEV_LAST_REASON / 4] = reason;
	if (muser_config_read(d, &cmd, sizeof(cmd), 4) < 0)
		return -1;
	regs[CFGDEV_RESET_CMD / 4] = cmd;
	memset(devcfg, 0, sizeof(devcfg));
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	muser_stop(dev);
}

#define TRY(call) do {							\
	if ((call) < 0) {						\
		fprintf(stderr, "cfgdev: %s: %s\n", #call,		\
			strerror(errno));				\
		return EXIT_FAILURE;					\
	}								\
} while (0)

int main(int argc, char *argv[])
{
	static const uint8_t vsec[CFGDEV_VSEC_LEN] = { 0xc0, 0xff, 0xee, 0x42 };
	struct sigaction sa = { .sa_handler = on_signal };
	bool flr = true;

	if (argc == 3 && !strcmp(argv[1], "--no-flr"))
		flr = false;
	else if (argc != 2) {
		fprintf(stderr, "usage: %s [--no-flr] UUID\n", argv[0]);
		return EXIT_FAILURE;
	}
	regs[0] = CFGDEV_MAGIC;
	regs[CFGDEV_LAST_REASON / 4] = ~0u;
	regs[CFGDEV_RESET_CMD / 4] = ~0u;

	dev = muser_dev_create(argv[argc - 1], 0);
	if (!dev) {
		perror("cfgdev: muser_dev_create");
		return EXIT_FAILURE;
	}
	TRY(muser_pci_set_ids(dev, CFGDEV_VENDOR, CFGDEV_DEVICE,
			      CFGDEV_SUBSYS_VENDOR, CFGDEV_SUBSYS_ID));
	TRY(muser_pci_set_class(dev, CFGDEV_CLASS));
	TRY(muser_pci_set_revision(dev, CFGDEV_REVISION));
	TRY(muser_pci_set_irq_pin(dev, 1));
	TRY(muser_setup_bar(dev, 0, CFGDEV_BAR0_SIZE,
			    MUSER_BAR_MEM64 | MUSER_BAR_PREFETCH, NULL, NULL));
	TRY(muser_setup_bar(dev, 2, CFGDEV_BAR2_SIZE, MUSER_BAR_MEM32,
			    regs_access, NULL));
	TRY(muser_setup_bar(dev, 3, CFGDEV_BAR3_SIZE, MUSER_BAR_IO, NULL, NULL));
	TRY(muser_setup_rom(dev, CFGDEV_ROM_SIZE, NULL, NULL));
	TRY(muser_add_cap_pm(dev, 0));
	TRY(muser_add_cap_msi(dev, CFGDEV_MSI_NVEC,
			      MUSER_MSI_64BIT | MUSER_MSI_MASKABLE));
	TRY(muser_add_cap_msix(dev, CFGDEV_MSIX_NVEC, 0, CFGDEV_MSIX_TABLE, 0,
			       CFGDEV_MSIX_PBA));
	TRY(muser_add_cap_pcie(dev, MUSER_PCIE_ENDPOINT,
			       flr ? MUSER_PCIE_FLR : 0));
	TRY(muser_add_ext_cap_dsn(dev, CFGDEV_DSN));
	TRY(muser_add_ext_cap_vendor(dev, CFGDEV_VSEC_ID, CFGDEV_VSEC_REV,
				     vsec, sizeof(vsec), 0));
	TRY(muser_set_config_cb(dev, config_access, NULL));
	TRY(muser_set_reset_cb(dev, reset, NULL));
	TRY(muser_realize(dev));

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
		perror("cfgdev: sigaction");
		return EXIT_FAILURE;
	}
	printf("ready\n");
	fflush(stdout);
	TRY(muser_run(dev));
	muser_dev_destroy(dev);
	return EXIT_SUCCESS;
}
