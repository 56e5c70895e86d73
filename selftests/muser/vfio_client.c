// SPDX-License-Identifier: GPL-2.0
/*
 * A VFIO client doing what a VMM does, against the gpio-pci-idio-16 sample
 * emulator: container, group, TYPE1v2, MAP_DMA, device fd, device, region
 * and irq info, config space and BAR2 accesses, SET_IRQS, reset, and the
 * error cases (argsz, indexes, out-of-range accesses).
 *
 * Each test gets a fresh mdev and a fresh sample process, so the sample's
 * BAR2 counter starts at 0.
 *
 * Environment: MUSER_SAMPLE (path of the sample), MUSER_SAMPLE_ARGS (extra
 * arguments, e.g. the sample's wrong-reply option; see selftests/bite.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "harness.h"
#include "fixture.h"

#ifndef offsetofend
#define offsetofend(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))
#endif

FIXTURE(sample) {
	struct rig r;		/* the emulator is the sample process */
	struct vfio_device_info info;
};

FIXTURE_SETUP(sample)
{
	int ret;

	RIG_SETUP(&self->r, NULL, RIG_NO_CTL | RIG_NO_VMM);
	if (access(sample_path(), X_OK))
		SKIP(return, "sample not built: %s", sample_path());
	ret = rig_start_emulator(&self->r, NULL, NULL);
	ASSERT_EQ(0, ret) TH_LOG("start %s: %s", sample_path(), strerror(-ret));
	test_rig_open_vmm(&self->r);

	self->info.argsz = sizeof(self->info);
	ASSERT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_GET_INFO, &self->info))
		TH_LOG("VFIO_DEVICE_GET_INFO: %m");
}

FIXTURE_TEARDOWN(sample)
{
	RIG_TEARDOWN(&self->r);
}

TEST_F(sample, device_info)
{
	SKIP_IF_SETUP_SKIPPED();
	EXPECT_TRUE(self->info.flags & VFIO_DEVICE_FLAGS_PCI);
	EXPECT_TRUE(self->info.flags & VFIO_DEVICE_FLAGS_RESET);
	EXPECT_LE(VFIO_PCI_NUM_REGIONS - 1, self->info.num_regions);
	EXPECT_GE(VFIO_PCI_NUM_REGIONS, self->info.num_regions);
	EXPECT_EQ(VFIO_PCI_NUM_IRQS, self->info.num_irqs);
}

/* TEST_LENGTH style: argsz below minsz fails, minsz and larger succeed. */
TEST_F(sample, device_info_argsz)
{
	const size_t minsz = offsetofend(struct vfio_device_info, num_irqs);
	struct {
		struct vfio_device_info info;
		uint8_t extra[64];
	} big;
	uint32_t sizes[] = { 0, 1, minsz - 1 };
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		memset(&big, 0, sizeof(big));
		big.info.argsz = sizes[i];
		EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_GET_INFO, &big))
			TH_LOG("argsz %u accepted", sizes[i]);
		EXPECT_EQ(EINVAL, errno);
	}
	memset(&big, 0, sizeof(big));
	big.info.argsz = minsz;
	ASSERT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_GET_INFO, &big));
	EXPECT_EQ(self->info.num_regions, big.info.num_regions);
	EXPECT_EQ(self->info.num_irqs, big.info.num_irqs);

	memset(&big, 0xa5, sizeof(big));
	big.info.argsz = sizeof(big);
	ASSERT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_GET_INFO, &big));
	EXPECT_EQ(self->info.flags, big.info.flags);
	EXPECT_EQ(self->info.num_regions, big.info.num_regions);
	EXPECT_EQ(self->info.num_irqs, big.info.num_irqs);
	/* The kernel writes at most argsz bytes. */
	for (i = 0; i < sizeof(big.extra); i++)
		ASSERT_EQ(0xa5, big.extra[i]);
}

TEST_F(sample, region_info)
{
	struct vfio_region_info ri;
	uint32_t i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < self->info.num_regions; i++) {
		ASSERT_EQ(0, get_region_info(self->r.c.device, i, &ri))
			TH_LOG("region %u: %m", i);
		EXPECT_EQ(i, ri.index);
		EXPECT_EQ(MUSER_REGION_OFFSET(i), ri.offset)
			TH_LOG("region %u offset 0x%llx", i,
			       (unsigned long long)ri.offset);
		/* Nothing is mmap()able (yet): every access is trapped. */
		EXPECT_FALSE(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
		switch (i) {
		case VFIO_PCI_CONFIG_REGION_INDEX:
			EXPECT_EQ(256, ri.size);
			EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ |
				  VFIO_REGION_INFO_FLAG_WRITE,
				  ri.flags & (VFIO_REGION_INFO_FLAG_READ |
					      VFIO_REGION_INFO_FLAG_WRITE));
			break;
		case VFIO_PCI_BAR2_REGION_INDEX:
			EXPECT_EQ(SAMPLE_BAR2_SIZE, ri.size);
			EXPECT_EQ(VFIO_REGION_INFO_FLAG_READ |
				  VFIO_REGION_INFO_FLAG_WRITE,
				  ri.flags & (VFIO_REGION_INFO_FLAG_READ |
					      VFIO_REGION_INFO_FLAG_WRITE));
			break;
		default:
			/* The sample has no other BAR, no ROM, no VGA. */
			EXPECT_EQ(0, ri.size)
				TH_LOG("region %u size 0x%llx", i,
				       (unsigned long long)ri.size);
			break;
		}
	}
}

TEST_F(sample, region_info_errors)
{
	const size_t minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_region_info ri;
	uint32_t sizes[] = { 0, 4, minsz - 1 };
	uint32_t bad_idx[] = { self->info.num_regions, 64, 0x7fffffff,
			       0xffffffff };
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		memset(&ri, 0, sizeof(ri));
		ri.argsz = sizes[i];
		ri.index = VFIO_PCI_CONFIG_REGION_INDEX;
		EXPECT_EQ(-1, ioctl(self->r.c.device,
				    VFIO_DEVICE_GET_REGION_INFO, &ri))
			TH_LOG("argsz %u accepted", sizes[i]);
		EXPECT_EQ(EINVAL, errno);
	}
	memset(&ri, 0, sizeof(ri));
	ri.argsz = minsz;
	ri.index = VFIO_PCI_CONFIG_REGION_INDEX;
	ASSERT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_GET_REGION_INFO, &ri));
	EXPECT_EQ(256, ri.size);

	for (i = 0; i < ARRAY_SIZE(bad_idx); i++) {
		memset(&ri, 0, sizeof(ri));
		ri.argsz = sizeof(ri);
		ri.index = bad_idx[i];
		EXPECT_EQ(-1, ioctl(self->r.c.device,
				    VFIO_DEVICE_GET_REGION_INFO, &ri))
			TH_LOG("index %u accepted", bad_idx[i]);
		EXPECT_EQ(EINVAL, errno);
	}
}

TEST_F(sample, irq_info)
{
	struct vfio_irq_info ii;
	uint32_t i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < self->info.num_irqs; i++) {
		ASSERT_EQ(0, get_irq_info(self->r.c.device, i, &ii))
			TH_LOG("irq index %u: %m", i);
		EXPECT_EQ(i, ii.index);
		if (ii.count)
			EXPECT_TRUE(ii.flags & VFIO_IRQ_INFO_EVENTFD)
				TH_LOG("irq index %u count %u flags 0x%x", i,
				       ii.count, ii.flags);
	}
	ASSERT_EQ(0, get_irq_info(self->r.c.device, VFIO_PCI_REQ_IRQ_INDEX, &ii));
	EXPECT_EQ(1, ii.count);
	EXPECT_TRUE(ii.flags & VFIO_IRQ_INFO_EVENTFD);
	ASSERT_EQ(0, get_irq_info(self->r.c.device, VFIO_PCI_INTX_IRQ_INDEX, &ii));
	EXPECT_GE(1, ii.count);
}

TEST_F(sample, irq_info_errors)
{
	const size_t minsz = offsetofend(struct vfio_irq_info, count);
	struct vfio_irq_info ii;
	uint32_t sizes[] = { 0, 4, minsz - 1 };
	uint32_t bad_idx[] = { self->info.num_irqs, 9, 0xffffffff };
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		memset(&ii, 0, sizeof(ii));
		ii.argsz = sizes[i];
		ii.index = VFIO_PCI_REQ_IRQ_INDEX;
		EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_GET_IRQ_INFO,
				    &ii))
			TH_LOG("argsz %u accepted", sizes[i]);
		EXPECT_EQ(EINVAL, errno);
	}
	for (i = 0; i < ARRAY_SIZE(bad_idx); i++) {
		memset(&ii, 0, sizeof(ii));
		ii.argsz = sizeof(ii);
		ii.index = bad_idx[i];
		EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_GET_IRQ_INFO,
				    &ii))
			TH_LOG("index %u accepted", bad_idx[i]);
		EXPECT_EQ(EINVAL, errno);
	}
}

TEST_F(sample, config_ids)
{
	uint8_t cfg[256];
	uint16_t w;
	uint32_t d;

	SKIP_IF_SETUP_SKIPPED();
	/* The whole of config space in one go, as QEMU does at realize. */
	memset(cfg, 0xee, sizeof(cfg));
	ASSERT_EQ(sizeof(cfg), region_read(&self->r.c,
					   VFIO_PCI_CONFIG_REGION_INDEX, 0,
					   cfg, sizeof(cfg)));
	EXPECT_EQ(SAMPLE_VENDOR, cfg[0] | cfg[1] << 8);
	EXPECT_EQ(SAMPLE_DEVICE, cfg[2] | cfg[3] << 8);

	/* 2- and 4-byte accesses agree. */
	ASSERT_EQ(2, region_read(&self->r.c, VFIO_PCI_CONFIG_REGION_INDEX, 0,
				 &w, 2));
	EXPECT_EQ(SAMPLE_VENDOR, w);
	ASSERT_EQ(2, region_read(&self->r.c, VFIO_PCI_CONFIG_REGION_INDEX, 2,
				 &w, 2));
	EXPECT_EQ(SAMPLE_DEVICE, w);
	ASSERT_EQ(4, region_read(&self->r.c, VFIO_PCI_CONFIG_REGION_INDEX, 0,
				 &d, 4));
	EXPECT_EQ(SAMPLE_VENDOR | SAMPLE_DEVICE << 16, d);
}

TEST_F(sample, bar2_counter)
{
	static const uint8_t want[] = { 0, 0, 0, 1, 1, 1, 2, 2, 2 };
	uint8_t got[ARRAY_SIZE(want)];
	size_t i;

	SKIP_IF_SETUP_SKIPPED();
	memset(got, 0xee, sizeof(got));
	for (i = 0; i < ARRAY_SIZE(want); i++)
		ASSERT_EQ(1, region_read(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX,
					 0, &got[i], 1));
	for (i = 0; i < ARRAY_SIZE(want); i++)
		EXPECT_EQ(want[i], got[i]) TH_LOG("read %zu", i);
}

/* The composite check that bite.sh also runs through vfio_check. */
TEST_F(sample, check_sample_device)
{
	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(0, check_sample_device(&self->r.c));
}

TEST_F(sample, bar2_write)
{
	uint8_t b = 0x5a;
	uint32_t d = 0xdeadbeef;
	uint16_t cmd;

	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(1, region_write(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX, 0,
				  &b, 1));
	EXPECT_EQ(1, region_write(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX, 1,
				  &b, 1));
	EXPECT_EQ(4, region_write(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX, 4,
				  &d, 4));
	EXPECT_EQ(4, region_write(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX,
				  SAMPLE_BAR2_SIZE - 4, &d, 4));
	/* Config space write: the command register. */
	ASSERT_EQ(2, region_read(&self->r.c, VFIO_PCI_CONFIG_REGION_INDEX, 4,
				 &cmd, 2));
	EXPECT_EQ(2, region_write(&self->r.c, VFIO_PCI_CONFIG_REGION_INDEX, 4,
				  &cmd, 2));
	/* The device still answers after the writes. */
	ASSERT_EQ(2, region_read(&self->r.c, VFIO_PCI_CONFIG_REGION_INDEX, 0,
				 &cmd, 2));
	EXPECT_EQ(SAMPLE_VENDOR, cmd);
}

/* A failed access: an error, or at most a short count that stays in range. */
static bool rejected(ssize_t ret, size_t max_ok)
{
	return ret == -EINVAL || ret == -EFAULT || ret == -ENXIO ||
	       (ret >= 0 && (size_t)ret <= max_ok);
}

TEST_F(sample, out_of_range)
{
	uint8_t buf[16] = { 0 };
	ssize_t ret;

	SKIP_IF_SETUP_SKIPPED();
	/* At the end of BAR2. */
	ret = region_read(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX,
			  SAMPLE_BAR2_SIZE, buf, 1);
	EXPECT_TRUE(rejected(ret, 0)) TH_LOG("read at end: %zd", ret);
	ret = region_write(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX,
			   SAMPLE_BAR2_SIZE, buf, 1);
	EXPECT_TRUE(rejected(ret, 0)) TH_LOG("write at end: %zd", ret);
	/* Crossing the end of BAR2. */
	ret = region_read(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX,
			  SAMPLE_BAR2_SIZE - 1, buf, 4);
	EXPECT_TRUE(rejected(ret, 1)) TH_LOG("read across end: %zd", ret);
	/* Far beyond it, within the region's 1 TiB window. */
	ret = region_read(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX,
			  0xffffffffffULL, buf, 1);
	EXPECT_TRUE(rejected(ret, 0)) TH_LOG("read far: %zd", ret);
	/* Beyond config space. */
	ret = region_read(&self->r.c, VFIO_PCI_CONFIG_REGION_INDEX, 256, buf, 4);
	EXPECT_TRUE(rejected(ret, 0)) TH_LOG("config read at 256: %zd", ret);
	/* An absent BAR. */
	ret = region_read(&self->r.c, VFIO_PCI_BAR0_REGION_INDEX, 0, buf, 4);
	EXPECT_TRUE(rejected(ret, 0)) TH_LOG("BAR0 read: %zd", ret);
	/* A region index the device does not have. */
	ret = region_read(&self->r.c, self->info.num_regions, 0, buf, 4);
	EXPECT_TRUE(rejected(ret, 0)) TH_LOG("region %u read: %zd",
					     self->info.num_regions, ret);
	ret = region_read(&self->r.c, 0xffff, 0, buf, 4);
	EXPECT_TRUE(rejected(ret, 0)) TH_LOG("region 0xffff read: %zd", ret);
	/* Zero-length access: nothing happens, no request. */
	ret = region_read(&self->r.c, VFIO_PCI_BAR2_REGION_INDEX, 0, buf, 0);
	EXPECT_TRUE(ret == 0 || ret == -EINVAL) TH_LOG("0-byte read: %zd", ret);
	/* The device still works. */
	EXPECT_EQ(0, check_sample_device(&self->r.c));
}

TEST_F(sample, set_irqs)
{
	char buf[sizeof(struct vfio_irq_set) + 4 * sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	struct vfio_irq_info ii;
	int efd, ret;

	SKIP_IF_SETUP_SKIPPED();
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);

	ASSERT_EQ(0, get_irq_info(self->r.c.device, VFIO_PCI_INTX_IRQ_INDEX, &ii));
	if (ii.count) {
		ret = set_irq_eventfd(self->r.c.device, VFIO_PCI_INTX_IRQ_INDEX,
				      0, efd);
		EXPECT_EQ(0, ret) TH_LOG("INTx trigger eventfd: %s",
					 strerror(-ret));
		/* Mask and unmask, as QEMU does. */
		memset(buf, 0, sizeof(buf));
		set->argsz = sizeof(*set);
		set->flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK;
		set->index = VFIO_PCI_INTX_IRQ_INDEX;
		set->count = 1;
		EXPECT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, set))
			TH_LOG("INTx mask: %m");
		set->flags = VFIO_IRQ_SET_DATA_NONE |
			     VFIO_IRQ_SET_ACTION_UNMASK;
		EXPECT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, set))
			TH_LOG("INTx unmask: %m");
		/* Tear down: DATA_NONE, count 0. */
		set->flags = VFIO_IRQ_SET_DATA_NONE |
			     VFIO_IRQ_SET_ACTION_TRIGGER;
		set->count = 0;
		EXPECT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, set))
			TH_LOG("INTx disable: %m");
	}

	/* REQ is always there. */
	EXPECT_EQ(0, set_irq_eventfd(self->r.c.device, VFIO_PCI_REQ_IRQ_INDEX,
				     0, efd));
	EXPECT_EQ(0, set_irq_eventfd(self->r.c.device, VFIO_PCI_REQ_IRQ_INDEX,
				     0, -1));

	/* Bad index. */
	EXPECT_EQ(-EINVAL, set_irq_eventfd(self->r.c.device, VFIO_PCI_NUM_IRQS,
					   0, efd));
	EXPECT_EQ(-EINVAL, set_irq_eventfd(self->r.c.device, 0x7fff, 0, efd));
	/* Vector beyond count: REQ has one. */
	EXPECT_EQ(-EINVAL, set_irq_eventfd(self->r.c.device,
					   VFIO_PCI_REQ_IRQ_INDEX, 1, efd));
	/* Not an eventfd. */
	ret = set_irq_eventfd(self->r.c.device, VFIO_PCI_REQ_IRQ_INDEX, 0,
			      self->r.c.container);
	EXPECT_NE(0, ret);

	/* argsz too small for the data it announces. */
	memset(buf, 0, sizeof(buf));
	set->argsz = sizeof(*set);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_REQ_IRQ_INDEX;
	set->count = 1;
	EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, set));
	EXPECT_EQ(EINVAL, errno);
	/* argsz below minsz. */
	set->argsz = offsetof(struct vfio_irq_set, count);
	EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, set));
	EXPECT_EQ(EINVAL, errno);
	/* Two data types at once. */
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_DATA_BOOL |
		     VFIO_IRQ_SET_ACTION_TRIGGER;
	EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_SET_IRQS, set));
	EXPECT_EQ(EINVAL, errno);

	close(efd);
}

TEST_F(sample, reset)
{
	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_RESET)) TH_LOG("%m");
	/* Still answers afterwards. */
	EXPECT_EQ(0, check_sample_device(&self->r.c));
}

TEST_F(sample, dma_unmap_remap)
{
	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap) };
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };

	SKIP_IF_SETUP_SKIPPED();
	unmap.iova = 0;
	unmap.size = DMA_SIZE;
	ASSERT_EQ(0, ioctl(self->r.c.container, VFIO_IOMMU_UNMAP_DMA, &unmap))
		TH_LOG("%m");
	EXPECT_EQ(DMA_SIZE, unmap.size);
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	map.vaddr = (uintptr_t)self->r.c.dma;
	map.iova = 1UL << 30;
	map.size = DMA_SIZE;
	EXPECT_EQ(0, ioctl(self->r.c.container, VFIO_IOMMU_MAP_DMA, &map))
		TH_LOG("%m");
	EXPECT_EQ(0, check_sample_device(&self->r.c));
}

/* Closing and reopening the device fd, as a VMM restart would. */
TEST_F(sample, reopen_device)
{
	int fd;

	SKIP_IF_SETUP_SKIPPED();
	/* One open at a time per device for mdev drivers is not required:
	 * only check that close + reopen works.
	 */
	close(self->r.c.device);
	self->r.c.device = -1;
	fd = ioctl(self->r.c.group, VFIO_GROUP_GET_DEVICE_FD, self->r.uuid);
	ASSERT_LE(0, fd) TH_LOG("%m");
	self->r.c.device = fd;
	EXPECT_EQ(0, check_sample_device(&self->r.c));
}

TEST_HARNESS_MAIN
