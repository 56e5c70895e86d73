#!/usr/bin/env bash
# Install every Debian package muser needs to build and test. Idempotent:
# returns at once when everything is present.
#
# The 6.12 kernel is chosen deterministically: the newest 6.12.N+deb12 for
# which both the image and the headers are published. The choice is recorded in
# build/kernels so the runner and the tests use the same kernels.
#
# Beside Debian's QEMU 7.2 (which stays /usr/bin/qemu-system-x86_64), QEMU
# 10.0 from bookworm-backports, for the e2e tests run with --qemu 10.0
# (selftests/lib.sh, qemu_select): never installed, only unpacked into
# QEMU10_PREFIX (see install_qemu10 below).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
state="$here/build/kernels"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# QEMU 10.0: the version of qemu-system-x86, -common and -data to unpack (if
# the mirror no longer has it, the newest 1:10.0.x there, said so), where
# (selftests/lib.sh names the same prefix), and the private apt state that
# downloads them.
QEMU10_VERSION='1:10.0.2+ds-2+deb13u1~bpo12+1'
QEMU10_PREFIX=/opt/muser/qemu-10.0
QEMU10_APT=/var/cache/muser/apt-backports
QEMU10_PKGS=(qemu-system-x86 qemu-system-common qemu-system-data)

base_pkgs=(
	build-essential cmake pkg-config kmod cpio xz-utils zstd bc flex bison libelf-dev
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

# --- QEMU 10.0 from bookworm-backports, unpacked beside QEMU 7.2 ---------------

# The mirror the system takes bookworm from (deb822 .sources or one-line
# lists), for bookworm-backports.
debian_mirror() {
	local m
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
		function stanza() { if (!m && s ~ / bookworm / && u != "") { print u; m = 1 } u = s = "" }
		/^[[:space:]]*$/ { stanza(); next }
		/^URIs:/ { u = $2 }
		/^Suites:/ { s = $0 " " }
		END { stanza() }')
	[ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -nE 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+bookworm([[:space:]].*)?$/\2/p' |
		head -n1)
	echo "${m:-http://deb.debian.org/debian}"
}

# apt with its own state: only bookworm-backports in its sources, its lists
# and caches in QEMU10_APT; the system's lists and dpkg database are untouched
# (nothing here installs).
qemu10_apt() {
	local cmd=$1
	shift
	$sudo "$cmd" -q -o Dir::State="$QEMU10_APT/state" -o Dir::Cache="$QEMU10_APT/cache" \
		-o Dir::Etc::SourceList="$QEMU10_APT/sources.list" \
		-o Dir::Etc::SourceParts="$QEMU10_APT/sources.list.d" \
		-o APT::Sandbox::User=root "$@"
}

# Whether the prefix holds an unpack made for QEMU10_VERSION (possibly of
# another 10.0.x, when that version was not to be had).
qemu10_unpacked() {
	[ -x "$QEMU10_PREFIX/usr/bin/qemu-system-x86_64" ] &&
		[ "$(sed -n 's/^wanted=//p' "$QEMU10_PREFIX/.muser-qemu" 2>/dev/null)" = "$QEMU10_VERSION" ]
}

# qemu10_check DIR: the unpacked QEMU runs, is 10.0, and its vfio-pci has
# enable-migration (only 10.0 has it; 7.2 has x-enable-migration).
qemu10_check() {
	local q=$1/usr/bin/qemu-system-x86_64 v
	v=$("$q" --version) || return 1
	v=${v%%$'\n'*}
	echo "  $v"
	[[ $v == *" version 10.0."* ]] || { echo "not QEMU 10.0: $v" >&2; return 1; }
	v=$("$q" -L "$1/usr/share/qemu" -L /usr/share/seabios -device vfio-pci,help) || return 1
	grep -q '^ *enable-migration=' <<<"$v" ||
		{ echo "$q: vfio-pci has no enable-migration" >&2; return 1; }
}

install_qemu10() {
	local t0=$SECONDS mirror ver v p dl new deps todo nf
	qemu10_unpacked && return 0
	echo "QEMU 10.0: downloading from bookworm-backports into $QEMU10_PREFIX"
	mirror=$(debian_mirror)
	$sudo mkdir -p "$QEMU10_APT/state/lists/partial" "$QEMU10_APT/cache/archives/partial" \
		"$QEMU10_APT/sources.list.d"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-backports main" |
		$sudo tee "$QEMU10_APT/sources.list" >/dev/null
	qemu10_apt apt-get update -qq

	# The pinned version, or else the newest 1:10.0.x that has all three.
	ver=""
	for v in "$QEMU10_VERSION" $(qemu10_apt apt-cache madison qemu-system-x86 |
		awk -F' [|] ' '$2 ~ /^1:10\.0\./ { print $2 }'); do
		for p in "${QEMU10_PKGS[@]}"; do
			# (apt-cache show of a missing version prints nothing, status 0)
			grep -qxF "Version: $v" <<<"$(qemu10_apt apt-cache show "$p=$v" 2>/dev/null)" ||
				continue 2
		done
		ver=$v
		break
	done
	[ -n "$ver" ] || { echo "QEMU 10.0: no 1:10.0.x of ${QEMU10_PKGS[*]} in $mirror bookworm-backports" >&2; return 1; }
	[ "$ver" = "$QEMU10_VERSION" ] ||
		echo "QEMU 10.0: WARNING: $QEMU10_VERSION is no longer downloadable from $mirror; using $ver (the newest 10.0.x in bookworm-backports)" >&2

	dl=$QEMU10_APT/debs
	$sudo rm -rf "$dl"
	$sudo mkdir -p "$dl"
	(cd "$dl" && qemu10_apt apt-get download "${QEMU10_PKGS[@]/%/=$ver}")

	# Libraries: QEMU 10.0 built for bookworm depends on bookworm's; those
	# not yet installed come from bookworm (never from backports: the system
	# has no backports source).
	deps=$(for p in "$dl"/*.deb; do dpkg-deb -f "$p" Depends; done | tr ',' '\n' |
		sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep -v '^qemu-system-' | sort -u)
	# shellcheck disable=SC2086
	todo=$(missing $deps)
	if [ -n "$todo" ]; then
		echo "QEMU 10.0: installing its libraries from bookworm: $(echo "$todo" | tr '\n' ' ')"
		$sudo apt-get update -qq
		# shellcheck disable=SC2086
		$sudo apt-get install -y -qq --no-install-recommends $todo
	fi

	# Unpack beside the old prefix, check, then swap. The bundle link makes
	# QEMU take its data, modules and firmware path under the prefix (QEMU
	# relocates them to <dir of the binary>/qemu-bundle/<configured path>):
	# without it, it would load QEMU 7.2's modules from
	# /usr/lib/x86_64-linux-gnu/qemu and abort ("Only modules from the same
	# build can be loaded"). Its firmware path then points into the prefix:
	# seabios and ipxe are bookworm's, linked in.
	new=$QEMU10_PREFIX.new
	$sudo rm -rf "$new"
	$sudo mkdir -p "$new"
	for p in "$dl"/*.deb; do
		$sudo dpkg -x "$p" "$new"
	done
	$sudo ln -s ../.. "$new/usr/bin/qemu-bundle"
	$sudo ln -s /usr/share/seabios "$new/usr/share/seabios"
	$sudo mkdir -p "$new/usr/lib"
	$sudo ln -s /usr/lib/ipxe "$new/usr/lib/ipxe"
	nf=$(ldd "$new/usr/bin/qemu-system-x86_64" | grep 'not found' || true)
	[ -z "$nf" ] || { echo "QEMU 10.0: missing libraries:" >&2; echo "$nf" >&2; return 1; }
	qemu10_check "$new" || return 1
	printf 'wanted=%s\nversion=%s\nmirror=%s\n' "$QEMU10_VERSION" "$ver" "$mirror" |
		$sudo tee "$new/.muser-qemu" >/dev/null
	$sudo rm -rf "$QEMU10_PREFIX"
	$sudo mv "$new" "$QEMU10_PREFIX"
	$sudo rm -rf "$dl"
	echo "QEMU 10.0: $ver in $QEMU10_PREFIX ($((SECONDS - t0)) s)"
}

# Fast path: every package present and both kernels installed.
K61=$(resolve_61 || true)
if K612=$(installed_612) && [ -n "$K61" ] && [ -d "/lib/modules/$K61/build" ] &&
	[ -z "$(missing "${base_pkgs[@]}")" ]; then
	record
	install_qemu10
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
install_qemu10
