// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_check UUID: open the mdev as a VMM would and check that it behaves
 * like the gpio-pci-idio-16 sample (config space IDs, BAR2 counter 0,0,0,
 * 1,1,1,2,2,2). The sample must be running and fresh.
 *
 * Exit status: 0 the device matches, 1 it does not, 2 the check could not
 * run. bite.sh runs this against the sample in its wrong-reply mode and
 * requires exit status 1.
 *
 * vfio_check --sequence N [--delay-ms D] [--from K] UUID: read BAR2 offset 1
 * N times, D ms apart (default 10), and require the sample's counter
 * K + i / 3 on read i (K: what earlier VMMs left, default 0), with no access
 * failing; upgrade.sh replaces and kills the emulator meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Read i must give from + i / 3; returns 0, 1 on a mismatch, 2 on a failure. */
static int check_sequence(struct vfio_client *c, long n, int delay_ms,
			  long from)
{
	int64_t worst = 0;
	long i;

	for (i = 0; i < n; i++) {
		int64_t t = now_ms();
		uint8_t b;
		ssize_t r;

		r = region_read(c, VFIO_PCI_BAR2_REGION_INDEX, 1, &b, 1);
		if (r != 1) {
			fprintf(stderr, "vfio_check: read %ld failed: %s\n", i,
				strerror(r < 0 ? -r : EIO));
			return 2;
		}
		if (now_ms() - t > worst)
			worst = now_ms() - t;
		if (b != (uint8_t)(from + i / 3)) {
			fprintf(stderr, "vfio_check: read %ld gave %u, expected %u\n",
				i, b, (unsigned int)(uint8_t)(from + i / 3));
			return 1;
		}
		sleep_ms(delay_ms);
	}
	printf("vfio_check: %ld reads in sequence, slowest %lld ms\n", n,
	       (long long)worst);
	return 0;
}

int main(int argc, char **argv)
{
	struct vfio_client c;
	const char *step = "?";
	long sequence = 0, from = 0;
	int delay_ms = 10, ret;

	while (argc > 2 && !strncmp(argv[1], "--", 2)) {
		if (!strcmp(argv[1], "--sequence"))
			sequence = atol(argv[2]);
		else if (!strcmp(argv[1], "--delay-ms"))
			delay_ms = atoi(argv[2]);
		else if (!strcmp(argv[1], "--from"))
			from = atol(argv[2]);
		else
			break;
		argc -= 2;
		argv += 2;
	}
	if (argc != 2) {
		fprintf(stderr,
			"usage: %s [--sequence N [--delay-ms D] [--from K]] UUID\n",
			argv[0]);
		return 2;
	}
	ret = vfio_client_open(&c, argv[1], &step);
	if (ret) {
		fprintf(stderr, "vfio_check: %s: %s\n", step, strerror(-ret));
		return 2;
	}
	if (sequence) {
		ret = check_sequence(&c, sequence, delay_ms, from);
		vfio_client_close(&c);
		return ret;
	}
	ret = check_sample_device(&c);
	vfio_client_close(&c);
	if (ret < 0) {
		/* An access failing is also the device not matching. */
		fprintf(stderr, "vfio_check: access failed: %s\n",
			strerror(-ret));
		return 1;
	}
	printf("vfio_check: %d mismatches\n", ret);
	return ret ? 1 : 0;
}
