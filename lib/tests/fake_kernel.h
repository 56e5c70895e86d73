/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fake muser.ko for host unit tests: it plugs into a device's I/O hooks
 * and implements the control node's read/write/ioctl semantics from
 * include/uapi/linux/muser.h in memory. The device's poll fd is an eventfd
 * that is readable while requests are queued, so muser_run() works too.
 */
#ifndef MUSER_FAKE_KERNEL_H
#define MUSER_FAKE_KERNEL_H

#include "../private.h"

struct fake_reply {
	uint64_t id;
	int32_t error;
	uint32_t len;
	uint8_t data[MUSER_MAX_DATA];
};

#define FAKE_MAX_TRIGGERS	64

struct fake_kernel {
	int efd;
	bool attached;
	struct muser_device_info info;
	int attach_errno;		/* fail ATTACH with this */

	struct muser_req *queue;	/* not yet read */
	uint8_t **queue_data;
	size_t nqueue, qhead, qcap;

	struct muser_req *pending;	/* read, not yet answered */
	size_t npending, pcap;

	struct fake_reply *replies;	/* answers received, in order */
	size_t nreplies, rcap;

	unsigned int max_reqs_per_read;		/* 0: as many as fit */
	unsigned int max_replies_per_write;	/* 0: all */
	uint64_t cancel_id;		/* dropped from pending once read */
	uint64_t reject_id;		/* its reply fails with EINVAL */
	int read_errno;			/* fail read() with this */
	unsigned int nreads, nwrites;

	struct muser_irq_trigger triggers[FAKE_MAX_TRIGGERS];	/* the first ones */
	unsigned int ntriggers;
	int trigger_errno;		/* fail TRIGGER_IRQ with this */

	/*
	 * The request ring: RING_SETUP fails with ENOTTY (an older module)
	 * unless @ring_ok. Requests that fit go to the SQ when nothing waits
	 * for read(); answers are taken from the CQ only by fake_ring_reap()
	 * and RING_ENTER, so a test sees the CQ fill.
	 */
	bool ring_ok;
	int ring_errno;			/* fail RING_SETUP with this */
	bool ring_bad_layout;		/* report a CQ beyond the mapping */
	bool ring_no_push;		/* every request waits for read() */
	bool ring_no_read_flag;		/* ... without MUSER_RING_F_READ */
	uint32_t ring_kflags;		/* set by the test, besides READ */
	void *ring_mem;
	size_t ring_size;
	uint32_t ring_entries, ring_cq_head;
	struct muser_ring_hdr *rhdr;
	struct muser_ring_sqe *sq;
	struct muser_ring_cqe *cq;
	bool ring_mapped;
	unsigned int nsqes, ncqes, ncqe_errors, nring_enters;
};

struct fake_kernel *fake_kernel_new(void);
void fake_kernel_free(struct fake_kernel *fk);
/* A device served by @fk; its poll fd is @fk's eventfd. */
struct muser_dev *fake_dev_new(struct fake_kernel *fk);
void fake_queue(struct fake_kernel *fk, uint64_t id, uint16_t type,
		uint16_t flags, uint32_t region, uint64_t offset, uint32_t len,
		const void *data, uint32_t data_len);
const struct fake_reply *fake_reply(const struct fake_kernel *fk, uint64_t id);
/* Take the answers in the CQ, as a VMM thread does; returns how many. */
unsigned int fake_ring_reap(struct fake_kernel *fk);

/* Between fake_kernel.c and fake_ring.c. */
int fake_check_reply(struct fake_kernel *fk, const struct muser_reply *rep,
		     size_t avail, ssize_t *idx);
void fake_record_reply(struct fake_kernel *fk, const struct muser_reply *rep,
		       const uint8_t *data, ssize_t idx);
int fake_ring_setup(struct fake_kernel *fk, struct muser_ring_setup *s);
void *fake_ring_mmap(struct muser_dev *dev, size_t len, uint64_t offset);
void fake_ring_munmap(struct muser_dev *dev, void *addr, size_t len);
void fake_ring_flags(struct fake_kernel *fk);
int fake_ring_enter(struct fake_kernel *fk);
bool fake_ring_push(struct fake_kernel *fk, const struct muser_req *r,
		    const void *data);
void fake_add_pending(struct fake_kernel *fk, const struct muser_req *r);

#endif /* MUSER_FAKE_KERNEL_H */
