#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# kmemleak around a selftest run (selftests/run-in-vm.sh), on a kernel with
# DEBUG_KMEMLEAK (tools/vm/debug-kernel.sh: no automatic scans, so reports come
# only from here):
#
#   kmemleak.sh begin   before the tests: scan twice and clear, so what the
#                       boot left unreferenced is not reported later (it is
#                       listed, prefixed "# kmemleak (before the tests):")
#   kmemleak.sh check   after the tests: scan twice (kmemleak reports an
#                       object only once it is 5 s old and unchanged between
#                       two scans) and print every suspected leak, prefixed
#                       "# kmemleak: "; exit 1 if there is any, 3 if
#                       kmemleak cannot scan (it disables itself when it
#                       cannot allocate its metadata: see dmesg)
#
# Every leak found by `check` fails it, not only those with muser.ko in their
# allocation backtrace: a leak in the VFIO or mdev core can be muser's doing,
# and whatever leaks, the backtrace says where. After rmmod muser, frames of
# muser.ko show as bare addresses (0xffffffffc...).
# Exit status 4 (skip) without a writable /sys/kernel/debug/kmemleak.
set -u

KMEMLEAK=/sys/kernel/debug/kmemleak
MAX_LINES=600

[ -w "$KMEMLEAK" ] || { echo "# SKIP: no writable $KMEMLEAK"; exit 4; }

scan_twice() {
	if ! { echo scan >"$KMEMLEAK" && sleep 6 && echo scan >"$KMEMLEAK"; } 2>/dev/null; then
		echo "# kmemleak: cannot scan (disabled? dmesg says why):"
		dmesg | grep -i kmemleak | tail -n 5 | sed 's/^/# kmemleak:   /'
		return 3
	fi
}

# Print the current reports with prefix $1; status 0 if there are some.
show() {
	local n
	n=$(grep -c '^unreferenced object' "$KMEMLEAK")
	[ "$n" -gt 0 ] || return 1
	echo "$1 $n suspected leak(s):"
	head -n "$MAX_LINES" "$KMEMLEAK" | sed "s/^/$1 /"
	[ "$(wc -l <"$KMEMLEAK")" -le "$MAX_LINES" ] ||
		echo "$1 ... (first $MAX_LINES lines shown)"
	return 0
}

case ${1:-} in
begin)
	scan_twice || exit
	show "# kmemleak (before the tests):"
	echo clear >"$KMEMLEAK"
	exit 0
	;;
check)
	scan_twice || exit
	if show "# kmemleak:"; then
		exit 1
	fi
	echo "# kmemleak: no suspected leaks"
	exit 0
	;;
*)
	echo "usage: $0 begin|check" >&2
	exit 2
	;;
esac
