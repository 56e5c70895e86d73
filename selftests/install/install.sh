#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Host test of `cmake --install` (ctest install_consumers):
#
#   selftests/install/install.sh BUILD_DIR WORK_DIR
#
# installs BUILD_DIR into WORK_DIR/root with DESTDIR, checks the tree (the
# library with its SONAME, the static library, the headers under
# include/muser/ and nothing in include/linux/, libmuser.pc, the CMake
# package, udev rule, systemd unit, sysusers.d file, samples), checks the
# unit with systemd-analyze verify and the sysusers.d file with
# systemd-sysusers --root, then builds selftests/install/consumer/consumer.c against
# the staged install through pkg-config (shared and static) and through
# find_package(muser) (muser::muser and muser::muser_static), and runs
# each. Exit 0: all good; 4: skipped (a tool missing); else failed.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: test-install.sh BUILD_DIR WORK_DIR}" && pwd)
work=${2:?usage: test-install.sh BUILD_DIR WORK_DIR}
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
skip() { echo "SKIP: $*"; exit 4; }

for t in pkg-config cmake cc readelf; do
	command -v "$t" >/dev/null || skip "$t not installed"
done

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
D=$work/root
DESTDIR=$D cmake --install "$build" >"$work/install.log"

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
libdir=$(sed -n 's/^libdir=//p' "$build/lib/libmuser.pc")
libdir=${libdir/\$\{prefix\}/$prefix}
P=$D$prefix
echo "# prefix $prefix, libdir $libdir"

# The tree.
for f in "$P/include/muser/muser.h" "$P/include/muser/linux/muser.h" \
	"$D$libdir/libmuser.a" "$D$libdir/pkgconfig/libmuser.pc" \
	"$D$libdir/cmake/muser/muserConfig.cmake" \
	"$D$libdir/cmake/muser/muserConfigVersion.cmake" \
	"$D$libdir/cmake/muser/muserTargets.cmake" \
	"$P/lib/udev/rules.d/60-muser.rules" \
	"$P/lib/systemd/system/muser-emulator@.service" \
	"$P/lib/sysusers.d/muser.conf" \
	"$P/libexec/muser/gpio-pci-idio-16" "$P/libexec/muser/msix-doorbell"; do
	[ -f "$f" ] || fail "not installed: ${f#"$D"}"
done
[ ! -e "$P/include/linux" ] || fail "something installed in include/linux"
so=$(readelf -d "$D$libdir/libmuser.so" 2>/dev/null |
	sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$so" = libmuser.so.0 ] || fail "SONAME '$so', expected libmuser.so.0"
if ! [ -L "$D$libdir/libmuser.so.0" ] || ! [ -L "$D$libdir/libmuser.so" ] ||
	! [ -f "$D$libdir/libmuser.so.0.1.0" ]; then
	fail "libmuser.so -> libmuser.so.0 -> libmuser.so.0.1.0 not installed"
fi

# The unit: no warnings from systemd-analyze (it exits 0 on most of them).
if command -v systemd-analyze >/dev/null; then
	out=$(systemd-analyze verify \
		"$P/lib/systemd/system/muser-emulator@.service" 2>&1) ||
		fail "systemd-analyze verify failed"
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
fi
# sysusers.d: creates group and user muser, the user in the group.
if command -v systemd-sysusers >/dev/null && [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$work/sysroot/etc"
	systemd-sysusers --root="$work/sysroot" "$P/lib/sysusers.d/muser.conf" \
		>/dev/null 2>&1 || fail "systemd-sysusers failed"
	gid=$(awk -F: '$1 == "muser" { print $3 }' "$work/sysroot/etc/group")
	ugid=$(awk -F: '$1 == "muser" { print $4 }' "$work/sysroot/etc/passwd")
	if [ -z "$gid" ] || [ "$gid" != "$ugid" ]; then
		fail "sysusers: no group muser with user muser in it"
	fi
fi

# pkg-config, shared and static.
export PKG_CONFIG_PATH=$D$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D
export PKG_CONFIG_LIBDIR=$D$libdir/pkgconfig	# nothing from the host
cflags=$(pkg-config --cflags libmuser)
libs=$(pkg-config --libs libmuser)
echo "# pkg-config: $cflags $libs (version $(pkg-config --modversion libmuser))"
# shellcheck disable=SC2086
cc -Wall -Werror -o "$work/pc_shared" "$src/selftests/install/consumer/consumer.c" \
	$cflags $libs || fail "pkg-config: shared build"
# shellcheck disable=SC2086,SC2046
cc -Wall -Werror -static -o "$work/pc_static" \
	"$src/selftests/install/consumer/consumer.c" $cflags \
	$(pkg-config --libs --static libmuser) || fail "pkg-config: static build"

# find_package(muser).
cmake -S "$src/selftests/install/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$P" \
	>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "find_package: configure"; }
cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1 ||
	{ cat "$work/cmake.log"; fail "find_package: build"; }

for exe in "$work/pc_shared" "$work/pc_static" "$work/cmake/consumer_shared" \
	"$work/cmake/consumer_static"; do
	[ -x "$exe" ] || continue
	needed=$(readelf -d "$exe" | grep -c 'NEEDED.*libmuser' || true)
	case $exe in
	*shared) [ "$needed" = 1 ] || fail "$exe: no NEEDED libmuser.so.0"
		 readelf -d "$exe" | grep -q 'NEEDED.*\[libmuser.so.0\]' ||
			fail "$exe: NEEDED is not the SONAME" ;;
	*static) [ "$needed" = 0 ] || fail "$exe: links libmuser.so" ;;
	esac
	LD_LIBRARY_PATH=$D$libdir "$exe" || fail "$exe failed"
done

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "install: ok"
