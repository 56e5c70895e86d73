#!/usr/bin/env bash
# Build the muser debug kernel: Debian's linux-source-6.12 with KASAN,
# lockdep (PROVE_LOCKING), DEBUG_ATOMIC_SLEEP, kmemleak, DEBUG_OBJECTS and
# fault injection (failslab, fail_page_alloc, fail_usercopy, fail-nth),
# trimmed to what the test VM needs, everything built in; then muser.ko
# against it. Booted by `tools/vm/vm-run --kernel debug`, run by
# `tools/run-tests.sh --debug-kernel`.
#
#   tools/vm/debug-kernel.sh [--force] [--jobs N]
#
#   --force     rebuild the kernel even if the cached one is current
#   --jobs N    parallel make jobs (default 2; the build runs under nice 19)
#
# The config is `make x86_64_defconfig` + tools/vm/debug-kernel.config (checked:
# every line of the fragment must hold in the final .config). Results, in
# build/debug-kernel/:
#   src/                      the configured, built tree: KDIR for modules
#   bzImage, config, release  the kernel, its .config, its `uname -r`
#   lib/modules/RELEASE/      modules.builtin, modules.order, depmod files
#                             (vm-run shows it as /lib/modules/RELEASE in
#                             the guest, so modprobe of built-ins succeeds)
#   stamp                     what the cached kernel was built from
#   build.log, build-time     the last build's output and wall time
# and build/kmod/RELEASE/muser.ko (tools/dev/build-kmod.sh, with -g so that
# scripts/faddr2line can name lines of muser.ko in reports).
#
# The kernel is rebuilt only when the stamp changes: the linux-source-6.12
# package version, the fragment, or this script's recipe below. muser.ko is
# rebuilt (incrementally) on every run. Installs linux-source-6.12 and the
# kernel's build dependencies if they are missing (not part of
# tools/dev/install-deps.sh: CI does not build this kernel).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/debug-kernel
src=$out/src
frag=$top/tools/vm/debug-kernel.config
tarball=/usr/src/linux-source-6.12.tar.xz
# Bump when the way the tree is prepared or built changes.
RECIPE=1

force=''
jobs=2
while [ $# -gt 0 ]; do
	case $1 in
	--force) force=1; shift ;;
	--jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "debug-kernel: unknown option $1" >&2; exit 2 ;;
	esac
done

say() { echo "debug-kernel: $*" >&2; }
die() { say "$*"; exit 1; }

sudo=''
[ "$(id -u)" -eq 0 ] || sudo=sudo

# linux-source-6.12 plus what building a kernel needs beyond
# tools/dev/install-deps.sh's base packages.
ensure_packages() {
	local p todo=()
	for p in linux-source-6.12 build-essential bc bison flex libelf-dev \
		libssl-dev cpio xz-utils kmod; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || todo+=("$p")
	done
	[ ${#todo[@]} -eq 0 ] && return 0
	say "installing ${todo[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${todo[@]}"
}

# VFIO_MDEV has no prompt upstream (only drivers and samples select it), so
# it could only be a module here: give it one, so that it can be built in.
patch_tree() {
	sed -i '/^config VFIO_MDEV$/{n;s/^\ttristate$/\ttristate "Mediated device driver framework (muser debug kernel)"/}' \
		"$src/drivers/vfio/mdev/Kconfig"
	grep -q 'tristate "Mediated device' "$src/drivers/vfio/mdev/Kconfig" ||
		die "cannot give VFIO_MDEV a prompt (drivers/vfio/mdev/Kconfig changed?)"
}

# A fresh tree for a new package version; the same tree (an incremental
# build) when only the fragment changed.
prepare_tree() {
	if [ -f "$src/.muser-source-version" ] &&
		[ "$(cat "$src/.muser-source-version")" = "$srcver" ]; then
		return 0
	fi
	say "extracting $tarball ($srcver)"
	rm -rf "$src" "$out/src.tmp"
	mkdir -p "$out/src.tmp"
	nice -n 19 tar -xJf "$tarball" -C "$out/src.tmp" --strip-components=1
	mv "$out/src.tmp" "$src"
	patch_tree
	echo "$srcver" >"$src/.muser-source-version"
}

# Every line of the fragment must hold in .config ("is not set" also
# holds when the symbol is absent: its dependencies are off).
check_config() {
	local line sym got bad=0
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) sym=${line%%=*} ;;
		"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *} ;;
		*) continue ;;
		esac
		got=$(grep -E "^($sym=|# $sym is not set)" "$src/.config") || got=''
		[ "$got" = "$line" ] && continue
		[ -z "$got" ] && [[ $line == "# "* ]] && continue
		say "config: wanted '$line', got '${got:-nothing}'"
		bad=1
	done <"$frag"
	[ "$bad" -eq 0 ] || die "the fragment does not hold in .config (see above)"
}

configure() {
	say "configuring: x86_64_defconfig + ${frag#"$top"/}"
	make -C "$src" -s x86_64_defconfig
	"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$frag" \
		>"$out/merge.log" 2>&1 || { cat "$out/merge.log" >&2; die "merge_config failed"; }
	make -C "$src" -s olddefconfig
	check_config
}

build() {
	local t0 t1 rel
	say "building (make -j$jobs under nice 19; log: ${out#"$top"/}/build.log)"
	t0=$(date +%s)
	if ! nice -n 19 make -C "$src" -j"$jobs" bzImage modules >"$out/build.log" 2>&1; then
		tail -n 40 "$out/build.log" >&2
		die "kernel build failed"
	fi
	t1=$(date +%s)
	rel=$(make -C "$src" -s kernelrelease)
	rm -rf "$out/lib/modules/$rel"
	make -C "$src" -s INSTALL_MOD_PATH="$out" modules_install >>"$out/build.log" 2>&1 ||
		die "modules_install failed"
	ln -sfn "$src" "$out/lib/modules/$rel/build"
	cp "$src/arch/x86/boot/bzImage" "$out/bzImage.tmp"
	mv -f "$out/bzImage.tmp" "$out/bzImage"
	cp "$src/.config" "$out/config"
	echo "$rel" >"$out/release"
	echo "$((t1 - t0))" >"$out/build-time"
	echo "$key" >"$out/stamp"
	say "built $rel in $(((t1 - t0) / 60)) min $(((t1 - t0) % 60)) s"
}

main() {
	local rel
	ensure_packages
	[ -f "$tarball" ] || die "no $tarball"
	mkdir -p "$out"
	# One build at a time (run-tests and a developer may both ask).
	exec 9>"$out/.lock"
	flock 9
	srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
	key=$( {
		echo "linux-source-6.12 $srcver recipe $RECIPE"
		cat "$frag"
	} | sha256sum | cut -d' ' -f1)
	if [ -z "$force" ] && [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$key" ] &&
		[ -f "$out/bzImage" ] && [ -f "$out/release" ]; then
		say "cached: $(cat "$out/release") (${out#"$top"/}/bzImage)"
	else
		rm -f "$out/stamp"
		prepare_tree
		configure
		build
	fi
	rel=$(cat "$out/release")
	KCFLAGS=-g "$top/tools/dev/build-kmod.sh" "$rel" "$src" >/dev/null
	say "muser.ko: build/kmod/$rel/muser.ko"
}

main
