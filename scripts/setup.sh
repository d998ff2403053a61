#!/usr/bin/env bash
# Sets up a fresh Debian machine for vmctl: the system packages the build and the tests
# need, the npm workspace (which builds the native addon and the TypeScript), and the
# test guests. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# chromium (and a font) for the web console's browser test (test/web), driven by playwright-core
for pkg in gcc g++ make python3 binutils linux-libc-dev iproute2 acpica-tools e2fsprogs chromium fonts-dejavu-core; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
