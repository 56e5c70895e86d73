// SPDX-License-Identifier: GPL-2.0
/*
 * The emulator side of <linux/muser.h>, driven by hand: the test is both the
 * emulator (read() requests from /dev/muser/UUID, write() replies) and the
 * VMM (a VFIO client whose accesses run on helper threads), so it controls
 * every byte and every ordering. The other emu_* tests share this way of
 * working (emu_attach, emu_irqs, emu_noemu).
 *
 * Covered here: request contents, reply validation (ENOENT, EINVAL), errno
 * propagation to the VMM, replies out of order and batched, large accesses
 * split, poll and O_NONBLOCK, reset, VMM threads at once, a VMM killed
 * while it waits, and the timeout of an unanswered request.
 */
#define _GNU_SOURCE
#include "emu_raw.h"

/* The request @r is @type_ at (@region_, @off_) for @len_ bytes. */
#define EXPECT_REQUEST(r, type_, region_, off_, len_) do {		\
	EXPECT_EQ(type_, (r).hdr.type);					\
	EXPECT_EQ(region_, (r).hdr.region);				\
	EXPECT_EQ(off_, (r).hdr.offset);				\
	EXPECT_EQ(len_, (r).hdr.len);					\
} while (0)

TEST_F(raw, read_request)
{
	struct async_access a;
	struct emu_req r;
	uint8_t data[4] = { 0x11, 0x22, 0x33, 0x44 };

	SKIP_IF_SETUP_SKIPPED();
	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0x10, 4, false, &r);
	EXPECT_REQUEST(r, MUSER_REQ_READ, VFIO_PCI_BAR0_REGION_INDEX, 0x10, 4);
	EXPECT_EQ(0, r.hdr.flags);
	EXPECT_EQ(0, r.hdr.data_len);
	EXPECT_EQ(sizeof(struct muser_reply) + 8,
		  emu_reply(self->rig.ctl, r.hdr.id, 0, data, 4));
	EXPECT_EQ(4, async_join(&a));
	EXPECT_EQ(0, memcmp(a.buf, data, 4));

	/* Config space is a region like any other. */
	test_vmm_request(self, &a, VFIO_PCI_CONFIG_REGION_INDEX, 0, 2, false, &r);
	EXPECT_REQUEST(r, MUSER_REQ_READ, VFIO_PCI_CONFIG_REGION_INDEX, 0, 2);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, "\x4f\x49", 2));
	EXPECT_EQ(2, async_join(&a));
	EXPECT_EQ(0, memcmp(a.buf, "\x4f\x49", 2));
}

TEST_F(raw, write_request)
{
	struct async_access a;
	struct emu_req r;
	uint32_t v = 0xcafef00d;

	SKIP_IF_SETUP_SKIPPED();
	memcpy(a.buf, &v, 4);
	test_vmm_request(self, &a, VFIO_PCI_BAR2_REGION_INDEX, 0x104, 4, true, &r);
	EXPECT_REQUEST(r, MUSER_REQ_WRITE, VFIO_PCI_BAR2_REGION_INDEX, 0x104, 4);
	EXPECT_EQ(4, r.hdr.data_len);
	EXPECT_EQ(0, memcmp(r.data, &v, 4));
	EXPECT_EQ(sizeof(struct muser_reply),
		  emu_reply(self->rig.ctl, r.hdr.id, 0, NULL, 0));
	EXPECT_EQ(4, async_join(&a));
}

TEST_F(raw, ids_unique)
{
	struct async_access a;
	struct emu_req r;
	uint64_t ids[8];
	int i, j;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < 8; i++) {
		test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, i, 1, false, &r);
		ids[i] = r.hdr.id;
		EXPECT_EQ((uint64_t)i, r.hdr.offset);
		EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, "x", 1));
		EXPECT_EQ(1, async_join(&a));
		for (j = 0; j < i; j++)
			EXPECT_NE(ids[j], ids[i]);
	}
}

/* The emulator's errno is what the VMM's syscall fails with. */
TEST_F(raw, error_propagates)
{
	struct async_access a;
	struct emu_req r;

	SKIP_IF_SETUP_SKIPPED();
	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0, 4, false, &r);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, EIO, NULL, 0));
	EXPECT_EQ(-EIO, async_join(&a));

	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 8, 4, true, &r);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, EACCES, NULL, 0));
	EXPECT_EQ(-EACCES, async_join(&a));

	test_vmm_request(self, &a, VFIO_PCI_CONFIG_REGION_INDEX, 0x40, 1, false, &r);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, ENODEV, NULL, 0));
	EXPECT_EQ(-ENODEV, async_join(&a));
}

TEST_F(raw, reply_unknown_id)
{
	struct async_access a;
	struct emu_req r;

	SKIP_IF_SETUP_SKIPPED();
	/* Nothing in flight at all. */
	EXPECT_EQ(-ENOENT, emu_reply(self->rig.ctl, 12345, 0, NULL, 0));

	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0, 1, false, &r);
	EXPECT_EQ(-ENOENT, emu_reply(self->rig.ctl, r.hdr.id + 1000, 0, "z", 1));
	EXPECT_EQ(-ENOENT, emu_reply(self->rig.ctl, r.hdr.id - 1, 0, "z", 1));
	/* The request is still waiting and the right id completes it. */
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, "a", 1));
	EXPECT_EQ(1, async_join(&a));
	EXPECT_EQ('a', a.buf[0]);
	/* A second reply to the same id: nobody waits for it any more. */
	EXPECT_EQ(-ENOENT, emu_reply(self->rig.ctl, r.hdr.id, 0, "a", 1));
}

/* Malformed reply headers are refused and change nothing. */
TEST_F(raw, reply_malformed)
{
	uint8_t buf[sizeof(struct muser_reply) + 2 * MUSER_MAX_DATA]
		__attribute__((aligned(8)));
	struct muser_reply *rep = (struct muser_reply *)buf;
	struct async_access a;
	struct emu_req r;

	SKIP_IF_SETUP_SKIPPED();
	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0, 4, false, &r);
	memset(buf, 0, sizeof(buf));

	/* Shorter than a header. */
	rep->id = r.hdr.id;
	rep->len = 4;
	EXPECT_EQ(-1, write(self->rig.ctl, buf, sizeof(*rep) - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, write(self->rig.ctl, buf, 1));
	EXPECT_EQ(EINVAL, errno);
	/* Header announces data that is not there. */
	EXPECT_EQ(-1, write(self->rig.ctl, buf, sizeof(*rep)));
	EXPECT_EQ(EINVAL, errno);
	/* Data not padded to MUSER_ALIGN. */
	EXPECT_EQ(-1, write(self->rig.ctl, buf, sizeof(*rep) + 4));
	EXPECT_EQ(EINVAL, errno);
	/* More data than any request carries. */
	rep->len = MUSER_MAX_DATA + 8;
	EXPECT_EQ(-1, write(self->rig.ctl, buf, sizeof(*rep) + MUSER_MAX_DATA + 8));
	EXPECT_EQ(EINVAL, errno);
	/* Negative error. */
	rep->len = 0;
	rep->error = -EIO;
	EXPECT_EQ(-1, write(self->rig.ctl, buf, sizeof(*rep)));
	EXPECT_EQ(EINVAL, errno);
	/* An error with data. */
	rep->len = 4;
	rep->error = EIO;
	EXPECT_EQ(-1, write(self->rig.ctl, buf, sizeof(*rep) + 8));
	EXPECT_EQ(EINVAL, errno);

	/* None of that touched the request. */
	EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, "abcd", 4));
	EXPECT_EQ(4, async_join(&a));
	EXPECT_EQ(0, memcmp(a.buf, "abcd", 4));
}

/*
 * A well-formed reply whose len does not match the request: EINVAL for the
 * emulator. The VMM's access then fails (EIO), or if the kernel kept the
 * request, a correct reply still completes it.
 */
TEST_F(raw, reply_wrong_len)
{
	struct {
		uint32_t region;
		size_t len;
		bool write;
		uint32_t bad_len;
	} cases[] = {
		{ VFIO_PCI_BAR0_REGION_INDEX, 4, false, 2 },	/* short */
		{ VFIO_PCI_BAR0_REGION_INDEX, 4, false, 8 },	/* long */
		{ VFIO_PCI_BAR0_REGION_INDEX, 4, false, 0 },	/* none */
		{ VFIO_PCI_BAR0_REGION_INDEX, 4, true, 4 },	/* data for a write */
		{ VFIO_PCI_CONFIG_REGION_INDEX, 1, false, 8 },
	};
	uint8_t junk[8] = "01234567";
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct async_access a;
		struct emu_req r;
		ssize_t ret;

		memset(a.buf, 0, sizeof(a.buf));
		ASSERT_EQ(0, async_start(&a, &self->rig.c, cases[i].region, 0,
					 cases[i].len, cases[i].write));
		ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r, WAIT_MS));
		EXPECT_EQ(-EINVAL, emu_reply(self->rig.ctl, r.hdr.id, 0, junk,
					     cases[i].bad_len))
			TH_LOG("case %zu", i);
		ret = emu_reply(self->rig.ctl, r.hdr.id, 0,
				cases[i].write ? NULL : "abcd",
				cases[i].write ? 0 : cases[i].len);
		if (ret == -ENOENT) {
			/* The bad reply settled it: the VMM must see an error. */
			EXPECT_EQ(-EIO, async_join(&a)) TH_LOG("case %zu", i);
		} else {
			EXPECT_LT(0, ret) TH_LOG("case %zu", i);
			EXPECT_EQ(cases[i].len, async_join(&a))
				TH_LOG("case %zu", i);
		}
	}
}

/* Several requests in flight, answered in reverse order. */
TEST_F(raw, out_of_order)
{
	enum { N = 4 };
	struct async_access a[N];
	struct emu_req reqs[N];
	int i, j;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, async_start(&a[i], &self->rig.c,
					 VFIO_PCI_BAR2_REGION_INDEX,
					 0x100 * i, 8, false));
	ASSERT_EQ(N, emu_read_n(self->rig.ctl, reqs, N, WAIT_MS));
	for (i = 0; i < N; i++)
		for (j = 0; j < i; j++)
			EXPECT_NE(reqs[i].hdr.id, reqs[j].hdr.id);
	for (i = N - 1; i >= 0; i--) {
		uint8_t data[8];

		for (j = 0; j < 8; j++)
			data[j] = emu_pattern(reqs[i].hdr.region,
					      reqs[i].hdr.offset + j);
		EXPECT_EQ(sizeof(struct muser_reply) + 8,
			  emu_reply(self->rig.ctl, reqs[i].hdr.id, 0, data, 8));
	}
	for (i = 0; i < N; i++) {
		EXPECT_EQ(8, async_join(&a[i]));
		for (j = 0; j < 8; j++)
			EXPECT_EQ(emu_pattern(VFIO_PCI_BAR2_REGION_INDEX,
					      0x100 * i + j), a[i].buf[j])
				TH_LOG("access %d byte %d", i, j);
	}
}

/* Several replies in one write(); an invalid one stops consumption. */
TEST_F(raw, batched_replies)
{
	enum { N = 3 };
	uint8_t buf[N * (sizeof(struct muser_reply) + 8)]
		__attribute__((aligned(8)));
	const size_t one = sizeof(struct muser_reply) + 8;
	struct async_access a[N];
	struct emu_req reqs[N];
	int i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, async_start(&a[i], &self->rig.c,
					 VFIO_PCI_BAR0_REGION_INDEX, 8 * i, 4,
					 false));
	ASSERT_EQ(N, emu_read_n(self->rig.ctl, reqs, N, WAIT_MS));

	memset(buf, 0, sizeof(buf));
	for (i = 0; i < N; i++) {
		struct muser_reply *rep = (void *)(buf + i * one);

		rep->id = reqs[i].hdr.id;
		rep->len = 4;
		memset(rep + 1, 'A' + reqs[i].hdr.offset / 8, 4);
	}
	/* The second reply's id is wrong: only the first is consumed. */
	((struct muser_reply *)(buf + one))->id += 1000;
	EXPECT_EQ(one, write(self->rig.ctl, buf, sizeof(buf)));
	((struct muser_reply *)(buf + one))->id -= 1000;
	/* The rest, in one go. */
	EXPECT_EQ(2 * one, write(self->rig.ctl, buf + one, 2 * one));
	for (i = 0; i < N; i++) {
		EXPECT_EQ(4, async_join(&a[i]));
		EXPECT_EQ('A' + i, a[i].buf[0]);
		EXPECT_EQ('A' + i, a[i].buf[3]);
	}
}

/* Accesses bigger than MUSER_MAX_DATA arrive as several requests. */
TEST_F(raw, large_access_split)
{
	static uint8_t data[MUSER_MAX_DATA];
	struct async_access a;
	struct emu_req r;
	size_t done = 0;
	int n = 0, j;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, async_start(&a, &self->rig.c, VFIO_PCI_BAR2_REGION_INDEX,
				 0x10, 2 * MUSER_MAX_DATA, false));
	while (done < 2 * MUSER_MAX_DATA) {
		ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r, WAIT_MS)) TH_LOG("after %zu", done);
		ASSERT_EQ(MUSER_REQ_READ, r.hdr.type);
		ASSERT_EQ(0x10 + done, r.hdr.offset);
		ASSERT_GE(MUSER_MAX_DATA, r.hdr.len);
		ASSERT_LT(0, r.hdr.len);
		for (j = 0; j < (int)r.hdr.len; j++)
			data[j] = emu_pattern(r.hdr.region, r.hdr.offset + j);
		ASSERT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, data,
				       r.hdr.len));
		done += r.hdr.len;
		n++;
	}
	EXPECT_LE(2, n);
	EXPECT_EQ(2 * MUSER_MAX_DATA, async_join(&a));
	for (j = 0; j < 2 * MUSER_MAX_DATA; j++)
		if (a.buf[j] != emu_pattern(VFIO_PCI_BAR2_REGION_INDEX,
					    0x10 + j)) {
			EXPECT_EQ(emu_pattern(VFIO_PCI_BAR2_REGION_INDEX,
					      0x10 + j), a.buf[j])
				TH_LOG("byte %d", j);
			break;
		}

	/* A large write carries all its data. */
	memset(a.buf, 0x77, 2 * MUSER_MAX_DATA);
	ASSERT_EQ(0, async_start(&a, &self->rig.c, VFIO_PCI_BAR2_REGION_INDEX,
				 0, MUSER_MAX_DATA + 8, true));
	done = 0;
	while (done < MUSER_MAX_DATA + 8) {
		ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r, WAIT_MS));
		ASSERT_EQ(MUSER_REQ_WRITE, r.hdr.type);
		ASSERT_EQ(done, r.hdr.offset);
		ASSERT_EQ(r.hdr.len, r.hdr.data_len);
		EXPECT_EQ(0x77, r.data[0]);
		EXPECT_EQ(0x77, r.data[r.hdr.len - 1]);
		ASSERT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, NULL, 0));
		done += r.hdr.len;
	}
	EXPECT_EQ(MUSER_MAX_DATA + 8, async_join(&a));
}

/*
 * An emulator that goes away with a request read but unanswered: the next
 * emulator gets it again, flagged MUSER_REQ_F_REPLAYED, and its answer
 * reaches the VMM. Once by close(), once by MUSER_IOC_DETACH.
 */

TEST_F(raw, poll_and_nonblock)
{
	struct pollfd pfd = { .events = POLLIN };
	uint8_t small[64];
	struct async_access a;
	struct emu_req r;
	int nb;

	SKIP_IF_SETUP_SKIPPED();
	/* Nothing pending: no POLLIN, and O_NONBLOCK read says EAGAIN. */
	pfd.fd = self->rig.ctl;
	EXPECT_EQ(0, poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN));
	nb = fcntl(self->rig.ctl, F_GETFL);
	ASSERT_EQ(0, fcntl(self->rig.ctl, F_SETFL, nb | O_NONBLOCK));
	EXPECT_EQ(-EAGAIN, emu_read(self->rig.ctl, &r, 1));

	ASSERT_EQ(0, async_start(&a, &self->rig.c, VFIO_PCI_BAR0_REGION_INDEX,
				 4, 4, false));
	EXPECT_EQ(1, poll(&pfd, 1, WAIT_MS));
	EXPECT_TRUE(pfd.revents & POLLIN);
	/* A buffer smaller than MUSER_READ_BUF_MIN is refused. */
	EXPECT_EQ(-1, read(self->rig.ctl, small, sizeof(small)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(1, emu_read(self->rig.ctl, &r, 1));
	/* Delivered: no longer pending. */
	EXPECT_EQ(0, poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN));
	EXPECT_EQ(-EAGAIN, emu_read(self->rig.ctl, &r, 1));
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, "1234", 4));
	EXPECT_EQ(4, async_join(&a));

	/* A file that is not attached gets no requests. */
	nb = ctl_open(self->rig.uuid, O_NONBLOCK);
	ASSERT_LE(0, nb);
	pfd.fd = nb;
	pfd.revents = 0;
	EXPECT_LE(0, poll(&pfd, 1, 0));
	EXPECT_FALSE(pfd.revents & POLLIN);
	EXPECT_GT(0, emu_read(nb, &r, 1));
	close(nb);
}

TEST_F(raw, reset_request)
{
	struct reset_arg ra = { .fd = self->rig.c.device };
	void *(*fn)(void *) = reset_fn;
	struct emu_req r;
	pthread_t t;
	int ret;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, pthread_create(&t, NULL, fn, &ra));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r, WAIT_MS));
	EXPECT_EQ(MUSER_REQ_RESET, r.hdr.type);
	EXPECT_EQ(0, r.hdr.data_len);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, NULL, 0));
	pthread_join(t, NULL);
	EXPECT_EQ(0, ra.ret);

	/* A failed reset fails the ioctl with the emulator's errno. */
	ASSERT_EQ(0, pthread_create(&t, NULL, fn, &ra));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r, WAIT_MS));
	EXPECT_EQ(MUSER_REQ_RESET, r.hdr.type);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, EIO, NULL, 0));
	pthread_join(t, NULL);
	EXPECT_EQ(-EIO, ra.ret);

	/* Data in a reset reply is refused. */
	ASSERT_EQ(0, pthread_create(&t, NULL, fn, &ra));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r, WAIT_MS));
	ret = emu_reply(self->rig.ctl, r.hdr.id, 0, "12345678", 8);
	EXPECT_EQ(-EINVAL, ret);
	if (ret == -EINVAL)
		emu_reply(self->rig.ctl, r.hdr.id, 0, NULL, 0);
	pthread_join(t, NULL);
}


struct stress_arg {
	pthread_t thread;
	struct vfio_client *c;
	unsigned int seed;
	int iterations;
	int bad;
	char what[128];
};

static void *stress_fn(void *p)
{
	static const int regions[] = { VFIO_PCI_BAR0_REGION_INDEX,
				       VFIO_PCI_BAR2_REGION_INDEX,
				       VFIO_PCI_CONFIG_REGION_INDEX };
	static const uint64_t sizes[] = { 0x1000, 0x10000, 256 };
	struct stress_arg *s = p;
	uint8_t buf[64];
	int i, j;

	for (i = 0; i < s->iterations && !s->bad; i++) {
		int k = rand_r(&s->seed) % 3;
		size_t len = 1 + rand_r(&s->seed) % sizeof(buf);
		uint64_t off = rand_r(&s->seed) % (sizes[k] - len + 1);
		bool wr = rand_r(&s->seed) % 4 == 0;
		ssize_t n;

		if (wr) {
			memset(buf, i, len);
			n = region_write(s->c, regions[k], off, buf, len);
		} else {
			n = region_read(s->c, regions[k], off, buf, len);
		}
		if (n != (ssize_t)len) {
			snprintf(s->what, sizeof(s->what),
				 "%s region %d off 0x%llx len %zu: %zd",
				 wr ? "write" : "read", regions[k],
				 (unsigned long long)off, len, n);
			s->bad++;
			break;
		}
		for (j = 0; !wr && j < (int)len; j++) {
			if (buf[j] != emu_pattern(regions[k], off + j)) {
				snprintf(s->what, sizeof(s->what),
					 "read region %d off 0x%llx byte %d: 0x%02x",
					 regions[k], (unsigned long long)off, j,
					 buf[j]);
				s->bad++;
				break;
			}
		}
	}
	return NULL;
}

/* Several VMM threads at once against a background emulator. */
TEST_F_TIMEOUT(raw, concurrent_stress, 120)
{
	enum { THREADS = 4, ITERATIONS = 250 };
	struct stress_arg st[THREADS];
	struct emu_thread emu;
	int i, total;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, emu_thread_start(&emu, self->rig.ctl));
	for (i = 0; i < THREADS; i++) {
		memset(&st[i], 0, sizeof(st[i]));
		st[i].c = &self->rig.c;
		st[i].seed = 1234 + i;
		st[i].iterations = ITERATIONS;
		ASSERT_EQ(0, pthread_create(&st[i].thread, NULL, stress_fn,
					    &st[i]));
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(st[i].thread, NULL);
		EXPECT_EQ(0, st[i].bad) TH_LOG("thread %d: %s", i, st[i].what);
	}
	emu_thread_stop(&emu);
	EXPECT_EQ(0, emu.errors);
	EXPECT_EQ(0, emu.nr_replayed);
	total = emu.nr_read + emu.nr_write;
	EXPECT_EQ(THREADS * ITERATIONS, total);
}

/*
 * A VMM killed while it waits cancels its request: delivered or not, the
 * emulator never has to answer it, and a late answer gets ENOENT.
 */
TEST_F(raw, vmm_killed_while_waiting)
{
	struct async_access a;
	struct emu_req r;
	int round, status, fl;
	pid_t pid;

	SKIP_IF_SETUP_SKIPPED();
	for (round = 0; round < 2; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			uint8_t b[4];

			/* The device fd is shared with the parent. */
			pread(self->rig.c.device, b, 4,
			      MUSER_REGION_OFFSET(VFIO_PCI_BAR0_REGION_INDEX) + 0x40);
			_exit(0);
		}
		if (round == 0) {
			/* Delivered, then the VMM dies. */
			ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r, WAIT_MS));
			EXPECT_EQ(0x40, r.hdr.offset);
			kill(pid, SIGKILL);
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			EXPECT_TRUE(WIFSIGNALED(status));
			EXPECT_EQ(-ENOENT, emu_reply(self->rig.ctl, r.hdr.id, 0,
						     "abcd", 4));
		} else {
			/* The VMM dies before the emulator reads. */
			struct pollfd pfd = { .fd = self->rig.ctl, .events = POLLIN };

			EXPECT_EQ(1, poll(&pfd, 1, WAIT_MS));
			kill(pid, SIGKILL);
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			EXPECT_TRUE(WIFSIGNALED(status));
			fl = fcntl(self->rig.ctl, F_GETFL);
			fcntl(self->rig.ctl, F_SETFL, fl | O_NONBLOCK);
			EXPECT_EQ(-EAGAIN, emu_read(self->rig.ctl, &r, 1))
				TH_LOG("a cancelled request was delivered");
			fcntl(self->rig.ctl, F_SETFL, fl);
		}
	}
	/* The device still works for the surviving VMM. */
	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0, 4, false, &r);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, "abcd", 4));
	EXPECT_EQ(4, async_join(&a));
}

/* An unanswered request fails with ETIMEDOUT; a late reply gets ENOENT. */
TEST_F(raw, unanswered_request_times_out)
{
	struct async_access a;
	struct emu_req r;
	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, param_get("timeout_ms", &self->rig.saved_timeout));
	ASSERT_EQ(0, param_set("timeout_ms", 500));
	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0, 4, false, &r);
	EXPECT_EQ(-ETIMEDOUT, async_join(&a));
	EXPECT_LE(400, a.elapsed_ms);
	EXPECT_GE(5000, a.elapsed_ms);
	EXPECT_EQ(-ENOENT, emu_reply(self->rig.ctl, r.hdr.id, 0, "abcd", 4));
	EXPECT_EQ(0, param_set("timeout_ms", self->rig.saved_timeout));

	/* The device keeps working. */
	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0, 4, false, &r);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, "abcd", 4));
	EXPECT_EQ(4, async_join(&a));
}

TEST_HARNESS_MAIN
