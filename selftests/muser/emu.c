// SPDX-License-Identifier: GPL-2.0
/*
 * The raw emulator: attach, read requests, write replies, interrupts,
 * takeover; see common.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "common.h"

#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((typeof(x))(a) - 1))

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
	int ret;

	ret = poll_in(ctl, timeout_ms);
	if (ret <= 0)
		return ret;
	if (!(ret & POLLIN))
		return -EPIPE;
	return emu_read(ctl, reqs, max);
}

int emu_read_one(int ctl, struct emu_req *r, int timeout_ms)
{
	struct emu_req reqs[4];
	int n = emu_read_timeout(ctl, reqs, 4, timeout_ms);

	if (n == 1)
		*r = reqs[0];
	return n;
}

int emu_read_n(int ctl, struct emu_req *reqs, int want, int timeout_ms)
{
	int have = 0, n;

	while (have < want) {
		n = emu_read_timeout(ctl, reqs + have, want - have, timeout_ms);
		if (n <= 0)
			return n < 0 ? n : have;
		have += n;
	}
	return have;
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
