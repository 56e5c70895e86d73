#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A running guest live-migrates with its muser device, and its driver sees
# no glitch. A nested guest (as in nested-gpio.sh) binds gpio-pci-idio-16 and
# reads GPIO line 16, the sample's toggling input, N times with a pause
# between reads; while it reads, its QEMU migrates to a second QEMU on the
# same host (its own mdev and sample, -incoming), and the guest finishes
# there. On the destination's console:
#   - line 16 must read 0 0 0 1 1 1 0 0 0 ... all N times: the device's
#     counter carried on across the switchover;
#   - register 1 read raw afterwards must read N/3: every read counted once,
#     none lost or repeated;
# and the source's console must show that the reads began there.
#
# Usage: nested-migrate-gpio.sh [--qemu 7.2|10.0]
# Environment: as nested-gpio.sh; MIG_READS (N, default 150), MIG_DELAY_MS
#   (the pause, default 100).
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/e2e/qmp.sh
. "$(dirname "$0")/qmp.sh"

qemu_args "$@"
e2e_init "nested-migrate-gpio$QEMU_TAG" 600 "$@"

KVER=$(uname -r)
KERNEL=$(nested_kernel "$KVER")
BOOT_TIMEOUT=${NESTED_BOOT_TIMEOUT:-420}
READS=${MIG_READS:-150}
DELAY=${MIG_DELAY_MS:-100}
AFTER=3
BDF=0000:00:04.0

need_qemu
need_cmd timeout cpio gzip xz
[ -x "$PYTHON" ] || skip "$PYTHON not found"
[ -r "$KERNEL" ] || skip "cannot read $KERNEL"
need_muser
need_sample


if [ -n "${NESTED_INITRAMFS:-}" ]; then
	INITRD=$NESTED_INITRAMFS
else
	INITRD=$WORK/initrd.cpio.gz
	TMPDIR=$WORK bash "$E2E_DIR/build-nested-initramfs.sh" "$KVER" "$INITRD" >"$WORK/build.log" 2>&1 ||
		fail "building the nested initramfs failed: $(tail -n 3 "$WORK/build.log")"
fi

e2e_mdev_create
SAMPLE_ARGS=--migration sample_start "$UUID" || fail "the source's sample did not start"
mig_dst_create
mig_dst_start --migration

# The same machine on both sides, but for the device and the console.
MACHINE=(-accel tcg -machine pc -m 256M -smp 1 -nodefaults -display none -no-reboot
	 -kernel "$KERNEL" -initrd "$INITRD"
	 -append "console=ttyS0 quiet panic=-1 e2e_raw=0 e2e_count=$READS e2e_lines=16 e2e_delay_ms=$DELAY e2e_after=$AFTER ${NESTED_APPEND:-}")
dev_arg() { echo "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$1,addr=04.0,$QEMU_MIGPROP"; }
SRC_CONSOLE=$WORK/console-src.log
DST_CONSOLE=$WORK/console-dst.log

log "booting the nested guest on the source"
nested_start "$SRC_CONSOLE" "${MACHINE[@]}" -device "$(dev_arg "$UUID")" \
	-qmp "unix:$WORK/src.sock,server=on,wait=off"
grep -qs E2E-BEGIN "$SRC_CONSOLE" || fail "the nested guest did not start: $(tail -n 3 "$WORK/qemu.log")"
wait_for 240 grep -qs E2E-READING "$SRC_CONSOLE" || fail "the nested guest did not start reading its line"
log "the guest reads line 16 ($READS reads, $DELAY ms apart): migrating it"

timeout -k 10 "$BOOT_TIMEOUT" "$QEMU" "${QEMU_ARGS[@]}" "${MACHINE[@]}" -device "$(dev_arg "$DST_UUID")" \
	-serial "file:$DST_CONSOLE" -qmp "unix:$WORK/dst.sock,server=on,wait=off" \
	-incoming defer >"$WORK/qemu-dst.log" 2>&1 &
DST_QEMU_PID=$!
src_qmp() { qmp_cli "$WORK/src.sock" "$@"; }
# The return path on both sides, as libvirt has it.
qmp_cli "$WORK/dst.sock" wait 120 >/dev/null ||
	fail "the destination QEMU did not come up: $(tail -n 3 "$WORK/qemu-dst.log")"
qmp_cli "$WORK/dst.sock" hmp "migrate_set_capability return-path on" \
	"migrate_incoming unix:$WORK/mig.sock" >/dev/null ||
	fail "the destination QEMU would not listen: $(tail -n 3 "$WORK/qemu-dst.log")"
src_qmp hmp "migrate_set_capability return-path on" "migrate -d unix:$WORK/mig.sock" >/dev/null ||
	fail "migrate failed"
status=""
for _ in $(seq 600); do
	status=$(src_qmp hmp "info migrate" | mig_status_in)
	case $status in completed|failed|cancelled) break ;; esac
	sleep 0.5
done
src_qmp hmp "info migrate" | tr -d '\r' | grep -E "status|time|downtime|transferred" | sed 's/^/#   /'
[ "$status" = completed ] || fail "migration $status: $(tail -n 3 "$WORK/qemu-dst.log")"
grep -q "E2E-OUT line 16" "$SRC_CONSOLE" && fail "the guest finished reading before the switchover: nothing was tested (raise MIG_READS)"
log "migration completed while the guest was reading; the source QEMU quits"
src_qmp quit >/dev/null
nested_wait "on the source"

wait "$DST_QEMU_PID"
rc=$?
DST_QEMU_PID=""
log "the nested guest finished on the destination (QEMU status $rc)"
[ $rc -eq 0 ] || fail "the destination QEMU exited with status $rc: $(tail -n 3 "$WORK/qemu-dst.log")"

CONSOLE=$WORK/console.log
cat "$SRC_CONSOLE" "$DST_CONSOLE" >"$CONSOLE"
line16="" raw1=""
# shellcheck disable=SC2317 # called by nested_console
mig_line() {
	case $1 in
	"E2E-OUT line 16: "*) line16=${1#E2E-OUT line 16: } ;;
	"E2E-OUT $BDF raw 0x1: "*) raw1=${1#"E2E-OUT $BDF raw 0x1: "} ;;
	esac
}
nested_console mig_line
want=$(awk -v n="$READS" 'BEGIN { for (i = 0; i < n; i++) printf "%s%d", i ? " " : "", int(i / 3) % 2 }')
[ "$line16" = "$want" ] || fail "line 16 glitched across the migration: read '$line16'"
want=$(awk -v n="$READS" -v a="$AFTER" 'BEGIN { for (i = 0; i < a; i++) printf "%s%d", i ? " " : "", int((n + i) / 3) }')
[ "$raw1" = "$want" ] || fail "register 1's counter reads '$raw1' after $READS reads, expected '$want'"
log "line 16 read $READS times without a glitch; the device counted every read once ($raw1)"
pid_gone "$DST_PID" && fail "the destination's sample died"
sample_finish "the nested guest"
exit 0
