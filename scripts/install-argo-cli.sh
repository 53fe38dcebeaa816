#!/usr/bin/env bash
# Builds the real `argo` CLI from Argo Workflows' Go module, for `argo lint --offline` in tests.
#
# No binary download from the internet is possible on our machines, but the Go module proxy
# serves github.com/argoproj/argo-workflows/v4. The module is read-only in GOMODCACHE and its
# `ui` package embeds `ui/dist/app` (built by yarn in a release, absent from the module), so we
# build from a writable copy with a placeholder `ui/dist/app/index.html`. The CLI's lint does
# not serve the UI; the placeholder only satisfies `//go:embed`.
#
# Idempotent and cached: a binary already at $ARGO_BIN reporting $ARGO_VERSION is kept.
# Environment:
#   ARGO_VERSION  module version (default v4.0.2)
#   ARGO_BIN      where the binary goes (default $HOME/.cache/svcbuild-bed/bin/argo)
#   ARGO_SRC      where the writable source copy goes (default $HOME/.cache/svcbuild-bed/src)
set -euo pipefail

ARGO_VERSION="${ARGO_VERSION:-v4.0.2}"
ARGO_BIN="${ARGO_BIN:-$HOME/.cache/svcbuild-bed/bin/argo}"
ARGO_SRC="${ARGO_SRC:-$HOME/.cache/svcbuild-bed/src}"
MODULE=github.com/argoproj/argo-workflows/v4

log() { echo "install-argo-cli: $*"; }

installed_version() {
  [ -x "$ARGO_BIN" ] && "$ARGO_BIN" version --short 2>/dev/null | awk '{print $2}'
}

# A build outside Argo's git tree reports "<version>+unknown" (no commit to show).
case "$(installed_version || true)" in
  "$ARGO_VERSION" | "$ARGO_VERSION+"*)
    log "argo $ARGO_VERSION already at $ARGO_BIN"
    exit 0
    ;;
esac

command -v go >/dev/null 2>&1 || {
  log "go is not on PATH; install Go >= 1.24 first"
  exit 1
}

log "downloading $MODULE@$ARGO_VERSION"
info="$(go mod download -json "$MODULE@$ARGO_VERSION")"
mod_dir="$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$mod_dir" ] || [ ! -d "$mod_dir" ]; then
  log "go mod download gave no directory:"
  printf '%s\n' "$info" >&2
  exit 1
fi

src="$ARGO_SRC/argo-workflows-$ARGO_VERSION"
if [ ! -f "$src/.copied" ]; then
  log "copying the module to $src (GOMODCACHE is read-only)"
  rm -rf "$src"
  mkdir -p "$src"
  cp -R "$mod_dir/." "$src/"
  chmod -R u+w "$src"
  touch "$src/.copied"
fi

# ui/embed.go: `//go:embed dist/app`. The directory must exist and hold at least one file;
# server/static reads index.html from it, so that is the file we provide.
mkdir -p "$src/ui/dist/app"
if [ ! -f "$src/ui/dist/app/index.html" ]; then
  cat >"$src/ui/dist/app/index.html" <<'HTML'
<!doctype html>
<html lang="en"><head><meta charset="UTF-8"><title>Argo</title><base href="/"></head>
<body>The Argo UI is not part of this build (argo CLI for svcbuild tests).</body></html>
HTML
fi

mkdir -p "$(dirname "$ARGO_BIN")"
log "building argo $ARGO_VERSION (first build downloads its dependencies; this takes minutes)"
(
  cd "$src"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X $MODULE.version=$ARGO_VERSION -X $MODULE.gitTag=$ARGO_VERSION -X $MODULE.gitTreeState=clean -X $MODULE.buildDate=1970-01-01T00:00:00Z" \
    -o "$ARGO_BIN.tmp" ./cmd/argo
)
mv "$ARGO_BIN.tmp" "$ARGO_BIN"
log "installed $("$ARGO_BIN" version --short 2>/dev/null | head -1) at $ARGO_BIN"
