#!/usr/bin/env bash
# Level 2 of the cluster test bed (issue 7): one node on this host, next to the level-1
# apiserver (apiserver.sh): containerd (own config, root, state and socket in the run dir) with
# a locally built pause image, a CNI bridge, kube-controller-manager, kube-scheduler, kubelet
# and kube-proxy (iptables mode), all built from the Kubernetes module by build.sh.
#
# Usage: scripts/bed/node.sh up | down | start | stop | status
#   up      apiserver.sh up (listening on all addresses, so pods reach it through the
#           `kubernetes` Service), then `start`; prints the admin kubeconfig path on stdout.
#   down    `stop`, then apiserver.sh down (removes the run dir).
#   start   start the node parts next to the running apiserver of the run dir and wait until
#           the Node is Ready.
#   stop    stop the node parts and remove what they left on the host: containers and their
#           shims, mounts under the run dir, network namespaces, the CNI bridge, kube-proxy's
#           iptables rules, the bed's cgroups; restores the sysctls kubelet changed.
#           apiserver.sh down calls it too (so its owner watchdog tears the node down).
#   status  exit 0 if the apiserver answers and the Node is Ready.
#
# Environment (besides apiserver.sh's):
#   SVCBUILD_BED_NODE_NAME    node name (default svcbuild-bed)
#   SVCBUILD_BED_POD_CIDR     pod subnet of the node (default 10.244.0.0/24)
#   SVCBUILD_BED_CLUSTER_CIDR cluster pod range (default 10.244.0.0/16)
#   SVCBUILD_BED_BRIDGE       CNI bridge name (default svcbed0)
#   SVCBUILD_BED_REGISTRY     registry for the pause image (default 127.0.0.1:5000, plain HTTP;
#                             started with `svcbuild registry start` if it does not answer)
#   SVCBUILD_BED_INSECURE_REGISTRIES  more registries (host:port, space or comma separated)
#                             containerd pulls from over plain HTTP (e.g. a test's own registry)
#   SVCBUILD_BED_PIPELINE_REGISTRY    the in-cluster pipeline's registry (pipeline.sh; default
#                             <bridge gateway>:5000), also pulled from over plain HTTP
#   SVCBUILD_BED_CNI_BIN      CNI plugin dir (default /usr/lib/cni)
#
# Only one node bed runs per host (the bridge, the iptables rules of kube-proxy and the cgroup
# root are host-wide): a second `start` fails while another one is running.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
ROOT="$(cd "$HERE/../.." && pwd)"
RUN="${SVCBUILD_BED_RUN:-/tmp/svcbuild-bed}"
CACHE="${SVCBUILD_BED_CACHE:-$HOME/.cache/svcbuild-bed}"
BIN="$CACHE/bin"
KUBECTL="${KUBECTL:-$(command -v kubectl || echo /usr/local/bin/kubectl)}"
MARKER=".svcbuild-bed"
NODE_NAME="${SVCBUILD_BED_NODE_NAME:-svcbuild-bed}"
POD_CIDR="${SVCBUILD_BED_POD_CIDR:-10.244.0.0/24}"
CLUSTER_CIDR="${SVCBUILD_BED_CLUSTER_CIDR:-10.244.0.0/16}"
SERVICE_CIDR=10.0.0.0/24
BRIDGE="${SVCBUILD_BED_BRIDGE:-svcbed0}"
# The bridge's own address: the pods' gateway, and the host address pods reach the host at
# (a registry for the in-cluster pipeline listens there). The pod subnet's first address.
GATEWAY="${POD_CIDR%.*/*}.1"
MASQ_COMMENT="svcbuild-bed pod egress"
REGISTRY="${SVCBUILD_BED_REGISTRY:-127.0.0.1:5000}"
CNI_BIN="${SVCBUILD_BED_CNI_BIN:-/usr/lib/cni}"
CGROUP_ROOT=svcbuild-bed
HOST_LOCK=/run/svcbuild-bed-node
NODE="$RUN/node"
CTRD="$RUN/containerd"
SOCK="$CTRD/containerd.sock"
# The sysctls kubelet sets when protectKernelDefaults is false; restored by `stop`.
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

log() { echo "bed/node: $*" >&2; }
die() { log "error: $*"; exit 1; }

port_free() { [ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if port_free "$p"; then echo "$p"; return; fi
  done
  die "no free port found"
}

pid_alive() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -1 | grep -qx "$2"
}

stop_pid() {
  local pidfile="$1" binary="$2" name="$3" i pid
  if pid_alive "$pidfile" "$binary"; then
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      pid_alive "$pidfile" "$binary" || break
      sleep 0.1
    done
    if pid_alive "$pidfile" "$binary"; then
      log "$name did not stop on TERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    log "$name stopped (pid $pid)"
  fi
  rm -f "$pidfile"
}

# start NAME BINARY ARGS...: runs BINARY in its own session, log and pid in $NODE.
start_bg() {
  local name="$1"; shift
  setsid "$@" </dev/null >"$NODE/$name.log" 2>&1 &
  echo $! >"$NODE/$name.pid"
}

# wait_until WHAT TIMEOUT PIDFILE LOG COMMAND...
wait_until() {
  local what="$1" timeout="$2" pidfile="$3" logfile="$4"; shift 4
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      log "$what exited (log: $logfile)"
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$what not ready after ${timeout}s (log: $logfile)"
      return 1
    fi
    sleep 0.3
  done
}

# sign NAME SUBJECT EXTENSIONS: key + certificate signed by the bed CA, in $NODE/pki.
sign() {
  local name="$1" subj="$2" ext="$3" pki="$NODE/pki"
  mkdir -p "$pki"
  chmod 0700 "$pki"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  printf '%b\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$RUN/pki/ca.crt" -CAkey "$RUN/pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 \
    -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
  chmod 0600 "$pki/$name.key"
}

apiserver_up() {
  [ -f "$RUN/$MARKER" ] && SVCBUILD_BED_RUN="$RUN" "$HERE/apiserver.sh" status
}

# Ready, and the node lifecycle controller has lifted the not-ready taint (pods schedule).
node_ready() {
  [ "$("$KUBECTL" --kubeconfig "$RUN/admin.kubeconfig" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}' 2>/dev/null)" = "True " ]
}

# ---- pause image ---------------------------------------------------------------------------

registry_answers() { curl -fsS --max-time 3 "http://$REGISTRY/v2/" >/dev/null 2>&1; }

# Pushes $BIN/pause in a scratch image (once per binary content); prints the image reference.
pause_image() {
  if ! registry_answers; then
    [ "$REGISTRY" = 127.0.0.1:5000 ] || die "registry $REGISTRY does not answer"
    log "registry $REGISTRY does not answer; starting it with svcbuild registry start"
    local nodebin
    nodebin="$(command -v node || echo "$ROOT/node_modules/.bin/node")"
    (cd "$ROOT" && "$nodebin" bin/svcbuild.js registry start >&2) || die "could not start the registry"
    registry_answers || die "registry $REGISTRY does not answer"
  fi
  local tag repo="svcbuild/bed/pause"
  tag="$(sha256sum "$BIN/pause" | cut -c1-16)"
  local ref="$REGISTRY/$repo:$tag"
  if curl -fsS -o /dev/null -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/$repo/manifests/$tag" 2>/dev/null; then
    echo "$ref"
    return
  fi
  command -v buildah >/dev/null || die "buildah is needed to build the pause image"
  log "building the pause image $ref"
  local ctr
  ctr="$(buildah from scratch)"
  {
    buildah copy "$ctr" "$BIN/pause" /pause &&
      buildah config --entrypoint '["/pause"]' --cmd '' --user 65535:65535 \
        --label org.opencontainers.image.title=svcbuild-bed-pause "$ctr" &&
      buildah commit --quiet --format oci "$ctr" "svcbuild-bed-pause:$tag" &&
      buildah push --quiet --tls-verify=false "svcbuild-bed-pause:$tag" "docker://$ref"
  } >"$NODE/pause-image.log" 2>&1 || {
    buildah rm "$ctr" >/dev/null 2>&1 || true
    cat "$NODE/pause-image.log" >&2
    die "building the pause image failed"
  }
  buildah rm "$ctr" >/dev/null 2>&1 || true
  buildah rmi "svcbuild-bed-pause:$tag" >/dev/null 2>&1 || true
  echo "$ref"
}

# ---- configuration files -------------------------------------------------------------------

write_containerd_config() {
  local pause_ref="$1"
  mkdir -p "$CTRD/root" "$CTRD/state" "$NODE/cni/net.d" "$NODE/cni/ipam"
  local r
  # Plain-HTTP registries: containerd pulls on the host, so loopback addresses work. The
  # pipeline's registry (pipeline.sh) listens on the bridge gateway, where pods reach it too.
  local extra="${SVCBUILD_BED_INSECURE_REGISTRIES:-}"
  for r in $REGISTRY ${extra//,/ } "${SVCBUILD_BED_PIPELINE_REGISTRY:-$GATEWAY:5000}"; do
    mkdir -p "$CTRD/certs.d/$r"
    cat >"$CTRD/certs.d/$r/hosts.toml" <<EOF
server = "http://$r"

[host."http://$r"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
  done
  cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = ""
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  # This host withholds CAP_SYS_RESOURCE: oom_score_adj may not go below containerd's own.
  restrict_oom_score_adj = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CTRD/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$NODE/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CTRD/certs.d"
EOF
  # Bridge + host-local IPAM. No per-pod ipMasq rules: start() adds one MASQUERADE rule for
  # the whole pod subnet (pod egress: installers in Kaniko's RUN steps reach the package
  # registries), which stop() removes; portmap only acts for hostPorts.
  cat >"$NODE/cni/net.d/10-svcbuild-bed.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "svcbuild-bed",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$NODE/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

write_kube_configs() {
  local node_ip="$1" kubelet_port="$2" kubelet_healthz="$3" proxy_healthz="$4" proxy_metrics="$5"
  # resolv.conf for pods: the host's nameservers without loopback ones.
  grep -E '^(nameserver|search|options)' /etc/resolv.conf 2>/dev/null |
    grep -Ev '^nameserver[[:space:]]+(127\.|::1)' >"$NODE/resolv.conf" || true
  local resolv="$NODE/resolv.conf"
  grep -q '^nameserver' "$resolv" || resolv=""
  cat >"$NODE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz
tlsCertFile: $NODE/pki/kubelet-serving.crt
tlsPrivateKeyFile: $NODE/pki/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $RUN/pki/ca.crt
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
failSwapOn: false
failCgroupV1: false
resolvConf: "$resolv"
clusterDomain: cluster.local
hairpinMode: hairpin-veth
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
protectKernelDefaults: false
maxPods: 50
volumePluginDir: $NODE/kubelet/volume-plugins
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  nodefs.inodesFree: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
  cat >"$NODE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:$proxy_healthz
metricsBindAddress: 127.0.0.1:$proxy_metrics
clientConnection:
  kubeconfig: $RUN/users/system:kube-proxy.kubeconfig
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  syncPeriod: 5s
  minSyncPeriod: 0s
EOF
}

# ---- host-wide lock --------------------------------------------------------------------------

# The run dir of the node bed running on this host, if any.
other_node_running() {
  [ -f "$HOST_LOCK" ] || return 1
  local other
  other="$(cat "$HOST_LOCK")"
  [ "$other" != "$RUN" ] && [ -f "$other/node/containerd.pid" ] &&
    pid_alive "$other/node/containerd.pid" /usr/bin/containerd
}

# ---- start ---------------------------------------------------------------------------------

fail_start() {
  trap - ERR
  set +E
  local f
  for f in containerd kubelet kube-controller-manager kube-scheduler kube-proxy; do
    [ -f "$NODE/$f.log" ] && { log "last lines of $NODE/$f.log:"; tail -n 15 "$NODE/$f.log" >&2; }
  done
  cmd_stop
  exit 1
}

cmd_start() {
  apiserver_up || die "no bed apiserver running in $RUN (run node.sh up, or apiserver.sh up first)"
  if [ -f "$NODE/containerd.pid" ] && pid_alive "$NODE/kubelet.pid" "$BIN/kubelet" && node_ready; then
    log "node $NODE_NAME already running in $RUN"
    return
  fi
  if other_node_running; then
    die "another node bed runs on this host ($(cat "$HOST_LOCK")); stop it first"
  fi
  [ "$(id -u)" = 0 ] || die "the node needs root (containerd, kubelet, iptables)"
  local c
  for c in containerd containerd-shim-runc-v2 runc iptables ip openssl; do
    command -v "$c" >/dev/null || die "$c is missing (apt-get install containerd runc iptables)"
  done
  for c in bridge host-local loopback portmap; do
    [ -x "$CNI_BIN/$c" ] || die "CNI plugin $CNI_BIN/$c is missing (apt-get install containernetworking-plugins)"
  done
  if [ "${SVCBUILD_BED_SKIP_BUILD:-}" != 1 ]; then
    "$HERE/build.sh" kube-controller-manager kube-scheduler kubelet kube-proxy pause
  fi
  for c in kube-controller-manager kube-scheduler kubelet kube-proxy pause; do
    [ -x "$BIN/$c" ] || die "missing $BIN/$c; run scripts/bed/build.sh $c"
  done
  local t0=$SECONDS
  mkdir -p "$NODE"
  echo "$RUN" >"$HOST_LOCK"
  # Any failure from here on tears down what was started.
  set -E
  trap fail_start ERR

  # Kubelet sets some kernel sysctls: remember them to restore on stop.
  local s
  : >"$NODE/sysctls"
  for s in "${SYSCTLS[@]}"; do
    [ -r "/proc/sys/$s" ] && echo "$s $(cat "/proc/sys/$s")" >>"$NODE/sysctls"
  done

  local server node_ip
  server="$(cat "$RUN/server")"
  node_ip="$(sed -n 's/^export SVCBUILD_BED_ADVERTISE=//p' "$RUN/env" 2>/dev/null)"
  if [ -z "$node_ip" ]; then
    node_ip="$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)"
  fi
  [ -n "$node_ip" ] || die "no node address (no default route)"
  # Pods reach the apiserver through the kubernetes Service, i.e. at the advertise address.
  local api_port="${server##*:}"
  curl -sk --max-time 3 -o /dev/null "https://$node_ip:$api_port/readyz" ||
    die "the apiserver does not answer on $node_ip:$api_port; start it with SVCBUILD_BED_BIND_ADDRESS=0.0.0.0 (node.sh up does)"

  # Identities (client certificates signed by the bed CA; the bootstrap RBAC policy knows them).
  local a=(env SVCBUILD_BED_RUN="$RUN" "$HERE/apiserver.sh")
  "${a[@]}" user system:kube-controller-manager >/dev/null
  "${a[@]}" user system:kube-scheduler >/dev/null
  "${a[@]}" user system:kube-proxy >/dev/null
  "${a[@]}" user "system:node:$NODE_NAME" system:nodes >/dev/null
  sign kubelet-serving "/CN=system:node:$NODE_NAME/O=system:nodes" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:$NODE_NAME,DNS:localhost,IP:$node_ip,IP:127.0.0.1"

  local pause_ref
  pause_ref="$(pause_image)" || fail_start
  write_containerd_config "$pause_ref"
  # The bridge exists before the first pod (CNI would make it then), so the gateway address
  # can be listened on (the pipeline's registry) as soon as the node is up.
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pod egress to anything outside the cluster's pod range leaves with the host's address.
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || die "net.ipv4.ip_forward is 0: pods cannot reach the network (sysctl -w net.ipv4.ip_forward=1)"
  iptables -w -t nat -C POSTROUTING -s "$POD_CIDR" ! -d "$CLUSTER_CIDR" -m comment --comment "$MASQ_COMMENT" -j MASQUERADE 2>/dev/null ||
    iptables -w -t nat -A POSTROUTING -s "$POD_CIDR" ! -d "$CLUSTER_CIDR" -m comment --comment "$MASQ_COMMENT" -j MASQUERADE
  local kubelet_port kubelet_healthz proxy_healthz proxy_metrics kcm_port sched_port
  kubelet_port="$(free_port)"; kubelet_healthz="$(free_port)"
  proxy_healthz="$(free_port)"; proxy_metrics="$(free_port)"
  kcm_port="$(free_port)"; sched_port="$(free_port)"
  write_kube_configs "$node_ip" "$kubelet_port" "$kubelet_healthz" "$proxy_healthz" "$proxy_metrics"

  # cgroup root of the node's pods in every v1 hierarchy (cpuset needs cpus/mems to be usable).
  local h
  for h in /sys/fs/cgroup/*/; do
    [ "$(basename "$h")" = unified ] && continue
    mkdir -p "$h$CGROUP_ROOT"
    if [ -f "${h}cpuset.cpus" ]; then
      cat "${h}cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus"
      cat "${h}cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems"
    fi
  done

  log "starting containerd ($SOCK, sandbox image $pause_ref)"
  start_bg containerd /usr/bin/containerd --config "$CTRD/config.toml"
  wait_until containerd 30 "$NODE/containerd.pid" "$NODE/containerd.log" \
    ctr --address "$SOCK" version || fail_start

  local kcm_kc="$RUN/users/system:kube-controller-manager.kubeconfig"
  log "starting kube-controller-manager"
  start_bg kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$kcm_kc" \
    --authentication-kubeconfig "$kcm_kc" \
    --authorization-kubeconfig "$kcm_kc" \
    --bind-address 127.0.0.1 \
    --secure-port "$kcm_port" \
    --leader-elect=false \
    --use-service-account-credentials \
    --service-account-private-key-file "$RUN/pki/sa.key" \
    --root-ca-file "$RUN/pki/ca.crt" \
    --cluster-signing-cert-file "$RUN/pki/ca.crt" \
    --cluster-signing-key-file "$RUN/pki/ca.key" \
    --allocate-node-cidrs \
    --cluster-cidr "$CLUSTER_CIDR" \
    --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --cluster-name svcbuild-bed \
    --profiling=false \
    --v=1

  local sched_kc="$RUN/users/system:kube-scheduler.kubeconfig"
  log "starting kube-scheduler"
  start_bg kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$sched_kc" \
    --authentication-kubeconfig "$sched_kc" \
    --authorization-kubeconfig "$sched_kc" \
    --bind-address 127.0.0.1 \
    --secure-port "$sched_port" \
    --leader-elect=false \
    --profiling=false \
    --v=1

  log "starting kubelet (node $NODE_NAME, $node_ip:$kubelet_port)"
  mkdir -p "$NODE/kubelet"
  start_bg kubelet "$BIN/kubelet" \
    --config "$NODE/kubelet.yaml" \
    --kubeconfig "$RUN/users/system:node:$NODE_NAME.kubeconfig" \
    --hostname-override "$NODE_NAME" \
    --node-ip "$node_ip" \
    --root-dir "$NODE/kubelet" \
    --cert-dir "$NODE/pki" \
    --v=1

  log "starting kube-proxy (iptables)"
  start_bg kube-proxy "$BIN/kube-proxy" --config "$NODE/kube-proxy.yaml" --v=1

  wait_until kube-controller-manager 60 "$NODE/kube-controller-manager.pid" "$NODE/kube-controller-manager.log" \
    curl -fsk --max-time 2 "https://127.0.0.1:$kcm_port/healthz" || fail_start
  wait_until kube-scheduler 60 "$NODE/kube-scheduler.pid" "$NODE/kube-scheduler.log" \
    curl -fsk --max-time 2 "https://127.0.0.1:$sched_port/healthz" || fail_start
  wait_until kubelet 60 "$NODE/kubelet.pid" "$NODE/kubelet.log" \
    curl -fs --max-time 2 "http://127.0.0.1:$kubelet_healthz/healthz" || fail_start
  wait_until "node $NODE_NAME Ready" 120 "$NODE/kubelet.pid" "$NODE/kubelet.log" node_ready || fail_start
  wait_until kube-proxy 60 "$NODE/kube-proxy.pid" "$NODE/kube-proxy.log" \
    curl -fs --max-time 2 "http://127.0.0.1:$proxy_healthz/healthz" || fail_start

  cat >>"$RUN/env" <<EOF
export SVCBUILD_BED_NODE=$NODE_NAME
export SVCBUILD_BED_NODE_IP=$node_ip
export SVCBUILD_BED_CONTAINERD=$SOCK
export SVCBUILD_BED_PAUSE_IMAGE=$pause_ref
export SVCBUILD_BED_GATEWAY=$GATEWAY
EOF
  trap - ERR
  set +E
  log "node $NODE_NAME Ready after $((SECONDS - t0)) s"
}

# ---- stop ----------------------------------------------------------------------------------

# Mount points under the run dir, deepest first.
run_mounts() {
  awk -v run="$RUN/" 'index($5, run) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Processes whose command line mentions the bed's containerd socket (the runc shims).
shim_pids() {
  local p
  for p in /proc/[0-9]*; do
    [ -r "$p/cmdline" ] || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "-address $SOCK "; then
      basename "$p"
    fi
  done
}

# Removes what is left of the KUBE-* iptables chains after `kube-proxy --cleanup`: kubelet's
# KUBE-FIREWALL (and its jumps from INPUT/OUTPUT), KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT.
# Only one node bed runs per host, so every KUBE-* chain here is the bed's.
clean_kube_iptables() {
  local cmd t rule c chains
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for t in filter nat mangle; do
      "$cmd" -t "$t" -S >/dev/null 2>&1 || continue
      { "$cmd" -t "$t" -S | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -Ev '^-A KUBE-' || true; } |
        while read -r rule; do
          eval "$cmd -w -t $t -D ${rule#-A }" || true
        done
      chains="$("$cmd" -t "$t" -S | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p')"
      for c in $chains; do "$cmd" -w -t "$t" -F "$c" || true; done
      for c in $chains; do "$cmd" -w -t "$t" -X "$c" || true; done
    done
  done
}

# Removes a cgroup tree (v1), killing what is left in it.
remove_cgroup() {
  local dir="$1" d
  [ -d "$dir" ] || return 0
  find "$dir" -depth -type d | while read -r d; do
    if [ -s "$d/cgroup.procs" ]; then
      xargs -r kill -KILL <"$d/cgroup.procs" 2>/dev/null || true
      sleep 0.2
    fi
    rmdir "$d" 2>/dev/null || true
  done
}

cmd_stop() {
  [ -d "$NODE" ] || return 0
  [ -f "$RUN/$MARKER" ] || die "$RUN is not a bed run dir"
  local t0=$SECONDS
  stop_pid "$NODE/kube-proxy.pid" "$BIN/kube-proxy" kube-proxy
  stop_pid "$NODE/kubelet.pid" "$BIN/kubelet" kubelet
  stop_pid "$NODE/kube-scheduler.pid" "$BIN/kube-scheduler" kube-scheduler
  stop_pid "$NODE/kube-controller-manager.pid" "$BIN/kube-controller-manager" kube-controller-manager

  # Containers: kill the tasks through containerd while it runs, then containerd, then the
  # shims that outlive it.
  if [ -f "$NODE/containerd.pid" ] && pid_alive "$NODE/containerd.pid" /usr/bin/containerd; then
    local ctr=(ctr --address "$SOCK" -n k8s.io) id
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks kill -s KILL "$id" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_pid "$NODE/containerd.pid" /usr/bin/containerd containerd
  local pids
  pids="$(shim_pids)"
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    log "killed $(echo "$pids" | wc -w) containerd shim(s)"
  fi

  # kube-proxy's iptables rules (and only those: its chains are KUBE-*).
  if [ -x "$BIN/kube-proxy" ] && iptables -t nat -S KUBE-SERVICES >/dev/null 2>&1; then
    "$BIN/kube-proxy" --cleanup --v=0 >"$NODE/kube-proxy-cleanup.log" 2>&1 || true
  fi
  clean_kube_iptables
  log "removed the KUBE-* iptables chains (kube-proxy's and kubelet's)"
  while iptables -w -t nat -D POSTROUTING -s "$POD_CIDR" ! -d "$CLUSTER_CIDR" -m comment --comment "$MASQ_COMMENT" -j MASQUERADE 2>/dev/null; do :; done

  # Network namespaces (under containerd's state dir) and every other mount under the run dir.
  local m n=0
  for m in $(run_mounts); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    n=$((n + 1))
  done
  [ $n = 0 ] || log "unmounted $n mount(s) under $RUN"
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" 2>/dev/null && log "removed bridge $BRIDGE"
  fi

  local h
  for h in /sys/fs/cgroup/*/; do
    remove_cgroup "$h$CGROUP_ROOT"
  done

  if [ -f "$NODE/sysctls" ]; then
    local s v
    while read -r s v; do
      [ "$(cat "/proc/sys/$s" 2>/dev/null)" = "$v" ] || echo "$v" >"/proc/sys/$s" 2>/dev/null || true
    done <"$NODE/sysctls"
  fi
  [ "$(cat "$HOST_LOCK" 2>/dev/null)" = "$RUN" ] && rm -f "$HOST_LOCK"
  sed -i '/^export SVCBUILD_BED_\(NODE\|NODE_IP\|CONTAINERD\|PAUSE_IMAGE\)=/d' "$RUN/env" 2>/dev/null || true
  # Nothing may stay mounted before the run dir goes (apiserver.sh down runs rm -rf on it).
  [ -z "$(run_mounts)" ] || die "mounts left under $RUN: $(run_mounts | tr '\n' ' ')"
  rm -rf "$NODE"
  log "node stopped in $((SECONDS - t0)) s"
}

cmd_up() {
  other_node_running && die "another node bed runs on this host ($(cat "$HOST_LOCK")); stop it first"
  local started=""
  if ! apiserver_up; then
    SVCBUILD_BED_BIND_ADDRESS="${SVCBUILD_BED_BIND_ADDRESS:-0.0.0.0}" "$HERE/apiserver.sh" up >/dev/null
    started=1
  fi
  # A separate process, so that `set -e` and the ERR trap of `start` stay in force.
  if ! SVCBUILD_BED_RUN="$RUN" "$SELF" start; then
    [ -z "$started" ] || "$HERE/apiserver.sh" down
    exit 1
  fi
  echo "$RUN/admin.kubeconfig"
}

cmd_down() {
  cmd_stop
  "$HERE/apiserver.sh" down
}

cmd_status() {
  apiserver_up && node_ready
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|start|stop|status" >&2; exit 2 ;;
esac
