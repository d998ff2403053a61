#!/usr/bin/env bash
# The demo: vmctl's VMM boots the echo test guest with its serial console on this
# terminal. Type, and the guest echoes; `q` ends it (Ctrl-A x quits the VMM at any time).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: booting test/guests/out/echo.elf under vmm (type to echo; q ends the guest)"
exec node libs/vmm/dist/bundle/cli.js run --kernel test/guests/out/echo.elf --memory 64M
