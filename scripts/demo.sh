#!/usr/bin/env bash
# The demo: vmctld and vmctl boot the default Linux guest (Debian's cloud kernel and the
# vmctl initramfs, fetched and built by scripts/guest-assets.sh, which the daemon uses when a
# definition names no kernel) and attach its serial console to this terminal:
#   vmctl create demo --vcpus 2 --memory 512 && vmctl start demo && vmctl console demo
# `poweroff` in the guest or Ctrl-] ends it; the domain is then shut down and the daemon
# stops (scripts/demo-session.sh). Where /dev/kvm cannot boot Linux (missing, or PVM) all of
# it runs inside the KVM rig (test/rig/README.md), and the demo says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/guest-assets.sh --quiet >/dev/null
session=(bash scripts/demo-session.sh demo --vcpus 2 --memory 512)
if [ -e /sys/module/kvm_pvm ] || [ ! -e /dev/kvm ]; then
  echo "demo: this machine's /dev/kvm cannot boot Linux; running vmctld, vmctl and the guest inside the KVM rig"
  echo "demo: (QEMU with software-emulated SVM: expect 1-2 minutes to the shell; Ctrl-] x leaves the rig)"
  exec test/rig/rig.sh -i -- "${session[@]}"
fi
exec "${session[@]}"
