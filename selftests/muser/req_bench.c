// SPDX-License-Identifier: GPL-2.0
/*
 * req_bench [--only ROW[,ROW...]] [N]: what an access costs on each path of
 * muser, next to the kernel's own mdev sample mtty, all measured in one run
 * and printed as one table: the mean µs per access over N accesses (default
 * 20000) and its ratio to the mtty row. Figures only, never judged (a
 * benchmark, not a timed test); exit status 1 if an access failed. The
 * process is the VMM and a raw emulator thread (emu_thread.c). --only
 * measures and prints just the rows named (by their enum names below, in
 * any case: mtty, read_poll_ring, ...), for a profiler to see one path
 * alone.
 *
 *   syscall floor     pread of 1 byte of /dev/zero
 *   vCPU round trip   a word handed to a thread spinning on CPU 1 and
 *                     back, through memory alone: the floor of any
 *                     answer from an emulator on the other vCPU
 *   mtty              1-byte pread of BAR0 (the 16550's scratch register)
 *                     of an mtty mdev through VFIO: the in-kernel mdev
 *                     limit. mtty.ko is loaded by the caller
 *                     (tools/bench-in-vm.sh); without it the ratios are to
 *                     the syscall floor, and the table says so.
 *   device memory     1-byte pread through VFIO of a BAR's mmap area,
 *                     served by muser.ko, no emulator involved
 *   trapped read      1-byte read of BAR0: the VMM on CPU 0, a blocking
 *                     (poll()ing) emulator thread on CPU 1 ("other vCPU"),
 *                     on CPU 0 ("same vCPU"), or spinning on read() of the
 *                     O_NONBLOCK control node on CPU 1 ("polling");
 *                     "VMM never spins": the same with muser.ko's spin_us
 *                     set to 0 for the row, the baseline of the spin;
 *                     "request ring": the emulator takes requests from
 *                     its ring's SQ and answers in the CQ (on a control
 *                     file of its own, which takes the device over: a
 *                     file keeps its ring for good)
 *   trapped write     4 bytes, the emulator on CPU 1; "posted" on a BAR
 *                     with MUSER_REGION_F_POSTED_WRITES (where muser.ko
 *                     refuses that flag, the row shows the error), with a
 *                     blocking and with a polling emulator; "one at a
 *                     time": each answered before the next, only the
 *                     VMM's pwrite() timed (a doorbell's cost)
 *   x8                1-byte trapped reads from 8 VMM threads at once,
 *                     unpinned: time per access, all threads together
 *   irq               MUSER_IOC_TRIGGER_IRQ of MSI vector 0 on CPU 1 until
 *                     the VMM's blocking read() of its eventfd returns on
 *                     CPU 0, one raise at a time; "eventfd write()": the
 *                     same eventfd written directly, what an emulator
 *                     holding the VMM's eventfd would pay (the floor)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>

#include "fixture.h"

#define THREADS		8
#define WARMUP		100
#define MTTY_TYPE	"/sys/class/mtty/mtty/mdev_supported_types/mtty-1"
#define MTTY_SCR	7	/* UART_SCR: read without side effects */
#define DEVMEM_SIZE	0x1000	/* BAR2's mmap area */

enum {
	FLOOR, XCPU, MTTY, DEVMEM, READ_OTHER, READ_OTHER_NOSPIN, READ_OTHER_RING,
	READ_SAME, READ_POLL, READ_POLL_NOSPIN, READ_POLL_RING, WRITE,
	WRITE_POSTED, WRITE_POSTED_POLL, WRITE_POSTED_POLL_RING,
	WRITE_POSTED_ONE, WRITE_POSTED_ONE_RING, READ_X8, READ_X8_RING, IRQ, IRQ_DIRECT, NR_ROWS
};

/* @us < 0: not measured, @why says why. */
struct row {
	const char *key;
	const char *name;
	bool off;		/* not asked for by --only */
	double us;
	char why[80];
};

/* Its key is its name for --only. */
#define ROW(id, text) [id] = { .key = #id, .name = text }

static struct row rows[NR_ROWS] = {
	ROW(FLOOR, "syscall floor: pread /dev/zero"),
	ROW(XCPU, "vCPU round trip through memory"),
	ROW(MTTY, "mtty (in-kernel mdev): pread BAR0"),
	ROW(DEVMEM, "muser device memory: pread"),
	ROW(READ_OTHER, "trapped read, emulator other vCPU"),
	ROW(READ_OTHER_NOSPIN, "  the same, VMM never spins"),
	ROW(READ_OTHER_RING, "  the same, request ring"),
	ROW(READ_SAME, "trapped read, emulator same vCPU"),
	ROW(READ_POLL, "trapped read, polling emulator"),
	ROW(READ_POLL_NOSPIN, "  the same, VMM never spins"),
	ROW(READ_POLL_RING, "  the same, request ring"),
	ROW(WRITE, "trapped write 4 B"),
	ROW(WRITE_POSTED, "trapped write 4 B, posted"),
	ROW(WRITE_POSTED_POLL, "  the same, polling emulator"),
	ROW(WRITE_POSTED_POLL_RING, "  the same, polling, request ring"),
	ROW(WRITE_POSTED_ONE, "  one at a time: the VMM's pwrite"),
	ROW(WRITE_POSTED_ONE_RING, "  the same, request ring"),
	ROW(READ_X8, "trapped read, 8 VMM threads"),
	ROW(READ_X8_RING, "  the same, polling, request ring"),
	ROW(IRQ, "irq: trigger to eventfd read()"),
	ROW(IRQ_DIRECT, "  the same, eventfd write()"),
};

static long failed;
static int ncpus, other_cpu;

static void row_why(int row, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rows[row].why, sizeof(rows[row].why), fmt, ap);
	va_end(ap);
	rows[row].us = -1;
}

/* Whether row @row is to be measured: each measuring step asks first. */
static bool run(int row)
{
	return !rows[row].off;
}

/* A measuring step that failed: the row says why, the exit status too. */
#define row_fail(row, ...) do { row_why(row, __VA_ARGS__); failed++; } while (0)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Pin thread @t to @cpu, or let it run anywhere (@cpu -1). */
static int pin(pthread_t t, int cpu)
{
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	for (i = 0; i < ncpus; i++)
		if (cpu < 0 || i == cpu)
			CPU_SET(i, &set);
	return -pthread_setaffinity_np(t, sizeof(set), &set);
}

struct worker {
	pthread_t thread;
	struct vfio_client *c;
	int region;
	uint64_t off, mask;	/* access i is at off + (i & mask) */
	bool write;
	long n;
	long failed;
};

static void *access_fn(void *arg)
{
	struct worker *w = arg;
	uint32_t v = 0;
	long i;

	for (i = 0; i < w->n; i++, v++) {
		uint64_t off = w->off + (i & w->mask & (w->write ? ~3 : ~0));

		if (w->write ? region_write(w->c, w->region, off, &v, 4) != 4 :
			       region_read(w->c, w->region, off, &v, 1) != 1)
			w->failed++;
	}
	return NULL;
}

/*
 * Mean µs per access of @threads threads doing @n accesses in all (1: the
 * calling thread itself), after a warm-up that faults in the buffers.
 */
static double accesses(const struct worker *how, int threads, long n)
{
	struct worker w[THREADS];
	double t;
	int i;

	w[0] = *how;
	w[0].n = WARMUP;
	access_fn(&w[0]);
	failed += w[0].failed;
	t = now_us();
	for (i = 0; i < threads; i++) {
		w[i] = *how;
		w[i].n = n / threads;
		w[i].failed = 0;
		if (threads == 1)
			access_fn(&w[i]);
		else if (pthread_create(&w[i].thread, NULL, access_fn, &w[i]))
			w[i].failed = w[i].n, w[i].n = 0;
	}
	for (i = 0; i < threads; i++) {
		if (threads > 1 && w[i].n)
			pthread_join(w[i].thread, NULL);
		failed += w[i].failed;
	}
	return (now_us() - t) / (n / threads * threads);
}

static void bench_floor(long n)
{
	uint8_t b;
	double t;
	long i;
	int zero;

	if (!run(FLOOR))
		return;
	zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (zero < 0) {
		row_fail(FLOOR, "/dev/zero: %s", strerror(errno));
		return;
	}
	t = now_us();
	for (i = 0; i < n; i++)
		if (pread(zero, &b, 1, 0) != 1)
			failed++;
	rows[FLOOR].us = (now_us() - t) / n;
	close(zero);
}

struct pingpong {
	pthread_t thread;
	long n;
	long ball;	/* odd: with the partner; even: back */
};

static void *pong_fn(void *arg)
{
	struct pingpong *p = arg;
	long i, b;

	for (i = 0; i < p->n; ) {
		b = __atomic_load_n(&p->ball, __ATOMIC_ACQUIRE);
		if (b < 0)		/* called off */
			return NULL;
		if (b & 1) {
			__atomic_store_n(&p->ball, b + 1, __ATOMIC_RELEASE);
			i++;
		}
	}
	return NULL;
}

static void bench_xcpu(long n)
{
	struct pingpong p = { .n = n };
	double t;
	long i;
	int ret;

	if (!run(XCPU))
		return;
	if (ncpus < 2) {
		row_why(XCPU, "needs 2 CPUs");
		return;
	}
	ret = -pthread_create(&p.thread, NULL, pong_fn, &p);
	if (!ret)
		ret = pin(p.thread, other_cpu);
	if (ret) {
		row_fail(XCPU, "thread: %s", strerror(-ret));
		if (p.thread) {
			__atomic_store_n(&p.ball, -1, __ATOMIC_RELEASE);
			pthread_join(p.thread, NULL);
		}
		return;
	}
	t = now_us();
	for (i = 0; i < n; i++) {
		__atomic_store_n(&p.ball, 2 * i + 1, __ATOMIC_RELEASE);
		while (__atomic_load_n(&p.ball, __ATOMIC_ACQUIRE) != 2 * i + 2)
			;
	}
	rows[XCPU].us = (now_us() - t) / n;
	pthread_join(p.thread, NULL);
}

static void bench_mtty(long n)
{
	struct worker how = { .region = VFIO_PCI_BAR0_REGION_INDEX,
			      .off = MTTY_SCR };
	char uuid[UUID_LEN + 1];
	struct vfio_client c;
	const char *step = "?";
	int ret;

	if (!run(MTTY))
		return;
	if (!path_exists(MTTY_TYPE "/create")) {
		row_why(MTTY, "mtty.ko not loaded");
		return;
	}
	uuid_gen(uuid);
	ret = sysfs_write(MTTY_TYPE "/create", uuid);
	if (ret) {
		row_fail(MTTY, "create: %s", strerror(-ret));
		return;
	}
	ret = vfio_client_open(&c, uuid, &step);
	if (ret) {
		row_fail(MTTY, "%s: %s", step, strerror(-ret));
	} else {
		how.c = &c;
		rows[MTTY].us = accesses(&how, 1, n);
		vfio_client_close(&c);
	}
	ret = mdev_remove(uuid);
	if (ret) {
		fprintf(stderr, "req_bench: cannot remove mtty %s: %s\n", uuid,
			strerror(-ret));
		failed++;
	}
}

/* Wait (10 s at most) until the emulator has taken @n writes. */
static void wait_until_written(struct emu_thread *emu, long n)
{
	int64_t end = now_ms() + 10000;

	while (emu->nr_write < n && now_ms() < end)
		sleep_ms(1);
	if (emu->nr_write < n) {
		fprintf(stderr, "req_bench: the emulator took %d of %ld writes\n",
			emu->nr_write, n);
		failed++;
	}
}

/*
 * A control file of its own for an emulator with a ring (a file keeps its
 * ring for good): it takes the device over from the rig's, at once (no
 * request is in flight between rows). Returns it, or -errno.
 */
static int ring_file(struct rig *r)
{
	int ctl = ctl_open(r->uuid, O_NONBLOCK), ret = 0;

	if (ctl < 0)
		return ctl;
	if (ioctl(ctl, MUSER_IOC_TAKEOVER, &r->layout))
		ret = -errno;
	if (ret)
		close(ctl);
	return ret ? ret : ctl;
}

/* The rig's file takes the device back from the ring file @ctl. */
static void ring_file_done(struct rig *r, int ctl)
{
	if (ioctl(r->ctl, MUSER_IOC_TAKEOVER, &r->layout)) {
		fprintf(stderr, "req_bench: takeover back: %s\n", strerror(errno));
		failed++;
	}
	close(ctl);
}

/*
 * Posted writes one at a time, as a doorbell among other work: only the
 * VMM's pwrite() is timed; each is answered (untimed) before the next.
 */
static void bench_posted_one(int row, struct rig *r, bool ring, long n)
{
	struct emu_thread emu = { 0 };
	double t = 0, t0;
	uint32_t v = 1;
	int ctl, ret;
	long i;

	if (!run(row))
		return;
	ctl = ring ? ring_file(r) : r->ctl;
	ret = ctl < 0 ? ctl : 0;
	if (!ret && ring)
		ret = emu_thread_start_ring(&emu, ctl, EMU_THREAD_SPIN, 0);
	else if (!ret)
		ret = emu_thread_start_flags(&emu, ctl, EMU_THREAD_SPIN);
	if (!ret)
		ret = pin(emu.thread, other_cpu);
	if (ret) {
		row_fail(row, "emulator thread: %s", strerror(-ret));
		emu_thread_stop(&emu);
		if (ctl >= 0 && ctl != r->ctl)
			ring_file_done(r, ctl);
		return;
	}
	for (i = 0; i < n; i++) {
		t0 = now_us();
		if (region_write(&r->c, VFIO_PCI_BAR0_REGION_INDEX, 0, &v,
				 sizeof(v)) != sizeof(v))
			failed++;
		t += now_us() - t0;
		/* Spin, not sleep: a sleep would time a cold TLB in TCG. */
		for (t0 = now_us(); emu.nr_write < i + 1 &&
		     now_us() - t0 < 10e6; )
			;
		if (emu.nr_write < i + 1) {
			fprintf(stderr, "req_bench: write %ld never answered\n", i);
			failed++;
			break;
		}
	}
	rows[row].us = t / n;
	emu_thread_stop(&emu);
	if (ctl != r->ctl)
		ring_file_done(r, ctl);
	if (emu.errors)
		failed++;
}

/*
 * Row @row: @how's accesses with an emulator thread (@flags, with
 * EMU_THREAD_RING on a file of its own) on @cpu.
 */
static void bench_emu(int row, struct rig *r, const struct worker *how,
		      int threads, int cpu, unsigned int flags, long n)
{
	struct emu_thread emu = { 0 };
	int ctl, ret;

	if (!run(row))
		return;
	ctl = flags & EMU_THREAD_RING ? ring_file(r) : r->ctl;
	ret = ctl < 0 ? ctl : 0;
	if (!ret && flags & EMU_THREAD_RING)
		ret = emu_thread_start_ring(&emu, ctl, flags & ~EMU_THREAD_RING,
					    0);
	else if (!ret)
		ret = emu_thread_start_flags(&emu, ctl, flags);
	if (!ret)
		ret = pin(emu.thread, cpu);
	if (ret) {
		row_fail(row, "emulator thread: %s", strerror(-ret));
		emu_thread_stop(&emu);
		if (ctl >= 0 && ctl != r->ctl)
			ring_file_done(r, ctl);
		return;
	}
	rows[row].us = accesses(how, threads, n);
	/* Posted writes: every one acknowledged before the next row. */
	if (how->write)
		wait_until_written(&emu, n / threads * threads + WARMUP);
	emu_thread_stop(&emu);
	if (ctl != r->ctl)
		ring_file_done(r, ctl);
	if (emu.errors) {
		fprintf(stderr, "req_bench: %s: emulator errors %d\n",
			rows[row].name, emu.errors);
		failed++;
	}
}

/* bench_emu() with muser.ko's spin_us at 0: the VMM thread sleeps at once. */
static void bench_emu_nospin(int row, struct rig *r, const struct worker *how,
			     int cpu, unsigned int flags, long n)
{
	long spin_us;
	int ret;

	if (!run(row))
		return;
	ret = param_get("spin_us", &spin_us);
	if (!ret)
		ret = param_set("spin_us", 0);
	if (ret) {
		row_why(row, "spin_us: %s", strerror(-ret));
		return;
	}
	bench_emu(row, r, how, 1, cpu, flags, n);
	if (param_set("spin_us", spin_us)) {
		fprintf(stderr, "req_bench: cannot restore spin_us %ld\n", spin_us);
		failed++;
	}
}

struct irq_pingpong {
	pthread_t thread;
	int ctl, efd;
	bool direct;		/* write the eventfd, no trigger ioctl */
	long n;
	long turn;		/* the raise the VMM waits for; -1: stop */
	int64_t sent;		/* ns, when the trigger of that one began */
	long failed;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The emulator's side: one raise per turn the VMM hands over. */
static void *irq_trigger_fn(void *arg)
{
	struct irq_pingpong *p = arg;
	uint64_t one = 1;
	long i, turn;

	for (i = 0; i < p->n; i++) {
		while ((turn = __atomic_load_n(&p->turn, __ATOMIC_ACQUIRE)) != i)
			if (turn < 0)
				return NULL;
			else if (ncpus < 2)
				sched_yield();
		__atomic_store_n(&p->sent, now_ns(), __ATOMIC_RELEASE);
		if (p->direct ||
		    emu_trigger_irq(p->ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1)) {
			p->failed += !p->direct;
			/* Wake the VMM all the same. */
			if (write(p->efd, &one, sizeof(one)) != sizeof(one))
				return NULL;
		}
	}
	return NULL;
}

/* Mean µs from a trigger to the VMM's read() of the eventfd returning. */
static double irq_raises(struct rig *r, int efd, bool direct, long n)
{
	struct irq_pingpong p = { .ctl = r->ctl, .efd = efd, .direct = direct,
				  .n = n };
	int64_t sum = 0;
	uint64_t v;
	long i;
	int ret;

	ret = -pthread_create(&p.thread, NULL, irq_trigger_fn, &p);
	if (ret) {
		errno = -ret;
		return -1;
	}
	ret = pin(p.thread, other_cpu);
	if (ret) {
		__atomic_store_n(&p.turn, -1, __ATOMIC_RELEASE);
		pthread_join(p.thread, NULL);
		errno = -ret;
		return -1;
	}
	for (i = 0; i < n; i++) {
		__atomic_store_n(&p.turn, i, __ATOMIC_RELEASE);
		if (read(efd, &v, sizeof(v)) != sizeof(v)) {
			failed++;
			break;
		}
		sum += now_ns() - __atomic_load_n(&p.sent, __ATOMIC_ACQUIRE);
	}
	__atomic_store_n(&p.turn, -1, __ATOMIC_RELEASE);
	pthread_join(p.thread, NULL);
	failed += p.failed;
	return sum / 1e3 / n;
}

static void bench_irq(struct rig *r, long n)
{
	int efd = eventfd(0, EFD_CLOEXEC), ret;

	if (efd < 0) {
		row_fail(IRQ, "eventfd: %s", strerror(errno));
		row_why(IRQ_DIRECT, "not measured");
		return;
	}
	ret = set_irq_eventfd(r->c.device, VFIO_PCI_MSI_IRQ_INDEX, 0, efd);
	if (ret) {
		row_fail(IRQ, "SET_IRQS MSI: %s", strerror(-ret));
		row_why(IRQ_DIRECT, "not measured");
	} else {
		irq_raises(r, efd, false, WARMUP);
		if (run(IRQ)) {
			rows[IRQ].us = irq_raises(r, efd, false, n);
			if (rows[IRQ].us < 0)
				row_fail(IRQ, "trigger thread: %s",
					 strerror(errno));
		}
		if (run(IRQ_DIRECT)) {
			rows[IRQ_DIRECT].us = irq_raises(r, efd, true, n);
			if (rows[IRQ_DIRECT].us < 0)
				row_fail(IRQ_DIRECT, "writer thread: %s",
					 strerror(errno));
		}
		set_irq_eventfd(r->c.device, VFIO_PCI_MSI_IRQ_INDEX, 0, -1);
	}
	close(efd);
}

/* Trapped writes of a BAR with MUSER_REGION_F_POSTED_WRITES. */
static int bench_posted(long n)
{
	struct worker how = { .region = VFIO_PCI_BAR0_REGION_INDEX,
			      .write = true };
	struct muser_device_info layout;
	const char *step = "?";
	struct rig r;
	int ret;

	layout_default(&layout);
	layout.regions[VFIO_PCI_BAR0_REGION_INDEX].flags |=
		MUSER_REGION_F_POSTED_WRITES;
	rig_init(&r);
	ret = rig_setup(&r, "req_bench posted", &layout, 0, &step);
	if (ret == -EINVAL && !strcmp(step, "MUSER_IOC_ATTACH")) {
		/* A muser.ko without posted writes: a fact, not a failure. */
		row_why(WRITE_POSTED, "attach: %s", strerror(-ret));
		row_why(WRITE_POSTED_POLL, "attach: %s", strerror(-ret));
		row_why(WRITE_POSTED_POLL_RING, "attach: %s", strerror(-ret));
		row_why(WRITE_POSTED_ONE, "attach: %s", strerror(-ret));
		row_why(WRITE_POSTED_ONE_RING, "attach: %s", strerror(-ret));
	} else if (ret) {
		row_fail(WRITE_POSTED, "%s: %s", step, strerror(-ret));
		row_why(WRITE_POSTED_POLL, "see above");
		row_why(WRITE_POSTED_POLL_RING, "see above");
		row_why(WRITE_POSTED_ONE, "see above");
		row_why(WRITE_POSTED_ONE_RING, "see above");
	} else {
		how.c = &r.c;
		bench_emu(WRITE_POSTED, &r, &how, 1, other_cpu, 0, n);
		if (ncpus > 1) {
			bench_emu(WRITE_POSTED_POLL, &r, &how, 1, other_cpu,
				  EMU_THREAD_SPIN, n);
			bench_emu(WRITE_POSTED_POLL_RING, &r, &how, 1, other_cpu,
				  EMU_THREAD_SPIN | EMU_THREAD_RING, n);
			bench_posted_one(WRITE_POSTED_ONE, &r, false, n);
			bench_posted_one(WRITE_POSTED_ONE_RING, &r, true, n);
		} else {
			row_why(WRITE_POSTED_POLL, "needs 2 CPUs");
			row_why(WRITE_POSTED_POLL_RING, "needs 2 CPUs");
			row_why(WRITE_POSTED_ONE, "needs 2 CPUs");
			row_why(WRITE_POSTED_ONE_RING, "needs 2 CPUs");
		}
	}
	return rig_teardown(&r);
}

static void print_table(long n)
{
	int base = rows[MTTY].us > 0 ? MTTY : FLOOR, i;
	struct utsname u;
	long spin_us = -1;

	uname(&u);
	param_get("spin_us", &spin_us);
	printf("req_bench: %s, %d CPUs, %ld accesses per row (means), muser spin_us %ld\n",
	       u.release, ncpus, n, spin_us);
	if (base != MTTY)
		printf("!!! no mtty row (%s): the ratios are to the SYSCALL FLOOR, not to mtty\n",
		       rows[MTTY].why);
	printf("%-36s %12s %9s\n", "row", "us/access",
	       base == MTTY ? "x mtty" : "x floor");
	for (i = 0; i < NR_ROWS; i++) {
		if (rows[i].off)
			continue;
		if (rows[i].us < 0)
			printf("%-36s %s\n", rows[i].name, rows[i].why);
		else if (rows[base].us <= 0)
			printf("%-36s %12.2f %9s\n", rows[i].name, rows[i].us, "-");
		else
			printf("%-36s %12.2f %9.2f\n", rows[i].name,
			       rows[i].us, rows[i].us / rows[base].us);
	}
	fflush(stdout);
}

/*
 * --only: switch off every row not named in @list (comma-separated keys).
 * Returns 0, or -1 for a name that is no row's.
 */
static int only_rows(char *list)
{
	char *key, *save = NULL;
	int i;

	for (i = 0; i < NR_ROWS; i++) {
		rows[i].off = true;
		row_why(i, "not run (--only)");
	}
	for (key = strtok_r(list, ",", &save); key;
	     key = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NR_ROWS && strcasecmp(key, rows[i].key); i++)
			;
		if (i == NR_ROWS) {
			fprintf(stderr, "req_bench: no row %s\n", key);
			return -1;
		}
		rows[i].off = false;
		rows[i].us = 0;
		rows[i].why[0] = 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long n = 20000;
	struct worker trapped = { .region = VFIO_PCI_BAR0_REGION_INDEX,
				  .mask = 0xfff };
	struct worker devmem = { .region = VFIO_PCI_BAR2_REGION_INDEX,
				 .mask = DEVMEM_SIZE - 1 };
	struct muser_device_info layout;
	const char *step = "?";
	int ret, problems = 0;
	struct rig r;

	if (argc > 2 && !strcmp(argv[1], "--only")) {
		if (only_rows(argv[2]))
			return 2;
		argc -= 2;
		argv += 2;
	}
	if (argc > 1)
		n = strtol(argv[1], NULL, 0);
	if (n < THREADS)
		n = THREADS;
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	other_cpu = ncpus > 1 ? 1 : 0;
	if (ncpus < 2)
		fprintf(stderr, "req_bench: one CPU: the \"other vCPU\" rows run on CPU 0\n");
	pin(pthread_self(), 0);

	bench_floor(n);
	bench_xcpu(n);
	bench_mtty(n);

	/* BAR0 trapped, BAR2's first page device memory. */
	layout_default(&layout);
	layout.num_mmap_areas = 1;
	layout.mmap_areas[0] = (struct muser_mmap_area){
		.region = VFIO_PCI_BAR2_REGION_INDEX, .size = DEVMEM_SIZE };
	rig_init(&r);
	ret = rig_setup(&r, "req_bench", &layout, 0, &step);
	if (ret) {
		fprintf(stderr, "req_bench: %s: %s\n", step, strerror(-ret));
		rig_teardown(&r);
		return 1;
	}
	trapped.c = &r.c;

	devmem.c = &r.c;
	if (run(DEVMEM))
		rows[DEVMEM].us = accesses(&devmem, 1, n);
	bench_emu(READ_OTHER, &r, &trapped, 1, other_cpu, 0, n);
	bench_emu_nospin(READ_OTHER_NOSPIN, &r, &trapped, other_cpu, 0, n);
	bench_emu(READ_OTHER_RING, &r, &trapped, 1, other_cpu, EMU_THREAD_RING,
		  n);
	bench_emu(READ_SAME, &r, &trapped, 1, 0, 0, n);
	if (ncpus > 1) {
		bench_emu(READ_POLL, &r, &trapped, 1, other_cpu,
			  EMU_THREAD_SPIN, n);
		bench_emu_nospin(READ_POLL_NOSPIN, &r, &trapped, other_cpu,
				 EMU_THREAD_SPIN, n);
		bench_emu(READ_POLL_RING, &r, &trapped, 1, other_cpu,
			  EMU_THREAD_SPIN | EMU_THREAD_RING, n);
	} else {
		row_why(READ_POLL, "needs 2 CPUs");
		row_why(READ_POLL_NOSPIN, "needs 2 CPUs");
		row_why(READ_POLL_RING, "needs 2 CPUs");
	}
	trapped.write = true;
	bench_emu(WRITE, &r, &trapped, 1, other_cpu, 0, n);
	trapped.write = false;
	if (run(WRITE_POSTED) || run(WRITE_POSTED_POLL) ||
	    run(WRITE_POSTED_POLL_RING) || run(WRITE_POSTED_ONE) ||
	    run(WRITE_POSTED_ONE_RING))
		problems = bench_posted(n);
	pin(pthread_self(), -1);
	bench_emu(READ_X8, &r, &trapped, THREADS, -1, 0, n);
	bench_emu(READ_X8_RING, &r, &trapped, THREADS, -1,
		  EMU_THREAD_SPIN | EMU_THREAD_RING, n);
	pin(pthread_self(), 0);
	if (run(IRQ) || run(IRQ_DIRECT))
		bench_irq(&r, n);

	problems += rig_teardown(&r);
	print_table(n);
	if (failed || problems)
		fprintf(stderr, "req_bench: %ld failures, %d teardown problems\n",
			failed, problems);
	return failed || problems ? 1 : 0;
}
