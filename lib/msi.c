// SPDX-License-Identifier: BSD-3-Clause
/*
 * The MSI capability: 32- or 64-bit message address, optional per-vector
 * masking. The guest's Mask Bits hold triggers back in the Pending Bits;
 * unmasking sends them.
 */
#include <errno.h>

#include <linux/pci_regs.h>

#include "private.h"

static bool is64(const struct muser_msi *m)
{
	return m->flags & MUSER_MSI_64BIT;
}

static bool maskable(const struct muser_msi *m)
{
	return m->flags & MUSER_MSI_MASKABLE;
}

static unsigned int mask_reg(const struct muser_msi *m)
{
	return m->off + (is64(m) ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);
}

static unsigned int pending_reg(const struct muser_msi *m)
{
	return m->off + (is64(m) ? PCI_MSI_PENDING_64 : PCI_MSI_PENDING_32);
}

static unsigned int log2u(unsigned int x)
{
	unsigned int l = 0;

	while (x >>= 1)
		l++;
	return l;
}

/* Bits of the vectors the capability has. */
static uint32_t vec_bits(const struct muser_msi *m)
{
	return m->nvec == 32 ? 0xffffffff : (1u << m->nvec) - 1;
}

static void msi_init(struct muser_dev *dev, const struct muser_cap *cap)
{
	struct muser_msi *m = &dev->msi;
	uint16_t ctrl = log2u(m->nvec) << 1;

	if (is64(m))
		ctrl |= PCI_MSI_FLAGS_64BIT;
	if (maskable(m))
		ctrl |= PCI_MSI_FLAGS_MASKBIT;
	muser_cfg_reg(dev, cap->off + PCI_MSI_FLAGS, 2, ctrl,
		      PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE, 0);
	muser_cfg_reg(dev, cap->off + PCI_MSI_ADDRESS_LO, 4, 0, 0xfffffffc, 0);
	if (is64(m))
		muser_cfg_reg(dev, cap->off + PCI_MSI_ADDRESS_HI, 4, 0,
			      0xffffffff, 0);
	/* Message Data: 16 bits; no extended message data. */
	muser_cfg_reg(dev, cap->off + (is64(m) ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32),
		      2, 0, 0xffff, 0);
	if (maskable(m)) {
		muser_cfg_reg(dev, mask_reg(m), 4, 0, vec_bits(m), 0);
		muser_cfg_reg(dev, pending_reg(m), 4, 0, 0, 0);
	}
}

static uint32_t cur_mask(const struct muser_dev *dev)
{
	return maskable(&dev->msi) ? muser_cfg_get(dev, mask_reg(&dev->msi), 4) : 0;
}

static void msi_reset(struct muser_dev *dev, const struct muser_cap *cap)
{
	dev->msi.ctrl = muser_cfg_get(dev, cap->off + PCI_MSI_FLAGS, 2);
	dev->msi.mask = cur_mask(dev);
}

static int msi_written(struct muser_dev *dev, const struct muser_cap *cap)
{
	struct muser_msi *m = &dev->msi;
	unsigned int reg = cap->off + PCI_MSI_FLAGS, changed = 0, v;
	uint16_t ctrl = muser_cfg_get(dev, reg, 2);
	uint32_t mask, unmasked, pending;

	/* Multiple Message Enable above Multiple Message Capable: lowered. */
	if (((ctrl & PCI_MSI_FLAGS_QSIZE) >> 4) > ((ctrl & PCI_MSI_FLAGS_QMASK) >> 1)) {
		ctrl = (ctrl & ~PCI_MSI_FLAGS_QSIZE) | (ctrl & PCI_MSI_FLAGS_QMASK) << 3;
		muser_cfg_put(dev, reg, 2, ctrl);
	}
	if ((ctrl ^ m->ctrl) & (PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE))
		changed |= MUSER_IRQ_CHANGED_ENABLE;
	m->ctrl = ctrl;

	mask = cur_mask(dev);
	if (mask != m->mask)
		changed |= MUSER_IRQ_CHANGED_MASK;
	unmasked = m->mask & ~mask;
	m->mask = mask;
	if (unmasked) {
		pending = muser_cfg_get(dev, pending_reg(m), 4);
		muser_cfg_put(dev, pending_reg(m), 4, pending & ~unmasked);
		for (v = 0; v < m->nvec; v++)
			if (unmasked & pending & 1u << v)
				muser_irq_deliver(dev, VFIO_PCI_MSI_IRQ_INDEX, v);
	}
	if (changed)
		muser_irq_state_changed(dev, VFIO_PCI_MSI_IRQ_INDEX, changed);
	return 0;
}

static const struct muser_cap_ops msi_ops = {
	.init = msi_init,
	.reset = msi_reset,
	.written = msi_written,
};

/* A trigger of a masked vector: set its pending bit instead. */
bool muser_msi_hold(struct muser_dev *dev, unsigned int vector)
{
	const struct muser_msi *m = &dev->msi;

	if (!(cur_mask(dev) & 1u << vector))
		return false;
	muser_cfg_put(dev, pending_reg(m), 4,
		      muser_cfg_get(dev, pending_reg(m), 4) | 1u << vector);
	muser_dbg(dev, "MSI vector %u masked, pending", vector);
	return true;
}

int muser_msi_state(const struct muser_dev *dev, unsigned int vector)
{
	const struct muser_msi *m = &dev->msi;
	uint16_t ctrl = muser_cfg_get(dev, m->off + PCI_MSI_FLAGS, 2);
	int s = 0;

	if ((ctrl & PCI_MSI_FLAGS_ENABLE) &&
	    vector < 1u << ((ctrl & PCI_MSI_FLAGS_QSIZE) >> 4))
		s |= MUSER_IRQ_S_ENABLED;
	if (cur_mask(dev) & 1u << vector)
		s |= MUSER_IRQ_S_MASKED;
	if (maskable(m) && muser_cfg_get(dev, pending_reg(m), 4) & 1u << vector)
		s |= MUSER_IRQ_S_PENDING;
	return s;
}

MUSER_EXPORT int muser_add_cap_msi(struct muser_dev *dev, unsigned int nvec,
				   unsigned int flags)
{
	struct muser_cap *cap;

	if (muser_unrealized(dev))
		return -1;
	if (!nvec || nvec > 32 || (nvec & (nvec - 1)) ||
	    (flags & ~(MUSER_MSI_64BIT | MUSER_MSI_MASKABLE))) {
		errno = EINVAL;
		return -1;
	}
	if (dev->msi.off) {
		errno = EEXIST;
		return -1;
	}
	/* ID/next, control, address (2 dwords if 64-bit), data, mask, pending */
	cap = muser_cap_add(dev, PCI_CAP_ID_MSI,
			    (flags & MUSER_MSI_MASKABLE ? PCI_MSI_PENDING_32 + 4 :
							  PCI_MSI_DATA_32 + 2) +
			    (flags & MUSER_MSI_64BIT ? 4 : 0),
			    false, &msi_ops);
	if (!cap)
		return -1;
	dev->msi = (struct muser_msi){
		.off = cap->off, .nvec = nvec, .flags = flags,
	};
	return cap->off;
}
