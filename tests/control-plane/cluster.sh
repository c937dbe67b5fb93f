#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for kubewasm's tests and demo:
# etcd + kube-apiserver (+ kube-controller-manager on request), built from the
# Go modules next to this script into a cache outside the repository, started
# on free 127.0.0.1 ports with a private data directory. See README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly CACHE_ROOT="${KUBEWASM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/kubewasm}"
# Bump when the build recipe below changes, so cached binaries are rebuilt.
readonly RECIPE=1

usage() {
  cat <<EOF
Usage: $(basename "$0") ACTION [OPTIONS]

Actions:
  build       Build etcd, kube-apiserver and kubectl into the cache (once).
  up          Build if needed, start the control plane, wait for /readyz and
              print the kubeconfig path.
  down        Stop the processes 'up' started and remove the data directory.
  status      Show whether the control plane is running and ready.
  env         Print shell exports for the control plane:
                eval "\$($(basename "$0") env)"
  kubeconfig  Print the path of the admin kubeconfig.
  kubectl     Run the built kubectl against the control plane; every argument
              after 'kubectl' but --dir goes to kubectl.
  bin-dir     Print the directory holding the built binaries.
  watchdog    Wait until standard input is closed, then run 'down'. Used by
              test harnesses to stop the control plane when they exit.

Fault actions (for fault tests; on a control plane 'up' started):
  restart apiserver|etcd [--down-for S]
              Kill the component (SIGKILL, as a crash would), wait S seconds
              (default 0), start it again with the same flags, ports and
              data, and wait until kube-apiserver's /readyz is ok again.
  stop apiserver|etcd
              Freeze the component (SIGSTOP): its ports stay open but it
              answers nothing, like a hung process.
  cont apiserver|etcd
              Resume a component frozen by 'stop' (SIGCONT).
  compact     Compact etcd's history up to its current revision, so a watch
              resuming from an older resourceVersion gets '410 Gone' (when
              kube-apiserver runs without its watch cache). Prints the
              revision.

Options (each has an environment variable equivalent):
  --dir DIR                    Data directory (KUBEWASM_CP_DIR).
                               Default: ${CACHE_ROOT}/run/default
  --with-controller-manager    Also build/start kube-controller-manager
                               (KUBEWASM_CP_CONTROLLER_MANAGER=1).
  --apiserver-port PORT        Fixed kube-apiserver port (KUBEWASM_CP_APISERVER_PORT).
  --etcd-port PORT             Fixed etcd client port (KUBEWASM_CP_ETCD_PORT).
  --timeout SECONDS            How long 'up' and 'restart' wait for readiness
                               (KUBEWASM_CP_TIMEOUT, default 120).
  --no-watch-cache             'up' starts kube-apiserver with
                               --watch-cache=false: watches are served by
                               etcd, so its compaction reaches clients
                               (KUBEWASM_CP_WATCH_CACHE=0). 'restart' keeps it.
  --down-for SECONDS           How long 'restart' leaves the component down
                               (default 0).

Binaries are cached in ${CACHE_ROOT}/control-plane/<version>/bin
(KUBEWASM_CACHE_DIR moves ${CACHE_ROOT}).
EOF
}

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() {
  printf 'cluster.sh: error: %s\n' "$*" >&2
  exit 1
}

now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; } # microseconds
elapsed() { # elapsed START_US -> seconds with one decimal
  local us=$(($(now) - $1))
  printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

# The version of module $2 required in the go.mod file $1.
module_version() {
  awk -v mod="$2" '{ sub(/^require[ \t]+/, "") } $1 == mod { print $2; exit }' "$1"
}

K8S_VERSION="$(module_version "${SCRIPT_DIR}/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(module_version "${SCRIPT_DIR}/etcd/go.mod" go.etcd.io/etcd/server/v3)"
readonly K8S_VERSION ETCD_VERSION
[[ -n "${K8S_VERSION}" && -n "${ETCD_VERSION}" ]] ||
  die "cannot read the Kubernetes/etcd versions from ${SCRIPT_DIR}/go.mod and etcd/go.mod"
readonly VERSION_DIR="${CACHE_ROOT}/control-plane/${K8S_VERSION}-etcd-${ETCD_VERSION}"
readonly BIN_DIR="${VERSION_DIR}/bin"

# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------

ACTION=""
DIR="${KUBEWASM_CP_DIR:-${CACHE_ROOT}/run/default}"
WITH_KCM="${KUBEWASM_CP_CONTROLLER_MANAGER:-0}"
APISERVER_PORT="${KUBEWASM_CP_APISERVER_PORT:-}"
ETCD_PORT="${KUBEWASM_CP_ETCD_PORT:-}"
TIMEOUT="${KUBEWASM_CP_TIMEOUT:-120}"
WATCH_CACHE="${KUBEWASM_CP_WATCH_CACHE:-1}"
DOWN_FOR=0
TARGET=""
EXTRA_ARGS=()

parse_args() {
  while (($#)); do
    # After 'kubectl', everything but --dir is kubectl's.
    if [[ "${ACTION}" == kubectl && "$1" != --dir && "$1" != --dir=* ]]; then
      EXTRA_ARGS+=("$1")
      shift
      continue
    fi
    case "$1" in
      --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
      --dir=*) DIR="${1#*=}"; shift ;;
      --with-controller-manager) WITH_KCM=1; shift ;;
      --apiserver-port) APISERVER_PORT="${2:?--apiserver-port needs a value}"; shift 2 ;;
      --apiserver-port=*) APISERVER_PORT="${1#*=}"; shift ;;
      --etcd-port) ETCD_PORT="${2:?--etcd-port needs a value}"; shift 2 ;;
      --etcd-port=*) ETCD_PORT="${1#*=}"; shift ;;
      --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
      --timeout=*) TIMEOUT="${1#*=}"; shift ;;
      --no-watch-cache) WATCH_CACHE=0; shift ;;
      --down-for) DOWN_FOR="${2:?--down-for needs a value}"; shift 2 ;;
      --down-for=*) DOWN_FOR="${1#*=}"; shift ;;
      -h | --help | help) usage; exit 0 ;;
      --) shift; EXTRA_ARGS+=("$@"); break ;;
      *)
        if [[ -z "${ACTION}" ]]; then
          ACTION="$1"
        elif [[ -z "${TARGET}" && "${ACTION}" =~ ^(restart|stop|cont)$ ]]; then
          TARGET="$1"
        else
          die "unknown argument '$1' (see --help)"
        fi
        shift
        ;;
    esac
  done
  [[ -n "${ACTION}" ]] || { usage >&2; exit 2; }
  [[ "${WITH_KCM}" == 0 || "${WITH_KCM}" == 1 ]] ||
    die "KUBEWASM_CP_CONTROLLER_MANAGER must be 0 or 1, not '${WITH_KCM}'"
  [[ "${WATCH_CACHE}" == 0 || "${WATCH_CACHE}" == 1 ]] ||
    die "KUBEWASM_CP_WATCH_CACHE must be 0 or 1, not '${WATCH_CACHE}'"
  [[ "${DOWN_FOR}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--down-for must be a number of seconds, not '${DOWN_FOR}'"
  if [[ "${ACTION}" =~ ^(restart|stop|cont)$ ]]; then
    [[ "${TARGET}" == apiserver || "${TARGET}" == etcd ]] ||
      die "'${ACTION}' needs a component: apiserver or etcd (not '${TARGET}')"
  fi
  [[ "${TIMEOUT}" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds, not '${TIMEOUT}'"
  local p
  for p in "${APISERVER_PORT}" "${ETCD_PORT}"; do
    [[ -z "${p}" ]] || { [[ "${p}" =~ ^[1-9][0-9]*$ ]] && ((p < 65535)); } ||
      die "invalid port '${p}'"
  done
  [[ "${DIR}" == /* ]] || DIR="${PWD}/${DIR}"
  DIR="${DIR%/}"
}

# ---------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------

# name|module dir (relative to SCRIPT_DIR)|Go package
readonly COMPONENTS=(
  "etcd|etcd|go.etcd.io/etcd/server/v3"
  "kube-apiserver|.|k8s.io/kubernetes/cmd/kube-apiserver"
  "kubectl|.|k8s.io/kubernetes/cmd/kubectl"
  "kube-controller-manager|.|k8s.io/kubernetes/cmd/kube-controller-manager"
)

# What a binary is built from; a cached binary whose stamp differs is rebuilt.
build_stamp() {
  local moddir="$1" pkg="$2"
  {
    printf 'recipe=%s pkg=%s\n' "${RECIPE}" "${pkg}"
    cat "${SCRIPT_DIR}/${moddir}/go.mod" "${SCRIPT_DIR}/${moddir}/go.sum"
  } | sha256sum | cut -d' ' -f1
}

is_built() {
  local name="$1" moddir="$2" pkg="$3"
  [[ -x "${BIN_DIR}/${name}" && -f "${BIN_DIR}/.${name}.stamp" ]] &&
    [[ "$(cat "${BIN_DIR}/.${name}.stamp")" == "$(build_stamp "${moddir}" "${pkg}")" ]]
}

wanted_components() {
  local c
  for c in "${COMPONENTS[@]}"; do
    [[ "${c%%|*}" != kube-controller-manager || "${WITH_KCM}" == 1 ]] && printf '%s\n' "${c}"
  done
}

all_built() {
  local c name moddir pkg
  while IFS='|' read -r name moddir pkg; do
    is_built "${name}" "${moddir}" "${pkg}" || return 1
  done < <(wanted_components)
}

require_go() {
  command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is required but is not installed"
  command -v go >/dev/null 2>&1 ||
    die "Go is not installed (or not on PATH), and the control plane binaries for ${K8S_VERSION} are not built yet.
  Install Go >= $(awk '$1 == "go" { print $2 }' "${SCRIPT_DIR}/go.mod") (https://go.dev/dl/) and run '$0 build' once;
  the binaries are cached in ${BIN_DIR}."
  local want have
  want="$(awk '$1 == "go" { print $2 }' "${SCRIPT_DIR}/go.mod")"
  have="$(GOTOOLCHAIN=local go env GOVERSION)"
  have="${have#go}"
  [[ "$(printf '%s\n%s\n' "${want}" "${have%%[-+ ]*}" | sort -V | head -n1)" == "${want}" ]] ||
    die "Go ${have} is too old to build Kubernetes ${K8S_VERSION}: Go >= ${want} is required"
}

# -ldflags for the Kubernetes binaries: the version they report (kubectl
# version, /version, and the compatibility version the apiserver derives).
kube_ldflags() {
  local minor="${K8S_VERSION#v1.}"
  minor="${minor%%.*}"
  local info commit="" date="1970-01-01T00:00:00Z"
  # The proxy's .info file of the release names its commit and tag time.
  (cd "${SCRIPT_DIR}" && GOTOOLCHAIN=local go mod download k8s.io/kubernetes) ||
    die "downloading k8s.io/kubernetes ${K8S_VERSION} failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  info="$(GOTOOLCHAIN=local go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/${K8S_VERSION}.info"
  if [[ -f "${info}" ]]; then
    commit="$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "${info}")"
    date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${info}")"
  fi
  local pkg flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.buildDate=${date}"
    [[ -z "${commit}" ]] || flags+=" -X ${pkg}.gitCommit=${commit} -X ${pkg}.gitTreeState=clean"
  done
  printf '%s' "${flags}"
}

cmd_build() {
  if all_built; then
    log "binaries for Kubernetes ${K8S_VERSION} / etcd ${ETCD_VERSION} are up to date in ${BIN_DIR}"
    return 0
  fi
  require_go
  mkdir -p "${BIN_DIR}"
  # Serialise concurrent builds (parallel test runs) on one cache directory.
  exec {build_lock}>"${VERSION_DIR}/.build.lock"
  if ! flock -n "${build_lock}"; then
    log "another build into ${BIN_DIR} is running; waiting for it"
    flock "${build_lock}"
  fi
  local start name moddir pkg ldflags tmp
  start="$(now)"
  log "building Kubernetes ${K8S_VERSION} and etcd ${ETCD_VERSION} into ${BIN_DIR}"
  log "(the first build downloads ~1 GiB of Go modules and compiles for 20-60 minutes; later runs reuse it)"
  while IFS='|' read -r name moddir pkg; do
    is_built "${name}" "${moddir}" "${pkg}" && continue
    ldflags="-s -w"
    [[ "${name}" == etcd ]] || ldflags="$(kube_ldflags)"
    local t0
    t0="$(now)"
    log "  go build ${pkg}"
    tmp="${BIN_DIR}/.${name}.tmp.$$"
    # Static, like the upstream release binaries; GOTOOLCHAIN=local so a too
    # old Go fails here instead of silently downloading another toolchain.
    if ! (cd "${SCRIPT_DIR}/${moddir}" &&
      CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags="${ldflags}" -o "${tmp}" "${pkg}"); then
      rm -f "${tmp}"
      die "building ${name} (${pkg}) failed; see the Go output above.
  Module: ${SCRIPT_DIR}/${moddir}/go.mod"
    fi
    mv -f "${tmp}" "${BIN_DIR}/${name}"
    build_stamp "${moddir}" "${pkg}" >"${BIN_DIR}/.${name}.stamp"
    log "  built ${name} in $(elapsed "${t0}")s"
  done < <(wanted_components)
  exec {build_lock}>&-
  log "build finished in $(elapsed "${start}")s"
}

# ---------------------------------------------------------------------------
# Processes and ports
# ---------------------------------------------------------------------------

readonly MARKER=".kubewasm-control-plane"

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# True if pid $1 runs the executable $2 (so a recycled pid is never signalled).
pid_is() {
  local exe
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  [[ "${exe}" == "$2" || "${exe}" == "$2 (deleted)" ]]
}

# Prints "name pid exe" lines of recorded processes that are still ours.
running_components() {
  [[ -f "${DIR}/pids" ]] || return 0
  local name pid exe
  while read -r name pid exe; do
    pid_is "${pid}" "${exe}" && printf '%s %s %s\n' "${name}" "${pid}" "${exe}"
  done <"${DIR}/pids"
  return 0
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

describe_port_user() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /' >&2 || true
}

declare -A TAKEN=()
# free_port VAR: set VAR to a port nobody listens on and this run has not
# handed out yet. Not a subshell, so TAKEN persists between calls.
free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    # Below the Linux ephemeral range (32768+), so outgoing connections never
    # hold the port we pick.
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    [[ -z "${TAKEN[${p}]:-}" ]] || continue
    port_in_use "${p}" && continue
    TAKEN[${p}]=1
    printf -v "$1" '%s' "${p}"
    return 0
  done
  die "could not find a free port on 127.0.0.1"
}

check_fixed_port() {
  if port_in_use "$1"; then
    log "error: port $1 on 127.0.0.1 ($2) is already in use:"
    describe_port_user "$1"
    die "port conflict: choose another port or stop whatever listens on 127.0.0.1:$1"
  fi
  TAKEN[$1]=1
}

# start NAME ARGS...: start a component in its own session with its log in
# ${DIR}/logs/NAME.log and record its pid.
start_component() {
  local name="$1"
  shift
  local exe="${BIN_DIR}/${name}"
  # setsid: its own session, so terminal signals meant for whoever ran 'up'
  # do not reach it; only 'down' stops it. The lock fd is closed so the
  # component does not keep holding the data directory lock.
  setsid "${exe}" "$@" >>"${DIR}/logs/${name}.log" 2>&1 </dev/null {dir_lock}>&- &
  local pid=$!
  printf '%s %s %s\n' "${name}" "${pid}" "${exe}" >>"${DIR}/pids"
  STARTED_PID="${pid}"
}

log_tail() {
  local f="${DIR}/logs/$1.log"
  [[ -s "${f}" ]] || { log "($1 wrote no log)"; return 0; }
  log "last lines of ${f}:"
  tail -n "${2:-40}" "${f}" | sed 's/^/    /' >&2
}

# stop_all: SIGTERM every recorded process that is still ours (controller
# manager, apiserver, then etcd), SIGKILL what has not exited after 20s.
stop_all() {
  local entries name pid exe i j
  # Newest first, reversed in memory: `tac` on a pipe needs a temporary
  # file, so on a full disk it listed nothing and left the processes running.
  mapfile -t entries < <(running_components)
  for ((j = ${#entries[@]} - 1; j >= 0; j--)); do
    read -r name pid exe <<<"${entries[j]}"
    log "stopping ${name} (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
      pid_is "${pid}" "${exe}" || break
      sleep 0.1
    done
    if pid_is "${pid}" "${exe}"; then
      log "${name} (pid ${pid}) did not exit after SIGTERM; killing it"
      kill -KILL "${pid}" 2>/dev/null || true
      while pid_is "${pid}" "${exe}"; do sleep 0.1; done
    fi
  done
}

# Take the per-data-directory lock that serialises up/down/watchdog.
# lock_dir wait|nowait
lock_dir() {
  mkdir -p "$(dirname "${DIR}")"
  exec {dir_lock}>"${DIR}.lock"
  if [[ "$1" == wait ]]; then
    flock "${dir_lock}"
  else
    flock -n "${dir_lock}" ||
      die "another '$(basename "$0") up' or 'down' is in progress for ${DIR}"
  fi
  # Only the holder may remove it: a lock file without its directory is
  # litter once this script exits.
  trap '[[ -e "${DIR}" ]] || rm -f "${DIR}.lock"' EXIT
}

remove_dir() {
  [[ -e "${DIR}" ]] || return 0
  [[ -f "${DIR}/${MARKER}" ]] ||
    die "refusing to delete ${DIR}: it was not created by $(basename "$0") (no ${MARKER} file)"
  rm -rf -- "${DIR}"
}

# ---------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------

make_pki() {
  local pki="${DIR}/pki"
  mkdir -p "${pki}"
  (
    cd "${pki}"
    umask 077
    cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = kubewasm-test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:10.0.0.1
EOF
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc)
    openssl req -config openssl.cnf -x509 "${ec[@]}" -keyout ca.key -out ca.crt \
      -days 365 -subj "/CN=kubewasm-test-ca" -extensions ca 2>/dev/null
    openssl req -config openssl.cnf -new "${ec[@]}" -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -days 365 -extfile openssl.cnf -extensions serving -out apiserver.crt 2>/dev/null
    # ServiceAccount token signing key pair (TokenRequest API).
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f apiserver.csr
  ) || die "generating certificates with openssl failed"
}

# write_kubeconfig FILE SERVER TOKEN USER
write_kubeconfig() {
  local ca
  ca="$(base64 -w0 <"${DIR}/pki/ca.crt")"
  (
    umask 077
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubewasm-test
  cluster:
    server: $2
    certificate-authority-data: ${ca}
users:
- name: $4
  user:
    token: $3
contexts:
- name: kubewasm-test
  context:
    cluster: kubewasm-test
    user: $4
    namespace: default
current-context: kubewasm-test
EOF
  )
}

start_etcd() {
  start_component etcd \
    --name=kubewasm \
    --data-dir="${DIR}/etcd" \
    --listen-client-urls="http://127.0.0.1:${ETCD_PORT}" \
    --advertise-client-urls="http://127.0.0.1:${ETCD_PORT}" \
    --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster="kubewasm=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --unsafe-no-fsync=true
  ETCD_PID="${STARTED_PID}"
}

start_apiserver() {
  local admission=()
  # Without kube-controller-manager nothing creates the "default"
  # ServiceAccount in new namespaces, and the ServiceAccount admission plugin
  # would reject every Pod.
  [[ "${WITH_KCM}" == 1 ]] || admission=(--disable-admission-plugins=ServiceAccount)
  start_component kube-apiserver \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --secure-port="${APISERVER_PORT}" \
    --tls-cert-file="${DIR}/pki/apiserver.crt" \
    --tls-private-key-file="${DIR}/pki/apiserver.key" \
    --etcd-servers="http://127.0.0.1:${ETCD_PORT}" \
    --authorization-mode=RBAC \
    --token-auth-file="${DIR}/pki/tokens.csv" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="${DIR}/pki/sa.pub" \
    --service-account-signing-key-file="${DIR}/pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --watch-cache="$([[ "${WATCH_CACHE}" == 1 ]] && echo true || echo false)" \
    "${admission[@]}"
  APISERVER_PID="${STARTED_PID}"
}

start_controller_manager() {
  start_component kube-controller-manager \
    --kubeconfig="${DIR}/kubeconfig" \
    --authentication-kubeconfig="${DIR}/kubeconfig" \
    --authorization-kubeconfig="${DIR}/kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="${KCM_PORT}" \
    --cert-dir="${DIR}/pki/kcm" \
    --leader-elect=false \
    --service-account-private-key-file="${DIR}/pki/sa.key" \
    --root-ca-file="${DIR}/pki/ca.crt" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --use-service-account-credentials=true
  KCM_PID="${STARTED_PID}"
}

# True if a component's log shows it could not bind its port.
bind_failed() {
  grep -qiE 'address already in use|bind: .*in use' "${DIR}/logs/$1.log" 2>/dev/null
}

kubectl_admin() {
  "${BIN_DIR}/kubectl" --kubeconfig="${DIR}/kubeconfig" "$@"
}

# wait_ready: until the apiserver answers /readyz with ok. Returns 0 when
# ready, 2 on a bind conflict, 1 on any other failure.
wait_ready() {
  local deadline=$((SECONDS + TIMEOUT)) name
  while ((SECONDS < deadline)); do
    for name in etcd kube-apiserver; do
      local pid="${ETCD_PID}"
      [[ "${name}" == etcd ]] || pid="${APISERVER_PID}"
      if ! pid_alive "${pid}"; then
        if bind_failed "${name}"; then
          FAILED="${name}"
          return 2
        fi
        log "error: ${name} exited during startup"
        log_tail "${name}"
        FAILED="${name}"
        return 1
      fi
    done
    if [[ "$(kubectl_admin get --raw /readyz --request-timeout=2s 2>/dev/null)" == ok ]]; then
      return 0
    fi
    sleep 0.2
  done
  log "error: kube-apiserver did not become ready within ${TIMEOUT}s"
  log "/readyz?verbose says:"
  kubectl_admin get --raw '/readyz?verbose' --request-timeout=5s 2>&1 | grep -v '\] ok$' | sed 's/^/    /' >&2 || true
  log_tail kube-apiserver
  log_tail etcd 20
  FAILED=kube-apiserver
  return 1
}

wait_controller_manager() {
  local deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! pid_alive "${KCM_PID}"; then
      bind_failed kube-controller-manager && return 2
      log "error: kube-controller-manager exited during startup"
      log_tail kube-controller-manager
      return 1
    fi
    if command -v curl >/dev/null 2>&1; then
      [[ "$(curl -ksS --max-time 2 "https://127.0.0.1:${KCM_PORT}/healthz" 2>/dev/null)" == ok ]] && return 0
    elif port_in_use "${KCM_PORT}"; then
      return 0
    fi
    sleep 0.2
  done
  log "error: kube-controller-manager did not become healthy within ${TIMEOUT}s"
  log_tail kube-controller-manager
  return 1
}

cmd_up() {
  local start tool
  start="$(now)"
  for tool in setsid flock openssl base64; do
    command -v "${tool}" >/dev/null 2>&1 || die "'${tool}' is required to start the control plane but is not installed"
  done
  # Hold the directory lock from before the build, so a watchdog's 'down'
  # that fires meanwhile waits and then stops what this 'up' started.
  lock_dir nowait
  local running
  running="$(running_components)"
  if [[ -n "${running}" ]]; then
    local server=""
    [[ -f "${DIR}/kubeconfig" ]] && server="$(awk '$1 == "server:" { print $2; exit }' "${DIR}/kubeconfig")"
    die "a control plane is already running in ${DIR}${server:+ at ${server}} (pids: $(awk '{ printf "%s%s=%s", NR > 1 ? " " : "", $1, $2 }' <<<"${running}"))
  Use it (eval \"\$($0 env --dir ${DIR})\"), or stop it first with '$0 down --dir ${DIR}'."
  fi
  if [[ -e "${DIR}" ]]; then
    if [[ -f "${DIR}/${MARKER}" ]]; then
      log "removing the stale data directory of a previous run: ${DIR}"
      remove_dir
    elif [[ -n "$(ls -A "${DIR}" 2>/dev/null)" ]]; then
      die "${DIR} exists and is not a control plane data directory; choose another --dir"
    fi
  fi

  # Fixed ports are checked before anything is built or written.
  local fixed=0
  [[ -z "${APISERVER_PORT}${ETCD_PORT}" ]] || fixed=1
  if [[ -n "${ETCD_PORT}" ]]; then check_fixed_port "${ETCD_PORT}" etcd; fi
  if [[ -n "${APISERVER_PORT}" ]]; then check_fixed_port "${APISERVER_PORT}" kube-apiserver; fi

  cmd_build

  mkdir -p "${DIR}/logs"
  chmod 700 "${DIR}"
  : >"${DIR}/${MARKER}"
  make_pki
  local token
  token="$(openssl rand -hex 32)"
  (umask 077 && printf '%s,kubewasm-admin,kubewasm-admin,"system:masters"\n' "${token}" >"${DIR}/pki/tokens.csv")
  (umask 077 && printf '%s\n' "${token}" >"${DIR}/admin-token")

  local attempt rc
  for attempt in 1 2 3; do
    : >"${DIR}/pids"
    [[ -n "${ETCD_PORT}" ]] || free_port ETCD_PORT
    free_port ETCD_PEER_PORT
    [[ -n "${APISERVER_PORT}" ]] || free_port APISERVER_PORT
    write_kubeconfig "${DIR}/kubeconfig" "https://127.0.0.1:${APISERVER_PORT}" "${token}" kubewasm-admin

    start_etcd
    start_apiserver
    rc=0
    wait_ready || rc=$?
    if ((rc == 2)); then
      stop_all
      if [[ "${fixed}" == 1 ]]; then
        log_tail "${FAILED}" 5
        die "port conflict: ${FAILED} could not bind its port on 127.0.0.1 (etcd ${ETCD_PORT}/${ETCD_PEER_PORT}, apiserver ${APISERVER_PORT})"
      fi
      log "${FAILED} lost a race for its port; retrying with other ports (attempt ${attempt})"
      ETCD_PORT="" APISERVER_PORT=""
      rm -rf "${DIR}/etcd"
      continue
    fi
    break
  done
  if ((rc != 0)); then
    stop_all
    ((rc != 2)) || log_tail "${FAILED}" 5
    die "the control plane failed to start; logs are kept in ${DIR}/logs ('$0 down --dir ${DIR}' removes them)"
  fi

  KCM_PORT=""
  if [[ "${WITH_KCM}" == 1 ]]; then
    for attempt in 1 2 3; do
      free_port KCM_PORT
      start_controller_manager
      rc=0
      wait_controller_manager || rc=$?
      ((rc == 2)) || break
      log "kube-controller-manager lost a race for its port; retrying"
      grep -v '^kube-controller-manager ' "${DIR}/pids" >"${DIR}/pids.tmp" || true
      mv "${DIR}/pids.tmp" "${DIR}/pids"
    done
    if ((rc != 0)); then
      stop_all
      die "kube-controller-manager failed to start; logs are kept in ${DIR}/logs"
    fi
  fi

  # Every recorded pid must be the component itself (not a wrapper), or
  # 'down' could not find it later.
  local name pid exe
  while read -r name pid exe; do
    pid_is "${pid}" "${exe}" || {
      stop_all
      die "internal error: recorded pid ${pid} of ${name} is not running ${exe}"
    }
  done <"${DIR}/pids"

  cat >"${DIR}/cluster.env" <<EOF
KUBEWASM_CP_SERVER=https://127.0.0.1:${APISERVER_PORT}
KUBEWASM_CP_ETCD=http://127.0.0.1:${ETCD_PORT}
KUBEWASM_CP_ETCD_PEER_PORT=${ETCD_PEER_PORT}
KUBEWASM_CP_WATCH_CACHE=${WATCH_CACHE}
KUBEWASM_CP_CONTROLLER_MANAGER=${WITH_KCM}
KUBEWASM_CP_KUBERNETES_VERSION=${K8S_VERSION}
KUBEWASM_CP_ETCD_VERSION=${ETCD_VERSION}
EOF
  log "control plane ${K8S_VERSION} is ready at https://127.0.0.1:${APISERVER_PORT} in $(elapsed "${start}")s"
  log "  etcd ${ETCD_VERSION} at http://127.0.0.1:${ETCD_PORT}$([[ "${WITH_KCM}" == 1 ]] && printf ', kube-controller-manager at https://127.0.0.1:%s' "${KCM_PORT}")"
  log "  data and logs: ${DIR}"
  log "  use it with:   eval \"\$($0 env$([[ "${DIR}" == "${CACHE_ROOT}/run/default" ]] || printf ' --dir %s' "${DIR}"))\""
  printf '%s\n' "${DIR}/kubeconfig"
}

# ---------------------------------------------------------------------------
# down, status, env, watchdog
# ---------------------------------------------------------------------------

cmd_down() {
  lock_dir wait
  if [[ ! -e "${DIR}" ]]; then
    log "no control plane in ${DIR}"
  else
    stop_all
    remove_dir
    log "stopped the control plane and removed ${DIR}"
  fi
  # Unlinked while held: an 'up' that starts now creates a fresh lock file.
  rm -f "${DIR}.lock"
}

cmd_status() {
  local running
  running="$(running_components)"
  if [[ -z "${running}" ]]; then
    echo "not running (${DIR})"
    return 3
  fi
  # shellcheck source=/dev/null
  [[ -f "${DIR}/cluster.env" ]] && source "${DIR}/cluster.env"
  echo "data directory: ${DIR}"
  echo "kubeconfig:     ${DIR}/kubeconfig"
  echo "server:         ${KUBEWASM_CP_SERVER:-(starting)}"
  awk '{ printf "%-24s pid %s\n", $1 ":", $2 }' <<<"${running}"
  local ready
  ready="$(kubectl_admin get --raw /readyz --request-timeout=3s 2>&1)" || true
  echo "readyz:         ${ready}"
  [[ "${ready}" == ok ]]
}

require_kubeconfig() {
  [[ -f "${DIR}/kubeconfig" ]] ||
    die "no control plane in ${DIR} (no kubeconfig); start one with '$0 up$([[ "${DIR}" == "${CACHE_ROOT}/run/default" ]] || printf ' --dir %s' "${DIR}")'"
}

cmd_env() {
  require_kubeconfig
  printf 'export KUBECONFIG=%q\n' "${DIR}/kubeconfig"
  printf 'export KUBEWASM_TEST_KUBECONFIG=%q\n' "${DIR}/kubeconfig"
  # shellcheck disable=SC2016 # $PATH is for the shell that evals this.
  printf 'export PATH=%q:"$PATH"\n' "${BIN_DIR}"
}

cmd_kubectl() {
  require_kubeconfig
  [[ -x "${BIN_DIR}/kubectl" ]] || die "kubectl is not built; run '$0 build'"
  exec "${BIN_DIR}/kubectl" --kubeconfig="${DIR}/kubeconfig" "${EXTRA_ARGS[@]}"
}

cmd_watchdog() {
  # Survive the terminal signals that kill the test process we guard.
  trap '' INT HUP PIPE
  # stdin is the read end of a pipe whose write end the guarded process
  # holds; EOF means that process is gone, however it ended.
  cat >/dev/null || true
  cmd_down
}

# ---------------------------------------------------------------------------
# Fault actions: restart, stop, cont, compact
# ---------------------------------------------------------------------------

# load_running: the ports and settings 'up' recorded in cluster.env, and the
# pids of the running components (ETCD_PID, APISERVER_PID).
load_running() {
  [[ -f "${DIR}/cluster.env" ]] ||
    die "no running control plane in ${DIR} (no cluster.env); start one with '$0 up --dir ${DIR}'"
  local server etcd
  server="$(sed -n 's/^KUBEWASM_CP_SERVER=//p' "${DIR}/cluster.env")"
  etcd="$(sed -n 's/^KUBEWASM_CP_ETCD=//p' "${DIR}/cluster.env")"
  APISERVER_PORT="${server##*:}"
  ETCD_PORT="${etcd##*:}"
  ETCD_PEER_PORT="$(sed -n 's/^KUBEWASM_CP_ETCD_PEER_PORT=//p' "${DIR}/cluster.env")"
  WATCH_CACHE="$(sed -n 's/^KUBEWASM_CP_WATCH_CACHE=//p' "${DIR}/cluster.env")"
  WITH_KCM="$(sed -n 's/^KUBEWASM_CP_CONTROLLER_MANAGER=//p' "${DIR}/cluster.env")"
  [[ -n "${ETCD_PEER_PORT}" && -n "${WATCH_CACHE}" ]] ||
    die "${DIR}/cluster.env was written by an older $(basename "$0"); restart the control plane with 'up'"
  ETCD_PID="" APISERVER_PID=""
  local name pid exe
  while read -r name pid exe; do
    case "${name}" in
      etcd) ETCD_PID="${pid}" ;;
      kube-apiserver) APISERVER_PID="${pid}" ;;
    esac
  done < <(running_components)
}

# component_of TARGET: the process name of 'apiserver' or 'etcd'.
component_of() {
  case "$1" in
    apiserver) printf 'kube-apiserver' ;;
    etcd) printf 'etcd' ;;
  esac
}

# pid_of_target TARGET: the running pid of the component, or die.
pid_of_target() {
  local pid="${ETCD_PID}"
  [[ "$1" == etcd ]] || pid="${APISERVER_PID}"
  [[ -n "${pid}" ]] || die "$(component_of "$1") is not running in ${DIR}"
  printf '%s' "${pid}"
}

# forget_component NAME: drop NAME's line from the pids file.
forget_component() {
  awk -v name="$1" '$1 != name' "${DIR}/pids" >"${DIR}/pids.tmp"
  mv -f "${DIR}/pids.tmp" "${DIR}/pids"
}

# wait_etcd: until etcd answers /health.
wait_etcd() {
  local deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    pid_alive "${ETCD_PID}" || { log_tail etcd; die "etcd exited after its restart"; }
    [[ "$(curl -sS --max-time 2 "http://127.0.0.1:${ETCD_PORT}/health" 2>/dev/null)" == *'"health":"true"'* ]] && return 0
    sleep 0.1
  done
  log_tail etcd
  die "etcd did not become healthy within ${TIMEOUT}s of its restart"
}

cmd_restart() {
  command -v curl >/dev/null 2>&1 || die "'curl' is required for 'restart'"
  lock_dir wait
  load_running
  local name pid exe start
  name="$(component_of "${TARGET}")"
  pid="$(pid_of_target "${TARGET}")"
  exe="${BIN_DIR}/${name}"
  start="$(now)"
  # A frozen process must be resumed to die of SIGKILL promptly everywhere.
  kill -KILL "${pid}" 2>/dev/null || true
  kill -CONT "${pid}" 2>/dev/null || true
  while pid_is "${pid}" "${exe}"; do sleep 0.05; done
  # A dying process loses /proc/PID/exe before the kernel closes its sockets:
  # wait (up to 10 s) until its ports refuse connections, or the new process
  # can find its listening port still taken and fail to bind it.
  local port ports=("${APISERVER_PORT}") until=$((SECONDS + 10))
  [[ "${name}" != etcd ]] || ports=("${ETCD_PORT}" "${ETCD_PEER_PORT}")
  for port in "${ports[@]}"; do
    while port_in_use "${port}" && ((SECONDS < until)); do sleep 0.05; done
  done
  forget_component "${name}"
  log "killed ${name} (pid ${pid}); starting it again in ${DOWN_FOR}s"
  sleep "${DOWN_FOR}"
  if [[ "${TARGET}" == etcd ]]; then
    start_etcd
  else
    start_apiserver
  fi
  # Back in start order, so 'down' still stops the apiserver before etcd.
  local c
  for c in etcd kube-apiserver kube-controller-manager; do
    grep "^${c} " "${DIR}/pids" || true
  done >"${DIR}/pids.tmp"
  mv -f "${DIR}/pids.tmp" "${DIR}/pids"
  [[ "${TARGET}" != etcd ]] || wait_etcd
  local rc=0
  wait_ready || rc=$?
  ((rc != 2)) || log_tail "${FAILED}" 5
  ((rc == 0)) || die "the control plane did not become ready after restarting ${name}"
  log "${name} restarted (pid ${STARTED_PID}); ready $(elapsed "${start}")s after the kill"
}

# cmd_signal STOP|CONT
cmd_signal() {
  lock_dir wait
  load_running
  local name pid
  name="$(component_of "${TARGET}")"
  pid="$(pid_of_target "${TARGET}")"
  kill "-$1" "${pid}" || die "failed to send SIG$1 to ${name} (pid ${pid})"
  case "$1" in
    STOP) log "froze ${name} (pid ${pid}); resume it with '$(basename "$0") cont ${TARGET} --dir ${DIR}'" ;;
    CONT) log "resumed ${name} (pid ${pid})" ;;
  esac
}

# etcd's v3 JSON gateway: POST $1 with body $2.
etcd_post() {
  curl -sS --fail --max-time 10 -X POST -H 'Content-Type: application/json' \
    "http://127.0.0.1:${ETCD_PORT}$1" -d "$2"
}

cmd_compact() {
  command -v curl >/dev/null 2>&1 || die "'curl' is required for 'compact'"
  load_running
  [[ -n "${ETCD_PID}" ]] || die "etcd is not running in ${DIR}"
  local answer revision
  # Any key: the response header carries the store's current revision.
  answer="$(etcd_post /v3/kv/range '{"key":"a3ViZXdhc20="}')" ||
    die "etcd did not answer a range request at http://127.0.0.1:${ETCD_PORT}"
  revision="$(sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p' <<<"${answer}")"
  [[ -n "${revision}" ]] || die "no revision in etcd's answer: ${answer}"
  etcd_post /v3/kv/compaction "{\"revision\":\"${revision}\",\"physical\":true}" >/dev/null ||
    die "etcd refused to compact to revision ${revision}"
  log "compacted etcd to revision ${revision}"
  printf '%s\n' "${revision}"
}

main() {
  parse_args "$@"
  case "${ACTION}" in
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    kubeconfig) require_kubeconfig && printf '%s\n' "${DIR}/kubeconfig" ;;
    kubectl) cmd_kubectl ;;
    bin-dir) printf '%s\n' "${BIN_DIR}" ;;
    watchdog) cmd_watchdog ;;
    restart) cmd_restart ;;
    stop) cmd_signal STOP ;;
    cont) cmd_signal CONT ;;
    compact) cmd_compact ;;
    *) die "unknown action '${ACTION}' (see --help)" ;;
  esac
}

# One line, so a running script never reads past it if this file is edited meanwhile.
main "$@"; exit $?
