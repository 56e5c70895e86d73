// SPDX-License-Identifier: BSD-3-Clause
/*
 * The library against a fake kernel peer: the attach layout, dispatching
 * (batches, partial consumption of replies, requests the kernel gave up
 * on, refused replies, big bursts), the run loop and its stop paths,
 * interrupts.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/pci_regs.h>

#include "fake_kernel.h"
#include "test.h"

int test_failures;

#define BIG_BAR_SIZE	0x10000

struct state {
	unsigned int calls;
	uint64_t stop_after;	/* muser_stop() in the call with this count */
};

/* Reads return the low byte of each offset; writes are counted. */
static ssize_t bar_cb(struct muser_dev *dev, void *priv, void *buf,
		      size_t count, uint64_t offset, bool is_write)
{
	struct state *s = priv;
	size_t i;

	s->calls++;
	if (s->calls == s->stop_after)
		muser_stop(dev);
	if (!is_write)
		for (i = 0; i < count; i++)
			((uint8_t *)buf)[i] = offset + i;
	return count;
}

/*
 * BAR0 64-bit prefetchable 64 KiB, BAR2 32-bit 256 bytes with posted
 * writes, BAR5 I/O, pin A.
 */
static struct muser_dev *new_dev(struct fake_kernel *fk, struct state *s,
				 bool realize)
{
	struct muser_dev *dev = fake_dev_new(fk);

	CHECK_EQ(muser_pci_set_ids(dev, 0x494f, 0x0dc8, 0x494f, 0x0dc8), 0);
	CHECK_EQ(muser_pci_set_irq_pin(dev, 1), 0);
	CHECK_EQ(muser_setup_bar(dev, 0, BIG_BAR_SIZE,
				 MUSER_BAR_MEM64 | MUSER_BAR_PREFETCH, bar_cb, s), 0);
	CHECK_EQ(muser_setup_bar(dev, 2, 0x100,
				 MUSER_BAR_MEM32 | MUSER_BAR_POSTED_WRITES,
				 bar_cb, s), 0);
	/* I/O writes are never posted. */
	CHECK_ERR(muser_setup_bar(dev, 5, 0x20,
				  MUSER_BAR_IO | MUSER_BAR_POSTED_WRITES,
				  bar_cb, s), EINVAL);
	CHECK_EQ(muser_setup_bar(dev, 5, 0x20, MUSER_BAR_IO, bar_cb, s), 0);
	if (realize)
		CHECK_EQ(muser_realize(dev), 0);
	return dev;
}

static void test_attach_layout(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, true);
	const struct muser_device_info *i = &fk->info;
	const uint32_t rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;

	CHECK(fk->attached);
	CHECK_EQ(i->argsz, sizeof(*i));
	CHECK_EQ(i->version, MUSER_API_VERSION);
	CHECK_EQ(i->flags, MUSER_DEV_F_RESET);
	CHECK_EQ(i->num_regions, 9);
	CHECK_EQ(i->num_irqs, MUSER_NUM_IRQS);
	CHECK_EQ(i->regions[0].size, BIG_BAR_SIZE);
	CHECK_EQ(i->regions[0].flags, rw);
	CHECK_EQ(i->regions[1].size, 0);	/* upper half */
	CHECK_EQ(i->regions[1].flags, 0);
	CHECK_EQ(i->regions[2].size, 0x100);
	CHECK_EQ(i->regions[2].flags, rw | MUSER_REGION_F_POSTED_WRITES);
	CHECK_EQ(i->regions[5].flags, rw);
	CHECK_EQ(i->regions[3].size, 0);
	CHECK_EQ(i->regions[4].size, 0);
	CHECK_EQ(i->regions[5].size, 0x20);
	CHECK_EQ(i->regions[VFIO_PCI_ROM_REGION_INDEX].size, 0);
	CHECK_EQ(i->regions[VFIO_PCI_CONFIG_REGION_INDEX].size, 256);
	CHECK_EQ(i->regions[VFIO_PCI_CONFIG_REGION_INDEX].flags, rw);
	CHECK_EQ(i->regions[VFIO_PCI_VGA_REGION_INDEX].size, 0);
	CHECK_EQ(i->irqs[VFIO_PCI_INTX_IRQ_INDEX].count, 1);
	CHECK_EQ(i->irqs[VFIO_PCI_INTX_IRQ_INDEX].flags,
		 VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
		 VFIO_IRQ_INFO_AUTOMASKED);
	CHECK_EQ(i->irqs[VFIO_PCI_MSI_IRQ_INDEX].count, 0);
	CHECK_EQ(i->irqs[VFIO_PCI_MSIX_IRQ_INDEX].count, 0);
	CHECK_EQ(i->irqs[VFIO_PCI_ERR_IRQ_INDEX].count, 0);
	CHECK_ERR(muser_realize(dev), EBUSY);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_dispatch_basic(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, false);
	const struct fake_reply *r;
	uint32_t v = 0xffffffff;

	CHECK_ERR(muser_dispatch(dev), EINVAL);		/* not realized */
	CHECK_EQ(muser_realize(dev), 0);
	CHECK_EQ(muser_get_poll_fd(dev), fk->efd);
	CHECK_EQ(muser_dispatch(dev), 0);		/* nothing pending */

	fake_queue(fk, 1, MUSER_REQ_READ, 0, VFIO_PCI_CONFIG_REGION_INDEX, 0, 256, NULL, 0);
	fake_queue(fk, 2, MUSER_REQ_WRITE, 0, VFIO_PCI_CONFIG_REGION_INDEX,
		   PCI_BASE_ADDRESS_2, 4, &v, 4);
	fake_queue(fk, 3, MUSER_REQ_READ, 0, VFIO_PCI_CONFIG_REGION_INDEX,
		   PCI_BASE_ADDRESS_2, 4, NULL, 0);
	fake_queue(fk, 4, MUSER_REQ_READ, 0, VFIO_PCI_BAR0_REGION_INDEX, 0xfff8, 8, NULL, 0);
	fake_queue(fk, 5, MUSER_REQ_READ, 0, VFIO_PCI_BAR1_REGION_INDEX, 0, 4, NULL, 0);
	CHECK_EQ(muser_dispatch(dev), 5);
	CHECK_EQ(fk->nreplies, 5);
	CHECK_EQ(fk->npending, 0);

	r = fake_reply(fk, 1);
	CHECK(r && r->error == 0 && r->len == 256);
	CHECK(r && r->data[0] == 0x4f && r->data[PCI_INTERRUPT_PIN] == 1);
	CHECK(r && r->data[PCI_BASE_ADDRESS_0] == 0x0c);
	r = fake_reply(fk, 3);
	CHECK(r && r->len == 4 && r->data[0] == 0x00 && r->data[1] == 0xff);
	r = fake_reply(fk, 4);
	CHECK(r && r->len == 8 && r->data[0] == 0xf8 && r->data[7] == 0xff);
	r = fake_reply(fk, 5);	/* the upper half of a 64-bit BAR */
	CHECK(r && r->error == EINVAL && r->len == 0);
	CHECK_EQ(muser_dispatch(dev), 0);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void queue_reads(struct fake_kernel *fk, uint64_t first, unsigned int n,
			uint32_t len)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		fake_queue(fk, first + i, MUSER_REQ_READ, 0,
			   VFIO_PCI_BAR0_REGION_INDEX, (i * len) % BIG_BAR_SIZE,
			   len, NULL, 0);
}

static void test_partial_write(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, true);

	fk->max_replies_per_write = 1;
	fk->max_reqs_per_read = 2;
	queue_reads(fk, 100, 5, 4);
	CHECK_EQ(muser_dispatch(dev), 5);
	CHECK_EQ(fk->nreplies, 5);
	CHECK_EQ(fk->nwrites, 5);
	CHECK_EQ(fk->nreads, 4);	/* 2 + 2 + 1, then EAGAIN */
	CHECK_EQ(fk->npending, 0);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_cancelled_request(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, true);

	/* first of a batch, and in the middle */
	fk->cancel_id = 200;
	queue_reads(fk, 200, 3, 4);
	CHECK_EQ(muser_dispatch(dev), 3);
	CHECK_EQ(fk->nreplies, 2);
	CHECK(fake_reply(fk, 200) == NULL);
	CHECK(fake_reply(fk, 201) && fake_reply(fk, 202));

	fk->cancel_id = 211;
	queue_reads(fk, 210, 3, 4);
	CHECK_EQ(muser_dispatch(dev), 3);
	CHECK(fake_reply(fk, 210) && fake_reply(fk, 212));
	CHECK(fake_reply(fk, 211) == NULL);
	CHECK_EQ(fk->npending, 0);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_refused_reply(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, true);

	fk->reject_id = 301;
	queue_reads(fk, 300, 3, 4);
	CHECK_ERR(muser_dispatch(dev), EINVAL);
	CHECK(fake_reply(fk, 300) && fake_reply(fk, 302));
	CHECK(fake_reply(fk, 301) == NULL);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

/* More than one read buffer of requests, replies far larger than it. */
static void test_burst(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, true);
	const unsigned int n = 3000;
	unsigned int i, total = 0, bad = 0;
	int ret;

	queue_reads(fk, 1000, n, MUSER_MAX_DATA);
	while ((ret = muser_dispatch(dev)) > 0)
		total += ret;
	CHECK_EQ(ret, 0);
	CHECK_EQ(total, n);
	CHECK_EQ(fk->nreplies, n);
	CHECK(fk->nreads >= 2);
	for (i = 0; i < fk->nreplies; i++) {
		const struct fake_reply *r = &fk->replies[i];

		if (r->error || r->len != MUSER_MAX_DATA || r->data[5] != 5 ||
		    r->data[MUSER_MAX_DATA - 1] != 0xff)
			bad++;
	}
	CHECK_EQ(bad, 0);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_read_error(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, true);

	muser_set_log(dev, NULL, LOG_EMERG);	/* quiet */
	fk->read_errno = ENODEV;
	CHECK_ERR(muser_dispatch(dev), ENODEV);
	fk->read_errno = EINTR;		/* retried, never an error */
	CHECK_EQ(muser_dispatch(dev), 0);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_run_stop_from_callback(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { .stop_after = 2 };
	struct muser_dev *dev = new_dev(fk, &s, true);

	queue_reads(fk, 400, 3, 4);
	CHECK_EQ(muser_run(dev), 0);
	CHECK_EQ(fk->nreplies, 3);	/* the batch is finished first */

	/* a stop before run makes the next run return at once */
	CHECK_EQ(muser_stop(dev), 0);
	CHECK_EQ(muser_run(dev), 0);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static struct muser_dev *signal_dev;

static void on_alarm(int sig)
{
	(void)sig;
	muser_stop(signal_dev);
}

static void test_run_stop_from_signal(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, true);
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	struct itimerval t = { .it_value = { .tv_usec = 50000 } };

	signal_dev = dev;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGALRM, &sa, &old), 0);
	CHECK_EQ(setitimer(ITIMER_REAL, &t, NULL), 0);
	CHECK_EQ(muser_run(dev), 0);	/* blocked with nothing pending */
	sigaction(SIGALRM, &old, NULL);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_run_hangup(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, true);
	int p[2];

	/* a control node that hangs up: a pipe without writer */
	CHECK_EQ(pipe(p), 0);
	close(p[1]);
	close(dev->fd);
	dev->fd = p[0];
	muser_set_log(dev, NULL, LOG_EMERG);
	CHECK_ERR(muser_run(dev), ENODEV);
	/* when read() says why, that is the error */
	fk->read_errno = ENOTCONN;
	CHECK_ERR(muser_run(dev), ENOTCONN);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_dispatch_poll_args(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *devs[MUSER_POLL_MAX_DEVS + 1];
	unsigned int i;

	for (i = 0; i <= MUSER_POLL_MAX_DEVS; i++)
		devs[i] = new_dev(fk, &s, i == 0);
	CHECK_ERR(muser_dispatch_poll(NULL, 1, 0, 0), EINVAL);
	CHECK_ERR(muser_dispatch_poll(devs, 0, 0, 0), EINVAL);
	CHECK_ERR(muser_dispatch_poll(devs, MUSER_POLL_MAX_DEVS + 1, 0, 0),
		  EINVAL);
	{
		struct muser_dev *holey[2] = { devs[0], NULL };

		CHECK_ERR(muser_dispatch_poll(holey, 2, 0, 0), EINVAL);
		CHECK_ERR(muser_run_poll(holey, 2, 0), EINVAL);
	}
	/* Unrealized devices among them: as muser_dispatch(). */
	CHECK_ERR(muser_dispatch_poll(devs, 2, 0, 0), EINVAL);
	CHECK_ERR(muser_run_poll(devs, 2, 0), EINVAL);
	for (i = 0; i <= MUSER_POLL_MAX_DEVS; i++)
		muser_dev_destroy(devs[i]);
	fake_kernel_free(fk);
}

/* Two devices, one thread: spinning, sleeping, timeouts, stops. */
static void test_dispatch_poll(void)
{
	struct fake_kernel *fk[2] = { fake_kernel_new(), fake_kernel_new() };
	struct state s = { 0 };
	struct muser_dev *devs[2] = { new_dev(fk[0], &s, true),
				      new_dev(fk[1], &s, true) };
	unsigned int reads;

	/* Nothing comes: 0 after the timeout, spinning or not. */
	CHECK_EQ(muser_dispatch_poll(devs, 2, 0, 10), 0);
	reads = fk[0]->nreads;
	CHECK_EQ(muser_dispatch_poll(devs, 2, MUSER_POLL_BUSY, 10), 0);
	CHECK(fk[0]->nreads > reads + 1);	/* it polled, without sleeping */
	CHECK_EQ(muser_dispatch_poll(devs, 2, 2000, 10), 0);

	/* A request on the second device is served and counted. */
	queue_reads(fk[1], 600, 2, 4);
	CHECK_EQ(muser_dispatch_poll(devs, 2, 100, -1), 2);
	CHECK(fake_reply(fk[1], 600) && fake_reply(fk[1], 601));
	CHECK_EQ(fk[0]->nreplies, 0);

	/* A stop of either device ends the wait, once. */
	CHECK_EQ(muser_stop(devs[1]), 0);
	CHECK_ERR(muser_dispatch_poll(devs, 2, 0, -1), EINTR);
	CHECK_EQ(muser_dispatch_poll(devs, 2, 0, 0), 0);

	/* muser_run_poll(): served until a callback stops it. */
	s.stop_after = s.calls + 3;
	queue_reads(fk[0], 700, 2, 4);
	queue_reads(fk[1], 800, 2, 4);
	CHECK_EQ(muser_run_poll(devs, 2, 50), 0);
	CHECK_EQ(fk[0]->nreplies, 2);
	CHECK_EQ(fk[1]->nreplies, 4);
	muser_dev_destroy(devs[0]);
	muser_dev_destroy(devs[1]);
	fake_kernel_free(fk[0]);
	fake_kernel_free(fk[1]);
}

static void test_irq(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct state s = { 0 };
	struct muser_dev *dev = new_dev(fk, &s, false);
	uint16_t cmd = PCI_COMMAND_INTX_DISABLE;

	CHECK_ERR(muser_irq_trigger(dev, VFIO_PCI_INTX_IRQ_INDEX, 0), EINVAL);
	CHECK_EQ(muser_realize(dev), 0);
	CHECK_EQ(muser_irq_trigger(dev, VFIO_PCI_INTX_IRQ_INDEX, 0), 0);
	CHECK_EQ(fk->ntriggers, 1);
	CHECK_EQ(fk->triggers[0].argsz, sizeof(struct muser_irq_trigger));
	CHECK_EQ(fk->triggers[0].index, VFIO_PCI_INTX_IRQ_INDEX);
	CHECK_EQ(fk->triggers[0].start, 0);
	CHECK_EQ(fk->triggers[0].count, 1);

	CHECK_ERR(muser_irq_trigger(dev, VFIO_PCI_INTX_IRQ_INDEX, 1), EINVAL);
	CHECK_ERR(muser_irq_trigger(dev, VFIO_PCI_MSI_IRQ_INDEX, 0), EINVAL);
	CHECK_ERR(muser_irq_trigger(dev, MUSER_NUM_IRQS, 0), EINVAL);

	fk->trigger_errno = ENOENT;
	CHECK_ERR(muser_irq_trigger(dev, VFIO_PCI_INTX_IRQ_INDEX, 0), ENOENT);
	fk->trigger_errno = 0;

	/* INTx Disable set by the guest: dropped */
	fake_queue(fk, 500, MUSER_REQ_WRITE, 0, VFIO_PCI_CONFIG_REGION_INDEX,
		   PCI_COMMAND, 2, &cmd, 2);
	CHECK_EQ(muser_dispatch(dev), 1);
	CHECK_EQ(muser_irq_trigger(dev, VFIO_PCI_INTX_IRQ_INDEX, 0), 0);
	CHECK_EQ(fk->ntriggers, 1);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

int main(void)
{
	RUN(test_attach_layout);
	RUN(test_dispatch_basic);
	RUN(test_partial_write);
	RUN(test_cancelled_request);
	RUN(test_refused_reply);
	RUN(test_burst);
	RUN(test_read_error);
	RUN(test_run_stop_from_callback);
	RUN(test_run_stop_from_signal);
	RUN(test_run_hangup);
	RUN(test_dispatch_poll_args);
	RUN(test_dispatch_poll);
	RUN(test_irq);
	TEST_MAIN_END();
}
