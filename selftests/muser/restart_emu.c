// SPDX-License-Identifier: GPL-2.0
/*
 * The libmuser emulator process of the restart tests; see restart_emu.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <muser.h>

#include "restart_emu.h"

#define CHUNK	(1ull << MUSER_DMA_CHUNK_SHIFT)

int64_t emu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct emu_shared *emu_shared_new(void)
{
	void *p = mmap(NULL, sizeof(struct emu_shared), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void emu_shared_free(struct emu_shared *sh)
{
	if (sh)
		munmap(sh, sizeof(*sh));
}

/* ------------------------------------------------------------ the child */

struct emu {
	const struct emu_cfg *cfg;
	struct emu_shared *sh;
	struct emu_state *st;
	bool recover_cb;
};

#define INC(field) __atomic_fetch_add(&sh->field, 1, __ATOMIC_RELAXED)

static void emu_error(struct emu_shared *sh, const char *what, int err)
{
	INC(errors);
	snprintf(sh->last_error, sizeof(sh->last_error), "pid %d: %s: %s",
		 getpid(), what, strerror(err));
}

static ssize_t bar0_cb(struct muser_dev *dev, void *priv, void *buf,
		       size_t count, uint64_t offset, bool is_write)
{
	struct emu *e = priv;
	struct emu_shared *sh = e->sh;
	int64_t zero = 0;
	size_t n = 0;

	__atomic_compare_exchange_n(&sh->t_first_req, &zero, emu_now_ns(),
				    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	INC(requests);
	if (muser_req_replayed(dev))
		INC(replays);
	if (offset < sizeof(e->st->regs))
		n = sizeof(e->st->regs) - offset < count ?
		    sizeof(e->st->regs) - offset : count;
	if (is_write)
		memcpy((uint8_t *)e->st->regs + offset, buf, n);
	else if (n)
		memcpy(buf, (uint8_t *)e->st->regs + offset, n);
	return count;
}

static int recover_cb(struct muser_dev *dev, void *priv)
{
	struct emu *e = priv;

	(void)dev;
	e->recover_cb = true;
	__atomic_fetch_add(&e->sh->recover_cbs, 1, __ATOMIC_RELAXED);
	return 0;
}

static void log_cb(struct muser_dev *dev, int level, const char *msg)
{
	(void)dev;
	(void)level;
	dprintf(STDERR_FILENO, "# emulator %d: %s\n", getpid(), msg);
}

static bool all_zero(const void *p, size_t len)
{
	const uint64_t *q = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (q[i])
			return false;
	return true;
}

static void report(int fd, struct emu_report *r)
{
	if (write(fd, r, sizeof(*r)) != sizeof(*r)) {
		/* The test gave up on us: nothing to do. */
	}
}

#define FAIL(w) do { r.err = errno ? errno : EIO;			\
	snprintf(r.what, sizeof(r.what), "%s", w);			\
	emu_error(sh, w, r.err); report(wfd, &r); _exit(2); } while (0)

static void __attribute__((noreturn))
emu_main(const struct emu_cfg *cfg, int wfd)
{
	struct emu_shared *sh = cfg->sh;
	struct emu_report r = { .t_start = emu_now_ns() };
	struct emu e = { .cfg = cfg, .sh = sh };
	struct muser_dev *dev;
	struct muser_sg *sg = NULL;
	size_t size;
	int n, nsg;

	INC(started);
	dev = muser_dev_create(cfg->uuid, 0);
	if (!dev)
		FAIL("muser_dev_create");
	muser_set_log(dev, log_cb, LOG_WARNING);
	if (muser_pci_set_ids(dev, EMU_VENDOR, cfg->device_id, EMU_VENDOR, 1) ||
	    muser_pci_set_class(dev, 0xff0000) ||
	    muser_pci_set_irq_pin(dev, 1) ||
	    muser_setup_bar(dev, 0, EMU_BAR0_SIZE, MUSER_BAR_MEM32, bar0_cb, &e) ||
	    muser_add_cap_msix(dev, EMU_MSIX_NVEC, 0, EMU_MSIX_TABLE, 0,
			       EMU_MSIX_PBA) < 0 ||
	    muser_set_recover_cb(dev, recover_cb, &e))
		FAIL("describing the device");
	if (muser_realize(dev))
		FAIL("muser_realize");
	r.t_realized = emu_now_ns();
	INC(realized);
	e.st = muser_state(dev, &size);
	if (!e.st || size < sizeof(*e.st))
		FAIL("muser_state");
	r.recovered = muser_recovered(dev);
	r.recover_cb = e.recover_cb;
	if (r.recovered) {
		INC(recovered);
		if (e.st->magic != EMU_STATE_MAGIC) {
			errno = EPROTO;
			FAIL("recovered, but not our state");
		}
	} else {
		INC(fresh);
		r.state_zero = all_zero(e.st, size);
		e.st->magic = EMU_STATE_MAGIC;
	}
	if (cfg->dma_len) {
		nsg = cfg->dma_len / CHUNK + 2;
		sg = calloc(nsg, sizeof(*sg));
		if (!sg)
			FAIL("calloc");
		n = muser_dma_map(dev, cfg->dma_iova, cfg->dma_len,
				  MUSER_DMA_READ | MUSER_DMA_WRITE, sg, nsg);
		if (n < 0)
			FAIL("muser_dma_map");
	}
	r.t_mapped = emu_now_ns();
	report(wfd, &r);
	close(wfd);
	if (muser_run(dev))
		emu_error(sh, "muser_run", errno);
	_exit(3);
}

pid_t emu_spawn(const struct emu_cfg *cfg, int *report_fd)
{
	pid_t parent = getpid(), pid;
	int p[2], fd, max;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		/*
		 * Hold none of the VMM's files (VFIO container, group,
		 * device): the device must see the VMM close when it does.
		 */
		max = (int)sysconf(_SC_OPEN_MAX);
		for (fd = 3; fd < max && fd < 65536; fd++)
			if (fd != p[1])
				close(fd);
		emu_main(cfg, p[1]);
	}
	close(p[1]);
	*report_fd = p[0];
	return pid;
}

int emu_wait_report(int fd, struct emu_report *r, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t have = 0;
	int64_t end = emu_now_ns() / 1000000 + timeout_ms;
	ssize_t n;
	int ret;

	while (have < sizeof(*r)) {
		int64_t left = end - emu_now_ns() / 1000000;

		if (left <= 0)
			return -ETIMEDOUT;
		ret = poll(&pfd, 1, (int)left);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return -ETIMEDOUT;
		n = read(fd, (char *)r + have, sizeof(*r) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECHILD;
		have += n;
	}
	return 0;
}

int emu_kill(pid_t pid)
{
	int status;

	if (pid <= 0)
		return -ECHILD;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return status;
}
