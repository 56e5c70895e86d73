// SPDX-License-Identifier: GPL-2.0
/*
 * The request ring: a submission queue the kernel fills with requests and
 * a completion queue the emulator fills with answers, in memory both map,
 * so a running emulator serves requests without a system call.
 *
 * Requests enter the SQ of the attached emulator's ring from the head of
 * md->pending, in order, and move to md->inflight as read() moves them: a
 * request in the ring is one the emulator has read, and is replayed like
 * one if the emulator goes. read() gives nothing while the SQ holds
 * requests the emulator has not taken, so nothing it returns can overtake
 * them. Whoever waits for an answer takes answers from the CQ: a spinning
 * VMM thread, a VMM thread about to sleep, or the emulator's
 * MUSER_IOC_RING_ENTER when MUSER_RING_F_WAKEUP says a waiter sleeps.
 * Everything the emulator writes there is hostile: indices are checked
 * against the queue's size, and each answer is copied out once and
 * validated as write()'s replies are.
 *
 * md->rings lists the rings that may hold answers: the attached
 * emulator's, and those of emulators a takeover still waits for. So a
 * look at the answers costs at most a few queues, however many files an
 * emulator opens.
 */
#include <linux/log2.h>
#include <linux/mm.h>
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
	WRITE_ONCE(ring->kflags, kflags);
	/* After the SQ entries it is about, for a reader that acquires. */
	smp_store_release(&ring->hdr->kflags, kflags);
}

/* The emulator corrupted an index: use the ring no more. */
static void muser_ring_break(struct muser_mdev *md, struct muser_ring *ring,
			     const char *what, u32 theirs, u32 ours)
{
	lockdep_assert_held(&md->req_lock);
	/* Everything goes through read() from now on. */
	muser_ring_set_kflags(ring, MUSER_RING_F_BROKEN | MUSER_RING_F_READ, 0);
	muser_mdev_err(md, "request ring: %s %u is out of range (ours %u, %u entries): the ring is not used any more\n",
		       what, theirs, ours, ring->mask + 1);
}

static bool muser_ring_usable(const struct muser_ring *ring)
{
	return !(ring->kflags & MUSER_RING_F_BROKEN);
}

/* The emulator's SQ head, or false (and the ring broken) if it lies. */
static bool muser_ring_sq_head(struct muser_mdev *md, struct muser_ring *ring,
			       u32 *head)
{
	/* Pairs with the emulator's release: it is done with those entries. */
	*head = smp_load_acquire(&ring->hdr->sq_head);
	if (ring->sq_tail - *head <= ring->mask + 1)
		return true;
	muser_ring_break(md, ring, "sq_head", *head, ring->sq_tail);
	return false;
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
	u32 head, entries = ring->mask + 1, tail = ring->sq_tail;
	struct muser_wait *w, *tmp;

	if (!muser_ring_sq_head(md, ring, &head))
		return;
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
		WRITE_ONCE(ring->sq_tail, ring->sq_tail + 1);
	}
	if (ring->sq_tail == tail)
		return;
	/* The entries before the index that makes them visible. */
	smp_store_release(&ring->hdr->sq_tail, ring->sq_tail);
}

/* The attached emulator's ring, if it has one in use. */
static struct muser_ring *muser_live_ring(struct muser_mdev *md)
{
	struct muser_ring *ring;

	lockdep_assert_held(&md->req_lock);
	if (!md->emulator)
		return NULL;
	ring = muser_file_ring(md->emulator);
	if (!ring || ring->retired || !muser_ring_usable(ring))
		return NULL;
	return ring;
}

static void muser_ring_update(struct muser_mdev *md, bool push)
{
	struct muser_ring *ring = muser_live_ring(md);
	bool read;

	if (!ring)
		return;
	if (push && !md->retiring && !md->ring_staging)
		muser_ring_push(md, ring);
	read = !md->retiring && (md->posted || md->nr_unmaps ||
				 !list_empty(&md->pending));
	muser_ring_set_kflags(ring, read ? MUSER_RING_F_READ : 0,
			      read ? 0 : MUSER_RING_F_READ);
}

/* Whether the attached emulator has a ring in use. */
bool muser_ring_live(struct muser_mdev *md)
{
	return muser_live_ring(md);
}

/*
 * Pending requests changed: move what can go into the attached emulator's
 * ring, and tell it whether anything is left for read(). The caller wakes
 * the emulator.
 */
void muser_ring_sync(struct muser_mdev *md)
{
	muser_ring_update(md, true);
}

/*
 * Only the flags: read() staged requests that a failed copy may yet put
 * back, so nothing newer may enter the SQ ahead of them.
 */
void muser_ring_sync_flags(struct muser_mdev *md)
{
	muser_ring_update(md, false);
}

/*
 * Whether read() by @file must wait: its ring holds requests it has not
 * taken, which whatever read() returns must not overtake.
 */
bool muser_ring_holds_back(struct muser_mdev *md, struct file *file)
{
	struct muser_ring *ring = muser_file_ring(file);
	u32 head;

	lockdep_assert_held(&md->req_lock);
	if (!ring || ring->retired || !muser_ring_usable(ring))
		return false;
	return muser_ring_sq_head(md, ring, &head) && head != ring->sq_tail;
}

/* Copy one answer out of the CQ, validate it, and settle its request. */
static void muser_ring_take_answer(struct muser_mdev *md,
				   struct muser_ring *ring,
				   const struct muser_ring_cqe *slot,
				   unsigned int *wake)
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
	muser_answer_locked(md, ring->file, &cqe.reply, cqe.data, true, wake);
}

/* Take every answer in @ring's CQ: at most a queue's worth. */
static unsigned int muser_ring_reap_one(struct muser_mdev *md,
					struct muser_ring *ring,
					unsigned int *wake)
{
	u32 tail, n, entries = ring->mask + 1;

	if (!muser_ring_usable(ring))
		return 0;
	/* Pairs with the emulator's release: its answers are written. */
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
				       &ring->cq[ring->cq_head & ring->mask],
				       wake);
	/* The answers are copied: the emulator may reuse their entries. */
	smp_store_release(&ring->hdr->cq_head, ring->cq_head);
	return n;
}

/* Take the answers in every ring of @md; returns how many there were. */
unsigned int muser_ring_reap(struct muser_mdev *md)
{
	unsigned int n = 0, wake = 0;
	struct muser_ring *ring;

	lockdep_assert_held(&md->req_lock);
	list_for_each_entry(ring, &md->rings, node)
		n += muser_ring_reap_one(md, ring, &wake);
	/* Once for the lot (the answers completed their waiters already). */
	muser_answer_wake(md, wake);
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
void muser_ring_wait_begin_locked(struct muser_mdev *md)
{
	lockdep_assert_held(&md->req_lock);
	if (!md->ring_sleepers++)
		muser_ring_set_wakeup(md, true);
	/* The flag's store before the cq_tail load (see above). */
	smp_mb();
	muser_ring_reap(md);
}

void muser_ring_wait_begin(struct muser_mdev *md)
{
	spin_lock(&md->req_lock);
	muser_ring_wait_begin_locked(md);
	spin_unlock(&md->req_lock);
}

void muser_ring_wait_end_locked(struct muser_mdev *md)
{
	lockdep_assert_held(&md->req_lock);
	if (!--md->ring_sleepers)
		muser_ring_set_wakeup(md, false);
}

void muser_ring_wait_end(struct muser_mdev *md)
{
	spin_lock(&md->req_lock);
	muser_ring_wait_end_locked(md);
	spin_unlock(&md->req_lock);
}

/* Whether @file's ring has requests its emulator has not taken (poll). */
bool muser_ring_has_requests(struct file *file)
{
	struct muser_ring *ring = muser_file_ring(file);

	/* Also read locklessly, by a blocking read(): a hint there. */
	return ring && !READ_ONCE(ring->retired) &&
	       !(READ_ONCE(ring->kflags) & MUSER_RING_F_BROKEN) &&
	       READ_ONCE(ring->hdr->sq_head) != READ_ONCE(ring->sq_tail);
}

static void muser_ring_unlist(struct muser_mdev *md, struct muser_ring *ring)
{
	lockdep_assert_held(&md->req_lock);
	if (list_empty(&ring->node))
		return;
	list_del_init(&ring->node);
	WRITE_ONCE(md->nr_rings, md->nr_rings - 1);
	/* A sleeper's flag does not concern it any more. */
	muser_ring_set_kflags(ring, 0, MUSER_RING_F_WAKEUP);
}

/*
 * @file stops being the emulator (the caller holds req_lock): nothing new
 * enters its ring. Its answers are still taken while it holds requests:
 * @drained says it holds none (they were requeued).
 */
void muser_ring_retire(struct muser_mdev *md, struct file *file, bool drained)
{
	struct muser_ring *ring = muser_file_ring(file);

	lockdep_assert_held(&md->req_lock);
	if (!ring)
		return;
	WRITE_ONCE(ring->retired, true);
	muser_ring_set_kflags(ring, MUSER_RING_F_RETIRED, MUSER_RING_F_READ);
	if (drained)
		muser_ring_unlist(md, ring);
}

/* A takeover is over: @file's ring can go if @file holds no request. */
void muser_ring_forget(struct muser_mdev *md, struct file *file)
{
	struct muser_ring *ring = muser_file_ring(file);

	lockdep_assert_held(&md->req_lock);
	if (ring && ring->retired && !muser_owns_inflight_locked(md, file))
		muser_ring_unlist(md, ring);
}

static void muser_ring_free(struct muser_ring *ring)
{
	unsigned int i;

	if (ring->mem)
		vunmap(ring->mem);
	for (i = 0; i < ring->nr_pages; i++)
		if (ring->pages[i])
			__free_page(ring->pages[i]);
	kfree(ring->pages);
	kfree(ring);
}

/* Pages charged to the caller's memory cgroup, zeroed. */
static struct muser_ring *muser_ring_alloc(struct file *file, u32 entries,
					   struct muser_ring_setup *setup)
{
	size_t sq_off = PAGE_SIZE;
	size_t cq_off = sq_off + entries * sizeof(struct muser_ring_sqe);
	size_t size = PAGE_ALIGN(cq_off + entries * sizeof(struct muser_ring_cqe));
	struct muser_ring *ring;
	unsigned int i;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL_ACCOUNT);
	if (!ring)
		return NULL;
	INIT_LIST_HEAD(&ring->node);
	ring->nr_pages = size >> PAGE_SHIFT;
	ring->pages = kcalloc(ring->nr_pages, sizeof(*ring->pages),
			      GFP_KERNEL_ACCOUNT);
	if (!ring->pages)
		goto err_free;
	for (i = 0; i < ring->nr_pages; i++) {
		ring->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!ring->pages[i])
			goto err_free;
	}
	ring->mem = vmap(ring->pages, ring->nr_pages, VM_MAP, PAGE_KERNEL);
	if (!ring->mem)
		goto err_free;
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

err_free:
	muser_ring_free(ring);
	return NULL;
}

/* Whether @file may set up a ring: 0, or why not. */
static int muser_ring_may_setup(struct muser_mdev *md, struct file *file)
{
	struct muser_ctl_file *cf = file->private_data;

	lockdep_assert_held(&md->req_lock);
	if (md->emulator != file)
		return READ_ONCE(md->dead) ? -ENODEV : -ENOTCONN;
	return cf->ring ? -EBUSY : 0;
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
	/* Checked first: a call refused here writes nothing back. */
	spin_lock(&md->req_lock);
	ret = muser_ring_may_setup(md, file);
	spin_unlock(&md->req_lock);
	if (ret)
		return ret;
	ring = muser_ring_alloc(file, setup.entries, &setup);
	if (!ring)
		return -ENOMEM;
	if (copy_to_user(arg, &setup, sizeof(setup))) {
		ret = -EFAULT;
		goto err_free;
	}

	spin_lock(&md->req_lock);
	ret = muser_ring_may_setup(md, file);
	if (ret)
		goto err_unlock;
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

/* Pages are inserted on fault, so a zap of the file's mappings is harmless. */
static vm_fault_t muser_ring_fault(struct vm_fault *vmf)
{
	struct muser_ring *ring = vmf->vma->vm_private_data;
	unsigned long index = vmf->pgoff - (MUSER_RING_OFFSET >> PAGE_SHIFT);

	if (index >= ring->nr_pages)
		return VM_FAULT_SIGBUS;
	vmf->page = ring->pages[index];
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct muser_ring_vm_ops = {
	.fault = muser_ring_fault,
};

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
	/* The mapping holds the file, and with it the ring. */
	muser_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &muser_ring_vm_ops;
	vma->vm_private_data = ring;
	return 0;
}

/* The file is released: no mapping of the ring is left. */
void muser_ring_release(struct muser_mdev *md, struct file *file)
{
	struct muser_ctl_file *cf = file->private_data;
	struct muser_ring *ring = cf->ring;

	if (!ring)
		return;
	spin_lock(&md->req_lock);
	muser_ring_unlist(md, ring);
	WRITE_ONCE(cf->ring, NULL);
	spin_unlock(&md->req_lock);
	muser_ring_free(ring);
}
