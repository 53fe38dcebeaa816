#!/usr/bin/env bash
# Builds Trivy from its Go module (through the Go module proxy; no binary download) into a
# cache directory outside the repository, and prints the binary's path on its last line.
#
#   scripts/install-trivy.sh            # -> ${SVCBUILD_TOOLS:-$HOME/.cache/svcbuild-tools}/bin/trivy
#
# Pinned version: v0.74.0 (TRIVY_VERSION). It is the only v0.74 patch release the module
# proxy serves here, and it is far from v0.69.4, the compromised release that must never be
# installed (the script refuses it even when asked).
#
# Idempotent: a binary already in the cache that reports the pinned version is kept, so the
# long build (several minutes on 2 cores) happens once per machine.
# Environment: SVCBUILD_TOOLS (cache dir), TRIVY_VERSION (default v0.74.0).
set -euo pipefail

TRIVY_VERSION="${TRIVY_VERSION:-v0.74.0}"
TOOLS="${SVCBUILD_TOOLS:-$HOME/.cache/svcbuild-tools}"
BIN="$TOOLS/bin"
TRIVY="$BIN/trivy"

log() { echo "install-trivy: $*" >&2; }

case "$TRIVY_VERSION" in
  v0.69.4 | 0.69.4)
    log "refusing $TRIVY_VERSION: it is a known malicious release"
    exit 1
    ;;
  v*) ;;
  *)
    log "TRIVY_VERSION must look like vX.Y.Z, got $TRIVY_VERSION"
    exit 1
    ;;
esac

want="${TRIVY_VERSION#v}"
if [ -x "$TRIVY" ] && "$TRIVY" --version 2>/dev/null | grep -q "^Version: ${want}\$"; then
  log "trivy $want already built at $TRIVY"
  echo "$TRIVY"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "go is required to build trivy"
  exit 1
fi

mkdir -p "$BIN"
log "building trivy $TRIVY_VERSION from its Go module into $BIN (takes minutes)"
# go install of a pinned module version: the proxy and sum database check its content.
# -ldflags sets the version string `trivy --version` prints (the cache check above reads it).
GOBIN="$BIN" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" \
  go install -trimpath \
  -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${want}" \
  "github.com/aquasecurity/trivy/cmd/trivy@${TRIVY_VERSION}"

if ! "$TRIVY" --version 2>/dev/null | grep -q "^Version: ${want}\$"; then
  log "built $TRIVY but it does not report version $want:"
  "$TRIVY" --version >&2 || true
  exit 1
fi
log "built $("$TRIVY" --version | head -1) at $TRIVY"
echo "$TRIVY"
