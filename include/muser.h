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
 *   and status registers, BAR and ROM sizing, interrupt line/pin) and the
 *   capabilities added with muser_add_cap_*() and muser_add_ext_cap_*():
 *   it places them, chains them and implements their registers (power
 *   management, MSI and MSI-X with their masks and pending bits, PCI
 *   Express with function level reset, device serial number,
 *   vendor-specific). It answers device resets, emulates the MSI-X table
 *   and PBA inside their BAR, and dispatches everything else to the
 *   device's callbacks: BAR, ROM and VGA accesses, and the config space
 *   bytes no header register or capability owns (muser_set_config_cb()).
 *   A process with its own event loop polls muser_get_poll_fd() and calls
 *   muser_dispatch() instead of muser_run(); one process can serve many
 *   devices that way.
 *
 *   A PCI Express device, for example:
 *     muser_setup_bar(dev, 0, 0x4000, MUSER_BAR_MEM64, bar0_cb, NULL);
 *     muser_add_cap_pm(dev, 0);
 *     muser_add_cap_msix(dev, 16, 0, 0x2000, 0, 0x3000);
 *     muser_add_cap_pcie(dev, MUSER_PCIE_ENDPOINT, MUSER_PCIE_FLR);
 *     muser_add_ext_cap_dsn(dev, 0x0123456789abcdefull);
 *   gives a 4 KiB config space with the chain 0x40 (PM) -> 0x48 (MSI-X) ->
 *   0x54 (PCIe) and 0x100 (DSN), MSI-X interrupts whose table and PBA the
 *   library serves from BAR0, and resets reported with their reason.
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
 * Names
 *   muser_setup_*() declares a region (BAR, ROM, VGA), muser_add_*cap_*() a
 *   capability, muser_set_*_cb() a callback. They describe the device, so
 *   all of them fail with EBUSY once it is realized, as muser_set_config_size()
 *   and muser_set_ring() do. muser_set_log() and muser_dev_set_priv() work
 *   at any time.
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

/* Sizes of the emulated PCI configuration space: conventional, PCIe. */
#define MUSER_CONFIG_SIZE	256
#define MUSER_CONFIG_SIZE_PCIE	4096

/* An emulated device. Opaque. */
struct muser_dev;

/**
 * muser_region_access_cb - a BAR, ROM, VGA or configuration space access.
 * @dev:      the device
 * @priv:     the pointer given when the callback was set
 * @buf:      for a read, fill it with @count bytes; for a write, the data
 * @count:    bytes accessed, 1..MUSER_MAX_DATA (4096)
 * @offset:   byte offset within the region (the BAR, the ROM, the VGA
 *            region; config space for the config callback)
 * @is_write: true for a write
 *
 * Splitting and alignment: the library passes each access as the VMM made
 * it: any length from 1 to 4096 at any offset within the region (VMMs make
 * BAR accesses of 1, 2, 4 or 8 bytes, naturally aligned, but nothing
 * guarantees it; muser.ko splits larger ones into pieces of at most 4096
 * bytes). Two exceptions:
 *   - bytes of a BAR holding the MSI-X table or PBA (muser_add_cap_msix())
 *     are served by the library; the rest of such an access reaches @cb as
 *     one call per contiguous part, in ascending order, with offsets still
 *     relative to the BAR;
 *   - config space is split between the library and the config callback
 *     the same way (see muser_set_config_cb()).
 * For a read, @buf is zeroed and 8-byte aligned.
 *
 * Returns @count on success; -1 with errno set on failure (the VMM's access
 * fails with that errno). Any other value fails the access with EIO.
 */
typedef ssize_t (*muser_region_access_cb)(struct muser_dev *dev, void *priv,
					  void *buf, size_t count,
					  uint64_t offset, bool is_write);

/* Why the device is reset: the argument of muser_reset_cb. */
enum muser_reset_reason {
	MUSER_RESET_VFIO = 0,	/* the VMM's VFIO_DEVICE_RESET */
	MUSER_RESET_FLR = 1,	/* the guest's function level reset (PCIe) */
	MUSER_RESET_VMM_CLOSE = 2, /* the VMM closed the device (VM gone) */
};

/**
 * muser_reset_cb - the device is being reset.
 * @reason: MUSER_RESET_VFIO (the VMM, e.g. at VM start and reboot),
 *          MUSER_RESET_FLR (the guest wrote Initiate Function Level Reset
 *          in the PCI Express capability's Device Control register) or
 *          MUSER_RESET_VMM_CLOSE (the last VMM closed the device: its
 *          interrupts and guest memory are gone; a failure is only logged)
 *
 * Called after the library has put the configuration space and its own
 * interrupt state (MSI-X table, pending bits) back to power-on values.
 * Put the device's own state back to power-on values.
 * Returns 0, or -1 with errno set: the VMM's reset, or for an FLR the
 * guest's config write, fails with that errno.
 */
typedef int (*muser_reset_cb)(struct muser_dev *dev, void *priv,
			      enum muser_reset_reason reason);

/* muser_irq_state_cb @changed bits: what the guest changed. */
#define MUSER_IRQ_CHANGED_ENABLE (1u << 0)	/* MSI/MSI-X Enable, MSI Multiple
						 * Message Enable, INTx Disable */
#define MUSER_IRQ_CHANGED_MASK	(1u << 1)	/* a vector's or the function's mask */
#define MUSER_IRQ_CHANGED_VMM	(1u << 2)	/* the VMM's VFIO interrupt setup
						 * (SET_IRQS): see
						 * muser_irq_vmm_state() */

/**
 * muser_irq_state_cb - the interrupt configuration changed.
 * @index:   VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX or
 *           VFIO_PCI_MSIX_IRQ_INDEX
 * @changed: MUSER_IRQ_CHANGED_* bits
 *
 * Called after the change took effect (and after any pending vector it
 * unmasked was sent); muser_irq_guest_state() tells the new state. Not
 * called for resets: the reset callback covers those.
 */
typedef void (*muser_irq_state_cb)(struct muser_dev *dev, void *priv,
				   unsigned int index, unsigned int changed);

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
/*
 * Memory BARs only: the VMM's writes are posted (MUSER_REGION_F_POSTED_WRITES
 * in linux/muser.h): its pwrite() returns before the callback runs, which
 * sees them in order with every other access. Only where no guest reads
 * back, right after a write, something that write changes in device memory
 * (the read would not wait); a doorbell is the usual case.
 */
#define MUSER_BAR_POSTED_WRITES	(1u << 4)

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
 * muser_setup_rom - declare an expansion ROM.
 * @size: a power of two from 2 KiB to 16 MiB
 * @cb:   called for reads of the ROM region (@is_write is always false: the
 *        region is read-only); NULL reads as zeros
 * @priv: passed to @cb
 *
 * The library emulates the expansion ROM base address register at 0x30:
 * sizing with all ones, and the ROM Enable bit. The VMM reads the ROM's
 * contents through the region, whatever the register holds.
 * Returns 0, or -1 with errno set: EINVAL (bad size), EEXIST (already
 * declared), EBUSY (realized).
 */
MUSER_EXPORT int muser_setup_rom(struct muser_dev *dev, uint64_t size,
				 muser_region_access_cb cb, void *priv);

/**
 * muser_setup_vga - declare the legacy VGA ranges (region
 * VFIO_PCI_VGA_REGION_INDEX, 0xc0000 bytes).
 * @cb:   called for accesses to the VGA memory (offsets 0xa0000..0xbffff)
 *        and I/O ports (offsets 0x3b0..0x3bb and 0x3c0..0x3df); the offset
 *        is the legacy address. An access not wholly inside one of those
 *        ranges fails with EINVAL without reaching @cb.
 * @priv: passed to @cb
 *
 * For VGA-class devices; QEMU uses the region with -device vfio-pci,x-vga=on.
 * Returns 0, or -1 with errno set: EINVAL (@cb is NULL), EEXIST, EBUSY.
 */
MUSER_EXPORT int muser_setup_vga(struct muser_dev *dev,
				 muser_region_access_cb cb, void *priv);

/**
 * muser_set_config_size - choose the size of config space.
 * @size: MUSER_CONFIG_SIZE (256) or MUSER_CONFIG_SIZE_PCIE (4096)
 *
 * Without this call the size is 4096 if a PCI Express or an extended
 * capability was added, else 256. QEMU treats a device whose config space
 * is 256 bytes as conventional PCI (it hides the PCI Express capability).
 * Returns 0, or -1 with errno set: EINVAL (another size, or 256 while
 * extended capabilities exist), EBUSY (realized).
 */
MUSER_EXPORT int muser_set_config_size(struct muser_dev *dev,
				       unsigned int size);

/**
 * muser_set_config_cb - handle the device-specific part of config space.
 * @cb:   called for the config space bytes the library does not emulate
 *        (the offsets passed are config space offsets); NULL (the default)
 *        makes those bytes read as zero and ignore writes
 * @priv: passed to @cb
 *
 * The library emulates: the standard header (0x00..0x3f); every capability
 * it added, from its offset for its length (only the 3-byte header of a
 * vendor-specific capability added with MUSER_CAP_CB, the 8-byte header of
 * an extended one); and with 4 KiB config space the first extended
 * capability header (0x100..0x103), which reads 0 without extended
 * capabilities. Everything else goes to @cb: gaps and the bytes after the
 * last capability up to 0xff, the rest of extended config space, and the
 * bodies of MUSER_CAP_CB capabilities. An access spanning both parts is
 * split: @cb sees one call per contiguous part of its own, in order.
 * Returns 0, or -1 with errno EBUSY.
 */
MUSER_EXPORT int muser_set_config_cb(struct muser_dev *dev,
				     muser_region_access_cb cb, void *priv);

/**
 * muser_set_reset_cb - be told when the device is reset (by the VMM, or by
 * the guest's function level reset).
 * @cb:   see muser_reset_cb; NULL (the default) for none
 * @priv: passed to @cb
 * Returns 0, or -1 with errno EBUSY.
 */
MUSER_EXPORT int muser_set_reset_cb(struct muser_dev *dev, muser_reset_cb cb,
				    void *priv);

/**
 * muser_set_irq_state_cb - be told when the guest changes the interrupt
 * configuration (see muser_irq_state_cb).
 * @cb:   NULL (the default) for none
 * @priv: passed to @cb
 * Returns 0, or -1 with errno EBUSY.
 */
MUSER_EXPORT int muser_set_irq_state_cb(struct muser_dev *dev,
					muser_irq_state_cb cb, void *priv);

/* ---------------------------------------------------------------------- */
/* Capabilities: before muser_realize(); afterwards EBUSY                  */
/*
 * Standard capabilities are placed in the order they are added, each at
 * the next dword-aligned offset from 0x40; the library chains them from the
 * Capabilities Pointer (0x34) and sets the Capabilities List bit in the
 * status register. Extended capabilities are chained the same way from
 * 0x100 in 4 KiB config space. ID and next pointer bytes are read-only.
 * Each call returns the capability's config space offset (> 0), or -1 with
 * errno set: EINVAL (bad argument), EEXIST (this kind of capability exists
 * already; vendor-specific ones may repeat), ENOSPC (no room left below
 * 0x100, or 0x1000, or more than 32 capabilities), EBUSY (realized).
 */

/* muser_add_cap_vendor(), muser_add_ext_cap_vendor() flags */
#define MUSER_CAP_CB		(1u << 0)	/* the body goes to the config callback */

/**
 * muser_add_cap_vendor - a vendor-specific capability (ID 0x09).
 * @data:  the body: the bytes after the ID, next pointer and length bytes;
 *         read-only, copied. May be NULL with MUSER_CAP_CB.
 * @len:   body bytes, at most 189 (the length byte holds @len + 3)
 * @flags: 0, or MUSER_CAP_CB to have the config callback serve the body
 *         (then @data is ignored)
 */
MUSER_EXPORT int muser_add_cap_vendor(struct muser_dev *dev, const void *data,
				      size_t len, unsigned int flags);

/* muser_add_cap_pm() flags: optional power states */
#define MUSER_PM_D1		(1u << 0)
#define MUSER_PM_D2		(1u << 1)

/**
 * muser_add_cap_pm - the power management capability (ID 0x01, version 3).
 * @flags: MUSER_PM_D1, MUSER_PM_D2: also support those states
 *
 * PowerState in PMCSR is read-write among D0, D3hot and the states
 * @flags adds; a write of an unsupported state is ignored, as the spec
 * says. No_Soft_Reset is set: going from D3hot to D0 does not reset the
 * device (and QEMU then resets it with VFIO_DEVICE_RESET). The library
 * does not stop BAR accesses in D3hot; the device may check the state with
 * muser_config_read(). No PME support.
 */
MUSER_EXPORT int muser_add_cap_pm(struct muser_dev *dev, unsigned int flags);

/* muser_add_cap_msi() flags */
#define MUSER_MSI_64BIT		(1u << 0)	/* 64-bit message address */
#define MUSER_MSI_MASKABLE	(1u << 1)	/* per-vector masking */

/**
 * muser_add_cap_msi - the MSI capability (ID 0x05) and its interrupts.
 * @nvec:  vectors: 1, 2, 4, 8, 16 or 32 (Multiple Message Capable)
 * @flags: MUSER_MSI_*
 *
 * The guest may write MSI Enable, Multiple Message Enable (values above
 * @nvec are lowered to it), the message address and data, and with
 * MUSER_MSI_MASKABLE the Mask Bits of the @nvec vectors. Pending Bits are
 * read-only to the guest: muser_irq_trigger() sets one instead of sending
 * a masked vector, and the library sends it and clears the bit when the
 * guest unmasks the vector. The device gets @nvec MSI vectors
 * (VFIO_PCI_MSI_IRQ_INDEX) in the layout.
 */
MUSER_EXPORT int muser_add_cap_msi(struct muser_dev *dev, unsigned int nvec,
				   unsigned int flags);

/**
 * muser_add_cap_msix - the MSI-X capability (ID 0x11) and its interrupts.
 * @nvec:         vectors, 1..2048
 * @table_bar:    BAR holding the table (16 bytes per vector)
 * @table_offset: its offset in that BAR, a multiple of 8
 * @pba_bar:      BAR holding the Pending Bit Array (8 bytes per 64 vectors)
 * @pba_offset:   its offset in that BAR, a multiple of 8
 *
 * Declare the BARs first: they must be memory BARs large enough for the
 * table and the PBA, which must not overlap. Keeping each in its own 4 KiB
 * page away from the device's registers lets the VMM map the rest.
 *
 * The guest may write MSI-X Enable and Function Mask. The library serves
 * the table and the PBA itself (the BAR callback never sees those bytes):
 * each entry's address, data and Mask bit are read-write (every vector
 * masked at reset), the PBA is read-only. muser_irq_trigger() sets the
 * pending bit instead of sending a vector while the function is masked or
 * the vector is; the library sends it and clears the bit on unmask.
 * QEMU emulates the table itself and never forwards table accesses, so the
 * library applies the vectors' Mask bits only once the VMM has written the
 * table since the last reset; the Function Mask always applies. The device
 * gets @nvec MSI-X vectors (VFIO_PCI_MSIX_IRQ_INDEX) in the layout.
 */
MUSER_EXPORT int muser_add_cap_msix(struct muser_dev *dev, unsigned int nvec,
				    int table_bar, uint64_t table_offset,
				    int pba_bar, uint64_t pba_offset);

/* muser_add_cap_pcie() device/port types */
#define MUSER_PCIE_ENDPOINT		0x0	/* PCI Express Endpoint */
#define MUSER_PCIE_LEGACY_ENDPOINT	0x1	/* Legacy PCI Express Endpoint */
#define MUSER_PCIE_RC_ENDPOINT		0x9	/* Root Complex Integrated Endpoint */

/* muser_add_cap_pcie() flags */
#define MUSER_PCIE_FLR		(1u << 0)	/* function level reset */

/**
 * muser_add_cap_pcie - the PCI Express capability (ID 0x10, version 2).
 * @type:  MUSER_PCIE_ENDPOINT, MUSER_PCIE_LEGACY_ENDPOINT or
 *         MUSER_PCIE_RC_ENDPOINT
 * @flags: MUSER_PCIE_FLR: advertise function level reset
 *
 * A 60-byte version 2 capability with plausible values: 128-byte max
 * payload, role-based error reporting, a 2.5 GT/s x1 link that is up (no
 * link registers for a root complex integrated endpoint). Device Control's
 * error reporting enables, relaxed ordering, no snoop, max payload and max
 * read request sizes are read-write; Device Status error bits are
 * write-1-to-clear; Link Control's ASPM, common clock and extended synch
 * bits are read-write. With MUSER_PCIE_FLR, writing 1 to Initiate Function
 * Level Reset (which always reads 0) resets config space and the
 * interrupt state to power-on values and calls the reset callback with
 * MUSER_RESET_FLR. Makes config space 4 KiB (see muser_set_config_size())
 * and gives the device the error interrupt (VFIO_PCI_ERR_IRQ_INDEX, one
 * vector) so QEMU can set up error recovery.
 */
MUSER_EXPORT int muser_add_cap_pcie(struct muser_dev *dev, unsigned int type,
				    unsigned int flags);

/**
 * muser_add_ext_cap_dsn - the Device Serial Number extended capability
 * (ID 0x0003, version 1): a read-only 64-bit @serial.
 * Makes config space 4 KiB; EINVAL if it was set to 256 bytes.
 */
MUSER_EXPORT int muser_add_ext_cap_dsn(struct muser_dev *dev,
				       uint64_t serial);

/**
 * muser_add_ext_cap_vendor - a Vendor-Specific Extended Capability
 * (ID 0x000b, version 1).
 * @vsec_id:  the VSEC ID, defined by the vendor in the vendor ID
 * @vsec_rev: the VSEC revision, 0..15
 * @data:     the body after the 8-byte header; read-only, copied. May be
 *            NULL with MUSER_CAP_CB.
 * @len:      body bytes; the VSEC Length field holds @len + 8 (12 bits)
 * @flags:    0, or MUSER_CAP_CB to have the config callback serve the body
 *
 * Makes config space 4 KiB; EINVAL if it was set to 256 bytes.
 */
MUSER_EXPORT int muser_add_ext_cap_vendor(struct muser_dev *dev,
					  uint16_t vsec_id, uint8_t vsec_rev,
					  const void *data, size_t len,
					  unsigned int flags);

/**
 * muser_irq_vmm_state - the VMM's interrupt setup for one index, as muser.ko
 * holds it: which vectors have an eventfd (QEMU masks an MSI-X vector by
 * taking its eventfd away) and whether the VMM masked INTx.
 * @dev:   a realized device
 * @index: VFIO_PCI_*_IRQ_INDEX
 * @state: filled in (struct muser_irq_state of <linux/muser.h>)
 *
 * The irq-state callback is called with MUSER_IRQ_CHANGED_VMM whenever
 * this may have changed. Returns 0, or -1 with errno EINVAL (bad index).
 */
MUSER_EXPORT int muser_irq_vmm_state(struct muser_dev *dev, unsigned int index,
				     struct muser_irq_state *state);

/* ---------------------------------------------------------------------- */
/* Device memory                                                           */

/**
 * muser_setup_bar_mmap - back part of a BAR with device memory.
 * @dev:    the device, before muser_realize()
 * @bar:    a memory BAR declared with muser_setup_bar()
 * @offset: page-aligned offset in the BAR
 * @size:   page-aligned size
 *
 * muser.ko allocates the pages (zeroed) and keeps them for the life of the
 * device, across emulator restarts. The VMM maps them (the region gets a
 * sparse mmap capability) and so does this process (muser_bar_map()); VMM
 * accesses there never reach the BAR callback. Use it for what a device
 * polls, such as doorbells. Up to MUSER_MAX_MMAP_AREAS areas.
 *
 * Returns 0, or -1 with errno: EINVAL (not a memory BAR, not page-aligned,
 * outside the BAR, over the MSI-X table or PBA), EEXIST (overlaps another
 * area), ENOSPC (too many areas), EBUSY (already realized).
 */
MUSER_EXPORT int muser_setup_bar_mmap(struct muser_dev *dev, int bar,
				      uint64_t offset, uint64_t size);

/**
 * muser_bar_map - map device memory of a BAR into this process.
 * @dev:    a realized device
 * @bar:    the BAR
 * @offset: page-aligned offset of a range inside one muser_setup_bar_mmap()
 *          area
 * @size:   bytes to map, within that area
 *
 * Returns the mapping (release it with munmap(2)), or NULL with errno:
 * EINVAL (not realized, not device memory), or what mmap(2) sets.
 */
MUSER_EXPORT void *muser_bar_map(struct muser_dev *dev, int bar,
				 uint64_t offset, size_t size);

/* ---------------------------------------------------------------------- */
/* Attaching                                                               */

/**
 * muser_realize - attach to the kernel with the layout described so far.
 *
 * Builds the power-on configuration space and sends MUSER_IOC_ATTACH, then
 * sets up the request ring (muser_set_ring()) if the kernel has one. From
 * then on the VMM can open the device and requests arrive on the poll fd.
 *
 * Returns 0, or -1 with errno set: EINVAL (no IDs set, or the kernel refused
 * the layout, e.g. it differs from the one a VMM is using), EBUSY (already
 * realized, or another emulator is attached), EIO (the kernel set up a
 * request ring whose layout makes no sense), or an ioctl(2) or mmap(2)
 * error.
 */
MUSER_EXPORT int muser_realize(struct muser_dev *dev);

/* ---------------------------------------------------------------------- */
/* Surviving restarts                                                      */

/*
 * muser.ko keeps a state area per device (MUSER_STATE_SIZE bytes of
 * <linux/muser.h>) that outlives emulator processes. The library keeps its
 * own state there (config space, MSI-X table and pending bits, held
 * interrupts) and gives the device the rest. When an emulator attaches to
 * a device whose state area holds the library's state for the same device
 * description, muser_realize() recovers it instead of starting from power-on
 * values: the guest sees no change. Requests the previous emulator had read
 * but not answered are delivered again (muser_req_replayed()).
 */

/**
 * muser_takeover - muser_realize() in place of a running emulator of the
 * same device (an upgrade without a gap).
 *
 * The running emulator finishes the requests it has already read; this
 * one gets everything after, and recovers the state the other one saved
 * (muser_recovered(), the recover callback). The call returns once the
 * other emulator has answered what it held (at most the module parameter
 * timeout_ms; what it leaves is delivered again to this one). The old
 * emulator's muser_dispatch() and muser_run() then fail with ENOTCONN: it
 * should stop touching the device and exit. Without a running emulator
 * this is muser_realize().
 * Returns 0, or -1 with errno as muser_realize() (EBUSY: the running
 * emulator describes a different device).
 */
MUSER_EXPORT int muser_takeover(struct muser_dev *dev);

/**
 * muser_recover_cb - muser_realize() recovered the state of a previous
 * emulator of this device.
 *
 * Rebuild what the device keeps outside its state area (open files,
 * threads, mappings of guest memory) from what it kept in it. Called once,
 * at the end of muser_realize(), before any request is served.
 * Returns 0, or -1 with errno set: muser_realize() then fails with it.
 */
typedef int (*muser_recover_cb)(struct muser_dev *dev, void *priv);

/**
 * muser_set_recover_cb - be told when state is recovered.
 * Call before muser_realize(). Returns 0, or -1 with errno EBUSY (already
 * realized).
 */
MUSER_EXPORT int muser_set_recover_cb(struct muser_dev *dev,
				      muser_recover_cb cb, void *priv);

/**
 * muser_state - the device's part of the state area.
 * @size: receives its size in bytes (nonzero)
 *
 * Zeroed for a new device, or when the previous emulator described a
 * different device; otherwise it holds what the previous emulator left.
 * Keep there what the device needs to carry on after a crash (registers,
 * queue indices), in a layout that the next version of the device can
 * read. Valid from muser_realize() to muser_dev_destroy().
 * Returns the address, or NULL with errno EINVAL (not realized).
 */
MUSER_EXPORT void *muser_state(struct muser_dev *dev, size_t *size);

/**
 * muser_recovered - whether muser_realize() recovered a previous
 * emulator's state (false for a new device). Never fails.
 */
MUSER_EXPORT bool muser_recovered(const struct muser_dev *dev);

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
 * handled; the poll fd then stays readable. With a request ring
 * (muser_set_ring()) it takes the requests there and answers in it
 * without a system call, and calls read(2) only when the kernel says
 * requests wait for it, or that this process was detached (the errors
 * below): spinning over an empty ring makes no system call.
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
 * Blocks in poll(2) and calls muser_dispatch(): muser_run_poll() of one
 * device with spin_us 0. Signals interrupting the
 * wait are ignored unless their handler calls muser_stop(). Can be called
 * again after it returned.
 *
 * Returns 0 after muser_stop(), or -1 with errno set: as muser_dispatch()
 * (ENODEV: the mdev was removed; ENOTCONN: detached), ENODEV when the
 * control node otherwise reports POLLHUP/POLLERR, or a poll(2) error.
 */
MUSER_EXPORT int muser_run(struct muser_dev *dev);

/* muser_set_ring()'s default: entries in each queue of the request ring. */
#define MUSER_RING_DEFAULT_ENTRIES	128

/**
 * muser_set_ring - the size of the request ring, or none.
 * @dev:     the device, before muser_realize()
 * @entries: entries in each of its two queues: a power of two up to
 *           MUSER_RING_MAX_ENTRIES (256), or 0 for no ring. The default is
 *           MUSER_RING_DEFAULT_ENTRIES.
 *
 * With a ring, muser.ko puts small requests (up to MUSER_RING_DATA, 32,
 * bytes of data and of answer: register accesses, doorbells) in memory
 * this process maps, and takes their answers from there, instead of
 * read(2) and write(2). An emulator that polls (muser_dispatch_poll() with
 * spin_us, MUSER_POLL_BUSY) then serves requests without a system call,
 * and a VMM thread spinning for its answer sees it as soon as it is
 * written. A blocking emulator saves the read() and write() of each
 * request and still sleeps in poll(2). Larger requests and answers, and a
 * full ring, take the system calls as before; so does a kernel without
 * the ring (muser_realize() then goes on without one: not an error).
 *
 * Returns 0, or -1 with errno: EINVAL (@entries not 0 nor a power of two
 * up to MUSER_RING_MAX_ENTRIES), EBUSY (already realized).
 */
MUSER_EXPORT int muser_set_ring(struct muser_dev *dev, unsigned int entries);

/* Most devices one muser_dispatch_poll() or muser_run_poll() serves. */
#define MUSER_POLL_MAX_DEVS	64
/* spin_us that never sleeps: busy polling, a CPU for the thread. */
#define MUSER_POLL_BUSY		UINT32_MAX

/**
 * muser_dispatch_poll - serve @n devices, polling before sleeping.
 * @devs:       realized devices, 1..MUSER_POLL_MAX_DEVS of them
 * @spin_us:    while no request comes, call muser_dispatch() on each
 *              device for this long before sleeping in poll(2); 0 sleeps
 *              at once, MUSER_POLL_BUSY never sleeps
 * @timeout_ms: return 0 after this long without a request; -1: never
 *
 * Polling trades a CPU for latency: an emulator that is polling when a
 * request comes answers it without a wake-up, and muser.ko's VMM thread,
 * which spins for its answer (module parameter spin_us), then sees it
 * without sleeping either. Spin about as long as requests usually take to
 * follow one another; see README.md ("When to poll").
 *
 * Returns the number of requests handled (> 0), 0 on timeout, or -1 with
 * errno set: EINTR once muser_stop() was called on one of @devs (the stop
 * is consumed), EINVAL (bad @devs or @n), or the error of muser_dispatch()
 * on a device (the others may have been served).
 */
MUSER_EXPORT int muser_dispatch_poll(struct muser_dev *const *devs,
				     unsigned int n, unsigned int spin_us,
				     int timeout_ms);

/**
 * muser_run_poll - serve @n devices from this thread until muser_stop().
 * @spin_us: as for muser_dispatch_poll()
 *
 * muser_dispatch_poll() in a loop. muser_stop() of any of the devices
 * stops it. Returns 0 after muser_stop(), or -1 with errno set as
 * muser_dispatch_poll() (a device that fails stops the loop).
 */
MUSER_EXPORT int muser_run_poll(struct muser_dev *const *devs, unsigned int n,
				unsigned int spin_us);

/**
 * muser_stop - make muser_run(), muser_run_poll() and muser_dispatch_poll()
 * return.
 *
 * Async-signal-safe and callable from any thread and from callbacks. If
 * none of them is running, the next call returns at once.
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

/**
 * muser_req_id - the id of the request being handled.
 *
 * Call from a callback. Ids are unique for the life of the device, across
 * emulators. A device whose registers have side effects can record, in its
 * state area, the id of the last request it applied and what it answered:
 * a replayed request with that id was applied already, and answering it
 * again from the record makes the access happen exactly once.
 * Returns the id, or 0 outside callbacks.
 */
MUSER_EXPORT uint64_t muser_req_id(const struct muser_dev *dev);

/**
 * muser_config_read - read the library's copy of config space.
 * @buf:    receives @count bytes
 * @offset: config space offset; @offset + @count at most the config size
 *
 * For the device's own use, e.g. to check Bus Master Enable in the command
 * register or the power state. Bytes that belong to the config callback
 * read as zero (the callback is not called).
 * Returns 0, or -1 with errno EINVAL (not realized, or out of range).
 */
MUSER_EXPORT int muser_config_read(const struct muser_dev *dev, void *buf,
				   size_t count, unsigned int offset);

/* ---------------------------------------------------------------------- */
/* Interrupts                                                              */

/**
 * muser_irq_trigger - raise an interrupt vector.
 * @index:  VFIO_PCI_INTX_IRQ_INDEX (with an interrupt pin),
 *          VFIO_PCI_MSI_IRQ_INDEX (muser_add_cap_msi()),
 *          VFIO_PCI_MSIX_IRQ_INDEX (muser_add_cap_msix()) or
 *          VFIO_PCI_ERR_IRQ_INDEX (muser_add_cap_pcie())
 * @vector: 0 for INTx and ERR, else below the capability's vector count
 *
 * INTx is edge-signalled to the VMM, which masks it until the guest's
 * handler acknowledges it (VFIO's automasked INTx). The trigger sets the
 * Interrupt Status bit in the status register; while the guest has set
 * INTx Disable in the command register, the interrupt is held and sent
 * when the guest clears INTx Disable (unless muser_irq_intx_deassert()
 * was called meanwhile).
 *
 * An MSI vector the guest masked (per-vector masking), or an MSI-X vector
 * while the function or the vector is masked, is not sent: its pending bit
 * is set and the library sends it when the guest unmasks it. Whether MSI
 * or MSI-X is enabled is for the VMM to judge: its eventfds decide.
 *
 * Returns 0 (also when the vector was held pending), or -1 with errno set:
 * EINVAL (not realized, or an index or vector the device does not have),
 * ENOENT (the VMM has not enabled the vector; usually harmless), or an
 * ioctl(2) error.
 */
MUSER_EXPORT int muser_irq_trigger(struct muser_dev *dev, unsigned int index,
				   unsigned int vector);

/**
 * muser_set_irq_coalescing - send each MSI or MSI-X vector once per batch.
 * @on: true to coalesce (default false)
 *
 * While muser_dispatch() serves a batch of requests, a muser_irq_trigger()
 * of an MSI or MSI-X vector from the dispatching thread (a region or
 * config callback, say a doorbell's) only notes the vector; each noted
 * vector is sent once when the batch is handled, before its answers go
 * out (so an emulator that dies in between replays the batch, and raises
 * them again, rather than losing them). That saves an ioctl(2)
 * per repeat, and loses nothing: a message-signalled interrupt is an
 * edge, and two of one vector before the guest runs its handler are one
 * to the guest anyway. INTx and ERR, and triggers from other threads or
 * outside muser_dispatch(), go out at once. A coalesced trigger returns 0;
 * a failure when the batch sends it is logged (debug) and dropped, as the
 * library does for vectors it sends on unmask. Works at any time.
 * Returns 0.
 */
MUSER_EXPORT int muser_set_irq_coalescing(struct muser_dev *dev, bool on);

/**
 * muser_irq_intx_deassert - the device's INTx condition went away.
 *
 * Clears the Interrupt Status bit and drops an INTx held while INTx
 * Disable was set. The bit is also cleared by resets.
 * Returns 0, or -1 with errno EINVAL (not realized, or no interrupt pin).
 */
MUSER_EXPORT int muser_irq_intx_deassert(struct muser_dev *dev);

/* muser_irq_guest_state() bits */
#define MUSER_IRQ_S_ENABLED	(1u << 0)	/* the guest enabled it */
#define MUSER_IRQ_S_MASKED	(1u << 1)	/* masked: triggers are held */
#define MUSER_IRQ_S_PENDING	(1u << 2)	/* held, not sent yet */

/**
 * muser_irq_guest_state - the guest's view of an interrupt vector.
 * @index:  VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX or
 *          VFIO_PCI_MSIX_IRQ_INDEX
 * @vector: as for muser_irq_trigger()
 *
 * ENABLED: INTx Disable clear; MSI Enable set and @vector below the
 * Multiple Message Enable count; MSI-X Enable set. MASKED: INTx Disable
 * set; the MSI vector's Mask bit; the MSI-X Function Mask or (see
 * muser_add_cap_msix()) the vector's Mask bit. PENDING: INTx held, or the
 * MSI or MSI-X pending bit.
 * Returns the MUSER_IRQ_S_* bits, or -1 with errno EINVAL (not realized,
 * or no such vector).
 */
MUSER_EXPORT int muser_irq_guest_state(const struct muser_dev *dev,
				       unsigned int index,
				       unsigned int vector);

/* ---------------------------------------------------------------------- */
/* Live migration                                                          */

/*
 * muser_setup_migration() makes the device migratable: with QEMU 7.2
 * (-device vfio-pci,x-enable-migration=on: migration v1) and with QEMU 8.0
 * and later (enable-migration=on: v2, which muser.ko translates). What
 * travels, without a line of device code: the library's state (config
 * space, capabilities, the MSI-X table and pending bits, interrupt state),
 * the device's part of the state area (muser_state()) and its device
 * memory (muser_setup_bar_mmap()). A device with more state adds its own
 * bytes with the save and load callbacks below.
 *
 * The stream has a magic number, a version, the device description's
 * hash, every part's length and a checksum; the destination checks all of
 * it before anything is applied, and refuses a stream of another device
 * or version (the VMM's migration fails, the source keeps running).
 * Guest memory the device writes through muser_dma_map() is pinned, and
 * the VFIO container reports pinned pages dirty.
 */

/* What the device is told: muser_migration_ops.state. */
enum muser_mig_state {
	MUSER_MIG_RUNNING = 0,	/* run as usual (also after a migration failed) */
	MUSER_MIG_STOPPED = 1,	/* the VM is stopped: no DMA, no interrupts */
	MUSER_MIG_RESUMING = 2,	/* a stream is about to be loaded */
};

/**
 * struct muser_migration_ops - a device's part in migration; every member
 * may be NULL.
 * @version: version of the device's own bytes (@save); the destination's
 *           @load gets the source's, to accept or refuse
 * @state:   the device is told it runs, is stopped or resumes. When told
 *           MUSER_MIG_STOPPED it must quiesce (finish or stop in-flight
 *           work) before returning: the stream is taken right after.
 *           Returns 0, or -1 with errno: the VMM's state change fails.
 * @save:    with @buf NULL, the size of the device's own bytes; else
 *           write them into @buf (@size bytes, as returned just before).
 *           Returns that size, or -1 with errno.
 * @load:    accept the source's bytes (@len, of its @version): check them
 *           all before applying any. Called once the whole stream has
 *           been checked, before any of it is applied: the library's
 *           state, the state area and device memory come right after,
 *           then the recover callback (muser_set_recover_cb()), so that
 *           the device rebuilds from the loaded state as after a restart
 *           (keep what @load takes outside the state area). Returns 0, or
 *           -1 with errno: the migration fails, nothing applied.
 * @save's size query (@buf NULL) may come at any time, also while a
 *           stream is loaded: it must have no side effect.
 */
struct muser_migration_ops {
	uint32_t version;
	int (*state)(struct muser_dev *dev, void *priv,
		     enum muser_mig_state state);
	ssize_t (*save)(struct muser_dev *dev, void *priv, void *buf,
			size_t size);
	int (*load)(struct muser_dev *dev, void *priv, const void *buf,
		    size_t len, uint32_t version);
};

/**
 * muser_setup_migration - make the device migratable.
 * @ops:  the device's part, copied; NULL: the library's state, the state
 *        area and device memory only
 * @priv: passed to @ops' callbacks
 *
 * Adds the migration region (a device-specific region, index 9). An
 * emulator restarted during a migration carries on with it when the
 * device was stopped (saving), and fails it cleanly when it was loading.
 * Returns 0, or -1 with errno EBUSY (realized).
 */
MUSER_EXPORT int muser_setup_migration(struct muser_dev *dev,
				       const struct muser_migration_ops *ops,
				       void *priv);

/* ---------------------------------------------------------------------- */
/* Guest memory (DMA)                                                      */

/*
 * A device reaches guest memory by I/O virtual address (iova: what the
 * guest driver programs into the device; the guest physical address under
 * QEMU). The kernel pins what the device uses, on demand, and maps it into
 * this process: muser_dma_map() gives pointers (zero-copy), and
 * muser_dma_read()/muser_dma_write() copy. Guest memory needs no special
 * QEMU options (anonymous memory, hugepages and files all work).
 *
 * When the VMM unmaps guest memory (the guest reconfigured its memory, the
 * VM is shutting down) or closes the device, the kernel revokes it at once:
 * the pages vanish from this process and the dma-revoke callback is
 * called. Pointers into a revoked range raise SIGBUS when touched; stop
 * using them when told and release them. Copies into or from revoked or
 * never-mapped memory fail with EFAULT; they never see stale memory.
 */

/* muser_dma_map() @prot */
#define MUSER_DMA_READ		(1u << 0)
#define MUSER_DMA_WRITE		(1u << 1)

/* One contiguous piece of mapped guest memory. */
struct muser_sg {
	uint64_t iova;		/* guest address of @addr */
	size_t len;		/* bytes */
	void *addr;		/* where it is mapped in this process */
};

/**
 * muser_dma_map - map guest memory into this process.
 * @dev:    a realized device
 * @iova:   guest address
 * @len:    bytes, nonzero
 * @prot:   MUSER_DMA_READ and/or MUSER_DMA_WRITE
 * @sg:     receives the pieces, in order; the range is split where the
 *          mapping is not contiguous (at most every 2 MiB)
 * @max_sg: entries @sg has room for
 *
 * The mapping holds the memory pinned until muser_dma_unmap(). Mapping
 * memory that is already mapped costs no system call.
 * Read-only guest memory (ROM) cannot be mapped: read it with
 * muser_dma_read().
 * Returns the number of @sg entries used (>= 1), or -1 with errno set:
 * EINVAL (bad arguments, not realized), ENOBUFS (@max_sg is too small),
 * EFAULT (part of the range is not guest memory), EPERM (write access to
 * read-only guest memory), ENOMEM (the VMM's locked memory limit), ENOSPC
 * (the device's pinning budget is used up by mappings it holds), ENXIO (no
 * VMM has the device open), or an mmap(2) error.
 */
MUSER_EXPORT int muser_dma_map(struct muser_dev *dev, uint64_t iova,
			       size_t len, unsigned int prot,
			       struct muser_sg *sg, int max_sg);

/**
 * muser_dma_unmap - release what muser_dma_map() returned.
 * @sg: the entries it filled in
 * @n:  their number (its return value)
 *
 * The memory may stay mapped and pinned for later use, within the device's
 * budget. Releasing a revoked mapping is fine (and needed).
 * Returns 0, or -1 with errno EINVAL (not a mapping of this device).
 */
MUSER_EXPORT int muser_dma_unmap(struct muser_dev *dev,
				 const struct muser_sg *sg, int n);

/**
 * muser_dma_read - copy guest memory into @buf.
 * @iova: guest address
 * @buf:  receives @len bytes
 *
 * Returns 0, or -1 with errno set as for muser_dma_map() (EFAULT also for
 * a bad @buf). On failure @buf may be partly written.
 */
MUSER_EXPORT int muser_dma_read(struct muser_dev *dev, uint64_t iova,
				void *buf, size_t len);

/**
 * muser_dma_write - copy @len bytes of @buf into guest memory at @iova.
 * Returns 0, or -1 with errno set as for muser_dma_read(). On failure part
 * of the data may have been written.
 */
MUSER_EXPORT int muser_dma_write(struct muser_dev *dev, uint64_t iova,
				 const void *buf, size_t len);

/**
 * muser_dma_revoke_cb - guest memory the device may have mapped is gone.
 * @iova, @size: the range; iova 0 and size UINT64_MAX mean all of it (the
 *               VMM closed the device, or many ranges went at once)
 *
 * Called from muser_dispatch(). The pages are already unmapped: drop
 * pointers into the range and release their mappings.
 */
typedef void (*muser_dma_revoke_cb)(struct muser_dev *dev, void *priv,
				    uint64_t iova, uint64_t size);

/**
 * muser_set_dma_revoke_cb - be told when guest memory is revoked.
 * Call before muser_realize(), like every set_*_cb. Returns 0, or -1 with
 * errno EBUSY (already realized).
 */
MUSER_EXPORT int muser_set_dma_revoke_cb(struct muser_dev *dev,
					 muser_dma_revoke_cb cb, void *priv);

#ifdef __cplusplus
}
#endif

#endif /* MUSER_H */
