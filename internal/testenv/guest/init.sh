#!/bin/sh
# /init of legacyvm's stand-in guest (busybox-static + Debian kernel modules; see build.sh).
#
# Configuration: words "rig.KEY=VALUE", read in this order (later wins) from
#   1. the kernel command line        (syslinux.cfg / isolinux.cfg, or the domain's <cmdline>)
#   2. SMBIOS type 11 OEM strings     (<sysinfo type='smbios'><oemStrings><entry>)
#   3. the fw_cfg blob opt/rig/config (<sysinfo type='fwcfg'><entry name='opt/rig/config'>)
# so a disk-booted guest (fixed syslinux command line) can still be configured per domain.
#
# Keys (defaults in brackets):
#   rig.name=NAME          name in results [hostname from DHCP, else "guest"]
#   rig.ip=dhcp|none|A.B.C.D/NN [dhcp]    rig.gw=A.B.C.D (static only)
#   rig.dhcpwait=SEC       give up DHCP after SEC s [15]
#   rig.listen=PORT[,PORT] TCP ports answering "RIG-BANNER <name>" [7777; 0 = off]
#   rig.control=PORT       TCP control port [7778; 0 = off]: one command line per connection:
#                          "touch" (write the disk marker), "check" (report it), "uptime", "poweroff",
#                          "counters" (icmp_in_echos=N: ICMP echo requests this guest received),
#                          "probe CHECK..." (below)
#   rig.ping=IP[,IP] rig.tcp=IP:PORT[,..] rig.dns=NAME@IP[,..]   checks ("gw"/"srv" = DHCP router/server)
#   rig.route=NET/NN@VIA[,..]  static routes     rig.wait=IP[,IP] rig.waitmax=SEC [60]
#   rig.rounds=N [1]  rig.interval=SEC [2]  rig.hb=SEC heartbeat period [0 = off]  rig.halt=1 power off
#   rig.diskcheck=1        report the disk marker at boot
#   rig.disktouch=1        write the disk marker at boot (after diskcheck)
#   rig.answercd=1 [1]     Windows-Setup stand-in: find a CD whose root holds Autounattend.xml or
#                          Unattend.xml, report its ComputerName, then power off (no network). On by
#                          default, as Windows runs its specialize pass whenever answer media is
#                          attached at boot; rig.answercd=0 turns it off. Without such a CD the boot
#                          goes on ("RIG answer file=none")
#   rig.answermark=1       with answercd: also write the answer marker to the system disk
#   rig.install=1          with answercd: if no disk holds the stand-in system, copy it from the CD
#                          (STANDIN.GZ) to the first empty disk, like Setup installing Windows
#   rig.debug=1            timing lines
#   rig.ballast=MIB        at boot, before the network: fill MIB MiB of RAM (a tmpfs, kept for the life of
#                          the guest) with random, incompressible data, so the guest has as much dirty
#                          memory as a booted Windows desktop (a save, snapshot or revert moves all of it);
#                          capped at MemTotal - 96 MiB [0 = off]
#
# Image-build mode: when the answer file (Autounattend.xml) runs "sysprep.exe /generalize", the
# stand-in imitates legacyvm image build's Windows sequence in one boot: setup (rig.install copies
# the system), "RIG phase media count=N" (extra CD-ROMs: neither the installer nor the answer CD),
# "RIG phase steps count=N" (the answer file's "Image step" commands), "RIG phase generalize" (writes
# the generalize marker, sector 57347), then powers off. A step command containing "rig-fail-step"
# makes it hang in the steps phase instead, as Windows would stay at the desktop.
#
# Probes on demand (the host drives them when it knows its peers are up): the control command
# "probe CHECK [CHECK...]" runs each check, writes its "RIG check round=probe ..." line to the
# connection and the console, then "RIG-OK probe pass=P fail=F". CHECK is ping=IP, tcp=IP:PORT,
# dns=NAME@IP (as at boot), or a spoofing attempt, which sends three echo requests to IP between two
# genuine ones (fence=ok,ok when both were answered); whether the forged ones arrived is read from
# the receiver's "counters" (result=pass only if they were even answered):
#   spoofip=SRC@IP         from the forged source address SRC (added to eth0 meanwhile)
#   spoofmac=MAC@IP        from the forged source MAC (eth0's MAC is changed, then restored)
# or a one-way UDP send (result=pass when the datagrams left the guest; whether they arrived is
# counted by the receiver: a host listener, or a guest's "counters"):
#   udp=IP:PORT[/SPORT][@MAC]  three datagrams "RIG-UDP <name> <n>" to IP:PORT (broadcast allowed),
#                          from port SPORT (e.g. 67: a DHCP server's replies), in frames to MAC
#                          (a permanent ARP entry; for the subnet's broadcast address its
#                          local broadcast route is removed meanwhile, so a group MAC other than
#                          ff:ff:ff:ff:ff:ff can carry it). 255.255.255.255 always goes to ff:ff:..
#
# Output on the serial console (ttyS0), one result per line, always prefixed "RIG ":
#   RIG boot name=.. uptime=S
#   RIG ballast mib=N result=done|failed uptime=S
#   RIG disk marker=present|absent|written|nodisk [dev=..]
#   RIG install target=DEV result=written|skipped|failed
#   RIG answer file=NAME|none computername=..    (the file itself is never printed: it holds a key)
#   RIG specialize generalized=yes|no            (whether the disk carries the generalize marker)
#   RIG answer file=NAME mode=image-build, RIG phase setup|media|steps|generalize ..., RIG generalize marker=..
#   RIG net dev=eth0 mac=.. ip=A/NN|none via=dhcp|static|none|dhcp-failed gw=.. srv=.. carrier_at=S uptime=S
#   RIG check round=R kind=ping|tcp|dns target=.. result=pass|fail
#   RIG wait target=IP result=up|timeout uptime=S
#   RIG done round=R pass=P fail=F uptime=S
#   RIG hb n=N uptime=S
#   RIG agent result=started port=vportNpM|nochannel|exited   (qemu-ga on org.qemu.guest_agent.0)
#   RIG control cmd=.. result=..
#   RIG poweroff reason=acpi|rig.halt|answercd|control
#
# The system disk is the one whose sector 57344 starts with LEGACYVM-STANDIN-SYSDISK (build.sh);
# the disk marker lives in sector 57345, the answer marker in sector 57346, the generalize marker
# in sector 57347.
PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "RIG $*"; }
dbg() { [ "$RIG_debug" = 1 ] && echo "RIG debug $* uptime=$(up)"; }
RIG_debug=0
SIG_SECTOR=57344
MARK_SECTOR=57345
ANSWER_SECTOR=57346
GEN_SECTOR=57347
loadmods() { # group: insmod the modules of lib/modules/GROUP.order (dependencies come first)
	while read -r m; do insmod "/lib/modules/$m" 2>/dev/null; dbg "insmod $m"; done < "/lib/modules/$1.order"
}
# ---- disks ------------------------------------------------------------------------------------
SYS=""
disks() { # whole disks and CD-ROMs the kernel has found so far
	for d in /sys/block/*; do
		case "${d##*/}" in sd*|vd*|hd*|sr*) echo "${d##*/}" ;; esac
	done
}
sysdisk() { # the first disk carrying the stand-in signature, or nothing
	for d in $(disks); do
		case "$d" in sr*) continue ;; esac
		s="$(dd if=/dev/$d bs=512 skip=$SIG_SECTOR count=1 2>/dev/null | head -c 24)"
		[ "$s" = LEGACYVM-STANDIN-SYSDISK ] && { echo "/dev/$d"; return 0; }
	done
	return 1
}
STORAGE=0
storage() { # load the storage drivers once and wait until the device list settles
	[ "$STORAGE" = 1 ] && return 0
	STORAGE=1
	loadmods storage
	i=0; last=""; same=0
	while [ $i -lt 100 ]; do # at most 10 s
		now="$(disks | tr '\n' ' ')"
		if [ -n "$now" ] && [ "$now" = "$last" ]; then same=$((same+1)); else same=0; fi
		[ $same -ge 5 ] && break
		last="$now"; usleep 100000; i=$((i+1))
	done
	SYS="$(sysdisk)"
	dbg "storage-ready disks=$(disks | tr '\n' ',') sys=${SYS:-none}"
}
marker() { # sector -> first line of it (printable only)
	dd if="$SYS" bs=512 skip="$1" count=1 2>/dev/null | tr -d '\000' | head -n1 | tr -cd ' -~'
}
writesector() { # sector text
	printf '%s\n' "$2" | dd of="$SYS" bs=512 seek="$1" count=1 conv=notrunc,sync,fsync 2>/dev/null
}
diskcheck() {
	storage
	[ -n "$SYS" ] || { say "disk marker=nodisk"; return; }
	case "$(marker $MARK_SECTOR)" in
	RIG-MARKER*) say "disk marker=present dev=${SYS#/dev/}" ;;
	*) say "disk marker=absent dev=${SYS#/dev/}" ;;
	esac
}
disktouch() {
	storage
	[ -n "$SYS" ] || { say "disk marker=nodisk"; return 1; }
	writesector $MARK_SECTOR "RIG-MARKER $RIG_name $(up)" && sync && say "disk marker=written dev=${SYS#/dev/}"
}

# ---- checks: boot-time rig.ping/tcp/dns and the control port's "probe" ------------------------
subst() { case "$1" in gw) echo "${GW:-0.0.0.0}" ;; srv) echo "${SRV:-0.0.0.0}" ;; *) echo "$1" ;; esac; }
psay() { say "$@"; say "$@" >/dev/console; } # probe results: to the connection and the console
reroute() { # (re-)add the static routes (and the DHCP/static gateway); the kernel drops them on link down
	for rr in $(echo "$RIG_route" | tr ',' ' '); do # (r is runcheck's result)
		ip route add "${rr%@*}" via "${rr#*@}" dev eth0 2>/dev/null || say "route-failed $rr"
	done
}
setmac() { # MAC: eth0 must be down to change it; wait for carrier afterwards
	ip link set eth0 down; ip link set eth0 address "$1"; ip link set eth0 up
	i=0; while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done
	[ -n "$GW" ] && ip route replace default via "$GW" dev eth0 2>/dev/null
	reroute
}
echo1() { ping -c 1 -W 2 -q "$1" >/dev/null 2>&1 && echo ok || echo fail; } # one genuine echo request
runcheck() { # round kind spec sayfn: one "RIG check" line; status 0 on pass
	r=fail; extra=""
	case "$2" in
	ping)
		t=$(subst "$3")
		ping -c 2 -w 3 -W 1 -q "$t" >/dev/null 2>&1 && r=pass ;;
	tcp)
		h=$(subst "${3%:*}"); p="${3##*:}"; t="$h:$p"
		out=$(timeout 5 nc -w 3 "$h" "$p" </dev/null 2>/dev/null); rc=$?
		{ [ $rc -eq 0 ] || [ -n "$out" ]; } && r=pass
		extra=" banner=$(echo "$out" | head -n1 | tr ' ' '_')" ;;
	dns)
		n="${3%@*}"; s=$(subst "${3#*@}"); t="$n@$s"
		# busybox nslookup also asks AAAA and fails when that part is empty: judge by the
		# Address lines after "Name:" (the first Address line is the server's)
		timeout 5 nslookup "$n" "$s" >/tmp/ns.out 2>&1
		a=$(awk '/^Name:/{n=1} n && /^Address/{sub(/^Address[^:]*:[ \t]*/, ""); print; exit}' /tmp/ns.out)
		[ -n "$a" ] && r=pass
		extra=" answer=${a:-none}" ;;
	spoofip)
		src="${3%@*}"; d=$(subst "${3#*@}"); t="$src@$d"
		echo 2 > /proc/sys/net/ipv4/conf/eth0/arp_announce # ARP keeps asking with the real address
		f1=$(echo1 "$d")
		ip addr add "$src/32" dev eth0 2>/dev/null
		ping -c 3 -i 0.2 -W 1 -q -I "$src" "$d" >/dev/null 2>&1 && r=pass
		ip addr del "$src/32" dev eth0 2>/dev/null
		extra=" fence=$f1,$(echo1 "$d")" ;;
	spoofmac)
		m="${3%@*}"; d=$(subst "${3#*@}"); t="$m@$d"
		f1=$(echo1 "$d")
		peer=$(ip neigh show "$d" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i+1) }')
		if [ -n "$peer" ]; then
			setmac "$m"
			ip neigh replace "$d" lladdr "$peer" dev eth0 nud permanent # no ARP from the forged MAC
			ping -c 3 -i 0.2 -W 1 -q "$d" >/dev/null 2>&1 && r=pass
			ip neigh del "$d" dev eth0 2>/dev/null
			setmac "$MAC"
			# The fence after it is one counted echo request: make sure
			# the link carries frames again (arping, not counted) and the
			# peer's MAC is known, so that a slow ARP exchange on a
			# loaded host cannot lose it.
			arping -q -f -c 5 -w 5 -I eth0 "$d" >/dev/null 2>&1
			arp -i eth0 -s "$d" "$peer" 2>/dev/null
		fi
		f2=$(echo1 "$d")
		[ -n "$peer" ] && arp -i eth0 -d "$d" 2>/dev/null
		extra=" fence=$f1,$f2" ;;
	udp)
		t="$3"; d="${3%%:*}"; rest="${3#*:}"; m=""; sp=""
		case "$rest" in *@*) m="${rest#*@}"; rest="${rest%%@*}" ;; esac
		case "$rest" in */*) sp="${rest#*/}"; rest="${rest%%/*}" ;; esac
		src=$(ip -4 addr show dev eth0 | awk '$1 == "inet" { sub(/\/.*/, "", $2); print $2; exit }')
		bc=""
		if [ -n "$m" ]; then # busybox ip has no "neigh replace": a permanent ARP entry instead
			bc=$(ip route show table local | awk -v d="$d" '$1 == "broadcast" && $2 == d { print; exit }')
			[ -n "$bc" ] && ip route del table local $bc 2>/dev/null
			arp -i eth0 -s "$d" "$m" 2>/dev/null
		fi
		n=0; ok=0
		while [ $n -lt 3 ]; do
			n=$((n+1))
			printf 'RIG-UDP %s %d\n' "$RIG_name" $n | timeout 3 nc.udp -u -b -q 0 -w 1 ${src:+-s $src} ${sp:+-p $sp} "$d" "$rest" >/dev/null 2>&1 && ok=$((ok+1))
		done
		if [ -n "$m" ]; then
			arp -i eth0 -d "$d" 2>/dev/null
			[ -n "$bc" ] && ip route add table local $bc 2>/dev/null
		fi
		[ $ok -gt 0 ] && r=pass
		extra=" sent=$ok" ;;
	*) t="$3"; extra=" error=unknown-kind" ;;
	esac
	$4 "check round=$1 kind=$2 target=$t result=$r$extra"
	[ "$r" = pass ]
}

# ---- control mode: one connection on the control port (nc -e /bin/rig-control) ----------------
if [ "$RIG_MODE" = control ]; then
	. /run/rig.state
	read -r cmd
	case "$cmd" in
	probe\ *)
		pass=0; fail=0
		for c in ${cmd#probe }; do
			if runcheck probe "${c%%=*}" "${c#*=}" psay; then pass=$((pass+1)); else fail=$((fail+1)); fi
		done
		echo "RIG control cmd=probe result=pass=$pass,fail=$fail" >/dev/console
		echo "RIG-OK probe pass=$pass fail=$fail"
		exit 0 ;;
	touch) r="$(disktouch | tail -n1)" ;;
	check) r="$(diskcheck | tail -n1)" ;;
	uptime) r="uptime=$(up)" ;;
	counters) r="icmp_in_echos=$(awk '/^Icmp:/ { if (!c) { for (i = 1; i <= NF; i++) if ($i == "InEchos") c = i } else print $c }' /proc/net/snmp)"
		# UDP datagrams received, whether a socket took them or not (NoPorts)
		r="$r udp_in=$(awk '/^Udp:/ { if (!a) { for (i = 1; i <= NF; i++) { if ($i == "InDatagrams") a = i; if ($i == "NoPorts") b = i } } else print $a + $b }' /proc/net/snmp)" ;;
	poweroff) r="poweroff" ;;
	*) r="unknown-command" ;;
	esac
	r="${r#RIG }"
	echo "RIG control cmd=$(echo "$cmd" | tr -cd 'a-z') result=$r" >/dev/console
	echo "RIG-OK $r"
	if [ "$cmd" = poweroff ]; then
		say "poweroff reason=control" >/dev/console
		sync; poweroff -f
	fi
	exit 0
fi

# ---- boot ---------------------------------------------------------------------------------------
mount -t devtmpfs dev /dev 2>/dev/null
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /tmp /run /etc /mnt
echo 1 > /proc/sys/kernel/printk 2>/dev/null
loadmods net

# ---- configuration ---------------------------------------------------------------------------
CFG="$(cat /proc/cmdline)"
for f in /sys/firmware/dmi/entries/11-*/raw; do
	[ -e "$f" ] && CFG="$CFG $(tail -c +6 "$f" | tr '\000' ' ')"
done
f=/sys/firmware/qemu_fw_cfg/by_name/opt/rig/config/raw
[ -e "$f" ] && CFG="$CFG $(tr '\n\000' '  ' < "$f")"

RIG_name=""; RIG_ip=dhcp; RIG_gw=""; RIG_dhcpwait=15; RIG_listen=7777; RIG_control=7778
RIG_ping=""; RIG_tcp=""; RIG_dns=""; RIG_rounds=1; RIG_interval=2; RIG_hb=0; RIG_halt=0
RIG_route=""; RIG_wait=""; RIG_waitmax=60
RIG_diskcheck=0; RIG_disktouch=0; RIG_answercd=1; RIG_answermark=0; RIG_install=0; RIG_ballast=0
for w in $CFG; do
	case "$w" in
	rig.*=*)
		k="${w%%=*}"; k="${k#rig.}"; v="${w#*=}"
		case "$k" in *[!a-z0-9_]*|"") continue ;; esac
		eval "RIG_$k=\$v" ;;
	esac
done
[ -n "$RIG_name" ] || RIG_name=guest
hostname "$RIG_name"
say "boot name=$RIG_name uptime=$(up)"

# ---- ballast: dirty memory kept resident (rig.ballast) ----------------------------------------------
if [ "$RIG_ballast" -gt 0 ] 2>/dev/null; then
	n=$RIG_ballast
	total=$(( $(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024 ))
	[ "$n" -gt $((total - 96)) ] && n=$((total - 96))
	r=failed
	# tmpfs pages stay in RAM (no swap); /dev/urandom makes them incompressible.
	[ "$n" -gt 0 ] && mkdir -p /ballast && mount -t tmpfs -o "size=$((n + 1))m,mode=0700" ballast /ballast &&
		dd if=/dev/urandom of=/ballast/fill bs=1M count="$n" 2>/dev/null && r=done
	say "ballast mib=$n result=$r uptime=$(up)"
fi

# ---- ACPI power button -> clean poweroff (virsh shutdown) ---------------------------------------
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\necho "RIG poweroff reason=acpi" >/dev/console\nsync\npoweroff -f\n' > /etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080

[ "$RIG_diskcheck" = 1 ] && diskcheck
[ "$RIG_disktouch" = 1 ] && disktouch

# ---- Windows-Setup stand-in: answer CD -------------------------------------------------------
cdmount() { # mount every CD-ROM read-only under /mnt/<dev>; print the mount points
	for d in $(disks); do
		case "$d" in sr*) ;; *) continue ;; esac
		mkdir -p "/mnt/$d"
		# busybox has no mountpoint applet: look the mount up instead
		grep -q " /mnt/$d " /proc/mounts || mount -t iso9660 -o ro "/dev/$d" "/mnt/$d" 2>/dev/null || continue
		echo "/mnt/$d"
	done
}
findfile() { # dir regex -> first entry of dir whose name matches (case-insensitive)
	ls -1 "$1" 2>/dev/null | grep -i -E -m1 "$2"
}
if [ "$RIG_answercd" = 1 ]; then
	storage
	MOUNTS="$(cdmount)"
	if [ "$RIG_install" = 1 ]; then
		if [ -n "$SYS" ]; then
			say "install target=${SYS#/dev/} result=skipped reason=installed"
		else
			src=""; for m in $MOUNTS; do f="$(findfile "$m" '^standin\.gz(;1)?$')"; [ -n "$f" ] && { src="$m/$f"; break; }; done
			tgt=""; for d in $(disks); do case "$d" in sr*) ;; *) tgt="$d"; break ;; esac; done
			if [ -n "$src" ] && [ -n "$tgt" ] && gunzip -c "$src" | dd of="/dev/$tgt" bs=1M conv=fsync 2>/dev/null; then
				sync; SYS="$(sysdisk)"
				say "install target=$tgt result=written"
			else
				say "install target=${tgt:-none} result=failed source=${src:-none}"
			fi
		fi
	fi
	file=""; cn=""
	for pat in '^autounattend\.xml(;1)?$' '^unattend\.xml(;1)?$'; do
		for m in $MOUNTS; do
			f="$(findfile "$m" "$pat")"
			[ -n "$f" ] && { file="$m/$f"; break 2; }
		done
	done
	if [ -n "$file" ] && grep -q 'sysprep.exe /generalize' "$file" 2>/dev/null; then
		# Image build (legacyvm image build): setup, media, steps, generalize. Only
		# counts are read from the answer file (it holds the build password).
		say "answer file=${file##*/} mode=image-build"
		say "phase setup target=${SYS#/dev/}"
		ownmnt=""
		for m in $MOUNTS; do
			case "$file" in "$m"/*) ownmnt="$m" ;; esac
		done
		nmedia=0
		for m in $MOUNTS; do
			[ "$m" = "$ownmnt" ] && continue
			[ -n "$(findfile "$m" '^standin\.gz(;1)?$')" ] && continue
			nmedia=$((nmedia+1))
		done
		say "phase media count=$nmedia"
		nsteps="$(grep -c '<Description>Image step ' "$file")"
		say "phase steps count=$nsteps"
		if grep -q 'rig-fail-step' "$file"; then
			# A failing step: Windows would sit at the desktop; so does the stand-in.
			say "step result=failed"
			while :; do sleep 3600; done
		fi
		say "phase generalize"
		if [ -n "$SYS" ] && writesector $GEN_SECTOR "RIG-GENERALIZED $(up)" && sync; then
			say "generalize marker=written dev=${SYS#/dev/}"
		else
			say "generalize marker=failed"
		fi
		for m in $MOUNTS; do umount "$m" 2>/dev/null; done
		sync
		say "poweroff reason=sysprep"
		poweroff -f
	fi
	if [ -n "$file" ]; then
		# Only the ComputerName element is extracted; the file holds a product key.
		cn="$(tr -d '\000\r' < "$file" | sed -n 's/.*<ComputerName>[[:space:]]*\([^<]*\)<\/ComputerName>.*/\1/p' | head -n1 | tr -cd 'A-Za-z0-9._*-' | cut -c1-63)"
		gen=no
		[ -n "$SYS" ] && case "$(marker $GEN_SECTOR)" in RIG-GENERALIZED*) gen=yes ;; esac
		say "answer file=${file##*/} computername=${cn:-none}"
		say "specialize generalized=$gen"
		if [ "$RIG_answermark" = 1 ]; then
			if [ -n "$SYS" ] && writesector $ANSWER_SECTOR "RIG-ANSWER computername=${cn:-none}"; then
				say "answer marker=written dev=${SYS#/dev/}"
			else
				say "answer marker=failed"
			fi
		fi
		for m in $MOUNTS; do umount "$m" 2>/dev/null; done
		sync
		say "poweroff reason=answercd"
		poweroff -f
	fi
	say "answer file=none"
fi

# ---- guest agent: Debian's qemu-ga on the virtio-serial port org.qemu.guest_agent.0 ---------------
# Only when the domain has the channel (<channel type='unix'><target type='virtio'
# name='org.qemu.guest_agent.0'/>); restarted if it dies. No udev: the /dev/virtio-ports/NAME link is
# made here from /sys/class/virtio-ports/*/name.
agent() {
	loadmods agent
	i=0; port=""
	while [ $i -lt 30 ] && [ -z "$port" ]; do
		for p in /sys/class/virtio-ports/*; do
			[ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port="${p##*/}"
		done
		[ -n "$port" ] || { usleep 100000; i=$((i+1)); }
	done
	[ -n "$port" ] || { say "agent result=nochannel"; return 0; }
	mkdir -p /dev/virtio-ports /var/run /run/qga
	ln -sf "../$port" /dev/virtio-ports/org.qemu.guest_agent.0
	say "agent result=started port=$port"
	(while :; do
		PATH=/usr/sbin:/usr/bin:/sbin:/bin qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 \
			-t /run/qga -f /run/qga/qemu-ga.pid >>/tmp/qemu-ga.log 2>&1
		say "agent result=exited"; sleep 1
	done) &
}
for d in /sys/bus/pci/devices/*; do
	# virtio console (1af4:1003, transitional) or modern (1af4:1043)
	case "$(cat "$d/vendor" 2>/dev/null):$(cat "$d/device" 2>/dev/null)" in 0x1af4:0x1003|0x1af4:0x1043) agent; break ;; esac
done

# ---- network ------------------------------------------------------------------------------------
ip link set lo up
NICS=0
for d in /sys/bus/pci/devices/*; do case "$(cat "$d/class" 2>/dev/null)" in 0x0200*) NICS=$((NICS+1)) ;; esac; done
i=0
while [ "$NICS" -gt 0 ] && [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
ip link set eth0 up 2>/dev/null
# QEMU's e1000 reports carrier only after its emulated autonegotiation; a DHCPDISCOVER sent before
# that is lost and costs a whole udhcpc retry period, so wait for carrier first.
i=0
while [ -e /sys/class/net/eth0 ] && [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done
CARRIER_UP=$(up)
MAC="$(cat /sys/class/net/eth0/address 2>/dev/null)"
GW=""; SRV=""; ADDR=""
cat > /run/udhcpc.script <<'EOF'
#!/bin/sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
bound|renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	: > /etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
	{ echo "D_IP=$ip"; echo "D_MASK=$mask"; echo "D_ROUTER='$router'"; echo "D_SRV=$serverid"
	  echo "D_HOST=$hostname"; } > /run/dhcp.env ;;
esac
exit 0
EOF
chmod +x /run/udhcpc.script
case "$RIG_ip" in
dhcp)
	tries=$RIG_dhcpwait; [ "$tries" -ge 1 ] 2>/dev/null || tries=1
	if udhcpc -i eth0 -n -q -f -t "$tries" -T 1 -A 1 -s /run/udhcpc.script -x hostname:"$RIG_name" >/tmp/udhcpc.log 2>&1; then
		. /run/dhcp.env
		ADDR="$D_IP/$D_MASK"; GW="${D_ROUTER%% *}"; SRV="$D_SRV"
		[ "$RIG_name" = guest ] && [ -n "$D_HOST" ] && RIG_name="$D_HOST" && hostname "$RIG_name"
		VIA=dhcp
	else
		VIA=dhcp-failed
	fi ;;
none|"") VIA=none ;;
*)
	ip addr add "$RIG_ip" dev eth0 && ADDR="$RIG_ip"
	[ -n "$RIG_gw" ] && ip route add default via "$RIG_gw" dev eth0 && GW="$RIG_gw"
	VIA=static ;;
esac
reroute
say "net dev=eth0 mac=$MAC ip=${ADDR:-none} via=$VIA gw=${GW:-none} srv=${SRV:-none} carrier_at=$CARRIER_UP uptime=$(up)"

acpid -c /etc/acpi -l /dev/null 2>/dev/null # late: /dev/input/event* exist by now

# ---- TCP services -------------------------------------------------------------------------------
printf '#!/bin/sh\necho "RIG-BANNER %s"\n' "$RIG_name" > /bin/rig-banner
chmod +x /bin/rig-banner
for p in $(echo "$RIG_listen" | tr ',' ' '); do
	[ "$p" = 0 ] || nc -ll -p "$p" -e /bin/rig-banner >/dev/null 2>&1 &
done
echo "SYS='$SYS'; STORAGE=$STORAGE; RIG_name='$RIG_name'; RIG_debug=$RIG_debug; GW='$GW'; SRV='$SRV'; MAC='$MAC'; RIG_route='$RIG_route'" > /run/rig.state
printf '#!/bin/sh\nRIG_MODE=control exec /init\n' > /bin/rig-control
chmod +x /bin/rig-control
[ "$RIG_control" = 0 ] || nc -ll -p "$RIG_control" -e /bin/rig-control >/dev/null 2>&1 &

# ---- optional: wait until peers answer ping ----------------------------------------------------
for t in $(echo "$RIG_wait" | tr ',' ' '); do
	t0=$(cut -d. -f1 /proc/uptime); r=timeout
	while [ $(( $(cut -d. -f1 /proc/uptime) - t0 )) -lt "$RIG_waitmax" ]; do
		ping -c 1 -W 1 -q "$t" >/dev/null 2>&1 && { r=up; break; }
	done
	say "wait target=$t result=$r uptime=$(up)"
done

# ---- checks -------------------------------------------------------------------------------------
if [ -n "$RIG_ping$RIG_tcp$RIG_dns" ]; then
	round=1
	while [ "$round" -le "$RIG_rounds" ]; do
		pass=0; fail=0
		for k in ping tcp dns; do
			eval "list=\$RIG_$k"
			for t in $(echo "$list" | tr ',' ' '); do
				if runcheck "$round" "$k" "$t" say; then pass=$((pass+1)); else fail=$((fail+1)); fi
			done
		done
		say "done round=$round pass=$pass fail=$fail uptime=$(up)"
		round=$((round+1))
		[ "$round" -le "$RIG_rounds" ] && sleep "$RIG_interval"
	done
fi

if [ "$RIG_halt" = 1 ]; then
	say "poweroff reason=rig.halt"
	sync
	poweroff -f
fi
n=0
if [ "$RIG_hb" != 0 ]; then
	while :; do n=$((n+1)); say "hb n=$n uptime=$(up)"; sleep "$RIG_hb"; done
fi
while :; do sleep 3600; done
