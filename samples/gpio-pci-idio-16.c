// SPDX-License-Identifier: BSD-3-Clause
/*
 * gpio-pci-idio-16: an ACCES PCI-IDIO-16 GPIO card, emulated with libmuser.
 *
 * The guest's gpio-pci-idio-16 driver binds to it. BAR2 holds the card's
 * registers; a read of offset 0 (FET outputs 0-7) returns a counter that
 * advances every third read, so GPIO line 0 toggles every three reads;
 * offset 1 (isolated inputs 0-7, GPIO line 16) does the same with a counter
 * of its own. Other registers read 0; writes are accepted and ignored.
 *
 * The counters live in the device's state area, so a restarted emulator
 * carries on where the last one stopped, and `--takeover` replaces a
 * running one in place (an upgrade): the guest sees no gap either way.
 *
 *   echo $UUID > /sys/class/muser/muser/mdev_supported_types/muser-1/create
 *   gpio-pci-idio-16 $UUID
 *   qemu-system-x86_64 ... -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$UUID
 *   gpio-pci-idio-16 --takeover $UUID     # the old one exits
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#ifdef MUSER_SAMPLE_TEST_HOOKS
#include <pthread.h>
#include <setjmp.h>
#include <time.h>
#endif

#include <muser.h>

#define IDIO16_VENDOR	0x494f	/* ACCES I/O Products */
#define IDIO16_DEVICE	0x0dc8	/* PCI-IDIO-16 */
#define IDIO16_CLASS	0xff0000	/* unassigned class */
#define IDIO16_BAR	2
#define IDIO16_BAR_SIZE	0x100

static struct muser_dev *dev;

#ifdef MUSER_SAMPLE_TEST_HOOKS
/*
 * Only in the copy the selftests build (gpio-pci-idio-16-hooks): a wrong
 * answer on purpose, to check that the tests catch it.
 */
static int bad_reply;

/*
 * Migration: --mig-version V adds 4 bytes of the device's own to the
 * stream, of version V, and refuses another version; --mig-pause stop|load
 * stops the process (SIGSTOP) when told the VM stopped, or while loading
 * its bytes, for the tests to kill it there.
 */
static uint32_t mig_version;
static const char *mig_pause;

/*
 * --dma-counter GPA: from the first BAR2 access on, a thread writes an
 * incrementing 64-bit counter to guest memory at GPA (through a mapping:
 * pinned) every millisecond, once: until SIGUSR1 or the VM stops for a
 * migration, and then logs the last value. A destination must hold that
 * value: the page the device wrote during pre-copy was reported dirty.
 * Guest memory revoked under the thread (the VMM gone first) ends it too:
 * its SIGBUS is caught, as a device that writes through mappings must.
 */
static uint64_t dma_counter_gpa = UINT64_MAX;
static pthread_t dma_thread;
static bool dma_started, dma_stop;
static volatile uint64_t *dma_word;
static sigjmp_buf dma_revoked;
static __thread bool dma_writer;	/* this is the writing thread */

static void dma_counter_sigbus(int sig)
{
	if (dma_writer)
		siglongjmp(dma_revoked, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void *dma_counter_loop(void *arg)
{
	const struct timespec ms = { .tv_nsec = 1000000 };
	volatile uint64_t n = 0;

	(void)arg;
	dma_writer = true;
	if (sigsetjmp(dma_revoked, 1)) {
		fprintf(stderr, "dma counter: guest memory revoked at %llu\n",
			(unsigned long long)n);
		return NULL;
	}
	while (!__atomic_load_n(&dma_stop, __ATOMIC_ACQUIRE)) {
		*dma_word = n + 1;
		n++;
		nanosleep(&ms, NULL);
	}
	fprintf(stderr, "dma counter stopped at %llu\n", (unsigned long long)n);
	return NULL;
}

/* In the dispatching thread (a BAR2 access): map the word, start writing. */
static void dma_counter_start(struct muser_dev *d)
{
	struct sigaction sa = { .sa_handler = dma_counter_sigbus };
	struct muser_sg sg;

	if (dma_counter_gpa == UINT64_MAX || dma_started ||
	    __atomic_load_n(&dma_stop, __ATOMIC_ACQUIRE))
		return;
	if (muser_dma_map(d, dma_counter_gpa, sizeof(uint64_t),
			  MUSER_DMA_WRITE, &sg, 1) != 1)
		err(EXIT_FAILURE, "mapping guest memory at 0x%llx",
		    (unsigned long long)dma_counter_gpa);
	dma_word = sg.addr;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		err(EXIT_FAILURE, "sigaction");
	errno = pthread_create(&dma_thread, NULL, dma_counter_loop, NULL);
	if (errno)
		err(EXIT_FAILURE, "pthread_create");
	dma_started = true;
	fprintf(stderr, "writing a counter to guest memory at 0x%llx\n",
		(unsigned long long)dma_counter_gpa);
}

static void dma_counter_sigusr1(int sig)
{
	(void)sig;
	__atomic_store_n(&dma_stop, true, __ATOMIC_RELEASE);
}

/* Stopped: no more writes to guest memory from here on, nor later. */
static void dma_counter_stop(void)
{
	__atomic_store_n(&dma_stop, true, __ATOMIC_RELEASE);
	if (dma_started)
		pthread_join(dma_thread, NULL);
	dma_started = false;
}

static void pause_if(const char *where)
{
	if (mig_pause && !strcmp(mig_pause, where)) {
		fprintf(stderr, "pausing in %s\n", where);
		raise(SIGSTOP);
	}
}

static int mig_state(struct muser_dev *d, void *priv, enum muser_mig_state state)
{
	(void)d;
	(void)priv;
	if (state == MUSER_MIG_STOPPED) {
		dma_counter_stop();
		pause_if("stop");
	}
	return 0;
}

static ssize_t mig_save(struct muser_dev *d, void *priv, void *buf, size_t size)
{
	(void)d;
	(void)priv;
	if (buf && size == 4)
		memcpy(buf, "IDIO", 4);
	return 4;
}

static int mig_load(struct muser_dev *d, void *priv, const void *buf,
		    size_t len, uint32_t version)
{
	(void)d;
	(void)priv;
	pause_if("load");
	if (version != mig_version || len != 4 || memcmp(buf, "IDIO", 4)) {
		fprintf(stderr, "refusing the device's bytes of version %u (%zu bytes): this is version %u\n",
			version, len, mig_version);
		errno = EPROTO;
		return -1;
	}
	return 0;
}

static const struct muser_migration_ops mig_ops = {
	.state = mig_state,
	.save = mig_save,
	.load = mig_load,
};
#else
#define bad_reply 0
static inline void dma_counter_start(struct muser_dev *d) { (void)d; }
#endif

/*
 * What survives the emulator, in its state area: per register, one 64-bit
 * word with the reads so far (low 24 bits) and the id of the last one (the
 * rest). One store updates both, so a crash leaves either the old or the
 * new word; a replayed read that was already counted is answered again the
 * same way, and each read counts once.
 */
#define COUNT_BITS	24
#define COUNT_MASK	((1u << COUNT_BITS) - 1)

struct idio16_state {
	uint64_t last[2];
};

/*
 * Register 0 (outputs 0-7) and register 1 (inputs 0-7) each return their
 * own counter: drivers that cache output state (6.12's regmap-based one)
 * still read the inputs from the device.
 */
static ssize_t bar2_access(struct muser_dev *d, void *priv, void *buf,
			   size_t count, uint64_t offset, bool is_write)
{
	struct idio16_state *st = muser_state(d, NULL);
	uint64_t id = muser_req_id(d) & (UINT64_MAX >> COUNT_BITS);
	uint64_t last;
	uint32_t reads;

	(void)priv;
	dma_counter_start(d);
	if (offset >= 2 || is_write)
		return count;
	last = st->last[offset];
	reads = last & COUNT_MASK;
	if (muser_req_replayed(d) && last >> COUNT_BITS == id) {
		reads--;	/* counted already */
	} else {
		__atomic_store_n(&st->last[offset],
				 id << COUNT_BITS | ((reads + 1) & COUNT_MASK),
				 __ATOMIC_RELAXED);
	}
	*(uint8_t *)buf = reads / 3 + bad_reply;
	return count;
}

static void on_signal(int sig)
{
	(void)sig;
	muser_stop(dev);
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-v] [--takeover] [--migration] UUID\n"
		"Emulate an ACCES PCI-IDIO-16 on the muser mdev UUID.\n"
		"Prints \"ready\" once attached; SIGINT or SIGTERM stop it.\n"
		"  -v, --verbose   log every request\n"
		"  --takeover      replace the emulator running on UUID\n"
		"  --migration     make the device migratable (its counters are in\n"
		"                  the state area, which travels: no code of its own)\n"
#ifdef MUSER_SAMPLE_TEST_HOOKS
		"  --bad-reply     answer wrongly on purpose (BAR2 offsets 0 and 1\n"
		"                  read their counter + 1), to check that tests\n"
		"                  catch it;\n"
		"                  also set by the environment MUSER_IDIO16_BROKEN=1\n"
		"  --mig-version V add 4 bytes of the device's own, version V, to\n"
		"                  the migration stream (refuse other versions)\n"
		"  --mig-pause stop|load  SIGSTOP itself when the VM stops for a\n"
		"                  migration, or while loading its bytes\n"
		"  --dma-counter GPA  from the first BAR2 access until SIGUSR1, the\n"
		"                  VM stopping for a migration or the memory\n"
		"                  revoked, write a counter to guest memory at GPA\n"
		"                  every millisecond (once)\n"
#endif
		"  -h, --help      this help\n", prog);
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
#ifdef MUSER_SAMPLE_TEST_HOOKS
		{ "bad-reply", no_argument, NULL, 'b' },
		{ "mig-version", required_argument, NULL, 'V' },
		{ "mig-pause", required_argument, NULL, 'P' },
		{ "dma-counter", required_argument, NULL, 'D' },
#endif
		{ "takeover", no_argument, NULL, 't' },
		{ "migration", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sigaction sa = { .sa_handler = on_signal };
	bool verbose = false, takeover = false, migration = false;
	int opt;

#ifdef MUSER_SAMPLE_TEST_HOOKS
	const char *broken = getenv("MUSER_IDIO16_BROKEN");

	bad_reply = broken && strcmp(broken, "1") == 0;
#endif
	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			verbose = true;
			break;
#ifdef MUSER_SAMPLE_TEST_HOOKS
		case 'b':
			bad_reply = 1;
			break;
		case 'V':
			mig_version = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			mig_pause = optarg;
			break;
		case 'D': {
			char *end;

			errno = 0;
			dma_counter_gpa = strtoull(optarg, &end, 0);
			if (errno || *end || end == optarg ||
			    dma_counter_gpa == UINT64_MAX)
				errx(EXIT_FAILURE, "--dma-counter %s: not an address", optarg);
			break;
		}
#endif
		case 't':
			takeover = true;
			break;
		case 'm':
			migration = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return EXIT_SUCCESS;
		default:
			usage(stderr, argv[0]);
			return EXIT_FAILURE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr, argv[0]);
		return EXIT_FAILURE;
	}

	dev = muser_dev_create(argv[optind], 0);
	if (!dev)
		err(EXIT_FAILURE, "muser_dev_create %s", argv[optind]);
	if (muser_set_log(dev, NULL, verbose ? LOG_DEBUG : LOG_WARNING) < 0)
		err(EXIT_FAILURE, "muser_set_log");
	if (muser_pci_set_ids(dev, IDIO16_VENDOR, IDIO16_DEVICE,
			      IDIO16_VENDOR, IDIO16_DEVICE) < 0)
		err(EXIT_FAILURE, "muser_pci_set_ids");
	if (muser_pci_set_class(dev, IDIO16_CLASS) < 0)
		err(EXIT_FAILURE, "muser_pci_set_class");
	if (muser_pci_set_irq_pin(dev, 1) < 0)
		err(EXIT_FAILURE, "muser_pci_set_irq_pin");
	if (muser_setup_bar(dev, IDIO16_BAR, IDIO16_BAR_SIZE, MUSER_BAR_MEM32,
			    bar2_access, NULL) < 0)
		err(EXIT_FAILURE, "muser_setup_bar");
	if (migration) {
		const struct muser_migration_ops *ops = NULL;
#ifdef MUSER_SAMPLE_TEST_HOOKS
		struct muser_migration_ops hook_ops = mig_ops;

		hook_ops.version = mig_version;
		if (!mig_version)
			hook_ops.save = NULL;
		if (mig_version || mig_pause || dma_counter_gpa != UINT64_MAX)
			ops = &hook_ops;
#endif
		if (muser_setup_migration(dev, ops, NULL) < 0)
			err(EXIT_FAILURE, "muser_setup_migration");
	}
	if ((takeover ? muser_takeover(dev) : muser_realize(dev)) < 0)
		err(EXIT_FAILURE, "attaching");

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		err(EXIT_FAILURE, "sigaction");
#ifdef MUSER_SAMPLE_TEST_HOOKS
	sa.sa_handler = dma_counter_sigusr1;
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		err(EXIT_FAILURE, "sigaction");
#endif

	printf("ready%s\n", muser_recovered(dev) ? " (recovered)" : "");
	fflush(stdout);

	if (muser_run(dev) < 0) {
		if (errno != ENOTCONN)
			err(EXIT_FAILURE, "muser_run");
		printf("taken over\n");
	}
	muser_dev_destroy(dev);
	return EXIT_SUCCESS;
}
