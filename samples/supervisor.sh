#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# supervisor.sh UUID -- EMULATOR [ARGS...]: keep an emulator running for a
# muser device. Starts EMULATOR ARGS..., follows `muserctl monitor --json`
# and starts it again whenever the device reports emulator-detached while
# it is gone (a crash, a kill). muser.ko keeps the device, its VMM and its
# queued requests meanwhile; the new emulator carries on. Stops when the
# device is removed, or on SIGINT/SIGTERM (stopping the emulator too).
#
#   supervisor.sh $UUID -- gpio-pci-idio-16 $UUID
#
# MUSERCTL names muserctl (default: muserctl in PATH).
set -u

if [ $# -lt 3 ] || [ "$2" != -- ]; then
	echo "usage: $0 UUID -- EMULATOR [ARGS...]" >&2
	exit 2
fi
uuid=$1
shift 2
muserctl=${MUSERCTL:-muserctl}
pid=""

say() { echo "supervisor: $*" >&2; }

start() {
	"$@" &
	pid=$!
	say "started $1 for $uuid (pid $pid)"
}

# Listen first, so that no detach goes unseen; give it a moment to subscribe.
coproc MON { exec "$muserctl" monitor --json "$uuid"; }
# shellcheck disable=SC2153
mon_pid=$MON_PID
trap 'say stopping; kill "$mon_pid" $pid 2>/dev/null; exit 0' INT TERM
sleep 0.5
start "$@"

while IFS= read -r line <&"${MON[0]}"; do
	case $line in
	*'"event":"emulator-detached"'*)
		# Ours: wait until it has exited.
		case $line in
		*"\"pid\":$pid,"* | *"\"pid\":$pid}"*)
			wait "$pid"
			say "emulator $pid exited (status $?)" ;;
		esac
		if ! kill -0 "$pid" 2>/dev/null; then
			sleep 0.2	# no tight loop if it dies at once
			start "$@"
		fi
		;;
	*'"event":"removed"'*)
		say "$uuid removed"
		kill "$pid" 2>/dev/null
		break
		;;
	esac
done
kill "$mon_pid" 2>/dev/null
wait
