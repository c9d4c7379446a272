#!/usr/bin/env bash
# Installs the web console's npm dependencies exactly as web/package-lock.json
# pins them (npm ci, no install scripts) and copies noVNC's ES modules and
# licence into internal/web/assets/novnc, where go:embed picks them up.
# Needs Debian's nodejs and npm (scripts/setup-host.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null; then
	echo "web-assets: npm is missing: run scripts/setup-host.sh (installs Debian's nodejs and npm)" >&2
	exit 1
fi
src=web/node_modules/@novnc/novnc
dst=internal/web/assets/novnc
# npm ci is skipped when node_modules was installed after the lock file
# last changed.
if [ ! web/node_modules/.package-lock.json -nt web/package-lock.json ]; then
	(cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
if [ -f "$dst/core/rfb.js" ] && [ -z "$(find "$src" -newer "$dst/core/rfb.js" -print -quit)" ]; then
	exit 0
fi
rm -rf "$dst.tmp"
mkdir -p "$dst.tmp"
cp -R "$src/core" "$src/vendor" "$src/LICENSE.txt" "$dst.tmp/"
rm -rf "$dst"
mv "$dst.tmp" "$dst"
echo "web-assets: noVNC $(node -p "require('./$src/package.json').version") copied into $dst"
