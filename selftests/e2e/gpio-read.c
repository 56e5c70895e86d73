// SPDX-License-Identifier: GPL-2.0
/*
 * gpio-read: read GPIO lines repeatedly through the GPIO character device
 * (uAPI v2), for the nested-guest end-to-end test. Built static: it runs as
 * part of a busybox initramfs.
 *
 *   gpio-read CHIP COUNT LINE [LINE...]
 *   gpio-read --raw RESOURCE OFFSET COUNT
 *
 * CHIP is a path (/dev/gpiochipN) or a chip label to look for among
 * /dev/gpiochip*. Each LINE is requested on its own "as is" (no direction
 * flags, so requesting changes nothing on the device), read COUNT times with
 * GPIO_V2_LINE_GET_VALUES_IOCTL, and released. Output:
 *
 *   chip gpiochip0 label "0000:00:04.0" lines 32
 *   line 0: 0 0 0 1 1 1 0 0 0
 *
 * --raw maps a PCI memory BAR through its sysfs resource file (e.g.
 * /sys/bus/pci/devices/0000:00:04.0/resource2; the BAR must not be claimed
 * by a driver), sets the memory-enable bit of the command register through
 * the sibling config file for the duration (cheaper than the sysfs "enable"
 * file, which also routes the interrupt through ACPI: seconds in a nested
 * guest), and makes COUNT one-byte reads at OFFSET:
 *
 *   raw 0x0: 0 0 0 1 1 1
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <stdint.h>
#include <unistd.h>
#include <linux/gpio.h>

static int open_chip(const char *spec, struct gpiochip_info *info)
{
	char path[300];
	struct dirent *de;
	DIR *d;
	int fd;

	if (strchr(spec, '/')) {
		fd = open(spec, O_RDWR | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, info) < 0) {
			fprintf(stderr, "gpio-read: %s: %s\n", spec, strerror(errno));
			return -1;
		}
		return fd;
	}

	d = opendir("/dev");
	if (!d) {
		perror("gpio-read: /dev");
		return -1;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "gpiochip", 8))
			continue;
		snprintf(path, sizeof(path), "/dev/%s", de->d_name);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, info) == 0 &&
		    !strcmp(info->label, spec)) {
			closedir(d);
			return fd;
		}
		close(fd);
	}
	closedir(d);
	fprintf(stderr, "gpio-read: no gpiochip labelled \"%s\"\n", spec);
	return -1;
}

/* GPIO_READ_DELAY_MS: a pause between reads, for a read that lasts. */
static void pause_between_reads(void)
{
	const char *ms = getenv("GPIO_READ_DELAY_MS");

	if (ms && *ms)
		usleep((useconds_t)strtoul(ms, NULL, 0) * 1000);
}

static int read_line(int chip, unsigned int line, int count)
{
	struct gpio_v2_line_request req;
	struct gpio_v2_line_values vals;
	int i;

	memset(&req, 0, sizeof(req));
	req.offsets[0] = line;
	req.num_lines = 1;
	req.config.flags = 0; /* as is: no direction change, no bias */
	snprintf(req.consumer, sizeof(req.consumer), "muser-e2e");
	if (ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req) < 0) {
		fprintf(stderr, "gpio-read: request line %u: %s\n", line, strerror(errno));
		return -1;
	}

	printf("line %u:", line);
	for (i = 0; i < count; i++) {
		memset(&vals, 0, sizeof(vals));
		vals.mask = 1;
		if (ioctl(req.fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &vals) < 0) {
			printf("\n");
			fprintf(stderr, "gpio-read: get line %u: %s\n", line, strerror(errno));
			close(req.fd);
			return -1;
		}
		printf(" %u", (unsigned int)(vals.bits & 1));
		pause_between_reads();
	}
	printf("\n");
	fflush(stdout);
	close(req.fd);
	return 0;
}

#define PCI_COMMAND_REG		0x04
#define PCI_COMMAND_MEM		0x02

static int read_raw(const char *path, unsigned long offset, int count)
{
	char cfgpath[PATH_MAX];
	volatile uint8_t *bar;	/* MMIO: every read must reach the device */
	uint16_t cmd, on;
	int fd, cfg, i, ret = 1;
	char *slash;

	if (offset >= 4096) {
		fprintf(stderr, "gpio-read: offset 0x%lx beyond the first page\n", offset);
		return 2;
	}
	snprintf(cfgpath, sizeof(cfgpath), "%s", path);
	slash = strrchr(cfgpath, '/');
	if (!slash || (size_t)(slash + 8 - cfgpath) > sizeof(cfgpath)) {
		fprintf(stderr, "gpio-read: bad resource path %s\n", path);
		return 2;
	}
	strcpy(slash + 1, "config");
	cfg = open(cfgpath, O_RDWR | O_CLOEXEC);
	if (cfg < 0 || pread(cfg, &cmd, 2, PCI_COMMAND_REG) != 2) {
		fprintf(stderr, "gpio-read: %s: %s\n", cfgpath, strerror(errno));
		return 1;
	}
	on = cmd | PCI_COMMAND_MEM;
	if (on != cmd && pwrite(cfg, &on, 2, PCI_COMMAND_REG) != 2) {
		fprintf(stderr, "gpio-read: enabling memory decode: %s\n", strerror(errno));
		close(cfg);
		return 1;
	}

	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "gpio-read: %s: %s\n", path, strerror(errno));
		goto restore;
	}
	bar = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED) {
		fprintf(stderr, "gpio-read: mmap %s: %s\n", path, strerror(errno));
		close(fd);
		goto restore;
	}
	printf("raw 0x%lx:", offset);
	for (i = 0; i < count; i++)
		printf(" %u", bar[offset]);
	printf("\n");
	fflush(stdout);
	munmap((void *)bar, 4096);
	close(fd);
	ret = 0;
restore:
	if (on != cmd && pwrite(cfg, &cmd, 2, PCI_COMMAND_REG) != 2) {
		fprintf(stderr, "gpio-read: restoring the command register: %s\n", strerror(errno));
		ret = 1;
	}
	close(cfg);
	return ret;
}

int main(int argc, char **argv)
{
	struct gpiochip_info info;
	int chip, count, i, ret = 0;
	char *end;

	if (argc == 5 && !strcmp(argv[1], "--raw")) {
		unsigned long offset = strtoul(argv[3], &end, 0);

		if (*end)
			return 2;
		count = strtol(argv[4], &end, 0);
		if (*end || count <= 0)
			return 2;
		return read_raw(argv[2], offset, count);
	}
	if (argc < 4) {
		fprintf(stderr, "usage: %s CHIP COUNT LINE [LINE...]\n"
			"       %s --raw RESOURCE OFFSET COUNT\n", argv[0], argv[0]);
		return 2;
	}
	count = strtol(argv[2], &end, 0);
	if (*end || count <= 0) {
		fprintf(stderr, "gpio-read: bad count %s\n", argv[2]);
		return 2;
	}

	memset(&info, 0, sizeof(info));
	chip = open_chip(argv[1], &info);
	if (chip < 0)
		return 1;
	printf("chip %s label \"%s\" lines %u\n", info.name, info.label, info.lines);

	for (i = 3; i < argc; i++) {
		unsigned long line = strtoul(argv[i], &end, 0);

		if (*end || line >= info.lines) {
			fprintf(stderr, "gpio-read: bad line %s\n", argv[i]);
			return 2;
		}
		if (read_line(chip, line, count))
			ret = 1;
	}
	close(chip);
	return ret;
}
