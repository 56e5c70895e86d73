#!/usr/bin/env bash
# Build the kernel's own mdev sample, mtty (samples/vfio-mdev/mtty.c), for
# one kernel, out of tree, into build/mtty/KVER/mtty.ko: the in-kernel
# baseline of the benchmark (tools/bench.sh, selftests/muser/req_bench.c).
# The source comes from Debian's linux-source-X.Y tarball of the kernel's
# series (only that file is extracted, cached in build/mtty/src/X.Y/).
#
#   tools/dev/build-mtty.sh KVER [KDIR]
#
# KDIR defaults to /lib/modules/KVER/build. Prints the module's path.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
kver=${1:?usage: build-mtty.sh KVER [KDIR]}
kdir=${2:-/lib/modules/$kver/build}
[ ! -d "$kdir" ] || kdir=$(cd "$kdir" && pwd)
series=$(echo "$kver" | cut -d. -f1,2)
tarball=/usr/src/linux-source-$series.tar.xz
src="$top/build/mtty/src/$series"
out="$top/build/mtty/$kver"

if [ ! -f "$src/mtty.c" ]; then
	[ -f "$tarball" ] || {
		echo "build-mtty: $tarball missing (apt-get install linux-source-$series)" >&2
		exit 1
	}
	mkdir -p "$src"
	tar -xJf "$tarball" -C "$src" --strip-components=3 \
		"linux-source-$series/samples/vfio-mdev/mtty.c"
fi
mkdir -p "$out"
cp -u "$src/mtty.c" "$out/"
echo 'obj-m := mtty.o' >"$out/Kbuild"
log="$out/build.log"
make -C "$kdir" M="$out" modules >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
echo "$out/mtty.ko"
