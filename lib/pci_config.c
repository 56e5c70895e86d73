// SPDX-License-Identifier: BSD-3-Clause
/*
 * PCI configuration space emulation: a type 0 header built from the device
 * description, with per-byte write and write-1-to-clear masks. Accesses of
 * any length at any offset are applied byte by byte through the masks, so
 * BAR sizing, partial register writes and 4096-byte reads need no special
 * cases. Capabilities define their registers with the same masks
 * (muser_cfg_reg()) and are told after a write touched them. Bytes neither
 * the header nor a capability owns go to the device's config callback
 * when it has one.
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

static void put(uint8_t *p, unsigned int off, unsigned int size, uint32_t v)
{
	unsigned int i;

	for (i = 0; i < size; i++, v >>= 8)
		p[off + i] = v & 0xff;
}

#define put8(p, off, v)		put(p, off, 1, v)
#define put16(p, off, v)	put(p, off, 2, v)
#define put32(p, off, v)	put(p, off, 4, v)

/* A little-endian register of @size (1..4) bytes at @off. */
uint32_t muser_cfg_get(const struct muser_dev *dev, unsigned int off,
		       unsigned int size)
{
	uint32_t v = 0;

	while (size--)
		v = v << 8 | dev->pcicfg.cfg[off + size];
	return v;
}

/* Set a register's value, whatever its masks (the device side). */
void muser_cfg_put(struct muser_dev *dev, unsigned int off, unsigned int size,
		   uint32_t val)
{
	put(dev->pcicfg.cfg, off, size, val);
}

/* Define a register at init: power-on value and masks; owned by the library. */
void muser_cfg_reg(struct muser_dev *dev, unsigned int off, unsigned int size,
		   uint32_t val, uint32_t wmask, uint32_t w1cmask)
{
	struct muser_pcicfg *c = &dev->pcicfg;

	put(c->cfg, off, size, val);
	put(c->wmask, off, size, wmask);
	put(c->w1cmask, off, size, w1cmask);
	memset(&c->owned[off], 1, size);
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

static void init_rom(struct muser_pcicfg *c, const struct muser_bar *rom)
{
	if (rom->size)
		put32(c->wmask, PCI_ROM_ADDRESS,
		      ((uint32_t)~(rom->size - 1) & PCI_ROM_ADDRESS_MASK) |
		      PCI_ROM_ADDRESS_ENABLE);
}

/* Build the power-on config space from the device description. */
void muser_pcicfg_init(struct muser_dev *dev)
{
	struct muser_pcicfg *c = &dev->pcicfg;
	int i;

	memset(c, 0, sizeof(*c));
	c->size = muser_config_size(dev);
	memset(c->owned, 1, MUSER_STD_HEADER_SIZE);

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
	/* Without a ROM, PCI_ROM_ADDRESS reads 0 and ignores writes. */
	init_rom(c, &dev->rom);
	put8(c->wmask, PCI_INTERRUPT_LINE, 0xff);
	put8(c->cfg, PCI_INTERRUPT_PIN, dev->irq_pin);

	/* The capability pointer, status bit and chains. */
	muser_caps_init(dev);

	memcpy(c->init, c->cfg, sizeof(c->init));
	muser_intx_reset(dev);
	muser_caps_reset(dev);
}

/* Config space and the library's interrupt state back to power-on. */
void muser_pcicfg_reset(struct muser_dev *dev)
{
	memcpy(dev->pcicfg.cfg, dev->pcicfg.init, sizeof(dev->pcicfg.cfg));
	muser_intx_reset(dev);
	muser_caps_reset(dev);
}

/*
 * A reset of the whole function: the library's state, then the device's.
 * Returns 0, or -1 with errno set by the reset callback.
 */
int muser_reset(struct muser_dev *dev, enum muser_reset_reason reason)
{
	static const char *const why[] = {
		[MUSER_RESET_VFIO] = "VFIO",
		[MUSER_RESET_FLR] = "FLR",
		[MUSER_RESET_VMM_CLOSE] = "VMM closed",
	};

	muser_pcicfg_reset(dev);
	/* The VMM's reset ends a migration session, as in vfio-pci. */
	if (reason != MUSER_RESET_FLR)
		muser_mig_reset(dev);
	muser_dbg(dev, "reset (%s)", why[reason]);
	if (dev->reset_cb && dev->reset_cb(dev, dev->reset_priv, reason) < 0)
		return -1;
	return 0;
}

/* Whether the library emulates this byte (else the config callback does). */
static bool lib_owned(const struct muser_dev *dev, unsigned int off)
{
	return dev->pcicfg.owned[off];
}

/* After a write of @count bytes at @off the library owns. */
static int written(struct muser_dev *dev, unsigned int off, size_t count)
{
	if (off < PCI_COMMAND + 2 && off + count > PCI_COMMAND)
		muser_intx_written(dev);
	return muser_caps_written(dev, off, count);
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
 * Read or write @count bytes of config space at @offset.
 * Returns 0, or -1 with errno set: EINVAL (beyond the config size), or by
 * the config callback or a capability's write side effect (an FLR).
 */
int muser_pcicfg_access(struct muser_dev *dev, void *buf, size_t count,
			uint64_t offset, bool is_write)
{
	uint8_t *p = buf;
	size_t pos = 0;

	if (offset > dev->pcicfg.size || count > dev->pcicfg.size - offset) {
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
		if (lib && is_write && written(dev, off, run) < 0)
			return -1;
		pos += run;
	}
	return 0;
}

MUSER_EXPORT int muser_config_read(const struct muser_dev *dev, void *buf,
				   size_t count, unsigned int offset)
{
	const struct muser_pcicfg *c = &dev->pcicfg;
	uint8_t *p = buf;
	size_t i;

	if (!dev->realized || offset > c->size || count > c->size - offset) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < count; i++)
		p[i] = c->owned[offset + i] ? c->cfg[offset + i] : 0;
	return 0;
}
