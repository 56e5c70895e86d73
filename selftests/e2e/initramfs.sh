# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers that build the initramfs of a nested guest, shared by
# build-nested-initramfs.sh and the e2e tests that make their own. Sourced,
# not run.
#
#   initramfs_begin KVER        staging directory $STAGE with static busybox
#                               and bin dev proc sys modules; MODDIR is set
#   initramfs_add_module NAME   NAME and its dependencies from modules.dep,
#                               decompressed (busybox insmod cannot load
#                               .ko.xz), appended in load order to
#                               $STAGE/modules/order; built-in ones are skipped
#   initramfs_pack OUT          cpio + gzip of $STAGE into OUT; removes $STAGE
#   initramfs_init_head         prints the first lines of every nested
#                               guest's /init: busybox applets, /proc, /sys, /dev
#
# Environment: BUSYBOX (default /bin/busybox; must be static: busybox-static),
# TMPDIR (where $STAGE is made).

STAGE=""
MODDIR=""

initramfs_begin() {
	MODDIR=/lib/modules/$1
	local busybox=${BUSYBOX:-/bin/busybox}

	[ -f "$MODDIR/modules.dep" ] || { echo "no $MODDIR/modules.dep" >&2; return 1; }
	[ -x "$busybox" ] || { echo "no $busybox (install busybox-static)" >&2; return 1; }
	STAGE=$(mktemp -d "${TMPDIR:-/tmp}/nested-initramfs.XXXXXX") || return 1
	mkdir -p "$STAGE"/{bin,dev,proc,sys,modules} &&
		cp "$busybox" "$STAGE/bin/busybox" &&
		: >"$STAGE/modules/order"
}

initramfs_add_module() {
	local name=$1 line path dep base
	line=$(grep -E "(^|/)$name\.ko(\.xz|\.zst|\.gz)?:" "$MODDIR/modules.dep") || {
		# built into the kernel?
		grep -Eq "(^|/)$name\.ko$" "$MODDIR/modules.builtin" 2>/dev/null && return 0
		echo "module $name not found in $MODDIR" >&2
		return 1
	}
	for dep in ${line#*:}; do
		dep=$(basename "$dep")
		initramfs_add_module "${dep%%.ko*}" || return 1
	done
	path=${line%%:*}
	base=$(basename "$path")
	base=${base%%.ko*}.ko
	[ -e "$STAGE/modules/$base" ] && return 0
	case $path in
	*.xz) xz -dc "$MODDIR/$path" >"$STAGE/modules/$base" ;;
	*.zst) zstd -qdc "$MODDIR/$path" >"$STAGE/modules/$base" ;;
	*.gz) gzip -dc "$MODDIR/$path" >"$STAGE/modules/$base" ;;
	*) cp "$MODDIR/$path" "$STAGE/modules/$base" ;;
	esac || return 1
	echo "$base" >>"$STAGE/modules/order"
}

initramfs_pack() {
	local out=$1
	mkdir -p "$(dirname "$out")" &&
		(cd "$STAGE" && find . | sort | cpio -o -H newc --quiet | gzip -1) >"$out.tmp" &&
		mv "$out.tmp" "$out" || return 1
	rm -rf "$STAGE"
	STAGE=""
}

initramfs_init_head() {
	cat <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
EOF
}
