// SPDX-License-Identifier: GPL-2.0
/*
 * Time and waiting; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <time.h>

#include "common.h"

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

bool wait_flag(volatile int *flag, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (now_ms() > end)
			return false;
		sleep_ms(5);
	}
	return true;
}

int poll_in(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	return ret ? pfd.revents : 0;
}
