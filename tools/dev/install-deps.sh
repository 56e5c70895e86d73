#!/usr/bin/env bash
# Install every Debian package muser needs to build and test. Idempotent:
# returns at once when everything is present.
#
# The 6.12 kernel is chosen deterministically: the newest 6.12.N+deb12 for
# which both the image and the headers are published. The choice is recorded in
# build/kernels so the runner and the tests use the same kernels.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
state="$here/build/kernels"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

base_pkgs=(
	build-essential cmake pkg-config kmod cpio xz-utils bc flex bison libelf-dev
	qemu-system-x86 busybox-static python3
	linux-image-amd64 linux-headers-amd64 linux-source-6.1
	linux-source-6.12	# mtty.c of both kernels: tools/dev/build-mtty.sh
	libnl-3-dev libnl-genl-3-dev
	dkms mdevctl udev	# selftests/install/dkms.sh, selftests/ops
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients	# selftests/ops/libvirt.sh
)

missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || echo "$p"
	done
}

installed_612() {
	local v
	for v in $(ls -d /lib/modules/6.12.*+deb12-amd64 2>/dev/null |
		xargs -rn1 basename | sort -t. -k3,3nr); do
		[ -d "/lib/modules/$v/build" ] && [ -f "/boot/vmlinuz-$v" ] && { echo "$v"; return 0; }
	done
	return 1
}

resolve_61() {
	dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
		sed -n 's/.*linux-image-\(6\.1\.[0-9]*-[0-9]*-amd64\).*/\1/p'
}

record() {
	mkdir -p "$(dirname "$state")"
	printf 'K61=%s\nK612=%s\n' "$K61" "$K612" >"$state"
}

# Fast path: every package present and both kernels installed.
K61=$(resolve_61 || true)
if K612=$(installed_612) && [ -n "$K61" ] && [ -d "/lib/modules/$K61/build" ] &&
	[ -z "$(missing "${base_pkgs[@]}")" ]; then
	record
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq

pick_612() {
	local v cands
	cands=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' |
		sed -n 's/^linux-image-\(6\.12\.[0-9]*+deb12-amd64\) .*/\1/p' | sort -t. -k3,3nr)
	for v in $cands; do
		if apt-cache show "linux-headers-$v" >/dev/null 2>&1; then
			echo "$v"
			return 0
		fi
	done
	echo "no Debian 6.12 kernel with headers found" >&2
	return 1
}
K612=$(pick_612)

todo=$(missing "${base_pkgs[@]}" "linux-image-$K612" "linux-headers-$K612")
if [ -n "$todo" ]; then
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $todo
fi

K61=$(resolve_61)
[ -n "$K61" ] || { echo "cannot resolve the 6.1 kernel" >&2; exit 1; }
record
echo "kernels: 6.1=$K61 6.12=$K612"
