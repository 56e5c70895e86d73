#!/usr/bin/env bash
# The demo: install what is missing, build, boot Debian's 6.1 kernel in a VM,
# load muser.ko, create a device served by the gpio-pci-idio-16 sample, and
# run the unmodified Debian QEMU with a nested guest whose in-tree
# gpio-pci-idio-16 driver binds to it. Prints what the guest read.
#
#   tools/demo.sh [--kernel 6.1|6.12]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kernel=6.1
[ "${1:-}" = "--kernel" ] && kernel=${2:?}

tools/dev/install-deps.sh
tools/dev/build.sh >/dev/null
exec tools/vm/vm-run --kernel "$kernel" --mem 3G --timeout 900 -- tools/demo-in-vm.sh
