// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the muser selftests; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "common.h"

#ifndef MUSER_SAMPLE_PATH
#define MUSER_SAMPLE_PATH "gpio-pci-idio-16"
#endif

#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((typeof(x))(a) - 1))

/* ------------------------------------------------------------------ sysfs */

int sysfs_write(const char *path, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, s, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

int sysfs_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return n;
}

int sysfs_read_long(const char *path, long *val)
{
	char buf[64], *end;
	int ret;

	ret = sysfs_read(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	errno = 0;
	*val = strtol(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

int param_get(const char *name, long *val)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), MUSER_PARAM_DIR "/%s", name);
	return sysfs_read_long(path, val);
}

int param_set(const char *name, long val)
{
	char path[PATH_MAX], s[32];

	snprintf(path, sizeof(path), MUSER_PARAM_DIR "/%s", name);
	snprintf(s, sizeof(s), "%ld", val);
	return sysfs_write(path, s);
}

void uuid_gen(char uuid[UUID_LEN + 1])
{
	char buf[64];

	/* The file holds a newline too: read it whole, not into @uuid. */
	if (sysfs_read("/proc/sys/kernel/random/uuid", buf, sizeof(buf)) ==
	    UUID_LEN) {
		memcpy(uuid, buf, UUID_LEN + 1);
		return;
	}
	/* Fallback: random version-4 UUID. */
	srandom(getpid() ^ now_ms());
	snprintf(uuid, UUID_LEN + 1, "%08lx-%04lx-4%03lx-a%03lx-%012llx",
		 random() & 0xffffffffL, random() & 0xffffL, random() & 0xfffL,
		 random() & 0xfffL,
		 ((unsigned long long)random() << 24 ^ random()) &
			 0xffffffffffffULL);
}

int mdev_create_uuid(const char *uuid)
{
	return sysfs_write(MDEV_TYPE_DIR "/create", uuid);
}

int mdev_create(char uuid[UUID_LEN + 1])
{
	uuid_gen(uuid);
	return mdev_create_uuid(uuid);
}

int mdev_remove(const char *uuid)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/remove", uuid);
	return sysfs_write(path, "1");
}

bool path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int wait_path(const char *path, bool want, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	for (;;) {
		if (path_exists(path) == want)
			return 0;
		if (now_ms() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

bool muser_loaded(void)
{
	return path_exists(MDEV_TYPE_DIR "/create");
}

/* ----------------------------------------------------------------- module */

#ifndef MUSER_KMOD_DIR
#define MUSER_KMOD_DIR "build/kmod"
#endif

const char *muser_ko_path(char *buf, size_t len)
{
	const char *env = getenv("MUSER_KO");
	struct utsname u;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return buf;
	}
	if (uname(&u))
		strcpy(u.release, "unknown");
	snprintf(buf, len, MUSER_KMOD_DIR "/%s/muser.ko", u.release);
	return buf;
}

int muser_module_load(const char *params)
{
	char path[PATH_MAX];
	int fd, ret = 0;

	fd = open(muser_ko_path(path, sizeof(path)), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params ? params : "", 0))
		ret = -errno;
	close(fd);
	return ret;
}

int muser_module_unload(void)
{
	return syscall(SYS_delete_module, "muser", O_NONBLOCK) ? -errno : 0;
}

long muser_module_refcnt(void)
{
	long v;

	return sysfs_read_long("/sys/module/muser/refcnt", &v) ? -1 : v;
}

/* ------------------------------------------------------- kernel memory */

/* The value of "@key" in a "key value" or "key: value" file, or -1. */
static long proc_field(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, klen) &&
		    (p[klen] == ' ' || p[klen] == ':' || p[klen] == '\t'))
			return strtol(p + klen + 1 + strspn(p + klen + 1, " :\t"),
				      NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

static char *read_text(const char *path)
{
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	if (!buf)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while ((n = read(fd, buf + have, cap - 1 - have)) > 0) {
		have += n;
		if (have == cap - 1) {
			char *more = realloc(buf, cap * 2);

			if (!more)
				break;
			buf = more;
			cap *= 2;
		}
	}
	close(fd);
	buf[have] = 0;
	return buf;
}

/*
 * Objects in use per cache, from /proc/slabinfo: one file, where reading
 * /sys/kernel/slab/NAME/objects opens one per cache, and on 6.1 every
 * sysfs open leaves an object to kfree_rcu() (freed up to 5 s later, so
 * the reading itself would move the counts). Same figure (total less
 * free), same caches (aliases are not listed).
 */
static int kmem_read_caches(struct kmem_snap *s)
{
	char *text = read_text("/proc/slabinfo"), *line, *save;
	int cap = 256;

	if (!text)
		return -errno;
	s->caches = calloc(cap, sizeof(*s->caches));
	if (!s->caches) {
		free(text);
		return -ENOMEM;
	}
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		long n;

		if (sscanf(line, "%63s %ld", name, &n) != 2)
			continue;	/* the header lines */
		if (s->nr == cap) {
			struct kmem_cache_count *more;

			more = realloc(s->caches, 2 * cap * sizeof(*more));
			if (!more)
				break;
			s->caches = more;
			cap *= 2;
		}
		snprintf(s->caches[s->nr].name, sizeof(s->caches[0].name),
			 "%.*s", (int)sizeof(s->caches[0].name) - 1, name);
		s->caches[s->nr++].objects = n;
		s->objects += n;
	}
	free(text);
	return 0;
}

/* Free pages sitting on the per-cpu lists, which MemFree leaves out. */
static long pcp_pages(void)
{
	char *text = read_text("/proc/zoneinfo"), *p;
	long sum = 0;

	for (p = text; p && (p = strstr(p, " count: ")); p += 8)
		sum += strtol(p + 8, NULL, 10);
	free(text);
	return sum;
}

static void kmem_read_counters(struct kmem_snap *s)
{
	static const char *const used[] = {
		"MemFree", "Buffers", "Cached", "SwapCached", "AnonPages",
		"Slab", "KernelStack", "PageTables", "SecPageTables",
		"VmallocUsed", "Percpu",
	};
	char *mi = read_text("/proc/meminfo");
	char *vm = read_text("/proc/vmstat");
	char *kf = read_text("/sys/kernel/debug/kfence/stats");
	long pin_acq, pin_rel, v;
	size_t i;

	s->slab_kb = mi ? proc_field(mi, "Slab") : -1;
	s->sunreclaim_kb = mi ? proc_field(mi, "SUnreclaim") : -1;
	s->other_kb = mi ? proc_field(mi, "MemTotal") : 0;
	for (i = 0; mi && i < sizeof(used) / sizeof(used[0]); i++) {
		v = proc_field(mi, used[i]);
		if (v > 0)
			s->other_kb -= v;
	}
	s->other_kb -= pcp_pages() * (sysconf(_SC_PAGESIZE) / 1024);
	s->nr_slab_unreclaimable = vm ? proc_field(vm, "nr_slab_unreclaimable") : -1;
	s->nr_mlock = vm ? proc_field(vm, "nr_mlock") : -1;
	pin_acq = vm ? proc_field(vm, "nr_foll_pin_acquired") : -1;
	pin_rel = vm ? proc_field(vm, "nr_foll_pin_released") : -1;
	s->foll_pins = pin_acq >= 0 && pin_rel >= 0 ? pin_acq - pin_rel : -1;
	s->kfence = kf ? proc_field(kf, "currently allocated") : 0;
	if (s->kfence < 0)
		s->kfence = 0;
	s->objects += s->kfence;
	free(mi);
	free(vm);
	free(kf);
}

/* Objects in use in all slab caches. */
static long kmem_objects(void)
{
	struct kmem_snap s = { 0 };

	kmem_read_caches(&s);
	kmem_snap_free(&s);
	return s.objects;
}

int kmem_snapshot(struct kmem_snap *s)
{
	long prev, cur;
	int ret, i;

	memset(s, 0, sizeof(*s));
	/* Dentries and inodes of what the test looked at go first. */
	sysfs_write("/proc/sys/vm/drop_caches", "3");
	/*
	 * Objects freed by RCU callbacks (files on 6.1, for one) go in their
	 * own time, slowly in a TCG guest: wait for the count to settle.
	 */
	prev = kmem_objects();
	for (i = 0; i < 20; i++) {
		sleep_ms(200);
		cur = kmem_objects();
		if (labs(cur - prev) <= 2)
			break;
		prev = cur;
	}
	/* Fold the per-cpu vmstat deltas (FOLL_PIN counts drift otherwise). */
	sysfs_write("/proc/sys/vm/stat_refresh", "1");
	ret = kmem_read_caches(s);
	if (ret) {
		kmem_snap_free(s);
		return ret;
	}
	kmem_read_counters(s);
	return 0;
}

void kmem_snap_free(struct kmem_snap *s)
{
	free(s->caches);
	s->caches = NULL;
	s->nr = 0;
}

static long kmem_cache_objects(const struct kmem_snap *s, const char *name)
{
	int i;

	for (i = 0; i < s->nr; i++)
		if (!strcmp(s->caches[i].name, name))
			return s->caches[i].objects;
	return 0;
}

long kmem_report(const struct kmem_snap *a, const struct kmem_snap *b,
		 int top)
{
	bool *shown = calloc(b->nr + 1, sizeof(*shown));
	int i, k;

	fprintf(stderr, "# kmem: slab objects %ld -> %ld (%+ld; KFENCE %ld -> %ld)\n",
	       a->objects, b->objects, b->objects - a->objects, a->kfence,
	       b->kfence);
	fprintf(stderr, "# kmem: Slab %ld -> %ld kB, SUnreclaim %ld -> %ld kB, nr_slab_unreclaimable %ld -> %ld\n",
	       a->slab_kb, b->slab_kb, a->sunreclaim_kb, b->sunreclaim_kb,
	       a->nr_slab_unreclaimable, b->nr_slab_unreclaimable);
	fprintf(stderr, "# kmem: FOLL_PIN pages %ld -> %ld, nr_mlock %ld -> %ld, other kernel memory %ld -> %ld kB (%+ld)\n",
	       a->foll_pins, b->foll_pins, a->nr_mlock, b->nr_mlock,
	       a->other_kb, b->other_kb, b->other_kb - a->other_kb);
	for (k = 0; shown && k < top; k++) {
		long best = 0, d;
		int at = -1;

		for (i = 0; i < b->nr; i++) {
			d = b->caches[i].objects -
			    kmem_cache_objects(a, b->caches[i].name);
			if (!shown[i] && labs(d) > labs(best)) {
				best = d;
				at = i;
			}
		}
		if (at < 0)
			break;
		shown[at] = true;
		fprintf(stderr, "# kmem:   %-28s %+ld objects\n", b->caches[at].name,
		       best);
	}
	free(shown);
	return b->objects - a->objects;
}

void print_kernel_stack(pid_t tid)
{
	static const char *const files[] = { "comm", "wchan", "stack" };
	char path[64], *text, *line, *save;
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)tid, files[i]);
		text = read_text(path);
		if (!text) {
			fprintf(stderr, "#     %s: %s\n", path, strerror(errno));
			continue;
		}
		for (line = strtok_r(text, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "#     %s: %s\n", files[i], line);
		free(text);
	}
}

/* ------------------------------------------------------------------- time */

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

bool wait_flag(volatile int *flag, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (now_ms() > end)
			return false;
		sleep_ms(5);
	}
	return true;
}

long dma_stat(const char *uuid, const char *name)
{
	char path[256];
	long v;

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/dma/%s", uuid, name);
	return sysfs_read_long(path, &v) ? -1 : v;
}

int dma_stat_set(const char *uuid, const char *name, long val)
{
	char path[256], s[32];

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/dma/%s", uuid, name);
	snprintf(s, sizeof(s), "%ld", val);
	return sysfs_write(path, s);
}

/* ------------------------------------------------------------ VFIO client */

void vfio_client_init(struct vfio_client *c)
{
	c->container = c->group = c->device = -1;
	c->dma = NULL;
	c->dma_size = 0;
}

static int group_path(const char *uuid, char *out, size_t len)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), MDEV_BUS_DIR "/%s/iommu_group", uuid);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	snprintf(out, len, "/dev/vfio/%s", basename(target));
	return 0;
}

#define STEP(name) do { if (step) *step = name; } while (0)

int vfio_client_open(struct vfio_client *c, const char *uuid,
		     const char **step)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	char gpath[PATH_MAX];
	int ret;

	vfio_client_init(c);

	STEP("open /dev/vfio/vfio");
	c->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (c->container < 0)
		goto fail;
	STEP("VFIO_GET_API_VERSION");
	ret = ioctl(c->container, VFIO_GET_API_VERSION);
	if (ret != VFIO_API_VERSION) {
		errno = ret < 0 ? errno : EPROTO;
		goto fail;
	}
	STEP("VFIO_CHECK_EXTENSION(TYPE1v2)");
	ret = ioctl(c->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	if (ret != 1) {
		errno = ret < 0 ? errno : ENOTSUP;
		goto fail;
	}
	STEP("iommu_group link");
	ret = group_path(uuid, gpath, sizeof(gpath));
	if (ret) {
		errno = -ret;
		goto fail;
	}
	STEP("open group");
	c->group = open(gpath, O_RDWR | O_CLOEXEC);
	if (c->group < 0)
		goto fail;
	STEP("VFIO_GROUP_GET_STATUS");
	if (ioctl(c->group, VFIO_GROUP_GET_STATUS, &status))
		goto fail;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		errno = EPERM;
		goto fail;
	}
	STEP("VFIO_GROUP_SET_CONTAINER");
	if (ioctl(c->group, VFIO_GROUP_SET_CONTAINER, &c->container))
		goto fail;
	STEP("VFIO_SET_IOMMU(TYPE1v2)");
	if (ioctl(c->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		goto fail;
	STEP("mmap DMA memory");
	c->dma = mmap(NULL, DMA_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->dma == MAP_FAILED) {
		c->dma = NULL;
		goto fail;
	}
	c->dma_size = DMA_SIZE;
	STEP("VFIO_IOMMU_MAP_DMA");
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	map.vaddr = (uintptr_t)c->dma;
	map.iova = 0;
	map.size = DMA_SIZE;
	if (ioctl(c->container, VFIO_IOMMU_MAP_DMA, &map))
		goto fail;
	STEP("VFIO_GROUP_GET_DEVICE_FD");
	c->device = ioctl(c->group, VFIO_GROUP_GET_DEVICE_FD, uuid);
	if (c->device < 0)
		goto fail;
	STEP("done");
	return 0;
fail:
	ret = -errno;
	vfio_client_close(c);
	return ret;
}

void vfio_client_close(struct vfio_client *c)
{
	if (c->device >= 0)
		close(c->device);
	if (c->group >= 0)
		close(c->group);
	if (c->container >= 0)
		close(c->container);
	if (c->dma)
		munmap(c->dma, c->dma_size);
	vfio_client_init(c);
}

ssize_t region_read(struct vfio_client *c, int idx, uint64_t off,
		    void *buf, size_t len)
{
	ssize_t n = pread(c->device, buf, len, MUSER_REGION_OFFSET(idx) + off);

	return n < 0 ? -errno : n;
}

ssize_t region_write(struct vfio_client *c, int idx, uint64_t off,
		     const void *buf, size_t len)
{
	ssize_t n = pwrite(c->device, buf, len, MUSER_REGION_OFFSET(idx) + off);

	return n < 0 ? -errno : n;
}

int get_region_info(int device, int idx, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = idx;
	return ioctl(device, VFIO_DEVICE_GET_REGION_INFO, ri) ? -errno : 0;
}

int get_irq_info(int device, int idx, struct vfio_irq_info *ii)
{
	memset(ii, 0, sizeof(*ii));
	ii->argsz = sizeof(*ii);
	ii->index = idx;
	return ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, ii) ? -errno : 0;
}

int set_irq_eventfd(int device, int idx, int vector, int fd)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	int32_t efd = fd;

	memset(buf, 0, sizeof(buf));
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = idx;
	set->start = vector;
	set->count = 1;
	memcpy(set->data, &efd, sizeof(efd));
	return ioctl(device, VFIO_DEVICE_SET_IRQS, set) ? -errno : 0;
}

int64_t eventfd_wait(int efd, int timeout_ms)
{
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	uint64_t val;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return 0;
	if (read(efd, &val, sizeof(val)) != sizeof(val))
		return -errno;
	return (int64_t)val;
}

int check_sample_device(struct vfio_client *c)
{
	static const uint8_t want[] = { 0, 0, 0, 1, 1, 1, 2, 2, 2 };
	uint16_t id[2];
	uint8_t b;
	int bad = 0;
	ssize_t n;
	size_t i;

	n = region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0, id, sizeof(id));
	if (n < 0) {
		fprintf(stderr, "# config read: %s\n", strerror(-n));
		return n;
	}
	if (n != sizeof(id)) {
		fprintf(stderr, "# config read: short read %zd\n", n);
		bad++;
	}
	if (id[0] != SAMPLE_VENDOR) {
		fprintf(stderr, "# vendor 0x%04x, expected 0x%04x\n", id[0],
			SAMPLE_VENDOR);
		bad++;
	}
	if (id[1] != SAMPLE_DEVICE) {
		fprintf(stderr, "# device 0x%04x, expected 0x%04x\n", id[1],
			SAMPLE_DEVICE);
		bad++;
	}
	for (i = 0; i < sizeof(want); i++) {
		n = region_read(c, VFIO_PCI_BAR2_REGION_INDEX, 0, &b, 1);
		if (n < 0) {
			fprintf(stderr, "# BAR2 read %zu: %s\n", i,
				strerror(-n));
			return n;
		}
		if (n != 1 || b != want[i]) {
			fprintf(stderr, "# BAR2 read %zu: got %u (n=%zd), expected %u\n",
				i, b, n, want[i]);
			bad++;
		}
	}
	return bad;
}

/* ----------------------------------------------------------------- sample */

const char *sample_path(void)
{
	const char *p = getenv("MUSER_SAMPLE");

	return p && *p ? p : MUSER_SAMPLE_PATH;
}

int sample_start(struct sample_proc *p, const char *uuid, int timeout_ms)
{
	const char *extra = getenv("MUSER_SAMPLE_ARGS");
	char *argv[32], *args = NULL, *tok, *save;
	int pfd[2], argc = 0, ret;
	char buf[512];
	size_t have = 0;
	int64_t end;

	p->pid = -1;
	p->out = -1;
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;

	argv[argc++] = (char *)sample_path();
	if (extra && *extra) {
		args = strdup(extra);
		for (tok = strtok_r(args, " ", &save); tok && argc < 28;
		     tok = strtok_r(NULL, " ", &save))
			argv[argc++] = tok;
	}
	argv[argc++] = (char *)uuid;
	argv[argc] = NULL;

	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	if (p->pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		free(args);
		return ret;
	}
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], STDOUT_FILENO);
		execv(argv[0], argv);
		fprintf(stderr, "# exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(args);
	close(pfd[1]);
	p->out = pfd[0];

	/* Wait for "ready". */
	end = now_ms() + timeout_ms;
	for (;;) {
		struct pollfd pl = { .fd = p->out, .events = POLLIN };
		int64_t left = end - now_ms();
		ssize_t n;

		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		ret = poll(&pl, 1, left);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			ret = ret ? -errno : -ETIMEDOUT;
			break;
		}
		n = read(p->out, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0) {
			ret = -ECHILD;	/* it exited before "ready" */
			break;
		}
		have += n;
		buf[have] = 0;
		if (strstr(buf, "ready"))
			return 0;
		if (have > sizeof(buf) / 2) {
			/* Keep the tail only. */
			memmove(buf, buf + have - 16, 16);
			have = 16;
		}
	}
	sample_stop(p);
	return ret;
}

int sample_stop(struct sample_proc *p)
{
	int status = 0, i;
	pid_t r;

	if (p->pid <= 0)
		return -ECHILD;
	kill(p->pid, SIGTERM);
	for (i = 0; i < 100; i++) {
		r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid)
			goto out;
		sleep_ms(10);
	}
	kill(p->pid, SIGKILL);
	if (waitpid(p->pid, &status, 0) < 0)
		status = -errno;
out:
	if (p->out >= 0)
		close(p->out);
	p->pid = -1;
	p->out = -1;
	return status;
}

/* ------------------------------------------------------------ raw emulator */

void layout_default(struct muser_device_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->version = MUSER_API_VERSION;
	info->flags = MUSER_DEV_F_RESET;
	info->num_regions = VFIO_PCI_NUM_REGIONS - 1;	/* no VGA */
	info->num_irqs = MUSER_NUM_IRQS;
	info->regions[VFIO_PCI_BAR0_REGION_INDEX].flags =
		VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	info->regions[VFIO_PCI_BAR0_REGION_INDEX].size = 0x1000;
	info->regions[VFIO_PCI_BAR2_REGION_INDEX].flags =
		VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	info->regions[VFIO_PCI_BAR2_REGION_INDEX].size = 0x10000;
	info->regions[VFIO_PCI_CONFIG_REGION_INDEX].flags =
		VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	info->regions[VFIO_PCI_CONFIG_REGION_INDEX].size = 256;
	info->irqs[VFIO_PCI_INTX_IRQ_INDEX].flags =
		VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
	info->irqs[VFIO_PCI_INTX_IRQ_INDEX].count = 1;
	info->irqs[VFIO_PCI_MSI_IRQ_INDEX].flags = VFIO_IRQ_INFO_NORESIZE;
	info->irqs[VFIO_PCI_MSI_IRQ_INDEX].count = 1;
}

int ctl_open(const char *uuid, int flags)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", uuid);
	fd = open(path, O_RDWR | O_CLOEXEC | flags);
	return fd < 0 ? -errno : fd;
}

int ctl_attach(int ctl, const struct muser_device_info *info)
{
	return ioctl(ctl, MUSER_IOC_ATTACH, info) ? -errno : 0;
}

#define EMU_BUF_SIZE	(16 * MUSER_READ_BUF_MIN)

int emu_read(int ctl, struct emu_req *reqs, int max)
{
	static __thread uint8_t buf[EMU_BUF_SIZE] __attribute__((aligned(8)));
	size_t pos = 0;
	ssize_t n;
	int nr = 0;

	n = read(ctl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	while (pos < (size_t)n) {
		struct muser_req *h = (struct muser_req *)(buf + pos);

		if ((size_t)n - pos < sizeof(*h) ||
		    h->data_len > MUSER_MAX_DATA ||
		    pos + sizeof(*h) + h->data_len > (size_t)n) {
			fprintf(stderr, "# malformed request stream at %zu/%zd\n",
				pos, n);
			return -EPROTO;
		}
		if (nr < max) {
			reqs[nr].hdr = *h;
			memcpy(reqs[nr].data, h + 1, h->data_len);
		}
		nr++;
		pos += sizeof(*h) + ALIGN_UP((size_t)h->data_len, MUSER_ALIGN);
	}
	if (pos != (size_t)n) {
		fprintf(stderr, "# request stream not padded: %zu/%zd\n",
			pos, n);
		return -EPROTO;
	}
	if (nr > max) {
		fprintf(stderr, "# %d requests, room for %d\n", nr, max);
		return -E2BIG;
	}
	return nr;
}

int emu_read_timeout(int ctl, struct emu_req *reqs, int max, int timeout_ms)
{
	struct pollfd pfd = { .fd = ctl, .events = POLLIN };
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return 0;
	if (!(pfd.revents & POLLIN))
		return -EPIPE;
	return emu_read(ctl, reqs, max);
}

ssize_t emu_reply(int ctl, uint64_t id, int32_t error, const void *data,
		  uint32_t len)
{
	uint8_t buf[sizeof(struct muser_reply) + MUSER_MAX_DATA + MUSER_ALIGN]
		__attribute__((aligned(8)));
	struct muser_reply *r = (struct muser_reply *)buf;
	size_t total = sizeof(*r) + ALIGN_UP((size_t)len, MUSER_ALIGN);
	ssize_t n;

	if (len > MUSER_MAX_DATA + MUSER_ALIGN - 1)
		return -E2BIG;
	memset(buf, 0, total);
	r->id = id;
	r->error = error;
	r->len = len;
	if (len && data)
		memcpy(r + 1, data, len);
	n = write(ctl, buf, total);
	return n < 0 ? -errno : n;
}

uint8_t emu_pattern(uint32_t region, uint64_t off)
{
	return (uint8_t)((off * 7) ^ (region * 0x35) ^ (off >> 8));
}

static void emu_answer(struct emu_thread *t, struct emu_req *r)
{
	uint8_t data[MUSER_MAX_DATA];
	uint32_t i;
	ssize_t n;

	if (r->hdr.flags & MUSER_REQ_F_REPLAYED)
		t->nr_replayed++;
	switch (r->hdr.type) {
	case MUSER_REQ_READ:
		t->nr_read++;
		t->bytes_read += r->hdr.len;
		for (i = 0; i < r->hdr.len && i < sizeof(data); i++)
			data[i] = emu_pattern(r->hdr.region, r->hdr.offset + i);
		n = emu_reply(t->ctl, r->hdr.id, 0, data, r->hdr.len);
		break;
	case MUSER_REQ_WRITE:
		t->nr_write++;
		t->bytes_written += r->hdr.len;
		n = emu_reply(t->ctl, r->hdr.id, 0, NULL, 0);
		break;
	case MUSER_REQ_RESET:
		t->nr_reset++;
		n = emu_reply(t->ctl, r->hdr.id, 0, NULL, 0);
		break;
	case MUSER_REQ_IRQ_STATE:	/* posted: no reply */
		t->nr_irq_state++;
		return;
	case MUSER_REQ_DMA_UNMAP:
		t->nr_dma_unmap++;
		return;
	case MUSER_REQ_VMM_CLOSE:
		t->nr_vmm_close++;
		return;
	default:
		t->errors++;
		n = emu_reply(t->ctl, r->hdr.id, EINVAL, NULL, 0);
		break;
	}
	/*
	 * ENOENT: the VMM gave up on it meanwhile; ENODEV: the device was
	 * removed meanwhile. Neither is the emulator's error.
	 */
	if (n < 0 && n != -ENOENT && n != -ENODEV)
		t->errors++;
}

static void *emu_thread_fn(void *arg)
{
	struct emu_thread *t = arg;
	static __thread struct emu_req reqs[16];

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = t->ctl, .events = POLLIN },
			{ .fd = t->stop, .events = POLLIN },
		};
		int n, i;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			t->errors++;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			if (!(pfd[0].revents & POLLIN))
				break;
		}
		n = emu_read(t->ctl, reqs, 16);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n == -ENODEV)	/* removed: what POLLHUP says, a bit late */
			break;
		if (n < 0) {
			t->errors++;
			break;
		}
		for (i = 0; i < n; i++)
			emu_answer(t, &reqs[i]);
	}
	return NULL;
}

int emu_thread_start(struct emu_thread *t, int ctl)
{
	int ret, fl;

	memset(t, 0, sizeof(*t));
	t->ctl = ctl;
	fl = fcntl(ctl, F_GETFL);
	if (fl < 0 || fcntl(ctl, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	t->stop = eventfd(0, EFD_CLOEXEC);
	if (t->stop < 0)
		return -errno;
	ret = pthread_create(&t->thread, NULL, emu_thread_fn, t);
	if (ret) {
		close(t->stop);
		return -ret;
	}
	t->running = true;
	return 0;
}

void emu_thread_stop(struct emu_thread *t)
{
	uint64_t one = 1;

	if (!t->running)
		return;
	if (write(t->stop, &one, sizeof(one)) != sizeof(one))
		perror("# emu_thread_stop");
	pthread_join(t->thread, NULL);
	close(t->stop);
	t->running = false;
}

static void *async_fn(void *arg)
{
	struct async_access *a = arg;
	int64_t t0 = now_ms();

	if (a->write)
		a->ret = region_write(a->c, a->region, a->off, a->buf, a->len);
	else
		a->ret = region_read(a->c, a->region, a->off, a->buf, a->len);
	a->elapsed_ms = now_ms() - t0;
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

int async_start(struct async_access *a, struct vfio_client *c, int region,
		uint64_t off, size_t len, bool write)
{
	a->c = c;
	a->region = region;
	a->off = off;
	a->len = len;
	a->write = write;
	a->ret = 0;
	a->done = 0;
	if (len > sizeof(a->buf))
		return -E2BIG;
	return -pthread_create(&a->thread, NULL, async_fn, a);
}

ssize_t async_join(struct async_access *a)
{
	pthread_join(a->thread, NULL);
	return a->ret;
}

/* ------------------------------------------------ interrupts, device memory */

int vfio_set_irqs(int device, uint32_t flags, uint32_t index, uint32_t start,
		  uint32_t count, const void *data)
{
	size_t each = 0, size;
	struct vfio_irq_set *set;
	int ret = 0;

	switch (flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_BOOL:
		each = sizeof(uint8_t);
		break;
	case VFIO_IRQ_SET_DATA_EVENTFD:
		each = sizeof(int32_t);
		break;
	}
	size = sizeof(*set) + (size_t)count * each;
	set = calloc(1, size);
	if (!set)
		return -ENOMEM;
	set->argsz = size;
	set->flags = flags;
	set->index = index;
	set->start = start;
	set->count = count;
	if (each && data)
		memcpy(set->data, data, (size_t)count * each);
	if (ioctl(device, VFIO_DEVICE_SET_IRQS, set))
		ret = -errno;
	free(set);
	return ret;
}

int emu_trigger_irq(int ctl, uint32_t index, uint32_t start, uint32_t count)
{
	struct muser_irq_trigger t = {
		.argsz = sizeof(t), .index = index, .start = start,
		.count = count,
	};

	return ioctl(ctl, MUSER_IOC_TRIGGER_IRQ, &t) ? -errno : 0;
}

void *emu_takeover_fn(void *arg)
{
	struct emu_takeover *t = arg;

	t->ret = ioctl(t->ctl, MUSER_IOC_TAKEOVER, t->info) ? -errno : 0;
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

int emu_get_irq_state(int ctl, uint32_t index, struct muser_irq_state *st)
{
	memset(st, 0, sizeof(*st));
	st->argsz = sizeof(*st);
	st->index = index;
	return ioctl(ctl, MUSER_IOC_GET_IRQ_STATE, st) ? -errno : 0;
}

bool irq_state_enabled(const struct muser_irq_state *st, uint32_t v)
{
	return v < 2048 && (st->enabled[v / 64] >> (v % 64)) & 1;
}

void *map_fd(int fd, uint64_t offset, size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd,
		       (off_t)offset);

	return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------------ dmesg */

#ifndef MUSER_KERNEL_LOG_BAD
#define MUSER_KERNEL_LOG_BAD "selftests/kernel-log-bad"
#endif

/* The patterns of selftests/kernel-log-bad, compiled once. */
#define KMSG_BAD_MAX	64
static regex_t kmsg_bad[KMSG_BAD_MAX];
static int nr_kmsg_bad = -1;

static void kmsg_bad_load(void)
{
	char line[256];
	FILE *f;

	if (nr_kmsg_bad >= 0)
		return;
	nr_kmsg_bad = 0;
	f = fopen(MUSER_KERNEL_LOG_BAD, "re");
	if (!f) {
		fprintf(stderr, "# cannot read %s: %m; checking WARNING: and BUG: only\n",
			MUSER_KERNEL_LOG_BAD);
		regcomp(&kmsg_bad[nr_kmsg_bad++], "WARNING:|BUG:", REG_EXTENDED | REG_NOSUB);
		return;
	}
	while (nr_kmsg_bad < KMSG_BAD_MAX && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!*line || *line == '#')
			continue;
		if (!regcomp(&kmsg_bad[nr_kmsg_bad], line, REG_EXTENDED | REG_NOSUB))
			nr_kmsg_bad++;
		else
			fprintf(stderr, "# bad pattern in %s: %s\n", MUSER_KERNEL_LOG_BAD, line);
	}
	fclose(f);
}

static void kmsg_log(const char *what, const char *name)
{
	char line[512];
	int fd;

	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	snprintf(line, sizeof(line), "<6>muser-selftest: %s %s\n", what, name);
	if (write(fd, line, strlen(line)) < 0) {
		/* best effort */
	}
	close(fd);
}

int kmsg_start(const char *name)
{
	int fd;

	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_END) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	kmsg_log("START", name);
	return fd;
}

int kmsg_check(int fd, const char *name)
{
	char rec[8192];
	int bad = 0, i;

	if (fd < 0)
		return 0;
	kmsg_bad_load();
	kmsg_log("END", name);
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (!strncmp(msg, "muser-selftest:", 15))
			continue;
		for (i = 0; i < nr_kmsg_bad; i++) {
			if (!regexec(&kmsg_bad[i], msg, 0, NULL, 0)) {
				fprintf(stderr, "# dmesg: %s", msg);
				bad++;
				break;
			}
		}
	}
	close(fd);
	return bad;
}

void *reset_fn(void *arg)
{
	struct reset_arg *x = arg;

	x->ret = ioctl(x->fd, VFIO_DEVICE_RESET) ? -errno : 0;
	return NULL;
}
