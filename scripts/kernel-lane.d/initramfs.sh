# shellcheck shell=bash
# The guest's root filesystem: busybox, iproute2, nft, dnsmasq, the reference CNI plugins, the
# workspace's executables (stripped, at their host paths: tests find binaries by those),
# shared libraries of whatever is dynamic, the kernel modules in load order, and Docker Engine
# (dockerd, containerd, runc, the 20.10 CLI) when an entry runs the Docker driver's tests.

# copy_exe SRC ROOT: SRC at the same path under ROOT, with its shared libraries.
copy_exe() {
  mkdir -p "$2$(dirname "$1")"
  cp -L "$1" "$2$1"
  copy_libs "$1" "$2"
}

# copy_libs SRC ROOT: the shared libraries SRC loads, at their paths under ROOT.
copy_libs() {
  local src=$1 root=$2 lib
  # ldd fails on static executables: nothing to copy then.
  for lib in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# lane_root ROOT ARTIFACTS MODDIR KVER
lane_root() {
  local root=$1 artifacts=$2 moddir=$3 kver=$4 here applet tool kind a b path ko
  here=$(dirname "${BASH_SOURCE[0]}")
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,lane,proc,sys,dev,run,tmp,var/lib/cni,root}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    # iproute2's ip and the real nft, not busybox's applets.
    case "$applet" in ip|nft|busybox) continue ;; esac
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  ln -sf ../bin/busybox "$root/sbin/init"
  ln -sf /bin/busybox "$root/bin/sh"
  for tool in /usr/sbin/ip /usr/sbin/bridge /usr/sbin/nft /usr/sbin/dnsmasq /usr/lib/cni/*; do
    copy_exe "$tool" "$root"
  done
  # nft and ip read a few files under /etc at run time.
  [ -d /etc/iproute2 ] && cp -r /etc/iproute2 "$root/etc/"
  # dnsmasq (the DHCP tests' server) drops to nobody.
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
  while read -r kind a b path; do
    [ "$kind" = test ] || path=$b
    mkdir -p "$root$(dirname "$path")"
    strip --strip-debug -o "$root$path" "$path"
    # Dynamic ones (none today: the workspace links glibc statically) need their libraries.
    copy_libs "$path" "$root"
  done <"$artifacts"
  grep -q '^test underlay-docker ' "$artifacts" && lane_docker "$root"
  python3 "$here/lane.py" modules "$moddir" "$here/modules" >"$root/lane/modules.order"
  while read -r ko; do
    mkdir -p "$root/lib/modules/$kver/$(dirname "$ko")"
    cp "$moddir/$ko" "$root/lib/modules/$kver/$ko"
  done <"$root/lane/modules.order"
  cp "$here/init" "$root/init"
  chmod +x "$root/init"
}

# lane_docker ROOT: Docker Engine 20.10 as the docker tests start it (private roots, no
# bridge, no iptables), plus the util-linux tools their namespace helper calls with
# options busybox's applets lack (unshare --propagation, umount -R).
lane_docker() {
  local root=$1 tool
  for tool in /usr/sbin/dockerd /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/sbin/runc \
    /usr/bin/docker /usr/bin/nsenter /usr/bin/unshare /usr/bin/mount /usr/bin/umount /usr/bin/tar; do
    copy_exe "$tool" "$root"
  done
  mkdir -p "$root/etc/docker" "$root/run/docker/plugins"
  # dockerd gives containers the host's resolv.conf (none in the guest: no network).
  : >"$root/etc/resolv.conf"
}
