#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Module load/unload: insmod/rmmod cycles, sysfs appearing and going, module
# parameters, the max_instances limit and available_instances, rmmod with
# devices present, and rmmod refused while a control node is open.
#
# Runs first, with muser.ko NOT loaded; leaves it unloaded.
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"

test_init module
[ -f "$MUSER_KO" ] || skip "no $MUSER_KO (tools/dev/build-kmod.sh $KVER)"
if muser_loaded; then
	log "muser already loaded: unloading it first"
	mdev_remove_all
	muser_rmmod || fail "cannot unload the muser module left loaded"
fi
load_deps || fail "cannot load muser.ko's dependencies"
on_exit 'exec 3>&- 2>/dev/null; mdev_remove_all 2>/dev/null; muser_loaded && muser_rmmod'

unloaded_clean() {
	! muser_loaded && [ ! -e /sys/class/muser ] && [ ! -e /sys/module/muser ] &&
		! lsmod | grep -q '^muser '
}

# --- plain load and unload, a few times ---
for i in 1 2 3; do
	check "insmod #$i" muser_insmod || fail "insmod $MUSER_KO failed"
	check "lsmod lists muser after insmod #$i" sh -c 'lsmod | grep -q "^muser "'
	check "$MUSER_TYPE/create exists" test -e "$MUSER_TYPE/create"
	check "rmmod #$i" muser_rmmod
	check "muser gone after rmmod #$i (lsmod, /sys/class/muser, /sys/module/muser)" \
		unloaded_clean
done

# --- sysfs and parameters with defaults ---
muser_insmod || fail "insmod failed"
check "class device /sys/class/muser/muser" test -d /sys/class/muser/muser
for f in create available_instances name device_api description devices; do
	check "$MUSER_TYPE/$f exists" test -e "$MUSER_TYPE/$f"
done
expect_eq "device_api" "vfio-pci" "$(cat "$MUSER_TYPE/device_api")"
check "name is not empty" test -n "$(cat "$MUSER_TYPE/name")"
check "description is not empty" test -n "$(cat "$MUSER_TYPE/description")"
max=$(cat "$MUSER_PARAMS/max_instances")
timeout_ms=$(cat "$MUSER_PARAMS/timeout_ms")
log "defaults: max_instances=$max timeout_ms=$timeout_ms"
check "max_instances >= 2" test "$max" -ge 2
expect_eq "available_instances = max_instances" "$max" "$(available_instances)"
expect_eq "default timeout_ms" 5000 "$timeout_ms"
expect_eq "timeout_ms mode" 644 "$(stat -c %a "$MUSER_PARAMS/timeout_ms")"
check "timeout_ms writable" sh -c "echo 700 > $MUSER_PARAMS/timeout_ms"
expect_eq "timeout_ms after write" 700 "$(cat "$MUSER_PARAMS/timeout_ms")"
check "modinfo: max_instances documented" \
	sh -c "modinfo -F parm '$MUSER_KO' | grep -q '^max_instances:'"
check "modinfo: timeout_ms documented" \
	sh -c "modinfo -F parm '$MUSER_KO' | grep -q '^timeout_ms:'"

# --- rmmod with devices present and nobody using them ---
u1=$(new_uuid)
u2=$(new_uuid)
check "create $u1" mdev_create "$u1"
check "create $u2" mdev_create "$u2"
check "/dev/muser/$u1 appears" wait_for 5 test -c "/dev/muser/$u1"
check "rmmod with two idle devices" muser_rmmod
check "muser gone" unloaded_clean
check "$u1 gone from the mdev bus" test ! -e "$MDEV_DEVICES/$u1"
check "/dev/muser/$u1 gone" test ! -e "/dev/muser/$u1"

# --- parameters on the command line; max_instances = 2 ---
muser_insmod max_instances=2 timeout_ms=750 || fail "insmod max_instances=2 failed"
expect_eq "max_instances param" 2 "$(cat "$MUSER_PARAMS/max_instances")"
expect_eq "timeout_ms param" 750 "$(cat "$MUSER_PARAMS/timeout_ms")"
expect_eq "available_instances at start" 2 "$(available_instances)"
u1=$(new_uuid)
u2=$(new_uuid)
u3=$(new_uuid)
check "create #1" mdev_create "$u1"
expect_eq "available_instances after 1" 1 "$(available_instances)"
check "create #2" mdev_create "$u2"
expect_eq "available_instances after 2" 0 "$(available_instances)"
check_fails "create #3 beyond max_instances" mdev_create "$u3"
check "#3 not on the mdev bus" test ! -e "$MDEV_DEVICES/$u3"
check "#3 has no control node" test ! -e "/dev/muser/$u3"
expect_eq "available_instances after the refused create" 0 "$(available_instances)"
check "remove #1" mdev_remove "$u1"
expect_eq "available_instances after remove" 1 "$(available_instances)"
check "create #3 now" mdev_create "$u3"
expect_eq "available_instances" 0 "$(available_instances)"
check "remove #2" mdev_remove "$u2"
check "remove #3" mdev_remove "$u3"
expect_eq "available_instances back to max" 2 "$(available_instances)"
check "rmmod" muser_rmmod

# --- an open control node pins the module ---
muser_insmod || fail "insmod failed"
u1=$(new_uuid)
check "create" mdev_create "$u1"
check "/dev/muser/$u1 appears" wait_for 5 test -c "/dev/muser/$u1"
exec 3<>"/dev/muser/$u1" || fail "cannot open /dev/muser/$u1"
check_fails "rmmod while /dev/muser/$u1 is open" rmmod muser 2>/dev/null
check "still loaded" muser_loaded
# The mdev can go while its control node is open.
check "remove with the control node open" mdev_remove "$u1"
check "/dev/muser/$u1 gone" wait_for 5 test ! -e "/dev/muser/$u1"
exec 3>&-
check "rmmod after close" muser_rmmod
check "muser gone" unloaded_clean

test_done
