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
/* read() buffer: many requests per system call. */
#define MUSER_IN_BUF_SIZE	(64 * 1024)
/* Reply buffer: at least one reply of the largest size. */
#define MUSER_OUT_BUF_SIZE	(64 * 1024)
/* muser_dispatch() reads at most this many batches per call. */
#define MUSER_DISPATCH_ROUNDS	16

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
};

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
 * Capabilities will add entries here and claim bytes beyond the header.
 */
struct muser_pcicfg {
	uint8_t cfg[MUSER_CONFIG_SIZE];
	uint8_t wmask[MUSER_CONFIG_SIZE];
	uint8_t w1cmask[MUSER_CONFIG_SIZE];
	uint8_t init[MUSER_CONFIG_SIZE];
};

struct muser_dev {
	int fd;				/* control node, O_NONBLOCK */
	int stop_fd;			/* eventfd written by muser_stop() */
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

	muser_log_cb log_cb;
	int log_level;
	void *priv;

	struct muser_pcicfg pcicfg;
	struct muser_device_info info;	/* as attached */
	uint16_t cur_req_flags;		/* MUSER_REQ_F_* of the request in hand */

	uint8_t *in_buf;		/* MUSER_IN_BUF_SIZE */
	uint8_t *out_buf;		/* MUSER_OUT_BUF_SIZE */
};

/* dev.c */
struct muser_dev *muser_dev_alloc(int fd, const struct muser_io_ops *io,
				  void *io_priv, const char *name);

/* layout.c */
void muser_build_device_info(const struct muser_dev *dev,
			     struct muser_device_info *info);

/* pci_config.c */
void muser_pcicfg_init(struct muser_dev *dev);
void muser_pcicfg_reset(struct muser_dev *dev);
int muser_pcicfg_access(struct muser_dev *dev, void *buf, size_t count,
			uint64_t offset, bool is_write);
uint16_t muser_pcicfg_read16(const struct muser_dev *dev, unsigned int off);

/* request.c */
size_t muser_handle_requests(struct muser_dev *dev, uint8_t *in, size_t in_len,
			     uint8_t *out, size_t out_cap,
			     size_t *out_len, unsigned int *handled);
int muser_write_replies(struct muser_dev *dev, const uint8_t *buf, size_t len);

/* log.c */
#define muser_err(dev, ...)	muser_log(dev, LOG_ERR, __VA_ARGS__)
#define muser_warn(dev, ...)	muser_log(dev, LOG_WARNING, __VA_ARGS__)
#define muser_info(dev, ...)	muser_log(dev, LOG_INFO, __VA_ARGS__)
#define muser_dbg(dev, ...)	muser_log(dev, LOG_DEBUG, __VA_ARGS__)

#endif /* MUSER_PRIVATE_H */
