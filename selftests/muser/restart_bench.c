// SPDX-License-Identifier: GPL-2.0
/*
 * restart_bench [MiB...]: how long a restarted emulator takes to serve,
 * depending on how much guest memory the previous one had pinned. Figures
 * printed, never judged.
 *
 * The process is the VMM: anonymous memory mapped for DMA (MADV_DONTFORK,
 * as QEMU does). Emulator 1 (a forked libmuser process, restart_emu.c)
 * maps all of it with muser_dma_map(), which pins every page (the device's
 * dma/budget_mb is raised to allow it). It is SIGKILLed: muser.ko keeps the
 * pins. A VMM access then waits while emulator 2 starts: it realizes
 * (recovering the state) and serves the access, mapping guest memory only
 * when it needs it, as a device does (the pins are there). Measured from
 * fork() of emulator 2: realized, first request served, and the VMM's
 * access returned; median of ROUNDS restarts. Then once more with an
 * emulator 2 that maps all of guest memory again before serving (no page
 * is pinned again, but the mappings cost per 2 MiB chunk).
 *
 * Sizes: 0 (no guest memory) and, by default, 1 GiB and 4 GiB. When
 * MemAvailable cannot hold 4 GiB (the test VM boots with 2-3 GiB unless
 * told otherwise: tools/vm/vm-run --mem), the largest power of two that fits
 * and a quarter of it, said so on the output.
 *
 * Exit status 0 unless something failed (then 1, with the reason).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "common.h"
#include "restart_emu.h"

#define IOVA		(1ull << 32)
#define ROUNDS		5
#define RESERVE_MIB	512	/* what else the VM needs besides the pins */
#define PIN_WAIT_MS	600000	/* emulator 1 pinning it all, under TCG */

struct figures {
	double pin_s;		/* emulator 1: pin+map of everything */
	double realized_ms, first_ms, vmm_ms;	/* medians */
	double mapped_ms, eager_first_ms;	/* the eager emulator */
	double first_min, first_max;
};

struct waiter {
	pthread_t thread;
	struct vfio_client *c;
	int64_t t_done;
	int ret;
	uint32_t val;
};

static void *wait_fn(void *arg)
{
	struct waiter *w = arg;
	ssize_t n = region_read(w->c, VFIO_PCI_BAR0_REGION_INDEX, 0, &w->val, 4);

	w->t_done = emu_now_ns();
	w->ret = n == 4 ? 0 : n < 0 ? (int)n : -EIO;
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

#define DIE(...) do { fprintf(stderr, "restart_bench: " __VA_ARGS__);	\
	fprintf(stderr, "\n"); ret = -1; goto out; } while (0)

static int run_size(size_t mib, struct figures *f)
{
	double realized[ROUNDS], first[ROUNDS], vmm[ROUNDS];
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	size_t size = mib << 20;
	char uuid[UUID_LEN + 1] = "", path[256], val[32];
	struct emu_shared *sh = emu_shared_new();
	struct vfio_client c;
	struct emu_report r;
	struct emu_cfg cfg = { .device_id = EMU_DEVICE, .dma_iova = IOVA,
			       .dma_len = size, .sh = sh };
	struct waiter w;
	void *guest = NULL;
	pid_t emu = -1;
	const char *step;
	long pages;
	int round, fd, ret = 0;
	int64_t t0;

	vfio_client_init(&c);
	if (!sh)
		DIE("out of memory");
	if (mdev_create(uuid))
		DIE("cannot create an mdev");
	cfg.uuid = uuid;
	if (vfio_client_open(&c, uuid, &step))
		DIE("VMM: %s failed", step);
	if (size) {
		guest = mmap(NULL, size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (guest == MAP_FAILED) {
			guest = NULL;
			DIE("mmap %zu MiB: %m", mib);
		}
		if (madvise(guest, size, MADV_DONTFORK))
			DIE("madvise: %m");
		map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
		map.vaddr = (uintptr_t)guest;
		map.iova = IOVA;
		map.size = size;
		if (ioctl(c.container, VFIO_IOMMU_MAP_DMA, &map))
			DIE("MAP_DMA %zu MiB: %m", mib);
		snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/dma/budget_mb", uuid);
		snprintf(val, sizeof(val), "%zu", mib + 64);
		if (sysfs_write(path, val))
			DIE("cannot raise %s", path);
	}

	/* Emulator 1 pins it all. */
	emu = emu_spawn(&cfg, &fd);
	if (emu < 0)
		DIE("fork: %s", strerror(-emu));
	ret = emu_wait_report(fd, &r, PIN_WAIT_MS);
	close(fd);
	if (ret || r.err)
		DIE("emulator 1: %s: %s", ret ? "report" : r.what,
		    strerror(ret ? -ret : r.err));
	f->pin_s = (r.t_mapped - r.t_realized) / 1e9;
	if ((pages = dma_stat(uuid, "pinned_pages")) < 0 || pages != (long)(size >> 12))
		DIE("%ld pages pinned, expected %zu", pages, size >> 12);

	/* Lazy emulators, then one that maps everything first. */
	for (round = 0; round <= ROUNDS; round++) {
		struct emu_cfg cfg2 = cfg;

		if (round < ROUNDS)
			cfg2.dma_len = 0;
		emu_kill(emu);
		emu = -1;
		if ((pages = dma_stat(uuid, "pinned_pages")) < 0 || pages != (long)(size >> 12))
			DIE("%ld pages pinned after the kill, expected %zu",
			    pages, size >> 12);
		/* A VMM access waits for the next emulator. */
		memset(&w, 0, sizeof(w));
		w.c = &c;
		if (pthread_create(&w.thread, NULL, wait_fn, &w))
			DIE("pthread_create");
		sleep_ms(100);
		__atomic_store_n(&sh->t_first_req, 0, __ATOMIC_RELEASE);
		t0 = emu_now_ns();
		emu = emu_spawn(&cfg2, &fd);
		if (emu < 0) {
			pthread_join(w.thread, NULL);
			DIE("fork: %s", strerror(-emu));
		}
		ret = emu_wait_report(fd, &r, PIN_WAIT_MS);
		close(fd);
		pthread_join(w.thread, NULL);
		if (ret || r.err)
			DIE("emulator 2: %s: %s", ret ? "report" : r.what,
			    strerror(ret ? -ret : r.err));
		if (!r.recovered)
			DIE("emulator 2 did not recover the state");
		if (w.ret)
			DIE("the waiting VMM access failed: %s", strerror(-w.ret));
		if (w.t_done < t0 || !sh->t_first_req)
			DIE("the access completed before emulator 2 started");
		if (round == ROUNDS) {
			f->mapped_ms = (r.t_mapped - t0) / 1e6;
			f->eager_first_ms = (sh->t_first_req - t0) / 1e6;
			break;
		}
		realized[round] = (r.t_realized - t0) / 1e6;
		first[round] = (sh->t_first_req - t0) / 1e6;
		vmm[round] = (w.t_done - t0) / 1e6;
	}
	f->realized_ms = median(realized, ROUNDS);
	f->first_ms = median(first, ROUNDS);
	f->first_min = first[0];	/* sorted */
	f->first_max = first[ROUNDS - 1];
	f->vmm_ms = median(vmm, ROUNDS);
	if (sh->errors)
		DIE("emulator: %s", sh->last_error);
out:
	emu_kill(emu);
	vfio_client_close(&c);
	if (uuid[0]) {
		if ((pages = dma_stat(uuid, "pinned_pages")) > 0) {
			fprintf(stderr, "restart_bench: %ld pages pinned after the VMM closed\n",
				pages);
			ret = -1;
		}
		mdev_remove(uuid);
	}
	if (guest)
		munmap(guest, size);
	emu_shared_free(sh);
	return ret;
}

static long meminfo_mib(const char *key)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			kb = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return kb < 0 ? -1 : kb >> 10;
}

int main(int argc, char **argv)
{
	size_t sizes[8] = { 0 };
	struct figures f[8];
	long total = meminfo_mib("MemTotal"), avail = meminfo_mib("MemAvailable");
	long saved_timeout = -1;
	int n = 1, i, ret = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!muser_loaded()) {
		printf("restart_bench: SKIP: muser.ko is not loaded\n");
		return 4;
	}
	if (argc > 1) {
		for (i = 1; i < argc && n < 8; i++)
			sizes[n++] = strtoul(argv[i], NULL, 0);
	} else {
		size_t big = 4096;

		while (big > 64 && (long)big + RESERVE_MIB > avail)
			big /= 2;
		sizes[n++] = big / 4;
		sizes[n++] = big;
		if (big < 4096)
			printf("restart_bench: MemTotal %ld MiB, MemAvailable %ld MiB: "
			       "4 GiB of guest memory does not fit; measuring %zu MiB "
			       "and %zu MiB instead (boot the VM with --mem 6G to "
			       "measure 1 GiB and 4 GiB)\n",
			       total, avail, big / 4, big);
	}
	/* A restart with gigabytes pinned must not hit the VMM's timeout. */
	if (param_get("timeout_ms", &saved_timeout) ||
	    param_set("timeout_ms", 60000)) {
		fprintf(stderr, "restart_bench: cannot set timeout_ms\n");
		return 1;
	}
	for (i = 0; i < n; i++) {
		if (run_size(sizes[i], &f[i])) {
			ret = 1;
			break;
		}
		printf("restart_bench: %5zu MiB pinned by emulator 1 (its first pin+map: %.2f s): "
		       "from emulator 2's fork: realized %.1f ms, first request served "
		       "%.1f ms (min %.1f, max %.1f), waiting VMM access returned "
		       "%.1f ms (median of %d); mapping all of it again before "
		       "serving: mapped %.1f ms, first request %.1f ms\n",
		       sizes[i], f[i].pin_s, f[i].realized_ms, f[i].first_ms,
		       f[i].first_min, f[i].first_max, f[i].vmm_ms, ROUNDS,
		       f[i].mapped_ms, f[i].eager_first_ms);
	}
	if (!ret && n >= 3)
		printf("restart_bench: time to the first request served, %zu MiB vs "
		       "%zu MiB pinned: %.1f ms vs %.1f ms, ratio %.2f (vs none "
		       "pinned: %.1f ms)\n",
		       sizes[n - 1], sizes[n - 2], f[n - 1].first_ms,
		       f[n - 2].first_ms, f[n - 1].first_ms / f[n - 2].first_ms,
		       f[0].first_ms);
	if (saved_timeout >= 0)
		param_set("timeout_ms", saved_timeout);
	return ret;
}
