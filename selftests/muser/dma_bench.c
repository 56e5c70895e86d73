// SPDX-License-Identifier: GPL-2.0
/*
 * dma_bench [MiB]: figures for guest DMA through libmuser, printed, never
 * judged (a benchmark, not a timed test). The process is the VMM (anonymous
 * memory mapped for DMA, default 256 MiB) and a libmuser device.
 *
 *   pin+map:   muser_dma_map() of all of it the first time (the kernel pins
 *              every page), per GiB; and again once pinned (no new pin)
 *   read:      summing the mapped guest memory through the scatter list,
 *              next to the same loop over plain memory of this process,
 *              and muser_dma_read() copies (one system call per MiB)
 *
 * Exit status 0 unless something failed (then 1, with the reason).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <muser.h>

#include "fixture.h"

#define CHUNK	(1ul << MUSER_DMA_CHUNK_SHIFT)
#define IOVA	(1ul << 32)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t sum(const uint64_t *p, size_t len)
{
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < len / 8; i++)
		s += p[i];
	return s;
}

#define DIE(...) do { fprintf(stderr, "dma_bench: " __VA_ARGS__); \
	fprintf(stderr, "\n"); ret = 1; goto out; } while (0)

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 256, size = mib << 20;
	int nsg = size / CHUNK + 1, n, i, rounds = 4, r, ret = 0;
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	struct muser_dev *dev = NULL;
	struct vfio_client c;
	struct muser_sg *sg = calloc(nsg, sizeof(*sg));
	char uuid[UUID_LEN + 1] = "", path[128];
	uint8_t *guest, *plain, *buf;
	uint64_t s1 = 0, s2 = 0, s3 = 0;
	double t, pin, map_again, t_map, t_plain, t_copy;
	const char *step;

	vfio_client_init(&c);
	guest = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	plain = malloc(size);
	buf = malloc(1 << 20);
	if (!sg || guest == MAP_FAILED || !plain || !buf)
		DIE("out of memory for %zu MiB", mib);
	memset(guest, 0x11, size);
	memset(plain, 0x11, size);

	if (mdev_create(uuid))
		DIE("cannot create an mdev");
	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", uuid);
	dev = muser_dev_create_path(path, 0);
	if (!dev || muser_pci_set_ids(dev, 0x4e58, 0x00d1, 0, 0) ||
	    muser_setup_bar(dev, 0, 0x1000, MUSER_BAR_MEM32, lib_bar_zero_cb, NULL) ||
	    muser_realize(dev))
		DIE("device setup: %m");
	if (vfio_client_open(&c, uuid, &step))
		DIE("VMM: %s failed", step);
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	map.vaddr = (uintptr_t)guest;
	map.iova = IOVA;
	map.size = size;
	if (ioctl(c.container, VFIO_IOMMU_MAP_DMA, &map))
		DIE("MAP_DMA: %m");
	/* Room for all of it within the device's budget. */
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s/dma/budget_mb", uuid);
	snprintf((char *)buf, 32, "%zu", mib + 64);
	if (sysfs_write(path, (char *)buf))
		DIE("cannot raise %s", path);

	t = now_s();
	n = muser_dma_map(dev, IOVA, size, MUSER_DMA_READ, sg, nsg);
	pin = now_s() - t;
	if (n < 0)
		DIE("muser_dma_map: %m");
	if (muser_dma_unmap(dev, sg, n))
		DIE("muser_dma_unmap: %m");
	t = now_s();
	n = muser_dma_map(dev, IOVA, size, MUSER_DMA_READ, sg, nsg);
	map_again = now_s() - t;
	if (n < 0)
		DIE("muser_dma_map again: %m");

	/* First pass faults the mapping in; time the rest. */
	for (i = 0; i < n; i++)
		s1 += sum(sg[i].addr, sg[i].len);
	t = now_s();
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++)
			s1 += sum(sg[i].addr, sg[i].len);
	t_map = now_s() - t;
	s2 = sum((uint64_t *)plain, size);
	t = now_s();
	for (r = 0; r < rounds; r++)
		s2 += sum((uint64_t *)plain, size);
	t_plain = now_s() - t;
	t = now_s();
	for (r = 0; r < rounds; r++) {
		size_t off;

		for (off = 0; off < size; off += 1 << 20) {
			if (muser_dma_read(dev, IOVA + off, buf, 1 << 20))
				DIE("muser_dma_read: %m");
			s3 += sum((uint64_t *)buf, 1 << 20);
		}
	}
	t_copy = now_s() - t;
	if (s1 != s2 || s3 * 5 != s2 * 4)
		DIE("checksums differ: mapped %llx plain %llx copied %llx",
		    (unsigned long long)s1, (unsigned long long)s2,
		    (unsigned long long)s3);
	muser_dma_unmap(dev, sg, n);

	printf("dma_bench: %zu MiB of guest memory, %d pieces\n", mib, n);
	printf("dma_bench: pin+map %.3f s per GiB (first map, pins every page); "
	       "map again %.1f ms per GiB (already pinned)\n",
	       pin * 1024 / mib, map_again * 1024e3 / mib);
	printf("dma_bench: read bandwidth: mapped guest memory %.0f MiB/s, "
	       "plain memory %.0f MiB/s (ratio %.2f), muser_dma_read copies %.0f MiB/s\n",
	       mib * rounds / t_map, mib * rounds / t_plain, t_plain / t_map,
	       mib * rounds / t_copy);
out:
	vfio_client_close(&c);
	muser_dev_destroy(dev);
	if (uuid[0])
		mdev_remove(uuid);
	return ret;
}
