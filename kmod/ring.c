// SPDX-License-Identifier: GPL-2.0
/*
 * The request ring: a submission queue the kernel fills with requests and
 * a completion queue the emulator fills with answers, in memory both map,
 * so a running emulator serves requests without a system call.
 *
 * Requests enter the SQ of the attached emulator's ring from the head of
 * md->pending, in order, and move to md->inflight as read() moves them: a
 * request in the ring is one the emulator has read, and is replayed like
 * one if the emulator goes. Whoever waits for an answer takes answers from
 * the CQ: a spinning VMM thread, a VMM thread about to sleep, or the
 * emulator's MUSER_IOC_RING_ENTER when MUSER_RING_F_WAKEUP says a waiter
 * sleeps. Everything the emulator writes there is hostile: indices are
 * checked against the queue's size, and each answer is copied out once
 * and validated as write()'s replies are.
 */
#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "muser_mdev.h"

static struct muser_ring *muser_file_ring(struct file *file)
{
	struct muser_ctl_file *cf = file->private_data;

	/* Set once, under req_lock; freed only with the file. */
	return smp_load_acquire(&cf->ring);
}

static void muser_ring_set_kflags(struct muser_ring *ring, u32 set, u32 clear)
{
	u32 kflags = (ring->kflags | set) & ~clear;

	if (kflags == ring->kflags)
		return;
	ring->kflags = kflags;
	WRITE_ONCE(ring->hdr->kflags, kflags);
}

/* The emulator corrupted an index: use the ring no more. */
static void muser_ring_break(struct muser_mdev *md, struct muser_ring *ring,
			     const char *what, u32 theirs, u32 ours)
{
	lockdep_assert_held(&md->req_lock);
	muser_ring_set_kflags(ring, MUSER_RING_F_BROKEN, 0);
	muser_mdev_err(md, "request ring: %s %u is out of range (ours %u, %u entries): the ring is not used any more\n",
		       what, theirs, ours, ring->mask + 1);
}

static bool muser_ring_usable(const struct muser_ring *ring)
{
	return !(ring->kflags & MUSER_RING_F_BROKEN);
}

/* Whether @w can travel in the ring: its data and its answer fit. */
static bool muser_ring_fits(const struct muser_wait *w)
{
	return w->hdr.len <= MUSER_RING_DATA &&
	       w->hdr.data_len <= MUSER_RING_DATA;
}

/* Move requests from the head of md->pending into @ring's SQ. */
static void muser_ring_push(struct muser_mdev *md, struct muser_ring *ring)
{
	struct muser_wait *w, *tmp;
	u32 head, entries = ring->mask + 1, tail = ring->sq_tail;

	head = smp_load_acquire(&ring->hdr->sq_head);
	if (tail - head > entries) {
		muser_ring_break(md, ring, "sq_head", head, tail);
		return;
	}
	list_for_each_entry_safe(w, tmp, &md->pending, node) {
		struct muser_ring_sqe *sqe;

		/* Nothing overtakes a request left for read(). */
		if (!muser_ring_fits(w) || ring->sq_tail - head == entries)
			break;
		sqe = &ring->sq[ring->sq_tail & ring->mask];
		memcpy(&sqe->req, &w->hdr, sizeof(w->hdr));
		memcpy(sqe->data, w->data, w->hdr.data_len);
		memset(sqe->data + w->hdr.data_len, 0,
		       MUSER_RING_DATA - w->hdr.data_len);
		w->owner = ring->file;
		list_move_tail(&w->node, &md->inflight);
		ring->sq_tail++;
	}
	if (ring->sq_tail != tail)
		smp_store_release(&ring->hdr->sq_tail, ring->sq_tail);
}

/*
 * Pending requests changed: move what can go into the attached emulator's
 * ring, and tell it whether anything is left for read(). The caller wakes
 * the emulator.
 */
void muser_ring_sync(struct muser_mdev *md)
{
	struct muser_ring *ring;
	bool read;

	lockdep_assert_held(&md->req_lock);
	if (!md->emulator)
		return;
	ring = muser_file_ring(md->emulator);
	if (!ring || ring->retired || !muser_ring_usable(ring))
		return;
	if (!md->retiring)
		muser_ring_push(md, ring);
	read = !md->retiring && (md->posted || md->nr_unmaps ||
				 !list_empty(&md->pending));
	muser_ring_set_kflags(ring, read ? MUSER_RING_F_READ : 0,
			      read ? 0 : MUSER_RING_F_READ);
}

/* Copy one answer out of the CQ, validate it, and settle its request. */
static void muser_ring_take_answer(struct muser_mdev *md,
				   struct muser_ring *ring,
				   const struct muser_ring_cqe *slot)
{
	struct muser_ring_cqe cqe;

	memcpy(&cqe, slot, sizeof(cqe));
	if (cqe.reply.error < 0 || cqe.reply.error >= ERESTARTSYS ||
	    cqe.reply.len > MUSER_RING_DATA ||
	    (cqe.reply.error && cqe.reply.len)) {
		muser_mdev_err(md, "request ring: answer %llu: bad header (error %d, len %u)\n",
			       cqe.reply.id, cqe.reply.error, cqe.reply.len);
		return;
	}
	/* ENOENT: timed out or cancelled meanwhile, as for write(). */
	muser_answer_locked(md, ring->file, &cqe.reply, cqe.data, true);
}

/* Take every answer in @ring's CQ. */
static unsigned int muser_ring_reap_one(struct muser_mdev *md,
					struct muser_ring *ring)
{
	u32 tail, n, entries = ring->mask + 1;

	if (!muser_ring_usable(ring))
		return 0;
	tail = smp_load_acquire(&ring->hdr->cq_tail);
	n = tail - ring->cq_head;
	if (!n)
		return 0;
	if (n > entries) {
		muser_ring_break(md, ring, "cq_tail", tail, ring->cq_head);
		return 0;
	}
	for (; ring->cq_head != tail; ring->cq_head++)
		muser_ring_take_answer(md, ring,
				       &ring->cq[ring->cq_head & ring->mask]);
	/* The answers are copied: the emulator may reuse their entries. */
	smp_store_release(&ring->hdr->cq_head, ring->cq_head);
	return n;
}

/* Take the answers in every ring of @md; returns how many there were. */
unsigned int muser_ring_reap(struct muser_mdev *md)
{
	struct muser_ring *ring;
	unsigned int n = 0;

	lockdep_assert_held(&md->req_lock);
	list_for_each_entry(ring, &md->rings, node)
		n += muser_ring_reap_one(md, ring);
	return n;
}

/* A spinning VMM thread looks for answers, without queueing on the lock. */
void muser_ring_poll(struct muser_mdev *md)
{
	if (!READ_ONCE(md->nr_rings) || !spin_trylock(&md->req_lock))
		return;
	muser_ring_reap(md);
	spin_unlock(&md->req_lock);
}

static void muser_ring_set_wakeup(struct muser_mdev *md, bool on)
{
	struct muser_ring *ring;

	lockdep_assert_held(&md->req_lock);
	list_for_each_entry(ring, &md->rings, node)
		muser_ring_set_kflags(ring, on ? MUSER_RING_F_WAKEUP : 0,
				      on ? 0 : MUSER_RING_F_WAKEUP);
}

/*
 * Before a wait for answers that sleeps: ask emulators to call RING_ENTER
 * after they answer, then take what they answered before they could see
 * the flag. The barrier pairs with the emulator's between its cq_tail
 * store and its kflags load: one of the two sides sees the other's.
 */
void muser_ring_wait_begin(struct muser_mdev *md)
{
	spin_lock(&md->req_lock);
	if (!md->ring_sleepers++)
		muser_ring_set_wakeup(md, true);
	smp_mb();
	muser_ring_reap(md);
	spin_unlock(&md->req_lock);
}

void muser_ring_wait_end(struct muser_mdev *md)
{
	spin_lock(&md->req_lock);
	if (!--md->ring_sleepers)
		muser_ring_set_wakeup(md, false);
	spin_unlock(&md->req_lock);
}

/* Whether @file's ring has requests its emulator has not taken (poll). */
bool muser_ring_has_requests(struct file *file)
{
	struct muser_ring *ring = muser_file_ring(file);

	return ring && !ring->retired &&
	       READ_ONCE(ring->hdr->sq_head) != READ_ONCE(ring->sq_tail);
}

/*
 * @file stops being the emulator (the caller holds req_lock): nothing new
 * enters its ring.
 */
void muser_ring_retire(struct file *file)
{
	struct muser_ring *ring = muser_file_ring(file);

	if (!ring)
		return;
	ring->retired = true;
	muser_ring_set_kflags(ring, MUSER_RING_F_RETIRED, MUSER_RING_F_READ);
}

static void muser_ring_free(struct muser_ring *ring)
{
	vfree(ring->mem);
	kfree(ring);
}

static struct muser_ring *muser_ring_alloc(struct file *file, u32 entries,
					   struct muser_ring_setup *setup)
{
	struct muser_ring *ring;
	size_t sq_off = PAGE_SIZE;
	size_t cq_off = sq_off + entries * sizeof(struct muser_ring_sqe);
	size_t size = PAGE_ALIGN(cq_off + entries * sizeof(struct muser_ring_cqe));

	ring = kzalloc(sizeof(*ring), GFP_KERNEL_ACCOUNT);
	if (!ring)
		return NULL;
	/* Zeroed, and marked for remap_vmalloc_range(). */
	ring->mem = vmalloc_user(size);
	if (!ring->mem) {
		kfree(ring);
		return NULL;
	}
	ring->file = file;
	ring->size = size;
	ring->mask = entries - 1;
	ring->hdr = ring->mem;
	ring->sq = ring->mem + sq_off;
	ring->cq = ring->mem + cq_off;
	setup->size = size;
	setup->sq_off = sq_off;
	setup->cq_off = cq_off;
	return ring;
}

int muser_ring_setup(struct muser_mdev *md, struct file *file,
		     void __user *arg)
{
	struct muser_ctl_file *cf = file->private_data;
	struct muser_ring_setup setup;
	struct muser_ring *ring;
	int ret;

	if (copy_from_user(&setup, arg, sizeof(setup)))
		return -EFAULT;
	if (setup.argsz < sizeof(setup) || setup.flags || setup.pad ||
	    !setup.entries || setup.entries > MUSER_RING_MAX_ENTRIES ||
	    !is_power_of_2(setup.entries)) {
		muser_mdev_err(md, "ring setup: bad argument (argsz %u, flags 0x%x, entries %u)\n",
			       setup.argsz, setup.flags, setup.entries);
		return -EINVAL;
	}
	ring = muser_ring_alloc(file, setup.entries, &setup);
	if (!ring)
		return -ENOMEM;
	if (copy_to_user(arg, &setup, sizeof(setup))) {
		ret = -EFAULT;
		goto err_free;
	}

	spin_lock(&md->req_lock);
	if (md->emulator != file) {
		ret = READ_ONCE(md->dead) ? -ENODEV : -ENOTCONN;
		goto err_unlock;
	}
	if (cf->ring) {
		ret = -EBUSY;
		goto err_unlock;
	}
	list_add_tail(&ring->node, &md->rings);
	WRITE_ONCE(md->nr_rings, md->nr_rings + 1);
	if (md->ring_sleepers)
		muser_ring_set_kflags(ring, MUSER_RING_F_WAKEUP, 0);
	/* Published after it is initialised: poll and mmap read it locklessly. */
	smp_store_release(&cf->ring, ring);
	muser_ring_sync(md);
	spin_unlock(&md->req_lock);
	muser_wake_emulator(md);
	return 0;

err_unlock:
	spin_unlock(&md->req_lock);
err_free:
	muser_ring_free(ring);
	return ret;
}

/* MUSER_IOC_RING_ENTER: the emulator answered in the CQ, and waiters sleep. */
int muser_ring_enter(struct muser_mdev *md, struct file *file)
{
	if (!muser_file_ring(file))
		return -ENODEV;
	spin_lock(&md->req_lock);
	muser_ring_reap(md);
	spin_unlock(&md->req_lock);
	return 0;
}

int muser_ring_mmap(struct muser_mdev *md, struct file *file,
		    struct vm_area_struct *vma)
{
	struct muser_ring *ring = muser_file_ring(file);
	unsigned long len = vma->vm_end - vma->vm_start;

	/* Without a ring, the offset names nothing, as past a region. */
	if (!ring || vma->vm_pgoff != MUSER_RING_OFFSET >> PAGE_SHIFT ||
	    len > ring->size || !(vma->vm_flags & VM_SHARED)) {
		muser_mdev_err(md, "bad mmap of the request ring (page offset 0x%lx, 0x%lx bytes)\n",
			       vma->vm_pgoff, len);
		return -EINVAL;
	}
	/* Sets VM_DONTEXPAND: the mapping cannot grow past the ring. */
	return remap_vmalloc_range(vma, ring->mem, 0);
}

/* The file is released: no mapping of the ring is left. */
void muser_ring_release(struct muser_mdev *md, struct file *file)
{
	struct muser_ctl_file *cf = file->private_data;
	struct muser_ring *ring = cf->ring;

	if (!ring)
		return;
	spin_lock(&md->req_lock);
	list_del(&ring->node);
	WRITE_ONCE(md->nr_rings, md->nr_rings - 1);
	spin_unlock(&md->req_lock);
	muser_ring_free(ring);
}
