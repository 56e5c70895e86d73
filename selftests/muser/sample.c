// SPDX-License-Identifier: GPL-2.0
/*
 * The sample emulator process (samples/gpio-pci-idio-16) and the check of
 * the device it emulates; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "common.h"

#ifndef MUSER_SAMPLE_PATH
#define MUSER_SAMPLE_PATH "gpio-pci-idio-16"
#endif

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
