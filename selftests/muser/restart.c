// SPDX-License-Identifier: GPL-2.0
/*
 * Restartable emulators: what the kernel keeps for the next emulator (the
 * state area, DMA pins, queued and replayed requests) and what libmuser
 * recovers from it (config space, MSI-X, the device's own registers kept
 * in muser_state()). The test is the VMM (a VFIO client); the emulators
 * are libmuser processes it forks and SIGKILLs (restart_emu.c).
 *
 *   state_area         the raw control node: the state area survives the
 *                      emulator; mmap rules (ENOTCONN, EINVAL); zero on a
 *                      new device
 *   lib_recovers_config  config space, MSI-X and a device register survive
 *                      SIGKILL; the VMM sees no change and no failure
 *   lib_new_description  a different device description is not recovered:
 *                      power-on config, the device's area zeroed
 *   kill_storm         hundreds of SIGKILLs at random points while VMM
 *                      threads write and read back: every access succeeds
 *                      and reads what was written; DMA pins are kept
 *   never_comes_back   no emulator: ETIMEDOUT after timeout_ms; the next
 *                      one recovers the state
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "harness.h"
#include "fixture.h"
#include "restart_emu.h"

#define BAR0		VFIO_PCI_BAR0_REGION_INDEX
#define CFG		VFIO_PCI_CONFIG_REGION_INDEX
#define PG		4096ul
#define READY_MS	20000	/* for an emulator to be ready */

#define GUEST_IOVA	(1ull << 30)
#define GUEST_SIZE	(8ul << 20)

/* Config values the VMM sets and expects back. */
#define T_COMMAND	0x0006		/* memory space, bus master */
#define T_INTLINE	0x0b
#define T_BAR0		0xfebf0000u
#define T_MSIX_CTRL	0xc000		/* MSI-X Enable, Function Mask */
#define T_MSIX_DATA	0xabcd1234u	/* vector 2's message data */
#define T_REG		0x10		/* a device register (BAR0) */
#define T_REG_VAL	0xdeadbeefu

#define MSIX_DATA_OFF(v)	(EMU_MSIX_TABLE + 16 * (v) + 8)

/* ---------------------------------------------------------------- helpers */

static int cfg_read(struct vfio_client *c, uint32_t off, void *v, size_t len)
{
	ssize_t n = region_read(c, CFG, off, v, len);

	return n < 0 ? (int)n : n == (ssize_t)len ? 0 : -EIO;
}

static int cfg_write(struct vfio_client *c, uint32_t off, const void *v,
		     size_t len)
{
	ssize_t n = region_write(c, CFG, off, v, len);

	return n < 0 ? (int)n : n == (ssize_t)len ? 0 : -EIO;
}

static int bar_read32(struct vfio_client *c, uint64_t off, uint32_t *v)
{
	ssize_t n = region_read(c, BAR0, off, v, 4);

	return n < 0 ? (int)n : n == 4 ? 0 : -EIO;
}

static int bar_write32(struct vfio_client *c, uint64_t off, uint32_t v)
{
	ssize_t n = region_write(c, BAR0, off, &v, 4);

	return n < 0 ? (int)n : n == 4 ? 0 : -EIO;
}

/* The MSI-X capability's offset, or -errno. */
static int find_msix(struct vfio_client *c)
{
	uint8_t ptr, hdr[2];
	int i, ret;

	ret = cfg_read(c, 0x34, &ptr, 1);
	for (i = 0; !ret && ptr && i < 48; i++) {
		ret = cfg_read(c, ptr, hdr, 2);
		if (!ret && hdr[0] == 0x11)
			return ptr;
		ptr = hdr[1];
	}
	return ret ? ret : -ENOENT;
}

static const char *status_str(int status, char *buf, size_t len)
{
	if (status < 0)
		snprintf(buf, len, "%s", strerror(-status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	return buf;
}

/* ---------------------------------------------------------------- fixture */

struct storm;

FIXTURE(rst) {
	struct rig r;		/* the emulator is a process, self->emu */
	struct emu_shared *sh;
	pid_t emu;
	struct storm *storm;
	uint8_t *guest;
};

FIXTURE_SETUP(rst)
{
	self->emu = -1;
	RIG_SETUP(&self->r, NULL, RIG_NO_CTL | RIG_NO_VMM);
	ASSERT_EQ(0, param_get("timeout_ms", &self->r.saved_timeout));
	self->sh = emu_shared_new();
	ASSERT_NE(NULL, self->sh);
}

static void storm_stop(struct storm *s);

FIXTURE_TEARDOWN(rst)
{
	if (self->storm) {
		storm_stop(self->storm);
		free(self->storm);
	}
	emu_kill(self->emu);
	self->emu = -1;
	vfio_client_close(&self->r.c);
	if (self->guest)
		munmap(self->guest, GUEST_SIZE);
	RIG_TEARDOWN(&self->r);
	if (self->sh) {
		EXPECT_EQ(0, self->sh->errors) TH_LOG("emulator: %s",
						      self->sh->last_error);
		emu_shared_free(self->sh);
	}
}

/* Fork an emulator (self->emu) and wait until it serves. */
static int start_emu(FIXTURE_DATA(rst) *self, uint16_t device_id,
		     uint64_t dma_iova, uint64_t dma_len,
		     struct emu_report *r)
{
	struct emu_cfg cfg = {
		.uuid = self->r.uuid, .device_id = device_id,
		.dma_iova = dma_iova, .dma_len = dma_len, .sh = self->sh,
	};
	int fd, ret;

	memset(r, 0, sizeof(*r));
	self->emu = emu_spawn(&cfg, &fd);
	if (self->emu < 0)
		return self->emu;
	ret = emu_wait_report(fd, r, READY_MS);
	close(fd);
	if (!ret && r->err) {
		fprintf(stderr, "# emulator: %s: %s\n", r->what,
			strerror(r->err));
		ret = -r->err;
	}
	return ret;
}

static void kill_emu(FIXTURE_DATA(rst) *self)
{
	emu_kill(self->emu);
	self->emu = -1;
}

/* ------------------------------------------------------------- state_area */

/*
 * The raw state area: kept across emulators of a device, mapped only by the
 * attached emulator, MAP_SHARED, within MUSER_STATE_SIZE; zero on a new
 * device.
 */
TEST_F(rst, state_area)
{
	struct muser_device_info layout;
	char other[UUID_LEN + 1];
	int ctl, ctl2, i;
	uint8_t *p;

	SKIP_IF_SETUP_SKIPPED();
	layout_default(&layout);
	ctl = ctl_open(self->r.uuid, 0);
	ASSERT_LE(0, ctl);
	ctl2 = ctl_open(self->r.uuid, 0);
	ASSERT_LE(0, ctl2);

	/* Nobody attached: nobody maps it. */
	EXPECT_EQ(NULL, map_fd(ctl, MUSER_STATE_OFFSET, PG, MAP_SHARED));
	EXPECT_EQ(ENOTCONN, errno);
	ASSERT_EQ(0, ctl_attach(ctl, &layout));
	/* Only the attached emulator. */
	EXPECT_EQ(NULL, map_fd(ctl2, MUSER_STATE_OFFSET, PG, MAP_SHARED));
	EXPECT_EQ(ENOTCONN, errno);

	p = map_fd(ctl, MUSER_STATE_OFFSET, MUSER_STATE_SIZE, MAP_SHARED);
	ASSERT_NE(NULL, p) TH_LOG("mmap of the state area: %m");
	for (i = 0; i < (int)(MUSER_STATE_SIZE / 8); i++)
		if (((uint64_t *)p)[i])
			break;
	EXPECT_EQ(MUSER_STATE_SIZE / 8, i) TH_LOG("not zero on a new device");
	memcpy(p, "first page", 11);
	memcpy(p + MUSER_STATE_SIZE / 2 + 123, "middle", 7);
	memcpy(p + MUSER_STATE_SIZE - 5, "last", 5);

	/* Bad mappings. */
	EXPECT_EQ(NULL, map_fd(ctl, MUSER_STATE_OFFSET, PG, MAP_PRIVATE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, map_fd(ctl, MUSER_STATE_OFFSET + MUSER_STATE_SIZE, PG,
			       MAP_SHARED));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, map_fd(ctl, MUSER_STATE_OFFSET, MUSER_STATE_SIZE + PG,
			       MAP_SHARED));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, map_fd(ctl, MUSER_STATE_OFFSET + MUSER_STATE_SIZE - PG,
			       2 * PG, MAP_SHARED));
	EXPECT_EQ(EINVAL, errno);

	/* The emulator goes; the next one finds what it left. */
	EXPECT_EQ(0, munmap(p, MUSER_STATE_SIZE));
	EXPECT_EQ(0, close(ctl));
	ASSERT_EQ(0, ctl_attach(ctl2, &layout));
	p = map_fd(ctl2, MUSER_STATE_OFFSET + MUSER_STATE_SIZE / 2, MUSER_STATE_SIZE / 2,
		   MAP_SHARED);
	ASSERT_NE(NULL, p) TH_LOG("mmap of the state area: %m");
	EXPECT_STREQ("middle", (char *)p + 123);
	EXPECT_STREQ("last", (char *)p + MUSER_STATE_SIZE / 2 - 5);
	EXPECT_EQ(0, munmap(p, MUSER_STATE_SIZE / 2));
	p = map_fd(ctl2, MUSER_STATE_OFFSET, PG, MAP_SHARED);
	ASSERT_NE(NULL, p);
	EXPECT_STREQ("first page", (char *)p);
	memcpy(p, "second", 7);
	EXPECT_EQ(0, munmap(p, PG));

	/* Detach and attach on the same file. */
	EXPECT_EQ(0, ioctl(ctl2, MUSER_IOC_DETACH));
	EXPECT_EQ(NULL, map_fd(ctl2, MUSER_STATE_OFFSET, PG, MAP_SHARED));
	EXPECT_EQ(ENOTCONN, errno);
	ASSERT_EQ(0, ctl_attach(ctl2, &layout));
	p = map_fd(ctl2, MUSER_STATE_OFFSET, PG, MAP_SHARED);
	ASSERT_NE(NULL, p);
	EXPECT_STREQ("second", (char *)p);
	EXPECT_EQ(0, munmap(p, PG));
	EXPECT_EQ(0, close(ctl2));

	/* Another device has its own, zeroed. */
	ASSERT_EQ(0, mdev_create(other));
	ctl = ctl_open(other, 0);
	EXPECT_LE(0, ctl);
	if (ctl >= 0) {
		EXPECT_EQ(0, ctl_attach(ctl, &layout));
		p = map_fd(ctl, MUSER_STATE_OFFSET, MUSER_STATE_SIZE, MAP_SHARED);
		EXPECT_NE(NULL, p);
		if (p) {
			EXPECT_EQ(0, p[0]);
			EXPECT_EQ(0, p[MUSER_STATE_SIZE / 2 + 123]);
			EXPECT_EQ(0, p[MUSER_STATE_SIZE - 5]);
			munmap(p, MUSER_STATE_SIZE);
		}
		close(ctl);
	}
	EXPECT_EQ(0, mdev_remove(other));
}

/* ------------------------------------------------------ lib_recovers_config */

struct cfg_snap {
	uint16_t vendor, device, command, msix_ctrl;
	uint8_t intline;
	uint32_t bar0, msix_data, reg;
	uint8_t all[256];
};

static int snap(struct vfio_client *c, int msix, struct cfg_snap *s)
{
	int ret;

	memset(s, 0, sizeof(*s));
	ret = cfg_read(c, 0, &s->vendor, 2);
	ret = ret ?: cfg_read(c, 2, &s->device, 2);
	ret = ret ?: cfg_read(c, 4, &s->command, 2);
	ret = ret ?: cfg_read(c, 0x3c, &s->intline, 1);
	ret = ret ?: cfg_read(c, 0x10, &s->bar0, 4);
	ret = ret ?: cfg_read(c, msix + 2, &s->msix_ctrl, 2);
	ret = ret ?: bar_read32(c, MSIX_DATA_OFF(2), &s->msix_data);
	ret = ret ?: bar_read32(c, T_REG, &s->reg);
	ret = ret ?: cfg_read(c, 0, s->all, sizeof(s->all));
	return ret;
}

/* The VMM programs the device as a guest driver would. */
static void program(struct __test_metadata *_metadata, struct vfio_client *c,
		    int msix)
{
	uint16_t cmd = T_COMMAND, mc = T_MSIX_CTRL;
	uint32_t bar = T_BAR0;
	uint8_t line = T_INTLINE;

	ASSERT_EQ(0, cfg_write(c, 4, &cmd, 2));
	ASSERT_EQ(0, cfg_write(c, 0x3c, &line, 1));
	ASSERT_EQ(0, cfg_write(c, 0x10, &bar, 4));
	ASSERT_EQ(0, bar_write32(c, MSIX_DATA_OFF(2), T_MSIX_DATA));
	ASSERT_EQ(0, cfg_write(c, msix + 2, &mc, 2));
	ASSERT_EQ(0, bar_write32(c, T_REG, T_REG_VAL));
}

static void expect_programmed(struct __test_metadata *_metadata,
			      const struct cfg_snap *s, uint16_t device)
{
	EXPECT_EQ(EMU_VENDOR, s->vendor);
	EXPECT_EQ(device, s->device);
	EXPECT_EQ(T_COMMAND, s->command);
	EXPECT_EQ(T_INTLINE, s->intline);
	EXPECT_EQ(T_BAR0, s->bar0);
	EXPECT_EQ(T_MSIX_CTRL, s->msix_ctrl & 0xc000);
	EXPECT_EQ(EMU_MSIX_NVEC - 1, s->msix_ctrl & 0x7ff);
	EXPECT_EQ(T_MSIX_DATA, s->msix_data);
	EXPECT_EQ(T_REG_VAL, s->reg);
}

/*
 * SIGKILL the emulator of a programmed device, start another: it recovers
 * (muser_recovered(), its recover callback) and the VMM reads everything
 * back unchanged. An access made while no emulator runs waits for the new
 * one and succeeds.
 */
TEST_F(rst, lib_recovers_config)
{
	struct cfg_snap before, after;
	struct async_access a;
	struct emu_report r;
	int msix;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, 0, 0, &r));
	EXPECT_FALSE(r.recovered);
	EXPECT_FALSE(r.recover_cb);
	EXPECT_TRUE(r.state_zero);
	test_rig_open_vmm(&self->r);
	msix = find_msix(&self->r.c);
	ASSERT_LT(0, msix);
	program(_metadata, &self->r.c, msix);
	ASSERT_EQ(0, snap(&self->r.c, msix, &before));
	expect_programmed(_metadata, &before, EMU_DEVICE);

	kill_emu(self);
	ASSERT_EQ(0, async_start(&a, &self->r.c, BAR0, T_REG, 4, false));
	sleep_ms(200);
	EXPECT_FALSE(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));

	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, 0, 0, &r));
	EXPECT_TRUE(r.recovered);
	EXPECT_TRUE(r.recover_cb);
	EXPECT_EQ(4, async_join(&a));
	EXPECT_EQ(T_REG_VAL, *(uint32_t *)a.buf);

	ASSERT_EQ(0, snap(&self->r.c, msix, &after));
	expect_programmed(_metadata, &after, EMU_DEVICE);
	EXPECT_EQ(0, memcmp(before.all, after.all, sizeof(before.all)))
		TH_LOG("config space changed across the restart");

	/* Twice more, with the VMM changing the register in between. */
	ASSERT_EQ(0, bar_write32(&self->r.c, T_REG + 4, 0x5a5a0001));
	kill_emu(self);
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, 0, 0, &r));
	EXPECT_TRUE(r.recovered);
	kill_emu(self);
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, 0, 0, &r));
	EXPECT_TRUE(r.recovered);
	ASSERT_EQ(0, snap(&self->r.c, msix, &after));
	expect_programmed(_metadata, &after, EMU_DEVICE);
	EXPECT_EQ(0, bar_read32(&self->r.c, T_REG + 4, &after.reg));
	EXPECT_EQ(0x5a5a0001, after.reg);
	EXPECT_EQ(3, self->sh->recovered);
	EXPECT_EQ(1, self->sh->fresh);
	EXPECT_EQ(3, self->sh->recover_cbs);
}

/*
 * The next emulator describes another device (its device ID differs):
 * nothing is recovered, config space is at power-on values and the
 * device's part of the state area is zeroed.
 */
TEST_F(rst, lib_new_description)
{
	struct cfg_snap s;
	struct emu_report r;
	int msix;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, 0, 0, &r));
	test_rig_open_vmm(&self->r);
	msix = find_msix(&self->r.c);
	ASSERT_LT(0, msix);
	program(_metadata, &self->r.c, msix);
	kill_emu(self);

	ASSERT_EQ(0, start_emu(self, EMU_DEVICE + 1, 0, 0, &r));
	EXPECT_FALSE(r.recovered);
	EXPECT_FALSE(r.recover_cb);
	EXPECT_TRUE(r.state_zero) TH_LOG("the device's state area was not zeroed");
	ASSERT_EQ(0, snap(&self->r.c, msix, &s));
	EXPECT_EQ(EMU_VENDOR, s.vendor);
	EXPECT_EQ(EMU_DEVICE + 1, s.device);
	EXPECT_EQ(0, s.command);
	EXPECT_EQ(0, s.intline);
	EXPECT_EQ(0, s.bar0);
	EXPECT_EQ(0, s.msix_ctrl & 0xc000);
	EXPECT_EQ(0, s.msix_data);
	EXPECT_EQ(0, s.reg);

	/* And that one's state is recovered by the next of its kind. */
	program(_metadata, &self->r.c, msix);
	kill_emu(self);
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE + 1, 0, 0, &r));
	EXPECT_TRUE(r.recovered);
	ASSERT_EQ(0, snap(&self->r.c, msix, &s));
	expect_programmed(_metadata, &s, EMU_DEVICE + 1);
}

/* -------------------------------------------------------- never_comes_back */

#define NCB_TIMEOUT_MS	500

TEST_F(rst, never_comes_back)
{
	struct emu_report r;
	uint16_t cmd = T_COMMAND;
	uint32_t v;
	int64_t t0, dt;

	SKIP_IF_SETUP_SKIPPED();
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, 0, 0, &r));
	test_rig_open_vmm(&self->r);
	ASSERT_EQ(0, cfg_write(&self->r.c, 4, &cmd, 2));
	ASSERT_EQ(0, bar_write32(&self->r.c, T_REG, 0x11111111));

	ASSERT_EQ(0, rig_set_timeout(&self->r, NCB_TIMEOUT_MS));
	kill_emu(self);
	t0 = now_ms();
	EXPECT_EQ(-ETIMEDOUT, bar_read32(&self->r.c, T_REG, &v));
	dt = now_ms() - t0;
	EXPECT_LE(NCB_TIMEOUT_MS - 100, dt);
	EXPECT_GE(NCB_TIMEOUT_MS * 10, dt);
	/* Timed out before any emulator saw it: never delivered. */
	EXPECT_EQ(-ETIMEDOUT, bar_write32(&self->r.c, T_REG, 0x22222222));
	EXPECT_EQ(-ETIMEDOUT, cfg_read(&self->r.c, 4, &cmd, 2));
	t0 = now_ms();
	EXPECT_EQ(-1, ioctl(self->r.c.device, VFIO_DEVICE_RESET));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_LE(NCB_TIMEOUT_MS - 100, now_ms() - t0);
	TH_LOG("accesses failed with ETIMEDOUT after %lld ms", (long long)dt);

	ASSERT_EQ(0, param_set("timeout_ms", self->r.saved_timeout));
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, 0, 0, &r));
	EXPECT_TRUE(r.recovered);
	EXPECT_EQ(0, bar_read32(&self->r.c, T_REG, &v));
	EXPECT_EQ(0x11111111, v) TH_LOG("a timed-out write reached the device");
	cmd = 0;
	EXPECT_EQ(0, cfg_read(&self->r.c, 4, &cmd, 2));
	EXPECT_EQ(T_COMMAND, cmd);
	EXPECT_EQ(0, bar_write32(&self->r.c, T_REG, 0x33333333));
	EXPECT_EQ(0, bar_read32(&self->r.c, T_REG, &v));
	EXPECT_EQ(0x33333333, v);
}

/* -------------------------------------------------------------- kill_storm */

#define STORM_VMM_THREADS	2
#define STORM_MIN_KILLS		200
#define STORM_MIN_MS		10000
#define STORM_MAX_MS		150000
#define STORM_MAX_DELAY_MS	40

struct vmm_thread {
	pthread_t thread;
	bool started;
	int idx;
	int msix;
	struct vfio_client *c;
	volatile int *stop;
	uint32_t last;		/* last value written to its register */
	uint64_t accesses, errors, mismatches;
	uint64_t slow[3];	/* accesses over 10 ms, 100 ms, 1 s */
	int64_t max_ns, total_ns;
	char first_err[160];
};

struct storm {
	FIXTURE_DATA(rst) *self;
	pthread_t sup;
	bool sup_started;
	volatile int stop_sup, stop_vmm;
	pid_t cur;		/* the emulator the supervisor watches */
	unsigned int seed;
	unsigned int kills, after_ready, self_exits;
	char err[160];
	struct vmm_thread vmm[STORM_VMM_THREADS];
};

static void vmm_fail(struct vmm_thread *t, const char *what, int ret,
		     uint64_t want, uint64_t got)
{
	if (ret)
		t->errors++;
	else
		t->mismatches++;
	if (t->first_err[0])
		return;
	if (ret)
		snprintf(t->first_err, sizeof(t->first_err),
			 "thread %d access %llu: %s: %s", t->idx,
			 (unsigned long long)t->accesses, what, strerror(-ret));
	else
		snprintf(t->first_err, sizeof(t->first_err),
			 "thread %d access %llu: %s: read 0x%llx, expected 0x%llx",
			 t->idx, (unsigned long long)t->accesses, what,
			 (unsigned long long)got, (unsigned long long)want);
}

/* One timed access; returns its result. */
#define TIMED(t, expr) ({						\
	int64_t __t0 = emu_now_ns(), __dt;				\
	int __r = (expr);						\
	__dt = emu_now_ns() - __t0;					\
	(t)->accesses++;						\
	(t)->total_ns += __dt;						\
	if (__dt > (t)->max_ns)						\
		(t)->max_ns = __dt;					\
	(t)->slow[0] += __dt > 10000000;				\
	(t)->slow[1] += __dt > 100000000;				\
	(t)->slow[2] += __dt > 1000000000;				\
	__r;								\
})

static void *vmm_fn(void *arg)
{
	struct vmm_thread *t = arg;
	struct vfio_client *c = t->c;
	uint32_t iter = 0, v, got;
	uint16_t w16;
	uint8_t b, line;
	int ret;

	while (!__atomic_load_n(t->stop, __ATOMIC_ACQUIRE)) {
		iter++;
		/* Its own device register, kept in muser_state(). */
		v = (uint32_t)t->idx << 28 | (iter & 0x0fffffff);
		ret = TIMED(t, bar_write32(c, 4 * t->idx, v));
		if (ret)
			vmm_fail(t, "register write", ret, 0, 0);
		else
			t->last = v;
		got = 0;
		ret = TIMED(t, bar_read32(c, 4 * t->idx, &got));
		if (ret || got != t->last)
			vmm_fail(t, "register read", ret, t->last, got);

		/* Config space libmuser keeps: written once, read always. */
		w16 = 0;
		ret = TIMED(t, cfg_read(c, 4, &w16, 2));
		if (ret || w16 != T_COMMAND)
			vmm_fail(t, "command register", ret, T_COMMAND, w16);
		w16 = 0;
		ret = TIMED(t, cfg_read(c, t->msix + 2, &w16, 2));
		if (ret || (w16 & 0xc000) != T_MSIX_CTRL)
			vmm_fail(t, "MSI-X control", ret, T_MSIX_CTRL, w16);

		/* ... and written under the storm too. */
		if (t->idx == 0) {
			line = (uint8_t)iter;
			ret = TIMED(t, cfg_write(c, 0x3c, &line, 1));
			if (ret)
				vmm_fail(t, "interrupt line write", ret, 0, 0);
			b = ~line;
			ret = TIMED(t, cfg_read(c, 0x3c, &b, 1));
			if (ret || b != line)
				vmm_fail(t, "interrupt line read", ret, line, b);
		} else if (t->idx == 1) {
			v = 0x70000000 | iter;
			ret = TIMED(t, bar_write32(c, MSIX_DATA_OFF(1), v));
			if (ret)
				vmm_fail(t, "MSI-X data write", ret, 0, 0);
			got = 0;
			ret = TIMED(t, bar_read32(c, MSIX_DATA_OFF(1), &got));
			if (ret || got != v)
				vmm_fail(t, "MSI-X data read", ret, v, got);
		}
	}
	return NULL;
}

static void storm_err(struct storm *s, const char *fmt, const char *a,
		      const char *b)
{
	if (!s->err[0])
		snprintf(s->err, sizeof(s->err), fmt, a, b);
}

/*
 * The supervisor: SIGKILL the current emulator after a random delay from
 * its start (then it is starting, realizing or mapping) or from its being
 * ready (then it is serving), start the next one at once.
 */
static void *sup_fn(void *arg)
{
	struct storm *s = arg;
	struct emu_cfg cfg = {
		.uuid = s->self->r.uuid, .device_id = EMU_DEVICE,
		.dma_iova = GUEST_IOVA, .dma_len = GUEST_SIZE,
		.sh = s->self->sh,
	};
	struct emu_report r;
	char buf[64];
	int fd = -1, status;

	while (!__atomic_load_n(&s->stop_sup, __ATOMIC_ACQUIRE)) {
		unsigned int x = rand_r(&s->seed);
		int delay = x % (STORM_MAX_DELAY_MS + 1);

		if (s->cur <= 0) {
			s->cur = emu_spawn(&cfg, &fd);
			if (s->cur < 0) {
				storm_err(s, "fork: %s%s", strerror(-s->cur), "");
				break;
			}
		}
		if (x & 0x10000) {
			/* Once it serves. */
			if (fd >= 0 && !emu_wait_report(fd, &r, READY_MS))
				s->after_ready++;
		}
		sleep_ms(delay);
		if (waitpid(s->cur, &status, WNOHANG) == s->cur) {
			s->self_exits++;
			storm_err(s, "an emulator ended by itself: %s%s",
				  status_str(status, buf, sizeof(buf)), "");
		} else {
			status = emu_kill(s->cur);
			if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
				s->self_exits++;
				storm_err(s, "an emulator ended by itself: %s%s",
					  status_str(status, buf, sizeof(buf)), "");
			}
		}
		s->cur = -1;
		if (fd >= 0)
			close(fd);
		fd = -1;
		__atomic_fetch_add(&s->kills, 1, __ATOMIC_RELEASE);
	}
	if (s->cur > 0)
		emu_kill(s->cur);
	s->cur = -1;
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void storm_stop_vmm(struct storm *s)
{
	int i;

	__atomic_store_n(&s->stop_vmm, 1, __ATOMIC_RELEASE);
	for (i = 0; i < STORM_VMM_THREADS; i++) {
		if (s->vmm[i].started)
			pthread_join(s->vmm[i].thread, NULL);
		s->vmm[i].started = false;
	}
}

static void storm_stop_sup(struct storm *s)
{
	__atomic_store_n(&s->stop_sup, 1, __ATOMIC_RELEASE);
	if (s->sup_started)
		pthread_join(s->sup, NULL);
	s->sup_started = false;
}

/* From the teardown: the VMM threads wait for an emulator at most timeout_ms. */
static void storm_stop(struct storm *s)
{
	storm_stop_sup(s);
	storm_stop_vmm(s);
}

TEST_F_TIMEOUT(rst, kill_storm, 400)
{
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
	struct storm *s;
	struct emu_report r;
	uint16_t cmd = T_COMMAND, mc = T_MSIX_CTRL;
	uint64_t accesses = 0, total_ns = 0, slow[3] = { 0 };
	int64_t t0, elapsed, max_ns = 0;
	long pinned, want_pinned, samples = 0, bad_samples = 0, bad_value = 0;
	int msix, i;
	uint32_t got;

	SKIP_IF_SETUP_SKIPPED();
	s = calloc(1, sizeof(*s));
	ASSERT_NE(NULL, s);
	self->storm = s;
	s->self = self;
	s->cur = -1;
	s->seed = (unsigned int)getpid() ^ (unsigned int)now_ms();
	TH_LOG("seed %u", s->seed);

	/* The VMM, with guest memory the emulators map. */
	test_rig_open_vmm(&self->r);
	self->guest = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->guest);
	/* As QEMU does: forked emulators get no copy of guest memory. */
	ASSERT_EQ(0, madvise(self->guest, GUEST_SIZE, MADV_DONTFORK));
	memset(self->guest, 0x5a, GUEST_SIZE);
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	map.vaddr = (uintptr_t)self->guest;
	map.iova = GUEST_IOVA;
	map.size = GUEST_SIZE;
	ASSERT_EQ(0, ioctl(self->r.c.container, VFIO_IOMMU_MAP_DMA, &map));

	/* The first emulator; the guest driver sets the device up. */
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, GUEST_IOVA, GUEST_SIZE, &r));
	EXPECT_FALSE(r.recovered);
	want_pinned = dma_stat(self->r.uuid, "pinned_pages");
	ASSERT_LE(0, want_pinned);
	EXPECT_EQ(GUEST_SIZE / PG, want_pinned);
	msix = find_msix(&self->r.c);
	ASSERT_LT(0, msix);
	ASSERT_EQ(0, cfg_write(&self->r.c, 4, &cmd, 2));
	ASSERT_EQ(0, cfg_write(&self->r.c, msix + 2, &mc, 2));

	/* The storm. */
	for (i = 0; i < STORM_VMM_THREADS; i++) {
		s->vmm[i].idx = i;
		s->vmm[i].msix = msix;
		s->vmm[i].c = &self->r.c;
		s->vmm[i].stop = &s->stop_vmm;
		ASSERT_EQ(0, pthread_create(&s->vmm[i].thread, NULL, vmm_fn,
					    &s->vmm[i]));
		s->vmm[i].started = true;
	}
	s->cur = self->emu;	/* the supervisor's to kill now */
	self->emu = -1;
	ASSERT_EQ(0, pthread_create(&s->sup, NULL, sup_fn, s));
	s->sup_started = true;

	t0 = now_ms();
	for (;;) {
		elapsed = now_ms() - t0;
		if ((__atomic_load_n(&s->kills, __ATOMIC_ACQUIRE) >= STORM_MIN_KILLS &&
		     elapsed >= STORM_MIN_MS) || elapsed >= STORM_MAX_MS || s->err[0])
			break;
		/* Pins stay with the device whoever is attached. */
		if ((pinned = dma_stat(self->r.uuid, "pinned_pages")) >= 0) {
			samples++;
			if (pinned != want_pinned) {
				if (!bad_samples)
					bad_value = pinned;
				bad_samples++;
			}
		}
		sleep_ms(25);
	}
	storm_stop_sup(s);

	/* A last emulator: whatever the VMM threads wait for completes. */
	ASSERT_EQ(0, start_emu(self, EMU_DEVICE, GUEST_IOVA, GUEST_SIZE, &r));
	EXPECT_TRUE(r.recovered);
	sleep_ms(200);
	storm_stop_vmm(s);
	pinned = dma_stat(self->r.uuid, "pinned_pages");
	EXPECT_LE(0, pinned);
	EXPECT_EQ(want_pinned, pinned);

	for (i = 0; i < STORM_VMM_THREADS; i++) {
		struct vmm_thread *t = &s->vmm[i];

		accesses += t->accesses;
		slow[0] += t->slow[0];
		slow[1] += t->slow[1];
		slow[2] += t->slow[2];
		total_ns += t->total_ns;
		if (t->max_ns > max_ns)
			max_ns = t->max_ns;
		EXPECT_EQ(0, t->errors) TH_LOG("%s", t->first_err);
		EXPECT_EQ(0, t->mismatches) TH_LOG("%s", t->first_err);
		EXPECT_LT(100, t->accesses);
		/* What it wrote last is still there. */
		EXPECT_EQ(0, bar_read32(&self->r.c, 4 * i, &got));
		EXPECT_EQ(t->last, got);
	}
	EXPECT_EQ('\0', s->err[0]) TH_LOG("supervisor: %s", s->err);
	EXPECT_LE(STORM_MIN_KILLS, s->kills);
	EXPECT_EQ(0, bad_samples)
		TH_LOG("pinned_pages was %ld, not %ld, in %ld of %ld samples",
		       bad_value, want_pinned, bad_samples, samples);
	/* Only the very first emulator started afresh. */
	EXPECT_EQ(1, self->sh->fresh);
	EXPECT_LE(1, self->sh->recovered);

	printf("# kill_storm: %u kills in %.1f s (%u after the emulator was ready), "
	       "%u emulators started, %u realized (%u recovered, %u recover callbacks)\n",
	       s->kills, elapsed / 1e3, s->after_ready, self->sh->started,
	       self->sh->realized, self->sh->recovered, self->sh->recover_cbs);
	printf("# kill_storm: %llu VMM accesses by %d threads, all succeeded and read back "
	       "what was written: %s; %llu BAR requests served, %llu of them replayed\n",
	       (unsigned long long)accesses, STORM_VMM_THREADS,
	       _metadata->passed ? "yes" : "NO",
	       (unsigned long long)self->sh->requests,
	       (unsigned long long)self->sh->replays);
	printf("# kill_storm: access latency mean %.0f us, max %.1f ms; over 10 ms: "
	       "%llu, over 100 ms: %llu, over 1 s: %llu; pinned_pages %ld in all "
	       "%ld samples: %s\n",
	       accesses ? total_ns / 1e3 / accesses : 0.0, max_ns / 1e6,
	       (unsigned long long)slow[0], (unsigned long long)slow[1],
	       (unsigned long long)slow[2], want_pinned, samples,
	       bad_samples ? "NO" : "yes");
	fflush(stdout);
}

TEST_HARNESS_MAIN
