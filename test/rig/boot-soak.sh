#!/usr/bin/env bash
# Boots the default Linux guest RUNS times in a row where a real KVM is and reports each boot:
# the time to the shell prompt, then `poweroff`. A boot that does not reach the prompt within
# WAIT seconds is a hang: vmm prints every vCPU's registers (SIGUSR1) and, where tracefs has
# KVM's events, 3 s of them go to OUT/trace-N.txt. Every boot's console is kept in OUT.
#
#   test/rig/rig.sh --share OUT -n -- test/rig/boot-soak.sh OUT [RUNS] [vmm|qemu]
#
# Environment: CPUS (2), MEMORY (384M), WAIT (100), CMDLINE (console=ttyS0 quiet panic=-1).
set -uo pipefail
out=${1:?usage: boot-soak.sh OUT [RUNS] [vmm|qemu]} runs=${2:-20} runner=${3:-vmm}
root=$(cd "$(dirname "$0")/../.." && pwd)
eval "$("$root/scripts/guest-assets.sh" --print)"
cpus=${CPUS:-2} memory=${MEMORY:-384M} wait=${WAIT:-100} cmdline=${CMDLINE:-console=ttyS0 quiet panic=-1}
mkdir -p "$out"
fifo=$(mktemp -u) tracing=/sys/kernel/tracing
mountpoint -q $tracing || mount -t tracefs none $tracing 2>/dev/null
ok=0 hung=0
for ((i = 1; i <= runs; i++)); do
  log=$out/boot-$i.log
  rm -f "$fifo" && mkfifo "$fifo"
  start=$(date +%s%N)
  if [ "$runner" = qemu ]; then
    qemu-system-x86_64 -M microvm -accel kvm -cpu host -m "$memory" -smp "$cpus" -nodefaults \
      -no-user-config -nographic -serial stdio -kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
      -append "$cmdline" <"$fifo" >"$log" 2>&1 &
  else
    node "$root/libs/vmm/dist/bundle/cli.js" run --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
      --cmdline "$cmdline" --cpus "$cpus" --memory "$memory" <"$fifo" >"$log" 2>&1 &
  fi
  pid=$!
  exec 7>"$fifo" # held open: the guest's console input
  deadline=$((start + wait * 1000000000)) up=0
  # a quiet boot prints nothing before its marker, so the test is cheap until then
  while (($(date +%s%N) < deadline)); do
    if [ -s "$log" ] && grep -q 'guest# ' "$log"; then up=1; break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 1
  done
  ms=$((($(date +%s%N) - start) / 1000000))
  if ((up)); then
    ok=$((ok + 1))
    echo "boot $i: prompt after $ms ms"
    echo poweroff >&7
    for ((t = 0; t < 60; t++)); do kill -0 $pid 2>/dev/null || break; sleep 1; done
  else
    hung=$((hung + 1))
    echo "boot $i: no prompt after $ms ms"
    if [ "$runner" = vmm ]; then kill -USR1 $pid 2>/dev/null && sleep 5 && grep '^vmm: vcpu' "$log"; fi
    if [ -d $tracing/events/kvm ]; then
      echo >$tracing/trace
      echo 1 >$tracing/events/kvm/enable
      sleep 3
      echo 0 >$tracing/events/kvm/enable
      head -c 2000000 $tracing/trace >"$out/trace-$i.txt"
    fi
  fi
  kill $pid 2>/dev/null
  sleep 1
  kill -9 $pid 2>/dev/null
  exec 7>&-
  wait $pid 2>/dev/null
done
rm -f "$fifo"
echo "boot-soak: $ok of $runs boots reached the prompt, $hung did not ($runner, $cpus vCPUs, $memory)"
((hung == 0))
