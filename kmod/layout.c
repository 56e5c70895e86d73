// SPDX-License-Identifier: GPL-2.0
/*
 * The device layout an emulator attaches with: validated once, then used to
 * answer the VMM's info ioctls without asking the emulator.
 */
#include <linux/log2.h>
#include <linux/sched/signal.h>

#include "muser_mdev.h"

static const u32 muser_irq_flags_allowed[MUSER_NUM_IRQS] = {
	[VFIO_PCI_INTX_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
				    VFIO_IRQ_INFO_AUTOMASKED,
	[VFIO_PCI_MSI_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
	[VFIO_PCI_MSIX_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
	[VFIO_PCI_ERR_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD,
	[VFIO_PCI_REQ_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
};

static const u32 muser_irq_max_count[MUSER_NUM_IRQS] = {
	[VFIO_PCI_INTX_IRQ_INDEX] = 1,
	[VFIO_PCI_MSI_IRQ_INDEX] = 32,
	[VFIO_PCI_MSIX_IRQ_INDEX] = 2048,
	[VFIO_PCI_ERR_IRQ_INDEX] = 1,
	[VFIO_PCI_REQ_IRQ_INDEX] = 1,
};

static int muser_region_validate(struct muser_mdev *md, unsigned int i,
				 const struct muser_region *r)
{
	const u32 rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	u32 allowed = rw;

	/* Memory writes may be posted: BARs only (the emulator knows which). */
	if (i <= VFIO_PCI_BAR5_REGION_INDEX)
		allowed |= MUSER_REGION_F_POSTED_WRITES;
	if (r->flags & ~allowed || r->pad) {
		muser_mdev_err(md, "attach: region %u: bad flags 0x%x\n", i, r->flags);
		return -EINVAL;
	}
	if (!r->size)
		return 0;

	switch (i) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		if (r->size != 256 && r->size != 4096)
			goto bad_size;
		if (r->flags != rw) {
			muser_mdev_err(md, "attach: config space must be read-write\n");
			return -EINVAL;
		}
		return 0;
	case VFIO_PCI_VGA_REGION_INDEX:
		if (r->size != 0xc0000)
			goto bad_size;
		return 0;
	default:	/* BARs and the ROM, each within its offset window */
		if (!is_power_of_2(r->size) || r->size > MUSER_OFFSET_MASK + 1)
			goto bad_size;
		return 0;
	}

bad_size:
	muser_mdev_err(md, "attach: region %u: bad size 0x%llx\n", i, r->size);
	return -EINVAL;
}

static int muser_areas_validate(struct muser_mdev *md,
				const struct muser_device_info *info)
{
	unsigned int i, j;

	if (info->num_mmap_areas > MUSER_MAX_MMAP_AREAS)
		goto bad;
	for (i = 0; i < info->num_mmap_areas; i++) {
		const struct muser_mmap_area *a = &info->mmap_areas[i];
		u64 rsize;

		if (a->pad || a->region > VFIO_PCI_ROM_REGION_INDEX ||
		    a->region >= info->num_regions)
			goto bad_area;
		rsize = info->regions[a->region].size;
		if (!a->size || !PAGE_ALIGNED(a->offset) || !PAGE_ALIGNED(a->size) ||
		    a->offset >= rsize || a->size > rsize - a->offset)
			goto bad_area;
		for (j = 0; j < i; j++) {
			const struct muser_mmap_area *b = &info->mmap_areas[j];

			if (b->region == a->region && a->offset < b->offset + b->size &&
			    b->offset < a->offset + a->size)
				goto bad_area;
		}
	}
	return 0;

bad_area:
	muser_mdev_err(md, "attach: mmap area %u (region %u, 0x%llx+0x%llx) is invalid\n",
		       i, info->mmap_areas[i].region, info->mmap_areas[i].offset,
		       info->mmap_areas[i].size);
	return -EINVAL;
bad:
	muser_mdev_err(md, "attach: %u mmap areas\n", info->num_mmap_areas);
	return -EINVAL;
}

static int muser_dev_regions_validate(struct muser_mdev *md,
				      const struct muser_device_info *info)
{
	const u32 rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	unsigned int i, nr_mig = 0;

	if (info->num_dev_regions > MUSER_MAX_DEV_REGIONS || info->pad) {
		muser_mdev_err(md, "attach: %u device-specific regions\n",
			       info->num_dev_regions);
		return -EINVAL;
	}
	for (i = 0; i < MUSER_MAX_DEV_REGIONS; i++) {
		const struct muser_dev_region *d = &info->dev_regions[i];
		const struct muser_region *r = &d->region;

		if (i >= info->num_dev_regions) {
			if (memchr_inv(d, 0, sizeof(*d)))
				goto bad;
			continue;
		}
		/*
		 * The types QEMU knows steer it into their own code (EDID,
		 * IGD OpRegion...): only those muser serves are allowed.
		 */
		if (r->flags != rw || r->pad || r->size <= MUSER_MIG_HDR_SIZE ||
		    r->size > MUSER_OFFSET_MASK + 1 || !muser_is_mig_region(d) ||
		    nr_mig++)
			goto bad;
	}
	return 0;

bad:
	muser_mdev_err(md, "attach: device-specific region %u is invalid (flags 0x%x, size 0x%llx, type %u/%u)\n",
		       i, info->dev_regions[i].region.flags,
		       info->dev_regions[i].region.size,
		       info->dev_regions[i].type, info->dev_regions[i].subtype);
	return -EINVAL;
}

/* Check everything in an attach request; log why it is refused. */
int muser_layout_validate(struct muser_mdev *md,
			  const struct muser_device_info *info)
{
	unsigned int i;
	int ret;

	if (info->version != MUSER_API_VERSION) {
		muser_mdev_err(md, "attach: API version %u, module speaks %u\n",
			       info->version, MUSER_API_VERSION);
		return -EINVAL;
	}
	if (info->flags & ~MUSER_DEV_F_RESET) {
		muser_mdev_err(md, "attach: unknown flags 0x%x\n", info->flags);
		return -EINVAL;
	}
	if (info->num_regions < VFIO_PCI_CONFIG_REGION_INDEX + 1 ||
	    info->num_regions > MUSER_NUM_REGIONS ||
	    info->num_irqs != MUSER_NUM_IRQS) {
		muser_mdev_err(md, "attach: %u regions, %u irqs\n",
			       info->num_regions, info->num_irqs);
		return -EINVAL;
	}
	for (i = 0; i < MUSER_NUM_REGIONS; i++) {
		if (i >= info->num_regions && info->regions[i].size) {
			muser_mdev_err(md, "attach: region %u beyond num_regions\n", i);
			return -EINVAL;
		}
		ret = muser_region_validate(md, i, &info->regions[i]);
		if (ret)
			return ret;
	}
	if (!info->regions[VFIO_PCI_CONFIG_REGION_INDEX].size) {
		muser_mdev_err(md, "attach: no config space\n");
		return -EINVAL;
	}
	ret = muser_areas_validate(md, info);
	if (ret)
		return ret;
	ret = muser_dev_regions_validate(md, info);
	if (ret)
		return ret;
	for (i = 0; i < MUSER_NUM_IRQS; i++) {
		const struct muser_irq *irq = &info->irqs[i];

		if (i == VFIO_PCI_REQ_IRQ_INDEX)
			continue;	/* provided by the kernel */
		if (irq->flags & ~muser_irq_flags_allowed[i] ||
		    irq->count > muser_irq_max_count[i] ||
		    (i == VFIO_PCI_MSI_IRQ_INDEX && irq->count &&
		     !is_power_of_2(irq->count))) {
			muser_mdev_err(md, "attach: irq %u: flags 0x%x count %u\n",
				       i, irq->flags, irq->count);
			return -EINVAL;
		}
	}
	return 0;
}

bool muser_layout_ready(struct muser_mdev *md)
{
	/* Pairs with the release in muser_attach(): info is complete. */
	return smp_load_acquire(&md->has_info);
}

/*
 * The layout, waiting up to the timeout for a first emulator to attach.
 * Once set it never goes away, and it does not change while the VMM has
 * the device open.
 */
const struct muser_device_info *muser_wait_layout(struct muser_mdev *md)
{
	unsigned int timeout_ms = READ_ONCE(muser_timeout_ms);
	long ret;

	if (muser_layout_ready(md))
		return &md->info;

	ret = wait_event_killable_timeout(md->attach_wq,
					  muser_layout_ready(md) ||
					  READ_ONCE(md->dead),
					  msecs_to_jiffies(timeout_ms));
	if (ret < 0)
		return ERR_PTR(-EINTR);
	if (muser_layout_ready(md))
		return &md->info;
	muser_mdev_err(md, "no emulator attached within %u ms\n", timeout_ms);
	return ERR_PTR(-ETIMEDOUT);
}

/* Flags and count the VMM sees for an irq index. */
void muser_irq_layout(const struct muser_device_info *info, unsigned int index,
		      u32 *flags, u32 *count)
{
	if (index == VFIO_PCI_REQ_IRQ_INDEX) {
		*count = 1;
		*flags = muser_irq_flags_allowed[index];
		return;
	}
	*count = info->irqs[index].count;
	*flags = *count ? info->irqs[index].flags | VFIO_IRQ_INFO_EVENTFD : 0;
}
