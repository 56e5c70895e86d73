// SPDX-License-Identifier: BSD-3-Clause
/*
 * Serving requests: the non-blocking dispatcher for callers with their own
 * event loop, and the blocking run loop built on it.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "private.h"

MUSER_EXPORT int muser_get_poll_fd(const struct muser_dev *dev)
{
	return dev->fd;
}

MUSER_EXPORT bool muser_req_replayed(const struct muser_dev *dev)
{
	return dev->cur_req_flags & MUSER_REQ_F_REPLAYED;
}

MUSER_EXPORT uint64_t muser_req_id(const struct muser_dev *dev)
{
	return dev->cur_req_id;
}

/* Handle one batch read from the control node and write its replies. */
static int serve_batch(struct muser_dev *dev, size_t len,
		       unsigned int *handled, bool *refused)
{
	size_t pos = 0, used, out_len;

	while (pos < len) {
		used = muser_handle_requests(dev, dev->in_buf + pos, len - pos,
					     dev->out_buf, MUSER_OUT_BUF_SIZE,
					     &out_len, handled);
		if (!used && !out_len) {	/* cannot happen: no progress */
			errno = EIO;
			return -1;
		}
		pos += used;
		/* Answered only once saved: a crash replays what is not. */
		muser_state_save(dev);
		if (out_len && muser_write_replies(dev, dev->out_buf, out_len) < 0) {
			if (errno != EINVAL)
				return -1;
			*refused = true;
		}
	}
	return 0;
}

MUSER_EXPORT int muser_dispatch(struct muser_dev *dev)
{
	unsigned int handled = 0;
	bool refused = false;
	ssize_t n;
	int round, e;

	if (!dev->realized) {
		errno = EINVAL;
		return -1;
	}
	for (round = 0; round < MUSER_DISPATCH_ROUNDS; round++) {
		n = dev->io->read(dev, dev->in_buf, MUSER_IN_BUF_SIZE);
		if (n < 0) {
			e = errno;
			if (e == EINTR)
				continue;
			if (e == EAGAIN || e == EWOULDBLOCK)
				break;
			/* ENOTCONN: taken over or detached, as documented */
			if (e == ENOTCONN)
				muser_dbg(dev, "read of requests: %s", strerror(e));
			else
				muser_err(dev, "read of requests: %s", strerror(e));
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		if (serve_batch(dev, n, &handled, &refused) < 0)
			return -1;
	}
	if (refused) {
		errno = EINVAL;
		return -1;
	}
	return handled > INT_MAX ? INT_MAX : (int)handled;
}

static void drain_stop(struct muser_dev *dev)
{
	uint64_t v;

	if (read(dev->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		muser_warn(dev, "stop eventfd: %s", strerror(errno));
}

MUSER_EXPORT int muser_run(struct muser_dev *dev)
{
	struct pollfd pfd[2] = {
		{ .fd = dev->fd, .events = POLLIN },
		{ .fd = dev->stop_fd, .events = POLLIN },
	};

	if (!dev->realized) {
		errno = EINVAL;
		return -1;
	}
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pfd[1].revents) {
			drain_stop(dev);
			return 0;
		}
		if (pfd[0].revents & POLLIN) {
			if (muser_dispatch(dev) < 0)
				return -1;
		} else if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			/* Detached or removed: read() tells which. */
			if (muser_dispatch(dev) < 0)
				return -1;
			muser_err(dev, "control node hung up");
			errno = ENODEV;
			return -1;
		}
	}
}

MUSER_EXPORT int muser_stop(struct muser_dev *dev)
{
	int saved_errno = errno;
	uint64_t one = 1;

	if (write(dev->stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -1;
	errno = saved_errno;
	return 0;
}
