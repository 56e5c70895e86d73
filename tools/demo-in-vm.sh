#!/usr/bin/env bash
# Inside the demo VM: load muser.ko and run the nested-guest scenario loudly.
# The selftests run this too (step "demo" of selftests/run-in-vm.sh), on
# both kernels, with the module not loaded.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=selftests/lib.sh
. "$top/selftests/lib.sh"

echo "== Linux $KVER: loading muser.ko and what it depends on"
muser_insmod
echo "== the nested guest: QEMU -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID"
echo "   E2E-PCI: the device the guest found; E2E-OUT: what its driver read"
"$top/selftests/e2e/nested-gpio.sh"
muser_rmmod
echo "== done: muser.ko unloaded"
