#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# libvirt with muser devices: Debian 12's libvirt 9.0 (libvirtd and its QEMU
# driver, as installed by tools/dev/install-deps.sh), run for real in the VM.
#
#  1. Node devices: libvirt knows no node device for muser's parent, so
#     `virsh nodedev-list --cap mdev_types` does not list it, and
#     `virsh nodedev-define` / `nodedev-create` of the README's XML (parent
#     muser) are refused: "invalid parent device 'muser'" (parent
#     "computer" is refused too).
#  2. The README's alternative: mdevctl define (libvirt lists the definition
#     as inactive) + start; libvirt then lists the device (`--cap mdev`:
#     mdev_UUID_muser, under "computer") with its type, UUID and IOMMU group.
#  3. A domain (type qemu, i.e. TCG; pc; 256 MiB; no kernel, disk,
#     network or graphics) with the README's <hostdev type='mdev'> for it,
#     the sample serving it. `virsh start --paused`: QEMU runs as
#     libvirt-qemu with -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID,
#     the IOMMU group's /dev/vfio/N in its own /dev (libvirt's per-domain
#     mount namespace), its memory lock limit raised; HMP `info pci` shows
#     the device (494f:0dc8); muser.ko counts one VMM open. Its CPUs
#     stopped, HMP through virsh (as e2e/qemu-hmp.sh does through QMP)
#     programs BAR2 with config cycles and reads offset 0 of it, the
#     sample's counter, through QEMU's memory dispatch, vfio-pci and
#     muser.ko. `virsh destroy`: the VMM close reaches muser.ko (no VMM
#     open) and the emulator (its "VMM closed" reset); pinned_pages is 0
#     (the gpio sample pins no guest memory, so that only catches pins
#     from elsewhere). No guest boots: a guest driver on the device is
#     e2e/nested-gpio's (the demo's), and booting one here took 2-3 of the
#     suite's minutes per kernel.
#  3b. Migration: without x-enable-migration, virsh save fails with QEMU
#     7.2's blocker ("VFIO device doesn't support migration"). With it
#     (<qemu:override>): virsh migrate to this host stops at "same host";
#     virsh save, the mdev removed and created again (a new emulator, an
#     empty state area), virsh restore: the counter carries on.
#  4. Failures say why: a hostdev naming a UUID without an mdev, and the
#     device without its emulator, make `virsh start` fail with the reason.
#  5. Stopped by mdevctl, the still defined device is listed as inactive,
#     and virsh nodedev-start, nodedev-autostart, nodedev-destroy and
#     nodedev-undefine work on it (libvirt calls mdevctl).
#
# The VM's root is the host's, read-only, and Debian 12's libvirt-daemon
# (without libvirt-daemon-system) brings no configuration, users or
# directories: overlays over /etc/libvirt, /etc/mdevctl.d, /var/lib,
# /var/cache and /var/log, the libvirt-qemu user as libvirt-daemon-system
# makes it, qemu.conf with security_driver = "none" (no AppArmor profiles)
# and stdio_handler = "file" (no virtlogd), libvirtd.conf with no polkit,
# udevd (libvirt follows devices through it), and libvirtd in a mount
# namespace whose root is this root (ops_rooted). Needs muser.ko loaded.
# shellcheck source=selftests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=selftests/ops/common.sh
. "$(dirname "$0")/common.sh"

test_init ops/libvirt
muser_loaded || skip "muser.ko is not loaded"
for c in libvirtd virsh mdevctl; do
	command -v $c >/dev/null || fail "$c not installed (tools/dev/install-deps.sh)"
done
[ -x "$SAMPLE" ] || fail "sample not built: $SAMPLE"
[ -x "$MUSERCTL" ] || fail "not built: $MUSERCTL"

export LIBVIRT_DEFAULT_URI=qemu:///system
DOM=muser-libvirt
W=$(mktemp -d /tmp/ops-libvirt.XXXXXX)
chmod 755 "$W"	# the domain's console.log is there

indent() { sed "s/^/#   ${1:-}/"; }
# Called through check and wait_for.
# shellcheck disable=SC2317
lists() {	# lists CAP NAME: virsh nodedev-list --cap CAP shows NAME
	virsh nodedev-list --cap "$1" 2>/dev/null | grep -qx "$2"
}
# shellcheck disable=SC2317
lists_inactive() { virsh nodedev-list --cap mdev --inactive 2>/dev/null | grep -qx "$1"; }
# shellcheck disable=SC2317
vmm_closes() { grep -c 'reset (VMM closed)' "$SAMPLE_LOG"; }
# shellcheck disable=SC2317
closes_are() { [ "$(vmm_closes)" = "$1" ]; }
qemu_pid() { cat "/run/libvirt/qemu/$DOM.pid" 2>/dev/null; }
# refused WHAT TEXT CMD...: CMD must fail, and say TEXT.
refused() {
	local what=$1 text=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	indent "$what: " <<<"$out"
	check_fails "$what" test $rc -eq 0
	check "it says: $text" grep -qF "$text" <<<"$out"
}

# HMP through libvirt: the domain's QEMU, its CPUs stopped, as
# selftests/e2e/qmp.py drives its own (port I/O sizes: b 1, h 2, w 4 bytes).
hmp() { virsh qemu-monitor-command --hmp "$DOM" "$1" 2>&1 | tr -d '\r'; }
# Config cycles (ports 0xcf8/0xcfc) to 00:04.0, the hostdev's address.
cfg_select() { hmp "o /w 0xcf8 $(printf '0x%x' $((0x80000000 | 4 << 11 | ($1 & 0xfc))))"; }
cfg_read() {	# cfg_read OFFSET: the 32-bit register there
	cfg_select "$1" >/dev/null
	hmp "i /w 0xcfc" | sed -n 's/.*= *\(0x[0-9a-fA-F][0-9a-fA-F]*\).*/\1/p'
}
cfg_write() {	# cfg_write OFFSET h|w VALUE: a 16- or 32-bit write
	cfg_select "$1" >/dev/null
	hmp "o /$2 0xcfc $3" >/dev/null
}

# --- what the VM lacks, given until the test exits ---
ops_overlay /etc/libvirt /etc/mdevctl.d /var/lib /var/cache /var/log
mkdir -p /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
cat >"$W/libvirt.sysusers" <<'EOF'
g libvirt-qemu -
u libvirt-qemu -:libvirt-qemu "Libvirt Qemu" /var/lib/libvirt /usr/sbin/nologin
m libvirt-qemu kvm
EOF
ops_sysusers "$W/libvirt.sysusers"
cat >/etc/libvirt/libvirtd.conf <<'EOF'
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
cat >/etc/libvirt/qemu.conf <<'EOF'
security_driver = "none"
stdio_handler = "file"
EOF
# shellcheck disable=SC2119
ops_udevd

# Called through on_exit.
# shellcheck disable=SC2317
lv_stop() {
	local pid
	virsh domstate "$DOM" 2>/dev/null | grep -qE 'running|paused' && virsh destroy "$DOM" >/dev/null 2>&1
	virsh undefine "$DOM" >/dev/null 2>&1
	pid=$(cat /run/libvirtd.pid 2>/dev/null) || return 0
	kill -TERM "$pid"
	wait_for 20 pid_gone "$pid" || kill -KILL "$pid"
	rm -rf /run/libvirt /run/libvirtd.pid
}
# shellcheck disable=SC2317
mdev_stop() {
	sample_stop
	mdevctl stop --uuid "$U" >/dev/null 2>&1
	mdevctl undefine --uuid "$U" >/dev/null 2>&1
	mdev_remove_all
}
# The logs, for a look afterwards: into tools/vm/vm-run's --results directory.
# shellcheck disable=SC2317
lv_logs() {
	local to=${VM_RUN_RESULTS:+$VM_RUN_RESULTS/ops-libvirt}
	[ -n "$to" ] && mkdir -p "$to" || return 0
	cp -r /var/log/libvirt/. "$W"/*.xml "$W"/*.log "$to/" 2>/dev/null
}
on_exit mdev_stop
on_exit lv_stop
on_exit lv_logs
ops_rooted /usr/sbin/libvirtd -d || fail "libvirtd -d"
wait_for 60 test -S /run/libvirt/libvirt-sock || fail "libvirtd: no /run/libvirt/libvirt-sock after 60 s"
run virsh version || fail "virsh cannot reach libvirtd: $(tail -n 5 /var/log/libvirt/libvirtd.log)"
log "libvirtd is up"

U=$(new_uuid)
NAME=mdev_${U//-/_}_muser

# 1. muser's parent is no node device of libvirt's.
types=$(virsh nodedev-list --cap mdev_types 2>&1)
log "virsh nodedev-list --cap mdev_types: '${types//$'\n'/ }'"
check "nodedev-list --cap mdev_types does not list muser (as the README says)" \
	test -z "$(grep muser <<<"$types")"
cat >"$W/nodedev.xml" <<EOF
<device>
  <parent>muser</parent>
  <capability type='mdev'>
    <type id='muser-1'/>
    <uuid>$U</uuid>
  </capability>
</device>
EOF
sed 's|<parent>muser</parent>|<parent>computer</parent>|' "$W/nodedev.xml" >"$W/nodedev-computer.xml"
for cmd in nodedev-define nodedev-create; do
	out=$(virsh $cmd "$W/nodedev.xml" 2>&1)
	rc=$?
	indent "virsh $cmd: " <<<"$out"
	if [ $rc -eq 0 ]; then
		log "FAIL: virsh $cmd accepted parent muser: the README says it refuses it, update it"
		_failures=$((_failures + 1))
		virsh nodedev-destroy "$NAME" >/dev/null 2>&1
		virsh nodedev-undefine "$NAME" >/dev/null 2>&1
	else
		check "virsh $cmd refuses: invalid parent device 'muser'" \
			grep -q "invalid parent device 'muser'" <<<"$out"
	fi
done
# The parent libvirt gives muser's mdevs (below) does not do either.
out=$(virsh nodedev-define "$W/nodedev-computer.xml" 2>&1)
rc=$?
indent "virsh nodedev-define (parent computer): " <<<"$out"
check_fails "virsh nodedev-define with parent computer" test $rc -eq 0

# 2. mdevctl defines and starts it; libvirt lists it.
check "mdevctl define" run mdevctl define --uuid "$U" --parent muser --type muser-1 ||
	fail "mdevctl define"
check "libvirt lists the definition, $NAME, as inactive" wait_for 20 lists_inactive "$NAME"
check "mdevctl start" run mdevctl start --uuid "$U" || fail "mdevctl start"
mdev_exists "$U" || fail "no $MDEV_DEVICES/$U after mdevctl start"
GROUP=$(basename "$(readlink "$MDEV_DEVICES/$U/iommu_group")")
log "mdev $U, IOMMU group $GROUP"
check "libvirt lists $NAME (nodedev-list --cap mdev)" wait_for 20 lists mdev "$NAME"
xml=$(virsh nodedev-dumpxml "$NAME" 2>&1)
indent <<<"$xml"
check "nodedev-dumpxml: type muser-1" grep -q "<type id='muser-1'/>" <<<"$xml"
check "nodedev-dumpxml: its UUID" grep -q "<uuid>$U</uuid>" <<<"$xml"
check "nodedev-dumpxml: IOMMU group $GROUP" grep -q "<iommuGroup number='$GROUP'/>" <<<"$xml"
check "nodedev-dumpxml: parent computer" grep -q "<parent>computer</parent>" <<<"$xml"

# bar2_on: config cycles reach the device; BAR2 (256 bytes of memory,
# trapped) at 0xe0000000, memory decoding on.
bar2_on() {
	local bar2 cmd
	cfg_write 0x18 w 0xe0000000
	bar2=$(cfg_read 0x18)
	log "BAR2: $bar2"
	check "BAR2 at 0xe0000000" test $((${bar2:-0} & ~0xf)) -eq $((0xe0000000))
	cmd=$(cfg_read 0x04)
	cfg_write 0x04 h "$(printf '0x%x' $((${cmd:-0} & 0xffff | 2)))"
	cmd=$(cfg_read 0x04)
	log "command/status: $cmd"
	check "memory decoding on" test $((${cmd:-0} & 2)) -eq 2
}
# bar2_reads N: N one-byte reads of BAR2 offset 0, the sample's counter,
# which advances every third read (from 0: the CPUs never ran).
bar2_reads() {
	local v reads=""
	for _ in $(seq "$1"); do
		v=$(hmp "xp /1bx 0xe0000000" | sed -n 's/^ *[0-9a-fA-F]*: *\(0x[0-9a-fA-F][0-9a-fA-F]*\).*/\1/p')
		reads+=" $((${v:-0x100}))"
	done
	echo "$reads"
}

# 3. A domain using it.
# domain_xml UUID [migratable]: the domain, its hostdev as in the README;
# migratable: QEMU 7.2's x-enable-migration=on for it, which libvirt 9.0
# has no element for, through <qemu:override> (libvirt 8.2 and later).
domain_xml() {
	local ns="" override=""
	if [ "${2:-}" = migratable ]; then
		ns=" xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
		override="  <qemu:override>
    <qemu:device alias='hostdev0'>
      <qemu:frontend>
        <qemu:property name='x-enable-migration' type='bool' value='true'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>"
	fi
	cat <<EOF
<domain type='qemu'$ns>
  <name>$DOM</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <features>
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='$W/console.log'/>
    </serial>
    <hostdev mode='subsystem' type='mdev' model='vfio-pci' managed='no'>
      <source>
        <address uuid='$1'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </hostdev>
    <memballoon model='none'/>
  </devices>
$override
</domain>
EOF
}

SAMPLE_ARGS=--migration sample_start "$U" -v || fail "the sample did not start"
domain_xml "$U" >"$W/domain.xml"
check "virsh define" run virsh define "$W/domain.xml" || fail "virsh define"

check "virsh start --paused" run virsh start --paused "$DOM" ||
	fail "libvirt cannot start a domain with the device: $(tail -n 3 "/var/log/libvirt/qemu/$DOM.log")"
qpid=$(qemu_pid)
if [ -z "$qpid" ] || [ ! -d "/proc/$qpid" ]; then
	fail "no QEMU process for $DOM"
fi
cmdline=$(tr '\0' '\n' <"/proc/$qpid/cmdline" | grep vfio-pci)
log "QEMU (pid $qpid): -device $cmdline"
check "QEMU has -device vfio-pci,sysfsdev=$MDEV_DEVICES/$U" \
	grep -q "\"driver\":\"vfio-pci\".*\"sysfsdev\":\"$MDEV_DEVICES/$U\"" <<<"$cmdline"
check "the domain log has that command line" \
	grep -q "\"sysfsdev\":\"$MDEV_DEVICES/$U\"" "/var/log/libvirt/qemu/$DOM.log"
expect_eq "QEMU's user" libvirt-qemu "$(stat -c %U "/proc/$qpid")"
vfio_node=$(stat -c '%F %U' "/proc/$qpid/root/dev/vfio/$GROUP" 2>&1)
log "QEMU's /dev/vfio/$GROUP: $vfio_node"
expect_eq "QEMU's own /dev has /dev/vfio/$GROUP, for its user" \
	"character special file libvirt-qemu" "$vfio_node"
memlock=$(awk '/^Max locked memory/ { print $4 }' "/proc/$qpid/limits")
log "QEMU's RLIMIT_MEMLOCK: $memlock bytes"
check "QEMU may lock its 256 MiB" test "$memlock" -ge $((256 << 20))
pci=$(virsh qemu-monitor-command --hmp "$DOM" 'info pci' 2>&1 | tr -d '\r')
indent <<<"$pci"
check "info pci: the device, PCI device 494f:0dc8" grep -q 'PCI device 494f:0dc8' <<<"$pci"
check "info pci: libvirt's hostdev0" grep -q 'id "hostdev0"' <<<"$pci"
expect_eq "muserctl: vmm-open" 1 "$(muserctl_field "$U" vmm-open)"
expect_eq "config 0x00: vendor/device" 0x0dc8494f "$(cfg_read 0)"
bar2_on
reads=$(bar2_reads 6)
log "BAR2 offset 0, 6 one-byte reads through libvirt's QEMU:$reads"
expect_eq "BAR2 offset 0 is the sample's counter" " 0 0 0 1 1 1" "$reads"
check "virsh destroy" run virsh destroy "$DOM"
check "QEMU gone" wait_for 30 pid_gone "$qpid"
check "muserctl: vmm-open back to 0" wait_for 10 muserctl_field_is "$U" vmm-open 0
check "the emulator saw the VMM close" wait_for 10 closes_are 1
expect_eq "pinned pages" 0 "$(cat "$MDEV_DEVICES/$U/dma/pinned_pages")"
check "the sample still runs" test -d "/proc/$SAMPLE_PID"
check "virsh undefine" run virsh undefine "$DOM"

# 3b. Migration. libvirt 9.0 asks QEMU what blocks a migration: without
# x-enable-migration=on, QEMU 7.2 blocks it for any VFIO device, and virsh
# save fails with QEMU's reason. With it (<qemu:override>),
# virsh save stops the domain with its device's state in the image; the
# mdev is then removed and created again (a new emulator, an empty state
# area) and virsh restore loads the image into a new QEMU: the counter
# carries on from the image.
virsh define "$W/domain.xml" >/dev/null || fail "virsh define"
virsh start --paused "$DOM" >/dev/null || fail "virsh start --paused"
refused "virsh save without x-enable-migration" "VFIO device doesn't support migration" \
	virsh save "$DOM" "$W/blocked.save"
virsh destroy "$DOM" >/dev/null
virsh undefine "$DOM" >/dev/null
domain_xml "$U" migratable >"$W/domain-migratable.xml"
check "virsh define (migratable)" run virsh define "$W/domain-migratable.xml" ||
	fail "virsh define (migratable)"
check "virsh start --paused (migratable)" run virsh start --paused "$DOM" ||
	fail "virsh start: $(tail -n 3 "/var/log/libvirt/qemu/$DOM.log")"
check "QEMU has x-enable-migration" \
	grep -q '"x-enable-migration":true' "/var/log/libvirt/qemu/$DOM.log"
bar2_on
# Three reads: the counter's next step (the VMM close kept it).
reads=$(bar2_reads 3)
log "BAR2 offset 0, 3 reads before virsh save:$reads"
a=$(echo "$reads" | cut -d' ' -f2)
expect_eq "the counter's next step" " $a $a $a" "$reads"
refused "virsh migrate --live to this host" "Attempt to migrate guest to the same host" \
	virsh migrate --live "$DOM" qemu:///system
qpid=$(qemu_pid)
check "virsh save" run virsh save "$DOM" "$W/dom.save" ||
	fail "virsh save: $(tail -n 5 "/var/log/libvirt/qemu/$DOM.log")"
check "QEMU gone after the save" wait_for 30 pid_gone "$qpid"
sample_stop
check "mdevctl stop" run mdevctl stop --uuid "$U"
check "mdevctl start" run mdevctl start --uuid "$U"
SAMPLE_ARGS=--migration sample_start "$U" -v || fail "the new sample did not start"
check "virsh restore --paused" run virsh restore --paused "$W/dom.save" ||
	fail "virsh restore: $(tail -n 5 "/var/log/libvirt/qemu/$DOM.log")"
reads=$(bar2_reads 3)
log "BAR2 offset 0, 3 reads after virsh restore:$reads"
expect_eq "the counter carried on from the saved image" " $((a + 1)) $((a + 1)) $((a + 1))" "$reads"
check "virsh destroy (restored)" run virsh destroy "$DOM"
check "virsh undefine (migratable)" run virsh undefine "$DOM"

# 4. Failures say why.
BOGUS=$(new_uuid)
domain_xml "$BOGUS" >"$W/bogus.xml"
virsh define "$W/bogus.xml" >/dev/null || fail "virsh define (bogus)"
refused "virsh start with no mdev $BOGUS" "mediated device '$BOGUS' not found" \
	virsh start --paused "$DOM"
virsh undefine "$DOM" >/dev/null

cp "$SAMPLE_LOG" "$W/sample.log"
sample_stop
log "no emulator (timeout_ms $(cat "$MUSER_PARAMS/timeout_ms")):"
virsh define "$W/domain.xml" >/dev/null || fail "virsh define"
t0=$(date +%s)
refused "virsh start without the emulator" "failed to read device config space: Connection timed out" \
	virsh start --paused "$DOM"
log "virsh start took $(($(date +%s) - t0)) s"
virsh undefine "$DOM" >/dev/null

# 5. mdevctl's definition, stopped: libvirt lists it as inactive and starts,
# marks for autostart, stops and undefines it (through mdevctl).
check "mdevctl stop" run mdevctl stop --uuid "$U"
check "libvirt no longer lists $NAME as active" wait_for 20 sh -c "! virsh nodedev-list --cap mdev | grep -qx '$NAME'"
check "libvirt lists $NAME as inactive" wait_for 20 lists_inactive "$NAME"
check "virsh nodedev-start $NAME" run virsh nodedev-start "$NAME"
check "started: $MDEV_DEVICES/$U" wait_for 10 mdev_exists "$U"
check "libvirt lists $NAME as active" wait_for 20 lists mdev "$NAME"
check "virsh nodedev-autostart $NAME" run virsh nodedev-autostart "$NAME"
check "mdevctl: auto" sh -c "mdevctl list --defined | grep '^$U ' | grep -qw auto"
check "virsh nodedev-destroy $NAME" run virsh nodedev-destroy "$NAME"
check "stopped: $MDEV_DEVICES/$U gone" wait_for 10 mdev_gone "$U"
check "virsh nodedev-undefine $NAME" run virsh nodedev-undefine "$NAME"
check "mdevctl list --defined no longer has it" sh -c "! mdevctl list --defined | grep -q '^$U'"
run virsh nodedev-list --cap mdev --all

test_done
