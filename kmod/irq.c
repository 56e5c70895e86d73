// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupts: the eventfds the VMM sets with VFIO_DEVICE_SET_IRQS are held
 * here, so an emulator raises a vector with one ioctl and never needs to
 * know which eventfd is current.
 */
#include <linux/eventfd.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "muser_mdev.h"

static void muser_irq_release(struct muser_irq_ctx *ctx, u32 start, u32 count)
{
	u32 i;

	for (i = start; i < start + count && i < ctx->count; i++) {
		if (ctx->trigger[i]) {
			eventfd_ctx_put(ctx->trigger[i]);
			ctx->trigger[i] = NULL;
		}
	}
}

/* Drop every vector of an index: it reports count 0 again. */
static void muser_irq_disable(struct muser_irq_ctx *ctx)
{
	muser_irq_release(ctx, 0, ctx->count);
	kfree(ctx->trigger);
	ctx->trigger = NULL;
	ctx->count = 0;
}

void muser_irq_release_all(struct muser_mdev *md)
{
	unsigned int i;

	vfio_virqfd_disable(&md->intx_unmask);
	mutex_lock(&md->irq_lock);
	for (i = 0; i < MUSER_NUM_IRQS; i++)
		muser_irq_disable(&md->irqs[i]);
	md->intx_masked = false;
	md->intx_pending = false;
	mutex_unlock(&md->irq_lock);
}

int muser_irq_info(struct muser_mdev *md, unsigned long arg)
{
	const unsigned long minsz = offsetofend(struct vfio_irq_info, count);
	const struct muser_device_info *info;
	struct vfio_irq_info irq;

	if (copy_from_user(&irq, (void __user *)arg, minsz))
		return -EFAULT;
	if (irq.argsz < minsz)
		return -EINVAL;

	info = muser_wait_layout(md);
	if (IS_ERR(info))
		return PTR_ERR(info);
	if (irq.index >= info->num_irqs)
		return -EINVAL;

	muser_irq_layout(info, irq.index, &irq.flags, &irq.count);
	return copy_to_user((void __user *)arg, &irq, minsz) ? -EFAULT : 0;
}

/* Make room for @count vectors of @index; caller holds irq_lock. */
static int muser_irq_grow(struct muser_irq_ctx *ctx, u32 count)
{
	struct eventfd_ctx **trigger;

	if (count <= ctx->count)
		return 0;
	trigger = krealloc_array(ctx->trigger, count, sizeof(*trigger),
				 GFP_KERNEL);
	if (!trigger)
		return -ENOMEM;
	memset(trigger + ctx->count, 0,
	       (count - ctx->count) * sizeof(*trigger));
	ctx->trigger = trigger;
	ctx->count = count;
	return 0;
}

static void muser_irq_signal(struct muser_irq_ctx *ctx, u32 vector)
{
	if (vector < ctx->count && ctx->trigger[vector])
		muser_eventfd_signal(ctx->trigger[vector]);
}

/*
 * Set eventfds for [start, start + count): take every new context first so
 * that a bad fd changes nothing, then swap them in.
 */
static int muser_irq_set_eventfds(struct muser_irq_ctx *ctx, u32 start,
				  u32 count, const s32 *fds)
{
	struct eventfd_ctx **new;
	u32 i;
	int ret;

	new = kcalloc(count, sizeof(*new), GFP_KERNEL);
	if (!new)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		if (fds[i] < 0)
			continue;
		new[i] = eventfd_ctx_fdget(fds[i]);
		if (IS_ERR(new[i])) {
			ret = PTR_ERR(new[i]);
			new[i] = NULL;
			goto err_put;
		}
	}
	ret = muser_irq_grow(ctx, start + count);
	if (ret)
		goto err_put;

	muser_irq_release(ctx, start, count);
	memcpy(ctx->trigger + start, new, count * sizeof(*new));
	kfree(new);
	return 0;

err_put:
	while (i--)
		if (new[i])
			eventfd_ctx_put(new[i]);
	kfree(new);
	return ret;
}

static int muser_irq_set_trigger(struct muser_mdev *md,
				 const struct vfio_irq_set *hdr, const void *data)
{
	struct muser_irq_ctx *ctx = &md->irqs[hdr->index];
	u32 i;

	lockdep_assert_held(&md->irq_lock);
	switch (hdr->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_EVENTFD:
		if (!hdr->count)
			return 0;
		return muser_irq_set_eventfds(ctx, hdr->start, hdr->count, data);
	case VFIO_IRQ_SET_DATA_NONE:
		if (!hdr->count) {	/* disable the whole index */
			muser_irq_disable(ctx);
			if (hdr->index == VFIO_PCI_INTX_IRQ_INDEX) {
				md->intx_masked = false;
				md->intx_pending = false;
			}
			return 0;
		}
		for (i = 0; i < hdr->count; i++)
			muser_irq_signal(ctx, hdr->start + i);
		return 0;
	case VFIO_IRQ_SET_DATA_BOOL:
		for (i = 0; i < hdr->count; i++)
			if (((const u8 *)data)[i])
				muser_irq_signal(ctx, hdr->start + i);
		return 0;
	}
	return -EINVAL;
}

/* INTx is level-triggered and automasked: each trigger masks it. */
static void muser_intx_fire(struct muser_mdev *md)
{
	lockdep_assert_held(&md->irq_lock);

	if (md->intx_masked) {
		md->intx_pending = true;
		return;
	}
	md->intx_masked = true;
	md->intx_pending = false;
	muser_irq_signal(&md->irqs[VFIO_PCI_INTX_IRQ_INDEX], 0);
}

static void muser_intx_unmask(struct muser_mdev *md)
{
	lockdep_assert_held(&md->irq_lock);

	md->intx_masked = false;
	if (md->intx_pending)
		muser_intx_fire(md);
}

/* The VMM signalled its INTx unmask eventfd (run from a workqueue). */
static void muser_intx_unmask_thread(void *opaque, void *unused)
{
	struct muser_mdev *md = opaque;

	mutex_lock(&md->irq_lock);
	muser_intx_unmask(md);
	mutex_unlock(&md->irq_lock);
	muser_post(md, MUSER_POSTED_IRQ_STATE);
}

/*
 * VFIO_IRQ_SET_ACTION_UNMASK with an eventfd: called without irq_lock, as
 * tearing a virqfd down waits for its thread, which takes irq_lock.
 */
static int muser_intx_set_unmask_fd(struct muser_mdev *md, s32 fd)
{
	if (fd < 0) {
		vfio_virqfd_disable(&md->intx_unmask);
		return 0;
	}
	return vfio_virqfd_enable(md, NULL, muser_intx_unmask_thread, NULL,
				  &md->intx_unmask, fd);
}

static int muser_intx_set_mask(struct muser_mdev *md,
			       const struct vfio_irq_set *hdr, const void *data)
{
	bool mask = (hdr->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) ==
		    VFIO_IRQ_SET_ACTION_MASK;

	lockdep_assert_held(&md->irq_lock);
	/* A count of 0 is valid and comes with no data: a no-op. */
	switch (hdr->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_NONE:
		if (!hdr->count)
			return 0;
		break;
	case VFIO_IRQ_SET_DATA_BOOL:
		if (!hdr->count || !*(const u8 *)data)
			return 0;
		break;
	default:	/* a mask eventfd: not in vfio-pci either */
		return -EINVAL;
	}
	if (mask)
		md->intx_masked = true;
	else
		muser_intx_unmask(md);
	return 0;
}

int muser_set_irqs(struct muser_mdev *md, unsigned long arg)
{
	const unsigned long minsz = offsetofend(struct vfio_irq_set, count);
	const struct muser_device_info *info;
	struct vfio_irq_set hdr;
	size_t data_size = 0;
	void *data = NULL;
	u32 action, count, flags;
	int ret;

	if (copy_from_user(&hdr, (void __user *)arg, minsz))
		return -EFAULT;

	info = muser_wait_layout(md);
	if (IS_ERR(info))
		return PTR_ERR(info);

	count = 0;
	if (hdr.index < info->num_irqs)
		muser_irq_layout(info, hdr.index, &flags, &count);
	ret = vfio_set_irqs_validate_and_prepare(&hdr, count, info->num_irqs,
						 &data_size);
	if (ret)
		return ret;
	if (data_size) {
		data = memdup_user((void __user *)(arg + minsz), data_size);
		if (IS_ERR(data))
			return PTR_ERR(data);
	}

	action = hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	if (action == VFIO_IRQ_SET_ACTION_UNMASK && hdr.count &&
	    hdr.index == VFIO_PCI_INTX_IRQ_INDEX &&
	    (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) == VFIO_IRQ_SET_DATA_EVENTFD) {
		ret = muser_intx_set_unmask_fd(md, *(s32 *)data);
		kfree(data);
		return ret;
	}
	/* Disabling INTx drops its unmask eventfd too, as vfio-pci does. */
	if (action == VFIO_IRQ_SET_ACTION_TRIGGER && !hdr.count &&
	    (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) == VFIO_IRQ_SET_DATA_NONE &&
	    hdr.index == VFIO_PCI_INTX_IRQ_INDEX)
		vfio_virqfd_disable(&md->intx_unmask);

	mutex_lock(&md->irq_lock);
	switch (action) {
	case VFIO_IRQ_SET_ACTION_TRIGGER:
		ret = muser_irq_set_trigger(md, &hdr, data);
		break;
	case VFIO_IRQ_SET_ACTION_MASK:
	case VFIO_IRQ_SET_ACTION_UNMASK:
		if (hdr.index == VFIO_PCI_INTX_IRQ_INDEX)
			ret = muser_intx_set_mask(md, &hdr, data);
		else
			ret = -ENOTTY;	/* as vfio-pci */
		break;
	default:
		ret = -EINVAL;
	}
	mutex_unlock(&md->irq_lock);
	kfree(data);
	if (!ret)
		muser_post(md, MUSER_POSTED_IRQ_STATE);
	return ret;
}

/* MUSER_IOC_GET_IRQ_STATE: what the VMM has set up for one index. */
int muser_irq_get_state(struct muser_mdev *md, unsigned long arg)
{
	struct muser_irq_state *st;
	struct muser_irq_ctx *ctx;
	u32 i;
	int ret = 0;

	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	if (copy_from_user(st, (void __user *)arg, offsetofend(typeof(*st), index))) {
		ret = -EFAULT;
		goto out_free;
	}
	if (st->argsz < sizeof(*st) || st->index >= MUSER_NUM_IRQS) {
		ret = -EINVAL;
		goto out_free;
	}

	mutex_lock(&md->irq_lock);
	ctx = &md->irqs[st->index];
	st->count = ctx->count;
	for (i = 0; i < ctx->count; i++)
		if (ctx->trigger[i])
			st->enabled[i / 64] |= 1ULL << (i % 64);
	if (st->index == VFIO_PCI_INTX_IRQ_INDEX && md->intx_masked)
		st->flags |= MUSER_IRQ_STATE_F_MASKED;
	mutex_unlock(&md->irq_lock);

	if (copy_to_user((void __user *)arg, st, sizeof(*st)))
		ret = -EFAULT;
out_free:
	kfree(st);
	return ret;
}

/* MUSER_IOC_TRIGGER_IRQ from the emulator. */
int muser_ctl_irq_trigger(struct muser_mdev *md, unsigned long arg)
{
	const struct muser_device_info *info = &md->info;
	struct muser_irq_trigger t;
	struct muser_irq_ctx *ctx;
	u32 i, flags, count;
	int ret = 0;

	if (copy_from_user(&t, (void __user *)arg, sizeof(t)))
		return -EFAULT;
	if (t.argsz < sizeof(t) || t.index >= MUSER_NUM_IRQS ||
	    t.index == VFIO_PCI_REQ_IRQ_INDEX)
		return -EINVAL;
	/*
	 * The layout is set (the caller attached) but a takeover may change
	 * it while no VMM has the device open: ctx->count bounds the loop.
	 */
	muser_irq_layout(info, t.index, &flags, &count);
	if (!t.count || t.start >= count || t.count > count - t.start)
		return -EINVAL;

	mutex_lock(&md->irq_lock);
	ctx = &md->irqs[t.index];
	for (i = t.start; i < t.start + t.count; i++) {
		if (i >= ctx->count || !ctx->trigger[i]) {
			ret = -ENOENT;
			continue;
		}
		if (t.index == VFIO_PCI_INTX_IRQ_INDEX)
			muser_intx_fire(md);
		else
			muser_irq_signal(ctx, i);
	}
	mutex_unlock(&md->irq_lock);
	return ret;
}

/* vfio_unregister_group_dev() asks the VMM to let the device go. */
void muser_irq_request(struct muser_mdev *md, unsigned int count)
{
	struct muser_irq_ctx *ctx = &md->irqs[VFIO_PCI_REQ_IRQ_INDEX];

	mutex_lock(&md->irq_lock);
	if (ctx->count && ctx->trigger[0]) {
		if (!count)
			muser_mdev_info(md, "asking the VMM to release the device\n");
		muser_eventfd_signal(ctx->trigger[0]);
	} else if (!count) {
		muser_mdev_info(md, "no device request channel registered, blocked until released by the VMM\n");
	}
	mutex_unlock(&md->irq_lock);
}
