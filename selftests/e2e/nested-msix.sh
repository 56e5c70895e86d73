#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# End to end with MSI-X: an unmodified QEMU (TCG inside the test VM) boots
# the same kernel with the msix-doorbell sample as -device vfio-pci. In the
# nested guest, selftests/e2e/guest/muser_doorbell_guest.ko enables MSI-X on
# the device and rings the doorbell of every vector RINGS times through the
# sparse-mmapped doorbell page; the sample, polling that page, raises each
# vector. /proc/interrupts in the guest must count RINGS on every vector.
# Usage: nested-msix.sh [--qemu 7.2|10.0] (default MUSER_QEMU, else 7.2).
# Environment: see ../lib.sh; also DOORBELL_SAMPLE, GUEST_KO, QEMU_EXTRA (more
# QEMU arguments, e.g. "-trace vfio_msi* -D FILE").
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
qemu_args "$@"
e2e_init "nested-msix$QEMU_TAG" 420 "$@"
# shellcheck source=selftests/e2e/initramfs.sh
. "$E2E_DIR/initramfs.sh"

KVER=$(uname -r)
KERNEL=$(nested_kernel "$KVER")
GUEST_KO=${GUEST_KO:-$ROOT/build/guest/$KVER/muser_doorbell_guest.ko}
SAMPLE=${DOORBELL_SAMPLE:-$BUILD_DIR/samples/msix-doorbell}
BOOT_TIMEOUT=${NESTED_BOOT_TIMEOUT:-330}
RINGS=3
NVEC=4

need_qemu
need_cmd timeout cpio gzip
[ -r "$KERNEL" ] || skip "cannot read $KERNEL"
[ -r "$GUEST_KO" ] || skip "guest driver not built: $GUEST_KO"
need_muser
need_sample

# The nested guest's initramfs: busybox, the guest driver, an /init.
stage=$WORK/initrd
mkdir -p "$stage"/bin "$stage"/proc "$stage"/sys "$stage"/dev
cp /bin/busybox "$stage/bin/busybox"
cp "$GUEST_KO" "$stage/guest.ko"
{
	initramfs_init_head
	cat <<INIT
echo E2E-BEGIN
insmod /guest.ko rings=$RINGS && echo E2E-LOADED
grep muser-doorbell /proc/interrupts | sed "s/^/E2E-IRQ /"
dmesg | grep -E 'muser-doorbell|BUG:|WARNING:|Oops|Call Trace' | sed 's/^/E2E-DMESG /'
echo E2E-END
poweroff -f
INIT
} >"$stage/init"
chmod +x "$stage/init"
INITRD=$WORK/initrd.cpio.gz
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD"

e2e_mdev_create
sample_start "$UUID" || fail "the sample did not start"

CONSOLE=$WORK/console.log
log "booting the nested guest ($KVER, TCG inside TCG)"
# shellcheck disable=SC2086
nested_start "$CONSOLE" -accel tcg -machine pc -m 256M -smp 1 \
	-nodefaults -display none -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" -append "console=ttyS0 quiet panic=-1" \
	-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$UUID,addr=04.0" ${QEMU_EXTRA:-}
nested_wait
con=$(tr -d '\r' <"$CONSOLE")
grep '^E2E-' <<<"$con" | sed 's/^/  /'

grep -q '^E2E-END' <<<"$con" || fail "the nested guest's /init did not finish"
grep -Eq '^E2E-DMESG .*(BUG:|WARNING:|Oops|Call Trace)' <<<"$con" && fail "the nested kernel reports problems"
grep -q '^E2E-LOADED' <<<"$con" || fail "the guest driver did not bind (see E2E-DMESG)"

# /proc/interrupts: "IRQ: COUNT [COUNT...] CHIP ... muser-doorbell", one line per vector.
lines=$(grep '^E2E-IRQ ' <<<"$con")
[ "$(wc -l <<<"$lines")" -eq $NVEC ] || fail "expected $NVEC MSI-X vectors in /proc/interrupts"
grep -q 'PCI-MSI' <<<"$lines" || fail "the vectors are not MSI-X: $lines"
while read -r _ _ count _; do
	[ "$count" = "$RINGS" ] || fail "a vector counted $count interrupts, expected $RINGS"
done <<<"$lines"
log "every one of $NVEC MSI-X vectors counted $RINGS interrupts"

sample_finish "the nested guest"
exit 0
