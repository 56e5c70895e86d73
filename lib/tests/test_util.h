/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers for the tests that drive a device through the fake kernel:
 * region accesses as requests through muser_dispatch(), and walks of the
 * capability lists the way a guest's PCI code does.
 */
#ifndef MUSER_TEST_UTIL_H
#define MUSER_TEST_UTIL_H

#include "fake_kernel.h"

struct tctx {
	struct fake_kernel *fk;
	struct muser_dev *dev;
	uint64_t next_id;
};

/* A device with IDs set, not realized; the test adds the rest. */
void tctx_init(struct tctx *t);
void tctx_realize(struct tctx *t);
void tctx_fini(struct tctx *t);

/*
 * One access as a request through muser_dispatch(). Returns the reply's
 * error (0: success; a read's data is then in @buf).
 */
int treq(struct tctx *t, uint32_t region, uint64_t off, void *buf,
	 uint32_t len, bool is_write);
/* Little-endian accesses of 1..4 bytes that must succeed. */
uint32_t trd(struct tctx *t, uint32_t region, uint64_t off, unsigned int n);
void twr(struct tctx *t, uint32_t region, uint64_t off, unsigned int n,
	 uint32_t v);
/* A VFIO_DEVICE_RESET request; returns the reply's error. */
int treset(struct tctx *t);

#define CFG	VFIO_PCI_CONFIG_REGION_INDEX
#define cfg_rd(t, off, n)	trd(t, CFG, off, n)
#define cfg_wr(t, off, n, v)	twr(t, CFG, off, n, v)

struct cap_entry {
	unsigned int off;
	unsigned int id;	/* extended: 16-bit ID */
	unsigned int version;	/* extended only */
};

/*
 * Walk the standard list from the Capabilities Pointer, or the extended
 * list from 0x100, checking dword alignment and termination. Returns the
 * number of capabilities found (at most @max stored).
 */
unsigned int walk_caps(struct tctx *t, struct cap_entry *caps,
		       unsigned int max);
unsigned int walk_ext_caps(struct tctx *t, struct cap_entry *caps,
			   unsigned int max);

#endif /* MUSER_TEST_UTIL_H */
