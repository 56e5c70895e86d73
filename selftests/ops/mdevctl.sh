#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# muser devices managed with mdevctl (Debian 12's 1.2.0):
#
#  1. `mdevctl types` lists type muser-1 under parent "muser".
#  2. define (persistent) / list --defined / start / list / stop / undefine,
#     with /sys/bus/mdev/devices/UUID appearing and going; the started
#     device is served (sample + vfio_check).
#  3. A transient device: start --parent --type, stop.
#  4. Start at boot: an auto-start definition is started when muser.ko
#     registers its parent, by mdevctl's udev rule (fixed: Debian 12's rule
#     calls /usr/sbin/mdevctl, the package installs /usr/bin/mdevctl; the
#     README's override, a copy in /run/udev/rules.d here) with udevd
#     running; muser.ko is reloaded for it.
#
# mdevctl keeps definitions in /etc/mdevctl.d, read-only in the VM: a tmpfs
# is mounted over it for the test. Needs muser.ko loaded (and no mdevs).
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/ops/common.sh
. "$(dirname "$0")/common.sh"

test_init ops/mdevctl
muser_loaded || skip "muser.ko is not loaded"
command -v mdevctl >/dev/null || fail "mdevctl not installed (tools/dev/install-deps.sh)"
[ -d /etc/mdevctl.d ] || fail "no /etc/mdevctl.d"

mount -t tmpfs -o mode=755 tmpfs /etc/mdevctl.d || fail "tmpfs on /etc/mdevctl.d"
on_exit 'umount /etc/mdevctl.d'
mkdir -p /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers
on_exit 'sample_stop; mdev_remove_all'


# 1.
types=$(mdevctl types)
# shellcheck disable=SC2001
sed 's/^/#   /' <<<"$types"
check "mdevctl types lists parent muser" grep -qx 'muser' <<<"$types"
check "mdevctl types lists muser-1" grep -q '^ *muser-1$' <<<"$types"

# 2.
U=$(new_uuid)
check "mdevctl define" run mdevctl define --uuid "$U" --parent muser --type muser-1
check "definition in /etc/mdevctl.d/muser/$U" test -f "/etc/mdevctl.d/muser/$U"
check "mdevctl list --defined shows it" sh -c "mdevctl list --defined | grep -q '^$U muser muser-1'"
check "defined only: not created" mdev_gone "$U"
check "mdevctl start" run mdevctl start --uuid "$U"
check "started: /sys/bus/mdev/devices/$U" mdev_exists "$U"
check "started: /dev/muser/$U" test -c "/dev/muser/$U"
check "mdevctl list shows it" sh -c "mdevctl list | grep -q '^$U muser muser-1'"
expect_eq "its type" muser-1 "$(basename "$(readlink "$MDEV_DEVICES/$U/mdev_type")")"
if check "the sample serves it" sample_start "$U"; then
	vmm_check "vfio_check against it" "$U"
	sample_stop
fi
check "mdevctl stop" run mdevctl stop --uuid "$U"
check "stopped: gone from sysfs" wait_for 10 mdev_gone "$U"
check "stopped: still defined" test -f "/etc/mdevctl.d/muser/$U"

# 3.
T=$(new_uuid)
check "mdevctl start (transient)" run mdevctl start --uuid "$T" --parent muser --type muser-1
check "transient: created" mdev_exists "$T"
check "transient: not defined" test ! -e "/etc/mdevctl.d/muser/$T"
check "mdevctl stop (transient)" run mdevctl stop --uuid "$T"
check "transient: gone" wait_for 10 mdev_gone "$T"

# 4. Start at boot, through udev.
check "mdevctl modify --auto" run mdevctl modify --uuid "$U" --auto
fixed=$(mktemp -d /tmp/ops-rules.XXXXXX)/60-mdevctl.rules
sed 's|/usr/sbin/mdevctl|/usr/bin/mdevctl|g' /lib/udev/rules.d/60-mdevctl.rules >"$fixed"
mdev_remove_all
muser_rmmod || fail "rmmod muser"
ops_udevd "$fixed"
muser_insmod || fail "insmod $MUSER_KO"
udevadm settle -t 30
check "auto-start definition started when muser.ko loaded" wait_for 20 mdev_exists "$U"
run mdevctl list
check "mdevctl list shows it, auto" sh -c "mdevctl list | grep '^$U muser muser-1' | grep -qw auto"
check "mdevctl stop (auto)" run mdevctl stop --uuid "$U"
check "stopped: gone" wait_for 10 mdev_gone "$U"
check "mdevctl undefine" run mdevctl undefine --uuid "$U"
check "undefined: no definition left" test ! -e "/etc/mdevctl.d/muser/$U"
check "mdevctl list --defined is empty" test -z "$(mdevctl list --defined)"

test_done
