#!/bin/bash
# fresh-check.sh: the project's bare-Debian check. Builds (once, cached) a
# minimal Debian 12 root with only git and ca-certificates, bind-mounts this
# machine's Go at /usr/local/go (as a fresh machine of the documented kind
# has it), clones the committed checkout into it and runs the README's
# commands there, in order, from the clone's root, as a newcomer would.
#
#   scripts/fresh-check.sh                       # both README commands (demo, then the whole suite)
#   scripts/fresh-check.sh './scripts/run demo'  # only the given command(s)
#   make fresh-check                             # = scripts/fresh-check.sh
#
# Needs root, debootstrap (installed if missing) and the network (apt mirror,
# Go module proxy). Everything runs in its own mount and PID namespaces
# (unshare) with the root switched by pivot_root, like a container: nothing
# it mounts is visible outside and every process it starts dies with it.
# (A chroot is not enough: libvirt enters each QEMU's mount namespace to
# create its device nodes, and that lands at the namespace's root.) The
# root gets
#   - /dev: a devtmpfs (the kernel's device nodes, /dev/ptmx a real node) with
#     a devpts instance of its own and its own /dev/shm;
#   - /proc of its own PID namespace, /sys bound from the host (cgroups);
#   - /run and /tmp of its own (empty tmpfs), so `ip netns` keeps its
#     namespaces in the root's /run/netns and libvirt test daemons that run
#     on this machine outside the check are neither seen nor disturbed.
# The network namespace is the host's: only the harness's own namespaces
# (created inside) ever get bridges or addresses.
#
# Environment: FRESH_CACHE (default /var/tmp/legacyvm-fresh) holds the
# pristine root tarball; FRESH_KEEP=1 keeps the run's directory for a look.
set -euo pipefail
SRC=$(git rev-parse --show-toplevel)
CACHE=${FRESH_CACHE:-/var/tmp/legacyvm-fresh}
if [ $# -eq 0 ]; then
	# The README's two commands, read from the README itself so the check
	# cannot drift from what a newcomer is told to type.
	mapfile -t cmds < <(awk '/^```sh/{f=1; next} /^```/{if(f) exit} f' "$SRC/README.md" | sed 's/[[:space:]]*#.*$//' | grep -v '^[[:space:]]*$')
	set -- "${cmds[@]}"
fi
[ "$(id -u)" = 0 ] || { echo "fresh-check: run as root" >&2; exit 2; }

snap=$CACHE/bookworm-minbase.tar
if [ ! -s "$snap" ]; then
	command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
	mkdir -p "$CACHE"
	root=$(mktemp -d "$CACHE/build.XXXXXX")
	mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	echo "fresh-check: debootstrap bookworm (minbase + git, ca-certificates) into $root" >&2
	debootstrap --variant=minbase --include=git,ca-certificates bookworm "$root" ${mirror:+"$mirror"} >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -5 "$CACHE/debootstrap.log"; echo "fresh-check: debootstrap failed" >&2; exit 2; }
	# apt sources as this machine has them (its mirror), nothing else.
	if [ -e /etc/apt/sources.list.d/debian.sources ]; then
		cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
		rm -f "$root/etc/apt/sources.list"
	fi
	chmod 0755 "$root"
	tar -C "$root" -cf "$snap.tmp" . && mv "$snap.tmp" "$snap"
	rm -rf "$root"
fi

work=$(mktemp -d /var/tmp/legacyvm-fresh-run.XXXXXX)
cleanup() {
	if [ "${FRESH_KEEP:-0}" = 1 ]; then echo "fresh-check: kept $work" >&2; else rm -rf --one-file-system "$work"; fi
}
trap cleanup EXIT
tar -C "$work" -xf "$snap"
# / of a real machine is 0755 (mktemp's 0700, restored by tar from the
# tarball's "."): QEMU runs as libvirt-qemu and apt as _apt.
chmod 0755 "$work"
cp /etc/resolv.conf "$work/etc/resolv.conf"
# This workplace's own CAs (a real machine of this kind trusts them too).
cp /usr/local/share/ca-certificates/*.crt "$work/usr/local/share/ca-certificates/" 2>/dev/null || true
chroot "$work" update-ca-certificates >/dev/null 2>&1 || true
git clone -q "$SRC" "$work/root/legacyvm"
printf '%s\n' "$@" >"$work/root/fresh-commands"

# In the root: run each command from the clone, stop at the first failure.
cat >"$work/root/fresh-run.sh" <<'RUN'
#!/bin/bash
cd /root/legacyvm
while IFS= read -r cmd; do
	echo "== fresh-check: $cmd"
	start=$(date +%s)
	if ! bash -c "$cmd" </dev/null; then
		echo "== fresh-check: FAILED after $(( $(date +%s) - start ))s: $cmd"
		exit 1
	fi
	echo "== fresh-check: ok in $(( $(date +%s) - start ))s: $cmd"
done </root/fresh-commands
RUN

# The namespaces: a private mount namespace (propagation private: nothing
# leaks to the host) and a PID namespace (everything started dies with the
# check).
ns=$(mktemp /var/tmp/legacyvm-fresh-ns.XXXXXX)
trap 'rm -f "$ns"; cleanup' EXIT
cat >"$ns" <<'NS'
set -euo pipefail
work=$1
mount --bind "$work" "$work"   # a root that is a mount point (ip netns remounts it)
mount -t proc proc "$work/proc"
mount --rbind /sys "$work/sys"
# /dev as a container has it: the kernel devtmpfs (device nodes as on the
# host, /dev/ptmx a real node) with a devpts instance of its own.
mount -t devtmpfs -o mode=0755 devtmpfs "$work/dev"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$work/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$work/dev/shm"
mount -t tmpfs -o mode=0755 tmpfs "$work/run"
mount -t tmpfs -o mode=1777 tmpfs "$work/tmp"
mkdir -p "$work/usr/local/go"
mount --bind -o ro /usr/local/go "$work/usr/local/go"
mount --make-rprivate "$work"
# pivot_root, not chroot: libvirt creates each QEMU's device nodes by
# entering the QEMU's mount namespace (setns), which resets the root to the
# namespace's root. Under a chroot that is the host's root, so /dev/ptmx
# never reaches the QEMU's private /dev ("Failed to create PTY"); after
# pivot_root the namespace's root is this root, as on a real machine.
mkdir -p "$work/.oldroot"
cd "$work"
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
exec /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	/bin/bash /root/fresh-run.sh
NS
unshare --mount --pid --fork --propagation private /bin/bash "$ns" "$work"
echo "fresh-check: all commands passed on a bare Debian 12 root" >&2
