/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR BSD-3-Clause */
/*
 * muser: PCI devices emulated in userspace, served through VFIO.
 *
 * This is the ABI between muser.ko and an emulator (normally libmuser).
 *
 * Lifecycle
 *   1. An administrator creates a mediated device:
 *        echo UUID > /sys/class/muser/muser/mdev_supported_types/muser-1/create
 *      muser.ko creates /dev/muser/UUID, the device's control node.
 *   2. The emulator opens /dev/muser/UUID and issues MUSER_IOC_ATTACH with the
 *      device layout (regions and interrupts). One emulator per device: a
 *      second attach fails with EBUSY. The layout is kept by the kernel after
 *      the emulator detaches; a later attach must present the same layout
 *      while a VMM has the device open.
 *   3. A VMM opens the VFIO device. The kernel answers VFIO_DEVICE_GET_INFO,
 *      GET_REGION_INFO, GET_IRQ_INFO and SET_IRQS itself. Region reads and
 *      writes and VFIO_DEVICE_RESET become requests that the emulator read()s
 *      from the control node and answers by write()ing replies.
 *   4. Releasing the control node (its last close, which waits for
 *      mappings of device memory to go) or MUSER_IOC_DETACH detaches the
 *      emulator.
 *      Requests it had read but not answered are queued again, flagged
 *      MUSER_REQ_F_REPLAYED, for the next emulator. A VMM access waits for an
 *      emulator at most the module parameter timeout_ms, then fails with
 *      ETIMEDOUT. What the next emulator needs is kept: the layout, device
 *      memory, pinned guest memory, the VMM's eventfds, pending notices and
 *      the state area (MUSER_STATE_OFFSET). MUSER_IOC_TAKEOVER replaces a
 *      running emulator without a gap. An emulator that detached, or was
 *      taken over, loses guest memory at once: its mappings of the DMA
 *      window raise SIGBUS from then on, whatever is pinned later. Its
 *      mappings of device memory and the state area stay until it unmaps
 *      them or exits: it must stop using them.
 *   5. When the last VMM closes the device, the kernel unpins the guest
 *      memory the emulator used, drops the VMM's interrupt eventfds and
 *      posts MUSER_REQ_DMA_UNMAP, MUSER_REQ_IRQ_STATE and
 *      MUSER_REQ_VMM_CLOSE, in that order.
 *
 * Wire format
 *   read() returns one or more whole requests: a struct muser_req followed by
 *   data_len bytes of data, padded to a multiple of 8 bytes (MUSER_ALIGN).
 *   The buffer must hold at least MUSER_READ_BUF_MIN bytes. read() blocks
 *   until a request is pending unless the file is O_NONBLOCK (EAGAIN); poll()
 *   reports EPOLLIN when a request is pending.
 *
 *   write() takes one or more replies: a struct muser_reply followed by len
 *   bytes of data, padded to MUSER_ALIGN. It returns the number of bytes of
 *   whole replies consumed; if the first reply is invalid it fails with:
 *     EINVAL  malformed header, or len not as the request requires
 *     ENOENT  no request with that id is waiting (it timed out or was
 *             cancelled by the VMM; the emulator may ignore this)
 *   and the remaining replies are not consumed.
 *
 *   Every request carries an id, unique per device for the life of the
 *   device. Replies may come in any order. Posted requests (id 0) take no
 *   reply.
 *
 * All structures use fixed-width types and have the same layout on 32- and
 * 64-bit userspace. Structures passed to ioctls start with argsz (the size
 * userspace filled in) so they can grow.
 */
#ifndef _UAPI_LINUX_MUSER_H
#define _UAPI_LINUX_MUSER_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/vfio.h>

/*
 * Checked at attach: an emulator built for another version is refused
 * (EINVAL) rather than having its ioctls land on other handlers. 2: the
 * ioctl numbers in order (1 had TAKEOVER at 0x07). 3: device-specific
 * regions in struct muser_device_info.
 */
#define MUSER_API_VERSION	3

/* Directory holding the control nodes, one per mdev, named by UUID. */
#define MUSER_DEV_DIR		"/dev/muser"

/* Regions and interrupts follow the vfio-pci index layout. */
#define MUSER_NUM_REGIONS	VFIO_PCI_NUM_REGIONS	/* BAR0-5, ROM, config, VGA */
#define MUSER_NUM_IRQS		VFIO_PCI_NUM_IRQS	/* INTx, MSI, MSI-X, ERR, REQ */

/* Largest data payload of one request; bigger VMM accesses are split. */
#define MUSER_MAX_DATA		4096
#define MUSER_ALIGN		8

/*
 * muser_region.flags of a BAR: VMM writes of its trapped part are posted.
 * The VMM's pwrite() returns once the write is queued; the emulator still
 * sees it in order (after every earlier request of the device, before
 * every later one) flagged MUSER_REQ_F_POSTED, and acknowledges it with a
 * reply like any write. An error in that reply has no syscall left to
 * fail: it is counted (MUSER_ATTR_REQUESTS_FAILED, MUSER_ATTR_LAST_ERROR)
 * and logged. A device has at most MUSER_MAX_POSTED posted writes not yet
 * acknowledged; past that, a write is not posted: it waits for its answer
 * as an unposted one does.
 * Posted writes survive the emulator like any request (replayed to the
 * next one). When the last VMM closes the device, unacknowledged ones are
 * waited for, at most timeout_ms, then dropped, counted as failed.
 *
 * PCI posts memory writes only: set it on memory BARs, and not where a
 * guest reads back, right after a write, a value the write changes in
 * device memory (the read would not wait for the write). Config space,
 * the ROM and VGA are never posted.
 */
#define MUSER_REGION_F_POSTED_WRITES	(1u << 16)
#define MUSER_MAX_POSTED	64

/**
 * struct muser_region - one region of the device, indexed by
 * VFIO_PCI_*_REGION_INDEX.
 * @flags: VFIO_REGION_INFO_FLAG_READ and/or VFIO_REGION_INFO_FLAG_WRITE;
 *         for a BAR also MUSER_REGION_F_POSTED_WRITES.
 * @size:  0 if absent. BARs and the ROM: a power of two (the upper half of a
 *         64-bit BAR is 0). Config space: 256 or 4096. VGA: 0 or 0xc0000.
 */
struct muser_region {
	__u32 flags;
	__u32 pad;
	__u64 size;
};

/**
 * struct muser_irq - one interrupt index, indexed by VFIO_PCI_*_IRQ_INDEX.
 * @flags: VFIO_IRQ_INFO_* flags the kernel reports to the VMM. EVENTFD is
 *         implied when count is nonzero.
 * @count: vectors: INTx 0 or 1, MSI 0..32 (a power of two), MSI-X 0..2048,
 *         ERR 0 or 1. REQ is always provided by the kernel (count 1).
 */
struct muser_irq {
	__u32 flags;
	__u32 count;
};

/*
 * struct muser_mmap_area - part of a region backed by device memory: pages
 * muser.ko allocates (zeroed, on first touch) and keeps for the life of the
 * device, across emulator restarts. The VMM maps them through the VFIO
 * region mmap, the emulator through mmap() of /dev/muser/UUID at
 * MUSER_REGION_OFFSET(region) + offset; accesses there trap nowhere. VMM
 * reads and writes of these ranges are served by the kernel from the same
 * pages. The rest of the region is trapped: accesses become requests.
 * @region: region index (a BAR or the ROM)
 * @offset: page-aligned offset within the region
 * @size:   page-aligned, nonzero, within the region; areas do not overlap
 */
struct muser_mmap_area {
	__u32 region;
	__u32 pad;
	__u64 offset;
	__u64 size;
};

#define MUSER_MAX_MMAP_AREAS	16

/* Offsets of regions in the control node (mmap) and the VFIO device fd. */
#define MUSER_REGION_SHIFT	40
#define MUSER_REGION_OFFSET(index)	((__u64)(index) << MUSER_REGION_SHIFT)

/*
 * The state area: up to MUSER_STATE_SIZE bytes of memory muser.ko keeps per
 * device for its emulators, zeroed when the device is created and never
 * touched by the kernel again. The attached emulator maps it (MAP_SHARED)
 * at MUSER_STATE_OFFSET of the control node; pages are allocated on first
 * touch. What an emulator keeps there survives its exit, so the next one
 * can pick up where it left off (libmuser keeps config space and interrupt
 * state there, and gives the device room for its own).
 */
#define MUSER_STATE_INDEX	15
#define MUSER_STATE_OFFSET	MUSER_REGION_OFFSET(MUSER_STATE_INDEX)
#define MUSER_STATE_SIZE	(4u << 20)

/*
 * Device-specific regions: the VMM sees them at VFIO indexes
 * MUSER_NUM_REGIONS (9) and up, each with a VFIO_REGION_INFO_CAP_TYPE
 * capability, as vfio-pci reports its own. Their accesses are trapped:
 * requests with region = that index.
 */
#define MUSER_MAX_DEV_REGIONS	4

/**
 * struct muser_dev_region - one device-specific region.
 * @region:  flags (VFIO_REGION_INFO_FLAG_READ and/or _WRITE) and size
 *           (nonzero, within MUSER_REGION_OFFSET(1))
 * @type:    VFIO_REGION_TYPE_*, nonzero
 * @subtype: the type's subtype
 */
struct muser_dev_region {
	struct muser_region region;
	__u32 type;
	__u32 subtype;
};

/*
 * Migration. A device-specific region of type
 * VFIO_REGION_TYPE_MIGRATION_DEPRECATED, subtype
 * VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED (linux/vfio.h, both kept by
 * every kernel muser supports) makes the device migratable:
 *  - QEMU 7.2 (migration v1) drives the region itself: a struct
 *    vfio_device_migration_info at offset 0, VFIO_DEVICE_STATE_V1_* states,
 *    the data section at data_offset.
 *  - For migration v2 (QEMU 8.0 and later), muser.ko offers
 *    VFIO_MIGRATION_STOP_COPY (and PRE_COPY on kernels that have it) and
 *    drives the same region on the VMM's behalf: each arc of the v2 state
 *    machine writes the v1 state it maps to (RUNNING 1, STOP 0, STOP_COPY 2,
 *    PRE_COPY 3, RESUMING 4); the data fd reads the data section chunk by
 *    chunk as v1 does (pending_bytes, data_offset, data_size, the data) and
 *    writes it (data_offset, the data, data_size).
 *    VFIO_DEVICE_FEATURE_MIG_DATA_SIZE reads the __u64 at
 *    MUSER_MIG_STOP_COPY_SIZE: the emulator's estimate of what STOP_COPY
 *    will produce (not 0).
 * The region must be readable and writable and larger than
 * MUSER_MIG_HDR_SIZE. Guest memory the emulator writes through its DMA
 * mappings is pinned, and reported dirty by the VFIO container.
 */
#define MUSER_MIG_STOP_COPY_SIZE	32
#define MUSER_MIG_HDR_SIZE		40

/* muser_device_info.flags */
#define MUSER_DEV_F_RESET	(1u << 0)	/* VFIO_DEVICE_RESET reaches the emulator */

/**
 * struct muser_device_info - the layout an emulator attaches with.
 * @argsz:       sizeof(struct muser_device_info)
 * @version:     MUSER_API_VERSION
 * @flags:       MUSER_DEV_F_*
 * @num_regions: regions reported to the VMM, 8 (no VGA) or 9
 * @num_irqs:    must be MUSER_NUM_IRQS
 * @num_mmap_areas: entries used in @mmap_areas
 * @num_dev_regions: entries used in @dev_regions; when nonzero the VMM
 *               sees MUSER_NUM_REGIONS + @num_dev_regions regions
 */
struct muser_device_info {
	__u32 argsz;
	__u32 version;
	__u32 flags;
	__u32 num_regions;
	__u32 num_irqs;
	__u32 num_mmap_areas;
	struct muser_region regions[MUSER_NUM_REGIONS];
	struct muser_irq irqs[MUSER_NUM_IRQS];
	struct muser_mmap_area mmap_areas[MUSER_MAX_MMAP_AREAS];
	__u32 num_dev_regions;
	__u32 pad;
	struct muser_dev_region dev_regions[MUSER_MAX_DEV_REGIONS];
};

/* muser_req.type */
enum muser_req_type {
	MUSER_REQ_READ = 1,	/* read len bytes at offset of region */
	MUSER_REQ_WRITE = 2,	/* write the len bytes that follow */
	MUSER_REQ_RESET = 3,	/* VFIO_DEVICE_RESET */
	/*
	 * Posted, no reply: the VMM changed interrupt configuration (SET_IRQS).
	 * Changes are coalesced: fetch the current state with
	 * MUSER_IOC_GET_IRQ_STATE, as a newly attached emulator does once.
	 * Carries id 0.
	 */
	MUSER_REQ_IRQ_STATE = 4,
	/*
	 * Posted, no reply: the VMM unmapped guest memory the emulator had
	 * pinned (MUSER_IOC_DMA_MAP), or closed the device. The data is a
	 * struct muser_dma_range; iova 0 and size ~0ULL mean every range.
	 * When it is read, the pages are already gone from every mapping of
	 * the DMA window and unpinned: the emulator only forgets them.
	 * Carries id 0.
	 */
	MUSER_REQ_DMA_UNMAP = 5,
	/*
	 * Posted, no reply: the last VMM closed the device. Its interrupt
	 * eventfds and DMA mappings are gone; the device should go back to
	 * its power-on state, as vfio-pci resets a device on release.
	 * Carries id 0.
	 */
	MUSER_REQ_VMM_CLOSE = 6,
};

/* muser_req.flags */
/*
 * The request was delivered to an emulator that detached without answering
 * it. The VMM is still waiting: the emulator must answer it, and may use
 * this flag to avoid repeating a side effect the previous one already made.
 */
#define MUSER_REQ_F_REPLAYED	(1u << 0)
/* A posted write (MUSER_REGION_F_POSTED_WRITES): no VMM thread waits. */
#define MUSER_REQ_F_POSTED	(1u << 1)

/**
 * struct muser_req - a request from the kernel to the emulator.
 * @id:       unique per device; echo it in the reply
 * @type:     enum muser_req_type
 * @flags:    MUSER_REQ_F_*
 * @region:   region index for READ/WRITE
 * @offset:   offset within the region
 * @len:      access length in bytes, 1..MUSER_MAX_DATA
 * @data_len: bytes of data following this header (len for WRITE, else 0)
 */
struct muser_req {
	__u64 id;
	__u16 type;
	__u16 flags;
	__u32 region;
	__u64 offset;
	__u32 len;
	__u32 data_len;
};

/**
 * struct muser_reply - the emulator's answer to a request.
 * @id:    the request's id
 * @error: 0 on success, else a positive errno the VMM's syscall fails with
 * @len:   bytes of data following: the request's len for a successful READ,
 *         0 otherwise
 */
struct muser_reply {
	__u64 id;
	__s32 error;
	__u32 len;
};

#define MUSER_READ_BUF_MIN	(sizeof(struct muser_req) + MUSER_MAX_DATA)

/**
 * struct muser_irq_trigger - raise interrupt vectors.
 * @argsz: sizeof(struct muser_irq_trigger)
 * @index: VFIO_PCI_*_IRQ_INDEX
 * @start: first vector
 * @count: number of vectors from start
 *
 * The kernel signals the eventfd the VMM currently has set for each vector.
 * A masked INTx is recorded as pending and signalled on unmask.
 * Returns 0, or ENOENT if no eventfd is set for a vector (the VMM has not
 * enabled it), EINVAL for an index or range the layout does not have.
 */
struct muser_irq_trigger {
	__u32 argsz;
	__u32 index;
	__u32 start;
	__u32 count;
};

/**
 * struct muser_irq_state - what the VMM has configured for one irq index.
 * @argsz:   sizeof(struct muser_irq_state)
 * @index:   VFIO_PCI_*_IRQ_INDEX, set by the caller
 * @count:   vectors the VMM has set up (0: the index is disabled)
 * @flags:   MUSER_IRQ_STATE_F_*
 * @enabled: bitmap of vectors that have an eventfd, vector n at bit n % 64
 *           of enabled[n / 64]. QEMU masks an MSI-X vector by taking its
 *           eventfd away; a trigger of such a vector returns ENOENT.
 */
struct muser_irq_state {
	__u32 argsz;
	__u32 index;
	__u32 count;
	__u32 flags;
	__u64 enabled[2048 / 64];
};

#define MUSER_IRQ_STATE_F_MASKED	(1u << 0)	/* INTx masked by the VMM */

/*
 * Guest memory (DMA)
 *
 * The emulator reaches guest memory by I/O virtual address (iova), the
 * address the VMM gave VFIO_IOMMU_MAP_DMA, i.e. the guest physical address
 * for QEMU. MUSER_IOC_DMA_MAP pins a range with vfio_pin_pages() (charged
 * to the VMM's RLIMIT_MEMLOCK) and holds it; the emulator then accesses it
 * through mmap() of the control node at MUSER_DMA_OFFSET + iova
 * (MAP_SHARED; a mapping may cover pages not pinned yet: touching those
 * raises SIGBUS). MUSER_IOC_DMA_RELEASE drops the hold. Pins outlive holds:
 * the kernel keeps released ranges pinned, so mapping them again costs no
 * new pin, and unpins the least recently used released ones when the
 * device's budget (sysfs dma/budget_mb) would be exceeded. Held ranges are
 * never evicted: DMA_MAP fails with ENOSPC instead.
 *
 * When the VMM unmaps guest memory (or closes the device), muser.ko
 * removes the pages from every mapping of the DMA window, unpins them
 * and posts MUSER_REQ_DMA_UNMAP. Holds survive it; touching such pages
 * raises SIGBUS until they are mapped again. MUSER_IOC_DMA_RW copies
 * instead of mapping and fails with EFAULT on memory the VMM has not
 * mapped, so copies never see stale memory.
 *
 * Holds belong to the attached emulator: detaching or being taken over
 * drops them (the pins stay for the next emulator), and only it may map
 * the DMA window (ENOTCONN) or fault pages in through it (SIGBUS).
 * Pinning needs an open VMM: ENXIO otherwise.
 */
#define MUSER_DMA_OFFSET	(1ULL << 62)
#define MUSER_DMA_MAX_IOVA	(MUSER_DMA_OFFSET - 1)

/* Pins are managed in aligned chunks of this size. */
#define MUSER_DMA_CHUNK_SHIFT	21

/* Most DMA_MAP holds one open control node takes on one chunk. */
#define MUSER_DMA_MAX_HOLDS	65535

/* muser_dma_map.flags, muser_dma_rw.flags */
#define MUSER_DMA_F_WRITE	(1u << 0)	/* the emulator writes guest memory */
/* DMA_MAP: a guess the caller falls back from; failures are not logged. */
#define MUSER_DMA_F_PROBE	(1u << 1)

/**
 * struct muser_dma_map - pin and hold guest memory (MUSER_IOC_DMA_MAP), or
 * release a hold (MUSER_IOC_DMA_RELEASE, which takes what DMA_MAP took).
 * @argsz:  sizeof(struct muser_dma_map)
 * @flags:  MUSER_DMA_F_WRITE if the emulator will write
 * @iova:   start of the range (any alignment: whole pages are pinned)
 * @size:   bytes, nonzero, iova + size <= MUSER_DMA_MAX_IOVA + 1
 * @offset: set by DMA_MAP: where the page holding @iova is in the
 *          control node (MUSER_DMA_OFFSET + iova rounded down to a page)
 *
 * DMA_MAP errors: EINVAL bad arguments; EFAULT part of the range is not
 * mapped by the VMM; EPERM MUSER_DMA_F_WRITE on memory the VMM mapped
 * read-only; ENOMEM the VMM's RLIMIT_MEMLOCK is exhausted; ENOSPC the
 * device's pin budget is taken by held ranges; ENXIO no VMM has the device
 * open; ENOTCONN the caller is not the attached emulator; EOVERFLOW the
 * caller holds a chunk of the range MUSER_DMA_MAX_HOLDS times already;
 * EINTR a fatal signal came while the VMM was unmapping the range (pins of
 * a range being unmapped wait until the VMM is done with it).
 * DMA_RELEASE: EINVAL if part of the range is not held.
 */
struct muser_dma_map {
	__u32 argsz;
	__u32 flags;
	__u64 iova;
	__u64 size;
	__u64 offset;
};

/**
 * struct muser_dma_rw - copy between guest memory and a buffer
 * (MUSER_IOC_DMA_RW), pinning what is not pinned (without a hold).
 * @argsz: sizeof(struct muser_dma_rw)
 * @flags: MUSER_DMA_F_WRITE to write guest memory, else read it
 * @iova:  guest address
 * @size:  bytes, at most 1 MiB
 * @data:  the emulator's buffer (a pointer, as a __u64)
 * Errors as for DMA_MAP, and EFAULT for a bad @data.
 */
struct muser_dma_rw {
	__u32 argsz;
	__u32 flags;
	__u64 iova;
	__u64 size;
	__u64 data;
};

#define MUSER_DMA_RW_MAX	(1u << 20)

/* The data of a MUSER_REQ_DMA_UNMAP. */
struct muser_dma_range {
	__u64 iova;
	__u64 size;
};

#define MUSER_IOC_MAGIC		0xE6
/* Attach as the device's emulator: struct muser_device_info. */
#define MUSER_IOC_ATTACH	_IO(MUSER_IOC_MAGIC, 0x00)
/*
 * Attach in place of the running emulator (an upgrade): struct
 * muser_device_info, which must equal the running emulator's layout (else
 * EBUSY). From then on requests go to the caller; the previous emulator may
 * still answer those it had read (its read() and poll() report ENOTCONN /
 * EPOLLERR: it should finish and exit). Returns once it has answered them,
 * at most timeout_ms later (what it leaves is delivered again, replayed).
 * Without a running emulator it is MUSER_IOC_ATTACH.
 */
#define MUSER_IOC_TAKEOVER	_IO(MUSER_IOC_MAGIC, 0x01)
/* Detach without closing: no argument. */
#define MUSER_IOC_DETACH	_IO(MUSER_IOC_MAGIC, 0x02)
/* Raise interrupts: struct muser_irq_trigger. */
#define MUSER_IOC_TRIGGER_IRQ	_IO(MUSER_IOC_MAGIC, 0x03)
/* Read the VMM's interrupt configuration: struct muser_irq_state. */
#define MUSER_IOC_GET_IRQ_STATE	_IO(MUSER_IOC_MAGIC, 0x04)
/* Pin and hold guest memory: struct muser_dma_map. */
#define MUSER_IOC_DMA_MAP	_IO(MUSER_IOC_MAGIC, 0x05)
/* Release a hold: struct muser_dma_map. */
#define MUSER_IOC_DMA_RELEASE	_IO(MUSER_IOC_MAGIC, 0x06)
/* Copy to or from guest memory: struct muser_dma_rw. */
#define MUSER_IOC_DMA_RW	_IO(MUSER_IOC_MAGIC, 0x07)
/* Set up the request ring: struct muser_ring_setup. */
#define MUSER_IOC_RING_SETUP	_IO(MUSER_IOC_MAGIC, 0x08)
/* Completions are in the ring, and MUSER_RING_F_WAKEUP was set: no argument. */
#define MUSER_IOC_RING_ENTER	_IO(MUSER_IOC_MAGIC, 0x09)

/*
 * The request ring: requests and answers without a system call, for an
 * emulator that is running anyway (polling, or busy).
 *
 * The attached emulator asks for one with MUSER_IOC_RING_SETUP and maps
 * setup.size bytes at MUSER_RING_OFFSET of the same file (MAP_SHARED):
 * a struct muser_ring_hdr, a submission queue (SQ) of @entries struct
 * muser_ring_sqe at setup.sq_off, and a completion queue (CQ) of
 * @entries struct muser_ring_cqe at setup.cq_off. One ring per open file;
 * it serves the attachment it was set up in: after a detach or a takeover
 * nothing new enters it (MUSER_RING_F_RETIRED), though answers to what is
 * in it are still taken, and the file cannot attach again (EBUSY: open
 * the control node again).
 *
 * Indices are free-running __u32 counters; entry i is at i % entries.
 * The kernel produces the SQ (sq_tail) and consumes the CQ (cq_head), the
 * emulator consumes the SQ (sq_head) and produces the CQ (cq_tail). Each
 * side publishes its index with a store-release after writing or reading
 * the entries, and reads the other side's with a load-acquire.
 *
 * A request goes to the ring when its data fits (len <= MUSER_RING_DATA)
 * and the SQ has room; the others, and the notices (DMA_UNMAP, IRQ_STATE,
 * VMM_CLOSE), stay for read(). Order holds both ways: nothing enters the
 * SQ while an older request waits for read(), and read() fails with
 * EAGAIN (blocking or not) while the SQ holds requests the emulator has
 * not taken. So the emulator loads kflags (acquire), drains the SQ, and
 * read()s when kflags has MUSER_RING_F_READ; poll() reports EPOLLIN for
 * SQ entries too.
 *
 * The emulator answers a request from either queue with a CQ entry (when
 * the answer fits and the CQ has room) or with write(), as it likes. A
 * VMM thread waiting for an answer spins, then sleeps; while one sleeps
 * (or a takeover or the last close waits), the kernel sets
 * MUSER_RING_F_WAKEUP. An emulator that sees it after publishing cq_tail
 * (with a full barrier in between) calls MUSER_IOC_RING_ENTER, which takes
 * the answers and wakes the waiters.
 *
 * Every entry is read once by the kernel and validated, as write()'s
 * replies are; indices out of range (more entries than the queue holds)
 * make the kernel stop using the ring, log it, and set
 * MUSER_RING_F_BROKEN: from then on every request waits for read().
 * Requests delivered through the ring are replayed to the next emulator,
 * like those read(), when this one goes without answering them.
 */
#define MUSER_RING_INDEX	14
#define MUSER_RING_OFFSET	MUSER_REGION_OFFSET(MUSER_RING_INDEX)
#define MUSER_RING_DATA		32
#define MUSER_RING_MAX_ENTRIES	256

/* muser_ring_hdr.kflags */
#define MUSER_RING_F_READ	(1u << 0)	/* requests wait for read() */
#define MUSER_RING_F_WAKEUP	(1u << 1)	/* answers need RING_ENTER */
#define MUSER_RING_F_BROKEN	(1u << 2)	/* indices were out of range */
/*
 * The file is no longer the attached emulator (it detached, was taken
 * over, or the device is being removed): read() says which (ENOTCONN,
 * ENODEV). Lets an emulator that only looks at its ring notice.
 */
#define MUSER_RING_F_RETIRED	(1u << 3)

/**
 * struct muser_ring_hdr - the ring's indices, at offset 0 of its mapping.
 * Written by the kernel: @sq_tail, @cq_head, @kflags (MUSER_RING_F_*).
 * Written by the emulator: @sq_head, @cq_tail. Each side's on its own
 * cache line.
 */
struct muser_ring_hdr {
	__u32 sq_tail;
	__u32 cq_head;
	__u32 kflags;
	__u32 kpad[13];
	__u32 sq_head;
	__u32 cq_tail;
	__u32 upad[14];
};

/* A request: its header, and data_len bytes of data (a write's). */
struct muser_ring_sqe {
	struct muser_req req;
	__u8 data[MUSER_RING_DATA];
};

/* An answer: its header, and reply.len bytes of data (a read's). */
struct muser_ring_cqe {
	struct muser_reply reply;
	__u8 data[MUSER_RING_DATA];
	__u8 pad[16];
};

/**
 * struct muser_ring_setup - MUSER_IOC_RING_SETUP.
 * @argsz:   sizeof(struct muser_ring_setup)
 * @flags:   0
 * @entries: entries in each queue, a power of two up to
 *           MUSER_RING_MAX_ENTRIES
 * @size:    out: bytes to map at MUSER_RING_OFFSET
 * @sq_off:  out: offset of the SQ in the mapping
 * @cq_off:  out: offset of the CQ
 * Fails with ENOTCONN if the caller is not the attached emulator, EBUSY
 * if this file has a ring already, EINVAL for a bad argument.
 */
struct muser_ring_setup {
	__u32 argsz;
	__u32 flags;
	__u32 entries;
	__u32 pad;
	__u64 size;
	__u64 sq_off;
	__u64 cq_off;
};

/*
 * Generic netlink family MUSER_GENL_NAME, version MUSER_GENL_VERSION.
 *
 * MUSER_CMD_GET_DEVICE: with MUSER_ATTR_UUID, that device (ENODEV if there
 * is none); as a dump, every device. Replies carry the MUSER_ATTR_* below
 * from UUID to LAST_ERROR, DEVMEM_PAGES and DEVMEM_BUDGET. Needs no
 * privilege, and never waits for a device's locks.
 *
 * Multicast group MUSER_GENL_MCGRP_EVENTS: MUSER_CMD_EVENT messages with
 * MUSER_ATTR_EVENT (enum muser_event) and MUSER_ATTR_UUID, plus
 * MUSER_ATTR_EMULATOR_PID for emulator events and MUSER_ATTR_IOVA and
 * MUSER_ATTR_SIZE for MUSER_EVENT_DMA_UNMAPPED.
 */
#define MUSER_GENL_NAME		"muser"
#define MUSER_GENL_VERSION	1
#define MUSER_GENL_MCGRP_EVENTS	"events"

enum muser_cmd {
	MUSER_CMD_UNSPEC,
	MUSER_CMD_GET_DEVICE,
	MUSER_CMD_EVENT,
	__MUSER_CMD_MAX,
};

#define MUSER_CMD_MAX	(__MUSER_CMD_MAX - 1)

/*
 * MUSER_ATTR_REQUESTS counts requests settled (answered or timed out),
 * MUSER_ATTR_REQUESTS_FAILED those answered with an error or timed out,
 * MUSER_ATTR_REQUESTS_POSTED posted writes queued, MUSER_ATTR_WAITS_SPUN
 * and MUSER_ATTR_WAITS_SLEPT the answers a VMM thread waited for by
 * spinning (module parameter spin_us) and by sleeping,
 * MUSER_ATTR_RESTARTS emulators attached after the first, and
 * MUSER_ATTR_LAST_ERROR is the errno of the last failed one (0: none).
 */
enum muser_attr {
	MUSER_ATTR_UNSPEC,
	MUSER_ATTR_PAD,
	MUSER_ATTR_UUID,		/* string, 36 characters */
	MUSER_ATTR_STATE,		/* u32, enum muser_dev_state */
	MUSER_ATTR_EMULATOR_PID,	/* u32, 0: none attached */
	MUSER_ATTR_VMM_OPEN,		/* u32, VMM opens of the VFIO device */
	MUSER_ATTR_PINNED_PAGES,	/* u64 */
	MUSER_ATTR_MAPPED_PAGES,	/* u64, pinned pages the emulator holds */
	MUSER_ATTR_REQUESTS,		/* u64 */
	MUSER_ATTR_REQUESTS_FAILED,	/* u64 */
	MUSER_ATTR_RESTARTS,		/* u32 */
	MUSER_ATTR_LAST_ERROR,		/* u32 */
	MUSER_ATTR_EVENT,		/* u32, enum muser_event */
	MUSER_ATTR_IOVA,		/* u64 */
	MUSER_ATTR_SIZE,		/* u64 */
	MUSER_ATTR_DEVMEM_PAGES,	/* u64, device memory allocated */
	MUSER_ATTR_DEVMEM_BUDGET,	/* u64, most pages of it */
	MUSER_ATTR_REQUESTS_POSTED,	/* u64, posted writes queued */
	MUSER_ATTR_WAITS_SPUN,		/* u64, answers a VMM thread spun for */
	MUSER_ATTR_WAITS_SLEPT,		/* u64, answers it slept for */
	MUSER_ATTR_ANSWERS_RING,	/* u64, answers taken from a ring */
	MUSER_ATTR_ANSWERS_SYSCALL,	/* u64, answers write() gave */
	__MUSER_ATTR_MAX,
};

#define MUSER_ATTR_MAX	(__MUSER_ATTR_MAX - 1)

/* MUSER_ATTR_STATE */
enum muser_dev_state {
	MUSER_DEV_NEW,		/* no emulator has attached yet */
	MUSER_DEV_ATTACHED,	/* an emulator serves it */
	MUSER_DEV_WAITING,	/* its emulator went: requests wait */
	MUSER_DEV_REMOVING,	/* the mdev is being removed */
};

enum muser_event {
	MUSER_EVENT_CREATED = 1,
	MUSER_EVENT_REMOVED,
	MUSER_EVENT_EMULATOR_ATTACHED,
	MUSER_EVENT_EMULATOR_DETACHED,
	MUSER_EVENT_VMM_OPENED,
	MUSER_EVENT_VMM_CLOSED,
	MUSER_EVENT_DMA_UNMAPPED,
};

#endif /* _UAPI_LINUX_MUSER_H */
