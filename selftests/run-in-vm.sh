#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run the muser selftests, in order, inside the test VM (as root, on the
# Debian kernel it booted):
#
#   tools/vm/vm-run --kernel 6.1 --results build/results/6.1 -- \
#           selftests/run-in-vm.sh --results build/results/6.1
#
# The tests, their order, kinds and timeouts: selftests/TESTS (the one list;
# --list prints it). In short: the demo and muser/module.sh with muser.ko not
# loaded, insmod, the C tests (kselftest harness) and the shell tests of
# muser/, ops/ and e2e/, rmmod; then kmemleak, where the kernel has it.
#
# Each harness test is reported on its own. After every test the kernel log
# since its start must be free of warnings (selftests/kernel-log-bad),
# leftover mdevs are removed and timeout_ms is restored. Output: one
# "ok N - name", "not ok N - name" or "ok N - name # SKIP reason" line per
# test, everything else prefixed with "#" (among it "# NAME: N s", the
# wall time of each test but insmod and rmmod, and "# all tests: N s"), and
# last exactly one line "N passed, N failed, N skipped". Exit status 0 iff
# nothing failed.
#
# Environment: passed on to every test. tools/run-tests.sh sets the CI
# budgets there (MUSER_FUZZ_SECONDS for the fuzzers, STRESS_SECS and
# RESTARTS for e2e/nested-virtio-blk-migrate-q10); without them each test
# runs its own defaults, which are longer.
#
# Options:
#   --results DIR   write per-test logs, the TAP lines and the kernel log there
#   --build DIR     CMake build directory (default ROOT/build/cmake)
#   --only REGEX    run only the steps whose name matches (module loading and
#                   unloading always run)
#   --no-e2e        skip the e2e tests (kind e2e in selftests/TESTS)
#   --skip REGEX    skip the steps whose name matches
#   --list          print the names of the tests it would run, in order, and
#                   exit (with --only, --skip, --no-e2e: of those)
set -u

results=""
only=""
skip_re=""
no_e2e=""
list=""
while [ $# -gt 0 ]; do
	case $1 in
	--results) results=$2; shift 2 ;;
	--build) export BUILD_DIR=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--no-e2e) no_e2e=1; shift ;;
	--skip) skip_re=$2; shift 2 ;;
	--list) list=1; shift ;;
	-h | --help) sed -n '3,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "run-in-vm: unknown option $1" >&2; exit 2 ;;
	esac
done

# shellcheck source=selftests/lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
TEST_NAME=run-in-vm
export BUILD_DIR SAMPLE MUSER_KO TEST_BIN_DIR

# selftests/TESTS: NAME KIND TIMEOUT [ARGS...] | DESCRIPTION
t_name=() t_kind=() t_limit=() t_args=()
while read -r name kind limit rest; do
	case $name in '' | '#'*) continue ;; esac
	t_name+=("$name") t_kind+=("$kind") t_limit+=("$limit") t_args+=("${rest%%|*}")
done <"$SELFTESTS_DIR/TESTS"

want() {
	{ [ -z "$only" ] || [[ $1 =~ $only ]]; } &&
		{ [ -z "$skip_re" ] || ! [[ $1 =~ $skip_re ]]; }
}

# selected I: whether test I runs (the filters; "always" and insmod/rmmod
# are not filtered). Sets ARGS (without always, if=PATH, kernel=X.Y).
selected() {
	local i=$1 always=""
	read -ra ARGS <<<"${t_args[i]}"
	[ "${ARGS[0]:-}" = always ] && { always=1; ARGS=("${ARGS[@]:1}"); }
	if [[ ${ARGS[0]:-} == if=* ]]; then
		[ -n "$list" ] || [ -e "${ARGS[0]#if=}" ] || return 1
		ARGS=("${ARGS[@]:1}")
	fi
	if [[ ${ARGS[0]:-} == kernel=* ]]; then
		[ -n "$list" ] || [[ $(uname -r) == "${ARGS[0]#kernel=}".* ]] || return 1
		ARGS=("${ARGS[@]:1}")
	fi
	case ${t_kind[i]} in
	helper) return 1 ;;
	insmod | rmmod) return 0 ;;
	e2e) [ -z "$no_e2e" ] || return 1 ;;
	esac
	[ -n "$always" ] || want "${t_name[i]}"
}

if [ -n "$list" ]; then
	for i in "${!t_name[@]}"; do
		selected "$i" && echo "${t_name[i]}"
	done
	exit 0
fi

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

# A TAP diagnostic line, on stdout and in the TAP file.
diag() {
	echo "# $*"
	[ -z "$tap" ] || echo "# $*" >>"$tap"
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

# run_logged NAME TIMEOUT CMD...: run CMD under TIMEOUT, its output in
# LOG (and printed), its exit status in RC, the kernel log marked at MARK;
# then the diagnostic "# NAME: N s", its wall time (in the TAP file too).
run_logged() {
	local name=$1 limit=$2 t0
	shift 2
	LOG="$logdir/${name//\//_}.log"
	echo "# ---- $name"
	kmsg_mark "$name"
	MARK=$KMSG_MARK
	t0=$SECONDS
	timeout -k 10 "$limit" "$@" >"$LOG" 2>&1 </dev/null
	RC=$?
	sed 's/^/#   /' "$LOG"
	diag "$name: $((SECONDS - t0)) s"
	tidy
}

# run_script NAME TIMEOUT CMD...: one test, judged by its exit status.
run_script() {
	local name=$1 limit=$2 rc reason mark log
	run_logged "$@"
	rc=$RC mark=$MARK log=$LOG
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

# run_harness NAME TIMEOUT BINARY [ARGS...]: every kselftest-harness test on
# its own.
run_harness() {
	local name=$1 limit=$2 bin=$3 rc mark log plan=0 seen=0 nfail=0
	local status tname reason
	if [ ! -x "$bin" ]; then
		echo "# ---- $name"
		emit fail "$name" "not built: $bin"
		return
	fi
	run_logged "$@"
	rc=$RC mark=$MARK log=$LOG
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

if muser_loaded; then
	echo "# muser was loaded: unloading it"
	tidy
	rmmod muser
fi

run_insmod() {
	local mark
	kmsg_mark insmod
	mark=$KMSG_MARK
	if muser_insmod; then
		timeout_default=$(cat "$MUSER_PARAMS/timeout_ms")
		echo "# loaded: max_instances=$(cat "$MUSER_PARAMS/max_instances") timeout_ms=$timeout_default"
		if dmesg_clean "$mark"; then
			emit ok "insmod muser.ko"
		else
			emit fail "insmod muser.ko" "the kernel logged warnings"
		fi
	else
		emit fail "insmod muser.ko"
	fi
}

run_rmmod() {
	local mark
	tidy
	kmsg_mark rmmod
	mark=$KMSG_MARK
	if ! muser_rmmod; then
		emit fail "rmmod muser" "$(lsmod | grep '^muser ')"
	elif lsmod | grep -q '^muser '; then
		emit fail "rmmod muser" "lsmod still lists muser"
	elif [ -e /sys/class/muser ] || [ -e /sys/module/muser ]; then
		emit fail "rmmod muser" "/sys/class/muser or /sys/module/muser remains"
	elif ! dmesg_clean "$mark"; then
		emit fail "rmmod muser" "the kernel logged warnings"
	else
		emit ok "rmmod muser"
	fi
}

demo_ran=""
for i in "${!t_name[@]}"; do
	selected "$i" || continue
	name=${t_name[i]} limit=${t_limit[i]}
	case ${t_kind[i]} in
	insmod)
		run_insmod
		# Nothing after it runs without the module.
		muser_loaded || break
		;;
	rmmod) run_rmmod ;;
	harness) run_harness "$name" "$limit" "$TEST_BIN_DIR/$name" "${ARGS[@]}" ;;
	program) run_script "$name" "$limit" "$TEST_BIN_DIR/$name" "${ARGS[@]}" ;;
	script | e2e)
		# The demo ran e2e/nested-gpio, as the README's demo does.
		[ "$name" = e2e/nested-gpio ] && [ -n "$demo_ran" ] && continue
		run_script "$name" "$limit" "$ROOT/${ARGS[0]}" "${ARGS[@]:1}"
		if [ "$name" = demo ]; then
			demo_ran=1
			muser_loaded && { tidy; muser_rmmod; }
		fi
		;;
	*) emit fail "$name" "unknown kind ${t_kind[i]} in selftests/TESTS" ;;
	esac
done

# Every leak since the start (kmemleak.sh begin) fails, muser's or not.
if [ -w /sys/kernel/debug/kmemleak ]; then
	"$SELFTESTS_DIR/kmemleak.sh" check
	case $? in
	0) emit ok "kmemleak" ;;
	3) emit fail "kmemleak" "kmemleak cannot scan" ;;
	*) emit fail "kmemleak" "suspected leaks" ;;
	esac
fi

diag "all tests: $SECONDS s"
kmsg "selftests end (passed=$passed failed=$failed skipped=$skipped)"
[ -z "$results" ] || dmesg >"$results/dmesg.txt" 2>&1
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
