// SPDX-License-Identifier: BSD-3-Clause
/*
 * Raising interrupts through the kernel, which signals the VMM's eventfd.
 * What the guest masked is held pending here (INTx in this file, MSI and
 * MSI-X in theirs) and sent when the guest unmasks it. Changes of the
 * guest's interrupt configuration are reported to the device.
 */
#include <errno.h>

#include <linux/pci_regs.h>

#include <string.h>

#include "private.h"

/* The device whose batch of requests this thread is serving, if any. */
static __thread struct muser_dev *batching;

/* Note @vector of @index to send after the batch: whether it was noted. */
static bool irq_coalesced(struct muser_dev *dev, unsigned int index,
			  unsigned int vector)
{
	if (!dev->irq_coalesce || batching != dev)
		return false;
	if (index == VFIO_PCI_MSI_IRQ_INDEX && vector < 32)
		dev->irq_owed_msi |= 1u << vector;
	else if (index == VFIO_PCI_MSIX_IRQ_INDEX &&
		 vector < MUSER_MSIX_MAX_VECTORS)
		dev->irq_owed_msix[vector / 64] |= 1ull << (vector % 64);
	else
		return false;
	return true;
}

static bool hold(struct muser_dev *dev, unsigned int index,
		 unsigned int vector);

/*
 * Send each of @bits, vectors @base + bit of @index, and clear them; one
 * the batch masked meanwhile is held pending instead. Whether one was.
 */
static bool irq_send_owed(struct muser_dev *dev, unsigned int index,
			  unsigned int base, uint64_t *bits)
{
	bool held = false;

	while (*bits) {
		unsigned int bit = __builtin_ctzll(*bits);

		*bits &= *bits - 1;
		if (hold(dev, index, base + bit))
			held = true;
		else
			(void)muser_irq_send(dev, index, base + bit);
	}
	return held;
}

void muser_irq_batch_begin(struct muser_dev *dev)
{
	batching = dev;
}

/* The batch's answers are out: send what it raised, once each. */
void muser_irq_batch_end(struct muser_dev *dev)
{
	uint64_t msi = dev->irq_owed_msi;
	bool held = false;
	unsigned int i;

	batching = NULL;
	dev->irq_owed_msi = 0;
	held |= irq_send_owed(dev, VFIO_PCI_MSI_IRQ_INDEX, 0, &msi);
	for (i = 0; i < MUSER_MSIX_MAX_VECTORS / 64; i++)
		held |= irq_send_owed(dev, VFIO_PCI_MSIX_IRQ_INDEX, 64 * i,
				      &dev->irq_owed_msix[i]);
	/* Pending bits survive a crash, as muser_irq_trigger() keeps them. */
	if (held)
		muser_state_save(dev);
}

MUSER_EXPORT int muser_set_irq_coalescing(struct muser_dev *dev, bool on)
{
	dev->irq_coalesce = on;
	return 0;
}

/*
 * Ask the kernel to signal one vector, or note it for the end of the
 * batch (muser_set_irq_coalescing()). Returns 0 or -1 with errno set.
 */
int muser_irq_send(struct muser_dev *dev, unsigned int index,
		   unsigned int vector)
{
	struct muser_irq_trigger t = {
		.argsz = sizeof(t),
		.index = index,
		.start = vector,
		.count = 1,
	};

	if (irq_coalesced(dev, index, vector))
		return 0;
	if (dev->io->ioctl(dev, MUSER_IOC_TRIGGER_IRQ, &t) < 0) {
		muser_dbg(dev, "trigger irq %u/%u failed: %d", index, vector, errno);
		return -1;
	}
	return 0;
}

/*
 * Send a vector the guest just unmasked. A failure (usually: the VMM has
 * no eventfd for it) is not the guest's config write's business.
 */
void muser_irq_deliver(struct muser_dev *dev, unsigned int index,
		       unsigned int vector)
{
	muser_dbg(dev, "irq %u/%u unmasked, sending the pending interrupt",
		  index, vector);
	(void)muser_irq_send(dev, index, vector);
}

/*
 * Tell the device that the guest's (or, from muser.ko's notifications,
 * the VMM's) interrupt configuration of @index changed: @changed is
 * MUSER_IRQ_CHANGED_* bits.
 */
void muser_irq_state_changed(struct muser_dev *dev, unsigned int index,
			     unsigned int changed)
{
	muser_dbg(dev, "irq %u: state changed (%#x)", index, changed);
	if (dev->irq_state_cb)
		dev->irq_state_cb(dev, dev->irq_state_priv, index, changed);
}

/* muser.ko says the VMM changed its interrupt setup (SET_IRQS). */
void muser_irq_vmm_changed(struct muser_dev *dev)
{
	if (dev->irq_pin)
		muser_irq_state_changed(dev, VFIO_PCI_INTX_IRQ_INDEX,
					MUSER_IRQ_CHANGED_VMM);
	if (dev->msi.off)
		muser_irq_state_changed(dev, VFIO_PCI_MSI_IRQ_INDEX,
					MUSER_IRQ_CHANGED_VMM);
	if (dev->msix.off)
		muser_irq_state_changed(dev, VFIO_PCI_MSIX_IRQ_INDEX,
					MUSER_IRQ_CHANGED_VMM);
}

MUSER_EXPORT int muser_irq_vmm_state(struct muser_dev *dev, unsigned int index,
				     struct muser_irq_state *state)
{
	memset(state, 0, sizeof(*state));
	state->argsz = sizeof(*state);
	state->index = index;
	return dev->io->ioctl(dev, MUSER_IOC_GET_IRQ_STATE, state);
}

static bool intx_disabled(const struct muser_dev *dev)
{
	return muser_cfg_get(dev, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE;
}

static void set_intx_status(struct muser_dev *dev, bool on)
{
	uint16_t status = muser_cfg_get(dev, PCI_STATUS, 2);

	status = on ? status | PCI_STATUS_INTERRUPT :
		      status & ~PCI_STATUS_INTERRUPT;
	muser_cfg_put(dev, PCI_STATUS, 2, status);
}

void muser_intx_reset(struct muser_dev *dev)
{
	dev->intx_disabled = intx_disabled(dev);
	dev->intx_held = false;
}

/* The guest wrote the command register. */
void muser_intx_written(struct muser_dev *dev)
{
	bool disabled = intx_disabled(dev);

	if (disabled == dev->intx_disabled)
		return;
	dev->intx_disabled = disabled;
	if (!dev->info.irqs[VFIO_PCI_INTX_IRQ_INDEX].count)
		return;
	if (!disabled && dev->intx_held) {
		dev->intx_held = false;
		muser_irq_deliver(dev, VFIO_PCI_INTX_IRQ_INDEX, 0);
	}
	muser_irq_state_changed(dev, VFIO_PCI_INTX_IRQ_INDEX,
				MUSER_IRQ_CHANGED_ENABLE);
}

static int check_vector(const struct muser_dev *dev, unsigned int index,
			unsigned int vector)
{
	if (!dev->realized || index >= MUSER_NUM_IRQS ||
	    vector >= dev->info.irqs[index].count) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Whether the vector is held rather than sent (state to save). */
static bool hold(struct muser_dev *dev, unsigned int index,
		 unsigned int vector)
{
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		set_intx_status(dev, true);
		if (intx_disabled(dev)) {
			muser_dbg(dev, "INTx disabled by the guest, held");
			dev->intx_held = true;
			return true;
		}
		return false;
	case VFIO_PCI_MSI_IRQ_INDEX:
		return muser_msi_hold(dev, vector);
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return muser_msix_hold(dev, vector);
	}
	return false;
}

MUSER_EXPORT int muser_irq_trigger(struct muser_dev *dev, unsigned int index,
				   unsigned int vector)
{
	bool held;

	if (check_vector(dev, index, vector))
		return -1;
	held = hold(dev, index, vector);
	/* Pending bits and INTx status survive a crash from here on. */
	if (held || index == VFIO_PCI_INTX_IRQ_INDEX)
		muser_state_save(dev);
	return held ? 0 : muser_irq_send(dev, index, vector);
}

MUSER_EXPORT int muser_irq_intx_deassert(struct muser_dev *dev)
{
	if (check_vector(dev, VFIO_PCI_INTX_IRQ_INDEX, 0))
		return -1;
	set_intx_status(dev, false);
	dev->intx_held = false;
	muser_state_save(dev);
	return 0;
}

MUSER_EXPORT int muser_irq_guest_state(const struct muser_dev *dev,
				       unsigned int index, unsigned int vector)
{
	if (check_vector(dev, index, vector))
		return -1;
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		if (intx_disabled(dev))
			return MUSER_IRQ_S_MASKED |
			       (dev->intx_held ? MUSER_IRQ_S_PENDING : 0);
		return MUSER_IRQ_S_ENABLED;
	case VFIO_PCI_MSI_IRQ_INDEX:
		return muser_msi_state(dev, vector);
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return muser_msix_state(dev, vector);
	default:
		errno = EINVAL;
		return -1;
	}
}
