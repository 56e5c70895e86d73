// SPDX-License-Identifier: BSD-3-Clause
/*
 * msix-doorbell: a device with MSI-X and a doorbell page, emulated with
 * libmuser. BAR0 (8 KiB): trapped registers in the first page, a doorbell
 * page in device memory in the second; BAR2 holds the MSI-X table and PBA.
 *
 *   BAR0 0x000  magic "MUSR"              (read-only)
 *   BAR0 0x004  number of MSI-X vectors   (read-only)
 *   BAR0 0x008  interrupts raised so far  (read-only)
 *   BAR0 0x1000 + 4 * V: write V + 1 to ring vector V's doorbell
 *   BAR0 0x1800  the --stamp value, written by this process (else 0)
 *
 * Guest writes to the doorbell page trap nowhere: this process polls the
 * page and raises vector V through the kernel when its doorbell is rung.
 * selftests/e2e/guest/muser_doorbell_guest.c is a guest driver for it.
 *
 *   msix-doorbell [-v] [--stamp VALUE] [--migration] UUID
 *
 * -v logs every request and each change of the MSI-X setup (the guest's
 * MSI-X Enable, the VMM's eventfds); --stamp lets a test see device memory
 * this process wrote (selftests/e2e/qemu-hmp-msix.sh).
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <muser.h>

#define DB_VENDOR	0x4e58		/* Nutanix */
#define DB_DEVICE	0x0001
#define DB_CLASS	0xff0000	/* unassigned class */
#define DB_MAGIC	0x5253554d	/* "MUSR" */
#define DB_NVEC		4
#define DB_BAR		0
#define DB_BAR_SIZE	0x2000
#define DB_PAGE		0x1000
#define DB_STAMP	0x800		/* in the doorbell page, past the doorbells */
#define MSIX_BAR	2
#define MSIX_BAR_SIZE	0x2000
#define POLL_MS		1

static struct muser_dev *dev;
static volatile sig_atomic_t stop;
static uint32_t raised;

static ssize_t bar0_access(struct muser_dev *d, void *priv, void *buf,
			   size_t count, uint64_t offset, bool is_write)
{
	uint32_t regs[3] = { DB_MAGIC, DB_NVEC, raised };

	(void)d;
	(void)priv;
	if (is_write)
		return count;	/* the registers are read-only */
	if (offset < sizeof(regs))
		memcpy(buf, (uint8_t *)regs + offset,
		       count < sizeof(regs) - offset ? count : sizeof(regs) - offset);
	return count;
}

/* BAR2 beyond the MSI-X table and PBA (which the library serves): zeros. */
static ssize_t bar2_access(struct muser_dev *d, void *priv, void *buf,
			   size_t count, uint64_t offset, bool is_write)
{
	(void)d;
	(void)priv;
	(void)offset;
	if (!is_write)
		memset(buf, 0, count);
	return count;
}

/* Raise the vector of every rung doorbell, and clear it. */
static void poll_doorbells(volatile uint32_t *db)
{
	unsigned int v;

	for (v = 0; v < DB_NVEC; v++) {
		if (!db[v])
			continue;
		db[v] = 0;
		raised++;
		if (muser_irq_trigger(dev, VFIO_PCI_MSIX_IRQ_INDEX, v) < 0)
			warn("vector %u", v);
		muser_log(dev, LOG_DEBUG, "doorbell %u rung, guest state %#x", v,
			  muser_irq_guest_state(dev, VFIO_PCI_MSIX_IRQ_INDEX, v));
	}
}

/* Log each change of the MSI-X setup (with -v): the guest's and the VMM's. */
static void irq_state(struct muser_dev *d, void *priv, unsigned int index,
		      unsigned int changed)
{
	struct muser_irq_state vmm;
	int guest;

	(void)priv;
	if (index != VFIO_PCI_MSIX_IRQ_INDEX || muser_irq_vmm_state(d, index, &vmm) < 0)
		return;
	guest = muser_irq_guest_state(d, index, 0);
	muser_log(d, LOG_INFO, "MSI-X changed %#x: guest %s, VMM %u vectors, eventfds %#llx",
		  changed, guest > 0 && (guest & MUSER_IRQ_S_ENABLED) ? "enabled" : "disabled",
		  vmm.count, (unsigned long long)vmm.enabled[0]);
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "stamp", required_argument, NULL, 's' },
		{ "migration", no_argument, NULL, 'm' },
		{ 0 }
	};
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned long stamp = 0;
	bool verbose = false, migration = false;
	volatile uint32_t *db;
	struct pollfd pfd;
	int opt, bad = 0;

	while ((opt = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		if (opt == 'v')
			verbose = true;
		else if (opt == 's')
			stamp = strtoul(optarg, NULL, 0);
		else if (opt == 'm')
			migration = true;
		else
			bad = 1;
	}
	if (bad || optind != argc - 1) {
		fprintf(stderr, "usage: %s [-v] [--stamp VALUE] [--migration] UUID\n", argv[0]);
		return EXIT_FAILURE;
	}
	dev = muser_dev_create(argv[optind], 0);
	if (!dev)
		err(EXIT_FAILURE, "muser_dev_create");
	if (muser_set_log(dev, NULL, verbose ? LOG_DEBUG : LOG_WARNING) < 0)
		err(EXIT_FAILURE, "muser_set_log");
	if (muser_pci_set_ids(dev, DB_VENDOR, DB_DEVICE, DB_VENDOR, DB_DEVICE) < 0)
		err(EXIT_FAILURE, "muser_pci_set_ids");
	if (muser_pci_set_class(dev, DB_CLASS) < 0)
		err(EXIT_FAILURE, "muser_pci_set_class");
	if (muser_setup_bar(dev, DB_BAR, DB_BAR_SIZE, MUSER_BAR_MEM32,
			    bar0_access, NULL) < 0)
		err(EXIT_FAILURE, "muser_setup_bar 0");
	if (muser_setup_bar_mmap(dev, DB_BAR, DB_PAGE, DB_BAR_SIZE - DB_PAGE) < 0)
		err(EXIT_FAILURE, "muser_setup_bar_mmap");
	if (muser_setup_bar(dev, MSIX_BAR, MSIX_BAR_SIZE, MUSER_BAR_MEM32,
			    bar2_access, NULL) < 0)
		err(EXIT_FAILURE, "muser_setup_bar 2");
	if (muser_add_cap_pm(dev, 0) < 0)
		err(EXIT_FAILURE, "muser_add_cap_pm");
	if (muser_add_cap_msix(dev, DB_NVEC, MSIX_BAR, 0, MSIX_BAR, 0x1000) < 0)
		err(EXIT_FAILURE, "muser_add_cap_msix");
	if (muser_set_irq_state_cb(dev, irq_state, NULL) < 0)
		err(EXIT_FAILURE, "muser_set_irq_state_cb");
	/* Migratable as it is: its doorbell page and MSI-X state travel. */
	if (migration && muser_setup_migration(dev, NULL, NULL) < 0)
		err(EXIT_FAILURE, "muser_setup_migration");
	if (muser_realize(dev) < 0)
		err(EXIT_FAILURE, "muser_realize");
	db = muser_bar_map(dev, DB_BAR, DB_PAGE, DB_BAR_SIZE - DB_PAGE);
	if (!db)
		err(EXIT_FAILURE, "muser_bar_map");
	db[DB_STAMP / 4] = stamp;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		err(EXIT_FAILURE, "sigaction");
	printf("ready\n");
	fflush(stdout);

	/* Requests wake us; the doorbells are polled every POLL_MS. */
	pfd.fd = muser_get_poll_fd(dev);
	pfd.events = POLLIN;
	while (!stop) {
		if (poll(&pfd, 1, POLL_MS) < 0 && errno != EINTR)
			err(EXIT_FAILURE, "poll");
		if (pfd.revents && muser_dispatch(dev) < 0)
			err(EXIT_FAILURE, "muser_dispatch");
		poll_doorbells(db);
	}
	muser_dev_destroy(dev);
	return EXIT_SUCCESS;
}
