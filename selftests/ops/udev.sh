#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The privilege model, with the shipped udev rule (udev/60-muser.rules) and
# sysusers.d file (systemd/muser.sysusers):
#
#  1. A node that exists before udevd starts is root:root 0600 (devtmpfs);
#     `udevadm trigger` (coldplug) makes it root:muser 0660.
#  2. A new device gets root:muser 0660 from udevd at once, tagged for
#     systemd with SYSTEMD_WANTS=muser-emulator@UUID.service.
#  3. The sample run as user "muser" (group muser, no capabilities) serves
#     the device: vfio_check, run as root like a VMM, passes.
#  4. The same user without the group: the sample fails with EACCES
#     ("Permission denied").
#  5. A per-device rule (61-muser-local.rules) overriding owner, group and
#     mode: the owner serves the device without being in group muser.
#
# The VM has no udevd running and a read-only /etc: the test starts
# systemd-udevd itself with the rules in /run/udev/rules.d, and creates the
# users with systemd-sysusers on a copy of /etc/passwd and /etc/group
# bind-mounted over them, and sets SYSTEMD_IGNORE_CHROOT=1 (udevadm ignores
# trigger/settle/control in the VM's chroot otherwise); selftests/ops/common.sh.
# Needs muser.ko loaded.
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/ops/common.sh
. "$(dirname "$0")/common.sh"

test_init ops/udev
muser_loaded || skip "muser.ko is not loaded"
[ -x "$SAMPLE" ] || fail "sample not built: $SAMPLE"
[ -x "$TEST_BIN_DIR/vfio_check" ] || fail "not built: $TEST_BIN_DIR/vfio_check"

U0=$(new_uuid)
U1=$(new_uuid)
U2=$(new_uuid)
on_exit 'sample_stop; mdev_remove_all'

ops_users

# 1. Coldplug.
log "1. coldplug"
mdev_create "$U0" || fail "create $U0"
expect_eq "/dev/muser/$U0 before udev" "root root 600" "$(node_perms "$U0")"
local_rule=$(mktemp -d /tmp/ops-rules.XXXXXX)/61-muser-local.rules
echo "SUBSYSTEM==\"muser\", KERNEL==\"$U2\", OWNER=\"muser\", GROUP=\"root\", MODE=\"0600\"" >"$local_rule"
ops_udevd "$local_rule"
udevadm trigger --action=add --subsystem-match=muser --settle ||
	fail "udevadm trigger"
expect_eq "/dev/muser/$U0 after udevadm trigger" "root muser 660" "$(node_perms "$U0")"

# 2. Hotplug.
log "2. hotplug"
mdev_create "$U1" || fail "create $U1"
udevadm settle -t 30
expect_eq "/dev/muser/$U1 created under udevd" "root muser 660" "$(node_perms "$U1")"
props=$(udevadm info --query=property "/dev/muser/$U1")
check "udev tags the node for systemd" grep -q '^TAGS=.*:systemd:' <<<"$props"
check "udev wants muser-emulator@$U1.service" \
	grep -qx "SYSTEMD_WANTS=muser-emulator@$U1.service" <<<"$props"

# 3. An unprivileged emulator in group muser serves the device.
log "3. user muser in group muser"
if check "the sample runs as user muser in group muser" \
	serve_as "$U1" --reuid=muser --regid=muser --init-groups; then
	uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$SAMPLE_PID/status")
	muid=$(id -u muser)
	expect_eq "the sample's uids" "$muid $muid $muid $muid" "$uids"
	expect_eq "the sample's capabilities" 0000000000000000 \
		"$(awk '/^CapEff:/ { print $2 }' "/proc/$SAMPLE_PID/status")"
	vmm_check "vfio_check (root, as the VMM) against it" "$U1"
	sample_stop
else
	sed 's/^/#   /' "$SAMPLE_LOG"
fi

# 4. Without the group: EACCES.
log "4. user muser without group muser"
if serve_as "$U1" --reuid=muser --regid=nogroup --clear-groups; then
	sample_stop
	log "FAIL: the sample served the device without group muser"
	_failures=$((_failures + 1))
else
	sed 's/^/#   /' "$SAMPLE_LOG"
	check "without group muser the sample fails with EACCES" \
		grep -q "muser_dev_create $U1: Permission denied" "$SAMPLE_LOG"
fi

# 5. A per-device override.
log "5. a per-device rule"
mdev_create "$U2" || fail "create $U2"
udevadm settle -t 30
expect_eq "/dev/muser/$U2 with the local rule" "muser root 600" "$(node_perms "$U2")"
if check "the owner serves $U2 without group muser" \
	serve_as "$U2" --reuid=muser --regid=nogroup --clear-groups; then
	vmm_check "vfio_check against the owner's emulator" "$U2"
	sample_stop
else
	sed 's/^/#   /' "$SAMPLE_LOG"
fi
check "group muser alone cannot open $U2" \
	test "$(setpriv --reuid=nobody --regid=muser --clear-groups -- \
		sh -c "exec 3<>/dev/muser/$U2" 2>&1 | grep -c 'Permission denied')" = 1

test_done
