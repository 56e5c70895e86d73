/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest harness (extracted from linux-source-6.1 at build time) plus
 * what the muser selftests add to it.
 */
#ifndef MUSER_SELFTEST_HARNESS_H
#define MUSER_SELFTEST_HARNESS_H

#include "kselftest_harness.h"

/*
 * In the 6.1 harness a SKIP() in FIXTURE_SETUP still runs the test body:
 * start every TEST_F with this.
 */
#define SKIP_IF_SETUP_SKIPPED() do {		\
	if (_metadata->skip)			\
		return;				\
} while (0)

/* Skip unless muser.ko is loaded; usable in FIXTURE_SETUP and TEST(). */
#define REQUIRE_MUSER() do {					\
	if (!muser_loaded())					\
		SKIP(return, "muser.ko is not loaded");		\
	if (access("/dev/vfio/vfio", R_OK | W_OK))		\
		SKIP(return, "no /dev/vfio/vfio (vfio not loaded?)"); \
} while (0)

#endif
