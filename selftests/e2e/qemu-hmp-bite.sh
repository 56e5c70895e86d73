#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The QEMU HMP test must bite: with the sample answering wrongly on purpose
# (--bad-reply: BAR2 offset 0 reads the counter + 1), qemu-hmp.sh must fail,
# and fail on the BAR data (everything before it still works), not on setup.
# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init qemu-hmp-bite 360 "$@"

need_muser
need_sample
"$SAMPLE" --help 2>&1 | grep -q -- --bad-reply || skip "the sample has no --bad-reply mode"

SAMPLE_ARGS="--bad-reply $SAMPLE_ARGS" E2E_TIMEOUT_ARMED="" \
	"$E2E_DIR/qemu-hmp.sh" >"$WORK/qemu-hmp.log" 2>&1
rc=$?
sed 's/^/  | /' "$WORK/qemu-hmp.log" | grep -E 'FAIL|PASS|BAR2|vendor'
[ $rc -eq "$KSFT_FAIL" ] || fail "qemu-hmp.sh with --bad-reply exited $rc, expected $KSFT_FAIL"
grep -q 'vendor/device 0x0dc8494f' "$WORK/qemu-hmp.log" ||
	fail "qemu-hmp.sh failed before reaching the device"
grep -Eq 'FAIL: BAR2 offset 0 (read|does not follow)' "$WORK/qemu-hmp.log" ||
	fail "qemu-hmp.sh failed, but not on the wrong BAR2 data"
log "qemu-hmp.sh fails on the wrong reply, as it must"
exit 0
