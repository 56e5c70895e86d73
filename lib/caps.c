// SPDX-License-Identifier: BSD-3-Clause
/*
 * The capability lists: placing capabilities (dword aligned, in the order
 * they are added, standard ones from 0x40 and extended ones from 0x100),
 * writing their headers and next pointers, and passing init, reset and
 * write events to the capability that owns the bytes. The simple
 * capabilities live here too: vendor-specific (standard and extended) and
 * the device serial number; PM, MSI, MSI-X and PCIe have files of their
 * own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "private.h"

#define STD_CAPS_END		MUSER_CONFIG_SIZE
#define EXT_CAPS_END		MUSER_CONFIG_SIZE_PCIE
#define VNDR_HDR_LEN		3	/* ID, next, length */
#define VSEC_HDR_LEN		8	/* extended header, VSEC header */
#define VSEC_MAX_LEN		0xfff	/* VSEC Length is 12 bits */
#define DSN_SERIAL		4	/* lower dword, then upper */

static unsigned int align4(unsigned int x)
{
	return (x + 3) & ~3u;
}

/* The first free offset after the last capability of the kind. */
static unsigned int next_free(const struct muser_dev *dev, bool ext)
{
	unsigned int i, end = ext ? MUSER_EXT_CAP_START : MUSER_STD_HEADER_SIZE;

	for (i = 0; i < dev->ncaps; i++)
		if (dev->caps[i].ext == ext)
			end = dev->caps[i].off + dev->caps[i].len;
	return align4(end);
}

/*
 * Reserve @len bytes for a capability at the next dword-aligned offset.
 * Returns the capability, or NULL with errno set (EBUSY, ENOSPC).
 */
struct muser_cap *muser_cap_add(struct muser_dev *dev, uint16_t id,
				size_t len, bool ext,
				const struct muser_cap_ops *ops)
{
	unsigned int off = next_free(dev, ext);
	unsigned int end = ext ? EXT_CAPS_END : STD_CAPS_END;
	struct muser_cap *cap;

	if (muser_unrealized(dev))
		return NULL;
	if (dev->ncaps == MUSER_MAX_CAPS || off > end || len > end - off) {
		errno = ENOSPC;
		return NULL;
	}
	cap = &dev->caps[dev->ncaps++];
	*cap = (struct muser_cap){
		.ops = ops, .id = id, .off = off, .len = len, .owned_len = len,
		.ext = ext,
	};
	return cap;
}

/* The next capability of the same kind after @i, or NULL. */
static const struct muser_cap *next_cap(const struct muser_dev *dev,
					unsigned int i)
{
	unsigned int j;

	for (j = i + 1; j < dev->ncaps; j++)
		if (dev->caps[j].ext == dev->caps[i].ext)
			return &dev->caps[j];
	return NULL;
}

static void init_header(struct muser_dev *dev, unsigned int i)
{
	const struct muser_cap *cap = &dev->caps[i], *next = next_cap(dev, i);
	unsigned int next_off = next ? next->off : 0;

	if (cap->ext)
		muser_cfg_reg(dev, cap->off, 4,
			      cap->id | 1u << 16 | next_off << 20, 0, 0);
	else
		muser_cfg_reg(dev, cap->off, 2, cap->id | next_off << 8, 0, 0);
}

/* Write the chains and each capability's registers (muser_pcicfg_init()). */
void muser_caps_init(struct muser_dev *dev)
{
	struct muser_pcicfg *c = &dev->pcicfg;
	bool std_seen = false;
	unsigned int i;

	/* The first extended header is ours, even when it reads 0. */
	if (c->size > MUSER_EXT_CAP_START)
		muser_cfg_reg(dev, MUSER_EXT_CAP_START, 4, 0, 0, 0);

	for (i = 0; i < dev->ncaps; i++) {
		const struct muser_cap *cap = &dev->caps[i];

		if (!cap->ext && !std_seen) {
			muser_cfg_put(dev, PCI_CAPABILITY_LIST, 1, cap->off);
			muser_cfg_put(dev, PCI_STATUS, 2,
				      muser_cfg_get(dev, PCI_STATUS, 2) |
				      PCI_STATUS_CAP_LIST);
			std_seen = true;
		}
		init_header(dev, i);
		memset(&c->owned[cap->off], 1, cap->owned_len);
		if (cap->ops && cap->ops->init)
			cap->ops->init(dev, cap);
	}
}

void muser_caps_reset(struct muser_dev *dev)
{
	unsigned int i;

	for (i = 0; i < dev->ncaps; i++)
		if (dev->caps[i].ops && dev->caps[i].ops->reset)
			dev->caps[i].ops->reset(dev, &dev->caps[i]);
}

/* The guest wrote @len library-owned bytes at @off. */
int muser_caps_written(struct muser_dev *dev, unsigned int off, size_t len)
{
	unsigned int i;

	for (i = 0; i < dev->ncaps; i++) {
		const struct muser_cap *cap = &dev->caps[i];

		if (off >= cap->off + cap->owned_len || off + len <= cap->off ||
		    !cap->ops || !cap->ops->written)
			continue;
		if (cap->ops->written(dev, cap) < 0)
			return -1;
	}
	return 0;
}

void muser_caps_free(struct muser_dev *dev)
{
	unsigned int i;

	for (i = 0; i < dev->ncaps; i++)
		free(dev->caps[i].data);
	free(dev->msix.table);
	free(dev->msix.pba);
}

/* ---------------------------------------------------------------------- */
/* Vendor-specific and serial number capabilities                          */

/* Body bytes from cap->data, read-only. */
static void init_body(struct muser_dev *dev, const struct muser_cap *cap,
		      unsigned int hdr_len)
{
	if (cap->data)
		memcpy(&dev->pcicfg.cfg[cap->off + hdr_len], cap->data,
		       cap->len - hdr_len);
}

static void vndr_init(struct muser_dev *dev, const struct muser_cap *cap)
{
	muser_cfg_reg(dev, cap->off + PCI_CAP_FLAGS, 1, cap->len, 0, 0);
	init_body(dev, cap, VNDR_HDR_LEN);
}

static const struct muser_cap_ops vndr_ops = { .init = vndr_init };

static void vsec_init(struct muser_dev *dev, const struct muser_cap *cap)
{
	muser_cfg_reg(dev, cap->off + PCI_VNDR_HEADER, 4,
		      (uint32_t)cap->arg | (uint32_t)cap->len << 20, 0, 0);
	init_body(dev, cap, VSEC_HDR_LEN);
}

static const struct muser_cap_ops vsec_ops = { .init = vsec_init };

static void dsn_init(struct muser_dev *dev, const struct muser_cap *cap)
{
	muser_cfg_reg(dev, cap->off + DSN_SERIAL, 4, (uint32_t)cap->arg, 0, 0);
	muser_cfg_reg(dev, cap->off + DSN_SERIAL + 4, 4, cap->arg >> 32, 0, 0);
}

static const struct muser_cap_ops dsn_ops = { .init = dsn_init };

/* Add a capability with a body copied from @data, or served by the callback. */
static int add_with_body(struct muser_dev *dev, uint16_t id, bool ext,
			 const struct muser_cap_ops *ops, unsigned int hdr_len,
			 const void *data, size_t len, unsigned int flags,
			 size_t max_len)
{
	struct muser_cap *cap;
	uint8_t *copy = NULL;

	if (muser_unrealized(dev))
		return -1;
	if ((flags & ~MUSER_CAP_CB) || len > max_len - hdr_len ||
	    (!data && len && !(flags & MUSER_CAP_CB))) {
		errno = EINVAL;
		return -1;
	}
	if (!(flags & MUSER_CAP_CB) && len) {
		copy = malloc(len);
		if (!copy)
			return -1;
		memcpy(copy, data, len);
	}
	cap = muser_cap_add(dev, id, hdr_len + len, ext, ops);
	if (!cap) {
		free(copy);
		return -1;
	}
	cap->data = copy;
	if (flags & MUSER_CAP_CB)
		cap->owned_len = hdr_len;
	return cap->off;
}

MUSER_EXPORT int muser_add_cap_vendor(struct muser_dev *dev, const void *data,
				      size_t len, unsigned int flags)
{
	return add_with_body(dev, PCI_CAP_ID_VNDR, false, &vndr_ops,
			     VNDR_HDR_LEN, data, len, flags,
			     STD_CAPS_END - MUSER_STD_HEADER_SIZE);
}

/* Extended capabilities need 4 KiB config space. */
static int ext_allowed(const struct muser_dev *dev)
{
	if (dev->config_size == MUSER_CONFIG_SIZE) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

MUSER_EXPORT int muser_add_ext_cap_vendor(struct muser_dev *dev,
					  uint16_t vsec_id, uint8_t vsec_rev,
					  const void *data, size_t len,
					  unsigned int flags)
{
	int off;

	if (muser_unrealized(dev) || ext_allowed(dev))
		return -1;
	if (vsec_rev > 0xf) {
		errno = EINVAL;
		return -1;
	}
	off = add_with_body(dev, PCI_EXT_CAP_ID_VNDR, true, &vsec_ops,
			    VSEC_HDR_LEN, data, len, flags, VSEC_MAX_LEN);
	if (off >= 0)
		dev->caps[dev->ncaps - 1].arg = vsec_id | (uint32_t)vsec_rev << 16;
	return off;
}

MUSER_EXPORT int muser_add_ext_cap_dsn(struct muser_dev *dev, uint64_t serial)
{
	struct muser_cap *cap;
	unsigned int i;

	if (muser_unrealized(dev) || ext_allowed(dev))
		return -1;
	for (i = 0; i < dev->ncaps; i++) {
		if (dev->caps[i].ext && dev->caps[i].id == PCI_EXT_CAP_ID_DSN) {
			errno = EEXIST;
			return -1;
		}
	}
	cap = muser_cap_add(dev, PCI_EXT_CAP_ID_DSN, PCI_EXT_CAP_DSN_SIZEOF,
			    true, &dsn_ops);
	if (!cap)
		return -1;
	cap->arg = serial;
	return cap->off;
}
