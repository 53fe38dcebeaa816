#!/usr/bin/env bash
# Level 3 of the cluster test bed (issue 7), second part: what svcbuild's in-cluster pipeline
# needs on a running bed (node + Argo controller):
#   - a registry pods can reach: Debian's docker-registry on the bridge gateway
#     (<gateway>:5000, plain HTTP; node.sh makes containerd pull from it too);
#   - the svcbuild step image and the Kaniko image (scripts/build-images.sh) and the base
#     images (`svcbuild base build`, tagged `current`) pushed to it;
#   - a config for svcbuild (argo executor, this registry, the bed's kubeconfig);
#   - the build namespace and the tenant namespaces, and `svcbuild install` into them (the
#     WorkflowTemplates, the build accounts, the tenants' concurrency keys, the CA bundle the
#     Kaniko builds trust: this host's, so installers behind its TLS proxy work).
#
# Usage: scripts/bed/pipeline.sh start | stop | env
#   start  all of the above (idempotent); prints the config file's path on stdout
#   stop   stops the registry (objects in the cluster stay); argo.sh stop calls it
#   env    `export SVCBUILD_CONFIG=... KUBECONFIG=...`: the shell setup to use svcbuild with it
#
# Environment:
#   SVCBUILD_BED_PIPELINE_REGISTRY  host:port (default <bridge gateway>:5000; started here if it
#                                   does not answer and is on the gateway)
#   SVCBUILD_BED_BUILD_NAMESPACE    default svcbuild-builds
#   SVCBUILD_BED_TENANTS            tenants to install (space separated; default: demo); tenant T
#                                   deploys into namespace tenant-T
#   SVCBUILD_BED_CA_BUNDLE          CA bundle Kaniko's RUN steps trust (default
#                                   /etc/ssl/certs/ca-certificates.crt; empty: none)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUN="${SVCBUILD_BED_RUN:-/tmp/svcbuild-bed}"
KUBECTL="${KUBECTL:-$(command -v kubectl || echo /usr/local/bin/kubectl)}"
PIPE="$RUN/pipeline"
NS="${SVCBUILD_BED_BUILD_NAMESPACE:-svcbuild-builds}"
TENANTS="${SVCBUILD_BED_TENANTS:-demo}"
CA_BUNDLE="${SVCBUILD_BED_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"
NODE="$ROOT/node_modules/.bin/node"
[ -x "$NODE" ] || NODE="$(command -v node)"

log() { echo "bed/pipeline: $*" >&2; }
die() { log "error: $*"; exit 1; }

k() { "$KUBECTL" --kubeconfig "$RUN/admin.kubeconfig" "$@"; }
svcbuild() { SVCBUILD_CONFIG="$PIPE/svcbuild.yaml" KUBECONFIG="$RUN/admin.kubeconfig" "$NODE" "$ROOT/bin/svcbuild.js" "$@"; }

gateway() { sed -n 's/^export SVCBUILD_BED_GATEWAY=//p' "$RUN/env" 2>/dev/null | tail -1; }

registry_host() {
  if [ -n "${SVCBUILD_BED_PIPELINE_REGISTRY:-}" ]; then
    echo "$SVCBUILD_BED_PIPELINE_REGISTRY"
    return
  fi
  local gw
  gw="$(gateway)"
  [ -n "$gw" ] || die "no node in $RUN (its env has no SVCBUILD_BED_GATEWAY): run node.sh up first"
  echo "$gw:5000"
}

registry_answers() { curl -fsS --max-time 3 "http://$1/v2/" >/dev/null 2>&1; }

start_registry() {
  local host="$1"
  if registry_answers "$host"; then
    log "registry $host answers"
    return
  fi
  command -v docker-registry >/dev/null || die "docker-registry is missing (apt-get install docker-registry)"
  [ "${host%:*}" = "$(gateway)" ] || die "registry $host does not answer (only one on the bridge gateway $(gateway) is started here)"
  mkdir -p "$PIPE/registry/data"
  cat >"$PIPE/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $PIPE/registry/data
  delete:
    enabled: true
http:
  addr: $host
  secret: svcbuild-bed
EOF
  setsid docker-registry serve "$PIPE/registry/config.yml" >"$PIPE/registry/log" 2>&1 </dev/null &
  echo $! >"$PIPE/registry/pid"
  local i
  for i in $(seq 1 100); do
    registry_answers "$host" && break
    kill -0 "$(cat "$PIPE/registry/pid")" 2>/dev/null || { cat "$PIPE/registry/log" >&2; die "docker-registry exited"; }
    sleep 0.1
  done
  registry_answers "$host" || die "docker-registry does not answer on $host"
  log "registry $host started (pid $(cat "$PIPE/registry/pid"), data $PIPE/registry/data)"
}

cmd_start() {
  [ -f "$RUN/admin.kubeconfig" ] || die "no bed in $RUN (run argo.sh up first)"
  mkdir -p "$PIPE"
  local t0=$SECONDS host
  host="$(registry_host)"
  start_registry "$host"
  cat >"$PIPE/svcbuild.yaml" <<EOF
# svcbuild on the test bed: the argo executor, the registry pods reach (plain HTTP on the
# bridge gateway, a private address), the bed's admin kubeconfig. Written by pipeline.sh.
registry:
  host: "$host"
  plainHttp: true
executor:
  kind: argo
  kubeconfig: "$RUN/admin.kubeconfig"
  buildNamespace: "$NS"
  tenantNamespace: "tenant-{tenant}"
  templates:
    # The bed's controller has no artifact repository to archive step logs to.
    archiveLogs: false
    # Kaniko caches RUN layers (the dependency install) in the registry: a source-only
    # change rebuilds only the last COPY.
    builder:
      cacheRepo: "$host/svcbuild/kaniko-cache"
stateDir: "$PIPE/state"
EOF
  log "building and pushing the step and Kaniko images"
  SVCBUILD_REGISTRY_PLAIN_HTTP=true "$ROOT/scripts/build-images.sh" --registry "$host" --plain-http all >"$PIPE/images" ||
    die "scripts/build-images.sh failed"
  log "pushing the base images (tag current)"
  svcbuild base build >"$PIPE/bases" || die "svcbuild base build failed"

  local t install=(install --namespace "$NS")
  k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
  for t in $TENANTS; do
    k create namespace "tenant-$t" --dry-run=client -o yaml | k apply -f - >/dev/null
    install+=(--tenant-namespace "tenant-$t" --tenant "$t")
  done
  [ -z "$CA_BUNDLE" ] || install+=(--ca-bundle "$CA_BUNDLE")
  svcbuild "${install[@]}" >"$PIPE/install.log" 2>&1 || { cat "$PIPE/install.log" >&2; die "svcbuild install failed"; }
  cat >"$PIPE/env" <<EOF
export SVCBUILD_CONFIG=$PIPE/svcbuild.yaml
export KUBECONFIG=$RUN/admin.kubeconfig
EOF
  log "pipeline installed in $((SECONDS - t0)) s: registry $host, namespace $NS, tenants: $TENANTS"
  echo "$PIPE/svcbuild.yaml"
}

cmd_stop() {
  [ -f "$PIPE/registry/pid" ] || return 0
  local pid
  pid="$(cat "$PIPE/registry/pid")"
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' <"/proc/$pid/cmdline" | head -1 | grep -q docker-registry; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    log "registry stopped (pid $pid)"
  fi
  rm -f "$PIPE/registry/pid"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cat "$PIPE/env" ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
