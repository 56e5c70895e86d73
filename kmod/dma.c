// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory for the emulator: pinned on request with vfio_pin_pages(),
 * mapped into the emulator as a PFN mapping of its control node at
 * MUSER_DMA_OFFSET + iova, and revoked when the VMM unmaps it.
 *
 * Pins are kept per device in 2 MiB chunks (MUSER_DMA_CHUNK_SHIFT), one
 * vfio_pin_pages() batch each. The emulator holds chunks it has mapped
 * (MUSER_IOC_DMA_MAP); chunks nobody holds stay pinned, least recently
 * used first on dma.lru, until the device's budget needs their pages.
 *
 * The PTEs of a PFN mapping hold no page reference: the pin keeps each page
 * alive, so every path zaps the emulator's mappings before it unpins.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>

#include "muser_mdev.h"

#define MUSER_DMA_CHUNK_PAGES	(1u << (MUSER_DMA_CHUNK_SHIFT - PAGE_SHIFT))

/* A chunk's pfn[] entries: (pfn << 2) | flags, 0 when not pinned. */
#define MUSER_PFN_PINNED	1ul
#define MUSER_PFN_WRITABLE	2ul

static_assert(MUSER_DMA_CHUNK_PAGES <= VFIO_PIN_PAGES_MAX_ENTRIES);

/**
 * struct muser_dma_chunk - pins of one aligned 2 MiB range of iova.
 * @index:     iova >> MUSER_DMA_CHUNK_SHIFT
 * @holds:     DMA_MAP holds of emulator files (dma.lock); each file holds
 *             a chunk at most MUSER_DMA_MAX_HOLDS times, so no overflow
 * @nr_pinned: entries of @pfn that are pinned (dma.lock, written under
 *             dma.sem too)
 * @nr_readonly: of those, pinned read-only (dma.lock)
 * @lru:       on dma.lru while nobody holds it and something is pinned
 *             (dma.lock)
 * @pfn:       one entry per page (MUSER_PFN_*); written under dma.lock and
 *             dma.sem for writing, read under either
 */
struct muser_dma_chunk {
	unsigned long index;
	unsigned long holds;
	unsigned int nr_pinned;
	unsigned int nr_readonly;
	struct list_head lru;
	unsigned long pfn[MUSER_DMA_CHUNK_PAGES];
};

unsigned int muser_dma_budget_mb = 1024;

static unsigned long muser_iova_to_chunk(u64 iova)
{
	return iova >> MUSER_DMA_CHUNK_SHIFT;
}

static u64 muser_chunk_iova(const struct muser_dma_chunk *c)
{
	return c->index << MUSER_DMA_CHUNK_SHIFT;
}

void muser_dma_init(struct muser_mdev *md)
{
	struct muser_dma *dma = &md->dma;

	mutex_init(&dma->lock);
	init_rwsem(&dma->sem);
	xa_init(&dma->chunks);
	INIT_LIST_HEAD(&dma->lru);
	INIT_LIST_HEAD(&dma->fences);
	init_waitqueue_head(&dma->fence_wq);
	dma->budget_pages = (unsigned long)muser_dma_budget_mb <<
			    (20 - PAGE_SHIFT);
}

/* Zap every mapping of [iova, iova + size) in the DMA window. */
static void muser_dma_zap(struct muser_mdev *md, u64 iova, u64 size)
{
	lockdep_assert_held_write(&md->dma.sem);
	unmap_mapping_range(md->inode->i_mapping, MUSER_DMA_OFFSET + iova,
			    size, 1);
}

static void muser_dma_free_chunk(struct muser_mdev *md,
				 struct muser_dma_chunk *c)
{
	lockdep_assert_held(&md->dma.lock);
	lockdep_assert_held_write(&md->dma.sem);
	xa_erase(&md->dma.chunks, c->index);
	list_del(&c->lru);
	kfree(c);
}

/*
 * Forget the pins of @c in pages [first, last] of the chunk, after zapping
 * their mappings, and mark them in @unpin for muser_dma_unpin(). Under
 * dma.sem for writing, so no fault or copy finds them from now on.
 */
static void muser_dma_forget(struct muser_mdev *md, struct muser_dma_chunk *c,
			     unsigned int first, unsigned int last,
			     unsigned long *unpin)
{
	u64 base = muser_chunk_iova(c);
	unsigned int i, n = 0;

	lockdep_assert_held(&md->dma.lock);
	lockdep_assert_held_write(&md->dma.sem);
	muser_dma_zap(md, base + ((u64)first << PAGE_SHIFT),
		      (u64)(last - first + 1) << PAGE_SHIFT);
	for (i = first; i <= last; i++) {
		if (!c->pfn[i])
			continue;
		if (!(c->pfn[i] & MUSER_PFN_WRITABLE))
			c->nr_readonly--;
		c->pfn[i] = 0;
		__set_bit(i, unpin);
		n++;
	}
	c->nr_pinned -= n;
	WRITE_ONCE(md->dma.pinned, md->dma.pinned - n);
	if (c->holds)
		WRITE_ONCE(md->dma.mapped, md->dma.mapped - n);
}

/*
 * Unpin the pages @unpin marks in the chunk at @base, in runs. Not under
 * dma.sem: vfio_unpin_pages() takes the VMM's mmap_lock for its locked
 * memory count, and a fault holds an mmap_lock when it takes dma.sem.
 */
static void muser_dma_unpin(struct muser_mdev *md, u64 base,
			    const unsigned long *unpin)
{
	unsigned int start, end;

	lockdep_assert_held(&md->dma.lock);
	for_each_set_bitrange(start, end, unpin, MUSER_DMA_CHUNK_PAGES)
		vfio_unpin_pages(&md->vdev, base + ((u64)start << PAGE_SHIFT),
				 end - start);
}

/*
 * Unpin everything in [iova, iova + size), after zapping it. Chunks left
 * empty and unheld are freed; held ones stay, so holds outlive revocation.
 */
static void muser_dma_revoke(struct muser_mdev *md, u64 iova, u64 size)
{
	u64 end = iova + size - 1;
	unsigned long idx;
	struct muser_dma_chunk *c;

	lockdep_assert_held(&md->dma.lock);
	xa_for_each_range(&md->dma.chunks, idx, c, muser_iova_to_chunk(iova),
			  muser_iova_to_chunk(end)) {
		DECLARE_BITMAP(unpin, MUSER_DMA_CHUNK_PAGES);
		u64 base = muser_chunk_iova(c);
		u64 lo = max(iova, base) - base;
		u64 hi = min(end, base + (1ull << MUSER_DMA_CHUNK_SHIFT) - 1) - base;

		bitmap_zero(unpin, MUSER_DMA_CHUNK_PAGES);
		down_write(&md->dma.sem);
		if (c->nr_pinned)
			muser_dma_forget(md, c, lo >> PAGE_SHIFT, hi >> PAGE_SHIFT,
					 unpin);
		if (!c->nr_pinned) {
			if (!c->holds)
				muser_dma_free_chunk(md, c);
			else
				list_del_init(&c->lru);
		}
		up_write(&md->dma.sem);
		muser_dma_unpin(md, base, unpin);
		cond_resched();
	}
}

/* Unpin least recently used unheld chunks outside [keep_lo, keep_hi]. */
static bool muser_dma_evict(struct muser_mdev *md, unsigned long want,
			    unsigned long keep_lo, unsigned long keep_hi)
{
	struct muser_dma_chunk *c, *tmp;

	lockdep_assert_held(&md->dma.lock);
	list_for_each_entry_safe(c, tmp, &md->dma.lru, lru) {
		if (md->dma.pinned + want <= md->dma.budget_pages)
			break;
		if (c->index >= keep_lo && c->index <= keep_hi)
			continue;
		md->dma.evictions++;
		muser_dma_revoke(md, muser_chunk_iova(c),
				 1ull << MUSER_DMA_CHUNK_SHIFT);
	}
	return md->dma.pinned + want <= md->dma.budget_pages;
}

/*
 * A chunk just used: unheld ones are the LRU's, most recently used last,
 * and go when nothing in them is pinned.
 */
static void muser_dma_settle(struct muser_mdev *md, struct muser_dma_chunk *c)
{
	lockdep_assert_held(&md->dma.lock);
	if (c->holds)
		return;
	if (c->nr_pinned) {
		list_move_tail(&c->lru, &md->dma.lru);
		return;
	}
	down_write(&md->dma.sem);
	muser_dma_free_chunk(md, c);
	up_write(&md->dma.sem);
}

static struct muser_dma_chunk *muser_dma_get_chunk(struct muser_mdev *md,
						   unsigned long index)
{
	struct muser_dma_chunk *c;
	int ret;

	lockdep_assert_held(&md->dma.lock);
	c = xa_load(&md->dma.chunks, index);
	if (c)
		return c;
	c = kzalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);
	if (!c)
		return ERR_PTR(-ENOMEM);
	c->index = index;
	INIT_LIST_HEAD(&c->lru);
	ret = xa_insert(&md->dma.chunks, index, c, GFP_KERNEL_ACCOUNT);
	if (ret) {
		kfree(c);
		return ERR_PTR(ret);
	}
	return c;
}

/*
 * What vfio_pin_pages() said, as the uapi documents it; logged unless the
 * emulator only probes (MUSER_DMA_F_PROBE).
 */
static int muser_dma_pin_error(struct muser_mdev *md, int ret, u64 iova,
			       int npage, u32 flags)
{
	if (flags & MUSER_DMA_F_PROBE)
		return ret == -EINVAL ? -EFAULT : ret;
	switch (ret) {
	case -EINVAL:
		muser_mdev_err(md, "dma: iova 0x%llx (+%d pages) is not mapped by the VMM\n",
			       iova, npage);
		return -EFAULT;
	case -EPERM:
		muser_mdev_err(md, "dma: iova 0x%llx is mapped read-only by the VMM\n",
			       iova);
		return -EPERM;
	case -ENOMEM:
		muser_mdev_err(md, "dma: pinning iova 0x%llx failed: out of memory, or the VMM's locked memory limit is reached\n",
			       iova);
		return -ENOMEM;
	}
	muser_mdev_err(md, "dma: pinning iova 0x%llx failed: %d\n", iova, ret);
	return ret < 0 ? ret : -EIO;
}

/*
 * Pin one run of @n pages into @c from page @first. Asks for read and
 * write: the pin's access is the VMM mapping's either way, so a page that
 * pins that way is writable. Read-only mappings are found page by page.
 */
static int muser_dma_pin_run(struct muser_mdev *md, struct muser_dma_chunk *c,
			     unsigned int first, unsigned int n, u32 flags,
			     struct page **pages)
{
	unsigned int done = 0, i;

	lockdep_assert_held(&md->dma.lock);
	while (done < n) {
		u64 at = muser_chunk_iova(c) + ((u64)(first + done) << PAGE_SHIFT);
		unsigned long pfn_flags = MUSER_PFN_PINNED | MUSER_PFN_WRITABLE;
		int step = n - done, ret;

		ret = vfio_pin_pages(&md->vdev, at, step,
				     IOMMU_READ | IOMMU_WRITE, pages);
		if (ret == -EPERM && !(flags & MUSER_DMA_F_WRITE)) {
			step = 1;
			ret = vfio_pin_pages(&md->vdev, at, 1,
					     IOMMU_READ | IOMMU_WRITE, pages);
			if (ret == -EPERM) {
				pfn_flags = MUSER_PFN_PINNED;
				ret = vfio_pin_pages(&md->vdev, at, 1,
						     IOMMU_READ, pages);
			}
		}
		if (ret != step)
			return muser_dma_pin_error(md, ret, at, step, flags);

		down_write(&md->dma.sem);
		for (i = 0; i < step; i++)
			c->pfn[first + done + i] = page_to_pfn(pages[i]) << 2 | pfn_flags;
		c->nr_pinned += step;
		if (!(pfn_flags & MUSER_PFN_WRITABLE))
			c->nr_readonly += step;
		WRITE_ONCE(md->dma.pinned, md->dma.pinned + step);
		if (c->holds)
			WRITE_ONCE(md->dma.mapped, md->dma.mapped + step);
		up_write(&md->dma.sem);
		done += step;
	}
	return 0;
}

/*
 * Pages of [first_pfn, last_pfn] (iova >> PAGE_SHIFT) not pinned yet; the
 * count stops past the budget, so a huge range costs no more than that.
 */
static unsigned long muser_dma_missing(struct muser_mdev *md, u64 first_pfn,
				       u64 last_pfn)
{
	unsigned long missing = 0;
	u64 pfn;

	for (pfn = first_pfn; pfn <= last_pfn; pfn++) {
		if (missing > md->dma.budget_pages)
			break;
		struct muser_dma_chunk *c;

		c = xa_load(&md->dma.chunks, pfn >> (MUSER_DMA_CHUNK_SHIFT - PAGE_SHIFT));
		if (!c || c->nr_pinned == MUSER_DMA_CHUNK_PAGES) {
			/* The rest of this chunk is missing too, or none is. */
			u64 next = (pfn | (MUSER_DMA_CHUNK_PAGES - 1)) + 1;

			if (!c)
				missing += min(next, last_pfn + 1) - pfn;
			pfn = next - 1;
			continue;
		}
		if (!c->pfn[pfn & (MUSER_DMA_CHUNK_PAGES - 1)])
			missing++;
	}
	return missing;
}

static unsigned long muser_file_holds(struct muser_ctl_file *cf,
				      unsigned long idx)
{
	void *v = xa_load(&cf->holds, idx);

	return v ? xa_to_value(v) : 0;
}

/* Count @delta holds of @cf on chunk @idx; only a decrement cannot fail. */
static int muser_file_hold(struct muser_ctl_file *cf, unsigned long idx,
			   long delta)
{
	unsigned long n = muser_file_holds(cf, idx) + delta;

	if (!n) {
		xa_erase(&cf->holds, idx);
		return 0;
	}
	return xa_err(xa_store(&cf->holds, idx, xa_mk_value(n),
			       GFP_KERNEL_ACCOUNT));
}

/* Take @n holds of @c: held chunks leave the LRU and count as mapped. */
static void muser_dma_hold(struct muser_mdev *md, struct muser_dma_chunk *c,
			   unsigned long n)
{
	lockdep_assert_held(&md->dma.lock);
	if (!c->holds) {
		list_del_init(&c->lru);
		WRITE_ONCE(md->dma.mapped, md->dma.mapped + c->nr_pinned);
	}
	c->holds += n;
}

/* Drop @n holds; the chunk joins the LRU, or goes if nothing is pinned. */
static void muser_dma_unhold(struct muser_mdev *md, struct muser_dma_chunk *c,
			     unsigned long n)
{
	lockdep_assert_held(&md->dma.lock);
	c->holds -= n;
	if (!c->holds)
		WRITE_ONCE(md->dma.mapped, md->dma.mapped - c->nr_pinned);
	muser_dma_settle(md, c);
}

/* Whether a fence keeps pins out; drops expired timed fences. */
static bool muser_dma_fence_live(struct muser_mdev *md,
				 struct muser_dma_fence *f, unsigned long now)
{
	lockdep_assert_held(&md->dma.lock);
	if (f->task)
		return f->size;
	if (time_before(now, f->until))
		return true;
	list_del(&f->node);
	kfree(f);
	return false;
}

/*
 * Jiffies a pin of [iova, iova + size) must wait for a fence, 0 if none,
 * MAX_SCHEDULE_TIMEOUT for one lifted by its thread.
 */
static long muser_dma_fenced(struct muser_mdev *md, u64 iova, u64 size)
{
	struct muser_dma_fence *f, *tmp;
	unsigned long now = jiffies;
	long wait = 0;

	lockdep_assert_held(&md->dma.lock);
	if (time_before(now, md->dma.fences_until))
		wait = md->dma.fences_until - now;
	list_for_each_entry_safe(f, tmp, &md->dma.fences, node) {
		if (!muser_dma_fence_live(md, f, now) ||
		    iova > f->iova + (f->size - 1) || f->iova > iova + (size - 1))
			continue;
		wait = max_t(long, wait,
			     f->task ? MAX_SCHEDULE_TIMEOUT : f->until - now);
	}
	return wait;
}

/*
 * The unmapping thread is back in userspace (or exiting): type1 is done.
 * Each queued lift holds a reference to the device and to the module.
 */
static void muser_dma_fence_lift(struct callback_head *work)
{
	struct muser_dma_fence *f = container_of(work, struct muser_dma_fence,
						 work);
	struct muser_mdev *md = f->md;

	mutex_lock(&md->dma.lock);
	list_del(&f->node);
	md->dma.fence_seq++;
	mutex_unlock(&md->dma.lock);
	wake_up_all(&md->dma.fence_wq);
	kfree(f);
	put_device(&md->vdev.device);
	module_put(THIS_MODULE);
}

/*
 * The VMM is unmapping [iova, iova + size): fence it until this thread
 * returns to userspace. type1 removes the mapping before the ioctl
 * returns, so no pin can get in between our revocation and its check.
 * One fence per thread: one unmap ioctl may cover many VMM mappings.
 * A kernel thread gets a fence of MUSER_DMA_FENCE_MS; if even that cannot
 * be allocated, all of guest memory is fenced that long.
 */
static void muser_dma_fence(struct muser_mdev *md, u64 iova, u64 size)
{
	unsigned long until = jiffies + msecs_to_jiffies(MUSER_DMA_FENCE_MS);
	struct muser_dma_fence *f;

	lockdep_assert_held(&md->dma.lock);
	list_for_each_entry(f, &md->dma.fences, node) {
		if (f->task != current)
			continue;
		if (f->size) {
			u64 lo = min(f->iova, iova);
			u64 hi = max(f->iova + (f->size - 1), iova + (size - 1));

			iova = lo;
			size = hi - lo + 1;
		}
		f->iova = iova;
		f->size = size;
		return;
	}
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f) {
		md->dma.fences_until = until;
		return;
	}
	f->iova = iova;
	f->size = size;
	f->until = until;
	list_add(&f->node, &md->dma.fences);
	if (current->flags & PF_KTHREAD)
		return;
	f->md = md;
	init_task_work(&f->work, muser_dma_fence_lift);
	get_device(&md->vdev.device);
	__module_get(THIS_MODULE);
	if (!task_work_add(current, &f->work, TWA_RESUME)) {
		f->task = current;
		return;
	}
	/* Exiting: too late for task_work. The device is open, so not last. */
	module_put(THIS_MODULE);
	put_device(&md->vdev.device);
}

/*
 * The VMM closed the device: its fences mean nothing to the next one. A
 * thread's stays listed (unmatched) until its lift runs, which frees it.
 */
static void muser_dma_unfence(struct muser_mdev *md)
{
	struct muser_dma_fence *f, *tmp;

	lockdep_assert_held(&md->dma.lock);
	md->dma.fences_until = 0;
	list_for_each_entry_safe(f, tmp, &md->dma.fences, node) {
		f->size = 0;
		if (!f->task) {
			list_del(&f->node);
			kfree(f);
		}
	}
	md->dma.fence_seq++;
	wake_up_all(&md->dma.fence_wq);
}

/*
 * On 6.1 the VFIO core registers a device for dma_unmap callbacks after
 * open_device() returns, under dev_set->lock: a pin before that would miss
 * its unmap. Taking that lock once after the open proves the registration
 * done (6.2 and later register first; the check is cheap there too).
 * Called without dma.lock: open_device and close_device take it under
 * dev_set->lock.
 */
static int muser_dma_wait_registered(struct muser_mdev *md)
{
	if (READ_ONCE(md->dma.registered))
		return 0;
	if (mutex_lock_killable(&md->vdev.dev_set->lock))
		return -EINTR;
	mutex_lock(&md->dma.lock);
	WRITE_ONCE(md->dma.registered, md->dma.open);
	mutex_unlock(&md->dma.lock);
	mutex_unlock(&md->vdev.dev_set->lock);
	return 0;
}

/*
 * Pin every page of [iova, iova + size), within the budget; with @cf, take
 * a hold for that file on each chunk of the range once all of it is pinned.
 * Pages pinned before a failure stay pinned, on the LRU if unheld.
 * Returns -EAGAIN with *@wait set while the range is fenced.
 */
static int muser_dma_pin(struct muser_mdev *md, u64 iova, u64 size,
			 u32 flags, struct muser_ctl_file *cf, long *wait)
{
	u64 first = iova >> PAGE_SHIFT, last = (iova + size - 1) >> PAGE_SHIFT;
	unsigned long lo = muser_iova_to_chunk(iova), hi = muser_iova_to_chunk(iova + size - 1);
	unsigned long missing;
	struct page **pages;
	unsigned long idx;
	int ret = 0;

	lockdep_assert_held(&md->dma.lock);
	if (!md->dma.open || !md->dma.registered)
		return -ENXIO;
	*wait = muser_dma_fenced(md, iova, size);
	if (*wait)
		return -EAGAIN;
	if (cf) {
		void *v;

		/* Only what the file holds: the range may be huge. */
		xa_for_each_range(&cf->holds, idx, v, lo, hi) {
			if (xa_to_value(v) < MUSER_DMA_MAX_HOLDS)
				continue;
			muser_mdev_err(md, "dma: iova 0x%llx held %u times already\n",
				       (u64)idx << MUSER_DMA_CHUNK_SHIFT,
				       MUSER_DMA_MAX_HOLDS);
			return -EOVERFLOW;
		}
	}

	missing = muser_dma_missing(md, first, last);
	if (missing && !muser_dma_evict(md, missing, lo, hi)) {
		if (!(flags & MUSER_DMA_F_PROBE))
			muser_mdev_err(md, "dma: %lu more pages would exceed the budget of %lu pinned pages\n",
				       missing, md->dma.budget_pages);
		return -ENOSPC;
	}

	pages = kmalloc_array(MUSER_DMA_CHUNK_PAGES, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;

	for (idx = lo; idx <= hi && !ret; idx++) {
		u64 base = idx << (MUSER_DMA_CHUNK_SHIFT - PAGE_SHIFT);
		unsigned int i = max(first, base) - base;
		unsigned int end = min(last, base + MUSER_DMA_CHUNK_PAGES - 1) - base + 1;
		struct muser_dma_chunk *c = muser_dma_get_chunk(md, idx);

		if (IS_ERR(c)) {
			ret = PTR_ERR(c);
			break;
		}
		/* All pinned, and writable if need be: nothing to look at. */
		if (c->nr_pinned == MUSER_DMA_CHUNK_PAGES &&
		    (!c->nr_readonly || !(flags & MUSER_DMA_F_WRITE)))
			i = end;
		while (i < end && !ret) {
			unsigned int n;

			if (c->pfn[i]) {
				if (flags & MUSER_DMA_F_WRITE &&
				    !(c->pfn[i] & MUSER_PFN_WRITABLE))
					ret = muser_dma_pin_error(md, -EPERM,
								  (base + i) << PAGE_SHIFT,
								  1, flags);
				i++;
				continue;
			}
			for (n = 0; i + n < end && !c->pfn[i + n]; n++)
				;
			ret = muser_dma_pin_run(md, c, i, n, flags, pages);
			i += n;
		}
		muser_dma_settle(md, c);
	}
	kfree(pages);
	if (ret || !cf)
		return ret;

	/* All of the range is pinned, so every chunk of it exists. */
	for (idx = lo; idx <= hi; idx++) {
		ret = muser_file_hold(cf, idx, 1);
		if (ret) {
			while (idx-- > lo) {
				muser_file_hold(cf, idx, -1);
				muser_dma_unhold(md, xa_load(&md->dma.chunks, idx), 1);
			}
			return ret;
		}
		muser_dma_hold(md, xa_load(&md->dma.chunks, idx), 1);
	}
	return 0;
}

/*
 * muser_dma_pin() for the attached emulator @file (checked under dma.lock,
 * so a racing detach drops what this takes), waiting out fences.
 */
static int muser_dma_pin_wait(struct muser_mdev *md, struct file *file,
			      u64 iova, u64 size, u32 flags,
			      struct muser_ctl_file *cf)
{
	unsigned long seq;
	long wait;
	int ret;

	ret = muser_dma_wait_registered(md);
	if (ret)
		return ret;
	for (;;) {
		if (mutex_lock_killable(&md->dma.lock))
			return -EINTR;
		if (READ_ONCE(md->emulator) != file)
			ret = -ENOTCONN;
		else
			ret = muser_dma_pin(md, iova, size, flags, cf, &wait);
		seq = md->dma.fence_seq;
		mutex_unlock(&md->dma.lock);
		if (ret != -EAGAIN)
			return ret;
		if (wait_event_killable_timeout(md->dma.fence_wq,
						READ_ONCE(md->dma.fence_seq) != seq,
						wait) < 0)
			return -EINTR;
	}
}

static int muser_dma_check_range(struct muser_mdev *md, u64 iova, u64 size,
				 u32 flags)
{
	if (flags & ~(MUSER_DMA_F_WRITE | MUSER_DMA_F_PROBE)) {
		muser_mdev_err(md, "dma: unknown flags 0x%x\n", flags);
		return -EINVAL;
	}
	if (!size || iova > MUSER_DMA_MAX_IOVA ||
	    size > MUSER_DMA_MAX_IOVA - iova + 1) {
		muser_mdev_err(md, "dma: bad range iova 0x%llx size 0x%llx\n",
			       iova, size);
		return -EINVAL;
	}
	return 0;
}

static int muser_dma_get_args(struct muser_mdev *md, struct file *file,
			      void __user *arg, struct muser_dma_map *m)
{
	if (copy_from_user(m, arg, sizeof(*m)))
		return -EFAULT;
	if (m->argsz < sizeof(*m)) {
		muser_mdev_err(md, "dma: argsz %u < %zu\n", m->argsz, sizeof(*m));
		return -EINVAL;
	}
	if (READ_ONCE(md->emulator) != file)
		return -ENOTCONN;
	return muser_dma_check_range(md, m->iova, m->size, m->flags);
}

int muser_ctl_dma_map(struct muser_mdev *md, struct file *file, void __user *arg)
{
	struct muser_dma_map m;
	int ret;

	ret = muser_dma_get_args(md, file, arg, &m);
	if (ret)
		return ret;
	/* Before the hold is taken: nothing to undo if userspace faults. */
	m.offset = MUSER_DMA_OFFSET + (m.iova & PAGE_MASK);
	if (put_user(m.offset, (u64 __user *)(arg + offsetof(struct muser_dma_map, offset))))
		return -EFAULT;
	return muser_dma_pin_wait(md, file, m.iova, m.size, m.flags,
				  file->private_data);
}

int muser_dma_release(struct muser_mdev *md, struct file *file,
		      void __user *arg)
{
	struct muser_ctl_file *cf = file->private_data;
	struct muser_dma_map m;
	unsigned long lo, hi, idx;
	int ret;

	ret = muser_dma_get_args(md, file, arg, &m);
	if (ret)
		return ret;
	lo = muser_iova_to_chunk(m.iova);
	hi = muser_iova_to_chunk(m.iova + m.size - 1);

	if (mutex_lock_killable(&md->dma.lock))
		return -EINTR;
	for (idx = lo; idx <= hi; idx++) {
		if (muser_file_holds(cf, idx))
			continue;
		/*
		 * A takeover since the check above dropped this file's holds
		 * (muser_dma_drop_holds() runs under dma.lock): it is no
		 * longer the emulator, not a caller releasing what it lacks.
		 */
		if (READ_ONCE(md->emulator) != file) {
			ret = -ENOTCONN;
			goto out_unlock;
		}
		muser_mdev_err(md, "dma: release of iova 0x%llx size 0x%llx: not held\n",
			       m.iova, m.size);
		ret = -EINVAL;
		goto out_unlock;
	}
	for (idx = lo; idx <= hi; idx++) {
		muser_file_hold(cf, idx, -1);
		muser_dma_unhold(md, xa_load(&md->dma.chunks, idx), 1);
	}
out_unlock:
	mutex_unlock(&md->dma.lock);
	return ret;
}

/*
 * The emulator file @file, whose @cf this is, is no longer attached: its
 * holds go, the pins stay for the next one. Unless it has attached again
 * since (a takeover back, or a detach racing an attach on the same file):
 * then it keeps them, and the unmap notices its detach dropped become one
 * "everything unmapped". @file is only compared: after a takeover it may
 * be gone, and its release dropped the holds already.
 */
void muser_dma_drop_holds(struct muser_mdev *md, struct muser_ctl_file *cf,
			  const struct file *file)
{
	unsigned long idx;
	bool back;
	void *v;

	mutex_lock(&md->dma.lock);
	back = READ_ONCE(md->emulator) == file;
	if (back)
		goto out_unlock;
	xa_for_each(&cf->holds, idx, v) {
		muser_dma_unhold(md, xa_load(&md->dma.chunks, idx),
				 xa_to_value(v));
		xa_erase(&cf->holds, idx);
		cond_resched();
	}
out_unlock:
	mutex_unlock(&md->dma.lock);
	if (back)
		muser_post_dma_unmap(md, 0, ~0ull);
}

/*
 * The attached emulator changed (detach, takeover): mappings of the DMA
 * window made by any file go, and faults serve only the new emulator from
 * now on (muser_dma_fault() checks under dma.sem).
 */
void muser_dma_revoke_window(struct muser_mdev *md)
{
	down_write(&md->dma.sem);
	muser_dma_zap(md, 0, MUSER_DMA_MAX_IOVA + 1);
	up_write(&md->dma.sem);
}

/*
 * The page holding @iova with a reference, pinning it (without a hold) if
 * needed, or an ERR_PTR.
 */
static struct page *muser_dma_get_page(struct muser_mdev *md, struct file *file,
				       u64 iova, u64 size, bool write)
{
	struct muser_dma_chunk *c;
	struct page *page = NULL;
	unsigned long entry;
	int ret;

	for (;;) {
		down_read(&md->dma.sem);
		c = xa_load(&md->dma.chunks, muser_iova_to_chunk(iova));
		entry = c ? c->pfn[(iova >> PAGE_SHIFT) & (MUSER_DMA_CHUNK_PAGES - 1)] : 0;
		if (READ_ONCE(md->emulator) != file)
			entry = 0;
		if (entry && (!write || entry & MUSER_PFN_WRITABLE)) {
			page = pfn_to_page(entry >> 2);
			get_page(page);
		}
		up_read(&md->dma.sem);
		if (page)
			return page;
		if (entry)
			return ERR_PTR(-EPERM);

		/* Pin the rest of the copy in one go. */
		ret = muser_dma_pin_wait(md, file, iova & PAGE_MASK,
					 PAGE_ALIGN(iova + size) - (iova & PAGE_MASK),
					 write ? MUSER_DMA_F_WRITE : 0, NULL);
		if (ret)
			return ERR_PTR(ret);
	}
}

int muser_dma_rw(struct muser_mdev *md, struct file *file, void __user *arg)
{
	struct muser_dma_rw rw;
	u8 __user *data;
	u64 done = 0;
	bool write;
	int ret;

	if (copy_from_user(&rw, arg, sizeof(rw)))
		return -EFAULT;
	if (rw.argsz < sizeof(rw)) {
		muser_mdev_err(md, "dma: argsz %u < %zu\n", rw.argsz, sizeof(rw));
		return -EINVAL;
	}
	if (READ_ONCE(md->emulator) != file)
		return -ENOTCONN;
	ret = muser_dma_check_range(md, rw.iova, rw.size, rw.flags);
	if (ret)
		return ret;
	if (rw.size > MUSER_DMA_RW_MAX) {
		muser_mdev_err(md, "dma: copy of %llu bytes, at most %u\n", rw.size,
			       MUSER_DMA_RW_MAX);
		return -EINVAL;
	}
	write = rw.flags & MUSER_DMA_F_WRITE;
	data = u64_to_user_ptr(rw.data);

	/*
	 * Copy with a page reference and no lock held, so faulting on the
	 * emulator's buffer (even a DMA window mapping) cannot deadlock.
	 */
	while (done < rw.size) {
		u64 iova = rw.iova + done;
		size_t off = offset_in_page(iova);
		size_t len = min_t(u64, PAGE_SIZE - off, rw.size - done);
		struct page *page;
		unsigned long left;
		void *va;

		page = muser_dma_get_page(md, file, iova, rw.size - done, write);
		if (IS_ERR(page))
			return PTR_ERR(page);
		va = kmap_local_page(page);
		if (write)
			left = copy_from_user(va + off, data + done, len);
		else
			left = copy_to_user(data + done, va + off, len);
		kunmap_local(va);
		if (write)
			set_page_dirty_lock(page);
		put_page(page);
		if (left)
			return -EFAULT;
		done += len;
	}
	return 0;
}

static vm_fault_t muser_dma_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct muser_mdev *md = vma->vm_private_data;
	u64 iova = ((u64)vmf->pgoff << PAGE_SHIFT) - MUSER_DMA_OFFSET;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	struct muser_dma_chunk *c;
	unsigned long entry = 0;
	bool owner;

	down_read(&md->dma.sem);
	/* Only the attached emulator: revoking the window zaps the others. */
	owner = READ_ONCE(md->emulator) == vma->vm_file;
	c = xa_load(&md->dma.chunks, muser_iova_to_chunk(iova));
	if (c && owner)
		entry = c->pfn[(iova >> PAGE_SHIFT) & (MUSER_DMA_CHUNK_PAGES - 1)];
	/* A writable mapping must not reach a read-only pin at all. */
	if (entry && (entry & MUSER_PFN_WRITABLE || !(vma->vm_flags & VM_WRITE)))
		ret = vmf_insert_pfn(vma, vmf->address, entry >> 2);
	up_read(&md->dma.sem);

	if (ret == VM_FAULT_SIGBUS)
		muser_mdev_err(md, "dma: %s touched iova 0x%llx, which is %s\n",
			       owner ? "the emulator" : "a detached emulator", iova,
			       !owner ? "no longer its own" :
			       entry ? "read-only" : "not pinned");
	return ret;
}

static const struct vm_operations_struct muser_dma_vm_ops = {
	.fault = muser_dma_fault,
};

int muser_dma_mmap(struct muser_mdev *md, struct vm_area_struct *vma)
{
	u64 len = vma->vm_end - vma->vm_start;
	u64 start = (u64)vma->vm_pgoff << PAGE_SHIFT;

	if (!(vma->vm_flags & VM_SHARED) || start < MUSER_DMA_OFFSET ||
	    start - MUSER_DMA_OFFSET > MUSER_DMA_MAX_IOVA ||
	    len > MUSER_DMA_MAX_IOVA + 1 - (start - MUSER_DMA_OFFSET)) {
		muser_mdev_err(md, "dma: bad mmap of the DMA window (offset 0x%llx, 0x%llx bytes, %s)\n",
			       start, len,
			       vma->vm_flags & VM_SHARED ? "shared" : "private");
		return -EINVAL;
	}
	if (!(vma->vm_flags & VM_WRITE))
		muser_vm_flags_clear(vma, VM_MAYWRITE);
	muser_vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND |
			   VM_DONTDUMP | VM_DONTCOPY);
	vma->vm_ops = &muser_dma_vm_ops;
	vma->vm_private_data = md;
	return 0;
}

void muser_dma_open(struct muser_mdev *md)
{
	mutex_lock(&md->dma.lock);
	md->dma.open = true;
	WRITE_ONCE(md->dma.registered, false);
	mutex_unlock(&md->dma.lock);
}

/* The VMM is going: nothing may stay pinned past close_device. */
void muser_dma_close(struct muser_mdev *md)
{
	mutex_lock(&md->dma.lock);
	muser_dma_revoke(md, 0, MUSER_DMA_MAX_IOVA + 1);
	muser_dma_unfence(md);
	md->dma.open = false;
	WRITE_ONCE(md->dma.registered, false);
	mutex_unlock(&md->dma.lock);
	muser_post_dma_unmap(md, 0, ~0ull);
}

/*
 * vfio's dma_unmap callback: every pin in the range must be gone when it
 * returns, and the VMM may hold its own locks, so nothing here waits for
 * the emulator. The fence keeps new pins out until type1 has removed the
 * mapping.
 */
void muser_dma_guest_unmapped(struct muser_mdev *md, u64 iova, u64 size)
{
	if (!size || iova > MUSER_DMA_MAX_IOVA)
		return;
	size = min(size, MUSER_DMA_MAX_IOVA - iova + 1);
	mutex_lock(&md->dma.lock);
	muser_dma_fence(md, iova, size);
	muser_dma_revoke(md, iova, size);
	mutex_unlock(&md->dma.lock);
	muser_post_dma_unmap(md, iova, size);
	muser_nl_event(md, MUSER_EVENT_DMA_UNMAPPED, 0, iova, size);
}

void muser_dma_destroy(struct muser_mdev *md)
{
	struct muser_dma_chunk *c;
	unsigned long idx;

	/*
	 * close_device unpinned everything and dropped the fences (a
	 * thread's holds a device reference). Only empty chunks may be left.
	 */
	xa_for_each(&md->dma.chunks, idx, c) {
		WARN_ON_ONCE(c->nr_pinned);
		kfree(c);
	}
	xa_destroy(&md->dma.chunks);
	mutex_destroy(&md->dma.lock);
}

/* sysfs: /sys/bus/mdev/devices/UUID/dma/ */
static ssize_t pinned_pages_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", READ_ONCE(dev_to_muser(dev)->dma.pinned));
}
static DEVICE_ATTR_RO(pinned_pages);

static ssize_t mapped_pages_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", READ_ONCE(dev_to_muser(dev)->dma.mapped));
}
static DEVICE_ATTR_RO(mapped_pages);

static ssize_t evictions_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct muser_mdev *md = dev_to_muser(dev);

	return sysfs_emit(buf, "%lu\n", READ_ONCE(md->dma.evictions));
}
static DEVICE_ATTR_RO(evictions);

static ssize_t budget_mb_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return muser_budget_mb_show(buf, READ_ONCE(dev_to_muser(dev)->dma.budget_pages));
}

static ssize_t budget_mb_store(struct device *dev,
			       struct device_attribute *attr,
			       const char *buf, size_t count)
{
	struct muser_mdev *md = dev_to_muser(dev);
	unsigned long pages;
	int ret;

	ret = muser_budget_mb_parse(buf, 1, UINT_MAX, &pages);
	if (ret)
		return ret;
	mutex_lock(&md->dma.lock);
	md->dma.budget_pages = pages;
	/* Shrinking takes effect now for what nobody holds. */
	muser_dma_evict(md, 0, 1, 0);
	mutex_unlock(&md->dma.lock);
	return count;
}
static DEVICE_ATTR_RW(budget_mb);

static struct attribute *muser_dma_attrs[] = {
	&dev_attr_pinned_pages.attr,
	&dev_attr_mapped_pages.attr,
	&dev_attr_evictions.attr,
	&dev_attr_budget_mb.attr,
	NULL
};

const struct attribute_group muser_dma_group = {
	.name = "dma",
	.attrs = muser_dma_attrs,
};
