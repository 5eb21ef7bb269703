#!/usr/bin/env bash
# Builds the runtime OCI images with buildah, no Docker daemon (`make images`):
#   1. the Python base (tools/images/base.sh: debootstrap, cached by recipe hash);
#   2. a wheelhouse of every runtime dependency pinned by uv.lock (pip download once;
#      images install from it offline, so no compiler or network inside builds);
#   3. a staged build context with only the runtime packages (never devtools/ or
#      tests/), and one image per Dockerfile, tagged localhost/spy-<name>:<version>;
#   4. OCI archives in .local/images/spy-<name>-<version>.oci.tar.
# An image is rebuilt only when its inputs (Dockerfile, sources, pins, base) changed:
# their hash is a label on the image; buildah's layer cache (--layers, in its global
# storage) reuses the dependency layer when only sources changed.
# IMAGES="operator detector backend bot" by default (IMAGES="bot" builds one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
say() { printf '[images] %s\n' "$*" >&2; }
for t in buildah debootstrap; do command -v $t >/dev/null || { say "$t missing: run make delivery-apt"; exit 1; }; done

IMAGES=${IMAGES:-operator detector backend bot}
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
out="$root/.local/images"
ctx="$out/context"
mkdir -p "$ctx/wheels"

declare -A DOCKERFILE=(
  [operator]=operator/Dockerfile
  [detector]=workloads/detector/Dockerfile
  [backend]=workloads/backend/Dockerfile
  [bot]=workloads/bot/Dockerfile
)
declare -A SOURCES=(
  [operator]="operator/spy_operator"
  [detector]="workloads/analytics/spy_analytics workloads/runtime/spy_runtime workloads/detector/spy_detector"
  [backend]="workloads/analytics/spy_analytics workloads/backend/spy_backend dashboard"
  [bot]="workloads/runtime/spy_runtime workloads/bot/spy_bot"
)

# The base's tag names its recipe (suite + packages), so editing comments rebuilds nothing.
BASE_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,ca-certificates
base_tag="$BASE_SUITE-$(echo "$BASE_SUITE $BASE_PACKAGES" | sha256sum | cut -c1-12)"
bash tools/images/base.sh "$base_tag" "$BASE_SUITE" "$BASE_PACKAGES"
BASE="localhost/spy-python-base:$base_tag"

# Wheelhouse: refreshed only when the runtime pins change.
uv="$root/.bin/uv-venv/bin/uv"
pins=$(mktemp)
"$uv" export --frozen --no-default-groups --no-emit-project --no-hashes --format requirements-txt \
  --quiet >"$pins"
if ! cmp -s "$pins" "$ctx/wheels/constraints.txt"; then
  say "downloading runtime wheels pinned by uv.lock (PyPI)"
  rm -rf "$ctx/wheels"; mkdir -p "$ctx/wheels"
  "$root/.bin/uv-venv/bin/pip" download --quiet --disable-pip-version-check --only-binary=:all: \
    --no-deps -r "$pins" -d "$ctx/wheels"
  cp "$pins" "$ctx/wheels/constraints.txt"
fi
rm -f "$pins"

for name in $IMAGES; do
  df=${DOCKERFILE[$name]:?unknown image $name}
  image="localhost/spy-$name:$VERSION"
  archive="$out/spy-$name-$VERSION.oci.tar"
  # Stage exactly this image's sources (the Dockerfile COPYs nothing else).
  rm -rf "$ctx/src-$name"; mkdir -p "$ctx/src-$name"
  for src in ${SOURCES[$name]}; do
    mkdir -p "$ctx/src-$name/$(dirname "$src")"
    cp -a "$src" "$ctx/src-$name/$src"
  done
  find "$ctx/src-$name" -name __pycache__ -prune -exec rm -rf {} +
  rm -f "$ctx/src-$name/wheels"; cp -al "$ctx/wheels" "$ctx/src-$name/wheels"
  inputs=$( { echo "$BASE"; cat "$0" "$df" "$ctx/wheels/constraints.txt";
              (cd "$ctx/src-$name" && find . -path ./wheels -prune -o -type f -print | sort | xargs sha256sum); } \
            | sha256sum | cut -c1-16)
  have=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "io.spyoptions.inputs"}}' \
           "$image" 2>/dev/null || true)
  if [ "$have" = "$inputs" ] && [ -f "$archive" ]; then
    say "$image is up to date ($inputs)"
    continue
  fi
  say "building $image from $df"
  start=$SECONDS
  buildah bud --quiet --layers --format docker --isolation chroot --build-arg "BASE=$BASE" \
    --label "io.spyoptions.inputs=$inputs" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.title=spy-$name" \
    -f "$root/$df" -t "$image" "$ctx/src-$name" >/dev/null
  rm -f "$archive"
  buildah push --quiet "$image" "oci-archive:$archive:spy-$name:$VERSION" >/dev/null
  say "built $image in $((SECONDS - start)) s; $(du -h "$archive" | cut -f1) archive"
done
