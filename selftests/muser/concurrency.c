// SPDX-License-Identifier: GPL-2.0
/*
 * Many devices, many VMM threads, one emulator process.
 *
 * NR_DEV devices are served by a single emulator thread: one epoll loop over
 * all their control nodes. It keeps each device's config space and trapped
 * BARs in memory, initialised to a pattern that depends on device, region
 * and offset; it applies writes and answers reads from that memory, and
 * answers each batch of requests in reverse order, in one write() per
 * device. BAR4 is device memory: the kernel serves it, and a request for it
 * is an error.
 *
 * NR_THREADS VMM threads each do random reads and writes, of 1 byte to more
 * than MUSER_MAX_DATA, across all devices. Thread t owns the t-th slice of
 * every region of every device, so it knows what each read must return;
 * every read is checked. At the end the emulator's memory, and the device
 * memory through the emulator's mmap, must match what the threads wrote,
 * and the number of requests must be what the accesses imply.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common.h"
#include "harness.h"

#define NR_DEV		16
#define NR_THREADS	8
#define ITERATIONS	2500		/* per VMM thread */

#define CFG		VFIO_PCI_CONFIG_REGION_INDEX
#define BAR0		VFIO_PCI_BAR0_REGION_INDEX
#define BAR2		VFIO_PCI_BAR2_REGION_INDEX
#define BAR4		VFIO_PCI_BAR4_REGION_INDEX	/* device memory */
#define CFG_SIZE	256
#define BAR0_SIZE	0x1000
#define BAR2_SIZE	0x10000
#define BAR4_SIZE	0x4000
#define NR_REGIONS	4

static const int regions[NR_REGIONS] = { CFG, BAR0, BAR2, BAR4 };
static const uint32_t region_size[NR_REGIONS] = {
	CFG_SIZE, BAR0_SIZE, BAR2_SIZE, BAR4_SIZE,
};

#define SLICE(k)	(region_size[k] / NR_THREADS)
#define MAX_SLICE	(BAR2_SIZE / NR_THREADS)

/* The emulator's initial content of a trapped region. */
static uint8_t cpat(int dev, int region, uint64_t off)
{
	return (uint8_t)(dev * 31 + region * 0x47 + off * 3 + (off >> 8));
}

static int region_slot(uint32_t region)
{
	int k;

	for (k = 0; k < NR_REGIONS; k++)
		if (regions[k] == (int)region)
			return k;
	return -1;
}

struct emu_dev {
	char uuid[UUID_LEN + 1];
	bool created;
	int ctl;
	struct vfio_client c;
	uint8_t *mem[NR_REGIONS];	/* trapped regions; NULL for BAR4 */
	uint8_t *devmem;		/* the emulator's mmap of BAR4 */
	/* counted by the emulator */
	long nr_read, nr_write, nr_posted;
};

struct emulator {
	pthread_t thread;
	struct emu_dev *devs;
	int epfd, stop;
	long errors;
	long batches, max_batch;
	char what[256];
};

static void emu_error(struct emulator *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void emu_error(struct emulator *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->errors++) {
		va_start(ap, fmt);
		vsnprintf(e->what, sizeof(e->what), fmt, ap);
		va_end(ap);
	}
}

#define REQS_MAX	64
#define REPLY_BUF	(4 * (sizeof(struct muser_reply) + MUSER_MAX_DATA))

static void emu_flush(struct emulator *e, struct emu_dev *d, int dev,
		      const uint8_t *out, size_t len)
{
	ssize_t w;

	if (!len)
		return;
	w = write(d->ctl, out, len);
	if (w != (ssize_t)len)
		emu_error(e, "dev %d: write of %zu bytes of replies: %zd (%m)",
			  dev, len, w);
}

/* Serve what one device has pending: apply, then answer in reverse. */
static void emu_serve(struct emulator *e, struct emu_dev *d, int dev)
{
	static struct emu_req reqs[REQS_MAX];
	static uint8_t out[REPLY_BUF] __attribute__((aligned(8)));
	size_t pos = 0;
	int n, i, k;

	n = emu_read(d->ctl, reqs, REQS_MAX);
	if (n == -EAGAIN)
		return;
	if (n < 0) {
		emu_error(e, "dev %d: read: %s", dev, strerror(-n));
		return;
	}
	e->batches++;
	if (n > e->max_batch)
		e->max_batch = n;
	for (i = n - 1; i >= 0; i--) {
		const struct muser_req *h = &reqs[i].hdr;
		struct muser_reply *r;
		uint32_t len = 0;
		int32_t error = 0;

		if (h->type == MUSER_REQ_IRQ_STATE) {
			d->nr_posted++;
			continue;
		}
		/* Several replies per write(), as many as fit. */
		if (pos + sizeof(*r) + MUSER_MAX_DATA > sizeof(out)) {
			emu_flush(e, d, dev, out, pos);
			pos = 0;
		}
		r = (void *)(out + pos);
		k = region_slot(h->region);
		if (h->flags || (h->type != MUSER_REQ_READ &&
				 h->type != MUSER_REQ_WRITE) ||
		    k < 0 || !d->mem[k] || !h->len ||
		    h->len > MUSER_MAX_DATA ||
		    h->offset + h->len > region_size[k] ||
		    h->data_len != (h->type == MUSER_REQ_WRITE ? h->len : 0)) {
			emu_error(e, "dev %d: bad request type %u flags %u region %u offset 0x%llx len %u",
				  dev, h->type, h->flags, h->region,
				  (unsigned long long)h->offset, h->len);
			error = EINVAL;
		} else if (h->type == MUSER_REQ_READ) {
			d->nr_read++;
			len = h->len;
			memcpy(r + 1, d->mem[k] + h->offset, len);
		} else {
			d->nr_write++;
			memcpy(d->mem[k] + h->offset, reqs[i].data, h->len);
		}
		r->id = h->id;
		r->error = error;
		r->len = len;
		pos += sizeof(*r) + ((len + MUSER_ALIGN - 1) & ~(MUSER_ALIGN - 1));
	}
	emu_flush(e, d, dev, out, pos);
}

static void *emu_fn(void *p)
{
	struct emulator *e = p;
	struct epoll_event ev[NR_DEV + 1];
	int n, i;

	for (;;) {
		n = epoll_wait(e->epfd, ev, NR_DEV + 1, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			emu_error(e, "epoll_wait: %m");
			return NULL;
		}
		for (i = 0; i < n; i++) {
			int dev = ev[i].data.u32;

			if (dev == NR_DEV)
				return NULL;	/* stop */
			if (ev[i].events & (EPOLLERR | EPOLLHUP)) {
				emu_error(e, "dev %d: events 0x%x", dev,
					  ev[i].events);
				return NULL;
			}
			emu_serve(e, &e->devs[dev], dev);
		}
	}
}

struct vmm_thread {
	pthread_t thread;
	int t;
	struct emu_dev *devs;
	unsigned int seed;
	/* what thread t's slice of each region of each device holds */
	uint8_t shadow[NR_DEV][NR_REGIONS][MAX_SLICE];
	long accesses, requests, bytes;
	int bad;
	char what[256];
};

static void vmm_error(struct vmm_thread *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vmm_error(struct vmm_thread *v, const char *fmt, ...)
{
	va_list ap;

	if (!v->bad++) {
		va_start(ap, fmt);
		vsnprintf(v->what, sizeof(v->what), fmt, ap);
		va_end(ap);
	}
}

static size_t pick_len(struct vmm_thread *v, int k)
{
	static const size_t small[] = { 1, 2, 4, 8, 4, 4, 2, 8 };
	unsigned int r = rand_r(&v->seed) % 64;
	size_t max = SLICE(k);

	if (r < 48)
		return small[r % 8];
	if (r < 62)
		return 1 + rand_r(&v->seed) % (max < 256 ? max : 256);
	/* Big: over MUSER_MAX_DATA where the slice allows. */
	return max / 2 + rand_r(&v->seed) % (max / 2 + 1);
}

static void *vmm_fn(void *p)
{
	static __thread uint8_t buf[MAX_SLICE];
	struct vmm_thread *v = p;
	int i;

	for (i = 0; i < ITERATIONS && !v->bad; i++) {
		int dev = rand_r(&v->seed) % NR_DEV;
		int k = rand_r(&v->seed) % NR_REGIONS;
		size_t len = pick_len(v, k);
		uint64_t rel = rand_r(&v->seed) % (SLICE(k) - len + 1);
		uint64_t off = v->t * SLICE(k) + rel;
		bool wr = rand_r(&v->seed) % 3 == 0;
		uint8_t *sh = v->shadow[dev][k] + rel;
		ssize_t n;
		size_t j;

		if (wr) {
			for (j = 0; j < len; j++)
				buf[j] = rand_r(&v->seed);
			n = region_write(&v->devs[dev].c, regions[k], off, buf,
					 len);
		} else {
			n = region_read(&v->devs[dev].c, regions[k], off, buf,
					len);
		}
		if (n != (ssize_t)len) {
			vmm_error(v, "dev %d region %d: %s 0x%llx+%zu: %zd",
				  dev, regions[k], wr ? "write" : "read",
				  (unsigned long long)off, len, n);
			break;
		}
		v->accesses++;
		v->bytes += len;
		if (regions[k] != BAR4)
			v->requests += (len + MUSER_MAX_DATA - 1) /
				       MUSER_MAX_DATA;
		if (wr) {
			memcpy(sh, buf, len);
			continue;
		}
		for (j = 0; j < len; j++) {
			if (buf[j] != sh[j]) {
				vmm_error(v, "dev %d region %d: read 0x%llx+%zu: byte %zu is 0x%02x, expected 0x%02x",
					  dev, regions[k],
					  (unsigned long long)off, len, j,
					  buf[j], sh[j]);
				break;
			}
		}
	}
	return NULL;
}

FIXTURE(many) {
	struct emu_dev devs[NR_DEV];
	struct emulator emu;
	bool emu_running;
	int kmsg;
};

static struct muser_device_info many_layout;

FIXTURE_SETUP(many)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct muser_device_info *info = &many_layout;
	int i, k, ret;
	uint64_t off;

	self->kmsg = -1;
	self->emu.epfd = -1;
	self->emu.stop = -1;
	self->emu_running = false;
	for (i = 0; i < NR_DEV; i++) {
		self->devs[i].ctl = -1;
		self->devs[i].created = false;
		self->devs[i].devmem = NULL;
		vfio_client_init(&self->devs[i].c);
		for (k = 0; k < NR_REGIONS; k++)
			self->devs[i].mem[k] = NULL;
	}
	REQUIRE_MUSER();
	self->kmsg = kmsg_start(_metadata->name);

	layout_default(info);
	info->flags = 0;
	info->regions[BAR0].size = BAR0_SIZE;
	info->regions[BAR2].size = BAR2_SIZE;
	info->regions[BAR4].size = BAR4_SIZE;
	info->regions[BAR4].flags = VFIO_REGION_INFO_FLAG_READ |
				    VFIO_REGION_INFO_FLAG_WRITE;
	info->num_mmap_areas = 1;
	info->mmap_areas[0].region = BAR4;
	info->mmap_areas[0].size = BAR4_SIZE;

	self->emu.epfd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, self->emu.epfd);
	self->emu.stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->emu.stop);
	ev.data.u32 = NR_DEV;
	ASSERT_EQ(0, epoll_ctl(self->emu.epfd, EPOLL_CTL_ADD, self->emu.stop,
			       &ev));

	for (i = 0; i < NR_DEV; i++) {
		struct emu_dev *d = &self->devs[i];
		const char *step = "?";

		ret = mdev_create(d->uuid);
		ASSERT_EQ(0, ret) TH_LOG("create mdev %d: %s", i,
					 strerror(-ret));
		d->created = true;
		d->ctl = ctl_open(d->uuid, O_NONBLOCK);
		ASSERT_LE(0, d->ctl);
		ASSERT_EQ(0, ctl_attach(d->ctl, info));
		for (k = 0; k < NR_REGIONS; k++) {
			if (regions[k] == BAR4)
				continue;
			d->mem[k] = malloc(region_size[k]);
			ASSERT_NE(NULL, d->mem[k]);
			for (off = 0; off < region_size[k]; off++)
				d->mem[k][off] = cpat(i, regions[k], off);
		}
		d->devmem = map_fd(d->ctl, MUSER_REGION_OFFSET(BAR4), BAR4_SIZE,
				   MAP_SHARED);
		ASSERT_NE(NULL, d->devmem) TH_LOG("mmap of BAR4: %m");
		ret = vfio_client_open(&d->c, d->uuid, &step);
		ASSERT_EQ(0, ret) TH_LOG("device %d: %s: %s", i, step,
					 strerror(-ret));
		ev.data.u32 = i;
		ASSERT_EQ(0, epoll_ctl(self->emu.epfd, EPOLL_CTL_ADD, d->ctl,
				       &ev));
	}
	self->emu.devs = self->devs;
	ASSERT_EQ(0, pthread_create(&self->emu.thread, NULL, emu_fn,
				    &self->emu));
	self->emu_running = true;
}

static void stop_emulator(FIXTURE_DATA(many) *self)
{
	uint64_t one = 1;

	if (!self->emu_running)
		return;
	if (write(self->emu.stop, &one, sizeof(one)) != sizeof(one))
		perror("# stop the emulator");
	pthread_join(self->emu.thread, NULL);
	self->emu_running = false;
}

FIXTURE_TEARDOWN(many)
{
	int i, k;

	stop_emulator(self);
	for (i = 0; i < NR_DEV; i++) {
		struct emu_dev *d = &self->devs[i];

		vfio_client_close(&d->c);
		if (d->devmem)
			munmap(d->devmem, BAR4_SIZE);
		if (d->ctl >= 0)
			close(d->ctl);
		if (d->created)
			EXPECT_EQ(0, mdev_remove(d->uuid)) TH_LOG("device %d", i);
		for (k = 0; k < NR_REGIONS; k++)
			free(d->mem[k]);
	}
	if (self->emu.epfd >= 0)
		close(self->emu.epfd);
	if (self->emu.stop >= 0)
		close(self->emu.stop);
	if (self->kmsg >= 0)
		EXPECT_EQ(0, kmsg_check(self->kmsg, _metadata->name))
			TH_LOG("the kernel logged a warning, see above");
}

TEST_F_TIMEOUT(many, threads_x_devices, 300)
{
	struct vmm_thread *v;
	long accesses = 0, requests = 0, served = 0, bytes = 0;
	int64_t t0, ms;
	int i, t, k, dev;
	uint64_t off;

	SKIP_IF_SETUP_SKIPPED();
	v = calloc(NR_THREADS, sizeof(*v));
	ASSERT_NE(NULL, v);
	for (t = 0; t < NR_THREADS; t++) {
		v[t].t = t;
		v[t].devs = self->devs;
		v[t].seed = 0x5eed + t;
		for (dev = 0; dev < NR_DEV; dev++)
			for (k = 0; k < NR_REGIONS; k++)
				for (off = 0; off < SLICE(k); off++)
					v[t].shadow[dev][k][off] =
						regions[k] == BAR4 ? 0 :
						cpat(dev, regions[k],
						     t * SLICE(k) + off);
	}

	t0 = now_ms();
	for (t = 0; t < NR_THREADS; t++)
		ASSERT_EQ(0, pthread_create(&v[t].thread, NULL, vmm_fn, &v[t]));
	for (t = 0; t < NR_THREADS; t++) {
		pthread_join(v[t].thread, NULL);
		EXPECT_EQ(0, v[t].bad) TH_LOG("thread %d: %s", t, v[t].what);
		accesses += v[t].accesses;
		requests += v[t].requests;
		bytes += v[t].bytes;
	}
	ms = now_ms() - t0;
	stop_emulator(self);
	EXPECT_EQ(0, self->emu.errors) TH_LOG("emulator: %s", self->emu.what);
	TH_LOG("%ld accesses (%ld bytes, %ld requests) in %lld ms, %ld reads of the control nodes, up to %ld requests each",
	       accesses, bytes, requests, (long long)ms, self->emu.batches,
	       self->emu.max_batch);
	EXPECT_EQ(NR_THREADS * ITERATIONS, accesses);

	/* Every trapped access was served, exactly once. */
	for (i = 0; i < NR_DEV; i++) {
		served += self->devs[i].nr_read + self->devs[i].nr_write;
		EXPECT_EQ(0, self->devs[i].nr_posted) TH_LOG("device %d", i);
	}
	EXPECT_EQ(requests, served);

	/* The emulator's memory and device memory hold what was written. */
	for (dev = 0; dev < NR_DEV; dev++) {
		for (k = 0; k < NR_REGIONS; k++) {
			const uint8_t *mem = regions[k] == BAR4 ?
				self->devs[dev].devmem : self->devs[dev].mem[k];

			for (t = 0; t < NR_THREADS; t++) {
				const uint8_t *sh = v[t].shadow[dev][k];
				const uint8_t *m = mem + t * SLICE(k);

				if (memcmp(m, sh, SLICE(k))) {
					for (off = 0; m[off] == sh[off]; off++)
						;
					EXPECT_EQ(sh[off], m[off])
						TH_LOG("device %d region %d offset 0x%llx",
						       dev, regions[k],
						       (unsigned long long)(t * SLICE(k) + off));
				}
			}
		}
	}
	free(v);
}

TEST_HARNESS_MAIN
