// SPDX-License-Identifier: GPL-2.0
/*
 * Config space as a VMM sees it through VFIO (pread/pwrite of the config
 * region, VFIO_DEVICE_RESET), emulated by libmuser in a real emulator
 * process: cfgdev (cfgdev.c, cfgdev.h), which has every BAR type, a ROM,
 * INTx, PM, MSI, MSI-X, PCI Express, DSN and a vendor-specific extended
 * capability, a config callback and a reset callback whose calls it counts
 * in BAR2 registers.
 *
 * Covered: read-only header registers and capability headers, the command
 * register's writable bits, status RO and RW1C bits (Interrupt Status set
 * by the device), BAR and ROM sizing, both capability lists, PM, MSI and
 * MSI-X control, mask and pending bits, PCI Express device and link
 * control and status, interrupt line and pin, the config callback's bytes,
 * VFIO_DEVICE_RESET and PCIe function level reset (config space back to
 * power-on, the reset callback told why). Every test runs with FLR
 * advertised and without (then Initiate FLR is ignored).
 *
 * Environment: MUSER_CFGDEV (path of cfgdev, default: the one built).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/pci_regs.h>
#include <muser.h>	/* enum muser_reset_reason */

#include "harness.h"
#include "fixture.h"
#include "cfgdev.h"

#ifndef MUSER_CFGDEV_PATH
#define MUSER_CFGDEV_PATH "cfgdev"
#endif

#define CFG		VFIO_PCI_CONFIG_REGION_INDEX
#define CFG_SIZE	4096
#define BAR0		VFIO_PCI_BAR0_REGION_INDEX
#define BAR2		VFIO_PCI_BAR2_REGION_INDEX
#define MAX_CAPS	48	/* (256 - 64) / 4: more means a loop */

/* Command register bits libmuser lets the guest write. */
#define CMD_WRITABLE	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | \
			 PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | \
			 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)
#define STATUS_RW1C	(PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | \
			 PCI_STATUS_REC_TARGET_ABORT | \
			 PCI_STATUS_REC_MASTER_ABORT | \
			 PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY)
/* The PCIe capability's Device Control at power-on (lib/pcie.c). */
#define DEVCTL_POWERON	(PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_NOSNOOP_EN | \
			 PCI_EXP_DEVCTL_READRQ_512B)
/* A config callback byte: after the last standard capability. */
#define DEVCFG_OFF	0xf0
#define DEVCFG_EXT_OFF	0x800

FIXTURE(cfg) {
	struct rig r;		/* the emulator is a cfgdev process */
	uint8_t poweron[CFG_SIZE];	/* config space read after open */
	unsigned int pm, msi, msix, pcie;	/* capability offsets */
};

FIXTURE_VARIANT(cfg) {
	bool flr;		/* the PCIe capability advertises FLR */
};

FIXTURE_VARIANT_ADD(cfg, flr) {
	.flr = true,
};

FIXTURE_VARIANT_ADD(cfg, no_flr) {
	.flr = false,
};

static const char *cfgdev_path(void)
{
	const char *p = getenv("MUSER_CFGDEV");

	return p && *p ? p : MUSER_CFGDEV_PATH;
}

/* Config space accessors: any failure or short access fails the test. */
static uint32_t rd(struct __test_metadata *_metadata, struct vfio_client *c,
		   unsigned int off, size_t n)
{
	uint32_t v = 0;

	ASSERT_EQ(n, region_read(c, CFG, off, &v, n))
		TH_LOG("config read of %zu at %#x", n, off);
	return v;
}

static void wr(struct __test_metadata *_metadata, struct vfio_client *c,
	       unsigned int off, size_t n, uint32_t v)
{
	ASSERT_EQ(n, region_write(c, CFG, off, &v, n))
		TH_LOG("config write of %zu at %#x", n, off);
}

static uint32_t reg(struct __test_metadata *_metadata, struct vfio_client *c,
		    unsigned int off)
{
	uint32_t v = 0;

	ASSERT_EQ(4, region_read(c, BAR2, off, &v, 4))
		TH_LOG("cfgdev register %#x", off);
	return v;
}

/* Ask cfgdev to do something device-side; it reports the errno. */
static int action(struct __test_metadata *_metadata, struct vfio_client *c,
		  uint32_t what)
{
	ASSERT_EQ(4, region_write(c, BAR2, CFGDEV_ACTION, &what, 4));
	return reg(_metadata, c, CFGDEV_ERRNO);
}

#define RD8(off)	rd(_metadata, &self->r.c, off, 1)
#define RD16(off)	rd(_metadata, &self->r.c, off, 2)
#define RD32(off)	rd(_metadata, &self->r.c, off, 4)
#define WR8(off, v)	wr(_metadata, &self->r.c, off, 1, v)
#define WR16(off, v)	wr(_metadata, &self->r.c, off, 2, v)
#define WR32(off, v)	wr(_metadata, &self->r.c, off, 4, v)
#define REG(off)	reg(_metadata, &self->r.c, off)
#define ACTION(what)	action(_metadata, &self->r.c, what)

/* The power-on value of a register, from the snapshot. */
static uint32_t poweron(const uint8_t *snap, unsigned int off, size_t n)
{
	uint32_t v = 0;

	memcpy(&v, &snap[off], n);
	return v;
}

#define PO16(off)	poweron(self->poweron, off, 2)
#define PO32(off)	poweron(self->poweron, off, 4)

/* Find the standard capabilities; cap_list checks the list thoroughly. */
static void find_caps(struct __test_metadata *_metadata,
		      FIXTURE_DATA(cfg) *self)
{
	unsigned int p = self->poweron[PCI_CAPABILITY_LIST] & ~3u, n = 0;

	while (p >= PCI_STD_HEADER_SIZEOF && p < 0x100 && n++ < MAX_CAPS) {
		switch (self->poweron[p]) {
		case PCI_CAP_ID_PM:
			self->pm = p;
			break;
		case PCI_CAP_ID_MSI:
			self->msi = p;
			break;
		case PCI_CAP_ID_MSIX:
			self->msix = p;
			break;
		case PCI_CAP_ID_EXP:
			self->pcie = p;
			break;
		}
		p = self->poweron[p + 1] & ~3u;
	}
	ASSERT_TRUE(self->pm && self->msi && self->msix && self->pcie)
		TH_LOG("capabilities: PM %#x MSI %#x MSI-X %#x PCIe %#x",
		       self->pm, self->msi, self->msix, self->pcie);
}

FIXTURE_SETUP(cfg)
{
	int ret;

	RIG_SETUP(&self->r, NULL, RIG_NO_CTL | RIG_NO_VMM);
	if (access(cfgdev_path(), X_OK))
		SKIP(return, "cfgdev not built: %s", cfgdev_path());
	ret = rig_start_emulator(&self->r, cfgdev_path(),
				 variant->flr ? "" : "--no-flr");
	ASSERT_EQ(0, ret) TH_LOG("start %s: %s", cfgdev_path(), strerror(-ret));
	test_rig_open_vmm(&self->r);

	ASSERT_EQ(CFG_SIZE, region_read(&self->r.c, CFG, 0, self->poweron,
					CFG_SIZE));
	ASSERT_EQ(CFGDEV_MAGIC, REG(0));
	find_caps(_metadata, self);
}

FIXTURE_TEARDOWN(cfg)
{
	RIG_TEARDOWN(&self->r);
}

/* IDs, class, header type and the capability headers ignore writes. */
TEST_F(cfg, read_only)
{
	static const unsigned int hdr[] = {
		PCI_VENDOR_ID, PCI_CLASS_REVISION, PCI_SUBSYSTEM_VENDOR_ID,
		PCI_CAPABILITY_LIST, 0x38,
	};
	const unsigned int caps[] = { self->pm, self->msi, self->msix,
				      self->pcie };
	uint8_t after[CFG_SIZE];
	unsigned int i, off;

	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(CFGDEV_VENDOR | CFGDEV_DEVICE << 16, PO32(PCI_VENDOR_ID));
	EXPECT_EQ(CFGDEV_CLASS << 8 | CFGDEV_REVISION, PO32(PCI_CLASS_REVISION));
	EXPECT_EQ(CFGDEV_SUBSYS_VENDOR | CFGDEV_SUBSYS_ID << 16,
		  PO32(PCI_SUBSYSTEM_VENDOR_ID));
	EXPECT_EQ(PCI_HEADER_TYPE_NORMAL, self->poweron[PCI_HEADER_TYPE]);
	EXPECT_EQ(0, self->poweron[PCI_BIST]);
	EXPECT_EQ(self->pm, self->poweron[PCI_CAPABILITY_LIST]);

	for (i = 0; i < ARRAY_SIZE(hdr); i++)
		WR32(hdr[i], 0xffffffff);
	/* Header type and BIST share a dword with two RW registers. */
	WR32(PCI_CACHE_LINE_SIZE, 0xffffffff);
	/* Every capability header, standard and extended, and the DSN. */
	for (i = 0; i < ARRAY_SIZE(caps); i++)
		WR16(caps[i], 0xffff);
	for (off = 0x100; off >= 0x100 && off < CFG_SIZE; off = PO32(off) >> 20)
		WR32(off, 0xffffffff);
	WR32(0x104, 0xffffffff);
	WR32(0x108, 0);

	ASSERT_EQ(CFG_SIZE, region_read(&self->r.c, CFG, 0, after, CFG_SIZE));
	for (i = 0; i < ARRAY_SIZE(hdr); i++) {
		EXPECT_EQ(PO32(hdr[i]), poweron(after, hdr[i], 4))
			TH_LOG("dword %#x changed", hdr[i]);
	}
	EXPECT_EQ(0xffff, poweron(after, PCI_CACHE_LINE_SIZE, 2));
	EXPECT_EQ(PCI_HEADER_TYPE_NORMAL, after[PCI_HEADER_TYPE]);
	EXPECT_EQ(0, after[PCI_BIST]);
	for (i = 0; i < ARRAY_SIZE(caps); i++) {
		EXPECT_EQ(PO16(caps[i]), poweron(after, caps[i], 2))
			TH_LOG("capability header at %#x changed", caps[i]);
	}
	/* From 0x100 on nothing was writable. */
	EXPECT_EQ(0, memcmp(self->poweron + 0x100, after + 0x100, 0x10c));
}

TEST_F(cfg, command)
{
	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(0, PO16(PCI_COMMAND));
	WR16(PCI_COMMAND, 0xffff);
	EXPECT_EQ(CMD_WRITABLE, RD16(PCI_COMMAND));
	WR16(PCI_COMMAND, 0);
	EXPECT_EQ(0, RD16(PCI_COMMAND));
	/* Byte writes of either half. */
	WR8(PCI_COMMAND + 1, 0xff);
	EXPECT_EQ(CMD_WRITABLE & 0xff00, RD16(PCI_COMMAND));
	WR8(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
	    PCI_COMMAND_SPECIAL | PCI_COMMAND_INVALIDATE);
	EXPECT_EQ((CMD_WRITABLE & 0xff00) | PCI_COMMAND_MEMORY |
		  PCI_COMMAND_MASTER, RD16(PCI_COMMAND));
	/* The status register next to it is not written by a dword write. */
	WR32(PCI_COMMAND, 0xffff0000 | PCI_COMMAND_IO);
	EXPECT_EQ(PCI_STATUS_CAP_LIST << 16 | PCI_COMMAND_IO, RD32(PCI_COMMAND));
}

/*
 * Status: Capabilities List and Interrupt Status are read-only (the latter
 * set and cleared by the device), the error bits are RW1C and no device
 * side sets them, so writing 1 leaves them 0. Device Status of the PCIe
 * capability likewise.
 */
TEST_F(cfg, status)
{
	unsigned int devsta = self->pcie + PCI_EXP_DEVSTA;

	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(PCI_STATUS_CAP_LIST, PO16(PCI_STATUS));
	WR16(PCI_STATUS, 0xffff);
	EXPECT_EQ(PCI_STATUS_CAP_LIST, RD16(PCI_STATUS));
	WR16(PCI_STATUS, STATUS_RW1C);
	EXPECT_EQ(PCI_STATUS_CAP_LIST, RD16(PCI_STATUS));

	/*
	 * The device raises INTx: Interrupt Status, which writes don't clear.
	 * (No VMM eventfd: the trigger itself fails with ENOENT.)
	 */
	ACTION(CFGDEV_INTX);
	EXPECT_EQ(PCI_STATUS_CAP_LIST | PCI_STATUS_INTERRUPT, RD16(PCI_STATUS));
	WR16(PCI_STATUS, 0xffff);
	EXPECT_EQ(PCI_STATUS_CAP_LIST | PCI_STATUS_INTERRUPT, RD16(PCI_STATUS));
	/* INTx Disable does not hide it. */
	WR16(PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
	EXPECT_EQ(PCI_STATUS_CAP_LIST | PCI_STATUS_INTERRUPT, RD16(PCI_STATUS));
	EXPECT_EQ(0, ACTION(CFGDEV_INTX_DEASSERT));
	EXPECT_EQ(PCI_STATUS_CAP_LIST, RD16(PCI_STATUS));

	EXPECT_EQ(0, PO16(devsta));
	WR16(devsta, 0xffff);
	EXPECT_EQ(0, RD16(devsta));
}

struct bar_case {
	unsigned int bar;
	uint32_t poweron;	/* the type bits */
	uint32_t sized;		/* read back after writing ~0 */
	uint32_t addr;		/* an address to program */
	uint64_t region_size;	/* VFIO region */
};

TEST_F(cfg, bar_sizing)
{
	static const struct bar_case bars[] = {
		{ 0, PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH,
		  ~(CFGDEV_BAR0_SIZE - 1) | PCI_BASE_ADDRESS_MEM_TYPE_64 |
		  PCI_BASE_ADDRESS_MEM_PREFETCH, 0xfebf0000, CFGDEV_BAR0_SIZE },
		/* The upper half: all address bits. */
		{ 1, 0, 0xffffffff, 0x00000001, 0 },
		{ 2, 0, ~(CFGDEV_BAR2_SIZE - 1), 0xfebe0000, CFGDEV_BAR2_SIZE },
		{ 3, PCI_BASE_ADDRESS_SPACE_IO,
		  ~(CFGDEV_BAR3_SIZE - 1) | PCI_BASE_ADDRESS_SPACE_IO, 0xc040,
		  CFGDEV_BAR3_SIZE },
		/* Absent: read 0, ignore writes. */
		{ 4, 0, 0, 0, 0 },
		{ 5, 0, 0, 0, 0 },
	};
	struct vfio_region_info ri;
	unsigned int i, off;
	uint32_t low_bits;

	SKIP_IF_SETUP_SKIPPED();
	for (i = 0; i < ARRAY_SIZE(bars); i++) {
		const struct bar_case *b = &bars[i];

		off = PCI_BASE_ADDRESS_0 + 4 * b->bar;
		ASSERT_EQ(0, get_region_info(self->r.c.device,
					     BAR0 + b->bar, &ri));
		EXPECT_EQ(b->region_size, ri.size) TH_LOG("BAR%u", b->bar);
		EXPECT_EQ(b->poweron, PO32(off)) TH_LOG("BAR%u", b->bar);

		WR32(off, 0xffffffff);
		EXPECT_EQ(b->sized, RD32(off)) TH_LOG("BAR%u sized", b->bar);
		/* The type bits stay whatever is written. */
		WR32(off, 0);
		EXPECT_EQ(b->poweron, RD32(off)) TH_LOG("BAR%u cleared", b->bar);
		WR32(off, b->addr);
		low_bits = b->addr ? b->poweron : 0;
		EXPECT_EQ(b->addr | low_bits, RD32(off))
			TH_LOG("BAR%u programmed", b->bar);
		/* Sizing again and restoring, as an OS does. */
		WR32(off, 0xffffffff);
		EXPECT_EQ(b->sized, RD32(off));
		WR32(off, b->addr);
		EXPECT_EQ(b->addr | low_bits, RD32(off));
	}
	/* Address bits below the size are not writable. */
	WR32(PCI_BASE_ADDRESS_2, 0xfebe0ff0);
	EXPECT_EQ(0xfebe0000, RD32(PCI_BASE_ADDRESS_2));
	WR16(PCI_BASE_ADDRESS_3, 0xc05c);
	EXPECT_EQ(0xc041, RD32(PCI_BASE_ADDRESS_3));
	/* A byte write changes that byte only. */
	WR8(PCI_BASE_ADDRESS_2 + 3, 0x80);
	EXPECT_EQ(0x80be0000, RD32(PCI_BASE_ADDRESS_2));
}

TEST_F(cfg, rom_sizing)
{
	struct vfio_region_info ri;
	uint32_t rom[4];

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, get_region_info(self->r.c.device, VFIO_PCI_ROM_REGION_INDEX,
				     &ri));
	EXPECT_EQ(CFGDEV_ROM_SIZE, ri.size);
	EXPECT_EQ(0, PO32(PCI_ROM_ADDRESS));

	WR32(PCI_ROM_ADDRESS, 0xffffffff);
	EXPECT_EQ((uint32_t)~(CFGDEV_ROM_SIZE - 1) | PCI_ROM_ADDRESS_ENABLE,
		  RD32(PCI_ROM_ADDRESS));
	WR32(PCI_ROM_ADDRESS, ~PCI_ROM_ADDRESS_ENABLE);
	EXPECT_EQ((uint32_t)~(CFGDEV_ROM_SIZE - 1), RD32(PCI_ROM_ADDRESS));
	WR32(PCI_ROM_ADDRESS, 0xfeb0ffff);
	EXPECT_EQ(0xfeb00000 | PCI_ROM_ADDRESS_ENABLE, RD32(PCI_ROM_ADDRESS));
	WR8(PCI_ROM_ADDRESS, 0);
	EXPECT_EQ(0xfeb00000, RD32(PCI_ROM_ADDRESS));

	/* The ROM reads (zeros from cfgdev) and is read-only. */
	memset(rom, 0xee, sizeof(rom));
	EXPECT_EQ(sizeof(rom), region_read(&self->r.c, VFIO_PCI_ROM_REGION_INDEX,
					   0, rom, sizeof(rom)));
	EXPECT_EQ(0, rom[0] | rom[1] | rom[2] | rom[3]);
	EXPECT_GT(0, region_write(&self->r.c, VFIO_PCI_ROM_REGION_INDEX, 0, rom,
				  4));
}

/* Both capability lists: aligned, in order, terminated, and their bodies. */
TEST_F(cfg, cap_list)
{
	static const uint8_t want[] = {
		PCI_CAP_ID_PM, PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_CAP_ID_EXP,
	};
	static const uint8_t vsec_body[CFGDEV_VSEC_LEN] = {
		0xc0, 0xff, 0xee, 0x42,
	};
	bool seen[256] = { false };
	unsigned int p, n = 0;
	uint32_t h, dsn, vsec;

	SKIP_IF_SETUP_SKIPPED();
	EXPECT_TRUE(PO16(PCI_STATUS) & PCI_STATUS_CAP_LIST);
	/* Read through VFIO step by step, as a guest walks it. */
	for (p = RD8(PCI_CAPABILITY_LIST); p; p = RD8(p + PCI_CAP_LIST_NEXT)) {
		ASSERT_EQ(0, p & 3) TH_LOG("capability at %#x not aligned", p);
		ASSERT_LE(PCI_STD_HEADER_SIZEOF, p);
		ASSERT_GT(0x100, p);
		ASSERT_FALSE(seen[p]) TH_LOG("loop at %#x", p);
		seen[p] = true;
		ASSERT_GT(ARRAY_SIZE(want), n) TH_LOG("extra capability %#x at %#x",
						      RD8(p), p);
		EXPECT_EQ(want[n], RD8(p)) TH_LOG("capability %u at %#x", n, p);
		n++;
	}
	EXPECT_EQ(ARRAY_SIZE(want), n);

	/* PM: version 3, D0, No_Soft_Reset. */
	EXPECT_EQ(3, RD16(self->pm + PCI_PM_PMC) & PCI_PM_CAP_VER_MASK);
	EXPECT_EQ(PCI_PM_CTRL_NO_SOFT_RESET, RD16(self->pm + PCI_PM_CTRL));
	/* PCIe: version 2 endpoint; FLR as the variant says. */
	EXPECT_EQ(2 | PCI_EXP_TYPE_ENDPOINT << 4,
		  RD16(self->pcie + PCI_EXP_FLAGS) & 0xff);
	EXPECT_EQ(variant->flr, !!(RD32(self->pcie + PCI_EXP_DEVCAP) &
				   PCI_EXP_DEVCAP_FLR));
	EXPECT_EQ(DEVCTL_POWERON, RD16(self->pcie + PCI_EXP_DEVCTL));

	/* Extended: DSN at 0x100, then the vendor-specific one, then none. */
	h = RD32(0x100);
	EXPECT_EQ(PCI_EXT_CAP_ID_DSN, PCI_EXT_CAP_ID(h));
	EXPECT_EQ(1, PCI_EXT_CAP_VER(h));
	dsn = PCI_EXT_CAP_NEXT(h);
	ASSERT_EQ(0, dsn & 3);
	ASSERT_LT(0x100, dsn);
	ASSERT_GT(CFG_SIZE, dsn);
	EXPECT_EQ((uint32_t)CFGDEV_DSN, RD32(0x100 + 4));
	EXPECT_EQ((uint32_t)(CFGDEV_DSN >> 32), RD32(0x100 + 8));
	vsec = dsn;
	h = RD32(vsec);
	EXPECT_EQ(PCI_EXT_CAP_ID_VNDR, PCI_EXT_CAP_ID(h));
	EXPECT_EQ(1, PCI_EXT_CAP_VER(h));
	EXPECT_EQ(0, PCI_EXT_CAP_NEXT(h));
	h = RD32(vsec + PCI_VNDR_HEADER);
	EXPECT_EQ(CFGDEV_VSEC_ID, PCI_VNDR_HEADER_ID(h));
	EXPECT_EQ(CFGDEV_VSEC_REV, PCI_VNDR_HEADER_REV(h));
	EXPECT_EQ(8 + CFGDEV_VSEC_LEN, PCI_VNDR_HEADER_LEN(h));
	EXPECT_EQ(0, memcmp(vsec_body, self->poweron + vsec + 8,
			    CFGDEV_VSEC_LEN));
}

TEST_F(cfg, interrupt_line_pin)
{
	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(0, self->poweron[PCI_INTERRUPT_LINE]);
	EXPECT_EQ(1, self->poweron[PCI_INTERRUPT_PIN]);
	WR8(PCI_INTERRUPT_LINE, 0xab);
	EXPECT_EQ(0xab, RD8(PCI_INTERRUPT_LINE));
	WR8(PCI_INTERRUPT_PIN, 0);
	EXPECT_EQ(1, RD8(PCI_INTERRUPT_PIN));
	WR16(PCI_INTERRUPT_LINE, 0x040b);
	EXPECT_EQ(0x010b, RD16(PCI_INTERRUPT_LINE));
	/* Min_Gnt, Max_Lat: read-only 0. */
	WR16(PCI_MIN_GNT, 0xffff);
	EXPECT_EQ(0, RD16(PCI_MIN_GNT));
}

TEST_F(cfg, power_state)
{
	unsigned int csr = self->pm + PCI_PM_CTRL;

	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(0, RD16(self->pm + PCI_PM_PMC) &
		     (PCI_PM_CAP_D1 | PCI_PM_CAP_D2));
	WR16(csr, PCI_PM_CTRL_STATE_MASK);	/* D3hot */
	EXPECT_EQ(PCI_PM_CTRL_NO_SOFT_RESET | 3, RD16(csr));
	WR16(csr, 1);				/* D1: not supported, ignored */
	EXPECT_EQ(PCI_PM_CTRL_NO_SOFT_RESET | 3, RD16(csr));
	WR16(csr, 0xfffc);			/* D0; nothing else writable */
	EXPECT_EQ(PCI_PM_CTRL_NO_SOFT_RESET, RD16(csr));
}

TEST_F(cfg, msi)
{
	const uint16_t ro = PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT |
			    2 << 1;	/* Multiple Message Capable: 4 */
	unsigned int m = self->msi, ctrl = m + PCI_MSI_FLAGS;
	unsigned int mask = m + PCI_MSI_MASK_64, pend = m + PCI_MSI_PENDING_64;

	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(ro, PO16(ctrl));
	/* Enable and Multiple Message Enable are writable ... */
	WR16(ctrl, PCI_MSI_FLAGS_ENABLE | 1 << 4);
	EXPECT_EQ(ro | PCI_MSI_FLAGS_ENABLE | 1 << 4, RD16(ctrl));
	/* ... the latter up to what the capability advertises ... */
	WR16(ctrl, 0xffff);
	EXPECT_EQ(ro | PCI_MSI_FLAGS_ENABLE | 2 << 4, RD16(ctrl));
	WR16(ctrl, 5 << 4);
	EXPECT_EQ(ro | 2 << 4, RD16(ctrl));
	/* ... and nothing else. */
	WR16(ctrl, 0);
	EXPECT_EQ(ro, RD16(ctrl));

	/* Address (dword aligned), upper address, 16-bit data. */
	WR32(m + PCI_MSI_ADDRESS_LO, 0xffffffff);
	EXPECT_EQ(0xfffffffc, RD32(m + PCI_MSI_ADDRESS_LO));
	WR32(m + PCI_MSI_ADDRESS_HI, 0x12345678);
	EXPECT_EQ(0x12345678, RD32(m + PCI_MSI_ADDRESS_HI));
	WR32(m + PCI_MSI_DATA_64, 0xffffffff);
	EXPECT_EQ(0x0000ffff, RD32(m + PCI_MSI_DATA_64));

	/* Mask bits of the 4 vectors; pending bits read-only. */
	EXPECT_EQ(0, PO32(mask));
	WR32(mask, 0xffffffff);
	EXPECT_EQ(0xf, RD32(mask));
	WR32(pend, 0xffffffff);
	EXPECT_EQ(0, RD32(pend));
	/* A masked vector the device raises becomes pending ... */
	ACTION(CFGDEV_MSI | 2);
	EXPECT_EQ(1u << 2, RD32(pend));
	WR32(pend, 0);
	EXPECT_EQ(1u << 2, RD32(pend));
	/* ... until the guest unmasks it (then it is sent). */
	WR32(mask, 0xe);
	EXPECT_EQ(1u << 2, RD32(pend));
	WR32(mask, 0xa);
	EXPECT_EQ(0, RD32(pend));
	EXPECT_EQ(0xa, RD32(mask));
}

TEST_F(cfg, msix)
{
	unsigned int x = self->msix, ctrl = x + PCI_MSIX_FLAGS;
	const uint16_t qsize = CFGDEV_MSIX_NVEC - 1;
	uint32_t entry[4], pba;

	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(qsize, PO16(ctrl));
	EXPECT_EQ(CFGDEV_MSIX_TABLE | 0, PO32(x + PCI_MSIX_TABLE));
	EXPECT_EQ(CFGDEV_MSIX_PBA | 0, PO32(x + PCI_MSIX_PBA));
	WR16(ctrl, 0xffff);
	EXPECT_EQ(qsize | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL,
		  RD16(ctrl));
	WR16(ctrl, PCI_MSIX_FLAGS_ENABLE);
	EXPECT_EQ(qsize | PCI_MSIX_FLAGS_ENABLE, RD16(ctrl));
	WR16(ctrl, 0);
	EXPECT_EQ(qsize, RD16(ctrl));
	WR32(x + PCI_MSIX_TABLE, 0xffffffff);
	WR32(x + PCI_MSIX_PBA, 0);
	EXPECT_EQ(CFGDEV_MSIX_TABLE | 0, RD32(x + PCI_MSIX_TABLE));
	EXPECT_EQ(CFGDEV_MSIX_PBA | 0, RD32(x + PCI_MSIX_PBA));

	/* Function Mask holds a vector the device raises in the PBA. */
	WR16(ctrl, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	ACTION(CFGDEV_MSIX | 5);
	ASSERT_EQ(4, region_read(&self->r.c, BAR0, CFGDEV_MSIX_PBA, &pba, 4));
	EXPECT_EQ(1u << 5, pba);
	WR16(ctrl, PCI_MSIX_FLAGS_ENABLE);
	ASSERT_EQ(4, region_read(&self->r.c, BAR0, CFGDEV_MSIX_PBA, &pba, 4));
	EXPECT_EQ(0, pba);

	/* The table (BAR0): every vector masked at power-on. */
	ASSERT_EQ(16, region_read(&self->r.c, BAR0, CFGDEV_MSIX_TABLE + 16 * 7,
				  entry, 16));
	EXPECT_EQ(0, entry[0] | entry[1] | entry[2]);
	EXPECT_EQ(PCI_MSIX_ENTRY_CTRL_MASKBIT, entry[3]);
	memset(entry, 0xff, sizeof(entry));
	ASSERT_EQ(16, region_write(&self->r.c, BAR0, CFGDEV_MSIX_TABLE + 16 * 7,
				   entry, 16));
	ASSERT_EQ(16, region_read(&self->r.c, BAR0, CFGDEV_MSIX_TABLE + 16 * 7,
				  entry, 16));
	EXPECT_EQ(0xfffffffc, entry[0]);
	EXPECT_EQ(0xffffffff, entry[1]);
	EXPECT_EQ(0xffffffff, entry[2]);
	EXPECT_EQ(PCI_MSIX_ENTRY_CTRL_MASKBIT, entry[3]);
}

/* PCI Express Device and Link Control/Status: writable bits only. */
TEST_F(cfg, pcie_control)
{
	const uint16_t devctl_rw = PCI_EXP_DEVCTL_CERE | PCI_EXP_DEVCTL_NFERE |
				   PCI_EXP_DEVCTL_FERE | PCI_EXP_DEVCTL_URRE |
				   PCI_EXP_DEVCTL_RELAX_EN |
				   PCI_EXP_DEVCTL_PAYLOAD |
				   PCI_EXP_DEVCTL_NOSNOOP_EN |
				   PCI_EXP_DEVCTL_READRQ;
	const uint16_t lnkctl_rw = PCI_EXP_LNKCTL_ASPMC | PCI_EXP_LNKCTL_CCC |
				   PCI_EXP_LNKCTL_ES;
	unsigned int e = self->pcie;
	uint16_t lnksta = PO16(e + PCI_EXP_LNKSTA);

	SKIP_IF_SETUP_SKIPPED();
	/* Everything but Initiate FLR (function_level_reset's business). */
	WR16(e + PCI_EXP_DEVCTL, 0x7fff);
	EXPECT_EQ(devctl_rw, RD16(e + PCI_EXP_DEVCTL));
	WR16(e + PCI_EXP_DEVCTL, 0);
	EXPECT_EQ(0, RD16(e + PCI_EXP_DEVCTL));
	WR16(e + PCI_EXP_DEVSTA, 0xffff);
	EXPECT_EQ(0, RD16(e + PCI_EXP_DEVSTA));
	/* A 2.5 GT/s x1 link that is up; status read-only. */
	EXPECT_EQ(PCI_EXP_LNKSTA_CLS_2_5GB, lnksta & PCI_EXP_LNKSTA_CLS);
	EXPECT_EQ(PCI_EXP_LNKSTA_NLW_X1, lnksta & PCI_EXP_LNKSTA_NLW);
	EXPECT_EQ(0, PO16(e + PCI_EXP_LNKCTL));
	WR32(e + PCI_EXP_LNKCTL, 0xffffffff);
	EXPECT_EQ(lnkctl_rw, RD16(e + PCI_EXP_LNKCTL));
	EXPECT_EQ(lnksta, RD16(e + PCI_EXP_LNKSTA));
	/* Capabilities are read-only. */
	WR32(e + PCI_EXP_DEVCAP, 0);
	EXPECT_EQ(PO32(e + PCI_EXP_DEVCAP), RD32(e + PCI_EXP_DEVCAP));
	WR32(e + PCI_EXP_LNKCAP, 0);
	EXPECT_EQ(PO32(e + PCI_EXP_LNKCAP), RD32(e + PCI_EXP_LNKCAP));
}

/* Bytes no capability owns go to cfgdev's config callback. */
TEST_F(cfg, config_callback)
{
	uint32_t calls = REG(CFGDEV_CFG_CALLS);
	uint8_t hdr[0x40];

	SKIP_IF_SETUP_SKIPPED();
	/* The power-on read covered them. */
	EXPECT_LT(0, calls);
	EXPECT_EQ(0, PO32(DEVCFG_OFF));
	ASSERT_EQ(sizeof(hdr), region_read(&self->r.c, CFG, 0, hdr, sizeof(hdr)));
	EXPECT_EQ(calls, REG(CFGDEV_CFG_CALLS));

	WR32(DEVCFG_OFF, 0xdeadbeef);
	EXPECT_EQ(calls + 1, REG(CFGDEV_CFG_CALLS));
	EXPECT_EQ(0xdeadbeef, RD32(DEVCFG_OFF));
	EXPECT_EQ(0xbeef, RD16(DEVCFG_OFF));
	WR32(DEVCFG_EXT_OFF, 0x0badf00d);
	EXPECT_EQ(0x0badf00d, RD32(DEVCFG_EXT_OFF));
	EXPECT_EQ(calls + 5, REG(CFGDEV_CFG_CALLS));
}

/*
 * Change whatever the guest can; check the changes took, so that finding
 * power-on values afterwards means something.
 */
static void dirty(struct __test_metadata *_metadata, FIXTURE_DATA(cfg) *self)
{
	uint32_t entry[4] = { 0xfee00000, 0, 0x4021, 0 };
	uint8_t now[CFG_SIZE];

	WR16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
	     PCI_COMMAND_INTX_DISABLE);
	WR32(PCI_BASE_ADDRESS_0, 0xfebf0000);
	WR32(PCI_BASE_ADDRESS_1, 0x1);
	WR32(PCI_BASE_ADDRESS_2, 0xfebe0000);
	WR32(PCI_BASE_ADDRESS_3, 0xc040);
	WR32(PCI_ROM_ADDRESS, 0xfeb00001);
	WR8(PCI_CACHE_LINE_SIZE, 0x10);
	WR8(PCI_INTERRUPT_LINE, 11);
	WR16(self->pm + PCI_PM_CTRL, 3);
	WR32(self->msi + PCI_MSI_ADDRESS_LO, 0xfee00000);
	WR16(self->msi + PCI_MSI_DATA_64, 0x4021);
	WR32(self->msi + PCI_MSI_MASK_64, 0x5);
	WR16(self->msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE | 2 << 4);
	WR16(self->msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE |
	     PCI_MSIX_FLAGS_MASKALL);
	WR16(self->pcie + PCI_EXP_DEVCTL, DEVCTL_POWERON | PCI_EXP_DEVCTL_CERE);
	WR16(self->pcie + PCI_EXP_LNKCTL, PCI_EXP_LNKCTL_CCC);
	WR32(DEVCFG_OFF, 0x12345678);
	WR32(DEVCFG_EXT_OFF, 0x9abcdef0);
	ASSERT_EQ(16, region_write(&self->r.c, BAR0, CFGDEV_MSIX_TABLE, entry,
				   16));
	ACTION(CFGDEV_INTX);	/* Interrupt Status, held by INTx Disable */

	ASSERT_EQ(CFG_SIZE, region_read(&self->r.c, CFG, 0, now, CFG_SIZE));
	EXPECT_EQ(PCI_STATUS_CAP_LIST | PCI_STATUS_INTERRUPT,
		  poweron(now, PCI_STATUS, 2));
	EXPECT_EQ(0xfeb00001, poweron(now, PCI_ROM_ADDRESS, 4));
	EXPECT_EQ(3, poweron(now, self->pm + PCI_PM_CTRL, 2) & 3);
	EXPECT_EQ(PCI_MSI_FLAGS_ENABLE,
		  poweron(now, self->msi + PCI_MSI_FLAGS, 2) &
		  PCI_MSI_FLAGS_ENABLE);
	EXPECT_EQ(0x9abcdef0, poweron(now, DEVCFG_EXT_OFF, 4));
	ASSERT_NE(0, memcmp(self->poweron, now, CFG_SIZE));
}

/* Config space, and the MSI-X table, as at power-on. */
static void check_poweron(struct __test_metadata *_metadata,
			  FIXTURE_DATA(cfg) *self)
{
	unsigned int i, bad = 0;
	uint8_t now[CFG_SIZE];
	uint32_t entry[4];

	ASSERT_EQ(CFG_SIZE, region_read(&self->r.c, CFG, 0, now, CFG_SIZE));
	for (i = 0; i < CFG_SIZE; i++) {
		if (now[i] == self->poweron[i])
			continue;
		if (bad++ < 16)
			TH_LOG("config byte %#x: %#x, at power-on %#x", i,
			       now[i], self->poweron[i]);
	}
	EXPECT_EQ(0, bad) TH_LOG("config bytes not back to power-on values");
	EXPECT_EQ(0, poweron(now, PCI_COMMAND, 2));
	EXPECT_EQ(PCI_STATUS_CAP_LIST, poweron(now, PCI_STATUS, 2));
	ASSERT_EQ(16, region_read(&self->r.c, BAR0, CFGDEV_MSIX_TABLE, entry,
				  16));
	EXPECT_EQ(0, entry[0] | entry[1] | entry[2]);
	EXPECT_EQ(PCI_MSIX_ENTRY_CTRL_MASKBIT, entry[3]);
}

TEST_F(cfg, vfio_reset)
{
	SKIP_IF_SETUP_SKIPPED();
	EXPECT_EQ(0, REG(CFGDEV_RESETS));
	EXPECT_EQ(~0u, REG(CFGDEV_LAST_REASON));
	dirty(_metadata, self);
	ASSERT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_RESET)) TH_LOG("%m");
	EXPECT_EQ(1, REG(CFGDEV_RESETS));
	EXPECT_EQ(0, REG(CFGDEV_FLRS));
	EXPECT_EQ(MUSER_RESET_VFIO, REG(CFGDEV_LAST_REASON));
	/* The library had reset config space before calling back. */
	EXPECT_EQ(0, REG(CFGDEV_RESET_CMD));
	check_poweron(_metadata, self);
	/* Once more, from power-on. */
	ASSERT_EQ(0, ioctl(self->r.c.device, VFIO_DEVICE_RESET)) TH_LOG("%m");
	EXPECT_EQ(2, REG(CFGDEV_RESETS));
	check_poweron(_metadata, self);
}

/* Initiate Function Level Reset, with FLR advertised or not. */
TEST_F(cfg, function_level_reset)
{
	unsigned int devctl = self->pcie + PCI_EXP_DEVCTL;
	const uint16_t changed = DEVCTL_POWERON | PCI_EXP_DEVCTL_CERE;

	SKIP_IF_SETUP_SKIPPED();
	dirty(_metadata, self);
	WR16(devctl, changed | PCI_EXP_DEVCTL_BCR_FLR);
	EXPECT_EQ(0, REG(CFGDEV_RESETS));
	if (variant->flr) {
		EXPECT_EQ(1, REG(CFGDEV_FLRS));
		EXPECT_EQ(MUSER_RESET_FLR, REG(CFGDEV_LAST_REASON));
		EXPECT_EQ(0, REG(CFGDEV_RESET_CMD));
		check_poweron(_metadata, self);
		/* Initiate FLR reads 0 and the next one works too. */
		EXPECT_EQ(DEVCTL_POWERON, RD16(devctl));
		WR16(devctl, DEVCTL_POWERON | PCI_EXP_DEVCTL_BCR_FLR);
		EXPECT_EQ(2, REG(CFGDEV_FLRS));
		EXPECT_EQ(DEVCTL_POWERON, RD16(devctl));
	} else {
		/* Ignored: no reset, the bit reads 0, the rest applies. */
		EXPECT_EQ(0, REG(CFGDEV_FLRS));
		EXPECT_EQ(~0u, REG(CFGDEV_LAST_REASON));
		EXPECT_EQ(changed, RD16(devctl));
		EXPECT_EQ(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			  PCI_COMMAND_INTX_DISABLE, RD16(PCI_COMMAND));
		EXPECT_EQ(0x12345678, RD32(DEVCFG_OFF));
		WR8(devctl + 1, PCI_EXP_DEVCTL_BCR_FLR >> 8);
		EXPECT_EQ(0, REG(CFGDEV_FLRS));
		EXPECT_EQ(changed & 0xff, RD16(devctl));
	}
}

TEST_HARNESS_MAIN
