#!/bin/sh
# setup-host.sh: install what legacyvm, its demo and its tests need on a
# Debian 12 machine, and fetch the Go modules. Safe to run again: packages
# already installed are skipped.
set -eu
PKGS="libvirt-daemon-system libvirt-clients libvirt-dev pkg-config qemu-system-x86 qemu-utils
dnsmasq-base iptables tini iproute2 syslinux syslinux-common isolinux mtools dosfstools
libxml2-utils xorriso genisoimage xz-utils binutils procps gcc libc6-dev make git ca-certificates
nodejs npm chromium"
# nodejs + npm: make web installs the web console's noVNC (web/package-lock.json);
# chromium: the web console's browser tests (e2e/web).
# A package whose program is already on PATH from elsewhere counts as
# present: a machine with Node.js from NodeSource has its own npm, and
# Debian's npm package cannot be installed beside that nodejs.
provides() {
	case "$1" in
	nodejs) echo node ;;
	npm) echo npm ;;
	chromium) echo chromium ;;
	esac
}
missing=""
for p in $PKGS; do
	cmd=$(provides "$p")
	if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then
		continue
	fi
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup-host: apt-get install$missing" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "setup-host: run as root (or with sudo) to install packages" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# Keep the packages from starting services while they install: a system
	# libvirtd would bring up its "default" network (virbr0, with an
	# address) in this machine's own network namespace. legacyvm's demo
	# and tests run their own daemons in namespaces they create.
	guard=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		guard=1
	fi
	trap '[ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d' EXIT
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# apt-get download (used to build the stand-in guest) needs fresh lists.
if [ ! -d /var/lib/apt/lists ] || [ -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v lock | head -n1)" ]; then
	[ "$(id -u)" = 0 ] && apt-get update -qq
fi
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "setup-host: add /usr/local/go/bin to PATH" >&2
	else
		echo "setup-host: Go 1.26 or newer is needed (https://go.dev/dl/)" >&2
		exit 1
	fi
fi
echo "setup-host: packages ready" >&2
