#!/usr/bin/env bash
# Level 3 of the cluster test bed (issue 7), first part: Argo Workflows' workflow-controller,
# built from its Go module by build.sh, running on this host against the bed's apiserver with
# the admin kubeconfig, and an argoexec image built here (scratch + the static argoexec binary)
# pushed to the registry the bed's containerd pulls from.
#
# Usage: scripts/bed/argo.sh up | down | start | stop | status | image
#   up      node.sh up (apiserver + node), then `start`, then pipeline.sh start (the registry
#           pods reach, the step/Kaniko/base images, `svcbuild install`; skipped with
#           SVCBUILD_BED_NO_PIPELINE=1); prints the admin kubeconfig path.
#   down    `stop`, then node.sh down.
#   start   next to a running level-2 bed of the run dir: build (cached) and push the argoexec
#           image, create the controller's namespace and its workflow-controller-configmap, run
#           workflow-controller on the host, and wait until it answers its health check.
#   stop    stop the controller (TERM, then KILL after 2 s: v4.0.7 ignores TERM; apiserver.sh
#           down calls it too). Objects in the cluster stay.
#   status  exit 0 if the controller runs and answers its health check.
#   image   build and push the argoexec image only; prints its reference.
#
# Environment (besides apiserver.sh's and node.sh's):
#   SVCBUILD_BED_REGISTRY           registry the argoexec image goes to (default 127.0.0.1:5000,
#                                   plain HTTP; node.sh makes containerd pull from it)
#   SVCBUILD_BED_ARGO_NAMESPACE     the controller's namespace (default argo): its configmap and
#                                   leader-election lease live there
#   SVCBUILD_BED_ARGO_MANAGED_NAMESPACE  watch only this namespace (--namespaced); default: all
#   SVCBUILD_BED_ARGO_METRICS_PORT  metrics port (default: a free one)
#
# The controller's health server listens on :6060 (hard-coded in v4.0.7), so one controller
# runs per host, like the node.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
RUN="${SVCBUILD_BED_RUN:-/tmp/svcbuild-bed}"
CACHE="${SVCBUILD_BED_CACHE:-$HOME/.cache/svcbuild-bed}"
BIN="$CACHE/bin"
KUBECTL="${KUBECTL:-$(command -v kubectl || echo /usr/local/bin/kubectl)}"
MARKER=".svcbuild-bed"
REGISTRY="${SVCBUILD_BED_REGISTRY:-127.0.0.1:5000}"
ARGO_NS="${SVCBUILD_BED_ARGO_NAMESPACE:-argo}"
MANAGED_NS="${SVCBUILD_BED_ARGO_MANAGED_NAMESPACE:-}"
ARGO="$RUN/argo"
CONTROLLER="$BIN/workflow-controller"

log() { echo "bed/argo: $*" >&2; }
die() { log "error: $*"; exit 1; }

k() { "$KUBECTL" --kubeconfig "$RUN/admin.kubeconfig" "$@"; }

port_free() { [ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p"; then echo "$p"; return; fi
  done
  die "no free port found"
}

# pid_alive PIDFILE BINARY: the pid in PIDFILE runs BINARY (guards against reused pids).
pid_alive() {
  [ -f "$1" ] || return 1
  local pid
  pid="$(cat "$1")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -1 | grep -qx "$2"
}

HEALTH_PORT=6060
healthy() { curl -fsS --max-time 3 "http://127.0.0.1:$HEALTH_PORT/healthz" >/dev/null 2>&1; }

# ---- argoexec image ------------------------------------------------------------------------

registry_answers() { curl -fsS --max-time 3 "http://$REGISTRY/v2/" >/dev/null 2>&1; }

# Pushes $BIN/argoexec in a scratch image (once per binary content); prints the reference.
# The emissary executor needs no shell or tools: `argoexec init` copies the binary into the
# pod's shared /var/run/argo volume, the main container runs `/var/run/argo/argoexec emissary --
# CMD` (which also saves output parameters/artifacts into that volume), and the wait container
# (`argoexec wait`) reports them as a WorkflowTaskResult.
argoexec_image() {
  registry_answers || die "registry $REGISTRY does not answer (node.sh starts the default one)"
  local tag repo="svcbuild/bed/argoexec"
  tag="$(sha256sum "$BIN/argoexec" | cut -c1-16)"
  local ref="$REGISTRY/$repo:$tag"
  if curl -fsS -o /dev/null -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/$repo/manifests/$tag" 2>/dev/null; then
    echo "$ref"
    return
  fi
  command -v buildah >/dev/null || die "buildah is needed to build the argoexec image"
  log "building the argoexec image $ref"
  mkdir -p "$ARGO"
  local stage ctr
  stage="$(mktemp -d)"
  # /bin/argoexec (the controller's pod spec runs `argoexec` from PATH) and a /tmp.
  mkdir -p "$stage/bin" "$stage/tmp"
  chmod 1777 "$stage/tmp"
  cp "$BIN/argoexec" "$stage/bin/argoexec"
  ctr="$(buildah from scratch)"
  {
    buildah copy "$ctr" "$stage" / &&
      buildah config --entrypoint '["/bin/argoexec"]' --cmd '' --env PATH=/bin \
        --label org.opencontainers.image.title=svcbuild-bed-argoexec "$ctr" &&
      buildah commit --quiet --format oci "$ctr" "svcbuild-bed-argoexec:$tag" &&
      buildah push --quiet --tls-verify=false "svcbuild-bed-argoexec:$tag" "docker://$ref"
  } >"$ARGO/argoexec-image.log" 2>&1 || {
    buildah rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$stage"
    cat "$ARGO/argoexec-image.log" >&2
    die "building the argoexec image failed"
  }
  buildah rm "$ctr" >/dev/null 2>&1 || true
  buildah rmi "svcbuild-bed-argoexec:$tag" >/dev/null 2>&1 || true
  rm -rf "$stage"
  echo "$ref"
}

# ---- controller ----------------------------------------------------------------------------

write_configmap() {
  cat >"$ARGO/configmap.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: workflow-controller-configmap
  namespace: $ARGO_NS
data:
  executor: |
    imagePullPolicy: IfNotPresent
  metricsConfig: |
    enabled: true
    port: $(cat "$ARGO/metrics-port")
    secure: false
  telemetryConfig: |
    enabled: false
EOF
}

cmd_start() {
  [ -f "$RUN/$MARKER" ] && [ -f "$RUN/admin.kubeconfig" ] || die "no bed in $RUN (run node.sh up first)"
  [ -d "$RUN/node" ] || die "no node in $RUN (run node.sh start first)"
  if pid_alive "$ARGO/controller.pid" "$CONTROLLER" && healthy; then
    log "workflow-controller already runs (pid $(cat "$ARGO/controller.pid"))"
    return
  fi
  if [ -z "${SVCBUILD_BED_SKIP_BUILD:-}" ]; then
    "$HERE/build.sh" workflow-controller argoexec
  fi
  for c in workflow-controller argoexec; do [ -x "$BIN/$c" ] || die "$BIN/$c is missing (build.sh $c)"; done
  local t0=$SECONDS
  mkdir -p "$ARGO"
  local image
  image="$(argoexec_image)"
  echo "$image" >"$ARGO/executor-image"
  port_free "$HEALTH_PORT" || die "port $HEALTH_PORT (the controller's health server) is in use: another controller runs"
  echo "${SVCBUILD_BED_ARGO_METRICS_PORT:-$(free_port)}" >"$ARGO/metrics-port"
  k create namespace "$ARGO_NS" --dry-run=client -o yaml | k apply -f - >/dev/null
  write_configmap
  k apply -f "$ARGO/configmap.yaml" >/dev/null
  local args=(
    --kubeconfig "$RUN/admin.kubeconfig"
    --namespace "$ARGO_NS"
    --configmap workflow-controller-configmap
    --executor-image "$image"
    --executor-image-pull-policy IfNotPresent
    --loglevel info
  )
  if [ -n "$MANAGED_NS" ]; then args+=(--namespaced --managed-namespace "$MANAGED_NS"); fi
  log "starting workflow-controller ($("$CONTROLLER" version 2>/dev/null | head -1 || true); executor $image)"
  # No leader election: one controller per bed.
  LEADER_ELECTION_DISABLE=true setsid "$CONTROLLER" "${args[@]}" >"$ARGO/controller.log" 2>&1 </dev/null &
  echo $! >"$ARGO/controller.pid"
  local i
  for i in $(seq 1 120); do
    if healthy; then break; fi
    if ! kill -0 "$(cat "$ARGO/controller.pid")" 2>/dev/null; then
      tail -30 "$ARGO/controller.log" >&2
      die "workflow-controller exited"
    fi
    sleep 0.5
  done
  healthy || { tail -30 "$ARGO/controller.log" >&2; cmd_stop; die "workflow-controller not healthy after 60 s"; }
  cat >"$ARGO/env" <<EOF
export SVCBUILD_BED_ARGO_NAMESPACE=$ARGO_NS
export SVCBUILD_BED_ARGO_EXECUTOR_IMAGE=$image
EOF
  log "workflow-controller up in $((SECONDS - t0)) s (pid $(cat "$ARGO/controller.pid"), log $ARGO/controller.log)"
}

cmd_stop() {
  "$HERE/pipeline.sh" stop
  [ -d "$ARGO" ] || return 0
  if pid_alive "$ARGO/controller.pid" "$CONTROLLER"; then
    local pid i
    pid="$(cat "$ARGO/controller.pid")"
    # v4.0.7's logging package catches SIGTERM/SIGINT (to flush its init logs) and nothing
    # then ends the process, so TERM never stops it (in a pod, kubelet KILLs it after the grace
    # period): TERM, a short grace, then KILL. The controller keeps no local state.
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 8); do pid_alive "$ARGO/controller.pid" "$CONTROLLER" || break; sleep 0.25; done
    if pid_alive "$ARGO/controller.pid" "$CONTROLLER"; then
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 20); do pid_alive "$ARGO/controller.pid" "$CONTROLLER" || break; sleep 0.25; done
    fi
    log "workflow-controller stopped (pid $pid)"
  fi
  rm -f "$ARGO/controller.pid" "$ARGO/env"
}

case "${1:-}" in
  up)
    "$HERE/node.sh" up >/dev/null
    cmd_start
    if [ -z "${SVCBUILD_BED_NO_PIPELINE:-}" ]; then "$HERE/pipeline.sh" start >/dev/null; fi
    echo "$RUN/admin.kubeconfig"
    ;;
  down)
    cmd_stop
    "$HERE/node.sh" down
    ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) pid_alive "$ARGO/controller.pid" "$CONTROLLER" && healthy ;;
  image)
    [ -n "${SVCBUILD_BED_SKIP_BUILD:-}" ] || "$HERE/build.sh" argoexec
    argoexec_image
    ;;
  *)
    echo "usage: $0 up|down|start|stop|status|image" >&2
    exit 2
    ;;
esac
