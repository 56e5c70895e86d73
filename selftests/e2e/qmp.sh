# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2119,SC2120
# QMP/HMP helpers of the e2e tests that drive QEMU with its CPUs stopped
# (qemu-hmp*.sh), through qmp.py. Sourced after ../lib.sh, not run.
#
#   . "$(dirname "$0")/../lib.sh"
#   . "$(dirname "$0")/qmp.sh"

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
	on_exit qmp_cleanup
}

# At exit, before the library stops QEMU: ask it to quit.
qmp_cleanup() {
	if [ -n "$QEMU_PID" ] && ! pid_gone "$QEMU_PID"; then
		if [ -n "$QMP_PID" ]; then
			timeout 10 bash -c 'echo quit >&7; read -r -t 9 <&8' 2>/dev/null
		elif [ -S "$WORK/qmp.sock" ]; then
			timeout 10 "$PYTHON" "$E2E_DIR/qmp.py" "$WORK/qmp.sock" quit >/dev/null 2>&1
		fi
		wait_pid "$QEMU_PID" 10
	fi
	qmp_close
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
	log "starting $QEMU${QEMU_ARGS[*]:+ ${QEMU_ARGS[*]}} -machine $machine -S -device $dev${*:+ $*}"
	timeout -k 10 240 "$QEMU" "${QEMU_ARGS[@]}" -S -nodefaults -display none \
		-machine "$machine" -accel tcg -m 128 \
		-qmp "unix:$WORK/qmp.sock,server=on,wait=off" -device "$dev" "$@" \
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

# mig_status_in: the status word of the "info migrate" output on stdin
# ("failed", not QEMU 10's "failed (Sibling indicated error 1)").
mig_status_in() { tr -d '\r' | sed -nE 's/^Migration status: *([a-z-]+).*/\1/p'; }

# qemu_quit [REGEX]: QEMU must exit with status 0 and have printed nothing
# but warnings (e.g. "Could not enable error recovery" for a device without
# an ERR interrupt) and lines matching REGEX (what a test caused on purpose).
qemu_quit() {
	local rc bad allowed=${1:-^$}
	qmp quit
	qmp_close
	wait_pid "$QEMU_PID" 30 || fail "QEMU did not exit after quit"
	wait "$QEMU_PID"
	rc=$?
	QEMU_PID=""
	[ $rc -eq 0 ] || fail "QEMU exited with status $rc"
	bad=$(grep -v 'warning:' "$WORK/qemu.log" | grep -Ev "$allowed")
	[ -z "$bad" ] || fail "QEMU reported: $(head -n 3 <<<"$bad")"
}
