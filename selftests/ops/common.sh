# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Helpers of the selftests/ops tests (sourced after ../lib.sh): what the
# test VM lacks for udev, users and mdevctl, given without touching the
# host. The VM's / is the host's, read-only; /run, /tmp are tmpfs.

UDEVD=/lib/systemd/systemd-udevd
MUSER_RULE=$ROOT/udev/60-muser.rules
MUSER_SYSUSERS=$ROOT/systemd/muser.sysusers
# The VM runs the tests chrooted into the host's root, and udevadm's
# trigger, settle and control ignore requests in a chroot unless told.
export SYSTEMD_IGNORE_CHROOT=1

# ops_users: user and group "muser" exactly as the shipped sysusers.d file
# makes them (systemd-sysusers on a copy of /etc/passwd and /etc/group),
# bind-mounted over the read-only originals until the test exits.
ops_users() {
	local etc f
	etc=$(mktemp -d /tmp/ops-etc.XXXXXX)
	mkdir -p "$etc/etc"
	for f in passwd group shadow gshadow; do
		[ -f "/etc/$f" ] && cp -p "/etc/$f" "$etc/etc/"
	done
	systemd-sysusers --root="$etc" "$MUSER_SYSUSERS" ||
		fail "systemd-sysusers $MUSER_SYSUSERS"
	for f in passwd group; do
		mount --bind "$etc/etc/$f" "/etc/$f" || fail "bind /etc/$f"
		on_exit "umount /etc/$f"
	done
	getent group muser >/dev/null || fail "no group muser after sysusers"
	log "users: $(id muser)"
}

# ops_udevd [RULES...]: systemd-udevd running, with the shipped rule (and
# RULES) in /run/udev/rules.d, which ranks like /etc/udev/rules.d; stopped
# when the test exits. The rest of the host's rules apply as on a host.
ops_udevd() {
	local r
	[ -x "$UDEVD" ] || fail "$UDEVD missing (tools/install-deps.sh installs udev)"
	mkdir -p /run/udev/rules.d
	for r in "$MUSER_RULE" "$@"; do
		cp "$r" /run/udev/rules.d/ || fail "cp $r"
		on_exit "rm -f /run/udev/rules.d/$(basename "$r")"
	done
	"$UDEVD" --daemon || fail "systemd-udevd --daemon"
	on_exit 'udevadm control --exit; udevadm settle -t 5'
	wait_for 10 udevadm control --ping 2>/dev/null || fail "udevd does not answer"
}

# node_perms UUID: "owner group mode" of /dev/muser/UUID.
node_perms() { stat -c '%U %G %a' "/dev/muser/$1" 2>&1; }

# serve_as UUID SETPRIV_ARGS...: the sample, under setpriv with those
# credentials; EMU_PID and EMU_LOG set; status 0 once it printed "ready",
# 1 if it exited (its output in EMU_LOG).
EMU_PID=""
emu_settled() { grep -q ready "$EMU_LOG" || pid_gone "$EMU_PID"; }
serve_as() {
	local uuid=$1
	shift
	EMU_LOG=$(mktemp /tmp/ops-emu.XXXXXX)
	setpriv "$@" -- "$SAMPLE" "$uuid" >"$EMU_LOG" 2>&1 &
	EMU_PID=$!
	wait_for 20 emu_settled
	grep -q ready "$EMU_LOG" && return 0
	wait "$EMU_PID" 2>/dev/null
	EMU_PID=""
	return 1
}

serve_stop() {
	[ -n "$EMU_PID" ] || return 0
	kill -TERM "$EMU_PID" 2>/dev/null
	wait_for 5 pid_gone "$EMU_PID" || kill -KILL "$EMU_PID" 2>/dev/null
	wait "$EMU_PID" 2>/dev/null
	EMU_PID=""
}
