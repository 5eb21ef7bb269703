#!/usr/bin/env bash
# Builds the Terraform toolchain for terraform/ and tests/azure into .bin/ (docs/azure.md):
# OpenTofu (tools/tofu), the azurerm provider as a -plugin-dir mirror (tools/azurerm),
# tflint, and checkov in its own venv (.bin/checkov-venv, from the hash-pinned
# tools/checkov/requirements.txt; its dependencies clash with the project's, so it
# never goes into .venv). Called by `make azure-tools` (and so by `make test`).
#
# Idempotent like tools/build.sh: a tool is rebuilt only when its binary is missing or
# its .bin/.NAME.version stamp names another pinned version. .bin/ may be a symlink
# shared by several worktrees, so the whole script runs under a lock and every binary
# is built to a temporary name and renamed into place (a reader never sees half a file).
#
#   tools/build-azure.sh            build what is missing or stale
#   tools/build-azure.sh --print    print the plugin mirror directory and exit
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin="$root/.bin"

TOFU_VERSION=v1.12.6      # keep in step with tools/tofu/go.mod
TFLINT_VERSION=v0.64.0
# The Go proxy serves only a pseudo-version of the provider (commit of 2026-08-24, four
# days after the 5.2.0 release in its CHANGELOG). The mirror labels it 5.2.0 because
# tofu needs a plain semver there; keep in step with tools/azurerm/go.mod.
AZURERM_MODULE_VERSION=v1.44.1-0.20260824201233-fae580791926
AZURERM_LABEL=5.2.0
plugins="$bin/tofu-plugins"
azurerm_dir="$plugins/registry.opentofu.org/hashicorp/azurerm/$AZURERM_LABEL/linux_amd64"

checkov_venv="$bin/checkov-venv"
checkov_pin=$(sha256sum "$here/checkov/requirements.txt" | cut -c1-16)
uv="$bin/uv-venv/bin/uv"

if [ "${1:-}" = "--print" ]; then echo "$plugins"; exit 0; fi
mkdir -p "$bin"

needs() { # needs NAME VERSION [PATH] -> true when the binary is missing or stale
  [ -x "${3:-$bin/$1}" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ] && return 1
  return 0
}
stamp() { echo "$2" >"$bin/.$1.version"; }
say() { printf '[azure-tools] %s\n' "$*" >&2; }
install_bin() { # install_bin TMPFILE DEST: atomic rename, so a concurrent reader sees old or new
  chmod 0755 "$1" && mv -f "$1" "$2"
}

command -v go >/dev/null || { say "Go is not installed; install Go >= 1.26.6 first (https://go.dev/dl)"; exit 1; }
command -v flock >/dev/null || { say "flock (util-linux) is missing; install util-linux"; exit 1; }
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

# One builder at a time across worktrees sharing .bin/ (the provider build needs ~4 GB).
exec 9>"$bin/.azure-tools.lock"
flock 9

if needs tofu "$TOFU_VERSION"; then
  say "building OpenTofu $TOFU_VERSION (first build: about 4-6 min on 2 cores; cached afterwards)"
  start=$SECONDS
  ldflags="-s -w -X github.com/opentofu/opentofu/version.dev=no"
  (cd "$here/tofu" && go build -trimpath -ldflags "$ldflags" -o "$bin/.tofu.tmp" \
    github.com/opentofu/opentofu/cmd/tofu)
  install_bin "$bin/.tofu.tmp" "$bin/tofu"
  stamp tofu "$TOFU_VERSION"
  say "built tofu in $((SECONDS - start)) s"
fi

if needs azurerm "$AZURERM_MODULE_VERSION" "$azurerm_dir/terraform-provider-azurerm_v$AZURERM_LABEL"; then
  say "building terraform-provider-azurerm $AZURERM_MODULE_VERSION as $AZURERM_LABEL" \
    "(first build: about 12-20 min and ~4 GB RAM on 2 cores; cached afterwards)"
  start=$SECONDS
  mkdir -p "$azurerm_dir"
  ldflags="-s -w -X github.com/hashicorp/terraform-provider-azurerm/version.ProviderVersion=$AZURERM_LABEL"
  (cd "$here/azurerm" && go build -trimpath -ldflags "$ldflags" -o "$azurerm_dir/.tmp" \
    github.com/hashicorp/terraform-provider-azurerm)
  install_bin "$azurerm_dir/.tmp" "$azurerm_dir/terraform-provider-azurerm_v$AZURERM_LABEL"
  stamp azurerm "$AZURERM_MODULE_VERSION"
  say "built azurerm provider in $((SECONDS - start)) s"
fi

if needs tflint "$TFLINT_VERSION"; then
  say "installing tflint $TFLINT_VERSION (first build: about 2-4 min)"
  start=$SECONDS
  tmp=$(mktemp -d "$bin/.tflint.XXXXXX")
  GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
    "github.com/terraform-linters/tflint@$TFLINT_VERSION"
  install_bin "$tmp/tflint" "$bin/tflint"
  rmdir "$tmp"
  stamp tflint "$TFLINT_VERSION"
  say "installed tflint in $((SECONDS - start)) s"
fi

if needs checkov "$checkov_pin" "$checkov_venv/bin/checkov"; then
  [ -x "$uv" ] || { say "uv is missing at $uv: run \`make venv\` first"; exit 1; }
  say "installing checkov into $checkov_venv from tools/checkov/requirements.txt (about 1 min)"
  start=$SECONDS
  # Built in place: a half-built venv has no stamp, so the next run starts over.
  rm -f "$bin/.checkov.version"
  rm -rf "$checkov_venv"
  "$uv" venv --quiet --python python3 "$checkov_venv"
  VIRTUAL_ENV="$checkov_venv" "$uv" pip install --quiet --require-hashes \
    -r "$here/checkov/requirements.txt"
  stamp checkov "$checkov_pin"
  say "installed checkov $("$checkov_venv/bin/checkov" --version) in $((SECONDS - start)) s"
fi
