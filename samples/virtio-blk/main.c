// SPDX-License-Identifier: BSD-3-Clause
/*
 * virtio-blk: a virtio 1.x block device backed by a file, emulated with
 * libmuser. The guest's in-tree virtio_pci and virtio_blk drivers bind to
 * it; requests reach the file with preadv/pwritev straight into and out of
 * guest memory (libmuser's DMA API).
 *
 *   truncate -s 64M disk.img
 *   echo $UUID > /sys/class/muser/muser/mdev_supported_types/muser-1/create
 *   virtio-blk $UUID disk.img
 *   qemu-system-x86_64 ... -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$UUID
 *
 * Device: PCI 1af4:1042 revision 1 (modern only), 2 request queues of up
 * to 256 entries, MSI-X (config + one vector per queue); features
 * VERSION_1, INDIRECT_DESC, EVENT_IDX, SEG_MAX, BLK_SIZE, FLUSH, MQ,
 * DISCARD, WRITE_ZEROES (RO instead of the last two for a read-only file).
 * Requests: IN, OUT, FLUSH (fdatasync), GET_ID (the file name), DISCARD
 * (punch hole), WRITE_ZEROES; others answer VIRTIO_BLK_S_UNSUPP.
 * The files: see vblk.h.
 */
#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "vblk.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char *argv[])
{
	struct sigaction sa = { .sa_handler = on_signal };
	bool verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	static struct vblk v;
	struct pollfd pfd;
	bool more = false;
	unsigned int i;

	if (argc != 3 + verbose) {
		fprintf(stderr, "usage: %s [-v] UUID FILE\n", argv[0]);
		return EXIT_FAILURE;
	}
	if (blk_open(&v.blk, argv[2 + verbose]) < 0)
		err(EXIT_FAILURE, "%s", argv[2 + verbose]);
	v.dev = muser_dev_create(argv[1 + verbose], 0);
	if (!v.dev)
		err(EXIT_FAILURE, "muser_dev_create");
	if (muser_set_log(v.dev, NULL, verbose ? LOG_DEBUG : LOG_WARNING) < 0)
		err(EXIT_FAILURE, "muser_set_log");
	if (vblk_describe(&v) < 0)
		err(EXIT_FAILURE, "describing the device");
	if (muser_realize(v.dev) < 0)
		err(EXIT_FAILURE, "muser_realize");

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		err(EXIT_FAILURE, "sigaction");
	printf("ready: %s, %llu sectors%s\n", argv[2 + verbose],
	       (unsigned long long)v.blk.sectors, v.blk.ro ? ", read-only" : "");
	fflush(stdout);

	/* Requests and notifications wake us; queues are served after them. */
	pfd.fd = muser_get_poll_fd(v.dev);
	pfd.events = POLLIN;
	while (!stop) {
		if (poll(&pfd, 1, more ? 0 : -1) < 0) {
			if (errno == EINTR)
				continue;
			err(EXIT_FAILURE, "poll");
		}
		if (pfd.revents && muser_dispatch(v.dev) < 0)
			err(EXIT_FAILURE, "muser_dispatch");
		more = vblk_process(&v);
	}
	printf("stats: in %lu out %lu flush %lu get_id %lu discard %lu write_zeroes %lu "
	       "unsupp %lu ioerr %lu resets %lu revokes %lu queues",
	       v.blk.n_in, v.blk.n_out, v.blk.n_flush, v.blk.n_get_id,
	       v.blk.n_discard, v.blk.n_zeroes, v.blk.n_unsupp, v.blk.n_ioerr,
	       v.resets, v.revokes);
	for (i = 0; i < VBLK_NQ; i++)
		printf("%c%lu", i ? '/' : ' ', v.q[i].served);
	printf("\n");
	vblk_reset(&v);		/* releases the mappings */
	muser_dev_destroy(v.dev);
	close(v.blk.fd);
	return EXIT_SUCCESS;
}
