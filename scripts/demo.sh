#!/usr/bin/env bash
# The demo: vmctl's VMM boots the default Linux guest (Debian's cloud kernel and the vmctl
# initramfs, fetched and built by scripts/guest-assets.sh) to a shell on its serial console,
# on this terminal. `poweroff` in the guest ends it; Ctrl-A x quits the VMM at any time.
# Where /dev/kvm cannot boot Linux (missing, or PVM) the VMM runs inside the KVM rig
# (test/rig/README.md), and the demo says so.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/guest-assets.sh --quiet)"
vmm=(node libs/vmm/dist/bundle/cli.js run --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD"
  --memory 512M --cpus 2 --cmdline "console=ttyS0 quiet panic=-1")
if [ -e /sys/module/kvm_pvm ] || [ ! -e /dev/kvm ]; then
  echo "demo: this machine's /dev/kvm cannot boot Linux; running the VMM inside the KVM rig"
  echo "demo: (QEMU with software-emulated SVM: expect ~1 minute to the shell; Ctrl-] x leaves the rig)"
  exec test/rig/rig.sh -i -- "${vmm[@]}"
fi
echo "demo: booting $GUEST_KERNEL_RELEASE under vmm (poweroff in the guest ends it; Ctrl-A x quits)"
exec "${vmm[@]}"
