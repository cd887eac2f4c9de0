# shellcheck shell=bash
# Debian's kernel for the lane: `apt-get download`, unpacked (never installed) under
# /var/cache/underlay-lane/<package>, with modules.dep made by depmod (the .deb ships
# none). A version unused for a day is pruned, only after the current one is ready.

lane_cache=/var/cache/underlay-lane

# Prints the directory of the unpacked current kernel package.
lane_kernel() {
  local pkg dir tmp
  # UNDERLAY_LANE_KERNEL=linux-image-6.1.0-50-amd64 pins a package (to rerun what a
  # machine with older package lists ran); by default, what linux-image-amd64 names.
  pkg=${UNDERLAY_LANE_KERNEL:-}
  [ -n "$pkg" ] || pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    apt-get update -qq >&2
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  [ -n "$pkg" ] || { echo "kernel-lane: cannot tell Debian's kernel package (apt-cache depends linux-image-amd64)" >&2; return 1; }
  dir=$lane_cache/$pkg
  if [ ! -f "$dir/ready" ]; then
    echo "kernel-lane: fetching $pkg" >&2
    mkdir -p "$lane_cache"
    tmp=$(mktemp -d "$lane_cache/.fetch.XXXXXX")
    # apt's download user cannot write a root-only temp dir: fetch into a world-writable one.
    chmod 0777 "$tmp"
    (cd "$tmp" && apt-get download -q "$pkg" >&2) || { rm -rf "$tmp"; return 1; }
    dpkg-deb -x "$tmp"/*.deb "$tmp/x" && rm -f "$tmp"/*.deb
    depmod -b "$tmp/x" "$(basename "$(ls -d "$tmp"/x/lib/modules/*)")"
    rm -rf "$dir"
    mv "$tmp/x" "$dir" && rmdir "$tmp"
    touch "$dir/ready"
  fi
  touch "$dir/used"
  # Other versions (and half-done fetches) unused for a day go.
  local old stamp
  for old in "$lane_cache"/* "$lane_cache"/.fetch.*; do
    [ -d "$old" ] && [ "$old" != "$dir" ] || continue
    stamp=$old/used
    [ -e "$stamp" ] || stamp=$old
    [ -n "$(find "$stamp" -maxdepth 0 -mtime +0)" ] && rm -rf "$old"
  done
  echo "$dir"
}
