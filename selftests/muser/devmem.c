// SPDX-License-Identifier: GPL-2.0
/*
 * Device memory: the mmap areas of struct muser_device_info. The test is
 * both the emulator (control node: attach, mmap, read requests, reply) and
 * the VMM (VFIO device: region info, mmap, pread/pwrite).
 *
 * The main layout: BAR0 64 KiB with one area [0x1000, 0x3000), BAR2 4 KiB
 * mapped whole, config space 256 bytes, the rest trapped.
 *
 * Covered: region info flags, the sparse mmap capability and vfio-pci's
 * argsz retry protocol; mmap coherence between the VMM and the emulator both
 * ways; VMM pread/pwrite of device memory served by the kernel with no
 * request; accesses straddling trapped and mapped ranges split into the
 * right requests; mmap errors; pages surviving emulator restarts and VMM
 * reopens; reset with device memory; area validation at attach; the
 * device memory budget (ENOMEM, SIGBUS, sysfs devmem/, the module
 * parameter), VMM reads of untouched pages allocating nothing, a new
 * layout freeing the pages of areas it dropped; a VFIO mmap before any
 * emulator attached failing at once without stalling the VMM's other
 * threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "harness.h"
#include "fixture.h"
#include "attach_cases.h"

#define PG		0x1000UL
#define BAR0		VFIO_PCI_BAR0_REGION_INDEX
#define BAR2		VFIO_PCI_BAR2_REGION_INDEX
#define BAR0_SIZE	0x10000UL
#define AREA_OFF	0x1000UL	/* BAR0's mmap area */
#define AREA_SIZE	0x2000UL
#define BAR2_SIZE	0x1000UL
#define WAIT_MS		5000

/* The sparse capability with room for a few areas. */
struct sparse_cap {
	struct vfio_region_info_cap_sparse_mmap hdr;
	struct vfio_region_sparse_mmap_area areas[4];
};

static void layout_devmem(struct muser_device_info *info)
{
	layout_default(info);
	info->regions[BAR0].size = BAR0_SIZE;
	info->regions[BAR2].size = BAR2_SIZE;
	info->num_mmap_areas = 2;
	info->mmap_areas[0].region = BAR0;
	info->mmap_areas[0].offset = AREA_OFF;
	info->mmap_areas[0].size = AREA_SIZE;
	info->mmap_areas[1].region = BAR2;
	info->mmap_areas[1].offset = 0;
	info->mmap_areas[1].size = BAR2_SIZE;
}

/* A byte pattern distinct per (seed, offset). */
static uint8_t pat(unsigned int seed, uint64_t off)
{
	return (uint8_t)(seed * 0x9d + off * 13 + (off >> 8) * 7 + 1);
}

static void fill(volatile uint8_t *p, unsigned int seed, uint64_t base,
		 size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pat(seed, base + i);
}

/* Index of the first byte that differs from the pattern, or -1. */
static long check_pat(const volatile uint8_t *p, unsigned int seed,
		      uint64_t base, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pat(seed, base + i))
			return (long)i;
	return -1;
}

/*
 * No request is pending for the emulator (ctl must be O_NONBLOCK); posted
 * notices (id 0, e.g. the VMM closing) are not requests.
 */
static bool no_request(int ctl)
{
	static struct emu_req r[8];
	int n, i;

	while ((n = emu_read(ctl, r, 8)) > 0)
		for (i = 0; i < n && i < 8; i++)
			if (r[i].hdr.id)
				return false;
	return n == -EAGAIN;
}

/* A VMM access on a helper thread, with a buffer bigger than async_access. */
struct big_access {
	pthread_t thread;
	int fd;
	uint64_t pos;
	size_t len;
	bool write;
	ssize_t ret;
	uint8_t buf[4 * PG];
};

static void *big_fn(void *p)
{
	struct big_access *a = p;

	if (a->write)
		a->ret = pwrite(a->fd, a->buf, a->len, a->pos);
	else
		a->ret = pread(a->fd, a->buf, a->len, a->pos);
	if (a->ret < 0)
		a->ret = -errno;
	return NULL;
}

static int big_start(struct big_access *a, int fd, int region, uint64_t off,
		     size_t len, bool write)
{
	a->fd = fd;
	a->pos = MUSER_REGION_OFFSET(region) + off;
	a->len = len;
	a->write = write;
	a->ret = 0;
	return -pthread_create(&a->thread, NULL, big_fn, a);
}

static ssize_t big_join(struct big_access *a)
{
	pthread_join(a->thread, NULL);
	return a->ret;
}

/* Wait for exactly one request. */
static int read_one(int ctl, struct emu_req *r)
{
	struct emu_req reqs[4];
	int n = emu_read_timeout(ctl, reqs, 4, WAIT_MS);

	if (n == 1)
		*r = reqs[0];
	return n;
}

/* Answer a READ request with pat(seed, offset + i). */
static ssize_t reply_pat(int ctl, const struct emu_req *r, unsigned int seed)
{
	uint8_t data[MUSER_MAX_DATA];

	fill(data, seed, r->hdr.offset, r->hdr.len);
	return emu_reply(ctl, r->hdr.id, 0, data, r->hdr.len);
}

FIXTURE(devmem) {
	struct rig r;		/* O_NONBLOCK control node */
};

FIXTURE_SETUP(devmem)
{
	struct muser_device_info layout;

	layout_devmem(&layout);
	RIG_SETUP(&self->r, &layout, RIG_NONBLOCK);
	ASSERT_EQ(PG, sysconf(_SC_PAGESIZE));
}

FIXTURE_TEARDOWN(devmem)
{
	RIG_TEARDOWN(&self->r);
}

/* ------------------------------------------------------------ region info */

TEST_F(devmem, region_info_flags)
{
	const uint32_t rw = VFIO_REGION_INFO_FLAG_READ |
			    VFIO_REGION_INFO_FLAG_WRITE;
	struct vfio_region_info ri;
	int i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, get_region_info(self->r.c.device, BAR0, &ri));
	EXPECT_EQ(BAR0_SIZE, ri.size);
	EXPECT_EQ(rw | VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS,
		  ri.flags);

	ASSERT_EQ(0, get_region_info(self->r.c.device, BAR2, &ri));
	EXPECT_EQ(BAR2_SIZE, ri.size);
	/* Mapped whole: MMAP and no capability. */
	EXPECT_EQ(rw | VFIO_REGION_INFO_FLAG_MMAP, ri.flags);
	EXPECT_EQ(sizeof(ri), ri.argsz);
	EXPECT_EQ(0, ri.cap_offset);

	ASSERT_EQ(0, get_region_info(self->r.c.device,
				     VFIO_PCI_CONFIG_REGION_INDEX, &ri));
	EXPECT_EQ(rw, ri.flags);
	EXPECT_EQ(sizeof(ri), ri.argsz);

	for (i = VFIO_PCI_BAR1_REGION_INDEX; i <= VFIO_PCI_ROM_REGION_INDEX;
	     i++) {
		if (i == BAR2)
			continue;
		ASSERT_EQ(0, get_region_info(self->r.c.device, i, &ri));
		EXPECT_EQ(0, ri.size) TH_LOG("region %d", i);
		EXPECT_EQ(0, ri.flags) TH_LOG("region %d", i);
	}
}

/*
 * vfio-pci's protocol: with argsz too small for the capabilities the kernel
 * sets argsz to the size needed and FLAG_CAPS, leaves cap_offset 0 and
 * writes nothing beyond what the caller gave; with room, the chain starts
 * at cap_offset.
 */
TEST_F(devmem, region_info_sparse_argsz)
{
	const uint32_t needed = sizeof(struct vfio_region_info) +
		sizeof(struct vfio_region_info_cap_sparse_mmap) +
		sizeof(struct vfio_region_sparse_mmap_area);
	struct {
		struct vfio_region_info ri;
		uint8_t caps[256];
	} buf;
	struct vfio_region_info_cap_sparse_mmap *sp;
	uint32_t small[] = { sizeof(buf.ri), sizeof(buf.ri) + 8, needed - 1 };
	uint32_t bad[] = { 0, 1, sizeof(buf.ri) - 1 };
	uint32_t big[] = { needed, needed + 1, sizeof(buf) };
	uint32_t idx[] = { VFIO_PCI_NUM_REGIONS - 1, VFIO_PCI_NUM_REGIONS,
			   0x7fffffff, 0xffffffff };
	size_t i, j;

	SKIP_IF_SETUP_SKIPPED();
	/* Below the minimum: EINVAL. */
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&buf, 0, sizeof(buf));
		buf.ri.argsz = bad[i];
		buf.ri.index = BAR0;
		EXPECT_EQ(-1, ioctl(self->r.c.device,
				    VFIO_DEVICE_GET_REGION_INFO, &buf))
			TH_LOG("argsz %u accepted", bad[i]);
		EXPECT_EQ(EINVAL, errno);
	}
	/* Regions the layout does not have (8 regions: no VGA). */
	for (i = 0; i < ARRAY_SIZE(idx); i++) {
		memset(&buf, 0, sizeof(buf));
		buf.ri.argsz = sizeof(buf);
		buf.ri.index = idx[i];
		EXPECT_EQ(-1, ioctl(self->r.c.device,
				    VFIO_DEVICE_GET_REGION_INFO, &buf))
			TH_LOG("index %u accepted", idx[i]);
		EXPECT_EQ(EINVAL, errno);
	}

	/* Too small for the capability: told how much to allocate. */
	for (i = 0; i < ARRAY_SIZE(small); i++) {
		memset(&buf, 0xa5, sizeof(buf));
		buf.ri.argsz = small[i];
		buf.ri.index = BAR0;
		ASSERT_EQ(0, ioctl(self->r.c.device,
				   VFIO_DEVICE_GET_REGION_INFO, &buf))
			TH_LOG("argsz %u: %m", small[i]);
		EXPECT_EQ(needed, buf.ri.argsz) TH_LOG("argsz %u", small[i]);
		EXPECT_TRUE(buf.ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
		EXPECT_TRUE(buf.ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
		EXPECT_EQ(0, buf.ri.cap_offset);
		EXPECT_EQ(BAR0_SIZE, buf.ri.size);
		EXPECT_EQ(MUSER_REGION_OFFSET(BAR0), buf.ri.offset);
		for (j = 0; j < sizeof(buf.caps); j++)
			if (buf.caps[j] != 0xa5) {
				EXPECT_EQ(0xa5, buf.caps[j])
					TH_LOG("argsz %u: byte %zu written",
					       small[i], sizeof(buf.ri) + j);
				break;
			}
	}

	/* Room enough: the capability, and nothing written after it. */
	for (i = 0; i < ARRAY_SIZE(big); i++) {
		memset(&buf, 0xa5, sizeof(buf));
		buf.ri.argsz = big[i];
		buf.ri.index = BAR0;
		ASSERT_EQ(0, ioctl(self->r.c.device,
				   VFIO_DEVICE_GET_REGION_INFO, &buf))
			TH_LOG("argsz %u: %m", big[i]);
		EXPECT_EQ(big[i], buf.ri.argsz);
		EXPECT_TRUE(buf.ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
		EXPECT_TRUE(buf.ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
		ASSERT_EQ(sizeof(buf.ri), buf.ri.cap_offset);
		sp = (void *)buf.caps;
		EXPECT_EQ(VFIO_REGION_INFO_CAP_SPARSE_MMAP, sp->header.id);
		EXPECT_EQ(1, sp->header.version);
		EXPECT_EQ(0, sp->header.next);
		ASSERT_EQ(1, sp->nr_areas);
		EXPECT_EQ(AREA_OFF, sp->areas[0].offset);
		EXPECT_EQ(AREA_SIZE, sp->areas[0].size);
		for (j = needed - sizeof(buf.ri); j < sizeof(buf.caps); j++)
			if (buf.caps[j] != 0xa5) {
				EXPECT_EQ(0xa5, buf.caps[j])
					TH_LOG("argsz %u: byte %zu written",
					       big[i], sizeof(buf.ri) + j);
				break;
			}
	}

	/* BAR2 (mapped whole) and config space have no capability. */
	for (i = 0; i < 2; i++) {
		memset(&buf, 0xa5, sizeof(buf));
		buf.ri.argsz = sizeof(buf);
		buf.ri.index = i ? VFIO_PCI_CONFIG_REGION_INDEX : BAR2;
		ASSERT_EQ(0, ioctl(self->r.c.device,
				   VFIO_DEVICE_GET_REGION_INFO, &buf));
		EXPECT_EQ(sizeof(buf), buf.ri.argsz);
		EXPECT_FALSE(buf.ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
		EXPECT_EQ(0, buf.ri.cap_offset);
		EXPECT_EQ(0xa5, buf.caps[0]);
	}
}

/* ----------------------------------------------------------------- mmap */

TEST_F(devmem, mmap_coherent_both_ways)
{
	volatile uint8_t *vmm, *emu, *vmm2, *emu2, *vmm_hi;
	long bad;

	SKIP_IF_SETUP_SKIPPED();
	vmm = rig_map(&self->r, self->r.c.device, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, vmm) TH_LOG("VMM mmap of BAR0's area: %m");
	emu = rig_map(&self->r, self->r.ctl, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, emu) TH_LOG("emulator mmap of BAR0's area: %m");
	vmm2 = rig_map(&self->r, self->r.c.device, BAR2, 0, BAR2_SIZE);
	ASSERT_NE(NULL, vmm2) TH_LOG("VMM mmap of BAR2: %m");
	emu2 = rig_map(&self->r, self->r.ctl, BAR2, 0, BAR2_SIZE);
	ASSERT_NE(NULL, emu2) TH_LOG("emulator mmap of BAR2: %m");
	/* A second VMM mapping of only the area's second page. */
	vmm_hi = rig_map(&self->r, self->r.c.device, BAR0, AREA_OFF + PG, PG);
	ASSERT_NE(NULL, vmm_hi) TH_LOG("VMM mmap of the second page: %m");

	/* Fresh device memory is zeroed. */
	EXPECT_EQ(0, vmm[0]);
	EXPECT_EQ(0, emu[AREA_SIZE - 1]);
	EXPECT_EQ(0, vmm2[17]);

	/* VMM -> emulator, every byte of both pages. */
	fill(vmm, 1, 0, AREA_SIZE);
	bad = check_pat(emu, 1, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("emulator sees byte 0x%lx wrong", bad);
	bad = check_pat(vmm_hi, 1, PG, PG);
	EXPECT_EQ(-1, bad) TH_LOG("second mapping: byte 0x%lx wrong", bad);

	/* Emulator -> VMM. */
	fill(emu, 2, 0, AREA_SIZE);
	bad = check_pat(vmm, 2, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("VMM sees byte 0x%lx wrong", bad);

	/* Single stores, interleaved, at the edges of the pages. */
	vmm[0] = 0x11;
	emu[PG - 1] = 0x22;
	vmm_hi[0] = 0x33;
	emu[AREA_SIZE - 1] = 0x44;
	EXPECT_EQ(0x11, emu[0]);
	EXPECT_EQ(0x22, vmm[PG - 1]);
	EXPECT_EQ(0x33, emu[PG]);
	EXPECT_EQ(0x44, vmm[AREA_SIZE - 1]);
	EXPECT_EQ(0x44, vmm_hi[PG - 1]);

	/* BAR2, both ways; BAR0's pages are not BAR2's. */
	fill(emu2, 3, 0, BAR2_SIZE);
	bad = check_pat(vmm2, 3, 0, BAR2_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("BAR2: VMM sees byte 0x%lx wrong", bad);
	fill(vmm2, 4, 0, BAR2_SIZE);
	bad = check_pat(emu2, 4, 0, BAR2_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("BAR2: emulator sees byte 0x%lx wrong", bad);
	EXPECT_EQ(0x11, vmm[0]);

	/* None of this was a request. */
	EXPECT_TRUE(no_request(self->r.ctl));
}

/* VMM pread/pwrite of device memory: served by the kernel, coherent. */
TEST_F(devmem, rw_served_without_request)
{
	static uint8_t buf[AREA_SIZE];
	void *volatile bad_ptr = (void *)16;
	volatile uint8_t *emu, *vmm;
	struct pollfd pfd;
	size_t lens[] = { 1, 2, 3, 4, 7, 8, 64, PG, AREA_SIZE };
	uint64_t offs[] = { 0, 1, 0x10, PG - 4, PG - 1, PG };
	size_t i, j;
	long bad;

	SKIP_IF_SETUP_SKIPPED();
	emu = rig_map(&self->r, self->r.ctl, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, emu);
	vmm = rig_map(&self->r, self->r.c.device, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, vmm);

	/* The whole area in one access, both ways. */
	fill(emu, 5, 0, AREA_SIZE);
	ASSERT_EQ(AREA_SIZE, pread(self->r.c.device, buf, AREA_SIZE,
				   MUSER_REGION_OFFSET(BAR0) + AREA_OFF));
	bad = check_pat(buf, 5, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("pread: byte 0x%lx wrong", bad);
	fill(buf, 6, 0, AREA_SIZE);
	ASSERT_EQ(AREA_SIZE, pwrite(self->r.c.device, buf, AREA_SIZE,
				    MUSER_REGION_OFFSET(BAR0) + AREA_OFF));
	bad = check_pat(emu, 6, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("emulator map: byte 0x%lx wrong", bad);
	bad = check_pat(vmm, 6, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("VMM map: byte 0x%lx wrong", bad);

	/* Sizes and alignments, page crossings included. */
	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		for (j = 0; j < ARRAY_SIZE(lens); j++) {
			uint64_t off = offs[i];
			size_t len = lens[j];
			unsigned int seed = 10 + i * 16 + j;

			if (off + len > AREA_SIZE)
				continue;
			fill(buf, seed, off, len);
			ASSERT_EQ((ssize_t)len,
				  pwrite(self->r.c.device, buf, len,
					 MUSER_REGION_OFFSET(BAR0) + AREA_OFF + off))
				TH_LOG("pwrite 0x%llx+%zu: %m",
				       (unsigned long long)off, len);
			bad = check_pat(emu + off, seed, off, len);
			EXPECT_EQ(-1, bad) TH_LOG("0x%llx+%zu: byte %ld",
						  (unsigned long long)off,
						  len, bad);
			fill(emu + off, seed + 1, off, len);
			memset(buf, 0, len);
			ASSERT_EQ((ssize_t)len,
				  pread(self->r.c.device, buf, len,
					MUSER_REGION_OFFSET(BAR0) + AREA_OFF + off));
			bad = check_pat(buf, seed + 1, off, len);
			EXPECT_EQ(-1, bad) TH_LOG("0x%llx+%zu: byte %ld",
						  (unsigned long long)off,
						  len, bad);
		}
	}

	/* BAR2 is all device memory; an access past its end is clipped. */
	fill(buf, 7, 0, BAR2_SIZE);
	ASSERT_EQ(BAR2_SIZE, pwrite(self->r.c.device, buf, BAR2_SIZE,
				    MUSER_REGION_OFFSET(BAR2)));
	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(4, pread(self->r.c.device, buf, 16,
			   MUSER_REGION_OFFSET(BAR2) + BAR2_SIZE - 4));
	EXPECT_EQ(-1, check_pat(buf, 7, BAR2_SIZE - 4, 4));
	EXPECT_EQ(-1, pread(self->r.c.device, buf, 1,
			    MUSER_REGION_OFFSET(BAR2) + BAR2_SIZE));
	EXPECT_EQ(EINVAL, errno);
	/* A bad buffer faults; nothing is half-done to the pages. */
	EXPECT_EQ(-1, pread(self->r.c.device, bad_ptr, 8, MUSER_REGION_OFFSET(BAR2)));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, pwrite(self->r.c.device, bad_ptr, 8, MUSER_REGION_OFFSET(BAR2)));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(8, pread(self->r.c.device, buf, 8, MUSER_REGION_OFFSET(BAR2)));
	EXPECT_EQ(-1, check_pat(buf, 7, 0, 8));

	/* Not one request reached the emulator. */
	pfd.fd = self->r.ctl;
	pfd.events = POLLIN;
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_TRUE(no_request(self->r.ctl));
}

/*
 * An access across the edge of an area: the trapped part becomes a request
 * for exactly that part, the rest comes from the pages, in address order.
 */
TEST_F(devmem, straddle_split)
{
	static struct big_access a;
	volatile uint8_t *emu;
	struct emu_req r;
	long bad;

	SKIP_IF_SETUP_SKIPPED();
	emu = rig_map(&self->r, self->r.ctl, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, emu);
	fill(emu, 20, AREA_OFF, AREA_SIZE);

	/* Read [0xff8, 0x1008): trapped then mapped. */
	ASSERT_EQ(0, big_start(&a, self->r.c.device, BAR0, AREA_OFF - 8, 16,
			       false));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_EQ(MUSER_REQ_READ, r.hdr.type);
	EXPECT_EQ(BAR0, r.hdr.region);
	EXPECT_EQ(AREA_OFF - 8, r.hdr.offset);
	EXPECT_EQ(8, r.hdr.len);
	EXPECT_LT(0, reply_pat(self->r.ctl, &r, 21));
	EXPECT_EQ(16, big_join(&a));
	EXPECT_EQ(-1, check_pat(a.buf, 21, AREA_OFF - 8, 8));
	EXPECT_EQ(-1, check_pat(a.buf + 8, 20, AREA_OFF, 8));
	EXPECT_TRUE(no_request(self->r.ctl));

	/* Read [0x2ff8, 0x3008): mapped then trapped. */
	ASSERT_EQ(0, big_start(&a, self->r.c.device, BAR0,
			       AREA_OFF + AREA_SIZE - 8, 16, false));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_EQ(MUSER_REQ_READ, r.hdr.type);
	EXPECT_EQ(AREA_OFF + AREA_SIZE, r.hdr.offset);
	EXPECT_EQ(8, r.hdr.len);
	EXPECT_LT(0, reply_pat(self->r.ctl, &r, 22));
	EXPECT_EQ(16, big_join(&a));
	EXPECT_EQ(-1, check_pat(a.buf, 20, AREA_OFF + AREA_SIZE - 8, 8));
	EXPECT_EQ(-1, check_pat(a.buf + 8, 22, AREA_OFF + AREA_SIZE, 8));

	/* Read [0x800, 0x3800): trapped, the whole area, trapped. */
	ASSERT_EQ(0, big_start(&a, self->r.c.device, BAR0, 0x800,
			       0x800 + AREA_SIZE + 0x800, false));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_EQ(0x800, r.hdr.offset);
	EXPECT_EQ(0x800, r.hdr.len);
	EXPECT_LT(0, reply_pat(self->r.ctl, &r, 23));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_EQ(AREA_OFF + AREA_SIZE, r.hdr.offset);
	EXPECT_EQ(0x800, r.hdr.len);
	EXPECT_LT(0, reply_pat(self->r.ctl, &r, 23));
	EXPECT_EQ(0x800 + AREA_SIZE + 0x800, big_join(&a));
	EXPECT_EQ(-1, check_pat(a.buf, 23, 0x800, 0x800));
	bad = check_pat(a.buf + 0x800, 20, AREA_OFF, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("area byte 0x%lx wrong", bad);
	EXPECT_EQ(-1, check_pat(a.buf + 0x800 + AREA_SIZE, 23,
				AREA_OFF + AREA_SIZE, 0x800));

	/* Write [0x2ffc, 0x3004): the pages first, then a 4-byte request. */
	fill(a.buf, 24, AREA_OFF + AREA_SIZE - 4, 8);
	ASSERT_EQ(0, big_start(&a, self->r.c.device, BAR0,
			       AREA_OFF + AREA_SIZE - 4, 8, true));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_EQ(MUSER_REQ_WRITE, r.hdr.type);
	EXPECT_EQ(AREA_OFF + AREA_SIZE, r.hdr.offset);
	EXPECT_EQ(4, r.hdr.len);
	EXPECT_EQ(4, r.hdr.data_len);
	EXPECT_EQ(-1, check_pat(r.data, 24, AREA_OFF + AREA_SIZE, 4));
	/* The mapped part is already in memory when the request comes. */
	EXPECT_EQ(-1, check_pat(emu + AREA_SIZE - 4, 24,
				AREA_OFF + AREA_SIZE - 4, 4));
	EXPECT_LT(0, emu_reply(self->r.ctl, r.hdr.id, 0, NULL, 0));
	EXPECT_EQ(8, big_join(&a));

	/* Write [0xffc, 0x1004): a 4-byte request, then the pages. */
	fill(a.buf, 25, AREA_OFF - 4, 8);
	ASSERT_EQ(0, big_start(&a, self->r.c.device, BAR0, AREA_OFF - 4, 8,
			       true));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_EQ(MUSER_REQ_WRITE, r.hdr.type);
	EXPECT_EQ(AREA_OFF - 4, r.hdr.offset);
	EXPECT_EQ(4, r.hdr.len);
	EXPECT_EQ(-1, check_pat(r.data, 25, AREA_OFF - 4, 4));
	EXPECT_LT(0, emu_reply(self->r.ctl, r.hdr.id, 0, NULL, 0));
	EXPECT_EQ(8, big_join(&a));
	EXPECT_EQ(-1, check_pat(emu, 25, AREA_OFF, 4));

	/*
	 * The emulator fails the trapped part: before any byte moved, the
	 * access fails with its errno; after the mapped part, it is short.
	 */
	ASSERT_EQ(0, big_start(&a, self->r.c.device, BAR0, AREA_OFF - 8, 16,
			       false));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_LT(0, emu_reply(self->r.ctl, r.hdr.id, EIO, NULL, 0));
	EXPECT_EQ(-EIO, big_join(&a));
	ASSERT_EQ(0, big_start(&a, self->r.c.device, BAR0,
			       AREA_OFF + AREA_SIZE - 8, 16, false));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_LT(0, emu_reply(self->r.ctl, r.hdr.id, EIO, NULL, 0));
	EXPECT_EQ(8, big_join(&a));
	EXPECT_TRUE(no_request(self->r.ctl));
}

/* mmap of anything but device memory, or not shared, is refused. */
TEST_F(devmem, mmap_errors)
{
	static const struct {
		int region;
		uint64_t off;
		size_t len;
		int flags;
		const char *what;
	} bad[] = {
		{ BAR0, 0, PG, MAP_SHARED, "trapped page" },
		{ BAR0, AREA_OFF - PG, 2 * PG, MAP_SHARED, "starts before" },
		{ BAR0, AREA_OFF, AREA_SIZE + PG, MAP_SHARED, "too long" },
		{ BAR0, AREA_OFF + PG, 2 * PG, MAP_SHARED, "runs past the end" },
		{ BAR0, AREA_OFF + AREA_SIZE, PG, MAP_SHARED, "after the area" },
		{ BAR0, BAR0_SIZE, PG, MAP_SHARED, "beyond the region" },
		{ BAR0, AREA_OFF, AREA_SIZE, MAP_PRIVATE, "MAP_PRIVATE" },
		{ BAR2, 0, BAR2_SIZE, MAP_PRIVATE, "MAP_PRIVATE BAR2" },
		{ BAR2, 0, 2 * PG, MAP_SHARED, "BAR2 too long" },
		{ BAR2, PG, PG, MAP_SHARED, "past BAR2" },
		{ VFIO_PCI_BAR1_REGION_INDEX, 0, PG, MAP_SHARED, "absent BAR" },
		{ VFIO_PCI_ROM_REGION_INDEX, 0, PG, MAP_SHARED, "absent ROM" },
		{ VFIO_PCI_CONFIG_REGION_INDEX, 0, PG, MAP_SHARED, "config" },
		{ VFIO_PCI_VGA_REGION_INDEX, 0, PG, MAP_SHARED, "VGA" },
		{ VFIO_PCI_NUM_REGIONS, 0, PG, MAP_SHARED, "index 9" },
		{ 0x7fff, 0, PG, MAP_SHARED, "index 0x7fff" },
	};
	int fds[2] = { self->r.c.device, self->r.ctl };
	const char *who[2] = { "VMM", "emulator" };
	size_t i, k;
	void *p;

	SKIP_IF_SETUP_SKIPPED();
	for (k = 0; k < 2; k++) {
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			p = map_fd(fds[k], MUSER_REGION_OFFSET(bad[i].region) +
				   bad[i].off, bad[i].len, bad[i].flags);
			EXPECT_EQ(NULL, p) TH_LOG("%s: %s mapped", who[k],
						  bad[i].what);
			if (p)
				munmap(p, bad[i].len);
			else
				EXPECT_EQ(EINVAL, errno)
					TH_LOG("%s: %s: %m", who[k],
					       bad[i].what);
		}
		/* Parts of an area are fine, read-only too. */
		p = map_fd(fds[k], MUSER_REGION_OFFSET(BAR0) + AREA_OFF + PG, PG,
			   MAP_SHARED);
		EXPECT_NE(NULL, p) TH_LOG("%s: second page: %m", who[k]);
		if (p)
			munmap(p, PG);
		p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fds[k],
			 MUSER_REGION_OFFSET(BAR2));
		EXPECT_NE(MAP_FAILED, p) TH_LOG("%s: read-only: %m", who[k]);
		if (p != MAP_FAILED)
			munmap(p, PG);
	}
	/* A mapping cannot be grown past its area. */
	p = map_fd(self->r.c.device, MUSER_REGION_OFFSET(BAR0) + AREA_OFF, PG, MAP_SHARED);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(MAP_FAILED, mremap(p, PG, 4 * PG, MREMAP_MAYMOVE));
	munmap(p, PG);
}

/*
 * A VMM pread of BAR0's area with no emulator attached: served at once from
 * the pages. Returns the index of the first wrong byte, -1 if all match,
 * -2 if the read failed or took long.
 */
static long pread_area_check(int device, unsigned int seed)
{
	uint8_t buf[64];
	int64_t t0 = now_ms();

	if (pread(device, buf, sizeof(buf), MUSER_REGION_OFFSET(BAR0) + AREA_OFF + 8) !=
	    sizeof(buf) || now_ms() - t0 > 1000)
		return -2;
	return check_pat(buf, seed, 8, sizeof(buf));
}

/*
 * The pages belong to the device: the VMM reads them while no emulator is
 * attached, and a new emulator finds what the old one and the VMM left.
 */
TEST_F(devmem, pages_survive_emulator_restart)
{
	volatile uint8_t *emu, *emu2, *old_emu, *vmm;
	uint8_t buf[64];
	int old_ctl, ctl2;
	long bad;

	SKIP_IF_SETUP_SKIPPED();
	vmm = rig_map(&self->r, self->r.c.device, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, vmm);
	old_emu = rig_map(&self->r, self->r.ctl, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, old_emu);
	fill(old_emu, 30, 0, AREA_SIZE);
	fill(buf, 31, 0, sizeof(buf));
	ASSERT_EQ(sizeof(buf), pwrite(self->r.c.device, buf, sizeof(buf),
				      MUSER_REGION_OFFSET(BAR2) + 0x100));

	/* 1. MUSER_IOC_DETACH, the old emulator's mapping kept. */
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_DETACH));
	EXPECT_EQ(-1, pread_area_check(self->r.c.device, 30));
	EXPECT_EQ(-1, check_pat(vmm, 30, 0, AREA_SIZE));
	EXPECT_EQ(-1, check_pat(old_emu, 30, 0, AREA_SIZE));
	old_ctl = self->r.ctl;
	self->r.ctl = ctl_open(self->r.uuid, O_NONBLOCK);
	ASSERT_LE(0, self->r.ctl);
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
	emu = rig_map(&self->r, self->r.ctl, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, emu);
	bad = check_pat(emu, 30, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("new emulator: byte 0x%lx", bad);
	emu2 = rig_map(&self->r, self->r.ctl, BAR2, 0, BAR2_SIZE);
	ASSERT_NE(NULL, emu2);
	EXPECT_EQ(-1, check_pat(emu2 + 0x100, 31, 0, sizeof(buf)));
	/* Still one set of pages: the old mapping sees new writes. */
	fill(emu, 32, 0, AREA_SIZE);
	bad = check_pat(old_emu, 32, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("old mapping: byte 0x%lx", bad);
	bad = check_pat(vmm, 32, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("VMM map: byte 0x%lx", bad);
	close(old_ctl);
	EXPECT_EQ(-1, check_pat(old_emu, 32, 0, AREA_SIZE));

	/* 2. close() of an emulator whose mappings are gone detaches it. */
	rig_unmap(&self->r, emu);
	rig_unmap(&self->r, emu2);
	close(self->r.ctl);
	self->r.ctl = -1;
	EXPECT_EQ(-1, pread_area_check(self->r.c.device, 32));
	self->r.ctl = ctl_open(self->r.uuid, O_NONBLOCK);
	ASSERT_LE(0, self->r.ctl);
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
	emu = rig_map(&self->r, self->r.ctl, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, emu);
	bad = check_pat(emu, 32, 0, AREA_SIZE);
	EXPECT_EQ(-1, bad) TH_LOG("third emulator: byte 0x%lx", bad);
	fill(emu, 34, 0, AREA_SIZE);

	/*
	 * 3. A mapping holds its file: close() alone does not detach an
	 * emulator that still has device memory mapped; munmap() then does.
	 */
	close(self->r.ctl);
	self->r.ctl = -1;
	ctl2 = ctl_open(self->r.uuid, O_NONBLOCK);
	ASSERT_LE(0, ctl2);
	self->r.ctl = ctl2;
	EXPECT_EQ(-EBUSY, ctl_attach(ctl2, &self->r.layout));
	rig_unmap(&self->r, emu);
	EXPECT_EQ(-1, pread_area_check(self->r.c.device, 34));
	ASSERT_EQ(0, ctl_attach(ctl2, &self->r.layout));
	emu = rig_map(&self->r, ctl2, BAR0, AREA_OFF, AREA_SIZE);
	ASSERT_NE(NULL, emu);
	EXPECT_EQ(-1, check_pat(emu, 34, 0, AREA_SIZE));
	EXPECT_EQ(-1, check_pat(old_emu, 34, 0, AREA_SIZE));

	/* 4. The VMM closing and reopening the device keeps them too. */
	rig_unmap(&self->r, vmm);
	vfio_client_close(&self->r.c);
	ASSERT_EQ(0, vfio_client_open(&self->r.c, self->r.uuid, NULL));
	EXPECT_EQ(-1, pread_area_check(self->r.c.device, 34));
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(sizeof(buf), pread(self->r.c.device, buf, sizeof(buf),
				     MUSER_REGION_OFFSET(BAR2) + 0x100));
	EXPECT_EQ(-1, check_pat(buf, 31, 0, sizeof(buf)));
	EXPECT_TRUE(no_request(self->r.ctl));
}

/* While the VMM has the device open, a new emulator's areas must match. */
TEST_F(devmem, reattach_same_areas)
{
	struct muser_device_info other;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_DETACH));
	other = self->r.layout;
	other.mmap_areas[0].size = PG;
	EXPECT_EQ(-EBUSY, ctl_attach(self->r.ctl, &other));
	other = self->r.layout;
	other.mmap_areas[0].offset = 2 * PG;
	other.mmap_areas[0].size = PG;
	EXPECT_EQ(-EBUSY, ctl_attach(self->r.ctl, &other));
	other = self->r.layout;
	other.num_mmap_areas = 1;
	EXPECT_EQ(-EBUSY, ctl_attach(self->r.ctl, &other));
	/* Entries past num_mmap_areas are not part of the layout. */
	other = self->r.layout;
	other.mmap_areas[5].region = 0x1234;
	other.mmap_areas[5].offset = 0x123;
	EXPECT_EQ(0, ctl_attach(self->r.ctl, &other));
}

/* Reset reaches the emulator, which may clear device memory before it
 * answers: the VMM sees the result as soon as its ioctl returns.
 */
TEST_F(devmem, reset_clears_through_emulator)
{
	struct reset_arg ra = { .fd = self->r.c.device };
	volatile uint8_t *emu, *vmm;
	struct emu_req r;
	size_t i;
	int nonzero = 0;

	SKIP_IF_SETUP_SKIPPED();
	vmm = rig_map(&self->r, self->r.c.device, BAR2, 0, BAR2_SIZE);
	ASSERT_NE(NULL, vmm);
	emu = rig_map(&self->r, self->r.ctl, BAR2, 0, BAR2_SIZE);
	ASSERT_NE(NULL, emu);
	fill(vmm, 40, 0, BAR2_SIZE);

	ASSERT_EQ(0, pthread_create(&ra.thread, NULL, reset_fn, &ra));
	ASSERT_EQ(1, read_one(self->r.ctl, &r));
	EXPECT_EQ(MUSER_REQ_RESET, r.hdr.type);
	/* The kernel does not touch device memory on reset. */
	EXPECT_EQ(-1, check_pat(emu, 40, 0, BAR2_SIZE));
	memset((void *)emu, 0, BAR2_SIZE);
	EXPECT_LT(0, emu_reply(self->r.ctl, r.hdr.id, 0, NULL, 0));
	pthread_join(ra.thread, NULL);
	EXPECT_EQ(0, ra.ret);
	for (i = 0; i < BAR2_SIZE; i++)
		nonzero += vmm[i] != 0;
	EXPECT_EQ(0, nonzero);
}

/* ------------------------------------------------- other layouts of areas */

static int get_region_caps(int device, int index, struct vfio_region_info *ri,
			   struct sparse_cap *cap)
{
	struct {
		struct vfio_region_info ri;
		uint8_t caps[512];
	} buf;

	memset(&buf, 0, sizeof(buf));
	buf.ri.argsz = sizeof(buf);
	buf.ri.index = index;
	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &buf))
		return -errno;
	*ri = buf.ri;
	memset(cap, 0, sizeof(*cap));
	if (buf.ri.cap_offset >= sizeof(buf.ri) &&
	    buf.ri.cap_offset < sizeof(buf))
		memcpy(cap, (uint8_t *)&buf + buf.ri.cap_offset,
		       sizeof(buf) - buf.ri.cap_offset < sizeof(*cap) ?
		       sizeof(buf) - buf.ri.cap_offset : sizeof(*cap));
	return 0;
}

/*
 * Several areas in a region (listed out of order), a region covered by two
 * adjacent areas, an area in the ROM.
 */
TEST(devmem_several_areas)
{
	struct muser_device_info info;
	struct vfio_region_info ri;
	struct sparse_cap cap;
	struct rig r;
	volatile uint8_t *vmm, *emu;
	uint8_t buf[16];
	int i;
	bool seen[2] = { false, false };

	layout_default(&info);
	info.regions[BAR0].size = BAR0_SIZE;
	info.regions[VFIO_PCI_BAR4_REGION_INDEX].size = 2 * PG;
	info.regions[VFIO_PCI_BAR4_REGION_INDEX].flags =
		VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	info.regions[VFIO_PCI_ROM_REGION_INDEX].size = 8 * PG;
	info.regions[VFIO_PCI_ROM_REGION_INDEX].flags =
		VFIO_REGION_INFO_FLAG_READ;
	info.num_mmap_areas = 5;
	info.mmap_areas[0] = (struct muser_mmap_area){
		.region = BAR0, .offset = 8 * PG, .size = PG };
	info.mmap_areas[1] = (struct muser_mmap_area){
		.region = VFIO_PCI_BAR4_REGION_INDEX, .offset = PG, .size = PG };
	info.mmap_areas[2] = (struct muser_mmap_area){
		.region = BAR0, .offset = PG, .size = 2 * PG };
	info.mmap_areas[3] = (struct muser_mmap_area){
		.region = VFIO_PCI_BAR4_REGION_INDEX, .offset = 0, .size = PG };
	info.mmap_areas[4] = (struct muser_mmap_area){
		.region = VFIO_PCI_ROM_REGION_INDEX, .offset = 0, .size = PG };
	RIG_SETUP(&r, &info, RIG_NONBLOCK);

	/* BAR0: both areas in the capability. */
	ASSERT_EQ(0, get_region_caps(r.c.device, BAR0, &ri, &cap));
	EXPECT_TRUE(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
	EXPECT_TRUE(ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
	EXPECT_EQ(sizeof(ri), ri.cap_offset);
	EXPECT_EQ(VFIO_REGION_INFO_CAP_SPARSE_MMAP, cap.hdr.header.id);
	ASSERT_EQ(2, cap.hdr.nr_areas);
	for (i = 0; i < 2; i++) {
		if (cap.areas[i].offset == 8 * PG && cap.areas[i].size == PG)
			seen[0] = true;
		if (cap.areas[i].offset == PG && cap.areas[i].size == 2 * PG)
			seen[1] = true;
	}
	EXPECT_TRUE(seen[0] && seen[1]);

	/* BAR4 is covered whole by two areas: MMAP, no capability... */
	ASSERT_EQ(0, get_region_caps(r.c.device, VFIO_PCI_BAR4_REGION_INDEX, &ri,
				     &cap));
	EXPECT_TRUE(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
	EXPECT_FALSE(ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
	/* ...so a VMM maps it whole, as vfio-pci's MMAP flag promises. */
	vmm = map_fd(r.c.device, MUSER_REGION_OFFSET(VFIO_PCI_BAR4_REGION_INDEX), 2 * PG,
		     MAP_SHARED);
	EXPECT_NE(NULL, vmm) TH_LOG("mmap of all of BAR4: %m");
	emu = map_fd(r.ctl, MUSER_REGION_OFFSET(VFIO_PCI_BAR4_REGION_INDEX) + PG, PG,
		     MAP_SHARED);
	ASSERT_NE(NULL, emu);
	fill(emu, 50, PG, PG);
	/* An access across the two areas needs no request. */
	ASSERT_EQ(16, pread(r.c.device, buf, 16,
			    MUSER_REGION_OFFSET(VFIO_PCI_BAR4_REGION_INDEX) + PG - 8));
	EXPECT_EQ(0, buf[0]);
	EXPECT_EQ(-1, check_pat(buf + 8, 50, PG, 8));
	if (vmm) {
		EXPECT_EQ(-1, check_pat(vmm + PG, 50, PG, PG));
		vmm[0] = 0x5a;
		munmap((void *)vmm, 2 * PG);
	}
	ASSERT_EQ(1, pread(r.c.device, buf, 1,
			   MUSER_REGION_OFFSET(VFIO_PCI_BAR4_REGION_INDEX)));
	EXPECT_EQ(vmm ? 0x5a : 0, buf[0]);
	munmap((void *)emu, PG);

	/* The ROM: its area, read-only for the VMM, written by the device. */
	ASSERT_EQ(0, get_region_caps(r.c.device, VFIO_PCI_ROM_REGION_INDEX, &ri,
				     &cap));
	EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP |
		  VFIO_REGION_INFO_FLAG_CAPS, ri.flags);
	EXPECT_EQ(1, cap.hdr.nr_areas);
	emu = map_fd(r.ctl, MUSER_REGION_OFFSET(VFIO_PCI_ROM_REGION_INDEX), PG,
		     MAP_SHARED);
	ASSERT_NE(NULL, emu) TH_LOG("emulator mmap of the ROM: %m");
	fill(emu, 51, 0, PG);
	vmm = mmap(NULL, PG, PROT_READ, MAP_SHARED, r.c.device,
		   MUSER_REGION_OFFSET(VFIO_PCI_ROM_REGION_INDEX));
	ASSERT_NE(MAP_FAILED, vmm);
	EXPECT_EQ(-1, check_pat(vmm, 51, 0, PG));
	/* No writable mapping, no upgrade, no pwrite of a read-only region. */
	EXPECT_EQ(-1, mprotect((void *)vmm, PG, PROT_READ | PROT_WRITE));
	munmap((void *)vmm, PG);
	vmm = map_fd(r.c.device, MUSER_REGION_OFFSET(VFIO_PCI_ROM_REGION_INDEX), PG,
		     MAP_SHARED);
	EXPECT_EQ(NULL, vmm) TH_LOG("the VMM mapped a read-only region writable");
	if (vmm)
		munmap((void *)vmm, PG);
	EXPECT_EQ(-1, pwrite(r.c.device, buf, 4,
			     MUSER_REGION_OFFSET(VFIO_PCI_ROM_REGION_INDEX)));
	EXPECT_EQ(-1, check_pat(emu, 51, 0, PG));
	munmap((void *)emu, PG);

	EXPECT_TRUE(no_request(r.ctl));
	RIG_TEARDOWN(&r);
}

/* Before any emulator attached there is no device memory to map. */
TEST(devmem_mmap_before_attach)
{
	struct rig r;

	RIG_SETUP(&r, NULL, RIG_DETACHED | RIG_NO_VMM);
	EXPECT_EQ(NULL, map_fd(r.ctl, MUSER_REGION_OFFSET(BAR2), PG, MAP_SHARED));
	EXPECT_EQ(ENODEV, errno);
	RIG_TEARDOWN(&r);
}

/* ------------------------------------------------------------ the budget */

/*
 * Device memory is allocated on first write or fault, at most the device's
 * budget (devmem/budget_mb, from the module parameter devmem_budget_mb);
 * VMM reads of untouched pages read zeros without allocating; a new layout
 * frees what its dropped areas held.
 *
 * The layout: BAR0 of BIG0 and BAR2 of BIG2, both device memory whole.
 */
#define BIG0		(64UL << 20)
#define BIG2		(16UL << 20)
#define MB_PAGES	(0x100000UL / PG)

static void layout_big(struct muser_device_info *info)
{
	layout_default(info);
	info->regions[BAR0].size = BIG0;
	info->regions[BAR2].size = BIG2;
	info->num_mmap_areas = 2;
	info->mmap_areas[0].region = BAR0;
	info->mmap_areas[0].offset = 0;
	info->mmap_areas[0].size = BIG0;
	info->mmap_areas[1].region = BAR2;
	info->mmap_areas[1].offset = 0;
	info->mmap_areas[1].size = BIG2;
}

/* /sys/bus/mdev/devices/UUID/devmem/@name, or -1. */
static long devmem_stat(const char *uuid, const char *name)
{
	char path[256];
	long v;

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/devmem/%s", uuid, name);
	return sysfs_read_long(path, &v) ? -1 : v;
}

static int devmem_set(const char *uuid, const char *name, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/devmem/%s", uuid, name);
	return sysfs_write(path, val);
}

/*
 * Free memory in pages, or -1: the buddy allocator's (/proc/zoneinfo
 * "pages free") plus the per-cpu lists' ("count:"), where freed pages wait.
 */
static long free_pages(void)
{
	char line[128];
	long v, sum = 0;
	bool any = false;
	FILE *f = fopen("/proc/zoneinfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " pages free %ld", &v) == 1 ||
		    sscanf(line, " count: %ld", &v) == 1) {
			sum += v;
			any = true;
		}
	}
	fclose(f);
	return any ? sum : -1;
}

static ssize_t vmm_write_byte(struct rig *r, int region, uint64_t off,
			      uint8_t val)
{
	ssize_t n = pwrite(r->c.device, &val, 1, MUSER_REGION_OFFSET(region) + off);

	return n < 0 ? -errno : n;
}

FIXTURE(budget) {
	struct rig r;
};

FIXTURE_SETUP(budget)
{
	struct muser_device_info info;

	layout_big(&info);
	RIG_SETUP(&self->r, &info, RIG_NONBLOCK);
}

FIXTURE_TEARDOWN(budget)
{
	RIG_TEARDOWN(&self->r);
}

/*
 * Past the budget a VMM write fails with ENOMEM and a fault, the VMM's
 * or the emulator's, raises SIGBUS; pages already there stay usable; a
 * higher budget takes effect at once, a lower one frees nothing.
 */
TEST_F(budget, enforced)
{
	volatile uint8_t *vmm, *emu, *state;
	long dflt, i;
	uint8_t v;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, param_get("devmem_budget_mb", &dflt))
		TH_LOG("no module parameter devmem_budget_mb");
	EXPECT_EQ(dflt, devmem_stat(self->r.uuid, "budget_mb"));
	ASSERT_EQ(0, devmem_stat(self->r.uuid, "pages"));
	ASSERT_EQ(0, devmem_set(self->r.uuid, "budget_mb", "1"));
	EXPECT_EQ(1, devmem_stat(self->r.uuid, "budget_mb"));

	/* VMM writes: one page each, up to the budget. */
	for (i = 0; i < (long)MB_PAGES; i++)
		ASSERT_EQ(1, vmm_write_byte(&self->r, BAR0, i * PG, 0x11))
			TH_LOG("page %ld", i);
	EXPECT_EQ((long)MB_PAGES, devmem_stat(self->r.uuid, "pages"));
	EXPECT_EQ(-ENOMEM, vmm_write_byte(&self->r, BAR0, MB_PAGES * PG, 1));
	EXPECT_EQ(-ENOMEM, vmm_write_byte(&self->r, BAR2, 0, 1));
	/* A page it has is still written; a write into the next stops short. */
	EXPECT_EQ(1, vmm_write_byte(&self->r, BAR0, 5 * PG + 1, 0x22));
	EXPECT_EQ(1, pwrite(self->r.c.device, "ab", 2,
			    MUSER_REGION_OFFSET(BAR0) + MB_PAGES * PG - 1));
	EXPECT_EQ((long)MB_PAGES, devmem_stat(self->r.uuid, "pages"));

	/* Faults past it: SIGBUS for the VMM and the emulator, read or write. */
	vmm = rig_map(&self->r, self->r.c.device, BAR0, 0, 2 * MB_PAGES * PG);
	ASSERT_NE(NULL, vmm);
	emu = rig_map(&self->r, self->r.ctl, BAR0, 0, 2 * MB_PAGES * PG);
	ASSERT_NE(NULL, emu);
	EXPECT_TRUE(touch(vmm + 5 * PG + 1, &v));
	EXPECT_EQ(0x22, v);
	EXPECT_TRUE(poke(emu + 7 * PG, 0x33));
	EXPECT_FALSE(poke(vmm + (MB_PAGES + 10) * PG, 1)) TH_LOG("VMM write");
	EXPECT_FALSE(touch(vmm + (MB_PAGES + 11) * PG, &v)) TH_LOG("VMM read");
	EXPECT_FALSE(poke(emu + (MB_PAGES + 12) * PG, 1)) TH_LOG("emulator");
	EXPECT_EQ((long)MB_PAGES, devmem_stat(self->r.uuid, "pages"));

	/* The state area is the emulator's, not device memory: not charged. */
	state = map_fd(self->r.ctl, MUSER_STATE_OFFSET, 4 * PG, MAP_SHARED);
	ASSERT_NE(NULL, state);
	for (i = 0; i < 4; i++)
		EXPECT_TRUE(poke(state + i * PG, 1));
	munmap((void *)state, 4 * PG);
	EXPECT_EQ((long)MB_PAGES, devmem_stat(self->r.uuid, "pages"));

	/* Raised: at once. Lowered: nothing freed, nothing new. */
	ASSERT_EQ(0, devmem_set(self->r.uuid, "budget_mb", "2"));
	EXPECT_TRUE(poke(vmm + (MB_PAGES + 10) * PG, 0x44));
	EXPECT_EQ(1, vmm_write_byte(&self->r, BAR2, 0, 0x55));
	EXPECT_EQ((long)MB_PAGES + 2, devmem_stat(self->r.uuid, "pages"));
	ASSERT_EQ(0, devmem_set(self->r.uuid, "budget_mb", "1"));
	EXPECT_EQ((long)MB_PAGES + 2, devmem_stat(self->r.uuid, "pages"));
	EXPECT_TRUE(touch(vmm + (MB_PAGES + 10) * PG, &v));
	EXPECT_EQ(0x44, v);
	EXPECT_EQ(-ENOMEM, vmm_write_byte(&self->r, BAR2, PG, 1));
	EXPECT_FALSE(poke(emu + (MB_PAGES + 20) * PG, 1));

	/* Values the kernel refuses. */
	EXPECT_EQ(-EINVAL, devmem_set(self->r.uuid, "budget_mb", "1048577"));
	EXPECT_EQ(-EINVAL, devmem_set(self->r.uuid, "budget_mb", "-1"));
	EXPECT_EQ(-EINVAL, devmem_set(self->r.uuid, "budget_mb", "x"));
	EXPECT_EQ(1, devmem_stat(self->r.uuid, "budget_mb"));
	EXPECT_EQ(-EACCES, devmem_set(self->r.uuid, "pages", "0"));
}

/* The module parameter is the budget of devices created after it changes. */
TEST(budget_param)
{
	char uuid[UUID_LEN + 1];
	long saved;

	REQUIRE_MUSER();
	ASSERT_EQ(0, param_get("devmem_budget_mb", &saved))
		TH_LOG("no module parameter devmem_budget_mb");
	ASSERT_EQ(0, param_set("devmem_budget_mb", 3));
	EXPECT_EQ(-EINVAL, param_set("devmem_budget_mb", (1L << 20) + 1));
	ASSERT_EQ(0, mdev_create(uuid));
	EXPECT_EQ(3, devmem_stat(uuid, "budget_mb"));
	EXPECT_EQ(0, mdev_remove(uuid));
	EXPECT_EQ(0, param_set("devmem_budget_mb", saved));
}

/*
 * A VMM read of device memory nobody wrote reads zeros and allocates
 * nothing: a VMM reading a huge BAR cannot make the kernel fill it.
 */
TEST_F(budget, read_untouched_allocates_nothing)
{
	static uint8_t buf[64 * 1024];
	long before, after;
	uint64_t off;
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	memset(buf, 0xff, sizeof(buf));
	before = free_pages();
	for (off = 0; off < BIG0; off += sizeof(buf)) {
		ASSERT_EQ((ssize_t)sizeof(buf),
			  pread(self->r.c.device, buf, sizeof(buf),
				MUSER_REGION_OFFSET(BAR0) + off));
		for (i = 0; i < sizeof(buf); i++)
			if (buf[i])
				break;
		ASSERT_EQ(sizeof(buf), i) TH_LOG("byte 0x%llx is 0x%x",
						 (unsigned long long)(off + i), buf[i]);
		buf[0] = 0xff;
	}
	after = free_pages();
	/* 64 MiB allocated would be 16384 pages; allow for others' noise. */
	EXPECT_GT(2048, before - after)
		TH_LOG("%ld pages less free after reading the BAR", before - after);
	EXPECT_EQ(0, devmem_stat(self->r.uuid, "pages"));

	/* What the emulator writes is read back, and only that is allocated. */
	ASSERT_EQ(1, vmm_write_byte(&self->r, BAR0, 3 * PG + 9, 0x5a));
	ASSERT_EQ(PG, (size_t)pread(self->r.c.device, buf, PG,
				    MUSER_REGION_OFFSET(BAR0) + 3 * PG));
	EXPECT_EQ(0x5a, buf[9]);
	EXPECT_EQ(0, buf[8]);
	EXPECT_EQ(1, devmem_stat(self->r.uuid, "pages"));
}

/*
 * Attaching with a layout that no longer has an area (no VMM open) frees
 * that area's pages and takes the emulator's mappings of it away
 * (SIGBUS); areas that stay keep their contents.
 */
TEST_F(budget, new_layout_frees_dropped_area)
{
	struct muser_device_info fewer;
	volatile uint8_t *emu0, *emu2;
	long before, after;
	uint64_t off;
	uint8_t v;

	SKIP_IF_SETUP_SKIPPED();
	for (off = 0; off < BIG2; off += PG)
		ASSERT_EQ(1, vmm_write_byte(&self->r, BAR2, off, 0x77));
	for (off = 0; off < 16 * PG; off += PG)
		ASSERT_EQ(1, vmm_write_byte(&self->r, BAR0, off, 0x66));
	EXPECT_EQ((long)(BIG2 / PG + 16), devmem_stat(self->r.uuid, "pages"));
	emu0 = rig_map(&self->r, self->r.ctl, BAR0, 0, 16 * PG);
	ASSERT_NE(NULL, emu0);
	emu2 = rig_map(&self->r, self->r.ctl, BAR2, 0, BIG2);
	ASSERT_NE(NULL, emu2);
	EXPECT_TRUE(touch(emu2 + PG, &v));
	EXPECT_EQ(0x77, v);

	/* No VMM, a new emulator with BAR2 trapped instead. */
	vfio_client_close(&self->r.c);
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_DETACH));
	fewer = self->r.layout;
	fewer.num_mmap_areas = 1;
	before = free_pages();
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &fewer));
	after = free_pages();
	EXPECT_EQ(16, devmem_stat(self->r.uuid, "pages"));
	/* Its 4096 pages are free again. */
	EXPECT_LT((long)(BIG2 / PG / 2), after - before)
		TH_LOG("%ld pages freed", after - before);
	EXPECT_FALSE(touch(emu2 + PG, &v)) TH_LOG("a dropped area still maps");
	EXPECT_FALSE(poke(emu2, 1));
	EXPECT_TRUE(touch(emu0 + 15 * PG, &v));
	EXPECT_EQ(0x66, v);
	EXPECT_EQ(16, devmem_stat(self->r.uuid, "pages"));

	/* Back to the first layout: BAR2's pages start from zero. */
	ASSERT_EQ(0, ioctl(self->r.ctl, MUSER_IOC_DETACH));
	ASSERT_EQ(0, ctl_attach(self->r.ctl, &self->r.layout));
	EXPECT_TRUE(touch(emu2 + PG, &v)) TH_LOG("the area is back");
	EXPECT_EQ(0, v);
	EXPECT_EQ(17, devmem_stat(self->r.uuid, "pages"));
}

/* ------------------------------------------- VFIO mmap before the layout */

struct mmap_arg {
	pthread_t thread;
	int fd;
	pid_t tid;
	int err;
	int64_t ms;
	volatile int started, done;
};

static void *vfio_mmap_fn(void *p)
{
	struct mmap_arg *a = p;
	int64_t t0;
	void *m;

	a->tid = gettid();
	__atomic_store_n(&a->started, 1, __ATOMIC_RELEASE);
	t0 = now_ms();
	m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd,
		 (off_t)MUSER_REGION_OFFSET(BAR2));
	a->err = m == MAP_FAILED ? errno : 0;
	a->ms = now_ms() - t0;
	if (m != MAP_FAILED)
		munmap(m, PG);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Is thread @tid of this process asleep (S or D)? */
static bool task_sleeping(pid_t tid)
{
	char path[64], buf[256], *p;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if (sysfs_read(path, buf, sizeof(buf)) < 0)
		return false;
	p = strrchr(buf, ')');
	return p && (p[2] == 'S' || p[2] == 'D');
}

/*
 * A VMM maps a region before any emulator attached: ENODEV at once, not
 * after timeout_ms. mmap() runs with mmap_lock held for writing, so
 * waiting there for an emulator would also stall every other thread of
 * the VMM that maps, unmaps or faults.
 */
TEST(devmem_vfio_mmap_before_attach)
{
	struct muser_device_info info;
	struct mmap_arg a = { 0 };
	struct rig r;
	int64_t t0, ms;
	long saved;
	void *p;

	layout_devmem(&info);
	RIG_SETUP(&r, &info, RIG_DETACHED);
	ASSERT_EQ(0, param_get("timeout_ms", &saved));
	ASSERT_EQ(0, param_set("timeout_ms", 3000));
	a.fd = r.c.device;
	ASSERT_EQ(0, pthread_create(&a.thread, NULL, vfio_mmap_fn, &a));
	/* Until it is done, or asleep: in mmap() waiting for a layout. */
	while (!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE) &&
	       !(__atomic_load_n(&a.started, __ATOMIC_ACQUIRE) &&
		 task_sleeping(a.tid)))
		sched_yield();
	/* Another thread's mmap and munmap go ahead meanwhile. */
	t0 = now_ms();
	p = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, PG);
	ms = now_ms() - t0;
	pthread_join(a.thread, NULL);
	EXPECT_GT(1000, ms) TH_LOG("another thread's mmap took %lld ms",
				   (long long)ms);
	EXPECT_EQ(ENODEV, a.err) TH_LOG("mmap: %s", strerror(a.err));
	EXPECT_GT(1000, a.ms) TH_LOG("mmap waited %lld ms", (long long)a.ms);

	/* Once there is a layout, the same mmap works. */
	ASSERT_EQ(0, param_set("timeout_ms", saved));
	ASSERT_EQ(0, ctl_attach(r.ctl, &r.layout));
	a.done = 0;
	a.started = 0;
	vfio_mmap_fn(&a);
	EXPECT_EQ(0, a.err) TH_LOG("mmap: %s", strerror(a.err));
	RIG_TEARDOWN(&r);
}

/* ------------------------------------------------------ area validation */

ATTACH_FIXTURE(areas, layout_devmem);

#define AREAS_CASE(name, expect_, body) ATTACH_CASE(areas, name, expect_, body)

#define A(i)	(info->mmap_areas[i])

AREAS_CASE(good, 0, (void)info);
AREAS_CASE(none, 0, info->num_mmap_areas = 0);
AREAS_CASE(garbage_past_num, 0, info->num_mmap_areas = 1;
	   A(1).region = 77; A(1).offset = 3; A(1).pad = 1);
AREAS_CASE(max_16, 0, int i; info->num_mmap_areas = MUSER_MAX_MMAP_AREAS;
	   for (i = 0; i < MUSER_MAX_MMAP_AREAS; i++) {
		   A(i).region = BAR0; A(i).offset = i * PG; A(i).size = PG;
	   });
AREAS_CASE(adjacent, 0, A(1).region = BAR0; A(1).offset = AREA_OFF + AREA_SIZE;
	   A(1).size = PG);
AREAS_CASE(whole_bar0, 0, A(0).offset = 0; A(0).size = BAR0_SIZE);
AREAS_CASE(last_page, 0, A(0).offset = BAR0_SIZE - PG; A(0).size = PG);
AREAS_CASE(rom, 0, info->regions[VFIO_PCI_ROM_REGION_INDEX].size = 2 * PG;
	   info->regions[VFIO_PCI_ROM_REGION_INDEX].flags =
		   VFIO_REGION_INFO_FLAG_READ;
	   A(1).region = VFIO_PCI_ROM_REGION_INDEX; A(1).offset = PG;
	   A(1).size = PG);

AREAS_CASE(too_many, -EINVAL, info->num_mmap_areas = MUSER_MAX_MMAP_AREAS + 1);
AREAS_CASE(num_huge, -EINVAL, info->num_mmap_areas = 0xffffffff);
AREAS_CASE(unaligned_offset, -EINVAL, A(0).offset = AREA_OFF + 0x800);
AREAS_CASE(unaligned_size, -EINVAL, A(0).size = AREA_SIZE - 0x800);
AREAS_CASE(size_one, -EINVAL, A(0).size = 1);
AREAS_CASE(size_zero, -EINVAL, A(0).size = 0);
AREAS_CASE(overlap_same, -EINVAL, A(1) = A(0));
AREAS_CASE(overlap_partial, -EINVAL, A(1).region = BAR0;
	   A(1).offset = AREA_OFF + PG; A(1).size = AREA_SIZE);
AREAS_CASE(overlap_inside, -EINVAL, A(1).region = BAR0; A(1).offset = 0;
	   A(1).size = BAR0_SIZE);
AREAS_CASE(beyond_region, -EINVAL, A(0).offset = BAR0_SIZE - PG;
	   A(0).size = 2 * PG);
AREAS_CASE(offset_at_end, -EINVAL, A(0).offset = BAR0_SIZE; A(0).size = PG);
AREAS_CASE(offset_huge, -EINVAL, A(0).offset = ~(PG - 1); A(0).size = 2 * PG);
AREAS_CASE(size_wraps, -EINVAL, A(0).size = ~(PG - 1));
AREAS_CASE(absent_region, -EINVAL, A(0).region = VFIO_PCI_BAR1_REGION_INDEX);
AREAS_CASE(config_region, -EINVAL, A(0).region = VFIO_PCI_CONFIG_REGION_INDEX;
	   A(0).offset = 0; A(0).size = PG;
	   info->regions[VFIO_PCI_CONFIG_REGION_INDEX].size = 4096);
AREAS_CASE(vga_region, -EINVAL, info->num_regions = 9;
	   info->regions[VFIO_PCI_VGA_REGION_INDEX].size = 0xc0000;
	   info->regions[VFIO_PCI_VGA_REGION_INDEX].flags =
		   VFIO_REGION_INFO_FLAG_READ;
	   A(0).region = VFIO_PCI_VGA_REGION_INDEX; A(0).offset = 0;
	   A(0).size = PG);
AREAS_CASE(region_9, -EINVAL, A(0).region = VFIO_PCI_NUM_REGIONS);
AREAS_CASE(region_huge, -EINVAL, A(0).region = 0xffffffff);
AREAS_CASE(pad_set, -EINVAL, A(1).pad = 1);

ATTACH_TEST(areas)

TEST_HARNESS_MAIN
