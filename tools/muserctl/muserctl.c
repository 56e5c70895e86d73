// SPDX-License-Identifier: BSD-3-Clause
/*
 * muserctl: look at and manage muser devices.
 *
 *   muserctl [--json] list            every device, one line each
 *   muserctl [--json] show UUID       one device, one attribute per line
 *   muserctl [--json] monitor [UUID]  events as they happen
 *   muserctl create [UUID]            a new device (prints its UUID)
 *   muserctl remove UUID
 *
 * list, show and monitor talk to muser.ko's generic netlink family "muser"
 * (<linux/muser.h>); create and remove write the mdev sysfs files.
 * Exit status: 0 success, 1 an error, 2 a usage error.
 */
#define _GNU_SOURCE	/* strerrorname_np() */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <linux/muser.h>
#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#ifndef MUSERCTL_VERSION
#define MUSERCTL_VERSION "unknown"
#endif

#define EXIT_USAGE	2

#define MUSER_CREATE	"/sys/class/muser/muser/mdev_supported_types/muser-1/create"
#define MDEV_DEVICES	"/sys/bus/mdev/devices"

static const char *prog = "muserctl";
static bool json;

static void errmsg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* --- help --- */

struct cmd {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);
};

static const struct cmd *find_cmd(const char *name);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--json] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  list             every muser device: UUID, state, emulator pid,\n"
		"                   VMM opens, pinned/mapped pages, requests/failed,\n"
		"                   restarts, last error\n"
		"  show UUID        one device, one attribute per line\n"
		"  monitor [UUID]   print events as they happen (of one device)\n"
		"  create [UUID]    create a device (a new UUID if none); print it\n"
		"  remove UUID      remove a device\n"
		"  help [COMMAND]   this help, or a command's\n"
		"\n"
		"Options:\n"
		"  -j, --json       list, show, monitor: JSON output\n"
		"  -h, --help       this help (after a command: its help)\n"
		"  -V, --version    the version\n"
		"\n"
		"Exit status: 0 success, 1 error, 2 usage error. See muserctl(8).\n",
		prog);
}

static void cmd_usage(FILE *f, const struct cmd *c)
{
	fprintf(f, "usage: %s [--json] %s%s%s\n%s", prog, c->name,
		*c->args ? " " : "", c->args, c->help);
}

/*
 * Options after a command: --json and --help. Returns the index of the
 * first operand, or -1 after printing help (done), or -2 (usage error).
 */
static int cmd_options(const struct cmd *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			cmd_usage(stdout, c);
			return -1;
		default:
			cmd_usage(stderr, c);
			return -2;
		}
	}
	return optind;
}

/* --- values --- */

static const char *const state_names[] = {
	[MUSER_DEV_NEW] = "new",
	[MUSER_DEV_ATTACHED] = "attached",
	[MUSER_DEV_WAITING] = "waiting",
	[MUSER_DEV_REMOVING] = "removing",
};

static const char *const event_names[] = {
	[MUSER_EVENT_CREATED] = "created",
	[MUSER_EVENT_REMOVED] = "removed",
	[MUSER_EVENT_EMULATOR_ATTACHED] = "emulator-attached",
	[MUSER_EVENT_EMULATOR_DETACHED] = "emulator-detached",
	[MUSER_EVENT_VMM_OPENED] = "vmm-opened",
	[MUSER_EVENT_VMM_CLOSED] = "vmm-closed",
	[MUSER_EVENT_DMA_UNMAPPED] = "dma-unmapped",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, uint32_t v,
			   char *buf, size_t len)
{
	if (v < n && names[v])
		return names[v];
	snprintf(buf, len, "unknown-%u", v);
	return buf;
}

/* "ETIMEDOUT" for 110; "none" for 0. */
static const char *errno_name(uint32_t e, char *buf, size_t len)
{
	const char *n;

	if (!e)
		return "none";
	n = e < INT_MAX ? strerrorname_np((int)e) : NULL;
	if (n)
		return n;
	snprintf(buf, len, "errno-%u", e);
	return buf;
}

/* Lower case, 8-4-4-4-12 hex digits; false if @s is no UUID. */
static bool parse_uuid(const char *s, char out[37])
{
	int i;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
			out[i] = '-';
		} else if ((s[i] >= '0' && s[i] <= '9') ||
			   (s[i] >= 'a' && s[i] <= 'f')) {
			out[i] = s[i];
		} else if (s[i] >= 'A' && s[i] <= 'F') {
			out[i] = s[i] - 'A' + 'a';
		} else {
			return false;
		}
	}
	out[36] = '\0';
	return true;
}

/* A JSON string: the kernel's strings are UUIDs, but be safe. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* --- generic netlink --- */

struct device {
	bool has[MUSER_ATTR_MAX + 1];
	char uuid[37];
	uint32_t state, pid, vmm_open, restarts, last_error;
	uint64_t pinned, mapped, requests, failed, devmem, devmem_budget;
	uint64_t posted, spun, slept;
	uint64_t ans_ring, ans_syscall;
};

struct request {
	int error;		/* errno from the kernel, 0 */
	char msg[256];		/* its extended ack message, or "" */
	bool done;
	int (*each)(struct nl_msg *msg, void *arg);
	void *arg;
	unsigned int count;
};

static struct nla_policy attr_policy[MUSER_ATTR_MAX + 1] = {
	[MUSER_ATTR_UUID] = { .type = NLA_STRING },
	[MUSER_ATTR_STATE] = { .type = NLA_U32 },
	[MUSER_ATTR_EMULATOR_PID] = { .type = NLA_U32 },
	[MUSER_ATTR_VMM_OPEN] = { .type = NLA_U32 },
	[MUSER_ATTR_PINNED_PAGES] = { .type = NLA_U64 },
	[MUSER_ATTR_MAPPED_PAGES] = { .type = NLA_U64 },
	[MUSER_ATTR_REQUESTS] = { .type = NLA_U64 },
	[MUSER_ATTR_REQUESTS_FAILED] = { .type = NLA_U64 },
	[MUSER_ATTR_RESTARTS] = { .type = NLA_U32 },
	[MUSER_ATTR_LAST_ERROR] = { .type = NLA_U32 },
	[MUSER_ATTR_EVENT] = { .type = NLA_U32 },
	[MUSER_ATTR_IOVA] = { .type = NLA_U64 },
	[MUSER_ATTR_SIZE] = { .type = NLA_U64 },
	[MUSER_ATTR_DEVMEM_PAGES] = { .type = NLA_U64 },
	[MUSER_ATTR_DEVMEM_BUDGET] = { .type = NLA_U64 },
	[MUSER_ATTR_REQUESTS_POSTED] = { .type = NLA_U64 },
	[MUSER_ATTR_WAITS_SPUN] = { .type = NLA_U64 },
	[MUSER_ATTR_WAITS_SLEPT] = { .type = NLA_U64 },
	[MUSER_ATTR_ANSWERS_RING] = { .type = NLA_U64 },
	[MUSER_ATTR_ANSWERS_SYSCALL] = { .type = NLA_U64 },
};

/* The kernel's error, with the message of its extended ack if any. */
static int error_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct nlmsghdr *h = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	struct request *r = arg;
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);

	(void)nla;
	r->error = e->error < 0 ? -e->error : e->error;
	r->msg[0] = '\0';
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return NL_STOP;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	off = NLMSG_ALIGN(off);
	if (off >= h->nlmsg_len - NLMSG_HDRLEN)
		return NL_STOP;
	if (!nla_parse(tb, NLMSGERR_ATTR_MAX,
		       (struct nlattr *)((char *)nlmsg_data(h) + off),
		       h->nlmsg_len - NLMSG_HDRLEN - off, NULL) &&
	    tb[NLMSGERR_ATTR_MSG])
		nla_strlcpy(r->msg, tb[NLMSGERR_ATTR_MSG], sizeof(r->msg));
	return NL_STOP;
}

static int finish_cb(struct nl_msg *msg, void *arg)
{
	struct request *r = arg;

	(void)msg;
	r->done = true;
	return NL_STOP;
}

static int valid_cb(struct nl_msg *msg, void *arg)
{
	struct request *r = arg;

	r->count++;
	return r->each(msg, r->arg);
}

static struct nl_sock *nl_open(int *family)
{
	struct nl_sock *sk;
	int one = 1, ret;

	sk = nl_socket_alloc();
	if (!sk) {
		errmsg("out of memory");
		return NULL;
	}
	ret = genl_connect(sk);
	if (ret < 0) {
		errmsg("cannot open a generic netlink socket: %s",
		       nl_geterror(ret));
		goto err;
	}
	/* Error messages from the kernel, without our request echoed. */
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one,
		   sizeof(one));
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one,
		   sizeof(one));
	nl_socket_enable_msg_peek(sk);
	*family = genl_ctrl_resolve(sk, MUSER_GENL_NAME);
	if (*family == -NLE_OBJ_NOTFOUND) {
		errmsg("muser.ko is not loaded (no generic netlink family '%s')",
		       MUSER_GENL_NAME);
		goto err;
	}
	if (*family < 0) {
		errmsg("cannot resolve generic netlink family '%s': %s",
		       MUSER_GENL_NAME, nl_geterror(*family));
		goto err;
	}
	return sk;
err:
	nl_socket_free(sk);
	return NULL;
}

/*
 * GET_DEVICE for @uuid, or a dump if it is NULL; @each gets every reply.
 * Returns 0 or an errno (r->error, r->msg say what the kernel said).
 */
static int get_devices(const char *uuid, struct request *r)
{
	struct nl_sock *sk;
	struct nl_msg *msg = NULL;
	struct nl_cb *cb = NULL;
	int family, ret;

	sk = nl_open(&family);
	if (!sk)
		return -1;
	msg = nlmsg_alloc();
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!msg || !cb) {
		errmsg("out of memory");
		ret = -1;
		goto out;
	}
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0,
			 uuid ? 0 : NLM_F_DUMP, MUSER_CMD_GET_DEVICE,
			 MUSER_GENL_VERSION) ||
	    (uuid && nla_put_string(msg, MUSER_ATTR_UUID, uuid))) {
		errmsg("cannot build the request");
		ret = -1;
		goto out;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, valid_cb, r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, finish_cb, r);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, finish_cb, r);
	nl_cb_err(cb, NL_CB_CUSTOM, error_cb, r);
	ret = nl_send_auto(sk, msg);
	if (ret < 0) {
		errmsg("cannot send to the kernel: %s", nl_geterror(ret));
		ret = -1;
		goto out;
	}
	while (!r->done && !r->error) {
		ret = nl_recvmsgs(sk, cb);
		if (ret < 0 && !r->error) {
			errmsg("cannot receive from the kernel: %s",
			       nl_geterror(ret));
			ret = -1;
			goto out;
		}
	}
	ret = r->error;
out:
	nl_cb_put(cb);
	nlmsg_free(msg);
	nl_socket_free(sk);
	return ret;
}

/* The attributes of a GET_DEVICE or EVENT message; false if malformed. */
static bool parse_attrs(struct nl_msg *msg, uint8_t cmd,
			struct nlattr *tb[MUSER_ATTR_MAX + 1])
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct genlmsghdr *g = genlmsg_hdr(h);

	return g->cmd == cmd &&
	       !genlmsg_parse(h, 0, tb, MUSER_ATTR_MAX, attr_policy);
}

static void parse_device(struct nlattr *tb[], struct device *d)
{
	int i;

	memset(d, 0, sizeof(*d));
	for (i = 0; i <= MUSER_ATTR_MAX; i++)
		d->has[i] = tb[i] != NULL;
	if (tb[MUSER_ATTR_UUID])
		nla_strlcpy(d->uuid, tb[MUSER_ATTR_UUID], sizeof(d->uuid));
#define U32(a, f) if (tb[a]) d->f = nla_get_u32(tb[a])
#define U64(a, f) if (tb[a]) d->f = nla_get_u64(tb[a])
	U32(MUSER_ATTR_STATE, state);
	U32(MUSER_ATTR_EMULATOR_PID, pid);
	U32(MUSER_ATTR_VMM_OPEN, vmm_open);
	U64(MUSER_ATTR_PINNED_PAGES, pinned);
	U64(MUSER_ATTR_MAPPED_PAGES, mapped);
	U64(MUSER_ATTR_REQUESTS, requests);
	U64(MUSER_ATTR_REQUESTS_FAILED, failed);
	U32(MUSER_ATTR_RESTARTS, restarts);
	U32(MUSER_ATTR_LAST_ERROR, last_error);
	U64(MUSER_ATTR_DEVMEM_PAGES, devmem);
	U64(MUSER_ATTR_DEVMEM_BUDGET, devmem_budget);
	U64(MUSER_ATTR_REQUESTS_POSTED, posted);
	U64(MUSER_ATTR_WAITS_SPUN, spun);
	U64(MUSER_ATTR_WAITS_SLEPT, slept);
	U64(MUSER_ATTR_ANSWERS_RING, ans_ring);
	U64(MUSER_ATTR_ANSWERS_SYSCALL, ans_syscall);
#undef U32
#undef U64
}

/* JSON object of a device, on one line. */
static void print_device_json(const struct device *d)
{
	char buf[32];

	printf("{\"uuid\":");
	json_str(d->uuid);
	printf(",\"state\":\"%s\",\"emulator_pid\":%u,\"vmm_open\":%u,"
	       "\"pinned_pages\":%llu,\"mapped_pages\":%llu,"
	       "\"requests\":%llu,\"requests_failed\":%llu,\"restarts\":%u,"
	       "\"last_error\":",
	       name_of(state_names, ARRAY_SIZE(state_names), d->state, buf,
		       sizeof(buf)),
	       d->pid, d->vmm_open, (unsigned long long)d->pinned,
	       (unsigned long long)d->mapped, (unsigned long long)d->requests,
	       (unsigned long long)d->failed, d->restarts);
	if (d->last_error)
		printf("\"%s\"", errno_name(d->last_error, buf, sizeof(buf)));
	else
		printf("null");
	printf(",\"last_errno\":%u,\"devmem_pages\":%llu,\"devmem_budget_pages\":%llu,"
	       "\"requests_posted\":%llu,\"waits_spun\":%llu,\"waits_slept\":%llu,"
	       "\"answers_ring\":%llu,\"answers_syscall\":%llu}",
	       d->last_error, (unsigned long long)d->devmem,
	       (unsigned long long)d->devmem_budget,
	       (unsigned long long)d->posted, (unsigned long long)d->spun,
	       (unsigned long long)d->slept, (unsigned long long)d->ans_ring,
	       (unsigned long long)d->ans_syscall);
}

/* --- list --- */

static void list_head(void)
{
	if (json)
		printf("[");
	else
		printf("%-36s  %-8s  %7s  %4s  %15s  %15s  %8s  %s\n", "UUID",
		       "STATE", "PID", "OPEN", "PINNED/MAPPED  ",
		       "REQUESTS/FAILED", "RESTARTS", "LAST-ERROR");
}

static int list_one(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[MUSER_ATTR_MAX + 1];
	unsigned int *n = arg;
	char b1[32], b2[32];
	struct device d;

	if (!parse_attrs(msg, MUSER_CMD_GET_DEVICE, tb))
		return NL_SKIP;
	parse_device(tb, &d);
	if (!*n)
		list_head();
	if (json) {
		printf("%s\n  ", *n ? "," : "");
		print_device_json(&d);
	} else {
		printf("%-36s  %-8s  %7u  %4u  %7llu/%-7llu  %8llu/%-6llu  %8u  %s\n",
		       d.uuid,
		       name_of(state_names, ARRAY_SIZE(state_names), d.state,
			       b1, sizeof(b1)),
		       d.pid, d.vmm_open, (unsigned long long)d.pinned,
		       (unsigned long long)d.mapped,
		       (unsigned long long)d.requests,
		       (unsigned long long)d.failed, d.restarts,
		       errno_name(d.last_error, b2, sizeof(b2)));
	}
	(*n)++;
	return NL_OK;
}

static int cmd_list(int argc, char **argv)
{
	unsigned int n = 0;
	struct request r = { .each = list_one, .arg = &n };
	int ret;

	if (argc > 0) {
		errmsg("list takes no arguments");
		return EXIT_USAGE;
	}
	(void)argv;
	ret = get_devices(NULL, &r);
	if (!n && !ret)
		list_head();
	if (json && (n || !ret))
		printf("%s]\n", n ? "\n" : "");
	fflush(stdout);
	if (ret > 0)
		errmsg("list: %s", *r.msg ? r.msg : strerror(ret));
	return ret ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* --- show --- */

static int show_one(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[MUSER_ATTR_MAX + 1];

	if (!parse_attrs(msg, MUSER_CMD_GET_DEVICE, tb))
		return NL_SKIP;
	parse_device(tb, arg);
	return NL_OK;
}

static int cmd_show(int argc, char **argv)
{
	struct device d = { 0 };
	struct request r = { .each = show_one, .arg = &d };
	char uuid[37], buf[32];
	int ret;

	if (argc != 1) {
		errmsg("show takes one UUID");
		return EXIT_USAGE;
	}
	if (!parse_uuid(argv[0], uuid)) {
		errmsg("not a UUID: %s", argv[0]);
		return EXIT_USAGE;
	}
	ret = get_devices(uuid, &r);
	if (ret > 0) {
		errmsg("%s: %s", uuid, *r.msg ? r.msg : strerror(ret));
		return EXIT_FAILURE;
	}
	if (ret)
		return EXIT_FAILURE;
	if (!r.count) {
		errmsg("%s: no reply from the kernel", uuid);
		return EXIT_FAILURE;
	}
	if (json) {
		print_device_json(&d);
		putchar('\n');
		return EXIT_SUCCESS;
	}
	printf("uuid: %s\n", d.uuid);
	printf("state: %s\n", name_of(state_names, ARRAY_SIZE(state_names),
				      d.state, buf, sizeof(buf)));
	printf("emulator-pid: %u\n", d.pid);
	printf("vmm-open: %u\n", d.vmm_open);
	printf("pinned-pages: %llu\n", (unsigned long long)d.pinned);
	printf("mapped-pages: %llu\n", (unsigned long long)d.mapped);
	printf("requests: %llu\n", (unsigned long long)d.requests);
	printf("requests-failed: %llu\n", (unsigned long long)d.failed);
	printf("restarts: %u\n", d.restarts);
	printf("last-error: %s\n", errno_name(d.last_error, buf, sizeof(buf)));
	printf("devmem-pages: %llu\n", (unsigned long long)d.devmem);
	printf("devmem-budget-pages: %llu\n", (unsigned long long)d.devmem_budget);
	printf("requests-posted: %llu\n", (unsigned long long)d.posted);
	printf("waits-spun: %llu\n", (unsigned long long)d.spun);
	printf("waits-slept: %llu\n", (unsigned long long)d.slept);
	printf("answers-ring: %llu\n", (unsigned long long)d.ans_ring);
	printf("answers-syscall: %llu\n", (unsigned long long)d.ans_syscall);
	return EXIT_SUCCESS;
}

/* --- monitor --- */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int event_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[MUSER_ATTR_MAX + 1];
	const char *filter = arg, *uuid, *ev;
	char ts[64], zone[8], buf[32];
	struct timespec now;
	struct tm tm;

	if (!parse_attrs(msg, MUSER_CMD_EVENT, tb) || !tb[MUSER_ATTR_EVENT] ||
	    !tb[MUSER_ATTR_UUID])
		return NL_SKIP;
	uuid = nla_get_string(tb[MUSER_ATTR_UUID]);
	if (filter && strcmp(filter, uuid))
		return NL_OK;
	ev = name_of(event_names, ARRAY_SIZE(event_names),
		     nla_get_u32(tb[MUSER_ATTR_EVENT]), buf, sizeof(buf));

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ld%s",
		 now.tv_nsec / 1000000, zone);

	if (json) {
		printf("{\"time\":\"%s\",\"event\":\"%s\",\"uuid\":", ts, ev);
		json_str(uuid);
		if (tb[MUSER_ATTR_EMULATOR_PID])
			printf(",\"pid\":%u",
			       nla_get_u32(tb[MUSER_ATTR_EMULATOR_PID]));
		if (tb[MUSER_ATTR_IOVA])
			printf(",\"iova\":%llu", (unsigned long long)
			       nla_get_u64(tb[MUSER_ATTR_IOVA]));
		if (tb[MUSER_ATTR_SIZE])
			printf(",\"size\":%llu", (unsigned long long)
			       nla_get_u64(tb[MUSER_ATTR_SIZE]));
		printf("}\n");
	} else {
		printf("%s %s %s", ts, ev, uuid);
		if (tb[MUSER_ATTR_EMULATOR_PID])
			printf(" pid %u",
			       nla_get_u32(tb[MUSER_ATTR_EMULATOR_PID]));
		if (tb[MUSER_ATTR_IOVA])
			printf(" iova 0x%llx", (unsigned long long)
			       nla_get_u64(tb[MUSER_ATTR_IOVA]));
		if (tb[MUSER_ATTR_SIZE])
			printf(" size 0x%llx", (unsigned long long)
			       nla_get_u64(tb[MUSER_ATTR_SIZE]));
		putchar('\n');
	}
	fflush(stdout);
	return NL_OK;
}

static int cmd_monitor(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	char uuid[37], *filter = NULL;
	sigset_t block, orig;
	struct nl_sock *sk;
	struct pollfd pfd;
	int family, grp, ret, status = EXIT_FAILURE;

	if (argc > 1) {
		errmsg("monitor takes at most one UUID");
		return EXIT_USAGE;
	}
	if (argc == 1) {
		if (!parse_uuid(argv[0], uuid)) {
			errmsg("not a UUID: %s", argv[0]);
			return EXIT_USAGE;
		}
		filter = uuid;
	}

	/* SIGINT and SIGTERM only get through while waiting in ppoll(). */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	sk = nl_open(&family);
	if (!sk)
		return EXIT_FAILURE;
	grp = genl_ctrl_resolve_grp(sk, MUSER_GENL_NAME,
				    MUSER_GENL_MCGRP_EVENTS);
	if (grp < 0) {
		errmsg("no multicast group '%s' in family '%s': %s",
		       MUSER_GENL_MCGRP_EVENTS, MUSER_GENL_NAME,
		       nl_geterror(grp));
		goto out;
	}
	nl_socket_disable_seq_check(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, event_cb, filter);
	ret = nl_socket_add_membership(sk, grp);
	if (ret < 0) {
		errmsg("cannot subscribe to '%s': %s", MUSER_GENL_MCGRP_EVENTS,
		       nl_geterror(ret));
		goto out;
	}
	nl_socket_set_nonblocking(sk);

	pfd.fd = nl_socket_get_fd(sk);
	pfd.events = POLLIN;
	while (!stop) {
		if (ppoll(&pfd, 1, NULL, &orig) < 0) {
			if (errno == EINTR)
				continue;
			errmsg("poll: %s", strerror(errno));
			goto out;
		}
		ret = nl_recvmsgs_default(sk);
		if (ret == -NLE_NOMEM) {
			/* ENOBUFS: the socket overflowed; go on. */
			errmsg("events were lost (receive buffer overflow)");
		} else if (ret < 0 && ret != -NLE_AGAIN) {
			errmsg("cannot receive events: %s", nl_geterror(ret));
			goto out;
		}
	}
	/* What arrived before the signal still gets printed. */
	while (nl_recvmsgs_report(sk, nl_socket_get_cb(sk)) > 0)
		;
	status = EXIT_SUCCESS;
out:
	nl_socket_free(sk);
	return status;
}

/* --- create, remove --- */

/* Write @s to @path; 0 or an errno. */
static int write_file(const char *path, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = write(fd, s, len);
	if (n < 0)
		ret = errno;
	else if ((size_t)n != len)
		ret = EIO;
	if (close(fd) && !ret)
		ret = errno;
	return ret;
}

static void random_uuid(char out[37])
{
	unsigned char b[16];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(b)) {
		n = getrandom(b + got, sizeof(b) - got, 0);
		if (n > 0)
			got += n;
		else if (errno != EINTR)
			abort();
	}
	b[6] = (b[6] & 0x0f) | 0x40;	/* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

static int cmd_create(int argc, char **argv)
{
	char uuid[37], line[40];
	int ret;

	if (argc > 1) {
		errmsg("create takes at most one UUID");
		return EXIT_USAGE;
	}
	if (argc == 1 && !parse_uuid(argv[0], uuid)) {
		errmsg("not a UUID: %s", argv[0]);
		return EXIT_USAGE;
	}
	if (argc == 0)
		random_uuid(uuid);
	snprintf(line, sizeof(line), "%s\n", uuid);
	ret = write_file(MUSER_CREATE, line);
	if (ret == ENOENT) {
		errmsg("muser.ko is not loaded (no %s)", MUSER_CREATE);
		return EXIT_FAILURE;
	}
	if (ret) {
		errmsg("create %s: %s%s", uuid, strerror(ret),
		       ret == EEXIST ? " (an mdev with that UUID exists)" :
		       ret == EDQUOT || ret == ENOSPC ?
		       " (max_instances reached)" : "");
		return EXIT_FAILURE;
	}
	printf("%s\n", uuid);
	return EXIT_SUCCESS;
}

static int cmd_remove(int argc, char **argv)
{
	char uuid[37], path[PATH_MAX], type[PATH_MAX];
	const char *base;
	ssize_t n;
	int ret;

	if (argc != 1) {
		errmsg("remove takes one UUID");
		return EXIT_USAGE;
	}
	if (!parse_uuid(argv[0], uuid)) {
		errmsg("not a UUID: %s", argv[0]);
		return EXIT_USAGE;
	}
	/* Only muser's mdevs: mdev_type links to .../muser-1. */
	snprintf(path, sizeof(path), MDEV_DEVICES "/%s/mdev_type", uuid);
	n = readlink(path, type, sizeof(type) - 1);
	if (n < 0) {
		errmsg("%s: %s", uuid, errno == ENOENT ?
		       "no mdev with that UUID" : strerror(errno));
		return EXIT_FAILURE;
	}
	type[n] = '\0';
	base = strrchr(type, '/');
	base = base ? base + 1 : type;
	if (strncmp(base, "muser-", 6)) {
		errmsg("%s: not a muser device (mdev type %s)", uuid, base);
		return EXIT_FAILURE;
	}
	snprintf(path, sizeof(path), MDEV_DEVICES "/%s/remove", uuid);
	ret = write_file(path, "1\n");
	if (ret) {
		errmsg("remove %s: %s", uuid, strerror(ret));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

/* --- main --- */

static int cmd_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "list", "", "Every muser device, one line each (--json: an array).\n",
	  cmd_list },
	{ "show", "UUID",
	  "One device, one attribute per line (--json: an object).\n",
	  cmd_show },
	{ "monitor", "[UUID]",
	  "Print muser events as they happen, one line each with a timestamp\n"
	  "(--json: one object per line), only those of UUID if given.\n"
	  "Stops on SIGINT or SIGTERM.\n", cmd_monitor },
	{ "create", "[UUID]",
	  "Create a muser device with UUID, or a new random UUID; print it.\n",
	  cmd_create },
	{ "remove", "UUID",
	  "Remove a muser device (waits until its VMM has closed it).\n",
	  cmd_remove },
	{ "help", "[COMMAND]", "The help, or a command's.\n", cmd_help },
};

static const struct cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

static int cmd_help(int argc, char **argv)
{
	const struct cmd *c;

	if (argc == 0) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	c = argc == 1 ? find_cmd(argv[0]) : NULL;
	if (!c) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd_usage(stdout, c);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmd *c;
	int opt, first;

	while ((opt = getopt_long(argc, argv, "+jhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("muserctl %s (generic netlink family %s version %d)\n",
			       MUSERCTL_VERSION, MUSER_GENL_NAME,
			       MUSER_GENL_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	c = find_cmd(argv[optind]);
	if (!c) {
		errmsg("unknown command '%s' (see %s --help)", argv[optind],
		       prog);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	first = cmd_options(c, argc, argv);
	if (first == -1)
		return EXIT_SUCCESS;
	if (first < 0)
		return EXIT_USAGE;
	return c->run(argc - first, argv + first);
}
