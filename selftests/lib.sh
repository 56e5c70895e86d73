# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034,SC2120,SC2119,SC2016
# The one library of every shell test of muser (selftests/muser, ops, e2e,
# run-in-vm.sh, tools/demo-in-vm.sh). Sourced, not run. In the
# style of tools/testing/selftests/ublk/test_common.sh: every test logs its
# start and end to /dev/kmsg, the kernel log since the start must be free of
# warnings (selftests/kernel-log-bad), and exit status 4 means "skipped" (the
# reason is printed first).
#
#   . "$(dirname "$0")/../lib.sh"
#   test_init NAME          # start of the test: kmsg mark, cleanup trap
#   ...                     # check, fail, skip, expect_eq ...
#   test_done               # exit 0 (or 1); the exit trap checks the kernel log
#
# The end-to-end tests start with e2e_init instead (a hard timeout and a work
# directory on top of test_init); the QMP/HMP helpers are in e2e/qmp.sh.
#
# Environment: BUILD_DIR (CMake build dir, default ROOT/build/cmake),
# MUSER_KO (default ROOT/build/kmod/$(uname -r)/muser.ko), SAMPLE (default
# the gpio-pci-idio-16 sample), SAMPLE_ARGS (more arguments for it, after the
# UUID), SAMPLE_HOOKS (the same sample built with its test hooks, for the
# bite tests), QEMU (the binary of MUSER_QEMU=7.2), MUSER_QEMU (the QEMU
# the e2e tests start: 7.2 or 10.0, see qemu_select), PYTHON; for the e2e
# tests also:
#   E2E_TIMEOUT  hard limit for the whole test, seconds
#   E2E_KEEP=1   keep the work directory (logs) after the test
#   E2E_RESULTS  directory to copy the logs into (default: VM_RUN_RESULTS, the
#                tools/vm/vm-run --results directory), as E2E_RESULTS/e2e-NAME/
#   E2E_VERBOSE=1  print every log even on success

SELFTESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SELFTESTS_DIR/.." && pwd)
E2E_DIR=$SELFTESTS_DIR/e2e
BUILD_DIR=${BUILD_DIR:-$ROOT/build/cmake}
KVER=$(uname -r)
MUSER_KO=${MUSER_KO:-$ROOT/build/kmod/$KVER/muser.ko}
SAMPLE=${SAMPLE:-$BUILD_DIR/samples/gpio-pci-idio-16}
SAMPLE_ARGS=${SAMPLE_ARGS:-}
SAMPLE_HOOKS=${SAMPLE_HOOKS:-$BUILD_DIR/selftests/gpio-pci-idio-16-hooks}
PYTHON=${PYTHON:-/usr/bin/python3}
TEST_BIN_DIR=${TEST_BIN_DIR:-$BUILD_DIR/selftests/muser}
MUSERCTL=${MUSERCTL:-$BUILD_DIR/tools/muserctl/muserctl}
MUSER_TYPE=/sys/class/muser/muser/mdev_supported_types/muser-1
MDEV_DEVICES=/sys/bus/mdev/devices
MUSER_PARAMS=/sys/module/muser/parameters

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

# --- the QEMUs: the one place that names them ---------------------------------
# MUSER_QEMU=7.2 (the default): Debian 12's own, /usr/bin/qemu-system-x86_64
# (or QEMU from the environment). MUSER_QEMU=10.0: bookworm-backports' QEMU
# 10.0, never installed, only unpacked into QEMU10_PREFIX by
# tools/dev/install-deps.sh (which names the same prefix), beside 7.2; the test
# VM sees it there, as it sees the host's whole /.
# qemu_select VERSION sets QEMU (the binary), QEMU_ARGS (its firmware path:
# every QEMU command line of the tests starts with them), QEMU_TAG (a suffix
# for test names: "" or -q10), QEMU_MIGPROP (the vfio-pci property that
# lets a device migrate: migration v1 in 7.2, v2 in 10.0) and exports
# MUSER_QEMU. Every script that
# sources this file starts with MUSER_QEMU from the environment; qemu-hmp.sh
# and qemu-hmp-msix.sh also take --qemu VERSION (selftests/TESTS).
QEMU10_PREFIX=/opt/muser/qemu-10.0
_qemu_72=${QEMU:-qemu-system-x86_64}
QEMU="" QEMU_ARGS=() QEMU_TAG="" QEMU_MIGPROP="" QEMU_VERSION=""

qemu_select() {
	case ${1:-} in
	7.2)
		QEMU=$_qemu_72 QEMU_ARGS=() QEMU_TAG="" QEMU_MIGPROP=x-enable-migration=on
		;;
	10.0)
		QEMU=$QEMU10_PREFIX/usr/bin/qemu-system-x86_64 QEMU_TAG=-q10
		QEMU_MIGPROP=enable-migration=on
		QEMU_ARGS=(-L "$QEMU10_PREFIX/usr/share/qemu" -L /usr/share/seabios)
		;;
	*)
		echo "unknown QEMU '${1:-}' (MUSER_QEMU or --qemu): 7.2 or 10.0" >&2
		return 1
		;;
	esac
	export MUSER_QEMU=$1
}

# qemu_args ARGS...: the arguments of an e2e script whose one option is
# --qemu V (qemu_select); anything else is a usage error.
qemu_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--qemu) qemu_select "${2:-}" || exit 2; shift ;;
		*) echo "usage: $0 [--qemu 7.2|10.0]" >&2; exit 2 ;;
		esac
		shift
	done
}
qemu_select "${MUSER_QEMU:-7.2}" || exit 2

# need_qemu: the selected QEMU must be there, or the test skips (7.2, as
# need_cmd) or fails (10.0: tools/dev/install-deps.sh unpacks it, as it
# installs everything else the tests need, and CI runs it first). Logs which
# QEMU runs; sets QEMU_VERSION (MAJOR.MINOR, for qemu_at_least).
need_qemu() {
	local v
	if [ "$MUSER_QEMU" = 10.0 ]; then
		[ -x "$QEMU" ] || fail "QEMU 10.0 not installed: no $QEMU (tools/dev/install-deps.sh unpacks it)"
	else
		need_cmd "$QEMU"
	fi
	v=$("$QEMU" --version 2>&1 | head -n1)
	QEMU_VERSION=$(sed -nE 's/^QEMU emulator version ([0-9]+\.[0-9]+).*/\1/p' <<<"$v")
	[ -n "$QEMU_VERSION" ] || fail "$QEMU does not run: $v"
	[ "$MUSER_QEMU" = 7.2 ] || [ "$QEMU_VERSION" = "$MUSER_QEMU" ] ||
		fail "$QEMU is QEMU $QEMU_VERSION, not $MUSER_QEMU"
	log "QEMU $MUSER_QEMU: $QEMU${QEMU_ARGS[*]:+ ${QEMU_ARGS[*]}} ($v)"
}

# qemu_at_least MAJOR.MINOR: the QEMU need_qemu found is that version or newer.
qemu_at_least() {
	[ "$(printf '%s\n' "$1" "$QEMU_VERSION" | sort -V | head -n1)" = "$1" ]
}

# Kernel log lines that fail any test: one list for every test.
KERNEL_BAD_FILE=$SELFTESTS_DIR/kernel-log-bad

# Filter stdin down to the lines that fail a test.
kernel_bad() { grep -E -f <(grep -Ev '^(#|$)' "$KERNEL_BAD_FILE"); }

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
KMSG_MARK=""
T0=$(date +%s)
_failures=0
_cleanups=()
_cleanup_failed=""
_fail_reason=""
WORK=""

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

# Run at exit: the cleanups (last registered first; one that sets
# _cleanup_failed fails a passing test), the kernel log check (skipped tests
# too), then for an e2e test its logs.
_test_exit() {
	local rc=$? c
	trap - EXIT TERM INT
	for c in "${_cleanups[@]}"; do
		eval "$c" || true
	done
	[ -z "$_cleanup_failed" ] || [ "$rc" -ne 0 ] || rc=$KSFT_FAIL
	if ! dmesg_clean; then
		log "FAIL: the kernel log reports problems"
		[ "$rc" -ne 0 ] && [ "$rc" -ne $KSFT_SKIP ] || rc=$KSFT_FAIL
	fi
	[ -z "$WORK" ] || e2e_finish "$rc"
	kmsg "END $TEST_NAME rc=$rc"
	exit "$rc"
}

test_init() {
	TEST_NAME=$1
	[ "$(id -u)" -eq 0 ] || skip "must run as root (inside the test VM)"
	kmsg_mark "$TEST_NAME"
	trap _test_exit EXIT
	trap 'fail "timed out or interrupted"' TERM INT
}

skip() {
	echo "# SKIP: $*"
	exit $KSFT_SKIP
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c not found"
	done
}

need_muser() {
	[ -w "$MUSER_TYPE/create" ] || skip "muser.ko not loaded ($MUSER_TYPE/create missing)"
	[ -e /dev/vfio/vfio ] || skip "no /dev/vfio/vfio (vfio_iommu_type1 not loaded?)"
}

need_sample() {
	[ -x "$SAMPLE" ] || skip "sample not built: $SAMPLE"
}

fail() {
	_fail_reason=$*
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

# pid_gone PID: exited (a zombie counts as gone).
pid_gone() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ]
}

# wait_pid PID SECONDS: wait for a process to exit; status 0 if it did.
wait_pid() { wait_for "$2" pid_gone "$1"; }

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS; reaps it.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	pid_gone "$pid" && { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	wait_pid "$pid" "$2" || { log "pid $pid ignored SIGTERM: killing"; kill -KILL "$pid" 2>/dev/null; }
	wait "$pid" 2>/dev/null
	return 0
}

# --- the sample ---

SAMPLE_PID=""
SAMPLE_LOG=""
_sample_tmp=""

sample_settled() { grep -q ready "$SAMPLE_LOG" || pid_gone "$SAMPLE_PID"; }

# sample_start UUID [ARGS...]: start $SAMPLE $SAMPLE_ARGS UUID ARGS... in the
# background (SAMPLE_PID), wait for it to print "ready"; status 1 if it did
# not within 20 s (its output printed). Its output goes to SAMPLE_LOG: in an
# e2e test $WORK/$SAMPLE_NAME.log (default sample.log), kept with the logs,
# else a temporary file sample_stop removes. SAMPLE_QUIET=1: no log line.
sample_start() {
	local uuid=$1
	shift
	if [ -n "$WORK" ]; then
		SAMPLE_LOG=$WORK/${SAMPLE_NAME:-sample}.log
		_sample_tmp=""
	else
		SAMPLE_LOG=$(mktemp /tmp/sample.XXXXXX)
		_sample_tmp=$SAMPLE_LOG
	fi
	# shellcheck disable=SC2086
	"$SAMPLE" $SAMPLE_ARGS "$uuid" "$@" >"$SAMPLE_LOG" 2>&1 &
	SAMPLE_PID=$!
	wait_for 20 sample_settled
	if ! grep -q ready "$SAMPLE_LOG"; then
		log "the sample did not become ready:"
		sed 's/^/#   /' "$SAMPLE_LOG"
		return 1
	fi
	[ -n "${SAMPLE_QUIET:-}" ] ||
		log "sample running (pid $SAMPLE_PID${SAMPLE_ARGS:+, args: $SAMPLE_ARGS}${*:+, $*})"
}

sample_stop() {
	stop_pid "$SAMPLE_PID" 5
	SAMPLE_PID=""
	[ -z "$_sample_tmp" ] || rm -f "$_sample_tmp"
	_sample_tmp=""
}

# sample_finish: the sample must have survived its VMM; stop it, remove the
# e2e test's mdev (e2e_mdev_remove).
sample_finish() {
	if [ -z "$SAMPLE_PID" ] || pid_gone "$SAMPLE_PID"; then
		fail "the sample died while serving ${1:-QEMU}"
	fi
	sample_stop
	e2e_mdev_remove || fail "removing the mdev failed"
}

# --- end-to-end tests: QEMU, nested guests --------------------------------

UUID=""
QEMU_PID=""

# e2e_init NAME TIMEOUT "$@": re-executes the calling script under a hard
# timeout, then test_init, the work directory WORK and the cleanup of QEMU,
# the sample and the mdev.
e2e_init() {
	local limit=${E2E_TIMEOUT:-$2}
	TEST_NAME=$1
	shift 2
	if [ -z "${E2E_TIMEOUT_ARMED:-}" ]; then
		export E2E_TIMEOUT_ARMED=1
		exec timeout -k 20 "$limit" "$0" "$@"
	fi
	test_init "$TEST_NAME"
	WORK=$(mktemp -d "/tmp/e2e-$TEST_NAME.XXXXXX")
	trap '' PIPE
	on_exit 'e2e_mdev_remove || _cleanup_failed=1'
	on_exit sample_stop
	on_exit 'stop_pid "$QEMU_PID" 10'
}

# e2e_mdev_create: a new mdev, its UUID in UUID; it and /dev/muser/UUID must
# appear, or the test fails.
e2e_mdev_create() {
	UUID=$(new_uuid)
	mdev_create "$UUID" || fail "cannot create mdev $UUID"
	mdev_exists "$UUID" || fail "mdev $UUID did not appear in $MDEV_DEVICES"
	wait_for 5 test -e "/dev/muser/$UUID" || fail "/dev/muser/$UUID did not appear"
	log "mdev $UUID created (iommu group $(basename "$(readlink "$MDEV_DEVICES/$UUID/iommu_group")"))"
}

# --- a migration's destination: a second mdev and its emulator --------------

DST_UUID="" DST_PID="" DST_QEMU_PID=""

# mig_dst_create: the destination's mdev (DST_UUID); at exit its QEMU
# (DST_QEMU_PID), its emulator (DST_PID) and it go.
mig_dst_create() {
	DST_UUID=$(new_uuid)
	on_exit mig_dst_cleanup
	mdev_create "$DST_UUID" || fail "cannot create the destination's mdev"
	wait_for 5 test -e "/dev/muser/$DST_UUID" || fail "/dev/muser/$DST_UUID did not appear"
}

# mig_dst_start ARGS...: $SAMPLE ARGS... DST_UUID in the background
# (DST_PID, output appended to $WORK/sample-dst.log); it must say "ready".
mig_dst_start() {
	local log=$WORK/sample-dst.log n
	n=$(grep -c ready "$log" 2>/dev/null)
	"$SAMPLE" "$@" "$DST_UUID" >>"$log" 2>&1 &
	DST_PID=$!
	wait_for 20 _dst_ready "$log" "${n:-0}" || fail "the destination's sample did not start"
}
# shellcheck disable=SC2317 # run by wait_for
_dst_ready() { [ "$(grep -c ready "$1")" -gt "$2" ]; }

# shellcheck disable=SC2317 # run by on_exit
mig_dst_cleanup() {
	stop_pid "$DST_QEMU_PID" 10
	stop_pid "$DST_PID" 5
	if [ -n "$DST_UUID" ] && mdev_exists "$DST_UUID"; then
		mdev_remove "$DST_UUID" || _cleanup_failed=1
	fi
}

# e2e_mdev_remove: remove UUID's mdev (if any); it and /dev/muser/UUID must go.
e2e_mdev_remove() {
	[ -n "$UUID" ] && mdev_exists "$UUID" || return 0
	mdev_remove "$UUID" || { log "mdev remove failed or still blocked after 30 s"; return 1; }
	mdev_gone "$UUID" || { log "mdev still present after remove"; return 1; }
	[ ! -e "/dev/muser/$UUID" ] || { log "/dev/muser/$UUID still present after remove"; return 1; }
	UUID=""
}

# nested_kernel KVER: the kernel a nested guest boots: NESTED_KERNEL if set,
# else /boot/vmlinuz-KVER's own ELF image, unpacked once per VM run into
# /tmp, which QEMU starts at its PVH entry (CONFIG_PVH, both Debian kernels).
# Under TCG inside TCG the bzImage's BIOS boot and decompressor alone take
# 30 s (zstd, 6.12) to 50 s (xz, 6.1) of every nested boot. The kernel that
# runs is the same; without a PVH note, vmlinuz itself.
nested_kernel() {
	local img=/boot/vmlinuz-$1 out=/tmp/muser-vmlinux-$1 tmp off unpack
	[ -n "${NESTED_KERNEL:-}" ] && { echo "$NESTED_KERNEL"; return; }
	if [ ! -s "$out" ] || [ "$img" -nt "$out" ]; then
		tmp=$(mktemp "$out.XXXXXX") || { echo "$img"; return; }
		for unpack in 'xz -dcq:\xfd7zXZ\x00' 'zstd -dcq:\x28\xb5\x2f\xfd'; do
			for off in $(LC_ALL=C grep -obUaP "${unpack#*:}" "$img" 2>/dev/null | cut -d: -f1 | head -n 3); do
				tail -c "+$((off + 1))" "$img" | ${unpack%%:*} >"$tmp" 2>/dev/null
				# An ELF image with the Xen PVH entry note (type 0x12).
				[ "$(head -c 4 "$tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] &&
					readelf -n "$tmp" 2>/dev/null | grep -q "Unknown note type: (0x00000012)" &&
					mv "$tmp" "$out" && break 2
			done
		done
		rm -f "$tmp"
	fi
	if [ -s "$out" ]; then
		echo "$out"
	else
		echo "nested_kernel: no PVH ELF image in $img (xz, zstd and readelf needed): booting it as it is" >&2
		echo "$img"
	fi
}

# nested_start CONSOLE QEMU-ARGS...: boot a nested guest in the background
# (QEMU_PID), its serial console to CONSOLE, within BOOT_TIMEOUT. Returns
# once its init printed E2E-BEGIN or QEMU exited. A TCG guest inside a TCG
# guest very rarely dies in early boot, before its init runs and before it
# touches any device (seen once: a fault in text_poke_early on a loaded
# machine); that boot is retried, once, and said so.
nested_start() {
	local console=$1 try
	shift
	for try in 1 2; do
		: >"$console"
		timeout -k 10 "$BOOT_TIMEOUT" "$QEMU" "${QEMU_ARGS[@]}" "$@" -serial "file:$console" \
			>"$WORK/qemu.log" 2>&1 &
		QEMU_PID=$!
		while kill -0 "$QEMU_PID" 2>/dev/null && ! grep -qs E2E-BEGIN "$console"; do
			sleep 1
		done
		grep -qs E2E-BEGIN "$console" && return 0
		grep -qs "Kernel panic" "$console" && [ $try -eq 1 ] || return 0
		wait "$QEMU_PID"
		log "the nested guest died in early boot, before its init (a TCG fault, not muser): booting it again"
		grep -m3 -E "Oops|RIP:|Kernel panic" "$console" | sed 's/^/#   /'
		cp "$console" "$console.early-death"
	done
}

# nested_wait: wait for the nested guest's QEMU to exit; it must have exited
# with status 0 within BOOT_TIMEOUT.
nested_wait() {
	local qrc
	wait "$QEMU_PID"
	qrc=$?
	QEMU_PID=""
	log "nested guest finished${1:+ $1} (QEMU status $qrc)"
	[ $qrc -eq 124 ] && fail "the nested guest did not finish within $BOOT_TIMEOUT s"
	[ $qrc -eq 0 ] || fail "QEMU exited with status $qrc: $(tail -n 3 "$WORK/qemu.log")"
}

# nested_console [HANDLER]: read the nested guest's console ($CONSOLE) with
# shell builtins only (every fork is slow under TCG): print its E2E- lines,
# call HANDLER LINE on every line (the test's own lines; it may add to
# NESTED_ERRORS), then check what every nested guest must show: its /init
# began and ended with rc=0, no E2E-ERROR, no kernel crash.
# shellcheck disable=SC2153 # CONSOLE: set by the test
nested_console() {
	local handler=${1:-:} line begin="" end="" crash=""
	NESTED_ERRORS=""
	while IFS= read -r line; do
		line=${line%$'\r'}
		[[ $line == E2E-* ]] && echo "  $line"
		case $line in
		E2E-BEGIN*) begin=$line ;;
		E2E-END*) end=${line#E2E-END } ;;
		E2E-ERROR*) NESTED_ERRORS+="$line; " ;;
		esac
		"$handler" "$line"
		[[ $line =~ Kernel\ panic|BUG:|Oops|WARNING:|Call\ Trace ]] && crash+="$line; "
	done <"$CONSOLE"
	[ -n "$begin" ] || fail "the nested guest's /init did not start"
	[ -n "$end" ] || fail "the nested guest's /init did not finish"
	[ -z "$crash" ] || fail "the nested kernel reports problems: $crash"
	[ -z "$NESTED_ERRORS" ] || fail "errors in the nested guest: $NESTED_ERRORS"
	[ "$end" = rc=0 ] || fail "the nested guest reports failure ($end)"
}

# e2e_finish RC: at the end of an e2e test, its logs: printed if it failed
# (or E2E_VERBOSE), copied to E2E_RESULTS; then WORK goes (unless E2E_KEEP).
e2e_finish() {
	local rc=$1 f res=${E2E_RESULTS:-${VM_RUN_RESULTS:-}}
	if [ "$rc" -ne 0 ] && [ "$rc" -ne $KSFT_SKIP ] || [ -n "${E2E_VERBOSE:-}" ]; then
		for f in "$WORK"/*.log; do
			[ -s "$f" ] || continue
			echo "----- $(basename "$f") (last 60 lines) -----"
			tail -n 60 "$f"
		done
		echo "----- kernel log since the test started (last 40 lines) -----"
		dmesg_since_mark | tail -n 40
	fi
	if [ -n "$res" ] && mkdir -p "$res/e2e-$TEST_NAME" 2>/dev/null; then
		cp "$WORK"/*.log "$res/e2e-$TEST_NAME/" 2>/dev/null
		dmesg_since_mark >"$res/e2e-$TEST_NAME/dmesg.log"
	fi
	if [ -n "${E2E_KEEP:-}" ]; then
		log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	case $rc in
	0) log "PASS" ;;
	4) ;;
	# Again after the logs: the last lines are what a CI summary shows.
	*) log "FAIL (status $rc)${_fail_reason:+: $_fail_reason}" ;;
	esac
}

# check_counter NAME PERIOD MODULUS V0 V1 ...: the values (decimal) must
# follow a counter that advances by exactly one every PERIOD reads (modulo
# MODULUS: 256 for a byte, 2 for one bit of it), with an arbitrary phase: every
# run of equal values is exactly PERIOD long except the first and the last
# (1..PERIOD), and there must be at least two complete runs.
check_counter() {
	local name=$1 period=$2 mod=$3
	shift 3
	echo "$*" | awk -v p="$period" -v m="$mod" -v name="$name" '
	{
		n = NF
		for (i = 1; i <= n; i++) v[i] = $i + 0
		runs = 1; len[1] = 1
		for (i = 2; i <= n; i++) {
			d = (v[i] - v[i - 1] + m) % m
			if (d == 0) { len[runs]++; continue }
			if (d != 1) { printf "%s: read %d jumps from %d to %d\n", name, i, v[i - 1], v[i]; exit 1 }
			len[++runs] = 1
		}
		if (runs < 4) { printf "%s: only %d distinct runs in %d reads\n", name, runs, n; exit 1 }
		for (r = 1; r <= runs; r++) {
			if (len[r] > p || ((r > 1 && r < runs) && len[r] != p)) {
				printf "%s: run %d has %d equal reads, expected %d\n", name, r, len[r], p; exit 1
			}
		}
	}'
}
