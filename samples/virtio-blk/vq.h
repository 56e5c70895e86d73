/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueues (virtio 1.x, 2.7): the device side, on rings already
 * mapped into this process. Pure logic: no libmuser, so it is unit-tested
 * against rings in ordinary memory (tests/test_vq.c).
 *
 * Everything read from the rings is the guest's and is validated: indices,
 * descriptor counts, chain lengths (walks are bounded by the queue size and
 * the indirect table size), flags. A malformed chain is reported, not
 * followed.
 */
#ifndef VBLK_VQ_H
#define VBLK_VQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

#define VQ_MAX_SIZE		1024	/* largest queue size offered */
#define VQ_MAX_INDIRECT		1024	/* descriptors in one indirect table */

/* One guest buffer of a chain, in order: device-readable ones first. */
struct vq_seg {
	uint64_t iova;
	uint32_t len;
	bool write;		/* device-writable */
};

/*
 * Reads guest memory (for indirect tables). Returns 0, or -1 with errno.
 */
typedef int (*vq_read_fn)(void *opaque, uint64_t iova, void *buf, size_t len);

struct vq {
	unsigned int num;		/* queue size, a power of 2 */
	struct vring_desc *desc;	/* num entries */
	struct vring_avail *avail;	/* flags, idx, ring[num], used_event */
	struct vring_used *used;	/* flags, idx, ring[num], avail_event */
	bool event_idx;			/* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;			/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	uint16_t last_avail;		/* next avail entry to take */
	uint16_t used_idx;		/* our copy of used->idx */
	uint16_t signalled_used;	/* used->idx at the last interrupt */
};

/* Byte sizes of the three rings of a queue of @num entries. */
size_t vq_desc_size(unsigned int num);
size_t vq_avail_size(unsigned int num);
size_t vq_used_size(unsigned int num);

/* Starts a queue on mapped rings (last_avail, used_idx from used->idx). */
void vq_init(struct vq *vq, unsigned int num, void *desc, void *avail,
	     void *used, bool event_idx, bool indirect);

/*
 * Takes the head of the next available chain.
 * Returns 1 and sets *head, 0 if none is available, or -1 (errno EINVAL)
 * if the avail ring is corrupt (index more than num ahead, head out of
 * range): the queue is unusable.
 */
int vq_pop(struct vq *vq, uint16_t *head);

/*
 * Walks the chain starting at @head into @segs (at most @max_segs),
 * following one level of indirection (read through @read). Zero-length
 * buffers are dropped. Returns the number of segments, or -1 with errno:
 * EINVAL (malformed: index out of range, loop, readable after writable,
 * nested or misplaced indirect, bad indirect size), E2BIG (more than
 * @max_segs segments), or the error of @read.
 */
int vq_walk(const struct vq *vq, uint16_t head, vq_read_fn read,
	    void *opaque, struct vq_seg *segs, unsigned int max_segs);

/* Returns chain @head with @len bytes written into the used ring. */
void vq_push(struct vq *vq, uint16_t head, uint32_t len);

/*
 * Whether the driver wants an interrupt for what was pushed since the last
 * interrupt (VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
 * Records the interrupt as sent when it returns true.
 */
bool vq_need_interrupt(struct vq *vq);

/*
 * Before going idle: with EVENT_IDX, asks for a notification at the next
 * available entry. Returns true if entries became available meanwhile
 * (process them before waiting).
 */
bool vq_enable_notify(struct vq *vq);

#endif
