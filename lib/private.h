/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmuser internals, shared by the sources in lib/ and the host unit tests.
 * Nothing here is exported from the shared library.
 */
#ifndef MUSER_PRIVATE_H
#define MUSER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include <muser.h>

#define MUSER_NUM_BARS		6
#define MUSER_STD_HEADER_SIZE	0x40
#define MUSER_CONFIG_MAX	MUSER_CONFIG_SIZE_PCIE
#define MUSER_EXT_CAP_START	0x100
/* Capabilities a device may add, standard and extended together. */
#define MUSER_MAX_CAPS		32
/* read() buffer: many requests per system call. */
#define MUSER_IN_BUF_SIZE	(64 * 1024)
/* Reply buffer: at least one reply of the largest size. */
#define MUSER_OUT_BUF_SIZE	(64 * 1024)
/* muser_dispatch() reads at most this many batches per call. */
#define MUSER_DISPATCH_ROUNDS	16
/* The VGA region: legacy memory and I/O ranges at their own addresses. */
#define MUSER_VGA_SIZE		0xc0000
/* MSI-X vectors a device may have (the capability's table size field). */
#define MUSER_MSIX_MAX_VECTORS	2048

#define MUSER_ALIGN_UP(x)	(((x) + MUSER_ALIGN - 1) & ~(size_t)(MUSER_ALIGN - 1))

/*
 * How the library talks to the control node. The default calls read(2),
 * write(2) and ioctl(2) on dev->fd; the unit tests plug in a fake kernel.
 * Each returns like the system call: -1 with errno set on failure.
 */
struct muser_io_ops {
	ssize_t (*read)(struct muser_dev *dev, void *buf, size_t len);
	ssize_t (*write)(struct muser_dev *dev, const void *buf, size_t len);
	int (*ioctl)(struct muser_dev *dev, unsigned long req, void *arg);
	/* mmap(2) of @len bytes at @offset of the node: NULL on failure. */
	void *(*mmap)(struct muser_dev *dev, size_t len, uint64_t offset);
	void (*munmap)(struct muser_dev *dev, void *addr, size_t len);
};

/* The request ring, as mapped (ring.c). @hdr NULL: none. */
struct muser_ring {
	struct muser_ring_hdr *hdr;
	struct muser_ring_sqe *sq;
	struct muser_ring_cqe *cq;
	uint32_t entries;		/* a power of two */
	uint32_t sq_head, cq_tail;	/* ours: the shared copies are written only */
	size_t size;			/* of the mapping */
	bool dead;			/* the kernel's index was out of range */
};

/* A BAR, and also the ROM and VGA regions (flags 0). */
struct muser_bar {
	uint64_t size;			/* 0: not implemented */
	unsigned int flags;		/* MUSER_BAR_* */
	bool upper;			/* upper half of the 64-bit BAR below */
	muser_region_access_cb cb;
	void *priv;
};

/*
 * Emulated config space. Every byte has a write mask (bits the guest may
 * change) and a write-1-to-clear mask; @init holds the power-on values.
 * Bytes marked in @owned (the header, the capabilities) are emulated by the
 * library; the others go to the device's config callback.
 */
struct muser_pcicfg {
	unsigned int size;		/* 256 or 4096 */
	uint8_t cfg[MUSER_CONFIG_MAX];
	uint8_t wmask[MUSER_CONFIG_MAX];
	uint8_t w1cmask[MUSER_CONFIG_MAX];
	uint8_t init[MUSER_CONFIG_MAX];
	uint8_t owned[MUSER_CONFIG_MAX];
};

struct muser_cap;

/*
 * What a capability does beyond its header (caps.c writes the ID and next
 * pointer, or the extended header). All optional.
 * @init:    define the registers: muser_cfg_reg() relative to cap->off
 * @reset:   state outside config space back to power-on; also after @init
 * @written: the guest wrote some of the capability's bytes (already applied
 *           through the masks); returns 0, or -1 with errno for the VMM
 */
struct muser_cap_ops {
	void (*init)(struct muser_dev *dev, const struct muser_cap *cap);
	void (*reset)(struct muser_dev *dev, const struct muser_cap *cap);
	int (*written)(struct muser_dev *dev, const struct muser_cap *cap);
};

struct muser_cap {
	const struct muser_cap_ops *ops;
	uint16_t id;			/* PCI_CAP_ID_* or PCI_EXT_CAP_ID_* */
	uint16_t off;			/* in config space, dword aligned */
	uint16_t len;			/* bytes, header included */
	uint16_t owned_len;		/* bytes from @off the library emulates */
	bool ext;			/* extended (from 0x100) */
	uint8_t *data;			/* vendor-specific body, freed with the device */
	uint64_t arg;			/* DSN: serial; extended vendor: id, rev */
};

struct muser_msi {
	uint16_t off;			/* capability offset; 0: none */
	unsigned int nvec;		/* 1..32 */
	unsigned int flags;		/* MUSER_MSI_* */
	uint16_t ctrl;			/* Message Control as last applied */
	uint32_t mask;			/* Mask Bits as last applied */
};

struct muser_msix {
	uint16_t off;			/* capability offset; 0: none */
	unsigned int nvec;		/* 1..2048 */
	int table_bar, pba_bar;
	uint64_t table_off, pba_off;
	uint8_t *table;			/* nvec entries of 16 bytes */
	uint8_t *pba;			/* pending bits, whole qwords */
	bool table_written;		/* vector masks are the guest's */
	uint16_t ctrl;			/* Message Control as last applied */
};

/* Migration (migration.c); @state and the stream positions are saved. */
struct muser_mig {
	bool enabled;			/* muser_setup_migration() */
	struct muser_migration_ops ops;
	void *priv;
	uint32_t state;			/* VFIO_DEVICE_STATE_V1_* */
	bool broken;			/* the stream being loaded was refused or lost */
	bool applied;			/* it was complete, and is loaded */
	uint8_t *out;			/* the stream being saved */
	uint64_t out_len;
	uint64_t out_sum;		/* its checksum */
	uint64_t consumed;		/* of it, read by the VMM */
	uint64_t offered;		/* in the window after that */
	uint8_t *in;			/* the stream being loaded */
	size_t in_len;
	uint64_t in_total;		/* its length, once its header came */
	uint8_t *window;		/* the data window while resuming */
};

struct muser_dev {
	int fd;				/* control node, O_NONBLOCK */
	int stop_fd;			/* eventfd written by muser_stop() */
	int stop_requested;		/* set by muser_stop(), atomically */
	const struct muser_io_ops *io;
	void *io_priv;			/* for a non-default @io */
	char name[64];			/* for log messages */
	bool realized;

	uint16_t vendor, device, subsys_vendor, subsys_id;
	uint32_t class_code;
	uint8_t revision;
	uint8_t irq_pin;
	struct muser_bar bars[MUSER_NUM_BARS];
	muser_region_access_cb cfg_cb;
	void *cfg_priv;
	muser_reset_cb reset_cb;
	void *reset_priv;
	muser_irq_state_cb irq_state_cb;
	void *irq_state_priv;
	muser_dma_revoke_cb dma_revoke_cb;
	void *dma_revoke_priv;
	struct muser_dma_cache *dma;	/* guest memory mapped; NULL: none yet */
	muser_recover_cb recover_cb;
	void *recover_priv;
	void *state;			/* the state area (MUSER_STATE_SIZE) */
	bool state_mapped;		/* the kernel's, not this process's */
	bool recovered;			/* realize found a previous emulator's */
	struct muser_bar rom;		/* size 0: none */
	struct muser_bar vga;		/* size 0 or MUSER_VGA_SIZE */
	unsigned int config_size;	/* 0: chosen from the capabilities */

	struct muser_cap caps[MUSER_MAX_CAPS];
	unsigned int ncaps;
	uint16_t pm_off, pcie_off;	/* 0: none */
	unsigned int pm_flags, pcie_flags;
	uint8_t pcie_type;
	uint8_t pm_state;		/* power state as last applied */
	struct muser_msi msi;
	struct muser_msix msix;
	struct muser_mmap_area mmap_areas[MUSER_MAX_MMAP_AREAS];
	unsigned int nr_mmap_areas;
	bool intx_disabled;		/* INTx Disable as last applied */
	bool intx_held;			/* raised while disabled, not sent */
	bool irq_coalesce;		/* muser_set_irq_coalescing() */
	uint32_t irq_owed_msi;		/* vectors noted in this batch */
	uint64_t irq_owed_msix[MUSER_MSIX_MAX_VECTORS / 64];

	muser_log_cb log_cb;
	int log_level;
	void *priv;

	struct muser_pcicfg pcicfg;
	struct muser_device_info info;	/* as attached */
	uint16_t cur_req_flags;		/* MUSER_REQ_F_* of the request in hand */
	uint64_t cur_req_id;		/* its id; 0 outside callbacks */

	uint8_t *in_buf;		/* MUSER_IN_BUF_SIZE */
	uint8_t *out_buf;		/* MUSER_OUT_BUF_SIZE */

	unsigned int ring_entries;	/* asked for; 0: no ring */
	struct muser_ring ring;
	struct muser_mig mig;
};

/* dev.c */
struct muser_dev *muser_dev_alloc(int fd, const struct muser_io_ops *io,
				  void *io_priv, const char *name);

/* layout.c */
void muser_build_device_info(const struct muser_dev *dev,
			     struct muser_device_info *info);

/* setup.c */
int muser_unrealized(const struct muser_dev *dev);
unsigned int muser_config_size(const struct muser_dev *dev);

/* pci_config.c: the header, the access path, helpers for capabilities */
void muser_pcicfg_init(struct muser_dev *dev);
void muser_pcicfg_reset(struct muser_dev *dev);
int muser_pcicfg_access(struct muser_dev *dev, void *buf, size_t count,
			uint64_t offset, bool is_write);
uint32_t muser_cfg_get(const struct muser_dev *dev, unsigned int off,
		       unsigned int size);
void muser_cfg_put(struct muser_dev *dev, unsigned int off, unsigned int size,
		   uint32_t val);
void muser_cfg_reg(struct muser_dev *dev, unsigned int off, unsigned int size,
		   uint32_t val, uint32_t wmask, uint32_t w1cmask);
int muser_reset(struct muser_dev *dev, enum muser_reset_reason reason);

/* caps.c: placement, chaining, dispatch to the capabilities */
struct muser_cap *muser_cap_add(struct muser_dev *dev, uint16_t id,
				size_t len, bool ext,
				const struct muser_cap_ops *ops);
void muser_caps_init(struct muser_dev *dev);
void muser_caps_reset(struct muser_dev *dev);
int muser_caps_written(struct muser_dev *dev, unsigned int off, size_t len);
void muser_caps_free(struct muser_dev *dev);

/* state.c */
int muser_state_attach(struct muser_dev *dev);
void muser_state_save(struct muser_dev *dev);
void muser_state_free(struct muser_dev *dev);

size_t muser_state_lib_size(void);
void muser_state_lib_export(const struct muser_dev *dev, void *buf);
int muser_state_lib_check(const struct muser_dev *dev, const void *buf);
void muser_state_lib_import(struct muser_dev *dev, const void *buf);
uint64_t muser_state_hash(const struct muser_dev *dev);

/* migration.c */
int muser_mig_access(struct muser_dev *dev, uint8_t *buf, size_t count,
		     uint64_t offset, bool is_write);
void muser_mig_reset(struct muser_dev *dev);
int muser_mig_recover(struct muser_dev *dev);
void muser_mig_free(struct muser_dev *dev);
void muser_mig_layout(const struct muser_dev *dev,
		      struct muser_device_info *info);

/* dma.c */
struct muser_dma_cache;
void muser_dma_revoked(struct muser_dev *dev, uint64_t iova, uint64_t size);
void muser_dma_free(struct muser_dev *dev);

/* irq.c */
int muser_irq_send(struct muser_dev *dev, unsigned int index,
		   unsigned int vector);
void muser_irq_deliver(struct muser_dev *dev, unsigned int index,
		       unsigned int vector);
void muser_irq_vmm_changed(struct muser_dev *dev);
void muser_irq_state_changed(struct muser_dev *dev, unsigned int index,
			     unsigned int changed);
void muser_irq_batch_begin(struct muser_dev *dev);
void muser_irq_batch_end(struct muser_dev *dev);
void muser_intx_reset(struct muser_dev *dev);
void muser_intx_written(struct muser_dev *dev);

/* msi.c */
bool muser_msi_hold(struct muser_dev *dev, unsigned int vector);
int muser_msi_state(const struct muser_dev *dev, unsigned int vector);

/* msix.c */
bool muser_msix_hold(struct muser_dev *dev, unsigned int vector);
int muser_msix_state(const struct muser_dev *dev, unsigned int vector);
bool muser_msix_trapped(const struct muser_dev *dev, int bar, uint64_t off,
			size_t *len);
void muser_msix_access(struct muser_dev *dev, int bar, uint8_t *buf,
		       size_t len, uint64_t off, bool is_write);

/* A region of the layout by its VFIO index, NULL if there is none. */
static inline const struct muser_region *
muser_layout_region(const struct muser_device_info *info, uint32_t index)
{
	if (index < MUSER_NUM_REGIONS)
		return &info->regions[index];
	if (index - MUSER_NUM_REGIONS < info->num_dev_regions)
		return &info->dev_regions[index - MUSER_NUM_REGIONS].region;
	return NULL;
}

/* region.c */
int muser_region_access(struct muser_dev *dev, unsigned int region,
			uint8_t *buf, size_t count, uint64_t offset,
			bool is_write);

/* request.c */
size_t muser_handle_requests(struct muser_dev *dev, uint8_t *in, size_t in_len,
			     uint8_t *out, size_t out_cap,
			     size_t *out_len, unsigned int *handled);
int muser_write_replies(struct muser_dev *dev, const uint8_t *buf, size_t len);

/* ring.c */
int muser_ring_setup(struct muser_dev *dev);
void muser_ring_free(struct muser_dev *dev);
bool muser_ring_up(const struct muser_dev *dev);
uint32_t muser_ring_kflags(const struct muser_dev *dev);
size_t muser_ring_take(struct muser_dev *dev, uint8_t *buf, size_t cap);
int muser_ring_answer(struct muser_dev *dev, uint8_t *out, size_t *len);

/* log.c */
#define muser_err(dev, ...)	muser_log(dev, LOG_ERR, __VA_ARGS__)
#define muser_warn(dev, ...)	muser_log(dev, LOG_WARNING, __VA_ARGS__)
#define muser_info(dev, ...)	muser_log(dev, LOG_INFO, __VA_ARGS__)
#define muser_dbg(dev, ...)	muser_log(dev, LOG_DEBUG, __VA_ARGS__)

#endif /* MUSER_PRIVATE_H */
