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
};

struct fake_kernel *fake_kernel_new(void);
void fake_kernel_free(struct fake_kernel *fk);
/* A device served by @fk; its poll fd is @fk's eventfd. */
struct muser_dev *fake_dev_new(struct fake_kernel *fk);
void fake_queue(struct fake_kernel *fk, uint64_t id, uint16_t type,
		uint16_t flags, uint32_t region, uint64_t offset, uint32_t len,
		const void *data, uint32_t data_len);
const struct fake_reply *fake_reply(const struct fake_kernel *fk, uint64_t id);

#endif /* MUSER_FAKE_KERNEL_H */
