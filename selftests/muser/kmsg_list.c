// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel log check itself (kmsg.c): selftests/kernel-log-bad is read
 * and its lines match what they are for, a benign line does not, and a
 * list that cannot be read fails the check instead of passing it. Needs
 * no module; runs on the host too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "common.h"

TEST(known_bad_lines_match)
{
	static const char *const bad[] = {
		"WARNING: CPU: 1 PID: 42 at kmod/ctl.c:100 muser_ctl_read+0x1/0x2 [muser]",
		"BUG: KASAN: slab-use-after-free in muser_ctl_write+0x10/0x20",
		"BUG kmalloc-64 (Not tainted): Redzone overwritten",
		"Oops: 0000 [#1] PREEMPT SMP",
		"list_del corruption. prev->next should be ffff, but was ffff",
		"kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
		"INFO: task muser:1 blocked for more than 120 seconds.",
	};
	size_t i;

	/* Braces: EXPECT_*() TH_LOG() is more than one statement. */
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(1, kmsg_is_bad(bad[i])) TH_LOG("not caught: %s", bad[i]);
	}
	EXPECT_EQ(0, kmsg_is_bad("muser: mdev 1234 created"));
}

TEST(unreadable_list_fails)
{
	int fd;

	ASSERT_EQ(0, setenv("MUSER_SELFTESTS_DIR", "/nonexistent", 1));
	kmsg_bad_forget();
	EXPECT_EQ(-ENOENT, kmsg_is_bad("WARNING: CPU: 0"));
	/* kmsg_check() counts the missing list as a problem. */
	fd = kmsg_start(_metadata->name);
	if (fd >= 0) {
		EXPECT_LE(1, kmsg_check(fd, _metadata->name));
	} else {
		TH_LOG("no /dev/kmsg (%s): kmsg_check() not tried", strerror(-fd));
	}
	ASSERT_EQ(0, unsetenv("MUSER_SELFTESTS_DIR"));
	kmsg_bad_forget();
	EXPECT_EQ(1, kmsg_is_bad("WARNING: CPU: 0"));
}

TEST_HARNESS_MAIN
