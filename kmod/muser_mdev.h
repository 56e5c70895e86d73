/* SPDX-License-Identifier: GPL-2.0 */
/*
 * muser.ko internals shared between its files.
 *
 * Lock order: muser_mdev.mig.lock (held across requests to the emulator),
 * then muser_mdev.lock, then muser_mdev.irq_lock, then muser_mdev.req_lock
 * (a spinlock: nothing sleeps under it).
 */
#ifndef MUSER_MDEV_H
#define MUSER_MDEV_H

#include <linux/cdev.h>
#include <linux/completion.h>
#include <linux/list.h>
#include <linux/mdev.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/uuid.h>
#include <linux/vfio.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <linux/muser.h>

/* Region offsets in the VFIO device fd and the control node. */
#define MUSER_OFFSET_TO_INDEX(off)	((off) >> MUSER_REGION_SHIFT)
#define MUSER_OFFSET_MASK	((1ULL << MUSER_REGION_SHIFT) - 1)

/* Largest device memory budget per device (devmem_budget_mb), 1 TiB. */
#define MUSER_DEVMEM_MAX_BUDGET_MB	(1u << 20)

/*
 * Most requests a device has queued or in flight; more VMM threads wait
 * for a slot (up to timeout_ms) before they allocate anything.
 */
#define MUSER_MAX_QUEUED	256

/* Small accesses (the common case) carry their data inline. */
#define MUSER_INLINE_DATA	8

extern unsigned int muser_timeout_ms;
extern unsigned int muser_spin_us;

/* Most a VMM thread spins for an answer before it sleeps (spin_us). */
#define MUSER_SPIN_MAX_US	1000

/**
 * struct muser_wait - a request a VMM thread is waiting on. Lives on the
 * waiter's stack; the waiter never returns while it is on a list. A posted
 * write (MUSER_REQ_F_POSTED in @hdr.flags) has no waiter: it is allocated
 * (with its data, unless that fits @inline_data); whoever takes it off the
 * lists frees it, or keeps it on muser_mdev.posted_free if its data is
 * inline (muser_posted_put()).
 * @node:     on muser_mdev.pending or .inflight; a settled posted write's
 *            on .posted_free (req_lock)
 * @owner:    the emulator file that read it, while on .inflight (req_lock)
 * @done:     completed by the reply, if @sleeping
 * @hdr:      what the emulator reads; id and flags set under req_lock
 * @data:     hdr.len bytes: the payload of a write, the result of a read
 * @error:    0 or -errno, valid once @finished
 * @finished: set under req_lock when a reply (or detach) has settled it;
 *            a spinning waiter reads it locklessly as a hint
 * @sleeping: set under req_lock by a waiter that stopped spinning and
 *            found it not @finished: it sleeps on @done
 * @inline_data: @data of an access of at most MUSER_INLINE_DATA bytes; a
 *            posted write whose @data points here is kept for reuse
 */
struct muser_wait {
	struct list_head node;
	struct file *owner;
	struct completion done;
	struct muser_req hdr;
	void *data;
	int error;
	bool finished;
	bool sleeping;
	u8 inline_data[MUSER_INLINE_DATA];
};

/**
 * struct muser_ring - a request ring (ring.c), one per control file that
 * asked for one; freed with the file.
 * @file:    that file
 * @pages:   @nr_pages pages shared with the emulator (mapped on fault),
 *           charged to the memory cgroup of whoever set the ring up
 * @mem:     their kernel mapping, @size bytes: @hdr, then @sq and @cq of
 *           @mask + 1 entries each. Hostile: what the emulator writes
 *           there is read once, then validated
 *
 * md->req_lock guards:
 * @node:    on muser_mdev.rings while it may hold answers; else empty
 * @sq_tail, @cq_head: the kernel's indices; the shared ones are copies
 * @kflags:  MUSER_RING_F_*, copied to @hdr->kflags
 * @retired: the file is no longer the attached emulator: nothing enters
 */
struct muser_ring {
	struct list_head node;
	struct file *file;
	struct page **pages;
	unsigned int nr_pages;
	void *mem;
	size_t size;
	struct muser_ring_hdr *hdr;
	struct muser_ring_sqe *sq;
	struct muser_ring_cqe *cq;
	u32 mask;
	u32 sq_tail;
	u32 cq_head;
	u32 kflags;
	bool retired;
};

/**
 * struct muser_irq_ctx - eventfds the VMM set for one interrupt index.
 * @trigger: @count eventfd contexts, NULL where unset
 * @count:   vectors allocated, at most the layout's count
 */
struct muser_irq_ctx {
	struct eventfd_ctx **trigger;
	u32 count;
};

/* Unmapped ranges queued for the emulator before they collapse into one. */
#define MUSER_MAX_UNMAP_EVENTS	16

/* muser_mdev.posted: notices the emulator has to read, coalesced. */
#define MUSER_POSTED_IRQ_STATE	(1u << 0)
#define MUSER_POSTED_VMM_CLOSE	(1u << 1)
#define MUSER_POSTED_UNMAP_ALL	(1u << 2)	/* overrides @unmaps */

/*
 * A range the VMM is unmapping (struct muser_dma_fence): type1 calls
 * dma_unmap, drops its own lock, then removes the mapping only if nothing
 * is pinned in it any more, and BUG()s after ten retries. New pins of a
 * fenced range wait until the unmapping thread returns from its ioctl,
 * when type1 is done with the range.
 */
#define MUSER_DMA_FENCE_MS	100	/* a fence without a thread to wait for */

/**
 * struct muser_dma_fence - see above; on muser_dma.fences (dma.lock).
 * @iova, @size: the range, the hull of the thread's dma_unmap calls
 *           (size 0: the VMM closed the device, nothing is fenced)
 * @task:    the unmapping thread until it returns to userspace; NULL for
 *           a fence that ends at @until
 * @until:   jiffies
 * @md:      for @work
 * @work:    task_work of @task that lifts and frees the fence
 */
struct muser_dma_fence {
	struct list_head node;
	u64 iova;
	u64 size;
	struct task_struct *task;
	unsigned long until;
	struct muser_mdev *md;
	struct callback_head work;
};

/**
 * struct muser_dma - guest memory pinned for the emulator (dma.c).
 * Lock order: @lock, then @sem. vfio_pin_pages() and vfio_unpin_pages()
 * run under @lock only, never under @sem: they take the VMM's mmap_lock,
 * and an emulator fault takes @sem under its own mmap_lock.
 *
 * @lock guards:
 * @chunks:  struct muser_dma_chunk by iova >> MUSER_DMA_CHUNK_SHIFT;
 *           entries are added and removed under @sem for writing too
 * @lru:     chunks nobody holds, least recently used first
 * @pinned:  pages pinned (read locklessly for figures)
 * @mapped:  of those, pages of chunks the emulator holds (read locklessly)
 * @budget_pages: most pages pinned at once
 * @open:    a VMM has the device open, so vfio_pin_pages() may be called
 * @registered: vfio has registered the device for dma_unmap callbacks
 *           since it was opened (see muser_dma_wait_registered())
 * @fences:  ranges the VMM is unmapping, where pins wait
 * @fences_until: all of guest memory is fenced until then (jiffies), when
 *           no fence could be allocated
 * @fence_seq: bumped when a fence is lifted, waking @fence_wq
 * @evictions: chunks unpinned for the budget (sysfs)
 *
 * @sem:     held for reading by emulator faults and copies that look pins
 *           up, for writing to change them; it orders zap before unpin
 */
struct muser_dma {
	struct mutex lock;		/* see above */
	struct xarray chunks;
	struct list_head lru;
	unsigned long pinned;
	unsigned long mapped;
	unsigned long budget_pages;
	bool open;
	bool registered;
	struct list_head fences;
	unsigned long fences_until;
	unsigned long fence_seq;
	wait_queue_head_t fence_wq;	/* pins waiting for a fence */
	unsigned long evictions;
	struct rw_semaphore sem;	/* see above */
};

/**
 * struct muser_mig - migration v2 (migration.c).
 * @region:     VFIO index of the emulator's migration region, 0 if none;
 *              set with the layout (muser_mdev.lock), while no VMM has the
 *              device open
 * @abort:      resets and closes waiting for @lock: data fd accesses stop
 *
 * @lock guards (held across the requests a state change or a data fd
 * access makes):
 * @state:      the v2 state, enum vfio_device_mig_state (also read
 *              locklessly by migration_get_state)
 * @file:       the current save or resume session, NULL if none
 */
struct muser_mig {
	u32 region;
	atomic_t abort;
	struct mutex lock;		/* see above */
	u32 state;
	struct muser_mig_file *file;
};

/**
 * struct muser_mdev - one mediated device.
 * @vdev:       must be first (vfio_alloc_device); its refcount is the
 *              lifetime of this structure, and @cdev holds one reference
 * @uuid:       the mdev's UUID string, for logs that outlive the mdev
 * @node:       on the list of devices (netlink.c, its own mutex)
 * @minor:      minor of the control node
 * @cdev:       the control node /dev/muser/UUID
 * @ctl_dev:    the class device behind the control node
 * @inode:      the address space of every open control file, so mappings
 *              of the DMA window can be zapped whichever node they came by
 *
 * @lock guards:
 * @info:       the layout the emulator attached with; immutable while
 *              @open_count > 0 once @has_info is set
 * @has_info:   @info is valid (also read locklessly with acquire)
 * @open_count: VMM opens (open_device/close_device)
 * @dead:       the mdev is being removed; no new attach or request
 * @emulator_pid: the attached emulator's process, 0 if none
 * @attached_once: an emulator has attached before
 * @restarts:   emulators attached after the first
 * @attach_wq:  VMM threads waiting for a layout
 *
 * @devmem:     device memory pages, keyed by muser_devmem_key(); the
 *              xarray's own lock guards it
 * @devmem_sem: taken for writing, under @lock, to change @info, for
 *              reading by faults on device memory, which look @info up
 * @devmem_pages: pages of @devmem backing regions (the state area's are
 *              not counted), at most @devmem_budget_pages (sysfs)
 * @dma:        pinned guest memory, with its own locks
 * @mig:        migration, with its own lock
 *
 * @irq_lock guards:
 * @irqs:       per-index eventfds set by the VMM
 * @intx_masked, @intx_pending: INTx state (automasked on trigger)
 * @intx_unmask: the VMM's INTx unmask eventfd (vfio_virqfd has its own
 *              lock; never disable it under irq_lock: its thread takes it)
 *
 * @req_lock guards:
 * @emulator:   the attached control file, NULL if none (written under
 *              @lock and @req_lock, so holding either is enough to read)
 * @pending:    requests not yet read by an emulator, oldest first
 * @inflight:   requests read but not answered
 * @next_id:    id of the last request
 * @posted:     MUSER_POSTED_* notices for the emulator to read
 * @unmaps:     @nr_unmaps unmapped ranges to post as MUSER_REQ_DMA_UNMAP
 * @nr_requests, @nr_failed, @last_error: requests settled, those that
 *              failed (an error reply or a timeout), the last one's errno
 * @nr_queued:  requests on @pending or @inflight, or about to be
 * @nr_posted_out: of those, posted writes not yet acknowledged
 * @nr_posted:  posted writes queued (netlink)
 * @posted_free: waits of settled posted writes with inline data, kept for
 *              the next ones (at most MUSER_MAX_POSTED)
 * @nr_spun, @nr_slept: answers a VMM thread spun for, slept for (netlink)
 * @nr_waited:  requests a VMM thread waited for: every 16th probes the spin
 * @spin_fails: spins in a row that did not get their answer, up to
 *              MUSER_SPIN_FAILS: whether to spin (read and written
 *              locklessly, a hint)
 * @rings:      struct muser_ring that may hold answers: the attached
 *              emulator's, those of emulators a takeover waits for;
 *              @nr_rings of them (also read locklessly, as a hint)
 * @ring_sleepers: waits for answers that sleep (MUSER_RING_F_WAKEUP)
 * @ring_staging: read()s copying out requests while the emulator has a
 *              ring: nothing enters it meanwhile, ahead of them
 * @nr_answers_ring, @nr_answers_syscall: answers taken from a ring, given
 *              by write() (netlink)
 * @retiring:   takeovers waiting for the previous emulator's answers;
 *              nothing is delivered meanwhile, so the order of requests
 *              (posted writes first of all) holds across a takeover
 * @req_wq:     emulator readers and pollers
 * @slot_wq:    VMM threads waiting for @nr_queued or @nr_posted_out to
 *              drop, and the last close waiting for posted writes
 */
struct muser_mdev {
	struct vfio_device vdev;
	char uuid[UUID_STRING_LEN + 1];
	struct list_head node;
	int minor;
	struct cdev cdev;
	struct device *ctl_dev;
	struct inode *inode;

	struct mutex lock;		/* see above */
	struct muser_device_info info;
	bool has_info;
	unsigned int open_count;
	bool dead;
	pid_t emulator_pid;
	bool attached_once;
	unsigned int restarts;
	wait_queue_head_t attach_wq;

	struct xarray devmem;
	struct rw_semaphore devmem_sem;	/* see above */
	atomic_long_t devmem_pages;
	unsigned long devmem_budget_pages;
	struct muser_dma dma;
	struct muser_mig mig;

	struct mutex irq_lock;		/* see above */
	struct muser_irq_ctx irqs[MUSER_NUM_IRQS];
	bool intx_masked;
	bool intx_pending;
	struct virqfd *intx_unmask;

	spinlock_t req_lock;		/* see above */
	struct file *emulator;
	struct list_head pending;
	struct list_head inflight;
	u64 next_id;
	u32 posted;
	unsigned int nr_unmaps;
	struct muser_dma_range unmaps[MUSER_MAX_UNMAP_EVENTS];
	u64 nr_requests;
	u64 nr_failed;
	u32 last_error;
	unsigned int nr_queued;
	unsigned int nr_posted_out;
	u64 nr_posted;
	struct list_head posted_free;
	u64 nr_spun;
	u64 nr_slept;
	u64 nr_waited;
	u8 spin_fails;
	struct list_head rings;
	unsigned int nr_rings;
	unsigned int ring_sleepers;
	unsigned int ring_staging;
	u64 nr_answers_ring;
	u64 nr_answers_syscall;
	unsigned int retiring;
	wait_queue_head_t req_wq;
	wait_queue_head_t slot_wq;
};

/**
 * struct muser_ctl_file - one open file of a control node. Freed with its
 * last reference: the file's, and one per takeover waiting for it.
 * @md:       its device
 * @ref:      references
 * @holds:    DMA holds this file took, as xa_mk_value() counts by chunk
 *            index (md->dma.lock)
 * @released: the file is gone (md->req_lock): its pointer may be reused
 * @ring:     its request ring, NULL if none; set once under md->req_lock
 */
struct muser_ctl_file {
	struct muser_mdev *md;
	refcount_t ref;
	struct xarray holds;
	bool released;
	struct muser_ring *ring;
};

#define muser_mdev_err(md, fmt, ...) \
	pr_err_ratelimited("%s: " fmt, (md)->uuid, ##__VA_ARGS__)
#define muser_mdev_info(md, fmt, ...) \
	pr_info("%s: " fmt, (md)->uuid, ##__VA_ARGS__)

static inline struct muser_mdev *vdev_to_muser(struct vfio_device *vdev)
{
	return container_of(vdev, struct muser_mdev, vdev);
}

/* The mdev's struct device, as sysfs attributes get it. */
static inline struct muser_mdev *dev_to_muser(struct device *dev)
{
	return dev_get_drvdata(dev);
}

/* Regions the VMM sees: the vfio-pci ones, then the device-specific ones. */
static inline u32 muser_vmm_regions(const struct muser_device_info *info)
{
	return info->num_dev_regions ?
	       MUSER_NUM_REGIONS + info->num_dev_regions : info->num_regions;
}

/* A region by its VFIO index, NULL if the VMM does not see it. */
static inline const struct muser_region *
muser_region(const struct muser_device_info *info, u32 index)
{
	if (index >= muser_vmm_regions(info))
		return NULL;
	if (index < MUSER_NUM_REGIONS)
		return &info->regions[index];
	return &info->dev_regions[index - MUSER_NUM_REGIONS].region;
}

static inline bool muser_is_mig_region(const struct muser_dev_region *d)
{
	return d->type == VFIO_REGION_TYPE_MIGRATION_DEPRECATED &&
	       d->subtype == VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED;
}

/* main.c: the budget_mb attributes of dma/ and devmem/, in MiB of pages. */
ssize_t muser_budget_mb_show(char *buf, unsigned long pages);
int muser_budget_mb_parse(const char *buf, unsigned int min_mb,
			  unsigned int max_mb, unsigned long *pages);

/* main.c */
extern struct class *muser_class;
extern dev_t muser_devt;

/* layout.c */
void muser_irq_layout(const struct muser_device_info *info, unsigned int index,
		      u32 *flags, u32 *count);
int muser_layout_validate(struct muser_mdev *md,
			  const struct muser_device_info *info);
bool muser_layout_ready(struct muser_mdev *md);
const struct muser_device_info *muser_wait_layout(struct muser_mdev *md);

/* devmem.c */
extern unsigned int muser_devmem_budget_mb;
extern const struct attribute_group muser_devmem_group;
void muser_devmem_init(struct muser_mdev *md);
void muser_devmem_set_layout(struct muser_mdev *md,
			     const struct muser_device_info *info);
const struct muser_mmap_area *muser_area_at(const struct muser_device_info *info,
					    u32 index, u64 off, u64 *avail);
ssize_t muser_devmem_rw(struct muser_mdev *md, u32 index, u64 off,
			char __user *buf, size_t len, bool write);
int muser_devmem_mmap(struct muser_mdev *md,
		      const struct muser_device_info *info,
		      struct vm_area_struct *vma, bool vmm);
int muser_state_mmap(struct muser_mdev *md, struct vm_area_struct *vma);
int muser_region_caps(const struct muser_device_info *info, u32 index,
		      struct vfio_info_cap *caps);
void muser_devmem_free(struct muser_mdev *md);

/* request.c */
int muser_request_slot(struct muser_mdev *md);
void muser_request_unslot(struct muser_mdev *md);
int muser_request(struct muser_mdev *md, struct muser_wait *w);
int muser_request_posted(struct muser_mdev *md, u32 index, u64 off,
			 const char __user *buf, u32 len);
void muser_posted_free(struct muser_mdev *md);
void muser_posted_flush(struct muser_mdev *md);
ssize_t muser_deliver(struct muser_mdev *md, struct file *file,
		      char __user *buf, size_t count);
ssize_t muser_complete(struct muser_mdev *md, struct file *file,
		       const char __user *buf, size_t count);
/* What muser_answer_locked() found waiting, for muser_answer_wake(). */
#define MUSER_WAKE_TAKEOVER	(1u << 0)
#define MUSER_WAKE_SLOT		(1u << 1)
int muser_answer_locked(struct muser_mdev *md, struct file *file,
			const struct muser_reply *r, const void *data,
			bool ring, unsigned int *wake);
void muser_answer_wake(struct muser_mdev *md, unsigned int wake);
bool muser_owns_inflight_locked(struct muser_mdev *md, struct file *file);
void muser_wake_emulator(struct muser_mdev *md);
void muser_requeue_inflight(struct muser_mdev *md, struct file *file);
bool muser_owns_inflight(struct muser_mdev *md, struct file *file);
void muser_post(struct muser_mdev *md, u32 posted);
void muser_post_dma_unmap(struct muser_mdev *md, u64 iova, u64 size);
bool muser_has_requests(struct muser_mdev *md);

/* ring.c */
void muser_ring_sync(struct muser_mdev *md);
void muser_ring_sync_flags(struct muser_mdev *md);
bool muser_ring_live(struct muser_mdev *md);
bool muser_ring_holds_back(struct muser_mdev *md, struct file *file);
unsigned int muser_ring_reap(struct muser_mdev *md);
void muser_ring_poll(struct muser_mdev *md);
void muser_ring_wait_begin(struct muser_mdev *md);
void muser_ring_wait_begin_locked(struct muser_mdev *md);
void muser_ring_wait_end(struct muser_mdev *md);
void muser_ring_wait_end_locked(struct muser_mdev *md);
bool muser_ring_has_requests(struct file *file);
void muser_ring_retire(struct muser_mdev *md, struct file *file, bool drained);
void muser_ring_forget(struct muser_mdev *md, struct file *file);
int muser_ring_setup(struct muser_mdev *md, struct file *file,
		     void __user *arg);
int muser_ring_enter(struct muser_mdev *md, struct file *file);
int muser_ring_mmap(struct muser_mdev *md, struct file *file,
		    struct vm_area_struct *vma);
void muser_ring_release(struct muser_mdev *md, struct file *file);

/* dma.c */
extern unsigned int muser_dma_budget_mb;
extern const struct attribute_group muser_dma_group;
void muser_dma_init(struct muser_mdev *md);
void muser_dma_destroy(struct muser_mdev *md);
void muser_dma_open(struct muser_mdev *md);
void muser_dma_close(struct muser_mdev *md);
void muser_dma_guest_unmapped(struct muser_mdev *md, u64 iova, u64 size);
int muser_ctl_dma_map(struct muser_mdev *md, struct file *file, void __user *arg);
int muser_dma_release(struct muser_mdev *md, struct file *file,
		      void __user *arg);
int muser_dma_rw(struct muser_mdev *md, struct file *file, void __user *arg);
int muser_dma_mmap(struct muser_mdev *md, struct vm_area_struct *vma);
void muser_dma_drop_holds(struct muser_mdev *md, struct muser_ctl_file *cf,
			  const struct file *file);
void muser_dma_revoke_window(struct muser_mdev *md);

/* ctl.c */
int muser_ctl_create(struct muser_mdev *md, struct device *parent);
void muser_ctl_destroy(struct muser_mdev *md);
void muser_inode_destroy(struct muser_mdev *md);
int muser_ctl_init(void);
void muser_ctl_exit(void);

/* irq.c */
int muser_irq_info(struct muser_mdev *md, unsigned long arg);
int muser_set_irqs(struct muser_mdev *md, unsigned long arg);
int muser_ctl_irq_trigger(struct muser_mdev *md, unsigned long arg);
int muser_irq_get_state(struct muser_mdev *md, unsigned long arg);
void muser_irq_request(struct muser_mdev *md, unsigned int count);
void muser_irq_release_all(struct muser_mdev *md);

/* netlink.c */
int muser_nl_init(void);
void muser_nl_exit(void);
void muser_nl_add_device(struct muser_mdev *md);
void muser_nl_del_device(struct muser_mdev *md);
void muser_nl_event(struct muser_mdev *md, u32 event, u32 pid, u64 iova,
		    u64 size);

/* migration.c */
struct muser_mig_file;
void muser_mig_init(struct muser_mdev *md);
void muser_mig_destroy(struct muser_mdev *md);
void muser_mig_set_layout(struct muser_mdev *md,
			  const struct muser_device_info *info);
void muser_mig_reset(struct muser_mdev *md);
int muser_mig_get_data_size(struct vfio_device *vdev, unsigned long *len);
int muser_mig_device_feature(struct vfio_device *vdev, u32 flags,
			     void __user *arg, size_t argsz);

/* vfio.c */
extern const struct vfio_device_ops muser_vfio_ops;
int muser_request_rw(struct muser_mdev *md, u32 index, u64 off, void *data,
		     u32 len, bool write);

#endif /* MUSER_MDEV_H */
