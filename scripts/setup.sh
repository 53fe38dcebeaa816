#!/usr/bin/env bash
# Installs everything svcbuild needs on a Debian machine (run as root), idempotently:
# buildah, runc, podman, debootstrap and Debian's docker-registry; Node.js 22 and the npm
# dependencies; helm and kubectl. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(buildah runc podman skopeo umoci apache2-utils containerd conntrack iptables containernetworking-plugins openssl git uidmap fuse-overlayfs debootstrap docker-registry unzip zip curl ca-certificates golang-go)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# golang-go only when no Go toolchain is present (the test suite builds a static example binary).
if command -v go >/dev/null 2>&1; then
  missing=("${missing[@]/golang-go/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "setup: run as root to install system packages" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js 22 comes from the npm package `node` (a devDependency); npm scripts put it first on PATH.
if [ ! -x node_modules/.bin/node ] || [ ! -d node_modules/vitest ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

scripts/install-helm.sh
# Tools the tests build or install once and cache outside the repository (~/.cache):
# schemathesis (PyPI), the argo CLI, etcd and Kubernetes from their Go modules. On a fresh
# machine the Go builds take a while (see scripts/bed/README.md); later runs reuse them.
if [ "${SVCBUILD_SETUP_TOOLS:-1}" = 1 ]; then
  scripts/install-schemathesis.sh >/dev/null
  scripts/install-argo-cli.sh
  scripts/bed/build.sh
  if [ -x scripts/install-trivy.sh ]; then scripts/install-trivy.sh; fi
fi
echo "setup: ready"
