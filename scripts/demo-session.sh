#!/usr/bin/env bash
# One vmctl session, as the demo runs it (and test/linux/daemon-linux.test.ts): starts vmctld
# with its state in a temporary directory, defines a domain on the embedded default guest
# (Debian's cloud kernel + the vmctl initramfs), starts it and attaches its serial console
# to this terminal. When the console ends (Ctrl-] detaches, or the guest powers off) the
# domain is shut down through the ACPI power button, and the daemon stops.
# Lines starting with "vmctl-demo:" say what happens.
#
#   demo-session.sh NAME [vmctl create flags...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-demo}
shift || true
# VMCTL_DEMO_DIR: keep the daemon's state (its log, the worker logs) there instead of in a
# temporary directory removed at the end; the tests read it when something goes wrong.
keep=${VMCTL_DEMO_DIR:-}
if [ -n "$keep" ]; then dir=$keep; mkdir -p "$dir"; else dir=$(mktemp -d /tmp/vmctl-demo.XXXXXX); fi
# sockets and pid files stay local (a shared VMCTL_DEMO_DIR may be a file system without them)
run=$(mktemp -d /tmp/vmctl-demo-run.XXXXXX)
daemon=
say() { echo "vmctl-demo: $*"; }
cleanup() {
  if [ -n "$daemon" ]; then
    # workers outlive their daemon by design: end the guest first if it still runs
    vmctl stop "$name" >/dev/null 2>&1
    kill "$daemon" 2>/dev/null
    wait "$daemon" 2>/dev/null
  fi
  [ -n "$keep" ] || rm -rf "$dir"
  rm -rf "$run"
}
trap cleanup EXIT
vmctl() { node "$root/apps/cli/dist/main.js" --socket "$run/vmctld.sock" "$@"; }

node "$root/apps/daemon/dist/server.js" --state-dir "$dir/state" --runtime-dir "$run" --log-level warn 2>"$dir/vmctld.log" &
daemon=$!
for _ in $(seq 1 600); do [ -S "$run/vmctld.sock" ] && break; sleep 0.1; done
[ -S "$run/vmctld.sock" ] || { say "vmctld did not start"; cat "$dir/vmctld.log"; exit 1; }
say "vmctld is up (state in $dir)"

vmctl create "$name" "$@" >/dev/null || exit 1
say "defined $name on the default guest: $(vmctl show "$name" -o json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const d=JSON.parse(s);console.log(`${d.vcpus} vCPUs, ${d.memory_mib} MiB, ${d.boot.kernel}`)})')"
vmctl start "$name" >/dev/null || { cat "$dir/vmctld.log"; exit 1; }
say "$name is running; its serial console follows (Ctrl-] detaches; poweroff in the guest ends it)"
vmctl console "$name"
say "console closed ($?)"
state() { vmctl show "$name" -o json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).state))'; }
case $(state) in
  running | paused)
    start=$(date +%s%N)
    vmctl shutdown "$name" --timeout 120 --wait >/dev/null
    say "shutdown $? in $((($(date +%s%N) - start) / 1000000)) ms"
    ;;
esac
say "state $(state)"
say "events $(timeout 5 node "$root/apps/cli/dist/main.js" --socket "$run/vmctld.sock" events --since 0 --domain "$name" -o json 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s.trim().split("\n").filter(Boolean).map(l=>{const e=JSON.parse(l);return [e.type,e.state,e.reason].filter(Boolean).join(":")}).join(" ")))')"
