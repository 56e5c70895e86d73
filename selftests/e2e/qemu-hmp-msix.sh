#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# End to end with an unmodified QEMU and the msix-doorbell sample: QEMU (q35,
# CPUs stopped with -S) opens the mdev as -device vfio-pci,sysfsdev=..., and
# the test drives it over QMP/HMP with real configuration cycles:
#   1. capabilities: the chain from 0x34 as QEMU presents it must be exactly
#      PM (0x40) -> MSI-X (0x48), with the sample's 4 vectors, table in BAR2
#      at 0 and PBA in BAR2 at 0x1000 (QEMU's own trace of its MSI-X setup
#      must agree);
#   2. BARs and device memory: BAR0 and BAR2 sized and programmed, memory
#      enabled; `info mtree -f` must show QEMU's mmap of BAR0's doorbell page
#      ("UUID BAR 0 mmaps[0]", i.e. the sparse mmap capability was honoured)
#      and nothing mapped over the trapped register page or BAR2. `xp` reads
#      the magic and the vector count through the trapped path (the sample
#      must see those requests) and, at BAR0+0x1800, the value the sample
#      wrote into device memory (--stamp) without any request reaching it;
#   3. MSI-X setup: setting MSI-X Enable in Message Control must reach the
#      sample twice: the config write itself, and QEMU's VFIO_DEVICE_SET_IRQS
#      for MSI-X, as muser.ko reports it: QEMU before 8.2 sets vector 0 up
#      with an eventfd (and keeps it); 8.2 and later (10.0) set vector 0 with
#      fd -1, MSI-X on with no eventfd, as the guest's vectors are all
#      masked. Clearing the bit must take the vectors away again.
# Then QEMU quits, the sample stops, the mdev is removed, and the kernel log
# must be clean.
#
# Usage: qemu-hmp-msix.sh [--qemu 7.2|10.0]
#   --qemu V    the QEMU to start (default MUSER_QEMU, else 7.2; see
#               qemu_select in ../lib.sh); with 10.0 the test is
#               qemu-hmp-msix-q10
# Environment: see ../lib.sh; also DOORBELL_SAMPLE (the msix-doorbell sample),
#   DEVICE_OPTS (appended to the -device option, e.g. ",x-no-mmap=on":
#   selftests/bite.sh qemu-hmp-msix uses it to check that the test then fails).
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/e2e/qmp.sh
. "$(dirname "$0")/qmp.sh"

qemu_args "$@"
e2e_init "qemu-hmp-msix$QEMU_TAG" 300 "$@"

SAMPLE=${DOORBELL_SAMPLE:-$BUILD_DIR/samples/msix-doorbell}
SLOT=4
BDF=00:04.0
VENDOR_DEVICE=0x00014e58
BAR0_ADDR=0xe0000000
BAR2_ADDR=0xe0010000
BAR_SIZE=0x2000
MAGIC=0x5253554d
NVEC=4
STAMP=$(printf '0x%04x%04x' $((RANDOM | 0x8000)) "$RANDOM")
TRACE=$WORK/qemu-trace.log

need_qemu
need_cmd timeout
[ -x "$PYTHON" ] || skip "$PYTHON not found"
need_muser
need_sample

e2e_mdev_create
SAMPLE_ARGS="-v --stamp $STAMP $SAMPLE_ARGS" sample_start "$UUID" || fail "the sample did not start"
qemu_start_stopped q35 "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$UUID,addr=$SLOT.0${DEVICE_OPTS:-}" \
	-trace 'vfio_msix_*' -D "$TRACE"

# sample_saw EXTENDED-REGEX [SECONDS [LINE]]: wait for a line of the sample's
# log (after line LINE).
sample_saw() {
	local n=$((${2:-0} * 10))
	while ! tail -n +$((${3:-0} + 1)) "$WORK/sample.log" | grep -Eq "$1"; do
		[ $n -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}

id=$(cfg_read 0) || exit "$KSFT_FAIL"
[ "$id" = "$VENDOR_DEVICE" ] || fail "vendor/device at $BDF is $id, expected $VENDOR_DEVICE"
log "config 0x00: vendor/device $id"

# --- 1. the capability list QEMU parsed ---------------------------------------
status=$(cfg_read 6 2) || exit "$KSFT_FAIL"
[ $((status & 0x10)) -ne 0 ] || fail "status $status: Capabilities List bit clear"
ptr=$(cfg_read 0x34 1) || exit "$KSFT_FAIL"
ptr=$((ptr & 0xfc))
caps=""
shown=""
while [ $ptr -ne 0 ]; do
	[ ${#caps} -lt 200 ] || fail "capability chain does not end: $caps"
	cid=$(cfg_read $ptr 1) || exit "$KSFT_FAIL"
	case $((cid)) in
	1) name=PM ;; 5) name=MSI ;; 9) name=vendor ;; 16) name=PCIe ;; 17) name=MSI-X ;;
	*) name=unknown ;;
	esac
	caps="$caps $(hex 2 $ptr):$cid"
	shown="$shown -> $(hex 2 $ptr) $name ($cid)"
	[ $((cid)) -eq 17 ] && MSIX=$ptr
	next=$(cfg_read $((ptr + 1)) 1) || exit "$KSFT_FAIL"
	ptr=$((next & 0xfc))
done
log "capabilities: 0x34${shown:- -> none}"
# The sample declares PM and MSI-X, in that order; its config space is 256
# bytes (no PCI Express capability), and QEMU keeps both where they are.
[ "$caps" = " 0x40:0x01 0x48:0x11" ] || fail "capabilities$caps, expected 0x40:0x01 (PM) 0x48:0x11 (MSI-X)"
pmc=$(cfg_read 0x42 2) || exit "$KSFT_FAIL"
[ $((pmc & 7)) -eq 3 ] || fail "PM capabilities $pmc: version $((pmc & 7)), expected 3"
ctrl=$(cfg_read $((MSIX + 2)) 2) || exit "$KSFT_FAIL"
table=$(cfg_read $((MSIX + 4))) || exit "$KSFT_FAIL"
pba=$(cfg_read $((MSIX + 8))) || exit "$KSFT_FAIL"
log "MSI-X: control $ctrl ($(((ctrl & 0x7ff) + 1)) vectors), table $table (BAR$((table & 7)) + $(hex 1 $((table & ~7)))), PBA $pba (BAR$((pba & 7)) + $(hex 1 $((pba & ~7))))"
[ $((ctrl & 0x7ff)) -eq $((NVEC - 1)) ] || fail "MSI-X table size field $((ctrl & 0x7ff)), expected $((NVEC - 1))"
[ $((ctrl & 0xc000)) -eq 0 ] || fail "MSI-X control $ctrl: enabled or masked at reset"
[ "$table" = 0x00000002 ] || fail "MSI-X table $table, expected BIR 2 offset 0 (0x00000002)"
[ "$pba" = 0x00001002 ] || fail "MSI-X PBA $pba, expected BIR 2 offset 0x1000 (0x00001002)"
# QEMU's own parse (at realize): trace vfio_msix_early_setup. From 8.2 on
# it also says whether the MSI-X index is NORESIZE, which muser.ko's is.
early=$(grep -m1 'vfio_msix_early_setup' "$TRACE")
log "QEMU: ${early:-no vfio_msix_early_setup trace}"
noresize=""
qemu_at_least 8.2 && noresize=", noresize 1"
grep -Eq "vfio_msix_early_setup $UUID PCI MSI-X CAP @0x48, BAR 2, offset 0x0, entries $NVEC$noresize\$" "$TRACE" ||
	fail "QEMU's vfio_msix_early_setup trace does not show table BAR2+0, $NVEC entries$noresize"

# --- 2. BARs, QEMU's mmap of device memory, data through both paths -----------
for b in 0 2; do
	m=$(bar_mask $b) || exit "$KSFT_FAIL"
	[ $((m)) -eq $((~(BAR_SIZE - 1) & 0xffffffff)) ] ||
		fail "BAR$b sizing mask $m, expected a 32-bit memory BAR of $BAR_SIZE bytes"
done
bars_absent 1 3 4 5
bar_set 0 $BAR0_ADDR
bar_set 2 $BAR2_ADDR
cmd_enable 2
log "BAR0 at $BAR0_ADDR, BAR2 at $BAR2_ADDR (size $BAR_SIZE each), command $CMD"

mtree=$(hmp "info mtree -f") || exit "$KSFT_FAIL"
mtree=$(tr -d '\r' <<<"$mtree" | grep -E "$UUID|msix-(table|pba)" | sort -u)
awk '{ sub(/^ */, "  mtree: "); print }' <<<"$mtree"
b0=$(printf '%016x' $((BAR0_ADDR)))
b0p=$(printf '%016x' $((BAR0_ADDR + 0x1000)))
b0e=$(printf '%016x' $((BAR0_ADDR + BAR_SIZE - 1)))
grep -Eq "^ *$b0p-$b0e \(prio [0-9]+, ramd\): $UUID BAR 0 mmaps\[0\]" <<<"$mtree" ||
	fail "no mmap of BAR0's doorbell page ($b0p-$b0e, \"$UUID BAR 0 mmaps[0]\") in 'info mtree -f'"
[ "$(grep -c 'mmaps' <<<"$mtree")" -eq 1 ] || fail "'info mtree -f' shows other mmaps than BAR0's doorbell page"
grep -Eq "^ *$b0-$(printf '%016x' $((BAR0_ADDR + 0xfff))) \(prio [0-9]+, i/o\): $UUID BAR 0$" <<<"$mtree" ||
	fail "BAR0's register page is not trapped (i/o) in 'info mtree -f'"
# QEMU emulates the MSI-X table itself, where the capability says: BAR2 + 0.
t0=$(printf '%016x' $((BAR2_ADDR)))
grep -Eq "^ *$t0-$(printf '%016x' $((BAR2_ADDR + 16 * NVEC - 1))) \(prio [0-9]+, i/o\): msix-table$" <<<"$mtree" ||
	fail "QEMU's MSI-X table is not at BAR2 + 0 ($t0) in 'info mtree -f'"

reqs0=$(grep -Ec '(read|write) region 0 offset' "$WORK/sample.log")
magic=$(qmp xp $BAR0_ADDR 1 4) || fail "xp of BAR0+0 failed"
nvec=$(qmp xp $((BAR0_ADDR + 4)) 1 4) || fail "xp of BAR0+4 failed"
log "BAR0+0x0: $magic, BAR0+0x4: $nvec (trapped: answered by the sample)"
[ "$magic" = $MAGIC ] || fail "BAR0+0x0 read $magic, expected the magic $MAGIC"
[ $((nvec)) -eq $NVEC ] || fail "BAR0+0x4 read $nvec, expected $NVEC vectors"
sample_saw 'req [0-9]+ read region 0 offset 0x4 len 4: ok' ||
	fail "the sample did not log the read of BAR0+0x4"
stamp=$(qmp xp $((BAR0_ADDR + 0x1800)) 1 4) || fail "xp of BAR0+0x1800 failed"
bells=$(qmp xp $((BAR0_ADDR + 0x1000)) $NVEC 4) || fail "xp of the doorbells failed"
log "BAR0+0x1800: $stamp (device memory the sample wrote: $STAMP), doorbells: ${bells//$'\n'/ }"
[ $((stamp)) -eq $((STAMP)) ] || fail "BAR0+0x1800 read $stamp, expected the sample's stamp $STAMP"
for v in $bells; do
	[ $((v)) -eq 0 ] || fail "a doorbell reads $v, expected 0"
done
# Only the two register reads reached the sample; device memory trapped nowhere.
reqs1=$(grep -Ec '(read|write) region 0 offset' "$WORK/sample.log")
[ $((reqs1 - reqs0)) -eq 2 ] || fail "$((reqs1 - reqs0)) BAR0 requests reached the sample, expected 2 (offsets 0 and 4)"
! grep -Eq 'region 0 offset 0x1[0-9a-f]{3} ' "$WORK/sample.log" ||
	fail "an access to BAR0's doorbell page reached the sample: $(grep -Em1 'region 0 offset 0x1[0-9a-f]{3} ' "$WORK/sample.log")"

# --- 3. MSI-X setup reaches the emulator --------------------------------------
# At realize QEMU's SET_IRQS for the other indexes already told the sample:
# "VMM 0 vectors". Nothing may have given MSI-X vectors an eventfd yet.
grep -E 'MSI-X changed.*(guest enabled|VMM [1-9])' "$WORK/sample.log" &&
	fail "the sample saw MSI-X set up before MSI-X was enabled"
at=$(wc -l <"$WORK/sample.log")
cfg_write $((MSIX + 2)) 2 $((ctrl | 0x8000))
ctrl1=$(cfg_read $((MSIX + 2)) 2) || exit "$KSFT_FAIL"
[ $((ctrl1 & 0x8000)) -ne 0 ] || fail "MSI-X control $ctrl1 after setting Enable"
sample_saw 'MSI-X changed 0x1: guest enabled' 10 "$at" ||
	fail "the sample was not told of the guest's MSI-X Enable"
if qemu_at_least 8.2; then
	sample_saw 'MSI-X changed 0x4: guest enabled, VMM 1 vectors, eventfds 0$' 10 "$at" ||
		fail "the sample was not told of QEMU's SET_IRQS for MSI-X (vector 0 with no eventfd)"
else
	sample_saw 'MSI-X changed 0x4: guest enabled, VMM [1-9][0-9]* vectors, eventfds 0x[0-9a-f]*[13579bdf]$' 10 "$at" ||
		fail "the sample was not told of QEMU's SET_IRQS for MSI-X (an eventfd for vector 0)"
fi
grep -q 'vfio_msix_enable' "$TRACE" || fail "QEMU's trace shows no vfio_msix_enable"
log "MSI-X enabled (control $ctrl1); the sample logged:"
tail -n +$((at + 1)) "$WORK/sample.log" | grep 'MSI-X changed' | sed 's/^.*: MSI-X/  sample: MSI-X/'
at=$(wc -l <"$WORK/sample.log")
grep -E 'vfio_msix_(enable|vector_do_use)' "$TRACE" | sed 's/^/  QEMU trace: /'

cfg_write $((MSIX + 2)) 2 $((ctrl & ~0x8000))
sample_saw 'MSI-X changed 0x1: guest disabled' 10 "$at" ||
	fail "the sample was not told of the guest clearing MSI-X Enable"
sample_saw 'MSI-X changed 0x4: guest disabled, VMM 0 vectors, eventfds 0$' 10 "$at" ||
	fail "QEMU's MSI-X teardown did not reach the sample"
log "MSI-X disabled again: $(grep 'MSI-X changed' "$WORK/sample.log" | tail -n1 | sed 's/^.*: MSI-X/MSI-X/')"

# The device must still answer config cycles.
id=$(cfg_read 0) || exit "$KSFT_FAIL"
[ "$id" = "$VENDOR_DEVICE" ] || fail "vendor/device reads $id at the end"

qemu_quit
sample_finish
exit 0
