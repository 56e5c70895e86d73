#!/usr/bin/env bash
# The benchmark: boot the test VM on a Debian kernel and print one table,
# every figure measured in that boot: a 1-byte access on each path of
# muser (device memory, trapped reads with the emulator on the other vCPU,
# the same vCPU or polling, trapped and posted writes, 8 VMM threads, an
# interrupt to the VMM's eventfd), the syscall floor, and the kernel's own
# mdev sample mtty, the in-kernel baseline every row is a ratio to.
# The rows: selftests/muser/req_bench.c. Then, in the same boot, the
# nested-guest rows: 4 KiB random-read IOPS of the virtio-blk sample (as
# it is, and with --posted --poll 20) next to QEMU's own virtio-blk-pci on
# the same file, at queue depths 1 and 16 (selftests/e2e/vblk-bench.sh).
# Then the migration rows: each sample device migrating with MEM of guest
# memory, QEMU 7.2 and 10.0: total time, downtime, the device's stop-copy
# data (selftests/e2e/migrate-bench.sh).
#
#   tools/bench.sh [--kernel 6.1|6.12]... [--count N] [--nested SECONDS]
#                  [--migrate MEM]
#
# Default: 6.12, then 6.1; N accesses per row (default 20000); SECONDS per
# nested point (default 10; 0 skips the nested rows); MEM (default 1G; 0
# skips the migration rows). Builds what it needs
# first. Figures from the TCG VM (no KVM) are slow in absolute terms: read
# the ratios. The VM boots without the allocator checkers the tests boot
# with (vm-run --no-checkers): slub_debug's stack trace on every kmalloc
# and kfree would be measured, not muser.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

kernels=()
count=20000
nested=10
migrate=1G
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernels+=("$2"); shift 2 ;;
	--count) count=$2; shift 2 ;;
	--nested) nested=$2; shift 2 ;;
	--migrate) migrate=$2; shift 2 ;;
	*) echo "usage: $0 [--kernel 6.1|6.12]... [--count N] [--nested SECONDS] [--migrate MEM]" >&2; exit 2 ;;
	esac
done
[ ${#kernels[@]} -gt 0 ] || kernels=(6.12 6.1)

tools/dev/install-deps.sh || exit 1
# shellcheck disable=SC1091
. build/kernels
tools/dev/build.sh >/dev/null || exit 1

rc=0
for k in "${kernels[@]}"; do
	case $k in
	6.1) kver=$K61 ;;
	6.12) kver=$K612 ;;
	*) echo "bench: --kernel 6.1 or 6.12" >&2; exit 2 ;;
	esac
	echo "== $kver"
	# tsc=reliable: no clocksource watchdog, which under TCG load can
	# find the emulated TSC "unstable" and move the clock to the HPET,
	# whose every read is an emulated MMIO (the spins read the clock).
	tools/vm/vm-run --kernel "$k" --mem 6G --timeout 3600 --no-checkers \
		--append tsc=reliable -- \
		tools/bench-in-vm.sh --count "$count" --nested "$nested" --migrate "$migrate" || rc=1
done
exit $rc
