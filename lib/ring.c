// SPDX-License-Identifier: BSD-3-Clause
/*
 * The request ring (<linux/muser.h>, MUSER_IOC_RING_SETUP): set up at
 * realize when the kernel offers one, requests taken from its submission
 * queue in read()'s wire format so that the dispatcher serves them as a
 * read() batch, answers that fit put in its completion queue.
 *
 * The kernel is trusted, but nothing it wrote is used unchecked: the
 * layout is validated before it is mapped, each entry is copied once
 * before it is looked at, and an index out of range makes the library
 * stop using the ring (requests then come by read() only).
 */
#include <errno.h>
#include <string.h>

#include "private.h"

/* The largest mapping believed: the real one is about 36 KiB. */
#define RING_SIZE_MAX	(1u << 20)

static uint32_t load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

MUSER_EXPORT int muser_set_ring(struct muser_dev *dev, unsigned int entries)
{
	if (muser_unrealized(dev))
		return -1;
	if (entries > MUSER_RING_MAX_ENTRIES || (entries & (entries - 1))) {
		errno = EINVAL;
		return -1;
	}
	dev->ring_entries = entries;
	return 0;
}

/* Whether [off, off + len) lies in the mapping, after the header. */
static bool within(const struct muser_ring_setup *s, uint64_t off,
		   uint64_t len)
{
	return off >= sizeof(struct muser_ring_hdr) && off % MUSER_ALIGN == 0 &&
	       off <= s->size && len <= s->size - off;
}

static bool layout_ok(const struct muser_ring_setup *s, uint32_t entries)
{
	uint64_t sq_len = (uint64_t)entries * sizeof(struct muser_ring_sqe);
	uint64_t cq_len = (uint64_t)entries * sizeof(struct muser_ring_cqe);

	return s->size <= RING_SIZE_MAX && within(s, s->sq_off, sq_len) &&
	       within(s, s->cq_off, cq_len) &&
	       (s->sq_off + sq_len <= s->cq_off || s->cq_off + cq_len <= s->sq_off);
}

/*
 * After attaching: ask for a ring and map it. Without one (an older
 * module, a refused size) requests come by read(), as before.
 * Returns 0, or -1 with errno when the kernel set up a ring this process
 * cannot use: requests would go there unseen, so realize fails.
 */
int muser_ring_setup(struct muser_dev *dev)
{
	struct muser_ring_setup s = {
		.argsz = sizeof(s), .entries = dev->ring_entries,
	};
	struct muser_ring *r = &dev->ring;
	uint8_t *p;

	if (!dev->ring_entries)
		return 0;
	if (dev->io->ioctl(dev, MUSER_IOC_RING_SETUP, &s) < 0) {
		muser_dbg(dev, "no request ring (%s): requests by read()",
			  strerror(errno));
		return 0;
	}
	if (!layout_ok(&s, dev->ring_entries)) {
		muser_err(dev, "request ring: bad layout (size %llu, SQ at %llu, CQ at %llu)",
			  (unsigned long long)s.size,
			  (unsigned long long)s.sq_off,
			  (unsigned long long)s.cq_off);
		errno = EIO;
		return -1;
	}
	p = dev->io->mmap(dev, s.size, MUSER_RING_OFFSET);
	if (!p) {
		muser_err(dev, "request ring: mmap: %s", strerror(errno));
		return -1;
	}
	*r = (struct muser_ring){
		.hdr = (struct muser_ring_hdr *)p,
		.sq = (struct muser_ring_sqe *)(p + s.sq_off),
		.cq = (struct muser_ring_cqe *)(p + s.cq_off),
		.entries = dev->ring_entries,
		.size = s.size,
	};
	r->sq_head = load_acquire(&r->hdr->sq_head);
	r->cq_tail = load_acquire(&r->hdr->cq_tail);
	muser_dbg(dev, "request ring of %u entries", r->entries);
	return 0;
}

void muser_ring_free(struct muser_dev *dev)
{
	struct muser_ring *r = &dev->ring;

	if (r->hdr)
		dev->io->munmap(dev, r->hdr, r->size);
	memset(r, 0, sizeof(*r));
}

bool muser_ring_up(const struct muser_dev *dev)
{
	return dev->ring.hdr && !dev->ring.dead;
}

/* The kernel's MUSER_RING_F_*; 0 without a ring. */
uint32_t muser_ring_kflags(const struct muser_dev *dev)
{
	return muser_ring_up(dev) ? load_acquire(&dev->ring.hdr->kflags) : 0;
}

static void ring_dead(struct muser_dev *dev, const char *what, uint32_t theirs,
		      uint32_t ours)
{
	dev->ring.dead = true;
	muser_err(dev, "request ring: %s %u out of range (ours %u, %u entries): ring not used any more",
		  what, theirs, ours, dev->ring.entries);
}

/*
 * Move the requests in the SQ to @buf (@cap bytes) as read() returns
 * them: a struct muser_req and data_len bytes, padded to MUSER_ALIGN.
 * Returns the bytes stored.
 */
size_t muser_ring_take(struct muser_dev *dev, uint8_t *buf, size_t cap)
{
	struct muser_ring *r = &dev->ring;
	uint32_t tail, head = r->sq_head;
	size_t pos = 0;

	if (!muser_ring_up(dev))
		return 0;
	tail = load_acquire(&r->hdr->sq_tail);
	if (tail - head > r->entries) {
		ring_dead(dev, "sq_tail", tail, head);
		return 0;
	}
	for (; head != tail; head++) {
		struct muser_ring_sqe sqe;
		size_t size;

		memcpy(&sqe, &r->sq[head & (r->entries - 1)], sizeof(sqe));
		if (sqe.req.data_len > MUSER_RING_DATA) {
			/* Type 0 is none: the request is refused (EINVAL). */
			muser_err(dev, "request ring: req %llu: data_len %u, more than an entry holds",
				  (unsigned long long)sqe.req.id,
				  sqe.req.data_len);
			sqe.req.type = 0;
			sqe.req.data_len = 0;
		}
		size = sizeof(sqe.req) + MUSER_ALIGN_UP(sqe.req.data_len);
		if (size > cap - pos)
			break;
		memcpy(buf + pos, &sqe.req, sizeof(sqe.req));
		memset(buf + pos + sizeof(sqe.req), 0, size - sizeof(sqe.req));
		memcpy(buf + pos + sizeof(sqe.req), sqe.data, sqe.req.data_len);
		pos += size;
	}
	if (head != r->sq_head) {
		/* Copied: the kernel may reuse the entries. */
		r->sq_head = head;
		store_release(&r->hdr->sq_head, head);
	}
	return pos;
}

/* Answers are in the CQ, and a waiter sleeps: have the kernel take them. */
static int ring_enter(struct muser_dev *dev)
{
	int e;

	while (dev->io->ioctl(dev, MUSER_IOC_RING_ENTER, NULL) < 0) {
		e = errno;
		if (e == EINTR)
			continue;
		muser_err(dev, "request ring: RING_ENTER: %s", strerror(e));
		errno = e;
		return -1;
	}
	return 0;
}

/*
 * Put the replies in @out (*@len bytes, as muser_handle_requests() built
 * them) that fit in the CQ there, in order, and move the others to the
 * start of @out for write(): *@len becomes their length.
 * Returns 0, or -1 with errno set when RING_ENTER failed.
 */
int muser_ring_answer(struct muser_dev *dev, uint8_t *out, size_t *len)
{
	struct muser_ring *r = &dev->ring;
	uint32_t head, tail = r->cq_tail, room;
	size_t pos = 0, keep = 0;
	bool reloaded = false;

	if (!muser_ring_up(dev) ||
	    (load_acquire(&r->hdr->kflags) & MUSER_RING_F_BROKEN))
		return 0;
	head = load_acquire(&r->hdr->cq_head);
	if (tail - head > r->entries) {
		ring_dead(dev, "cq_head", head, tail);
		return 0;
	}
	room = r->entries - (tail - head);
	while (pos < *len) {
		struct muser_reply rep;
		size_t size;
		bool fits;

		memcpy(&rep, out + pos, sizeof(rep));
		size = sizeof(rep) + MUSER_ALIGN_UP(rep.len);
		fits = rep.len <= MUSER_RING_DATA;
		if (fits && !room && !reloaded) {
			/* The kernel may have taken some meanwhile. */
			reloaded = true;
			head = load_acquire(&r->hdr->cq_head);
			if (tail - head > r->entries) {
				ring_dead(dev, "cq_head", head, tail);
				return 0;
			}
			room = r->entries - (tail - head);
		}
		if (fits && room) {
			struct muser_ring_cqe *cqe = &r->cq[tail & (r->entries - 1)];

			memcpy(&cqe->reply, &rep, sizeof(rep));
			memcpy(cqe->data, out + pos + sizeof(rep), rep.len);
			tail++;
			room--;
		} else {
			if (keep != pos)
				memmove(out + keep, out + pos, size);
			keep += size;
		}
		pos += size;
	}
	*len = keep;
	if (tail == r->cq_tail)
		return 0;
	r->cq_tail = tail;
	store_release(&r->hdr->cq_tail, tail);
	/*
	 * Pairs with the kernel's barrier between setting MUSER_RING_F_WAKEUP
	 * and taking answers: either it sees these, or this sees the flag.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->hdr->kflags, __ATOMIC_RELAXED) & MUSER_RING_F_WAKEUP)
		return ring_enter(dev);
	return 0;
}
