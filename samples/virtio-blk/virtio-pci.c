// SPDX-License-Identifier: BSD-3-Clause
/*
 * The virtio 1.x PCI transport of the virtio-blk sample (virtio 1.x, 4.1):
 * a modern (non-transitional) device, ID 0x1042. Vendor capabilities point
 * the driver at the common configuration, ISR, device configuration and
 * notification structures in BAR0, whose accesses all reach the BAR
 * callback here; MSI-X is served by libmuser from BAR2.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <syslog.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "vblk.h"

#define VIRTIO_VENDOR		0x1af4
#define VIRTIO_ID_BLOCK_MODERN	0x1042		/* 0x1040 + device type 2 */
#define VIRTIO_SUBSYS_ID	0x1100		/* as QEMU's virtio devices */
#define VBLK_CLASS		0x018000	/* mass storage, other */

#define COMMON_SIZE	64	/* struct virtio_pci_common_cfg + notify data, reset */

static uint64_t bit(unsigned int b)
{
	return 1ull << b;
}

/* --- common configuration ------------------------------------------------ */

static struct vblk_queue *selected(struct vblk *v)
{
	return v->queue_sel < VBLK_NQ ? &v->q[v->queue_sel] : NULL;
}

static void common_image(struct vblk *v, uint8_t img[COMMON_SIZE])
{
	struct virtio_pci_common_cfg *c = (void *)img;
	struct vblk_queue *q = selected(v);

	memset(img, 0, COMMON_SIZE);
	c->device_feature_select = htole32(v->dfselect);
	c->device_feature = htole32(v->dfselect < 2 ? v->features >> (32 * v->dfselect) : 0);
	c->guest_feature_select = htole32(v->gfselect);
	c->guest_feature = htole32(v->gfselect < 2 ?
				   v->driver_features >> (32 * v->gfselect) : 0);
	c->msix_config = htole16(v->msix_config);
	c->num_queues = htole16(VBLK_NQ);
	c->device_status = v->status;
	c->config_generation = 0;	/* the configuration never changes */
	c->queue_select = htole16(v->queue_sel);
	if (!q)
		return;
	c->queue_size = htole16(q->size);
	c->queue_msix_vector = htole16(q->msix_vector);
	c->queue_enable = htole16(q->enabled);
	c->queue_notify_off = htole16(v->queue_sel);
	c->queue_desc_lo = htole32(q->addr[RING_DESC]);
	c->queue_desc_hi = htole32(q->addr[RING_DESC] >> 32);
	c->queue_avail_lo = htole32(q->addr[RING_AVAIL]);
	c->queue_avail_hi = htole32(q->addr[RING_AVAIL] >> 32);
	c->queue_used_lo = htole32(q->addr[RING_USED]);
	c->queue_used_hi = htole32(q->addr[RING_USED] >> 32);
}

static uint16_t valid_vector(uint32_t vec)
{
	/* An unknown vector reads back as NO_VECTOR: the driver checks. */
	return vec < VBLK_NVEC ? vec : VIRTIO_MSI_NO_VECTOR;
}

static bool features_ok(struct vblk *v)
{
	uint64_t f = v->driver_features;

	if (f & ~v->features) {
		muser_log(v->dev, LOG_WARNING, "driver accepted unoffered features %#llx",
			  (unsigned long long)(f & ~v->features));
		return false;
	}
	if (!(f & bit(VIRTIO_F_VERSION_1))) {
		muser_log(v->dev, LOG_WARNING, "driver did not accept VIRTIO_F_VERSION_1");
		return false;
	}
	return true;
}

static void set_status(struct vblk *v, uint8_t val)
{
	uint8_t old = v->status;
	unsigned int i;

	if (!val) {
		muser_log(v->dev, LOG_INFO, "driver reset the device");
		vblk_reset(v);
		return;
	}
	if ((val & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !features_ok(v))
		val &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	/* DRIVER_OK needs FEATURES_OK; NEEDS_RESET is the device's to set. */
	if (!(val & VIRTIO_CONFIG_S_FEATURES_OK))
		val &= ~VIRTIO_CONFIG_S_DRIVER_OK;
	val = (val & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
	v->status = val;
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
		muser_log(v->dev, LOG_INFO, "driver ready, features %#llx",
			  (unsigned long long)v->driver_features);
		for (i = 0; i < VBLK_NQ; i++)
			v->q[i].notified = v->q[i].enabled;
	}
}

static void set_addr(struct vblk_queue *q, int ring, bool hi, uint32_t val)
{
	if (hi)
		q->addr[ring] = (q->addr[ring] & 0xffffffffull) | (uint64_t)val << 32;
	else
		q->addr[ring] = (q->addr[ring] & ~0xffffffffull) | val;
}

static void common_write_field(struct vblk *v, unsigned int off, uint32_t val)
{
	struct vblk_queue *q = selected(v);
	/* queue registers are frozen once the queue is enabled */
	struct vblk_queue *qw = q && !q->enabled ? q : NULL;
	unsigned int sel;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		v->dfselect = val;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		v->gfselect = val;
		break;
	case VIRTIO_PCI_COMMON_GF:
		sel = v->gfselect;
		if (sel < 2 && !(v->status & VIRTIO_CONFIG_S_FEATURES_OK))
			v->driver_features = (v->driver_features & ~(0xffffffffull << (32 * sel))) |
					     (uint64_t)val << (32 * sel);
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		v->msix_config = valid_vector(val);
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		set_status(v, val);
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		v->queue_sel = val;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		/* a power of 2 up to the maximum (split rings) */
		if (qw && val && val <= VBLK_QSIZE && !(val & (val - 1)))
			qw->size = val;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (q)
			q->msix_vector = valid_vector(val);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (qw && val == 1 && vblk_queue_enable(v, qw) < 0)
			vblk_needs_reset(v, "cannot enable a queue");
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		if (qw)
			set_addr(qw, (off - VIRTIO_PCI_COMMON_Q_DESCLO) / 8,
				 off & 4, val);
		break;
	default:
		break;		/* read-only */
	}
}

/* The registers of the common configuration, by offset and size. */
static const struct { uint8_t off, size; } common_fields[] = {
	{ VIRTIO_PCI_COMMON_DFSELECT, 4 }, { VIRTIO_PCI_COMMON_DF, 4 },
	{ VIRTIO_PCI_COMMON_GFSELECT, 4 }, { VIRTIO_PCI_COMMON_GF, 4 },
	{ VIRTIO_PCI_COMMON_MSIX, 2 }, { VIRTIO_PCI_COMMON_NUMQ, 2 },
	{ VIRTIO_PCI_COMMON_STATUS, 1 }, { VIRTIO_PCI_COMMON_CFGGENERATION, 1 },
	{ VIRTIO_PCI_COMMON_Q_SELECT, 2 }, { VIRTIO_PCI_COMMON_Q_SIZE, 2 },
	{ VIRTIO_PCI_COMMON_Q_MSIX, 2 }, { VIRTIO_PCI_COMMON_Q_ENABLE, 2 },
	{ VIRTIO_PCI_COMMON_Q_NOFF, 2 },
	{ VIRTIO_PCI_COMMON_Q_DESCLO, 4 }, { VIRTIO_PCI_COMMON_Q_DESCHI, 4 },
	{ VIRTIO_PCI_COMMON_Q_AVAILLO, 4 }, { VIRTIO_PCI_COMMON_Q_AVAILHI, 4 },
	{ VIRTIO_PCI_COMMON_Q_USEDLO, 4 }, { VIRTIO_PCI_COMMON_Q_USEDHI, 4 },
};

/*
 * A write of any size updates the image, then every register it touched
 * takes its new value (so a 64-bit write of two address halves works too).
 */
static void common_access(struct vblk *v, void *buf, size_t count,
			  uint64_t off, bool is_write)
{
	uint8_t img[COMMON_SIZE];
	size_t n = off < COMMON_SIZE ? COMMON_SIZE - off : 0;
	unsigned int i;

	if (n > count)
		n = count;
	common_image(v, img);
	if (!is_write) {
		memcpy(buf, img + off, n);
		return;
	}
	if (!n)
		return;
	memcpy(img + off, buf, n);
	for (i = 0; i < sizeof(common_fields) / sizeof(common_fields[0]); i++) {
		unsigned int fo = common_fields[i].off, fs = common_fields[i].size;
		uint32_t val = 0;
		unsigned int b;

		if (fo + fs <= off || fo >= off + n)
			continue;
		for (b = 0; b < fs; b++)	/* little-endian */
			val |= (uint32_t)img[fo + b] << (8 * b);
		common_write_field(v, fo, val);
	}
}

/* --- BAR0 ----------------------------------------------------------------- */

static ssize_t bar0_access(struct muser_dev *dev, void *priv, void *buf,
			   size_t count, uint64_t offset, bool is_write)
{
	struct vblk *v = priv;
	uint64_t region = offset & ~(uint64_t)(VBLK_REGION_SIZE - 1);
	uint64_t off = offset - region;

	if (off + count > VBLK_REGION_SIZE) {
		errno = EINVAL;		/* spans two structures */
		return -1;
	}
	switch (region) {
	case VBLK_COMMON:
		common_access(v, buf, count, off, is_write);
		break;
	case VBLK_ISR:
		/*
		 * Reading the ISR status clears it: a replayed read that was
		 * served already (its id recorded) gets the same answer.
		 */
		if (!is_write && off == 0) {
			uint64_t id = muser_req_id(dev);

			if (!muser_req_replayed(dev) || id != v->isr_read_id) {
				v->isr_read_id = id;
				v->isr_read_val = v->isr;
				v->isr = 0;
			}
			*(uint8_t *)buf = v->isr_read_val;
			vblk_save(v);
		}
		break;
	case VBLK_DEVCFG:
		/* Read-only: no VIRTIO_BLK_F_CONFIG_WCE. */
		if (!is_write && off < sizeof(v->cfg))
			memcpy(buf, (uint8_t *)&v->cfg + off,
			       count < sizeof(v->cfg) - off ? count : sizeof(v->cfg) - off);
		break;
	case VBLK_NOTIFY:
		if (is_write && off % VBLK_NOTIFY_MULT == 0 &&
		    off / VBLK_NOTIFY_MULT < VBLK_NQ) {
			v->q[off / VBLK_NOTIFY_MULT].notified = true;
			v->notifies++;
		}
		return count;	/* nothing to save: a new emulator looks anyway */
	}
	/* Saved before the reply: a crash before it replays the access. */
	if (is_write)
		vblk_save(v);
	return count;
}

/* --- the PCI configuration access capability (VIRTIO_PCI_CAP_PCI_CFG) ----- */

/*
 * Its body (bar, offset, length, pci_cfg_data) is served here: the driver
 * sets bar/offset/length, then reads or writes pci_cfg_data to access BAR0
 * through config space.
 */
static ssize_t config_access(struct muser_dev *dev, void *priv, void *buf,
			     size_t count, uint64_t offset, bool is_write)
{
	struct vblk *v = priv;
	struct virtio_pci_cfg_cap *c = &v->pci_cfg;
	const size_t data = offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint64_t off = offset - v->pci_cfg_cap;
	uint32_t len = le32toh(c->cap.length), at = le32toh(c->cap.offset);
	bool window = c->cap.bar == VBLK_BAR && (len == 1 || len == 2 || len == 4) &&
		      at % len == 0 && at + len <= VBLK_BAR_SIZE;

	if (offset < v->pci_cfg_cap || off + count > sizeof(*c)) {
		if (!is_write)
			memset(buf, 0, count);	/* outside it: reads as zero */
		return count;
	}
	if (!is_write) {
		if (off + count > data && window)
			bar0_access(dev, v, c->pci_cfg_data, len, at, false);
		memcpy(buf, (uint8_t *)c + off, count);
		return count;
	}
	/* cfg_type and id are read-only */
	if (off <= offsetof(struct virtio_pci_cap, id) &&
	    off + count > offsetof(struct virtio_pci_cap, cfg_type)) {
		uint8_t keep[2] = { c->cap.cfg_type, c->cap.id };

		memcpy((uint8_t *)c + off, buf, count);
		c->cap.cfg_type = keep[0];
		c->cap.id = keep[1];
	} else {
		memcpy((uint8_t *)c + off, buf, count);
	}
	if (off + count > data && window)
		bar0_access(dev, v, c->pci_cfg_data, len, at, true);
	vblk_save(v);
	return count;
}

/* --- description ---------------------------------------------------------- */

static int add_virtio_cap(struct vblk *v, uint8_t type, uint32_t offset,
			  uint32_t length)
{
	struct virtio_pci_notify_cap cap = {
		.cap.cfg_type = type,
		.cap.bar = VBLK_BAR,
		.cap.offset = htole32(offset),
		.cap.length = htole32(length),
		.notify_off_multiplier = htole32(VBLK_NOTIFY_MULT),
	};
	size_t len = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? sizeof(cap) : sizeof(cap.cap);

	/* The library writes the ID, next pointer and length bytes. */
	return muser_add_cap_vendor(v->dev, &cap.cap.cfg_type,
				    len - offsetof(struct virtio_pci_cap, cfg_type), 0);
}

static void init_config(struct vblk *v)
{
	struct virtio_blk_config *c = &v->cfg;

	memset(c, 0, sizeof(*c));
	c->capacity = htole64(v->blk.sectors);
	c->seg_max = htole32(BLK_SEG_MAX);
	c->blk_size = htole32(BLK_SECTOR);
	c->num_queues = htole16(VBLK_NQ);
	c->max_discard_sectors = htole32(BLK_MAX_DISCARD_SECTORS);
	c->max_discard_seg = htole32(BLK_MAX_DISCARD_SEG);
	c->discard_sector_alignment = htole32(4096 / BLK_SECTOR);
	c->max_write_zeroes_sectors = htole32(BLK_MAX_DISCARD_SECTORS);
	c->max_write_zeroes_seg = htole32(BLK_MAX_DISCARD_SEG);
	c->write_zeroes_may_unmap = 1;

	v->features = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC) |
		      bit(VIRTIO_RING_F_EVENT_IDX) | bit(VIRTIO_BLK_F_SEG_MAX) |
		      bit(VIRTIO_BLK_F_BLK_SIZE) | bit(VIRTIO_BLK_F_FLUSH) |
		      bit(VIRTIO_BLK_F_MQ);
	if (v->blk.ro)
		v->features |= bit(VIRTIO_BLK_F_RO);
	else
		v->features |= bit(VIRTIO_BLK_F_DISCARD) | bit(VIRTIO_BLK_F_WRITE_ZEROES);
}

static int reset_cb(struct muser_dev *dev, void *priv, enum muser_reset_reason why)
{
	static const char *const names[] = { "VFIO reset", "FLR", "VMM closed" };
	struct vblk *v = priv;

	muser_log(dev, LOG_INFO, "reset: %s", why < 3 ? names[why] : "?");
	vblk_reset(v);
	vblk_save(v);
	return 0;
}

void vblk_needs_reset(struct vblk *v, const char *why)
{
	muser_log(v->dev, LOG_WARNING, "device needs reset: %s", why);
	if (v->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	v->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (v->status & VIRTIO_CONFIG_S_DRIVER_OK)
		vblk_interrupt(v, v->msix_config, VIRTIO_PCI_ISR_CONFIG);
	vblk_save(v);
}

void vblk_reset(struct vblk *v)
{
	unsigned int i;

	for (i = 0; i < VBLK_NQ; i++) {
		unsigned long served = v->q[i].served;

		vblk_queue_release(v, &v->q[i]);
		memset(&v->q[i], 0, sizeof(v->q[i]));
		v->q[i].served = served;
		v->q[i].size = VBLK_QSIZE;
		v->q[i].msix_vector = VIRTIO_MSI_NO_VECTOR;
	}
	v->driver_features = 0;
	v->dfselect = v->gfselect = 0;
	v->msix_config = VIRTIO_MSI_NO_VECTOR;
	v->queue_sel = 0;
	v->status = 0;
	v->isr = 0;
	v->resets++;
}

int vblk_describe(struct vblk *v)
{
	struct muser_dev *dev = v->dev;
	int off;

	init_config(v);
	vblk_reset(v);
	v->resets = 0;
	if (muser_pci_set_ids(dev, VIRTIO_VENDOR, VIRTIO_ID_BLOCK_MODERN,
			      VIRTIO_VENDOR, VIRTIO_SUBSYS_ID) < 0 ||
	    muser_pci_set_revision(dev, 1) < 0 ||	/* modern-only device */
	    muser_pci_set_class(dev, VBLK_CLASS) < 0 ||
	    muser_setup_bar(dev, VBLK_BAR, VBLK_BAR_SIZE, MUSER_BAR_MEM32 |
			    (v->posted ? MUSER_BAR_POSTED_WRITES : 0),
			    bar0_access, v) < 0 ||
	    muser_setup_bar(dev, VBLK_MSIX_BAR, VBLK_MSIX_BAR_SIZE, MUSER_BAR_MEM32,
			    NULL, NULL) < 0 ||
	    muser_add_cap_pm(dev, 0) < 0 ||
	    muser_add_cap_msix(dev, VBLK_NVEC, VBLK_MSIX_BAR, 0, VBLK_MSIX_BAR, 0x1000) < 0 ||
	    add_virtio_cap(v, VIRTIO_PCI_CAP_COMMON_CFG, VBLK_COMMON, VBLK_REGION_SIZE) < 0 ||
	    add_virtio_cap(v, VIRTIO_PCI_CAP_NOTIFY_CFG, VBLK_NOTIFY, VBLK_REGION_SIZE) < 0 ||
	    add_virtio_cap(v, VIRTIO_PCI_CAP_ISR_CFG, VBLK_ISR, VBLK_REGION_SIZE) < 0 ||
	    add_virtio_cap(v, VIRTIO_PCI_CAP_DEVICE_CFG, VBLK_DEVCFG, VBLK_REGION_SIZE) < 0)
		return -1;
	off = muser_add_cap_vendor(dev, NULL, sizeof(v->pci_cfg) -
				   offsetof(struct virtio_pci_cap, cfg_type), MUSER_CAP_CB);
	if (off < 0)
		return -1;
	v->pci_cfg_cap = off;
	memset(&v->pci_cfg, 0, sizeof(v->pci_cfg));
	v->pci_cfg.cap.cap_vndr = PCI_CAP_ID_VNDR;
	v->pci_cfg.cap.cap_len = sizeof(v->pci_cfg);
	v->pci_cfg.cap.cfg_type = VIRTIO_PCI_CAP_PCI_CFG;
	if (muser_set_config_cb(dev, config_access, v) < 0 ||
	    muser_set_reset_cb(dev, reset_cb, v) < 0 ||
	    muser_set_dma_revoke_cb(dev, vblk_dma_revoke, v) < 0 ||
	    muser_set_recover_cb(dev, vblk_recover, v) < 0)
		return -1;
	return 0;
}
