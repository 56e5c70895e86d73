#!/usr/bin/env bash
# Build muser.ko for both Debian kernels and everything userspace with CMake.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck disable=SC1091
. build/kernels

for k in "$K61" "$K612"; do
	tools/build-kmod.sh "$k"
done
cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/cmake -j"$(nproc)"
