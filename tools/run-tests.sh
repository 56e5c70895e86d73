#!/usr/bin/env bash
# The whole test suite: install what is missing, build everything, run the
# host unit tests, then the selftests inside a VM on each Debian kernel.
# The last line is "N passed, N failed".
#
#   tools/run-tests.sh [--kernel 6.1|6.12]... [--debug-kernel]
#
# On the Debian kernels the selftests run with the CI budgets (CI_BUDGETS
# below: the fuzzers 10 s each instead of their 20-60 s, the restart phase
# of e2e/nested-virtio-blk-migrate-q10 40 s with 4 SIGKILLs instead of 60 s
# with 8), so that the whole suite fits CI's hour. Each of these variables set in the
# environment wins, e.g. MUSER_FUZZ_SECONDS=300 tools/run-tests.sh for a
# longer fuzz; MUSER_FUZZ_SEED and MUSER_FUZZ_CALLS pass through too. The
# debug kernel gets only what the environment sets (the tests' defaults).
#
# Default: both Debian kernels. --debug-kernel (alone: only it, without the
# host unit tests) builds the debug kernel (tools/vm/debug-kernel.sh: KASAN,
# lockdep, kmemleak, DEBUG_OBJECTS, fault injection; cached) and runs the
# selftests on it, the fault-injection sweep (fail_nth) included and
# kmemleak scanned at the end. Skipped there: the steps matching
# DEBUG_SKIP below, whose nested guests boot the VM's own kernel (the demo
# among them; the debug kernel has no /boot/vmlinuz nor modules for them),
# and the benchmarks (figures under KASAN mean nothing). The whole console
# is kept in build/results/debug/console.log: a KASAN or DEBUG_OBJECTS
# report panics the VM (panic_on_warn), a lockdep report fails the test
# that caused it (and turns lockdep off for the rest of the boot); the
# full text is there.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

kernels=()
debug=''
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernels+=("$2"); shift 2 ;;
	--debug-kernel) debug=1; shift ;;
	*) echo "usage: $0 [--kernel 6.1|6.12]... [--debug-kernel]" >&2; exit 2 ;;
	esac
done
[ ${#kernels[@]} -gt 0 ] || [ -n "$debug" ] || kernels=(6.1 6.12)
DEBUG_SKIP='^(demo|ops/libvirt|e2e/nested-|dma_bench|bench|restart_bench)'
CI_BUDGETS=(MUSER_FUZZ_SECONDS=10 STRESS_SECS=40 RESTARTS=4)

# tools/vm/vm-run gives the VM's command no environment of ours: these go
# through env(1), and selftests/run-in-vm.sh passes them on to every test.
# The caller's own settings come last, so that they win.
caller_env=()
for v in MUSER_FUZZ_SECONDS MUSER_FUZZ_CALLS MUSER_FUZZ_SEED STRESS_SECS RESTARTS; do
	[ -z "${!v:-}" ] || caller_env+=("$v=${!v}")
done

passed=0
failed=0
skipped=0
failures=()

# Add the counts of a "N passed, N failed[, N skipped]" line in file $1.
tally() {
	local line p f s
	line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -n1)
	if [ -z "$line" ]; then
		echo "run-tests: $2: no result line" >&2
		failures+=("$2: no result line (the VM died or timed out)")
		failed=$((failed + 1))
		return
	fi
	p=$(sed -E 's/.*\b([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	s=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$line")
	passed=$((passed + p))
	failed=$((failed + f))
	# Name what failed, so that the end of the log says it.
	while IFS= read -r l; do
		failures+=("$2: $l")
	done < <(grep -E '^not ok ' "$1")
	skipped=$((skipped + ${s:-0}))
	echo "== $2: $line"
}

step() { echo; echo "=== $*"; }

step "dependencies"
tools/dev/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
# shellcheck disable=SC1091
. build/kernels

step "build"
tools/dev/build.sh || { echo "0 passed, 1 failed"; exit 1; }

mkdir -p build/results
if [ ${#kernels[@]} -gt 0 ]; then
	step "host unit tests"
	(cd build/cmake && ctest --output-on-failure) >build/results/host.log 2>&1
	cat build/results/host.log
	h_total=$(sed -nE 's/.*tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\2/p' build/results/host.log)
	h_failed=$(sed -nE 's/.*tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\1/p' build/results/host.log)
	if [ -n "$h_total" ]; then
		echo "host: $((h_total - h_failed)) passed, $h_failed failed" >build/results/host.sum
	else
		echo "host: 0 passed, 1 failed" >build/results/host.sum
	fi
	# ctest's "The following tests FAILED:" list, as "not ok" lines.
	sed -nE 's/^[[:space:]]+[0-9]+ - (.+) \(.+\)$/not ok \1/p' \
		build/results/host.log >>build/results/host.sum
	tally build/results/host.sum "host unit tests"
fi

for k in "${kernels[@]}"; do
	res="$top/build/results/$k"
	rm -rf "$res"
	mkdir -p "$res"
	step "selftests in a VM on Linux $k"
	echo "# budgets: ${CI_BUDGETS[*]} ${caller_env[*]}"
	# 6G: room for restart_bench's pins (selftests/TESTS: 256 MiB and
	# 1 GiB; run by hand without arguments, 1 GiB and 4 GiB) besides the
	# nested guests.
	tools/vm/vm-run --kernel "$k" --mem 6G --timeout 2400 --results "$res" -- \
		env "${CI_BUDGETS[@]}" "${caller_env[@]}" \
		selftests/run-in-vm.sh --results "$res" 2>&1 | tee "$res/vm.log"
	tally "$res/vm.log" "Linux $k"
done

if [ -n "$debug" ]; then
	res="$top/build/results/debug"
	rm -rf "$res"
	mkdir -p "$res"
	step "debug kernel"
	if tools/vm/debug-kernel.sh; then
		step "selftests in a VM on the debug kernel"
		start=$(date +%s)
		tools/vm/vm-run --kernel debug --mem 6G --timeout 14400 --results "$res" \
			--console-log "$res/console.log" -- env "${caller_env[@]}" \
			selftests/run-in-vm.sh --results "$res" --skip "$DEBUG_SKIP" 2>&1 |
			tee "$res/vm.log"
		echo "# debug kernel: selftests took $(($(date +%s) - start)) s"
		tally "$res/vm.log" "debug kernel"
	else
		echo "debug kernel: 0 passed, 1 failed" >"$res/build.sum"
		tally "$res/build.sum" "debug kernel build"
	fi
fi

echo
for l in "${failures[@]}"; do
	echo "FAILED $l"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
