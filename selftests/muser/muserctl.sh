#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# muserctl and the "muser" generic netlink family, against the
# gpio-pci-idio-16 sample:
#
#  1. list with no device; create (given and generated UUIDs), list with
#     two; create of an existing UUID fails.
#  2. show, field by field: new before the emulator; attached with the
#     sample's pid; a VMM (vfio_check --sequence) open 1 and requests
#     growing; waiting with pid 0 after SIGKILL; attached again with
#     restarts 1 after a new sample; VMM open 0 after it closes; --json.
#  3. show of a UUID nobody has: exit 1 with the kernel's message; a bad
#     UUID: exit 2; remove of an unknown UUID: exit 1.
#  4. genl_policy.py: raw netlink requests, bad attributes rejected with
#     EINVAL, a dump.
#  5. monitor (text and --json, in the background) saw, in order: created,
#     emulator-attached, vmm-opened, emulator-detached, emulator-attached,
#     vmm-closed, emulator-detached, removed, with the right pids; both
#     stop with status 0 on SIGINT/SIGTERM; every --json line parses.
#  6. samples/supervisor.sh restarts a killed emulator: state attached
#     again, a new pid, restarts 1; it stops on SIGTERM with its emulator.
#  7. monitor during lib_dma (its VMM unmaps pinned guest memory):
#     dma-unmapped with the iova and size.
#
# Needs muser.ko loaded.
# shellcheck source=selftests/lib.sh disable=SC2016,SC2317
. "$(dirname "$0")/../lib.sh"

test_init muserctl
muser_loaded || skip "muser.ko is not loaded"
[ -x "$MUSERCTL" ] || skip "not built: $MUSERCTL"
[ -x "$SAMPLE" ] || skip "sample not built: $SAMPLE"
[ -x "$TEST_BIN_DIR/vfio_check" ] || skip "not built: $TEST_BIN_DIR/vfio_check"
command -v python3 >/dev/null || skip "no python3"

W=$(mktemp -d /tmp/muserctl.XXXXXX)
bg_pids=()
on_exit 'rm -rf "$W"'
on_exit 'kill -KILL "${bg_pids[@]}" 2>/dev/null; wait; sample_stop; mdev_remove_all'

ctl() { "$MUSERCTL" "$@"; }

# --- monitors first, so they see everything ---
# (Not through ctl(): $! must be muserctl's own pid.)
"$MUSERCTL" monitor >"$W/mon.txt" 2>"$W/mon.err" &
mon=$!
"$MUSERCTL" monitor --json >"$W/mon.json" 2>&1 &
monj=$!
bg_pids+=("$mon" "$monj")
sleep 2	# let them subscribe

# --- 1. list, create ---
ctl list >"$W/list" 2>&1
expect_eq "list with no device: exit status" 0 "$?"
expect_eq "list with no device: just the header" 1 "$(wc -l <"$W/list")"
check "the header names the columns" grep -q '^UUID .*STATE .*LAST-ERROR' "$W/list"
expect_eq "list --json with no device" "[]" "$(ctl --json list)"

U=$(new_uuid)
expect_eq "create UUID prints it" "$U" "$(ctl create "$U")"
check "create made the mdev" test -e "$MDEV_DEVICES/$U"
U2=$(ctl create)
expect_eq "create without a UUID: exit status" 0 "$?"
check "create without a UUID printed one ($U2)" \
	grep -Eq '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' <<<"$U2"
check "... and made it" test -e "$MDEV_DEVICES/$U2"
check_fails "create of an existing UUID" ctl create "$U" 2>/dev/null

ctl list >"$W/list" 2>&1
sed 's/^/#   /' "$W/list"
expect_eq "list with two devices: lines" 3 "$(wc -l <"$W/list")"
check "list has $U as new" grep -Eq "^$U +new +0 +0 +0/0 +0/0 +0 +none$" "$W/list"
check "list has $U2" grep -q "^$U2 " "$W/list"
ctl --json list >"$W/list.json"
check "list --json parses, two devices, every field" python3 -c '
import json, sys
l = json.load(open(sys.argv[1]))
keys = {"uuid", "state", "emulator_pid", "vmm_open", "pinned_pages",
        "mapped_pages", "requests", "requests_failed", "restarts",
        "last_error", "last_errno", "devmem_pages", "devmem_budget_pages",
        "requests_posted", "waits_spun", "waits_slept", "answers_ring",
        "answers_syscall"}
assert isinstance(l, list) and len(l) == 2, l
assert sorted(d["uuid"] for d in l) == sorted(sys.argv[2:]), l
assert all(set(d) == keys for d in l), l
assert all(d["state"] == "new" and d["last_error"] is None for d in l), l
' "$W/list.json" "$U" "$U2"
expect_eq "remove of the generated one" 0 "$(ctl remove "$U2"; echo $?)"
check "it is gone" test ! -e "$MDEV_DEVICES/$U2"

# --- 2. show, through a device's life ---
ctl show "$U" >"$W/show"
sed 's/^/#   /' "$W/show"
expect_eq "show: lines" 17 "$(wc -l <"$W/show")"
for kv in "uuid $U" "state new" "emulator-pid 0" "vmm-open 0" \
	"pinned-pages 0" "mapped-pages 0" "requests 0" "requests-failed 0" \
	"restarts 0" "last-error none" "devmem-pages 0" \
	"requests-posted 0" "waits-spun 0" "waits-slept 0" \
	"answers-ring 0" "answers-syscall 0" \
	"devmem-budget-pages $(($(cat "$MUSER_PARAMS/devmem_budget_mb") * 256))"; do
	expect_eq "show before the emulator: ${kv% *}" "${kv#* }" "$(muserctl_field "$U" "${kv% *}")"
done

sample_start "$U" || fail "the sample did not start"
pid1=$SAMPLE_PID
expect_eq "show: state with the sample" attached "$(muserctl_field "$U" state)"
expect_eq "show: emulator-pid is the sample's" "$pid1" "$(muserctl_field "$U" emulator-pid)"

# A VMM reading for a while (20 s at most), through a restart.
"$TEST_BIN_DIR/vfio_check" --sequence 400 --delay-ms 20 "$U" >"$W/vmm" 2>&1 &
vmm=$!
bg_pids+=("$vmm")
check "vmm-open becomes 1" wait_for 20 muserctl_field_is "$U" vmm-open 1
r1=$(muserctl_field "$U" requests)
sleep 1
r2=$(muserctl_field "$U" requests)
log "requests $r1, a second later $r2"
check "requests grow while the VMM reads ($r1 -> $r2)" test "$r2" -gt "$r1"
expect_eq "requests-failed" 0 "$(muserctl_field "$U" requests-failed)"
ctl --json show "$U" >"$W/show.json"
check "show --json parses, with the live figures" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["uuid"] == sys.argv[2] and d["state"] == "attached", d
assert d["emulator_pid"] == int(sys.argv[3]) and d["vmm_open"] == 1, d
assert d["requests"] > 0 and d["restarts"] == 0, d
# Every answer was waited for by spinning or sleeping; the rest timed out.
assert 0 < d["waits_spun"] + d["waits_slept"] <= d["requests"], d
assert d["requests_posted"] == 0, d
# The sample has the library default request ring: small answers go there.
assert d["answers_ring"] > 0, d
assert d["answers_ring"] + d["answers_syscall"] <= d["requests"], d
' "$W/show.json" "$U" "$pid1"

kill -KILL "$pid1"
wait "$pid1" 2>/dev/null
SAMPLE_PID=""
check "state waiting after SIGKILL" wait_for 10 muserctl_field_is "$U" state waiting
expect_eq "emulator-pid after SIGKILL" 0 "$(muserctl_field "$U" emulator-pid)"
expect_eq "restarts before a new emulator" 0 "$(muserctl_field "$U" restarts)"
sample_start "$U" || fail "the second sample did not start"
pid2=$SAMPLE_PID
expect_eq "state with the second sample" attached "$(muserctl_field "$U" state)"
expect_eq "emulator-pid of the second sample" "$pid2" "$(muserctl_field "$U" emulator-pid)"
expect_eq "restarts after a new emulator" 1 "$(muserctl_field "$U" restarts)"

wait "$vmm"
expect_eq "the VMM's reads through the restart" 0 "$?"
sed 's/^/#   /' "$W/vmm"
expect_eq "vmm-open after the VMM closed" 0 "$(muserctl_field "$U" vmm-open)"
check "requests >= 400" test "$(muserctl_field "$U" requests)" -ge 400
sample_stop
check "state waiting after the sample stopped" wait_for 10 muserctl_field_is "$U" state waiting

# --- 3. errors ---
nobody=$(new_uuid)
ctl show "$nobody" >/dev/null 2>"$W/err"
expect_eq "show of a UUID nobody has: exit status" 1 "$?"
log "stderr: $(cat "$W/err")"
check "... the kernel's message" grep -q "no muser device with that UUID" "$W/err"
ctl show not-a-uuid >/dev/null 2>&1
expect_eq "show of a malformed UUID: exit status" 2 "$?"
ctl remove "$nobody" >/dev/null 2>&1
expect_eq "remove of a UUID nobody has: exit status" 1 "$?"

# --- 4. raw netlink: the kernel's validation ---
python3 "$SELFTESTS_DIR/muser/genl_policy.py" "$U" 1 >"$W/policy" 2>&1
rc=$?
sed 's/^/#   /' "$W/policy"
expect_eq "genl_policy.py" 0 "$rc"

# --- 5. the events ---
expect_eq "remove through muserctl" 0 "$(ctl remove "$U"; echo $?)"
check "it is gone" test ! -e "$MDEV_DEVICES/$U"
check "show after remove fails" test "$(ctl show "$U" 2>/dev/null; echo $?)" = 1
sleep 1
kill -INT "$mon"
check "monitor stops on SIGINT" wait_for 10 pid_gone "$mon" || kill -KILL "$mon"
wait "$mon"
expect_eq "monitor's exit status on SIGINT" 0 "$?"
kill -TERM "$monj"
check "monitor --json stops on SIGTERM" wait_for 10 pid_gone "$monj" ||
	kill -KILL "$monj"
wait "$monj"
expect_eq "monitor --json's exit status on SIGTERM" 0 "$?"
sed 's/^/#   /' "$W/mon.txt" "$W/mon.err"

want="created $U
emulator-attached $U pid $pid1
vmm-opened $U
emulator-detached $U pid $pid1
emulator-attached $U pid $pid2
vmm-closed $U
emulator-detached $U pid $pid2
removed $U"
got=$(grep " $U" "$W/mon.txt" | grep -v ' dma-unmapped ' | cut -d' ' -f2-)
expect_eq "monitor: the events of $U, in order" "$want" "$got"
check_fails "monitor: every line has a timestamp" grep -Evq \
	'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}[-+][0-9]{4} ' "$W/mon.txt"
check "monitor: $U2's created and removed" \
	test "$(grep " $U2" "$W/mon.txt" | cut -d' ' -f2 | tr '\n' ' ')" = "created removed "
check "monitor --json: every line parses, the same events" python3 -c '
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
assert all(set(e) >= {"time", "event", "uuid"} for e in evs), evs
got = [" ".join([e["event"], e["uuid"]] + (["pid", str(e["pid"])] if "pid" in e else []))
       for e in evs if e["uuid"] == sys.argv[2] and e["event"] != "dma-unmapped"]
assert got == sys.argv[3].split("\n"), got
' "$W/mon.json" "$U" "$want"

# --- 6. the supervisor example ---
U3=$(ctl create) || fail "cannot create a device for the supervisor"
MUSERCTL=$MUSERCTL "$ROOT/samples/supervisor.sh" "$U3" -- "$SAMPLE" "$U3" \
	>"$W/sup" 2>&1 &
sup=$!
bg_pids+=("$sup")
check "supervised: attached" wait_for 20 muserctl_field_is "$U3" state attached
spid1=$(muserctl_field "$U3" emulator-pid)
log "supervised emulator: pid $spid1; killing it"
kill -KILL "$spid1"
attached_anew() {
	local p
	p=$(muserctl_field "$U3" emulator-pid)
	muserctl_field_is "$U3" state attached && [ "$p" != 0 ] && [ "$p" != "$spid1" ]
}
check "supervised: attached again with a new pid" wait_for 20 attached_anew
spid2=$(muserctl_field "$U3" emulator-pid)
expect_eq "supervised: restarts" 1 "$(muserctl_field "$U3" restarts)"
kill -TERM "$sup"
check "the supervisor stops on SIGTERM" wait_for 10 pid_gone "$sup"
check "... and its emulator with it" wait_for 10 pid_gone "$spid2"
wait "$sup"
sed 's/^/#   /' "$W/sup"
check "supervised: waiting once stopped" wait_for 10 muserctl_field_is "$U3" state waiting
check "remove $U3" ctl remove "$U3"

# --- 7. dma-unmapped: lib_dma's VMM unmaps guest memory its device pinned ---
if [ -x "$TEST_BIN_DIR/lib_dma" ]; then
	"$MUSERCTL" monitor >"$W/mon.dma" 2>&1 &
	mon=$!
	bg_pids+=("$mon")
	sleep 2
	timeout 200 "$TEST_BIN_DIR/lib_dma" >"$W/lib_dma" 2>&1
	expect_eq "lib_dma" 0 "$?"
	kill -TERM "$mon"
	wait_for 10 pid_gone "$mon" || kill -KILL "$mon"
	wait "$mon"
	grep dma-unmapped "$W/mon.dma" | head -n 3 | sed 's/^/#   /'
	check "monitor: dma-unmapped with lib_dma's iova and a size" grep -Eq \
		' dma-unmapped [0-9a-f-]{36} iova 0x40000000 size 0x[0-9a-f]+$' "$W/mon.dma"
fi

test_done
