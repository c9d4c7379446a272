#!/bin/bash
# build.sh - build legacyvm's stand-in guest: a tiny Linux (Debian kernel + busybox-static, both
# fetched with `apt-get download`, extracted with dpkg-deb, never installed) that replaces Windows in
# integration tests. Its /init is init.sh from this directory.
#
# Usage:  internal/testenv/guest/build.sh OUTDIR
# Env:    LEGACYVM_GUEST_DL=DIR      where downloaded .debs are kept (default OUTDIR/dl)
#         LEGACYVM_GUEST_KERNEL=PKG  kernel package (default: what linux-image-amd64 depends on)
#
# Needs on the host (not installed by this script): apt-get dpkg-deb qemu-img mkfs.fat mcopy
# syslinux xz (packages: apt qemu-utils dosfstools mtools syslinux syslinux-common xz-utils).
#
# Produces in OUTDIR:
#   vmlinux       uncompressed kernel (ELF) for PVH direct kernel boot: fastest under TCG
#   vmlinuz       the same kernel as packaged (bzImage): for syslinux/isolinux
#   initrd.img    uncompressed cpio: busybox + /init + the modules below (+ modules.order)
#   initrd.img.gz the same, gzip'd (fewer bytes through BIOS int13 when booting from disk/CD)
#   cmdline.txt   the kernel command line the disk and installer boot with
#   standin.img   the raw system disk (see below)
#   guest.qcow2   standin.img as qcow2: BIOS-bootable (SeaBIOS -> syslinux) from IDE, SATA (AHCI) or
#                 virtio; used read-only as the backing file of per-VM overlays
#   busybox       the guest's busybox-static, for the host side of tests (ping, nc inside a netns)
#   (the initramfs also holds netcat-traditional's nc as /bin/nc.udp, with libc6's libc.so.6 and
#   ld-linux-x86-64.so.2, for one-way UDP probes)
#
# The guest also runs Debian's qemu-guest-agent (/usr/sbin/qemu-ga, from the package, with the shared
# libraries it needs: the closure of its ELF NEEDED entries, taken from the AGENT_PKGS packages) on
# the virtio-serial port org.qemu.guest_agent.0 when the domain has that channel (init.sh).
#   manifest.txt  package versions and sha256 of the outputs
#
# System disk layout (32 MiB, no partition table, like a "superfloppy"):
#   0 .. 24 MiB   FAT16 filesystem RIGGUEST with syslinux, vmlinuz, initrd.img, syslinux.cfg
#   28 MiB        sector 57344: signature "LEGACYVM-STANDIN-SYSDISK" (how init.sh finds its disk)
#                 sector 57345: disk marker (rig.disktouch / rig.diskcheck)
#                 sector 57346: answer marker (rig.answermark)
#                 sector 57347: generalize marker (image-build mode)
# Tests may read the markers of a shut-off VM with `qemu-io -r -c 'read -v 29360640 1024' DISK`.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
DL="${LEGACYVM_GUEST_DL:-$OUT/dl}"
T0=$(date +%s.%N)
log() { awk -v a="$T0" -v b="$(date +%s.%N)" -v m="$*" 'BEGIN{printf "[guest-build %6.2fs] %s\n", b-a, m}' >&2; }

for c in apt-get apt-cache dpkg-deb qemu-img mkfs.fat mcopy syslinux xz gzip readelf; do
	command -v "$c" >/dev/null || { echo "build.sh: missing command $c (install: apt qemu-utils dosfstools mtools syslinux xz-utils binutils)" >&2; exit 1; }
done

# ---- 1. the two Debian packages (download only) ------------------------------------------------
KPKG="${LEGACYVM_GUEST_KERNEL:-$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')}"
[ -n "$KPKG" ] || { echo "build.sh: cannot resolve the kernel package (run apt-get update)" >&2; exit 1; }
mkdir -p "$DL"
chmod 0777 "$DL" # apt-get download drops privileges to _apt
fetch() { # package -> path of its newest .deb in $DL
	local p="$1" f
	f="$(ls -t "$DL/${p}"_*.deb 2>/dev/null | head -n1 || true)"
	if [ -z "$f" ]; then
		log "apt-get download $p"
		(cd "$DL" && apt-get download -qq "$p" 2>&1 | grep -v 'unsandboxed' >&2 || true)
		f="$(ls -t "$DL/${p}"_*.deb 2>/dev/null | head -n1 || true)"
		[ -n "$f" ] || { echo "build.sh: apt-get download $p failed" >&2; exit 1; }
	fi
	echo "$f"
}
KDEB="$(fetch "$KPKG")"
BDEB="$(fetch busybox-static)"
# qemu-guest-agent and the packages holding the libraries it loads (Depends of qemu-guest-agent and
# libglib2.0-0 that its NEEDED closure reaches; the closure below fails the build if one is missing).
AGENT_PKGS="qemu-guest-agent libc6 libglib2.0-0 libpcre2-8-0 libnuma1 libudev1 liburing2"
ADEBS=""
for p in $AGENT_PKGS; do ADEBS="$ADEBS $(fetch "$p")"; done
WORK="$(mktemp -d "$OUT/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
dpkg-deb -x "$KDEB" "$WORK/k"
dpkg-deb -x "$BDEB" "$WORK/bb"
for d in $ADEBS; do dpkg-deb -x "$d" "$WORK/ga"; done
KVER="$(ls "$WORK/k/lib/modules" | head -n1)"
MODDIR="$WORK/k/lib/modules/$KVER"
BB="$WORK/bb/bin/busybox"

# ---- 2. initramfs ------------------------------------------------------------------------------
log "initramfs for kernel $KVER"
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,mnt,lib/modules}
cp "$BB" "$R/bin/busybox"
for a in $("$BB" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
# One-way UDP probes (init.sh "udp=..."): busybox's nc has no UDP, so the guest also carries
# netcat-traditional's nc (-u, -b, -p: any source port, broadcast) as /bin/nc.udp, with the two
# files of libc6 it loads.
NCDEB="$(fetch netcat-traditional)"
LCDEB="$(fetch libc6)"
dpkg-deb -x "$NCDEB" "$WORK/nc"
dpkg-deb -x "$LCDEB" "$WORK/libc"
mkdir -p "$R/lib/x86_64-linux-gnu" "$R/lib64"
cp "$WORK/nc/bin/nc.traditional" "$R/bin/nc.udp"
cp -L "$WORK/libc/lib/x86_64-linux-gnu/libc.so.6" "$R/lib/x86_64-linux-gnu/libc.so.6"
cp -L "$WORK/libc/lib64/ld-linux-x86-64.so.2" "$R/lib64/ld-linux-x86-64.so.2"
install -m 0755 "$HERE/init.sh" "$R/init"
# Modules by name; dependencies come from each module's own modinfo "depends=" (the package ships
# no modules.dep and depmod is not needed); built-in ones are skipped.
# net: e1000 (QEMU default for pc, legacyvm's Win7 preset), e1000e, rtl8139; acpi power button;
# fw_cfg; storage: AHCI (SATA on pc/q35), ata_piix (IDE), virtio, disks, CD-ROMs, ISO9660 (Joliet).
NET_MODS="e1000 e1000e 8139too button evdev qemu_fw_cfg"
# agent: the virtio-serial port of the guest agent channel (virtio_console; virtio_pci again, as
# init.sh loads the storage group only when it needs disks).
AGENT_MODS="virtio_pci virtio_console"
STORAGE_MODS="ahci ata_piix virtio_pci virtio_blk sd_mod sr_mod isofs"
find "$MODDIR/kernel" -name '*.ko*' | awk '{ b=$0; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); gsub(/-/, "_", b); print b, $0 }' > "$WORK/index"
unz() { case "$1" in *.xz) xz -dc "$1" ;; *.zst) zstd -dcq "$1" ;; *.gz) gzip -dc "$1" ;; *) cat "$1" ;; esac; }
: > "$WORK/done"
add() { # module name: its dependencies first, then itself, once per group
	local n p d
	n="$(echo "$1" | tr - _)"
	grep -qxF "$n" "$WORK/done" && return 0
	p="$(awk -v n="$n" '$1 == n { print $2; exit }' "$WORK/index")"
	if [ -z "$p" ]; then
		grep -qE "/$1\.ko\$|/$n\.ko\$" "$MODDIR/modules.builtin" || { echo "build.sh: module $1 not found" >&2; exit 1; }
		echo "$n" >> "$WORK/done"
		return 0
	fi
	echo "$n" >> "$WORK/done"
	for d in $(unz "$p" | tr '\000' '\n' | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '); do add "$d"; done
	unz "$p" > "$R/lib/modules/$n.ko"
	echo "$n.ko" >> "$WORK/order"
}
for group in net storage agent; do
	: > "$WORK/order"
	: > "$WORK/done"
	case "$group" in net) mods="$NET_MODS" ;; storage) mods="$STORAGE_MODS" ;; agent) mods="$AGENT_MODS" ;; esac
	for m in $mods; do add "$m"; done
	mv "$WORK/order" "$R/lib/modules/$group.order"
done
echo "root:x:0:0:root:/:/bin/sh" > "$R/etc/passwd"
# qemu-ga and its libraries: follow NEEDED entries from the binary through the extracted packages.
GA="$WORK/ga"
mkdir -p "$R/usr/sbin" "$R/lib/x86_64-linux-gnu" "$R/lib64"
cp "$GA/usr/sbin/qemu-ga" "$R/usr/sbin/qemu-ga"
: > "$WORK/libs"
need() { # ELF file: copy each NEEDED library (and its own NEEDED) into the initramfs once
	local l f
	for l in $(LC_ALL=C readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		grep -qxF "$l" "$WORK/libs" && continue
		echo "$l" >> "$WORK/libs"
		f=""
		for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu; do [ -e "$GA/$d/$l" ] && { f="$GA/$d/$l"; break; }; done
		[ -n "$f" ] || { echo "build.sh: qemu-ga needs $l, which none of: $AGENT_PKGS ships" >&2; exit 1; }
		cp -L "$f" "$R/lib/x86_64-linux-gnu/$l"
		need "$f"
	done
}
need "$GA/usr/sbin/qemu-ga"
grep -qxF ld-linux-x86-64.so.2 "$WORK/libs" || cp -L "$GA/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$R/lib/x86_64-linux-gnu/"
ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
command -v strip >/dev/null && strip --strip-unneeded "$R/usr/sbin/qemu-ga" "$R"/lib/x86_64-linux-gnu/*.so* 2>/dev/null || true
find "$R" -exec touch -h -d @0 {} + # reproducible archive
(cd "$R" && find . | LC_ALL=C sort | "$BB" cpio -o -H newc 2>/dev/null) > "$OUT/initrd.img"
gzip -9 -n -c "$OUT/initrd.img" > "$OUT/initrd.img.gz"
cp "$WORK/k/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
# Uncompressed ELF for PVH direct kernel boot: skips real-mode setup and the decompressor, which
# take more than half of the boot under TCG. Debian kernels have CONFIG_PVH=y.
off=$(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$OUT/vmlinuz" | head -n1 | cut -d: -f1)
(set +o pipefail; tail -c +$((off + 1)) "$OUT/vmlinuz" | xz -dc --single-stream > "$OUT/vmlinux" 2>/dev/null) || true
[ "$(head -c 4 "$OUT/vmlinux" | od -An -c | tr -d ' ')" = "177ELF" ] || { echo "build.sh: vmlinux extraction failed" >&2; exit 1; }

# ---- 3. the BIOS-bootable system disk (no loop devices, no mounts) --------------------------------
log "system disk"
FAST="mitigations=off cryptomgr.notests no_timer_check tsc=reliable audit=0 lsm=capability"
CMDLINE="console=ttyS0,115200 quiet loglevel=1 panic=-1 $FAST"
echo "$CMDLINE" > "$OUT/cmdline.txt"
IMG="$WORK/standin.img"
mkfs.fat -C -i 4c564d31 -n RIGGUEST "$IMG" $((24 * 1024)) >/dev/null
cat > "$WORK/syslinux.cfg" <<EOF
DEFAULT rig
PROMPT 0
TIMEOUT 0
LABEL rig
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND $CMDLINE
EOF
export MTOOLS_SKIP_CHECK=1
mcopy -m -i "$IMG" "$OUT/vmlinuz" ::vmlinuz
mcopy -m -i "$IMG" "$OUT/initrd.img.gz" ::initrd.img
mcopy -m -i "$IMG" "$WORK/syslinux.cfg" ::syslinux.cfg
syslinux --install "$IMG"
truncate -s 32M "$IMG"
printf 'LEGACYVM-STANDIN-SYSDISK\n' | dd of="$IMG" bs=512 seek=57344 conv=notrunc status=none
mv "$IMG" "$OUT/standin.img"
install -m 0755 "$BB" "$OUT/busybox"
rm -f "$OUT/guest.qcow2"
qemu-img convert -q -f raw -O qcow2 "$OUT/standin.img" "$OUT/guest.qcow2"

# ---- 4. manifest --------------------------------------------------------------------------------
{
	echo "kernel_pkg=$(dpkg-deb -f "$KDEB" Package) $(dpkg-deb -f "$KDEB" Version)"
	echo "busybox_pkg=$(dpkg-deb -f "$BDEB" Package) $(dpkg-deb -f "$BDEB" Version)"
	echo "kver=$KVER"
	echo "net_modules=$(tr '\n' ' ' < "$R/lib/modules/net.order")"
	echo "storage_modules=$(tr '\n' ' ' < "$R/lib/modules/storage.order")"
	echo "agent_modules=$(tr '\n' ' ' < "$R/lib/modules/agent.order")"
	for d in $ADEBS; do echo "agent_pkg=$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version)"; done
	echo "agent_libs=$(tr '\n' ' ' < "$WORK/libs")"
	echo "cmdline=$CMDLINE"
	(cd "$OUT" && sha256sum vmlinux vmlinuz initrd.img initrd.img.gz standin.img guest.qcow2 busybox)
} > "$OUT/manifest.txt"
log "done: $OUT"
