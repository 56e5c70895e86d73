/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The device cfgdev.c emulates with libmuser and config_space.c tests:
 * shared by both.
 */
#ifndef MUSER_SELFTEST_CFGDEV_H
#define MUSER_SELFTEST_CFGDEV_H

#define CFGDEV_VENDOR		0x4e58
#define CFGDEV_DEVICE		0xcf60
#define CFGDEV_SUBSYS_VENDOR	0x4e58
#define CFGDEV_SUBSYS_ID	0x0c0f
#define CFGDEV_CLASS		0xff0001
#define CFGDEV_REVISION		0x05

#define CFGDEV_BAR0_SIZE	0x4000		/* 64-bit, prefetchable */
#define CFGDEV_BAR2_SIZE	0x1000		/* 32-bit: the registers */
#define CFGDEV_BAR3_SIZE	0x20		/* I/O */
#define CFGDEV_ROM_SIZE		0x10000

#define CFGDEV_MSI_NVEC		4
#define CFGDEV_MSIX_NVEC	8
#define CFGDEV_MSIX_TABLE	0x2000		/* in BAR0 */
#define CFGDEV_MSIX_PBA		0x3000		/* in BAR0 */

#define CFGDEV_DSN		0x0123456789abcdefull
#define CFGDEV_VSEC_ID		0x00c5
#define CFGDEV_VSEC_REV		3
#define CFGDEV_VSEC_LEN		4		/* body bytes */

/* BAR2 registers */
#define CFGDEV_MAGIC		0x44474643	/* "CFGD" */
#define CFGDEV_RESETS		0x04
#define CFGDEV_FLRS		0x08
#define CFGDEV_LAST_REASON	0x0c
#define CFGDEV_RESET_CMD	0x10
#define CFGDEV_CFG_CALLS	0x14
#define CFGDEV_ACTION		0x18
#define CFGDEV_ERRNO		0x1c
#define CFGDEV_NR_REGS		8

/* CFGDEV_ACTION values; MSI and MSI-X take the vector in the low bits. */
#define CFGDEV_ACTION_MASK	0xffff0000u
#define CFGDEV_INTX		0x00010000u
#define CFGDEV_INTX_DEASSERT	0x00020000u
#define CFGDEV_MSI		0x00030000u
#define CFGDEV_MSIX		0x00040000u

#endif
