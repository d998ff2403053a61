#!/bin/sh
# /init of the KVM rig's initramfs (packed by scripts/guest-assets.sh; run by busybox sh as PID 1).
#
# Loads kvm_amd (a real KVM on QEMU's emulated AMD-V), mounts the host's root (9p tag "host",
# read-only) under a tmpfs overlay so everything is writable in RAM, mounts fresh proc, sys,
# dev, /run and /dev/shm, mounts each read-write share (tags share0..N) at its host path, then
# runs the command that test/rig/rig.sh left in its run directory (9p tag "run") and writes the
# exit status back there. The console (ttyS0) carries progress markers:
#   VMCTL-RIG-T <event> <seconds since kernel start>   events: init, kvm, start, exit
#   VMCTL-RIG-EXIT <code>                              the command's exit status
#   VMCTL-RIG-ERROR <message>                          the rig could not run the command
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

t() { read -r up _ </proc/uptime; echo "VMCTL-RIG-T $1 $up"; }
finish() { # code
  sync
  if [ -d /rigrun ]; then echo "exit $1" >/rigrun/status; fi
  echo "VMCTL-RIG-EXIT $1"
  poweroff -f
  while :; do sleep 3600; done
}
fail() {
  echo "VMCTL-RIG-ERROR $*"
  if [ -d /rigrun ]; then echo "error $*" >/rigrun/status; fi
  sync
  poweroff -f
  while :; do sleep 3600; done
}
t init

debug=
case " $(cat /proc/cmdline) " in *" vmctl.debug=1 "*) debug=1 ;; esac
rel=$(uname -r)
while read -r m; do
  case $m in
    */kvm-amd.ko) insmod "/lib/modules/$rel/$m" nested=1 ;;
    *) insmod "/lib/modules/$rel/$m" ;;
  esac || echo "rig: insmod $m failed"
  [ -z "$debug" ] || t "insmod:${m##*/}"
done </etc/vmctl-modules
if [ -c /dev/kvm ]; then t kvm; else echo "rig: no /dev/kvm after loading kvm_amd"; fi

mkdir -p /rigrun
p9='trans=virtio,version=9p2000.L,msize=512000'
mount -t 9p -o "$p9,cache=none" run /rigrun || fail "cannot mount the run directory (9p tag run)"
[ -r /rigrun/rig.conf ] || fail "no rig.conf in the run directory"
. /rigrun/rig.conf

mount -t 9p -o "$p9,ro,cache=loose" host /lower || fail "cannot mount the host root (9p tag host)"
mount -t tmpfs -o mode=755 rigupper /upper
mkdir -p /upper/data /upper/work
if ! mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work rigroot /newroot; then
  echo "rig: overlay failed; host root read-only with tmpfs on /tmp and /var/tmp"
  mount -o bind /lower /newroot
  mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
  mount -t tmpfs -o mode=1777 tmpfs /newroot/var/tmp
fi
N=/newroot
mount -t proc proc $N/proc
mount -t sysfs sysfs $N/sys
mount -t devtmpfs devtmpfs $N/dev
mkdir -p $N/dev/pts $N/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $N/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $N/dev/shm
mount -t tmpfs -o mode=755 tmpfs $N/run
mkdir -p $N/run/vmctl-rig $N/run/lock
mount -o bind /rigrun $N/run/vmctl-rig

i=0
while [ "$i" -lt "${RIG_NSHARES:-0}" ]; do
  eval "dir=\$RIG_SHARE_$i"
  mkdir -p "$N$dir"
  mount -t 9p -o "$p9,cache=mmap" "share$i" "$N$dir" || fail "cannot mount share $dir"
  i=$((i + 1))
done

ip link set lo up 2>/dev/null
hostname vmctl-rig

# The command's stdio: virtio-serial ports named vmctl.stdin/stdout/stderr when rig.sh made
# them (batch mode), else the serial console as its controlling terminal (tty mode).
port() {
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
  done
  return 1
}
t start
if [ "$RIG_MODE" = tty ]; then
  stty -F /dev/ttyS0 sane
  [ -n "$RIG_ROWS" ] && stty -F /dev/ttyS0 rows "$RIG_ROWS" cols "$RIG_COLS"
  setsid -c chroot $N /usr/bin/env -i /bin/sh /run/vmctl-rig/cmd.sh </dev/ttyS0 >/dev/ttyS0 2>&1
  code=$?
else
  out=$(port vmctl.stdout) || out=/dev/console
  err=$(port vmctl.stderr) || err=$out
  relay=
  if in=$(port vmctl.stdin); then
    # The command reads stdin from a pipe, as it would when spawned directly: Node reads a
    # character device that is not a tty with blocking reads on its thread pool, and then
    # cannot exit while one is pending (it joins the pool's threads at exit).
    mkfifo /stdin.fifo
    cat "$in" >/stdin.fifo &
    relay=$!
    in=/stdin.fifo
  else
    in=/dev/null
  fi
  chroot $N /usr/bin/env -i /bin/sh /run/vmctl-rig/cmd.sh <"$in" >"$out" 2>"$err"
  code=$?
  [ -n "$relay" ] && kill "$relay" 2>/dev/null
fi
t exit
finish "$code"
