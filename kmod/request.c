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
 *
 * A waiter spins for its answer, up to spin_us, before it sleeps, as long
 * as answers come that fast: an emulator that polls then answers without a
 * wake-up on either side. A posted write has no waiter: it is queued, and
 * freed when acknowledged (a small one's wait is kept for the next one),
 * or when the last VMM close gives up on it.
 */
#include <linux/ktime.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "muser_mdev.h"

/* Most bytes one read() stages: a few pages amortise the syscall. */
#define MUSER_DELIVER_MAX	(4 * MUSER_READ_BUF_MIN)

/*
 * After queueing (the lists are read locklessly by a waiting emulator):
 * wq_has_sleeper()'s barrier pairs with the one in the emulator's wait,
 * so a polling emulator, which never sleeps, costs no wake-up.
 */
void muser_wake_emulator(struct muser_mdev *md)
{
	if (wq_has_sleeper(&md->req_wq))
		wake_up_interruptible_poll(&md->req_wq, EPOLLIN | EPOLLRDNORM);
}

/* A request settled with @error (0 or -errno): the netlink figures. */
static void muser_count_request(struct muser_mdev *md, int error)
{
	lockdep_assert_held(&md->req_lock);
	md->nr_requests++;
	if (error) {
		md->nr_failed++;
		md->last_error = -error;
	}
}

static bool muser_slot_free(struct muser_mdev *md, bool posted)
{
	lockdep_assert_held(&md->req_lock);
	return md->nr_queued < MUSER_MAX_QUEUED &&
	       (!posted || md->nr_posted_out < MUSER_MAX_POSTED);
}

static bool muser_take_slot_locked(struct muser_mdev *md, bool posted)
{
	bool ok;

	lockdep_assert_held(&md->req_lock);
	ok = muser_slot_free(md, posted);
	/* Answers waiting in a ring free slots once taken. */
	if (!ok && muser_ring_reap(md))
		ok = muser_slot_free(md, posted);
	if (ok) {
		md->nr_queued++;
		WRITE_ONCE(md->nr_posted_out, md->nr_posted_out + posted);
	}
	return ok;
}

static bool muser_take_slot(struct muser_mdev *md, bool posted)
{
	bool ok;

	spin_lock(&md->req_lock);
	ok = muser_take_slot_locked(md, posted);
	spin_unlock(&md->req_lock);
	return ok;
}

/*
 * A place for one request, taken before the VMM thread allocates for it:
 * however many threads a VMM has, a device queues MUSER_MAX_QUEUED.
 */
int muser_request_slot(struct muser_mdev *md)
{
	unsigned int timeout_ms = READ_ONCE(muser_timeout_ms);
	long left;

	if (muser_take_slot(md, false))
		return 0;
	muser_ring_wait_begin(md);
	left = wait_event_killable_timeout(md->slot_wq,
					   muser_take_slot(md, false),
					   msecs_to_jiffies(timeout_ms));
	muser_ring_wait_end(md);
	if (left > 0)
		return 0;
	if (!left)
		muser_mdev_err(md, "%u requests queued for %u ms: the emulator is not keeping up\n",
			       MUSER_MAX_QUEUED, timeout_ms);
	return left < 0 ? -EINTR : -ETIMEDOUT;
}

static void muser_unslot_locked(struct muser_mdev *md, bool posted)
{
	lockdep_assert_held(&md->req_lock);
	md->nr_queued--;
	WRITE_ONCE(md->nr_posted_out, md->nr_posted_out - posted);
}

/*
 * After freeing slots: wq_has_sleeper()'s smp_mb() pairs with the one in
 * set_current_state() of the waiter's wait_event_*() (whose condition
 * reads the counts under req_lock, or nr_posted_out with READ_ONCE), so a
 * wait queue nobody sleeps on, as on every request of a device that keeps
 * up, costs no lock of its own.
 */
static void muser_wake_slot(struct muser_mdev *md)
{
	if (wq_has_sleeper(&md->slot_wq))
		wake_up(&md->slot_wq);
}

static void muser_unslot(struct muser_mdev *md, bool posted)
{
	spin_lock(&md->req_lock);
	muser_unslot_locked(md, posted);
	spin_unlock(&md->req_lock);
	muser_wake_slot(md);
}

void muser_request_unslot(struct muser_mdev *md)
{
	muser_unslot(md, false);
}

#define MUSER_SPIN_FAILS	4

/*
 * How long to spin for an answer: spin_us unless MUSER_SPIN_FAILS spins in
 * a row did not get theirs (a slow emulator, or one on this very CPU,
 * which the spin only delays); one miss, an emulator preempted once, does
 * not stop them. Every 16th waited request (@probe) spins anyway, to
 * notice an emulator that got faster; counted apart from posted writes,
 * which no pattern of them can then keep from probing.
 */
static u64 muser_spin_budget(struct muser_mdev *md, bool probe)
{
	if (READ_ONCE(md->spin_fails) < MUSER_SPIN_FAILS || probe)
		return (u64)READ_ONCE(muser_spin_us) * NSEC_PER_USEC;
	return 0;
}

/* Counts a spin's outcome for muser_spin_budget(). */
static void muser_spin_outcome(struct muser_mdev *md, bool spun)
{
	u8 fails = READ_ONCE(md->spin_fails);

	if (spun && fails)
		WRITE_ONCE(md->spin_fails, 0);
	else if (!spun && fails < MUSER_SPIN_FAILS)
		WRITE_ONCE(md->spin_fails, fails + 1);
}

/* Whether @w was answered within @budget ns; takes answers from rings. */
static bool muser_spin(struct muser_mdev *md, struct muser_wait *w, u64 start,
		       u64 budget)
{
	unsigned int turn = 0;

	while (!READ_ONCE(w->finished)) {
		if (need_resched() || fatal_signal_pending(current))
			return false;
		/*
		 * The clock on the first turn, then every 8th: it is not
		 * free. So a spin may overrun its budget by 7 turns, each a
		 * bounded reap of the rings.
		 */
		if (!(turn++ & 7) && ktime_get_ns() - start >= budget)
			return false;
		muser_ring_poll(md);
		cpu_relax();
	}
	return true;
}

/* An answer came, while spinning (@spun) or after a sleep. */
static void muser_note_wait(struct muser_mdev *md, bool spun)
{
	lockdep_assert_held(&md->req_lock);
	if (spun)
		md->nr_spun++;
	else
		md->nr_slept++;
}

/*
 * Queue @w and wait for its reply. The caller holds a slot: it is given
 * back here, in the hold of req_lock that settles the wait.
 */
int muser_request(struct muser_mdev *md, struct muser_wait *w)
{
	u64 start = ktime_get_ns(), budget;
	bool spun, probe, retiring = false;
	unsigned long timeout;
	long left = 1;

	init_completion(&w->done);
	w->finished = false;
	w->sleeping = false;
	w->error = 0;

	spin_lock(&md->req_lock);
	w->hdr.id = ++md->next_id;
	w->hdr.flags = 0;
	probe = !(++md->nr_waited & 15);
	list_add_tail(&w->node, &md->pending);
	muser_ring_sync(md);
	spin_unlock(&md->req_lock);
	muser_wake_emulator(md);

	/* Settled under req_lock, which is taken below: no completion wait. */
	budget = muser_spin_budget(md, probe);
	spun = budget && muser_spin(md, w, start, budget);
	if (budget)
		muser_spin_outcome(md, spun);
	if (!spun) {
		timeout = msecs_to_jiffies(READ_ONCE(muser_timeout_ms));
		spin_lock(&md->req_lock);
		muser_ring_wait_begin_locked(md);
		/* Only a waiter that sleeps costs its answer a complete(). */
		w->sleeping = !w->finished;
		spin_unlock(&md->req_lock);
		if (w->sleeping)
			left = wait_for_completion_killable_timeout(&w->done,
								    timeout);
	}

	spin_lock(&md->req_lock);
	if (!spun)
		muser_ring_wait_end_locked(md);
	if (w->finished) {
		/* Answered before it slept: counted with the spins. */
		muser_note_wait(md, !w->sleeping);
	} else {
		list_del(&w->node);
		/* It may have been all that was left for read(). */
		muser_ring_sync(md);
		w->error = left < 0 ? -EINTR : -ETIMEDOUT;
		muser_count_request(md, w->error);
		if (!left)
			muser_mdev_err(md, "request %llu (type %u) timed out after %u ms%s\n",
				       w->hdr.id, w->hdr.type,
				       READ_ONCE(muser_timeout_ms),
				       md->emulator ? "" : ": no emulator attached");
		retiring = md->retiring;
	}
	muser_unslot_locked(md, false);
	spin_unlock(&md->req_lock);
	muser_wake_slot(md);
	/* A takeover may be waiting for this request to go. */
	if (retiring)
		wake_up_all(&md->req_wq);
	return w->error;
}

/*
 * @file, an emulator that is going, read these requests and did not answer
 * them: deliver them again. Delivered requests are older than pending ones,
 * so they go first, in their order.
 */
void muser_requeue_inflight(struct muser_mdev *md, struct file *file)
{
	struct muser_wait *w, *tmp;
	struct list_head *pos = &md->pending;

	lockdep_assert_held(&md->req_lock);
	/* Answers already in a ring are answers: not replayed. */
	muser_ring_reap(md);
	list_for_each_entry_safe(w, tmp, &md->inflight, node) {
		if (w->owner != file)
			continue;
		w->hdr.flags |= MUSER_REQ_F_REPLAYED;
		list_move(&w->node, pos);
		pos = &w->node;
	}
	/* The caller wakes the emulator. */
	muser_ring_sync(md);
}

/* Whether @file still has requests to answer. */
bool muser_owns_inflight_locked(struct muser_mdev *md, struct file *file)
{
	struct muser_wait *w;

	lockdep_assert_held(&md->req_lock);
	list_for_each_entry(w, &md->inflight, node)
		if (w->owner == file)
			return true;
	return false;
}

bool muser_owns_inflight(struct muser_mdev *md, struct file *file)
{
	bool owns;

	spin_lock(&md->req_lock);
	owns = muser_owns_inflight_locked(md, file);
	spin_unlock(&md->req_lock);
	return owns;
}

/*
 * Queue @w, a posted write with header @hdr, behind every earlier request.
 * A kept wait keeps only its list node: every field a posted write uses is
 * set here, @data by the caller of a write too large for @inline_data;
 * @small_data, if set, holds the bytes of one that fits (the caller checked
 * hdr->len <= MUSER_INLINE_DATA).
 */
static void muser_queue_posted_locked(struct muser_mdev *md,
				      struct muser_wait *w,
				      const struct muser_req *hdr,
				      const u8 *small_data)
{
	lockdep_assert_held(&md->req_lock);
	w->owner = NULL;
	w->error = 0;
	w->finished = false;
	w->sleeping = false;
	w->hdr = *hdr;
	w->hdr.id = ++md->next_id;
	if (small_data) {
		w->data = w->inline_data;
		memcpy(w->inline_data, small_data, hdr->len);
	}
	md->nr_posted++;
	list_add_tail(&w->node, &md->pending);
	muser_ring_sync(md);
}

/*
 * A posted write of @len bytes from @buf at @off of region @index: queued
 * in order with every other request, and left there. -EAGAIN when
 * MUSER_MAX_POSTED are unanswered (or the queue is full): the caller makes
 * it an unposted write, which waits.
 */
int muser_request_posted(struct muser_mdev *md, u32 index, u64 off,
			 const char __user *buf, u32 len)
{
	struct muser_req hdr = {
		.type = MUSER_REQ_WRITE,
		.flags = MUSER_REQ_F_POSTED,
		.region = index,
		.offset = off,
		.len = len,
		.data_len = len,
	};
	bool small = len <= MUSER_INLINE_DATA, ok;
	u8 bounce[MUSER_INLINE_DATA];
	struct muser_wait *w = NULL;
	int ret;

	/*
	 * A doorbell's bytes go through the stack, so that taking a kept
	 * wait and queueing it is one hold of req_lock. On -EAGAIN the
	 * unposted write copies them again: only a saturated device pays.
	 */
	if (small && copy_from_user(bounce, buf, len))
		return -EFAULT;

	spin_lock(&md->req_lock);
	ok = muser_take_slot_locked(md, true);
	if (ok && small) {
		w = list_first_entry_or_null(&md->posted_free,
					     struct muser_wait, node);
		if (w) {
			list_del(&w->node);
			muser_queue_posted_locked(md, w, &hdr, bounce);
		}
	}
	spin_unlock(&md->req_lock);
	if (!ok)
		return -EAGAIN;
	if (w)
		goto out_queued;

	w = kzalloc(sizeof(*w) + (small ? 0 : len), GFP_KERNEL_ACCOUNT);
	if (!w) {
		ret = -ENOMEM;
		goto out_unslot;
	}
	/* Inline data: the wait is kept for the next one (muser_posted_put()). */
	if (!small) {
		w->data = w + 1;
		if (copy_from_user(w->data, buf, len)) {
			ret = -EFAULT;
			goto out_free;
		}
	}
	spin_lock(&md->req_lock);
	muser_queue_posted_locked(md, w, &hdr, small ? bounce : NULL);
	spin_unlock(&md->req_lock);
out_queued:
	muser_wake_emulator(md);
	return 0;

out_free:
	kfree(w);
out_unslot:
	muser_unslot(md, true);
	return ret;
}

static bool muser_is_posted(const struct muser_wait *w)
{
	return w->hdr.flags & MUSER_REQ_F_POSTED;
}

/*
 * A posted write is settled: a small one's wait is kept for the next
 * one, so that a doorbell costs no allocation. They are at most
 * MUSER_MAX_POSTED: a wait is allocated only when none is kept.
 */
static void muser_posted_put(struct muser_mdev *md, struct muser_wait *w)
{
	lockdep_assert_held(&md->req_lock);
	/* Under KASAN, freed: a stale pointer to a wait gets reported. */
	if (w->data == w->inline_data && !IS_ENABLED(CONFIG_KASAN))
		list_add(&w->node, &md->posted_free);
	else
		kfree(w);
}

/* The device goes: the waits kept for posted writes too. */
void muser_posted_free(struct muser_mdev *md)
{
	struct muser_wait *w, *tmp;

	list_for_each_entry_safe(w, tmp, &md->posted_free, node)
		kfree(w);
	INIT_LIST_HEAD(&md->posted_free);
}

/* Take the posted writes of @list off it, onto @dropped. */
static unsigned int muser_take_posted(struct muser_mdev *md,
				      struct list_head *list,
				      struct list_head *dropped)
{
	struct muser_wait *w, *tmp;
	unsigned int n = 0;

	lockdep_assert_held(&md->req_lock);
	list_for_each_entry_safe(w, tmp, list, node) {
		if (!muser_is_posted(w))
			continue;
		list_move_tail(&w->node, dropped);
		muser_count_request(md, -ETIMEDOUT);
		muser_unslot_locked(md, true);
		n++;
	}
	return n;
}

/*
 * The last VMM closed the device: give the emulator timeout_ms to
 * acknowledge the writes it posted, as the device would have done them,
 * then drop the rest (counted as failed).
 */
void muser_posted_flush(struct muser_mdev *md)
{
	unsigned int timeout_ms = READ_ONCE(muser_timeout_ms);
	struct muser_wait *w, *tmp;
	LIST_HEAD(dropped);
	unsigned int n;

	/* Not killable: a dying VMM's writes get the same time. */
	muser_ring_wait_begin(md);
	wait_event_timeout(md->slot_wq, !READ_ONCE(md->nr_posted_out),
			   msecs_to_jiffies(timeout_ms));
	muser_ring_wait_end(md);
	spin_lock(&md->req_lock);
	n = muser_take_posted(md, &md->pending, &dropped);
	n += muser_take_posted(md, &md->inflight, &dropped);
	muser_ring_sync(md);
	spin_unlock(&md->req_lock);
	list_for_each_entry_safe(w, tmp, &dropped, node)
		kfree(w);
	if (n) {
		muser_mdev_err(md, "%u posted writes dropped: not acknowledged within %u ms of the VMM's close\n",
			       n, timeout_ms);
		muser_wake_slot(md);
		/* A takeover may be waiting for them. */
		wake_up_all(&md->req_wq);
	}
}

/* Post MUSER_POSTED_* notices; each is read once however often posted. */
void muser_post(struct muser_mdev *md, u32 posted)
{
	spin_lock(&md->req_lock);
	md->posted |= posted;
	muser_ring_sync(md);
	spin_unlock(&md->req_lock);
	muser_wake_emulator(md);
}

static void muser_queue_unmap(struct muser_mdev *md, u64 iova, u64 size)
{
	unsigned int n = md->nr_unmaps;

	lockdep_assert_held(&md->req_lock);
	if (md->posted & MUSER_POSTED_UNMAP_ALL)
		return;
	if (size == ~0ull || n == MUSER_MAX_UNMAP_EVENTS) {
		/* Too many to tell apart: the emulator forgets everything. */
		md->posted |= MUSER_POSTED_UNMAP_ALL;
		md->nr_unmaps = 0;
	} else if (n && md->unmaps[n - 1].iova + md->unmaps[n - 1].size == iova) {
		md->unmaps[n - 1].size += size;
	} else {
		md->unmaps[md->nr_unmaps].iova = iova;
		md->unmaps[md->nr_unmaps].size = size;
		md->nr_unmaps++;
	}
}

/*
 * Guest memory went away: tell the attached emulator, whose holds it was
 * (a later one starts with none).
 */
void muser_post_dma_unmap(struct muser_mdev *md, u64 iova, u64 size)
{
	spin_lock(&md->req_lock);
	if (md->emulator)
		muser_queue_unmap(md, iova, size);
	muser_ring_sync(md);
	spin_unlock(&md->req_lock);
	muser_wake_emulator(md);
}

/* Something for the emulator to read. Caller holds req_lock, or peeks. */
bool muser_has_requests(struct muser_mdev *md)
{
	if (READ_ONCE(md->retiring))
		return false;
	return READ_ONCE(md->posted) || READ_ONCE(md->nr_unmaps) ||
	       !list_empty_careful(&md->pending);
}

/* Stage one posted notice; returns its size. */
static size_t muser_stage_posted(u8 *stage, u16 type,
				 const struct muser_dma_range *range)
{
	struct muser_req hdr = { .type = type };

	if (range) {
		hdr.len = sizeof(*range);
		hdr.data_len = sizeof(*range);
		memcpy(stage + sizeof(hdr), range, sizeof(*range));
	}
	memcpy(stage, &hdr, sizeof(hdr));
	return sizeof(hdr) + hdr.data_len;
}

/*
 * Stage every posted notice: unmaps first, so the emulator forgets guest
 * memory before anything else it reads. They always fit: see the static
 * assertion.
 */
static size_t muser_stage_all_posted(struct muser_mdev *md, u8 *stage)
{
	static const struct muser_dma_range all = { 0, ~0ull };
	size_t used = 0;
	unsigned int i;

	lockdep_assert_held(&md->req_lock);
	if (md->posted & MUSER_POSTED_UNMAP_ALL)
		used += muser_stage_posted(stage, MUSER_REQ_DMA_UNMAP, &all);
	for (i = 0; i < md->nr_unmaps; i++)
		used += muser_stage_posted(stage + used, MUSER_REQ_DMA_UNMAP,
					   &md->unmaps[i]);
	if (md->posted & MUSER_POSTED_IRQ_STATE)
		used += muser_stage_posted(stage + used, MUSER_REQ_IRQ_STATE,
					   NULL);
	if (md->posted & MUSER_POSTED_VMM_CLOSE)
		used += muser_stage_posted(stage + used, MUSER_REQ_VMM_CLOSE,
					   NULL);
	md->posted = 0;
	md->nr_unmaps = 0;
	return used;
}

static_assert((MUSER_MAX_UNMAP_EVENTS + 3) *
	      (sizeof(struct muser_req) + sizeof(struct muser_dma_range)) <=
	      MUSER_READ_BUF_MIN);

static size_t muser_req_size(const struct muser_wait *w)
{
	return sizeof(w->hdr) + ALIGN(w->hdr.data_len, MUSER_ALIGN);
}

/*
 * Move as many pending requests as fit in @cap bytes to inflight, staging
 * them in @stage. Returns the bytes staged, -ENOTCONN if @file is not the
 * attached emulator, -ENODEV once the device is removed.
 */
static ssize_t muser_stage_requests(struct muser_mdev *md, struct file *file,
				    u8 *stage, size_t cap, bool *held)
{
	struct muser_wait *w, *tmp;
	size_t used = 0;

	spin_lock(&md->req_lock);
	if (md->emulator != file) {
		spin_unlock(&md->req_lock);
		return READ_ONCE(md->dead) ? -ENODEV : -ENOTCONN;
	}
	if (muser_ring_holds_back(md, file)) {
		spin_unlock(&md->req_lock);
		return -EAGAIN;
	}
	if (md->retiring) {
		spin_unlock(&md->req_lock);
		return 0;
	}
	used = muser_stage_all_posted(md, stage);
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
		w->owner = file;
		list_move_tail(&w->node, &md->inflight);
		used += need;
	}
	/*
	 * Until the copy is done (a failed one puts them back), nothing newer
	 * may enter the ring ahead of what is staged.
	 */
	*held = used && muser_ring_live(md);
	md->ring_staging += *held;
	muser_ring_sync_flags(md);
	spin_unlock(&md->req_lock);
	return used;
}

/* What muser_stage_requests() held back from the ring may go now. */
static void muser_staged(struct muser_mdev *md)
{
	spin_lock(&md->req_lock);
	md->ring_staging--;
	muser_ring_sync(md);
	spin_unlock(&md->req_lock);
	muser_wake_emulator(md);
}

/* A staged notice the emulator did not get: post it again. */
static void muser_repost(struct muser_mdev *md, const struct muser_req *hdr)
{
	const struct muser_dma_range *range = (const void *)(hdr + 1);

	lockdep_assert_held(&md->req_lock);
	if (hdr->type == MUSER_REQ_IRQ_STATE)
		md->posted |= MUSER_POSTED_IRQ_STATE;
	else if (hdr->type == MUSER_REQ_VMM_CLOSE)
		md->posted |= MUSER_POSTED_VMM_CLOSE;
	else if (hdr->type == MUSER_REQ_DMA_UNMAP)
		muser_queue_unmap(md, range->iova, range->size);
}

/* The copy to the emulator failed: deliver these requests again. */
static void muser_unstage_requests(struct muser_mdev *md, struct file *file,
				   const u8 *stage, size_t used, bool held)
{
	struct list_head *pos = &md->pending;
	bool attached;
	size_t off;

	spin_lock(&md->req_lock);
	md->ring_staging -= held;
	/* Notices about holds go with the holds when @file was replaced. */
	attached = md->emulator == file;
	for (off = 0; off < used; ) {
		const struct muser_req *hdr = (const void *)(stage + off);
		struct muser_wait *w;

		if (attached)
			muser_repost(md, hdr);
		/* What a takeover requeued meanwhile is another's now. */
		list_for_each_entry(w, &md->inflight, node) {
			if (w->hdr.id == hdr->id && w->owner == file) {
				/* Keep their order, ahead of newer requests. */
				list_move(&w->node, pos);
				pos = &w->node;
				break;
			}
		}
		off += sizeof(*hdr) + ALIGN(hdr->data_len, MUSER_ALIGN);
	}
	muser_ring_sync(md);
	spin_unlock(&md->req_lock);
	if (attached)
		muser_wake_emulator(md);
	else	/* the new emulator, and a takeover waiting for @file */
		wake_up_all(&md->req_wq);
}

ssize_t muser_deliver(struct muser_mdev *md, struct file *file,
		      char __user *buf, size_t count)
{
	size_t cap = min_t(size_t, count, MUSER_DELIVER_MAX);
	bool held = false;
	ssize_t used;
	u8 *stage;

	if (count < MUSER_READ_BUF_MIN)
		return -EINVAL;

	stage = kvmalloc(cap, GFP_KERNEL);
	if (!stage)
		return -ENOMEM;

	for (;;) {
		used = muser_stage_requests(md, file, stage, cap, &held);
		/* -EAGAIN, blocking or not: take the ring's requests first. */
		if (used)
			break;
		if (file->f_flags & O_NONBLOCK) {
			used = -EAGAIN;
			break;
		}
		if (wait_event_interruptible(md->req_wq,
					     READ_ONCE(md->emulator) != file ||
					     muser_has_requests(md) ||
					     muser_ring_has_requests(file))) {
			used = -ERESTARTSYS;
			break;
		}
	}
	if (used > 0 && copy_to_user(buf, stage, used)) {
		muser_unstage_requests(md, file, stage, used, held);
		used = -EFAULT;
	} else if (held) {
		muser_staged(md);
	}
	kvfree(stage);
	return used;
}

/* Validate one reply against its request and settle the request. */
static int muser_settle(struct muser_mdev *md, struct muser_wait *w,
			const struct muser_reply *r, const void *data)
{
	u32 want = !r->error && w->hdr.type == MUSER_REQ_READ ? w->hdr.len : 0;

	lockdep_assert_held(&md->req_lock);

	if (r->len != want) {
		muser_mdev_err(md, "reply %llu: %u bytes of data, expected %u\n",
			       r->id, r->len, want);
		/* Fail the VMM's access now rather than at the timeout. */
		w->error = -EIO;
	} else {
		w->error = -r->error;
		if (r->len)
			memcpy(w->data, data, r->len);
	}
	/* The waiter may spin on it; it returns only after taking req_lock. */
	WRITE_ONCE(w->finished, true);
	muser_count_request(md, w->error);
	list_del(&w->node);
	if (muser_is_posted(w)) {
		if (w->error)
			muser_mdev_err(md, "posted write %llu (region %u offset 0x%llx, %u bytes) failed: error %d\n",
				       w->hdr.id, w->hdr.region, w->hdr.offset,
				       w->hdr.len, w->error);
		muser_unslot_locked(md, true);
		muser_posted_put(md, w);
	} else if (w->sleeping) {
		complete(&w->done);
	}
	return r->len != want ? -EINVAL : 0;
}

/*
 * The answer @r (validated header, @data of r->len bytes) of @file, an
 * emulator, by write() or from its ring (@ring): settle its request, and
 * add to @wake who else waits for it (muser_answer_wake(), after the
 * answers at hand). -ENOENT if no request waits (it timed out, or was
 * cancelled), -ENOTCONN for a file no longer attached with nothing to
 * answer, -EINVAL for the wrong amount of data (the request fails with
 * EIO).
 */
int muser_answer_locked(struct muser_mdev *md, struct file *file,
			const struct muser_reply *r, const void *data,
			bool ring, unsigned int *wake)
{
	struct muser_wait *w;
	bool posted;
	int ret;

	lockdep_assert_held(&md->req_lock);
	/* A taken-over emulator still answers what it had read. */
	ret = md->emulator == file ? -ENOENT : -ENOTCONN;
	list_for_each_entry(w, &md->inflight, node) {
		if (w->hdr.id != r->id || w->owner != file)
			continue;
		posted = muser_is_posted(w);
		ret = muser_settle(md, w, r, data);
		/* Good answers only: a wrong length is the emulator's bug. */
		if (!ret && ring)
			md->nr_answers_ring++;
		else if (!ret)
			md->nr_answers_syscall++;
		/* The takeover waits for the old emulator's answers. */
		if (md->emulator != file)
			*wake |= MUSER_WAKE_TAKEOVER;
		/* A VMM thread, or the last close, waits for posted writes. */
		if (posted)
			*wake |= MUSER_WAKE_SLOT;
		break;
	}
	return ret;
}

void muser_answer_wake(struct muser_mdev *md, unsigned int wake)
{
	if (wake & MUSER_WAKE_TAKEOVER)
		wake_up_all(&md->req_wq);
	if (wake & MUSER_WAKE_SLOT)
		muser_wake_slot(md);
}

static int muser_complete_one(struct muser_mdev *md, struct file *file,
			      const struct muser_reply *r, const void *data)
{
	unsigned int wake = 0;
	int ret;

	spin_lock(&md->req_lock);
	ret = muser_answer_locked(md, file, r, data, false, &wake);
	spin_unlock(&md->req_lock);
	muser_answer_wake(md, wake);
	return ret;
}

ssize_t muser_complete(struct muser_mdev *md, struct file *file,
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
			muser_mdev_err(md, "reply %llu: bad header (error %d, len %u)\n",
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
