#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prove that the tests bite: with the sample answering wrongly on purpose
# (--bad-reply: BAR2 offset 0 reads the counter + 1), the checks must fail.
#
#  1. vfio_check against the good sample: exit 0 (the control).
#  2. vfio_check against the sample with --bad-reply: exit 1.
#  3. the vfio_client harness with the sample in --bad-reply mode: exits
#     non-zero, its BAR2 tests report "not ok" while config_ids still passes
#     (so the failure is the wrong reply, not a broken setup).
#
# Needs muser.ko loaded.
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"

test_init bite
muser_loaded || skip "muser.ko is not loaded"
[ -x "$SAMPLE" ] || skip "sample not built: $SAMPLE"
for b in vfio_check vfio_client; do
	[ -x "$TEST_BIN_DIR/$b" ] || skip "not built: $TEST_BIN_DIR/$b"
done
"$SAMPLE" --help 2>&1 | grep -q -- --bad-reply || fail "the sample has no --bad-reply"

UUID=""
on_exit 'sample_stop; [ -z "$UUID" ] || mdev_remove "$UUID"'

# run_check ARGS...: fresh mdev, the sample with ARGS, vfio_check; its exit
# status in RC (9x: the setup failed).
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
MUSER_SAMPLE="$SAMPLE" MUSER_SAMPLE_ARGS=--bad-reply \
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
