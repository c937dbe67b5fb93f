#!/usr/bin/env bash
# A real OCI registry on loopback for kubewasm's tests: the CNCF distribution
# registry, built from its Go module (see go.mod next to this script) into a
# cache outside the repository, started on a free 127.0.0.1 port with TLS (a
# CA and server certificate made per run) and basic auth (an htpasswd file
# with a bcrypt hash made per run). See README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly CACHE_ROOT="${KUBEWASM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/kubewasm}"
# Bump when the build recipe below changes, so cached binaries are rebuilt.
readonly RECIPE=1
readonly MODULE=github.com/distribution/distribution/v3

usage() {
  cat <<EOF
Usage: $(basename "$0") ACTION [OPTIONS]

Actions:
  build     Build the registry and the htpasswd helper into the cache (once).
  up        Build if needed, make a CA, a server certificate and credentials,
            start the registry, wait until /v2/ answers 401 without and 200
            with credentials, and print the shell exports of 'env'.
  down      Stop the registry 'up' started and remove the data directory.
  status    Show whether the registry is running and answering.
  env       Print shell exports for the running registry:
              eval "\$($(basename "$0") env --dir DIR)"
  bin-dir   Print the directory holding the built binaries.
  watchdog  Wait until standard input is closed, then run 'down'. Used by
            test harnesses to stop the registry when they exit.

Options (each has an environment variable equivalent):
  --dir DIR          Data directory (KUBEWASM_REGISTRY_DIR).
                     Default: ${CACHE_ROOT}/run/registry
  --port PORT        Fixed port on 127.0.0.1 (KUBEWASM_REGISTRY_PORT).
                     Default: a free port in 20000-31999.
  --user NAME        The basic-auth user (KUBEWASM_REGISTRY_USER, default
                     kubewasm). The password is random per 'up'.
  --timeout SECONDS  How long 'up' waits for readiness
                     (KUBEWASM_REGISTRY_TIMEOUT, default 60).

Binaries are cached in ${CACHE_ROOT}/registry/<version>/bin
(KUBEWASM_CACHE_DIR moves ${CACHE_ROOT}).
EOF
}

log() { printf 'registry.sh: %s\n' "$*" >&2; }
die() {
  printf 'registry.sh: error: %s\n' "$*" >&2
  exit 1
}

now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; } # microseconds
elapsed() { # elapsed START_US -> seconds with two decimals
  local us=$(($(now) - $1))
  printf '%d.%02d' $((us / 1000000)) $((us / 10000 % 100))
}

VERSION="$(awk -v mod="${MODULE}" '{ sub(/^require[ \t]+/, "") } $1 == mod { print $2; exit }' "${SCRIPT_DIR}/go.mod")"
readonly VERSION
[[ -n "${VERSION}" ]] || die "cannot read the version of ${MODULE} from ${SCRIPT_DIR}/go.mod"
readonly VERSION_DIR="${CACHE_ROOT}/registry/${VERSION}"
readonly BIN_DIR="${VERSION_DIR}/bin"

# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------

ACTION=""
DIR="${KUBEWASM_REGISTRY_DIR:-${CACHE_ROOT}/run/registry}"
PORT="${KUBEWASM_REGISTRY_PORT:-}"
USER_NAME="${KUBEWASM_REGISTRY_USER:-kubewasm}"
TIMEOUT="${KUBEWASM_REGISTRY_TIMEOUT:-60}"

parse_args() {
  while (($#)); do
    case "$1" in
      --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
      --dir=*) DIR="${1#*=}"; shift ;;
      --port) PORT="${2:?--port needs a value}"; shift 2 ;;
      --port=*) PORT="${1#*=}"; shift ;;
      --user) USER_NAME="${2:?--user needs a value}"; shift 2 ;;
      --user=*) USER_NAME="${1#*=}"; shift ;;
      --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
      --timeout=*) TIMEOUT="${1#*=}"; shift ;;
      -h | --help | help) usage; exit 0 ;;
      *)
        [[ -z "${ACTION}" ]] || die "unknown argument '$1' (see --help)"
        ACTION="$1"
        shift
        ;;
    esac
  done
  [[ -n "${ACTION}" ]] || { usage >&2; exit 2; }
  [[ "${TIMEOUT}" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds, not '${TIMEOUT}'"
  [[ -z "${PORT}" ]] || { [[ "${PORT}" =~ ^[1-9][0-9]*$ ]] && ((PORT < 65536)); } ||
    die "--port must be a TCP port number, not '${PORT}'"
  [[ "${USER_NAME}" =~ ^[A-Za-z0-9._-]+$ ]] ||
    die "--user must be letters, digits, '.', '_' or '-', not '${USER_NAME}'"
  [[ "${DIR}" == /* ]] || DIR="${PWD}/${DIR}"
  DIR="${DIR%/}"
}

# ---------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------

# name|Go package (built inside SCRIPT_DIR's module)
readonly COMPONENTS=(
  "registry|${MODULE}/cmd/registry"
  "htpasswd|./htpasswd"
)

# What the binaries are built from; cached binaries whose stamp differs are rebuilt.
build_stamp() {
  {
    printf 'recipe=%s\n' "${RECIPE}"
    cat "${SCRIPT_DIR}/go.mod" "${SCRIPT_DIR}/go.sum" "${SCRIPT_DIR}"/htpasswd/*.go
  } | sha256sum | cut -d' ' -f1
}

is_built() {
  local stamp c
  stamp="$(build_stamp)"
  for c in "${COMPONENTS[@]}"; do
    [[ -x "${BIN_DIR}/${c%%|*}" ]] || return 1
  done
  [[ -f "${BIN_DIR}/.stamp" && "$(cat "${BIN_DIR}/.stamp")" == "${stamp}" ]]
}

require_go() {
  command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is required but is not installed"
  local want have
  want="$(awk '$1 == "go" { print $2 }' "${SCRIPT_DIR}/go.mod")"
  command -v go >/dev/null 2>&1 ||
    die "Go is not installed (or not on PATH), and the registry ${VERSION} is not built yet.
  Install Go >= ${want} and run '$0 build' once; the binaries are cached in ${BIN_DIR}."
  have="$(GOTOOLCHAIN=local go env GOVERSION)"
  have="${have#go}"
  [[ "$(printf '%s\n%s\n' "${want}" "${have%%[-+ ]*}" | sort -V | head -n1)" == "${want}" ]] ||
    die "Go ${have} is too old to build the registry ${VERSION}: Go >= ${want} is required"
}

cmd_build() {
  if is_built; then
    log "the registry ${VERSION} is up to date in ${BIN_DIR}"
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
  if is_built; then
    exec {build_lock}>&-
    return 0
  fi
  local start c name pkg tmp ldflags
  start="$(now)"
  log "building the distribution registry ${VERSION} into ${BIN_DIR}"
  log "(the first build downloads ~170 MiB of Go modules and compiles for about a minute; later builds reuse Go's module and build caches)"
  # The version the registry reports (--version, the User-Agent of its
  # storage drivers), as distribution's own Makefile sets it.
  ldflags="-s -w -X ${MODULE}/version.version=${VERSION} -X ${MODULE}/version.mainpkg=${MODULE}"
  for c in "${COMPONENTS[@]}"; do
    name="${c%%|*}"
    pkg="${c#*|}"
    local t0
    t0="$(now)"
    log "  go build ${pkg}"
    tmp="${BIN_DIR}/.${name}.tmp.$$"
    # Static, like the upstream release binaries; GOTOOLCHAIN=local so a too
    # old Go fails here instead of silently downloading another toolchain.
    if ! (cd "${SCRIPT_DIR}" &&
      CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags="${ldflags}" -o "${tmp}" "${pkg}"); then
      rm -f "${tmp}"
      die "building ${name} (${pkg}) failed; see the Go output above. Module: ${SCRIPT_DIR}/go.mod"
    fi
    mv -f "${tmp}" "${BIN_DIR}/${name}"
    log "  built ${name} in $(elapsed "${t0}")s"
  done
  build_stamp >"${BIN_DIR}/.stamp"
  exec {build_lock}>&-
  log "build finished in $(elapsed "${start}")s"
}

# ---------------------------------------------------------------------------
# Processes, ports and the data directory
# ---------------------------------------------------------------------------

readonly MARKER=".kubewasm-registry"

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# True if pid $1 runs the executable $2 (so a recycled pid is never signalled).
pid_is() {
  local exe
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  [[ "${exe}" == "$2" || "${exe}" == "$2 (deleted)" ]]
}

# Prints "pid exe" of the recorded registry process if it is still ours.
running_pid() {
  [[ -f "${DIR}/pid" ]] || return 0
  local pid exe
  read -r pid exe <"${DIR}/pid" || true
  [[ -n "${pid}" ]] && pid_is "${pid}" "${exe}" && printf '%s %s\n' "${pid}" "${exe}"
  return 0
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a port nobody listens on, below the Linux ephemeral range
# (32768+) so that outgoing connections never hold the port we pick.
free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    port_in_use "${p}" || { printf '%s' "${p}"; return 0; }
  done
  die "could not find a free port on 127.0.0.1"
}

log_tail() {
  local n="${1:-20}"
  [[ -f "${DIR}/logs/registry.log" ]] || return 0
  log "last ${n} lines of ${DIR}/logs/registry.log:"
  tail -n "${n}" "${DIR}/logs/registry.log" | sed 's/^/    /' >&2
}

stop_registry() {
  local pid exe i
  read -r pid exe <<<"$(running_pid)"
  [[ -n "${pid}" ]] || return 0
  log "stopping the registry (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    pid_is "${pid}" "${exe}" || return 0
    sleep 0.1
  done
  log "the registry (pid ${pid}) did not exit 10 s after SIGTERM; killing it"
  kill -KILL "${pid}" 2>/dev/null || true
  while pid_is "${pid}" "${exe}"; do sleep 0.1; done
}

# Take the per-data-directory lock that serialises up/down/watchdog.
# lock_dir wait|nowait
lock_dir() {
  mkdir -p "$(dirname "${DIR}")"
  exec {dir_lock}>"${DIR}.lock"
  if [[ "$1" == wait ]]; then
    flock "${dir_lock}"
  else
    flock -n "${dir_lock}" || die "another '$(basename "$0") up' or 'down' is in progress for ${DIR}"
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

# A CA and a server certificate for 127.0.0.1 and localhost, new per run.
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
CN = kubewasm-test-registry
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
subjectAltName = IP:127.0.0.1, DNS:localhost
EOF
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc)
    openssl req -config openssl.cnf -x509 "${ec[@]}" -keyout ca.key -out ca.crt \
      -days 30 -subj "/CN=kubewasm-test-registry-ca" -extensions ca 2>/dev/null
    openssl req -config openssl.cnf -new "${ec[@]}" -keyout server.key -out server.csr \
      -subj "/CN=127.0.0.1" 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -days 30 -extfile openssl.cnf -extensions serving -out server.crt 2>/dev/null
    rm -f server.csr
    chmod 644 ca.crt server.crt
  ) || die "generating certificates with openssl failed"
}

write_config() {
  (
    umask 077
    cat >"${DIR}/config.yml" <<EOF
# Written by tests/registry/registry.sh for one test run.
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${DIR}/data
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${PORT}
  secret: ${HTTP_SECRET}
  draintimeout: 5s
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: ${DIR}/pki/server.crt
    key: ${DIR}/pki/server.key
    minimumtls: tls1.2
auth:
  htpasswd:
    realm: kubewasm-test-registry
    path: ${DIR}/htpasswd
EOF
    # A dockerconfigjson (the .dockerconfigjson key of a
    # kubernetes.io/dockerconfigjson Secret, and ~/.docker/config.json).
    printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' \
      "${PORT}" "$(printf '%s:%s' "${USER_NAME}" "${PASSWORD}" | base64 -w0)" >"${DIR}/config.json"
    cat >"${DIR}/registry.env" <<EOF
KUBEWASM_TEST_REGISTRY=127.0.0.1:${PORT}
KUBEWASM_TEST_REGISTRY_USER=${USER_NAME}
KUBEWASM_TEST_REGISTRY_PASSWORD=${PASSWORD}
KUBEWASM_TEST_REGISTRY_CA=${DIR}/pki/ca.crt
KUBEWASM_TEST_REGISTRY_AUTH=${DIR}/config.json
KUBEWASM_TEST_REGISTRY_VERSION=${VERSION}
EOF
  )
}

start_registry() {
  : >"${DIR}/logs/registry.log"
  # setsid: its own session, so terminal signals meant for whoever ran 'up'
  # do not reach it; only 'down' stops it. The lock fd is closed so that the
  # registry does not keep holding the data directory lock.
  # OTEL_TRACES_EXPORTER=none: no OTLP exporter retrying localhost:4318.
  OTEL_TRACES_EXPORTER=none setsid "${BIN_DIR}/registry" serve "${DIR}/config.yml" \
    </dev/null >>"${DIR}/logs/registry.log" 2>&1 {dir_lock}>&- &
  REGISTRY_PID=$!
  printf '%s %s\n' "${REGISTRY_PID}" "${BIN_DIR}/registry" >"${DIR}/pid"
}

# The HTTP status of GET /v2/ ("000" if there is no answer); with an
# argument, using the credentials.
v2_status() {
  local auth=()
  [[ $# -eq 0 ]] || auth=(--user "${USER_NAME}:${PASSWORD}")
  curl -sS -o /dev/null -w '%{http_code}' --max-time 2 --cacert "${DIR}/pki/ca.crt" \
    "${auth[@]}" "https://127.0.0.1:${PORT}/v2/" 2>/dev/null || true
}

# wait_ready: until /v2/ answers 401 without credentials and 200 with them.
# Returns 0 when ready, 2 on a bind conflict, 1 on any other failure.
wait_ready() {
  local deadline=$((SECONDS + TIMEOUT)) anon="" authed=""
  while ((SECONDS < deadline)); do
    if ! pid_alive "${REGISTRY_PID}"; then
      grep -qiE 'address already in use' "${DIR}/logs/registry.log" 2>/dev/null && return 2
      log "error: the registry exited during startup"
      log_tail
      return 1
    fi
    anon="$(v2_status)"
    if [[ "${anon}" == 401 ]]; then
      authed="$(v2_status with-credentials)"
      [[ "${authed}" != 200 ]] || return 0
    fi
    sleep 0.05
  done
  log "error: the registry did not become ready within ${TIMEOUT}s (GET /v2/: ${anon:-no answer} without credentials, ${authed:-not tried} with them; want 401 and 200)"
  log_tail
  return 1
}

cmd_up() {
  local start tool
  start="$(now)"
  for tool in setsid flock openssl curl base64; do
    command -v "${tool}" >/dev/null 2>&1 || die "'${tool}' is required to start the registry but is not installed"
  done
  lock_dir nowait
  local running
  running="$(running_pid)"
  if [[ -n "${running}" ]]; then
    die "a registry is already running in ${DIR} (pid ${running%% *})
  Use it (eval \"\$($0 env --dir ${DIR})\"), or stop it first with '$0 down --dir ${DIR}'."
  fi
  if [[ -e "${DIR}" ]]; then
    if [[ -f "${DIR}/${MARKER}" ]]; then
      log "removing the stale data directory of a previous run: ${DIR}"
      remove_dir
    elif [[ -n "$(ls -A "${DIR}" 2>/dev/null)" ]]; then
      die "${DIR} exists and is not a registry data directory; choose another --dir"
    fi
  fi
  local fixed=0
  if [[ -n "${PORT}" ]]; then
    fixed=1
    ! port_in_use "${PORT}" ||
      die "port ${PORT} on 127.0.0.1 is already in use: choose another --port or none (a free one is picked)"
  fi

  cmd_build
  local ready_start
  ready_start="$(now)"

  mkdir -p "${DIR}/logs" "${DIR}/data"
  chmod 700 "${DIR}"
  : >"${DIR}/${MARKER}"
  make_pki
  PASSWORD="$(openssl rand -hex 16)"
  HTTP_SECRET="$(openssl rand -hex 32)"
  (umask 077 && printf '%s\n' "${PASSWORD}" | "${BIN_DIR}/htpasswd" "${USER_NAME}" >"${DIR}/htpasswd") ||
    die "writing ${DIR}/htpasswd failed"

  local attempt rc=1
  for attempt in 1 2 3; do
    [[ "${fixed}" == 1 ]] || PORT="$(free_port)"
    write_config
    start_registry
    rc=0
    wait_ready || rc=$?
    ((rc == 2)) || break
    stop_registry
    [[ "${fixed}" == 0 ]] || { log_tail 5; die "port conflict: the registry could not bind 127.0.0.1:${PORT}"; }
    log "the registry lost a race for port ${PORT}; retrying with another (attempt ${attempt})"
  done
  if ((rc != 0)); then
    stop_registry
    die "the registry failed to start; its log is kept in ${DIR}/logs ('$0 down --dir ${DIR}' removes it)"
  fi
  log "registry ${VERSION} is ready at https://127.0.0.1:${PORT} in $(elapsed "${ready_start}")s ($(elapsed "${start}")s with the build check)"
  log "  data, config and log: ${DIR}"
  cmd_env
}

# ---------------------------------------------------------------------------
# down, status, env, watchdog
# ---------------------------------------------------------------------------

cmd_down() {
  lock_dir wait
  if [[ ! -e "${DIR}" ]]; then
    log "no registry in ${DIR}"
  else
    stop_registry
    remove_dir
    log "stopped the registry and removed ${DIR}"
  fi
  # Unlinked while held: an 'up' that starts now creates a fresh lock file.
  rm -f "${DIR}.lock"
}

require_env() {
  [[ -f "${DIR}/registry.env" ]] ||
    die "no registry in ${DIR} (no registry.env); start one with '$0 up --dir ${DIR}'"
}

cmd_env() {
  require_env
  local line
  while IFS= read -r line; do
    printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
  done <"${DIR}/registry.env"
}

cmd_status() {
  local running
  running="$(running_pid)"
  if [[ -z "${running}" ]]; then
    echo "not running (${DIR})"
    return 3
  fi
  require_env
  # shellcheck source=/dev/null
  source "${DIR}/registry.env"
  PORT="${KUBEWASM_TEST_REGISTRY##*:}" USER_NAME="${KUBEWASM_TEST_REGISTRY_USER}" PASSWORD="${KUBEWASM_TEST_REGISTRY_PASSWORD}"
  echo "data directory: ${DIR}"
  echo "registry:       https://${KUBEWASM_TEST_REGISTRY} (pid ${running%% *}, ${VERSION})"
  local anon authed
  anon="$(v2_status)" authed="$(v2_status with-credentials)"
  echo "GET /v2/:       ${anon} without credentials, ${authed} with them"
  [[ "${anon}" == 401 && "${authed}" == 200 ]]
}

cmd_watchdog() {
  # Survive the terminal signals that kill the test process we guard.
  trap '' INT HUP PIPE
  # stdin is the read end of a pipe whose write end the guarded process
  # holds; EOF means that process is gone, however it ended.
  cat >/dev/null || true
  cmd_down
}

main() {
  parse_args "$@"
  case "${ACTION}" in
    build) cmd_build ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    bin-dir) printf '%s\n' "${BIN_DIR}" ;;
    watchdog) cmd_watchdog ;;
    *) die "unknown action '${ACTION}' (see --help)" ;;
  esac
}

# One line, so a running script never reads past it if this file is edited meanwhile.
main "$@"; exit $?
