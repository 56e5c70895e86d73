# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034,SC2120,SC2119
# Shared helpers of the muser selftests' shell tests (and of run-in-vm.sh).
# Sourced, not run. In the style of tools/testing/selftests/ublk/test_common.sh:
# every test logs its start and end to /dev/kmsg, the kernel log since the
# start must be free of warnings, and exit status 4 means "skipped" (the
# reason is printed first).
#
#   . "$(dirname "$0")/../lib.sh"
#   test_init NAME          # start of the test: kmsg mark, cleanup trap
#   ...                     # check, fail, skip, expect_eq ...
#   test_done               # dmesg check, exit 0 (or 1)
#
# Environment: BUILD_DIR (CMake build dir, default ROOT/build/cmake),
# MUSER_KO (default ROOT/build/kmod/$(uname -r)/muser.ko), SAMPLE.

SELFTESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SELFTESTS_DIR/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/cmake}
KVER=$(uname -r)
MUSER_KO=${MUSER_KO:-$ROOT/build/kmod/$KVER/muser.ko}
SAMPLE=${SAMPLE:-$BUILD_DIR/samples/gpio-pci-idio-16}
TEST_BIN_DIR=${TEST_BIN_DIR:-$BUILD_DIR/selftests/muser}
MUSERCTL=${MUSERCTL:-$BUILD_DIR/tools/muserctl/muserctl}
MUSER_TYPE=/sys/class/muser/muser/mdev_supported_types/muser-1
MDEV_DEVICES=/sys/bus/mdev/devices
MUSER_PARAMS=/sys/module/muser/parameters

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

# Kernel log lines that fail any test: one list for every test.
KERNEL_BAD_FILE=$SELFTESTS_DIR/kernel-log-bad

# Filter stdin down to the lines that fail a test.
kernel_bad() { grep -E -f <(grep -Ev '^(#|$)' "$KERNEL_BAD_FILE"); }

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
KMSG_MARK=""
T0=$(date +%s)
_failures=0
_cleanups=()

log() { echo "# [$TEST_NAME +$(($(date +%s) - T0))s] $*"; }

kmsg() { echo "<6>muser-selftest: $*" >/dev/kmsg 2>/dev/null || true; }

# Mark the kernel log; dmesg_since_mark prints what came after.
kmsg_mark() {
	KMSG_MARK="muser-selftest: START $1 $$ $(date +%s%N)"
	echo "<6>$KMSG_MARK" >/dev/kmsg 2>/dev/null || KMSG_MARK=""
}

dmesg_since_mark() {
	local mark=${1:-$KMSG_MARK}
	if [ -n "$mark" ] && dmesg 2>/dev/null | grep -qF "$mark"; then
		dmesg 2>/dev/null | awk -v m="$mark" 'f; index($0, m) { f = 1 }'
	else
		# No mark, or it scrolled out of the ring buffer: be conservative.
		dmesg 2>/dev/null
	fi
}

# Print the bad lines since the mark; status 0 if there are none.
dmesg_clean() {
	local bad
	bad=$(dmesg_since_mark "${1:-}" | grep -v 'muser-selftest:' | kernel_bad)
	[ -z "$bad" ] && return 0
	echo "$bad" | sed 's/^/# dmesg: /'
	return 1
}

# Run at exit, last registered first.
on_exit() { _cleanups=("$*" "${_cleanups[@]}"); }

_test_exit() {
	local rc=$? c
	trap - EXIT
	for c in "${_cleanups[@]}"; do
		eval "$c" || true
	done
	if [ "$rc" -ne $KSFT_SKIP ] && ! dmesg_clean; then
		log "FAIL: the kernel log reports problems"
		rc=$KSFT_FAIL
	fi
	kmsg "END $TEST_NAME rc=$rc"
	exit "$rc"
}

test_init() {
	TEST_NAME=$1
	[ "$(id -u)" -eq 0 ] || skip "must run as root (inside the test VM)"
	kmsg_mark "$TEST_NAME"
	trap _test_exit EXIT
	trap 'fail "interrupted"' TERM INT
}

skip() {
	echo "# SKIP: $*"
	exit $KSFT_SKIP
}

fail() {
	log "FAIL: $*"
	exit $KSFT_FAIL
}

# check DESCRIPTION CMD...: CMD must succeed; failures are counted, the test
# goes on and test_done reports them.
check() {
	local what=$1
	shift
	if "$@"; then
		return 0
	fi
	log "FAIL: $what"
	_failures=$((_failures + 1))
	return 1
}

# check_fails DESCRIPTION CMD...: CMD must fail.
check_fails() {
	local what=$1
	shift
	if "$@"; then
		log "FAIL: $what (it succeeded)"
		_failures=$((_failures + 1))
		return 1
	fi
	return 0
}

expect_eq() {
	if [ "$2" != "$3" ]; then
		log "FAIL: $1: expected '$2', got '$3'"
		_failures=$((_failures + 1))
		return 1
	fi
}

test_done() {
	if [ "$_failures" -ne 0 ]; then
		log "$_failures check(s) failed"
		exit $KSFT_FAIL
	fi
	log "PASS"
	exit $KSFT_PASS
}

# --- modules ---

muser_loaded() { grep -q '^muser ' /proc/modules; }

# Load what muser.ko needs (from its modinfo), and vfio_iommu_type1.
load_deps() {
	local deps m
	[ -f "$MUSER_KO" ] || return 1
	deps=$(modinfo -F depends "$MUSER_KO" 2>/dev/null | tr ',' ' ')
	for m in $deps vfio_iommu_type1; do
		grep -q "^$m " /proc/modules && continue
		modprobe "$m" || { log "modprobe $m failed"; return 1; }
	done
}

muser_insmod() {
	load_deps || return 1
	insmod "$MUSER_KO" "$@"
}

muser_rmmod() {
	for _ in 1 2 3 4 5; do
		rmmod muser 2>/dev/null && return 0
		sleep 0.2
	done
	rmmod muser
}

# --- mdevs ---

new_uuid() { cat /proc/sys/kernel/random/uuid; }

available_instances() { cat "$MUSER_TYPE/available_instances"; }

# mdev_create UUID: status of the write.
mdev_create() { printf '%s\n' "$1" 2>/dev/null >"$MUSER_TYPE/create"; }

# mdev_remove UUID: bounded, the kernel waits for VMMs to close the device.
mdev_remove() {
	[ -e "$MDEV_DEVICES/$1" ] || return 0
	timeout 30 sh -c "echo 1 > '$MDEV_DEVICES/$1/remove'"
}

# mdev_exists UUID, mdev_gone UUID: whether /sys/bus/mdev/devices/UUID is there.
mdev_exists() { [ -e "$MDEV_DEVICES/$1" ]; }
mdev_gone() { [ ! -e "$MDEV_DEVICES/$1" ]; }

# muserctl_field UUID NAME: NAME's value in `muserctl show UUID`.
muserctl_field() { "$MUSERCTL" show "$1" 2>/dev/null | sed -n "s/^$2: //p"; }
muserctl_field_is() { [ "$(muserctl_field "$1" "$2")" = "$3" ]; }

# Remove every muser mdev (cleanup after a failed test).
mdev_remove_all() {
	local d
	for d in "$MUSER_TYPE"/devices/*; do
		[ -e "$d" ] || continue
		mdev_remove "$(basename "$d")"
	done
}

# wait_for TIMEOUT_S CMD...: poll CMD every 0.1 s until it succeeds or
# TIMEOUT_S seconds have passed (however long CMD itself takes).
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# --- the sample ---

SAMPLE_PID=""

# sample_start UUID [ARGS...]: start the sample, wait for "ready".
sample_start() {
	local uuid=$1 out
	shift
	out=$(mktemp /tmp/sample.XXXXXX)
	"$SAMPLE" "$@" "$uuid" >"$out" 2>&1 &
	SAMPLE_PID=$!
	SAMPLE_LOG=$out
	if ! wait_for 20 grep -q ready "$out"; then
		log "sample did not become ready:"
		sed 's/^/#   /' "$out"
		return 1
	fi
}

# pid_gone PID: exited (a zombie counts as gone).
pid_gone() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ]
}

sample_stop() {
	[ -n "$SAMPLE_PID" ] || return 0
	kill -TERM "$SAMPLE_PID" 2>/dev/null
	wait_for 5 pid_gone "$SAMPLE_PID" || kill -KILL "$SAMPLE_PID" 2>/dev/null
	wait "$SAMPLE_PID" 2>/dev/null
	SAMPLE_PID=""
	rm -f "$SAMPLE_LOG"
}
