// SPDX-License-Identifier: GPL-2.0
/*
 * Upgrading an emulator in place (MUSER_IOC_TAKEOVER), on the raw
 * protocol: the running emulator finishes the requests it has read, the
 * new one gets everything after; the takeover returns once the old one has
 * answered, or after timeout_ms with its requests replayed to the new one.
 * DMA holds belong to the file that took them. Two emulators taking the
 * device from each other under VMM writes: every write answered exactly
 * once, through clean, timed-out, taken-back and closed handovers; and
 * taking the device back keeps the holds taken since (takeback_keeps_holds).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "harness.h"
#include "fixture.h"

#define BAR0	VFIO_PCI_BAR0_REGION_INDEX
#define CHUNK	(1ul << MUSER_DMA_CHUNK_SHIFT)

/* The rig's control node is the old emulator's. */
FIXTURE(up) {
	struct rig r;
	int new_ctl;
};

FIXTURE_SETUP(up)
{
	self->new_ctl = -1;
	RIG_SETUP(&self->r, NULL, RIG_NONBLOCK | RIG_DETACHED | RIG_NO_VMM);
	/* Both open before the old one attaches. */
	self->new_ctl = ctl_open(self->r.uuid, O_NONBLOCK);
	ASSERT_LE(0, self->new_ctl);
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
	test_rig_open_vmm(&self->r);
}

FIXTURE_TEARDOWN(up)
{
	/* The VMM, then the old emulator, then the new one. */
	vfio_client_close(&self->r.c);
	if (self->r.ctl >= 0)
		close(self->r.ctl);
	self->r.ctl = -1;
	if (self->new_ctl >= 0)
		close(self->new_ctl);
	RIG_TEARDOWN(&self->r);
}

TEST_F(up, old_finishes_new_gets_the_rest)
{
	struct emu_takeover t = { .ctl = self->new_ctl, .info = &self->r.layout };
	struct async_access a1, a2;
	struct emu_req r1, r2;
	uint8_t v = 0x5a;

	/* The old emulator has read a request and is working on it. */
	ASSERT_EQ(0, async_start(&a1, &self->r.c, BAR0, 0x10, 1, false));
	ASSERT_EQ(1, emu_next_request(self->r.ctl, &r1, 3000));

	ASSERT_EQ(0, pthread_create(&t.thread, NULL, emu_takeover_fn, &t));
	sleep_ms(200);
	EXPECT_FALSE(__atomic_load_n(&t.done, __ATOMIC_ACQUIRE))
		TH_LOG("the takeover did not wait for the old emulator");

	/* A new access goes to the new emulator only. */
	ASSERT_EQ(0, async_start(&a2, &self->r.c, BAR0, 0x20, 1, false));
	ASSERT_EQ(1, emu_next_request(self->new_ctl, &r2, 3000));
	EXPECT_EQ(0x20, r2.hdr.offset);
	EXPECT_EQ(0, r2.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_EQ(-ENOTCONN, emu_read(self->r.ctl, NULL, 0));

	/* The old one answers what it held; only then the takeover returns. */
	EXPECT_LT(0, emu_reply(self->r.ctl, r1.hdr.id, 0, &v, 1));
	ASSERT_TRUE(wait_flag(&t.done, 3000));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, t.ret);
	EXPECT_EQ(1, async_join(&a1));
	EXPECT_EQ(0x5a, a1.buf[0]);
	/* It cannot answer the new one's requests. */
	EXPECT_EQ(-ENOTCONN, emu_reply(self->r.ctl, r2.hdr.id, 0, &v, 1));
	EXPECT_LT(0, emu_reply(self->new_ctl, r2.hdr.id, 0, &v, 1));
	EXPECT_EQ(1, async_join(&a2));
}

TEST_F(up, old_that_never_answers_is_replayed)
{
	struct emu_takeover t = { .ctl = self->new_ctl, .info = &self->r.layout };
	struct async_access a;
	struct emu_req r, again;
	uint8_t v = 7;
	int64_t start;

	/* The VMM waits longer than the takeover does. */
	ASSERT_EQ(0, rig_set_timeout(&self->r, 10000));
	ASSERT_EQ(0, async_start(&a, &self->r.c, BAR0, 0x30, 1, false));
	ASSERT_EQ(1, emu_next_request(self->r.ctl, &r, 3000));
	ASSERT_EQ(0, param_set("timeout_ms", 2000));

	start = now_ms();
	ASSERT_EQ(0, pthread_create(&t.thread, NULL, emu_takeover_fn, &t));
	ASSERT_TRUE(wait_flag(&t.done, 10000));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, t.ret);
	EXPECT_LE(1800, now_ms() - start) TH_LOG("gave up before timeout_ms");
	/* The new emulator gets it, replayed. */
	ASSERT_EQ(1, emu_next_request(self->new_ctl, &again, 3000));
	EXPECT_EQ(r.hdr.id, again.hdr.id);
	EXPECT_TRUE(again.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_EQ(-ENOTCONN, emu_reply(self->r.ctl, r.hdr.id, 0, &v, 1));
	EXPECT_LT(0, emu_reply(self->new_ctl, again.hdr.id, 0, &v, 1));
	EXPECT_EQ(1, async_join(&a));
}

TEST_F(up, needs_the_same_layout)
{
	struct muser_device_info other = self->r.layout;

	other.regions[VFIO_PCI_BAR2_REGION_INDEX].size *= 2;
	EXPECT_EQ(-1, ioctl(self->new_ctl, MUSER_IOC_TAKEOVER, &other));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, ioctl(self->r.ctl, MUSER_IOC_TAKEOVER, &self->r.layout));
	EXPECT_EQ(EBUSY, errno);
	/* Nobody running: a takeover is an attach. */
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_DETACH));
	EXPECT_EQ(0, ioctl(self->new_ctl, MUSER_IOC_TAKEOVER, &self->r.layout));
}

TEST_F(up, holds_belong_to_their_file)
{
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	struct muser_dma_map m = { .argsz = sizeof(m), .iova = 1ul << 30 };
	uint8_t *mem;

	mem = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	map.vaddr = (uintptr_t)mem;
	map.iova = 1ul << 30;
	map.size = 2 * CHUNK;
	ASSERT_EQ(0, ioctl(self->r.c.container, VFIO_IOMMU_MAP_DMA, &map));

	m.size = CHUNK;
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_DMA_MAP, &m));
	ASSERT_EQ(0, ioctl(self->new_ctl, MUSER_IOC_TAKEOVER, &self->r.layout));
	m.size = 2 * CHUNK;
	ASSERT_EQ(0, ioctl(self->new_ctl, MUSER_IOC_DMA_MAP, &m));
	EXPECT_EQ(2 * CHUNK / 4096, dma_stat(self->r.uuid, "mapped_pages"));
	/* The old one cannot pin any more, nor release the new one's holds. */
	EXPECT_EQ(-1, ioctl(self->r.ctl, MUSER_IOC_DMA_MAP, &m));
	EXPECT_EQ(ENOTCONN, errno);
	/* The old one exits: its hold goes, the new one's stay. */
	close(self->r.ctl);
	self->r.ctl = -1;
	EXPECT_EQ(2 * CHUNK / 4096, dma_stat(self->r.uuid, "mapped_pages"));
	ASSERT_EQ(0, ioctl(self->new_ctl, MUSER_IOC_DMA_RELEASE, &m));
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
	EXPECT_EQ(-1, ioctl(self->new_ctl, MUSER_IOC_DMA_RELEASE, &m));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(2 * CHUNK / 4096, dma_stat(self->r.uuid, "pinned_pages"));
}

/* ------------------------------------------------ alternating takeovers */

/*
 * Two emulators take the device from each other, again and again, while
 * TK_WRITERS VMM threads each write an incrementing counter to their own
 * trapped BAR0 register. Each round hands over one way, chosen at random
 * (seeded: MUSER_FUZZ_SEED):
 *
 *   clean    the old emulator holds requests when the takeover starts
 *            and answers them; the takeover then returns
 *   timeout  it never answers: after timeout_ms (low for this) the
 *            takeover returns and the new one gets them, replayed; the
 *            old one's late answers fail (ENOTCONN)
 *   takeback it holds requests; while the takeover waits for it, it takes
 *            the device back, then answers them: they are still its own
 *            (the waiting takeover must not replay them when it ends)
 *   close    it holds requests and exits during the takeover: the new one
 *            gets them, replayed
 *
 * timeout_ms is also each VMM access's deadline, taken when it is queued:
 * the writers pause while it is low, so that only the takeover sees it.
 *
 * Every write must reach an emulator's successful answer exactly once,
 * every pwrite must succeed, no request may be delivered twice unless
 * replayed, and an answer may fail only where the old emulator had lost
 * its requests (the timeout round).
 */
#define TK_WRITERS	4
#define TK_MAXSEQ	65536
#define TK_HIGH_MS	20000	/* timeout_ms for VMM accesses */
#define TK_LOW_MS	300	/* timeout_ms for a takeover that times out */
#define TK_ROUNDS	10	/* of each kind */
#define TK_HELD		64

enum { TK_CLEAN, TK_TIMEOUT, TK_TAKEBACK, TK_CLOSE, TK_KINDS };

static const char *const tk_names[TK_KINDS] = {
	"clean", "timeout", "takeback", "close",
};

struct tk_writer {
	pthread_t thread;
	struct vfio_client *c;
	int index;
	volatile int *stop;
	volatile int *paused;	/* timeout_ms is low: queue nothing */
	uint32_t written;	/* writes that returned */
	int failed, first_err;
};

static void *tk_writer_fn(void *p)
{
	struct tk_writer *w = p;
	uint32_t seq;
	ssize_t n;

	for (seq = 1; seq <= TK_MAXSEQ &&
	     !__atomic_load_n(w->stop, __ATOMIC_ACQUIRE); seq++) {
		while (__atomic_load_n(w->paused, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(w->stop, __ATOMIC_ACQUIRE))
			usleep(1000);
		n = pwrite(w->c->device, &seq, sizeof(seq),
			   MUSER_REGION_OFFSET(BAR0) + 8 * w->index);
		if (n != sizeof(seq) && !w->failed++)
			w->first_err = n < 0 ? errno : 0;
		w->written = seq;
	}
	return NULL;
}

struct tk {
	int fd[2];
	uint8_t applied[TK_WRITERS][TK_MAXSEQ + 1];
	uint8_t fresh[TK_WRITERS][TK_MAXSEQ + 1];	/* not replayed */
	int bad_req, dup, replays, enoent, lost_answer, late_ok, other_err;
	struct emu_req held[TK_HELD];
	int nheld;
};

/* The counter write a request carries, or -1. */
static int tk_decode(const struct emu_req *r, int *w, uint32_t *seq)
{
	if (r->hdr.type != MUSER_REQ_WRITE || r->hdr.region != BAR0 ||
	    r->hdr.len != 4 || r->hdr.offset % 8 ||
	    r->hdr.offset / 8 >= TK_WRITERS)
		return -1;
	*w = r->hdr.offset / 8;
	memcpy(seq, r->data, 4);
	return *seq && *seq <= TK_MAXSEQ ? 0 : -1;
}

/* Answer @r from emulator @e; returns emu_reply()'s result. */
static ssize_t tk_answer(struct tk *k, int e, const struct emu_req *r)
{
	ssize_t ret = emu_reply(k->fd[e], r->hdr.id, 0, NULL, 0);
	uint32_t seq;
	int w;

	if (ret > 0 && !tk_decode(r, &w, &seq))
		k->applied[w][seq]++;
	else if (ret == -ENOENT)
		k->enoent++;
	return ret;
}

/*
 * One read() of emulator @e (waiting at most @ms): requests are answered,
 * or held if @hold. Returns how many came, or -errno (-ENOTCONN: @e is
 * not the emulator).
 */
static int tk_take(struct tk *k, int e, bool hold, int ms)
{
	static struct emu_req reqs[64];
	ssize_t ret;
	uint32_t seq;
	int n, i, w;

	n = emu_read_timeout(k->fd[e], reqs, 64, ms);
	if (n == -EPIPE)	/* POLLERR: not the emulator */
		n = emu_read(k->fd[e], reqs, 64);
	for (i = 0; i < n && i < 64; i++) {
		if (!reqs[i].hdr.id)
			continue;	/* a posted notice */
		if (tk_decode(&reqs[i], &w, &seq)) {
			k->bad_req++;
			continue;
		}
		if (reqs[i].hdr.flags & MUSER_REQ_F_REPLAYED)
			k->replays++;
		else if (k->fresh[w][seq]++)
			k->dup++;
		if (hold && k->nheld < TK_HELD) {
			k->held[k->nheld++] = reqs[i];
			continue;
		}
		ret = tk_answer(k, e, &reqs[i]);
		if (ret <= 0 && ret != -ENOENT)
			k->other_err++;
	}
	return n;
}

/*
 * Set timeout_ms low for a takeover that is to time out, or back to high.
 * The writers stop queueing first, and what they queued meanwhile keeps
 * its high deadline.
 */
static int tk_timeout(volatile int *paused, bool low)
{
	int ret;

	if (!low) {
		ret = param_set("timeout_ms", TK_HIGH_MS);
		__atomic_store_n(paused, 0, __ATOMIC_RELEASE);
		return ret;
	}
	__atomic_store_n(paused, 1, __ATOMIC_RELEASE);
	sleep_ms(100);	/* a writer between its check and its pwrite */
	return param_set("timeout_ms", TK_LOW_MS);
}

/* Serve @e for @ms. */
static void tk_serve(struct tk *k, int e, int ms)
{
	int64_t end = now_ms() + ms;

	while (now_ms() < end)
		tk_take(k, e, false, 10);
}

/* Read from @e, holding what comes, until it holds something. */
static bool tk_hold(struct tk *k, int e)
{
	int64_t end = now_ms() + 5000;

	k->nheld = 0;
	while (!k->nheld && now_ms() < end)
		if (tk_take(k, e, true, 50) < 0)
			return false;
	return k->nheld;
}

/* Until @e is no longer the emulator (holding what it still gets). */
static bool tk_wait_replaced(struct tk *k, int e)
{
	int64_t end = now_ms() + 5000;

	while (now_ms() < end) {
		if (tk_take(k, e, true, 0) == -ENOTCONN)
			return true;
		sleep_ms(1);
	}
	return false;
}

/* Serve @e until the takeover @t returned. */
static void tk_serve_until(struct tk *k, int e, struct emu_takeover *t)
{
	int64_t end = now_ms() + 3 * TK_HIGH_MS;

	while (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE) && now_ms() < end)
		tk_take(k, e, false, 10);
}

/* Serve @e until every held request has been answered by someone. */
static void tk_serve_held(struct tk *k, int e)
{
	int64_t end = now_ms() + TK_HIGH_MS;
	uint32_t seq;
	int i, w;

	for (i = 0; i < k->nheld; i++) {
		if (tk_decode(&k->held[i], &w, &seq))
			continue;
		while (!k->applied[w][seq] && now_ms() < end)
			tk_take(k, e, false, 10);
	}
}

TEST_F_TIMEOUT(up, alternate_counter, 300)
{
	struct tk_writer wr[TK_WRITERS];
	struct emu_takeover t, back;
	int kinds[TK_KINDS * TK_ROUNDS], done[TK_KINDS] = { 0 };
	const char *env = getenv("MUSER_FUZZ_SEED");
	unsigned int seed = env ? strtoul(env, NULL, 0) : (unsigned int)now_ms();
	volatile int stop = 0, paused = 0;
	int cur = 0, e, f, i, j, tmp, missing = 0, twice = 0;
	struct tk *k;
	ssize_t ret;

	k = calloc(1, sizeof(*k));
	ASSERT_NE(NULL, k);
	k->fd[0] = self->r.ctl;	/* attached by the fixture */
	k->fd[1] = self->new_ctl;
	TH_LOG("seed %u (MUSER_FUZZ_SEED)", seed);
	for (i = 0; i < TK_KINDS * TK_ROUNDS; i++)
		kinds[i] = i % TK_KINDS;
	for (i = TK_KINDS * TK_ROUNDS - 1; i > 0; i--) {
		j = rand_r(&seed) % (i + 1);
		tmp = kinds[i];
		kinds[i] = kinds[j];
		kinds[j] = tmp;
	}
	ASSERT_EQ(0, rig_set_timeout(&self->r, TK_HIGH_MS));
	for (i = 0; i < TK_WRITERS; i++) {
		wr[i] = (struct tk_writer){ .c = &self->r.c, .index = i,
					    .stop = &stop, .paused = &paused };
		ASSERT_EQ(0, pthread_create(&wr[i].thread, NULL, tk_writer_fn,
					    &wr[i]));
	}

	for (i = 0; i < TK_KINDS * TK_ROUNDS; i++) {
		e = cur;
		f = !cur;
		tk_serve(k, e, 20);
		if (!tk_hold(k, e)) {
			TH_LOG("round %d: no request to hold", i);
			break;
		}
		t = (struct emu_takeover){ .ctl = k->fd[f], .info = &self->r.layout };
		if (kinds[i] == TK_TIMEOUT || kinds[i] == TK_TAKEBACK)
			EXPECT_EQ(0, tk_timeout(&paused, true));
		ASSERT_EQ(0, pthread_create(&t.thread, NULL, emu_takeover_fn, &t));

		switch (kinds[i]) {
		case TK_CLEAN:
			/* Answered by the old one, taken over or not yet. */
			for (j = 0; j < k->nheld; j++)
				if (tk_answer(k, e, &k->held[j]) <= 0)
					k->lost_answer++;
			tk_serve_until(k, f, &t);
			cur = f;
			break;
		case TK_TIMEOUT:
			tk_serve_until(k, f, &t);
			EXPECT_EQ(0, tk_timeout(&paused, false));
			/* Replayed to the new one by now: too late. */
			for (j = 0; j < k->nheld; j++) {
				ret = tk_answer(k, e, &k->held[j]);
				if (ret > 0)
					k->late_ok++;
				else if (ret != -ENOTCONN)
					k->other_err++;
			}
			tk_serve_held(k, f);
			cur = f;
			break;
		case TK_TAKEBACK:
			ASSERT_TRUE(tk_wait_replaced(k, e));
			back = (struct emu_takeover){ .ctl = k->fd[e],
						      .info = &self->r.layout };
			ASSERT_EQ(0, pthread_create(&back.thread, NULL,
						    emu_takeover_fn, &back));
			/* The new one has read nothing: nothing to wait for. */
			ASSERT_TRUE(wait_flag(&back.done, TK_HIGH_MS));
			pthread_join(back.thread, NULL);
			EXPECT_EQ(0, back.ret);
			EXPECT_EQ(0, tk_timeout(&paused, false));
			/* Only now, with the first takeover over. */
			ASSERT_TRUE(wait_flag(&t.done, 3 * TK_HIGH_MS));
			for (j = 0; j < k->nheld; j++)
				if (tk_answer(k, e, &k->held[j]) <= 0)
					k->lost_answer++;
			break;
		case TK_CLOSE:
			ASSERT_TRUE(tk_wait_replaced(k, e));
			close(k->fd[e]);
			k->fd[e] = ctl_open(self->r.uuid, O_NONBLOCK);
			ASSERT_LE(0, k->fd[e]);
			if (e)
				self->new_ctl = k->fd[e];
			else
				self->r.ctl = k->fd[e];
			tk_serve_until(k, f, &t);
			tk_serve_held(k, f);
			cur = f;
			break;
		}
		pthread_join(t.thread, NULL);
		EXPECT_EQ(0, t.ret) TH_LOG("round %d (%s)", i, tk_names[kinds[i]]);
		done[kinds[i]]++;
	}

	/* Let the writers finish, and check every write. */
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < TK_WRITERS; i++)
		while (pthread_tryjoin_np(wr[i].thread, NULL))
			tk_take(k, cur, false, 10);
	for (i = 0; i < TK_WRITERS; i++) {
		EXPECT_EQ(0, wr[i].failed)
			TH_LOG("writer %d: %d failed writes, the first: %s", i,
			       wr[i].failed, strerror(wr[i].first_err));
		for (j = 1; j <= (int)wr[i].written; j++) {
			missing += !k->applied[i][j];
			twice += k->applied[i][j] > 1;
		}
		TH_LOG("writer %d: %u writes", i, wr[i].written);
	}
	TH_LOG("rounds: clean %d, timeout %d, takeback %d, close %d; %d replays",
	       done[TK_CLEAN], done[TK_TIMEOUT], done[TK_TAKEBACK],
	       done[TK_CLOSE], k->replays);
	EXPECT_EQ(TK_KINDS * TK_ROUNDS,
		  done[TK_CLEAN] + done[TK_TIMEOUT] + done[TK_TAKEBACK] +
		  done[TK_CLOSE]);
	EXPECT_EQ(0, missing) TH_LOG("writes no emulator took");
	EXPECT_EQ(0, twice) TH_LOG("writes emulators took twice");
	EXPECT_EQ(0, k->dup) TH_LOG("requests delivered twice, not replayed");
	EXPECT_EQ(0, k->enoent)
		TH_LOG("answers to requests the emulator had read and still owned failed (ENOENT)");
	EXPECT_EQ(0, k->lost_answer)
		TH_LOG("answers of an emulator to what it had read failed");
	EXPECT_EQ(0, k->late_ok)
		TH_LOG("late answers after a takeover timed out succeeded");
	EXPECT_EQ(0, k->other_err);
	EXPECT_EQ(0, k->bad_req);
	free(k);
}

/* ------------------------------------------------------ taking it back */

#define TAKEBACK_MS	5000

struct takeback {
	pthread_t thread;
	int ctl;
	const struct muser_device_info *info;
	int *stop;
	long takeovers, released, enotconn, lost;
	int lost_err;
};

/* Take the device, map a page of guest memory, release it; again. */
static void *takeback_fn(void *p)
{
	struct takeback *k = p;
	struct muser_dma_map m = { .argsz = sizeof(m), .iova = 0, .size = 4096 };

	while (!__atomic_load_n(k->stop, __ATOMIC_ACQUIRE)) {
		if (ioctl(k->ctl, MUSER_IOC_TAKEOVER, k->info))
			continue;
		k->takeovers++;
		if (ioctl(k->ctl, MUSER_IOC_DMA_MAP, &m))
			continue;
		if (!ioctl(k->ctl, MUSER_IOC_DMA_RELEASE, &m)) {
			k->released++;
		} else if (errno == ENOTCONN) {
			k->enotconn++;	/* taken over: the hold went with it */
		} else {
			k->lost++;
			k->lost_err = errno;
		}
	}
	return NULL;
}

/*
 * Two emulators take the device from each other as fast as they can, and
 * each maps and releases a page while it is the emulator. A takeover
 * drops the old file's holds after letting go of the device's lock; if
 * the old one has taken the device back meanwhile, what it holds is its
 * own: its release must not fail with EINVAL (the hold dropped under it).
 */
TEST_F_TIMEOUT(up, takeback_keeps_holds, 120)
{
	struct takeback k[2] = {
		{ .ctl = self->r.ctl }, { .ctl = self->new_ctl },
	};
	long takeovers = 0, released = 0, lost = 0;
	int stop = 0, i;

	for (i = 0; i < 2; i++) {
		k[i].info = &self->r.layout;
		k[i].stop = &stop;
		ASSERT_EQ(0, pthread_create(&k[i].thread, NULL, takeback_fn, &k[i]));
	}
	usleep(TAKEBACK_MS * 1000);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++) {
		pthread_join(k[i].thread, NULL);
		takeovers += k[i].takeovers;
		released += k[i].released;
		lost += k[i].lost;
		if (k[i].lost)
			TH_LOG("emulator %d: %ld releases failed, the last with %s",
			       i, k[i].lost, strerror(k[i].lost_err));
	}
	TH_LOG("%ld takeovers, %ld map+release rounds, %ld releases after a takeover (ENOTCONN)",
	       takeovers, released, k[0].enotconn + k[1].enotconn);
	EXPECT_EQ(0, lost);
	EXPECT_LT(0, released);
	ioctl(self->r.ctl, MUSER_IOC_DETACH);
	ioctl(self->new_ctl, MUSER_IOC_DETACH);
	EXPECT_EQ(0, dma_stat(self->r.uuid, "mapped_pages"));
}

TEST_HARNESS_MAIN
