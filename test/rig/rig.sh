#!/usr/bin/env bash
# Runs a command where a real KVM is: directly when this machine's /dev/kvm is hardware-backed,
# else inside the KVM rig (QEMU under TCG with nested AMD-V, booting Debian's generic kernel,
# which loads kvm_amd; the host's root is shared read-only over virtio-9p with a RAM overlay on
# top, so host binaries and this repo work at their host paths). See test/rig/README.md.
#
#   test/rig/rig.sh [options] [--] CMD [ARG...]
#
#   --interactive, -i   the command's stdio is the rig's serial console, on this terminal
#                       (a controlling tty: job control and ^C work). Ctrl-] x quits QEMU.
#   --share DIR         share DIR read-write at the same path (repeatable); writes reach the host
#   --env NAME=VALUE    set a variable for the command (repeatable)
#   --cwd DIR           the command's working directory (default: the current one)
#   --no-stdin, -n      the command's stdin is /dev/null (default: this script's stdin)
#   --timeout SEC       stop the rig after SEC seconds (exit 124)
#   --memory SIZE       rig RAM (default 4G; $VMCTL_RIG_MEMORY)
#   --smp N             rig CPUs (default 1; $VMCTL_RIG_SMP). With 2, QEMU 7.2's emulation of
#                       nested SVM wedges about one Linux boot in 15 (see test/rig/README.md)
#   --verbose, -v       copy the rig's console (kernel, progress markers) to stderr
#   --console-fd N      copy the rig's console to file descriptor N (used by test/rig/rig.ts)
#   --rig / --direct    force the rig / direct execution (default: $VMCTL_RIG=auto|always|never)
#
# For experiments: $VMCTL_RIG_ACCEL (default tcg,thread=multi) and $VMCTL_RIG_CPU (default
# EPYC,+svm,+npt) replace QEMU's -accel and -cpu; $VMCTL_RIG_CMDLINE / $VMCTL_RIG_APPEND the
# rig kernel's command line; $VMCTL_RIG_MONITOR=PATH serves QEMU's monitor on that socket.
#
# In batch mode (the default) the command's stdout and stderr come back on this script's stdout
# and stderr (through virtio-serial ports) and its exit status is this script's. The rig itself
# failing exits 125 with the reason and the console's tail on stderr.
set -euo pipefail

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$RIG_DIR/../.." && pwd)

MODE=batch STDIN=1 VERBOSE=0 CONSOLE_FD='' TIMEOUT=0
MEM=${VMCTL_RIG_MEMORY:-4G} SMP=${VMCTL_RIG_SMP:-1} USE=${VMCTL_RIG:-auto} CWD=$PWD
SHARES=() ENVS=()
usage() { awk 'NR>1 && /^#/ {sub(/^# ?/, ""); print; next} NR>1 {exit}' "${BASH_SOURCE[0]}"; }
while [ $# -gt 0 ]; do
  case $1 in
    -i|--interactive) MODE="tty"; shift ;;
    --share) SHARES+=("$(cd "$2" && pwd)") || { echo "rig: no directory $2" >&2; exit 125; }; shift 2 ;;
    --env) [[ $2 == *=* ]] || { echo "rig: --env wants NAME=VALUE" >&2; exit 125; }; ENVS+=("$2"); shift 2 ;;
    --cwd) CWD=$(cd "$2" && pwd) || { echo "rig: no directory $2" >&2; exit 125; }; shift 2 ;;
    -n|--no-stdin) STDIN=0; shift ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --memory) MEM=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    -v|--verbose) VERBOSE=1; shift ;;
    --console-fd) CONSOLE_FD=$2; shift 2 ;;
    --rig) USE=always; shift ;;
    --direct) USE=never; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "rig: unknown option $1" >&2; exit 125 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { usage >&2; exit 125; }

console() { # a line for whoever reads the console copy
  if [ -n "$CONSOLE_FD" ]; then echo "$*" >&"$CONSOLE_FD"; fi
  if [ "$VERBOSE" = 1 ]; then echo "$*" >&2; fi
}

# The rig is needed when there is no /dev/kvm or when it is PVM (kvm_pvm cannot boot Linux).
needs_rig() {
  case $USE in
    always|1|yes|rig) return 0 ;;
    never|0|no|direct) return 1 ;;
  esac
  [ ! -e /dev/kvm ] || [ -d /sys/module/kvm_pvm ]
}

if ! needs_rig; then
  console "VMCTL-RIG-DIRECT"
  cd "$CWD"
  [ "$STDIN" = 1 ] || exec </dev/null
  if [ "$TIMEOUT" != 0 ]; then exec timeout "$TIMEOUT" env "${ENVS[@]}" "$@"; fi
  exec env "${ENVS[@]}" "$@"
fi

# --- the rig ---------------------------------------------------------------------------------
if ! command -v qemu-system-x86_64 >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "rig: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 125; }
  echo "rig: installing qemu-system-x86" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-system-x86; } >&2
fi
assets=$("$REPO/scripts/guest-assets.sh" --cached --quiet) || { echo "rig: guest assets unavailable" >&2; exit 125; }
RIG_KERNEL=$(sed -n 's/^RIG_VMLINUX=//p' <<<"$assets")
RIG_INITRD=$(sed -n 's/^RIG_INITRD=//p' <<<"$assets")
ASSET_DIR=$(sed -n 's/^VMCTL_ASSETS=//p' <<<"$assets")

RUN=$(mktemp -d "${TMPDIR:-/tmp}/vmctl-rig.XXXXXX")
QPID='' RELAYS=()
cleanup() {
  local p
  [ -n "$QPID" ] && kill "$QPID" 2>/dev/null || true
  for p in "${RELAYS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# Doubles commas, QEMU's escape inside option values.
qe() { printf '%s' "${1//,/,,}"; }
# Single-quotes a word for sh.
q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

{
  echo "RIG_MODE=$MODE"
  echo "RIG_NSHARES=${#SHARES[@]}"
  for i in "${!SHARES[@]}"; do echo "RIG_SHARE_$i=$(q "${SHARES[$i]}")"; done
  if [ "$MODE" = tty ] && [ -t 0 ]; then
    read -r rows cols < <(stty size 2>/dev/null || echo "")
    [ "${rows:-0}" -gt 0 ] 2>/dev/null && echo "RIG_ROWS=$rows RIG_COLS=$cols"
  fi
} >"$RUN/rig.conf"

# The command, as a script for the host's /bin/sh inside the rig: a clean environment (a few
# host variables, the asset paths, --env), the working directory, then exec.
{
  echo "# written by test/rig/rig.sh"
  for name in PATH HOME USER LOGNAME LANG LC_ALL TZ TERM CI; do
    [ -n "${!name:-}" ] && echo "export $(q "$name=${!name}")"
  done
  while IFS='=' read -r name _; do
    [[ $name == VMCTL_* ]] && [ "$name" != VMCTL_RIG ] && echo "export $(q "$name=${!name}")"
  done < <(env)
  echo "export $(q "VMCTL_ASSETS=$ASSET_DIR") VMCTL_IN_RIG=1"
  for e in "${ENVS[@]}"; do echo "export $(q "$e")"; done
  echo "cd $(q "$CWD") || exit 126"
  printf 'exec'
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  printf '\n'
} >"$RUN/cmd.sh"

# Kernel arguments, each measured under TCG here: pci=noacpi skips ACPI interrupt-link setup
# (~1 s when virtio_pci loads); rodata=off skips the W+X page-table walk; cryptomgr.notests
# skips crypto self-tests; tsc=reliable no_timer_check skip clocksource checks.
CMDLINE="console=ttyS0 quiet loglevel=3 panic=-1 tsc=reliable no_timer_check 8250.nr_uarts=1"
CMDLINE+=" pci=noacpi rodata=off cryptomgr.notests mitigations=off"
args=(
  -accel "${VMCTL_RIG_ACCEL:-tcg,thread=multi}" -M pc -cpu "${VMCTL_RIG_CPU:-EPYC,+svm,+npt}" -m "$MEM" -smp "$SMP"
  -nodefaults -no-user-config -no-reboot -display none
  -kernel "$RIG_KERNEL" -initrd "$RIG_INITRD"
  -append "${VMCTL_RIG_CMDLINE:-$CMDLINE} ${VMCTL_RIG_APPEND:-}"
  -fsdev local,id=host,path=/,security_model=none,readonly=on,multidevs=remap
  -device "virtio-9p-pci,fsdev=host,mount_tag=host"
  -fsdev "local,id=run,path=$(qe "$RUN"),security_model=none"
  -device "virtio-9p-pci,fsdev=run,mount_tag=run"
)
# A QEMU monitor for post-mortems of a wedged rig (`info registers -a`, `info lapic`).
if [ -n "${VMCTL_RIG_MONITOR:-}" ]; then args+=(-monitor "unix:$VMCTL_RIG_MONITOR,server=on,wait=off"); fi
for i in "${!SHARES[@]}"; do
  args+=(-fsdev "local,id=share$i,path=$(qe "${SHARES[$i]}"),security_model=none,multidevs=remap"
         -device "virtio-9p-pci,fsdev=share$i,mount_tag=share$i")
done

# Relays between FIFOs QEMU opens and this script's descriptors: QEMU cannot reopen sockets
# (Node's stdio pipes) through /dev/fd, so cat carries the bytes.
mkfifo "$RUN/console.fifo"
if [ -n "$CONSOLE_FD" ] && [ "$VERBOSE" = 1 ]; then
  tee "$RUN/console.log" <"$RUN/console.fifo" | tee /dev/fd/"$CONSOLE_FD" >&2 &
elif [ -n "$CONSOLE_FD" ]; then
  tee "$RUN/console.log" <"$RUN/console.fifo" >&"$CONSOLE_FD" &
elif [ "$VERBOSE" = 1 ] && [ "$MODE" = batch ]; then
  tee "$RUN/console.log" <"$RUN/console.fifo" >&2 &
else
  cat <"$RUN/console.fifo" >"$RUN/console.log" &
fi
RELAYS+=($!)
if [ "$MODE" = tty ]; then
  # The console is the command's terminal: QEMU's stdio, raw. The mux escape is Ctrl-]
  # (not Ctrl-A, which the VMMs inside use).
  args+=(-chardev stdio,id=con,mux=on,signal=off,logfile="$(qe "$RUN/console.fifo")" -serial chardev:con -echr 0x1d)
else
  args+=(-chardev "file,id=con,path=$(qe "$RUN/console.fifo")" -serial chardev:con
         -device "virtio-serial-pci,id=vser,max_ports=4")
  mkfifo "$RUN/stdout.fifo" "$RUN/stderr.fifo"
  cat <"$RUN/stdout.fifo" &
  RELAYS+=($!)
  cat <"$RUN/stderr.fifo" >&2 &
  RELAYS+=($!)
  args+=(-chardev "file,id=cout,path=$(qe "$RUN/stdout.fifo")" -device virtserialport,bus=vser.0,nr=1,chardev=cout,name=vmctl.stdout
         -chardev "file,id=cerr,path=$(qe "$RUN/stderr.fifo")" -device virtserialport,bus=vser.0,nr=2,chardev=cerr,name=vmctl.stderr)
  if [ "$STDIN" = 1 ]; then
    # QEMU's own stdin feeds the port; its end of file closes the port, which the command
    # reads as end of file.
    args+=(-chardev stdio,id=cin -device virtserialport,bus=vser.0,nr=3,chardev=cin,name=vmctl.stdin)
  fi
fi

console "VMCTL-RIG-QEMU $(date +%s.%N)"
runner=()
if [ "$TIMEOUT" != 0 ]; then runner=(timeout --foreground "$TIMEOUT"); fi
if [ "$MODE" = tty ]; then
  "${runner[@]}" qemu-system-x86_64 "${args[@]}" 2>"$RUN/qemu.log" <&0 &
else
  if [ "$STDIN" = 1 ]; then
    "${runner[@]}" qemu-system-x86_64 "${args[@]}" 2>"$RUN/qemu.log" <&0 >/dev/null &
  else
    "${runner[@]}" qemu-system-x86_64 "${args[@]}" 2>"$RUN/qemu.log" </dev/null >/dev/null &
  fi
fi
QPID=$!
qstatus=0
wait "$QPID" || qstatus=$?
QPID=''
# The relays end when QEMU closes the FIFOs; one QEMU never opened (it failed early) is
# opened and closed here so its relay sees end of file.
for f in "$RUN"/*.fifo; do : 1<>"$f"; done
for p in "${RELAYS[@]}"; do wait "$p" 2>/dev/null || true; done
RELAYS=()

status=$(cat "$RUN/status" 2>/dev/null || true)
tail_console() {
  echo "rig: --- console (last 40 lines) ---" >&2
  tail -n 40 "$RUN/console.log" >&2 2>/dev/null || true
  if [ -s "$RUN/qemu.log" ]; then
    echo "rig: --- qemu stderr ---" >&2
    grep -v 'TCG doesn.t support requested feature' "$RUN/qemu.log" | tail -n 20 >&2 || true
  fi
}
case $status in
  "exit "*)
    code=${status#exit }
    console "VMCTL-RIG-RESULT exit $code"
    exit "$code" ;;
  "error "*)
    echo "rig: ${status#error }" >&2
    console "VMCTL-RIG-RESULT error ${status#error }"
    tail_console
    exit 125 ;;
esac
if [ "$TIMEOUT" != 0 ] && [ "$qstatus" = 124 ]; then
  echo "rig: timed out after ${TIMEOUT}s" >&2
  console "VMCTL-RIG-RESULT timeout"
  tail_console
  exit 124
fi
echo "rig: QEMU exited (status $qstatus) without the command's status" >&2
console "VMCTL-RIG-RESULT error qemu exited $qstatus"
tail_console
exit 125
