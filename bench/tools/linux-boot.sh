#!/usr/bin/env bash
# Boots the default Linux guest (Debian's cloud kernel + the vmctl initramfs) to its
# VMCTL-GUEST-READY marker under vmm and under QEMU microvm, ROUNDS times each, alternating
# which goes first; prints `BOOT <who> <round> <ms>` (or `BOOT <who> <round> fail`). Run by
# bench/linux.ts where a real KVM is (inside the KVM rig on a PVM host).
#
#   linux-boot.sh KERNEL INITRD ROUNDS
set -uo pipefail
kernel=$1 initrd=$2 rounds=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
cmdline="console=ttyS0 quiet panic=-1"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

boot() { # who round cmd...
  local who=$1 round=$2
  shift 2
  : >"$out"
  local start end pid deadline
  start=$(date +%s%N)
  deadline=$((start + 240000000000))
  "$@" </dev/null >"$out" 2>&1 &
  pid=$!
  # by the clock, not by a count: under the rig's TCG each grep costs a good part of a second
  while (($(date +%s%N) < deadline)); do
    grep -q VMCTL-GUEST-READY "$out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  end=$(date +%s%N)
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if grep -q VMCTL-GUEST-READY "$out"; then
    echo "BOOT $who $round $(((end - start) / 1000000))"
  else
    echo "BOOT $who $round fail $(tail -c 300 "$out" | tr -c '[:print:]' ' ')"
  fi
}

vmm() {
  boot vmm "$1" node "$root/libs/vmm/dist/bundle/cli.js" run --kernel "$kernel" --initrd "$initrd" \
    --memory 512M --cpus 1 --cmdline "$cmdline"
}
qemu() {
  boot qemu "$1" qemu-system-x86_64 -M microvm -accel kvm -cpu host -m 512M -smp 1 -nodefaults \
    -no-user-config -nographic -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
}

for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then vmm "$r"; qemu "$r"; else qemu "$r"; vmm "$r"; fi
done
