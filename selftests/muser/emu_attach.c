// SPDX-License-Identifier: GPL-2.0
/*
 * Attaching and detaching an emulator, by hand (see emu_proto.c): one
 * emulator per device (EBUSY), the device info the VMM gets from the
 * layout, MUSER_DEV_F_RESET, layout validation, and requests replayed
 * (MUSER_REQ_F_REPLAYED) to the next emulator when one goes away.
 */
#define _GNU_SOURCE
#include "emu_raw.h"
#include "attach_cases.h"

TEST_F(raw, attach_detach_ebusy)
{
	struct muser_device_info other;
	int ctl2, ctl3;

	SKIP_IF_SETUP_SKIPPED();
	ctl2 = ctl_open(self->rig.uuid, 0);
	ASSERT_LE(0, ctl2);
	ctl3 = ctl_open(self->rig.uuid, 0);
	ASSERT_LE(0, ctl3);

	/* One emulator per device. */
	EXPECT_EQ(-EBUSY, ctl_attach(ctl2, &self->rig.layout));
	EXPECT_EQ(-EBUSY, ctl_attach(self->rig.ctl, &self->rig.layout));
	/* Only the attached file can detach. */
	EXPECT_EQ(-1, ioctl(ctl2, MUSER_IOC_DETACH));
	EXPECT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH)) TH_LOG("%m");
	EXPECT_EQ(-1, ioctl(self->rig.ctl, MUSER_IOC_DETACH));

	/* Now another may attach, and the first is the one refused. */
	EXPECT_EQ(0, ctl_attach(ctl2, &self->rig.layout));
	EXPECT_EQ(-EBUSY, ctl_attach(self->rig.ctl, &self->rig.layout));
	EXPECT_EQ(-EBUSY, ctl_attach(ctl3, &self->rig.layout));

	/* Closing detaches. */
	close(ctl2);
	EXPECT_EQ(0, ctl_attach(ctl3, &self->rig.layout));
	close(ctl3);

	/*
	 * The VMM has the device open: a different layout is refused, the
	 * same one is accepted.
	 */
	other = self->rig.layout;
	other.regions[VFIO_PCI_BAR0_REGION_INDEX].size = 0x2000;
	ctl2 = ctl_attach(self->rig.ctl, &other);
	EXPECT_TRUE(ctl2 == -EBUSY || ctl2 == -EINVAL)
		TH_LOG("different layout while open: %d", ctl2);
	EXPECT_EQ(0, ctl_attach(self->rig.ctl, &self->rig.layout));

	/* Unknown ioctl. */
	EXPECT_EQ(-1, ioctl(self->rig.ctl, _IO(MUSER_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(raw, device_info_from_layout)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info ri;
	struct vfio_irq_info ii;
	int i;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, ioctl(self->rig.c.device, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_EQ(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
		  info.flags & (VFIO_DEVICE_FLAGS_PCI |
				VFIO_DEVICE_FLAGS_RESET));
	EXPECT_EQ(self->rig.layout.num_regions, info.num_regions);
	EXPECT_EQ(MUSER_NUM_IRQS, info.num_irqs);
	for (i = 0; i < (int)info.num_regions; i++) {
		const struct muser_region *r = &self->rig.layout.regions[i];

		ASSERT_EQ(0, get_region_info(self->rig.c.device, i, &ri));
		EXPECT_EQ(r->size, ri.size) TH_LOG("region %d", i);
		EXPECT_EQ(MUSER_REGION_OFFSET(i), ri.offset);
		if (r->size)
			EXPECT_EQ(r->flags, ri.flags &
				  (VFIO_REGION_INFO_FLAG_READ |
				   VFIO_REGION_INFO_FLAG_WRITE))
				TH_LOG("region %d", i);
		EXPECT_FALSE(ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
	}
	for (i = 0; i < MUSER_NUM_IRQS; i++) {
		const struct muser_irq *q = &self->rig.layout.irqs[i];

		ASSERT_EQ(0, get_irq_info(self->rig.c.device, i, &ii));
		if (i == VFIO_PCI_REQ_IRQ_INDEX) {
			EXPECT_EQ(1, ii.count);
		} else {
			EXPECT_EQ(q->count, ii.count) TH_LOG("irq %d", i);
			if (q->count)
				EXPECT_EQ(q->flags | VFIO_IRQ_INFO_EVENTFD,
					  ii.flags) TH_LOG("irq %d", i);
		}
	}
}

TEST_F(raw, replayed_after_detach)
{
	struct async_access a;
	struct emu_req r, r2;
	int round;

	SKIP_IF_SETUP_SKIPPED();
	for (round = 0; round < 2; round++) {
		test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0x20, 4, false, &r);
		EXPECT_EQ(0, r.hdr.flags & MUSER_REQ_F_REPLAYED);

		if (round == 0) {
			close(self->rig.ctl);
			self->rig.ctl = ctl_open(self->rig.uuid, 0);
			ASSERT_LE(0, self->rig.ctl);
		} else {
			ASSERT_EQ(0, ioctl(self->rig.ctl, MUSER_IOC_DETACH));
			/* A detached file can no longer answer. */
			EXPECT_GT(0, emu_reply(self->rig.ctl, r.hdr.id, 0,
					       "abcd", 4));
		}
		EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
		ASSERT_EQ(0, ctl_attach(self->rig.ctl, &self->rig.layout));

		ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r2, WAIT_MS)) TH_LOG("round %d", round);
		EXPECT_TRUE(r2.hdr.flags & MUSER_REQ_F_REPLAYED);
		EXPECT_EQ(r.hdr.type, r2.hdr.type);
		EXPECT_EQ(r.hdr.region, r2.hdr.region);
		EXPECT_EQ(r.hdr.offset, r2.hdr.offset);
		EXPECT_EQ(r.hdr.len, r2.hdr.len);
		TH_LOG("round %d: id %llu replayed as %llu", round,
		       (unsigned long long)r.hdr.id,
		       (unsigned long long)r2.hdr.id);
		EXPECT_LT(0, emu_reply(self->rig.ctl, r2.hdr.id, 0, "wxyz", 4));
		EXPECT_EQ(4, async_join(&a));
		EXPECT_EQ(0, memcmp(a.buf, "wxyz", 4));
	}

	/* A fresh request after that is not flagged. */
	test_vmm_request(self, &a, VFIO_PCI_BAR0_REGION_INDEX, 0, 1, false, &r);
	EXPECT_EQ(0, r.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_LT(0, emu_reply(self->rig.ctl, r.hdr.id, 0, "q", 1));
	EXPECT_EQ(1, async_join(&a));
}

/* A replayed WRITE carries its data again. */
TEST_F(raw, replayed_write_keeps_data)
{
	struct async_access a;
	struct emu_req r, r2;

	SKIP_IF_SETUP_SKIPPED();
	memcpy(a.buf, "PQRSTUVW", 8);
	test_vmm_request(self, &a, VFIO_PCI_BAR2_REGION_INDEX, 0x40, 8, true, &r);
	ASSERT_EQ(MUSER_REQ_WRITE, r.hdr.type);
	close(self->rig.ctl);
	self->rig.ctl = ctl_open(self->rig.uuid, 0);
	ASSERT_LE(0, self->rig.ctl);
	ASSERT_EQ(0, ctl_attach(self->rig.ctl, &self->rig.layout));
	ASSERT_EQ(1, emu_read_one(self->rig.ctl, &r2, WAIT_MS));
	EXPECT_TRUE(r2.hdr.flags & MUSER_REQ_F_REPLAYED);
	EXPECT_EQ(MUSER_REQ_WRITE, r2.hdr.type);
	EXPECT_EQ(8, r2.hdr.data_len);
	EXPECT_EQ(0, memcmp(r2.data, "PQRSTUVW", 8));
	EXPECT_LT(0, emu_reply(self->rig.ctl, r2.hdr.id, 0, NULL, 0));
	EXPECT_EQ(8, async_join(&a));
}


/* Without MUSER_DEV_F_RESET the VMM is not offered reset. */
TEST(no_reset_flag)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct muser_device_info layout;
	struct emu_req r;
	struct rig rig;

	layout_default(&layout);
	layout.flags = 0;
	RIG_SETUP(&rig, &layout, RIG_NONBLOCK);
	ASSERT_EQ(0, ioctl(rig.c.device, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_TRUE(info.flags & VFIO_DEVICE_FLAGS_PCI);
	EXPECT_FALSE(info.flags & VFIO_DEVICE_FLAGS_RESET);
	EXPECT_EQ(-1, ioctl(rig.c.device, VFIO_DEVICE_RESET));
	EXPECT_EQ(-EAGAIN, emu_read(rig.ctl, &r, 1)) TH_LOG("reset reached the emulator");
	RIG_TEARDOWN(&rig);
}


/* ------------------------------------------------------ layout validation */

ATTACH_FIXTURE(layout, layout_default);

#define LAYOUT_CASE(name, expect_, body) ATTACH_CASE(layout, name, expect_, body)

#define R(i)	(info->regions[VFIO_PCI_##i##_REGION_INDEX])
#define Q(i)	(info->irqs[VFIO_PCI_##i##_IRQ_INDEX])

LAYOUT_CASE(good, 0, (void)info);
LAYOUT_CASE(argsz_bigger, 0, info->argsz = sizeof(*info) + 64);
LAYOUT_CASE(with_vga, 0,
	    info->num_regions = 9; R(VGA).size = 0xc0000;
	    R(VGA).flags = VFIO_REGION_INFO_FLAG_READ |
			   VFIO_REGION_INFO_FLAG_WRITE);
LAYOUT_CASE(config_4096, 0, R(CONFIG).size = 4096);
LAYOUT_CASE(bar_64bit_4g, 0, R(BAR0).size = 1ULL << 32);
LAYOUT_CASE(rom, 0, R(ROM).size = 0x8000;
	    R(ROM).flags = VFIO_REGION_INFO_FLAG_READ);
LAYOUT_CASE(all_irqs, 0, Q(MSI).count = 32; Q(MSIX).count = 2048;
	    Q(MSIX).flags = VFIO_IRQ_INFO_NORESIZE; Q(ERR).count = 1);
LAYOUT_CASE(no_irqs, 0, Q(INTX).count = 0; Q(INTX).flags = 0;
	    Q(MSI).count = 0; Q(MSI).flags = 0);

LAYOUT_CASE(argsz_zero, -EINVAL, info->argsz = 0);
LAYOUT_CASE(argsz_short, -EINVAL, info->argsz = sizeof(*info) - 8);
LAYOUT_CASE(version_0, -EINVAL, info->version = 0);
LAYOUT_CASE(version_older, -EINVAL, info->version = MUSER_API_VERSION - 1);
LAYOUT_CASE(version_next, -EINVAL, info->version = MUSER_API_VERSION + 1);
LAYOUT_CASE(unknown_flag, -EINVAL, info->flags |= 1u << 31);
LAYOUT_CASE(num_regions_7, -EINVAL, info->num_regions = 7);
LAYOUT_CASE(num_regions_10, -EINVAL, info->num_regions = 10);
LAYOUT_CASE(num_irqs_4, -EINVAL, info->num_irqs = 4);
LAYOUT_CASE(num_irqs_6, -EINVAL, info->num_irqs = 6);
LAYOUT_CASE(bar0_not_pow2, -EINVAL, R(BAR0).size = 0x300);
LAYOUT_CASE(bar2_size_3, -EINVAL, R(BAR2).size = 3);
LAYOUT_CASE(bar5_not_pow2, -EINVAL, R(BAR5).size = 0x1001;
	    R(BAR5).flags = VFIO_REGION_INFO_FLAG_READ);
LAYOUT_CASE(rom_not_pow2, -EINVAL, R(ROM).size = 0x1800;
	    R(ROM).flags = VFIO_REGION_INFO_FLAG_READ);
/* A region must fit the 1 TiB offset window vfio-pci gives each index. */
LAYOUT_CASE(bar_beyond_offset_window, -EINVAL, R(BAR0).size = 1ULL << 41);
LAYOUT_CASE(config_0, -EINVAL, R(CONFIG).size = 0);
LAYOUT_CASE(config_128, -EINVAL, R(CONFIG).size = 128);
LAYOUT_CASE(config_512, -EINVAL, R(CONFIG).size = 512);
LAYOUT_CASE(config_8192, -EINVAL, R(CONFIG).size = 8192);
LAYOUT_CASE(vga_bad_size, -EINVAL, info->num_regions = 9;
	    R(VGA).size = 0x1000; R(VGA).flags = VFIO_REGION_INFO_FLAG_READ);
LAYOUT_CASE(vga_beyond_num_regions, -EINVAL, R(VGA).size = 0xc0000;
	    R(VGA).flags = VFIO_REGION_INFO_FLAG_READ);
LAYOUT_CASE(region_flag_mmap, -EINVAL,
	    R(BAR0).flags |= VFIO_REGION_INFO_FLAG_MMAP);
/* Posted writes: BARs only. */
LAYOUT_CASE(posted_bar0, 0, R(BAR0).flags |= MUSER_REGION_F_POSTED_WRITES);
LAYOUT_CASE(posted_bar5, 0, R(BAR5).size = 0x1000;
	    R(BAR5).flags = VFIO_REGION_INFO_FLAG_WRITE |
			    MUSER_REGION_F_POSTED_WRITES);
LAYOUT_CASE(posted_rom, -EINVAL, R(ROM).size = 0x1000;
	    R(ROM).flags = VFIO_REGION_INFO_FLAG_READ |
			   MUSER_REGION_F_POSTED_WRITES);
LAYOUT_CASE(posted_config, -EINVAL,
	    R(CONFIG).flags |= MUSER_REGION_F_POSTED_WRITES);
LAYOUT_CASE(posted_vga, -EINVAL, info->num_regions = 9;
	    R(VGA).size = 0xc0000;
	    R(VGA).flags = VFIO_REGION_INFO_FLAG_WRITE |
			   MUSER_REGION_F_POSTED_WRITES);
LAYOUT_CASE(region_flag_17, -EINVAL, R(BAR0).flags |= 1u << 17);
LAYOUT_CASE(intx_count_2, -EINVAL, Q(INTX).count = 2);
LAYOUT_CASE(msi_count_3, -EINVAL, Q(MSI).count = 3);
LAYOUT_CASE(msi_count_64, -EINVAL, Q(MSI).count = 64);
LAYOUT_CASE(msix_count_4096, -EINVAL, Q(MSIX).count = 4096);
LAYOUT_CASE(err_count_2, -EINVAL, Q(ERR).count = 2);

ATTACH_TEST(layout)

TEST_HARNESS_MAIN
