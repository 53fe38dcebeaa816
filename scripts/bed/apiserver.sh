#!/usr/bin/env bash
# Level 1 of the cluster test bed (issue 7): etcd + kube-apiserver on loopback, with a
# self-made CA, an admin kubeconfig and Argo Workflows' full CRDs installed (Established).
#
# Usage: scripts/bed/apiserver.sh up | down | env | status | user NAME [GROUP...]
#   up       build (cached) and start etcd and kube-apiserver, install the Argo CRDs, print the
#            admin kubeconfig path on stdout (progress goes to stderr). Does nothing if the bed
#            in the run dir is already running.
#   down     stop both and remove the run dir (after `node.sh stop` if a level-2 node runs).
#   env      print shell exports (KUBECONFIG, SVCBUILD_BED_SERVER, ...) for a running bed.
#   status   exit 0 if the bed in the run dir answers /readyz.
#   user     write a kubeconfig for a client certificate (CN=NAME, O=GROUP...) signed by the
#            bed's CA, with no rights unless RBAC grants them; print its path.
#
# Environment:
#   SVCBUILD_BED_RUN             run dir (default /tmp/svcbuild-bed)
#   SVCBUILD_BED_CACHE           build cache (default $HOME/.cache/svcbuild-bed), see build.sh
#   SVCBUILD_BED_APISERVER_PORT  secure port (default: a free one)
#   SVCBUILD_BED_ETCD_PORT       etcd client port (default: a free one)
#   SVCBUILD_BED_ETCD_PEER_PORT  etcd peer port (default: a free one)
#   SVCBUILD_BED_BIND_ADDRESS    apiserver bind address (default 127.0.0.1)
#   SVCBUILD_BED_ADVERTISE_ADDRESS  address in the `kubernetes` Service endpoints (default: the
#                                source address of the default route, else 127.0.0.1)
#   SVCBUILD_BED_OWNER_PID       if set, a watchdog runs `down` when that process exits
#   SVCBUILD_BED_SKIP_BUILD=1    do not run build.sh (binaries must be in the cache)
#   KUBECTL                      kubectl binary (default: kubectl on PATH)
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
RUN="${SVCBUILD_BED_RUN:-/tmp/svcbuild-bed}"
CACHE="${SVCBUILD_BED_CACHE:-$HOME/.cache/svcbuild-bed}"
BIN="$CACHE/bin"
KUBECTL="${KUBECTL:-$(command -v kubectl || echo /usr/local/bin/kubectl)}"
MARKER=".svcbuild-bed"
SERVICE_CIDR=10.0.0.0/24
SERVICE_IP=10.0.0.1

log() { echo "bed/apiserver: $*" >&2; }
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

# pid_alive PIDFILE BINARY: the pid in PIDFILE runs BINARY (guards against reused pids).
pid_alive() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -1 | grep -qx "$2"
}

stop_pid() {
  local pidfile="$1" binary="$2" name="$3" i
  if pid_alive "$pidfile" "$binary"; then
    local pid
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      pid_alive "$pidfile" "$binary" || break
      sleep 0.1
    done
    if pid_alive "$pidfile" "$binary"; then
      log "$name did not stop on TERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$name stopped (pid $pid)"
  fi
}

b64() { base64 -w0 <"$1"; }

# kubeconfig FILE USER CERT KEY
write_kubeconfig() {
  local file="$1" user="$2" cert="$3" key="$4" server
  server="$(cat "$RUN/server")"
  umask 077
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: svcbuild-bed
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$RUN/pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(b64 "$cert")
    client-key-data: $(b64 "$key")
contexts:
- name: $user@svcbuild-bed
  context:
    cluster: svcbuild-bed
    user: $user
current-context: $user@svcbuild-bed
EOF
  mv "$file.tmp" "$file"
}

# sign NAME SUBJECT EXTENSIONS: key + certificate signed by the bed CA, in $RUN/pki.
sign() {
  local name="$1" subj="$2" ext="$3" pki="$RUN/pki"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  printf '%b\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 \
    -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
  chmod 0600 "$pki/$name.key"
}

CLIENT_EXT='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'

make_pki() {
  local pki="$RUN/pki" advertise="$1"
  mkdir -p "$pki"
  chmod 0700 "$pki"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 -sha256 -subj "/CN=svcbuild-bed-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" 2>/dev/null
  local san="DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  san+=",DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP,IP:$advertise"
  sign apiserver "/CN=kube-apiserver" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=$san"
  sign admin "/CN=svcbuild-bed-admin/O=system:masters" "$CLIENT_EXT"
  # For later levels: the apiserver's client identity towards kubelets.
  sign apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client/O=system:masters" "$CLIENT_EXT"
  # Service-account token signing key pair.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  chmod 0600 "$pki/sa.key"
}

# wait_http NAME TIMEOUT LOGFILE PIDFILE CURL-ARGS...: until the URL answers 2xx.
wait_http() {
  local what="$1" timeout="$2" logfile="$3" pidfile="$4"; shift 4
  local deadline=$((SECONDS + timeout))
  until curl -fsS --max-time 2 "$@" >/dev/null 2>&1; do
    # kill -0, not pid_alive: right after the start, the pid may still be `setsid` (not yet exec'd).
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      log "$what exited (log: $logfile)"
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$what not ready after ${timeout}s (log: $logfile)"
      return 1
    fi
    sleep 0.2
  done
}

# A failed `up` shows the end of the logs, then removes what it started.
fail_up() {
  local f
  for f in "$RUN/etcd.log" "$RUN/apiserver.log"; do
    [ -f "$f" ] && { log "last lines of $f:"; tail -n 20 "$f" >&2; }
  done
  cmd_down
  exit 1
}

running() {
  [ -f "$RUN/$MARKER" ] && pid_alive "$RUN/etcd.pid" "$BIN/etcd" &&
    pid_alive "$RUN/apiserver.pid" "$BIN/kube-apiserver"
}

cmd_up() {
  if running; then
    log "already running in $RUN"
    echo "$RUN/admin.kubeconfig"
    return
  fi
  if [ -e "$RUN" ]; then
    [ -f "$RUN/$MARKER" ] || die "$RUN exists and is not a bed run dir; remove it or set SVCBUILD_BED_RUN"
    cmd_down
  fi
  local t0=$SECONDS
  if [ "${SVCBUILD_BED_SKIP_BUILD:-}" != 1 ]; then
    "$HERE/build.sh" etcd kube-apiserver argo-crds
  fi
  [ -x "$BIN/etcd" ] && [ -x "$BIN/kube-apiserver" ] && [ -d "$CACHE/argo-crds" ] ||
    die "missing binaries or CRDs in $CACHE; run scripts/bed/build.sh"
  command -v openssl >/dev/null || die "openssl is needed"
  [ -x "$KUBECTL" ] || die "kubectl not found (set KUBECTL)"

  local etcd_port="${SVCBUILD_BED_ETCD_PORT:-$(free_port)}"
  local etcd_peer="${SVCBUILD_BED_ETCD_PEER_PORT:-$(free_port)}"
  local api_port="${SVCBUILD_BED_APISERVER_PORT:-$(free_port)}"
  local bind="${SVCBUILD_BED_BIND_ADDRESS:-127.0.0.1}"
  local advertise="${SVCBUILD_BED_ADVERTISE_ADDRESS:-}"
  if [ -z "$advertise" ]; then
    advertise="$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)"
    advertise="${advertise:-127.0.0.1}"
  fi
  for p in "$etcd_port" "$etcd_peer" "$api_port"; do port_free "$p" || die "port $p is in use"; done

  mkdir -p "$RUN"
  touch "$RUN/$MARKER"
  local t_up=$SECONDS

  make_pki "$advertise"
  local pki="$RUN/pki"
  local server="https://127.0.0.1:$api_port"
  echo "$server" >"$RUN/server"

  # Owner watchdog first, so a failing `up` started by a test is cleaned up too.
  if [ -n "${SVCBUILD_BED_OWNER_PID:-}" ]; then
    SVCBUILD_BED_RUN="$RUN" SVCBUILD_BED_CACHE="$CACHE" setsid bash -c '
      while kill -0 "$1" 2>/dev/null && [ -d "$SVCBUILD_BED_RUN" ]; do sleep 1; done
      [ -d "$SVCBUILD_BED_RUN" ] && exec "$2" down' watchdog "$SVCBUILD_BED_OWNER_PID" "$SELF" \
      </dev/null >/dev/null 2>&1 &
  fi

  log "starting etcd on 127.0.0.1:$etcd_port"
  setsid "$BIN/etcd" \
    --name bed \
    --data-dir "$RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "bed=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync \
    --log-level warn \
    </dev/null >"$RUN/etcd.log" 2>&1 &
  echo $! >"$RUN/etcd.pid"
  wait_http etcd 30 "$RUN/etcd.log" "$RUN/etcd.pid" "http://127.0.0.1:$etcd_port/health" || fail_up

  log "starting kube-apiserver on $server (advertise $advertise)"
  setsid "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$bind" \
    --secure-port "$api_port" \
    --advertise-address "$advertise" \
    --cert-dir "$pki" \
    --tls-cert-file "$pki/apiserver.crt" \
    --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --profiling=false \
    --v=1 \
    </dev/null >"$RUN/apiserver.log" 2>&1 &
  echo $! >"$RUN/apiserver.pid"
  wait_http kube-apiserver 120 "$RUN/apiserver.log" "$RUN/apiserver.pid" --cacert "$pki/ca.crt" \
    --cert "$pki/admin.crt" --key "$pki/admin.key" "$server/readyz" || fail_up
  log "kube-apiserver ready after $((SECONDS - t_up)) s"

  write_kubeconfig "$RUN/admin.kubeconfig" svcbuild-bed-admin "$pki/admin.crt" "$pki/admin.key"
  cat >"$RUN/env" <<EOF
export KUBECONFIG=$RUN/admin.kubeconfig
export SVCBUILD_BED_SERVER=$server
export SVCBUILD_BED_RUN=$RUN
export SVCBUILD_BED_CA=$pki/ca.crt
export SVCBUILD_BED_ADVERTISE=$advertise
EOF

  log "installing Argo CRDs from $CACHE/argo-crds"
  local k=("$KUBECTL" --kubeconfig "$RUN/admin.kubeconfig")
  local try
  for try in 1 2 3; do
    if "${k[@]}" apply --server-side --field-manager=svcbuild-bed -f "$CACHE/argo-crds" >"$RUN/crds.log" 2>&1 &&
      "${k[@]}" wait --for condition=Established --timeout=60s -f "$CACHE/argo-crds" >>"$RUN/crds.log" 2>&1; then
      break
    fi
    log "installing the Argo CRDs failed (attempt $try):"
    tail -n 20 "$RUN/crds.log" >&2
    [ "$try" -lt 3 ] || fail_up
    sleep 2
  done
  log "$(grep -c 'condition met' "$RUN/crds.log") Argo CRDs Established"
  log "up in $((SECONDS - t0)) s (start $((SECONDS - t_up)) s); kubeconfig:"
  echo "$RUN/admin.kubeconfig"
}

cmd_down() {
  if [ ! -e "$RUN" ]; then return; fi
  [ -f "$RUN/$MARKER" ] || die "$RUN is not a bed run dir; refusing to remove it"
  # Level 3: the workflow-controller started by argo.sh goes first (it runs on the host).
  if [ -d "$RUN/argo" ]; then
    SVCBUILD_BED_RUN="$RUN" SVCBUILD_BED_CACHE="$CACHE" "$HERE/argo.sh" stop || log "argo.sh stop failed"
  fi
  # Level 2: a node started by node.sh goes first (containers, mounts under the run dir, ...).
  if [ -d "$RUN/node" ]; then
    SVCBUILD_BED_RUN="$RUN" SVCBUILD_BED_CACHE="$CACHE" "$HERE/node.sh" stop ||
      die "node.sh stop failed; not removing $RUN"
  fi
  stop_pid "$RUN/apiserver.pid" "$BIN/kube-apiserver" kube-apiserver
  stop_pid "$RUN/etcd.pid" "$BIN/etcd" etcd
  rm -rf "$RUN"
  log "removed $RUN"
}

cmd_env() {
  running || die "no bed running in $RUN"
  cat "$RUN/env"
}

cmd_status() {
  running && curl -fsS --max-time 2 --cacert "$RUN/pki/ca.crt" --cert "$RUN/pki/admin.crt" \
    --key "$RUN/pki/admin.key" "$(cat "$RUN/server")/readyz" >/dev/null 2>&1
}

cmd_user() {
  local name="${1:-}"
  [ -n "$name" ] || die "usage: apiserver.sh user NAME [GROUP...]"
  shift
  [[ "$name" =~ ^[A-Za-z0-9._:@-]+$ ]] || die "bad user name: $name"
  [ -f "$RUN/pki/ca.key" ] || die "no bed in $RUN"
  local subj="/CN=$name" g
  for g in "$@"; do
    [[ "$g" =~ ^[A-Za-z0-9._:@-]+$ ]] || die "bad group name: $g"
    subj+="/O=$g"
  done
  local id="user-${name//[:@]/_}"
  mkdir -p "$RUN/users"
  sign "$id" "$subj" "$CLIENT_EXT"
  write_kubeconfig "$RUN/users/$name.kubeconfig" "$name" "$RUN/pki/$id.crt" "$RUN/pki/$id.key"
  echo "$RUN/users/$name.kubeconfig"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  user) shift; cmd_user "$@" ;;
  *) echo "usage: $0 up|down|env|status|user NAME [GROUP...]" >&2; exit 2 ;;
esac
