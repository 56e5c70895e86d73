#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The MSI-X HMP test must bite: with QEMU told not to mmap the device's BARs
# (-device vfio-pci,...,x-no-mmap=on, as if the sparse mmap capability were
# absent), qemu-hmp-msix.sh must fail, and fail on the missing mmap of the
# doorbell page (the capability checks before it still pass).
# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init qemu-hmp-msix-bite 360 "$@"

need_cmd "$QEMU"
need_muser

DEVICE_OPTS=",x-no-mmap=on" E2E_TIMEOUT_ARMED="" \
	"$E2E_DIR/qemu-hmp-msix.sh" >"$WORK/qemu-hmp-msix.log" 2>&1
rc=$?
sed 's/^/  | /' "$WORK/qemu-hmp-msix.log" | grep -E 'FAIL|PASS|SKIP|capabilities|mtree'
[ $rc -eq "$KSFT_FAIL" ] || fail "qemu-hmp-msix.sh with x-no-mmap=on exited $rc, expected $KSFT_FAIL"
grep -q 'capabilities: 0x34 -> 0x40 PM (0x01) -> 0x48 MSI-X (0x11)' "$WORK/qemu-hmp-msix.log" ||
	fail "qemu-hmp-msix.sh failed before reaching the device"
grep -q "FAIL: no mmap of BAR0's doorbell page" "$WORK/qemu-hmp-msix.log" ||
	fail "qemu-hmp-msix.sh failed, but not on the missing mmap"
log "qemu-hmp-msix.sh fails without QEMU's mmap of the doorbell page, as it must"
exit 0
