// SPDX-License-Identifier: BSD-3-Clause
/*
 * Live migration: the migration region (VFIO migration v1's layout, which
 * muser.ko also drives for v2 VMMs) and the stream it carries.
 *
 * The region: a struct vfio_device_migration_info at 0, the stop-copy
 * size estimate at MUSER_MIG_STOP_COPY_SIZE, the data window at
 * MIG_DATA_OFFSET. Saving: entering STOP_COPY stops the device and takes
 * the whole stream; each read of data_offset offers the next part of it
 * (at most a window, data_size bytes), and the next read of pending_bytes
 * says it was consumed. Resuming: each write of data_size appends that
 * many bytes of the window to the stream; the stream is checked and
 * applied once complete, and the device may leave RESUMING only then.
 *
 * Restarts: the v1 state, how far the stream was consumed, its length and
 * checksum are in the library's saved state. A stopped device's stream is
 * taken again and, if it is the same (a recover callback that changes the
 * state area makes it differ), the migration carries on; otherwise the
 * VMM's reads fail. A stream being loaded is lost with the process, so
 * the migration fails. Either way the source keeps running.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

#define MIG_DATA_OFFSET	4096u
#define MIG_WINDOW	(256u * 1024)
#define MIG_REGION_SIZE	(MIG_DATA_OFFSET + MIG_WINDOW)

#define MIG_MAGIC	0x47494d524553554dull	/* "MUSERMIG" */
#define MIG_VERSION	1
/* Largest stream a destination takes. */
#define MIG_MAX_STREAM	(1ull << 32)
/* Device bytes a destination takes whatever its device saves itself. */
#define MIG_MIN_DEV_BYTES	(1u << 20)

#define V1_RUNNING	VFIO_DEVICE_STATE_V1_RUNNING
#define V1_SAVING	VFIO_DEVICE_STATE_V1_SAVING
#define V1_RESUMING	VFIO_DEVICE_STATE_V1_RESUMING
#define STOP_COPY(s)	(((s) & (V1_SAVING | V1_RUNNING)) == V1_SAVING)

/* The stream: this header, its parts in this order, a checksum. */
struct mig_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_len;	/* sizeof(struct mig_hdr) */
	uint64_t total_len;	/* everything, the checksum included */
	uint64_t desc_hash;	/* the device description's */
	uint32_t lib_len;	/* the library's state */
	uint32_t dev_version;	/* muser_migration_ops.version */
	uint64_t state_len;	/* the device's part of the state area */
	uint64_t devmem_len;	/* device memory, area after area */
	uint64_t dev_len;	/* the device's own bytes */
};

static uint64_t fnv64(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

static uint64_t devmem_len(const struct muser_dev *dev)
{
	uint64_t len = 0;
	unsigned int i;

	for (i = 0; i < dev->nr_mmap_areas; i++)
		len += dev->mmap_areas[i].size;
	return len;
}

/* The state area's device part up to its last nonzero byte. */
static size_t state_used(struct muser_dev *dev)
{
	size_t size;
	const uint8_t *p = muser_state(dev, &size);

	while (size && !p[size - 1])
		size--;
	return size;
}

/* Copy device memory out of (@save) or into @buf, area after area. */
static int devmem_copy(struct muser_dev *dev, uint8_t *buf, bool save)
{
	unsigned int i;

	for (i = 0; i < dev->nr_mmap_areas; i++) {
		const struct muser_mmap_area *a = &dev->mmap_areas[i];
		void *p = dev->io->mmap(dev, a->size,
					MUSER_REGION_OFFSET(a->region) + a->offset);

		if (!p)
			return -1;
		if (save)
			memcpy(buf, p, a->size);
		else
			memcpy(p, buf, a->size);
		dev->io->munmap(dev, p, a->size);
		buf += a->size;
	}
	return 0;
}

static ssize_t dev_save(struct muser_dev *dev, void *buf, size_t size)
{
	const struct muser_migration_ops *ops = &dev->mig.ops;

	if (!ops->save)
		return 0;
	return ops->save(dev, dev->mig.priv, buf, size);
}

static int tell(struct muser_dev *dev, enum muser_mig_state state)
{
	if (!dev->mig.ops.state)
		return 0;
	return dev->mig.ops.state(dev, dev->mig.priv, state);
}

static ssize_t stream_len(struct muser_dev *dev, struct mig_hdr *h)
{
	ssize_t n = dev_save(dev, NULL, 0);

	if (n < 0)
		return -1;
	*h = (struct mig_hdr){
		.magic = MIG_MAGIC,
		.version = MIG_VERSION,
		.hdr_len = sizeof(*h),
		.desc_hash = muser_state_hash(dev),
		.lib_len = (uint32_t)muser_state_lib_size(),
		.dev_version = dev->mig.ops.version,
		.state_len = state_used(dev),
		.devmem_len = devmem_len(dev),
		.dev_len = (uint64_t)n,
	};
	h->total_len = sizeof(*h) + h->lib_len + h->state_len +
		       h->devmem_len + h->dev_len + sizeof(uint64_t);
	return (ssize_t)h->total_len;
}

/* Take the whole stream of a stopped device. */
static int stream_take(struct muser_dev *dev)
{
	struct mig_hdr h;
	uint8_t *buf, *p;
	uint64_t sum;
	ssize_t n;

	if (stream_len(dev, &h) < 0)
		return -1;
	buf = malloc(h.total_len);
	if (!buf)
		return -1;
	p = buf + sizeof(h);
	muser_state_lib_export(dev, p);
	p += h.lib_len;
	memcpy(p, muser_state(dev, NULL), h.state_len);
	p += h.state_len;
	if (devmem_copy(dev, p, true) < 0)
		goto err;
	p += h.devmem_len;
	if (h.dev_len) {
		n = dev_save(dev, p, h.dev_len);
		if (n < 0)
			goto err;
		if ((uint64_t)n != h.dev_len) {
			muser_err(dev, "migration: save callback wrote %zd bytes, said %llu",
				  n, (unsigned long long)h.dev_len);
			errno = EIO;
			goto err;
		}
		p += h.dev_len;
	}
	memcpy(buf, &h, sizeof(h));
	sum = fnv64(buf, h.total_len - sizeof(sum));
	memcpy(p, &sum, sizeof(sum));
	free(dev->mig.out);
	dev->mig.out = buf;
	dev->mig.out_len = h.total_len;
	dev->mig.out_sum = sum;
	return 0;
err:
	free(buf);
	return -1;
}

static int refuse(struct muser_dev *dev, const char *why,
		  unsigned long long a, unsigned long long b)
{
	muser_err(dev, "migration: stream refused: %s (%llu, expected %llu)",
		  why, a, b);
	errno = EINVAL;
	return -1;
}

/*
 * The most device bytes a stream may carry: a few times what this device
 * saves (a newer version may save more), at least MIG_MIN_DEV_BYTES.
 */
static uint64_t max_dev_len(struct muser_dev *dev)
{
	ssize_t n = dev_save(dev, NULL, 0);
	uint64_t max = n > 0 ? 4 * (uint64_t)n : 0;

	return max > MIG_MIN_DEV_BYTES ? max : MIG_MIN_DEV_BYTES;
}

/* The header, as soon as it has come: refuse early what will not load. */
static int check_hdr(struct muser_dev *dev, const struct mig_hdr *h)
{
	uint64_t parts;

	if (h->magic != MIG_MAGIC)
		return refuse(dev, "not a muser stream", h->magic, MIG_MAGIC);
	if (h->version != MIG_VERSION)
		return refuse(dev, "stream version not understood", h->version,
			      MIG_VERSION);
	if (h->hdr_len != sizeof(*h))
		return refuse(dev, "header length", h->hdr_len, sizeof(*h));
	if (h->desc_hash != muser_state_hash(dev))
		return refuse(dev, "stream of a different device description",
			      h->desc_hash, muser_state_hash(dev));
	if (h->lib_len != muser_state_lib_size())
		return refuse(dev, "library state length", h->lib_len,
			      muser_state_lib_size());
	if (h->state_len > MUSER_STATE_SIZE)
		return refuse(dev, "state area length", h->state_len,
			      MUSER_STATE_SIZE);
	if (h->devmem_len != devmem_len(dev))
		return refuse(dev, "device memory length", h->devmem_len,
			      devmem_len(dev));
	if (h->dev_len > max_dev_len(dev))
		return refuse(dev, "device bytes length", h->dev_len,
			      max_dev_len(dev));
	parts = sizeof(*h) + h->lib_len + h->state_len + h->devmem_len +
		h->dev_len + sizeof(uint64_t);
	if (h->total_len != parts || h->total_len > MIG_MAX_STREAM)
		return refuse(dev, "total length", h->total_len, parts);
	if (h->dev_len && !dev->mig.ops.load)
		return refuse(dev, "device bytes, and no load callback",
			      h->dev_len, 0);
	return 0;
}

/* A complete stream: check the rest, then apply it all. */
static int stream_apply(struct muser_dev *dev)
{
	const uint8_t *p = dev->mig.in;
	struct mig_hdr h;
	size_t state_size;
	uint64_t sum;

	memcpy(&h, p, sizeof(h));
	memcpy(&sum, p + h.total_len - sizeof(sum), sizeof(sum));
	if (sum != fnv64(p, h.total_len - sizeof(sum)))
		return refuse(dev, "checksum", sum, fnv64(p, h.total_len - sizeof(sum)));
	p += sizeof(h);
	if (muser_state_lib_check(dev, p) < 0)
		return refuse(dev, "library state", 0, 0);
	muser_state(dev, &state_size);
	if (h.state_len > state_size)
		return refuse(dev, "state area length", h.state_len, state_size);
	if (h.dev_len && dev->mig.ops.load(dev, dev->mig.priv,
					   p + h.lib_len + h.state_len +
					   h.devmem_len, h.dev_len,
					   h.dev_version) < 0) {
		muser_err(dev, "migration: the device refused its bytes (version %u): %s",
			  h.dev_version, strerror(errno));
		return -1;
	}
	muser_state_lib_import(dev, p);
	p += h.lib_len;
	memcpy(muser_state(dev, NULL), p, h.state_len);
	memset((uint8_t *)muser_state(dev, NULL) + h.state_len, 0,
	       state_size - h.state_len);
	p += h.state_len;
	if (devmem_copy(dev, (uint8_t *)p, false) < 0)
		return -1;
	muser_state_save(dev);
	if (dev->recover_cb && dev->recover_cb(dev, dev->recover_priv) < 0) {
		muser_err(dev, "migration: recover callback: %s", strerror(errno));
		return -1;
	}
	muser_info(dev, "migration: loaded %llu bytes", (unsigned long long)h.total_len);
	return 0;
}

static void drop_streams(struct muser_dev *dev)
{
	free(dev->mig.out);
	dev->mig.out = NULL;
	dev->mig.out_len = 0;
	dev->mig.out_sum = 0;
	dev->mig.consumed = 0;
	dev->mig.offered = 0;
	free(dev->mig.in);
	dev->mig.in = NULL;
	dev->mig.in_len = 0;
	dev->mig.in_total = 0;
	dev->mig.broken = false;
	dev->mig.applied = false;
}

/* A v1 device_state write. */
static int set_state(struct muser_dev *dev, uint32_t new)
{
	uint32_t old = dev->mig.state;

	if (new & ~VFIO_DEVICE_STATE_MASK ||
	    (new & V1_RESUMING && new != V1_RESUMING)) {
		muser_err(dev, "migration: invalid state %u", new);
		errno = EINVAL;
		return -1;
	}
	if (new == old)
		return 0;
	if (old == V1_RESUMING && !dev->mig.applied) {
		muser_err(dev, "migration: leaving RESUMING without a complete stream (%zu of %llu bytes%s)",
			  dev->mig.in_len, (unsigned long long)dev->mig.in_total,
			  dev->mig.broken ? ", refused or lost by a restart" : "");
		errno = EINVAL;
		return -1;
	}
	if (old & V1_RUNNING && !(new & V1_RUNNING) &&
	    tell(dev, new == V1_RESUMING ? MUSER_MIG_RESUMING :
					   MUSER_MIG_STOPPED) < 0)
		return -1;
	if (!(old & V1_RUNNING) && new == V1_RESUMING &&
	    tell(dev, MUSER_MIG_RESUMING) < 0)
		return -1;
	drop_streams(dev);
	if (new == V1_RESUMING) {
		dev->mig.window = dev->mig.window ? dev->mig.window :
						    malloc(MIG_WINDOW);
		if (!dev->mig.window)
			return -1;
	}
	if (STOP_COPY(new) && stream_take(dev) < 0) {
		int e = errno;

		muser_err(dev, "migration: taking the stream: %s", strerror(e));
		if (old & V1_RUNNING)
			tell(dev, MUSER_MIG_RUNNING);
		errno = e;
		return -1;
	}
	if (new & V1_RUNNING && !(old & V1_RUNNING) &&
	    tell(dev, MUSER_MIG_RUNNING) < 0)
		return -1;
	dev->mig.state = new;
	muser_dbg(dev, "migration: state %u -> %u", old, new);
	return 0;
}

/* pending_bytes: reading it says the chunk offered was consumed. */
static uint64_t pending(struct muser_dev *dev)
{
	if (!STOP_COPY(dev->mig.state))
		return 0;
	dev->mig.consumed += dev->mig.offered;
	dev->mig.offered = 0;
	return dev->mig.out_len - dev->mig.consumed;
}

/* data_offset: reading it while saving offers the next chunk. */
static void offer(struct muser_dev *dev)
{
	uint64_t left;

	if (!STOP_COPY(dev->mig.state) || dev->mig.offered)
		return;
	left = dev->mig.out_len - dev->mig.consumed;
	dev->mig.offered = left < MIG_WINDOW ? left : MIG_WINDOW;
}

/* Append a chunk of the window to the stream being loaded. */
static int append(struct muser_dev *dev, uint64_t size)
{
	struct mig_hdr h;
	uint8_t *in;

	if (dev->mig.state != V1_RESUMING || size > MIG_WINDOW ||
	    dev->mig.broken || dev->mig.applied || !dev->mig.window) {
		muser_err(dev, "migration: %llu bytes of data out of place%s",
			  (unsigned long long)size,
			  dev->mig.broken ? " (the stream was refused or lost)" : "");
		errno = dev->mig.broken ? EIO : EINVAL;
		return -1;
	}
	if (size > (dev->mig.in_total ? dev->mig.in_total : sizeof(h) + MIG_WINDOW) -
		   dev->mig.in_len)
		return refuse(dev, "more bytes than the stream has",
			      dev->mig.in_len + size, dev->mig.in_total);
	in = realloc(dev->mig.in, dev->mig.in_len + size);
	if (!in)
		return -1;
	memcpy(in + dev->mig.in_len, dev->mig.window, size);
	dev->mig.in = in;
	dev->mig.in_len += size;
	if (!dev->mig.in_total && dev->mig.in_len >= sizeof(h)) {
		memcpy(&h, in, sizeof(h));
		if (check_hdr(dev, &h) < 0)
			return -1;
		if (dev->mig.in_len > h.total_len)
			return refuse(dev, "more bytes than the stream has",
				      dev->mig.in_len, h.total_len);
		dev->mig.in_total = h.total_len;
	}
	return 0;
}

/* data_size written while resuming: a chunk has come. */
static int receive(struct muser_dev *dev, uint64_t size)
{
	if (append(dev, size) < 0) {
		/* Nothing more is taken: no growth, no second chance. */
		if (dev->mig.state == V1_RESUMING)
			dev->mig.broken = true;
		return -1;
	}
	/*
	 * Applied as soon as it is complete: the VMM's own config writes and
	 * interrupt setup, which come after the device's data, then land on
	 * the loaded state, and a destination kept paused serves it at once.
	 */
	if (dev->mig.in_total && dev->mig.in_len == dev->mig.in_total) {
		if (stream_apply(dev) < 0) {
			dev->mig.broken = true;
			return -1;
		}
		dev->mig.applied = true;
	}
	return 0;
}

static uint64_t stop_copy_size(struct muser_dev *dev)
{
	struct mig_hdr h;
	ssize_t n;

	if (STOP_COPY(dev->mig.state))
		return dev->mig.out_len - dev->mig.consumed;
	n = stream_len(dev, &h);
	return n > 0 ? (uint64_t)n : sizeof(h);
}

static int header_access(struct muser_dev *dev, uint8_t *buf, size_t count,
			 uint64_t offset, bool is_write)
{
	uint8_t hdr[MUSER_MIG_HDR_SIZE];
	uint64_t v;

#define FIELD_HIT(f)	(offset < offsetof(struct vfio_device_migration_info, f) + \
			 sizeof(((struct vfio_device_migration_info *)0)->f) && \
			 offset + count > offsetof(struct vfio_device_migration_info, f))
	/* A stream lost while saving: the VMM's reads fail, not end short. */
	if (!is_write && STOP_COPY(dev->mig.state) && dev->mig.broken &&
	    offset + count > offsetof(struct vfio_device_migration_info, pending_bytes)) {
		errno = EIO;
		return -1;
	}
	if (is_write) {
		if (offset == 0 && count == 4) {
			memcpy(&v, buf, 4);
			return set_state(dev, (uint32_t)v);
		}
		if (offset == offsetof(struct vfio_device_migration_info, data_size) &&
		    count == 8) {
			memcpy(&v, buf, 8);
			return receive(dev, v);
		}
		errno = EINVAL;
		return -1;
	}
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, &dev->mig.state, 4);
	if (FIELD_HIT(pending_bytes)) {
		v = pending(dev);
		memcpy(hdr + offsetof(struct vfio_device_migration_info, pending_bytes), &v, 8);
	}
	if (FIELD_HIT(data_offset)) {
		offer(dev);
		v = MIG_DATA_OFFSET;
		memcpy(hdr + offsetof(struct vfio_device_migration_info, data_offset), &v, 8);
	}
	v = STOP_COPY(dev->mig.state) ? dev->mig.offered : 0;
	memcpy(hdr + offsetof(struct vfio_device_migration_info, data_size), &v, 8);
	if (offset < MUSER_MIG_STOP_COPY_SIZE + 8 &&
	    offset + count > MUSER_MIG_STOP_COPY_SIZE) {
		v = stop_copy_size(dev);
		memcpy(hdr + MUSER_MIG_STOP_COPY_SIZE, &v, 8);
	}
#undef FIELD_HIT
	memcpy(buf, hdr + offset, count);
	return 0;
}

/* An access to the migration region; the caller checked it is inside. */
int muser_mig_access(struct muser_dev *dev, uint8_t *buf, size_t count,
		     uint64_t offset, bool is_write)
{
	uint64_t off;

	if (offset < MUSER_MIG_HDR_SIZE) {
		if (count > MUSER_MIG_HDR_SIZE - offset) {
			errno = EINVAL;
			return -1;
		}
		return header_access(dev, buf, count, offset, is_write);
	}
	if (offset < MIG_DATA_OFFSET) {
		if (is_write || count > MIG_DATA_OFFSET - offset) {
			errno = EINVAL;
			return -1;
		}
		memset(buf, 0, count);
		return 0;
	}
	off = offset - MIG_DATA_OFFSET;
	if (is_write) {
		if (dev->mig.state != V1_RESUMING || !dev->mig.window) {
			errno = EINVAL;
			return -1;
		}
		memcpy(dev->mig.window + off, buf, count);
		return 0;
	}
	if (!STOP_COPY(dev->mig.state) || off + count > dev->mig.offered) {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, dev->mig.out + dev->mig.consumed + off, count);
	return 0;
}

/* The VMM reset the device or closed it: it runs, nothing in flight. */
void muser_mig_reset(struct muser_dev *dev)
{
	if (!dev->mig.enabled)
		return;
	drop_streams(dev);
	if (!(dev->mig.state & V1_RUNNING))
		tell(dev, MUSER_MIG_RUNNING);
	dev->mig.state = V1_RUNNING;
}

/*
 * A restarted emulator, once the saved state is back: a stopped device's
 * stream is taken again (the same bytes: nothing has run since), one
 * being loaded is lost.
 */
int muser_mig_recover(struct muser_dev *dev)
{
	if (!dev->mig.enabled)
		return 0;
	if (!(dev->mig.state & V1_RUNNING) && tell(dev, dev->mig.state == V1_RESUMING ?
					       MUSER_MIG_RESUMING : MUSER_MIG_STOPPED) < 0)
		return -1;
	if (dev->mig.state == V1_RESUMING && !dev->mig.applied) {
		dev->mig.broken = true;
		muser_err(dev, "migration: restarted while loading a stream: this migration fails");
		return 0;
	}
	if (STOP_COPY(dev->mig.state)) {
		uint64_t consumed = dev->mig.consumed, offered = dev->mig.offered;
		uint64_t len = dev->mig.out_len, sum = dev->mig.out_sum;

		/* The same bytes, or the VMM would get half of each stream. */
		if (stream_take(dev) < 0 || dev->mig.out_len != len ||
		    dev->mig.out_sum != sum) {
			muser_err(dev, "migration: restarted while saving, and the stream taken again differs: this migration fails");
			drop_streams(dev);
			dev->mig.broken = true;
			return 0;
		}
		dev->mig.consumed = consumed;
		dev->mig.offered = offered;
		muser_info(dev, "migration: restarted while saving: carrying on at byte %llu",
			   (unsigned long long)consumed);
	}
	return 0;
}

void muser_mig_free(struct muser_dev *dev)
{
	drop_streams(dev);
	free(dev->mig.window);
	dev->mig.window = NULL;
}

/* The migration region in the layout, index MUSER_NUM_REGIONS. */
void muser_mig_layout(const struct muser_dev *dev,
		      struct muser_device_info *info)
{
	struct muser_dev_region *d = &info->dev_regions[0];

	if (!dev->mig.enabled)
		return;
	info->num_dev_regions = 1;
	d->region.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	d->region.size = MIG_REGION_SIZE;
	d->type = VFIO_REGION_TYPE_MIGRATION_DEPRECATED;
	d->subtype = VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED;
}

MUSER_EXPORT int muser_setup_migration(struct muser_dev *dev,
				       const struct muser_migration_ops *ops,
				       void *priv)
{
	if (muser_unrealized(dev) < 0)
		return -1;
	dev->mig.enabled = true;
	memset(&dev->mig.ops, 0, sizeof(dev->mig.ops));
	if (ops)
		dev->mig.ops = *ops;
	dev->mig.priv = priv;
	dev->mig.state = V1_RUNNING;
	return 0;
}
