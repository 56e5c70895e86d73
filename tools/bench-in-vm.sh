#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The benchmark's part inside the VM: tools/bench.sh boots the VM with it,
# and the selftests run it as step "bench" (selftests/TESTS) with a small
# count. Loads muser.ko unless it is loaded, and the kernel's mtty sample,
# the in-kernel baseline ($MTTY_KO, default build/mtty/$(uname -r)/mtty.ko:
# tools/dev/build-mtty.sh), runs selftests/muser/req_bench and unloads what
# it loaded. Without mtty.ko the table is printed all the same, its ratios
# to the syscall floor, and says so. With --nested SECONDS, then the
# nested-guest rows in the same boot: selftests/e2e/vblk-bench.sh SECONDS,
# the virtio-blk sample as it starts by default and with --posted --poll 20,
# each next to QEMU's own virtio-blk-pci. With --migrate MEM, then the
# migration rows: selftests/e2e/migrate-bench.sh MEM.
#
#   tools/bench-in-vm.sh [--count N] [--nested SECONDS] [--migrate MEM]
#   (N accesses per row, default 20000; SECONDS per point, default 0: none;
#   MEM default 0: none)
set -u
top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
# shellcheck source=selftests/lib.sh
. "$top/selftests/lib.sh"

count=20000
nested=0
migrate=0
while [ $# -gt 0 ]; do
	case $1 in
	--count) count=$2; shift 2 ;;
	--nested) nested=$2; shift 2 ;;
	--migrate) migrate=$2; shift 2 ;;
	*) echo "usage: $0 [--count N] [--nested SECONDS] [--migrate MEM]" >&2; exit 2 ;;
	esac
done
MTTY_KO=${MTTY_KO:-$ROOT/build/mtty/$KVER/mtty.ko}
bench=$TEST_BIN_DIR/req_bench
[ -x "$bench" ] || { echo "bench: $bench not built" >&2; exit 1; }

loaded_muser="" loaded_mtty=""
if ! muser_loaded; then
	muser_insmod || { echo "bench: cannot load $MUSER_KO" >&2; exit 1; }
	loaded_muser=1
fi
if grep -q '^mtty ' /proc/modules; then
	:
elif [ ! -f "$MTTY_KO" ]; then
	echo "bench: !!! $MTTY_KO not built (tools/dev/build-mtty.sh $KVER): no in-kernel baseline" >&2
elif ! modprobe -a mdev vfio || ! insmod "$MTTY_KO"; then
	echo "bench: !!! cannot load $MTTY_KO: no in-kernel baseline" >&2
else
	loaded_mtty=1
fi

case " $(cat /proc/cmdline) " in
*" slub_debug="*) echo "bench: the allocator checkers are on (slub_debug): every kmalloc and kfree costs a stack trace" ;;
*) echo "bench: the allocator checkers are off" ;;
esac
"$bench" "$count"
rc=$?
if [ "$nested" != 0 ]; then
	for args in "" "--posted --poll 20"; do
		VBLK_ARGS=$args "$top/selftests/e2e/vblk-bench.sh" "$nested" || rc=1
	done
fi
if [ "$migrate" != 0 ]; then
	"$top/selftests/e2e/migrate-bench.sh" "$migrate" || rc=1
fi
if [ -n "$loaded_mtty" ] && ! rmmod mtty; then
	echo "bench: cannot unload mtty" >&2
	rc=1
fi
if [ -n "$loaded_muser" ] && ! muser_rmmod; then
	echo "bench: cannot unload muser" >&2
	rc=1
fi
exit $rc
