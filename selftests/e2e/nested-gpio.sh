#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# End to end with a real guest driver: an unmodified QEMU (TCG, nested inside
# the test VM) boots the same Debian kernel with a small initramfs (see
# build-nested-initramfs.sh) and a muser mdev served by the gpio-pci-idio-16
# sample as -device vfio-pci. Inside the nested guest:
#   1. before any driver loads, BAR2 offset 0 is read 6 times through the
#      sysfs resource2 mapping: exactly 0 0 0 1 1 1 (the sample's counter,
#      advancing every third read, nothing else having read it);
#   2. the kernel's gpio-pci-idio-16 driver binds to the device (config space,
#      BAR, INTx and probe-time register writes all go through muser);
#   3. gpio-read reads GPIO line 0 (OUT0: bit 0 of register 0) and line 16
#      (IIN0: bit 0 of register 1) 12 times each through /dev/gpiochipN.
# Expected line values depend on the driver generation:
#   6.1  (ioread8 driver): line 0 reads the device each time, continuing the
#        counter at 2: 0 0 0 1 1 1 0 0 0 1 1 1.
#   6.12 (regmap driver, gpio-idio-16 library): registers 0 and 4 are not in
#        the regmap's readable set, so output lines are served from the
#        regmap cache and never read from the device: line 0 reads 0 every
#        time.
#   Both: line 16 (volatile) reads the device, whose register 1 has a counter
#        of its own: 0 0 0 1 1 1 0 0 0 1 1 1, the toggling input.
# The sample's wrong-reply mode (SAMPLE_ARGS=--bad-reply) makes step 1 fail
# on both kernels, and line 0 on 6.1.
#
# Usage: nested-gpio.sh [--no-device]
#   --no-device  no muser: boot the nested guest without the device and check
#                that the driver loads and finds nothing (checks the machinery)
# Environment: see lib.sh; also NESTED_KERNEL (default /boot/vmlinuz-$(uname -r)),
#   NESTED_INITRAMFS (prebuilt initramfs; default: built here under /tmp),
#   NESTED_BOOT_TIMEOUT (seconds for the nested guest, default 330),
#   NESTED_APPEND (extra kernel arguments for the nested guest, e.g. loglevel=7).
# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init nested-gpio 420 "$@"

MODE=muser
[ "${1:-}" = "--no-device" ] && MODE=nodevice
KVER=$(uname -r)
KERNEL=${NESTED_KERNEL:-/boot/vmlinuz-$KVER}
BOOT_TIMEOUT=${NESTED_BOOT_TIMEOUT:-330}
RAW=6
COUNT=12
BDF=0000:00:04.0

need_cmd "$QEMU" timeout cpio gzip xz
[ -r "$KERNEL" ] || skip "cannot read $KERNEL"
if [ "$MODE" = muser ]; then
	need_muser
	need_sample
fi

if [ -n "${NESTED_INITRAMFS:-}" ]; then
	INITRD=$NESTED_INITRAMFS
else
	INITRD=$WORK/initrd.cpio.gz
	TMPDIR=$WORK bash "$E2E_DIR/build-nested-initramfs.sh" "$KVER" "$INITRD" >"$WORK/build.log" 2>&1 ||
		fail "building the nested initramfs failed: $(tail -n 3 "$WORK/build.log")"
	log "$(tail -n 1 "$WORK/build.log")"
fi

DEVARGS=()
if [ "$MODE" = muser ]; then
	mdev_create
	sample_start
	DEVARGS=(-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$UUID,addr=04.0")
fi

CONSOLE=$WORK/console.log
log "booting the nested guest ($KVER, TCG inside TCG: about a minute, more on a busy machine)"
nested_start "$CONSOLE" -accel tcg -machine pc -m 256M -smp 1 \
	-nodefaults -display none -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" \
	-append "console=ttyS0 quiet panic=-1 e2e_raw=$RAW e2e_count=$COUNT e2e_lines=0,16 ${NESTED_APPEND:-}" \
	"${DEVARGS[@]}"
wait $QEMU_PID
qrc=$?
QEMU_PID=""
log "nested guest finished (QEMU status $qrc)"
[ $qrc -eq 124 ] && fail "the nested guest did not finish within $BOOT_TIMEOUT s"
[ $qrc -eq 0 ] || fail "QEMU exited with status $qrc: $(tail -n 3 "$WORK/qemu.log")"

# Parse the console with shell builtins only (every fork is slow under TCG).
declare -A out=()	# gpio-read results: "raw 0x0", "line 0", ... -> values
begin="" end="" errors="" nochip="" pci="" chip="" modules="" crash=""
while IFS= read -r line; do
	line=${line%$'\r'}
	[[ $line == E2E-* ]] && echo "  $line"
	case $line in
	E2E-BEGIN*) begin=$line ;;
	E2E-END*) end=${line#E2E-END } ;;
	E2E-ERROR*) errors+="$line; " ;;
	E2E-NOCHIP*) nochip=1 ;;
	E2E-MODULES*) modules=$line ;;
	"E2E-PCI $BDF "*) pci=${line#"E2E-PCI $BDF "} ;;
	"E2E-OUT chip "*) chip=${line#E2E-OUT chip } ;;
	"E2E-OUT "*": "*)
		key=${line%%: *}
		key=${key#E2E-OUT }
		key=${key#"$BDF "}
		out[$key]=${line#*: }
		;;
	esac
	[[ $line =~ Kernel\ panic|BUG:|Oops|WARNING:|Call\ Trace ]] && crash+="$line; "
done <"$CONSOLE"

[ -n "$begin" ] || fail "the nested guest's /init did not start"
[ -n "$end" ] || fail "the nested guest's /init did not finish"
[ -z "$errors" ] || fail "errors in the nested guest: $errors"
[ -z "$crash" ] || fail "the nested kernel reports problems: $crash"
[ "$end" = rc=0 ] || fail "the nested guest reports failure ($end)"

if [ "$MODE" = nodevice ]; then
	[ -n "$nochip" ] || fail "expected no gpiochip without the device"
	exit 0
fi

[ "$pci" = "0x494f:0x0dc8 driver=pci-idio-16" ] ||
	fail "the nested guest has no PCI-IDIO-16 at $BDF bound to pci-idio-16 (${pci:-absent})"
[ -n "$chip" ] || fail "gpio-read did not open the gpiochip"
[[ $chip == *"label \"$BDF\" lines 32" ]] || fail "unexpected gpiochip: $chip"

expect() {
	local what=$1 want=$2 why=$3
	[ "${out[$what]:-}" = "$want" ] || fail "$what read '${out[$what]:-}', expected '$want' ($why)"
	log "$what: $want ($why)"
}

expect "raw 0x0" "0 0 0 1 1 1" "BAR2 offset 0 is the sample's counter"
if [[ $modules == *gpio-idio-16.ko* ]]; then
	expect "line 0" "0 0 0 0 0 0 0 0 0 0 0 0" "regmap driver: OUT lines come from its cache, not the device"
else
	expect "line 0" "0 0 0 1 1 1 0 0 0 1 1 1" "bit 0 of the counter, continuing at 2"
fi
expect "line 16" "0 0 0 1 1 1 0 0 0 1 1 1" "bit 0 of register 1's counter: the toggling input"

kill -0 "$SAMPLE_PID" 2>/dev/null || fail "the sample died while serving the nested guest"
stop_pid "$SAMPLE_PID" 5
SAMPLE_PID=""
mdev_remove || fail "removing the mdev failed"
exit 0
