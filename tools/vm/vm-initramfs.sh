#!/usr/bin/env bash
# Build the tools/vm/vm-run initramfs for one kernel version.
#
#   tools/vm/vm-initramfs.sh KERNEL_VERSION OUTPUT.cpio [MODULES_DIR]
#
# MODULES_DIR is the kernel's modules directory, /lib/modules/KERNEL_VERSION
# unless given (a kernel built in the tree: build/debug-kernel/lib/modules/V,
# whose needed drivers are all built in, so the image then holds no module).
#
# The image holds busybox-static, tools/vm/vm-init as /init, and just the modules
# needed to reach the host's root over virtio-9p. Which of those are modules
# (and in which order they load) differs between kernels, so it is worked out
# from modules.dep / modules.builtin. Modules are stored uncompressed because
# busybox insmod cannot load .ko.xz (Debian 6.12 ships those).
#
# The output is written atomically, so concurrent runners can share the cache.
set -euo pipefail

# What the init needs loaded; their dependencies are added automatically.
TARGETS=(virtio_pci 9pnet_virtio 9p)

here=$(cd "$(dirname "$0")" && pwd)

usage() {
	echo "usage: $0 KERNEL_VERSION OUTPUT.cpio [MODULES_DIR]" >&2
	exit 2
}

# Module name as the kernel sees it: basename, no .ko*, '-' folded to '_'.
# Result in REPLY: this runs for every line of modules.dep, so no subshell.
mod_name() {
	REPLY=${1##*/}
	REPLY=${REPLY%%.ko*}
	REPLY=${REPLY//-/_}
}

# Read modules.dep into MOD_PATH[name]=relpath and MOD_DEPS[relpath]="deps".
declare -A MOD_PATH=() MOD_DEPS=()
read_modules_dep() {
	local line path deps
	while IFS= read -r line; do
		path=${line%%:*}
		deps=${line#*:}
		mod_name "$path"
		MOD_PATH[$REPLY]=$path
		MOD_DEPS[$path]=$deps
	done <"$moddir/modules.dep"
}

is_builtin() {
	grep -qE "/${1//_/[-_]}\.ko\$" "$moddir/modules.builtin"
}

# Depth-first, dependencies first: ORDER ends up in a valid insmod order.
declare -A SEEN=()
ORDER=()
visit() {
	local path=$1 dep
	[ -n "${SEEN[$path]:-}" ] && return 0
	SEEN[$path]=1
	for dep in ${MOD_DEPS[$path]}; do
		visit "$dep"
	done
	ORDER+=("$path")
}

resolve_modules() {
	local t
	read_modules_dep
	for t in "${TARGETS[@]}"; do
		if [ -n "${MOD_PATH[$t]:-}" ]; then
			visit "${MOD_PATH[$t]}"
		elif ! is_builtin "$t"; then
			echo "$0: $t is neither a module nor built into $ver" >&2
			exit 1
		fi
	done
}

decompress() {
	case $1 in
	*.ko) cat "$1" ;;
	*.ko.xz) xz -dc "$1" ;;
	*.ko.zst) zstd -dcq "$1" ;;
	*.ko.gz) gzip -dc "$1" ;;
	*) echo "$0: unknown module format: $1" >&2; return 1 ;;
	esac
}

stage_modules() {
	local path name
	mkdir -p "$stage/modules"
	: >"$stage/modules/order"
	for path in "${ORDER[@]}"; do
		mod_name "$path"
		name=$REPLY.ko
		decompress "$moddir/$path" >"$stage/modules/$name"
		echo "$name" >>"$stage/modules/order"
	done
}

stage_busybox() {
	local bb=/bin/busybox a
	# The image has no libc: only busybox-static's binary will run.
	if [ ! -x "$bb" ] || LC_ALL=C readelf -l "$bb" | grep -q 'program interpreter'; then
		echo "$0: $bb is not a static busybox (install busybox-static)" >&2
		exit 1
	fi
	mkdir -p "$stage/bin"
	cp "$bb" "$stage/bin/busybox"
	for a in $("$stage/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$stage/bin/$a"
	done
}

stage_tree() {
	local d
	for d in dev proc sys ctl newroot tmp; do
		mkdir -p "$stage/$d"
	done
	install -m 0755 "$here/vm-init" "$stage/init"
}

write_cpio() {
	local tmp="$out.tmp.$$"
	(cd "$stage" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --quiet -R 0:0) >"$tmp"
	mv -f "$tmp" "$out"
}

main() {
	[ $# -eq 2 ] || [ $# -eq 3 ] || usage
	ver=$1
	out=$2
	moddir=${3:-/lib/modules/$ver}
	[ -f "$moddir/modules.dep" ] || { echo "$0: no $moddir/modules.dep" >&2; exit 1; }
	mkdir -p "$(dirname "$out")"
	stage=$(mktemp -d "$(dirname "$out")/.stage.XXXXXX")
	trap 'rm -rf "$stage" "$out.tmp.$$"' EXIT
	resolve_modules
	stage_busybox
	stage_tree
	stage_modules
	write_cpio
}

main "$@"
