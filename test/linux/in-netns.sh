#!/bin/bash
# Runs a command inside a network namespace of its own, with a tap for a guest and an HTTP
# server on the tap's host end; the namespace, tap and server are removed when it ends. The
# command's exit status is this script's. Used by the Linux guest tests (in the KVM rig).
#
#   in-netns.sh TAP HOST_CIDR HTTP_DIR -- CMD [ARG...]
set -uo pipefail
tap=$1 cidr=$2 dir=$3
shift 3
[ "${1:-}" = -- ] && shift
ns=vmctl-lx-$$
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
}
trap cleanup EXIT
set -e
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev "$tap" mode tap vnet_hdr
ip -n "$ns" addr add "$cidr" dev "$tap"
ip -n "$ns" link set "$tap" up
ip netns exec "$ns" python3 -m http.server --bind "${cidr%/*}" --directory "$dir" 8080 >/dev/null 2>&1 &
server=$!
set +e
ip netns exec "$ns" "$@"
exit $?
