# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2119,SC2120
# Shared helpers of the end-to-end tests in selftests/e2e/. Sourced, not run
# (deliberately not executable: the runner executes every executable *.sh).
#
# The tests run inside the test VM as root, with muser.ko, vfio_iommu_type1
# and mdev already loaded. Exit status follows kselftest: 0 pass, 1 fail,
# 4 skip (with the reason printed).
#
# Environment understood by every test:
#   BUILD_DIR    CMake build directory           (default ROOT/build/cmake)
#   SAMPLE       the gpio-pci-idio-16 sample     (default BUILD_DIR/samples/gpio-pci-idio-16)
#   SAMPLE_ARGS  extra arguments for the sample, before the UUID (e.g. its
#                wrong-reply mode, to check that the test bites)
#   QEMU         qemu-system-x86_64 to use       (default: from PATH)
#   E2E_TIMEOUT  hard limit for the whole test, seconds
#   E2E_KEEP=1   keep the work directory (logs) after the test
#   E2E_RESULTS  directory to copy the logs into (default: VM_RUN_RESULTS, the
#                tools/vm/vm-run --results directory), as E2E_RESULTS/e2e-NAME/
#   E2E_VERBOSE=1  print every log even on success

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/cmake}
SAMPLE=${SAMPLE:-$BUILD_DIR/samples/gpio-pci-idio-16}
SAMPLE_ARGS=${SAMPLE_ARGS:-}
QEMU=${QEMU:-qemu-system-x86_64}
PYTHON=${PYTHON:-/usr/bin/python3}
MUSER_TYPE=/sys/class/muser/muser/mdev_supported_types/muser-1

KSFT_FAIL=1
KSFT_SKIP=4

UUID=""
QEMU_PID=""
SAMPLE_PID=""
WORK=""
T0=$(date +%s)

log() { echo "[$TEST_NAME +$(($(date +%s) - T0))s] $*"; }
skip() { log "SKIP: $*"; exit $KSFT_SKIP; }
fail() { log "FAIL: $*"; exit $KSFT_FAIL; }

# e2e_init NAME TIMEOUT "$@": re-executes the calling script under a hard
# timeout, makes the work directory, marks the kernel log and arms cleanup.
e2e_init() {
	TEST_NAME=$1
	local limit=${E2E_TIMEOUT:-$2}
	shift 2
	if [ -z "${E2E_TIMEOUT_ARMED:-}" ]; then
		export E2E_TIMEOUT_ARMED=1
		exec timeout -k 20 "$limit" "$0" "$@"
	fi
	[ "$(id -u)" -eq 0 ] || skip "must run as root (inside the test VM)"
	WORK=$(mktemp -d "/tmp/e2e-$TEST_NAME.XXXXXX")
	trap 'e2e_cleanup $?' EXIT
	trap '' PIPE
	trap 'fail "timed out or interrupted"' TERM INT
	KMSG_MARK="muser-e2e: $TEST_NAME start $$ $(date +%s%N)"
	# info level: a mark, not something for the console
	echo "<6>$KMSG_MARK" >/dev/kmsg 2>/dev/null || KMSG_MARK=""
}

# --- QMP session: one qmp.py process per test (starting python under TCG
# takes seconds), talked to through two FIFOs on fds 7 and 8 --------------

QMP_PID=""

qmp_cli() { "$PYTHON" "$E2E_DIR/qmp.py" "$@"; }

# qmp_open SOCK TIMEOUT PID: start the session; the first qmp call waits up to
# TIMEOUT seconds for QEMU (process PID) to come up.
qmp_open() {
	mkfifo "$WORK/qmp.in" "$WORK/qmp.out"
	qmp_cli "$1" shell "$2" "$3" <"$WORK/qmp.in" >"$WORK/qmp.out" 2>>"$WORK/qmp.log" &
	QMP_PID=$!
	exec 7>"$WORK/qmp.in" 8<"$WORK/qmp.out"
}

# qmp OP ARGS...: one qmp.py operation (see qmp.py); prints its output.
qmp() {
	local line
	[ -n "$QMP_PID" ] || { echo "qmp: no session" >&2; return 1; }
	echo "$*" >&7 2>/dev/null || { echo "qmp: $*: session gone: $(tail -n 1 "$WORK/qmp.log")" >&2; return 1; }
	while IFS= read -r -t 180 line <&8; do
		line=${line%$'\r'}
		case $line in
		"=ok") return 0 ;;
		"=err "*) echo "qmp: $*: ${line#=err }" >&2; return 1 ;;
		*) printf '%s\n' "$line" ;;
		esac
	done
	echo "qmp: $*: no answer: $(tail -n 1 "$WORK/qmp.log")" >&2
	return 1
}

qmp_close() {
	[ -n "$QMP_PID" ] || return 0
	exec 7>&- 8<&-
	wait_pid "$QMP_PID" 10 || kill "$QMP_PID" 2>/dev/null
	wait "$QMP_PID" 2>/dev/null
	QMP_PID=""
}

# --- QEMU with its CPUs stopped (-S), driven over QMP/HMP ----------------------

# qemu_start_stopped MACHINE DEVICE [QEMU ARGS...]: start QEMU without default
# devices, with -device DEVICE (output in qemu.log), open the QMP session and
# wait until QEMU answers, which it does once every device is realized.
qemu_start_stopped() {
	local machine=$1 dev=$2
	shift 2
	log "starting $QEMU -machine $machine -S -device $dev${*:+ $*}"
	timeout -k 10 240 "$QEMU" -S -nodefaults -display none -machine "$machine" -accel tcg \
		-m 128 -qmp "unix:$WORK/qmp.sock,server=on,wait=off" -device "$dev" "$@" \
		>"$WORK/qemu.log" 2>&1 &
	QEMU_PID=$!
	qmp_open "$WORK/qmp.sock" 120 "$QEMU_PID"
	qmp hmp info version >/dev/null || fail "QEMU did not come up: $(tail -n 5 "$WORK/qemu.log")"
	log "QEMU is up"
}

# Config cycles to the device at BDF (bus:slot.fn) and HMP commands. These
# fail the test; inside $(...) they end only the subshell, hence the
# "|| exit" after each such assignment.
hmp() { qmp hmp "$@" || fail "HMP '$*' failed"; }
cfg_read() { qmp cfg-read "$BDF" "$@" || fail "config read $* failed"; }
cfg_write() { qmp cfg-write "$BDF" "$@" || fail "config write $* failed"; }
hex() { printf '0x%0*x' "$1" "$2"; }

# bar_mask N: write all ones to BAR N and print what it reads back then.
bar_mask() {
	cfg_write $((0x10 + 4 * $1)) 4 0xffffffff
	cfg_read $((0x10 + 4 * $1))
}

# bars_absent N...: each of these BARs must size as 0 (not implemented).
bars_absent() {
	local b v m
	for b in "$@"; do
		v=$(cfg_read $((0x10 + 4 * b))) || exit "$KSFT_FAIL"
		m=$(bar_mask "$b") || exit "$KSFT_FAIL"
		[ $((m)) -eq 0 ] || fail "BAR$b should be absent: sizing gave $m (was $v)"
	done
}

# bar_set N ADDR: program BAR N (memory or I/O) and check it reads back.
bar_set() {
	local got
	cfg_write $((0x10 + 4 * $1)) 4 "$2"
	got=$(cfg_read $((0x10 + 4 * $1))) || exit "$KSFT_FAIL"
	[ $((got & ~0xf)) -eq $(($2)) ] || fail "BAR$1 reads back $got after writing $2"
}

# cmd_enable BITS: set BITS in the command register (1 I/O, 2 memory, 4 bus
# master); they must stick. Leaves the register's value in CMD.
CMD=""
cmd_enable() {
	CMD=$(cfg_read 4 2) || exit "$KSFT_FAIL"
	cfg_write 4 2 $((CMD | $1))
	CMD=$(cfg_read 4 2) || exit "$KSFT_FAIL"
	[ $((CMD & $1)) -eq $(($1)) ] || fail "command register $CMD: $(hex 1 $(($1))) did not stick"
}

# qemu_quit: QEMU must exit with status 0 and have printed nothing but
# warnings (e.g. "Could not enable error recovery" for a device without an
# ERR interrupt).
qemu_quit() {
	local rc bad
	qmp quit
	qmp_close
	wait_pid "$QEMU_PID" 30 || fail "QEMU did not exit after quit"
	wait "$QEMU_PID"
	rc=$?
	QEMU_PID=""
	[ $rc -eq 0 ] || fail "QEMU exited with status $rc"
	bad=$(grep -v 'warning:' "$WORK/qemu.log")
	[ -z "$bad" ] || fail "QEMU reported: $(head -n 3 <<<"$bad")"
}

# sample_finish: the sample must have survived; stop it, remove the mdev.
sample_finish() {
	kill -0 "$SAMPLE_PID" 2>/dev/null || fail "the sample died while serving QEMU"
	stop_pid "$SAMPLE_PID" 5
	SAMPLE_PID=""
	mdev_remove || fail "removing the mdev failed"
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
		timeout -k 10 "$BOOT_TIMEOUT" "$QEMU" "$@" -serial "file:$console" \
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

need_sample() {
	[ -x "$SAMPLE" ] || skip "sample not built: $SAMPLE"
}

# Filter stdin down to the kernel log lines that fail any test.
kernel_bad() { grep -E -f <(grep -Ev '^(#|$)' "$E2E_DIR/../kernel-log-bad"); }

dmesg_since_mark() {
	if [ -n "$KMSG_MARK" ]; then
		dmesg 2>/dev/null | awk -v m="$KMSG_MARK" 'f; index($0, m) { f = 1 }'
	else
		dmesg 2>/dev/null
	fi
}

mdev_create() {
	UUID=$(cat /proc/sys/kernel/random/uuid)
	echo "$UUID" >"$MUSER_TYPE/create" || fail "cannot create mdev $UUID"
	[ -e "/sys/bus/mdev/devices/$UUID" ] || fail "mdev $UUID did not appear in /sys/bus/mdev/devices"
	for _ in $(seq 50); do
		[ -e "/dev/muser/$UUID" ] && break
		sleep 0.1
	done
	[ -e "/dev/muser/$UUID" ] || fail "/dev/muser/$UUID did not appear"
	log "mdev $UUID created (iommu group $(basename "$(readlink "/sys/bus/mdev/devices/$UUID/iommu_group")"))"
}

# The removal blocks in the kernel until every VMM closed the device: bound it.
mdev_remove() {
	[ -n "$UUID" ] && [ -e "/sys/bus/mdev/devices/$UUID" ] || return 0
	(echo 1 >"/sys/bus/mdev/devices/$UUID/remove") &
	local pid=$!
	for _ in $(seq 300); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $pid 2>/dev/null; then
		log "mdev remove still blocked after 30 s"
		return 1
	fi
	wait $pid || { log "mdev remove failed"; return 1; }
	[ ! -e "/sys/bus/mdev/devices/$UUID" ] || { log "mdev still present after remove"; return 1; }
	[ ! -e "/dev/muser/$UUID" ] || { log "/dev/muser/$UUID still present after remove"; return 1; }
	UUID=""
}

# sample_start [ARGS...]: start $SAMPLE $SAMPLE_ARGS $UUID ARGS... and wait
# for it to print "ready". Its output goes to $WORK/$SAMPLE_LOG.log (default
# sample.log); SAMPLE_QUIET=1 logs nothing on success.
sample_start() {
	local out=$WORK/${SAMPLE_LOG:-sample}.log
	need_sample
	# shellcheck disable=SC2086
	"$SAMPLE" $SAMPLE_ARGS "$UUID" "$@" >"$out" 2>&1 &
	SAMPLE_PID=$!
	for _ in $(seq 400); do
		grep -q ready "$out" && break
		kill -0 $SAMPLE_PID 2>/dev/null || { cat "$out"; fail "sample exited before ready"; }
		sleep 0.05
	done
	grep -q ready "$out" || fail "sample not ready after 20 s"
	[ -n "${SAMPLE_QUIET:-}" ] ||
		log "sample running (pid $SAMPLE_PID${SAMPLE_ARGS:+, args: $SAMPLE_ARGS})"
}

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq $(($2 * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM: killing"; kill -KILL "$pid"; }
	wait "$pid" 2>/dev/null
	return 0
}

# wait_pid PID SECONDS: wait for a child to exit; status 0 if it did.
wait_pid() {
	local pid=$1
	for _ in $(seq $(($2 * 10))); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

show_logs() {
	local f
	for f in "$WORK"/*.log; do
		[ -s "$f" ] || continue
		echo "----- $(basename "$f") (last 60 lines) -----"
		tail -n 60 "$f"
	done
}

e2e_cleanup() {
	local rc=$1
	trap - EXIT TERM INT
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		if [ -n "$QMP_PID" ]; then
			timeout 10 bash -c 'echo quit >&7; read -r -t 9 <&8' 2>/dev/null
		elif [ -S "$WORK/qmp.sock" ]; then
			timeout 10 "$PYTHON" "$E2E_DIR/qmp.py" "$WORK/qmp.sock" quit >/dev/null 2>&1
		fi
		wait_pid "$QEMU_PID" 10 || stop_pid "$QEMU_PID" 10
	fi
	qmp_close
	stop_pid "$SAMPLE_PID" 5
	if ! mdev_remove; then
		[ "$rc" -eq 0 ] && rc=$KSFT_FAIL
	fi
	local bad
	bad=$(dmesg_since_mark | kernel_bad)
	if [ -n "$bad" ]; then
		log "FAIL: kernel log reports problems:"
		dmesg_since_mark | tail -n 80
		[ "$rc" -eq 0 ] || [ "$rc" -eq $KSFT_SKIP ] && rc=$KSFT_FAIL
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne $KSFT_SKIP ] || [ -n "${E2E_VERBOSE:-}" ]; then
		[ -n "$WORK" ] && show_logs
		echo "----- kernel log since the test started (last 40 lines) -----"
		dmesg_since_mark | tail -n 40
	fi
	local res=${E2E_RESULTS:-${VM_RUN_RESULTS:-}}
	if [ -n "$res" ] && [ -n "$WORK" ] && mkdir -p "$res/e2e-$TEST_NAME" 2>/dev/null; then
		cp "$WORK"/*.log "$res/e2e-$TEST_NAME/" 2>/dev/null
		dmesg_since_mark >"$res/e2e-$TEST_NAME/dmesg.log"
	fi
	if [ -n "${E2E_KEEP:-}" ]; then
		log "work directory kept: $WORK"
	elif [ -n "$WORK" ]; then
		rm -rf "$WORK"
	fi
	case $rc in
	0) log "PASS" ;;
	4) ;;
	*) log "FAIL (status $rc)" ;;
	esac
	exit "$rc"
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
