#!/usr/bin/env bash
# Builds the parts of the svcbuild cluster test bed from their Go modules (issue 7, level 1):
#   $CACHE/bin/etcd            etcd server (bed/etcd: a tiny main calling etcdmain.Main)
#   $CACHE/bin/kube-apiserver  (bed/kube: wrapper module requiring k8s.io/kubernetes)
#   $CACHE/argo-crds/*.yaml    Argo Workflows' full CRDs, copied from its Go module
#
# Idempotent: a step is skipped when its output exists and its stamp (version pins, the wrapper
# module's go.mod/go.sum/sources, the Go version, the build flags) is unchanged. The Go build
# cache and module cache are outside the repository, so rebuilds after a pin change are
# incremental too.
#
# Usage: scripts/bed/build.sh [COMPONENT...]
#   COMPONENT: etcd, argo-crds, or a Kubernetes command (kube-apiserver, kube-controller-manager,
#   kube-scheduler, kubelet, kube-proxy, ...), or pause (level 2: the pod sandbox program of
#   bed/pause, a static binary that node.sh puts into a scratch image). Default: etcd
#   kube-apiserver argo-crds.
#   workflow-controller, argoexec (level 3): Argo's controller and executor, `go install`ed from
#   github.com/argoproj/argo-workflows/v4 at ARGO_VERSION (static, CGO_ENABLED=0).
# Environment:
#   SVCBUILD_BED_CACHE    cache directory (default $HOME/.cache/svcbuild-bed)
#   SVCBUILD_BED_GOCACHE  Go build cache (default $CACHE/go-build: removing $CACHE resets all)
set -euo pipefail

# ---- version pins -------------------------------------------------------------------------
ETCD_VERSION=v3.6.16        # go.etcd.io/etcd/server/v3 (bed/etcd/go.mod)
KUBE_VERSION=v1.34.4        # k8s.io/kubernetes (bed/kube/go.mod; staging modules at v0.34.4)
ARGO_VERSION=v4.0.7         # github.com/argoproj/argo-workflows/v4 (full CRDs)
# -------------------------------------------------------------------------------------------

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${SVCBUILD_BED_CACHE:-$HOME/.cache/svcbuild-bed}"
BIN="$CACHE/bin"
STAMPS="$CACHE/stamps"
mkdir -p "$BIN" "$STAMPS"
export GOCACHE="${SVCBUILD_BED_GOCACHE:-$CACHE/go-build}"

log() { echo "bed/build: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not on PATH (Go >= 1.26 is needed for etcd $ETCD_VERSION)"

GO_VERSION="$(go env GOVERSION)"
LDFLAGS_BASE="-s -w"

# stamp NAME TEXT...: the stamp content for a step.
stamp_text() {
  printf '%s\n' "$@" "go=$GO_VERSION"
}

# up_to_date OUTPUT STAMPNAME STAMPTEXT
up_to_date() {
  [ -e "$1" ] && [ -f "$STAMPS/$2" ] && [ "$(cat "$STAMPS/$2")" = "$3" ]
}

hash_files() { cat "$@" | sha256sum | cut -d' ' -f1; }

timed() {
  local name="$1"; shift
  local t0=$SECONDS
  "$@"
  log "$name: built in $((SECONDS - t0)) s"
}

# Check that the wrapper module pins the same version as this script.
check_pin() {
  local gomod="$1" module="$2" version="$3"
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$module[[:space:]]+$version([[:space:]]|$)" "$gomod" ||
    die "$gomod does not require $module $version (update both the script pins and the module)"
}

build_etcd() {
  local dir="$ROOT/bed/etcd" out="$BIN/etcd"
  check_pin "$dir/go.mod" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  local st
  st="$(stamp_text "etcd=$ETCD_VERSION" "ldflags=$LDFLAGS_BASE" "src=$(hash_files "$dir/go.mod" "$dir/go.sum" "$dir/main.go")")"
  if up_to_date "$out" etcd "$st"; then log "etcd $ETCD_VERSION: cached ($out)"; return; fi
  log "etcd $ETCD_VERSION: building"
  do_build_etcd() {
    (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags="$LDFLAGS_BASE" -o "$out.tmp" .)
    mv "$out.tmp" "$out"
  }
  timed "etcd $ETCD_VERSION" do_build_etcd
  printf '%s' "$st" >"$STAMPS/etcd"
}

build_kube() {
  local cmd="$1" dir="$ROOT/bed/kube" out="$BIN/$1"
  check_pin "$dir/go.mod" k8s.io/kubernetes "$KUBE_VERSION"
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  # What `make` would stamp into a release build (kubectl and the version endpoint read it).
  local pkg
  local ldflags="$LDFLAGS_BASE"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  local st
  st="$(stamp_text "kube=$KUBE_VERSION" "cmd=$cmd" "ldflags=$ldflags" "src=$(hash_files "$dir/go.mod" "$dir/go.sum")")"
  if up_to_date "$out" "$cmd" "$st"; then log "$cmd $KUBE_VERSION: cached ($out)"; return; fi
  log "$cmd $KUBE_VERSION: building (several minutes on 2 cores when cold)"
  do_build_kube() {
    (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" \
      -o "$out.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$out.tmp" "$out"
  }
  timed "$cmd $KUBE_VERSION" do_build_kube
  printf '%s' "$st" >"$STAMPS/$cmd"
}

build_pause() {
  local dir="$ROOT/bed/pause" out="$BIN/pause"
  local st
  st="$(stamp_text "pause" "ldflags=$LDFLAGS_BASE" "src=$(hash_files "$dir/go.mod" "$dir/main.go")")"
  if up_to_date "$out" pause "$st"; then log "pause: cached ($out)"; return; fi
  do_build_pause() {
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags="$LDFLAGS_BASE" -o "$out.tmp" .)
    mv "$out.tmp" "$out"
  }
  timed pause do_build_pause
  printf '%s' "$st" >"$STAMPS/pause"
}

# Argo's commands. `go install MODULE/cmd/NAME@VERSION` would first ask the proxy for the
# module's version list, which it refuses (403), so they are built in a writable copy of the
# module ($CACHE/src/argo-workflows-VERSION, like scripts/install-argo-cli.sh): the module as
# served lacks workflow/executor/osspecific's Linux signal/wait functions (only darwin and
# windows files; `go build ./cmd/argoexec` fails with "undefined: Setpgid"), and our
# bed/argoexec/signal_linux.go is added there (`go build -overlay` refuses files in GOMODCACHE).
argo_module_dir() {
  local info
  info="$(cd / && GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-workflows/v4@$ARGO_VERSION")" ||
    die "go mod download github.com/argoproj/argo-workflows/v4@$ARGO_VERSION failed: $info"
  printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

# Prints the writable source copy, made once per version.
argo_source() {
  local src="$CACHE/src/argo-workflows-$ARGO_VERSION" mod_dir
  if [ ! -f "$src/.copied" ]; then
    mod_dir="$(argo_module_dir)"
    [ -d "$mod_dir/cmd" ] || die "no cmd/ in $mod_dir"
    rm -rf "$src"
    mkdir -p "$src"
    cp -R "$mod_dir/." "$src/"
    chmod -R u+w "$src"
    touch "$src/.copied"
  fi
  local pkg="$src/workflow/executor/osspecific"
  if [ ! -f "$pkg/.svcbuild-signal-linux" ]; then
    [ ! -e "$pkg/signal_linux.go" ] || die "$pkg/signal_linux.go is in the module now: drop bed/argoexec"
    touch "$pkg/.svcbuild-signal-linux"
  fi
  cp "$ROOT/bed/argoexec/signal_linux.go" "$pkg/signal_linux.go"
  echo "$src"
}

build_argo_cmd() {
  local cmd="$1" out="$BIN/$1" module=github.com/argoproj/argo-workflows/v4
  local ldflags="$LDFLAGS_BASE -X $module.version=$ARGO_VERSION -X $module.gitTag=$ARGO_VERSION"
  ldflags+=" -X $module.gitTreeState=clean -X $module.buildDate=1970-01-01T00:00:00Z"
  local st
  st="$(stamp_text "argo=$ARGO_VERSION" "cmd=$cmd" "ldflags=$ldflags" \
    "overlay=$(hash_files "$ROOT/bed/argoexec/signal_linux.go")")"
  if up_to_date "$out" "$cmd" "$st"; then log "$cmd $ARGO_VERSION: cached ($out)"; return; fi
  log "$cmd $ARGO_VERSION: building (minutes when cold)"
  local src
  src="$(argo_source)"
  do_build_argo_cmd() {
    (cd "$src" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" \
      -o "$out.tmp" "./cmd/$cmd")
    mv "$out.tmp" "$out"
  }
  timed "$cmd $ARGO_VERSION" do_build_argo_cmd
  printf '%s' "$st" >"$STAMPS/$cmd"
}

copy_argo_crds() {
  local out="$CACHE/argo-crds"
  local st
  st="$(stamp_text "argo=$ARGO_VERSION" "crds=full")"
  if up_to_date "$out" argo-crds "$st"; then log "argo CRDs $ARGO_VERSION: cached ($out)"; return; fi
  log "argo CRDs $ARGO_VERSION: downloading the module"
  local t0=$SECONDS info mod_dir
  # Outside any module, so the download does not touch a go.mod.
  info="$(cd / && GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-workflows/v4@$ARGO_VERSION")" ||
    die "go mod download github.com/argoproj/argo-workflows/v4@$ARGO_VERSION failed: $info"
  mod_dir="$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [ -d "$mod_dir/manifests/base/crds/full" ] || die "no manifests/base/crds/full in $mod_dir"
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  cp "$mod_dir"/manifests/base/crds/full/argoproj.io_*.yaml "$out.tmp/"
  chmod 0644 "$out.tmp"/*.yaml
  rm -rf "$out"
  mv "$out.tmp" "$out"
  printf '%s' "$st" >"$STAMPS/argo-crds"
  log "argo CRDs $ARGO_VERSION: $(ls "$out" | wc -l) files in $out ($((SECONDS - t0)) s)"
}

# One build of a component at a time per cache (test files may call this concurrently); a
# component that is up to date is never held up by another one being built.
with_lock() {
  local name="$1"; shift
  (
    exec 9>"$CACHE/.lock-$name"
    flock 9
    "$@"
  )
}

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd kube-apiserver argo-crds)

T0=$SECONDS
for c in "${components[@]}"; do
  case "$c" in
    etcd) with_lock etcd build_etcd ;;
    argo-crds) with_lock argo-crds copy_argo_crds ;;
    pause) with_lock pause build_pause ;;
    workflow-controller | argoexec) with_lock "$c" build_argo_cmd "$c" ;;
    kube-* | kubelet | kubectl | kubeadm) with_lock "$c" build_kube "$c" ;;
    *) die "unknown component: $c" ;;
  esac
done
log "done in $((SECONDS - T0)) s (cache: $CACHE)"
