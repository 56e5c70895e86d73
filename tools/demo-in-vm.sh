#!/usr/bin/env bash
# Inside the demo VM: load muser.ko and run the nested-guest scenario loudly.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kver=$(uname -r)

echo "== Linux $kver: loading vfio, mdev and muser.ko"
modprobe -a vfio vfio_iommu_type1 mdev
insmod "$top/build/kmod/$kver/muser.ko"
echo "== the nested guest: QEMU -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID"
echo "   E2E-PCI: the device the guest found; E2E-OUT: what its driver read"
"$top/selftests/e2e/nested-gpio.sh"
rmmod muser
echo "== done: muser.ko unloaded"
