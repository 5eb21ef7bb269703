#!/usr/bin/env bash
# Builds the local platform's Go tools into .bin/ (DESIGN §6): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl and kwok. Called by `make tools`
# (and so by `make test`, `make demo`, `make cluster`). Idempotent: a tool is rebuilt
# only when its binary is missing or was built from another pinned version; the Go
# build cache makes a rebuild after a fresh clone a matter of linking.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin="$root/.bin"
mkdir -p "$bin"

KUBE_VERSION=v1.34.2   # keep in step with tools/k8s/go.mod
ETCD_VERSION=v3.6.16   # keep in step with tools/etcd/go.mod
KWOK_VERSION=v0.7.0

needs() { # needs NAME VERSION -> true when .bin/NAME is missing or stale
  [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ] && return 1
  return 0
}
stamp() { echo "$2" >"$bin/.$1.version"; }
say() { printf '[tools] %s\n' "$*" >&2; }

command -v go >/dev/null || { say "Go is not installed; install Go >= 1.24 first (https://go.dev/dl)"; exit 1; }
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

kube_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
stale=()
for c in "${kube_cmds[@]}"; do needs "$c" "$KUBE_VERSION" && stale+=("$c"); done
if [ ${#stale[@]} -gt 0 ]; then
  say "building ${stale[*]} $KUBE_VERSION from k8s.io/kubernetes (first build: about 5-15 min on 2 cores; cached afterwards)"
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
  pkgs=(); for c in "${stale[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  start=$SECONDS
  (cd "$here/k8s" && go build -trimpath -ldflags "$ldflags" -o "$bin/" "${pkgs[@]}")
  for c in "${stale[@]}"; do stamp "$c" "$KUBE_VERSION"; done
  say "built ${stale[*]} in $((SECONDS - start)) s"
fi

if needs etcd "$ETCD_VERSION"; then
  say "building etcd $ETCD_VERSION (first build: about 1 min)"
  start=$SECONDS
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "$ETCD_VERSION"
  say "built etcd in $((SECONDS - start)) s"
fi

if needs kwok "$KWOK_VERSION"; then
  say "installing kwok $KWOK_VERSION"
  start=$SECONDS
  GOFLAGS= GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  stamp kwok "$KWOK_VERSION"
  say "installed kwok in $((SECONDS - start)) s"
fi
