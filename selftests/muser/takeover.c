// SPDX-License-Identifier: GPL-2.0
/*
 * Upgrading an emulator in place (MUSER_IOC_TAKEOVER), on the raw
 * protocol: the running emulator finishes the requests it has read, the
 * new one gets everything after; the takeover returns once the old one has
 * answered, or after timeout_ms with its requests replayed to the new one.
 * DMA holds belong to the file that took them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common.h"
#include "harness.h"

#define BAR0	VFIO_PCI_BAR0_REGION_INDEX
#define CHUNK	(1ul << MUSER_DMA_CHUNK_SHIFT)

struct takeover_arg {
	pthread_t thread;
	int ctl;
	const struct muser_device_info *info;
	int ret;
	volatile int done;
};

static void *takeover_fn(void *p)
{
	struct takeover_arg *t = p;

	t->ret = ioctl(t->ctl, MUSER_IOC_TAKEOVER, t->info) ? -errno : 0;
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Read requests until one that needs an answer arrives. */
static int next_request(int ctl, struct emu_req *r, int ms)
{
	static struct emu_req reqs[8];
	int64_t end = now_ms() + ms;
	int n, i;

	while (now_ms() < end) {
		n = emu_read_timeout(ctl, reqs, 8, 50);
		if (n < 0)
			return n;
		for (i = 0; i < n && i < 8; i++) {
			if (reqs[i].hdr.id) {
				*r = reqs[i];
				return 1;
			}
		}
	}
	return 0;
}

FIXTURE(up) {
	char uuid[UUID_LEN + 1];
	bool created;
	int kmsg;
	int old_ctl, new_ctl;
	long saved_timeout;
	struct muser_device_info layout;
	struct vfio_client c;
};

FIXTURE_SETUP(up)
{
	const char *step = "?";
	int ret;

	self->kmsg = -1;
	self->old_ctl = self->new_ctl = -1;
	self->saved_timeout = -1;
	vfio_client_init(&self->c);
	REQUIRE_MUSER();
	self->kmsg = kmsg_start(_metadata->name);
	ret = mdev_create(self->uuid);
	ASSERT_EQ(0, ret) TH_LOG("create mdev: %s", strerror(-ret));
	self->created = true;
	self->old_ctl = ctl_open(self->uuid, O_NONBLOCK);
	self->new_ctl = ctl_open(self->uuid, O_NONBLOCK);
	ASSERT_LE(0, self->old_ctl);
	ASSERT_LE(0, self->new_ctl);
	layout_default(&self->layout);
	ASSERT_EQ(0, ctl_attach(self->old_ctl, &self->layout));
	ret = vfio_client_open(&self->c, self->uuid, &step);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", step, strerror(-ret));
}

FIXTURE_TEARDOWN(up)
{
	vfio_client_close(&self->c);
	if (self->old_ctl >= 0)
		close(self->old_ctl);
	if (self->new_ctl >= 0)
		close(self->new_ctl);
	if (self->created)
		EXPECT_EQ(0, mdev_remove(self->uuid));
	if (self->saved_timeout >= 0)
		EXPECT_EQ(0, param_set("timeout_ms", self->saved_timeout));
	if (self->kmsg >= 0)
		EXPECT_EQ(0, kmsg_check(self->kmsg, _metadata->name))
			TH_LOG("the kernel logged a warning, see above");
}

TEST_F(up, old_finishes_new_gets_the_rest)
{
	struct takeover_arg t = { .ctl = self->new_ctl, .info = &self->layout };
	struct async_access a1, a2;
	struct emu_req r1, r2;
	uint8_t v = 0x5a;

	/* The old emulator has read a request and is working on it. */
	ASSERT_EQ(0, async_start(&a1, &self->c, BAR0, 0x10, 1, false));
	ASSERT_EQ(1, next_request(self->old_ctl, &r1, 3000));

	ASSERT_EQ(0, pthread_create(&t.thread, NULL, takeover_fn, &t));
	sleep_ms(200);
	EXPECT_FALSE(__atomic_load_n(&t.done, __ATOMIC_ACQUIRE))
		TH_LOG("the takeover did not wait for the old emulator");

	/* A new access goes to the new emulator only. */
	ASSERT_EQ(0, async_start(&a2, &self->c, BAR0, 0x20, 1, false));
	ASSERT_EQ(1, next_request(self->new_ctl, &r2, 3000));
	EXPECT_EQ(0x20, r2.hdr.offset);
	EXPECT_EQ(0, r2.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_EQ(-ENOTCONN, emu_read(self->old_ctl, NULL, 0));

	/* The old one answers what it held; only then the takeover returns. */
	EXPECT_LT(0, emu_reply(self->old_ctl, r1.hdr.id, 0, &v, 1));
	ASSERT_TRUE(wait_flag(&t.done, 3000));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, t.ret);
	EXPECT_EQ(1, async_join(&a1));
	EXPECT_EQ(0x5a, a1.buf[0]);
	/* It cannot answer the new one's requests. */
	EXPECT_EQ(-ENOTCONN, emu_reply(self->old_ctl, r2.hdr.id, 0, &v, 1));
	EXPECT_LT(0, emu_reply(self->new_ctl, r2.hdr.id, 0, &v, 1));
	EXPECT_EQ(1, async_join(&a2));
}

TEST_F(up, old_that_never_answers_is_replayed)
{
	struct takeover_arg t = { .ctl = self->new_ctl, .info = &self->layout };
	struct async_access a;
	struct emu_req r, again;
	uint8_t v = 7;
	int64_t start;

	/* The VMM waits longer than the takeover does. */
	ASSERT_EQ(0, param_get("timeout_ms", &self->saved_timeout));
	ASSERT_EQ(0, param_set("timeout_ms", 10000));
	ASSERT_EQ(0, async_start(&a, &self->c, BAR0, 0x30, 1, false));
	ASSERT_EQ(1, next_request(self->old_ctl, &r, 3000));
	ASSERT_EQ(0, param_set("timeout_ms", 2000));

	start = now_ms();
	ASSERT_EQ(0, pthread_create(&t.thread, NULL, takeover_fn, &t));
	ASSERT_TRUE(wait_flag(&t.done, 10000));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, t.ret);
	EXPECT_LE(1800, now_ms() - start) TH_LOG("gave up before timeout_ms");
	/* The new emulator gets it, replayed. */
	ASSERT_EQ(1, next_request(self->new_ctl, &again, 3000));
	EXPECT_EQ(r.hdr.id, again.hdr.id);
	EXPECT_TRUE(again.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_EQ(-ENOTCONN, emu_reply(self->old_ctl, r.hdr.id, 0, &v, 1));
	EXPECT_LT(0, emu_reply(self->new_ctl, again.hdr.id, 0, &v, 1));
	EXPECT_EQ(1, async_join(&a));
}

TEST_F(up, needs_the_same_layout)
{
	struct muser_device_info other = self->layout;

	other.regions[VFIO_PCI_BAR2_REGION_INDEX].size *= 2;
	EXPECT_EQ(-1, ioctl(self->new_ctl, MUSER_IOC_TAKEOVER, &other));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, ioctl(self->old_ctl, MUSER_IOC_TAKEOVER, &self->layout));
	EXPECT_EQ(EBUSY, errno);
	/* Nobody running: a takeover is an attach. */
	ASSERT_EQ(0, ioctl(self->old_ctl, MUSER_IOC_DETACH));
	EXPECT_EQ(0, ioctl(self->new_ctl, MUSER_IOC_TAKEOVER, &self->layout));
}

TEST_F(up, holds_belong_to_their_file)
{
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	struct muser_dma_map m = { .argsz = sizeof(m), .iova = 1ul << 30 };
	uint8_t *mem;

	mem = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	map.vaddr = (uintptr_t)mem;
	map.iova = 1ul << 30;
	map.size = 2 * CHUNK;
	ASSERT_EQ(0, ioctl(self->c.container, VFIO_IOMMU_MAP_DMA, &map));

	m.size = CHUNK;
	ASSERT_EQ(0, ioctl(self->old_ctl, MUSER_IOC_DMA_MAP, &m));
	ASSERT_EQ(0, ioctl(self->new_ctl, MUSER_IOC_TAKEOVER, &self->layout));
	m.size = 2 * CHUNK;
	ASSERT_EQ(0, ioctl(self->new_ctl, MUSER_IOC_DMA_MAP, &m));
	EXPECT_EQ(2 * CHUNK / 4096, dma_stat(self->uuid, "mapped_pages"));
	/* The old one cannot pin any more, nor release the new one's holds. */
	EXPECT_EQ(-1, ioctl(self->old_ctl, MUSER_IOC_DMA_MAP, &m));
	EXPECT_EQ(ENOTCONN, errno);
	/* The old one exits: its hold goes, the new one's stay. */
	close(self->old_ctl);
	self->old_ctl = -1;
	EXPECT_EQ(2 * CHUNK / 4096, dma_stat(self->uuid, "mapped_pages"));
	ASSERT_EQ(0, ioctl(self->new_ctl, MUSER_IOC_DMA_RELEASE, &m));
	EXPECT_EQ(0, dma_stat(self->uuid, "mapped_pages"));
	EXPECT_EQ(-1, ioctl(self->new_ctl, MUSER_IOC_DMA_RELEASE, &m));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(2 * CHUNK / 4096, dma_stat(self->uuid, "pinned_pages"));
}

TEST_HARNESS_MAIN
