// SPDX-License-Identifier: GPL-2.0
/*
 * sysfs, module parameters and mdev management; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common.h"

int sysfs_write(const char *path, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, s, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

int sysfs_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return n;
}

int sysfs_read_long(const char *path, long *val)
{
	char buf[64], *end;
	int ret;

	ret = sysfs_read(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	errno = 0;
	*val = strtol(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

int param_get(const char *name, long *val)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), MUSER_PARAM_DIR "/%s", name);
	return sysfs_read_long(path, val);
}

int param_set(const char *name, long val)
{
	char path[PATH_MAX], s[32];

	snprintf(path, sizeof(path), MUSER_PARAM_DIR "/%s", name);
	snprintf(s, sizeof(s), "%ld", val);
	return sysfs_write(path, s);
}

void uuid_gen(char uuid[UUID_LEN + 1])
{
	char buf[64];

	/* The file holds a newline too: read it whole, not into @uuid. */
	if (sysfs_read("/proc/sys/kernel/random/uuid", buf, sizeof(buf)) ==
	    UUID_LEN) {
		memcpy(uuid, buf, UUID_LEN + 1);
		return;
	}
	/* Fallback: random version-4 UUID. */
	srandom(getpid() ^ now_ms());
	snprintf(uuid, UUID_LEN + 1, "%08lx-%04lx-4%03lx-a%03lx-%012llx",
		 random() & 0xffffffffL, random() & 0xffffL, random() & 0xfffL,
		 random() & 0xfffL,
		 ((unsigned long long)random() << 24 ^ random()) &
			 0xffffffffffffULL);
}

int mdev_create_uuid(const char *uuid)
{
	return sysfs_write(MDEV_TYPE_DIR "/create", uuid);
}

int mdev_create(char uuid[UUID_LEN + 1])
{
	uuid_gen(uuid);
	return mdev_create_uuid(uuid);
}

int mdev_remove(const char *uuid)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/remove", uuid);
	return sysfs_write(path, "1");
}

bool path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int wait_path(const char *path, bool want, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	for (;;) {
		if (path_exists(path) == want)
			return 0;
		if (now_ms() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

bool muser_loaded(void)
{
	return path_exists(MDEV_TYPE_DIR "/create");
}

long dma_stat(const char *uuid, const char *name)
{
	char path[256];
	long v;

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/dma/%s", uuid, name);
	return sysfs_read_long(path, &v) ? -1 : v;
}

int dma_stat_set(const char *uuid, const char *name, long val)
{
	char path[256], s[32];

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/dma/%s", uuid, name);
	snprintf(s, sizeof(s), "%ld", val);
	return sysfs_write(path, s);
}
