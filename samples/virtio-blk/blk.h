/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk requests (virtio 1.x, 5.2.6) on a backing file. Pure logic
 * over iovecs: no libmuser, so it is unit-tested with ordinary buffers
 * (tests/test_blk.c). The iovecs point straight into mapped guest memory:
 * preadv/pwritev move the data between the file and the guest (zero copy).
 */
#ifndef VBLK_BLK_H
#define VBLK_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <linux/virtio_blk.h>

#define BLK_SECTOR		512
#define BLK_SEG_MAX		126	/* data buffers per request (seg_max) */
#define BLK_MAX_DISCARD_SEG	16	/* ranges per discard/write zeroes */
#define BLK_MAX_DISCARD_SECTORS	(1u << 22)	/* 2 GiB per range */

struct blk {
	int fd;
	uint64_t sectors;		/* capacity in 512-byte sectors */
	bool ro;			/* opened read-only: VIRTIO_BLK_F_RO */
	char id[VIRTIO_BLK_ID_BYTES];	/* GET_ID answer (not NUL-terminated if full) */
	/* requests served, by kind, and those that failed */
	unsigned long n_in, n_out, n_flush, n_get_id, n_discard, n_zeroes;
	unsigned long n_unsupp, n_ioerr;
};

/*
 * Opens @path read-write, or read-only if that is refused with EACCES,
 * EPERM or EROFS. Capacity: the file's size rounded down to a sector.
 * The ID is @path's last component, truncated. Returns 0 or -1 with errno.
 */
int blk_open(struct blk *b, const char *path);

/* Bytes in @iov[0..n). */
size_t iov_size(const struct iovec *iov, int n);

/*
 * Serves one request: @out holds the device-readable buffers (the 16-byte
 * header first, then data for writes), @in the device-writable ones (data
 * for reads, then the status byte). Writes the status byte.
 * Returns the bytes written into @in (the used length: data + status), or
 * -1 (errno EINVAL) if the request has no room for a header or a status
 * byte: then nothing was done and nothing could be reported.
 */
ssize_t blk_request(struct blk *b, const struct iovec *out, int nout,
		    const struct iovec *in, int nin);

#endif
