#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The nested-guest row of the benchmark: 4 KiB random-read IOPS inside a
# nested guest, muser's virtio-blk sample against QEMU's own virtio-blk-pci.
# An unmodified QEMU (TCG inside the test VM) boots the VM's kernel with both
# devices on one 64 MiB backing file, stamped (block N starts with N):
#   04.0  -device vfio-pci,sysfsdev=... the virtio-blk sample on a muser mdev
#   05.0  -device virtio-blk-pci, QEMU's, read-only on the same file
# so both are measured in the same boot, under the same conditions. The
# nested guest's /init runs blk-randread (O_DIRECT 4 KiB preads at random
# aligned offsets, QD threads with one read each in flight) for SECONDS per
# device and queue depth, alternating the devices, after a short warm-up of
# each. Prints the table:
#
#   name                          IOPS QD1  IOPS QD16
#   muser virtio-blk                 123.4      456.7
#   qemu virtio-blk-pci              234.5      567.8
#   ratio muser/qemu                  0.53       0.80
#
# Checks only that the I/O succeeded: every read returned 4096 bytes of the
# block asked for, on both devices at every depth, no I/O error in the
# guest or the sample; nothing about the figures (TCG in TCG, a shared
# machine: they are for comparing the two rows of one run).
#
# Usage: vblk-bench.sh [SECONDS]   (per device and depth; default 10)
# Run inside the test VM with muser.ko loaded (selftests/TESTS, tools/bench.sh).
# Environment: see ../lib.sh; also VBLK_SAMPLE (default
# BUILD_DIR/samples/virtio-blk), VBLK_ARGS (more sample arguments, e.g.
# --poll: shown in the row's name), VBLK_QDS (default "1 16"),
# NESTED_KERNEL, NESTED_SMP (default 2), NESTED_BOOT_TIMEOUT, NESTED_APPEND.
# A sample that spins (polls) while QEMU's device is measured takes a vCPU
# from it: compare such rows with a QEMU row of their own run.
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
SECS=${1:-10}
case $SECS in
'' | *[!0-9.]* | .*) echo "usage: $0 [SECONDS]  (per device and queue depth)" >&2; exit 2 ;;
esac
QDS=${VBLK_QDS:-1 16}
# the whole run: the boot (a few minutes), warm-ups, every point
npoints=$(($(wc -w <<<"$QDS") * 2))
e2e_init "vblk-bench$QEMU_TAG" $((600 + npoints * ${SECS%.*} + npoints * 10)) "$@"

KVER=$(uname -r)
KERNEL=$(nested_kernel "$KVER")
SAMPLE=${VBLK_SAMPLE:-$BUILD_DIR/samples/virtio-blk}
SAMPLE_ARGS=${VBLK_ARGS:-}
RANDREAD=${BLK_RANDREAD:-$BUILD_DIR/selftests/e2e/blk-randread}
BOOT_TIMEOUT=${NESTED_BOOT_TIMEOUT:-$((480 + npoints * ${SECS%.*} + npoints * 10))}
SMP=${NESTED_SMP:-2}
DISK_MB=64
WARMUP=1			# seconds per device, not counted

need_qemu
need_cmd timeout cpio gzip xz perl
[ -r "$KERNEL" ] || skip "cannot read $KERNEL"
[ -x "$RANDREAD" ] || skip "not built: $RANDREAD"
need_muser
need_sample

# --- the nested guest's initramfs -------------------------------------------
# shellcheck source=selftests/e2e/initramfs.sh
. "$E2E_DIR/initramfs.sh"
TMPDIR=$WORK initramfs_begin "$KVER" >"$WORK/build.log" 2>&1 ||
	fail "initramfs: $(tail -n 1 "$WORK/build.log")"
for m in virtio_pci virtio_blk; do
	initramfs_add_module $m >>"$WORK/build.log" 2>&1 ||
		fail "initramfs: $(tail -n 1 "$WORK/build.log")"
done
cp "$RANDREAD" "$STAGE/bin/blk-randread"
{
	initramfs_init_head
	cat <<INIT
mkdir -p /tmp
rc=0
echo "E2E-BEGIN kernel \$(uname -r)"
for m in \$(cat /modules/order); do
	insmod /modules/\$m || { echo "E2E-ERROR insmod \$m"; rc=1; }
done
# the disks by PCI slot: 04.0 the sample (muser), 05.0 QEMU's
muser="" qemu=""
for i in \$(seq 100); do
	for b in /sys/block/vd*; do
		[ -e "\$b" ] || continue
		case \$(readlink -f \$b) in
		*/0000:00:04.0/*) muser=\${b##*/} ;;
		*/0000:00:05.0/*) qemu=\${b##*/} ;;
		esac
	done
	[ -n "\$muser" ] && [ -n "\$qemu" ] && break
	sleep 0.1
done
for d in muser:\$muser qemu:\$qemu; do
	b=/sys/block/\${d#*:}
	echo "E2E-DISK \${d%%:*} \${d#*:} sectors=\$(cat \$b/size 2>/dev/null) hwqueues=\$(ls \$b/mq 2>/dev/null | wc -l)"
done
if [ -n "\$muser" ] && [ -n "\$qemu" ]; then
	for d in \$muser \$qemu; do
		blk-randread /dev/\$d 1 $WARMUP >/dev/null 2>/tmp/err || { echo "E2E-ERROR warm-up \$d: \$(cat /tmp/err)"; rc=1; }
	done
	for qd in $QDS; do
		for d in muser:\$muser qemu:\$qemu; do
			echo "E2E-MARK \${d%%:*} \$qd"
			out=\$(blk-randread /dev/\${d#*:} \$qd $SECS 2>/tmp/err) || { echo "E2E-ERROR \$d QD\$qd: \$(cat /tmp/err)"; rc=1; }
			echo "E2E-BENCH \${d%%:*} \$qd \$out"
		done
	done
fi
dmesg | grep -Ei 'vd[a-z]|blk_update|I/O error|timed out|timeout|reset|hung|BUG:|WARNING:|Oops|Call Trace' | sed 's/^/E2E-DMESG /'
echo "E2E-END rc=\$rc"
poweroff -f
INIT
} >"$STAGE/init"
chmod +x "$STAGE/init"
INITRD=$WORK/initrd.cpio.gz
initramfs_pack "$INITRD" || fail "packing the initramfs"

# --- the devices: one backing file ----------------------------------------------
DISK=$WORK/disk.img
perl -e 'print pack("Q<", $_), "\xa5" x 4088 for 0 .. $ARGV[0] - 1' $((DISK_MB * 256)) >"$DISK" ||
	fail "writing the backing file"
e2e_mdev_create
sample_start "$UUID" "$DISK" || fail "the sample did not start"

# --- where the CPU goes ---------------------------------------------------------
# cpu_marks: while the nested guest runs, at each E2E-MARK (a measurement
# begins) and E2E-BENCH (it ended) line of its console, one line in
# $WORK/cpu.log: the line, then the CPU time so far (clock ticks) of the
# nested QEMU and of the sample (each as all, then in the kernel: the
# nested QEMU's vfio-pci path is system calls), and of the whole VM (busy,
# all CPUs).
# Builtins only but the poll's timeout: a fork costs milliseconds here.
cpu_ticks() {	# /proc/PID/stat: utime + stime, then stime alone
	local st
	read -r st 2>/dev/null <"/proc/$1/stat" || { echo 0 0; return; }
	# shellcheck disable=SC2086 # the fields, split
	set -- ${st##*) }
	echo $((${12} + ${13})) "${13}"
}
cpu_marks() {
	local qemu="" line seen=0 n vm fd
	exec {fd}<> <(:)
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		[ -n "$qemu" ] || read -r qemu _ 2>/dev/null <"/proc/$QEMU_PID/task/$QEMU_PID/children"
		n=0
		while IFS= read -r line; do
			[[ $line == E2E-MARK* || $line == E2E-BENCH* ]] || continue
			n=$((n + 1))
			[ $n -gt $seen ] || continue
			read -r _ vm </proc/stat
			# shellcheck disable=SC2086 # user nice system idle iowait irq softirq steal
			set -- $vm
			echo "${line%$'\r'} | $(cpu_ticks "${qemu:-0}") $(cpu_ticks "$SAMPLE_PID") $(($1 + $2 + $3 + $6 + $7 + $8))"
			seen=$n
		done <"$CONSOLE" >>"$WORK/cpu.log"
		read -r -t 0.2 -u "$fd" _
	done
}

CONSOLE=$WORK/console.log
log "booting the nested guest ($KVER, $SMP vCPUs), then $SECS s per device and depth ($QDS)"
t0=$(date +%s)
nested_start "$CONSOLE" -accel tcg -machine pc -m 256M -smp "$SMP" \
	-nodefaults -display none -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" \
	-append "console=ttyS0 quiet panic=-1 ${NESTED_APPEND:-}" \
	-device "vfio-pci,sysfsdev=$MDEV_DEVICES/$UUID,addr=04.0" \
	-drive "file=$DISK,if=none,id=qblk,format=raw,readonly=on" \
	-device "virtio-blk-pci,drive=qblk,disable-legacy=on,addr=05.0"
cpu_marks &
MARKS_PID=$!
nested_wait "after $(($(date +%s) - t0)) s"
wait "$MARKS_PID"

# --- the figures ------------------------------------------------------------------
declare -A iops=() disks=() reads=()	# reads: per dev.qd, and per dev
# shellcheck disable=SC2317 # called by nested_console
bench_line() {
	local dev qd rest
	case $1 in
	E2E-DISK*)
		read -r _ dev rest <<<"$1"
		disks[$dev]=$rest
		;;
	E2E-BENCH*)
		read -r _ dev qd rest <<<"$1"
		# reads N short 0 errors 0 bad 0 usecs U iops X
		if [[ $rest =~ ^reads\ ([1-9][0-9]*)\ short\ 0\ errors\ 0\ bad\ 0\ .*iops\ ([0-9.]+)$ ]]; then
			iops[$dev.$qd]=${BASH_REMATCH[2]}
			reads[$dev.$qd]=${BASH_REMATCH[1]}
			reads[$dev]=$((${reads[$dev]:-0} + BASH_REMATCH[1]))
		else
			NESTED_ERRORS+="$dev QD$qd: '$rest'; "
		fi
		;;
	esac
	if [[ $1 == E2E-DMESG* ]] &&
		grep -Eqi 'I/O error|blk_update|timed out|timeout|hung|(virtio|vd[a-z]).*reset' <<<"$1"; then
		NESTED_ERRORS+="$1; "
	fi
}
nested_console bench_line
sectors=$((DISK_MB * 2048))
for dev in muser qemu; do
	[[ " ${disks[$dev]:-} " == *" sectors=$sectors "* ]] ||
		fail "$dev: no disk of $sectors sectors in the nested guest: ${disks[$dev]:-none}"
	for qd in $QDS; do
		[ -n "${iops[$dev.$qd]:-}" ] || fail "$dev QD$qd: no figure"
	done
done

# the table: a row per device, then the ratios
name="muser virtio-blk${SAMPLE_ARGS:+ $SAMPLE_ARGS}"
row() { printf '%-32s' "$1"; shift; printf ' %10s' "$@"; echo; }
hdr=() m=() q=() r=()
for qd in $QDS; do
	hdr+=("IOPS QD$qd")
	m+=("${iops[muser.$qd]}")
	q+=("${iops[qemu.$qd]}")
	r+=("$(awk -v m="${iops[muser.$qd]}" -v q="${iops[qemu.$qd]}" 'BEGIN { printf "%.2f", (q > 0 ? m / q : 0) }')")
done
row name "${hdr[@]}"
row "$name" "${m[@]}"
row "qemu virtio-blk-pci" "${q[@]}"
row "ratio muser/qemu" "${r[@]}"

# CPU ms per read in each measurement: E2E-MARK to E2E-BENCH in cpu.log.
hz=$(getconf CLK_TCK)
declare -A cpu=()
while IFS='|' read -r line ticks; do
	read -r kind dev qd _ <<<"$line"
	read -r tq tqsys ts _ tvm <<<"$ticks"
	if [ "$kind" = E2E-MARK ]; then
		start=("$tq" "$tqsys" "$ts" "$tvm")
	elif [ "$kind" = E2E-BENCH ] && [ -n "${reads[$dev.$qd]:-}" ]; then
		cpu[$dev.$qd]=$(awk -v n="${reads[$dev.$qd]}" -v hz="$hz" \
			-v q=$((tq - start[0])) -v qsys=$((tqsys - start[1])) \
			-v s=$((ts - start[2])) -v vm=$((tvm - start[3])) \
			'BEGIN { printf "%.2f %.2f %.2f %.2f", q * 1000 / hz / n,
				 qsys * 1000 / hz / n, s * 1000 / hz / n, vm * 1000 / hz / n }')
	fi
done <"$WORK/cpu.log"
hdr=() q=() qsys=() s=() v=()
for qd in $QDS; do
	for dev in muser qemu; do
		hdr+=("$dev QD$qd")
		read -r a b c d <<<"${cpu[$dev.$qd]:-? ? ? ?}"
		q+=("$a") qsys+=("$b") s+=("$c") v+=("$d")
	done
done
row "CPU ms per read" "${hdr[@]}"
row "  the nested guest's QEMU" "${q[@]}"
row "    of it in the VM's kernel" "${qsys[@]}"
row "  the sample" "${s[@]}"
row "  the VM, all (of $(nproc) CPUs)" "${v[@]}"

# What a guest read of the sample costs in doorbells, kernel requests,
# sleeps, interrupts and the emulator's CPU time (cpu_us): counted over
# the whole boot (the partition scan, the warm-up, every depth), divided
# by the reads measured.
kstats=$("$MUSERCTL" show "$UUID" 2>/dev/null)
sample_finish "the nested guest"
stats=$(grep '^stats:' "$WORK/sample.log" || true)
log "sample $stats"
[[ $stats == *" ioerr 0 "* ]] || fail "the sample reported I/O errors: $stats"
per_read() { awk -v n="$1" -v r="${reads[muser]}" 'BEGIN { printf "%.2f", n / r }'; }
counts=''
for k in requests requests-posted waits-spun waits-slept answers-ring answers-syscall; do
	n=$(sed -n "s/^$k: //p" <<<"$kstats")
	[[ $n =~ ^[0-9]+$ ]] || fail "muserctl show: no $k: $kstats"
	counts+="${counts:+, }$k $(per_read "$n")"
done
for k in notifies irqs cpu_us; do
	[[ $stats =~ \ $k\ ([0-9]+) ]] || fail "the sample's stats have no $k: $stats"
	counts+="${counts:+, }$k $(per_read "${BASH_REMATCH[1]}")"
done
echo "per muser read (${reads[muser]} reads): $counts"
exit 0
