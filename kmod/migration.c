// SPDX-License-Identifier: GPL-2.0
/*
 * Migration v2 (vfio_migration_ops) for QEMU 8.0 and later, served by
 * driving the emulator's migration region: the region QEMU 7.2 drives by
 * itself with migration v1 (include/uapi/linux/muser.h, "Migration"). One
 * protocol reaches the emulator whichever the VMM speaks.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "muser_mdev.h"

#define MIG_FIELD(f)	offsetof(struct vfio_device_migration_info, f)

/* The most a session moves: what libmuser takes, at most. */
#define MUSER_MIG_MAX_STREAM	(4ULL << 30)

/*
 * Whether a data fd access must stop: a signal, the deadline (the whole
 * read() or write() gets timeout_ms, however the emulator answers), or a
 * reset or close waiting (md->mig.abort) to end the session.
 */
static int muser_mig_must_stop(struct muser_mdev *md, unsigned long deadline)
{
	if (fatal_signal_pending(current))
		return -EINTR;
	/* Restarted where it stopped: nothing moved is lost (see the callers). */
	if (signal_pending(current))
		return -ERESTARTSYS;
	if (atomic_read(&md->mig.abort))
		return -ENODEV;
	if (time_after(jiffies, deadline))
		return -ETIMEDOUT;
	return 0;
}

/*
 * struct muser_mig_file - one save or resume session: the data fd. Holds
 * a reference on the device, whose memory it reaches until it is freed;
 * it issues requests only while not @disabled, i.e. while the device is
 * open and the session current.
 *
 * md->mig.lock guards:
 * @disabled:   the session is over: reads and writes fail with ENODEV
 * @failed:     a request failed midway: where the stream is, is unknown,
 *              so reads and writes fail with EIO
 * @chunk_off:  saving: region offset of the next byte of the chunk
 * @chunk_left: saving: bytes of the chunk not read yet
 * @moved:      bytes read or written in the session, at most
 *              MUSER_MIG_MAX_STREAM
 */
struct muser_mig_file {
	struct muser_mdev *md;
	struct file *filp;
	bool disabled;
	bool failed;
	u64 chunk_off;
	u64 chunk_left;
	u64 moved;
};

/* What the emulator's region is told for each v2 state. */
static u32 muser_mig_v1_state(u32 state)
{
	switch (state) {
	case VFIO_DEVICE_STATE_RUNNING:
		return VFIO_DEVICE_STATE_V1_RUNNING;
	case VFIO_DEVICE_STATE_PRE_COPY:
		return VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING;
	case VFIO_DEVICE_STATE_STOP_COPY:
		return VFIO_DEVICE_STATE_V1_SAVING;
	case VFIO_DEVICE_STATE_RESUMING:
		return VFIO_DEVICE_STATE_V1_RESUMING;
	default:
		return VFIO_DEVICE_STATE_V1_STOP;
	}
}

static int muser_mig_rw(struct muser_mdev *md, u64 off, void *buf, u32 len,
			bool write)
{
	lockdep_assert_held(&md->mig.lock);
	return muser_request_rw(md, md->mig.region, off, buf, len, write);
}

static int muser_mig_read_u64(struct muser_mdev *md, u64 off, u64 *val)
{
	return muser_mig_rw(md, off, val, sizeof(*val), false);
}

static int muser_mig_write_u64(struct muser_mdev *md, u64 off, u64 val)
{
	return muser_mig_rw(md, off, &val, sizeof(val), true);
}

/* The session is over: it gives up the device's reference to its file. */
static void muser_mig_disable_locked(struct muser_mdev *md)
{
	struct muser_mig_file *mf = md->mig.file;

	lockdep_assert_held(&md->mig.lock);
	if (!mf)
		return;
	mf->disabled = true;
	md->mig.file = NULL;
	fput(mf->filp);
}

/* A data fd access gets timeout_ms in all, however the emulator answers. */
static unsigned long muser_mig_deadline(void)
{
	return jiffies + msecs_to_jiffies(READ_ONCE(muser_timeout_ms));
}

/* A data fd access: its bounce buffer, with mig.lock held; or ERR_PTR. */
static void *muser_mig_enter(struct muser_mdev *md)
{
	void *kbuf = kmalloc(MUSER_MAX_DATA, GFP_KERNEL_ACCOUNT);

	if (!kbuf)
		return ERR_PTR(-ENOMEM);
	if (mutex_lock_killable(&md->mig.lock)) {
		kfree(kbuf);
		return ERR_PTR(-EINTR);
	}
	return kbuf;
}

static void muser_mig_leave(struct muser_mdev *md, void *kbuf)
{
	mutex_unlock(&md->mig.lock);
	kfree(kbuf);
}

static int muser_mig_usable(struct muser_mig_file *mf)
{
	lockdep_assert_held(&mf->md->mig.lock);
	if (mf->disabled)
		return -ENODEV;
	return mf->failed ? -EIO : 0;
}

static u64 muser_mig_region_size(struct muser_mdev *md)
{
	return muser_region(&md->info, md->mig.region)->size;
}

/*
 * The next chunk of saved data, as a v1 VMM asks for it: reading
 * pending_bytes says the previous chunk is consumed. 1: a chunk is
 * ready; 0: no more data for now.
 */
static int muser_mig_next_chunk(struct muser_mdev *md,
				struct muser_mig_file *mf)
{
	u64 pending, off, size, region_size = muser_mig_region_size(md);
	int ret;

	ret = muser_mig_read_u64(md, MIG_FIELD(pending_bytes), &pending);
	if (ret || !pending)
		return ret;
	if (atomic_read(&md->mig.abort))
		return -ENODEV;
	ret = muser_mig_read_u64(md, MIG_FIELD(data_offset), &off);
	if (!ret)
		ret = muser_mig_read_u64(md, MIG_FIELD(data_size), &size);
	if (ret || !size)
		return ret;
	if (off < MUSER_MIG_HDR_SIZE || off >= region_size ||
	    size > region_size - off) {
		muser_mdev_err(md, "migration: emulator's chunk 0x%llx+0x%llx is outside its region\n",
			       off, size);
		return -EIO;
	}
	if (size > MUSER_MIG_MAX_STREAM - mf->moved) {
		muser_mdev_err(md, "migration: the emulator's stream is longer than %llu bytes\n",
			       MUSER_MIG_MAX_STREAM);
		return -EIO;
	}
	mf->moved += size;
	mf->chunk_off = off;
	mf->chunk_left = size;
	return 1;
}

static ssize_t muser_mig_read(struct file *filp, char __user *buf,
			      size_t len, loff_t *pos)
{
	unsigned long deadline = muser_mig_deadline();
	struct muser_mig_file *mf = filp->private_data;
	struct muser_mdev *md = mf->md;
	size_t done = 0;
	ssize_t ret = 0;
	void *kbuf;

	kbuf = muser_mig_enter(md);
	if (IS_ERR(kbuf))
		return PTR_ERR(kbuf);
	ret = muser_mig_usable(mf);
	while (!ret && done < len) {
		u32 n;

		ret = muser_mig_must_stop(md, deadline);
		if (ret)
			break;
		if (!mf->chunk_left) {
			ret = muser_mig_next_chunk(md, mf);
			if (ret <= 0) {
				/* The stream's position is unknown now. */
				mf->failed = ret < 0;
				break;
			}
			ret = 0;
		}
		n = min3(len - done, mf->chunk_left, (u64)MUSER_MAX_DATA);
		ret = muser_mig_rw(md, mf->chunk_off, kbuf, n, false);
		if (ret) {
			mf->failed = true;
			break;
		}
		if (copy_to_user(buf + done, kbuf, n)) {
			ret = -EFAULT;
			break;
		}
		mf->chunk_off += n;
		mf->chunk_left -= n;
		done += n;
	}
	/* The end of what pre-copy has for now is not the end of the stream. */
	if (!done && !ret && md->mig.state == VFIO_DEVICE_STATE_PRE_COPY)
		ret = -ENOMSG;
	muser_mig_leave(md, kbuf);
	return done ? done : ret;
}

/* Each write() is one or more chunks: the data, then its size. */
static ssize_t muser_mig_write(struct file *filp, const char __user *buf,
			       size_t len, loff_t *pos)
{
	unsigned long deadline = muser_mig_deadline();
	struct muser_mig_file *mf = filp->private_data;
	struct muser_mdev *md = mf->md;
	u64 off, room, fill = 0;
	size_t done = 0, committed = 0;
	int ret = 0;
	void *kbuf;

	kbuf = muser_mig_enter(md);
	if (IS_ERR(kbuf))
		return PTR_ERR(kbuf);
	ret = muser_mig_usable(mf) ?: muser_mig_must_stop(md, deadline);
	if (ret)
		goto out;
	if (len > MUSER_MIG_MAX_STREAM - mf->moved) {
		muser_mdev_err(md, "migration: the VMM's stream is longer than %llu bytes\n",
			       MUSER_MIG_MAX_STREAM);
		ret = -EFBIG;
		goto out;
	}
	ret = muser_mig_read_u64(md, MIG_FIELD(data_offset), &off);
	if (ret)
		goto out;
	room = muser_mig_region_size(md);
	if (off < MUSER_MIG_HDR_SIZE || off >= room) {
		muser_mdev_err(md, "migration: emulator's data offset 0x%llx is outside its region\n",
			       off);
		ret = -EIO;
		goto out;
	}
	room -= off;
	while (done < len) {
		u32 n = min3(len - done, room - fill, (u64)MUSER_MAX_DATA);

		ret = muser_mig_must_stop(md, deadline);
		if (ret)
			break;
		if (copy_from_user(kbuf, buf + done, n)) {
			ret = -EFAULT;
			break;
		}
		ret = muser_mig_rw(md, off + fill, kbuf, n, true);
		if (ret)
			break;
		fill += n;
		done += n;
		if (fill == room || done == len) {
			ret = muser_mig_write_u64(md, MIG_FIELD(data_size), fill);
			/* Refused, or lost: the emulator's stream is not the VMM's. */
			if (ret) {
				mf->failed = true;
				break;
			}
			committed = done;
			mf->moved += fill;
			fill = 0;
		}
	}
out:
	muser_mig_leave(md, kbuf);
	return committed ? committed : ret;
}

static long muser_mig_ioctl(struct file *filp, unsigned int cmd,
			    unsigned long arg)
{
	const unsigned long minsz = offsetofend(struct vfio_precopy_info,
						dirty_bytes);
	struct muser_mig_file *mf = filp->private_data;
	struct muser_mdev *md = mf->md;
	struct vfio_precopy_info info;
	int ret = 0;

	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	if (mutex_lock_killable(&md->mig.lock))
		return -EINTR;
	ret = muser_mig_usable(mf);
	if (ret)
		;
	else if (atomic_read(&md->mig.abort))
		ret = -ENODEV;
	else if (md->mig.state != VFIO_DEVICE_STATE_PRE_COPY)
		ret = -EINVAL;
	else if (mf->chunk_left)
		info.initial_bytes = mf->chunk_left;
	else
		ret = muser_mig_read_u64(md, MIG_FIELD(pending_bytes),
					 &info.initial_bytes);
	mutex_unlock(&md->mig.lock);
	if (ret)
		return ret;
	info.dirty_bytes = 0;
	return copy_to_user((void __user *)arg, &info, minsz) ? -EFAULT : 0;
}

static int muser_mig_release(struct inode *inode, struct file *filp)
{
	struct muser_mig_file *mf = filp->private_data;

	put_device(&mf->md->vdev.device);
	kfree(mf);
	return 0;
}

static const struct file_operations muser_mig_save_fops = {
	.owner = THIS_MODULE,
	.read = muser_mig_read,
	.unlocked_ioctl = muser_mig_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = muser_mig_release,
};

static const struct file_operations muser_mig_resume_fops = {
	.owner = THIS_MODULE,
	.write = muser_mig_write,
	.release = muser_mig_release,
};

static struct muser_mig_file *muser_mig_file_new(struct muser_mdev *md,
						 bool save)
{
	struct muser_mig_file *mf;
	struct file *filp;

	mf = kzalloc(sizeof(*mf), GFP_KERNEL_ACCOUNT);
	if (!mf)
		return ERR_PTR(-ENOMEM);
	mf->md = md;
	filp = anon_inode_getfile("[muser-migration]",
				  save ? &muser_mig_save_fops :
					 &muser_mig_resume_fops,
				  mf, save ? O_RDONLY : O_WRONLY);
	if (IS_ERR(filp)) {
		kfree(mf);
		return ERR_CAST(filp);
	}
	stream_open(file_inode(filp), filp);
	mf->filp = filp;
	get_device(&md->vdev.device);
	return mf;
}

/* One arc of the v2 state machine; a new data fd for the VMM, or NULL. */
static struct file *muser_mig_step(struct muser_mdev *md, u32 next)
{
	u32 cur = md->mig.state, v1 = muser_mig_v1_state(next);
	struct muser_mig_file *mf = NULL;
	int ret;

	lockdep_assert_held(&md->mig.lock);
	/* PRE_COPY -> STOP_COPY goes on with the same session. */
	if ((next == VFIO_DEVICE_STATE_STOP_COPY &&
	     cur != VFIO_DEVICE_STATE_PRE_COPY) ||
	    next == VFIO_DEVICE_STATE_PRE_COPY ||
	    next == VFIO_DEVICE_STATE_RESUMING) {
		mf = muser_mig_file_new(md, next != VFIO_DEVICE_STATE_RESUMING);
		if (IS_ERR(mf))
			return ERR_CAST(mf);
	}
	ret = muser_request_rw(md, md->mig.region, MIG_FIELD(device_state),
			       &v1, sizeof(v1), true);
	if (ret) {
		if (mf)
			fput(mf->filp);
		muser_mdev_err(md, "migration: the emulator refused state %u: %d\n",
			       next, ret);
		return ERR_PTR(ret);
	}
	if (next != VFIO_DEVICE_STATE_STOP_COPY || mf)
		muser_mig_disable_locked(md);
	if (!mf)
		return NULL;
	md->mig.file = mf;
	return get_file(mf->filp);
}

static struct file *muser_mig_set_state(struct vfio_device *vdev,
					enum vfio_device_mig_state new_state)
{
	struct muser_mdev *md = vdev_to_muser(vdev);
	struct file *filp = NULL;
	u32 next;
	int ret;

	if (!READ_ONCE(vdev->migration_flags))
		return ERR_PTR(-ENOTTY);
	if (mutex_lock_killable(&md->mig.lock))
		return ERR_PTR(-EINTR);
	/*
	 * The core refuses this arc, but 6.12 kernels before the stable fix
	 * "Terminate the skip loop on the ERROR sentinel" loop on it forever.
	 */
	if (md->mig.state == VFIO_DEVICE_STATE_STOP_COPY &&
	    new_state == VFIO_DEVICE_STATE_PRE_COPY) {
		mutex_unlock(&md->mig.lock);
		return ERR_PTR(-EINVAL);
	}
	while (md->mig.state != new_state) {
		ret = vfio_mig_get_next_state(vdev, md->mig.state, new_state,
					      &next);
		if (ret) {
			filp = ERR_PTR(ret);
			break;
		}
		filp = muser_mig_step(md, next);
		if (IS_ERR(filp))
			break;
		WRITE_ONCE(md->mig.state, next);
		/* Only the last arc of a request opens a session. */
		if (filp && next != new_state) {
			fput(filp);
			filp = ERR_PTR(-EINVAL);
			break;
		}
	}
	mutex_unlock(&md->mig.lock);
	return filp;
}

static int muser_mig_get_state(struct vfio_device *vdev,
			       enum vfio_device_mig_state *state)
{
	/* Without mig.lock: a data fd access may hold it for timeout_ms. */
	*state = READ_ONCE(vdev_to_muser(vdev)->mig.state);
	return 0;
}

int muser_mig_get_data_size(struct vfio_device *vdev, unsigned long *len)
{
	struct muser_mdev *md = vdev_to_muser(vdev);
	u64 size;
	int ret;

	if (!READ_ONCE(vdev->migration_flags))
		return -ENOTTY;
	if (mutex_lock_killable(&md->mig.lock))
		return -EINTR;
	ret = muser_mig_read_u64(md, MUSER_MIG_STOP_COPY_SIZE, &size);
	mutex_unlock(&md->mig.lock);
	if (ret)
		return ret;
	*len = size;
	return 0;
}

/* VFIO_DEVICE_FEATURE_MIG_DATA_SIZE where the core does not answer it. */
int muser_mig_device_feature(struct vfio_device *vdev, u32 flags,
			     void __user *arg, size_t argsz)
{
	struct vfio_device_feature_mig_data_size size = {};
	unsigned long len;
	int ret;

	if ((flags & VFIO_DEVICE_FEATURE_MASK) !=
	    VFIO_DEVICE_FEATURE_MIG_DATA_SIZE)
		return -ENOTTY;
	ret = vfio_check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET,
				 sizeof(size));
	if (ret != 1)
		return ret;
	ret = muser_mig_get_data_size(vdev, &len);
	if (ret)
		return ret;
	size.stop_copy_length = len;
	return copy_to_user(arg, &size, sizeof(size)) ? -EFAULT : 0;
}

static const struct vfio_migration_ops muser_mig_ops = {
	.migration_set_state = muser_mig_set_state,
	.migration_get_state = muser_mig_get_state,
	MUSER_MIG_DATA_SIZE_OP
};

void muser_mig_init(struct muser_mdev *md)
{
	mutex_init(&md->mig.lock);
	md->mig.state = VFIO_DEVICE_STATE_RUNNING;
}

/*
 * A new layout (md->lock), while no VMM has the device open, or the first
 * one. A device is migratable, as vfio-pci's are, only with a migration
 * region: the VFIO core answers the migration features for a device with
 * mig_ops, and ENOTTY without. So mig_ops follows the layout, set last:
 * a VMM that opened before the first layout may look at it meanwhile
 * (the core reads it unlocked), and must then find flags and region set.
 */
void muser_mig_set_layout(struct muser_mdev *md,
			  const struct muser_device_info *info)
{
	unsigned int i;
	u32 region = 0;

	lockdep_assert_held(&md->lock);
	for (i = 0; i < info->num_dev_regions; i++)
		if (muser_is_mig_region(&info->dev_regions[i]))
			region = MUSER_NUM_REGIONS + i;
	if (!region)
		WRITE_ONCE(md->vdev.mig_ops, NULL);
	WRITE_ONCE(md->mig.region, region);
	WRITE_ONCE(md->vdev.migration_flags, region ? MUSER_MIG_FLAGS : 0);
	if (region) {
		/* Pairs with the core's load of mig_ops: flags and region first. */
		smp_store_release(&md->vdev.mig_ops, &muser_mig_ops);
	}
}

/*
 * Opened, closed or reset: the device runs, and any session is over (the
 * emulator was told by the request that got here, or a VMM_CLOSE notice).
 */
void muser_mig_reset(struct muser_mdev *md)
{
	/* A data fd access in progress stops at its next request. */
	atomic_inc(&md->mig.abort);
	mutex_lock(&md->mig.lock);
	atomic_dec(&md->mig.abort);
	muser_mig_disable_locked(md);
	WRITE_ONCE(md->mig.state, VFIO_DEVICE_STATE_RUNNING);
	mutex_unlock(&md->mig.lock);
}

void muser_mig_destroy(struct muser_mdev *md)
{
	mutex_destroy(&md->mig.lock);
}
