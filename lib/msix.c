// SPDX-License-Identifier: BSD-3-Clause
/*
 * The MSI-X capability, and its table and Pending Bit Array, which live in
 * the device's BARs: the library traps those ranges (region.c splits BAR
 * accesses around them) and emulates them here. The Function Mask and the
 * vectors' Mask bits hold triggers back in the PBA; unmasking sends them.
 *
 * QEMU emulates the table itself and never forwards table accesses, while
 * its guest's writes to the capability (Enable, Function Mask) do reach us.
 * So the table's Mask bits, all set at reset, count only once the VMM has
 * written the table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "private.h"

#define MSIX_CAP_LEN	12
#define ENTRY_SIZE	PCI_MSIX_ENTRY_SIZE

static size_t table_len(const struct muser_msix *x)
{
	return (size_t)x->nvec * ENTRY_SIZE;
}

static size_t pba_len(const struct muser_msix *x)
{
	return (x->nvec + 63) / 64 * 8;
}

static bool pending(const struct muser_msix *x, unsigned int v)
{
	return x->pba[v / 8] & 1u << (v % 8);
}

static void set_pending(struct muser_msix *x, unsigned int v, bool on)
{
	if (on)
		x->pba[v / 8] |= 1u << (v % 8);
	else
		x->pba[v / 8] &= ~(1u << (v % 8));
}

static uint8_t *vector_ctrl(const struct muser_msix *x, unsigned int v)
{
	return &x->table[v * ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL];
}

static bool vector_masked(const struct muser_msix *x, unsigned int v)
{
	return x->table_written && (*vector_ctrl(x, v) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static bool function_masked(const struct muser_dev *dev)
{
	return muser_cfg_get(dev, dev->msix.off + PCI_MSIX_FLAGS, 2) &
	       PCI_MSIX_FLAGS_MASKALL;
}

static void msix_init(struct muser_dev *dev, const struct muser_cap *cap)
{
	const struct muser_msix *x = &dev->msix;

	muser_cfg_reg(dev, cap->off + PCI_MSIX_FLAGS, 2, x->nvec - 1,
		      PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 0);
	muser_cfg_reg(dev, cap->off + PCI_MSIX_TABLE, 4,
		      (uint32_t)x->table_off | x->table_bar, 0, 0);
	muser_cfg_reg(dev, cap->off + PCI_MSIX_PBA, 4,
		      (uint32_t)x->pba_off | x->pba_bar, 0, 0);
}

/* Every vector masked, nothing pending. */
static void msix_reset(struct muser_dev *dev, const struct muser_cap *cap)
{
	struct muser_msix *x = &dev->msix;
	unsigned int v;

	memset(x->table, 0, table_len(x));
	for (v = 0; v < x->nvec; v++)
		*vector_ctrl(x, v) = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	memset(x->pba, 0, pba_len(x));
	x->table_written = false;
	x->ctrl = muser_cfg_get(dev, cap->off + PCI_MSIX_FLAGS, 2);
}

/* Send what is pending and no longer masked. */
static void deliver_unmasked(struct muser_dev *dev)
{
	struct muser_msix *x = &dev->msix;
	unsigned int v;

	if (function_masked(dev))
		return;
	for (v = 0; v < x->nvec; v++) {
		if (pending(x, v) && !vector_masked(x, v)) {
			set_pending(x, v, false);
			muser_irq_deliver(dev, VFIO_PCI_MSIX_IRQ_INDEX, v);
		}
	}
}

static int msix_written(struct muser_dev *dev, const struct muser_cap *cap)
{
	struct muser_msix *x = &dev->msix;
	uint16_t ctrl = muser_cfg_get(dev, cap->off + PCI_MSIX_FLAGS, 2);
	unsigned int changed = 0;

	if ((ctrl ^ x->ctrl) & PCI_MSIX_FLAGS_ENABLE)
		changed |= MUSER_IRQ_CHANGED_ENABLE;
	if ((ctrl ^ x->ctrl) & PCI_MSIX_FLAGS_MASKALL)
		changed |= MUSER_IRQ_CHANGED_MASK;
	x->ctrl = ctrl;
	if (changed & MUSER_IRQ_CHANGED_MASK)
		deliver_unmasked(dev);
	if (changed)
		muser_irq_state_changed(dev, VFIO_PCI_MSIX_IRQ_INDEX, changed);
	return 0;
}

static const struct muser_cap_ops msix_ops = {
	.init = msix_init,
	.reset = msix_reset,
	.written = msix_written,
};

/* A trigger while the function or the vector is masked: pending instead. */
bool muser_msix_hold(struct muser_dev *dev, unsigned int vector)
{
	struct muser_msix *x = &dev->msix;

	if (!function_masked(dev) && !vector_masked(x, vector))
		return false;
	set_pending(x, vector, true);
	muser_dbg(dev, "MSI-X vector %u masked, pending", vector);
	return true;
}

int muser_msix_state(const struct muser_dev *dev, unsigned int vector)
{
	const struct muser_msix *x = &dev->msix;
	int s = 0;

	if (muser_cfg_get(dev, x->off + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE)
		s |= MUSER_IRQ_S_ENABLED;
	if (function_masked(dev) || vector_masked(x, vector))
		s |= MUSER_IRQ_S_MASKED;
	if (pending(x, vector))
		s |= MUSER_IRQ_S_PENDING;
	return s;
}

/*
 * Whether offset @off of BAR @bar is in the table or the PBA. *@len is
 * clipped to the end of that range, or else to the start of the next one.
 */
bool muser_msix_trapped(const struct muser_dev *dev, int bar, uint64_t off,
			size_t *len)
{
	const struct muser_msix *x = &dev->msix;
	const struct { int bar; uint64_t start, len; } r[2] = {
		{ x->table_bar, x->table_off, table_len(x) },
		{ x->pba_bar, x->pba_off, pba_len(x) },
	};
	unsigned int i;

	if (!x->off)
		return false;
	for (i = 0; i < 2; i++) {
		if (r[i].bar != bar)
			continue;
		if (off >= r[i].start && off < r[i].start + r[i].len) {
			if (*len > r[i].start + r[i].len - off)
				*len = r[i].start + r[i].len - off;
			return true;
		}
		if (off < r[i].start && *len > r[i].start - off)
			*len = r[i].start - off;
	}
	return false;
}

/* Guest-writable bits of each byte of a table entry. */
static const uint8_t entry_wmask[ENTRY_SIZE] = {
	0xfc, 0xff, 0xff, 0xff,		/* Message Address, dword aligned */
	0xff, 0xff, 0xff, 0xff,		/* Message Upper Address */
	0xff, 0xff, 0xff, 0xff,		/* Message Data */
	PCI_MSIX_ENTRY_CTRL_MASKBIT, 0, 0, 0,	/* Vector Control */
};

static void table_write(struct muser_dev *dev, const uint8_t *buf, size_t len,
			uint64_t off)
{
	struct muser_msix *x = &dev->msix;
	bool mask_changed = false;
	size_t i;

	for (i = 0; i < len; i++, off++) {
		uint8_t m = entry_wmask[off % ENTRY_SIZE];
		uint8_t old = x->table[off];

		x->table[off] = (old & ~m) | (buf[i] & m);
		if (off % ENTRY_SIZE == PCI_MSIX_ENTRY_VECTOR_CTRL &&
		    old != x->table[off])
			mask_changed = true;
	}
	if (!x->table_written) {
		/* From now on the table's masks are the guest's. */
		x->table_written = true;
		mask_changed = true;
	}
	if (mask_changed) {
		deliver_unmasked(dev);
		muser_irq_state_changed(dev, VFIO_PCI_MSIX_IRQ_INDEX,
					MUSER_IRQ_CHANGED_MASK);
	}
}

/*
 * An access wholly inside the table or the PBA (as muser_msix_trapped()
 * clipped it). The PBA is read-only: writes are ignored.
 */
void muser_msix_access(struct muser_dev *dev, int bar, uint8_t *buf,
		       size_t len, uint64_t off, bool is_write)
{
	struct muser_msix *x = &dev->msix;

	if (bar == x->table_bar && off >= x->table_off &&
	    off < x->table_off + table_len(x)) {
		off -= x->table_off;
		if (is_write)
			table_write(dev, buf, len, off);
		else
			memcpy(buf, &x->table[off], len);
	} else if (!is_write) {
		memcpy(buf, &x->pba[off - x->pba_off], len);
	}
}

/* Whether [off, off + len) fits a memory BAR the device declared. */
static bool in_mem_bar(const struct muser_dev *dev, int bar, uint64_t off,
		       uint64_t len)
{
	const struct muser_bar *b;

	if (bar < 0 || bar >= MUSER_NUM_BARS)
		return false;
	b = &dev->bars[bar];
	return b->size && !b->upper && !(b->flags & MUSER_BAR_IO) &&
	       off % 8 == 0 && off <= b->size && len <= b->size - off &&
	       off + len <= 0x100000000ull;
}

MUSER_EXPORT int muser_add_cap_msix(struct muser_dev *dev, unsigned int nvec,
				    int table_bar, uint64_t table_offset,
				    int pba_bar, uint64_t pba_offset)
{
	struct muser_msix x = {
		.nvec = nvec, .table_bar = table_bar, .table_off = table_offset,
		.pba_bar = pba_bar, .pba_off = pba_offset,
	};
	struct muser_cap *cap;

	if (muser_unrealized(dev))
		return -1;
	if (!nvec || nvec > MUSER_MSIX_MAX_VECTORS ||
	    !in_mem_bar(dev, table_bar, table_offset, table_len(&x)) ||
	    !in_mem_bar(dev, pba_bar, pba_offset, pba_len(&x)) ||
	    (table_bar == pba_bar &&
	     table_offset < pba_offset + pba_len(&x) &&
	     pba_offset < table_offset + table_len(&x))) {
		errno = EINVAL;
		return -1;
	}
	if (dev->msix.off) {
		errno = EEXIST;
		return -1;
	}
	x.table = malloc(table_len(&x));
	x.pba = malloc(pba_len(&x));
	if (!x.table || !x.pba) {
		free(x.table);
		free(x.pba);
		return -1;
	}
	cap = muser_cap_add(dev, PCI_CAP_ID_MSIX, MSIX_CAP_LEN, false, &msix_ops);
	if (!cap) {
		free(x.table);
		free(x.pba);
		return -1;
	}
	x.off = cap->off;
	dev->msix = x;
	return cap->off;
}
