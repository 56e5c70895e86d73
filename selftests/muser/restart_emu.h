/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A libmuser emulator process for the restart tests and benchmark: forked
 * by the test (the VMM), SIGKILLed and started again at will.
 *
 * The device: IDs 0x4e58:device_id, class 0xff0000, INTA, BAR0 (32-bit
 * memory, 16 KiB) whose first EMU_NR_REGS dwords are registers kept in
 * muser_state(), MSI-X with 4 vectors (table at BAR0 0x2000, PBA at
 * 0x3000). Everything else in BAR0 reads as zero and ignores writes.
 *
 * What the emulators do is counted in a struct emu_shared the test maps
 * shared before forking them; each reports once over a pipe when it is
 * ready to serve (struct emu_report).
 */
#ifndef MUSER_SELFTEST_RESTART_EMU_H
#define MUSER_SELFTEST_RESTART_EMU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define EMU_VENDOR		0x4e58
#define EMU_DEVICE		0x00e0
#define EMU_BAR0_SIZE		0x4000
#define EMU_MSIX_NVEC		4
#define EMU_MSIX_TABLE		0x2000
#define EMU_MSIX_PBA		0x3000
#define EMU_NR_REGS		64	/* dwords at BAR0 0 */
#define EMU_STATE_MAGIC		0x52535452u	/* "RTSR" */

/* Counters shared by every emulator of a test (MAP_SHARED, anonymous). */
struct emu_shared {
	/* CLOCK_MONOTONIC ns of the first BAR request an emulator served
	 * since the test last zeroed it. */
	int64_t t_first_req;
	uint64_t requests;	/* BAR requests served */
	uint64_t replays;	/* of which muser_req_replayed() */
	uint32_t started;	/* emulators that reached their main */
	uint32_t realized;	/* ... that muser_realize()d */
	uint32_t recovered;	/* ... and found state (muser_recovered()) */
	uint32_t fresh;		/* ... and started afresh */
	uint32_t recover_cbs;	/* recover callbacks run */
	uint32_t errors;	/* anything unexpected; see last_error */
	char last_error[128];
};

struct emu_cfg {
	const char *uuid;
	uint16_t device_id;	/* EMU_DEVICE normally */
	uint64_t dma_iova;	/* muser_dma_map() this range once realized */
	uint64_t dma_len;	/* 0: none */
	struct emu_shared *sh;
};

/* What an emulator tells the test once it is ready (or failed). */
struct emu_report {
	int32_t err;		/* 0, or the errno of what failed */
	char what[60];		/* what failed */
	uint8_t recovered;	/* muser_recovered() */
	uint8_t recover_cb;	/* its recover callback ran */
	uint8_t state_zero;	/* the device's state area was all zero */
	uint8_t pad;
	int64_t t_start;	/* CLOCK_MONOTONIC ns: entered its main */
	int64_t t_realized;	/* muser_realize() returned */
	int64_t t_mapped;	/* muser_dma_map() returned (or = realized) */
};

/* The device's part of the state area. */
struct emu_state {
	uint32_t magic;
	uint32_t pad;
	uint32_t regs[EMU_NR_REGS];
};

int64_t emu_now_ns(void);
/* A struct emu_shared in memory shared with children; NULL on failure. */
struct emu_shared *emu_shared_new(void);
void emu_shared_free(struct emu_shared *sh);
/*
 * Fork an emulator. Returns its pid (> 0) with *@report_fd the read end of
 * its report pipe (close it after), or -errno. The child dies with the
 * thread that forked it (PR_SET_PDEATHSIG).
 */
pid_t emu_spawn(const struct emu_cfg *cfg, int *report_fd);
/* Read the report, waiting at most @timeout_ms: 0, -ETIMEDOUT, -ECHILD
 * (it died first) or -errno. */
int emu_wait_report(int fd, struct emu_report *r, int timeout_ms);
/* SIGKILL and reap; returns the wait status, or -errno. */
int emu_kill(pid_t pid);

#endif
