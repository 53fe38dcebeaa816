#!/usr/bin/env bash
# Installs a pinned schemathesis (the OpenAPI fuzzer, from PyPI) into its own venv and
# prints the path of its `schemathesis` executable (the last line of stdout).
#
#   ${SVCBUILD_TOOLS:-$HOME/.cache/svcbuild-tools}/schemathesis/bin/schemathesis
#
# Uses the host's python3 (`python3 -m venv`) and pip as configured (/etc/pip.conf).
# Idempotent: a venv that already has the pinned version is kept as is.
# Environment: SVCBUILD_TOOLS, SCHEMATHESIS_VERSION (default the pin below), PYTHON.
set -euo pipefail

VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
TOOLS="${SVCBUILD_TOOLS:-$HOME/.cache/svcbuild-tools}"
VENV="$TOOLS/schemathesis"
PYTHON="${PYTHON:-python3}"
EXE="$VENV/bin/schemathesis"

log() { echo "install-schemathesis: $*" >&2; }

installed_version() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null
}

if [ "$(installed_version || true)" = "$VERSION" ] && [ -x "$EXE" ]; then
  log "schemathesis $VERSION already installed in $VENV"
  echo "$EXE"
  exit 0
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  log "$PYTHON is required" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV with $("$PYTHON" --version 2>&1)"
  mkdir -p "$TOOLS"
  "$PYTHON" -m venv "$VENV"
fi

log "installing schemathesis==$VERSION"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"

got="$(installed_version || true)"
if [ "$got" != "$VERSION" ] || [ ! -x "$EXE" ]; then
  log "schemathesis $VERSION did not install (found: ${got:-none})" >&2
  exit 1
fi
log "installed schemathesis $got"
echo "$EXE"
