// SPDX-License-Identifier: GPL-2.0
/*
 * libmuser's guest memory API against the real muser.ko: the test is the
 * VMM (a VFIO container with anonymous memory mapped for DMA) and a
 * libmuser device at once. It calls muser_dispatch() itself, so posted
 * notices (unmaps, the VMM closing) reach the device's callbacks here.
 *
 * Covered: muser_dma_map() scatter lists across chunks, coherence with
 * guest memory, no system call for memory already mapped, copies,
 * ENOBUFS/EINVAL/EFAULT, the revoke callback after the VMM unmaps, mapping
 * again after a remap, and the MUSER_RESET_VMM_CLOSE reset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <muser.h>

#include "harness.h"
#include "fixture.h"

#define PG		4096ul
#define CHUNK		(1ul << MUSER_DMA_CHUNK_SHIFT)
#define GUEST_IOVA	(1ul << 30)
#define GUEST_SIZE	(4 * CHUNK)
#define RW		(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

struct seen {
	int revokes;
	uint64_t iova, size;
	int resets;
	enum muser_reset_reason reason;
};

static void on_revoke(struct muser_dev *dev, void *priv, uint64_t iova,
		      uint64_t size)
{
	struct seen *s = priv;

	(void)dev;
	s->revokes++;
	s->iova = iova;
	s->size = size;
}

static int on_reset(struct muser_dev *dev, void *priv,
		    enum muser_reset_reason reason)
{
	struct seen *s = muser_dev_get_priv(dev);

	(void)priv;
	s->resets++;
	s->reason = reason;
	return 0;
}

static void fill(uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 12));
}

/* Dispatch until nothing is pending (posted notices arrive at once). */
static void drain(struct muser_dev *dev)
{
	int i;

	for (i = 0; i < 20; i++) {
		if (muser_dispatch(dev) <= 0)
			sleep_ms(10);
	}
}

FIXTURE(lib) {
	struct rig r;		/* the emulator is libmuser's device */
	struct muser_dev *dev;
	struct seen seen;
	uint8_t *guest;
};

FIXTURE_SETUP(lib)
{
	char path[128];

	RIG_SETUP(&self->r, NULL, RIG_NO_CTL | RIG_NO_VMM);
	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", self->r.uuid);
	self->dev = muser_dev_create_path(path, 0);
	ASSERT_NE(NULL, self->dev) TH_LOG("%s: %m", path);
	ASSERT_EQ(0, muser_pci_set_ids(self->dev, 0x4e58, 0x00d0, 0, 0));
	ASSERT_EQ(0, muser_setup_bar(self->dev, 0, 0x1000, MUSER_BAR_MEM32,
				     lib_bar_zero_cb, NULL));
	ASSERT_EQ(0, muser_dev_set_priv(self->dev, &self->seen));
	ASSERT_EQ(0, muser_set_reset_cb(self->dev, on_reset, NULL));
	ASSERT_EQ(0, muser_set_dma_revoke_cb(self->dev, on_revoke, &self->seen));
	ASSERT_EQ(0, muser_realize(self->dev));

	test_rig_open_vmm(&self->r);
	self->guest = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->guest);
	fill(self->guest, GUEST_SIZE, 1);
	test_vmm_map(&self->r.c, self->guest, GUEST_IOVA, GUEST_SIZE);
	drain(self->dev);
}

FIXTURE_TEARDOWN(lib)
{
	vfio_client_close(&self->r.c);
	muser_dev_destroy(self->dev);
	RIG_TEARDOWN(&self->r);
}

TEST_F(lib, map_scatter_list)
{
	struct muser_sg sg[4], again[4];
	uint64_t iova = GUEST_IOVA + CHUNK - 3 * PG + 100;
	size_t len = 2 * CHUNK;	/* spans three chunks */
	int n, i;

	EXPECT_EQ(-1, muser_dma_map(self->dev, iova, len, MUSER_DMA_READ, sg, 2));
	EXPECT_EQ(ENOBUFS, errno);
	n = muser_dma_map(self->dev, iova, len, MUSER_DMA_READ | MUSER_DMA_WRITE,
			  sg, 4);
	ASSERT_EQ(3, n) TH_LOG("%m");
	EXPECT_EQ(iova, sg[0].iova);
	EXPECT_EQ(3 * PG - 100, sg[0].len);
	EXPECT_EQ(GUEST_IOVA + CHUNK, sg[1].iova);
	EXPECT_EQ(CHUNK, sg[1].len);
	EXPECT_EQ(len, sg[0].len + sg[1].len + sg[2].len);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(0, memcmp(sg[i].addr, self->guest + (sg[i].iova - GUEST_IOVA),
				    sg[i].len));
	}
	/* Writes through the pointers are the guest's memory. */
	memset(sg[1].addr, 0xab, 64);
	EXPECT_EQ(0xab, self->guest[CHUNK + 63]);

	/* Mapping it again is the same memory, at the same place. */
	ASSERT_EQ(3, muser_dma_map(self->dev, iova, len, MUSER_DMA_READ, again, 4));
	for (i = 0; i < n; i++)
		EXPECT_EQ(sg[i].addr, again[i].addr);
	EXPECT_EQ(0, muser_dma_unmap(self->dev, again, 3));
	EXPECT_EQ(0, muser_dma_unmap(self->dev, sg, 3));
	EXPECT_EQ(-1, muser_dma_unmap(self->dev, sg, 1));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(lib, copies_and_errors)
{
	uint8_t buf[3 * PG], back[3 * PG];
	struct muser_sg sg;

	ASSERT_EQ(0, muser_dma_read(self->dev, GUEST_IOVA + CHUNK - PG, buf,
				    sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, self->guest + CHUNK - PG, sizeof(buf)));
	fill(buf, sizeof(buf), 77);
	ASSERT_EQ(0, muser_dma_write(self->dev, GUEST_IOVA + 17, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(self->guest + 17, buf, sizeof(buf)));
	ASSERT_EQ(0, muser_dma_read(self->dev, GUEST_IOVA + 17, back, sizeof(back)));
	EXPECT_EQ(0, memcmp(back, buf, sizeof(buf)));

	EXPECT_EQ(-1, muser_dma_read(self->dev, 64ul << 30, buf, 8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, muser_dma_map(self->dev, 64ul << 30, 8, MUSER_DMA_READ, &sg, 1));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, muser_dma_map(self->dev, GUEST_IOVA, 0, MUSER_DMA_READ, &sg, 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, muser_dma_map(self->dev, GUEST_IOVA, 8, 0, &sg, 1));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(lib, revoked_then_remapped)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap), .iova = GUEST_IOVA, .size = GUEST_SIZE,
	};
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map), .flags = RW, .iova = GUEST_IOVA,
		.size = GUEST_SIZE,
	};
	struct muser_sg sg;
	uint8_t b[8];

	ASSERT_EQ(1, muser_dma_map(self->dev, GUEST_IOVA + PG, PG,
				   MUSER_DMA_READ, &sg, 1));
	ASSERT_EQ(0, ioctl(self->r.c.container, VFIO_IOMMU_UNMAP_DMA, &unmap));
	drain(self->dev);
	EXPECT_EQ(1, self->seen.revokes);
	EXPECT_EQ(GUEST_IOVA, self->seen.iova);
	EXPECT_EQ(GUEST_SIZE, self->seen.size);
	EXPECT_EQ(-1, muser_dma_read(self->dev, GUEST_IOVA + PG, b, sizeof(b)));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, muser_dma_unmap(self->dev, &sg, 1));

	/* The guest's memory comes back (QEMU remaps while the guest boots). */
	map.vaddr = (uintptr_t)self->guest;
	ASSERT_EQ(0, ioctl(self->r.c.container, VFIO_IOMMU_MAP_DMA, &map));
	ASSERT_EQ(1, muser_dma_map(self->dev, GUEST_IOVA + PG, PG,
				   MUSER_DMA_READ, &sg, 1));
	EXPECT_EQ(0, memcmp(sg.addr, self->guest + PG, PG));
	EXPECT_EQ(0, muser_dma_unmap(self->dev, &sg, 1));
}

TEST_F(lib, vmm_close_resets_device)
{
	struct muser_sg sg;

	ASSERT_EQ(1, muser_dma_map(self->dev, GUEST_IOVA, PG, MUSER_DMA_READ, &sg, 1));
	vfio_client_close(&self->r.c);
	drain(self->dev);
	EXPECT_EQ(1, self->seen.revokes);
	EXPECT_EQ(0, self->seen.iova);
	EXPECT_EQ(UINT64_MAX, self->seen.size);
	EXPECT_EQ(1, self->seen.resets);
	EXPECT_EQ(MUSER_RESET_VMM_CLOSE, self->seen.reason);
	EXPECT_EQ(0, muser_dma_unmap(self->dev, &sg, 1));
	EXPECT_EQ(-1, muser_dma_map(self->dev, GUEST_IOVA, PG, MUSER_DMA_READ, &sg, 1));
	EXPECT_EQ(ENXIO, errno);
}

TEST_HARNESS_MAIN
