// SPDX-License-Identifier: GPL-2.0
/*
 * A background raw emulator thread; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "common.h"

/*
 * One answer: through the CQ in ring mode when it fits (kicked once per
 * batch, emu_thread_kick()), else write(). 0 or write()'s result.
 */
static ssize_t emu_thread_reply(struct emu_thread *t, uint64_t id,
				int32_t error, const void *data, uint32_t len)
{
	struct muser_ring_cqe c;

	if (t->flags & EMU_THREAD_RING && len <= MUSER_RING_DATA) {
		emu_ring_cqe(&c, id, error, data, len);
		/* A full CQ: the kernel takes what is there when entered. */
		if (!emu_ring_post(&t->ring, &c) ||
		    (!emu_ring_enter(&t->ring) && !emu_ring_post(&t->ring, &c))) {
			t->nr_cqe++;
			t->to_kick = true;
			return 0;
		}
	}
	return emu_reply(t->ctl, id, error, data, len);
}

/* After a batch of CQ answers: RING_ENTER if a VMM thread sleeps. */
static void emu_thread_kick(struct emu_thread *t)
{
	int ret;

	if (!t->to_kick)
		return;
	t->to_kick = false;
	ret = emu_ring_kick(&t->ring);
	if (ret < 0 && ret != -ENODEV && ret != -ENOTCONN)
		t->errors++;
}

static void emu_answer(struct emu_thread *t, struct emu_req *r)
{
	uint8_t data[MUSER_MAX_DATA];
	uint32_t i;
	ssize_t n;

	if (r->hdr.flags & MUSER_REQ_F_REPLAYED)
		t->nr_replayed++;
	switch (r->hdr.type) {
	case MUSER_REQ_READ:
		t->nr_read++;
		t->bytes_read += r->hdr.len;
		for (i = 0; i < r->hdr.len && i < sizeof(data); i++)
			data[i] = emu_pattern(r->hdr.region, r->hdr.offset + i);
		n = emu_thread_reply(t, r->hdr.id, 0, data, r->hdr.len);
		break;
	case MUSER_REQ_WRITE:
		t->nr_write++;
		t->bytes_written += r->hdr.len;
		n = emu_thread_reply(t, r->hdr.id, 0, NULL, 0);
		break;
	case MUSER_REQ_RESET:
		t->nr_reset++;
		n = emu_thread_reply(t, r->hdr.id, 0, NULL, 0);
		break;
	case MUSER_REQ_IRQ_STATE:	/* posted: no reply */
		t->nr_irq_state++;
		return;
	case MUSER_REQ_DMA_UNMAP:
		t->nr_dma_unmap++;
		return;
	case MUSER_REQ_VMM_CLOSE:
		t->nr_vmm_close++;
		return;
	default:
		t->errors++;
		n = emu_thread_reply(t, r->hdr.id, EINVAL, NULL, 0);
		break;
	}
	/*
	 * ENOENT: the VMM gave up on it meanwhile; ENODEV: the device was
	 * removed meanwhile. Neither is the emulator's error.
	 */
	if (n < 0 && n != -ENOENT && n != -ENODEV)
		t->errors++;
}

/* One read() and its answers: false once the device is gone or broken. */
static bool emu_thread_serve(struct emu_thread *t, struct emu_req *reqs)
{
	int n = emu_read(t->ctl, reqs, EMU_READ_MAX), i;

	if (n == -EAGAIN || n == -EINTR)
		return true;
	if (n == -ENODEV)	/* removed: what POLLHUP says, a bit late */
		return false;
	if (n < 0) {
		t->errors++;
		return false;
	}
	for (i = 0; i < n; i++)
		emu_answer(t, &reqs[i]);
	emu_thread_kick(t);
	return true;
}

/* EMU_THREAD_RING: answer what the SQ holds; how many requests. */
static int emu_thread_serve_ring(struct emu_thread *t, struct emu_req *reqs)
{
	int n = 0, i, ret = 0;

	while (n < (int)EMU_READ_MAX && (ret = emu_ring_pop(&t->ring, &reqs[n])) == 1)
		n++;
	if (ret < 0)
		t->errors++;
	t->nr_ring += n;
	for (i = 0; i < n; i++)
		emu_answer(t, &reqs[i]);
	emu_thread_kick(t);
	return n;
}

/*
 * One round of a ring emulator: kflags, the SQ, then read() only when the
 * kernel says something waits there (requests that do not fit, notices),
 * the ring broke, or this file is no longer attached (read() says why).
 * False once the device is gone.
 */
static bool emu_thread_serve_both(struct emu_thread *t, struct emu_req *reqs)
{
	uint32_t kflags = emu_ring_kflags(&t->ring);

	emu_thread_serve_ring(t, reqs);
	if (!(kflags & (MUSER_RING_F_READ | MUSER_RING_F_BROKEN |
			MUSER_RING_F_RETIRED)))
		return true;
	return emu_thread_serve(t, reqs);
}

/* One round, by the thread's mode. */
static bool emu_thread_round(struct emu_thread *t, struct emu_req *reqs)
{
	if (t->flags & EMU_THREAD_RING)
		return emu_thread_serve_both(t, reqs);
	return emu_thread_serve(t, reqs);
}

/* EMU_THREAD_SPIN: serve until stopped, never sleeping. */
static void emu_thread_spin(struct emu_thread *t, struct emu_req *reqs)
{
	while (!__atomic_load_n(&t->stopping, __ATOMIC_ACQUIRE) &&
	       emu_thread_round(t, reqs))
		;
}

static void *emu_thread_fn(void *arg)
{
	struct emu_thread *t = arg;
	struct emu_req *reqs = calloc(EMU_READ_MAX, sizeof(*reqs));

	if (!reqs) {
		t->errors++;
		return NULL;
	}
	if (t->flags & EMU_THREAD_SPIN) {
		emu_thread_spin(t, reqs);
		free(reqs);
		return NULL;
	}
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = t->ctl, .events = POLLIN },
			{ .fd = t->stop, .events = POLLIN },
		};

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			t->errors++;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			if (!(pfd[0].revents & POLLIN))
				break;
		}
		if (!emu_thread_round(t, reqs))
			break;
	}
	free(reqs);
	return NULL;
}

int emu_thread_start(struct emu_thread *t, int ctl)
{
	return emu_thread_start_flags(t, ctl, 0);
}

static int emu_thread_start_entries(struct emu_thread *t, int ctl,
				    unsigned int flags, uint32_t entries)
{
	int ret, fl;

	memset(t, 0, sizeof(*t));
	t->ctl = ctl;
	t->flags = flags;
	fl = fcntl(ctl, F_GETFL);
	if (fl < 0 || fcntl(ctl, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	if (flags & EMU_THREAD_RING) {
		ret = emu_ring_open(&t->ring, ctl, entries);
		if (ret)
			return ret;
	}
	t->stop = eventfd(0, EFD_CLOEXEC);
	if (t->stop < 0) {
		ret = -errno;
		goto out_ring;
	}
	ret = pthread_create(&t->thread, NULL, emu_thread_fn, t);
	if (ret) {
		close(t->stop);
		ret = -ret;
		goto out_ring;
	}
	t->running = true;
	return 0;
out_ring:
	emu_ring_close(&t->ring);
	return ret;
}

int emu_thread_start_flags(struct emu_thread *t, int ctl, unsigned int flags)
{
	return emu_thread_start_entries(t, ctl, flags & ~EMU_THREAD_RING, 0);
}

int emu_thread_start_ring(struct emu_thread *t, int ctl, unsigned int flags,
			  uint32_t entries)
{
	return emu_thread_start_entries(t, ctl, flags | EMU_THREAD_RING,
					entries ? entries : EMU_RING_ENTRIES);
}

void emu_thread_stop(struct emu_thread *t)
{
	uint64_t one = 1;

	if (!t->running)
		return;
	__atomic_store_n(&t->stopping, 1, __ATOMIC_RELEASE);
	if (write(t->stop, &one, sizeof(one)) != sizeof(one))
		perror("# emu_thread_stop");
	pthread_join(t->thread, NULL);
	close(t->stop);
	emu_ring_close(&t->ring);
	t->running = false;
}
