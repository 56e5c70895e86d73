// SPDX-License-Identifier: GPL-2.0
/*
 * Requests from VMM threads to the emulator, and the emulator's replies.
 *
 * A VMM thread queues a struct muser_wait on md->pending and sleeps on its
 * completion. The emulator's read() moves requests to md->inflight and copies
 * them out; its write() finds each reply's request by id, copies the result
 * and completes it. Every copy to or from userspace goes through a kernel
 * bounce buffer so nothing faults under req_lock, and a waiter that times
 * out takes its request off whichever list holds it.
 */
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "muser_dev.h"

/* Most bytes one read() stages: a few pages amortise the syscall. */
#define MUSER_DELIVER_MAX	(4 * MUSER_READ_BUF_MIN)

int muser_request(struct muser_dev *md, struct muser_wait *w)
{
	unsigned long timeout;
	long left;

	init_completion(&w->done);
	w->finished = false;
	w->error = 0;

	spin_lock(&md->req_lock);
	w->hdr.id = ++md->next_id;
	w->hdr.flags = 0;
	list_add_tail(&w->node, &md->pending);
	spin_unlock(&md->req_lock);
	wake_up_interruptible_poll(&md->req_wq, EPOLLIN | EPOLLRDNORM);

	timeout = msecs_to_jiffies(READ_ONCE(muser_timeout_ms));
	left = wait_for_completion_killable_timeout(&w->done, timeout);

	spin_lock(&md->req_lock);
	if (!w->finished) {
		list_del(&w->node);
		w->error = left < 0 ? -EINTR : -ETIMEDOUT;
		if (!left)
			muser_err(md, "request %llu (type %u) timed out after %u ms%s\n",
				  w->hdr.id, w->hdr.type,
				  READ_ONCE(muser_timeout_ms),
				  md->emulator ? "" : ": no emulator attached");
	}
	spin_unlock(&md->req_lock);
	return w->error;
}

/* Caller holds req_lock and has just detached the emulator. */
void muser_requeue_inflight(struct muser_dev *md)
{
	struct muser_wait *w;

	lockdep_assert_held(&md->req_lock);
	list_for_each_entry(w, &md->inflight, node)
		w->hdr.flags |= MUSER_REQ_F_REPLAYED;
	/* Delivered requests are older than pending ones: they go first. */
	list_splice_init(&md->inflight, &md->pending);
}

/* The VMM changed interrupt configuration: tell the emulator, coalesced. */
void muser_post_irq_state(struct muser_dev *md)
{
	spin_lock(&md->req_lock);
	md->irq_state_dirty = true;
	spin_unlock(&md->req_lock);
	wake_up_interruptible_poll(&md->req_wq, EPOLLIN | EPOLLRDNORM);
}

static size_t muser_req_size(const struct muser_wait *w)
{
	return sizeof(w->hdr) + ALIGN(w->hdr.data_len, MUSER_ALIGN);
}

/*
 * Move as many pending requests as fit in @cap bytes to inflight, staging
 * them in @stage. Returns the bytes staged, -ENOTCONN if @file is not the
 * attached emulator, -ENODEV once the device is removed.
 */
static ssize_t muser_stage_requests(struct muser_dev *md, struct file *file,
				    u8 *stage, size_t cap)
{
	struct muser_wait *w, *tmp;
	size_t used = 0;

	spin_lock(&md->req_lock);
	if (md->emulator != file) {
		spin_unlock(&md->req_lock);
		return READ_ONCE(md->dead) ? -ENODEV : -ENOTCONN;
	}
	if (md->irq_state_dirty) {
		const struct muser_req posted = { .type = MUSER_REQ_IRQ_STATE };

		memcpy(stage, &posted, sizeof(posted));
		used = sizeof(posted);
		md->irq_state_dirty = false;
	}
	list_for_each_entry_safe(w, tmp, &md->pending, node) {
		size_t need = muser_req_size(w);

		if (used + need > cap)
			break;
		memcpy(stage + used, &w->hdr, sizeof(w->hdr));
		if (w->hdr.data_len) {
			memcpy(stage + used + sizeof(w->hdr), w->data,
			       w->hdr.data_len);
			memset(stage + used + sizeof(w->hdr) + w->hdr.data_len,
			       0, need - sizeof(w->hdr) - w->hdr.data_len);
		}
		list_move_tail(&w->node, &md->inflight);
		used += need;
	}
	spin_unlock(&md->req_lock);
	return used;
}

/* The copy to the emulator failed: deliver these requests again. */
static void muser_unstage_requests(struct muser_dev *md, const u8 *stage,
				   size_t used)
{
	struct list_head *pos = &md->pending;
	size_t off;

	spin_lock(&md->req_lock);
	for (off = 0; off < used; ) {
		const struct muser_req *hdr = (const void *)(stage + off);
		struct muser_wait *w;

		if (hdr->type == MUSER_REQ_IRQ_STATE)
			md->irq_state_dirty = true;
		list_for_each_entry(w, &md->inflight, node) {
			if (w->hdr.id == hdr->id) {
				/* Keep their order, ahead of newer requests. */
				list_move(&w->node, pos);
				pos = &w->node;
				break;
			}
		}
		off += sizeof(*hdr) + ALIGN(hdr->data_len, MUSER_ALIGN);
	}
	spin_unlock(&md->req_lock);
	wake_up_interruptible_poll(&md->req_wq, EPOLLIN | EPOLLRDNORM);
}

ssize_t muser_deliver(struct muser_dev *md, struct file *file,
		      char __user *buf, size_t count)
{
	size_t cap = min_t(size_t, count, MUSER_DELIVER_MAX);
	ssize_t used;
	u8 *stage;

	if (count < MUSER_READ_BUF_MIN)
		return -EINVAL;

	stage = kvmalloc(cap, GFP_KERNEL);
	if (!stage)
		return -ENOMEM;

	for (;;) {
		used = muser_stage_requests(md, file, stage, cap);
		if (used)
			break;
		if (file->f_flags & O_NONBLOCK) {
			used = -EAGAIN;
			break;
		}
		if (wait_event_interruptible(md->req_wq,
					     READ_ONCE(md->emulator) != file ||
					     READ_ONCE(md->irq_state_dirty) ||
					     !list_empty_careful(&md->pending))) {
			used = -ERESTARTSYS;
			break;
		}
	}
	if (used > 0 && copy_to_user(buf, stage, used)) {
		muser_unstage_requests(md, stage, used);
		used = -EFAULT;
	}
	kvfree(stage);
	return used;
}

/* Validate one reply against its request and settle the request. */
static int muser_settle(struct muser_dev *md, struct muser_wait *w,
			const struct muser_reply *r, const void *data)
{
	u32 want = !r->error && w->hdr.type == MUSER_REQ_READ ? w->hdr.len : 0;

	lockdep_assert_held(&md->req_lock);

	if (r->len != want) {
		muser_err(md, "reply %llu: %u bytes of data, expected %u\n",
			  r->id, r->len, want);
		/* Fail the VMM's access now rather than at the timeout. */
		w->error = -EIO;
	} else {
		w->error = -r->error;
		if (r->len)
			memcpy(w->data, data, r->len);
	}
	w->finished = true;
	list_del(&w->node);
	complete(&w->done);
	return r->len != want ? -EINVAL : 0;
}

static int muser_complete_one(struct muser_dev *md, struct file *file,
			      const struct muser_reply *r, const void *data)
{
	struct muser_wait *w;
	int ret = -ENOENT;

	spin_lock(&md->req_lock);
	if (md->emulator != file) {
		ret = -ENOTCONN;
		goto out_unlock;
	}
	list_for_each_entry(w, &md->inflight, node) {
		if (w->hdr.id == r->id) {
			ret = muser_settle(md, w, r, data);
			break;
		}
	}
out_unlock:
	spin_unlock(&md->req_lock);
	return ret;
}

ssize_t muser_complete(struct muser_dev *md, struct file *file,
		       const char __user *buf, size_t count)
{
	u8 small[MUSER_INLINE_DATA];
	size_t done = 0;
	void *data;
	int ret = 0;

	while (count - done >= sizeof(struct muser_reply)) {
		struct muser_reply r;
		size_t need;

		if (copy_from_user(&r, buf + done, sizeof(r))) {
			ret = -EFAULT;
			break;
		}
		need = sizeof(r) + ALIGN(r.len, MUSER_ALIGN);
		if (r.error < 0 || r.error >= ERESTARTSYS ||
		    r.len > MUSER_MAX_DATA || (r.error && r.len) ||
		    need > count - done) {
			muser_err(md, "reply %llu: bad header (error %d, len %u)\n",
				  r.id, r.error, r.len);
			ret = -EINVAL;
			break;
		}

		data = small;
		if (r.len > sizeof(small)) {
			data = kmalloc(r.len, GFP_KERNEL);
			if (!data) {
				ret = -ENOMEM;
				break;
			}
		}
		if (copy_from_user(data, buf + done + sizeof(r), r.len))
			ret = -EFAULT;
		else
			ret = muser_complete_one(md, file, &r, data);
		if (data != small)
			kfree(data);
		if (ret)
			break;
		done += need;
	}

	if (done)
		return done;
	return ret ? ret : -EINVAL;
}
