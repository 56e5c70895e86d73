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
# The sample's test-hooks build in its wrong-reply mode (SAMPLE=$SAMPLE_HOOKS
# SAMPLE_ARGS=--bad-reply, see ../lib.sh) makes step 1 fail
# on both kernels, and line 0 on 6.1.
#
# Usage: nested-gpio.sh [--no-device] [--qemu 7.2|10.0]
#   --no-device  no muser: boot the nested guest without the device and check
#                that the driver loads and finds nothing (checks the machinery)
#   --qemu V     the QEMU (default MUSER_QEMU, else 7.2)
# Environment: see ../lib.sh; also NESTED_KERNEL (default: nested_kernel in ../lib.sh),
#   NESTED_INITRAMFS (prebuilt initramfs; default: built here under /tmp),
#   NESTED_BOOT_TIMEOUT (seconds for the nested guest, default 330),
#   NESTED_APPEND (extra kernel arguments for the nested guest, e.g. loglevel=7).
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
args=("$@")
MODE=muser
while [ $# -gt 0 ]; do
	case $1 in
	--no-device) MODE=nodevice ;;
	--qemu) qemu_select "${2:-}" || exit 2; shift ;;
	*) echo "usage: $0 [--no-device] [--qemu 7.2|10.0]" >&2; exit 2 ;;
	esac
	shift
done
e2e_init "nested-gpio$QEMU_TAG" 420 "${args[@]}"
KVER=$(uname -r)
KERNEL=$(nested_kernel "$KVER")
BOOT_TIMEOUT=${NESTED_BOOT_TIMEOUT:-330}
RAW=6
COUNT=12
BDF=0000:00:04.0

need_qemu
need_cmd timeout cpio gzip xz
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
	e2e_mdev_create
	sample_start "$UUID" || fail "the sample did not start"
	DEVARGS=(-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$UUID,addr=04.0")
fi

CONSOLE=$WORK/console.log
log "booting the nested guest ($KVER, TCG inside TCG: about a minute, more on a busy machine)"
nested_start "$CONSOLE" -accel tcg -machine pc -m 256M -smp 1 \
	-nodefaults -display none -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" \
	-append "console=ttyS0 quiet panic=-1 e2e_raw=$RAW e2e_count=$COUNT e2e_lines=0,16 ${NESTED_APPEND:-}" \
	"${DEVARGS[@]}"
nested_wait

# The console: gpio-read's results ("raw 0x0", "line 0", ... -> values) and
# what the nested guest found.
declare -A out=()
nochip="" pci="" chip="" modules=""
# shellcheck disable=SC2317 # called by nested_console
gpio_line() {
	local key
	case $1 in
	E2E-NOCHIP*) nochip=1 ;;
	E2E-MODULES*) modules=$1 ;;
	"E2E-PCI $BDF "*) pci=${1#"E2E-PCI $BDF "} ;;
	"E2E-OUT chip "*) chip=${1#E2E-OUT chip } ;;
	"E2E-OUT "*": "*)
		key=${1%%: *}
		key=${key#E2E-OUT }
		key=${key#"$BDF "}
		out[$key]=${1#*: }
		;;
	esac
}
nested_console gpio_line

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

sample_finish "the nested guest"
exit 0
