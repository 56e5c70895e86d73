// SPDX-License-Identifier: BSD-3-Clause
/*
 * The device layout sent with MUSER_IOC_ATTACH, derived from the device
 * description: which regions exist and how large, which interrupts.
 */
#include <string.h>

#include "private.h"

#define REGION_RW	(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)

void muser_build_device_info(const struct muser_dev *dev,
			     struct muser_device_info *info)
{
	int i;

	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->version = MUSER_API_VERSION;
	info->flags = MUSER_DEV_F_RESET;
	info->num_regions = MUSER_NUM_REGIONS;
	info->num_irqs = MUSER_NUM_IRQS;

	/* BARs; the upper half of a 64-bit BAR stays size 0. */
	for (i = 0; i < MUSER_NUM_BARS; i++) {
		const struct muser_bar *b = &dev->bars[i];

		if (!b->size || b->upper)
			continue;
		info->regions[VFIO_PCI_BAR0_REGION_INDEX + i].flags = REGION_RW |
			(b->flags & MUSER_BAR_POSTED_WRITES ?
			 MUSER_REGION_F_POSTED_WRITES : 0);
		info->regions[VFIO_PCI_BAR0_REGION_INDEX + i].size = b->size;
	}
	if (dev->rom.size) {
		info->regions[VFIO_PCI_ROM_REGION_INDEX].flags =
			VFIO_REGION_INFO_FLAG_READ;
		info->regions[VFIO_PCI_ROM_REGION_INDEX].size = dev->rom.size;
	}
	info->regions[VFIO_PCI_CONFIG_REGION_INDEX].flags = REGION_RW;
	info->regions[VFIO_PCI_CONFIG_REGION_INDEX].size = muser_config_size(dev);
	if (dev->vga.size) {
		info->regions[VFIO_PCI_VGA_REGION_INDEX].flags = REGION_RW;
		info->regions[VFIO_PCI_VGA_REGION_INDEX].size = dev->vga.size;
	}

	if (dev->irq_pin) {
		info->irqs[VFIO_PCI_INTX_IRQ_INDEX].flags =
			VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
			VFIO_IRQ_INFO_AUTOMASKED;
		info->irqs[VFIO_PCI_INTX_IRQ_INDEX].count = 1;
	}
	/* Vectors as vfio-pci reports them: a fixed number per index. */
	if (dev->msi.off) {
		info->irqs[VFIO_PCI_MSI_IRQ_INDEX].flags =
			VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE;
		info->irqs[VFIO_PCI_MSI_IRQ_INDEX].count = dev->msi.nvec;
	}
	if (dev->msix.off) {
		info->irqs[VFIO_PCI_MSIX_IRQ_INDEX].flags =
			VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE;
		info->irqs[VFIO_PCI_MSIX_IRQ_INDEX].count = dev->msix.nvec;
	}
	/* PCI Express: the error interrupt, for QEMU's error recovery. */
	if (dev->pcie_off) {
		info->irqs[VFIO_PCI_ERR_IRQ_INDEX].flags = VFIO_IRQ_INFO_EVENTFD;
		info->irqs[VFIO_PCI_ERR_IRQ_INDEX].count = 1;
	}
	/* REQ is provided by the kernel. */

	info->num_mmap_areas = dev->nr_mmap_areas;
	memcpy(info->mmap_areas, dev->mmap_areas,
	       dev->nr_mmap_areas * sizeof(dev->mmap_areas[0]));
	muser_mig_layout(dev, info);
}
