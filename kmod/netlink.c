// SPDX-License-Identifier: GPL-2.0
/*
 * The "muser" generic netlink family: devices and their figures on
 * request, and a multicast group of events (see <linux/muser.h>).
 */
#include <linux/list.h>
#include <linux/mutex.h>
#include <net/genetlink.h>

#include "muser_mdev.h"

/* Every device between probe and remove, for lookups and dumps. */
static LIST_HEAD(muser_devices);
static DEFINE_MUTEX(muser_devices_lock);

static struct genl_family muser_genl_family;

enum { MUSER_MCGRP_EVENTS };

static const struct genl_multicast_group muser_nl_mcgrps[] = {
	[MUSER_MCGRP_EVENTS] = { .name = MUSER_GENL_MCGRP_EVENTS },
};

static const struct nla_policy muser_nl_policy[MUSER_ATTR_MAX + 1] = {
	[MUSER_ATTR_UUID] = { .type = NLA_NUL_STRING, .len = UUID_STRING_LEN },
};

void muser_nl_add_device(struct muser_mdev *md)
{
	mutex_lock(&muser_devices_lock);
	list_add_tail(&md->node, &muser_devices);
	mutex_unlock(&muser_devices_lock);
	muser_nl_event(md, MUSER_EVENT_CREATED, 0, 0, 0);
}

void muser_nl_del_device(struct muser_mdev *md)
{
	mutex_lock(&muser_devices_lock);
	list_del(&md->node);
	mutex_unlock(&muser_devices_lock);
	muser_nl_event(md, MUSER_EVENT_REMOVED, 0, 0, 0);
}

static u32 muser_dev_state(struct muser_mdev *md)
{
	if (READ_ONCE(md->dead))
		return MUSER_DEV_REMOVING;
	if (READ_ONCE(md->emulator))
		return MUSER_DEV_ATTACHED;
	return muser_layout_ready(md) ? MUSER_DEV_WAITING : MUSER_DEV_NEW;
}

/*
 * The device's figures, read without the locks that order their updates:
 * nobody may stall the genl_mutex, held here, behind a device's pins.
 */
static int muser_nl_put_device(struct sk_buff *skb, struct muser_mdev *md)
{
	u64 requests, failed, posted, spun, slept, by_ring, by_syscall;
	u32 last_error;

	spin_lock(&md->req_lock);
	requests = md->nr_requests;
	failed = md->nr_failed;
	last_error = md->last_error;
	posted = md->nr_posted;
	spun = md->nr_spun;
	slept = md->nr_slept;
	by_ring = md->nr_answers_ring;
	by_syscall = md->nr_answers_syscall;
	spin_unlock(&md->req_lock);

	if (nla_put_string(skb, MUSER_ATTR_UUID, md->uuid) ||
	    nla_put_u32(skb, MUSER_ATTR_STATE, muser_dev_state(md)) ||
	    nla_put_u32(skb, MUSER_ATTR_EMULATOR_PID,
			READ_ONCE(md->emulator_pid)) ||
	    nla_put_u32(skb, MUSER_ATTR_VMM_OPEN, READ_ONCE(md->open_count)) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_PINNED_PAGES,
			      READ_ONCE(md->dma.pinned), MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_MAPPED_PAGES,
			      READ_ONCE(md->dma.mapped), MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_REQUESTS, requests,
			      MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_REQUESTS_FAILED, failed,
			      MUSER_ATTR_PAD) ||
	    nla_put_u32(skb, MUSER_ATTR_RESTARTS, READ_ONCE(md->restarts)) ||
	    nla_put_u32(skb, MUSER_ATTR_LAST_ERROR, last_error) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_DEVMEM_PAGES,
			      atomic_long_read(&md->devmem_pages),
			      MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_DEVMEM_BUDGET,
			      READ_ONCE(md->devmem_budget_pages),
			      MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_REQUESTS_POSTED, posted,
			      MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_WAITS_SPUN, spun,
			      MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_WAITS_SLEPT, slept,
			      MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_ANSWERS_RING, by_ring,
			      MUSER_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, MUSER_ATTR_ANSWERS_SYSCALL, by_syscall,
			      MUSER_ATTR_PAD))
		return -EMSGSIZE;
	return 0;
}

static int muser_nl_fill(struct sk_buff *skb, struct muser_mdev *md, u32 portid,
			 u32 seq, int flags)
{
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &muser_genl_family, flags,
			  MUSER_CMD_GET_DEVICE);
	if (!hdr)
		return -EMSGSIZE;
	if (muser_nl_put_device(skb, md)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

static int muser_nl_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct muser_mdev *md, *found = NULL;
	struct sk_buff *msg;
	int ret;

	if (!info->attrs[MUSER_ATTR_UUID]) {
		GENL_SET_ERR_MSG(info, "a device UUID is required (or dump them all)");
		return -EINVAL;
	}
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	mutex_lock(&muser_devices_lock);
	list_for_each_entry(md, &muser_devices, node) {
		if (!nla_strcmp(info->attrs[MUSER_ATTR_UUID], md->uuid)) {
			found = md;
			break;
		}
	}
	ret = found ? muser_nl_fill(msg, found, info->snd_portid,
				    info->snd_seq, 0) : -ENODEV;
	mutex_unlock(&muser_devices_lock);
	if (ret) {
		if (ret == -ENODEV)
			GENL_SET_ERR_MSG(info, "no muser device with that UUID");
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

/* cb->args[0]: how many devices earlier rounds of the dump sent. */
static int muser_nl_get_dumpit(struct sk_buff *skb,
			       struct netlink_callback *cb)
{
	long skip = cb->args[0], i = 0;
	struct muser_mdev *md;

	mutex_lock(&muser_devices_lock);
	list_for_each_entry(md, &muser_devices, node) {
		if (i++ < skip)
			continue;
		if (muser_nl_fill(skb, md, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, NLM_F_MULTI)) {
			i--;
			break;
		}
	}
	mutex_unlock(&muser_devices_lock);
	cb->args[0] = i;
	return skb->len;
}

static const struct genl_small_ops muser_nl_ops[] = {
	{
		.cmd = MUSER_CMD_GET_DEVICE,
		.doit = muser_nl_get_doit,
		.dumpit = muser_nl_get_dumpit,
	},
};

static struct genl_family muser_genl_family = {
	.name = MUSER_GENL_NAME,
	.version = MUSER_GENL_VERSION,
	.maxattr = MUSER_ATTR_MAX,
	.policy = muser_nl_policy,
	.module = THIS_MODULE,
	.small_ops = muser_nl_ops,
	.n_small_ops = ARRAY_SIZE(muser_nl_ops),
	.mcgrps = muser_nl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(muser_nl_mcgrps),
};

/*
 * Tell listeners: @pid for emulator events, @iova and @size for unmaps.
 * Nobody listening is fine; a lost event is only logged.
 */
void muser_nl_event(struct muser_mdev *md, u32 event, u32 pid, u64 iova,
		    u64 size)
{
	struct sk_buff *skb;
	void *hdr;
	int ret;

	if (!genl_has_listeners(&muser_genl_family, &init_net,
				MUSER_MCGRP_EVENTS))
		return;
	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!skb)
		goto err;
	hdr = genlmsg_put(skb, 0, 0, &muser_genl_family, 0, MUSER_CMD_EVENT);
	if (!hdr ||
	    nla_put_u32(skb, MUSER_ATTR_EVENT, event) ||
	    nla_put_string(skb, MUSER_ATTR_UUID, md->uuid) ||
	    ((event == MUSER_EVENT_EMULATOR_ATTACHED ||
	      event == MUSER_EVENT_EMULATOR_DETACHED) &&
	     nla_put_u32(skb, MUSER_ATTR_EMULATOR_PID, pid)) ||
	    (event == MUSER_EVENT_DMA_UNMAPPED &&
	     (nla_put_u64_64bit(skb, MUSER_ATTR_IOVA, iova, MUSER_ATTR_PAD) ||
	      nla_put_u64_64bit(skb, MUSER_ATTR_SIZE, size, MUSER_ATTR_PAD)))) {
		nlmsg_free(skb);
		goto err;
	}
	genlmsg_end(skb, hdr);
	ret = genlmsg_multicast(&muser_genl_family, skb, 0, MUSER_MCGRP_EVENTS,
				GFP_KERNEL);
	if (ret && ret != -ESRCH)
		goto err;
	return;
err:
	muser_mdev_err(md, "event %u lost\n", event);
}

int muser_nl_init(void)
{
	return genl_register_family(&muser_genl_family);
}

void muser_nl_exit(void)
{
	genl_unregister_family(&muser_genl_family);
}
