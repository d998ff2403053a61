#!/usr/bin/env bash
# npm run bench: installs what the benchmark needs if it is missing, builds the project and
# the bench's helper, then runs bench/main.ts. Arguments go to bench/main.ts, e.g.
#   npm run bench -- --only exits --rounds 3
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in qemu-system-x86 gcc make; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build >&2

mkdir -p bench/out
if [ ! -x bench/out/tsc-hz ] || [ bench/tools/tsc-hz.c -nt bench/out/tsc-hz ]; then
  gcc -O2 -Wall -Wextra -Werror -o bench/out/tsc-hz bench/tools/tsc-hz.c
fi

exec node --import tsx bench/main.ts "$@"
