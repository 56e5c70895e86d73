// SPDX-License-Identifier: GPL-2.0
/*
 * Loading and unloading muser.ko itself; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "common.h"

#ifndef MUSER_KMOD_DIR
#define MUSER_KMOD_DIR "build/kmod"
#endif

const char *muser_ko_path(char *buf, size_t len)
{
	const char *env = getenv("MUSER_KO");
	struct utsname u;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return buf;
	}
	if (uname(&u))
		strcpy(u.release, "unknown");
	snprintf(buf, len, MUSER_KMOD_DIR "/%s/muser.ko", u.release);
	return buf;
}

int muser_module_load(const char *params)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	fd = open(muser_ko_path(path, sizeof(path)), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params ? params : "", 0))
		ret = -errno;
	close(fd);
	return ret;
}

int muser_module_unload(void)
{
	return syscall(SYS_delete_module, "muser", O_NONBLOCK) ? -errno : 0;
}

long muser_module_refcnt(void)
{
	long v;

	return sysfs_read_long("/sys/module/muser/refcnt", &v) ? -1 : v;
}
