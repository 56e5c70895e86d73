// SPDX-License-Identifier: GPL-2.0
/*
 * The VFIO client: what a VMM does with a muser device; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common.h"

void vfio_client_init(struct vfio_client *c)
{
	c->container = c->group = c->device = -1;
	c->dma = NULL;
	c->dma_size = 0;
}

int vfio_group_path(const char *uuid, char *out, size_t len)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), MDEV_BUS_DIR "/%s/iommu_group", uuid);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	snprintf(out, len, "/dev/vfio/%s", basename(target));
	return 0;
}

#define STEP(name) do { if (step) *step = name; } while (0)

int vfio_client_open(struct vfio_client *c, const char *uuid,
		     const char **step)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	char gpath[PATH_MAX];
	int ret;

	vfio_client_init(c);

	STEP("open /dev/vfio/vfio");
	c->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (c->container < 0)
		goto fail;
	STEP("VFIO_GET_API_VERSION");
	ret = ioctl(c->container, VFIO_GET_API_VERSION);
	if (ret != VFIO_API_VERSION) {
		errno = ret < 0 ? errno : EPROTO;
		goto fail;
	}
	STEP("VFIO_CHECK_EXTENSION(TYPE1v2)");
	ret = ioctl(c->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	if (ret != 1) {
		errno = ret < 0 ? errno : ENOTSUP;
		goto fail;
	}
	STEP("iommu_group link");
	ret = vfio_group_path(uuid, gpath, sizeof(gpath));
	if (ret) {
		errno = -ret;
		goto fail;
	}
	STEP("open group");
	c->group = open(gpath, O_RDWR | O_CLOEXEC);
	if (c->group < 0)
		goto fail;
	STEP("VFIO_GROUP_GET_STATUS");
	if (ioctl(c->group, VFIO_GROUP_GET_STATUS, &status))
		goto fail;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = EPERM;
		goto fail;
	}
	STEP("VFIO_GROUP_SET_CONTAINER");
	if (ioctl(c->group, VFIO_GROUP_SET_CONTAINER, &c->container))
		goto fail;
	STEP("VFIO_SET_IOMMU(TYPE1v2)");
	if (ioctl(c->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		goto fail;
	STEP("mmap DMA memory");
	c->dma = mmap(NULL, DMA_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->dma == MAP_FAILED) {
		c->dma = NULL;
		goto fail;
	}
	c->dma_size = DMA_SIZE;
	STEP("VFIO_IOMMU_MAP_DMA");
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	map.vaddr = (uintptr_t)c->dma;
	map.iova = 0;
	map.size = DMA_SIZE;
	if (ioctl(c->container, VFIO_IOMMU_MAP_DMA, &map))
		goto fail;
	STEP("VFIO_GROUP_GET_DEVICE_FD");
	c->device = ioctl(c->group, VFIO_GROUP_GET_DEVICE_FD, uuid);
	if (c->device < 0)
		goto fail;
	STEP("done");
	return 0;
fail:
	ret = -errno;
	vfio_client_close(c);
	return ret;
}

void vfio_client_close(struct vfio_client *c)
{
	if (c->device >= 0)
		close(c->device);
	if (c->group >= 0)
		close(c->group);
	if (c->container >= 0)
		close(c->container);
	if (c->dma)
		munmap(c->dma, c->dma_size);
	vfio_client_init(c);
}

ssize_t region_read(struct vfio_client *c, int idx, uint64_t off,
		    void *buf, size_t len)
{
	ssize_t n = pread(c->device, buf, len, MUSER_REGION_OFFSET(idx) + off);

	return n < 0 ? -errno : n;
}

ssize_t region_write(struct vfio_client *c, int idx, uint64_t off,
		     const void *buf, size_t len)
{
	ssize_t n = pwrite(c->device, buf, len, MUSER_REGION_OFFSET(idx) + off);

	return n < 0 ? -errno : n;
}

int get_region_info(int device, int idx, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = idx;
	return ioctl(device, VFIO_DEVICE_GET_REGION_INFO, ri) ? -errno : 0;
}

int get_irq_info(int device, int idx, struct vfio_irq_info *ii)
{
	memset(ii, 0, sizeof(*ii));
	ii->argsz = sizeof(*ii);
	ii->index = idx;
	return ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, ii) ? -errno : 0;
}

int set_irq_eventfd(int device, int idx, int vector, int fd)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	int32_t efd = fd;

	memset(buf, 0, sizeof(buf));
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = idx;
	set->start = vector;
	set->count = 1;
	memcpy(set->data, &efd, sizeof(efd));
	return ioctl(device, VFIO_DEVICE_SET_IRQS, set) ? -errno : 0;
}

int64_t eventfd_wait(int efd, int timeout_ms)
{
	uint64_t val;
	int ret;

	ret = poll_in(efd, timeout_ms);
	if (ret <= 0)
		return ret;
	if (read(efd, &val, sizeof(val)) != sizeof(val))
		return -errno;
	return (int64_t)val;
}

static void *async_fn(void *arg)
{
	struct async_access *a = arg;
	int64_t t0 = now_ms();

	if (a->write)
		a->ret = region_write(a->c, a->region, a->off, a->buf, a->len);
	else
		a->ret = region_read(a->c, a->region, a->off, a->buf, a->len);
	a->elapsed_ms = now_ms() - t0;
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

int async_start(struct async_access *a, struct vfio_client *c, int region,
		uint64_t off, size_t len, bool write)
{
	a->c = c;
	a->region = region;
	a->off = off;
	a->len = len;
	a->write = write;
	a->ret = 0;
	a->done = 0;
	if (len > sizeof(a->buf))
		return -E2BIG;
	return -pthread_create(&a->thread, NULL, async_fn, a);
}

ssize_t async_join(struct async_access *a)
{
	pthread_join(a->thread, NULL);
	return a->ret;
}

int vfio_set_irqs(int device, uint32_t flags, uint32_t index, uint32_t start,
		  uint32_t count, const void *data)
{
	size_t each = 0, size;
	struct vfio_irq_set *set;
	int ret = 0;

	switch (flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_BOOL:
		each = sizeof(uint8_t);
		break;
	case VFIO_IRQ_SET_DATA_EVENTFD:
		each = sizeof(int32_t);
		break;
	}
	size = sizeof(*set) + (size_t)count * each;
	set = calloc(1, size);
	if (!set)
		return -ENOMEM;
	set->argsz = size;
	set->flags = flags;
	set->index = index;
	set->start = start;
	set->count = count;
	if (each && data)
		memcpy(set->data, data, (size_t)count * each);
	if (ioctl(device, VFIO_DEVICE_SET_IRQS, set))
		ret = -errno;
	free(set);
	return ret;
}

void *map_fd(int fd, uint64_t offset, size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd,
		       (off_t)offset);

	return p == MAP_FAILED ? NULL : p;
}

void *reset_fn(void *arg)
{
	struct reset_arg *x = arg;

	x->ret = ioctl(x->fd, VFIO_DEVICE_RESET) ? -errno : 0;
	return NULL;
}
