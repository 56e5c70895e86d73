#!/usr/bin/env bash
# Build muser.ko for one kernel, out of the source tree, in build/kmod/KVER,
# so modules for several kernels coexist. Fails on any compiler warning.
#
#   tools/dev/build-kmod.sh KVER [KDIR]
#
# KDIR defaults to /lib/modules/KVER/build (an installed kernel's headers);
# give it for a kernel built elsewhere (tools/vm/debug-kernel.sh passes its
# tree). KCFLAGS from the environment reaches the compiler.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
kver=${1:?usage: build-kmod.sh KVER [KDIR]}
kdir=${2:-/lib/modules/$kver/build}
# make runs in build/kmod/KVER: a relative KDIR must not be.
[ ! -d "$kdir" ] || kdir=$(cd "$kdir" && pwd)
out="$top/build/kmod/$kver"

mkdir -p "$out"
cp -u "$top/Kbuild" "$top/Makefile" "$top/VERSION" "$out/"
mkdir -p "$out/kmod" "$out/include/uapi/linux"
cp -u "$top"/kmod/*.[ch] "$out/kmod/"
cp -u "$top/include/uapi/linux/muser.h" "$out/include/uapi/linux/"

log="$out/build.log"
make -C "$out" KVER="$kver" KDIR="$kdir" modules >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
if grep -E 'warning:|error:' "$log" >&2; then
	echo "build-kmod: $kver: the build has warnings" >&2
	exit 1
fi
echo "$out/muser.ko"
