// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel log check; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#ifndef MUSER_SELFTESTS_DIR
#define MUSER_SELFTESTS_DIR "selftests"
#endif

/* The patterns of selftests/kernel-log-bad, compiled once. */
#define KMSG_BAD_MAX	64
static regex_t kmsg_bad[KMSG_BAD_MAX];
static int nr_kmsg_bad = -1;
static int kmsg_bad_err;	/* -errno: the list could not be had */

const char *kmsg_bad_path(char *buf, size_t len)
{
	const char *dir = getenv("MUSER_SELFTESTS_DIR");

	snprintf(buf, len, "%s/kernel-log-bad",
		 dir && *dir ? dir : MUSER_SELFTESTS_DIR);
	return buf;
}

void kmsg_bad_forget(void)
{
	while (nr_kmsg_bad > 0)
		regfree(&kmsg_bad[--nr_kmsg_bad]);
	nr_kmsg_bad = -1;
	kmsg_bad_err = 0;
}

/*
 * A list that cannot be read, a pattern that does not compile or one too
 * many would weaken every test's log check unseen: each is an error.
 */
static int kmsg_bad_load(void)
{
	char path[PATH_MAX], line[256];
	FILE *f;

	if (nr_kmsg_bad >= 0)
		return kmsg_bad_err;
	nr_kmsg_bad = 0;
	f = fopen(kmsg_bad_path(path, sizeof(path)), "re");
	if (!f) {
		kmsg_bad_err = -errno;
		fprintf(stderr, "# FAIL: cannot read the bad kernel-log lines %s: %m (set MUSER_SELFTESTS_DIR)\n",
			path);
		return kmsg_bad_err;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!*line || *line == '#')
			continue;
		if (nr_kmsg_bad == KMSG_BAD_MAX) {
			fprintf(stderr, "# FAIL: %s: more than %d patterns\n",
				path, KMSG_BAD_MAX);
			kmsg_bad_err = -E2BIG;
			break;
		}
		if (regcomp(&kmsg_bad[nr_kmsg_bad], line, REG_EXTENDED | REG_NOSUB)) {
			fprintf(stderr, "# FAIL: bad pattern in %s: %s\n", path, line);
			kmsg_bad_err = -EINVAL;
			continue;
		}
		nr_kmsg_bad++;
	}
	if (!nr_kmsg_bad && !kmsg_bad_err) {
		fprintf(stderr, "# FAIL: no patterns in %s\n", path);
		kmsg_bad_err = -ENODATA;
	}
	fclose(f);
	return kmsg_bad_err;
}

int kmsg_is_bad(const char *msg)
{
	int ret = kmsg_bad_load(), i;

	if (ret && !nr_kmsg_bad)
		return ret;
	for (i = 0; i < nr_kmsg_bad; i++)
		if (!regexec(&kmsg_bad[i], msg, 0, NULL, 0))
			return 1;
	return 0;
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
	int bad = 0;

	if (fd < 0)
		return 0;
	/* No list, no check: that is one problem already. */
	if (kmsg_bad_load())
		bad++;
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
		if (kmsg_is_bad(msg) > 0) {
			fprintf(stderr, "# dmesg: %s", msg);
			bad++;
		}
	}
	close(fd);
	return bad;
}

int kmsg_count(int fd, const char *needle)
{
	char rec[8192];
	ssize_t n;
	int found = 0;

	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (n <= 0)
			break;
		rec[n] = 0;
		found += strstr(rec, needle) != NULL;
	}
	return found;
}
