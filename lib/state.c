// SPDX-License-Identifier: BSD-3-Clause
/*
 * State that survives the emulator process, in the state area muser.ko
 * keeps per device. The library's part holds two copies of its state and
 * the index of the complete one: a save writes the other copy, then flips
 * the index, so an emulator killed in the middle of a save leaves the
 * previous copy intact. State is saved after each batch of requests is
 * handled and before its replies are written (a request is answered only
 * once its effect is saved; unanswered ones are replayed), and after the
 * device raises interrupts (pending bits). The device's part follows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <linux/pci_regs.h>

#include "private.h"

#define STATE_MAGIC	0x4c53554dU	/* "MUSL" */
#define STATE_VERSION	2
#define PAGE		4096u

/* One copy of the library's state. */
struct saved {
	uint8_t cfg[MUSER_CONFIG_MAX];
	uint8_t msix_table[2048 * 16];
	uint8_t msix_pba[2048 / 8];
	uint16_t msi_ctrl, msix_ctrl;
	uint32_t msi_mask;
	uint8_t pm_state;
	uint8_t intx_disabled, intx_held, msix_table_written;
	uint8_t pad[3];
	/* Where a migration is: zero in a migration stream. */
	uint32_t mig_state;
	uint8_t mig_broken, mig_applied, mig_pad[2];
	uint64_t mig_consumed, mig_offered;
	uint64_t mig_out_len, mig_out_sum;	/* the stream being saved */
};

struct state_hdr {
	uint32_t magic;
	uint32_t version;
	uint64_t desc_hash;	/* of the device description it belongs to */
	uint32_t current;	/* the complete copy: 0 or 1; 2: none yet */
	uint32_t pad;
};

#define LIB_PART	((sizeof(struct state_hdr) + 2 * sizeof(struct saved) + PAGE - 1) & ~(size_t)(PAGE - 1))

static struct state_hdr *hdr(struct muser_dev *dev)
{
	return dev->state;
}

static struct saved *copy(struct muser_dev *dev, unsigned int i)
{
	return (struct saved *)((uint8_t *)dev->state + sizeof(struct state_hdr)) + i;
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		h = (h ^ *b++) * 0x100000001b3ull;
	return h;
}

/* What the state belongs to: the layout and the config space's rules. */
static uint64_t desc_hash(const struct muser_dev *dev)
{
	const struct muser_pcicfg *c = &dev->pcicfg;
	uint64_t h = 0xcbf29ce484222325ull;

	h = fnv(h, &dev->info, sizeof(dev->info));
	h = fnv(h, c->init, sizeof(c->init));
	h = fnv(h, c->wmask, sizeof(c->wmask));
	h = fnv(h, c->w1cmask, sizeof(c->w1cmask));
	h = fnv(h, c->owned, sizeof(c->owned));
	return fnv(h, &dev->msix.nvec, sizeof(dev->msix.nvec));
}

static size_t msix_table_len(const struct muser_dev *dev)
{
	return dev->msix.off ? 16ull * dev->msix.nvec : 0;
}

static size_t msix_pba_len(const struct muser_dev *dev)
{
	return dev->msix.off ? (dev->msix.nvec + 63) / 64 * 8 : 0;
}

static void fill(const struct muser_dev *dev, struct saved *s)
{
	memcpy(s->cfg, dev->pcicfg.cfg, dev->pcicfg.size);
	memcpy(s->msix_table, dev->msix.table, msix_table_len(dev));
	memcpy(s->msix_pba, dev->msix.pba, msix_pba_len(dev));
	s->msi_ctrl = dev->msi.ctrl;
	s->msi_mask = dev->msi.mask;
	s->msix_ctrl = dev->msix.ctrl;
	s->pm_state = dev->pm_state;
	s->intx_disabled = dev->intx_disabled;
	s->intx_held = dev->intx_held;
	s->msix_table_written = dev->msix.table_written;
	s->mig_state = dev->mig.state;
	s->mig_broken = dev->mig.broken;
	s->mig_applied = dev->mig.applied;
	s->mig_consumed = dev->mig.consumed;
	s->mig_offered = dev->mig.offered;
	s->mig_out_len = dev->mig.out_len;
	s->mig_out_sum = dev->mig.out_sum;
}

void muser_state_save(struct muser_dev *dev)
{
	struct state_hdr *h = hdr(dev);
	unsigned int next;

	if (!h)
		return;
	next = h->current == 0 ? 1 : 0;
	fill(dev, copy(dev, next));
	/* The copy is complete before it becomes the current one. */
	__atomic_store_n(&h->current, next, __ATOMIC_RELEASE);
}

static void restore(struct muser_dev *dev, const struct saved *s)
{
	memcpy(dev->pcicfg.cfg, s->cfg, dev->pcicfg.size);
	memcpy(dev->msix.table, s->msix_table, msix_table_len(dev));
	memcpy(dev->msix.pba, s->msix_pba, msix_pba_len(dev));
	dev->msi.ctrl = s->msi_ctrl;
	dev->msi.mask = s->msi_mask;
	dev->msix.ctrl = s->msix_ctrl;
	dev->pm_state = s->pm_state;
	dev->intx_disabled = s->intx_disabled;
	dev->intx_held = s->intx_held;
	dev->msix.table_written = s->msix_table_written;
	dev->mig.state = s->mig_state;
	dev->mig.broken = s->mig_broken;
	dev->mig.applied = s->mig_applied;
	dev->mig.consumed = s->mig_consumed;
	dev->mig.offered = s->mig_offered;
	dev->mig.out_len = s->mig_out_len;
	dev->mig.out_sum = s->mig_out_sum;
}

/* The library's state as a migration stream carries it. */
size_t muser_state_lib_size(void)
{
	return sizeof(struct saved);
}

void muser_state_lib_export(const struct muser_dev *dev, void *buf)
{
	struct saved s;

	memset(&s, 0, sizeof(s));
	fill(dev, &s);
	s.mig_state = 0;
	s.mig_broken = 0;
	s.mig_applied = 0;
	s.mig_consumed = 0;
	s.mig_offered = 0;
	s.mig_out_len = 0;
	s.mig_out_sum = 0;
	memcpy(buf, &s, sizeof(s));
}

/* Whether a stream's library state holds only values this device takes. */
int muser_state_lib_check(const struct muser_dev *dev, const void *buf)
{
	/* What identifies the device, and where its capabilities start. */
	static const struct { uint8_t off, len; } fixed[] = {
		{ PCI_VENDOR_ID, 4 }, { PCI_CLASS_REVISION, 4 },
		{ PCI_HEADER_TYPE, 1 }, { PCI_SUBSYSTEM_VENDOR_ID, 4 },
		{ PCI_CAPABILITY_LIST, 1 },
	};
	struct saved s;
	unsigned int i;

	memcpy(&s, buf, sizeof(s));
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (memcmp(&s.cfg[fixed[i].off], &dev->pcicfg.init[fixed[i].off],
			   fixed[i].len)) {
			errno = EINVAL;
			return -1;
		}
	}
	if (s.pm_state > 3 || s.intx_disabled > 1 || s.intx_held > 1 ||
	    s.msix_table_written > 1 || s.mig_state || s.mig_broken ||
	    s.mig_applied || s.mig_pad[0] || s.mig_pad[1] ||
	    s.mig_consumed || s.mig_offered || s.mig_out_len || s.mig_out_sum ||
	    (!dev->msi.off && (s.msi_ctrl || s.msi_mask)) ||
	    (!dev->msix.off && s.msix_ctrl)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Load it, keeping where this device's own migration is. */
void muser_state_lib_import(struct muser_dev *dev, const void *buf)
{
	struct saved s;

	memcpy(&s, buf, sizeof(s));
	s.mig_state = dev->mig.state;
	s.mig_broken = dev->mig.broken;
	s.mig_applied = dev->mig.applied;
	s.mig_consumed = dev->mig.consumed;
	s.mig_offered = dev->mig.offered;
	s.mig_out_len = dev->mig.out_len;
	s.mig_out_sum = dev->mig.out_sum;
	restore(dev, &s);
}

uint64_t muser_state_hash(const struct muser_dev *dev)
{
	return desc_hash(dev);
}

/*
 * After attaching: map the state area and recover from it, or claim it for
 * this device description. Without one (an old kernel, the unit tests'
 * fake kernel) the state lives in this process only.
 */
int muser_state_attach(struct muser_dev *dev)
{
	uint64_t hash = desc_hash(dev);
	struct state_hdr *h;
	void *p;

	p = mmap(NULL, MUSER_STATE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 dev->fd, (off_t)MUSER_STATE_OFFSET);
	if (p == MAP_FAILED) {
		muser_dbg(dev, "no state area (%s): restarts start afresh",
			  strerror(errno));
		p = calloc(1, MUSER_STATE_SIZE);
		if (!p)
			return -1;
		dev->state_mapped = false;
	} else {
		dev->state_mapped = true;
	}
	dev->state = p;
	h = hdr(dev);

	if (h->magic == STATE_MAGIC && h->version == STATE_VERSION &&
	    h->desc_hash == hash && h->current < 2) {
		restore(dev, copy(dev, h->current));
		dev->recovered = true;
		muser_info(dev, "recovered the state of a previous emulator");
		return 0;
	}
	if (h->magic == STATE_MAGIC) {
		/* Another device's state: none of it applies. */
		muser_info(dev, "state area of a different device description: cleared");
		memset((uint8_t *)p + LIB_PART, 0, MUSER_STATE_SIZE - LIB_PART);
	}
	h->current = 2;
	h->desc_hash = hash;
	h->version = STATE_VERSION;
	h->magic = STATE_MAGIC;
	muser_state_save(dev);
	return 0;
}

void muser_state_free(struct muser_dev *dev)
{
	if (!dev->state)
		return;
	if (dev->state_mapped)
		munmap(dev->state, MUSER_STATE_SIZE);
	else
		free(dev->state);
	dev->state = NULL;
}

MUSER_EXPORT int muser_set_recover_cb(struct muser_dev *dev,
				      muser_recover_cb cb, void *priv)
{
	if (muser_unrealized(dev) < 0)
		return -1;
	dev->recover_cb = cb;
	dev->recover_priv = priv;
	return 0;
}

MUSER_EXPORT void *muser_state(struct muser_dev *dev, size_t *size)
{
	if (!dev->state) {
		errno = EINVAL;
		return NULL;
	}
	if (size)
		*size = MUSER_STATE_SIZE - LIB_PART;
	return (uint8_t *)dev->state + LIB_PART;
}

MUSER_EXPORT bool muser_recovered(const struct muser_dev *dev)
{
	return dev->recovered;
}
