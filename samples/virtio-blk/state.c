// SPDX-License-Identifier: BSD-3-Clause
/*
 * What the virtio-blk sample keeps in its state area (muser_state()), so
 * that a restarted or upgraded emulator carries on where the last one
 * stopped: the transport's registers (features, status, MSI-X vectors,
 * each queue's size, addresses and enable bit), each queue's indices, the
 * ISR status and the last ISR read, and the request counters.
 *
 * Layout: a header, then two copies of struct vblk_saved in fixed slots. A
 * save writes the copy that is not current, then flips the header's index,
 * so an emulator killed in the middle of a save leaves the previous copy
 * whole. Compatibility: fields are only ever appended to struct
 * vblk_saved; the header says how big the writer's copy was, and a reader
 * takes what both know and zeroes the rest. A change that cannot be made
 * that way takes a new magic.
 *
 * When it is saved: at the end of every BAR0 or config access that changes
 * something (before libmuser writes the reply: a crash replays the access,
 * see below), at resets, and after every request returned to the used
 * ring.
 *
 * Exactly once: requests are served in order, one at a time per queue, and
 * each one's used element is published (used->idx, in guest memory) before
 * the next is taken. So the guest's used->idx, which only the device
 * writes, says exactly how many requests of that queue are complete: a new
 * emulator takes last_avail = used_idx = used->idx from guest memory and
 * serves again the one request, if any, that the dead one had taken but
 * not completed (writes to the file are idempotent, a read is read again,
 * discard and write zeroes too). A completion is never pushed twice. It
 * also sends each live queue's interrupt once (the dead one may have
 * published a completion without signalling it: a spurious interrupt is
 * harmless), and looks at every queue (a notification it answered may not
 * have been acted on).
 *
 * Replayed accesses (muser_req_replayed()): the register writes are
 * idempotent (they set values; status 0 resets again; queue_enable of an
 * enabled queue is ignored; a notification only makes the queue looked
 * at); the one access with a side effect, reading the ISR status (which
 * clears it), is recorded with its request id and answered again from the
 * record.
 *
 * One emulator serves the queues: a takeover must not let the old one and
 * the new one work on the rings at the same time. The old one serves
 * queues under an exclusive flock(2) of the backing file and checks, under
 * it, that the state area's owner is still its own; the new one takes the
 * lock before it attaches and holds it until it has made itself the owner.
 * The lock goes with a killed process.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/file.h>
#include <syslog.h>
#include <linux/virtio_config.h>

#include "vblk.h"

#define VBLK_STATE_MAGIC	0x4b4c4256u	/* "VBLK" */
#define VBLK_STATE_VERSION	1	/* informational: the layout rules above decide */
#define VBLK_STATE_MAXQ		16	/* queue slots, whatever VBLK_NQ is */
#define VBLK_COPY_OFF		4096	/* copy i at VBLK_COPY_OFF + i * VBLK_COPY_SLOT */
#define VBLK_COPY_SLOT		(64u << 10)

struct vblk_saved_queue {
	uint64_t addr[RING_N];
	uint64_t served;
	uint16_t size, msix_vector;
	uint16_t last_avail, used_idx, signalled_used;
	uint8_t enabled, pad[5];
};

/* One copy. Append only. */
struct vblk_saved {
	uint64_t features, driver_features;
	uint32_t dfselect, gfselect;
	uint16_t msix_config, queue_sel;
	uint8_t status, isr, isr_read_val, config_generation;
	uint64_t isr_read_id;		/* the last ISR read, for replays */
	struct virtio_pci_cfg_cap pci_cfg;
	uint32_t nq;
	struct vblk_saved_queue q[VBLK_STATE_MAXQ];
	uint64_t n_in, n_out, n_flush, n_get_id, n_discard, n_zeroes, n_unsupp, n_ioerr;
	uint64_t resets, revokes, recoveries;
	uint64_t redone;
};

struct vblk_state_hdr {
	uint32_t magic;
	uint32_t version;		/* of the last writer */
	uint32_t copy_size;		/* sizeof(struct vblk_saved) of the last writer */
	uint32_t current;		/* the whole copy: 0 or 1 (2: none) */
	uint32_t owner;			/* which emulator serves the queues */
	uint32_t pad;
};

_Static_assert(sizeof(struct vblk_state_hdr) <= VBLK_COPY_OFF, "header");
_Static_assert(sizeof(struct vblk_saved) <= VBLK_COPY_SLOT, "copy slot");
_Static_assert(VBLK_NQ <= VBLK_STATE_MAXQ, "queue slots");

static struct vblk_state_hdr *hdr(struct vblk *v)
{
	size_t size;
	void *p = muser_state(v->dev, &size);

	return p && size >= VBLK_COPY_OFF + 2 * VBLK_COPY_SLOT ? p : NULL;
}

static struct vblk_saved *copy(struct vblk_state_hdr *h, unsigned int i)
{
	return (struct vblk_saved *)((uint8_t *)h + VBLK_COPY_OFF + i * VBLK_COPY_SLOT);
}

void vblk_save(struct vblk *v)
{
	struct vblk_state_hdr *h = hdr(v);
	struct vblk_saved *s;
	unsigned int i, next;
	int r;

	if (!h || v->gone)
		return;
	next = h->current == 0 ? 1 : 0;
	s = copy(h, next);
	memset(s, 0, sizeof(*s));
	s->features = v->features;
	s->driver_features = v->driver_features;
	s->dfselect = v->dfselect;
	s->gfselect = v->gfselect;
	s->msix_config = v->msix_config;
	s->queue_sel = v->queue_sel;
	s->status = v->status;
	s->isr = v->isr;
	s->isr_read_val = v->isr_read_val;
	s->isr_read_id = v->isr_read_id;
	s->config_generation = 0;	/* the configuration never changes */
	s->pci_cfg = v->pci_cfg;
	s->nq = VBLK_NQ;
	for (i = 0; i < VBLK_NQ; i++) {
		const struct vblk_queue *q = &v->q[i];
		struct vblk_saved_queue *sq = &s->q[i];

		for (r = 0; r < RING_N; r++)
			sq->addr[r] = q->addr[r];
		sq->served = q->served;
		sq->size = q->size;
		sq->msix_vector = q->msix_vector;
		sq->enabled = q->enabled;
		sq->last_avail = q->vq.last_avail;
		sq->used_idx = q->vq.used_idx;
		sq->signalled_used = q->vq.signalled_used;
	}
	s->n_in = v->blk.n_in;
	s->n_out = v->blk.n_out;
	s->n_flush = v->blk.n_flush;
	s->n_get_id = v->blk.n_get_id;
	s->n_discard = v->blk.n_discard;
	s->n_zeroes = v->blk.n_zeroes;
	s->n_unsupp = v->blk.n_unsupp;
	s->n_ioerr = v->blk.n_ioerr;
	s->resets = v->resets;
	s->revokes = v->revokes;
	s->recoveries = v->recoveries;
	s->redone = v->redone;
	h->copy_size = sizeof(*s);
	h->version = VBLK_STATE_VERSION;
	/* The copy is whole before it becomes the current one. */
	__atomic_store_n(&h->current, next, __ATOMIC_RELEASE);
}

/* Reads the current copy into @s (zero-extended). Returns 0 or -1. */
static int load(struct vblk *v, struct vblk_saved *s)
{
	struct vblk_state_hdr *h = hdr(v);
	unsigned int cur;
	size_t n;

	memset(s, 0, sizeof(*s));
	if (!h || h->magic != VBLK_STATE_MAGIC)
		return -1;
	cur = __atomic_load_n(&h->current, __ATOMIC_ACQUIRE);
	if (cur > 1 || h->copy_size < offsetof(struct vblk_saved, n_in))
		return -1;
	n = h->copy_size < sizeof(*s) ? h->copy_size : sizeof(*s);
	memcpy(s, copy(h, cur), n);
	return s->nq == VBLK_NQ ? 0 : -1;
}

/* Starts a queue again where the saved state left it. */
static void resume_queue(struct vblk *v, struct vblk_queue *q,
			 const struct vblk_saved_queue *sq)
{
	int r;

	for (r = 0; r < RING_N; r++)
		q->addr[r] = sq->addr[r];
	q->served = sq->served;
	q->msix_vector = sq->msix_vector;
	q->size = sq->size;
	if (!sq->enabled)
		return;
	if (!q->size || q->size > VBLK_QSIZE || (q->size & (q->size - 1))) {
		vblk_needs_reset(v, "saved queue size is invalid");
		return;
	}
	memset(&q->vq, 0, sizeof(q->vq));
	q->vq.num = q->size;
	q->vq.event_idx = v->driver_features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	q->vq.indirect = v->driver_features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	q->vq.last_avail = sq->last_avail;
	q->vq.used_idx = sq->used_idx;
	q->vq.signalled_used = sq->signalled_used;
	q->enabled = true;
	q->resync = true;	/* indices from guest memory once mapped */
	q->kick = true;		/* one interrupt, for what the dead one did not signal */
	q->notified = true;	/* and look at the avail ring */
	/* Mapped now if the guest memory is there, else at first use. */
	vblk_queue_resync(v, q);
}

/* muser_recover_cb */
int vblk_recover(struct muser_dev *dev, void *priv)
{
	struct vblk *v = priv;
	struct vblk_saved s;
	unsigned int i;

	(void)dev;
	if (load(v, &s) < 0) {
		/* e.g. an older sample that kept nothing: start from power-on */
		muser_log(v->dev, LOG_WARNING,
			  "no virtio-blk state to recover: the device starts from reset");
		vblk_reset(v);
		vblk_save(v);
		return 0;
	}
	if (s.features != v->features)
		muser_log(v->dev, LOG_WARNING,
			  "offered features changed from %#llx to %#llx",
			  (unsigned long long)s.features, (unsigned long long)v->features);
	v->driver_features = s.driver_features;
	v->dfselect = s.dfselect;
	v->gfselect = s.gfselect;
	v->msix_config = s.msix_config;
	v->queue_sel = s.queue_sel;
	v->status = s.status;
	v->isr = s.isr;
	v->isr_read_val = s.isr_read_val;
	v->isr_read_id = s.isr_read_id;
	/* the capability's fixed bytes stay ours */
	memcpy((uint8_t *)&v->pci_cfg + offsetof(struct virtio_pci_cap, bar),
	       (uint8_t *)&s.pci_cfg + offsetof(struct virtio_pci_cap, bar),
	       sizeof(v->pci_cfg) - offsetof(struct virtio_pci_cap, bar));
	v->blk.n_in = s.n_in;
	v->blk.n_out = s.n_out;
	v->blk.n_flush = s.n_flush;
	v->blk.n_get_id = s.n_get_id;
	v->blk.n_discard = s.n_discard;
	v->blk.n_zeroes = s.n_zeroes;
	v->blk.n_unsupp = s.n_unsupp;
	v->blk.n_ioerr = s.n_ioerr;
	v->resets = s.resets;
	v->revokes = s.revokes;
	v->recoveries = s.recoveries + 1;
	v->redone = s.redone;
	for (i = 0; i < VBLK_NQ; i++)
		resume_queue(v, &v->q[i], &s.q[i]);
	muser_log(v->dev, LOG_INFO, "recovered: status %#x, features %#llx",
		  v->status, (unsigned long long)v->driver_features);
	vblk_save(v);
	return 0;
}

/* A new device (nothing recovered): claim the state area. */
void vblk_state_init(struct vblk *v)
{
	struct vblk_state_hdr *h = hdr(v);

	if (!h)
		return;
	if (h->magic == VBLK_STATE_MAGIC)
		memset(h, 0, VBLK_COPY_OFF + 2 * VBLK_COPY_SLOT);
	h->current = 2;
	h->magic = VBLK_STATE_MAGIC;
	vblk_save(v);
}

int vblk_lock(struct vblk *v)
{
	while (flock(v->blk.fd, LOCK_EX) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

void vblk_unlock(struct vblk *v)
{
	flock(v->blk.fd, LOCK_UN);
}

/* Under vblk_lock(), after attaching: this emulator serves the queues. */
void vblk_claim(struct vblk *v)
{
	struct vblk_state_hdr *h = hdr(v);

	if (h)
		v->owner = __atomic_add_fetch(&h->owner, 1, __ATOMIC_SEQ_CST);
}

/* Under vblk_lock(): whether this emulator still serves the queues. */
bool vblk_owner(struct vblk *v)
{
	struct vblk_state_hdr *h = hdr(v);

	if (h && __atomic_load_n(&h->owner, __ATOMIC_SEQ_CST) != v->owner)
		v->gone = true;
	return !v->gone;
}
