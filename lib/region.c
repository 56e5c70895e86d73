// SPDX-License-Identifier: BSD-3-Clause
/*
 * Accesses to the BAR, ROM and VGA regions: the MSI-X table and PBA are
 * cut out of their BARs and served by msix.c; every other part goes to the
 * region's callback (zeros and ignored writes without one). Config space
 * is pci_config.c's.
 */
#include <errno.h>

#include "private.h"

/* Call a region callback for one part of an access. */
static int cb_part(struct muser_dev *dev, unsigned int region,
		   const struct muser_bar *b, uint8_t *buf, size_t count,
		   uint64_t offset, bool is_write)
{
	ssize_t ret;

	if (!b->cb)
		return 0;	/* reads as zeros (buf is zeroed) */
	ret = b->cb(dev, b->priv, buf, count, offset, is_write);
	if (ret == (ssize_t)count)
		return 0;
	if (ret >= 0) {
		muser_err(dev, "region %u callback returned %zd for %zu bytes at %#llx",
			  region, ret, count, (unsigned long long)offset);
		errno = EIO;
	}
	return -1;
}

static int bar_access(struct muser_dev *dev, int bar, uint8_t *buf,
		      size_t count, uint64_t offset, bool is_write)
{
	const struct muser_bar *b = &dev->bars[bar];
	size_t pos = 0;

	while (pos < count) {
		size_t n = count - pos;

		if (muser_msix_trapped(dev, bar, offset + pos, &n))
			muser_msix_access(dev, bar, buf + pos, n, offset + pos,
					  is_write);
		else if (cb_part(dev, bar, b, buf + pos, n, offset + pos,
				 is_write) < 0)
			return -1;
		pos += n;
	}
	return 0;
}

/* VGA memory, then the two I/O port ranges, at their legacy addresses. */
static const struct { uint64_t start, end; } vga_ranges[] = {
	{ 0xa0000, 0xc0000 }, { 0x3b0, 0x3bc }, { 0x3c0, 0x3e0 },
};

static bool vga_ok(uint64_t offset, size_t count)
{
	unsigned int i;

	for (i = 0; i < sizeof(vga_ranges) / sizeof(vga_ranges[0]); i++)
		if (offset >= vga_ranges[i].start && offset < vga_ranges[i].end &&
		    count <= vga_ranges[i].end - offset)
			return true;
	return false;
}

/*
 * Read or write @count bytes at @offset of a BAR, ROM or VGA region; the
 * caller checked the range against the layout.
 * Returns 0, or -1 with errno set (EINVAL, or by the callback).
 */
int muser_region_access(struct muser_dev *dev, unsigned int region,
			uint8_t *buf, size_t count, uint64_t offset,
			bool is_write)
{
	if (region <= VFIO_PCI_BAR5_REGION_INDEX)
		return bar_access(dev, region, buf, count, offset, is_write);
	if (region == VFIO_PCI_ROM_REGION_INDEX && !is_write)
		return cb_part(dev, region, &dev->rom, buf, count, offset, false);
	if (region == VFIO_PCI_VGA_REGION_INDEX && vga_ok(offset, count))
		return cb_part(dev, region, &dev->vga, buf, count, offset, is_write);
	errno = EINVAL;
	return -1;
}
