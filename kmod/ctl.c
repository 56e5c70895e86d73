// SPDX-License-Identifier: GPL-2.0
/*
 * The control node /dev/muser/UUID: how an emulator attaches to its device,
 * reads requests and writes replies.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>

#include "muser_mdev.h"

#define MUSER_MINORS	(MINORMASK + 1)

dev_t muser_devt;
static DEFINE_IDA(muser_minors);

static struct muser_mdev *file_to_muser(struct file *file)
{
	return ((struct muser_ctl_file *)file->private_data)->md;
}

/*
 * A pseudo filesystem for one anonymous inode per device: every open of
 * its control node shares that inode's address space, so the DMA window
 * can be zapped in all of them at once (as the VFIO core does).
 */
#define MUSER_FS_MAGIC	0x6d757372	/* "musr" */

static struct vfsmount *muser_mnt;
static int muser_mnt_count;

static int muser_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, MUSER_FS_MAGIC) ? 0 : -ENOMEM;
}

/*
 * No .owner: a mount would pin the module, and idle devices must not stop
 * rmmod. Every device (and with it the mount) is gone before module exit.
 */
static struct file_system_type muser_fs_type = {
	.name = "muser",
	.init_fs_context = muser_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

static int muser_inode_create(struct muser_mdev *md)
{
	int ret;

	ret = simple_pin_fs(&muser_fs_type, &muser_mnt, &muser_mnt_count);
	if (ret)
		return ret;
	md->inode = alloc_anon_inode(muser_mnt->mnt_sb);
	if (IS_ERR(md->inode)) {
		ret = PTR_ERR(md->inode);
		md->inode = NULL;
		simple_release_fs(&muser_mnt, &muser_mnt_count);
	}
	return ret;
}

void muser_inode_destroy(struct muser_mdev *md)
{
	if (!md->inode)
		return;
	iput(md->inode);
	md->inode = NULL;
	simple_release_fs(&muser_mnt, &muser_mnt_count);
}

static int muser_ctl_open(struct inode *inode, struct file *file)
{
	struct muser_mdev *md = container_of(inode->i_cdev, struct muser_mdev,
					    cdev);
	struct muser_ctl_file *cf;

	cf = kzalloc(sizeof(*cf), GFP_KERNEL_ACCOUNT);
	if (!cf)
		return -ENOMEM;
	cf->md = md;
	refcount_set(&cf->ref, 1);
	xa_init(&cf->holds);
	file->private_data = cf;
	file->f_mapping = md->inode->i_mapping;
	return stream_open(inode, file);
}

static bool muser_same_layout(const struct muser_device_info *a,
			      const struct muser_device_info *b)
{
	return a->flags == b->flags && a->num_regions == b->num_regions &&
	       a->num_irqs == b->num_irqs &&
	       a->num_mmap_areas == b->num_mmap_areas &&
	       !memcmp(a->regions, b->regions, sizeof(a->regions)) &&
	       !memcmp(a->irqs, b->irqs, sizeof(a->irqs)) &&
	       !memcmp(a->mmap_areas, b->mmap_areas,
		       a->num_mmap_areas * sizeof(a->mmap_areas[0])) &&
	       a->num_dev_regions == b->num_dev_regions &&
	       !memcmp(a->dev_regions, b->dev_regions, sizeof(a->dev_regions));
}

static void muser_ctl_file_put(struct muser_ctl_file *cf)
{
	if (!refcount_dec_and_test(&cf->ref))
		return;
	xa_destroy(&cf->holds);
	kfree(cf);
}

/* The takeover from @old is over: it answered, went, or came back. */
static bool muser_takeover_done(struct muser_mdev *md, struct file *old,
				struct muser_ctl_file *old_cf)
{
	return READ_ONCE(old_cf->released) || READ_ONCE(md->emulator) == old ||
	       !muser_owns_inflight(md, old);
}

/*
 * Whether @old has posted writes in flight: then nothing is delivered to
 * the new emulator until @old is done, so that it sees them first.
 */
static bool muser_owns_posted(struct muser_mdev *md, struct file *old)
{
	struct muser_wait *w;

	lockdep_assert_held(&md->req_lock);
	list_for_each_entry(w, &md->inflight, node)
		if (w->owner == old && w->hdr.flags & MUSER_REQ_F_POSTED)
			return true;
	return false;
}

/*
 * Let the emulator @old finish the requests it has read, at most
 * timeout_ms; what it leaves is delivered again to the new one. @old_cf
 * holds a reference so @old cannot be freed and reused unnoticed.
 * @gated: deliveries wait for this takeover (muser_mdev.retiring).
 */
static void muser_takeover_wait(struct muser_mdev *md, struct file *old,
				struct muser_ctl_file *old_cf, bool gated)
{
	bool requeued = false;
	long left;

	muser_ring_wait_begin(md);
	left = wait_event_killable_timeout(md->req_wq,
					   muser_takeover_done(md, old, old_cf),
					   msecs_to_jiffies(READ_ONCE(muser_timeout_ms)));
	muser_ring_wait_end(md);
	if (left <= 0) {
		/*
		 * Timed out, or the caller was killed: what @old holds goes to
		 * whoever serves next (posted writes have no waiter to give up
		 * on them). Unless it has become the emulator again meanwhile.
		 */
		spin_lock(&md->req_lock);
		if (!old_cf->released && md->emulator != old) {
			muser_requeue_inflight(md, old);
			requeued = true;
		}
		spin_unlock(&md->req_lock);
	}
	spin_lock(&md->req_lock);
	if (gated) {
		WRITE_ONCE(md->retiring, md->retiring - 1);
		muser_ring_sync(md);
	}
	/* Its ring holds no answer any more, unless it came back. */
	if (!old_cf->released && md->emulator != old)
		muser_ring_forget(md, old);
	spin_unlock(&md->req_lock);
	if (requeued || gated)
		wake_up_all(&md->req_wq);
	if (requeued && !left)
		muser_mdev_err(md, "takeover: the previous emulator did not finish in time; its requests are replayed\n");
	muser_ctl_file_put(old_cf);
}

static int muser_attach(struct muser_mdev *md, struct file *file,
			void __user *arg, bool takeover)
{
	struct muser_ctl_file *old_cf = NULL;
	struct muser_device_info info;
	struct file *old = NULL;
	bool gated = false;
	int ret;

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	if (info.argsz < sizeof(info)) {
		muser_mdev_err(md, "attach: argsz %u < %zu\n", info.argsz, sizeof(info));
		return -EINVAL;
	}
	ret = muser_layout_validate(md, &info);
	if (ret)
		return ret;

	mutex_lock(&md->lock);
	if (md->dead) {
		ret = -ENODEV;
		goto out_unlock;
	}
	if (md->emulator == file ||
	    (md->emulator && !takeover)) {
		ret = -EBUSY;
		goto out_unlock;
	}
	/* Its ring served an earlier attachment, and may hold stale copies. */
	if (((struct muser_ctl_file *)file->private_data)->ring) {
		muser_mdev_err(md, "attach: this file's request ring served an earlier attachment: open the control node again\n");
		ret = -EBUSY;
		goto out_unlock;
	}
	if (md->emulator && !muser_same_layout(&md->info, &info)) {
		muser_mdev_err(md, "takeover: layout differs from the running emulator's\n");
		ret = -EBUSY;
		goto out_unlock;
	}
	if (md->has_info && md->open_count &&
	    !muser_same_layout(&md->info, &info)) {
		muser_mdev_err(md, "attach: layout differs from the one the VMM uses\n");
		ret = -EBUSY;
		goto out_unlock;
	}
	if (!md->has_info ||
	    (!md->open_count && !muser_same_layout(&md->info, &info))) {
		muser_devmem_set_layout(md, &info);
		muser_mig_set_layout(md, &info);
		/* Publish info before the flag lockless readers test. */
		smp_store_release(&md->has_info, true);
	}

	spin_lock(&md->req_lock);
	old = md->emulator;
	if (old)
		muser_ring_retire(md, old, false);
	md->emulator = file;
	if (old && muser_owns_posted(md, old)) {
		WRITE_ONCE(md->retiring, md->retiring + 1);
		gated = true;
	}
	spin_unlock(&md->req_lock);
	/* @old cannot be released before it is no longer the emulator. */
	if (old) {
		old_cf = old->private_data;
		refcount_inc(&old_cf->ref);
	}
	if (md->attached_once)
		md->restarts++;
	md->attached_once = true;
	WRITE_ONCE(md->emulator_pid, task_tgid_nr(current));

	wake_up_all(&md->attach_wq);
	wake_up_all(&md->req_wq);
	muser_mdev_info(md, "emulator %s (pid %d)\n",
			old ? "took over" : "attached", md->emulator_pid);
out_unlock:
	mutex_unlock(&md->lock);
	if (ret)
		return ret;
	muser_nl_event(md, MUSER_EVENT_EMULATOR_ATTACHED,
		       task_tgid_nr(current), 0, 0);
	if (old) {
		/* Guest memory is the new emulator's alone from now on. */
		muser_dma_revoke_window(md);
		muser_dma_drop_holds(md, old_cf, old);
		muser_takeover_wait(md, old, old_cf, gated);
	}
	return 0;
}

static int muser_detach(struct muser_mdev *md, struct file *file)
{
	pid_t pid;

	mutex_lock(&md->lock);
	if (md->emulator != file) {
		mutex_unlock(&md->lock);
		return -ENOTCONN;
	}
	pid = md->emulator_pid;
	WRITE_ONCE(md->emulator_pid, 0);
	spin_lock(&md->req_lock);
	md->emulator = NULL;
	muser_requeue_inflight(md, file);
	muser_ring_retire(md, file, true);
	/* Unmap notices were about the holds, which go with it. */
	md->posted &= ~MUSER_POSTED_UNMAP_ALL;
	md->nr_unmaps = 0;
	spin_unlock(&md->req_lock);
	mutex_unlock(&md->lock);
	muser_dma_revoke_window(md);
	muser_dma_drop_holds(md, file->private_data, file);

	/* Readers of the old file must notice they are no longer attached. */
	wake_up_all(&md->req_wq);
	muser_mdev_info(md, "emulator detached\n");
	muser_nl_event(md, MUSER_EVENT_EMULATOR_DETACHED, pid, 0, 0);
	return 0;
}

static int muser_ctl_release(struct inode *inode, struct file *file)
{
	struct muser_ctl_file *cf = file->private_data;
	struct muser_mdev *md = cf->md;

	if (muser_detach(md, file) == -ENOTCONN)
		/* Taken over, or never attached: only what it still holds. */
		muser_dma_drop_holds(md, cf, file);
	spin_lock(&md->req_lock);
	muser_requeue_inflight(md, file);
	cf->released = true;
	spin_unlock(&md->req_lock);
	wake_up_all(&md->req_wq);
	muser_ring_release(md, file);
	muser_ctl_file_put(cf);
	return 0;
}

static ssize_t muser_ctl_read(struct file *file, char __user *buf,
			      size_t count, loff_t *ppos)
{
	return muser_deliver(file_to_muser(file), file, buf, count);
}

static ssize_t muser_ctl_write(struct file *file, const char __user *buf,
			       size_t count, loff_t *ppos)
{
	return muser_complete(file_to_muser(file), file, buf, count);
}

static __poll_t muser_ctl_poll(struct file *file, poll_table *wait)
{
	struct muser_mdev *md = file_to_muser(file);
	__poll_t mask = 0;

	poll_wait(file, &md->req_wq, wait);

	spin_lock(&md->req_lock);
	if (md->emulator != file)
		mask = READ_ONCE(md->dead) ? EPOLLHUP | EPOLLERR : EPOLLERR;
	else if (muser_has_requests(md) || muser_ring_has_requests(file))
		mask = EPOLLIN | EPOLLRDNORM;
	spin_unlock(&md->req_lock);

	return mask | (mask & EPOLLERR ? 0 : EPOLLOUT | EPOLLWRNORM);
}

static long muser_ctl_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct muser_mdev *md = file_to_muser(file);

	switch (cmd) {
	case MUSER_IOC_ATTACH:
		return muser_attach(md, file, (void __user *)arg, false);
	case MUSER_IOC_TAKEOVER:
		return muser_attach(md, file, (void __user *)arg, true);
	case MUSER_IOC_DETACH:
		return muser_detach(md, file);
	case MUSER_IOC_TRIGGER_IRQ:
		if (READ_ONCE(md->emulator) != file)
			return -ENOTCONN;
		return muser_ctl_irq_trigger(md, arg);
	case MUSER_IOC_GET_IRQ_STATE:
		return muser_irq_get_state(md, arg);
	case MUSER_IOC_DMA_MAP:
		return muser_ctl_dma_map(md, file, (void __user *)arg);
	case MUSER_IOC_DMA_RELEASE:
		return muser_dma_release(md, file, (void __user *)arg);
	case MUSER_IOC_DMA_RW:
		return muser_dma_rw(md, file, (void __user *)arg);
	case MUSER_IOC_RING_SETUP:
		return muser_ring_setup(md, file, (void __user *)arg);
	case MUSER_IOC_RING_ENTER:
		return muser_ring_enter(md, file);
	}
	return -ENOTTY;
}

/* The emulator's view of device memory and of guest memory. */
static int muser_ctl_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct muser_mdev *md = file_to_muser(file);
	int ret = -ENODEV;

	/* Guest memory and the state area are the emulator's only. */
	if (vma->vm_pgoff >= MUSER_DMA_OFFSET >> PAGE_SHIFT)
		return READ_ONCE(md->emulator) == file ?
		       muser_dma_mmap(md, vma) : -ENOTCONN;
	if (vma->vm_pgoff >= MUSER_STATE_OFFSET >> PAGE_SHIFT)
		return READ_ONCE(md->emulator) == file ?
		       muser_state_mmap(md, vma) : -ENOTCONN;
	/* The file's own request ring. */
	if (vma->vm_pgoff >= MUSER_RING_OFFSET >> PAGE_SHIFT)
		return muser_ring_mmap(md, file, vma);

	mutex_lock(&md->lock);
	if (md->has_info)
		ret = muser_devmem_mmap(md, &md->info, vma, false);
	mutex_unlock(&md->lock);
	return ret;
}

static const struct file_operations muser_ctl_fops = {
	.owner = THIS_MODULE,
	.open = muser_ctl_open,
	.release = muser_ctl_release,
	.read = muser_ctl_read,
	.write = muser_ctl_write,
	.poll = muser_ctl_poll,
	.mmap = muser_ctl_mmap,
	.unlocked_ioctl = muser_ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

int muser_ctl_create(struct muser_mdev *md, struct device *parent)
{
	dev_t devt;
	int ret;

	ret = muser_inode_create(md);
	if (ret)
		return ret;
	ret = ida_alloc_max(&muser_minors, MUSER_MINORS - 1, GFP_KERNEL);
	if (ret < 0)
		goto err_destroy_inode;
	md->minor = ret;
	devt = MKDEV(MAJOR(muser_devt), md->minor);

	/*
	 * Open files pin the cdev, and the cdev pins the vfio_device this
	 * structure lives in, so release() can run after the mdev is gone.
	 */
	cdev_init(&md->cdev, &muser_ctl_fops);
	md->cdev.owner = THIS_MODULE;
	cdev_set_parent(&md->cdev, &md->vdev.device.kobj);
	ret = cdev_add(&md->cdev, devt, 1);
	if (ret)
		goto err_free_minor;

	md->ctl_dev = device_create(muser_class, parent, devt, md, "%s",
				    md->uuid);
	if (IS_ERR(md->ctl_dev)) {
		ret = PTR_ERR(md->ctl_dev);
		goto err_del_cdev;
	}
	return 0;

err_del_cdev:
	cdev_del(&md->cdev);
err_free_minor:
	ida_free(&muser_minors, md->minor);
err_destroy_inode:
	muser_inode_destroy(md);
	return ret;
}

/* The mdev is going: the VMM has closed it, the emulator must let go. */
void muser_ctl_destroy(struct muser_mdev *md)
{
	device_unregister(md->ctl_dev);
	cdev_del(&md->cdev);
	ida_free(&muser_minors, md->minor);

	mutex_lock(&md->lock);
	WRITE_ONCE(md->dead, true);
	spin_lock(&md->req_lock);
	if (md->emulator)
		muser_ring_retire(md, md->emulator, false);
	md->emulator = NULL;
	spin_unlock(&md->req_lock);
	mutex_unlock(&md->lock);
	wake_up_all(&md->req_wq);
	wake_up_all(&md->attach_wq);
}

static char *muser_devnode(MUSER_DEVNODE_CONST struct device *dev,
			   umode_t *mode)
{
	return kasprintf(GFP_KERNEL, "muser/%s", dev_name(dev));
}

int muser_ctl_init(void)
{
	int ret;

	ret = alloc_chrdev_region(&muser_devt, 0, MUSER_MINORS, "muser");
	if (ret)
		return ret;
	muser_class->devnode = muser_devnode;
	return 0;
}

void muser_ctl_exit(void)
{
	unregister_chrdev_region(muser_devt, MUSER_MINORS);
	ida_destroy(&muser_minors);
}
