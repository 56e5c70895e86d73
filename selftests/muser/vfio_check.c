// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_check UUID: open the mdev as a VMM would and check that it behaves
 * like the gpio-pci-idio-16 sample (config space IDs, BAR2 counter 0,0,0,
 * 1,1,1,2,2,2). The sample must be running and fresh.
 *
 * Exit status: 0 the device matches, 1 it does not, 2 the check could not
 * run. bite.sh runs this against the sample in its wrong-reply mode and
 * requires exit status 1.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"

int main(int argc, char **argv)
{
	struct vfio_client c;
	const char *step = "?";
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: %s UUID\n", argv[0]);
		return 2;
	}
	ret = vfio_client_open(&c, argv[1], &step);
	if (ret) {
		fprintf(stderr, "vfio_check: %s: %s\n", step, strerror(-ret));
		return 2;
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
