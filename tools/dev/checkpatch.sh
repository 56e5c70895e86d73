#!/usr/bin/env bash
# Run the kernel's checkpatch.pl (from Debian's linux-source-6.1) on files.
# BIT_MACRO is ignored: the uapi header cannot use BIT().
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir="$top/build/checkpatch"
src=$(ls /usr/src/linux-source-6.1.tar.xz)

if [ ! -x "$dir/scripts/checkpatch.pl" ]; then
	mkdir -p "$dir"
	tar -xJf "$src" -C "$dir" --strip-components=1 \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
fi
exec "$dir/scripts/checkpatch.pl" --no-tree --strict --terse \
	--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG,BIT_MACRO -f "$@"
