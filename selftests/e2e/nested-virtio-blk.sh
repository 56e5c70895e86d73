#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# End to end with guest DMA: an unmodified QEMU (TCG inside the test VM,
# default anonymous guest RAM) boots the same Debian kernel with the
# virtio-blk sample as -device vfio-pci, backed by a 64 MiB file. The
# nested guest's in-tree virtio_pci and virtio_blk drivers bind to it, and
# its /init (busybox):
#   1. reports the disk (/sys/block/vda: size, serial = GET_ID, queues,
#      discard and write-zeroes limits);
#   2. writes a random pattern with O_DIRECT (dd oflag=direct) at several
#      offsets (4 KiB blocks, one crossing 32 MiB, the last 64 KiB of the
#      disk, and odd 512-byte sectors), reads each back with O_DIRECT and
#      prints its md5;
#   3. writes the pattern, discards it (blkdiscard) and reads zeros back;
#   4. makes an ext2 file system on the first 16 MiB (busybox mke2fs),
#      mounts it with the ext4 module, writes a file, syncs, remounts,
#      prints the file's md5, unmounts;
#   5. restarts: for STRESS_SECS, one worker per vCPU (taskset) writes
#      64 KiB blocks, each stamped with its worker and iteration, round
#      robin over 32 slots of its own with O_DIRECT, reads each back with
#      O_DIRECT and compares md5s; powers off.
# Meanwhile, in the test VM, the emulator is SIGKILLed at random moments
# and started again at once (RESTARTS times), and once replaced in place
# with --takeover; each new one must have recovered the state, and muser's
# dma/pinned_pages must stay nonzero (pins kept).
# Then, in the test VM: the md5s must match the pattern, the backing file
# must hold exactly those bytes at those offsets and zeros where discarded,
# debugfs must read the same file from the image and e2fsck find it clean,
# the stress slots must hold each one's last block, the guest must have
# logged no I/O error, timeout or reset, muser's dma/pinned_pages must be
# back to 0 once QEMU exited, and the last sample must exit cleanly on
# SIGTERM having served (counting its predecessors: the counts live in the
# state area) reads, writes, flushes, GET_ID and discards without an I/O
# error, and recovered as many times as there were restarts.
#
# Usage: nested-virtio-blk.sh [--qemu-device | --migrate] [--qemu 7.2|10.0]
#   --qemu-device  no muser: QEMU's own virtio-blk-pci on the same backing
#                  file instead (checks the test itself; the muser-only
#                  checks are skipped)
#   --migrate      a few seconds into the stress phase (25 s longer) the
#                  running guest live-migrates to a second QEMU on this host
#                  (its own mdev and sample, the same backing file); the
#                  restarts then happen there, where the guest finishes and
#                  every check is made (its sample counts the source's
#                  requests and recoveries too: the state came along); the
#                  source's sample must have survived
#   --qemu V       the QEMU (default MUSER_QEMU, else 7.2)
# Environment: see ../lib.sh; also VBLK_SAMPLE (default
# BUILD_DIR/selftests/virtio-blk-hooks: the sample with its test hook), NESTED_KERNEL, NESTED_BOOT_TIMEOUT (seconds
# for the nested guest, default 480), NESTED_SMP (its vCPUs, default 2: as
# many queues), NESTED_APPEND, QEMU_EXTRA, STRESS_SECS (default 60),
# RESTARTS (SIGKILLs during it, default 8; 0: none and no takeover),
# VBLK_ARGS (the sample's options, default "--posted --poll 20": doorbell
# writes posted, the sample polling, through every SIGKILL and takeover).
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/e2e/qmp.sh
. "$(dirname "$0")/qmp.sh"
args=("$@")
MODE=muser
MIGRATE=""
while [ $# -gt 0 ]; do
	case $1 in
	--qemu-device) MODE=qemu ;;
	--migrate) MIGRATE=1 ;;
	--qemu) qemu_select "${2:-}" || exit 2; shift ;;
	*) echo "usage: $0 [--qemu-device | --migrate] [--qemu 7.2|10.0]" >&2; exit 2 ;;
	esac
	shift
done
e2e_init "nested-virtio-blk${MIGRATE:+-migrate}$QEMU_TAG" 720 "${args[@]}"
KVER=$(uname -r)
KERNEL=$(nested_kernel "$KVER")
SAMPLE=${VBLK_SAMPLE:-$BUILD_DIR/selftests/virtio-blk-hooks}	# VBLK_DIE_IN_REQUEST
SAMPLE_ARGS=${VBLK_ARGS---posted --poll 20}	# lib.sh's sample_start passes them
BOOT_TIMEOUT=${NESTED_BOOT_TIMEOUT:-480}
SMP=${NESTED_SMP:-2}		# 2 vCPUs: virtio_blk uses both queues
DISK_MB=64
FS_KB=16384			# the file system: the first 16 MiB
# O_DIRECT writes, BS:SEEK:COUNT (dd units), all beyond the file system
DIRECT="4096:5000:16 4096:8184:16 4096:16368:16 512:100001:7"
DISCARD="4096:12288:16"		# written, then discarded
FILE_COPIES=4			# the file: the 64 KiB pattern 4 times
STRESS_SECS=${STRESS_SECS:-60}
STRESS_AT=576			# in 64 KiB blocks: 36 MiB, beyond the rest
STRESS_SLOTS=32			# per worker
RESTARTS=${RESTARTS:-8}
[ "$MODE" = qemu ] && RESTARTS=0
if [ -n "$MIGRATE" ]; then
	# A live migration as the stress begins, then the restarts: time for both.
	STRESS_SECS=$((STRESS_SECS + 25))
	SAMPLE_ARGS+=" --migration"
	MIGPROP=,$QEMU_MIGPROP
fi

need_qemu
need_cmd timeout cpio gzip xz md5sum
[ -r "$KERNEL" ] || skip "cannot read $KERNEL"
if [ "$MODE" = muser ]; then
	need_muser
	need_sample
fi

# --- the nested guest's initramfs ---------------------------------------
# shellcheck source=selftests/e2e/initramfs.sh
. "$E2E_DIR/initramfs.sh"
TMPDIR=$WORK initramfs_begin "$KVER" >"$WORK/build.log" 2>&1 ||
	fail "initramfs: $(tail -n 1 "$WORK/build.log")"
# ext4 asks the crypto API for crc32c, which cannot load modules itself here
for m in virtio_pci virtio_blk crc32c_generic ext4; do
	initramfs_add_module $m >>"$WORK/build.log" 2>&1 ||
		fail "initramfs: $(tail -n 1 "$WORK/build.log")"
done
PATTERN=$WORK/pattern
head -c 65536 /dev/urandom >"$PATTERN"
cp "$PATTERN" "$STAGE/pattern"
IFS=: read -r bs at n <<<"$DISCARD"
discard_off=$((bs * at))
discard_len=$((bs * n))
# stress W END: worker W writes and checks blocks until uptime END
cat >"$STAGE/bin/stress" <<STRESS
#!/bin/busybox sh
w=\$1 end=\$2 i=0
blk=/tmp/blk.\$w back=/tmp/back.\$w
while :; do
	read -r up _ </proc/uptime
	[ "\${up%.*}" -ge "\$end" ] && break
	at=\$(($STRESS_AT + w * $STRESS_SLOTS + i % $STRESS_SLOTS))
	printf '%-63s\n' "E2E stress worker \$w iteration \$i" >\$blk
	head -c 65472 /pattern >>\$blk
	if ! dd if=\$blk of=/dev/vda bs=65536 seek=\$at count=1 oflag=direct conv=notrunc 2>/tmp/dd.\$w; then
		echo "E2E-ERROR stress worker \$w iteration \$i: write: \$(tail -n 1 /tmp/dd.\$w)"
		break
	fi
	if ! dd if=/dev/vda of=\$back bs=65536 skip=\$at count=1 iflag=direct 2>/tmp/dd.\$w; then
		echo "E2E-ERROR stress worker \$w iteration \$i: read: \$(tail -n 1 /tmp/dd.\$w)"
		break
	fi
	if [ "\$(md5sum <\$back)" != "\$(md5sum <\$blk)" ]; then
		echo "E2E-ERROR stress worker \$w iteration \$i: read back differs"
		break
	fi
	i=\$((i + 1))
done
echo "E2E-STRESS-WORKER \$w iterations=\$i"
STRESS
chmod +x "$STAGE/bin/stress"
{
	initramfs_init_head
	cat <<INIT
mkdir -p /tmp /mnt
stamp() { read -r up _ </proc/uptime; echo "E2E-TIME \$1 \$up"; }
err() { echo "E2E-ERROR \$*"; rc=1; }
# dd_direct in|out BS:SEEK:COUNT [FILE]: one O_DIRECT transfer with /dev/vda
dd_direct() {
	local IFS=:
	set -- \$1 \$2
	local bs=\$2 at=\$3 n=\$4
	if [ "\$1" = out ]; then
		dd if=/pattern of=/dev/vda bs=\$bs seek=\$at count=\$n oflag=direct conv=notrunc 2>/tmp/dd.err
	else
		dd if=/dev/vda of=/tmp/back bs=\$bs skip=\$at count=\$n iflag=direct 2>/tmp/dd.err
	fi || { err "dd \$*: \$(tail -n 1 /tmp/dd.err)"; return 1; }
}
rc=0
echo "E2E-BEGIN kernel \$(uname -r)"
for m in \$(cat /modules/order); do
	insmod /modules/\$m || err "insmod \$m"
done
echo "E2E-MODULES \$(cat /modules/order | tr '\n' ' ')"
stamp modules-loaded
for i in \$(seq 100); do
	[ -b /dev/vda ] && break
	sleep 0.1
done
q=/sys/block/vda
if [ ! -b /dev/vda ]; then
	echo E2E-NODISK
else
	echo "E2E-DISK sectors=\$(cat \$q/size) serial=\$(cat \$q/serial) hwqueues=\$(ls \$q/mq | wc -l) lbs=\$(cat \$q/queue/logical_block_size) discard_max=\$(cat \$q/queue/discard_max_bytes) write_zeroes_max=\$(cat \$q/queue/write_zeroes_max_bytes) cache=\$(cat \$q/queue/write_cache)"
	for d in $DIRECT; do
		dd_direct out \$d
	done
	sync /dev/vda || err "fsync /dev/vda"	# a FLUSH request
	for d in $DIRECT; do
		dd_direct in \$d && echo "E2E-DIRECT \$d \$(md5sum </tmp/back | cut -d' ' -f1)"
	done
	stamp direct
	dd_direct out $DISCARD
	blkdiscard -o $discard_off -l $discard_len /dev/vda || err "blkdiscard"
	dd_direct in $DISCARD && echo "E2E-DISCARD $DISCARD \$(md5sum </tmp/back | cut -d' ' -f1)"
	stamp discard
	mkdir -p /mnt
	if ! mke2fs -F -b 1024 /dev/vda $FS_KB >/tmp/mkfs.log 2>&1; then
		err "mke2fs: \$(tail -n 1 /tmp/mkfs.log)"
	elif ! mount -t ext4 /dev/vda /mnt; then
		err "mount"
	else
		for i in \$(seq $FILE_COPIES); do cat /pattern; done >/mnt/file || err "writing the file"
		sync
		umount /mnt || err "umount"
		echo 3 >/proc/sys/vm/drop_caches
		mount -t ext4 -o ro /dev/vda /mnt || err "mount again"
		echo "E2E-FS file \$(md5sum </mnt/file | cut -d' ' -f1) \$(wc -c </mnt/file)"
		umount /mnt || err "umount again"
	fi
	stamp fs
	# 5. I/O while the emulator restarts (in the test VM)
	read -r up _ </proc/uptime
	end=\$((\${up%.*} + $STRESS_SECS))
	echo "E2E-STRESS-BEGIN secs=$STRESS_SECS"
	pids=""
	for w in 0 1; do
		if taskset -c \$w true 2>/dev/null; then
			taskset -c \$w stress \$w \$end &
		else
			stress \$w \$end &
		fi
		pids="\$pids \$!"
	done
	# workers stuck in I/O would never end: give up after a minute more
	for i in \$(seq \$(( ($STRESS_SECS + 60) * 2 ))); do
		alive=0
		for p in \$pids; do kill -0 \$p 2>/dev/null && alive=1; done
		[ \$alive = 0 ] && break
		sleep 0.5
	done
	[ \$alive = 0 ] || { err "stress workers stuck"; ps; }
	echo E2E-STRESS-END
	stamp stress
fi
dmesg | grep -Ei 'virtio|vda|EXT[24]|blk_update|I/O error|timed out|timeout|reset|hung|BUG:|WARNING:|Oops|Call Trace' | sed 's/^/E2E-DMESG /'
echo "E2E-END rc=\$rc"
poweroff -f
INIT
} >"$STAGE/init"
chmod +x "$STAGE/init"
INITRD=$WORK/initrd.cpio.gz
modules=$(tr '\n' ' ' <"$STAGE/modules/order")
initramfs_pack "$INITRD" || fail "packing the initramfs"
log "nested initramfs: $(du -k "$INITRD" | cut -f1) KiB, modules: $modules"

# --- the device -------------------------------------------------------------
DISK=$WORK/disk.img
truncate -s ${DISK_MB}M "$DISK"
if [ "$MODE" = muser ]; then
	e2e_mdev_create
	sample_start "$UUID" "$DISK" || fail "the sample did not start"
	PINNED=/sys/bus/mdev/devices/$UUID/dma/pinned_pages
	DEVARGS=(-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$UUID,addr=04.0${MIGPROP:-}")
else
	DEVARGS=(-drive "file=$DISK,if=none,id=disk,format=raw,discard=unmap"
		-device "virtio-blk-pci,drive=disk,disable-legacy=on,serial=disk.img,addr=04.0")
fi

CONSOLE=$WORK/console.log
log "booting the nested guest ($KVER, TCG inside TCG: a few minutes)"
t0=$(date +%s)
MACHINE=(-accel tcg -machine pc -m 256M -smp "$SMP" -nodefaults -display none -no-reboot
	 -kernel "$KERNEL" -initrd "$INITRD"
	 -append "console=ttyS0 quiet panic=-1 ${NESTED_APPEND:-}")
# shellcheck disable=SC2086
nested_start "$CONSOLE" "${MACHINE[@]}" "${DEVARGS[@]}" ${QEMU_EXTRA:-} \
	${MIGRATE:+-qmp unix:$WORK/src.sock,server=on,wait=off}

# --- a live migration, as the stress begins -------------------------------------
# The destination: its own mdev and sample on the same backing file, its
# QEMU waiting (-incoming defer); the return path on both sides, as libvirt
# has it. A few seconds into the stress the running guest migrates; the
# restarts then happen on the destination, where the guest finishes and
# every check below is made.
SRC_UUID="" SRC_PID="" DST_UUID="" DST_PID="" DST_QEMU_PID=""
# shellcheck disable=SC2317 # run by on_exit
src_cleanup() {
	stop_pid "$DST_QEMU_PID" 10
	stop_pid "$SRC_PID" 5
	stop_pid "$DST_PID" 5
	local u
	for u in "$SRC_UUID" "$DST_UUID"; do
		if [ -n "$u" ] && [ "$u" != "$UUID" ] && mdev_exists "$u"; then
			mdev_remove "$u" || _cleanup_failed=1
		fi
	done
}
# prepare_destination: set it up while the guest boots; UUID and
# SAMPLE_PID stay the source's (the restarts are the source's).
prepare_destination() {
	local uuid=$UUID pid=$SAMPLE_PID slog=$SAMPLE_LOG
	on_exit src_cleanup
	e2e_mdev_create
	SAMPLE_NAME=sample-dst SAMPLE_QUIET=1 sample_start "$UUID" "$DISK" || fail "the destination's sample did not start"
	DST_UUID=$UUID DST_PID=$SAMPLE_PID
	UUID=$uuid SAMPLE_PID=$pid SAMPLE_LOG=$slog
	# shellcheck disable=SC2086
	timeout -k 10 "$BOOT_TIMEOUT" "$QEMU" "${QEMU_ARGS[@]}" "${MACHINE[@]}" \
		-device "vfio-pci,sysfsdev=/sys/bus/mdev/devices/$DST_UUID,addr=04.0$MIGPROP" ${QEMU_EXTRA:-} \
		-serial "file:$WORK/console-dst.log" -qmp "unix:$WORK/dst.sock,server=on,wait=off" \
		-incoming defer >"$WORK/qemu-dst.log" 2>&1 &
	DST_QEMU_PID=$!
	qmp_cli "$WORK/dst.sock" wait 240 >/dev/null ||
		fail "the destination QEMU did not come up: $(tail -n 3 "$WORK/qemu-dst.log")"
	qmp_cli "$WORK/dst.sock" hmp "migrate_set_capability return-path on" \
		"migrate_incoming unix:$WORK/mig.sock" >/dev/null ||
		fail "the destination QEMU would not listen: $(tail -n 3 "$WORK/qemu-dst.log")"
	log "the destination waits: mdev $DST_UUID, its sample, QEMU -incoming"
}
migrate_now() {
	SRC_UUID=$UUID SRC_PID=$SAMPLE_PID SRC_CONSOLE=$CONSOLE
	log "the guest is under I/O: migrating it"
	# A guest under I/O in TCG dirties memory fast: let it converge.
	qmp_cli "$WORK/src.sock" hmp "migrate_set_capability return-path on" \
		"migrate_set_parameter downtime-limit 2000" \
		"migrate -d unix:$WORK/mig.sock" >/dev/null || fail "migrate failed"
	status=""
	for _ in $(seq 600); do
		status=$(qmp_cli "$WORK/src.sock" hmp "info migrate" | mig_status_in)
		case $status in completed|failed|cancelled) break ;; esac
		sleep 0.5
	done
	qmp_cli "$WORK/src.sock" hmp "info migrate" | tr -d '\r' |
		grep -E "status|total time|downtime|transferred ram" | sed 's/^/#   /'
	[ "$status" = completed ] || fail "migration $status: $(tail -n 3 "$WORK/qemu-dst.log")"
	grep -q E2E-STRESS-END "$SRC_CONSOLE" && fail "the stress ended before the switchover: nothing was tested"
	qmp_cli "$WORK/src.sock" quit >/dev/null
	nested_wait "on the source (migrated)"
	pid_gone "$SRC_PID" && fail "the source's sample died"
	# From here on, the test's device is the destination's.
	QEMU_PID=$DST_QEMU_PID UUID=$DST_UUID SAMPLE_PID=$DST_PID DST_PID=""
	SLOG=sample-dst CONSOLE=$WORK/console-dst.log
	PINNED=/sys/bus/mdev/devices/$UUID/dma/pinned_pages
	log "migration completed under I/O; the guest goes on on the destination"
}

if [ -n "$MIGRATE" ]; then
	prepare_destination
	while kill -0 "$QEMU_PID" 2>/dev/null && ! grep -qs E2E-STRESS-BEGIN "$CONSOLE"; do
		sleep 0.5
	done
	kill -0 "$QEMU_PID" 2>/dev/null || fail "the nested guest ended before its stress phase"
	sleep 3
	migrate_now
fi

# --- restarts during the stress phase ------------------------------------------
SLOG=sample			# the running sample's log
kills=0 takeovers=0 dies=0 pins=""
# restart N [--takeover|--die]: SIGKILL the sample and start the next one
# at once, or start the next one with --takeover; it must recover the state.
# --die: the next one SIGKILLs itself in its third request, after the I/O and
# before the used ring (VBLK_DIE_IN_REQUEST), and one more starts then.
restart() {
	local n=$1 old=$SAMPLE_PID oldlog=$SLOG p rc
	shift
	if [ "${1:-}" = --die ]; then
		DIE=1 restart "$n"
		old=$SAMPLE_PID
		wait_pid "$old" 60 || fail "the sample with VBLK_DIE_IN_REQUEST=3 did not die"
		wait "$old"
		rc=$?
		[ $rc -eq 137 ] || fail "the sample with VBLK_DIE_IN_REQUEST=3 exited with status $rc"
		p=$(cat "$PINNED")
		SAMPLE_NAME=sample-$n-next SAMPLE_QUIET=1 sample_start "$UUID" "$DISK" || fail "the sample did not start"
		dies=$((dies + 1))
		SLOG=sample-$n-next
	elif [ "${1:-}" = --takeover ]; then
		SAMPLE_NAME=sample-$n SAMPLE_QUIET=1 sample_start "$UUID" --takeover "$DISK" || fail "the sample did not start"
		wait_pid "$old" 10 || fail "the sample taken over (pid $old) did not exit"
		wait "$old"
		rc=$?
		[ $rc -eq 0 ] || fail "the sample taken over exited with status $rc: $(tail -n 3 "$WORK/$oldlog.log")"
		grep -q "taken over" "$WORK/$oldlog.log" || fail "the sample taken over does not say so: $(tail -n 3 "$WORK/$oldlog.log")"
		takeovers=$((takeovers + 1))
		p=takeover
		SLOG=sample-$n
	else
		kill -KILL "$old"
		wait "$old" 2>/dev/null
		p=$(cat "$PINNED")
		[ "$p" -gt 0 ] || fail "dma/pinned_pages is $p after the sample was killed: the pins went"
		if [ -n "${DIE:-}" ]; then
			VBLK_DIE_IN_REQUEST=3 SAMPLE_NAME=sample-$n SAMPLE_QUIET=1 sample_start "$UUID" "$DISK" || fail "the sample did not start"
		else
			SAMPLE_NAME=sample-$n SAMPLE_QUIET=1 sample_start "$UUID" "$DISK" || fail "the sample did not start"
		fi
		kills=$((kills + 1))
		SLOG=sample-$n
	fi
	grep -q "ready (recovered)" "$WORK/$SLOG.log" || fail "sample $n did not recover the state: $(head -n 3 "$WORK/$SLOG.log")"
	pins+=" $p/$(cat "$PINNED")"
}
if [ "$RESTARTS" -gt 0 ]; then
	# (after a migration the stress began on the source's console)
	while kill -0 "$QEMU_PID" 2>/dev/null &&
	      ! grep -qs E2E-STRESS-BEGIN "$CONSOLE" "${SRC_CONSOLE:-/dev/null}"; do
		sleep 0.5
	done
	if kill -0 "$QEMU_PID" 2>/dev/null; then
		log "stress phase: $RESTARTS SIGKILLs of the sample and a takeover, at random moments"
		for n in $(seq $((RESTARTS + 1))); do
			r=$((RANDOM % 26 + 5))		# 0.5 .. 3 s
			sleep "$((r / 10)).$((r % 10))"
			if ! kill -0 "$QEMU_PID" 2>/dev/null || grep -q E2E-STRESS-END "$CONSOLE"; then
				break
			fi
			if [ "$n" -eq $((RESTARTS / 2 + 1)) ]; then
				restart "$n" --takeover
			elif [ "$n" -eq 2 ]; then
				restart "$n" --die
			else
				restart "$n"
			fi
		done
		log "restarts: $kills SIGKILLs ($dies in a request), $takeovers takeover; dma/pinned_pages after each kill/restart:$pins"
	fi
fi

nested_wait "after $(($(date +%s) - t0)) s"
if [ -n "$MIGRATE" ]; then
	cat "$SRC_CONSOLE" "$CONSOLE" >"$WORK/console-both.log"
	CONSOLE=$WORK/console-both.log
fi

# --- what the guest saw -----------------------------------------------------
declare -A direct=() iterations=()
disk="" discard="" fsline="" stress_end=""
# shellcheck disable=SC2317 # called by nested_console
vblk_line() {
	local spec sum w it
	case $1 in
	E2E-NODISK*) disk=none ;;
	E2E-DISK*) disk=${1#E2E-DISK } ;;
	E2E-DIRECT*)
		read -r _ spec sum <<<"$1"
		direct[$spec]=$sum
		;;
	E2E-DISCARD*) discard=${1##* } ;;
	E2E-FS*) fsline=${1#E2E-FS } ;;
	E2E-STRESS-WORKER*)
		read -r _ w it <<<"$1"
		iterations[$w]=${it#iterations=}
		;;
	E2E-STRESS-END*) stress_end=1 ;;
	esac
	if [[ $1 == E2E-DMESG* ]] &&
		grep -Eqi 'I/O error|blk_update|timed out|timeout|hung|(virtio|vda).*reset' <<<"$1"; then
		NESTED_ERRORS+="$1; "
	fi
}
nested_console vblk_line
case $disk in none | "") fail "no /dev/vda in the nested guest" ;; esac

sectors=$((DISK_MB * 2048))
[[ " $disk " == *" sectors=$sectors "* ]] || fail "disk: expected $sectors sectors: $disk"
[[ " $disk " == *" hwqueues=$SMP "* ]] || fail "disk: expected $SMP queues: $disk"
[[ " $disk " == *" serial=disk.img "* ]] || fail "disk: expected serial disk.img (GET_ID): $disk"
[[ " $disk " == *" discard_max="[1-9]* ]] || fail "disk: no discard: $disk"
log "disk: $disk"

# --- the guest's data in the backing file ---------------------------------
md5() { md5sum | cut -d' ' -f1; }
# region BS:SEEK:COUNT: the bytes of the backing file there
region() {
	local bs at n
	IFS=: read -r bs at n <<<"$1"
	dd if="$DISK" bs="$bs" skip="$at" count="$n" status=none
}
for d in $DIRECT; do
	IFS=: read -r bs _ n <<<"$d"
	want=$(head -c $((bs * n)) "$PATTERN" | md5)
	[ "${direct[$d]:-}" = "$want" ] || fail "O_DIRECT $d: the guest read back ${direct[$d]:-nothing}, wrote $want"
	got=$(region "$d" | md5)
	[ "$got" = "$want" ] || fail "O_DIRECT $d: the backing file holds $got, the guest wrote $want"
done
log "O_DIRECT: $(wc -w <<<"$DIRECT") regions read back and found in the backing file"

IFS=: read -r bs _ n <<<"$DISCARD"
zeros=$(head -c $((bs * n)) /dev/zero | md5)
[ "$discard" = "$zeros" ] || fail "discarded blocks read back as $discard in the guest, not zeros"
[ "$(region "$DISCARD" | md5)" = "$zeros" ] || fail "discarded blocks are not zeros in the backing file"
log "discard: zeros in the guest and in the backing file"

want=$(for _ in $(seq $FILE_COPIES); do cat "$PATTERN"; done | md5)
[ "$fsline" = "file $want $((FILE_COPIES * 65536))" ] || fail "the file read back in the guest: '$fsline', expected $want"
if command -v debugfs >/dev/null && command -v e2fsck >/dev/null; then
	got=$(debugfs -R "cat /file" "$DISK" 2>/dev/null | md5)
	[ "$got" = "$want" ] || fail "debugfs reads the file from the backing file as $got, expected $want"
	e2fsck -fn "$DISK" >"$WORK/e2fsck.log" 2>&1 || fail "e2fsck: the file system is not clean: $(tail -n 3 "$WORK/e2fsck.log")"
	log "file system: the file matches in the guest and in the backing file (debugfs); e2fsck clean"
else
	log "file system: the file matches in the guest (no debugfs/e2fsck here to check the image)"
fi

[ "$MODE" = qemu ] && exit 0

# the stress slots: each holds the last block its worker wrote there
[ -n "$stress_end" ] || fail "the stress phase did not finish"
head -c 65472 "$PATTERN" >"$WORK/pattern.tail"
head -c 65536 /dev/zero >"$WORK/zeros.64k"
for w in 0 1; do
	n=${iterations[$w]:-}
	[ "${n:-0}" -gt 0 ] || fail "stress worker $w did not finish an iteration"
	# what the slots must hold: each one's last block (zeros if never written)
	for k in $(seq 0 $((STRESS_SLOTS - 1))); do
		if [ "$k" -lt "$n" ]; then
			printf '%-63s\n' "E2E stress worker $w iteration $((k + (n - 1 - k) / STRESS_SLOTS * STRESS_SLOTS))"
			cat "$WORK/pattern.tail"
		else
			cat "$WORK/zeros.64k"
		fi
	done >"$WORK/stress.want"
	region "65536:$((STRESS_AT + w * STRESS_SLOTS)):$STRESS_SLOTS" >"$WORK/stress.got"
	bad=$(cmp "$WORK/stress.want" "$WORK/stress.got" | head -n 1)
	[ -z "$bad" ] || fail "stress worker $w: the backing file does not hold the last block of each slot: $bad (slot = byte / 65536)"
done
log "stress: ${iterations[0]} + ${iterations[1]} blocks written and read back in the guest; the last of each slot in the backing file"
if [ "$RESTARTS" -gt 0 ]; then
	if [ "$kills" -ne "$RESTARTS" ] || [ "$takeovers" -ne 1 ]; then
		fail "only $kills of $RESTARTS SIGKILLs and $takeovers takeover happened during the stress phase (STRESS_SECS too short?)"
	fi
fi

# --- clean-up state -----------------------------------------------------------
pinned=""
for _ in $(seq 50); do
	pinned=$(cat "$PINNED")
	[ "$pinned" = 0 ] && break
	sleep 0.1
done
[ "$pinned" = 0 ] || fail "$PINNED is $pinned after QEMU exited"
log "dma/pinned_pages: 0 after QEMU exited"
if [[ " $SAMPLE_ARGS " == *" --posted "* ]]; then
	posted=$(muserctl_field "$UUID" requests-posted)
	log "posted writes: $posted, requests failed: $(muserctl_field "$UUID" requests-failed)"
	[ "${posted:-0}" -gt 0 ] || fail "--posted, yet no posted write: '$posted'"
fi

kill -0 "$SAMPLE_PID" 2>/dev/null || fail "the sample died while serving the nested guest: $(tail -n 3 "$WORK/$SLOG.log")"
kill -TERM "$SAMPLE_PID"
wait_pid "$SAMPLE_PID" 5 || fail "the sample did not exit on SIGTERM"
wait "$SAMPLE_PID"
src=$?
SAMPLE_PID=""
[ $src -eq 0 ] || fail "the sample exited with status $src: $(tail -n 3 "$WORK/$SLOG.log")"
stats=$(grep '^stats:' "$WORK/$SLOG.log")
log "sample $stats"
for k in in out flush get_id discard; do
	if ! [[ $stats =~ \ $k\ ([1-9][0-9]*) ]]; then
		fail "the sample served no $k request: $stats"
	fi
done
[[ $stats == *" ioerr 0 "* ]] || fail "the sample reported I/O errors: $stats"
# A migration loads the state as a restart does: one more recovery.
recovered=$((kills + takeovers + dies + ${MIGRATE:-0}))
[[ $stats == *" recoveries $recovered "* ]] ||
	fail "the sample should have recovered $recovered times: $stats"
redone=-1
[[ $stats =~ \ redone\ ([0-9]+) ]] && redone=${BASH_REMATCH[1]}
[ "$redone" -ge "$dies" ] ||
	fail "the sample should have served again at least $dies request(s) taken by a killed one: $stats"
e2e_mdev_remove || fail "removing the mdev failed"
exit 0
