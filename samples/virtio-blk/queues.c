// SPDX-License-Identifier: BSD-3-Clause
/*
 * The virtio-blk sample's queues in guest memory, through libmuser's DMA
 * API: the rings are mapped with muser_dma_map() while the queue is
 * enabled; each request's buffers are mapped for the request and handed to
 * preadv/pwritev on the backing file as iovecs (zero copy); indirect
 * tables are copied with muser_dma_read().
 *
 * With --poll, a queue that runs dry within poll_us of its last request
 * is not given back to the driver's doorbell at once: its avail ring is
 * looked at again on every turn of the event loop, notifications left off
 * (EVENT_IDX: avail_event stays behind), so that a guest submitting
 * steadily rings no doorbell at all. Past poll_us without a request the
 * queue asks for its doorbell again (vq_enable_notify()) and the loop
 * sleeps.
 *
 * Guest memory can be revoked under us (the VMM unmapped it): the library
 * calls vblk_dma_revoke() from muser_dispatch(), and the queue maps its
 * rings again at its next notification. Between the revocation and that
 * call, touching the old mapping raises SIGBUS: queue processing runs
 * under a SIGBUS guard that abandons the request (it is taken again later)
 * instead of crashing.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "vblk.h"

#define VBLK_MAX_SEGS	256		/* buffers in one request */
#define VBLK_MAX_SG	512		/* mapped pieces of them */
#define ISR_QUEUE	0x1

/* The request being served: its mappings, released when it completes. */
static struct {
	struct vq_seg segs[VBLK_MAX_SEGS];
	struct muser_sg sg[VBLK_MAX_SG];
	struct iovec iov[VBLK_MAX_SG];
	int call_start[VBLK_MAX_SEGS], call_n[VBLK_MAX_SEGS];
	int nsg, ncalls;
} req;

static sigjmp_buf bus_env;
static volatile sig_atomic_t bus_guard;
static struct vblk *volatile busy_vblk;		/* the queue being served */
static struct vblk_queue *volatile busy_queue;
static volatile bool in_flight;			/* a request was taken, not returned */

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (bus_guard) {
		bus_guard = 0;
		siglongjmp(bus_env, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_guard(void)
{
	static bool done;
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };

	if (done)
		return;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	done = true;
}

static void release_request(struct vblk *v)
{
	int i;

	for (i = 0; i < req.ncalls; i++)
		muser_dma_unmap(v->dev, &req.sg[req.call_start[i]], req.call_n[i]);
	req.ncalls = 0;
	req.nsg = 0;
}

void vblk_queue_release(struct vblk *v, struct vblk_queue *q)
{
	int r;

	if (!q->mapped)
		return;
	for (r = 0; r < RING_N; r++)
		muser_dma_unmap(v->dev, &q->map[r], 1);
	q->mapped = false;
}

static int map_rings(struct vblk *v, struct vblk_queue *q)
{
	static const char *const names[] = { "descriptor table", "avail ring", "used ring" };
	static const unsigned int prot[] = {
		MUSER_DMA_READ, MUSER_DMA_READ, MUSER_DMA_READ | MUSER_DMA_WRITE
	};
	size_t size[] = { vq_desc_size(q->size), vq_avail_size(q->size),
			  vq_used_size(q->size) };
	int r;

	for (r = 0; r < RING_N; r++) {
		if (muser_dma_map(v->dev, q->addr[r], size[r], prot[r], &q->map[r], 1) < 0) {
			/* ENOBUFS: it is not contiguous here (crosses 2 MiB). */
			muser_log(v->dev, LOG_WARNING, "cannot map the %s at %#llx+%zu: %m",
				  names[r], (unsigned long long)q->addr[r], size[r]);
			while (r-- > 0)
				muser_dma_unmap(v->dev, &q->map[r], 1);
			return -1;
		}
	}
	q->mapped = true;
	q->vq.desc = q->map[RING_DESC].addr;
	q->vq.avail = q->map[RING_AVAIL].addr;
	q->vq.used = q->map[RING_USED].addr;
	return 0;
}

int vblk_queue_enable(struct vblk *v, struct vblk_queue *q)
{
	if (q->addr[RING_DESC] % 16 || q->addr[RING_AVAIL] % 2 || q->addr[RING_USED] % 4) {
		muser_log(v->dev, LOG_WARNING, "misaligned rings");
		errno = EINVAL;
		return -1;
	}
	if (map_rings(v, q) < 0)
		return -1;
	install_guard();
	vq_init(&q->vq, q->size, q->vq.desc, q->vq.avail, q->vq.used,
		v->driver_features & (1ull << VIRTIO_RING_F_EVENT_IDX),
		v->driver_features & (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	q->enabled = true;
	muser_log(v->dev, LOG_INFO, "queue %td enabled: %u entries, vector %u",
		  q - v->q, q->size, q->msix_vector);
	return 0;
}

/*
 * A recovered queue: map its rings now if the guest memory is there (else
 * at its first use). Its indices are taken from guest memory in
 * serve_queue(), under the SIGBUS guard.
 */
void vblk_queue_resync(struct vblk *v, struct vblk_queue *q)
{
	if (!q->mapped && map_rings(v, q) == 0)
		install_guard();
}

/*
 * The guest's used->idx, which only the device writes, counts the requests
 * the device completed: each was published before the next was taken (see
 * state.c). The saved used_idx is the same or, if the emulator was killed
 * between publishing and saving, one behind. What was taken and not
 * completed is taken again.
 */
static void resync(struct vblk *v, struct vblk_queue *q)
{
	uint16_t guest = le16toh(__atomic_load_n(&q->vq.used->idx, __ATOMIC_ACQUIRE));
	uint16_t saved = q->vq.used_idx;

	if (guest != saved && guest != (uint16_t)(saved + 1))
		muser_log(v->dev, LOG_WARNING,
			  "queue %td: used index %u in guest memory, %u saved: using the guest's",
			  q - v->q, guest, saved);
	if (q->vq.last_avail != guest) {
		muser_log(v->dev, LOG_INFO, "queue %td: serving again from avail %u (taken up to %u)",
			  q - v->q, guest, q->vq.last_avail);
		v->redone += (uint16_t)(q->vq.last_avail - guest);
	}
	q->vq.used_idx = guest;
	q->vq.last_avail = guest;
	q->resync = false;
}

bool vblk_pending(const struct vblk *v)
{
	unsigned int i;

	for (i = 0; i < VBLK_NQ; i++) {
		if (v->q[i].enabled && (v->q[i].notified || v->q[i].polled))
			return true;
	}
	return false;
}

void vblk_dma_revoke(struct muser_dev *dev, void *priv, uint64_t iova,
		     uint64_t size)
{
	struct vblk *v = priv;
	uint64_t end = size > UINT64_MAX - iova ? UINT64_MAX : iova + size;
	unsigned int i;
	int r;

	v->revokes++;
	muser_log(dev, LOG_INFO, "guest memory %#llx+%#llx revoked",
		  (unsigned long long)iova, (unsigned long long)size);
	for (i = 0; i < VBLK_NQ; i++) {
		struct vblk_queue *q = &v->q[i];

		for (r = 0; q->mapped && r < RING_N; r++) {
			if (q->map[r].iova < end && iova < q->map[r].iova + q->map[r].len)
				vblk_queue_release(v, q);	/* mapped again when used */
		}
	}
}

void vblk_interrupt(struct vblk *v, uint16_t vector, uint8_t isr)
{
	v->isr |= isr;
	if (vector == VIRTIO_MSI_NO_VECTOR)
		return;
	/* ENOENT: the VMM has not enabled the vector; nothing to do. */
	if (muser_irq_trigger(v->dev, VFIO_PCI_MSIX_IRQ_INDEX, vector) == 0)
		v->irqs++;
	else if (errno != ENOENT)
		muser_log(v->dev, LOG_WARNING, "vector %u: %m", vector);
}

static int read_guest(void *opaque, uint64_t iova, void *buf, size_t len)
{
	struct vblk *v = opaque;

	return muser_dma_read(v->dev, iova, buf, len);
}

/*
 * Serves the chain at @head. Returns 0 when it went back to the used ring
 * (also with an error status), -1 when the chain is malformed (the device
 * then needs a reset).
 */
static int serve(struct vblk *v, struct vblk_queue *q, uint16_t head)
{
	struct vq_seg *segs = req.segs, *last;
	int n, i, k, nout = 0;
	ssize_t written;

	n = vq_walk(&q->vq, head, read_guest, v, segs, VBLK_MAX_SEGS);
	if (n < 0) {
		muser_log(v->dev, LOG_WARNING, "queue %td, chain %u: %m",
			  q - v->q, head);
		vblk_needs_reset(v, errno == EINVAL ? "malformed descriptor chain" :
				 errno == E2BIG ? "descriptor chain too long" :
				 "cannot read an indirect descriptor table");
		return -1;
	}
	for (i = 0; i < n; i++) {
		int got = muser_dma_map(v->dev, segs[i].iova, segs[i].len,
					segs[i].write ? MUSER_DMA_WRITE : MUSER_DMA_READ,
					&req.sg[req.nsg], VBLK_MAX_SG - req.nsg);

		if (got < 0) {
			muser_log(v->dev, LOG_WARNING, "cannot map buffer %#llx+%u: %m",
				  (unsigned long long)segs[i].iova, segs[i].len);
			goto fail;
		}
		req.call_start[req.ncalls] = req.nsg;
		req.call_n[req.ncalls++] = got;
		for (k = 0; k < got; k++) {
			req.iov[req.nsg + k].iov_base = req.sg[req.nsg + k].addr;
			req.iov[req.nsg + k].iov_len = req.sg[req.nsg + k].len;
		}
		if (!segs[i].write)
			nout += got;
		req.nsg += got;
	}
	written = blk_request(&v->blk, req.iov, nout, req.iov + nout, req.nsg - nout);
#ifdef MUSER_SAMPLE_TEST_HOOKS
	if (v->die_in_request && --v->die_in_request == 0) {
		vblk_save(v);	/* the request taken, done, not returned */
		raise(SIGKILL);
	}
#endif
	if (written < 0) {
		muser_log(v->dev, LOG_WARNING, "request without header or status byte");
		written = 0;
	}
	release_request(v);
	vq_push(&q->vq, head, written);
	q->served++;
	vblk_save(v);		/* after the used element is published */
	return 0;

fail:
	release_request(v);
	/* Report an I/O error in the status byte if it can be written. */
	written = 0;
	last = n ? &segs[n - 1] : NULL;
	if (last && last->write) {
		uint8_t status = VIRTIO_BLK_S_IOERR;

		if (muser_dma_write(v->dev, last->iova + last->len - 1, &status, 1) == 0)
			written = 1;
	}
	v->blk.n_ioerr++;
	vq_push(&q->vq, head, written);
	q->served++;
	vblk_save(v);
	return 0;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

/*
 * A dry queue: polled (notifications left off) while within poll_us of
 * the last request, else its doorbell asked for. Returns true if entries
 * came meanwhile.
 */
static bool queue_dry(struct vblk *v, struct vblk_queue *q)
{
	q->polled = v->poll_us && now_us() < v->poll_until;
	return !q->polled && vq_enable_notify(&q->vq);
}

/* Serves one queue, at most 2 * size requests. */
static void serve_queue(struct vblk *v, struct vblk_queue *q)
{
	unsigned int done = 0;
	uint16_t head;
	bool irq;
	int r;

	if (q->resync)
		resync(v, q);
	for (;;) {
		r = vq_pop(&q->vq, &head);
		if (r < 0) {
			vblk_needs_reset(v, "corrupt avail ring");
			break;
		}
		if (r == 0) {
			if (queue_dry(v, q))
				continue;
			break;
		}
		if (v->poll_us)
			v->poll_until = now_us() + v->poll_us;
		vblk_save(v);	/* taken: counted as redone if it must be */
		in_flight = true;
		r = serve(v, q, head);
		in_flight = false;
		if (r < 0)
			break;
		if (++done >= 2u * q->size) {
			q->notified = true;	/* let requests of the VMM in */
			break;
		}
	}
	irq = vq_need_interrupt(&q->vq);
	if (q->kick) {
		irq = true;
		q->kick = false;
	}
	if (irq)
		vblk_interrupt(v, q->msix_vector, ISR_QUEUE);
	if (done || irq || !q->polled)	/* a polled queue's empty look changes nothing */
		vblk_save(v);
}

/* serve_queue(busy_vblk, busy_queue) under the SIGBUS guard (no locals). */
static void serve_guarded(void)
{
	if (sigsetjmp(bus_env, 1)) {
		/* Guest memory vanished under us: the revocation is on its way. */
		muser_log(busy_vblk->dev, LOG_WARNING,
			  "queue %td: guest memory revoked while in use",
			  busy_queue - busy_vblk->q);
		release_request(busy_vblk);
		if (in_flight)	/* take that request again; used->idx says */
			busy_queue->resync = true;
		vblk_queue_release(busy_vblk, busy_queue);
		busy_queue->notified = true;
		return;
	}
	bus_guard = 1;
	serve_queue(busy_vblk, busy_queue);
	bus_guard = 0;
}

/* Returns true if more requests wait, or the queue is polled. */
static bool process_queue(struct vblk *v, struct vblk_queue *q)
{
	q->notified = false;
	if (!q->mapped && map_rings(v, q) < 0) {
		vblk_needs_reset(v, "cannot map a ring");
		return false;
	}
	busy_vblk = v;
	busy_queue = q;
	in_flight = false;
	serve_guarded();
	return q->notified || q->polled;
}

bool vblk_process(struct vblk *v)
{
	uint16_t cmd = 0;
	bool more = false;
	unsigned int i;

	if (!(v->status & VIRTIO_CONFIG_S_DRIVER_OK) ||
	    (v->status & VIRTIO_CONFIG_S_NEEDS_RESET))
		return false;
	/* No DMA unless the driver enabled bus mastering. */
	if (muser_config_read(v->dev, &cmd, sizeof(cmd), PCI_COMMAND) < 0 ||
	    !(cmd & PCI_COMMAND_MASTER))
		return false;
	for (i = 0; i < VBLK_NQ; i++) {
		if (v->q[i].enabled && (v->q[i].notified || v->q[i].polled) &&
		    !(v->status & VIRTIO_CONFIG_S_NEEDS_RESET))
			more |= process_queue(v, &v->q[i]);
	}
	return more;
}
