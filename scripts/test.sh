#!/usr/bin/env bash
# Runs the whole test suite: unit tests beside the code and the integration tests under
# test/ that boot real guests on /dev/kvm. Files are passed one by one: on Node 20 a
# directory argument to `node --test` runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
mapfile -t files < <(find libs apps test -name '*.test.ts' -not -path '*/node_modules/*' 2>/dev/null | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "test: no test files found" >&2
  exit 1
fi
exec node --test --test-reporter=spec --import tsx "${files[@]}"
