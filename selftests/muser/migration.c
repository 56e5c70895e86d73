// SPDX-License-Identifier: GPL-2.0
/*
 * Migration v2 through muser.ko, as a VMM (QEMU 8.0 and later) drives it
 * and as an attacker would: VFIO_DEVICE_FEATURE MIGRATION, MIG_DEVICE_STATE
 * and MIG_DATA_SIZE, the data fds and VFIO_MIG_GET_PRECOPY_INFO, against
 * the gpio sample with --migration (a libmuser device) and against a raw
 * emulator answering the migration region with hostile values.
 *
 *   no_region        a device without a migration region: ENOTTY, as
 *                    vfio-pci's non-migratable devices answer
 *   round_trip       source STOP_COPY read to EOF, destination RESUMING
 *                    written, STOP, RUNNING: the counter carries on
 *   every_arc        every (from, to) of the state machine, bad states,
 *                    fds only where a session starts, GET after each
 *   data_fd_abuse    wrong direction, pread, tiny reads, PRECOPY_INFO out
 *                    of place, a session ended (ENODEV), the device closed
 *                    and the mdev removed under an open data fd
 *   two_threads      one thread reading the data fd while another moves
 *                    the state and resets the device
 *   hostile_region   an emulator answering offsets and sizes outside its
 *                    region, errors and a zero size: EIO or its error, a
 *                    log line, no hang
 *   fuzz             seeded random features, states, data fd calls, resets
 *                    and reopens (MUSER_FUZZ_SECONDS/CALLS/SEED)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "harness.h"
#include "fixture.h"

#define BAR2		VFIO_PCI_BAR2_REGION_INDEX
#define MIG		MUSER_NUM_REGIONS

/* Defined here for 6.1's headers, which have neither (values are uapi). */
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY		(1 << 2)
#define VFIO_DEVICE_STATE_PRE_COPY	6
#define VFIO_MIG_GET_PRECOPY_INFO	_IO(VFIO_TYPE, VFIO_BASE + 21)
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#endif
#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE	9
#endif

struct feat {
	struct vfio_device_feature hdr;
	uint64_t data[2];
};

static int feature(int device, uint32_t flags, void *data, size_t len)
{
	struct feat f = { .hdr.argsz = sizeof(f.hdr) + len, .hdr.flags = flags };

	if (data)
		memcpy(f.data, data, len);
	if (ioctl(device, VFIO_DEVICE_FEATURE, &f) < 0)
		return -errno;
	if (data)
		memcpy(data, f.data, len);
	return 0;
}

static int mig_flags(int device, uint64_t *flags)
{
	*flags = 0;
	return feature(device, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
		       flags, 8);
}

/* Set the state: 0 and the data fd (or -1) in *@fd, or -errno. */
static int set_state(int device, uint32_t state, int *fd)
{
	struct vfio_device_feature_mig_state s = { .device_state = state, .data_fd = -2 };
	int ret;

	ret = feature(device, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		      &s, sizeof(s));
	if (fd)
		*fd = ret ? -1 : s.data_fd;
	else if (!ret && s.data_fd >= 0)
		close(s.data_fd);
	return ret;
}

static int get_state(int device, uint32_t *state)
{
	struct vfio_device_feature_mig_state s = { 0 };
	int ret;

	ret = feature(device, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		      &s, sizeof(s));
	*state = s.device_state;
	return ret;
}

static int data_size(int device, uint64_t *len)
{
	return feature(device, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
		       len, 8);
}

/* A byte of BAR2 offset 0: the gpio sample's counter, every third read. */
static int counter(struct vfio_client *c)
{
	uint8_t v;

	return region_read(c, BAR2, 0, &v, 1) == 1 ? v : -1;
}

static void set_bar2(struct vfio_client *c)
{
	uint32_t bar = 0xe0000000;
	uint16_t cmd = 2;

	region_write(c, VFIO_PCI_CONFIG_REGION_INDEX, 0x18, &bar, 4);
	region_write(c, VFIO_PCI_CONFIG_REGION_INDEX, 4, &cmd, 2);
}

/* Read a data fd to its end; the bytes in a malloc()ed buffer. */
static ssize_t read_all(int fd, uint8_t **out)
{
	size_t len = 0, cap = 0;
	uint8_t *buf = NULL;
	ssize_t n;

	for (;;) {
		if (cap - len < 65536) {
			cap = cap * 2 + 65536;
			buf = realloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			free(buf);
			return -errno;
		}
		if (!n)
			break;
		len += n;
	}
	*out = buf;
	return len;
}

#define MIG_ARGS	"--migration"

FIXTURE(mig) {
	struct rig src, dst;
};

FIXTURE_SETUP(mig)
{
	rig_init(&self->dst);
	RIG_SETUP(&self->src, NULL, RIG_NO_CTL);
	ASSERT_EQ(0, rig_start_emulator(&self->src, NULL, MIG_ARGS));
}

FIXTURE_TEARDOWN(mig)
{
	RIG_TEARDOWN(&self->dst);
	RIG_TEARDOWN(&self->src);
}

static void open_dst(struct __test_metadata *_metadata, struct rig *dst)
{
	const char *step = "?";
	int ret;

	ret = rig_setup(dst, _metadata->name, NULL, RIG_NO_CTL, &step);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", step, strerror(-ret));
	ASSERT_EQ(0, rig_start_emulator(dst, NULL, MIG_ARGS));
}

TEST_F(mig, round_trip)
{
	int dev = self->src.c.device, fd, i;
	uint64_t flags, size;
	uint8_t *stream;
	uint32_t state;
	ssize_t len;

	ASSERT_EQ(0, mig_flags(dev, &flags));
	ASSERT_TRUE(flags & VFIO_MIGRATION_STOP_COPY);
	ASSERT_EQ(0, flags & VFIO_MIGRATION_P2P);
	ASSERT_EQ(0, data_size(dev, &size));
	ASSERT_LT(100, size);
	set_bar2(&self->src.c);
	for (i = 0; i < 6; i++)
		ASSERT_EQ(i / 3, counter(&self->src.c));

	ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_state(dev, &state));
	ASSERT_EQ(VFIO_DEVICE_STATE_STOP_COPY, state);
	ASSERT_EQ(0, data_size(dev, &size));
	len = read_all(fd, &stream);
	ASSERT_EQ((ssize_t)size, len);
	ASSERT_EQ(0, read(fd, &state, 4));	/* EOF stays EOF */
	ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(-1, read(fd, &state, 4));
	ASSERT_EQ(ENODEV, errno);
	close(fd);

	open_dst(_metadata, &self->dst);
	dev = self->dst.c.device;
	ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_LE(0, fd);
	/* in two writes, the second one odd-sized */
	ASSERT_EQ(1000, write(fd, stream, 1000));
	ASSERT_EQ(len - 1000, write(fd, stream + 1000, len - 1000));
	close(fd);	/* QEMU 10 with -S closes it before the commit */
	ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_RUNNING, NULL));
	for (i = 6; i < 12; i++)
		ASSERT_EQ(i / 3, counter(&self->dst.c));
	free(stream);
	/* the source runs again, as after a failed migration */
	ASSERT_EQ(0, set_state(self->src.c.device, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(2, counter(&self->src.c));
}

TEST_F(mig, every_arc)
{
	static const uint32_t bad[] = { 8, 9, 100, 0x7fffffff, 0xffffffff };
	int dev = self->src.c.device, fd;
	uint32_t from, to, state, nstates;
	uint64_t flags;
	unsigned int i;

	ASSERT_EQ(0, mig_flags(dev, &flags));
	nstates = flags & VFIO_MIGRATION_PRE_COPY ? 7 : 6;
	for (from = 0; from < 8; from++) {
		for (to = 0; to < 8; to++) {
			bool from_ok = from != VFIO_DEVICE_STATE_ERROR && from < nstates &&
				       from != VFIO_DEVICE_STATE_RUNNING_P2P;
			bool to_ok = to != VFIO_DEVICE_STATE_ERROR && to < nstates &&
				     to != VFIO_DEVICE_STATE_RUNNING_P2P;
			int ret;

			/* a reset: RUNNING from anywhere, RESUMING included */
			ASSERT_EQ(0, ioctl(dev, VFIO_DEVICE_RESET));
			ret = set_state(dev, from, &fd);
			if (!from_ok) {
				ASSERT_EQ(-EINVAL, ret) TH_LOG("state %u", from);
				continue;
			}
			ASSERT_EQ(0, ret) TH_LOG("RUNNING -> %u", from);
			if (fd >= 0)
				close(fd);
			/*
			 * STOP_COPY -> PRE_COPY is the one arc refused; leaving
			 * RESUMING without a stream fails (the emulator's EINVAL)
			 */
			ret = set_state(dev, to, &fd);
			if (!to_ok || (from == VFIO_DEVICE_STATE_STOP_COPY &&
				       to == VFIO_DEVICE_STATE_PRE_COPY) ||
			    (from == VFIO_DEVICE_STATE_RESUMING && to != from)) {
				ASSERT_EQ(-EINVAL, ret) TH_LOG("%u -> %u", from, to);
				ASSERT_EQ(0, get_state(dev, &state));
				ASSERT_EQ(from, state);
				continue;
			}
			ASSERT_EQ(0, ret) TH_LOG("%u -> %u", from, to);
			ASSERT_EQ(0, get_state(dev, &state));
			ASSERT_EQ(to, state);
			/* a data fd exactly where a session starts */
			if (to == from || to == VFIO_DEVICE_STATE_RUNNING ||
			    to == VFIO_DEVICE_STATE_STOP ||
			    (from == VFIO_DEVICE_STATE_PRE_COPY &&
			     to == VFIO_DEVICE_STATE_STOP_COPY)) {
				ASSERT_EQ(-1, fd) TH_LOG("%u -> %u gave fd %d", from, to, fd);
			} else {
				ASSERT_LE(0, fd) TH_LOG("%u -> %u gave no fd", from, to);
			}
			if (fd >= 0)
				close(fd);
		}
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(-EINVAL, set_state(dev, bad[i], NULL));
	/* a RESUMING left without a stream fails, and stays RESUMING */
	ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_RESUMING, NULL));
	ASSERT_NE(0, set_state(dev, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, get_state(dev, &state));
	ASSERT_EQ(VFIO_DEVICE_STATE_RESUMING, state);
	/* a reset puts it back to RUNNING */
	ASSERT_EQ(0, ioctl(dev, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, get_state(dev, &state));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state);
	ASSERT_EQ(0, counter(&self->src.c));
}

TEST_F(mig, data_fd_abuse)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };
	int dev = self->src.c.device, fd, rfd;
	uint8_t b[16], big[256];
	void *volatile bad_ptr = (void *)16;
	uint64_t flags;
	ssize_t n, total = 0;

	ASSERT_EQ(0, mig_flags(dev, &flags));
	if (flags & VFIO_MIGRATION_PRE_COPY) {
		ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_PRE_COPY, &fd));
		ASSERT_EQ(0, ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &info));
		ASSERT_EQ(0, info.initial_bytes);
		ASSERT_EQ(0, info.dirty_bytes);
		ASSERT_EQ(-1, read(fd, b, sizeof(b)));	/* nothing before STOP_COPY */
		ASSERT_EQ(ENOMSG, errno);
		info.argsz = 8;
		ASSERT_EQ(-1, ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &info));
		ASSERT_EQ(EINVAL, errno);
		info.argsz = sizeof(info);
		ASSERT_EQ(-1, ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, NULL));
		ASSERT_EQ(EFAULT, errno);
		ASSERT_EQ(-1, ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO + 1, &info));
		ASSERT_EQ(ENOTTY, errno);
		/* PRE_COPY -> STOP_COPY: the same fd goes on */
		ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_STOP_COPY, NULL));
		ASSERT_EQ(-1, ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, &info));
		ASSERT_EQ(EINVAL, errno);
	} else {
		ASSERT_EQ(-EINVAL, set_state(dev, VFIO_DEVICE_STATE_PRE_COPY, NULL));
		ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	}
	ASSERT_EQ(-1, write(fd, b, 4));
	ASSERT_EQ(EBADF, errno);
	ASSERT_EQ(-1, pread(fd, b, 4, 0));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, lseek(fd, 0, SEEK_SET));
	ASSERT_EQ(0, read(fd, b, 0));
	ASSERT_EQ(-1, read(fd, bad_ptr, 16));
	ASSERT_EQ(EFAULT, errno);
	/* a byte at a time, then the rest: nothing lost to the EFAULT */
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(1, read(fd, b, 1));
		total++;
	}
	while ((n = read(fd, b, sizeof(b))) > 0)
		total += n;
	ASSERT_EQ(0, n);
	ASSERT_LT(100, total);

	/* a resume fd is write-only */
	ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_RESUMING, &rfd));
	ASSERT_EQ(-1, read(rfd, b, 4));
	ASSERT_EQ(EBADF, errno);
	ASSERT_EQ(-1, write(rfd, bad_ptr, 16));
	ASSERT_EQ(EFAULT, errno);
	/* not a stream: taken until its header is complete, then refused */
	memset(big, 0x77, sizeof(big));
	ASSERT_EQ(16, write(rfd, big, 16));
	ASSERT_EQ(-EINVAL, set_state(dev, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(-1, write(rfd, big, sizeof(big)));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-EINVAL, set_state(dev, VFIO_DEVICE_STATE_STOP, NULL));

	/* the VMM goes with both fds open: they are dead, and harmless */
	vfio_client_close(&self->src.c);
	ASSERT_EQ(-1, read(fd, b, 4));
	ASSERT_EQ(ENODEV, errno);
	ASSERT_EQ(-1, write(rfd, b, 4));
	ASSERT_EQ(ENODEV, errno);
	/* and the mdev goes too, with them still open */
	ASSERT_EQ(0, sample_stop(&self->src.emu));
	ASSERT_EQ(0, mdev_remove(self->src.uuid));
	self->src.created = false;
	ASSERT_EQ(-1, read(fd, b, 4));
	ASSERT_EQ(ENODEV, errno);
	close(fd);
	close(rfd);
}

struct racer {
	int fd;
	volatile int stop;
	unsigned long reads;
};

static void *reader(void *arg)
{
	struct racer *r = arg;
	uint8_t buf[4096];

	while (!r->stop) {
		if (read(r->fd, buf, sizeof(buf)) >= 0)
			r->reads++;
	}
	return NULL;
}

TEST_F(mig, two_threads)
{
	int dev = self->src.c.device, round;
	struct racer r = { 0 };
	pthread_t t;
	uint32_t state;

	for (round = 0; round < 20; round++) {
		ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_STOP_COPY, &r.fd));
		r.stop = 0;
		ASSERT_EQ(0, pthread_create(&t, NULL, reader, &r));
		switch (round % 3) {
		case 0:
			ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_STOP, NULL));
			break;
		case 1:
			ASSERT_EQ(0, ioctl(dev, VFIO_DEVICE_RESET));
			break;
		default:
			ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_RUNNING, NULL));
			break;
		}
		r.stop = 1;
		pthread_join(t, NULL);
		close(r.fd);
		ASSERT_EQ(0, set_state(dev, VFIO_DEVICE_STATE_RUNNING, NULL));
	}
	ASSERT_EQ(0, get_state(dev, &state));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, state);
	TH_LOG("%lu reads raced 20 sessions", r.reads);
}

/*
 * A seeded fuzzer (MUSER_FUZZ_SECONDS/CALLS/SEED): the migration features
 * with random flags, argsz and states, random reads, writes and
 * PRECOPY_INFO on whatever data fds it holds, resets, and VMM closes and
 * reopens. Every call must come back (the harness's timeout), and the
 * device must still work and migrate afterwards.
 */
TEST_F_TIMEOUT(mig, fuzz, 600)
{
	static const char *const names[] = { "feature", "set_state", "read",
					     "write", "precopy_info", "reset",
					     "reopen" };
	unsigned long n[7] = { 0 }, calls = 0;
	struct fuzz_budget b;
	int fds[4] = { -1, -1, -1, -1 };
	uint8_t buf[8192];
	const char *step;
	uint8_t *stream;
	uint64_t s;
	int i, fd;

	fuzz_budget_init(&b, "migration", 10);
	s = b.seed;
	while (fuzz_done(&b, calls, now_ms() - b.t0) < 1) {
		int dev = self->src.c.device, op = below(&s, 20), *slot = &fds[below(&s, 4)];
		struct feat f;

		calls++;
		if (op < 5) {	/* any feature, any flags, any argsz */
			uint32_t id = chance(&s, 80) ? below(&s, 12) : edge32(&s, 9);
			uint32_t ops = (uint32_t)below(&s, 8) << 16;

			memset(&f, 0, sizeof(f));
			f.hdr.argsz = chance(&s, 70) ? sizeof(f.hdr) + 8 * below(&s, 3) :
						       edge32(&s, sizeof(f));
			if (f.hdr.argsz > sizeof(f))
				f.hdr.argsz = sizeof(f);
			f.hdr.flags = chance(&s, 90) ? ops | id : edge32(&s, ops | id);
			f.data[0] = chance(&s, 50) ? below(&s, 9) : rnd(&s);
			f.data[1] = rnd(&s);
			if (!ioctl(dev, VFIO_DEVICE_FEATURE, &f) &&
			    (f.hdr.flags & ~VFIO_DEVICE_FEATURE_MASK) == VFIO_DEVICE_FEATURE_SET &&
			    (f.hdr.flags & VFIO_DEVICE_FEATURE_MASK) == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) {
				struct vfio_device_feature_mig_state *m = (void *)f.data;

				if (m->data_fd >= 0) {
					if (*slot >= 0)
						close(*slot);
					*slot = m->data_fd;
				}
			}
			n[0]++;
		} else if (op < 9) {
			if (!set_state(dev, chance(&s, 90) ? 1 + below(&s, 6) : edge32(&s, 4), &fd) &&
			    fd >= 0) {
				if (*slot >= 0)
					close(*slot);
				*slot = fd;
			}
			n[1]++;
		} else if (op < 13) {
			if (*slot >= 0)
				(void)!read(*slot, buf, chance(&s, 50) ? below(&s, 64) : below(&s, sizeof(buf)));
			n[2]++;
		} else if (op < 16) {
			if (*slot >= 0) {
				for (i = 0; i < 64; i++)
					buf[i] = rnd(&s);
				(void)!write(*slot, buf, chance(&s, 50) ? below(&s, 64) : below(&s, sizeof(buf)));
			}
			n[3]++;
		} else if (op < 18) {
			struct vfio_precopy_info pi = { .argsz = edge32(&s, sizeof(pi)) };

			if (*slot >= 0)
				(void)!ioctl(*slot, VFIO_MIG_GET_PRECOPY_INFO, &pi);
			n[4]++;
		} else if (op < 19) {
			(void)!ioctl(dev, VFIO_DEVICE_RESET);
			n[5]++;
		} else {
			vfio_client_close(&self->src.c);
			ASSERT_EQ(0, vfio_client_open(&self->src.c, self->src.uuid, &step)) TH_LOG("%s", step);
			n[6]++;
		}
	}
	fuzz_report("migration", names, n, 7, calls, calls, now_ms() - b.t0);
	for (i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* still a device, and still migratable */
	ASSERT_EQ(0, ioctl(self->src.c.device, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, set_state(self->src.c.device, VFIO_DEVICE_STATE_STOP_COPY, &fd));
	ASSERT_LT(100, read_all(fd, &stream));
	close(fd);
	free(stream);
	ASSERT_EQ(0, set_state(self->src.c.device, VFIO_DEVICE_STATE_RUNNING, NULL));
	set_bar2(&self->src.c);
	ASSERT_LE(0, counter(&self->src.c));
}

TEST(no_region)
{
	struct vfio_device_feature_mig_state s = { 0 };
	uint64_t v;
	struct rig r;

	RIG_SETUP(&r, NULL, 0);
	ASSERT_EQ(-ENOTTY, mig_flags(r.c.device, &v));
	ASSERT_EQ(-ENOTTY, feature(r.c.device, VFIO_DEVICE_FEATURE_SET |
				   VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &s, sizeof(s)));
	ASSERT_EQ(-ENOTTY, data_size(r.c.device, &v));
	RIG_TEARDOWN(&r);
}

/* A raw emulator with a migration region, answering as the test says. */
struct hostile {
	int ctl;
	volatile int stop;
	uint64_t data_offset, data_size, pending;
	int32_t error;			/* for data reads */
	unsigned long answered;
};

static void *hostile_emu(void *arg)
{
	struct hostile *h = arg;
	struct emu_req req;
	uint8_t out[MUSER_MAX_DATA];

	while (!h->stop) {
		struct muser_req *q = &req.hdr;
		int32_t error = 0;
		uint64_t v = 0;

		if (emu_next_request(h->ctl, &req, 100) != 1)
			continue;
		memset(out, 0, sizeof(out));
		if (q->region == MIG && q->type == MUSER_REQ_READ) {
			switch (q->offset) {
			case 8: v = h->pending; break;
			case 16: v = h->data_offset; break;
			case 24: v = h->data_size; break;
			case 32: v = 0; break;
			default: error = h->error; break;
			}
			memcpy(out, &v, q->len < 8 ? q->len : 8);
		}
		emu_reply(h->ctl, q->id, error, q->type == MUSER_REQ_READ && !error ?
			  out : NULL, q->type == MUSER_REQ_READ && !error ? q->len : 0);
		h->answered++;
	}
	return NULL;
}

TEST(hostile_region)
{
	static const struct { uint64_t off, size; int32_t error; int want; } cases[] = {
		{ 0, 16, 0, EIO },			/* inside the header */
		{ 39, 16, 0, EIO },
		{ 4096, 1ull << 40, 0, EIO },		/* past the region */
		{ ~0ull - 8, 16, 0, EIO },		/* wrapping */
		{ 1ull << 63, 1, 0, EIO },
		{ 4096, 0, 0, 0 },			/* no data: EOF */
		{ 4096, 64, EPERM, EPERM },		/* the emulator's error */
		{ 4096, 64, 0, 0 },			/* fine */
	};
	struct muser_device_info layout;
	struct hostile h = { 0 };
	uint8_t buf[128];
	unsigned int i;
	pthread_t t;
	struct rig r;
	uint64_t v;
	int fd;

	layout_default(&layout);
	layout.num_dev_regions = 1;
	layout.dev_regions[0] = (struct muser_dev_region){
		.region = { VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, 0, 8192 },
		.type = VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
		.subtype = VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED,
	};
	RIG_SETUP(&r, &layout, 0);
	h.ctl = r.ctl;
	ASSERT_EQ(0, pthread_create(&t, NULL, hostile_emu, &h));
	/* a stop-copy size of 0 goes through: QEMU decides what to make of it */
	ASSERT_EQ(0, data_size(r.c.device, &v));
	ASSERT_EQ(0, v);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ssize_t n;

		h.pending = 64;
		h.data_offset = cases[i].off;
		h.data_size = cases[i].size;
		h.error = cases[i].error;
		ASSERT_EQ(0, set_state(r.c.device, VFIO_DEVICE_STATE_STOP_COPY, &fd));
		n = read(fd, buf, sizeof(buf));
		if (cases[i].want) {
			EXPECT_EQ(-1, n) {
				TH_LOG("case %u", i);
			}
			EXPECT_EQ(cases[i].want, errno) {
				TH_LOG("case %u", i);
			}
		} else {
			EXPECT_LE(0, n) {
				TH_LOG("case %u", i);
			}
		}
		close(fd);
		ASSERT_EQ(0, set_state(r.c.device, VFIO_DEVICE_STATE_STOP, NULL));
		ASSERT_EQ(0, set_state(r.c.device, VFIO_DEVICE_STATE_RUNNING, NULL));
	}
	/* a resume with a data offset outside the region */
	h.data_offset = 1ull << 62;
	ASSERT_EQ(0, set_state(r.c.device, VFIO_DEVICE_STATE_RESUMING, &fd));
	ASSERT_EQ(-1, write(fd, buf, 16));
	ASSERT_EQ(EIO, errno);
	close(fd);
	ASSERT_EQ(0, ioctl(r.c.device, VFIO_DEVICE_RESET));
	h.stop = 1;
	pthread_join(t, NULL);
	/* the kernel said why, and nothing worse (the teardown's log check) */
	RIG_TEARDOWN(&r);
}

TEST_HARNESS_MAIN
