// SPDX-License-Identifier: GPL-2.0
/*
 * The fixture layer of the muser selftests; see fixture.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "fixture.h"

void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->kmsg = -1;
	r->ctl = -1;
	vfio_client_init(&r->c);
}

#define STEP(name) do { if (step) *step = name; } while (0)

int rig_open_vmm(struct rig *r, const char **step)
{
	return vfio_client_open(&r->c, r->uuid, step);
}

int rig_setup(struct rig *r, const char *name,
	      const struct muser_device_info *layout, unsigned int flags,
	      const char **step)
{
	int ret;

	r->kmsg = kmsg_start(name);
	STEP("create the mdev");
	ret = mdev_create(r->uuid);
	if (ret)
		return ret;
	r->created = true;
	STEP("open the control node");
	r->ctl = ctl_open(r->uuid, flags & RIG_NONBLOCK ? O_NONBLOCK : 0);
	if (r->ctl < 0)
		return r->ctl;
	if (layout)
		r->layout = *layout;
	else
		layout_default(&r->layout);
	if (!(flags & RIG_DETACHED)) {
		STEP("MUSER_IOC_ATTACH");
		ret = ctl_attach(r->ctl, &r->layout);
		if (ret)
			return ret;
	}
	if (flags & RIG_NO_VMM)
		return 0;
	return rig_open_vmm(r, step);
}

int rig_teardown(struct rig *r)
{
	int problems = 0;
	long pinned;

	vfio_client_close(&r->c);
	if (r->created) {
		pinned = dma_stat(r->uuid, "pinned_pages");
		if (pinned) {
			fprintf(stderr, "# teardown: %ld pages pinned after the VMM closed\n",
				pinned);
			problems++;
		}
	}
	if (r->ctl >= 0)
		close(r->ctl);
	r->ctl = -1;
	if (r->created && mdev_remove(r->uuid)) {
		fprintf(stderr, "# teardown: cannot remove %s\n", r->uuid);
		problems++;
	}
	r->created = false;
	if (r->kmsg >= 0)
		problems += kmsg_check(r->kmsg, "rig");
	r->kmsg = -1;
	return problems;
}

int _test_dma_map(int ctl, uint64_t iova, uint64_t size, uint32_t flags,
		  uint64_t *offset)
{
	struct muser_dma_map m = {
		.argsz = sizeof(m), .flags = flags, .iova = iova, .size = size,
	};

	if (ioctl(ctl, MUSER_IOC_DMA_MAP, &m))
		return -errno;
	if (offset)
		*offset = m.offset;
	return 0;
}

int _test_dma_release(int ctl, uint64_t iova, uint64_t size)
{
	struct muser_dma_map m = { .argsz = sizeof(m), .iova = iova, .size = size };

	return ioctl(ctl, MUSER_IOC_DMA_RELEASE, &m) ? -errno : 0;
}

int _test_dma_rw(int ctl, uint64_t iova, void *buf, uint64_t size, bool write)
{
	struct muser_dma_rw rw = {
		.argsz = sizeof(rw), .flags = write ? MUSER_DMA_F_WRITE : 0,
		.iova = iova, .size = size, .data = (uintptr_t)buf,
	};

	return ioctl(ctl, MUSER_IOC_DMA_RW, &rw) ? -errno : 0;
}

int _test_vmm_map(struct vfio_client *c, void *vaddr, uint64_t iova,
		  uint64_t size, uint32_t flags)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map), .flags = flags, .vaddr = (uintptr_t)vaddr,
		.iova = iova, .size = size,
	};

	return ioctl(c->container, VFIO_IOMMU_MAP_DMA, &map) ? -errno : 0;
}

int _test_vmm_unmap(struct vfio_client *c, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap), .iova = iova, .size = size,
	};

	return ioctl(c->container, VFIO_IOMMU_UNMAP_DMA, &unmap) ? -errno : 0;
}

/* Per thread: touch() and poke() may run in several threads at once. */
static __thread sigjmp_buf fault_jmp;
static __thread volatile int fault_armed;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (fault_armed)
		siglongjmp(fault_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void fault_handlers(void)
{
	static bool done;
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };

	if (__atomic_exchange_n(&done, true, __ATOMIC_ACQ_REL))
		return;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

bool touch(volatile const uint8_t *p, uint8_t *val)
{
	bool ok = false;

	fault_handlers();
	if (!sigsetjmp(fault_jmp, 1)) {
		fault_armed = 1;
		*val = *p;
		ok = true;
	}
	fault_armed = 0;
	return ok;
}

bool poke(volatile uint8_t *p, uint8_t val)
{
	bool ok = false;

	fault_handlers();
	if (!sigsetjmp(fault_jmp, 1)) {
		fault_armed = 1;
		*p = val;
		ok = true;
	}
	fault_armed = 0;
	return ok;
}
