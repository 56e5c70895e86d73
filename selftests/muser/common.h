/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the muser selftests, the one header tests include. A
 * section per topic, each implemented in the file it names: sysfs and mdev
 * management (mdev.c), the module (module.c), kernel memory (kmem.c), time
 * (wait.c), a VFIO client doing what a VMM does (vmm.c), the sample process
 * (sample.c), a raw emulator speaking the uapi of <linux/muser.h> directly
 * (emu.c, its request ring emu_ring.c, its thread emu_thread.c) and the
 * kernel log check (kmsg.c).
 *
 * Every function returns 0 (or a count) on success and -errno on failure
 * unless stated otherwise; none of them exits.
 */
#ifndef MUSER_SELFTEST_COMMON_H
#define MUSER_SELFTEST_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/vfio.h>
#include <linux/muser.h>

#define MDEV_TYPE_DIR	"/sys/class/muser/muser/mdev_supported_types/muser-1"
#define MDEV_BUS_DIR	"/sys/bus/mdev/devices"
#define MUSER_PARAM_DIR	"/sys/module/muser/parameters"


#define UUID_LEN	36

/* The sample's identity (samples/gpio-pci-idio-16.c). */
#define SAMPLE_VENDOR	0x494F
#define SAMPLE_DEVICE	0x0DC8
#define SAMPLE_BAR2_SIZE 0x100

/* --- sysfs / mdev: mdev.c --- */
int sysfs_write(const char *path, const char *s);
int sysfs_read(const char *path, char *buf, size_t len);
int sysfs_read_long(const char *path, long *val);
int param_get(const char *name, long *val);
int param_set(const char *name, long val);
void uuid_gen(char uuid[UUID_LEN + 1]);
/* Create an mdev with a fresh UUID, written to @uuid. */
int mdev_create(char uuid[UUID_LEN + 1]);
int mdev_create_uuid(const char *uuid);
int mdev_remove(const char *uuid);
bool path_exists(const char *path);
/* Wait until @path exists (@want true) or is gone; 0 or -ETIMEDOUT. */
int wait_path(const char *path, bool want, int timeout_ms);
/* Is the muser module loaded (its class exists)? */
bool muser_loaded(void);

/* --- the module itself: module.c --- */
/* Where muser.ko is: $MUSER_KO, else build/kmod/$(uname -r)/muser.ko. */
const char *muser_ko_path(char *buf, size_t len);
/* finit_module(2) of muser_ko_path() with @params ("": the defaults). */
int muser_module_load(const char *params);
/*
 * delete_module(2) of muser with O_NONBLOCK: 0, or -EWOULDBLOCK while
 * something holds the module, -ENOENT if it is not loaded.
 */
int muser_module_unload(void);
/* /sys/module/muser/refcnt, or -1 if the module is not loaded. */
long muser_module_refcnt(void);

/* --- kernel memory figures, for leak checks: kmem.c --- */
struct kmem_cache_count {
	char name[48];
	long objects;
};

/**
 * struct kmem_snap - what the kernel has allocated, at one moment.
 * @caches, @nr: objects in use per slab cache (/proc/slabinfo, exact
 *           under slub_debug, which disables the per-cpu slabs)
 * @objects: their sum, plus @kfence
 * @kfence:  KFENCE objects allocated (they are in no cache), 0 if unknown
 * @slab_kb, @sunreclaim_kb: /proc/meminfo Slab and SUnreclaim
 * @nr_slab_unreclaimable, @nr_mlock: /proc/vmstat, pages
 * @foll_pins: pages pinned with FOLL_PIN (nr_foll_pin_acquired - released)
 * @other_kb: memory the kernel holds outside free memory, the page and
 *           anon LRUs, slab, stacks, page tables, vmalloc, percpu and the
 *           per-cpu free lists: pages drivers allocate directly
 */
struct kmem_snap {
	struct kmem_cache_count *caches;
	int nr;
	long objects;
	long kfence;
	long slab_kb, sunreclaim_kb;
	long nr_slab_unreclaimable, nr_mlock;
	long foll_pins;
	long other_kb;
};

/*
 * Drop clean caches, let RCU callbacks run, and take a snapshot (free it
 * with kmem_snap_free()). Returns 0 or -errno.
 */
int kmem_snapshot(struct kmem_snap *s);
void kmem_snap_free(struct kmem_snap *s);
/*
 * Print @a and @b side by side, and the @top caches whose object counts
 * changed most; returns @b's objects minus @a's.
 */
long kmem_report(const struct kmem_snap *a, const struct kmem_snap *b,
		 int top);
/* Print /proc/TID/stack and wchan of a task (root only), "# "-prefixed. */
void print_kernel_stack(pid_t tid);

/* --- time: wait.c --- */
int64_t now_ms(void);
void sleep_ms(int ms);
/* Wait until *@flag is set (acquire) or @timeout_ms passed: is it set? */
bool wait_flag(volatile int *flag, int timeout_ms);
/* poll() @fd for POLLIN once: its revents, 0 on timeout, or -errno. */
int poll_in(int fd, int timeout_ms);

/* --- a device's DMA counters, /sys/bus/mdev/devices/UUID/dma/NAME: mdev.c --- */
/* The value, or -1 if it cannot be read. */
long dma_stat(const char *uuid, const char *name);
int dma_stat_set(const char *uuid, const char *name, long val);

/* --- the VFIO client (a VMM): vmm.c --- */
struct vfio_client {
	int container;
	int group;
	int device;
	void *dma;		/* anonymous memory mapped for DMA at iova 0 */
	size_t dma_size;
};

#define DMA_SIZE	(2UL << 20)

void vfio_client_init(struct vfio_client *c);
/* /dev/vfio/N, the group of the mdev @uuid, into @out. */
int vfio_group_path(const char *uuid, char *out, size_t len);
/*
 * Container, group, TYPE1v2, MAP_DMA of 2 MiB at iova 0, device fd.
 * On failure returns -errno and, if @step is not NULL, the name of the
 * step that failed.
 */
int vfio_client_open(struct vfio_client *c, const char *uuid,
		     const char **step);
void vfio_client_close(struct vfio_client *c);
/* pread/pwrite of a region; returns bytes or -errno. */
ssize_t region_read(struct vfio_client *c, int idx, uint64_t off,
		    void *buf, size_t len);
ssize_t region_write(struct vfio_client *c, int idx, uint64_t off,
		     const void *buf, size_t len);
int get_region_info(int device, int idx, struct vfio_region_info *ri);
int get_irq_info(int device, int idx, struct vfio_irq_info *ii);
/* SET_IRQS ACTION_TRIGGER DATA_EVENTFD on one vector; fd -1 tears down. */
int set_irq_eventfd(int device, int idx, int vector, int fd);
/* Wait for an eventfd to fire; returns its count, 0 on timeout, -errno. */
int64_t eventfd_wait(int efd, int timeout_ms);

/* --- the sample emulator process: sample.c --- */
/*
 * The config/BAR check that the "tests bite" test relies on: reads the
 * sample's IDs from config space and the BAR2 counter. Returns the number of
 * mismatches (0 = the device behaves like the sample), or -errno if an
 * access failed. Mismatches are described on stderr.
 */
int check_sample_device(struct vfio_client *c);

struct sample_proc {
	pid_t pid;
	int out;		/* its stdout, read for "ready" */
};

const char *sample_path(void);
/*
 * Start the sample for @uuid, wait (at most @timeout_ms) for it to print
 * "ready". Extra arguments come from the environment variable
 * MUSER_SAMPLE_ARGS (space separated), which is how the "tests bite" test
 * starts it in its wrong-reply mode.
 */
int sample_start(struct sample_proc *p, const char *uuid, int timeout_ms);
/* SIGTERM, then SIGKILL after a second; returns the wait status or -errno. */
int sample_stop(struct sample_proc *p);

/* --- the raw emulator: emu.c --- */
/* A layout: BAR0 0x1000 RW, BAR2 0x10000 RW, config 256, INTx 1, MSI 1. */
void layout_default(struct muser_device_info *info);
int ctl_open(const char *uuid, int flags);
int ctl_attach(int ctl, const struct muser_device_info *info);

/* --- nl.c: the device's figures over generic netlink --- */
struct nl_figures {
	uint32_t state, last_error;
	uint64_t pinned, mapped, devmem_pages, devmem_budget;
	uint64_t requests, failed, posted, spun, slept;
	/* Answers taken from a request ring, and given by write(). */
	uint64_t answers_ring, answers_syscall;
	bool has_devmem, has_answers;
};

/* A socket bound to the "muser" family (*@family): fd or -errno. */
int nl_open(int *family);
/* MUSER_CMD_GET_DEVICE of @uuid into @f: 0 or -errno. */
int nl_get_device(int fd, int family, const char *uuid, struct nl_figures *f);
/* A dump of every device: how many there are, or -errno. */
int nl_dump_count(int fd, int family);
/* nl_get_device() on a socket of its own. */
int nl_figures(const char *uuid, struct nl_figures *f);

/*
 * Most requests one read() returns: muser.ko stages at most 4 times
 * MUSER_READ_BUF_MIN bytes, and a request is at least its header.
 */
#define EMU_READ_MAX	(4 * MUSER_READ_BUF_MIN / sizeof(struct muser_req))

/* One parsed request with its data (WRITE). */
struct emu_req {
	struct muser_req hdr;
	uint8_t data[MUSER_MAX_DATA];
};

/*
 * read() the control node once and parse every request it returned into
 * @reqs (at most @max). Returns the number of requests or -errno.
 */
int emu_read(int ctl, struct emu_req *reqs, int max);
/* Like emu_read, but poll at most @timeout_ms first; 0 on timeout. */
int emu_read_timeout(int ctl, struct emu_req *reqs, int max, int timeout_ms);
/* Read exactly one request, waiting at most @timeout_ms: 1, 0, or -errno. */
int emu_read_one(int ctl, struct emu_req *r, int timeout_ms);
/*
 * Read until @want requests are in @reqs (each read waiting at most
 * @timeout_ms): how many came, or -errno.
 */
int emu_read_n(int ctl, struct emu_req *reqs, int want, int timeout_ms);
/* write() one reply; returns write()'s result or -errno. */
ssize_t emu_reply(int ctl, uint64_t id, int32_t error, const void *data,
		  uint32_t len);
/* The byte a well-behaved raw emulator returns at (region, offset). */
uint8_t emu_pattern(uint32_t region, uint64_t off);

/* --- the request ring, emulator side: emu_ring.c --- */
/**
 * struct emu_ring - a control node's request ring, set up and mapped.
 * @ctl:     the control node it belongs to
 * @setup:   what MUSER_IOC_RING_SETUP returned
 * @hdr, @sq, @cq: the mapping's parts (@hdr NULL: not mapped)
 * @popped, @entered: requests taken from the SQ, RING_ENTERs made
 */
struct emu_ring {
	int ctl;
	uint32_t entries;
	struct muser_ring_setup setup;
	struct muser_ring_hdr *hdr;
	struct muser_ring_sqe *sq;
	struct muser_ring_cqe *cq;
	unsigned long popped, entered;
};

/* MUSER_IOC_RING_SETUP with @s as it is (no defaults): 0 or -errno. */
int emu_ring_setup_raw(int ctl, struct muser_ring_setup *s);
/* Set up a ring of @entries on @ctl and map all of it. */
int emu_ring_open(struct emu_ring *r, int ctl, uint32_t entries);
/* Unmap it (the ring stays with the file until its last close). */
void emu_ring_close(struct emu_ring *r);
uint32_t emu_ring_kflags(const struct emu_ring *r);
/* SQ entries the kernel produced that we have not taken. */
uint32_t emu_ring_pending(const struct emu_ring *r);
/* Take the next SQ entry into @req: 1, 0 if the SQ is empty, -EPROTO. */
int emu_ring_pop(struct emu_ring *r, struct emu_req *req);
/* emu_ring_pop(), polling at most @timeout_ms for an entry. */
int emu_ring_pop_wait(struct emu_ring *r, struct emu_req *req, int timeout_ms);
/* Fill a CQ entry (@len bytes of @data, at most MUSER_RING_DATA copied). */
void emu_ring_cqe(struct muser_ring_cqe *c, uint64_t id, int32_t error,
		  const void *data, uint32_t len);
/* Put @c, as it is, in the CQ and publish cq_tail: 0 or -ENOSPC. */
int emu_ring_post(struct emu_ring *r, const struct muser_ring_cqe *c);
/* MUSER_IOC_RING_ENTER, whatever kflags says. */
int emu_ring_enter(struct emu_ring *r);
/* After posting: a full barrier, RING_ENTER if WAKEUP is set: 1, 0, -errno. */
int emu_ring_kick(struct emu_ring *r);
/*
 * Answer through the CQ as a well-behaved emulator does: post (entering
 * once if the CQ is full), then kick. 0, -E2BIG (@len does not fit),
 * -ENOSPC or -errno.
 */
int emu_ring_answer(struct emu_ring *r, uint64_t id, int32_t error,
		    const void *data, uint32_t len);
/* Wait at most @timeout_ms until the kernel took every CQ entry. */
int emu_ring_wait_taken(struct emu_ring *r, int timeout_ms);

/*
 * A background raw emulator (emu_thread.c): answers READ with emu_pattern() data, WRITE and
 * RESET with success, until stopped. It waits for requests in poll(), or,
 * started with EMU_THREAD_SPIN, spins on read() of the O_NONBLOCK control
 * node (a polling emulator: no sleep, one CPU busy).
 * With a request ring (emu_thread_start_ring(), EMU_THREAD_RING) it sets
 * one up on @ctl (which must have none: a file has one ring for good),
 * takes requests from the SQ and read()s only when the kernel flags
 * MUSER_RING_F_READ, BROKEN or RETIRED; it answers through the
 * CQ what fits (RING_ENTER once a batch, when WAKEUP says so), the rest by
 * write(). Spinning, it polls the SQ without a system call.
 */
struct emu_thread {
	pthread_t thread;
	int ctl;
	int stop;		/* eventfd */
	unsigned int flags;	/* EMU_THREAD_* */
	volatile int stopping;	/* what a spinning thread checks */
	bool running;
	volatile int nr_read, nr_write, nr_reset, nr_replayed, nr_irq_state,
		nr_dma_unmap, nr_vmm_close, errors;
	/* Data bytes of the READs answered and of the WRITEs taken. */
	volatile long bytes_read, bytes_written;
	/* Ring mode: requests taken from the SQ, answers put in the CQ. */
	struct emu_ring ring;
	volatile long nr_ring, nr_cqe;
	bool to_kick;
};

#define EMU_THREAD_SPIN	(1u << 0)
#define EMU_THREAD_RING	(1u << 1)	/* emu_thread_start_ring() sets it */
#define EMU_RING_ENTRIES	64	/* emu_thread_start_ring()'s default */

int emu_thread_start(struct emu_thread *t, int ctl);
int emu_thread_start_flags(struct emu_thread *t, int ctl, unsigned int flags);
/* With a ring of @entries (0: EMU_RING_ENTRIES), @flags EMU_THREAD_SPIN or 0. */
int emu_thread_start_ring(struct emu_thread *t, int ctl, unsigned int flags,
			  uint32_t entries);
void emu_thread_stop(struct emu_thread *t);

/*
 * A VFIO access done from another thread (vmm.c), so that the test's main thread can
 * play the emulator.
 */
struct async_access {
	pthread_t thread;
	struct vfio_client *c;
	int region;
	uint64_t off;
	size_t len;
	bool write;
	uint8_t buf[2 * MUSER_MAX_DATA];
	ssize_t ret;		/* bytes or -errno */
	int64_t elapsed_ms;
	volatile int done;
};

int async_start(struct async_access *a, struct vfio_client *c, int region,
		uint64_t off, size_t len, bool write);
/* Join; returns a->ret. */
ssize_t async_join(struct async_access *a);

/* --- interrupts and device memory: vmm.c (VMM side), emu.c --- */
/*
 * VFIO_DEVICE_SET_IRQS with @count elements of @data following the header:
 * int32_t fds for DATA_EVENTFD, uint8_t for DATA_BOOL, nothing for
 * DATA_NONE (@data may then be NULL).
 */
int vfio_set_irqs(int device, uint32_t flags, uint32_t index, uint32_t start,
		  uint32_t count, const void *data);
/* MUSER_IOC_TRIGGER_IRQ. */
int emu_trigger_irq(int ctl, uint32_t index, uint32_t start, uint32_t count);
/* MUSER_IOC_GET_IRQ_STATE into @st (zeroed first). */
int emu_get_irq_state(int ctl, uint32_t index, struct muser_irq_state *st);
/* Is vector @v set in a struct muser_irq_state's bitmap? */
bool irq_state_enabled(const struct muser_irq_state *st, uint32_t v);
/*
 * mmap() @len bytes of @fd at @offset, read-write, with @flags (MAP_SHARED
 * normally). Returns the address, or NULL with errno set.
 */
void *map_fd(int fd, uint64_t offset, size_t len, int flags);

/* --- dmesg: kmsg.c --- */
/*
 * Open /dev/kmsg positioned at its end and log "muser-selftest: START name".
 * Returns the fd or -errno.
 */
int kmsg_start(const char *name);
/*
 * Read what the kernel logged since kmsg_start() (or the last call) on @fd:
 * the number of records containing @needle.
 */
int kmsg_count(int fd, const char *needle);
/*
 * Read what the kernel logged since kmsg_start(); print and count lines
 * matching selftests/kernel-log-bad, plus one if that list cannot be read
 * (or has a bad pattern). Logs "muser-selftest: END name" and closes the
 * fd. Returns the count.
 */
int kmsg_check(int fd, const char *name);
/*
 * The list of bad kernel-log lines: $MUSER_SELFTESTS_DIR/kernel-log-bad,
 * else the source tree's selftests/kernel-log-bad.
 */
const char *kmsg_bad_path(char *buf, size_t len);
/* Does @msg match a line of that list? 1 or 0, -errno if it is unreadable. */
int kmsg_is_bad(const char *msg);
/* Drop the compiled list: the next check reads kmsg_bad_path() again. */
void kmsg_bad_forget(void);

/*
 * MUSER_IOC_TAKEOVER of @ctl with @info from a thread (emu.c)
 * (pthread_create(.., emu_takeover_fn, arg)): it returns only once the old
 * emulator has answered, which the test may be playing. Result in @ret
 * (0 or -errno), then @done is set.
 */
struct emu_takeover {
	pthread_t thread;
	int ctl;
	const struct muser_device_info *info;
	int ret;
	volatile int done;
};
void *emu_takeover_fn(void *arg);

/* VFIO_DEVICE_RESET on @fd from a thread (pthread_create(.., reset_fn, arg); vmm.c),
 * while the test answers as the emulator; the result lands in @ret.
 */
struct reset_arg {
	pthread_t thread;
	int fd;
	int ret;
};
void *reset_fn(void *arg);

#endif
