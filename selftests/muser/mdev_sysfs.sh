#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Creating and removing muser mdevs through sysfs: good and bad UUIDs,
# duplicates, the control node and IOMMU group of each device,
# available_instances bookkeeping, and create/remove cycles.
#
# Needs muser.ko loaded (run-in-vm.sh does that).
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"

test_init mdev_sysfs
muser_loaded || skip "muser.ko is not loaded"
on_exit mdev_remove_all

avail0=$(available_instances)
log "available_instances: $avail0"
check "room for 8 devices" test "$avail0" -ge 8

# mdev_ok UUID: the device and everything that comes with it exists.
mdev_ok() {
	local u=$1 grp
	check "$u on the mdev bus" test -d "$MDEV_DEVICES/$u" || return 1
	check "$u under the type's devices/" test -e "$MUSER_TYPE/devices/$u"
	check "$u: mdev_type is muser-1" \
		test "$(basename "$(readlink "$MDEV_DEVICES/$u/mdev_type")")" = muser-1
	grp=$(readlink "$MDEV_DEVICES/$u/iommu_group")
	check "$u has an iommu_group" test -n "$grp"
	check "$u: /dev/vfio/$(basename "$grp") exists" \
		wait_for 5 test -c "/dev/vfio/$(basename "$grp")"
	check "$u: /dev/muser/$u is a char device" wait_for 5 test -c "/dev/muser/$u"
}

mdev_gone() {
	local u=$1
	check "$u off the mdev bus" test ! -e "$MDEV_DEVICES/$u"
	check "$u not under the type's devices/" test ! -e "$MUSER_TYPE/devices/$u"
	check "/dev/muser/$u gone" wait_for 5 test ! -e "/dev/muser/$u"
}

# --- a good UUID ---
u=$(new_uuid)
check "create $u" mdev_create "$u"
mdev_ok "$u"
expect_eq "available_instances after create" $((avail0 - 1)) "$(available_instances)"

# --- the same UUID again ---
check_fails "create a duplicate UUID" mdev_create "$u"
expect_eq "available_instances after the duplicate" $((avail0 - 1)) "$(available_instances)"
check "remove $u" mdev_remove "$u"
mdev_gone "$u"
expect_eq "available_instances after remove" "$avail0" "$(available_instances)"

# --- without the trailing newline, and in upper case ---
u=$(new_uuid)
check "create without newline" sh -c "printf %s $u > $MUSER_TYPE/create"
mdev_ok "$u"
check "remove" mdev_remove "$u"
u=$(new_uuid)
check "create in upper case" mdev_create "$(echo "$u" | tr a-f A-F)"
mdev_ok "$u"
check "remove" mdev_remove "$u"
mdev_gone "$u"

# --- bad UUIDs: refused, nothing created ---
before=$(ls "$MDEV_DEVICES" | sort)
n=0
while IFS= read -r bad; do
	n=$((n + 1))
	check_fails "create with bad UUID #$n '$bad'" mdev_create "$bad"
done <<'EOF'
not-a-uuid
12345678-1234-1234-1234-12345678901
12345678-1234-1234-1234-1234567890123
g2345678-1234-1234-1234-123456789012
12345678123412341234123456789012
1234567-81234-1234-1234-123456789012
12345678-1234-1234-1234-12345678901z
12345678-1234-1234-1234-123456789012-
 12345678-1234-1234-1234-123456789012
0
EOF
check_fails "create with two UUIDs" mdev_create "$(new_uuid) $(new_uuid)"
check_fails "create with a UUID and junk" sh -c \
	"printf '%s\nxx' $(new_uuid) > $MUSER_TYPE/create 2>/dev/null"
expect_eq "bad UUIDs created nothing" "$before" "$(ls "$MDEV_DEVICES" | sort)"
expect_eq "available_instances after bad UUIDs" "$avail0" "$(available_instances)"

# --- several devices at once, each with its own node and group ---
uuids=()
for i in $(seq 8); do
	uuids+=("$(new_uuid)")
	check "create #$i" mdev_create "${uuids[-1]}"
done
expect_eq "available_instances with 8" $((avail0 - 8)) "$(available_instances)"
groups=$(for u in "${uuids[@]}"; do readlink "$MDEV_DEVICES/$u/iommu_group"; done | sort -u | wc -l)
expect_eq "8 distinct iommu groups" 8 "$groups"
nodes=$(for u in "${uuids[@]}"; do stat -c %t:%T "/dev/muser/$u"; done | sort -u | wc -l)
expect_eq "8 distinct control node numbers" 8 "$nodes"
for u in "${uuids[@]}"; do
	check "remove $u" mdev_remove "$u"
done
for u in "${uuids[@]}"; do
	mdev_gone "$u"
done
expect_eq "available_instances restored" "$avail0" "$(available_instances)"

# --- create/remove the same UUID repeatedly ---
u=$(new_uuid)
for i in $(seq 20); do
	mdev_create "$u" || { check "create cycle $i" false; break; }
	test -c "/dev/muser/$u" || wait_for 5 test -c "/dev/muser/$u" ||
		{ check "/dev/muser/$u in cycle $i" false; break; }
	mdev_remove "$u" || { check "remove cycle $i" false; break; }
done
mdev_gone "$u"
expect_eq "available_instances after cycles" "$avail0" "$(available_instances)"

test_done
