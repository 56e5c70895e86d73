// SPDX-License-Identifier: BSD-3-Clause
/*
 * Describing the device before it is realized: PCI IDs, BARs, the ROM and
 * VGA regions, config space size, callbacks.
 */
#include <errno.h>

#include "private.h"

#define BAR_TYPES	(MUSER_BAR_MEM32 | MUSER_BAR_MEM64 | MUSER_BAR_IO)
#define BAR_FLAGS	(BAR_TYPES | MUSER_BAR_PREFETCH | MUSER_BAR_POSTED_WRITES)

/* 0 before muser_realize(); afterwards -1 with errno EBUSY. */
int muser_unrealized(const struct muser_dev *dev)
{
	if (dev->realized) {
		errno = EBUSY;
		return -1;
	}
	return 0;
}

MUSER_EXPORT int muser_pci_set_ids(struct muser_dev *dev, uint16_t vendor,
				   uint16_t device, uint16_t subsys_vendor,
				   uint16_t subsys_id)
{
	if (muser_unrealized(dev))
		return -1;
	if (vendor == 0 || vendor == 0xffff) {
		errno = EINVAL;
		return -1;
	}
	dev->vendor = vendor;
	dev->device = device;
	dev->subsys_vendor = subsys_vendor;
	dev->subsys_id = subsys_id;
	return 0;
}

MUSER_EXPORT int muser_pci_set_class(struct muser_dev *dev,
				     uint32_t class_code)
{
	if (muser_unrealized(dev))
		return -1;
	if (class_code > 0xffffff) {
		errno = EINVAL;
		return -1;
	}
	dev->class_code = class_code;
	return 0;
}

MUSER_EXPORT int muser_pci_set_revision(struct muser_dev *dev,
					uint8_t revision)
{
	if (muser_unrealized(dev))
		return -1;
	dev->revision = revision;
	return 0;
}

MUSER_EXPORT int muser_pci_set_irq_pin(struct muser_dev *dev, uint8_t pin)
{
	if (muser_unrealized(dev))
		return -1;
	if (pin > 4) {
		errno = EINVAL;
		return -1;
	}
	dev->irq_pin = pin;
	return 0;
}

static bool bar_size_ok(uint64_t size, unsigned int type)
{
	if (size == 0 || (size & (size - 1)))
		return false;
	switch (type) {
	case MUSER_BAR_IO:
		return size >= 4 && size <= 256;
	case MUSER_BAR_MEM32:
		return size >= 16 && size <= (1ull << 31);
	default:
		return size >= 16;
	}
}

MUSER_EXPORT int muser_setup_bar(struct muser_dev *dev, int bar,
				 uint64_t size, unsigned int flags,
				 muser_region_access_cb cb, void *priv)
{
	unsigned int type = flags & BAR_TYPES;
	bool is64 = type == MUSER_BAR_MEM64;

	if (muser_unrealized(dev))
		return -1;
	if (bar < 0 || bar >= MUSER_NUM_BARS || (is64 && bar == MUSER_NUM_BARS - 1) ||
	    (flags & ~BAR_FLAGS) || (type & (type - 1)) || !type ||
	    (type == MUSER_BAR_IO &&
	     (flags & (MUSER_BAR_PREFETCH | MUSER_BAR_POSTED_WRITES))) ||
	    !bar_size_ok(size, type)) {
		errno = EINVAL;
		return -1;
	}
	if (dev->bars[bar].size || (is64 && dev->bars[bar + 1].size)) {
		errno = EEXIST;
		return -1;
	}
	dev->bars[bar] = (struct muser_bar){
		.size = size, .flags = flags, .cb = cb, .priv = priv,
	};
	if (is64)
		dev->bars[bar + 1] = (struct muser_bar){
			.size = size, .flags = flags, .upper = true,
		};
	return 0;
}

MUSER_EXPORT int muser_set_config_cb(struct muser_dev *dev,
				     muser_region_access_cb cb, void *priv)
{
	if (muser_unrealized(dev))
		return -1;
	dev->cfg_cb = cb;
	dev->cfg_priv = priv;
	return 0;
}

MUSER_EXPORT int muser_set_reset_cb(struct muser_dev *dev, muser_reset_cb cb,
				    void *priv)
{
	if (muser_unrealized(dev))
		return -1;
	dev->reset_cb = cb;
	dev->reset_priv = priv;
	return 0;
}

MUSER_EXPORT int muser_set_irq_state_cb(struct muser_dev *dev,
					muser_irq_state_cb cb, void *priv)
{
	if (muser_unrealized(dev))
		return -1;
	dev->irq_state_cb = cb;
	dev->irq_state_priv = priv;
	return 0;
}

MUSER_EXPORT int muser_setup_rom(struct muser_dev *dev, uint64_t size,
				 muser_region_access_cb cb, void *priv)
{
	if (muser_unrealized(dev))
		return -1;
	if (size < 0x800 || size > 0x1000000 || (size & (size - 1))) {
		errno = EINVAL;
		return -1;
	}
	if (dev->rom.size) {
		errno = EEXIST;
		return -1;
	}
	dev->rom = (struct muser_bar){ .size = size, .cb = cb, .priv = priv };
	return 0;
}

MUSER_EXPORT int muser_setup_vga(struct muser_dev *dev,
				 muser_region_access_cb cb, void *priv)
{
	if (muser_unrealized(dev))
		return -1;
	if (!cb) {
		errno = EINVAL;
		return -1;
	}
	if (dev->vga.size) {
		errno = EEXIST;
		return -1;
	}
	dev->vga = (struct muser_bar){
		.size = MUSER_VGA_SIZE, .cb = cb, .priv = priv,
	};
	return 0;
}

static bool has_ext_caps(const struct muser_dev *dev)
{
	unsigned int i;

	for (i = 0; i < dev->ncaps; i++)
		if (dev->caps[i].ext)
			return true;
	return false;
}

MUSER_EXPORT int muser_set_config_size(struct muser_dev *dev,
				       unsigned int size)
{
	if (muser_unrealized(dev))
		return -1;
	if ((size != MUSER_CONFIG_SIZE && size != MUSER_CONFIG_SIZE_PCIE) ||
	    (size == MUSER_CONFIG_SIZE && has_ext_caps(dev))) {
		errno = EINVAL;
		return -1;
	}
	dev->config_size = size;
	return 0;
}

/* The size chosen, or 4 KiB for PCI Express and extended capabilities. */
unsigned int muser_config_size(const struct muser_dev *dev)
{
	if (dev->config_size)
		return dev->config_size;
	if (dev->pcie_off || has_ext_caps(dev))
		return MUSER_CONFIG_SIZE_PCIE;
	return MUSER_CONFIG_SIZE;
}
