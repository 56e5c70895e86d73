/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference muser.ko cares about, in one place.
 * Targets: Debian 12's 6.1 and 6.12 kernels.
 */
#ifndef MUSER_COMPAT_H
#define MUSER_COMPAT_H

#include <linux/version.h>
#include <linux/device.h>
#include <linux/eventfd.h>
#include <linux/vfio.h>

/* 6.2: class devnode callbacks take a const device. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
#define MUSER_DEVNODE_CONST
#else
#define MUSER_DEVNODE_CONST const
#endif

/* 6.4: class_create() lost its owner argument. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 4, 0)
#define muser_class_create(name) class_create(THIS_MODULE, name)
#else
#define muser_class_create(name) class_create(name)
#endif

/* 6.8: eventfd_signal() lost its count argument. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
#define muser_eventfd_signal(ctx) eventfd_signal(ctx, 1)
#else
#define muser_eventfd_signal(ctx) eventfd_signal(ctx)
#endif

/* 6.3: vma->vm_flags became read-only outside the mm helpers. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
#define muser_vm_flags_set(vma, flags) ((vma)->vm_flags |= (flags))
#define muser_vm_flags_clear(vma, flags) ((vma)->vm_flags &= ~(flags))
#else
#define muser_vm_flags_set(vma, flags) vm_flags_set(vma, flags)
#define muser_vm_flags_clear(vma, flags) vm_flags_clear(vma, flags)
#endif

/*
 * 6.2: the VFIO core frees the device itself and vfio_free_device() is gone;
 * before, ops->release was mandatory and had to call it. 6.2 also added the
 * iommufd ops an emulated-IOMMU device must provide when IOMMUFD is enabled.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
#define muser_vfio_free_device(vdev) vfio_free_device(vdev)
#define MUSER_VFIO_IOMMUFD_OPS
#else
#define muser_vfio_free_device(vdev) do { } while (0)
#define MUSER_VFIO_IOMMUFD_OPS					\
	.bind_iommufd = vfio_iommufd_emulated_bind,		\
	.unbind_iommufd = vfio_iommufd_emulated_unbind,		\
	.attach_ioas = vfio_iommufd_emulated_attach_ioas,	\
	.detach_ioas = vfio_iommufd_emulated_detach_ioas,
#endif

/*
 * 6.2: PRE_COPY, VFIO_MIG_GET_PRECOPY_INFO and VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
 * (which the core answers through migration_get_data_size). Before, the
 * core's state machine has no PRE_COPY states: muser offers STOP_COPY
 * alone, and answers the data size as a device feature of its own, which
 * QEMU 10 asks for. The uapi values are fixed: defined here for 6.1.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
#define VFIO_DEVICE_STATE_PRE_COPY	6
#define VFIO_MIG_GET_PRECOPY_INFO	_IO(VFIO_TYPE, VFIO_BASE + 21)
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE	9
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};
#define MUSER_MIG_FLAGS		VFIO_MIGRATION_STOP_COPY
#define MUSER_MIG_DATA_SIZE_OP
#define MUSER_DEVICE_FEATURE_OP	.device_feature = muser_mig_device_feature,
#else
#define MUSER_MIG_FLAGS		(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY)
#define MUSER_MIG_DATA_SIZE_OP	.migration_get_data_size = muser_mig_get_data_size,
#define MUSER_DEVICE_FEATURE_OP
#endif

#endif /* MUSER_COMPAT_H */
