// SPDX-License-Identifier: BSD-3-Clause
/*
 * The fake muser.ko: see fake_kernel.h. It checks what the library sends
 * the way the uapi header says the kernel does, so a library bug shows up
 * as EINVAL here rather than only in a VM.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake_kernel.h"

#define GROW(arr, n, cap) do {						\
	if ((n) == (cap)) {						\
		(cap) = (cap) ? 2 * (cap) : 16;				\
		(arr) = realloc((arr), (cap) * sizeof(*(arr)));		\
		if (!(arr))						\
			abort();					\
	}								\
} while (0)

static struct fake_kernel *fk_of(struct muser_dev *dev)
{
	return dev->io_priv;
}

static void update_efd(struct fake_kernel *fk)
{
	uint64_t v = 1;
	bool sq = fk->ring_mem && fk->rhdr->sq_tail !=
		  __atomic_load_n(&fk->rhdr->sq_head, __ATOMIC_ACQUIRE);

	if (fk->qhead < fk->nqueue || sq) {
		if (write(fk->efd, &v, sizeof(v)) < 0)
			abort();
	} else if (read(fk->efd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
		abort();
	}
}

/* Delivered: the answer is waited for, unless the VMM gave up. */
void fake_add_pending(struct fake_kernel *fk, const struct muser_req *r)
{
	if (r->id == fk->cancel_id)
		return;
	GROW(fk->pending, fk->npending, fk->pcap);
	fk->pending[fk->npending++] = *r;
}

static ssize_t fake_read(struct muser_dev *dev, void *buf, size_t len)
{
	struct fake_kernel *fk = fk_of(dev);
	uint8_t *p = buf;
	size_t pos = 0;
	unsigned int k = 0;

	fk->nreads++;
	if (!fk->attached) {
		errno = ENOTCONN;
		return -1;
	}
	if (fk->read_errno) {
		errno = fk->read_errno;
		return -1;
	}
	if (len < MUSER_READ_BUF_MIN) {
		errno = EINVAL;
		return -1;
	}
	if (fk->qhead == fk->nqueue) {
		errno = EAGAIN;
		return -1;
	}
	while (fk->qhead < fk->nqueue &&
	       (!fk->max_reqs_per_read || k < fk->max_reqs_per_read)) {
		const struct muser_req *r = &fk->queue[fk->qhead];
		size_t size = sizeof(*r) + MUSER_ALIGN_UP(r->data_len);

		if (size > len - pos)
			break;
		memset(p + pos, 0, size);
		memcpy(p + pos, r, sizeof(*r));
		if (r->data_len)
			memcpy(p + pos + sizeof(*r), fk->queue_data[fk->qhead],
			       r->data_len);
		fake_add_pending(fk, r);
		fk->qhead++;
		pos += size;
		k++;
	}
	update_efd(fk);
	fake_ring_flags(fk);
	return pos;
}

static ssize_t find_pending(const struct fake_kernel *fk, uint64_t id)
{
	size_t i;

	for (i = 0; i < fk->npending; i++)
		if (fk->pending[i].id == id)
			return i;
	return -1;
}

/* The kernel's checks of one reply. Returns 0 or a positive errno. */
int fake_check_reply(struct fake_kernel *fk, const struct muser_reply *rep,
		     size_t avail, ssize_t *idx)
{
	const struct muser_req *req;
	uint32_t want;

	if (avail < sizeof(*rep) || rep->len > MUSER_MAX_DATA ||
	    avail - sizeof(*rep) < MUSER_ALIGN_UP(rep->len) ||
	    rep->error < 0 || rep->error >= 512 || (rep->error && rep->len))
		return EINVAL;
	*idx = find_pending(fk, rep->id);
	if (*idx < 0)
		return ENOENT;
	req = &fk->pending[*idx];
	want = req->type == MUSER_REQ_READ && rep->error == 0 ? req->len : 0;
	if (rep->len != want || rep->id == fk->reject_id)
		return EINVAL;
	return 0;
}

/* A valid answer to pending request @idx: settle it. */
void fake_record_reply(struct fake_kernel *fk, const struct muser_reply *rep,
		       const uint8_t *data, ssize_t idx)
{
	struct fake_reply *out;

	GROW(fk->replies, fk->nreplies, fk->rcap);
	out = &fk->replies[fk->nreplies++];
	out->id = rep->id;
	out->error = rep->error;
	out->len = rep->len;
	memcpy(out->data, data, rep->len);
	fk->pending[idx] = fk->pending[--fk->npending];
}

static ssize_t fake_write(struct muser_dev *dev, const void *buf, size_t len)
{
	struct fake_kernel *fk = fk_of(dev);
	const uint8_t *p = buf;
	size_t pos = 0;
	unsigned int n = 0;

	fk->nwrites++;
	if (!fk->attached) {
		errno = ENOTCONN;
		return -1;
	}
	while (pos < len) {
		struct muser_reply rep = { 0 };
		ssize_t idx = -1;
		int err;

		if (fk->max_replies_per_write && n == fk->max_replies_per_write)
			break;
		memcpy(&rep, p + pos, len - pos < sizeof(rep) ? len - pos : sizeof(rep));
		err = fake_check_reply(fk, &rep, len - pos, &idx);
		if (err) {
			if (pos)
				break;
			errno = err;
			return -1;
		}
		fake_record_reply(fk, &rep, p + pos + sizeof(rep), idx);
		pos += sizeof(rep) + MUSER_ALIGN_UP(rep.len);
		n++;
	}
	return pos;
}

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* As kmod/layout.c: the flags and vector counts the kernel accepts. */
static const uint32_t irq_flags_allowed[MUSER_NUM_IRQS] = {
	[VFIO_PCI_INTX_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
				    VFIO_IRQ_INFO_AUTOMASKED,
	[VFIO_PCI_MSI_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
	[VFIO_PCI_MSIX_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
	[VFIO_PCI_ERR_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD,
};

static const uint32_t irq_max_count[MUSER_NUM_IRQS] = {
	[VFIO_PCI_INTX_IRQ_INDEX] = 1,
	[VFIO_PCI_MSI_IRQ_INDEX] = 32,
	[VFIO_PCI_MSIX_IRQ_INDEX] = 2048,
	[VFIO_PCI_ERR_IRQ_INDEX] = 1,
};

static bool irqs_ok(const struct muser_device_info *info)
{
	int i;

	for (i = 0; i < VFIO_PCI_REQ_IRQ_INDEX; i++) {
		const struct muser_irq *q = &info->irqs[i];

		if ((q->flags & ~irq_flags_allowed[i]) || q->count > irq_max_count[i] ||
		    (i == VFIO_PCI_MSI_IRQ_INDEX && q->count && !pow2(q->count)))
			return false;
	}
	return true;
}

static int fake_attach(struct fake_kernel *fk,
		       const struct muser_device_info *info)
{
	const uint32_t rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	int i;

	if (fk->attach_errno)
		return fk->attach_errno;
	if (fk->attached)
		return EBUSY;
	if (info->argsz < sizeof(*info) || info->version != MUSER_API_VERSION ||
	    info->num_irqs != MUSER_NUM_IRQS ||
	    (info->num_regions != 8 && info->num_regions != 9))
		return EINVAL;
	for (i = 0; i <= VFIO_PCI_ROM_REGION_INDEX; i++)
		if (info->regions[i].size && !pow2(info->regions[i].size))
			return EINVAL;
	for (i = 0; i < MUSER_NUM_REGIONS; i++) {
		uint32_t allowed = i <= VFIO_PCI_BAR5_REGION_INDEX ?
				   rw | MUSER_REGION_F_POSTED_WRITES : rw;

		if (info->regions[i].flags & ~allowed)
			return EINVAL;
	}
	if ((info->regions[VFIO_PCI_CONFIG_REGION_INDEX].size != 256 &&
	     info->regions[VFIO_PCI_CONFIG_REGION_INDEX].size != 4096) ||
	    info->regions[VFIO_PCI_CONFIG_REGION_INDEX].flags != rw)
		return EINVAL;
	if (info->regions[VFIO_PCI_VGA_REGION_INDEX].size &&
	    info->regions[VFIO_PCI_VGA_REGION_INDEX].size != 0xc0000)
		return EINVAL;
	if (!irqs_ok(info))
		return EINVAL;
	/* Device-specific regions, as muser.ko checks them. */
	if (info->num_dev_regions > MUSER_MAX_DEV_REGIONS || info->pad)
		return EINVAL;
	for (i = 0; i < (int)info->num_dev_regions; i++) {
		const struct muser_dev_region *d = &info->dev_regions[i];

		if (!d->region.flags || d->region.flags & ~rw || d->region.pad ||
		    !d->region.size || !d->type)
			return EINVAL;
	}
	fk->info = *info;
	fk->attached = true;
	return 0;
}

static int fake_trigger(struct fake_kernel *fk,
			const struct muser_irq_trigger *t)
{
	if (t->argsz < sizeof(*t) || t->index >= MUSER_NUM_IRQS || !t->count ||
	    t->start >= fk->info.irqs[t->index].count ||
	    t->count > fk->info.irqs[t->index].count - t->start)
		return EINVAL;
	if (fk->trigger_errno)
		return fk->trigger_errno;
	if (fk->ntriggers < FAKE_MAX_TRIGGERS)
		fk->triggers[fk->ntriggers++] = *t;
	return 0;
}

static int fake_ioctl(struct muser_dev *dev, unsigned long req, void *arg)
{
	struct fake_kernel *fk = fk_of(dev);
	int err;

	switch (req) {
	case MUSER_IOC_ATTACH:
		err = fake_attach(fk, arg);
		break;
	case MUSER_IOC_TRIGGER_IRQ:
		err = fk->attached ? fake_trigger(fk, arg) : EINVAL;
		break;
	case MUSER_IOC_DETACH:
		err = fk->attached ? 0 : ENOTCONN;
		fk->attached = false;
		break;
	case MUSER_IOC_RING_SETUP:
		err = fake_ring_setup(fk, arg);
		break;
	case MUSER_IOC_RING_ENTER:
		err = fake_ring_enter(fk);
		break;
	default:
		err = ENOTTY;
		break;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

static const struct muser_io_ops fake_ops = {
	.read = fake_read,
	.write = fake_write,
	.ioctl = fake_ioctl,
	.mmap = fake_ring_mmap,
	.munmap = fake_ring_munmap,
};

struct fake_kernel *fake_kernel_new(void)
{
	struct fake_kernel *fk = calloc(1, sizeof(*fk));

	if (!fk)
		abort();
	fk->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fk->efd < 0)
		abort();
	fk->cancel_id = fk->reject_id = UINT64_MAX;
	return fk;
}

/* The device owns and closes the eventfd. */
void fake_kernel_free(struct fake_kernel *fk)
{
	size_t i;

	for (i = 0; i < fk->nqueue; i++)
		free(fk->queue_data[i]);
	free(fk->queue_data);
	free(fk->queue);
	free(fk->pending);
	free(fk->replies);
	free(fk->ring_mem);
	free(fk);
}

struct muser_dev *fake_dev_new(struct fake_kernel *fk)
{
	struct muser_dev *dev = muser_dev_alloc(fk->efd, &fake_ops, fk, "fake");

	if (!dev)
		abort();
	return dev;
}

void fake_queue(struct fake_kernel *fk, uint64_t id, uint16_t type,
		uint16_t flags, uint32_t region, uint64_t offset, uint32_t len,
		const void *data, uint32_t data_len)
{
	struct muser_req req = {
		.id = id, .type = type, .flags = flags, .region = region,
		.offset = offset, .len = len, .data_len = data_len,
	};
	size_t cap = fk->qcap;

	if (fake_ring_push(fk, &req, data)) {
		fake_add_pending(fk, &req);
		update_efd(fk);
		return;
	}
	GROW(fk->queue, fk->nqueue, fk->qcap);
	if (cap != fk->qcap) {
		fk->queue_data = realloc(fk->queue_data,
					 fk->qcap * sizeof(*fk->queue_data));
		if (!fk->queue_data)
			abort();
	}
	fk->queue[fk->nqueue] = req;
	fk->queue_data[fk->nqueue] = NULL;
	if (data_len) {
		fk->queue_data[fk->nqueue] = malloc(data_len);
		if (!fk->queue_data[fk->nqueue])
			abort();
		memcpy(fk->queue_data[fk->nqueue], data, data_len);
	}
	fk->nqueue++;
	update_efd(fk);
	fake_ring_flags(fk);
}

const struct fake_reply *fake_reply(const struct fake_kernel *fk, uint64_t id)
{
	size_t i;

	for (i = 0; i < fk->nreplies; i++)
		if (fk->replies[i].id == id)
			return &fk->replies[i];
	return NULL;
}
