#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# End to end with an unmodified QEMU: the gpio-pci-idio-16 sample serves an
# mdev, QEMU opens it as -device vfio-pci,sysfsdev=... with its CPUs stopped
# (-S), and the test drives the device over QMP/HMP:
#   - real PCI configuration cycles (ports 0xcf8/0xcfc): vendor/device IDs,
#     interrupt pin, BAR2 sizing and programming, command register;
#   - `info pci` must list the device and its BAR2 at the programmed address;
#   - BAR2 reads with `xp` (QEMU memory dispatch -> vfio-pci -> muser.ko ->
#     the sample): offset 0 must return the sample's counter, which advances
#     every third read (0,0,0,1,1,1,...).
# Then QEMU quits, the sample stops, the mdev is removed, and the kernel log
# must be clean.
#
# Usage: qemu-hmp.sh [--plumbing] [--qemu 7.2|10.0]
#   --plumbing  no muser: run the same QMP/HMP flow against QEMU's emulated
#               "edu" device (checks the test machinery itself)
#   --qemu V    the QEMU to start (default MUSER_QEMU, else 7.2; see
#               qemu_select in ../lib.sh); with 10.0 the test is qemu-hmp-q10
# Environment: see ../lib.sh; also MACHINE (pc or q35, default pc),
#   HMP_READS (BAR2 reads, default 12).
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/e2e/qmp.sh
. "$(dirname "$0")/qmp.sh"

args=("$@")
MODE=muser
while [ $# -gt 0 ]; do
	case $1 in
	--plumbing) MODE=plumbing ;;
	--qemu) qemu_select "${2:-}" || exit 2; shift ;;
	*) echo "usage: $0 [--plumbing] [--qemu 7.2|10.0]" >&2; exit 2 ;;
	esac
	shift
done
e2e_init "qemu-hmp$QEMU_TAG" 300 "${args[@]}"

MACHINE=${MACHINE:-pc}
READS=${HMP_READS:-12}
SLOT=4
BDF=00:04.0
MMIO_ADDR=0xe0000000
IO_ADDR=0xc000

need_qemu
need_cmd timeout
[ -x "$PYTHON" ] || skip "$PYTHON not found"

if [ "$MODE" = muser ]; then
	need_muser
	need_sample
	VENDOR_DEVICE=0x0dc8494f
	BAR=2
	BAR_SIZE=0x100
	e2e_mdev_create
	sample_start "$UUID" || fail "the sample did not start"
	DEVARG="vfio-pci,sysfsdev=/sys/bus/mdev/devices/$UUID,addr=$SLOT.0"
else
	VENDOR_DEVICE=0x11e81234
	BAR=0
	BAR_SIZE=0x100000
	DEVARG="edu,addr=$SLOT.0"
fi

qemu_start_stopped "$MACHINE" "$DEVARG"

# --- configuration space through real config cycles ---------------------------
id=$(cfg_read 0) || exit "$KSFT_FAIL"
[ "$id" = "$VENDOR_DEVICE" ] || fail "vendor/device at $BDF is $id, expected $VENDOR_DEVICE"
log "config 0x00: vendor/device $id"
did=$(cfg_read 2 2) || exit "$KSFT_FAIL"
[ "$did" = "$(hex 4 $((VENDOR_DEVICE >> 16)))" ] || fail "16-bit read of the device ID gave $did"
pin=$(cfg_read 0x3d 1) || exit "$KSFT_FAIL"
[ "$pin" = 0x01 ] || fail "interrupt pin is $pin, expected 0x01 (INTA)"

BAR_OFF=$((0x10 + 4 * BAR))
orig=$(cfg_read $BAR_OFF) || exit "$KSFT_FAIL"
mask=$(bar_mask $BAR) || exit "$KSFT_FAIL"
if [ $((mask & 1)) -eq 1 ]; then
	BAR_IO=1
	size=$(((~(mask & ~3) & 0xffff) + 1))
	addr=$IO_ADDR
else
	BAR_IO=0
	size=$(((~(mask & ~0xf) & 0xffffffff) + 1))
	addr=$MMIO_ADDR
fi
log "BAR$BAR: original $orig, sizing mask $mask: $([ $BAR_IO = 1 ] && echo I/O || echo memory), size $(hex 1 $size)"
[ "$size" -eq $((BAR_SIZE)) ] || fail "BAR$BAR size $(hex 1 $size), expected $BAR_SIZE"
[ "$MODE" = muser ] && bars_absent 0 1 3 4 5

bar_set $BAR $addr
cmd_enable $((BAR_IO ? 1 : 2))
log "BAR$BAR at $(hex 1 $addr), command $CMD"

info=$(hmp "info pci") || exit "$KSFT_FAIL"
echo "$info" | tr -d '\r' | awk -v s="device   $SLOT," 'index($0, s) { f = 1 } f && /id ""/ { print; exit } f'
pat=$(printf 'PCI device %04x:%04x' $((VENDOR_DEVICE & 0xffff)) $((VENDOR_DEVICE >> 16)))
echo "$info" | grep -q "$pat" || fail "'info pci' does not list $pat"
echo "$info" | grep -Eq "BAR$BAR: .* at $(hex 1 $addr) " || fail "'info pci' does not show BAR$BAR at $(hex 1 $addr)"

# --- BAR reads through QEMU's memory dispatch ---------------------------------
if [ "$MODE" = plumbing ]; then
	# edu: offset 0 is its identification register 0x010000ed (4-byte access only)
	vals=$(qmp xp $addr 3 4) || fail "xp failed"
	for v in $vals; do
		[ "$v" = 0x010000ed ] || fail "edu identification read $v"
	done
	log "edu BAR0 reads: ${vals//$'\n'/ }"
	exit 0
fi

if [ $BAR_IO = 1 ]; then
	vals=$(qmp in $addr "$READS" 1) || fail "port reads of BAR$BAR failed"
else
	vals=$(qmp xp $addr "$READS" 1) || fail "xp reads of BAR$BAR failed"
fi
dec=""
for v in $vals; do dec="$dec $((v))"; done
log "BAR$BAR offset 0, $READS one-byte reads:$dec"
read -ra vs <<<"$dec"
[ "${#vs[@]}" -eq "$READS" ] || fail "expected $READS values"
check_counter "BAR${BAR}[0]" 3 256 "${vs[@]}" || fail "BAR$BAR offset 0 does not follow the sample's counter"
# Nothing else reads the BAR (QEMU does not, its CPUs are stopped): the
# counter must start at 0.
want=$(awk -v n="$READS" 'BEGIN { for (i = 0; i < n; i++) printf " %d", int(i / 3) }')
[ "$dec" = "$want" ] || fail "BAR$BAR offset 0 read$dec, expected$want"

# The device must still answer config cycles after the BAR traffic.
id=$(cfg_read 0) || exit "$KSFT_FAIL"
[ "$id" = "$VENDOR_DEVICE" ] || fail "vendor/device reads $id after BAR traffic"

# --- orderly shutdown ---------------------------------------------------------
qemu_quit
sample_finish
exit 0
