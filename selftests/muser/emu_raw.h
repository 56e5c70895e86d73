/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The raw-protocol tests' fixture (emu_proto, emu_attach, emu_irqs): the
 * test is both the emulator and the VMM, on a rig (fixture.h) with the control
 * node attached with layout_default() and a VFIO client open. Include once,
 * in the test's one source file: it defines the fixture.
 */
#ifndef MUSER_EMU_RAW_H
#define MUSER_EMU_RAW_H

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

#define WAIT_MS	5000	/* for a request that must arrive */

/*
 * Start a VMM access from another thread (@a) and read, as the emulator,
 * the request it makes (@r).
 */
#define test_vmm_request(self, a, region, off, len, write, r) do {	\
	ASSERT_EQ(0, async_start(a, &(self)->rig.c, region, off, len,	\
				 write));				\
	ASSERT_EQ(1, emu_read_one((self)->rig.ctl, r, WAIT_MS));		\
} while (0)

/* An mdev with the test attached as emulator and a VFIO client open. */
FIXTURE(raw) {
	struct rig rig;
};

FIXTURE_SETUP(raw)
{
	RIG_SETUP(&self->rig, NULL, 0);
}

FIXTURE_TEARDOWN(raw)
{
	RIG_TEARDOWN(&self->rig);
}

#endif
