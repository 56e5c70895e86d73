// SPDX-License-Identifier: BSD-3-Clause
/*
 * The fake muser.ko's request ring (fake_kernel.h): RING_SETUP, the
 * mapping (malloc'd memory), the SQ it fills and the CQ it takes answers
 * from, with the checks the uapi header says the kernel makes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake_kernel.h"

#define PAGE	4096u

static uint32_t load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static bool ring_usable(const struct fake_kernel *fk)
{
	return fk->ring_mem && !(fk->ring_kflags & MUSER_RING_F_BROKEN);
}

int fake_ring_setup(struct fake_kernel *fk, struct muser_ring_setup *s)
{
	uint32_t e = s->entries;
	size_t sq_off = PAGE, cq_off, size;

	if (!fk->ring_ok)
		return fk->ring_errno ? fk->ring_errno : ENOTTY;
	if (s->argsz < sizeof(*s) || s->flags || s->pad || !e ||
	    e > MUSER_RING_MAX_ENTRIES || (e & (e - 1)))
		return EINVAL;
	if (!fk->attached)
		return ENOTCONN;
	if (fk->ring_mem)
		return EBUSY;
	cq_off = sq_off + e * sizeof(struct muser_ring_sqe);
	size = (cq_off + e * sizeof(struct muser_ring_cqe) + PAGE - 1) & ~(size_t)(PAGE - 1);
	fk->ring_mem = aligned_alloc(PAGE, size);
	if (!fk->ring_mem)
		abort();
	memset(fk->ring_mem, 0, size);
	fk->ring_size = size;
	fk->ring_entries = e;
	fk->rhdr = fk->ring_mem;
	fk->sq = (struct muser_ring_sqe *)((uint8_t *)fk->ring_mem + sq_off);
	fk->cq = (struct muser_ring_cqe *)((uint8_t *)fk->ring_mem + cq_off);
	s->size = size;
	s->sq_off = sq_off;
	s->cq_off = fk->ring_bad_layout ? size : cq_off;
	fake_ring_flags(fk);
	return 0;
}

void *fake_ring_mmap(struct muser_dev *dev, size_t len, uint64_t offset)
{
	struct fake_kernel *fk = dev->io_priv;

	if (!fk->ring_mem || offset != MUSER_RING_OFFSET || len > fk->ring_size) {
		errno = EINVAL;
		return NULL;
	}
	fk->ring_mapped = true;
	return fk->ring_mem;
}

void fake_ring_munmap(struct muser_dev *dev, void *addr, size_t len)
{
	struct fake_kernel *fk = dev->io_priv;

	if (addr != fk->ring_mem || len != fk->ring_size)
		abort();
	fk->ring_mapped = false;
}

/* MUSER_RING_F_READ when requests wait for read(), and the test's flags. */
void fake_ring_flags(struct fake_kernel *fk)
{
	uint32_t f = fk->ring_kflags;

	if (!fk->ring_mem)
		return;
	if (fk->qhead < fk->nqueue && !fk->ring_no_read_flag)
		f |= MUSER_RING_F_READ;
	__atomic_store_n(&fk->rhdr->kflags, f, __ATOMIC_RELEASE);
}

/* Put a new request in the SQ if it may go there. */
bool fake_ring_push(struct fake_kernel *fk, const struct muser_req *r,
		    const void *data)
{
	uint32_t tail, head;
	struct muser_ring_sqe *sqe;

	if (!ring_usable(fk) || !fk->ring_mapped || fk->ring_no_push ||
	    r->len > MUSER_RING_DATA || r->data_len > MUSER_RING_DATA ||
	    fk->qhead < fk->nqueue)		/* nothing overtakes read() */
		return false;
	tail = fk->rhdr->sq_tail;
	head = load_acquire(&fk->rhdr->sq_head);
	if (tail - head >= fk->ring_entries)
		return false;
	sqe = &fk->sq[tail & (fk->ring_entries - 1)];
	memset(sqe, 0, sizeof(*sqe));
	sqe->req = *r;
	memcpy(sqe->data, data, r->data_len);
	store_release(&fk->rhdr->sq_tail, tail + 1);
	fk->nsqes++;
	return true;
}

unsigned int fake_ring_reap(struct fake_kernel *fk)
{
	uint32_t tail, n;

	if (!ring_usable(fk))
		return 0;
	tail = load_acquire(&fk->rhdr->cq_tail);
	n = tail - fk->ring_cq_head;
	if (n > fk->ring_entries)
		abort();	/* the library broke the ring */
	for (; fk->ring_cq_head != tail; fk->ring_cq_head++) {
		struct muser_ring_cqe cqe;
		ssize_t idx = -1;

		memcpy(&cqe, &fk->cq[fk->ring_cq_head & (fk->ring_entries - 1)],
		       sizeof(cqe));
		if (cqe.reply.len > MUSER_RING_DATA ||
		    fake_check_reply(fk, &cqe.reply, sizeof(cqe.reply) +
				     MUSER_ALIGN_UP(cqe.reply.len), &idx)) {
			fk->ncqe_errors++;
			continue;
		}
		fake_record_reply(fk, &cqe.reply, cqe.data, idx);
		fk->ncqes++;
	}
	store_release(&fk->rhdr->cq_head, fk->ring_cq_head);
	return n;
}

int fake_ring_enter(struct fake_kernel *fk)
{
	if (!fk->ring_mem)
		return ENODEV;
	fk->nring_enters++;
	fake_ring_reap(fk);
	return 0;
}
