#!/usr/bin/env bash
# Helm for kubewasm's tests of the chart in deploy/helm/kubewasm: built from
# its Go module (helm.sh/helm/v3, package cmd/helm, from the Go module proxy)
# into a cache outside the repository, once per version, like the control
# plane (tests/control-plane/cluster.sh) and the registry
# (tests/registry/registry.sh). Prints the path of the binary:
#
#   helm="$(tests/tools/helm.sh)"
set -euo pipefail

readonly CACHE_ROOT="${KUBEWASM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/kubewasm}"
# Bump when the build recipe below changes, so cached binaries are rebuilt.
readonly RECIPE=1
readonly MODULE=helm.sh/helm/v3
# v3 is what users run; v4 is another module (helm.sh/helm/v4).
readonly VERSION=v3.22.0
readonly VERSION_DIR="${CACHE_ROOT}/helm/${VERSION}"
readonly BIN_DIR="${VERSION_DIR}/bin"
readonly HELM="${BIN_DIR}/helm"

usage() {
  cat <<EOF
Usage: $(basename "$0") [ACTION]

Actions:
  build     Build Helm ${VERSION} into the cache if it is not there yet, and
            print the path of the binary (the default).
  bin-dir   Print the directory holding the binary (without building).

The binary is cached in ${BIN_DIR}
(KUBEWASM_CACHE_DIR moves ${CACHE_ROOT}).
EOF
}

log() { printf 'helm.sh: %s\n' "$*" >&2; }
die() {
  printf 'helm.sh: error: %s\n' "$*" >&2
  exit 1
}

now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; } # microseconds
elapsed() { # elapsed START_US -> seconds with one decimal
  local us=$(($(now) - $1))
  printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

# What the binary is built from; a cached binary whose stamp differs is rebuilt.
build_stamp() {
  printf 'recipe=%s module=%s version=%s\n' "${RECIPE}" "${MODULE}" "${VERSION}"
}

is_built() {
  [[ -x "${HELM}" && -f "${BIN_DIR}/.helm.stamp" ]] &&
    [[ "$(cat "${BIN_DIR}/.helm.stamp")" == "$(build_stamp)" ]]
}

# Go >= the version Helm's go.mod asks for ($1), and flock.
require_go() {
  command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is required but is not installed"
  command -v go >/dev/null 2>&1 ||
    die "Go is not installed (or not on PATH), and Helm ${VERSION} is not built yet.
  Install Go and run '$0 build' once; the binary is cached in ${BIN_DIR}."
  [[ -n "${1:-}" ]] || return 0
  local have
  have="$(GOTOOLCHAIN=local go env GOVERSION)"
  have="${have#go}"
  [[ "$(printf '%s\n%s\n' "$1" "${have%%[-+ ]*}" | sort -V | head -n1)" == "$1" ]] ||
    die "Go ${have} is too old to build Helm ${VERSION}: Go >= $1 is required"
}

# Downloads the module (verified against the checksum database through the
# proxy) and sets MOD_FILE and INFO_FILE: its go.mod and the proxy's .info.
download_module() {
  local json
  json="$(GOTOOLCHAIN=local go mod download -json "${MODULE}@${VERSION}")" ||
    die "downloading ${MODULE} ${VERSION} failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  MOD_FILE="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' <<<"${json}")"
  INFO_FILE="$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",*$/\1/p' <<<"${json}")"
  [[ -f "${MOD_FILE}" ]] || die "go mod download named no go.mod for ${MODULE} ${VERSION}: ${json}"
}

# -ldflags as Helm's own Makefile sets them for a release: the version
# `helm version` reports, and the Kubernetes version `helm template` and
# `helm lint` assume (.Capabilities.KubeVersion): 1.N for the k8s.io/client-go
# v0.N Helm is built with.
helm_ldflags() {
  local client_go minor commit=""
  client_go="$(awk '{ sub(/^require[ \t]+/, "") } $1 == "k8s.io/client-go" { print $2; exit }' "${MOD_FILE}")"
  [[ "${client_go}" =~ ^v0\.([0-9]+)\. ]] ||
    die "cannot read the k8s.io/client-go version from ${MOD_FILE} (found '${client_go}')"
  minor="${BASH_REMATCH[1]}"
  [[ ! -f "${INFO_FILE}" ]] || commit="$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "${INFO_FILE}")"
  local v=helm.sh/helm/v3/internal/version flags="-s -w"
  flags+=" -X ${v}.version=${VERSION} -X ${v}.metadata="
  [[ -z "${commit}" ]] || flags+=" -X ${v}.gitCommit=${commit} -X ${v}.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    flags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${minor}"
  done
  printf '%s' "${flags}"
}

cmd_build() {
  if is_built; then
    log "Helm ${VERSION} is up to date in ${BIN_DIR}"
    printf '%s\n' "${HELM}"
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
    printf '%s\n' "${HELM}"
    return 0
  fi
  local start
  start="$(now)"
  log "building Helm ${VERSION} (${MODULE}/cmd/helm) into ${BIN_DIR}"
  log "(the first build downloads ~100 MiB of Go modules and compiles for 2-5 minutes; later builds reuse Go's module and build caches)"
  download_module
  require_go "$(awk '$1 == "go" { print $2; exit }' "${MOD_FILE}")"
  local ldflags tmp
  ldflags="$(helm_ldflags)"
  # `go install module@version` builds with Helm's own go.mod and go.sum,
  # exactly the dependency versions of its release; into a private GOBIN so
  # a half-built binary never sits at the cached path.
  tmp="$(mktemp -d "${VERSION_DIR}/.gobin.XXXXXX")"
  # Static, like the upstream release binaries; GOTOOLCHAIN=local so a too
  # old Go fails here instead of silently downloading another toolchain.
  if ! CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="${tmp}" \
    go install -trimpath -ldflags="${ldflags}" "${MODULE}/cmd/helm@${VERSION}"; then
    rm -rf "${tmp}"
    die "building Helm ${VERSION} (${MODULE}/cmd/helm) failed; see the Go output above"
  fi
  mv -f "${tmp}/helm" "${HELM}"
  rm -rf "${tmp}"
  build_stamp >"${BIN_DIR}/.helm.stamp"
  exec {build_lock}>&-
  log "built $("${HELM}" version --short) in $(elapsed "${start}")s"
  printf '%s\n' "${HELM}"
}

main() {
  case "${1:-build}" in
    build) cmd_build ;;
    bin-dir) printf '%s\n' "${BIN_DIR}" ;;
    -h | --help | help) usage ;;
    *) die "unknown action '$1' (see --help)" ;;
  esac
}

main "$@"
