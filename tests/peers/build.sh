#!/usr/bin/env bash
# Builds the side-by-side benchmark's client-go peer (go-labeller/, its own
# Go module: client-go from the Go module proxy) into a cache outside the
# repository, keyed by its sources, and prints the path of the binary:
#
#   go_labeller="$(tests/peers/build.sh)"
#
# The binary lands in ${KUBEWASM_CACHE_DIR:-~/.cache/kubewasm}/peers/go-labeller/
# <sha256 of go.mod, go.sum and main.go>/go-labeller; a second run with the
# same sources builds nothing. Go's module and build caches are Go's own
# defaults, shared with tests/control-plane/cluster.sh and tests/tools/helm.sh
# (they already hold client-go at the control plane's version).
# The kube-rs peer (kube-rs-labeller/) is a member of the root Cargo
# workspace and builds with cargo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/go-labeller"
cache_root="${KUBEWASM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm}"

log() { printf 'peers/build.sh: %s\n' "$*" >&2; }
die() {
    printf 'peers/build.sh: error: %s\n' "$*" >&2
    exit 1
}

command -v go >/dev/null 2>&1 || die "Go is not installed (or not on PATH)"
command -v flock >/dev/null 2>&1 || die "'flock' (util-linux) is required but is not installed"

key="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -d' ' -f1)"
dir="$cache_root/peers/go-labeller/$key"
bin="$dir/go-labeller"
if [[ -x "$bin" ]]; then
    printf '%s\n' "$bin"
    exit 0
fi

mkdir -p "$dir"
# Serialise concurrent builds (parallel test runs) of the same sources.
exec {lock}>"$dir/.build.lock"
flock "$lock"
if [[ ! -x "$bin" ]]; then
    log "building go-labeller into $dir"
    start=$SECONDS
    tmp="$(mktemp "$dir/.go-labeller.XXXXXX")"
    # -mod=readonly: go.sum is committed, nothing is resolved anew;
    # GOTOOLCHAIN=local so a too old Go fails instead of downloading another.
    if ! (cd "$src" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
        go build -trimpath -o "$tmp" .); then
        rm -f "$tmp"
        die "building go-labeller failed; see the Go output above"
    fi
    mv -f "$tmp" "$bin"
    log "built go-labeller in $((SECONDS - start)) s"
fi
exec {lock}>&-
printf '%s\n' "$bin"
