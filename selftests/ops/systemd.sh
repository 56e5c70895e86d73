#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The shipped systemd unit (systemd/muser-emulator@.service) run by a real
# systemd, with the shipped udev rule and sysusers.d file:
#
#  1. A device appears: udevd tags /dev/muser/UUID, systemd starts
#     muser-emulator@UUID.service by SYSTEMD_WANTS; the emulator runs as
#     user muser, and a VMM (vfio_check) is served.
#  2. Restart=always: the emulator SIGKILLed is started again (a new
#     process, NRestarts=1) and serves the VMM from the recovered state.
#  3. systemctl stop: the emulator is gone, the device stays; systemctl
#     enable --now brings it back.
#  4. The device removed: the unit ends inactive, not failed (condition
#     /dev/muser/UUID), and stops restarting.
#  5. A device without /etc/muser/UUID.conf: the unit is skipped by its
#     condition.
#
# The VM has no systemd: the test boots one as PID 1 of new PID and mount
# namespaces (container mode, the host's units, a minimal target), over a
# copy of /etc with the unit, the rule, the sysusers.d file and the
# configuration, the emulator in /opt, its own /run/systemd and cgroup2,
# its console in a file. /sys is writable, so systemd runs systemd-udevd
# and follows udev devices as on a host.
# Needs muser.ko loaded.
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/ops/common.sh
. "$(dirname "$0")/common.sh"

SYSTEMD=/lib/systemd/systemd
UNIT_FILE=$ROOT/systemd/muser-emulator@.service

test_init ops/systemd
muser_loaded || skip "muser.ko is not loaded"
[ -x "$SYSTEMD" ] || fail "$SYSTEMD missing (tools/dev/install-deps.sh installs systemd)"
[ -x "$SAMPLE" ] || fail "sample not built: $SAMPLE"
[ -x "$TEST_BIN_DIR/vfio_check" ] || fail "not built: $TEST_BIN_DIR/vfio_check"

U1=$(new_uuid)
U2=$(new_uuid)
SD_PID=""
on_exit 'mdev_remove_all'

# The container's /etc: the host's, plus what an install and an admin add
# (the unit and the rule in /etc, as /usr is read-only here). Units that
# would touch the VM (tmpfiles cleaning /tmp, coldplug loading modules,
# binfmt, sysctl, mounts) are masked: what stays is udevd and journald,
# all the unit needs from a host.
SD_DIR=$(mktemp -d /tmp/ops-systemd.XXXXXX)
SD_ETC=$SD_DIR/etc
cp -a /etc "$SD_ETC" || fail "copy /etc"
: >"$SD_ETC/fstab"
systemd-sysusers --root="$SD_DIR" "$MUSER_SYSUSERS" || fail "systemd-sysusers $MUSER_SYSUSERS"
cp "$UNIT_FILE" "$SD_ETC/systemd/system/" || fail "cp $UNIT_FILE"
cp "$MUSER_RULE" "$SD_ETC/udev/rules.d/" || fail "cp $MUSER_RULE"
for u in /lib/systemd/system/{sysinit,sockets,timers}.target.wants/* \
	/etc/systemd/system/*.wants/*; do
	case ${u##*/} in
	systemd-udevd*.service | systemd-udevd-*.socket | systemd-journald*) ;;
	*) ln -sf /dev/null "$SD_ETC/systemd/system/${u##*/}" ;;
	esac
done
printf '[Unit]\nDescription=muser selftest\n' >"$SD_ETC/systemd/system/muser-selftest.target"
mkdir -p "$SD_ETC/muser"
# The emulator: the unit's PrivateTmp= hides /tmp and /var/tmp, where the
# build tree may be, so the sample and libmuser go to a directory bound
# onto /opt in the container, as if installed there.
EMU_DIR=$SD_DIR/opt
mkdir -m 755 "$EMU_DIR"
cp "$SAMPLE" "$EMU_DIR/" || fail "cp $SAMPLE"
libmuser=$(ldd "$SAMPLE" | awk '$1 ~ /^libmuser\.so/ { print $3 }')
cp -L "$libmuser" "$EMU_DIR/" || fail "cp libmuser ($libmuser)"
EMULATOR=/opt/${SAMPLE##*/}
printf 'EMULATOR=%s\nARGS=-v\nLD_LIBRARY_PATH=/opt\n' "$EMULATOR" >"$SD_ETC/muser/$U1.conf"
: >"$SD_DIR/console"

# sd_boot: systemd as PID 1 of new PID and mount namespaces; SD_PID is it.
sd_boot() {
	local ushare
	unshare --pid --mount --fork --mount-proc --propagation private \
		sh -c 'mount --bind "$1/etc" /etc && mount --bind "$1/opt" /opt &&
			mkdir -p /run/systemd /run/log &&
			mount -t tmpfs -o mode=755 tmpfs /run/systemd &&
			mount -t tmpfs -o mode=755 tmpfs /run/log &&
			mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
			mount --bind "$1/console" /dev/console &&
			exec env -i container=muser-selftest "$2" \
				--unit=muser-selftest.target --show-status=0 \
				--log-target=console --log-level=info' \
		sd-boot "$SD_DIR" "$SYSTEMD" </dev/null >"$SD_DIR/boot.log" 2>&1 &
	ushare=$!
	wait_for 10 pgrep -P "$ushare" >/dev/null || return 1
	SD_PID=$(pgrep -P "$ushare")
	log "systemd is pid $SD_PID"
	wait_for 60 sd_settled
	sd_running || return 1
	sdctl start systemd-udevd.service && sd udevadm control --ping
}
sd_halt() {
	[ -n "$SD_PID" ] || return 0
	kill -RTMIN+4 "$SD_PID" 2>/dev/null	# poweroff; in a container, exit
	wait_for 30 pid_gone "$SD_PID" || kill -KILL "$SD_PID" 2>/dev/null
	wait 2>/dev/null
	SD_PID=""
}
sd() { timeout 20 nsenter -t "$SD_PID" -m -p -r -w -- "$@"; }
sdctl() { sd systemctl "$@"; }
# Called through wait_for and check.
# shellcheck disable=SC2317
sd_running() {
	case $(sdctl is-system-running 2>/dev/null) in
	running | degraded) return 0 ;;
	*) return 1 ;;
	esac
}
# shellcheck disable=SC2317
sd_settled() { sd_running || pid_gone "$SD_PID"; }
unit_prop() { sdctl show -P "$2" "muser-emulator@$1.service"; }
# shellcheck disable=SC2317
unit_prop_is() { [ "$(unit_prop "$1" "$2")" = "$3" ]; }
# shellcheck disable=SC2317
condition_checked() { ! unit_prop_is "$1" ConditionTimestampMonotonic 0; }
# shellcheck disable=SC2317
unit_active() { [ "$(unit_prop "$1" ActiveState)" = active ] && [ "$(unit_prop "$1" MainPID)" != 0 ]; }
# shellcheck disable=SC2317
unit_inactive() { [ "$(unit_prop "$1" ActiveState)" = inactive ]; }
# shellcheck disable=SC2317
emu_ready() {	# emu_ready UUID [N]: the unit's emulators said "ready" N times
	[ "$(sd journalctl -q -o cat -u "muser-emulator@$1.service" | grep -c ready)" -ge "${2:-1}" ]
}
unit_status() { sdctl status --no-pager -l "muser-emulator@$1.service" 2>&1 | sed 's/^/#   /'; }
emu_pid() { pgrep -xf "$EMULATOR -v $1"; }
sd_dump() {
	log "systemd's console and journal:"
	cat "$SD_DIR/boot.log" "$SD_DIR/console" | tail -n 40 | sed 's/^/#   /'
	[ -n "$SD_PID" ] && sd journalctl -b -q --no-pager | tail -n 60 | sed 's/^/#   /'
}

on_exit 'sd_halt; rm -rf "$SD_DIR"'
SD_PASSED=""
on_exit '[ -n "$SD_PASSED" ] || sd_dump'
check "systemd boots in a container" sd_boot || fail "no systemd to test the unit with"
log "systemd: $(sdctl --version | head -n1), $(sdctl is-system-running)"

# 1.
log "1. the device appears"
mdev_create "$U1" || fail "create $U1"
sd udevadm settle -t 15
expect_eq "/dev/muser/$U1 by the rule" "root muser 660" \
	"$(sd stat -c '%U %G %a' "/dev/muser/$U1")"
check "systemd starts muser-emulator@$U1 for the new device" wait_for 30 unit_active "$U1"
check "the emulator is ready" wait_for 20 emu_ready "$U1"
unit_status "$U1"
# MainPID is systemd's view: the emulator's pid here is found by its
# command line.
pid1=$(emu_pid "$U1")
muid=$(sd id -u muser)
expect_eq "the emulator's uid and gid (muser)" "$muid $(sd id -g muser)" \
	"$(ps -o uid=,gid= -p "$pid1" | awk '{ print $1, $2 }')"
check "it runs the configured emulator" test "/proc/$pid1/exe" -ef "$EMU_DIR/${SAMPLE##*/}"
vmm_check "a VMM is served by the unit's emulator" "$U1"
vmm_check "a VMM reads GPIO line 16's counter" "$U1" --sequence 6 --delay-ms 0

# 2.
log "2. Restart=always"
kill -KILL "$pid1"
check "restarted" wait_for 20 unit_prop_is "$U1" NRestarts 1
check "active again" wait_for 20 unit_active "$U1"
check "the new emulator is ready" wait_for 20 emu_ready "$U1" 2
pid2=$(emu_pid "$U1")
check "with a new emulator process" test "$pid2" != "$pid1"
# The sample keeps its counters in the kernel's state area: the VMM reads
# on where the last one stopped.
vmm_check "the VMM is served after the restart, the counter kept" "$U1" \
	--sequence 6 --delay-ms 0 --from 2

# 3.
log "3. stop, enable --now"
check "systemctl stop" sdctl stop "muser-emulator@$U1.service"
check "the emulator is gone" wait_for 10 pid_gone "$pid2"
check "the device stays" test -c "/dev/muser/$U1"
check "systemctl enable --now" sdctl enable --now "muser-emulator@$U1.service"
check "active after enable --now" wait_for 20 unit_active "$U1"
expect_eq "is-enabled" enabled "$(sdctl is-enabled "muser-emulator@$U1.service")"
check "the emulator is ready again" wait_for 20 emu_ready "$U1" 3
vmm_check "the VMM is served after enable --now" "$U1" \
	--sequence 6 --delay-ms 0 --from 4

# 4.
log "4. the device removed"
mdev_remove "$U1" || fail "remove $U1"
check "the unit ends inactive" wait_for 30 unit_inactive "$U1"
sleep 3	# RestartSec=1: a restart would be under way by now
unit_status "$U1"
expect_eq "ActiveState after removal" inactive "$(unit_prop "$U1" ActiveState)"
expect_eq "its condition failed" no "$(unit_prop "$U1" ConditionResult)"
check "no emulator left" test -z "$(emu_pid "$U1")"

# 5.
log "5. a device without configuration"
mdev_create "$U2" || fail "create $U2"
sd udevadm settle -t 15
check "udev made systemd try muser-emulator@$U2" wait_for 20 condition_checked "$U2"
unit_status "$U2"
expect_eq "ActiveState without /etc/muser/$U2.conf" inactive "$(unit_prop "$U2" ActiveState)"
expect_eq "its condition failed" no "$(unit_prop "$U2" ConditionResult)"

# shellcheck disable=SC2034 # read by the on_exit handler above
[ "$_failures" -eq 0 ] && SD_PASSED=1
test_done
