// SPDX-License-Identifier: BSD-3-Clause
/*
 * Split virtqueues, device side: see vq.h. The rings are guest memory the
 * guest may change at any time: every field is read once into a local
 * copy, then checked.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "vq.h"

/* One indirect table at a time: the sample serves its queues in one thread. */
static _Thread_local struct vring_desc indirect_buf[VQ_MAX_INDIRECT];

size_t vq_desc_size(unsigned int num)
{
	return sizeof(struct vring_desc) * num;
}

size_t vq_avail_size(unsigned int num)
{
	return sizeof(uint16_t) * (3 + num);		/* flags idx ring[] used_event */
}

size_t vq_used_size(unsigned int num)
{
	return sizeof(uint16_t) * 3 + sizeof(struct vring_used_elem) * num;
}

void vq_init(struct vq *vq, unsigned int num, void *desc, void *avail,
	     void *used, bool event_idx, bool indirect)
{
	memset(vq, 0, sizeof(*vq));
	vq->num = num;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	/* A queue (re)started on rings the guest already used carries on. */
	vq->used_idx = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_RELAXED));
	vq->last_avail = vq->used_idx;
	vq->signalled_used = vq->used_idx;
}

static uint16_t avail_idx(const struct vq *vq)
{
	/* Acquire: the ring entries below idx are read after it. */
	return le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
}

int vq_pop(struct vq *vq, uint16_t *head)
{
	uint16_t pending = (uint16_t)(avail_idx(vq) - vq->last_avail);
	uint16_t h;

	if (!pending)
		return 0;
	if (pending > vq->num) {
		errno = EINVAL;
		return -1;
	}
	h = le16toh(__atomic_load_n(&vq->avail->ring[vq->last_avail & (vq->num - 1)],
				    __ATOMIC_RELAXED));
	if (h >= vq->num) {
		errno = EINVAL;
		return -1;
	}
	vq->last_avail++;
	*head = h;
	return 1;
}

static void read_desc(const struct vring_desc *table, unsigned int i,
		      struct vring_desc *d)
{
	const volatile struct vring_desc *src = &table[i];

	d->addr = le64toh(src->addr);
	d->len = le32toh(src->len);
	d->flags = le16toh(src->flags);
	d->next = le16toh(src->next);
}

int vq_walk(const struct vq *vq, uint16_t head, vq_read_fn read,
	    void *opaque, struct vq_seg *segs, unsigned int max_segs)
{
	const struct vring_desc *table = vq->desc;
	unsigned int size = vq->num, steps = 0, n = 0;
	bool in_indirect = false, seen_write = false;
	unsigned int i = head;
	struct vring_desc d;

	for (;;) {
		/* A chain visits each descriptor of its table at most once. */
		if (i >= size || ++steps > size)
			goto bad;
		read_desc(table, i, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* Only as the head of a chain, alone, one level deep. */
			if (!vq->indirect || in_indirect || steps != 1 ||
			    (d.flags & VRING_DESC_F_NEXT) || !d.len ||
			    d.len % sizeof(struct vring_desc) ||
			    d.len / sizeof(struct vring_desc) > VQ_MAX_INDIRECT)
				goto bad;
			if (read(opaque, d.addr, indirect_buf, d.len) < 0)
				return -1;
			table = indirect_buf;
			size = d.len / sizeof(struct vring_desc);
			in_indirect = true;
			steps = 0;
			i = 0;
			continue;
		}
		if (d.addr + d.len < d.addr)
			goto bad;
		if (d.flags & VRING_DESC_F_WRITE)
			seen_write = true;
		else if (seen_write)
			goto bad;	/* readable buffers come first */
		if (d.len) {
			if (n == max_segs) {
				errno = E2BIG;
				return -1;
			}
			segs[n].iova = d.addr;
			segs[n].len = d.len;
			segs[n].write = d.flags & VRING_DESC_F_WRITE;
			n++;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			return n;
		i = d.next;
	}
bad:
	errno = EINVAL;
	return -1;
}

void vq_push(struct vq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e = &vq->used->ring[vq->used_idx & (vq->num - 1)];

	e->id = htole32(head);
	e->len = htole32(len);
	vq->used_idx++;
	/* Release: the element is visible before the index that covers it. */
	__atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
}

bool vq_need_interrupt(struct vq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx;

	/* The used index is published before the driver's wishes are read. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (old == now)
		return false;
	vq->signalled_used = now;
	if (vq->event_idx) {
		uint16_t ev = le16toh(__atomic_load_n(&vq->avail->ring[vq->num],
						      __ATOMIC_RELAXED));

		return vring_need_event(ev, now, old);
	}
	return !(le16toh(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED)) &
		 VRING_AVAIL_F_NO_INTERRUPT);
}

bool vq_enable_notify(struct vq *vq)
{
	if (vq->event_idx) {
		uint16_t *avail_event = (uint16_t *)&vq->used->ring[vq->num];

		__atomic_store_n(avail_event, htole16(vq->last_avail),
				 __ATOMIC_RELAXED);
	}
	/* The wish is published before the index is checked again. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_idx(vq) != vq->last_avail;
}
