// SPDX-License-Identifier: BSD-3-Clause
/*
 * The request ring against the fake kernel: requests from the SQ answered
 * in the CQ without read() or write(), what goes by the system calls
 * (large answers, a full CQ, MUSER_RING_F_READ, a broken ring), RING_ENTER
 * on MUSER_RING_F_WAKEUP, set-up failures and muser_set_ring()'s checks.
 */
#include <errno.h>
#include <string.h>

#include "fake_kernel.h"
#include "test.h"

int test_failures;

#define BAR0	VFIO_PCI_BAR0_REGION_INDEX

/* Reads return the low byte of each offset; writes are counted. */
static ssize_t bar_cb(struct muser_dev *dev, void *priv, void *buf,
		      size_t count, uint64_t offset, bool is_write)
{
	unsigned int *writes = priv;
	size_t i;

	(void)dev;
	if (is_write)
		(*writes)++;
	else
		for (i = 0; i < count; i++)
			((uint8_t *)buf)[i] = offset + i;
	return count;
}

static unsigned int writes;

/* A device with BAR0 (4 KiB); the fake offers a ring if @ring_ok. */
static struct muser_dev *new_dev(struct fake_kernel *fk, bool ring_ok,
				 unsigned int entries, bool realize)
{
	struct muser_dev *dev = fake_dev_new(fk);

	fk->ring_ok = ring_ok;
	muser_set_log(dev, NULL, LOG_EMERG);	/* quiet */
	CHECK_EQ(muser_pci_set_ids(dev, 0x494f, 0x0dc8, 0x494f, 0x0dc8), 0);
	CHECK_EQ(muser_setup_bar(dev, 0, 0x1000, MUSER_BAR_MEM32, bar_cb,
				 &writes), 0);
	if (entries != MUSER_RING_DEFAULT_ENTRIES)
		CHECK_EQ(muser_set_ring(dev, entries), 0);
	if (realize)
		CHECK_EQ(muser_realize(dev), 0);
	return dev;
}

static void queue_read(struct fake_kernel *fk, uint64_t id, uint64_t off,
		       uint32_t len)
{
	fake_queue(fk, id, MUSER_REQ_READ, 0, BAR0, off, len, NULL, 0);
}

/* Reply @id arrived, successful: a read of @len bytes at @off (0: a write). */
static void check_read_reply(struct fake_kernel *fk, uint64_t id,
			     uint64_t off, uint32_t len)
{
	const struct fake_reply *r = fake_reply(fk, id);

	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_EQ(r->error, 0);
	CHECK_EQ(r->len, len);
	if (len)
		CHECK(r->data[0] == (uint8_t)off &&
		      r->data[len - 1] == (uint8_t)(off + len - 1));
}

static void done(struct fake_kernel *fk, struct muser_dev *dev)
{
	muser_dev_destroy(dev);
	CHECK(!fk->ring_mapped);	/* unmapped with the device */
	fake_kernel_free(fk);
}

static void test_ring_no_syscalls(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, MUSER_RING_DEFAULT_ENTRIES, true);
	uint32_t v = 0x12345678, w = writes;

	CHECK(fk->ring_mapped);
	CHECK_EQ(fk->ring_entries, MUSER_RING_DEFAULT_ENTRIES);
	queue_read(fk, 1, 0x10, 4);
	fake_queue(fk, 2, MUSER_REQ_WRITE, 0, BAR0, 0x20, 4, &v, 4);
	queue_read(fk, 3, 0x30, MUSER_RING_DATA);
	CHECK_EQ(fk->nsqes, 3);
	CHECK_EQ(muser_dispatch(dev), 3);
	CHECK_EQ(fk->nreads, 0);
	CHECK_EQ(fk->nwrites, 0);
	CHECK_EQ(writes, w + 1);
	CHECK_EQ(fake_ring_reap(fk), 3);
	CHECK_EQ(fk->ncqes, 3);
	CHECK_EQ(fk->ncqe_errors, 0);
	check_read_reply(fk, 1, 0x10, 4);
	check_read_reply(fk, 2, 0, 0);
	check_read_reply(fk, 3, 0x30, MUSER_RING_DATA);
	CHECK_EQ(fk->npending, 0);

	/* Spinning over an empty ring: no system call at all. */
	CHECK_EQ(muser_dispatch_poll(&dev, 1, MUSER_POLL_BUSY, 5), 0);
	CHECK_EQ(fk->nreads, 0);
	CHECK_EQ(fk->nwrites, 0);
	/* A request while spinning is seen. */
	queue_read(fk, 4, 0x40, 8);
	CHECK_EQ(muser_dispatch_poll(&dev, 1, MUSER_POLL_BUSY, -1), 1);
	CHECK_EQ(fake_ring_reap(fk), 1);
	check_read_reply(fk, 4, 0x40, 8);
	CHECK_EQ(fk->nreads + fk->nwrites, 0);

	/* muser_dispatch() of an empty ring: no read() while all is well. */
	CHECK_EQ(muser_dispatch(dev), 0);
	CHECK_EQ(fk->nreads, 0);
	done(fk, dev);
}

/*
 * A detach, takeover or removal sets MUSER_RING_F_RETIRED: the library
 * read()s, which says why, in muser_dispatch() and spinning in
 * muser_dispatch_poll() alike.
 */
static void test_ring_retired(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, MUSER_RING_DEFAULT_ENTRIES, true);

	fk->attached = false;
	CHECK_EQ(muser_dispatch(dev), 0);	/* no flag yet: not looked at */
	CHECK_EQ(fk->nreads, 0);
	fk->ring_kflags = MUSER_RING_F_RETIRED;
	fake_ring_flags(fk);
	CHECK_ERR(muser_dispatch(dev), ENOTCONN);
	CHECK_EQ(fk->nreads, 1);
	CHECK_ERR(muser_dispatch_poll(&dev, 1, MUSER_POLL_BUSY, 1000), ENOTCONN);
	done(fk, dev);
}

/* Answers over MUSER_RING_DATA go by write(), the others in the CQ. */
static void test_ring_large_answer(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, MUSER_RING_DEFAULT_ENTRIES, true);

	queue_read(fk, 10, 0, 4);		/* SQ */
	queue_read(fk, 11, 0x100, 64);		/* too big: read() */
	queue_read(fk, 12, 0x200, 4);		/* behind it: read() */
	CHECK_EQ(fk->nsqes, 1);
	CHECK(fk->rhdr->kflags & MUSER_RING_F_READ);
	CHECK_EQ(muser_dispatch(dev), 3);
	CHECK(fk->nreads >= 1);
	CHECK_EQ(fk->nwrites, 1);		/* the 64 bytes */
	CHECK(fake_reply(fk, 11) != NULL);	/* already there, by write() */
	CHECK_EQ(fake_ring_reap(fk), 2);	/* 10, and 12 read() but small */
	check_read_reply(fk, 10, 0, 4);
	check_read_reply(fk, 11, 0x100, 64);
	check_read_reply(fk, 12, 0x200, 4);
	CHECK_EQ(fk->npending, 0);
	CHECK(!(fk->rhdr->kflags & MUSER_RING_F_READ));
	done(fk, dev);
}

static void test_ring_cq_full(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, 4, true);
	unsigned int i;

	CHECK_EQ(fk->ring_entries, 4);
	for (i = 0; i < 4; i++)
		queue_read(fk, 20 + i, 4 * i, 4);
	CHECK_EQ(muser_dispatch(dev), 4);
	CHECK_EQ(fk->nwrites, 0);
	/* Not taken yet: the next ones cannot go in the CQ. */
	for (i = 0; i < 4; i++)
		queue_read(fk, 30 + i, 4 * i, 4);
	CHECK_EQ(fk->nsqes, 8);
	CHECK_EQ(muser_dispatch(dev), 4);
	CHECK_EQ(fk->nreads, 0);
	CHECK_EQ(fk->nwrites, 1);
	CHECK_EQ(fk->nreplies, 4);
	CHECK_EQ(fake_ring_reap(fk), 4);
	CHECK_EQ(fk->nreplies, 8);
	for (i = 0; i < 4; i++) {
		check_read_reply(fk, 20 + i, 4 * i, 4);
		check_read_reply(fk, 30 + i, 4 * i, 4);
	}
	/* Some room again: part in the CQ, the rest by write(). */
	for (i = 0; i < 4; i++)
		queue_read(fk, 40 + i, 4 * i, 4);
	CHECK_EQ(muser_dispatch(dev), 4);
	CHECK_EQ(fake_ring_reap(fk), 4);
	CHECK_EQ(fk->nreplies, 12);
	CHECK_EQ(fk->npending, 0);
	done(fk, dev);
}

/* read() only when MUSER_RING_F_READ says requests wait for it. */
static void test_ring_read_flag(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, MUSER_RING_DEFAULT_ENTRIES, true);

	fk->ring_no_push = true;
	fk->ring_no_read_flag = true;
	queue_read(fk, 50, 0, 4);
	CHECK_EQ(muser_dispatch_poll(&dev, 1, MUSER_POLL_BUSY, 5), 0);
	CHECK_EQ(fk->nreads, 0);
	fk->ring_no_read_flag = false;
	fake_ring_flags(fk);
	CHECK_EQ(muser_dispatch_poll(&dev, 1, MUSER_POLL_BUSY, -1), 1);
	CHECK(fk->nreads >= 1);
	CHECK_EQ(fk->nwrites, 0);		/* answered in the CQ */
	CHECK_EQ(fake_ring_reap(fk), 1);
	check_read_reply(fk, 50, 0, 4);
	done(fk, dev);
}

static void test_ring_wakeup(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, MUSER_RING_DEFAULT_ENTRIES, true);

	queue_read(fk, 60, 0, 4);
	CHECK_EQ(muser_dispatch(dev), 1);
	CHECK_EQ(fk->nring_enters, 0);
	CHECK_EQ(fk->nreplies, 0);		/* waits in the CQ */
	fk->ring_kflags = MUSER_RING_F_WAKEUP;
	fake_ring_flags(fk);
	queue_read(fk, 61, 4, 4);
	CHECK_EQ(muser_dispatch(dev), 1);
	CHECK_EQ(fk->nring_enters, 1);
	CHECK_EQ(fk->nreplies, 2);		/* RING_ENTER took both */
	check_read_reply(fk, 60, 0, 4);
	check_read_reply(fk, 61, 4, 4);
	CHECK_EQ(fk->nreads + fk->nwrites, 0);
	done(fk, dev);
}

static void test_ring_broken(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, MUSER_RING_DEFAULT_ENTRIES, true);

	queue_read(fk, 70, 0, 4);		/* in the SQ before it broke */
	fk->ring_kflags = MUSER_RING_F_BROKEN;
	fake_ring_flags(fk);
	queue_read(fk, 71, 4, 4);		/* read() */
	CHECK_EQ(fk->nsqes, 1);
	CHECK_EQ(muser_dispatch(dev), 2);
	CHECK(fk->nreads >= 1);
	CHECK(fk->nwrites >= 1);
	CHECK_EQ(fk->nreplies, 2);		/* both by write() */
	CHECK_EQ(fake_ring_reap(fk), 0);
	check_read_reply(fk, 70, 0, 4);
	check_read_reply(fk, 71, 4, 4);
	done(fk, dev);
}

/* The kernel's index out of range: the library goes back to read(). */
static void test_ring_bad_index(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, 4, true);
	uint32_t big[16] = { 0 };

	fk->rhdr->sq_tail = 5;			/* 5 entries in a queue of 4 */
	fk->ring_no_push = true;
	queue_read(fk, 80, 0, 4);
	CHECK_EQ(muser_dispatch(dev), 1);
	CHECK_EQ(fk->nreads, 2);		/* the request, then EAGAIN */
	CHECK_EQ(fk->nwrites, 1);
	check_read_reply(fk, 80, 0, 4);
	done(fk, dev);

	/* A bad entry: refused with EINVAL, the others served. */
	fk = fake_kernel_new();
	dev = new_dev(fk, true, 4, true);
	fake_queue(fk, 81, MUSER_REQ_WRITE, 0, BAR0, 0, 4, big, 4);
	queue_read(fk, 82, 0, 4);
	fk->sq[0].req.data_len = MUSER_RING_DATA + 8;
	CHECK_EQ(muser_dispatch(dev), 2);
	CHECK_EQ(fake_ring_reap(fk), 2);
	CHECK(fake_reply(fk, 81) && fake_reply(fk, 81)->error == EINVAL);
	check_read_reply(fk, 82, 0, 4);
	done(fk, dev);
}

/* No ring, or one refused: the device works by read() and write(). */
static void test_ring_setup_fails(void)
{
	static const int errs[] = { ENOTTY, EINVAL, ENOMEM };
	struct fake_kernel *fk;
	struct muser_dev *dev;
	unsigned int i;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		fk = fake_kernel_new();
		fk->ring_errno = errs[i];
		dev = new_dev(fk, false, MUSER_RING_DEFAULT_ENTRIES, true);
		CHECK(!fk->ring_mapped);
		queue_read(fk, 90, 0, 4);
		CHECK_EQ(muser_dispatch(dev), 1);
		CHECK_EQ(fk->nwrites, 1);
		check_read_reply(fk, 90, 0, 4);
		done(fk, dev);
	}

	/* muser_set_ring(0): not even asked for. */
	fk = fake_kernel_new();
	dev = new_dev(fk, true, 0, true);
	CHECK(fk->ring_mem == NULL);
	done(fk, dev);

	/* A layout that makes no sense: realize fails, detached. */
	fk = fake_kernel_new();
	fk->ring_bad_layout = true;
	dev = new_dev(fk, true, MUSER_RING_DEFAULT_ENTRIES, false);
	CHECK_ERR(muser_realize(dev), EIO);
	CHECK(!fk->attached);
	CHECK(!fk->ring_mapped);
	done(fk, dev);
}

static void test_set_ring_args(void)
{
	static const struct { unsigned int entries; int err; } sweep[] = {
		{ 0, 0 }, { 1, 0 }, { 2, 0 }, { 3, EINVAL }, { 100, EINVAL },
		{ 128, 0 }, { 256, 0 }, { 257, EINVAL }, { 512, EINVAL },
		{ UINT32_MAX, EINVAL },
	};
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = new_dev(fk, true, MUSER_RING_DEFAULT_ENTRIES, false);
	unsigned int i;

	for (i = 0; i < sizeof(sweep) / sizeof(sweep[0]); i++) {
		if (sweep[i].err)
			CHECK_ERR(muser_set_ring(dev, sweep[i].entries),
				  sweep[i].err);
		else
			CHECK_EQ(muser_set_ring(dev, sweep[i].entries), 0);
	}
	CHECK_EQ(muser_set_ring(dev, 16), 0);
	CHECK_EQ(muser_realize(dev), 0);
	CHECK_EQ(fk->ring_entries, 16);		/* the last one set */
	CHECK_ERR(muser_set_ring(dev, 32), EBUSY);
	CHECK_ERR(muser_set_ring(dev, 0), EBUSY);
	done(fk, dev);
}

int main(void)
{
	RUN(test_ring_no_syscalls);
	RUN(test_ring_retired);
	RUN(test_ring_large_answer);
	RUN(test_ring_cq_full);
	RUN(test_ring_read_flag);
	RUN(test_ring_wakeup);
	RUN(test_ring_broken);
	RUN(test_ring_bad_index);
	RUN(test_ring_setup_fails);
	RUN(test_set_ring_args);
	TEST_MAIN_END();
}
