// SPDX-License-Identifier: GPL-2.0
/*
 * Device memory: pages muser.ko owns for the life of a device, backing the
 * mmap areas of its regions. The VMM maps them through the VFIO device, the
 * emulator through its control node; both see the same pages, so accesses
 * there need no request. Pages are allocated zeroed on first write or
 * fault (a VMM read of an untouched page reads zeros), at most the
 * device's budget, and freed when a new layout no longer has their area.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "muser_mdev.h"

unsigned int muser_devmem_budget_mb = 64;

static unsigned long muser_devmem_key(u32 index, u64 pgoff)
{
	/* Regions are at most 1 << MUSER_REGION_SHIFT bytes: pgoff fits. */
	return ((unsigned long)index << 32) | pgoff;
}

void muser_devmem_init(struct muser_mdev *md)
{
	xa_init(&md->devmem);
	init_rwsem(&md->devmem_sem);
	atomic_long_set(&md->devmem_pages, 0);
	md->devmem_budget_pages = (unsigned long)muser_devmem_budget_mb <<
				  (20 - PAGE_SHIFT);
}

/*
 * The page at @pgoff of region @index (or of the state area), allocated
 * if @alloc and missing: NULL if missing and not @alloc, ERR_PTR(-ENOSPC)
 * past the budget, ERR_PTR(-ENOMEM).
 */
static struct page *muser_devmem_page(struct muser_mdev *md, u32 index,
				      u64 pgoff, bool alloc)
{
	unsigned long key = muser_devmem_key(index, pgoff);
	bool charged = index != MUSER_STATE_INDEX;
	struct page *page, *old;

	page = xa_load(&md->devmem, key);
	if (page || !alloc)
		return page;

	if (charged && atomic_long_inc_return(&md->devmem_pages) >
		       READ_ONCE(md->devmem_budget_pages)) {
		atomic_long_dec(&md->devmem_pages);
		muser_mdev_err(md, "device memory: the budget of %lu pages is used up\n",
			       READ_ONCE(md->devmem_budget_pages));
		return ERR_PTR(-ENOSPC);
	}
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page) {
		old = ERR_PTR(-ENOMEM);
		goto err_uncharge;
	}
	old = xa_cmpxchg(&md->devmem, key, NULL, page, GFP_KERNEL_ACCOUNT);
	if (!old)
		return page;
	__free_page(page);
	if (xa_is_err(old))
		old = ERR_PTR(xa_err(old));
err_uncharge:
	if (charged)
		atomic_long_dec(&md->devmem_pages);
	return old;
}

void muser_devmem_free(struct muser_mdev *md)
{
	struct page *page;
	unsigned long key;

	/* Mappings still alive hold their own page references. */
	xa_for_each(&md->devmem, key, page)
		put_page(page);
	xa_destroy(&md->devmem);
}

/*
 * The mmap area of region @index holding @off, or NULL. @avail gets the
 * bytes from @off to the end of that area, or to the next area when @off
 * is in none (U64_MAX when no area follows).
 */
const struct muser_mmap_area *muser_area_at(const struct muser_device_info *info,
					    u32 index, u64 off, u64 *avail)
{
	const struct muser_mmap_area *a;
	unsigned int i;

	*avail = U64_MAX;
	for (i = 0; i < info->num_mmap_areas; i++) {
		a = &info->mmap_areas[i];
		if (a->region != index)
			continue;
		if (off >= a->offset && off - a->offset < a->size) {
			*avail = a->size - (off - a->offset);
			return a;
		}
		if (a->offset > off)
			*avail = min(*avail, a->offset - off);
	}
	return NULL;
}

/*
 * A VMM read or write inside one mmap area, served from the pages. Writes
 * are staged: copy_from_user() zeroes what it fails to copy, which must not
 * reach device memory.
 */
ssize_t muser_devmem_rw(struct muser_mdev *md, u32 index, u64 off,
			char __user *buf, size_t len, bool write)
{
	void *bounce = NULL;
	size_t done = 0;
	ssize_t ret = 0;

	if (write) {
		bounce = kmalloc(min_t(size_t, len, PAGE_SIZE), GFP_KERNEL);
		if (!bounce)
			return -ENOMEM;
	}
	while (done < len) {
		u64 pos = off + done;
		size_t in_page = offset_in_page(pos);
		size_t n = min_t(size_t, len - done, PAGE_SIZE - in_page);
		struct page *page;
		unsigned long left;
		void *kaddr;

		page = muser_devmem_page(md, index, pos >> PAGE_SHIFT, write);
		if (IS_ERR(page)) {
			ret = -ENOMEM;
			break;
		}
		if (write) {
			left = copy_from_user(bounce, buf + done, n);
			memcpy_to_page(page, in_page, bounce, n - left);
		} else if (!page) {
			left = clear_user(buf + done, n);
		} else {
			kaddr = kmap_local_page(page);
			left = copy_to_user(buf + done, kaddr + in_page, n);
			kunmap_local(kaddr);
		}
		done += n - left;
		if (left) {
			ret = -EFAULT;
			break;
		}
		/* A VMM may ask for gigabytes in one call; it may be dying. */
		if (fatal_signal_pending(current)) {
			kfree(bounce);
			return -EINTR;
		}
		cond_resched();
	}
	kfree(bounce);
	return done ? done : ret;
}

/*
 * Faults of device memory and of the state area. A region page must still
 * be in an mmap area: an emulator may have mapped areas a later layout
 * dropped (muser_devmem_set_layout() zaps such mappings).
 */
static vm_fault_t muser_devmem_fault(struct vm_fault *vmf)
{
	struct muser_mdev *md = vmf->vma->vm_private_data;
	u64 off = (u64)vmf->pgoff << PAGE_SHIFT;
	u32 index = MUSER_OFFSET_TO_INDEX(off);
	struct page *page = NULL;
	u64 avail;

	down_read(&md->devmem_sem);
	if (index == MUSER_STATE_INDEX ||
	    (muser_layout_ready(md) &&
	     muser_area_at(&md->info, index, off & MUSER_OFFSET_MASK, &avail)))
		page = muser_devmem_page(md, index,
					 (off & MUSER_OFFSET_MASK) >> PAGE_SHIFT,
					 true);
	/* The reference, before a new layout may free the page. */
	if (!IS_ERR_OR_NULL(page))
		get_page(page);
	up_read(&md->devmem_sem);
	if (!page || PTR_ERR_OR_ZERO(page) == -ENOSPC) {
		muser_mdev_err(md, "device memory: no page at region %u offset 0x%llx\n",
			       index, off & MUSER_OFFSET_MASK);
		return VM_FAULT_SIGBUS;
	}
	if (IS_ERR(page))
		return VM_FAULT_OOM;
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct muser_devmem_vm_ops = {
	.fault = muser_devmem_fault,
};

/*
 * The emulator attached with @info while no VMM has the device open: it
 * becomes the layout. Device memory a changed layout no longer has goes,
 * mapped or not: the control node's mappings of regions are zapped (they
 * fault in again where an area remains). Caller holds md->lock.
 */
void muser_devmem_set_layout(struct muser_mdev *md,
			     const struct muser_device_info *info)
{
	struct page *page;
	unsigned long key;
	u64 avail;

	lockdep_assert_held(&md->lock);
	down_write(&md->devmem_sem);
	md->info = *info;
	/* The regions only: not the request rings above them. */
	unmap_mapping_range(md->inode->i_mapping, 0, MUSER_RING_OFFSET, 1);
	xa_for_each(&md->devmem, key, page) {
		u32 index = key >> 32;

		if (index == MUSER_STATE_INDEX ||
		    muser_area_at(info, index, (u64)(key & U32_MAX) << PAGE_SHIFT,
				  &avail))
			continue;
		xa_erase(&md->devmem, key);
		put_page(page);
		atomic_long_dec(&md->devmem_pages);
	}
	up_write(&md->devmem_sem);
}

/*
 * mmap of device memory, from the VMM (@vmm) or the emulator. The VMM's
 * mappings follow the region's access flags, as its reads and writes do;
 * the emulator, being the device, may write any of its memory.
 */
int muser_devmem_mmap(struct muser_mdev *md,
		      const struct muser_device_info *info,
		      struct vm_area_struct *vma, bool vmm)
{
	u64 len = vma->vm_end - vma->vm_start;
	const struct muser_mmap_area *area;
	u64 start, off, avail;
	u32 index;

	if (vma->vm_pgoff >= ((u64)MUSER_NUM_REGIONS << (MUSER_REGION_SHIFT - PAGE_SHIFT)))
		return -EINVAL;
	start = (u64)vma->vm_pgoff << PAGE_SHIFT;
	index = MUSER_OFFSET_TO_INDEX(start);
	off = start & MUSER_OFFSET_MASK;
	if (!(vma->vm_flags & VM_SHARED)) {
		muser_mdev_err(md, "mmap of region %u must be MAP_SHARED\n", index);
		return -EINVAL;
	}
	area = muser_area_at(info, index, off, &avail);
	/* Adjacent areas map as one, as a region covered whole by them must. */
	while (area && len > avail) {
		u64 more;

		area = muser_area_at(info, index, off + avail, &more);
		if (area)
			avail += more;
	}
	if (!area || len > avail) {
		muser_mdev_err(md, "mmap of region %u [0x%llx, +0x%llx) is not device memory\n",
			       index, off, len);
		return -EINVAL;
	}
	if (vmm) {
		u32 flags = info->regions[index].flags;

		if (!(flags & VFIO_REGION_INFO_FLAG_READ) ||
		    (!(flags & VFIO_REGION_INFO_FLAG_WRITE) &&
		     (vma->vm_flags & VM_WRITE))) {
			muser_mdev_err(md, "mmap of region %u: access not allowed\n",
				       index);
			return -EINVAL;
		}
		if (!(flags & VFIO_REGION_INFO_FLAG_WRITE))
			muser_vm_flags_clear(vma, VM_MAYWRITE);
	}

	muser_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &muser_devmem_vm_ops;
	vma->vm_private_data = md;
	return 0;
}

/* The emulator's mapping of the state area: device memory of its own. */
int muser_state_mmap(struct muser_mdev *md, struct vm_area_struct *vma)
{
	u64 start = ((u64)vma->vm_pgoff << PAGE_SHIFT) - MUSER_STATE_OFFSET;
	u64 len = vma->vm_end - vma->vm_start;

	if (!(vma->vm_flags & VM_SHARED) || start >= MUSER_STATE_SIZE ||
	    len > MUSER_STATE_SIZE - start) {
		muser_mdev_err(md, "bad mmap of the state area (offset 0x%llx, 0x%llx bytes)\n",
			       start, len);
		return -EINVAL;
	}
	muser_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &muser_devmem_vm_ops;
	vma->vm_private_data = md;
	return 0;
}

/*
 * VFIO region info capabilities: a sparse mmap capability when the areas do
 * not cover the whole region.
 */
int muser_region_caps(const struct muser_device_info *info, u32 index,
		      struct vfio_info_cap *caps)
{
	struct vfio_region_info_cap_sparse_mmap *sparse;
	u64 mapped = 0;
	unsigned int i, nr = 0;
	size_t size;
	int ret;

	/* Callers pass an index muser_region() found. */
	if (index >= MUSER_NUM_REGIONS) {
		const struct muser_dev_region *d =
			&info->dev_regions[index - MUSER_NUM_REGIONS];
		struct vfio_region_info_cap_type type = {
			.header.id = VFIO_REGION_INFO_CAP_TYPE,
			.header.version = 1,
			.type = d->type,
			.subtype = d->subtype,
		};

		return vfio_info_add_capability(caps, &type.header, sizeof(type));
	}
	for (i = 0; i < info->num_mmap_areas; i++) {
		if (info->mmap_areas[i].region == index) {
			mapped += info->mmap_areas[i].size;
			nr++;
		}
	}
	if (!nr || mapped == info->regions[index].size)
		return 0;

	size = struct_size(sparse, areas, nr);
	sparse = kzalloc(size, GFP_KERNEL);
	if (!sparse)
		return -ENOMEM;
	sparse->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
	sparse->header.version = 1;
	sparse->nr_areas = nr;
	for (i = 0, nr = 0; i < info->num_mmap_areas; i++) {
		const struct muser_mmap_area *a = &info->mmap_areas[i];

		if (a->region != index)
			continue;
		sparse->areas[nr].offset = a->offset;
		sparse->areas[nr].size = a->size;
		nr++;
	}
	ret = vfio_info_add_capability(caps, &sparse->header, size);
	kfree(sparse);
	return ret;
}

/* sysfs: /sys/bus/mdev/devices/UUID/devmem/ */
static ssize_t pages_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct muser_mdev *md = dev_to_muser(dev);

	return sysfs_emit(buf, "%ld\n", atomic_long_read(&md->devmem_pages));
}
static DEVICE_ATTR_RO(pages);

static ssize_t budget_mb_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return muser_budget_mb_show(buf, READ_ONCE(dev_to_muser(dev)->devmem_budget_pages));
}

/* Lowering it frees nothing: only new pages are refused. */
static ssize_t budget_mb_store(struct device *dev,
			       struct device_attribute *attr,
			       const char *buf, size_t count)
{
	unsigned long pages;
	int ret;

	ret = muser_budget_mb_parse(buf, 0, MUSER_DEVMEM_MAX_BUDGET_MB, &pages);
	if (ret)
		return ret;
	WRITE_ONCE(dev_to_muser(dev)->devmem_budget_pages, pages);
	return count;
}
static DEVICE_ATTR_RW(budget_mb);

static struct attribute *muser_devmem_attrs[] = {
	&dev_attr_pages.attr,
	&dev_attr_budget_mb.attr,
	NULL
};

const struct attribute_group muser_devmem_group = {
	.name = "devmem",
	.attrs = muser_devmem_attrs,
};
