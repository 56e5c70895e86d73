// SPDX-License-Identifier: BSD-3-Clause
/*
 * The public setup calls: argument checking and errno values, creation
 * from a UUID or a path, realize failures, logging, the private pointer.
 */
#include <errno.h>
#include <string.h>

#include "fake_kernel.h"
#include "test.h"

int test_failures;

static void test_bar_arguments(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = fake_dev_new(fk);

	CHECK_ERR(muser_setup_bar(dev, -1, 0x100, MUSER_BAR_MEM32, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 6, 0x100, MUSER_BAR_MEM32, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 5, 0x100, MUSER_BAR_MEM64, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 0x100, 0, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 0x100, MUSER_BAR_PREFETCH, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 0x100, MUSER_BAR_MEM32 | MUSER_BAR_IO,
				  NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 0x100, MUSER_BAR_IO | MUSER_BAR_PREFETCH,
				  NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 0x100, MUSER_BAR_MEM32 | (1u << 7),
				  NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 0, MUSER_BAR_MEM32, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 0x300, MUSER_BAR_MEM32, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 8, MUSER_BAR_MEM32, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 1ull << 32, MUSER_BAR_MEM32, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 2, MUSER_BAR_IO, NULL, NULL), EINVAL);
	CHECK_ERR(muser_setup_bar(dev, 0, 512, MUSER_BAR_IO, NULL, NULL), EINVAL);

	CHECK_EQ(muser_setup_bar(dev, 0, 1ull << 32, MUSER_BAR_MEM64, NULL, NULL), 0);
	CHECK_ERR(muser_setup_bar(dev, 0, 0x100, MUSER_BAR_MEM32, NULL, NULL), EEXIST);
	CHECK_ERR(muser_setup_bar(dev, 1, 0x100, MUSER_BAR_MEM32, NULL, NULL), EEXIST);
	CHECK_EQ(muser_setup_bar(dev, 3, 0x100, MUSER_BAR_MEM32, NULL, NULL), 0);
	CHECK_ERR(muser_setup_bar(dev, 2, 0x100, MUSER_BAR_MEM64, NULL, NULL), EEXIST);
	CHECK_EQ(muser_setup_bar(dev, 4, 1ull << 63, MUSER_BAR_MEM64, NULL, NULL), 0);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_pci_arguments(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = fake_dev_new(fk);

	muser_set_log(dev, NULL, LOG_EMERG);
	CHECK_ERR(muser_realize(dev), EINVAL);		/* no IDs */
	CHECK(!fk->attached);
	CHECK_ERR(muser_pci_set_ids(dev, 0, 1, 2, 3), EINVAL);
	CHECK_ERR(muser_pci_set_ids(dev, 0xffff, 1, 2, 3), EINVAL);
	CHECK_ERR(muser_pci_set_class(dev, 0x1000000), EINVAL);
	CHECK_ERR(muser_pci_set_irq_pin(dev, 5), EINVAL);
	CHECK_EQ(muser_pci_set_irq_pin(dev, 4), 0);

	CHECK_EQ(muser_pci_set_ids(dev, 0x494f, 1, 2, 3), 0);
	fk->attach_errno = EBUSY;			/* another emulator */
	CHECK_ERR(muser_realize(dev), EBUSY);
	fk->attach_errno = 0;
	CHECK_EQ(muser_realize(dev), 0);

	CHECK_ERR(muser_pci_set_ids(dev, 0x494f, 1, 2, 3), EBUSY);
	CHECK_ERR(muser_pci_set_class(dev, 0), EBUSY);
	CHECK_ERR(muser_pci_set_revision(dev, 0), EBUSY);
	CHECK_ERR(muser_pci_set_irq_pin(dev, 0), EBUSY);
	CHECK_ERR(muser_setup_bar(dev, 2, 0x100, MUSER_BAR_MEM32, NULL, NULL), EBUSY);
	CHECK_ERR(muser_set_config_cb(dev, NULL, NULL), EBUSY);
	CHECK_ERR(muser_set_reset_cb(dev, NULL, NULL), EBUSY);
	CHECK_ERR(muser_realize(dev), EBUSY);
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

static void test_create(void)
{
	struct muser_dev *dev;

	CHECK_NULL_ERR(muser_dev_create("not-a-uuid", 0), EINVAL);
	CHECK_NULL_ERR(muser_dev_create("../../../../../../../dev/null", 0), EINVAL);
	CHECK_NULL_ERR(muser_dev_create("0b7cd2a0-34a0-4f4e-9a9a-1a2b3c4d5e6", 0), EINVAL);
	CHECK_NULL_ERR(muser_dev_create("0b7cd2a0-34a0-4f4e-9a9a-1a2b3c4d5e6f0", 0), EINVAL);
	CHECK_NULL_ERR(muser_dev_create("0b7cd2a0x34a0-4f4e-9a9a-1a2b3c4d5e6f", 0), EINVAL);
	CHECK_NULL_ERR(muser_dev_create("0b7cd2a0-34a0-4f4e-9a9a-1a2b3c4d5e6g", 0), EINVAL);
	CHECK_NULL_ERR(muser_dev_create(NULL, 0), EINVAL);
	/* a well-formed UUID without such a device */
	CHECK_NULL_ERR(muser_dev_create("0B7CD2A0-34a0-4f4e-9a9a-1a2b3c4d5e6f", 0), ENOENT);
	CHECK_NULL_ERR(muser_dev_create_path("/nonexistent/x", 0), ENOENT);
	CHECK_NULL_ERR(muser_dev_create_path("/dev/null", 1), EINVAL);

	/* any file opens; attaching to a non-muser file fails like ioctl(2) */
	dev = muser_dev_create_path("/dev/null", 0);
	CHECK(dev != NULL);
	if (!dev)
		return;
	CHECK(muser_get_poll_fd(dev) >= 0);
	CHECK_EQ(strcmp(dev->name, "null"), 0);
	muser_set_log(dev, NULL, LOG_EMERG);
	CHECK_EQ(muser_pci_set_ids(dev, 0x494f, 0x0dc8, 0x494f, 0x0dc8), 0);
	CHECK_ERR(muser_realize(dev), ENOTTY);
	CHECK_ERR(muser_run(dev), EINVAL);
	muser_dev_destroy(dev);
	muser_dev_destroy(NULL);
}

struct log_capture {
	unsigned int n;
	int level;
	char msg[128];
};

static struct log_capture cap;

static void capture(struct muser_dev *dev, int level, const char *msg)
{
	(void)dev;
	cap.n++;
	cap.level = level;
	snprintf(cap.msg, sizeof(cap.msg), "%s", msg);
}

static void test_log_and_priv(void)
{
	struct fake_kernel *fk = fake_kernel_new();
	struct muser_dev *dev = fake_dev_new(fk);
	int x;

	CHECK_ERR(muser_set_log(dev, capture, -1), EINVAL);
	CHECK_ERR(muser_set_log(dev, capture, 8), EINVAL);
	CHECK_EQ(muser_set_log(dev, capture, LOG_INFO), 0);
	muser_log(dev, LOG_DEBUG, "dropped %d", 1);
	CHECK_EQ(cap.n, 0);
	errno = 42;
	muser_log(dev, LOG_ERR, "kept %d", 2);
	CHECK_EQ(errno, 42);
	CHECK_EQ(cap.n, 1);
	CHECK_EQ(cap.level, LOG_ERR);
	CHECK_EQ(strcmp(cap.msg, "kept 2"), 0);

	CHECK(muser_dev_get_priv(dev) == NULL);
	CHECK_EQ(muser_dev_set_priv(dev, &x), 0);
	CHECK(muser_dev_get_priv(dev) == &x);
	CHECK(!muser_req_replayed(dev));
	muser_dev_destroy(dev);
	fake_kernel_free(fk);
}

int main(void)
{
	RUN(test_bar_arguments);
	RUN(test_pci_arguments);
	RUN(test_create);
	RUN(test_log_and_priv);
	TEST_MAIN_END();
}
