// SPDX-License-Identifier: BSD-3-Clause
/*
 * The PCI Express capability (version 2) of an endpoint: plausible fixed
 * values for a 2.5 GT/s x1 link, the usual read-write control bits, and
 * function level reset.
 */
#include <errno.h>

#include <linux/pci_regs.h>

#include "private.h"

#define PCIE_CAP_LEN	0x3c	/* version 2, through Slot Status 2 */
#define PCIE_VERSION	2

/* L0s and L1 acceptable latency: no limit. */
#define DEVCAP_LAT	(PCI_EXP_DEVCAP_L0S | PCI_EXP_DEVCAP_L1)
#define DEVCTL_WMASK	(PCI_EXP_DEVCTL_CERE | PCI_EXP_DEVCTL_NFERE | \
			 PCI_EXP_DEVCTL_FERE | PCI_EXP_DEVCTL_URRE | \
			 PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_PAYLOAD | \
			 PCI_EXP_DEVCTL_NOSNOOP_EN | PCI_EXP_DEVCTL_READRQ)
#define DEVCTL_INIT	(PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_NOSNOOP_EN | \
			 PCI_EXP_DEVCTL_READRQ_512B)
#define DEVSTA_W1C	(PCI_EXP_DEVSTA_CED | PCI_EXP_DEVSTA_NFED | \
			 PCI_EXP_DEVSTA_FED | PCI_EXP_DEVSTA_URD)
#define LNKCTL_WMASK	(PCI_EXP_LNKCTL_ASPMC | PCI_EXP_LNKCTL_CCC | \
			 PCI_EXP_LNKCTL_ES)
#define LINK_X1_2_5GT	(PCI_EXP_LNKSTA_CLS_2_5GB | PCI_EXP_LNKSTA_NLW_X1)

static bool has_flr(const struct muser_dev *dev)
{
	return dev->pcie_flags & MUSER_PCIE_FLR;
}

static void pcie_init(struct muser_dev *dev, const struct muser_cap *cap)
{
	unsigned int o = cap->off;
	uint32_t devcap = DEVCAP_LAT | PCI_EXP_DEVCAP_RBER;
	uint16_t devctl_wmask = DEVCTL_WMASK;

	if (has_flr(dev)) {
		devcap |= PCI_EXP_DEVCAP_FLR;
		devctl_wmask |= PCI_EXP_DEVCTL_BCR_FLR;
	}
	muser_cfg_reg(dev, o + PCI_EXP_FLAGS, 2,
		      PCIE_VERSION | dev->pcie_type << 4, 0, 0);
	muser_cfg_reg(dev, o + PCI_EXP_DEVCAP, 4, devcap, 0, 0);
	muser_cfg_reg(dev, o + PCI_EXP_DEVCTL, 2, DEVCTL_INIT, devctl_wmask, 0);
	muser_cfg_reg(dev, o + PCI_EXP_DEVSTA, 2, 0, 0, DEVSTA_W1C);
	/* Everything else reads 0 unless set below, and is read-only. */
	if (dev->pcie_type != MUSER_PCIE_RC_ENDPOINT) {
		muser_cfg_reg(dev, o + PCI_EXP_LNKCAP, 4, LINK_X1_2_5GT, 0, 0);
		muser_cfg_reg(dev, o + PCI_EXP_LNKCTL, 2, 0, LNKCTL_WMASK, 0);
		muser_cfg_reg(dev, o + PCI_EXP_LNKSTA, 2, LINK_X1_2_5GT, 0, 0);
		muser_cfg_reg(dev, o + PCI_EXP_LNKCAP2, 4,
			      PCI_EXP_LNKCAP2_SLS_2_5GB, 0, 0);
		muser_cfg_reg(dev, o + PCI_EXP_LNKCTL2, 2,
			      PCI_EXP_LNKCTL2_TLS_2_5GT, 0, 0);
	}
}

/* Initiate Function Level Reset: the reset leaves it 0, as it always reads. */
static int pcie_written(struct muser_dev *dev, const struct muser_cap *cap)
{
	if (!(muser_cfg_get(dev, cap->off + PCI_EXP_DEVCTL, 2) &
	      PCI_EXP_DEVCTL_BCR_FLR))
		return 0;
	muser_info(dev, "function level reset");
	return muser_reset(dev, MUSER_RESET_FLR);
}

static const struct muser_cap_ops pcie_ops = {
	.init = pcie_init,
	.written = pcie_written,
};

MUSER_EXPORT int muser_add_cap_pcie(struct muser_dev *dev, unsigned int type,
				    unsigned int flags)
{
	struct muser_cap *cap;

	if (muser_unrealized(dev))
		return -1;
	if ((type != MUSER_PCIE_ENDPOINT && type != MUSER_PCIE_LEGACY_ENDPOINT &&
	     type != MUSER_PCIE_RC_ENDPOINT) || (flags & ~MUSER_PCIE_FLR)) {
		errno = EINVAL;
		return -1;
	}
	if (dev->pcie_off) {
		errno = EEXIST;
		return -1;
	}
	cap = muser_cap_add(dev, PCI_CAP_ID_EXP, PCIE_CAP_LEN, false, &pcie_ops);
	if (!cap)
		return -1;
	dev->pcie_off = cap->off;
	dev->pcie_type = type;
	dev->pcie_flags = flags;
	return cap->off;
}
