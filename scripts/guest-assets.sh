#!/usr/bin/env bash
# Fetches and builds the Linux assets the tests and the demo boot, into a cache directory
# (default /var/cache/vmctl/assets, or $VMCTL_ASSETS, or --dir DIR; never committed):
#
#   guest/vmlinuz          Debian's cloud kernel (bzImage), resolved through linux-image-cloud-amd64
#   guest/vmlinux          the same kernel uncompressed (ELF with a PVH entry), taken out of the bzImage
#   guest/initramfs.cpio   busybox-static + the cloud kernel's virtio modules; /init prints
#                          VMCTL-GUEST-READY and starts a shell on the console
#   rig/vmlinuz            Debian's generic kernel (linux-image-amd64): kvm_amd, 9p, virtio as modules
#   rig/vmlinux            the same, uncompressed: what the rig boots (PVH; no decompression under TCG)
#   rig/initramfs.cpio     busybox-static + those modules + test/rig/rig-init.sh as /init (the KVM rig)
#   display/initramfs.cpio the guest's image for the generic kernel (rig/vmlinuz), which has DRM:
#                          its virtio modules plus `bochs` for vmm's display; the same /init,
#                          which also starts a shell on tty1 when there is a framebuffer console
#   manifest.json, SHA256SUMS   versions and sha256 of the downloaded .debs and produced files
#
# Idempotent: when the resolved package versions, this script and the rig's init are unchanged
# and the produced files still match SHA256SUMS, it only prints the paths.
#
#   scripts/guest-assets.sh [--dir DIR] [--print] [--cached] [--quiet] [--force]
#     --print   print the paths (KEY=VALUE lines, for eval) without fetching or building;
#               exits 1 when the assets are not there
#     --quiet   no progress messages (the paths are still printed)
#     --cached  take the assets already built when this script and the rig's init are unchanged,
#               without asking apt for newer versions (fast; what test/rig/rig.sh uses)
#     --force   rebuild the initramfs images even when nothing changed
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ASSETS=${VMCTL_ASSETS:-/var/cache/vmctl/assets}
PRINT_ONLY=0 QUIET=0 FORCE=0 CACHED=0
while [ $# -gt 0 ]; do
  case $1 in
    --dir) ASSETS=$2; shift 2 ;;
    --dir=*) ASSETS=${1#--dir=}; shift ;;
    --print) PRINT_ONLY=1; shift ;;
    --quiet|-q) QUIET=1; shift ;;
    --force) FORCE=1; shift ;;
    --cached) CACHED=1; shift ;;
    -h|--help) awk 'NR>1 && /^#/ {sub(/^# ?/, ""); print; next} NR>1 {exit}' "$0"; exit 0 ;;
    *) echo "guest-assets: unknown argument: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$ASSETS" 2>/dev/null || true
ASSETS=$(cd "$ASSETS" 2>/dev/null && pwd || echo "$ASSETS")

# Modules each initramfs carries (names as modprobe knows them); their dependencies are added
# from modules.dep. Anything built into the kernel is skipped.
GUEST_MODULES=(virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio-rng virtio_balloon button evdev)
# The cloud kernel has no DRM at all: a guest on vmm's display boots the generic kernel with the
# guest's modules, the bochs DRM driver (PCI 1234:1111; fbcon comes with its fbdev emulation)
# and virtio-input for the display's tablet.
DISPLAY_MODULES=("${GUEST_MODULES[@]}" virtio_input bochs)
RIG_MODULES=(virtio_pci virtio_console 9pnet_virtio 9p overlay kvm_amd tun)
RIG_INIT=$REPO/test/rig/rig-init.sh
# The recipe: this script and the rig's init. A change rebuilds the images.
RECIPE=$(cat "${BASH_SOURCE[0]}" "$RIG_INIT" 2>/dev/null | sha256sum | cut -d' ' -f1)

log() { [ "$QUIET" = 1 ] || echo "guest-assets: $*" >&2; }
die() { echo "guest-assets: $*" >&2; exit 1; }

print_paths() {
  local rel=''
  [ -f "$ASSETS/manifest.json" ] && rel=$(sed -n 's/^ *"guestKernelRelease": "\(.*\)",\{0,1\}$/\1/p' "$ASSETS/manifest.json")
  local rrel=''
  [ -f "$ASSETS/manifest.json" ] && rrel=$(sed -n 's/^ *"rigKernelRelease": "\(.*\)",\{0,1\}$/\1/p' "$ASSETS/manifest.json")
  cat <<EOF
VMCTL_ASSETS=$ASSETS
GUEST_KERNEL=$ASSETS/guest/vmlinuz
GUEST_VMLINUX=$ASSETS/guest/vmlinux
GUEST_INITRD=$ASSETS/guest/initramfs.cpio
GUEST_KERNEL_RELEASE=$rel
RIG_KERNEL=$ASSETS/rig/vmlinuz
RIG_VMLINUX=$ASSETS/rig/vmlinux
RIG_INITRD=$ASSETS/rig/initramfs.cpio
RIG_KERNEL_RELEASE=$rrel
DISPLAY_KERNEL=$ASSETS/rig/vmlinuz
DISPLAY_INITRD=$ASSETS/display/initramfs.cpio
MANIFEST=$ASSETS/manifest.json
EOF
}

assets_present() {
  local f
  for f in guest/vmlinuz guest/vmlinux guest/initramfs.cpio rig/vmlinuz rig/vmlinux rig/initramfs.cpio \
           display/initramfs.cpio manifest.json SHA256SUMS; do
    [ -s "$ASSETS/$f" ] || return 1
  done
}

if [ "$PRINT_ONLY" = 1 ]; then
  print_paths
  assets_present || { echo "guest-assets: not built yet in $ASSETS (run scripts/guest-assets.sh)" >&2; exit 1; }
  exit 0
fi

if [ "$CACHED" = 1 ] && [ "$FORCE" = 0 ] && assets_present && grep -q "\"recipe\": \"$RECIPE\"" "$ASSETS/manifest.json"; then
  print_paths
  exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (apt-get download, device nodes in the initramfs)"
mkdir -p "$ASSETS"/debs "$ASSETS"/extract
exec 9>"$ASSETS/.lock"
flock 9

# --- tools -------------------------------------------------------------------------------
APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
}
need=()
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
command -v xz >/dev/null || need+=(xz-utils)
command -v lz4 >/dev/null || need+=(lz4)
command -v zstd >/dev/null || need+=(zstd)
command -v sha256sum >/dev/null || need+=(coreutils)
if [ ${#need[@]} -gt 0 ]; then
  apt_update
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# --- resolve versions ----------------------------------------------------------------------
# One apt-cache call per question (each costs ~1 s here): the binary packages the metapackages
# depend on (linux-image-cloud-amd64 -> linux-image-6.1.0-NN-cloud-amd64), then their candidates.
resolve() {
  local deps pol
  deps=$(apt-cache depends --important linux-image-cloud-amd64 linux-image-amd64 2>/dev/null || true)
  GUEST_PKG=$(awk '/^[^ ]/{m=$1} m=="linux-image-cloud-amd64" && $1=="Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}' <<<"$deps")
  RIG_PKG=$(awk '/^[^ ]/{m=$1} m=="linux-image-amd64" && $1=="Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}' <<<"$deps")
  [ -n "$GUEST_PKG" ] && [ -n "$RIG_PKG" ] || return 1
  pol=$(apt-cache policy "$GUEST_PKG" "$RIG_PKG" busybox-static 2>/dev/null || true)
  cand() { awk -v p="$1:" '/^[^ ]/{m=$1} m==p && $1=="Candidate:" && $2!="(none)" {print $2; exit}' <<<"$pol"; }
  GUEST_VER=$(cand "$GUEST_PKG")
  RIG_VER=$(cand "$RIG_PKG")
  BB_VER=$(cand busybox-static)
  [ -n "$GUEST_VER" ] && [ -n "$RIG_VER" ] && [ -n "$BB_VER" ]
}
if ! resolve; then
  apt_update
  resolve || die "cannot resolve linux-image-cloud-amd64, linux-image-amd64 or busybox-static through apt"
fi
BB_PKG=busybox-static
VERSIONS="$GUEST_PKG=$GUEST_VER $RIG_PKG=$RIG_VER $BB_PKG=$BB_VER"
log "guest kernel $GUEST_PKG $GUEST_VER, rig kernel $RIG_PKG $RIG_VER, busybox-static $BB_VER"

if [ "$FORCE" = 0 ] && assets_present && grep -q "\"recipe\": \"$RECIPE\"" "$ASSETS/manifest.json" \
   && grep -q "\"versions\": \"$VERSIONS\"" "$ASSETS/manifest.json" \
   && (cd "$ASSETS" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1); then
  log "up to date"
  print_paths
  exit 0
fi

# --- download ------------------------------------------------------------------------------
# Prints the path of the .deb for PKG=VER in debs/, downloading it when missing, and checks its
# sha256 against the one in apt's (signed) package index.
fetch_deb() {
  local pkg=$1 ver=$2 f want got
  want=$(apt-cache show "$pkg=$ver" 2>/dev/null | sed -n 's/^SHA256: //p' | head -n1)
  for f in "$ASSETS"/debs/"${pkg}"_*.deb; do
    [ -f "$f" ] || continue
    if [ "$(dpkg-deb -f "$f" Package)" = "$pkg" ] && [ "$(dpkg-deb -f "$f" Version)" = "$ver" ]; then
      if [ -z "$want" ] || [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$want" ]; then
        echo "$f"; return 0
      fi
    fi
  done
  log "downloading $pkg $ver"
  (cd "$ASSETS/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) || {
    apt_update
    (cd "$ASSETS/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2)
  }
  for f in "$ASSETS"/debs/"${pkg}"_*.deb; do
    [ -f "$f" ] || continue
    if [ "$(dpkg-deb -f "$f" Version)" = "$ver" ]; then
      got=$(sha256sum <"$f" | cut -d' ' -f1)
      [ -z "$want" ] || [ "$got" = "$want" ] || die "$f: sha256 $got, apt index says $want"
      echo "$f"; return 0
    fi
  done
  die "apt-get download $pkg=$ver left no .deb"
}
GUEST_DEB=$(fetch_deb "$GUEST_PKG" "$GUEST_VER")
RIG_DEB=$(fetch_deb "$RIG_PKG" "$RIG_VER")
BB_DEB=$(fetch_deb "$BB_PKG" "$BB_VER")
# Drop .debs of other versions.
for f in "$ASSETS"/debs/*.deb; do
  case $f in "$GUEST_DEB"|"$RIG_DEB"|"$BB_DEB") ;; *) log "removing old $(basename "$f")"; rm -f "$f" ;; esac
done

# --- extract (kept, so a rebuild of the images does not unpack 400 MB again) -------------
extract() { # deb -> prints the directory
  local deb=$1 d
  d=$ASSETS/extract/$(basename "$deb" .deb)
  if [ ! -f "$d/.done" ]; then
    log "extracting $(basename "$deb")"
    rm -rf "$d"; mkdir -p "$d"
    dpkg -x "$deb" "$d"
    local k
    for k in "$d"/lib/modules/*/; do
      [ -d "$k" ] && depmod -b "$d" "$(basename "$k")"
    done
    touch "$d/.done"
  fi
  echo "$d"
}
GUEST_X=$(extract "$GUEST_DEB")
RIG_X=$(extract "$RIG_DEB")
BB_X=$(extract "$BB_DEB")
for d in "$ASSETS"/extract/*/; do
  case ${d%/} in "$GUEST_X"|"$RIG_X"|"$BB_X") ;; *) rm -rf "$d" ;; esac
done
kernel_release() { basename "$(ls -d "$1"/lib/modules/*/ | head -n1)"; }
GUEST_REL=$(kernel_release "$GUEST_X")
RIG_REL=$(kernel_release "$RIG_X")

# --- initramfs -----------------------------------------------------------------------------
WORK=$(mktemp -d "$ASSETS/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Copies the modules NAMES (and what they need, per modules.dep) of kernel tree X, release REL,
# into the staging root R; writes R/etc/vmctl-modules: their paths, dependencies first.
add_modules() {
  local x=$1 rel=$2 r=$3; shift 3
  local mdir=$x/lib/modules/$rel
  declare -A path_of=() seen=()
  local order=() line mod deps name
  while IFS= read -r line; do
    mod=${line%%:*}
    name=${mod##*/}; name=${name%%.ko*}; name=${name//-/_}
    path_of[$name]=$mod
  done <"$mdir/modules.dep"
  visit() {
    local m=$1 d
    [ -n "${seen[$m]:-}" ] && return 0
    seen[$m]=1
    deps=$(sed -n "s|^${m//./\\.}: *||p" "$mdir/modules.dep")
    # modules.dep lists a module's dependencies nearest-first; load them farthest-first.
    local arr i; read -ra arr <<<"$deps"
    for ((i=${#arr[@]}-1; i>=0; i--)); do visit "${arr[$i]}"; done
    order+=("$m")
  }
  local want key
  for want in "$@"; do
    key=${want//-/_}
    if [ -z "${path_of[$key]:-}" ]; then
      if grep -Eq "/${want//[-_]/[-_]}\.ko" "$mdir/modules.builtin"; then
        log "$rel: $want is built in"; continue
      fi
      die "$rel: no module $want"
    fi
    visit "${path_of[$key]}"
  done
  mkdir -p "$r/lib/modules/$rel" "$r/etc"
  : >"$r/etc/vmctl-modules"
  local m
  for m in "${order[@]}"; do
    mkdir -p "$r/lib/modules/$rel/$(dirname "$m")"
    cp "$mdir/$m" "$r/lib/modules/$rel/$m"
    echo "$m" >>"$r/etc/vmctl-modules"
  done
  cp "$mdir/modules.builtin" "$mdir/modules.order" "$r/lib/modules/$rel/" 2>/dev/null || true
  [ -f "$mdir/modules.builtin.modinfo" ] && cp "$mdir/modules.builtin.modinfo" "$r/lib/modules/$rel/"
  # busybox modprobe reads modules.dep; let it resolve names inside the image too.
  depmod -b "$r" "$rel" 2>/dev/null || true
  MODS_LOADED=$(for m in "${order[@]}"; do b=$(basename "$m"); echo "${b%%.ko*}"; done | paste -sd' ')
}

# The uncompressed kernel (an ELF vmlinux with a PVH entry note) inside a bzImage: the
# payload_offset/payload_length fields of the setup header (boot protocol 2.08+) locate the
# compressed image; its last 4 bytes are the uncompressed size, not part of the stream.
# Booting vmlinux through PVH skips the decompressor, seconds of work under TCG.
extract_vmlinux() {
  local bz=$1 out=$2 sects po pl start magic size
  u() { od -An -t"u$2" -j "$1" -N "$2" "$bz" | tr -d ' \n'; }
  sects=$(u $((0x1f1)) 1); [ "$sects" = 0 ] && sects=4
  po=$(u $((0x248)) 4); pl=$(u $((0x24c)) 4)
  start=$(( (sects + 1) * 512 + po ))
  magic=$(od -An -tx1 -j "$start" -N 4 "$bz" | tr -d ' \n')
  size=$(od -An -tu4 -j $((start + pl - 4)) -N 4 "$bz" | tr -d ' \n')
  local dec
  case $magic in
    fd377a58) dec='xz -dc' ;;
    02214c18|04224d18) dec='lz4 -dc' ;;
    1f8b*) dec='gzip -dc' ;;
    28b52ffd) dec='zstd -dc' ;;
    *) die "$bz: unknown kernel compression (magic $magic)" ;;
  esac
  dd if="$bz" bs=1M iflag=skip_bytes,count_bytes skip="$start" count=$((pl - 4)) status=none | $dec >"$out" || die "$bz: cannot decompress the payload"
  [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || die "$bz: payload is not an ELF"
  [ "$(stat -c %s "$out")" = "$size" ] || die "$bz: payload size $(stat -c %s "$out"), header says $size"
}

# A root with busybox and its applets, /dev/console and the usual mount points.
base_root() {
  local r=$1 a
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,mnt,var/tmp}
  cp "$BB_X/bin/busybox" "$r/bin/busybox"
  for a in $("$r/bin/busybox" --list-full); do
    [ "$a" = bin/busybox ] && continue
    [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
  done
  mknod -m 600 "$r/dev/console" c 5 1
  mknod -m 666 "$r/dev/null" c 1 3
  chmod 1777 "$r/tmp" "$r/var/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
  echo 'root:x:0:' >"$r/etc/group"
}

# Copies the host's PROG (from a Debian package, like everything here) into root R at the same
# path, with the shared libraries it links against.
host_program() {
  local r=$1 prog=$2 lib
  [ -x "$prog" ] || die "$prog is missing (install its Debian package)"
  rm -f "$r$prog"
  install -D -m 755 "$prog" "$r$prog"
  for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
    # the dynamic loader is exec()ed by the kernel: libraries keep their execute bits
    [ -e "$r$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$r$lib"
  done
}

# newc cpio of R into OUT, with fixed owners and times so the same inputs give the same bytes.
pack() {
  local r=$1 out=$2
  find "$r" -exec touch -h -d @0 {} +
  (cd "$r" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --quiet --null -o -H newc -R 0:0 --reproducible) >"$out"
}

# A guest's root in R: busybox, the modules NAMES of kernel tree X (release REL) and what they
# need, mke2fs, acpid and the /init below. The default guest and the display guest share it.
# guest_root R X REL NAMES...
guest_root() {
  local r=$1 x=$2 rel=$3; shift 3
  base_root "$r"
  add_modules "$x" "$rel" "$r" "$@"
  # e2fsprogs' mke2fs: busybox's makes only ext2, and the guest makes ext4
  host_program "$r" /sbin/mke2fs
  ln -sf mke2fs "$r/sbin/mkfs.ext4"
  cp /etc/mke2fs.conf "$r/etc/mke2fs.conf"
  # busybox acpid turns the ACPI power button (an input device through `button` + `evdev`)
  # into the request `poweroff` makes: SIGUSR2 to init.
  mkdir -p "$r/etc/acpi"
  printf 'PWRF power\nPWRB power\n' >"$r/etc/acpid.conf"
  printf '#!/bin/sh\necho "acpid: power button pressed" >/dev/console\nkill -USR2 1\n' >"$r/etc/acpi/power"
  chmod 755 "$r/etc/acpi/power"
  cat >"$r/init" <<'EOF'
#!/bin/sh
# vmctl guest init (built by scripts/guest-assets.sh): mounts, loads the image's modules,
# prints VMCTL-GUEST-READY and starts a shell on the console (and one on tty1 when a
# framebuffer console shows it).
# Like a real init it takes busybox's requests — `poweroff` (SIGUSR2), `reboot` (SIGTERM),
# `halt` (SIGUSR1) — the ACPI power button (through acpid) powers off, and Ctrl-Alt-Del
# reboots. When the shell
# ends the guest powers off (vmctl.exit=reboot on the kernel command line: reboots instead;
# =halt: halts).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
rel=$(uname -r)
while read -r m; do
  insmod "/lib/modules/$rel/$m" || echo "init: insmod $m failed"
done </etc/vmctl-modules
ip link set lo up 2>/dev/null
hostname vmctl-guest
action=
trap 'action=poweroff' USR2
trap 'action=reboot' TERM
trap 'action=halt' USR1
# Ctrl-Alt-Del (the kernel's default: SIGINT to init)
trap 'action=reboot' INT
mkdir -p /var/log /run
ln -sfn /run /var/run
acpid -l /var/log/acpid.log || echo "init: acpid failed"
# A framebuffer (the display image's bochs driver) puts fbcon on the virtual terminals: a
# shell on tty1 too, for whoever types at the screen. It comes back when it exits; the
# guest's life stays with the console's shell.
if [ -c /dev/fb0 ]; then
  (while :; do setsid -c sh -l <>/dev/tty1 >&0 2>&1; sleep 1; done) &
fi
echo VMCTL-GUEST-READY
setsid cttyhack sh -l &
shell=$!
# `wait` returns when the shell ends or when a trapped signal arrives
while [ -z "$action" ] && kill -0 "$shell" 2>/dev/null; do wait "$shell"; done
if [ -z "$action" ]; then
  action=poweroff
  for arg in $(cat /proc/cmdline); do
    case $arg in vmctl.exit=*) action=${arg#vmctl.exit=} ;; esac
  done
fi
echo "init: $action"
kill -TERM -1 2>/dev/null
sleep 1
kill -KILL -1 2>/dev/null
sync
case $action in
  reboot) reboot -f ;;
  halt) halt -f ;;
  *) poweroff -f ;;
esac
while :; do sleep 3600; done
EOF
  chmod 755 "$r/init"
  cat >"$r/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
PS1='guest# '
EOF
}

log "building the guest initramfs ($GUEST_REL)"
guest_root "$WORK/guest-root" "$GUEST_X" "$GUEST_REL" "${GUEST_MODULES[@]}"
GUEST_MODS=$MODS_LOADED

log "building the display initramfs ($RIG_REL)"
guest_root "$WORK/display-root" "$RIG_X" "$RIG_REL" "${DISPLAY_MODULES[@]}"
DISPLAY_MODS=$MODS_LOADED

log "building the rig initramfs ($RIG_REL)"
[ -f "$RIG_INIT" ] || die "missing $RIG_INIT"
R=$WORK/rig-root
base_root "$R"
add_modules "$RIG_X" "$RIG_REL" "$R" "${RIG_MODULES[@]}"
RIG_MODS=$MODS_LOADED
cp "$RIG_INIT" "$R/init"
chmod 755 "$R/init"
mkdir -p "$R/newroot" "$R/lower" "$R/upper"

mkdir -p "$WORK/out/guest" "$WORK/out/rig" "$WORK/out/display"
pack "$WORK/guest-root" "$WORK/out/guest/initramfs.cpio"
pack "$WORK/display-root" "$WORK/out/display/initramfs.cpio"
pack "$R" "$WORK/out/rig/initramfs.cpio"
cp "$GUEST_X/boot/vmlinuz-$GUEST_REL" "$WORK/out/guest/vmlinuz"
cp "$GUEST_X/boot/config-$GUEST_REL" "$WORK/out/guest/config"
cp "$RIG_X/boot/vmlinuz-$RIG_REL" "$WORK/out/rig/vmlinuz"
extract_vmlinux "$WORK/out/guest/vmlinuz" "$WORK/out/guest/vmlinux"
extract_vmlinux "$WORK/out/rig/vmlinuz" "$WORK/out/rig/vmlinux"
cp "$RIG_X/boot/config-$RIG_REL" "$WORK/out/rig/config"

# --- install and record ----------------------------------------------------------------------
rm -rf "$ASSETS/guest" "$ASSETS/rig" "$ASSETS/display"
mv "$WORK/out/guest" "$ASSETS/guest"
mv "$WORK/out/rig" "$ASSETS/rig"
mv "$WORK/out/display" "$ASSETS/display"
cd "$ASSETS"
files=(debs/"$(basename "$GUEST_DEB")" debs/"$(basename "$RIG_DEB")" debs/"$(basename "$BB_DEB")"
       guest/vmlinuz guest/vmlinux guest/initramfs.cpio guest/config
       rig/vmlinuz rig/vmlinux rig/initramfs.cpio rig/config display/initramfs.cpio)
sha256sum "${files[@]}" >SHA256SUMS.new
json_entries() {
  local first=1 sum path
  while read -r sum path; do
    [ $first = 1 ] || printf ',\n'
    first=0
    printf '    { "path": "%s", "sha256": "%s", "size": %s }' "$path" "$sum" "$(stat -c %s "$path")"
  done <SHA256SUMS.new
  printf '\n'
}
words_json() { local w out=''; for w in $1; do out+="${out:+, }\"$w\""; done; printf '[%s]' "$out"; }
{
  printf '{\n'
  printf '  "recipe": "%s",\n' "$RECIPE"
  printf '  "versions": "%s",\n' "$VERSIONS"
  printf '  "built": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf '  "packages": {\n'
  printf '    "%s": "%s",\n' "$GUEST_PKG" "$GUEST_VER" "$RIG_PKG" "$RIG_VER"
  printf '    "%s": "%s"\n' "$BB_PKG" "$BB_VER"
  printf '  },\n'
  printf '  "guestKernelRelease": "%s",\n' "$GUEST_REL"
  printf '  "guestModules": %s,\n' "$(words_json "$GUEST_MODS")"
  printf '  "rigKernelRelease": "%s",\n' "$RIG_REL"
  printf '  "rigModules": %s,\n' "$(words_json "$RIG_MODS")"
  printf '  "displayModules": %s,\n' "$(words_json "$DISPLAY_MODS")"
  printf '  "files": [\n'
  json_entries
  printf '  ]\n}\n'
} >manifest.json.new
mv SHA256SUMS.new SHA256SUMS
mv manifest.json.new manifest.json
log "done"
print_paths
