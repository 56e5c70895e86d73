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
 *   virtio-blk --takeover $UUID disk.img     # upgrade in place: the old one exits
 *
 * The device's state lives in the state area (state.c): an emulator that
 * is killed and started again, or replaced with --takeover, carries on
 * with the queues where the last one left them; the guest sees no error.
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
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/resource.h>

#include "vblk.h"

static volatile sig_atomic_t stop;
static struct muser_dev *stop_dev;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
	muser_stop(stop_dev);	/* ends muser_dispatch_poll()'s wait */
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-v] [--takeover] [--posted] [--poll US] [--migration] UUID FILE\n"
		"Emulate a virtio-blk PCI device backed by FILE on the muser mdev UUID.\n"
		"Prints \"ready\" once attached (\"ready (recovered)\" when it carries\n"
		"on from a previous emulator); SIGINT or SIGTERM stop it and print\n"
		"the request counts.\n"
		"  -v, --verbose   log every request\n"
		"  --takeover      replace the emulator running on UUID (an upgrade);\n"
		"                  that one prints \"taken over\" and exits\n"
		"  --posted        post the VMM's writes of BAR0 (the doorbells): the\n"
		"                  guest's notify returns without waiting for us\n"
		"  --poll US       poll for requests US microseconds before sleeping,\n"
		"                  and the queues' avail rings, doorbells off, for US\n"
		"                  microseconds after their last request (a CPU for\n"
		"                  lower latency; 0, the default: sleep)\n"
		"  --migration     make the device migratable: its state is in its\n"
		"                  state area; it serves nothing while the VM is\n"
		"                  stopped for a migration\n"
		"  -h, --help      this help\n"
#ifdef MUSER_SAMPLE_TEST_HOOKS
		"Environment: VBLK_DIE_IN_REQUEST=N (testing) SIGKILLs itself in the\n"
		"Nth request it serves, after the I/O, before the used ring.\n"
#endif
		, prog);
}

/* The CPU time this process used, user and system. */
static unsigned long long cpu_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* Attaches, recovering the state of a previous emulator if there is one. */
static void attach(struct vblk *v, bool takeover)
{
	/* A running emulator is not serving the queues while we hold it. */
	if (vblk_lock(v) < 0)
		err(EXIT_FAILURE, "flock");
	if ((takeover ? muser_takeover(v->dev) : muser_realize(v->dev)) < 0)
		err(EXIT_FAILURE, takeover ? "muser_takeover" : "muser_realize");
	if (!muser_recovered(v->dev))
		vblk_state_init(v);
	vblk_claim(v);
	vblk_unlock(v);
}

/*
 * Migration: nothing is served while the VM is stopped (the stream is
 * taken then, and guest memory is no longer followed); back to running,
 * every queue is looked at, as after a restart. Requests are served one
 * at a time in this thread, so none is halfway when this is told.
 */
static int mig_state(struct muser_dev *dev, void *priv, enum muser_mig_state state)
{
	struct vblk *v = priv;
	unsigned int i;

	(void)dev;
	v->stopped = state != MUSER_MIG_RUNNING;
	if (v->stopped)
		return 0;
	/*
	 * A migration loaded the source's state area, its owner mark too:
	 * this emulator claims the queues again, as after attaching.
	 */
	if (vblk_lock(v) < 0)
		return -1;
	vblk_claim(v);
	vblk_unlock(v);
	for (i = 0; i < VBLK_NQ; i++)
		v->q[i].notified = v->q[i].enabled;
	return 0;
}

static const struct muser_migration_ops mig_ops = { .state = mig_state };

/* Serves the notified queues, unless taken over. Returns true if work is left. */
static bool process(struct vblk *v)
{
	bool more;

	if (v->stopped || !vblk_pending(v))
		return false;
	if (vblk_lock(v) < 0)
		err(EXIT_FAILURE, "flock");
	more = vblk_owner(v) && vblk_process(v);
	vblk_unlock(v);
	return more;
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "takeover", no_argument, NULL, 't' },
		{ "posted", no_argument, NULL, 'p' },
		{ "poll", required_argument, NULL, 'P' },
		{ "migration", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sigaction sa = { .sa_handler = on_signal };
	bool verbose = false, takeover = false, more = false, migration = false;
	static struct vblk v;
	unsigned long poll_us = 0;
	unsigned int i;
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			verbose = true;
			break;
		case 't':
			takeover = true;
			break;
		case 'p':
			v.posted = true;
			break;
		case 'm':
			migration = true;
			break;
		case 'P':
			errno = 0;
			poll_us = strtoul(optarg, &end, 0);
			if (errno || *end || end == optarg ||
			    poll_us > MUSER_POLL_BUSY) {
				usage(stderr, argv[0]);
				return EXIT_FAILURE;
			}
			break;
		case 'h':
			usage(stdout, argv[0]);
			return EXIT_SUCCESS;
		default:
			usage(stderr, argv[0]);
			return EXIT_FAILURE;
		}
	}
	if (optind != argc - 2) {
		usage(stderr, argv[0]);
		return EXIT_FAILURE;
	}
	if (blk_open(&v.blk, argv[optind + 1]) < 0)
		err(EXIT_FAILURE, "%s", argv[optind + 1]);
	v.dev = muser_dev_create(argv[optind], 0);
	if (!v.dev)
		err(EXIT_FAILURE, "muser_dev_create");
	if (muser_set_log(v.dev, NULL, verbose ? LOG_DEBUG : LOG_WARNING) < 0)
		err(EXIT_FAILURE, "muser_set_log");
#ifdef MUSER_SAMPLE_TEST_HOOKS
	/* Testing the recovery: die in the middle of the Nth request. */
	if (getenv("VBLK_DIE_IN_REQUEST"))
		v.die_in_request = strtoul(getenv("VBLK_DIE_IN_REQUEST"), NULL, 0);
#endif
	if (vblk_describe(&v) < 0)
		err(EXIT_FAILURE, "describing the device");
	if (migration && muser_setup_migration(v.dev, &mig_ops, &v) < 0)
		err(EXIT_FAILURE, "muser_setup_migration");
	attach(&v, takeover);
	v.poll_us = poll_us;

	stop_dev = v.dev;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		err(EXIT_FAILURE, "sigaction");
	printf("ready%s: %s, %llu sectors%s\n",
	       muser_recovered(v.dev) ? " (recovered)" : "", argv[optind + 1],
	       (unsigned long long)v.blk.sectors, v.blk.ro ? ", read-only" : "");
	fflush(stdout);

	/*
	 * Requests and notifications wake us; queues are served after them.
	 * Polled queues (--poll) keep the loop from sleeping.
	 */
	while (!stop && !v.gone) {
		if (muser_dispatch_poll(&v.dev, 1, poll_us, more ? 0 : -1) < 0) {
			if (errno == EINTR)	/* muser_stop() by a signal */
				continue;
			if (errno != ENOTCONN)
				err(EXIT_FAILURE, "muser_dispatch_poll");
			v.gone = true;
			break;
		}
		more = process(&v);
	}
	if (v.gone) {
		/* The new emulator has the device and the state: leave both. */
		printf("taken over\n");
		fflush(stdout);
		muser_dev_destroy(v.dev);
		return EXIT_SUCCESS;
	}
	printf("stats: in %lu out %lu flush %lu get_id %lu discard %lu write_zeroes %lu "
	       "unsupp %lu ioerr %lu resets %lu revokes %lu recoveries %lu redone %lu queues",
	       v.blk.n_in, v.blk.n_out, v.blk.n_flush, v.blk.n_get_id,
	       v.blk.n_discard, v.blk.n_zeroes, v.blk.n_unsupp, v.blk.n_ioerr,
	       v.resets, v.revokes, v.recoveries, v.redone);
	for (i = 0; i < VBLK_NQ; i++)
		printf("%c%lu", i ? '/' : ' ', v.q[i].served);
	printf(" notifies %lu irqs %lu cpu_us %llu\n", v.notifies, v.irqs, cpu_us());
	/* The mappings go; the state stays for a next emulator. */
	for (i = 0; i < VBLK_NQ; i++)
		vblk_queue_release(&v, &v.q[i]);
	muser_dev_destroy(v.dev);
	close(v.blk.fd);
	return EXIT_SUCCESS;
}
