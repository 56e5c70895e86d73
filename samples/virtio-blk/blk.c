// SPDX-License-Identifier: BSD-3-Clause
/*
 * virtio-blk requests on a backing file: see blk.h.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk.h"

int blk_open(struct blk *b, const char *path)
{
	const char *base = strrchr(path, '/');
	struct stat st;

	memset(b, 0, sizeof(*b));
	b->fd = open(path, O_RDWR | O_CLOEXEC);
	if (b->fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
		b->fd = open(path, O_RDONLY | O_CLOEXEC);
		b->ro = true;
	}
	if (b->fd < 0)
		return -1;
	if (fstat(b->fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		if (!errno || S_ISDIR(st.st_mode))
			errno = EINVAL;
		close(b->fd);
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(b->fd, 0, SEEK_END);

		if (end < 0) {
			close(b->fd);
			return -1;
		}
		st.st_size = end;
	}
	b->sectors = st.st_size / BLK_SECTOR;
	base = base ? base + 1 : path;
	memcpy(b->id, base, strnlen(base, sizeof(b->id)));
	return 0;
}

size_t iov_size(const struct iovec *iov, int n)
{
	size_t len = 0;

	while (n-- > 0)
		len += iov++->iov_len;
	return len;
}

/* Describes @len bytes at @off of @iov in @dst (room for @max). Returns the count. */
static int iov_slice(const struct iovec *iov, int n, size_t off, size_t len,
		     struct iovec *dst, int max)
{
	int k = 0;

	for (; n > 0 && len; iov++, n--) {
		size_t chunk;

		if (off >= iov->iov_len) {
			off -= iov->iov_len;
			continue;
		}
		chunk = iov->iov_len - off;
		if (chunk > len)
			chunk = len;
		if (k == max)
			return -1;
		dst[k].iov_base = (uint8_t *)iov->iov_base + off;
		dst[k].iov_len = chunk;
		k++;
		len -= chunk;
		off = 0;
	}
	return k;
}

/* Copies @len bytes at @off of the iovecs to or from @buf. */
static void iov_copy(const struct iovec *iov, int n, size_t off, void *buf,
		     size_t len, bool to_iov)
{
	struct iovec part[n > 0 ? n : 1];
	int k = iov_slice(iov, n, off, len, part, n), i;
	uint8_t *p = buf;

	for (i = 0; i < k; i++) {
		if (to_iov)
			memcpy(part[i].iov_base, p, part[i].iov_len);
		else
			memcpy(p, part[i].iov_base, part[i].iov_len);
		p += part[i].iov_len;
	}
}

/* Reads or writes all of @iov at @pos, resuming after short transfers. */
static int rw_all(int fd, struct iovec *iov, int n, off_t pos, bool write)
{
	while (n > 0) {
		ssize_t r = write ? pwritev(fd, iov, n, pos) : preadv(fd, iov, n, pos);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;	/* error, or the file shrank */
		pos += r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	return 0;
}

static bool in_range(const struct blk *b, uint64_t sector, uint64_t count)
{
	return sector <= b->sectors && count <= b->sectors - sector;
}

static uint8_t do_rw(struct blk *b, uint64_t sector, const struct iovec *iov,
		     int n, size_t off, size_t len, bool write)
{
	struct iovec data[IOV_MAX];
	int k;

	if (len % BLK_SECTOR || !in_range(b, sector, len / BLK_SECTOR))
		return VIRTIO_BLK_S_IOERR;
	if (write && b->ro)
		return VIRTIO_BLK_S_IOERR;
	k = iov_slice(iov, n, off, len, data, IOV_MAX);
	if (k < 0)
		return VIRTIO_BLK_S_IOERR;
	return rw_all(b->fd, data, k, sector * BLK_SECTOR, write) < 0 ?
		VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* Zeroes (or with @unmap may deallocate) a byte range of the file. */
static int zero_range(struct blk *b, off_t pos, off_t len, bool unmap)
{
	static const uint8_t zeros[65536];

	if (unmap && fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       pos, len) == 0)
		return 0;
	if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, pos, len) == 0)
		return 0;
	while (len > 0) {
		ssize_t r = pwrite(b->fd, zeros, len < (off_t)sizeof(zeros) ?
				   (size_t)len : sizeof(zeros), pos);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		pos += r;
		len -= r;
	}
	return 0;
}

static uint8_t do_discard(struct blk *b, const struct iovec *out, int nout,
			  size_t len, bool write_zeroes)
{
	struct virtio_blk_discard_write_zeroes r[BLK_MAX_DISCARD_SEG];
	size_t i, nr = len / sizeof(r[0]);

	if (b->ro)
		return VIRTIO_BLK_S_IOERR;
	if (!nr || len % sizeof(r[0]) || nr > BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_UNSUPP;
	iov_copy(out, nout, sizeof(struct virtio_blk_outhdr), r, len, false);
	for (i = 0; i < nr; i++) {
		uint64_t sector = le64toh(r[i].sector);
		uint32_t count = le32toh(r[i].num_sectors);
		uint32_t flags = le32toh(r[i].flags);

		/* Discard has no flags; write zeroes may allow unmapping. */
		if (flags & ~(write_zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0u))
			return VIRTIO_BLK_S_UNSUPP;
		if (count > BLK_MAX_DISCARD_SECTORS || !in_range(b, sector, count))
			return VIRTIO_BLK_S_IOERR;
	}
	for (i = 0; i < nr; i++) {
		off_t pos = le64toh(r[i].sector) * BLK_SECTOR;
		off_t n = (off_t)le32toh(r[i].num_sectors) * BLK_SECTOR;

		if (!write_zeroes) {
			/* Discarded sectors read back as zeros or old data: both fine. */
			if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      pos, n) < 0 && errno != EOPNOTSUPP)
				return VIRTIO_BLK_S_IOERR;
		} else if (zero_range(b, pos, n,
				      le32toh(r[i].flags) & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) < 0) {
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

ssize_t blk_request(struct blk *b, const struct iovec *out, int nout,
		    const struct iovec *in, int nin)
{
	size_t out_len = iov_size(out, nout), in_len = iov_size(in, nin);
	size_t data_out, data_in, written = 0;
	struct virtio_blk_outhdr hdr;
	uint64_t sector;
	uint8_t status;

	if (out_len < sizeof(hdr) || in_len < 1) {
		errno = EINVAL;
		return -1;
	}
	iov_copy(out, nout, 0, &hdr, sizeof(hdr), false);
	sector = le64toh(hdr.sector);
	data_out = out_len - sizeof(hdr);
	data_in = in_len - 1;

	switch (le32toh(hdr.type)) {
	case VIRTIO_BLK_T_IN:
		b->n_in++;
		status = do_rw(b, sector, in, nin, 0, data_in, false);
		if (status == VIRTIO_BLK_S_OK)
			written = data_in;
		break;
	case VIRTIO_BLK_T_OUT:
		b->n_out++;
		status = do_rw(b, sector, out, nout, sizeof(hdr), data_out, true);
		break;
	case VIRTIO_BLK_T_FLUSH:
		b->n_flush++;
		status = fdatasync(b->fd) < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID:
		b->n_get_id++;
		written = data_in < sizeof(b->id) ? data_in : sizeof(b->id);
		iov_copy(in, nin, 0, b->id, written, true);
		status = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (le32toh(hdr.type) == VIRTIO_BLK_T_DISCARD)
			b->n_discard++;
		else
			b->n_zeroes++;
		status = do_discard(b, out, nout, data_out,
				    le32toh(hdr.type) == VIRTIO_BLK_T_WRITE_ZEROES);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (status == VIRTIO_BLK_S_UNSUPP)
		b->n_unsupp++;
	else if (status != VIRTIO_BLK_S_OK)
		b->n_ioerr++;
	iov_copy(in, nin, in_len - 1, &status, 1, true);
	return written + 1;
}
