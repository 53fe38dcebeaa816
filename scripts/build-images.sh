#!/usr/bin/env bash
# Builds the two images the in-cluster (Argo) pipeline runs, from source on this machine,
# and pushes them to a registry:
#
#   <registry>/<namespace>/kaniko-executor:v1.25.5   images/kaniko/Dockerfile
#   <registry>/<namespace>/svcbuild:<package.json version>   images/svcbuild/Dockerfile
#
# usage: scripts/build-images.sh [--registry HOST[:PORT]] [--namespace NS] [--plain-http]
#                                [--tls-verify=false] [--base REF@DIGEST] [kaniko|svcbuild|all]
#
#   --registry HOST[:PORT]  where to push (default: $SVCBUILD_REGISTRY, else 127.0.0.1:5000)
#   --namespace NS          repository prefix (default: svcbuild, svcbuild's registry.namespace)
#   --plain-http            talk http:// to the registry (automatic for loopback hosts; also
#                           SVCBUILD_REGISTRY_PLAIN_HTTP=true)
#   --tls-verify=false      https:// without certificate verification
#   --base REF@DIGEST       the svcbuild image's base (default: `svcbuild base build node-22`
#                           against the same registry; svcbuild itself only speaks plain HTTP
#                           to loopback registries, so pass --base for a plain-HTTP remote one)
#
# Prints one line per image on stdout: <ref>@<digest>. Progress goes to stderr.
# Each image carries the label io.svcbuild.input-hash: the sha256 of its staged build context
# (Dockerfile included) and build arguments. When the registry already holds the tag with the
# same hash, nothing is built or pushed, so a second run only re-stages and compares.
#
# SVCBUILD_IMAGES_KEEP_CONTEXT=DIR keeps a copy of each staged context in DIR/<image> (to
# see what went into an image, or why its input hash changed).
#
# Runs, as needed (all idempotent): scripts/install-kaniko.sh, scripts/install-trivy.sh,
# scripts/install-helm.sh, and `svcbuild base build node-22` (the svcbuild image's base,
# pushed to the same registry).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The project's Node 22 (the npm package `node`, a devDependency) before any system node.
export PATH="$ROOT/node_modules/.bin:$PATH"

# Bumped when this script changes what it puts in an image without changing the context.
RECIPE=1
KANIKO_VERSION=v1.25.5
HASH_LABEL=io.svcbuild.input-hash

log() { echo "build-images: $*" >&2; }
die() {
  echo "build-images: error: $*" >&2
  exit 1
}
usage() {
  local text
  text="$(sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//')"
  if [ "${1:-2}" = 0 ]; then echo "$text"; else echo "$text" >&2; fi
  exit "${1:-2}"
}

registry="${SVCBUILD_REGISTRY:-127.0.0.1:5000}"
namespace=svcbuild
plain_http="${SVCBUILD_REGISTRY_PLAIN_HTTP:-false}"
tls_verify=true
base=
target=all
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) [ $# -ge 2 ] || die "--registry needs HOST[:PORT]"; registry="$2"; shift 2 ;;
    --registry=*) registry="${1#*=}"; shift ;;
    --namespace) [ $# -ge 2 ] || die "--namespace needs a value"; namespace="$2"; shift 2 ;;
    --namespace=*) namespace="${1#*=}"; shift ;;
    --plain-http) plain_http=true; shift ;;
    --base) [ $# -ge 2 ] || die "--base needs REF@sha256:DIGEST"; base="$2"; shift 2 ;;
    --base=*) base="${1#*=}"; shift ;;
    --tls-verify=false) tls_verify=false; shift ;;
    --tls-verify=true | --tls-verify) tls_verify=true; shift ;;
    -h | --help) usage 0 ;;
    kaniko | svcbuild | all) target="$1"; shift ;;
    *) echo "build-images: unknown argument: $1" >&2; usage 2 ;;
  esac
done
case "$plain_http" in true | 1 | yes) plain_http=true ;; *) plain_http=false ;; esac
[ -n "$registry" ] || die "--registry is empty"
[ -z "$base" ] || [[ "$base" == *@sha256:* ]] || die "--base must name the image by digest (REF@sha256:...), got $base"
[[ "$registry" != */* ]] || die "--registry is HOST[:PORT] only, got $registry (the repository prefix is --namespace)"
[[ "$namespace" =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]] ||
  die "--namespace must be lower-case path components, got $namespace"

# Loopback registries are plain HTTP, as in svcbuild's own config (registry.plainHttp).
reg_name="${registry%:*}"
[[ "$registry" == \[*\]* ]] && reg_name="${registry%%]*}" && reg_name="${reg_name#[}"
case "$reg_name" in
  localhost | ::1 | 127.*) plain_http=true ;;
esac
insecure=false
if [ "$plain_http" = true ] || [ "$tls_verify" = false ]; then insecure=true; fi
tls_flag=()
[ "$insecure" = true ] && tls_flag=(--tls-verify=false)
scheme=https
[ "$plain_http" = true ] && scheme=http

for tool in buildah skopeo curl jq tar sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required (apt-get install $tool)"
done
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
[ "$node_major" -ge 22 ] || die "node >= 22 is required (run npm ci in $ROOT so node_modules/.bin/node exists)"

# The registry must answer /v2/ (200, or 401 when it wants credentials).
curl_flags=(-sS -o /dev/null -w '%{http_code}' --max-time 10)
[ "$tls_verify" = false ] && curl_flags+=(-k)
code="$(curl "${curl_flags[@]}" "$scheme://$registry/v2/" 2>/dev/null || true)"
case "$code" in
  200 | 401) ;;
  *)
    if [ -z "$code" ] || [ "$code" = 000 ]; then
      msg="registry $registry does not answer at $scheme://$registry/v2/ (no connection)"
    else
      msg="registry $registry answers $scheme://$registry/v2/ with HTTP $code, not 200/401"
    fi
    if [ "$scheme" = https ]; then
      msg="$msg; if it speaks plain HTTP pass --plain-http, if its certificate is not trusted pass --tls-verify=false"
    fi
    die "$msg; start one with \`node bin/svcbuild.js registry start\` or pass --registry HOST:PORT"
    ;;
esac

tmp="$(mktemp -d "${TMPDIR:-/tmp}/build-images.XXXXXX")"
cleanup() {
  local rc=$?
  rm -rf "$tmp"
  [ $rc -eq 0 ] || log "failed (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# sha256 over a directory tree: names, modes, symlink targets and contents (not owners, not
# times), plus extra strings (build arguments).
tree_hash() {
  local dir="$1"
  shift
  {
    printf 'recipe %s\n' "$RECIPE"
    printf 'arg %s\n' "$@"
    tar -C "$dir" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - .
  } | sha256sum | cut -d' ' -f1
}

# Prints ref@digest and returns 0 when the registry has $ref labelled with $hash.
already_pushed() {
  local ref="$1" hash="$2" json have digest
  json="$(skopeo inspect "${tls_flag[@]}" --retry-times 2 "docker://$ref" 2>/dev/null)" || return 1
  have="$(jq -r --arg l "$HASH_LABEL" '.Labels[$l] // ""' <<<"$json")"
  digest="$(jq -r '.Digest // ""' <<<"$json")"
  if [ "$have" = "$hash" ] && [ -n "$digest" ]; then
    echo "$ref@$digest"
    return 0
  fi
  [ -n "$have" ] && log "$ref has input hash ${have:0:12}, want ${hash:0:12}: rebuilding"
  return 1
}

# build_and_push NAME REF CONTEXT HASH [buildah build args...]: prints ref@digest.
build_and_push() {
  local name="$1" ref="$2" ctx="$3" hash="$4" start digest
  shift 4
  if [ -n "${SVCBUILD_IMAGES_KEEP_CONTEXT:-}" ]; then
    rm -rf "${SVCBUILD_IMAGES_KEEP_CONTEXT:?}/$name"
    mkdir -p "$SVCBUILD_IMAGES_KEEP_CONTEXT"
    cp -a "$ctx" "$SVCBUILD_IMAGES_KEEP_CONTEXT/$name"
  fi
  if already_pushed "$ref" "$hash"; then
    log "$name: $ref is up to date (input hash ${hash:0:12}), skipping build and push"
    return 0
  fi
  start=$SECONDS
  log "$name: building $ref (input hash ${hash:0:12})"
  # --timestamp 0: file and image times fixed, so equal inputs give equal layers.
  # --force-rm: no working container is left behind, even when a step fails.
  buildah build --isolation chroot --layers --force-rm --timestamp 0 "${tls_flag[@]}" \
    --label "$HASH_LABEL=$hash" -f "$ctx/Dockerfile" -t "$ref" "$@" "$ctx" >&2 ||
    die "$name: buildah build failed (see above)"
  log "$name: built in $((SECONDS - start))s; pushing to $registry"
  buildah push "${tls_flag[@]}" --digestfile "$tmp/$name.digest" "$ref" "docker://$ref" >&2 ||
    die "$name: push of $ref failed (is $registry writable? credentials go in \${XDG_RUNTIME_DIR}/containers/auth.json via \`buildah login\`)"
  digest="$(cat "$tmp/$name.digest")"
  log "$name: pushed $ref@$digest ($((SECONDS - start))s)"
  echo "$ref@$digest"
}

build_kaniko() {
  local exe ctx hash ref
  exe="$("$ROOT/scripts/install-kaniko.sh" | tail -n 1)"
  [ -x "$exe" ] || die "scripts/install-kaniko.sh did not produce an executable ($exe)"
  ctx="$tmp/kaniko"
  mkdir -p "$ctx/rootfs/kaniko/ssl/certs" "$ctx/rootfs/kaniko/.docker" "$ctx/rootfs/etc" \
    "$ctx/rootfs/tmp" "$ctx/rootfs/workspace"
  [ -f /etc/ssl/certs/ca-certificates.crt ] ||
    die "/etc/ssl/certs/ca-certificates.crt is missing (apt-get install ca-certificates)"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/kaniko/ssl/certs/ca-certificates.crt"
  install -m 0644 "$ROOT/images/kaniko/docker-config.json" "$ctx/rootfs/kaniko/.docker/config.json"
  install -m 0644 "$ROOT/images/kaniko/nsswitch.conf" "$ctx/rootfs/etc/nsswitch.conf"
  install -m 0755 "$exe" "$ctx/executor"
  install -m 0644 "$ROOT/images/kaniko/Dockerfile" "$ctx/Dockerfile"
  chmod 0755 "$ctx/rootfs" "$ctx/rootfs/etc" "$ctx/rootfs/workspace" "$ctx/rootfs/kaniko/ssl" \
    "$ctx/rootfs/kaniko/ssl/certs" "$ctx/rootfs/kaniko/.docker"
  chmod 0777 "$ctx/rootfs/kaniko"
  chmod 1777 "$ctx/rootfs/tmp"
  hash="$(tree_hash "$ctx" "VERSION=$KANIKO_VERSION")"
  ref="$registry/$namespace/kaniko-executor:$KANIKO_VERSION"
  build_and_push kaniko "$ref" "$ctx" "$hash" --build-arg "VERSION=$KANIKO_VERSION"
}

# Production node_modules for the package in $1 (package.json and package-lock.json there):
# npm ci --omit=dev --ignore-scripts, cached by the lock file and npm version, since npm ci
# from the same lock file gives the same tree.
prod_node_modules() {
  local app="$1" key cache
  key="$( (cat "$app/package.json" "$app/package-lock.json"; npm --version) | sha256sum | cut -c1-24)"
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/svcbuild-images/node_modules/$key"
  if [ -d "$cache/node_modules" ]; then
    log "svcbuild: production node_modules from the cache ($cache)"
  else
    log "svcbuild: production node_modules (npm ci --omit=dev --ignore-scripts)"
    mkdir -p "$cache.tmp.$$"
    cp "$app/package.json" "$app/package-lock.json" "$cache.tmp.$$/"
    if ! (cd "$cache.tmp.$$" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >&2); then
      rm -rf "$cache.tmp.$$"
      die "npm ci --omit=dev --ignore-scripts failed for the staged package.json (see above)"
    fi
    # npm's own bookkeeping: its contents depend on the npm run, not on the packages.
    rm -f "$cache.tmp.$$/node_modules/.package-lock.json"
    rm -rf "$cache"
    mv "$cache.tmp.$$" "$cache" 2>/dev/null || rm -rf "$cache.tmp.$$"
  fi
  cp -a "$cache/node_modules" "$app/node_modules"
}

build_svcbuild() {
  local version helm trivy ctx app hash ref source
  version="$(jq -r .version "$ROOT/package.json")"

  "$ROOT/scripts/install-helm.sh" >&2 || die "scripts/install-helm.sh failed"
  helm="${PREFIX:-/usr/local/bin}/helm"
  "$helm" version --short 2>/dev/null | grep -q '^v4\.' || die "$helm is not helm v4"
  trivy="$("$ROOT/scripts/install-trivy.sh" | tail -n 1)"
  [ -x "$trivy" ] || die "scripts/install-trivy.sh did not produce an executable ($trivy)"

  if [ -z "$base" ]; then
    log "svcbuild: node-22 base image (svcbuild base build node-22, registry $registry)"
    base="$(cd "$ROOT" && SVCBUILD_REGISTRY="$registry" node bin/svcbuild.js base build node-22 --json | jq -r '.[0].ref // empty')" ||
      die "svcbuild base build node-22 failed (see above); or pass --base REF@DIGEST"
    [[ "$base" == *@sha256:* ]] || die "svcbuild base build node-22 printed no ref by digest"
  fi
  log "svcbuild: base $base"

  ctx="$tmp/svcbuild"
  app="$ctx/svcbuild"
  mkdir -p "$ctx/tools" "$app"
  install -m 0755 "$helm" "$ctx/tools/helm"
  install -m 0755 "$trivy" "$ctx/tools/trivy"
  install -m 0644 "$ROOT/images/svcbuild/Dockerfile" "$ctx/Dockerfile"

  log "svcbuild: compiling (npm run build, into the staging copy)"
  (cd "$ROOT" && npm run --silent build -- --outDir "$app/dist") >&2 || die "npm run build failed: fix the TypeScript errors above"
  cp "$ROOT/package.json" "$ROOT/package-lock.json" "$app/"
  prod_node_modules "$app"
  # What the CLI reads at run time next to its package root (src/cli/main.ts HOME):
  # charts/platform-service (publish), charts/svcbuild (install), workflow-templates/
  # (render, install), base-images/ (base build, scan-base), and bin/svcbuild.js.
  local d
  for d in bin charts workflow-templates base-images; do
    cp -R "$ROOT/$d" "$app/$d"
  done
  chmod -R u+rwX,go+rX,go-w "$ctx"

  source="${SVCBUILD_SOURCE_URL:-$(git -C "$ROOT" remote get-url origin 2>/dev/null || echo unknown)}"
  hash="$(tree_hash "$ctx" "BASE=$base" "VERSION=$version" "SOURCE=$source")"
  ref="$registry/$namespace/svcbuild:$version"
  build_and_push svcbuild "$ref" "$ctx" "$hash" \
    --build-arg "BASE=$base" --build-arg "VERSION=$version" --build-arg "SOURCE=$source"
}

total=$SECONDS
case "$target" in
  kaniko) build_kaniko ;;
  svcbuild) build_svcbuild ;;
  all)
    build_kaniko
    build_svcbuild
    ;;
esac
log "done in $((SECONDS - total))s"
