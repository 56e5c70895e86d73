/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmuser: emulate a PCI device in an ordinary process and serve it to an
 * unmodified VMM through muser.ko and VFIO.
 *
 * Overview
 *   dev = muser_dev_create(uuid, 0);       opens /dev/muser/UUID
 *   muser_pci_set_ids(dev, ...);           describe the device
 *   muser_setup_bar(dev, 2, ...);          declare BARs with callbacks
 *   muser_realize(dev);                    attach to the kernel
 *   muser_run(dev);                        serve requests until muser_stop()
 *   muser_dev_destroy(dev);
 *
 *   The library emulates the standard PCI configuration header (IDs, command
 *   and status registers, BAR sizing, interrupt line/pin), answers device
 *   resets and dispatches BAR accesses to the callbacks. A process with its
 *   own event loop polls muser_get_poll_fd() and calls muser_dispatch()
 *   instead of muser_run(); one process can serve many devices that way.
 *
 * Error convention (every function, and every callback)
 *   Functions returning int or ssize_t return a value >= 0 on success and -1
 *   with errno set on failure. Functions returning a pointer return NULL with
 *   errno set on failure. Callbacks do the same: on failure they return -1
 *   and set errno; that errno is what the VMM's access fails with (the
 *   reply's error field). A callback returning -1 with errno 0 or an errno
 *   outside 1..511 fails the access with EIO. A few functions cannot fail
 *   and say so (muser_dev_get_priv() may return NULL as a value).
 *
 * Threading
 *   A struct muser_dev is used from one thread at a time: the library takes
 *   no locks. Callbacks run in the thread that called muser_dispatch() or
 *   muser_run(). Different devices may be used from different threads.
 *   The one exception is muser_stop(), which may be called from any thread
 *   and from a signal handler.
 *
 * Restarting
 *   Closing the device (muser_dev_destroy() or process exit) detaches the
 *   emulator; the kernel keeps the device and queues requests again for the
 *   next emulator that attaches with the same layout. See muser_req_replayed().
 */
#ifndef MUSER_H
#define MUSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/muser.h>	/* the kernel ABI; VFIO_PCI_* indices */

#ifdef __cplusplus
extern "C" {
#endif

#define MUSER_EXPORT __attribute__((visibility("default")))

/* Size of the emulated PCI configuration space (conventional PCI). */
#define MUSER_CONFIG_SIZE	256

/* An emulated device. Opaque. */
struct muser_dev;

/**
 * muser_region_access_cb - a BAR or configuration space access.
 * @dev:      the device
 * @priv:     the pointer given when the callback was set
 * @buf:      for a read, fill it with @count bytes; for a write, the data
 * @count:    bytes accessed, 1..MUSER_MAX_DATA (4096)
 * @offset:   byte offset within the BAR (within config space for the
 *            config callback)
 * @is_write: true for a write
 *
 * VMM accesses to BARs are usually 1, 2, 4 or 8 bytes, naturally aligned,
 * but nothing guarantees it. For a read, @buf is zeroed and 8-byte aligned.
 *
 * Returns @count on success; -1 with errno set on failure (the VMM's access
 * fails with that errno). Any other value fails the access with EIO.
 */
typedef ssize_t (*muser_region_access_cb)(struct muser_dev *dev, void *priv,
					  void *buf, size_t count,
					  uint64_t offset, bool is_write);

/**
 * muser_reset_cb - the VMM reset the device (VFIO_DEVICE_RESET).
 *
 * Called after the library has put the configuration space back to its
 * power-on values. Put the device's own state back to power-on values.
 * Returns 0, or -1 with errno set (the VMM's reset fails with that errno).
 */
typedef int (*muser_reset_cb)(struct muser_dev *dev, void *priv);

/**
 * muser_log_cb - receives the library's log messages.
 * @level: a syslog(3) level: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG
 * @msg:   the message, without a trailing newline
 */
typedef void (*muser_log_cb)(struct muser_dev *dev, int level, const char *msg);

/* ---------------------------------------------------------------------- */
/* Creation and destruction                                                */

/**
 * muser_dev_create - open the control node of a mediated device.
 * @uuid:  the mdev's UUID (36 characters, e.g. from uuidgen); the control
 *         node is MUSER_DEV_DIR "/" @uuid
 * @flags: must be 0
 *
 * The device is not visible to the VMM until muser_realize() succeeds.
 *
 * Returns the device, or NULL with errno set: EINVAL (@uuid is not a UUID or
 * @flags is not 0), ENOMEM, or an error of open(2) (ENOENT: no such mdev).
 */
MUSER_EXPORT struct muser_dev *muser_dev_create(const char *uuid, int flags);

/**
 * muser_dev_create_path - like muser_dev_create(), for a control node at
 * any path (for tests and unusual setups).
 * @path:  the control node
 * @flags: must be 0
 *
 * Returns the device, or NULL with errno set as for muser_dev_create().
 */
MUSER_EXPORT struct muser_dev *muser_dev_create_path(const char *path,
						     int flags);

/**
 * muser_dev_destroy - close the control node and free the device.
 * @dev: the device, or NULL (does nothing)
 *
 * Closing detaches the emulator. muser_dispatch() answers every request it
 * reads, so normally none is left unanswered; any that is (after a write
 * error) is delivered again, flagged replayed, to the next emulator. The
 * VMM keeps the device; its accesses wait for the next emulator (or time
 * out). Keeps errno.
 */
MUSER_EXPORT void muser_dev_destroy(struct muser_dev *dev);

/**
 * muser_dev_set_priv - store a pointer for the caller's use.
 * Returns 0 (cannot fail).
 */
MUSER_EXPORT int muser_dev_set_priv(struct muser_dev *dev, void *priv);

/**
 * muser_dev_get_priv - the pointer stored by muser_dev_set_priv(), or NULL.
 * Never fails; errno is left alone.
 */
MUSER_EXPORT void *muser_dev_get_priv(const struct muser_dev *dev);

/* ---------------------------------------------------------------------- */
/* Logging                                                                 */

/**
 * muser_set_log - choose where log messages go and how many.
 * @cb:    a handler, or NULL for the default (stderr, prefixed with
 *         "muser UUID: ")
 * @level: the most verbose syslog level passed on (default LOG_WARNING);
 *         LOG_DEBUG shows every request
 *
 * Returns 0, or -1 with errno EINVAL if @level is not 0..7.
 */
MUSER_EXPORT int muser_set_log(struct muser_dev *dev, muser_log_cb cb,
			       int level);

/**
 * muser_log - log through the device's handler (format as printf(3)).
 * Messages more verbose than the device's level are dropped. Never fails.
 */
MUSER_EXPORT void muser_log(struct muser_dev *dev, int level,
			    const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------------- */
/* Describing the device: before muser_realize(); afterwards EBUSY         */

/**
 * muser_pci_set_ids - set the vendor, device and subsystem IDs.
 * @vendor:        PCI vendor ID; neither 0x0000 nor 0xffff
 * @device:        PCI device ID
 * @subsys_vendor: subsystem vendor ID
 * @subsys_id:     subsystem ID
 *
 * All four are read-only in config space. Setting them is mandatory.
 * Avoid vendor IDs the VMM applies quirks to (for QEMU: ATI, NVIDIA,
 * Realtek, Intel).
 * Returns 0, or -1 with errno EINVAL (bad vendor) or EBUSY (realized).
 */
MUSER_EXPORT int muser_pci_set_ids(struct muser_dev *dev, uint16_t vendor,
				   uint16_t device, uint16_t subsys_vendor,
				   uint16_t subsys_id);

/**
 * muser_pci_set_class - set the 24-bit class code (base class << 16 |
 * subclass << 8 | programming interface), e.g. 0xff0000 (unassigned).
 * Default 0. Returns 0, or -1 with errno EINVAL (above 0xffffff) or EBUSY.
 */
MUSER_EXPORT int muser_pci_set_class(struct muser_dev *dev,
				     uint32_t class_code);

/**
 * muser_pci_set_revision - set the revision ID (default 0).
 * Returns 0, or -1 with errno EBUSY.
 */
MUSER_EXPORT int muser_pci_set_revision(struct muser_dev *dev,
					uint8_t revision);

/**
 * muser_pci_set_irq_pin - set the interrupt pin.
 * @pin: 0 (no INTx, the default) or 1..4 for INTA..INTD
 *
 * A nonzero pin gives the device one INTx vector that muser_irq_trigger()
 * raises with VFIO_PCI_INTX_IRQ_INDEX.
 * Returns 0, or -1 with errno EINVAL (@pin above 4) or EBUSY.
 */
MUSER_EXPORT int muser_pci_set_irq_pin(struct muser_dev *dev, uint8_t pin);

/* muser_setup_bar() flags: exactly one of MEM32, MEM64, IO, plus options. */
#define MUSER_BAR_MEM32		(1u << 0)	/* 32-bit memory BAR */
#define MUSER_BAR_MEM64		(1u << 1)	/* 64-bit memory BAR, uses bar+1 too */
#define MUSER_BAR_IO		(1u << 2)	/* I/O port BAR */
#define MUSER_BAR_PREFETCH	(1u << 3)	/* prefetchable (memory BARs only) */

/**
 * muser_setup_bar - declare a base address register and its region.
 * @bar:   0..5. A 64-bit BAR takes @bar and @bar + 1 (so @bar is 0..4).
 * @size:  a power of two: I/O 4..256 bytes, memory 16 bytes and up to
 *         2 GiB (MEM32) or 2^63 (MEM64)
 * @flags: MUSER_BAR_*
 * @cb:    called for every VMM access to the BAR; NULL makes the BAR read
 *         as zeros and ignore writes
 * @priv:  passed to @cb
 *
 * The library emulates the BAR register (sizing with all ones, the type
 * bits). The offsets given to @cb are relative to the BAR.
 *
 * Returns 0, or -1 with errno set: EINVAL (bad index, size or flags),
 * EEXIST (the BAR, or the upper half of a 64-bit BAR, is already declared),
 * EBUSY (realized).
 */
MUSER_EXPORT int muser_setup_bar(struct muser_dev *dev, int bar,
				 uint64_t size, unsigned int flags,
				 muser_region_access_cb cb, void *priv);

/**
 * muser_set_config_cb - handle the device-specific part of config space.
 * @cb:   called for accesses to offsets 0x40..0xff (the offsets passed are
 *        config space offsets); NULL (the default) makes those bytes read
 *        as zero and ignore writes
 * @priv: passed to @cb
 *
 * The standard header (0x00..0x3f) is always emulated by the library. An
 * access spanning both parts is split: @cb sees only its part.
 * Returns 0, or -1 with errno EBUSY.
 */
MUSER_EXPORT int muser_set_config_cb(struct muser_dev *dev,
				     muser_region_access_cb cb, void *priv);

/**
 * muser_set_reset_cb - be told when the VMM resets the device.
 * @cb:   see muser_reset_cb; NULL (the default) for none
 * @priv: passed to @cb
 * Returns 0, or -1 with errno EBUSY.
 */
MUSER_EXPORT int muser_set_reset_cb(struct muser_dev *dev, muser_reset_cb cb,
				    void *priv);

/**
 * muser_realize - attach to the kernel with the layout described so far.
 *
 * Builds the power-on configuration space and sends MUSER_IOC_ATTACH. From
 * then on the VMM can open the device and requests arrive on the poll fd.
 *
 * Returns 0, or -1 with errno set: EINVAL (no IDs set, or the kernel refused
 * the layout, e.g. it differs from the one a VMM is using), EBUSY (already
 * realized, or another emulator is attached), or an ioctl(2) error.
 */
MUSER_EXPORT int muser_realize(struct muser_dev *dev);

/* ---------------------------------------------------------------------- */
/* Serving requests                                                        */

/**
 * muser_get_poll_fd - the file descriptor to watch for POLLIN.
 *
 * Readable when requests are pending: then call muser_dispatch(). POLLERR
 * (with POLLHUP once the mdev is removed) means the emulator is no longer
 * attached; muser_dispatch() then fails with ENOTCONN or ENODEV. The fd
 * is always writable: do not poll for POLLOUT. It stays valid until
 * muser_dev_destroy() and is non-blocking. Do not read or write it.
 * Returns the fd (>= 0). Never fails.
 */
MUSER_EXPORT int muser_get_poll_fd(const struct muser_dev *dev);

/**
 * muser_dispatch - answer the requests that are pending, without blocking.
 *
 * Reads requests, calls the callbacks and writes every reply. Requests the
 * VMM gave up on meanwhile (timed out or cancelled) are skipped silently.
 * When very many requests are pending it may return before all are
 * handled; the poll fd then stays readable.
 *
 * Returns the number of requests handled (0 if none was pending), or -1
 * with errno set: EINVAL (not realized, or the kernel refused a reply: the
 * others were still written), or the error of read(2)/write(2) on the
 * control node (e.g. ENODEV when the mdev was removed).
 */
MUSER_EXPORT int muser_dispatch(struct muser_dev *dev);

/**
 * muser_run - serve requests until muser_stop() or an error.
 *
 * Blocks in poll(2) and calls muser_dispatch(). Signals interrupting the
 * wait are ignored unless their handler calls muser_stop(). Can be called
 * again after it returned.
 *
 * Returns 0 after muser_stop(), or -1 with errno set: as muser_dispatch()
 * (ENODEV: the mdev was removed; ENOTCONN: detached), ENODEV when the
 * control node otherwise reports POLLHUP/POLLERR, or a poll(2) error.
 */
MUSER_EXPORT int muser_run(struct muser_dev *dev);

/**
 * muser_stop - make muser_run() return 0.
 *
 * Async-signal-safe and callable from any thread and from callbacks. If
 * muser_run() is not running, the next call returns at once.
 * Returns 0, or -1 with errno set by write(2) (not expected).
 */
MUSER_EXPORT int muser_stop(struct muser_dev *dev);

/**
 * muser_req_replayed - whether the request being handled is replayed.
 *
 * Call from a callback. True when the kernel delivered this request before
 * to an emulator that detached without answering it (it crashed or was
 * restarted): the access may already have had its side effects. The VMM
 * still waits for the answer. False outside callbacks.
 */
MUSER_EXPORT bool muser_req_replayed(const struct muser_dev *dev);

/* ---------------------------------------------------------------------- */
/* Interrupts                                                              */

/**
 * muser_irq_trigger - raise an interrupt vector.
 * @index:  VFIO_PCI_INTX_IRQ_INDEX (the only index with vectors today)
 * @vector: 0 for INTx
 *
 * INTx is edge-signalled to the VMM, which masks it until the guest's
 * handler acknowledges it (VFIO's automasked INTx). While the guest has set
 * INTx Disable in the command register, the trigger is dropped and 0 is
 * returned.
 *
 * Returns 0, or -1 with errno set: EINVAL (not realized, or an index or
 * vector the device does not have), ENOENT (the VMM has not enabled the
 * vector; usually harmless), or an ioctl(2) error.
 */
MUSER_EXPORT int muser_irq_trigger(struct muser_dev *dev, unsigned int index,
				   unsigned int vector);

#ifdef __cplusplus
}
#endif

#endif /* MUSER_H */
