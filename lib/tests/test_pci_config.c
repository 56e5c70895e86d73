// SPDX-License-Identifier: BSD-3-Clause
/*
 * Config space emulation: read-only IDs, command and status registers, BAR
 * sizing for every BAR type, ROM, interrupt line/pin, accesses of any
 * length and alignment, the device config callback, reset.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "../private.h"
#include "test.h"

int test_failures;

static uint32_t cfg_read(struct muser_dev *dev, unsigned int off, size_t n)
{
	uint8_t b[4] = { 0 };

	CHECK_EQ(muser_pcicfg_access(dev, b, n, off, false), 0);
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static void cfg_write(struct muser_dev *dev, unsigned int off, size_t n,
		      uint32_t v)
{
	uint8_t b[4] = { v, v >> 8, v >> 16, v >> 24 };

	CHECK_EQ(muser_pcicfg_access(dev, b, n, off, true), 0);
}

#define rd32(d, o)	cfg_read(d, o, 4)
#define rd16(d, o)	cfg_read(d, o, 2)
#define rd8(d, o)	cfg_read(d, o, 1)
#define wr32(d, o, v)	cfg_write(d, o, 4, v)
#define wr16(d, o, v)	cfg_write(d, o, 2, v)
#define wr8(d, o, v)	cfg_write(d, o, 1, v)

/* A device with IDs, class, revision, pin A; BARs added by the caller. */
static struct muser_dev *new_dev(void)
{
	struct muser_dev *dev = muser_dev_alloc(-1, NULL, NULL, "test");

	CHECK(dev != NULL);
	CHECK_EQ(muser_pci_set_ids(dev, 0x494f, 0x0dc8, 0x1af4, 0x1100), 0);
	CHECK_EQ(muser_pci_set_class(dev, 0xff0102), 0);
	CHECK_EQ(muser_pci_set_revision(dev, 0x07), 0);
	CHECK_EQ(muser_pci_set_irq_pin(dev, 1), 0);
	return dev;
}

static struct muser_dev *new_dev_init(void)
{
	struct muser_dev *dev = new_dev();

	muser_pcicfg_init(dev);
	return dev;
}

static void test_ids_read_only(void)
{
	struct muser_dev *dev = new_dev_init();

	CHECK_EQ(rd32(dev, PCI_VENDOR_ID), 0x0dc8494f);
	CHECK_EQ(rd32(dev, PCI_CLASS_REVISION), 0xff010207);
	CHECK_EQ(rd32(dev, PCI_SUBSYSTEM_VENDOR_ID), 0x11001af4);
	wr32(dev, PCI_VENDOR_ID, 0xffffffff);
	wr32(dev, PCI_CLASS_REVISION, 0);
	wr16(dev, PCI_SUBSYSTEM_ID, 0x1234);
	wr8(dev, PCI_HEADER_TYPE, 0x80);
	CHECK_EQ(rd16(dev, PCI_VENDOR_ID), 0x494f);
	CHECK_EQ(rd16(dev, PCI_DEVICE_ID), 0x0dc8);
	CHECK_EQ(rd32(dev, PCI_CLASS_REVISION), 0xff010207);
	CHECK_EQ(rd32(dev, PCI_SUBSYSTEM_VENDOR_ID), 0x11001af4);
	CHECK_EQ(rd8(dev, PCI_HEADER_TYPE), PCI_HEADER_TYPE_NORMAL);
	CHECK_EQ(rd8(dev, PCI_BIST), 0);
	CHECK_EQ(rd8(dev, PCI_CAPABILITY_LIST), 0);
	CHECK_EQ(rd16(dev, PCI_STATUS) & PCI_STATUS_CAP_LIST, 0);
	muser_dev_destroy(dev);
}

static void test_command(void)
{
	struct muser_dev *dev = new_dev_init();

	CHECK_EQ(rd16(dev, PCI_COMMAND), 0);
	wr16(dev, PCI_COMMAND, 0xffff);
	CHECK_EQ(rd16(dev, PCI_COMMAND), 0x0547);
	wr16(dev, PCI_COMMAND, 0);
	CHECK_EQ(rd16(dev, PCI_COMMAND), 0);
	/* byte writes touch only their half */
	wr8(dev, PCI_COMMAND + 1, 0xff);
	CHECK_EQ(rd16(dev, PCI_COMMAND), PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	wr8(dev, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			      PCI_COMMAND_SPECIAL);
	CHECK_EQ(rd16(dev, PCI_COMMAND), 0x0506);
	muser_dev_destroy(dev);
}

static void test_status_rw1c(void)
{
	struct muser_dev *dev = new_dev_init();

	/* The device latched every error bit, plus RO bits. */
	dev->pcicfg.cfg[PCI_STATUS] = 0x10 | PCI_STATUS_INTERRUPT;
	dev->pcicfg.cfg[PCI_STATUS + 1] = 0xf9 | 0x06;
	wr16(dev, PCI_STATUS, PCI_STATUS_PARITY);
	CHECK_EQ(rd16(dev, PCI_STATUS), 0xfe18);
	/* a dword write of command with status 0 clears nothing */
	wr32(dev, PCI_COMMAND, PCI_COMMAND_MEMORY);
	CHECK_EQ(rd32(dev, PCI_COMMAND), 0xfe180002);
	/* writing all ones clears the error bits only */
	wr32(dev, PCI_COMMAND, 0xffff0002);
	CHECK_EQ(rd32(dev, PCI_COMMAND), 0x06180002);
	muser_dev_destroy(dev);
}

static void test_bar_mem32(void)
{
	struct muser_dev *dev = new_dev();

	CHECK_EQ(muser_setup_bar(dev, 0, 0x1000, MUSER_BAR_MEM32, NULL, NULL), 0);
	CHECK_EQ(muser_setup_bar(dev, 1, 1ull << 31,
				 MUSER_BAR_MEM32 | MUSER_BAR_PREFETCH, NULL, NULL), 0);
	CHECK_EQ(muser_setup_bar(dev, 2, 16, MUSER_BAR_MEM32, NULL, NULL), 0);
	muser_pcicfg_init(dev);

	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_0), 0);
	wr32(dev, PCI_BASE_ADDRESS_0, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_0), 0xfffff000);
	wr32(dev, PCI_BASE_ADDRESS_0, 0xfebf1234);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_0), 0xfebf1000);

	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_1), PCI_BASE_ADDRESS_MEM_PREFETCH);
	wr32(dev, PCI_BASE_ADDRESS_1, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_1), 0x80000008);

	wr32(dev, PCI_BASE_ADDRESS_2, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_2), 0xfffffff0);

	/* unimplemented BARs read 0 and ignore writes */
	wr32(dev, PCI_BASE_ADDRESS_3, 0xffffffff);
	wr32(dev, PCI_BASE_ADDRESS_5, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_3), 0);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_5), 0);
	muser_dev_destroy(dev);
}

static void test_bar_mem64(void)
{
	struct muser_dev *dev = new_dev();

	CHECK_EQ(muser_setup_bar(dev, 0, 0x100000,
				 MUSER_BAR_MEM64 | MUSER_BAR_PREFETCH, NULL, NULL), 0);
	CHECK_EQ(muser_setup_bar(dev, 4, 1ull << 33, MUSER_BAR_MEM64, NULL, NULL), 0);
	muser_pcicfg_init(dev);

	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_0), 0x0c);
	wr32(dev, PCI_BASE_ADDRESS_0, 0xffffffff);
	wr32(dev, PCI_BASE_ADDRESS_1, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_0), 0xfff0000c);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_1), 0xffffffff);
	wr32(dev, PCI_BASE_ADDRESS_0, 0xe0000000);
	wr32(dev, PCI_BASE_ADDRESS_1, 0x00000001);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_0), 0xe000000c);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_1), 1);

	/* 8 GiB: the low dword holds only flags, the upper one sizes */
	wr32(dev, PCI_BASE_ADDRESS_4, 0xffffffff);
	wr32(dev, PCI_BASE_ADDRESS_5, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_4), 0x04);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_5), 0xfffffffe);
	muser_dev_destroy(dev);
}

static void test_bar_io(void)
{
	struct muser_dev *dev = new_dev();

	CHECK_EQ(muser_setup_bar(dev, 3, 0x100, MUSER_BAR_IO, NULL, NULL), 0);
	CHECK_EQ(muser_setup_bar(dev, 5, 4, MUSER_BAR_IO, NULL, NULL), 0);
	muser_pcicfg_init(dev);

	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_3), 1);
	wr32(dev, PCI_BASE_ADDRESS_3, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_3), 0xffffff01);
	wr32(dev, PCI_BASE_ADDRESS_3, 0xc0ff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_3), 0xc001);
	wr32(dev, PCI_BASE_ADDRESS_5, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_5), 0xfffffffd);
	muser_dev_destroy(dev);
}

static void test_bar_bytewise(void)
{
	struct muser_dev *dev = new_dev();
	unsigned int i;

	CHECK_EQ(muser_setup_bar(dev, 0, 0x1000, MUSER_BAR_MEM32, NULL, NULL), 0);
	muser_pcicfg_init(dev);
	for (i = 0; i < 4; i++)
		wr8(dev, PCI_BASE_ADDRESS_0 + i, 0xff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_0), 0xfffff000);
	CHECK_EQ(rd8(dev, PCI_BASE_ADDRESS_0 + 1), 0xf0);
	wr16(dev, PCI_BASE_ADDRESS_0 + 2, 0xfe00);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_0), 0xfe00f000);
	muser_dev_destroy(dev);
}

static void test_rom_and_interrupt(void)
{
	struct muser_dev *dev = new_dev_init();

	/* QEMU probes the ROM BAR with dword writes */
	wr32(dev, PCI_ROM_ADDRESS, 0xfffff800);
	CHECK_EQ(rd32(dev, PCI_ROM_ADDRESS), 0);
	wr32(dev, PCI_ROM_ADDRESS, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_ROM_ADDRESS), 0);

	CHECK_EQ(rd32(dev, PCI_INTERRUPT_LINE), 0x0100);
	wr32(dev, PCI_INTERRUPT_LINE, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_INTERRUPT_LINE), 0x01ff);
	wr8(dev, PCI_INTERRUPT_LINE, 11);
	CHECK_EQ(rd8(dev, PCI_INTERRUPT_LINE), 11);
	CHECK_EQ(rd8(dev, PCI_INTERRUPT_PIN), 1);

	wr16(dev, PCI_CACHE_LINE_SIZE, 0x4010);
	CHECK_EQ(rd16(dev, PCI_CACHE_LINE_SIZE), 0x4010);
	muser_dev_destroy(dev);
}

static void test_full_and_unaligned(void)
{
	struct muser_dev *dev = new_dev();
	uint8_t all[MUSER_CONFIG_SIZE], b[8];
	unsigned int i;

	CHECK_EQ(muser_setup_bar(dev, 2, 0x100, MUSER_BAR_MEM32, NULL, NULL), 0);
	muser_pcicfg_init(dev);

	memset(all, 0xaa, sizeof(all));
	CHECK_EQ(muser_pcicfg_access(dev, all, sizeof(all), 0, false), 0);
	CHECK_EQ(all[0], 0x4f);
	CHECK_EQ(all[1], 0x49);
	CHECK_EQ(all[2], 0xc8);
	CHECK_EQ(all[3], 0x0d);
	CHECK_EQ(all[0x0b], 0xff);
	CHECK_EQ(all[0x2c], 0xf4);
	CHECK_EQ(all[0x3d], 1);
	for (i = MUSER_STD_HEADER_SIZE; i < sizeof(all); i++)
		if (all[i])
			CHECK_EQ(all[i], 0);

	/* dword read at an odd offset */
	CHECK_EQ(cfg_read(dev, 1, 4), 0x000dc849);
	CHECK_EQ(cfg_read(dev, 0x3b, 3), 0x010000);
	/* 3-byte write over reserved, line (RW) and pin (RO) */
	cfg_write(dev, 0x3b, 3, 0xffffff);
	CHECK_EQ(cfg_read(dev, 0x3b, 3), 0x01ff00);
	/* an 8-byte write across command, status, revision, class */
	memset(b, 0xff, sizeof(b));
	CHECK_EQ(muser_pcicfg_access(dev, b, sizeof(b), PCI_COMMAND, true), 0);
	CHECK_EQ(rd32(dev, PCI_COMMAND), 0x0547);
	CHECK_EQ(rd32(dev, PCI_CLASS_REVISION), 0xff010207);
	/* the last byte, and out of range */
	CHECK_EQ(cfg_read(dev, 0xff, 1), 0);
	CHECK_ERR(muser_pcicfg_access(dev, b, 8, 0xfc, false), EINVAL);
	CHECK_ERR(muser_pcicfg_access(dev, b, 1, 0x100, false), EINVAL);
	muser_dev_destroy(dev);
}

struct cfg_log {
	unsigned int calls;
	uint64_t offset;
	size_t count;
	bool is_write;
	uint8_t data[MUSER_CONFIG_SIZE];
	int fail_errno;
	ssize_t ret_override;
};

static ssize_t cfg_cb(struct muser_dev *dev, void *priv, void *buf,
		      size_t count, uint64_t offset, bool is_write)
{
	struct cfg_log *l = priv;
	size_t i;

	(void)dev;
	l->calls++;
	l->offset = offset;
	l->count = count;
	l->is_write = is_write;
	if (l->fail_errno) {
		errno = l->fail_errno;
		return -1;
	}
	if (l->ret_override)
		return l->ret_override;
	if (is_write)
		memcpy(l->data, buf, count);
	else
		for (i = 0; i < count; i++)
			((uint8_t *)buf)[i] = offset + i;
	return count;
}

static void test_config_cb(void)
{
	struct muser_dev *dev = new_dev();
	struct cfg_log l = { 0 };
	uint8_t b[8];

	CHECK_EQ(muser_set_config_cb(dev, cfg_cb, &l), 0);
	muser_pcicfg_init(dev);

	/* a read across the header boundary is split */
	memset(b, 0, sizeof(b));
	CHECK_EQ(muser_pcicfg_access(dev, b, 8, 0x3c, false), 0);
	CHECK_EQ(l.calls, 1);
	CHECK_EQ(l.offset, 0x40);
	CHECK_EQ(l.count, 4);
	CHECK_EQ(b[1], 1);	/* interrupt pin, from the library */
	CHECK_EQ(b[4], 0x40);
	CHECK_EQ(b[7], 0x43);

	CHECK_EQ(cfg_read(dev, 0xf0, 4), 0xf3f2f1f0);
	cfg_write(dev, 0x48, 2, 0xbeef);
	CHECK(l.is_write);
	CHECK_EQ(l.offset, 0x48);
	CHECK_EQ(l.data[0], 0xef);
	CHECK_EQ(l.data[1], 0xbe);

	/* header-only accesses never reach the callback */
	l.calls = 0;
	CHECK_EQ(rd32(dev, 0), 0x0dc8494f);
	CHECK_EQ(l.calls, 0);

	l.fail_errno = EPERM;
	CHECK_ERR(muser_pcicfg_access(dev, b, 4, 0x40, false), EPERM);
	l.fail_errno = 0;
	l.ret_override = 1;
	CHECK_ERR(muser_pcicfg_access(dev, b, 4, 0x40, false), EIO);
	muser_dev_destroy(dev);
}

static void test_reset(void)
{
	struct muser_dev *dev = new_dev();

	CHECK_EQ(muser_setup_bar(dev, 2, 0x100, MUSER_BAR_MEM32, NULL, NULL), 0);
	muser_pcicfg_init(dev);
	wr16(dev, PCI_COMMAND, 0x0007);
	wr32(dev, PCI_BASE_ADDRESS_2, 0xfebff000);
	wr8(dev, PCI_INTERRUPT_LINE, 10);
	muser_pcicfg_reset(dev);
	CHECK_EQ(rd16(dev, PCI_COMMAND), 0);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_2), 0);
	CHECK_EQ(rd8(dev, PCI_INTERRUPT_LINE), 0);
	CHECK_EQ(rd16(dev, PCI_VENDOR_ID), 0x494f);
	/* sizing still works after a reset */
	wr32(dev, PCI_BASE_ADDRESS_2, 0xffffffff);
	CHECK_EQ(rd32(dev, PCI_BASE_ADDRESS_2), 0xffffff00);
	muser_dev_destroy(dev);
}

int main(void)
{
	RUN(test_ids_read_only);
	RUN(test_command);
	RUN(test_status_rw1c);
	RUN(test_bar_mem32);
	RUN(test_bar_mem64);
	RUN(test_bar_io);
	RUN(test_bar_bytewise);
	RUN(test_rom_and_interrupt);
	RUN(test_full_and_unaligned);
	RUN(test_config_cb);
	RUN(test_reset);
	TEST_MAIN_END();
}
