// SPDX-License-Identifier: GPL-2.0
/*
 * A device without an emulator, by hand (see emu_proto.c): what the VMM
 * gets before the first emulator attaches and after it goes (the
 * no-emulator timeout), an access waiting for the first one; and removing
 * a device, with the control node's life.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "fixture.h"

/*
 * timeout_ms is set to 500 for these: a VMM access while no emulator is
 * attached fails with ETIMEDOUT after about that long. "no emulator
 * attached" errors are expected in the log; WARNs are not.
 */
FIXTURE(noemu) {
	struct rig rig;
};

#define NOEMU_TIMEOUT_MS	500

/* The rig without a control node: nothing attaches until a test does. */
FIXTURE_SETUP(noemu)
{
	struct rig *r = &self->rig;
	const char *step = "?";
	int ret;

	rig_init(r);
	REQUIRE_MUSER();
	r->kmsg = kmsg_start(_metadata->name);
	ASSERT_EQ(0, rig_set_timeout(r, NOEMU_TIMEOUT_MS));
	ret = mdev_create(r->uuid);
	ASSERT_EQ(0, ret) TH_LOG("create mdev: %s", strerror(-ret));
	r->created = true;
	/* Opening the device does not need an emulator. */
	ret = rig_open_vmm(r, &step);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", step, strerror(-ret));
}

FIXTURE_TEARDOWN(noemu)
{
	RIG_TEARDOWN(&self->rig);
}

#define EXPECT_TIMED_OUT(elapsed) do {					\
	EXPECT_LE(NOEMU_TIMEOUT_MS - 100, (elapsed));			\
	EXPECT_GE(NOEMU_TIMEOUT_MS * 10, (elapsed));			\
} while (0)

TEST_F(noemu, timeout_param)
{
	long v;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, param_get("timeout_ms", &v));
	EXPECT_EQ(NOEMU_TIMEOUT_MS, v);
	ASSERT_EQ(0, param_set("timeout_ms", 1234));
	ASSERT_EQ(0, param_get("timeout_ms", &v));
	EXPECT_EQ(1234, v);
	ASSERT_EQ(0, param_set("timeout_ms", NOEMU_TIMEOUT_MS));
}

/* Before any emulator ever attached, even GET_INFO waits, then fails. */
TEST_F(noemu, info_before_first_attach)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info ri;
	struct vfio_irq_info ii;
	int64_t t0;

	SKIP_IF_SETUP_SKIPPED();
	t0 = now_ms();
	EXPECT_EQ(-1, ioctl(self->rig.c.device, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_TIMED_OUT(now_ms() - t0);

	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, get_region_info(self->rig.c.device,
					      VFIO_PCI_CONFIG_REGION_INDEX,
					      &ri));
	EXPECT_TIMED_OUT(now_ms() - t0);

	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, get_irq_info(self->rig.c.device,
					   VFIO_PCI_INTX_IRQ_INDEX, &ii));
	EXPECT_TIMED_OUT(now_ms() - t0);
}

TEST_F(noemu, access_before_first_attach)
{
	uint32_t v;
	int64_t t0;

	SKIP_IF_SETUP_SKIPPED();
	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, region_read(&self->rig.c,
					  VFIO_PCI_CONFIG_REGION_INDEX, 0,
					  &v, 4));
	EXPECT_TIMED_OUT(now_ms() - t0);
	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, region_write(&self->rig.c,
					   VFIO_PCI_CONFIG_REGION_INDEX, 4,
					   &v, 2));
	EXPECT_TIMED_OUT(now_ms() - t0);
	t0 = now_ms();
	EXPECT_EQ(-1, ioctl(self->rig.c.device, VFIO_DEVICE_RESET));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_TIMED_OUT(now_ms() - t0);
}

/* Attach, work, detach: accesses time out again; reattach: they work. */
TEST_F(noemu, emulator_comes_and_goes)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct muser_device_info layout;
	struct emu_thread emu;
	uint8_t b[4];
	int ctl, round;
	int64_t t0;

	SKIP_IF_SETUP_SKIPPED();
	layout_default(&layout);
	for (round = 0; round < 2; round++) {
		ctl = ctl_open(self->rig.uuid, 0);
		ASSERT_LE(0, ctl);
		ASSERT_EQ(0, ctl_attach(ctl, &layout));
		ASSERT_EQ(0, emu_thread_start(&emu, ctl));

		EXPECT_EQ(0, ioctl(self->rig.c.device, VFIO_DEVICE_GET_INFO,
				   &info));
		EXPECT_EQ(layout.num_regions, info.num_regions);
		EXPECT_EQ(4, region_read(&self->rig.c, VFIO_PCI_BAR0_REGION_INDEX,
					 0x30, b, 4));
		EXPECT_EQ(emu_pattern(VFIO_PCI_BAR0_REGION_INDEX, 0x33), b[3]);
		EXPECT_EQ(4, region_write(&self->rig.c,
					  VFIO_PCI_BAR0_REGION_INDEX, 0x30,
					  b, 4));

		emu_thread_stop(&emu);
		EXPECT_EQ(0, emu.errors);
		close(ctl);

		/* Gone: the layout stays, accesses time out. */
		EXPECT_EQ(0, ioctl(self->rig.c.device, VFIO_DEVICE_GET_INFO,
				   &info));
		t0 = now_ms();
		EXPECT_EQ(-ETIMEDOUT, region_read(&self->rig.c,
						  VFIO_PCI_BAR0_REGION_INDEX,
						  0, b, 4));
		EXPECT_TIMED_OUT(now_ms() - t0);
	}
}

/* An access waiting for the first emulator succeeds once it attaches. */
TEST_F(noemu, attach_while_waiting)
{
	struct muser_device_info layout;
	struct emu_thread emu;
	struct async_access a;
	int ctl;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, param_set("timeout_ms", 5000));
	ASSERT_EQ(0, async_start(&a, &self->rig.c, VFIO_PCI_BAR2_REGION_INDEX,
				 0x20, 2, false));
	sleep_ms(300);
	EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	layout_default(&layout);
	ctl = ctl_open(self->rig.uuid, 0);
	ASSERT_LE(0, ctl);
	ASSERT_EQ(0, ctl_attach(ctl, &layout));
	ASSERT_EQ(0, emu_thread_start(&emu, ctl));
	EXPECT_EQ(2, async_join(&a));
	EXPECT_EQ(emu_pattern(VFIO_PCI_BAR2_REGION_INDEX, 0x21), a.buf[1]);
	EXPECT_GT(5000, a.elapsed_ms);
	emu_thread_stop(&emu);
	close(ctl);
}

/* Removing a device nobody has open is immediate, emulator or not. */
TEST(remove_with_emulator_attached)
{
	struct muser_device_info layout;
	char uuid[UUID_LEN + 1], path[256];
	struct pollfd pfd;
	int64_t t0;
	int ctl, kmsg, ret;

	REQUIRE_MUSER();
	kmsg = kmsg_start(_metadata->name);
	ret = mdev_create(uuid);
	ASSERT_EQ(0, ret) TH_LOG("create: %s", strerror(-ret));
	ctl = ctl_open(uuid, 0);
	ASSERT_LE(0, ctl);
	layout_default(&layout);
	ASSERT_EQ(0, ctl_attach(ctl, &layout));

	t0 = now_ms();
	EXPECT_EQ(0, mdev_remove(uuid));
	EXPECT_GT(3000, now_ms() - t0);
	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", uuid);
	EXPECT_EQ(0, wait_path(path, false, 5000));
	pfd.fd = ctl;
	pfd.events = POLLIN;
	EXPECT_EQ(1, poll(&pfd, 1, 1000));
	EXPECT_TRUE(pfd.revents & POLLHUP);
	EXPECT_EQ(-ENODEV, emu_read(ctl, NULL, 0));
	EXPECT_NE(0, ioctl(ctl, MUSER_IOC_DETACH));
	close(ctl);
	EXPECT_EQ(0, kmsg_check(kmsg, _metadata->name));
}

/* The control node of a removed device can no longer be opened. */
TEST(control_node_lifecycle)
{
	char uuid[UUID_LEN + 1], path[256];
	struct stat st;
	int kmsg, ret, ctl;

	REQUIRE_MUSER();
	kmsg = kmsg_start(_metadata->name);
	ret = mdev_create(uuid);
	ASSERT_EQ(0, ret) TH_LOG("create: %s", strerror(-ret));
	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", uuid);
	ASSERT_EQ(0, wait_path(path, true, 5000));
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	ctl = ctl_open(uuid, 0);
	EXPECT_LE(0, ctl);
	if (ctl >= 0)
		close(ctl);
	EXPECT_EQ(0, mdev_remove(uuid));
	EXPECT_EQ(0, wait_path(path, false, 5000));
	EXPECT_GT(0, ctl_open(uuid, 0));
	EXPECT_EQ(0, kmsg_check(kmsg, _metadata->name));
}

TEST_HARNESS_MAIN
