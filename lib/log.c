// SPDX-License-Identifier: BSD-3-Clause
/*
 * Logging: a per-device handler and level; the default writes to stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "private.h"

static void default_log(struct muser_dev *dev, int level, const char *msg)
{
	(void)level;
	fprintf(stderr, "muser %s: %s\n", dev->name, msg);
}

MUSER_EXPORT int muser_set_log(struct muser_dev *dev, muser_log_cb cb,
			       int level)
{
	if (level < LOG_EMERG || level > LOG_DEBUG) {
		errno = EINVAL;
		return -1;
	}
	dev->log_cb = cb ? cb : default_log;
	dev->log_level = level;
	return 0;
}

MUSER_EXPORT void muser_log(struct muser_dev *dev, int level,
			    const char *fmt, ...)
{
	int saved_errno = errno;
	char msg[512];
	va_list ap;

	if (level > dev->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(dev->log_cb ? dev->log_cb : default_log)(dev, level, msg);
	errno = saved_errno;
}
