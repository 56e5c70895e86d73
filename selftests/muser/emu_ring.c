// SPDX-License-Identifier: GPL-2.0
/*
 * The raw emulator's side of the request ring (MUSER_IOC_RING_SETUP): set
 * up and map, take requests from the SQ, put answers in the CQ, enter; see
 * common.h. Indices as the uapi says: the other side's loaded with
 * acquire, ours published with release.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common.h"

int emu_ring_setup_raw(int ctl, struct muser_ring_setup *s)
{
	return ioctl(ctl, MUSER_IOC_RING_SETUP, s) ? -errno : 0;
}

int emu_ring_open(struct emu_ring *r, int ctl, uint32_t entries)
{
	struct muser_ring_setup s = { .argsz = sizeof(s), .entries = entries };
	void *p;
	int ret;

	memset(r, 0, sizeof(*r));
	r->ctl = ctl;
	ret = emu_ring_setup_raw(ctl, &s);
	if (ret)
		return ret;
	p = mmap(NULL, s.size, PROT_READ | PROT_WRITE, MAP_SHARED, ctl,
		 MUSER_RING_OFFSET);
	if (p == MAP_FAILED)
		return -errno;
	r->setup = s;
	r->entries = entries;
	r->hdr = p;
	r->sq = (struct muser_ring_sqe *)((char *)p + s.sq_off);
	r->cq = (struct muser_ring_cqe *)((char *)p + s.cq_off);
	return 0;
}

void emu_ring_close(struct emu_ring *r)
{
	if (r->hdr)
		munmap(r->hdr, r->setup.size);
	r->hdr = NULL;
}

uint32_t emu_ring_kflags(const struct emu_ring *r)
{
	return __atomic_load_n(&r->hdr->kflags, __ATOMIC_ACQUIRE);
}

uint32_t emu_ring_pending(const struct emu_ring *r)
{
	return __atomic_load_n(&r->hdr->sq_tail, __ATOMIC_ACQUIRE) -
	       r->hdr->sq_head;
}

int emu_ring_pop(struct emu_ring *r, struct emu_req *req)
{
	uint32_t head = r->hdr->sq_head;
	const struct muser_ring_sqe *e;

	if (head == __atomic_load_n(&r->hdr->sq_tail, __ATOMIC_ACQUIRE))
		return 0;
	e = &r->sq[head % r->entries];
	req->hdr = e->req;
	/* The kernel's entry: a bad one is its bug, not ours to copy. */
	if (req->hdr.data_len > MUSER_RING_DATA)
		return -EPROTO;
	memcpy(req->data, e->data, req->hdr.data_len);
	__atomic_store_n(&r->hdr->sq_head, head + 1, __ATOMIC_RELEASE);
	r->popped++;
	return 1;
}

int emu_ring_pop_wait(struct emu_ring *r, struct emu_req *req, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int ret;

	while (!(ret = emu_ring_pop(r, req)) && now_ms() < end)
		sleep_ms(1);
	return ret;
}

int emu_ring_post(struct emu_ring *r, const struct muser_ring_cqe *c)
{
	uint32_t tail = r->hdr->cq_tail;

	if (tail - __atomic_load_n(&r->hdr->cq_head, __ATOMIC_ACQUIRE) >=
	    r->entries)
		return -ENOSPC;
	r->cq[tail % r->entries] = *c;
	__atomic_store_n(&r->hdr->cq_tail, tail + 1, __ATOMIC_RELEASE);
	return 0;
}

int emu_ring_enter(struct emu_ring *r)
{
	if (ioctl(r->ctl, MUSER_IOC_RING_ENTER))
		return -errno;
	r->entered++;
	return 0;
}

int emu_ring_kick(struct emu_ring *r)
{
	int ret;

	/* cq_tail's store before kflags' load: a full barrier. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(emu_ring_kflags(r) & MUSER_RING_F_WAKEUP))
		return 0;
	ret = emu_ring_enter(r);
	return ret ? ret : 1;
}

void emu_ring_cqe(struct muser_ring_cqe *c, uint64_t id, int32_t error,
		  const void *data, uint32_t len)
{
	memset(c, 0, sizeof(*c));
	c->reply.id = id;
	c->reply.error = error;
	c->reply.len = len;
	if (data && len)
		memcpy(c->data, data, len < MUSER_RING_DATA ? len : MUSER_RING_DATA);
}

int emu_ring_answer(struct emu_ring *r, uint64_t id, int32_t error,
		    const void *data, uint32_t len)
{
	struct muser_ring_cqe c;
	int ret;

	if (len > MUSER_RING_DATA)
		return -E2BIG;
	emu_ring_cqe(&c, id, error, data, len);
	ret = emu_ring_post(r, &c);
	if (ret == -ENOSPC) {
		/* Full: the kernel takes what is there when entered. */
		ret = emu_ring_enter(r);
		if (!ret)
			ret = emu_ring_post(r, &c);
	}
	if (ret)
		return ret;
	ret = emu_ring_kick(r);
	return ret < 0 ? ret : 0;
}

int emu_ring_wait_taken(struct emu_ring *r, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (__atomic_load_n(&r->hdr->cq_head, __ATOMIC_ACQUIRE) !=
	       r->hdr->cq_tail) {
		if (now_ms() >= end)
			return -ETIMEDOUT;
		sleep_ms(1);
	}
	return 0;
}
