#!/usr/bin/env bash
# Builds the Python 3.11 base image every runtime image starts FROM (no registry is
# reachable here, so the base is made locally): Debian bookworm minbase with python3
# and python3-venv from debootstrap, imported into buildah's storage as
# localhost/spy-python-base:<tag>. Called by tools/build-images.sh with the tag, the
# suite and the packages; skipped when the image with that tag already exists.
set -euo pipefail
tag=$1        # e.g. bookworm-<hash of suite and packages>
suite=$2      # bookworm
packages=$3   # python3,python3-venv,ca-certificates
image="localhost/spy-python-base:$tag"
say() { printf '[images] %s\n' "$*" >&2; }

if buildah inspect --type image "$image" >/dev/null 2>&1; then
  exit 0
fi
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/spy-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
say "debootstrap $suite minbase + $packages from $mirror (about 1-4 min)"
start=$SECONDS
debootstrap --variant=minbase --include="$packages" \
  "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# Package caches and docs are not needed at run time; apt lists would only age.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"* \
  "$work/rootfs/usr/share/doc" "$work/rootfs/usr/share/man" "$work/rootfs/usr/share/locale"
tar --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .
ctr=$(buildah from scratch)
buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --env LANG=C.UTF-8 --env PYTHONDONTWRITEBYTECODE=1 \
  --label org.opencontainers.image.description="Debian bookworm minbase + Python 3.11 (spyoptions base)" \
  --cmd /usr/bin/python3 "$ctr"
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
say "built $image in $((SECONDS - start)) s"
