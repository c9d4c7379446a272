#!/bin/bash
# demo.sh: the stand-in demo. Run by `make demo` inside `testenv exec`, which
# provides a private libvirtd (LIBVIRT_DEFAULT_URI) in its own network
# namespace. Windows cannot be shipped, so a tiny Linux guest built from
# Debian packages plays the golden image; everything legacyvm does around it
# is what it does for Windows 7.
set -euo pipefail
cd "$(dirname "$0")/.."
L=bin/legacyvm
if [ -t 1 ] && [ -z "${NO_COLOR+x}" ] && [ "${TERM:-dumb}" != dumb ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

DEMO=${LEGACYVM_DEMO_DIR:-/var/tmp/legacyvm-demo}
mkdir -p "$DEMO/images" "$DEMO/logs"
chmod 0755 "$DEMO" "$DEMO/images"
eval "$(bin/testenv guest)"
install -m 0644 "$DISK" "$DEMO/images/standin.qcow2"
export LEGACYVM_SERIAL_LOG_DIR="$DEMO/logs"
rm -f "$DEMO"/logs/*.log
VARS=(--var "golden=$DEMO/images/standin.qcow2")

say "legacyvm doctor"
$L doctor || true

say "legacyvm validate examples/quickstart"
$L validate examples/quickstart "${VARS[@]}"

say "legacyvm plan examples/quickstart"
$L plan examples/quickstart "${VARS[@]}" || [ $? -eq 2 ]

say "legacyvm apply examples/quickstart"
$L apply --auto-approve examples/quickstart "${VARS[@]}"

say "the guest boots on its isolated network (its serial console)"
for _ in $(seq 90); do
	grep -q 'RIG net' "$DEMO/logs/demo.serial.log" 2>/dev/null && break
	sleep 1
done
grep -a 'RIG ' "$DEMO/logs/demo.serial.log" | head -n 5 || true

say "legacyvm status examples/quickstart"
$L status examples/quickstart "${VARS[@]}"

say "a second apply plans nothing"
$L plan examples/quickstart "${VARS[@]}"

say "legacyvm verify examples/quickstart (isolation checked from the outside)"
$L verify examples/quickstart "${VARS[@]}" || true

say "legacyvm reset --start demo (back to the clean baseline, booted again)"
$L reset --start demo

say "legacyvm snapshot list"
$L snapshot list

if [ "${KEEP:-0}" = 1 ]; then
	# The web console on this machine's loopback (an SSH tunnel reaches it
	# from elsewhere: ssh -L 8470:127.0.0.1:8470 HOST), with a tester
	# token made for the demo; both end with the demo.
	WEB="$DEMO/web"
	rm -rf "$WEB"
	TOKEN=$($L token create --role tester --name demo --web-dir "$WEB")
	$L serve --listen "${WEB_LISTEN:-127.0.0.1:8470}" --web-dir "$WEB" 2>"$DEMO/logs/serve.log" &
	SERVE=$!
	trap 'kill "$SERVE" 2>/dev/null || true' EXIT
	for _ in $(seq 50); do
		grep -q 'serving the web console' "$DEMO/logs/serve.log" && break
		sleep 0.2
	done
	say "KEEP=1: leaving the VM running until you press Enter (LIBVIRT_DEFAULT_URI=$LIBVIRT_DEFAULT_URI)"
	echo "web console: http://${WEB_LISTEN:-127.0.0.1:8470}/ (log in with the token below; serve's log: $DEMO/logs/serve.log)"
	echo "token: $TOKEN"
	read -r _
	kill "$SERVE" 2>/dev/null || true
	wait "$SERVE" 2>/dev/null || true
fi

say "legacyvm destroy examples/quickstart"
$L destroy --auto-approve examples/quickstart "${VARS[@]}"
say "done: the private libvirtd and its network namespace are torn down next"
