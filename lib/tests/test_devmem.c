// SPDX-License-Identifier: BSD-3-Clause
/*
 * Device memory areas (argument checks, the attach layout) and the VMM's
 * interrupt notifications (a posted request: callback, no reply).
 */
#include <errno.h>
#include <string.h>

#include "test.h"
#include "test_util.h"

int test_failures;

#define PAGE	4096u

static ssize_t bar_cb(struct muser_dev *dev, void *priv, void *buf,
		      size_t count, uint64_t offset, bool is_write)
{
	(void)dev; (void)priv; (void)buf; (void)offset; (void)is_write;
	return count;
}

static void test_areas(void)
{
	struct tctx t;
	const struct muser_device_info *info;

	tctx_init(&t);
	CHECK_EQ(muser_setup_bar(t.dev, 0, 4 * PAGE, MUSER_BAR_MEM64, bar_cb, NULL), 0);
	CHECK_EQ(muser_setup_bar(t.dev, 2, 4 * PAGE, MUSER_BAR_MEM32, bar_cb, NULL), 0);
	CHECK_EQ(muser_setup_bar(t.dev, 4, 256, MUSER_BAR_IO, bar_cb, NULL), 0);
	CHECK_EQ(muser_add_cap_msix(t.dev, 4, 2, 0, 2, PAGE), 0x40);

	CHECK_ERR(muser_setup_bar_mmap(t.dev, 0, 100, PAGE), EINVAL);	/* unaligned */
	CHECK_ERR(muser_setup_bar_mmap(t.dev, 0, PAGE, 4 * PAGE), EINVAL);	/* beyond */
	CHECK_ERR(muser_setup_bar_mmap(t.dev, 1, 0, PAGE), EINVAL);	/* upper half */
	CHECK_ERR(muser_setup_bar_mmap(t.dev, 3, 0, PAGE), EINVAL);	/* absent */
	CHECK_ERR(muser_setup_bar_mmap(t.dev, 4, 0, PAGE), EINVAL);	/* I/O */
	CHECK_ERR(muser_setup_bar_mmap(t.dev, 2, 0, PAGE), EINVAL);	/* MSI-X table */
	CHECK_ERR(muser_setup_bar_mmap(t.dev, 2, PAGE, PAGE), EINVAL);	/* PBA */
	CHECK_EQ(muser_setup_bar_mmap(t.dev, 2, 2 * PAGE, 2 * PAGE), 0);
	CHECK_EQ(muser_setup_bar_mmap(t.dev, 0, PAGE, PAGE), 0);
	CHECK_ERR(muser_setup_bar_mmap(t.dev, 0, 0, 2 * PAGE), EEXIST);
	CHECK_NULL_ERR(muser_bar_map(t.dev, 0, PAGE, PAGE), EINVAL);	/* not realized */

	tctx_realize(&t);
	info = &t.fk->info;
	CHECK_EQ(info->num_mmap_areas, 2u);
	CHECK_EQ(info->mmap_areas[0].region, (uint32_t)VFIO_PCI_BAR2_REGION_INDEX);
	CHECK_EQ(info->mmap_areas[0].offset, 2ull * PAGE);
	CHECK_EQ(info->mmap_areas[0].size, 2ull * PAGE);
	CHECK_EQ(info->mmap_areas[1].region, (uint32_t)VFIO_PCI_BAR0_REGION_INDEX);
	CHECK_EQ(info->mmap_areas[1].offset, (uint64_t)PAGE);
	CHECK_ERR(muser_setup_bar_mmap(t.dev, 0, 2 * PAGE, PAGE), EBUSY);
	tctx_fini(&t);
}

struct seen {
	unsigned int calls[MUSER_NUM_IRQS];
	unsigned int changed;
};

static void irq_state_cb(struct muser_dev *dev, void *priv, unsigned int index,
			 unsigned int changed)
{
	struct seen *s = priv;

	(void)dev;
	s->calls[index]++;
	s->changed |= changed;
}

static void test_vmm_irq_state(void)
{
	struct seen seen = { { 0 }, 0 };
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_setup_bar(t.dev, 0, PAGE, MUSER_BAR_MEM32, bar_cb, NULL), 0);
	CHECK_EQ(muser_pci_set_irq_pin(t.dev, 1), 0);
	CHECK_EQ(muser_add_cap_msix(t.dev, 4, 0, 0, 0, 0x800), 0x40);
	CHECK_EQ(muser_set_irq_state_cb(t.dev, irq_state_cb, &seen), 0);
	tctx_realize(&t);

	/* A posted notice between two ordinary requests: no reply of its own. */
	fake_queue(t.fk, 0, MUSER_REQ_IRQ_STATE, 0, 0, 0, 0, NULL, 0);
	fake_queue(t.fk, 7, MUSER_REQ_RESET, 0, 0, 0, 0, NULL, 0);
	CHECK(muser_dispatch(t.dev) >= 1);
	CHECK_EQ(t.fk->nreplies, 1u);
	CHECK(fake_reply(t.fk, 7) != NULL);
	CHECK(fake_reply(t.fk, 0) == NULL);
	CHECK_EQ(seen.calls[VFIO_PCI_INTX_IRQ_INDEX], 1u);
	CHECK_EQ(seen.calls[VFIO_PCI_MSIX_IRQ_INDEX], 1u);
	CHECK_EQ(seen.calls[VFIO_PCI_MSI_IRQ_INDEX], 0u);
	CHECK(seen.changed & MUSER_IRQ_CHANGED_VMM);
	tctx_fini(&t);
}

int main(void)
{
	RUN(test_areas);
	RUN(test_vmm_irq_state);
	TEST_MAIN_END();
}
