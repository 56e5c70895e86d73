// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupts from the emulator, by hand (see emu_proto.c): triggering
 * INTx and MSI through MUSER_IOC_TRIGGER_IRQ, masking, what may not
 * trigger; and removing a device the VMM holds open (the REQ irq).
 */
#define _GNU_SOURCE
#include "emu_raw.h"

TEST_F(raw, irq_trigger)
{
	int intx, msi;

	SKIP_IF_SETUP_SKIPPED();
	intx = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	msi = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, intx);
	ASSERT_LE(0, msi);

	/* The VMM has not set an eventfd yet. */
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->rig.ctl, VFIO_PCI_INTX_IRQ_INDEX,
					   0, 1));
	/* Indexes and ranges the layout does not have. */
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->rig.ctl, VFIO_PCI_INTX_IRQ_INDEX,
					   1, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->rig.ctl, VFIO_PCI_INTX_IRQ_INDEX,
					   0, 2));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->rig.ctl, VFIO_PCI_MSIX_IRQ_INDEX,
					   0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->rig.ctl, VFIO_PCI_ERR_IRQ_INDEX,
					   0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->rig.ctl, MUSER_NUM_IRQS, 0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->rig.ctl, 0xffffffff, 0, 1));
	EXPECT_EQ(-EINVAL, emu_trigger_irq(self->rig.ctl, VFIO_PCI_MSI_IRQ_INDEX,
					   0xffffffff, 2));
	{
		struct muser_irq_trigger t = {
			.argsz = 8, .index = VFIO_PCI_MSI_IRQ_INDEX,
			.count = 1,
		};

		EXPECT_EQ(-1, ioctl(self->rig.ctl, MUSER_IOC_TRIGGER_IRQ, &t));
		EXPECT_EQ(EINVAL, errno);
	}

	/* INTx: fires, is automasked, fires again on unmask. */
	ASSERT_EQ(0, set_irq_eventfd(self->rig.c.device, VFIO_PCI_INTX_IRQ_INDEX,
				     0, intx));
	EXPECT_EQ(0, emu_trigger_irq(self->rig.ctl, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
	EXPECT_EQ(1, eventfd_wait(intx, 1000));
	EXPECT_EQ(0, emu_trigger_irq(self->rig.ctl, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
	EXPECT_EQ(0, eventfd_wait(intx, 100)) TH_LOG("INTx not automasked");
	EXPECT_EQ(0, vfio_set_irqs(self->rig.c.device, VFIO_IRQ_SET_DATA_NONE |
				          VFIO_IRQ_SET_ACTION_UNMASK,
				          VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL));
	EXPECT_EQ(1, eventfd_wait(intx, 1000)) TH_LOG("pending INTx lost");
	/* Explicit mask: pending until unmask. */
	EXPECT_EQ(0, vfio_set_irqs(self->rig.c.device, VFIO_IRQ_SET_DATA_NONE |
				          VFIO_IRQ_SET_ACTION_UNMASK,
				          VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL));
	EXPECT_EQ(0, vfio_set_irqs(self->rig.c.device, VFIO_IRQ_SET_DATA_NONE |
				          VFIO_IRQ_SET_ACTION_MASK,
				          VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL));
	EXPECT_EQ(0, emu_trigger_irq(self->rig.ctl, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
	EXPECT_EQ(0, eventfd_wait(intx, 100));
	EXPECT_EQ(0, vfio_set_irqs(self->rig.c.device, VFIO_IRQ_SET_DATA_NONE |
				          VFIO_IRQ_SET_ACTION_UNMASK,
				          VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL));
	EXPECT_EQ(1, eventfd_wait(intx, 1000));

	/* MSI vector 0. */
	ASSERT_EQ(0, set_irq_eventfd(self->rig.c.device, VFIO_PCI_MSI_IRQ_INDEX,
				     0, msi));
	EXPECT_EQ(0, emu_trigger_irq(self->rig.ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
	EXPECT_EQ(1, eventfd_wait(msi, 1000));
	EXPECT_EQ(0, emu_trigger_irq(self->rig.ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
	EXPECT_EQ(0, emu_trigger_irq(self->rig.ctl, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
	EXPECT_EQ(2, eventfd_wait(msi, 1000));
	/* Torn down by the VMM: ENOENT again. */
	EXPECT_EQ(0, set_irq_eventfd(self->rig.c.device, VFIO_PCI_MSI_IRQ_INDEX,
				     0, -1));
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->rig.ctl, VFIO_PCI_MSI_IRQ_INDEX,
					   0, 1));

	/* A file that is not the attached emulator cannot trigger. */
	{
		int other = ctl_open(self->rig.uuid, 0);

		ASSERT_LE(0, other);
		EXPECT_NE(0, emu_trigger_irq(other, VFIO_PCI_INTX_IRQ_INDEX, 0,
					     1));
		close(other);
	}

	/* The VMM closing the device releases its eventfds. */
	vfio_client_close(&self->rig.c);
	EXPECT_EQ(-ENOENT, emu_trigger_irq(self->rig.ctl, VFIO_PCI_INTX_IRQ_INDEX,
					   0, 1));
	close(intx);
	close(msi);
}

/* ------------------------------------------------------------ removal */

struct remover {
	pthread_t thread;
	const char *uuid;
	int ret;
	volatile int done;
};

static void *remover_fn(void *p)
{
	struct remover *r = p;

	r->ret = mdev_remove(r->uuid);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Removing a device the VMM holds open: the kernel signals the REQ eventfd,
 * the VMM lets go, the removal completes and the control node disappears.
 * The emulator stays attached throughout, as a real one would.
 */
TEST_F_TIMEOUT(raw, remove_while_open_req_irq, 60)
{
	char path[256];
	struct remover rm = { .uuid = self->rig.uuid };
	struct emu_thread emu;
	struct pollfd pfd;
	int efd;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, emu_thread_start(&emu, self->rig.ctl));
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, set_irq_eventfd(self->rig.c.device, VFIO_PCI_REQ_IRQ_INDEX,
				     0, efd));
	/* The device works before. */
	EXPECT_EQ(0, ioctl(self->rig.c.device, VFIO_DEVICE_RESET));

	ASSERT_EQ(0, pthread_create(&rm.thread, NULL, remover_fn, &rm));
	EXPECT_LT(0, eventfd_wait(efd, 15000)) TH_LOG("no REQ irq");
	/* Blocked until the VMM lets go; the emulator still serves it. */
	EXPECT_FALSE(__atomic_load_n(&rm.done, __ATOMIC_ACQUIRE));
	EXPECT_EQ(0, ioctl(self->rig.c.device, VFIO_DEVICE_RESET));

	vfio_client_close(&self->rig.c);
	close(efd);
	ASSERT_TRUE(wait_flag(&rm.done, 20000)) TH_LOG("remove still blocked");
	pthread_join(rm.thread, NULL);
	EXPECT_EQ(0, rm.ret);
	self->rig.created = false;

	snprintf(path, sizeof(path), MUSER_DEV_DIR "/%s", self->rig.uuid);
	EXPECT_EQ(0, wait_path(path, false, 5000)) TH_LOG("%s still there", path);
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/%s", self->rig.uuid);
	EXPECT_EQ(0, wait_path(path, false, 5000)) TH_LOG("%s still there", path);

	/* The emulator is told: hangup, and it can no longer attach. */
	emu_thread_stop(&emu);
	EXPECT_EQ(0, emu.errors);
	pfd.fd = self->rig.ctl;
	pfd.events = POLLIN;
	EXPECT_EQ(1, poll(&pfd, 1, 1000));
	EXPECT_TRUE(pfd.revents & (POLLHUP | POLLERR));
	EXPECT_EQ(-ENODEV, emu_read(self->rig.ctl, NULL, 0));
	EXPECT_NE(0, ctl_attach(self->rig.ctl, &self->rig.layout));
}

TEST_HARNESS_MAIN
