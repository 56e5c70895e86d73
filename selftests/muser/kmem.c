// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel memory snapshots for leak checks, and a task's kernel stack; see
 * common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

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
