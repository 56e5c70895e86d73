// SPDX-License-Identifier: BSD-3-Clause
/*
 * Guest memory. The kernel pins guest pages in 2 MiB chunks and exposes
 * each chunk at MUSER_DMA_OFFSET + iova of the control node. This file
 * keeps one mapping per chunk the device has touched, and one kernel hold
 * per chunk while the device has pieces of it mapped, so mapping memory
 * that is already mapped costs no system call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "private.h"

#define MUSER_PAGE_SIZE	4096ull
#define CHUNK_SIZE	(1ull << MUSER_DMA_CHUNK_SHIFT)
#define CHUNK_PAGES	(CHUNK_SIZE / MUSER_PAGE_SIZE)
#define DMA_BUCKETS	1024
/* Chunk mappings kept before idle ones are dropped. */
#define DMA_MAX_MAPPED	4096

/*
 * One chunk this process has mapped.
 * @addr:  CHUNK_SIZE bytes of the DMA window, or NULL
 * @refs:  pieces muser_dma_map() handed out and not released
 * @held:  the kernel holds the chunk for us (taken with the first ref)
 * @known: pages known to be pinned (valid while @held)
 */
struct dma_chunk {
	uint64_t index;
	void *addr;
	unsigned int refs;
	bool held;
	uint64_t known[CHUNK_PAGES / 64];
	struct dma_chunk *next;
};

struct muser_dma_cache {
	struct dma_chunk *buckets[DMA_BUCKETS];
	unsigned int nr_mapped;
};

static struct dma_chunk **bucket(struct muser_dma_cache *dc, uint64_t index)
{
	return &dc->buckets[index % DMA_BUCKETS];
}

static struct dma_chunk *chunk_find(struct muser_dma_cache *dc, uint64_t index)
{
	struct dma_chunk *c;

	for (c = *bucket(dc, index); c; c = c->next)
		if (c->index == index)
			return c;
	return NULL;
}

static struct dma_chunk *chunk_get(struct muser_dma_cache *dc, uint64_t index)
{
	struct dma_chunk *c = chunk_find(dc, index);

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->index = index;
	c->next = *bucket(dc, index);
	*bucket(dc, index) = c;
	return c;
}

static void known_set(struct dma_chunk *c, unsigned int first, unsigned int n,
		      bool val)
{
	unsigned int i;

	if (!first && n == CHUNK_PAGES) {
		memset(c->known, val ? 0xff : 0, sizeof(c->known));
		return;
	}
	for (i = first; i < first + n; i++) {
		if (val)
			c->known[i / 64] |= 1ull << (i % 64);
		else
			c->known[i / 64] &= ~(1ull << (i % 64));
	}
}

static bool known_all(const struct dma_chunk *c, unsigned int first,
		      unsigned int n)
{
	unsigned int i;

	for (i = first; i < first + n; i++)
		if (!(c->known[i / 64] & (1ull << (i % 64))))
			return false;
	return true;
}

static int dma_ioctl(struct muser_dev *dev, unsigned long req, uint64_t iova,
		     uint64_t size, uint32_t flags)
{
	/* Always for writing: read-only guest memory cannot be mapped. */
	struct muser_dma_map m = {
		.argsz = sizeof(m),
		.flags = MUSER_DMA_F_WRITE | flags,
		.iova = iova,
		.size = size,
	};

	return dev->io->ioctl(dev, req, &m);
}

/*
 * Drop the mappings of idle chunks but @keep; their pins stay with the
 * kernel.
 */
static void dma_trim(struct muser_dev *dev, const struct dma_chunk *keep)
{
	struct muser_dma_cache *dc = dev->dma;
	unsigned int b;

	for (b = 0; b < DMA_BUCKETS; b++) {
		struct dma_chunk **pp = &dc->buckets[b], *c;

		while ((c = *pp)) {
			if (c->refs || c == keep) {
				pp = &c->next;
				continue;
			}
			*pp = c->next;
			if (c->addr) {
				munmap(c->addr, CHUNK_SIZE);
				dc->nr_mapped--;
			}
			free(c);
		}
	}
}

/*
 * Make pages [first, first + n) of @c mapped, pinned and held. The first
 * hold pins the whole chunk if it can (later pieces then cost nothing),
 * else just the pages asked for.
 */
static int chunk_prepare(struct muser_dev *dev, struct dma_chunk *c,
			 unsigned int first, unsigned int n)
{
	struct muser_dma_cache *dc = dev->dma;
	uint64_t base = c->index * CHUNK_SIZE;
	uint64_t iova = base + first * MUSER_PAGE_SIZE;
	uint64_t size = n * MUSER_PAGE_SIZE;

	if (!c->addr) {
		void *p;

		if (dc->nr_mapped >= DMA_MAX_MAPPED)
			dma_trim(dev, c);
		p = mmap(NULL, CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 dev->fd, (off_t)(MUSER_DMA_OFFSET + base));
		if (p == MAP_FAILED)
			return -1;
		c->addr = p;
		dc->nr_mapped++;
	}
	if (c->held && known_all(c, first, n))
		return 0;
	if (!c->held) {
		if (dma_ioctl(dev, MUSER_IOC_DMA_MAP, base, CHUNK_SIZE,
			      MUSER_DMA_F_PROBE) == 0) {
			known_set(c, 0, CHUNK_PAGES, true);
			c->held = true;
			return 0;
		}
		if (dma_ioctl(dev, MUSER_IOC_DMA_MAP, iova, size, 0) < 0)
			return -1;
		c->held = true;
	} else {
		/* Pin more of a held chunk, keeping one hold. */
		if (dma_ioctl(dev, MUSER_IOC_DMA_MAP, iova, size, 0) < 0)
			return -1;
		dma_ioctl(dev, MUSER_IOC_DMA_RELEASE, iova, size, 0);
	}
	known_set(c, first, n, true);
	return 0;
}

/*
 * @count chunks from @start that are neither mapped nor held: one mmap()
 * and one DMA_MAP for all, rather than one of each per chunk (an emulator
 * mapping all of guest memory again after a restart). If that cannot be
 * done, e.g. the run reaches past guest memory, chunk_prepare() will.
 */
static void run_prepare(struct muser_dev *dev, uint64_t start, uint64_t count)
{
	struct muser_dma_cache *dc = dev->dma;
	uint64_t base = start * CHUNK_SIZE, size = count * CHUNK_SIZE, i;
	uint8_t *p;

	if (count < 2 || dc->nr_mapped + count > DMA_MAX_MAPPED)
		return;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd,
		 (off_t)(MUSER_DMA_OFFSET + base));
	if (p == MAP_FAILED)
		return;
	if (dma_ioctl(dev, MUSER_IOC_DMA_MAP, base, size, MUSER_DMA_F_PROBE) < 0) {
		munmap(p, size);
		return;
	}
	/* Each chunk owns its part of the mapping: trimming unmaps parts. */
	for (i = 0; i < count; i++) {
		struct dma_chunk *c = chunk_find(dc, start + i);

		c->addr = p + i * CHUNK_SIZE;
		c->held = true;
		known_set(c, 0, CHUNK_PAGES, true);
	}
	dc->nr_mapped += count;
}

static void runs_prepare(struct muser_dev *dev, uint64_t first, uint64_t last)
{
	uint64_t idx = first, start;
	struct dma_chunk *c;

	while (idx <= last) {
		start = idx;
		while (idx <= last && (c = chunk_get(dev->dma, idx)) &&
		       !c->addr && !c->held)
			idx++;
		run_prepare(dev, start, idx - start);
		if (idx == start)
			idx++;
	}
}

static int chunk_unref(struct muser_dev *dev, struct dma_chunk *c)
{
	if (!c || !c->refs) {
		errno = EINVAL;
		return -1;
	}
	if (--c->refs || !c->held)
		return 0;
	/* Idle: the kernel may now unpin it to stay within the budget. */
	c->held = false;
	memset(c->known, 0, sizeof(c->known));
	return dma_ioctl(dev, MUSER_IOC_DMA_RELEASE, c->index * CHUNK_SIZE, 1, 0);
}

static int dma_ready(struct muser_dev *dev)
{
	if (!dev->realized) {
		errno = EINVAL;
		return -1;
	}
	if (!dev->dma) {
		dev->dma = calloc(1, sizeof(*dev->dma));
		if (!dev->dma)
			return -1;
	}
	return 0;
}

MUSER_EXPORT int muser_dma_map(struct muser_dev *dev, uint64_t iova,
			       size_t len, unsigned int prot,
			       struct muser_sg *sg, int max_sg)
{
	uint64_t end = iova + len, first_chunk, last_chunk, idx;
	int n = 0, e;

	if (dma_ready(dev) < 0)
		return -1;
	if (!len || !sg || max_sg <= 0 || !prot ||
	    prot & ~(MUSER_DMA_READ | MUSER_DMA_WRITE) ||
	    end < iova || end - 1 > MUSER_DMA_MAX_IOVA) {
		errno = EINVAL;
		return -1;
	}
	first_chunk = iova / CHUNK_SIZE;
	last_chunk = (end - 1) / CHUNK_SIZE;
	if (last_chunk - first_chunk >= (uint64_t)max_sg) {
		errno = ENOBUFS;
		return -1;
	}

	if (last_chunk > first_chunk)
		runs_prepare(dev, first_chunk, last_chunk);
	for (idx = first_chunk; idx <= last_chunk; idx++, n++) {
		uint64_t base = idx * CHUNK_SIZE;
		uint64_t lo = iova > base ? iova : base;
		uint64_t hi = end < base + CHUNK_SIZE ? end : base + CHUNK_SIZE;
		unsigned int pfirst = (lo - base) / MUSER_PAGE_SIZE;
		unsigned int plast = (hi - 1 - base) / MUSER_PAGE_SIZE;
		struct dma_chunk *c = chunk_get(dev->dma, idx);

		if (!c || chunk_prepare(dev, c, pfirst, plast - pfirst + 1) < 0) {
			e = errno;
			muser_dbg(dev, "dma map 0x%llx+0x%zx: %s",
				  (unsigned long long)iova, len, strerror(e));
			muser_dma_unmap(dev, sg, n);
			errno = e;
			return -1;
		}
		c->refs++;
		sg[n].iova = lo;
		sg[n].len = hi - lo;
		sg[n].addr = (uint8_t *)c->addr + (lo - base);
	}
	return n;
}

MUSER_EXPORT int muser_dma_unmap(struct muser_dev *dev,
				 const struct muser_sg *sg, int n)
{
	int i, ret = 0;

	if (!n)
		return 0;
	if (!dev->dma || n < 0 || !sg) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct dma_chunk *c = chunk_find(dev->dma, sg[i].iova / CHUNK_SIZE);

		if (chunk_unref(dev, c) < 0)
			ret = -1;
	}
	return ret;
}

static int dma_copy(struct muser_dev *dev, uint64_t iova, void *buf,
		    size_t len, bool write)
{
	struct muser_dma_rw rw = { .argsz = sizeof(rw) };
	size_t done = 0;

	if (!dev->realized || !len || (!buf && len)) {
		errno = EINVAL;
		return -1;
	}
	rw.flags = write ? MUSER_DMA_F_WRITE : 0;
	while (done < len) {
		size_t part = len - done;

		if (part > MUSER_DMA_RW_MAX)
			part = MUSER_DMA_RW_MAX;
		rw.iova = iova + done;
		rw.size = part;
		rw.data = (uint64_t)(uintptr_t)((uint8_t *)buf + done);
		if (dev->io->ioctl(dev, MUSER_IOC_DMA_RW, &rw) < 0)
			return -1;
		done += part;
	}
	return 0;
}

MUSER_EXPORT int muser_dma_read(struct muser_dev *dev, uint64_t iova,
				void *buf, size_t len)
{
	return dma_copy(dev, iova, buf, len, false);
}

MUSER_EXPORT int muser_dma_write(struct muser_dev *dev, uint64_t iova,
				 const void *buf, size_t len)
{
	return dma_copy(dev, iova, (void *)buf, len, true);
}

MUSER_EXPORT int muser_set_dma_revoke_cb(struct muser_dev *dev,
					 muser_dma_revoke_cb cb, void *priv)
{
	if (muser_unrealized(dev))
		return -1;
	dev->dma_revoke_cb = cb;
	dev->dma_revoke_priv = priv;
	return 0;
}

/* MUSER_REQ_DMA_UNMAP: the kernel unpinned [iova, iova + size). */
void muser_dma_revoked(struct muser_dev *dev, uint64_t iova, uint64_t size)
{
	uint64_t end = size > UINT64_MAX - iova ? UINT64_MAX : iova + size;
	unsigned int b;

	muser_dbg(dev, "dma revoked: 0x%llx+0x%llx", (unsigned long long)iova,
		  (unsigned long long)size);
	if (dev->dma) {
		for (b = 0; b < DMA_BUCKETS; b++) {
			struct dma_chunk *c;

			for (c = dev->dma->buckets[b]; c; c = c->next) {
				uint64_t base = c->index * CHUNK_SIZE;
				uint64_t lo = iova > base ? iova : base;
				uint64_t hi = end < base + CHUNK_SIZE ?
					      end : base + CHUNK_SIZE;

				if (lo >= hi)
					continue;
				/* The hold survives; the pins do not. */
				lo = (lo - base) / MUSER_PAGE_SIZE;
				hi = (hi - 1 - base) / MUSER_PAGE_SIZE;
				known_set(c, lo, hi - lo + 1, false);
			}
		}
	}
	if (dev->dma_revoke_cb)
		dev->dma_revoke_cb(dev, dev->dma_revoke_priv, iova, size);
}

void muser_dma_free(struct muser_dev *dev)
{
	unsigned int b;

	if (!dev->dma)
		return;
	for (b = 0; b < DMA_BUCKETS; b++) {
		struct dma_chunk *c, *next;

		for (c = dev->dma->buckets[b]; c; c = next) {
			next = c->next;
			if (c->addr)
				munmap(c->addr, CHUNK_SIZE);
			free(c);
		}
	}
	free(dev->dma);
	dev->dma = NULL;
}
