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

# ops_sysusers FILE...: the users and groups of these sysusers.d files
# (systemd-sysusers on a copy of /etc/passwd and /etc/group), bind-mounted
# over the read-only originals until the test exits.
ops_sysusers() {
	local etc f
	etc=$(mktemp -d /tmp/ops-etc.XXXXXX)
	mkdir -p "$etc/etc"
	for f in passwd group shadow gshadow; do
		[ -f "/etc/$f" ] && cp -p "/etc/$f" "$etc/etc/"
	done
	systemd-sysusers --root="$etc" "$@" || fail "systemd-sysusers $*"
	for f in passwd group; do
		mount --bind "$etc/etc/$f" "/etc/$f" || fail "bind /etc/$f"
		on_exit "umount /etc/$f"
	done
}

# ops_users: user and group "muser" exactly as the shipped sysusers.d file
# makes them.
ops_users() {
	ops_sysusers "$MUSER_SYSUSERS"
	getent group muser >/dev/null || fail "no group muser after sysusers"
	log "users: $(id muser)"
}

# ops_overlay DIR...: each DIR writable until the test exits, an overlay of
# a tmpfs over what the host has there (its files stay visible).
ops_overlay() {
	local d w
	modprobe overlay 2>/dev/null
	for d in "$@"; do
		[ -d "$d" ] || fail "no $d to put an overlay on"
		w=$(mktemp -d /tmp/ops-overlay.XXXXXX)
		mkdir "$w/upper" "$w/work"
		mount -t overlay overlay -o "lowerdir=$d,upperdir=$w/upper,workdir=$w/work" "$d" ||
			fail "overlay on $d"
		on_exit "umount $d"
	done
}

# ops_rooted CMD...: run CMD in a mount namespace of its own in which this
# root is the namespace's root, as on a host. In the VM the tests run in a
# chroot (tools/vm/vm-init), and a program that setns()es into a mount
# namespace (libvirt, entering its QEMUs' own /dev) lands at that
# namespace's root, the VM's initramfs, outside the chroot. So: a copy of
# the mounts (unshare), out of the chroot (a setns into that copy), this
# root moved onto / (as switch_root does), chroot there, CMD. Outside the
# chroot, fd 3 finds this root and the static busybox (busybox-static) in
# it runs, through the /proc the VM's init mounted there. Not in a chroot,
# CMD just runs in the copy. Mounts made later on either side are not seen
# on the other.
ops_rooted() {
	# shellcheck disable=SC2016 # expanded by that sh
	(
		exec 3</
		exec unshare --mount --propagation private \
			nsenter --mount=/proc/self/ns/mnt -- /proc/self/fd/3/bin/busybox sh -c '
				r=$(readlink /proc/self/fd/3)
				cd "$r" || exit 1
				[ "$r" = / ] || mount --move . / || exit 1
				exec chroot . "$@" 3<&-' sh "$@"
	)
}

# ops_udevd [RULES...]: systemd-udevd running, with the shipped rule (and
# RULES) in /run/udev/rules.d, which ranks like /etc/udev/rules.d; stopped
# when the test exits. The rest of the host's rules apply as on a host.
ops_udevd() {
	local r
	[ -x "$UDEVD" ] || fail "$UDEVD missing (tools/dev/install-deps.sh installs udev)"
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
# credentials, as sample_start's SAMPLE_PID and SAMPLE_LOG (sample_stop ends
# it); status 0 once it printed "ready", 1 if it exited (its output in
# SAMPLE_LOG).
serve_as() {
	local uuid=$1
	shift
	SAMPLE_LOG=$(mktemp /tmp/ops-emu.XXXXXX)
	_sample_tmp=$SAMPLE_LOG
	setpriv "$@" -- "$SAMPLE" "$uuid" >"$SAMPLE_LOG" 2>&1 &
	SAMPLE_PID=$!
	wait_for 20 sample_settled
	grep -q ready "$SAMPLE_LOG" && return 0
	wait "$SAMPLE_PID" 2>/dev/null
	SAMPLE_PID=""
	return 1
}

# run CMD...: CMD logged, with its output.
run() {
	log "\$ $*"
	"$@" 2>&1 | sed 's/^/#   /'
	return "${PIPESTATUS[0]}"
}

# vmm_check WHAT UUID [ARGS...]: vfio_check ARGS UUID (as a VMM) must pass.
vmm_check() {
	local what=$1 uuid=$2
	shift 2
	timeout 60 "$TEST_BIN_DIR/vfio_check" "$@" "$uuid" 2>&1 | sed 's/^/#   /'
	expect_eq "$what" 0 "${PIPESTATUS[0]}"
}
