// SPDX-License-Identifier: BSD-3-Clause
/*
 * MSI-X: the capability's registers, the table and PBA served through the
 * BAR path with the rest of the BAR split off to the callback, the
 * Function Mask and vector Mask bits holding triggers in the PBA and
 * sending them on unmask, the QEMU case (table never written), resets,
 * argument checks and the layout.
 */
#include <errno.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "test.h"
#include "test_util.h"

int test_failures;

#define MSIX		VFIO_PCI_MSIX_IRQ_INDEX
#define CAP		0x40
#define CTRL		(CAP + PCI_MSIX_FLAGS)
#define NVEC		70		/* two PBA qwords */
#define TABLE_BAR	0
#define TABLE_OFF	0x2000
#define PBA_BAR		2
#define PBA_OFF		0x100
#define BAR_SIZE	0x4000

#define LOG_MAX		8

struct bar_log {
	unsigned int n;
	struct { int bar; uint64_t off; size_t count; bool is_write; } calls[LOG_MAX];
	uint8_t regs[2][BAR_SIZE];
};

static ssize_t bar_cb(struct muser_dev *dev, void *priv, void *buf,
		      size_t count, uint64_t offset, bool is_write, int bar)
{
	struct bar_log *l = priv;

	(void)dev;
	if (l->n < LOG_MAX)
		l->calls[l->n] = (typeof(l->calls[0])){ bar, offset, count, is_write };
	l->n++;
	if (is_write)
		memcpy(&l->regs[bar / 2][offset], buf, count);
	else
		memcpy(buf, &l->regs[bar / 2][offset], count);
	return count;
}

static ssize_t bar0_cb(struct muser_dev *dev, void *priv, void *buf,
		       size_t count, uint64_t offset, bool is_write)
{
	return bar_cb(dev, priv, buf, count, offset, is_write, 0);
}

static ssize_t bar2_cb(struct muser_dev *dev, void *priv, void *buf,
		       size_t count, uint64_t offset, bool is_write)
{
	return bar_cb(dev, priv, buf, count, offset, is_write, 2);
}

struct irq_log {
	unsigned int n, changed;
};

static void irq_state_cb(struct muser_dev *dev, void *priv, unsigned int index,
			 unsigned int changed)
{
	struct irq_log *l = priv;

	(void)dev;
	CHECK_EQ(index, MSIX);
	l->n++;
	l->changed = changed;
}

/* BAR0 64-bit with the table, BAR2 32-bit with the PBA, both with callbacks. */
static void setup(struct tctx *t, struct bar_log *bl, struct irq_log *il)
{
	tctx_init(t);
	CHECK_EQ(muser_setup_bar(t->dev, 0, BAR_SIZE, MUSER_BAR_MEM64, bar0_cb, bl), 0);
	CHECK_EQ(muser_setup_bar(t->dev, 2, BAR_SIZE, MUSER_BAR_MEM32, bar2_cb, bl), 0);
	CHECK_EQ(muser_set_irq_state_cb(t->dev, irq_state_cb, il), 0);
	CHECK_EQ(muser_add_cap_msix(t->dev, NVEC, TABLE_BAR, TABLE_OFF, PBA_BAR,
				    PBA_OFF), CAP);
	tctx_realize(t);
}

static uint64_t entry(unsigned int v, unsigned int reg)
{
	return TABLE_OFF + v * PCI_MSIX_ENTRY_SIZE + reg;
}

#define tbl_rd(t, v, reg)	trd(t, TABLE_BAR, entry(v, reg), 4)
#define tbl_wr(t, v, reg, x)	twr(t, TABLE_BAR, entry(v, reg), 4, x)
#define pba_rd(t, q)		trd(t, PBA_BAR, PBA_OFF + 4 * (q), 4)

static void test_msix_regs(void)
{
	struct bar_log bl = { 0 };
	struct irq_log il = { 0 };
	struct tctx t;

	setup(&t, &bl, &il);
	CHECK_EQ(t.fk->info.irqs[MSIX].count, NVEC);
	CHECK_EQ(t.fk->info.irqs[MSIX].flags,
		 VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE);
	CHECK_EQ(cfg_rd(&t, CAP, 2), PCI_CAP_ID_MSIX);
	CHECK_EQ(cfg_rd(&t, CTRL, 2), NVEC - 1);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_MSIX_TABLE, 4), TABLE_OFF | TABLE_BAR);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_MSIX_PBA, 4), PBA_OFF | PBA_BAR);
	cfg_wr(&t, CTRL, 2, 0xffff);
	CHECK_EQ(cfg_rd(&t, CTRL, 2), PCI_MSIX_FLAGS_ENABLE |
				      PCI_MSIX_FLAGS_MASKALL | (NVEC - 1));
	CHECK_EQ(il.n, 1);
	CHECK_EQ(il.changed, MUSER_IRQ_CHANGED_ENABLE | MUSER_IRQ_CHANGED_MASK);
	cfg_wr(&t, CAP + PCI_MSIX_TABLE, 4, 0);
	cfg_wr(&t, CAP + PCI_MSIX_PBA, 4, 0);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_MSIX_TABLE, 4), TABLE_OFF | TABLE_BAR);
	CHECK_EQ(cfg_rd(&t, CAP + PCI_MSIX_PBA, 4), PBA_OFF | PBA_BAR);
	cfg_wr(&t, CTRL, 1, 0xff);	/* the low byte is all Table Size */
	CHECK_EQ(il.n, 1);
	CHECK_EQ(muser_irq_guest_state(t.dev, MSIX, 0),
		 MUSER_IRQ_S_ENABLED | MUSER_IRQ_S_MASKED);
	tctx_fini(&t);
}

/* The table and PBA are the library's; the rest of the BAR the callback's. */
static void test_msix_bar_split(void)
{
	struct bar_log bl = { 0 };
	struct irq_log il = { 0 };
	uint8_t buf[0x1000];
	struct tctx t;
	unsigned int v;

	setup(&t, &bl, &il);
	/* power-on: zeros, every vector masked; nothing pending */
	for (v = 0; v < NVEC; v++) {
		CHECK_EQ(tbl_rd(&t, v, PCI_MSIX_ENTRY_LOWER_ADDR), 0);
		CHECK_EQ(tbl_rd(&t, v, PCI_MSIX_ENTRY_VECTOR_CTRL),
			 PCI_MSIX_ENTRY_CTRL_MASKBIT);
	}
	CHECK_EQ(pba_rd(&t, 0) | pba_rd(&t, 1) | pba_rd(&t, 2) | pba_rd(&t, 3), 0);
	CHECK_EQ(bl.n, 0);

	/* address (dword aligned), upper address, data, only the Mask bit */
	tbl_wr(&t, 5, PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee00003);
	tbl_wr(&t, 5, PCI_MSIX_ENTRY_UPPER_ADDR, 0x12345678);
	tbl_wr(&t, 5, PCI_MSIX_ENTRY_DATA, 0xdeadbeef);
	tbl_wr(&t, 5, PCI_MSIX_ENTRY_VECTOR_CTRL, 0xfffffffe);
	CHECK_EQ(tbl_rd(&t, 5, PCI_MSIX_ENTRY_LOWER_ADDR), 0xfee00000);
	CHECK_EQ(tbl_rd(&t, 5, PCI_MSIX_ENTRY_UPPER_ADDR), 0x12345678);
	CHECK_EQ(tbl_rd(&t, 5, PCI_MSIX_ENTRY_DATA), 0xdeadbeef);
	CHECK_EQ(tbl_rd(&t, 5, PCI_MSIX_ENTRY_VECTOR_CTRL), 0);
	CHECK_EQ(tbl_rd(&t, 4, PCI_MSIX_ENTRY_DATA), 0);
	/* an 8-byte access of an entry's address */
	CHECK_EQ(treq(&t, TABLE_BAR, entry(5, 0), buf, 8, false), 0);
	CHECK_EQ(buf[0] | buf[7] << 8, 0x1200);
	/* the PBA ignores writes */
	twr(&t, PBA_BAR, PBA_OFF, 4, 0xffffffff);
	CHECK_EQ(pba_rd(&t, 0), 0);
	CHECK_EQ(bl.n, 0);

	/* an access across the start of the table is split */
	memset(buf, 0xaa, sizeof(buf));
	CHECK_EQ(treq(&t, TABLE_BAR, TABLE_OFF - 4, buf, 8, true), 0);
	CHECK_EQ(bl.n, 1);
	CHECK_EQ(bl.calls[0].bar, 0);
	CHECK_EQ(bl.calls[0].off, TABLE_OFF - 4);
	CHECK_EQ(bl.calls[0].count, 4);
	CHECK(bl.calls[0].is_write);
	CHECK_EQ(tbl_rd(&t, 0, PCI_MSIX_ENTRY_LOWER_ADDR), 0xaaaaaaa8);
	/* one read over the callback's part, the whole table, its part again */
	bl.n = 0;
	bl.regs[0][0x1fff] = 0x11;
	bl.regs[0][TABLE_OFF + NVEC * 16] = 0x22;
	CHECK_EQ(treq(&t, TABLE_BAR, 0x1c00, buf, 0x1000, false), 0);
	CHECK_EQ(bl.n, 2);
	CHECK_EQ(bl.calls[0].off, 0x1c00);
	CHECK_EQ(bl.calls[0].count, 0x400);
	CHECK_EQ(bl.calls[1].off, TABLE_OFF + NVEC * 16);
	CHECK_EQ(bl.calls[1].count, 0x2c00 - (TABLE_OFF + NVEC * 16));
	CHECK_EQ(buf[0x3ff], 0x11);
	CHECK_EQ(buf[0x400], 0xa8);
	CHECK_EQ(buf[0x400 + 5 * 16 + 8], 0xef);
	CHECK_EQ(buf[0x400 + 5 * 16 + 12], 0);
	CHECK_EQ(buf[0x400 + 6 * 16 + 12], 1);
	CHECK_EQ(buf[0x400 + NVEC * 16], 0x22);
	/* the PBA's BAR: before and after the 16 PBA bytes */
	bl.n = 0;
	CHECK_EQ(treq(&t, PBA_BAR, PBA_OFF - 8, buf, 32, false), 0);
	CHECK_EQ(bl.n, 2);
	CHECK_EQ(bl.calls[0].off, PBA_OFF - 8);
	CHECK_EQ(bl.calls[0].count, 8);
	CHECK_EQ(bl.calls[1].off, PBA_OFF + 16);
	CHECK_EQ(bl.calls[1].count, 8);
	/* BAR2 at the table's offset is the callback's */
	bl.n = 0;
	CHECK_EQ(trd(&t, 2, TABLE_OFF, 4), 0);
	CHECK_EQ(bl.n, 1);
	tctx_fini(&t);
}

static void test_msix_function_mask(void)
{
	struct bar_log bl = { 0 };
	struct irq_log il = { 0 };
	struct tctx t;

	setup(&t, &bl, &il);
	cfg_wr(&t, CTRL, 2, PCI_MSIX_FLAGS_ENABLE);
	/* the table was never written (as under QEMU): its masks do not count */
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 3), 0);
	CHECK_EQ(t.fk->ntriggers, 1);
	CHECK_EQ(t.fk->triggers[0].index, MSIX);
	CHECK_EQ(t.fk->triggers[0].start, 3);
	CHECK_EQ(muser_irq_guest_state(t.dev, MSIX, 3), MUSER_IRQ_S_ENABLED);

	/* Function Mask: held in the PBA */
	il.n = 0;
	cfg_wr(&t, CTRL, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	CHECK_EQ(il.n, 1);
	CHECK_EQ(il.changed, MUSER_IRQ_CHANGED_MASK);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 3), 0);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 65), 0);
	CHECK_EQ(t.fk->ntriggers, 1);
	CHECK_EQ(pba_rd(&t, 0), 1u << 3);
	CHECK_EQ(pba_rd(&t, 2), 1u << 1);
	CHECK_EQ(muser_irq_guest_state(t.dev, MSIX, 65),
		 MUSER_IRQ_S_ENABLED | MUSER_IRQ_S_MASKED | MUSER_IRQ_S_PENDING);
	/* unmasked: both sent, PBA clear */
	cfg_wr(&t, CTRL, 2, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(t.fk->ntriggers, 3);
	CHECK_EQ(t.fk->triggers[1].start, 3);
	CHECK_EQ(t.fk->triggers[2].start, 65);
	CHECK_EQ(pba_rd(&t, 0) | pba_rd(&t, 2), 0);
	CHECK_EQ(il.n, 2);

	CHECK_ERR(muser_irq_trigger(t.dev, MSIX, NVEC), EINVAL);
	tctx_fini(&t);
}

static void test_msix_vector_mask(void)
{
	struct bar_log bl = { 0 };
	struct irq_log il = { 0 };
	struct tctx t;

	setup(&t, &bl, &il);
	cfg_wr(&t, CTRL, 2, PCI_MSIX_FLAGS_ENABLE);
	/* the guest programs vector 5 and leaves it masked: now masks count */
	il.n = 0;
	tbl_wr(&t, 5, PCI_MSIX_ENTRY_DATA, 0x41);
	CHECK_EQ(il.n, 1);
	CHECK_EQ(il.changed, MUSER_IRQ_CHANGED_MASK);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 5), 0);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 6), 0);
	CHECK_EQ(t.fk->ntriggers, 0);
	CHECK_EQ(pba_rd(&t, 0), 0x60);
	/* data writes change no mask: no callback */
	tbl_wr(&t, 5, PCI_MSIX_ENTRY_DATA, 0x42);
	CHECK_EQ(il.n, 1);

	/* unmask vector 5 under the Function Mask: still held */
	cfg_wr(&t, CTRL, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	tbl_wr(&t, 5, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	CHECK_EQ(t.fk->ntriggers, 0);
	CHECK_EQ(pba_rd(&t, 0), 0x60);
	/* the Function Mask goes: vector 5 is sent, 6 stays pending */
	cfg_wr(&t, CTRL, 2, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(t.fk->ntriggers, 1);
	CHECK_EQ(t.fk->triggers[0].start, 5);
	CHECK_EQ(pba_rd(&t, 0), 0x40);
	/* unmasking vector 6 through a byte write of Vector Control */
	CHECK_EQ(treq(&t, TABLE_BAR, entry(6, PCI_MSIX_ENTRY_VECTOR_CTRL),
		      (uint8_t[]){ 0 }, 1, true), 0);
	CHECK_EQ(t.fk->ntriggers, 2);
	CHECK_EQ(t.fk->triggers[1].start, 6);
	CHECK_EQ(pba_rd(&t, 0), 0);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 6), 0);
	CHECK_EQ(t.fk->ntriggers, 3);

	/* masked again, then reset: all masked, PBA clear, table unwritten */
	tbl_wr(&t, 6, PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 6), 0);
	CHECK_EQ(pba_rd(&t, 0), 0x40);
	CHECK_EQ(treset(&t), 0);
	CHECK_EQ(pba_rd(&t, 0), 0);
	CHECK_EQ(tbl_rd(&t, 5, PCI_MSIX_ENTRY_VECTOR_CTRL), 1);
	CHECK_EQ(tbl_rd(&t, 5, PCI_MSIX_ENTRY_DATA), 0);
	CHECK_EQ(cfg_rd(&t, CTRL, 2), NVEC - 1);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 6), 0);
	CHECK_EQ(t.fk->ntriggers, 4);
	tctx_fini(&t);
}

static void test_msix_arguments(void)
{
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_setup_bar(t.dev, 0, 0x1000, MUSER_BAR_MEM64, NULL, NULL), 0);
	CHECK_EQ(muser_setup_bar(t.dev, 2, 0x100, MUSER_BAR_IO, NULL, NULL), 0);
	CHECK_EQ(muser_setup_bar(t.dev, 3, 0x1000, MUSER_BAR_MEM32, NULL, NULL), 0);
	CHECK_ERR(muser_add_cap_msix(t.dev, 0, 0, 0, 0, 0x800), EINVAL);
	CHECK_ERR(muser_add_cap_msix(t.dev, 2049, 0, 0, 3, 0), EINVAL);
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, 1, 0, 0, 0x800), EINVAL);	/* upper half */
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, 2, 0, 0, 0x800), EINVAL);	/* I/O */
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, 4, 0, 0, 0x800), EINVAL);	/* absent */
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, 6, 0, 0, 0x800), EINVAL);
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, -1, 0, 0, 0x800), EINVAL);
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, 0, 4, 0, 0x800), EINVAL);	/* aligned */
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, 0, 0, 0, 0x804), EINVAL);
	CHECK_ERR(muser_add_cap_msix(t.dev, 129, 0, 0x800, 3, 0), EINVAL);	/* beyond */
	CHECK_ERR(muser_add_cap_msix(t.dev, 1, 0, 0, 0, 0x1000), EINVAL);
	CHECK_ERR(muser_add_cap_msix(t.dev, 2, 0, 0, 0, 0x18), EINVAL);	/* overlap */
	CHECK_ERR(muser_add_cap_msix(t.dev, 2, 0, 0x10, 0, 0x18), EINVAL);
	CHECK_EQ(muser_add_cap_msix(t.dev, 2, 0, 0, 0, 0x20), 0x40);
	CHECK_ERR(muser_add_cap_msix(t.dev, 2, 3, 0, 3, 0x20), EEXIST);
	tctx_fini(&t);

	/* the largest table: 2048 vectors, 32 KiB, a 256-byte PBA */
	tctx_init(&t);
	CHECK_EQ(muser_setup_bar(t.dev, 0, 0x10000, MUSER_BAR_MEM32, NULL, NULL), 0);
	CHECK_EQ(muser_add_cap_msix(t.dev, 2048, 0, 0, 0, 0x8000), 0x40);
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.irqs[MSIX].count, 2048);
	CHECK_EQ(cfg_rd(&t, CTRL, 2), 2047);
	CHECK_EQ(trd(&t, 0, 2047 * 16 + 12, 4), 1);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 2047), 0);
	cfg_wr(&t, CTRL, 2, PCI_MSIX_FLAGS_MASKALL);
	CHECK_EQ(muser_irq_trigger(t.dev, MSIX, 2047), 0);
	CHECK_EQ(trd(&t, 0, 0x8000 + 0xfc, 4), 0x80000000);
	tctx_fini(&t);
}

int main(void)
{
	RUN(test_msix_regs);
	RUN(test_msix_bar_split);
	RUN(test_msix_function_mask);
	RUN(test_msix_vector_mask);
	RUN(test_msix_arguments);
	TEST_MAIN_END();
}
