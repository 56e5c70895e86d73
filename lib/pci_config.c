// SPDX-License-Identifier: BSD-3-Clause
/*
 * PCI configuration space emulation: a type 0 header built from the device
 * description, with per-byte write and write-1-to-clear masks. Accesses of
 * any length at any offset are applied byte by byte through the masks, so
 * BAR sizing, partial register writes and 256-byte reads need no special
 * cases. Bytes beyond the standard header go to the device's config
 * callback when it has one.
 */
#include <errno.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "private.h"

/* Command register bits the guest may change. */
#define CMD_WMASK	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | \
			 PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | \
			 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)

/* Status register error bits, cleared by writing 1. */
#define STATUS_W1C	(PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | \
			 PCI_STATUS_REC_TARGET_ABORT | \
			 PCI_STATUS_REC_MASTER_ABORT | \
			 PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY)

static void put8(uint8_t *p, unsigned int off, uint8_t v)
{
	p[off] = v;
}

static void put16(uint8_t *p, unsigned int off, uint16_t v)
{
	p[off] = v & 0xff;
	p[off + 1] = v >> 8;
}

static void put32(uint8_t *p, unsigned int off, uint32_t v)
{
	put16(p, off, v & 0xffff);
	put16(p, off + 2, v >> 16);
}

static void init_bar(struct muser_pcicfg *c, int i, const struct muser_bar *b)
{
	unsigned int off = PCI_BASE_ADDRESS_0 + 4 * i;
	uint32_t val, mask;

	if (!b->size || b->upper)
		return;		/* absent, or done with the lower half */

	if (b->flags & MUSER_BAR_IO) {
		val = PCI_BASE_ADDRESS_SPACE_IO;
		mask = (uint32_t)~(b->size - 1) & PCI_BASE_ADDRESS_IO_MASK;
	} else {
		val = PCI_BASE_ADDRESS_SPACE_MEMORY;
		if (b->flags & MUSER_BAR_MEM64)
			val |= PCI_BASE_ADDRESS_MEM_TYPE_64;
		if (b->flags & MUSER_BAR_PREFETCH)
			val |= PCI_BASE_ADDRESS_MEM_PREFETCH;
		mask = (uint32_t)~(b->size - 1) & PCI_BASE_ADDRESS_MEM_MASK;
	}
	put32(c->cfg, off, val);
	put32(c->wmask, off, mask);

	if (b->flags & MUSER_BAR_MEM64) {
		put32(c->cfg, off + 4, 0);
		put32(c->wmask, off + 4, (uint32_t)(~(b->size - 1) >> 32));
	}
}

/* Build the power-on config space from the device description. */
void muser_pcicfg_init(struct muser_dev *dev)
{
	struct muser_pcicfg *c = &dev->pcicfg;
	int i;

	memset(c, 0, sizeof(*c));

	put16(c->cfg, PCI_VENDOR_ID, dev->vendor);
	put16(c->cfg, PCI_DEVICE_ID, dev->device);
	put16(c->wmask, PCI_COMMAND, CMD_WMASK);
	put16(c->w1cmask, PCI_STATUS, STATUS_W1C);
	put8(c->cfg, PCI_REVISION_ID, dev->revision);
	put8(c->cfg, PCI_CLASS_PROG, dev->class_code & 0xff);
	put16(c->cfg, PCI_CLASS_DEVICE, dev->class_code >> 8);
	/* Cache line size and latency timer are plain RW, as in QEMU. */
	put8(c->wmask, PCI_CACHE_LINE_SIZE, 0xff);
	put8(c->wmask, PCI_LATENCY_TIMER, 0xff);
	put8(c->cfg, PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL);

	for (i = 0; i < MUSER_NUM_BARS; i++)
		init_bar(c, i, &dev->bars[i]);

	put16(c->cfg, PCI_SUBSYSTEM_VENDOR_ID, dev->subsys_vendor);
	put16(c->cfg, PCI_SUBSYSTEM_ID, dev->subsys_id);
	/* No expansion ROM: PCI_ROM_ADDRESS reads 0, writes are ignored. */
	/* No capabilities yet: PCI_CAPABILITY_LIST is 0, status bit clear. */
	put8(c->wmask, PCI_INTERRUPT_LINE, 0xff);
	put8(c->cfg, PCI_INTERRUPT_PIN, dev->irq_pin);

	memcpy(c->init, c->cfg, sizeof(c->init));
}

void muser_pcicfg_reset(struct muser_dev *dev)
{
	memcpy(dev->pcicfg.cfg, dev->pcicfg.init, sizeof(dev->pcicfg.cfg));
}

uint16_t muser_pcicfg_read16(const struct muser_dev *dev, unsigned int off)
{
	return dev->pcicfg.cfg[off] | dev->pcicfg.cfg[off + 1] << 8;
}

/* Whether the library emulates this byte (else the config callback does). */
static bool lib_owned(const struct muser_dev *dev, unsigned int off)
{
	(void)dev;	/* capabilities will claim bytes here */
	return off < MUSER_STD_HEADER_SIZE;
}

static void shadow_access(struct muser_pcicfg *c, uint8_t *buf, size_t count,
			  unsigned int off, bool is_write)
{
	size_t i;

	if (!is_write) {
		memcpy(buf, &c->cfg[off], count);
		return;
	}
	for (i = 0; i < count; i++, off++) {
		uint8_t v = buf[i];

		c->cfg[off] = (c->cfg[off] & ~c->wmask[off]) | (v & c->wmask[off]);
		c->cfg[off] &= ~(v & c->w1cmask[off]);
	}
}

static int cb_access(struct muser_dev *dev, uint8_t *buf, size_t count,
		     unsigned int off, bool is_write)
{
	ssize_t ret;

	ret = dev->cfg_cb(dev, dev->cfg_priv, buf, count, off, is_write);
	if (ret == (ssize_t)count)
		return 0;
	if (ret >= 0) {
		muser_err(dev, "config callback returned %zd for %zu bytes at %#x",
			  ret, count, off);
		errno = EIO;
	}
	return -1;
}

/*
 * Read or write @count bytes of config space at @offset. The caller has
 * checked that the range lies within MUSER_CONFIG_SIZE.
 * Returns 0, or -1 with errno set by the config callback.
 */
int muser_pcicfg_access(struct muser_dev *dev, void *buf, size_t count,
			uint64_t offset, bool is_write)
{
	uint8_t *p = buf;
	size_t pos = 0;

	if (offset > MUSER_CONFIG_SIZE || count > MUSER_CONFIG_SIZE - offset) {
		errno = EINVAL;
		return -1;
	}
	while (pos < count) {
		unsigned int off = offset + pos;
		bool lib = lib_owned(dev, off);
		size_t run = 1;

		while (pos + run < count && lib_owned(dev, off + run) == lib)
			run++;
		if (lib || !dev->cfg_cb)
			shadow_access(&dev->pcicfg, p + pos, run, off, is_write);
		else if (cb_access(dev, p + pos, run, off, is_write) < 0)
			return -1;
		pos += run;
	}
	return 0;
}
