/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fixture layer of the muser selftests: a device with an emulator and
 * a VMM, set up the way most tests need it, and the calls tests make, each
 * in three forms, in the style of tools/testing/selftests/iommu/
 * iommufd_utils.h:
 *
 *   _test_x(...)        returns 0 (or a value) or -errno; never asserts
 *   test_x(...)         ASSERT_EQ(0, _test_x(...)), in a harness test
 *   test_err_x(E, ...)  ASSERT_EQ(-E, _test_x(...))
 *
 * Needs the harness (harness.h) included first for the test_ forms.
 */
#ifndef MUSER_SELFTEST_FIXTURE_H
#define MUSER_SELFTEST_FIXTURE_H

#include "common.h"

/**
 * struct rig - one mdev, its emulator's control node and a VMM.
 * @uuid:    the mdev
 * @created: the mdev exists (rig_teardown() removes it)
 * @kmsg:    kmsg_start() of the test; rig_teardown() checks the log
 * @ctl:     the control node, attached with @layout unless RIG_DETACHED
 * @layout:  what the rig attached with
 * @c:       the VMM (container, group, 2 MiB of DMA at iova 0, device),
 *           open unless RIG_NO_VMM
 */
struct rig {
	char uuid[UUID_LEN + 1];
	bool created;
	int kmsg;
	int ctl;
	struct muser_device_info layout;
	struct vfio_client c;
};

#define RIG_NONBLOCK	(1u << 0)	/* the control node is O_NONBLOCK */
#define RIG_DETACHED	(1u << 1)	/* open the control node, no attach */
#define RIG_NO_VMM	(1u << 2)	/* no VFIO client */

/* Nothing open: what rig_teardown() may always be called on. */
void rig_init(struct rig *r);
/*
 * Create an mdev, open and attach its control node with @layout (NULL:
 * layout_default()), open it as a VMM; drains nothing. Returns 0 or -errno
 * with *@step naming what failed.
 */
int rig_setup(struct rig *r, const char *name,
	      const struct muser_device_info *layout, unsigned int flags,
	      const char **step);
/* Open the VMM side of a rig set up with RIG_NO_VMM. */
int rig_open_vmm(struct rig *r, const char **step);
/*
 * Close everything, check that nothing stayed pinned, remove the mdev and
 * check the kernel log. Returns the number of problems, described on
 * stderr.
 */
int rig_teardown(struct rig *r);

#define RIG_SETUP(r, layout, flags) do {				\
	const char *_step = "?";					\
	int _ret;							\
	rig_init(r);							\
	REQUIRE_MUSER();						\
	_ret = rig_setup(r, _metadata->name, layout, flags, &_step);	\
	ASSERT_EQ(0, _ret) TH_LOG("%s: %s", _step, strerror(-_ret));	\
} while (0)

#define RIG_TEARDOWN(r)							\
	EXPECT_EQ(0, rig_teardown(r)) TH_LOG("teardown found problems, see above")

/* --- guest memory, emulator side (MUSER_IOC_DMA_*) --- */
int _test_dma_map(int ctl, uint64_t iova, uint64_t size, uint32_t flags,
		  uint64_t *offset);
int _test_dma_release(int ctl, uint64_t iova, uint64_t size);
int _test_dma_rw(int ctl, uint64_t iova, void *buf, uint64_t size, bool write);

#define test_dma_map(ctl, iova, size, flags) \
	ASSERT_EQ(0, _test_dma_map(ctl, iova, size, flags, NULL))
#define test_err_dma_map(err, ctl, iova, size, flags) \
	ASSERT_EQ(-(err), _test_dma_map(ctl, iova, size, flags, NULL))
#define test_dma_release(ctl, iova, size) \
	ASSERT_EQ(0, _test_dma_release(ctl, iova, size))
#define test_dma_rw(ctl, iova, buf, size, write) \
	ASSERT_EQ(0, _test_dma_rw(ctl, iova, buf, size, write))
#define test_err_dma_rw(err, ctl, iova, buf, size, write) \
	ASSERT_EQ(-(err), _test_dma_rw(ctl, iova, buf, size, write))

/* --- guest memory, VMM side (VFIO_IOMMU_MAP_DMA / UNMAP_DMA) --- */
#define VMM_RW	(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

int _test_vmm_map(struct vfio_client *c, void *vaddr, uint64_t iova,
		  uint64_t size, uint32_t flags);
int _test_vmm_unmap(struct vfio_client *c, uint64_t iova, uint64_t size);

#define test_vmm_map(c, vaddr, iova, size) \
	ASSERT_EQ(0, _test_vmm_map(c, vaddr, iova, size, VMM_RW))
#define test_vmm_unmap(c, iova, size) \
	ASSERT_EQ(0, _test_vmm_unmap(c, iova, size))

/* --- memory that may fault --- */
/* Read a byte; false if that raised SIGBUS (or SIGSEGV). */
bool touch(volatile const uint8_t *p, uint8_t *val);
/* Write a byte; false if that raised SIGBUS (or SIGSEGV). */
bool poke(volatile uint8_t *p, uint8_t val);

#endif
