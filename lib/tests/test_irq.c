// SPDX-License-Identifier: BSD-3-Clause
/*
 * INTx and MSI: the MSI capability's registers in all four shapes,
 * enable and Multiple Message Enable, per-vector masking holding triggers
 * in the Pending Bits and sending them on unmask, INTx held while INTx
 * Disable is set and the Interrupt Status bit, the irq state callback,
 * the layout's vector counts, resets, and coalescing.
 */
#include <errno.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "test.h"
#include "test_util.h"

int test_failures;

#define MSI	VFIO_PCI_MSI_IRQ_INDEX
#define INTX	VFIO_PCI_INTX_IRQ_INDEX

struct irq_log {
	unsigned int n;
	unsigned int index, changed;	/* of the last call */
	unsigned int triggers_seen;	/* fk->ntriggers during the last call */
	struct fake_kernel *fk;
};

static void irq_state_cb(struct muser_dev *dev, void *priv, unsigned int index,
			 unsigned int changed)
{
	struct irq_log *l = priv;

	(void)dev;
	l->n++;
	l->index = index;
	l->changed = changed;
	l->triggers_seen = l->fk->ntriggers;
}

static void check_trigger(struct fake_kernel *fk, unsigned int i,
			  unsigned int index, unsigned int vector)
{
	CHECK(i < fk->ntriggers);
	if (i >= fk->ntriggers)
		return;
	CHECK_EQ(fk->triggers[i].index, index);
	CHECK_EQ(fk->triggers[i].start, vector);
	CHECK_EQ(fk->triggers[i].count, 1);
}

/* Register offsets within the capability, by shape. */
struct msi_shape {
	unsigned int flags, len, data, mask, pending;
};

static const struct msi_shape shapes[] = {
	{ 0, 10, PCI_MSI_DATA_32, 0, 0 },
	{ MUSER_MSI_64BIT, 14, PCI_MSI_DATA_64, 0, 0 },
	{ MUSER_MSI_MASKABLE, 20, PCI_MSI_DATA_32, PCI_MSI_MASK_32, PCI_MSI_PENDING_32 },
	{ MUSER_MSI_64BIT | MUSER_MSI_MASKABLE, 24, PCI_MSI_DATA_64,
	  PCI_MSI_MASK_64, PCI_MSI_PENDING_64 },
};

static void check_msi_shape(const struct msi_shape *s, unsigned int nvec)
{
	const unsigned int o = 0x40, ctrl = o + PCI_MSI_FLAGS;
	unsigned int mmc = __builtin_ctz(nvec);
	uint16_t want = mmc << 1;
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_add_cap_msi(t.dev, nvec, s->flags), o);
	/* the next capability shows the length, dword aligned */
	CHECK_EQ(muser_add_cap_vendor(t.dev, NULL, 0, 0), o + ((s->len + 3) & ~3u));
	tctx_realize(&t);
	CHECK_EQ(t.fk->info.irqs[MSI].count, nvec);
	CHECK_EQ(t.fk->info.irqs[MSI].flags,
		 VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE);

	if (s->flags & MUSER_MSI_64BIT)
		want |= PCI_MSI_FLAGS_64BIT;
	if (s->flags & MUSER_MSI_MASKABLE)
		want |= PCI_MSI_FLAGS_MASKBIT;
	CHECK_EQ(cfg_rd(&t, o, 1), PCI_CAP_ID_MSI);
	CHECK_EQ(cfg_rd(&t, ctrl, 2), want);
	/* Enable and MME are RW; MME is capped at MMC; the rest is RO */
	cfg_wr(&t, ctrl, 2, 0xffff);
	CHECK_EQ(cfg_rd(&t, ctrl, 2), want | PCI_MSI_FLAGS_ENABLE | mmc << 4);
	cfg_wr(&t, ctrl, 2, 0);
	CHECK_EQ(cfg_rd(&t, ctrl, 2), want);

	cfg_wr(&t, o + PCI_MSI_ADDRESS_LO, 4, 0xfee01237);
	CHECK_EQ(cfg_rd(&t, o + PCI_MSI_ADDRESS_LO, 4), 0xfee01234);
	if (s->flags & MUSER_MSI_64BIT) {
		cfg_wr(&t, o + PCI_MSI_ADDRESS_HI, 4, 0x89abcdef);
		CHECK_EQ(cfg_rd(&t, o + PCI_MSI_ADDRESS_HI, 4), 0x89abcdef);
	}
	cfg_wr(&t, o + s->data, 4, 0xffff4041);
	CHECK_EQ(cfg_rd(&t, o + s->data, 4), 0x4041);
	if (s->flags & MUSER_MSI_MASKABLE) {
		cfg_wr(&t, o + s->mask, 4, 0xffffffff);
		CHECK_EQ(cfg_rd(&t, o + s->mask, 4),
			 nvec == 32 ? 0xffffffff : (1u << nvec) - 1);
		cfg_wr(&t, o + s->pending, 4, 0xffffffff);
		CHECK_EQ(cfg_rd(&t, o + s->pending, 4), 0);
	}
	CHECK_EQ(treset(&t), 0);
	CHECK_EQ(cfg_rd(&t, o + PCI_MSI_ADDRESS_LO, 4), 0);
	if (s->flags & MUSER_MSI_MASKABLE)
		CHECK_EQ(cfg_rd(&t, o + s->mask, 4), 0);
	tctx_fini(&t);
}

static void test_msi_regs(void)
{
	unsigned int i;

	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		check_msi_shape(&shapes[i], 1);
		check_msi_shape(&shapes[i], 4);
		check_msi_shape(&shapes[i], 32);
	}
}

static void test_msi_arguments(void)
{
	struct tctx t;

	tctx_init(&t);
	CHECK_ERR(muser_add_cap_msi(t.dev, 0, 0), EINVAL);
	CHECK_ERR(muser_add_cap_msi(t.dev, 3, 0), EINVAL);
	CHECK_ERR(muser_add_cap_msi(t.dev, 64, 0), EINVAL);
	CHECK_ERR(muser_add_cap_msi(t.dev, 2, 1u << 2), EINVAL);
	CHECK_EQ(muser_add_cap_msi(t.dev, 2, 0), 0x40);
	CHECK_ERR(muser_add_cap_msi(t.dev, 2, 0), EEXIST);
	tctx_fini(&t);
}

/* Masked vectors are held in Pending Bits and sent on unmask. */
static void test_msi_masking(void)
{
	const unsigned int o = 0x40, ctrl = o + PCI_MSI_FLAGS;
	const unsigned int mask = o + PCI_MSI_MASK_64, pend = o + PCI_MSI_PENDING_64;
	struct irq_log l = { 0 };
	struct tctx t;

	tctx_init(&t);
	l.fk = t.fk;
	CHECK_EQ(muser_set_irq_state_cb(t.dev, irq_state_cb, &l), 0);
	CHECK_EQ(muser_add_cap_msi(t.dev, 4, MUSER_MSI_64BIT | MUSER_MSI_MASKABLE), o);
	CHECK_ERR(muser_irq_guest_state(t.dev, MSI, 0), EINVAL);	/* unrealized */
	tctx_realize(&t);

	CHECK_EQ(muser_irq_guest_state(t.dev, MSI, 0), 0);
	/* enable with 2 of the 4 vectors */
	cfg_wr(&t, ctrl, 2, PCI_MSI_FLAGS_ENABLE | 1 << 4);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.index, MSI);
	CHECK_EQ(l.changed, MUSER_IRQ_CHANGED_ENABLE);
	CHECK_EQ(muser_irq_guest_state(t.dev, MSI, 1), MUSER_IRQ_S_ENABLED);
	CHECK_EQ(muser_irq_guest_state(t.dev, MSI, 2), 0);
	/* rewriting the same value is no change */
	cfg_wr(&t, ctrl, 2, PCI_MSI_FLAGS_ENABLE | 1 << 4);
	CHECK_EQ(l.n, 1);

	CHECK_EQ(muser_irq_trigger(t.dev, MSI, 1), 0);
	CHECK_EQ(t.fk->ntriggers, 1);
	check_trigger(t.fk, 0, MSI, 1);

	/* mask vectors 1 and 3: triggers are held */
	cfg_wr(&t, mask, 4, 0xa);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(l.changed, MUSER_IRQ_CHANGED_MASK);
	CHECK_EQ(muser_irq_trigger(t.dev, MSI, 1), 0);
	CHECK_EQ(muser_irq_trigger(t.dev, MSI, 3), 0);
	CHECK_EQ(muser_irq_trigger(t.dev, MSI, 0), 0);	/* not masked */
	CHECK_EQ(t.fk->ntriggers, 2);
	check_trigger(t.fk, 1, MSI, 0);
	CHECK_EQ(cfg_rd(&t, pend, 4), 0xa);
	CHECK_EQ(muser_irq_guest_state(t.dev, MSI, 1),
		 MUSER_IRQ_S_ENABLED | MUSER_IRQ_S_MASKED | MUSER_IRQ_S_PENDING);
	/* the guest cannot clear Pending Bits */
	cfg_wr(&t, pend, 4, 0);
	CHECK_EQ(cfg_rd(&t, pend, 4), 0xa);

	/* unmask vector 1 only: sent before the callback, pending cleared */
	cfg_wr(&t, mask, 1, 0x8);
	CHECK_EQ(t.fk->ntriggers, 3);
	check_trigger(t.fk, 2, MSI, 1);
	CHECK_EQ(cfg_rd(&t, pend, 4), 0x8);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(l.triggers_seen, 3);
	/* a trigger the VMM refuses on unmask does not fail the write */
	t.fk->trigger_errno = ENOENT;
	cfg_wr(&t, mask, 4, 0);
	t.fk->trigger_errno = 0;
	CHECK_EQ(cfg_rd(&t, pend, 4), 0);
	CHECK_EQ(t.fk->ntriggers, 3);

	/* reset: masks and pending bits clear, no callback */
	cfg_wr(&t, mask, 4, 1);
	CHECK_EQ(muser_irq_trigger(t.dev, MSI, 0), 0);
	CHECK_EQ(cfg_rd(&t, pend, 4), 1);
	l.n = 0;
	CHECK_EQ(treset(&t), 0);
	CHECK_EQ(l.n, 0);
	CHECK_EQ(cfg_rd(&t, pend, 4), 0);
	CHECK_EQ(cfg_rd(&t, ctrl, 2), PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT | 2 << 1);
	CHECK_EQ(muser_irq_trigger(t.dev, MSI, 0), 0);
	CHECK_EQ(t.fk->ntriggers, 4);

	CHECK_ERR(muser_irq_trigger(t.dev, MSI, 4), EINVAL);
	CHECK_ERR(muser_irq_guest_state(t.dev, MSI, 4), EINVAL);
	CHECK_ERR(muser_irq_trigger(t.dev, VFIO_PCI_MSIX_IRQ_INDEX, 0), EINVAL);
	tctx_fini(&t);
}

/* Without per-vector masking nothing is held. */
static void test_msi_unmaskable(void)
{
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_add_cap_msi(t.dev, 1, 0), 0x40);
	tctx_realize(&t);
	cfg_wr(&t, 0x40 + PCI_MSI_DATA_32 + 2, 2, 0xffff);	/* beyond the cap */
	CHECK_EQ(muser_irq_trigger(t.dev, MSI, 0), 0);
	CHECK_EQ(t.fk->ntriggers, 1);
	CHECK_EQ(muser_irq_guest_state(t.dev, MSI, 0), 0);
	tctx_fini(&t);
}

static void test_intx(void)
{
	struct irq_log l = { 0 };
	struct tctx t;

	tctx_init(&t);
	l.fk = t.fk;
	CHECK_EQ(muser_pci_set_irq_pin(t.dev, 1), 0);
	CHECK_EQ(muser_set_irq_state_cb(t.dev, irq_state_cb, &l), 0);
	CHECK_ERR(muser_irq_intx_deassert(t.dev), EINVAL);
	tctx_realize(&t);

	CHECK_EQ(muser_irq_guest_state(t.dev, INTX, 0), MUSER_IRQ_S_ENABLED);
	CHECK_EQ(muser_irq_trigger(t.dev, INTX, 0), 0);
	CHECK_EQ(t.fk->ntriggers, 1);
	CHECK(cfg_rd(&t, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	/* Interrupt Status is read-only to the guest */
	cfg_wr(&t, PCI_STATUS, 2, 0xffff);
	CHECK(cfg_rd(&t, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	CHECK_EQ(muser_irq_intx_deassert(t.dev), 0);
	CHECK_EQ(cfg_rd(&t, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);

	/* INTx Disable: held, status set, sent when the guest clears it */
	cfg_wr(&t, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.index, INTX);
	CHECK_EQ(l.changed, MUSER_IRQ_CHANGED_ENABLE);
	CHECK_EQ(muser_irq_trigger(t.dev, INTX, 0), 0);
	CHECK_EQ(t.fk->ntriggers, 1);
	CHECK(cfg_rd(&t, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	CHECK_EQ(muser_irq_guest_state(t.dev, INTX, 0),
		 MUSER_IRQ_S_MASKED | MUSER_IRQ_S_PENDING);
	cfg_wr(&t, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	CHECK_EQ(t.fk->ntriggers, 2);
	check_trigger(t.fk, 1, INTX, 0);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(l.triggers_seen, 2);
	/* other command bits: no callback, nothing sent */
	cfg_wr(&t, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(t.fk->ntriggers, 2);

	/* a deasserted INTx is not sent on enable */
	cfg_wr(&t, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
	CHECK_EQ(muser_irq_trigger(t.dev, INTX, 0), 0);
	CHECK_EQ(muser_irq_intx_deassert(t.dev), 0);
	cfg_wr(&t, PCI_COMMAND, 2, 0);
	CHECK_EQ(t.fk->ntriggers, 2);

	/* nor one held across a reset */
	cfg_wr(&t, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
	CHECK_EQ(muser_irq_trigger(t.dev, INTX, 0), 0);
	CHECK_EQ(treset(&t), 0);
	CHECK_EQ(cfg_rd(&t, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
	cfg_wr(&t, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
	cfg_wr(&t, PCI_COMMAND, 2, 0);
	CHECK_EQ(t.fk->ntriggers, 2);
	tctx_fini(&t);
}

/* A doorbell: each write raises the MSI vector it names. */
static ssize_t doorbell(struct muser_dev *dev, void *priv, void *buf,
			size_t count, uint64_t offset, bool is_write)
{
	uint32_t v = 0;

	(void)priv;
	(void)offset;
	if (is_write) {
		memcpy(&v, buf, count < sizeof(v) ? count : sizeof(v));
		muser_irq_trigger(dev, MSI, v);
	}
	return count;
}

/* Ring the doorbell with each of @vecs in one batch: one muser_dispatch(). */
static void ring_batch(struct tctx *t, const uint32_t *vecs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		fake_queue(t->fk, t->next_id++, MUSER_REQ_WRITE, 0, 0, 0, 4,
			   &vecs[i], 4);
	CHECK_EQ(muser_dispatch(t->dev), (int)n);
}

/*
 * Coalescing: a vector raised several times in a batch goes out once,
 * after the batch is handled; masked meanwhile, it is held pending; off,
 * or outside muser_dispatch(), every trigger goes out at once.
 */
static void test_coalescing(void)
{
	static const uint32_t same[] = { 0, 0, 0, 0, 0 }, two[] = { 1, 0, 1, 0 };
	const unsigned int o = 0x40, ctrl = o + PCI_MSI_FLAGS;
	const unsigned int mask = o + PCI_MSI_MASK_64, pend = o + PCI_MSI_PENDING_64;
	struct tctx t;

	tctx_init(&t);
	CHECK_EQ(muser_setup_bar(t.dev, 0, 0x1000, MUSER_BAR_MEM32, doorbell,
				 NULL), 0);
	CHECK_EQ(muser_add_cap_msi(t.dev, 4, MUSER_MSI_64BIT | MUSER_MSI_MASKABLE), o);
	tctx_realize(&t);
	cfg_wr(&t, ctrl, 2, PCI_MSI_FLAGS_ENABLE | 2 << 4);

	ring_batch(&t, same, 5);		/* off: each one */
	CHECK_EQ(t.fk->ntriggers, 5);
	CHECK_EQ(muser_set_irq_coalescing(t.dev, true), 0);
	ring_batch(&t, same, 5);		/* on: once */
	CHECK_EQ(t.fk->ntriggers, 6);
	check_trigger(t.fk, 5, MSI, 0);
	ring_batch(&t, two, 4);			/* once per vector */
	CHECK_EQ(t.fk->ntriggers, 8);
	CHECK_EQ(t.fk->triggers[6].start + t.fk->triggers[7].start, 1);
	CHECK_EQ(muser_irq_trigger(t.dev, MSI, 2), 0);	/* outside: at once */
	CHECK_EQ(t.fk->ntriggers, 9);

	/* Raised, then masked by a later request of the batch: held. */
	fake_queue(t.fk, t.next_id++, MUSER_REQ_WRITE, 0, 0, 0, 4, &two[0], 4);
	fake_queue(t.fk, t.next_id++, MUSER_REQ_WRITE, 0, CFG, mask, 4,
		   &(uint32_t){ 0x2 }, 4);
	CHECK_EQ(muser_dispatch(t.dev), 2);
	CHECK_EQ(t.fk->ntriggers, 9);
	CHECK_EQ(cfg_rd(&t, pend, 4), 0x2);
	cfg_wr(&t, mask, 4, 0);			/* unmask: sent */
	CHECK_EQ(t.fk->ntriggers, 10);
	check_trigger(t.fk, 9, MSI, 1);

	CHECK_EQ(muser_set_irq_coalescing(t.dev, false), 0);
	ring_batch(&t, same, 3);
	CHECK_EQ(t.fk->ntriggers, 13);
	tctx_fini(&t);
}

int main(void)
{
	RUN(test_msi_regs);
	RUN(test_msi_arguments);
	RUN(test_msi_masking);
	RUN(test_msi_unmaskable);
	RUN(test_intx);
	RUN(test_coalescing);
	TEST_MAIN_END();
}
