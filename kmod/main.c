// SPDX-License-Identifier: GPL-2.0
/*
 * muser.ko: PCI devices emulated by userspace processes, served to VMMs
 * through VFIO as mediated devices.
 *
 * The module registers class "muser" with one parent device "muser" and
 * one mdev type, "muser-1". Each mdev is a VFIO device with an emulated
 * IOMMU plus a control node, /dev/muser/UUID, for its emulator.
 */
#include <linux/module.h>
#include <linux/slab.h>

#include "muser_mdev.h"

static unsigned int max_instances = 64;
module_param(max_instances, uint, 0444);
MODULE_PARM_DESC(max_instances, "Maximum number of muser devices (default 64)");

unsigned int muser_timeout_ms = 5000;
module_param_named(timeout_ms, muser_timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms,
		 "How long a VMM access waits for an emulator, in ms (default 5000)");

unsigned int muser_spin_us = 50;

static int muser_set_spin_us(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 0, MUSER_SPIN_MAX_US);
}

static const struct kernel_param_ops muser_spin_us_ops = {
	.set = muser_set_spin_us,
	.get = param_get_uint,
};
module_param_cb(spin_us, &muser_spin_us_ops, &muser_spin_us, 0644);
MODULE_PARM_DESC(spin_us,
		 "How long a VMM access spins for an answer before it sleeps, in us (default 50, 0: never, at most 1000)");

module_param_named(dma_budget_mb, muser_dma_budget_mb, uint, 0644);
MODULE_PARM_DESC(dma_budget_mb,
		 "Guest memory a new device may keep pinned, in MiB (default 1024)");

static int muser_set_devmem_budget(const char *val,
				   const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 0, MUSER_DEVMEM_MAX_BUDGET_MB);
}

static const struct kernel_param_ops muser_devmem_budget_ops = {
	.set = muser_set_devmem_budget,
	.get = param_get_uint,
};
module_param_cb(devmem_budget_mb, &muser_devmem_budget_ops,
		&muser_devmem_budget_mb, 0644);
MODULE_PARM_DESC(devmem_budget_mb,
		 "Device memory a new device may allocate, in MiB (default 64)");

struct class *muser_class;
static struct device *muser_parent_dev;
static struct mdev_parent muser_parent;

static struct mdev_type muser_type = {
	.sysfs_name = "1",
	.pretty_name = "muser: a PCI device emulated in userspace",
};

static struct mdev_type *muser_types[] = { &muser_type };

static const struct attribute_group *muser_dev_groups[] = {
	&muser_dma_group,
	&muser_devmem_group,
	NULL
};

static int muser_probe(struct mdev_device *mdev)
{
	struct muser_mdev *md;
	int ret;

	md = vfio_alloc_device(muser_mdev, vdev, &mdev->dev, &muser_vfio_ops);
	if (IS_ERR(md))
		return PTR_ERR(md);

	ret = vfio_register_emulated_iommu_dev(&md->vdev);
	if (ret)
		goto err_put_device;

	ret = muser_ctl_create(md, &mdev->dev);
	if (ret)
		goto err_unregister;

	dev_set_drvdata(&mdev->dev, md);
	muser_nl_add_device(md);
	muser_mdev_info(md, "created\n");
	return 0;

err_unregister:
	vfio_unregister_group_dev(&md->vdev);
err_put_device:
	vfio_put_device(&md->vdev);
	return ret;
}

static void muser_remove(struct mdev_device *mdev)
{
	struct muser_mdev *md = dev_get_drvdata(&mdev->dev);

	/*
	 * Waits for the VMM to close the device, asking it through the REQ
	 * irq; the emulator keeps serving it meanwhile.
	 */
	vfio_unregister_group_dev(&md->vdev);
	muser_ctl_destroy(md);
	muser_nl_del_device(md);
	muser_mdev_info(md, "removed\n");
	vfio_put_device(&md->vdev);
}

static ssize_t muser_show_description(struct mdev_type *mtype, char *buf)
{
	return sysfs_emit(buf, "PCI device emulated by a userspace process\n");
}

ssize_t muser_budget_mb_show(char *buf, unsigned long pages)
{
	return sysfs_emit(buf, "%lu\n", pages >> (20 - PAGE_SHIFT));
}

int muser_budget_mb_parse(const char *buf, unsigned int min_mb,
			  unsigned int max_mb, unsigned long *pages)
{
	unsigned int mb;
	int ret;

	ret = kstrtouint(buf, 0, &mb);
	if (ret)
		return ret;
	if (mb < min_mb || mb > max_mb)
		return -EINVAL;
	*pages = (unsigned long)mb << (20 - PAGE_SHIFT);
	return 0;
}

static struct mdev_driver muser_mdev_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = "muser",
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
		.dev_groups = muser_dev_groups,
	},
	.probe = muser_probe,
	.remove = muser_remove,
	.show_description = muser_show_description,
};

static int __init muser_init(void)
{
	int ret;

	if (!max_instances || max_instances > MINORMASK) {
		pr_err("max_instances must be 1..%u\n", MINORMASK);
		return -EINVAL;
	}
	muser_mdev_driver.max_instances = max_instances;

	muser_class = muser_class_create("muser");
	if (IS_ERR(muser_class))
		return PTR_ERR(muser_class);

	ret = muser_ctl_init();
	if (ret)
		goto err_destroy_class;

	ret = muser_nl_init();
	if (ret)
		goto err_ctl_exit;

	ret = mdev_register_driver(&muser_mdev_driver);
	if (ret)
		goto err_nl_exit;

	muser_parent_dev = device_create(muser_class, NULL, 0, NULL, "muser");
	if (IS_ERR(muser_parent_dev)) {
		ret = PTR_ERR(muser_parent_dev);
		goto err_unregister_driver;
	}

	ret = mdev_register_parent(&muser_parent, muser_parent_dev,
				   &muser_mdev_driver, muser_types,
				   ARRAY_SIZE(muser_types));
	if (ret)
		goto err_unregister_parent_dev;

	pr_info("loaded, API version %d\n", MUSER_API_VERSION);
	return 0;

err_unregister_parent_dev:
	device_unregister(muser_parent_dev);
err_unregister_driver:
	mdev_unregister_driver(&muser_mdev_driver);
err_nl_exit:
	muser_nl_exit();
err_ctl_exit:
	muser_ctl_exit();
err_destroy_class:
	class_destroy(muser_class);
	return ret;
}

static void __exit muser_exit(void)
{
	mdev_unregister_parent(&muser_parent);
	device_unregister(muser_parent_dev);
	mdev_unregister_driver(&muser_mdev_driver);
	muser_nl_exit();
	muser_ctl_exit();
	class_destroy(muser_class);
}

module_init(muser_init);
module_exit(muser_exit);

/* Page counts and device memory keys are built in unsigned long. */
static_assert(BITS_PER_LONG == 64, "muser.ko needs a 64-bit kernel");

MODULE_LICENSE("GPL");
MODULE_VERSION(MUSER_VERSION);
MODULE_DESCRIPTION("PCI devices emulated in userspace, served through VFIO");
MODULE_SOFTDEP("pre: vfio_iommu_type1");
