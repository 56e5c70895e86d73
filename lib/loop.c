// SPDX-License-Identifier: BSD-3-Clause
/*
 * Serving requests: the non-blocking dispatcher for callers with their own
 * event loop, the polling loop over several devices built on it (spin,
 * then sleep in poll(2)), and the run loops built on that.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>
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

/* Answer in the ring what fits there, the rest by write(). */
static int answer(struct muser_dev *dev, size_t len, bool *refused)
{
	if (muser_ring_answer(dev, dev->out_buf, &len) < 0)
		return -1;
	if (len && muser_write_replies(dev, dev->out_buf, len) < 0) {
		if (errno != EINVAL)
			return -1;
		*refused = true;
	}
	return 0;
}

/* Handle one batch of requests in dev->in_buf and answer them. */
static int serve_batch(struct muser_dev *dev, size_t len,
		       unsigned int *handled, bool *refused)
{
	size_t pos = 0, used, out_len;

	while (pos < len) {
		muser_irq_batch_begin(dev);
		used = muser_handle_requests(dev, dev->in_buf + pos, len - pos,
					     dev->out_buf, MUSER_OUT_BUF_SIZE,
					     &out_len, handled);
		/* Before the answers: a crash then replays, losing nothing. */
		muser_irq_batch_end(dev);
		if (!used && !out_len) {	/* cannot happen: no progress */
			errno = EIO;
			return -1;
		}
		pos += used;
		/* Answered only once saved: a crash replays what is not. */
		muser_state_save(dev);
		if (out_len && answer(dev, out_len, refused) < 0)
			return -1;
	}
	return 0;
}

/*
 * Serve the requests pending. With a ring, its SQ first, then read() only
 * when the kernel says so: requests wait for it (MUSER_RING_F_READ), the
 * ring broke, or this file is no longer attached (read() says why). The
 * flags are loaded before the SQ is drained: a request left for read()
 * keeps newer ones out of the SQ, so what the SQ held then is older than
 * what read() returns.
 */
MUSER_EXPORT int muser_dispatch(struct muser_dev *dev)
{
	unsigned int handled = 0;
	bool refused = false;
	uint32_t kflags;
	size_t len;
	ssize_t n;
	int round, e;

	if (!dev->realized) {
		errno = EINVAL;
		return -1;
	}
	for (round = 0; round < MUSER_DISPATCH_ROUNDS; round++) {
		if (muser_ring_up(dev)) {
			kflags = muser_ring_kflags(dev);
			len = muser_ring_take(dev, dev->in_buf, MUSER_IN_BUF_SIZE);
			if (len && serve_batch(dev, len, &handled, &refused) < 0)
				return -1;
			if (!(kflags & (MUSER_RING_F_READ | MUSER_RING_F_BROKEN |
					MUSER_RING_F_RETIRED)) &&
			    muser_ring_up(dev))
				break;
		}
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

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ll + ts.tv_nsec / 1000;
}

/* Whether muser_stop() was called on one of @devs (and forget it). */
static bool take_stop(struct muser_dev *const *devs, unsigned int n)
{
	bool stopped = false;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (__atomic_exchange_n(&devs[i]->stop_requested, 0,
					__ATOMIC_ACQUIRE)) {
			drain_stop(devs[i]);
			stopped = true;
		}
	}
	return stopped;
}

/* Each device's control node and stop eventfd in @pfd (2 * @n). */
static int sleep_in_poll(struct muser_dev *const *devs, unsigned int n,
			 struct pollfd *pfd, int timeout_ms)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		pfd[2 * i] = (struct pollfd){ .fd = devs[i]->fd, .events = POLLIN };
		pfd[2 * i + 1] = (struct pollfd){ .fd = devs[i]->stop_fd,
						  .events = POLLIN };
	}
	return poll(pfd, 2 * n, timeout_ms);
}

MUSER_EXPORT int muser_dispatch_poll(struct muser_dev *const *devs,
				     unsigned int n, unsigned int spin_us,
				     int timeout_ms)
{
	struct pollfd pfd[2 * MUSER_POLL_MAX_DEVS];
	int64_t start = now_us(), waited;
	bool spin = spin_us > 0;
	int hung_up = -1, handled, ret;
	unsigned int i;

	if (!devs || !n || n > MUSER_POLL_MAX_DEVS) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!devs[i]) {
			errno = EINVAL;
			return -1;
		}
	}
	for (;;) {
		if (take_stop(devs, n)) {
			errno = EINTR;
			return -1;
		}
		handled = 0;
		for (i = 0; i < n; i++) {
			ret = muser_dispatch(devs[i]);
			if (ret < 0)
				return -1;
			handled = ret > INT_MAX - handled ? INT_MAX : handled + ret;
		}
		if (handled)
			return handled;
		if (hung_up >= 0) {
			/* Not attached, yet read() said nothing: give up. */
			muser_err(devs[hung_up], "control node hung up");
			errno = ENODEV;
			return -1;
		}
		waited = now_us() - start;
		if (timeout_ms >= 0 && waited >= timeout_ms * 1000ll)
			return 0;
		if (spin && (spin_us == MUSER_POLL_BUSY || waited < spin_us))
			continue;
		/* Nothing for spin_us: sleep until a device has work. */
		spin = false;
		ret = sleep_in_poll(devs, n, pfd, timeout_ms < 0 ? -1 :
				    (int)(timeout_ms - waited / 1000));
		if (ret < 0 && errno != EINTR)
			return -1;
		if (!ret)
			return 0;
		for (i = 0; ret > 0 && i < n; i++) {
			if (pfd[2 * i + 1].revents)
				__atomic_store_n(&devs[i]->stop_requested, 1,
						 __ATOMIC_RELEASE);
			if (!(pfd[2 * i].revents & POLLIN) &&
			    pfd[2 * i].revents & (POLLHUP | POLLERR | POLLNVAL))
				hung_up = i;
		}
	}
}

MUSER_EXPORT int muser_run_poll(struct muser_dev *const *devs, unsigned int n,
				unsigned int spin_us)
{
	unsigned int i;

	for (i = 0; devs && i < n && i < MUSER_POLL_MAX_DEVS; i++) {
		if (devs[i] && !devs[i]->realized) {
			errno = EINVAL;
			return -1;
		}
	}
	for (;;) {
		if (muser_dispatch_poll(devs, n, spin_us, -1) >= 0)
			continue;
		return errno == EINTR ? 0 : -1;
	}
}

MUSER_EXPORT int muser_run(struct muser_dev *dev)
{
	return muser_run_poll(&dev, 1, 0);
}

MUSER_EXPORT int muser_stop(struct muser_dev *dev)
{
	int saved_errno = errno;
	uint64_t one = 1;

	__atomic_store_n(&dev->stop_requested, 1, __ATOMIC_RELEASE);
	if (write(dev->stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -1;
	errno = saved_errno;
	return 0;
}
