#!/bin/sh
# filtercmds.sh: count the commands libvirtd runs to instantiate (domain
# start) and tear down (domain stop) one NIC's nwfilters, for a pair of
# filter documents (guard, root) such as the golden files in
# internal/virt/domainxml/testdata. Runs inside a private libvirtd:
#
#   go run ./internal/testenv/cmd/testenv exec -- \
#     bench/filtercmds.sh internal/virt/domainxml/testdata/filter-dhcp-guard.xml \
#                         internal/virt/domainxml/testdata/filter-dhcp-root.xml
#
# The filters are the golden ones of network lvm-acct-lab (bridge MAC
# 52:54:00:4c:56:01, 10.77.0.0/24). Prints the counts by program; the
# libvirtd debug logs stay in the printed directory.
set -eu
GUARD=$(realpath "$1"); ROOT=$(realpath "$2")
W=$(mktemp -d /tmp/filtercmds.XXXXXX)
SOCKDIR=$(echo "$LIBVIRT_DEFAULT_URI" | sed 's/.*socket=//; s|/libvirt-sock$||')
admin() { virt-admin -c "libvirtd:///system?socket=$SOCKDIR/libvirt-admin-sock" "$@" >/dev/null; }
cat >"$W/net.xml" <<X
<network><name>lvm-acct-lab</name><bridge name='lvbr77' stp='off'/><mac address='52:54:00:4c:56:01'/>
<ip address='10.77.0.1' netmask='255.255.255.0'><dhcp><range start='10.77.0.100' end='10.77.0.200'/></dhcp></ip></network>
X
cat >"$W/dom.xml" <<X
<domain type='qemu'><name>filtercmds</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<interface type='network'><source network='lvm-acct-lab'/><mac address='52:54:00:4c:56:11'/><model type='e1000'/>
<filterref filter='lvm-acct-lab'><parameter name='IP' value='10.77.0.11'/></filterref></interface></devices></domain>
X
virsh -q net-define "$W/net.xml" >/dev/null
virsh -q net-start lvm-acct-lab >/dev/null
virsh -q nwfilter-define "$GUARD" >/dev/null
virsh -q nwfilter-define "$ROOT" >/dev/null
virsh -q define "$W/dom.xml" >/dev/null
admin daemon-log-filters "1:nwfilter 1:util.command 3:object 3:util 3:rpc 3:event 3:conf 3:security 3:storage 3:qemu 3:libvirt"
admin daemon-log-outputs "1:file:$W/start.log"
virsh -q start filtercmds >/dev/null
admin daemon-log-outputs "1:file:$W/stop.log"
virsh -q destroy filtercmds >/dev/null
admin daemon-log-outputs "3:stderr"
for phase in start stop; do
	n=$(grep 'About to run' "$W/$phase.log" | grep -c vnet || true)
	echo "$phase: $n commands for the tap"
	grep 'About to run' "$W/$phase.log" | grep vnet | sed 's/.*About to run //' | awk '{print $1}' | sort | uniq -c
done
echo "logs: $W"
