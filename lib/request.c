// SPDX-License-Identifier: BSD-3-Clause
/*
 * Requests and replies: parse a batch of requests read from the control
 * node, validate each against the attached layout, run it, and build the
 * batch of replies; then write the replies, coping with partial
 * consumption and with requests the kernel no longer waits for.
 *
 * Nothing from the kernel is trusted: a malformed request gets an EINVAL
 * reply, and a batch whose framing is broken is dropped after answering the
 * request whose header was readable.
 */
#include <errno.h>
#include <string.h>

#include "private.h"

static const char *type_name(uint16_t type)
{
	switch (type) {
	case MUSER_REQ_READ:	return "read";
	case MUSER_REQ_WRITE:	return "write";
	case MUSER_REQ_RESET:	return "reset";
	case MUSER_REQ_IRQ_STATE: return "irq state";
	case MUSER_REQ_DMA_UNMAP: return "dma unmap";
	case MUSER_REQ_VMM_CLOSE: return "vmm close";
	default:		return "unknown";
	}
}

/*
 * A callback's errno as a reply error: a positive errno below the kernel's
 * internal codes (ERESTARTSYS, 512, and up, which the kernel refuses),
 * else EIO.
 */
static int reply_errno(int e)
{
	return e > 0 && e < 512 ? e : EIO;
}

/* Validate a READ or WRITE. Returns 0 or a positive errno. */
static int check_access(const struct muser_dev *dev,
			const struct muser_req *req)
{
	const struct muser_region *r;
	uint32_t need;

	if (req->len == 0 || req->len > MUSER_MAX_DATA)
		return EINVAL;
	if (req->data_len != (req->type == MUSER_REQ_WRITE ? req->len : 0))
		return EINVAL;
	r = muser_layout_region(&dev->info, req->region);
	if (!r)
		return EINVAL;
	if (req->offset > r->size || req->len > r->size - req->offset)
		return EINVAL;
	need = req->type == MUSER_REQ_WRITE ? VFIO_REGION_INFO_FLAG_WRITE :
					      VFIO_REGION_INFO_FLAG_READ;
	if (!(r->flags & need))
		return EINVAL;
	return 0;
}

static int do_access(struct muser_dev *dev, const struct muser_req *req,
		     uint8_t *wdata, uint8_t *rdata)
{
	bool is_write = req->type == MUSER_REQ_WRITE;
	void *buf = is_write ? wdata : rdata;
	int err;

	err = check_access(dev, req);
	if (err)
		return err;
	if (req->region == VFIO_PCI_CONFIG_REGION_INDEX)
		err = muser_pcicfg_access(dev, buf, req->len, req->offset,
					  is_write);
	else if (req->region >= MUSER_NUM_REGIONS)
		err = muser_mig_access(dev, buf, req->len, req->offset,
				       is_write);
	else
		err = muser_region_access(dev, req->region, buf, req->len,
					  req->offset, is_write);
	return err < 0 ? reply_errno(errno) : 0;
}

static int do_reset(struct muser_dev *dev, const struct muser_req *req)
{
	if (req->data_len)
		return EINVAL;
	if (muser_reset(dev, MUSER_RESET_VFIO) < 0)
		return reply_errno(errno);
	return 0;
}

/* Run one well-framed request. Returns 0 or a positive errno. */
static int handle_one(struct muser_dev *dev, const struct muser_req *req,
		      uint8_t *wdata, uint8_t *rdata)
{
	int err;

	dev->cur_req_flags = req->flags;
	dev->cur_req_id = req->id;
	switch (req->type) {
	case MUSER_REQ_READ:
	case MUSER_REQ_WRITE:
		err = do_access(dev, req, wdata, rdata);
		break;
	case MUSER_REQ_RESET:
		err = do_reset(dev, req);
		break;
	default:
		err = EINVAL;
		break;
	}
	dev->cur_req_flags = 0;
	dev->cur_req_id = 0;

	muser_dbg(dev, "req %llu %s%s region %u offset %#llx len %u: %s",
		  (unsigned long long)req->id, type_name(req->type),
		  req->flags & MUSER_REQ_F_REPLAYED ? " (replayed)" : "",
		  req->region, (unsigned long long)req->offset, req->len,
		  err ? strerror(err) : "ok");
	return err;
}

/* A notice from the kernel (id 0): nothing to answer. */
static void handle_posted(struct muser_dev *dev, const struct muser_req *req,
			  const uint8_t *data)
{
	struct muser_dma_range range;

	switch (req->type) {
	case MUSER_REQ_IRQ_STATE:
		muser_irq_vmm_changed(dev);
		return;
	case MUSER_REQ_DMA_UNMAP:
		if (req->data_len != sizeof(range))
			break;
		memcpy(&range, data, sizeof(range));
		muser_dma_revoked(dev, range.iova, range.size);
		return;
	case MUSER_REQ_VMM_CLOSE:
		if (muser_reset(dev, MUSER_RESET_VMM_CLOSE) < 0)
			muser_err(dev, "reset after the VMM closed: %s",
				  strerror(errno));
		return;
	}
	muser_err(dev, "unknown notice type %u (%u bytes), ignored", req->type,
		  req->data_len);
}

/*
 * Handle the requests in @in (@in_len bytes, as read from the control node)
 * and append their replies to @out. Stops early when @out (@out_cap bytes,
 * at least one maximal reply) cannot hold the next reply: the caller writes
 * the replies and calls again with the rest. Write data in @in may be
 * modified by callbacks.
 *
 * Returns the bytes of @in consumed; *@out_len is set to the bytes of
 * replies and *@handled is increased by the number of replies.
 */
size_t muser_handle_requests(struct muser_dev *dev, uint8_t *in, size_t in_len,
			     uint8_t *out, size_t out_cap, size_t *out_len,
			     unsigned int *handled)
{
	size_t pos = 0, opos = 0;

	while (pos < in_len) {
		size_t avail = in_len - pos, rsize, step;
		struct muser_reply rep;
		struct muser_req req;
		bool framed;

		if (avail < sizeof(req)) {
			muser_err(dev, "truncated request header (%zu bytes), dropped",
				  avail);
			pos = in_len;
			break;
		}
		memcpy(&req, in + pos, sizeof(req));
		framed = req.data_len <= avail - sizeof(req);
		if (!req.id && framed) {
			/* Posted: no reply. */
			handle_posted(dev, &req, in + pos + sizeof(req));
			pos += sizeof(req) + MUSER_ALIGN_UP(req.data_len);
			continue;
		}

		rsize = sizeof(rep);
		if (req.type == MUSER_REQ_READ && req.len <= MUSER_MAX_DATA)
			rsize += MUSER_ALIGN_UP(req.len);
		if (out_cap - opos < rsize)
			break;
		memset(out + opos, 0, rsize);

		memset(&rep, 0, sizeof(rep));
		rep.id = req.id;
		if (framed) {
			rep.error = handle_one(dev, &req, in + pos + sizeof(req),
					       out + opos + sizeof(rep));
		} else {
			muser_err(dev, "req %llu: data_len %u beyond the %zu bytes read, rest of batch dropped",
				  (unsigned long long)req.id, req.data_len, avail);
			rep.error = EINVAL;
		}
		if (!rep.error && req.type == MUSER_REQ_READ)
			rep.len = req.len;
		memcpy(out + opos, &rep, sizeof(rep));
		opos += sizeof(rep) + MUSER_ALIGN_UP(rep.len);
		(*handled)++;

		if (!framed) {
			pos = in_len;
			break;
		}
		/* The final request's padding may be missing: be lenient. */
		step = sizeof(req) + MUSER_ALIGN_UP(req.data_len);
		pos += step < avail ? step : avail;
	}
	*out_len = opos;
	return pos;
}

static size_t reply_size(const uint8_t *p)
{
	struct muser_reply rep;

	memcpy(&rep, p, sizeof(rep));
	return sizeof(rep) + MUSER_ALIGN_UP(rep.len);
}

/* Whether @n bytes from @p end exactly at a reply boundary. */
static bool whole_replies(const uint8_t *p, size_t n)
{
	size_t pos = 0;

	while (pos < n)
		pos += reply_size(p + pos);
	return pos == n;
}

/*
 * Write the replies built by muser_handle_requests(). A reply the kernel
 * no longer waits for (ENOENT) is dropped; one it refuses (EINVAL) is
 * logged and dropped, the others are still written, and the call fails
 * with EINVAL at the end.
 * Returns 0, or -1 with errno set.
 */
int muser_write_replies(struct muser_dev *dev, const uint8_t *buf, size_t len)
{
	int refused = 0, e;
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *p = buf + pos;
		struct muser_reply rep;
		ssize_t n;

		n = dev->io->write(dev, p, len - pos);
		if (n > 0) {
			if ((size_t)n > len - pos || !whole_replies(p, n)) {
				muser_err(dev, "write of replies returned %zd of %zu bytes",
					  n, len - pos);
				errno = EIO;
				return -1;
			}
			pos += n;
			continue;
		}
		if (n == 0) {
			muser_err(dev, "write of replies consumed nothing");
			errno = EIO;
			return -1;
		}
		e = errno;
		if (e == EINTR)
			continue;
		memcpy(&rep, p, sizeof(rep));
		if (e == ENOENT) {
			muser_dbg(dev, "req %llu: no longer waited for, reply dropped",
				  (unsigned long long)rep.id);
		} else if (e == EINVAL) {
			muser_err(dev, "req %llu: kernel refused the reply (error %d, len %u)",
				  (unsigned long long)rep.id, rep.error, rep.len);
			refused = EINVAL;
		} else {
			muser_err(dev, "write of replies: %s", strerror(e));
			errno = e;
			return -1;
		}
		pos += reply_size(p);
	}
	if (refused) {
		errno = refused;
		return -1;
	}
	return 0;
}
