#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prove that a test bites: against a device answering wrongly on purpose, it
# must fail, and fail on the check that catches the wrong answer (what comes
# before it still works, so the failure is not a broken setup).
#
# Usage: bite.sh CASE
#   vfio           the sample's test-hooks build (SAMPLE_HOOKS: --bad-reply,
#                  MUSER_IDIO16_BROKEN=1: BAR2 offset 0 reads the counter + 1)
#                  1. vfio_check against the good sample: exit 0 (the control);
#                  2. vfio_check against --bad-reply, and against
#                     MUSER_IDIO16_BROKEN=1: exit 1;
#                  3. the vfio_client harness against --bad-reply: exits
#                     non-zero, its BAR2 tests "not ok", config_ids still ok.
#   qemu-hmp       e2e/qemu-hmp.sh against --bad-reply must fail on the BAR2
#                  data, after reaching the device
#   qemu-hmp-msix  e2e/qemu-hmp-msix.sh with QEMU told not to mmap the
#                  device's BARs (-device vfio-pci,...,x-no-mmap=on, as if the
#                  sparse mmap capability were absent) must fail on the missing
#                  mmap of the doorbell page, after the capability checks
# Needs muser.ko loaded.
# shellcheck source=selftests/lib.sh disable=SC2016
. "$(dirname "$0")/lib.sh"

# bite_e2e SCRIPT REACHED CAUGHT SHOW [VAR=VALUE...]: e2e/SCRIPT.sh, run with
# the VAR=VALUE settings, must exit 1, its log must have a line matching
# REACHED and one matching CAUGHT (extended regexps); SHOW: what of its log
# to print.
bite_e2e() {
	local script=$1 reached=$2 caught=$3 show=$4 rc
	shift 4
	env "$@" E2E_TIMEOUT_ARMED="" "$E2E_DIR/$script.sh" >"$WORK/$script.log" 2>&1
	rc=$?
	sed 's/^/  | /' "$WORK/$script.log" | grep -E "$show"
	[ $rc -eq "$KSFT_FAIL" ] || fail "$script.sh with $* exited $rc, expected $KSFT_FAIL"
	grep -Eq "$reached" "$WORK/$script.log" || fail "$script.sh failed before reaching the device"
	grep -Eq "$caught" "$WORK/$script.log" || fail "$script.sh failed, but not on: $caught"
	log "$script.sh with $* fails, as it must"
}

# run_check ARGS...: fresh mdev, the hooks sample with ARGS, vfio_check; its
# exit status in RC (9x: the setup failed).
run_check() {
	RC=99
	UUID=$(new_uuid)
	mdev_create "$UUID" || { log "cannot create an mdev"; return; }
	if sample_start "$UUID" "$@"; then
		timeout 60 "$TEST_BIN_DIR/vfio_check" "$UUID" 2>&1 | sed 's/^/#   /'
		RC=${PIPESTATUS[0]}
	else
		RC=98
	fi
	sample_stop
	mdev_remove "$UUID" || log "cannot remove $UUID"
	UUID=""
}

bite_vfio() {
	local out rc t
	test_init bite
	muser_loaded || skip "muser.ko is not loaded"
	[ -x "$SAMPLE_HOOKS" ] || skip "sample with test hooks not built: $SAMPLE_HOOKS"
	for t in vfio_check vfio_client; do
		[ -x "$TEST_BIN_DIR/$t" ] || skip "not built: $TEST_BIN_DIR/$t"
	done
	"$SAMPLE_HOOKS" --help 2>&1 | grep -q -- --bad-reply || fail "$SAMPLE_HOOKS has no --bad-reply"
	SAMPLE=$SAMPLE_HOOKS
	on_exit 'sample_stop; [ -z "$UUID" ] || mdev_remove "$UUID"'

	run_check
	expect_eq "vfio_check against the good sample" 0 "$RC"
	run_check --bad-reply
	expect_eq "vfio_check against the sample with --bad-reply" 1 "$RC"
	export MUSER_IDIO16_BROKEN=1
	run_check
	unset MUSER_IDIO16_BROKEN
	expect_eq "vfio_check against the sample with MUSER_IDIO16_BROKEN=1" 1 "$RC"

	out=$(mktemp /tmp/bite.XXXXXX)
	on_exit "rm -f $out"
	MUSER_SAMPLE="$SAMPLE_HOOKS" MUSER_SAMPLE_ARGS=--bad-reply \
		timeout 600 "$TEST_BIN_DIR/vfio_client" >"$out" 2>&1
	rc=$?
	log "vfio_client with --bad-reply exited $rc"
	check "vfio_client with --bad-reply fails" test "$rc" -ne 0 -a "$rc" -ne 124
	for t in bar2_counter check_sample_device; do
		check "sample.$t reports not ok" grep -qE "^not ok [0-9]+ sample\.$t\$" "$out"
	done
	check "sample.config_ids still passes" grep -qE "^ok [0-9]+ sample\.config_ids\$" "$out"
	if [ "$_failures" -ne 0 ]; then
		sed 's/^/#   /' "$out" | tail -n 80
	fi
	test_done
}

case ${1:-} in
vfio) bite_vfio ;;
qemu-hmp)
	e2e_init qemu-hmp-bite 360 "$@"
	need_muser
	[ -x "$SAMPLE_HOOKS" ] || skip "sample with test hooks not built: $SAMPLE_HOOKS"
	bite_e2e qemu-hmp 'vendor/device 0x0dc8494f' 'FAIL: BAR2 offset 0 (read|does not follow)' \
		'FAIL|PASS|BAR2|vendor' SAMPLE="$SAMPLE_HOOKS" SAMPLE_ARGS="--bad-reply${SAMPLE_ARGS:+ $SAMPLE_ARGS}"
	;;
qemu-hmp-msix)
	e2e_init qemu-hmp-msix-bite 360 "$@"
	need_qemu
	need_muser
	bite_e2e qemu-hmp-msix 'capabilities: 0x34 -> 0x40 PM \(0x01\) -> 0x48 MSI-X \(0x11\)' \
		"FAIL: no mmap of BAR0's doorbell page" 'FAIL|PASS|SKIP|capabilities|mtree' \
		DEVICE_OPTS=",x-no-mmap=on"
	;;
*)
	echo "usage: $0 vfio|qemu-hmp|qemu-hmp-msix" >&2
	exit 2
	;;
esac
exit 0
