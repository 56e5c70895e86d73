// SPDX-License-Identifier: BSD-3-Clause
/*
 * The power management capability: PowerState read-write among the states
 * the device supports, No_Soft_Reset set, no PME.
 */
#include <errno.h>

#include <linux/pci_regs.h>

#include "private.h"

#define PM_VERSION	3	/* PCI Power Management 1.2 */

static bool supported(const struct muser_dev *dev, unsigned int state)
{
	switch (state) {
	case 1:
		return dev->pm_flags & MUSER_PM_D1;
	case 2:
		return dev->pm_flags & MUSER_PM_D2;
	default:	/* D0, D3hot */
		return true;
	}
}

static void pm_init(struct muser_dev *dev, const struct muser_cap *cap)
{
	uint16_t pmc = PM_VERSION;

	if (dev->pm_flags & MUSER_PM_D1)
		pmc |= PCI_PM_CAP_D1;
	if (dev->pm_flags & MUSER_PM_D2)
		pmc |= PCI_PM_CAP_D2;
	muser_cfg_reg(dev, cap->off + PCI_PM_PMC, 2, pmc, 0, 0);
	muser_cfg_reg(dev, cap->off + PCI_PM_CTRL, 2, PCI_PM_CTRL_NO_SOFT_RESET,
		      PCI_PM_CTRL_STATE_MASK, 0);
	/* PMCSR_BSE and Data: read-only 0 */
	muser_cfg_reg(dev, cap->off + PCI_PM_PPB_EXTENSIONS, 2, 0, 0, 0);
}

static void pm_reset(struct muser_dev *dev, const struct muser_cap *cap)
{
	(void)cap;
	dev->pm_state = 0;	/* D0 */
}

/* A write of an unsupported state is ignored: the old one stays. */
static int pm_written(struct muser_dev *dev, const struct muser_cap *cap)
{
	unsigned int reg = cap->off + PCI_PM_CTRL;
	uint16_t csr = muser_cfg_get(dev, reg, 2);
	unsigned int state = csr & PCI_PM_CTRL_STATE_MASK;

	if (!supported(dev, state)) {
		muser_cfg_put(dev, reg, 2,
			      (csr & ~PCI_PM_CTRL_STATE_MASK) | dev->pm_state);
		return 0;
	}
	if (state != dev->pm_state)
		muser_dbg(dev, "power state D%u -> D%u", dev->pm_state, state);
	dev->pm_state = state;
	return 0;
}

static const struct muser_cap_ops pm_ops = {
	.init = pm_init,
	.reset = pm_reset,
	.written = pm_written,
};

MUSER_EXPORT int muser_add_cap_pm(struct muser_dev *dev, unsigned int flags)
{
	struct muser_cap *cap;

	if (muser_unrealized(dev))
		return -1;
	if (flags & ~(MUSER_PM_D1 | MUSER_PM_D2)) {
		errno = EINVAL;
		return -1;
	}
	if (dev->pm_off) {
		errno = EEXIST;
		return -1;
	}
	cap = muser_cap_add(dev, PCI_CAP_ID_PM, PCI_PM_SIZEOF, false, &pm_ops);
	if (!cap)
		return -1;
	dev->pm_off = cap->off;
	dev->pm_flags = flags;
	return cap->off;
}
