#!/usr/bin/env bash
# Builds the tracecar container image with buildah, from a Debian bookworm base made here with
# debootstrap (no registry is needed, only the Debian mirror).
#
# Usage: scripts/image.sh [--binary PATH] [--tag NAME] [--print-env]
#   --binary PATH   the tracecar executable to put in the image (default: $TRACECAR_BIN, else
#                   build/gcc/proxy/tracecar); it must be built on bookworm, like the base
#   --tag NAME      the image name (default: localhost/tracecar:<version>)
#   --print-env     print the environment that points buildah at this script's configuration
#                   and storage (eval it to run buildah by hand), and exit
#
# Environment: TRACECAR_IMAGE_WORK (default /tmp/tracecar-image) holds the containers.conf,
# the storage and the base root filesystem; DEBIAN_MIRROR (default http://deb.debian.org/debian).
#
# The base holds exactly the Debian packages the binary links against (found with ldd and
# dpkg -S), plus iptables and ca-certificates; it is tagged with a hash of that list and made
# only when missing. Needs root (debootstrap), buildah and debootstrap.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${TRACECAR_IMAGE_WORK:-/tmp/tracecar-image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
binary=${TRACECAR_BIN:-$repo/build/gcc/proxy/tracecar}
tag=""
print_env=0

while (($#)); do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --print-env) print_env=1; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

# buildah's configuration and storage live under $work, never in the machine's /etc: runc as
# the runtime, ulimits this machine allows, cgroupfs (no systemd), vfs storage under /tmp.
mkdir -p "$work"
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
export CONTAINERS_CONF=$work/containers.conf
export CONTAINERS_STORAGE_CONF=$work/storage.conf
export BUILDAH_ISOLATION=oci

if ((print_env)); then
  echo "export CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF BUILDAH_ISOLATION=oci"
  exit 0
fi

[[ $(id -u) -eq 0 ]] || { echo "image.sh: debootstrap and buildah need root here" >&2; exit 1; }
# The image tools are installed here, not by scripts/install-deps.sh: only this script needs them.
missing=()
for p in buildah runc debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "image.sh: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { echo "image.sh: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi
for tool in buildah debootstrap ldd dpkg; do
  command -v "$tool" >/dev/null || { echo "image.sh: $tool not found" >&2; exit 1; }
done
[[ -x $binary ]] || { echo "image.sh: no tracecar binary at $binary (build it, or pass --binary)" >&2; exit 1; }

version=$("$binary" --version | awk '{print $2}')
tag=${tag:-localhost/tracecar:$version}

# The packages that provide the shared libraries the binary needs.
mapfile -t libs < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3}')
packages=$(for lib in "${libs[@]}"; do
  dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true
done | cut -d: -f1 | sort -u | grep -v -x -e libc6 -e libgcc-s1 | tr '\n' ',')
packages="${packages}iptables,ca-certificates"
base_tag=localhost/tracecar-base:bookworm-$(printf '%s' "$packages" | sha256sum | cut -c1-12)

if ! buildah images --quiet "$base_tag" >/dev/null 2>&1; then
  echo "image.sh: making the base $base_tag with debootstrap (a few minutes)" >&2
  rootfs=$work/rootfs
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || {
    echo "image.sh: debootstrap failed; see $work/debootstrap.log" >&2
    tail -5 "$work/debootstrap.log" >&2
    exit 1
  }
  # Only what a running image needs: no package lists, caches, documentation or locales.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*
  tar -C "$rootfs" -cf "$work/rootfs.tar" .
  container=$(buildah from scratch)
  buildah add "$container" "$work/rootfs.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/sh "$container"
  buildah commit --quiet --rm "$container" "$base_tag" >/dev/null
  rm -rf "$rootfs" "$work/rootfs.tar"
fi

context=$(mktemp -d "$work/context.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/tracecar"
strip --strip-debug "$context/tracecar" 2>/dev/null || true
buildah bud --quiet --network host --layers=false -f "$repo/Containerfile" \
  --build-arg BASE="$base_tag" --build-arg VERSION="$version" -t "$tag" "$context" >/dev/null
echo "$tag"
