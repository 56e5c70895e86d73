/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio-blk sample's device state, shared by its files:
 *   main.c        arguments, the backing file, the event loop
 *   virtio-pci.c  the virtio PCI transport: IDs, capabilities, BAR0
 *                 registers, feature negotiation, device status and resets
 *   queues.c      virtqueues in guest memory: mapping the rings and the
 *                 buffers, serving requests, interrupts, revocation
 *   state.c       what survives the emulator: the state area, recovery,
 *                 which emulator serves the queues (takeover)
 *   vq.c, blk.c   split-ring and block-request logic (no libmuser)
 */
#ifndef VBLK_H
#define VBLK_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_pci.h>

#include <muser.h>

#include "blk.h"
#include "vq.h"

#define VBLK_NQ		2		/* request queues (VIRTIO_BLK_F_MQ) */
#define VBLK_QSIZE	256		/* largest queue size */
#define VBLK_NVEC	(1 + VBLK_NQ)	/* MSI-X: config + one per queue */

/* BAR0: one page per virtio structure; BAR2: the MSI-X table and PBA. */
#define VBLK_BAR		0
#define VBLK_BAR_SIZE		0x4000
#define VBLK_COMMON		0x0000
#define VBLK_ISR		0x1000
#define VBLK_DEVCFG		0x2000
#define VBLK_NOTIFY		0x3000
#define VBLK_NOTIFY_MULT	4	/* queue N is notified at VBLK_NOTIFY + 4 * N */
#define VBLK_REGION_SIZE	0x1000
#define VBLK_MSIX_BAR		2
#define VBLK_MSIX_BAR_SIZE	0x2000

enum { RING_DESC, RING_AVAIL, RING_USED, RING_N };

struct vblk_queue {
	/* registers, as the driver set them */
	uint16_t size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t addr[RING_N];		/* ring iovas */
	/* the rings mapped into this process, while mapped */
	bool mapped;
	struct muser_sg map[RING_N];
	struct vq vq;
	bool notified;			/* work to look for */
	bool polled;			/* ran dry while polling: doorbells off */
	bool resync;			/* recovered: indices from guest memory */
	bool kick;			/* recovered: send the interrupt once */
	unsigned long served;		/* requests completed */
};

struct vblk {
	struct muser_dev *dev;
	struct blk blk;
	uint64_t features;		/* offered */
	uint64_t driver_features;	/* accepted by the driver */
	uint32_t dfselect, gfselect;
	uint16_t msix_config;
	uint16_t queue_sel;
	uint8_t status;
	uint8_t isr;
	struct vblk_queue q[VBLK_NQ];
	struct virtio_blk_config cfg;	/* little-endian image */
	unsigned int pci_cfg_cap;	/* config offset of the PCI_CFG capability */
	struct virtio_pci_cfg_cap pci_cfg; /* its registers */
	uint64_t isr_read_id;		/* the last ISR read (request id) */
	uint8_t isr_read_val;		/* and what it returned */
	unsigned long revokes, resets, recoveries;
	unsigned long redone;		/* requests served again after a restart */
	unsigned long notifies, irqs;	/* doorbells taken, interrupts raised */
#ifdef MUSER_SAMPLE_TEST_HOOKS
	unsigned long die_in_request;	/* testing: SIGKILL itself in this request */
#endif
	bool posted;			/* BAR0 writes posted (--posted) */
	unsigned long poll_us;		/* --poll: how long a dry queue is polled */
	uint64_t poll_until;		/* polled till then (µs, CLOCK_MONOTONIC) */
	uint32_t owner;			/* see vblk_claim() */
	bool gone;			/* taken over: touch nothing */
	bool stopped;			/* the VM is stopped for a migration */
};

/* virtio-pci.c */
int vblk_describe(struct vblk *v);		/* IDs, BARs, capabilities, callbacks */
void vblk_reset(struct vblk *v);		/* back to power-on state */
void vblk_needs_reset(struct vblk *v, const char *why);

/* queues.c */
int vblk_queue_enable(struct vblk *v, struct vblk_queue *q);
void vblk_queue_resync(struct vblk *v, struct vblk_queue *q);
bool vblk_pending(const struct vblk *v);	/* a queue was notified or is polled */
void vblk_queue_release(struct vblk *v, struct vblk_queue *q);
void vblk_dma_revoke(struct muser_dev *dev, void *priv, uint64_t iova,
		     uint64_t size);
/* Serves notified queues; returns true if work is left (call again soon). */
bool vblk_process(struct vblk *v);
void vblk_interrupt(struct vblk *v, uint16_t vector, uint8_t isr);

/* state.c */
void vblk_save(struct vblk *v);			/* into the state area */
int vblk_recover(struct muser_dev *dev, void *priv);	/* muser_recover_cb */
void vblk_state_init(struct vblk *v);		/* a new device */
int vblk_lock(struct vblk *v);			/* serving the queues: flock */
void vblk_unlock(struct vblk *v);
void vblk_claim(struct vblk *v);		/* this emulator serves them now */
bool vblk_owner(struct vblk *v);		/* still? (false: taken over) */

#endif
