#!/usr/bin/env bash
# Build muser.ko for both Debian kernels (and the kernel's mtty sample, the
# benchmark's baseline) and everything userspace with CMake.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
# shellcheck disable=SC1091
. build/kernels

for k in "$K61" "$K612"; do
	tools/dev/build-kmod.sh "$k"
	# The driver the nested guests of selftests/e2e load.
	guest="build/guest/$k"
	mkdir -p "$guest"
	cp -u selftests/e2e/guest/Kbuild selftests/e2e/guest/*.c "$guest/"
	make -s -C "/lib/modules/$k/build" M="$top/$guest" modules 2>&1 |
		grep -v '^Skipping BTF' >&2 || true
	[ -f "$guest/muser_doorbell_guest.ko" ]
	# The benchmark's in-kernel baseline: without it the benchmark says so
	# and compares with the syscall floor; the rest is built regardless.
	tools/dev/build-mtty.sh "$k" >/dev/null ||
		echo "build: mtty.ko for $k not built (see above): tools/bench.sh and req_bench run without the in-kernel baseline" >&2
done
cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/cmake -j"$(nproc)"
