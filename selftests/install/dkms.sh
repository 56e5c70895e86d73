#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host test of dkms.conf and the Makefile's install targets (ctest
# dkms_build):
#
#   selftests/install/dkms.sh WORK_DIR [KVER...]    (default: K61 and K612 of build/kernels)
#
# stages the module sources with `make dkms-install DESTDIR=WORK_DIR/stage`,
# then `dkms add` and `dkms build -k KVER` for each kernel, all in trees of
# its own (--sourcetree, --dkmstree, --installtree; signing key in WORK_DIR),
# so neither the host's /var/lib/dkms nor /lib/modules are touched; checks
# each muser.ko's vermagic, then `make install INSTALL_MOD_PATH=...` from the
# staged copy (modules_install + depmod) for the first kernel; and finally
# that the source tree got no build products. Exit 4: dkms or headers missing.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:?usage: test-dkms.sh WORK_DIR [KVER...]}
shift
kvers=("$@")
if [ ${#kvers[@]} -eq 0 ]; then
	[ -f "$src/build/kernels" ] || { echo "SKIP: no build/kernels"; exit 4; }
	# shellcheck disable=SC1091
	. "$src/build/kernels"
	kvers=("$K61" "$K612")
fi
command -v dkms >/dev/null || { echo "SKIP: dkms not installed"; exit 4; }
for k in "${kvers[@]}"; do
	[ -d "/lib/modules/$k/build" ] || { echo "SKIP: no headers for $k"; exit 4; }
done

version=$(cat "$src/VERSION")

tree_state() {	# what git sees in the source tree, build/ aside
	git -C "$src" status --porcelain --ignored 2>/dev/null | grep -v ' build/' || true
}
before=$(tree_state)
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
S=$work/stage
make -s -C "$src" dkms-install DESTDIR="$S" >/dev/null
grep -qx "PACKAGE_VERSION=\"$version\"" "$S/usr/src/muser-$version/dkms.conf" ||
	{ echo "FAIL: dkms.conf does not carry VERSION ($version)"; exit 1; }
trees=(--sourcetree "$S/usr/src" --dkmstree "$work/dkms" --installtree "$work/modules")
mkdir -p "$work/dkms" "$work/modules"
# dkms signs with these, generating them if missing (default /var/lib/dkms).
export mok_signing_key=$work/mok.key mok_certificate=$work/mok.pub

dkms add "muser/$version" "${trees[@]}" >"$work/dkms.log" 2>&1 ||
	{ cat "$work/dkms.log"; exit 1; }
for k in "${kvers[@]}"; do
	if ! dkms build "muser/$version" -k "$k" "${trees[@]}" >>"$work/dkms.log" 2>&1; then
		cat "$work/dkms.log"
		find "$work/dkms" -name make.log -exec cat {} +
		echo "FAIL: dkms build for $k"
		exit 1
	fi
	ko=$(find "$work/dkms/muser/$version/$k" -name 'muser.ko*' | head -n1)
	[ -n "$ko" ] || { echo "FAIL: dkms built no muser.ko for $k"; exit 1; }
	vm=$(modinfo -F vermagic "$ko" | cut -d' ' -f1)
	[ "$vm" = "$k" ] || { echo "FAIL: $ko has vermagic $vm"; exit 1; }
	mv=$(modinfo -F version "$ko")
	[ "$mv" = "$version" ] || { echo "FAIL: $ko has version '$mv', VERSION says $version"; exit 1; }
	echo "# dkms build $k: ${ko#"$work/"}"
done
dkms status "${trees[@]}" -m muser

# make install, modules_install + depmod into a staging root.
k=${kvers[0]}
make -s -C "$S/usr/src/muser-$version" KVER="$k" install \
	INSTALL_MOD_PATH="$work/root" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; echo "FAIL: make install"; exit 1; }
grep -q '^updates/muser.ko' "$work/root/lib/modules/$k/modules.dep" ||
	{ echo "FAIL: make install: no updates/muser.ko in modules.dep"; exit 1; }
echo "# make install $k: lib/modules/$k/updates/muser.ko, depmod done"

after=$(tree_state)
[ "$before" = "$after" ] ||
	{ echo "FAIL: the source tree changed:"; diff <(echo "$before") <(echo "$after"); exit 1; }
echo "dkms: ok"
