// SPDX-License-Identifier: GPL-2.0
/*
 * req_bench [N]: figures for the trapped request path, printed, never
 * judged (a benchmark, not a timed test). The process is the VMM and a raw
 * emulator thread (emu_thread.c: poll, then read several requests,
 * one write per reply) on a device with layout_default().
 *
 *   floor:        pread of 1 byte of /dev/zero, the syscall alone
 *   read 1:       1-byte trapped read of BAR0, one VMM thread
 *   write 4:      4-byte trapped write of BAR0, one VMM thread
 *   read 1, x8:   the same from 8 VMM threads at once (time per access,
 *                 all threads together)
 *
 * Each row is the mean over N accesses (default 20000; x8 does N in all)
 * and its ratio to the floor. Exit status 0 unless an access failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define THREADS	8

struct worker {
	pthread_t thread;
	struct vfio_client *c;
	long n;
	long failed;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *reader(void *arg)
{
	struct worker *w = arg;
	uint8_t b;
	long i;

	for (i = 0; i < w->n; i++)
		if (region_read(w->c, VFIO_PCI_BAR0_REGION_INDEX, i & 0xfff,
				&b, 1) != 1)
			w->failed++;
	return NULL;
}

/* Mean µs per access of @threads readers doing @n accesses in all. */
static double trapped_reads(struct vfio_client *c, int threads, long n,
			    long *failed)
{
	struct worker w[THREADS];
	double t;
	int i;

	t = now_us();
	for (i = 0; i < threads; i++) {
		w[i] = (struct worker){ .c = c, .n = n / threads };
		if (pthread_create(&w[i].thread, NULL, reader, &w[i]))
			w[i].n = 0, *failed += n / threads;
	}
	for (i = 0; i < threads; i++) {
		if (w[i].n)
			pthread_join(w[i].thread, NULL);
		*failed += w[i].failed;
	}
	return (now_us() - t) / (n / threads * threads);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 0) : 20000, i, failed = 0;
	double floor_us, read_us, write_us, x8_us, t;
	struct emu_thread emu = { 0 };
	const char *step = "?";
	struct rig r;
	uint32_t v = 0;
	uint8_t b;
	int zero, ret;

	if (n < THREADS)
		n = THREADS;
	rig_init(&r);
	ret = rig_setup(&r, "req_bench", NULL, 0, &step);
	if (ret) {
		fprintf(stderr, "req_bench: %s: %s\n", step, strerror(-ret));
		rig_teardown(&r);
		return 1;
	}
	zero = open("/dev/zero", O_RDONLY);
	ret = emu_thread_start(&emu, r.ctl);
	if (zero < 0 || ret) {
		fprintf(stderr, "req_bench: cannot start: %s\n",
			strerror(zero < 0 ? errno : -ret));
		rig_teardown(&r);
		return 1;
	}

	t = now_us();
	for (i = 0; i < n; i++)
		if (pread(zero, &b, 1, 0) != 1)
			failed++;
	floor_us = (now_us() - t) / n;

	/* Warm up: the first accesses fault in the emulator's buffers. */
	trapped_reads(&r.c, 1, 100, &failed);
	read_us = trapped_reads(&r.c, 1, n, &failed);

	t = now_us();
	for (i = 0; i < n; i++, v++)
		if (region_write(&r.c, VFIO_PCI_BAR0_REGION_INDEX, 0, &v, 4) != 4)
			failed++;
	write_us = (now_us() - t) / n;

	x8_us = trapped_reads(&r.c, THREADS, n, &failed);

	emu_thread_stop(&emu);
	close(zero);
	printf("# req_bench on %ld accesses per row, emulator: %d reads, %d writes\n",
	       n, emu.nr_read, emu.nr_write);
	printf("# %-28s %10s %8s\n", "path", "us/access", "x floor");
	printf("# %-28s %10.2f %8.1f\n", "floor: pread /dev/zero", floor_us, 1.0);
	printf("# %-28s %10.2f %8.1f\n", "trapped read 1 B", read_us,
	       read_us / floor_us);
	printf("# %-28s %10.2f %8.1f\n", "trapped write 4 B", write_us,
	       write_us / floor_us);
	printf("# %-28s %10.2f %8.1f\n", "trapped read 1 B, 8 threads", x8_us,
	       x8_us / floor_us);
	if (failed || emu.errors)
		fprintf(stderr, "req_bench: %ld accesses failed, emulator errors %d\n",
			failed, emu.errors);
	ret = rig_teardown(&r);
	return failed || emu.errors || ret ? 1 : 0;
}
