// SPDX-License-Identifier: GPL-2.0
/*
 * The fixture layer of the muser selftests; see fixture.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "fixture.h"

void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->kmsg = -1;
	r->ctl = -1;
	r->saved_timeout = -1;
	r->saved_spin_us = -1;
	r->emu.pid = -1;
	r->emu.out = -1;
	vfio_client_init(&r->c);
}

#define STEP(name) do { if (step) *step = name; } while (0)

int rig_open_vmm(struct rig *r, const char **step)
{
	return vfio_client_open(&r->c, r->uuid, step);
}

int rig_setup(struct rig *r, const char *name,
	      const struct muser_device_info *layout, unsigned int flags,
	      const char **step)
{
	int ret;

	r->name = name;
	r->kmsg = kmsg_start(name);
	STEP("create the mdev");
	ret = mdev_create(r->uuid);
	if (ret)
		return ret;
	r->created = true;
	if (flags & RIG_NO_CTL)
		goto vmm;
	STEP("open the control node");
	r->ctl = ctl_open(r->uuid, flags & RIG_NONBLOCK ? O_NONBLOCK : 0);
	if (r->ctl < 0)
		return r->ctl;
	if (layout)
		r->layout = *layout;
	else
		layout_default(&r->layout);
	if (!(flags & RIG_DETACHED)) {
		STEP("MUSER_IOC_ATTACH");
		ret = ctl_attach(r->ctl, &r->layout);
		if (ret)
			return ret;
	}
vmm:
	if (flags & RIG_NO_VMM)
		return 0;
	return rig_open_vmm(r, step);
}

int rig_start_emulator(struct rig *r, const char *path, const char *args)
{
	/* sample_start() runs $MUSER_SAMPLE $MUSER_SAMPLE_ARGS UUID. */
	if (path && setenv("MUSER_SAMPLE", path, 1))
		return -errno;
	if (args && setenv("MUSER_SAMPLE_ARGS", args, 1))
		return -errno;
	return sample_start(&r->emu, r->uuid, 20000);
}

void *rig_map(struct rig *r, int fd, int region, uint64_t off, size_t len)
{
	void *p = map_fd(fd, MUSER_REGION_OFFSET(region) + off, len, MAP_SHARED);

	if (p && r->nr_maps < RIG_MAPS) {
		r->maps[r->nr_maps] = p;
		r->map_len[r->nr_maps++] = len;
	}
	return p;
}

void rig_unmap(struct rig *r, volatile void *p)
{
	int i;

	for (i = 0; i < r->nr_maps; i++) {
		if (r->maps[i] == p) {
			munmap(r->maps[i], r->map_len[i]);
			r->maps[i] = r->maps[--r->nr_maps];
			r->map_len[i] = r->map_len[r->nr_maps];
			return;
		}
	}
}

int rig_teardown(struct rig *r)
{
	int problems = 0, status, i;
	long pinned = 0;

	while (r->nr_maps > 0) {
		r->nr_maps--;
		munmap(r->maps[r->nr_maps], r->map_len[r->nr_maps]);
	}
	vfio_client_close(&r->c);
	if (r->created) {
		/* An emulator process's pins may go a little later. */
		for (i = 0; i < 100; i++) {
			pinned = dma_stat(r->uuid, "pinned_pages");
			if (pinned <= 0)
				break;
			sleep_ms(20);
		}
		if (pinned) {
			fprintf(stderr, "# teardown: %ld pages pinned after the VMM closed\n",
				pinned);
			problems++;
		}
	}
	if (r->ctl >= 0)
		close(r->ctl);
	r->ctl = -1;
	if (r->emu.pid > 0) {
		status = sample_stop(&r->emu);
		if (status) {
			fprintf(stderr, "# teardown: the emulator did not exit cleanly (status %#x)\n",
				status);
			problems++;
		}
	}
	if (r->created && mdev_remove(r->uuid)) {
		fprintf(stderr, "# teardown: cannot remove %s\n", r->uuid);
		problems++;
	}
	r->created = false;
	if (r->saved_timeout >= 0 && param_set("timeout_ms", r->saved_timeout)) {
		fprintf(stderr, "# teardown: cannot restore timeout_ms %ld\n",
			r->saved_timeout);
		problems++;
	}
	r->saved_timeout = -1;
	if (r->saved_spin_us >= 0 && param_set("spin_us", r->saved_spin_us)) {
		fprintf(stderr, "# teardown: cannot restore spin_us %ld\n",
			r->saved_spin_us);
		problems++;
	}
	r->saved_spin_us = -1;
	if (r->kmsg >= 0)
		problems += kmsg_check(r->kmsg, r->name ? r->name : "rig");
	r->kmsg = -1;
	return problems;
}

int rig_set_timeout(struct rig *r, long ms)
{
	int ret;

	if (r->saved_timeout < 0) {
		ret = param_get("timeout_ms", &r->saved_timeout);
		if (ret) {
			r->saved_timeout = -1;
			return ret;
		}
	}
	return param_set("timeout_ms", ms);
}

int rig_set_spin_us(struct rig *r, long us)
{
	int ret;

	if (r->saved_spin_us < 0) {
		ret = param_get("spin_us", &r->saved_spin_us);
		if (ret) {
			r->saved_spin_us = -1;
			return ret;
		}
	}
	return param_set("spin_us", us);
}

int emu_next_request(int ctl, struct emu_req *r, int timeout_ms)
{
	static __thread struct emu_req reqs[16];
	int64_t end = now_ms() + timeout_ms;
	int n, i, found = 0;

	while (!found) {
		int left = (int)(end - now_ms());

		if (left < 0)
			return 0;
		n = emu_read_timeout(ctl, reqs, 16, left);
		if (n == -EAGAIN)
			continue;
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			if (!reqs[i].hdr.id)
				continue;
			if (found++)
				return -EPROTO;
			*r = reqs[i];
		}
	}
	return 1;
}

ssize_t lib_bar_zero_cb(struct muser_dev *dev, void *priv, void *buf,
			size_t count, uint64_t offset, bool is_write)
{
	(void)dev; (void)priv; (void)offset;
	if (!is_write)
		memset(buf, 0, count);
	return count;
}

int _test_dma_map(int ctl, uint64_t iova, uint64_t size, uint32_t flags,
		  uint64_t *offset)
{
	struct muser_dma_map m = {
		.argsz = sizeof(m), .flags = flags, .iova = iova, .size = size,
	};

	if (ioctl(ctl, MUSER_IOC_DMA_MAP, &m))
		return -errno;
	if (offset)
		*offset = m.offset;
	return 0;
}

int _test_dma_release(int ctl, uint64_t iova, uint64_t size)
{
	struct muser_dma_map m = { .argsz = sizeof(m), .iova = iova, .size = size };

	return ioctl(ctl, MUSER_IOC_DMA_RELEASE, &m) ? -errno : 0;
}

int _test_dma_rw(int ctl, uint64_t iova, void *buf, uint64_t size, bool write)
{
	struct muser_dma_rw rw = {
		.argsz = sizeof(rw), .flags = write ? MUSER_DMA_F_WRITE : 0,
		.iova = iova, .size = size, .data = (uintptr_t)buf,
	};

	return ioctl(ctl, MUSER_IOC_DMA_RW, &rw) ? -errno : 0;
}

int _test_vmm_map(struct vfio_client *c, void *vaddr, uint64_t iova,
		  uint64_t size, uint32_t flags)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map), .flags = flags, .vaddr = (uintptr_t)vaddr,
		.iova = iova, .size = size,
	};

	return ioctl(c->container, VFIO_IOMMU_MAP_DMA, &map) ? -errno : 0;
}

int _test_vmm_unmap(struct vfio_client *c, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap), .iova = iova, .size = size,
	};

	return ioctl(c->container, VFIO_IOMMU_UNMAP_DMA, &unmap) ? -errno : 0;
}

/* Per thread: touch() and poke() may run in several threads at once. */
static __thread sigjmp_buf fault_jmp;
static __thread volatile int fault_armed;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (fault_armed)
		siglongjmp(fault_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void fault_handlers(void)
{
	static bool done;
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };

	if (__atomic_exchange_n(&done, true, __ATOMIC_ACQ_REL))
		return;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

/* Read or write the byte at @p; false if that faulted. */
static bool fault_safe(volatile uint8_t *p, uint8_t *val, bool write)
{
	volatile bool ok = false;

	fault_handlers();
	if (!sigsetjmp(fault_jmp, 1)) {
		fault_armed = 1;
		if (write)
			*p = *val;
		else
			*val = *p;
		ok = true;
	}
	fault_armed = 0;
	return ok;
}

bool touch(volatile const uint8_t *p, uint8_t *val)
{
	return fault_safe((volatile uint8_t *)p, val, false);
}

bool poke(volatile uint8_t *p, uint8_t val)
{
	return fault_safe(p, &val, true);
}

uint8_t *guarded_alloc(size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t span = (len + pg - 1) / pg * pg;
	uint8_t *base;

	base = mmap(NULL, span + pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	if (mprotect(base + span, pg, PROT_NONE)) {
		munmap(base, span + pg);
		return NULL;
	}
	return base + span - len;
}

void guarded_free(uint8_t *p, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t span = (len + pg - 1) / pg * pg;

	if (p)
		munmap(p + len - span, span + pg);
}

uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

bool chance(uint64_t *s, unsigned int percent)
{
	return below(s, 100) < percent;
}

uint32_t edge32(uint64_t *s, uint32_t n)
{
	const uint32_t v[] = { 0, 1, 2, n - 1, n, n + 1, n * 2, 0x7fffffff,
			       0x80000000, UINT32_MAX - 1, UINT32_MAX };

	if (chance(s, 10))
		return (uint32_t)rnd(s);
	return v[below(s, sizeof(v) / sizeof(v[0]))];
}

uint64_t edge64(uint64_t *s, uint64_t n)
{
	const uint64_t v[] = { 0, 1, n - 1, n, n + 1, 2 * n, -n, 1ull << 63,
			       (1ull << 63) - 1, UINT64_MAX, UINT64_MAX - 4095 };

	switch (below(s, 10)) {
	case 0:
		return rnd(s);
	case 1:
	case 2:
		return 1ull << below(s, 64);
	}
	return v[below(s, sizeof(v) / sizeof(v[0]))];
}

bool want_has(struct want w, int err)
{
	int i;

	for (i = 0; i < w.nr; i++)
		if (w.err[i] == err)
			return true;
	return false;
}

void want_add(struct want *w, int err)
{
	if (!want_has(*w, err) && w->nr < (int)(sizeof(w->err) / sizeof(w->err[0])))
		w->err[w->nr++] = err;
}

const char *errname(int err)
{
	const char *s = err ? strerrorname_np(err) : "0";

	return s ? s : "E?";
}

char *want_str(struct want w, char *s, size_t len)
{
	size_t at = 0;
	int i;

	s[0] = 0;
	for (i = 0; i < w.nr && at < len; i++)
		at += snprintf(s + at, len - at, "%s%s", i ? "|" : "",
			       errname(w.err[i]));
	return s;
}

void vmiss(int *bad, long at, const char *fmt, va_list ap)
{
	char line[512];

	if (__atomic_fetch_add(bad, 1, __ATOMIC_RELAXED) >= MAX_REPORTS)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (at >= 0)
		fprintf(stderr, "# MISMATCH at call %ld: %s\n", at, line);
	else
		fprintf(stderr, "# MISMATCH: %s\n", line);
}

static void miss_line(int *bad, long at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmiss(bad, at, fmt, ap);
	va_end(ap);
}

bool vjudge(int *bad, long at, struct want w, long ret, int err,
	    const char *fmt, va_list ap)
{
	int got = ret < 0 ? err : 0;
	char call[256], ws[96];

	if (want_has(w, got))
		return true;
	vsnprintf(call, sizeof(call), fmt, ap);
	miss_line(bad, at, "%s: %s, expected %s", call, errname(got),
		  want_str(w, ws, sizeof(ws)));
	return false;
}

unsigned long long env_ull(const char *name, unsigned long long def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

void fuzz_budget_init(struct fuzz_budget *b, const char *who,
		      unsigned long long seconds)
{
	b->seed = env_ull("MUSER_FUZZ_SEED",
			  (unsigned long long)now_ms() ^ (unsigned long long)getpid() << 20);
	b->calls = env_ull("MUSER_FUZZ_CALLS", 0);
	b->seconds = env_ull("MUSER_FUZZ_SECONDS", seconds);
	b->t0 = now_ms();
	fprintf(stderr, "# fuzz: %s, seed %#llx (MUSER_FUZZ_SEED=%#llx replays it), %llu %s\n",
		who, b->seed, b->seed, b->calls ? b->calls : b->seconds,
		b->calls ? "calls" : "seconds");
}

double fuzz_done(const struct fuzz_budget *b, unsigned long calls, int64_t ms)
{
	if (b->calls)
		return (double)calls / b->calls;
	return ms / (b->seconds * 1000.0);
}

unsigned int fuzz_timeout(unsigned long long seconds, unsigned int slack)
{
	if (env_ull("MUSER_FUZZ_CALLS", 0))
		return 24 * 3600;
	return env_ull("MUSER_FUZZ_SECONDS", seconds) + slack;
}

void fuzz_report(const char *who, const char *const *names,
		 const unsigned long *n, int nr, unsigned long calls,
		 unsigned long ops, int64_t ms)
{
	char line[1024];
	size_t at = 0;
	int k;

	fprintf(stderr, "# fuzz: %lu %s calls in %.1f s (%.0f/s), %lu operations in all\n",
		calls, who, ms / 1000.0, calls * 1000.0 / (ms ? ms : 1), ops);
	for (k = 0; k < nr; k++) {
		at += snprintf(line + at, sizeof(line) - at, " %s %lu", names[k], n[k]);
		if (at > 70 || k == nr - 1) {
			fprintf(stderr, "# fuzz: %s\n", line);
			at = 0;
		}
	}
}
