# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Build the initramfs of the nested guest of nested-gpio.sh:
#
#   bash selftests/e2e/build-nested-initramfs.sh KVER OUTFILE
#
# Contents: static busybox, the gpio-pci-idio-16 driver and every module it
# depends on (resolved with /lib/modules/KVER/modules.dep, decompressed, in
# load order), the static gpio-read program, and an /init that loads the
# modules, finds the gpiochip of the PCI-IDIO-16, reads lines with gpio-read,
# prints everything on the console behind "E2E-" markers and powers off.
#
# The kernel command line of the nested guest selects what to read:
#   e2e_raw=N        first, before the driver loads: N one-byte reads of
#                    BAR2 offset 0 through the sysfs resource2 mapping
#                    (default 6, 0 to skip)
#   e2e_count=N      reads per GPIO line (default 12)
#   e2e_lines=0,16   GPIO lines to read (default 0)
#   e2e_delay_ms=N   pause between two line reads (default 0), for reads
#                    that last (across a migration)
#   e2e_after=N      then, the driver unbound, N raw reads of register 1
#                    (default 0): its counter, how many reads the device saw
#
# nested-gpio.sh runs this inside the test VM (output under /tmp), so no
# host-side step is needed; it also works on the host.
#
# Environment: GPIO_READ (static gpio-read binary; default
# BUILD_DIR/selftests/e2e/gpio-read, compiled here with gcc -static if absent),
# BUSYBOX (default /bin/busybox, must be static: busybox-static).
set -eu

[ $# -eq 2 ] || { echo "usage: $0 KVER OUTFILE" >&2; exit 2; }
KVER=$1
OUT=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD_DIR=${BUILD_DIR:-$here/../../build/cmake}
GPIO_READ=${GPIO_READ:-$BUILD_DIR/selftests/e2e/gpio-read}
DRIVER=gpio-pci-idio-16
# shellcheck source=selftests/e2e/initramfs.sh
. "$here/initramfs.sh"

initramfs_begin "$KVER"
trap 'rm -rf "$STAGE"' EXIT
stage=$STAGE

if [ -x "$GPIO_READ" ]; then
	cp "$GPIO_READ" "$stage/gpio-read"
else
	command -v gcc >/dev/null || { echo "no $GPIO_READ and no gcc to build it" >&2; exit 1; }
	gcc -O2 -Wall -static -o "$stage/gpio-read" "$here/gpio-read.c"
fi

initramfs_add_module "$DRIVER"

{
	initramfs_init_head
	cat <<'EOF'

raw=6
count=12
lines=0
delay=0
after=0
for arg in $(cat /proc/cmdline); do
	case $arg in
	e2e_raw=*) raw=${arg#*=} ;;
	e2e_count=*) count=${arg#*=} ;;
	e2e_lines=*) lines=$(echo "${arg#*=}" | tr , ' ') ;;
	e2e_delay_ms=*) delay=${arg#*=} ;;
	e2e_after=*) after=${arg#*=} ;;
	esac
done

stamp() { read -r up _ </proc/uptime; echo "E2E-TIME $1 $up"; }
echo "E2E-BEGIN kernel $(uname -r)"
stamp begin
rc=0
if [ "$raw" -gt 0 ]; then
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x494f:0x0dc8 ] || continue
		/gpio-read --raw "$d/resource2" 0 "$raw" >/tmp.out 2>&1 || rc=1
		stamp raw-read
		sed "s/^/E2E-OUT $(basename "$d") /" /tmp.out
	done
fi
for m in $(cat /modules/order); do
	insmod "/modules/$m" || { echo "E2E-ERROR insmod $m failed"; rc=1; }
done
echo "E2E-MODULES $(cat /modules/order | tr '\n' ' ')"
stamp modules-loaded
for d in /sys/bus/pci/devices/*; do
	drv=none
	[ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
	echo "E2E-PCI $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device") driver=$drv"
done

chip=""
for c in /sys/bus/pci/drivers/pci-idio-16/*/gpiochip*; do
	[ -e "$c" ] && { chip=$(basename "$c"); break; }
done
if [ -z "$chip" ]; then
	echo "E2E-NOCHIP"
else
	echo "E2E-CHIP $chip of $(basename "$(dirname "$(readlink -f "/sys/bus/gpio/devices/$chip")")")"
	echo "E2E-READING"
	GPIO_READ_DELAY_MS=$delay /gpio-read "/dev/$chip" "$count" $lines >/tmp.out 2>&1 || rc=1
	sed 's/^/E2E-OUT /' /tmp.out
	stamp gpio-read
	# Register 1's counter itself, after the line reads: how many there
	# were (the driver unbound first: its BAR is not mappable while bound).
	if [ "$after" -gt 0 ]; then
		for d in /sys/bus/pci/devices/*; do
			[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x494f:0x0dc8 ] || continue
			echo "$(basename "$d")" >"$d/driver/unbind"
			/gpio-read --raw "$d/resource2" 1 "$after" >/tmp.out 2>&1 || rc=1
			sed "s/^/E2E-OUT $(basename "$d") /" /tmp.out
		done
	fi
fi
dmesg | grep -E '[Ii][Dd][Ii][Oo]|gpio|regmap|BUG:|WARNING:|Oops|Call Trace' | sed 's/^/E2E-DMESG /'
echo "E2E-END rc=$rc"
sync
poweroff -f
EOF
} >"$stage/init"
chmod +x "$stage/init"

modules=$(tr '\n' ' ' <"$stage/modules/order")
initramfs_pack "$OUT"
echo "nested initramfs for $KVER: $OUT ($(du -k "$OUT" | cut -f1) KiB; modules: $modules)"
