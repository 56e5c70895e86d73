#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The guest never notices: a VMM (vfio_check --sequence) reads the
# gpio-pci-idio-16 sample's counter continuously while
#   1. a second sample takes the device over in place (--takeover): the
#      first one prints "taken over" and exits 0;
#   2. that one is killed with SIGKILL and a third starts: it recovers the
#      state ("ready (recovered)");
# and every read succeeds with the next value of the counter (each read
# counted exactly once, replayed ones included).
#
# Needs muser.ko loaded.
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"

test_init upgrade
muser_loaded || skip "muser.ko is not loaded"
[ -x "$SAMPLE" ] || skip "sample not built: $SAMPLE"
[ -x "$TEST_BIN_DIR/vfio_check" ] || skip "not built: $TEST_BIN_DIR/vfio_check"

UUID=$(new_uuid)
mdev_create "$UUID" || fail "cannot create an mdev"
pids=()
on_exit 'kill -KILL "${pids[@]}" 2>/dev/null; wait; mdev_remove "$UUID"'

# start NAME ARGS...: a sample in the background, its pid in pids[], log in
# $WORK_DIR/NAME; waits for "ready".
WORK_DIR=$(mktemp -d /tmp/upgrade.XXXXXX)
on_exit "rm -rf $WORK_DIR"
start() {
	local name=$1
	shift
	"$SAMPLE" "$@" "$UUID" >"$WORK_DIR/$name" 2>&1 &
	pids+=($!)
	wait_for 20 grep -q ready "$WORK_DIR/$name" ||
		fail "$name did not become ready: $(cat "$WORK_DIR/$name")"
	log "$name: $(head -n1 "$WORK_DIR/$name")"
}

start first
"$TEST_BIN_DIR/vfio_check" --sequence 300 --delay-ms 10 "$UUID" \
	>"$WORK_DIR/vmm" 2>&1 &
vmm=$!
sleep 1

start second --takeover
wait_for 10 pid_gone "${pids[0]}" || fail "the first sample did not exit"
wait "${pids[0]}"
expect_eq "first sample's exit status after the takeover" 0 "$?"
check "the first sample says it was taken over" grep -q "taken over" "$WORK_DIR/first"
sleep 1

kill -KILL "${pids[1]}"
start third
check "the third sample recovered the state" grep -q "ready (recovered)" "$WORK_DIR/third"

wait "$vmm"
rc=$?
sed 's/^/#   /' "$WORK_DIR/vmm"
expect_eq "the VMM's reads (vfio_check --sequence)" 0 "$rc"
test_done
