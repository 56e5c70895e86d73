#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Live migration of a muser device between two unmodified QEMUs on one host,
# with their CPUs stopped (-S), over QMP/HMP:
#   - two mdevs, each with its own gpio-pci-idio-16 sample (--migration);
#   - the source's BAR2 is programmed by config cycles and read 6 times
#     (its counter: 0 0 0 1 1 1);
#   - a destination QEMU waits (-incoming), the source migrates to it over a
#     UNIX socket: QEMU 7.2 with migration v1 (x-enable-migration=on, the
#     sample's migration region driven by QEMU), QEMU 10.0 with v2
#     (enable-migration=on, muser.ko driving the same region); the return
#     path is on, as libvirt has it: a destination that fails to load fails
#     the migration on the source too;
#   - the destination's BAR2 must be where the source's was, and its counter
#     must carry on (2 2 2 3 3 3): the state crossed;
#   - the source's device stays stopped, its sample alive; both QEMUs quit
#     cleanly, the kernel log stays clean;
#   - the source's sample (the test hooks' copy, --dma-counter) writes a
#     counter to guest RAM every millisecond through its mapping, from
#     before the migration until pre-copy is past its first pass over RAM
#     (held there: 1 ms of downtime allowed at 1 MiB/s); the destination's
#     RAM must hold its last value: the page the device wrote after QEMU
#     sent it was reported dirty and sent again.
#
# With --fail MODE the migration is made to fail, or to survive a crash
# (the samples' test hooks, gpio-pci-idio-16-hooks):
#   refuse    the destination's device refuses the source's bytes (their
#             versions differ): the migration fails
#   kill-src  the source's sample is SIGKILLed as the VM stops for the
#             switchover, and replaced: the migration completes
#   kill-dst  the destination's sample is SIGKILLed while it loads, and
#             replaced: the stream is lost, the migration fails
#   cancel    the migration is cancelled as it pauses before the switchover
#             (pause-before-switchover)
# After a failure the source must carry on: its counter goes on from where
# it was (2 2 2), its sample alive, and its QEMU quits cleanly.
#
# Usage: qemu-migrate.sh [--qemu 7.2|10.0] [--fail MODE]
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/e2e/qmp.sh
. "$(dirname "$0")/qmp.sh"

args=("$@")
FAIL=""
while [ $# -gt 0 ]; do
	case $1 in
	--qemu) qemu_select "${2:-}" || exit 2; shift ;;
	--fail) FAIL=${2:-}; shift ;;
	*) echo "usage: $0 [--qemu 7.2|10.0] [--fail refuse|kill-src|kill-dst|cancel]" >&2; exit 2 ;;
	esac
	shift
done
case $FAIL in
''|refuse|kill-src|kill-dst|cancel) ;;
*) echo "$0: unknown --fail $FAIL" >&2; exit 2 ;;
esac
e2e_init "qemu-migrate${FAIL:+-$FAIL}$QEMU_TAG" 600 "${args[@]}"

SLOT=4
BDF=00:04.0
BAR=2
MMIO_ADDR=0xe0000000

need_qemu
need_cmd timeout
[ -x "$PYTHON" ] || skip "$PYTHON not found"
need_muser
need_sample


# The samples' arguments: the test hooks' copy (--dma-counter and the
# failures; ops/libvirt and nested-migrate-gpio run the shipped sample).
SRC_ARGS=--migration DST_ARGS=--migration
DMA_GPA=0x200000
case $FAIL in
'') SRC_ARGS+=" --dma-counter $DMA_GPA" ;;
refuse) SRC_ARGS+=" --mig-version 1" DST_ARGS+=" --mig-version 2" ;;
kill-src) SRC_ARGS+=" --mig-pause stop" ;;
kill-dst) SRC_ARGS+=" --mig-version 1" DST_ARGS+=" --mig-version 1 --mig-pause load" ;;
esac
[ -x "$SAMPLE_HOOKS" ] || fail "no $SAMPLE_HOOKS (the sample with its test hooks)"
SAMPLE=$SAMPLE_HOOKS

# stopped PID: the process is stopped (SIGSTOP).
# shellcheck disable=SC2317 # run by wait_for
stopped() { [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = T ]; }

e2e_mdev_create
SAMPLE_ARGS=$SRC_ARGS sample_start "$UUID" || fail "the source's sample did not start"
mig_dst_create
# shellcheck disable=SC2086 # the arguments are words
mig_dst_start $DST_ARGS

dev_arg() { echo "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$1,addr=$SLOT.0,$QEMU_MIGPROP"; }

qemu_start_stopped pc "$(dev_arg "$UUID")"
bar_set $BAR $MMIO_ADDR
cmd_enable 2
vals=$(qmp xp $MMIO_ADDR 6 1) || fail "source: BAR$BAR reads failed"
src=$(for v in $vals; do printf ' %d' "$v"; done)
log "source: BAR$BAR offset 0 read$src"
[ "$src" = " 0 0 0 1 1 1" ] || fail "source: the counter read$src, expected 0 0 0 1 1 1"

log "starting the destination QEMU (-incoming defer)"
timeout -k 10 240 "$QEMU" "${QEMU_ARGS[@]}" -S -nodefaults -display none -machine pc \
	-accel tcg -m 128 -qmp "unix:$WORK/dst.sock,server=on,wait=off" \
	-device "$(dev_arg "$DST_UUID")" -incoming defer \
	>"$WORK/qemu-dst.log" 2>&1 &
DST_QEMU_PID=$!
qmp_cli "$WORK/dst.sock" wait 120 >/dev/null ||
	fail "the destination QEMU did not come up: $(tail -n 5 "$WORK/qemu-dst.log")"
# The return path, as libvirt sets it: a destination that fails to load
# fails the migration on the source too, which then carries on.
qmp_cli "$WORK/dst.sock" hmp "migrate_set_capability return-path on" \
	"migrate_incoming unix:$WORK/mig.sock" >/dev/null ||
	fail "the destination QEMU would not listen"
hmp "migrate_set_capability return-path on" >/dev/null

mig_status() { qmp hmp "info migrate" | mig_status_in; }

# mig_wait STATUS...: wait (at most 4 minutes) until the migration's
# status, in $status, is one of them.
mig_wait() {
	local want=" $* "
	for _ in $(seq 960); do
		status=$(mig_status)
		case $want in *" $status "*) return 0 ;; esac
		sleep 0.25
	done
	return 1
}

# kill_stopped PID NAME: PID must stop itself (its hook): SIGKILL it there.
kill_stopped() {
	wait_for 120 stopped "$1" || fail "the $2's sample did not stop at its hook"
	log "the $2's sample stopped at its hook: SIGKILL, and a new one"
	kill -KILL "$1"
	wait_pid "$1" 10
}

# The migration waits before the switchover (the VM stopped, RAM sent):
# cancelled there.
[ "$FAIL" = cancel ] && hmp "migrate_set_capability pause-before-switchover on" >/dev/null
# While the device writes guest RAM, pre-copy must not converge: 1 ms of
# downtime at 1 MiB/s is less than the page it keeps dirty.
if [ -z "$FAIL" ]; then
	hmp "migrate_set_parameter downtime-limit 1" >/dev/null
	hmp "migrate_set_parameter max-bandwidth 1M" >/dev/null
fi
hmp "migrate -d unix:$WORK/mig.sock" >/dev/null
status=""
case $FAIL in
'')
	# Past the first pass over RAM (its dirty bitmap synced twice), the
	# device stops writing; the migration may then converge.
	syncs=0
	for _ in $(seq 240); do
		info=$(qmp hmp "info migrate" | tr -d '\r')
		status=$(mig_status_in <<<"$info")
		syncs=$(sed -nE 's/^ *[Dd]irty sync count: *([0-9]+).*/\1/p' <<<"$info")
		[ "$status" = active ] && [ "${syncs:-0}" -ge 2 ] && break
		[ "$status" = active ] || [ "$status" = setup ] ||
			fail "the migration is '$status' while the device still writes guest RAM (QEMU 7.2: it converged without the page the device keeps dirty)"
		sleep 0.25
	done
	[ "${syncs:-0}" -ge 2 ] || fail "pre-copy did not get past its first pass over RAM in 60 s ($syncs syncs)"
	log "pre-copy goes on: $syncs dirty bitmap syncs while the device writes"
	kill -USR1 "$SAMPLE_PID"
	wait_for 10 grep -q "^dma counter stopped at" "$SAMPLE_LOG" ||
		fail "the source's sample did not stop its guest memory writes: $(tail -n 3 "$SAMPLE_LOG")"
	hmp "migrate_set_parameter max-bandwidth 1G" >/dev/null
	hmp "migrate_set_parameter downtime-limit 10000" >/dev/null
	;;
kill-src)
	kill_stopped "$SAMPLE_PID" source
	SAMPLE_ARGS=--migration sample_start "$UUID" || fail "the source's new sample did not start"
	grep -q "ready (recovered)" "$SAMPLE_LOG" || fail "the source's new sample did not recover the state"
	;;
kill-dst)
	kill_stopped "$DST_PID" destination
	mig_dst_start --migration --mig-version 1
	;;
cancel)
	mig_wait pre-switchover || fail "the migration did not pause before the switchover: $status"
	hmp migrate_cancel >/dev/null
	;;
esac
# A destination that failed to load says so on the return path. QEMU
# 7.2's then exits; QEMU 10's stays up (HMP's migrate_incoming does not
# exit on error), and libvirt kills a destination whose incoming migration
# failed: so does this test.
if [ "$FAIL" = refuse ] || [ "$FAIL" = kill-dst ]; then
	for _ in $(seq 120); do
		pid_gone "$DST_QEMU_PID" && break
		if [ "$(qmp_cli "$WORK/dst.sock" hmp "info migrate" 2>/dev/null | mig_status_in)" = failed ]; then
			log "the destination failed to load: it is stopped, as libvirt would"
			kill -TERM "$DST_QEMU_PID"
			break
		fi
		sleep 0.5
	done
fi
mig_wait completed failed cancelled || fail "the migration did not end: $status"
qmp hmp "info migrate" | tr -d '\r' | sed 's/^/#   /'
case $FAIL in
''|kill-src)
	[ "$status" = completed ] || fail "migration $status: $(tail -n 3 "$WORK/qemu-dst.log")"
	log "migration completed"
	;;
*)
	[ "$status" != completed ] || fail "the migration completed, and should not have"
	log "migration $status, as it should"
	# The source carries on: its device answers as before, its counter
	# where it was.
	vals=$(qmp xp $MMIO_ADDR 3 1) || fail "source: BAR$BAR reads failed after the failed migration"
	src=$(for v in $vals; do printf ' %d' "$v"; done)
	log "source: BAR$BAR offset 0 read$src"
	[ "$src" = " 2 2 2" ] || fail "source: the counter read$src after the failed migration, expected 2 2 2"
	# QEMU 7.2's destination exits; QEMU 10's stays up: stopped, as
	# libvirt stops a destination whose migration failed.
	if ! wait_pid "$DST_QEMU_PID" 10; then
		log "the destination QEMU is still up: stopped"
		stop_pid "$DST_QEMU_PID" 10
	fi
	wait "$DST_QEMU_PID"
	log "the destination QEMU exited (status $?): $(grep -v '^$' "$WORK/qemu-dst.log" | tail -n 1)"
	DST_QEMU_PID=""
	[ "$FAIL" = refuse ] && { grep -q "refusing the device's bytes of version 1" "$WORK/sample-dst.log" ||
		fail "the destination's sample did not say why it refused"; }
	# The source says its migration failed (its return path lost).
	qemu_quit 'Channel error: |Sibling indicated error|Unable to write to socket'
	pid_gone "$DST_PID" && fail "the destination's sample died"
	sample_finish
	exit 0
	;;
esac

dst_qmp() { qmp_cli "$WORK/dst.sock" "$@"; }
state=$(dst_qmp hmp "info status" | tr -d '\r')
log "destination: $state"
bar=$(dst_qmp cfg-read $BDF $((0x10 + 4 * BAR))) || fail "destination: config read failed"
[ $((bar & ~0xf)) -eq $((MMIO_ADDR)) ] || fail "destination: BAR$BAR is $bar, expected $MMIO_ADDR"
vals=$(dst_qmp xp $MMIO_ADDR 6 1) || fail "destination: BAR$BAR reads failed"
dst=$(for v in $vals; do printf ' %d' "$v"; done)
log "destination: BAR$BAR offset 0 read$dst"
[ "$dst" = " 2 2 2 3 3 3" ] || fail "destination: the counter read$dst, expected 2 2 2 3 3 3 (it did not carry on from the source)"

# The device's writes to guest RAM: the last one arrived.
if [ -z "$FAIL" ]; then
	last=$(sed -nE 's/^dma counter stopped at ([0-9]+)$/\1/p' "$SAMPLE_LOG")
	[ -n "$last" ] || fail "the source's sample did not stop its guest memory writes: $(tail -n 3 "$SAMPLE_LOG")"
	[ "$last" -ge 100 ] || fail "the source's sample wrote guest memory only $last times"
	got=$(dst_qmp xp $DMA_GPA 1 8) || fail "destination: reading RAM at $DMA_GPA failed"
	got=$((got))
	log "the source's sample wrote guest RAM at $DMA_GPA $last times until the VM stopped; the destination holds $got"
	[ "$got" = "$last" ] || fail "destination: RAM at $DMA_GPA holds $got, the device's last write was $last (a page it wrote was not reported dirty)"
fi

# Both QEMUs quit cleanly; both samples survived.
dst_qmp quit >/dev/null
wait_pid "$DST_QEMU_PID" 30 || fail "the destination QEMU did not exit"
wait "$DST_QEMU_PID" || fail "the destination QEMU exited with status $?"
DST_QEMU_PID=""
bad=$(grep -v 'warning:' "$WORK/qemu-dst.log")
[ -z "$bad" ] || fail "the destination QEMU reported: $(head -n 3 <<<"$bad")"
qemu_quit
pid_gone "$DST_PID" && fail "the destination's sample died"
sample_finish
exit 0
