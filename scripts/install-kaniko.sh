#!/usr/bin/env bash
# Builds the Kaniko executor from its Go module (through the Go module proxy; no binary or
# image download) into a cache directory outside the repository, and prints the binary's
# path on its last stdout line. Progress goes to stderr.
#
#   scripts/install-kaniko.sh     # -> ${SVCBUILD_TOOLS:-$HOME/.cache/svcbuild-tools}/bin/kaniko-executor
#
# Pinned: github.com/chainguard-dev/kaniko v1.25.5 (KANIKO_VERSION), the maintained fork of
# the archived GoogleContainerTools/kaniko. Only ./cmd/executor is built (no warmer, no
# credential helpers: the in-cluster pipeline authenticates with a mounted config.json).
#
# Idempotent: when the binary exists and its stamp file records the same Kaniko version and
# Go toolchain, nothing is rebuilt. Concurrent callers are serialised with flock.
# Environment: SVCBUILD_TOOLS (cache dir), KANIKO_VERSION (default v1.25.5),
#   SVCBUILD_BED_GOCACHE (Go build cache shared with the test bed, so rebuilds are warm).
set -euo pipefail

KANIKO_MODULE="github.com/chainguard-dev/kaniko"
KANIKO_VERSION="${KANIKO_VERSION:-v1.25.5}"
TOOLS="${SVCBUILD_TOOLS:-$HOME/.cache/svcbuild-tools}"
BIN="$TOOLS/bin"
EXECUTOR="$BIN/kaniko-executor"
STAMP="$BIN/.kaniko-executor.stamp"

log() { echo "install-kaniko: $*" >&2; }

case "$KANIKO_VERSION" in
  v[0-9]*.[0-9]*.[0-9]*) ;;
  *)
    log "KANIKO_VERSION must look like vX.Y.Z, got $KANIKO_VERSION"
    exit 1
    ;;
esac

if ! command -v go >/dev/null 2>&1; then
  log "go is required to build the kaniko executor (install Go >= 1.24 and put it on PATH)"
  exit 1
fi
go_version="$(go env GOVERSION)"
want_stamp="$KANIKO_MODULE $KANIKO_VERSION $go_version linux/amd64 cgo=0"

up_to_date() {
  [ -x "$EXECUTOR" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ]
}

if up_to_date; then
  log "kaniko executor $KANIKO_VERSION ($go_version) already built at $EXECUTOR"
  echo "$EXECUTOR"
  exit 0
fi

mkdir -p "$BIN"
# One build at a time per cache directory: a second caller waits, then finds the binary.
exec 9>"$BIN/.install-kaniko.lock"
flock 9
if up_to_date; then
  log "kaniko executor $KANIKO_VERSION was built meanwhile at $EXECUTOR"
  echo "$EXECUTOR"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/install-kaniko.XXXXXX")"
trap 'rm -rf "$work"; rm -f "$EXECUTOR.tmp.$$"' EXIT

# `go install module@version` would also fetch the module's version list, which the proxy
# here refuses (403). Download exactly the pinned version instead (verified against the
# checksum database like any module download) and build from a writable copy of it with the
# module's own go.mod/go.sum (-mod=readonly: no dependency is re-resolved).
log "downloading $KANIKO_MODULE@$KANIKO_VERSION"
src="$(GOFLAGS=-mod=mod go mod download -json "$KANIKO_MODULE@$KANIKO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [ -z "$src" ] || [ ! -f "$src/go.mod" ]; then
  log "could not download $KANIKO_MODULE@$KANIKO_VERSION (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  exit 1
fi
cp -R "$src" "$work/src"
chmod -R u+w "$work/src"

export GOCACHE="${SVCBUILD_BED_GOCACHE:-$HOME/.cache/svcbuild-bed/go-build}"
mkdir -p "$GOCACHE"
log "building $KANIKO_MODULE/cmd/executor $KANIKO_VERSION with $go_version (GOCACHE=$GOCACHE; minutes when cold)"
start=$SECONDS
(
  cd "$work/src"
  # The flags of Kaniko's own Makefile: static, stripped, version stamped into pkg/version.
  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -trimpath -o "$EXECUTOR.tmp.$$" \
    -ldflags "-s -w -X $KANIKO_MODULE/pkg/version.version=$KANIKO_VERSION" \
    ./cmd/executor
) >&2
mv "$EXECUTOR.tmp.$$" "$EXECUTOR"

got="$("$EXECUTOR" version 2>/dev/null || true)"
if ! printf '%s\n' "$got" | grep -q -- "$KANIKO_VERSION"; then
  log "built $EXECUTOR but \`kaniko-executor version\` does not report $KANIKO_VERSION: $got"
  exit 1
fi
printf '%s\n' "$want_stamp" >"$STAMP"
log "built kaniko executor $KANIKO_VERSION in $((SECONDS - start))s at $EXECUTOR ($(du -h "$EXECUTOR" | cut -f1))"
echo "$EXECUTOR"
