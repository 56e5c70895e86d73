// SPDX-License-Identifier: BSD-3-Clause
/*
 * Device lifecycle: open the control node, allocate, attach (realize),
 * destroy.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "private.h"

static ssize_t fd_read(struct muser_dev *dev, void *buf, size_t len)
{
	return read(dev->fd, buf, len);
}

static ssize_t fd_write(struct muser_dev *dev, const void *buf, size_t len)
{
	return write(dev->fd, buf, len);
}

static int fd_ioctl(struct muser_dev *dev, unsigned long req, void *arg)
{
	return ioctl(dev->fd, req, arg);
}

static void *fd_mmap(struct muser_dev *dev, size_t len, uint64_t offset)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, dev->fd,
		       (off_t)offset);

	return p == MAP_FAILED ? NULL : p;
}

static void fd_munmap(struct muser_dev *dev, void *addr, size_t len)
{
	(void)dev;
	munmap(addr, len);
}

static const struct muser_io_ops fd_ops = {
	.read = fd_read,
	.write = fd_write,
	.ioctl = fd_ioctl,
	.mmap = fd_mmap,
	.munmap = fd_munmap,
};

/*
 * Allocate a device around an open control node @fd (owned by the device
 * from then on, closed by muser_dev_destroy()). @io NULL means the real
 * system calls on @fd. On failure @fd is left open.
 */
struct muser_dev *muser_dev_alloc(int fd, const struct muser_io_ops *io,
				  void *io_priv, const char *name)
{
	struct muser_dev *dev;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	dev->fd = fd;
	dev->io = io ? io : &fd_ops;
	dev->io_priv = io_priv;
	dev->log_level = LOG_WARNING;
	dev->ring_entries = MUSER_RING_DEFAULT_ENTRIES;
	snprintf(dev->name, sizeof(dev->name), "%s", name);

	dev->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	dev->in_buf = malloc(MUSER_IN_BUF_SIZE);
	dev->out_buf = malloc(MUSER_OUT_BUF_SIZE);
	if (dev->stop_fd < 0 || !dev->in_buf || !dev->out_buf) {
		int e = errno;

		if (dev->stop_fd >= 0)
			close(dev->stop_fd);
		free(dev->in_buf);
		free(dev->out_buf);
		free(dev);
		errno = e;
		return NULL;
	}
	return dev;
}

static bool is_uuid(const char *s)
{
	int i;

	for (i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (!s[i] || dash != (s[i] == '-'))
			return false;
		if (!dash && !isxdigit((unsigned char)s[i]))
			return false;
	}
	return s[36] == '\0';
}

MUSER_EXPORT struct muser_dev *muser_dev_create(const char *uuid, int flags)
{
	char path[sizeof(MUSER_DEV_DIR) + 40];

	if (!uuid || !is_uuid(uuid)) {
		errno = EINVAL;
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", MUSER_DEV_DIR, uuid);
	return muser_dev_create_path(path, flags);
}

MUSER_EXPORT struct muser_dev *muser_dev_create_path(const char *path,
						     int flags)
{
	struct muser_dev *dev;
	const char *name;
	int fd, e;

	if (!path || flags != 0) {
		errno = EINVAL;
		return NULL;
	}
	fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	name = strrchr(path, '/');
	dev = muser_dev_alloc(fd, NULL, NULL, name ? name + 1 : path);
	if (!dev) {
		e = errno;
		close(fd);
		errno = e;
	}
	return dev;
}

MUSER_EXPORT void muser_dev_destroy(struct muser_dev *dev)
{
	int e = errno;

	if (!dev)
		return;
	muser_dma_free(dev);
	muser_state_free(dev);
	muser_ring_free(dev);
	muser_mig_free(dev);
	if (dev->fd >= 0)
		close(dev->fd);
	close(dev->stop_fd);
	muser_caps_free(dev);
	free(dev->in_buf);
	free(dev->out_buf);
	free(dev);
	errno = e;
}

MUSER_EXPORT int muser_dev_set_priv(struct muser_dev *dev, void *priv)
{
	dev->priv = priv;
	return 0;
}

MUSER_EXPORT void *muser_dev_get_priv(const struct muser_dev *dev)
{
	return dev->priv;
}

static int realize(struct muser_dev *dev, unsigned long attach)
{
	int e;

	if (dev->realized) {
		errno = EBUSY;
		return -1;
	}
	if (dev->vendor == 0 || dev->vendor == 0xffff) {
		muser_err(dev, "realize: PCI IDs not set");
		errno = EINVAL;
		return -1;
	}
	muser_pcicfg_init(dev);
	muser_build_device_info(dev, &dev->info);
	if (dev->io->ioctl(dev, attach, &dev->info) < 0) {
		e = errno;
		muser_err(dev, "attach: %s", strerror(e));
		errno = e;
		return -1;
	}
	if (muser_state_attach(dev) < 0 || muser_ring_setup(dev) < 0)
		goto err_detach;
	dev->realized = true;
	if (dev->recovered && dev->recover_cb &&
	    dev->recover_cb(dev, dev->recover_priv) < 0) {
		muser_err(dev, "recover callback: %s", strerror(errno));
		dev->realized = false;
		goto err_detach;
	}
	if (dev->recovered && muser_mig_recover(dev) < 0) {
		muser_err(dev, "migration: recovering: %s", strerror(errno));
		dev->realized = false;
		goto err_detach;
	}
	muser_info(dev, "attached");
	return 0;

err_detach:
	e = errno;
	dev->io->ioctl(dev, MUSER_IOC_DETACH, NULL);
	muser_ring_free(dev);
	muser_state_free(dev);
	dev->recovered = false;
	errno = e;
	return -1;
}

MUSER_EXPORT int muser_realize(struct muser_dev *dev)
{
	return realize(dev, MUSER_IOC_ATTACH);
}

MUSER_EXPORT int muser_takeover(struct muser_dev *dev)
{
	return realize(dev, MUSER_IOC_TAKEOVER);
}
