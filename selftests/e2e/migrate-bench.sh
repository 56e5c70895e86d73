#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Migration figures, never judged (a migration that fails fails the run):
# for each sample device (gpio-pci-idio-16, msix-doorbell, virtio-blk), a
# QEMU with its CPUs stopped and MEM of guest memory migrates to a second
# one on this host, with QEMU 7.2 (v1) and QEMU 10.0 (v2). One table: the
# total migration time, the downtime, and the device's stop-copy data
# (QEMU 10 counts what it read from the device's data fd; QEMU 7.2 does not
# say). The guest memory of a stopped VM is mostly zero pages: the total
# is the floor of what a migration costs, the downtime is the device's
# share of it.
#
# Usage: migrate-bench.sh [MEM]   (default 1G)
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/e2e/qmp.sh
. "$(dirname "$0")/qmp.sh"
MEM=${1:-1G}
e2e_init migrate-bench 900 "$@"

need_cmd timeout
[ -x "$PYTHON" ] || skip "$PYTHON not found"
need_muser
need_sample
GPIO=$BUILD_DIR/samples/gpio-pci-idio-16
MSIX=$BUILD_DIR/samples/msix-doorbell
VBLK=$BUILD_DIR/samples/virtio-blk
for s in "$GPIO" "$MSIX" "$VBLK"; do
	[ -x "$s" ] || fail "no $s"
done
truncate -s 64M "$WORK/disk.img"

PIDS=() UUIDS=()
# shellcheck disable=SC2317 # run by on_exit
bench_cleanup() {
	local p u
	for p in "${PIDS[@]}"; do stop_pid "$p" 10; done
	for u in "${UUIDS[@]}"; do
		if mdev_exists "$u"; then mdev_remove "$u" || _cleanup_failed=1; fi
	done
}
on_exit bench_cleanup

# emulator NAME UUID: start that sample, migratable, on UUID.
emulator() {
	local log=$WORK/$1-$2.log
	case $1 in
	gpio) "$GPIO" --migration "$2" ;;
	msix) "$MSIX" --migration "$2" ;;
	vblk) "$VBLK" --migration "$2" "$WORK/disk.img" ;;
	esac >"$log" 2>&1 &
	PIDS+=($!)
	wait_for 20 grep -q ready "$log" || fail "$1 did not start: $(tail -n 2 "$log")"
}

# one DEVICE QEMU: print "total downtime stop-copy" of one migration.
one() {
	local dev=$1 u1 u2 u sock=$WORK/$1-$2 info incoming
	qemu_select "$2" || exit 1
	u1=$(new_uuid) u2=$(new_uuid)
	UUIDS+=("$u1" "$u2")
	for u in "$u1" "$u2"; do
		mdev_create "$u" || fail "cannot create mdev $u"
		wait_for 5 test -e "/dev/muser/$u" || fail "no /dev/muser/$u"
		emulator "$dev" "$u"
	done
	for u in "$u1" "$u2"; do
		incoming=()
		[ "$u" = "$u2" ] && incoming=(-incoming defer)
		timeout -k 10 240 "$QEMU" "${QEMU_ARGS[@]}" -S -nodefaults -display none \
			-machine pc -accel tcg -m "$MEM" -qmp "unix:$sock-$u.sock,server=on,wait=off" \
			-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$u,addr=4.0,$QEMU_MIGPROP" \
			"${incoming[@]}" >"$sock-$u.log" 2>&1 &
		PIDS+=($!)
		qmp_cli "$sock-$u.sock" wait 120 >/dev/null || fail "QEMU did not come up: $(tail -n 2 "$sock-$u.log")"
	done
	qmp_cli "$sock-$u2.sock" hmp "migrate_set_capability return-path on" \
		"migrate_incoming unix:$sock.mig" >/dev/null || fail "migrate_incoming"
	qmp_cli "$sock-$u1.sock" hmp "migrate_set_capability return-path on" \
		"migrate -d unix:$sock.mig" >/dev/null || fail "migrate"
	for _ in $(seq 240); do
		info=$(qmp_cli "$sock-$u1.sock" hmp "info migrate" | tr -d '\r')
		grep -Eq "^Migration status: *(completed|failed|cancelled)" <<<"$info" && break
		sleep 0.5
	done
	grep -q "^Migration status: *completed" <<<"$info" ||
		fail "$dev with QEMU $2: $(grep status <<<"$info")"
	awk '/^total time:/ { t = $3 } /^downtime:/ { d = $2 }
	     /^vfio device transferred:/ { v = $4 " KiB" }
	     END { printf "%s %s %s\n", t, d, v ? v : "-" }' <<<"$info" >"$WORK/result"
	qmp_cli "$sock-$u1.sock" quit >/dev/null
	qmp_cli "$sock-$u2.sock" quit >/dev/null
	bench_cleanup
	PIDS=() UUIDS=()
}

printf '# migration, %s of guest memory, CPUs stopped (%s)\n' "$MEM" "$(uname -r)"
printf '# %-14s %-6s %10s %10s %12s\n' device qemu "total ms" "downtime" "stop-copy"
for dev in gpio msix vblk; do
	for q in 7.2 10.0; do
		one "$dev" "$q"
		read -r total down copy <"$WORK/result"
		printf '# %-14s %-6s %10s %10s %12s\n' "$dev" "$q" "$total" "${down:-?}" "$copy"
	done
done
exit 0
