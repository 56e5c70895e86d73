/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fixture layer of the muser selftests: a device with an emulator and
 * a VMM, set up the way most tests need it, and the calls tests make, each
 * in three forms, in the style of tools/testing/selftests/iommu/
 * iommufd_utils.h:
 *
 *   _test_x(...)        returns 0 (or a value) or -errno; never asserts
 *   test_x(...)         ASSERT_EQ(0, _test_x(...)), in a harness test
 *   test_err_x(E, ...)  ASSERT_EQ(-E, _test_x(...))
 *
 * Needs the harness (harness.h) included first for the test_ forms.
 */
#ifndef MUSER_SELFTEST_FIXTURE_H
#define MUSER_SELFTEST_FIXTURE_H

#include <stdarg.h>

#include "common.h"

#define RIG_MAPS	16

/**
 * struct rig - one mdev, its emulator's control node and a VMM.
 * @uuid:    the mdev
 * @created: the mdev exists (rig_teardown() removes it)
 * @kmsg:    kmsg_start() of the test; rig_teardown() checks the log
 * @ctl:     the control node, attached with @layout unless RIG_DETACHED
 * @layout:  what the rig attached with
 * @c:       the VMM (container, group, 2 MiB of DMA at iova 0, device),
 *           open unless RIG_NO_VMM
 * @saved_timeout: timeout_ms before rig_set_timeout(), -1 if unchanged;
 *           rig_teardown() puts it back
 * @saved_spin_us: spin_us before rig_set_spin_us(), likewise
 * @name:    the test's, for the kernel log check
 * @emu:     the emulator process of rig_start_emulator(), pid -1 if none
 * @maps, @map_len, @nr_maps: rig_map()'s mappings
 */
struct rig {
	char uuid[UUID_LEN + 1];
	bool created;
	int kmsg;
	int ctl;
	struct muser_device_info layout;
	struct vfio_client c;
	long saved_timeout;
	long saved_spin_us;
	const char *name;
	struct sample_proc emu;
	void *maps[RIG_MAPS];
	size_t map_len[RIG_MAPS];
	int nr_maps;
};

#define RIG_NONBLOCK	(1u << 0)	/* the control node is O_NONBLOCK */
#define RIG_DETACHED	(1u << 1)	/* open the control node, no attach */
#define RIG_NO_VMM	(1u << 2)	/* no VFIO client */
#define RIG_NO_CTL	(1u << 3)	/* no control node: the emulator is
					 * another process or libmuser */

/* Nothing open: what rig_teardown() may always be called on. */
void rig_init(struct rig *r);
/*
 * Create an mdev, open and attach its control node with @layout (NULL:
 * layout_default()), open it as a VMM; drains nothing. Returns 0 or -errno
 * with *@step naming what failed.
 */
int rig_setup(struct rig *r, const char *name,
	      const struct muser_device_info *layout, unsigned int flags,
	      const char **step);
/* Open the VMM side of a rig set up with RIG_NO_VMM. */
int rig_open_vmm(struct rig *r, const char **step);
/*
 * Start @path (NULL: the sample, or $MUSER_SAMPLE) for the rig's mdev with
 * the space separated arguments @args (NULL: $MUSER_SAMPLE_ARGS) and wait
 * until it serves; rig_teardown() stops it. Returns 0 or -errno.
 */
int rig_start_emulator(struct rig *r, const char *path, const char *args);
/*
 * mmap() @len bytes of @region of @fd (the control node or the VFIO
 * device) at @off, MAP_SHARED; rig_teardown() unmaps what rig_unmap()
 * did not. NULL with errno set on failure.
 */
void *rig_map(struct rig *r, int fd, int region, uint64_t off, size_t len);
void rig_unmap(struct rig *r, volatile void *p);
/*
 * Unmap rig_map()'s areas, close the VMM, check that nothing stays pinned,
 * close the control node, stop the emulator process (which must exit
 * cleanly), remove the mdev, restore timeout_ms and check the kernel log.
 * Returns the number of problems, described on stderr.
 */
int rig_teardown(struct rig *r);
/*
 * Set the module parameter timeout_ms for the test (a low one bounds how
 * long a VMM access may wait); rig_teardown() restores the old value.
 */
int rig_set_timeout(struct rig *r, long ms);
/* The same for spin_us (0: a waiting VMM thread sleeps at once). */
int rig_set_spin_us(struct rig *r, long us);

#define RIG_SETUP(r, layout, flags) do {				\
	const char *_step = "?";					\
	int _ret;							\
	rig_init(r);							\
	REQUIRE_MUSER();						\
	_ret = rig_setup(r, _metadata->name, layout, flags, &_step);	\
	ASSERT_EQ(0, _ret) TH_LOG("%s: %s", _step, strerror(-_ret));	\
} while (0)

/* Open the VMM of a rig set up with RIG_NO_VMM, in a harness test. */
#define test_rig_open_vmm(r) do {					\
	const char *_step = "?";					\
	int _ret = rig_open_vmm(r, &_step);				\
	ASSERT_EQ(0, _ret) TH_LOG("%s: %s", _step, strerror(-_ret));	\
} while (0)

#define RIG_TEARDOWN(r)							\
	EXPECT_EQ(0, rig_teardown(r)) TH_LOG("teardown found problems, see above")

/* --- the emulator's requests --- */
/*
 * Wait at most @timeout_ms for the one request that needs a reply (id not
 * 0), skipping posted notices. Returns 1 with it in @r, 0 on timeout,
 * -EPROTO if a second one came with it (it would be lost), or -errno.
 */
int emu_next_request(int ctl, struct emu_req *r, int timeout_ms);

/*
 * A libmuser BAR callback (muser_setup_bar()) of a device that does
 * nothing: reads return zeroes, writes are taken.
 */
struct muser_dev;
ssize_t lib_bar_zero_cb(struct muser_dev *dev, void *priv, void *buf,
			size_t count, uint64_t offset, bool is_write);

/* --- guest memory, emulator side (MUSER_IOC_DMA_*) --- */
int _test_dma_map(int ctl, uint64_t iova, uint64_t size, uint32_t flags,
		  uint64_t *offset);
int _test_dma_release(int ctl, uint64_t iova, uint64_t size);
int _test_dma_rw(int ctl, uint64_t iova, void *buf, uint64_t size, bool write);

#define test_dma_map(ctl, iova, size, flags) \
	ASSERT_EQ(0, _test_dma_map(ctl, iova, size, flags, NULL))
#define test_err_dma_map(err, ctl, iova, size, flags) \
	ASSERT_EQ(-(err), _test_dma_map(ctl, iova, size, flags, NULL))
#define test_dma_release(ctl, iova, size) \
	ASSERT_EQ(0, _test_dma_release(ctl, iova, size))
#define test_dma_rw(ctl, iova, buf, size, write) \
	ASSERT_EQ(0, _test_dma_rw(ctl, iova, buf, size, write))
#define test_err_dma_rw(err, ctl, iova, buf, size, write) \
	ASSERT_EQ(-(err), _test_dma_rw(ctl, iova, buf, size, write))

/* --- guest memory, VMM side (VFIO_IOMMU_MAP_DMA / UNMAP_DMA) --- */
#define VMM_RW	(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

int _test_vmm_map(struct vfio_client *c, void *vaddr, uint64_t iova,
		  uint64_t size, uint32_t flags);
int _test_vmm_unmap(struct vfio_client *c, uint64_t iova, uint64_t size);

#define test_vmm_map(c, vaddr, iova, size) \
	ASSERT_EQ(0, _test_vmm_map(c, vaddr, iova, size, VMM_RW))
#define test_vmm_unmap(c, iova, size) \
	ASSERT_EQ(0, _test_vmm_unmap(c, iova, size))

/* --- memory that may fault --- */
/* Read a byte; false if that raised SIGBUS (or SIGSEGV). */
bool touch(volatile const uint8_t *p, uint8_t *val);
/* Write a byte; false if that raised SIGBUS (or SIGSEGV). */
bool poke(volatile uint8_t *p, uint8_t val);
/*
 * @len bytes of zeroed read-write memory that end where a PROT_NONE page
 * begins, so a copy that runs past them faults; NULL on failure.
 */
uint8_t *guarded_alloc(size_t len);
void guarded_free(uint8_t *p, size_t len);

/* --- the fuzzers: seeded randomness, expected results, budget --- */
/* splitmix64: one 64-bit state, good enough and replayable. */
uint64_t rnd(uint64_t *s);
/* [0, @n), 0 if @n is 0. */
uint64_t below(uint64_t *s, uint64_t n);
bool chance(uint64_t *s, unsigned int percent);
/* A 32-bit value at an edge around @n, sometimes anything. */
uint32_t edge32(uint64_t *s, uint32_t n);
/* A 64-bit one: around @n, the powers of two and the sign bit. */
uint64_t edge64(uint64_t *s, uint64_t n);

/* The results a call may have: 0 (success) and errnos. */
struct want {
	int nr;
	int err[6];
};

#define WANT(...) ((struct want){					\
	.nr = sizeof((int[]){ __VA_ARGS__ }) / sizeof(int),		\
	.err = { __VA_ARGS__ } })

bool want_has(struct want w, int err);
void want_add(struct want *w, int err);
/* "0" or the errno's name ("EINVAL"). */
const char *errname(int err);
/* "0|EINVAL" */
char *want_str(struct want w, char *s, size_t len);

/* A checker prints this many mismatches at most; it counts them all. */
#define MAX_REPORTS	40

/*
 * Count a mismatch in *@bad (atomically) and print it, with call number
 * @at if it is >= 0.
 */
void vmiss(int *bad, long at, const char *fmt, va_list ap);
/*
 * A call returned @ret (failing with @err when negative): true if @w has
 * it, else vmiss() with the call described by @fmt.
 */
bool vjudge(int *bad, long at, struct want w, long ret, int err,
	    const char *fmt, va_list ap);

/* The number in environment variable @name, else @def. */
unsigned long long env_ull(const char *name, unsigned long long def);

/**
 * struct fuzz_budget - how long a fuzzer runs, from the environment:
 * MUSER_FUZZ_SEED (a replay), MUSER_FUZZ_CALLS (hostile calls to make;
 * 0: go by time) and MUSER_FUZZ_SECONDS.
 */
struct fuzz_budget {
	unsigned long long seed, calls, seconds;
	int64_t t0;
};

/* Read the budget (@seconds by default) and print the seed. */
void fuzz_budget_init(struct fuzz_budget *b, const char *who,
		      unsigned long long seconds);
/* The share of the budget used after @calls calls and @ms ms: >= 1 when done. */
double fuzz_done(const struct fuzz_budget *b, unsigned long calls, int64_t ms);
/* A fuzz test's timeout: a day with a call budget, else seconds + @slack. */
unsigned int fuzz_timeout(unsigned long long seconds, unsigned int slack);
/* Print what was done: the calls, their rate and each kind's count. */
void fuzz_report(const char *who, const char *const *names,
		 const unsigned long *n, int nr, unsigned long calls,
		 unsigned long ops, int64_t ms);

#endif
