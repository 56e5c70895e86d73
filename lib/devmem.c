// SPDX-License-Identifier: BSD-3-Clause
/*
 * Device memory: page-aligned parts of BARs that muser.ko backs with pages
 * of its own. The VMM maps them, this process maps them too, and accesses
 * there reach no callback: a device polls them (doorbells, rings).
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "private.h"

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* The MSI-X table and PBA are the library's to emulate: never mapped. */
static bool hits_msix(const struct muser_dev *dev, int bar, uint64_t off,
		      uint64_t size)
{
	const struct muser_msix *x = &dev->msix;

	if (!x->off)
		return false;
	return (x->table_bar == bar &&
		ranges_overlap(off, size, x->table_off, 16ull * x->nvec)) ||
	       (x->pba_bar == bar &&
		ranges_overlap(off, size, x->pba_off, (x->nvec + 63) / 64 * 8));
}

MUSER_EXPORT int muser_setup_bar_mmap(struct muser_dev *dev, int bar,
				      uint64_t offset, uint64_t size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	unsigned int i;

	if (muser_unrealized(dev) < 0)
		return -1;
	if (bar < 0 || bar >= MUSER_NUM_BARS || !dev->bars[bar].size ||
	    dev->bars[bar].upper || dev->bars[bar].flags & MUSER_BAR_IO ||
	    !size || offset % page || size % page ||
	    offset >= dev->bars[bar].size || size > dev->bars[bar].size - offset ||
	    hits_msix(dev, bar, offset, size)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < dev->nr_mmap_areas; i++) {
		const struct muser_mmap_area *a = &dev->mmap_areas[i];

		if (a->region == (uint32_t)bar &&
		    ranges_overlap(offset, size, a->offset, a->size)) {
			errno = EEXIST;
			return -1;
		}
	}
	if (dev->nr_mmap_areas == MUSER_MAX_MMAP_AREAS) {
		errno = ENOSPC;
		return -1;
	}
	dev->mmap_areas[dev->nr_mmap_areas++] = (struct muser_mmap_area){
		.region = VFIO_PCI_BAR0_REGION_INDEX + bar,
		.offset = offset,
		.size = size,
	};
	return 0;
}

MUSER_EXPORT void *muser_bar_map(struct muser_dev *dev, int bar,
				 uint64_t offset, size_t size)
{
	void *p;

	if (!dev->realized) {
		errno = EINVAL;
		return NULL;
	}
	if (bar < 0 || bar >= MUSER_NUM_BARS) {
		errno = EINVAL;
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd,
		 (off_t)(MUSER_REGION_OFFSET(VFIO_PCI_BAR0_REGION_INDEX + bar) +
			 offset));
	return p == MAP_FAILED ? NULL : p;
}
