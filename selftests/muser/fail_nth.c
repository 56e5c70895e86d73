// SPDX-License-Identifier: GPL-2.0
/*
 * Fault-injection sweep, in the style of the kernel's
 * tools/testing/selftests/iommu/iommufd_fail_nth.c: for each operation,
 * write N to /proc/thread-self/fail-nth (the N-th fault site the thread
 * reaches fails: a slab or page allocation, or a user copy), run the
 * operation, and go on with N = 1, 2, ... until it runs without reaching
 * the N-th site. Every site on the operation's kernel path fails once.
 *
 * Operations: mdev create (the sysfs write), control-node open +
 * MUSER_IOC_ATTACH, a VMM's VFIO open (container, group, SET_CONTAINER,
 * SET_IOMMU, VFIO_GROUP_GET_DEVICE_FD: the device's open_device),
 * VFIO_DEVICE_SET_IRQS (eventfd triggers on 8 MSI-X vectors), and
 * MUSER_IOC_DMA_MAP (64 KiB). After each attempt the operation must have
 * succeeded or failed with an errno, and what it leaves must be clean: no
 * half-created mdev, no hold or pin left (mapped_pages 0, pinned_pages 0
 * once the VMM unmaps), an index that disables and reads back disabled.
 * After each sweep the same device does everything once more (attach, VMM
 * open, a config read answered by the emulator, an MSI-X trigger reaching
 * its eventfd, DMA_MAP and release, VMM close with nothing pinned). The
 * kernel must not oops or warn meanwhile (the test VM runs with
 * panic_on_warn; the runner checks dmesg). The last test scans kmemleak
 * and fails on any suspected leak.
 *
 * Each sweep prints "# fail_nth: OP: N faults injected: F failed (errnos),
 * A absorbed" (absorbed: the operation succeeded anyway, e.g. kmemleak or a
 * cache took the failed allocation).
 *
 * Needs a kernel with CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC and
 * FAULT_INJECTION_DEBUG_FS (tools/vm/debug-kernel.sh); skips elsewhere. The
 * debugfs knobs it changes (verbose 0 everywhere, ignore-gfp-wait and
 * ignore-gfp-highmem N) are restored at exit. probability stays 0: only
 * fail-nth injects, only in this thread (should_fail_ex() consults a
 * task's fail-nth before probability and task-filter, so, as in
 * iommufd_fail_nth.c, no task-filter is set).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "common.h"
#include "harness.h"

#define DEBUGFS		"/sys/kernel/debug"
#define KMEMLEAK	DEBUGFS "/kmemleak"
/*
 * More sites than any operation has today; a sweep that needs more fails
 * (raise it if the kernel path legitimately grew).
 */
#define MAX_NTH		3000
#define NR_VEC		8
#define MAP_SIZE	(64ul << 10)
#define MAX_ERRNO	4096

/* --------------------------------------------------------- debugfs knobs */

struct knob {
	char path[300];
	char old[32];
};

static struct knob knobs[32];
static int nr_knobs;
static pid_t parent_pid;
static const char *no_fault_injection;	/* why the tests skip, or NULL */

static int read_file(const char *path, char *buf, size_t len)
{
	int ret = sysfs_read(path, buf, len);

	return ret < 0 ? ret : 0;
}

/* Set a knob, remembering its old value for the destructor. */
static int knob_set(const char *rel, const char *val)
{
	struct knob *k;
	int ret;

	if (nr_knobs == (int)(sizeof(knobs) / sizeof(knobs[0])))
		return -ENOSPC;
	k = &knobs[nr_knobs];
	snprintf(k->path, sizeof(k->path), DEBUGFS "/%s", rel);
	ret = read_file(k->path, k->old, sizeof(k->old));
	if (ret)
		return ret;
	ret = sysfs_write(k->path, val);
	if (ret)
		return ret;
	nr_knobs++;
	return 0;
}

/* [start, end) of kernel function @name, from /proc/kallsyms; 0 if found. */
static int kallsyms_range(const char *name, unsigned long *start,
			  unsigned long *end)
{
	char line[512], sym[256], type;
	unsigned long addr;
	FILE *f = fopen("/proc/kallsyms", "re");

	*start = *end = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx %c %255s", &addr, &type, sym) != 3)
			continue;
		if (!*start && !strcmp(sym, name) && addr)
			*start = addr;
		else if (addr > *start && *start && (!*end || addr < *end))
			*end = addr;
	}
	fclose(f);
	return *start && *end > *start ? 0 : -ENOENT;
}

/*
 * Kernel functions outside muser whose error paths are broken upstream, so
 * that failing an allocation under them would only report that again (and,
 * with panic_on_warn, end the run): no fault is injected while one is on
 * the stack (each fault_attr has one reject range, hence one function).
 */
static const struct {
	const char *func;
	const char *why;
} known_bad = {
	"vfio_create_group",
	"its error path WARNs in vfio_group_release() (WARN_ON(group->iommu_group): drivers/vfio/group.c does not clear it before put_device()), a VFIO core bug",
};

static void reject_known_bad(void)
{
	static const char *const attrs[] = {
		"failslab", "fail_page_alloc", "fail_usercopy",
	};
	unsigned long start, end;
	char rel[64], val[32];
	size_t i;

	if (kallsyms_range(known_bad.func, &start, &end)) {
		printf("# fail_nth: %s is not in /proc/kallsyms: faults may be injected under it (%s)\n",
		       known_bad.func, known_bad.why);
		return;
	}
	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		snprintf(rel, sizeof(rel), "%s/stacktrace-depth", attrs[i]);
		if (knob_set(rel, "32"))
			continue;	/* no such attr, or no stacktrace filter */
		snprintf(rel, sizeof(rel), "%s/reject-start", attrs[i]);
		snprintf(val, sizeof(val), "0x%lx", start);
		knob_set(rel, val);
		snprintf(rel, sizeof(rel), "%s/reject-end", attrs[i]);
		snprintf(val, sizeof(val), "0x%lx", end);
		knob_set(rel, val);
	}
	printf("# fail_nth: no fault injected under %s: %s\n", known_bad.func,
	       known_bad.why);
}

static void __attribute__((constructor)) setup_fault_injection(void)
{
	struct dirent *d;
	DIR *dir;

	parent_pid = getpid();
	if (access("/proc/thread-self/fail-nth", R_OK | W_OK)) {
		no_fault_injection = "no /proc/thread-self/fail-nth (kernel without CONFIG_FAULT_INJECTION; tools/vm/debug-kernel.sh builds one)";
		return;
	}
	if (access(DEBUGFS "/failslab", F_OK) ||
	    access(DEBUGFS "/fail_page_alloc", F_OK)) {
		no_fault_injection = "no " DEBUGFS "/failslab or fail_page_alloc (kernel without FAILSLAB, FAIL_PAGE_ALLOC or FAULT_INJECTION_DEBUG_FS, or debugfs not mounted)";
		return;
	}
	/* Every allocation may fail, sleeping ones and user pages included. */
	if (knob_set("failslab/ignore-gfp-wait", "N") ||
	    knob_set("fail_page_alloc/ignore-gfp-wait", "N") ||
	    knob_set("fail_page_alloc/ignore-gfp-highmem", "N")) {
		no_fault_injection = "cannot set failslab / fail_page_alloc knobs in debugfs";
		return;
	}
	/* An injected fault must not print a stack trace (dmesg is checked). */
	dir = opendir(DEBUGFS);
	while (dir && (d = readdir(dir))) {
		char rel[300];

		if (strncmp(d->d_name, "fail", 4))
			continue;
		snprintf(rel, sizeof(rel), "%s/verbose", d->d_name);
		knob_set(rel, "0");	/* where there is one */
	}
	if (dir)
		closedir(dir);
	reject_known_bad();
}

static void __attribute__((destructor)) restore_fault_injection(void)
{
	int i;

	if (getpid() != parent_pid)
		return;
	for (i = nr_knobs - 1; i >= 0; i--)
		sysfs_write(knobs[i].path, knobs[i].old);
}

/* ------------------------------------------------------------- fail-nth */

struct sweep {
	const char *op;
	int fd;			/* /proc/thread-self/fail-nth */
	unsigned int nth;
	unsigned int injected;	/* faults the operation consumed */
	unsigned int failed;	/* ... of which made it fail */
	unsigned int absorbed;	/* ... of which it survived */
	unsigned int errs[MAX_ERRNO];
};

static void sweep_init(struct __test_metadata *_metadata, struct sweep *s,
		       const char *op)
{
	memset(s, 0, sizeof(*s));
	s->op = op;
	s->fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, s->fd);
}

/* Arm: the s->nth-th fault site this thread reaches from now fails. */
static void nth_arm(struct __test_metadata *_metadata, struct sweep *s)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%u", s->nth);

	ASSERT_EQ(len, pwrite(s->fd, buf, len, 0));
}

/*
 * Disarm; was the fault injected? Reading and writing fail-nth are fault
 * sites of their own (user copies): a read failing with EFAULT means the
 * count was 1, i.e. not consumed by the operation; likewise the write
 * (iommufd_fail_nth.c does the same).
 */
static bool nth_fired(struct __test_metadata *_metadata, struct sweep *s)
{
	char buf[32] = "";
	ssize_t r, w;

	r = pread(s->fd, buf, sizeof(buf) - 1, 0);
	if (r < 0 && errno == EFAULT) {
		strcpy(buf, "1\n");
		r = 2;
	}
	w = pwrite(s->fd, "0", 1, 0);
	if (w < 0 && errno == EFAULT) {
		w = pwrite(s->fd, "0", 1, 0);
		strcpy(buf, "1\n");
	}
	EXPECT_EQ(1, w);
	EXPECT_LT(1, r);
	return r == 2 && buf[0] == '0' && buf[1] == '\n';
}

/* Account one attempt that consumed its fault; ret is 0 or -errno. */
static void sweep_count(struct sweep *s, int ret)
{
	s->injected++;
	if (!ret) {
		s->absorbed++;
		return;
	}
	s->failed++;
	if (-ret > 0 && -ret < MAX_ERRNO)
		s->errs[-ret]++;
}

static void sweep_report(struct sweep *s)
{
	char errs[512] = "";
	size_t len = 0;
	int e;

	for (e = 1; e < MAX_ERRNO; e++) {
		if (!s->errs[e] || len >= sizeof(errs) - 32)
			continue;
		len += snprintf(errs + len, sizeof(errs) - len, "%s%s x%u",
				len ? ", " : "", strerrorname_np(e) ?: "?",
				s->errs[e]);
	}
	printf("# fail_nth: %s: %u faults injected: %u failed (%s), %u absorbed\n",
	       s->op, s->injected, s->failed, len ? errs : "-", s->absorbed);
	fflush(stdout);
	close(s->fd);
}

FIXTURE_DATA(fail_nth);

/*
 * One operation of a sweep. prepare() readies an attempt (unfaulted); op()
 * does only the operation, returning 0 or -errno, so that no other syscall
 * meets the fault; after() cleans up and checks what the attempt left.
 */
struct sweep_op {
	const char *name;
	void (*prepare)(struct __test_metadata *_metadata,
			FIXTURE_DATA(fail_nth) *self);
	int (*op)(FIXTURE_DATA(fail_nth) *self);
	void (*after)(struct __test_metadata *_metadata,
		      FIXTURE_DATA(fail_nth) *self, unsigned int nth, int ret);
};

/*
 * N = 1, 2, ... until an attempt runs without meeting the N-th site; it
 * must then succeed. Every attempt must return 0 or an errno.
 */
static void run_sweep(struct __test_metadata *_metadata,
		      FIXTURE_DATA(fail_nth) *self, const struct sweep_op *o)
{
	static struct sweep s;
	bool fired;
	int ret;

	sweep_init(_metadata, &s, o->name);
	for (s.nth = 1; s.nth <= MAX_NTH; s.nth++) {
		if (o->prepare)
			o->prepare(_metadata, self);
		nth_arm(_metadata, &s);
		ret = o->op(self);
		fired = nth_fired(_metadata, &s);
		ASSERT_TRUE(ret <= 0 && ret > -MAX_ERRNO)
			TH_LOG("%s: nth %u: returned %d", o->name, s.nth, ret);
		/* ERESTARTSYS, ENOTSUPP and co. must not reach userspace. */
		EXPECT_GT(512, -ret)
			TH_LOG("%s: nth %u: kernel-internal errno %d", o->name,
			       s.nth, -ret);
		if (o->after)
			o->after(_metadata, self, s.nth, ret);
		if (!fired) {
			ASSERT_EQ(0, ret)
				TH_LOG("%s failed (%s) with no fault injected",
				       o->name, strerror(-ret));
			break;
		}
		sweep_count(&s, ret);
	}
	ASSERT_GE(MAX_NTH, s.nth)
		TH_LOG("%s: more than %d fault sites", o->name, MAX_NTH);
	sweep_report(&s);
}

/* --------------------------------------------------------------- device */

static void layout_msix(struct muser_device_info *info)
{
	layout_default(info);
	info->irqs[VFIO_PCI_MSIX_IRQ_INDEX].flags = VFIO_IRQ_INFO_NORESIZE;
	info->irqs[VFIO_PCI_MSIX_IRQ_INDEX].count = NR_VEC;
}

FIXTURE(fail_nth) {
	char uuid[UUID_LEN + 1];
	/* what one attempt works with */
	char op_uuid[UUID_LEN + 1];
	char op_path[128];
	int op_fd;
	struct vfio_client op_vmm;
	long instances;
	int core_leaks;		/* mdev_core_instance_leak() seen */
	struct vfio_irq_set *irq_set;
	struct muser_dma_map map;
	long pins;		/* FOLL_PIN pages before the DMA_MAP sweep */
	bool created;
	struct muser_device_info layout;
	int ctl;
	struct emu_thread emu;
	struct vfio_client c;
	int efd[NR_VEC];
	int kmsg;
};

FIXTURE_SETUP(fail_nth)
{
	int i;

	self->created = false;
	self->ctl = -1;
	self->op_fd = -1;
	self->kmsg = -1;
	vfio_client_init(&self->c);
	vfio_client_init(&self->op_vmm);
	for (i = 0; i < NR_VEC; i++)
		self->efd[i] = -1;
	if (no_fault_injection)
		SKIP(return, "%s", no_fault_injection);
	REQUIRE_MUSER();
	layout_msix(&self->layout);
	self->kmsg = kmsg_start(_metadata->name);
	for (i = 0; i < NR_VEC; i++) {
		self->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ASSERT_LE(0, self->efd[i]);
	}
}

FIXTURE_TEARDOWN(fail_nth)
{
	int i;

	if (self->op_fd >= 0)
		close(self->op_fd);
	vfio_client_close(&self->op_vmm);
	emu_thread_stop(&self->emu);
	vfio_client_close(&self->c);
	if (self->ctl >= 0)
		close(self->ctl);
	if (self->created)
		EXPECT_EQ(0, mdev_remove(self->uuid));
	for (i = 0; i < NR_VEC; i++)
		if (self->efd[i] >= 0)
			close(self->efd[i]);
	if (self->kmsg >= 0)
		EXPECT_EQ(0, kmsg_check(self->kmsg, _metadata->name))
			TH_LOG("the kernel logged a warning, see above");
}

static int create_device(FIXTURE_DATA(fail_nth) *self)
{
	int ret = mdev_create(self->uuid);

	self->created = !ret;
	return ret;
}

/* An emulator thread attached to the device (self->ctl). */
static int attach_emulator(FIXTURE_DATA(fail_nth) *self)
{
	int ret;

	self->ctl = ctl_open(self->uuid, 0);
	if (self->ctl < 0)
		return self->ctl;
	ret = ctl_attach(self->ctl, &self->layout);
	if (ret)
		return ret;
	return emu_thread_start(&self->emu, self->ctl);
}

/* A VMM with the device open and DMA_SIZE at iova 0, prefaulted. */
static int open_vmm(FIXTURE_DATA(fail_nth) *self)
{
	const char *step = "?";
	int ret;

	ret = vfio_client_open(&self->c, self->uuid, &step);
	if (ret) {
		fprintf(stderr, "# VMM open: %s: %s\n", step, strerror(-ret));
		return ret;
	}
	/* No page allocation inside DMA_MAP's pins but its own. */
	memset(self->c.dma, 0x5a, self->c.dma_size);
	return 0;
}

static int set_msix(int device, const int *efd, uint32_t count)
{
	int32_t fds[NR_VEC];
	uint32_t i;

	for (i = 0; i < count; i++)
		fds[i] = efd[i];
	return vfio_set_irqs(device,
			     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			     VFIO_PCI_MSIX_IRQ_INDEX, 0, count, fds);
}

static int disable_msix(int device)
{
	return vfio_set_irqs(device,
			     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
			     VFIO_PCI_MSIX_IRQ_INDEX, 0, 0, NULL);
}

/* No MSI-X vector enabled, as the emulator sees it. */
static bool msix_all_off(int ctl)
{
	struct muser_irq_state st;
	uint32_t v;

	if (emu_get_irq_state(ctl, VFIO_PCI_MSIX_IRQ_INDEX, &st))
		return false;
	for (v = 0; v < NR_VEC; v++)
		if (irq_state_enabled(&st, v))
			return false;
	return true;
}

static int dma_ioctl(int ctl, unsigned long req, uint64_t size)
{
	struct muser_dma_map m = {
		.argsz = sizeof(m), .flags = MUSER_DMA_F_WRITE, .iova = 0,
		.size = size,
	};

	return ioctl(ctl, req, &m) ? -errno : 0;
}

/*
 * The VMM moves its DMA memory from @from to @to: unmap (which drops every
 * pin muser cached there) and map again.
 */
static int vmm_move(struct vfio_client *c, uint64_t from, uint64_t to)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap), .iova = from, .size = c->dma_size,
	};
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)c->dma, .iova = to, .size = c->dma_size,
	};

	if (ioctl(c->container, VFIO_IOMMU_UNMAP_DMA, &unmap))
		return -errno;
	return ioctl(c->container, VFIO_IOMMU_MAP_DMA, &map) ? -errno : 0;
}

/* Pages pinned with FOLL_PIN in the whole system, or -1. */
static long foll_pins(void)
{
	char buf[16384], *p;
	long acq = -1, rel = -1;
	int fd;
	ssize_t n;

	/* Fold the per-CPU deltas first. */
	sysfs_write("/proc/sys/vm/stat_refresh", "1");
	fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, "nr_foll_pin_acquired ");
	if (p)
		acq = strtol(p + strlen("nr_foll_pin_acquired "), NULL, 10);
	p = strstr(buf, "nr_foll_pin_released ");
	if (p)
		rel = strtol(p + strlen("nr_foll_pin_released "), NULL, 10);
	return acq < 0 || rel < 0 ? -1 : acq - rel;
}

/*
 * The device still does everything, on the same mdev: an emulator (the
 * fixture's, or a new one), a VMM opening it, a config read the emulator
 * answers, an MSI-X vector reaching its eventfd, a DMA_MAP and release,
 * and the VMM closing it with nothing left pinned.
 */
static void device_works(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fail_nth) *self)
{
	uint8_t cfg[4];
	uint64_t v;
	int i;

	if (self->ctl < 0)
		ASSERT_EQ(0, attach_emulator(self));
	if (self->c.device < 0) {
		vfio_client_close(&self->c);
		ASSERT_EQ(0, open_vmm(self));
	}
	ASSERT_EQ((ssize_t)sizeof(cfg),
		  region_read(&self->c, VFIO_PCI_CONFIG_REGION_INDEX, 0x40,
			      cfg, sizeof(cfg)));
	for (i = 0; i < (int)sizeof(cfg); i++)
		EXPECT_EQ(emu_pattern(VFIO_PCI_CONFIG_REGION_INDEX, 0x40 + i),
			  cfg[i]);
	ASSERT_EQ(0, set_msix(self->c.device, self->efd, NR_VEC));
	ASSERT_EQ(0, emu_trigger_irq(self->ctl, VFIO_PCI_MSIX_IRQ_INDEX,
				     NR_VEC - 1, 1));
	EXPECT_EQ(1, eventfd_wait(self->efd[NR_VEC - 1], 5000));
	ASSERT_EQ(0, disable_msix(self->c.device));
	ASSERT_EQ(0, dma_ioctl(self->ctl, MUSER_IOC_DMA_MAP, MAP_SIZE));
	EXPECT_LT(0, dma_stat(self->uuid, "mapped_pages"));
	ASSERT_EQ(0, dma_ioctl(self->ctl, MUSER_IOC_DMA_RELEASE, MAP_SIZE));
	vfio_client_close(&self->c);
	EXPECT_EQ(0, dma_stat(self->uuid, "pinned_pages"));
	EXPECT_EQ(0, dma_stat(self->uuid, "mapped_pages"));
	for (i = 0; i < NR_VEC; i++)
		while (read(self->efd[i], &v, sizeof(v)) > 0)
			;
}

/* ---------------------------------------------------------------- tests */

/* The sysfs write that creates an mdev. */
static void create_prepare(struct __test_metadata *_metadata,
			   FIXTURE_DATA(fail_nth) *self)
{
	uuid_gen(self->op_uuid);
	snprintf(self->op_path, sizeof(self->op_path), MDEV_BUS_DIR "/%s",
		 self->op_uuid);
	self->op_fd = open(MDEV_TYPE_DIR "/create", O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, self->op_fd);
}

static int create_op(FIXTURE_DATA(fail_nth) *self)
{
	ssize_t n = write(self->op_fd, self->op_uuid, UUID_LEN);

	return n < 0 ? -errno : n == UUID_LEN ? 0 : -EIO;
}

/*
 * The mdev core's own leak: mdev_device_create() takes an available
 * instance before it allocates the mdev and does not give it back when that
 * kzalloc() fails (drivers/vfio/mdev/mdev_core.c, 6.1 to 6.12 at least).
 * Nothing of the device exists then, so the same UUID creates again; a
 * device whose release never ran (a reference muser leaked) would still be
 * on the mdev list, and its UUID would say EEXIST.
 */
static bool mdev_core_instance_leak(struct __test_metadata *_metadata,
				    FIXTURE_DATA(fail_nth) *self, int ret)
{
	int again;

	if (ret != -ENOMEM || self->core_leaks)
		return false;
	again = mdev_create(self->op_uuid);
	if (again)
		return false;
	EXPECT_EQ(0, mdev_remove(self->op_uuid));
	self->core_leaks++;
	return true;
}

static void create_after(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fail_nth) *self, unsigned int nth,
			 int ret)
{
	long now;

	close(self->op_fd);
	self->op_fd = -1;
	if (ret) {
		EXPECT_FALSE(path_exists(self->op_path))
			TH_LOG("nth %u: a failed create (%s) left %s", nth,
			       strerror(-ret), self->op_path);
	} else {
		EXPECT_TRUE(path_exists(self->op_path));
	}
	if (path_exists(self->op_path))
		ASSERT_EQ(0, mdev_remove(self->op_uuid));
	ASSERT_EQ(0, sysfs_read_long(MDEV_TYPE_DIR "/available_instances",
				     &now));
	if (now == self->instances - 1 &&
	    mdev_core_instance_leak(_metadata, self, ret)) {
		printf("# fail_nth: mdev create: nth %u: ENOMEM lost an available instance: the mdev core's leak, not muser's (the UUID creates again)\n",
		       nth);
		self->instances = now;
	}
	ASSERT_EQ(self->instances, now)
		TH_LOG("nth %u: available_instances %ld, was %ld", nth, now,
		       self->instances);
}

TEST_F_TIMEOUT(fail_nth, create, 3600)
{
	static const struct sweep_op o = {
		"mdev create", create_prepare, create_op, create_after,
	};

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, sysfs_read_long(MDEV_TYPE_DIR "/available_instances",
				     &self->instances));
	run_sweep(_metadata, self, &o);
	ASSERT_EQ(0, create_device(self));
	device_works(_metadata, self);
}

/* Opening the control node and attaching a layout. */
static int attach_op(FIXTURE_DATA(fail_nth) *self)
{
	self->op_fd = open(self->op_path, O_RDWR | O_CLOEXEC);
	if (self->op_fd < 0)
		return -errno;
	return ioctl(self->op_fd, MUSER_IOC_ATTACH, &self->layout) ? -errno : 0;
}

static void close_op_fd(struct __test_metadata *_metadata,
			FIXTURE_DATA(fail_nth) *self, unsigned int nth,
			int ret)
{
	(void)_metadata;
	(void)nth;
	(void)ret;
	if (self->op_fd >= 0)
		close(self->op_fd);
	self->op_fd = -1;
}

TEST_F_TIMEOUT(fail_nth, attach, 3600)
{
	static const struct sweep_op o = {
		"control open + ATTACH", NULL, attach_op, close_op_fd,
	};

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, create_device(self));
	snprintf(self->op_path, sizeof(self->op_path), MUSER_DEV_DIR "/%s",
		 self->uuid);
	run_sweep(_metadata, self, &o);
	device_works(_metadata, self);
}

/*
 * A VMM opening the device from nothing: container, group,
 * VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU(TYPE1v2) and
 * VFIO_GROUP_GET_DEVICE_FD (the device's open_device). The group opens
 * once at a time, so every attempt must have released the last one's.
 */
static int vfio_open_op(FIXTURE_DATA(fail_nth) *self)
{
	struct vfio_client *v = &self->op_vmm;

	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		return -errno;
	v->group = open(self->op_path, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		return -errno;
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container))
		return -errno;
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return -errno;
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, self->uuid);
	return v->device < 0 ? -errno : 0;
}

static void vfio_open_after(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fail_nth) *self, unsigned int nth,
			    int ret)
{
	(void)ret;
	vfio_client_close(&self->op_vmm);
	EXPECT_EQ(0, dma_stat(self->uuid, "pinned_pages"))
		TH_LOG("nth %u: pins left after the VMM closed", nth);
}

/* /dev/vfio/GROUP of the mdev. */
static void group_dev_path(struct __test_metadata *_metadata,
			   const char *uuid, char *out, size_t len)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), MDEV_BUS_DIR "/%s/iommu_group", uuid);
	n = readlink(link, target, sizeof(target) - 1);
	ASSERT_LT(0, n);
	target[n] = 0;
	snprintf(out, len, "/dev/vfio/%s", basename(target));
}

TEST_F_TIMEOUT(fail_nth, vfio_open, 3600)
{
	static const struct sweep_op o = {
		"VFIO container + group + device open", NULL, vfio_open_op,
		vfio_open_after,
	};

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, create_device(self));
	ASSERT_EQ(0, attach_emulator(self));
	group_dev_path(_metadata, self->uuid, self->op_path,
		       sizeof(self->op_path));
	run_sweep(_metadata, self, &o);
	device_works(_metadata, self);
}

/* VFIO_DEVICE_SET_IRQS: eventfd triggers on every MSI-X vector. */
static int set_irqs_op(FIXTURE_DATA(fail_nth) *self)
{
	return ioctl(self->c.device, VFIO_DEVICE_SET_IRQS, self->irq_set) ?
		-errno : 0;
}

static void set_irqs_after(struct __test_metadata *_metadata,
			   FIXTURE_DATA(fail_nth) *self, unsigned int nth,
			   int ret)
{
	ASSERT_EQ(0, disable_msix(self->c.device))
		TH_LOG("nth %u: disabling MSI-X after %s", nth,
		       ret ? strerror(-ret) : "success");
	ASSERT_TRUE(msix_all_off(self->ctl))
		TH_LOG("nth %u: MSI-X vectors still enabled", nth);
}

TEST_F_TIMEOUT(fail_nth, set_irqs_msix, 3600)
{
	static const struct sweep_op o = {
		"SET_IRQS MSI-X eventfds", NULL, set_irqs_op, set_irqs_after,
	};
	static char buf[sizeof(struct vfio_irq_set) + NR_VEC * sizeof(int32_t)];
	int32_t fds[NR_VEC];
	int i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, create_device(self));
	ASSERT_EQ(0, attach_emulator(self));
	ASSERT_EQ(0, open_vmm(self));
	self->irq_set = (struct vfio_irq_set *)buf;
	self->irq_set->argsz = sizeof(buf);
	self->irq_set->flags = VFIO_IRQ_SET_DATA_EVENTFD |
			       VFIO_IRQ_SET_ACTION_TRIGGER;
	self->irq_set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	self->irq_set->start = 0;
	self->irq_set->count = NR_VEC;
	for (i = 0; i < NR_VEC; i++)
		fds[i] = self->efd[i];
	memcpy(self->irq_set->data, fds, sizeof(fds));
	run_sweep(_metadata, self, &o);
	device_works(_metadata, self);
}

/* MUSER_IOC_DMA_MAP of 64 KiB the VMM mapped (and the pins behind it). */
static int dma_map_op(FIXTURE_DATA(fail_nth) *self)
{
	return ioctl(self->ctl, MUSER_IOC_DMA_MAP, &self->map) ? -errno : 0;
}

/*
 * Each attempt at a new iova: the VMM moves its memory there, which drops
 * the pins the last attempt cached (every attempt pins afresh) and is no
 * unmap of a range it just unmapped (muser fences pins after those).
 */
static void dma_map_after(struct __test_metadata *_metadata,
			  FIXTURE_DATA(fail_nth) *self, unsigned int nth,
			  int ret)
{
	uint64_t next = (uint64_t)(nth + 1) * DMA_SIZE;

	if (!ret)
		ASSERT_EQ(0, ioctl(self->ctl, MUSER_IOC_DMA_RELEASE, &self->map));
	EXPECT_EQ(0, dma_stat(self->uuid, "mapped_pages"))
		TH_LOG("nth %u: a hold is left after %s", nth,
		       ret ? strerror(-ret) : "release");
	ASSERT_EQ(0, vmm_move(&self->c, self->map.iova, next));
	self->map.iova = next;
	EXPECT_EQ(0, dma_stat(self->uuid, "pinned_pages"))
		TH_LOG("nth %u: pins left after the VMM unmapped", nth);
	EXPECT_EQ(self->pins, foll_pins())
		TH_LOG("nth %u: FOLL_PIN pages left after the VMM unmapped", nth);
}

TEST_F_TIMEOUT(fail_nth, dma_map, 3600)
{
	static const struct sweep_op o = {
		"DMA_MAP", NULL, dma_map_op, dma_map_after,
	};

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, create_device(self));
	ASSERT_EQ(0, attach_emulator(self));
	ASSERT_EQ(0, open_vmm(self));
	self->pins = foll_pins();
	ASSERT_LE(0, self->pins);
	self->map = (struct muser_dma_map){
		.argsz = sizeof(self->map), .flags = MUSER_DMA_F_WRITE,
		.iova = 0, .size = MAP_SIZE,
	};
	run_sweep(_metadata, self, &o);
	/* Back at iova 0 for device_works(). */
	ASSERT_EQ(0, vmm_move(&self->c, self->map.iova, 0));
	device_works(_metadata, self);
}

/*
 * Last: what the sweeps (and whatever ran before in this boot) left
 * unreferenced. Two scans with a pause, as kmemleak wants (an object is
 * reported once it is at least 5 s old and unchanged between scans).
 */
TEST_F_TIMEOUT(fail_nth, kmemleak, 600)
{
	char buf[4096];
	ssize_t n;
	bool any = false;
	int fd;

	SKIP_IF_SETUP_SKIPPED();
	if (access(KMEMLEAK, W_OK))
		SKIP(return, "no writable " KMEMLEAK " (kernel without DEBUG_KMEMLEAK)");
	ASSERT_EQ(0, sysfs_write(KMEMLEAK, "scan"));
	sleep(6);
	ASSERT_EQ(0, sysfs_write(KMEMLEAK, "scan"));
	fd = open(KMEMLEAK, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = 0;
		fputs(buf, stderr);
		any = true;
	}
	close(fd);
	EXPECT_FALSE(any) TH_LOG("kmemleak reports suspected leaks (above)");
}

TEST_HARNESS_MAIN
