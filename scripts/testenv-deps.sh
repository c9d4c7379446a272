#!/bin/sh
# testenv-deps.sh - install the Debian packages that legacyvm's libvirt test harness
# (internal/testenv) and its stand-in guest build need. Run as root.
#
#   scripts/testenv-deps.sh          apt-get update + install (idempotent)
#   scripts/testenv-deps.sh --list   print the package names only
#
# What each is for:
#   libvirt-daemon-system libvirt-clients   libvirtd, virtlogd, virsh (private instance per test binary)
#   qemu-system-x86 qemu-utils              QEMU (TCG or KVM), qemu-img, qemu-io
#   dnsmasq-base                            DHCP/DNS of libvirt networks
#   iptables                                ebtables-nft/iptables-nft for libvirt networks and nwfilter
#   tini iproute2 util-linux                subreaper for libvirtd, ip netns, unshare
#   libvirt-dev pkg-config                  cgo build of libvirt.org/go/libvirt
#   syslinux syslinux-common isolinux mtools dosfstools xz-utils   stand-in guest disk + installer ISO
#   libxml2-utils                           xmllint (schema checks of generated XML)
set -eu
PKGS="libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base iptables tini
iproute2 util-linux libvirt-dev pkg-config syslinux syslinux-common isolinux mtools dosfstools
xz-utils libxml2-utils"
if [ "${1:-}" = --list ]; then
	echo $PKGS
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# libvirt-daemon-system's postinst would start a system libvirtd in the root namespace, whose
# autostarted "default" network puts a bridge with an address there. The harness never uses it
# (every instance runs its own daemon inside its own namespace): keep services from starting
# during the install with a temporary policy-rc.d (unless the machine already has one).
POLICY=/usr/sbin/policy-rc.d
ADDED=0
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$POLICY" && chmod 0755 "$POLICY" && ADDED=1
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $PKGS >/dev/null || { [ "$ADDED" = 1 ] && rm -f "$POLICY"; exit 1; }
[ "$ADDED" = 1 ] && rm -f "$POLICY"
echo "testenv dependencies installed: $(echo $PKGS)"
