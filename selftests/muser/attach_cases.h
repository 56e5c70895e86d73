/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Attach validation as a kselftest fixture over variants: each case edits
 * a known-good layout and says whether MUSER_IOC_ATTACH accepts it. A
 * refused attach must leave the device free for a good one.
 *
 *   ATTACH_FIXTURE(layout, layout_default);
 *   ATTACH_CASE(layout, argsz_zero, -EINVAL, info->argsz = 0);
 *   ATTACH_TEST(layout);
 *
 * Include after harness.h and common.h.
 */
#ifndef MUSER_ATTACH_CASES_H
#define MUSER_ATTACH_CASES_H

#define ATTACH_FIXTURE(fx, good_layout)					\
	static void (*const fx##_known_good)(struct muser_device_info *) =	\
		good_layout;						\
	FIXTURE(fx) {							\
		char uuid[UUID_LEN + 1];				\
		bool created;						\
		int ctl;						\
		int kmsg;						\
	};								\
	FIXTURE_VARIANT(fx) {						\
		void (*modify)(struct muser_device_info *info);		\
		int expect;	/* 0 or -errno */			\
	};								\
	FIXTURE_SETUP(fx)						\
	{								\
		int ret;						\
									\
		self->ctl = -1;						\
		self->kmsg = -1;					\
		REQUIRE_MUSER();					\
		self->kmsg = kmsg_start(_metadata->name);		\
		ret = mdev_create(self->uuid);				\
		ASSERT_EQ(0, ret) TH_LOG("create mdev: %s",		\
					 strerror(-ret));		\
		self->created = true;					\
		self->ctl = ctl_open(self->uuid, 0);			\
		ASSERT_LE(0, self->ctl);				\
	}								\
	FIXTURE_TEARDOWN(fx)						\
	{								\
		if (self->ctl >= 0)					\
			close(self->ctl);				\
		if (self->created)					\
			EXPECT_EQ(0, mdev_remove(self->uuid));		\
		if (self->kmsg >= 0)					\
			EXPECT_EQ(0, kmsg_check(self->kmsg,		\
						_metadata->name));	\
	}

#define ATTACH_CASE(fx, name, expect_, body)				\
	static void fx##_##name(struct muser_device_info *info)	\
	{ body; }							\
	FIXTURE_VARIANT_ADD(fx, name) {					\
		.modify = fx##_##name, .expect = expect_,		\
	}

/* Room past the structure, for cases with a larger argsz. */
#define ATTACH_TEST(fx)							\
	TEST_F(fx, attach)						\
	{								\
		struct {						\
			struct muser_device_info info;			\
			uint8_t tail[64];				\
		} big;							\
									\
		SKIP_IF_SETUP_SKIPPED();				\
		memset(&big, 0, sizeof(big));				\
		fx##_known_good(&big.info);					\
		variant->modify(&big.info);				\
		EXPECT_EQ(variant->expect,				\
			  ctl_attach(self->ctl, &big.info));		\
		if (variant->expect) {					\
			fx##_known_good(&big.info);				\
			EXPECT_EQ(0, ctl_attach(self->ctl, &big.info));	\
		}							\
	}

#endif /* MUSER_ATTACH_CASES_H */
