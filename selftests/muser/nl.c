// SPDX-License-Identifier: GPL-2.0
/*
 * A raw generic netlink client of the "muser" family: a device's figures
 * (MUSER_CMD_GET_DEVICE) and dumps, without libnl.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include "common.h"

static int nl_send(int fd, uint16_t type, uint16_t flags, uint8_t cmd,
		   uint16_t attr, const void *val, size_t len)
{
	struct {
		struct nlmsghdr nh;
		struct genlmsghdr gh;
		char attrs[64];
	} msg;
	struct nlattr *na = (struct nlattr *)msg.attrs;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };

	memset(&msg, 0, sizeof(msg));
	msg.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	msg.nh.nlmsg_type = type;
	msg.nh.nlmsg_flags = NLM_F_REQUEST | flags;
	msg.nh.nlmsg_seq = 1;
	msg.gh.cmd = cmd;
	msg.gh.version = 1;
	if (attr) {
		na->nla_type = attr;
		na->nla_len = NLA_HDRLEN + len;
		memcpy((char *)na + NLA_HDRLEN, val, len);
		msg.nh.nlmsg_len += NLA_ALIGN(na->nla_len);
	}
	if (sendto(fd, &msg, msg.nh.nlmsg_len, 0, (struct sockaddr *)&to,
		   sizeof(to)) < 0)
		return -errno;
	return 0;
}

/*
 * Receive the answer: for each message, @each(attrs) is called; returns
 * the number of messages, or -errno from an NLMSG_ERROR.
 */
typedef void (*nl_each_fn)(struct nlattr *na, int len, void *arg);

static int nl_recv(int fd, nl_each_fn each, void *arg)
{
	static char buf[32768] __attribute__((aligned(4)));
	int count = 0;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *nh;

		if (n < 0)
			return -errno;
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_type == NLMSG_DONE)
				return count;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nh);

				return e->error ? e->error : count;
			}
			count++;
			each((struct nlattr *)((char *)NLMSG_DATA(nh) + GENL_HDRLEN),
			     nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN), arg);
			if (!(nh->nlmsg_flags & NLM_F_MULTI))
				return count;
		}
	}
}

#define NLA_FOR_EACH(na, len)						\
	for (; (len) >= (int)NLA_HDRLEN && (na)->nla_len >= NLA_HDRLEN && \
	       (na)->nla_len <= (len);					\
	     (len) -= NLA_ALIGN((na)->nla_len),				\
	     (na) = (struct nlattr *)((char *)(na) + NLA_ALIGN((na)->nla_len)))

static void *nla_data(struct nlattr *na)
{
	return (char *)na + NLA_HDRLEN;
}

static void family_each(struct nlattr *na, int len, void *arg)
{
	NLA_FOR_EACH(na, len)
		if (na->nla_type == CTRL_ATTR_FAMILY_ID)
			*(int *)arg = *(uint16_t *)nla_data(na);
}

/* A genetlink socket; *family gets muser's id. */
int nl_open(int *family)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	int ret;

	if (fd < 0)
		return -errno;
	*family = -1;
	ret = nl_send(fd, GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY,
		      CTRL_ATTR_FAMILY_NAME, MUSER_GENL_NAME,
		      sizeof(MUSER_GENL_NAME));
	if (!ret)
		ret = nl_recv(fd, family_each, family);
	if (ret < 0 || *family < 0) {
		close(fd);
		return ret < 0 ? ret : -ENOENT;
	}
	return fd;
}

static void device_each(struct nlattr *na, int len, void *arg)
{
	struct nl_figures *f = arg;

	NLA_FOR_EACH(na, len) {
		switch (na->nla_type) {
		case MUSER_ATTR_STATE:
			f->state = *(uint32_t *)nla_data(na);
			break;
		case MUSER_ATTR_PINNED_PAGES:
			memcpy(&f->pinned, nla_data(na), 8);
			break;
		case MUSER_ATTR_MAPPED_PAGES:
			memcpy(&f->mapped, nla_data(na), 8);
			break;
		case MUSER_ATTR_DEVMEM_PAGES:
			memcpy(&f->devmem_pages, nla_data(na), 8);
			f->has_devmem = true;
			break;
		case MUSER_ATTR_DEVMEM_BUDGET:
			memcpy(&f->devmem_budget, nla_data(na), 8);
			break;
		case MUSER_ATTR_REQUESTS:
			memcpy(&f->requests, nla_data(na), 8);
			break;
		case MUSER_ATTR_REQUESTS_FAILED:
			memcpy(&f->failed, nla_data(na), 8);
			break;
		case MUSER_ATTR_LAST_ERROR:
			f->last_error = *(uint32_t *)nla_data(na);
			break;
		case MUSER_ATTR_REQUESTS_POSTED:
			memcpy(&f->posted, nla_data(na), 8);
			break;
		case MUSER_ATTR_WAITS_SPUN:
			memcpy(&f->spun, nla_data(na), 8);
			break;
		case MUSER_ATTR_WAITS_SLEPT:
			memcpy(&f->slept, nla_data(na), 8);
			break;
		case MUSER_ATTR_ANSWERS_RING:
			memcpy(&f->answers_ring, nla_data(na), 8);
			f->has_answers = true;
			break;
		case MUSER_ATTR_ANSWERS_SYSCALL:
			memcpy(&f->answers_syscall, nla_data(na), 8);
			break;
		}
	}
}

int nl_get_device(int fd, int family, const char *uuid,
			 struct nl_figures *f)
{
	int ret;

	memset(f, 0, sizeof(*f));
	ret = nl_send(fd, family, 0, MUSER_CMD_GET_DEVICE, MUSER_ATTR_UUID,
		      uuid, UUID_LEN + 1);
	if (!ret)
		ret = nl_recv(fd, device_each, f);
	return ret < 0 ? ret : ret == 1 ? 0 : -EPROTO;
}

static void count_each(struct nlattr *na, int len, void *arg)
{
	(void)na;
	(void)len;
	(*(int *)arg)++;
}

/* A dump of every device: how many there are, or -errno. */
int nl_dump_count(int fd, int family)
{
	int n = 0, ret;

	ret = nl_send(fd, family, NLM_F_DUMP, MUSER_CMD_GET_DEVICE, 0, NULL, 0);
	if (!ret)
		ret = nl_recv(fd, count_each, &n);
	return ret < 0 ? ret : n;
}

int nl_figures(const char *uuid, struct nl_figures *f)
{
	int family, fd, ret;

	fd = nl_open(&family);
	if (fd < 0)
		return fd;
	ret = nl_get_device(fd, family, uuid, f);
	close(fd);
	return ret;
}
