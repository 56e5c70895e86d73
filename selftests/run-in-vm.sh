#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run the muser selftests, in order, inside the test VM (as root, on the
# Debian kernel it booted):
#
#   tools/vm/vm-run --kernel 6.1 --results build/results/6.1 -- \
#           selftests/run-in-vm.sh --results build/results/6.1
#
#   0. demo                   tools/demo-in-vm.sh, the README's demo, first,
#                             in a VM where nothing is loaded yet: it loads
#                             muser.ko as a user would and runs
#                             e2e/nested-gpio.sh (which step 11 then skips)
#   1. muser/module.sh        load/unload, parameters, max_instances
#   2. insmod build/kmod/$(uname -r)/muser.ko (its dependencies by modprobe)
#   3. muser/mdev_sysfs.sh    create/remove, good and bad UUIDs
#   3a. fail_nth              fault-injection sweep over create, attach, VFIO
#                             open, SET_IRQS, DMA_MAP (harness; only on a
#                             kernel with fail-nth: tools/vm/debug-kernel.sh)
#   4. emu_proto              raw protocol: requests, replies (harness)
#   4. emu_attach             raw protocol: attach, layouts, replay (harness)
#   4. emu_irqs               raw protocol: interrupts, the REQ irq (harness)
#   4. emu_noemu              no emulator: timeouts, removal (harness)
#   4. kmsg_list              the kernel log check reads kernel-log-bad
#   5. devmem                 device memory: mmap areas, sparse caps (harness)
#   6. irqs                   eventfds, INTx masking, irq state (harness)
#   6a. dma                   guest memory: pin, map, revoke, budget (harness)
#   6a. dma_races             guest memory: unmap vs pinning threads, hold
#                             limits and leaks, the window of a replaced
#                             emulator, 6.1's late dma_unmap registration
#   6b. lib_dma               libmuser's guest memory API (harness)
#   6c. dma_bench             figures: pin+map cost, mapped read bandwidth
#   6c. req_bench             figures: trapped reads and writes, 1 and 8
#                             VMM threads, as ratios to a syscall's cost
#   6d. takeover              upgrading an emulator in place, two emulators
#                             alternating under VMM writes (harness)
#   6d. queue                 bounded queues: 300 VMM threads against
#                             MUSER_MAX_QUEUED, coalesced notices (harness)
#   6d. figures               netlink and sysfs figures answered while a
#                             device pins guest memory (harness)
#   6e. restart               restartable emulators: the state area, libmuser
#                             recovering config and device state, a SIGKILL
#                             storm under VMM load, no emulator (harness)
#   6f. restart_bench         figures: a restarted emulator's time to its
#                             first request, with 1 vs 4 GiB pinned
#   7. concurrency            16 devices, 8 VMM threads, one emulator (harness)
#   8. vfio_client            a VMM against the sample (kselftest harness)
#   9. config_space           config space emulated by libmuser, through
#                             VFIO: header, BARs, ROM, capabilities, resets
#                             (harness, against muser/cfgdev)
#   9a. hostile_vmm           a hostile VMM: every VFIO device ioctl, pread/
#                             pwrite and mmap edge per layout, calls before an
#                             emulator, 8 threads, DMA map/unmap storms, then a
#                             seeded fuzzer (MUSER_FUZZ_SECONDS/CALLS/SEED)
#   9b. hostile_emu           a hostile emulator: replies with wrong ids,
#                             lengths and errnos, read/write buffers, layouts
#                             at every edge, every muser ioctl, DMA and mmap
#                             storms, emulators attaching, taking over and
#                             SIGKILLed under a VMM, then a seeded fuzzer
#   9c. lifecycle             lifecycle races: threads creating/removing
#                             devices, opening/closing VMMs, attaching, taking
#                             over, SIGKILLing emulators, DMA, rmmod at random
#                             (MUSER_FUZZ_SECONDS/CALLS/SEED), invariants all
#                             along; then no pins, no leaks, refcount 0, rmmod
#                             succeeds; leaves muser.ko loaded as it found it
#  10. muser/bite.sh          the tests fail against a wrongly answering sample
#  10a. muser/upgrade.sh      takeover and SIGKILL under a reading VMM
#  10b. ops/udev.sh           udev rule, sysusers, an unprivileged emulator
#  10c. ops/mdevctl.sh        mdevctl define/start/stop/undefine, auto-start
#  10d. ops/systemd.sh        the emulator unit under a real systemd: started
#                             by udev, Restart=always, conditions
#  10e. muser/muserctl.sh     muserctl, the generic netlink family and its
#                             events, samples/supervisor.sh
#  10f. ops/libvirt.sh        libvirt 9.0: node devices, nodedev-define, a
#                             domain with an mdev hostdev (nested guest)
#  11. e2e/*.sh               every executable one (exit 4 = skip)
#  12. rmmod muser; lsmod must no longer list it
#
# Each harness test is reported on its own. After every test the kernel log
# since its start must be free of warnings (selftests/kernel-log-bad),
# leftover mdevs are removed and timeout_ms is restored. Output: one
# "ok N - name", "not ok N - name" or "ok N - name # SKIP reason" line per
# test, everything else prefixed with "#", and last exactly one line
# "N passed, N failed, N skipped". Exit status 0 iff nothing failed.
#
# Options:
#   --results DIR   write per-test logs, the TAP lines and the kernel log there
#   --build DIR     CMake build directory (default ROOT/build/cmake)
#   --only REGEX    run only the steps whose name matches (module loading and
#                   unloading always run)
#   --no-e2e        skip selftests/e2e
#   --skip REGEX    skip the steps whose name matches
set -u

results=""
only=""
skip_re=""
no_e2e=""
while [ $# -gt 0 ]; do
	case $1 in
	--results) results=$2; shift 2 ;;
	--build) export BUILD_DIR=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--no-e2e) no_e2e=1; shift ;;
	--skip) skip_re=$2; shift 2 ;;
	-h | --help) sed -n '3,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "run-in-vm: unknown option $1" >&2; exit 2 ;;
	esac
done

# shellcheck source=selftests/lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
TEST_NAME=run-in-vm
export BUILD_DIR SAMPLE MUSER_KO TEST_BIN_DIR

if [ -n "$results" ]; then
	mkdir -p "$results/logs" || results=""
fi
logdir=${results:+$results/logs}
[ -n "$logdir" ] || logdir=$(mktemp -d /tmp/muser-selftests.XXXXXX)
tap=${results:+$results/tap.txt}

n=0
passed=0
failed=0
skipped=0

emit() {	# emit ok|fail|skip NAME [REASON]
	local line
	n=$((n + 1))
	case $1 in
	ok) passed=$((passed + 1)); line="ok $n - $2" ;;
	skip) skipped=$((skipped + 1)); line="ok $n - $2 # SKIP ${3:-}" ;;
	*) failed=$((failed + 1)); line="not ok $n - $2${3:+ # $3}" ;;
	esac
	echo "$line"
	[ -z "$tap" ] || echo "$line" >>"$tap"
}

want() {
	{ [ -z "$only" ] || [[ $1 =~ $only ]]; } &&
		{ [ -z "$skip_re" ] || ! [[ $1 =~ $skip_re ]]; }
}

# Between tests: no mdev left, timeout_ms back to the default.
tidy() {
	local d left=0
	muser_loaded || return 0
	for d in "$MUSER_TYPE"/devices/*; do
		[ -e "$d" ] || continue
		left=$((left + 1))
		echo "# tidy: removing leftover mdev $(basename "$d")"
		mdev_remove "$(basename "$d")" ||
			echo "# tidy: cannot remove $(basename "$d")"
	done
	[ -n "${timeout_default:-}" ] && [ -w "$MUSER_PARAMS/timeout_ms" ] &&
		echo "$timeout_default" >"$MUSER_PARAMS/timeout_ms"
	return 0
}

# run_script NAME TIMEOUT CMD...: one test, judged by its exit status.
run_script() {
	local name=$1 limit=$2 rc reason mark log
	shift 2
	log="$logdir/${name//\//_}.log"
	echo "# ---- $name"
	kmsg_mark "$name"
	mark=$KMSG_MARK
	timeout -k 10 "$limit" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	sed 's/^/#   /' "$log"
	tidy
	if [ $rc -eq $KSFT_SKIP ]; then
		reason=$(grep -i 'skip' "$log" | tail -n1 | sed 's/^#* *\(SKIP:*\)* *//')
		emit skip "$name" "${reason:-exit status 4}"
		return
	fi
	if ! dmesg_clean "$mark"; then
		emit fail "$name" "the kernel logged warnings"
		return
	fi
	case $rc in
	0) emit ok "$name" ;;
	124 | 137) emit fail "$name" "timed out after ${limit}s" ;;
	*) emit fail "$name" "exit status $rc" ;;
	esac
}

# run_harness NAME TIMEOUT BINARY: every kselftest-harness test on its own.
run_harness() {
	local name=$1 limit=$2 bin=$3 rc mark log plan=0 seen=0 nfail=0
	local status tname reason
	log="$logdir/$name.log"
	echo "# ---- $name"
	if [ ! -x "$bin" ]; then
		emit fail "$name" "not built: $bin"
		return
	fi
	kmsg_mark "$name"
	mark=$KMSG_MARK
	timeout -k 10 "$limit" "$bin" >"$log" 2>&1 </dev/null
	rc=$?
	sed 's/^/#   /' "$log"
	tidy
	plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$log" | head -n1)
	while IFS=$'\t' read -r status tname reason; do
		seen=$((seen + 1))
		case $status in
		ok) emit ok "$name: $tname" ;;
		skip) emit skip "$name: $tname" "$reason" ;;
		*) emit fail "$name: $tname"; nfail=$((nfail + 1)) ;;
		esac
	done < <(awk '
		/^#  RUN / { cur = $3 }
		/^ok [0-9]+ # SKIP/ { r = $0; sub(/^ok [0-9]+ # SKIP */, "", r)
			print "skip\t" cur "\t" r; next }
		/^ok [0-9]+ / { t = $0; sub(/^ok [0-9]+ /, "", t); print "ok\t" t "\t"; next }
		/^not ok [0-9]+ / { t = $0; sub(/^not ok [0-9]+ /, "", t); print "fail\t" t "\t" }
	' "$log")
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		emit fail "$name" "timed out after ${limit}s"
	elif [ -n "$plan" ] && [ "$seen" -lt "$plan" ]; then
		emit fail "$name" "only $seen of $plan tests reported (exit status $rc)"
	elif [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
		emit fail "$name" "exit status $rc"
	fi
	dmesg_clean "$mark" || emit fail "$name: kernel log" "the kernel logged warnings"
}

echo "# muser selftests on $(uname -r), $(nproc) CPUs, $(date -u)"
echo "# muser.ko: $MUSER_KO"
echo "# build:    $BUILD_DIR"
kmsg "selftests begin on $(uname -r)"
[ -w /sys/kernel/debug/kmemleak ] && "$SELFTESTS_DIR/kmemleak.sh" begin

if [ "$(id -u)" -ne 0 ]; then
	emit fail "running as root"
	echo "$passed passed, $failed failed, $skipped skipped"
	exit 1
fi
if [ ! -f "$MUSER_KO" ]; then
	emit fail "muser.ko built for $(uname -r)" "missing $MUSER_KO"
	echo "$passed passed, $failed failed, $skipped skipped"
	exit 1
fi

# 0, 1. The demo, then loading and unloading, with the module not loaded.
if muser_loaded; then
	echo "# muser was loaded: unloading it"
	tidy
	rmmod muser
fi
demo_ran=""
if [ -z "$no_e2e" ] && want demo; then
	run_script demo 900 "$ROOT/tools/demo-in-vm.sh"
	demo_ran=1
	muser_loaded && { tidy; muser_rmmod; }
fi
run_script module 300 "$SELFTESTS_DIR/muser/module.sh"

# 2. Load it for the rest.
kmsg_mark insmod
insmod_mark=$KMSG_MARK
if muser_insmod; then
	timeout_default=$(cat "$MUSER_PARAMS/timeout_ms")
	echo "# loaded: max_instances=$(cat "$MUSER_PARAMS/max_instances") timeout_ms=$timeout_default"
	if dmesg_clean "$insmod_mark"; then
		emit ok "insmod muser.ko"
	else
		emit fail "insmod muser.ko" "the kernel logged warnings"
	fi
else
	emit fail "insmod muser.ko"
fi

if muser_loaded; then
	# 3-10.
	want mdev_sysfs && run_script mdev_sysfs 300 "$SELFTESTS_DIR/muser/mdev_sysfs.sh"
	want fail_nth && [ -e /proc/self/fail-nth ] && run_harness fail_nth 3600 "$TEST_BIN_DIR/fail_nth"
	want emu_proto && run_harness emu_proto 600 "$TEST_BIN_DIR/emu_proto"
	want emu_attach && run_harness emu_attach 300 "$TEST_BIN_DIR/emu_attach"
	want emu_irqs && run_harness emu_irqs 300 "$TEST_BIN_DIR/emu_irqs"
	want emu_noemu && run_harness emu_noemu 300 "$TEST_BIN_DIR/emu_noemu"
	want kmsg_list && run_harness kmsg_list 60 "$TEST_BIN_DIR/kmsg_list"
	want devmem && run_harness devmem 600 "$TEST_BIN_DIR/devmem"
	want irqs && run_harness irqs 600 "$TEST_BIN_DIR/irqs"
	want dma && run_harness dma 600 "$TEST_BIN_DIR/dma"
	want dma_races && run_harness dma_races 1800 "$TEST_BIN_DIR/dma_races"
	want lib_dma && run_harness lib_dma 300 "$TEST_BIN_DIR/lib_dma"
	want dma_bench && run_script dma_bench 300 "$TEST_BIN_DIR/dma_bench"
	want req_bench && run_script req_bench 300 "$TEST_BIN_DIR/req_bench" 2000
	want takeover && run_harness takeover 600 "$TEST_BIN_DIR/takeover"
	want queue && run_harness queue 600 "$TEST_BIN_DIR/queue"
	want figures && run_harness figures 600 "$TEST_BIN_DIR/figures"
	want restart && run_harness restart 900 "$TEST_BIN_DIR/restart"
	want restart_bench && run_script restart_bench 1200 "$TEST_BIN_DIR/restart_bench"
	want concurrency && run_harness concurrency 600 "$TEST_BIN_DIR/concurrency"
	want vfio_client && run_harness vfio_client 600 "$TEST_BIN_DIR/vfio_client"
	want config_space && run_harness config_space 600 "$TEST_BIN_DIR/config_space"
	want hostile_vmm && run_harness hostile_vmm 300 "$TEST_BIN_DIR/hostile_vmm"
	want hostile_emu && run_harness hostile_emu 600 "$TEST_BIN_DIR/hostile_emu"
	want lifecycle && run_harness lifecycle 900 "$TEST_BIN_DIR/lifecycle"
	want bite && run_script bite 900 "$SELFTESTS_DIR/muser/bite.sh"
	want upgrade && run_script upgrade 300 "$SELFTESTS_DIR/muser/upgrade.sh"
	want ops/udev && run_script ops/udev 300 "$SELFTESTS_DIR/ops/udev.sh"
	want ops/mdevctl && run_script ops/mdevctl 300 "$SELFTESTS_DIR/ops/mdevctl.sh"
	want ops/systemd && run_script ops/systemd 300 "$SELFTESTS_DIR/ops/systemd.sh"
	want muserctl && run_script muserctl 300 "$SELFTESTS_DIR/muser/muserctl.sh"
	want ops/libvirt && run_script ops/libvirt 900 "$SELFTESTS_DIR/ops/libvirt.sh"

	# 11. End-to-end tests.
	if [ -z "$no_e2e" ]; then
		for t in "$SELFTESTS_DIR"/e2e/*.sh; do
			if [ ! -f "$t" ] || [ ! -x "$t" ]; then
				continue
			fi
			name="e2e/$(basename "$t" .sh)"
			want "$name" || continue
			# The demo step ran it, as the README's demo does.
			[ "$name" = e2e/nested-gpio ] && [ -n "$demo_ran" ] && continue
			run_script "$name" 1800 "$t"
		done
	fi

	# 12. Unload.
	tidy
	kmsg_mark rmmod
	rmmod_mark=$KMSG_MARK
	if ! muser_rmmod; then
		emit fail "rmmod muser" "$(lsmod | grep '^muser ')"
	elif lsmod | grep -q '^muser '; then
		emit fail "rmmod muser" "lsmod still lists muser"
	elif [ -e /sys/class/muser ] || [ -e /sys/module/muser ]; then
		emit fail "rmmod muser" "/sys/class/muser or /sys/module/muser remains"
	elif ! dmesg_clean "$rmmod_mark"; then
		emit fail "rmmod muser" "the kernel logged warnings"
	else
		emit ok "rmmod muser"
	fi
fi

# Every leak since the start (kmemleak.sh begin) fails, muser's or not.
if [ -w /sys/kernel/debug/kmemleak ]; then
	"$SELFTESTS_DIR/kmemleak.sh" check
	case $? in
	0) emit ok "kmemleak" ;;
	3) emit fail "kmemleak" "kmemleak cannot scan" ;;
	*) emit fail "kmemleak" "suspected leaks" ;;
	esac
fi

kmsg "selftests end (passed=$passed failed=$failed skipped=$skipped)"
[ -z "$results" ] || dmesg >"$results/dmesg.txt" 2>&1
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
