// SPDX-License-Identifier: BSD-3-Clause
/*
 * Raising interrupts through the kernel, which signals the VMM's eventfd.
 */
#include <errno.h>

#include <linux/pci_regs.h>

#include "private.h"

MUSER_EXPORT int muser_irq_trigger(struct muser_dev *dev, unsigned int index,
				   unsigned int vector)
{
	struct muser_irq_trigger t = {
		.argsz = sizeof(t),
		.index = index,
		.start = vector,
		.count = 1,
	};

	if (!dev->realized || index >= MUSER_NUM_IRQS ||
	    vector >= dev->info.irqs[index].count) {
		errno = EINVAL;
		return -1;
	}
	if (index == VFIO_PCI_INTX_IRQ_INDEX &&
	    (muser_pcicfg_read16(dev, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE)) {
		muser_dbg(dev, "INTx disabled by the guest, not raised");
		return 0;
	}
	if (dev->io->ioctl(dev, MUSER_IOC_TRIGGER_IRQ, &t) < 0) {
		muser_dbg(dev, "trigger irq %u/%u failed: %d", index, vector, errno);
		return -1;
	}
	return 0;
}
