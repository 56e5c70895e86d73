// SPDX-License-Identifier: GPL-2.0
/*
 * The VFIO device the VMM sees. Info ioctls are answered from the layout
 * the emulator attached with; region accesses and reset become requests.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "muser_mdev.h"

static int muser_vfio_init(struct vfio_device *vdev)
{
	struct muser_mdev *md = vdev_to_muser(vdev);

	strscpy(md->uuid, dev_name(vdev->dev), sizeof(md->uuid));
	mutex_init(&md->lock);
	mutex_init(&md->irq_lock);
	spin_lock_init(&md->req_lock);
	init_waitqueue_head(&md->attach_wq);
	init_waitqueue_head(&md->req_wq);
	init_waitqueue_head(&md->slot_wq);
	INIT_LIST_HEAD(&md->pending);
	INIT_LIST_HEAD(&md->inflight);
	INIT_LIST_HEAD(&md->posted_free);
	INIT_LIST_HEAD(&md->rings);
	muser_devmem_init(md);
	muser_dma_init(md);
	muser_mig_init(md);
	return 0;
}

static void muser_vfio_release(struct vfio_device *vdev)
{
	struct muser_mdev *md = vdev_to_muser(vdev);

	muser_devmem_free(md);
	muser_posted_free(md);
	muser_dma_destroy(md);
	muser_inode_destroy(md);
	muser_mig_destroy(md);
	mutex_destroy(&md->lock);
	mutex_destroy(&md->irq_lock);
	muser_vfio_free_device(vdev);
}

static int muser_vfio_open(struct vfio_device *vdev)
{
	struct muser_mdev *md = vdev_to_muser(vdev);

	mutex_lock(&md->lock);
	md->open_count++;
	mutex_unlock(&md->lock);
	muser_mig_reset(md);
	muser_dma_open(md);
	muser_nl_event(md, MUSER_EVENT_VMM_OPENED, 0, 0, 0);
	return 0;
}

/* VFIO calls this on the last close only: the device goes back to rest. */
static void muser_vfio_close(struct vfio_device *vdev)
{
	struct muser_mdev *md = vdev_to_muser(vdev);

	/* The emulator may need guest memory for what the VMM posted. */
	muser_posted_flush(md);
	muser_mig_reset(md);
	muser_dma_close(md);
	muser_irq_release_all(md);
	mutex_lock(&md->lock);
	md->open_count--;
	mutex_unlock(&md->lock);
	muser_post(md, MUSER_POSTED_IRQ_STATE | MUSER_POSTED_VMM_CLOSE);
	muser_nl_event(md, MUSER_EVENT_VMM_CLOSED, 0, 0, 0);
}

/*
 * One request of at most MUSER_MAX_DATA bytes, its data in @data (the
 * kernel's): a write's payload, a read's result.
 */
int muser_request_rw(struct muser_mdev *md, u32 index, u64 off, void *data,
		     u32 len, bool write)
{
	struct muser_wait w = {
		.hdr = {
			.type = write ? MUSER_REQ_WRITE : MUSER_REQ_READ,
			.region = index,
			.offset = off,
			.len = len,
			.data_len = write ? len : 0,
		},
		.data = data,
	};
	int ret;

	ret = muser_request_slot(md);
	if (ret)
		return ret;
	/* It gives the slot back. */
	return muser_request(md, &w);
}

/* One request of at most MUSER_MAX_DATA bytes, for the VMM's buffer. */
static ssize_t muser_vfio_rw_chunk(struct muser_mdev *md, char __user *buf,
				   u32 index, u64 off, u32 len, bool write)
{
	u8 small[MUSER_INLINE_DATA];
	void *data = small;
	int ret;

	if (len > sizeof(small)) {
		data = kmalloc(len, GFP_KERNEL_ACCOUNT);
		if (!data)
			return -ENOMEM;
	}
	ret = -EFAULT;
	if (write && copy_from_user(data, buf, len))
		goto out_free;
	ret = muser_request_rw(md, index, off, data, len, write);
	if (!ret && !write && copy_to_user(buf, data, len))
		ret = -EFAULT;
out_free:
	if (data != small)
		kfree(data);
	return ret ? ret : (ssize_t)len;
}

static ssize_t muser_vfio_rw(struct vfio_device *vdev, char __user *buf,
			     size_t count, loff_t *ppos, bool write)
{
	struct muser_mdev *md = vdev_to_muser(vdev);
	u32 index = MUSER_OFFSET_TO_INDEX((u64)*ppos);
	u64 off = *ppos & MUSER_OFFSET_MASK;
	const struct muser_device_info *info;
	const struct muser_region *region;
	size_t done = 0;
	ssize_t ret = 0;

	info = muser_wait_layout(md);
	if (IS_ERR(info))
		return PTR_ERR(info);
	region = muser_region(info, index);
	if (!region)
		return -EINVAL;
	if (!(region->flags & (write ? VFIO_REGION_INFO_FLAG_WRITE :
					VFIO_REGION_INFO_FLAG_READ)))
		return -EINVAL;
	if (off >= region->size)
		return -EINVAL;
	count = min_t(u64, count, region->size - off);

	/* Device memory is served here; the rest goes to the emulator. */
	while (done < count) {
		u64 avail, len = count - done;

		if (muser_area_at(info, index, off + done, &avail)) {
			ret = muser_devmem_rw(md, index, off + done, buf + done,
					      min(len, avail), write);
		} else {
			len = min3(len, avail, (u64)MUSER_MAX_DATA);
			ret = -EAGAIN;
			if (write && region->flags & MUSER_REGION_F_POSTED_WRITES)
				ret = muser_request_posted(md, index, off + done,
							   buf + done, len) ?: len;
			/* Not posted, or too many posted: wait for the answer. */
			if (ret == -EAGAIN)
				ret = muser_vfio_rw_chunk(md, buf + done, index,
							  off + done, len, write);
		}
		if (ret < 0)
			break;
		done += ret;
	}
	if (!done)
		return ret;
	*ppos += done;
	return done;
}

static ssize_t muser_vfio_read(struct vfio_device *vdev, char __user *buf,
			       size_t count, loff_t *ppos)
{
	return muser_vfio_rw(vdev, buf, count, ppos, false);
}

static ssize_t muser_vfio_write(struct vfio_device *vdev,
				const char __user *buf, size_t count,
				loff_t *ppos)
{
	return muser_vfio_rw(vdev, (char __user *)buf, count, ppos, true);
}

static int muser_get_info(struct muser_mdev *md, unsigned long arg)
{
	const unsigned long minsz = offsetofend(struct vfio_device_info, num_irqs);
	const struct muser_device_info *info;
	struct vfio_device_info di;

	if (copy_from_user(&di, (void __user *)arg, minsz))
		return -EFAULT;
	if (di.argsz < minsz)
		return -EINVAL;

	info = muser_wait_layout(md);
	if (IS_ERR(info))
		return PTR_ERR(info);

	di.flags = VFIO_DEVICE_FLAGS_PCI;
	if (info->flags & MUSER_DEV_F_RESET)
		di.flags |= VFIO_DEVICE_FLAGS_RESET;
	di.num_regions = muser_vmm_regions(info);
	di.num_irqs = info->num_irqs;
	return copy_to_user((void __user *)arg, &di, minsz) ? -EFAULT : 0;
}

/*
 * The one place region info is built (the VFIO core may take this over
 * through a get_region_info op in later kernels).
 */
static int muser_get_region_info(struct muser_mdev *md, unsigned long arg)
{
	const unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
	const struct muser_device_info *info;
	const struct muser_region *region;
	struct vfio_region_info ri;
	u64 avail;
	int ret;

	if (copy_from_user(&ri, (void __user *)arg, minsz))
		return -EFAULT;
	if (ri.argsz < minsz)
		return -EINVAL;

	info = muser_wait_layout(md);
	if (IS_ERR(info))
		return PTR_ERR(info);
	region = muser_region(info, ri.index);
	if (!region)
		return -EINVAL;

	ri.offset = MUSER_REGION_OFFSET(ri.index);
	ri.size = region->size;
	ri.flags = ri.size ? region->flags & (VFIO_REGION_INFO_FLAG_READ |
					      VFIO_REGION_INFO_FLAG_WRITE) : 0;
	ri.cap_offset = 0;
	if (ri.size && (muser_area_at(info, ri.index, 0, &avail) ||
			avail < ri.size))
		ri.flags |= VFIO_REGION_INFO_FLAG_MMAP;

	ret = muser_region_caps(info, ri.index, &caps);
	if (ret)
		return ret;
	/* The argsz protocol of vfio-pci: say how much room caps need. */
	if (caps.size) {
		ri.flags |= VFIO_REGION_INFO_FLAG_CAPS;
		if (ri.argsz < sizeof(ri) + caps.size) {
			ri.argsz = sizeof(ri) + caps.size;
		} else {
			vfio_info_cap_shift(&caps, sizeof(ri));
			if (copy_to_user((void __user *)arg + sizeof(ri),
					 caps.buf, caps.size)) {
				kfree(caps.buf);
				return -EFAULT;
			}
			ri.cap_offset = sizeof(ri);
		}
		kfree(caps.buf);
	}
	return copy_to_user((void __user *)arg, &ri, minsz) ? -EFAULT : 0;
}

static int muser_vfio_reset(struct muser_mdev *md)
{
	const struct muser_device_info *info;
	struct muser_wait w = { .hdr.type = MUSER_REQ_RESET };
	int ret;

	info = muser_wait_layout(md);
	if (IS_ERR(info))
		return PTR_ERR(info);
	if (!(info->flags & MUSER_DEV_F_RESET))
		return -EINVAL;
	ret = muser_request_slot(md);
	if (ret)
		return ret;
	ret = muser_request(md, &w);
	/*
	 * A reset device runs, with no migration session: the emulator has
	 * ended its own, even if its device's reset failed.
	 */
	muser_mig_reset(md);
	return ret;
}

static long muser_vfio_ioctl(struct vfio_device *vdev, unsigned int cmd,
			     unsigned long arg)
{
	struct muser_mdev *md = vdev_to_muser(vdev);

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO:
		return muser_get_info(md, arg);
	case VFIO_DEVICE_GET_REGION_INFO:
		return muser_get_region_info(md, arg);
	case VFIO_DEVICE_GET_IRQ_INFO:
		return muser_irq_info(md, arg);
	case VFIO_DEVICE_SET_IRQS:
		return muser_set_irqs(md, arg);
	case VFIO_DEVICE_RESET:
		return muser_vfio_reset(md);
	}
	return -ENOTTY;
}

/*
 * Called with mmap_lock held for writing: never wait here for an emulator.
 * A VMM maps regions it has asked about, and asking waits for the layout.
 */
static int muser_vfio_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	struct muser_mdev *md = vdev_to_muser(vdev);

	if (!muser_layout_ready(md)) {
		muser_mdev_err(md, "mmap before any emulator attached\n");
		return -ENODEV;
	}
	return muser_devmem_mmap(md, &md->info, vma, true);
}

static void muser_vfio_request(struct vfio_device *vdev, unsigned int count)
{
	muser_irq_request(vdev_to_muser(vdev), count);
}

static void muser_vfio_dma_unmap(struct vfio_device *vdev, u64 iova, u64 len)
{
	muser_dma_guest_unmapped(vdev_to_muser(vdev), iova, len);
}

const struct vfio_device_ops muser_vfio_ops = {
	.name = "muser",
	.init = muser_vfio_init,
	.release = muser_vfio_release,
	.open_device = muser_vfio_open,
	.close_device = muser_vfio_close,
	.read = muser_vfio_read,
	.write = muser_vfio_write,
	.ioctl = muser_vfio_ioctl,
	.mmap = muser_vfio_mmap,
	.request = muser_vfio_request,
	.dma_unmap = muser_vfio_dma_unmap,
	MUSER_DEVICE_FEATURE_OP
	MUSER_VFIO_IOMMUFD_OPS
};
