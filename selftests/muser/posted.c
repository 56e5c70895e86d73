// SPDX-License-Identifier: GPL-2.0
/*
 * Posted writes (MUSER_REGION_F_POSTED_WRITES): the VMM's pwrite() returns
 * without an answer; the emulator sees the writes flagged, in order with
 * every other request, across a restart and a takeover; their errors are
 * counted and logged; at most MUSER_MAX_POSTED wait; the last close gives
 * them timeout_ms, then drops them. The test is the raw emulator and the
 * VMM, on layout_default() with BAR0 posted (BAR2 is not).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "harness.h"
#include "fixture.h"

#define WAIT_MS	5000	/* for a request that must arrive */
#define BAR0	VFIO_PCI_BAR0_REGION_INDEX
#define BAR2	VFIO_PCI_BAR2_REGION_INDEX

FIXTURE(posted) {
	struct rig rig;
	struct muser_device_info layout;
	struct emu_req *reqs;	/* MUSER_MAX_POSTED + 8 */
};

FIXTURE_SETUP(posted)
{
	layout_default(&self->layout);
	self->layout.regions[BAR0].flags |= MUSER_REGION_F_POSTED_WRITES;
	self->reqs = calloc(MUSER_MAX_POSTED + 8, sizeof(*self->reqs));
	ASSERT_NE(NULL, self->reqs);
	RIG_SETUP(&self->rig, &self->layout, 0);
}

FIXTURE_TEARDOWN(posted)
{
	RIG_TEARDOWN(&self->rig);
	free(self->reqs);
}

/* A 4-byte posted write of @val at @off of BAR0: bytes or -errno. */
static ssize_t post(struct rig *r, uint64_t off, uint32_t val)
{
	return region_write(&r->c, BAR0, off, &val, sizeof(val));
}

static uint32_t req_u32(const struct emu_req *q)
{
	uint32_t v;

	memcpy(&v, q->data, sizeof(v));
	return v;
}

#define ASSERT_POSTED(q, off, val) do {					\
	ASSERT_EQ(MUSER_REQ_WRITE, (q)->hdr.type);			\
	ASSERT_TRUE((q)->hdr.flags & MUSER_REQ_F_POSTED);		\
	ASSERT_EQ(BAR0, (q)->hdr.region);				\
	ASSERT_EQ((uint64_t)(off), (q)->hdr.offset);			\
	ASSERT_EQ(4, (q)->hdr.len);					\
	ASSERT_EQ((uint32_t)(val), req_u32(q));				\
} while (0)

#define test_figures(r, f) ASSERT_EQ(0, nl_figures((r)->uuid, f))

/* Nobody reads, yet the write returns; then the emulator sees it. */
TEST_F(posted, returns_unanswered)
{
	struct vfio_region_info ri;
	struct nl_figures f;
	struct emu_req *q = self->reqs;

	ASSERT_EQ(4, post(&self->rig, 0x10, 0xdeadbeef));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	ASSERT_POSTED(q, 0x10, 0xdeadbeef);
	ASSERT_EQ(sizeof(struct muser_reply), emu_reply(self->rig.ctl, q->hdr.id, 0, NULL, 0));
	/* Acknowledged once: a second answer finds nothing. */
	ASSERT_EQ(-ENOENT, emu_reply(self->rig.ctl, q->hdr.id, 0, NULL, 0));

	test_figures(&self->rig, &f);
	ASSERT_EQ(1, f.posted);
	ASSERT_EQ(0, f.failed);
	/* The flag is the kernel's business, not the VMM's. */
	ASSERT_EQ(0, get_region_info(self->rig.c.device, BAR0, &ri));
	ASSERT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
		  ri.flags);
}

/* BAR2 is not posted: its write waits for the answer. */
TEST_F(posted, other_bar_waits)
{
	struct emu_req *q = self->reqs;
	struct async_access a;
	uint32_t v = 7;

	ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0x20, 4, true));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	ASSERT_EQ(MUSER_REQ_WRITE, q->hdr.type);
	ASSERT_EQ(0, q->hdr.flags & MUSER_REQ_F_POSTED);
	ASSERT_EQ(0, a.done);
	ASSERT_EQ(sizeof(struct muser_reply), emu_reply(self->rig.ctl, q->hdr.id, 0, NULL, 0));
	ASSERT_EQ(4, async_join(&a));
	/* And a read of BAR0 is never posted. */
	ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR0, 0, 4, false));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	ASSERT_EQ(MUSER_REQ_READ, q->hdr.type);
	ASSERT_EQ(sizeof(struct muser_reply) + 8,
		  emu_reply(self->rig.ctl, q->hdr.id, 0, &v, 4));
	ASSERT_EQ(4, async_join(&a));
}

/* Three posted writes, then a read: the emulator sees them in that order. */
TEST_F(posted, order_kept)
{
	struct emu_req *q = self->reqs;
	struct async_access a;
	uint32_t v = 0;
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(4, post(&self->rig, 4 * i, 100 + i));
	ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0, 4, false));
	ASSERT_EQ(4, emu_read_n(self->rig.ctl, q, 4, WAIT_MS));
	for (i = 0; i < 3; i++) {
		ASSERT_POSTED(&q[i], 4 * i, 100 + i);
		if (i)
			ASSERT_LT(q[i - 1].hdr.id, q[i].hdr.id);
	}
	ASSERT_EQ(MUSER_REQ_READ, q[3].hdr.type);
	ASSERT_LT(q[2].hdr.id, q[3].hdr.id);
	for (i = 0; i < 3; i++)
		ASSERT_LT(0, emu_reply(self->rig.ctl, q[i].hdr.id, 0, NULL, 0));
	ASSERT_LT(0, emu_reply(self->rig.ctl, q[3].hdr.id, 0, &v, 4));
	ASSERT_EQ(4, async_join(&a));
}

/* An error answer has no syscall to fail: it is counted and logged. */
TEST_F(posted, error_counted)
{
	struct emu_req *q = self->reqs;
	struct nl_figures f;
	int log = kmsg_start("posted.error_counted");

	ASSERT_LE(0, log);
	ASSERT_EQ(4, post(&self->rig, 0, 1));
	ASSERT_EQ(4, post(&self->rig, 4, 2));
	ASSERT_EQ(2, emu_read_n(self->rig.ctl, q, 2, WAIT_MS));
	ASSERT_LT(0, emu_reply(self->rig.ctl, q[0].hdr.id, EIO, NULL, 0));
	/* Data in the answer to a write: refused, and the write failed. */
	ASSERT_EQ(-EINVAL, emu_reply(self->rig.ctl, q[1].hdr.id, 0, "abcd", 4));
	ASSERT_EQ(-ENOENT, emu_reply(self->rig.ctl, q[1].hdr.id, 0, NULL, 0));

	test_figures(&self->rig, &f);
	ASSERT_EQ(2, f.posted);
	ASSERT_EQ(2, f.failed);
	ASSERT_EQ(EIO, f.last_error);
	/* Both failed writes are logged. */
	ASSERT_EQ(2, kmsg_count(log, "posted write"));
	close(log);
}

/* MUSER_MAX_POSTED unanswered: the next write waits, then times out. */
TEST_F(posted, bounded)
{
	struct emu_req *q = self->reqs;
	struct async_access a;
	struct nl_figures f;
	uint32_t v = 0;
	int i, n;

	ASSERT_EQ(0, rig_set_timeout(&self->rig, 300));
	for (i = 0; i < MUSER_MAX_POSTED; i++)
		ASSERT_EQ(4, post(&self->rig, 4 * (i % 1024), i));
	ASSERT_EQ(-ETIMEDOUT, post(&self->rig, 0, ~0u));
	/* An unposted access still has a slot, behind them. */
	ASSERT_EQ(0, rig_set_timeout(&self->rig, WAIT_MS));
	ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0, 4, false));
	n = emu_read_n(self->rig.ctl, q, MUSER_MAX_POSTED + 1, WAIT_MS);
	ASSERT_EQ(MUSER_MAX_POSTED + 1, n);
	for (i = 0; i < MUSER_MAX_POSTED; i++)
		ASSERT_POSTED(&q[i], 4 * (i % 1024), i);
	ASSERT_EQ(MUSER_REQ_READ, q[i].hdr.type);
	/* One answer makes room for one more write. */
	ASSERT_LT(0, emu_reply(self->rig.ctl, q[0].hdr.id, 0, NULL, 0));
	ASSERT_EQ(4, post(&self->rig, 0, 0xabc));
	for (i = 1; i < MUSER_MAX_POSTED; i++)
		ASSERT_LT(0, emu_reply(self->rig.ctl, q[i].hdr.id, 0, NULL, 0));
	ASSERT_LT(0, emu_reply(self->rig.ctl, q[i].hdr.id, 0, &v, 4));
	ASSERT_EQ(4, async_join(&a));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	ASSERT_POSTED(q, 0, 0xabc);
	ASSERT_LT(0, emu_reply(self->rig.ctl, q->hdr.id, 0, NULL, 0));

	test_figures(&self->rig, &f);
	ASSERT_EQ(MUSER_MAX_POSTED + 1, f.posted);
	/* The write that timed out is not a settled request. */
	ASSERT_EQ(0, f.failed);
}

/* Writes from bad buffers fail with EFAULT and give their room back. */
TEST_F(posted, bad_buffer_gives_room_back)
{
	struct emu_req *q = self->reqs;
	int i;

	ASSERT_EQ(0, rig_set_timeout(&self->rig, 300));
	for (i = 0; i < 2 * MUSER_MAX_POSTED; i++)
		ASSERT_EQ(-EFAULT, region_write(&self->rig.c, BAR0, 0, NULL, 4));
	ASSERT_EQ(4, post(&self->rig, 0, 5));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	ASSERT_POSTED(q, 0, 5);
	ASSERT_LT(0, emu_reply(self->rig.ctl, q->hdr.id, 0, NULL, 0));
}

/* An emulator that read a posted write and went: the next one gets it. */
TEST_F(posted, replayed_after_detach)
{
	struct emu_req *q = self->reqs;
	int ctl2;

	ASSERT_EQ(4, post(&self->rig, 8, 0x55));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	ASSERT_EQ(0, q->hdr.flags & MUSER_REQ_F_REPLAYED);
	ASSERT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH));

	ctl2 = ctl_open(self->rig.uuid, 0);
	ASSERT_LE(0, ctl2);
	ASSERT_EQ(0, ctl_attach(ctl2, &self->layout));
	ASSERT_EQ(1, emu_read_one(ctl2, q, WAIT_MS));
	ASSERT_POSTED(q, 8, 0x55);
	ASSERT_TRUE(q->hdr.flags & MUSER_REQ_F_REPLAYED);
	ASSERT_LT(0, emu_reply(ctl2, q->hdr.id, 0, NULL, 0));
	/* The rig's control node is the emulator again for the teardown. */
	close(ctl2);
	ASSERT_EQ(0, ctl_attach(self->rig.ctl, &self->layout));
}

/* Whether @ctl reports EPOLLERR (no longer the emulator) within WAIT_MS. */
static bool wait_until_err(int ctl)
{
	int64_t end = now_ms() + WAIT_MS;

	while (now_ms() < end) {
		if (poll_in(ctl, 10) & POLLERR)
			return true;
	}
	return false;
}

/*
 * A takeover while the old emulator holds a posted write: the new one
 * gets nothing until the old one has answered it, so a later read cannot
 * overtake the write.
 */
TEST_F(posted, takeover_keeps_order)
{
	struct emu_req *q = self->reqs;
	struct emu_takeover t = { .info = &self->layout };
	struct async_access a;
	uint32_t v = 0;

	ASSERT_EQ(4, post(&self->rig, 0, 0x77));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	/* The read is queued (the old emulator sees it pending) ... */
	ASSERT_EQ(0, async_start(&a, &self->rig.c, BAR2, 0, 4, false));
	ASSERT_EQ(POLLIN, poll_in(self->rig.ctl, WAIT_MS));
	t.ctl = ctl_open(self->rig.uuid, 0);
	ASSERT_LE(0, t.ctl);
	ASSERT_EQ(0, pthread_create(&t.thread, NULL, emu_takeover_fn, &t));
	/* ... the takeover is made (the old one is no longer the emulator) ... */
	ASSERT_TRUE(wait_until_err(self->rig.ctl));
	/* ... and the new emulator must not see the read yet. */
	ASSERT_EQ(0, poll_in(t.ctl, 300));
	ASSERT_EQ(0, t.done);
	ASSERT_LT(0, emu_reply(self->rig.ctl, q->hdr.id, 0, NULL, 0));
	ASSERT_EQ(0, pthread_join(t.thread, NULL));
	ASSERT_EQ(0, t.ret);
	ASSERT_EQ(1, emu_read_one(t.ctl, q, WAIT_MS));
	ASSERT_EQ(MUSER_REQ_READ, q->hdr.type);
	ASSERT_EQ(0, q->hdr.flags & MUSER_REQ_F_REPLAYED);
	ASSERT_LT(0, emu_reply(t.ctl, q->hdr.id, 0, &v, 4));
	ASSERT_EQ(4, async_join(&a));
	close(t.ctl);
	ASSERT_EQ(0, ctl_attach(self->rig.ctl, &self->layout));
}

struct closer {
	pthread_t thread;
	struct vfio_client *c;
	volatile int done;
};

static void *close_fn(void *arg)
{
	struct closer *cl = arg;

	vfio_client_close(cl->c);
	cl->done = 1;
	return NULL;
}

/* The last close waits for the emulator to acknowledge posted writes. */
TEST_F(posted, close_waits_for_ack)
{
	struct closer cl = { .c = &self->rig.c };
	struct emu_req *q = self->reqs;
	struct nl_figures f;
	int log = kmsg_start("posted.close_waits_for_ack");

	ASSERT_LE(0, log);
	ASSERT_EQ(4, post(&self->rig, 0, 0x99));
	ASSERT_EQ(0, pthread_create(&cl.thread, NULL, close_fn, &cl));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	ASSERT_POSTED(q, 0, 0x99);
	/* Unanswered, the close cannot have finished. */
	sleep_ms(200);
	ASSERT_EQ(0, cl.done);
	ASSERT_LT(0, emu_reply(self->rig.ctl, q->hdr.id, 0, NULL, 0));
	ASSERT_EQ(0, pthread_join(cl.thread, NULL));
	test_figures(&self->rig, &f);
	ASSERT_EQ(0, f.failed);
	ASSERT_EQ(0, kmsg_count(log, "posted writes dropped"));
	close(log);
}

/* Nobody answers: the close drops them after timeout_ms, counted. */
TEST_F(posted, close_drops_unanswered)
{
	struct emu_req *q = self->reqs;
	struct nl_figures f;
	uint64_t id;
	int log = kmsg_start("posted.close_drops_unanswered");
	int i, n;

	ASSERT_LE(0, log);
	ASSERT_EQ(0, rig_set_timeout(&self->rig, 300));
	ASSERT_EQ(4, post(&self->rig, 0, 1));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	id = q->hdr.id;
	ASSERT_EQ(4, post(&self->rig, 4, 2));	/* never read */
	vfio_client_close(&self->rig.c);

	test_figures(&self->rig, &f);
	ASSERT_EQ(2, f.failed);
	ASSERT_EQ(ETIMEDOUT, f.last_error);
	ASSERT_EQ(1, kmsg_count(log, "2 posted writes dropped"));
	ASSERT_EQ(-ENOENT, emu_reply(self->rig.ctl, id, 0, NULL, 0));
	/* What is left to read are the close's notices, no write. */
	n = emu_read_timeout(self->rig.ctl, q, 8, WAIT_MS);
	ASSERT_LT(0, n);
	for (i = 0; i < n; i++)
		ASSERT_NE(MUSER_REQ_WRITE, q[i].hdr.type);
	close(log);
}

#define THREADS	8
#define PER_THREAD	2000

struct poster {
	pthread_t thread;
	struct rig *r;
	int n, failed;
};

static void *poster_fn(void *arg)
{
	struct poster *p = arg;
	int i;

	for (i = 0; i < p->n; i++)
		if (post(p->r, 4 * (i % 1024), i) != 4)
			p->failed++;
	return NULL;
}

/* Eight VMM threads posting against an emulator thread: none lost. */
TEST_F(posted, threads)
{
	struct poster p[THREADS];
	struct emu_thread e;
	struct nl_figures f;
	int i;

	ASSERT_EQ(0, emu_thread_start(&e, self->rig.ctl));
	for (i = 0; i < THREADS; i++) {
		p[i] = (struct poster){ .r = &self->rig, .n = PER_THREAD };
		ASSERT_EQ(0, pthread_create(&p[i].thread, NULL, poster_fn, &p[i]));
	}
	for (i = 0; i < THREADS; i++) {
		ASSERT_EQ(0, pthread_join(p[i].thread, NULL));
		ASSERT_EQ(0, p[i].failed);
	}
	/* The close waits for the last acknowledgements. */
	vfio_client_close(&self->rig.c);
	emu_thread_stop(&e);
	ASSERT_EQ(0, e.errors);
	ASSERT_EQ(THREADS * PER_THREAD, e.nr_write);
	test_figures(&self->rig, &f);
	ASSERT_EQ(THREADS * PER_THREAD, f.posted);
	ASSERT_EQ(0, f.failed);
}

/* A VMM killed while it waits for room: nothing leaks, the rest goes on. */
TEST_F(posted, killed_waiting_for_room)
{
	struct emu_req *q = self->reqs;
	struct nl_figures f;
	int i, status;
	pid_t pid;

	for (i = 0; i < MUSER_MAX_POSTED; i++)
		ASSERT_EQ(4, post(&self->rig, 0, i));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(post(&self->rig, 0, ~0u) == 4 ? 0 : 1);
	sleep_ms(200);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(MUSER_MAX_POSTED, emu_read_n(self->rig.ctl, q, MUSER_MAX_POSTED, WAIT_MS));
	for (i = 0; i < MUSER_MAX_POSTED; i++)
		ASSERT_LT(0, emu_reply(self->rig.ctl, q[i].hdr.id, 0, NULL, 0));
	ASSERT_EQ(4, post(&self->rig, 0, 0));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, q, WAIT_MS));
	ASSERT_LT(0, emu_reply(self->rig.ctl, q->hdr.id, 0, NULL, 0));
	test_figures(&self->rig, &f);
	ASSERT_EQ(MUSER_MAX_POSTED + 1, f.posted);
	ASSERT_EQ(0, f.failed);
}

TEST_HARNESS_MAIN
